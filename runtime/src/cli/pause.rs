//! `reevec pause <id>`: freeze every process of a container (cgroup v2 `cgroup.freeze`).

use super::{Cli, CliError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    crate::container::resources::pause(&cli.state_root(), &args.id)?;
    Ok(0)
}
