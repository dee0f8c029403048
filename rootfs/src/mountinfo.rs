//! `/proc/self/mountinfo`: which mount holds the container root, and whether it is shared
//! (pivot_root refuses a shared parent, so it is made private first, as runc does).

use std::path::{Path, PathBuf};

/// One line of mountinfo, the fields we need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    pub mount_point: PathBuf,
    pub shared: bool,
}

/// Undo the octal escapes (`\040` for a space...) of mountinfo paths.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text; malformed lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            if sep < 6 {
                return None;
            }
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(fields[4])),
                shared: fields[6..sep].iter().any(|f| f.starts_with("shared:")),
            })
        })
        .collect()
}

/// The mount `path` is on: the last-mounted entry whose mount point is the longest ancestor.
pub(crate) fn containing(entries: &[MountEntry], path: &Path) -> Option<MountEntry> {
    let mut best: Option<&MountEntry> = None;
    for e in entries {
        if path.starts_with(&e.mount_point) {
            let better = match best {
                None => true,
                Some(b) => e.mount_point.components().count() >= b.mount_point.components().count(),
            };
            if better {
                best = Some(e);
            }
        }
    }
    best.cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
40 22 0:30 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw
41 40 0:31 / /tmp/my\\040root rw master:3 - tmpfs tmpfs rw
42 22 0:32 / /tmp rw shared:9 - tmpfs tmpfs rw
";

    #[test]
    fn parses_mount_points_and_sharing() {
        let e = parse(SAMPLE);
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].mount_point, PathBuf::from("/"));
        assert!(e[0].shared);
        assert!(!e[2].shared);
        assert_eq!(e[3].mount_point, PathBuf::from("/tmp/my root"));
        assert!(!e[3].shared);
    }

    #[test]
    fn finds_the_deepest_latest_mount() {
        let e = parse(SAMPLE);
        let m = containing(&e, Path::new("/tmp/my root/rootfs")).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/tmp/my root"));
        // /tmp is mounted twice: the later (shared) one covers the earlier.
        let m = containing(&e, Path::new("/tmp/other")).unwrap();
        assert!(m.shared);
        let m = containing(&e, Path::new("/var/lib/x")).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/"));
        // Component-wise: /tmpfoo is not under /tmp.
        let m = containing(&e, Path::new("/tmpfoo")).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/"));
    }
}
