//! `reeved audit NAME`: prove a live tenant's isolation on this host, now.
//!
//! The tenant's bundle (the `config.json` reeved wrote when it started the gateway) is copied
//! with three changes only: the process runs the isolation probe (`tests/probe/reeve-probe.c`)
//! instead of the gateway, the container gets a fresh id, and, when the tenant has a cgroup, the
//! copy gets a sibling cgroup with the same limits (`<cgroupsPath>-audit-<pid>`) so that the
//! probe never shares, and its deletion never kills, the live gateway's cgroup. Everything else
//! (user namespace and id range, mounts, capabilities, seccomp, masked paths, limits) is the
//! tenant's own. The copy runs under the OCI runtime reeved uses, with the same global flags,
//! in a state root of its own; its loopback is brought up as reeved does for a gateway.
//!
//! The probe binary (`--probe PATH`, default `reeve-probe` next to reeved) is copied into the
//! tenant's data dir (`/data/.reeve-audit-<id>`, root-owned, mode 0555) for the run, since the
//! rest of the sandbox is read-only, and removed afterwards; the copy is compared with the
//! original after the run, so a tenant that swaps it during the audit is reported, not trusted.
//! As context the probe gets targets that must stay out of reach: a peer sandbox (a copy of
//! another live tenant's bundle, or of the audited one when it is alone, running
//! `reeve-probe --peer-serve`: SysV shm/msg/sem, a POSIX mqueue, /dev/shm, an abstract socket and
//! a TCP port), a decoy secret file and a Unix socket under the state dir, an abstract socket
//! and TCP ports of reeved on the host, the reeved process itself as a foreign process, and the
//! host's root device and interfaces. Checks that need a setuid or file-capabilities copy of the
//! probe on the root file system are reported as skipped (the root is the operator's).
//!
//! Plain data (the copied spec, the probe's arguments, its verdicts, the table) is unit-tested;
//! [`run`] is the thin layer that touches the host.

use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::backend::{BackendError, Oci};
use crate::bundle;
use crate::config::Config;
use crate::name::TenantName;
use crate::supervisor::{Ctx, SupError};

/// How long the probe may run before the audit gives up.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(300);
/// The probe's name next to reeved.
pub const PROBE_NAME: &str = "reeve-probe";

/// Errors of an audit.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "tenant {name}: no bundle at {path} ({source}): reeved writes it when it starts the \
         gateway; is the tenant running?"
    )]
    NoBundle {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tenant bundle {path}: {reason}")]
    BadBundle { path: PathBuf, reason: String },
    #[error("the probe {path}: {source} (build it with tests/probe/build.sh, or give --probe)")]
    NoProbe {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sup(#[from] SupError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("the probe did not finish within {secs} s")]
    Timeout { secs: u64 },
    #[error("the probe copy {path} changed during the audit: its verdicts are not trusted")]
    Tampered { path: PathBuf },
    #[error("the probe printed no verdict; its output:\n{output}")]
    NoVerdicts { output: String },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AuditError + 'a {
    move |source| AuditError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One verdict of the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub check: String,
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    pub reason: String,
}

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub tenant: String,
    pub runtime: String,
    pub container_id: String,
    pub verdicts: Vec<Verdict>,
    pub blocked: usize,
    pub escaped: usize,
    pub error: usize,
    pub skipped: usize,
}

impl Report {
    pub fn new(tenant: &str, runtime: &str, container_id: &str, verdicts: Vec<Verdict>) -> Report {
        let n = |k: &str| verdicts.iter().filter(|v| v.verdict == k).count();
        Report {
            tenant: tenant.to_string(),
            runtime: runtime.to_string(),
            container_id: container_id.to_string(),
            blocked: n("blocked"),
            escaped: n("escaped"),
            error: n("error"),
            skipped: n("skipped"),
            verdicts,
        }
    }

    /// The verdict table for people, escapes first.
    pub fn table(&self) -> String {
        let mut rows: Vec<&Verdict> = self.verdicts.iter().collect();
        let rank = |v: &str| match v {
            "escaped" => 0,
            "error" => 1,
            "skipped" => 3,
            _ => 2,
        };
        rows.sort_by_key(|v| rank(&v.verdict));
        let w = rows.iter().map(|v| v.check.len()).max().unwrap_or(5).max(5);
        let mut s = format!(
            "audit of tenant {} under {} ({})\n{:<8} {:<w$} {:<13} REASON\n",
            self.tenant, self.runtime, self.container_id, "VERDICT", "CHECK", "ERRNO"
        );
        for v in rows {
            s += &format!(
                "{:<8} {:<w$} {:<13} {}\n",
                v.verdict,
                v.check,
                v.errno.as_deref().unwrap_or("-"),
                v.reason
            );
        }
        s += &format!(
            "{} checks: {} blocked, {} escaped, {} error, {} skipped: {}\n",
            self.verdicts.len(),
            self.blocked,
            self.escaped,
            self.error,
            self.skipped,
            if self.escaped == 0 {
                "nothing escaped"
            } else {
                "THE SANDBOX LET ATTEMPTS THROUGH"
            }
        );
        s
    }
}

/// The probe's verdict lines among everything in its log (the runtime may write there too).
pub fn parse_verdicts(output: &str) -> Vec<Verdict> {
    output
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("check").is_some())
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

/// What the probe is told to attack, as the sandbox sees it or as host facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// The probe inside the sandbox.
    pub probe: String,
    /// A decoy secret on the host, and the text it holds.
    pub decoy_file: PathBuf,
    pub canary: String,
    /// A host process outside the sandbox (reeved itself).
    pub foreign_pid: i32,
    pub host_port: u16,
    pub host_addr: Option<String>,
    pub host_abstract: String,
    pub host_unix: PathBuf,
    pub host_root_dev: (u32, u32),
    pub host_iface: Option<String>,
    /// The peer sandbox serving IPC objects, an abstract socket and a TCP port.
    pub peer: Option<Peer>,
}

/// A second sandbox, a copy of another tenant's bundle (or of the audited one when it is
/// alone) running `reeve-probe --peer-serve`: the other tenant whose IPC objects, sockets,
/// service and process the probe tries to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The probe inside the peer's sandbox.
    pub probe: String,
    pub marker: String,
    pub key: String,
    pub port: u16,
}

/// The peer's command line.
pub fn peer_args(p: &Peer, canary: &str) -> Vec<String> {
    [
        p.probe.as_str(),
        "--peer-serve",
        "--marker",
        &p.marker,
        "--peer-key",
        &p.key,
        "--listen",
        &p.port.to_string(),
        "--peer-canary",
        canary,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The probe's command line for `t`.
pub fn probe_args(t: &Targets) -> Vec<String> {
    let mut a: Vec<String> = vec![t.probe.clone(), "--json".into()];
    let mut kv = |k: &str, v: String| {
        a.push(k.to_string());
        a.push(v);
    };
    kv("--runtime-dir", bundle::GATEWAY.into());
    kv("--layer1-dir", bundle::LAYER1.into());
    kv("--data-dir", bundle::DATA.into());
    kv("--peer-file", t.decoy_file.to_string_lossy().into_owned());
    // The decoy as the foreign process (reeved, in the host's root) would see it.
    kv("--peer-inner", t.decoy_file.to_string_lossy().into_owned());
    kv("--peer-canary", t.canary.clone());
    kv("--peer-pid", t.foreign_pid.to_string());
    kv("--host-port", format!("127.0.0.1:{}", t.host_port));
    if let Some(addr) = &t.host_addr {
        kv("--host-addr", format!("{addr}:{}", t.host_port));
    }
    kv("--host-abstract", t.host_abstract.clone());
    kv("--host-unix", t.host_unix.to_string_lossy().into_owned());
    kv(
        "--host-root-dev",
        format!("{}:{}", t.host_root_dev.0, t.host_root_dev.1),
    );
    if let Some(i) = &t.host_iface {
        kv("--host-iface", i.clone());
    }
    if let Some(p) = &t.peer {
        kv("--peer-marker", p.marker.clone());
        kv("--peer-key", p.key.clone());
        kv("--peer-addr", format!("127.0.0.1:{}", p.port));
    }
    a
}

/// The bundle the peer copies: another tenant's (the first by name), else the audited one's.
pub fn peer_tenant<'a>(audited: &'a str, live: &'a [String]) -> &'a str {
    live.iter()
        .map(String::as_str)
        .find(|t| *t != audited)
        .unwrap_or(audited)
}

/// The audit copy of a live tenant's spec: the probe as the process, and a cgroup of its own
/// next to the tenant's (same limits). Everything else stays as reeved wrote it.
pub fn audit_spec(live: &Value, args: &[String], suffix: &str) -> Result<Value, String> {
    let mut s = live.clone();
    let process = s
        .get_mut("process")
        .and_then(Value::as_object_mut)
        .ok_or("it has no process")?;
    process.insert("args".into(), json!(args));
    process.insert("terminal".into(), json!(false));
    if let Some(linux) = s.get_mut("linux").and_then(Value::as_object_mut) {
        if let Some(p) = linux.get("cgroupsPath").and_then(Value::as_str) {
            let p = format!("{}-audit-{suffix}", p.trim_end_matches('/'));
            linux.insert("cgroupsPath".into(), json!(p));
        }
    }
    Ok(s)
}

/// The host directory bound at `/data` in `spec`.
pub fn data_source(spec: &Value) -> Option<PathBuf> {
    spec["mounts"]
        .as_array()?
        .iter()
        .find(|m| m["destination"] == bundle::DATA)
        .and_then(|m| m["source"].as_str())
        .map(PathBuf::from)
}

/// The first IPv4 address of the host outside loopback with its interface, else the first
/// interface other than lo (names from /sys/class/net), from getifaddrs(3).
fn host_address() -> (Option<String>, Option<String>) {
    let mut found: (Option<String>, Option<String>) = (None, None);
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return found;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        if name == "lo" {
            continue;
        }
        if found.1.is_none() {
            found.1 = Some(name.clone());
        }
        // SAFETY: ifa_addr, when not null, points to a sockaddr of the family it names; an
        // AF_INET one is a sockaddr_in.
        let v4 = unsafe {
            (!ifa.ifa_addr.is_null() && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET)
                .then(|| (*ifa.ifa_addr.cast::<libc::sockaddr_in>()).sin_addr.s_addr)
        };
        if let Some(a) = v4 {
            found = (
                Some(std::net::Ipv4Addr::from(u32::from_be(a)).to_string()),
                Some(name),
            );
            break;
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    found
}

/// Removes the audit's containers and files whatever happens.
struct Cleanup<'a> {
    oci: &'a Oci,
    ids: Vec<String>,
    paths: Vec<PathBuf>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for id in self.ids.iter().rev() {
            if let Err(e) = self.oci.delete_force(id) {
                tracing::warn!("audit: delete {id}: {e}");
            }
        }
        for p in &self.paths {
            let r = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            if let Err(e) = r {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("audit: remove {}: {e}", p.display());
                }
            }
        }
    }
}

/// The live bundle of `name` and the host directory bound at its `/data`.
fn read_bundle(state_dir: &Path, name: &TenantName) -> Result<(Value, PathBuf), AuditError> {
    let path = bundle::bundle_dir(state_dir, name).join("config.json");
    let text = std::fs::read(&path).map_err(|source| AuditError::NoBundle {
        name: name.to_string(),
        path: path.clone(),
        source,
    })?;
    let live: Value = serde_json::from_slice(&text).map_err(|e| AuditError::BadBundle {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let data = data_source(&live).ok_or_else(|| AuditError::BadBundle {
        path,
        reason: format!("no bind mount at {}", bundle::DATA),
    })?;
    Ok((live, data))
}

/// Tenants with a live bundle, sorted.
fn live_tenants(state_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(state_dir.join("bundles"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("config.json").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Write `spec` as `<dir>/config.json`.
fn write_bundle(dir: &Path, spec: &Value) -> Result<(), AuditError> {
    std::fs::create_dir(dir).map_err(io("mkdir", dir))?;
    let config = dir.join("config.json");
    let text = serde_json::to_vec_pretty(spec).map_err(|e| AuditError::Io {
        op: "serialize",
        path: config.clone(),
        source: e.into(),
    })?;
    std::fs::write(&config, text).map_err(io("write", &config))
}

/// Copy the probe into a tenant's data dir, root-owned and read-only.
fn install_probe(bytes: &[u8], path: &Path) -> Result<(), AuditError> {
    std::fs::write(path, bytes).map_err(io("copy the probe to", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555))
        .map_err(io("chmod", path))
}

/// create (stdout and stderr into `out`), loopback up as reeved does for a gateway, start.
fn launch(oci: &Oci, id: &str, bundle_dir: &Path, out: &Path) -> Result<i32, AuditError> {
    let f = std::fs::File::create(out).map_err(io("create", out))?;
    let pid_file = bundle_dir.join("pid");
    let pid = oci.create(id, bundle_dir, &pid_file, &f)?;
    crate::netns::run_helper(&["netns-lo-up".into(), pid.to_string()])?;
    oci.start(id)?;
    Ok(pid)
}

/// Audit tenant `name` of the reeved configured by `cfg` with the probe at `probe`.
pub fn run(cfg: Config, name: &TenantName, probe: &Path) -> Result<Report, AuditError> {
    let probe_bytes = std::fs::read(probe).map_err(|source| AuditError::NoProbe {
        path: probe.to_path_buf(),
        source,
    })?;
    let ctx = Ctx::new(cfg, false)?;
    let state_dir = ctx.paths.state_dir.clone();
    let (live, data) = read_bundle(&state_dir, name)?;
    let tenants = live_tenants(&state_dir);
    let peer_name = TenantName::parse(peer_tenant(name.as_str(), &tenants))
        .map_err(|e| AuditError::Sup(e.into()))?;
    let (peer_live, peer_data) = read_bundle(&state_dir, &peer_name)?;

    let me = std::process::id();
    let id = format!("{}-audit-{me}", name.container_id());
    let peer_id = format!("{}-auditpeer-{me}", peer_name.container_id());
    let work = state_dir.join("audit").join(&id);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&work)
        .map_err(io("mkdir", &work))?;
    let oci = Oci {
        binary: ctx.oci.binary.clone(),
        root: work.join("oci"),
        global: ctx.oci.global.clone(),
    };
    let probe_name = format!(".reeve-audit-{id}");
    let probe_host = data.join(&probe_name);
    let peer_probe_host = peer_data.join(format!(".reeve-audit-{peer_id}"));
    let mut cleanup = Cleanup {
        oci: &oci,
        ids: Vec::new(),
        paths: vec![probe_host.clone(), peer_probe_host.clone(), work.clone()],
    };

    // Targets on the host.
    let decoy_dir = work.join("decoy");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&decoy_dir)
        .map_err(io("mkdir", &decoy_dir))?;
    let canary = format!("REEVE-AUDIT-CANARY-{me}");
    let decoy_file = decoy_dir.join("secret");
    std::fs::write(&decoy_file, format!("{canary}\n")).map_err(io("write", &decoy_file))?;
    let tcp = std::net::TcpListener::bind("0.0.0.0:0").map_err(io("listen", &work))?;
    let host_port = tcp.local_addr().map_err(io("listen", &work))?.port();
    let host_abstract = format!("reeve-audit-{me}");
    let abs_addr = std::os::unix::net::SocketAddr::from_abstract_name(host_abstract.as_bytes())
        .map_err(io("abstract socket", &work))?;
    let _abs = std::os::unix::net::UnixListener::bind_addr(&abs_addr)
        .map_err(io("abstract socket", &work))?;
    let host_unix = work.join("host.sock");
    let _unix =
        std::os::unix::net::UnixListener::bind(&host_unix).map_err(io("bind", &host_unix))?;
    let root_dev = std::fs::metadata("/")
        .map_err(io("stat", Path::new("/")))?
        .dev();
    let (host_addr, host_iface) = host_address();
    let peer = Peer {
        probe: format!("{}/.reeve-audit-{peer_id}", bundle::DATA),
        marker: format!("reeve-audit-peer-{me}"),
        key: format!("0x{:08x}", 0x5241_0000u32 | (me & 0xffff)),
        port: 20_000 + (me % 20_000) as u16,
    };

    // The peer: a copy of the other tenant's sandbox serving its IPC objects and sockets.
    install_probe(&probe_bytes, &peer_probe_host)?;
    let peer_spec = audit_spec(
        &peer_live,
        &peer_args(&peer, &canary),
        &format!("peer-{me}"),
    )
    .map_err(|reason| AuditError::BadBundle {
        path: bundle::bundle_dir(&state_dir, &peer_name),
        reason,
    })?;
    let peer_bundle = work.join("peer");
    write_bundle(&peer_bundle, &peer_spec)?;
    let peer_out = work.join("peer.out");
    cleanup.ids.push(peer_id.clone());
    launch(&oci, &peer_id, &peer_bundle, &peer_out)?;
    let ready = Instant::now();
    while !std::fs::read_to_string(&peer_out)
        .unwrap_or_default()
        .contains("peer: ")
    {
        if ready.elapsed() > Duration::from_secs(30) {
            return Err(AuditError::Timeout { secs: 30 });
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let targets = Targets {
        probe: format!("{}/{probe_name}", bundle::DATA),
        decoy_file,
        canary,
        foreign_pid: me as i32,
        host_port,
        host_addr,
        host_abstract,
        host_unix,
        host_root_dev: (libc::major(root_dev), libc::minor(root_dev)),
        host_iface,
        peer: Some(peer),
    };
    install_probe(&probe_bytes, &probe_host)?;
    let spec = audit_spec(&live, &probe_args(&targets), &me.to_string()).map_err(|reason| {
        AuditError::BadBundle {
            path: bundle::bundle_dir(&state_dir, name),
            reason,
        }
    })?;
    let bundle_dir = work.join("bundle");
    write_bundle(&bundle_dir, &spec)?;
    let out_path = work.join("probe.out");
    cleanup.ids.push(id.clone());
    launch(&oci, &id, &bundle_dir, &out_path)?;
    let started = Instant::now();
    loop {
        match oci.state(&id)? {
            Some(st) if st.status != "stopped" => {}
            _ => break,
        }
        if started.elapsed() > PROBE_TIMEOUT {
            return Err(AuditError::Timeout {
                secs: PROBE_TIMEOUT.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = std::fs::read_to_string(&out_path).map_err(io("read", &out_path))?;
    let after = std::fs::read(&probe_host).map_err(io("read", &probe_host))?;
    if after != probe_bytes {
        return Err(AuditError::Tampered { path: probe_host });
    }
    let verdicts = parse_verdicts(&output);
    if verdicts.is_empty() {
        return Err(AuditError::NoVerdicts { output });
    }
    drop(tcp);
    Ok(Report::new(
        name.as_str(),
        &oci.binary.to_string_lossy(),
        &id,
        verdicts,
    ))
}

/// The probe next to the running reeved.
pub fn default_probe() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join(PROBE_NAME)))
        .unwrap_or_else(|| PathBuf::from(PROBE_NAME))
}

/// `reeved audit`: print the table (or JSON) and return the exit code: 0 when nothing escaped,
/// 1 when something did, 2 when the audit could not run.
pub fn main(config: &Path, name: &str, probe: Option<PathBuf>, json_out: bool) -> u8 {
    let result = (|| -> Result<Report, String> {
        let name = TenantName::parse(name).map_err(|e| e.to_string())?;
        let cfg = Config::load(config).map_err(|e| e.to_string())?;
        let probe = probe.unwrap_or_else(default_probe);
        run(cfg, &name, &probe).map_err(|e| e.to_string())
    })();
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(r) => {
            let text = if json_out {
                serde_json::to_string_pretty(&r).unwrap_or_default() + "\n"
            } else {
                r.table()
            };
            let _ = stdout.write_all(text.as_bytes());
            u8::from(r.escaped > 0)
        }
        Err(e) => {
            eprintln!("reeved audit: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            probe: "/data/.reeve-audit-x".into(),
            decoy_file: "/run/reeve/audit/x/decoy/secret".into(),
            canary: "C".into(),
            foreign_pid: 42,
            host_port: 4000,
            host_addr: None,
            host_abstract: "reeve-audit-42".into(),
            host_unix: "/run/reeve/audit/x/host.sock".into(),
            host_root_dev: (254, 1),
            host_iface: Some("eth0".into()),
            peer: Some(Peer {
                probe: "/data/.reeve-audit-p".into(),
                marker: "m".into(),
                key: "0x52410001".into(),
                port: 20001,
            }),
        }
    }

    fn live() -> Value {
        json!({
            "process": {"args": ["/opt/gateway/bin/gw"], "terminal": false, "cwd": "/data",
                        "noNewPrivileges": true},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/data", "type": "bind", "source": "/data/tenants/acme",
                        "options": ["rbind", "rw", "nosuid", "nodev"]}],
            "linux": {"cgroupsPath": "/reeved/tenants/acme",
                      "uidMappings": [{"containerID": 0, "hostID": 331072, "size": 65536}],
                      "resources": {"memory": {"limit": 1024}}},
            "hostname": "acme"
        })
    }

    #[test]
    fn the_copy_differs_only_in_args_and_cgroup() {
        let args = probe_args(&targets());
        let s = audit_spec(&live(), &args, "77").unwrap();
        assert_eq!(s["process"]["args"][0], "/data/.reeve-audit-x");
        assert_eq!(s["linux"]["cgroupsPath"], "/reeved/tenants/acme-audit-77");
        let mut back = s.clone();
        back["process"]["args"] = json!(["/opt/gateway/bin/gw"]);
        back["linux"]["cgroupsPath"] = json!("/reeved/tenants/acme");
        assert_eq!(back, live(), "nothing else changed");
        // Without a cgroup (no-limits mode) none is added.
        let mut nocg = live();
        nocg["linux"].as_object_mut().unwrap().remove("cgroupsPath");
        let s = audit_spec(&nocg, &args, "77").unwrap();
        assert!(s["linux"].get("cgroupsPath").is_none());
        // The systemd driver's slice:prefix:name: the copy is the sibling scope
        // reeve-acme-audit-77.scope in the same slice.
        let mut sd = live();
        sd["linux"]["cgroupsPath"] = json!("reeve.slice:reeve:acme");
        let s = audit_spec(&sd, &["/probe".into()], "77").unwrap();
        assert_eq!(s["linux"]["cgroupsPath"], "reeve.slice:reeve:acme-audit-77");
        assert!(audit_spec(&json!({}), &args, "1").is_err());
        assert_eq!(
            data_source(&live()),
            Some(PathBuf::from("/data/tenants/acme"))
        );
    }

    #[test]
    fn probe_arguments_name_every_target() {
        let a = probe_args(&targets());
        let get = |k: &str| {
            a.iter()
                .position(|x| x == k)
                .map(|i| a[i + 1].as_str())
                .unwrap_or_else(|| panic!("{k} missing from {a:?}"))
        };
        assert_eq!(a[1], "--json");
        assert_eq!(get("--data-dir"), "/data");
        assert_eq!(get("--runtime-dir"), "/opt/gateway");
        assert_eq!(get("--layer1-dir"), "/etc/reeve/layer1");
        assert_eq!(get("--peer-pid"), "42");
        assert_eq!(get("--host-port"), "127.0.0.1:4000");
        assert_eq!(get("--host-root-dev"), "254:1");
        assert_eq!(get("--host-iface"), "eth0");
        assert_eq!(get("--peer-key"), "0x52410001");
        assert_eq!(get("--peer-addr"), "127.0.0.1:20001");
        assert!(!a.contains(&"--host-addr".to_string()));
        let p = peer_args(targets().peer.as_ref().unwrap(), "C");
        assert_eq!(p[0], "/data/.reeve-audit-p");
        assert!(p.windows(2).any(|w| w[0] == "--marker" && w[1] == "m"));
        assert!(p.windows(2).any(|w| w[0] == "--listen" && w[1] == "20001"));
        let live = ["acme".to_string(), "beta".to_string()];
        assert_eq!(peer_tenant("acme", &live), "beta");
        assert_eq!(peer_tenant("beta", &live), "acme");
        assert_eq!(peer_tenant("solo", &["solo".to_string()]), "solo");
        let mut t = targets();
        t.host_addr = Some("10.0.0.5".into());
        let a = probe_args(&t);
        assert!(a.contains(&"10.0.0.5:4000".to_string()));
    }

    #[test]
    fn verdicts_parse_among_runtime_noise_and_count() {
        let out = "reevec: warning: something\n\
            {\"check\":\"a.x\",\"verdict\":\"blocked\",\"errno\":\"EPERM\",\"reason\":\"r1\",\"attempt\":\"t\"}\n\
            {\"check\":\"b.y\",\"verdict\":\"escaped\",\"reason\":\"r2\"}\n\
            {\"check\":\"c.z\",\"verdict\":\"skipped\",\"reason\":\"no context\"}\n\
            {\"summary\":{\"blocked\":1,\"escaped\":1}}\n{broken\n";
        let v = parse_verdicts(out);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].errno.as_deref(), Some("EPERM"));
        let r = Report::new("acme", "reevec", "reeve-acme-audit-1", v);
        assert_eq!((r.blocked, r.escaped, r.error, r.skipped), (1, 1, 0, 1));
        let t = r.table();
        let first_row = t.lines().nth(2).unwrap();
        assert!(first_row.starts_with("escaped"), "escapes first:\n{t}");
        assert!(t.contains("THE SANDBOX LET ATTEMPTS THROUGH"), "{t}");
        let ok = Report::new("acme", "reevec", "x", parse_verdicts(out).split_off(2));
        assert!(ok.table().contains("nothing escaped"));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["escaped"], 1);
        assert_eq!(j["verdicts"][1]["check"], "b.y");
    }
}
