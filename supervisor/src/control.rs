//! The control socket: `<state_dir>/reeved.sock`, mode 0600, root only (checked again with
//! SO_PEERCRED). One JSON request line per connection; answers are JSON lines:
//! `{"ok":true,"data":…}` or `{"ok":false,"error":"…"}`; `logs` sends `{"line":"…"}` lines
//! first (and keeps sending them with `follow`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::name::TenantName;
use crate::supervisor::Supervisor;

/// Errors of the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another reeved answers on {0}")]
    InUse(PathBuf),
    #[error("reeved is not running (connect {path}: {source}){used}")]
    NotRunning {
        path: PathBuf,
        source: std::io::Error,
        /// Where the socket path came from, for the user to check (", from …"), or empty.
        used: String,
    },
    #[error("bad answer from reeved: {0}")]
    Protocol(String),
    #[error("{0}")]
    Remote(String),
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Stats,
    Routes,
    Reload,
    Create {
        name: String,
    },
    Delete {
        name: String,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Restart {
        name: String,
    },
    Logs {
        name: String,
        follow: bool,
        lines: usize,
    },
}

/// Bind the socket (refusing when a live reeved answers on it).
pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    if UnixStream::connect(path).await.is_ok() {
        return Err(ControlError::InUse(path.to_path_buf()));
    }
    let _ = std::fs::remove_file(path);
    let err = |op| {
        move |source| ControlError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    // Bind under a restrictive umask-free mode: chmod right after bind, before listening
    // matters little since the directory holding it is root-only traversable.
    let l = UnixListener::bind(path).map_err(err("bind"))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err("chmod"))?;
    Ok(l)
}

/// Serve requests until the listener fails.
pub async fn serve(listener: UnixListener, sup: Arc<Supervisor>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let sup = sup.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, sup).await {
                tracing::debug!("control connection: {e}");
            }
        });
    }
}

fn ok(data: Value) -> Value {
    json!({ "ok": true, "data": data })
}

fn fail(e: impl std::fmt::Display) -> Value {
    json!({ "ok": false, "error": e.to_string() })
}

async fn write_line(w: &mut (impl AsyncWriteExt + Unpin), v: &Value) -> std::io::Result<()> {
    let mut s = v.to_string();
    s.push('\n');
    w.write_all(s.as_bytes()).await
}

async fn handle(stream: UnixStream, sup: Arc<Supervisor>) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let (r, mut w) = stream.into_split();
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if cred.uid() != 0 && cred.uid() != me {
        return write_line(
            &mut w,
            &fail("permission denied: the control socket is for root"),
        )
        .await;
    }
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).await?;
    let req: Request = match serde_json::from_str(line.trim()) {
        Ok(r) => r,
        Err(e) => return write_line(&mut w, &fail(format!("bad request: {e}"))).await,
    };
    let name_of = |n: &str| TenantName::parse(n);
    let answer = match req {
        Request::Status => ok(status_json(&sup, false).await),
        Request::Stats => ok(status_json(&sup, true).await),
        Request::Routes => match sup.routes() {
            Some(r) => ok(json!({ "enabled": true, "routes": r })),
            None => ok(json!({ "enabled": false, "routes": [] })),
        },
        Request::Reload => match sup.reload().await {
            Ok((added, removed)) => ok(json!({ "added": added, "removed": removed })),
            Err(e) => fail(e),
        },
        Request::Create { name } => match name_of(&name) {
            Ok(n) => match sup.create(&n).await {
                Ok(dir) => ok(json!({ "tenant": n.as_str(), "data": dir })),
                Err(e) => fail(e),
            },
            Err(e) => fail(e),
        },
        Request::Delete { name } => match name_of(&name) {
            Ok(n) => match sup.delete(&n).await {
                Ok(t) => ok(json!({ "tenant": n.as_str(), "tombstone": t })),
                Err(e) => fail(e),
            },
            Err(e) => fail(e),
        },
        Request::Start { name } => match name_of(&name) {
            Ok(n) => done(sup.start(&n).await, &n),
            Err(e) => fail(e),
        },
        Request::Stop { name } => match name_of(&name) {
            Ok(n) => done(sup.stop(&n).await, &n),
            Err(e) => fail(e),
        },
        Request::Restart { name } => match name_of(&name) {
            Ok(n) => done(sup.restart(&n).await, &n),
            Err(e) => fail(e),
        },
        Request::Logs {
            name,
            follow,
            lines,
        } => {
            let n = match name_of(&name) {
                Ok(n) => n,
                Err(e) => return write_line(&mut w, &fail(e)).await,
            };
            if !sup.ctx.paths.log(&n).exists() {
                return write_line(&mut w, &fail(format!("no log for tenant {n}"))).await;
            }
            return stream_logs(&mut w, &sup.ctx.paths.log(&n), follow, lines).await;
        }
    };
    write_line(&mut w, &answer).await
}

fn done(r: Result<(), crate::supervisor::SupError>, n: &TenantName) -> Value {
    match r {
        Ok(()) => ok(json!({ "tenant": n.as_str() })),
        Err(e) => fail(e),
    }
}

async fn status_json(sup: &Supervisor, stats: bool) -> Value {
    let tenants = sup.status(stats).await;
    json!({
        "pid": std::process::id(),
        "runtime": sup.ctx.oci.binary,
        "limits_enforced": sup.ctx.limits_on,
        "limits": sup.ctx.limits_note,
        "data_root": sup.ctx.cfg.data_root,
        "summary": crate::supervisor::summary(&tenants, &sup.ctx),
        "tenants": tenants,
    })
}

async fn stream_logs(
    w: &mut (impl AsyncWriteExt + Unpin),
    path: &Path,
    follow: bool,
    lines: usize,
) -> std::io::Result<()> {
    let to_io = |e: crate::logs::LogError| std::io::Error::other(e.to_string());
    for l in crate::logs::tail(path, lines).map_err(to_io)? {
        write_line(w, &json!({ "line": l })).await?;
    }
    if !follow {
        return write_line(w, &ok(Value::Null)).await;
    }
    let mut offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (new, off) = crate::logs::read_new(path, offset).map_err(to_io)?;
        offset = off;
        for l in new {
            write_line(w, &json!({ "line": l })).await?;
        }
    }
}

/// Client: send `req` to the socket and call `on_line` with each `line` of a log stream;
/// returns the final answer's data.
pub async fn request(
    socket: &Path,
    req: &Request,
    mut on_line: impl FnMut(&str),
) -> Result<Value, ControlError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ControlError::NotRunning {
            path: socket.to_path_buf(),
            source,
            used: String::new(),
        })?;
    let (r, mut w) = stream.into_split();
    let io = |op| {
        move |source| ControlError::Io {
            op,
            path: socket.to_path_buf(),
            source,
        }
    };
    let mut text = serde_json::to_string(req).map_err(|e| ControlError::Protocol(e.to_string()))?;
    text.push('\n');
    w.write_all(text.as_bytes()).await.map_err(io("write"))?;
    let mut lines = BufReader::new(r).lines();
    while let Some(l) = lines.next_line().await.map_err(io("read"))? {
        let v: Value =
            serde_json::from_str(&l).map_err(|e| ControlError::Protocol(format!("{e}: {l}")))?;
        if let Some(s) = v.get("line").and_then(Value::as_str) {
            on_line(s);
            continue;
        }
        return match v.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(v.get("data").cloned().unwrap_or(Value::Null)),
            Some(false) => Err(ControlError::Remote(
                v.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
            )),
            None => Err(ControlError::Protocol(l)),
        };
    }
    Err(ControlError::Protocol(
        "reeved closed the connection".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let r = Request::Logs {
            name: "acme".into(),
            follow: true,
            lines: 20,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"cmd":"logs","name":"acme","follow":true,"lines":20}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"status"}"#).unwrap(),
            Request::Status
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"rm -rf"}"#).is_err());
    }
}
