//! `reevec run <id> [--bundle DIR] [--pid-file F] [--console-socket S] [--detach]`

use std::path::PathBuf;

use super::{Cli, CliError};
use crate::container::{self, CreateOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's host pid to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (terminal: true).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Return once the process is started instead of waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    crate::exe_seal::ensure_sealed()?;
    let opts = CreateOptions {
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        cgroups: cli.cgroup_mode()?,
    };
    Ok(container::run(&cli.state_root(), &opts, args.detach)?)
}
