//! /dev of the container: device nodes (mknod, or a bind mount of the host's verified device
//! when mknod is not permitted, e.g. in a user namespace), the standard symlinks, and the
//! console bind mount.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::error::{nix_errno, MountError};
use crate::mount_api;
use crate::plan::{DevSymlink, DeviceKind, DeviceNode};
use crate::safe_path::{self, file_type, open_in_root, parent_dir};

fn file_type_of(kind: DeviceKind) -> FileType {
    match kind {
        DeviceKind::Char => FileType::CharacterDevice,
        DeviceKind::Block => FileType::BlockDevice,
        DeviceKind::Fifo => FileType::Fifo,
    }
}

fn matches(d: &DeviceNode, ft: FileType, rdev: rustix::fs::Dev) -> bool {
    ft == file_type_of(d.kind)
        && (d.kind == DeviceKind::Fifo
            || (rustix::fs::major(rdev) == d.major && rustix::fs::minor(rdev) == d.minor))
}

/// Create one device node in the container root (`root_path` is the canonical host path of the
/// root, for the post-mount verification of the bind fallback).
pub(crate) fn create_device(
    root: BorrowedFd<'_>,
    root_path: &Path,
    d: &DeviceNode,
) -> Result<(), MountError> {
    let (dir, name) = parent_dir(root, &d.path, "mknod")?;
    let dev = rustix::fs::makedev(d.major, d.minor);
    match rustix::fs::mknodat(
        &dir,
        name,
        file_type_of(d.kind),
        Mode::from_raw_mode(d.mode),
        dev,
    ) {
        Ok(()) => {
            // mknod applies the umask: set the exact mode, then the owner. The name was just
            // created by us in a directory resolved inside the root.
            rustix::fs::chmodat(&dir, name, Mode::from_raw_mode(d.mode), AtFlags::empty())
                .map_err(|e| MountError::new("chmod", d.path.as_str(), nix_errno(e)))?;
            rustix::fs::chownat(
                &dir,
                name,
                Some(rustix::fs::Uid::from_raw(d.uid)),
                Some(rustix::fs::Gid::from_raw(d.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| MountError::new("chown", d.path.as_str(), nix_errno(e)))?;
            verify_node(root, d)
        }
        Err(rustix::io::Errno::EXIST) => verify_node(root, d),
        Err(rustix::io::Errno::PERM) if d.kind != DeviceKind::Fifo => {
            bind_host_device(root, root_path, d)
        }
        Err(e) => Err(MountError::new("mknod", d.path.as_str(), nix_errno(e))),
    }
}

/// The node at `d.path` in the root must be the device asked for.
fn verify_node(root: BorrowedFd<'_>, d: &DeviceNode) -> Result<(), MountError> {
    let fd = open_in_root(
        root,
        &d.path,
        OFlags::PATH | OFlags::NOFOLLOW,
        ResolveFlags::NO_SYMLINKS,
    )
    .map_err(|e| MountError::new("mknod", d.path.as_str(), e))?;
    let (ft, rdev) = file_type(&fd).map_err(|e| MountError::new("mknod", d.path.as_str(), e))?;
    if !matches(d, ft, rdev) {
        return Err(MountError::new("mknod", d.path.as_str(), Errno::EEXIST)
            .because("something else already exists at the device path"));
    }
    Ok(())
}

/// Bind the host's device of the same path onto an empty file, after checking that the host
/// file is the device the plan names (type and major:minor).
fn bind_host_device(
    root: BorrowedFd<'_>,
    root_path: &Path,
    d: &DeviceNode,
) -> Result<(), MountError> {
    let host = rustix::fs::open(
        d.path.as_str(),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        MountError::new("mount", d.path.as_str(), nix_errno(e)).what("bind host device")
    })?;
    let (ft, rdev) = file_type(&host)
        .map_err(|e| MountError::new("mount", d.path.as_str(), e).what("bind host device"))?;
    if !matches(d, ft, rdev) {
        return Err(MountError::new("mount", d.path.as_str(), Errno::ENODEV)
            .what("bind host device")
            .because("the host file is not the expected device"));
    }
    let target = safe_path::create_file(root, &d.path, 0o666, "mount")?;
    let (tft, _) = file_type(&target).map_err(|e| MountError::new("mount", d.path.as_str(), e))?;
    if tft != FileType::RegularFile && tft != ft {
        return Err(MountError::new("mount", d.path.as_str(), Errno::EEXIST)
            .what("bind host device")
            .because("something else already exists at the device path"));
    }
    safe_path::verify_inside(&target, root_path, "mount", &d.path)?;
    let tree = mount_api::clone_tree(host.as_fd(), false).map_err(|e| {
        MountError::new("mount", d.path.as_str(), nix_errno(e)).what("bind host device")
    })?;
    mount_api::attach(&tree, &target).map_err(|e| {
        MountError::new("mount", d.path.as_str(), nix_errno(e)).what("bind host device")
    })?;
    safe_path::verify_inside(&target, root_path, "mount", &d.path)
}

/// Create one /dev symlink (kept if something exists there, unless `replace`).
pub(crate) fn create_symlink(root: BorrowedFd<'_>, s: &DevSymlink) -> Result<(), MountError> {
    let (dir, name) = parent_dir(root, &s.path, "symlink")?;
    if s.replace {
        match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => {
                return Err(MountError::new("symlink", s.path.as_str(), nix_errno(e)).what("unlink"))
            }
        }
    }
    match rustix::fs::symlinkat(s.target.as_str(), &dir, name) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) if !s.replace => Ok(()),
        Err(e) => Err(MountError::new("symlink", s.path.as_str(), nix_errno(e))),
    }
}

/// Major numbers of Unix98 pty slaves (devpts).
const PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u32> = 136..=143;

/// Bind the pty slave `pty_slave` (an open fd, e.g. from TIOCGPTPEER) onto `/dev/console` of
/// the current root (call after pivot_root, cwd `/`). The fd must be a devpts pty slave; the
/// target is resolved inside `/` and created as an empty 0666 file if missing.
pub fn bind_console(pty_slave: BorrowedFd<'_>) -> Result<(), MountError> {
    const PATH: &str = "/dev/console";
    let (ft, rdev) =
        file_type(pty_slave).map_err(|e| MountError::new("console", PATH, e).what("fstat pty"))?;
    if ft != FileType::CharacterDevice || !PTY_SLAVE_MAJORS.contains(&rustix::fs::major(rdev)) {
        return Err(MountError::new("console", PATH, Errno::ENOTTY)
            .because("the source is not a pty slave"));
    }
    let fs = rustix::fs::fstatfs(pty_slave)
        .map_err(|e| MountError::new("console", PATH, nix_errno(e)))?;
    // f_type and the magic constants have different types on different architectures.
    #[allow(clippy::unnecessary_cast)]
    let other_fs = fs.f_type as i64 != libc::DEVPTS_SUPER_MAGIC as i64;
    if other_fs {
        return Err(
            MountError::new("console", PATH, Errno::EXDEV).because("the source is not on devpts")
        );
    }
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| MountError::new("console", "/", nix_errno(e)))?;
    let target = match open_in_root(
        root.as_fd(),
        PATH,
        OFlags::PATH | OFlags::NOFOLLOW,
        ResolveFlags::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => safe_path::create_file(root.as_fd(), PATH, 0o666, "console")?,
        Err(e) => return Err(MountError::new("console", PATH, e)),
    };
    let (tft, _) = file_type(&target).map_err(|e| MountError::new("console", PATH, e))?;
    if tft != FileType::RegularFile && tft != FileType::CharacterDevice {
        return Err(MountError::new("console", PATH, Errno::EINVAL)
            .because("/dev/console is neither a file nor a device (symlink or directory?)"));
    }
    let tree = mount_api::clone_tree(pty_slave, false)
        .map_err(|e| MountError::new("mount", PATH, nix_errno(e)).what("console"))?;
    mount_api::attach(&tree, &target)
        .map_err(|e| MountError::new("mount", PATH, nix_errno(e)).what("console"))?;
    Ok(())
}

/// Open the container's `/dev/null` for masking and check it really is the 1:3 character device
/// (CVE-2025-31133: a rootfs whose /dev/null is a symlink to a procfs file must not get that
/// file bind-mounted read-write over the masked paths). No symlink is followed.
pub(crate) fn open_dev_null(root: BorrowedFd<'_>) -> Result<rustix::fd::OwnedFd, MountError> {
    const PATH: &str = "/dev/null";
    let fd = open_in_root(
        root,
        PATH,
        OFlags::PATH | OFlags::NOFOLLOW,
        ResolveFlags::NO_SYMLINKS,
    )
    .map_err(|e| MountError::new("mask", PATH, e).what("open"))?;
    let (ft, rdev) = file_type(&fd).map_err(|e| MountError::new("mask", PATH, e))?;
    if ft != FileType::CharacterDevice
        || rustix::fs::major(rdev) != 1
        || rustix::fs::minor(rdev) != 3
    {
        return Err(MountError::new("mask", PATH, Errno::ENODEV)
            .because("/dev/null is not the 1:3 character device"));
    }
    Ok(fd)
}
