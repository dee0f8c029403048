//! Which control socket the control commands dial: the state_dir of an explicit --config,
//! then --state-dir, then the default; a config that does not load is an error (never a
//! silent fallback to /run/reeve), and "not running" says where the socket path came from.
//! Needs no root and no running reeved.

use std::process::Command;

const REEVED: &str = env!("CARGO_BIN_EXE_reeved");

fn status(args: &[&str]) -> (bool, String) {
    let out = Command::new(REEVED)
        .args(args)
        .arg("status")
        .env_remove("REEVED_CONFIG")
        .output()
        .expect("run reeved");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn control_commands_use_the_config_state_dir_and_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let config = d.join("reeved.toml");
    let state = d.join("state-from-config");
    std::fs::write(
        &config,
        format!(
            "data_root = \"{}\"\nstate_dir = \"{}\"\nlayer1_dir = \"{}\"\n\n[gateway]\n\
             command = [\"/bin/true\"]\ndir = \"{}\"\nrootfs = \"{}\"\n",
            d.join("data").display(),
            state.display(),
            d.join("l1").display(),
            d.join("gw").display(),
            d.join("rootfs").display()
        ),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8");
    let (ok, err) = status(&["--config", config]);
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("{}/reeved.sock", state.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "socket from state_dir {} of {config}",
            state.display()
        )),
        "{err}"
    );
    // --config wins over --state-dir.
    let (_, err) = status(&["--config", config, "--state-dir", "/nonexistent-sd"]);
    assert!(
        err.contains(&format!("{}/reeved.sock", state.display())),
        "{err}"
    );
    // --state-dir alone.
    let (_, err) = status(&["--state-dir", "/nonexistent-sd"]);
    assert!(
        err.contains("socket from --state-dir /nonexistent-sd"),
        "{err}"
    );
    // A config that does not load is the error, not a fallback to another socket.
    let broken = d.join("broken.toml");
    std::fs::write(&broken, "data_root = 3\n").expect("broken config");
    let (ok, err) = status(&["--config", broken.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(err.contains("broken.toml"), "{err}");
    assert!(
        !err.contains("reeved.sock"),
        "no fallback socket was dialled: {err}"
    );
}
