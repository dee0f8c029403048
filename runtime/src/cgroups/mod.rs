//! cgroup v2 (unified hierarchy) management. cgroup v1 is never touched.
//!
//! - [`plan()`] turns OCI `linux.resources` into a [`CgroupPlan`]: ordered file writes, the
//!   controllers they need and device rules (plain data, unit-tested without root).
//! - [`Manager`] applies a plan to one cgroup directory and drives it: create, join (via
//!   [`Manager::open_dir`] for `clone3(CLONE_INTO_CGROUP)` or [`Manager::add_pid`]), update,
//!   freeze/thaw, kill, remove, stats.
//! - [`devices`] compiles device rules into a `BPF_PROG_TYPE_CGROUP_DEVICE` program.
//!
//! The cgroup2 root is taken explicitly or found in `/proc/self/mountinfo` (fstype `cgroup2`); it
//! is never guessed from `/sys/fs/cgroup`, which is a tmpfs of v1 hierarchies on hybrid hosts. A
//! cgroup2 hierarchy that lacks a controller the plan needs (a hybrid host's `unified` mount usually
//! offers none or only hugetlb) is refused with [`CgroupError::MissingControllers`], which names
//! the controllers and the fix.
//!
//! Every path the Manager touches is `root` joined with a validated relative path, so a test can
//! point it at a temporary directory holding fake cgroup files.

pub mod devices;
pub mod error;
pub mod plan;
pub mod stats;
pub mod systemd;

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use devices::{DeviceError, DeviceKind, DeviceRule};
pub use error::{CgroupError, MISSING_CONTROLLER_FIX};
pub use plan::{plan, CgroupPlan, CgroupWrite};
pub use stats::Stats;

/// The parent cgroup of containers whose cgroupsPath is relative or empty.
pub const DEFAULT_PARENT: &str = "reeve";

/// Controllers enabled (when the hierarchy offers them) besides the ones a plan needs, so that
/// accounting and `stats()` work for every container, as runc enables all available ones.
const ACCOUNTING_CONTROLLERS: &[&str] = &["cpu", "io", "memory", "pids"];

/// How long freeze/thaw/kill/remove wait for the kernel by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points of every cgroup2 filesystem in mountinfo text, in mount order.
pub fn cgroup2_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let mount_point = left.split_whitespace().nth(4)?;
            (fstype == "cgroup2").then(|| PathBuf::from(unescape_mountinfo(mount_point)))
        })
        .collect()
}

/// The cgroup2 root of this process: `/sys/fs/cgroup` when that is a cgroup2 mount, otherwise the
/// first cgroup2 mount in `/proc/self/mountinfo` (on a hybrid host, `/sys/fs/cgroup/unified`).
pub fn find_cgroup2_root() -> Result<PathBuf, CgroupError> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(|source| CgroupError::ReadMountinfo {
        path: MOUNTINFO.into(),
        source,
    })?;
    let mounts = cgroup2_mounts(&text);
    let preferred = Path::new("/sys/fs/cgroup");
    mounts
        .iter()
        .find(|m| m.as_path() == preferred)
        .or_else(|| mounts.first())
        .cloned()
        .ok_or(CgroupError::NoCgroup2 {
            path: MOUNTINFO.into(),
        })
}

/// True when `/sys/fs/cgroup` itself is a cgroup2 filesystem (a pure cgroup v2 host). False on
/// hybrid and legacy hosts, where `/sys/fs/cgroup` is a tmpfs of v1 hierarchies.
pub fn unified_host() -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// Read-only: checks that the cgroup2 hierarchy at `root` (or found with [`find_cgroup2_root`])
/// offers every controller `plan` needs; [`CgroupError::MissingControllers`] names the missing ones
/// and the fix. Creates nothing.
pub fn check_available(root: Option<&Path>, plan: &CgroupPlan) -> Result<(), CgroupError> {
    let root = match root {
        Some(r) => r.to_path_buf(),
        None => find_cgroup2_root()?,
    };
    Manager::at(&root).check(plan)
}

fn parse_controllers(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Checks one name of a cgroup path: no separators, no `.`/`..`, not empty.
fn valid_component(c: &str) -> bool {
    !c.is_empty() && c != "." && c != ".." && !c.contains('/') && !c.contains('\0')
}

/// The cgroup directory, relative to the cgroup2 root, for OCI `cgroupsPath`:
/// absolute → below the root; relative → below `parent`; empty → `parent/id`.
pub fn resolve_relative(
    cgroups_path: &str,
    parent: &str,
    id: &str,
) -> Result<PathBuf, CgroupError> {
    let invalid = |path: &str, reason| CgroupError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    let split = |p: &str| -> Result<PathBuf, CgroupError> {
        let mut out = PathBuf::new();
        for c in p.split('/').filter(|c| !c.is_empty()) {
            if !valid_component(c) {
                return Err(invalid(p, "'.', '..' and NUL bytes are not allowed"));
            }
            out.push(c);
        }
        Ok(out)
    };
    if !cgroups_path.contains('/') && cgroups_path.matches(':').count() == 2 {
        return Err(invalid(
            cgroups_path,
            "systemd cgroup driver notation (slice:prefix:name) is not supported; give a path",
        ));
    }
    let rel = if cgroups_path.is_empty() {
        if !valid_component(id) {
            return Err(invalid(
                id,
                "the container id is not usable as a cgroup name",
            ));
        }
        split(parent)?.join(id)
    } else if cgroups_path.starts_with('/') {
        split(cgroups_path)?
    } else {
        split(parent)?.join(split(cgroups_path)?)
    };
    if rel.as_os_str().is_empty() {
        return Err(invalid(cgroups_path, "names the cgroup2 root itself"));
    }
    Ok(rel)
}

/// One container's cgroup.
#[derive(Debug, Clone)]
pub struct Manager {
    root: PathBuf,
    relative: PathBuf,
    path: PathBuf,
    timeout: Duration,
}

impl Manager {
    /// `root`: the cgroup2 mount (or a test directory); `None` finds it with
    /// [`find_cgroup2_root`]. `cgroups_path`, `parent` (usually [`DEFAULT_PARENT`]) and `id` are
    /// resolved by [`resolve_relative`]. Touches nothing but mountinfo.
    pub fn new(
        root: Option<&Path>,
        cgroups_path: &str,
        parent: &str,
        id: &str,
    ) -> Result<Self, CgroupError> {
        let root = match root {
            Some(r) => r.to_path_buf(),
            None => find_cgroup2_root()?,
        };
        let relative = resolve_relative(cgroups_path, parent, id)?;
        Ok(Manager {
            path: root.join(&relative),
            root,
            relative,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A Manager for an existing cgroup directory `dir` (e.g. the path kept in the container's
    /// state), for the verbs after `create`: pids, freeze, kill, stats, update, remove. Its root is
    /// `dir` itself (so [`Manager::check`] reads `dir/cgroup.controllers`, the controllers its
    /// parent delegates) and [`Manager::relative_path`] is empty.
    pub fn at(dir: &Path) -> Self {
        Manager {
            root: dir.to_path_buf(),
            relative: PathBuf::new(),
            path: dir.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long freeze/thaw/kill/remove wait for the kernel.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The cgroup2 root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cgroup directory (root + relative path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup's path relative to the root (what `/proc/PID/cgroup` shows after `0::/` when
    /// the root is the mount point); empty for [`Manager::at`].
    pub fn relative_path(&self) -> &Path {
        &self.relative
    }

    /// Whether the cgroup directory exists.
    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    fn read(&self, dir: &Path, file: &str) -> Result<String, CgroupError> {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
    }

    fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
        let path = dir.join(file);
        let err = |source| CgroupError::Write {
            path: path.clone(),
            value: value.to_string(),
            source,
        };
        // no O_CREAT: a missing file (controller not enabled, feature not built) must fail
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(err)?;
        // one write(2) per value: cgroup files parse each write separately
        f.write_all(value.as_bytes()).map_err(err)
    }

    /// Controllers the root offers (its `cgroup.controllers`).
    pub fn available_controllers(&self) -> Result<BTreeSet<String>, CgroupError> {
        Ok(parse_controllers(
            &self.read(&self.root, "cgroup.controllers")?,
        ))
    }

    /// Checks, read-only, that the hierarchy offers every controller `plan` needs.
    pub fn check(&self, plan: &CgroupPlan) -> Result<(), CgroupError> {
        self.check_available(plan).map(|_| ())
    }

    fn check_available(&self, plan: &CgroupPlan) -> Result<BTreeSet<String>, CgroupError> {
        let available = self.available_controllers()?;
        let missing: Vec<String> = plan.controllers.difference(&available).cloned().collect();
        if !missing.is_empty() {
            return Err(CgroupError::MissingControllers {
                root: self.root.clone(),
                missing,
                available: available.into_iter().collect(),
            });
        }
        Ok(available)
    }

    /// mkdir -p of the cgroup, enabling the controllers in every ancestor's subtree_control, from
    /// the root down (the leaf's own subtree_control is left alone: it holds processes).
    fn ensure_tree(&self, plan: &CgroupPlan) -> Result<(), CgroupError> {
        let available = self.check_available(plan)?;
        let mut enable: BTreeSet<String> = plan.controllers.clone();
        enable.extend(
            ACCOUNTING_CONTROLLERS
                .iter()
                .filter(|c| available.contains(**c))
                .map(|c| c.to_string()),
        );
        let mut dir = self.root.clone();
        for component in self.relative.components() {
            let enabled = parse_controllers(&self.read(&dir, "cgroup.subtree_control")?);
            let add: Vec<String> = enable
                .iter()
                .filter(|c| !enabled.contains(*c))
                .map(|c| format!("+{c}"))
                .collect();
            if !add.is_empty() {
                Self::write_file(&dir, "cgroup.subtree_control", &add.join(" "))?;
            }
            dir.push(component);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(CgroupError::Mkdir { path: dir, source }),
            }
        }
        Ok(())
    }

    fn apply(&self, plan: &CgroupPlan) -> Result<(), CgroupError> {
        for w in &plan.writes {
            Self::write_file(&self.path, &w.file, &w.value)?;
        }
        if let Some(rules) = &plan.devices {
            devices::attach(&self.path, rules)?;
        }
        Ok(())
    }

    /// Creates the cgroup (and missing ancestors), enables the needed controllers from the root
    /// down, applies the writes and attaches the device program. Idempotent.
    pub fn create(&self, plan: &CgroupPlan) -> Result<(), CgroupError> {
        self.ensure_tree(plan)?;
        self.apply(plan)
    }

    /// Applies a new plan to the existing cgroup (`reevec update`); device rules, when given,
    /// replace the attached program.
    pub fn update(&self, plan: &CgroupPlan) -> Result<(), CgroupError> {
        if !self.exists() {
            return Err(CgroupError::Open {
                path: self.path.clone(),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        self.ensure_tree(plan)?;
        self.apply(plan)
    }

    /// An `O_PATH | O_DIRECTORY` descriptor of the cgroup, for `clone3`'s `cgroup` field with
    /// `CLONE_INTO_CGROUP`.
    pub fn open_dir(&self) -> Result<OwnedFd, CgroupError> {
        use rustix::fs::{Mode, OFlags};
        rustix::fs::open(
            &self.path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| CgroupError::Open {
            path: self.path.clone(),
            source: e.into(),
        })
    }

    /// Moves a process (all its threads) into the cgroup via `cgroup.procs`.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        Self::write_file(&self.path, "cgroup.procs", &pid.to_string())
    }

    fn read_pids(&self, dir: &Path) -> Result<Vec<i32>, CgroupError> {
        let text = self.read(dir, "cgroup.procs")?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim().parse().map_err(|_| CgroupError::Parse {
                    path: dir.join("cgroup.procs"),
                    content: l.to_string(),
                })
            })
            .collect()
    }

    /// Processes directly in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.read_pids(&self.path)
    }

    /// Processes in the cgroup and every cgroup below it (what `ps` shows).
    pub fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        let mut stack = vec![self.path.clone()];
        while let Some(dir) = stack.pop() {
            out.extend(self.read_pids(&dir)?);
            stack.extend(self.subdirs(&dir)?);
        }
        Ok(out)
    }

    fn subdirs(&self, dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(CgroupError::Read {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    fn events(&self) -> Result<std::collections::BTreeMap<String, u64>, CgroupError> {
        stats::flat_keyed(&self.path, "cgroup.events")?.ok_or_else(|| CgroupError::Read {
            path: self.path.join("cgroup.events"),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        })
    }

    /// Whether `cgroup.events` says `populated 1` (processes here or below).
    pub fn is_populated(&self) -> Result<bool, CgroupError> {
        Ok(self.events()?.get("populated") == Some(&1))
    }

    /// Whether `cgroup.events` says `frozen 1`.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(self.events()?.get("frozen") == Some(&1))
    }

    fn wait_event(
        &self,
        op: &'static str,
        key: &str,
        want: u64,
        what: &'static str,
    ) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            if self.events()?.get(key) == Some(&want) {
                return Ok(());
            }
            if start.elapsed() >= self.timeout {
                return Err(CgroupError::Timeout {
                    op,
                    path: self.path.clone(),
                    want: what,
                    waited: start.elapsed(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Freezes (`true`) or thaws (`false`) every process of the cgroup and waits until
    /// `cgroup.events` reports it.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        Self::write_file(&self.path, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        if frozen {
            self.wait_event("freeze", "frozen", 1, "frozen 1")
        } else {
            self.wait_event("thaw", "frozen", 0, "frozen 0")
        }
    }

    /// SIGKILLs every process in the cgroup and below (`cgroup.kill`, Linux 5.14+; before that,
    /// each pid of `cgroup.procs` until none is left) and waits for `populated 0`.
    pub fn kill(&self) -> Result<(), CgroupError> {
        match Self::write_file(&self.path, "cgroup.kill", "1") {
            Ok(()) => {}
            Err(CgroupError::Write { source, .. })
                if source.kind() == io::ErrorKind::NotFound && self.exists() =>
            {
                self.kill_each()?
            }
            Err(e) => return Err(e),
        }
        self.wait_event("kill", "populated", 0, "populated 0")
    }

    fn kill_each(&self) -> Result<(), CgroupError> {
        let start = Instant::now();
        loop {
            let pids = self.all_pids()?;
            if pids.is_empty() || start.elapsed() >= self.timeout {
                return Ok(());
            }
            for pid in pids {
                // SAFETY: kill(2) with a pid read from cgroup.procs and SIGKILL; no memory is
                // involved. A pid that exited meanwhile gives ESRCH, which is ignored.
                if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        return Err(CgroupError::Kill {
                            pid,
                            path: self.path.clone(),
                            source: e,
                        });
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Removes the cgroup and any cgroups created below it (deepest first), retrying `EBUSY`
    /// (processes still exiting) until the timeout. A cgroup that does not exist is not an error.
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.remove_dir(&self.path, Instant::now())
    }

    fn remove_dir(&self, dir: &Path, start: Instant) -> Result<(), CgroupError> {
        for sub in self.subdirs(dir)? {
            self.remove_dir(&sub, start)?;
        }
        loop {
            match std::fs::remove_dir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < self.timeout =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(source) => {
                    return Err(CgroupError::Rmdir {
                        path: dir.to_path_buf(),
                        source,
                    })
                }
            }
        }
    }

    /// Statistics (runc `events --stats` shape).
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        if !self.exists() {
            return Err(CgroupError::Read {
                path: self.path.clone(),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        stats::read(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_finds_only_cgroup2() {
        assert_eq!(
            cgroup2_mounts(HYBRID_MOUNTINFO),
            [PathBuf::from("/sys/fs/cgroup/unified")]
        );
        let pure =
            "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
                    50 29 0:40 / /tmp/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(
            cgroup2_mounts(pure),
            [PathBuf::from("/sys/fs/cgroup"), PathBuf::from("/tmp/my cg")]
        );
        assert!(cgroup2_mounts("22 1 0:5 / /proc rw - proc proc rw\n").is_empty());
    }

    #[test]
    fn this_host_root_is_a_cgroup2_mount() {
        // read-only: where is cgroup2 on the machine running the tests?
        let root = find_cgroup2_root().unwrap();
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(cgroup2_mounts(&text).contains(&root));
        if !unified_host() {
            assert_ne!(
                root,
                Path::new("/sys/fs/cgroup"),
                "hybrid: never the v1 tmpfs"
            );
        }
    }

    #[test]
    fn paths_resolve_like_the_brief() {
        assert_eq!(
            resolve_relative("", "reeve", "c1").unwrap(),
            Path::new("reeve/c1")
        );
        assert_eq!(
            resolve_relative("/k8s.io/pod1/c1", "reeve", "c1").unwrap(),
            Path::new("k8s.io/pod1/c1")
        );
        assert_eq!(
            resolve_relative("a//b/", "reeve", "x").unwrap(),
            Path::new("reeve/a/b")
        );
        assert_eq!(resolve_relative("a", "", "x").unwrap(), Path::new("a"));
        for bad in ["/", "/a/../b", "../x", "a/./b", "system.slice:docker:abc"] {
            assert!(resolve_relative(bad, "reeve", "x").is_err(), "{bad}");
        }
        assert!(resolve_relative("", "reeve", "..").is_err());
        assert!(resolve_relative("", "reeve", "a/b").is_err());
        assert!(resolve_relative("", "", "").is_err());
    }

    /// A fake cgroup tree: root with controllers, every level with the files the Manager writes.
    fn fake_tree(controllers: &str, levels: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), controllers).unwrap();
        let mut dir = t.path().to_path_buf();
        std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        for l in levels {
            dir.push(l);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        }
        for f in [
            "memory.max",
            "memory.swap.max",
            "pids.max",
            "cpu.max",
            "cgroup.procs",
            "cgroup.freeze",
            "cgroup.kill",
        ] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        std::fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
        t
    }

    fn contents(dir: &Path) -> BTreeMap<String, String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect()
    }

    fn limits_plan() -> CgroupPlan {
        let r = serde_json::from_str(
            r#"{"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 16},
                "cpu": {"quota": 50000, "period": 100000}}"#,
        )
        .unwrap();
        plan(&r).unwrap()
    }

    #[test]
    fn create_writes_files_and_enables_controllers_from_the_root_down() {
        let t = fake_tree("cpuset cpu io memory pids", &["reeve", "c1"]);
        let m = Manager::new(Some(t.path()), "", DEFAULT_PARENT, "c1").unwrap();
        assert_eq!(m.path(), t.path().join("reeve/c1"));
        m.create(&limits_plan()).unwrap();
        let leaf = contents(m.path());
        assert_eq!(leaf["memory.max"], "33554432");
        assert_eq!(leaf["memory.swap.max"], "0");
        assert_eq!(leaf["pids.max"], "16");
        assert_eq!(leaf["cpu.max"], "50000 100000");
        assert_eq!(
            leaf["cgroup.subtree_control"], "",
            "the leaf holds processes"
        );
        // needed + accounting controllers, root and the intermediate level; not cpuset
        let want = "+cpu +io +memory +pids";
        assert_eq!(contents(t.path())["cgroup.subtree_control"], want);
        assert_eq!(
            contents(&t.path().join("reeve"))["cgroup.subtree_control"],
            want
        );

        m.add_pid(4242).unwrap();
        assert_eq!(contents(m.path())["cgroup.procs"], "4242");
        assert_eq!(m.pids().unwrap(), [4242]);
        assert!(!m.is_frozen().unwrap());
        assert!(!m.is_populated().unwrap());
    }

    #[test]
    fn already_enabled_controllers_are_not_rewritten() {
        let t = fake_tree("cpu memory pids", &["c"]);
        std::fs::write(t.path().join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        let m = Manager::new(Some(t.path()), "/c", "", "x").unwrap();
        m.create(&limits_plan()).unwrap();
        assert_eq!(
            contents(t.path())["cgroup.subtree_control"],
            "cpu memory pids\n"
        );
    }

    #[test]
    fn missing_controller_is_named_with_the_fix_and_nothing_is_created() {
        let t = fake_tree("hugetlb", &[]);
        let m = Manager::new(Some(t.path()), "", DEFAULT_PARENT, "c1").unwrap();
        let err = m.create(&limits_plan()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(&err, CgroupError::MissingControllers { missing, .. }
                if missing == &["cpu", "memory", "pids"]),
            "{msg}"
        );
        assert!(msg.contains("cpu, memory, pids"), "{msg}");
        assert!(msg.contains("Delegate=yes"), "{msg}");
        assert!(msg.contains("systemd.unified_cgroup_hierarchy=1"), "{msg}");
        assert!(msg.contains("offers: hugetlb"), "{msg}");
        assert!(!t.path().join("reeve").exists());
    }

    #[test]
    fn this_hosts_cgroup2_is_refused_when_it_lacks_controllers() {
        // read-only check against the real hierarchy: nothing is created
        let m = Manager::new(None, "", DEFAULT_PARENT, "never-created").unwrap();
        let available = m.available_controllers().unwrap();
        let res = m.check(&limits_plan());
        if ["cpu", "memory", "pids"]
            .iter()
            .all(|c| available.contains(*c))
        {
            res.unwrap();
        } else {
            let msg = res.unwrap_err().to_string();
            assert!(
                msg.contains("memory") && msg.contains("Delegate=yes"),
                "{msg}"
            );
        }
        assert!(!m.exists());
    }

    #[test]
    fn write_to_a_missing_file_fails_naming_the_file() {
        let t = fake_tree("memory io", &["c"]);
        let m = Manager::new(Some(t.path()), "/c", "", "x").unwrap();
        let r = serde_json::from_str(r#"{"blockIO": {"weight": 100}}"#).unwrap();
        let msg = m.create(&plan(&r).unwrap()).unwrap_err().to_string();
        assert!(
            msg.contains("io.weight") && msg.contains("default 910"),
            "{msg}"
        );
    }

    #[test]
    fn remove_is_recursive_and_idempotent() {
        let t = tempfile::tempdir().unwrap();
        let m = Manager::new(Some(t.path()), "/a/b", "", "x").unwrap();
        std::fs::create_dir_all(m.path().join("sub/deeper")).unwrap();
        m.remove().unwrap();
        assert!(!m.exists());
        assert!(t.path().join("a").exists(), "parents stay");
        m.remove().unwrap();
    }

    #[test]
    fn freeze_waits_for_the_event_and_times_out() {
        let t = fake_tree("memory", &["c"]);
        let m = Manager::new(Some(t.path()), "/c", "", "x")
            .unwrap()
            .with_timeout(Duration::from_millis(50));
        // the fake cgroup.events never changes to frozen 1
        let err = m.freeze(true).unwrap_err();
        assert!(
            matches!(err, CgroupError::Timeout { op: "freeze", .. }),
            "{err}"
        );
        assert_eq!(contents(m.path())["cgroup.freeze"], "1");
        m.freeze(false).unwrap();
        assert_eq!(contents(m.path())["cgroup.freeze"], "0");
    }
}
