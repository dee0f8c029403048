//! The network configuration of a supervisor: one bridge, one IPv4 subnet, one policy.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::cidr::Ipv4Cidr;

/// Errors of validating a [`NetworkConfig`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("network config: bridge name {0:?} must be 1..=15 characters of [A-Za-z0-9_.-]")]
    BridgeName(String),
    #[error("network config: subnet {0} must have a prefix of at most /30 (room for a bridge and a tenant)")]
    SubnetTooSmall(Ipv4Cidr),
    #[error("network config: gateway port must not be 0")]
    GatewayPort,
    #[error("network config: domain {0:?} must be dot-separated DNS labels of [a-z0-9-]")]
    Domain(String),
    #[error("network config: service {0} has port 0")]
    ServicePort(SocketAddrV4),
}

/// Per-supervisor network settings (issue 5).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkConfig {
    /// Host bridge the tenant veths are enslaved to (e.g. `reeve0`).
    pub bridge: String,
    /// Tenant subnet; the bridge takes the first host address (`.1`).
    pub subnet: Ipv4Cidr,
    /// The one TCP port of a tenant the host (the proxy) may connect to.
    pub gateway_port: u16,
    /// Host endpoints tenants may reach (TCP and UDP); everything else on the host is refused.
    pub services: Vec<SocketAddrV4>,
    /// Whether tenants may reach the outside world through masquerading NAT.
    pub egress_nat: bool,
    /// Routing domain: tenant `acme` is served as `acme.<domain>`.
    pub domain: String,
}

impl NetworkConfig {
    /// Checks the invariants the plans rely on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !valid_ifname(&self.bridge) {
            return Err(ConfigError::BridgeName(self.bridge.clone()));
        }
        if self.subnet.prefix() > 30 {
            return Err(ConfigError::SubnetTooSmall(self.subnet));
        }
        if self.gateway_port == 0 {
            return Err(ConfigError::GatewayPort);
        }
        if !valid_domain(&self.domain) {
            return Err(ConfigError::Domain(self.domain.clone()));
        }
        if let Some(s) = self.services.iter().find(|s| s.port() == 0) {
            return Err(ConfigError::ServicePort(*s));
        }
        Ok(())
    }

    /// The bridge's address: the first host address of the subnet; tenants' gateway.
    pub fn bridge_addr(&self) -> Ipv4Addr {
        // validate() guarantees prefix <= 30, so index 1 exists.
        self.subnet.nth(1).unwrap_or_else(|| self.subnet.network())
    }

    /// The bridge's interface address with the subnet prefix (`10.88.0.1/24`).
    pub fn bridge_cidr(&self) -> Ipv4Cidr {
        Ipv4Cidr::new(self.bridge_addr(), self.subnet.prefix()).unwrap_or(self.subnet)
    }
}

/// A Linux interface name: 1..=15 bytes, no '/', ':', whitespace; we further restrict to a safe set
/// because names are also spliced into nft rule text.
pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A DNS label usable as a hostname component.
pub(crate) fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_domain(domain: &str) -> bool {
    domain.len() <= 253 && domain.split('.').all(valid_label)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> NetworkConfig {
        NetworkConfig {
            bridge: "reeve0".into(),
            subnet: "10.88.0.0/24".parse().unwrap(),
            gateway_port: 8080,
            services: vec!["10.88.0.1:5353".parse().unwrap()],
            egress_nat: false,
            domain: "gw.test".into(),
        }
    }

    #[test]
    fn valid_sample() {
        let c = sample();
        c.validate().unwrap();
        assert_eq!(c.bridge_addr(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(c.bridge_cidr().to_string(), "10.88.0.1/24");
    }

    #[test]
    fn rejects_bad_fields() {
        let mut c = sample();
        c.bridge = "a-bridge-name-too-long".into();
        assert!(matches!(c.validate(), Err(ConfigError::BridgeName(_))));
        c.bridge = "br\"0".into();
        assert!(matches!(c.validate(), Err(ConfigError::BridgeName(_))));
        let mut c = sample();
        c.subnet = "10.0.0.0/31".parse().unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::SubnetTooSmall(_))));
        let mut c = sample();
        c.gateway_port = 0;
        assert_eq!(c.validate(), Err(ConfigError::GatewayPort));
        let mut c = sample();
        c.domain = "Gw.test".into();
        assert!(matches!(c.validate(), Err(ConfigError::Domain(_))));
        c.domain = "gw..test".into();
        assert!(matches!(c.validate(), Err(ConfigError::Domain(_))));
        let mut c = sample();
        c.services.push("10.88.0.1:0".parse().unwrap());
        assert!(matches!(c.validate(), Err(ConfigError::ServicePort(_))));
    }

    #[test]
    fn toml_like_json_roundtrip() {
        let c = sample();
        let j = serde_json::to_string(&c).unwrap();
        assert!(j.contains("\"subnet\":\"10.88.0.0/24\""), "{j}");
        assert_eq!(serde_json::from_str::<NetworkConfig>(&j).unwrap(), c);
    }
}
