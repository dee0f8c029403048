//! reeve's per-tenant network (issue 5).
//!
//! - [`config::NetworkConfig`]: bridge, subnet, gateway port, services, egress NAT, domain.
//! - [`alloc::Allocator`]: stable per-tenant addresses in a JSON state file.
//! - [`plan`]: veth names, addresses, routes and the nftables text, as plain data.
//! - [`network::Network`]: applies plans (rtnetlink + `nft -f -`), reconciles after restarts.
//! - [`routes::Routes`]: `<tenant>.<domain> → addr:port`, written as Traefik and Caddy config.
//!
//! External tool: `nft` (Debian package `nftables`) is the only program this crate runs.

pub mod alloc;
pub mod atomic;
pub mod cidr;
pub mod config;
pub mod netlink;
pub mod netns;
pub mod network;
pub mod nft;
pub mod plan;
pub mod routes;

pub use alloc::Allocator;
pub use cidr::Ipv4Cidr;
pub use config::NetworkConfig;
pub use netns::NetnsRef;
pub use network::{Network, NetworkError, ReconcileReport, TenantNet};
pub use routes::{CaddyOptions, Routes};
