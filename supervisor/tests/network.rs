//! End-to-end tests of reeved's per-tenant networks (issue 5), root only (skipped otherwise).
//!
//! Never on the machine's own network: each test makes its own network namespace for the "host"
//! side (`ip netns add`), runs reeved in it (`nsenter --net=…`), and every packet stays between
//! that namespace and the sandboxes' namespaces. Caddy (`/usr/bin/caddy`) runs there too, with
//! its admin endpoint off, automatic HTTPS off, and HOME/XDG directories in the test's temp dir.
//!
//! Build first: `cargo build -p reeve-runtime -p reeve-supervisor` (reeved finds reevec next to
//! itself). Needs `nft`, `ip`, `nsenter` and `caddy`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{is_root, mkdir, test_processes, Tenant, REEVED};

const CADDY: &str = "/usr/bin/caddy";
const BRIDGE: &str = "rvt0";
const SERVICE: &str = "10.91.0.1:9000";
const UNLISTED: &str = "10.91.0.1:9001";
const CADDY_PORT: u16 = 8088;

/// The test gateway: busybox httpd on :8080 saying which tenant it is, and a heartbeat.
const GATEWAY: &str = r#"#!/bin/sh
trap 'exit 0' TERM
mkdir -p /tmp/www && echo "hello from $REEVE_TENANT" > /tmp/www/index.html
httpd -p 8080 -h /tmp/www
echo "httpd up $REEVE_TENANT"
while :; do sleep 1 & wait $!; done
"#;

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIPPED: reeved network tests need root");
            return;
        }
    };
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A host-side network namespace made by the test, deleted on drop.
struct HostNs {
    name: String,
    path: PathBuf,
}

impl HostNs {
    fn new(tag: &str) -> HostNs {
        let name = format!("reeve-nt-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]));
        run(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        HostNs {
            path: PathBuf::from("/run/netns").join(&name),
            name,
        }
    }

    /// A command run inside this namespace.
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path.display()))
            .arg("--")
            .arg(prog);
        c
    }

    /// Runs `f` on a thread inside the namespace at `path` (sockets made there stay there).
    fn at<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> T {
        let f_ns = std::fs::File::open(path).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(&f_ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }

    fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        Self::at(&self.path, f)
    }

    fn ruleset(&self) -> String {
        String::from_utf8(run(self.cmd("nft").args(["list", "ruleset"])).stdout).unwrap()
    }

    /// Tenants that have anything in our nftables tables (chains `from-`, `to-`, `port-`,
    /// `egress-` <tenant>).
    fn tenants_in_ruleset(&self) -> BTreeSet<String> {
        tenants_in(&self.ruleset())
    }

    /// Ports of the bridge (empty if there is no bridge).
    fn bridge_ports(&self) -> BTreeSet<String> {
        let o = self
            .cmd("ip")
            .args(["-o", "link", "show", "master", BRIDGE])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    fn has_bridge(&self) -> bool {
        self.cmd("ip")
            .args(["link", "show", BRIDGE])
            .output()
            .unwrap()
            .status
            .success()
    }
}

impl Drop for HostNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn tenants_in(ruleset: &str) -> BTreeSet<String> {
    ruleset
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter_map(|w| {
            ["from-", "to-", "port-", "egress-"]
                .iter()
                .find_map(|p| w.strip_prefix(p))
        })
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

struct Env {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    config: PathBuf,
    data: PathBuf,
    state: PathBuf,
    test_id: String,
    ns: HostNs,
    reeved: Option<Child>,
    caddy: Option<Child>,
}

/// Nothing of a failed test stays behind: reeved, Caddy and every process carrying this test's
/// id are SIGKILLed; the namespace goes with `HostNs`.
impl Drop for Env {
    fn drop(&mut self) {
        for c in [self.reeved.as_mut(), self.caddy.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
        common::sigkill_all(test_processes(&self.test_id));
    }
}

impl Env {
    fn new(tag: &str, tenants: &[&str]) -> Env {
        for tool in ["nft", "ip", "nsenter", CADDY] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success();
            assert!(
                found,
                "{tool} is missing (apt-get install nftables iproute2 util-linux caddy)"
            );
        }
        let common::Layout {
            tmp,
            top,
            rootfs,
            gateway: gw,
            layer1: l1,
            data,
            state,
            config,
        } = common::layout(
            "reeved-net-test.",
            &["sh", "echo", "sleep", "mkdir", "httpd"],
            GATEWAY,
        );
        let test_id = format!("n{}-{tag}", std::process::id());
        std::fs::write(
            &config,
            format!(
                r#"data_root = "{data}"
state_dir = "{state}"
layer1_dir = "{l1}"
allow_no_limits = true

[gateway]
command = ["/bin/sh", "/opt/gateway/gw.sh"]
env = ["REEVE_TEST_ID={test_id}"]
dir = "{gw}"
rootfs = "{rootfs}"

[restart]
initial_backoff_ms = 300
stop_grace_ms = 3000

[network]
enabled = true
bridge = "{BRIDGE}"
subnet = "10.91.0.0/24"
gateway_port = 8080
domain = "gw.test"
services = ["{SERVICE}"]
caddy_file = "{top}/Caddyfile"
traefik_file = "{top}/traefik.yml"
caddy_http_port = {CADDY_PORT}
"#,
                data = data.display(),
                state = state.display(),
                l1 = l1.display(),
                gw = gw.display(),
                rootfs = rootfs.display(),
                top = top.display(),
            ),
        )
        .unwrap();
        let env = Env {
            _tmp: tmp,
            top,
            config,
            data,
            state,
            test_id,
            ns: HostNs::new(tag),
            reeved: None,
            caddy: None,
        };
        for t in tenants {
            let o = env.cli(&["tenant", "create", t]);
            assert!(o.status.success(), "create {t}: {o:?}");
        }
        env
    }

    fn cli(&self, args: &[&str]) -> Output {
        common::reeved(&self.config, args)
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let o = self.cli(args);
        assert!(o.status.success(), "reeved {args:?}: {o:?}");
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// Starts `reeved run` inside the host namespace.
    fn start_reeved(&mut self, tag: &str) {
        let log = self.top.join(format!("reeved-{tag}.log"));
        let child = common::run_cmd(self.ns.cmd(REEVED), &self.config, &log)
            .spawn()
            .unwrap();
        self.reeved = Some(child);
    }

    fn reeved_logs(&self) -> String {
        common::logs_in(&self.top, "reeved-")
    }

    fn tenants(&self) -> BTreeMap<String, Tenant> {
        common::status(&self.config)
            .map(|v| common::tenants_of(&v))
            .unwrap_or_default()
    }

    fn pid_of(&self, tenant: &str) -> i32 {
        self.tenants()
            .get(tenant)
            .and_then(|t| t.pid)
            .unwrap_or_else(|| panic!("{tenant} has no pid")) as i32
    }

    fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut(&Env) -> bool) {
        if common::poll(secs, || f(self)) {
            return;
        }
        panic!(
            "timed out waiting for {what}; status: {:?}\nreeved logs:\n{}",
            self.tenants(),
            self.reeved_logs()
        );
    }

    fn wait_running(&self, names: &[&str]) {
        self.wait_for(&format!("{names:?} running"), 60, |e| {
            common::running_pids(&e.tenants(), names).is_some()
        });
    }

    /// `reeved routes --json` as tenant → upstream.
    fn routes(&self) -> Vec<(String, String, SocketAddrV4)> {
        let v = self.cli_json(&["routes", "--json"]);
        assert_eq!(v["enabled"], Value::Bool(true), "{v}");
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["tenant"].as_str().unwrap().to_string(),
                    r["host"].as_str().unwrap().to_string(),
                    r["upstream"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect()
    }

    fn upstream(&self, tenant: &str) -> SocketAddrV4 {
        self.routes()
            .into_iter()
            .find(|(t, _, _)| t == tenant)
            .unwrap_or_else(|| panic!("no route for {tenant}"))
            .2
    }

    /// Waits until the gateway of `tenant` answers on its address (from the host side).
    fn wait_http(&self, tenant: &str) {
        let up = self.upstream(tenant);
        let want = format!("hello from {tenant}");
        self.wait_for(&format!("{tenant} answering on {up}"), 30, |e| {
            e.ns.within(|| get(SocketAddr::V4(up), "x"))
                .is_ok_and(|(_, body)| body.contains(&want))
        });
    }

    fn start_caddy(&mut self) {
        let home = self.top.join("caddy-home");
        mkdir(&home);
        let log = std::fs::File::create(self.top.join("caddy.log")).unwrap();
        let child = self
            .ns
            .cmd(CADDY)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(self.top.join("Caddyfile"))
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("REEVE_TEST_ID", &self.test_id)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.caddy = Some(child);
        let caddy = SocketAddr::from(([127, 0, 0, 1], CADDY_PORT));
        self.wait_for("caddy listening", 30, |e| {
            e.ns.within(|| get(caddy, "nobody.gw.test")).is_ok()
        });
    }

    fn stop_caddy(&mut self) {
        if let Some(mut c) = self.caddy.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn caddy_get(&self, host: &str) -> (u16, String) {
        let caddy = SocketAddr::from(([127, 0, 0, 1], CADDY_PORT));
        self.ns
            .within(|| get(caddy, host))
            .unwrap_or_else(|e| panic!("GET {host} through caddy: {e}"))
    }

    fn kill_reeved(&mut self) {
        let mut c = self.reeved.take().expect("reeved runs");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    fn sigterm_reeved(&mut self) -> std::process::ExitStatus {
        let mut c = self.reeved.take().expect("reeved runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "reeved ignores SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts nftables and the bridge hold exactly `live`.
    fn assert_exactly(&self, live: &[&str], when: &str) {
        let want: BTreeSet<String> = live.iter().map(|s| s.to_string()).collect();
        let rules = self.ns.ruleset();
        assert_eq!(tenants_in(&rules), want, "{when}: nft ruleset:\n{rules}");
        let ports: BTreeSet<String> = live.iter().map(|t| format!("rv-{t}")).collect();
        assert_eq!(self.ns.bridge_ports(), ports, "{when}: bridge ports");
    }
}

/// GET / with a Host header; (status, body).
fn get(addr: SocketAddr, host: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET / HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response {resp:?}")))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}

/// Connect from inside the network namespace of `pid`: Ok(first line the peer sent) or the
/// error. The timeout is generous: a refusal must come back as an error, never as a timeout.
fn connect_from(pid: i32, addr: SocketAddrV4) -> std::io::Result<String> {
    HostNs::at(Path::new(&format!("/proc/{pid}/ns/net")), || {
        let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
    })
}

/// A refusal (ICMP error or RST), not a silent drop: fails at once, not after a timeout.
fn assert_refused(r: std::io::Result<String>, what: &str) {
    match r {
        Ok(got) => panic!("{what}: connected (got {got:?})"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::HostUnreachable
            ) || e.raw_os_error() == Some(libc::EHOSTUNREACH)
                || e.raw_os_error() == Some(libc::ENETUNREACH)
                || e.raw_os_error() == Some(libc::EACCES)
                || e.raw_os_error() == Some(libc::EPERM),
            "{what}: expected an immediate refusal, got {e} ({:?})",
            e.kind()
        ),
    }
}

/// TCP servers on the host side: the listed service and an unlisted port, each saying its name.
fn host_servers(ns: &HostNs) {
    for (addr, name) in [(SERVICE, "service"), (UNLISTED, "unlisted")] {
        let l = ns.within(|| TcpListener::bind(addr));
        let l = l.unwrap_or_else(|e| panic!("bind {addr} in the host netns: {e}"));
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = writeln!(c, "{name}");
            }
        });
    }
}

#[test]
fn hostname_routing_policy_delete_and_crash_restart() {
    require_root!();
    let mut env = Env::new("a", &["acme", "beta", "gamma"]);
    env.start_reeved("1");
    env.wait_running(&["acme", "beta", "gamma"]);
    env.wait_http("acme");
    env.wait_http("beta");
    env.wait_http("gamma");
    env.assert_exactly(&["acme", "beta", "gamma"], "three tenants up");

    // The route table: `reeved routes`, the Caddyfile and the Traefik file agree.
    let routes = env.routes();
    assert_eq!(
        routes.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["acme.gw.test", "beta.gw.test", "gamma.gw.test"]
    );
    let addrs: BTreeSet<_> = routes.iter().map(|r| *r.2.ip()).collect();
    assert_eq!(addrs.len(), 3, "distinct addresses: {routes:?}");
    let caddyfile = std::fs::read_to_string(env.top.join("Caddyfile")).unwrap();
    let traefik = std::fs::read_to_string(env.top.join("traefik.yml")).unwrap();
    for (_, host, up) in &routes {
        assert!(
            caddyfile.contains(&format!("http://{host} {{\n\treverse_proxy {up}")),
            "{caddyfile}"
        );
        assert!(traefik.contains(&format!("Host(`{host}`)")), "{traefik}");
        assert!(traefik.contains(&format!("http://{up}")), "{traefik}");
    }
    assert!(caddyfile.contains("admin off") && caddyfile.contains("auto_https off"));
    let status = env.cli_json(&["status", "--json"]);
    for t in status["tenants"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let route = routes.iter().find(|r| r.0 == name).unwrap();
        assert_eq!(
            t["address"].as_str(),
            Some(route.2.to_string().as_str()),
            "{t}"
        );
    }
    let text = String::from_utf8(env.cli(&["routes"]).stdout).unwrap();
    assert!(
        text.contains("acme.gw.test") && text.contains(&format!("http://{}", routes[0].2)),
        "{text}"
    );

    // A real Caddy routes by hostname; an unknown host gets 404.
    env.start_caddy();
    let (code, body) = env.caddy_get("acme.gw.test");
    assert_eq!((code, body.trim()), (200, "hello from acme"));
    let (code, body) = env.caddy_get("beta.gw.test");
    assert_eq!((code, body.trim()), (200, "hello from beta"));
    let (code, _) = env.caddy_get("nobody.gw.test");
    assert_eq!(code, 404);

    // From inside acme: beta and the unlisted host port are refused, the service answers.
    host_servers(&env.ns);
    let acme = env.pid_of("acme");
    let beta_up = env.upstream("beta");
    assert_refused(connect_from(acme, beta_up), "acme -> beta gateway");
    assert_refused(
        connect_from(acme, UNLISTED.parse().unwrap()),
        "acme -> unlisted host port",
    );
    assert_eq!(
        connect_from(acme, SERVICE.parse().unwrap()).unwrap(),
        "service"
    );
    // The host reaches a tenant only on its gateway port.
    let acme_up = env.upstream("acme");
    let other = SocketAddr::V4(SocketAddrV4::new(*acme_up.ip(), 22));
    let r = env
        .ns
        .within(|| TcpStream::connect_timeout(&other, Duration::from_secs(3)));
    assert!(r.is_err(), "host -> acme:22 connected");

    // Delete: gamma's rules, veth and route go; its address is released.
    let gamma_addr = *env.upstream("gamma").ip();
    let v = env.cli_json(&["tenant", "delete", "gamma"]);
    assert!(v["tombstone"].is_string(), "{v}");
    env.assert_exactly(&["acme", "beta"], "after delete");
    assert!(env.routes().iter().all(|r| r.0 != "gamma"));
    let caddyfile = std::fs::read_to_string(env.top.join("Caddyfile")).unwrap();
    assert!(!caddyfile.contains("gamma"), "{caddyfile}");
    let addresses = std::fs::read_to_string(env.state.join("network/addresses.json")).unwrap();
    assert!(
        !addresses.contains("gamma") && !addresses.contains(&gamma_addr.to_string()),
        "{addresses}"
    );

    // kill -9 of reeved; meanwhile beta's sandbox dies and its data is removed (it is stale
    // now), acme's keeps running. The new reeved adopts acme with the same address and leaves
    // nothing of beta.
    let beta = env.pid_of("beta");
    env.kill_reeved();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(beta),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::fs::rename(env.data.join("beta"), env.top.join("beta-gone")).unwrap();
    assert!(
        env.ns.tenants_in_ruleset().contains("beta"),
        "beta's rules outlive the crash"
    );
    env.start_reeved("2");
    env.wait_running(&["acme"]);
    assert_eq!(env.pid_of("acme"), acme, "acme re-adopted, not restarted");
    env.wait_for("beta gone from nft", 30, |e| {
        !e.ns.tenants_in_ruleset().contains("beta")
    });
    env.assert_exactly(&["acme"], "after kill -9 and restart");
    assert_eq!(
        env.upstream("acme"),
        acme_up,
        "address stable across restarts"
    );
    assert_eq!(env.routes().len(), 1);
    let addresses = std::fs::read_to_string(env.state.join("network/addresses.json")).unwrap();
    assert!(!addresses.contains("beta"), "{addresses}");
    // Caddy, restarted on the new Caddyfile: acme still answers, beta is unknown now.
    env.stop_caddy();
    env.start_caddy();
    let (code, body) = env.caddy_get("acme.gw.test");
    assert_eq!((code, body.trim()), (200, "hello from acme"));
    assert_eq!(env.caddy_get("beta.gw.test").0, 404);

    // A new tenant gets a new address; acme keeps its own.
    let v = env.cli_json(&["tenant", "create", "delta"]);
    assert!(v["data"].is_string(), "{v}");
    env.wait_running(&["delta"]);
    env.wait_http("delta");
    assert_ne!(*env.upstream("delta").ip(), *acme_up.ip());
    env.assert_exactly(&["acme", "delta"], "after create");

    // SIGTERM: every sandbox stopped, bridge and tables removed, route files empty.
    assert!(env.sigterm_reeved().success());
    assert!(!env.ns.has_bridge(), "bridge left after SIGTERM");
    assert_eq!(env.ns.tenants_in_ruleset(), BTreeSet::new());
    let caddyfile = std::fs::read_to_string(env.top.join("Caddyfile")).unwrap();
    assert!(!caddyfile.contains("reverse_proxy"), "{caddyfile}");
    assert!(test_processes(&env.test_id)
        .iter()
        .all(|p| env.caddy.as_ref().is_some_and(|c| c.id() as i32 == *p)));
}

#[test]
fn networking_off_keeps_routes_empty_and_touches_no_network() {
    require_root!();
    let mut env = Env::new("b", &["acme"]);
    let cfg = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        cfg.replace("enabled = true", "enabled = false"),
    )
    .unwrap();
    env.start_reeved("1");
    env.wait_running(&["acme"]);
    let v = env.cli_json(&["routes", "--json"]);
    assert_eq!(v["enabled"], Value::Bool(false));
    assert!(!env.ns.has_bridge());
    assert_eq!(env.ns.tenants_in_ruleset(), BTreeSet::new());
    assert!(!env.top.join("Caddyfile").exists());
    assert!(env.sigterm_reeved().success());
}

#[test]
fn ruleset_parser_finds_tenant_chains() {
    let rules = "table inet reeve {\n\tchain from-acme {\n\t}\n\tmap tenant_to {\n\t\telements = { 10.0.0.2 : jump to-beta-2 }\n\t}\n}\ntable bridge reeve {\n\tchain port-acme {\n\t}\n}\n";
    assert_eq!(
        tenants_in(rules),
        ["acme", "beta-2"].iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(tenants_in("table inet reeve {\n}\n"), BTreeSet::new());
}
