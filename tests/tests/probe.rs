//! The isolation probe (`tests/probe/reeve-probe.c`) run inside a sandbox the way the gateway
//! would be, next to a second sandbox playing another tenant: every one of its checks is a real
//! attack attempt (files, processes, IPC, network, kernel, cgroups, privileges, and the known
//! runtime escapes), and none may succeed.
//!
//! The world the probe gets: a read-only bind of a host dir as the runtime (`/opt/gateway`),
//! another as the Layer 1 config (`/etc/reeve/layer1`), a writable data dir (`/data`) where it
//! plants symlinks and hard links, a setuid-root copy and a file-capabilities copy of itself, and
//! as context the other tenant's host pid, its data dir as the host sees it, its IPC key, and
//! host sockets and ports that must stay out of reach.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reeve_tests::probe::*;
use reeve_tests::*;

#[test]
fn probe_finds_no_escape_as_root() {
    require_root!();
    require_probe!();
    let h = Harness::new("probe-root");
    let w = World::new(&h);
    let b = w.probe_bundle(&h);
    let out = h.run(&b);
    w.assert_host_untouched(&h);
    let v = assert_no_escape("probe as uid 0", &out, &given_flags(&w.args));
    // The checks that need the other tenant really ran against it.
    for name in [
        "proc.signal_other_tenant",
        "ipc.sysv_shm_other_tenant",
        "files.abs_path_other_tenant",
        "priv.setuid_binary",
        "priv.file_caps_binary",
    ] {
        let c = v.iter().find(|c| c.check == name).expect(name);
        assert_eq!(c.verdict, "blocked", "{c:?}");
    }
    assert!(w.peer_pid > 0);
}

#[test]
fn probe_finds_no_escape_as_an_unprivileged_user() {
    require_root!();
    require_probe!();
    let h = Harness::new("probe-user");
    let w = World::new(&h);
    let mut b = w.probe_bundle(&h);
    b.set_user(1000, 1000, &[]);
    let out = h.run(&b);
    w.assert_host_untouched(&h);
    let v = assert_no_escape("probe as uid 1000", &out, &given_flags(&w.args));
    let suid = v
        .iter()
        .find(|c| c.check == "priv.setuid_binary")
        .expect("setuid check");
    assert!(suid.reason.contains("euid 1000"), "{suid:?}");
}

/// CVE-2019-5736 from inside: while the probe watches /proc, `reevec exec` enters the sandbox
/// again and again; no process that appears may have a writable exe.
#[test]
fn probe_races_exec_for_the_runtime_binary() {
    require_root!();
    require_probe!();
    if kind_under_test() != Kind::Reevec {
        eprintln!("SKIPPED: the exec race is run against reevec only");
        return;
    }
    let h = Harness::new("probe-race");
    let probe = probe::probe_bin().expect("probe built");
    let data = h.dir().join("data");
    fs::create_dir(&data).expect("data dir");
    let mut b = h.bundle();
    install_executable(&probe, &b.rootfs().join("bin/reeve-probe"));
    fs::create_dir_all(b.rootfs().join("data")).expect("/data");
    b.add_mount(serde_json::json!({"destination": "/data", "type": "bind",
        "source": data.to_str().expect("utf-8"), "options": ["rbind", "rw"]}));
    b.set_script(
        "exec /bin/reeve-probe --json --only cve_2019_5736. --race-ms 25000 --data-dir /data \
         > /data/race.json 2>&1",
    );
    let (c, out) = h.create(&b);
    out.assert_ok();
    c.start().assert_ok();
    assert!(
        poll(Duration::from_secs(10), || data
            .join("race-ready")
            .exists()
            .then_some(()))
        .is_some(),
        "the probe never started watching"
    );
    let execs = 5;
    for _ in 0..execs {
        h.exec(&["exec", c.id.as_str(), "sleep", "0.1"]).assert_ok();
    }
    fs::write(data.join("race-stop"), "").expect("end the watch");
    assert!(
        c.wait_status("stopped", Duration::from_secs(20)),
        "the probe did not finish"
    );
    let mut text = String::new();
    fs::File::open(data.join("race.json"))
        .expect("race.json")
        .read_to_string(&mut text)
        .expect("read race.json");
    let (verdicts, _) = parse_verdicts(&text);
    print_table("exec race", &verdicts);
    let race = verdicts
        .iter()
        .find(|v| v.check == "cve_2019_5736.runtime_exe_write")
        .unwrap_or_else(|| panic!("no race verdict in:\n{text}"));
    assert_eq!(race.verdict, "blocked", "{race:?}");
    assert!(
        race.reason.contains("during the exec race"),
        "the race window ran: {race:?}"
    );
    let seen: u32 = race
        .reason
        .split("of the ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // Its own parent (pid 1) and the processes of the execs, give or take one missed.
    assert!(
        seen >= execs,
        "the probe must have seen the exec'd processes ({execs} execs): {race:?}"
    );
}

/// `tests/expectations/probe-runc.txt` names every check of the probe exactly once, with a
/// verdict and a reason, and nothing else.
#[test]
fn runc_expectations_cover_every_check() {
    require_probe!();
    let o = Command::new(probe::probe_bin().expect("probe built"))
        .arg("--list")
        .output()
        .expect("run probe --list");
    assert!(o.status.success(), "probe --list failed");
    let listed: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect();
    assert!(listed.len() >= MIN_CHECKS, "only {} checks", listed.len());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("expectations/probe-runc.txt");
    let text = fs::read_to_string(&path).expect("read probe-runc.txt");
    let expected: Vec<String> = parse_expectations(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|e| e.check)
        .collect();
    assert_eq!(
        expected,
        listed,
        "{} must list the probe's checks in its order",
        path.display()
    );
}
