//! `create`: build the sandbox up to the point where only `start` remains. On any failure the
//! half-made sandbox is torn down: the init is killed (its mounts die with its mount namespace),
//! the cgroup and the state directory are removed.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::plan::{load_spec, PlanError, SandboxPlan};
use super::{cgroup, CgroupMode};
use crate::hooks::Phase;
use crate::namespaces::{self, Kind};
use crate::process::{self, Child, Forked};
use crate::state::{self, Root, State, Status};
use crate::sync::{self, ChildFailure, Message};

/// Errors of `create`.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Namespace(#[from] namespaces::NamespaceError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupSetupError),
    #[error("connect console socket {path}: {source}")]
    Console {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} start socket in {path}: {errno}")]
    StartSocket {
        op: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setgroups([]) before entering the user namespace: {0}")]
    ClearGroups(nix::errno::Errno),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error("{0}")]
    Child(ChildFailure),
    #[error("container init exited before it was ready ({exit}); its stderr has the reason")]
    ChildDied { exit: String },
}

/// What `create` needs besides the bundle.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub cgroups: CgroupMode,
    /// Keep this many fds above stderr (3, 4, …) open in the container (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Give the container a session keyring of its own (runc's default; `--no-new-keyring`
    /// turns it off).
    pub new_keyring: bool,
}

/// A created sandbox: its state, and the init process with its pidfd.
#[derive(Debug)]
pub struct Created {
    pub state: State,
    pub child: Child,
}

/// Undo a partial create unless disarmed.
struct Rollback<'a> {
    root: &'a Root,
    id: String,
    child: Option<(i32, OwnedFd)>,
    cgroup: Option<cgroup::SandboxCgroup>,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some((pid, fd)) = &self.child {
            let _ = process::pidfd_send_signal(fd.as_fd(), *pid, libc::SIGKILL);
            // Reap it (we are its parent) so no zombie outlives us.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(*pid), None);
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.destroy() {
                tracing::error!("rollback of {}: {e}", self.id);
            }
        }
        if let Err(e) = self.root.remove(&self.id) {
            tracing::error!("rollback of {}: {e}", self.id);
        }
    }
}

/// Create the sandbox `opts.id` from its bundle.
pub fn create(root: &Root, opts: &CreateOptions) -> Result<Created, CreateError> {
    state::validate_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(|source| CreateError::Bundle {
        path: opts.bundle.clone(),
        source,
    })?;
    let spec = load_spec(&bundle)?;
    let mut plan = SandboxPlan::build(&opts.id, &bundle, &spec, opts.console_socket.is_some())?;
    plan.process.preserve_fds = opts.preserve_fds;
    plan.new_keyring = opts.new_keyring;
    let seccomp = match &plan.seccomp {
        Some(profile) => Some(crate::seccomp::load_cached(
            profile,
            &root.path.join("seccomp-cache"),
        )?),
        None => None,
    };
    let cg_plan = cgroup::plan(&plan, opts.cgroups.clone())?;
    if cg_plan.is_none() {
        // Without a cgroup of its own the sandbox's cgroup namespace is rooted at ours: a
        // cgroup2 mount would show every other process on the host.
        plan.mounts.hide_cgroupfs();
    }

    let (dir, lock) = root.create(&opts.id)?;
    let mut rb = Rollback {
        root,
        id: opts.id.clone(),
        child: None,
        cgroup: None,
        armed: true,
    };
    let mut st = State {
        oci_version: plan.oci_version.clone(),
        id: opts.id.clone(),
        status: Status::Creating,
        pid: 0,
        bundle: bundle.clone(),
        annotations: plan.annotations.clone(),
        rootfs: plan.rootfs.clone(),
        created: state::now_rfc3339(),
        init_start_time: 0,
        cgroup: None,
        own_pid_ns: plan.namespaces.is_new(Kind::Pid),
        owner: "root".to_string(),
        hooks: plan.hooks.only(&[Phase::Poststart, Phase::Poststop]),
        systemd_unit: None,
    };
    // The container is made from this config.json once: later verbs (exec) read this copy, so
    // a bundle changed or removed after create does not change the container.
    let spec_copy = root.spec_path(&opts.id);
    let spec_bytes = serde_json::to_vec(&spec).map_err(|e| CreateError::Write {
        path: spec_copy.clone(),
        source: e.into(),
    })?;
    std::fs::write(&spec_copy, spec_bytes).map_err(|source| CreateError::Write {
        path: spec_copy.clone(),
        source,
    })?;
    root.save(&st)?;

    let cg = match &cg_plan {
        Some(p) if !p.after_clone() => {
            let cg = cgroup::SandboxCgroup::create(p, &opts.id)?;
            st.cgroup = Some(cg.path().to_path_buf());
            rb.cgroup = Some(cg);
            rb.cgroup.as_ref()
        }
        _ => None,
    };
    let cg_dir = cg.map(|c| c.open_dir()).transpose()?;

    let listener = start_listener(&dir)?;
    let console = match &opts.console_socket {
        Some(p) => Some(
            UnixStream::connect(p).map_err(|source| CreateError::Console {
                path: p.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let joins = plan.namespaces.open_joins()?;
    let runtime_hooks = plan.hooks.has(Phase::Prestart) || plan.hooks.has(Phase::CreateRuntime);
    let ns = &plan.namespaces;
    // The runtime's own hooks must not be born into the container's pid or time namespace.
    let our_children_ns = (runtime_hooks
        && (ns.joins(Kind::Pid) || ns.joins(Kind::Time) || ns.is_new(Kind::Time)))
    .then(namespaces::ChildrenNs::save)
    .transpose()?;
    // pid and time namespaces apply to children: enter them here, before clone.
    joins.enter_for_children()?;
    if plan.namespaces.is_new(Kind::Time) {
        let offsets: Vec<(&str, i64, u32)> = plan
            .time_offsets
            .iter()
            .map(|(c, s, n)| (c.as_str(), *s, *n))
            .collect();
        namespaces::unshare_time(&offsets)?;
    }
    if plan.namespaces.is_new(Kind::User) {
        // The child inherits our supplementary groups and may be unable to drop them once
        // setgroups is denied: drop them now.
        nix::unistd::setgroups(&[]).map_err(CreateError::ClearGroups)?;
    }
    let (parent_end, child_end) = sync::pair()?;

    let child = match process::clone3(
        plan.namespaces.clone_flags(),
        cg_dir.as_ref().map(|fd| fd.as_fd()),
    )? {
        Forked::Child => {
            drop(parent_end);
            // The rollback guard belongs to the parent.
            std::mem::forget(rb);
            super::init::child_main(
                &plan,
                super::init::ChildCtx {
                    sync: &child_end,
                    joins: &joins,
                    start_listener: listener.as_raw_fd(),
                    console: console.as_ref().map(|c| c.as_raw_fd()),
                    seccomp: seccomp.as_ref(),
                    inherited_lock: lock.raw_fd(),
                    state: &st,
                },
            )
        }
        Forked::Parent(child) => child,
    };
    if let Some(ours) = &our_children_ns {
        ours.restore()?;
    }
    drop(child_end);
    drop(listener);
    drop(console);
    rb.child = Some((
        child.pid,
        child.pidfd.try_clone().map_err(|e| CreateError::Write {
            path: PathBuf::from("pidfd"),
            source: e,
        })?,
    ));
    if cg_dir.is_none() {
        if let Some(cg) = &rb.cgroup {
            cg.add_pid(child.pid)?;
        }
    }
    if let Some(p) = cg_plan.as_ref().filter(|p| p.after_clone()) {
        // systemd makes the scope with the init in it (D-Bus only now: zbus runs threads,
        // and the clone is behind us).
        let cg = cgroup::SandboxCgroup::start_scope(p, child.pid)?;
        st.cgroup = Some(cg.path().to_path_buf());
        st.systemd_unit = cg.unit().map(str::to_string);
        rb.cgroup = Some(cg);
        root.save(&st)?;
    }

    if plan.namespaces.is_new(Kind::User) {
        namespaces::write_id_maps(
            child.pid,
            &plan.namespaces.uid_map,
            &plan.namespaces.gid_map,
            plan.deny_setgroups(),
        )?;
        parent_end.send(&Message::Mapped)?;
    }
    if let Some(adj) = plan.process.oom_score_adj {
        let path = PathBuf::from(format!("/proc/{}/oom_score_adj", child.pid));
        std::fs::write(&path, adj.to_string())
            .map_err(|source| CreateError::Write { path, source })?;
    }
    loop {
        match parent_end.recv()? {
            Some(Message::Ready) => break,
            Some(Message::RunHooks) => {
                let mut now = st.clone();
                now.pid = child.pid;
                let state = crate::hooks::state_json(&now.oci());
                plan.hooks.run(Phase::Prestart, &state)?;
                plan.hooks.run(Phase::CreateRuntime, &state)?;
                parent_end.send(&Message::HooksDone)?;
            }
            Some(Message::Failed(f)) => return Err(CreateError::Child(f)),
            Some(other) => {
                return Err(sync::SyncError::Unexpected {
                    peer: "container init",
                    expected: "ready",
                    got: other,
                }
                .into())
            }
            None => {
                let exit = match process::wait_pidfd(&child) {
                    Ok(e) => format!("{e:?}"),
                    Err(e) => e.to_string(),
                };
                rb.child = None;
                return Err(CreateError::ChildDied { exit });
            }
        }
    }
    st.pid = child.pid;
    st.init_start_time = process::stat(child.pid)?.0;
    st.status = Status::Created;
    if let Some(p) = &opts.pid_file {
        write_atomic(p, child.pid.to_string().as_bytes())?;
    }
    root.save(&st)?;
    rb.armed = false;
    Ok(Created { state: st, child })
}

/// The path of a socket in `dir`, short enough for sun_path whatever the length of `dir`.
pub(crate) fn socket_path(dir_fd: &std::fs::File, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir_fd.as_raw_fd()))
}

fn start_listener(dir: &Path) -> Result<OwnedFd, CreateError> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    let err = |op, errno| CreateError::StartSocket {
        op,
        path: dir.to_path_buf(),
        errno,
    };
    let dir_fd = std::fs::File::open(dir).map_err(|source| CreateError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("socket", e))?;
    let addr =
        UnixAddr::new(&socket_path(&dir_fd, state::START_SOCKET)).map_err(|e| err("address", e))?;
    bind(fd.as_raw_fd(), &addr).map_err(|e| err("bind", e))?;
    listen(&fd, Backlog::new(4).map_err(|e| err("listen", e))?).map_err(|e| err("listen", e))?;
    Ok(fd)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), CreateError> {
    let tmp = path.with_extension("reevec-tmp");
    std::fs::write(&tmp, data).map_err(|source| CreateError::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| CreateError::Write {
        path: path.to_path_buf(),
        source,
    })
}
