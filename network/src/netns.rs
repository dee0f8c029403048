//! Network namespaces: naming one (by pid, path or fd) and running code inside it.
//!
//! Entering a network namespace with `setns(2)` only changes the calling *thread*, so
//! [`run_in`] does it on a dedicated short-lived thread; sockets created there (netlink,
//! TCP listeners) stay bound to that namespace after the thread ends.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};

/// Errors of opening or entering a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("open network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("setns(CLONE_NEWNET) into {what}: {errno}")]
    Setns { what: String, errno: nix::Error },
    #[error("unshare(CLONE_NEWNET): {0}")]
    Unshare(nix::Error),
    #[error("spawn thread to enter network namespace {what}: {source}")]
    Thread {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("thread inside network namespace {0} panicked")]
    Panicked(String),
}

/// A network namespace: a process's (`/proc/<pid>/ns/net`), a bind-mounted path
/// (`/run/netns/x`), or an already open descriptor.
#[derive(Debug)]
pub enum NetnsRef {
    Pid(i32),
    Path(PathBuf),
    Fd(OwnedFd),
}

impl NetnsRef {
    /// Opens a descriptor for the namespace (for `Fd`, a duplicate).
    pub fn open(&self) -> Result<OwnedFd, NetnsError> {
        let path = match self {
            NetnsRef::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            NetnsRef::Path(p) => p.clone(),
            NetnsRef::Fd(fd) => {
                return fd.try_clone().map_err(|source| NetnsError::Open {
                    path: PathBuf::from(format!("fd {fd:?}")),
                    source,
                })
            }
        };
        File::open(&path)
            .map(OwnedFd::from)
            .map_err(|source| NetnsError::Open { path, source })
    }

    fn describe(&self) -> String {
        match self {
            NetnsRef::Pid(pid) => format!("/proc/{pid}/ns/net"),
            NetnsRef::Path(p) => p.display().to_string(),
            NetnsRef::Fd(fd) => format!("{fd:?}"),
        }
    }
}

/// The calling thread's current network namespace, as a descriptor.
pub fn current() -> Result<OwnedFd, NetnsError> {
    let path = PathBuf::from("/proc/thread-self/ns/net");
    File::open(&path)
        .map(OwnedFd::from)
        .map_err(|source| NetnsError::Open { path, source })
}

/// Runs `f` on a new thread that first enters the namespace `ns`; returns `f`'s result.
pub fn run_in<T, F>(ns: &NetnsRef, f: F) -> Result<T, NetnsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let fd = ns.open()?;
    run_in_fd(fd.as_fd(), &ns.describe(), f)
}

/// Like [`run_in`] with a borrowed namespace descriptor.
pub fn run_in_fd<T, F>(fd: BorrowedFd<'_>, what: &str, f: F) -> Result<T, NetnsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("reeve-netns".into())
            .spawn_scoped(s, move || {
                setns(fd, CloneFlags::CLONE_NEWNET).map_err(|errno| NetnsError::Setns {
                    what: what.to_string(),
                    errno,
                })?;
                Ok(f())
            })
            .map_err(|source| NetnsError::Thread {
                what: what.to_string(),
                source,
            })?;
        handle
            .join()
            .map_err(|_| NetnsError::Panicked(what.to_string()))?
    })
}

/// Creates a new, empty network namespace and returns a descriptor holding it alive
/// (done on a throwaway thread, so the caller's namespace is unchanged).
pub fn create() -> Result<OwnedFd, NetnsError> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("reeve-netns-new".into())
            .spawn_scoped(s, || {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
                current()
            })
            .map_err(|source| NetnsError::Thread {
                what: "new".into(),
                source,
            })?;
        handle
            .join()
            .map_err(|_| NetnsError::Panicked("new".to_string()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_missing_pid_names_the_path() {
        let e = NetnsRef::Pid(i32::MAX).open().unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("/proc/{}/ns/net", i32::MAX)),
            "{e}"
        );
    }

    #[test]
    fn run_in_own_namespace_returns_value() {
        // Entering the namespace we are already in needs CAP_SYS_ADMIN; skip when unprivileged.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let me = NetnsRef::Fd(current().unwrap());
        assert_eq!(run_in(&me, || 41 + 1).unwrap(), 42);
    }
}
