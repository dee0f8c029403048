//! The mount plan of a container root, built from `config.json` as plain data: no syscall here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Mount, Spec};

use crate::error::PlanError;
use crate::options::{parse_options, MountAttrs, MountFlags, Propagation, ATTR_RDONLY};
use crate::sysctl::{self, Sysctl, SysctlNamespaces};

/// What a mount is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (`rbind` when `recursive`).
    Bind {
        recursive: bool,
    },
    Tmpfs,
    Proc,
    Sysfs,
    Devpts,
    Mqueue,
    /// `cgroup` and `cgroup2` in `config.json`: always cgroup2, read-only unless the spec says
    /// `rw` explicitly (CVE-2023-25809).
    Cgroup2,
    /// Any other filesystem type, passed to the kernel as is.
    Other(String),
}

impl MountKind {
    /// The filesystem type given to the kernel (`"bind"` for bind mounts).
    pub fn fs_type(&self) -> &str {
        match self {
            MountKind::Bind { .. } => "bind",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Proc => "proc",
            MountKind::Sysfs => "sysfs",
            MountKind::Devpts => "devpts",
            MountKind::Mqueue => "mqueue",
            MountKind::Cgroup2 => "cgroup2",
            MountKind::Other(t) => t,
        }
    }
}

/// One mount of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOp {
    pub kind: MountKind,
    /// Bind mounts: the absolute host path (relative sources are resolved against the bundle).
    /// Other mounts: the source string handed to the filesystem (`"tmpfs"`, `"/dev/vdb"`).
    pub source: Option<PathBuf>,
    /// Normalized absolute path inside the container.
    pub destination: String,
    pub flags: MountFlags,
    /// Options the filesystem parses, comma-separated (e.g. `mode=755,size=65536k`).
    pub data: String,
}

/// The type of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

/// A device node to create under `/dev` (mknod, or a bind mount of the host's same device when
/// mknod is not permitted, e.g. in a user namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Normalized absolute path inside the container, under `/dev`.
    pub path: String,
    pub kind: DeviceKind,
    pub major: u32,
    pub minor: u32,
    /// Permission bits (e.g. 0o666).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A symlink under `/dev` (`/dev/fd -> /proc/self/fd`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevSymlink {
    pub path: String,
    pub target: String,
    /// Replace whatever is at `path` (used for `/dev/ptmx`); otherwise an existing entry is kept.
    pub replace: bool,
}

/// One step of `prepare_root`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootOp {
    Mount(MountOp),
    Device(DeviceNode),
    Symlink(DevSymlink),
}

/// The whole mount plan of a container root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Absolute (bundle-joined) path of the root directory on the host.
    pub root: PathBuf,
    /// `root.readonly`: remount `/` read-only at the end of `finalize`.
    pub readonly: bool,
    /// `linux.rootfsPropagation` if given. Before anything else `/` is set to this, or to
    /// `rslave` (runc's default) when `None`; an explicit value is applied again after pivot_root.
    pub rootfs_propagation: Option<Propagation>,
    /// Mounts, device nodes and /dev symlinks, in application order.
    pub ops: Vec<RootOp>,
    /// Whether the runtime sets up /dev (false when the spec bind-mounts a /dev).
    pub setup_dev: bool,
    /// The /dev mount asked for `ro`: it is mounted rw (nodes must be created in it) and made
    /// read-only in `finalize`.
    pub dev_readonly: bool,
    /// `linux.sysctl`, validated, sorted by key.
    pub sysctls: Vec<Sysctl>,
    /// `linux.maskedPaths`, normalized.
    pub masked_paths: Vec<String>,
    /// `linux.readonlyPaths`, normalized.
    pub readonly_paths: Vec<String>,
}

impl MountPlan {
    /// For a sandbox that has no cgroup of its own: its cgroup namespace is rooted at the
    /// caller's cgroup, so a cgroup2 mount would show the caller's tree (other sandboxes' and the
    /// host's processes). Every cgroup2 mount becomes an empty read-only tmpfs instead.
    pub fn hide_cgroupfs(&mut self) {
        for op in &mut self.ops {
            if let RootOp::Mount(m) = op {
                if m.kind == MountKind::Cgroup2 {
                    m.kind = MountKind::Tmpfs;
                    m.source = Some(PathBuf::from("tmpfs"));
                    m.data = "mode=0555,size=4k".to_string();
                    m.flags.attrs.set |= crate::options::ATTR_RDONLY;
                    m.flags.attrs.clear &= !crate::options::ATTR_RDONLY;
                }
            }
        }
    }

    /// The propagation `/` gets before the root is prepared.
    pub fn root_propagation(&self) -> Propagation {
        self.rootfs_propagation.unwrap_or(Propagation::RSLAVE)
    }

    /// The mount operations only, in order.
    pub fn mounts(&self) -> impl Iterator<Item = &MountOp> {
        self.ops.iter().filter_map(|op| match op {
            RootOp::Mount(m) => Some(m),
            _ => None,
        })
    }

    /// Build the plan from a spec; `bundle` resolves a relative root and relative bind sources.
    pub fn from_spec(spec: &Spec, bundle: &Path) -> Result<MountPlan, PlanError> {
        let root_cfg = spec.root().as_ref().ok_or(PlanError::NoRoot)?;
        let root = if root_cfg.path().is_absolute() {
            root_cfg.path().clone()
        } else {
            bundle.join(root_cfg.path())
        };
        let linux = spec.linux().as_ref();
        let rootfs_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => None,
            Some(s) => {
                Some(Propagation::parse(s).ok_or_else(|| PlanError::BadPropagation(s.into()))?)
            }
        };

        let mut mounts = Vec::new();
        for m in spec.mounts().as_deref().unwrap_or(&[]) {
            mounts.push(mount_op(m, bundle)?);
        }

        let mut dev_readonly = false;
        let dev_index = mounts.iter().position(|m| m.destination == "/dev");
        let setup_dev = !matches!(
            dev_index.map(|i| &mounts[i].kind),
            Some(MountKind::Bind { .. })
        );
        if setup_dev {
            let dev_index = match dev_index {
                Some(i) => {
                    let dev = &mut mounts[i];
                    if dev.flags.attrs.readonly() {
                        dev.flags.attrs.set &= !ATTR_RDONLY;
                        dev_readonly = true;
                    }
                    i
                }
                None => {
                    let at = mounts
                        .iter()
                        .position(|m| m.destination.starts_with("/dev/"))
                        .unwrap_or(mounts.len());
                    mounts.insert(
                        at,
                        default_mount(MountKind::Tmpfs, "tmpfs", "/dev", &DEV_OPTS)?,
                    );
                    at
                }
            };
            let mut after = dev_index + 1;
            match mounts.iter().position(|m| m.destination == "/dev/pts") {
                Some(i) => after = after.max(i + 1),
                None => {
                    mounts.insert(
                        after,
                        default_mount(MountKind::Devpts, "devpts", "/dev/pts", &PTS_OPTS)?,
                    );
                    after += 1;
                }
            }
            if !mounts.iter().any(|m| m.destination == "/dev/shm") {
                mounts.insert(
                    after,
                    default_mount(MountKind::Tmpfs, "shm", "/dev/shm", &SHM_OPTS)?,
                );
            }
        }

        let mut ops: Vec<RootOp> = mounts.into_iter().map(RootOp::Mount).collect();
        if setup_dev {
            let mut devices: Vec<DeviceNode> = DEFAULT_DEVICES
                .iter()
                .map(|&(name, major, minor)| DeviceNode {
                    path: format!("/dev/{name}"),
                    kind: DeviceKind::Char,
                    major,
                    minor,
                    mode: 0o666,
                    uid: 0,
                    gid: 0,
                })
                .collect();
            for d in linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]) {
                let node = device_node(d)?;
                match devices.iter_mut().find(|x| x.path == node.path) {
                    Some(existing) => *existing = node,
                    None => devices.push(node),
                }
            }
            ops.extend(devices.into_iter().map(RootOp::Device));
            for (path, target, replace) in DEV_SYMLINKS {
                ops.push(RootOp::Symlink(DevSymlink {
                    path: path.to_string(),
                    target: target.to_string(),
                    replace,
                }));
            }
        }

        let ns = namespaces(spec);
        let mut sysctls = Vec::new();
        let sorted: BTreeMap<&String, &String> = linux
            .and_then(|l| l.sysctl().as_ref())
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        for (k, v) in sorted {
            sysctls.push(sysctl::validate(k, v, ns)?);
        }

        let paths =
            |what: &'static str, list: Option<&Vec<String>>| -> Result<Vec<String>, PlanError> {
                let mut out = Vec::new();
                for p in list.map(Vec::as_slice).unwrap_or(&[]) {
                    let n = normalize(what, p)?;
                    if n == "/" {
                        return Err(PlanError::MountOnRoot(p.clone()));
                    }
                    out.push(n);
                }
                Ok(out)
            };
        let masked_paths = paths("masked path", linux.and_then(|l| l.masked_paths().as_ref()))?;
        let readonly_paths = paths(
            "readonly path",
            linux.and_then(|l| l.readonly_paths().as_ref()),
        )?;

        Ok(MountPlan {
            root,
            readonly: root_cfg.readonly().unwrap_or(false),
            rootfs_propagation,
            ops,
            setup_dev,
            dev_readonly,
            sysctls,
            masked_paths,
            readonly_paths,
        })
    }
}

const DEV_OPTS: [&str; 4] = ["nosuid", "strictatime", "mode=755", "size=65536k"];
const PTS_OPTS: [&str; 6] = [
    "nosuid",
    "noexec",
    "newinstance",
    "ptmxmode=0666",
    "mode=0620",
    "gid=5",
];
const SHM_OPTS: [&str; 5] = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"];

/// The devices every container gets: `(name, major, minor)`, char devices, mode 0666.
pub const DEFAULT_DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const DEV_SYMLINKS: [(&str, &str, bool); 5] = [
    ("/dev/fd", "/proc/self/fd", false),
    ("/dev/stdin", "/proc/self/fd/0", false),
    ("/dev/stdout", "/proc/self/fd/1", false),
    ("/dev/stderr", "/proc/self/fd/2", false),
    ("/dev/ptmx", "pts/ptmx", true),
];

fn default_mount(
    kind: MountKind,
    source: &str,
    dest: &str,
    opts: &[&str],
) -> Result<MountOp, PlanError> {
    let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    let (flags, data) = parse_options(dest, &opts)?;
    Ok(MountOp {
        kind,
        source: Some(PathBuf::from(source)),
        destination: dest.to_string(),
        flags,
        data,
    })
}

fn namespaces(spec: &Spec) -> SysctlNamespaces {
    let mut ns = SysctlNamespaces::default();
    for n in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
    {
        match n.typ() {
            LinuxNamespaceType::Ipc => ns.ipc = true,
            LinuxNamespaceType::Network => ns.net = true,
            LinuxNamespaceType::Uts => ns.uts = true,
            _ => {}
        }
    }
    ns
}

fn mount_op(m: &Mount, bundle: &Path) -> Result<MountOp, PlanError> {
    let destination = normalize(
        "mount destination",
        path_str("mount destination", m.destination())?,
    )?;
    if destination == "/" {
        return Err(PlanError::MountOnRoot(destination));
    }
    let (mut flags, data) = parse_options(&destination, m.options().as_deref().unwrap_or(&[]))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let kind = if flags.remount {
        // A remount changes the attributes of what is already mounted there: no source, and
        // `bind` in its options (as in `remount,bind,ro`) does not make it a new bind mount.
        MountKind::Other(if typ == "bind" || typ == "none" {
            String::new()
        } else {
            typ.to_string()
        })
    } else if typ == "bind" || flags.bind.is_some() {
        MountKind::Bind {
            recursive: flags.bind.unwrap_or(false),
        }
    } else {
        match typ {
            "" | "none" if !flags.remount => return Err(PlanError::NoType(destination)),
            "" | "none" => MountKind::Other(String::new()),
            "tmpfs" => MountKind::Tmpfs,
            "proc" => MountKind::Proc,
            "sysfs" => MountKind::Sysfs,
            "devpts" => MountKind::Devpts,
            "mqueue" => MountKind::Mqueue,
            "cgroup" | "cgroup2" => MountKind::Cgroup2,
            other => MountKind::Other(other.to_string()),
        }
    };
    if kind == MountKind::Cgroup2 {
        let explicit_rw = flags.attrs.clear & ATTR_RDONLY != 0;
        if !explicit_rw {
            flags.attrs = MountAttrs {
                set: flags.attrs.set | ATTR_RDONLY,
                clear: flags.attrs.clear,
            };
        }
    }
    let source = match (&kind, m.source()) {
        (MountKind::Bind { .. }, None) => return Err(PlanError::BindWithoutSource(destination)),
        (MountKind::Bind { .. }, Some(s)) if s.as_os_str().is_empty() => {
            return Err(PlanError::BindWithoutSource(destination))
        }
        (MountKind::Bind { .. }, Some(s)) if s.is_relative() => Some(bundle.join(s)),
        (_, s) => s.clone(),
    };
    Ok(MountOp {
        kind,
        source,
        destination,
        flags,
        data,
    })
}

fn device_node(d: &oci_spec::runtime::LinuxDevice) -> Result<DeviceNode, PlanError> {
    let path = normalize("device path", path_str("device path", d.path())?)?;
    if !path.starts_with("/dev/") {
        return Err(PlanError::DeviceOutsideDev(path));
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
        LinuxDeviceType::B => DeviceKind::Block,
        LinuxDeviceType::P => DeviceKind::Fifo,
        LinuxDeviceType::A => {
            return Err(PlanError::DeviceType {
                path,
                typ: "a".into(),
            })
        }
    };
    let (major, minor) = (d.major(), d.minor());
    let range = |n: i64, max: i64| (0..=max).contains(&n);
    if !range(major, 0xfff) || !range(minor, 0xf_ffff) {
        return Err(PlanError::DeviceNumber { path, major, minor });
    }
    Ok(DeviceNode {
        path,
        kind,
        major: major as u32,
        minor: minor as u32,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

fn path_str<'a>(what: &'static str, p: &'a Path) -> Result<&'a str, PlanError> {
    p.to_str().ok_or_else(|| PlanError::BadPath {
        what,
        path: p.to_string_lossy().into_owned(),
    })
}

/// Normalize an absolute container path: drop `.` and empty components, resolve `..`
/// lexically; a `..` that would climb above `/` is an error, as is a relative path.
pub fn normalize(what: &'static str, p: &str) -> Result<String, PlanError> {
    if p.contains('\0') {
        return Err(PlanError::BadPath {
            what,
            path: p.to_string(),
        });
    }
    if !p.starts_with('/') {
        return Err(PlanError::NotAbsolute {
            what,
            path: p.to_string(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PlanError::Escapes {
                        what,
                        path: p.to_string(),
                    });
                }
            }
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::*;

    /// `runc spec` output (runc 1.1), trimmed of process/hostname.
    const RUNC_SPEC: &str = r#"{
      "ociVersion": "1.0.2-dev",
      "root": {"path": "rootfs", "readonly": true},
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
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
      ],
      "linux": {
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                       {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
          "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
      }
    }"#;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    fn plan(json: &str) -> Result<MountPlan, PlanError> {
        MountPlan::from_spec(&spec(json), Path::new("/bundle"))
    }

    fn with_mounts(mounts: &str) -> String {
        format!(r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"mounts":{mounts}}}"#)
    }

    fn fs(kind: MountKind, source: &str, dest: &str, set: u64, clear: u64, data: &str) -> RootOp {
        RootOp::Mount(MountOp {
            kind,
            source: Some(PathBuf::from(source)),
            destination: dest.into(),
            flags: MountFlags {
                attrs: MountAttrs { set, clear },
                ..MountFlags::default()
            },
            data: data.into(),
        })
    }

    fn dev(name: &str, major: u32, minor: u32) -> RootOp {
        RootOp::Device(DeviceNode {
            path: format!("/dev/{name}"),
            kind: DeviceKind::Char,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
    }

    fn link(path: &str, target: &str, replace: bool) -> RootOp {
        RootOp::Symlink(DevSymlink {
            path: path.into(),
            target: target.into(),
            replace,
        })
    }

    fn destinations(p: &MountPlan) -> Vec<&str> {
        p.mounts().map(|m| m.destination.as_str()).collect()
    }

    #[test]
    fn runc_spec_gives_the_expected_ordered_ops() {
        let p = plan(RUNC_SPEC).unwrap();
        let nsd = ATTR_NOSUID | ATTR_NOEXEC | ATTR_NODEV;
        let expected = vec![
            fs(MountKind::Proc, "proc", "/proc", 0, 0, ""),
            fs(
                MountKind::Tmpfs,
                "tmpfs",
                "/dev",
                ATTR_NOSUID | ATTR_STRICTATIME,
                ATTR_ATIME_MASK,
                "mode=755,size=65536k",
            ),
            fs(
                MountKind::Devpts,
                "devpts",
                "/dev/pts",
                ATTR_NOSUID | ATTR_NOEXEC,
                0,
                "newinstance,ptmxmode=0666,mode=0620,gid=5",
            ),
            fs(
                MountKind::Tmpfs,
                "shm",
                "/dev/shm",
                nsd,
                0,
                "mode=1777,size=65536k",
            ),
            fs(MountKind::Mqueue, "mqueue", "/dev/mqueue", nsd, 0, ""),
            fs(MountKind::Sysfs, "sysfs", "/sys", nsd | ATTR_RDONLY, 0, ""),
            fs(
                MountKind::Cgroup2,
                "cgroup",
                "/sys/fs/cgroup",
                nsd | ATTR_RELATIME | ATTR_RDONLY,
                ATTR_ATIME_MASK,
                "",
            ),
            dev("null", 1, 3),
            dev("zero", 1, 5),
            dev("full", 1, 7),
            dev("random", 1, 8),
            dev("urandom", 1, 9),
            dev("tty", 5, 0),
            link("/dev/fd", "/proc/self/fd", false),
            link("/dev/stdin", "/proc/self/fd/0", false),
            link("/dev/stdout", "/proc/self/fd/1", false),
            link("/dev/stderr", "/proc/self/fd/2", false),
            link("/dev/ptmx", "pts/ptmx", true),
        ];
        assert_eq!(p.ops, expected);
        assert_eq!(p.root, PathBuf::from("/bundle/rootfs"));
        assert!(p.readonly);
        assert!(p.setup_dev);
        assert!(!p.dev_readonly);
        assert_eq!(p.rootfs_propagation, None);
        assert_eq!(p.root_propagation(), Propagation::RSLAVE);
        assert_eq!(p.masked_paths.len(), 10);
        assert_eq!(p.masked_paths[0], "/proc/acpi");
        assert_eq!(
            p.readonly_paths,
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        );
        assert!(p.sysctls.is_empty());
    }

    #[test]
    fn oci_spec_default_is_accepted() {
        let p = MountPlan::from_spec(&Spec::default(), Path::new("/b")).unwrap();
        assert_eq!(destinations(&p)[..2], ["/proc", "/dev"]);
        assert!(p.setup_dev);
    }

    #[test]
    fn minimal_dev_is_added_when_missing() {
        let p = plan(&with_mounts(
            r#"[{"destination":"/proc","type":"proc","source":"proc"}]"#,
        ))
        .unwrap();
        assert_eq!(destinations(&p), ["/proc", "/dev", "/dev/pts", "/dev/shm"]);
        let devm = p.mounts().nth(1).unwrap();
        assert_eq!(devm.kind, MountKind::Tmpfs);
        assert!(devm.flags.attrs.set & ATTR_NOSUID != 0);
        assert!(devm.data.contains("mode=755"));
        let pts = p.mounts().nth(2).unwrap();
        assert_eq!(pts.kind, MountKind::Devpts);
        assert_eq!(pts.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
        assert_eq!(
            p.ops
                .iter()
                .filter(|o| matches!(o, RootOp::Device(_)))
                .count(),
            6
        );
        assert_eq!(
            p.ops
                .iter()
                .filter(|o| matches!(o, RootOp::Symlink(_)))
                .count(),
            5
        );
        // Devices come after every mount.
        let first_dev = p
            .ops
            .iter()
            .position(|o| matches!(o, RootOp::Device(_)))
            .unwrap();
        assert!(p.ops[first_dev..]
            .iter()
            .all(|o| !matches!(o, RootOp::Mount(_))));
    }

    #[test]
    fn implicit_dev_goes_before_mounts_under_dev() {
        let p = plan(&with_mounts(
            r#"[{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue"},
                {"destination":"/proc","type":"proc","source":"proc"}]"#,
        ))
        .unwrap();
        assert_eq!(
            destinations(&p),
            ["/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/proc"]
        );
        // The spec's own /dev/pts is kept and not duplicated; /dev/shm follows it.
        let p = plan(&with_mounts(
            r#"[{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["ro"]},
                {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["gid=0"]}]"#,
        ))
        .unwrap();
        assert_eq!(destinations(&p), ["/dev", "/dev/pts", "/dev/shm"]);
        assert_eq!(p.mounts().nth(1).unwrap().data, "gid=0");
        // A read-only /dev is mounted rw (nodes go in it) and made read-only in finalize.
        assert!(p.dev_readonly);
        assert!(!p.mounts().next().unwrap().flags.attrs.readonly());
    }

    #[test]
    fn bind_mounted_dev_gets_no_nodes() {
        let p = plan(&with_mounts(
            r#"[{"destination":"/dev","type":"bind","source":"/dev","options":["rbind"]}]"#,
        ))
        .unwrap();
        assert!(!p.setup_dev);
        assert_eq!(destinations(&p), ["/dev"]);
        assert_eq!(p.ops.len(), 1);
    }

    #[test]
    fn spec_devices_extend_and_override_defaults() {
        let json = r#"{"ociVersion":"1.0.2","root":{"path":"/abs/root"},"linux":{"devices":[
            {"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":420,"uid":1,"gid":2},
            {"path":"/dev/fuse","type":"c","major":10,"minor":229},
            {"path":"/dev/loop0","type":"b","major":7,"minor":0},
            {"path":"/dev/x/../pipe","type":"p"}]}}"#;
        let p = plan(json).unwrap();
        assert_eq!(p.root, PathBuf::from("/abs/root"));
        let devs: Vec<&DeviceNode> = p
            .ops
            .iter()
            .filter_map(|o| match o {
                RootOp::Device(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(devs.len(), 9);
        assert_eq!(devs[0].path, "/dev/null");
        assert_eq!((devs[0].mode, devs[0].uid, devs[0].gid), (0o644, 1, 2));
        assert_eq!(
            (devs[6].path.as_str(), devs[6].major, devs[6].minor),
            ("/dev/fuse", 10, 229)
        );
        assert_eq!(devs[7].kind, DeviceKind::Block);
        assert_eq!(
            (devs[8].path.as_str(), devs[8].kind),
            ("/dev/pipe", DeviceKind::Fifo)
        );

        let bad = |d: &str| {
            plan(&format!(
                r#"{{"ociVersion":"1.0.2","root":{{"path":"r"}},"linux":{{"devices":[{d}]}}}}"#
            ))
        };
        assert!(matches!(
            bad(r#"{"path":"/etc/null","type":"c","major":1,"minor":3}"#),
            Err(PlanError::DeviceOutsideDev(_))
        ));
        assert!(matches!(
            bad(r#"{"path":"/dev/../etc/x","type":"c","major":1,"minor":3}"#),
            Err(PlanError::DeviceOutsideDev(_))
        ));
        assert!(matches!(
            bad(r#"{"path":"/dev/a","type":"a","major":1,"minor":3}"#),
            Err(PlanError::DeviceType { .. })
        ));
        assert!(matches!(
            bad(r#"{"path":"/dev/a","type":"c","major":-1,"minor":3}"#),
            Err(PlanError::DeviceNumber { .. })
        ));
    }

    #[test]
    fn destinations_are_normalized_and_escapes_refused() {
        assert_eq!(normalize("d", "/a/./b//c/").unwrap(), "/a/b/c");
        assert_eq!(normalize("d", "/a/b/../c").unwrap(), "/a/c");
        assert_eq!(normalize("d", "/").unwrap(), "/");
        assert!(matches!(
            normalize("d", "/a/../../etc"),
            Err(PlanError::Escapes { .. })
        ));
        assert!(matches!(
            normalize("d", "/.."),
            Err(PlanError::Escapes { .. })
        ));
        assert!(matches!(
            normalize("d", "a/b"),
            Err(PlanError::NotAbsolute { .. })
        ));
        assert!(matches!(
            normalize("d", ""),
            Err(PlanError::NotAbsolute { .. })
        ));
        assert!(matches!(
            normalize("d", "/a\0b"),
            Err(PlanError::BadPath { .. })
        ));

        let p = plan(&with_mounts(
            r#"[{"destination":"/mnt/./x/../y/","type":"tmpfs","source":"tmpfs"}]"#,
        ))
        .unwrap();
        assert_eq!(destinations(&p)[0], "/mnt/y");
        let e = plan(&with_mounts(
            r#"[{"destination":"/mnt/../../etc","type":"tmpfs"}]"#,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("climbs out"), "{e}");
        let e = plan(&with_mounts(r#"[{"destination":"mnt","type":"tmpfs"}]"#)).unwrap_err();
        assert!(matches!(e, PlanError::NotAbsolute { .. }));
        let e = plan(&with_mounts(r#"[{"destination":"/x/..","type":"tmpfs"}]"#)).unwrap_err();
        assert!(matches!(e, PlanError::MountOnRoot(_)));
        let e = plan(r#"{"ociVersion":"1","root":{"path":"r"},"linux":{"maskedPaths":["/proc/../../kcore"]}}"#)
            .unwrap_err();
        assert!(matches!(
            e,
            PlanError::Escapes {
                what: "masked path",
                ..
            }
        ));
        let e = plan(
            r#"{"ociVersion":"1","root":{"path":"r"},"linux":{"readonlyPaths":["proc/sys"]}}"#,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            PlanError::NotAbsolute {
                what: "readonly path",
                ..
            }
        ));
    }

    #[test]
    fn bind_sources_resolve_against_the_bundle() {
        let p = plan(&with_mounts(
            r#"[{"destination":"/data","type":"none","source":"volumes/data","options":["rbind","ro"]},
                {"destination":"/etc/resolv.conf","type":"bind","source":"/etc/resolv.conf"},
                {"destination":"/cfg","source":"./cfg","options":["bind","rro","rprivate"]}]"#,
        ))
        .unwrap();
        let m: Vec<&MountOp> = p.mounts().collect();
        assert_eq!(m[0].kind, MountKind::Bind { recursive: true });
        assert_eq!(m[0].source, Some(PathBuf::from("/bundle/volumes/data")));
        assert!(m[0].flags.attrs.readonly());
        assert_eq!(m[1].kind, MountKind::Bind { recursive: false });
        assert_eq!(m[1].source, Some(PathBuf::from("/etc/resolv.conf")));
        assert_eq!(m[2].source, Some(PathBuf::from("/bundle/./cfg")));
        assert_eq!(m[2].flags.recursive_attrs.set, ATTR_RDONLY);
        assert_eq!(m[2].flags.propagation, Propagation::parse("rprivate"));
        let e = plan(&with_mounts(r#"[{"destination":"/d","type":"bind"}]"#)).unwrap_err();
        assert!(matches!(e, PlanError::BindWithoutSource(_)));
        // remount,bind,ro: a remount of what is there, not a bind without source.
        let p = plan(&with_mounts(
            r#"[{"destination":"/d","type":"bind","options":["remount","bind","ro"]}]"#,
        ))
        .unwrap();
        let m = p.mounts().next().unwrap();
        assert!(m.flags.remount && m.flags.attrs.readonly());
        assert_eq!(
            (m.kind.clone(), m.source.clone()),
            (MountKind::Other(String::new()), None)
        );
        let e = plan(&with_mounts(r#"[{"destination":"/d","source":"x"}]"#)).unwrap_err();
        assert!(matches!(e, PlanError::NoType(_)));
    }

    #[test]
    fn cgroup_is_read_only_unless_explicitly_rw() {
        let p = plan(&with_mounts(
            r#"[{"destination":"/sys/fs/cgroup","type":"cgroup2","source":"cgroup"}]"#,
        ))
        .unwrap();
        let m = p.mounts().next().unwrap();
        assert_eq!(m.kind, MountKind::Cgroup2);
        assert!(m.flags.attrs.readonly());
        let mut hidden = p.clone();
        hidden.hide_cgroupfs();
        let hm = hidden
            .ops
            .iter()
            .find_map(|op| match op {
                RootOp::Mount(m) if m.destination == "/sys/fs/cgroup" => Some(m),
                _ => None,
            })
            .expect("cgroup mount still planned");
        assert_eq!(hm.kind, MountKind::Tmpfs);
        assert!(hm.flags.attrs.readonly());
        let p = plan(&with_mounts(
            r#"[{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["rw"]}]"#,
        ))
        .unwrap();
        assert!(!p.mounts().next().unwrap().flags.attrs.readonly());
    }

    #[test]
    fn rootfs_propagation() {
        let j = |p: &str| {
            format!(
                r#"{{"ociVersion":"1","root":{{"path":"r"}},"linux":{{"rootfsPropagation":"{p}"}}}}"#
            )
        };
        let p = plan(&j("rshared")).unwrap();
        assert_eq!(
            p.rootfs_propagation,
            Some(Propagation {
                kind: PropagationKind::Shared,
                recursive: true
            })
        );
        assert_eq!(
            p.root_propagation().ms_flags(),
            libc::MS_SHARED | libc::MS_REC
        );
        let p = plan(&j("private")).unwrap();
        assert_eq!(p.root_propagation().ms_flags(), libc::MS_PRIVATE);
        assert!(matches!(
            plan(&j("sharedd")),
            Err(PlanError::BadPropagation(_))
        ));
    }

    #[test]
    fn sysctls_are_validated_against_namespaces() {
        let j = |ns: &str, key: &str| {
            format!(
                r#"{{"ociVersion":"1","root":{{"path":"r"}},"linux":{{"namespaces":[{ns}],"sysctl":{{"{key}":"1"}}}}}}"#
            )
        };
        let p = plan(&j(r#"{"type":"network"}"#, "net.ipv4.ip_forward")).unwrap();
        assert_eq!(
            p.sysctls,
            vec![Sysctl {
                key: "net.ipv4.ip_forward".into(),
                value: "1".into()
            }]
        );
        let e = plan(&j(r#"{"type":"ipc"}"#, "net.ipv4.ip_forward")).unwrap_err();
        assert!(e.to_string().contains("net.ipv4.ip_forward"), "{e}");
        assert!(plan(&j(r#"{"type":"ipc"}"#, "kernel.shmmax")).is_ok());
        assert!(plan(&j(r#"{"type":"network"}"#, "kernel.shmmax")).is_err());
        assert!(plan(&j(r#"{"type":"uts"}"#, "kernel.hostname")).is_ok());
        let e = plan(&j(
            r#"{"type":"network"},{"type":"ipc"},{"type":"uts"}"#,
            "kernel.core_pattern",
        ))
        .unwrap_err();
        assert!(matches!(e, PlanError::Sysctl { ref key, .. } if key == "kernel.core_pattern"));
    }

    #[test]
    fn no_root_is_an_error() {
        assert_eq!(
            plan(r#"{"ociVersion":"1"}"#).unwrap_err(),
            PlanError::NoRoot
        );
    }
}
