//! Atomic replacement of small files: write a temporary sibling, fsync, rename over, fsync the directory.
//! Readers (Traefik's file provider, Caddy's watcher, our own allocator) never see a torn file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Errors of the atomic file replacement.
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    #[error("atomic write of {path}: {op} {tmp}: {source}")]
    Io {
        path: PathBuf,
        tmp: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Replaces `path` with `contents` atomically (same-directory temp file + `rename(2)`).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), AtomicWriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let err = |op: &'static str| {
        let path = path.to_path_buf();
        let tmp = tmp.clone();
        move |source| AtomicWriteError::Io {
            path,
            tmp,
            op,
            source,
        }
    };
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(err("create"))?;
        f.write_all(contents).map_err(err("write"))?;
        f.sync_all().map_err(err("fsync"))?;
        drop(f);
        fs::rename(&tmp, path).map_err(err("rename"))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(err("fsync directory of"))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("routes.yml");
        write_atomic(&p, b"one", 0o644).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let e = write_atomic(Path::new("/nonexistent-reeve-dir/x"), b"", 0o644).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-reeve-dir/x"), "{e}");
    }
}
