use std::collections::{BTreeMap, BTreeSet};

use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

use super::asm::{Asm, BPF_JEQ, BPF_JGE};
use super::compile::*;
use super::interp::{run, Data, Insn};
use super::*;

const EPERM_RET: u32 = RET_ERRNO | 1;
const ENOSYS_RET: u32 = RET_ERRNO | 38;
const ARCH_OTHER: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

fn insns(p: &Program) -> Vec<Insn> {
    p.instructions().iter().map(Insn::from).collect()
}

fn sc_insns(p: &seccompiler::BpfProgram) -> Vec<Insn> {
    p.iter()
        .map(|i| Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("valid profile")
}

fn data(arch: u32, nr: u32, args: [u64; 6]) -> Data {
    Data {
        nr,
        arch,
        ip: 0x7fff_1234_5678,
        args,
    }
}

fn eval(p: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run(p, &data(arch, nr, args)).expect("program runs")
}

/// Syscall numbers to probe: every native number 0..=470, the x32 range, out-of-range ones.
fn probe_numbers() -> Vec<u32> {
    let mut v: Vec<u32> = (0..=470).collect();
    v.extend((0..=560).map(|n| X32_SYSCALL_BIT | n));
    v.extend([
        471,
        1000,
        X32_SYSCALL_BIT - 1,
        0x7fff_ffff,
        0x8000_0000,
        0xc000_0000,
        0xffff_fffe,
        u32::MAX,
    ]);
    v
}

/// Interesting 64-bit values for one argument, derived from the rules that test it.
fn samples_for(values: &BTreeSet<u64>) -> Vec<u64> {
    let mut s: BTreeSet<u64> = [
        0,
        1,
        0x11,
        0x5412,
        0x1_0000_5412,
        0xffff_ffff_0000_5412,
        0x7e02_0000,
        0x1000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        u64::MAX,
        u64::MAX - 1,
        0x8000_0000_0000_0000,
    ]
    .into();
    for &v in values {
        s.extend([
            v,
            v.wrapping_add(1),
            v.wrapping_sub(1),
            v ^ (1 << 32),
            v & 0xffff_ffff,
            v | 0xffff_ffff_0000_0000,
            !v,
        ]);
    }
    s.into_iter().collect()
}

/// All argument vectors to try for `nr`: the cartesian product of samples over the argument
/// indexes its rules look at (capped), or a few fixed vectors when there are no rules.
fn arg_vectors(o: Option<&Outcome>) -> Vec<[u64; 6]> {
    let mut base = vec![[0; 6], [u64::MAX; 6], [1, 0x5412, 0x1_0000_0000, 7, 0, 9]];
    let Some(Outcome::Rules(rules)) = o else {
        return base;
    };
    let mut per_index: BTreeMap<u8, BTreeSet<u64>> = BTreeMap::new();
    for r in rules {
        for c in &r.conds {
            let e = per_index.entry(c.index).or_default();
            e.insert(c.value);
            e.insert(c.value_two);
            e.insert(c.value & c.value_two);
        }
    }
    let mut out: Vec<[u64; 6]> = vec![[0; 6]];
    for (idx, vals) in per_index {
        let samples = samples_for(&vals);
        let mut next = Vec::new();
        for v in &out {
            for s in &samples {
                let mut a = *v;
                a[usize::from(idx)] = *s;
                next.push(a);
            }
        }
        out = next;
        if out.len() > 40_000 {
            out.truncate(40_000);
        }
    }
    base.append(&mut out);
    base
}

/// Runs `ours` against `plan.evaluate` (and `other`, if given) over all probes; returns the
/// number of inputs checked.
fn check_all(ours: &[Insn], plan: &Plan, other: Option<&[Insn]>, arches: &[u32]) -> usize {
    let mut n = 0;
    for &arch in arches {
        let ap = plan.arches.iter().find(|a| a.audit_arch == arch);
        for nr in probe_numbers() {
            let o = ap.and_then(|a| {
                let mirrored = a.x32_mirror && (X32_SYSCALL_BIT..X32_MIRROR_END).contains(&nr);
                a.syscalls
                    .get(&if mirrored { nr - X32_SYSCALL_BIT } else { nr })
            });
            for args in arg_vectors(o) {
                let got = eval(ours, arch, nr, args);
                let want = plan.evaluate(arch, nr, &args);
                assert_eq!(
                    got, want,
                    "ours vs model: arch {arch:#x} nr {nr:#x} args {args:x?}"
                );
                if let Some(other) = other {
                    let theirs = eval(other, arch, nr, args);
                    assert_eq!(
                        got, theirs,
                        "ours vs the other program: arch {arch:#x} nr {nr:#x} args {args:x?}"
                    );
                }
                n += 1;
            }
        }
    }
    n
}

/// Builds the seccompiler filter for the x86_64 audit arch of `plan` (x86_64 + x32 numbers).
/// Every rule must be ALLOW (seccompiler has one match action).
fn seccompiler_program(plan: &Plan) -> seccompiler::BpfProgram {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    };
    let ap = plan
        .arches
        .iter()
        .find(|a| a.audit_arch == AUDIT_ARCH_X86_64)
        .expect("x86_64 section");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut entries: Vec<(u32, &Outcome)> = ap.syscalls.iter().map(|(n, o)| (*n, o)).collect();
    if ap.x32_mirror {
        entries.extend(
            ap.syscalls
                .range(..X32_SYSCALL_BIT)
                .map(|(n, o)| (n | X32_SYSCALL_BIT, o)),
        );
    }
    for (nr, o) in entries {
        let nr = &nr;
        match o {
            Outcome::Action(a) if *a == RET_ALLOW => {
                rules.insert(i64::from(*nr), vec![]);
            }
            Outcome::Action(a) => assert_eq!(*a, plan.default_action, "nr {nr}"),
            Outcome::Rules(rs) => {
                let mut v = Vec::new();
                for r in rs {
                    assert_eq!(r.action, RET_ALLOW, "only ALLOW rules are expressible");
                    let conds = r
                        .conds
                        .iter()
                        .map(|c| {
                            let (op, val) = match c.op {
                                CmpOp::Eq => (SeccompCmpOp::Eq, c.value),
                                CmpOp::Ne => (SeccompCmpOp::Ne, c.value),
                                CmpOp::Lt => (SeccompCmpOp::Lt, c.value),
                                CmpOp::Le => (SeccompCmpOp::Le, c.value),
                                CmpOp::Ge => (SeccompCmpOp::Ge, c.value),
                                CmpOp::Gt => (SeccompCmpOp::Gt, c.value),
                                CmpOp::MaskedEq => (SeccompCmpOp::MaskedEq(c.value), c.value_two),
                            };
                            SeccompCondition::new(c.index, SeccompCmpArgLen::Qword, op, val)
                                .expect("condition")
                        })
                        .collect();
                    v.push(SeccompRule::new(conds).expect("rule"));
                }
                rules.insert(i64::from(*nr), v);
            }
        }
    }
    let errno = plan.default_action & RET_DATA;
    assert_eq!(plan.default_action, RET_ERRNO | errno);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(errno),
        SeccompAction::Allow,
        seccompiler::TargetArch::x86_64,
    )
    .expect("filter");
    filter.try_into().expect("bpf")
}

/// The default profile cut down to what seccompiler can express: x86_64 + x32, and only names
/// none of whose rules has an action other than ALLOW.
fn restricted_default() -> LinuxSeccomp {
    restricted_default_for(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]))
}

fn restricted_default_for(arches: serde_json::Value) -> LinuxSeccomp {
    let mut v: serde_json::Value = serde_json::from_str(DEFAULT_PROFILE).expect("json");
    let syscalls = v["syscalls"].as_array().expect("syscalls").clone();
    let mut not_allow = BTreeSet::new();
    for s in &syscalls {
        if s["action"] != "SCMP_ACT_ALLOW" {
            for n in s["names"].as_array().expect("names") {
                not_allow.insert(n.as_str().expect("name").to_string());
            }
        }
    }
    let kept: Vec<serde_json::Value> = syscalls
        .into_iter()
        .filter(|s| s["action"] == "SCMP_ACT_ALLOW")
        .map(|mut s| {
            let names: Vec<serde_json::Value> = s["names"]
                .as_array()
                .expect("names")
                .iter()
                .filter(|n| !not_allow.contains(n.as_str().expect("name")))
                .cloned()
                .collect();
            s["names"] = names.into();
            s
        })
        .collect();
    v["syscalls"] = kept.into();
    v["architectures"] = arches;
    profile(v)
}

#[test]
fn default_profile_is_small_and_prints_counts() {
    let p = default_profile().expect("default profile");
    let t = std::time::Instant::now();
    let prog = compile(&p).expect("compile");
    let compile_time = t.elapsed();
    let restricted = restricted_default();
    let ours_r = compile(&restricted).expect("compile restricted");
    let theirs_r = seccompiler_program(&Plan::from_profile(&restricted).expect("plan"));
    let native_only = restricted_default_for(json!(["SCMP_ARCH_X86_64"]));
    let ours_n = compile(&native_only).expect("compile x86_64 only");
    let theirs_n = seccompiler_program(&Plan::from_profile(&native_only).expect("plan"));
    let plan = Plan::from_profile(&p).expect("plan");
    let x64 = plan
        .arches
        .iter()
        .find(|a| a.audit_arch == AUDIT_ARCH_X86_64)
        .expect("x86_64");
    let allowed = x64
        .syscalls
        .iter()
        .filter(|(nr, o)| **nr < X32_SYSCALL_BIT && **o != Outcome::Action(plan.default_action))
        .count();
    println!(
        "seccomp default profile: ours {} instructions (x86_64+x32+i386, {allowed} x86_64 syscalls \
         with a non-default outcome, compiled in {compile_time:?}); restricted to what seccompiler \
         expresses: x86_64+x32 ours {} vs seccompiler 0.5 {} instructions, x86_64 only ours {} vs \
         seccompiler 0.5 {}",
        prog.len(),
        ours_r.len(),
        theirs_r.len(),
        ours_n.len(),
        theirs_n.len()
    );
    assert!(
        (120..=200).contains(&prog.len()),
        "default profile compiles to {} instructions",
        prog.len()
    );
    assert!(ours_r.len() * 4 < theirs_r.len());
    assert!(ours_n.len() * 4 < theirs_n.len());
}

#[test]
fn x32_low_numbers_mirror_x86_64() {
    // The assumption behind X32_MIRROR_END: below it, x32 numbers are x86_64 numbers + bit.
    let mut n = 0;
    for (name, nr) in super::syscalls::X32 {
        if *nr < X32_MIRROR_END {
            assert_eq!(
                super::syscalls::lookup(super::syscalls::X86_64, name),
                Some(nr - X32_SYSCALL_BIT),
                "{name}"
            );
            n += 1;
        } else {
            // The x32 compat entries (512..=547) keep their names on x86_64 below 512.
            let native = super::syscalls::lookup(super::syscalls::X86_64, name);
            assert!(native.is_some_and(|v| v < 512), "{name}");
        }
    }
    assert!(n > 300);
}

#[test]
fn default_profile_matches_model_everywhere() {
    let p = default_profile().expect("default profile");
    let plan = Plan::from_profile(&p).expect("plan");
    let prog = compile(&p).expect("compile");
    let n = check_all(
        &insns(&prog),
        &plan,
        None,
        &[AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, ARCH_OTHER],
    );
    assert!(n > 3000, "{n} inputs");
}

#[test]
fn default_profile_differential_vs_seccompiler() {
    let restricted = restricted_default();
    let plan = Plan::from_profile(&restricted).expect("plan");
    let ours = compile(&restricted).expect("compile");
    let theirs = seccompiler_program(&plan);
    let n = check_all(
        &insns(&ours),
        &plan,
        Some(&sc_insns(&theirs)),
        &[AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, ARCH_OTHER],
    );
    assert!(n > 3000, "{n} inputs");
}

/// Expected actions written from the profile's intent, independent of the plan code.
#[test]
fn default_profile_spot_checks() {
    let prog = insns(&compile(&default_profile().expect("profile")).expect("compile"));
    let x = |nr: i64, args: [u64; 6]| eval(&prog, AUDIT_ARCH_X86_64, nr as u32, args);
    let z = [0u64; 6];
    assert_eq!(x(libc::SYS_getpid, z), RET_ALLOW);
    assert_eq!(x(libc::SYS_read, z), RET_ALLOW);
    assert_eq!(x(libc::SYS_mount, z), EPERM_RET);
    assert_eq!(x(libc::SYS_unshare, z), EPERM_RET);
    assert_eq!(x(libc::SYS_setns, z), EPERM_RET);
    assert_eq!(x(libc::SYS_ptrace, z), EPERM_RET);
    assert_eq!(x(libc::SYS_bpf, z), EPERM_RET);
    assert_eq!(x(libc::SYS_io_uring_setup, z), EPERM_RET);
    assert_eq!(x(libc::SYS_keyctl, z), EPERM_RET);
    assert_eq!(x(libc::SYS_kexec_load, z), EPERM_RET);
    assert_eq!(x(libc::SYS_clone3, z), ENOSYS_RET);
    let clone = |flags: u64| x(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]);
    assert_eq!(clone(0x11), RET_ALLOW); // SIGCHLD
    assert_eq!(clone(0x003d_0f00), RET_ALLOW); // pthread_create's flags
    for ns in [
        0x0002_0000u64,
        0x0400_0000,
        0x0800_0000,
        0x1000_0000,
        0x2000_0000,
        0x4000_0000,
        0x0200_0000,
    ] {
        assert_eq!(clone(ns | 0x11), EPERM_RET, "clone flags {ns:#x}");
    }
    let ioctl = |req: u64| x(libc::SYS_ioctl, [0, req, 0, 0, 0, 0]);
    assert_eq!(ioctl(0x5412), EPERM_RET); // TIOCSTI
    assert_eq!(ioctl(0xffff_ffff_0000_5412), EPERM_RET); // high bits are dropped by the kernel
    assert_eq!(ioctl(0x5401), RET_ALLOW); // TCGETS
    let socket = |fam: u64| x(libc::SYS_socket, [fam, 1, 0, 0, 0, 0]);
    for fam in [1u64, 2, 10, 16, 17] {
        assert_eq!(socket(fam), RET_ALLOW, "family {fam}");
    }
    for fam in [40u64, 38, 0x1_0000_0028, 0xffff_ffff_0000_0028] {
        assert_eq!(socket(fam), EPERM_RET, "family {fam:#x}");
    }
    // The kernel takes the low 32 bits: this is AF_INET.
    assert_eq!(socket(0x1_0000_0002), RET_ALLOW);
    let pers = |p: u64| x(libc::SYS_personality, [p, 0, 0, 0, 0, 0]);
    for p in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff, u64::MAX] {
        assert_eq!(pers(p), RET_ALLOW, "personality {p:#x}");
    }
    assert_eq!(pers(0x0040_0000), EPERM_RET); // READ_IMPLIES_EXEC
                                              // x32: read is 0 | bit, rt_sigaction is 512 | bit, mount 165 | bit, ptrace 521 | bit.
    assert_eq!(x(0x4000_0000, z), RET_ALLOW);
    assert_eq!(x(0x4000_0200, z), RET_ALLOW);
    assert_eq!(x(0x4000_00a5, z), EPERM_RET);
    assert_eq!(x(0x4000_0209, z), EPERM_RET);
    assert_eq!(x(0x4000_01b3, z), ENOSYS_RET); // x32 clone3
    assert_eq!(x(0x4000_0038, [0x2000_0011, 0, 0, 0, 0, 0]), EPERM_RET); // x32 clone + NEWUSER
                                                                         // 13 | bit is x86_64's rt_sigaction number, ENOSYS on x32: it mirrors x86_64 (allowed).
    assert_eq!(x(0x4000_000d, z), RET_ALLOW);
    assert_eq!(x(0x4000_0065, z), EPERM_RET); // 101 | bit mirrors ptrace
    assert_eq!(x(-1, z), EPERM_RET);
    // i386: getpid 20, mount 21, socketcall 102, clone3 435.
    let i = |nr: u32| eval(&prog, AUDIT_ARCH_I386, nr, z);
    assert_eq!(i(20), RET_ALLOW);
    assert_eq!(i(21), EPERM_RET);
    assert_eq!(i(102), RET_ALLOW);
    assert_eq!(i(435), ENOSYS_RET);
    assert_eq!(eval(&prog, ARCH_OTHER, 39, z), RET_KILL_PROCESS);
}

#[test]
fn x86_64_table_matches_libc() {
    let pairs: &[(&str, i64)] = &[
        ("read", libc::SYS_read),
        ("write", libc::SYS_write),
        ("open", libc::SYS_open),
        ("mmap", libc::SYS_mmap),
        ("ioctl", libc::SYS_ioctl),
        ("socket", libc::SYS_socket),
        ("clone", libc::SYS_clone),
        ("fork", libc::SYS_fork),
        ("execve", libc::SYS_execve),
        ("personality", libc::SYS_personality),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("reboot", libc::SYS_reboot),
        ("keyctl", libc::SYS_keyctl),
        ("unshare", libc::SYS_unshare),
        ("setns", libc::SYS_setns),
        ("bpf", libc::SYS_bpf),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("statx", libc::SYS_statx),
        ("rseq", libc::SYS_rseq),
        ("pidfd_open", libc::SYS_pidfd_open),
        ("clone3", libc::SYS_clone3),
        ("close_range", libc::SYS_close_range),
        ("openat2", libc::SYS_openat2),
        ("faccessat2", libc::SYS_faccessat2),
        ("epoll_pwait2", libc::SYS_epoll_pwait2),
        ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
        ("futex_waitv", libc::SYS_futex_waitv),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("getpid", libc::SYS_getpid),
        ("exit_group", libc::SYS_exit_group),
        ("newfstatat", libc::SYS_newfstatat),
        ("arch_prctl", libc::SYS_arch_prctl),
        ("seccomp", libc::SYS_seccomp),
        ("memfd_create", libc::SYS_memfd_create),
        ("copy_file_range", libc::SYS_copy_file_range),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("io_getevents", libc::SYS_io_getevents),
    ];
    for (name, nr) in pairs {
        assert_eq!(
            super::syscalls::lookup(super::syscalls::X86_64, name),
            Some(*nr as u32),
            "{name}"
        );
    }
    assert_eq!(
        super::syscalls::lookup(super::syscalls::X86_64, "no_such_call"),
        None
    );
}

fn synthetic() -> serde_json::Value {
    let arg = |index: usize, op: &str, value: u64, value_two: Option<u64>| {
        let mut a = json!({"index": index, "value": value, "op": op});
        if let Some(v2) = value_two {
            a["valueTwo"] = v2.into();
        }
        a
    };
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 13,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["getpid", "gettid", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(0, "SCMP_CMP_EQ", 0x1_0000_0005, None)]},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(1, "SCMP_CMP_NE", 0x7, None)]},
            {"names": ["openat"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(2, "SCMP_CMP_LT", 0x1_0000_0000, None)]},
            {"names": ["close"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(0, "SCMP_CMP_LE", 0xffff_ffff_0000_0001, None)]},
            {"names": ["fstat"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(5, "SCMP_CMP_GE", 0x8000_0000_0000_0000, None)]},
            {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(1, "SCMP_CMP_GT", 5, None)]},
            {"names": ["pread64"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(3, "SCMP_CMP_LT", 0x20, None)]},
            {"names": ["pwrite64"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(3, "SCMP_CMP_GE", 0x3_0000_0010, None)]},
            {"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(4, "SCMP_CMP_MASKED_EQ", 0xff00_0000_0000_00ff, Some(0x1200_0000_0000_0034))]},
            {"names": ["munmap"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(1, "SCMP_CMP_MASKED_EQ", 0xf0, Some(0x1f))]},
            {"names": ["brk"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(0, "SCMP_CMP_MASKED_EQ", 0, Some(0))]},
            {"names": ["mprotect"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(0, "SCMP_CMP_GE", 10, None), arg(0, "SCMP_CMP_LE", 20, None),
                      arg(2, "SCMP_CMP_MASKED_EQ", 4, Some(4))]},
            {"names": ["dup"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, "SCMP_CMP_EQ", 1, None)]},
            {"names": ["dup"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, "SCMP_CMP_EQ", 2, None)]},
            {"names": ["dup"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(0, "SCMP_CMP_GT", 0xffff_ffff, None), arg(1, "SCMP_CMP_NE", 0, None)]},
            {"names": ["fcntl"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(1, "SCMP_CMP_LE", 0xffff_ffff, None)]}
        ]
    })
}

#[test]
fn synthetic_operators_differential_vs_seccompiler() {
    let p = profile(synthetic());
    let plan = Plan::from_profile(&p).expect("plan");
    let ours = compile(&p).expect("compile");
    let theirs = seccompiler_program(&plan);
    let n = check_all(
        &insns(&ours),
        &plan,
        Some(&sc_insns(&theirs)),
        &[AUDIT_ARCH_X86_64],
    );
    assert!(n > 5000, "{n} inputs");
    // A few hand-computed expectations, independent of the model.
    let o = insns(&ours);
    let e = |nr: i64, args: [u64; 6]| eval(&o, AUDIT_ARCH_X86_64, nr as u32, args);
    let deny = RET_ERRNO | 13;
    assert_eq!(e(libc::SYS_read, [0x1_0000_0005, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(e(libc::SYS_read, [5, 0, 0, 0, 0, 0]), deny);
    assert_eq!(e(libc::SYS_write, [0, 7, 0, 0, 0, 0]), deny);
    assert_eq!(
        e(libc::SYS_write, [0, 0x1_0000_0007, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        e(libc::SYS_close, [0xffff_ffff_0000_0001, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        e(libc::SYS_close, [0xffff_ffff_0000_0002, 0, 0, 0, 0, 0]),
        deny
    );
    assert_eq!(
        e(libc::SYS_close, [0xfffe_ffff_ffff_ffff, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        e(libc::SYS_mmap, [0, 0, 0, 0, 0x12ab_cdef_0000_1234, 0]),
        RET_ALLOW
    );
    assert_eq!(
        e(libc::SYS_mmap, [0, 0, 0, 0, 0x12ab_cdef_0000_1235, 0]),
        deny
    );
    assert_eq!(e(libc::SYS_mprotect, [15, 0, 4, 0, 0, 0]), RET_ALLOW);
    assert_eq!(e(libc::SYS_mprotect, [15, 0, 3, 0, 0, 0]), deny);
    assert_eq!(e(libc::SYS_mprotect, [21, 0, 4, 0, 0, 0]), deny);
    assert_eq!(e(libc::SYS_dup, [2, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(e(libc::SYS_dup, [3, 0, 0, 0, 0, 0]), deny);
    assert_eq!(e(libc::SYS_dup, [0x1_0000_0000, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(e(libc::SYS_dup, [0x1_0000_0000, 0, 0, 0, 0, 0]), deny);
}

/// Mixed actions, rule order (first match wins) and a rule block long enough to need JA
/// trampolines inside generated code; checked against the model.
#[test]
fn mixed_actions_order_and_long_blocks_match_model() {
    let mut syscalls = vec![
        json!({"names": ["getpid"], "action": "SCMP_ACT_TRAP"}),
        json!({"names": ["getppid"], "action": "SCMP_ACT_LOG"}),
        json!({"names": ["gettid"], "action": "SCMP_ACT_TRACE", "errnoRet": 77}),
        json!({"names": ["getuid"], "action": "SCMP_ACT_KILL"}),
        json!({"names": ["getgid"], "action": "SCMP_ACT_KILL_PROCESS"}),
        json!({"names": ["geteuid"], "action": "SCMP_ACT_ERRNO"}),
        json!({"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
               "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}),
        json!({"names": ["write"], "action": "SCMP_ACT_KILL_THREAD",
               "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_LE"}]}),
        json!({"names": ["write"], "action": "SCMP_ACT_ALLOW"}),
        json!({"names": ["write"], "action": "SCMP_ACT_TRAP"}),
    ];
    // 60 rules of 3 conditions each on `read`: ~600 instructions in one block.
    for i in 0..60u64 {
        syscalls.push(
            json!({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 100,
            "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"},
                     {"index": 1, "value": i * 3, "op": "SCMP_CMP_GE"},
                     {"index": 2, "value": 0xff, "valueTwo": i, "op": "SCMP_CMP_MASKED_EQ"}]}),
        );
    }
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": syscalls
    }));
    let plan = Plan::from_profile(&p).expect("plan");
    let prog = compile(&p).expect("compile");
    let o = insns(&prog);
    check_all(&o, &plan, None, &[AUDIT_ARCH_X86_64, AUDIT_ARCH_I386]);
    let e = |nr: i64, args: [u64; 6]| eval(&o, AUDIT_ARCH_X86_64, nr as u32, args);
    let z = [0; 6];
    assert_eq!(e(libc::SYS_getpid, z), RET_TRAP);
    assert_eq!(e(libc::SYS_getppid, z), RET_LOG);
    assert_eq!(e(libc::SYS_gettid, z), RET_TRACE | 77);
    assert_eq!(e(libc::SYS_getuid, z), RET_KILL_THREAD);
    assert_eq!(e(libc::SYS_getgid, z), RET_KILL_PROCESS);
    assert_eq!(e(libc::SYS_geteuid, z), RET_ERRNO | 1);
    assert_eq!(e(libc::SYS_write, [2, 0, 0, 0, 0, 0]), RET_ERRNO | 5);
    assert_eq!(e(libc::SYS_write, [1, 0, 0, 0, 0, 0]), RET_KILL_THREAD);
    assert_eq!(e(libc::SYS_write, [3, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(e(libc::SYS_read, [59, 177, 59, 0, 0, 0]), RET_ERRNO | 159);
    assert_eq!(e(libc::SYS_read, [59, 176, 59, 0, 0, 0]), RET_ALLOW);
    assert_eq!(e(libc::SYS_read, [0, 0, 0x100, 0, 0, 0]), RET_ERRNO | 100);
    // i386 read is 3.
    assert_eq!(
        eval(&o, AUDIT_ARCH_I386, 3, [30, 90, 30, 0, 0, 0]),
        RET_ERRNO | 130
    );
    // The block really is long (shared by both architecture sections) and contains 32-bit JA
    // trampolines.
    assert!(prog.len() > 600, "{}", prog.len());
    assert!(prog
        .instructions()
        .iter()
        .any(|i| i.code == asm::BPF_JMP | asm::BPF_JA && i.k > 255));
}

#[test]
fn assembler_long_conditional_jumps() {
    for (far_t, far_f) in [(true, false), (false, true), (true, true)] {
        let mut a = Asm::new();
        let (t, f, near) = (a.label(), a.label(), a.label());
        a.load(OFF_NR);
        a.jump(
            BPF_JEQ,
            7,
            if far_t { t } else { near },
            if far_f { f } else { near },
        );
        a.bind(near);
        a.ret(0xaaaa);
        for i in 0..300 {
            // Alternate offsets: a load of the word A already holds is elided.
            a.load(if i % 2 == 0 { OFF_ARCH } else { OFF_NR });
        }
        a.bind(t);
        a.ret(0x7777);
        for i in 0..300 {
            // Alternate offsets: a load of the word A already holds is elided.
            a.load(if i % 2 == 0 { OFF_ARCH } else { OFF_NR });
        }
        a.bind(f);
        a.ret(0xffff);
        let prog: Vec<Insn> = a
            .finish()
            .expect("assemble")
            .iter()
            .map(Insn::from)
            .collect();
        let extra = usize::from(far_t) + usize::from(far_f);
        assert_eq!(prog.len(), 1 + 1 + extra + 1 + 300 + 1 + 300 + 1);
        let hit = eval(&prog, 0, 7, [0; 6]);
        let miss = eval(&prog, 0, 8, [0; 6]);
        assert_eq!(hit, if far_t { 0x7777 } else { 0xaaaa });
        assert_eq!(miss, if far_f { 0xffff } else { 0xaaaa });
    }
}

#[test]
fn assembler_cascading_trampolines_and_errors() {
    // 300 conditional jumps all targeting the same far label: each expansion pushes the
    // target further, and every jump must still land there.
    let mut a = Asm::new();
    let end = a.label();
    a.load(OFF_NR);
    for k in 0..300u32 {
        let next = a.label();
        a.jump(BPF_JEQ, k, end, next);
        a.bind(next);
    }
    a.ret(1);
    a.bind(end);
    a.ret(2);
    let prog: Vec<Insn> = a
        .finish()
        .expect("assemble")
        .iter()
        .map(Insn::from)
        .collect();
    for nr in [0u32, 44, 299] {
        assert_eq!(eval(&prog, 0, nr, [0; 6]), 2, "nr {nr}");
    }
    assert_eq!(eval(&prog, 0, 300, [0; 6]), 1);

    // Backward jump and unbound label are errors, not bad code.
    let mut a = Asm::new();
    let back = a.label();
    a.bind(back);
    a.load(0);
    let next = a.label();
    a.jump(BPF_JGE, 1, back, next);
    a.bind(next);
    a.ret(0);
    assert!(matches!(a.finish(), Err(SeccompError::Internal(_))));
    let mut a = Asm::new();
    let nowhere = a.label();
    a.ja(nowhere);
    assert!(matches!(a.finish(), Err(SeccompError::Internal(_))));

    // Too long.
    let mut a = Asm::new();
    for i in 0..5000 {
        a.load(if i % 2 == 0 { OFF_ARCH } else { OFF_NR });
    }
    a.ret(0);
    assert!(matches!(
        a.finish(),
        Err(SeccompError::ProgramTooLong { len: 5001 })
    ));
}

#[test]
fn arch_check_and_x32_handling() {
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let o = insns(&compile(&p).expect("compile"));
    let z = [0; 6];
    // First instruction loads the arch.
    assert_eq!(
        (o[0].code, o[0].k),
        (asm::BPF_LD | asm::BPF_W | asm::BPF_ABS, OFF_ARCH)
    );
    assert_eq!(eval(&o, AUDIT_ARCH_X86_64, 39, z), RET_ALLOW);
    assert_eq!(eval(&o, AUDIT_ARCH_X86_64, 40, z), EPERM_RET);
    assert_eq!(eval(&o, AUDIT_ARCH_I386, 20, z), RET_KILL_PROCESS);
    assert_eq!(eval(&o, ARCH_OTHER, 172, z), RET_KILL_PROCESS);
    // x32 not listed: x32 numbers are a bad arch, except nr -1.
    assert_eq!(
        eval(&o, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, z),
        RET_KILL_PROCESS
    );
    assert_eq!(
        eval(&o, AUDIT_ARCH_X86_64, 0x8000_0000, z),
        RET_KILL_PROCESS
    );
    assert_eq!(eval(&o, AUDIT_ARCH_X86_64, u32::MAX, z), EPERM_RET);

    // Only x32 listed: native numbers are the bad arch, x32 ones are filtered.
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let o = insns(&compile(&p).expect("compile"));
    assert_eq!(eval(&o, AUDIT_ARCH_X86_64, 39, z), RET_KILL_PROCESS);
    assert_eq!(
        eval(&o, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, z),
        RET_ALLOW
    );
    assert_eq!(
        eval(&o, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 40, z),
        EPERM_RET
    );

    // No architectures: native only.
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let o = insns(&compile(&p).expect("compile"));
    assert_eq!(eval(&o, AUDIT_ARCH_X86_64, 39, z), RET_ALLOW);
    assert_eq!(eval(&o, AUDIT_ARCH_I386, 20, z), RET_KILL_PROCESS);
}

#[test]
fn unknown_names_are_skipped() {
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["no_such_syscall", "getpid", "arm_fadvise64_64", "socketcall"],
                      "action": "SCMP_ACT_ALLOW"}]
    }));
    let plan = Plan::from_profile(&p).expect("plan");
    let x = plan
        .arches
        .iter()
        .find(|a| a.audit_arch == AUDIT_ARCH_X86_64)
        .expect("x86_64");
    assert_eq!(x.syscalls.len(), 1); // getpid only (socketcall is i386-only)
    let i = plan
        .arches
        .iter()
        .find(|a| a.audit_arch == AUDIT_ARCH_I386)
        .expect("i386");
    assert_eq!(i.syscalls.len(), 2); // getpid and socketcall
    let o = insns(&compile(&p).expect("compile"));
    assert_eq!(eval(&o, AUDIT_ARCH_X86_64, 39, [0; 6]), RET_ALLOW);
    assert_eq!(eval(&o, AUDIT_ARCH_I386, 102, [0; 6]), RET_ALLOW);
}

#[test]
fn notify_and_invalid_rules_are_rejected() {
    let rule = |extra: serde_json::Value| {
        let mut r = json!({"names": ["getpid"], "action": "SCMP_ACT_ALLOW"});
        for (k, v) in extra.as_object().expect("object") {
            r[k] = v.clone();
        }
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [r]}).to_string()
    };
    let e = from_json(&rule(json!({"action": "SCMP_ACT_NOTIFY"}))).expect_err("notify");
    assert!(
        matches!(e, SeccompError::Notify { ref syscall } if syscall == "getpid"),
        "{e}"
    );
    assert!(e.to_string().contains("SCMP_ACT_NOTIFY"));
    let e = from_json(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).expect_err("notify default");
    assert!(matches!(e, SeccompError::Notify { .. }));
    let e = from_json(&rule(
        json!({"args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}),
    ))
    .expect_err("index");
    assert!(matches!(e, SeccompError::ArgIndex { index: 6, .. }));
    let e = from_json(&rule(
        json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 70000}),
    ))
    .expect_err("errno");
    assert!(matches!(
        e,
        SeccompError::ErrnoRetRange { value: 70000, .. }
    ));
    assert!(matches!(from_json("{not json"), Err(SeccompError::Json(_))));
}

#[test]
fn flags_are_mapped() {
    let p = from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                      "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    )
    .expect("compile");
    assert_eq!(p.flags(), FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW);
    let d = compile(&default_profile().expect("profile")).expect("compile");
    assert_eq!(d.flags(), 0);
}

#[test]
fn bytes_roundtrip_and_validation() {
    let prog = compile(&default_profile().expect("profile")).expect("compile");
    let bytes = prog.to_bytes();
    assert_eq!(Program::from_bytes(&bytes).expect("decode"), prog);
    // Any single-byte corruption is caught (checksum), as are truncation and extension.
    for at in [0, 9, 13, 17, 20, 25, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        assert!(Program::from_bytes(&b).is_err(), "corruption at {at}");
    }
    assert!(Program::from_bytes(&bytes[..bytes.len() - 9]).is_err());
    assert!(Program::from_bytes(&[]).is_err());
    // A well-formed file with an out-of-range jump is refused by validation.
    let mut bad = prog.clone();
    bad.insns[1].jt = 255;
    bad.insns[1].code = asm::BPF_JMP | asm::BPF_JEQ;
    let last = bad.insns.len() - 1;
    bad.insns.truncate(last.min(100));
    let b = bad.to_bytes();
    assert!(matches!(
        Program::from_bytes(&b),
        Err(SeccompError::Decode(_))
    ));
}

#[test]
fn cache_roundtrip_and_invalidation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let p = default_profile().expect("profile");
    let fresh = compile(&p).expect("compile");
    let key = cache_key(&p).expect("key");
    let file = cache.join(format!("{}.bpf", hex(&key)));

    let first = load_cached(&p, &cache).expect("load 1");
    assert_eq!(first, fresh);
    let stored = std::fs::read(&file).expect("cache file written");
    assert_eq!(&stored[..32], &key);
    assert_eq!(Program::from_bytes(&stored[32..]).expect("decode"), fresh);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(&cache).expect("ls").count(), 1);

    // The cache is really used: plant a different valid program under the same key.
    let other = from_json(r#"{"defaultAction": "SCMP_ACT_LOG"}"#).expect("other");
    let mut planted = key.to_vec();
    planted.extend(other.to_bytes());
    std::fs::write(&file, &planted).expect("plant");
    assert_eq!(load_cached(&p, &cache).expect("load planted"), other);

    // Corrupted file: recompiled and rewritten.
    let mut corrupt = stored.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    std::fs::write(&file, &corrupt).expect("corrupt");
    assert_eq!(load_cached(&p, &cache).expect("load corrupt"), fresh);
    assert_eq!(std::fs::read(&file).expect("rewritten"), stored);

    // Truncated file and wrong key: recompiled too.
    std::fs::write(&file, &stored[..40]).expect("truncate");
    assert_eq!(load_cached(&p, &cache).expect("load truncated"), fresh);
    let mut wrong_key = stored.clone();
    wrong_key[0] ^= 1;
    std::fs::write(&file, &wrong_key).expect("wrong key");
    assert_eq!(load_cached(&p, &cache).expect("load wrong key"), fresh);
    assert_eq!(std::fs::read(&file).expect("rewritten"), stored);

    // A different profile gets a different key.
    let p2 = profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    assert_ne!(cache_key(&p2).expect("key"), key);

    // An unwritable cache location is not fatal.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("file");
    assert_eq!(
        load_cached(&p, &blocker.join("sub")).expect("no cache"),
        fresh
    );
}

/// Forks; the child sets no_new_privs, installs `prog` and runs `probe`, whose return value
/// (0 = success, else a failing check number) becomes the exit code. Also returns the install
/// time in nanoseconds measured by the child.
fn in_child(install: impl Fn() -> bool, probe: impl Fn() -> i32) -> (i32, u64) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only calls async-signal-safe functions (prctl, clock_gettime,
    // seccomp, raw syscalls, write, _exit) and never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = (|| {
            if set_no_new_privs().is_err() {
                return 100;
            }
            let t0 = now_ns();
            if !install() {
                return 101;
            }
            let dt = now_ns() - t0;
            // SAFETY: writing 8 bytes from a local to our pipe.
            unsafe { libc::write(fds[1], (&dt as *const u64).cast(), 8) };
            probe()
        })();
        // SAFETY: terminate the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    let mut dt = 0u64;
    // SAFETY: reading at most 8 bytes into a local.
    unsafe { libc::read(fds[0], (&mut dt as *mut u64).cast(), 8) };
    // SAFETY: closing our read end.
    unsafe { libc::close(fds[0]) };
    assert!(libc::WIFEXITED(status), "child killed: status {status:#x}");
    (libc::WEXITSTATUS(status), dt)
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `(return value, errno)` of a raw syscall.
fn raw(nr: i64, a: [u64; 5]) -> (i64, i32) {
    // SAFETY: the probes pass null/invalid pointers only to syscalls the filter refuses, or to
    // syscalls that validate them (getpid takes none).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) };
    // SAFETY: errno of the calling thread.
    (r, unsafe { *libc::__errno_location() })
}

#[test]
fn installs_in_forked_child() {
    // Small profile: mount/umount2 denied with EPERM (the default), getpid allowed.
    let small = from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount", "umount2"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 123}]}"#,
    )
    .expect("small");
    let (code, _) = in_child(
        || small.install().is_ok(),
        || {
            let c = c"/";
            if raw(
                libc::SYS_mount,
                [0, c.as_ptr() as u64, 0, 0x1000 /* MS_BIND */, 0],
            ) != (-1, libc::EPERM)
            {
                return 1;
            }
            if raw(libc::SYS_umount2, [c.as_ptr() as u64, 0, 0, 0, 0]) != (-1, libc::EPERM) {
                return 2;
            }
            if raw(libc::SYS_mkdir, [c.as_ptr() as u64, 0, 0, 0, 0]) != (-1, 123) {
                return 3;
            }
            // SAFETY: getpid has no preconditions.
            if raw(libc::SYS_getpid, [0; 5]).0 != i64::from(unsafe { libc::getpid() }) {
                return 4;
            }
            0
        },
    );
    assert_eq!(code, 0, "failed check {code}");

    let default = compile(&default_profile().expect("profile")).expect("compile");
    let (code, ns) = in_child(
        || default.install().is_ok(),
        || {
            if raw(libc::SYS_clone3, [0, 0, 0, 0, 0]) != (-1, libc::ENOSYS) {
                return 1;
            }
            if raw(libc::SYS_unshare, [0x1000_0000, 0, 0, 0, 0]) != (-1, libc::EPERM) {
                return 2;
            }
            if raw(libc::SYS_socket, [40 /* AF_VSOCK */, 1, 0, 0, 0]) != (-1, libc::EPERM) {
                return 3;
            }
            if raw(libc::SYS_ioctl, [0, 0x5412, c"x".as_ptr() as u64, 0, 0]) != (-1, libc::EPERM) {
                return 4;
            }
            if raw(libc::SYS_getpid, [0; 5]).0 <= 0 {
                return 5;
            }
            // A namespace-creating clone is refused before the kernel sees it.
            if raw(libc::SYS_clone, [0x2000_0000 | 0x11, 0, 0, 0, 0]) != (-1, libc::EPERM) {
                return 6;
            }
            // An ordinary fork-like clone works.
            let (pid, _) = raw(libc::SYS_clone, [0x11, 0, 0, 0, 0]);
            if pid == 0 {
                // SAFETY: leave the grandchild immediately.
                unsafe { libc::_exit(0) };
            }
            if pid < 0 {
                return 7;
            }
            let mut st = 0;
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid as i32, &mut st, 0) };
            0
        },
    );
    assert_eq!(code, 0, "failed check {code}");
    println!(
        "seccomp: default profile ({} instructions) installed in {:.3} ms",
        default.len(),
        ns as f64 / 1e6
    );
}

/// The default profile compiled by compiler version 1 (linear layout of blocks per
/// architecture section, no exceptions, no load elision; 280 instructions), kept to check
/// that the current layout gives the same verdict for every input.
const DEFAULT_V1: &[u8] = include_bytes!("testdata/default-profile-v1.bpf");

#[test]
fn default_profile_same_verdicts_as_compiler_v1() {
    let old = Program::from_bytes(DEFAULT_V1).expect("v1 program");
    assert_eq!(old.len(), 280);
    let p = default_profile().expect("profile");
    let plan = Plan::from_profile(&p).expect("plan");
    let new = compile(&p).expect("compile");
    assert!(new.len() < old.len(), "{} vs {}", new.len(), old.len());
    let n = check_all(
        &insns(&new),
        &plan,
        Some(&insns(&old)),
        &[AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, ARCH_OTHER],
    );
    assert!(n > 3000, "{n} inputs");
    // Same on the x86_64-only profile, against its own v1-style model.
    let mut v: serde_json::Value = serde_json::from_str(DEFAULT_PROFILE).expect("json");
    v["architectures"] = json!(["SCMP_ARCH_X86_64"]);
    let x64 = profile(v);
    let plan = Plan::from_profile(&x64).expect("plan");
    let prog = compile(&x64).expect("compile");
    check_all(&insns(&prog), &plan, None, &[AUDIT_ARCH_X86_64, ARCH_OTHER]);
}

#[test]
fn isolated_numbers_become_exceptions() {
    let a = |k| Outcome::Action(k);
    type Shape = (u32, Outcome, Vec<(u32, Outcome)>, u64);
    let shape = |l: &[Leaf]| -> Vec<Shape> {
        l.iter()
            .map(|x| (x.start, x.base.clone(), x.exceptions.clone(), x.weight))
            .collect()
    };
    let iv = vec![
        (0, a(1)),
        (5, a(2)), // isolated: 4 and 6 are both 1
        (6, a(1)),
        (9, a(3)), // two numbers wide: stays an interval
        (11, a(1)),
        (20, a(2)), // isolated
        (21, a(1)),
        (30, a(2)), // last: no right neighbour, stays
    ];
    // Every number up to 40 is emulated; the leaf weights are their sizes.
    assert_eq!(
        shape(&leaves(&iv, 40, 1000)),
        vec![
            (0, a(1), vec![(5, a(2))], 9),
            (9, a(3), vec![], 2),
            (11, a(1), vec![(20, a(2))], 19),
            (30, a(2), vec![], 11),
        ]
    );
    // Numbers from 25 on are never emulated: they weigh nothing.
    assert_eq!(
        leaves(&iv, 40, 25)
            .iter()
            .map(|l| l.weight)
            .collect::<Vec<_>>(),
        vec![9, 2, 14, 0]
    );
    // The exception list is capped: the fifth isolated number starts a new leaf.
    let mut iv = vec![(0, a(1))];
    for k in 0..6u32 {
        iv.push((10 * k + 5, a(2)));
        iv.push((10 * k + 6, a(1)));
    }
    let l = leaves(&iv, 60, 1000);
    let starts: Vec<u32> = l.iter().map(|x| x.start).collect();
    assert_eq!(starts, vec![0, 45, 46]);
    assert_eq!(l[0].exceptions.len(), 4);
    assert!(l[1].exceptions.is_empty());
    assert_eq!(l[2].exceptions, vec![(55, a(2))]);
}

#[test]
fn assembler_elides_only_provably_redundant_loads() {
    let ld = asm::BPF_LD | asm::BPF_W | asm::BPF_ABS;
    let count_loads = |p: &[libc::sock_filter]| p.iter().filter(|i| i.code == ld).count();
    // Both paths into `join` hold arg0: the second load disappears.
    let mut a = Asm::new();
    let (t, join) = (a.label(), a.label());
    a.load(OFF_ARGS);
    a.jump(BPF_JEQ, 1, t, join);
    a.bind(t);
    a.jump(BPF_JEQ, 2, join, join);
    a.bind(join);
    a.load(OFF_ARGS);
    a.ret(0);
    assert_eq!(count_loads(&a.finish().expect("assemble")), 1);
    // One path modified A with `and`: the load stays.
    let mut a = Asm::new();
    let (t, f, join) = (a.label(), a.label(), a.label());
    a.load(OFF_ARGS);
    a.jump(BPF_JEQ, 1, t, f);
    a.bind(t);
    a.and(0xff);
    a.ja(join);
    a.bind(f);
    a.ja(join);
    a.bind(join);
    a.load(OFF_ARGS);
    a.ret(0);
    let prog = a.finish().expect("assemble");
    assert_eq!(count_loads(&prog), 2);
    let prog: Vec<Insn> = prog.iter().map(Insn::from).collect();
    // Paths from different words meet: the load stays, and the program is still right.
    let mut a = Asm::new();
    let (t, f, join) = (a.label(), a.label(), a.label());
    a.load(OFF_ARGS);
    a.jump(BPF_JEQ, 1, t, f);
    a.bind(t);
    a.load(OFF_ARGS + 8);
    a.ja(join);
    a.bind(f);
    a.ja(join);
    a.bind(join);
    a.load(OFF_ARGS + 8);
    let (yes, no) = (a.label(), a.label());
    a.jump(BPF_JEQ, 9, yes, no);
    a.bind(yes);
    a.ret(1);
    a.bind(no);
    a.ret(2);
    let p2: Vec<Insn> = a
        .finish()
        .expect("assemble")
        .iter()
        .map(Insn::from)
        .collect();
    assert_eq!(eval(&p2, 0, 0, [0, 9, 0, 0, 0, 0]), 1);
    assert_eq!(eval(&p2, 0, 0, [1, 9, 0, 0, 0, 0]), 1);
    assert_eq!(eval(&p2, 0, 0, [1, 8, 0, 0, 0, 0]), 2);
    assert_eq!(eval(&prog, 0, 0, [1, 0, 0, 0, 0, 0]), 0);
}

#[test]
fn search_tree_favours_emulated_numbers() {
    let leaf = |start: u32, weight: u64| Leaf {
        start,
        base: Outcome::Action(RET_ALLOW),
        exceptions: vec![],
        weight,
    };
    // Equal weights: balanced.
    let even: Vec<Leaf> = (0..4).map(|i| leaf(i * 10, 10)).collect();
    let r = optimal_splits(&even).expect("splits");
    assert_eq!(r[0][3], 1);
    // A heavy first leaf sits right under the root, and so does the one emulated number among
    // the weightless leaves; four weightless leaves stay balanced.
    let skewed = vec![
        leaf(0, 400),
        leaf(400, 1),
        leaf(401, 0),
        leaf(402, 0),
        leaf(403, 0),
    ];
    let r = optimal_splits(&skewed).expect("splits");
    assert_eq!(r[0][4], 0);
    assert_eq!(r[1][4], 1);
    let flat = vec![leaf(0, 0), leaf(1, 0), leaf(2, 0), leaf(3, 0)];
    assert_eq!(optimal_splits(&flat).expect("splits")[0][3], 1);
    // Every split leaves both sides non-empty.
    for (i, row) in r.iter().enumerate() {
        for (j, k) in row.iter().enumerate().skip(i + 1) {
            assert!((i..j).contains(k), "root[{i}][{j}] = {k}");
        }
    }
    assert!(optimal_splits(&even[..1]).is_none());
}
