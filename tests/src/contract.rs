//! Scenarios of the caller contract (what containerd, Docker and Podman rely on) that run the
//! same way under any runtime, so a test can run them under reevec on the host and under both
//! runc and reevec in the VM and compare the reports.
//!
//! - [`hooks_report`]: every OCI hook phase, with what each hook saw (order, status, pid,
//!   namespaces, environment);
//! - [`errors_report`]: the exit codes and the texts callers match for kill/delete/state of
//!   containers that exited or do not exist.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::{poll, Harness};

/// A hook script for `/bin/sh` (dash on the host, busybox in the container): it records the
/// state it got on stdin, its mount and pid namespaces and its environment in LOG/PHASE.*.
const HOOK_SCRIPT: &str = r#"phase=$1; log=$2
cat > "$log/$phase.json"
readlink /proc/self/ns/mnt > "$log/$phase.mnt"
readlink /proc/self/ns/pid > "$log/$phase.pidns"
echo "${HOOK_MARK:-unset} ${HOME:-unset}" > "$log/$phase.env"
echo "$phase" >> "$log/order"
"#;

/// Where the container sees the hook directory (bind-mounted read-write).
const IN_CONTAINER: &str = "/hookdir";

/// What one hook saw, normalized so that two runtimes' reports compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSeen {
    pub status: String,
    /// "init" (the container's host pid), "1" (its pid inside), "0" or "other".
    pub pid: String,
    /// "host" or "container".
    pub mount_ns: String,
    pub id_matches: bool,
    /// The hook's HOOK_MARK and HOME: only its own `env` reaches it.
    pub env: String,
}

/// Every phase that ran, in order, and what each saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksReport {
    pub after_create: Vec<String>,
    pub after_start: Vec<String>,
    pub after_delete: Vec<String>,
    pub seen: BTreeMap<String, HookSeen>,
}

fn hook(path: &Path, phase: &str, log: &Path) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", path, phase, log],
        "env": ["HOOK_MARK=yes"],
        "timeout": 30
    })
}

/// A bundle of `h` running `sleep 30` with one recording hook in every phase; the hooks log to
/// the returned directory.
pub fn hooks_bundle(h: &Harness) -> (crate::Bundle, PathBuf) {
    let dir = h.dir().join(format!("hooks-{}", h.new_id()));
    fs::create_dir_all(&dir).expect("hook dir");
    let script = dir.join("hook.sh");
    fs::write(&script, HOOK_SCRIPT).expect("hook script");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    b.add_mount(json!({
        "destination": IN_CONTAINER, "type": "bind", "source": dir,
        "options": ["rbind", "rw"]
    }));
    let inside = Path::new(IN_CONTAINER);
    // startContainer hooks resolve their path in the container: they use the bind mount.
    b.spec_mut()["hooks"] = json!({
        "prestart": [hook(&script, "prestart", &dir)],
        "createRuntime": [hook(&script, "createRuntime", &dir)],
        "createContainer": [hook(&script, "createContainer", &dir)],
        "startContainer": [hook(&inside.join("hook.sh"), "startContainer", inside)],
        "poststart": [hook(&script, "poststart", &dir)],
        "poststop": [hook(&script, "poststop", &dir)],
    });
    (b, dir)
}

fn order(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Run the lifecycle of [`hooks_bundle`] under `h` and report what every hook saw.
pub fn hooks_report(h: &Harness) -> Result<HooksReport, String> {
    let (b, dir) = hooks_bundle(h);
    let (c, out) = h.create(&b);
    if !out.success() {
        return Err(format!("create with hooks: {out}"));
    }
    let after_create = order(&dir);
    let pid = c.pid();
    let container_mnt = ns_link(&pid.to_string(), "mnt");
    let host_mnt = ns_link("self", "mnt");
    let out = c.start();
    if !out.success() {
        return Err(format!("start with hooks: {out}"));
    }
    let after_start = order(&dir);
    let out = c.verb("delete", &["--force"]);
    if !out.success() {
        return Err(format!("delete --force with hooks: {out}"));
    }
    // poststop runs before delete returns; give a slow machine a moment anyway.
    poll(Duration::from_secs(5), || {
        order(&dir).len().ge(&6).then_some(())
    });
    let after_delete = order(&dir);
    let mut seen = BTreeMap::new();
    for phase in &after_delete {
        let state: Value = fs::read_to_string(dir.join(format!("{phase}.json")))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| format!("{phase} hook: no state JSON on its stdin"))?;
        let got_pid = state["pid"].as_i64().unwrap_or(-1);
        let mnt = fs::read_to_string(dir.join(format!("{phase}.mnt"))).unwrap_or_default();
        let mnt = mnt.trim();
        seen.insert(
            phase.clone(),
            HookSeen {
                status: state["status"].as_str().unwrap_or_default().to_string(),
                pid: match got_pid {
                    p if p == pid as i64 => "init".into(),
                    1 => "1".into(),
                    0 => "0".into(),
                    _ => "other".into(),
                },
                mount_ns: if mnt == host_mnt {
                    "host".into()
                } else if mnt == container_mnt {
                    "container".into()
                } else {
                    format!("unknown {mnt}")
                },
                id_matches: state["id"].as_str() == Some(c.id.as_str()),
                env: fs::read_to_string(dir.join(format!("{phase}.env")))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            },
        );
    }
    Ok(HooksReport {
        after_create,
        after_start,
        after_delete,
        seen,
    })
}

/// How one failing hook of `phase` (exit 3, a message on stderr) changes the lifecycle:
/// (create ok, start ok, container left after the failed step, the failing step's output).
pub fn failing_hook(h: &Harness, phase: &str) -> (bool, bool, bool, String) {
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    b.spec_mut()["hooks"] = json!({ phase: [{
        "path": "/bin/sh",
        "args": ["sh", "-c", "echo hook says no >&2; exit 3"]
    }]});
    let (c, out) = h.create(&b);
    if !out.success() {
        let left = c.state().is_ok();
        return (false, false, left, out.all());
    }
    let out = c.start();
    // A runtime whose start succeeds while the init dies just after (runc 1.1 with a failing
    // startContainer hook) gets a moment to show it: "left" means still there after it.
    let running = || c.state().is_ok_and(|s| s["status"] != "stopped");
    poll(Duration::from_secs(3), || (!running()).then_some(()));
    (true, out.success(), running(), out.all())
}

/// One caller-visible answer: exit code and whether stderr holds the text callers match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: Option<i32>,
    pub matched: bool,
}

/// Answers to the calls containerd's shim makes around containers that exited or are gone,
/// keyed by a short name, with the text the shim (or runc's own users) match for each.
pub fn errors_report(h: &Harness) -> BTreeMap<&'static str, Answer> {
    let mut r = BTreeMap::new();
    let answer = |out: crate::Output, text: &str| Answer {
        code: out.code,
        matched: text.is_empty() || out.stderr.contains(text),
    };
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    let (c, out) = h.create(&b);
    out.assert_ok();
    c.start().assert_ok();
    r.insert(
        "delete a running container",
        answer(c.verb("delete", &[]), ""),
    );
    c.kill("KILL").assert_ok();
    poll(Duration::from_secs(10), || {
        (c.status() == "stopped").then_some(())
    });
    r.insert(
        "kill an exited container",
        answer(h.exec(&["kill", &c.id, "9"]), "container not running"),
    );
    r.insert(
        "kill --all an exited container",
        answer(h.exec(&["kill", "--all", &c.id, "9"]), ""),
    );
    r.insert(
        "delete an exited container",
        answer(c.verb("delete", &[]), ""),
    );
    r.insert(
        "state of a deleted container",
        answer(c.verb("state", &[]), "does not exist"),
    );
    r.insert(
        "delete a deleted container",
        answer(c.verb("delete", &[]), "does not exist"),
    );
    r.insert(
        "delete --force a deleted container",
        answer(c.verb("delete", &["--force"]), ""),
    );
    r.insert(
        "kill a deleted container",
        answer(h.exec(&["kill", &c.id, "9"]), "does not exist"),
    );
    r
}
