//! The sandbox's init, between clone and exec. This code runs in the cloned child (fork
//! semantics, single-threaded) inside the new namespaces. Every step that can fail reports a
//! [`ChildFailure`] (step, path, errno) to the runtime over the sync channel and exits.
//!
//! Order: wait for id maps → join namespaces → new session → session keyring → hostname → root
//! filesystem (mounts; [prestart + createRuntime hooks in the runtime, createContainer hooks
//! here]; console, pivot_root, masks) → rlimits → resolve the executable → Ready → wait for
//! `start` → [startContainer hooks] → umask, fds close-on-exec → cwd (as root, verified inside
//! the root) → [seccomp if no_new_privs is off] → bounding set, identity, capabilities →
//! no_new_privs → seccomp → execve.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::plan::{ProcessPlan, SandboxPlan};
use crate::hooks::Phase;
use crate::namespaces::{JoinFds, Kind};
use crate::seccomp::Program;
use crate::state::{State, Status};
use crate::sync::{Channel, ChildFailure, Message};

/// What the child inherits from `create` besides the plan.
pub struct ChildCtx<'a> {
    pub sync: &'a Channel,
    pub joins: &'a JoinFds,
    /// Listening SOCK_SEQPACKET socket that `start` connects to.
    pub start_listener: RawFd,
    pub console: Option<RawFd>,
    pub seccomp: Option<&'a Program>,
    /// The runtime's state lock: closed at once, or `start` would wait for it forever.
    pub inherited_lock: RawFd,
    /// The container's state as `create` made it: what createContainer and startContainer
    /// hooks read (with this process's pid, as runc gives them).
    pub state: &'a State,
}

fn failure(
    step: &str,
    path: impl Into<String>,
    errno: i32,
    message: impl Into<String>,
) -> ChildFailure {
    ChildFailure {
        step: step.to_string(),
        path: path.into(),
        errno,
        message: message.into(),
    }
}

fn sys(step: &str, path: &str, errno: Errno) -> ChildFailure {
    failure(step, path, errno as i32, format!("{step}({path}): {errno}"))
}

fn check(step: &str, path: &str, ret: libc::c_long) -> Result<libc::c_long, ChildFailure> {
    if ret < 0 {
        Err(sys(step, path, Errno::last()))
    } else {
        Ok(ret)
    }
}

/// Run the child to exec. Never returns: on failure the reason goes to the runtime (and to the
/// `start` caller once started) and the child exits 1 (127 when exec itself failed).
pub fn child_main(plan: &SandboxPlan, ctx: ChildCtx<'_>) -> ! {
    let started = match setup(plan, &ctx) {
        Ok(conn) => conn,
        Err(f) => {
            let _ = ctx.sync.send(&Message::Failed(f));
            // SAFETY: leave without running destructors or atexit handlers of the parent's image.
            unsafe { libc::_exit(1) }
        }
    };
    let (exe, conn) = started;
    let setgroups = !(plan.namespaces.is_new(Kind::User) && plan.deny_setgroups());
    let result = run_hooks(plan, ctx.state, Phase::StartContainer, Status::Created)
        .and_then(|()| finish(&plan.process, setgroups, ctx.seccomp, &exe));
    let f = match result {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let told_start = conn.send(&Message::Failed(f.clone())).is_ok();
    let _ = ctx.sync.send(&Message::Failed(f.clone()));
    if !told_start {
        // Nobody is listening any more: the container's stderr is the last place to say it.
        eprintln!("reevec init: {f}");
    }
    // SAFETY: as above.
    unsafe { libc::_exit(if f.step == "exec" { 127 } else { 1 }) }
}

/// Everything up to `start`. Returns the resolved executable and the `start` connection.
fn setup(plan: &SandboxPlan, ctx: &ChildCtx<'_>) -> Result<(CString, Channel), ChildFailure> {
    // SAFETY: closing our copy of the lock fd; the parent keeps its own.
    unsafe { libc::close(ctx.inherited_lock) };
    guard_child()?;
    let ns = &plan.namespaces;
    if ns.is_new(Kind::User) {
        match ctx.sync.expect() {
            Ok(Message::Mapped) => {}
            Ok(other) => {
                return Err(failure(
                    "sync",
                    "",
                    0,
                    format!("expected mapped, got {other:?}"),
                ))
            }
            Err(e) => return Err(failure("sync", "", 0, e.to_string())),
        }
    }
    join_namespaces(ctx.joins, ns.has(Kind::User))?;
    // SAFETY: setsid has no arguments. A new session: no controlling terminal to inject into
    // (TIOCSTI, CVE-2017-5226).
    check("setsid", "", unsafe { libc::setsid() } as libc::c_long)?;
    if plan.new_keyring {
        join_session_keyring(&plan.id)?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(|e| sys("sethostname", h, e))?;
    }
    if let Some(d) = &plan.domainname {
        let c = CString::new(d.as_bytes())
            .map_err(|_| failure("setdomainname", d, 0, "NUL in domainname"))?;
        // SAFETY: valid pointer and length.
        check(
            "setdomainname",
            d,
            unsafe { libc::setdomainname(c.as_ptr(), d.len()) } as libc::c_long,
        )?;
    }
    let mount_err =
        |e: reeve_rootfs::MountError| failure(e.step(), e.path(), e.errno(), e.to_string());
    let root = reeve_rootfs::prepare_root(&plan.mounts).map_err(mount_err)?;
    if plan.hooks.has(Phase::Prestart) || plan.hooks.has(Phase::CreateRuntime) {
        // The runtime runs these in its own namespaces, now that ours and our mounts exist.
        ctx.sync
            .send(&Message::RunHooks)
            .map_err(|e| failure("sync", "", 0, e.to_string()))?;
        match ctx.sync.expect() {
            Ok(Message::HooksDone) => {}
            Ok(other) => {
                return Err(failure(
                    "sync",
                    "",
                    0,
                    format!("expected hooks done, got {other:?}"),
                ))
            }
            Err(e) => return Err(failure("sync", "", 0, e.to_string())),
        }
    }
    // In our namespaces, before pivot_root: the hook's path resolves on the host.
    run_hooks(plan, ctx.state, Phase::CreateContainer, Status::Creating)?;
    reeve_rootfs::pivot(&root).map_err(mount_err)?;
    drop(root);
    if let Some(console) = ctx.console {
        setup_terminal(console, true)?;
    }
    reeve_rootfs::finalize(&plan.mounts).map_err(mount_err)?;
    crate::rlimits::apply(&plan.process.rlimits)
        .map_err(|e| failure("setrlimit", "", 0, e.to_string()))?;
    let exe = resolve_executable(&plan.process)?;
    // The runtime may exit now without taking us with it.
    // SAFETY: prctl with integer arguments.
    check("prctl", "PR_SET_PDEATHSIG", unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, 0) as libc::c_long
    })?;
    ctx.sync
        .send(&Message::Ready)
        .map_err(|e| failure("sync", "", 0, e.to_string()))?;
    // Wait for `start`: accept one connection that says Start.
    loop {
        // SAFETY: accept4 on our listening socket; null address pointers are allowed.
        let fd = unsafe {
            libc::accept4(
                ctx.start_listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(sys("accept", "start socket", e));
        }
        // SAFETY: a new fd returned by accept4, owned by nobody else.
        // Only root can reach the socket: it lives in the runtime's 0700 state directory.
        let conn = Channel::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }, "reevec start");
        if let Ok(Message::Start) = conn.expect() {
            return Ok((exe, conn));
        }
    }
}

/// Run the hooks of `phase` from inside the container, with this process as the state's pid.
fn run_hooks(
    plan: &SandboxPlan,
    state: &State,
    phase: Phase,
    status: Status,
) -> Result<(), ChildFailure> {
    if !plan.hooks.has(phase) {
        return Ok(());
    }
    let mut now = state.clone();
    now.status = status;
    now.pid = nix::unistd::getpid().as_raw();
    plan.hooks
        .run(phase, &crate::hooks::state_json(&now.oci()))
        .map_err(|e| failure("hook", phase.name(), 0, e.to_string()))
}

/// A session keyring of the container's own, so its processes never see the keys of the
/// session that started the runtime (runc's default; `--no-new-keyring` skips it). A kernel
/// without keys (ENOSYS) has nothing to share.
fn join_session_keyring(id: &str) -> Result<(), ChildFailure> {
    let name = CString::new(format!("_ses.{id}"))
        .map_err(|_| failure("keyring", id, libc::EINVAL, "NUL in container id"))?;
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, name) with a valid NUL-terminated string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    match Errno::result(r) {
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(e) => Err(sys("keyctl", "KEYCTL_JOIN_SESSION_KEYRING", e)),
    }
}

/// What a process started by `exec` inherits from the runtime.
pub struct ExecCtx<'a> {
    pub sync: &'a Channel,
    /// The container's namespaces, in join order (pid and time were entered by the parent).
    pub joins: &'a JoinFds,
    pub joins_user: bool,
    pub console: Option<RawFd>,
    pub seccomp: Option<&'a Program>,
    /// Whether `setgroups` is allowed in the container's user namespace.
    pub setgroups: bool,
}

/// The child of `exec`: join the running container's namespaces (the mount namespace last, which
/// also moves root and cwd into the container's root), then the same final steps as an init.
/// Never returns; failures go to the runtime over the sync channel, whose close-on-exec end tells
/// it that exec succeeded.
pub fn exec_main(process: &ProcessPlan, ctx: ExecCtx<'_>) -> ! {
    let result = (|| -> Result<std::convert::Infallible, ChildFailure> {
        guard_child()?;
        join_namespaces(ctx.joins, ctx.joins_user)?;
        // SAFETY: setsid has no arguments.
        check("setsid", "", unsafe { libc::setsid() } as libc::c_long)?;
        if let Some(console) = ctx.console {
            setup_terminal(console, false)?;
        }
        crate::rlimits::apply(&process.rlimits)
            .map_err(|e| failure("setrlimit", "", 0, e.to_string()))?;
        let exe = resolve_executable(process)?;
        // SAFETY: prctl with integer arguments.
        check("prctl", "PR_SET_PDEATHSIG", unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, 0) as libc::c_long
        })?;
        finish(process, ctx.setgroups, ctx.seccomp, &exe)
    })();
    let f = match result {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let _ = ctx.sync.send(&Message::Failed(f.clone()));
    // SAFETY: leave without running the parent image's destructors.
    unsafe { libc::_exit(if f.step == "exec" { 127 } else { 1 }) }
}

/// Die with the runtime while it is still setting us up, and let nobody in the container
/// ptrace us or open /proc/<pid>/exe before exec.
fn guard_child() -> Result<(), ChildFailure> {
    // SAFETY: prctl with integer arguments.
    check("prctl", "PR_SET_PDEATHSIG", unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) as libc::c_long
    })?;
    // SAFETY: prctl with integer arguments.
    check("prctl", "PR_SET_DUMPABLE", unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0) as libc::c_long
    })?;
    Ok(())
}

/// Join the namespaces opened by the runtime: the user namespace first (then become its root,
/// when there is one), then the others in join order, the mount namespace last. Pid and time
/// namespaces apply to children and were entered by the runtime before clone.
fn join_namespaces(joins: &JoinFds, in_userns: bool) -> Result<(), ChildFailure> {
    let setns_err = |e: crate::namespaces::NamespaceError| match &e {
        crate::namespaces::NamespaceError::Setns { kind, errno, .. } => {
            failure("setns", *kind, *errno as i32, e.to_string())
        }
        _ => failure("setns", "", 0, e.to_string()),
    };
    joins.join_where(|k| k == Kind::User).map_err(setns_err)?;
    if in_userns {
        become_root()?;
    }
    joins
        .join_where(|k| !matches!(k, Kind::User | Kind::Pid | Kind::Time))
        .map_err(setns_err)
}

fn become_root() -> Result<(), ChildFailure> {
    // SAFETY: plain syscalls with integer arguments.
    check("setresgid", "0", unsafe { libc::setresgid(0, 0, 0) }
        as libc::c_long)?;
    // SAFETY: as above.
    check("setresuid", "0", unsafe { libc::setresuid(0, 0, 0) }
        as libc::c_long)?;
    Ok(())
}

/// Allocate the container's pty from its own devpts, bind it to /dev/console, hand the master to
/// the console socket and make the slave our stdio and controlling terminal.
fn setup_terminal(console: RawFd, bind: bool) -> Result<(), ChildFailure> {
    let ptmx = nix::fcntl::open(
        "/dev/pts/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| sys("open", "/dev/pts/ptmx", e))?;
    // SAFETY: a new fd we own.
    let master = unsafe { OwnedFd::from_raw_fd(ptmx) };
    let fs = nix::sys::statfs::fstatfs(master.as_fd())
        .map_err(|e| sys("fstatfs", "/dev/pts/ptmx", e))?;
    if fs.filesystem_type().0 != libc::DEVPTS_SUPER_MAGIC {
        return Err(failure(
            "console",
            "/dev/pts/ptmx",
            libc::EXDEV,
            "/dev/pts/ptmx is not on devpts",
        ));
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    check("ioctl", "TIOCSPTLCK", unsafe {
        libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock)
    } as libc::c_long)?;
    // TIOCGPTPEER opens the slave through the master: no path lookup to race (CVE-2025-52565).
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let slave = check("ioctl", "TIOCGPTPEER", unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    } as libc::c_long)? as RawFd;
    // SAFETY: a new fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if bind {
        reeve_rootfs::bind_console(slave.as_fd())
            .map_err(|e| failure(e.step(), e.path(), e.errno(), e.to_string()))?;
    }
    send_fd(console, master.as_raw_fd(), b"/dev/ptmx")?;
    for target in 0..=2 {
        nix::unistd::dup2(slave.as_raw_fd(), target).map_err(|e| sys("dup2", "console", e))?;
    }
    // SAFETY: TIOCSCTTY on our stdin (now the slave) with arg 0.
    check(
        "ioctl",
        "TIOCSCTTY",
        unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } as libc::c_long,
    )?;
    // SAFETY: closing the console socket we were handed; nothing else uses it.
    unsafe { libc::close(console) };
    Ok(())
}

/// Send one fd over a Unix socket with SCM_RIGHTS (the console socket protocol runc uses).
fn send_fd(sock: RawFd, fd: RawFd, name: &[u8]) -> Result<(), ChildFailure> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [std::io::IoSlice::new(name)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| sys("sendmsg", "console socket", e))?;
    Ok(())
}

/// Find the executable inside the new root, as execvp would, so that a missing binary is a
/// `create` error rather than a silent exit after `start`.
fn resolve_executable(process: &ProcessPlan) -> Result<CString, ChildFailure> {
    let arg0 = &process.args[0];
    let is_exec = |p: &Path| {
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
            && std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
    };
    let found: Option<PathBuf> = if arg0.contains('/') {
        let p = if arg0.starts_with('/') {
            PathBuf::from(arg0)
        } else {
            Path::new(&process.cwd).join(arg0)
        };
        Some(p)
    } else {
        process
            .search_path()
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(arg0))
            .find(|p| is_exec(p))
    };
    match found {
        Some(p) if is_exec(&p) => CString::new(p.as_os_str().as_bytes())
            .map_err(|_| failure("exec", arg0, libc::EINVAL, "NUL in executable path")),
        Some(p) => {
            let errno = match std::fs::metadata(&p) {
                Err(e) => e.raw_os_error().unwrap_or(libc::ENOENT),
                Ok(_) => libc::EACCES,
            };
            Err(failure(
                "exec",
                p.to_string_lossy(),
                errno,
                format!(
                    "executable {} is missing or not executable: {}",
                    p.display(),
                    Errno::from_raw(errno)
                ),
            ))
        }
        None => Err(failure(
            "exec",
            arg0,
            libc::ENOENT,
            format!(
                "executable {arg0:?} not found in $PATH ({})",
                process.search_path()
            ),
        )),
    }
}

/// After `start` (or at once for `exec`): privileges, cwd, no_new_privs, seccomp, exec.
fn finish(
    p: &ProcessPlan,
    setgroups_allowed: bool,
    seccomp: Option<&Program>,
    exe: &CString,
) -> Result<std::convert::Infallible, ChildFailure> {
    if let Some(mask) = p.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    // No inherited fd may survive exec (CVE-2024-21626): mark everything above stderr (and
    // above the ones --preserve-fds asks to keep) close-on-exec; the `start` connection and
    // the sync channel are close-on-exec already.
    let first = 3u32.saturating_add(p.preserve_fds);
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    check("close_range", &format!("{first}.."), unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })?;
    // The cwd is entered while we are still root with every capability, as runc does: before
    // a seccomp profile that may lack openat2 is installed, and so that a cwd root can reach
    // is entered whatever the user. A permission error is tried again as the user, below.
    let cwd_pending = match enter_cwd(&p.cwd) {
        Ok(()) => false,
        Err(f) if f.errno == libc::EACCES || f.errno == libc::EPERM => true,
        Err(f) => return Err(f),
    };
    let seccomp_early = !p.no_new_privileges;
    if seccomp_early {
        // Without no_new_privs the filter needs CAP_SYS_ADMIN, which is about to go.
        if let Some(prog) = seccomp {
            prog.install()
                .map_err(|e| failure("seccomp", "", 0, e.to_string()))?;
        }
    }
    p.caps
        .drop_bounding()
        .map_err(|e| failure("capabilities", "bounding", 0, e.to_string()))?;
    // SAFETY: prctl with integer arguments.
    check(
        "prctl",
        "PR_SET_KEEPCAPS",
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1) } as libc::c_long,
    )?;
    let groups: Vec<libc::gid_t> = p.additional_gids.clone();
    if setgroups_allowed {
        // SAFETY: valid pointer and length.
        check(
            "setgroups",
            "",
            unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } as libc::c_long,
        )?;
    }
    // SAFETY: plain syscalls with integer arguments.
    check(
        "setresgid",
        &p.gid.to_string(),
        unsafe { libc::setresgid(p.gid, p.gid, p.gid) } as libc::c_long,
    )?;
    // SAFETY: as above.
    check(
        "setresuid",
        &p.uid.to_string(),
        unsafe { libc::setresuid(p.uid, p.uid, p.uid) } as libc::c_long,
    )?;
    // SAFETY: prctl with integer arguments.
    check(
        "prctl",
        "PR_SET_KEEPCAPS",
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0) } as libc::c_long,
    )?;
    p.caps
        .apply()
        .map_err(|e| failure("capabilities", "", 0, e.to_string()))?;
    if cwd_pending {
        enter_cwd(&p.cwd)?;
    }
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments.
        check("prctl", "PR_SET_NO_NEW_PRIVS", unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        } as libc::c_long)?;
        if let Some(prog) = seccomp {
            prog.install()
                .map_err(|e| failure("seccomp", "", 0, e.to_string()))?;
        }
    }
    let to_c = |s: &String| CString::new(s.as_bytes());
    let argv: Vec<CString> = p
        .args
        .iter()
        .map(to_c)
        .collect::<Result<_, _>>()
        .map_err(|_| failure("exec", "", libc::EINVAL, "NUL byte in process.args"))?;
    let envp: Vec<CString> = p
        .env
        .iter()
        .map(to_c)
        .collect::<Result<_, _>>()
        .map_err(|_| failure("exec", "", libc::EINVAL, "NUL byte in process.env"))?;
    let e = nix::unistd::execve(exe, &argv, &envp)
        .err()
        .unwrap_or(Errno::UnknownErrno);
    Err(failure(
        "exec",
        exe.to_string_lossy(),
        e as i32,
        format!("execve {}: {e}", exe.to_string_lossy()),
    ))
}

/// chdir into the process cwd without following magic links (a `/proc/self/fd/N` cwd would
/// leave the root), then verify the kernel sees the cwd inside the root.
fn enter_cwd(cwd: &str) -> Result<(), ChildFailure> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
    let dir = openat2(
        CWD,
        cwd,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| sys("chdir", cwd, Errno::from_raw(e.raw_os_error())))?;
    rustix::process::fchdir(&dir)
        .map_err(|e| sys("chdir", cwd, Errno::from_raw(e.raw_os_error())))?;
    let now = std::env::current_dir().map_err(|e| {
        failure(
            "chdir",
            cwd,
            e.raw_os_error().unwrap_or(0),
            format!("getcwd after chdir {cwd}: {e}"),
        )
    })?;
    if !now.is_absolute() || now.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        return Err(failure(
            "chdir",
            cwd,
            libc::EPERM,
            format!("cwd {cwd} is outside the container root"),
        ));
    }
    Ok(())
}
