//! `/etc/reeve/reeved.toml`: plain data, parsed and checked without touching the system.
//!
//! Limits come only from this file (owned by root, outside every tenant's data), never from
//! anything a tenant can write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::name::TenantName;

/// The default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/reeve/reeved.toml";

/// Errors of loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("config {field}: {msg}")]
    Invalid { field: String, msg: String },
}

fn invalid(field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// A byte size: an integer, or a string such as `"512M"`, `"1G"`, `"1GiB"`, `"64k"` (binary
/// units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(s: &str) -> Result<Size, String> {
        let t = s.trim();
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits_end);
        if num.is_empty() {
            return Err(format!(
                "{s:?} is not a size: use e.g. 512M, 1G or a byte count"
            ));
        }
        let n: u64 = num
            .parse()
            .map_err(|e| format!("{s:?} is not a size: {e}"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            other => return Err(format!("{s:?}: unknown unit {other:?} (use K, M, G or T)")),
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| format!("{s:?} overflows 64 bits"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => Size::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Resource limits of one gateway. Missing fields mean "no limit of that kind".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// memory.max in bytes.
    pub memory: Option<Size>,
    /// pids.max.
    pub pids: Option<i64>,
    /// CPU cores (cpu.max quota/period), e.g. 0.5 or 2.
    pub cpu: Option<f64>,
}

impl Limits {
    /// These limits with every field `over` sets replacing ours.
    pub fn overridden_by(&self, over: &Limits) -> Limits {
        Limits {
            memory: over.memory.or(self.memory),
            pids: over.pids.or(self.pids),
            cpu: over.cpu.or(self.cpu),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.pids.is_none() && self.cpu.is_none()
    }

    fn check(&self, field: &str) -> Result<(), ConfigError> {
        if let Some(m) = self.memory {
            if m.0 < 4 << 20 {
                return Err(invalid(format!("{field}.memory"), "must be at least 4M"));
            }
        }
        if let Some(p) = self.pids {
            if p < 1 {
                return Err(invalid(format!("{field}.pids"), "must be at least 1"));
            }
        }
        if let Some(c) = self.cpu {
            if !(c.is_finite() && (0.01..=4096.0).contains(&c)) {
                return Err(invalid(
                    format!("{field}.cpu"),
                    "must be a number of cores between 0.01 and 4096",
                ));
            }
        }
        Ok(())
    }
}

/// How the gateway runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// argv of the gateway inside the sandbox.
    pub command: Vec<String>,
    /// Extra environment (`KEY=VALUE`); `REEVE_TENANT` and `PATH` are always set.
    #[serde(default)]
    pub env: Vec<String>,
    /// Host directory holding the gateway runtime, mounted read-only at `/opt/gateway`.
    pub dir: PathBuf,
    /// A root filesystem directory for the sandbox (used read-only). Exclusive with `host_binds`.
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    /// Host directories bind-mounted read-only at the same path in an otherwise empty root.
    #[serde(default)]
    pub host_binds: Vec<PathBuf>,
}

/// The host uid/gid range of tenant number `i` is `base + i*size .. base + (i+1)*size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UidConfig {
    #[serde(default = "default_uid_base")]
    pub base: u32,
    #[serde(default = "default_uid_size")]
    pub size: u32,
}

fn default_uid_base() -> u32 {
    200_000
}
fn default_uid_size() -> u32 {
    65_536
}

impl Default for UidConfig {
    fn default() -> Self {
        UidConfig {
            base: default_uid_base(),
            size: default_uid_size(),
        }
    }
}

/// Restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartConfig {
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A run shorter than this is a fast failure.
    pub fast_failure_ms: u64,
    /// This many consecutive fast failures make the tenant crash-looping.
    pub crash_loop_after: u32,
    /// SIGTERM → SIGKILL grace period on stop.
    pub stop_grace_ms: u64,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            initial_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
            fast_failure_ms: 10_000,
            crash_loop_after: 5,
            stop_grace_ms: 10_000,
        }
    }
}

/// Gateway log files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub max_bytes: Size,
    /// Rotated files kept (`<tenant>.log.1` .. `.N`).
    pub keep: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_bytes: Size(10 << 20),
            keep: 3,
        }
    }
}

/// Who owns the tenants' cgroups (`cgroup_driver`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// `systemd` when reeved runs as a systemd service (`/run/systemd/system` exists and
    /// `/proc/self/cgroup` names a `*.service`), else `cgroupfs`.
    #[default]
    Auto,
    /// Each tenant's cgroup is a transient scope `reeve-<tenant>.scope` in `reeve.slice`, made
    /// by the runtime's systemd driver (`--systemd-cgroup`); reeved's own unit cgroup stays a
    /// leaf, so systemd can always restart reeved while the gateways run.
    Systemd,
    /// reeved delegates its own cgroup: itself in `<own>/supervisor`, tenants in
    /// `<own>/tenants/<name>`.
    Cgroupfs,
}

/// Which OCI runtime drives the sandboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// `reevec` next to `reeved`, else on PATH.
    Builtin,
    /// Any OCI CLI (runc, crun, reevec) at this path.
    Path(PathBuf),
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_data_root")]
    pub data_root: PathBuf,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// `"builtin"` or the path of an OCI runtime binary.
    #[serde(default = "default_runtime")]
    pub runtime: String,
    pub gateway: GatewayConfig,
    /// Layer 1 (universal) config, shared, mounted read-only at `/etc/reeve/layer1`.
    pub layer1_dir: PathBuf,
    #[serde(default)]
    pub limits: Limits,
    /// Per-tenant limit overrides.
    #[serde(default)]
    pub tenants: BTreeMap<TenantName, Limits>,
    /// Run without cgroup limits when the host has no usable cgroup v2 controllers.
    #[serde(default)]
    pub allow_no_limits: bool,
    /// `"auto"` (default), `"systemd"` or `"cgroupfs"`: see [`CgroupDriver`].
    #[serde(default)]
    pub cgroup_driver: CgroupDriver,
    #[serde(default)]
    pub uids: UidConfig,
    #[serde(default)]
    pub restart: RestartConfig,
    #[serde(default)]
    pub logs: LogConfig,
    #[serde(default = "default_retention")]
    pub tombstone_retention_days: u64,
    /// How many sandboxes are created at the same time.
    #[serde(default = "default_parallel")]
    pub max_parallel_starts: usize,
    /// Per-tenant networks and hostname routing (issue 5); off unless `enabled = true`.
    #[serde(default)]
    pub network: NetworkSection,
}

/// The `[network]` section: a bridge, a subnet, the policy and where the route table is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    pub enabled: bool,
    pub bridge: String,
    pub subnet: String,
    pub gateway_port: u16,
    /// Tenant `acme` is routed as `acme.<domain>`.
    pub domain: String,
    /// Host endpoints (`ip:port`) tenants may reach; everything else on the host is refused.
    pub services: Vec<String>,
    pub egress_nat: bool,
    /// Traefik dynamic configuration (file provider), replaced atomically on every change.
    pub traefik_file: Option<PathBuf>,
    /// Caddyfile, replaced atomically on every change.
    pub caddy_file: Option<PathBuf>,
    /// The port the generated Caddyfile serves plain HTTP on.
    pub caddy_http_port: u16,
    /// Caddy's admin endpoint written into the Caddyfile (e.g. `127.0.0.1:2019`); none: `admin off`.
    pub caddy_admin: Option<String>,
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            enabled: false,
            bridge: "reeve0".into(),
            subnet: "10.88.0.0/24".into(),
            gateway_port: 8080,
            domain: "gw.localhost".into(),
            services: Vec::new(),
            egress_nat: false,
            traefik_file: None,
            caddy_file: None,
            caddy_http_port: 80,
            caddy_admin: None,
        }
    }
}

impl NetworkSection {
    /// The checked settings of reeve-network.
    pub fn network_config(&self) -> Result<reeve_network::NetworkConfig, ConfigError> {
        let subnet = self
            .subnet
            .parse::<reeve_network::Ipv4Cidr>()
            .map_err(|e| invalid("network.subnet", format!("{:?}: {e}", self.subnet)))?;
        let services = self
            .services
            .iter()
            .map(|s| {
                s.parse::<std::net::SocketAddrV4>()
                    .map_err(|e| invalid("network.services", format!("{s:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cfg = reeve_network::NetworkConfig {
            bridge: self.bridge.clone(),
            subnet,
            gateway_port: self.gateway_port,
            services,
            egress_nat: self.egress_nat,
            domain: self.domain.clone(),
        };
        cfg.validate()
            .map_err(|e| invalid("network", e.to_string()))?;
        for (field, f) in [
            ("network.traefik_file", &self.traefik_file),
            ("network.caddy_file", &self.caddy_file),
        ] {
            if let Some(f) = f {
                if !f.is_absolute() || f.file_name().is_none() {
                    return Err(invalid(
                        field,
                        format!("{} is not an absolute file path", f.display()),
                    ));
                }
            }
        }
        if self.caddy_http_port == 0 {
            return Err(invalid("network.caddy_http_port", "must not be 0"));
        }
        if let Some(a) = &self.caddy_admin {
            if a.is_empty() || a.chars().any(|c| c.is_whitespace() || c == '{' || c == '}') {
                return Err(invalid(
                    "network.caddy_admin",
                    format!("{a:?} is not an address"),
                ));
            }
        }
        Ok(cfg)
    }

    /// The settings of the generated Caddyfile.
    pub fn caddy_options(&self) -> reeve_network::CaddyOptions {
        reeve_network::CaddyOptions {
            http_port: self.caddy_http_port,
            admin: self.caddy_admin.clone(),
        }
    }
}

fn default_data_root() -> PathBuf {
    PathBuf::from("/data/tenants")
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/run/reeve")
}
fn default_runtime() -> String {
    "builtin".to_string()
}
fn default_retention() -> u64 {
    30
}
fn default_parallel() -> usize {
    8
}

impl Config {
    /// Parse and check TOML text (`path` only names the source in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Read, parse and check the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    fn check(&self) -> Result<(), ConfigError> {
        for (field, p) in [
            ("data_root", &self.data_root),
            ("state_dir", &self.state_dir),
            ("gateway.dir", &self.gateway.dir),
            ("layer1_dir", &self.layer1_dir),
        ] {
            if !p.is_absolute() {
                return Err(invalid(
                    field,
                    format!("{} is not an absolute path", p.display()),
                ));
            }
        }
        if self.gateway.command.is_empty() {
            return Err(invalid("gateway.command", "is empty"));
        }
        match (&self.gateway.rootfs, self.gateway.host_binds.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    "gateway",
                    "set either rootfs or host_binds, not both",
                ))
            }
            (None, true) => {
                return Err(invalid(
                    "gateway",
                    "set rootfs (a directory) or host_binds (host directories to bind read-only)",
                ))
            }
            (Some(r), true) if !r.is_absolute() => {
                return Err(invalid("gateway.rootfs", "is not an absolute path"))
            }
            _ => {}
        }
        for b in &self.gateway.host_binds {
            if !b.is_absolute() || b == Path::new("/") {
                return Err(invalid(
                    "gateway.host_binds",
                    format!("{} must be an absolute path other than /", b.display()),
                ));
            }
            for reserved in [
                "/data",
                "/opt/gateway",
                "/etc/reeve",
                "/proc",
                "/dev",
                "/sys",
            ] {
                if b.starts_with(reserved) {
                    return Err(invalid(
                        "gateway.host_binds",
                        format!("{} overlaps the sandbox's {reserved}", b.display()),
                    ));
                }
            }
        }
        for e in &self.gateway.env {
            if !e.contains('=') || e.starts_with('=') {
                return Err(invalid("gateway.env", format!("{e:?} is not KEY=VALUE")));
            }
        }
        if self.data_root.starts_with(&self.state_dir)
            || self.state_dir.starts_with(&self.data_root)
        {
            return Err(invalid("state_dir", "must not overlap data_root"));
        }
        self.limits.check("limits")?;
        for (name, l) in &self.tenants {
            l.check(&format!("tenants.{name}"))?;
        }
        if self.uids.size < 65_536 {
            return Err(invalid(
                "uids.size",
                "must be at least 65536 (the sandbox maps ids 0..65536)",
            ));
        }
        if self.uids.base < 65_536 {
            return Err(invalid(
                "uids.base",
                "must be at least 65536, above the host's own users",
            ));
        }
        if self.max_parallel_starts == 0 {
            return Err(invalid("max_parallel_starts", "must be at least 1"));
        }
        let r = &self.restart;
        if r.initial_backoff_ms == 0 || r.max_backoff_ms < r.initial_backoff_ms {
            return Err(invalid(
                "restart",
                "need 0 < initial_backoff_ms <= max_backoff_ms",
            ));
        }
        if r.crash_loop_after == 0 {
            return Err(invalid("restart.crash_loop_after", "must be at least 1"));
        }
        if self.logs.max_bytes.0 < 4096 {
            return Err(invalid("logs.max_bytes", "must be at least 4K"));
        }
        if self.network.enabled {
            self.network.network_config()?;
        }
        Ok(())
    }

    pub fn runtime_choice(&self) -> RuntimeChoice {
        if self.runtime == "builtin" {
            RuntimeChoice::Builtin
        } else {
            RuntimeChoice::Path(PathBuf::from(&self.runtime))
        }
    }

    /// The limits of `tenant`: the defaults with its overrides applied.
    pub fn limits_for(&self, tenant: &TenantName) -> Limits {
        match self.tenants.get(tenant) {
            Some(o) => self.limits.overridden_by(o),
            None => self.limits.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
data_root = "/srv/tenants"
state_dir = "/run/reeve"
runtime = "/usr/sbin/runc"
layer1_dir = "/etc/reeve/layer1"
allow_no_limits = true
cgroup_driver = "cgroupfs"
tombstone_retention_days = 7

[gateway]
command = ["/opt/gateway/bin/node", "/opt/gateway/server.js"]
env = ["NODE_ENV=production"]
dir = "/opt/reeve/gateway"
host_binds = ["/usr", "/lib", "/bin"]

[limits]
memory = "1G"
pids = 512
cpu = 1.5

[tenants.acme]
memory = "2GiB"

[tenants.beta]
cpu = 0.25

[uids]
base = 300000

[restart]
crash_loop_after = 3

[logs]
max_bytes = "1M"
"#;

    fn p() -> &'static Path {
        Path::new("t.toml")
    }

    #[test]
    fn parses_a_full_file() {
        let c = Config::parse(FULL, p()).expect("parse");
        assert_eq!(c.data_root, PathBuf::from("/srv/tenants"));
        assert_eq!(
            c.runtime_choice(),
            RuntimeChoice::Path("/usr/sbin/runc".into())
        );
        assert!(c.allow_no_limits);
        assert_eq!(c.cgroup_driver, CgroupDriver::Cgroupfs);
        assert_eq!(c.limits.memory, Some(Size(1 << 30)));
        assert_eq!(
            c.uids,
            UidConfig {
                base: 300_000,
                size: 65_536
            }
        );
        assert_eq!(c.restart.crash_loop_after, 3);
        assert_eq!(c.restart.max_backoff_ms, 60_000, "defaults fill the rest");
        assert_eq!(c.logs.max_bytes, Size(1 << 20));
        assert_eq!(c.logs.keep, 3);
        assert_eq!(c.tombstone_retention_days, 7);
        let acme = c.limits_for(&TenantName::parse("acme").unwrap());
        assert_eq!(acme.memory, Some(Size(2 << 30)));
        assert_eq!(acme.pids, Some(512));
        assert_eq!(acme.cpu, Some(1.5));
        let beta = c.limits_for(&TenantName::parse("beta").unwrap());
        assert_eq!(beta.cpu, Some(0.25));
        assert_eq!(beta.memory, Some(Size(1 << 30)));
        let other = c.limits_for(&TenantName::parse("gamma").unwrap());
        assert_eq!(other, c.limits);
    }

    #[test]
    fn the_example_file_parses() {
        let c = Config::parse(include_str!("../reeved.toml.example"), p()).expect("example");
        assert_eq!(c.gateway.host_binds.len(), 6);
        assert!(!c.allow_no_limits);
        assert_eq!(c.cgroup_driver, CgroupDriver::Auto);
        let acme = c.limits_for(&TenantName::parse("acme").unwrap());
        assert_eq!((acme.memory, acme.pids), (Some(Size(2 << 30)), Some(512)));
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c = Config::parse(
            r#"layer1_dir = "/l1"
[gateway]
command = ["/opt/gateway/run"]
dir = "/g"
rootfs = "/r"
"#,
            p(),
        )
        .expect("parse");
        assert_eq!(c.data_root, PathBuf::from("/data/tenants"));
        assert_eq!(c.state_dir, PathBuf::from("/run/reeve"));
        assert_eq!(c.runtime_choice(), RuntimeChoice::Builtin);
        assert!(!c.allow_no_limits);
        assert_eq!(c.cgroup_driver, CgroupDriver::Auto);
        assert!(c.limits.is_empty());
        assert_eq!(c.uids, UidConfig::default());
        assert_eq!(c.tombstone_retention_days, 30);
        assert_eq!(c.max_parallel_starts, 8);
    }

    #[test]
    fn network_section_parses_and_is_off_by_default() {
        let c = with("", "rootfs = \"/r\"").expect("parse");
        assert!(!c.network.enabled);
        let c = with(
            "[network]\nenabled = true\nbridge = \"rv1\"\nsubnet = \"10.77.0.0/16\"\n\
             gateway_port = 8081\ndomain = \"gw.test\"\nservices = [\"10.77.0.1:9000\"]\n\
             egress_nat = true\ncaddy_file = \"/run/reeve/Caddyfile\"\n\
             traefik_file = \"/run/reeve/traefik.yml\"",
            "rootfs = \"/r\"",
        )
        .expect("parse");
        let n = c.network.network_config().expect("valid");
        assert_eq!(n.bridge, "rv1");
        assert_eq!(n.subnet.to_string(), "10.77.0.0/16");
        assert_eq!(n.gateway_port, 8081);
        assert_eq!(n.services, vec!["10.77.0.1:9000".parse().unwrap()]);
        assert!(n.egress_nat);
        assert_eq!(n.domain, "gw.test");
        assert_eq!(
            c.network.caddy_file.as_deref(),
            Some(Path::new("/run/reeve/Caddyfile"))
        );
    }

    #[test]
    fn network_section_refuses_bad_values() {
        let cases = [
            ("subnet = \"10.0.0.0\"", "network.subnet"),
            ("subnet = \"10.0.0.0/31\"", "/30"),
            ("services = [\"10.0.0.1\"]", "network.services"),
            ("services = [\"10.0.0.1:0\"]", "port 0"),
            ("bridge = \"a-very-long-bridge-name\"", "bridge name"),
            ("domain = \"Gw..x\"", "domain"),
            ("gateway_port = 0", "gateway port"),
            ("caddy_file = \"Caddyfile\"", "absolute"),
            ("caddy_http_port = 0", "caddy_http_port"),
            ("caddy_admin = \"a b\"", "caddy_admin"),
        ];
        for (line, want) in cases {
            let err = with(
                &format!("[network]\nenabled = true\n{line}"),
                "rootfs = \"/r\"",
            )
            .expect_err(line)
            .to_string();
            assert!(err.contains(want), "{line}: {err}");
            // The same section is not checked while networking is off.
            with(&format!("[network]\n{line}"), "rootfs = \"/r\"").expect(line);
        }
        let err = with("[network]\nenabeld = true", "rootfs = \"/r\"").expect_err("typo");
        assert!(err.to_string().contains("enabeld"), "{err}");
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("512M"), Ok(Size(512 << 20)));
        assert_eq!(Size::parse("64k"), Ok(Size(64 << 10)));
        assert_eq!(Size::parse("1GiB"), Ok(Size(1 << 30)));
        assert_eq!(Size::parse("123"), Ok(Size(123)));
        assert!(Size::parse("M").is_err());
        assert!(Size::parse("1X").is_err());
        assert!(Size::parse("-1G").is_err());
        assert!(Size::parse("99999999999T").is_err());
    }

    fn with(extra_top: &str, gateway: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "layer1_dir = \"/l1\"\n{extra_top}\n[gateway]\ncommand = [\"/x\"]\ndir = \"/g\"\n{gateway}\n"
        );
        Config::parse(&text, p())
    }

    #[test]
    fn refuses_bad_values() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "", "rootfs"),
            ("", "rootfs = \"/r\"\nhost_binds = [\"/usr\"]", "not both"),
            ("", "rootfs = \"r\"", "absolute"),
            ("", "host_binds = [\"/\"]", "other than /"),
            ("", "host_binds = [\"/data/x\"]", "overlaps"),
            ("", "rootfs = \"/r\"\nenv = [\"NOEQUALS\"]", "KEY=VALUE"),
            ("data_root = \"rel\"", "rootfs = \"/r\"", "absolute"),
            (
                "state_dir = \"/data/tenants/run\"",
                "rootfs = \"/r\"",
                "overlap",
            ),
            ("[limits]\nmemory = \"1K\"", "", "4M"),
            ("[limits]\npids = 0", "", "at least 1"),
            ("[limits]\ncpu = 0.0", "", "cores"),
            ("[uids]\nsize = 1000", "", "65536"),
            ("[uids]\nbase = 1000", "", "65536"),
            ("[restart]\ncrash_loop_after = 0", "", "at least 1"),
            ("max_parallel_starts = 0", "rootfs = \"/r\"", "at least 1"),
            (
                "cgroup_driver = \"cgroupv1\"",
                "rootfs = \"/r\"",
                "expected one of `auto`, `systemd`, `cgroupfs`",
            ),
        ];
        for (top, gw, want) in cases {
            // Sections in `top` would swallow the gateway table's keys: put gateway first then.
            let r = if top.contains('[') {
                let text = format!(
                    "layer1_dir = \"/l1\"\n[gateway]\ncommand = [\"/x\"]\ndir = \"/g\"\nrootfs = \"/r\"\n{top}\n"
                );
                Config::parse(&text, p())
            } else {
                with(top, gw)
            };
            let e = r.expect_err(&format!("{top} / {gw} must fail")).to_string();
            assert!(e.contains(want), "{top} / {gw}: {e}");
        }
    }

    #[test]
    fn cgroup_driver_takes_its_three_values() {
        for (v, want) in [
            ("auto", CgroupDriver::Auto),
            ("systemd", CgroupDriver::Systemd),
            ("cgroupfs", CgroupDriver::Cgroupfs),
        ] {
            let c = with(&format!("cgroup_driver = \"{v}\""), "rootfs = \"/r\"").expect(v);
            assert_eq!(c.cgroup_driver, want, "{v}");
        }
        assert!(with("cgroup_driver = \"Systemd\"", "rootfs = \"/r\"").is_err());
    }

    #[test]
    fn refuses_unknown_keys_and_bad_tenant_names() {
        let e = with("alow_no_limits = true", "rootfs = \"/r\"").unwrap_err();
        assert!(e.to_string().contains("alow_no_limits"), "{e}");
        let text = "layer1_dir = \"/l1\"\n[gateway]\ncommand = [\"/x\"]\ndir = \"/g\"\nrootfs = \"/r\"\n[tenants.\"../x\"]\npids = 5\n";
        let e = Config::parse(text, p()).unwrap_err().to_string();
        assert!(e.contains("tenant name"), "{e}");
    }
}
