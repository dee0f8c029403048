//! Namespaced sysctls: validation of `linux.sysctl` (plain data) and the write through a
//! verified procfs file descriptor.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{nix_errno, MountError, PlanError};

/// One validated sysctl write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// The dotted name, e.g. `net.ipv4.ip_forward`.
    pub key: String,
    pub value: String,
}

impl Sysctl {
    /// The file under `/proc/sys`, e.g. `net/ipv4/ip_forward`.
    pub fn proc_path(&self) -> String {
        self.key.replace('.', "/")
    }
}

/// The namespaces the container gets (new or joined), which decide what sysctls it may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SysctlNamespaces {
    pub ipc: bool,
    pub net: bool,
    pub uts: bool,
}

const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Check that `key` names a sysctl that belongs to a namespace the container has, so the write
/// cannot change the host (the same rules as runc's validator).
pub fn validate(key: &str, value: &str, ns: SysctlNamespaces) -> Result<Sysctl, PlanError> {
    let err = |reason| PlanError::Sysctl {
        key: key.to_string(),
        reason,
    };
    let well_formed = !key.is_empty()
        && key.split('.').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+')
        });
    if !well_formed {
        return Err(err("not a dotted sysctl name"));
    }
    if value.contains('\0') {
        return Err(err("the value contains a NUL byte"));
    }
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        if !ns.ipc {
            return Err(err("needs an ipc namespace (not allowed in the host's)"));
        }
    } else if key.starts_with("net.") {
        if !ns.net {
            return Err(err("needs a network namespace (not allowed in the host's)"));
        }
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        if !ns.uts {
            return Err(err("needs a uts namespace (not allowed in the host's)"));
        }
    } else {
        return Err(err("is not namespaced: it would change the host"));
    }
    Ok(Sysctl {
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// Open `/proc` (after pivot_root, cwd `/`) and check it is a procfs.
pub(crate) fn open_procfs() -> Result<OwnedFd, MountError> {
    let fd = rustix::fs::openat2(
        rustix::fs::CWD,
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| MountError::new("sysctl", "/proc", nix_errno(e)).what("open"))?;
    check_procfs(&fd, "/proc")?;
    Ok(fd)
}

fn check_procfs(fd: impl AsFd, path: &str) -> Result<(), MountError> {
    let st = rustix::fs::fstatfs(fd)
        .map_err(|e| MountError::new("sysctl", path, nix_errno(e)).what("fstatfs"))?;
    // f_type and the magic constants have different types on different architectures.
    #[allow(clippy::unnecessary_cast)]
    let other_fs = st.f_type as i64 != libc::PROC_SUPER_MAGIC as i64;
    if other_fs {
        return Err(MountError::new("sysctl", path, Errno::EXDEV).because("not on procfs"));
    }
    Ok(())
}

/// Write one sysctl below the verified `/proc` fd: no symlink, no magic link and no mount
/// crossing in the way (a bind mount over a /proc/sys file cannot redirect the write), and the
/// opened file is checked to be on procfs.
pub(crate) fn write(proc_fd: impl AsFd, s: &Sysctl) -> Result<(), MountError> {
    let rel = format!("sys/{}", s.proc_path());
    let shown = format!("/proc/{rel}");
    let fd = rustix::fs::openat2(
        proc_fd,
        rel.as_str(),
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )
    .map_err(|e| MountError::new("sysctl", shown.as_str(), nix_errno(e)).what(s.key.as_str()))?;
    check_procfs(&fd, &shown)?;
    let mut buf = s.value.as_bytes();
    while !buf.is_empty() {
        match rustix::io::write(&fd, buf) {
            Ok(0) => return Err(MountError::new("sysctl", shown, Errno::EIO).what(s.key.as_str())),
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(MountError::new("sysctl", shown, nix_errno(e)).what(s.key.as_str()))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: SysctlNamespaces = SysctlNamespaces {
        ipc: true,
        net: true,
        uts: true,
    };
    const NONE: SysctlNamespaces = SysctlNamespaces {
        ipc: false,
        net: false,
        uts: false,
    };

    #[test]
    fn namespaced_sysctls_are_accepted() {
        for key in [
            "kernel.shmmax",
            "kernel.shm_rmid_forced",
            "kernel.msgmnb",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "net.ipv4.ip_forward",
            "net.ipv4.conf.all.rp_filter",
            "kernel.hostname",
            "kernel.domainname",
        ] {
            let s = validate(key, "1", ALL).unwrap();
            assert_eq!(s.key, key);
        }
        assert_eq!(
            validate("net.ipv4.ip_forward", "1", ALL)
                .unwrap()
                .proc_path(),
            "net/ipv4/ip_forward"
        );
    }

    #[test]
    fn host_sysctls_are_refused_with_the_key() {
        for key in [
            "kernel.core_pattern",
            "vm.swappiness",
            "kernel.shmmaxx",
            "fs.file-max",
        ] {
            let e = validate(key, "1", ALL).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
            assert!(e.to_string().contains("not namespaced"), "{e}");
        }
    }

    #[test]
    fn namespace_is_required() {
        assert!(validate("kernel.shmmax", "1", NONE)
            .unwrap_err()
            .to_string()
            .contains("ipc"));
        assert!(validate("fs.mqueue.queues_max", "1", NONE).is_err());
        assert!(validate("net.core.somaxconn", "1", NONE)
            .unwrap_err()
            .to_string()
            .contains("network"));
        assert!(validate("kernel.hostname", "x", NONE)
            .unwrap_err()
            .to_string()
            .contains("uts"));
        let only_net = SysctlNamespaces { net: true, ..NONE };
        assert!(validate("net.core.somaxconn", "1", only_net).is_ok());
        assert!(validate("kernel.msgmax", "1", only_net).is_err());
    }

    #[test]
    fn malformed_keys_are_refused() {
        for key in [
            "",
            "net..ipv4",
            "net/ipv4/ip_forward",
            "net.ipv4.",
            ".net",
            "net.../..x",
            "net.a b",
        ] {
            let e = validate(key, "1", ALL).unwrap_err();
            assert!(matches!(e, PlanError::Sysctl { .. }), "{key}");
        }
        assert!(validate("net.ipv4.ip_forward", "1\0", ALL).is_err());
    }
}
