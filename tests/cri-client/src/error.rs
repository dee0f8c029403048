use std::path::PathBuf;

/// Everything that makes a reeve-cri command fail. `main` prints it to stderr and exits with
/// [`Error::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("connecting to {socket}: {source}")]
    Connect {
        socket: String,
        source: tonic::transport::Error,
    },
    #[error("transport: {0}")]
    Transport(String),
    /// A call the server answered with a non-OK gRPC status.
    #[error("{method}: rpc error: code = {} desc = {}", code_name(status.code()), status.message())]
    Status {
        method: &'static str,
        status: Box<tonic::Status>,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// 2 for usage errors, 3 for timeouts, 1 for everything else (like crictl, which exits 1).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Timeout(_) => 3,
            _ => 1,
        }
    }
}

/// The Go name of a gRPC code, as containerd and crictl print it ("NotFound", "DeadlineExceeded").
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_looks_like_crictl() {
        let e = Error::Status {
            method: "/runtime.v1.RuntimeService/StopContainer",
            status: Box::new(tonic::Status::deadline_exceeded(
                "context deadline exceeded",
            )),
        };
        assert_eq!(
            e.to_string(),
            "/runtime.v1.RuntimeService/StopContainer: rpc error: code = DeadlineExceeded desc = context deadline exceeded"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
    }
}
