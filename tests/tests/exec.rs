//! `exec`: a second process joins the running container (its pid namespace, hostname, mounts),
//! keeps the container's restrictions, reports its exit status and its failures, and
//! `--detach --pid-file` leaves it running.

use std::time::Duration;

use reeve_tests::*;

#[test]
fn exec_joins_the_container_and_keeps_its_restrictions() {
    require_root!();
    if kind_under_test() != Kind::Reevec {
        eprintln!("SKIPPED: exec is tested against reevec only");
        return;
    }
    let h = Harness::new("exec");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    let (c, out) = h.create(&b);
    out.assert_ok();
    c.start().assert_ok();
    assert!(c.wait_status("running", Duration::from_secs(5)));

    let out = h.exec(&[
        "exec",
        c.id.as_str(),
        "sh",
        "-c",
        "echo pid=$$; hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; grep -E '^(CapInh|CapEff|NoNewPrivs|Seccomp):' /proc/self/status; touch /x 2>&1 || echo rootro",
    ]);
    out.assert_ok();
    let s = &out.stdout;
    assert!(
        s.contains("pid=") && !s.contains("pid=1\n"),
        "not the init: {s}"
    );
    assert!(s.contains("reevec\n"), "container hostname: {s}");
    assert!(s.contains("sleep 30"), "sees the container's init: {s}");
    assert!(
        s.contains(&format!(
            "CapEff:\t{}",
            cap_hex(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE])
        )),
        "{s}"
    );
    assert!(s.contains("CapInh:\t0000000000000000"), "{s}");
    assert!(s.contains("NoNewPrivs:\t1"), "{s}");
    assert!(s.contains("Seccomp:\t2"), "{s}");
    assert!(s.contains("rootro"), "the container's read-only root: {s}");

    let out = h.exec(&["exec", c.id.as_str(), "sh", "-c", "exit 7"]);
    assert_eq!(out.code, Some(7), "{}", out.all());

    let out = h.exec(&["exec", c.id.as_str(), "/no/such/binary"]);
    out.assert_fails();
    assert!(
        out.stderr.contains("exec") && out.stderr.contains("/no/such/binary"),
        "{}",
        out.all()
    );

    let pid_file = h.dir().join("exec.pid");
    let pf = pid_file.to_string_lossy().to_string();
    h.exec(&[
        "exec",
        "--detach",
        "--pid-file",
        &pf,
        c.id.as_str(),
        "sleep",
        "20",
    ])
    .assert_ok();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let ps = h
        .exec(&["ps", "--format", "json", c.id.as_str()])
        .json()
        .expect("ps json");
    assert!(
        ps.as_array()
            .expect("array")
            .iter()
            .any(|p| p.as_i64() == Some(pid as i64)),
        "detached exec {pid} is one of the container's processes: {ps}"
    );
}

#[test]
fn exec_into_a_stopped_container_fails() {
    require_root!();
    if kind_under_test() != Kind::Reevec {
        return;
    }
    let h = Harness::new("exec-stopped");
    let mut b = h.bundle();
    b.set_args(&["true"]);
    let (c, out) = h.create(&b);
    out.assert_ok();
    let out = h.exec(&["exec", c.id.as_str(), "true"]);
    out.assert_fails();
    assert!(out.stderr.contains("not running"), "{}", out.all());
}
