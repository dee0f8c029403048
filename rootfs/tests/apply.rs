//! Root integration tests of the applying layer. Each scenario runs in a forked child that
//! first enters a new mount namespace and makes `/` rprivate, so no mount ever reaches the host;
//! the child reports through a pipe and its exit code.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;
use oci_spec::runtime::Spec;
use reeve_rootfs::{bind_console, finalize, pivot, prepare_root, MountPlan};

type R = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn in_child(extra: CloneFlags, f: impl FnOnce() -> R) -> R {
    run_child(None, extra, f)
}

/// Like `in_child`, but the scenario runs as root of a new user namespace (uid/gid 0 mapped to
/// 0, so every capability is namespaced: mknod is refused), in new mount, pid and ipc
/// namespaces owned by it, as pid 1 of the new pid namespace. `setup` runs first, still fully
/// privileged, in a private mount namespace whose mounts the user namespace then sees locked.
fn in_userns_child(setup: impl FnOnce() -> R, f: impl FnOnce() -> R) -> R {
    run_child(
        Some(Box::new(setup)),
        CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC,
        f,
    )
}

fn enter_userns() -> R {
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare user: {e}"))?;
    fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    fs::write("/proc/self/uid_map", "0 0 1").map_err(|e| format!("uid_map: {e}"))?;
    fs::write("/proc/self/gid_map", "0 0 1").map_err(|e| format!("gid_map: {e}"))?;
    Ok(())
}

fn wait_ok(child: nix::unistd::Pid) -> Result<i32, String> {
    match waitpid(child, None).map_err(|e| e.to_string())? {
        WaitStatus::Exited(_, code) => Ok(code),
        other => Err(format!("{other:?}")),
    }
}

/// Held while a test writes an executable and while it forks: a child forked by one test
/// while another test copies busybox would inherit the write fd and make exec fail ETXTBSY.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

type Setup<'a> = Box<dyn FnOnce() -> R + 'a>;

fn make_private() -> R {
    // FIRST in every new mount namespace: nothing done in it may propagate to the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make / rprivate: {e}"))
}

fn run_child(userns_setup: Option<Setup<'_>>, extra: CloneFlags, f: impl FnOnce() -> R) -> R {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "the rootfs integration tests need root"
    );
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let guard = FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // SAFETY: the child only runs the scenario (no lock of another thread is needed: glibc's
    // malloc is fork-safe and the child never touches stdout) and leaves with _exit.
    let forked = unsafe { nix::unistd::fork() }.unwrap();
    drop(guard);
    match forked {
        ForkResult::Child => {
            drop(rd);
            let mut w = fs::File::from(wr);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || -> Result<i32, String> {
                    if let Some(setup) = userns_setup {
                        nix::sched::unshare(CloneFlags::CLONE_NEWNS)
                            .map_err(|e| format!("unshare: {e}"))?;
                        make_private()?;
                        setup()?;
                        enter_userns()?;
                    }
                    nix::sched::unshare(CloneFlags::CLONE_NEWNS | extra)
                        .map_err(|e| format!("unshare: {e}"))?;
                    make_private()?;
                    if extra.contains(CloneFlags::CLONE_NEWPID) {
                        // SAFETY: as above; the grandchild is pid 1 of the new pid namespace.
                        match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
                            ForkResult::Child => {
                                let code = match f() {
                                    Ok(()) => 0,
                                    Err(m) => {
                                        let _ = w.write_all(m.as_bytes());
                                        1
                                    }
                                };
                                // SAFETY: leave without running the harness' code.
                                unsafe { libc::_exit(code) }
                            }
                            ForkResult::Parent { child } => return wait_ok(child),
                        }
                    }
                    f().map(|()| 0)
                },
            ));
            let (code, msg) = match res {
                Ok(Ok(code)) => (code, String::new()),
                Ok(Err(m)) => (1, m),
                Err(p) => (
                    2,
                    format!(
                        "child panicked: {}",
                        p.downcast_ref::<String>()
                            .cloned()
                            .or(p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    ),
                ),
            };
            let _ = w.write_all(msg.as_bytes());
            drop(w);
            // SAFETY: leave the forked child without running the test harness' code.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            fs::File::from(rd).read_to_string(&mut msg).unwrap();
            match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, 0) => Ok(()),
                other => Err(format!("{msg} [{other:?}]")),
            }
        }
    }
}

/// A bundle with a rootfs holding /bin/busybox.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("reeve-rootfs-test")
            .tempdir()
            .unwrap();
        let root = dir.path().join("rootfs");
        fs::create_dir_all(root.join("bin")).unwrap();
        {
            let _g = FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        }
        Bundle { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    fn plan(&self, json: &str) -> MountPlan {
        let spec: Spec = serde_json::from_str(json).unwrap();
        MountPlan::from_spec(&spec, self.path()).unwrap()
    }
}

fn mountinfo() -> Vec<(String, String)> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[4].to_string(), f[5].to_string())
        })
        .collect()
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

const DEFAULT_MOUNTS: &str = r#"
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}"#;

#[test]
fn full_prepare_pivot_finalize() {
    let b = Bundle::new();
    let volume = b.path().join("volume");
    fs::create_dir(&volume).unwrap();
    fs::write(volume.join("hello"), "from the host").unwrap();
    let json = format!(
        r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs", "readonly": true}},
        "mounts": [{DEFAULT_MOUNTS},
            {{"destination": "/data", "type": "bind", "source": "volume", "options": ["rbind", "ro", "nosuid"]}},
            {{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nodev"]}}],
        "linux": {{
            "namespaces": [{{"type": "mount"}}, {{"type": "ipc"}}],
            "sysctl": {{"kernel.shmmni": "2048"}},
            "maskedPaths": ["/proc/kcore", "/proc/timer_list", "/proc/does-not-exist", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/bus", "/proc/sysrq-trigger", "/proc/nope"]}}}}"#
    );
    let plan = b.plan(&json);
    let host_shmmni = fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    in_child(CloneFlags::CLONE_NEWIPC, || {
        let root = prepare_root(&plan).map_err(|e| format!("prepare_root: {e}"))?;
        pivot(&root).map_err(|e| format!("pivot: {e}"))?;
        drop(root);
        finalize(&plan).map_err(|e| format!("finalize: {e}"))?;

        let mi = mountinfo();
        for want in [
            "/",
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/data",
            "/tmp",
            "/proc/timer_list",
            "/sys/firmware",
            "/proc/sys",
            "/proc/bus",
        ] {
            check!(
                mi.iter().any(|(mp, _)| mp == want),
                "{want} not in mountinfo: {mi:?}"
            );
        }
        check!(
            !mi.iter()
                .any(|(mp, _)| mp.contains("does-not-exist") || mp.contains("nope")),
            "missing path got a mount"
        );
        let root_opts = &mi.iter().rev().find(|(mp, _)| mp == "/").unwrap().1;
        check!(
            root_opts.split(',').any(|o| o == "ro"),
            "/ not read-only: {root_opts}"
        );

        // Masked: the file reads empty, the directory is an empty read-only tmpfs.
        // (/proc/kcore is in the list but this kernel may not have it: missing paths are skipped.)
        check!(
            fs::read("/proc/timer_list")
                .map_err(|e| e.to_string())?
                .is_empty(),
            "/proc/timer_list not masked"
        );
        check!(
            fs::read_dir("/sys/firmware")
                .map_err(|e| e.to_string())?
                .next()
                .is_none(),
            "/sys/firmware not empty"
        );
        check!(
            errno_of(fs::write("/sys/firmware/x", "x")) == Some(libc::EROFS),
            "/sys/firmware writable"
        );
        // sysctl written in the container's ipc namespace, then /proc/sys made read-only.
        let v = fs::read_to_string("/proc/sys/kernel/shmmni").map_err(|e| e.to_string())?;
        check!(v.trim() == "2048", "shmmni = {v}");
        let w = fs::OpenOptions::new()
            .write(true)
            .open("/proc/sys/kernel/shmmni");
        check!(errno_of(w) == Some(libc::EROFS), "/proc/sys writable");
        // Read-only root, writable tmpfs, read-only bind of the host volume.
        check!(
            errno_of(fs::write("/newfile", "x")) == Some(libc::EROFS),
            "/ writable"
        );
        fs::write("/tmp/ok", "x").map_err(|e| format!("/tmp: {e}"))?;
        check!(
            fs::read_to_string("/data/hello").map_err(|e| e.to_string())? == "from the host",
            "bind content"
        );
        check!(
            errno_of(fs::write("/data/new", "x")) == Some(libc::EROFS),
            "/data writable"
        );
        let data_opts = &mi.iter().find(|(mp, _)| mp == "/data").unwrap().1;
        check!(
            data_opts.contains("nosuid"),
            "/data lost nosuid: {data_opts}"
        );
        // Devices and symlinks.
        let md = fs::metadata("/dev/null").map_err(|e| e.to_string())?;
        check!(
            md.file_type().is_char_device(),
            "/dev/null not a char device"
        );
        check!(
            md.rdev() == libc::makedev(1, 3),
            "/dev/null rdev {:x}",
            md.rdev()
        );
        check!(
            md.permissions().mode() & 0o777 == 0o666,
            "/dev/null mode {:o}",
            md.permissions().mode()
        );
        fs::write("/dev/null", "discarded").map_err(|e| format!("write /dev/null: {e}"))?;
        for (name, major, minor) in [
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ] {
            let md = fs::metadata(format!("/dev/{name}")).map_err(|e| format!("{name}: {e}"))?;
            check!(md.rdev() == libc::makedev(major, minor), "/dev/{name} rdev");
        }
        for (l, t) in [
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stdout", "/proc/self/fd/1"),
            ("/dev/stderr", "/proc/self/fd/2"),
            ("/dev/ptmx", "pts/ptmx"),
        ] {
            let got = fs::read_link(l).map_err(|e| format!("{l}: {e}"))?;
            check!(got == Path::new(t), "{l} -> {got:?}");
        }
        check!(fs::metadata("/dev/pts/ptmx").is_ok(), "no /dev/pts/ptmx");
        // The root works: busybox runs from it and sees the masked file as empty.
        let out = std::process::Command::new("/bin/busybox")
            .args(["cat", "/proc/timer_list"])
            .output()
            .map_err(|e| format!("exec busybox: {e}"))?;
        check!(
            out.status.success() && out.stdout.is_empty(),
            "busybox cat: {out:?}"
        );
        Ok(())
    })
    .unwrap();
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shmmni,
        "host sysctl changed"
    );
    let host_mi = mountinfo();
    assert!(
        !host_mi
            .iter()
            .any(|(mp, _)| mp.starts_with(b.path().to_str().unwrap())),
        "a mount leaked to the host"
    );
}

#[test]
fn symlinked_destinations_stay_inside_the_root() {
    let b = Bundle::new();
    let target = b.path().join("host-target");
    fs::create_dir(&target).unwrap();
    let root = b.root();
    fs::create_dir_all(root.join("mnt")).unwrap();
    // An absolute symlink to the host directory, a relative one climbing out, and one to a
    // host file for a bind mount of a file.
    std::os::unix::fs::symlink(&target, root.join("mnt/abs")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../..".to_string() + target.to_str().unwrap(),
        root.join("mnt/rel"),
    )
    .unwrap();
    std::os::unix::fs::symlink(target.join("file"), root.join("mnt/file")).unwrap();
    let src = b.path().join("srcfile");
    fs::write(&src, "x").unwrap();
    let json = format!(
        r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}},
        "mounts": [{DEFAULT_MOUNTS},
            {{"destination": "/mnt/abs", "type": "tmpfs", "source": "tmpfs"}},
            {{"destination": "/mnt/abs/sub/dir", "type": "tmpfs", "source": "tmpfs"}},
            {{"destination": "/mnt/rel/deep", "type": "tmpfs", "source": "tmpfs"}},
            {{"destination": "/mnt/file", "type": "bind", "source": "{}", "options": ["bind"]}}]}}"#,
        src.display()
    );
    let plan = b.plan(&json);
    let root_c = root.clone();
    let target_c = target.clone();
    in_child(CloneFlags::empty(), move || {
        let _r = prepare_root(&plan).map_err(|e| format!("prepare_root: {e}"))?;
        // Seen from the host side of this namespace: nothing under the host target.
        let mi = mountinfo();
        check!(
            !mi.iter()
                .any(|(mp, _)| Path::new(mp).starts_with(&target_c)),
            "mount on the host target: {mi:?}"
        );
        check!(
            fs::read_dir(&target_c)
                .map_err(|e| e.to_string())?
                .next()
                .is_none(),
            "host target not empty"
        );
        // The mounts landed at the in-root resolution of the symlinks.
        let inside = root_c.join(target_c.strip_prefix("/").unwrap());
        for p in [
            inside.clone(),
            inside.join("sub/dir"),
            inside.join("deep"),
            inside.join("file"),
        ] {
            check!(
                mi.iter().any(|(mp, _)| Path::new(mp) == p),
                "no mount at {p:?}: {mi:?}"
            );
        }
        Ok(())
    })
    .unwrap();
    assert!(
        fs::read_dir(&target).unwrap().next().is_none(),
        "the host target was written to"
    );
    // The directory the absolute symlink named was created inside the root (sub/dir went into
    // the tmpfs mounted there, gone with the namespace).
    assert!(root.join(target.strip_prefix("/").unwrap()).is_dir());
}

#[test]
fn proc_or_sys_on_a_symlink_is_refused() {
    for (link, fstype) in [("proc", "proc"), ("sys", "sysfs")] {
        let b = Bundle::new();
        let elsewhere = b.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, b.root().join(link)).unwrap();
        let plan = b.plan(&format!(r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}}, "mounts": [{DEFAULT_MOUNTS}]}}"#));
        in_child(CloneFlags::empty(), || {
            let e = prepare_root(&plan).err().ok_or("prepare_root succeeded")?;
            check!(
                e.step() == "mount" && e.path() == format!("/{link}"),
                "wrong error {e} ({}, {})",
                e.step(),
                e.path()
            );
            check!(e.errno() == libc::ENOTDIR, "errno {}", e.errno());
            let s = e.to_string();
            check!(
                s == format!(
                    "mount {fstype} on /{link}: must be mounted on an ordinary directory (ENOTDIR)"
                ),
                "message: {s}"
            );
            check!(
                !mountinfo()
                    .iter()
                    .any(|(mp, _)| Path::new(mp).starts_with(&elsewhere)),
                "mounted through the symlink"
            );
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn dev_null_replaced_by_a_symlink_makes_masking_fail() {
    let b = Bundle::new();
    let plan = b.plan(&format!(
        r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}}, "mounts": [{DEFAULT_MOUNTS}],
        "linux": {{"maskedPaths": ["/proc/timer_list"]}}}}"#
    ));
    let host_core_pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    in_child(CloneFlags::empty(), || {
        let root = prepare_root(&plan).map_err(|e| format!("prepare_root: {e}"))?;
        pivot(&root).map_err(|e| format!("pivot: {e}"))?;
        // What a malicious image (or a racing process) does: /dev/null -> a procfs file.
        fs::remove_file("/dev/null").map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", "/dev/null")
            .map_err(|e| e.to_string())?;
        let e = finalize(&plan).err().ok_or("finalize succeeded")?;
        check!(
            e.step() == "mask" && e.path() == "/dev/null",
            "wrong error: {e}"
        );
        check!(
            !mountinfo().iter().any(|(mp, _)| mp == "/proc/timer_list"),
            "/proc/timer_list got a mount"
        );
        // A regular file in its place is refused the same way.
        fs::remove_file("/dev/null").map_err(|e| e.to_string())?;
        fs::write("/dev/null", "").map_err(|e| e.to_string())?;
        let e = finalize(&plan)
            .err()
            .ok_or("finalize succeeded with a regular /dev/null")?;
        check!(
            e.to_string().contains("not the 1:3 character device"),
            "wrong error: {e}"
        );
        Ok(())
    })
    .unwrap();
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        host_core_pattern
    );
}

#[test]
fn console_is_bound_from_a_pty_slave_only() {
    let b = Bundle::new();
    let plan = b.plan(&format!(
        r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}}, "mounts": [{DEFAULT_MOUNTS}]}}"#
    ));
    in_child(CloneFlags::empty(), || {
        let root = prepare_root(&plan).map_err(|e| format!("prepare_root: {e}"))?;
        pivot(&root).map_err(|e| format!("pivot: {e}"))?;
        // Not a pty: refused.
        let null = fs::File::open("/dev/null").map_err(|e| e.to_string())?;
        let e = bind_console(null.as_fd())
            .err()
            .ok_or("bound /dev/null as console")?;
        check!(e.step() == "console", "wrong error {e}");
        check!(
            fs::metadata("/dev/console").is_err(),
            "/dev/console created for a refused source"
        );
        // A real pty slave of the container's devpts.
        let master = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/ptmx")
            .map_err(|e| e.to_string())?;
        let unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads an int.
        check!(
            unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } == 0,
            "unlock pty"
        );
        // SAFETY: TIOCGPTPEER returns a new fd we then own.
        let slave = unsafe {
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY,
            )
        };
        check!(slave >= 0, "TIOCGPTPEER");
        // SAFETY: fresh fd.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        bind_console(slave.as_fd()).map_err(|e| format!("bind_console: {e}"))?;
        let md = fs::metadata("/dev/console").map_err(|e| e.to_string())?;
        check!(
            md.file_type().is_char_device() && (136..=143).contains(&libc::major(md.rdev())),
            "console is not the pty"
        );
        check!(
            md.rdev()
                == fs::metadata("/proc/self/fd/".to_string() + &slave.as_raw_fd().to_string())
                    .map_err(|e| e.to_string())?
                    .rdev(),
            "console is another pty"
        );
        check!(
            mountinfo().iter().any(|(mp, _)| mp == "/dev/console"),
            "no mount on /dev/console"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn root_must_be_a_directory() {
    let b = Bundle::new();
    fs::remove_dir_all(b.root()).unwrap();
    fs::write(b.root(), "not a dir").unwrap();
    let plan = b.plan(r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}}"#);
    in_child(CloneFlags::empty(), || {
        let e = prepare_root(&plan).err().ok_or("prepare_root succeeded")?;
        check!(
            e.step() == "root" && e.errno() == libc::ENOTDIR,
            "wrong error {e}"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn root_propagation_and_remount_options() {
    // rootfsPropagation is applied to / after pivot; a remount op changes attributes of an
    // existing mount; a bind with rro makes the whole subtree read-only.
    let b = Bundle::new();
    let vol = b.path().join("vol");
    fs::create_dir_all(vol.join("sub")).unwrap();
    let json = format!(
        r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}},
        "mounts": [{DEFAULT_MOUNTS},
            {{"destination": "/vol", "type": "bind", "source": "vol", "options": ["rbind"]}},
            {{"destination": "/vol/sub", "type": "tmpfs", "source": "tmpfs"}},
            {{"destination": "/vol", "type": "none", "options": ["remount", "bind", "rro", "noexec"]}},
            {{"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "private"]}}],
        "linux": {{"rootfsPropagation": "rshared"}}}}"#
    );
    let plan = b.plan(&json);
    in_child(CloneFlags::empty(), || {
        let root = prepare_root(&plan).map_err(|e| format!("prepare_root: {e}"))?;
        pivot(&root).map_err(|e| format!("pivot: {e}"))?;
        finalize(&plan).map_err(|e| format!("finalize: {e}"))?;
        let raw = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let line = |mp: &str| {
            raw.lines()
                .rev()
                .find(|l| l.split(' ').nth(4) == Some(mp))
                .unwrap_or("")
                .to_string()
        };
        check!(
            line("/").contains("shared:"),
            "/ is not shared: {}",
            line("/")
        );
        check!(
            !line("/scratch").contains("shared:"),
            "/scratch not private: {}",
            line("/scratch")
        );
        check!(
            errno_of(fs::write("/scratch/x", "")) == Some(libc::EROFS),
            "/scratch writable"
        );
        check!(
            errno_of(fs::write("/vol/x", "")) == Some(libc::EROFS),
            "/vol writable"
        );
        check!(
            errno_of(fs::write("/vol/sub/x", "")) == Some(libc::EROFS),
            "/vol/sub writable (rro)"
        );
        check!(
            line("/vol")
                .split(' ')
                .nth(5)
                .unwrap_or("")
                .contains("noexec"),
            "/vol not noexec: {}",
            line("/vol")
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn user_namespace_binds_devices_and_keeps_locked_flags() {
    let b = Bundle::new();
    let json = r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/locked", "type": "bind", "source": "locked", "options": ["rbind", "ro"]},
            {"destination": "/locked-ro", "type": "bind", "source": "locked-ro", "options": ["bind", "rw", "suid", "relatime"]}],
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "pid"}, {"type": "ipc"}],
            "sysctl": {"kernel.shmmni": "1024"},
            "maskedPaths": ["/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/bus"]}}"#;
    let plan = b.plan(json);
    let (locked, locked_ro) = (b.path().join("locked"), b.path().join("locked-ro"));
    fs::create_dir(&locked).unwrap();
    fs::create_dir(&locked_ro).unwrap();
    let setup = || -> R {
        let fl = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        nix::mount::mount(Some("tmpfs"), &locked, Some("tmpfs"), fl, None::<&str>)
            .map_err(|e| e.to_string())?;
        nix::mount::mount(
            Some("tmpfs"),
            &locked_ro,
            Some("tmpfs"),
            fl | MsFlags::MS_RDONLY | MsFlags::MS_NOATIME,
            None::<&str>,
        )
        .map_err(|e| e.to_string())
    };
    in_userns_child(setup, || {
        let root = prepare_root(&plan).map_err(|e| format!("prepare_root: {e}"))?;
        pivot(&root).map_err(|e| format!("pivot: {e}"))?;
        drop(root);
        finalize(&plan).map_err(|e| format!("finalize: {e}"))?;
        let mi = mountinfo();
        // mknod is not permitted here: the default devices are bind mounts of the host's.
        for (name, major, minor) in [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ] {
            let p = format!("/dev/{name}");
            check!(mi.iter().any(|(mp, _)| *mp == p), "{p} is not a bind mount");
            let md = fs::metadata(&p).map_err(|e| format!("{p}: {e}"))?;
            check!(
                md.file_type().is_char_device() && md.rdev() == libc::makedev(major, minor),
                "{p} rdev"
            );
        }
        fs::write("/dev/null", "x").map_err(|e| format!("write /dev/null: {e}"))?;
        // sysfs cannot be mounted without owning the network namespace: the host's /sys is
        // bound read-only instead.
        check!(mi.iter().any(|(mp, _)| mp == "/sys"), "no /sys");
        check!(
            errno_of(fs::write("/sys/kernel/x", "")) == Some(libc::EROFS)
                || errno_of(fs::write("/sys/kernel/x", "")) == Some(libc::EACCES),
            "/sys writable"
        );
        check!(
            fs::read_dir("/sys/firmware")
                .map_err(|e| e.to_string())?
                .next()
                .is_none(),
            "/sys/firmware not masked"
        );
        // A read-only rbind of a mount whose flags are locked keeps them and is ro; asking for
        // rw/suid/relatime on a locked ro,nosuid,noatime mount keeps the locked flags instead of
        // failing.
        let opts = |p: &str| {
            mi.iter()
                .find(|(mp, _)| mp == p)
                .map(|(_, o)| o.clone())
                .unwrap_or_default()
        };
        let l = opts("/locked");
        check!(
            l.split(',').any(|o| o == "ro")
                && l.contains("nosuid")
                && l.contains("nodev")
                && l.contains("noexec"),
            "/locked: {l}"
        );
        let l = opts("/locked-ro");
        check!(
            l.split(',').any(|o| o == "ro") && l.contains("nosuid") && l.contains("noatime"),
            "/locked-ro: {l}"
        );
        check!(
            fs::read("/proc/timer_list")
                .map_err(|e| e.to_string())?
                .is_empty(),
            "not masked"
        );
        let v = fs::read_to_string("/proc/sys/kernel/shmmni").map_err(|e| e.to_string())?;
        check!(v.trim() == "1024", "shmmni = {v}");
        check!(
            errno_of(fs::write("/newfile", "x")) == Some(libc::EROFS),
            "/ writable"
        );
        check!(
            std::process::id() == 1,
            "not pid 1 of the new pid namespace"
        );
        let out = std::process::Command::new("/bin/busybox")
            .args(["ls", "/proc/1"])
            .output()
            .map_err(|e| format!("exec busybox: {e}"))?;
        check!(out.status.success(), "busybox ls: {out:?}");
        Ok(())
    })
    .unwrap();
}

#[test]
fn destination_swapped_with_a_symlink_during_setup_stays_inside() {
    // CVE-2021-30465: while the mounts are made, a racing process keeps exchanging the
    // destination's parent directory with a symlink to a host directory. Resolution in the root
    // and mounting through the resolved fd mean nothing may ever land on the host directory.
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let b = Bundle::new();
    let target = b.path().join("host-target");
    fs::create_dir(&target).unwrap();
    let root = b.root();
    fs::create_dir_all(root.join("mnt/race")).unwrap();
    std::os::unix::fs::symlink(&target, root.join("mnt/swap")).unwrap();
    let mounts: Vec<String> = (0..40)
        .map(|i| {
            format!(r#"{{"destination": "/mnt/race/m{i}", "type": "tmpfs", "source": "tmpfs"}}"#)
        })
        .collect();
    let plan = b.plan(&format!(
        r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}}, "mounts": [{DEFAULT_MOUNTS}, {}]}}"#,
        mounts.join(",")
    ));
    let (race, swap) = (root.join("mnt/race"), root.join("mnt/swap"));
    let target_c = target.clone();
    for _ in 0..5 {
        in_child(CloneFlags::empty(), || {
            let stop = AtomicBool::new(false);
            let count = AtomicU64::new(0);
            let errno = AtomicU64::new(0);
            let exchanges = std::thread::scope(|s| {
                let swapper = s.spawn(|| {
                    let a = std::ffi::CString::new(race.to_str().unwrap()).unwrap();
                    let b = std::ffi::CString::new(swap.to_str().unwrap()).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        // SAFETY: two valid NUL-terminated paths.
                        let r = unsafe {
                            libc::renameat2(
                                libc::AT_FDCWD,
                                a.as_ptr(),
                                libc::AT_FDCWD,
                                b.as_ptr(),
                                libc::RENAME_EXCHANGE,
                            )
                        };
                        if r == 0 {
                            count.fetch_add(1, Ordering::Relaxed);
                        } else {
                            errno.store(
                                std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as u64,
                                Ordering::Relaxed,
                            );
                        }
                    }
                });
                let start = std::time::Instant::now();
                while count.load(Ordering::Relaxed) < 10
                    && start.elapsed() < std::time::Duration::from_secs(5)
                {
                    std::hint::spin_loop();
                }
                // Success or failure both fine: only where things land matters.
                let _ = prepare_root(&plan);
                let during = count.load(Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
                swapper.join().unwrap();
                during
            });
            check!(
                exchanges >= 10,
                "the swapper did not run (errno {})",
                errno.load(Ordering::Relaxed)
            );
            let mi = mountinfo();
            check!(
                !mi.iter()
                    .any(|(mp, _)| Path::new(mp).starts_with(&target_c)),
                "mount on the host target: {mi:?}"
            );
            check!(
                fs::read_dir(&target_c)
                    .map_err(|e| e.to_string())?
                    .next()
                    .is_none(),
                "host target written to"
            );
            Ok(())
        })
        .unwrap();
    }
    assert!(fs::read_dir(&target).unwrap().next().is_none());
}
