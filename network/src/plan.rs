//! The network plan of the bridge and of one tenant, as plain data, and the nftables rule text
//! that implements the policy. Nothing here touches the kernel.
//!
//! Policy (issue 5), with `B` the bridge and `T` a tenant:
//! - T → T: refused at L3 (T's only route is via the bridge address) by the `inet reeve`
//!   prerouting chain with an ICMP error (so connects fail at once), and dropped at L2 by bridge
//!   port isolation plus the `bridge reeve` forward chain.
//! - T → host: only the configured service endpoints (`from-<t>` chains); the rest is refused.
//! - host (proxy) → T: only the gateway port (`to-<t>` chains); the rest is refused.
//! - T → elsewhere: refused unless `egress_nat`, then accepted (`egress-<t>`) and masqueraded
//!   in `ip reeve_nat`.
//! - Anti-spoofing: a tenant port may only send IPv4/ARP from the tenant's own address
//!   (`port-<t>` chains of `bridge reeve`), so address-keyed dispatch cannot be abused; a port
//!   with our name pattern but no registered tenant sends nothing. (Matched by interface name:
//!   this kernel lacks `meta ibrname`; it assumes one reeve network per host.)
//!
//! Everything per tenant lives in chains named after the tenant plus one element per dispatch
//! map, so removal is exact; [`full_ruleset`] rebuilds all our tables for a set of live tenants
//! in one atomic transaction (the crash-restart story).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::cidr::Ipv4Cidr;
use crate::config::NetworkConfig;

/// The nft table holding filtering (family `inet`).
pub const INET_TABLE: &str = "reeve";
/// The nft table holding the per-port anti-spoofing and L2 isolation (family `bridge`).
pub const BRIDGE_TABLE: &str = "reeve";
/// The nft table holding egress masquerading (family `ip`), present only with `egress_nat`.
pub const NAT_TABLE: &str = "reeve_nat";
/// Name of the tenant's interface inside its network namespace.
pub const PEER_IFNAME: &str = "eth0";

const MAP_FROM: &str = "tenant_from";
const MAP_TO: &str = "tenant_to";
const MAP_EGRESS: &str = "tenant_egress";
const MAP_PORT: &str = "tenant_port";

/// nft wildcard matching every host-side veth name of the direct form (`rv-<tenant>`).
const IFNAME_GLOB_DIRECT: &str = "rv-*";
/// nft wildcard matching every host-side veth name of the hashed form (`rv_<hex>`).
const IFNAME_GLOB_HASHED: &str = "rv_*";

/// Host-side veth name: `rv-<tenant>` when that fits IFNAMSIZ and the tenant name is plain
/// `[A-Za-z0-9-]`, else `rv_` + 12 hex digits of SHA-256(tenant). The two forms never collide.
pub fn host_ifname(tenant: &str) -> String {
    if tenant.len() <= 12 && plain(tenant) {
        format!("rv-{tenant}")
    } else {
        format!("rv_{}", &hex_hash(tenant)[..12])
    }
}

/// Whether an interface name has the shape of our host-side veths.
pub fn is_tenant_ifname(name: &str) -> bool {
    name.starts_with("rv-") || (name.starts_with("rv_") && name.len() == 15)
}

/// Key used in nft chain names: the tenant name when plain (≤ 64 chars of `[A-Za-z0-9-]`), else
/// `_` + 16 hex digits of SHA-256(tenant) (the underscore keeps the forms apart).
fn chain_key(tenant: &str) -> String {
    if tenant.len() <= 64 && plain(tenant) {
        format!("-{tenant}")
    } else {
        format!("_{}", &hex_hash(tenant)[..16])
    }
}

fn plain(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn hex_hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The host bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePlan {
    pub name: String,
    /// Interface address of the bridge, with the subnet prefix (`10.88.0.1/24`).
    pub addr: Ipv4Cidr,
}

impl BridgePlan {
    pub fn new(cfg: &NetworkConfig) -> Self {
        Self {
            name: cfg.bridge.clone(),
            addr: cfg.bridge_cidr(),
        }
    }
}

/// A route inside the tenant's namespace; `via: None` is an on-link route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    pub dest: Ipv4Cidr,
    pub via: Option<Ipv4Addr>,
}

/// Everything about one tenant's network, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPlan {
    pub tenant: String,
    /// Host end of the veth pair, enslaved to the bridge, port-isolated.
    pub host_if: String,
    /// Tenant end of the veth pair, created directly inside the tenant's namespace.
    pub peer_if: String,
    /// The tenant's address; configured as a /32 so that *all* its traffic, even to other
    /// tenants, is routed through the bridge address where the policy applies.
    pub addr: Ipv4Addr,
    /// Always 32 (see `addr`).
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// In order: an on-link host route to the gateway, then the default route via it.
    pub routes: Vec<RoutePlan>,
    pub gateway_port: u16,
    key: String,
}

impl TenantPlan {
    pub fn new(cfg: &NetworkConfig, tenant: &str, addr: Ipv4Addr) -> Self {
        let gateway = cfg.bridge_addr();
        Self {
            tenant: tenant.to_string(),
            host_if: host_ifname(tenant),
            peer_if: PEER_IFNAME.to_string(),
            addr,
            prefix: 32,
            gateway,
            routes: vec![
                RoutePlan {
                    dest: Ipv4Cidr::host(gateway),
                    via: None,
                },
                RoutePlan {
                    dest: Ipv4Cidr::any(),
                    via: Some(gateway),
                },
            ],
            gateway_port: cfg.gateway_port,
            key: chain_key(tenant),
        }
    }

    /// The interface address inside the tenant (`addr/prefix`).
    pub fn cidr(&self) -> Ipv4Cidr {
        Ipv4Cidr::new(self.addr, self.prefix).unwrap_or(Ipv4Cidr::host(self.addr))
    }

    /// Where the proxy should send this tenant's requests.
    pub fn upstream(&self) -> std::net::SocketAddrV4 {
        std::net::SocketAddrV4::new(self.addr, self.gateway_port)
    }

    /// Names of this tenant's chains in `inet reeve` (for inspection and tests).
    pub fn inet_chains(&self, cfg: &NetworkConfig) -> Vec<String> {
        self.inet_chain_rules(cfg)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// Name of this tenant's chain in `bridge reeve`.
    pub fn bridge_chain(&self) -> String {
        format!("port{}", self.key)
    }

    fn inet_chain_rules(&self, cfg: &NetworkConfig) -> Vec<(String, Vec<String>)> {
        let mut from = Vec::new();
        for s in &cfg.services {
            for proto in ["tcp", "udp"] {
                from.push(format!(
                    "ip daddr {} {proto} dport {} accept",
                    s.ip(),
                    s.port()
                ));
            }
        }
        let mut chains = vec![
            (format!("from{}", self.key), from),
            (
                format!("to{}", self.key),
                vec![format!("tcp dport {} accept", self.gateway_port)],
            ),
        ];
        if cfg.egress_nat {
            chains.push((
                format!("egress{}", self.key),
                vec![format!("oifname != \"{}\" accept", cfg.bridge)],
            ));
        }
        chains
    }

    /// (map, key, chain) triples of `inet reeve`.
    fn inet_elements(&self, cfg: &NetworkConfig) -> Vec<(&'static str, String, String)> {
        let mut e = vec![
            (MAP_FROM, self.addr.to_string(), format!("from{}", self.key)),
            (MAP_TO, self.addr.to_string(), format!("to{}", self.key)),
        ];
        if cfg.egress_nat {
            e.push((
                MAP_EGRESS,
                self.addr.to_string(),
                format!("egress{}", self.key),
            ));
        }
        e
    }

    fn bridge_rules(&self) -> Vec<String> {
        vec![
            "ether type != { ip, arp } drop".to_string(),
            format!("ether type ip ip saddr != {} drop", self.addr),
            format!("ether type arp arp saddr ip != {} drop", self.addr),
            "accept".to_string(),
        ]
    }

    /// An nft transaction adding (or re-adding; idempotent) this tenant's rules.
    /// Requires the base tables of [`full_ruleset`].
    pub fn nft_add(&self, cfg: &NetworkConfig) -> String {
        let mut out = String::new();
        let chain = |out: &mut String, family: &str, table: &str, name: &str, rules: &[String]| {
            let _ = writeln!(out, "add chain {family} {table} {name}");
            let _ = writeln!(out, "flush chain {family} {table} {name}");
            for r in rules {
                let _ = writeln!(out, "add rule {family} {table} {name} {r}");
            }
        };
        for (name, rules) in self.inet_chain_rules(cfg) {
            chain(&mut out, "inet", INET_TABLE, &name, &rules);
        }
        chain(
            &mut out,
            "bridge",
            BRIDGE_TABLE,
            &self.bridge_chain(),
            &self.bridge_rules(),
        );
        for (family, table, map, key, target) in self.all_elements(cfg) {
            // add + delete + add: replaces an element that may already exist, fails on none.
            let _ = writeln!(
                out,
                "add element {family} {table} {map} {{ {key} : jump {target} }}"
            );
            let _ = writeln!(out, "delete element {family} {table} {map} {{ {key} }}");
            let _ = writeln!(
                out,
                "add element {family} {table} {map} {{ {key} : jump {target} }}"
            );
        }
        out
    }

    /// An nft transaction removing this tenant's rules; succeeds whether or not they exist
    /// (provided the base tables exist and no *other* tenant owns the same keys).
    pub fn nft_remove(&self, cfg: &NetworkConfig) -> String {
        let mut out = String::new();
        let mut chains: Vec<(&str, &str, String)> = self
            .inet_chain_rules(cfg)
            .into_iter()
            .map(|(c, _)| ("inet", INET_TABLE, c))
            .collect();
        chains.push(("bridge", BRIDGE_TABLE, self.bridge_chain()));
        for (family, table, name) in &chains {
            let _ = writeln!(out, "add chain {family} {table} {name}");
        }
        for (family, table, map, key, target) in self.all_elements(cfg) {
            let _ = writeln!(
                out,
                "add element {family} {table} {map} {{ {key} : jump {target} }}"
            );
            let _ = writeln!(out, "delete element {family} {table} {map} {{ {key} }}");
        }
        for (family, table, name) in &chains {
            let _ = writeln!(out, "flush chain {family} {table} {name}");
            let _ = writeln!(out, "delete chain {family} {table} {name}");
        }
        out
    }

    fn all_elements(
        &self,
        cfg: &NetworkConfig,
    ) -> Vec<(&'static str, &'static str, &'static str, String, String)> {
        let mut v: Vec<_> = self
            .inet_elements(cfg)
            .into_iter()
            .map(|(m, k, c)| ("inet", INET_TABLE, m, k, c))
            .collect();
        v.push((
            "bridge",
            BRIDGE_TABLE,
            MAP_PORT,
            format!("\"{}\"", self.host_if),
            self.bridge_chain(),
        ));
        v
    }
}

/// Deletes our tables if they exist (the `add` before `delete` makes it unconditional).
pub fn nft_delete_all() -> String {
    format!(
        "table inet {INET_TABLE}\ndelete table inet {INET_TABLE}\n\
         table bridge {BRIDGE_TABLE}\ndelete table bridge {BRIDGE_TABLE}\n\
         table ip {NAT_TABLE}\ndelete table ip {NAT_TABLE}\n"
    )
}

/// One atomic nft transaction replacing all our tables with the rules for exactly `tenants`.
pub fn full_ruleset(cfg: &NetworkConfig, tenants: &[TenantPlan]) -> String {
    let br = &cfg.bridge;
    let mut out = nft_delete_all();

    // inet reeve
    let _ = writeln!(out, "table inet {INET_TABLE} {{");
    for t in tenants {
        for (name, rules) in t.inet_chain_rules(cfg) {
            write_chain(&mut out, &name, &[], &rules);
        }
    }
    let mut maps = vec![MAP_FROM, MAP_TO];
    if cfg.egress_nat {
        maps.push(MAP_EGRESS);
    }
    for map in maps {
        let elems: Vec<String> = tenants
            .iter()
            .flat_map(|t| t.inet_elements(cfg))
            .filter(|(m, _, _)| *m == map)
            .map(|(_, k, c)| format!("{k} : jump {c}"))
            .collect();
        write_map(&mut out, map, "ipv4_addr", &elems);
    }
    let reject = [
        "meta l4proto tcp reject with tcp reset".to_string(),
        "reject with icmpx admin-prohibited".to_string(),
    ];
    // Refuse early (and loudly: an ICMP error, not a silent drop) what is not for the host:
    // tenant → tenant always, tenant → elsewhere unless egress NAT. Without this, a host with
    // forwarding disabled silently drops such packets and connects hang until they time out.
    let mut prerouting = vec![format!(
        "iifname \"{br}\" ip daddr {} ip daddr != {} reject with icmpx admin-prohibited",
        cfg.subnet.trunc(),
        cfg.bridge_addr()
    )];
    if !cfg.egress_nat {
        prerouting.push(format!(
            "iifname \"{br}\" fib daddr type != local reject with icmpx admin-prohibited"
        ));
    }
    write_chain(
        &mut out,
        "prerouting",
        &["type filter hook prerouting priority filter; policy accept;"],
        &prerouting,
    );
    let mut input = vec![
        format!("iifname \"{br}\" ct state established,related accept"),
        format!("iifname \"{br}\" ip saddr vmap @{MAP_FROM}"),
    ];
    input.extend(reject.iter().map(|r| format!("iifname \"{br}\" {r}")));
    write_chain(
        &mut out,
        "input",
        &["type filter hook input priority filter; policy accept;"],
        &input,
    );

    let mut forward = vec![
        format!("iifname \"{br}\" oifname \"{br}\" reject with icmpx admin-prohibited"),
        format!("oifname \"{br}\" ct state established,related accept"),
        format!("oifname \"{br}\" drop"),
        format!("iifname \"{br}\" ct state established,related accept"),
    ];
    if cfg.egress_nat {
        forward.push(format!("iifname \"{br}\" ip saddr vmap @{MAP_EGRESS}"));
    }
    forward.push(format!(
        "iifname \"{br}\" reject with icmpx admin-prohibited"
    ));
    write_chain(
        &mut out,
        "forward",
        &["type filter hook forward priority filter; policy accept;"],
        &forward,
    );

    let mut output = vec![
        format!("oifname \"{br}\" ct state established,related accept"),
        format!("oifname \"{br}\" ip daddr vmap @{MAP_TO}"),
    ];
    output.extend(reject.iter().map(|r| format!("oifname \"{br}\" {r}")));
    write_chain(
        &mut out,
        "output",
        &["type filter hook output priority filter; policy accept;"],
        &output,
    );
    out.push_str("}\n");

    // bridge reeve
    let _ = writeln!(out, "table bridge {BRIDGE_TABLE} {{");
    for t in tenants {
        write_chain(&mut out, &t.bridge_chain(), &[], &t.bridge_rules());
    }
    let elems: Vec<String> = tenants
        .iter()
        .map(|t| format!("\"{}\" : jump {}", t.host_if, t.bridge_chain()))
        .collect();
    write_map(&mut out, MAP_PORT, "ifname", &elems);
    write_chain(
        &mut out,
        "prerouting",
        &["type filter hook prerouting priority filter; policy accept;"],
        &[
            format!("iifname vmap @{MAP_PORT}"),
            format!("iifname \"{IFNAME_GLOB_DIRECT}\" drop"),
            format!("iifname \"{IFNAME_GLOB_HASHED}\" drop"),
        ],
    );
    write_chain(
        &mut out,
        "forward",
        &["type filter hook forward priority filter; policy accept;"],
        &[
            format!("iifname \"{IFNAME_GLOB_DIRECT}\" drop"),
            format!("iifname \"{IFNAME_GLOB_HASHED}\" drop"),
        ],
    );
    out.push_str("}\n");

    if cfg.egress_nat {
        let _ = writeln!(out, "table ip {NAT_TABLE} {{");
        write_chain(
            &mut out,
            "postrouting",
            &["type nat hook postrouting priority srcnat; policy accept;"],
            &[format!(
                "ip saddr {} oifname != \"{br}\" masquerade",
                cfg.subnet.trunc()
            )],
        );
        out.push_str("}\n");
    }
    out
}

fn write_chain(out: &mut String, name: &str, head: &[&str], rules: &[String]) {
    let _ = writeln!(out, "\tchain {name} {{");
    for h in head {
        let _ = writeln!(out, "\t\t{h}");
    }
    for r in rules {
        let _ = writeln!(out, "\t\t{r}");
    }
    out.push_str("\t}\n");
}

fn write_map(out: &mut String, name: &str, key_type: &str, elems: &[String]) {
    let _ = writeln!(out, "\tmap {name} {{");
    let _ = writeln!(out, "\t\ttype {key_type} : verdict");
    if !elems.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", elems.join(", "));
    }
    out.push_str("\t}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample;

    fn acme(cfg: &NetworkConfig) -> TenantPlan {
        TenantPlan::new(cfg, "acme", "10.88.0.2".parse().unwrap())
    }

    #[test]
    fn interface_names_fit_ifnamsiz_and_do_not_collide() {
        assert_eq!(host_ifname("acme"), "rv-acme");
        assert_eq!(host_ifname("twelve-chars"), "rv-twelve-chars");
        let long = host_ifname("thirteen-char");
        assert_eq!(long.len(), 15);
        assert!(long.starts_with("rv_"), "{long}");
        assert_ne!(host_ifname("a.b"), "rv-a.b");
        assert_ne!(
            host_ifname("tenant-number-0001"),
            host_ifname("tenant-number-0002")
        );
        for t in ["acme", "thirteen-char", "with space", "ünï"] {
            let n = host_ifname(t);
            assert!(n.len() <= 15 && is_tenant_ifname(&n), "{n}");
            assert!(crate::config::valid_ifname(&n), "{n}");
        }
        assert!(!is_tenant_ifname("eth0"));
        assert!(!is_tenant_ifname("reeve0"));
    }

    #[test]
    fn tenant_plan_addresses_and_routes() {
        let cfg = sample();
        let p = acme(&cfg);
        assert_eq!(p.host_if, "rv-acme");
        assert_eq!(p.peer_if, "eth0");
        assert_eq!(p.prefix, 32);
        assert_eq!(p.gateway, Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(p.routes[0].dest.to_string(), "10.88.0.1/32");
        assert_eq!(p.routes[0].via, None);
        assert_eq!(p.routes[1].dest.to_string(), "0.0.0.0/0");
        assert_eq!(p.routes[1].via, Some(Ipv4Addr::new(10, 88, 0, 1)));
        assert_eq!(p.upstream().to_string(), "10.88.0.2:8080");
        assert_eq!(p.inet_chains(&cfg), ["from-acme", "to-acme"]);
        assert_eq!(p.bridge_chain(), "port-acme");
        let b = BridgePlan::new(&cfg);
        assert_eq!(
            (b.name.as_str(), b.addr.to_string()),
            ("reeve0", "10.88.0.1/24".to_string())
        );
    }

    #[test]
    fn full_ruleset_text() {
        let cfg = sample();
        let beta = TenantPlan::new(&cfg, "beta", "10.88.0.3".parse().unwrap());
        let text = full_ruleset(&cfg, &[acme(&cfg), beta]);
        let expected = r#"table inet reeve
delete table inet reeve
table bridge reeve
delete table bridge reeve
table ip reeve_nat
delete table ip reeve_nat
table inet reeve {
	chain from-acme {
		ip daddr 10.88.0.1 tcp dport 5353 accept
		ip daddr 10.88.0.1 udp dport 5353 accept
	}
	chain to-acme {
		tcp dport 8080 accept
	}
	chain from-beta {
		ip daddr 10.88.0.1 tcp dport 5353 accept
		ip daddr 10.88.0.1 udp dport 5353 accept
	}
	chain to-beta {
		tcp dport 8080 accept
	}
	map tenant_from {
		type ipv4_addr : verdict
		elements = { 10.88.0.2 : jump from-acme, 10.88.0.3 : jump from-beta }
	}
	map tenant_to {
		type ipv4_addr : verdict
		elements = { 10.88.0.2 : jump to-acme, 10.88.0.3 : jump to-beta }
	}
	chain prerouting {
		type filter hook prerouting priority filter; policy accept;
		iifname "reeve0" ip daddr 10.88.0.0/24 ip daddr != 10.88.0.1 reject with icmpx admin-prohibited
		iifname "reeve0" fib daddr type != local reject with icmpx admin-prohibited
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "reeve0" ct state established,related accept
		iifname "reeve0" ip saddr vmap @tenant_from
		iifname "reeve0" meta l4proto tcp reject with tcp reset
		iifname "reeve0" reject with icmpx admin-prohibited
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "reeve0" oifname "reeve0" reject with icmpx admin-prohibited
		oifname "reeve0" ct state established,related accept
		oifname "reeve0" drop
		iifname "reeve0" ct state established,related accept
		iifname "reeve0" reject with icmpx admin-prohibited
	}
	chain output {
		type filter hook output priority filter; policy accept;
		oifname "reeve0" ct state established,related accept
		oifname "reeve0" ip daddr vmap @tenant_to
		oifname "reeve0" meta l4proto tcp reject with tcp reset
		oifname "reeve0" reject with icmpx admin-prohibited
	}
}
table bridge reeve {
	chain port-acme {
		ether type != { ip, arp } drop
		ether type ip ip saddr != 10.88.0.2 drop
		ether type arp arp saddr ip != 10.88.0.2 drop
		accept
	}
	chain port-beta {
		ether type != { ip, arp } drop
		ether type ip ip saddr != 10.88.0.3 drop
		ether type arp arp saddr ip != 10.88.0.3 drop
		accept
	}
	map tenant_port {
		type ifname : verdict
		elements = { "rv-acme" : jump port-acme, "rv-beta" : jump port-beta }
	}
	chain prerouting {
		type filter hook prerouting priority filter; policy accept;
		iifname vmap @tenant_port
		iifname "rv-*" drop
		iifname "rv_*" drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "rv-*" drop
		iifname "rv_*" drop
	}
}
"#;
        assert_eq!(text, expected, "got:\n{text}");
    }

    #[test]
    fn empty_ruleset_has_base_chains_and_no_elements() {
        let cfg = sample();
        let text = full_ruleset(&cfg, &[]);
        assert!(!text.contains("elements"), "{text}");
        assert!(text.contains("hook input"));
        assert!(!text.contains("table ip reeve_nat {"));
    }

    #[test]
    fn egress_nat_adds_chains_map_and_masquerade() {
        let mut cfg = sample();
        cfg.egress_nat = true;
        let p = acme(&cfg);
        assert_eq!(p.inet_chains(&cfg), ["from-acme", "to-acme", "egress-acme"]);
        let text = full_ruleset(&cfg, std::slice::from_ref(&p));
        assert!(
            text.contains("\tchain egress-acme {\n\t\toifname != \"reeve0\" accept\n\t}\n"),
            "{text}"
        );
        assert!(
            text.contains("elements = { 10.88.0.2 : jump egress-acme }"),
            "{text}"
        );
        assert!(
            text.contains("iifname \"reeve0\" ip saddr vmap @tenant_egress\n"),
            "{text}"
        );
        // Egress is not refused early, tenant → tenant still is.
        assert!(!text.contains("fib daddr type != local"), "{text}");
        assert!(
            text.contains("ip daddr 10.88.0.0/24 ip daddr != 10.88.0.1 reject"),
            "{text}"
        );
        assert!(text.ends_with(
            "table ip reeve_nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr 10.88.0.0/24 oifname != \"reeve0\" masquerade\n\t}\n}\n"
        ), "{text}");
        assert!(p
            .nft_add(&cfg)
            .contains("add element inet reeve tenant_egress { 10.88.0.2 : jump egress-acme }"));
    }

    #[test]
    fn incremental_add_and_remove_text() {
        let cfg = sample();
        let p = acme(&cfg);
        let add = p.nft_add(&cfg);
        let expected_add = "add chain inet reeve from-acme
flush chain inet reeve from-acme
add rule inet reeve from-acme ip daddr 10.88.0.1 tcp dport 5353 accept
add rule inet reeve from-acme ip daddr 10.88.0.1 udp dport 5353 accept
add chain inet reeve to-acme
flush chain inet reeve to-acme
add rule inet reeve to-acme tcp dport 8080 accept
add chain bridge reeve port-acme
flush chain bridge reeve port-acme
add rule bridge reeve port-acme ether type != { ip, arp } drop
add rule bridge reeve port-acme ether type ip ip saddr != 10.88.0.2 drop
add rule bridge reeve port-acme ether type arp arp saddr ip != 10.88.0.2 drop
add rule bridge reeve port-acme accept
add element inet reeve tenant_from { 10.88.0.2 : jump from-acme }
delete element inet reeve tenant_from { 10.88.0.2 }
add element inet reeve tenant_from { 10.88.0.2 : jump from-acme }
add element inet reeve tenant_to { 10.88.0.2 : jump to-acme }
delete element inet reeve tenant_to { 10.88.0.2 }
add element inet reeve tenant_to { 10.88.0.2 : jump to-acme }
add element bridge reeve tenant_port { \"rv-acme\" : jump port-acme }
delete element bridge reeve tenant_port { \"rv-acme\" }
add element bridge reeve tenant_port { \"rv-acme\" : jump port-acme }
";
        assert_eq!(add, expected_add, "got:\n{add}");
        let rm = p.nft_remove(&cfg);
        // Elements go before their chains, and every chain is emptied before deletion.
        let pos = |s: &str| rm.find(s).unwrap_or_else(|| panic!("{s:?} not in:\n{rm}"));
        assert!(
            pos("delete element inet reeve tenant_from { 10.88.0.2 }")
                < pos("delete chain inet reeve from-acme")
        );
        assert!(
            pos("delete element bridge reeve tenant_port { \"rv-acme\" }")
                < pos("delete chain bridge reeve port-acme")
        );
        assert!(pos("flush chain inet reeve to-acme") < pos("delete chain inet reeve to-acme"));
        assert!(!rm.contains("beta"));
    }

    #[test]
    fn hashed_tenant_names_give_valid_chain_names() {
        let cfg = sample();
        let p = TenantPlan::new(
            &cfg,
            "Some Tenant/with:odd chars",
            "10.88.0.9".parse().unwrap(),
        );
        let chains = p.inet_chains(&cfg);
        assert!(
            chains[0].starts_with("from_") && chains[0].len() == 5 + 16,
            "{chains:?}"
        );
        assert!(chains.iter().all(|c| c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')));
        // Different names never share chains.
        let q = TenantPlan::new(
            &cfg,
            "Some Tenant/with:odd chars2",
            "10.88.0.10".parse().unwrap(),
        );
        assert_ne!(p.inet_chains(&cfg), q.inet_chains(&cfg));
    }
}
