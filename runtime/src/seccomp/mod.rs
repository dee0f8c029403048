//! seccomp: compile an OCI `linux.seccomp` profile to classic BPF and install it.
//!
//! Our own compiler (no libseccomp): the filter checks `seccomp_data.arch`, then does a
//! **balanced binary search** over syscall-number intervals (adjacent numbers with the same
//! fate are merged), so a syscall costs ~log2(intervals) comparisons and the default profile is
//! a few hundred instructions instead of a ~1,500-instruction linear chain. Compiled programs
//! are cached on disk per profile ([`load_cached`]) so a container start does not recompile.
//!
//! Semantics (documented choices; see also `README.md` in this directory):
//! - Rules for one syscall are tried **in profile order**, first match wins; conditions of one
//!   rule are ANDed; no match → the default action. Argument comparisons are 64-bit (high word
//!   then low word, like libseccomp); `SCMP_CMP_MASKED_EQ` is `(arg & value) == (valueTwo &
//!   value)`.
//! - Architectures: x86_64, x32 and i386 have syscall tables. x32 syscalls arrive as
//!   `AUDIT_ARCH_X86_64` with `nr | 0x4000_0000`: if `SCMP_ARCH_X32` is listed they are filtered
//!   by the x32 table (below `0x4000_0000 + 512` the bit is stripped and the x86_64 search is
//!   reused: same names and numbers there, and the x86_64-only numbers are ENOSYS on x32),
//!   otherwise they get the bad-arch action. `nr == -1` (used by ptrace to skip a syscall)
//!   always gets the default action. Any architecture not listed →
//!   `SECCOMP_RET_KILL_PROCESS` (bad arch). Listed architectures without a table (arm, …) are
//!   skipped with a debug log: their syscalls cannot occur on an x86 host. No `architectures`
//!   → the native one.
//! - Unknown syscall names are skipped with `tracing::debug!` (as runc does).
//! - Actions: ALLOW, ERRNO (rule `errnoRet`, default EPERM; the default action uses
//!   `defaultErrnoRet`, default EPERM), KILL/KILL_THREAD, KILL_PROCESS, TRAP, LOG, TRACE (data =
//!   `errnoRet`, default EPERM). NOTIFY is refused with [`SeccompError::Notify`].
//! - Flags: TSYNC, LOG, SPEC_ALLOW are passed to seccomp(2); WAIT_KILLABLE_RECV is ignored (it
//!   only applies to a notify listener).

mod asm;
mod compile;
mod syscalls;

#[cfg(test)]
mod interp;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

pub use compile::{FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_TSYNC};

/// reeve's default profile (Docker/containerd-like allowlist, see `README.md`).
pub const DEFAULT_PROFILE: &str = include_str!("../../../seccomp-profiles/default.json");

/// Bumped whenever the generated code or the syscall tables change: part of the cache key.
pub const COMPILER_VERSION: &str = "reeve-seccomp-bpf 2 (x86 tables: linux 6.17)";

const MAGIC: &[u8; 8] = b"RVSECBPF";
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 4;
const DIGEST_LEN: usize = 32;

/// Errors of the seccomp module.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("parse seccomp profile JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("serialize seccomp profile for the cache key: {0}")]
    Serialize(serde_json::Error),
    #[error("seccomp rule for {syscall}: SCMP_ACT_NOTIFY is not supported (no seccomp agent)")]
    Notify { syscall: String },
    #[error(
        "seccomp rule for {syscall}: errnoRet {value} does not fit SECCOMP_RET_DATA (16 bits)"
    )]
    ErrnoRetRange { syscall: String, value: u32 },
    #[error("seccomp rule for {syscall}: argument index {index} out of range 0..=5")]
    ArgIndex { syscall: String, index: usize },
    #[error("seccomp: SCMP_ARCH_NATIVE has no syscall table on {arch}")]
    UnsupportedNative { arch: &'static str },
    #[error("seccomp filter of {len} instructions exceeds BPF_MAXINSNS (4096)")]
    ProgramTooLong { len: usize },
    #[error("seccomp compiler internal error: {0}")]
    Internal(&'static str),
    #[error("decode seccomp program: {0}")]
    Decode(&'static str),
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}): {errno}")]
    Install { flags: u32, errno: Errno },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): thread {tid} cannot be synchronized")]
    Tsync { tid: i64 },
    #[error("prctl(PR_SET_NO_NEW_PRIVS): {0}")]
    NoNewPrivs(Errno),
    #[error("seccomp cache: {op} {path}: {source}")]
    Cache {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A compiled filter, ready to install.
#[derive(Clone)]
pub struct Program {
    insns: Vec<libc::sock_filter>,
    flags: u32,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("len", &self.insns.len())
            .field("flags", &self.flags)
            .finish()
    }
}

impl PartialEq for Program {
    fn eq(&self, other: &Self) -> bool {
        self.flags == other.flags
            && self.insns.len() == other.insns.len()
            && self
                .insns
                .iter()
                .zip(&other.insns)
                .all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k))
    }
}

impl Eq for Program {}

/// Compiles an OCI seccomp profile.
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let plan = compile::Plan::from_profile(profile)?;
    Ok(Program {
        insns: plan.codegen()?,
        flags: plan.flags,
    })
}

/// Parses an OCI `linux.seccomp` JSON object and compiles it.
pub fn from_json(s: &str) -> Result<Program, SeccompError> {
    compile(&serde_json::from_str::<LinuxSeccomp>(s)?)
}

/// The parsed [`DEFAULT_PROFILE`].
pub fn default_profile() -> Result<LinuxSeccomp, SeccompError> {
    Ok(serde_json::from_str(DEFAULT_PROFILE)?)
}

/// The x86_64 number of a syscall name in the compiler's table (for tools and benchmarks that
/// translate a profile to another filter library).
pub fn x86_64_syscall_number(name: &str) -> Option<u32> {
    syscalls::lookup(syscalls::X86_64, name)
}

/// Sets `no_new_privs` on the calling thread (required to install a filter without
/// `CAP_SYS_ADMIN`). Does not allocate.
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(SeccompError::NoNewPrivs(Errno::last()));
    }
    Ok(())
}

impl Program {
    /// A program of raw instructions and `SECCOMP_FILTER_FLAG_*` flags, built by something
    /// other than [`compile`] (a hand-written filter, another compiler's output), to install
    /// through the same [`Program::install`]. The kernel validates it at install.
    pub fn from_instructions(insns: Vec<libc::sock_filter>, flags: u32) -> Program {
        Program { insns, flags }
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether the program has no instruction (never true for a compiled program).
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// `SECCOMP_FILTER_FLAG_*` passed to seccomp(2).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The instructions.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    /// Installs the filter on the calling thread (all threads with TSYNC) with
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`. Does not allocate, so it is safe between fork and
    /// exec. The caller must have set `no_new_privs` or hold `CAP_SYS_ADMIN`.
    pub fn install(&self) -> Result<(), SeccompError> {
        let Ok(len) = u16::try_from(self.insns.len()) else {
            return Err(SeccompError::ProgramTooLong {
                len: self.insns.len(),
            });
        };
        let prog = libc::sock_fprog {
            len,
            filter: self.insns.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `len` valid instructions that outlive the call; the kernel
        // copies the program and does not write through the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                libc::c_ulong::from(self.flags),
                &prog as *const libc::sock_fprog,
            )
        };
        match rc {
            0 => Ok(()),
            r if r > 0 => Err(SeccompError::Tsync { tid: r }),
            _ => Err(SeccompError::Install {
                flags: self.flags,
                errno: Errno::last(),
            }),
        }
    }

    /// Serializes: magic, format version, flags, count, instructions (8 bytes each, little
    /// endian), then a SHA-256 of everything before.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 8 * self.insns.len() + DIGEST_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&(self.insns.len() as u32).to_le_bytes());
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_le_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_le_bytes());
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Parses [`Program::to_bytes`] output, checking the digest and that the program only uses
    /// the instructions this compiler emits, with in-bounds forward jumps, ending in `RET`.
    pub fn from_bytes(b: &[u8]) -> Result<Program, SeccompError> {
        if b.len() < HEADER_LEN + DIGEST_LEN {
            return Err(SeccompError::Decode("truncated header"));
        }
        let (body, digest) = b.split_at(b.len() - DIGEST_LEN);
        if Sha256::digest(body).as_slice() != digest {
            return Err(SeccompError::Decode("checksum mismatch"));
        }
        if &body[..8] != MAGIC {
            return Err(SeccompError::Decode("bad magic"));
        }
        let word =
            |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
        if word(8) != FORMAT_VERSION {
            return Err(SeccompError::Decode("unknown format version"));
        }
        let flags = word(12);
        let count = word(16) as usize;
        let payload = &body[HEADER_LEN..];
        if payload.len() != count * 8 {
            return Err(SeccompError::Decode(
                "length does not match instruction count",
            ));
        }
        let insns: Vec<libc::sock_filter> = payload
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        validate(&insns)?;
        if flags & !(FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW) != 0 {
            return Err(SeccompError::Decode("unknown filter flags"));
        }
        Ok(Program { insns, flags })
    }
}

/// Structural check of a program made of the instructions our compiler emits.
fn validate(insns: &[libc::sock_filter]) -> Result<(), SeccompError> {
    use asm::*;
    if insns.is_empty() || insns.len() > MAX_INSNS {
        return Err(SeccompError::Decode("instruction count out of range"));
    }
    let n = insns.len();
    for (pc, i) in insns.iter().enumerate() {
        let in_range = |off: usize| pc + 1 + off < n;
        let ok = match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => i.k & 3 == 0 && i.k < 64,
            c if c == BPF_ALU | BPF_AND | BPF_K => true,
            c if c == BPF_RET | BPF_K => true,
            c if c == BPF_JMP | BPF_JA => in_range(i.k as usize),
            c if [BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET]
                .iter()
                .any(|op| c == BPF_JMP | op | BPF_K) =>
            {
                in_range(usize::from(i.jt)) && in_range(usize::from(i.jf))
            }
            _ => false,
        };
        if !ok {
            return Err(SeccompError::Decode("invalid instruction"));
        }
    }
    if insns[n - 1].code != BPF_RET | BPF_K {
        return Err(SeccompError::Decode("program does not end with RET"));
    }
    Ok(())
}

/// The cache key of a profile: SHA-256 of the compiler version, the native architecture and
/// the profile's canonical JSON (serde field order, rule order kept).
pub fn cache_key(profile: &LinuxSeccomp) -> Result<[u8; 32], SeccompError> {
    let mut h = Sha256::new();
    h.update(COMPILER_VERSION.as_bytes());
    h.update([0]);
    h.update(std::env::consts::ARCH.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(profile).map_err(SeccompError::Serialize)?);
    Ok(h.finalize().into())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compiles `profile` once and reuses the result: the program is stored in
/// `cache_dir/<key>.bpf` (key = [`cache_key`]) as the key followed by [`Program::to_bytes`],
/// written to a temporary file and renamed into place. A missing, unreadable, corrupted or
/// mismatched file is recompiled and replaced. Failing to write the cache is logged, not fatal.
pub fn load_cached(profile: &LinuxSeccomp, cache_dir: &Path) -> Result<Program, SeccompError> {
    let key = cache_key(profile)?;
    let path = cache_dir.join(format!("{}.bpf", hex(&key)));
    match std::fs::read(&path) {
        Ok(bytes) => match bytes.split_at_checked(32) {
            Some((k, rest)) if k == key => match Program::from_bytes(rest) {
                Ok(p) => return Ok(p),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "seccomp cache entry invalid, recompiling")
                }
            },
            _ => {
                tracing::warn!(path = %path.display(), "seccomp cache entry has a wrong key, recompiling")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "seccomp cache read failed, recompiling")
        }
    }
    let prog = compile(profile)?;
    if let Err(e) = store(cache_dir, &path, &key, &prog) {
        tracing::warn!(error = %e, "seccomp cache not written");
    }
    Ok(prog)
}

fn store(
    cache_dir: &Path,
    path: &Path,
    key: &[u8; 32],
    prog: &Program,
) -> Result<(), SeccompError> {
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| SeccompError::Cache {
            op,
            path: p,
            source,
        }
    };
    std::fs::create_dir_all(cache_dir).map_err(io("create directory", cache_dir))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = cache_dir.join(format!(".{}.{}.{nanos}.tmp", hex(key), std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    let mut data = key.to_vec();
    data.extend_from_slice(&prog.to_bytes());
    let written = f.write_all(&data).map_err(io("write", &tmp));
    drop(f);
    let renamed =
        written.and_then(|()| std::fs::rename(&tmp, path).map_err(io("rename into", path)));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}
