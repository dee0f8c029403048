//! `reevec create <id> --bundle DIR [--pid-file F] [--console-socket S] [--preserve-fds N]
//! [--no-new-keyring]`

use std::path::PathBuf;

use super::{Cli, CliError};
use crate::container::{self, CreateOptions};

/// The flags `create` and `run` share, as runc spells them.
#[derive(Debug, clap::Args)]
pub struct CreateFlags {
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's host pid to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (terminal: true), as runc sends it.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Pass this many fds beyond stdio (3, 4, …) from the caller into the container.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Do not give the container a session keyring of its own (it keeps the caller's).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Refused: reevec always uses pivot_root (a chroot-based root can be left with
    /// chroot tricks).
    #[arg(long)]
    pub no_pivot: bool,
}

impl CreateFlags {
    pub fn options(&self, cli: &Cli, id: &str) -> Result<CreateOptions, CliError> {
        if self.no_pivot {
            return Err(CliError::Unsupported {
                flag: "--no-pivot",
                why: "reevec always enters the root with pivot_root and detaches the old root; \
                      a chroot-based root (MS_MOVE + chroot) can be left",
            });
        }
        Ok(CreateOptions {
            id: id.to_string(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            cgroups: cli.cgroup_mode()?,
            preserve_fds: self.preserve_fds,
            new_keyring: !self.no_new_keyring,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    #[command(flatten)]
    pub flags: CreateFlags,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    crate::exe_seal::ensure_sealed()?;
    container::create(&cli.state_root(), &args.flags.options(cli, &args.id)?)?;
    Ok(0)
}
