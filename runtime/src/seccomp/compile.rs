//! OCI `LinuxSeccomp` → plan (plain data) → classic BPF.
//!
//! [`Plan::from_profile`] resolves names to numbers per ABI and turns actions into `SECCOMP_RET_*`
//! values; it is pure data and is what the tests evaluate as the reference model.
//! [`Plan::codegen`] emits: an architecture dispatch, then per audit arch a balanced binary
//! search over syscall-number intervals, then the argument-rule blocks, then one shared `RET`
//! per distinct action.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use super::asm::{Asm, Label, BPF_JEQ, BPF_JGE, BPF_JGT};
use super::{syscalls, SeccompError};

// `SECCOMP_RET_*` action values from <linux/seccomp.h>.
pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(crate) const RET_TRAP: u32 = 0x0003_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_TRACE: u32 = 0x7ff0_0000;
pub(crate) const RET_LOG: u32 = 0x7ffc_0000;
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;
pub(crate) const RET_DATA: u32 = 0x0000_ffff;

// `AUDIT_ARCH_*` from <linux/audit.h>.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// `__X32_SYSCALL_BIT`: x32 syscalls arrive with `AUDIT_ARCH_X86_64` and this bit set in `nr`.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Below `X32_SYSCALL_BIT + 512`, every x32 syscall has the same number and name as its x86_64
/// twin, and the numbers of x86_64-only syscalls (the "64" ABI entries such as 13
/// rt_sigaction, whose x32 versions live at 512..=547) are `sys_ni_syscall` in the x32 table
/// forever. So when both ABIs are listed, the filter strips the x32 bit there and reuses the
/// x86_64 search: same outcome for real x32 syscalls, and for the x86_64-only numbers the
/// kernel answers ENOSYS whatever the filter allows.
pub(crate) const X32_MIRROR_END: u32 = X32_SYSCALL_BIT + 512;

/// `SECCOMP_FILTER_FLAG_*` values (<linux/seccomp.h>).
pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;

/// Action for a syscall made under an architecture the profile does not list (libseccomp's
/// default bad-arch action is `SCMP_ACT_KILL`; we kill the whole process so that a confused
/// multi-threaded program does not continue half-dead).
pub(crate) const BAD_ARCH_ACTION: u32 = RET_KILL_PROCESS;

const EPERM: u32 = 1;

// Offsets in `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`.
pub(crate) const OFF_NR: u32 = 0;
pub(crate) const OFF_ARCH: u32 = 4;
pub(crate) const OFF_ARGS: u32 = 16;

/// Syscall ABIs we have number tables for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Abi {
    X86_64,
    X32,
    I386,
}

impl Abi {
    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::X32 => syscalls::X32,
            Abi::I386 => syscalls::I386,
        }
    }

    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::I386 => AUDIT_ARCH_I386,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::X32 => "x32",
            Abi::I386 => "i386",
        }
    }
}

/// Comparison operator of an argument condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == (value & mask)`, libseccomp semantics (the datum is masked too).
    MaskedEq,
}

/// One 64-bit argument comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub(crate) index: u8,
    pub(crate) op: CmpOp,
    /// OCI `value`: the operand, or the mask for `MaskedEq`.
    pub(crate) value: u64,
    /// OCI `valueTwo`: the compared value for `MaskedEq` (0 when absent).
    pub(crate) value_two: u64,
}

impl Cond {
    /// Reference semantics, used by the tests' model evaluator.
    #[cfg(test)]
    pub(crate) fn matches(&self, arg: u64) -> bool {
        match self.op {
            CmpOp::Ne => arg != self.value,
            CmpOp::Lt => arg < self.value,
            CmpOp::Le => arg <= self.value,
            CmpOp::Eq => arg == self.value,
            CmpOp::Ge => arg >= self.value,
            CmpOp::Gt => arg > self.value,
            CmpOp::MaskedEq => arg & self.value == self.value_two & self.value,
        }
    }
}

/// A rule: all conditions (AND) → action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) action: u32,
    pub(crate) conds: Vec<Cond>,
}

/// What happens to one syscall number: a fixed action, or rules tried in order (first match
/// wins) and then the default action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Action(u32),
    Rules(Vec<Rule>),
}

/// The compiled-to-data form of a profile for one audit architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArchPlan {
    pub(crate) audit_arch: u32,
    /// Which ABIs of this audit arch the profile lists (x86_64 and/or x32 share one).
    pub(crate) abis: Vec<Abi>,
    /// Syscall number → outcome; numbers absent here get the gap action.
    pub(crate) syscalls: BTreeMap<u32, Outcome>,
    /// x86_64 and x32 both listed: x32 numbers below `X32_SYSCALL_BIT + 512` behave like the
    /// x86_64 number without the x32 bit (see [`X32_MIRROR_END`]).
    pub(crate) x32_mirror: bool,
}

impl ArchPlan {
    /// The action for a number not in `syscalls`.
    pub(crate) fn gap_action(&self, nr: u32, default: u32) -> u32 {
        if self.audit_arch == AUDIT_ARCH_X86_64 {
            let high = nr >= X32_SYSCALL_BIT && nr != u32::MAX;
            let listed = if high { Abi::X32 } else { Abi::X86_64 };
            if !self.abis.contains(&listed) && nr != u32::MAX {
                return BAD_ARCH_ACTION;
            }
        }
        default
    }

    /// The numbers below this are the ones the kernel emulates the filter for at install time
    /// to fill its per-architecture action cache (`NR_syscalls` of the ABI; x32 numbers are
    /// never cached): the table's highest number + 1.
    pub(crate) fn emulated_end(&self) -> u32 {
        let table = if self.audit_arch == AUDIT_ARCH_X86_64 {
            syscalls::X86_64
        } else {
            syscalls::I386
        };
        table.iter().map(|(_, nr)| nr + 1).max().unwrap_or(0)
    }

    /// Breakpoints where the gap action may change.
    fn gap_breakpoints(&self) -> Vec<u32> {
        if self.audit_arch == AUDIT_ARCH_X86_64 {
            vec![0, X32_SYSCALL_BIT, u32::MAX]
        } else {
            vec![0]
        }
    }
}

/// A whole profile as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) default_action: u32,
    pub(crate) arches: Vec<ArchPlan>,
    pub(crate) flags: u32,
}

fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: &str,
) -> Result<u32, SeccompError> {
    let data = |dflt: u32| -> Result<u32, SeccompError> {
        let v = errno_ret.unwrap_or(dflt);
        if v > RET_DATA {
            return Err(SeccompError::ErrnoRetRange {
                syscall: what.to_string(),
                value: v,
            });
        }
        Ok(v)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data(EPERM)?,
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data(EPERM)?,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::Notify {
                syscall: what.to_string(),
            })
        }
    })
}

fn cmp_op(op: LinuxSeccompOperator) -> CmpOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => CmpOp::Ne,
        LinuxSeccompOperator::ScmpCmpLt => CmpOp::Lt,
        LinuxSeccompOperator::ScmpCmpLe => CmpOp::Le,
        LinuxSeccompOperator::ScmpCmpEq => CmpOp::Eq,
        LinuxSeccompOperator::ScmpCmpGe => CmpOp::Ge,
        LinuxSeccompOperator::ScmpCmpGt => CmpOp::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => CmpOp::MaskedEq,
    }
}

/// The ABI the kernel reports for this build's own syscalls (`SCMP_ARCH_NATIVE`).
fn native_abi() -> Result<Abi, SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok(Abi::X86_64)
    } else if cfg!(target_arch = "x86") {
        Ok(Abi::I386)
    } else {
        Err(SeccompError::UnsupportedNative {
            arch: std::env::consts::ARCH,
        })
    }
}

fn abi_of(arch: Arch) -> Result<Option<Abi>, SeccompError> {
    Ok(match arch {
        Arch::ScmpArchNative => Some(native_abi()?),
        Arch::ScmpArchX86_64 => Some(Abi::X86_64),
        Arch::ScmpArchX32 => Some(Abi::X32),
        Arch::ScmpArchX86 => Some(Abi::I386),
        other => {
            // A syscall can never arrive with another architecture's audit value on an x86
            // host, so leaving it out of the filter (→ bad-arch action) changes nothing.
            tracing::debug!(arch = %other, "seccomp: no syscall table for architecture, skipped");
            None
        }
    })
}

impl Plan {
    pub(crate) fn from_profile(profile: &LinuxSeccomp) -> Result<Plan, SeccompError> {
        let default_errno = profile.default_errno_ret().unwrap_or(EPERM);
        let default_action = action_value(
            profile.default_action(),
            Some(default_errno),
            "<default action>",
        )?;

        let mut flags = 0;
        for f in profile.flags().iter().flatten() {
            flags |= match f {
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
                // Only meaningful together with a notify listener, which we do not create; the
                // kernel refuses it without SECCOMP_FILTER_FLAG_NEW_LISTENER.
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    tracing::debug!("seccomp: WAIT_KILLABLE_RECV ignored without a listener");
                    0
                }
            };
        }

        let mut abis: Vec<Abi> = Vec::new();
        match profile.architectures() {
            Some(list) if !list.is_empty() => {
                for a in list {
                    if let Some(abi) = abi_of(*a)? {
                        abis.push(abi);
                    }
                }
            }
            _ => abis.push(native_abi()?),
        }
        abis.sort();
        abis.dedup();

        // Per ABI: number → rules in profile order.
        let mut per_abi: Vec<(Abi, BTreeMap<u32, Vec<Rule>>)> =
            abis.iter().map(|a| (*a, BTreeMap::new())).collect();
        for sc in profile.syscalls().iter().flatten() {
            let label = sc.names().join(",");
            let action = action_value(sc.action(), sc.errno_ret(), &label)?;
            let mut conds = Vec::new();
            for a in sc.args().iter().flatten() {
                let index = u8::try_from(a.index())
                    .ok()
                    .filter(|i| *i < 6)
                    .ok_or_else(|| SeccompError::ArgIndex {
                        syscall: label.clone(),
                        index: a.index(),
                    })?;
                conds.push(Cond {
                    index,
                    op: cmp_op(a.op()),
                    value: a.value(),
                    value_two: a.value_two().unwrap_or(0),
                });
            }
            let rule = Rule { action, conds };
            for name in sc.names() {
                for (abi, map) in per_abi.iter_mut() {
                    match syscalls::lookup(abi.table(), name) {
                        Some(nr) => map.entry(nr).or_default().push(rule.clone()),
                        None => tracing::debug!(
                            syscall = %name,
                            abi = abi.name(),
                            "seccomp: syscall unknown on this ABI, skipped"
                        ),
                    }
                }
            }
        }

        let mut arches: Vec<ArchPlan> = Vec::new();
        for (abi, map) in per_abi {
            let audit_arch = abi.audit_arch();
            let idx = match arches.iter().position(|a| a.audit_arch == audit_arch) {
                Some(i) => i,
                None => {
                    arches.push(ArchPlan {
                        audit_arch,
                        abis: Vec::new(),
                        syscalls: BTreeMap::new(),
                        x32_mirror: false,
                    });
                    arches.len() - 1
                }
            };
            let ap = &mut arches[idx];
            ap.abis.push(abi);
            for (nr, rules) in map {
                ap.syscalls.insert(nr, simplify(rules, default_action));
            }
        }
        for ap in &mut arches {
            if ap.abis.contains(&Abi::X86_64) && ap.abis.contains(&Abi::X32) {
                let low_x32: Vec<u32> = ap
                    .syscalls
                    .range(X32_SYSCALL_BIT..X32_MIRROR_END)
                    .map(|(nr, _)| *nr)
                    .collect();
                let same = low_x32
                    .iter()
                    .all(|nr| ap.syscalls.get(nr) == ap.syscalls.get(&(nr - X32_SYSCALL_BIT)));
                if same {
                    for nr in low_x32 {
                        ap.syscalls.remove(&nr);
                    }
                    ap.x32_mirror = true;
                }
            }
        }
        Ok(Plan {
            default_action,
            arches,
            flags,
        })
    }

    /// Reference evaluation of the plan (the tests' model of the profile semantics).
    #[cfg(test)]
    pub(crate) fn evaluate(&self, arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
        let Some(ap) = self.arches.iter().find(|a| a.audit_arch == arch) else {
            return BAD_ARCH_ACTION;
        };
        if ap.x32_mirror && (X32_SYSCALL_BIT..X32_MIRROR_END).contains(&nr) {
            return self.evaluate(arch, nr - X32_SYSCALL_BIT, args);
        }
        match ap.syscalls.get(&nr) {
            None => ap.gap_action(nr, self.default_action),
            Some(Outcome::Action(a)) => *a,
            Some(Outcome::Rules(rules)) => rules
                .iter()
                .find(|r| {
                    r.conds
                        .iter()
                        .all(|c| c.matches(args[usize::from(c.index)]))
                })
                .map_or(self.default_action, |r| r.action),
        }
    }

    /// Emits the program in both layouts (rule blocks and `RET`s per architecture section, or
    /// shared by all sections after the last one) and keeps the shorter: sharing saves the
    /// duplicated blocks but makes jumps longer, which may need trampolines.
    pub(crate) fn codegen(&self) -> Result<Vec<libc::sock_filter>, SeccompError> {
        let per_section = self.codegen_layout(false)?;
        if self.arches.len() < 2 {
            return Ok(per_section);
        }
        let shared = self.codegen_layout(true)?;
        Ok(if shared.len() < per_section.len() {
            shared
        } else {
            per_section
        })
    }

    fn codegen_layout(&self, shared: bool) -> Result<Vec<libc::sock_filter>, SeccompError> {
        let mut g = Gen {
            asm: Asm::new(),
            rets: BTreeMap::new(),
            blocks: Vec::new(),
        };
        let section_labels: Vec<Label> = self.arches.iter().map(|_| g.asm.label()).collect();

        g.asm.load(OFF_ARCH);
        for (ap, l) in self.arches.iter().zip(&section_labels) {
            let next = g.asm.label();
            g.asm.jump(BPF_JEQ, ap.audit_arch, *l, next);
            g.asm.bind(next);
        }
        g.asm.ret(BAD_ARCH_ACTION);

        for (ap, l) in self.arches.iter().zip(&section_labels) {
            g.asm.bind(*l);
            g.asm.load(OFF_NR);
            let dom = ap.emulated_end();
            if ap.x32_mirror {
                // Native numbers (the ones the kernel's action cache emulates) take one test.
                let (x32, high, strip, native) =
                    (g.asm.label(), g.asm.label(), g.asm.label(), g.asm.label());
                g.asm.jump(BPF_JGE, X32_SYSCALL_BIT, x32, native);
                g.asm.bind(x32);
                g.asm.jump(BPF_JGE, X32_MIRROR_END, high, strip);
                g.asm.bind(strip);
                g.asm.and(!X32_SYSCALL_BIT);
                g.asm.bind(native);
                let end = X32_SYSCALL_BIT - 1;
                g.tree(&leaves(
                    &intervals(ap, self.default_action, 0, end),
                    end,
                    dom,
                ))?;
                g.asm.bind(high);
                g.tree(&leaves(
                    &intervals(ap, self.default_action, X32_MIRROR_END, u32::MAX),
                    u32::MAX,
                    dom,
                ))?;
            } else {
                g.tree(&leaves(
                    &intervals(ap, self.default_action, 0, u32::MAX),
                    u32::MAX,
                    dom,
                ))?;
            }
            if !shared {
                g.flush(self.default_action);
            }
        }
        g.flush(self.default_action);
        g.asm.finish()
    }
}

/// Drops what can never matter: rules after an unconditional one, and trailing rules whose
/// action is the default action anyway. An unconditional first rule becomes a fixed action.
fn simplify(mut rules: Vec<Rule>, default_action: u32) -> Outcome {
    if let Some(i) = rules.iter().position(|r| r.conds.is_empty()) {
        rules.truncate(i + 1);
    }
    while rules.last().is_some_and(|r| r.action == default_action) {
        rules.pop();
    }
    match rules.first() {
        None => Outcome::Action(default_action),
        Some(r) if r.conds.is_empty() => Outcome::Action(r.action),
        Some(_) => Outcome::Rules(rules),
    }
}

/// Sorted `(start, outcome)` intervals covering `lo..=hi`, adjacent equal ones merged.
pub(crate) fn intervals(ap: &ArchPlan, default: u32, lo: u32, hi: u32) -> Vec<(u32, Outcome)> {
    let mut points = vec![lo];
    points.extend(ap.gap_breakpoints());
    for nr in ap.syscalls.keys() {
        points.push(*nr);
        if let Some(n) = nr.checked_add(1) {
            points.push(n);
        }
    }
    points.retain(|p| (lo..=hi).contains(p));
    points.sort_unstable();
    points.dedup();
    let mut out: Vec<(u32, Outcome)> = Vec::new();
    for p in points {
        let o = match ap.syscalls.get(&p) {
            Some(o) => o.clone(),
            None => Outcome::Action(ap.gap_action(p, default)),
        };
        if out.last().map(|(_, last)| last) != Some(&o) {
            out.push((p, o));
        }
    }
    out
}

/// At most this many single-number exceptions are tested (one `jeq` each) in a leaf of the
/// binary search, which bounds the path length they add.
const MAX_EXCEPTIONS: usize = 4;

/// A leaf of the binary search: numbers from `start` up to the next leaf's start get `base`,
/// except the single numbers in `exceptions`. `weight`: how many of its numbers the kernel
/// emulates when it installs the filter (below [`ArchPlan::emulated_end`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    pub(crate) start: u32,
    pub(crate) base: Outcome,
    pub(crate) exceptions: Vec<(u32, Outcome)>,
    pub(crate) weight: u64,
}

/// Numbers of `[lo, hi]` below `dom`.
fn emulated(lo: u32, hi: u32, dom: u32) -> u64 {
    if lo >= dom {
        return 0;
    }
    u64::from(hi.min(dom - 1)) - u64::from(lo) + 1
}

/// Turns the intervals of `[iv[0].0, hi]` into leaves. A one-number interval whose neighbours
/// share an outcome is folded into the neighbours' leaf as an exception (one `jeq` instead of
/// two search nodes; a denied syscall amid allowed ones is the common case), at most
/// [`MAX_EXCEPTIONS`] per leaf. (Measured: folding pays off even in leaves of hundreds of
/// numbers, although each of them walks the chain when the kernel fills its action cache.)
pub(crate) fn leaves(iv: &[(u32, Outcome)], hi: u32, dom: u32) -> Vec<Leaf> {
    let end_of = |i: usize| iv.get(i + 1).map_or(hi, |(s, _)| s - 1);
    let mut out: Vec<Leaf> = Vec::new();
    let mut i = 0;
    while i < iv.len() {
        let (start, ref o) = iv[i];
        if let (Some(last), Some((next_start, next_o))) = (out.last_mut(), iv.get(i + 1)) {
            let merged = emulated(last.start, end_of(i + 1), dom);
            if *next_start == start.wrapping_add(1)
                && *next_o == last.base
                && last.exceptions.len() < MAX_EXCEPTIONS
            {
                last.exceptions.push((start, o.clone()));
                last.weight = merged;
                i += 2;
                continue;
            }
        }
        out.push(Leaf {
            start,
            base: o.clone(),
            exceptions: Vec::new(),
            weight: emulated(start, end_of(i), dom),
        });
        i += 1;
    }
    out
}

/// Above this many leaves the search tree is simply balanced (the optimal one costs O(n²)).
const MAX_OPTIMAL_LEAVES: usize = 1024;

/// Split points of the search tree over `iv` that minimize the total number of comparisons the
/// kernel makes when it emulates the filter for every number below the emulated end (each
/// internal node is passed by every number under it: an optimal alphabetic tree, computed with
/// Knuth's O(n²) dynamic program). Ties (and numbers never emulated) favour a balanced tree.
/// `root[i][j]`: for leaves `i..=j` (j > i), the last leaf of the left subtree.
pub(crate) fn optimal_splits(iv: &[Leaf]) -> Option<Vec<Vec<usize>>> {
    let n = iv.len();
    if !(2..=MAX_OPTIMAL_LEAVES).contains(&n) {
        return None;
    }
    // Weight in thousandths of a number, plus one so that empty leaves still count a little.
    let w: Vec<u64> = iv.iter().map(|l| l.weight * 1000 + 1).collect();
    let mut prefix = vec![0u64; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + w[i];
    }
    let mut cost = vec![vec![0u64; n]; n];
    let mut root = vec![vec![0usize; n]; n];
    for i in 0..n - 1 {
        cost[i][i + 1] = w[i] + w[i + 1];
        root[i][i + 1] = i;
    }
    for len in 3..=n {
        for i in 0..=n - len {
            let j = i + len - 1;
            let (lo, hi) = (root[i][j - 1], root[i + 1][j].min(j - 1));
            let mut best = (u64::MAX, lo);
            for k in lo..=hi {
                let c = cost[i][k] + cost[k + 1][j];
                if c < best.0 {
                    best = (c, k);
                }
            }
            cost[i][j] = best.0 + prefix[j + 1] - prefix[i];
            root[i][j] = best.1;
        }
    }
    Some(root)
}

struct Gen {
    asm: Asm,
    rets: BTreeMap<u32, Label>,
    blocks: Vec<(Label, Vec<Rule>)>,
}

impl Gen {
    fn ret_label(&mut self, action: u32) -> Label {
        if let Some(l) = self.rets.get(&action) {
            return *l;
        }
        let l = self.asm.label();
        self.rets.insert(action, l);
        l
    }

    /// Where a leaf outcome lives: the shared `RET`, or a (deduplicated) rule block.
    fn leaf_target(&mut self, o: &Outcome) -> Label {
        match o {
            Outcome::Action(a) => self.ret_label(*a),
            Outcome::Rules(rules) => {
                if let Some((l, _)) = self.blocks.iter().find(|(_, r)| r == rules) {
                    return *l;
                }
                let l = self.asm.label();
                self.blocks.push((l, rules.clone()));
                l
            }
        }
    }

    /// Emits the rule blocks and `RET`s referenced so far, and forgets them.
    fn flush(&mut self, default: u32) {
        for (label, rules) in std::mem::take(&mut self.blocks) {
            self.asm.bind(label);
            self.rules(&rules, default);
        }
        for (action, l) in std::mem::take(&mut self.rets) {
            self.asm.bind(l);
            self.asm.ret(action);
        }
    }

    /// Binary search over `iv` (A holds `nr`), shaped by [`optimal_splits`] (balanced when
    /// there are too many leaves). Emits the subtree root at the current position; the left
    /// part follows immediately (fall-through), then the right part.
    fn tree(&mut self, iv: &[Leaf]) -> Result<(), SeccompError> {
        let splits = optimal_splits(iv);
        self.subtree(iv, 0, splits.as_deref())
    }

    /// `iv` is the slice of leaves starting at index `base` of the whole list.
    fn subtree(
        &mut self,
        iv: &[Leaf],
        base: usize,
        splits: Option<&[Vec<usize>]>,
    ) -> Result<(), SeccompError> {
        match iv {
            [] => Err(SeccompError::Internal("empty interval list")),
            [leaf] => {
                let n = leaf.exceptions.len();
                if n == 0 {
                    let l = self.leaf_target(&leaf.base);
                    self.asm.ja(l);
                }
                for (i, (nr, o)) in leaf.exceptions.iter().enumerate() {
                    let hit = self.leaf_target(o);
                    let miss = if i + 1 == n {
                        self.leaf_target(&leaf.base)
                    } else {
                        self.asm.label()
                    };
                    self.asm.jump(BPF_JEQ, *nr, hit, miss);
                    if i + 1 != n {
                        self.asm.bind(miss);
                    }
                }
                Ok(())
            }
            _ => {
                let mid = match splits {
                    Some(r) => r[base][base + iv.len() - 1] + 1 - base,
                    None => iv.len() / 2,
                };
                if mid == 0 || mid >= iv.len() {
                    return Err(SeccompError::Internal("search tree split out of range"));
                }
                let (left, right) = iv.split_at(mid);
                let lt = self.subtree_target(left);
                let rt = self.subtree_target(right);
                self.asm.jump(BPF_JGE, right[0].start, rt.0, lt.0);
                for (label, part, at) in [(lt, left, base), (rt, right, base + mid)] {
                    if let (l, true) = label {
                        self.asm.bind(l);
                        self.subtree(part, at, splits)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// `(label, needs_code)`: a single leaf without exceptions is reached directly at its target.
    fn subtree_target(&mut self, part: &[Leaf]) -> (Label, bool) {
        match part {
            [leaf] if leaf.exceptions.is_empty() => (self.leaf_target(&leaf.base), false),
            _ => (self.asm.label(), true),
        }
    }

    /// Rules in order; the first whose conditions all hold decides, else the default action.
    /// A failing rule jumps straight to the `RET` when what follows is unconditional.
    fn rules(&mut self, rules: &[Rule], default: u32) {
        for (i, rule) in rules.iter().enumerate() {
            let matched = self.ret_label(rule.action);
            if rule.conds.is_empty() {
                // Only reachable for a lone unconditional rule (`simplify` makes that an
                // `Outcome::Action`, and an unconditional rule after others is handled below).
                self.asm.ja(matched);
                return;
            }
            let (next_rule, more) = match rules.get(i + 1) {
                None => (self.ret_label(default), false),
                Some(r) if r.conds.is_empty() => (self.ret_label(r.action), false),
                Some(_) => (self.asm.label(), true),
            };
            let n = rule.conds.len();
            for (j, c) in rule.conds.iter().enumerate() {
                let pass = if j + 1 == n {
                    matched
                } else {
                    self.asm.label()
                };
                self.cond(c, pass, next_rule);
                if j + 1 != n {
                    self.asm.bind(pass);
                }
            }
            if !more {
                return;
            }
            self.asm.bind(next_rule);
        }
        // Empty rule list (never produced by `simplify`): the default action.
        let d = self.ret_label(default);
        self.asm.ja(d);
    }

    /// One 64-bit comparison as two 32-bit ones (high word first), like libseccomp.
    fn cond(&mut self, c: &Cond, pass: Label, fail: Label) {
        let lo_off = OFF_ARGS + 8 * u32::from(c.index);
        let hi_off = lo_off + 4;
        let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
        let a = &mut self.asm;
        let check_lo = a.label();
        match c.op {
            CmpOp::Eq => {
                a.load(hi_off);
                a.jump(BPF_JEQ, hi, check_lo, fail);
                a.bind(check_lo);
                a.load(lo_off);
                a.jump(BPF_JEQ, lo, pass, fail);
            }
            CmpOp::Ne => {
                a.load(hi_off);
                a.jump(BPF_JEQ, hi, check_lo, pass);
                a.bind(check_lo);
                a.load(lo_off);
                a.jump(BPF_JEQ, lo, fail, pass);
            }
            CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
                // "greater" ops pass when the high word is above, "less" ops fail then.
                let greater = matches!(c.op, CmpOp::Gt | CmpOp::Ge);
                let (above, below) = if greater { (pass, fail) } else { (fail, pass) };
                a.load(hi_off);
                if hi == 0 {
                    // hi > 0 or hi == 0: no "below" case.
                    a.jump(BPF_JGT, 0, above, check_lo);
                } else {
                    let eq = a.label();
                    a.jump(BPF_JGT, hi, above, eq);
                    a.bind(eq);
                    a.jump(BPF_JEQ, hi, check_lo, below);
                }
                a.bind(check_lo);
                a.load(lo_off);
                match c.op {
                    CmpOp::Gt => a.jump(BPF_JGT, lo, pass, fail),
                    CmpOp::Ge => a.jump(BPF_JGE, lo, pass, fail),
                    CmpOp::Lt => a.jump(BPF_JGE, lo, fail, pass),
                    _ => a.jump(BPF_JGT, lo, fail, pass), // Le
                }
            }
            CmpOp::MaskedEq => {
                let (mhi, mlo) = ((c.value >> 32) as u32, c.value as u32);
                let (vhi, vlo) = ((c.value_two >> 32) as u32 & mhi, c.value_two as u32 & mlo);
                if mhi != 0 {
                    a.load(hi_off);
                    if mhi != u32::MAX {
                        a.and(mhi);
                    }
                    let next = if mlo != 0 { check_lo } else { pass };
                    a.jump(BPF_JEQ, vhi, next, fail);
                }
                a.bind(check_lo);
                if mlo != 0 {
                    a.load(lo_off);
                    if mlo != u32::MAX {
                        a.and(mlo);
                    }
                    a.jump(BPF_JEQ, vlo, pass, fail);
                } else if mhi == 0 {
                    // Mask 0: always equal.
                    a.ja(pass);
                }
            }
        }
    }
}
