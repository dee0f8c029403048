//! The isolation probe (`tests/probe/reeve-probe.c`) run inside a sandbox the way the gateway
//! would be, next to a second sandbox playing another tenant: every one of its checks is a real
//! attack attempt (files, processes, IPC, network, kernel, cgroups, privileges, and the known
//! runtime escapes), and none may succeed.
//!
//! The world the probe gets: a read-only bind of a host dir as the runtime (`/opt/gateway`),
//! another as the Layer 1 config (`/etc/reeve/layer1`), a writable data dir (`/data`) where it
//! plants symlinks and hard links, a setuid-root copy and a file-capabilities copy of itself, and
//! as context the other tenant's host pid, its data dir as the host sees it, its IPC key, and
//! host sockets and ports that must stay out of reach.

use std::fs;
use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use reeve_tests::*;
use serde_json::Value;

/// Fewer checks than this and the probe is not the probe the issue asked for.
const MIN_CHECKS: usize = 60;

/// Build `tests/probe/reeve-probe.c` with `tests/probe/build.sh` into `out`.
fn build_reeve_probe(out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("probe/build.sh");
    let o = Command::new("sh")
        .arg(&script)
        .arg(out)
        .output()
        .expect("run tests/probe/build.sh");
    assert!(
        o.status.success(),
        "{} {}: {}",
        script.display(),
        out.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The probe, built once per test process into cargo's scratch dir for integration tests
/// (under a temporary name, then renamed: concurrent test processes never see half a file).
fn probe_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let tmp = dir.join(format!("reeve-probe.{}", std::process::id()));
            build_reeve_probe(&tmp);
            let out = dir.join("reeve-probe");
            fs::rename(&tmp, &out).expect("rename the built probe");
            out
        })
        .clone()
}

fn have_gcc() -> bool {
    Command::new("gcc")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

macro_rules! require_gcc {
    () => {
        if !have_gcc() {
            eprintln!(
                "SKIPPED {}: gcc is needed to build the probe",
                module_path!()
            );
            return;
        }
    };
}

/// One verdict line of the probe.
#[derive(Debug, Clone)]
struct Verdict {
    check: String,
    verdict: String,
    errno: Option<String>,
    reason: String,
}

/// The verdicts and the summary line of a probe run (`--json`).
fn parse_verdicts(stdout: &str) -> (Vec<Verdict>, Value) {
    let mut verdicts = Vec::new();
    let mut summary = Value::Null;
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("probe line is not JSON ({e}): {line}"));
        if let Some(s) = v.get("summary") {
            summary = s.clone();
            continue;
        }
        verdicts.push(Verdict {
            check: v["check"].as_str().unwrap_or_default().to_string(),
            verdict: v["verdict"].as_str().unwrap_or_default().to_string(),
            errno: v["errno"].as_str().map(String::from),
            reason: v["reason"].as_str().unwrap_or_default().to_string(),
        });
    }
    (verdicts, summary)
}

fn print_table(title: &str, verdicts: &[Verdict]) {
    eprintln!("---- {title}: {} checks ----", verdicts.len());
    for v in verdicts {
        eprintln!(
            "{:<8} {:<38} {:<12} {}",
            v.verdict,
            v.check,
            v.errno.as_deref().unwrap_or(""),
            v.reason
        );
    }
}

/// The first IPv4 address of the host outside loopback, as `ip -o -4 addr` prints it.
fn host_ipv4() -> Option<String> {
    let o = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = text.lines().next()?;
    let mut it = line.split_whitespace();
    it.find(|w| *w == "inet")?;
    Some(it.next()?.split('/').next()?.to_string())
}

/// A host network interface other than lo.
fn host_iface() -> Option<String> {
    list_dir(Path::new("/sys/class/net"))
        .into_iter()
        .find(|n| n != "lo")
}

/// `security.capability` (VFS_CAP_REVISION_2, effective) granting `caps` as permitted.
fn set_file_caps(path: &Path, caps: &[u32]) {
    let mask = caps.iter().fold(0u64, |m, c| m | (1u64 << c));
    let mut v = Vec::with_capacity(20);
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    v.extend_from_slice(&(mask as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&((mask >> 32) as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: both pointers are valid NUL-terminated strings / a buffer of v.len() bytes.
    let rc = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"security.capability".as_ptr(),
            v.as_ptr().cast(),
            v.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr security.capability on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;

/// The other tenant and the host listeners, alive while the probe runs.
struct World<'h> {
    _peer: Container<'h>,
    peer_pid: i32,
    probe_bin: PathBuf,
    peer_data: PathBuf,
    canary: String,
    runtime: PathBuf,
    layer1: PathBuf,
    data: PathBuf,
    args: Vec<String>,
    _tcp: std::net::TcpListener,
    _abstract: UnixListener,
    _unix: UnixListener,
}

const RUNTIME_FILE: &str = "gateway";
const RUNTIME_CONTENT: &str = "#!/bin/sh\necho the gateway\n";
const LAYER1_FILE: &str = "layer1.toml";
const LAYER1_CONTENT: &str = "[tenant]\nname = \"probe\"\n";

impl<'h> World<'h> {
    fn new(h: &'h Harness) -> World<'h> {
        static WORLDS: AtomicU32 = AtomicU32::new(0);
        // Unique per world: tests of this file run in parallel in one process.
        let me = std::process::id() * 8 + WORLDS.fetch_add(1, Ordering::Relaxed);
        let probe_bin = probe_binary();

        let canary = format!("REEVE-PEER-CANARY-{me}");
        let marker = format!("reeve-probe-peer-{me}");
        let key = format!("0x{:08x}", 0x5200_0000u32 | (me & 0xffff));
        let peer_port = 20000 + (me % 20000);

        // The other tenant: serves SysV/POSIX IPC, an abstract socket and a TCP port, and keeps
        // a secret in its data dir.
        let peer_data = h.dir().join("peer-data");
        fs::create_dir(&peer_data).expect("peer data dir");
        fs::write(peer_data.join("secret"), format!("{canary}\n")).expect("peer secret");
        let mut pb = h.bundle();
        fs::copy(&probe_bin, pb.rootfs().join("bin/reeve-probe")).expect("install peer probe");
        fs::create_dir_all(pb.rootfs().join("data")).expect("peer /data");
        pb.add_mount(serde_json::json!({"destination": "/data", "type": "bind",
            "source": peer_data.to_str().expect("utf-8"), "options": ["rbind", "rw"]}));
        let port_s = peer_port.to_string();
        pb.set_args(&[
            "/bin/reeve-probe",
            "--peer-serve",
            "--marker",
            &marker,
            "--peer-key",
            &key,
            "--listen",
            &port_s,
            "--data-dir",
            "/data",
            "--peer-canary",
            &canary,
        ]);
        let (peer, out) = h.create(&pb);
        out.assert_ok();
        peer.start().assert_ok();
        assert!(
            poll(Duration::from_secs(10), || peer_data
                .join("ready")
                .exists()
                .then_some(()))
            .is_some(),
            "the peer tenant never got ready"
        );
        let peer_pid = peer.pid();
        assert!(peer_pid > 0);

        // Host listeners that must stay unreachable.
        let tcp = std::net::TcpListener::bind("0.0.0.0:0").expect("host TCP listener");
        let host_port = tcp.local_addr().expect("addr").port();
        let abstract_name = format!("reeve-probe-host-{me}");
        let abs = UnixListener::bind_addr(
            &SocketAddr::from_abstract_name(abstract_name.as_bytes()).expect("abstract name"),
        )
        .expect("host abstract socket");
        let unix_path = h.dir().join("host.sock");
        let unix = UnixListener::bind(&unix_path).expect("host unix socket");

        // The runtime, Layer 1 and data dirs on the host.
        let runtime = h.dir().join("runtime");
        let layer1 = h.dir().join("layer1");
        let data = h.dir().join("data");
        for d in [&runtime, &layer1, &data] {
            fs::create_dir(d).expect("mkdir");
        }
        fs::write(runtime.join(RUNTIME_FILE), RUNTIME_CONTENT).expect("runtime file");
        fs::write(layer1.join(LAYER1_FILE), LAYER1_CONTENT).expect("layer1 file");
        // World-writable so that the unprivileged run can plant links too.
        fs::set_permissions(&data, fs::Permissions::from_mode(0o777)).expect("chmod data");

        let root_dev = fs::metadata("/").expect("stat /").dev();
        let mut args: Vec<String> = [
            "/bin/reeve-probe",
            "--json",
            "--runtime-dir",
            "/opt/gateway",
            "--layer1-dir",
            "/etc/reeve/layer1",
            "--data-dir",
            "/data",
            "--suid-bin",
            "/bin/reeve-probe-suid",
            "--fcaps-bin",
            "/bin/reeve-probe-fcaps",
            "--fcaps-wide-bin",
            "/bin/reeve-probe-fcaps-wide",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut ctx = |k: &str, v: String| {
            args.push(k.to_string());
            args.push(v);
        };
        ctx(
            "--peer-file",
            peer_data.join("secret").to_string_lossy().into(),
        );
        ctx("--peer-inner", "/data/secret".into());
        ctx("--peer-canary", canary.clone());
        ctx("--peer-pid", peer_pid.to_string());
        ctx("--peer-marker", marker);
        ctx("--peer-key", key);
        ctx("--peer-addr", format!("127.0.0.1:{peer_port}"));
        ctx("--host-port", format!("127.0.0.1:{host_port}"));
        if let Some(ip) = host_ipv4() {
            ctx("--host-addr", format!("{ip}:{host_port}"));
        }
        ctx("--host-abstract", abstract_name);
        ctx("--host-unix", unix_path.to_string_lossy().into());
        ctx(
            "--host-root-dev",
            format!("{}:{}", libc::major(root_dev), libc::minor(root_dev)),
        );
        if let Some(i) = host_iface() {
            ctx("--host-iface", i);
        }
        World {
            _peer: peer,
            peer_pid,
            probe_bin,
            peer_data,
            canary,
            runtime,
            layer1,
            data,
            args,
            _tcp: tcp,
            _abstract: abs,
            _unix: unix,
        }
    }

    /// A bundle with the probe, its setuid and file-caps copies, and the three binds.
    fn probe_bundle(&self, h: &Harness) -> Bundle {
        let mut b = h.bundle();
        let bin = b.rootfs().join("bin");
        fs::copy(&self.probe_bin, bin.join("reeve-probe")).expect("install probe");
        let suid = bin.join("reeve-probe-suid");
        fs::copy(&self.probe_bin, &suid).expect("install setuid probe");
        std::os::unix::fs::chown(&suid, Some(0), Some(0)).expect("chown setuid probe");
        fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).expect("chmod 4755");
        // Capabilities the sandbox's bounding set holds: only no_new_privs stops an
        // unprivileged user from gaining them.
        let fcaps = bin.join("reeve-probe-fcaps");
        fs::copy(&self.probe_bin, &fcaps).expect("install fcaps probe");
        set_file_caps(&fcaps, &[CAP_KILL, CAP_NET_BIND_SERVICE]);
        // Capabilities outside the bounding set.
        let wide = bin.join("reeve-probe-fcaps-wide");
        fs::copy(&self.probe_bin, &wide).expect("install wide fcaps probe");
        set_file_caps(&wide, &[CAP_SYS_ADMIN, CAP_NET_RAW, CAP_DAC_OVERRIDE]);
        for d in ["opt/gateway", "etc/reeve/layer1", "data"] {
            fs::create_dir_all(b.rootfs().join(d)).expect("mount point");
        }
        for (dest, src, rw) in [
            ("/opt/gateway", &self.runtime, "ro"),
            ("/etc/reeve/layer1", &self.layer1, "ro"),
            ("/data", &self.data, "rw"),
        ] {
            b.add_mount(serde_json::json!({"destination": dest, "type": "bind",
                "source": src.to_str().expect("utf-8"), "options": ["rbind", rw]}));
        }
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        b.set_args(&args);
        b
    }

    /// Panic unless the host's files are as the test wrote them and nothing was left behind.
    #[track_caller]
    fn assert_host_untouched(&self, h: &Harness) {
        assert_eq!(
            fs::read_to_string(self.runtime.join(RUNTIME_FILE)).expect("runtime file"),
            RUNTIME_CONTENT
        );
        assert_eq!(list_dir(&self.runtime), [RUNTIME_FILE]);
        assert_eq!(
            fs::read_to_string(self.layer1.join(LAYER1_FILE)).expect("layer1 file"),
            LAYER1_CONTENT
        );
        assert_eq!(list_dir(&self.layer1), [LAYER1_FILE]);
        assert_eq!(
            fs::read_to_string(self.peer_data.join("secret")).expect("peer secret"),
            format!("{}\n", self.canary)
        );
        let leftovers: Vec<String> = list_dir(&self.data)
            .into_iter()
            .filter(|n| n.starts_with("reeve-probe"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "the probe left {leftovers:?} in the data dir"
        );
        let dir = h.dir().to_string_lossy().into_owned();
        let leaked: Vec<_> = host_mounts()
            .into_iter()
            .filter(|m| m.mount_point.starts_with(&dir))
            .collect();
        assert!(leaked.is_empty(), "host mounts under {dir}: {leaked:#?}");
    }
}

/// Check the verdicts of one run: enough checks, every one named with a reason, no context
/// missing that the test gave, no error, and no escape.
#[track_caller]
fn assert_no_escape(title: &str, out: &Output, given: &[String]) -> Vec<Verdict> {
    assert!(!out.timed_out, "{title}: the probe timed out:\n{out}");
    let (verdicts, summary) = parse_verdicts(&out.stdout);
    print_table(title, &verdicts);
    eprintln!("{title}: summary {summary}");
    assert!(
        verdicts.len() >= MIN_CHECKS,
        "{title}: only {} checks ran:\n{out}",
        verdicts.len()
    );
    let mut names: Vec<&str> = verdicts.iter().map(|v| v.check.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        verdicts.len(),
        "{title}: duplicate check names"
    );
    for v in &verdicts {
        assert!(
            v.check.contains('.') && !v.reason.trim().is_empty(),
            "{title}: check without a name or a reason: {v:?}"
        );
        assert!(
            ["blocked", "escaped", "error", "skipped"].contains(&v.verdict.as_str()),
            "{title}: unknown verdict {v:?}"
        );
        if v.verdict == "skipped" {
            if let Some(flag) = v.reason.split("give ").nth(1) {
                assert!(
                    !given.iter().any(|g| g == flag.trim()),
                    "{title}: {} skipped for lack of {flag}, which the test gave",
                    v.check
                );
            }
        }
    }
    let count = |k: &str| verdicts.iter().filter(|v| v.verdict == k).count() as u64;
    for k in ["blocked", "escaped", "error", "skipped"] {
        assert_eq!(summary[k].as_u64(), Some(count(k)), "{title}: summary {k}");
    }
    let escaped: Vec<String> = verdicts
        .iter()
        .filter(|v| v.verdict == "escaped")
        .map(|v| format!("{}: {}", v.check, v.reason))
        .collect();
    let errors: Vec<String> = verdicts
        .iter()
        .filter(|v| v.verdict == "error")
        .map(|v| format!("{}: {} ({:?})", v.check, v.reason, v.errno))
        .collect();
    assert_eq!(
        out.code,
        Some(if escaped.is_empty() { 0 } else { 1 }),
        "{title}: the exit status must say whether anything escaped:\n{out}"
    );
    assert!(
        errors.is_empty(),
        "{title}: checks that could not run:\n{}",
        errors.join("\n")
    );
    assert!(
        escaped.is_empty(),
        "{title}: the sandbox let {} attempts through:\n{}",
        escaped.len(),
        escaped.join("\n")
    );
    verdicts
}

fn given_flags(args: &[String]) -> Vec<String> {
    args.iter()
        .filter(|a| a.starts_with("--"))
        .cloned()
        .collect()
}

#[test]
fn probe_finds_no_escape_as_root() {
    require_root!();
    require_gcc!();
    let h = Harness::new("probe-root");
    let w = World::new(&h);
    let b = w.probe_bundle(&h);
    let out = h.run(&b);
    w.assert_host_untouched(&h);
    let v = assert_no_escape("probe as uid 0", &out, &given_flags(&w.args));
    // The checks that need the other tenant really ran against it.
    for name in [
        "proc.signal_other_tenant",
        "ipc.sysv_shm_other_tenant",
        "files.abs_path_other_tenant",
        "priv.setuid_binary",
        "priv.file_caps_binary",
    ] {
        let c = v.iter().find(|c| c.check == name).expect(name);
        assert_eq!(c.verdict, "blocked", "{c:?}");
    }
    assert!(w.peer_pid > 0);
}

#[test]
fn probe_finds_no_escape_as_an_unprivileged_user() {
    require_root!();
    require_gcc!();
    let h = Harness::new("probe-user");
    let w = World::new(&h);
    let mut b = w.probe_bundle(&h);
    b.set_user(1000, 1000, &[]);
    let out = h.run(&b);
    w.assert_host_untouched(&h);
    let v = assert_no_escape("probe as uid 1000", &out, &given_flags(&w.args));
    let suid = v
        .iter()
        .find(|c| c.check == "priv.setuid_binary")
        .expect("setuid check");
    assert!(suid.reason.contains("euid 1000"), "{suid:?}");
}

/// CVE-2019-5736 from inside: while the probe watches /proc, `reevec exec` enters the sandbox
/// again and again; no process that appears may have a writable exe.
#[test]
fn probe_races_exec_for_the_runtime_binary() {
    require_root!();
    require_gcc!();
    if kind_under_test() != Kind::Reevec {
        eprintln!("SKIPPED: the exec race is run against reevec only");
        return;
    }
    let h = Harness::new("probe-race");
    let probe = probe_binary();
    let data = h.dir().join("data");
    fs::create_dir(&data).expect("data dir");
    let mut b = h.bundle();
    fs::copy(&probe, b.rootfs().join("bin/reeve-probe")).expect("install probe");
    fs::create_dir_all(b.rootfs().join("data")).expect("/data");
    b.add_mount(serde_json::json!({"destination": "/data", "type": "bind",
        "source": data.to_str().expect("utf-8"), "options": ["rbind", "rw"]}));
    b.set_script(
        "exec /bin/reeve-probe --json --only cve_2019_5736. --race-ms 25000 --data-dir /data \
         > /data/race.json 2>&1",
    );
    let (c, out) = h.create(&b);
    out.assert_ok();
    c.start().assert_ok();
    assert!(
        poll(Duration::from_secs(10), || data
            .join("race-ready")
            .exists()
            .then_some(()))
        .is_some(),
        "the probe never started watching"
    );
    let execs = 5;
    for _ in 0..execs {
        h.exec(&["exec", c.id.as_str(), "sleep", "0.1"]).assert_ok();
    }
    fs::write(data.join("race-stop"), "").expect("end the watch");
    assert!(
        c.wait_status("stopped", Duration::from_secs(20)),
        "the probe did not finish"
    );
    let mut text = String::new();
    fs::File::open(data.join("race.json"))
        .expect("race.json")
        .read_to_string(&mut text)
        .expect("read race.json");
    let (verdicts, _) = parse_verdicts(&text);
    print_table("exec race", &verdicts);
    let race = verdicts
        .iter()
        .find(|v| v.check == "cve_2019_5736.runtime_exe_write")
        .unwrap_or_else(|| panic!("no race verdict in:\n{text}"));
    assert_eq!(race.verdict, "blocked", "{race:?}");
    assert!(
        race.reason.contains("during the exec race"),
        "the race window ran: {race:?}"
    );
    let seen: u32 = race
        .reason
        .split("of the ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // Its own parent (pid 1) and the processes of the execs, give or take one missed.
    assert!(
        seen >= execs,
        "the probe must have seen the exec'd processes ({execs} execs): {race:?}"
    );
}

/// `tests/expectations/probe-runc.txt` names every check of the probe exactly once, with a
/// verdict and a reason, and nothing else.
#[test]
fn runc_expectations_cover_every_check() {
    require_gcc!();
    let o = Command::new(probe_binary())
        .arg("--list")
        .output()
        .expect("run probe --list");
    assert!(o.status.success(), "probe --list failed");
    let listed: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect();
    assert!(listed.len() >= MIN_CHECKS, "only {} checks", listed.len());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("expectations/probe-runc.txt");
    let text = fs::read_to_string(&path).expect("read probe-runc.txt");
    let mut expected: Vec<String> = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "check<TAB>verdict<TAB>reason: {line}");
        assert!(
            ["blocked", "escaped", "error", "skipped"].contains(&f[1]),
            "verdict of {line}"
        );
        assert!(!f[2].trim().is_empty(), "reason of {line}");
        expected.push(f[0].to_string());
    }
    assert_eq!(
        expected,
        listed,
        "{} must list the probe's checks in its order",
        path.display()
    );
}
