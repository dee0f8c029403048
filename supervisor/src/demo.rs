//! `reeved demo`: the whole job in one command, in temporary directories. A gateway root
//! filesystem from Debian's static busybox, a demo gateway (a busybox sh script logging a
//! heartbeat with its tenant name every 2 s and serving HTTP on :8080 inside its network
//! namespace when busybox has httpd), tenants `acme` and `beta`, the supervisor with a status
//! table, and everything stopped and removed on Ctrl-C or SIGTERM.
//!
//! With networking (the default when `nft` is installed; `--no-network` turns it off) the demo
//! first moves itself into a network namespace of its own — its "host side": the bridge, the
//! tenants' veths, the nftables rules and the proxy live there, so the machine's own interfaces
//! and firewall are never touched. Each gateway then answers HTTP on its tenant address, and
//! when Caddy is installed it routes `<tenant>.gw.localhost` to it (`curl -H 'Host: …'`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, GatewayConfig, Limits, LogConfig, RestartConfig, Size, UidConfig};
use crate::daemon::{self, DaemonError};
use crate::name::TenantName;
use crate::supervisor::{Ctx, SupError};

/// Where busybox comes from (package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// The demo gateway.
pub const GATEWAY_SCRIPT: &str = r#"#!/bin/sh
# reeve demo gateway: a heartbeat every 2 s; HTTP on :8080 inside the tenant's netns.
trap 'echo "gateway $REEVE_TENANT: SIGTERM, shutting down"; exit 0' TERM INT
echo "gateway $REEVE_TENANT starting: pid $$, uid $(id -u), hostname $(hostname)"
if command -v httpd >/dev/null 2>&1; then
    mkdir -p /tmp/www && echo "hello from $REEVE_TENANT" > /tmp/www/index.html
    httpd -p 8080 -h /tmp/www && echo "gateway $REEVE_TENANT: httpd listening on :8080"
fi
n=0
while :; do
    n=$((n + 1))
    echo "$(date +%H:%M:%S) gateway tenant=$REEVE_TENANT heartbeat=$n"
    sleep 2 &
    wait $!
done
"#;

/// Applets linked in the demo root.
const APPLETS: &[&str] = &[
    "sh", "echo", "date", "sleep", "id", "hostname", "mkdir", "cat", "ls", "wget", "httpd", "ps",
];

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{BUSYBOX} is missing: apt-get install busybox-static")]
    NoBusybox,
    #[error("the demo needs root (namespaces, id mappings, chown)")]
    NotRoot,
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sup(#[from] SupError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("unshare(CLONE_NEWNET) for the demo's own network namespace: {0}")]
    Unshare(nix::errno::Errno),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("write the initial route table: {0}")]
    Routes(#[from] reeve_network::routes::RoutesError),
    #[error("start {caddy}: {source}")]
    Caddy {
        caddy: PathBuf,
        source: std::io::Error,
    },
}

/// The proxy of the demo, when installed (Debian package caddy).
pub const CADDY: &str = "/usr/bin/caddy";
/// Routing domain of the demo: `acme.gw.localhost`.
pub const DOMAIN: &str = "gw.localhost";
/// Port Caddy listens on inside the demo's network namespace.
pub const PROXY_PORT: u16 = 80;

/// Whether `nft` runs here (networking needs it).
pub fn network_available() -> bool {
    std::process::Command::new("nft")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Move this process into a new network namespace with `lo` up. Call while the process has a
/// single thread (before the async runtime starts): `unshare` affects the calling thread, and
/// every thread and child made afterwards inherits it.
pub fn enter_private_netns() -> Result<(), DemoError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(DemoError::Unshare)?;
    crate::netns::loopback_up()?;
    Ok(())
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DemoError + 'a {
    move |source| DemoError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub runtime: Option<PathBuf>,
    pub tenants: Vec<TenantName>,
    pub refresh: Duration,
    /// Per-tenant networks (the caller has entered a private namespace: [`enter_private_netns`]).
    pub network: bool,
}

fn busybox_applets() -> Vec<String> {
    std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Build the demo tree under `top` and return its configuration.
pub fn build(top: &Path, runtime: Option<&Path>, network: bool) -> Result<Config, DemoError> {
    if !Path::new(BUSYBOX).is_file() {
        return Err(DemoError::NoBusybox);
    }
    // Sandboxes run as unprivileged host ids: they must traverse to their root and data.
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o711))
        .map_err(io("chmod", top))?;
    let rootfs = top.join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).map_err(io("mkdir", &bin))?;
    let bb = bin.join("busybox");
    std::fs::copy(BUSYBOX, &bb).map_err(io("copy busybox to", &bb))?;
    let have = busybox_applets();
    for a in APPLETS {
        if have.iter().any(|h| h == a) {
            let l = bin.join(a);
            std::os::unix::fs::symlink("busybox", &l).map_err(io("symlink", &l))?;
        }
    }
    for d in ["etc", "usr/bin", "var/www"] {
        let p = rootfs.join(d);
        std::fs::create_dir_all(&p).map_err(io("mkdir", &p))?;
    }
    let passwd = rootfs.join("etc/passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/data:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
    )
    .map_err(io("write", &passwd))?;
    let gw = top.join("gateway");
    std::fs::create_dir_all(&gw).map_err(io("mkdir", &gw))?;
    let script = gw.join("gateway.sh");
    std::fs::write(&script, GATEWAY_SCRIPT).map_err(io("write", &script))?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .map_err(io("chmod", &script))?;
    let l1 = top.join("layer1");
    std::fs::create_dir_all(&l1).map_err(io("mkdir", &l1))?;
    let defaults = l1.join("defaults.json");
    std::fs::write(&defaults, "{\"platform\": \"reeve\", \"layer\": 1}\n")
        .map_err(io("write", &defaults))?;
    let routes = top.join("routes");
    std::fs::create_dir_all(&routes).map_err(io("mkdir", &routes))?;
    for d in ["rootfs", "gateway", "layer1"] {
        let p = top.join(d);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod", &p))?;
    }
    Ok(Config {
        data_root: top.join("data"),
        state_dir: top.join("state"),
        runtime: runtime.map_or("builtin".to_string(), |p| p.display().to_string()),
        gateway: GatewayConfig {
            command: vec!["/bin/sh".into(), "/opt/gateway/gateway.sh".into()],
            env: vec![],
            dir: gw,
            rootfs: Some(rootfs),
            host_binds: vec![],
        },
        layer1_dir: l1,
        limits: Limits {
            memory: Some(Size(256 << 20)),
            pids: Some(128),
            cpu: Some(0.5),
        },
        tenants: Default::default(),
        network: crate::config::NetworkSection {
            enabled: network,
            domain: DOMAIN.into(),
            caddy_file: Some(top.join("routes").join("Caddyfile")),
            traefik_file: Some(top.join("routes").join("traefik.yml")),
            caddy_http_port: PROXY_PORT,
            ..Default::default()
        },
        allow_no_limits: true,
        cgroup_driver: Default::default(),
        uids: UidConfig::default(),
        restart: RestartConfig {
            stop_grace_ms: 5_000,
            ..RestartConfig::default()
        },
        logs: LogConfig::default(),
        tombstone_retention_days: 30,
        max_parallel_starts: 8,
    })
}

/// Run the demo until Ctrl-C or SIGTERM.
pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(DemoError::NotRoot);
    }
    let top = tempfile::Builder::new()
        .prefix("reeve-demo.")
        .tempdir_in("/tmp")
        .map_err(io("make temp dir in", Path::new("/tmp")))?;
    let cfg = build(top.path(), opts.runtime.as_deref(), opts.network)?;
    println!("reeve demo in {}", top.path().display());
    println!("  data root  {}", cfg.data_root.display());
    println!("  state dir  {}", cfg.state_dir.display());
    println!(
        "  control    reeved --state-dir {} status",
        cfg.state_dir.display()
    );
    let ctx = Ctx::new(cfg.clone(), false)?;
    for t in &opts.tenants {
        let dir = ctx.create_tenant(t)?;
        let secret = dir.join("reeve.json");
        println!(
            "  tenant {t}: data {} (config {})",
            dir.display(),
            secret.display()
        );
    }
    drop(ctx);
    let mut proxy = None;
    let mut caddy = None;
    if opts.network {
        let me = std::process::id();
        println!(
            "  network    bridge {} {} in the demo's own network namespace \
             (nsenter --net=/proc/{me}/ns/net ...); the host's network is not touched",
            cfg.network.bridge, cfg.network.subnet
        );
        if let (Some(file), true) = (&cfg.network.caddy_file, Path::new(CADDY).is_file()) {
            caddy = Some(start_caddy(top.path(), file, &cfg)?);
            proxy = Some(std::net::SocketAddr::from(([127, 0, 0, 1], PROXY_PORT)));
            println!(
                "  proxy      caddy on 127.0.0.1:{PROXY_PORT}: try \
                 nsenter --net=/proc/{me}/ns/net curl -H 'Host: acme.{DOMAIN}' http://127.0.0.1:{PROXY_PORT}/"
            );
        } else {
            println!("  proxy      none ({CADDY} is missing: apt-get install caddy); gateways answer on their addresses");
        }
    } else {
        println!("  network    off (each gateway only has its own loopback)");
    }
    println!(
        "Ctrl-C or SIGTERM stops everything and removes {}",
        top.path().display()
    );
    let r = daemon::run(
        cfg,
        daemon::Options {
            table_every: Some(opts.refresh),
            proxy,
        },
    )
    .await;
    if let Some(mut c) = caddy {
        let _ = c.kill();
        let _ = c.wait();
    }
    let path = top.path().to_path_buf();
    top.close().map_err(io("remove", &path))?;
    println!("demo stopped; removed {}", path.display());
    Ok(r?)
}

/// Caddy on the generated Caddyfile (admin off, no automatic HTTPS, HOME and XDG dirs in the
/// demo's temp dir), reloading it on every change (`--watch`).
fn start_caddy(
    top: &Path,
    caddyfile: &Path,
    cfg: &Config,
) -> Result<std::process::Child, DemoError> {
    let routes = reeve_network::Routes::new(&cfg.network.domain)?;
    routes.write_caddy(caddyfile, &cfg.network.caddy_options())?;
    let home = top.join("caddy");
    std::fs::create_dir_all(&home).map_err(io("mkdir", &home))?;
    let log = home.join("caddy.log");
    let out = std::fs::File::create(&log).map_err(io("create", &log))?;
    let err = out.try_clone().map_err(io("dup", &log))?;
    std::process::Command::new(CADDY)
        .args(["run", "--watch", "--adapter", "caddyfile", "--config"])
        .arg(caddyfile)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| DemoError::Caddy {
            caddy: PathBuf::from(CADDY),
            source,
        })
}
