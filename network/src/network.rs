//! The applying layer: turns plans into kernel state (rtnetlink for links/addresses/routes,
//! `nft -f -` for the policy) and keeps them in step with the supervisor's tenants.
//!
//! Every operation works in the *calling thread's* network namespace (the host side); tenant
//! namespaces are entered on short-lived threads. Expected call order for a supervisor:
//! [`Network::open`] → [`Network::reconcile`] with the tenants still running (also after a crash)
//! → [`Network::setup_tenant`] when a sandbox starts → [`Network::teardown_tenant`] when it stops
//! → [`Network::delete_tenant`] when the tenant is deleted.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::PathBuf;

use crate::alloc::{AllocError, Allocator};
use crate::config::{ConfigError, NetworkConfig};
use crate::netlink::{Netlink, NetlinkError};
use crate::netns::{run_in_fd, NetnsError, NetnsRef};
use crate::nft::{Nft, NftError};
use crate::plan::{full_ruleset, is_tenant_ifname, nft_delete_all, BridgePlan, TenantPlan};

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Alloc(#[from] AllocError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error("write sysctl {path}: {source}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("set up network of tenant {tenant:?}: {source}")]
    Tenant {
        tenant: String,
        #[source]
        source: Box<NetworkError>,
    },
}

/// What [`Network::setup_tenant`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantNet {
    pub tenant: String,
    pub address: Ipv4Addr,
    pub host_if: String,
    /// `address:gateway_port`: the upstream to put in the proxy routing table.
    pub upstream: SocketAddrV4,
}

/// What [`Network::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Live tenants whose rules are installed.
    pub kept: Vec<String>,
    /// Links deleted because no live tenant owns them.
    pub removed_links: Vec<String>,
    /// Live tenants without an allocated address (nothing installed for them).
    pub without_address: Vec<String>,
}

/// The per-host tenant network: bridge, addresses, policy.
pub struct Network {
    cfg: NetworkConfig,
    alloc: Allocator,
    nft: Nft,
    /// Tenants whose rules are installed, by name.
    active: BTreeMap<String, TenantPlan>,
}

impl Network {
    /// Validates the config and loads the address state file. Touches no kernel state.
    pub fn open(cfg: NetworkConfig, state_file: impl Into<PathBuf>) -> Result<Self, NetworkError> {
        cfg.validate()?;
        let alloc = Allocator::open(state_file, cfg.subnet)?;
        Ok(Self {
            cfg,
            alloc,
            nft: Nft::default(),
            active: BTreeMap::new(),
        })
    }

    /// Uses another `nft` binary.
    pub fn with_nft(mut self, nft: Nft) -> Self {
        self.nft = nft;
        self
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    pub fn allocator(&self) -> &Allocator {
        &self.alloc
    }

    /// The tenant's remembered address.
    pub fn address(&self, tenant: &str) -> Option<Ipv4Addr> {
        self.alloc.get(tenant)
    }

    /// Tenants whose rules are currently installed.
    pub fn active(&self) -> Vec<String> {
        self.active.keys().cloned().collect()
    }

    /// Brings the host side in line with exactly `live` (tenants whose sandboxes run): ensures the
    /// bridge and its address, atomically replaces our nft tables with the rules of the live
    /// tenants, and deletes every tenant veth that no live tenant owns. Call at startup (this is
    /// the crash-restart path) and whenever in doubt. Addresses are not released here — see
    /// [`Network::retain_addresses`].
    pub fn reconcile(&mut self, live: &[&str]) -> Result<ReconcileReport, NetworkError> {
        let mut report = ReconcileReport::default();
        let mut nl = Netlink::new()?;
        let bridge = self.ensure_bridge(&mut nl)?;
        let mut plans = BTreeMap::new();
        for t in live {
            match self.alloc.get(t) {
                Some(addr) => {
                    plans.insert(t.to_string(), TenantPlan::new(&self.cfg, t, addr));
                }
                None => report.without_address.push(t.to_string()),
            }
        }
        let list: Vec<TenantPlan> = plans.values().cloned().collect();
        self.nft.apply(&full_ruleset(&self.cfg, &list))?;
        let owned: Vec<&str> = list.iter().map(|p| p.host_if.as_str()).collect();
        for link in nl.links()? {
            let ours = link.master == Some(bridge) || is_tenant_ifname(&link.name);
            if ours && link.index != bridge && !owned.contains(&link.name.as_str()) {
                match nl.delete_link(link.index) {
                    Ok(()) => report.removed_links.push(link.name),
                    // Gone meanwhile (its namespace died): fine.
                    Err(e) if e.errno() == Some(libc::ENODEV) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        report.kept = plans.keys().cloned().collect();
        self.active = plans;
        Ok(report)
    }

    /// Gives `tenant` its network inside namespace `netns`: allocates (or reuses) its address,
    /// creates the veth pair (host end on the bridge, isolated; `eth0` inside), configures `lo`,
    /// the address, the routes, and installs the tenant's rules. Replaces any previous veth of
    /// the tenant. On failure the veth is removed again.
    pub fn setup_tenant(
        &mut self,
        tenant: &str,
        netns: &NetnsRef,
    ) -> Result<TenantNet, NetworkError> {
        self.setup_inner(tenant, netns)
            .map_err(|e| NetworkError::Tenant {
                tenant: tenant.to_string(),
                source: Box::new(e),
            })
    }

    fn setup_inner(&mut self, tenant: &str, netns: &NetnsRef) -> Result<TenantNet, NetworkError> {
        let addr = self.alloc.allocate(tenant)?;
        let plan = TenantPlan::new(&self.cfg, tenant, addr);
        let ns = netns.open()?;
        let mut nl = Netlink::new()?;
        let bridge = match nl.link(&self.cfg.bridge)? {
            Some(l) => l.index,
            None => self.ensure_bridge(&mut nl)?,
        };
        nl.delete_link_by_name(&plan.host_if)?;
        let host_index = nl.create_veth(&plan.host_if, &plan.peer_if, ns.as_fd())?;
        let result = (|| -> Result<(), NetworkError> {
            nl.set_bridge_port(host_index, bridge, true)?;
            nl.set_up(host_index)?;
            let inside = plan.clone();
            run_in_fd(ns.as_fd(), &format!("tenant {tenant}"), move || {
                configure_inside(&inside)
            })??;
            self.install_rules(&plan)?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = nl.delete_link(host_index);
            return Err(e);
        }
        Ok(self.activate(plan))
    }

    /// Takes over the network of a sandbox left running by a previous supervisor: when the
    /// tenant has an address and its host veth exists, it is counted as active (its rules are
    /// restored by the next [`Network::reconcile`]) and nothing in the kernel changes; returns
    /// `None` otherwise (then call [`Network::setup_tenant`]).
    pub fn adopt_tenant(&mut self, tenant: &str) -> Result<Option<TenantNet>, NetworkError> {
        let Some(addr) = self.alloc.get(tenant) else {
            return Ok(None);
        };
        let plan = TenantPlan::new(&self.cfg, tenant, addr);
        let mut nl = Netlink::new()?;
        let (Some(link), Some(bridge)) = (nl.link(&plan.host_if)?, nl.link(&self.cfg.bridge)?)
        else {
            return Ok(None);
        };
        if link.master != Some(bridge.index) {
            return Ok(None);
        }
        Ok(Some(self.activate(plan)))
    }

    /// Counts the tenant of `plan` as active (its rules belong in the next reconcile) and
    /// describes its network.
    fn activate(&mut self, plan: TenantPlan) -> TenantNet {
        let net = TenantNet {
            tenant: plan.tenant.clone(),
            address: plan.addr,
            host_if: plan.host_if.clone(),
            upstream: plan.upstream(),
        };
        self.active.insert(plan.tenant.clone(), plan);
        net
    }

    /// Removes the tenant's rules and veth pair; keeps its address (the tenant still exists).
    /// Idempotent.
    pub fn teardown_tenant(&mut self, tenant: &str) -> Result<(), NetworkError> {
        let plan = match self.active.get(tenant) {
            Some(p) => Some(p.clone()),
            None => self
                .alloc
                .get(tenant)
                .map(|a| TenantPlan::new(&self.cfg, tenant, a)),
        };
        let host_if = crate::plan::host_ifname(tenant);
        if let Some(plan) = plan {
            self.active.remove(tenant);
            if self.nft.apply(&plan.nft_remove(&self.cfg)).is_err() {
                // Rules in an unexpected state: rebuild ours from what we know is live.
                let list: Vec<TenantPlan> = self.active.values().cloned().collect();
                self.nft.apply(&full_ruleset(&self.cfg, &list))?;
            }
        }
        Netlink::new()?.delete_link_by_name(&host_if)?;
        Ok(())
    }

    /// Tears the tenant's network down and releases its address. Returns the released address.
    pub fn delete_tenant(&mut self, tenant: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
        self.teardown_tenant(tenant)?;
        Ok(self.alloc.release(tenant)?)
    }

    /// Releases the addresses of tenants not in `existing` (all tenants the supervisor knows,
    /// running or not). Returns the released tenant names.
    pub fn retain_addresses(&mut self, existing: &[&str]) -> Result<Vec<String>, NetworkError> {
        Ok(self.alloc.retain(existing)?)
    }

    /// Names of the links enslaved to the bridge (empty if there is no bridge).
    pub fn bridge_ports(&self) -> Result<Vec<String>, NetworkError> {
        let mut nl = Netlink::new()?;
        let Some(bridge) = nl.link(&self.cfg.bridge)? else {
            return Ok(Vec::new());
        };
        let mut ports: Vec<String> = nl
            .links()?
            .into_iter()
            .filter(|l| l.master == Some(bridge.index))
            .map(|l| l.name)
            .collect();
        ports.sort();
        Ok(ports)
    }

    /// Removes everything this layer created on the host side: our nft tables, all tenant
    /// veths and the bridge. Addresses stay remembered.
    pub fn destroy(&mut self) -> Result<(), NetworkError> {
        self.nft.apply(&nft_delete_all())?;
        let mut nl = Netlink::new()?;
        let bridge = nl.link(&self.cfg.bridge)?.map(|l| l.index);
        for link in nl.links()? {
            if Some(link.index) != bridge
                && ((bridge.is_some() && link.master == bridge) || is_tenant_ifname(&link.name))
            {
                match nl.delete_link(link.index) {
                    Err(e) if e.errno() != Some(libc::ENODEV) => return Err(e.into()),
                    _ => {}
                }
            }
        }
        if let Some(b) = bridge {
            nl.delete_link(b)?;
        }
        self.active.clear();
        Ok(())
    }

    fn ensure_bridge(&self, nl: &mut Netlink) -> Result<u32, NetworkError> {
        let plan = BridgePlan::new(&self.cfg);
        let index = nl.ensure_bridge(&plan.name)?;
        nl.add_address(index, plan.addr)?;
        nl.set_up(index)?;
        if self.cfg.egress_nat {
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        }
        Ok(index)
    }

    fn install_rules(&self, plan: &TenantPlan) -> Result<(), NetworkError> {
        if self.nft.apply(&plan.nft_add(&self.cfg)).is_ok() {
            return Ok(());
        }
        // Base tables missing or an element owned by a stale tenant: rebuild everything.
        let mut list: Vec<TenantPlan> = self
            .active
            .values()
            .filter(|p| p.tenant != plan.tenant)
            .cloned()
            .collect();
        list.push(plan.clone());
        self.nft.apply(&full_ruleset(&self.cfg, &list))?;
        Ok(())
    }
}

/// Runs inside the tenant's namespace: `lo` up, address, `eth0` up, routes.
fn configure_inside(plan: &TenantPlan) -> Result<(), NetworkError> {
    let mut nl = Netlink::new()?;
    nl.set_up_by_name("lo")?;
    let op = format!("configure {} of tenant {}", plan.peer_if, plan.tenant);
    let index = nl
        .link(&plan.peer_if)?
        .ok_or_else(|| NetlinkError::NoSuchLink {
            op,
            name: plan.peer_if.clone(),
        })?
        .index;
    nl.add_address(index, plan.cidr())?;
    nl.set_up(index)?;
    for r in &plan.routes {
        nl.add_route(r.dest, r.via, index)?;
    }
    Ok(())
}

fn write_sysctl(path: &str, value: &str) -> Result<(), NetworkError> {
    std::fs::write(path, value).map_err(|source| NetworkError::Sysctl {
        path: PathBuf::from(path),
        source,
    })
}
