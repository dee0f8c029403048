//! A classic-BPF interpreter with the kernel's seccomp semantics, for tests.
//!
//! It runs any program made of the instructions the seccomp verifier accepts (loads of
//! `seccomp_data` words, immediates, scratch memory, ALU, jumps, returns) and reports an error
//! instead of panicking on malformed code, so it can evaluate both our programs and
//! seccompiler's.

/// One instruction as plain fields (both `libc::sock_filter` and seccompiler's type map here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl From<&libc::sock_filter> for Insn {
    fn from(i: &libc::sock_filter) -> Self {
        Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        }
    }
}

/// Input of a filter run: `struct seccomp_data`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Data {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl Data {
    fn word(&self, off: u32) -> Option<u32> {
        let half = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
        match off {
            0 => Some(self.nr),
            4 => Some(self.arch),
            8 | 12 => Some(half(self.ip, off == 12)),
            16..=60 if off & 3 == 0 => {
                let i = ((off - 16) / 8) as usize;
                Some(half(self.args[i], off % 8 == 4))
            }
            _ => None,
        }
    }
}

/// Runs `prog` on `d`; returns the `SECCOMP_RET_*` value or why the program is invalid.
pub(crate) fn run(prog: &[Insn], d: &Data) -> Result<u32, String> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let i = *prog.get(pc).ok_or(format!("pc {pc} ran off the end"))?;
        pc += 1;
        let class = i.code & 0x07;
        let src_x = i.code & 0x08 != 0;
        let operand = if src_x { x } else { i.k };
        match class {
            0x00 | 0x01 => {
                // LD / LDX
                let mode = i.code & 0xe0;
                let size = i.code & 0x18;
                let v = match mode {
                    0x20 if size == 0x00 && class == 0x00 => {
                        d.word(i.k).ok_or(format!("bad load offset {}", i.k))?
                    }
                    0x00 => i.k, // IMM
                    0x60 => *mem.get(i.k as usize).ok_or("bad mem index")?,
                    0x80 if class == 0x00 || class == 0x01 => 64, // LEN
                    _ => return Err(format!("unsupported load {:#x}", i.code)),
                };
                if class == 0x00 {
                    a = v;
                } else {
                    x = v;
                }
            }
            0x02 => *mem.get_mut(i.k as usize).ok_or("bad mem index")? = a, // ST
            0x03 => *mem.get_mut(i.k as usize).ok_or("bad mem index")? = x, // STX
            0x04 => {
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x30 => a.checked_div(operand).ok_or("division by zero")?,
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a.checked_shl(operand).unwrap_or(0),
                    0x70 => a.checked_shr(operand).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(operand).ok_or("modulo by zero")?,
                    0xa0 => a ^ operand,
                    op => return Err(format!("unsupported alu op {op:#x}")),
                };
            }
            0x05 => {
                let op = i.code & 0xf0;
                if op == 0x00 {
                    pc += i.k as usize;
                } else {
                    let taken = match op {
                        0x10 => a == operand,
                        0x20 => a > operand,
                        0x30 => a >= operand,
                        0x40 => a & operand != 0,
                        _ => return Err(format!("unsupported jump {:#x}", i.code)),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
            }
            0x06 => {
                return Ok(match i.code & 0x18 {
                    0x00 => i.k,
                    0x10 => a,
                    _ => return Err(format!("unsupported ret {:#x}", i.code)),
                })
            }
            0x07 => {
                if i.code & 0xf8 == 0x00 {
                    x = a; // TAX
                } else {
                    a = x; // TXA
                }
            }
            _ => unreachable!("class is 3 bits"),
        }
    }
}
