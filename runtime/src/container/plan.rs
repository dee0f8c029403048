//! The sandbox plan: everything `create` will do, derived from `config.json` as plain data and
//! validated before any process, mount or directory exists.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::capabilities::CapPlan;
use crate::namespaces::{IdMap, Kind, NamespacePlan};
use crate::rlimits::{self, Rlimit};

/// Errors found while reading and validating a bundle.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// config.json is not JSON, or a field has the wrong type or an unknown value.
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        /// The JSON path of the field, e.g. `process.rlimits[0].type` (`.` for the document).
        field: String,
        message: String,
    },
    #[error("{path}: ociVersion {version:?} is not a 1.x version")]
    Version { path: PathBuf, version: String },
    #[error("config.json has no `process`")]
    NoProcess,
    #[error("process.args is empty")]
    NoArgs,
    #[error("process.cwd {0:?} must be an absolute path")]
    RelativeCwd(String),
    #[error(
        "linux.namespaces: joining an existing mount namespace (path {0}) is not supported: \
         reevec builds the container's root with pivot_root in a mount namespace of its own, which \
         would replace the root of every process already in that namespace"
    )]
    JoinedMountNs(String),
    #[error(
        "linux.namespaces: a new mount namespace is required (add {{\"type\":\"mount\"}}): \
         without one, the root filesystem, /proc, masked paths and pivot_root would change the \
         host's own mounts"
    )]
    NoMountNs,
    #[error("hostname is set but the container has no new uts namespace")]
    HostnameWithoutUts,
    #[error("terminal: true needs --console-socket")]
    TerminalWithoutConsole,
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    #[error(transparent)]
    Rlimit(#[from] crate::rlimits::RlimitError),
    #[error("mount plan: {0}")]
    Rootfs(#[from] reeve_rootfs::PlanError),
}

/// The process to exec, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub terminal: bool,
    pub caps: CapPlan,
    pub rlimits: Vec<Rlimit>,
    /// fds 3 .. 3+preserve_fds stay open across exec (`--preserve-fds`); every other fd above
    /// stderr is closed.
    pub preserve_fds: u32,
}

/// The whole sandbox, as plain data.
#[derive(Debug, Clone)]
pub struct SandboxPlan {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub oci_version: String,
    pub annotations: std::collections::HashMap<String, String>,
    pub namespaces: NamespacePlan,
    pub mounts: reeve_rootfs::MountPlan,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub process: ProcessPlan,
    /// `hooks`, validated.
    pub hooks: crate::hooks::Hooks,
    /// `linux.seccomp`, compiled (through the cache) right before clone.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// `linux.resources`, when the spec sets a limit a host without cgroups would drop.
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    /// `linux.resources` as written (device rules included), applied whenever there is a cgroup.
    pub resources_all: Option<oci_spec::runtime::LinuxResources>,
    /// `linux.devices`: nodes created in /dev, and allowed by the device cgroup.
    pub devices: Vec<oci_spec::runtime::LinuxDevice>,
    pub cgroups_path: Option<String>,
    /// `linux.timeOffsets` as (clock, seconds, nanoseconds).
    pub time_offsets: Vec<(String, i64, u32)>,
    /// Join a new session keyring in the init (runc's default; off with `--no-new-keyring`).
    pub new_keyring: bool,
}

/// The default PATH used to look the executable up when the spec's env has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Load `config.json` from a bundle.
pub fn load_spec(bundle: &Path) -> Result<Spec, PlanError> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| PlanError::Read {
        path: path.clone(),
        source,
    })?;
    let spec: Spec = parse_json(&text, &path)?;
    if !spec.version().starts_with("1.") {
        return Err(PlanError::Version {
            path,
            version: spec.version().clone(),
        });
    }
    Ok(spec)
}

/// Parse JSON naming the file, line, column and JSON path of whatever is wrong, and the bad
/// value with what is accepted, as runc and crun do.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, PlanError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        PlanError::Json {
            path: path.to_path_buf(),
            line: inner.line(),
            column: inner.column(),
            field,
            message: readable(&inner),
        }
    })
}

/// serde_json's message without its " at line L column C" tail (the error says where already),
/// and serde's "unknown variant `X`, expected one of `A`, `B`" as `unknown value "X" (expected
/// one of A, B)`.
fn readable(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&tail).unwrap_or(&full);
    for kind in ["variant", "field"] {
        let Some(rest) = msg.strip_prefix(&format!("unknown {kind} `")) else {
            continue;
        };
        let Some((value, expected)) = rest.split_once('`') else {
            continue;
        };
        let expected = expected
            .trim_start_matches(", ")
            .replace('`', "")
            .replace("expected one of ", "expected one of: ");
        let what = if kind == "variant" { "value" } else { "field" };
        return format!("unknown {what} {value:?} ({expected})");
    }
    msg.to_string()
}

fn resources_set(r: &oci_spec::runtime::LinuxResources) -> bool {
    // Device rules that only deny (what `runc spec` writes) take nothing away when no cgroup
    // enforces them: /dev holds only the nodes the mount plan creates and CAP_MKNOD is not
    // granted by default. Every other field is a limit that must not be dropped silently.
    let v = serde_json::to_value(r).unwrap_or_default();
    let deny_only = |v: &serde_json::Value| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .all(|d| d.get("allow").and_then(|x| x.as_bool()) == Some(false))
        })
    };
    v.as_object().is_some_and(|o| {
        o.iter()
            .any(|(k, v)| !(v.is_null() || k == "devices" && deny_only(v)))
    })
}

impl SandboxPlan {
    /// Validate the spec and build the plan. `console` says whether a console socket was given.
    pub fn build(id: &str, bundle: &Path, spec: &Spec, console: bool) -> Result<Self, PlanError> {
        let process = spec.process().as_ref().ok_or(PlanError::NoProcess)?;
        let process_plan = ProcessPlan::from_oci(process)?;
        let hooks = crate::hooks::Hooks::from_spec(spec.hooks().as_ref())?;
        let namespaces = NamespacePlan::from_spec(spec)?;
        if let Some(path) = namespaces.join_path(Kind::Mount) {
            return Err(PlanError::JoinedMountNs(path.display().to_string()));
        }
        if !namespaces.is_new(Kind::Mount) {
            return Err(PlanError::NoMountNs);
        }
        if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !namespaces.has(Kind::Uts) {
            return Err(PlanError::HostnameWithoutUts);
        }
        if process.terminal().unwrap_or(false) && !console {
            return Err(PlanError::TerminalWithoutConsole);
        }
        let mounts = reeve_rootfs::MountPlan::from_spec(spec, bundle)?;
        let linux = spec.linux().as_ref();
        let time_offsets = linux
            .and_then(|l| l.time_offsets().as_ref())
            .map(|m| {
                let mut v: Vec<(String, i64, u32)> = m
                    .iter()
                    .map(|(clock, o)| {
                        (
                            clock.clone(),
                            o.secs().unwrap_or(0),
                            o.nanosecs().unwrap_or(0),
                        )
                    })
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        Ok(SandboxPlan {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            rootfs: mounts.root.clone(),
            oci_version: spec.version().clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            namespaces,
            mounts,
            hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
            domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
            process: process_plan,
            hooks,
            seccomp: linux.and_then(|l| l.seccomp().clone()),
            resources: linux
                .and_then(|l| l.resources().clone())
                .filter(resources_set),
            resources_all: linux.and_then(|l| l.resources().clone()),
            devices: linux.and_then(|l| l.devices().clone()).unwrap_or_default(),
            cgroups_path: linux
                .and_then(|l| l.cgroups_path().as_ref())
                .map(|p| p.to_string_lossy().into_owned()),
            time_offsets,
            new_keyring: false,
        })
    }

    /// `setgroups` is denied in a new user namespace unless the process needs supplementary
    /// groups (CVE-2014-8989).
    pub fn deny_setgroups(&self) -> bool {
        self.process.additional_gids.is_empty()
    }

    pub fn uid_map(&self) -> &[IdMap] {
        &self.namespaces.uid_map
    }
}

impl ProcessPlan {
    /// From an OCI `process` object (the container's, or one given to `exec`).
    pub fn from_oci(process: &oci_spec::runtime::Process) -> Result<Self, PlanError> {
        let args = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(PlanError::NoArgs);
        }
        let cwd = process.cwd().to_string_lossy().into_owned();
        if !cwd.starts_with('/') {
            return Err(PlanError::RelativeCwd(cwd));
        }
        let user = process.user();
        Ok(ProcessPlan {
            args,
            env: process.env().clone().unwrap_or_default(),
            cwd,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            oom_score_adj: process.oom_score_adj(),
            terminal: process.terminal().unwrap_or(false),
            caps: CapPlan::from_spec(process.capabilities().as_ref()),
            rlimits: rlimits::plan(process.rlimits().as_deref().unwrap_or(&[]))?,
            preserve_fds: 0,
        })
    }

    /// The PATH to look the executable up with: the process's env, or the default.
    pub fn search_path(&self) -> &str {
        self.env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = r#""namespaces":[{"type":"mount"},{"type":"pid"},{"type":"uts"}]"#;

    /// A spec with extra `process` fields, extra top-level fields and extra `linux` fields.
    fn spec_with(extra_process: &str, extra: &str, linux: &str) -> Spec {
        let json = format!(
            r#"{{"ociVersion":"1.3.0","root":{{"path":"rootfs"}},
            "process":{{"cwd":"/","user":{{"uid":0,"gid":0}},"args":["sh"]{extra_process}}},
            "linux":{{{NS}{linux}}}{extra}}}"#
        );
        serde_json::from_str(&json).expect("spec")
    }

    fn spec(extra_process: &str, extra: &str) -> Spec {
        spec_with(extra_process, extra, "")
    }

    #[test]
    fn minimal_spec_builds() {
        let p = SandboxPlan::build("c", Path::new("/b"), &spec("", ""), false).expect("plan");
        assert_eq!(p.rootfs, PathBuf::from("/b/rootfs"));
        assert_eq!(p.process.args, vec!["sh"]);
        assert!(p.resources.is_none());
        assert_eq!(p.process.search_path(), DEFAULT_PATH);
        assert!(p.deny_setgroups());
    }

    #[test]
    fn invalid_specs_are_refused_with_reasons() {
        let cases = [
            (spec(r#","terminal":true"#, ""), "console"),
            (
                spec("", r#","hooks":{"prestart":[{"path":"x"}]}"#),
                "prestart hook \"x\": path must be absolute",
            ),
        ];
        for (s, want) in cases {
            let e = SandboxPlan::build("c", Path::new("/b"), &s, false)
                .expect_err("must fail")
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        let rel: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"cwd":"tmp","user":{"uid":0,"gid":0},"args":["sh"]},
            "linux":{"namespaces":[{"type":"mount"}]}}"#,
        )
        .expect("spec");
        assert!(matches!(
            SandboxPlan::build("c", Path::new("/b"), &rel, false),
            Err(PlanError::RelativeCwd(_))
        ));
        let nomnt: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]},
            "linux":{"namespaces":[{"type":"pid"}]}}"#,
        )
        .expect("spec");
        assert!(matches!(
            SandboxPlan::build("c", Path::new("/b"), &nomnt, false),
            Err(PlanError::NoMountNs)
        ));
    }

    #[test]
    fn json_errors_name_the_line_column_field_and_value() {
        let path = Path::new("/b/config.json");
        let bad_enum = r#"{"ociVersion":"1.3.0","process":{"cwd":"/","user":{"uid":0,"gid":0},
"args":["sh"],"rlimits":[{"type":"RLIMIT_BOGUS","hard":1,"soft":1}]}}"#;
        let e = parse_json::<Spec>(bad_enum, path)
            .expect_err("unknown rlimit")
            .to_string();
        assert!(
            e.starts_with(
                "/b/config.json:2:47: process.rlimits[0].type: unknown value \"RLIMIT_BOGUS\" \
                 (expected one of: RLIMIT_"
            ),
            "{e}"
        );
        assert!(e.contains("RLIMIT_NOFILE"), "names what is accepted: {e}");
        let bad_type = r#"{"ociVersion":"1.3.0","process":{"cwd":"/","user":{"uid":"zero","gid":0},"args":["sh"]}}"#;
        let e = parse_json::<Spec>(bad_type, path)
            .expect_err("type")
            .to_string();
        assert!(e.starts_with("/b/config.json:1:"), "{e}");
        assert!(
            e.contains("process.user.uid: invalid type: string \"zero\", expected u32"),
            "{e}"
        );
        let bad_syntax =
            "{\"ociVersion\": \"1.3.0\",\n  \"process\": {\"cwd\": \"/\" \"args\": []}}";
        let e = parse_json::<Spec>(bad_syntax, path)
            .expect_err("syntax")
            .to_string();
        assert!(e.starts_with("/b/config.json:2:"), "{e}");
        assert!(e.contains("expected `,` or `}`"), "{e}");
    }

    #[test]
    fn deny_only_devices_list_is_not_a_resource_request() {
        let s = spec_with(
            "",
            "",
            r#","resources":{"devices":[{"allow":false,"access":"rwm"}]}"#,
        );
        let p = SandboxPlan::build("c", Path::new("/b"), &s, false).expect("plan");
        assert!(p.resources.is_none());
        let s = spec_with("", "", r#","resources":{"pids":{"limit":10}}"#);
        let p = SandboxPlan::build("c", Path::new("/b"), &s, false).expect("plan");
        assert!(p.resources.is_some());
        let s = spec_with(
            "",
            "",
            r#","resources":{"devices":[{"allow":true,"type":"c","major":1,"minor":7,"access":"rwm"}]}"#,
        );
        let p = SandboxPlan::build("c", Path::new("/b"), &s, false).expect("plan");
        assert!(p.resources.is_some(), "an allow rule needs a device cgroup");
    }
}
