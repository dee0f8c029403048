//! `reevec checkpoint` and `reevec restore`: runc's CRIU verbs, known by name so that a caller
//! asking for them gets a clear refusal rather than "unrecognized subcommand".

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Whatever runc would take (container id, --image-path, …): all refused.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn unsupported(verb: &'static str) -> CliError {
    CliError::Unsupported {
        flag: verb,
        why: "reevec has no checkpoint/restore (CRIU) integration",
    }
}
