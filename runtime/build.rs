//! Link `reevec` with packed relative relocations (DT_RELR) when the toolchain supports them.
//!
//! `reevec` copies itself into a sealed memfd and re-executes from it before every
//! create/run/exec (CVE-2019-5736), so the size of the binary and the dynamic loader's work are
//! paid twice on every sandbox start. As a position-independent executable it carried ~15,000
//! R_X86_64_RELATIVE entries (a 360 KiB `.rela.dyn`) that ld.so read and applied at each exec;
//! DT_RELR encodes the same relocations in a few KiB. The executable stays PIE (ASLR unchanged).
//!
//! Needs GNU ld ≥ 2.38 (or lld) and glibc ≥ 2.36 at run time (the linker then records a
//! GLIBC_ABI_DT_RELR version need, so an older glibc refuses the binary loudly). The flag is
//! only passed when a test link with it succeeds, so other toolchains build as before.

use std::path::PathBuf;
use std::process::Command;

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    if linker_accepts(FLAG) {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    } else {
        println!("cargo:warning=linker lacks -z pack-relative-relocs: reevec keeps RELA relocations (slower start)");
    }
}

/// Whether the C compiler driver rustc links with can link a program with `flag`.
fn linker_accepts(flag: &str) -> bool {
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let src = out.join("relr-probe.c");
    if std::fs::write(&src, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    let cc = std::env::var("RUSTC_LINKER")
        .ok()
        .or_else(|| std::env::var("CC").ok())
        .unwrap_or_else(|| "cc".to_string());
    Command::new(cc)
        .arg("-pie")
        .arg("-fPIE")
        .arg(flag)
        .arg("-o")
        .arg(out.join("relr-probe"))
        .arg(&src)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
