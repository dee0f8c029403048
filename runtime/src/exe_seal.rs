//! CVE-2019-5736: the runtime binary that runs inside the new namespaces must not be writable
//! from the container. Before creating a sandbox, `reevec` re-executes itself from a sealed
//! memfd copy (F_SEAL_SEAL|SHRINK|GROW|WRITE): `/proc/<init>/exe` then names an immutable
//! anonymous file, never the host's binary.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Errors of sealing the runtime binary.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("open {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("memfd_create(reevec): {0}")]
    Memfd(nix::errno::Errno),
    #[error("copy {path} into memfd: {errno}")]
    Copy {
        path: std::path::PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("fcntl(F_ADD_SEALS) on memfd: {0}")]
    Seal(nix::errno::Errno),
    #[error("execveat(memfd, AT_EMPTY_PATH): {0}")]
    Exec(nix::errno::Errno),
    #[error("argument or environment holds a NUL byte")]
    Nul,
}

const SELF_EXE: &str = "/proc/self/exe";

const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether the running binary is already a sealed memfd.
pub fn is_sealed() -> Result<bool, SealError> {
    let f = std::fs::File::open(SELF_EXE).map_err(|source| SealError::Open {
        path: SELF_EXE.into(),
        source,
    })?;
    // SAFETY: fcntl on an fd we own.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    Ok(seals >= 0 && seals & SEALS == SEALS)
}

/// How many times F_ADD_SEALS is tried when the kernel answers EBUSY.
const SEAL_ATTEMPTS: usize = 4;

/// Seal the copy. F_SEAL_WRITE waits (up to ~150 ms) for extra references on the memfd's pages
/// to go away and fails with EBUSY if some remain: seen once in ~600 runs on a loaded 2-core
/// VM, where a just-written page still sat in another CPU's LRU batch. Every attempt drains
/// those batches again, so a retry succeeds; nothing else can hold our fresh, private memfd.
fn add_seals(memfd: &OwnedFd) -> Result<(), SealError> {
    let mut attempt = 0;
    loop {
        // SAFETY: fcntl on an fd we own.
        if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } == 0 {
            return Ok(());
        }
        let e = nix::errno::Errno::last();
        attempt += 1;
        let transient = e == nix::errno::Errno::EINTR || e == nix::errno::Errno::EBUSY;
        if !transient || attempt >= SEAL_ATTEMPTS {
            return Err(SealError::Seal(e));
        }
    }
}

/// A sealed (immutable, close-on-exec) memfd copy of the executable at `path`. Executing it
/// gives a process whose `/proc/<pid>/exe` can never be written. `reeved` keeps one copy of
/// `reevec` for all its runtime calls, so each call skips the copy and re-exec of its own.
pub fn sealed_copy(path: &std::path::Path) -> Result<OwnedFd, SealError> {
    let exe = std::fs::File::open(path).map_err(|source| SealError::Open {
        path: path.into(),
        source,
    })?;
    let len = exe
        .metadata()
        .map_err(|source| SealError::Open {
            path: path.into(),
            source,
        })?
        .len() as usize;
    // SAFETY: memfd_create with a valid NUL-terminated name.
    let fd = unsafe {
        libc::memfd_create(
            c"reevec".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(SealError::Memfd(nix::errno::Errno::last()));
    }
    // SAFETY: a fresh fd we own.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut left = len;
    while left > 0 {
        // SAFETY: sendfile between two fds we own; a null offset uses the file position.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                left,
            )
        };
        if n < 0 {
            let e = nix::errno::Errno::last();
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            return Err(SealError::Copy {
                path: path.into(),
                errno: e,
            });
        }
        if n == 0 {
            break;
        }
        left -= n as usize;
    }
    add_seals(&memfd)?;
    Ok(memfd)
}

/// Re-execute from a sealed memfd copy unless already running from one. Returns only when the
/// binary is sealed (the re-executed process starts `main` again with the same arguments).
pub fn ensure_sealed() -> Result<(), SealError> {
    if is_sealed()? {
        return Ok(());
    }
    let memfd = sealed_copy(std::path::Path::new(SELF_EXE))?;
    let to_c = |s: std::ffi::OsString| {
        use std::os::unix::ffi::OsStringExt;
        CString::new(s.into_vec()).map_err(|_| SealError::Nul)
    };
    let argv: Vec<CString> = std::env::args_os().map(to_c).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect::<Result<_, _>>()?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: valid NUL-terminated argv/envp arrays whose strings outlive the call; on success
    // execveat does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            memfd.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(SealError::Exec(nix::errno::Errno::last()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_seals_makes_a_written_memfd_immutable() {
        // SAFETY: memfd_create with a valid NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"seal-test".as_ptr(), libc::MFD_ALLOW_SEALING) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        // SAFETY: a fresh fd we own.
        let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut f = std::fs::File::from(memfd.try_clone().expect("dup"));
        std::io::Write::write_all(&mut f, &[7u8; 3 * 4096]).expect("write");
        drop(f);
        add_seals(&memfd).expect("seal");
        // SAFETY: fcntl on an fd we own.
        let seals = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS, "seals {seals:#x}");
        let mut f = std::fs::File::from(memfd);
        assert!(
            std::io::Write::write_all(&mut f, b"x").is_err(),
            "sealed memfd took a write"
        );
    }
}
