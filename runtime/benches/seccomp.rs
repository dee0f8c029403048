//! seccomp benchmark: reeve's BPF compiler against seccompiler and against no filter.
//!
//! `cargo bench -p reeve-runtime --bench seccomp [-- --json PATH] [--quick]`
//! (or `REEVE_BENCH_JSON=PATH`). Must run as root or with `no_new_privs` allowed (it always is).
//!
//! Measures, for the default profile (`seccomp-profiles/default.json`):
//! - compile time (warm, in this process): ours from JSON and from the parsed profile, ours
//!   loaded from the on-disk cache (what `reevec create` does after the first start), and
//!   seccompiler 0.5 from the same parsed profile (translated to its rules, x86_64 only, since
//!   seccompiler builds one architecture per filter);
//! - BPF instruction count of each program;
//! - install time: the `seccomp(SECCOMP_SET_MODE_FILTER)` syscall alone, one sample per fresh
//!   forked child (a filter cannot be removed, and a second one would stack);
//! - per-syscall cost of hot allowed syscalls, in forked children, with no filter, ours and
//!   seccompiler's: `getppid` (allowed unconditionally), `personality(0xffffffff)` (allowed by
//!   the last of five argument rules) and `ioctl(-1, FIONREAD)` (allowed after the TIOCSTI
//!   check; fails with EBADF in the kernel).
//!
//! Prints a table on stdout and, with `--json PATH`, writes the figures as JSON (see
//! `/tmp/handoff/perf.md` or the runtime README for the format). Benchmarks never fail on a
//! number; the process exits non-zero only if something could not be measured.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use reeve_runtime::seccomp;
use serde_json::{json, Value};

#[derive(Debug)]
enum BenchError {
    Setup(String),
    Child(String),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Setup(s) => write!(f, "setup: {s}"),
            BenchError::Child(s) => write!(f, "child: {s}"),
        }
    }
}

struct Opts {
    json: Option<PathBuf>,
    compile_iters: usize,
    install_samples: usize,
    syscall_rounds: usize,
    batches: usize,
    batch_len: u64,
}

fn opts() -> Result<Opts, BenchError> {
    let mut o = Opts {
        json: std::env::var_os("REEVE_BENCH_JSON").map(PathBuf::from),
        compile_iters: 300,
        install_samples: 300,
        syscall_rounds: 7,
        batches: 200,
        batch_len: 1000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => {
                o.json =
                    Some(PathBuf::from(args.next().ok_or_else(|| {
                        BenchError::Setup("--json needs a path".into())
                    })?))
            }
            "--quick" => {
                o.compile_iters = 30;
                o.install_samples = 30;
                o.syscall_rounds = 2;
                o.batches = 50;
            }
            // `cargo bench` passes --bench to harness = false targets.
            "--bench" => {}
            other => return Err(BenchError::Setup(format!("unknown argument {other}"))),
        }
    }
    Ok(o)
}

/// Order statistics of a sample, in nanoseconds.
#[derive(Clone, Debug)]
struct Stats {
    n: usize,
    min: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Stats {
    fn of(v: &[f64]) -> Stats {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if s.is_empty() {
                return f64::NAN;
            }
            let i = ((s.len() - 1) as f64 * p).round() as usize;
            s[i]
        };
        Stats {
            n: s.len(),
            min: q(0.0),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: q(1.0),
            mean: s.iter().sum::<f64>() / s.len().max(1) as f64,
        }
    }

    fn json(&self) -> Value {
        json!({"n": self.n, "min": self.min, "p50": self.p50, "p90": self.p90, "p99": self.p99,
               "max": self.max, "mean": self.mean})
    }
}

/// A BPF program to install, whoever compiled it.
struct Filter {
    name: &'static str,
    arches: &'static str,
    prog: seccomp::Program,
}

// --- seccompiler translation -------------------------------------------------------------

/// Translates an OCI profile to seccompiler 0.5 rules for x86_64. seccompiler has one match
/// action per filter (ALLOW here) and the default action as mismatch action, so:
/// - a syscall whose only rules return the default action is left out (same verdict);
/// - `[ERRNO if (arg & 0xffffffff) == v, ALLOW]` (the TIOCSTI ioctl rule) becomes
///   "ALLOW if the low 32 bits of arg != v" (same verdicts);
/// - a syscall whose only rule is another non-ALLOW action (clone3 → ENOSYS) is left out and
///   gets the default EPERM instead: the only verdict difference, noted in the output.
fn seccompiler_rules(
    p: &LinuxSeccomp,
    notes: &mut Vec<String>,
) -> Result<(BTreeMap<i64, Vec<seccompiler::SeccompRule>>, u32), BenchError> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let bad = |s: String| BenchError::Setup(format!("seccompiler translation: {s}"));
    if p.default_action() != LinuxSeccompAction::ScmpActErrno {
        return Err(bad("default action must be SCMP_ACT_ERRNO".into()));
    }
    let default_errno = p.default_errno_ret().unwrap_or(1);
    // Name → rules in profile order: (action, errno, conditions).
    type OciRule = (
        LinuxSeccompAction,
        u32,
        Vec<oci_spec::runtime::LinuxSeccompArg>,
    );
    let mut by_name: BTreeMap<String, Vec<OciRule>> = BTreeMap::new();
    for sc in p.syscalls().iter().flatten() {
        for name in sc.names() {
            by_name.entry(name.clone()).or_default().push((
                sc.action(),
                sc.errno_ret().unwrap_or(1),
                sc.args().clone().unwrap_or_default(),
            ));
        }
    }
    let cond = |a: &oci_spec::runtime::LinuxSeccompArg| -> Result<SeccompCondition, BenchError> {
        let (op, val) = match a.op() {
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
            LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
            LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
            LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
            LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
            LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(a.value()),
                a.value_two().unwrap_or(0),
            ),
        };
        let index = u8::try_from(a.index()).map_err(|_| bad("argument index".into()))?;
        SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, val)
            .map_err(|e| bad(format!("condition: {e}")))
    };
    let mut out = BTreeMap::new();
    let mut unknown = 0;
    for (name, rules) in by_name {
        let Some(nr) = seccomp::x86_64_syscall_number(&name) else {
            unknown += 1;
            continue;
        };
        let is_default =
            |(a, e, _): &OciRule| *a == LinuxSeccompAction::ScmpActErrno && *e == default_errno;
        let allow = |(a, _, _): &OciRule| *a == LinuxSeccompAction::ScmpActAllow;
        let translated: Option<Vec<SeccompRule>> = if rules.iter().all(allow) {
            if rules.iter().any(|(_, _, c)| c.is_empty()) {
                Some(vec![])
            } else {
                let mut v = Vec::new();
                for (_, _, conds) in &rules {
                    let c = conds.iter().map(cond).collect::<Result<Vec<_>, _>>()?;
                    v.push(SeccompRule::new(c).map_err(|e| bad(format!("rule: {e}")))?);
                }
                Some(v)
            }
        } else if rules.iter().all(is_default) {
            None
        } else if let [(_, _, deny), (a, _, allow_conds)] = rules.as_slice() {
            let single_low_eq = deny.len() == 1
                && deny[0].op() == LinuxSeccompOperator::ScmpCmpMaskedEq
                && deny[0].value() == 0xffff_ffff;
            if is_default(&rules[0])
                && *a == LinuxSeccompAction::ScmpActAllow
                && allow_conds.is_empty()
                && single_low_eq
            {
                let v = deny[0].value_two().unwrap_or(0) & 0xffff_ffff;
                let c = SeccompCondition::new(
                    u8::try_from(deny[0].index()).map_err(|_| bad("argument index".into()))?,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Ne,
                    v,
                )
                .map_err(|e| bad(format!("condition: {e}")))?;
                notes.push(format!(
                    "{name}: [EPERM if arg{} low32 == {v:#x}, ALLOW] as ALLOW if low32 != {v:#x}",
                    deny[0].index()
                ));
                Some(vec![
                    SeccompRule::new(vec![c]).map_err(|e| bad(format!("rule: {e}")))?
                ])
            } else {
                return Err(bad(format!("{name}: rules not expressible")));
            }
        } else if let [(a, e, conds)] = rules.as_slice() {
            if *a == LinuxSeccompAction::ScmpActErrno && conds.is_empty() {
                notes.push(format!(
                    "{name}: ERRNO {e} not expressible (one match action), gets the default"
                ));
                None
            } else {
                return Err(bad(format!("{name}: rule not expressible")));
            }
        } else {
            return Err(bad(format!("{name}: rules not expressible")));
        };
        if let Some(t) = translated {
            out.insert(i64::from(nr), t);
        }
    }
    notes.push(format!(
        "{unknown} profile names are not x86_64 syscalls (i386/x32-only), skipped as by reeve"
    ));
    Ok((out, default_errno))
}

fn seccompiler_compile(p: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>, BenchError> {
    let (rules, errno) = seccompiler_rules(p, &mut Vec::new())?;
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Errno(errno),
        seccompiler::SeccompAction::Allow,
        seccompiler::TargetArch::x86_64,
    )
    .map_err(|e| BenchError::Setup(format!("seccompiler filter: {e}")))?;
    let prog: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e| BenchError::Setup(format!("seccompiler compile: {e}")))?;
    Ok(prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

// --- forked children ---------------------------------------------------------------------

/// Runs `body` in a forked child that sends back u64 values through a pipe; returns them.
/// The benchmark is single-threaded, so the child may allocate.
fn in_child(body: impl FnOnce(&mut dyn FnMut(u64)) -> i32) -> Result<Vec<u64>, BenchError> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2(2) writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(BenchError::Child(format!(
            "pipe2: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: single-threaded process; the child never returns into main (it _exits).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(BenchError::Child(format!(
            "fork: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        drop(rd);
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let code = body(&mut |v| buf.extend_from_slice(&v.to_le_bytes()));
        let mut off = 0;
        while off < buf.len() {
            // SAFETY: writing initialized bytes of `buf` to our pipe.
            let n = unsafe { libc::write(fds[1], buf[off..].as_ptr().cast(), buf.len() - off) };
            if n <= 0 {
                // SAFETY: leave the forked child without running destructors.
                unsafe { libc::_exit(120) };
            }
            off += n as usize;
        }
        // SAFETY: leave the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    drop(wr);
    let mut bytes = Vec::new();
    let read = std::fs::File::from(rd).read_to_end(&mut bytes);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    read.map_err(|e| BenchError::Child(format!("read pipe: {e}")))?;
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(BenchError::Child(format!("child status {status:#x}")));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

fn set_nnp() -> i32 {
    match seccomp::set_no_new_privs() {
        Ok(()) => 0,
        Err(_) => 100,
    }
}

/// One install time (ns) measured in a fresh child.
fn install_sample(f: &Filter) -> Result<u64, BenchError> {
    let v = in_child(|send| {
        let rc = set_nnp();
        if rc != 0 {
            return rc;
        }
        let t0 = Instant::now();
        let r = f.prog.install();
        let dt = t0.elapsed().as_nanos() as u64;
        if r.is_err() {
            return 101;
        }
        send(dt);
        0
    })?;
    v.first()
        .copied()
        .ok_or_else(|| BenchError::Child("no install sample".into()))
}

#[derive(Clone, Copy)]
enum Probe {
    Getppid,
    Personality,
    Ioctl,
}

impl Probe {
    const ALL: [Probe; 3] = [Probe::Getppid, Probe::Personality, Probe::Ioctl];

    fn name(self) -> &'static str {
        match self {
            Probe::Getppid => "getppid()",
            Probe::Personality => "personality(0xffffffff)",
            Probe::Ioctl => "ioctl(-1, FIONREAD)",
        }
    }

    fn note(self) -> &'static str {
        match self {
            Probe::Getppid => "allowed unconditionally (kernel action cache)",
            Probe::Personality => "allowed by the 5th argument rule",
            Probe::Ioctl => "allowed after the TIOCSTI check (EBADF)",
        }
    }

    #[inline(always)]
    fn call(self) -> i64 {
        // SAFETY: getppid and personality(0xffffffff) (a query) have no side effects; the ioctl
        // goes to fd -1 and fails with EBADF before touching the null argument.
        unsafe {
            match self {
                Probe::Getppid => libc::syscall(libc::SYS_getppid),
                Probe::Personality => libc::syscall(libc::SYS_personality, 0xffff_ffffu64),
                Probe::Ioctl => libc::syscall(libc::SYS_ioctl, -1i64, libc::FIONREAD, 0u64),
            }
        }
    }
}

/// Per-call times (ns, one value per batch) for every probe, in one fresh child with `f`
/// installed (or no filter).
fn syscall_samples(f: Option<&Filter>, o: &Opts) -> Result<Vec<Vec<f64>>, BenchError> {
    let (batches, len) = (o.batches, o.batch_len);
    let raw = in_child(|send| {
        let rc = set_nnp();
        if rc != 0 {
            return rc;
        }
        if let Some(f) = f {
            if f.prog.install().is_err() {
                return 101;
            }
        }
        for p in Probe::ALL {
            for _ in 0..len * 10 {
                std::hint::black_box(p.call());
            }
            for _ in 0..batches {
                let t0 = Instant::now();
                for _ in 0..len {
                    std::hint::black_box(p.call());
                }
                send(t0.elapsed().as_nanos() as u64);
            }
        }
        0
    })?;
    if raw.len() != batches * Probe::ALL.len() {
        return Err(BenchError::Child("short syscall sample".into()));
    }
    Ok(raw
        .chunks(batches)
        .map(|c| c.iter().map(|ns| *ns as f64 / len as f64).collect())
        .collect())
}

fn time_iters<T>(iters: usize, mut f: impl FnMut() -> T) -> (f64, Stats) {
    let t = Instant::now();
    std::hint::black_box(f());
    let first = t.elapsed().as_nanos() as f64;
    let v: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_nanos() as f64
        })
        .collect();
    (first, Stats::of(&v))
}

fn us(ns: f64) -> String {
    format!("{:.1}", ns / 1e3)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let jit = std::fs::read_to_string("/proc/sys/net/core/bpf_jit_enable")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    json!({"cpu": cpu, "cpus": cpus, "kernel": kernel, "bpf_jit_enable": jit})
}

fn run() -> Result<(), BenchError> {
    let o = opts()?;
    let setup = |e: seccomp::SeccompError| BenchError::Setup(e.to_string());
    let profile = seccomp::default_profile().map_err(setup)?;
    let mut x64_json: Value = serde_json::from_str(seccomp::DEFAULT_PROFILE)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    x64_json["architectures"] = json!(["SCMP_ARCH_X86_64"]);
    let x64: LinuxSeccomp =
        serde_json::from_value(x64_json).map_err(|e| BenchError::Setup(e.to_string()))?;

    let mut notes = Vec::new();
    seccompiler_rules(&profile, &mut notes)?;

    // Compile.
    let cache = tempfile::tempdir().map_err(|e| BenchError::Setup(e.to_string()))?;
    seccomp::load_cached(&profile, cache.path()).map_err(setup)?;
    let n = o.compile_iters;
    let compiles: Vec<(&str, (f64, Stats))> = vec![
        (
            "reeve: JSON → BPF (x86_64+x32+i386)",
            time_iters(n, || seccomp::from_json(seccomp::DEFAULT_PROFILE)),
        ),
        (
            "reeve: parsed → BPF (x86_64+x32+i386)",
            time_iters(n, || seccomp::compile(&profile)),
        ),
        (
            "reeve: parsed → BPF (x86_64)",
            time_iters(n, || seccomp::compile(&x64)),
        ),
        (
            "reeve: cache hit (key + read + check)",
            time_iters(n, || seccomp::load_cached(&profile, cache.path())),
        ),
        (
            "seccompiler: parsed → BPF (x86_64)",
            time_iters(n, || seccompiler_compile(&profile)),
        ),
    ];

    let trivial = Filter {
        name: "1-insn RET ALLOW (kernel floor)",
        arches: "any",
        prog: seccomp::Program::from_instructions(
            vec![libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            }],
            0,
        ),
    };
    // Loads an argument, so the kernel cannot precompute its verdict per syscall number and
    // runs it on every syscall: the kernel's cost of running any filter at all.
    let run_floor = Filter {
        name: "2-insn ld arg0; RET ALLOW",
        arches: "any",
        prog: seccomp::Program::from_instructions(
            vec![
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 16,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000,
                },
            ],
            0,
        ),
    };
    // The default profile as compiled by version 1 of the compiler (per-section blocks, no
    // exceptions, no load elision), kept as a test fixture: the "before" of the layout work.
    let v1 = seccomp::Program::from_bytes(include_bytes!(
        "../src/seccomp/testdata/default-profile-v1.bpf"
    ))
    .map_err(setup)?;
    let ours = seccomp::compile(&profile).map_err(setup)?;
    let ours_x64 = seccomp::compile(&x64).map_err(setup)?;
    // Same size, different path: the kernel's action-cache emulation walks the chain for every
    // syscall number of the native and compat ABIs in the first program only.
    let chain = |skip: bool| -> Vec<libc::sock_filter> {
        let i = |code: u16, k: u32| libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        let mut v = vec![i(0x20, 0)];
        v.push(if skip { i(0x05, 50) } else { i(0x15, 100_000) });
        v.extend((0..50).map(|k| i(0x15, 200_000 + k)));
        v.push(i(0x06, 0x7fff_0000));
        v
    };
    let filters = [
        Filter {
            name: "reeve default",
            arches: "x86_64+x32+i386",
            prog: ours,
        },
        Filter {
            name: "reeve default",
            arches: "x86_64",
            prog: ours_x64,
        },
        Filter {
            name: "reeve v1 layout (before)",
            arches: "x86_64+x32+i386",
            prog: v1,
        },
        Filter {
            name: "seccompiler default",
            arches: "x86_64",
            prog: seccomp::Program::from_instructions(seccompiler_compile(&profile)?, 0),
        },
        trivial,
        Filter {
            name: "synthetic: 50-jeq chain walked",
            arches: "any",
            prog: seccomp::Program::from_instructions(chain(false), 0),
        },
        Filter {
            name: "synthetic: 50-jeq chain skipped",
            arches: "any",
            prog: seccomp::Program::from_instructions(chain(true), 0),
        },
    ];

    // Install: interleave the filters so that machine noise hits all of them alike.
    let mut installs: Vec<Vec<f64>> = vec![Vec::new(); filters.len()];
    for _ in 0..o.install_samples {
        for (f, out) in filters.iter().zip(installs.iter_mut()) {
            out.push(install_sample(f)? as f64);
        }
    }
    let installs: Vec<Stats> = installs.iter().map(|v| Stats::of(v)).collect();

    // Syscalls: configurations none, reeve (3 arches), seccompiler; interleaved rounds.
    let configs: [(&str, Option<&Filter>); 4] = [
        ("no filter", None),
        ("reeve default (x86_64+x32+i386)", Some(&filters[0])),
        ("seccompiler default (x86_64)", Some(&filters[3])),
        ("2-insn filter run on every call", Some(&run_floor)),
    ];
    let mut per: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); Probe::ALL.len()]; configs.len()];
    for _ in 0..o.syscall_rounds {
        for (c, (_, f)) in configs.iter().enumerate() {
            for (p, v) in syscall_samples(*f, &o)?.into_iter().enumerate() {
                per[c][p].extend(v);
            }
        }
    }

    // Output.
    let m = machine();
    println!(
        "seccomp benchmark: {} ({} CPUs), kernel {}, bpf_jit_enable={}",
        m["cpu"].as_str().unwrap_or(""),
        m["cpus"],
        m["kernel"].as_str().unwrap_or(""),
        m["bpf_jit_enable"].as_str().unwrap_or("")
    );
    println!("\ncompile, warm, {n} iterations (µs)");
    println!(
        "{:<42} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "first", "p50", "p90", "p99", "min"
    );
    for (name, (first, s)) in &compiles {
        println!(
            "{name:<42} {:>8} {:>8} {:>8} {:>8} {:>8}",
            us(*first),
            us(s.p50),
            us(s.p90),
            us(s.p99),
            us(s.min)
        );
    }
    println!(
        "\ninstall: seccomp(SECCOMP_SET_MODE_FILTER) alone, one fresh child per sample, {} samples (µs)",
        o.install_samples
    );
    println!(
        "{:<34} {:<16} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "program", "arches", "insns", "p50", "p90", "p99", "min", "max"
    );
    for (f, s) in filters.iter().zip(&installs) {
        println!(
            "{:<34} {:<16} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
            f.name,
            f.arches,
            f.prog.len(),
            us(s.p50),
            us(s.p90),
            us(s.p99),
            us(s.min),
            us(s.max)
        );
    }
    println!(
        "\nper-syscall cost: {} children x {} batches of {} calls per configuration (ns/call)",
        o.syscall_rounds, o.batches, o.batch_len
    );
    println!(
        "{:<26} {:<33} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9}",
        "syscall", "filter", "p50", "p90", "p99", "min", "p50 vs 0", "min vs 0"
    );
    let mut sys_json = Vec::new();
    for (p, probe) in Probe::ALL.iter().enumerate() {
        let base = Stats::of(&per[0][p]);
        for (c, (cname, _)) in configs.iter().enumerate() {
            let s = Stats::of(&per[c][p]);
            let overhead = (s.p50 / base.p50 - 1.0) * 100.0;
            let overhead_min = (s.min / base.min - 1.0) * 100.0;
            println!(
                "{:<26} {:<33} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>+8.1}% {:>+8.1}%",
                probe.name(),
                cname,
                s.p50,
                s.p90,
                s.p99,
                s.min,
                overhead,
                overhead_min
            );
            sys_json.push(json!({
                "syscall": probe.name(), "note": probe.note(), "filter": cname,
                "ns_per_call": s.json(), "overhead_pct_p50": overhead,
                "overhead_pct_min": overhead_min}));
        }
    }
    println!("\nseccompiler translation notes:");
    for n in &notes {
        println!("  {n}");
    }
    let target_install = installs[0].p50 < 100_000.0;
    println!(
        "\ntargets: default profile install p50 {} µs (target < 100 µs: {}); hot syscall \
         overhead see the 'vs 0' columns (target < 10 %)",
        us(installs[0].p50),
        if target_install { "met" } else { "missed" }
    );

    if let Some(path) = &o.json {
        let doc = json!({
            "bench": "seccomp",
            "unit": "ns",
            "machine": m,
            "params": {"compile_iters": o.compile_iters, "install_samples": o.install_samples,
                       "syscall_children": o.syscall_rounds, "batches": o.batches,
                       "batch_len": o.batch_len},
            "compile": compiles.iter().map(|(name, (first, s))| json!({
                "name": name, "first_ns": first, "ns": s.json()})).collect::<Vec<_>>(),
            "install": filters.iter().zip(&installs).map(|(f, s)| json!({
                "name": f.name, "arches": f.arches, "insns": f.prog.len(), "ns": s.json()
            })).collect::<Vec<_>>(),
            "syscalls": sys_json,
            "seccompiler_notes": notes,
        });
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| BenchError::Setup(format!("serialize: {e}")))?;
        std::fs::write(path, text)
            .map_err(|e| BenchError::Setup(format!("write {}: {e}", path.display())))?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("seccomp bench: {e}");
        std::process::exit(1);
    }
}
