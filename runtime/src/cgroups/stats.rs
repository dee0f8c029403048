//! Reading a cgroup's statistics, in the JSON shape of runc's `events --stats` (`types.Stats`),
//! plus the cgroup v2 memory events (`memory.event_count`, as newer runc has it).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::CgroupError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds, like runc (cgroup v2 reports microseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// `u64::MAX` for "max", as runc reports it.
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// cgroup v2 `memory.events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEvents {
    pub low: u64,
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// `file` of memory.stat.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// memory.current / memory.max; `failcnt` is memory.events `max`.
    pub usage: MemoryEntry,
    /// Like runc on cgroup v2: swap + memory usage, swap.max + memory.max limit.
    pub swap: MemoryEntry,
    /// memory.stat, all keys (anon, file, kernel_stack, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    pub event_count: MemoryEvents,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 for "max", like runc.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    /// io.stat rbytes/wbytes as "Read"/"Write".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// io.stat rios/wios as "Read"/"Write".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Reads a cgroup file; `Ok(None)` when it does not exist (controller not enabled).
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

fn parse_u64(dir: &Path, file: &str, s: &str) -> Result<u64, CgroupError> {
    s.parse().map_err(|_| CgroupError::Parse {
        path: dir.join(file),
        content: s.to_string(),
    })
}

/// "max" → `u64::MAX`, else a number.
fn parse_limit(dir: &Path, file: &str, s: &str) -> Result<u64, CgroupError> {
    if s == "max" {
        Ok(u64::MAX)
    } else {
        parse_u64(dir, file, s)
    }
}

/// A single-value file (`memory.current`), `None` when absent.
fn single(dir: &Path, file: &str, limit: bool) -> Result<Option<u64>, CgroupError> {
    match read_optional(dir, file)? {
        None => Ok(None),
        Some(s) => {
            let s = s.trim();
            let v = if limit {
                parse_limit(dir, file, s)?
            } else {
                parse_u64(dir, file, s)?
            };
            Ok(Some(v))
        }
    }
}

/// A flat-keyed file ("key value" lines, e.g. memory.stat, cpu.stat, memory.events).
pub(crate) fn flat_keyed(
    dir: &Path,
    file: &str,
) -> Result<Option<BTreeMap<String, u64>>, CgroupError> {
    let Some(text) = read_optional(dir, file)? else {
        return Ok(None);
    };
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split_whitespace();
        match (it.next(), it.next(), it.next()) {
            (Some(k), Some(v), None) => {
                map.insert(k.to_string(), parse_u64(dir, file, v)?);
            }
            _ => {
                return Err(CgroupError::Parse {
                    path: dir.join(file),
                    content: line.to_string(),
                })
            }
        }
    }
    Ok(Some(map))
}

/// Reads all statistics of the cgroup directory `dir`. Files of controllers that are not enabled
/// are skipped (their numbers stay 0); malformed content is an error.
pub fn read(dir: &Path) -> Result<Stats, CgroupError> {
    let mut st = Stats::default();

    if let Some(cpu) = flat_keyed(dir, "cpu.stat")? {
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
        st.cpu.usage.total = g("usage_usec") * 1000;
        st.cpu.usage.user = g("user_usec") * 1000;
        st.cpu.usage.kernel = g("system_usec") * 1000;
        st.cpu.throttling.periods = g("nr_periods");
        st.cpu.throttling.throttled_periods = g("nr_throttled");
        st.cpu.throttling.throttled_time = g("throttled_usec") * 1000;
    }

    if let Some(raw) = flat_keyed(dir, "memory.stat")? {
        st.memory.cache = raw.get("file").copied().unwrap_or(0);
        st.memory.raw = raw;
    }
    if let Some(cur) = single(dir, "memory.current", false)? {
        st.memory.usage.usage = cur;
        st.memory.usage.limit = single(dir, "memory.max", true)?.unwrap_or(u64::MAX);
        st.memory.usage.max = single(dir, "memory.peak", false)?.unwrap_or(0);
        if let Some(swap) = single(dir, "memory.swap.current", false)? {
            let swap_max = single(dir, "memory.swap.max", true)?.unwrap_or(u64::MAX);
            st.memory.swap.usage = swap + cur;
            st.memory.swap.limit = if swap_max == u64::MAX || st.memory.usage.limit == u64::MAX {
                u64::MAX
            } else {
                swap_max + st.memory.usage.limit
            };
        }
    }
    if let Some(ev) = flat_keyed(dir, "memory.events")? {
        let g = |k: &str| ev.get(k).copied().unwrap_or(0);
        st.memory.event_count = MemoryEvents {
            low: g("low"),
            high: g("high"),
            max: g("max"),
            oom: g("oom"),
            oom_kill: g("oom_kill"),
        };
        st.memory.usage.failcnt = g("max");
    }

    if let Some(cur) = single(dir, "pids.current", false)? {
        st.pids.current = cur;
        st.pids.limit = match single(dir, "pids.max", true)? {
            Some(u64::MAX) | None => 0,
            Some(v) => v,
        };
    }

    if let Some(text) = read_optional(dir, "io.stat")? {
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let Some(dev) = it.next() else { continue };
            let Some((major, minor)) = dev.split_once(':') else {
                continue;
            };
            let major = parse_u64(dir, "io.stat", major)?;
            let minor = parse_u64(dir, "io.stat", minor)?;
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let (table, op) = match k {
                    "rbytes" => (&mut st.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut st.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut st.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut st.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                table.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value: parse_u64(dir, "io.stat", v)?,
                });
            }
        }
    }

    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(size) = name
                .strip_prefix("hugetlb.")
                .and_then(|rest| rest.strip_suffix(".current"))
                .filter(|s| !s.contains('.'))
            else {
                continue;
            };
            let usage = single(dir, &name, false)?.unwrap_or(0);
            let max = single(dir, &format!("hugetlb.{size}.max"), true)?.unwrap_or(u64::MAX);
            let failcnt = flat_keyed(dir, &format!("hugetlb.{size}.events"))?
                .and_then(|m| m.get("max").copied())
                .unwrap_or(0);
            st.hugetlb.insert(
                size.to_string(),
                Hugetlb {
                    usage,
                    max,
                    failcnt,
                },
            );
        }
    }

    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &Path, file: &str, content: &str) {
        std::fs::write(dir.join(file), content).unwrap();
    }

    #[test]
    fn reads_fake_cgroup_files() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        put(d, "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 200\n");
        put(d, "memory.current", "4096\n");
        put(d, "memory.max", "33554432\n");
        put(d, "memory.swap.current", "0\n");
        put(d, "memory.swap.max", "0\n");
        put(d, "memory.stat", "anon 1024\nfile 2048\n");
        put(
            d,
            "memory.events",
            "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n",
        );
        put(d, "pids.current", "3\n");
        put(d, "pids.max", "max\n");
        put(
            d,
            "io.stat",
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        put(d, "hugetlb.2MB.current", "0\n");
        put(d, "hugetlb.2MB.max", "max\n");
        put(d, "hugetlb.2MB.events", "max 0\n");
        put(d, "hugetlb.2MB.rsvd.current", "0\n");
        let st = read(d).unwrap();
        assert_eq!(st.cpu.usage.total, 1_500_000);
        assert_eq!(st.cpu.usage.kernel, 500_000);
        assert_eq!(st.cpu.throttling.throttled_periods, 4);
        assert_eq!(st.cpu.throttling.throttled_time, 200_000);
        assert_eq!(st.memory.usage.usage, 4096);
        assert_eq!(st.memory.usage.limit, 33_554_432);
        assert_eq!(st.memory.usage.failcnt, 7);
        assert_eq!(st.memory.swap.limit, 33_554_432);
        assert_eq!(st.memory.cache, 2048);
        assert_eq!(st.memory.raw["anon"], 1024);
        assert_eq!(st.memory.event_count.oom, 2);
        assert_eq!(st.memory.event_count.oom_kill, 1);
        assert_eq!((st.pids.current, st.pids.limit), (3, 0));
        assert_eq!(st.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(st.blkio.io_serviced_recursive[1].op, "Write");
        assert_eq!(st.hugetlb.len(), 1);
        assert_eq!(st.hugetlb["2MB"].max, u64::MAX);

        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["cpu"]["throttling"]["throttledPeriods"], 4);
        assert_eq!(json["memory"]["usage"]["limit"], 33_554_432u64);
        assert_eq!(json["memory"]["event_count"]["oom_kill"], 1);
        assert_eq!(json["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
        assert_eq!(json["pids"]["current"], 3);
    }

    #[test]
    fn missing_controllers_give_zeros_and_garbage_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(read(t.path()).unwrap(), Stats::default());
        put(t.path(), "memory.current", "lots\n");
        let e = read(t.path()).unwrap_err().to_string();
        assert!(e.contains("memory.current") && e.contains("lots"), "{e}");
    }
}
