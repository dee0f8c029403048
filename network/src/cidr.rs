//! A small IPv4 CIDR type (`10.88.0.0/24`): just what the allocator and the plans need.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Errors of parsing or using an IPv4 CIDR.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    #[error("parse IPv4 CIDR {0:?}: expected ADDRESS/PREFIX")]
    Syntax(String),
    #[error("parse IPv4 CIDR {0:?}: invalid address")]
    Address(String),
    #[error("parse IPv4 CIDR {0:?}: prefix must be 0..=32")]
    Prefix(String),
}

/// An IPv4 network: an address and a prefix length. The address is kept as given
/// (`10.88.0.1/24` is a valid interface address); [`Ipv4Cidr::network`] masks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    /// Builds a CIDR; `None` when `prefix > 32`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then_some(Self { addr, prefix })
    }

    /// The single-address network `addr/32`.
    pub fn host(addr: Ipv4Addr) -> Self {
        Self { addr, prefix: 32 }
    }

    /// `0.0.0.0/0`, the default route's destination.
    pub fn any() -> Self {
        Self {
            addr: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask as a host-order integer.
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// This network with the host bits cleared (`10.88.0.7/24` → `10.88.0.0/24`).
    pub fn trunc(&self) -> Self {
        Self {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// Number of addresses in the network, including network and broadcast.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// The `index`-th address of the network (`0` is the network address), if inside it.
    pub fn nth(&self, index: u64) -> Option<Ipv4Addr> {
        (index < self.size()).then(|| {
            // index < 2^32 here, and network + index stays within the network.
            Ipv4Addr::from(u32::from(self.network()) + index as u32)
        })
    }

    /// The offset of `ip` inside the network, if it is inside.
    pub fn index_of(&self, ip: Ipv4Addr) -> Option<u64> {
        self.contains(ip)
            .then(|| u64::from(u32::from(ip) - u32::from(self.network())))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::Syntax(s.to_string()))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| CidrError::Address(s.to_string()))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| CidrError::Prefix(s.to_string()))?;
        Self::new(addr, prefix).ok_or_else(|| CidrError::Prefix(s.to_string()))
    }
}

impl serde::Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_derive() {
        let c: Ipv4Cidr = "10.88.3.7/22".parse().unwrap();
        assert_eq!(c.addr(), Ipv4Addr::new(10, 88, 3, 7));
        assert_eq!(c.prefix(), 22);
        assert_eq!(c.network(), Ipv4Addr::new(10, 88, 0, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 88, 3, 255));
        assert_eq!(c.size(), 1024);
        assert_eq!(c.trunc().to_string(), "10.88.0.0/22");
        assert!(c.contains(Ipv4Addr::new(10, 88, 2, 1)));
        assert!(!c.contains(Ipv4Addr::new(10, 88, 4, 0)));
        assert_eq!(c.nth(1), Some(Ipv4Addr::new(10, 88, 0, 1)));
        assert_eq!(c.nth(1023), Some(Ipv4Addr::new(10, 88, 3, 255)));
        assert_eq!(c.nth(1024), None);
        assert_eq!(c.index_of(Ipv4Addr::new(10, 88, 1, 2)), Some(258));
        assert_eq!(c.index_of(Ipv4Addr::new(10, 89, 0, 0)), None);
    }

    #[test]
    fn edges() {
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert_eq!(all.mask(), 0);
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
        assert_eq!(all.size(), 1 << 32);
        let host: Ipv4Cidr = "192.0.2.9/32".parse().unwrap();
        assert_eq!(host.network(), host.broadcast());
        assert_eq!(host.size(), 1);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            "10.0.0.0".parse::<Ipv4Cidr>(),
            Err(CidrError::Syntax(_))
        ));
        assert!(matches!(
            "10.0.0/8".parse::<Ipv4Cidr>(),
            Err(CidrError::Address(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Ipv4Cidr>(),
            Err(CidrError::Prefix(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Ipv4Cidr>(),
            Err(CidrError::Prefix(_))
        ));
    }

    #[test]
    fn serde_roundtrip() {
        let c: Ipv4Cidr = "10.1.2.0/24".parse().unwrap();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, "\"10.1.2.0/24\"");
        assert_eq!(serde_json::from_str::<Ipv4Cidr>(&j).unwrap(), c);
    }
}
