//! OCI hooks (runtime-spec `config.md#posix-platform-hooks`): programs the caller asks the
//! runtime to run at fixed points of the lifecycle, each given the container's state JSON on
//! stdin. Docker's networking is one (`prestart`: libnetwork-setkey), so are CNI-style helpers.
//!
//! | phase | where it runs | when | a failure |
//! |---|---|---|---|
//! | `prestart` (deprecated), `createRuntime` | the runtime's namespaces (`create`) | namespaces exist, mounts are made, before `pivot_root` | fails `create` |
//! | `createContainer` | the container's namespaces (its init), path resolved on the host | right after `createRuntime`, before `pivot_root` | fails `create` |
//! | `startContainer` | the container's namespaces (its init), path resolved in the container | on `start`, before the process's privileges are dropped and it execs | fails `start` |
//! | `poststart` | the runtime's namespaces (`start`) | after the process exec'd | a warning |
//! | `poststop` | the runtime's namespaces (`delete`) | after the container is gone | a warning |
//!
//! The plan ([`Hooks`]) is plain data taken from `config.json` at `create`; [`Hook::run`] runs
//! one: `path` with `args` (argv\[0\] included) and only `env`, stdin the state, stdout and
//! stderr captured (so a failing hook's own words reach the caller), killed after `timeout`.

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Errors of hooks, naming the phase, the hook's path and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{phase} hook {path:?}: path must be absolute")]
    RelativePath { phase: Phase, path: String },
    #[error("{phase} hook {path}: timeout must be a positive number of seconds, not {timeout}")]
    BadTimeout {
        phase: Phase,
        path: PathBuf,
        timeout: i64,
    },
    #[error("{phase} hook {path}: {op}: {source}")]
    Io {
        phase: Phase,
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{phase} hook {path} failed ({status}){output}")]
    Failed {
        phase: Phase,
        path: PathBuf,
        status: String,
        output: String,
    },
    #[error("{phase} hook {path} did not finish within {secs}s and was killed{output}")]
    Timeout {
        phase: Phase,
        path: PathBuf,
        secs: u64,
        output: String,
    },
}

/// The lifecycle points at which hooks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    /// Every phase, in lifecycle order, with its `config.json` name.
    pub const ALL: [Phase; 6] = [
        Phase::Prestart,
        Phase::CreateRuntime,
        Phase::CreateContainer,
        Phase::StartContainer,
        Phase::Poststart,
        Phase::Poststop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }

    /// Whether a failing hook only warns (the spec: poststart and poststop).
    pub fn warns_only(self) -> bool {
        matches!(self, Phase::Poststart | Phase::Poststop)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One hook, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub path: PathBuf,
    /// argv, argv\[0\] included (the spec's `args`); empty means argv\[0\] = path.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<Duration>,
}

/// Every hook of a container, by phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hooks {
    by_phase: Vec<(Phase, Vec<Hook>)>,
}

/// How much of a hook's output goes into an error message.
const OUTPUT_LIMIT: usize = 4096;

impl Hooks {
    /// Validate `config.json`'s `hooks`.
    pub fn from_spec(spec: Option<&oci_spec::runtime::Hooks>) -> Result<Hooks, HookError> {
        let Some(h) = spec else {
            return Ok(Hooks::default());
        };
        let mut by_phase = Vec::new();
        for phase in Phase::ALL {
            #[allow(deprecated)]
            let list = match phase {
                Phase::Prestart => h.prestart(),
                Phase::CreateRuntime => h.create_runtime(),
                Phase::CreateContainer => h.create_container(),
                Phase::StartContainer => h.start_container(),
                Phase::Poststart => h.poststart(),
                Phase::Poststop => h.poststop(),
            };
            let hooks = list
                .iter()
                .flatten()
                .map(|oci| Hook::from_oci(phase, oci))
                .collect::<Result<Vec<_>, _>>()?;
            if !hooks.is_empty() {
                by_phase.push((phase, hooks));
            }
        }
        Ok(Hooks { by_phase })
    }

    /// The hooks of `phase`, in order.
    pub fn of(&self, phase: Phase) -> &[Hook] {
        self.by_phase
            .iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    pub fn has(&self, phase: Phase) -> bool {
        !self.of(phase).is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.by_phase.is_empty()
    }

    /// Only the hooks of `phases`.
    pub fn only(&self, phases: &[Phase]) -> Hooks {
        Hooks {
            by_phase: self
                .by_phase
                .iter()
                .filter(|(p, _)| phases.contains(p))
                .cloned()
                .collect(),
        }
    }

    /// Run every hook of `phase` in order with `state` (the OCI state JSON) on stdin. For a
    /// phase that must succeed the first failure is returned; for poststart/poststop each
    /// failure is logged as a warning and the rest still run.
    pub fn run(&self, phase: Phase, state: &[u8]) -> Result<(), HookError> {
        for hook in self.of(phase) {
            match hook.run(phase, state) {
                Ok(()) => {}
                Err(e) if phase.warns_only() => tracing::warn!("{e}"),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Hook {
    fn from_oci(phase: Phase, h: &oci_spec::runtime::Hook) -> Result<Hook, HookError> {
        let path = h.path().clone();
        if !path.is_absolute() {
            return Err(HookError::RelativePath {
                phase,
                path: path.to_string_lossy().into_owned(),
            });
        }
        let timeout = match h.timeout() {
            None => None,
            Some(t) if t > 0 => Some(Duration::from_secs(t as u64)),
            Some(t) => {
                return Err(HookError::BadTimeout {
                    phase,
                    path,
                    timeout: t,
                })
            }
        };
        Ok(Hook {
            path,
            args: h.args().clone().unwrap_or_default(),
            env: h.env().clone().unwrap_or_default(),
            timeout,
        })
    }

    /// Run this hook once and wait for it (at most its timeout). Uses fork and exec, so it may
    /// be called from the single-threaded init as well as from the runtime.
    pub fn run(&self, phase: Phase, state: &[u8]) -> Result<(), HookError> {
        let io = |op: &'static str| {
            let path = self.path.clone();
            move |source| HookError::Io {
                phase,
                path,
                op,
                source,
            }
        };
        // stdin and the captured output are memfds: no pipe to fill up and deadlock on, however
        // much the hook writes or however little of its stdin it reads.
        let mut stdin = memfd("reevec-hook-state").map_err(io("memfd_create"))?;
        stdin.write_all(state).map_err(io("write state"))?;
        stdin.rewind().map_err(io("seek state"))?;
        let mut output = memfd("reevec-hook-output").map_err(io("memfd_create"))?;
        let out2 = output.try_clone().map_err(io("dup"))?;
        let mut cmd = std::process::Command::new(&self.path);
        if let Some((argv0, rest)) = self.args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
        cmd.env_clear()
            .envs(self.env.iter().filter_map(|kv| kv.split_once('=')))
            .stdin(std::process::Stdio::from(OwnedFd::from(stdin)))
            .stdout(std::process::Stdio::from(OwnedFd::from(
                out2.try_clone().map_err(io("dup"))?,
            )))
            .stderr(std::process::Stdio::from(OwnedFd::from(out2)));
        let mut child = cmd.spawn().map_err(io("spawn"))?;
        let pidfd = crate::process::pidfd_open(child.id() as i32).ok();
        let finished = match (self.timeout, &pidfd) {
            (Some(t), Some(fd)) => crate::process::pidfd_exited(
                fd.as_fd(),
                i32::try_from(t.as_millis()).unwrap_or(i32::MAX),
            ),
            _ => true,
        };
        if !finished {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                phase,
                path: self.path.clone(),
                secs: self.timeout.map(|t| t.as_secs()).unwrap_or(0),
                output: captured(&mut output),
            });
        }
        let status = child.wait().map_err(io("wait"))?;
        if status.success() {
            return Ok(());
        }
        Err(HookError::Failed {
            phase,
            path: self.path.clone(),
            status: status.to_string(),
            output: captured(&mut output),
        })
    }
}

/// The OCI state JSON a hook reads on stdin.
pub fn state_json(state: &crate::state::OciState<'_>) -> Vec<u8> {
    // Plain strings, numbers and a string map: serializing cannot fail.
    serde_json::to_vec(state).unwrap_or_default()
}

/// An anonymous, close-on-exec memory file.
fn memfd(name: &str) -> std::io::Result<std::fs::File> {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
    Ok(std::fs::File::from(fd))
}

/// The hook's output, trimmed and bounded, as a suffix for an error message.
fn captured(f: &mut std::fs::File) -> String {
    let mut buf = Vec::new();
    if f.rewind().is_err() || f.take(OUTPUT_LIMIT as u64).read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(json: &str) -> Result<Hooks, HookError> {
        let h: oci_spec::runtime::Hooks = serde_json::from_str(json).expect("hooks json");
        Hooks::from_spec(Some(&h))
    }

    #[test]
    fn phases_are_read_in_order_with_their_fields() {
        let h = hooks(
            r#"{"prestart":[{"path":"/bin/a","args":["a","-x"],"env":["K=V"],"timeout":3}],
                "poststop":[{"path":"/bin/b"},{"path":"/bin/c"}]}"#,
        )
        .expect("valid");
        assert_eq!(h.of(Phase::Prestart).len(), 1);
        let a = &h.of(Phase::Prestart)[0];
        assert_eq!(a.args, vec!["a", "-x"]);
        assert_eq!(a.env, vec!["K=V"]);
        assert_eq!(a.timeout, Some(Duration::from_secs(3)));
        assert_eq!(h.of(Phase::Poststop).len(), 2);
        assert!(!h.has(Phase::CreateRuntime));
        assert!(Hooks::from_spec(None)
            .expect("none")
            .of(Phase::Poststart)
            .is_empty());
    }

    #[test]
    fn relative_paths_and_bad_timeouts_are_refused_with_the_phase() {
        let e = hooks(r#"{"createRuntime":[{"path":"bin/x"}]}"#).expect_err("relative");
        assert!(
            e.to_string().contains("createRuntime hook \"bin/x\""),
            "{e}"
        );
        let e = hooks(r#"{"poststart":[{"path":"/x","timeout":0}]}"#).expect_err("timeout");
        assert!(e.to_string().contains("poststart hook /x: timeout"), "{e}");
    }

    fn sh(script: &str, timeout: Option<u64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["HOOK_ENV=yes".into()],
            timeout: timeout.map(Duration::from_secs),
        }
    }

    #[test]
    fn a_hook_gets_the_state_on_stdin_and_only_its_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let script = format!(
            "cat > {o}; echo \"env=$HOOK_ENV home=${{HOME:-unset}}\" >> {o}",
            o = out.display()
        );
        sh(&script, Some(5))
            .run(Phase::CreateRuntime, br#"{"id":"c1"}"#)
            .expect("hook ran");
        let got = std::fs::read_to_string(&out).expect("output");
        assert_eq!(got, "{\"id\":\"c1\"}env=yes home=unset\n");
    }

    #[test]
    fn a_failing_hook_reports_its_status_and_output() {
        let e = sh("echo cannot attach network >&2; exit 3", None)
            .run(Phase::Prestart, b"{}")
            .expect_err("fails");
        let msg = e.to_string();
        assert!(
            msg.starts_with("prestart hook /bin/sh failed (exit status: 3)"),
            "{msg}"
        );
        assert!(msg.ends_with(": cannot attach network"), "{msg}");
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed() {
        let t0 = std::time::Instant::now();
        let e = sh("sleep 30", Some(1))
            .run(Phase::CreateContainer, b"{}")
            .expect_err("times out");
        assert!(matches!(e, HookError::Timeout { secs: 1, .. }), "{e}");
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the hook was not killed"
        );
    }

    #[test]
    fn warning_phases_run_every_hook_and_succeed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mark = dir.path().join("second-ran");
        let h = Hooks {
            by_phase: vec![(
                Phase::Poststop,
                vec![
                    sh("exit 1", None),
                    sh(&format!("touch {}", mark.display()), None),
                ],
            )],
        };
        h.run(Phase::Poststop, b"{}").expect("poststop only warns");
        assert!(mark.exists());
        let h = Hooks {
            by_phase: vec![(Phase::CreateRuntime, vec![sh("exit 1", None)])],
        };
        assert!(h.run(Phase::CreateRuntime, b"{}").is_err());
    }
}
