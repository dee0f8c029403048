//! OCI `linux.resources` → cgroup v2 file writes, as plain data.
//!
//! The conversions follow runc 1.1.5 (the runc installed on the development machines and used as
//! the cross-check), file by file:
//! - `memory.limit` → `memory.max` (`-1` → `max`; `0` → not written)
//! - `memory.reservation` → `memory.low` (same rules)
//! - `memory.swap` (OCI: memory+swap total) → `memory.swap.max` = swap − limit (runc's
//!   `ConvertMemorySwapToCgroupV2Value`: `-1` → `max`; limit `-1` with no swap → `max`; otherwise a
//!   positive limit is required and swap ≥ limit; swap == limit → `0`)
//! - `cpu.shares` → `cpu.weight` = 1 + ((shares − 2) × 9999) / 262142. This is runc 1.1.5's linear
//!   `ConvertCPUSharesToCgroupV2Value`; runc ≥ 1.3 switched to a quadratic (log-scale) formula, so
//!   its weights differ for the same shares. Shares are clamped to cgroup v1's range 2..=262144
//!   first (runc 1.1.5 underflows for shares 1).
//! - `cpu.quota`/`cpu.period` → `cpu.max` = "QUOTA PERIOD" (`max` when quota ≤ 0 or unset, period
//!   defaults to 100000); `cpu.idle` → `cpu.idle`; `cpu.burst` → `cpu.max.burst`
//! - `cpu.cpus`/`cpu.mems` → `cpuset.cpus`/`cpuset.mems`
//! - `pids.limit` → `pids.max` (`max` when ≤ 0)
//! - `blockIO.weight` (10..=1000) → `io.weight` "default W" with W = 1 + (w − 10) × 9999 / 990
//!   (runc's `ConvertBlkIOToIOWeightValue`; runc first tries `io.bfq.weight` with the raw value and
//!   falls back to this, the plan always uses `io.weight`); `weightDevice` → `io.weight` "MAJ:MIN W"
//! - throttle devices → one `io.max` line per device, "MAJ:MIN rbps=N wbps=N riops=N wiops=N"
//!   (a rate of 0 means no limit, as in cgroup v1, and is written as `max`)
//! - `hugepageLimits` → `hugetlb.<size>.max`; `rdma` → `rdma.max` "DEV hca_handle=N hca_object=N"
//! - `unified` → written last, verbatim, under validated keys.
//!
//! Fields without a cgroup v2 equivalent (memory kernel/kernelTCP/swappiness/disableOOMKiller,
//! cpu realtime, blockIO leafWeight, network) are not errors (runc ignores them too); they are
//! listed in [`CgroupPlan::ignored`] so callers can warn.

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};
use serde::{Deserialize, Serialize};

use super::devices::{rules_from_oci, DeviceRule};
use super::error::CgroupError;

/// One write of `value` to the file `file` of the container's cgroup directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupWrite {
    pub file: String,
    pub value: String,
}

/// What applying `linux.resources` to a cgroup means, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// File writes, in the order they must happen.
    pub writes: Vec<CgroupWrite>,
    /// Controllers that must be enabled in every ancestor's `cgroup.subtree_control`.
    pub controllers: BTreeSet<String>,
    /// Device rules, in OCI order, when `linux.resources.devices` was given (see
    /// [`super::devices`]). `None` leaves device access alone.
    pub devices: Option<Vec<DeviceRule>>,
    /// Settings that have no cgroup v2 equivalent and were not applied.
    pub ignored: Vec<String>,
}

impl CgroupPlan {
    /// True when there is nothing to write and no device rules.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.devices.is_none()
    }

    /// runc's device policy: the user's `linux.resources.devices` rules (none → deny all), then
    /// runc's default allowed devices ([`super::devices::runc_default_rules`]), then an `rwm`
    /// allow for every `linux.devices` entry. Call this at create time so a container always gets
    /// a device program, as under runc.
    pub fn add_runc_default_devices(&mut self, linux_devices: &[oci_spec::runtime::LinuxDevice]) {
        let rules = self.devices.get_or_insert_with(Vec::new);
        rules.extend(super::devices::runc_default_rules());
        rules.extend(
            linux_devices
                .iter()
                .filter_map(super::devices::allow_device),
        );
    }

    fn write(&mut self, file: impl Into<String>, value: impl Into<String>) {
        let file = file.into();
        if let Some((controller, _)) = file.split_once('.') {
            if controller != "cgroup" {
                self.controllers.insert(controller.to_string());
            }
        }
        self.writes.push(CgroupWrite {
            file,
            value: value.into(),
        });
    }
}

/// The `cgroup.*` files `unified` may set; everything else under `cgroup.` is refused
/// (cgroup.procs/threads/subtree_control/kill/freeze/type would move processes, change the tree or
/// do what the runtime's own verbs do).
const UNIFIED_CGROUP_FILES: &[&str] = &["cgroup.max.depth", "cgroup.max.descendants"];

/// runc 1.1.5's `ConvertCPUSharesToCgroupV2Value`, shares clamped to 2..=262144.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// runc's `ConvertBlkIOToIOWeightValue` for a blkio weight in 10..=1000.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight) - 10) * 9999 / 990
}

fn limit_value(field: &'static str, v: i64) -> Result<Option<String>, CgroupError> {
    match v {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        v if v > 0 => Ok(Some(v.to_string())),
        v => Err(CgroupError::InvalidResource {
            field,
            reason: format!("{v} is negative (only -1, meaning unlimited, is allowed)"),
        }),
    }
}

/// runc's `ConvertMemorySwapToCgroupV2Value`: `memory.swap.max` from OCI's memory+swap total.
fn swap_value(swap: i64, limit: i64) -> Result<Option<String>, CgroupError> {
    let bad = |reason: String| CgroupError::InvalidResource {
        field: "memory.swap",
        reason,
    };
    if limit == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        -1 => return Ok(Some("max".into())),
        0 => return Ok(None),
        s if s < -1 => return Err(bad(format!("{s} is negative"))),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        return Err(bad(format!(
            "swap limit {swap} needs a memory limit (memory.limit is {})",
            if limit == 0 {
                "unset".to_string()
            } else {
                "-1".to_string()
            }
        )));
    }
    if swap < limit {
        return Err(bad(format!(
            "memory+swap limit {swap} is below the memory limit {limit}"
        )));
    }
    Ok(Some((swap - limit).to_string()))
}

fn validate_unified_key(key: &str) -> Result<(), CgroupError> {
    let refuse = |reason| {
        Err(CgroupError::InvalidUnifiedKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.contains('/') || key.contains('\0') {
        return refuse("a key is a file name in the cgroup directory: no '/'");
    }
    if key.contains("..") {
        return refuse("'..' is not allowed");
    }
    let Some((controller, file)) = key.split_once('.') else {
        return refuse("must be <controller>.<file>");
    };
    if controller.is_empty()
        || file.is_empty()
        || !controller
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        || !file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return refuse("must be <controller>.<file> made of [a-z0-9_] and [A-Za-z0-9_.-]");
    }
    if controller == "cgroup" && !UNIFIED_CGROUP_FILES.contains(&key) {
        return refuse(
            "cgroup.* files other than cgroup.max.depth and cgroup.max.descendants are managed \
             by the runtime (cgroup.procs, cgroup.threads, cgroup.subtree_control, cgroup.kill, \
             cgroup.freeze, ...)",
        );
    }
    Ok(())
}

fn throttle_lines(
    plan: &mut BTreeMap<(i64, i64), Vec<String>>,
    key: &str,
    list: &Option<Vec<LinuxThrottleDevice>>,
) -> Result<(), CgroupError> {
    for d in list.iter().flatten() {
        if d.major() < 0 || d.minor() < 0 {
            return Err(CgroupError::InvalidResource {
                field: "blockIO.throttle*Device",
                reason: format!("device {}:{} is not a device number", d.major(), d.minor()),
            });
        }
        let rate = if d.rate() == 0 {
            "max".to_string()
        } else {
            d.rate().to_string()
        };
        plan.entry((d.major(), d.minor()))
            .or_default()
            .push(format!("{key}={rate}"));
    }
    Ok(())
}

/// Converts `linux.resources` into a [`CgroupPlan`] (no I/O).
pub fn plan(resources: &LinuxResources) -> Result<CgroupPlan, CgroupError> {
    let mut p = CgroupPlan::default();

    if let Some(pids) = resources.pids() {
        let v = if pids.limit() <= 0 {
            "max".to_string()
        } else {
            pids.limit().to_string()
        };
        p.write("pids.max", v);
    }

    if let Some(mem) = resources.memory() {
        let limit = mem.limit().unwrap_or(0);
        if let Some(v) = swap_value(mem.swap().unwrap_or(0), limit)? {
            p.write("memory.swap.max", v);
        }
        if let Some(v) = limit_value("memory.limit", limit)? {
            p.write("memory.max", v);
        }
        if let Some(v) = limit_value("memory.reservation", mem.reservation().unwrap_or(0))? {
            p.write("memory.low", v);
        }
        let mut ignore = |set: bool, what: &str| {
            if set {
                p.ignored
                    .push(format!("memory.{what} (no cgroup v2 equivalent)"));
            }
        };
        ignore(mem.kernel().is_some(), "kernel");
        ignore(mem.kernel_tcp().is_some(), "kernelTCP");
        ignore(mem.swappiness().is_some(), "swappiness");
        ignore(mem.disable_oom_killer() == Some(true), "disableOOMKiller");
    }

    if let Some(bio) = resources.block_io() {
        if let Some(w) = bio.weight() {
            if w != 0 {
                if !(10..=1000).contains(&w) {
                    return Err(CgroupError::InvalidResource {
                        field: "blockIO.weight",
                        reason: format!("{w} is outside 10..=1000"),
                    });
                }
                p.write(
                    "io.weight",
                    format!("default {}", blkio_weight_to_io_weight(w)),
                );
            }
        }
        for d in bio.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                if !(10..=1000).contains(&w) || d.major() < 0 || d.minor() < 0 {
                    return Err(CgroupError::InvalidResource {
                        field: "blockIO.weightDevice",
                        reason: format!(
                            "{}:{} weight {w}: needs a device number and a weight in 10..=1000",
                            d.major(),
                            d.minor()
                        ),
                    });
                }
                p.write(
                    "io.weight",
                    format!(
                        "{}:{} {}",
                        d.major(),
                        d.minor(),
                        blkio_weight_to_io_weight(w)
                    ),
                );
            }
            if d.leaf_weight().is_some() {
                p.ignored.push(
                    "blockIO.weightDevice[].leafWeight (CFQ only, no cgroup v2 equivalent)".into(),
                );
            }
        }
        if bio.leaf_weight().is_some() {
            p.ignored
                .push("blockIO.leafWeight (CFQ only, no cgroup v2 equivalent)".into());
        }
        let mut max = BTreeMap::new();
        throttle_lines(&mut max, "rbps", bio.throttle_read_bps_device())?;
        throttle_lines(&mut max, "wbps", bio.throttle_write_bps_device())?;
        throttle_lines(&mut max, "riops", bio.throttle_read_iops_device())?;
        throttle_lines(&mut max, "wiops", bio.throttle_write_iops_device())?;
        for ((major, minor), kv) in max {
            p.write("io.max", format!("{major}:{minor} {}", kv.join(" ")));
        }
    }

    if let Some(cpu) = resources.cpu() {
        if let Some(shares) = cpu.shares() {
            if shares != 0 {
                p.write("cpu.weight", cpu_shares_to_weight(shares).to_string());
            }
        }
        if let Some(idle) = cpu.idle() {
            p.write("cpu.idle", idle.to_string());
        }
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let q = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            let period = if period == 0 { 100_000 } else { period };
            p.write("cpu.max", format!("{q} {period}"));
        }
        if let Some(burst) = cpu.burst() {
            p.write("cpu.max.burst", burst.to_string());
        }
        if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
            p.ignored
                .push("cpu.realtimeRuntime/realtimePeriod (no cgroup v2 equivalent)".into());
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            p.write("cpuset.cpus", cpus);
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            p.write("cpuset.mems", mems);
        }
    }

    for h in resources.hugepage_limits().iter().flatten() {
        let size = h.page_size();
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CgroupError::InvalidResource {
                field: "hugepageLimits",
                reason: format!("page size {size:?} is not like \"2MB\" or \"1GB\""),
            });
        }
        let v = if h.limit() < 0 {
            "max".to_string()
        } else {
            h.limit().to_string()
        };
        p.write(format!("hugetlb.{size}.max"), v);
    }

    if let Some(rdma) = resources.rdma() {
        let sorted: BTreeMap<_, _> = rdma.iter().collect();
        for (dev, lim) in sorted {
            if dev.is_empty() || dev.contains(char::is_whitespace) {
                return Err(CgroupError::InvalidResource {
                    field: "rdma",
                    reason: format!("device name {dev:?} is empty or has whitespace"),
                });
            }
            let mut line = dev.clone();
            if let Some(h) = lim.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = lim.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            if line != *dev {
                p.write("rdma.max", line);
            }
        }
    }

    if resources.network().is_some() {
        p.ignored
            .push("network.classID/priorities (net_cls/net_prio are cgroup v1 only)".into());
    }

    if let Some(devs) = resources.devices() {
        p.devices = Some(rules_from_oci(devs)?);
    }

    if let Some(unified) = resources.unified() {
        let sorted: BTreeMap<_, _> = unified.iter().collect();
        for (key, value) in sorted {
            validate_unified_key(key)?;
            if value.contains('\0') {
                return Err(CgroupError::InvalidUnifiedKey {
                    key: key.clone(),
                    reason: "the value contains a NUL byte",
                });
            }
            p.write(key.clone(), value.clone());
        }
    }

    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn writes(json: &str) -> Vec<(String, String)> {
        plan(&res(json))
            .unwrap()
            .writes
            .into_iter()
            .map(|w| (w.file, w.value))
            .collect()
    }

    fn w(f: &str, v: &str) -> (String, String) {
        (f.to_string(), v.to_string())
    }

    #[test]
    fn empty_resources_plan_nothing() {
        let p = plan(&res("{}")).unwrap();
        assert!(p.is_empty());
        assert!(p.controllers.is_empty());
    }

    #[test]
    fn memory_limits() {
        assert_eq!(
            writes(r#"{"memory": {"limit": 33554432, "reservation": 1048576}}"#),
            [w("memory.max", "33554432"), w("memory.low", "1048576")]
        );
        assert_eq!(
            writes(r#"{"memory": {"limit": -1}}"#),
            [w("memory.swap.max", "max"), w("memory.max", "max")]
        );
        assert_eq!(writes(r#"{"memory": {"limit": 0}}"#), []);
        assert!(plan(&res(r#"{"memory": {"limit": -5}}"#)).is_err());
    }

    #[test]
    fn memory_swap_conversion() {
        assert_eq!(
            writes(r#"{"memory": {"limit": 100, "swap": 300}}"#),
            [w("memory.swap.max", "200"), w("memory.max", "100")]
        );
        assert_eq!(
            writes(r#"{"memory": {"limit": 100, "swap": 100}}"#),
            [w("memory.swap.max", "0"), w("memory.max", "100")]
        );
        assert_eq!(
            writes(r#"{"memory": {"limit": 100, "swap": -1}}"#),
            [w("memory.swap.max", "max"), w("memory.max", "100")]
        );
        let e = plan(&res(r#"{"memory": {"swap": 300}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a memory limit"), "{e}");
        let e = plan(&res(r#"{"memory": {"limit": 300, "swap": 100}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("below the memory limit"), "{e}");
    }

    #[test]
    fn cpu_conversions() {
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(1), 1);
        assert_eq!(cpu_shares_to_weight(1 << 30), 10_000);
        assert_eq!(
            writes(
                r#"{"cpu": {"shares": 1024, "quota": 50000, "period": 200000, "cpus": "0", "mems": "0"}}"#
            ),
            [
                w("cpu.weight", "39"),
                w("cpu.max", "50000 200000"),
                w("cpuset.cpus", "0"),
                w("cpuset.mems", "0")
            ]
        );
        assert_eq!(
            writes(r#"{"cpu": {"quota": 20000}}"#),
            [w("cpu.max", "20000 100000")]
        );
        assert_eq!(
            writes(r#"{"cpu": {"quota": -1}}"#),
            [w("cpu.max", "max 100000")]
        );
        assert_eq!(
            writes(r#"{"cpu": {"period": 50000}}"#),
            [w("cpu.max", "max 50000")]
        );
        let p = plan(&res(r#"{"cpu": {"cpus": "0-1"}}"#)).unwrap();
        assert_eq!(p.controllers, BTreeSet::from(["cpuset".to_string()]));
    }

    #[test]
    fn pids_limit() {
        assert_eq!(writes(r#"{"pids": {"limit": 16}}"#), [w("pids.max", "16")]);
        assert_eq!(writes(r#"{"pids": {"limit": 0}}"#), [w("pids.max", "max")]);
        assert_eq!(writes(r#"{"pids": {"limit": -1}}"#), [w("pids.max", "max")]);
    }

    #[test]
    fn block_io() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        let got = writes(
            r#"{"blockIO": {"weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100},
                                            {"major": 253, "minor": 1, "rate": 0}]}}"#,
        );
        assert_eq!(
            got,
            [
                w("io.weight", "default 4950"),
                w("io.weight", "8:0 10000"),
                w("io.max", "8:0 rbps=1048576 wiops=100"),
                w("io.max", "253:1 wiops=max")
            ]
        );
        assert!(plan(&res(r#"{"blockIO": {"weight": 5}}"#)).is_err());
    }

    #[test]
    fn hugetlb_and_rdma() {
        let got = writes(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 1000}}}"#,
        );
        assert_eq!(
            got,
            [
                w("hugetlb.2MB.max", "4194304"),
                w("rdma.max", "mlx5_1 hca_handle=3 hca_object=1000")
            ]
        );
        assert!(plan(&res(
            r#"{"hugepageLimits": [{"pageSize": "../x", "limit": 1}]}"#
        ))
        .is_err());
    }

    #[test]
    fn unified_keys_validated_and_written_last_in_key_order() {
        let p = plan(&res(
            r#"{"pids": {"limit": 5},
                "unified": {"memory.high": "50M", "cgroup.max.descendants": "4", "io.latency": "8:0 target=10"}}"#,
        ))
        .unwrap();
        let files: Vec<_> = p.writes.iter().map(|w| w.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "pids.max",
                "cgroup.max.descendants",
                "io.latency",
                "memory.high"
            ]
        );
        assert_eq!(
            p.controllers,
            BTreeSet::from(["io".to_string(), "memory".to_string(), "pids".to_string()])
        );
        for bad in [
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
            "cgroup.kill",
            "memory.max/../../x",
            "../memory.max",
            "memory..max",
            "nodot",
            ".max",
            "memory.",
            "Memory.max",
        ] {
            let json = format!(r#"{{"unified": {{"{bad}": "1"}}}}"#);
            let err = plan(&res(&json)).unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidUnifiedKey { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn ignored_fields_are_reported() {
        let p = plan(&res(
            r#"{"memory": {"swappiness": 10, "kernel": 1}, "network": {"classID": 1}}"#,
        ))
        .unwrap();
        assert_eq!(p.ignored.len(), 3, "{:?}", p.ignored);
        assert!(p.writes.is_empty());
    }

    #[test]
    fn runc_default_devices_follow_the_users_rules() {
        use crate::cgroups::devices::{evaluate, DeviceKind, ACC_READ, ACC_WRITE};
        let mut p = plan(&res(
            r#"{"devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}]}"#,
        ))
        .unwrap();
        let fuse: oci_spec::runtime::LinuxDevice = serde_json::from_str(
            r#"{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}"#,
        )
        .unwrap();
        p.add_runc_default_devices(&[fuse]);
        let rules = p.devices.unwrap();
        assert_eq!(rules.len(), 2 + 11 + 1);
        let rw = ACC_READ | ACC_WRITE;
        assert!(evaluate(&rules, DeviceKind::Block, 8, 0, ACC_READ));
        assert!(!evaluate(&rules, DeviceKind::Block, 8, 0, rw));
        assert!(evaluate(&rules, DeviceKind::Char, 1, 3, rw), "/dev/null");
        assert!(
            evaluate(&rules, DeviceKind::Char, 10, 229, rw),
            "linux.devices entry"
        );
        assert!(!evaluate(&rules, DeviceKind::Char, 10, 230, rw));

        let mut empty = plan(&res("{}")).unwrap();
        empty.add_runc_default_devices(&[]);
        let rules = empty.devices.unwrap();
        assert!(
            !evaluate(&rules, DeviceKind::Block, 8, 0, ACC_READ),
            "default deny"
        );
        assert!(evaluate(&rules, DeviceKind::Char, 5, 2, rw), "/dev/ptmx");
    }

    #[test]
    fn devices_are_carried_in_order() {
        let p = plan(&res(
            r#"{"devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}"#,
        ))
        .unwrap();
        let d = p.devices.unwrap();
        assert_eq!(d.len(), 2);
        assert!(!d[0].allow && d[1].allow);
        assert!(p.controllers.is_empty(), "devices need no controller");
    }
}
