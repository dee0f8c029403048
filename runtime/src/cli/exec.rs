//! `reevec exec [--process FILE] [--detach] [--pid-file F] [--console-socket S] <id> [CMD...]`:
//! run a process in a running container, as containerd's shim calls it.

use std::path::PathBuf;

use super::{Cli, CliError};
use crate::container::{self, ExecOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
    /// An OCI `process` JSON file (`-` for stdin) describing the whole process.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Return once the process has exec'd instead of waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's host pid to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (with --tty or terminal: true).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Allocate a pty (needs --console-socket).
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment variable KEY=VALUE (repeatable).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// uid[:gid] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
}

/// The process to exec: from --process, or the container's own process with the command, env,
/// cwd and user replaced as given.
fn process_of(cli: &Cli, args: &Args) -> Result<oci_spec::runtime::Process, CliError> {
    let bad = |msg: String| CliError::Usage(msg);
    if let Some(path) = &args.process {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|source| CliError::Io {
                op: "read",
                path: path.clone(),
                source,
            })?
        } else {
            std::fs::read_to_string(path).map_err(|source| CliError::Io {
                op: "read",
                path: path.clone(),
                source,
            })?
        };
        return serde_json::from_str(&text)
            .map_err(|e| bad(format!("--process {}: {e}", path.display())));
    }
    if args.command.is_empty() {
        return Err(bad("exec needs a command or --process".into()));
    }
    let st = cli.state_root().load(&args.id)?;
    let spec = container::plan::load_spec(&st.bundle).map_err(|e| bad(e.to_string()))?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.into());
    }
    if !args.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(args.env.iter().cloned());
        p.set_env(Some(env));
    }
    if let Some(u) = &args.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| bad(format!("--user {u:?}: ids must be numbers")))
        };
        let mut user = p.user().clone();
        user.set_uid(parse(uid)?);
        if let Some(g) = gid {
            user.set_gid(parse(g)?);
        }
        p.set_user(user);
    }
    Ok(p)
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    crate::exe_seal::ensure_sealed()?;
    let process = process_of(cli, args)?;
    if process.terminal().unwrap_or(false) && args.console_socket.is_none() {
        return Err(CliError::Usage("a terminal needs --console-socket".into()));
    }
    let opts = ExecOptions {
        id: args.id.clone(),
        process,
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
    };
    Ok(container::exec(&cli.state_root(), &opts)?)
}
