//! The OCI runtime as an exec'd helper: `reevec` (or runc, or crun) run through
//! `std::process::Command` for each verb.
//!
//! This is how reeved avoids forking from its multithreaded (tokio) process: every clone of a
//! sandbox happens in a freshly exec'd, single-threaded runtime process. The same code drives
//! any OCI CLI with runc's verbs, so every tenant can be cross-checked under runc.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How long one runtime verb may take before the runtime is deemed hung and killed. Generous:
/// on a loaded machine (many tenants starting at once, or a slow VM) a healthy `runc create`
/// can take tens of seconds, and killing it only makes the next attempt start from scratch
/// under the same load.
pub const VERB_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors of driving the runtime.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("run {binary} {verb}: {source}")]
    Spawn {
        binary: PathBuf,
        verb: String,
        source: std::io::Error,
    },
    #[error("{binary} {verb} {id} failed ({status}): {stderr}")]
    Failed {
        binary: PathBuf,
        verb: String,
        id: String,
        status: String,
        stderr: String,
    },
    #[error("{binary} {verb} {id} took longer than {secs} s and was killed")]
    Timeout {
        binary: PathBuf,
        verb: String,
        id: String,
        secs: u64,
    },
    #[error("parse the output of {binary} {verb}: {source}")]
    Parse {
        binary: PathBuf,
        verb: String,
        source: serde_json::Error,
    },
    #[error("read pid file {path}: {source}")]
    PidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no OCI runtime: {0}")]
    NotFound(String),
}

/// The part of the OCI state reeved uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OciState {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub pid: i32,
}

/// An OCI runtime CLI with its state root.
#[derive(Debug, Clone)]
pub struct Oci {
    pub binary: PathBuf,
    /// `--root` of the runtime.
    pub root: PathBuf,
    /// Global flags given before each verb (e.g. `--cgroup-manager disabled`).
    pub global: Vec<String>,
}

/// Find `reevec`: next to the running executable, else on PATH.
pub fn find_builtin() -> Result<PathBuf, BackendError> {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("reevec");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("reevec");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(BackendError::NotFound(
        "reevec is neither next to reeved nor on PATH (set runtime = \"/path/to/runtime\")".into(),
    ))
}

/// Whether `binary` is reevec (which alone has a cgroup-less mode).
pub fn is_reevec(binary: &Path) -> bool {
    binary.file_name().is_some_and(|n| n == "reevec")
}

/// reeved's sealed copies of reevec (`reeve_runtime::exe_seal::sealed_copy`), one per binary,
/// made on first use and kept for the life of the process; `None` marks a binary that could
/// not be sealed (it then seals itself on every call, as when run by hand).
static SEALED: Mutex<Vec<(PathBuf, Option<OwnedFd>)>> = Mutex::new(Vec::new());

/// The program to exec for `binary`: for reevec, its sealed in-memory copy, named through this
/// process's fd table (`/proc/<reeved>/fd/<n>`, which the forked child can still open while
/// reeved waits for it). reevec sees that it already runs from a sealed memfd and skips its own
/// copy and re-exec (CVE-2019-5736), which is a large part of each call's cost. Other runtimes
/// (runc) are run from disk: they have their own protection and their own checks of it.
fn sealed_program(binary: &Path) -> Option<PathBuf> {
    if !is_reevec(binary) {
        return None;
    }
    let mut copies = SEALED.lock().ok()?;
    let fd = match copies.iter().position(|(p, _)| p == binary) {
        Some(i) => copies[i].1.as_ref()?.as_raw_fd(),
        None => match reeve_runtime::exe_seal::sealed_copy(binary) {
            Ok(fd) => {
                let raw = fd.as_raw_fd();
                copies.push((binary.to_path_buf(), Some(fd)));
                raw
            }
            Err(e) => {
                tracing::warn!(
                    "a sealed copy of {}: {e}; running it from disk (it seals itself)",
                    binary.display()
                );
                copies.push((binary.to_path_buf(), None));
                return None;
            }
        },
    };
    Some(PathBuf::from(format!(
        "/proc/{}/fd/{fd}",
        std::process::id()
    )))
}

/// Wait for `child` to exit until `deadline` (`None` past it). Sleeps in poll(2) on a pidfd, so
/// the exit is seen at once instead of at the next tick of a sleep loop (two runtime calls per
/// tenant start, hundreds of tenants at boot); falls back to 5 ms ticks without pidfd_open.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    // Our own child is not reaped (so its pid not recycled) before try_wait reports it.
    let pidfd = reeve_runtime::process::pidfd_open(child.id() as i32).ok();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let left = (deadline - now).min(Duration::from_secs(1));
        match &pidfd {
            // A timeout or EINTR just loops back to try_wait.
            Some(fd) => {
                reeve_runtime::process::pidfd_exited(fd.as_fd(), left.as_millis().max(1) as i32);
            }
            None => std::thread::sleep(left.min(Duration::from_millis(5))),
        }
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

impl Oci {
    fn command(&self, verb: &str) -> Command {
        let mut c = match sealed_program(&self.binary) {
            Some(sealed) => {
                let mut c = Command::new(sealed);
                c.arg0(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        c.arg("--root").arg(&self.root);
        c.args(&self.global);
        c.arg(verb);
        c.stdin(Stdio::null());
        // A process group of its own: a Ctrl-C on the terminal (or `timeout`) signals reeved's
        // whole group, and a runtime call caught by it would die half-way (a `kill` never sent,
        // a `create` torn down). reeved itself turns that signal into an orderly stop.
        c.process_group(0);
        c
    }

    fn err_failed(&self, verb: &str, id: &str, status: String, stderr: String) -> BackendError {
        BackendError::Failed {
            binary: self.binary.clone(),
            verb: verb.to_string(),
            id: id.to_string(),
            status,
            stderr,
        }
    }

    /// Run `cmd` (stdout and stderr captured) with a timeout; Ok(stdout) when it exits 0.
    fn run(&self, verb: &str, id: &str, mut cmd: Command) -> Result<Vec<u8>, BackendError> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = self.wait(verb, id, cmd, true)?;
        Ok(out)
    }

    fn wait(
        &self,
        verb: &str,
        id: &str,
        mut cmd: Command,
        captured: bool,
    ) -> Result<Vec<u8>, BackendError> {
        let mut child = cmd.spawn().map_err(|source| BackendError::Spawn {
            binary: self.binary.clone(),
            verb: verb.to_string(),
            source,
        })?;
        let readers = if captured {
            match (child.stdout.take(), child.stderr.take()) {
                (Some(o), Some(e)) => Some((read_all(o), read_all(e))),
                _ => None,
            }
        } else {
            None
        };
        let deadline = Instant::now() + VERB_TIMEOUT;
        let status = match wait_until(&mut child, deadline) {
            Ok(Some(s)) => s,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BackendError::Timeout {
                    binary: self.binary.clone(),
                    verb: verb.to_string(),
                    id: id.to_string(),
                    secs: VERB_TIMEOUT.as_secs(),
                });
            }
            Err(source) => {
                return Err(BackendError::Spawn {
                    binary: self.binary.clone(),
                    verb: verb.to_string(),
                    source,
                })
            }
        };
        let (stdout, stderr) = match readers {
            Some((o, e)) => (o.join().unwrap_or_default(), e.join().unwrap_or_default()),
            None => (Vec::new(), Vec::new()),
        };
        if status.success() {
            Ok(stdout)
        } else {
            Err(self.err_failed(
                verb,
                id,
                status.to_string(),
                String::from_utf8_lossy(&stderr).trim().to_string(),
            ))
        }
    }

    /// `create <id> --bundle B --pid-file F`, the sandbox's stdout and stderr going to `log`
    /// (the runtime's own messages too). Returns the init's pid.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        log: &File,
    ) -> Result<i32, BackendError> {
        let _ = std::fs::remove_file(pid_file);
        let mut cmd = self.command("create");
        cmd.arg(id)
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file);
        let dup = |f: &File| {
            f.try_clone().map_err(|source| BackendError::Spawn {
                binary: self.binary.clone(),
                verb: "create".into(),
                source,
            })
        };
        cmd.stdout(dup(log)?).stderr(dup(log)?);
        self.wait("create", id, cmd, false).map_err(|e| match e {
            BackendError::Failed {
                binary,
                verb,
                id,
                status,
                ..
            } => BackendError::Failed {
                binary,
                verb,
                id,
                status,
                stderr: "its messages are in the tenant's log".into(),
            },
            other => other,
        })?;
        let text = std::fs::read_to_string(pid_file).map_err(|source| BackendError::PidFile {
            path: pid_file.to_path_buf(),
            source,
        })?;
        text.trim().parse().map_err(|_| BackendError::PidFile {
            path: pid_file.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{text:?} is not a pid"),
            ),
        })
    }

    pub fn start(&self, id: &str) -> Result<(), BackendError> {
        let mut c = self.command("start");
        c.arg(id);
        self.run("start", id, c).map(drop)
    }

    /// The state of `id`; None when the runtime does not know it.
    pub fn state(&self, id: &str) -> Result<Option<OciState>, BackendError> {
        let mut c = self.command("state");
        c.arg(id);
        match self.run("state", id, c) {
            Ok(out) => {
                serde_json::from_slice(&out)
                    .map(Some)
                    .map_err(|source| BackendError::Parse {
                        binary: self.binary.clone(),
                        verb: "state".into(),
                        source,
                    })
            }
            Err(BackendError::Failed { stderr, .. })
                if stderr.contains("does not exist") || stderr.contains("not found") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub fn kill(&self, id: &str, signal: &str) -> Result<(), BackendError> {
        let mut c = self.command("kill");
        c.arg(id).arg(signal);
        self.run("kill", id, c).map(drop)
    }

    /// `delete --force`: kill if needed and forget; fine when the container does not exist.
    pub fn delete_force(&self, id: &str) -> Result<(), BackendError> {
        let mut c = self.command("delete");
        c.arg("--force").arg(id);
        match self.run("delete", id, c) {
            Ok(_) => Ok(()),
            Err(BackendError::Failed { stderr, .. }) if stderr.contains("does not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `list --format json`.
    pub fn list(&self) -> Result<Vec<OciState>, BackendError> {
        let mut c = self.command("list");
        c.arg("--format").arg("json");
        let out = self.run("list", "", c)?;
        let text = String::from_utf8_lossy(&out);
        if text.trim().is_empty() || text.trim() == "null" {
            return Ok(Vec::new());
        }
        serde_json::from_str(&text).map_err(|source| BackendError::Parse {
            binary: self.binary.clone(),
            verb: "list".into(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reevec_runs_from_one_sealed_copy_and_others_from_disk() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("reevec");
        std::fs::write(&bin, "#!/bin/sh\necho \"sealed $0 $*\"\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let first = sealed_program(&bin).expect("a sealed copy");
        assert!(first.starts_with(format!("/proc/{}/fd", std::process::id())));
        assert_eq!(
            sealed_program(&bin),
            Some(first.clone()),
            "one copy per binary"
        );
        let f = File::open(&first).unwrap();
        // SAFETY: fcntl on an fd we own.
        let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
        assert!(seals & libc::F_SEAL_WRITE != 0, "seals {seals:#x}");
        assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&bin).unwrap());
        // The copy is what runs, under the binary's name; the file on disk can change freely.
        let oci = Oci {
            binary: bin.clone(),
            root: dir.path().join("root"),
            global: vec![],
        };
        std::fs::write(&bin, "#!/bin/sh\necho disk\n").unwrap();
        let out = oci.run("state", "x", oci.command("state")).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("sealed "), "{out}");
        assert!(out.contains("state"), "{out}");
        assert_eq!(sealed_program(Path::new("/usr/sbin/runc")), None);
    }

    #[test]
    fn runtime_calls_run_in_a_process_group_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let oci = fake(
            dir.path(),
            r#"[ "$(cut -d' ' -f5 /proc/$$/stat)" = "$$" ] && echo own-group || echo shared-group"#,
        );
        let out = oci.run("state", "x", oci.command("state")).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim(), "own-group");
    }

    #[test]
    fn wait_until_sees_the_exit_or_the_deadline() {
        let mut c = Command::new("/bin/sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let s = wait_until(&mut c, Instant::now() + Duration::from_secs(60)).unwrap();
        assert_eq!(s.and_then(|s| s.code()), Some(3));
        let mut c = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let s = wait_until(&mut c, Instant::now() + Duration::from_millis(50)).unwrap();
        assert!(s.is_none());
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// A fake runtime: a shell script that records its argv and answers like runc.
    fn fake(dir: &Path, body: &str) -> Oci {
        let p = dir.join("fake-runtime");
        write_executable(
            &p,
            &format!("#!/bin/sh\necho \"$@\" >> {}/argv\n{body}\n", dir.display()),
        );
        Oci {
            binary: p,
            root: dir.join("root"),
            global: vec!["--cgroup-manager".into(), "disabled".into()],
        }
    }

    /// Write an executable script through a child process. Had this test process opened it for
    /// writing, a concurrent test's fork would inherit that fd until its exec, and running the
    /// script in that window fails with ETXTBSY ("Text file busy").
    fn write_executable(path: &Path, content: &str) {
        use std::io::Write;
        let mut c = Command::new("/bin/sh")
            .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
            .arg(path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success(), "writing {}", path.display());
    }

    #[test]
    fn verbs_and_argv() {
        let t = tempfile::tempdir().unwrap();
        let oci = fake(
            t.path(),
            r#"shift 4
case "$1" in
state) if [ "$2" = gone ]; then echo "container gone does not exist" >&2; exit 1; fi
       echo '{"ociVersion":"1.2.0","id":"'$2'","status":"running","pid":42,"bundle":"/b"}';;
create) echo 4242 > "$6"; echo "runtime says hi";;
list) echo '[{"id":"a","status":"stopped","pid":0}]';;
kill) [ "$3" = SIGTERM ] || { echo "bad signal" >&2; exit 3; };;
delete) [ "$3" = gone ] && { echo "container gone does not exist" >&2; exit 1; };;
esac
exit 0"#,
        );
        let st = oci.state("x").unwrap().unwrap();
        assert_eq!(
            (st.id.as_str(), st.status.as_str(), st.pid),
            ("x", "running", 42)
        );
        assert_eq!(oci.state("gone").unwrap(), None);
        let log = File::create(t.path().join("log")).unwrap();
        let pid = oci
            .create("x", Path::new("/bundle"), &t.path().join("pid"), &log)
            .unwrap();
        assert_eq!(pid, 4242);
        assert_eq!(
            std::fs::read_to_string(t.path().join("log")).unwrap(),
            "runtime says hi\n"
        );
        oci.kill("x", "SIGTERM").unwrap();
        let e = oci.kill("x", "SIGKILL").unwrap_err().to_string();
        assert!(e.contains("bad signal") && e.contains("kill x"), "{e}");
        oci.delete_force("gone").unwrap();
        assert_eq!(oci.list().unwrap()[0].status, "stopped");
        let argv = std::fs::read_to_string(t.path().join("argv")).unwrap();
        let root = t.path().join("root");
        let first = argv.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                "--root {} --cgroup-manager disabled state x",
                root.display()
            )
        );
        assert!(argv.contains(&format!(
            "create x --bundle /bundle --pid-file {}",
            t.path().join("pid").display()
        )));
        assert!(argv.contains("delete --force gone"));
    }

    #[test]
    fn create_failure_and_bad_pid_file() {
        let t = tempfile::tempdir().unwrap();
        let oci = fake(
            t.path(),
            r#"shift 4; [ "$1" = create ] && [ "$2" = bad ] && exit 1; echo nope > "$6""#,
        );
        let log = File::create(t.path().join("log")).unwrap();
        let pidf = t.path().join("pid");
        assert!(matches!(
            oci.create("bad", Path::new("/b"), &pidf, &log),
            Err(BackendError::Failed { .. })
        ));
        assert!(matches!(
            oci.create("ok", Path::new("/b"), &pidf, &log),
            Err(BackendError::PidFile { .. })
        ));
    }

    #[test]
    fn reevec_detection() {
        assert!(is_reevec(Path::new("/usr/local/bin/reevec")));
        assert!(!is_reevec(Path::new("/usr/sbin/runc")));
    }
}
