//! A CRI v1 connection: tonic's generic gRPC client over a unix socket, one method per call path.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::codec::ProstCodec;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::Error;

/// The socket path of a `--runtime-endpoint`: `unix:///path`, `unix:/path` or a plain path.
pub fn socket_path(endpoint: &str) -> Result<PathBuf, Error> {
    let path = if let Some(rest) = endpoint.strip_prefix("unix://") {
        rest
    } else if let Some(rest) = endpoint.strip_prefix("unix:") {
        rest
    } else if endpoint.contains("://") {
        return Err(Error::Usage(format!(
            "unsupported runtime endpoint {endpoint:?}: only unix sockets (unix:///path) are supported"
        )));
    } else {
        endpoint
    };
    if path.is_empty() {
        return Err(Error::Usage(format!(
            "runtime endpoint {endpoint:?} names no socket path"
        )));
    }
    Ok(PathBuf::from(path))
}

pub struct Client {
    grpc: tonic::client::Grpc<Channel>,
    timeout: Duration,
}

impl Client {
    /// Connects to the unix socket at `socket`. `timeout` bounds the connection and every call.
    pub async fn connect(socket: PathBuf, timeout: Duration) -> Result<Self, Error> {
        // The URI is a placeholder: the connector ignores it and dials the socket.
        let endpoint = Endpoint::from_static("http://[::1]:50051").connect_timeout(timeout);
        let shown = socket.display().to_string();
        let connector = tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        });
        let channel = tokio::time::timeout(timeout, endpoint.connect_with_connector(connector))
            .await
            .map_err(|_| Error::Timeout(format!("connecting to {shown}")))?
            .map_err(|source| Error::Connect {
                socket: shown,
                source,
            })?;
        Ok(Client {
            grpc: tonic::client::Grpc::new(channel),
            timeout,
        })
    }

    /// One unary call of `path` (e.g. `/runtime.v1.RuntimeService/Version`), bounded by the
    /// client's timeout plus `extra` (for calls that wait on purpose, like StopContainer).
    pub async fn call<Req, Resp>(
        &mut self,
        path: &'static str,
        req: Req,
        extra: Duration,
    ) -> Result<Resp, Error>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let limit = self.timeout + extra;
        let fut = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| Error::Transport(format!("{path}: channel not ready: {e}")))?;
            let codec = ProstCodec::<Req, Resp>::default();
            let mut request = tonic::Request::new(req);
            request.set_timeout(limit);
            self.grpc
                .unary(request, PathAndQuery::from_static(path), codec)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| Error::Status {
                    method: path,
                    status: Box::new(status),
                })
        };
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| Error::Timeout(format!("{path} after {}s", limit.as_secs_f64())))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let p = |s| {
            socket_path(s)
                .map(|p| p.display().to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            p("unix:///run/containerd/containerd.sock").as_deref(),
            Ok("/run/containerd/containerd.sock")
        );
        assert_eq!(p("unix:/x.sock").as_deref(), Ok("/x.sock"));
        assert_eq!(p("/x.sock").as_deref(), Ok("/x.sock"));
        assert!(p("tcp://1.2.3.4:5").is_err());
        assert!(p("unix://").is_err());
    }
}
