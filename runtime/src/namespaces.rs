//! Linux namespaces: which ones a sandbox gets fresh (clone flags), which it joins by path (setns),
//! and the user namespace id mappings.
//!
//! The plan ([`NamespacePlan`]) is plain data built from `linux.namespaces`; [`JoinFds`] opens the
//! paths to join in the parent, before clone, so that paths resolve in the host's view.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

/// Errors of namespace planning and joining.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespace {kind} is listed twice in linux.namespaces")]
    Duplicate { kind: &'static str },
    #[error("open namespace {kind} at {path}: {source}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setns({kind}) from {path}: {errno}")]
    Setns {
        kind: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("write {path}: {source}")]
    WriteMap {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("linux.uidMappings/gidMappings are set but no new user namespace is requested")]
    MappingsWithoutUserns,
    #[error("a new user namespace needs both linux.uidMappings and linux.gidMappings")]
    UsernsWithoutMappings,
}

/// One namespace kind, with its clone flag and its name under `/proc/<pid>/ns/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Pid,
    Mount,
    Network,
    Uts,
    Ipc,
    Cgroup,
    Time,
}

impl Kind {
    /// All kinds, in the order runc joins them: user first (it grants the capabilities needed
    /// for the others), mount last (it changes how later paths would resolve).
    pub const JOIN_ORDER: [Kind; 8] = [
        Kind::User,
        Kind::Ipc,
        Kind::Uts,
        Kind::Network,
        Kind::Pid,
        Kind::Cgroup,
        Kind::Time,
        Kind::Mount,
    ];

    pub fn from_oci(t: LinuxNamespaceType) -> Kind {
        match t {
            LinuxNamespaceType::User => Kind::User,
            LinuxNamespaceType::Pid => Kind::Pid,
            LinuxNamespaceType::Mount => Kind::Mount,
            LinuxNamespaceType::Network => Kind::Network,
            LinuxNamespaceType::Uts => Kind::Uts,
            LinuxNamespaceType::Ipc => Kind::Ipc,
            LinuxNamespaceType::Cgroup => Kind::Cgroup,
            LinuxNamespaceType::Time => Kind::Time,
        }
    }

    pub fn clone_flag(self) -> CloneFlags {
        match self {
            Kind::User => CloneFlags::CLONE_NEWUSER,
            Kind::Pid => CloneFlags::CLONE_NEWPID,
            Kind::Mount => CloneFlags::CLONE_NEWNS,
            Kind::Network => CloneFlags::CLONE_NEWNET,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // nix 0.29 has no CLONE_NEWTIME constant.
            Kind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        }
    }

    /// The file name under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Pid => "pid",
            Kind::Mount => "mnt",
            Kind::Network => "net",
            Kind::Uts => "uts",
            Kind::Ipc => "ipc",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
        }
    }
}

/// A contiguous id mapping (`uid_map`/`gid_map` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl From<&LinuxIdMapping> for IdMap {
    fn from(m: &LinuxIdMapping) -> Self {
        IdMap {
            container_id: m.container_id(),
            host_id: m.host_id(),
            size: m.size(),
        }
    }
}

/// Render mappings in the kernel's `uid_map` format.
pub fn render_id_map(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Map a container id to the host id through `maps`, if it is mapped.
pub fn map_to_host(maps: &[IdMap], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let off = id.checked_sub(m.container_id)?;
        (off < m.size).then(|| m.host_id + off)
    })
}

/// What the sandbox gets: fresh namespaces (clone flags) and namespaces joined by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespacePlan {
    /// Kinds created fresh by clone3.
    pub new: Vec<Kind>,
    /// Kinds joined from an existing namespace file.
    pub join: Vec<(Kind, PathBuf)>,
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
}

impl NamespacePlan {
    pub fn from_spec(spec: &Spec) -> Result<Self, NamespaceError> {
        let mut plan = NamespacePlan::default();
        let linux = spec.linux().as_ref();
        for ns in linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
        {
            let kind = Kind::from_oci(ns.typ());
            if plan.has(kind) {
                return Err(NamespaceError::Duplicate {
                    kind: kind.proc_name(),
                });
            }
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => plan.join.push((kind, p.clone())),
                _ => plan.new.push(kind),
            }
        }
        if let Some(l) = linux {
            plan.uid_map = l.uid_mappings().iter().flatten().map(IdMap::from).collect();
            plan.gid_map = l.gid_mappings().iter().flatten().map(IdMap::from).collect();
        }
        let has_maps = !plan.uid_map.is_empty() || !plan.gid_map.is_empty();
        if plan.is_new(Kind::User) {
            if plan.uid_map.is_empty() || plan.gid_map.is_empty() {
                return Err(NamespaceError::UsernsWithoutMappings);
            }
        } else if has_maps && !plan.joins(Kind::User) {
            return Err(NamespaceError::MappingsWithoutUserns);
        }
        // Join in the safe order.
        plan.join.sort_by_key(|(k, _)| {
            Kind::JOIN_ORDER
                .iter()
                .position(|o| o == k)
                .unwrap_or(usize::MAX)
        });
        Ok(plan)
    }

    pub fn has(&self, kind: Kind) -> bool {
        self.is_new(kind) || self.joins(kind)
    }

    pub fn is_new(&self, kind: Kind) -> bool {
        self.new.contains(&kind)
    }

    pub fn joins(&self, kind: Kind) -> bool {
        self.join_path(kind).is_some()
    }

    /// The namespace file joined for `kind`, if any.
    pub fn join_path(&self, kind: Kind) -> Option<&Path> {
        self.join
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_path())
    }

    /// Clone flags for clone3. Time namespaces are entered through `unshare` in the parent
    /// (their offsets must be written before any process lives in them), so they are not here.
    pub fn clone_flags(&self) -> CloneFlags {
        self.new
            .iter()
            .filter(|k| **k != Kind::Time)
            .fold(CloneFlags::empty(), |acc, k| acc | k.clone_flag())
    }

    /// Open every namespace to join (in the parent, before clone).
    pub fn open_joins(&self) -> Result<JoinFds, NamespaceError> {
        let mut fds = Vec::with_capacity(self.join.len());
        for (kind, path) in &self.join {
            let f = File::open(path).map_err(|source| NamespaceError::Open {
                kind: kind.proc_name(),
                path: path.clone(),
                source,
            })?;
            fds.push((*kind, path.clone(), OwnedFd::from(f)));
        }
        Ok(JoinFds { fds })
    }
}

/// Open namespace files to join, in join order.
#[derive(Debug)]
pub struct JoinFds {
    fds: Vec<(Kind, PathBuf, OwnedFd)>,
}

impl JoinFds {
    /// Join the namespaces selected by `pick`.
    pub fn join_where(&self, pick: impl Fn(Kind) -> bool) -> Result<(), NamespaceError> {
        for (kind, path, fd) in &self.fds {
            if !pick(*kind) {
                continue;
            }
            nix::sched::setns(fd.as_fd(), kind.clone_flag()).map_err(|errno| {
                NamespaceError::Setns {
                    kind: kind.proc_name(),
                    path: path.clone(),
                    errno,
                }
            })?;
        }
        Ok(())
    }

    /// Enter the joined pid and time namespaces: they apply to the children of the caller, so the
    /// runtime enters them before clone.
    pub fn enter_for_children(&self) -> Result<(), NamespaceError> {
        self.join_where(|k| matches!(k, Kind::Pid | Kind::Time))
    }

    pub fn raw_fds(&self) -> Vec<i32> {
        self.fds.iter().map(|(_, _, fd)| fd.as_raw_fd()).collect()
    }
}

/// The pid and time namespaces this process's children are born into, saved before
/// [`JoinFds::enter_for_children`] or [`unshare_time`] change them, so that the processes the
/// runtime itself starts afterwards (createRuntime hooks) run in the runtime's namespaces.
pub struct ChildrenNs {
    fds: Vec<(Kind, OwnedFd)>,
}

impl ChildrenNs {
    pub fn save() -> Result<Self, NamespaceError> {
        let mut fds = Vec::new();
        for kind in [Kind::Pid, Kind::Time] {
            let path = PathBuf::from("/proc/self/ns").join(kind.proc_name());
            match File::open(&path) {
                Ok(f) => fds.push((kind, OwnedFd::from(f))),
                // A kernel without time namespaces has no such file: nothing to restore.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(NamespaceError::Open {
                        kind: kind.proc_name(),
                        path,
                        source,
                    })
                }
            }
        }
        Ok(ChildrenNs { fds })
    }

    pub fn restore(&self) -> Result<(), NamespaceError> {
        for (kind, fd) in &self.fds {
            nix::sched::setns(fd, kind.clone_flag()).map_err(|errno| NamespaceError::Setns {
                kind: kind.proc_name(),
                path: PathBuf::from("/proc/self/ns").join(kind.proc_name()),
                errno,
            })?;
        }
        Ok(())
    }
}

/// Write the id maps of a child in a new user namespace. `setgroups` is set to "deny" before
/// `gid_map` unless the process needs supplementary groups (CVE-2014-8989: a process must not be
/// able to drop groups that deny it access).
pub fn write_id_maps(
    pid: i32,
    uid_map: &[IdMap],
    gid_map: &[IdMap],
    deny_setgroups: bool,
) -> Result<(), NamespaceError> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let write = |name: &str, data: &str| -> Result<(), NamespaceError> {
        let path = proc.join(name);
        std::fs::write(&path, data.as_bytes())
            .map_err(|source| NamespaceError::WriteMap { path, source })
    };
    write("uid_map", &render_id_map(uid_map))?;
    if deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("gid_map", &render_id_map(gid_map))
}

/// Create a new time namespace for the children of this process and set its offsets
/// (`linux.timeOffsets`: monotonic and boottime, seconds and nanoseconds).
pub fn unshare_time(offsets: &[(&str, i64, u32)]) -> Result<(), NamespaceError> {
    nix::sched::unshare(Kind::Time.clone_flag()).map_err(|errno| NamespaceError::Setns {
        kind: "time",
        path: PathBuf::from("unshare(CLONE_NEWTIME)"),
        errno,
    })?;
    if offsets.is_empty() {
        return Ok(());
    }
    let data: String = offsets
        .iter()
        .map(|(clock, secs, nanos)| format!("{clock} {secs} {nanos}\n"))
        .collect();
    let path = Path::new("/proc/self/timens_offsets").to_path_buf();
    std::fs::write(&path, data).map_err(|source| NamespaceError::WriteMap { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).expect("spec json")
    }

    #[test]
    fn new_and_joined_namespaces_are_split_and_ordered() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[
            {"type":"mount"},{"type":"network","path":"/proc/1/ns/net"},
            {"type":"pid"},{"type":"user","path":"/proc/1/ns/user"}]}}"#,
        );
        let p = NamespacePlan::from_spec(&s).expect("plan");
        assert_eq!(p.new, vec![Kind::Mount, Kind::Pid]);
        assert_eq!(p.join[0].0, Kind::User, "user namespace is joined first");
        assert_eq!(p.join[1].0, Kind::Network);
        assert_eq!(
            p.clone_flags(),
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID
        );
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#,
        );
        assert!(matches!(
            NamespacePlan::from_spec(&s),
            Err(NamespaceError::Duplicate { kind: "pid" })
        ));
    }

    #[test]
    fn userns_requires_mappings_and_mappings_require_userns() {
        let s = spec(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"user"}]}}"#);
        assert!(matches!(
            NamespacePlan::from_spec(&s),
            Err(NamespaceError::UsernsWithoutMappings)
        ));
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"}],
            "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
            "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}"#,
        );
        assert!(matches!(
            NamespacePlan::from_spec(&s),
            Err(NamespaceError::MappingsWithoutUserns)
        ));
    }

    #[test]
    fn time_namespace_is_not_a_clone_flag() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"time"},{"type":"uts"}]}}"#,
        );
        let p = NamespacePlan::from_spec(&s).expect("plan");
        assert!(p.is_new(Kind::Time));
        assert_eq!(p.clone_flags(), CloneFlags::CLONE_NEWUTS);
    }

    #[test]
    fn id_maps_render_and_translate() {
        let maps = [
            IdMap {
                container_id: 0,
                host_id: 100000,
                size: 1000,
            },
            IdMap {
                container_id: 1000,
                host_id: 200000,
                size: 10,
            },
        ];
        assert_eq!(render_id_map(&maps), "0 100000 1000\n1000 200000 10\n");
        assert_eq!(map_to_host(&maps, 0), Some(100000));
        assert_eq!(map_to_host(&maps, 999), Some(100999));
        assert_eq!(map_to_host(&maps, 1005), Some(200005));
        assert_eq!(map_to_host(&maps, 1010), None);
    }
}
