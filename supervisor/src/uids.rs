//! Host uid/gid ranges of tenants. Tenant number `i` owns `base + i*size .. base + (i+1)*size`;
//! the numbers are kept in `<state_dir>/uids.json` and never change for a name. When that file
//! is lost (state_dir is on tmpfs), the owner of a tenant's data directory gives its number back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::UidConfig;
use crate::name::TenantName;

/// Errors of the uid allocation.
#[derive(Debug, thiserror::Error)]
pub enum UidError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no uid range left for tenant {0}: base + (n+1)*size would pass 2^32-1")]
    Exhausted(String),
}

/// One tenant's host id range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub index: u32,
    /// First host id: container root maps here.
    pub host_base: u32,
    pub size: u32,
}

impl IdRange {
    /// The range of tenant number `index`, if it fits in 32 bits (and below the invalid -1).
    pub fn of(cfg: &UidConfig, index: u32) -> Option<IdRange> {
        let start = u64::from(cfg.base) + u64::from(index) * u64::from(cfg.size);
        let end = start + u64::from(cfg.size);
        if end > u64::from(u32::MAX) {
            return None;
        }
        Some(IdRange {
            index,
            host_base: start as u32,
            size: cfg.size,
        })
    }

    /// The tenant number whose range starts at `uid`, if any.
    pub fn index_of_base(cfg: &UidConfig, uid: u32) -> Option<u32> {
        let off = uid.checked_sub(cfg.base)?;
        (off % cfg.size == 0).then_some(off / cfg.size)
    }
}

/// The allocation table, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocations {
    pub tenants: BTreeMap<TenantName, u32>,
}

impl Allocations {
    /// The number of `name`: the stored one, else `hint` (the data directory's owner) when no
    /// other tenant holds it, else the lowest free number. Returns whether the table changed.
    pub fn assign(
        &mut self,
        cfg: &UidConfig,
        name: &TenantName,
        hint: Option<u32>,
    ) -> Result<(IdRange, bool), UidError> {
        let exhausted = || UidError::Exhausted(name.to_string());
        if let Some(&i) = self.tenants.get(name) {
            return Ok((IdRange::of(cfg, i).ok_or_else(exhausted)?, false));
        }
        let taken = |i: u32| self.tenants.values().any(|&v| v == i);
        let index = match hint.filter(|&h| !taken(h)) {
            Some(h) => h,
            None => (0..=u32::MAX).find(|&i| !taken(i)).ok_or_else(exhausted)?,
        };
        let range = IdRange::of(cfg, index).ok_or_else(exhausted)?;
        self.tenants.insert(name.clone(), index);
        Ok((range, true))
    }
}

/// The stored table at `<state_dir>/uids.json`.
pub struct UidStore {
    path: PathBuf,
    cfg: UidConfig,
}

impl UidStore {
    pub fn new(state_dir: &Path, cfg: UidConfig) -> UidStore {
        UidStore {
            path: state_dir.join("uids.json"),
            cfg,
        }
    }

    pub fn load(&self) -> Result<Allocations, UidError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| UidError::Parse {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Allocations::default()),
            Err(source) => Err(UidError::Io {
                op: "read",
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn save(&self, a: &Allocations) -> Result<(), UidError> {
        let io = |op, path: &Path, source| UidError::Io {
            op,
            path: path.to_path_buf(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(a).map_err(|source| UidError::Parse {
            path: self.path.clone(),
            source,
        })?;
        std::fs::write(&tmp, text).map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("rename", &self.path, e))
    }

    /// The range of `name`, allocating (and storing) it when new. `data_dir` is the tenant's
    /// data directory: when it exists, its owner is the preferred range.
    pub fn range_for(&self, name: &TenantName, data_dir: &Path) -> Result<IdRange, UidError> {
        use std::os::unix::fs::MetadataExt;
        let mut a = self.load()?;
        let hint = std::fs::symlink_metadata(data_dir)
            .ok()
            .and_then(|m| IdRange::index_of_base(&self.cfg, m.uid()));
        let (range, changed) = a.assign(&self.cfg, name, hint)?;
        if changed {
            self.save(&a)?;
        }
        Ok(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> TenantName {
        TenantName::parse(s).unwrap()
    }

    #[test]
    fn ranges_are_disjoint_and_stable() {
        let cfg = UidConfig::default();
        let mut a = Allocations::default();
        let (r0, c0) = a.assign(&cfg, &n("acme"), None).unwrap();
        let (r1, _) = a.assign(&cfg, &n("beta"), None).unwrap();
        assert!(c0);
        assert_eq!(r0.host_base, 200_000);
        assert_eq!(r1.host_base, 200_000 + 65_536);
        let (again, changed) = a.assign(&cfg, &n("acme"), None).unwrap();
        assert_eq!(again, r0);
        assert!(!changed);
        // A hint is honoured when free and ignored when taken.
        let (r5, _) = a.assign(&cfg, &n("gamma"), Some(5)).unwrap();
        assert_eq!(r5.index, 5);
        let (r2, _) = a.assign(&cfg, &n("delta"), Some(0)).unwrap();
        assert_eq!(r2.index, 2, "index 0 is acme's");
    }

    #[test]
    fn index_from_owner() {
        let cfg = UidConfig::default();
        assert_eq!(IdRange::index_of_base(&cfg, 200_000), Some(0));
        assert_eq!(IdRange::index_of_base(&cfg, 200_000 + 3 * 65_536), Some(3));
        assert_eq!(IdRange::index_of_base(&cfg, 200_001), None);
        assert_eq!(IdRange::index_of_base(&cfg, 0), None);
    }

    #[test]
    fn exhaustion_is_an_error() {
        let cfg = UidConfig {
            base: u32::MAX - 65_536 - 100,
            size: 65_536,
        };
        let mut a = Allocations::default();
        a.assign(&cfg, &n("a"), None).unwrap();
        assert!(matches!(
            a.assign(&cfg, &n("b"), None),
            Err(UidError::Exhausted(_))
        ));
    }

    #[test]
    fn store_round_trip_and_recovery_from_owner_as_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = UidStore::new(dir.path(), UidConfig::default());
        let missing = dir.path().join("nope");
        let r = store.range_for(&n("acme"), &missing).unwrap();
        assert_eq!(r.index, 0);
        let r = store.range_for(&n("beta"), &missing).unwrap();
        assert_eq!(r.index, 1);
        let store2 = UidStore::new(dir.path(), UidConfig::default());
        assert_eq!(store2.range_for(&n("beta"), &missing).unwrap().index, 1);
        assert_eq!(store2.load().unwrap().tenants.len(), 2);
        if nix::unistd::geteuid().is_root() {
            // uids.json lost (tmpfs state_dir): the data directory's owner gives the range back.
            let fresh = tempfile::tempdir().unwrap();
            let data = dir.path().join("gamma");
            std::fs::create_dir(&data).unwrap();
            std::os::unix::fs::lchown(&data, Some(200_000 + 7 * 65_536), None).unwrap();
            let store3 = UidStore::new(fresh.path(), UidConfig::default());
            assert_eq!(store3.range_for(&n("gamma"), &data).unwrap().index, 7);
        }
    }
}
