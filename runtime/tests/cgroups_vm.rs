//! The cgroup v2 layer against a real kernel: limits, joining (cgroup.procs and
//! clone3(CLONE_INTO_CGROUP)), OOM kill, pids.max, cpu.max throttling, freeze, kill, remove and the
//! eBPF device filter.
//!
//! These tests create cgroups, so they run only in the test VM (`tests/vm/cargo-vm-test.sh`, which
//! sets REEVE_IN_VM=1) or on a pure cgroup v2 host (`/sys/fs/cgroup` is cgroup2 and offers memory,
//! pids and cpu) as root. Anywhere else, hybrid hosts included, each test prints SKIP and passes
//! without touching any cgroup.
//!
//! Children run only raw syscalls between fork/clone3 and _exit (no allocation, no locks), because
//! the test harness is multi-threaded.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use reeve_runtime::cgroups::{self, devices, plan, CgroupError, CgroupPlan, Manager};

fn should_run(test: &str) -> bool {
    if std::env::var("REEVE_IN_VM").as_deref() == Ok("1") {
        return true;
    }
    let why = if !cgroups::unified_host() {
        "/sys/fs/cgroup is not cgroup2 (hybrid or v1 host)".to_string()
    } else if unsafe_geteuid() != 0 {
        "not root".to_string()
    } else {
        match Manager::at(Path::new("/sys/fs/cgroup")).available_controllers() {
            Ok(c) if ["memory", "pids", "cpu"].iter().all(|n| c.contains(*n)) => return true,
            Ok(c) => format!("/sys/fs/cgroup lacks memory/pids/cpu (has {c:?})"),
            Err(e) => e.to_string(),
        }
    };
    // straight to stderr, past libtest's output capture, so the skip is always visible
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {test}: needs a real cgroup v2 hierarchy ({why}); run tests/vm/cargo-vm-test.sh \
         or set REEVE_IN_VM=1 inside a VM"
    );
    false
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn manager(name: &str, p: &CgroupPlan) -> Manager {
    let m = Manager::new(None, "", "reeve-vmtest", name).unwrap();
    // a leftover from an earlier failed run would make the checks below meaningless
    if m.exists() {
        m.kill().unwrap();
        m.remove().unwrap();
    }
    m.create(p).unwrap();
    m
}

fn resources(json: &str) -> CgroupPlan {
    plan(&serde_json::from_str(json).unwrap()).unwrap()
}

fn read(m: &Manager, file: &str) -> String {
    fs::read_to_string(m.path().join(file))
        .unwrap()
        .trim()
        .to_string()
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().unwrap()
}

/// Blocks the calling child until a byte arrives on `fd` (see [`release`]); the child holds a copy
/// of the write end too, so closing it in the parent would not wake it.
fn child_wait(fd: i32) {
    let mut b = 0u8;
    // SAFETY: one byte read into a live local.
    unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
}

fn release(w: &OwnedFd) {
    assert_eq!(nix::unistd::write(w, b"g").unwrap(), 1);
}

fn child_send(fd: i32, words: &[i64]) {
    // SAFETY: writes the bytes of a live slice.
    unsafe { libc::write(fd, words.as_ptr().cast(), std::mem::size_of_val(words)) };
}

fn recv(fd: &OwnedFd, n: usize) -> Vec<i64> {
    let mut buf = vec![0i64; n];
    let want = n * 8;
    let mut got = 0;
    while got < want {
        // SAFETY: reads into the live buffer, within its length.
        let r = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast::<u8>().add(got).cast(),
                want - got,
            )
        };
        assert!(r > 0, "child closed the pipe early ({r})");
        got += r as usize;
    }
    buf
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) ends the child without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

/// fork(2); the child runs `body` and exits with its result.
fn fork_child(body: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `body`, which makes raw syscalls, then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        exit_now(body());
    }
    pid
}

/// struct clone_args (CLONE_ARGS_SIZE_VER2 = 88 bytes); libc defines it only for musl.
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
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(CLONE_INTO_CGROUP): the child starts inside the cgroup `dir` (an O_PATH fd).
fn clone3_into(dir: &OwnedFd, body: impl FnOnce() -> i32) -> i32 {
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: without CLONE_VM and with stack 0, clone3 behaves like fork: the child gets a copy of
    // the address space and continues here; it only runs `body` (raw syscalls) and _exit.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    assert!(r >= 0, "clone3: {}", std::io::Error::last_os_error());
    if r == 0 {
        exit_now(body());
    }
    r as i32
}

fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child; status points to a live local.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    status
}

fn kill_and_wait(pid: i32) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait(pid);
}

fn cgroup_of(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .trim()
        .to_string()
}

fn spin() -> i32 {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

const LIMITS: &str = r#"{"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 16},
                         "cpu": {"quota": 50000, "period": 100000}}"#;

#[test]
fn limits_are_written_and_add_pid_moves_a_child() {
    if !should_run("limits_are_written_and_add_pid_moves_a_child") {
        return;
    }
    let m = manager("addpid", &resources(LIMITS));
    assert_eq!(read(&m, "memory.max"), "33554432");
    assert_eq!(read(&m, "memory.swap.max"), "0");
    assert_eq!(read(&m, "pids.max"), "16");
    assert_eq!(read(&m, "cpu.max"), "50000 100000");
    let parent = m.path().parent().unwrap();
    let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
    for c in ["cpu", "memory", "pids"] {
        assert!(
            enabled.contains(c),
            "{c} not enabled in {}: {enabled}",
            parent.display()
        );
    }

    let (r, w) = pipe();
    let rfd = r.as_raw_fd();
    let pid = fork_child(|| {
        child_wait(rfd);
        0
    });
    drop(r);
    assert_eq!(m.pids().unwrap(), Vec::<i32>::new());
    m.add_pid(pid).unwrap();
    assert_eq!(m.pids().unwrap(), [pid]);
    assert!(m.is_populated().unwrap());
    assert_eq!(
        cgroup_of(pid),
        format!("0::/{}", m.relative_path().display())
    );
    release(&w);
    assert_eq!(wait(pid), 0);
    assert!(m.pids().unwrap().is_empty());

    // update changes a limit in place
    m.update(&resources(r#"{"pids": {"limit": 32}}"#)).unwrap();
    assert_eq!(read(&m, "pids.max"), "32");
    m.remove().unwrap();
    assert!(!m.path().exists());
}

#[test]
fn clone3_into_cgroup_starts_the_child_inside() {
    if !should_run("clone3_into_cgroup_starts_the_child_inside") {
        return;
    }
    let m = manager("clone3", &resources(LIMITS));
    let dir = m.open_dir().unwrap();
    let (r, w) = pipe();
    let rfd = r.as_raw_fd();
    let pid = clone3_into(&dir, || {
        child_wait(rfd);
        0
    });
    drop(r);
    assert_eq!(m.pids().unwrap(), [pid]);
    assert_eq!(
        cgroup_of(pid),
        format!("0::/{}", m.relative_path().display())
    );
    release(&w);
    assert_eq!(wait(pid), 0);
    m.remove().unwrap();
}

#[test]
fn memory_max_oom_kills_and_memory_events_count_it() {
    if !should_run("memory_max_oom_kills_and_memory_events_count_it") {
        return;
    }
    let m = manager("oom", &resources(LIMITS));
    let before = m.stats().unwrap();
    assert_eq!(before.memory.event_count.oom_kill, 0);
    assert_eq!(before.memory.usage.limit, 32 << 20);
    let dir = m.open_dir().unwrap();
    let pid = clone3_into(&dir, || {
        let len = 128usize << 20;
        // SAFETY: a fresh private anonymous mapping, touched within its length.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return 2;
            }
            let p = p.cast::<u8>();
            let mut i = 0;
            while i < len {
                std::ptr::write_volatile(p.add(i), 1);
                i += 4096;
            }
        }
        0 // survived 128 MiB under a 32 MiB limit: the test fails below
    });
    let status = wait(pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "child was not OOM-killed: status {status:#x}"
    );
    let st = m.stats().unwrap();
    assert!(
        st.memory.event_count.oom_kill >= 1,
        "{:?}",
        st.memory.event_count
    );
    assert!(
        st.memory.event_count.oom >= 1,
        "{:?}",
        st.memory.event_count
    );
    assert!(
        st.memory.event_count.max >= 1,
        "{:?}",
        st.memory.event_count
    );
    let json = serde_json::to_value(&st).unwrap();
    assert!(json["memory"]["event_count"]["oom_kill"].as_u64().unwrap() >= 1);
    m.remove().unwrap();
}

#[test]
fn pids_max_stops_a_fork_bomb_with_eagain_and_kill_empties() {
    if !should_run("pids_max_stops_a_fork_bomb_with_eagain_and_kill_empties") {
        return;
    }
    let m = manager("pids", &resources(LIMITS));
    let dir = m.open_dir().unwrap();
    let (r, w) = pipe();
    let wfd = w.as_raw_fd();
    let pid = clone3_into(&dir, || {
        let mut forked = 0i64;
        loop {
            // SAFETY: fork; the grandchild only pauses until it is killed.
            let p = unsafe { libc::fork() };
            if p == 0 {
                loop {
                    // SAFETY: pause(2) has no preconditions.
                    unsafe { libc::pause() };
                }
            }
            if p < 0 {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                child_send(wfd, &[forked, i64::from(errno)]);
                loop {
                    // SAFETY: as above.
                    unsafe { libc::pause() };
                }
            }
            forked += 1;
            if forked > 1000 {
                child_send(wfd, &[forked, 0]);
                return 3;
            }
        }
    });
    drop(w);
    let got = recv(&r, 2);
    assert_eq!(
        got[1],
        i64::from(libc::EAGAIN),
        "fork failed with errno {}",
        got[1]
    );
    assert_eq!(got[0], 15, "16 pids: the bomb itself and 15 children");
    let st = m.stats().unwrap();
    assert_eq!((st.pids.current, st.pids.limit), (16, 16));
    assert_eq!(m.pids().unwrap().len(), 16);

    let t = Instant::now();
    m.kill().unwrap();
    eprintln!("kill of 16 processes took {:?}", t.elapsed());
    assert!(!m.is_populated().unwrap());
    assert!(m.all_pids().unwrap().is_empty());
    let status = wait(pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    m.remove().unwrap();
    assert!(!m.path().exists());
}

#[test]
fn cpu_max_throttles() {
    if !should_run("cpu_max_throttles") {
        return;
    }
    let m = manager(
        "cpu",
        &resources(r#"{"cpu": {"quota": 10000, "period": 100000}}"#),
    );
    assert_eq!(read(&m, "cpu.max"), "10000 100000");
    let dir = m.open_dir().unwrap();
    let start = Instant::now();
    let pid = clone3_into(&dir, spin);
    std::thread::sleep(Duration::from_millis(1500));
    let st = m.stats().unwrap();
    let wall = start.elapsed();
    kill_and_wait(pid);
    eprintln!(
        "cpu.max 10%: usage {} ms over {:?}, periods {}, throttled {} ({} ms)",
        st.cpu.usage.total / 1_000_000,
        wall,
        st.cpu.throttling.periods,
        st.cpu.throttling.throttled_periods,
        st.cpu.throttling.throttled_time / 1_000_000
    );
    assert!(st.cpu.throttling.periods > 0);
    assert!(st.cpu.throttling.throttled_periods > 0, "{:?}", st.cpu);
    assert!(st.cpu.throttling.throttled_time > 0, "{:?}", st.cpu);
    // 10% of one CPU, with generous slack for the last period and accounting granularity
    assert!(
        u128::from(st.cpu.usage.total) < wall.as_nanos() * 35 / 100,
        "a 10% quota let the child use {} ns of {:?}",
        st.cpu.usage.total,
        wall
    );
    m.remove().unwrap();
}

#[test]
fn freeze_stops_and_thaw_resumes() {
    if !should_run("freeze_stops_and_thaw_resumes") {
        return;
    }
    let m = manager("freeze", &CgroupPlan::default());
    let dir = m.open_dir().unwrap();
    let pid = clone3_into(&dir, spin);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!m.is_frozen().unwrap());
    m.freeze(true).unwrap();
    assert!(m.is_frozen().unwrap());
    let u1 = m.stats().unwrap().cpu.usage.total;
    std::thread::sleep(Duration::from_millis(300));
    let u2 = m.stats().unwrap().cpu.usage.total;
    assert!(u2 - u1 < 1_000_000, "frozen cgroup used {} ns", u2 - u1);
    let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(state.contains(") S ") || state.contains(") D "), "{state}");
    m.freeze(false).unwrap();
    assert!(!m.is_frozen().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let u3 = m.stats().unwrap().cpu.usage.total;
    assert!(
        u3 > u2 + 10_000_000,
        "thawed child did not run: {u2} -> {u3}"
    );
    // a frozen cgroup can still be killed
    m.freeze(true).unwrap();
    m.kill().unwrap();
    let status = wait(pid);
    assert!(libc::WIFSIGNALED(status));
    m.remove().unwrap();
}

#[test]
fn kill_reaches_nested_cgroups_and_remove_leaves_nothing() {
    if !should_run("kill_reaches_nested_cgroups_and_remove_leaves_nothing") {
        return;
    }
    let m = manager("nested", &CgroupPlan::default());
    let dir = m.open_dir().unwrap();
    let a = clone3_into(&dir, spin);
    let b = clone3_into(&dir, spin);
    let sub = m.path().join("sub/deeper");
    fs::create_dir_all(&sub).unwrap();
    fs::write(sub.join("cgroup.procs"), b.to_string()).unwrap();
    assert_eq!(m.pids().unwrap(), [a]);
    let mut all = m.all_pids().unwrap();
    all.sort_unstable();
    let mut want = vec![a, b];
    want.sort_unstable();
    assert_eq!(all, want);

    // remove refuses while populated (EBUSY until the timeout)
    let short = m.clone().with_timeout(Duration::from_millis(50));
    let err = short.remove().unwrap_err();
    assert!(matches!(err, CgroupError::Rmdir { .. }), "{err}");

    m.kill().unwrap();
    assert!(!m.is_populated().unwrap());
    wait(a);
    wait(b);
    m.remove().unwrap();
    assert!(!m.path().exists());
    assert!(m.path().parent().unwrap().exists(), "the parent stays");
    // idempotent
    m.remove().unwrap();
}

fn try_open(path: &'static std::ffi::CStr) -> i64 {
    // SAFETY: open(2) with a NUL-terminated static path; the fd is closed right away.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1));
    }
    // SAFETY: closes the fd just opened.
    unsafe { libc::close(fd) };
    0
}

fn open_null_and_full_in(m: &Manager) -> (i64, i64) {
    let dir = m.open_dir().unwrap();
    let (r, w) = pipe();
    let wfd = w.as_raw_fd();
    let pid = clone3_into(&dir, || {
        child_send(wfd, &[try_open(c"/dev/null"), try_open(c"/dev/full")]);
        0
    });
    drop(w);
    let got = recv(&r, 2);
    assert_eq!(wait(pid), 0);
    (got[0], got[1])
}

#[test]
fn device_filter_blocks_full_allows_null_and_update_replaces_it() {
    if !should_run("device_filter_blocks_full_allows_null_and_update_replaces_it") {
        return;
    }
    assert_eq!(
        try_open(c"/dev/full"),
        0,
        "/dev/full must open outside the cgroup"
    );
    let deny_all_but_null = r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#;
    let m = manager("devices", &resources(deny_all_but_null));
    let cg = fs::File::open(m.path()).unwrap();
    use std::os::fd::AsFd;
    assert_eq!(devices::attached(cg.as_fd(), m.path()).unwrap().len(), 1);
    assert_eq!(open_null_and_full_in(&m), (0, i64::from(libc::EPERM)));

    // update: also allow read/write of /dev/full; the old program is replaced, not stacked
    let with_full = r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rw"}]}"#;
    m.update(&resources(with_full)).unwrap();
    assert_eq!(devices::attached(cg.as_fd(), m.path()).unwrap().len(), 1);
    assert_eq!(open_null_and_full_in(&m), (0, 0));

    // last match wins: a later deny of writes to /dev/null
    let deny_null_write = r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]}"#;
    m.update(&resources(deny_null_write)).unwrap();
    assert_eq!(
        open_null_and_full_in(&m),
        (i64::from(libc::EPERM), i64::from(libc::EPERM))
    );
    m.remove().unwrap();
}

#[test]
fn missing_controllers_in_a_real_subtree_are_refused() {
    if !should_run("missing_controllers_in_a_real_subtree_are_refused") {
        return;
    }
    // a cgroup whose parent delegates no controllers offers none
    let outer = manager("nocontrollers", &CgroupPlan::default());
    let inner = outer.path().join("inner");
    fs::create_dir(&inner).unwrap();
    assert_eq!(
        fs::read_to_string(inner.join("cgroup.controllers"))
            .unwrap()
            .trim(),
        ""
    );
    let err = Manager::at(&inner).check(&resources(LIMITS)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cpu, memory, pids") && msg.contains("Delegate=yes"),
        "{msg}"
    );
    let below = Manager::new(Some(&inner), "", "x", "y").unwrap();
    assert!(below.create(&resources(LIMITS)).is_err());
    assert!(
        !inner.join("x").exists(),
        "nothing is created when controllers are missing"
    );
    outer.remove().unwrap();
}

#[test]
fn the_vm_root_is_found_in_mountinfo() {
    if !should_run("the_vm_root_is_found_in_mountinfo") {
        return;
    }
    assert!(cgroups::unified_host());
    assert_eq!(
        cgroups::find_cgroup2_root().unwrap(),
        Path::new("/sys/fs/cgroup")
    );
    let m = Manager::new(None, "/reeve-vmtest/abs", "ignored", "ignored").unwrap();
    assert_eq!(m.path(), Path::new("/sys/fs/cgroup/reeve-vmtest/abs"));
}
