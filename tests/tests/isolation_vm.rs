//! The isolation suite where cgroup v2 is real (the test VM):
//!
//! 1. The probe (`tests/probe/reeve-probe.c`) runs in one bundle configured as reeved configures
//!    a tenant (a user namespace mapping 0..65536 to a host range, memory/pids/cpu limits, the
//!    default seccomp profile, read-only runtime and Layer 1, a writable data dir), next to a
//!    peer tenant, first under reevec and then, unchanged, under runc 1.1.5. Fails when anything
//!    escapes under reevec, and when runc's verdicts differ from
//!    `tests/expectations/probe-runc.txt` (measured here; a listed difference that disappears
//!    fails too).
//! 2. Resource interference: sandbox B serves HTTP (busybox httpd) on its own loopback while
//!    sandbox A runs a fork bomb, a memory hog and a CPU burner inside its limits; B's request
//!    latency is measured before and during, and the test fails when B stops answering (a
//!    generous per-request timeout, never a latency number).
//!
//! Run: `cargo build -p reeve-runtime && tests/vm/cargo-vm-test.sh -p reeve-tests --test
//! isolation_vm -- --test-threads=1 --nocapture`. Outside the VM (REEVE_IN_VM unset) every test
//! prints SKIPPED: runc cannot run on a hybrid-cgroup host without creating host cgroups.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reeve_tests::probe::*;
use reeve_tests::*;
use serde_json::json;

/// Where the probe's sandbox maps its user namespace (as reeved maps a tenant's range).
const USERNS_BASE: u32 = 200_000;
/// What runc measured for every check of the probe, and why it differs where it does.
const RUNC_EXPECTATIONS: &str = include_str!("../expectations/probe-runc.txt");

/// The limits the tenants of these tests get (as reeved writes them: memory, pids, cpu).
fn limit(b: &mut Bundle, cgroup: &str, memory: u64, pids: u64, shares: u64, quota: i64) {
    let s = b.spec_mut();
    s["linux"]["cgroupsPath"] = json!(cgroup);
    s["linux"]["resources"]["memory"] = json!({"limit": memory, "swap": memory});
    s["linux"]["resources"]["pids"] = json!({"limit": pids});
    s["linux"]["resources"]["cpu"] = json!({"shares": shares, "quota": quota, "period": 100000});
}

fn cgroup_dir(cgroups_path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(cgroups_path.trim_start_matches('/'))
}

fn keyed(p: &Path, key: &str) -> u64 {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn probe_under_reevec_and_runc_in_the_same_bundle() {
    if !in_vm(
        "probe_under_reevec_and_runc_in_the_same_bundle",
        "isolation_vm",
    ) {
        return;
    }
    let probe = probe_bin().unwrap_or_else(|e| panic!("the probe must be in the VM: {e}"));
    assert!(probe.is_file());
    let h = Harness::reevec("iso-probe");
    let Some(hr) = Harness::runc("iso-probe-runc") else {
        panic!("runc is not in the VM (tests/vm/run.sh copies it when the host has it)");
    };
    // The user namespace's root must reach the bundle's rootfs.
    fs::set_permissions(h.dir(), fs::Permissions::from_mode(0o711)).expect("chmod harness dir");
    let w = World::new(&h);
    let mut b = w.probe_bundle_as(&h, Some(USERNS_BASE));
    limit(&mut b, "/reeve-iso/probe", 256 << 20, 256, 512, 100_000);
    b.save();
    let given = given_flags(&w.args);

    let t = Instant::now();
    let ours = h.run(&b);
    let reevec_secs = t.elapsed().as_secs_f64();
    w.assert_host_untouched(&h);
    let reevec = assert_no_escape("reevec (VM, userns, limits)", &ours, &given);

    let t = Instant::now();
    let theirs = hr.run(&b);
    let runc_secs = t.elapsed().as_secs_f64();
    assert!(!theirs.timed_out, "runc timed out:\n{theirs}");
    let (runc, summary) = parse_verdicts(&theirs.stdout);
    print_table("runc 1.1.5 (VM, same bundle)", &runc);
    say(&format!(
        "runc summary {summary}; probe run: reevec {reevec_secs:.1}s, runc {runc_secs:.1}s"
    ));
    assert!(
        runc.len() >= MIN_CHECKS,
        "runc ran only {} checks:\n{theirs}",
        runc.len()
    );
    say("---- measured tests/expectations/probe-runc.txt lines ----");
    say(measured_expectations(&runc).trim_end());
    say("---- end ----");
    let looser: Vec<String> = runc
        .iter()
        .filter(|r| r.verdict != "blocked" && r.verdict != "skipped")
        .map(|r| format!("{} ({}): {}", r.check, r.verdict, r.reason))
        .collect();
    say(&format!(
        "checks runc lets through and reevec blocks: {}\n  {}",
        looser.len(),
        looser.join("\n  ")
    ));

    let expected = parse_expectations(RUNC_EXPECTATIONS)
        .unwrap_or_else(|e| panic!("tests/expectations/probe-runc.txt: {e}"));
    let problems = cross_check_problems(&reevec, &runc, &expected);
    assert!(
        problems.is_empty(),
        "reevec vs runc ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
    w.assert_host_untouched(&h);
}

/// What the client measured of B.
struct Latencies {
    ok: Vec<Duration>,
    failures: Vec<String>,
}

impl Latencies {
    fn p(&self, q: f64) -> Duration {
        let mut v = self.ok.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        v[((v.len() - 1) as f64 * q).round() as usize]
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} answered, {} failed, p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            self.ok.len(),
            self.failures.len(),
            self.p(0.5).as_secs_f64() * 1e3,
            self.p(0.9).as_secs_f64() * 1e3,
            self.p(1.0).as_secs_f64() * 1e3
        )
    }
}

/// `n` HTTP requests to 127.0.0.1:`port` inside the network namespace of `pid`, from a thread
/// of its own (setns(CLONE_NEWNET) changes only the calling thread).
fn measure(pid: i32, port: u16, n: usize, timeout: Duration) -> Latencies {
    let ns = fs::File::open(format!("/proc/{pid}/ns/net")).expect("open B's netns");
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns into B");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut l = Latencies {
            ok: Vec::new(),
            failures: Vec::new(),
        };
        for i in 0..n {
            let t = Instant::now();
            let r = (|| -> std::io::Result<String> {
                let mut s = TcpStream::connect_timeout(&addr, timeout)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
                let mut body = String::new();
                s.read_to_string(&mut body)?;
                Ok(body)
            })();
            match r {
                Ok(body) if body.contains("hello from B") => l.ok.push(t.elapsed()),
                Ok(body) => l
                    .failures
                    .push(format!("request {i}: unexpected answer {body:?}")),
                Err(e) => l
                    .failures
                    .push(format!("request {i}: {e} after {:?}", t.elapsed())),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        l
    })
    .join()
    .expect("client thread")
}

#[test]
fn a_tenant_under_attack_from_its_neighbour_keeps_answering() {
    if !in_vm(
        "a_tenant_under_attack_from_its_neighbour_keeps_answering",
        "isolation_vm",
    ) {
        return;
    }
    const PORT: u16 = 8080;
    const N: usize = 40;
    // Generous: the VM is emulated (TCG); this is a liveness bound, not a latency target.
    const TIMEOUT: Duration = Duration::from_secs(10);
    let h = Harness::reevec("iso-noisy");

    // B: the gateway, busybox httpd on its own loopback.
    let mut b = h.bundle();
    std::os::unix::fs::symlink("busybox", b.rootfs().join("bin/httpd")).expect("httpd applet");
    b.write_file("www/index.html", b"hello from B\n", 0o644);
    b.set_args(&[
        "httpd",
        "-f",
        "-p",
        &format!("127.0.0.1:{PORT}"),
        "-h",
        "/www",
    ]);
    limit(&mut b, "/reeve-iso/b", 64 << 20, 64, 1024, 100_000);
    let (cb, out) = h.create(&b);
    out.assert_ok();
    let bpid = cb.pid();
    let lo = std::process::Command::new("nsenter")
        .args([
            "-t",
            &bpid.to_string(),
            "-n",
            "ip",
            "link",
            "set",
            "lo",
            "up",
        ])
        .output()
        .expect("run nsenter");
    assert!(
        lo.status.success(),
        "lo up in B: {}",
        String::from_utf8_lossy(&lo.stderr)
    );
    cb.start().assert_ok();
    assert!(
        poll(Duration::from_secs(20), || {
            let l = measure(bpid, PORT, 1, TIMEOUT);
            l.failures.is_empty().then_some(())
        })
        .is_some(),
        "B never answered"
    );
    let before = measure(bpid, PORT, N, TIMEOUT);
    say(&before.line("B before"));
    assert!(
        before.failures.is_empty(),
        "B failed before any attack: {:?}",
        before.failures
    );

    // A: a CPU burner, a memory hog and a fork bomb at once, inside its own limits.
    let a_cg = "/reeve-iso/a";
    let mut a = h.bundle();
    a.set_script(
        "(while :; do tail /dev/zero; done) & \
         (while :; do :; done) & \
         sleep 5; (bomb() { bomb | bomb & }; bomb) & \
         exec tail -f /dev/null",
    );
    limit(&mut a, a_cg, 16 << 20, 48, 2, 50_000);
    let (ca, out) = h.create(&a);
    out.assert_ok();
    ca.start().assert_ok();
    let acg = cgroup_dir(a_cg);
    let mem_hit = || {
        keyed(&acg.join("memory.events"), "oom_kill") > 0
            || keyed(&acg.join("memory.events"), "max") > 0
    };
    let pids_hit = || keyed(&acg.join("pids.events"), "max") > 0;
    // The memory hog fills its 16 MiB first (ash's loops die on the first fork that fails, so
    // it restarts only until the fork bomb has taken every pid); then the bomb runs.
    assert!(
        poll(Duration::from_secs(60), || (mem_hit() && pids_hit())
            .then_some(()))
        .is_some(),
        "A never hit its memory and pids limits: pids.events {:?}, memory.events {:?}, \
         memory.peak {:?}",
        fs::read_to_string(acg.join("pids.events")),
        fs::read_to_string(acg.join("memory.events")),
        fs::read_to_string(acg.join("memory.peak")),
    );
    let usage0 = keyed(&acg.join("cpu.stat"), "usage_usec");
    let during = measure(bpid, PORT, N, TIMEOUT);
    let usage1 = keyed(&acg.join("cpu.stat"), "usage_usec");
    say(&during.line("B during A's fork bomb + memory hog + CPU burner"));
    let a_stats = format!(
        "A: pids.current {} (max {}), pids.events max {}, memory.events oom_kill {} max {}, \
         cpu.stat nr_throttled {}, cpu usage during the measurement {} ms",
        fs::read_to_string(acg.join("pids.current"))
            .unwrap_or_default()
            .trim(),
        fs::read_to_string(acg.join("pids.max"))
            .unwrap_or_default()
            .trim(),
        keyed(&acg.join("pids.events"), "max"),
        keyed(&acg.join("memory.events"), "oom_kill"),
        keyed(&acg.join("memory.events"), "max"),
        keyed(&acg.join("cpu.stat"), "nr_throttled"),
        (usage1.saturating_sub(usage0)) / 1000
    );
    say(&a_stats);
    assert_eq!(ca.status(), "running", "A's attack ran to the end");
    assert!(
        usage1 > usage0,
        "A burnt no CPU while B was measured: {a_stats}"
    );
    assert!(
        during.failures.is_empty(),
        "B stopped answering while A attacked: {:?}\n{a_stats}",
        during.failures
    );
    assert_eq!(cb.status(), "running");
}
