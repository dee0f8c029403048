//! `reevec ps [--format table|json] <id>`: the host pids of a container's processes.

use super::{out, Cli, CliError, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// table or json (a JSON array of host pids, what containerd reads).
    #[arg(long, short = 'f', default_value = "table")]
    pub format: Format,
    /// Accepted for runc compatibility (ps(1) options); reevec prints its own table.
    #[arg(trailing_var_arg = true, hide = true)]
    pub ps_args: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    let st = cli.state_root().load(&args.id)?;
    let pids = crate::container::pids(&st)?;
    match args.format {
        Format::Json => {
            out(&serde_json::to_string(&pids).map_err(|e| CliError::Stdout(e.into()))?)?
        }
        Format::Table => {
            let rows: Vec<[String; 2]> = pids
                .iter()
                .map(|p| {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                        .map(|b| {
                            String::from_utf8_lossy(&b)
                                .split('\0')
                                .filter(|s| !s.is_empty())
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default();
                    [p.to_string(), cmd]
                })
                .collect();
            out(&super::list::table(&["PID".into(), "CMD".into()], &rows))?;
        }
    }
    Ok(0)
}
