//! Attempts to reach the host from a bundle: symlinks at mount destinations and masked paths,
//! a symlinked /proc, the cwd of CVE-2024-21626 and the runtime binary of CVE-2019-5736.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use reeve_tests::*;
use serde_json::json;

/// A host directory outside every bundle, with one file whose content must never change.
struct HostDir {
    dir: tempfile::TempDir,
}

const HOST_CONTENT: &str = "HOST-SECRET\n";

impl HostDir {
    fn new() -> HostDir {
        let dir = tempfile::Builder::new()
            .prefix("reeve-e2e-host-")
            .tempdir_in("/tmp")
            .expect("host temp dir");
        fs::write(dir.path().join("host-file"), HOST_CONTENT).expect("host file");
        HostDir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn path_str(&self) -> &str {
        self.path().to_str().expect("utf-8 temp path")
    }

    /// Panic unless the directory still holds exactly `host-file` with its content and no
    /// host mount lies at or under it.
    #[track_caller]
    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            list_dir(self.path()),
            ["host-file"],
            "{what}: host dir {} changed",
            self.path_str()
        );
        assert_eq!(
            fs::read_to_string(self.path().join("host-file")).expect("host file"),
            HOST_CONTENT,
            "{what}: host file changed"
        );
        let leaked: Vec<_> = host_mounts()
            .into_iter()
            .filter(|m| m.mount_point.starts_with(self.path_str()))
            .collect();
        assert!(
            leaked.is_empty(),
            "{what}: host mounts under {}: {leaked:#?}",
            self.path_str()
        );
    }
}

/// A relative symlink target that climbs from `<rootfs>/<at>` up to the host's `/` and then
/// down to `dest` (an absolute host path): on the host it resolves to `dest`, inside the
/// root to `dest` below the root.
fn climbing_target(rootfs: &Path, at: &str, dest: &str) -> String {
    let depth = rootfs.join(at.trim_start_matches('/')).components().count() - 2;
    format!(
        "{}{}",
        "../".repeat(depth + 3),
        dest.trim_start_matches('/')
    )
}

fn mount_points_of(facts: &Facts) -> Vec<(String, String)> {
    facts
        .mounts()
        .into_iter()
        .map(|m| (m.mount_point, m.fstype))
        .collect()
}

#[test]
fn mount_destination_below_a_symlink_to_a_host_dir_stays_in_the_root() {
    require_root!();
    let h = Harness::new("symmnt");
    let host = HostDir::new();
    let mut b = h.bundle();
    b.symlink("mnt", host.path_str());
    b.add_mount(
        json!({"destination": "/mnt/sub", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "size=1m"]}),
    );
    b.set_script(
        "echo x > /mnt/sub/marker; echo write_rc=$?; \
         while read -r l; do echo \"mountinfo=$l\"; done < /proc/self/mountinfo",
    );
    let out = h.run(&b);
    host.assert_untouched("tmpfs on /mnt/sub with /mnt -> host dir");
    if out.success() {
        let f = Facts::parse(&out.stdout);
        let want = (format!("{}/sub", host.path_str()), "tmpfs".to_string());
        assert!(
            mount_points_of(&f).contains(&want),
            "the tmpfs must land inside the root at {want:?}:\n{out}"
        );
        assert_eq!(f.one("write_rc"), "0", "{out}");
        assert!(
            b.rootfs()
                .join(host.path_str().trim_start_matches('/'))
                .join("sub")
                .is_dir(),
            "the destination was made inside the rootfs"
        );
    } else {
        assert!(!out.timed_out, "{out}");
        eprintln!("the runtime refused the bundle:\n{out}");
    }
}

#[test]
fn mount_destination_below_a_symlink_to_host_etc_creates_nothing_on_the_host() {
    require_root!();
    let h = Harness::new("symetc");
    let name = format!("reeve-e2e-{}", std::process::id());
    let host_path = PathBuf::from("/etc").join(&name);
    assert!(
        !host_path.exists(),
        "{} exists before the test",
        host_path.display()
    );
    let mut b = h.bundle();
    b.symlink("mnt", "/etc");
    b.add_mount(json!({"destination": format!("/mnt/{name}"), "type": "tmpfs", "source": "tmpfs"}));
    b.set_args(&["true"]);
    let out = h.run(&b);
    let created = host_path.exists();
    if created {
        let _ = fs::remove_dir(&host_path);
    }
    assert!(
        !created,
        "the runtime created {} on the host:\n{out}",
        host_path.display()
    );
    assert!(!out.timed_out, "{out}");
    let leaked: Vec<_> = host_mounts()
        .into_iter()
        .filter(|m| m.mount_point.contains(&name))
        .collect();
    assert!(leaked.is_empty(), "{leaked:#?}");
}

#[test]
fn bind_destination_through_a_climbing_symlink_stays_in_the_root() {
    require_root!();
    let h = Harness::new("symbind");
    for (i, dest) in ["/data/sub", "/data"].iter().enumerate() {
        let host = HostDir::new();
        let mut b = h.bundle();
        let src = h.dir().join(format!("bind-src-{i}"));
        fs::create_dir(&src).expect("bind source");
        fs::write(src.join("payload"), "PAYLOAD\n").expect("payload");
        let target = climbing_target(&b.rootfs(), "data", host.path_str());
        b.symlink("data", &target);
        // On the host, the symlink really leads to the host dir: the test means something.
        assert_eq!(
            fs::canonicalize(b.rootfs().join("data")).expect("resolve"),
            fs::canonicalize(host.path()).expect("resolve")
        );
        b.add_mount(json!({"destination": dest, "type": "bind",
                           "source": src.to_str().expect("utf-8"), "options": ["rbind", "ro"]}));
        b.set_script(&format!(
            "echo payload=$(cat {dest}/payload); \
             while read -r l; do echo \"mountinfo=$l\"; done < /proc/self/mountinfo"
        ));
        let out = h.run(&b);
        host.assert_untouched(&format!("bind on {dest} with /data -> {target}"));
        assert!(!out.timed_out, "{out}");
        if out.success() {
            let f = Facts::parse(&out.stdout);
            assert_eq!(
                f.one("payload"),
                "PAYLOAD",
                "the bind is where the container looks:\n{out}"
            );
            let inside = format!("{}{}", host.path_str(), dest.trim_start_matches("/data"));
            assert!(
                f.mounts().iter().any(|m| m.mount_point == inside),
                "the bind lands inside the root at {inside}:\n{out}"
            );
            eprintln!("bind on {dest}: mounted inside the root at {inside}");
        } else {
            eprintln!("bind on {dest}: the runtime refused the bundle:\n{out}");
        }
    }
}

#[test]
fn proc_replaced_by_a_symlink_fails_naming_proc() {
    require_root!();
    let h = Harness::new("symproc");
    let host = HostDir::new();
    let mut b = h.bundle();
    b.symlink("proc", host.path_str());
    b.set_args(&["true"]);
    let (c, out) = h.create(&b);
    host.assert_untouched("/proc -> host dir");
    out.assert_fails();
    assert!(
        out.stderr.contains("/proc"),
        "the error names /proc:\n{out}"
    );
    assert!(
        !h.state_root().join(&c.id).exists(),
        "state left behind: {:?}",
        list_dir(h.state_root())
    );
}

#[test]
fn masked_path_symlinked_to_the_host_masks_nothing_outside() {
    require_root!();
    let h = Harness::new("symmask");
    let host = HostDir::new();
    let missing = format!("{}/not-there", host.path_str());
    let mut b = h.bundle();
    b.symlink("etc/secret", &format!("{}/host-file", host.path_str()));
    b.symlink("etc/missing", &missing);
    b.symlink(
        "etc/climb",
        &climbing_target(
            &b.rootfs(),
            "etc/climb",
            &format!("{}/host-file", host.path_str()),
        ),
    );
    b.add_masked_path("/etc/secret");
    b.add_masked_path("/etc/missing");
    b.add_masked_path("/etc/climb");
    b.set_args(&["true"]);
    let before = host_mounts().len();
    let (c, out) = h.create(&b);
    // While the init waits in `created`, its mounts are all made.
    host.assert_untouched("masked symlinks, created");
    assert_eq!(
        host_mounts().len(),
        before,
        "a mount propagated to the host"
    );
    if out.success() {
        let pid = c.pid();
        let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("init mountinfo");
        for m in info.lines().filter_map(MountInfo::parse) {
            assert!(
                !m.mount_point.contains("unreachable"),
                "a mount outside the container's root: {m:?}"
            );
        }
        c.start().assert_ok();
    } else {
        assert!(!out.timed_out, "{out}");
        eprintln!("the runtime refused the bundle:\n{out}");
    }
    drop(c);
    host.assert_untouched("masked symlinks, after");
}

#[test]
fn cve_2024_21626_cwd_in_a_leaked_fd_never_escapes() {
    require_root!();
    let h = Harness::new("cwdfd");
    let mut b = h.bundle();
    b.set_script(
        "c=$(readlink /proc/self/cwd); echo cwd=$c; \
         echo here=$(stat -c %d:%i .); echo there=$(stat -c %d:%i \"$c\");",
    );
    for fd in 3..=9 {
        b.set_cwd(&format!("/proc/self/fd/{fd}"));
        let out = h.run(&b);
        assert!(!out.timed_out, "{out}");
        let f = Facts::parse(&out.stdout);
        if f.0.contains_key("cwd") {
            let cwd = f.one("cwd");
            assert!(
                !cwd.contains("unreachable") && cwd.starts_with('/'),
                "cwd /proc/self/fd/{fd} escaped the root: {cwd:?}\n{out}"
            );
            assert!(
                !f.one("here").is_empty() && f.one("here") == f.one("there"),
                "{out}"
            );
            eprintln!("cwd /proc/self/fd/{fd}: ran with cwd {cwd}");
        } else {
            eprintln!("cwd /proc/self/fd/{fd}: refused: {}", out.stderr.trim());
        }
    }
}

#[test]
fn cve_2019_5736_created_init_runs_from_a_sealed_memfd() {
    require_root!();
    let h = Harness::new("memfd");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    let (c, out) = h.create(&b);
    out.assert_ok();
    let pid = c.pid();
    let exe = format!("/proc/{pid}/exe");
    let link = fs::read_link(&exe)
        .expect("readlink exe")
        .to_string_lossy()
        .into_owned();
    assert!(
        link.contains("memfd:"),
        "the waiting init runs {link:?}, not a sealed memfd copy of the runtime"
    );
    let on_disk = fs::metadata(h.bin()).expect("runtime binary");
    let running = fs::metadata(&exe).expect("stat exe");
    assert_ne!(
        (running.dev(), running.ino()),
        (on_disk.dev(), on_disk.ino()),
        "the init's exe is the binary on disk"
    );
    let f = fs::File::open(&exe).expect("open exe");
    // SAFETY: fcntl(F_GET_SEALS) on an fd we own.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    assert!(
        seals >= 0,
        "F_GET_SEALS: {}",
        std::io::Error::last_os_error()
    );
    for (flag, name) in [
        (libc::F_SEAL_WRITE, "F_SEAL_WRITE"),
        (libc::F_SEAL_SHRINK, "F_SEAL_SHRINK"),
        (libc::F_SEAL_GROW, "F_SEAL_GROW"),
        (libc::F_SEAL_SEAL, "F_SEAL_SEAL"),
    ] {
        assert!(seals & flag != 0, "memfd lacks {name} (seals {seals:#x})");
    }
    let w = fs::OpenOptions::new().write(true).open(&exe);
    if let Ok(mut w) = w {
        use std::io::Write;
        assert!(
            w.write_all(b"\x7fELF-overwritten").is_err(),
            "the init's exe is writable"
        );
    }
    // After start, the container runs its own binary.
    c.start().assert_ok();
    let later = poll(std::time::Duration::from_secs(5), || {
        let l = fs::read_link(&exe).ok()?.to_string_lossy().into_owned();
        l.ends_with("/bin/busybox").then_some(l)
    });
    assert!(
        later.is_some(),
        "after start exe is {:?}",
        fs::read_link(&exe)
    );
}
