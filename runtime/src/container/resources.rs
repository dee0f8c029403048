//! The verbs that act on a running container's cgroup: `pause`/`resume` (cgroup.freeze),
//! `update` (new `linux.resources`), `events` (statistics and OOM kills).
//!
//! They all work on the cgroup directory recorded in the container's state at create time
//! ([`State::cgroup`]), through [`cgroups::Manager`]. A container created without a cgroup
//! (`--cgroup-manager=disabled`, or a hybrid host where it asked for no limits) gets
//! [`ResourcesError::NoCgroup`], which says why.
//!
//! What `update` writes is planned without I/O by [`update_plan`]: the cgroup v2 conversion of
//! [`cgroups::plan`], adjusted for an update the way runc behaves:
//! - `devices` are not changed by an update (runc's `update` ignores them); a device list in the
//!   new resources is dropped and reported in [`CgroupPlan::ignored`], so an update can never
//!   replace the device filter with one lacking runc's default devices;
//! - a quota without a period keeps the cgroup's current period (`cpu.max` gets only the quota);
//!   a period without a quota keeps the current quota (read from `cpu.max` before planning).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::Serialize;

use crate::cgroups::{self, CgroupError, CgroupPlan, Manager, Stats};
use crate::process;
use crate::state::{self, Root, State, Status};

/// Errors of pause, resume, update and events.
#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(
        "container {0} has no cgroup (created with --cgroup-manager=disabled or on a host \
         without cgroup v2)"
    )]
    NoCgroup(String),
    #[error("cannot {op} container {id}: it is {status}")]
    WrongStatus {
        op: &'static str,
        id: String,
        status: Status,
    },
    #[error("{op} container {id}: {source}")]
    Cgroup {
        op: &'static str,
        id: String,
        #[source]
        source: CgroupError,
    },
    #[error("update container {id}: {source}")]
    Systemd {
        id: String,
        #[source]
        source: crate::cgroups::systemd::SystemdError,
    },
    #[error("{op} container {id}: poll {what}: {source}")]
    Poll {
        op: &'static str,
        id: String,
        what: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("events of container {id}: write: {source}")]
    Emit {
        id: String,
        #[source]
        source: io::Error,
    },
}

/// A line of `reevec events` output, in runc's shape: `{"type":"stats","id":..,"data":{..}}` or
/// `{"type":"oom","id":..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// The kinds of [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Periodic statistics.
    Stats,
    /// The kernel OOM-killed a process of the container (`memory.events` `oom_kill` grew).
    Oom,
}

fn cgroup_err<'a>(
    op: &'static str,
    id: &'a str,
) -> impl FnOnce(CgroupError) -> ResourcesError + 'a {
    move |source| ResourcesError::Cgroup {
        op,
        id: id.to_string(),
        source,
    }
}

fn cgroup_of(st: &State) -> Result<&Path, ResourcesError> {
    st.cgroup
        .as_deref()
        .ok_or_else(|| ResourcesError::NoCgroup(st.id.clone()))
}

fn require(op: &'static str, st: &State, allowed: &[Status]) -> Result<(), ResourcesError> {
    if allowed.contains(&st.status) {
        Ok(())
    } else {
        Err(ResourcesError::WrongStatus {
            op,
            id: st.id.clone(),
            status: st.status,
        })
    }
}

/// Freeze every process of container `id` (created or running, as runc allows) and wait until
/// the kernel reports the cgroup frozen; `state` then shows `paused`.
pub fn pause(root: &Root, id: &str) -> Result<(), ResourcesError> {
    let _lock = root.lock(id)?;
    let st = root.load(id)?;
    let dir = cgroup_of(&st)?;
    require("pause", &st, &[Status::Running, Status::Created])?;
    Manager::at(dir)
        .freeze(true)
        .map_err(cgroup_err("pause", id))
}

/// Thaw a paused container and wait until the kernel reports it thawed.
pub fn resume(root: &Root, id: &str) -> Result<(), ResourcesError> {
    let _lock = root.lock(id)?;
    let st = root.load(id)?;
    let dir = cgroup_of(&st)?;
    require("resume", &st, &[Status::Paused])?;
    Manager::at(dir)
        .freeze(false)
        .map_err(cgroup_err("resume", id))
}

/// The writes `update` makes for `resources` (no I/O). `current_cpu_max` is the cgroup's
/// `cpu.max` content, needed only when `resources` sets a cpu period without a quota.
pub fn update_plan(
    resources: &LinuxResources,
    current_cpu_max: Option<&str>,
) -> Result<CgroupPlan, CgroupError> {
    let mut r = resources.clone();
    let had_devices = r.devices().is_some();
    r.set_devices(None);
    let mut plan = cgroups::plan(&r)?;
    if had_devices {
        plan.ignored.push(
            "devices (update does not change the device filter, as in runc; recreate the \
             container to change it)"
                .to_string(),
        );
    }
    let (quota, period) = r
        .cpu()
        .as_ref()
        .map(|c| (c.quota().unwrap_or(0), c.period().unwrap_or(0)))
        .unwrap_or((0, 0));
    let value = match (quota, period) {
        (0, 0) => None,
        // "QUOTA" alone: the kernel keeps the current period
        (q, 0) => Some(if q > 0 { q.to_string() } else { "max".into() }),
        // the period alone: keep the current quota
        (0, p) => {
            let current = current_cpu_max
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("max");
            Some(format!("{current} {p}"))
        }
        _ => None, // both given: cgroups::plan's "QUOTA PERIOD" stands
    };
    if let Some(v) = value {
        for w in plan.writes.iter_mut().filter(|w| w.file == "cpu.max") {
            w.value = v.clone();
        }
    }
    Ok(plan)
}

/// Whether `p` is on a cgroup2 filesystem.
fn on_cgroup2(p: &Path) -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs(p).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// A Manager for the cgroup at `dir` whose root is the cgroup2 mount holding it, so that an
/// update needing a controller the container's parent does not yet delegate (e.g. cpuset, when
/// the container was created without cpus) enables it from the root down, as at create.
fn manager_for(dir: &Path) -> Manager {
    let mut top = dir;
    while let Some(parent) = top.parent() {
        if parent.as_os_str().is_empty() || !on_cgroup2(parent) {
            break;
        }
        top = parent;
    }
    match dir.strip_prefix(top).ok().and_then(|rel| rel.to_str()) {
        Some(rel) if !rel.is_empty() && top != dir => {
            Manager::new(Some(top), &format!("/{rel}"), "", "unused")
                .unwrap_or_else(|_| Manager::at(dir))
        }
        _ => Manager::at(dir),
    }
}

/// Apply new resource limits to container `id` (as `runc update` does). Returns the settings
/// that have no cgroup v2 equivalent or that an update does not change (also logged).
pub fn update(
    root: &Root,
    id: &str,
    resources: &LinuxResources,
) -> Result<Vec<String>, ResourcesError> {
    let _lock = root.lock(id)?;
    let st = root.load(id)?;
    let dir = cgroup_of(&st)?;
    require(
        "update",
        &st,
        &[Status::Created, Status::Running, Status::Paused],
    )?;
    let current = std::fs::read_to_string(dir.join("cpu.max")).ok();
    let plan = update_plan(resources, current.as_deref()).map_err(cgroup_err("update", id))?;
    for field in &plan.ignored {
        tracing::warn!("update of container {id}: linux.resources.{field} is not applied");
    }
    if plan.is_empty() {
        return Ok(plan.ignored);
    }
    if let Some(unit) = &st.systemd_unit {
        // The unit's properties too, or systemd writes its own values back on daemon-reload.
        crate::cgroups::systemd::set_limits(unit, &plan).map_err(|source| {
            ResourcesError::Systemd {
                id: id.to_string(),
                source,
            }
        })?;
    }
    manager_for(dir)
        .update(&plan)
        .map_err(cgroup_err("update", id))?;
    Ok(plan.ignored)
}

/// The statistics of container `id` (`events --stats`).
pub fn stats(root: &Root, id: &str) -> Result<Event, ResourcesError> {
    let st = root.load(id)?;
    let dir = cgroup_of(&st)?;
    require(
        "read stats of",
        &st,
        &[Status::Created, Status::Running, Status::Paused],
    )?;
    let data = Manager::at(dir).stats().map_err(cgroup_err("stats", id))?;
    Ok(Event {
        kind: EventKind::Stats,
        id: id.to_string(),
        data: Some(data),
    })
}

/// `oom_kill` of `memory.events`, read through an open descriptor (re-reading from offset 0
/// also re-arms poll(2) on the kernfs file).
fn oom_kills(f: &File) -> Option<u64> {
    let mut buf = [0u8; 512];
    let n = f.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == "oom_kill")
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Stream events of container `id` to `emit` until it stops: a stats event every `interval`
/// (the first at once) and an oom event whenever `memory.events` `oom_kill` grows (noticed at
/// once through poll(2) on the file, not at the next interval).
pub fn watch(
    root: &Root,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Event) -> io::Result<()>,
) -> Result<(), ResourcesError> {
    let st = root.load(id)?;
    let dir = cgroup_of(&st)?.to_path_buf();
    require(
        "watch events of",
        &st,
        &[Status::Created, Status::Running, Status::Paused],
    )?;
    let emit_err = |source| ResourcesError::Emit {
        id: id.to_string(),
        source,
    };
    let manager = Manager::at(&dir);
    // A pidfd on the init ends the stream the moment the container stops.
    let pidfd: Option<OwnedFd> = process::pidfd_open(st.pid).ok().filter(|_| st.init_alive());
    let Some(pidfd) = pidfd else {
        return Ok(());
    };
    // Absent when the memory controller is not enabled for the cgroup: no oom events then.
    let events_path = dir.join("memory.events");
    let mem_events = File::open(&events_path).ok();
    let mut last_oom = mem_events.as_ref().and_then(oom_kills).unwrap_or(0);
    let interval = interval.max(Duration::from_millis(1));
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            match manager.stats() {
                Ok(data) => emit(&Event {
                    kind: EventKind::Stats,
                    id: id.to_string(),
                    data: Some(data),
                })
                .map_err(emit_err)?,
                Err(e) => {
                    if !manager.exists() {
                        return Ok(());
                    }
                    tracing::warn!("events of container {id}: {e}");
                }
            }
            next += interval;
            if next <= now {
                next = now + interval;
            }
        }
        let wait = next.saturating_duration_since(Instant::now());
        let mut fds = vec![libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(f) = &mem_events {
            // kernfs reports a change of the file as POLLPRI (and POLLERR)
            fds.push(libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            });
        }
        let timeout = i32::try_from(wait.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a live array of initialised pollfds of the given length.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(ResourcesError::Poll {
                op: "watch events of",
                id: id.to_string(),
                what: events_path,
                source: e,
            });
        }
        if let Some(f) = &mem_events {
            if let Some(n) = oom_kills(f) {
                if n > last_oom {
                    last_oom = n;
                    emit(&Event {
                        kind: EventKind::Oom,
                        id: id.to_string(),
                        data: None,
                    })
                    .map_err(emit_err)?;
                }
            }
        }
        if fds[0].revents != 0 {
            // the init exited: the container is stopped
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn writes(p: &CgroupPlan) -> Vec<(String, String)> {
        p.writes
            .iter()
            .map(|w| (w.file.clone(), w.value.clone()))
            .collect()
    }

    #[test]
    fn update_drops_devices_and_says_so() {
        let p = update_plan(
            &res(r#"{"devices":[{"allow":false,"access":"rwm"}],"pids":{"limit":5}}"#),
            None,
        )
        .unwrap();
        assert!(p.devices.is_none());
        assert!(p.ignored.iter().any(|i| i.starts_with("devices")));
        assert_eq!(writes(&p), [("pids.max".into(), "5".into())]);
    }

    #[test]
    fn quota_alone_keeps_the_period_and_period_alone_keeps_the_quota() {
        let q = update_plan(&res(r#"{"cpu":{"quota":30000}}"#), Some("max 50000\n")).unwrap();
        assert_eq!(writes(&q), [("cpu.max".into(), "30000".into())]);
        let unlimited = update_plan(&res(r#"{"cpu":{"quota":-1}}"#), None).unwrap();
        assert_eq!(writes(&unlimited), [("cpu.max".into(), "max".into())]);
        let p = update_plan(&res(r#"{"cpu":{"period":50000}}"#), Some("20000 100000\n")).unwrap();
        assert_eq!(writes(&p), [("cpu.max".into(), "20000 50000".into())]);
        let p = update_plan(&res(r#"{"cpu":{"period":50000}}"#), None).unwrap();
        assert_eq!(writes(&p), [("cpu.max".into(), "max 50000".into())]);
        let both = update_plan(
            &res(r#"{"cpu":{"quota":10000,"period":20000,"shares":1024}}"#),
            Some("1 2"),
        )
        .unwrap();
        assert!(writes(&both).contains(&("cpu.max".into(), "10000 20000".into())));
        assert!(writes(&both).contains(&("cpu.weight".into(), "39".into())));
    }

    #[test]
    fn empty_update_plans_nothing() {
        let p = update_plan(&res("{}"), None).unwrap();
        assert!(p.is_empty());
    }

    #[test]
    fn oom_kill_is_read_from_memory_events() {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), "low 0\nhigh 0\nmax 7\noom 2\noom_kill 3\n").unwrap();
        let f = File::open(t.path()).unwrap();
        assert_eq!(oom_kills(&f), Some(3));
        std::fs::write(t.path(), "low 0\nhigh 0\nmax 9\noom 4\noom_kill 4\n").unwrap();
        assert_eq!(oom_kills(&f), Some(4), "re-read from offset 0");
        std::fs::write(t.path(), "low 0\n").unwrap();
        assert_eq!(oom_kills(&f), None);
    }

    #[test]
    fn events_serialize_like_runc() {
        let e = Event {
            kind: EventKind::Oom,
            id: "c1".into(),
            data: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"oom","id":"c1"}"#
        );
        let s = Event {
            kind: EventKind::Stats,
            id: "c1".into(),
            data: Some(Stats::default()),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["type"], "stats");
        assert!(v["data"]["memory"].is_object() && v["data"]["pids"].is_object());
    }

    #[test]
    fn verbs_on_a_container_without_cgroup_say_why() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        let (_dir, lock) = root.create("nocg").unwrap();
        drop(lock);
        let me = std::process::id() as i32;
        let st = State {
            oci_version: "1.2.0".into(),
            id: "nocg".into(),
            status: Status::Running,
            pid: me,
            bundle: "/b".into(),
            annotations: Default::default(),
            rootfs: "/b/rootfs".into(),
            created: state::now_rfc3339(),
            init_start_time: process::stat(me).unwrap().0,
            cgroup: None,
            own_pid_ns: true,
            owner: String::new(),
            hooks: Default::default(),
            systemd_unit: None,
        };
        root.save(&st).unwrap();
        for err in [
            pause(&root, "nocg").unwrap_err(),
            resume(&root, "nocg").unwrap_err(),
            update(&root, "nocg", &res("{}")).unwrap_err(),
            stats(&root, "nocg").unwrap_err(),
            watch(&root, "nocg", Duration::from_secs(1), |_| Ok(())).unwrap_err(),
        ] {
            let msg = err.to_string();
            assert!(
                msg.contains("container nocg has no cgroup")
                    && msg.contains("--cgroup-manager=disabled"),
                "{msg}"
            );
        }
        let missing = pause(&root, "other").unwrap_err().to_string();
        assert!(
            missing.contains("container other does not exist"),
            "{missing}"
        );
    }
}
