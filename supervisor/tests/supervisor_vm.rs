//! `reeved` in the test VM (pure cgroup v2, limits enforced), once with the built-in runtime
//! (reevec) and once with `runtime = "/usr/bin/runc"`, the same checks for both:
//!
//! * invalid tenant names are refused (CLI and control socket) and touch no file;
//! * three tenants start, each gateway in its own cgroup `<reeved's cgroup>/tenants/<name>`
//!   with `memory.max`, `pids.max` and `cpu.max` as configured (one per-tenant override);
//! * tenant isolation, from inside alpha's sandbox (its gateway probes at every start) and as
//!   alpha's host uid from outside: beta's files cannot be read, listed or written, also not
//!   through symlinks or hard links planted in alpha's own data directory (a hard link to a file
//!   beta's gateway wrote itself included);
//! * `kill -9` of a gateway: restarted, restart count up, backoff delay doubling;
//! * `kill -9` of reeved: the sandboxes live on; a new reeved re-adopts them (same pids, marked
//!   adopted, no duplicate sandbox, cgroup or runtime container);
//! * SIGTERM: every gateway stopped gracefully; no tenant cgroup, no mount, no runtime
//!   container and no state file left (only `uids.json`, the logs and the empty stop-marker
//!   directory remain).
//!
//! Run: `tests/vm/cargo-vm-test.sh -p reeve-supervisor --test supervisor_vm -- --test-threads=1`
//! (build reevec first: `cargo build -p reeve-runtime`; run.sh copies it next to the test binary,
//! and runc to /usr/bin/runc when the host has it). Outside the VM the tests say SKIPPED.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

mod common;
use common::{Tenant, REEVED};
const TENANTS: [&str; 3] = ["alpha", "beta", "gamma"];
const CGROOT: &str = "/sys/fs/cgroup";

/// The gateway: at every start (generation G, counted in its own data), write a file of its
/// own, probe what it can reach of other tenants through the links the test planted, then beat.
const GW: &str = r#"#!/bin/sh
trap 'echo "bye $REEVE_TENANT"; exit 0' TERM
g=$(cat /data/.gen 2>/dev/null || echo 0)
g=$((g + 1))
echo "$g" > /data/.gen
echo "G$g start $REEVE_TENANT uid=$(id -u)"
echo "$REEVE_TENANT wrote this" > /data/gw-file.txt
probe() {
    if "$@" >/dev/null 2>&1; then r=OK; else r=DENIED; fi
    echo "G$g PROBE $* $r"
}
probe cat /data/secret.txt
probe touch /data/own-write
for p in /data/sym-secret /data/sym-rel /data/sym-dir/secret.txt /data/hard-secret /data/hard-gw "$DATA_ROOT/beta/secret.txt" /proc/1/root/data/../beta/secret.txt; do
    probe cat "$p"
done
probe ls /data/sym-dir/
probe ls /data/sym-rel-dir/
probe touch /data/sym-dir/planted
probe sh -c 'echo x >> /data/hard-secret'
# (only once planted: appending to a missing file would create it as alpha's)
probe sh -c '[ -e /data/hard-gw ] && echo x >> /data/hard-gw'
probe sh -c 'echo x > /data/sym-secret'
echo "G$g PROBES-DONE"
while :; do sleep 1 & wait $!; done
"#;

fn in_vm() -> bool {
    if std::env::var("REEVE_IN_VM").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("SKIPPED: runs only in the test VM (REEVE_IN_VM=1)");
    false
}

fn kill(pid: i64, sig: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

struct Env {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    config: PathBuf,
    data: PathBuf,
    state: PathBuf,
    runtime: PathBuf,
    test_id: String,
}

/// A failed assertion must not leave sandboxes behind for the next test in the same VM.
impl Drop for Env {
    fn drop(&mut self) {
        common::sigkill_all(self.gateways().into_values().flatten());
    }
}

impl Env {
    fn new(runtime: Option<&str>) -> Env {
        let common::Layout {
            tmp,
            top,
            rootfs,
            gateway: gw,
            layer1: l1,
            data,
            state,
            config,
        } = common::layout(
            "reeved-vm.",
            &["sh", "sleep", "cat", "ls", "touch", "id"],
            GW,
        );
        let test_id = format!("vm{}-{}", std::process::id(), runtime.is_some());
        let rt = runtime
            .map(|r| format!("runtime = \"{r}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                r#"data_root = "{data}"
state_dir = "{state}"
layer1_dir = "{l1}"
{rt}
[gateway]
command = ["/bin/sh", "/opt/gateway/gw.sh"]
env = ["DATA_ROOT={data}", "REEVE_TEST_ID={test_id}"]
dir = "{gw}"
rootfs = "{rootfs}"

[limits]
memory = "64M"
pids = 50
cpu = 0.5

[tenants.beta]
memory = "96M"

[restart]
initial_backoff_ms = 300
# every exit in this test counts as a fast failure: the delay doubles each time
fast_failure_ms = 600000
crash_loop_after = 5
stop_grace_ms = 5000
"#,
                data = data.display(),
                state = state.display(),
                l1 = l1.display(),
                gw = gw.display(),
                rootfs = rootfs.display(),
            ),
        )
        .unwrap();
        let runtime = match runtime {
            Some(r) => PathBuf::from(r),
            None => Path::new(REEVED).with_file_name("reevec"),
        };
        assert!(
            runtime.is_file(),
            "{} is missing (build reevec: cargo build -p reeve-runtime)",
            runtime.display()
        );
        Env {
            _tmp: tmp,
            top,
            config,
            data,
            state,
            runtime,
            test_id,
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        common::reeved(&self.config, args)
    }

    fn spawn(&self, tag: &str) -> Child {
        let log = self.top.join(format!("reeved-{tag}.log"));
        common::run_cmd(Command::new(REEVED), &self.config, &log)
            .spawn()
            .unwrap()
    }

    /// A request to the control socket (cheaper than running the CLI on the VM's one slow
    /// vCPU, where the launches compete with the polling); None when reeved does not answer.
    fn request(&self, req: Value) -> Option<Value> {
        use std::io::{BufRead, Write};
        let mut c = std::os::unix::net::UnixStream::connect(self.state.join("reeved.sock")).ok()?;
        writeln!(c, "{req}").ok()?;
        let mut line = String::new();
        std::io::BufReader::new(c).read_line(&mut line).ok()?;
        serde_json::from_str(&line).ok()
    }

    fn tenants(&self) -> BTreeMap<String, Tenant> {
        self.request(serde_json::json!({"cmd": "status"}))
            .map(|v| common::tenants_of(&v["data"]))
            .unwrap_or_default()
    }

    /// name → pid when all three are running.
    fn running(&self) -> Option<BTreeMap<String, i64>> {
        common::running_pids(&self.tenants(), &TENANTS)
    }

    fn reeved_logs(&self) -> String {
        let mut s = common::logs_in(&self.top, "");
        for t in TENANTS {
            s += &format!("--- gateway log of {t}\n{}\n", self.gateway_log(t));
        }
        s
    }

    fn gateway_log(&self, t: &str) -> String {
        common::gateway_log(&self.state, t)
    }

    fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut(&Env) -> bool) {
        if common::poll(secs, || f(self)) {
            return;
        }
        panic!(
            "timed out waiting for {what}; status {:?}\n{}",
            self.tenants(),
            self.reeved_logs()
        );
    }

    /// Live sandbox inits of this test (pid 1 of their namespace running gw.sh), per tenant.
    fn gateways(&self) -> BTreeMap<String, Vec<i32>> {
        common::sandbox_inits(&self.test_id)
    }

    /// The runtime's containers under reeved's runtime root: id → (status, pid).
    fn oci_list(&self) -> BTreeMap<String, (String, i64)> {
        common::oci_list(&self.runtime, &self.state)
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    (
                        c["status"].as_str().unwrap().to_string(),
                        c["pid"].as_i64().unwrap_or(0),
                    ),
                )
            })
            .collect()
    }

    /// Lines of `t`'s gateway log of start number `g`.
    fn generation(&self, t: &str, g: u32) -> Vec<String> {
        let p = format!("G{g} ");
        self.gateway_log(t)
            .lines()
            .filter_map(|l| l.strip_prefix(&p).map(str::to_string))
            .collect()
    }

    fn probes_done(&self, t: &str, g: u32) -> bool {
        self.generation(t, g).iter().any(|l| l == "PROBES-DONE")
    }
}

/// Child cgroups of `dir` (names).
fn child_cgroups(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// reeved's cgroup: the VM runs tests in the root cgroup, so reeved moves itself to
/// `/supervisor` and puts tenants under `/tenants/<name>` (host::delegation_plan).
fn tenants_cgroup() -> PathBuf {
    Path::new(CGROOT).join("tenants")
}

/// The mount points of this (the VM's) mount namespace with their sources, sorted.
fn mount_points() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", f[4], f[3])
        })
        .collect();
    v.sort();
    v
}

/// Run busybox `args` as host uid/gid `id` (no supplementary groups); Ok when it succeeded.
fn as_uid(id: u32, args: &[&str]) -> Result<String, String> {
    let o = Command::new("/bin/busybox")
        .args(args)
        .uid(id)
        .gid(id)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Plant in alpha's data directory links into beta's (as an intruder with host root would).
fn plant_links(env: &Env, alpha_uid: u32) {
    let a = env.data.join("alpha");
    let b = env.data.join("beta");
    let own = |p: &Path| std::os::unix::fs::lchown(p, Some(alpha_uid), Some(alpha_uid)).unwrap();
    for (link, target) in [
        ("sym-secret", b.join("secret.txt")),
        ("sym-dir", b.clone()),
        ("sym-rel", PathBuf::from("../beta/secret.txt")),
        ("sym-rel-dir", PathBuf::from("../beta")),
    ] {
        std::os::unix::fs::symlink(&target, a.join(link)).unwrap();
        own(&a.join(link));
    }
    std::fs::hard_link(b.join("secret.txt"), a.join("hard-secret")).unwrap();
}

/// Write `<tenant>/secret.txt` (0600, owned by the tenant's range root).
fn write_secret(env: &Env, t: &str) -> u32 {
    let dir = env.data.join(t);
    let uid = std::fs::metadata(&dir).unwrap().uid();
    let p = dir.join("secret.txt");
    std::fs::write(&p, format!("{t}-secret")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).unwrap();
    uid
}

fn invalid_names(env: &Env) {
    let listing = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = walk(p);
        v.sort();
        v
    };
    let before = listing(&env.top);
    // (a few through the CLI: every exec is slow in the VM; the host tests try more names)
    for bad in ["Upper", "../escape", "a/b", &"x".repeat(64)] {
        let o = env.cli(&["tenant", "create", "--", bad]);
        assert!(!o.status.success(), "invalid name {bad:?} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("tenant name"), "{bad:?}: {err}");
    }
    assert_eq!(
        before,
        listing(&env.top),
        "a refused name touched the filesystem"
    );
    assert!(!env.top.join("escape").exists());
}

/// Every path below `p` (relative), symlinks not followed.
fn walk(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            out.push(path.strip_prefix(p).unwrap().display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path);
            }
        }
    }
    out
}

/// The daemon refuses bad names too (a client that skips the CLI's check).
fn invalid_names_via_socket(env: &Env) {
    let before = walk(&env.data);
    for bad in ["../escape", "a\u{0}b", "Beta", ".."] {
        let v = env
            .request(serde_json::json!({"cmd": "create", "name": bad}))
            .expect("an answer");
        assert_eq!(v["ok"], false, "{bad:?}");
        assert!(v["error"].as_str().unwrap().contains("tenant name"), "{v}");
    }
    assert_eq!(before, walk(&env.data));
    assert!(!env.top.join("escape").exists());
}

/// alpha's probes of start number `g` (inside its sandbox).
fn check_probes_inside(env: &Env, g: u32) {
    let lines = env.generation("alpha", g);
    let probe = |p: &str| -> &str {
        let l = lines
            .iter()
            .find(|l| l.starts_with(&format!("PROBE {p} ")))
            .unwrap_or_else(|| panic!("no probe {p:?} in start {g}: {lines:#?}"));
        l.rsplit(' ').next().unwrap()
    };
    assert_eq!(
        probe("cat /data/secret.txt"),
        "OK",
        "alpha reads its own data"
    );
    assert_eq!(
        probe("touch /data/own-write"),
        "OK",
        "alpha writes its own data"
    );
    let denied: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.starts_with("PROBE ") && !l.contains("/data/secret.txt ") && !l.contains("own-write")
        })
        .collect();
    assert_eq!(denied.len(), 13, "{lines:#?}");
    for l in denied {
        assert!(
            l.ends_with(" DENIED"),
            "alpha's sandbox got through: {l}\n{lines:#?}"
        );
    }
}

/// As alpha's host uid, outside any sandbox: permission checks by the uid range.
fn check_from_host_as(env: &Env, alpha_uid: u32) {
    let a = env.data.join("alpha");
    let b = env.data.join("beta");
    let s = |p: PathBuf| p.display().to_string();
    assert_eq!(
        as_uid(alpha_uid, &["cat", &s(a.join("secret.txt"))]),
        Ok("alpha-secret".into()),
        "alpha's uid reads its own data"
    );
    for args in [
        vec!["cat".to_string(), s(b.join("secret.txt"))],
        vec!["cat".into(), s(b.join("gw-file.txt"))],
        vec!["ls".into(), s(b.clone())],
        vec!["touch".into(), s(b.join("planted"))],
        vec!["cat".into(), s(a.join("sym-secret"))],
        vec!["cat".into(), s(a.join("sym-rel"))],
        vec!["ls".into(), format!("{}/", s(a.join("sym-dir")))],
        vec!["touch".into(), s(a.join("sym-dir/planted"))],
        vec!["cat".into(), s(a.join("hard-secret"))],
        vec!["cat".into(), s(a.join("hard-gw"))],
        vec![
            "sh".into(),
            "-c".into(),
            format!("echo x >> {}", s(a.join("hard-secret"))),
        ],
        vec![
            "sh".into(),
            "-c".into(),
            format!("echo x >> {}", s(a.join("hard-gw"))),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = as_uid(alpha_uid, &args);
        assert!(
            r.is_err(),
            "uid {alpha_uid} (alpha) got through: {args:?}: {r:?}"
        );
    }
    // beta's files are as beta left them.
    assert_eq!(
        std::fs::read_to_string(b.join("secret.txt")).unwrap(),
        "beta-secret"
    );
    assert_eq!(
        std::fs::read_to_string(b.join("gw-file.txt")).unwrap(),
        "beta wrote this\n"
    );
    assert!(!b.join("planted").exists());
}

fn lifecycle(runtime: Option<&str>) {
    let t0 = Instant::now();
    let env = Env::new(runtime);
    let mounts_before = mount_points();
    let tag = format!("{:?}", runtime.unwrap_or("reevec"));

    // Invalid names first: nothing exists yet, and nothing may appear.
    invalid_names(&env);
    let mut uids = Vec::new();
    for t in TENANTS {
        let o = env.cli(&["tenant", "create", t]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        uids.push(write_secret(&env, t));
    }
    let alpha_uid = uids[0];
    let mut distinct = uids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "each tenant has its own uid range: {uids:?}"
    );
    assert!(uids.iter().all(|&u| u >= 200_000), "{uids:?}");
    plant_links(&env, alpha_uid);

    // 1. Three tenants start, each in its own cgroup with the configured limits.
    let mut d1 = env.spawn("1");
    env.wait_for("three tenants running", 90, |e| e.running().is_some());
    eprintln!("{tag}: three tenants up after {:?}", t0.elapsed());
    let pids = env.running().unwrap();
    // The CLI's view: limits are enforced here (not the no-limits mode of hybrid hosts).
    let o = env.cli(&["status", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["limits_enforced"], true, "{v}");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("3 running; limits enforced"),
        "{v}"
    );
    let cgs = tenants_cgroup();
    assert_eq!(
        child_cgroups(&cgs),
        TENANTS.to_vec(),
        "one cgroup per tenant"
    );
    for t in TENANTS {
        let cg = cgs.join(t);
        let rd = |f: &str| {
            std::fs::read_to_string(cg.join(f))
                .unwrap_or_else(|e| panic!("{}/{f}: {e}", cg.display()))
                .trim()
                .to_string()
        };
        let mem: u64 = if t == "beta" { 96 << 20 } else { 64 << 20 };
        assert_eq!(rd("memory.max"), mem.to_string(), "{t}");
        assert_eq!(rd("pids.max"), "50", "{t}");
        assert_eq!(rd("cpu.max"), "50000 100000", "{t}");
        let procs = rd("cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pids[t].to_string()),
            "{t}'s gateway {} is in {}: {procs}",
            pids[t],
            cg.display()
        );
        let own = std::fs::read_to_string(format!("/proc/{}/cgroup", pids[t])).unwrap();
        assert_eq!(own.trim(), format!("0::/tenants/{t}"), "{t}");
    }
    let gws = env.gateways();
    for t in TENANTS {
        assert_eq!(
            gws.get(t),
            Some(&vec![pids[t] as i32]),
            "one sandbox for {t}: {gws:?}"
        );
    }
    // Every file of a tenant belongs to its range.
    for (t, &base) in TENANTS.iter().zip(&uids) {
        env.wait_for("probes done", 30, |e| e.probes_done(t, 1));
        for rel in walk(&env.data.join(t)) {
            let m = std::fs::symlink_metadata(env.data.join(t).join(&rel)).unwrap();
            if t == &"alpha" && rel.starts_with("hard-") {
                continue; // beta's inodes, planted
            }
            assert!(
                (base..base + 65_536).contains(&m.uid())
                    && (base..base + 65_536).contains(&m.gid()),
                "{t}/{rel} owned by {}:{}",
                m.uid(),
                m.gid()
            );
        }
    }

    // 2. Isolation, first start: the planted symlinks and the hard link to beta's secret.
    check_probes_inside(&env, 1);
    // A hard link to a file beta's gateway wrote itself (its default umask): planted now,
    // probed by alpha's next start, which the kill below causes.
    let gwf = env.data.join("beta/gw-file.txt");
    assert_eq!(
        std::fs::metadata(&gwf).unwrap().mode() & 0o077,
        0,
        "beta's gateway writes files only its range can read"
    );
    std::fs::hard_link(&gwf, env.data.join("alpha/hard-gw")).unwrap();
    invalid_names_via_socket(&env);

    // 3. kill -9 of a gateway → restarted, restart count up, backoff delay doubling.
    let mut last = pids["alpha"];
    for n in 1..=2u64 {
        kill(last, Signal::SIGKILL);
        env.wait_for("alpha restarted", 60, |e| {
            e.tenants().get("alpha").is_some_and(|s| {
                s.phase == "running" && s.pid.is_some() && s.pid != Some(last) && s.restarts == n
            })
        });
        last = env.tenants()["alpha"].pid.unwrap();
        // Kill it only once this start has counted itself (and probed): a gateway killed
        // before it writes /data/.gen would leave the next start with the same generation.
        let g = n as u32 + 1;
        env.wait_for(&format!("alpha's start {g} probed"), 60, |e| {
            e.probes_done("alpha", g)
        });
    }
    let log1 = std::fs::read_to_string(env.top.join("reeved-1.log")).unwrap();
    let delays: Vec<&str> = log1
        .lines()
        .filter_map(|l| l.split("tenant alpha: next start in ").nth(1))
        .collect();
    assert_eq!(delays, ["300ms", "600ms"], "backoff doubles:\n{log1}");
    let now = env.running().unwrap();
    assert_eq!(now["beta"], pids["beta"], "the others are untouched");
    assert_eq!(now["gamma"], pids["gamma"], "the others are untouched");
    let pids = now;
    // Isolation, third start (the second restart): the hard link to beta's own file too.
    env.wait_for("alpha's third start probed", 30, |e| {
        e.probes_done("alpha", 3)
    });
    check_probes_inside(&env, 3);
    check_from_host_as(&env, alpha_uid);
    eprintln!(
        "{tag}: restarts and isolation checked after {:?}",
        t0.elapsed()
    );

    // 4. kill -9 of reeved → the sandboxes live on, a new reeved re-adopts them.
    d1.kill().unwrap();
    d1.wait().unwrap();
    let gws = env.gateways();
    for t in TENANTS {
        assert_eq!(
            gws.get(t),
            Some(&vec![pids[t] as i32]),
            "{t} survives reeved: {gws:?}"
        );
    }
    let mut d2 = env.spawn("2");
    env.wait_for("re-adoption", 60, |e| e.running().is_some());
    let st = env.tenants();
    for t in TENANTS {
        assert_eq!(st[t].pid, Some(pids[t]), "{t} keeps its pid");
        assert!(st[t].adopted, "{t} is marked re-adopted");
    }
    assert_eq!(st["alpha"].restarts, 2, "the restart count survives reeved");
    std::thread::sleep(Duration::from_millis(500));
    let gws = env.gateways();
    for t in TENANTS {
        assert_eq!(
            gws.get(t),
            Some(&vec![pids[t] as i32]),
            "no duplicate of {t}: {gws:?}"
        );
    }
    assert_eq!(child_cgroups(&cgs), TENANTS.to_vec(), "no duplicate cgroup");
    let list = env.oci_list();
    assert_eq!(list.len(), 3, "one runtime container per tenant: {list:?}");
    for t in TENANTS {
        assert_eq!(
            list[&format!("reeve-{t}")],
            ("running".to_string(), pids[t]),
            "{list:?}"
        );
    }

    // 5. SIGTERM → every tenant stopped gracefully, nothing left behind.
    kill(d2.id() as i64, Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(60);
    let st = loop {
        if let Some(s) = d2.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "reeved did not stop\n{}",
            env.reeved_logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(st.success(), "reeved exit {st:?}\n{}", env.reeved_logs());
    assert!(
        env.gateways().is_empty(),
        "gateways left: {:?}",
        env.gateways()
    );
    for t in TENANTS {
        assert!(
            !Path::new(&format!("/proc/{}", pids[t])).exists(),
            "{t} left running"
        );
        assert!(
            env.gateway_log(t).contains(&format!("bye {t}")),
            "{t} got SIGTERM"
        );
    }
    assert_eq!(
        child_cgroups(&cgs),
        Vec::<String>::new(),
        "tenant cgroups left"
    );
    assert_eq!(mount_points(), mounts_before, "mounts left behind");
    assert!(
        env.oci_list().is_empty(),
        "containers left: {:?}",
        env.oci_list()
    );
    let mut left: Vec<String> = std::fs::read_dir(&env.state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["logs", "stopped", "uids.json"], "state left behind");
    assert!(walk(&env.state.join("stopped")).is_empty());
    eprintln!("{tag}: whole lifecycle {:?}", t0.elapsed());
}

#[test]
fn lifecycle_reevec() {
    if in_vm() {
        lifecycle(None);
    }
}

#[test]
fn lifecycle_runc() {
    if in_vm() {
        lifecycle(Some("/usr/bin/runc"));
    }
}
