//! `reevec spec [--bundle DIR] [--rootless]`: write a default config.json, with reeve's default
//! seccomp profile, for a rootfs at `<bundle>/rootfs`.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{Cli, CliError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write config.json.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a non-root caller: a user namespace mapping the caller's ids to root.
    #[arg(long)]
    pub rootless: bool,
}

/// The default spec: every namespace but user (and network unless told otherwise), runc's
/// masked and read-only paths, three capabilities, no_new_privs and the default seccomp profile.
pub fn default_spec(rootless: bool) -> Result<Value, CliError> {
    let seccomp: Value = serde_json::from_str(crate::seccomp::DEFAULT_PROFILE)
        .map_err(|e| CliError::Stdout(e.into()))?;
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "reevec",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            "seccomp": seccomp
        }
    });
    if rootless {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        namespaces.push(json!({"type": "user"}));
        spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // A rootless caller can neither mount sysfs for a netns it does not own nor cgroupfs.
        spec["linux"]["resources"] = Value::Null;
    }
    spec["linux"]["namespaces"] = Value::Array(namespaces);
    Ok(spec)
}

pub fn run(_cli: &Cli, args: &Args) -> Result<i32, CliError> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        return Err(CliError::Io {
            op: "write",
            path,
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "file exists"),
        });
    }
    let spec = default_spec(args.rootless)?;
    let text = serde_json::to_string_pretty(&spec).map_err(|e| CliError::Stdout(e.into()))?;
    std::fs::write(&path, text + "\n").map_err(|source| CliError::Io {
        op: "write",
        path,
        source,
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_as_oci_and_builds_a_plan() {
        let v = default_spec(false).expect("spec");
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).expect("oci spec");
        let plan = crate::container::plan::SandboxPlan::build(
            "t",
            std::path::Path::new("/bundle"),
            &spec,
            false,
        )
        .expect("plan");
        assert!(plan.process.caps.inheritable.is_empty());
        assert!(plan.process.no_new_privileges);
        assert!(plan.seccomp.is_some());
        assert!(
            plan.resources.is_none(),
            "deny-all devices alone needs no cgroup"
        );
    }

    #[test]
    fn rootless_spec_maps_the_caller() {
        let v = default_spec(true).expect("spec");
        assert_eq!(v["linux"]["uidMappings"][0]["size"], 1);
        assert!(v["linux"]["namespaces"]
            .as_array()
            .expect("array")
            .iter()
            .any(|n| n["type"] == "user"));
    }
}
