//! The systemd notify protocol, written out: datagrams of `KEY=VALUE` lines sent to the Unix
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of sending a notification.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify socket {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl Addr {
    /// Parse `$NOTIFY_SOCKET`.
    pub fn parse(s: &str) -> Option<Addr> {
        if let Some(name) = s.strip_prefix('@') {
            Some(Addr::Abstract(name.as_bytes().to_vec()))
        } else if s.starts_with('/') {
            Some(Addr::Path(PathBuf::from(s)))
        } else {
            None
        }
    }
}

/// A notifier; a no-op when reeved does not run under systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(Addr, String)>,
    sock: Option<UnixDatagram>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`.
    pub fn from_env() -> Notifier {
        let raw = std::env::var("NOTIFY_SOCKET").ok();
        Notifier::new(
            raw.as_deref()
                .and_then(|s| Addr::parse(s).map(|a| (a, s.to_string()))),
        )
    }

    pub fn new(target: Option<(Addr, String)>) -> Notifier {
        let sock = target.as_ref().and_then(|_| UnixDatagram::unbound().ok());
        Notifier { target, sock }
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Send `state` (one or more `KEY=VALUE` lines).
    pub fn send(&self, state: &str) -> Result<(), NotifyError> {
        let (Some((addr, text)), Some(sock)) = (&self.target, &self.sock) else {
            return Ok(());
        };
        let err = |source| NotifyError::Io {
            addr: text.clone(),
            source,
        };
        match addr {
            Addr::Path(p) => sock.send_to(state.as_bytes(), p).map(drop).map_err(err),
            Addr::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(err)?;
                sock.send_to_addr(state.as_bytes(), &a)
                    .map(drop)
                    .map_err(err)
            }
        }
    }

    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={status}"))
    }

    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={status}"))
    }

    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send("STOPPING=1")
    }
}

/// Half the watchdog interval systemd asks for (`$WATCHDOG_USEC`, for us if `$WATCHDOG_PID`
/// is unset or our pid).
pub fn watchdog_period(usec: Option<&str>, wpid: Option<&str>, our_pid: u32) -> Option<Duration> {
    if let Some(p) = wpid {
        if p.trim().parse::<u32>().ok() != Some(our_pid) {
            return None;
        }
    }
    let us: u64 = usec?.trim().parse().ok()?;
    (us > 0).then(|| Duration::from_micros(us / 2))
}

/// [`watchdog_period`] from the environment.
pub fn watchdog_period_from_env() -> Option<Duration> {
    watchdog_period(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            Addr::parse("/run/systemd/notify"),
            Some(Addr::Path("/run/systemd/notify".into()))
        );
        assert_eq!(Addr::parse("@abc"), Some(Addr::Abstract(b"abc".to_vec())));
        assert_eq!(Addr::parse("relative"), None);
    }

    #[test]
    fn sends_datagrams_to_a_path_socket() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("notify");
        let rx = UnixDatagram::bind(&p).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::new(Some((Addr::Path(p.clone()), p.display().to_string())));
        assert!(n.enabled());
        let mut buf = [0u8; 256];
        for (f, want) in [
            (n.ready("2 running"), "READY=1\nSTATUS=2 running"),
            (n.watchdog(), "WATCHDOG=1"),
            (
                n.status("1 running, 1 crash-looping"),
                "STATUS=1 running, 1 crash-looping",
            ),
            (n.stopping(), "STOPPING=1"),
        ] {
            f.unwrap();
            let len = rx.recv(&mut buf).unwrap();
            assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), want);
        }
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("reeved-test-{}", std::process::id());
        let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&a).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let env = format!("@{name}");
        let n = Notifier::new(Addr::parse(&env).map(|a| (a, env.clone())));
        n.send("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }

    #[test]
    fn disabled_without_socket_and_errors_name_the_socket() {
        let n = Notifier::new(None);
        assert!(!n.enabled());
        n.ready("x").unwrap();
        let n = Notifier::new(Some((
            Addr::Path("/nonexistent/sock".into()),
            "/nonexistent/sock".into(),
        )));
        let e = n.ready("x").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/sock"), "{e}");
    }

    #[test]
    fn watchdog_half_interval() {
        assert_eq!(
            watchdog_period(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_period(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_period(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_period(None, None, 7), None);
        assert_eq!(watchdog_period(Some("0"), None, 7), None);
    }
}
