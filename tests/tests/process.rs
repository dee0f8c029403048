//! Process and namespace settings of the spec, seen from inside: rlimits, oomScoreAdj, umask,
//! sysctl, a user namespace with id mappings (setgroups denied), namespaces joined by path,
//! a time namespace with offsets, and a terminal handed over through --console-socket.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use reeve_tests::*;
use serde_json::json;

fn reevec_only() -> bool {
    if kind_under_test() != Kind::Reevec {
        eprintln!("SKIPPED: reevec-specific");
        return false;
    }
    true
}

#[test]
fn rlimits_oom_score_umask_and_sysctl_are_applied() {
    require_root!();
    if !reevec_only() {
        return;
    }
    let h = Harness::new("procset");
    let mut b = h.bundle();
    b.set_script(
        "echo nofile=$(ulimit -n) hard=$(ulimit -Hn); echo oom=$(cat /proc/self/oom_score_adj); \
         echo umask=$(umask); echo shmmax=$(cat /proc/sys/kernel/shmmax)",
    );
    let s = b.spec_mut();
    s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]);
    s["process"]["oomScoreAdj"] = json!(500);
    s["process"]["user"]["umask"] = json!(0o027);
    s["linux"]["sysctl"] = json!({"kernel.shmmax": "12345678"});
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").expect("host shmmax");
    let out = h.run(&b);
    out.assert_ok();
    let o = &out.stdout;
    assert!(o.contains("nofile=100 hard=200"), "{}", out.all());
    assert!(o.contains("oom=500"), "{}", out.all());
    assert!(o.contains("umask=0027"), "{}", out.all());
    assert!(o.contains("shmmax=12345678"), "{}", out.all());
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").expect("host shmmax"),
        host_shmmax,
        "the sysctl stays in the container's ipc namespace"
    );
}

#[test]
fn user_namespace_maps_ids_and_denies_setgroups() {
    require_root!();
    if !reevec_only() {
        return;
    }
    let h = Harness::new("userns");
    let mut b = h.bundle();
    b.set_script(
        "echo uidmap=$(cat /proc/self/uid_map); echo gidmap=$(cat /proc/self/gid_map); \
         echo setgroups=$(cat /proc/self/setgroups); echo id=$(id -u):$(id -g); sleep 2",
    );
    let s = b.spec_mut();
    s["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
    s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    let out = h.run(&b);
    out.assert_ok();
    // The kernel pads the map columns: compare with whitespace collapsed.
    let o = &out
        .stdout
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        o.contains("uidmap= 0 300000 65536") || o.contains("uidmap=0 300000 65536"),
        "{}",
        out.all()
    );
    assert!(
        o.contains("gidmap= 0 300000 65536") || o.contains("gidmap=0 300000 65536"),
        "{}",
        out.all()
    );
    assert!(o.contains("setgroups=deny"), "{}", out.all());
    assert!(o.contains("id=0:0"), "{}", out.all());
}

#[test]
fn host_sees_the_mapped_uid_of_a_userns_container() {
    require_root!();
    if !reevec_only() {
        return;
    }
    let h = Harness::new("userns-host");
    let mut b = h.bundle();
    b.set_args(&["sleep", "20"]);
    let s = b.spec_mut();
    s["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
    s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 310000, "size": 65536}]);
    s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 310000, "size": 65536}]);
    let (c, out) = h.create(&b);
    out.assert_ok();
    c.start().assert_ok();
    let pid = c.pid();
    let status = poll(Duration::from_secs(5), || {
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        st.lines()
            .find(|l| l.starts_with("Uid:"))
            .filter(|l| l.contains("310000"))
            .map(str::to_string)
    });
    assert!(
        status.is_some(),
        "root in the container is uid 310000 on the host"
    );
}

#[test]
fn namespaces_are_joined_by_path() {
    require_root!();
    if !reevec_only() {
        return;
    }
    let h = Harness::new("join");
    let mut a = h.bundle();
    a.set_args(&["sleep", "30"]);
    a.spec_mut()["hostname"] = json!("alpha");
    let (ca, out) = h.create(&a);
    out.assert_ok();
    ca.start().assert_ok();
    let pid = ca.pid();

    let mut b = h.bundle();
    b.set_script("echo host=$(hostname); ls /sys/class/net | tr '\\n' ' '; echo");
    let s = b.spec_mut();
    s.as_object_mut().expect("spec").remove("hostname");
    for ns in s["linux"]["namespaces"].as_array_mut().expect("namespaces") {
        if ns["type"] == "uts" || ns["type"] == "network" {
            let name = if ns["type"] == "uts" { "uts" } else { "net" };
            ns["path"] = json!(format!("/proc/{pid}/ns/{name}"));
        }
    }
    let out = h.run(&b);
    out.assert_ok();
    assert!(
        out.stdout.contains("host=alpha"),
        "joined A's uts namespace: {}",
        out.all()
    );
    let host_net = std::fs::read_link("/proc/self/ns/net").expect("ns");
    let a_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("ns");
    assert_ne!(host_net, a_net, "A has its own network namespace");
}

#[test]
fn time_namespace_offsets_apply() {
    require_root!();
    if !reevec_only() {
        return;
    }
    let h = Harness::new("timens");
    let mut b = h.bundle();
    b.set_script("cat /proc/uptime");
    let s = b.spec_mut();
    s["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "time"}));
    s["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .expect("uptime")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("uptime value");
    let out = h.run(&b);
    out.assert_ok();
    let inside: f64 = out
        .stdout
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("uptime inside: {}", out.all()));
    assert!(
        inside >= host_uptime + 864000.0 - 1.0,
        "boottime offset of 10 days: host {host_uptime}, inside {inside}"
    );
}

/// Receive one fd over a Unix socket (the console-socket protocol).
fn recv_fd(sock: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .expect("recvmsg on the console socket");
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd was just received and belongs to us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd on the console socket");
}

#[test]
fn terminal_goes_through_the_console_socket() {
    require_root!();
    if !reevec_only() {
        return;
    }
    let h = Harness::new("console");
    let sock_path = h.dir().join("console.sock");
    let listener = UnixListener::bind(&sock_path).expect("bind console socket");
    let mut b = h.bundle();
    b.set_script("echo TTY=$(tty); [ -t 0 ] && echo STDIN_IS_TTY; sleep 1");
    b.spec_mut()["process"]["terminal"] = json!(true);
    b.save();
    let c = h.container();
    let sp = sock_path.to_string_lossy().to_string();
    let bundle = b.path().to_string_lossy().to_string();
    let create = h.spawn(&[
        "create",
        "--bundle",
        bundle.as_str(),
        "--console-socket",
        sp.as_str(),
        c.id.as_str(),
    ]);
    let (conn, _) = listener.accept().expect("the runtime connects");
    let master = recv_fd(&conn);
    create.wait_for(Duration::from_secs(20)).assert_ok();
    c.start().assert_ok();
    let mut f = std::fs::File::from(master);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    // Read until the slave side closes (EIO) or the text is complete.
    for _ in 0..50 {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
        if text.contains("STDIN_IS_TTY") {
            break;
        }
    }
    assert!(text.contains("TTY=/dev/"), "pty output: {text:?}");
    assert!(text.contains("STDIN_IS_TTY"), "pty output: {text:?}");
}
