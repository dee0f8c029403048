//! `reeved demo`: the whole job in one command, in temporary directories. A gateway root
//! filesystem from Debian's static busybox, a demo gateway (a busybox sh script logging a
//! heartbeat with its tenant name every 2 s and serving HTTP on :8080 inside its network
//! namespace when busybox has httpd), tenants `acme` and `beta`, the supervisor with a status
//! table, and everything stopped and removed on Ctrl-C or SIGTERM.

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
pub fn build(top: &Path, runtime: Option<&Path>) -> Result<Config, DemoError> {
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
        allow_no_limits: true,
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
    let cfg = build(top.path(), opts.runtime.as_deref())?;
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
    println!(
        "Ctrl-C or SIGTERM stops everything and removes {}",
        top.path().display()
    );
    let r = daemon::run(
        cfg,
        daemon::Options {
            table_every: Some(opts.refresh),
        },
    )
    .await;
    let path = top.path().to_path_buf();
    top.close().map_err(io("remove", &path))?;
    println!("demo stopped; removed {}", path.display());
    Ok(r?)
}
