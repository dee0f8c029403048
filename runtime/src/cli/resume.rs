//! `reevec resume <id>`: thaw a paused container.

use super::{Cli, CliError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    crate::container::resources::resume(&cli.state_root(), &args.id)?;
    Ok(0)
}
