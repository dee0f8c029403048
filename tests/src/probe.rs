//! The isolation probe (`tests/probe/reeve-probe.c`) as the tests use it: the binary that
//! `tests/build.rs` built, its JSON verdicts, and [`World`]: a second sandbox playing another
//! tenant plus host listeners, files and links that must stay out of reach, and the probe
//! bundle that attacks them. Shared by `tests/tests/probe.rs` (host) and
//! `tests/tests/isolation_vm.rs` (VM, cross-checked under runc).

use std::collections::BTreeMap;
use std::fs;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::*;

/// Fewer checks than this and the probe is not the probe the issue asked for.
pub const MIN_CHECKS: usize = 60;

/// The probe built by `tests/build.rs` (`target/<profile>/reeve-probe`), or why it was not built.
pub fn probe_bin() -> Result<PathBuf, String> {
    let p = env!("REEVE_PROBE");
    if p.is_empty() {
        return Err(env!("REEVE_PROBE_ERROR").to_string());
    }
    let p = PathBuf::from(p);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{} is missing (rebuild reeve-tests)", p.display()))
    }
}

/// Return from the test (after saying why) unless the probe was built.
#[macro_export]
macro_rules! require_probe {
    () => {
        if let Err(e) = $crate::probe::probe_bin() {
            eprintln!("SKIPPED {}: the probe was not built: {e}", module_path!());
            return;
        }
    };
}

/// One verdict line of the probe.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub check: String,
    pub verdict: String,
    pub errno: Option<String>,
    pub reason: String,
}

/// The verdicts and the summary line of a probe run (`--json`).
pub fn parse_verdicts(stdout: &str) -> (Vec<Verdict>, Value) {
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

pub fn print_table(title: &str, verdicts: &[Verdict]) {
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
pub fn host_ipv4() -> Option<String> {
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
pub fn host_iface() -> Option<String> {
    list_dir(Path::new("/sys/class/net"))
        .into_iter()
        .find(|n| n != "lo")
}

/// `security.capability` (effective) granting `caps` as permitted: VFS_CAP_REVISION_2, or with
/// `rootid` VFS_CAP_REVISION_3, valid in the user namespace whose root is host uid `rootid`.
fn set_file_caps(path: &Path, caps: &[u32], rootid: Option<u32>) {
    let mask = caps.iter().fold(0u64, |m, c| m | (1u64 << c));
    let mut v = Vec::with_capacity(24);
    let rev: u32 = if rootid.is_some() {
        0x0300_0000
    } else {
        0x0200_0000
    };
    v.extend_from_slice(&(rev | 1).to_le_bytes());
    v.extend_from_slice(&(mask as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&((mask >> 32) as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    if let Some(r) = rootid {
        v.extend_from_slice(&r.to_le_bytes());
    }
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
pub struct World<'h> {
    _peer: Container<'h>,
    pub peer_pid: i32,
    probe_bin: PathBuf,
    peer_data: PathBuf,
    canary: String,
    runtime: PathBuf,
    layer1: PathBuf,
    data: PathBuf,
    pub args: Vec<String>,
    _tcp: std::net::TcpListener,
    _abstract: UnixListener,
    _unix: UnixListener,
}

const RUNTIME_FILE: &str = "gateway";
const RUNTIME_CONTENT: &str = "#!/bin/sh\necho the gateway\n";
const LAYER1_FILE: &str = "layer1.toml";
const LAYER1_CONTENT: &str = "[tenant]\nname = \"probe\"\n";

impl<'h> World<'h> {
    pub fn new(h: &'h Harness) -> World<'h> {
        static WORLDS: AtomicU32 = AtomicU32::new(0);
        // Unique per world: tests of this file run in parallel in one process.
        let me = std::process::id() * 8 + WORLDS.fetch_add(1, Ordering::Relaxed);
        let probe_bin = probe_bin().unwrap_or_else(|e| panic!("the probe was not built: {e}"));

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
        install_executable(&probe_bin, &pb.rootfs().join("bin/reeve-probe"));
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
    pub fn probe_bundle(&self, h: &Harness) -> Bundle {
        self.probe_bundle_as(h, None)
    }

    /// [`World::probe_bundle`]; with `userns_base`, in a new user namespace mapping container
    /// ids 0..65536 to host ids from `userns_base` (as reeved does): the setuid copy belongs to
    /// the namespace's root and the file capabilities are VFS_CAP_REVISION_3 for that root, so
    /// that only no_new_privs stands between them and their privileges.
    pub fn probe_bundle_as(&self, h: &Harness, userns_base: Option<u32>) -> Bundle {
        let mut b = h.bundle();
        let owner = userns_base.unwrap_or(0);
        let bin = b.rootfs().join("bin");
        install_executable(&self.probe_bin, &bin.join("reeve-probe"));
        let suid = bin.join("reeve-probe-suid");
        install_executable(&self.probe_bin, &suid);
        std::os::unix::fs::chown(&suid, Some(owner), Some(owner)).expect("chown setuid probe");
        fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).expect("chmod 4755");
        // Capabilities the sandbox's bounding set holds: only no_new_privs stops an
        // unprivileged user from gaining them.
        let fcaps = bin.join("reeve-probe-fcaps");
        install_executable(&self.probe_bin, &fcaps);
        set_file_caps(&fcaps, &[CAP_KILL, CAP_NET_BIND_SERVICE], userns_base);
        // Capabilities outside the bounding set.
        let wide = bin.join("reeve-probe-fcaps-wide");
        install_executable(&self.probe_bin, &wide);
        set_file_caps(
            &wide,
            &[CAP_SYS_ADMIN, CAP_NET_RAW, CAP_DAC_OVERRIDE],
            userns_base,
        );
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
        if let Some(base) = userns_base {
            let spec = b.spec_mut();
            let ns = spec["linux"]["namespaces"]
                .as_array_mut()
                .expect("linux.namespaces is an array");
            if !ns.iter().any(|n| n["type"] == "user") {
                ns.push(serde_json::json!({"type": "user"}));
            }
            let map = serde_json::json!([{"containerID": 0, "hostID": base, "size": 65536}]);
            spec["linux"]["uidMappings"] = map.clone();
            spec["linux"]["gidMappings"] = map;
        }
        b
    }

    /// Panic unless the host's files are as the test wrote them and nothing was left behind.
    #[track_caller]
    pub fn assert_host_untouched(&self, h: &Harness) {
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
pub fn assert_no_escape(title: &str, out: &Output, given: &[String]) -> Vec<Verdict> {
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

pub fn given_flags(args: &[String]) -> Vec<String> {
    args.iter()
        .filter(|a| a.starts_with("--"))
        .cloned()
        .collect()
}

/// One line of `tests/expectations/probe-runc.txt`: what runc measured for a check, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub check: String,
    pub verdict: String,
    pub reason: String,
}

/// `check<TAB>verdict<TAB>reason` lines; `#` comments and empty lines are ignored.
pub fn parse_expectations(text: &str) -> Result<Vec<Expectation>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 3 {
            return Err(format!(
                "line {}: want check<TAB>verdict<TAB>reason: {line}",
                n + 1
            ));
        }
        if !["blocked", "escaped", "error", "skipped"].contains(&f[1]) {
            return Err(format!("line {}: unknown verdict {:?}", n + 1, f[1]));
        }
        if f[2].trim().is_empty() {
            return Err(format!("line {}: {} has no reason", n + 1, f[0]));
        }
        if out.iter().any(|e: &Expectation| e.check == f[0]) {
            return Err(format!("line {}: {} listed twice", n + 1, f[0]));
        }
        out.push(Expectation {
            check: f[0].to_string(),
            verdict: f[1].to_string(),
            reason: f[2].to_string(),
        });
    }
    Ok(out)
}

/// Everything wrong with a cross-check of the same bundle under reevec and runc: a check that
/// is not blocked under reevec (skipped is fine only when runc skipped it too), a runc verdict
/// other than the listed one (so a listed difference that went away fails as well), a check
/// the list lacks or a listed check the probe no longer has, and a difference in which runc is
/// the stricter one.
pub fn cross_check_problems(
    reevec: &[Verdict],
    runc: &[Verdict],
    expected: &[Expectation],
) -> Vec<String> {
    let mut problems = Vec::new();
    let theirs: BTreeMap<&str, &Verdict> = runc.iter().map(|v| (v.check.as_str(), v)).collect();
    let listed: BTreeMap<&str, &Expectation> =
        expected.iter().map(|e| (e.check.as_str(), e)).collect();
    for ours in reevec {
        let name = ours.check.as_str();
        let Some(r) = theirs.get(name) else {
            problems.push(format!("{name}: ran under reevec but not under runc"));
            continue;
        };
        match ours.verdict.as_str() {
            "blocked" => {}
            "skipped" if r.verdict == "skipped" => {}
            v => problems.push(format!("{name}: {v} under reevec: {}", ours.reason)),
        }
        if r.verdict != ours.verdict && r.verdict == "blocked" {
            problems.push(format!(
                "{name}: runc blocks it but reevec says {}: {}",
                ours.verdict, ours.reason
            ));
        }
        match listed.get(name) {
            None => problems.push(format!(
                "{name}: not in the expectations (runc: {} {})",
                r.verdict, r.reason
            )),
            Some(e) if e.verdict != r.verdict => problems.push(format!(
                "{name}: the expectations say runc {} ({}), but runc measured {}: {}",
                e.verdict, e.reason, r.verdict, r.reason
            )),
            Some(_) => {}
        }
    }
    for v in runc {
        if !reevec.iter().any(|o| o.check == v.check) {
            problems.push(format!("{}: ran under runc but not under reevec", v.check));
        }
    }
    for e in expected {
        if !reevec.iter().any(|o| o.check == e.check) {
            problems.push(format!(
                "{}: listed in the expectations, but the probe has no such check (stale line)",
                e.check
            ));
        }
    }
    problems
}

/// The expectations file as measured: one line per check with runc's verdict and reason.
pub fn measured_expectations(runc: &[Verdict]) -> String {
    runc.iter()
        .map(|v| {
            let why = match &v.errno {
                Some(e) if !v.reason.starts_with(e.as_str()) => format!("{e}: {}", v.reason),
                _ => v.reason.clone(),
            };
            format!("{}\t{}\t{}\n", v.check, v.verdict, why.replace('\t', " "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(check: &str, verdict: &str) -> Verdict {
        Verdict {
            check: check.into(),
            verdict: verdict.into(),
            errno: None,
            reason: format!("{check} was {verdict}"),
        }
    }

    const LIST: &str =
        "# comment\n\na.one\tblocked\tEPERM\nb.two\tescaped\tlibseccomp keeps ALLOW\n";

    #[test]
    fn expectations_parse_and_refuse_bad_lines() {
        let e = parse_expectations(LIST).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].verdict, "escaped");
        assert!(parse_expectations("a.one\tblocked\n").is_err());
        assert!(parse_expectations("a.one\tmaybe\twhy\n").is_err());
        assert!(parse_expectations("a.one\tblocked\t \n").is_err());
        assert!(parse_expectations("a.one\tblocked\tx\na.one\tblocked\ty\n").is_err());
    }

    #[test]
    fn a_listed_difference_passes_and_everything_else_fails() {
        let e = parse_expectations(LIST).unwrap();
        let ours = [v("a.one", "blocked"), v("b.two", "blocked")];
        let ok = [v("a.one", "blocked"), v("b.two", "escaped")];
        assert_eq!(cross_check_problems(&ours, &ok, &e), Vec::<String>::new());
        // runc got stricter: the listed difference is stale.
        let stale = [v("a.one", "blocked"), v("b.two", "blocked")];
        let p = cross_check_problems(&ours, &stale, &e);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("runc measured blocked"), "{p:?}");
        // An unlisted difference.
        let unlisted = [v("a.one", "escaped"), v("b.two", "escaped")];
        assert_eq!(cross_check_problems(&ours, &unlisted, &e).len(), 1);
        // An escape under reevec.
        let bad = [v("a.one", "escaped"), v("b.two", "blocked")];
        let p = cross_check_problems(&bad, &ok, &e);
        assert!(
            p.iter().any(|l| l.contains("escaped under reevec")),
            "{p:?}"
        );
        // A check the list does not know, and a listed check the probe lost.
        let more = [v("a.one", "blocked"), v("c.three", "blocked")];
        let p = cross_check_problems(&more, &more, &e);
        assert!(p
            .iter()
            .any(|l| l.contains("c.three: not in the expectations")));
        assert!(p
            .iter()
            .any(|l| l.contains("b.two: listed") && l.contains("stale")));
    }

    #[test]
    fn skipped_only_when_both_skip() {
        let e = parse_expectations("a.one\tskipped\tno host address\n").unwrap();
        let s = [v("a.one", "skipped")];
        assert!(cross_check_problems(&s, &s, &e).is_empty());
        let p = cross_check_problems(&s, &[v("a.one", "blocked")], &e);
        assert!(!p.is_empty());
    }

    #[test]
    fn measured_lines_round_trip() {
        let mut r = v("a.one", "blocked");
        r.errno = Some("EPERM".into());
        let text = measured_expectations(&[r, v("b.two", "escaped")]);
        let e = parse_expectations(&text).unwrap();
        assert_eq!(e[0].reason, "EPERM: a.one was blocked");
        assert_eq!(e[1].verdict, "escaped");
    }
}
