//! `reevec list [--format table|json] [--quiet]`

use super::{out, Cli, CliError, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// table or json.
    #[arg(long, short = 'f', default_value = "table")]
    pub format: Format,
    /// Only the ids.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    let root = cli.state_root();
    let mut states = Vec::new();
    for id in root.ids()? {
        // A container deleted meanwhile is simply not listed.
        if let Ok(st) = root.load(&id) {
            states.push(st);
        }
    }
    if args.quiet {
        for st in &states {
            out(&st.id)?;
        }
        return Ok(0);
    }
    match args.format {
        Format::Json => {
            let v: Vec<_> = states.iter().map(|s| s.oci()).collect();
            out(&serde_json::to_string(&v).map_err(|e| CliError::Stdout(e.into()))?)?;
        }
        Format::Table => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    let o = s.oci();
                    [
                        s.id.clone(),
                        o.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        s.owner.clone(),
                    ]
                })
                .collect();
            let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            out(&table(&head, &rows))?;
        }
    }
    Ok(0)
}

/// Left-aligned columns separated by at least three spaces, like runc's tabwriter output.
pub fn table<const N: usize>(head: &[String; N], rows: &[[String; N]]) -> String {
    let mut width = [0usize; N];
    for r in std::iter::once(head).chain(rows.iter()) {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    std::iter::once(head)
        .chain(rows.iter())
        .map(|r| {
            r.iter()
                .zip(width.iter())
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("   ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let t = super::table(
            &["ID".into(), "PID".into()],
            &[
                ["long-name".into(), "1".into()],
                ["x".into(), "12345".into()],
            ],
        );
        assert_eq!(t, "ID          PID\nlong-name   1\nx           12345");
    }
}
