//! `reevec run <id> [--bundle DIR] [--pid-file F] [--console-socket S] [--detach] [--keep]`

use super::create::CreateFlags;
use super::{Cli, CliError};
use crate::container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Return once the process is started instead of waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container (stopped) after its process exits, instead of deleting it.
    #[arg(long)]
    pub keep: bool,
    /// Accepted for runc compatibility: `reevec run` waits for its own child through a pidfd
    /// and never becomes a subreaper, which is what this flag asks of runc.
    #[arg(long)]
    pub no_subreaper: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    crate::exe_seal::ensure_sealed()?;
    let opts = args.flags.options(cli, &args.id)?;
    Ok(container::run(
        &cli.state_root(),
        &opts,
        container::RunMode {
            detach: args.detach,
            keep: args.keep,
        },
    )?)
}
