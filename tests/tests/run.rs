//! `reevec spec` then `reevec run`: output, exit status, death by signal.

use std::time::Duration;

use reeve_tests::*;

#[test]
fn spec_writes_the_documented_default() {
    require_root!();
    let h = Harness::new("spec");
    let b = h.bundle();
    let s = b.spec();
    let ns: Vec<&str> = s["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount", "cgroup"] {
        assert!(ns.contains(&want), "namespace {want} missing from {ns:?}");
    }
    assert!(
        !ns.contains(&"user"),
        "the default spec has no user namespace: {ns:?}"
    );
    let caps = &s["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted"] {
        let mut v: Vec<&str> = caps[set]
            .as_array()
            .unwrap_or_else(|| panic!("capabilities.{set}"))
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        v.sort();
        assert_eq!(
            v,
            ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "{set}"
        );
    }
    let inh = caps["inheritable"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(inh, 0, "no inheritable capabilities");
    assert_eq!(s["process"]["noNewPrivileges"], true);
    assert_eq!(s["process"]["terminal"], false);
    assert_eq!(s["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(s["root"]["readonly"], true);
    assert_eq!(s["hostname"], "reevec");
    let nofile = s["process"]["rlimits"]
        .as_array()
        .expect("rlimits")
        .iter()
        .find(|r| r["type"] == "RLIMIT_NOFILE")
        .expect("RLIMIT_NOFILE");
    assert_eq!(
        (nofile["soft"].as_u64(), nofile["hard"].as_u64()),
        (Some(1024), Some(1024))
    );
    let mounts: Vec<(String, String)> = s["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            (
                m["destination"].as_str().unwrap_or_default().to_string(),
                m["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (d, t) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup2"),
    ] {
        assert!(
            mounts.contains(&(d.to_string(), t.to_string())),
            "mount {t} on {d} missing from {mounts:?}"
        );
    }
    let masked = s["linux"]["maskedPaths"].as_array().expect("maskedPaths");
    assert!(masked.contains(&serde_json::json!("/proc/kcore")));
    let ro = s["linux"]["readonlyPaths"]
        .as_array()
        .expect("readonlyPaths");
    assert!(ro.contains(&serde_json::json!("/proc/sys")));
    let seccomp = &s["linux"]["seccomp"];
    assert_eq!(
        seccomp["defaultAction"], "SCMP_ACT_ERRNO",
        "default seccomp profile"
    );
    assert!(seccomp["syscalls"].as_array().map(Vec::len).unwrap_or(0) > 10);
}

#[test]
fn run_prints_hello() {
    require_root!();
    let h = Harness::new("hello");
    let mut b = h.bundle();
    b.set_args(&["echo", "hello"]);
    let out = h.run(&b);
    out.assert_ok();
    assert_eq!(out.stdout, "hello\n", "{out}");
}

#[test]
fn run_propagates_the_exit_status() {
    require_root!();
    let h = Harness::new("exit");
    let mut b = h.bundle();
    b.set_script("exit 42");
    let out = h.run(&b);
    assert_eq!(out.code, Some(42), "{out}");
    b.set_args(&["false"]);
    let out = h.run(&b);
    assert_eq!(out.code, Some(1), "{out}");
}

#[test]
fn run_reports_a_fault_as_128_plus_signal() {
    require_root!();
    let h = Harness::new("segv");
    let mut b = h.bundle();
    b.install_probe();
    b.set_args(&["/bin/probe", "segv"]);
    let out = h.run(&b);
    assert_eq!(out.code, Some(128 + libc::SIGSEGV), "{out}");
}

#[test]
fn run_reports_an_external_sigkill_as_137() {
    require_root!();
    let h = Harness::new("sigkill");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    b.save();
    let c = h.container();
    let run = h.spawn(&[
        "run".as_ref(),
        "--bundle".as_ref(),
        b.path().as_os_str(),
        c.id.as_ref(),
    ]);
    assert!(
        c.wait_status("running", Duration::from_secs(10)),
        "container never became running: {:?}",
        c.state()
    );
    c.kill("KILL").assert_ok();
    let out = run.wait();
    assert_eq!(out.code, Some(128 + libc::SIGKILL), "{out}");
}
