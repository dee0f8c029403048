//! The file-descriptor based mount API (open_tree, fsopen/fsmount, move_mount, mount_setattr):
//! every mount is attached onto an already resolved destination fd, so no path is looked up
//! again between the check and the mount (CVE-2021-30465), and attributes are changed with
//! mount_setattr, which only touches the bits asked for (no remount losing locked flags).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags};

use crate::options::MountAttrs;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], ...)` on the mount `fd` is the root of.
/// `propagation` is `MS_SHARED`/`MS_SLAVE`/`MS_PRIVATE`/`MS_UNBINDABLE` or 0 (no change).
pub(crate) fn set_attrs(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attrs: MountAttrs,
    propagation: u64,
) -> Result<(), Errno> {
    if attrs.is_empty() && propagation == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set: attrs.set,
        attr_clr: attrs.clear,
        propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: mount_setattr reads a NUL-terminated empty path and `size_of::<MountAttr>()` bytes
    // of a live repr(C) struct; it keeps no pointer after returning.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        ));
    }
    Ok(())
}

/// A detached copy of the mount (tree) at `fd`: `open_tree(OPEN_TREE_CLONE)`, the bind mount
/// source.
pub(crate) fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    rustix::mount::open_tree(fd, "", flags)
}

/// A new, detached filesystem instance: `fsopen` + `fsconfig` (the source, each `data` option
/// as the kernel would split it, the superblock flags) + `fsmount` with the mount attributes.
pub(crate) fn new_fs(
    fs_type: &str,
    source: Option<&str>,
    data: &str,
    sb_flags: &[&str],
    attrs: u64,
) -> Result<OwnedFd, Errno> {
    let fs = rustix::mount::fsopen(fs_type, FsOpenFlags::FSOPEN_CLOEXEC)?;
    if let Some(src) = source.filter(|s| !s.is_empty()) {
        rustix::mount::fsconfig_set_string(&fs, "source", src)?;
    }
    for opt in data.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some((k, v)) => rustix::mount::fsconfig_set_string(&fs, k, v)?,
            None => rustix::mount::fsconfig_set_flag(&fs, opt)?,
        }
    }
    for flag in sb_flags {
        rustix::mount::fsconfig_set_flag(&fs, *flag)?;
    }
    rustix::mount::fsconfig_create(&fs)?;
    // The attribute bits are the kernel's MOUNT_ATTR_* values (32-bit in fsmount).
    let attr_flags = MountAttrFlags::from_bits_retain(attrs as u32);
    rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attr_flags)
}

/// Attach the detached mount `mnt` on top of the resolved destination `target`.
pub(crate) fn attach(mnt: impl AsFd, target: impl AsFd) -> Result<(), Errno> {
    rustix::mount::move_mount(
        mnt,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
}
