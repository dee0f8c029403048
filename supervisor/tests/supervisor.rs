//! End-to-end tests of `reeved` with the real `reevec` (root only; skipped otherwise).
//!
//! Build both first: `cargo build -p reeve-runtime -p reeve-supervisor` (reeved finds reevec
//! next to itself).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{is_root, layout, Tenant, REEVED};

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIPPED: reeved end-to-end tests need root");
            return;
        }
    };
}

fn reevec() -> PathBuf {
    let p = Path::new(REEVED).with_file_name("reevec");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build -p reeve-runtime -p reeve-supervisor` first",
        p.display()
    );
    p
}

/// The test gateway: probes what it can see of other tenants, then beats every second.
const GATEWAY: &str = r#"#!/bin/sh
trap 'echo "bye $REEVE_TENANT"; exit 0' TERM
echo "start $REEVE_TENANT uid=$(id -u)"
[ "$REEVE_TENANT" = crashy ] && { echo "crashy exits"; exit 3; }
for t in $TENANTS; do
    [ "$t" = "$REEVE_TENANT" ] && continue
    for p in "$DATA_ROOT/$t/secret.txt" "/data/../$t/secret.txt" "/data/$t/secret.txt" "/$t/secret.txt" "/proc/1/root$DATA_ROOT/$t/secret.txt"; do
        if cat "$p" >/dev/null 2>&1; then echo "PROBE $p READ"; else echo "PROBE $p DENIED"; fi
    done
    if grep -q "$DATA_ROOT/$t" /proc/self/mountinfo; then echo "MOUNTED $t"; else echo "NOT-MOUNTED $t"; fi
done
echo "OWN $(cat /data/secret.txt)"
for p in /opt/gateway/x /etc/reeve/layer1/x /x /bin/x; do
    if touch "$p" 2>/dev/null; then echo "WRITE $p OK"; else echo "WRITE $p DENIED"; fi
done
touch "/data/written-by-$REEVE_TENANT" && echo "WRITE /data OK"
echo "LAYER1 $(cat /etc/reeve/layer1/defaults.json)"
n=0
while :; do
    n=$((n + 1))
    echo "beat $REEVE_TENANT $n"
    sleep 1 &
    wait $!
done
"#;

struct Env {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    config: PathBuf,
    data: PathBuf,
    state: PathBuf,
    test_id: String,
}

/// A failed assertion must not leave gateways behind (after a kill -9 of reeved nobody else
/// would stop them): SIGKILL every sandbox init of this test (which ends its pid namespace).
impl Drop for Env {
    fn drop(&mut self) {
        common::sigkill_all(self.gateways().into_values().flatten());
    }
}

impl Env {
    fn new(tenants: &[&str]) -> Env {
        let common::Layout {
            tmp,
            top,
            rootfs,
            gateway: gw,
            layer1: l1,
            data,
            state,
            config,
        } = layout(
            "reeved-test.",
            &["sh", "cat", "echo", "sleep", "touch", "id", "grep", "ls"],
            GATEWAY,
        );
        std::fs::write(l1.join("defaults.json"), "{\"layer\":1}").unwrap();
        let test_id = format!(
            "t{}-{}",
            std::process::id(),
            top.file_name().unwrap().to_string_lossy()
        );
        std::fs::write(
            &config,
            format!(
                r#"data_root = "{data}"
state_dir = "{state}"
layer1_dir = "{l1}"
allow_no_limits = true

[gateway]
command = ["/bin/sh", "/opt/gateway/gw.sh"]
env = ["DATA_ROOT={data}", "TENANTS={tenants}", "REEVE_TEST_ID={test_id}"]
dir = "{gw}"
rootfs = "{rootfs}"

[limits]
memory = "256M"
pids = 100

[tenants.beta]
memory = "512M"

[restart]
initial_backoff_ms = 300
crash_loop_after = 3
stop_grace_ms = 3000
"#,
                data = data.display(),
                state = state.display(),
                l1 = l1.display(),
                gw = gw.display(),
                rootfs = rootfs.display(),
                tenants = tenants.join(" "),
            ),
        )
        .unwrap();
        Env {
            _tmp: tmp,
            top,
            config,
            data,
            state,
            test_id,
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        common::reeved(&self.config, args)
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "reeved {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn create(&self, name: &str) {
        self.cli_ok(&["tenant", "create", name]);
        let dir = self.data.join(name);
        let m = std::fs::metadata(&dir).unwrap();
        let secret = dir.join("secret.txt");
        std::fs::write(&secret, format!("{name}-secret")).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::lchown(&secret, Some(m.uid()), Some(m.gid())).unwrap();
    }

    fn spawn(&self, tag: &str) -> Child {
        self.spawn_with(tag, &[])
    }

    fn spawn_with(&self, tag: &str, vars: &[(&str, &str)]) -> Child {
        let log = self.top.join(format!("reeved-{tag}.log"));
        common::run_cmd(Command::new(REEVED), &self.config, &log)
            .envs(vars.iter().copied())
            .spawn()
            .unwrap()
    }

    fn tenants(&self) -> BTreeMap<String, Tenant> {
        common::status(&self.config)
            .map(|v| common::tenants_of(&v))
            .unwrap_or_default()
    }

    fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut(&Env) -> bool) {
        if common::poll(secs, || f(self)) {
            return;
        }
        panic!(
            "timed out waiting for {what}; status: {:#?}\nreeved logs:\n{}",
            self.tenants(),
            self.reeved_logs()
        );
    }

    fn reeved_logs(&self) -> String {
        common::logs_in(&self.top, "reeved-")
    }

    fn gateway_log(&self, t: &str) -> String {
        common::gateway_log(&self.state, t)
    }

    /// Live gateway processes of this test (sh running gw.sh), per tenant.
    fn gateways(&self) -> BTreeMap<String, Vec<i32>> {
        common::sandbox_inits(&self.test_id)
    }

    fn oci_list(&self) -> Vec<Value> {
        common::oci_list(&reevec(), &self.state)
    }
}

fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < end, "reeved did not exit within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running_pids(env: &Env, names: &[&str]) -> Option<BTreeMap<String, i64>> {
    common::running_pids(&env.tenants(), names)
}

#[test]
fn supervises_isolates_restarts_readopts_and_stops() {
    require_root!();
    reevec();
    let all = ["acme", "beta", "gamma", "crashy"];
    let env = Env::new(&all);
    for t in all {
        env.create(t);
    }
    let mut d = env.spawn("1");

    // 1. Every tenant starts; the crashing one ends up crash-looping.
    let good = ["acme", "beta", "gamma"];
    env.wait_for("three running gateways", 20, |e| {
        running_pids(e, &good).is_some()
    });
    env.wait_for("crashy in crash-loop", 15, |e| {
        e.tenants()
            .get("crashy")
            .is_some_and(|t| t.phase == "crash-loop")
    });
    let crashy = env.tenants()["crashy"].clone();
    assert_eq!(crashy.last_exit, "exited with status 3");
    let pids = running_pids(&env, &good).unwrap();
    let gws = env.gateways();
    for t in good {
        assert_eq!(
            gws.get(t).map(Vec::len),
            Some(1),
            "one gateway for {t}: {gws:?}"
        );
        assert_eq!(gws[t][0] as i64, pids[t], "{t}'s pid is the sandbox init");
    }
    // Distinct uid ranges, the range root owns the data (the sandbox's root wrote it).
    env.wait_for("gateways ran their probes", 10, |e| {
        good.iter().all(|t| e.gateway_log(t).contains("beat"))
    });
    let mut uids = Vec::new();
    for t in good {
        let owner = std::fs::metadata(env.data.join(t).join(format!("written-by-{t}")))
            .unwrap()
            .uid();
        assert_eq!(owner, std::fs::metadata(env.data.join(t)).unwrap().uid());
        assert!(owner >= 200_000, "{t} writes as {owner}");
        uids.push(owner);
    }
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 3, "each tenant has its own uid range");

    // 2. Isolation: nothing of another tenant is mounted or readable; read-only paths are.
    for t in good {
        let log = env.gateway_log(t);
        assert!(log.contains(&format!("start {t} uid=0")), "{log}");
        assert!(
            log.contains(&format!("OWN {t}-secret")),
            "{t} reads its own data: {log}"
        );
        assert!(
            !log.contains(" READ"),
            "{t} read another tenant's data:\n{log}"
        );
        assert!(!log.lines().any(|l| l.starts_with("MOUNTED ")), "{log}");
        for other in all.iter().filter(|o| **o != t) {
            assert!(
                log.contains(&format!("NOT-MOUNTED {other}")),
                "{t} sees {other} mounted: {log}"
            );
            assert!(
                log.matches(&format!("/{other}/secret.txt DENIED")).count() >= 5,
                "{t} probes of {other}: {log}"
            );
        }
        for p in ["/opt/gateway/x", "/etc/reeve/layer1/x", "/x", "/bin/x"] {
            assert!(
                log.contains(&format!("WRITE {p} DENIED")),
                "{t} wrote {p}: {log}"
            );
        }
        assert!(log.contains("WRITE /data OK"), "{log}");
        assert!(log.contains("LAYER1 {\"layer\":1}"), "{log}");
    }
    // The bundle carries the tenant's limits (not enforced on a hybrid host: said in status).
    let spec: Value =
        serde_json::from_slice(&std::fs::read(env.state.join("bundles/beta/config.json")).unwrap())
            .unwrap();
    assert_eq!(spec["linux"]["uidMappings"][0]["size"], 65_536);
    let st = common::status(&env.config).unwrap();
    if st["limits_enforced"] == false {
        assert!(st["summary"].as_str().unwrap().contains("NO LIMITS"));
    } else {
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 512u64 << 20);
    }

    // 3. kill -9 of a gateway: restarted with a new pid, restart counted.
    kill(pids["acme"] as i32, nix::sys::signal::Signal::SIGKILL);
    env.wait_for("acme restarted", 10, |e| {
        e.tenants()
            .get("acme")
            .is_some_and(|t| t.phase == "running" && t.pid != Some(pids["acme"]) && t.restarts == 1)
    });
    assert_eq!(env.tenants()["acme"].last_exit, "killed by signal 9");
    let pids = running_pids(&env, &good).unwrap();

    // 4. SIGHUP picks up removed and added tenant directories, touching no one else.
    let parked = env.top.join("gamma-parked");
    std::fs::rename(env.data.join("gamma"), &parked).unwrap();
    kill(d.id() as i32, nix::sys::signal::Signal::SIGHUP);
    env.wait_for("gamma unmanaged", 10, |e| {
        !e.tenants().contains_key("gamma")
    });
    assert!(!env.gateways().contains_key("gamma"));
    std::fs::rename(&parked, env.data.join("gamma")).unwrap();
    env.cli_ok(&["reload"]);
    env.wait_for("gamma back", 10, |e| running_pids(e, &good).is_some());
    let after = running_pids(&env, &good).unwrap();
    assert_eq!(after["acme"], pids["acme"]);
    assert_eq!(after["beta"], pids["beta"]);
    let pids = after;

    // 5. kill -9 of reeved: gateways live on; a new reeved re-adopts them, no duplicates.
    kill(d.id() as i32, nix::sys::signal::Signal::SIGKILL);
    let _ = d.wait();
    let gws = env.gateways();
    for t in good {
        assert_eq!(
            gws.get(t).map(Vec::len),
            Some(1),
            "{t} survives reeved: {gws:?}"
        );
    }
    d = env.spawn("2");
    env.wait_for("re-adoption", 20, |e| running_pids(e, &good).is_some());
    let t = env.tenants();
    for n in good {
        assert_eq!(t[n].pid, Some(pids[n]), "{n} keeps its pid");
        assert!(t[n].adopted, "{n} is marked re-adopted");
    }
    assert_eq!(t["acme"].restarts, 1, "the restart count survives reeved");
    std::thread::sleep(Duration::from_millis(500));
    let gws = env.gateways();
    for n in good {
        assert_eq!(
            gws.get(n).map(Vec::len),
            Some(1),
            "no duplicate of {n}: {gws:?}"
        );
    }
    // The adopted gateway is still watched: kill it, it comes back.
    kill(pids["beta"] as i32, nix::sys::signal::Signal::SIGKILL);
    env.wait_for("adopted beta restarted", 10, |e| {
        e.tenants()
            .get("beta")
            .is_some_and(|t| t.phase == "running" && t.pid != Some(pids["beta"]))
    });

    // 6. Control: stop/start, delete to a tombstone, logs.
    env.cli_ok(&["tenant", "stop", "gamma"]);
    assert_eq!(env.tenants()["gamma"].phase, "stopped");
    assert!(!env.gateways().contains_key("gamma"));
    assert!(
        env.gateway_log("gamma").contains("bye gamma"),
        "graceful stop via SIGTERM"
    );
    env.cli_ok(&["tenant", "start", "gamma"]);
    assert_eq!(env.tenants()["gamma"].phase, "running");
    let out = env.cli_ok(&["logs", "acme", "-n", "2"]);
    assert!(
        out.lines().count() == 2 && out.contains("beat acme"),
        "{out}"
    );
    let out = env.cli_ok(&["tenant", "delete", "crashy"]);
    assert!(out.contains(".tombstones/crashy."), "{out}");
    assert!(!env.data.join("crashy").exists());
    assert!(!env.tenants().contains_key("crashy"));
    // The daemon refuses bad names too (a client that skips the CLI's check).
    for bad in ["../beta", "a\u{0}b", "Beta", ".."] {
        use std::io::{BufRead, Write};
        let mut c = std::os::unix::net::UnixStream::connect(env.state.join("reeved.sock")).unwrap();
        let req = serde_json::json!({"cmd": "create", "name": bad});
        writeln!(c, "{req}").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(c).read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ok"], false, "{bad:?}");
        assert!(v["error"].as_str().unwrap().contains("tenant name"), "{v}");
    }
    let table = env.cli_ok(&["status"]);
    assert!(
        table.contains("TENANT") && table.contains("acme"),
        "{table}"
    );

    // 7. SIGTERM: everything stopped, no state left but the uid table and logs.
    kill(d.id() as i32, nix::sys::signal::Signal::SIGTERM);
    let s = wait_exit(&mut d, 20);
    assert!(s.success(), "reeved exit: {s}\n{}", env.reeved_logs());
    assert!(env.gateways().is_empty(), "{:?}", env.gateways());
    assert!(env.oci_list().is_empty(), "{:?}", env.oci_list());
    let mut left: Vec<String> = std::fs::read_dir(&env.state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec!["logs", "stopped", "uids.json"],
        "state left behind"
    );
    for t in good {
        assert!(
            env.gateway_log(t).contains(&format!("bye {t}")),
            "{t} got SIGTERM"
        );
    }
}

#[test]
fn invalid_tenant_names_are_refused_before_anything_happens() {
    require_root!();
    let env = Env::new(&["acme"]);
    for bad in [
        "..",
        "../etc",
        "a/b",
        "Acme",
        "",
        "-x",
        "a b",
        &"x".repeat(64),
    ] {
        let o = env.cli(&["tenant", "create", "--", bad]);
        assert!(!o.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("tenant name"), "{bad:?}: {err}");
    }
    assert!(!env.data.exists(), "nothing was created");
    assert!(!env.state.exists(), "nothing was created");
}

#[test]
fn tells_systemd_ready_status_watchdog_and_stopping() {
    require_root!();
    reevec();
    let env = Env::new(&["solo"]);
    env.create("solo");
    let sock_path = env.top.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut d = env.spawn_with(
        "notify",
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let mut buf = [0u8; 4096];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv();
    assert!(
        first.starts_with("READY=1\nSTATUS=1 tenants: 1 running"),
        "{first}"
    );
    // The gateway is up by the time READY=1 is sent.
    assert_eq!(env.tenants()["solo"].phase, "running");
    let t0 = Instant::now();
    let mut watchdogs = 0;
    while watchdogs < 2 {
        if recv() == "WATCHDOG=1" {
            watchdogs += 1;
        }
    }
    assert!(
        t0.elapsed() < Duration::from_millis(1900),
        "WATCHDOG=1 every 0.5 s"
    );
    kill(d.id() as i32, nix::sys::signal::Signal::SIGTERM);
    let mut got_stopping = false;
    for _ in 0..20 {
        if recv() == "STOPPING=1" {
            got_stopping = true;
            break;
        }
    }
    assert!(got_stopping);
    assert!(wait_exit(&mut d, 20).success());
    assert!(env.gateways().is_empty());
}
