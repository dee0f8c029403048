//! `reevec update [--resources FILE|-] [--memory N] [--pids-limit N] [--cpu-quota N] ... <id>`:
//! new resource limits for a created, running or paused container, as runc's `update` takes them
//! (containerd sends `update --resources -` with OCI `LinuxResources` JSON on stdin).
//!
//! The flags are merged over the JSON (runc ignores them when `--resources` is given; here a flag
//! overrides the same field of the JSON). As in runc, a flag of 0 leaves the setting alone, sizes
//! take k/m/g/t/p suffixes (powers of 1024) and `-1` means unlimited.

use std::io::Read;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use super::{Cli, CliError};

/// Errors of turning `update`'s arguments into `LinuxResources`.
#[derive(Debug, thiserror::Error)]
pub enum UpdateArgsError {
    #[error("read --resources {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse --resources {what} as OCI linux.resources JSON: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("--{flag} {value:?}: not a size (bytes, or a number with a k, m, g, t or p suffix; -1 for unlimited)")]
    Size { flag: &'static str, value: String },
}

#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// LinuxResources JSON from FILE, or from stdin with `-`.
    #[arg(long, short = 'r', value_name = "FILE|-")]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (k/m/g suffixes; -1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation (memory.low).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// CPU CFS quota in microseconds per period (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight, converted to cpu.weight).
    #[arg(long, alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    /// CPUs to run on (cpuset.cpus), e.g. 0-3,6.
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes (cpuset.mems).
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Block IO weight, 10..=1000.
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}

/// docker/go-units `RAMInBytes` (what runc uses for its memory flags), plus `-1`.
pub fn parse_size(flag: &'static str, value: &str) -> Result<i64, UpdateArgsError> {
    let bad = || UpdateArgsError::Size {
        flag,
        value: value.to_string(),
    };
    if value == "-1" {
        return Ok(-1);
    }
    let num_len = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (num, rest) = value.split_at(num_len);
    if !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mut rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut shift = 0;
    if let Some(c) = rest.chars().next() {
        if let Some(pos) = "kmgtp".find(c.to_ascii_lowercase()) {
            shift = 10 * (pos as i32 + 1);
            rest = &rest[1..];
        }
    }
    let rest = rest.strip_prefix(['i', 'I']).unwrap_or(rest);
    let rest = rest.strip_prefix(['b', 'B']).unwrap_or(rest);
    if !rest.is_empty() {
        return Err(bad());
    }
    let bytes = n * 2f64.powi(shift);
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

fn set(v: &mut Value, section: &str, key: &str, value: Value) {
    if !v.is_object() {
        return; // from_value reports the type error
    }
    let s = &mut v[section];
    if !s.is_object() {
        *s = json!({});
    }
    s[key] = value;
}

impl Args {
    /// The LinuxResources to apply: the JSON (when given) with the flags merged over it.
    pub fn to_resources(&self, json_text: Option<&str>) -> Result<LinuxResources, UpdateArgsError> {
        let what = match &self.resources {
            Some(p) if p.as_os_str() == "-" => "stdin".to_string(),
            Some(p) => p.display().to_string(),
            None => "flags".to_string(),
        };
        let json_err = |source| UpdateArgsError::Json {
            what: what.clone(),
            source,
        };
        let mut v: Value = match json_text {
            Some(t) => serde_json::from_str(t).map_err(json_err)?,
            None => json!({}),
        };
        for (flag, field, val) in [
            ("memory", "limit", &self.memory),
            (
                "memory-reservation",
                "reservation",
                &self.memory_reservation,
            ),
            ("memory-swap", "swap", &self.memory_swap),
        ] {
            if let Some(s) = val.as_deref().filter(|s| !s.is_empty()) {
                set(&mut v, "memory", field, json!(parse_size(flag, s)?));
            }
        }
        if let Some(n) = self.pids_limit.filter(|n| *n != 0) {
            set(&mut v, "pids", "limit", json!(n));
        }
        if let Some(n) = self.cpu_quota.filter(|n| *n != 0) {
            set(&mut v, "cpu", "quota", json!(n));
        }
        if let Some(n) = self.cpu_period.filter(|n| *n != 0) {
            set(&mut v, "cpu", "period", json!(n));
        }
        if let Some(n) = self.cpu_shares.filter(|n| *n != 0) {
            set(&mut v, "cpu", "shares", json!(n));
        }
        if let Some(s) = self.cpuset_cpus.as_deref().filter(|s| !s.is_empty()) {
            set(&mut v, "cpu", "cpus", json!(s));
        }
        if let Some(s) = self.cpuset_mems.as_deref().filter(|s| !s.is_empty()) {
            set(&mut v, "cpu", "mems", json!(s));
        }
        if let Some(n) = self.blkio_weight.filter(|n| *n != 0) {
            set(&mut v, "blockIO", "weight", json!(n));
        }
        serde_json::from_value(v).map_err(json_err)
    }

    fn read_json(&self) -> Result<Option<String>, UpdateArgsError> {
        let Some(path) = &self.resources else {
            return Ok(None);
        };
        let read_err = |source| UpdateArgsError::Read {
            path: path.clone(),
            source,
        };
        let mut text = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin()
                .lock()
                .read_to_string(&mut text)
                .map_err(read_err)?;
        } else {
            text = std::fs::read_to_string(path).map_err(read_err)?;
        }
        Ok(Some(text))
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    let resources = args.to_resources(args.read_json()?.as_deref())?;
    crate::container::resources::update(&cli.state_root(), &args.id, &resources)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> Args {
        let cli = Cli::try_parse_from(std::iter::once("reevec").chain(argv.iter().copied()))
            .expect("parse");
        match cli.command {
            super::super::Command::Update(a) => a,
            other => panic!("not update: {other:?}"),
        }
    }

    fn writes(r: &LinuxResources) -> Vec<(String, String)> {
        crate::cgroups::plan(r)
            .unwrap()
            .writes
            .into_iter()
            .map(|w| (w.file, w.value))
            .collect()
    }

    #[test]
    fn sizes_follow_go_units() {
        for (s, want) in [
            ("1024", 1024),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("1g", 1 << 30),
            ("1GiB", 1 << 30),
            ("2kb", 2048),
            ("1.5k", 1536),
            ("10 m", 10 << 20),
            ("-1", -1),
        ] {
            assert_eq!(parse_size("memory", s).unwrap(), want, "{s}");
        }
        for bad in [
            "",
            "m",
            "-2",
            "12x",
            "1mm",
            "1.2.3",
            "99999999999999999999p",
        ] {
            let e = parse_size("memory", bad).unwrap_err().to_string();
            assert!(
                e.contains("--memory") && e.contains("not a size"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn flags_become_linux_resources() {
        let a = parse(&[
            "update",
            "--memory",
            "48M",
            "--pids-limit",
            "12",
            "--cpu-quota",
            "20000",
            "--cpu-period",
            "50000",
            "--cpu-share",
            "512",
            "--cpuset-cpus",
            "0",
            "--blkio-weight",
            "500",
            "c1",
        ]);
        assert_eq!(a.id, "c1");
        let r = a.to_resources(None).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(48 << 20));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 12);
        let w = writes(&r);
        for want in [
            ("memory.max", "50331648"),
            ("pids.max", "12"),
            ("cpu.max", "20000 50000"),
            ("cpu.weight", "20"),
            ("cpuset.cpus", "0"),
            ("io.weight", "default 4950"),
        ] {
            assert!(
                w.contains(&(want.0.into(), want.1.into())),
                "{want:?} in {w:?}"
            );
        }
    }

    #[test]
    fn id_may_come_first_and_negative_values_are_values() {
        let a = parse(&["update", "c2", "--memory", "-1", "--cpu-quota", "-1"]);
        assert_eq!(a.id, "c2");
        let w = writes(&a.to_resources(None).unwrap());
        assert!(w.contains(&("memory.max".into(), "max".into())), "{w:?}");
        assert!(
            w.contains(&("cpu.max".into(), "max 100000".into())),
            "{w:?}"
        );
    }

    #[test]
    fn zero_flags_change_nothing_as_in_runc() {
        let a = parse(&["update", "--pids-limit", "0", "--cpu-shares", "0", "c"]);
        let r = a.to_resources(None).unwrap();
        assert!(crate::cgroups::plan(&r).unwrap().is_empty());
    }

    #[test]
    fn containerd_json_is_read_and_flags_override_it() {
        let a = parse(&["update", "--resources", "-", "--pids-limit", "7", "c"]);
        let json = r#"{"memory":{"limit":67108864,"swap":134217728},
                       "cpu":{"shares":1024,"quota":30000,"period":100000},
                       "pids":{"limit":99}}"#;
        let r = a.to_resources(Some(json)).unwrap();
        let w = writes(&r);
        for want in [
            ("memory.max", "67108864"),
            ("memory.swap.max", "67108864"),
            ("cpu.max", "30000 100000"),
            ("cpu.weight", "39"),
            ("pids.max", "7"),
        ] {
            assert!(
                w.contains(&(want.0.into(), want.1.into())),
                "{want:?} in {w:?}"
            );
        }
    }

    #[test]
    fn bad_json_names_its_source() {
        let a = parse(&["update", "--resources", "/x/res.json", "c"]);
        let e = a.to_resources(Some("[1,2]")).unwrap_err().to_string();
        assert!(
            e.contains("/x/res.json") && e.contains("linux.resources"),
            "{e}"
        );
        let e = a
            .to_resources(Some(r#"{"memory":{"limit":"lots"}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/res.json"), "{e}");
        let stdin = parse(&["update", "-r", "-", "c"]);
        let e = stdin.to_resources(Some("{")).unwrap_err().to_string();
        assert!(e.contains("stdin"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let a = parse(&["update", "--resources", "/nonexistent/r.json", "c"]);
        let e = a.read_json().unwrap_err().to_string();
        assert!(e.contains("read --resources /nonexistent/r.json"), "{e}");
    }
}
