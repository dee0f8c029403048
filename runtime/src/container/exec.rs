//! `exec`: run another process inside a running container. The process joins every namespace of
//! the container's init that differs from ours, starts inside the container's cgroup
//! (CLONE_INTO_CGROUP), and gets the process settings, capabilities, no_new_privs and seccomp
//! profile it is given, exactly as an init does after `start`.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::plan::{load_spec, PlanError, ProcessPlan};
use crate::namespaces::{self, Kind, NamespacePlan};
use crate::process::{self, Forked};
use crate::state::{self, Root, Status};
use crate::sync::{self, ChildFailure, Message};

/// Errors of `exec`.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("cannot exec in container {id}: it is {status}, not running")]
    NotRunning { id: String, status: Status },
    #[error(
        "--ignore-paused: container {0} is paused; a process started in its frozen cgroup could \
         not exec until `resume`, so reevec refuses instead of hanging"
    )]
    Paused(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Namespace(#[from] namespaces::NamespaceError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("cgroup of container {id}: {source}")]
    Cgroup {
        id: String,
        source: crate::cgroups::CgroupError,
    },
    #[error("connect console socket {path}: {source}")]
    Console {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Child(ChildFailure),
    #[error(transparent)]
    Run(Box<super::RunError>),
}

/// What to exec where.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub id: String,
    pub process: oci_spec::runtime::Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Keep fds 3 .. 3+N of the caller open in the process (`--preserve-fds`).
    pub preserve_fds: u32,
    /// runc's --ignore-paused: accepted, but a paused container is refused with a reason.
    pub ignore_paused: bool,
}

/// The config.json the container was created from: the copy `create` kept in the state
/// directory (the bundle may have changed since), or the bundle's for a container made by an
/// older reevec that kept no copy.
pub fn container_spec(
    root: &Root,
    st: &state::State,
) -> Result<oci_spec::runtime::Spec, PlanError> {
    let dir = root.dir(&st.id);
    if root.spec_path(&st.id).exists() {
        load_spec(&dir)
    } else {
        load_spec(&st.bundle)
    }
}

/// The namespaces of `pid` that differ from ours, as a join plan.
fn namespaces_of(pid: i32) -> NamespacePlan {
    let mut plan = NamespacePlan::default();
    for kind in Kind::JOIN_ORDER {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", kind.proc_name()));
        let ours = Path::new("/proc/self/ns").join(kind.proc_name());
        match (std::fs::read_link(&theirs), std::fs::read_link(&ours)) {
            (Ok(a), Ok(b)) if a != b => plan.join.push((kind, theirs)),
            _ => {}
        }
    }
    plan
}

/// Run `opts.process` in container `opts.id`. Returns its exit status, or 0 with `detach` once
/// it has exec'd.
pub fn exec(root: &Root, opts: &ExecOptions) -> Result<i32, ExecError> {
    let st = root.load(&opts.id)?;
    if st.status == Status::Paused && opts.ignore_paused {
        return Err(ExecError::Paused(opts.id.clone()));
    }
    if st.status != Status::Running {
        return Err(ExecError::NotRunning {
            id: opts.id.clone(),
            status: st.status,
        });
    }
    // Pin the init while we read its namespaces: the pidfd keeps its pid from being reused.
    let init_fd = process::pidfd_open(st.pid)?;
    let ns = namespaces_of(st.pid);
    if !st.init_alive() {
        return Err(ExecError::NotRunning {
            id: opts.id.clone(),
            status: Status::Stopped,
        });
    }
    let spec = container_spec(root, &st)?;
    let mut process = ProcessPlan::from_oci(&opts.process)?;
    process.preserve_fds = opts.preserve_fds;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(crate::seccomp::load_cached(
            profile,
            &root.path.join("seccomp-cache"),
        )?),
        None => None,
    };
    let setgroups = std::fs::read_to_string(format!("/proc/{}/setgroups", st.pid))
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    let cg_dir = match &st.cgroup {
        Some(dir) => Some(
            crate::cgroups::Manager::at(dir)
                .open_dir()
                .map_err(|source| ExecError::Cgroup {
                    id: opts.id.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let joins = ns.open_joins()?;
    joins.enter_for_children()?;
    let console = match &opts.console_socket {
        Some(p) => Some(UnixStream::connect(p).map_err(|source| ExecError::Console {
            path: p.clone(),
            source,
        })?),
        None => None,
    };
    drop(init_fd);
    let (parent_end, child_end) = sync::pair()?;
    let child = match process::clone3(
        nix::sched::CloneFlags::empty(),
        cg_dir.as_ref().map(|fd| fd.as_fd()),
    )? {
        Forked::Child => {
            drop(parent_end);
            super::init::exec_main(
                &process,
                super::init::ExecCtx {
                    sync: &child_end,
                    joins: &joins,
                    joins_user: ns.joins(Kind::User),
                    console: console.as_ref().map(|c| c.as_raw_fd()),
                    seccomp: seccomp.as_ref(),
                    setgroups,
                },
            )
        }
        Forked::Parent(child) => child,
    };
    drop(child_end);
    drop(console);
    if let Some(adj) = process.oom_score_adj {
        let path = PathBuf::from(format!("/proc/{}/oom_score_adj", child.pid));
        // The process may already have exec'd and exited; that is not a failure of exec.
        let _ = std::fs::write(&path, adj.to_string());
    }
    // The sync channel closes on exec (close-on-exec) or carries the reason it failed.
    match parent_end.recv()? {
        None => {}
        Some(Message::Failed(f)) => {
            let _ = process::wait_pidfd(&child);
            return Err(ExecError::Child(f));
        }
        Some(other) => {
            let _ = process::pidfd_send_signal(child.pidfd.as_fd(), child.pid, libc::SIGKILL);
            let _ = process::wait_pidfd(&child);
            return Err(sync::SyncError::Unexpected {
                peer: "exec process",
                expected: "exec",
                got: other,
            }
            .into());
        }
    }
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, child.pid.to_string()).map_err(|source| ExecError::Io {
            op: "write",
            path: p.clone(),
            source,
        })?;
    }
    if opts.detach {
        return Ok(0);
    }
    let exit = super::wait_forwarding(&child).map_err(|e| ExecError::Run(Box::new(e)))?;
    Ok(exit.status())
}
