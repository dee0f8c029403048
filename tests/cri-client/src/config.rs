//! Config files in (crictl's JSON layout) and JSON views of the server's answers out.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::api::{self, enum_str, CONTAINER_STATES, NAMESPACE_MODES, SANDBOX_STATES};
use crate::error::Error;

pub fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|source| Error::Parse {
        path: path.to_path_buf(),
        source,
    })
}

pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// A pod config must name the pod; containerd rejects it otherwise, with a less helpful message.
pub fn check_pod(c: &api::PodSandboxConfig, path: &Path) -> Result<(), Error> {
    match &c.metadata {
        Some(m) if !m.name.is_empty() => Ok(()),
        _ => Err(Error::Usage(format!(
            "{}: metadata.name is required",
            path.display()
        ))),
    }
}

pub fn check_container(c: &api::ContainerConfig, path: &Path) -> Result<(), Error> {
    if !matches!(&c.metadata, Some(m) if !m.name.is_empty()) {
        return Err(Error::Usage(format!(
            "{}: metadata.name is required",
            path.display()
        )));
    }
    if !matches!(&c.image, Some(i) if !i.image.is_empty()) {
        return Err(Error::Usage(format!(
            "{}: image.image is required",
            path.display()
        )));
    }
    Ok(())
}

/// The `info` map of a verbose status: each value is JSON text; keep it as JSON when it parses.
fn info_json(info: &HashMap<String, String>) -> Map<String, Value> {
    info.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone())),
            )
        })
        .collect()
}

/// containerd's verbose info carries the task pid at `info.pid`; 0 when there is none.
fn info_pid(info: &Map<String, Value>) -> i64 {
    info.get("info")
        .and_then(|i| i.get("pid"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn ns_options(o: &Option<api::NamespaceOption>) -> Value {
    match o {
        Some(o) => json!({
            "network": enum_str(NAMESPACE_MODES, o.network),
            "pid": enum_str(NAMESPACE_MODES, o.pid),
            "ipc": enum_str(NAMESPACE_MODES, o.ipc),
            "target_id": o.target_id,
        }),
        None => Value::Null,
    }
}

pub fn container_status(resp: &api::ContainerStatusResponse) -> Value {
    let info = info_json(&resp.info);
    let pid = info_pid(&info);
    let Some(s) = &resp.status else {
        return json!({ "status": null, "pid": pid, "info": info });
    };
    let memory = s
        .resources
        .as_ref()
        .and_then(|r| r.linux.as_ref())
        .map_or(0, |l| l.memory_limit_in_bytes);
    json!({
        "id": s.id,
        "name": s.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or(""),
        "attempt": s.metadata.as_ref().map_or(0, |m| m.attempt),
        "state": enum_str(CONTAINER_STATES, s.state),
        "created_at": s.created_at,
        "started_at": s.started_at,
        "finished_at": s.finished_at,
        "exit_code": s.exit_code,
        "reason": s.reason,
        "message": s.message,
        "image": s.image.as_ref().map(|i| i.image.as_str()).unwrap_or(""),
        "image_ref": s.image_ref,
        "log_path": s.log_path,
        "labels": s.labels,
        "memory_limit_in_bytes": memory,
        "pid": pid,
        "info": info,
    })
}

pub fn sandbox_status(resp: &api::PodSandboxStatusResponse) -> Value {
    let info = info_json(&resp.info);
    let pid = info_pid(&info);
    let Some(s) = &resp.status else {
        return json!({ "status": null, "pid": pid, "info": info });
    };
    let md = s.metadata.clone().unwrap_or_default();
    json!({
        "id": s.id,
        "name": md.name,
        "namespace": md.namespace,
        "uid": md.uid,
        "attempt": md.attempt,
        "state": enum_str(SANDBOX_STATES, s.state),
        "created_at": s.created_at,
        "ip": s.network.as_ref().map(|n| n.ip.as_str()).unwrap_or(""),
        "namespace_options": ns_options(&s.linux.as_ref().and_then(|l| l.namespaces.as_ref()).and_then(|n| n.options.clone())),
        "runtime_handler": s.runtime_handler,
        "labels": s.labels,
        "pid": pid,
        "info": info,
    })
}

pub fn container(c: &api::Container) -> Value {
    json!({
        "id": c.id,
        "pod_sandbox_id": c.pod_sandbox_id,
        "name": c.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or(""),
        "attempt": c.metadata.as_ref().map_or(0, |m| m.attempt),
        "image": c.image.as_ref().map(|i| i.image.as_str()).unwrap_or(""),
        "image_ref": c.image_ref,
        "state": enum_str(CONTAINER_STATES, c.state),
        "created_at": c.created_at,
        "labels": c.labels,
    })
}

pub fn sandbox(p: &api::PodSandbox) -> Value {
    let md = p.metadata.clone().unwrap_or_default();
    json!({
        "id": p.id,
        "name": md.name,
        "namespace": md.namespace,
        "uid": md.uid,
        "attempt": md.attempt,
        "state": enum_str(SANDBOX_STATES, p.state),
        "created_at": p.created_at,
        "runtime_handler": p.runtime_handler,
        "labels": p.labels,
    })
}

pub fn image(i: &api::Image) -> Value {
    json!({
        "id": i.id,
        "repo_tags": i.repo_tags,
        "repo_digests": i.repo_digests,
        "size": i.size,
        "pinned": i.pinned,
    })
}

/// `key` (a top-level field) or `/a/b` (a JSON pointer) of a view.
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    if key.starts_with('/') {
        v.pointer(key)
    } else {
        v.get(key)
    }
}

/// Parses a state filter for `ps --state` (`running`, `CONTAINER_EXITED`, ...).
pub fn container_state(s: &str) -> Result<i32, Error> {
    let up = s.to_ascii_uppercase();
    CONTAINER_STATES
        .iter()
        .position(|n| *n == up || n.strip_prefix("CONTAINER_") == Some(up.as_str()))
        .and_then(|i| i32::try_from(i).ok())
        .ok_or_else(|| {
            Error::Usage(format!(
                "unknown container state {s:?}: created, running, exited or unknown"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = r#"{
        "metadata": {"name": "p1", "namespace": "default", "uid": "u-1", "attempt": 1},
        "hostname": "p1",
        "log_directory": "/var/log/pods/p1",
        "dns_config": {"servers": ["127.0.0.1"]},
        "labels": {"app": "x"},
        "linux": {
            "cgroup_parent": "/reeve-cri",
            "security_context": {
                "namespace_options": {"network": "POD", "pid": 1, "ipc": "pod"},
                "run_as_user": {"value": 0}
            }
        },
        "some_future_field": true
    }"#;

    const CONTAINER: &str = r#"{
        "metadata": {"name": "a"},
        "image": {"image": "docker.io/library/busybox:latest"},
        "command": ["/bin/sh", "-c"],
        "args": ["sleep 1000"],
        "envs": [{"key": "A", "value": "1"}],
        "log_path": "a.log",
        "linux": {
            "resources": {"memory_limit_in_bytes": 67108864, "cpu_shares": 512},
            "security_context": {"namespace_options": {"pid": "CONTAINER"}, "no_new_privs": true,
                                 "capabilities": {"drop_capabilities": ["NET_RAW"]}}
        }
    }"#;

    #[test]
    fn pod_config_maps_to_message() {
        let p = Path::new("pod.json");
        let c: api::PodSandboxConfig = parse(POD, p).expect("parse");
        check_pod(&c, p).expect("valid");
        let md = c.metadata.as_ref().expect("metadata");
        assert_eq!(
            (
                md.name.as_str(),
                md.namespace.as_str(),
                md.uid.as_str(),
                md.attempt
            ),
            ("p1", "default", "u-1", 1)
        );
        assert_eq!(c.log_directory, "/var/log/pods/p1");
        assert_eq!(
            c.dns_config.as_ref().map(|d| d.servers.clone()),
            Some(vec!["127.0.0.1".to_string()])
        );
        let linux = c.linux.as_ref().expect("linux");
        assert_eq!(linux.cgroup_parent, "/reeve-cri");
        let ns = linux
            .security_context
            .as_ref()
            .and_then(|s| s.namespace_options.clone())
            .expect("namespace options");
        assert_eq!((ns.network, ns.pid, ns.ipc), (0, 1, 0));
    }

    #[test]
    fn container_config_maps_to_message() {
        let p = Path::new("c.json");
        let c: api::ContainerConfig = parse(CONTAINER, p).expect("parse");
        check_container(&c, p).expect("valid");
        assert_eq!(c.command, ["/bin/sh", "-c"]);
        assert_eq!(c.args, ["sleep 1000"]);
        assert_eq!(c.envs[0].key, "A");
        let linux = c.linux.as_ref().expect("linux");
        let r = linux.resources.as_ref().expect("resources");
        assert_eq!((r.memory_limit_in_bytes, r.cpu_shares), (64 << 20, 512));
        let sc = linux.security_context.as_ref().expect("security context");
        assert!(sc.no_new_privs);
        assert_eq!(sc.namespace_options.as_ref().map(|n| n.pid), Some(1));
        assert_eq!(
            sc.capabilities
                .as_ref()
                .map(|c| c.drop_capabilities.clone()),
            Some(vec!["NET_RAW".into()])
        );
    }

    #[test]
    fn bad_configs_are_errors_not_panics() {
        let p = Path::new("x.json");
        let e = parse::<api::PodSandboxConfig>(
            r#"{"linux": {"security_context": {"namespace_options": {"pid": "SIDEWAYS"}}}}"#,
            p,
        );
        assert!(matches!(e, Err(Error::Parse { .. })));
        let e = parse::<api::ContainerConfig>("{", p);
        assert!(matches!(e, Err(Error::Parse { .. })));
        let c: api::ContainerConfig = parse(r#"{"metadata": {"name": "a"}}"#, p).expect("parse");
        assert!(matches!(check_container(&c, p), Err(Error::Usage(_))));
        let c: api::PodSandboxConfig = parse("{}", p).expect("parse");
        assert!(matches!(check_pod(&c, p), Err(Error::Usage(_))));
    }

    #[test]
    fn container_status_view_has_state_exit_code_and_pid() {
        let resp = api::ContainerStatusResponse {
            status: Some(api::ContainerStatus {
                id: "c1".into(),
                state: 2,
                exit_code: 3,
                metadata: Some(api::ContainerMetadata {
                    name: "a".into(),
                    attempt: 0,
                }),
                ..Default::default()
            }),
            info: [(
                "info".to_string(),
                r#"{"pid": 42, "sandboxID": "s"}"#.to_string(),
            )]
            .into(),
        };
        let v = container_status(&resp);
        assert_eq!(v["state"], "CONTAINER_EXITED");
        assert_eq!(v["exit_code"], 3);
        assert_eq!(v["pid"], 42);
        assert_eq!(v["name"], "a");
        assert_eq!(v["info"]["info"]["sandboxID"], "s");
        assert_eq!(
            field(&v, "state").and_then(Value::as_str),
            Some("CONTAINER_EXITED")
        );
        assert_eq!(
            field(&v, "/info/info/pid").and_then(Value::as_i64),
            Some(42)
        );
        assert!(field(&v, "nope").is_none());
    }

    #[test]
    fn sandbox_status_view() {
        let resp = api::PodSandboxStatusResponse {
            status: Some(api::PodSandboxStatus {
                id: "p".into(),
                state: 0,
                runtime_handler: "reeve".into(),
                ..Default::default()
            }),
            info: [("info".to_string(), "not json".to_string())].into(),
        };
        let v = sandbox_status(&resp);
        assert_eq!(v["state"], "SANDBOX_READY");
        assert_eq!(v["runtime_handler"], "reeve");
        assert_eq!(v["pid"], 0);
        assert_eq!(v["info"]["info"], "not json");
    }

    #[test]
    fn state_filter_names() {
        assert_eq!(container_state("running").ok(), Some(1));
        assert_eq!(container_state("CONTAINER_EXITED").ok(), Some(2));
        assert!(container_state("asleep").is_err());
    }
}
