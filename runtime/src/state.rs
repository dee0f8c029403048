//! The runtime's on-disk state: one directory per container under `--root`
//! (default `/run/reevec`), holding `state.json`, the start socket and a lock.
//!
//! Status is derived, never trusted from the file alone: `created` while the init process
//! lives and its start socket exists, `running` while it lives after start, `stopped` once the
//! recorded pid is gone, a zombie, or a different process (start time mismatch).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::process;

/// Errors of the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container id {0:?} is invalid: use 1-1024 characters of [A-Za-z0-9_+.-], not starting with '.'")]
    InvalidId(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container with id {0} already exists")]
    Exists(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("flock {path}: {errno}")]
    Lock {
        path: PathBuf,
        errno: nix::errno::Errno,
    },
}

/// OCI container status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What `state.json` holds. The OCI state fields come first; the rest is the runtime's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(default)]
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
    /// Root filesystem of the container, absolute.
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// Init's start time in clock ticks since boot: with `pid`, its identity.
    #[serde(default)]
    pub init_start_time: u64,
    /// Absolute cgroup directory of the container, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<PathBuf>,
    /// The systemd scope that owns `cgroup`, with the systemd cgroup driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// Whether the container has its own pid namespace (kill of init then kills everything).
    #[serde(default)]
    pub own_pid_ns: bool,
    #[serde(default)]
    pub owner: String,
    /// The hooks that run after `create` (poststart, poststop), kept from the config.json read
    /// at create: the bundle may change or vanish afterwards.
    #[serde(default, skip_serializing_if = "crate::hooks::Hooks::is_empty")]
    pub hooks: crate::hooks::Hooks,
}

/// The OCI runtime-spec state, as printed by `reevec state`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: &'a std::collections::HashMap<String, String>,
}

impl State {
    pub fn oci(&self) -> OciState<'_> {
        OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            status: self.status,
            pid: if self.status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }

    /// Whether the recorded init process is still the same, live process.
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        matches!(process::stat(self.pid), Ok((start, zombie)) if !zombie && start == self.init_start_time)
    }
}

/// Validate a container id as runc does.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// The state root (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
}

/// The file names inside a container's directory.
pub const STATE_FILE: &str = "state.json";
/// The config.json read at `create`, as the container was made from it: `exec` takes the
/// container's process and seccomp profile from here, never from the bundle again.
pub const SPEC_FILE: &str = "config.json";
/// The socket the created init waits on until `start`.
pub const START_SOCKET: &str = "start.sock";
const LOCK_FILE: &str = "lock";

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Root { path: path.into() }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    fn ensure(&self) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.path).map_err(|source| StateError::Io {
            op: "mkdir",
            path: self.path.clone(),
            source,
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| StateError::Io {
                op: "chmod",
                path: self.path.clone(),
                source,
            },
        )
    }

    /// Create a new container directory (mode 0700) and lock it. Fails if the id exists.
    pub fn create(&self, id: &str) -> Result<(PathBuf, Lock), StateError> {
        validate_id(id)?;
        self.ensure()?;
        let dir = self.dir(id);
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()))
            }
            Err(source) => {
                return Err(StateError::Io {
                    op: "mkdir",
                    path: dir,
                    source,
                })
            }
        }
        let lock = Lock::take(&dir)?;
        Ok((dir, lock))
    }

    /// The container's config.json as it was at `create`.
    pub fn spec_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(SPEC_FILE)
    }

    /// Lock an existing container directory.
    pub fn lock(&self, id: &str) -> Result<Lock, StateError> {
        validate_id(id)?;
        let dir = self.dir(id);
        if !dir.join(STATE_FILE).exists() {
            return Err(StateError::NotFound(id.to_string()));
        }
        Lock::take(&dir)
    }

    /// Load a container's state with its status refreshed from the live system.
    pub fn load(&self, id: &str) -> Result<State, StateError> {
        validate_id(id)?;
        let path = self.dir(id).join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.to_string()))
            }
            Err(source) => {
                return Err(StateError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        };
        let mut state: State =
            serde_json::from_str(&text).map_err(|source| StateError::Parse { path, source })?;
        self.refresh(&mut state);
        Ok(state)
    }

    /// Derive the live status.
    pub fn refresh(&self, state: &mut State) {
        if state.status == Status::Creating {
            return;
        }
        if !state.init_alive() {
            state.status = Status::Stopped;
            return;
        }
        if let Some(cg) = &state.cgroup {
            if crate::cgroups::Manager::at(cg).is_frozen().unwrap_or(false) {
                state.status = Status::Paused;
                return;
            }
        }
        state.status = if self.dir(&state.id).join(START_SOCKET).exists() {
            Status::Created
        } else {
            Status::Running
        };
    }

    /// Write state.json atomically.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let dir = self.dir(&state.id);
        let tmp = dir.join(".state.json.tmp");
        let path = dir.join(STATE_FILE);
        let data = serde_json::to_vec(state).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        let io = |op, p: &Path| {
            let p = p.to_path_buf();
            move |source| StateError::Io {
                op,
                path: p,
                source,
            }
        };
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&data).map_err(io("write", &tmp))?;
        drop(f);
        replace_atomically(&tmp, &path).map_err(io("rename", &path))
    }

    /// Remove a container's directory.
    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                op: "remove",
                path: dir,
                source,
            }),
        }
    }

    /// Every container id under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let rd = match std::fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Io {
                    op: "readdir",
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Put `tmp` in place of `path` atomically: readers always see a whole file, the old or the new.
///
/// A plain rename over an existing file makes ext4 (auto_da_alloc) start writeback of the new
/// file's data, and replacing or unlinking a file whose writeback is in flight then waits for the
/// disk: 1.5-2.5 ms per state update on the development VMs, on the critical path of every
/// `run`. RENAME_EXCHANGE swaps the two names just as atomically without that flush; the old
/// contents, now at `tmp`, are unlinked. Callers hold the container lock, so `tmp` is theirs.
fn replace_atomically(tmp: &Path, path: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, tmp, CWD, path, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::EXIST) => {}
        // A filesystem without renameat2 flags: the plain rename is just as atomic.
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
            return std::fs::rename(tmp, path)
        }
        Err(e) => return Err(e.into()),
    }
    match renameat_with(CWD, tmp, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => std::fs::remove_file(tmp),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => std::fs::rename(tmp, path),
        Err(e) => Err(e.into()),
    }
}

/// An exclusive flock on a container's directory, serializing verbs on one container.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    fn take(dir: &Path) -> Result<Lock, StateError> {
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StateError::Io {
                op: "open",
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(StateError::Lock {
                path,
                errno: nix::errno::Errno::last(),
            });
        }
        Ok(Lock { file })
    }

    /// The lock's fd: a child forked while the lock is held must close its copy, or the lock
    /// lives as long as the child.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// RFC 3339 UTC timestamp with nanoseconds, without a date crate.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        for ok in ["a", "tenant-1", "a.b_c+d", "X9"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "..", ".hidden", "a/b", "a b", "a\0b", &"x".repeat(1025)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn create_twice_fails_and_state_roundtrips() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = Root::new(tmp.path().join("root"));
        let (_dir, lock) = root.create("c1").expect("create");
        drop(lock);
        assert!(matches!(root.create("c1"), Err(StateError::Exists(_))));
        let st = State {
            oci_version: "1.2.0".into(),
            id: "c1".into(),
            status: Status::Created,
            pid: i32::MAX,
            bundle: "/b".into(),
            annotations: Default::default(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            init_start_time: 1,
            cgroup: None,
            own_pid_ns: true,
            owner: String::new(),
            hooks: Default::default(),
            systemd_unit: None,
        };
        root.save(&st).expect("save");
        let loaded = root.load("c1").expect("load");
        assert_eq!(loaded.status, Status::Stopped, "dead pid means stopped");
        assert_eq!(loaded.oci().pid, 0);
        assert_eq!(root.ids().expect("ids"), vec!["c1".to_string()]);
        root.remove("c1").expect("remove");
        assert!(matches!(root.load("c1"), Err(StateError::NotFound(_))));
    }

    #[test]
    fn save_replaces_the_state_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = Root::new(tmp.path());
        let (dir, _lock) = root.create("c2").expect("create");
        let mut st = State {
            oci_version: "1.2.0".into(),
            id: "c2".into(),
            status: Status::Creating,
            pid: 0,
            bundle: "/b".into(),
            annotations: Default::default(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            init_start_time: 0,
            cgroup: None,
            own_pid_ns: false,
            owner: String::new(),
            hooks: Default::default(),
            systemd_unit: None,
        };
        root.save(&st).expect("first save");
        st.pid = 4242;
        st.status = Status::Created;
        root.save(&st).expect("second save");
        st.init_start_time = 7;
        root.save(&st).expect("third save");
        let text = std::fs::read_to_string(dir.join(STATE_FILE)).expect("read");
        let back: State = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, st);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("readdir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec![LOCK_FILE.to_string(), STATE_FILE.to_string()]);
    }

    #[test]
    fn live_process_with_start_socket_is_created_then_running() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = Root::new(tmp.path());
        let (dir, _lock) = root.create("live").expect("create");
        let me = std::process::id() as i32;
        let (start, _) = process::stat(me).expect("stat");
        let mut st = State {
            oci_version: "1.2.0".into(),
            id: "live".into(),
            status: Status::Created,
            pid: me,
            bundle: "/b".into(),
            annotations: Default::default(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            init_start_time: start,
            cgroup: None,
            own_pid_ns: true,
            owner: String::new(),
            hooks: Default::default(),
            systemd_unit: None,
        };
        std::fs::write(dir.join(START_SOCKET), b"").expect("touch");
        root.refresh(&mut st);
        assert_eq!(st.status, Status::Created);
        std::fs::remove_file(dir.join(START_SOCKET)).expect("rm");
        root.refresh(&mut st);
        assert_eq!(st.status, Status::Running);
        st.init_start_time += 1;
        root.refresh(&mut st);
        assert_eq!(st.status, Status::Stopped, "a recycled pid is not our init");
    }

    #[test]
    fn rfc3339_has_the_right_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
