//! `kill` and `delete`: signalling a container's processes through pidfds (never a bare pid that
//! may have been recycled) and removing a stopped container.

use std::os::fd::AsFd;
use std::path::PathBuf;

use super::cgroup;
use crate::hooks::Phase;
use crate::process;
use crate::state::{self, Root, State, Status};

/// Errors of `kill` and `delete`.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error(transparent)]
    State(#[from] state::StateError),
    /// containerd's shim matches "container not running" (and runc says exactly that).
    #[error("cannot signal container {0}: container not running")]
    NotRunning(String),
    #[error("cannot delete container {id} that is not stopped: {status} (use --force)")]
    NotStopped { id: String, status: Status },
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error("container {id}: init (pid {pid}) did not exit within {secs}s of SIGKILL")]
    Timeout { id: String, pid: i32, secs: u64 },
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupSetupError),
    #[error("read {path}: {source}")]
    Proc {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A pidfd on the container's init, verified to be the same process as recorded.
fn init_pidfd(st: &State) -> Result<Option<std::os::fd::OwnedFd>, SignalError> {
    if st.pid <= 0 {
        return Ok(None);
    }
    let fd = match process::pidfd_open(st.pid) {
        Ok(fd) => fd,
        Err(_) => return Ok(None),
    };
    // The pidfd pins the process: if the start time still matches now, it is our init.
    Ok(st.init_alive().then_some(fd))
}

/// Every host pid of the container: its cgroup's, or the processes in its pid namespace.
pub fn pids(st: &State) -> Result<Vec<i32>, SignalError> {
    if let Some(cg) = &st.cgroup {
        return Ok(cgroup::pids(cg)?);
    }
    if !st.init_alive() {
        return Ok(Vec::new());
    }
    if !st.own_pid_ns {
        return Ok(vec![st.pid]);
    }
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(target) = ns_of(&st.pid.to_string()) else {
        return Ok(Vec::new());
    };
    let rd = std::fs::read_dir("/proc").map_err(|source| SignalError::Proc {
        path: "/proc".into(),
        source,
    })?;
    let mut out: Vec<i32> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| ns_of(&pid.to_string()).as_ref() == Some(&target))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Send `signal` to the init, or with `all` to every process of the container. A container
/// whose init is gone is "not running", except for `all`, which then has nothing left to
/// signal and succeeds, as runc 1.1 does (containerd's shim sends `kill --all` to containers
/// that already exited and waits for it to succeed).
pub fn kill(root: &Root, id: &str, signal: i32, all: bool) -> Result<(), SignalError> {
    let st = root.load(id)?;
    let gone = || {
        if all {
            Ok(())
        } else {
            Err(SignalError::NotRunning(id.to_string()))
        }
    };
    if matches!(st.status, Status::Stopped | Status::Creating) {
        return gone();
    }
    let Some(fd) = init_pidfd(&st)? else {
        return gone();
    };
    if all {
        for pid in pids(&st)? {
            if pid == st.pid {
                continue;
            }
            if let Ok(pfd) = process::pidfd_open(pid) {
                // A process may exit between listing and signalling: ESRCH is fine.
                let _ = process::pidfd_send_signal(pfd.as_fd(), pid, signal);
            }
        }
    }
    match process::pidfd_send_signal(fd.as_fd(), st.pid, signal) {
        Err(process::ProcessError::Signal {
            errno: nix::errno::Errno::ESRCH,
            ..
        }) => gone(),
        r => Ok(r?),
    }
}

/// Kill everything in the container and wait until init has exited.
fn kill_and_wait(st: &State) -> Result<(), SignalError> {
    if let Some(cg) = &st.cgroup {
        cgroup::kill(cg)?;
    }
    if let Some(fd) = init_pidfd(st)? {
        if st.own_pid_ns {
            // SIGKILL of a pid namespace's init kills every process in it.
            let _ = process::pidfd_send_signal(fd.as_fd(), st.pid, libc::SIGKILL);
        } else {
            for pid in pids(st)? {
                if let Ok(p) = process::pidfd_open(pid) {
                    let _ = process::pidfd_send_signal(p.as_fd(), pid, libc::SIGKILL);
                }
            }
        }
        const SECS: u64 = 10;
        if !process::pidfd_exited(fd.as_fd(), (SECS * 1000) as i32) {
            return Err(SignalError::Timeout {
                id: st.id.clone(),
                pid: st.pid,
                secs: SECS,
            });
        }
    }
    Ok(())
}

/// Delete container `id`. Without `force` it must be stopped (or only created, as runc allows);
/// with `force` it is killed first, and a missing container is not an error.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<(), SignalError> {
    let _lock = match root.lock(id) {
        Ok(l) => l,
        Err(state::StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = match root.load(id) {
        Ok(st) => st,
        Err(state::StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match st.status {
        Status::Stopped => {}
        Status::Created | Status::Creating => kill_and_wait(&st)?,
        status if !force => {
            return Err(SignalError::NotStopped {
                id: id.to_string(),
                status,
            })
        }
        _ => kill_and_wait(&st)?,
    }
    if let Some(cg) = &st.cgroup {
        cgroup::remove(cg, st.systemd_unit.as_deref())?;
    }
    root.remove(id)?;
    // The container is gone; poststop hooks only warn when they fail.
    let mut gone = st.clone();
    gone.status = Status::Stopped;
    let _ = st
        .hooks
        .run(Phase::Poststop, &crate::hooks::state_json(&gone.oci()));
    Ok(())
}
