//! In-process engine start latency against the floor (`benches/floor/floor.c`).
//!
//! `cargo bench -p reeve-runtime --bench engine [-- --runs N] [--json PATH]` as root
//! (or `REEVE_BENCH_ENGINE_JSON=PATH`). Needs `cc` and `/bin/busybox`.
//!
//! The engine is driven through the `reeve_runtime` library in this process (no `reevec`
//! exec): `container::create` → `start` → wait for the init's exit → `delete`, on a busybox
//! `/bin/true` bundle made from `reevec spec`'s default spec (pid, net, ipc, uts, mount, cgroup
//! namespaces, default seccomp profile, capabilities, pivot_root) with the cgroup mount removed
//! and cgroups disabled (this host has hybrid cgroups: nothing may be created there; cgroup
//! limits are measured in the VM by `benches/`). The whole benchmark runs in a private mount
//! namespace of its own.
//!
//! The floor is `floor ROOTFS` (clone with the same namespaces + bind + /proc + pivot_root +
//! exec /bin/true), fork+exec'd and waited for. That includes the floor binary's own exec,
//! which the in-process engine does not pay, so the exec+exit of a static do-nothing process
//! (`busybox true`) is measured too and reported as "floor minus exec".
//! Steps reported for the engine: spec load + plan (measured alone), seccomp cache hit (alone),
//! create (everything until the init waits for start, includes the previous two), start,
//! start → init exit (exec of /bin/true in the sandbox and its exit), delete.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use reeve_runtime::container::{self, plan::SandboxPlan, CgroupMode, CreateOptions};
use reeve_runtime::state::Root;
use serde_json::{json, Value};

fn fail(msg: String) -> ! {
    eprintln!("engine bench: {msg}");
    std::process::exit(1)
}

struct Opts {
    runs: usize,
    json: Option<PathBuf>,
}

fn opts() -> Opts {
    let mut o = Opts {
        runs: 200,
        json: std::env::var_os("REEVE_BENCH_ENGINE_JSON").map(PathBuf::from),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                o.runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| fail("--runs needs a number".into()))
            }
            "--json" => {
                o.json = Some(PathBuf::from(
                    args.next()
                        .unwrap_or_else(|| fail("--json needs a path".into())),
                ))
            }
            "--bench" => {}
            other => fail(format!("unknown argument {other}")),
        }
    }
    o
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn stats(v: &[f64]) -> Value {
    json!({"n": v.len(), "min": pct(v, 0.0), "p50": pct(v, 0.5), "p90": pct(v, 0.9),
           "p99": pct(v, 0.99), "max": pct(v, 1.0)})
}

/// fork + execv `argv` + wait; returns the wall time in µs, or fails on a non-zero status.
fn spawn_us(argv: &[&str]) -> f64 {
    let c: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(*a).unwrap_or_else(|_| fail(format!("NUL in {a}"))))
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = c.iter().map(|s| s.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let env: [*const libc::c_char; 1] = [std::ptr::null()];
    let t = Instant::now();
    // SAFETY: the child only calls execve and _exit (async-signal-safe) on memory prepared
    // before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: argv/envp are NUL-terminated arrays of valid C strings.
        unsafe {
            libc::execve(ptrs[0], ptrs.as_ptr(), env.as_ptr());
            libc::_exit(127)
        }
    }
    if pid < 0 {
        fail(format!("fork: {}", std::io::Error::last_os_error()));
    }
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    let us = t.elapsed().as_nanos() as f64 / 1e3;
    if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
        fail(format!("{argv:?}: status {st:#x}"));
    }
    us
}

fn sh(cmd: &mut std::process::Command) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(format!("{cmd:?}: {s}")),
        Err(e) => fail(format!("{cmd:?}: {e}")),
    }
}

fn bundle(dir: &Path) -> PathBuf {
    let b = dir.join("bundle");
    let rootfs = b.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap_or_else(|e| fail(format!("mkdir {d}: {e}")));
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .unwrap_or_else(|e| fail(format!("copy /bin/busybox: {e}")));
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/true"))
        .unwrap_or_else(|e| fail(format!("symlink true: {e}")));
    let mut spec = reeve_runtime::cli::spec::default_spec(false)
        .unwrap_or_else(|e| fail(format!("default spec: {e}")));
    spec["process"]["args"] = json!(["/bin/true"]);
    if let Some(m) = spec["mounts"].as_array_mut() {
        m.retain(|m| m["destination"] != "/sys/fs/cgroup");
    }
    let text = serde_json::to_string(&spec).unwrap_or_else(|e| fail(format!("spec: {e}")));
    std::fs::write(b.join("config.json"), text)
        .unwrap_or_else(|e| fail(format!("write config.json: {e}")));
    b
}

fn main() {
    let o = opts();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        fail("run as root".into());
    }
    // A private mount namespace for the whole benchmark (still single-threaded here).
    // SAFETY: unshare and mount with valid constant arguments.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0
            || libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
        {
            fail(format!(
                "private mount namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    let work = tempfile::tempdir().unwrap_or_else(|e| fail(format!("tempdir: {e}")));
    let w = work.path();
    let b = bundle(w);
    let floor_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/floor/floor.c");
    let floor = w.join("floor");
    sh(std::process::Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&floor)
        .arg(&floor_src));
    let root = Root::new(w.join("root"));
    let rootfs = b.join("rootfs");
    let (floor_s, rootfs_s) = (
        floor.to_string_lossy().into_owned(),
        rootfs.to_string_lossy().into_owned(),
    );
    let true_s = rootfs.join("bin/busybox").to_string_lossy().into_owned();

    let spec = container::plan::load_spec(&b).unwrap_or_else(|e| fail(format!("spec: {e}")));
    let plan = SandboxPlan::build("bench", &b, &spec, false)
        .unwrap_or_else(|e| fail(format!("plan: {e}")));
    let profile = plan
        .seccomp
        .clone()
        .unwrap_or_else(|| fail("default spec has no seccomp profile".into()));

    let mut steps: Vec<(&str, Vec<f64>)> = [
        "spec load + plan (alone)",
        "seccomp cache hit (alone)",
        "create",
        "start",
        "start → init exit",
        "delete",
        "engine total (create..delete)",
        "floor (fork+exec floor, wait)",
        "exec+exit of busybox true",
    ]
    .iter()
    .map(|n| (*n, Vec::new()))
    .collect();
    let warmup = 10;
    for i in 0..o.runs + warmup {
        let mut rec = |k: usize, us: f64| {
            if i >= warmup {
                steps[k].1.push(us);
            }
        };
        let el = |t: Instant| t.elapsed().as_nanos() as f64 / 1e3;

        let t = Instant::now();
        let s = container::plan::load_spec(&b).unwrap_or_else(|e| fail(format!("spec: {e}")));
        let p = SandboxPlan::build("bench", &b, &s, false)
            .unwrap_or_else(|e| fail(format!("plan: {e}")));
        std::hint::black_box(&p);
        rec(0, el(t));
        let t = Instant::now();
        let prog = reeve_runtime::seccomp::load_cached(&profile, &root.path.join("seccomp-cache"))
            .unwrap_or_else(|e| fail(format!("seccomp: {e}")));
        std::hint::black_box(&prog);
        rec(1, el(t));

        let id = format!("bench-{i}");
        let opts = CreateOptions {
            id: id.clone(),
            bundle: b.clone(),
            pid_file: None,
            console_socket: None,
            cgroups: CgroupMode::Disabled,
            preserve_fds: 0,
            new_keyring: true,
        };
        let t0 = Instant::now();
        let created =
            container::create(&root, &opts).unwrap_or_else(|e| fail(format!("create: {e}")));
        let d_create = el(t0);
        let t = Instant::now();
        container::start(&root, &id).unwrap_or_else(|e| fail(format!("start: {e}")));
        let d_start = el(t);
        let t = Instant::now();
        let exit = reeve_runtime::process::wait_pidfd(&created.child)
            .unwrap_or_else(|e| fail(format!("wait: {e}")));
        let d_run = el(t);
        if exit.status() != 0 {
            fail(format!("sandbox exit {exit:?}"));
        }
        let t = Instant::now();
        container::delete(&root, &id, true).unwrap_or_else(|e| fail(format!("delete: {e}")));
        let d_delete = el(t);
        let total = el(t0);
        rec(2, d_create);
        rec(3, d_start);
        rec(4, d_run);
        rec(5, d_delete);
        rec(6, total);
        rec(7, spawn_us(&[&floor_s, &rootfs_s]));
        rec(8, spawn_us(&[&true_s, "true"]));
    }

    let p50 = |k: usize| pct(&steps[k].1, 0.5);
    let (engine, floor_p50, exec_p50) = (p50(6), p50(7), p50(8));
    let floor_inproc = floor_p50 - exec_p50;
    println!(
        "engine start latency, in process, {} runs (+{warmup} warm-up), µs",
        o.runs
    );
    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "step", "p50", "p90", "p99", "min", "max"
    );
    for (name, v) in &steps {
        println!(
            "{name:<32} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99),
            pct(v, 0.0),
            pct(v, 1.0)
        );
    }
    println!(
        "\nengine / floor (p50): {:.2}x; engine / (floor minus exec of busybox true): {:.2}x \
         (target 1.25x; engine without delete: {:.2}x / {:.2}x)",
        engine / floor_p50,
        engine / floor_inproc,
        (engine - p50(5)) / floor_p50,
        (engine - p50(5)) / floor_inproc
    );
    if let Some(path) = &o.json {
        let doc = json!({
            "bench": "engine-start",
            "unit": "us",
            "runs": o.runs,
            "steps": steps.iter().map(|(n, v)| json!({"step": n, "us": stats(v)})).collect::<Vec<_>>(),
            "ratio_engine_to_floor_p50": engine / floor_p50,
            "ratio_engine_to_floor_minus_exec_p50": engine / floor_inproc,
        });
        let text =
            serde_json::to_string_pretty(&doc).unwrap_or_else(|e| fail(format!("json: {e}")));
        std::fs::write(path, text)
            .unwrap_or_else(|e| fail(format!("write {}: {e}", path.display())));
        println!("JSON written to {}", path.display());
    }
}
