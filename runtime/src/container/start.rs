//! `start`: tell a created init to exec, and report its exec failure if it has one.

use std::os::fd::AsRawFd;

use super::create::socket_path;
use crate::hooks::Phase;
use crate::state::{self, Root, Status};
use crate::sync::{self, Channel, ChildFailure, Message};

/// Errors of `start`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("cannot start container {id}: it is {status}, not created")]
    NotCreated { id: String, status: Status },
    #[error("connect to the init of {id}: {errno}")]
    Connect {
        id: String,
        errno: nix::errno::Errno,
    },
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error("{0}")]
    Child(ChildFailure),
}

/// Start container `id`.
pub fn start(root: &Root, id: &str) -> Result<(), StartError> {
    let _lock = root.lock(id)?;
    let mut st = root.load(id)?;
    if st.status != Status::Created {
        return Err(StartError::NotCreated {
            id: id.to_string(),
            status: st.status,
        });
    }
    // Pinned before it may exec: after a failed start we wait for this very process to be gone.
    let init = crate::process::pidfd_open(st.pid)
        .ok()
        .filter(|_| st.init_alive());
    let conn = connect(root, id)?;
    conn.send(&Message::Start)?;
    // From here the container is running: its start socket goes away.
    let _ = std::fs::remove_file(root.dir(id).join(state::START_SOCKET));
    st.status = Status::Running;
    root.save(&st)?;
    // The init closes the connection by exec (close-on-exec) or sends why exec failed.
    match conn.recv()? {
        None => {
            // poststart hooks only warn when they fail.
            let _ = st
                .hooks
                .run(Phase::Poststart, &crate::hooks::state_json(&st.oci()));
            Ok(())
        }
        Some(Message::Failed(f)) => {
            // The init exits right after saying why: a failed start returns only once the
            // container is stopped, so the caller's next `state` never sees it still running.
            if let Some(fd) = &init {
                use std::os::fd::AsFd;
                if !crate::process::pidfd_exited(fd.as_fd(), 5000) {
                    let _ = crate::process::pidfd_send_signal(fd.as_fd(), st.pid, libc::SIGKILL);
                    let _ = crate::process::pidfd_exited(fd.as_fd(), 5000);
                }
            }
            Err(StartError::Child(f))
        }
        Some(other) => Err(sync::SyncError::Unexpected {
            peer: "container init",
            expected: "exec",
            got: other,
        }
        .into()),
    }
}

fn connect(root: &Root, id: &str) -> Result<Channel, StartError> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let err = |errno| StartError::Connect {
        id: id.to_string(),
        errno,
    };
    let dir = std::fs::File::open(root.dir(id)).map_err(|e| {
        err(nix::errno::Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))
    })?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err)?;
    let addr = UnixAddr::new(&socket_path(&dir, state::START_SOCKET)).map_err(err)?;
    connect(fd.as_raw_fd(), &addr).map_err(err)?;
    Ok(Channel::from_fd(fd, "container init"))
}
