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

    pub(crate) fn codegen(&self) -> Result<Vec<libc::sock_filter>, SeccompError> {
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

        // Each section gets its own copies of the RETs it uses, so that jumps stay short.
        for (ap, l) in self.arches.iter().zip(&section_labels) {
            g.asm.bind(*l);
            g.asm.load(OFF_NR);
            if ap.x32_mirror {
                let (high, mid, strip, native) =
                    (g.asm.label(), g.asm.label(), g.asm.label(), g.asm.label());
                g.asm.jump(BPF_JGE, X32_MIRROR_END, high, mid);
                g.asm.bind(mid);
                g.asm.jump(BPF_JGE, X32_SYSCALL_BIT, strip, native);
                g.asm.bind(strip);
                g.asm.and(!X32_SYSCALL_BIT);
                g.asm.bind(native);
                g.tree(&intervals(ap, self.default_action, 0, X32_SYSCALL_BIT - 1))?;
                g.asm.bind(high);
                g.tree(&intervals(
                    ap,
                    self.default_action,
                    X32_MIRROR_END,
                    u32::MAX,
                ))?;
            } else {
                g.tree(&intervals(ap, self.default_action, 0, u32::MAX))?;
            }
            for (label, rules) in std::mem::take(&mut g.blocks) {
                g.asm.bind(label);
                g.rules(&rules, self.default_action);
            }
            for (action, l) in std::mem::take(&mut g.rets) {
                g.asm.bind(l);
                g.asm.ret(action);
            }
        }
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

    /// Balanced binary search over `iv` (A holds `nr`). Emits the subtree root at the current
    /// position; the left half follows immediately (fall-through), then the right half.
    fn tree(&mut self, iv: &[(u32, Outcome)]) -> Result<(), SeccompError> {
        match iv {
            [] => Err(SeccompError::Internal("empty interval list")),
            [(_, o)] => {
                let l = self.leaf_target(o);
                self.asm.ja(l);
                Ok(())
            }
            _ => {
                let mid = iv.len() / 2;
                let (left, right) = iv.split_at(mid);
                let lt = self.subtree_target(left);
                let rt = self.subtree_target(right);
                self.asm.jump(BPF_JGE, right[0].0, rt.0, lt.0);
                for (label, part) in [(lt, left), (rt, right)] {
                    if let (l, true) = label {
                        self.asm.bind(l);
                        self.tree(part)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// `(label, needs_code)`: a single interval is reached directly at its leaf target.
    fn subtree_target(&mut self, part: &[(u32, Outcome)]) -> (Label, bool) {
        match part {
            [(_, o)] => (self.leaf_target(o), false),
            _ => (self.asm.label(), true),
        }
    }

    /// Rules in order; the first whose conditions all hold decides, else the default action.
    fn rules(&mut self, rules: &[Rule], default: u32) {
        for rule in rules {
            let matched = self.ret_label(rule.action);
            if rule.conds.is_empty() {
                // Unconditional: `simplify` made it the last rule.
                self.asm.ja(matched);
                return;
            }
            let next_rule = self.asm.label();
            let n = rule.conds.len();
            for (i, c) in rule.conds.iter().enumerate() {
                let pass = if i + 1 == n {
                    matched
                } else {
                    self.asm.label()
                };
                self.cond(c, pass, next_rule);
                if i + 1 != n {
                    self.asm.bind(pass);
                }
            }
            self.asm.bind(next_rule);
        }
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
