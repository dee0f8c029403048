//! What a process sees inside the default sandbox of `reevec spec`.

use reeve_tests::*;

fn run_facts(h: &Harness, b: &mut Bundle) -> Facts {
    b.set_script(FACTS_SCRIPT);
    let out = h.run(b);
    out.assert_ok();
    let f = Facts::parse(&out.stdout);
    assert_eq!(
        f.one("done"),
        "1",
        "the facts script ran to the end:\n{out}"
    );
    f
}

/// The topmost mount at each mount point.
fn top(mounts: &[MountInfo], point: &str) -> Option<MountInfo> {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == point)
        .cloned()
}

#[test]
fn default_sandbox_facts() {
    require_root!();
    let h = Harness::new("facts");
    let mut b = h.bundle();
    let f = run_facts(&h, &mut b);

    assert_eq!(f.one("pid"), "1", "the process is PID 1 of its namespace");
    assert_eq!(f.one("hostname"), "reevec");
    assert_eq!(f.all("sysnet"), ["lo"], "only lo in /sys/class/net");
    assert_eq!(f.all("netdev"), ["lo"], "only lo in /proc/net/dev");

    let mounts = f.mounts();
    let root = top(&mounts, "/").expect("a root mount");
    assert!(root.read_only(), "root is read-only: {root:?}");
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        // A sandbox without a cgroup of its own (no cgroup v2 controllers on this host) gets an
        // empty read-only tmpfs: a cgroup2 mount would show the host's whole tree.
        (
            "/sys/fs/cgroup",
            if host_is_cgroup2() {
                "cgroup2"
            } else {
                "tmpfs"
            },
        ),
    ] {
        let m = top(&mounts, point).unwrap_or_else(|| panic!("no mount on {point}: {mounts:#?}"));
        assert_eq!(m.fstype, fstype, "{m:?}");
    }
    let sys = top(&mounts, "/sys").expect("sysfs");
    assert!(sys.read_only(), "sysfs is read-only: {sys:?}");
    let cg = top(&mounts, "/sys/fs/cgroup").expect("cgroup2");
    assert!(cg.read_only(), "cgroup2 is read-only: {cg:?}");
    for m in &mounts {
        assert!(
            !m.mount_point.contains("unreachable"),
            "a mount outside the root is visible: {m:?}"
        );
    }

    // maskedPaths: /proc/timer_list (readable by uid 0, never empty) and /proc/keys are
    // covered and read empty, /proc/kcore too where this kernel has one, /sys/firmware is an
    // empty directory.
    for p in ["/proc/timer_list", "/proc/keys"] {
        assert!(
            top(&mounts, p).is_some(),
            "{p} is masked by a mount: {mounts:#?}"
        );
    }
    assert_eq!(f.one("timer_list"), "0", "/proc/timer_list reads empty");
    assert_eq!(f.one("keys"), "0", "/proc/keys reads empty");
    if std::path::Path::new("/proc/kcore").exists() {
        assert_eq!(f.one("kcore"), "0", "/proc/kcore reads empty");
    } else {
        assert_eq!(f.one("kcore"), "absent");
    }
    assert_eq!(f.one("sysfirmware"), "0", "/sys/firmware is masked (empty)");
    // readonlyPaths: /proc/sys cannot be written, although uid 0 owns its files.
    assert_ne!(f.one("procsys_write"), "0", "write to /proc/sys must fail");
    assert!(
        f.one("procsys_err").contains("Read-only file system"),
        "/proc/sys is a read-only mount: {:?}",
        f.one("procsys_err")
    );
    assert!(top(&mounts, "/proc/sys").is_some_and(|m| m.read_only()));
    assert_ne!(f.one("root_write"), "0", "write to / must fail");
    assert!(
        f.one("root_err").contains("Read-only file system"),
        "{:?}",
        f.one("root_err")
    );

    let caps = cap_hex(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]);
    assert_eq!(f.one("CapEff"), caps, "effective capabilities");
    assert_eq!(f.one("CapPrm"), caps, "permitted capabilities");
    assert_eq!(f.one("CapBnd"), caps, "bounding set");
    assert_eq!(f.one("CapInh"), cap_hex(&[]), "no inheritable capabilities");
    assert_eq!(f.one("CapAmb"), cap_hex(&[]), "no ambient capabilities");
    assert_eq!(f.one("NoNewPrivs"), "1");
    assert_eq!(f.one("Seccomp"), "2", "a seccomp filter is installed");

    assert_eq!(
        f.all("fd"),
        ["0", "1", "2"],
        "only stdio is open in the process"
    );
    assert_eq!(f.one("cwd"), "/");
    assert_eq!(f.one("pwd"), "/");
    assert_eq!(f.one("Uid"), "0\t0\t0\t0");

    assert_ne!(
        f.one("mount_rc"),
        "0",
        "mount must fail: {:?}",
        f.one("mount_err")
    );
    assert_ne!(f.one("unshare_user_rc"), "0", "unshare -U must fail");
    assert!(
        f.one("unshare_user_err")
            .contains("Operation not permitted"),
        "unshare -U fails with EPERM (an unprivileged user namespace needs no capability, so \
         only seccomp stops it): {:?}",
        f.one("unshare_user_err")
    );
    assert_ne!(f.one("unshare_mnt_rc"), "0", "unshare -m must fail");
    assert!(f.one("unshare_mnt_err").contains("Operation not permitted"));
}

#[test]
fn blocked_syscalls_fail_with_eperm() {
    require_root!();
    let h = Harness::new("probe");
    let mut b = h.bundle();
    b.install_probe();
    b.set_args(&["/bin/probe"]);
    let out = h.run(&b);
    out.assert_ok();
    let f = Facts::parse(&out.stdout);
    let mut wrong = Vec::new();
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "ptrace",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "kexec_load",
        "init_module",
        "reboot",
        "swapon",
        "clock_settime",
        "acct",
        "open_by_handle_at",
        "pivot_root",
        "chroot",
        "ioctl_tiocsti",
    ] {
        if f.all(name) != ["EPERM"] {
            wrong.push(format!("{name}={:?} (want EPERM)", f.all(name)));
        }
    }
    if f.all("clone3") != ["ENOSYS"] {
        wrong.push(format!(
            "clone3={:?} (want ENOSYS so libc falls back to clone)",
            f.all("clone3")
        ));
    }
    if f.all("getpid") != ["OK"] {
        wrong.push(format!("getpid={:?} (want OK)", f.all("getpid")));
    }
    assert!(wrong.is_empty(), "{}\n{out}", wrong.join("\n"));
    assert_eq!(f.one("probe_pid"), "1");
}

#[test]
fn non_root_user_and_groups() {
    require_root!();
    let h = Harness::new("user");
    let mut b = h.bundle();
    b.set_user(1000, 1000, &[2000]);
    let f = run_facts(&h, &mut b);
    assert_eq!(f.one("idu"), "1000");
    assert_eq!(f.one("idg"), "1000");
    assert_eq!(f.one("idgroups"), "1000 2000");
    assert_eq!(
        f.one("Uid"),
        "1000\t1000\t1000\t1000",
        "real, effective, saved, fs uid"
    );
    assert_eq!(
        f.one("Gid"),
        "1000\t1000\t1000\t1000",
        "real, effective, saved, fs gid"
    );
    assert_eq!(
        f.one("Groups"),
        "2000",
        "supplementary groups are exactly additionalGids"
    );
    // A non-root uid keeps no capabilities across exec without ambient ones.
    assert_eq!(f.one("CapEff"), cap_hex(&[]));
    assert_eq!(f.one("CapPrm"), cap_hex(&[]));
    assert_eq!(f.one("NoNewPrivs"), "1");
    assert_eq!(f.one("Seccomp"), "2");
}
