//! maskedPaths and readonlyPaths, applied after pivot_root from `/`: every path is resolved
//! inside the root, files are masked by a bind of the verified `/dev/null`, directories by a
//! read-only tmpfs; read-only paths get a recursive read-only bind of themselves. Paths that do
//! not exist are skipped (as runc does).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use rustix::fs::FileType;

use crate::dev::open_dev_null;
use crate::error::{nix_errno, MountError};
use crate::mount_api;
use crate::options::{MountAttrs, ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};
use crate::safe_path::{file_type, open_path};

/// Mask each path of `paths`.
pub(crate) fn mask_paths(root: BorrowedFd<'_>, paths: &[String]) -> Result<(), MountError> {
    let mut dev_null: Option<OwnedFd> = None;
    for p in paths {
        let target = match open_path(root, p) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(MountError::new("mask", p.as_str(), e)),
        };
        let (ft, _) = file_type(&target).map_err(|e| MountError::new("mask", p.as_str(), e))?;
        let mnt = if ft == FileType::Directory {
            mount_api::new_fs(
                "tmpfs",
                Some("tmpfs"),
                "",
                &["ro"],
                ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
            )
            .map_err(|e| MountError::new("mask", p.as_str(), nix_errno(e)).what("tmpfs"))?
        } else {
            let null = match &dev_null {
                Some(fd) => fd,
                None => dev_null.insert(open_dev_null(root)?),
            };
            mount_api::clone_tree(null.as_fd(), false)
                .map_err(|e| MountError::new("mask", p.as_str(), nix_errno(e)).what("/dev/null"))?
        };
        mount_api::attach(&mnt, &target)
            .map_err(|e| MountError::new("mask", p.as_str(), nix_errno(e)))?;
    }
    Ok(())
}

/// Make each path of `paths` read-only: a recursive bind of itself made read-only with
/// mount_setattr, which adds the read-only bit and keeps nosuid/nodev/noexec as they are (so it
/// also works on locked mounts in a user namespace).
pub(crate) fn readonly_paths(root: BorrowedFd<'_>, paths: &[String]) -> Result<(), MountError> {
    for p in paths {
        let target = match open_path(root, p) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(MountError::new("readonly", p.as_str(), e)),
        };
        let tree = mount_api::clone_tree(target.as_fd(), true)
            .map_err(|e| MountError::new("readonly", p.as_str(), nix_errno(e)).what("bind"))?;
        mount_api::set_attrs(tree.as_fd(), true, MountAttrs::with(ATTR_RDONLY), 0).map_err(
            |e| MountError::new("readonly", p.as_str(), nix_errno(e)).what("mount_setattr"),
        )?;
        mount_api::attach(&tree, &target)
            .map_err(|e| MountError::new("readonly", p.as_str(), nix_errno(e)))?;
    }
    Ok(())
}
