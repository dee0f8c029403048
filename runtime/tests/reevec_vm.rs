//! reevec end to end against a real cgroup v2 hierarchy, through its command line: memory.max
//! OOM kills inside the sandbox only, pids.max stops a fork bomb, cpu.max throttles, the device
//! filter refuses a device outside the allowlist, pause/resume, update, events, cleanup of the
//! cgroup on delete and on a failed create, and a cross-check of the cgroup files runc 1.1.5
//! writes for the same bundle.
//!
//! Runs only in the test VM (`tests/vm/cargo-vm-test.sh -p reeve-runtime --test reevec_vm`, or
//! `tests/vm/run-all.sh`), which sets REEVE_IN_VM=1, boots with a pure cgroup v2 hierarchy and
//! provides a busybox rootfs at $REEVE_VM_ROOTFS and runc at /usr/bin/runc. Anywhere else every
//! test prints SKIP and passes without touching anything.
//!
//! Every sandbox gets the host directory `<tmp>/<name>.shared` bind-mounted read-write at /tmp
//! (the rootfs is read-only and shared): scripts report through files there.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const REEVEC: &str = env!("CARGO_BIN_EXE_reevec");
const CGROOT: &str = "/sys/fs/cgroup";
/// The parent cgroup of every sandbox of these tests (absolute cgroupsPath).
const PARENT: &str = "reevec-vm";
/// Files whose values may differ between runc and reevec, with the reason (`file<TAB>reason`).
const RUNC_DIFFERENCES: &str = include_str!("../../tests/vm/runc-differences.txt");

fn in_vm(test: &str) -> bool {
    if std::env::var("REEVE_IN_VM").as_deref() == Ok("1") {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {test}: runs only in the test VM (REEVE_IN_VM=1); use tests/vm/run-all.sh"
    );
    false
}

/// Straight to stderr, past libtest's output capture.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_trim(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A flat-keyed cgroup file (`memory.events`, `cpu.stat`, `pids.events`) as a map.
fn keyed(p: &Path) -> BTreeMap<String, u64> {
    read_trim(p)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect()
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// One test's world: a temp dir holding bundles and the state root; force-deletes every
/// container it created when dropped.
struct World {
    tmp: tempfile::TempDir,
    state: PathBuf,
    rootfs: PathBuf,
    created: Vec<String>,
}

struct Sandbox {
    id: String,
    bundle: PathBuf,
    shared: PathBuf,
    log: PathBuf,
    cgroup: PathBuf,
}

impl Sandbox {
    fn cg(&self, file: &str) -> String {
        read_trim(&self.cgroup.join(file))
    }
    fn shared_file(&self, name: &str) -> PathBuf {
        self.shared.join(name)
    }
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let rootfs = PathBuf::from(
            std::env::var("REEVE_VM_ROOTFS").expect("run.sh sets REEVE_VM_ROOTFS in the guest"),
        );
        World {
            tmp,
            state,
            rootfs,
            created: Vec::new(),
        }
    }

    fn reevec(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(REEVEC);
        cmd.arg("--root").arg(&self.state).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn reevec");
        if let Some(text) = stdin {
            let mut si = child.stdin.take().unwrap();
            si.write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap().into()
    }

    /// `reevec ARGS` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.reevec(args, None);
        assert!(o.ok, "reevec {args:?} failed: {}{}", o.stdout, o.stderr);
        o.stdout
    }

    fn status(&self, id: &str) -> String {
        let v: Value = serde_json::from_str(&self.ok(&["state", id])).unwrap();
        v["status"].as_str().unwrap().to_string()
    }

    /// A bundle from `reevec spec` on the VM's busybox rootfs, running `args`, with `resources`
    /// as linux.resources (merged over the spec's deny-all devices rule) and cgroupsPath
    /// /reevec-vm/<name>; `edit` changes anything else.
    fn bundle(
        &self,
        name: &str,
        args: &[&str],
        resources: Value,
        edit: impl FnOnce(&mut Value),
    ) -> Sandbox {
        let bundle = self.tmp.path().join(name);
        let shared = self.tmp.path().join(format!("{name}.shared"));
        fs::create_dir_all(&bundle).unwrap();
        fs::create_dir_all(&shared).unwrap();
        self.ok(&["spec", "--bundle", bundle.to_str().unwrap()]);
        let path = bundle.join("config.json");
        let mut spec: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        spec["root"]["path"] = json!(self.rootfs);
        spec["process"]["args"] = json!(args);
        spec["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/tmp", "type": "bind", "source": shared,
            "options": ["rbind", "rw"]
        }));
        let cgroups_path = format!("/{PARENT}/{name}");
        spec["linux"]["cgroupsPath"] = json!(cgroups_path);
        if let Value::Object(extra) = resources {
            for (k, v) in extra {
                spec["linux"]["resources"][k] = v;
            }
        }
        edit(&mut spec);
        fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        Sandbox {
            id: name.to_string(),
            log: self.tmp.path().join(format!("{name}.log")),
            cgroup: Path::new(CGROOT).join(&cgroups_path[1..]),
            bundle,
            shared,
        }
    }

    /// `reevec create` (the sandbox's stdio go to its log file); Err(log) when it fails.
    fn create(&mut self, sb: &Sandbox, extra: &[&str]) -> Result<(), String> {
        let log = fs::File::create(&sb.log).unwrap();
        let status = Command::new(REEVEC)
            .arg("--root")
            .arg(&self.state)
            .args(extra)
            .args(["create", "--bundle"])
            .arg(&sb.bundle)
            .arg(&sb.id)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap();
        self.created.push(sb.id.clone());
        if status.success() {
            Ok(())
        } else {
            Err(fs::read_to_string(&sb.log).unwrap_or_default())
        }
    }

    fn run(&mut self, sb: &Sandbox) {
        if let Err(log) = self.create(sb, &[]) {
            panic!("create {} failed: {log}", sb.id);
        }
        self.ok(&["start", &sb.id]);
    }

    /// Starts `reevec events ARGS` in the background, its stdout into `file`.
    fn spawn_events(&self, args: &[&str], file: &Path) -> Child {
        Command::new(REEVEC)
            .arg("--root")
            .arg(&self.state)
            .arg("events")
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(file).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for id in &self.created {
            let _ = self.reevec(&["delete", "--force", id], None);
        }
    }
}

/// `sh -c SCRIPT`.
fn sh(script: &str) -> Vec<&str> {
    vec!["sh", "-c", script]
}

fn wait_file(p: &Path, timeout: Duration) -> String {
    wait_until(&format!("{}", p.display()), timeout, || {
        fs::read_to_string(p).is_ok_and(|s| s.ends_with('\n'))
    });
    read_trim(p)
}

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A report written line by line and closed with a line "end": its lines before "end".
fn wait_report(p: &Path) -> String {
    wait_until(&format!("{} to end", p.display()), SECS(10), || {
        fs::read_to_string(p).is_ok_and(|s| s.ends_with("\nend\n"))
    });
    read_trim(p).trim_end_matches("end").trim().to_string()
}

#[test]
fn memory_max_oom_kills_inside_the_sandbox_and_the_neighbour_keeps_running() {
    if !in_vm("memory_max_oom") {
        return;
    }
    let mut w = World::new();
    let limit = 32u64 << 20;
    let mem = json!({"memory": {"limit": limit, "swap": limit}});
    let neighbour = w.bundle("oom-neighbour", &["sleep", "1000"], mem.clone(), |_| {});
    // dd's 64 MiB buffer cannot fit under 32 MiB: the kernel OOM-kills dd, not the shell.
    let victim = w.bundle(
        "oom-victim",
        &sh("while [ ! -e /tmp/go ]; do sleep 0.05; done; \
             dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$? > /tmp/result; \
             exec sleep 1000"),
        mem,
        |_| {},
    );
    w.run(&neighbour);
    w.run(&victim);
    assert_eq!(victim.cg("memory.max"), limit.to_string());
    assert_eq!(victim.cg("memory.swap.max"), "0");
    let events_out = w.tmp.path().join("oom-events.jsonl");
    let mut events = w.spawn_events(&["--interval", "300ms", &victim.id], &events_out);
    wait_until("the first stats event", SECS(10), || {
        fs::read_to_string(&events_out).is_ok_and(|s| s.contains("\"type\":\"stats\""))
    });
    fs::write(victim.shared_file("go"), "").unwrap();

    let result = wait_file(&victim.shared_file("result"), SECS(20));
    assert_eq!(result, "dd=137", "dd was SIGKILLed by the OOM killer");
    let ev = keyed(&victim.cgroup.join("memory.events"));
    assert!(ev["oom_kill"] >= 1, "memory.events: {ev:?}");
    wait_until("an oom event from reevec events", SECS(10), || {
        fs::read_to_string(&events_out)
            .is_ok_and(|s| s.contains(r#"{"type":"oom","id":"oom-victim"}"#))
    });
    assert_eq!(
        w.status(&victim.id),
        "running",
        "the sandbox's init survived"
    );
    assert_eq!(w.status(&neighbour.id), "running");
    assert_eq!(
        keyed(&neighbour.cgroup.join("memory.events"))["oom_kill"],
        0
    );

    // every line is a runc-shaped event; the stream ends by itself when the container stops
    for line in fs::read_to_string(&events_out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["id"], "oom-victim", "{line}");
        assert!(v["type"] == "stats" || v["type"] == "oom", "{line}");
    }
    w.ok(&["delete", "--force", &victim.id]);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = events.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > SECS(10) {
            let _ = events.kill();
            panic!("reevec events did not end when the container was deleted");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "events exit: {status:?}");
}

#[test]
fn pids_max_stops_a_fork_bomb_and_init_survives() {
    if !in_vm("pids_max") {
        return;
    }
    let mut w = World::new();
    let sb = w.bundle(
        "forkbomb",
        &sh(
            "sh -c 'i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done; echo all-forked'; \
             echo bomb=$? > /tmp/result; exec sleep 1000",
        ),
        json!({"pids": {"limit": 8}}),
        |_| {},
    );
    w.run(&sb);
    let result = wait_file(&sb.shared_file("result"), SECS(20));
    assert_ne!(
        result, "bomb=0",
        "the bomb's shell must have failed to fork"
    );
    let log = fs::read_to_string(&sb.log).unwrap();
    assert!(!log.contains("all-forked"), "40 forks went through: {log}");
    assert_eq!(sb.cg("pids.max"), "8");
    let current: u64 = sb.cg("pids.current").parse().unwrap();
    assert!((2..=8).contains(&current), "pids.current {current}");
    assert!(keyed(&sb.cgroup.join("pids.events"))["max"] >= 1);
    assert_eq!(w.status(&sb.id), "running", "init survived the bomb");
}

#[test]
fn cpu_max_throttles_a_busy_loop_and_weight_is_runc_1_1_5s() {
    if !in_vm("cpu_max") {
        return;
    }
    let mut w = World::new();
    let sb = w.bundle(
        "busy",
        &sh("while :; do :; done"),
        json!({"cpu": {"shares": 512, "quota": 20000, "period": 100000}}),
        |_| {},
    );
    w.run(&sb);
    assert_eq!(sb.cg("cpu.max"), "20000 100000");
    // runc 1.1.5 ConvertCPUSharesToCgroupV2Value: 1 + ((shares - 2) * 9999) / 262142
    assert_eq!(
        sb.cg("cpu.weight"),
        (1 + ((512 - 2) * 9999) / 262142).to_string()
    );
    let usage = || keyed(&sb.cgroup.join("cpu.stat"))["usage_usec"];
    let (u0, t0) = (usage(), Instant::now());
    wait_until("cpu.stat nr_throttled > 2", SECS(10), || {
        keyed(&sb.cgroup.join("cpu.stat"))["nr_throttled"] > 2
    });
    std::thread::sleep(Duration::from_millis(1000));
    let (u1, elapsed) = (usage(), t0.elapsed());
    let share = (u1 - u0) as f64 / elapsed.as_micros() as f64;
    let stat = keyed(&sb.cgroup.join("cpu.stat"));
    assert!(stat["throttled_usec"] > 0, "{stat:?}");
    assert!(
        share < 0.35,
        "a 20% quota used {:.0}% of a cpu",
        share * 100.0
    );
    say(&format!(
        "cpu_max: busy loop under cpu.max 20000 100000 used {:.1}% of a cpu; {stat:?}",
        share * 100.0
    ));
}

#[test]
fn a_device_outside_the_allowlist_cannot_be_opened_even_by_root() {
    if !in_vm("devices") {
        return;
    }
    let mut w = World::new();
    // /dev/kmsg (c 1:11) is bind-mounted in: it is not among runc's default devices. Writing
    // to it needs no capability, so only the device filter decides.
    let kmsg = json!({"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg",
                      "options": ["bind", "rw"]});
    let script = "echo reevec-vm-devices-test 2>/tmp/kmsg.err >/dev/kmsg; echo kmsg=$? > /tmp/r; \
                  echo x > /dev/null && echo null=ok >> /tmp/r; \
                  echo x > /dev/full 2>/dev/null; echo full=$? >> /tmp/r; \
                  echo uid=$(id -u) >> /tmp/r; echo end >> /tmp/r; exec sleep 1000";
    let denied = w.bundle("dev-denied", &sh(script), json!({}), |s| {
        s["mounts"].as_array_mut().unwrap().push(kmsg.clone())
    });
    let allowed = w.bundle(
        "dev-allowed",
        &sh(script),
        json!({"devices": [{"allow": false, "access": "rwm"},
                           {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]}),
        |s| s["mounts"].as_array_mut().unwrap().push(kmsg.clone()),
    );
    w.run(&denied);
    w.run(&allowed);
    let r = wait_report(&denied.shared_file("r"));
    // EPERM comes from the cgroup device program (nodev would give EACCES)
    assert_eq!(r, "kmsg=1\nnull=ok\nfull=1\nuid=0", "{r}");
    let err = read_trim(&denied.shared_file("kmsg.err"));
    assert!(err.contains("Operation not permitted"), "{err}");
    let r = wait_report(&allowed.shared_file("r"));
    assert_eq!(
        r, "kmsg=0\nnull=ok\nfull=1\nuid=0",
        "an allow rule opens it: {r}"
    );
}

fn counter(sb: &Sandbox) -> u64 {
    // the script rewrites the file: retry over a torn read
    let p = sb.shared_file("count");
    let mut v = None;
    wait_until("a readable counter", SECS(5), || {
        v = fs::read_to_string(&p)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        v.is_some()
    });
    v.unwrap()
}

#[test]
fn pause_freezes_and_resume_thaws_and_stats_report_usage() {
    if !in_vm("pause_resume") {
        return;
    }
    let mut w = World::new();
    let sb = w.bundle(
        "counter",
        &sh("i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"),
        json!({"memory": {"limit": 33554432}, "pids": {"limit": 20}}),
        |_| {},
    );
    w.run(&sb);
    wait_until("the counter to reach 3", SECS(10), || {
        sb.shared_file("count").exists() && counter(&sb) >= 3
    });

    // events --stats: one runc-shaped JSON line
    let v: Value = serde_json::from_str(w.ok(&["events", "--stats", &sb.id]).trim()).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], "counter");
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 33554432, "{v}");
    let pids = v["data"]["pids"]["current"].as_u64().unwrap();
    assert!((1..=2).contains(&pids), "sh and maybe a sleep: {v}");
    assert_eq!(v["data"]["pids"]["limit"], 20, "{v}");

    w.ok(&["pause", &sb.id]);
    assert_eq!(w.status(&sb.id), "paused");
    assert_eq!(keyed(&sb.cgroup.join("cgroup.events"))["frozen"], 1);
    let frozen_at = counter(&sb);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(counter(&sb), frozen_at, "the counter advanced while paused");
    // stats work on a paused container
    w.ok(&["events", "--stats", &sb.id]);
    let again = w.reevec(&["pause", &sb.id], None);
    assert!(
        !again.ok
            && again
                .stderr
                .contains("cannot pause container counter: it is paused"),
        "{}",
        again.stderr
    );

    w.ok(&["resume", &sb.id]);
    assert_eq!(w.status(&sb.id), "running");
    wait_until("the counter to advance after resume", SECS(10), || {
        counter(&sb) > frozen_at + 2
    });
    let again = w.reevec(&["resume", &sb.id], None);
    assert!(
        !again.ok
            && again
                .stderr
                .contains("cannot resume container counter: it is running"),
        "{}",
        again.stderr
    );
    let missing = w.reevec(&["pause", "no-such-container"], None);
    assert!(
        !missing.ok
            && missing
                .stderr
                .contains("container no-such-container does not exist"),
        "{}",
        missing.stderr
    );
}

#[test]
fn update_rewrites_the_cgroup_files() {
    if !in_vm("update") {
        return;
    }
    let mut w = World::new();
    let sb = w.bundle(
        "upd",
        &["sleep", "1000"],
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 20},
               "cpu": {"quota": 50000, "period": 50000}}),
        |_| {},
    );
    w.run(&sb);
    assert_eq!(sb.cg("memory.max"), "67108864");
    assert_eq!(sb.cg("pids.max"), "20");

    w.ok(&["update", "--memory", "48M", "--pids-limit", "12", &sb.id]);
    assert_eq!(sb.cg("memory.max"), (48u64 << 20).to_string());
    assert_eq!(sb.cg("pids.max"), "12");

    // what containerd sends: LinuxResources JSON on stdin; a quota alone keeps the period
    let o = w.reevec(
        &["update", "--resources", "-", &sb.id],
        Some(r#"{"memory": {"limit": 41943040}, "cpu": {"quota": 30000}, "pids": {"limit": 9}}"#),
    );
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(sb.cg("memory.max"), "41943040");
    assert_eq!(sb.cg("cpu.max"), "30000 50000");
    assert_eq!(sb.cg("pids.max"), "9");

    // a period alone keeps the quota
    w.ok(&["update", &sb.id, "--cpu-period", "100000"]);
    assert_eq!(sb.cg("cpu.max"), "30000 100000");

    // a controller the sandbox was created without (cpuset) is enabled on the way
    let file = w.tmp.path().join("res.json");
    fs::write(&file, r#"{"cpu": {"cpus": "0"}, "memory": {"limit": -1}}"#).unwrap();
    w.ok(&["update", "-r", file.to_str().unwrap(), &sb.id]);
    assert_eq!(sb.cg("cpuset.cpus"), "0");
    assert_eq!(sb.cg("memory.max"), "max");
    assert_eq!(w.status(&sb.id), "running");

    let bad = w.reevec(&["update", "--resources", "-", &sb.id], Some("{not json"));
    assert!(
        !bad.ok && bad.stderr.contains("parse --resources stdin"),
        "{}",
        bad.stderr
    );
    let bad = w.reevec(&["update", "--memory", "lots", &sb.id], None);
    assert!(
        !bad.ok && bad.stderr.contains("--memory") && bad.stderr.contains("not a size"),
        "{}",
        bad.stderr
    );
    let bad = w.reevec(&["update", "--pids-limit", "5", "no-such"], None);
    assert!(
        !bad.ok && bad.stderr.contains("container no-such does not exist"),
        "{}",
        bad.stderr
    );
    assert_eq!(sb.cg("pids.max"), "9", "failed updates change nothing");
}

#[test]
fn delete_and_a_failed_create_leave_no_cgroup_and_no_cgroup_is_explained() {
    if !in_vm("cleanup") {
        return;
    }
    let mut w = World::new();
    let sb = w.bundle(
        "gone",
        &["sleep", "1000"],
        json!({"pids": {"limit": 10}}),
        |_| {},
    );
    w.run(&sb);
    assert!(sb.cgroup.is_dir());
    w.ok(&["delete", "--force", &sb.id]);
    assert!(!sb.cgroup.exists(), "delete left {}", sb.cgroup.display());

    // the init fails while mounting (after the cgroup was made): rolled back
    let bad = w.bundle(
        "bad-mount",
        &["true"],
        json!({"pids": {"limit": 10}}),
        |s| {
            s["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/mnt", "type": "bind", "source": "/nonexistent/source",
                "options": ["bind"]
            }))
        },
    );
    let log = w
        .create(&bad, &[])
        .expect_err("create with a missing bind source must fail");
    assert!(log.contains("/nonexistent/source"), "{log}");
    assert!(
        !bad.cgroup.exists(),
        "failed create left {}",
        bad.cgroup.display()
    );
    let st = w.reevec(&["state", &bad.id], None);
    assert!(
        !st.ok && st.stderr.contains("does not exist"),
        "{}",
        st.stderr
    );

    // a sandbox without a cgroup: the verbs say why
    let nocg = w.bundle("no-cgroup", &["sleep", "1000"], json!({}), |_| {});
    if let Err(log) = w.create(&nocg, &["--cgroup-manager", "disabled"]) {
        panic!("create without cgroups: {log}");
    }
    assert!(!nocg.cgroup.exists());
    for verb in [
        vec!["pause"],
        vec!["resume"],
        vec!["update", "--pids-limit", "3"],
        vec!["events", "--stats"],
    ] {
        let mut args = verb.clone();
        args.push("no-cgroup");
        let o = w.reevec(&args, None);
        assert!(
            !o.ok && o.stderr.contains(
                "container no-cgroup has no cgroup (created with --cgroup-manager=disabled or on a host without cgroup v2)"
            ),
            "{verb:?}: {}",
            o.stderr
        );
    }
    // the parent of the test cgroups holds nothing of ours
    let left: Vec<String> = fs::read_dir(Path::new(CGROOT).join(PARENT))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| ["gone", "bad-mount", "no-cgroup"].contains(&n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The cgroup files compared with runc.
const XCHECK_FILES: &[&str] = &[
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "memory.high",
    "memory.min",
    "cpu.max",
    "cpu.weight",
    "pids.max",
    "io.weight",
    "io.bfq.weight",
    "cpuset.cpus",
    "cpuset.mems",
];

fn allowed_differences() -> BTreeMap<String, String> {
    RUNC_DIFFERENCES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (file, reason) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("runc-differences.txt: no TAB in {l:?}"));
            (file.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

fn runc_bin() -> Option<PathBuf> {
    [
        "/usr/bin/runc",
        "/usr/sbin/runc",
        "/usr/local/bin/runc",
        "/usr/local/sbin/runc",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn cg_value(dir: &Path, file: &str) -> String {
    match fs::read_to_string(dir.join(file)) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "(no file)".into(),
        Err(e) => format!("(error: {e})"),
    }
}

/// The object key paths of a JSON value ("data.memory.usage.limit"), map keys under
/// "raw"/"stats"/"hugetlb" left out (they name kernel counters, not the shape).
fn key_paths(v: &Value) -> std::collections::BTreeSet<String> {
    fn walk(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                if !["raw", "stats", "hugetlb"].contains(&k.as_str()) {
                    walk(child, &p, out);
                }
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(v, "", &mut out);
    out
}

#[test]
fn cgroup_files_match_runc_1_1_5() {
    if !in_vm("runc_cross_check") {
        return;
    }
    let Some(runc) = runc_bin() else {
        say("SKIP runc_cross_check: no runc in the guest (run.sh copies it when the host has one)");
        return;
    };
    let version = Command::new(&runc).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let mut w = World::new();
    let resources = json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 32},
        "blockIO": {"weight": 500}
    });
    let no_seccomp = |s: &mut Value| {
        // the comparison is about cgroups; keep runc's libseccomp out of it
        s["linux"].as_object_mut().unwrap().remove("seccomp");
    };
    let ours = w.bundle(
        "xcheck-reevec",
        &["sleep", "1000"],
        resources.clone(),
        no_seccomp,
    );
    w.run(&ours);

    // runc with the same bundle, cgroupsPath /reevec-vm/xcheck-runc
    let theirs = w.bundle("xcheck-runc", &["sleep", "1000"], resources, no_seccomp);
    let runc_root = w.tmp.path().join("runc-state");
    let runc_cmd = |args: &[&str]| -> Out {
        Command::new(&runc)
            .arg("--root")
            .arg(&runc_root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    };
    let log = fs::File::create(&theirs.log).unwrap();
    let st = Command::new(&runc)
        .arg("--root")
        .arg(&runc_root)
        .args(["create", "--bundle"])
        .arg(&theirs.bundle)
        .arg(&theirs.id)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    struct RuncGuard<'a>(&'a dyn Fn(&[&str]) -> Out, String);
    impl Drop for RuncGuard<'_> {
        fn drop(&mut self) {
            (self.0)(&["delete", "--force", &self.1]);
        }
    }
    let _guard = RuncGuard(&runc_cmd, theirs.id.clone());
    assert!(
        st.success(),
        "runc create: {}",
        fs::read_to_string(&theirs.log).unwrap()
    );
    let state: Value = serde_json::from_str(&runc_cmd(&["state", &theirs.id]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let cg_line = read_trim(Path::new(&format!("/proc/{pid}/cgroup")));
    let runc_cg = Path::new(CGROOT).join(cg_line.strip_prefix("0::/").unwrap());
    assert_eq!(
        runc_cg, theirs.cgroup,
        "runc honours the explicit cgroupsPath"
    );
    let reevec_state: Value = serde_json::from_str(&w.ok(&["state", &ours.id])).unwrap();
    let our_pid = reevec_state["pid"].as_i64().unwrap();
    let our_line = read_trim(Path::new(&format!("/proc/{our_pid}/cgroup")));
    assert_eq!(
        Path::new(CGROOT).join(our_line.strip_prefix("0::/").unwrap()),
        ours.cgroup
    );

    let allowed = allowed_differences();
    let mut table = vec![format!(
        "runc cross-check ({version}) of /{PARENT}/xcheck-runc vs /{PARENT}/xcheck-reevec"
    )];
    table.push(format!(
        "{:<16} {:<22} {:<22} result",
        "file", "runc", "reevec"
    ));
    let mut failures = Vec::new();
    for file in XCHECK_FILES {
        let (r, o) = (cg_value(&runc_cg, file), cg_value(&ours.cgroup, file));
        let result = match (r == o, allowed.get(*file)) {
            (true, None) => "same".to_string(),
            (false, Some(reason)) => format!("differs (listed: {reason})"),
            (false, None) => {
                failures.push(format!("{file}: runc {r:?}, reevec {o:?}"));
                "DIFFERS".to_string()
            }
            (true, Some(_)) => {
                failures.push(format!(
                    "{file} is listed in tests/vm/runc-differences.txt but is now the same: \
                     remove the line"
                ));
                "same (STALE LIST ENTRY)".to_string()
            }
        };
        table.push(format!(
            "{file:<16} {:<22} {:<22} {result}",
            r.replace('\n', "; "),
            o.replace('\n', "; ")
        ));
    }
    for listed in allowed.keys() {
        assert!(
            XCHECK_FILES.contains(&listed.as_str()),
            "runc-differences.txt lists {listed}, which the cross-check does not read"
        );
    }
    say(&table.join("\n"));
    // informational: where the `events --stats` JSON shapes differ (keys only)
    let runc_stats: Value =
        serde_json::from_str(&runc_cmd(&["events", "--stats", &theirs.id]).stdout)
            .unwrap_or(Value::Null);
    let our_stats: Value = serde_json::from_str(&w.ok(&["events", "--stats", &ours.id])).unwrap();
    let (rk, ok) = (key_paths(&runc_stats), key_paths(&our_stats));
    say(&format!(
        "events --stats keys only in runc: {:?}\nevents --stats keys only in reevec: {:?}",
        rk.difference(&ok).collect::<Vec<_>>(),
        ok.difference(&rk).collect::<Vec<_>>()
    ));
    // not a subset of the files: the values must be real (the limits were applied at all)
    assert_eq!(cg_value(&ours.cgroup, "memory.max"), "67108864");
    assert!(
        failures.is_empty(),
        "reevec and runc differ:\n{}",
        failures.join("\n")
    );
}
