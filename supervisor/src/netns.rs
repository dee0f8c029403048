//! A sandbox's network namespace seen from the host, done by an exec'd `reeved netns-…` helper
//! (a fresh single-threaded process: `setns` affects only the calling thread, which in tokio
//! would be any worker): bring the loopback up before the gateway starts (its capabilities do
//! not include CAP_NET_ADMIN), and fetch a page from a port inside (the demo's proof that the
//! gateway serves HTTP in its own namespace).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of the network namespace helpers.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setns({path}, CLONE_NEWNET): {errno}")]
    Setns {
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("{op} lo: {errno}")]
    Ioctl {
        op: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("HTTP GET on port {port}: {source}")]
    Http { port: u16, source: std::io::Error },
    #[error("run {helper}: {msg}")]
    Helper { helper: String, msg: String },
}

/// Join the network namespace of `pid` (this thread only).
pub fn enter_net_of(pid: i32) -> Result<(), NetnsError> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let f = std::fs::File::open(&path).map_err(|source| NetnsError::Open {
        path: path.clone(),
        source,
    })?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|errno| NetnsError::Setns { path, errno })
}

/// `struct ifreq` with the flags member of its union (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfreqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Set IFF_UP on `lo` of the current network namespace.
pub fn loopback_up() -> Result<(), NetnsError> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|errno| NetnsError::Ioctl {
        op: "socket for",
        errno,
    })?;
    let mut req = IfreqFlags {
        name: [0; 16],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of a properly sized ifreq.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    if r < 0 {
        return Err(NetnsError::Ioctl {
            op: "SIOCGIFFLAGS",
            errno: nix::errno::Errno::last(),
        });
    }
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads the ifreq.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    if r < 0 {
        return Err(NetnsError::Ioctl {
            op: "SIOCSIFFLAGS",
            errno: nix::errno::Errno::last(),
        });
    }
    Ok(())
}

/// GET / from 127.0.0.1:`port` of the current network namespace; returns the body.
pub fn http_get(port: u16) -> Result<String, NetnsError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    http_get_host(addr, "localhost").map(|(_, body)| body)
}

/// GET / from `addr` with a `Host:` header (what `curl -H 'Host: …'` sends), in the calling
/// thread's network namespace; returns the status code and the body.
pub fn http_get_host(addr: std::net::SocketAddr, host: &str) -> Result<(u16, String), NetnsError> {
    let err = |source| NetnsError::Http {
        port: addr.port(),
        source,
    };
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(err)?;
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(err)?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(err)?;
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .trim()
        .to_string();
    Ok((code, body))
}

/// Run `reeved <args>` (this executable) as the helper and return its stdout.
pub fn run_helper(args: &[String]) -> Result<String, NetnsError> {
    let exe = std::env::current_exe().map_err(|e| NetnsError::Helper {
        helper: "reeved".into(),
        msg: e.to_string(),
    })?;
    let helper = format!("{} {}", exe.display(), args.join(" "));
    let o = std::process::Command::new(&exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| NetnsError::Helper {
            helper: helper.clone(),
            msg: e.to_string(),
        })?;
    if !o.status.success() {
        return Err(NetnsError::Helper {
            helper,
            msg: String::from_utf8_lossy(&o.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_has_the_kernel_size() {
        assert_eq!(std::mem::size_of::<IfreqFlags>(), 40);
    }

    #[test]
    fn loopback_up_and_http_in_a_fresh_netns_as_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root");
            return;
        }
        // A thread of our own enters a new netns (unshare affects only it).
        let r = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            assert!(http_get(1).is_err(), "lo is down in a new netns");
            loopback_up().unwrap();
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let srv = std::thread::spawn(move || {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = [0u8; 256];
                let _ = c.read(&mut buf).unwrap();
                c.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello\n").unwrap();
            });
            // The listening socket belongs to the new netns whichever thread accepts on it.
            let body = http_get(port);
            srv.join().unwrap();
            body
        })
        .join()
        .unwrap();
        assert_eq!(r.unwrap(), "hello");
    }

    #[test]
    fn http_get_host_sends_the_host_header() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let srv = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = c.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let host = req
                .lines()
                .find_map(|l| l.strip_prefix("Host: "))
                .unwrap_or("")
                .to_string();
            c.write_all(format!("HTTP/1.0 404 Not Found\r\n\r\nno {host}\n").as_bytes())
                .unwrap();
        });
        let r = http_get_host(addr, "acme.gw.test").unwrap();
        srv.join().unwrap();
        assert_eq!(r, (404, "no acme.gw.test".to_string()));
    }
}
