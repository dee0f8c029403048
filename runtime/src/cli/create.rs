//! `reevec create <id> --bundle DIR [--pid-file F] [--console-socket S]`

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
    /// Unix socket that receives the pty master (terminal: true), as runc sends it.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility; the session keyring is not joined.
    #[arg(long, hide = true)]
    pub no_new_keyring: bool,
}

impl Args {
    pub fn options(&self, cli: &Cli) -> Result<CreateOptions, CliError> {
        Ok(CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            cgroups: cli.cgroup_mode()?,
        })
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    crate::exe_seal::ensure_sealed()?;
    container::create(&cli.state_root(), &args.options(cli)?)?;
    Ok(0)
}
