//! A tenant's data on the host: `<data_root>/<name>/` with the seed layout, owned by the
//! tenant's host uid range root; deleted tenants become tombstones that are purged later.
//!
//! `<data_root>` itself is root-owned mode 0711: nothing in a sandbox can list it, and a tenant
//! directory (mode 0700, owned by another range) is unreadable even to a sandbox that guessed
//! its name, besides not being mounted there at all.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::name::{NameError, TenantName};
use crate::uids::IdRange;

/// Sub-directories of a fresh tenant (the seed's layers 2-4 and databases).
pub const SEED_DIRS: &[&str] = &["goals", "memory", "org", "agents"];
/// The tenant's own config file.
pub const SEED_CONFIG: &str = "reeve.json";
/// Where deleted tenants go.
pub const TOMBSTONES: &str = ".tombstones";

/// Errors of tenant data handling.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("tenant {0} already exists")]
    Exists(String),
    #[error("tenant {0} does not exist")]
    NotFound(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TenantError + 'a {
    move |source| TenantError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The data directory of `name`.
pub fn data_dir(data_root: &Path, name: &TenantName) -> PathBuf {
    data_root.join(name.as_str())
}

/// Make `data_root` (root-owned, 0711) if missing.
pub fn ensure_data_root(data_root: &Path) -> Result<(), TenantError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(data_root)
        .map_err(io("mkdir", data_root))?;
    std::fs::set_permissions(data_root, std::fs::Permissions::from_mode(0o711))
        .map_err(io("chmod", data_root))
}

/// Create the seed layout of `name`, owned by the root of `range`. Fails when it exists.
pub fn create_layout(
    data_root: &Path,
    name: &TenantName,
    range: &IdRange,
) -> Result<PathBuf, TenantError> {
    ensure_data_root(data_root)?;
    let dir = data_dir(data_root, name);
    let owner = Some(range.host_base);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(TenantError::Exists(name.to_string()))
        }
        Err(e) => return Err(io("mkdir", &dir)(e)),
    }
    for sub in SEED_DIRS {
        let p = dir.join(sub);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&p)
            .map_err(io("mkdir", &p))?;
        std::os::unix::fs::lchown(&p, owner, owner).map_err(io("chown", &p))?;
    }
    let cfg = dir.join(SEED_CONFIG);
    let seed = serde_json::json!({ "tenant": name.as_str() });
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&cfg)
        .and_then(|mut f| {
            use std::io::Write;
            writeln!(f, "{seed:#}")
        })
        .map_err(io("write", &cfg))?;
    std::os::unix::fs::lchown(&cfg, owner, owner).map_err(io("chown", &cfg))?;
    // The directory last: until now the tenant's range could not have written anything in it.
    std::os::unix::fs::lchown(&dir, owner, owner).map_err(io("chown", &dir))?;
    Ok(dir)
}

/// Valid tenant names, and ignored entries with the reason.
pub type Listing = (Vec<TenantName>, Vec<(String, NameError)>);

/// The tenants under `data_root`: valid names, sorted; other entries (not dot-files) are
/// returned with the reason they are ignored.
pub fn list(data_root: &Path) -> Result<Listing, TenantError> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let rd = match std::fs::read_dir(data_root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((good, bad)),
        Err(e) => return Err(io("read directory", data_root)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io("read directory", data_root))?;
        let fname = entry.file_name().to_string_lossy().into_owned();
        if fname.starts_with('.') {
            continue;
        }
        let is_dir = entry
            .file_type()
            .map(|t| t.is_dir())
            .map_err(io("stat", &entry.path()))?;
        if !is_dir {
            continue;
        }
        match TenantName::parse(&fname) {
            Ok(n) => good.push(n),
            Err(e) => bad.push((fname, e)),
        }
    }
    good.sort();
    Ok((good, bad))
}

/// The name of a tombstone: `<tenant>.<unix seconds>`.
pub fn tombstone_name(name: &TenantName, unix: u64) -> String {
    format!("{name}.{unix}")
}

/// Parse a tombstone's name back into tenant and time.
pub fn parse_tombstone(fname: &str) -> Option<(TenantName, u64)> {
    let (n, t) = fname.rsplit_once('.')?;
    Some((TenantName::parse(n).ok()?, t.parse().ok()?))
}

/// Move the data of `name` to `<data_root>/.tombstones/<name>.<unix>`.
pub fn tombstone(data_root: &Path, name: &TenantName, unix: u64) -> Result<PathBuf, TenantError> {
    let dir = data_dir(data_root, name);
    if std::fs::symlink_metadata(&dir).is_err() {
        return Err(TenantError::NotFound(name.to_string()));
    }
    let tomb_root = data_root.join(TOMBSTONES);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&tomb_root)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(io("mkdir", &tomb_root))?;
    let mut target = tomb_root.join(tombstone_name(name, unix));
    let mut t = unix;
    while target.exists() {
        t += 1;
        target = tomb_root.join(tombstone_name(name, t));
    }
    std::fs::rename(&dir, &target).map_err(io("rename", &dir))?;
    Ok(target)
}

/// Which tombstones (file names) are older than `retention_days` at `now` (unix seconds).
pub fn expired(names: &[String], retention_days: u64, now: u64) -> Vec<&str> {
    let keep = retention_days.saturating_mul(86_400);
    names
        .iter()
        .filter(|n| matches!(parse_tombstone(n), Some((_, t)) if now.saturating_sub(t) >= keep))
        .map(String::as_str)
        .collect()
}

/// Remove the expired tombstones; returns the removed paths.
pub fn purge_tombstones(
    data_root: &Path,
    retention_days: u64,
    now: u64,
) -> Result<Vec<PathBuf>, TenantError> {
    let tomb_root = data_root.join(TOMBSTONES);
    let rd = match std::fs::read_dir(&tomb_root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read directory", &tomb_root)(e)),
    };
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(io("read directory", &tomb_root))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    let mut removed = Vec::new();
    for n in expired(&names, retention_days, now) {
        let p = tomb_root.join(n);
        std::fs::remove_dir_all(&p).map_err(io("remove", &p))?;
        removed.push(p);
    }
    Ok(removed)
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn n(s: &str) -> TenantName {
        TenantName::parse(s).unwrap()
    }

    #[test]
    fn tombstone_names_round_trip() {
        assert_eq!(tombstone_name(&n("acme"), 1700000000), "acme.1700000000");
        assert_eq!(
            parse_tombstone("acme.1700000000"),
            Some((n("acme"), 1700000000))
        );
        assert_eq!(parse_tombstone("acme"), None);
        assert_eq!(parse_tombstone("Acme.5"), None);
        assert_eq!(parse_tombstone("acme.x"), None);
    }

    #[test]
    fn expiry() {
        let names: Vec<String> = ["a.0", "b.86400", "c.172800", "junk"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(expired(&names, 1, 172_800), vec!["a.0", "b.86400"]);
        assert_eq!(expired(&names, 30, 172_800), Vec::<&str>::new());
        assert_eq!(expired(&names, 0, 172_800).len(), 3);
    }

    #[test]
    fn layout_list_tombstone_purge_as_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: chown needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tenants");
        let range = IdRange {
            index: 1,
            host_base: 265_536,
            size: 65_536,
        };
        let dir = create_layout(&root, &n("acme"), &range).unwrap();
        let m = std::fs::metadata(&dir).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o777),
            (265_536, 265_536, 0o700)
        );
        for sub in SEED_DIRS.iter().chain([&SEED_CONFIG]) {
            assert_eq!(
                std::fs::metadata(dir.join(sub)).unwrap().uid(),
                265_536,
                "{sub}"
            );
        }
        assert_eq!(std::fs::metadata(&root).unwrap().mode() & 0o777, 0o711);
        assert!(matches!(
            create_layout(&root, &n("acme"), &range),
            Err(TenantError::Exists(_))
        ));
        std::fs::create_dir(root.join("Bad_Name")).unwrap();
        std::fs::write(root.join("file"), "").unwrap();
        let (good, bad) = list(&root).unwrap();
        assert_eq!(good, vec![n("acme")]);
        assert_eq!(bad.len(), 1);
        let t = tombstone(&root, &n("acme"), 1000).unwrap();
        assert_eq!(t, root.join(".tombstones/acme.1000"));
        assert!(!dir.exists());
        assert!(
            list(&root).unwrap().0.is_empty(),
            ".tombstones is not a tenant"
        );
        assert!(purge_tombstones(&root, 1, 1000 + 86_399)
            .unwrap()
            .is_empty());
        assert_eq!(
            purge_tombstones(&root, 1, 1000 + 86_400).unwrap(),
            vec![t.clone()]
        );
        assert!(!t.exists());
        assert!(matches!(
            tombstone(&root, &n("acme"), 1),
            Err(TenantError::NotFound(_))
        ));
    }
}
