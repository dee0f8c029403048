//! Path resolution confined to the container root: `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` from the root's dirfd, so an absolute symlink or a `..` planted in the
//! rootfs resolves inside the root and never on the host; directories are created one component
//! at a time with mkdirat on resolved dirfds, never by path string.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use crate::error::{nix_errno, MountError};

/// The resolution every lookup in the container root uses.
pub(crate) const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// `/a/b` → `a/b`, `/` → `.`.
fn relative(path: &str) -> &str {
    let r = path.trim_start_matches('/');
    if r.is_empty() {
        "."
    } else {
        r
    }
}

/// Open `path` (a normalized container path) inside the root with `flags` | O_CLOEXEC.
pub(crate) fn open_in_root(
    root: BorrowedFd<'_>,
    path: &str,
    flags: OFlags,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let rel = relative(path);
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            IN_ROOT | resolve,
        ) {
            // EAGAIN: a concurrent rename made the kernel give up on a safe `..` walk; retry.
            Err(rustix::io::Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r.map_err(nix_errno),
        }
    }
}

/// Open with O_PATH (no access needed, works on any file type).
pub(crate) fn open_path(root: BorrowedFd<'_>, path: &str) -> Result<OwnedFd, Errno> {
    open_in_root(root, path, OFlags::PATH, ResolveFlags::empty())
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// What to create at the end of a path that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Dir,
    File(u32),
}

/// Maximum number of symlinks followed while creating a path (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// Walk `path` from the root one component at a time, following symlinks *inside the root*
/// (an absolute target restarts at the root, `..` never climbs above it) and creating what is
/// missing: directories with mkdirat (0755), the leaf as `leaf` says. Every creation is a single
/// name relative to a directory fd already resolved inside the root, so nothing can be created
/// outside it, whatever symlinks the rootfs holds (a dangling `/etc/resolv.conf` symlink gets its
/// target created inside the root, as runc does).
fn create_in_root(
    root: BorrowedFd<'_>,
    path: &str,
    leaf: Leaf,
    step: &'static str,
) -> Result<(), MountError> {
    let err = |what: &'static str, e: Errno| MountError::new(what, path, e);
    let base = open_in_root(
        root,
        "/",
        OFlags::PATH | OFlags::DIRECTORY,
        ResolveFlags::empty(),
    )
    .map_err(|e| err(step, e))?;
    let mut stack: Vec<OwnedFd> = vec![base];
    let mut queue: std::collections::VecDeque<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect();
    let mut links = 0;
    // Bounds the walk even if entries keep appearing and vanishing under us.
    let mut budget = 4096;
    while let Some(comp) = queue.pop_front() {
        budget -= 1;
        if budget == 0 {
            return Err(err(step, Errno::ELOOP));
        }
        if comp == "." {
            continue;
        }
        if comp == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let last = queue.is_empty();
        let cur = stack.last().ok_or_else(|| err(step, Errno::EINVAL))?;
        let found = rustix::fs::openat(
            cur,
            comp.as_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        match found {
            Ok(fd) => {
                let (ft, _) = file_type(&fd).map_err(|e| err(step, e))?;
                if ft == FileType::Symlink {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(err(step, Errno::ELOOP));
                    }
                    // Read the link through the fd just opened (not by name again: no race).
                    let target = rustix::fs::readlinkat(&fd, "", Vec::new())
                        .map_err(|e| err(step, nix_errno(e)))?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        stack.truncate(1);
                    }
                    for c in target.split('/').rev().filter(|c| !c.is_empty()) {
                        queue.push_front(c.to_string());
                    }
                } else if ft == FileType::Directory {
                    stack.push(fd);
                } else if last && leaf != Leaf::Dir {
                    return Ok(());
                } else {
                    return Err(err(step, Errno::ENOTDIR));
                }
            }
            Err(rustix::io::Errno::NOENT) => {
                match (last, leaf) {
                    (true, Leaf::File(mode)) => {
                        match rustix::fs::openat(
                            cur,
                            comp.as_str(),
                            OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::WRONLY
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC
                                | OFlags::NOCTTY,
                            Mode::from_raw_mode(mode),
                        ) {
                            Ok(_) => return Ok(()),
                            Err(rustix::io::Errno::EXIST) => {}
                            Err(e) => return Err(err("create", nix_errno(e))),
                        }
                    }
                    _ => {
                        match rustix::fs::mkdirat(cur, comp.as_str(), Mode::from_raw_mode(0o755)) {
                            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                            Err(e) => return Err(err("mkdir", nix_errno(e))),
                        }
                    }
                }
                // Look the new entry up again (and follow it if someone raced a symlink in).
                queue.push_front(comp);
            }
            Err(e) => return Err(err(step, nix_errno(e))),
        }
    }
    Ok(())
}

/// Resolve the directory `path` in the root (openat2 RESOLVE_IN_ROOT), creating it and its
/// missing parents inside the root if needed. Returns an O_PATH fd of the directory.
pub(crate) fn mkdir_all(
    root: BorrowedFd<'_>,
    path: &str,
    step: &'static str,
) -> Result<OwnedFd, MountError> {
    let open_dir = || {
        open_in_root(
            root,
            path,
            OFlags::PATH | OFlags::DIRECTORY,
            ResolveFlags::empty(),
        )
    };
    match open_dir() {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(MountError::new(step, path, e)),
    }
    create_in_root(root, path, Leaf::Dir, step)?;
    open_dir().map_err(|e| MountError::new(step, path, e))
}

/// Resolve the file `path` in the root, creating it empty with `mode` (and its parents) when
/// missing. Returns an O_PATH fd of whatever is there (file, device, ...).
pub(crate) fn create_file(
    root: BorrowedFd<'_>,
    path: &str,
    mode: u32,
    step: &'static str,
) -> Result<OwnedFd, MountError> {
    match open_path(root, path) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(MountError::new(step, path, e)),
    }
    create_in_root(root, path, Leaf::File(mode), step)?;
    open_path(root, path).map_err(|e| MountError::new(step, path, e))
}

/// The parent directory (resolved, created if needed) and the last name of `path`.
pub(crate) fn parent_dir<'p>(
    root: BorrowedFd<'_>,
    path: &'p str,
    step: &'static str,
) -> Result<(OwnedFd, &'p str), MountError> {
    let (parent, name) = split_parent(path);
    Ok((mkdir_all(root, parent, step)?, name))
}

/// The file type of an fd.
pub(crate) fn file_type(fd: impl AsFd) -> Result<(FileType, rustix::fs::Dev), Errno> {
    let st = rustix::fs::fstat(fd).map_err(nix_errno)?;
    Ok((FileType::from_raw_mode(st.st_mode), st.st_rdev))
}

/// Check, through `/proc/self/fd`, that the object `fd` refers to lies under `root` (the
/// canonical host path of the container root). Used around every mount before pivot_root.
pub(crate) fn verify_inside(
    fd: impl AsFd,
    root: &Path,
    step: &'static str,
    shown: &str,
) -> Result<(), MountError> {
    let link = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    let target = std::fs::read_link(&link).map_err(|e| {
        MountError::new(
            step,
            shown,
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
        .what("verify")
    })?;
    if target == root
        || target.starts_with(root) && !target.as_os_str().to_string_lossy().ends_with(" (deleted)")
    {
        Ok(())
    } else {
        Err(MountError::new(step, shown, Errno::EXDEV)
            .what("verify")
            .because("the resolved destination is outside the container root"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_parent() {
        assert_eq!(relative("/"), ".");
        assert_eq!(relative("/a/b"), "a/b");
        assert_eq!(split_parent("/dev/null"), ("/dev", "null"));
        assert_eq!(split_parent("/x"), ("/", "x"));
        assert_eq!(split_parent("/a/b/c"), ("/a/b", "c"));
    }
}
