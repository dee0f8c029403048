//! Applying nft rule text. `nft` (from the Debian `nftables` package) is the one external tool
//! this crate runs: nf_tables transactions are sent as text through `nft -f -`, which makes every
//! call one atomic kernel transaction. The command runs in the caller's network namespace
//! (a thread that entered another namespace spawns `nft` there).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Errors of running `nft`.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("spawn {nft} -f -: {source}")]
    Spawn {
        nft: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write rules to {nft} -f - stdin: {source}")]
    Stdin {
        nft: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{nft} {args} failed ({status}): {stderr}")]
    Failed {
        nft: PathBuf,
        args: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// The `nft` binary to run.
#[derive(Debug, Clone)]
pub struct Nft {
    pub path: PathBuf,
}

impl Default for Nft {
    fn default() -> Self {
        Self {
            path: PathBuf::from("nft"),
        }
    }
}

impl Nft {
    /// Applies `rules` as one atomic transaction (`nft -f -`).
    pub fn apply(&self, rules: &str) -> Result<(), NftError> {
        self.run(&["-f", "-"], Some(rules)).map(|_| ())
    }

    /// Checks `rules` without committing them (`nft -c -f -`).
    pub fn check(&self, rules: &str) -> Result<(), NftError> {
        self.run(&["-c", "-f", "-"], Some(rules)).map(|_| ())
    }

    /// `nft list ruleset`.
    pub fn list_ruleset(&self) -> Result<String, NftError> {
        self.run(&["list", "ruleset"], None)
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
        let mut child = Command::new(&self.path)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NftError::Spawn {
                nft: self.path.clone(),
                source,
            })?;
        let mut write_err = None;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // On failure, still reap nft: its exit status and stderr explain more than EPIPE.
            write_err = pipe.write_all(text.as_bytes()).err();
        }
        let out = child.wait_with_output().map_err(|source| NftError::Spawn {
            nft: self.path.clone(),
            source,
        })?;
        if let (Some(source), true) = (write_err, out.status.success()) {
            return Err(NftError::Stdin {
                nft: self.path.clone(),
                source,
            });
        }
        if !out.status.success() {
            return Err(NftError::Failed {
                nft: self.path.clone(),
                args: args.join(" "),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let nft = Nft {
            path: "/nonexistent/nft".into(),
        };
        let e = nft.apply("").unwrap_err();
        assert!(matches!(e, NftError::Spawn { .. }));
        assert!(e.to_string().contains("/nonexistent/nft"), "{e}");
    }

    #[test]
    fn failing_command_reports_status_and_stderr() {
        // `false` stands in for an nft that rejects its input.
        let nft = Nft {
            path: "false".into(),
        };
        let e = nft.list_ruleset().unwrap_err();
        assert!(matches!(e, NftError::Failed { .. }), "{e}");
        assert!(e.to_string().contains("list ruleset"), "{e}");
    }
}
