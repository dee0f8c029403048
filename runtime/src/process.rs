//! Processes: clone3 with a pidfd (and optionally straight into a cgroup), waiting and
//! signalling through the pidfd, and process identity (pid + start time) for later verbs.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;

/// Errors of process creation, waiting and signalling.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("clone3(flags={flags:#x}): {errno}")]
    Clone3 {
        flags: u64,
        errno: nix::errno::Errno,
    },
    #[error("pidfd_open({pid}): {errno}")]
    PidfdOpen { pid: i32, errno: nix::errno::Errno },
    #[error("pidfd_send_signal({pid}, {signal}): {errno}")]
    Signal {
        pid: i32,
        signal: i32,
        errno: nix::errno::Errno,
    },
    #[error("waitid(P_PIDFD, {pid}): {errno}")]
    Wait { pid: i32, errno: nix::errno::Errno },
    #[error("read /proc/{pid}/stat: {source}")]
    Stat { pid: i32, source: io::Error },
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2) (kernel ABI, version 2 with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A child created by [`clone3`]: its pid (in our pid namespace) and its pidfd.
#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Which side of the fork we are on.
pub enum Forked {
    Parent(Child),
    Child,
}

/// clone3 without a new stack (fork semantics) into `flags`, returning a pidfd. With `cgroup`,
/// the child starts inside that cgroup (CLONE_INTO_CGROUP) and is never visible outside it.
///
/// The caller must be single-threaded: the child continues running the caller's code.
pub fn clone3(flags: CloneFlags, cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, ProcessError> {
    let mut pidfd: RawFd = -1;
    let mut all = flags.bits() as u64 | libc::CLONE_PIDFD as u64;
    let mut args = CloneArgs {
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(cg) = cgroup {
        // 0x200000000: libc's constant is deprecated (it overflows c_int).
        all |= CLONE_INTO_CGROUP;
        args.cgroup = cg.as_raw_fd() as u64;
    }
    args.flags = all;
    // SAFETY: `args` is a valid clone_args of the size we pass; without a stack the kernel gives
    // the child a copy of our address space (fork semantics), so returning twice from this call
    // is sound for a single-threaded caller. `pidfd` outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(ProcessError::Clone3 {
            flags: all,
            errno: nix::errno::Errno::last(),
        }),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Child {
            pid: pid as i32,
            // SAFETY: the kernel stored a fresh pidfd that nobody else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        })),
    }
}

/// Open a pidfd for an existing process.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, ProcessError> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(ProcessError::PidfdOpen {
            pid,
            errno: nix::errno::Errno::last(),
        });
    }
    // SAFETY: a new fd returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Send `signal` through a pidfd: it can never reach a recycled pid.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, pid: i32, signal: i32) -> Result<(), ProcessError> {
    // SAFETY: plain syscall; a null siginfo means "as kill(2) would".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(ProcessError::Signal {
            pid,
            signal,
            errno: nix::errno::Errno::last(),
        });
    }
    Ok(())
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signaled(i32),
}

impl Exit {
    /// The shell convention: the exit code, or 128 + signal.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signaled(s) => 128 + s,
        }
    }
}

/// Wait for (and reap) a child through its pidfd.
pub fn wait_pidfd(child: &Child) -> Result<Exit, ProcessError> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with P_PIDFD on our own pidfd and a valid siginfo pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                child.pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if r < 0 {
            let errno = nix::errno::Errno::last();
            if errno == nix::errno::Errno::EINTR {
                continue;
            }
            return Err(ProcessError::Wait {
                pid: child.pid,
                errno,
            });
        }
        // SAFETY: waitid filled a SIGCHLD siginfo, for which si_status is valid.
        let status = unsafe { info.si_status() };
        return Ok(if info.si_code == libc::CLD_EXITED {
            Exit::Code(status)
        } else {
            Exit::Signaled(status)
        });
    }
}

/// Whether a pidfd's process has exited (the pidfd polls readable then).
pub fn pidfd_exited(pidfd: BorrowedFd<'_>, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    r > 0 && pfd.revents & libc::POLLIN != 0
}

/// Start time of a process in clock ticks since boot (`/proc/<pid>/stat` field 22) and whether it
/// is a zombie. Together with the pid this identifies a process across pid reuse.
pub fn stat(pid: i32) -> Result<(u64, bool), ProcessError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|source| ProcessError::Stat { pid, source })?;
    parse_stat(&text).ok_or_else(|| ProcessError::Stat {
        pid,
        source: io::Error::new(io::ErrorKind::InvalidData, "malformed stat line"),
    })
}

fn parse_stat(text: &str) -> Option<(u64, bool)> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); start time is field 22.
    let state = *fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

/// Parse a signal given as a number, `KILL` or `SIGKILL`.
pub fn parse_signal(s: &str) -> Result<i32, ProcessError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(ProcessError::UnknownSignal(s.to_string()));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| ProcessError::UnknownSignal(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_odd_comm() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(parse_stat(line), Some((123456, false)));
        let z = "7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        assert_eq!(parse_stat(z), Some((99, true)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("9").ok(), Some(9));
        assert_eq!(parse_signal("KILL").ok(), Some(9));
        assert_eq!(parse_signal("SIGTERM").ok(), Some(15));
        assert_eq!(parse_signal("term").ok(), Some(15));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let a = stat(me).expect("stat");
        let b = stat(me).expect("stat");
        assert_eq!(a, b);
        assert!(!a.1);
    }

    #[test]
    fn clone3_child_is_waited_through_pidfd() {
        match clone3(CloneFlags::empty(), None).expect("clone3") {
            Forked::Child => {
                // SAFETY: exit immediately without running parent destructors.
                unsafe { libc::_exit(7) }
            }
            Forked::Parent(child) => {
                assert_eq!(wait_pidfd(&child).expect("wait"), Exit::Code(7));
            }
        }
    }
}
