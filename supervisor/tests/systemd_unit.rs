//! reeved.service passes `systemd-analyze verify` (with ExecStart pointing at the built binary,
//! since /usr/bin/reeved is not installed here) and says what reeved relies on.

use std::process::Command;

const UNIT: &str = include_str!("../reeved.service");

#[test]
fn unit_has_what_reeved_relies_on() {
    for line in [
        "Type=notify",
        "Delegate=yes",
        "KillMode=process",
        "Restart=always",
        "WatchdogSec=30s",
        "RuntimeDirectory=reeve",
        "RuntimeDirectoryPreserve=yes",
        "ExecStart=/usr/bin/reeved --config /etc/reeve/reeved.toml run",
    ] {
        assert!(UNIT.lines().any(|l| l == line), "missing {line}");
    }
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let Ok(which) = Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
    else {
        return;
    };
    if !which.status.success() {
        eprintln!("SKIPPED: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = UNIT.replace("/usr/bin/reeved", env!("CARGO_BIN_EXE_reeved"));
    let path = dir.path().join("reeved.service");
    std::fs::write(&path, unit).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // Only complaints about this unit count (the host's own units may have their own).
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("reeved")).collect();
    assert!(
        o.status.success() && ours.is_empty(),
        "verify failed: {err}"
    );
}
