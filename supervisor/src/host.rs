//! What reeved needs from the host kernel besides the runtime: whether cgroup v2 limits can be
//! enforced (and where the tenants' cgroups go), per-sandbox cgroup statistics, pidfds to watch
//! gateways, and the child-subreaper flag.
//!
//! Detection only reads `/proc/self/mountinfo`, `/proc/self/cgroup` and `cgroup.controllers`;
//! it never looks at `/sys/fs/cgroup` blindly (hybrid hosts mount v1 there).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Controllers a tenant's limits need.
pub const NEEDED_CONTROLLERS: &[&str] = &["memory", "pids", "cpu"];

/// Errors of host set-up.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prctl(PR_SET_CHILD_SUBREAPER): {0}")]
    Subreaper(nix::errno::Errno),
}

/// The mount point of the cgroup2 filesystem in a mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let fstype = post.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        pre.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// The cgroup2 path of a process from its `/proc/<pid>/cgroup` text (the `0::` line).
pub fn unified_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
}

/// Which of `needed` are not in a `cgroup.controllers` text.
pub fn missing_controllers(controllers: &str, needed: &[&str]) -> Vec<String> {
    let have: Vec<&str> = controllers.split_whitespace().collect();
    needed
        .iter()
        .filter(|c| !have.contains(c))
        .map(|c| c.to_string())
        .collect()
}

/// Whether limits can be enforced here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitsMode {
    /// cgroup v2 with the needed controllers at `dir` (our own cgroup, absolute on disk);
    /// `own` is that cgroup's path below the cgroup2 root.
    Enforced { mount: PathBuf, own: String },
    /// Limits cannot be enforced, for this reason.
    Unavailable(String),
}

/// The systemd service a `/proc/<pid>/cgroup` text puts the process in: the last `*.service`
/// component of its cgroup2 path (`/system.slice/reeved.service/supervisor` -> `reeved.service`).
pub fn service_of(proc_cgroup: &str) -> Option<String> {
    let path = unified_path(proc_cgroup)?;
    path.rsplit('/')
        .find(|c| c.len() > ".service".len() && c.ends_with(".service"))
        .map(str::to_string)
}

/// reeved's own systemd service, when it runs as one: systemd is the init (`/run/systemd/system`
/// exists) and `/proc/self/cgroup` names a `*.service`.
pub fn own_service() -> Option<String> {
    if !Path::new("/run/systemd/system").is_dir() {
        return None;
    }
    service_of(&std::fs::read_to_string("/proc/self/cgroup").ok()?)
}

/// The slice of the tenants' scopes with the systemd driver. systemd makes a slice that has no
/// unit file when the first unit asks for it (proven in the systemd VM test).
pub const TENANT_SLICE: &str = "reeve.slice";
/// The tenants' scopes are `<prefix>-<tenant>.scope`.
pub const SCOPE_PREFIX: &str = "reeve";

/// Where each tenant's cgroup is, when limits are enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantCgroups {
    /// cgroupfs driver: `<parent>/<tenant>` below the cgroup2 root, in reeved's delegated cgroup.
    Delegated { parent: String },
    /// systemd driver: the runtime asks systemd for the transient scope
    /// `<SCOPE_PREFIX>-<tenant>.scope` in `slice`.
    Systemd { slice: String },
}

impl TenantCgroups {
    /// The bundle's `linux.cgroupsPath` for `tenant`.
    pub fn cgroups_path(&self, tenant: &str) -> String {
        match self {
            TenantCgroups::Delegated { parent } => format!("{parent}/{tenant}"),
            TenantCgroups::Systemd { slice } => format!("{slice}:{SCOPE_PREFIX}:{tenant}"),
        }
    }

    /// The cgroup of `tenant`, below the cgroup2 root (`/reeve.slice/reeve-acme.scope`).
    pub fn cgroup_of(&self, tenant: &str) -> String {
        match self {
            TenantCgroups::Delegated { parent } => format!("{parent}/{tenant}"),
            TenantCgroups::Systemd { slice } => {
                let mut p = String::new();
                let base = slice.strip_suffix(".slice").unwrap_or(slice);
                if base != "-" {
                    let mut prefix = String::new();
                    for part in base.split('-') {
                        if !prefix.is_empty() {
                            prefix.push('-');
                        }
                        prefix.push_str(part);
                        p.push_str(&format!("/{prefix}.slice"));
                    }
                }
                format!("{p}/{SCOPE_PREFIX}-{tenant}.scope")
            }
        }
    }

    /// Whether the tenants' cgroups are outside reeved's own unit cgroup (systemd can restart
    /// reeved while the gateways run).
    pub fn outside_own_cgroup(&self) -> bool {
        matches!(self, TenantCgroups::Systemd { .. })
    }
}

/// Look at this process's cgroup (the cgroupfs driver: the tenants' cgroups go below ours).
pub fn detect_limits() -> LimitsMode {
    detect_limits_for(false)
}

/// Look at the cgroup the tenants' cgroups go below: ours with the cgroupfs driver, the cgroup2
/// root (where systemd makes the slices) with the systemd driver.
pub fn detect_limits_for(systemd: bool) -> LimitsMode {
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return LimitsMode::Unavailable("cannot read /proc/self/mountinfo".into());
    };
    let Some(mount) = cgroup2_mount(&mi) else {
        return LimitsMode::Unavailable("no cgroup2 filesystem is mounted".into());
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| unified_path(&t))
        .unwrap_or_else(|| "/".to_string());
    // A restarted reeved may find itself in its own leaf: the delegated cgroup is its parent.
    let own = match own.strip_suffix("/supervisor") {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => own,
    };
    let dir = if systemd {
        mount.clone()
    } else {
        mount.join(own.trim_start_matches('/'))
    };
    let controllers = match std::fs::read_to_string(dir.join("cgroup.controllers")) {
        Ok(c) => c,
        Err(e) => {
            return LimitsMode::Unavailable(format!(
                "read {}/cgroup.controllers: {e}",
                dir.display()
            ))
        }
    };
    let missing = missing_controllers(&controllers, NEEDED_CONTROLLERS);
    if !missing.is_empty() {
        return LimitsMode::Unavailable(format!(
            "cgroup v2 at {} lacks the controllers {} (hybrid or undelegated host)",
            dir.display(),
            missing.join(", ")
        ));
    }
    LimitsMode::Enforced { mount, own }
}

/// The writes that delegate our cgroup: reeved moves into `<own>/supervisor` (cgroup v2 allows
/// no processes in a cgroup that hands controllers down), controllers are enabled for
/// `<own>` and `<own>/tenants`, and tenants get `<own>/tenants/<name>`. Returns (path, content)
/// pairs in order; directories to make are those of the `cgroup.procs`/`subtree_control` files.
pub fn delegation_plan(mount: &Path, own: &str, pid: u32) -> Vec<(PathBuf, String)> {
    let base = mount.join(own.trim_start_matches('/'));
    let enable = NEEDED_CONTROLLERS
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        (base.join("supervisor/cgroup.procs"), pid.to_string()),
        (base.join("cgroup.subtree_control"), enable.clone()),
        (base.join("tenants/cgroup.subtree_control"), enable),
    ]
}

/// Apply [`delegation_plan`]; returns the parent cgroup path of tenants (below the root).
pub fn delegate(mount: &Path, own: &str) -> Result<String, HostError> {
    for (file, content) in delegation_plan(mount, own, std::process::id()) {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|source| HostError::Io {
                op: "mkdir",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&file, &content).map_err(|source| HostError::Io {
            op: "write",
            path: file.clone(),
            source,
        })?;
    }
    Ok(format!("{}/tenants", own.trim_end_matches('/')))
}

/// Memory and CPU use of a sandbox, from its cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupStats {
    pub memory_bytes: Option<u64>,
    pub cpu_usec: Option<u64>,
}

/// `usage_usec` of a `cpu.stat` text.
pub fn cpu_usage(cpu_stat: &str) -> Option<u64> {
    cpu_stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())
}

/// The statistics of the cgroup `pid` lives in, when it has memory/cpu accounting.
pub fn stats_of(pid: i32) -> CgroupStats {
    let Some(mount) = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|t| cgroup2_mount(&t))
    else {
        return CgroupStats::default();
    };
    let Some(path) = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()
        .and_then(|t| unified_path(&t))
    else {
        return CgroupStats::default();
    };
    let dir = mount.join(path.trim_start_matches('/'));
    CgroupStats {
        memory_bytes: std::fs::read_to_string(dir.join("memory.current"))
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        cpu_usec: std::fs::read_to_string(dir.join("cpu.stat"))
            .ok()
            .and_then(|s| cpu_usage(&s)),
    }
}

/// Make orphaned sandbox inits (their `create` process exits) our children, so that we reap
/// them instead of leaving zombies to a PID 1 that may not.
pub fn become_subreaper() -> Result<(), HostError> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r < 0 {
        return Err(HostError::Subreaper(nix::errno::Errno::last()));
    }
    Ok(())
}

/// A pidfd for `pid`.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    let p = rustix::process::Pid::from_raw(pid).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("pid {pid}"))
    })?;
    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).map_err(Into::into)
}

/// Reap the process of `fd` if it is our child and has exited; describes how it ended.
/// None when it is not our child (or not yet exited).
pub fn try_reap(fd: &OwnedFd) -> Option<String> {
    // SAFETY: an all-zero siginfo_t is a valid value to be filled by waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with a valid pidfd and a valid siginfo pointer.
    let r = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            fd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    if r < 0 {
        return None;
    }
    // SAFETY: after a successful waitid with WEXITED the pid and status fields are set.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return None;
    }
    Some(match info.si_code {
        libc::CLD_EXITED => format!("exited with status {status}"),
        libc::CLD_KILLED | libc::CLD_DUMPED => format!("killed by signal {status}"),
        other => format!("ended (code {other}, status {status})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
";

    #[test]
    fn finds_cgroup2_on_hybrid_and_pure_hosts() {
        assert_eq!(cgroup2_mount(HYBRID), Some("/sys/fs/cgroup/unified".into()));
        let pure = "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(pure), Some("/sys/fs/cgroup".into()));
        assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn parses_proc_cgroup_and_controllers() {
        assert_eq!(
            unified_path("12:memory:/x\n0::/system.slice/reeved.service\n"),
            Some("/system.slice/reeved.service".into())
        );
        assert_eq!(unified_path("12:memory:/x\n"), None);
        assert_eq!(
            missing_controllers("hugetlb", NEEDED_CONTROLLERS),
            vec!["memory", "pids", "cpu"]
        );
        assert!(
            missing_controllers("cpuset cpu io memory hugetlb pids", NEEDED_CONTROLLERS).is_empty()
        );
        assert_eq!(cpu_usage("usage_usec 1234\nuser_usec 1000\n"), Some(1234));
    }

    #[test]
    fn finds_our_service_and_the_scope_paths() {
        assert_eq!(
            service_of("0::/system.slice/reeved.service\n"),
            Some("reeved.service".into())
        );
        assert_eq!(
            service_of("1:name=systemd:/x\n0::/system.slice/reeved.service/supervisor\n"),
            Some("reeved.service".into())
        );
        assert_eq!(service_of("0::/user.slice/session-3.scope\n"), None);
        assert_eq!(service_of("0::/\n"), None);
        assert_eq!(service_of("0::/.service\n"), None);
        let sd = TenantCgroups::Systemd {
            slice: TENANT_SLICE.into(),
        };
        assert_eq!(sd.cgroups_path("acme"), "reeve.slice:reeve:acme");
        assert_eq!(sd.cgroup_of("acme"), "/reeve.slice/reeve-acme.scope");
        assert!(sd.outside_own_cgroup());
        let nested = TenantCgroups::Systemd {
            slice: "a-b.slice".into(),
        };
        assert_eq!(nested.cgroup_of("x"), "/a.slice/a-b.slice/reeve-x.scope");
        let fs = TenantCgroups::Delegated {
            parent: "/system.slice/reeved.service/tenants".into(),
        };
        assert_eq!(
            fs.cgroups_path("acme"),
            "/system.slice/reeved.service/tenants/acme"
        );
        assert_eq!(fs.cgroup_of("acme"), fs.cgroups_path("acme"));
        assert!(!fs.outside_own_cgroup());
    }

    #[test]
    fn delegation_writes_in_order() {
        let p = delegation_plan(
            Path::new("/sys/fs/cgroup"),
            "/system.slice/reeved.service",
            42,
        );
        assert_eq!(
            p,
            vec![
                (
                    "/sys/fs/cgroup/system.slice/reeved.service/supervisor/cgroup.procs".into(),
                    "42".into()
                ),
                (
                    "/sys/fs/cgroup/system.slice/reeved.service/cgroup.subtree_control".into(),
                    "+memory +pids +cpu".into()
                ),
                (
                    "/sys/fs/cgroup/system.slice/reeved.service/tenants/cgroup.subtree_control"
                        .into(),
                    "+memory +pids +cpu".into()
                ),
            ]
        );
    }

    #[test]
    fn this_host_is_detected_without_side_effects() {
        // Whatever the host, detection answers; on the hybrid development machines it must say
        // limits are unavailable.
        for systemd in [false, true] {
            match detect_limits_for(systemd) {
                LimitsMode::Enforced { mount, .. } => assert!(mount.is_absolute()),
                LimitsMode::Unavailable(why) => assert!(!why.is_empty()),
            }
            if std::fs::read_to_string("/proc/self/mountinfo")
                .map(|t| cgroup2_mount(&t) == Some("/sys/fs/cgroup/unified".into()))
                .unwrap_or(false)
            {
                assert!(matches!(
                    detect_limits_for(systemd),
                    LimitsMode::Unavailable(_)
                ));
            }
        }
    }

    #[test]
    fn pidfd_reaps_our_child() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        let fd = pidfd_open(child.id() as i32).unwrap();
        let mut got = None;
        for _ in 0..500 {
            got = try_reap(&fd);
            if got.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got.as_deref(), Some("exited with status 7"));
        assert!(try_reap(&fd).is_none(), "reaped once");
        // std's own wait now finds nothing to reap.
        assert!(child.wait().is_err());
    }
}
