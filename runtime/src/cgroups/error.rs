//! Errors of the cgroup v2 layer.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::devices::DeviceError;

/// How to fix a host whose cgroup2 hierarchy lacks controllers.
pub const MISSING_CONTROLLER_FIX: &str = "enable it with systemd Delegate=yes for this service, \
     or boot with systemd.unified_cgroup_hierarchy=1 so cgroup v2 owns all controllers";

/// Everything that can go wrong while planning, creating, driving or reading a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// `/proc/self/mountinfo` could not be read.
    #[error("read {path}: {source}")]
    ReadMountinfo {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// No cgroup2 filesystem is mounted.
    #[error(
        "no cgroup2 filesystem is mounted (searched {path}); cgroup v1 is never used: mount cgroup2 \
         (e.g. boot with systemd.unified_cgroup_hierarchy=1) or pass the cgroup2 root explicitly"
    )]
    NoCgroup2 { path: PathBuf },

    /// The cgroup2 hierarchy does not offer controllers the resources need.
    #[error(
        "cgroup2 hierarchy at {root} lacks controller(s) {missing} needed by linux.resources \
         (it offers: {available}); {fix}",
        missing = .missing.join(", "),
        available = if .available.is_empty() { "none".to_string() } else { .available.join(" ") },
        fix = MISSING_CONTROLLER_FIX
    )]
    MissingControllers {
        root: PathBuf,
        missing: Vec<String>,
        available: Vec<String>,
    },

    /// cgroupsPath (or parent/id) cannot name a cgroup below the root.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// A value in linux.resources cannot be converted to cgroup v2.
    #[error("invalid linux.resources.{field}: {reason}")]
    InvalidResource { field: &'static str, reason: String },

    /// A key of linux.resources.unified is refused.
    #[error("invalid linux.resources.unified key {key:?}: {reason}")]
    InvalidUnifiedKey { key: String, reason: &'static str },

    #[error("mkdir {path}: {source}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },

    #[error("rmdir {path}: {source}")]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("kill pid {pid} of {path}: {source}")]
    Kill {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A state change did not show up in cgroup.events in time.
    #[error("{op} {path}: cgroup.events did not report {want} within {waited:?}")]
    Timeout {
        op: &'static str,
        path: PathBuf,
        want: &'static str,
        waited: Duration,
    },

    #[error(transparent)]
    Device(#[from] DeviceError),
}
