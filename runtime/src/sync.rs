//! The channel between the runtime and the sandbox's init process (after clone, before exec):
//! a SOCK_SEQPACKET socketpair carrying one JSON message per packet, so that a failure in the
//! child reaches the caller as the step, the path and the errno, never as "exit status 1".

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

/// Errors of the sync channel itself.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("socketpair(AF_UNIX, SOCK_SEQPACKET): {0}")]
    Socketpair(nix::errno::Errno),
    #[error("send to {peer}: {errno}")]
    Send {
        peer: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("receive from {peer}: {errno}")]
    Recv {
        peer: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("{peer} closed the sync channel without a message (it died; see its stderr)")]
    Closed { peer: &'static str },
    #[error("malformed message from {peer}: {source}")]
    Malformed {
        peer: &'static str,
        source: serde_json::Error,
    },
    #[error("unexpected message from {peer}: expected {expected}, got {got:?}")]
    Unexpected {
        peer: &'static str,
        expected: &'static str,
        got: Message,
    },
}

/// A failure inside the sandbox's init, as reported to the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildFailure {
    /// The step that failed: "mount", "pivot_root", "setns", "capset", "exec", ...
    pub step: String,
    /// The path (inside the container) or the syscall the step worked on.
    pub path: String,
    /// errno, 0 when the failure is not a syscall's.
    pub errno: i32,
    /// The full message.
    pub message: String,
}

impl std::fmt::Display for ChildFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container init failed at step {:?}", self.step)?;
        if !self.path.is_empty() {
            write!(f, " on {}", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if self.errno != 0 {
            let e = nix::errno::Errno::from_raw(self.errno);
            if !self.message.contains(e.desc()) {
                write!(f, " ({e})")?;
            }
        }
        Ok(())
    }
}

/// Messages on the sync channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// parent → child: uid/gid maps are written, go on.
    Mapped,
    /// child → parent: the namespaces and mounts exist (before pivot_root): run the prestart
    /// and createRuntime hooks now.
    RunHooks,
    /// parent → child: the runtime's hooks ran; go on.
    HooksDone,
    /// child → parent: the sandbox is set up and waits for start.
    Ready,
    /// child → parent (or → `start`): a step failed.
    Failed(ChildFailure),
    /// `start` → child: exec now.
    Start,
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    peer: &'static str,
}

/// A connected pair: (parent end, child end). Both are close-on-exec.
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(SyncError::Socketpair)?;
    Ok((
        Channel {
            fd: a,
            peer: "container init",
        },
        Channel {
            fd: b,
            peer: "runtime",
        },
    ))
}

impl Channel {
    /// Wrap an already connected SEQPACKET or STREAM socket.
    pub fn from_fd(fd: OwnedFd, peer: &'static str) -> Self {
        Channel { fd, peer }
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn send(&self, msg: &Message) -> Result<(), SyncError> {
        let data = serde_json::to_vec(msg).map_err(|source| SyncError::Malformed {
            peer: self.peer,
            source,
        })?;
        let mut off = 0;
        while off < data.len() {
            // SAFETY: writing from a valid buffer to a socket we own; MSG_NOSIGNAL avoids SIGPIPE.
            let n = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    data[off..].as_ptr().cast(),
                    data.len() - off,
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                let errno = nix::errno::Errno::last();
                if errno == nix::errno::Errno::EINTR {
                    continue;
                }
                return Err(SyncError::Send {
                    peer: self.peer,
                    errno,
                });
            }
            off += n as usize;
        }
        Ok(())
    }

    /// Receive one message; `Ok(None)` when the peer closed the channel.
    pub fn recv(&self) -> Result<Option<Message>, SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a valid buffer from a socket we own.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let errno = nix::errno::Errno::last();
                if errno == nix::errno::Errno::EINTR {
                    continue;
                }
                return Err(SyncError::Recv {
                    peer: self.peer,
                    errno,
                });
            }
            if n == 0 {
                return Ok(None);
            }
            return serde_json::from_slice(&buf[..n as usize])
                .map(Some)
                .map_err(|source| SyncError::Malformed {
                    peer: self.peer,
                    source,
                });
        }
    }

    /// Receive a message that must arrive.
    pub fn expect(&self) -> Result<Message, SyncError> {
        self.recv()?.ok_or(SyncError::Closed { peer: self.peer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_roundtrip_and_close_is_seen() {
        let (p, c) = pair().expect("pair");
        let fail = ChildFailure {
            step: "mount".into(),
            path: "/proc".into(),
            errno: libc::EPERM,
            message: "mount proc on /proc: EPERM".into(),
        };
        c.send(&Message::Failed(fail.clone())).expect("send");
        c.send(&Message::Ready).expect("send");
        assert_eq!(p.expect().expect("recv"), Message::Failed(fail));
        assert_eq!(p.expect().expect("recv"), Message::Ready);
        drop(c);
        assert!(matches!(p.expect(), Err(SyncError::Closed { .. })));
    }

    #[test]
    fn failure_display_names_step_path_and_errno() {
        let f = ChildFailure {
            step: "exec".into(),
            path: "/bin/nope".into(),
            errno: libc::ENOENT,
            message: "executable not found".into(),
        };
        let s = f.to_string();
        assert!(
            s.contains("exec") && s.contains("/bin/nope") && s.contains("ENOENT"),
            "{s}"
        );
    }
}
