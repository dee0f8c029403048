//! How a sandbox uses the cgroup v2 layer ([`crate::cgroups`]): decide whether it gets a cgroup,
//! refuse loudly when the spec asks for limits the host cannot enforce, and create, signal and
//! remove the sandbox's cgroup.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::plan::SandboxPlan;
use super::CgroupMode;
use crate::cgroups::{self, CgroupError, CgroupPlan, Manager};

/// Errors of the sandbox's cgroup handling.
#[derive(Debug, thiserror::Error)]
pub enum CgroupSetupError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

/// The decision for one sandbox: where its cgroup goes and what is written there.
#[derive(Debug, Clone)]
pub struct Planned {
    root: Option<PathBuf>,
    cgroups_path: String,
    plan: CgroupPlan,
}

/// The parent of relative `cgroupsPath`s (and of sandboxes without one).
pub const DEFAULT_PARENT: &str = "reeve";

/// Decide. With limits in the spec, the cgroup2 hierarchy must offer every controller they need,
/// or this fails naming the missing ones; `Disabled` runs without limits and says so. Without
/// limits, a cgroup is still created where cgroup v2 is the host's only hierarchy (so kill,
/// ps and pause see every process), and skipped on hybrid hosts, whose v2 tree is not ours.
pub fn plan(sandbox: &SandboxPlan, mode: CgroupMode) -> Result<Option<Planned>, CgroupSetupError> {
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
        CgroupMode::Enabled => None,
    };
    let cgroups_path = sandbox.cgroups_path.clone().unwrap_or_default();
    if sandbox.resources.is_none() && root.is_none() && !cgroups::unified_host() {
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
    Ok(Some(Planned {
        root,
        cgroups_path,
        plan,
    }))
}

/// A sandbox's live cgroup.
#[derive(Debug)]
pub struct SandboxCgroup {
    manager: Manager,
}

impl SandboxCgroup {
    pub fn create(p: &Planned, id: &str) -> Result<Self, CgroupSetupError> {
        let manager = Manager::new(p.root.as_deref(), &p.cgroups_path, DEFAULT_PARENT, id)?;
        manager.create(&p.plan)?;
        Ok(SandboxCgroup { manager })
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
        Ok(self.manager.remove()?)
    }
}

/// Pids in the cgroup at `dir`.
pub fn pids(dir: &Path) -> Result<Vec<i32>, CgroupSetupError> {
    Ok(Manager::at(dir).pids()?)
}

/// cgroup.kill and wait until empty.
pub fn kill(dir: &Path) -> Result<(), CgroupSetupError> {
    Ok(Manager::at(dir).kill()?)
}

/// Remove the (empty) cgroup at `dir`.
pub fn remove(dir: &Path) -> Result<(), CgroupSetupError> {
    let m = Manager::at(dir);
    m.kill()?;
    Ok(m.remove()?)
}
