//! How a sandbox uses the cgroup v2 layer ([`crate::cgroups`]): decide whether it gets a cgroup,
//! refuse loudly when the spec asks for limits the host cannot enforce, and create, signal and
//! remove the sandbox's cgroup.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::plan::SandboxPlan;
use super::CgroupMode;
use crate::cgroups::systemd::{self, ScopePlan, SystemdError};
use crate::cgroups::{self, CgroupError, CgroupPlan, Manager};

/// Errors of the sandbox's cgroup handling.
#[derive(Debug, thiserror::Error)]
pub enum CgroupSetupError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
}

/// The decision for one sandbox: where its cgroup goes and what is written there.
#[derive(Debug, Clone)]
pub struct Planned {
    root: Option<PathBuf>,
    cgroups_path: String,
    plan: CgroupPlan,
    /// With the systemd driver: the scope systemd makes (after clone, with the init in it).
    scope: Option<ScopePlan>,
}

impl Planned {
    /// Whether the cgroup exists only once the init does (systemd's scope takes its pid).
    pub fn after_clone(&self) -> bool {
        self.scope.is_some()
    }
}

/// The parent of relative `cgroupsPath`s (and of sandboxes without one).
pub const DEFAULT_PARENT: &str = "reeve";

/// Decide. With limits in the spec, the cgroup2 hierarchy must offer every controller they need,
/// or this fails naming the missing ones; `Disabled` runs without limits and says so. Without
/// limits, a cgroup is still created where cgroup v2 is the host's only hierarchy (so kill,
/// ps and pause see every process), and skipped on hybrid hosts, whose v2 tree is not ours.
pub fn plan(sandbox: &SandboxPlan, mode: CgroupMode) -> Result<Option<Planned>, CgroupSetupError> {
    let mode_is_systemd = mode == CgroupMode::Systemd;
    let root = match mode {
        CgroupMode::Disabled => {
            if sandbox.resources.is_some() {
                let msg = format!(
                    "container {}: --cgroup-manager=disabled: the resource limits in linux.resources \
                     are NOT applied; this sandbox runs without memory, cpu, pids or io limits",
                    sandbox.id
                );
                tracing::warn!("{msg}");
                eprintln!("reevec: WARNING: {msg}");
            }
            return Ok(None);
        }
        CgroupMode::Root(r) => Some(r),
        CgroupMode::Enabled | CgroupMode::Systemd => None,
    };
    let systemd = mode_is_systemd;
    let cgroups_path = sandbox.cgroups_path.clone().unwrap_or_default();
    if sandbox.resources.is_none() && root.is_none() && !systemd && !cgroups::unified_host() {
        return Ok(None);
    }
    let mut plan = match &sandbox.resources_all {
        Some(r) => cgroups::plan(r)?,
        None => CgroupPlan::default(),
    };
    // runc's device policy: the spec's rules, then the standard nodes and linux.devices.
    plan.add_runc_default_devices(&sandbox.devices);
    for field in &plan.ignored {
        tracing::warn!(
            "container {}: linux.resources.{field} has no cgroup v2 equivalent and is ignored",
            sandbox.id
        );
    }
    // Fails with the missing controller's name and the fix when the host cannot enforce it.
    cgroups::check_available(root.as_deref(), &plan)?;
    let scope = systemd
        .then(|| systemd::plan(&cgroups_path, &sandbox.id, &plan))
        .transpose()?;
    Ok(Some(Planned {
        root,
        cgroups_path,
        plan,
        scope,
    }))
}

/// A sandbox's live cgroup.
#[derive(Debug)]
pub struct SandboxCgroup {
    manager: Manager,
    /// The systemd scope that owns it, with the systemd driver.
    unit: Option<String>,
}

impl SandboxCgroup {
    /// The cgroupfs driver: make the cgroup before clone, so the init is born in it.
    pub fn create(p: &Planned, id: &str) -> Result<Self, CgroupSetupError> {
        let manager = Manager::new(p.root.as_deref(), &p.cgroups_path, DEFAULT_PARENT, id)?;
        manager.create(&p.plan)?;
        Ok(SandboxCgroup {
            manager,
            unit: None,
        })
    }

    /// The systemd driver: systemd makes the scope with `pid` in it; then the resources are
    /// written to its files too (systemd keeps them as unit properties as well).
    pub fn start_scope(p: &Planned, pid: i32) -> Result<Self, CgroupSetupError> {
        let scope = p.scope.as_ref().ok_or_else(|| CgroupError::InvalidPath {
            path: p.cgroups_path.clone(),
            reason: "no systemd scope planned",
        })?;
        let root = match &p.root {
            Some(r) => r.clone(),
            None => cgroups::find_cgroup2_root()?,
        };
        let dir = systemd::start(scope, pid, &root)?;
        let cg = SandboxCgroup {
            manager: Manager::at(&dir),
            unit: Some(scope.unit.clone()),
        };
        if let Err(e) = cg.manager.update(&p.plan) {
            let _ = cg.destroy();
            return Err(e.into());
        }
        Ok(cg)
    }

    /// The systemd unit, with the systemd driver.
    pub fn unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }

    pub fn path(&self) -> &Path {
        self.manager.path()
    }

    pub fn open_dir(&self) -> Result<OwnedFd, CgroupSetupError> {
        Ok(self.manager.open_dir()?)
    }

    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupSetupError> {
        Ok(self.manager.add_pid(pid)?)
    }

    /// Kill everything in it and remove it.
    pub fn destroy(&self) -> Result<(), CgroupSetupError> {
        self.manager.kill()?;
        match &self.unit {
            Some(unit) => {
                systemd::stop(unit)?;
                Ok(remove_if_left(self.manager.path())?)
            }
            None => Ok(self.manager.remove()?),
        }
    }
}

/// systemd removes a stopped scope's directory itself; remove it only if it is still there.
fn remove_if_left(dir: &Path) -> Result<(), CgroupError> {
    let m = Manager::at(dir);
    if m.exists() {
        m.remove()?;
    }
    Ok(())
}

/// Pids in the cgroup at `dir`.
pub fn pids(dir: &Path) -> Result<Vec<i32>, CgroupSetupError> {
    Ok(Manager::at(dir).pids()?)
}

/// cgroup.kill and wait until empty.
pub fn kill(dir: &Path) -> Result<(), CgroupSetupError> {
    Ok(Manager::at(dir).kill()?)
}

/// Kill what is left in the cgroup at `dir` and remove it; with `unit`, stop that systemd scope
/// (which removes the directory) first.
pub fn remove(dir: &Path, unit: Option<&str>) -> Result<(), CgroupSetupError> {
    let m = Manager::at(dir);
    match unit {
        None => {
            m.kill()?;
            Ok(m.remove()?)
        }
        Some(unit) => {
            if m.exists() {
                m.kill()?;
            }
            systemd::stop(unit)?;
            Ok(remove_if_left(dir)?)
        }
    }
}
