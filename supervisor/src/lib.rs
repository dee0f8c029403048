//! reeved: the tenant supervisor of reeve. One sandboxed gateway per tenant, run through an OCI
//! runtime CLI (reevec by default, runc or crun as well) exec'd for every verb.
//!
//! Modules: [`config`] (reeved.toml), [`name`] (tenant names), [`uids`] (host id ranges),
//! [`tenant`] (data layout and tombstones), [`bundle`] (config.json of a tenant),
//! [`backend`] (the OCI CLI), [`backoff`] (restart policy), [`host`] (cgroups, pidfds),
//! [`logs`] (gateway logs), [`netns`] (loopback and probes inside a sandbox),
//! [`network`] (per-tenant networks and hostname routes), [`notify`] (systemd), [`sdjob`] (systemd jobs of our unit), [`supervisor`] (tenant tasks),
//! [`control`] (control socket), [`daemon`] (the main loop), [`demo`], [`display`].

pub mod audit;
pub mod backend;
pub mod backoff;
pub mod bundle;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod display;
pub mod host;
pub mod logs;
pub mod name;
pub mod netns;
pub mod network;
pub mod notify;
pub mod sdjob;
pub mod supervisor;
pub mod tenant;
pub mod uids;
