//! The cgroup v2 device controller: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`.
//!
//! cgroup v2 has no `devices.allow`/`devices.deny` files; access to device nodes is decided by eBPF
//! programs attached to the cgroup with `BPF_CGROUP_DEVICE`. This module
//! 1. turns OCI `linux.resources.devices` entries into [`DeviceRule`]s (plain data),
//! 2. compiles a rule list into eBPF instructions ([`compile`], testable without privileges), and
//! 3. loads the program and attaches it to a cgroup directory, replacing the programs attached
//!    before ([`attach`], needs CAP_SYS_ADMIN or CAP_BPF+CAP_NET_ADMIN).
//!
//! # Semantics
//! Rules are evaluated **per access bit, last match wins**, default **deny**: for each access the
//! kernel asks about (`r`, `w`, `m`), the last rule whose type, major and minor match and whose
//! access string contains that letter decides; if no rule matches, the access is denied; the
//! request is allowed only if every requested bit is allowed. This is cgroup v1's
//! `devices.allow`/`devices.deny` behaviour that runc emulates, including OCI's usual
//! `{"allow": false, "access": "rwm"}` first entry, which resets to deny-all. One deliberate
//! difference: runc's emulator silently ignores a deny that would punch a hole into an earlier
//! wildcard allow (`allow c *:* rwm` then `deny c 1:7 rwm`); here the later deny wins.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use serde::{Deserialize, Serialize};

/// Errors of the device filter.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("invalid linux.resources.devices entry {rule}: {reason}")]
    InvalidRule { rule: String, reason: String },

    #[error("device filter program too large: jump of {distance} instructions does not fit")]
    ProgramTooLarge { distance: usize },

    #[error("bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, {insns} instructions): {source}{}",
        if .verifier_log.is_empty() { String::new() } else { format!("; verifier: {}", .verifier_log) })]
    Load {
        insns: usize,
        #[source]
        source: io::Error,
        verifier_log: String,
    },

    #[error("open cgroup directory {path} for bpf: {source}")]
    OpenCgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE) on {path}: {source}")]
    Query {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) to {path}: {source}")]
    Attach {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("bpf(BPF_PROG_GET_FD_BY_ID, {id}) for the old device program of {path}: {source}")]
    GetOld {
        id: u32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("bpf(BPF_PROG_DETACH, BPF_CGROUP_DEVICE, prog id {id}) from {path}: {source}")]
    Detach {
        id: u32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Which device nodes a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// `a`: character and block devices.
    All,
    /// `c` (and `u`): character devices.
    Char,
    /// `b`: block devices.
    Block,
}

/// `BPF_DEVCG_ACC_MKNOD`: the `m` access.
pub const ACC_MKNOD: u8 = 1;
/// `BPF_DEVCG_ACC_READ`: the `r` access.
pub const ACC_READ: u8 = 2;
/// `BPF_DEVCG_ACC_WRITE`: the `w` access.
pub const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// `BPF_DEVCG_DEV_BLOCK`
const DEV_BLOCK: i32 = 1;
/// `BPF_DEVCG_DEV_CHAR`
const DEV_CHAR: i32 = 2;

/// One normalized device rule. `None` for major/minor is the `*` wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// A combination of [`ACC_READ`], [`ACC_WRITE`], [`ACC_MKNOD`]; never 0.
    pub access: u8,
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        write!(
            f,
            "{} {kind} {}:{} {acc}",
            if self.allow { "allow" } else { "deny" },
            num(self.major),
            num(self.minor)
        )
    }
}

impl DeviceRule {
    /// A rule for one device (or, with `None`, a wildcard), all of `rwm`.
    pub fn new(allow: bool, kind: DeviceKind, major: Option<u32>, minor: Option<u32>) -> Self {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: ACC_ALL,
        }
    }

    /// Converts one OCI entry. Returns `Ok(None)` for type `p` (FIFOs are not subject to the device
    /// controller, so such a rule has no effect). A missing type is `a`, a missing or `-1`
    /// major/minor is `*`, a missing or empty access is `rwm`.
    pub fn from_oci(d: &LinuxDeviceCgroup) -> Result<Option<Self>, DeviceError> {
        let invalid = |reason: String| DeviceError::InvalidRule {
            rule: d.to_string(),
            reason,
        };
        let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => return Ok(None),
        };
        let number = |n: Option<i64>, what: &str| -> Result<Option<u32>, DeviceError> {
            match n {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .map(Some)
                    .map_err(|_| invalid(format!("{what} {n} is neither -1 nor a 32-bit number"))),
            }
        };
        let major = number(d.major(), "major")?;
        let minor = number(d.minor(), "minor")?;
        let access = match d.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(s) => {
                let mut acc = 0;
                for c in s.chars() {
                    acc |= match c {
                        'r' => ACC_READ,
                        'w' => ACC_WRITE,
                        'm' => ACC_MKNOD,
                        other => {
                            return Err(invalid(format!(
                                "access {s:?} has {other:?}; only r, w and m are allowed"
                            )))
                        }
                    };
                }
                acc
            }
        };
        Ok(Some(DeviceRule {
            allow: d.allow(),
            kind,
            major,
            minor,
            access,
        }))
    }

    fn matches(&self, kind: DeviceKind, major: u32, minor: u32) -> bool {
        (self.kind == DeviceKind::All || self.kind == kind)
            && !matches!(self.major, Some(m) if m != major)
            && !matches!(self.minor, Some(m) if m != minor)
    }

    fn unconditional(&self) -> bool {
        self.kind == DeviceKind::All && self.major.is_none() && self.minor.is_none()
    }
}

/// Converts the OCI list (in order). FIFO rules are dropped (see [`DeviceRule::from_oci`]).
pub fn rules_from_oci(list: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, DeviceError> {
    let mut out = Vec::with_capacity(list.len());
    for d in list {
        if let Some(rule) = DeviceRule::from_oci(d)? {
            out.push(rule);
        }
    }
    Ok(out)
}

/// The rules runc 1.1 appends after the user's rules for every container (runc's
/// `specconv.AllowedDevices`): mknod of any char/block device, `/dev/null`, `/dev/random`,
/// `/dev/full`, `/dev/tty`, `/dev/zero`, `/dev/urandom`, `/dev/pts/*` (136:*), `/dev/ptmx` (5:2) and
/// tun/tap (10:200). A runtime that wants runc's behaviour appends these, then one allow rule per
/// `linux.devices` entry (see [`allow_device`]).
pub fn runc_default_rules() -> Vec<DeviceRule> {
    let c = |major, minor| DeviceRule::new(true, DeviceKind::Char, Some(major), Some(minor));
    vec![
        DeviceRule {
            access: ACC_MKNOD,
            ..DeviceRule::new(true, DeviceKind::Char, None, None)
        },
        DeviceRule {
            access: ACC_MKNOD,
            ..DeviceRule::new(true, DeviceKind::Block, None, None)
        },
        c(1, 3),
        c(1, 8),
        c(1, 7),
        c(5, 0),
        c(1, 5),
        c(1, 9),
        DeviceRule::new(true, DeviceKind::Char, Some(136), None),
        c(5, 2),
        c(10, 200),
    ]
}

/// The allow rule (`rwm`) runc adds for a `linux.devices` entry. `None` for FIFOs.
pub fn allow_device(d: &oci_spec::runtime::LinuxDevice) -> Option<DeviceRule> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
        LinuxDeviceType::B => DeviceKind::Block,
        LinuxDeviceType::A => DeviceKind::All,
        LinuxDeviceType::P => return None,
    };
    let num = |n: i64| u32::try_from(n).ok();
    Some(DeviceRule::new(true, kind, num(d.major()), num(d.minor())))
}

/// Reference evaluation of `rules` for one request (the semantics the compiled program has).
pub fn evaluate(
    rules: &[DeviceRule],
    kind: DeviceKind,
    major: u32,
    minor: u32,
    access: u8,
) -> bool {
    [ACC_MKNOD, ACC_READ, ACC_WRITE]
        .into_iter()
        .filter(|bit| access & bit != 0)
        .all(|bit| {
            rules
                .iter()
                .rev()
                .find(|r| r.access & bit != 0 && r.matches(kind, major, minor))
                .is_some_and(|r| r.allow)
        })
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl BpfInsn {
    pub fn dst(&self) -> u8 {
        self.regs & 0x0f
    }
    pub fn src(&self) -> u8 {
        self.regs >> 4
    }
}

/// Opcodes used by the compiler (class | op | source).
pub mod op {
    /// BPF_LDX | BPF_MEM | BPF_W
    pub const LDX_W: u8 = 0x61;
    /// BPF_ALU | BPF_AND | BPF_K
    pub const AND32_K: u8 = 0x54;
    /// BPF_ALU | BPF_RSH | BPF_K
    pub const RSH32_K: u8 = 0x74;
    /// BPF_ALU | BPF_MOV | BPF_K
    pub const MOV32_K: u8 = 0xb4;
    /// BPF_JMP | BPF_JA
    pub const JA: u8 = 0x05;
    /// BPF_JMP | BPF_JSET | BPF_K
    pub const JSET_K: u8 = 0x45;
    /// BPF_JMP32 | BPF_JNE | BPF_K
    pub const JNE32_K: u8 = 0x56;
    /// BPF_JMP | BPF_EXIT
    pub const EXIT: u8 = 0x95;
}

// Registers: r1 = ctx (struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }),
// r2 = device type, r3 = requested access, r4 = major, r5 = minor, r0 = verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

#[derive(Clone, Copy)]
struct Label(usize);

#[derive(Default)]
struct Asm {
    insns: Vec<BpfInsn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    fn emit(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(BpfInsn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        });
    }
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }
    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.insns.len());
    }
    fn jump(&mut self, code: u8, dst: u8, imm: i32, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.emit(code, dst, 0, 0, imm);
    }
    fn ret(&mut self, verdict: i32) {
        self.emit(op::MOV32_K, R0, 0, 0, verdict);
        self.emit(op::EXIT, 0, 0, 0, 0);
    }
    fn finish(mut self) -> Result<Vec<BpfInsn>, DeviceError> {
        for (at, label) in &self.fixups {
            // every label used by a jump is bound before finish(); a missing one is a bug that
            // shows up as an out-of-range jump the verifier rejects, so map it to "too large"
            let target = self.labels[label.0].unwrap_or(usize::MAX);
            let distance = target.wrapping_sub(at + 1);
            let off =
                i16::try_from(distance).map_err(|_| DeviceError::ProgramTooLarge { distance })?;
            self.insns[*at].off = off;
        }
        Ok(self.insns)
    }
}

/// Compiles `rules` (OCI order) into a `BPF_PROG_TYPE_CGROUP_DEVICE` program with the semantics of
/// [`evaluate`]: per requested access bit, the last matching rule decides, default deny.
pub fn compile(rules: &[DeviceRule]) -> Result<Vec<BpfInsn>, DeviceError> {
    let mut a = Asm::default();
    a.emit(op::LDX_W, R_TYPE, R1, 0, 0);
    a.emit(op::AND32_K, R_TYPE, 0, 0, 0xffff);
    a.emit(op::LDX_W, R_ACCESS, R1, 0, 0);
    a.emit(op::RSH32_K, R_ACCESS, 0, 0, 16);
    a.emit(op::LDX_W, R_MAJOR, R1, 4, 0);
    a.emit(op::LDX_W, R_MINOR, R1, 8, 0);
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        let next_bit = a.label();
        // if the bit is not requested, skip this block
        a.emit(op::JSET_K, R_ACCESS, 0, 1, i32::from(bit));
        a.jump(op::JA, 0, 0, next_bit);
        let mut decided = false;
        for rule in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let skip = a.label();
            match rule.kind {
                DeviceKind::All => {}
                DeviceKind::Char => a.jump(op::JNE32_K, R_TYPE, DEV_CHAR, skip),
                DeviceKind::Block => a.jump(op::JNE32_K, R_TYPE, DEV_BLOCK, skip),
            }
            if let Some(major) = rule.major {
                a.jump(op::JNE32_K, R_MAJOR, major as i32, skip);
            }
            if let Some(minor) = rule.minor {
                a.jump(op::JNE32_K, R_MINOR, minor as i32, skip);
            }
            if rule.allow {
                a.jump(op::JA, 0, 0, next_bit);
            } else {
                a.ret(0);
            }
            a.bind(skip);
            if rule.unconditional() {
                // earlier rules can never match this bit: emitting them would leave
                // unreachable instructions, which the verifier rejects
                decided = true;
                break;
            }
        }
        if !decided {
            a.ret(0);
        }
        a.bind(next_bit);
    }
    a.ret(1);
    a.finish()
}

// ---- bpf(2) ----

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const LICENSE: &CStr = c"Apache";

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(2) with an attr struct; returns the non-negative result.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed, #[repr(C)] prefix of `union bpf_attr` for
    // `cmd`, and its size is passed, so the kernel reads/writes only inside it. Pointers stored in
    // it (instructions, log buffer, id array) are kept alive by the callers for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned_fd(r: libc::c_long) -> OwnedFd {
    // SAFETY: `r` is a new file descriptor the kernel just returned to us and nobody else owns.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Loads a device program; the verifier's log is included in the error when it refuses.
pub fn load(insns: &[BpfInsn]) -> Result<OwnedFd, DeviceError> {
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..11].copy_from_slice(b"reeve_devcg");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(first) => {
            // retry with the verifier log on, to say why
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            match bpf(BPF_PROG_LOAD, &mut attr) {
                Ok(fd) => Ok(owned_fd(fd)),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    let tail: Vec<&str> = text.lines().rev().take(4).collect();
                    Err(DeviceError::Load {
                        insns: insns.len(),
                        source: first,
                        verifier_log: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
                    })
                }
            }
        }
    }
}

fn open_cgroup(path: &Path) -> Result<OwnedFd, DeviceError> {
    // bpf's target_fd must be a real open file (fdget refuses O_PATH)
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| DeviceError::OpenCgroup {
            path: path.to_path_buf(),
            source,
        })
}

/// Ids of the device programs attached to the cgroup directory `dir`.
pub fn attached(dir: BorrowedFd<'_>, path: &Path) -> Result<Vec<u32>, DeviceError> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = ProgQueryAttr {
            target_fd: dir.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && ids.len() < 4096 => {
                ids = vec![0u32; ids.len() * 4];
            }
            Err(source) => {
                return Err(DeviceError::Query {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Compiles `rules`, loads the program and attaches it to the cgroup at `path` (with
/// `BPF_F_ALLOW_MULTI`), then detaches the device programs that were attached before, so the new
/// rules replace the old ones (as on `update`). The kernel keeps the program alive while attached.
pub fn attach(path: &Path, rules: &[DeviceRule]) -> Result<(), DeviceError> {
    let insns = compile(rules)?;
    let prog = load(&insns)?;
    let dir = open_cgroup(path)?;
    let old = attached(dir.as_fd(), path)?;
    let mut attr = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|source| DeviceError::Attach {
        path: path.to_path_buf(),
        source,
    })?;
    for id in old {
        let mut get = GetFdByIdAttr {
            prog_id: id,
            ..Default::default()
        };
        let old_prog = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
            Ok(fd) => owned_fd(fd),
            // detached concurrently
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(source) => {
                return Err(DeviceError::GetOld {
                    id,
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let mut detach = ProgAttachAttr {
            target_fd: dir.as_raw_fd() as u32,
            attach_bpf_fd: old_prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        match bpf(BPF_PROG_DETACH, &mut detach) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => {
                return Err(DeviceError::Detach {
                    id,
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for exactly the instructions `compile` emits, so the generated program's
    /// decisions can be checked without loading it.
    fn run(prog: &[BpfInsn], kind: DeviceKind, major: u32, minor: u32, access: u8) -> u32 {
        let typ = match kind {
            DeviceKind::Block => 1u64,
            DeviceKind::Char => 2,
            DeviceKind::All => unreachable!("requests are for a char or block device"),
        };
        let ctx = [
            (u64::from(access) << 16) | typ,
            u64::from(major),
            u64::from(minor),
        ];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..100_000 {
            let i = prog[pc];
            pc += 1;
            let (d, s) = (i.dst() as usize, i.src() as usize);
            match i.code {
                op::LDX_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = ctx[i.off as usize / 4];
                }
                op::AND32_K => r[d] = u64::from((r[d] as u32) & (i.imm as u32)),
                op::RSH32_K => r[d] = u64::from((r[d] as u32) >> i.imm),
                op::MOV32_K => r[d] = u64::from(i.imm as u32),
                op::JA => pc = (pc as i64 + i64::from(i.off)) as usize,
                op::JSET_K => {
                    if r[d] & (i.imm as i64 as u64) != 0 {
                        pc = (pc as i64 + i64::from(i.off)) as usize
                    }
                }
                op::JNE32_K => {
                    if r[d] as u32 != i.imm as u32 {
                        pc = (pc as i64 + i64::from(i.off)) as usize
                    }
                }
                op::EXIT => return r[0] as u32,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not terminate");
    }

    fn rule(
        allow: bool,
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    fn check_all(rules: &[DeviceRule]) {
        let prog = compile(rules).unwrap();
        for kind in [DeviceKind::Char, DeviceKind::Block] {
            for major in [0, 1, 5, 136, 0x8000_0001] {
                for minor in [0, 3, 7, 0xffff_fffe] {
                    for access in 1..=7u8 {
                        let want = evaluate(rules, kind, major, minor, access);
                        let got = run(&prog, kind, major, minor, access) == 1;
                        assert_eq!(
                            got, want,
                            "{kind:?} {major}:{minor} access {access} with rules {rules:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn program_prologue_and_epilogue_shape() {
        let prog = compile(&[]).unwrap();
        // 6 loads/shifts, 3 blocks of (jset, ja, mov, exit), final mov + exit
        assert_eq!(prog.len(), 6 + 3 * 4 + 2);
        assert_eq!(prog[0].code, op::LDX_W);
        assert_eq!((prog[0].dst(), prog[0].src(), prog[0].off), (2, 1, 0));
        assert_eq!((prog[1].code, prog[1].imm), (op::AND32_K, 0xffff));
        assert_eq!((prog[3].code, prog[3].imm), (op::RSH32_K, 16));
        assert_eq!((prog[4].off, prog[5].off), (4, 8));
        let last = &prog[prog.len() - 2..];
        assert_eq!(
            (last[0].code, last[0].imm, last[1].code),
            (op::MOV32_K, 1, op::EXIT)
        );
        // nothing is allowed without rules
        assert_eq!(run(&prog, DeviceKind::Char, 1, 3, ACC_READ), 0);
    }

    #[test]
    fn one_rule_block_shape() {
        let prog = compile(&[rule(true, DeviceKind::Char, Some(1), Some(3), ACC_READ)]).unwrap();
        // the read block: jset, ja, jne type, jne major, jne minor, ja (allow), default deny (2)
        let jnes: Vec<_> = prog.iter().filter(|i| i.code == op::JNE32_K).collect();
        assert_eq!(jnes.len(), 3);
        assert_eq!((jnes[0].dst(), jnes[0].imm), (2, 2));
        assert_eq!((jnes[1].dst(), jnes[1].imm), (4, 1));
        assert_eq!((jnes[2].dst(), jnes[2].imm), (5, 3));
        // all jumps land inside the program
        for (pc, i) in prog.iter().enumerate() {
            if matches!(i.code, op::JA | op::JSET_K | op::JNE32_K) {
                let t = pc as i64 + 1 + i64::from(i.off);
                assert!(t > pc as i64 && (t as usize) < prog.len(), "jump at {pc}");
            }
        }
        assert_eq!(run(&prog, DeviceKind::Char, 1, 3, ACC_READ), 1);
        assert_eq!(run(&prog, DeviceKind::Char, 1, 3, ACC_READ | ACC_WRITE), 0);
        assert_eq!(run(&prog, DeviceKind::Block, 1, 3, ACC_READ), 0);
    }

    #[test]
    fn oci_default_then_allow_null() {
        let rules = [
            rule(false, DeviceKind::All, None, None, ACC_ALL),
            rule(true, DeviceKind::Char, Some(1), Some(3), ACC_ALL),
        ];
        check_all(&rules);
        assert!(evaluate(
            &rules,
            DeviceKind::Char,
            1,
            3,
            ACC_READ | ACC_WRITE
        ));
        assert!(!evaluate(&rules, DeviceKind::Char, 1, 7, ACC_READ));
        // the unconditional deny ends each chain: no code for the (unreachable) default
        let prog = compile(&rules).unwrap();
        let exits = prog.iter().filter(|i| i.code == op::EXIT).count();
        assert_eq!(exits, 3 + 1);
    }

    #[test]
    fn last_match_wins_and_union_of_bits() {
        let rules = [
            rule(true, DeviceKind::Char, Some(1), None, ACC_ALL),
            rule(false, DeviceKind::Char, Some(1), Some(7), ACC_WRITE),
            rule(true, DeviceKind::Char, Some(10), Some(200), ACC_READ),
            rule(true, DeviceKind::Char, Some(10), Some(200), ACC_WRITE),
        ];
        check_all(&rules);
        assert!(evaluate(&rules, DeviceKind::Char, 1, 7, ACC_READ));
        assert!(!evaluate(
            &rules,
            DeviceKind::Char,
            1,
            7,
            ACC_READ | ACC_WRITE
        ));
        assert!(evaluate(
            &rules,
            DeviceKind::Char,
            10,
            200,
            ACC_READ | ACC_WRITE
        ));
        assert!(!evaluate(&rules, DeviceKind::Char, 10, 200, ACC_MKNOD));
    }

    #[test]
    fn allow_all_then_deny() {
        let rules = [
            rule(true, DeviceKind::All, None, None, ACC_ALL),
            rule(false, DeviceKind::Block, None, None, ACC_WRITE | ACC_MKNOD),
        ];
        check_all(&rules);
        assert!(evaluate(&rules, DeviceKind::Block, 8, 0, ACC_READ));
        assert!(!evaluate(&rules, DeviceKind::Block, 8, 0, ACC_WRITE));
    }

    #[test]
    fn runc_defaults_compile_and_match() {
        let mut rules = vec![rule(false, DeviceKind::All, None, None, ACC_ALL)];
        rules.extend(runc_default_rules());
        check_all(&rules);
        assert!(evaluate(
            &rules,
            DeviceKind::Char,
            136,
            5,
            ACC_READ | ACC_WRITE
        ));
        assert!(evaluate(&rules, DeviceKind::Block, 8, 0, ACC_MKNOD));
        assert!(!evaluate(&rules, DeviceKind::Block, 8, 0, ACC_READ));
    }

    #[test]
    fn pseudo_random_rule_sets_agree_with_reference() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..300 {
            let len = next(8) as usize;
            let rules: Vec<DeviceRule> = (0..len)
                .map(|_| {
                    let kind =
                        [DeviceKind::All, DeviceKind::Char, DeviceKind::Block][next(3) as usize];
                    let major = [None, Some(1), Some(5), Some(0x8000_0001)][next(4) as usize];
                    let minor = [None, Some(3), Some(7)][next(3) as usize];
                    rule(next(2) == 1, kind, major, minor, (next(7) + 1) as u8)
                })
                .collect();
            check_all(&rules);
        }
    }

    #[test]
    fn oci_conversion() {
        let d: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": false, "access": "rwm"}"#).unwrap();
        assert_eq!(
            DeviceRule::from_oci(&d).unwrap(),
            Some(rule(false, DeviceKind::All, None, None, ACC_ALL))
        );
        let d: LinuxDeviceCgroup = serde_json::from_str(
            r#"{"allow": true, "type": "c", "major": 136, "minor": -1, "access": "rw"}"#,
        )
        .unwrap();
        let r = DeviceRule::from_oci(&d).unwrap().unwrap();
        assert_eq!(
            r,
            rule(
                true,
                DeviceKind::Char,
                Some(136),
                None,
                ACC_READ | ACC_WRITE
            )
        );
        assert_eq!(r.to_string(), "allow c 136:* rw");
        let d: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow": true, "type": "p"}"#).unwrap();
        assert_eq!(DeviceRule::from_oci(&d).unwrap(), None);
        let d: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": true, "type": "c", "access": "rx"}"#).unwrap();
        let err = DeviceRule::from_oci(&d).unwrap_err().to_string();
        assert!(err.contains("'x'"), "{err}");
        let d: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": true, "type": "b", "major": -2}"#).unwrap();
        assert!(DeviceRule::from_oci(&d).is_err());
    }
}
