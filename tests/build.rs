//! Builds the isolation probe (`probe/reeve-probe.c`, static) into the cargo profile directory
//! (`target/<profile>/reeve-probe`), next to the test binaries' siblings: `tests/vm/run.sh` copies
//! every executable of that directory into the test VM, so the probe is there at the same path.
//! Tests read the path from `env!("REEVE_PROBE")`; when gcc is missing the build goes on and
//! `REEVE_PROBE_ERROR` says why (tests that need the probe then skip on the host).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=probe/reeve-probe.c");
    println!("cargo:rerun-if-changed=probe/build.sh");
    println!("cargo:rerun-if-env-changed=CC");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    // OUT_DIR is <target>/<profile>/build/reeve-tests-<hash>/out.
    let profile = out_dir
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| out_dir.clone());
    let built = out_dir.join("reeve-probe");
    let result = Command::new("sh")
        .arg(manifest.join("probe/build.sh"))
        .arg(&built)
        .output();
    let error = match result {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "tests/probe/build.sh failed: {}",
            String::from_utf8_lossy(&o.stderr).replace('\n', " ")
        )),
        Err(e) => Some(format!("run tests/probe/build.sh: {e}")),
    };
    let dest = profile.join("reeve-probe");
    let error = error.or_else(|| {
        let tmp = profile.join(format!(".reeve-probe.{}", std::process::id()));
        std::fs::copy(&built, &tmp)
            .and_then(|_| std::fs::rename(&tmp, &dest))
            .err()
            .map(|e| format!("install {}: {e}", dest.display()))
    });
    match error {
        None => {
            println!("cargo:rustc-env=REEVE_PROBE={}", dest.display());
            println!("cargo:rustc-env=REEVE_PROBE_ERROR=");
        }
        Some(e) => {
            println!("cargo:warning=the isolation probe was not built: {e}");
            println!("cargo:rustc-env=REEVE_PROBE=");
            println!("cargo:rustc-env=REEVE_PROBE_ERROR={e} (apt-get install gcc libc6-dev)");
        }
    }
}
