//! What reeved's integration tests share (`mod common;` in each test file): the scratch layout
//! of a test (a busybox root, the gateway and Layer 1 dirs, where data, state and the config
//! go), running the reeved CLI, polling, and finding a test's processes. Each test binary uses
//! a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const REEVED: &str = env!("CARGO_BIN_EXE_reeved");

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `create_dir_all`, then mode 0755 (the sandboxes run as their tenant's uid range and must
/// traverse it).
pub fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// One test's scratch directory (mode 0711, removed on drop) and the paths of its reeved.
pub struct Layout {
    pub tmp: tempfile::TempDir,
    pub top: PathBuf,
    /// A read-only busybox root: `bin/busybox`, the applets as symlinks, `tmp/`.
    pub rootfs: PathBuf,
    /// `gateway.dir`, holding `gw.sh`.
    pub gateway: PathBuf,
    /// `layer1_dir`, empty.
    pub layer1: PathBuf,
    /// `data_root` and `state_dir` (not created: reeved makes them).
    pub data: PathBuf,
    pub state: PathBuf,
    /// Where the test writes `reeved.toml`.
    pub config: PathBuf,
}

/// Make a test's scratch layout: `prefix` names the temp dir, `applets` are linked to busybox
/// in the root's `/bin`, `gateway` is the gateway script (`/opt/gateway/gw.sh` in the sandbox).
pub fn layout(prefix: &str, applets: &[&str], gateway: &str) -> Layout {
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let top = tmp.path().to_path_buf();
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o711)).unwrap();
    let rootfs = top.join("rootfs");
    mkdir(&rootfs.join("bin"));
    mkdir(&rootfs.join("tmp"));
    // Copied by `cp`: a write fd of this multi-threaded test process would be inherited by
    // another test's fork until its exec, and busybox would then fail to run with ETXTBSY.
    let cp = Command::new("cp")
        .arg("/bin/busybox")
        .arg(rootfs.join("bin/busybox"))
        .status()
        .unwrap();
    assert!(cp.success(), "cp /bin/busybox");
    for a in applets {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let gw = top.join("gateway");
    mkdir(&gw);
    std::fs::write(gw.join("gw.sh"), gateway).unwrap();
    let layer1 = top.join("layer1");
    mkdir(&layer1);
    Layout {
        data: top.join("data"),
        state: top.join("state"),
        config: top.join("reeved.toml"),
        tmp,
        top,
        rootfs,
        gateway: gw,
        layer1,
    }
}

/// `reeved --config CONFIG ARGS…`, output captured.
pub fn reeved(config: &Path, args: &[&str]) -> Output {
    Command::new(REEVED)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// `cmd` (reeved itself, or a wrapper that runs it) set up for `--config CONFIG run` with debug
/// logging, no systemd socket, and stdout and stderr into the file `log`; environment the caller
/// adds afterwards wins.
pub fn run_cmd(mut cmd: Command, config: &Path, log: &Path) -> Command {
    let log = std::fs::File::create(log).unwrap();
    cmd.arg("--config")
        .arg(config)
        .arg("run")
        .env("REEVED_LOG", "debug")
        .env_remove("NOTIFY_SOCKET")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    cmd
}

/// `reeved status --json`, None when reeved does not answer.
pub fn status(config: &Path) -> Option<Value> {
    let o = reeved(config, &["status", "--json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).unwrap())
}

/// One tenant as `status --json` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    pub phase: String,
    pub pid: Option<i64>,
    pub restarts: u64,
    pub adopted: bool,
    /// How the last gateway ended ("" before the first exit).
    pub last_exit: String,
}

/// The tenants of a status object (`{"tenants": [...]}`), by name.
pub fn tenants_of(status: &Value) -> BTreeMap<String, Tenant> {
    status["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                Tenant {
                    phase: t["phase"].as_str().unwrap().to_string(),
                    pid: t["pid"].as_i64(),
                    restarts: t["restarts"].as_u64().unwrap(),
                    adopted: t["adopted"].as_bool().unwrap(),
                    last_exit: t["last_exit"].as_str().unwrap_or("").to_string(),
                },
            )
        })
        .collect()
}

/// name → pid when every one of `names` is running, else None.
pub fn running_pids(
    tenants: &BTreeMap<String, Tenant>,
    names: &[&str],
) -> Option<BTreeMap<String, i64>> {
    names
        .iter()
        .map(|n| match tenants.get(*n) {
            Some(Tenant {
                phase,
                pid: Some(p),
                ..
            }) if phase == "running" => Some((n.to_string(), *p)),
            _ => None,
        })
        .collect()
}

/// Every `*.log` file in `dir` whose name starts with `prefix`, each under a `--- name` line.
pub fn logs_in(dir: &Path, prefix: &str) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(prefix) && n.ends_with(".log") {
            s += &format!(
                "--- {n}\n{}\n",
                std::fs::read_to_string(e.path()).unwrap_or_default()
            );
        }
    }
    s
}

/// What tenant `t`'s gateway wrote (reeved's per-tenant log under `state`).
pub fn gateway_log(state: &Path, t: &str) -> String {
    std::fs::read_to_string(state.join("logs").join(format!("{t}.log"))).unwrap_or_default()
}

/// `RUNTIME --root <state>/oci list --format json`: the runtime's containers for reeved.
pub fn oci_list(runtime: &Path, state: &Path) -> Vec<Value> {
    let root = state.join("oci");
    if !root.exists() {
        return Vec::new();
    }
    let o = Command::new(runtime)
        .arg("--root")
        .arg(&root)
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<Value>(&o.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Call `f` every 100 ms until it says yes (true) or `secs` have passed (false).
pub fn poll(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Every process whose environment holds `REEVE_TEST_ID=<test_id>` (the gateways of one test
/// and whatever they started).
pub fn test_processes(test_id: &str) -> Vec<i32> {
    let needle = format!("REEVE_TEST_ID={test_id}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(env) = std::fs::read(e.path().join("environ")) {
            if env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

/// SIGKILL each pid, ignoring the ones already gone.
pub fn sigkill_all(pids: impl IntoIterator<Item = i32>) {
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The live sandbox inits of one test, per tenant: processes running `/bin/sh
/// /opt/gateway/gw.sh` with `REEVE_TEST_ID=<test_id>` that are pid 1 of their pid namespace
/// (the script's own subshells share its command line but not that) and not zombies.
pub fn sandbox_inits(test_id: &str) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let id_var = format!("REEVE_TEST_ID={test_id}");
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read(e.path().join("cmdline")).ok().as_deref()
            != Some(b"/bin/sh\0/opt/gateway/gw.sh\0")
        {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        let vars: Vec<String> = env
            .split(|&b| b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if !vars.contains(&id_var) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let ns_init = status
            .lines()
            .find(|l| l.starts_with("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            == Some("1");
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        if !ns_init || zombie {
            continue;
        }
        if let Some(t) = vars.iter().find_map(|v| v.strip_prefix("REEVE_TENANT=")) {
            out.entry(t.to_string()).or_default().push(pid);
        }
    }
    out
}
