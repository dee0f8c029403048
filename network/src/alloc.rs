//! Per-tenant address allocation, remembered in a JSON state file (atomically rewritten on change).
//!
//! Addresses are stable: a tenant keeps its address across restarts until [`Allocator::release`].
//! New allocations continue after the last one handed out (wrapping around), so a released
//! address is reused as late as possible — stale conntrack entries or proxy routes pointing at
//! it are long gone by then.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::atomic::{write_atomic, AtomicWriteError};
use crate::cidr::Ipv4Cidr;

/// Errors of the address allocator.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error("read allocator state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse allocator state {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("allocator state {path} is for subnet {found}, configured subnet is {configured}")]
    SubnetMismatch {
        path: PathBuf,
        found: Ipv4Cidr,
        configured: Ipv4Cidr,
    },
    #[error("allocator state {path}: address {addr} of tenant {tenant:?} is not a tenant address of {subnet}")]
    BadEntry {
        path: PathBuf,
        tenant: String,
        addr: Ipv4Addr,
        subnet: Ipv4Cidr,
    },
    #[error("allocator state {path}: address {addr} is held by both {first:?} and {second:?}")]
    Duplicate {
        path: PathBuf,
        addr: Ipv4Addr,
        first: String,
        second: String,
    },
    #[error("allocate address for tenant {tenant:?}: subnet {subnet} is exhausted")]
    Exhausted { tenant: String, subnet: Ipv4Cidr },
    #[error("allocate address: tenant name must not be empty")]
    EmptyName,
    #[error("write allocator state: {0}")]
    Write(#[from] AtomicWriteError),
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct State {
    version: u32,
    subnet: Ipv4Cidr,
    /// Offset (in the subnet) of the last address handed out.
    last: u64,
    tenants: BTreeMap<String, Ipv4Addr>,
}

/// Stable per-tenant IPv4 addresses in a subnet; the bridge holds the first host address.
#[derive(Debug)]
pub struct Allocator {
    path: PathBuf,
    subnet: Ipv4Cidr,
    last: u64,
    tenants: BTreeMap<String, Ipv4Addr>,
}

impl Allocator {
    /// Loads the state file, or starts empty when it does not exist (the file is created on the
    /// first change). Fails if the file belongs to another subnet or is inconsistent.
    pub fn open(path: impl Into<PathBuf>, subnet: Ipv4Cidr) -> Result<Self, AllocError> {
        let path = path.into();
        let subnet = subnet.trunc();
        let text = match std::fs::read(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(AllocError::Read { path, source }),
        };
        let Some(text) = text else {
            return Ok(Self {
                path,
                subnet,
                last: 1,
                tenants: BTreeMap::new(),
            });
        };
        let state: State = serde_json::from_slice(&text).map_err(|source| AllocError::Parse {
            path: path.clone(),
            source,
        })?;
        if state.subnet.trunc() != subnet {
            return Err(AllocError::SubnetMismatch {
                path,
                found: state.subnet,
                configured: subnet,
            });
        }
        let mut seen: BTreeMap<Ipv4Addr, &String> = BTreeMap::new();
        for (tenant, addr) in &state.tenants {
            if !is_tenant_addr(subnet, *addr) || tenant.is_empty() {
                return Err(AllocError::BadEntry {
                    path,
                    tenant: tenant.clone(),
                    addr: *addr,
                    subnet,
                });
            }
            if let Some(first) = seen.insert(*addr, tenant) {
                return Err(AllocError::Duplicate {
                    path,
                    addr: *addr,
                    first: first.clone(),
                    second: tenant.clone(),
                });
            }
        }
        Ok(Self {
            path,
            subnet,
            last: state.last.clamp(1, subnet.size() - 1),
            tenants: state.tenants,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn subnet(&self) -> Ipv4Cidr {
        self.subnet
    }

    /// The tenant's address, if it has one.
    pub fn get(&self, tenant: &str) -> Option<Ipv4Addr> {
        self.tenants.get(tenant).copied()
    }

    /// All (tenant, address) pairs, sorted by tenant name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Ipv4Addr)> {
        self.tenants.iter().map(|(t, a)| (t.as_str(), *a))
    }

    /// The tenant's address; allocates and persists one if it has none (idempotent).
    pub fn allocate(&mut self, tenant: &str) -> Result<Ipv4Addr, AllocError> {
        if tenant.is_empty() {
            return Err(AllocError::EmptyName);
        }
        if let Some(a) = self.get(tenant) {
            return Ok(a);
        }
        let used: std::collections::BTreeSet<Ipv4Addr> = self.tenants.values().copied().collect();
        let size = self.subnet.size();
        // Tenant offsets are 2..=size-2: 0 is the network, 1 the bridge, size-1 the broadcast.
        let span = size.saturating_sub(3) as i64;
        let start = self.last as i64 - 2;
        let found = (1..=span)
            .map(|step| 2 + (start + step).rem_euclid(span) as u64)
            .filter_map(|off| self.subnet.nth(off).map(|a| (off, a)))
            .find(|(_, a)| !used.contains(a));
        let Some((off, addr)) = found else {
            return Err(AllocError::Exhausted {
                tenant: tenant.to_string(),
                subnet: self.subnet,
            });
        };
        let prev_last = self.last;
        self.last = off;
        self.tenants.insert(tenant.to_string(), addr);
        if let Err(e) = self.save() {
            self.tenants.remove(tenant);
            self.last = prev_last;
            return Err(e);
        }
        Ok(addr)
    }

    /// Forgets the tenant's address (persisted). Returns the address it had.
    pub fn release(&mut self, tenant: &str) -> Result<Option<Ipv4Addr>, AllocError> {
        let Some(addr) = self.tenants.remove(tenant) else {
            return Ok(None);
        };
        if let Err(e) = self.save() {
            self.tenants.insert(tenant.to_string(), addr);
            return Err(e);
        }
        Ok(Some(addr))
    }

    /// Releases every tenant not in `existing` (the supervisor's list of tenants that still exist,
    /// running or not); returns the released names. Used after a crash between a tenant's removal
    /// from the supervisor's store and its release here.
    pub fn retain(&mut self, existing: &[&str]) -> Result<Vec<String>, AllocError> {
        let stale: Vec<String> = self
            .tenants
            .keys()
            .filter(|t| !existing.contains(&t.as_str()))
            .cloned()
            .collect();
        if stale.is_empty() {
            return Ok(stale);
        }
        let backup = self.tenants.clone();
        for t in &stale {
            self.tenants.remove(t);
        }
        if let Err(e) = self.save() {
            self.tenants = backup;
            return Err(e);
        }
        Ok(stale)
    }

    fn save(&self) -> Result<(), AllocError> {
        let state = State {
            version: 1,
            subnet: self.subnet,
            last: self.last,
            tenants: self.tenants.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&state).map_err(|source| AllocError::Parse {
            path: self.path.clone(),
            source,
        })?;
        text.push(b'\n');
        write_atomic(&self.path, &text, 0o600)?;
        Ok(())
    }
}

/// Whether `addr` may be handed to a tenant: inside the subnet, not network/bridge/broadcast.
pub fn is_tenant_addr(subnet: Ipv4Cidr, addr: Ipv4Addr) -> bool {
    match subnet.index_of(addr) {
        Some(i) => i >= 2 && i < subnet.size() - 1,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn allocate_is_idempotent_and_persistent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("addrs.json");
        let mut a = Allocator::open(&p, net("10.88.0.0/24")).unwrap();
        let acme = a.allocate("acme").unwrap();
        let beta = a.allocate("beta").unwrap();
        assert_eq!(acme, Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(beta, Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(a.allocate("acme").unwrap(), acme);
        drop(a);
        let mut a = Allocator::open(&p, net("10.88.0.0/24")).unwrap();
        assert_eq!(a.get("acme"), Some(acme));
        assert_eq!(a.get("beta"), Some(beta));
        assert_eq!(a.allocate("beta").unwrap(), beta);
        assert_eq!(a.entries().count(), 2);
    }

    #[test]
    fn release_forgets_and_reuse_is_delayed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("addrs.json");
        let mut a = Allocator::open(&p, net("10.88.0.0/24")).unwrap();
        let acme = a.allocate("acme").unwrap();
        assert_eq!(a.release("acme").unwrap(), Some(acme));
        assert_eq!(a.release("acme").unwrap(), None);
        // The released .2 is not reused right away.
        assert_eq!(a.allocate("gamma").unwrap(), Ipv4Addr::new(10, 88, 0, 3));
        let a = Allocator::open(&p, net("10.88.0.0/24")).unwrap();
        assert_eq!(a.get("acme"), None);
        assert_eq!(a.get("gamma"), Some(Ipv4Addr::new(10, 88, 0, 3)));
    }

    #[test]
    fn never_hands_out_reserved_addresses_and_exhausts() {
        let d = tempfile::tempdir().unwrap();
        // /29: .0 network, .1 bridge, .7 broadcast → .2..=.6 for tenants.
        let mut a = Allocator::open(d.path().join("s"), net("192.168.5.0/29")).unwrap();
        let mut got: Vec<Ipv4Addr> = (0..5)
            .map(|i| a.allocate(&format!("t{i}")).unwrap())
            .collect();
        got.sort();
        let want: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(192, 168, 5, i)).collect();
        assert_eq!(got, want);
        assert!(matches!(
            a.allocate("t5"),
            Err(AllocError::Exhausted { .. })
        ));
        // Wrap-around finds a hole.
        a.release("t1").unwrap();
        assert_eq!(a.allocate("t6").unwrap(), Ipv4Addr::new(192, 168, 5, 3));
        assert!(matches!(a.allocate(""), Err(AllocError::EmptyName)));
    }

    #[test]
    fn smallest_subnet_has_one_tenant() {
        let d = tempfile::tempdir().unwrap();
        let mut a = Allocator::open(d.path().join("s"), net("10.9.9.0/30")).unwrap();
        assert_eq!(a.allocate("only").unwrap(), Ipv4Addr::new(10, 9, 9, 2));
        assert!(matches!(
            a.allocate("two"),
            Err(AllocError::Exhausted { .. })
        ));
    }

    #[test]
    fn retain_releases_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        let mut a = Allocator::open(&p, net("10.88.0.0/24")).unwrap();
        for t in ["a", "b", "c"] {
            a.allocate(t).unwrap();
        }
        assert_eq!(
            a.retain(&["b"]).unwrap(),
            vec!["a".to_string(), "c".to_string()]
        );
        let a = Allocator::open(&p, net("10.88.0.0/24")).unwrap();
        assert_eq!(
            a.entries().map(|(t, _)| t.to_string()).collect::<Vec<_>>(),
            ["b"]
        );
    }

    #[test]
    fn rejects_foreign_or_corrupt_state() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        let mut a = Allocator::open(&p, net("10.88.0.0/24")).unwrap();
        a.allocate("acme").unwrap();
        assert!(matches!(
            Allocator::open(&p, net("10.99.0.0/24")),
            Err(AllocError::SubnetMismatch { .. })
        ));
        std::fs::write(
            &p,
            r#"{"version":1,"subnet":"10.88.0.0/24","last":2,"tenants":{"x":"10.88.0.1"}}"#,
        )
        .unwrap();
        assert!(matches!(
            Allocator::open(&p, net("10.88.0.0/24")),
            Err(AllocError::BadEntry { .. })
        ));
        std::fs::write(
            &p,
            r#"{"version":1,"subnet":"10.88.0.0/24","last":2,"tenants":{"x":"10.88.0.5","y":"10.88.0.5"}}"#,
        )
        .unwrap();
        assert!(matches!(
            Allocator::open(&p, net("10.88.0.0/24")),
            Err(AllocError::Duplicate { .. })
        ));
        std::fs::write(&p, "{").unwrap();
        let e = Allocator::open(&p, net("10.88.0.0/24")).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    }

    #[test]
    fn reserved_address_predicate() {
        let s = net("10.88.0.0/24");
        assert!(!is_tenant_addr(s, "10.88.0.0".parse().unwrap()));
        assert!(!is_tenant_addr(s, "10.88.0.1".parse().unwrap()));
        assert!(is_tenant_addr(s, "10.88.0.2".parse().unwrap()));
        assert!(is_tenant_addr(s, "10.88.0.254".parse().unwrap()));
        assert!(!is_tenant_addr(s, "10.88.0.255".parse().unwrap()));
        assert!(!is_tenant_addr(s, "10.88.1.2".parse().unwrap()));
    }
}
