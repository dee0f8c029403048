//! `mounts[].options` of `config.json` parsed into mount attributes, propagation and the
//! filesystem data string (the part the kernel's filesystem parses, e.g. `mode=755,size=65536k`).

use crate::error::PlanError;

/// `MOUNT_ATTR_RDONLY`: read-only mount.
pub const ATTR_RDONLY: u64 = 0x0000_0001;
/// `MOUNT_ATTR_NOSUID`.
pub const ATTR_NOSUID: u64 = 0x0000_0002;
/// `MOUNT_ATTR_NODEV`.
pub const ATTR_NODEV: u64 = 0x0000_0004;
/// `MOUNT_ATTR_NOEXEC`.
pub const ATTR_NOEXEC: u64 = 0x0000_0008;
/// `MOUNT_ATTR__ATIME`: the mask of the three-valued access time setting.
pub const ATTR_ATIME_MASK: u64 = 0x0000_0070;
/// `MOUNT_ATTR_RELATIME` (the value 0 of the access time field).
pub const ATTR_RELATIME: u64 = 0x0000_0000;
/// `MOUNT_ATTR_NOATIME`.
pub const ATTR_NOATIME: u64 = 0x0000_0010;
/// `MOUNT_ATTR_STRICTATIME`.
pub const ATTR_STRICTATIME: u64 = 0x0000_0020;
/// `MOUNT_ATTR_NODIRATIME`.
pub const ATTR_NODIRATIME: u64 = 0x0000_0080;
/// `MOUNT_ATTR_NOSYMFOLLOW`.
pub const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Mount attributes to set and to clear, in `mount_setattr(2)` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MountAttrs {
    pub set: u64,
    pub clear: u64,
}

impl MountAttrs {
    /// Attributes that only restrict (read-only, nosuid, nodev, noexec, nodiratime, nosymfollow):
    /// always allowed, even on a mount whose flags are locked in a user namespace.
    pub const RESTRICTING: u64 =
        ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC | ATTR_NODIRATIME | ATTR_NOSYMFOLLOW;

    /// Attributes with these bits set (and nothing to clear).
    pub const fn with(set: u64) -> Self {
        MountAttrs { set, clear: 0 }
    }

    fn add(&mut self, bit: u64) {
        self.set |= bit;
        self.clear &= !bit;
    }

    fn remove(&mut self, bit: u64) {
        self.set &= !bit;
        self.clear |= bit;
    }

    fn atime(&mut self, value: Option<u64>) {
        self.set &= !ATTR_ATIME_MASK;
        match value {
            Some(v) => {
                self.set |= v;
                self.clear |= ATTR_ATIME_MASK;
            }
            None => self.clear &= !ATTR_ATIME_MASK,
        }
    }

    /// Whether the read-only attribute is requested.
    pub fn readonly(&self) -> bool {
        self.set & ATTR_RDONLY != 0
    }

    /// Whether nothing is to be changed.
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }

    /// Only the restricting part: what can be applied whatever locks the mount has.
    pub fn restricting_only(&self) -> Self {
        MountAttrs {
            set: self.set & Self::RESTRICTING,
            clear: 0,
        }
    }
}

/// The propagation type of a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagationKind {
    Shared,
    Slave,
    Private,
    Unbindable,
}

/// A propagation change, optionally applied to the whole subtree (`rshared`, `rslave`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    pub kind: PropagationKind,
    pub recursive: bool,
}

impl Propagation {
    /// runc's default propagation for `/` of the new mount namespace: `rslave`.
    pub const RSLAVE: Propagation = Propagation {
        kind: PropagationKind::Slave,
        recursive: true,
    };

    /// Parse `shared`, `rslave`, ... (the spellings of `rootfsPropagation` and of mount options).
    pub fn parse(s: &str) -> Option<Propagation> {
        let (recursive, base) = match s.strip_prefix('r') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let kind = match base {
            "shared" => PropagationKind::Shared,
            "slave" => PropagationKind::Slave,
            "private" => PropagationKind::Private,
            "unbindable" => PropagationKind::Unbindable,
            _ => return None,
        };
        Some(Propagation { kind, recursive })
    }

    /// The `MS_*` flags for `mount(2)` (and the `propagation` field of `mount_setattr(2)`,
    /// without `MS_REC`).
    pub fn ms_flags(&self) -> u64 {
        let base = match self.kind {
            PropagationKind::Shared => libc::MS_SHARED,
            PropagationKind::Slave => libc::MS_SLAVE,
            PropagationKind::Private => libc::MS_PRIVATE,
            PropagationKind::Unbindable => libc::MS_UNBINDABLE,
        };
        if self.recursive {
            base | libc::MS_REC
        } else {
            base
        }
    }
}

/// Everything a list of mount options says, except the filesystem data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountFlags {
    /// `bind` / `rbind`: `Some(recursive)`.
    pub bind: Option<bool>,
    /// `remount`: change the attributes of the mount already at the destination.
    pub remount: bool,
    /// Attributes of the mount itself (`ro`, `nosuid`, `noatime`...).
    pub attrs: MountAttrs,
    /// Attributes applied to the whole subtree (`rro`, `rnosuid`... as runc's "recursive
    /// mount attributes").
    pub recursive_attrs: MountAttrs,
    /// `private`, `rshared`, ...
    pub propagation: Option<Propagation>,
    /// Superblock flags: `sync`, `dirsync`, `lazytime`.
    pub sync: bool,
    pub dirsync: bool,
    pub lazytime: bool,
}

/// Parse one mount's options: returns the flags and the comma-joined data string with every
/// option that is not a mount flag (kept in order, for the filesystem to parse).
pub fn parse_options(
    destination: &str,
    options: &[String],
) -> Result<(MountFlags, String), PlanError> {
    let mut f = MountFlags::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_str();
        if let Some(p) = Propagation::parse(opt) {
            f.propagation = Some(p);
            continue;
        }
        match opt {
            "" | "defaults" | "silent" | "loud" | "mand" | "nomand" => {}
            "bind" => f.bind = Some(f.bind.unwrap_or(false)),
            "rbind" => f.bind = Some(true),
            "remount" => f.remount = true,
            "ro" => f.attrs.add(ATTR_RDONLY),
            "rw" => f.attrs.remove(ATTR_RDONLY),
            "nosuid" => f.attrs.add(ATTR_NOSUID),
            "suid" => f.attrs.remove(ATTR_NOSUID),
            "nodev" => f.attrs.add(ATTR_NODEV),
            "dev" => f.attrs.remove(ATTR_NODEV),
            "noexec" => f.attrs.add(ATTR_NOEXEC),
            "exec" => f.attrs.remove(ATTR_NOEXEC),
            "nodiratime" => f.attrs.add(ATTR_NODIRATIME),
            "diratime" => f.attrs.remove(ATTR_NODIRATIME),
            "nosymfollow" => f.attrs.add(ATTR_NOSYMFOLLOW),
            "symfollow" => f.attrs.remove(ATTR_NOSYMFOLLOW),
            "relatime" => f.attrs.atime(Some(ATTR_RELATIME)),
            "noatime" => f.attrs.atime(Some(ATTR_NOATIME)),
            "strictatime" => f.attrs.atime(Some(ATTR_STRICTATIME)),
            "atime" | "norelatime" | "nostrictatime" => f.attrs.atime(None),
            "rro" => f.recursive_attrs.add(ATTR_RDONLY),
            "rrw" => f.recursive_attrs.remove(ATTR_RDONLY),
            "rnosuid" => f.recursive_attrs.add(ATTR_NOSUID),
            "rsuid" => f.recursive_attrs.remove(ATTR_NOSUID),
            "rnodev" => f.recursive_attrs.add(ATTR_NODEV),
            "rdev" => f.recursive_attrs.remove(ATTR_NODEV),
            "rnoexec" => f.recursive_attrs.add(ATTR_NOEXEC),
            "rexec" => f.recursive_attrs.remove(ATTR_NOEXEC),
            "rnodiratime" => f.recursive_attrs.add(ATTR_NODIRATIME),
            "rdiratime" => f.recursive_attrs.remove(ATTR_NODIRATIME),
            "rnosymfollow" => f.recursive_attrs.add(ATTR_NOSYMFOLLOW),
            "rsymfollow" => f.recursive_attrs.remove(ATTR_NOSYMFOLLOW),
            "rrelatime" => f.recursive_attrs.atime(Some(ATTR_RELATIME)),
            "rnoatime" => f.recursive_attrs.atime(Some(ATTR_NOATIME)),
            "rstrictatime" => f.recursive_attrs.atime(Some(ATTR_STRICTATIME)),
            "ratime" | "rnorelatime" | "rnostrictatime" => f.recursive_attrs.atime(None),
            "sync" => f.sync = true,
            "async" => f.sync = false,
            "dirsync" => f.dirsync = true,
            "lazytime" => f.lazytime = true,
            "nolazytime" => f.lazytime = false,
            "idmap" | "ridmap" | "tmpcopyup" => {
                return Err(PlanError::UnsupportedOption {
                    destination: destination.to_string(),
                    option: opt.to_string(),
                })
            }
            other => data.push(other),
        }
    }
    Ok((f, data.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> (MountFlags, String) {
        let v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse_options("/x", &v).unwrap()
    }

    #[test]
    fn flags_and_data_are_separated() {
        let (f, data) = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(data, "mode=755,size=65536k");
        assert_eq!(f.attrs.set, ATTR_NOSUID | ATTR_STRICTATIME);
        assert_eq!(f.attrs.clear, ATTR_ATIME_MASK);
        assert_eq!(f.bind, None);
        assert!(!f.remount);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let (f, _) = parse(&["ro", "rw"]);
        assert!(!f.attrs.readonly());
        assert_eq!(f.attrs.clear, ATTR_RDONLY);
        let (f, _) = parse(&[
            "rw", "ro", "dev", "nodev", "exec", "noexec", "suid", "nosuid",
        ]);
        assert_eq!(
            f.attrs.set,
            ATTR_RDONLY | ATTR_NODEV | ATTR_NOEXEC | ATTR_NOSUID
        );
        assert_eq!(f.attrs.clear, 0);
        let (f, _) = parse(&["noatime", "relatime"]);
        assert_eq!(f.attrs.set & ATTR_ATIME_MASK, ATTR_RELATIME);
        assert_eq!(f.attrs.clear, ATTR_ATIME_MASK);
        let (f, _) = parse(&["noatime", "atime"]);
        assert!(f.attrs.is_empty());
    }

    #[test]
    fn bind_rbind_and_propagation() {
        let (f, _) = parse(&["bind"]);
        assert_eq!(f.bind, Some(false));
        let (f, _) = parse(&["rbind", "bind"]);
        assert_eq!(f.bind, Some(true));
        let (f, _) = parse(&["rbind", "rprivate"]);
        assert_eq!(
            f.propagation,
            Some(Propagation {
                kind: PropagationKind::Private,
                recursive: true
            })
        );
        let (f, _) = parse(&["shared"]);
        assert_eq!(
            f.propagation,
            Some(Propagation {
                kind: PropagationKind::Shared,
                recursive: false
            })
        );
        for (s, k) in [
            ("slave", PropagationKind::Slave),
            ("runbindable", PropagationKind::Unbindable),
            ("unbindable", PropagationKind::Unbindable),
            ("rshared", PropagationKind::Shared),
        ] {
            assert_eq!(Propagation::parse(s).unwrap().kind, k);
        }
        assert_eq!(Propagation::parse("ro"), None);
        assert_eq!(Propagation::parse("rw"), None);
        assert_eq!(
            Propagation::RSLAVE.ms_flags(),
            libc::MS_SLAVE | libc::MS_REC
        );
    }

    #[test]
    fn recursive_attributes_and_superblock_flags() {
        let (f, data) = parse(&[
            "rbind", "rro", "rnosuid", "rnoatime", "sync", "dirsync", "remount",
        ]);
        assert_eq!(
            f.recursive_attrs.set,
            ATTR_RDONLY | ATTR_NOSUID | ATTR_NOATIME
        );
        assert_eq!(f.recursive_attrs.clear, ATTR_ATIME_MASK);
        assert!(f.attrs.is_empty());
        assert!(f.sync && f.dirsync && f.remount);
        assert_eq!(data, "");
        let (f, _) = parse(&["sync", "async"]);
        assert!(!f.sync);
    }

    #[test]
    fn unsupported_options_are_refused() {
        let v = vec!["idmap".to_string()];
        assert!(matches!(
            parse_options("/x", &v),
            Err(PlanError::UnsupportedOption { ref option, .. }) if option == "idmap"
        ));
    }

    #[test]
    fn restricting_only_drops_clears_and_atime() {
        let (f, _) = parse(&["ro", "nosuid", "rw", "noatime", "suid"]);
        let r = f.attrs.restricting_only();
        assert_eq!(r.set, 0);
        let (f, _) = parse(&["ro", "noatime", "nodev"]);
        assert_eq!(
            f.attrs.restricting_only(),
            MountAttrs::with(ATTR_RDONLY | ATTR_NODEV)
        );
    }
}
