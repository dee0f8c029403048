//! `reevec delete [--force] <id>`

use super::{Cli, CliError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// Kill a running container first; succeed when it does not exist.
    #[arg(long, short = 'f')]
    pub force: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    crate::container::delete(&cli.state_root(), &args.id, args.force)?;
    Ok(0)
}
