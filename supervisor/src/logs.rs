//! Gateway log files: `<state_dir>/logs/<tenant>.log`, opened O_APPEND and handed to the
//! sandbox as its stdout and stderr. Rotation is copy-and-truncate (the sandbox keeps its file
//! descriptor across reeved restarts, so the file cannot be replaced): `.log.N-1` → `.log.N`, …,
//! the live file copied to `.log.1`, then truncated; O_APPEND writers go on at the new end.
//! Lines written between the copy and the truncation are lost (at most a few).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Errors of log handling.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Open (create) the log for appending.
pub fn open(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(io("open log", path))
}

/// The `n`-th rotated file of `path`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The renames of one rotation keeping `keep` old files, oldest first.
pub fn rotation_moves(path: &Path, keep: u32) -> Vec<(PathBuf, PathBuf)> {
    (1..keep)
        .rev()
        .map(|n| (rotated(path, n), rotated(path, n + 1)))
        .collect()
}

/// Rotate `path` when it is larger than `max` bytes. Returns whether it rotated.
pub fn rotate_if_needed(path: &Path, max: u64, keep: u32) -> Result<bool, LogError> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("stat", path)(e)),
    };
    if len <= max {
        return Ok(false);
    }
    if keep == 0 {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io("open", path))?;
        f.set_len(0).map_err(io("truncate", path))?;
        return Ok(true);
    }
    for (from, to) in rotation_moves(path, keep) {
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("rename", &from)(e)),
        }
    }
    let first = rotated(path, 1);
    std::fs::copy(path, &first).map_err(io("copy", path))?;
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io("open", path))?;
    f.set_len(0).map_err(io("truncate", path))?;
    Ok(true)
}

/// The last `n` lines of `path` (reading at most the last 1 MiB).
pub fn tail(path: &Path, n: usize) -> Result<Vec<String>, LogError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("open", path)(e)),
    };
    let len = f.metadata().map_err(io("stat", path))?.len();
    let start = len.saturating_sub(1 << 20);
    f.seek(SeekFrom::Start(start)).map_err(io("seek", path))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(io("read", path))?;
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..].iter().map(|s| s.to_string()).collect())
}

/// Read what was appended to `path` since `offset`; returns complete lines and the new offset.
/// A file shorter than `offset` was truncated (rotated): reading starts over.
pub fn read_new(path: &Path, offset: u64) -> Result<(Vec<String>, u64), LogError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(io("open", path)(e)),
    };
    let len = f.metadata().map_err(io("stat", path))?.len();
    let from = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(from)).map_err(io("seek", path))?;
    let mut buf = Vec::new();
    f.take(1 << 20)
        .read_to_end(&mut buf)
        .map_err(io("read", path))?;
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&buf[..complete]);
    Ok((
        text.lines().map(|s| s.to_string()).collect(),
        from + complete as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn moves() {
        let p = Path::new("/l/acme.log");
        assert_eq!(
            rotation_moves(p, 3),
            vec![
                (
                    PathBuf::from("/l/acme.log.2"),
                    PathBuf::from("/l/acme.log.3")
                ),
                (
                    PathBuf::from("/l/acme.log.1"),
                    PathBuf::from("/l/acme.log.2")
                ),
            ]
        );
        assert!(rotation_moves(p, 1).is_empty());
    }

    #[test]
    fn rotates_while_a_writer_keeps_appending() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("acme.log");
        let mut w = open(&p).unwrap();
        for round in 0..5 {
            writeln!(w, "{}", format!("round {round} ").repeat(20)).unwrap();
            assert!(rotate_if_needed(&p, 100, 3).unwrap());
        }
        writeln!(w, "after").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "after\n",
            "writer appends at the new end"
        );
        assert!(std::fs::read_to_string(rotated(&p, 1))
            .unwrap()
            .starts_with("round 4"));
        assert!(std::fs::read_to_string(rotated(&p, 3))
            .unwrap()
            .starts_with("round 2"));
        assert!(!rotated(&p, 4).exists());
        assert!(!rotate_if_needed(&p, 100, 3).unwrap(), "small files stay");
    }

    #[test]
    fn tail_and_follow() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.log");
        assert!(tail(&p, 3).unwrap().is_empty());
        let mut w = open(&p).unwrap();
        for i in 0..10 {
            writeln!(w, "line {i}").unwrap();
        }
        assert_eq!(tail(&p, 2).unwrap(), vec!["line 8", "line 9"]);
        let (lines, off) = read_new(&p, 0).unwrap();
        assert_eq!(lines.len(), 10);
        write!(w, "partial").unwrap();
        let (lines, off2) = read_new(&p, off).unwrap();
        assert!(lines.is_empty());
        assert_eq!(off2, off);
        writeln!(w, " done").unwrap();
        assert_eq!(read_new(&p, off).unwrap().0, vec!["partial done"]);
        w.set_len(0).unwrap();
        writeln!(w, "fresh").unwrap();
        assert_eq!(
            read_new(&p, off).unwrap().0,
            vec!["fresh"],
            "truncation restarts"
        );
    }
}
