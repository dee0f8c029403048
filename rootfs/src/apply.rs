//! The thin layer that applies a [`MountPlan`]: `prepare_root` (before pivot_root), `pivot`,
//! `finalize` (after pivot_root). Everything that touches the container root goes through the
//! root's dirfd and `safe_path`; every mount is attached onto a resolved fd.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::mount::{MountPropagationFlags, UnmountFlags};

use crate::error::{nix_errno, MountError};
use crate::options::{MountAttrs, Propagation, ATTR_RDONLY};
use crate::plan::{MountKind, MountOp, MountPlan, RootOp};
use crate::safe_path::{self, file_type, open_in_root, verify_inside};
use crate::{dev, mask, mount_api, mountinfo, sysctl};

/// The prepared root: a dirfd of the root's own bind mount, for `pivot`.
#[derive(Debug)]
pub struct RootFs {
    fd: OwnedFd,
    path: PathBuf,
    propagation: Option<Propagation>,
    /// Mounts whose options set a propagation, with their mount fds: applied again after the
    /// root's own propagation in `pivot`, so `rshared` on the root does not override them.
    mount_propagation: Vec<(OwnedFd, Propagation, String)>,
}

impl RootFs {
    /// The root's dirfd (O_PATH, the root of its bind mount).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The canonical host path of the root.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn propagation_flags(p: Propagation) -> MountPropagationFlags {
    MountPropagationFlags::from_bits_retain(p.ms_flags() as u32)
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Set up the container root in the current (new) mount namespace:
/// 1. `/` gets the plan's propagation (`rslave` by default, recursively), so nothing done here
///    propagates to the host;
/// 2. the root (must be a directory) is resolved, its parent mount made private if shared (so
///    pivot_root accepts it), and it is bind-mounted onto itself recursively;
/// 3. every op of the plan runs in order: mounts (destinations created inside the root),
///    device nodes, /dev symlinks.
pub fn prepare_root(plan: &MountPlan) -> Result<RootFs, MountError> {
    refuse_init_mount_ns()?;
    let prop = plan.root_propagation();
    rustix::mount::mount_change("/", propagation_flags(prop))
        .map_err(|e| MountError::new("propagation", "/", nix_errno(e)))?;

    let shown_root = plan.root.display().to_string();
    let root_path = std::fs::canonicalize(&plan.root)
        .map_err(|e| MountError::new("root", shown_root.as_str(), io_errno(&e)))?;
    let dir = rustix::fs::open(
        &root_path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| MountError::new("root", shown_root.as_str(), nix_errno(e)))?;

    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| MountError::new("root", "/proc/self/mountinfo", io_errno(&e)))?;
    if let Some(parent) = mountinfo::containing(&mountinfo::parse(&mounts), &root_path) {
        if parent.shared {
            rustix::mount::mount_change(&parent.mount_point, MountPropagationFlags::PRIVATE)
                .map_err(|e| {
                    MountError::new(
                        "propagation",
                        parent.mount_point.display().to_string(),
                        nix_errno(e),
                    )
                    .what("private")
                })?;
        }
    }
    let tree = mount_api::clone_tree(dir.as_fd(), true).map_err(|e| {
        MountError::new("mount", shown_root.as_str(), nix_errno(e)).what("root bind")
    })?;
    mount_api::attach(&tree, &dir).map_err(|e| {
        MountError::new("mount", shown_root.as_str(), nix_errno(e)).what("root bind")
    })?;
    drop(dir);
    // `tree` now is the root of the attached bind mount: the root dirfd from here on.
    let mut root = RootFs {
        fd: tree,
        path: root_path,
        propagation: plan.rootfs_propagation,
        mount_propagation: Vec::new(),
    };
    for op in &plan.ops {
        match op {
            RootOp::Mount(m) => {
                if let Some(keep) = mount_one(&root, m)? {
                    root.mount_propagation.push(keep);
                }
            }
            RootOp::Device(d) => dev::create_device(root.fd(), &root.path, d)?,
            RootOp::Symlink(s) => dev::create_symlink(root.fd(), s)?,
        }
    }
    Ok(root)
}

/// Defense in depth: never rework the mount namespace of pid 1 (the host's, when the caller
/// forgot CLONE_NEWNS). When pid 1's namespace cannot be read (e.g. from a user namespace), the
/// caller is certainly not in it.
fn refuse_init_mount_ns() -> Result<(), MountError> {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/proc/self/ns/mnt")
        .map_err(|e| MountError::new("namespace", "/proc/self/ns/mnt", io_errno(&e)))?;
    if let Ok(init) = std::fs::metadata("/proc/1/ns/mnt") {
        if init.dev() == ours.dev() && init.ino() == ours.ino() && std::process::id() != 1 {
            return Err(MountError::new("namespace", "/", Errno::EPERM).because(
                "refusing to prepare a root in pid 1's mount namespace (no CLONE_NEWNS?)",
            ));
        }
    }
    Ok(())
}

fn mount_err(m: &MountOp, e: Errno) -> MountError {
    MountError::new("mount", m.destination.as_str(), e).what(m.kind.fs_type())
}

/// proc and sysfs must land on a real directory: a symlink there (or anything else) is refused
/// (CVE-2019-19921, CVE-2023-27561, CVE-2025-54867).
fn check_ordinary_dir(root: BorrowedFd<'_>, m: &MountOp) -> Result<(), MountError> {
    match open_in_root(
        root,
        &m.destination,
        OFlags::PATH | OFlags::NOFOLLOW,
        ResolveFlags::empty(),
    ) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(mount_err(m, e)),
        Ok(fd) => {
            let (ft, _) = file_type(&fd).map_err(|e| mount_err(m, e))?;
            if ft == FileType::Directory {
                Ok(())
            } else {
                Err(mount_err(m, Errno::ENOTDIR)
                    .because("must be mounted on an ordinary directory"))
            }
        }
    }
}

fn set_attrs_tolerant(fd: BorrowedFd<'_>, recursive: bool, attrs: MountAttrs) -> Result<(), Errno> {
    match mount_api::set_attrs(fd, recursive, attrs, 0) {
        // Locked flags (a mount from a more privileged namespace) cannot be cleared: keep the
        // restricting part, which is always allowed.
        Err(rustix::io::Errno::PERM) => {
            mount_api::set_attrs(fd, recursive, attrs.restricting_only(), 0).map_err(nix_errno)
        }
        r => r.map_err(nix_errno),
    }
}

fn set_propagation(fd: BorrowedFd<'_>, p: Propagation) -> Result<(), Errno> {
    let flags = p.ms_flags() & !libc::MS_REC;
    mount_api::set_attrs(fd, p.recursive, MountAttrs::default(), flags).map_err(nix_errno)
}

/// Perform one mount; returns the mount fd and its propagation when the options set one.
fn mount_one(
    root: &RootFs,
    m: &MountOp,
) -> Result<Option<(OwnedFd, Propagation, String)>, MountError> {
    let rfd = root.fd();
    if m.flags.remount {
        let target = open_in_root(rfd, &m.destination, OFlags::PATH, ResolveFlags::empty())
            .map_err(|e| mount_err(m, e).what("remount"))?;
        verify_inside(&target, &root.path, "mount", &m.destination)?;
        set_attrs_tolerant(target.as_fd(), false, m.flags.attrs)
            .map_err(|e| mount_err(m, e).what("remount"))?;
        set_attrs_tolerant(target.as_fd(), true, m.flags.recursive_attrs)
            .map_err(|e| mount_err(m, e).what("remount"))?;
        if let Some(p) = m.flags.propagation {
            set_propagation(target.as_fd(), p).map_err(|e| mount_err(m, e).what("propagation"))?;
        }
        return Ok(None);
    }
    if matches!(m.kind, MountKind::Proc | MountKind::Sysfs)
        || m.destination == "/proc"
        || m.destination == "/sys"
    {
        check_ordinary_dir(rfd, m)?;
    }
    let (mnt, target) = match &m.kind {
        MountKind::Bind { recursive } => {
            let source = m.source.as_deref().unwrap_or(Path::new(""));
            let bind_err = |e: Errno| {
                MountError::new("mount", m.destination.as_str(), e)
                    .what(format!("bind {}", source.display()))
            };
            let src = rustix::fs::open(source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| bind_err(nix_errno(e)))?;
            let (ft, _) = file_type(&src).map_err(bind_err)?;
            let target = if ft == FileType::Directory {
                safe_path::mkdir_all(rfd, &m.destination, "mount")?
            } else {
                safe_path::create_file(rfd, &m.destination, 0o644, "mount")?
            };
            verify_inside(&target, &root.path, "mount", &m.destination)?;
            let tree = mount_api::clone_tree(src.as_fd(), *recursive)
                .map_err(|e| bind_err(nix_errno(e)))?;
            set_attrs_tolerant(tree.as_fd(), false, m.flags.attrs).map_err(bind_err)?;
            set_attrs_tolerant(tree.as_fd(), true, m.flags.recursive_attrs).map_err(bind_err)?;
            (tree, target)
        }
        kind => {
            let target = safe_path::mkdir_all(rfd, &m.destination, "mount")?;
            verify_inside(&target, &root.path, "mount", &m.destination)?;
            let mnt = match new_fs(m) {
                Ok(mnt) => mnt,
                // sysfs cannot be mounted in a user namespace that does not own the network
                // namespace: bind the host's /sys read-only instead (as runc does).
                Err(Errno::EPERM) if *kind == MountKind::Sysfs => {
                    host_sys(m).map_err(|e| mount_err(m, e))?
                }
                Err(e) => return Err(mount_err(m, e)),
            };
            (mnt, target)
        }
    };
    mount_api::attach(&mnt, &target).map_err(|e| mount_err(m, nix_errno(e)))?;
    if let Some(p) = m.flags.propagation {
        set_propagation(mnt.as_fd(), p).map_err(|e| mount_err(m, e).what("propagation"))?;
    }
    // The destination was resolved inside the root and the mount attached to that very fd;
    // check once more that what got the mount is still inside the root.
    verify_inside(&target, &root.path, "mount", &m.destination)?;
    Ok(m.flags.propagation.map(|p| (mnt, p, m.destination.clone())))
}

fn new_fs(m: &MountOp) -> Result<OwnedFd, Errno> {
    let mut sb: Vec<&str> = Vec::new();
    let attrs = m.flags.attrs.set | m.flags.recursive_attrs.set;
    if attrs & ATTR_RDONLY != 0 {
        sb.push("ro");
    }
    if m.flags.sync {
        sb.push("sync");
    }
    if m.flags.dirsync {
        sb.push("dirsync");
    }
    if m.flags.lazytime {
        sb.push("lazytime");
    }
    let source = m.source.as_deref().and_then(Path::to_str);
    mount_api::new_fs(m.kind.fs_type(), source, &m.data, &sb, attrs).map_err(nix_errno)
}

fn host_sys(m: &MountOp) -> Result<OwnedFd, Errno> {
    let sys = rustix::fs::open(
        "/sys",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(nix_errno)?;
    let tree = mount_api::clone_tree(sys.as_fd(), true).map_err(nix_errno)?;
    let attrs = MountAttrs::with(m.flags.attrs.restricting_only().set | ATTR_RDONLY);
    mount_api::set_attrs(tree.as_fd(), true, attrs, 0).map_err(nix_errno)?;
    Ok(tree)
}

/// Make the prepared root the process's root: `fchdir(root)`, `pivot_root(".", ".")`, the old
/// root made `rslave` (so the detach cannot propagate anywhere) and detached, `chdir("/")`. An
/// explicit `rootfsPropagation` is then applied to the new `/`, and the propagation options of
/// individual mounts again on top of it.
pub fn pivot(root: &RootFs) -> Result<(), MountError> {
    rustix::process::fchdir(root.fd())
        .map_err(|e| MountError::new("pivot_root", "/", nix_errno(e)).what("fchdir"))?;
    rustix::process::pivot_root(".", ".")
        .map_err(|e| MountError::new("pivot_root", "/", nix_errno(e)))?;
    rustix::mount::mount_change(
        ".",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .map_err(|e| MountError::new("pivot_root", "old root", nix_errno(e)).what("rslave"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH)
        .map_err(|e| MountError::new("umount", "old root", nix_errno(e)))?;
    rustix::process::chdir("/")
        .map_err(|e| MountError::new("pivot_root", "/", nix_errno(e)).what("chdir"))?;
    if let Some(p) = root.propagation {
        rustix::mount::mount_change("/", propagation_flags(p))
            .map_err(|e| MountError::new("propagation", "/", nix_errno(e)))?;
        for (fd, p, dest) in &root.mount_propagation {
            set_propagation(fd.as_fd(), *p)
                .map_err(|e| MountError::new("propagation", dest.as_str(), e))?;
        }
    }
    Ok(())
}

/// After pivot (cwd `/`): sysctls, readonlyPaths, maskedPaths (runc's order), /dev made
/// read-only if its mount asked for `ro`, then `/` remounted read-only if `root.readonly`.
pub fn finalize(plan: &MountPlan) -> Result<(), MountError> {
    if !plan.sysctls.is_empty() {
        let proc_fd = sysctl::open_procfs()?;
        for s in &plan.sysctls {
            sysctl::write(&proc_fd, s)?;
        }
    }
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| MountError::new("finalize", "/", nix_errno(e)))?;
    mask::readonly_paths(root.as_fd(), &plan.readonly_paths)?;
    mask::mask_paths(root.as_fd(), &plan.masked_paths)?;
    if plan.dev_readonly {
        let dev = open_in_root(
            root.as_fd(),
            "/dev",
            OFlags::PATH | OFlags::DIRECTORY,
            ResolveFlags::empty(),
        )
        .map_err(|e| MountError::new("readonly", "/dev", e))?;
        mount_api::set_attrs(dev.as_fd(), false, MountAttrs::with(ATTR_RDONLY), 0)
            .map_err(|e| MountError::new("readonly", "/dev", nix_errno(e)).what("mount_setattr"))?;
    }
    if plan.readonly {
        mount_api::set_attrs(root.as_fd(), false, MountAttrs::with(ATTR_RDONLY), 0)
            .map_err(|e| MountError::new("readonly", "/", nix_errno(e)).what("mount_setattr"))?;
    }
    Ok(())
}
