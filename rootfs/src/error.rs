//! Errors of the plan (pure validation) and of its application (one syscall that failed).

use nix::errno::Errno;

/// A `config.json` that cannot be turned into a mount plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("config.json has no `root`")]
    NoRoot,
    #[error("{what} {path:?} must be an absolute path")]
    NotAbsolute { what: &'static str, path: String },
    #[error("{what} {path:?} climbs out of the container root with `..`")]
    Escapes { what: &'static str, path: String },
    #[error("{what} {path:?} is not valid UTF-8 or contains a NUL byte")]
    BadPath { what: &'static str, path: String },
    #[error("mount on {0:?}: mounting over the container root itself is not supported")]
    MountOnRoot(String),
    #[error("bind mount on {0}: no source")]
    BindWithoutSource(String),
    #[error("mount on {0}: no filesystem type")]
    NoType(String),
    #[error("mount on {destination}: option {option:?} is not supported")]
    UnsupportedOption { destination: String, option: String },
    #[error("linux.rootfsPropagation {0:?} is not one of shared, slave, private, unbindable (or r-prefixed)")]
    BadPropagation(String),
    #[error("device {0}: must be under /dev")]
    DeviceOutsideDev(String),
    #[error("device {path}: type {typ:?} cannot be created (only c, u, b and p)")]
    DeviceType { path: String, typ: String },
    #[error("device {path}: major {major} / minor {minor} out of range")]
    DeviceNumber {
        path: String,
        major: i64,
        minor: i64,
    },
    #[error("sysctl {key:?}: {reason}")]
    Sysctl { key: String, reason: &'static str },
}

/// One step of applying the plan that failed: the step (`"mount"`, `"mkdir"`, `"pivot_root"`,
/// `"mask"`, `"sysctl"`...), what it concerned (a filesystem type, a device, may be empty), the
/// path inside the container, and the errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct MountError {
    step: &'static str,
    what: String,
    path: String,
    errno: Errno,
    reason: Option<&'static str>,
}

impl MountError {
    pub(crate) fn new(step: &'static str, path: impl Into<String>, errno: Errno) -> Self {
        MountError {
            step,
            what: String::new(),
            path: path.into(),
            errno,
            reason: None,
        }
    }

    /// Name what the step handled (`mount` + `tmpfs`): "mount tmpfs on /dev: ...".
    pub(crate) fn what(mut self, what: impl Into<String>) -> Self {
        self.what = what.into();
        self
    }

    /// Replace the errno's description by a precise reason (the errno is still reported).
    pub(crate) fn because(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The raw errno (e.g. `libc::EPERM`).
    pub fn errno(&self) -> i32 {
        self.errno as i32
    }

    /// The step that failed: "mount", "mkdir", "pivot_root", "mask", "sysctl", ...
    pub fn step(&self) -> &str {
        self.step
    }

    /// The path inside the container (or on the host for a bind source) that the step concerned.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The precise reason, when the step failed on a check rather than a syscall.
    pub fn reason(&self) -> Option<&str> {
        self.reason
    }

    fn render(&self) -> String {
        let mut s = String::from(self.step);
        if !self.what.is_empty() {
            s.push(' ');
            s.push_str(&self.what);
        }
        if !self.path.is_empty() {
            s.push_str(if self.what.is_empty() { " " } else { " on " });
            s.push_str(&self.path);
        }
        let desc = self.reason.unwrap_or_else(|| self.errno.desc());
        format!("{s}: {desc} ({:?})", self.errno)
    }
}

/// Convert a rustix errno into the nix one the crate reports.
pub(crate) fn nix_errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_step_type_path_and_errno() {
        let e = MountError::new("mount", "/dev", Errno::EPERM).what("tmpfs");
        assert_eq!(
            e.to_string(),
            "mount tmpfs on /dev: Operation not permitted (EPERM)"
        );
        assert_eq!(e.errno(), libc::EPERM);
        assert_eq!(e.step(), "mount");
        assert_eq!(e.path(), "/dev");
        let e = MountError::new("mkdir", "/mnt/x", Errno::EEXIST);
        assert_eq!(e.to_string(), "mkdir /mnt/x: File exists (EEXIST)");
        let e = MountError::new("mount", "/proc", Errno::ENOTDIR)
            .what("proc")
            .because("must be mounted on an ordinary directory");
        assert_eq!(
            e.to_string(),
            "mount proc on /proc: must be mounted on an ordinary directory (ENOTDIR)"
        );
    }
}
