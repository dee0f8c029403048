//! The container lifecycle as a library: plan, create, start, run, kill, delete.
//! `cli/` is a thin argument layer over these functions.

pub mod cgroup;
pub mod create;
pub mod exec;
pub mod init;
pub mod plan;
pub mod resources;
pub mod signal;
pub mod start;

use std::os::fd::{AsFd, AsRawFd};

pub use create::{create, CreateError, CreateOptions, Created};
pub use exec::{exec, ExecError, ExecOptions};
pub use resources::{Event, EventKind, ResourcesError};
pub use signal::{delete, kill, pids, SignalError};
pub use start::{start, StartError};

use crate::process::{self, Exit};
use crate::state::Root;

/// How `create` treats cgroups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CgroupMode {
    /// Use cgroup v2 (found in /proc/self/mountinfo, or at `root`); a spec with
    /// `linux.resources` fails when the controllers it needs are not usable.
    #[default]
    Enabled,
    /// Use this cgroup2 mount as the root.
    Root(std::path::PathBuf),
    /// Run without cgroups: limits in the spec are NOT applied (said loudly).
    Disabled,
    /// The systemd cgroup driver: a transient scope per container (`--systemd-cgroup`).
    Systemd,
}

/// Errors of `run`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Delete(#[from] SignalError),
    #[error("signal forwarding: {0}")]
    Signals(nix::errno::Errno),
}

/// How `run` ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunMode {
    /// Return once the process started.
    pub detach: bool,
    /// Leave the stopped container for a later `delete` instead of deleting it.
    pub keep: bool,
}

/// create + start + wait (forwarding signals) + delete. Returns the exit status (128+signal when
/// killed), or 0 at once with `detach`.
pub fn run(root: &Root, opts: &CreateOptions, mode: RunMode) -> Result<i32, RunError> {
    let created = create(root, opts)?;
    if let Err(e) = start(root, &opts.id) {
        let _ = delete(root, &opts.id, true);
        let _ = process::wait_pidfd(&created.child);
        return Err(e.into());
    }
    if mode.detach {
        return Ok(0);
    }
    let exit = wait_forwarding(&created.child)?;
    if !mode.keep {
        delete(root, &opts.id, true)?;
    }
    Ok(exit.status())
}

/// Wait for the init while forwarding the signals a user sends to `reevec run`.
pub(crate) fn wait_forwarding(child: &process::Child) -> Result<Exit, RunError> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(RunError::Signals)?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(RunError::Signals)?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: child.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            let e = nix::errno::Errno::last();
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            return Err(RunError::Signals(e));
        }
        if fds[1].revents & libc::POLLIN != 0 {
            while let Ok(Some(info)) = sfd.read_signal() {
                let _ = process::pidfd_send_signal(
                    child.pidfd.as_fd(),
                    child.pid,
                    info.ssi_signo as i32,
                );
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            return Ok(process::wait_pidfd(child)?);
        }
    }
}
