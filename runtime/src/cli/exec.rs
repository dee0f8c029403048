//! `reevec exec [--process FILE] [--detach] [--pid-file F] [--console-socket S] <id> [CMD...]`:
//! run a process in a running container, as containerd's shim calls it.

use std::path::PathBuf;

use super::{Cli, CliError};
use crate::container::{self, ExecOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
    /// An OCI `process` JSON file (`-` for stdin) describing the whole process.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Return once the process has exec'd instead of waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's host pid to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (with --tty or terminal: true).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Allocate a pty (needs --console-socket).
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment variable KEY=VALUE (repeatable).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// uid[:gid] to run as (numbers).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Extra supplementary group id (repeatable).
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (e.g. CAP_NET_ADMIN) to the bounding, effective and permitted sets,
    /// never the inheritable one (CVE-2022-29162). Repeatable.
    #[arg(long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Keep this many fds beyond stdio (3, 4, …) of the caller open in the process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Accepted; a container that is really paused is refused with the reason (the process
    /// would be frozen before it could exec).
    #[arg(long)]
    pub ignore_paused: bool,
    /// SELinux label: refused when not empty (reevec has no SELinux support).
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// AppArmor profile: refused when not empty (reevec has no AppArmor support).
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Refused: an exec'd process always joins the container's own cgroup.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
}

impl Args {
    /// The flags that describe the process; with --process the file describes it all (--tty
    /// only turns its terminal on).
    fn process_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                v.push(name)
            }
        };
        add(!self.command.is_empty(), "a command");
        add(self.cwd.is_some(), "--cwd");
        add(!self.env.is_empty(), "--env");
        add(self.user.is_some(), "--user");
        add(!self.additional_gids.is_empty(), "--additional-gids");
        add(!self.cap.is_empty(), "--cap");
        add(self.no_new_privs, "--no-new-privs");
        v
    }

    fn refuse_unsupported(&self) -> Result<(), CliError> {
        let set = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
        if set(&self.process_label) {
            return Err(CliError::Unsupported {
                flag: "--process-label",
                why: "reevec has no SELinux support",
            });
        }
        if set(&self.apparmor) {
            return Err(CliError::Unsupported {
                flag: "--apparmor",
                why: "reevec has no AppArmor support",
            });
        }
        if self.cgroup.is_some() {
            return Err(CliError::Unsupported {
                flag: "--cgroup",
                why: "an exec'd process always starts in the container's own cgroup",
            });
        }
        Ok(())
    }
}

fn read_process_file(path: &PathBuf) -> Result<String, CliError> {
    let io = |source| CliError::Io {
        op: "read",
        path: path.clone(),
        source,
    };
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(io)
    } else {
        std::fs::read_to_string(path).map_err(io)
    }
}

/// The process to exec: from --process, or the container's own process with the command, env,
/// cwd, user and capabilities changed as the flags say.
fn process_of(cli: &Cli, args: &Args) -> Result<oci_spec::runtime::Process, CliError> {
    let bad = |msg: String| CliError::Usage(msg);
    if let Some(path) = &args.process {
        let flags = args.process_flags();
        if !flags.is_empty() {
            return Err(bad(format!(
                "--process {} describes the whole process: {} cannot be combined with it",
                path.display(),
                flags.join(", ")
            )));
        }
        let text = read_process_file(path)?;
        let mut p: oci_spec::runtime::Process = serde_json::from_str(&text)
            .map_err(|e| bad(format!("--process {}: {e}", path.display())))?;
        // conmon (Podman) passes --tty next to --process for `exec -t`.
        if args.tty {
            p.set_terminal(Some(true));
        }
        return Ok(p);
    }
    if args.command.is_empty() {
        return Err(bad("exec needs a command or --process".into()));
    }
    let root = cli.state_root();
    let st = root.load(&args.id)?;
    let spec = container::exec::container_spec(&root, &st).map_err(|e| bad(e.to_string()))?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.into());
    }
    if !args.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(args.env.iter().cloned());
        p.set_env(Some(env));
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    let mut user = p.user().clone();
    if let Some(u) = &args.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| bad(format!("--user {u:?}: ids must be numbers (uid[:gid])")))
        };
        user.set_uid(parse(uid)?);
        if let Some(g) = gid {
            user.set_gid(parse(g)?);
        }
    }
    if !args.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&args.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    if !args.cap.is_empty() {
        p.set_capabilities(Some(add_caps(p.capabilities().clone(), &args.cap)?));
    }
    Ok(p)
}

/// `exec --cap`: the capability joins the bounding, effective and permitted sets (and the
/// ambient one only where the spec already has inheritable capabilities), never the
/// inheritable set (CVE-2022-29162), as runc ≥ 1.1.2 does.
fn add_caps(
    caps: Option<oci_spec::runtime::LinuxCapabilities>,
    names: &[String],
) -> Result<oci_spec::runtime::LinuxCapabilities, CliError> {
    let mut caps = caps.unwrap_or_else(|| {
        let mut c = oci_spec::runtime::LinuxCapabilities::default();
        let none = oci_spec::runtime::Capabilities::new();
        c.set_bounding(Some(none.clone()))
            .set_effective(Some(none.clone()))
            .set_permitted(Some(none.clone()))
            .set_inheritable(None)
            .set_ambient(None);
        c
    });
    let ambient_too = caps.inheritable().as_ref().is_some_and(|i| !i.is_empty());
    for name in names {
        let canonical = if name.starts_with("CAP_") {
            name.clone()
        } else {
            format!("CAP_{}", name.to_uppercase())
        };
        // config.json's spelling, CAP_ included: parse it the way the spec's own sets are.
        let cap: oci_spec::runtime::Capability =
            serde_json::from_value(serde_json::Value::String(canonical))
                .map_err(|_| CliError::Usage(format!("--cap {name:?}: unknown capability")))?;
        let with = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        let (b, e, p, a) = (
            with(caps.bounding()),
            with(caps.effective()),
            with(caps.permitted()),
            with(caps.ambient()),
        );
        caps.set_bounding(b).set_effective(e).set_permitted(p);
        if ambient_too {
            caps.set_ambient(a);
        }
    }
    Ok(caps)
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    args.refuse_unsupported()?;
    crate::exe_seal::ensure_sealed()?;
    let process = process_of(cli, args)?;
    if process.terminal().unwrap_or(false) && args.console_socket.is_none() {
        return Err(CliError::Usage("a terminal needs --console-socket".into()));
    }
    let opts = ExecOptions {
        id: args.id.clone(),
        process,
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
    };
    Ok(container::exec(&cli.state_root(), &opts)?)
}
