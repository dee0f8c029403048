//! Shared helpers for the end-to-end tests of `reevec` (and of the reference runtime crun).
//!
//! A test makes a [`Harness`] (a temp dir, a private `--root` state dir, unique container ids and
//! a guard that force-deletes every container it created), asks it for [`Bundle`]s (a busybox
//! root filesystem plus the `config.json` that `reevec spec` writes, edited as JSON), and runs
//! runtime verbs through it with a timeout.
//!
//! Environment:
//! - `REEVEC`: the `reevec` binary (else `$CARGO_TARGET_DIR` or `<workspace>/target`, then
//!   `debug/reevec` or `release/reevec`, whichever is newer).
//! - `REEVE_E2E_RUNTIME=crun`: run the suite against crun (to validate the tests themselves;
//!   reevec-specific checks such as error wording then fail by design).
//! - `REEVE_E2E_CGROUP_MANAGER`: the `--cgroup-manager` given to reevec. Default: `disabled` on a
//!   host whose `/sys/fs/cgroup` is not a cgroup2 mount (a hybrid host must never get cgroups
//!   created by a test), the runtime's own default otherwise.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod contract;
pub mod probe;

/// How long any runtime command may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Busybox applets linked into every test rootfs as `/bin/<applet>`.
pub const APPLETS: &[&str] = &[
    "sh", "cat", "ls", "id", "hostname", "mount", "umount", "ip", "echo", "sleep", "readlink",
    "unshare", "grep", "true", "false", "test", "env", "ps", "kill", "touch", "mkdir", "head",
    "tr", "wc", "stat", "pwd", "printf", "nsenter", "chroot", "ln", "rm", "sed", "tail", "cut",
];

/// Where the static busybox comes from (Debian package busybox-static).
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// Whether the tests run as root (they need it; they skip otherwise).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Return from the test (after saying why) unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!(
                "SKIPPED {}: the end-to-end tests need root (namespaces, mounts, pivot_root)",
                module_path!()
            );
            return;
        }
    };
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lies in the workspace")
        .to_path_buf()
}

/// The `reevec` binary under test. Panics with the fix when it is not built.
pub fn reevec_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REEVEC") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "REEVEC={} is not a file", p.display());
        return p;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    // Also next to the running test binary (<profile>/deps/X -> <profile>/reevec): that is
    // where tests/vm/run.sh puts it in the test VM, where no CARGO_TARGET_DIR is set.
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("reevec")));
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("reevec"))
        .chain(beside_exe)
        .filter_map(|p| {
            let m = fs::metadata(&p).ok()?.modified().ok()?;
            Some((m, p))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, p)) => p,
        None => panic!(
            "reevec binary not found in {}/debug or {}/release: run `cargo build -p reeve-runtime` \
             (with the same CARGO_TARGET_DIR) first, or set REEVEC=/path/to/reevec",
            target.display(),
            target.display()
        ),
    }
}

/// Whether this runs in the test VM (`REEVE_IN_VM=1`, set by tests/vm/run.sh). Elsewhere it says
/// SKIPPED for `test`, with the command that runs the test binary `binary` in the VM.
pub fn in_vm(test: &str, binary: &str) -> bool {
    if std::env::var("REEVE_IN_VM").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: runs only in the test VM (REEVE_IN_VM=1): \
         tests/vm/cargo-vm-test.sh -p reeve-tests --test {binary} -- --test-threads=1"
    );
    false
}

/// Straight to stderr, past libtest's capture (numbers and tables for people).
pub fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Whether `/sys/fs/cgroup` is a pure cgroup v2 mount.
pub fn host_is_cgroup2() -> bool {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) => s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC,
        Err(_) => false,
    }
}

/// Which runtime a [`Harness`] drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reevec,
    Crun,
    /// runc 1.1.5; only where it can make cgroups (the test VM): it has no cgroup-less mode.
    Runc,
}

/// The path of runc, when installed.
pub fn runc_bin() -> Option<PathBuf> {
    [
        "/usr/bin/runc",
        "/usr/sbin/runc",
        "/usr/local/bin/runc",
        "/usr/local/sbin/runc",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// The path of crun, when installed.
pub fn crun_bin() -> Option<PathBuf> {
    ["/usr/bin/crun", "/usr/local/bin/crun"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The runtime the suite tests: reevec unless `REEVE_E2E_RUNTIME=crun`.
pub fn kind_under_test() -> Kind {
    match std::env::var("REEVE_E2E_RUNTIME").as_deref() {
        Ok("crun") => Kind::Crun,
        Ok("reevec") | Err(_) => Kind::Reevec,
        Ok(other) => panic!("REEVE_E2E_RUNTIME={other}: use reevec or crun"),
    }
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Terminating signal, when killed.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panic with everything known unless the command exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.success(), "command failed:\n{self}");
        self
    }

    /// Panic unless the command exited non-zero (and was not killed by the timeout).
    #[track_caller]
    pub fn assert_fails(&self) -> &Self {
        assert!(!self.timed_out, "command timed out:\n{self}");
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "command should have failed:\n{self}"
        );
        self
    }

    /// stdout and stderr together, for searching error messages.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "$ {}", self.cmdline)?;
        writeln!(
            f,
            "exit code: {:?}, signal: {:?}, timed out: {}",
            self.code, self.signal, self.timed_out
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// A command started in the background, with its output going to files.
pub struct Running {
    child: Child,
    cmdline: String,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
}

impl Running {
    /// Start `cmd` with stdin from /dev/null and stdout/stderr into files under `dir`.
    /// Files (not pipes) so that a container that inherits them never blocks the reader.
    pub fn spawn(mut cmd: Command, dir: &Path) -> Running {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let out = dir.join(format!("cmd-{n}.out"));
        let err = dir.join(format!("cmd-{n}.err"));
        let cmdline = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("create stdout file"))
            .stderr(fs::File::create(&err).expect("create stderr file"))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
        Running {
            child,
            cmdline,
            out,
            err,
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait until it ends, killing its process group after [`TIMEOUT`] since it started.
    pub fn wait(self) -> Output {
        self.wait_for(TIMEOUT)
    }

    /// Wait until it ends, killing its process group after `limit` since it started.
    pub fn wait_for(mut self, limit: Duration) -> Output {
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if self.started.elapsed() > limit => {
                    timed_out = true;
                    let pgid = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
                    let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                    break self.child.wait().expect("wait after kill");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("wait {}: {e}", self.cmdline),
            }
        };
        Output {
            cmdline: self.cmdline.clone(),
            code: status.code(),
            signal: status.signal(),
            stdout: fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
            timed_out,
        }
    }
}

/// Run `cmd` to completion (with the timeout), capturing its output.
pub fn run_cmd(cmd: Command, dir: &Path) -> Output {
    Running::spawn(cmd, dir).wait()
}

/// Poll `f` every 10 ms until it returns `Some`, for at most `limit`.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One test's world: a temp dir, a private runtime state root, unique ids, and a guard that
/// force-deletes (and, failing that, SIGKILLs) every container it created.
pub struct Harness {
    kind: Kind,
    bin: PathBuf,
    name: String,
    dir: tempfile::TempDir,
    state_root: PathBuf,
    global: Vec<OsString>,
    next: AtomicUsize,
    ids: std::sync::Mutex<Vec<String>>,
}

impl Harness {
    /// A harness for the runtime under test (see [`kind_under_test`]).
    pub fn new(name: &str) -> Harness {
        Harness::with_kind(name, kind_under_test())
    }

    /// A harness for reevec.
    pub fn reevec(name: &str) -> Harness {
        Harness::with_kind(name, Kind::Reevec)
    }

    /// A harness for runc (None when runc is not installed). Use it only on a pure cgroup v2
    /// host (the test VM): runc creates cgroups.
    pub fn runc(name: &str) -> Option<Harness> {
        runc_bin()?;
        Some(Harness::with_kind(name, Kind::Runc))
    }

    /// A harness for crun (None when crun is not installed).
    pub fn crun(name: &str) -> Option<Harness> {
        crun_bin()?;
        Some(Harness::with_kind(name, Kind::Crun))
    }

    pub fn with_kind(name: &str, kind: Kind) -> Harness {
        let dir = tempfile::Builder::new()
            .prefix(&format!("reeve-e2e-{name}-"))
            .tempdir()
            .expect("temp dir");
        let state_root = dir.path().join("state");
        fs::create_dir(&state_root).expect("state dir");
        let (bin, global): (PathBuf, Vec<OsString>) = match kind {
            Kind::Reevec => {
                let mut g: Vec<OsString> = vec!["--root".into(), state_root.clone().into()];
                let mgr = std::env::var("REEVE_E2E_CGROUP_MANAGER")
                    .ok()
                    .or_else(|| (!host_is_cgroup2()).then(|| "disabled".to_string()));
                if let Some(m) = mgr {
                    g.push("--cgroup-manager".into());
                    g.push(m.into());
                }
                (reevec_bin(), g)
            }
            Kind::Runc => (
                runc_bin().expect("runc is installed"),
                vec!["--root".into(), state_root.clone().into()],
            ),
            Kind::Crun => (
                crun_bin().expect("crun is installed"),
                vec![
                    "--root".into(),
                    state_root.clone().into(),
                    "--cgroup-manager=disabled".into(),
                ],
            ),
        };
        Harness {
            kind,
            bin,
            name: name.to_string(),
            dir,
            state_root,
            global,
            next: AtomicUsize::new(0),
            ids: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The runtime binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The test's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `--root` given to the runtime.
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// A fresh container id, registered for forced deletion when the harness drops.
    pub fn new_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("e2e-{}-{}-{n}", self.name, std::process::id());
        self.ids.lock().expect("ids").push(id.clone());
        id
    }

    /// The command for `runtime <global flags> <args>`. crun runs inside a private mount
    /// namespace with an empty read-only tmpfs over /sys/fs/cgroup (it refuses hybrid hosts).
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = match self.kind {
            Kind::Reevec | Kind::Runc => Command::new(&self.bin),
            Kind::Crun => {
                let mut c = Command::new("unshare");
                c.args(["-m", "--propagation", "private", "--", "/bin/sh", "-c"])
                    .arg(
                        "mount -t tmpfs -o ro,mode=755 reeve-e2e-nocgroup /sys/fs/cgroup && \
                         exec \"$0\" \"$@\"",
                    )
                    .arg(&self.bin);
                c
            }
        };
        cmd.args(&self.global).args(args);
        cmd
    }

    /// Run a runtime verb to completion.
    pub fn exec<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        run_cmd(self.command(args), self.dir())
    }

    /// Start a runtime verb in the background.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Running {
        Running::spawn(self.command(args), self.dir())
    }

    /// A new bundle: a busybox rootfs and the default spec of `reevec spec`.
    pub fn bundle(&self) -> Bundle {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir().join(format!("bundle-{n}"));
        let mut b = Bundle::create(&path, self.dir());
        if self.kind == Kind::Crun {
            b.downgrade_for_crun();
        }
        b
    }

    /// `run --bundle B <id>` of a saved bundle; the container is force-deleted afterwards.
    pub fn run(&self, bundle: &Bundle) -> Output {
        bundle.save();
        let c = self.container();
        let out = self.exec(&[
            "run".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            c.id.as_ref(),
        ]);
        drop(c);
        out
    }

    /// A handle for a new container id (nothing is created yet); dropping it force-deletes.
    pub fn container(&self) -> Container<'_> {
        Container {
            h: self,
            id: self.new_id(),
        }
    }

    /// `create <id> --bundle B --pid-file P` of a saved bundle. The container's stdio goes to
    /// files (see [`Container::create_with`] to read it).
    pub fn create(&self, bundle: &Bundle) -> (Container<'_>, Output) {
        bundle.save();
        let c = self.container();
        let out = c.create(bundle);
        (c, out)
    }

    /// Force-delete `id`; if the runtime fails at that, SIGKILL what is left of it (its init
    /// and any process whose command line names the id, which is unique to this test process)
    /// and try again.
    fn cleanup(&self, id: &str) {
        const LIMIT: Duration = Duration::from_secs(10);
        let quick = |args: &[&str]| Running::spawn(self.command(args), self.dir()).wait_for(LIMIT);
        let pid = quick(&["state", id])
            .json()
            .ok()
            .and_then(|v| v["pid"].as_i64());
        let deleted = quick(&["delete", "--force", id]).success();
        let mut victims: Vec<i32> = processes_using(Path::new("/nonexistent"), id)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        if let Some(p) = pid.filter(|p| *p > 0 && still_alive(*p as i32)) {
            victims.push(p as i32);
        }
        if deleted && victims.is_empty() {
            return;
        }
        for p in victims {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = quick(&["delete", "--force", id]);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            self.cleanup(&id);
        }
    }
}

fn still_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

impl Output {
    /// stdout parsed as JSON.
    pub fn json(&self) -> Result<Value, String> {
        if !self.success() {
            return Err(self.to_string());
        }
        serde_json::from_str(self.stdout.trim()).map_err(|e| format!("{e}:\n{self}"))
    }
}

/// One container id of a [`Harness`]; dropping it runs `delete --force`.
pub struct Container<'h> {
    h: &'h Harness,
    pub id: String,
}

impl Container<'_> {
    /// `create --bundle B --pid-file <dir>/<id>.pid <id>` (runc's order; reevec takes both).
    pub fn create(&self, bundle: &Bundle) -> Output {
        bundle.save();
        let pid_file = self.pid_file();
        self.h.exec(&[
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
            self.id.as_ref(),
        ])
    }

    /// Where [`Container::create`] asks for the pid file.
    pub fn pid_file(&self) -> PathBuf {
        self.h.dir().join(format!("{}.pid", self.id))
    }

    /// Run any verb whose last argument is this id: `verb [flags...] <id>`.
    pub fn verb(&self, verb: &str, flags: &[&str]) -> Output {
        let mut args: Vec<&str> = vec![verb];
        args.extend_from_slice(flags);
        args.push(&self.id);
        self.h.exec(&args)
    }

    pub fn start(&self) -> Output {
        self.verb("start", &[])
    }

    /// `state <id>` parsed, or the failed output as text.
    pub fn state(&self) -> Result<Value, String> {
        self.verb("state", &[]).json()
    }

    /// The status in `state`, panicking if `state` fails.
    #[track_caller]
    pub fn status(&self) -> String {
        let st = self
            .state()
            .unwrap_or_else(|e| panic!("state {}: {e}", self.id));
        st["status"].as_str().unwrap_or_default().to_string()
    }

    /// The init pid in `state`, panicking if `state` fails.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        let st = self
            .state()
            .unwrap_or_else(|e| panic!("state {}: {e}", self.id));
        st["pid"].as_i64().unwrap_or(0) as i32
    }

    /// `kill <id> <sig>`.
    pub fn kill(&self, sig: &str) -> Output {
        self.h.exec(&["kill", &self.id, sig])
    }

    /// Wait (up to `limit`) for `state` to report `status`.
    pub fn wait_status(&self, status: &str, limit: Duration) -> bool {
        poll(limit, || {
            (self.state().ok()?["status"].as_str()? == status).then_some(())
        })
        .is_some()
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        self.h.cleanup(&self.id);
    }
}

/// An OCI bundle: `<dir>/config.json` and a busybox `<dir>/rootfs`.
pub struct Bundle {
    path: PathBuf,
    spec: Value,
}

impl Bundle {
    /// Make the rootfs, then `reevec spec --bundle <path>` and load the result.
    pub fn create(path: &Path, scratch: &Path) -> Bundle {
        fs::create_dir_all(path).expect("bundle dir");
        make_busybox_rootfs(&path.join("rootfs"));
        let mut cmd = Command::new(reevec_bin());
        cmd.arg("spec").arg("--bundle").arg(path);
        run_cmd(cmd, scratch).assert_ok();
        let text = fs::read_to_string(path.join("config.json")).expect("config.json written");
        let spec = serde_json::from_str(&text).expect("config.json is JSON");
        Bundle {
            path: path.to_path_buf(),
            spec,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// crun 1.8.1 refuses `ociVersion` 1.2.x ("unknown version specified"): claim 1.0.2, which
    /// every field of the default spec already existed in.
    pub fn downgrade_for_crun(&mut self) -> &mut Self {
        self.spec["ociVersion"] = json!("1.0.2");
        self
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    pub fn spec(&self) -> &Value {
        &self.spec
    }

    pub fn spec_mut(&mut self) -> &mut Value {
        &mut self.spec
    }

    /// Write config.json.
    pub fn save(&self) {
        let text = serde_json::to_string_pretty(&self.spec).expect("serialize spec");
        fs::write(self.path.join("config.json"), text).expect("write config.json");
    }

    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.spec["process"]["args"] = json!(args);
        self
    }

    /// `sh -c <script>`.
    pub fn set_script(&mut self, script: &str) -> &mut Self {
        self.set_args(&["sh", "-c", script])
    }

    pub fn add_env(&mut self, kv: &str) -> &mut Self {
        self.spec["process"]["env"]
            .as_array_mut()
            .expect("process.env is an array")
            .push(json!(kv));
        self
    }

    pub fn set_cwd(&mut self, cwd: &str) -> &mut Self {
        self.spec["process"]["cwd"] = json!(cwd);
        self
    }

    pub fn set_user(&mut self, uid: u32, gid: u32, additional: &[u32]) -> &mut Self {
        self.spec["process"]["user"] =
            json!({"uid": uid, "gid": gid, "additionalGids": additional});
        self
    }

    pub fn mounts_mut(&mut self) -> &mut Vec<Value> {
        self.spec["mounts"]
            .as_array_mut()
            .expect("mounts is an array")
    }

    pub fn add_mount(&mut self, m: Value) -> &mut Self {
        self.mounts_mut().push(m);
        self
    }

    /// Remove every mount at `destination`.
    pub fn remove_mount(&mut self, destination: &str) -> &mut Self {
        self.mounts_mut()
            .retain(|m| m["destination"].as_str() != Some(destination));
        self
    }

    pub fn add_masked_path(&mut self, p: &str) -> &mut Self {
        self.spec["linux"]["maskedPaths"]
            .as_array_mut()
            .expect("maskedPaths is an array")
            .push(json!(p));
        self
    }

    /// Set effective, permitted and bounding capabilities (no inheritable, no ambient).
    pub fn set_caps(&mut self, caps: &[&str]) -> &mut Self {
        let c = json!(caps);
        self.spec["process"]["capabilities"] =
            json!({"bounding": c, "effective": c, "permitted": c});
        self
    }

    /// Write a file into the rootfs (`rel` is relative to the rootfs).
    pub fn write_file(&self, rel: &str, content: &[u8], mode: u32) {
        let p = self.rootfs().join(rel.trim_start_matches('/'));
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).expect("mkdir in rootfs");
        }
        fs::write(&p, content).expect("write file in rootfs");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod in rootfs");
    }

    /// Replace `rel` in the rootfs by a symlink to `target`.
    pub fn symlink(&self, rel: &str, target: &str) {
        let p = self.rootfs().join(rel.trim_start_matches('/'));
        if p.is_dir() && !p.is_symlink() {
            fs::remove_dir_all(&p).expect("remove dir in rootfs");
        } else if p.symlink_metadata().is_ok() {
            fs::remove_file(&p).expect("remove file in rootfs");
        }
        symlink(target, &p).expect("symlink in rootfs");
    }

    /// Build the static syscall probe straight into the rootfs as `/bin/probe`.
    pub fn install_probe(&self) {
        build_probe(&self.rootfs().join("bin"));
    }
}

/// Copy the executable `src` to `dst` with `cp`, in a child process. Tests run in threads of
/// one process: had this process opened `dst` for writing, a child another test forks in that
/// moment would inherit the fd until its own exec, and running `dst` then fails with ETXTBSY.
pub fn install_executable(src: &Path, dst: &Path) {
    let o = Command::new("cp")
        .arg("--")
        .arg(src)
        .arg(dst)
        .output()
        .unwrap_or_else(|e| panic!("run cp: {e}"));
    assert!(
        o.status.success(),
        "cp {} {}: {}",
        src.display(),
        dst.display(),
        String::from_utf8_lossy(&o.stderr).trim()
    );
}

/// Build a minimal busybox root filesystem at `root`.
pub fn make_busybox_rootfs(root: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root", "mnt"] {
        fs::create_dir_all(root.join(d)).expect("mkdir rootfs dir");
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
    install_executable(Path::new(HOST_BUSYBOX), &root.join("bin/busybox"));
    for a in APPLETS {
        symlink("busybox", root.join("bin").join(a)).expect("applet symlink");
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("passwd");
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
}

/// Compile `tests/probe/syscalls.c` statically into `dir/probe` and return its path.
pub fn build_probe(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("probe/syscalls.c");
    let out = dir.join("probe");
    let o = Command::new("gcc")
        .args(["-static", "-O1", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run gcc (apt-get install gcc libc6-dev)");
    assert!(
        o.status.success(),
        "gcc -static {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `key=value` lines (a key may repeat), as printed by [`FACTS_SCRIPT`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts(pub BTreeMap<String, Vec<String>>);

impl Facts {
    pub fn parse(text: &str) -> Facts {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                m.entry(k.trim().to_string())
                    .or_default()
                    .push(v.trim().to_string());
            }
        }
        Facts(m)
    }

    /// The single value of `key` (panics if absent or repeated).
    #[track_caller]
    pub fn one(&self, key: &str) -> &str {
        match self.0.get(key).map(Vec::as_slice) {
            Some([v]) => v,
            other => panic!("fact {key}: expected one value, got {other:?}\nall facts: {self:#?}"),
        }
    }

    /// Every value of `key` (empty if absent).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.get(key).cloned().unwrap_or_default()
    }

    /// Mounts from the `mountinfo` lines.
    pub fn mounts(&self) -> Vec<MountInfo> {
        self.all("mountinfo")
            .iter()
            .filter_map(|l| MountInfo::parse(l))
            .collect()
    }
}

/// One line of /proc/<pid>/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub root: String,
    pub mount_point: String,
    pub options: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn parse(line: &str) -> Option<MountInfo> {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        Some(MountInfo {
            root: unescape(pre.get(3)?),
            mount_point: unescape(pre.get(4)?),
            options: pre.get(5)?.split(',').map(String::from).collect(),
            fstype: post.first()?.to_string(),
            source: unescape(post.get(1)?),
            super_options: post
                .get(2)
                .map(|s| s.split(',').map(String::from).collect())
                .unwrap_or_default(),
        })
    }

    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }
}

/// Decode mountinfo's octal escapes (`\040` for a space...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host's own mounts (the test process is in the host mount namespace).
pub fn host_mounts() -> Vec<MountInfo> {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter_map(MountInfo::parse)
        .collect()
}

/// A busybox sh script (for `sh -c`) that prints facts about the sandbox it runs in as
/// `key=value` lines. It must run as the container's init (so `$$` is the process itself) and
/// uses only shell builtins where the answer would otherwise describe a helper process.
pub const FACTS_SCRIPT: &str = r#"
echo pid=$$
echo hostname=$(hostname)
for n in /sys/class/net/*; do echo sysnet=${n##*/}; done
while IFS=: read -r n rest; do [ -n "$rest" ] && echo netdev=$(echo $n); done < /proc/net/dev
while read -r l; do echo "mountinfo=$l"; done < /proc/self/mountinfo
if [ -e /proc/kcore ]; then echo kcore=$(wc -c < /proc/kcore); else echo kcore=absent; fi
echo timer_list=$(wc -c < /proc/timer_list)
echo keys=$(wc -c < /proc/keys)
echo sysfirmware=$(ls -A /sys/firmware | wc -l)
err=$( { echo reevec > /proc/sys/kernel/hostname; } 2>&1 ); echo procsys_write=$?; echo "procsys_err=$err"
err=$( { : > /reeve-e2e-rootwrite; } 2>&1 ); echo root_write=$?; echo "root_err=$err"
while read -r k v; do
  case $k in CapInh:|CapPrm:|CapEff:|CapBnd:|CapAmb:|NoNewPrivs:|Seccomp:|Uid:|Gid:|Groups:) echo "${k%:}=$v";; esac
done < /proc/$$/status
for f in /proc/$$/fd/*; do [ -h "$f" ] && echo fd=${f##*/}; done
echo cwd=$(readlink /proc/self/cwd)
echo pwd=$(pwd)
echo id=$(id)
echo idu=$(id -u)
echo idg=$(id -g)
echo idgroups=$(id -G)
err=$(mount -t tmpfs reeve-e2e /tmp 2>&1); echo mount_rc=$?; echo "mount_err=$err"
err=$(unshare -U true 2>&1); echo unshare_user_rc=$?; echo "unshare_user_err=$err"
err=$(unshare -m true 2>&1); echo unshare_mnt_rc=$?; echo "unshare_mnt_err=$err"
echo done=1
"#;

/// Capability numbers (linux/capability.h).
pub const CAP_KILL: u32 = 5;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_AUDIT_WRITE: u32 = 29;

/// The `CapEff` hex string the kernel prints for a set of capability numbers.
pub fn cap_hex(caps: &[u32]) -> String {
    let mask = caps.iter().fold(0u64, |m, c| m | (1u64 << c));
    format!("{mask:016x}")
}

/// Processes on the host whose root directory is `rootfs` (same device and inode) or whose
/// command line has `needle` (the container id) as one argument; excludes this test process.
pub fn processes_using(rootfs: &Path, needle: &str) -> Vec<(i32, String)> {
    use std::os::unix::fs::MetadataExt;
    let target = fs::metadata(rootfs).ok().map(|m| (m.dev(), m.ino()));
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let root = fs::metadata(format!("/proc/{pid}/root"))
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if (target.is_some() && root == target) || args.iter().any(|a| a == needle) {
            found.push((pid, args.join(" ").trim().to_string()));
        }
    }
    found
}

/// The names (not contents) of the entries of a host directory, sorted.
pub fn list_dir(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_hex_matches_the_default_caps() {
        assert_eq!(
            cap_hex(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]),
            "0000000020000420"
        );
    }

    #[test]
    fn facts_parse_repeated_keys() {
        let f = Facts::parse("a=1\nb= x y \na=2\nnoise\n");
        assert_eq!(f.all("a"), vec!["1", "2"]);
        assert_eq!(f.one("b"), "x y");
    }

    #[test]
    fn mountinfo_parses_optional_fields_and_escapes() {
        let m = MountInfo::parse(
            "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        )
        .expect("parse");
        assert_eq!(m.mount_point, "/mnt x");
        assert_eq!(m.fstype, "ext3");
        assert!(!m.read_only());
    }
}
