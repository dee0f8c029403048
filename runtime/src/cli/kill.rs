//! `reevec kill [--all] <id> [SIGNAL]`

use super::{Cli, CliError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// Signal name or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process of the container, not only its init (succeeds when none is left).
    #[arg(long, short = 'a')]
    pub all: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    let sig = crate::process::parse_signal(&args.signal)?;
    crate::container::kill(&cli.state_root(), &args.id, sig, args.all)?;
    Ok(0)
}
