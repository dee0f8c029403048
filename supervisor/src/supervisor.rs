//! The supervisor: one task per tenant that starts its gateway through the OCI runtime, watches
//! it with a pidfd, restarts it with backoff, and stops it gracefully; plus re-adoption of
//! sandboxes left running by a previous reeved.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::backend::{self, BackendError, Oci};
use crate::backoff::Backoff;
use crate::bundle::{self, BundleError};
use crate::config::{CgroupDriver, Config, Limits, RuntimeChoice};
use crate::host::{self, CgroupStats, HostError, LimitsMode, TenantCgroups};
use crate::logs::{self, LogError};
use crate::name::{NameError, TenantName};
use crate::tenant::{self, TenantError};
use crate::uids::{UidError, UidStore};

/// Errors of the supervisor.
#[derive(Debug, thiserror::Error)]
pub enum SupError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Uid(#[from] UidError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error(transparent)]
    Net(Box<crate::network::NetError>),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cgroup limits cannot be enforced on this host ({0}); set allow_no_limits = true to run \
         tenants WITHOUT resource limits"
    )]
    NoLimits(String),
    #[error("tenant {name}: data directory {path} does not exist (create it with `reeved tenant create {name}`)")]
    NoData { name: String, path: PathBuf },
    #[error("pidfd_open({pid}) of tenant {name}'s gateway: {source}")]
    Pidfd {
        name: String,
        pid: i32,
        source: std::io::Error,
    },
    #[error("tenant {0} is not managed by this reeved")]
    Unknown(String),
    #[error("tenant {0} is already managed")]
    AlreadyManaged(String),
    #[error("the task of tenant {0} is gone")]
    TaskGone(String),
    #[error("blocking task: {0}")]
    Join(String),
}

impl From<crate::network::NetError> for SupError {
    fn from(e: crate::network::NetError) -> Self {
        SupError::Net(Box::new(e))
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SupError + 'a {
    move |source| SupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// reeved's files under state_dir.
#[derive(Debug, Clone)]
pub struct Paths {
    pub state_dir: PathBuf,
    pub oci_root: PathBuf,
    pub bundles: PathBuf,
    pub skeleton: PathBuf,
    pub pids: PathBuf,
    pub records: PathBuf,
    pub logs: PathBuf,
    pub stopped: PathBuf,
    pub socket: PathBuf,
    /// Network state (address allocations), kept across restarts; made with `[network]` only.
    pub network: PathBuf,
}

impl Paths {
    pub fn new(state_dir: &Path) -> Paths {
        Paths {
            state_dir: state_dir.to_path_buf(),
            oci_root: state_dir.join("oci"),
            bundles: state_dir.join("bundles"),
            skeleton: state_dir.join("rootfs"),
            pids: state_dir.join("pids"),
            records: state_dir.join("tenants"),
            logs: state_dir.join("logs"),
            stopped: state_dir.join("stopped"),
            socket: state_dir.join("reeved.sock"),
            network: state_dir.join("network"),
        }
    }
    pub fn log(&self, n: &TenantName) -> PathBuf {
        self.logs.join(format!("{n}.log"))
    }
    pub fn pid_file(&self, n: &TenantName) -> PathBuf {
        self.pids.join(format!("{n}.pid"))
    }
    pub fn record(&self, n: &TenantName) -> PathBuf {
        self.records.join(format!("{n}.json"))
    }
    pub fn stopped_marker(&self, n: &TenantName) -> PathBuf {
        self.stopped.join(n.as_str())
    }

    /// Make the directories (state_dir 0711 so sandboxes' mapped root can reach the rootfs).
    pub fn create(&self) -> Result<(), SupError> {
        let mk = |p: &Path, mode: u32| {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(p)
                .map_err(io("mkdir", p))
        };
        mk(&self.state_dir, 0o711)?;
        mk(&self.oci_root, 0o700)?;
        mk(&self.bundles, 0o711)?;
        mk(&self.pids, 0o700)?;
        mk(&self.records, 0o700)?;
        mk(&self.logs, 0o750)?;
        mk(&self.stopped, 0o700)?;
        Ok(())
    }

    /// Remove what a clean shutdown leaves behind (not uids.json, stop markers or logs). The
    /// runtime's root (with its caches) goes too when `oci_empty`.
    pub fn clean(&self, oci_empty: bool) {
        if oci_empty {
            if let Err(e) = std::fs::remove_dir_all(&self.oci_root) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("remove {}: {e}", self.oci_root.display());
                }
            }
        }
        for d in [&self.bundles, &self.pids, &self.records, &self.skeleton] {
            if let Err(e) = std::fs::remove_dir_all(d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("remove {}: {e}", d.display());
                }
            }
        }
        let _ = std::fs::remove_dir(&self.oci_root);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// What reeved remembers about a running gateway, for re-adoption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub container_id: String,
    pub pid: i32,
    pub started_unix: u64,
    pub restarts: u32,
}

/// The phase of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Starting,
    Running,
    Stopping,
    Stopped,
    Backoff,
    CrashLoop,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
            Phase::Backoff => "backoff",
            Phase::CrashLoop => "crash-loop",
        })
    }
}

/// What `status` shows of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantStatus {
    pub name: String,
    pub phase: Phase,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub started_unix: Option<u64>,
    pub adopted: bool,
    pub last_exit: Option<String>,
    pub last_error: Option<String>,
    pub uid_base: Option<u32>,
    pub limits: Limits,
    /// Whether `limits` are applied (false in no-limits mode).
    pub limits_enforced: bool,
    #[serde(default)]
    pub stats: CgroupStats,
    /// The tenant's address with `[network]` (while its network is up: `upstream` of its route).
    #[serde(default)]
    pub address: Option<std::net::SocketAddrV4>,
}

/// Create the seed layout of a new tenant, allocating its uid range (needs no runtime and no
/// cgroups: `reeved tenant create` uses it when no reeved runs).
pub fn create_tenant_data(cfg: &Config, name: &TenantName) -> Result<PathBuf, SupError> {
    let dir = tenant::data_dir(&cfg.data_root, name);
    if dir.exists() {
        return Err(TenantError::Exists(name.to_string()).into());
    }
    Paths::new(&cfg.state_dir).create()?;
    let range = UidStore::new(&cfg.state_dir, cfg.uids).range_for(name, &dir)?;
    Ok(tenant::create_layout(&cfg.data_root, name, &range)?)
}

/// The supervisor-wide context shared by tenant tasks.
pub struct Ctx {
    pub cfg: Config,
    pub paths: Paths,
    pub oci: Oci,
    /// Whether limits are enforced; when not, `limits_note` says why.
    pub limits_on: bool,
    pub limits_note: String,
    /// Where the tenants' cgroups are (None without limits, and for CLI helpers with the
    /// cgroupfs driver, which do not delegate).
    pub tenant_cgroups: Option<TenantCgroups>,
    pub root: bundle::Root,
    /// Per-tenant networks, when `[network] enabled`.
    pub net: Option<crate::network::TenantNetworks>,
    uids: std::sync::Mutex<()>,
    sem: Arc<Semaphore>,
}

impl Ctx {
    /// Resolve the runtime and the limits mode. `delegate`: set up our cgroup for tenants when
    /// limits are enforceable (the daemon does; CLI helpers do not).
    pub fn new(cfg: Config, delegate: bool) -> Result<Ctx, SupError> {
        let binary = match cfg.runtime_choice() {
            RuntimeChoice::Builtin => backend::find_builtin()?,
            RuntimeChoice::Path(p) => p,
        };
        let systemd = match cfg.cgroup_driver {
            CgroupDriver::Systemd => true,
            CgroupDriver::Cgroupfs => false,
            CgroupDriver::Auto => host::own_service().is_some(),
        };
        let (limits_on, limits_note, tenant_cgroups) = match host::detect_limits_for(systemd) {
            LimitsMode::Enforced { mount, .. } if systemd => (
                true,
                format!(
                    "enforced (cgroup v2 at {}, systemd driver: scopes {}-<tenant>.scope in {})",
                    mount.display(),
                    host::SCOPE_PREFIX,
                    host::TENANT_SLICE
                ),
                Some(TenantCgroups::Systemd {
                    slice: host::TENANT_SLICE.to_string(),
                }),
            ),
            LimitsMode::Enforced { mount, own } => {
                let parent = if delegate {
                    Some(TenantCgroups::Delegated {
                        parent: host::delegate(&mount, &own)?,
                    })
                } else {
                    None
                };
                (
                    true,
                    format!("enforced (cgroup v2 at {})", mount.display()),
                    parent,
                )
            }
            LimitsMode::Unavailable(why) if cfg.allow_no_limits => (false, why, None),
            LimitsMode::Unavailable(why) => return Err(SupError::NoLimits(why)),
        };
        let mut global = Vec::new();
        if !limits_on && backend::is_reevec(&binary) {
            global.extend(["--cgroup-manager".to_string(), "disabled".to_string()]);
        }
        if limits_on && systemd {
            // Every call, not only create: delete must stop the scope, state/list/kill find it.
            global.push("--systemd-cgroup".to_string());
        }
        let paths = Paths::new(&cfg.state_dir);
        let root = match &cfg.gateway.rootfs {
            Some(r) => bundle::Root::Dir(r.clone()),
            None => bundle::Root::HostBinds {
                skeleton: paths.skeleton.clone(),
                binds: cfg.gateway.host_binds.clone(),
            },
        };
        let net = if cfg.network.enabled {
            Some(crate::network::TenantNetworks::open(
                &cfg.network,
                &cfg.state_dir,
            )?)
        } else {
            None
        };
        Ok(Ctx {
            net,
            oci: Oci {
                binary,
                root: paths.oci_root.clone(),
                global,
            },
            sem: Arc::new(Semaphore::new(cfg.max_parallel_starts)),
            cfg,
            paths,
            limits_on,
            limits_note,
            tenant_cgroups,
            root,
            uids: std::sync::Mutex::new(()),
        })
    }

    /// The uid range of `name` (allocated on first use).
    pub fn range(&self, name: &TenantName) -> Result<crate::uids::IdRange, SupError> {
        let _g = self.uids.lock().unwrap_or_else(|p| p.into_inner());
        let store = UidStore::new(&self.paths.state_dir, self.cfg.uids);
        Ok(store.range_for(name, &tenant::data_dir(&self.cfg.data_root, name))?)
    }

    /// Create the data of a new tenant.
    pub fn create_tenant(&self, name: &TenantName) -> Result<PathBuf, SupError> {
        let _g = self.uids.lock().unwrap_or_else(|p| p.into_inner());
        create_tenant_data(&self.cfg, name)
    }

    fn bundle_inputs(&self, name: &TenantName) -> Result<bundle::Inputs, SupError> {
        let data_dir = tenant::data_dir(&self.cfg.data_root, name);
        if !data_dir.is_dir() {
            return Err(SupError::NoData {
                name: name.to_string(),
                path: data_dir,
            });
        }
        Ok(bundle::Inputs {
            tenant: name.clone(),
            ids: self.range(name)?,
            data_dir,
            command: self.cfg.gateway.command.clone(),
            env: self.cfg.gateway.env.clone(),
            gateway_dir: self.cfg.gateway.dir.clone(),
            layer1_dir: self.cfg.layer1_dir.clone(),
            root: self.root.clone(),
            limits: self.cfg.limits_for(name),
            apply_limits: self.limits_on,
            cgroups_path: self
                .tenant_cgroups
                .as_ref()
                .map(|c| c.cgroups_path(name.as_str())),
        })
    }

    /// Write the bundle, create and start the sandbox (blocking). Returns pid and pidfd.
    fn launch(&self, name: &TenantName, restarts: u32) -> Result<(i32, OwnedFd), SupError> {
        let inputs = self.bundle_inputs(name)?;
        bundle::prepare_root(&self.root)?;
        let spec = bundle::spec(&inputs)?;
        let dir = bundle::write(&self.paths.state_dir, name, &spec)?;
        let id = name.container_id();
        // A leftover of a crash between create and start, or of a stopped sandbox.
        self.oci.delete_force(&id)?;
        let log_path = self.paths.log(name);
        let log = logs::open(&log_path)?;
        let pid = self
            .oci
            .create(&id, &dir, &self.paths.pid_file(name), &log)?;
        // The init waits for `start`: its pid cannot be reused before we hold the pidfd.
        let fd = match host::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(source) => {
                let _ = self.oci.delete_force(&id);
                return Err(SupError::Pidfd {
                    name: name.to_string(),
                    pid,
                    source,
                });
            }
        };
        // The gateway has no CAP_NET_ADMIN: bring its loopback up (and with [network] give
        // it its veth, address, routes and rules) before it runs.
        let net = match &self.net {
            Some(net) => net
                .start(name.as_str(), pid)
                .map(|_| ())
                .map_err(SupError::from),
            None => crate::netns::run_helper(&["netns-lo-up".into(), pid.to_string()])
                .map(|_| ())
                .map_err(SupError::from),
        };
        if let Err(e) = net {
            let _ = self.oci.delete_force(&id);
            self.net_stop(name);
            return Err(e);
        }
        if let Err(e) = self.oci.start(&id) {
            let _ = self.oci.delete_force(&id);
            self.net_stop(name);
            return Err(e.into());
        }
        self.save_record(
            name,
            &Record {
                container_id: id,
                pid,
                started_unix: tenant::unix_now(),
                restarts,
            },
        )?;
        Ok((pid, fd))
    }

    /// The sandbox of `name` is gone: remove its network (logged, not fatal).
    fn net_stop(&self, name: &TenantName) {
        if let Some(net) = &self.net {
            if let Err(e) = net.stop(name.as_str()) {
                tracing::error!("tenant {name}: {e}");
            }
        }
    }

    /// Sandbox `id` of `name` is over: delete it, remove its network (even when the delete
    /// fails, so no veth or rule outlives it), then forget its record.
    fn remove_sandbox(&self, name: &TenantName, id: &str) -> Result<(), SupError> {
        let r = self.oci.delete_force(id);
        self.net_stop(name);
        r?;
        self.forget(name);
        Ok(())
    }

    /// A sandbox of `name` (init `pid`) was re-adopted: take over its network.
    fn net_adopt(&self, name: &TenantName, pid: i32) -> Result<(), SupError> {
        if let Some(net) = &self.net {
            net.adopt(name.as_str(), pid)?;
        }
        Ok(())
    }

    /// The tenant is gone for good: release its address.
    fn net_delete(&self, name: &TenantName) {
        if let Some(net) = &self.net {
            if let Err(e) = net.delete(name.as_str()) {
                tracing::error!("tenant {name}: {e}");
            }
        }
    }

    fn save_record(&self, name: &TenantName, r: &Record) -> Result<(), SupError> {
        let p = self.paths.record(name);
        let tmp = p.with_extension("json.tmp");
        let text = serde_json::to_vec(r).map_err(|e| SupError::Io {
            op: "serialize",
            path: p.clone(),
            source: e.into(),
        })?;
        std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &p).map_err(io("rename", &p))
    }

    pub fn load_record(&self, name: &TenantName) -> Option<Record> {
        let b = std::fs::read(self.paths.record(name)).ok()?;
        serde_json::from_slice(&b).ok()
    }

    fn forget(&self, name: &TenantName) {
        let _ = std::fs::remove_file(self.paths.record(name));
        let _ = std::fs::remove_file(self.paths.pid_file(name));
    }

    /// A sandbox left by a previous reeved that is still ours: the runtime says running and
    /// its pid is the one we saved. Anything else of that id is deleted.
    fn try_adopt(&self, name: &TenantName) -> Result<Option<(Record, OwnedFd)>, SupError> {
        let id = name.container_id();
        let rec = self.load_record(name);
        let Some(st) = self.oci.state(&id)? else {
            return Ok(None);
        };
        if let Some(rec) = rec {
            if st.status == "running" && st.pid == rec.pid && rec.container_id == id {
                if let Ok(fd) = host::pidfd_open(rec.pid) {
                    // The pidfd may name a recycled pid: check again now that we hold it.
                    if let Some(again) = self.oci.state(&id)? {
                        if again.status == "running" && again.pid == rec.pid {
                            return Ok(Some((rec, fd)));
                        }
                    }
                }
            }
        }
        tracing::warn!(
            "tenant {name}: sandbox {id} is {} (pid {}) but not the one reeved saved: deleting it",
            st.status,
            st.pid
        );
        self.oci.delete_force(&id)?;
        Ok(None)
    }

    fn stop_marked(&self, name: &TenantName) -> bool {
        self.paths.stopped_marker(name).exists()
    }

    fn mark_stopped(&self, name: &TenantName, stopped: bool) {
        let p = self.paths.stopped_marker(name);
        let r = if stopped {
            std::fs::write(&p, b"")
        } else {
            std::fs::remove_file(&p).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
        };
        if let Err(e) = r {
            tracing::warn!("stop marker {}: {e}", p.display());
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SupError> + Send + 'static,
) -> Result<T, SupError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SupError::Join(e.to_string()))?
}

/// Commands to a tenant task; each is answered when done.
#[derive(Debug)]
enum Cmd {
    Start(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
    /// Stop the gateway and end the task.
    Shutdown(oneshot::Sender<()>),
}

/// Register a pidfd with the reactor (readable once the process has exited).
fn watch(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and unchanged until it is dropped.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}

struct Running {
    pid: i32,
    fd: AsyncFd<OwnedFd>,
    since: Instant,
}

struct Handle {
    tx: mpsc::Sender<Cmd>,
    status: Arc<std::sync::Mutex<TenantStatus>>,
    task: tokio::task::JoinHandle<()>,
}

/// All tenants.
pub struct Supervisor {
    pub ctx: Arc<Ctx>,
    tenants: tokio::sync::Mutex<BTreeMap<TenantName, Handle>>,
}

impl Supervisor {
    pub fn new(ctx: Ctx) -> Supervisor {
        Supervisor {
            ctx: Arc::new(ctx),
            tenants: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Start managing `name`; the returned receiver fires after its first start attempt.
    async fn manage(&self, name: TenantName) -> Result<oneshot::Receiver<()>, SupError> {
        let mut map = self.tenants.lock().await;
        if map.contains_key(&name) {
            return Err(SupError::AlreadyManaged(name.to_string()));
        }
        let status = Arc::new(std::sync::Mutex::new(TenantStatus {
            name: name.to_string(),
            phase: Phase::Starting,
            pid: None,
            restarts: 0,
            started_unix: None,
            adopted: false,
            last_exit: None,
            last_error: None,
            uid_base: None,
            limits: self.ctx.cfg.limits_for(&name),
            limits_enforced: self.ctx.limits_on,
            stats: CgroupStats::default(),
            address: None,
        }));
        let (tx, rx) = mpsc::channel(8);
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(tenant_task(
            self.ctx.clone(),
            name.clone(),
            status.clone(),
            rx,
            first_tx,
        ));
        map.insert(name, Handle { tx, status, task });
        Ok(first_rx)
    }

    /// Re-read the tenant directory: manage new tenants, stop and forget removed ones. Returns
    /// (added, removed); waits for the first start attempt of the added ones.
    pub async fn reload(&self) -> Result<(Vec<String>, Vec<String>), SupError> {
        let root = self.ctx.cfg.data_root.clone();
        let (names, bad) = blocking(move || Ok(tenant::list(&root)?)).await?;
        for (n, e) in bad {
            tracing::warn!("ignoring {n:?} in the tenant directory: {e}");
        }
        let current: Vec<TenantName> = self.tenants.lock().await.keys().cloned().collect();
        let mut firsts = Vec::new();
        let mut added = Vec::new();
        for n in &names {
            if !current.contains(n) {
                firsts.push(self.manage(n.clone()).await?);
                added.push(n.to_string());
            }
        }
        let mut removed = Vec::new();
        for n in current {
            if !names.contains(&n) {
                self.unmanage(&n).await?;
                let ctx = self.ctx.clone();
                let gone = n.clone();
                blocking(move || {
                    ctx.net_delete(&gone);
                    Ok(())
                })
                .await?;
                removed.push(n.to_string());
            }
        }
        for f in firsts {
            let _ = f.await;
        }
        self.net_reconcile(&names).await;
        Ok((added, removed))
    }

    /// With `[network]`: make bridge and nftables hold exactly the live tenants (after a crash
    /// of a previous reeved, stale rules and veths go) and release the addresses of tenants
    /// whose data is gone.
    async fn net_reconcile(&self, existing: &[TenantName]) {
        if self.ctx.net.is_none() {
            return;
        }
        let ctx = self.ctx.clone();
        let existing: Vec<String> = existing.iter().map(|n| n.to_string()).collect();
        let r = blocking(move || {
            let names: Vec<&str> = existing.iter().map(String::as_str).collect();
            match &ctx.net {
                Some(net) => Ok(Some(net.reconcile(&names)?)),
                None => Ok(None),
            }
        })
        .await;
        match r {
            Ok(Some(rep)) => tracing::info!(
                "network reconciled: live {:?}, stale links removed {:?}",
                rep.kept,
                rep.removed_links
            ),
            Ok(None) => {}
            Err(e) => tracing::error!("{e}"),
        }
    }

    /// The hostname routing table (None without `[network]`).
    pub fn routes(&self) -> Option<Vec<crate::network::RouteEntry>> {
        self.ctx.net.as_ref().map(|n| n.routes())
    }

    /// After every sandbox is stopped: remove bridge, veths and rules; empty the route files.
    pub async fn net_shutdown(&self) {
        let ctx = self.ctx.clone();
        let r = blocking(move || {
            if let Some(net) = &ctx.net {
                net.shutdown()?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = r {
            tracing::error!("{e}");
        }
    }

    async fn send(
        &self,
        name: &TenantName,
        mk: fn(oneshot::Sender<()>) -> Cmd,
    ) -> Result<(), SupError> {
        let tx = {
            let map = self.tenants.lock().await;
            map.get(name)
                .ok_or_else(|| SupError::Unknown(name.to_string()))?
                .tx
                .clone()
        };
        let (done_tx, done_rx) = oneshot::channel();
        tx.send(mk(done_tx))
            .await
            .map_err(|_| SupError::TaskGone(name.to_string()))?;
        done_rx
            .await
            .map_err(|_| SupError::TaskGone(name.to_string()))
    }

    pub async fn start(&self, name: &TenantName) -> Result<(), SupError> {
        self.send(name, Cmd::Start).await
    }
    pub async fn stop(&self, name: &TenantName) -> Result<(), SupError> {
        self.send(name, Cmd::Stop).await
    }
    pub async fn restart(&self, name: &TenantName) -> Result<(), SupError> {
        self.send(name, Cmd::Restart).await
    }

    /// Stop the gateway of `name` and stop managing it.
    pub async fn unmanage(&self, name: &TenantName) -> Result<(), SupError> {
        self.send(name, Cmd::Shutdown).await?;
        if let Some(h) = self.tenants.lock().await.remove(name) {
            let _ = h.task.await;
        }
        Ok(())
    }

    /// Create a tenant's data and start it.
    pub async fn create(&self, name: &TenantName) -> Result<PathBuf, SupError> {
        let ctx = self.ctx.clone();
        let n = name.clone();
        let dir = blocking(move || ctx.create_tenant(&n)).await?;
        let first = self.manage(name.clone()).await?;
        let _ = first.await;
        Ok(dir)
    }

    /// Stop a tenant, move its data to the tombstones, forget its state.
    pub async fn delete(&self, name: &TenantName) -> Result<PathBuf, SupError> {
        let managed = self.tenants.lock().await.contains_key(name);
        if managed {
            self.unmanage(name).await?;
        }
        let ctx = self.ctx.clone();
        let n = name.clone();
        blocking(move || {
            let t = tenant::tombstone(&ctx.cfg.data_root, &n, tenant::unix_now())?;
            ctx.net_delete(&n);
            ctx.forget(&n);
            ctx.mark_stopped(&n, false);
            let _ = std::fs::remove_dir_all(bundle::bundle_dir(&ctx.paths.state_dir, &n));
            Ok(t)
        })
        .await
    }

    /// Stop every gateway (concurrently) and end all tasks.
    pub async fn shutdown(&self) {
        let names: Vec<TenantName> = self.tenants.lock().await.keys().cloned().collect();
        let mut set = tokio::task::JoinSet::new();
        for n in names {
            let (tx, task) = {
                let mut map = self.tenants.lock().await;
                match map.remove(&n) {
                    Some(h) => (h.tx, h.task),
                    None => continue,
                }
            };
            set.spawn(async move {
                let (done_tx, done_rx) = oneshot::channel();
                if tx.send(Cmd::Shutdown(done_tx)).await.is_ok() {
                    let _ = done_rx.await;
                }
                let _ = task.await;
            });
        }
        while set.join_next().await.is_some() {}
    }

    /// The status of every tenant, with cgroup statistics when `stats`.
    pub async fn status(&self, stats: bool) -> Vec<TenantStatus> {
        let map = self.tenants.lock().await;
        let mut out: Vec<TenantStatus> = map
            .values()
            .map(|h| h.status.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect();
        drop(map);
        if let Some(routes) = self.routes() {
            for s in &mut out {
                s.address = routes
                    .iter()
                    .find(|r| r.tenant == s.name)
                    .map(|r| r.upstream);
            }
        }
        // Without limits the gateway has no cgroup of its own: nothing to show.
        if stats && self.ctx.limits_on {
            for s in &mut out {
                if let Some(pid) = s.pid {
                    s.stats = host::stats_of(pid);
                }
            }
        }
        out
    }

    /// One line for systemd's STATUS=.
    pub async fn summary(&self) -> String {
        summary(&self.status(false).await, &self.ctx)
    }

    /// Rotate the gateway logs that grew too large.
    pub async fn rotate_logs(&self) {
        let names: Vec<TenantName> = self.tenants.lock().await.keys().cloned().collect();
        let ctx = self.ctx.clone();
        let _ = blocking(move || {
            for n in names {
                let p = ctx.paths.log(&n);
                if let Err(e) =
                    logs::rotate_if_needed(&p, ctx.cfg.logs.max_bytes.0, ctx.cfg.logs.keep)
                {
                    tracing::warn!("{e}");
                }
            }
            Ok(())
        })
        .await;
    }
}

/// `N tenants: a running, b crash-loop, ...; limits ...`.
pub fn summary(all: &[TenantStatus], ctx: &Ctx) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in all {
        *counts.entry(s.phase.to_string()).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let limits = if ctx.limits_on {
        "limits enforced".to_string()
    } else {
        "NO LIMITS".to_string()
    };
    format!(
        "{} tenants: {}; {limits}",
        all.len(),
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    )
}

fn set(status: &std::sync::Mutex<TenantStatus>, f: impl FnOnce(&mut TenantStatus)) {
    f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Stop a running gateway: SIGTERM, grace period, SIGKILL, delete. Returns how it ended.
async fn stop_running(ctx: &Arc<Ctx>, name: &TenantName, r: Running) -> String {
    let id = name.container_id();
    let c = ctx.clone();
    let i = id.clone();
    if let Err(e) = blocking(move || Ok(c.oci.kill(&i, "SIGTERM")?)).await {
        tracing::debug!("tenant {name}: SIGTERM: {e}");
    }
    let grace = Duration::from_millis(ctx.cfg.restart.stop_grace_ms);
    if tokio::time::timeout(grace, r.fd.readable()).await.is_err() {
        tracing::warn!("tenant {name}: gateway ignored SIGTERM for {grace:?}: SIGKILL");
        let c = ctx.clone();
        let i = id.clone();
        if let Err(e) = blocking(move || Ok(c.oci.kill(&i, "SIGKILL")?)).await {
            tracing::warn!("tenant {name}: SIGKILL: {e}");
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), r.fd.readable()).await;
    }
    let how = host::try_reap(r.fd.get_ref()).unwrap_or_else(|| "stopped".to_string());
    let c = ctx.clone();
    let n = name.clone();
    if let Err(e) = blocking(move || c.remove_sandbox(&n, &id)).await {
        tracing::error!("tenant {name}: delete: {e}");
    }
    how
}

async fn tenant_task(
    ctx: Arc<Ctx>,
    name: TenantName,
    status: Arc<std::sync::Mutex<TenantStatus>>,
    mut rx: mpsc::Receiver<Cmd>,
    first: oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut backoff = Backoff::new(&ctx.cfg.restart);
    let mut restarts = 0u32;
    let mut want = !ctx.stop_marked(&name);
    let mut next_start = Instant::now();
    let mut running: Option<Running> = None;
    // The next successful start is a restart after an exit or a failure (not a manual one).
    let mut unplanned = false;

    // Re-adoption of a sandbox left by a previous reeved.
    {
        let c = ctx.clone();
        let n = name.clone();
        let _permit = ctx.sem.clone().acquire_owned().await;
        match blocking(move || {
            let adopted = c.try_adopt(&n)?;
            if let Some((rec, _)) = &adopted {
                if let Err(e) = c.net_adopt(&n, rec.pid) {
                    // Without its network the sandbox is useless: start it afresh.
                    tracing::error!("tenant {n}: {e}: restarting the adopted sandbox");
                    c.remove_sandbox(&n, &rec.container_id)?;
                    return Ok(None);
                }
            }
            Ok(adopted)
        })
        .await
        {
            Ok(Some((rec, fd))) => match watch(fd) {
                Ok(fd) => {
                    tracing::info!("tenant {name}: re-adopted running gateway pid {}", rec.pid);
                    restarts = rec.restarts;
                    let uid = ctx.range(&name).ok().map(|r| r.host_base);
                    set(&status, |s| {
                        s.phase = Phase::Running;
                        s.pid = Some(rec.pid);
                        s.adopted = true;
                        s.restarts = rec.restarts;
                        s.started_unix = Some(rec.started_unix);
                        s.uid_base = uid;
                    });
                    running = Some(Running {
                        pid: rec.pid,
                        fd,
                        since: Instant::now(),
                    });
                    want = true;
                }
                Err(e) => tracing::error!("tenant {name}: watch adopted pidfd: {e}"),
            },
            Ok(None) => {}
            Err(e) => {
                tracing::error!("tenant {name}: re-adoption: {e}");
                set(&status, |s| s.last_error = Some(e.to_string()));
            }
        }
    }
    if running.is_some() || !want {
        if !want {
            set(&status, |s| s.phase = Phase::Stopped);
        }
        if let Some(f) = first.take() {
            let _ = f.send(());
        }
    }

    loop {
        if let Some(r) = running.take() {
            tokio::select! {
                _ = r.fd.readable() => {
                    let how = host::try_reap(r.fd.get_ref()).unwrap_or_else(|| "exited".to_string());
                    let ran = r.since.elapsed();
                    tracing::warn!("tenant {name}: gateway pid {} {how} after {ran:?}", r.pid);
                    let c = ctx.clone();
                    let n = name.clone();
                    if let Err(e) = blocking(move || c.remove_sandbox(&n, &n.container_id())).await {
                        tracing::error!("tenant {name}: delete after exit: {e}");
                    }
                    let d = backoff.on_exit(ran);
                    tracing::info!("tenant {name}: next start in {:?}{}", d.delay, if d.crash_loop { " (crash loop)" } else { "" });
                    unplanned = true;
                    next_start = Instant::now() + d.delay;
                    set(&status, |s| {
                        s.phase = if d.crash_loop { Phase::CrashLoop } else { Phase::Backoff };
                        s.pid = None;
                        s.last_exit = Some(how);
                    });
                }
                cmd = rx.recv() => {
                    match cmd {
                        None => return, // supervisor gone without shutdown: leave it running
                        Some(Cmd::Start(done)) => { running = Some(r); let _ = done.send(()); }
                        Some(Cmd::Stop(done)) => {
                            set(&status, |s| s.phase = Phase::Stopping);
                            let how = stop_running(&ctx, &name, r).await;
                            want = false;
                            ctx.mark_stopped(&name, true);
                            set(&status, |s| { s.phase = Phase::Stopped; s.pid = None; s.last_exit = Some(how); });
                            let _ = done.send(());
                        }
                        Some(Cmd::Restart(done)) => {
                            set(&status, |s| s.phase = Phase::Stopping);
                            let how = stop_running(&ctx, &name, r).await;
                            backoff.reset();
                            unplanned = false;
                            want = true;
                            ctx.mark_stopped(&name, false);
                            next_start = Instant::now();
                            set(&status, |s| { s.phase = Phase::Starting; s.pid = None; s.last_exit = Some(how); });
                            // Answer once the new gateway is up (or failed).
                            first = Some(done);
                        }
                        Some(Cmd::Shutdown(done)) => {
                            set(&status, |s| s.phase = Phase::Stopping);
                            let how = stop_running(&ctx, &name, r).await;
                            set(&status, |s| { s.phase = Phase::Stopped; s.pid = None; s.last_exit = Some(how); });
                            let _ = done.send(());
                            return;
                        }
                    }
                }
            }
            continue;
        }

        if !want {
            match rx.recv().await {
                None => return,
                Some(Cmd::Start(done)) | Some(Cmd::Restart(done)) => {
                    want = true;
                    ctx.mark_stopped(&name, false);
                    backoff.reset();
                    next_start = Instant::now();
                    set(&status, |s| s.phase = Phase::Starting);
                    first = Some(done);
                }
                Some(Cmd::Stop(done)) => {
                    let _ = done.send(());
                }
                Some(Cmd::Shutdown(done)) => {
                    let _ = done.send(());
                    return;
                }
            }
            continue;
        }

        // Wanted but not running: wait for the backoff, then start.
        let wait = next_start.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                cmd = rx.recv() => {
                    match cmd {
                        None => return,
                        Some(Cmd::Start(done)) | Some(Cmd::Restart(done)) => {
                            backoff.reset();
                            next_start = Instant::now();
                            set(&status, |s| s.phase = Phase::Starting);
                            first = Some(done);
                        }
                        Some(Cmd::Stop(done)) => {
                            want = false;
                            ctx.mark_stopped(&name, true);
                            set(&status, |s| s.phase = Phase::Stopped);
                            let _ = done.send(());
                        }
                        Some(Cmd::Shutdown(done)) => {
                            set(&status, |s| s.phase = Phase::Stopped);
                            let _ = done.send(());
                            return;
                        }
                    }
                    continue;
                }
            }
        }

        {
            let crash = matches!(
                status.lock().map(|s| s.phase).unwrap_or(Phase::Starting),
                Phase::CrashLoop
            );
            if !crash {
                set(&status, |s| s.phase = Phase::Starting);
            }
        }
        let permit = ctx.sem.clone().acquire_owned().await;
        let c = ctx.clone();
        let n = name.clone();
        let attempt = restarts;
        let result = blocking(move || c.launch(&n, attempt)).await;
        drop(permit);
        match result.and_then(|(pid, fd)| {
            watch(fd)
                .map(|fd| (pid, fd))
                .map_err(io("watch pidfd of", Path::new(name.as_str())))
        }) {
            Ok((pid, fd)) => {
                if unplanned {
                    restarts += 1;
                    unplanned = false;
                }
                let uid = ctx.range(&name).ok().map(|r| r.host_base);
                tracing::info!("tenant {name}: gateway running, pid {pid}");
                set(&status, |s| {
                    s.phase = Phase::Running;
                    s.pid = Some(pid);
                    s.restarts = restarts;
                    s.started_unix = Some(tenant::unix_now());
                    s.adopted = false;
                    s.last_error = None;
                    s.uid_base = uid;
                });
                if restarts > 0 {
                    // Keep the count across a reeved restart.
                    if let Some(mut rec) = ctx.load_record(&name) {
                        rec.restarts = restarts;
                        let _ = ctx.save_record(&name, &rec);
                    }
                }
                running = Some(Running {
                    pid,
                    fd,
                    since: Instant::now(),
                });
            }
            Err(e) => {
                tracing::error!("tenant {name}: start failed: {e}");
                let d = backoff.on_exit(Duration::ZERO);
                unplanned = true;
                next_start = Instant::now() + d.delay;
                set(&status, |s| {
                    s.phase = if d.crash_loop {
                        Phase::CrashLoop
                    } else {
                        Phase::Backoff
                    };
                    s.pid = None;
                    s.last_error = Some(e.to_string());
                });
            }
        }
        if let Some(f) = first.take() {
            let _ = f.send(());
        }
    }
}
