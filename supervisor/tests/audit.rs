//! `reeved audit NAME` end to end on the host (root only; no-limits mode, as the hybrid-cgroup
//! development hosts need): a running reeved with two tenants, the probe run in a copy of one
//! tenant's live sandbox, every check blocked (or skipped for lack of a context the audit does
//! not have), nothing left behind, the live gateway untouched.
//!
//! Build first: `cargo build -p reeve-runtime -p reeve-supervisor` (reeved finds reevec next to
//! itself); the probe is built here with `tests/probe/build.sh` (gcc).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::REEVED;

const GATEWAY: &str = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done\n";

/// Checks the audit gives no context for (no setuid or file-caps copy on the read-only root; no
/// host address or interface on some hosts): they must come back skipped, nothing else may.
const NO_CONTEXT: &[&str] = &[
    "--suid-bin",
    "--fcaps-bin",
    "--fcaps-wide-bin",
    "--host-addr",
    "--host-iface",
];

struct Reeved {
    child: Child,
    state: PathBuf,
}

impl Drop for Reeved {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_pid(config: &Path, name: &str) -> Option<i64> {
    common::tenants_of(&common::status(config)?)
        .get(name)
        .filter(|t| t.phase == "running")?
        .pid
}

#[test]
fn audit_of_a_live_tenant_finds_every_check_blocked() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: reeved audit needs root");
        return;
    }
    let reevec = Path::new(REEVED).with_file_name("reevec");
    assert!(
        reevec.is_file(),
        "{} is missing: cargo build -p reeve-runtime -p reeve-supervisor",
        reevec.display()
    );
    let common::Layout {
        tmp: _tmp,
        top,
        rootfs,
        gateway: gw,
        layer1: l1,
        data,
        state,
        config,
    } = common::layout("reeved-audit.", &["sh", "sleep"], GATEWAY);
    let probe = top.join("reeve-probe");
    let probe_arg = probe.to_str().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/probe/build.sh");
    match Command::new("sh").arg(&script).arg(&probe).output() {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!("SKIPPED: the probe cannot be built (gcc?): {other:?}");
            return;
        }
    }
    std::fs::write(l1.join("defaults.json"), "{}").unwrap();
    std::fs::write(
        &config,
        format!(
            "data_root = \"{}\"\nstate_dir = \"{}\"\nlayer1_dir = \"{}\"\nallow_no_limits = true\n\n\
             [gateway]\ncommand = [\"/bin/sh\", \"/opt/gateway/gw.sh\"]\ndir = \"{}\"\nrootfs = \"{}\"\n",
            data.display(),
            state.display(),
            l1.display(),
            gw.display(),
            rootfs.display()
        ),
    )
    .unwrap();
    for t in ["acme", "beta"] {
        let o = common::reeved(&config, &["tenant", "create", t]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let d = Reeved {
        child: common::run_cmd(Command::new(REEVED), &config, &top.join("reeved.log"))
            .spawn()
            .unwrap(),
        state: state.clone(),
    };
    let end = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        if let Some(p) = running_pid(&config, "acme") {
            if running_pid(&config, "beta").is_some() {
                break p;
            }
        }
        assert!(
            Instant::now() < end,
            "tenants never ran: {}",
            std::fs::read_to_string(top.join("reeved.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // A tenant that does not run has no bundle: a clear error, exit 2.
    let o = common::reeved(&config, &["audit", "gamma", "--probe", probe_arg]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no bundle"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let t = Instant::now();
    let o = common::reeved(&config, &["audit", "acme", "--json", "--probe", probe_arg]);
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "reeved audit acme:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_str(&stdout).unwrap();
    let verdicts = r["verdicts"].as_array().unwrap();
    eprintln!(
        "reeved audit acme: {} checks, {} blocked, {} skipped in {secs:.1}s",
        verdicts.len(),
        r["blocked"],
        r["skipped"]
    );
    assert!(verdicts.len() >= 60, "{stdout}");
    assert_eq!(r["escaped"], 0, "{stdout}");
    assert_eq!(r["error"], 0, "{stdout}");
    for v in verdicts {
        let verdict = v["verdict"].as_str().unwrap();
        let reason = v["reason"].as_str().unwrap();
        if verdict == "skipped" {
            assert!(
                NO_CONTEXT.iter().any(|f| reason.contains(f)),
                "skipped for a context the audit gives: {v}"
            );
        } else {
            assert_eq!(verdict, "blocked", "{v}");
        }
    }
    // The checks against the peer sandbox really ran against it.
    for name in [
        "proc.see_other_tenant",
        "ipc.sysv_shm_other_tenant",
        "ipc.abstract_other_tenant",
        "net.other_tenant_address",
    ] {
        let v = verdicts.iter().find(|v| v["check"] == name).expect(name);
        assert_eq!(v["verdict"], "blocked", "{v}");
    }
    // Only the checks named in NO_CONTEXT may lack their target.
    assert!(r["blocked"].as_u64().unwrap() >= 100, "{stdout}");
    // The table form says the same.
    let o = common::reeved(&config, &["audit", "beta", "--probe", probe_arg]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{table}");
    assert!(table.contains("nothing escaped"), "{table}");
    eprintln!("{table}");

    // Nothing left: no probe copy in the data dirs, no audit state, the gateway unchanged.
    for t in ["acme", "beta"] {
        let left: Vec<String> = std::fs::read_dir(data.join(t))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".reeve-audit") || n.starts_with("reeve-probe"))
            .collect();
        assert!(left.is_empty(), "left in {t}'s data: {left:?}");
    }
    let audit_dir = d.state.join("audit");
    let left: Vec<_> = std::fs::read_dir(&audit_dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "audit state left: {left:?}");
    assert_eq!(running_pid(&config, "acme"), Some(pid), "the live gateway");
}
