//! The caller contract on the host (reevec): OCI hooks in every phase, the errors containerd's
//! shim matches, the flags engines pass, config.json read once at create, the seccomp ordering
//! older profiles need, --preserve-fds and the session keyring. The VM test `contract_vm`
//! runs the same scenarios under runc 1.1.5 and compares.

use std::fs;
use std::os::fd::AsRawFd;
use std::process::Stdio;

use reeve_tests::contract::{errors_report, failing_hook, hooks_report};
use reeve_tests::*;
use serde_json::json;

#[test]
fn every_hook_phase_runs_in_order_in_the_right_namespace() {
    require_root!();
    let h = Harness::reevec("hooks");
    let r = hooks_report(&h).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.after_create,
        ["prestart", "createRuntime", "createContainer"]
    );
    assert_eq!(
        r.after_start,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart"
        ]
    );
    assert_eq!(r.after_delete.last().map(String::as_str), Some("poststop"));
    let want = [
        ("prestart", "creating", "init", "host"),
        ("createRuntime", "creating", "init", "host"),
        ("createContainer", "creating", "1", "container"),
        ("startContainer", "created", "1", "container"),
        ("poststart", "running", "init", "host"),
        ("poststop", "stopped", "0", "host"),
    ];
    for (phase, status, pid, ns) in want {
        let s = &r.seen[phase];
        assert_eq!(
            (s.status.as_str(), s.pid.as_str(), s.mount_ns.as_str()),
            (status, pid, ns),
            "{phase}: {s:?}"
        );
        assert!(s.id_matches, "{phase}: {s:?}");
        assert_eq!(
            s.env, "yes unset",
            "{phase}: only the hook's env reaches it"
        );
    }
}

#[test]
fn failing_hooks_fail_create_and_start_but_only_warn_after() {
    require_root!();
    let h = Harness::reevec("hookfail");
    for phase in ["prestart", "createRuntime", "createContainer"] {
        let (created, _, left, out) = failing_hook(&h, phase);
        assert!(!created, "{phase}: create must fail");
        assert!(!left, "{phase}: a failed create leaves no container");
        assert!(
            out.contains(&format!(
                "{phase} hook /bin/sh failed (exit status: 3): hook says no"
            )),
            "{phase}: {out}"
        );
    }
    let (created, started, left, out) = failing_hook(&h, "startContainer");
    assert!(created && !started && !left, "startContainer: {out}");
    assert!(out.contains("startContainer hook /bin/sh failed"), "{out}");
    let (created, started, left, out) = failing_hook(&h, "poststart");
    assert!(created && started && left, "poststart only warns: {out}");
}

#[test]
fn a_hook_past_its_timeout_fails_create() {
    require_root!();
    let h = Harness::reevec("hooktimeout");
    let mut b = h.bundle();
    b.spec_mut()["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh", "args": ["sh", "-c", "sleep 60"], "timeout": 1
    }]});
    let (c, out) = h.create(&b);
    out.assert_fails();
    assert!(
        out.stderr
            .contains("createRuntime hook /bin/sh did not finish within 1s"),
        "{out}"
    );
    assert!(
        c.state().is_err(),
        "nothing is left after the failed create"
    );
}

#[test]
fn errors_callers_match_for_exited_and_missing_containers() {
    require_root!();
    let h = Harness::reevec("errors");
    let r = errors_report(&h);
    let want: &[(&str, i32)] = &[
        ("delete a running container", 1),
        ("kill an exited container", 1),
        ("kill --all an exited container", 0),
        ("delete an exited container", 0),
        ("state of a deleted container", 1),
        ("delete a deleted container", 1),
        ("delete --force a deleted container", 0),
        ("kill a deleted container", 1),
    ];
    for (name, code) in want {
        let a = &r[name];
        assert_eq!(a.code, Some(*code), "{name}: {a:?}");
        assert!(
            a.matched,
            "{name}: the text callers match is missing: {a:?}"
        );
    }
}

#[test]
fn flags_engines_pass_are_honoured_or_refused_by_name() {
    require_root!();
    let h = Harness::reevec("flags");
    let b = h.bundle();
    b.save();
    let bundle = b.path().to_str().expect("utf-8 path");
    let refused = [
        (
            vec!["create", "--no-pivot", "--bundle", bundle, "x1"],
            "--no-pivot is not supported",
        ),
        (
            vec!["--rootless", "true", "state", "x3"],
            "--rootless=true is not supported",
        ),
        (
            vec!["checkpoint", "--image-path", "/tmp/i", "x4"],
            "checkpoint is not supported",
        ),
        (vec!["restore", "x5"], "restore is not supported"),
        (
            vec!["exec", "--process-label", "system_u:r", "x6", "true"],
            "--process-label is not supported",
        ),
        (
            vec!["exec", "--cgroup", "sub", "x7", "true"],
            "--cgroup is not supported",
        ),
    ];
    for (args, text) in refused {
        let out = h.exec(&args);
        out.assert_fails();
        assert!(out.stderr.contains(text), "{args:?}: {out}");
    }
    // The systemd driver needs systemd's D-Bus, which this host does not run: a clear error,
    // nothing left (the systemd VM test drives the driver for real).
    let mut cmd = std::process::Command::new(reevec_bin());
    cmd.arg("--root").arg(h.state_root());
    cmd.args(["--systemd-cgroup", "create", "--bundle", bundle, "x2"]);
    let out = run_cmd(cmd, h.dir());
    out.assert_fails();
    assert!(out.stderr.contains("systemd D-Bus (system bus)"), "{out}");
    assert!(!h.state_root().join("x2").exists(), "nothing left: {out}");
    // Accepted: --criu (never used), --rootless auto/false, --no-new-keyring, --no-subreaper.
    let mut b = h.bundle();
    b.set_args(&["true"]);
    b.save();
    let c = h.container();
    let bundle = b.path().to_str().expect("utf-8 path");
    h.exec(&[
        "--criu",
        "/usr/sbin/criu",
        "--rootless",
        "false",
        "run",
        "--no-subreaper",
        "--no-new-keyring",
        "--bundle",
        bundle,
        &c.id,
    ])
    .assert_ok();
}

#[test]
fn exec_refuses_process_flags_it_would_otherwise_ignore() {
    require_root!();
    let h = Harness::reevec("execflags");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    let (c, out) = h.create(&b);
    out.assert_ok();
    c.start().assert_ok();
    let p = h.dir().join("p.json");
    let mut proc_ = b.spec()["process"].clone();
    proc_["args"] = json!(["sh", "-c", "echo $0 $(id -u) $PWD"]);
    fs::write(&p, proc_.to_string()).expect("process.json");
    let p = p.to_str().expect("utf-8");
    let out = h.exec(&["exec", "--process", p, "--cwd", "/tmp", &c.id]);
    out.assert_fails();
    assert!(
        out.stderr.contains("--cwd cannot be combined with it"),
        "{out}"
    );
    let out = h.exec(&["exec", "--process", p, &c.id]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "sh 0 /", "{out}");
    // --user N is uid N (CVE-2026-30892), --cap never reaches the inheritable set.
    let out = h.exec(&[
        "exec",
        "--user",
        "1:2",
        "--cap",
        "CAP_SYS_TIME",
        "--cwd",
        "/tmp",
        &c.id,
        "sh",
        "-c",
        "echo $(id -u):$(id -g) $PWD; grep -E 'CapInh|CapBnd' /proc/self/status",
    ]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1:2 /tmp", "{out}");
    assert!(
        lines[1].starts_with("CapInh:") && lines[1].ends_with("0000000000000000"),
        "{out}"
    );
    let bnd = lines[2]
        .strip_prefix("CapBnd:")
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or_else(|| panic!("CapBnd line: {out}"));
    assert_ne!(
        bnd & (1 << 25),
        0,
        "--cap CAP_SYS_TIME is in the bounding set: {out}"
    );
}

#[test]
fn config_json_is_read_once_at_create() {
    require_root!();
    let h = Harness::reevec("readonce");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    b.add_env("MARK=at-create");
    let (c, out) = h.create(&b);
    out.assert_ok();
    // Change and then remove the bundle's config.json: the container does not notice.
    b.add_env("MARK=changed");
    b.spec_mut()["process"]["args"] = json!(["false"]);
    b.save();
    c.start().assert_ok();
    let out = h.exec(&["exec", &c.id, "sh", "-c", "echo $MARK"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "at-create", "{out}");
    fs::remove_file(b.path().join("config.json")).expect("remove config.json");
    let out = h.exec(&["exec", &c.id, "sh", "-c", "echo still"]);
    out.assert_ok();
    c.verb("delete", &["--force"]).assert_ok();
}

#[test]
fn any_1x_oci_version_is_accepted_and_2x_is_not() {
    require_root!();
    let h = Harness::reevec("ociversion");
    for (v, ok) in [
        ("1.0.0", true),
        ("1.3.0", true),
        ("1.9.17-dev", true),
        ("2.0.0", false),
    ] {
        let mut b = h.bundle();
        b.set_args(&["true"]);
        b.spec_mut()["ociVersion"] = json!(v);
        let out = h.run(&b);
        assert_eq!(out.success(), ok, "ociVersion {v}: {out}");
        if !ok {
            assert!(out.stderr.contains("is not a 1.x version"), "{out}");
        }
    }
}

#[test]
fn an_old_allowlist_without_openat2_starts_without_no_new_privileges() {
    require_root!();
    let h = Harness::reevec("oldprofile");
    let mut b = h.bundle();
    b.set_script("echo started in $PWD");
    b.set_cwd("/tmp");
    b.spec_mut()["process"]["noNewPrivileges"] = json!(false);
    // reevec spec's default profile minus openat2: what Docker-era allowlists look like.
    let seccomp = &mut b.spec_mut()["linux"]["seccomp"];
    for rule in seccomp["syscalls"].as_array_mut().expect("syscalls") {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != "openat2");
        }
    }
    let out = h.run(&b);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "started in /tmp", "{out}");
}

#[test]
fn preserve_fds_passes_exactly_the_fds_asked_for() {
    require_root!();
    let h = Harness::reevec("preservefds");
    let f3 = tempfile::tempfile().expect("fd");
    let f4 = tempfile::tempfile().expect("fd");
    let mut b = h.bundle();
    b.set_script("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    b.save();
    let run = |extra: &[&str]| {
        let c = h.container();
        let mut cmd = h.command(&["run", "--bundle", b.path().to_str().expect("utf-8")]);
        cmd.args(extra).arg(&c.id);
        let (a, bb) = (f3.as_raw_fd(), f4.as_raw_fd());
        // SAFETY: dup2 of fds this test owns onto 3 and 4 in the child before exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                if libc::dup2(a, 3) < 0 || libc::dup2(bb, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.stdin(Stdio::null());
        run_cmd(cmd, h.dir())
    };
    let out = run(&["--preserve-fds", "1"]);
    out.assert_ok();
    // ls itself opens the directory (fd 4 then, since 4 was closed): 0 1 2 3 and ls's own.
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(&fds[..4], ["0", "1", "2", "3"], "{out}");
    assert!(fds.len() <= 5, "only fd 3 was asked for: {out}");
    let out = run(&[]);
    out.assert_ok();
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(&fds[..3], ["0", "1", "2"], "{out}");
    assert!(
        fds.len() <= 4,
        "no fd beyond stdio without --preserve-fds: {out}"
    );
}

#[test]
fn each_container_gets_a_session_keyring_unless_told_not_to() {
    require_root!();
    let h = Harness::reevec("keyring");
    let keys = || fs::read_to_string("/proc/keys").unwrap_or_default();
    for (flags, want) in [(&[][..], true), (&["--no-new-keyring"][..], false)] {
        let mut b = h.bundle();
        b.set_args(&["sleep", "30"]);
        b.save();
        let c = h.container();
        let mut args = vec!["create", "--bundle", b.path().to_str().expect("utf-8")];
        args.extend_from_slice(flags);
        args.push(&c.id);
        h.exec(&args).assert_ok();
        let name = format!("_ses.{}", c.id);
        assert_eq!(
            keys().contains(&name),
            want,
            "{flags:?}: {name} in /proc/keys"
        );
        c.verb("delete", &["--force"]).assert_ok();
    }
}

#[test]
fn features_lists_every_hook_phase() {
    let out = run_cmd(
        {
            let mut c = std::process::Command::new(reevec_bin());
            c.arg("features");
            c
        },
        std::path::Path::new("/"),
    );
    let v = out.json().expect("features JSON");
    assert_eq!(
        v["hooks"],
        json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
}
