//! reeved's side of the per-tenant network (issue 5, `[network]` in reeved.toml): one
//! [`reeve_network::Network`] (bridge, addresses, nftables policy) in the namespace reeved runs
//! in, plus the hostname routing table written as Traefik and Caddy configuration.
//!
//! Life of a tenant's network: [`TenantNetworks::start`] once the sandbox is created (before its
//! gateway runs: veth, address, routes, `lo`, rules, route entry); [`TenantNetworks::stop`] when
//! the sandbox is gone (rules and veth removed, address kept); [`TenantNetworks::delete`] when the
//! tenant is deleted (address released). After a crash of reeved, sandboxes still running are
//! taken over with [`TenantNetworks::adopt`] and [`TenantNetworks::reconcile`] then rewrites our
//! nftables tables and deletes stale veths, so only live tenants remain.
//!
//! All methods block (netlink, `nft`, file writes): call them from blocking threads. Entering
//! a tenant's namespace happens on a short-lived thread of its own inside reeve-network
//! (`setns` only changes the calling thread, and that thread ends right after).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use reeve_network::{CaddyOptions, NetnsRef, Network, NetworkError, Routes};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, NetworkSection};

/// Errors of the tenant networks.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network: {0}")]
    Config(#[from] ConfigError),
    #[error("network of tenant {tenant}: {op}: {source}")]
    Tenant {
        tenant: String,
        op: &'static str,
        #[source]
        source: Box<NetworkError>,
    },
    #[error("network: {op}: {source}")]
    Network {
        op: &'static str,
        #[source]
        source: Box<NetworkError>,
    },
    #[error("write route table {path}: {source}")]
    Routes {
        path: PathBuf,
        #[source]
        source: reeve_network::routes::RoutesError,
    },
    #[error("network: mkdir {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("network: {0}")]
    Domain(#[source] reeve_network::routes::RoutesError),
    #[error("route of tenant {tenant}: {source}")]
    Route {
        tenant: String,
        #[source]
        source: reeve_network::routes::RoutesError,
    },
}

fn tenant_err<'a>(tenant: &'a str, op: &'static str) -> impl FnOnce(NetworkError) -> NetError + 'a {
    move |source| NetError::Tenant {
        tenant: tenant.to_string(),
        op,
        source: Box::new(source),
    }
}

fn net_err(op: &'static str) -> impl FnOnce(NetworkError) -> NetError {
    move |source| NetError::Network {
        op,
        source: Box::new(source),
    }
}

/// One row of `reeved routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub tenant: String,
    pub host: String,
    pub upstream: SocketAddrV4,
}

struct Inner {
    net: Network,
    routes: Routes,
}

/// The network of every tenant of this reeved.
pub struct TenantNetworks {
    inner: Mutex<Inner>,
    /// A copy of the route table, so readers never wait behind a tenant's set-up.
    snapshot: Mutex<Vec<RouteEntry>>,
    traefik_file: Option<PathBuf>,
    caddy_file: Option<PathBuf>,
    caddy: CaddyOptions,
}

/// Where the address allocations live (kept across restarts; released on tenant delete).
pub fn addresses_file(state_dir: &Path) -> PathBuf {
    crate::supervisor::Paths::new(state_dir)
        .network
        .join("addresses.json")
}

impl TenantNetworks {
    /// Validates the section and loads the remembered addresses; touches no kernel state.
    pub fn open(section: &NetworkSection, state_dir: &Path) -> Result<Self, NetError> {
        let cfg = section.network_config()?;
        let file = addresses_file(state_dir);
        if let Some(dir) = file.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| NetError::StateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let routes = Routes::new(&cfg.domain).map_err(NetError::Domain)?;
        let net = Network::open(cfg, file).map_err(net_err("open address state"))?;
        Ok(TenantNetworks {
            inner: Mutex::new(Inner { net, routes }),
            snapshot: Mutex::new(Vec::new()),
            traefik_file: section.traefik_file.clone(),
            caddy_file: section.caddy_file.clone(),
            caddy: section.caddy_options(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives the sandbox whose init is `pid` its network and routes `<tenant>.<domain>` to it.
    pub fn start(&self, tenant: &str, pid: i32) -> Result<SocketAddrV4, NetError> {
        let mut g = self.lock();
        let t = g
            .net
            .setup_tenant(tenant, &NetnsRef::Pid(pid))
            .map_err(tenant_err(tenant, "set up"))?;
        self.route(&mut g, tenant, Some(t.upstream))?;
        Ok(t.upstream)
    }

    /// Takes over the network of a sandbox a previous reeved left running (set up again when
    /// its veth is missing).
    pub fn adopt(&self, tenant: &str, pid: i32) -> Result<SocketAddrV4, NetError> {
        let mut g = self.lock();
        let found = g
            .net
            .adopt_tenant(tenant)
            .map_err(tenant_err(tenant, "adopt"))?;
        let upstream = match found {
            Some(t) => t.upstream,
            None => {
                tracing::warn!("tenant {tenant}: adopted sandbox has no network: setting it up");
                g.net
                    .setup_tenant(tenant, &NetnsRef::Pid(pid))
                    .map_err(tenant_err(tenant, "set up adopted sandbox"))?
                    .upstream
            }
        };
        self.route(&mut g, tenant, Some(upstream))?;
        Ok(upstream)
    }

    /// The sandbox is gone: drop its route, rules and veth (the address stays).
    pub fn stop(&self, tenant: &str) -> Result<(), NetError> {
        let mut g = self.lock();
        let r = g
            .net
            .teardown_tenant(tenant)
            .map_err(tenant_err(tenant, "tear down"));
        self.route(&mut g, tenant, None)?;
        r
    }

    /// The tenant is deleted: as [`Self::stop`], and its address is released.
    pub fn delete(&self, tenant: &str) -> Result<Option<Ipv4Addr>, NetError> {
        let mut g = self.lock();
        let r = g
            .net
            .delete_tenant(tenant)
            .map_err(tenant_err(tenant, "delete"));
        self.route(&mut g, tenant, None)?;
        r
    }

    /// Brings the host side in line with the tenants whose network is active (set up or
    /// adopted by this reeved): our nftables tables are replaced in one transaction and veths
    /// of no live tenant are deleted; addresses of tenants not in `existing` are released.
    pub fn reconcile(&self, existing: &[&str]) -> Result<reeve_network::ReconcileReport, NetError> {
        let mut g = self.lock();
        let active = g.net.active();
        let live: Vec<&str> = active.iter().map(String::as_str).collect();
        let report = g.net.reconcile(&live).map_err(net_err("reconcile"))?;
        let released = g
            .net
            .retain_addresses(existing)
            .map_err(net_err("release addresses of removed tenants"))?;
        if !released.is_empty() {
            tracing::info!("network: released the addresses of removed tenants {released:?}");
        }
        // The route table holds exactly the live tenants.
        g.routes.retain(|t| active.iter().any(|a| a == t));
        self.write(&g.routes)?;
        Ok(report)
    }

    /// Clean shutdown (every sandbox is stopped): remove our tables, veths and bridge, and
    /// write empty route tables. Addresses stay remembered.
    pub fn shutdown(&self) -> Result<(), NetError> {
        let mut g = self.lock();
        g.routes.retain(|_| false);
        self.write(&g.routes)?;
        g.net
            .destroy()
            .map_err(net_err("remove bridge, veths and rules"))
    }

    /// The routing table.
    pub fn routes(&self) -> Vec<RouteEntry> {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The tenant's remembered address.
    pub fn address(&self, tenant: &str) -> Option<Ipv4Addr> {
        self.lock().net.address(tenant)
    }

    fn route(
        &self,
        g: &mut Inner,
        tenant: &str,
        upstream: Option<SocketAddrV4>,
    ) -> Result<(), NetError> {
        let changed = match upstream {
            Some(u) => g
                .routes
                .insert(tenant, u)
                .map_err(|source| NetError::Route {
                    tenant: tenant.to_string(),
                    source,
                })?,
            None => g.routes.remove(tenant).is_some(),
        };
        if changed {
            self.write(&g.routes)?;
        }
        Ok(())
    }

    fn write(&self, routes: &Routes) -> Result<(), NetError> {
        let rows: Vec<RouteEntry> = routes
            .entries()
            .into_iter()
            .map(|(tenant, host, upstream)| RouteEntry {
                tenant,
                host,
                upstream,
            })
            .collect();
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = rows;
        if let Some(p) = &self.traefik_file {
            routes.write_traefik(p).map_err(|source| NetError::Routes {
                path: p.clone(),
                source,
            })?;
        }
        if let Some(p) = &self.caddy_file {
            routes
                .write_caddy(p, &self.caddy)
                .map_err(|source| NetError::Routes {
                    path: p.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// `reeved routes` as a table.
pub fn routes_table(routes: &[RouteEntry]) -> String {
    let w = routes
        .iter()
        .map(|r| r.host.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!("{:<w$}  UPSTREAM\n", "HOST");
    for r in routes {
        out.push_str(&format!("{:<w$}  http://{}\n", r.host, r.upstream));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(dir: &Path) -> NetworkSection {
        NetworkSection {
            enabled: true,
            domain: "gw.test".into(),
            caddy_file: Some(dir.join("Caddyfile")),
            traefik_file: Some(dir.join("traefik.yml")),
            ..NetworkSection::default()
        }
    }

    #[test]
    fn open_touches_no_kernel_state_and_writes_no_file() {
        let d = tempfile::tempdir().unwrap();
        let n = TenantNetworks::open(&section(d.path()), d.path()).unwrap();
        assert!(n.routes().is_empty());
        assert_eq!(n.address("acme"), None);
        assert!(!d.path().join("Caddyfile").exists());
        assert!(!addresses_file(d.path()).exists());
    }

    #[test]
    fn open_refuses_a_bad_section() {
        let d = tempfile::tempdir().unwrap();
        let mut s = section(d.path());
        s.subnet = "10.0.0.0/31".into();
        let e = TenantNetworks::open(&s, d.path()).err().expect("refused");
        assert!(e.to_string().contains("/30"), "{e}");
    }

    #[test]
    fn route_table_text() {
        let rows = vec![
            RouteEntry {
                tenant: "acme".into(),
                host: "acme.gw.test".into(),
                upstream: "10.88.0.2:8080".parse().unwrap(),
            },
            RouteEntry {
                tenant: "b".into(),
                host: "b.gw.test".into(),
                upstream: "10.88.0.3:8080".parse().unwrap(),
            },
        ];
        assert_eq!(
            routes_table(&rows),
            "HOST          UPSTREAM\nacme.gw.test  http://10.88.0.2:8080\nb.gw.test     http://10.88.0.3:8080\n"
        );
        assert_eq!(routes_table(&[]), "HOST  UPSTREAM\n");
    }
}
