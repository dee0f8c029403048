//! A tiny classic-BPF assembler with labels.
//!
//! Classic BPF conditional jumps carry 8-bit forward offsets (`jt`/`jf` ≤ 255); only `BPF_JA`
//! has a 32-bit offset. The assembler lets code generation jump to labels anywhere ahead and
//! fixes up distances at the end: a conditional jump whose target is more than 255 instructions
//! away is expanded with a `JA` trampoline placed right after it (`Jxx k, 0, 1; JA t; JA f` in
//! the worst case). Expanding one jump can push other targets out of range, so layout is iterated
//! to a fixpoint (sizes only grow, so it terminates). All jumps in BPF are forward; a backward
//! target is an internal error.

use super::SeccompError;

// Instruction classes and fields, from <linux/bpf_common.h>.
pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;
pub(crate) const BPF_JSET: u16 = 0x40;
pub(crate) const BPF_K: u16 = 0x00;

/// `BPF_MAXINSNS`: the kernel refuses longer filters.
pub(crate) const MAX_INSNS: usize = 4096;

/// A position in the program, bound once with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Op {
    Bind(Label),
    Stmt {
        code: u16,
        k: u32,
    },
    Ja(Label),
    Jcond {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
}

/// What the accumulator holds at the current emission point, known because every BPF jump
/// goes forward: all jumps to a label are emitted before the label is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AccState {
    /// No path reaches this point (after a `RET` or an unconditional jump).
    Unreachable,
    /// `Some(offset)`: A holds the unmodified `seccomp_data` word at `offset` on every path.
    Known(Option<u32>),
}

impl AccState {
    fn meet(self, other: AccState) -> AccState {
        match (self, other) {
            (AccState::Unreachable, x) | (x, AccState::Unreachable) => x,
            (AccState::Known(a), AccState::Known(b)) if a == b => self,
            _ => AccState::Known(None),
        }
    }
}

/// Program under construction.
#[derive(Debug)]
pub(crate) struct Asm {
    ops: Vec<Op>,
    labels: usize,
    acc: AccState,
    /// Meet of the accumulator states of the jumps emitted so far to each label.
    incoming: std::collections::HashMap<Label, AccState>,
}

impl Default for Asm {
    fn default() -> Self {
        Asm {
            ops: Vec::new(),
            labels: 0,
            acc: AccState::Known(None),
            incoming: std::collections::HashMap::new(),
        }
    }
}

impl Asm {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A fresh, unbound label.
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Binds `l` to the next instruction emitted.
    pub(crate) fn bind(&mut self, l: Label) {
        let from_jumps = self.incoming.remove(&l).unwrap_or(AccState::Unreachable);
        self.acc = self.acc.meet(from_jumps);
        self.ops.push(Op::Bind(l));
    }

    fn jumps_to(&mut self, l: Label) {
        let acc = self.acc;
        let e = self.incoming.entry(l).or_insert(AccState::Unreachable);
        *e = e.meet(acc);
    }

    /// `A = seccomp_data[offset]` (32-bit word). Emits nothing when A already holds that word
    /// on every path reaching this point.
    pub(crate) fn load(&mut self, offset: u32) {
        if self.acc == AccState::Known(Some(offset)) {
            return;
        }
        self.ops.push(Op::Stmt {
            code: BPF_LD | BPF_W | BPF_ABS,
            k: offset,
        });
        self.acc = AccState::Known(Some(offset));
    }

    /// `A &= k`.
    pub(crate) fn and(&mut self, k: u32) {
        self.ops.push(Op::Stmt {
            code: BPF_ALU | BPF_AND | BPF_K,
            k,
        });
        self.acc = AccState::Known(None);
    }

    /// `return k`.
    pub(crate) fn ret(&mut self, k: u32) {
        self.ops.push(Op::Stmt {
            code: BPF_RET | BPF_K,
            k,
        });
        self.acc = AccState::Unreachable;
    }

    /// Unconditional jump.
    pub(crate) fn ja(&mut self, target: Label) {
        self.jumps_to(target);
        self.ops.push(Op::Ja(target));
        self.acc = AccState::Unreachable;
    }

    /// `if (A <op> k) goto jt else goto jf`, `op` one of `BPF_JEQ`, `BPF_JGT`, `BPF_JGE`,
    /// `BPF_JSET`.
    /// Conditional jumps do not fall through: the next instruction is reached only through a
    /// label bound there.
    pub(crate) fn jump(&mut self, op: u16, k: u32, jt: Label, jf: Label) {
        if jt == jf {
            self.ja(jt);
        } else {
            self.jumps_to(jt);
            self.jumps_to(jf);
            self.ops.push(Op::Jcond {
                code: BPF_JMP | op | BPF_K,
                k,
                jt,
                jf,
            });
            self.acc = AccState::Unreachable;
        }
    }

    /// Resolves labels and returns the final instructions.
    pub(crate) fn finish(self) -> Result<Vec<libc::sock_filter>, SeccompError> {
        // For each op: whether its jt / jf needs a JA trampoline.
        let mut long = vec![(false, false); self.ops.len()];
        let size = |op: &Op, l: (bool, bool)| -> usize {
            match op {
                Op::Bind(_) => 0,
                Op::Stmt { .. } | Op::Ja(_) => 1,
                Op::Jcond { .. } => 1 + usize::from(l.0) + usize::from(l.1),
            }
        };
        let mut pos = vec![usize::MAX; self.labels];
        loop {
            let mut p = 0usize;
            for (op, l) in self.ops.iter().zip(&long) {
                if let Op::Bind(lab) = op {
                    pos[lab.0] = p;
                }
                p += size(op, *l);
            }
            if p > MAX_INSNS {
                return Err(SeccompError::ProgramTooLong { len: p });
            }
            let mut changed = false;
            let mut p = 0usize;
            for (op, l) in self.ops.iter().zip(long.iter_mut()) {
                let sz = size(op, *l);
                if let Op::Jcond { jt, jf, .. } = op {
                    for (target, flag) in [(jt, &mut l.0), (jf, &mut l.1)] {
                        let t = resolve(&pos, *target)?;
                        if t < p + sz {
                            return Err(SeccompError::Internal("backward or self jump"));
                        }
                        if !*flag && t - (p + 1) > 255 {
                            *flag = true;
                            changed = true;
                        }
                    }
                }
                p += sz;
            }
            if !changed {
                break;
            }
        }

        let mut out = Vec::with_capacity(self.ops.len());
        for (op, l) in self.ops.iter().zip(&long) {
            let p = out.len();
            match *op {
                Op::Bind(_) => {}
                Op::Stmt { code, k } => out.push(insn(code, 0, 0, k)),
                Op::Ja(target) => {
                    let t = resolve(&pos, target)?;
                    let off = t
                        .checked_sub(p + 1)
                        .ok_or(SeccompError::Internal("backward JA"))?;
                    out.push(insn(BPF_JMP | BPF_JA, 0, 0, to_u32(off)?));
                }
                Op::Jcond { code, k, jt, jf } => {
                    let (t, f) = (resolve(&pos, jt)?, resolve(&pos, jf)?);
                    // Trampolines follow the jump: first the one for jt, then the one for jf.
                    let jt_off = if l.0 { 0 } else { t - (p + 1) };
                    let jf_off = match (l.0, l.1) {
                        (_, false) => f - (p + 1),
                        (false, true) => 0,
                        (true, true) => 1,
                    };
                    out.push(insn(code, to_u8(jt_off)?, to_u8(jf_off)?, k));
                    if l.0 {
                        let here = out.len();
                        out.push(insn(BPF_JMP | BPF_JA, 0, 0, to_u32(t - (here + 1))?));
                    }
                    if l.1 {
                        let here = out.len();
                        out.push(insn(BPF_JMP | BPF_JA, 0, 0, to_u32(f - (here + 1))?));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn resolve(pos: &[usize], l: Label) -> Result<usize, SeccompError> {
    match pos.get(l.0) {
        Some(&p) if p != usize::MAX => Ok(p),
        _ => Err(SeccompError::Internal("jump to an unbound label")),
    }
}

fn to_u8(v: usize) -> Result<u8, SeccompError> {
    u8::try_from(v).map_err(|_| SeccompError::Internal("conditional jump offset over 255"))
}

fn to_u32(v: usize) -> Result<u32, SeccompError> {
    u32::try_from(v).map_err(|_| SeccompError::Internal("jump offset over 32 bits"))
}

pub(crate) fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}
