//! The systemd cgroup driver (`--systemd-cgroup`): what Docker and the kubelet use on systemd
//! hosts. The container's cgroup is a transient scope unit that systemd creates and owns, so
//! systemd never fights the runtime over it: `cgroupsPath` is `slice:prefix:name`, the unit is
//! `prefix-name.scope` in `slice` (default `system.slice`), started over D-Bus with the
//! container's init in it, the resources both as unit properties (so a `daemon-reload` keeps
//! them) and in the scope's files, and stopped on delete.
//!
//! The plan ([`ScopePlan`]: names, the cgroup path systemd will use, the unit properties) is plain
//! data; [`start`] and [`stop`] talk to systemd through zbus. D-Bus is only used after the init
//! was cloned: zbus runs threads, and a fork from a multithreaded process is unsafe.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::plan::CgroupPlan;

/// Errors of the systemd driver, naming the unit and the D-Bus call.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error(
        "cgroupsPath {path:?}: the systemd cgroup driver takes slice:prefix:name \
         (e.g. system.slice:docker:<id>): {reason}"
    )]
    Path { path: String, reason: &'static str },
    #[error("systemd D-Bus (system bus): {0}")]
    Connect(Box<zbus::Error>),
    #[error("systemd D-Bus {call} {unit}: {source}")]
    Call {
        call: &'static str,
        unit: String,
        source: Box<zbus::Error>,
    },
    #[error(
        "systemd started {unit} but pid {pid} is not in {expected} after {secs}s (it is in {seen:?})"
    )]
    NotMoved {
        unit: String,
        pid: i32,
        expected: String,
        seen: String,
        secs: u64,
    },
}

/// One property of a transient unit, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop {
    Str(String),
    Bool(bool),
    U64(u64),
    Pids(Vec<u32>),
}

/// Everything the driver will ask of systemd for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopePlan {
    pub slice: String,
    pub unit: String,
    /// The unit's cgroup, relative to the cgroup2 root (`system.slice/docker-<id>.scope`).
    pub cgroup: PathBuf,
    /// Unit properties besides `PIDs` (added at start): accounting, delegation, limits.
    pub properties: Vec<(String, Prop)>,
}

/// `cgroupsPath` for the systemd driver: `slice:prefix:name`; empty means
/// `system.slice:reevec:<id>`.
pub fn plan(
    cgroups_path: &str,
    id: &str,
    resources: &CgroupPlan,
) -> Result<ScopePlan, SystemdError> {
    let bad = |reason| SystemdError::Path {
        path: cgroups_path.to_string(),
        reason,
    };
    let (slice, prefix, name) = if cgroups_path.is_empty() {
        ("system.slice", "reevec", id)
    } else {
        let parts: Vec<&str> = cgroups_path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(bad("it must have exactly three ':'-separated parts"));
        };
        (
            if slice.is_empty() {
                "system.slice"
            } else {
                slice
            },
            prefix,
            name,
        )
    };
    let unit_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    };
    if !slice.ends_with(".slice") || !unit_ok(slice) {
        return Err(bad("the slice must be a unit name ending in .slice"));
    }
    if name.is_empty() || !unit_ok(name) || (!prefix.is_empty() && !unit_ok(prefix)) {
        return Err(bad("prefix and name may hold only [A-Za-z0-9:_.\\@-]"));
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let cgroup = slice_path(slice)
        .ok_or_else(|| bad("malformed slice name"))?
        .join(&unit);
    let mut properties = vec![
        (
            "Description".to_string(),
            Prop::Str(format!("reevec container {id}")),
        ),
        ("Slice".to_string(), Prop::Str(slice.to_string())),
        ("Delegate".to_string(), Prop::Bool(true)),
        ("DefaultDependencies".to_string(), Prop::Bool(false)),
        ("MemoryAccounting".to_string(), Prop::Bool(true)),
        ("CPUAccounting".to_string(), Prop::Bool(true)),
        ("TasksAccounting".to_string(), Prop::Bool(true)),
        ("IOAccounting".to_string(), Prop::Bool(true)),
    ];
    properties.extend(limit_properties(resources));
    Ok(ScopePlan {
        slice: slice.to_string(),
        unit,
        cgroup,
        properties,
    })
}

/// systemd's slice nesting: `a-b-c.slice` lives at `a.slice/a-b.slice/a-b-c.slice`, and
/// `-.slice` is the root.
pub fn slice_path(slice: &str) -> Option<PathBuf> {
    let base = slice.strip_suffix(".slice")?;
    if base == "-" {
        return Some(PathBuf::new());
    }
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return None;
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Some(path)
}

/// The limits of the cgroup plan as the unit properties systemd would write the same files
/// from, so that systemd re-applying its properties (daemon-reload) keeps them.
pub fn limit_properties(plan: &CgroupPlan) -> Vec<(String, Prop)> {
    let bytes = |v: &str| {
        if v == "max" {
            Some(u64::MAX)
        } else {
            v.parse::<u64>().ok()
        }
    };
    let mut out = Vec::new();
    for w in &plan.writes {
        let prop = match w.file.as_str() {
            "memory.max" => bytes(&w.value).map(|v| ("MemoryMax", v)),
            "memory.high" => bytes(&w.value).map(|v| ("MemoryHigh", v)),
            "memory.low" => bytes(&w.value).map(|v| ("MemoryLow", v)),
            "memory.swap.max" => bytes(&w.value).map(|v| ("MemorySwapMax", v)),
            "pids.max" => bytes(&w.value).map(|v| ("TasksMax", v)),
            "cpu.weight" => w.value.parse().ok().map(|v| ("CPUWeight", v)),
            "io.weight" => w
                .value
                .strip_prefix("default ")
                .unwrap_or(&w.value)
                .parse()
                .ok()
                .map(|v| ("IOWeight", v)),
            "cpu.max" => {
                let mut it = w.value.split_whitespace();
                match (it.next(), it.next().and_then(|p| p.parse::<u64>().ok())) {
                    (Some("max"), _) => Some(("CPUQuotaPerSecUSec", u64::MAX)),
                    (Some(q), Some(period)) if period > 0 => q
                        .parse::<u64>()
                        .ok()
                        .map(|q| ("CPUQuotaPerSecUSec", q.saturating_mul(1_000_000) / period)),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((name, v)) = prop {
            out.retain(|(n, _): &(String, Prop)| n != name);
            out.push((name.to_string(), Prop::U64(v)));
        }
    }
    out
}

/// Call `method` of systemd's manager on a new system-bus connection; errors name the call and
/// `unit`.
fn call<B, R>(unit: &str, method: &'static str, body: &B) -> Result<R, SystemdError>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    let conn =
        zbus::blocking::Connection::system().map_err(|e| SystemdError::Connect(Box::new(e)))?;
    let err = |source| SystemdError::Call {
        call: method,
        unit: unit.to_string(),
        source: Box::new(source),
    };
    let proxy = zbus::blocking::Proxy::new(
        &conn,
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
    )
    .map_err(err)?;
    proxy.call(method, body).map_err(err)
}

fn value(p: &Prop) -> zbus::zvariant::Value<'_> {
    use zbus::zvariant::Value;
    match p {
        Prop::Str(s) => Value::from(s.as_str()),
        Prop::Bool(b) => Value::from(*b),
        Prop::U64(v) => Value::from(*v),
        Prop::Pids(v) => Value::from(v.clone()),
    }
}

/// Start the scope with `pid` in it and wait until the kernel shows `pid` in its cgroup.
/// Returns the scope's cgroup directory under `root`.
pub fn start(scope: &ScopePlan, pid: i32, root: &Path) -> Result<PathBuf, SystemdError> {
    let mut props = scope.properties.clone();
    props.push(("PIDs".to_string(), Prop::Pids(vec![pid as u32])));
    let props: Vec<(&str, zbus::zvariant::Value<'_>)> =
        props.iter().map(|(n, p)| (n.as_str(), value(p))).collect();
    let aux: Vec<(&str, Vec<(&str, zbus::zvariant::Value<'_>)>)> = Vec::new();
    let _job: zbus::zvariant::OwnedObjectPath = call(
        &scope.unit,
        "StartTransientUnit",
        &(scope.unit.as_str(), "replace", props, aux),
    )?;
    // The job moves the pid; the unit is ours once the kernel says the pid is in its cgroup.
    let expected = format!("0::/{}", scope.cgroup.display());
    const SECS: u64 = 10;
    let deadline = Instant::now() + Duration::from_secs(SECS);
    loop {
        let seen = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if seen.lines().any(|l| l == expected) {
            return Ok(root.join(&scope.cgroup));
        }
        if Instant::now() > deadline {
            return Err(SystemdError::NotMoved {
                unit: scope.unit.clone(),
                pid,
                expected,
                seen: seen.trim().to_string(),
                secs: SECS,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Stop the scope (its processes are gone by then); a unit systemd already forgot is fine.
pub fn stop(unit: &str) -> Result<(), SystemdError> {
    match call::<_, zbus::zvariant::OwnedObjectPath>(unit, "StopUnit", &(unit, "replace")) {
        Ok(_) => Ok(()),
        Err(SystemdError::Call { source, .. })
            if matches!(&*source, zbus::Error::MethodError(name, _, _)
                if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit") =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Set the limits of `plan` as properties of a running scope (runtime only, like runc).
pub fn set_limits(unit: &str, plan: &CgroupPlan) -> Result<(), SystemdError> {
    let props = limit_properties(plan);
    if props.is_empty() {
        return Ok(());
    }
    let props: Vec<(&str, zbus::zvariant::Value<'_>)> =
        props.iter().map(|(n, p)| (n.as_str(), value(p))).collect();
    call(unit, "SetUnitProperties", &(unit, true, props))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::plan::CgroupWrite;

    fn w(file: &str, value: &str) -> CgroupWrite {
        CgroupWrite {
            file: file.into(),
            value: value.into(),
        }
    }

    #[test]
    fn cgroups_path_names_the_unit_and_its_cgroup() {
        let p = plan("system.slice:docker:abc", "abc", &CgroupPlan::default()).expect("plan");
        assert_eq!(p.unit, "docker-abc.scope");
        assert_eq!(p.cgroup, PathBuf::from("system.slice/docker-abc.scope"));
        let p = plan(
            "kubepods-besteffort-pod12.slice:cri-containerd:c1",
            "c1",
            &CgroupPlan::default(),
        )
        .expect("kubelet's shape");
        assert_eq!(
            p.cgroup,
            PathBuf::from(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-c1.scope"
            )
        );
        let p = plan("", "x1", &CgroupPlan::default()).expect("default");
        assert_eq!(p.cgroup, PathBuf::from("system.slice/reevec-x1.scope"));
        let p = plan(":p:n", "n", &CgroupPlan::default()).expect("empty slice");
        assert_eq!(p.slice, "system.slice");
        assert_eq!(slice_path("-.slice"), Some(PathBuf::new()));
    }

    #[test]
    fn malformed_paths_are_refused_with_the_rule() {
        for bad in [
            "/docker/abc",
            "a:b",
            "system.slice:p:n/x",
            "system:p:n",
            "a--b.slice:p:n",
            "x.slice:p:",
        ] {
            let e = plan(bad, "id", &CgroupPlan::default())
                .expect_err(bad)
                .to_string();
            assert!(e.contains("slice:prefix:name"), "{bad}: {e}");
        }
    }

    #[test]
    fn limits_become_the_properties_systemd_writes_the_same_files_from() {
        let cg = CgroupPlan {
            writes: vec![
                w("memory.max", "67108864"),
                w("memory.swap.max", "max"),
                w("pids.max", "42"),
                w("cpu.max", "50000 100000"),
                w("cpu.weight", "39"),
                w("memory.oom.group", "1"),
            ],
            ..Default::default()
        };
        let props = limit_properties(&cg);
        let get = |n: &str| props.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Prop::U64(67108864)));
        assert_eq!(get("MemorySwapMax"), Some(Prop::U64(u64::MAX)));
        assert_eq!(get("TasksMax"), Some(Prop::U64(42)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Prop::U64(500_000)));
        assert_eq!(get("CPUWeight"), Some(Prop::U64(39)));
        assert_eq!(
            props.len(),
            5,
            "memory.oom.group has no property: {props:?}"
        );
        let p = plan("system.slice:t:c", "c", &cg).expect("plan");
        assert!(p
            .properties
            .contains(&("Delegate".into(), Prop::Bool(true))));
        assert!(p.properties.contains(&("TasksMax".into(), Prop::U64(42))));
    }
}
