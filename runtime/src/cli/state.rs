//! `reevec state <id>`: the OCI state JSON.

use super::{out, Cli, CliError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    let st = cli.state_root().load(&args.id)?;
    let text = serde_json::to_string_pretty(&st.oci()).map_err(|e| CliError::Stdout(e.into()))?;
    out(&text)?;
    Ok(0)
}
