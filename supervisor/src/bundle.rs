//! The OCI bundle of a tenant's gateway: `<state_dir>/bundles/<tenant>/config.json`.
//!
//! The spec is plain data built from reevec's default spec (every namespace, runc's masked and
//! read-only paths, three capabilities, no_new_privs, reeve's default seccomp profile) plus:
//! a new user namespace mapping container ids 0..size to the tenant's host range (setgroups is
//! denied by the runtime for such a namespace), the tenant's data at `/data` (read-write), the
//! gateway runtime at `/opt/gateway` and Layer 1 at `/etc/reeve/layer1` (both read-only), a
//! read-only root, a private `/tmp`, umask 077 for the gateway, and the limits in
//! `linux.resources`.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::config::Limits;
use crate::name::TenantName;
use crate::uids::IdRange;

/// Sandbox paths.
pub const DATA: &str = "/data";
pub const GATEWAY: &str = "/opt/gateway";
pub const LAYER1: &str = "/etc/reeve/layer1";
/// Directories every root must have (mount points on a read-only root).
pub const MOUNT_POINTS: &[&str] = &[
    "proc",
    "dev",
    "sys",
    "tmp",
    "data",
    "opt/gateway",
    "etc/reeve/layer1",
];
/// The gateway's umask: nothing it creates is readable by other uids.
pub const UMASK: u32 = 0o077;
/// CPU period of `cpu.max`.
pub const CPU_PERIOD: u64 = 100_000;
/// Annotation naming the tenant.
pub const TENANT_ANNOTATION: &str = "org.reeve.tenant";

/// Errors of writing a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("default spec: {0}")]
    DefaultSpec(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the sandbox's root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// This directory, used read-only.
    Dir(PathBuf),
    /// An empty skeleton directory with these host paths bind-mounted read-only at the same
    /// place.
    HostBinds {
        skeleton: PathBuf,
        binds: Vec<PathBuf>,
    },
}

impl Root {
    pub fn path(&self) -> &Path {
        match self {
            Root::Dir(p) => p,
            Root::HostBinds { skeleton, .. } => skeleton,
        }
    }
}

/// Everything the spec of one tenant depends on.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub tenant: TenantName,
    pub ids: IdRange,
    pub data_dir: PathBuf,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub gateway_dir: PathBuf,
    pub layer1_dir: PathBuf,
    pub root: Root,
    pub limits: Limits,
    /// Put `limits` in linux.resources (false in no-limits mode).
    pub apply_limits: bool,
    /// linux.cgroupsPath, when the runtime should use one: absolute below the cgroup2 root with
    /// the cgroupfs driver, `slice:prefix:name` with the systemd driver
    /// ([`crate::host::TenantCgroups::cgroups_path`]).
    pub cgroups_path: Option<String>,
}

fn bind(source: &Path, dest: &str, writable: bool) -> Value {
    json!({
        "destination": dest,
        "type": "bind",
        "source": source,
        "options": ["rbind", if writable { "rw" } else { "ro" }, "nosuid", "nodev"],
    })
}

/// The `linux.resources` limits of `l` (without devices).
pub fn resources(l: &Limits) -> serde_json::Map<String, Value> {
    let mut r = serde_json::Map::new();
    if let Some(m) = l.memory {
        r.insert("memory".into(), json!({ "limit": m.0 }));
    }
    if let Some(p) = l.pids {
        r.insert("pids".into(), json!({ "limit": p }));
    }
    if let Some(c) = l.cpu {
        let quota = (c * CPU_PERIOD as f64).round() as i64;
        r.insert(
            "cpu".into(),
            json!({ "quota": quota, "period": CPU_PERIOD }),
        );
    }
    r
}

/// The config.json of a tenant.
pub fn spec(i: &Inputs) -> Result<Value, BundleError> {
    let mut s = reeve_runtime::cli::spec::default_spec(false)
        .map_err(|e| BundleError::DefaultSpec(e.to_string()))?;
    let mut env = vec![
        "PATH=/opt/gateway/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            .to_string(),
        format!("REEVE_TENANT={}", i.tenant),
        format!("HOME={DATA}"),
        format!("REEVE_LAYER1={LAYER1}"),
    ];
    env.extend(i.env.iter().cloned());
    s["process"]["args"] = json!(i.command);
    s["process"]["env"] = json!(env);
    s["process"]["cwd"] = json!(DATA);
    // Files the gateway makes are private to its range: a hard link to one of them planted in
    // another tenant's directory (by anyone able to reach both) still meets "no access".
    s["process"]["user"]["umask"] = json!(UMASK);
    s["hostname"] = json!(i.tenant.as_str());
    s["root"] = json!({ "path": i.root.path(), "readonly": true });
    s["annotations"] = json!({ TENANT_ANNOTATION: i.tenant.as_str() });

    let mounts = s["mounts"]
        .as_array_mut()
        .ok_or_else(|| BundleError::DefaultSpec("mounts is not an array".into()))?;
    mounts.push(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=1777", "size=65536k"],
    }));
    if let Root::HostBinds { binds, .. } = &i.root {
        for b in binds {
            mounts.push(bind(b, &b.to_string_lossy(), false));
        }
    }
    mounts.push(bind(&i.gateway_dir, GATEWAY, false));
    mounts.push(bind(&i.layer1_dir, LAYER1, false));
    mounts.push(bind(&i.data_dir, DATA, true));

    let linux = &mut s["linux"];
    let ns = linux["namespaces"]
        .as_array_mut()
        .ok_or_else(|| BundleError::DefaultSpec("linux.namespaces is not an array".into()))?;
    if !ns.iter().any(|n| n["type"] == "user") {
        ns.push(json!({ "type": "user" }));
    }
    let map = json!([{ "containerID": 0, "hostID": i.ids.host_base, "size": i.ids.size }]);
    linux["uidMappings"] = map.clone();
    linux["gidMappings"] = map;
    if i.apply_limits {
        let res = linux["resources"]
            .as_object_mut()
            .ok_or_else(|| BundleError::DefaultSpec("linux.resources is not an object".into()))?;
        res.extend(resources(&i.limits));
        if let Some(p) = &i.cgroups_path {
            linux["cgroupsPath"] = json!(p);
        }
    }
    Ok(s)
}

/// The bundle directory of `tenant`.
pub fn bundle_dir(state_dir: &Path, tenant: &TenantName) -> PathBuf {
    state_dir.join("bundles").join(tenant.as_str())
}

fn mkdirs(p: &Path, mode: u32) -> Result<(), BundleError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .map_err(|source| BundleError::Io {
            op: "mkdir",
            path: p.to_path_buf(),
            source,
        })
}

/// Make sure the root has every mount point (the root is read-only inside the sandbox, so they
/// cannot be made there). For host binds, the skeleton gets a directory or an empty file per
/// bind, like its source.
pub fn prepare_root(root: &Root) -> Result<(), BundleError> {
    let base = root.path();
    mkdirs(base, 0o755)?;
    for m in MOUNT_POINTS {
        mkdirs(&base.join(m), 0o755)?;
    }
    if let Root::HostBinds { binds, .. } = root {
        for b in binds {
            let rel = b.strip_prefix("/").unwrap_or(b);
            let target = base.join(rel);
            let is_dir = std::fs::metadata(b)
                .map_err(|source| BundleError::Io {
                    op: "stat host bind",
                    path: b.clone(),
                    source,
                })?
                .is_dir();
            if is_dir {
                mkdirs(&target, 0o755)?;
            } else {
                if let Some(parent) = target.parent() {
                    mkdirs(parent, 0o755)?;
                }
                if !target.exists() {
                    std::fs::write(&target, b"").map_err(|source| BundleError::Io {
                        op: "create mount point",
                        path: target.clone(),
                        source,
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// Write `config.json` of `tenant` (atomically) and return the bundle directory.
pub fn write(state_dir: &Path, tenant: &TenantName, spec: &Value) -> Result<PathBuf, BundleError> {
    let dir = bundle_dir(state_dir, tenant);
    mkdirs(&dir, 0o711)?;
    let path = dir.join("config.json");
    let tmp = dir.join("config.json.tmp");
    let text = serde_json::to_vec_pretty(spec).map_err(|e| BundleError::Io {
        op: "serialize",
        path: path.clone(),
        source: e.into(),
    })?;
    std::fs::write(&tmp, text).map_err(|source| BundleError::Io {
        op: "write",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| BundleError::Io {
        op: "rename",
        path: path.clone(),
        source,
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Size;

    fn inputs() -> Inputs {
        Inputs {
            tenant: TenantName::parse("acme").unwrap(),
            ids: IdRange {
                index: 2,
                host_base: 331_072,
                size: 65_536,
            },
            data_dir: "/data/tenants/acme".into(),
            command: vec!["/opt/gateway/bin/gw".into(), "--port=8080".into()],
            env: vec!["NODE_ENV=production".into()],
            gateway_dir: "/opt/reeve/gateway".into(),
            layer1_dir: "/etc/reeve/layer1".into(),
            root: Root::HostBinds {
                skeleton: "/run/reeve/rootfs".into(),
                binds: vec!["/usr".into(), "/lib".into()],
            },
            limits: Limits {
                memory: Some(Size(512 << 20)),
                pids: Some(256),
                cpu: Some(1.5),
            },
            apply_limits: true,
            cgroups_path: Some("/system.slice/reeved.service/tenants/acme".into()),
        }
    }

    fn mount<'a>(s: &'a Value, dest: &str) -> Option<&'a Value> {
        s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
    }

    #[test]
    fn isolation_of_the_spec() {
        let s = spec(&inputs()).unwrap();
        // Parses as an OCI spec, and reevec can plan a sandbox from it.
        let oci: oci_spec::runtime::Spec = serde_json::from_value(s.clone()).unwrap();
        let plan = reeve_runtime::container::plan::SandboxPlan::build(
            "reeve-acme",
            Path::new("/run/reeve/bundles/acme"),
            &oci,
            false,
        )
        .unwrap();
        assert!(
            plan.deny_setgroups(),
            "setgroups denied in the tenant's user namespace"
        );
        assert!(plan.process.no_new_privileges);
        assert!(plan.seccomp.is_some());
        let ns: Vec<&str> = s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        for want in ["pid", "network", "ipc", "uts", "mount", "cgroup", "user"] {
            assert!(ns.contains(&want), "{want} missing from {ns:?}");
        }
        let map = json!([{"containerID": 0, "hostID": 331_072, "size": 65_536}]);
        assert_eq!(s["linux"]["uidMappings"], map);
        assert_eq!(s["linux"]["gidMappings"], map);
        assert_eq!(
            s["root"],
            json!({"path": "/run/reeve/rootfs", "readonly": true})
        );
        assert_eq!(s["process"]["noNewPrivileges"], true);
        assert_eq!(s["process"]["user"]["umask"], 0o077);
        assert_eq!(plan.process.umask, Some(0o077));
        assert_eq!(
            s["process"]["capabilities"]["bounding"],
            json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        );
        assert!(s["linux"]["seccomp"]["syscalls"].as_array().unwrap().len() > 10);
        assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(s["hostname"], "acme");
        assert_eq!(
            s["process"]["args"],
            json!(["/opt/gateway/bin/gw", "--port=8080"])
        );
        let env = s["process"]["env"].as_array().unwrap();
        assert!(env.contains(&json!("REEVE_TENANT=acme")));
        assert!(env.contains(&json!("NODE_ENV=production")));
    }

    #[test]
    fn mounts_only_the_tenants_own_data() {
        let s = spec(&inputs()).unwrap();
        let data = mount(&s, "/data").unwrap();
        assert_eq!(data["source"], "/data/tenants/acme");
        assert_eq!(data["options"], json!(["rbind", "rw", "nosuid", "nodev"]));
        for (dest, src) in [
            ("/opt/gateway", "/opt/reeve/gateway"),
            ("/etc/reeve/layer1", "/etc/reeve/layer1"),
            ("/usr", "/usr"),
            ("/lib", "/lib"),
        ] {
            let m = mount(&s, dest).unwrap_or_else(|| panic!("{dest}"));
            assert_eq!(m["source"], src);
            assert_eq!(m["options"][1], "ro", "{dest} read-only");
        }
        // No other mount comes from the host data root.
        let binds: Vec<&Value> = s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "bind")
            .collect();
        assert_eq!(binds.len(), 5);
        assert!(binds.iter().all(
            |m| !m["source"].as_str().unwrap().starts_with("/data/tenants/")
                || m["source"] == "/data/tenants/acme"
        ));
        assert_eq!(mount(&s, "/tmp").unwrap()["type"], "tmpfs");
    }

    #[test]
    fn limits_or_none() {
        let s = spec(&inputs()).unwrap();
        let r = &s["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 512u64 << 20);
        assert_eq!(r["pids"]["limit"], 256);
        assert_eq!(r["cpu"], json!({"quota": 150_000, "period": 100_000}));
        assert_eq!(r["devices"][0]["allow"], false);
        assert_eq!(
            s["linux"]["cgroupsPath"],
            "/system.slice/reeved.service/tenants/acme"
        );

        let mut i = inputs();
        i.apply_limits = false;
        let s = spec(&i).unwrap();
        let r = &s["linux"]["resources"];
        assert!(r.get("memory").is_none() && r.get("pids").is_none() && r.get("cpu").is_none());
        assert!(s["linux"].get("cgroupsPath").is_none());

        // The systemd driver's slice:prefix:name, with the same limits as resources.
        let mut i = inputs();
        i.cgroups_path = Some(
            crate::host::TenantCgroups::Systemd {
                slice: crate::host::TENANT_SLICE.into(),
            }
            .cgroups_path("acme"),
        );
        let s = spec(&i).unwrap();
        assert_eq!(s["linux"]["cgroupsPath"], "reeve.slice:reeve:acme");
        assert_eq!(s["linux"]["resources"]["memory"]["limit"], 512u64 << 20);
    }

    #[test]
    fn root_dir_variant_and_files_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let mut i = inputs();
        let rootfs = tmp.path().join("rootfs");
        i.root = Root::Dir(rootfs.clone());
        let s = spec(&i).unwrap();
        assert_eq!(s["root"]["path"], json!(rootfs));
        assert!(mount(&s, "/usr").is_none());
        prepare_root(&i.root).unwrap();
        for m in MOUNT_POINTS {
            assert!(rootfs.join(m).is_dir(), "{m}");
        }
        let skel = Root::HostBinds {
            skeleton: tmp.path().join("skel"),
            binds: vec!["/usr".into(), "/etc/hostname".into()],
        };
        prepare_root(&skel).unwrap();
        assert!(tmp.path().join("skel/usr").is_dir());
        assert!(tmp.path().join("skel/etc/hostname").is_file());
        let dir = write(tmp.path(), &i.tenant, &s).unwrap();
        let back: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
