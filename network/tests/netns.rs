//! Root-only end-to-end tests of the tenant network. Each test first moves its own thread into a
//! fresh network namespace (the test's "host"); every interface, route, nft table, process and
//! packet stays inside namespaces the test created, all of which die with the test process.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};
use reeve_network::netlink::Netlink;
use reeve_network::netns::{self, run_in_fd, NetnsRef};
use reeve_network::nft::Nft;
use reeve_network::{CaddyOptions, Ipv4Cidr, Network, NetworkConfig, Routes};

const GW_PORT: u16 = 8080;

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Moves the calling test thread into a new network namespace and checks that it really is not
/// the machine's namespace before anything is configured.
fn enter_private_host_netns() -> OwnedFd {
    let machine = std::fs::metadata("/proc/self/ns/net")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let mine = std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert_ne!(
        machine, mine,
        "refusing to run outside a private network namespace"
    );
    Netlink::new().unwrap().set_up_by_name("lo").unwrap();
    netns::current().unwrap()
}

fn config(egress_nat: bool) -> NetworkConfig {
    NetworkConfig {
        bridge: "reeve0".into(),
        subnet: "10.88.0.0/24".parse().unwrap(),
        gateway_port: GW_PORT,
        services: vec!["10.88.0.1:5353".parse().unwrap()],
        egress_nat,
        domain: "gw.test".into(),
    }
}

/// Kills and reaps a child on drop (tenant holders, Caddy).
struct Reaper(Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process in its own, new network namespace (like a sandbox).
fn tenant_process() -> Reaper {
    let mut cmd = Command::new("sleep");
    cmd.arg("600");
    // SAFETY: the closure only calls unshare(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from));
    }
    Reaper(cmd.spawn().unwrap())
}

/// Serves HTTP answering `label` on `addr`, listening inside namespace `ns` (or the current one).
fn serve(ns: Option<BorrowedFd<'_>>, addr: SocketAddr, label: &'static str) {
    let listener = match ns {
        Some(fd) => run_in_fd(fd, label, move || TcpListener::bind(addr))
            .unwrap()
            .unwrap(),
        None => TcpListener::bind(addr).unwrap(),
    };
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let peer = c
                .peer_addr()
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            let body = format!("{label} from {peer}");
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// An HTTP GET with `host` to `addr`, from namespace `ns` (or the current one): the connect
/// must succeed within 1 s. Returns (status, body) and how long the connect took.
fn get(
    ns: Option<BorrowedFd<'_>>,
    addr: SocketAddrV4,
    host: &str,
) -> (Result<(u16, String), std::io::Error>, Duration) {
    let host = host.to_string();
    let work = move || {
        let start = Instant::now();
        let conn = TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(1));
        let took = start.elapsed();
        let res = conn.and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(
                s,
                "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            let status = out
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let body = out
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
            Ok((status, body))
        });
        (res, took)
    };
    match ns {
        Some(fd) => run_in_fd(fd, "probe", work).unwrap(),
        None => work(),
    }
}

fn assert_answers(ns: Option<BorrowedFd<'_>>, addr: SocketAddrV4, want: &str) {
    let (res, _) = get(ns, addr, "x");
    let (status, body) = res.unwrap_or_else(|e| panic!("{addr} should answer: {e}"));
    assert_eq!(status, 200);
    assert!(body.starts_with(want), "{addr}: {body}");
}

fn assert_refused_fast(ns: Option<BorrowedFd<'_>>, addr: SocketAddrV4, what: &str) {
    let (res, took) = get(ns, addr, "x");
    assert!(
        res.is_err(),
        "{what}: {addr} must not be reachable, got {res:?}"
    );
    assert!(took <= Duration::from_millis(1100), "{what}: took {took:?}");
    println!(
        "{what}: {addr} refused after {took:?}: {}",
        res.unwrap_err()
    );
}

/// Runs a shell command inside namespace `ns`; it must succeed.
fn sh_in(ns: BorrowedFd<'_>, cmd: &str) {
    let out = run_in_fd(ns, "tenant", || {
        Command::new("sh").args(["-c", cmd]).output().unwrap()
    })
    .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ruleset() -> String {
    Nft::default().list_ruleset().unwrap()
}

#[test]
fn two_tenants_policy_proxy_and_cleanup() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _host = enter_private_host_netns();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("addresses.json");
    let cfg = config(false);
    let mut net = Network::open(cfg.clone(), &state).unwrap();
    let t = Instant::now();
    let report = net.reconcile(&[]).unwrap();
    println!("reconcile(empty) (bridge + tables): {:?}", t.elapsed());
    assert!(report.kept.is_empty());

    // Tenants: acme by pid (a sleeping process in its own netns), beta by an fd.
    let acme_proc = tenant_process();
    let acme_pid = acme_proc.0.id() as i32;
    // Wait until the child has unshared (its netns differs from ours).
    let ours = std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(format!("/proc/{acme_pid}/ns/net"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap()
        == ours
    {
        assert!(Instant::now() < deadline, "tenant process never unshared");
        std::thread::sleep(Duration::from_millis(5));
    }
    let acme_ns = NetnsRef::Pid(acme_pid).open().unwrap();
    let beta_ns = netns::create().unwrap();

    let t = Instant::now();
    let acme = net.setup_tenant("acme", &NetnsRef::Pid(acme_pid)).unwrap();
    let acme_setup = t.elapsed();
    let t = Instant::now();
    let beta = net
        .setup_tenant("beta", &NetnsRef::Fd(beta_ns.try_clone().unwrap()))
        .unwrap();
    let beta_setup = t.elapsed();
    println!("setup_tenant: acme {acme_setup:?}, beta {beta_setup:?}");
    assert_eq!(acme.address, Ipv4Addr::new(10, 88, 0, 2));
    assert_eq!(beta.address, Ipv4Addr::new(10, 88, 0, 3));
    assert_eq!(acme.upstream, SocketAddrV4::new(acme.address, GW_PORT));
    assert_eq!(net.bridge_ports().unwrap(), ["rv-acme", "rv-beta"]);

    // Kernel state as planned: port isolation on, tenant address /32 and default route inside.
    let mut nl = Netlink::new().unwrap();
    for name in ["rv-acme", "rv-beta"] {
        let l = nl.link(name).unwrap().unwrap();
        assert!(l.up, "{name} down");
        assert_eq!(
            nl.bridge_port_isolated(l.index).unwrap(),
            Some(true),
            "{name}"
        );
    }
    let (addrs, lo_up) = run_in_fd(acme_ns.as_fd(), "acme", || {
        let mut nl = Netlink::new().unwrap();
        let eth0 = nl.link("eth0").unwrap().unwrap();
        (
            nl.addresses(eth0.index).unwrap(),
            nl.link("lo").unwrap().unwrap().up,
        )
    })
    .unwrap();
    assert_eq!(addrs, vec![Ipv4Cidr::host(acme.address)]);
    assert!(lo_up);
    let routes = run_in_fd(acme_ns.as_fd(), "acme", || {
        Command::new("ip").args(["-4", "route"]).output().unwrap()
    })
    .unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    assert!(
        routes.contains("default via 10.88.0.1 dev eth0"),
        "{routes}"
    );

    // Servers: each tenant's gateway port, an extra acme port, a listed and an unlisted host port.
    serve(
        Some(acme_ns.as_fd()),
        "0.0.0.0:8080".parse().unwrap(),
        "acme",
    );
    serve(
        Some(acme_ns.as_fd()),
        "0.0.0.0:9090".parse().unwrap(),
        "acme-9090",
    );
    serve(
        Some(beta_ns.as_fd()),
        "0.0.0.0:8080".parse().unwrap(),
        "beta",
    );
    serve(None, "0.0.0.0:5353".parse().unwrap(), "host-service");
    serve(None, "0.0.0.0:6000".parse().unwrap(), "host-private");

    let gw = Ipv4Addr::new(10, 88, 0, 1);
    let acme_fd = Some(acme_ns.as_fd());
    let beta_fd = Some(beta_ns.as_fd());
    // Tenant → tenant, both directions.
    assert_refused_fast(acme_fd, beta.upstream, "acme -> beta");
    assert_refused_fast(beta_fd, acme.upstream, "beta -> acme");
    // Tenant → host: only the listed service.
    assert_refused_fast(
        acme_fd,
        SocketAddrV4::new(gw, 6000),
        "acme -> unlisted host port",
    );
    assert_answers(
        acme_fd,
        SocketAddrV4::new(gw, 5353),
        "host-service from 10.88.0.2",
    );
    assert_answers(
        beta_fd,
        SocketAddrV4::new(gw, 5353),
        "host-service from 10.88.0.3",
    );
    // Host (proxy) → tenant: only the gateway port.
    assert_answers(None, acme.upstream, "acme from 10.88.0.1");
    assert_answers(None, beta.upstream, "beta from 10.88.0.1");
    assert_refused_fast(
        None,
        SocketAddrV4::new(acme.address, 9090),
        "host -> acme non-gateway port",
    );
    // Without egress NAT, nothing leaves: an address routed nowhere but via the host.
    assert_refused_fast(
        acme_fd,
        "192.0.2.77:80".parse().unwrap(),
        "acme -> outside (no NAT)",
    );

    // A tenant that is root in its namespace tries to bypass the gateway and to spoof.
    // (`ip` here only acts inside the tenant namespace, playing the attacker.)
    // Both colluding tenants route the subnet on-link, so only L2 isolation stands between them.
    // This kernel has br_netfilter, which would also pass bridged frames through the inet hooks
    // (and our prerouting reject); switch that off in the test's own namespace (the sysctl is
    // per network namespace) so the check exercises port isolation and `bridge reeve` alone.
    let brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    let had_brnf = std::fs::read_to_string(brnf).ok();
    if had_brnf.is_some() {
        std::fs::write(brnf, "0").unwrap();
    }
    sh_in(acme_ns.as_fd(), "ip route add 10.88.0.0/24 dev eth0");
    sh_in(beta_ns.as_fd(), "ip route add 10.88.0.0/24 dev eth0");
    assert_refused_fast(
        acme_fd,
        beta.upstream,
        "acme -> beta over an on-link route (L2)",
    );
    sh_in(acme_ns.as_fd(), "ip route del 10.88.0.0/24 dev eth0");
    sh_in(beta_ns.as_fd(), "ip route del 10.88.0.0/24 dev eth0");
    if let Some(v) = had_brnf {
        std::fs::write(brnf, v.trim()).unwrap();
    }
    sh_in(acme_ns.as_fd(), "ip addr add 10.88.0.3/32 dev eth0");
    // UDP to the listed service is one-way observable: the genuine source arrives, a spoofed
    // one (beta's address, which beta's rules would let through) must be dropped at the port.
    let udp = std::net::UdpSocket::bind("0.0.0.0:5353").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let send_from = |src: &'static str| {
        run_in_fd(acme_ns.as_fd(), "acme", move || {
            let s = std::net::UdpSocket::bind((src, 0)).unwrap();
            s.send_to(src.as_bytes(), "10.88.0.1:5353").unwrap();
        })
        .unwrap()
    };
    send_from("10.88.0.2");
    let mut buf = [0u8; 64];
    let (n, from) = udp
        .recv_from(&mut buf)
        .expect("genuine datagram must arrive");
    assert_eq!(
        (&buf[..n], from.ip().to_string().as_str()),
        (&b"10.88.0.2"[..], "10.88.0.2")
    );
    send_from("10.88.0.3");
    let spoofed = udp.recv_from(&mut buf);
    assert!(spoofed.is_err(), "spoofed datagram arrived: {spoofed:?}");
    sh_in(acme_ns.as_fd(), "ip addr del 10.88.0.3/32 dev eth0");
    assert_answers(
        acme_fd,
        SocketAddrV4::new(gw, 5353),
        "host-service from 10.88.0.2",
    );

    // Hostname routing through a real Caddy on the host side's loopback.
    let mut routes = Routes::new(&cfg.domain).unwrap();
    routes.insert("acme", acme.upstream).unwrap();
    routes.insert("beta", beta.upstream).unwrap();
    let caddyfile = dir.path().join("Caddyfile");
    let opts = CaddyOptions {
        http_port: 18080,
        admin: None,
    };
    routes.write_caddy(&caddyfile, &opts).unwrap();
    routes
        .write_traefik(&dir.path().join("traefik.yml"))
        .unwrap();
    let caddy = Reaper(
        Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("caddy must be installed (apt-get install caddy)"),
    );
    let proxy = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 18080);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(proxy).is_err() {
        assert!(Instant::now() < deadline, "caddy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (r, _) = get(None, proxy, "acme.gw.test");
    let (status, body) = r.unwrap();
    assert_eq!(
        (status, body.starts_with("acme from 10.88.0.1")),
        (200, true),
        "{body}"
    );
    let (r, _) = get(None, proxy, "beta.gw.test");
    let (status, body) = r.unwrap();
    assert_eq!(
        (status, body.starts_with("beta from 10.88.0.1")),
        (200, true),
        "{body}"
    );
    let (r, _) = get(None, proxy, "gamma.gw.test");
    assert_eq!(r.unwrap().0, 404);
    drop(caddy);

    // Delete beta: its rules, port and address go; acme is untouched.
    let rules = ruleset();
    assert!(
        rules.contains("from-beta") && rules.contains("10.88.0.3"),
        "{rules}"
    );
    assert_eq!(net.delete_tenant("beta").unwrap(), Some(beta.address));
    assert_eq!(net.address("beta"), None);
    let rules = ruleset();
    assert!(
        !rules.contains("beta") && !rules.contains("10.88.0.3"),
        "{rules}"
    );
    assert!(
        rules.contains("from-acme") && rules.contains("\"rv-acme\""),
        "{rules}"
    );
    assert_eq!(net.bridge_ports().unwrap(), ["rv-acme"]);
    assert_answers(None, acme.upstream, "acme");
    // Deleting again is harmless.
    assert_eq!(net.delete_tenant("beta").unwrap(), None);

    // Crash and restart: gamma is set up, then the supervisor "dies" before deleting it.
    let gamma_ns = netns::create().unwrap();
    let t = Instant::now();
    let gamma = net
        .setup_tenant("gamma", &NetnsRef::Fd(gamma_ns.try_clone().unwrap()))
        .unwrap();
    println!("setup_tenant: gamma {:?}", t.elapsed());
    assert_ne!(
        gamma.address, beta.address,
        "a released address is not reused at once"
    );
    drop(net);
    let mut net = Network::open(cfg.clone(), &state).unwrap();
    assert_eq!(
        net.address("acme"),
        Some(acme.address),
        "address stable across restarts"
    );
    let t = Instant::now();
    let report = net.reconcile(&["acme"]).unwrap();
    println!(
        "reconcile([acme]) after restart: {:?} {report:?}",
        t.elapsed()
    );
    assert_eq!(report.kept, ["acme"]);
    assert_eq!(report.removed_links, ["rv-gamma"]);
    let rules = ruleset();
    assert!(
        !rules.contains("gamma") && !rules.contains(&gamma.address.to_string()),
        "{rules}"
    );
    assert!(!rules.contains("beta"), "{rules}");
    assert!(
        rules.contains("from-acme") && rules.contains("to-acme") && rules.contains("port-acme"),
        "{rules}"
    );
    assert_eq!(net.bridge_ports().unwrap(), ["rv-acme"]);
    // The rebuilt policy still works for acme.
    assert_answers(None, acme.upstream, "acme");
    assert_refused_fast(
        None,
        SocketAddrV4::new(acme.address, 9090),
        "host -> acme 9090 after restart",
    );
    assert_answers(acme_fd, SocketAddrV4::new(gw, 5353), "host-service");
    // gamma still exists as a tenant (address kept) until the supervisor says otherwise.
    assert_eq!(net.address("gamma"), Some(gamma.address));
    assert_eq!(net.retain_addresses(&["acme"]).unwrap(), ["gamma"]);
    assert_eq!(net.address("gamma"), None);

    // Restarting acme's sandbox: a second setup replaces the old veth, same address.
    let t = Instant::now();
    let again = net.setup_tenant("acme", &NetnsRef::Pid(acme_pid)).unwrap();
    println!(
        "setup_tenant: acme again (replacing its veth) {:?}",
        t.elapsed()
    );
    assert_eq!(again.address, acme.address);
    assert_eq!(net.bridge_ports().unwrap(), ["rv-acme"]);
    assert_answers(None, acme.upstream, "acme");

    net.destroy().unwrap();
    let rules = ruleset();
    assert!(!rules.contains("reeve"), "{rules}");
    assert!(Netlink::new().unwrap().link("reeve0").unwrap().is_none());
    drop(acme_proc);
}

#[test]
fn egress_nat_switch() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _host = enter_private_host_netns();
    // An "outside" namespace reachable from the test host over a veth: 192.0.2.0/24 (TEST-NET-1).
    let outside = netns::create().unwrap();
    let mut nl = Netlink::new().unwrap();
    let up = nl.create_veth("out0", "eth0", outside.as_fd()).unwrap();
    nl.add_address(up, "192.0.2.1/24".parse().unwrap()).unwrap();
    nl.set_up(up).unwrap();
    run_in_fd(outside.as_fd(), "outside", || {
        let mut nl = Netlink::new().unwrap();
        nl.set_up_by_name("lo").unwrap();
        let i = nl.set_up_by_name("eth0").unwrap();
        nl.add_address(i, "192.0.2.2/24".parse().unwrap()).unwrap();
    })
    .unwrap();
    serve(
        Some(outside.as_fd()),
        "0.0.0.0:7000".parse().unwrap(),
        "outside",
    );
    let target: SocketAddrV4 = "192.0.2.2:7000".parse().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("addresses.json");
    let mut net = Network::open(config(true), &state).unwrap();
    net.reconcile(&[]).unwrap();
    let tenant = netns::create().unwrap();
    net.setup_tenant("acme", &NetnsRef::Fd(tenant.try_clone().unwrap()))
        .unwrap();
    assert!(ruleset().contains("masquerade"));
    // NAT on: reachable, and the outside sees the host's address, not the tenant's.
    assert_answers(Some(tenant.as_fd()), target, "outside from 192.0.2.1");

    // Switch NAT off (a config change = reopen + reconcile): egress is refused, NAT table gone.
    drop(net);
    let mut net = Network::open(config(false), &state).unwrap();
    net.reconcile(&["acme"]).unwrap();
    let rules = ruleset();
    assert!(
        !rules.contains("reeve_nat") && !rules.contains("egress"),
        "{rules}"
    );
    assert_refused_fast(Some(tenant.as_fd()), target, "acme -> outside with NAT off");
}

#[test]
fn nft_text_is_accepted_by_nft_for_many_tenants() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _host = enter_private_host_netns();
    // Tables referencing 200 tenants, applied twice (idempotent), then one tenant's incremental
    // add/remove applied twice each.
    let cfg = config(true);
    let plans: Vec<_> = (0..200u32)
        .map(|i| {
            let name = if i % 2 == 0 {
                format!("t{i}")
            } else {
                format!("a-long-tenant-name-{i}")
            };
            reeve_network::plan::TenantPlan::new(
                &cfg,
                &name,
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 88, 0, 2)) + i),
            )
        })
        .collect();
    let nft = Nft::default();
    let text = reeve_network::plan::full_ruleset(&cfg, &plans);
    nft.check(&text).unwrap();
    assert!(nft.check("add rule inet nosuchtable c drop\n").is_err());
    let t = Instant::now();
    nft.apply(&text).unwrap();
    println!("full ruleset for 200 tenants applied in {:?}", t.elapsed());
    nft.apply(&text).unwrap();
    let extra = reeve_network::plan::TenantPlan::new(&cfg, "extra", "10.88.0.250".parse().unwrap());
    let t = Instant::now();
    nft.apply(&extra.nft_add(&cfg)).unwrap();
    println!(
        "incremental add with 200 tenants present: {:?}",
        t.elapsed()
    );
    nft.apply(&extra.nft_add(&cfg)).unwrap();
    assert!(ruleset().contains("10.88.0.250 : jump from-extra"));
    nft.apply(&extra.nft_remove(&cfg)).unwrap();
    nft.apply(&extra.nft_remove(&cfg)).unwrap();
    let rules = ruleset();
    assert!(
        !rules.contains("extra") && !rules.contains("10.88.0.250"),
        "{}",
        rules.len()
    );
    assert!(rules.contains("from-t0") && rules.contains("a-long-tenant-name-199"));
}
