//! The `reevec` command line: runc-compatible verbs, one file each. Flags may come before or after
//! the container id, as runc accepts them; global flags are the ones containerd passes.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use crate::container::CgroupMode;

/// reevec: reeve's OCI runtime. Builds a sandbox from namespaces, cgroup v2, pivot_root,
/// capabilities, no_new_privs, rlimits and seccomp, and runs one process in it.
#[derive(Debug, Parser)]
#[command(name = "reevec", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Directory holding the state of every container.
    #[arg(
        long,
        global = true,
        default_value = "/run/reevec",
        env = "REEVEC_ROOT"
    )]
    pub root: PathBuf,
    /// Write log lines to FILE instead of stderr (containerd reads the last error from it).
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of log lines: text or json.
    #[arg(long, global = true, default_value = "text", value_name = "text|json")]
    pub log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver: each container's cgroup is a transient scope that systemd
    /// creates over D-Bus (cgroupsPath slice:prefix:name, default system.slice:reevec:<id>).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// How to handle cgroups: `fs` (cgroup v2, the default) or `disabled` (run WITHOUT any
    /// resource limits; says so loudly when the spec asks for limits).
    #[arg(long, global = true, default_value = "fs", value_name = "fs|disabled")]
    pub cgroup_manager: String,
    /// The cgroup2 mount to use instead of the one found in /proc/self/mountinfo.
    #[arg(long, global = true, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// Path of criu, accepted for runc compatibility: reevec has no checkpoint/restore, so it
    /// is never run (`checkpoint` and `restore` fail).
    #[arg(long, global = true, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// runc's rootless mode, before the verb as runc takes it: `auto` and `false` are
    /// accepted (reevec runs as root and uses a user namespace when config.json asks for one);
    /// `true` is refused. (`spec --rootless` is the spec verb's own flag.)
    #[arg(long, value_name = "auto|true|false")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; it waits for `start`.
    Create(create::Args),
    /// Start a created container: its process execs.
    Start(start::Args),
    /// Print the OCI state of a container as JSON.
    State(state::Args),
    /// Send a signal (default SIGTERM) to a container's init, or with --all to all its processes.
    Kill(kill::Args),
    /// Delete a stopped container (with --force, kill it first).
    Delete(delete::Args),
    /// Run another process inside a running container.
    Exec(exec::Args),
    /// Create, start and wait for a container; exit with its process's status.
    Run(run::Args),
    /// Write a default config.json (with reeve's default seccomp profile) into a bundle.
    Spec(spec::Args),
    /// List containers.
    List(list::Args),
    /// List the processes of a container.
    Ps(ps::Args),
    /// Print what this runtime supports (OCI features JSON).
    Features(features::Args),
    /// Freeze every process of a container (cgroup.freeze); state shows paused.
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(resume::Args),
    /// Change a container's resource limits (flags, or LinuxResources JSON with --resources).
    Update(update::Args),
    /// Print a container's statistics (--stats) or stream stats and OOM events as JSON lines.
    Events(events::Args),
    /// Not supported: reevec has no CRIU integration (fails with a clear error).
    Checkpoint(checkpoint::Args),
    /// Not supported: reevec has no CRIU integration (fails with a clear error).
    Restore(checkpoint::Args),
}

/// Errors of the CLI layer.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Create(#[from] crate::container::CreateError),
    #[error(transparent)]
    Start(#[from] crate::container::StartError),
    #[error(transparent)]
    Signal(#[from] crate::container::SignalError),
    #[error(transparent)]
    Run(#[from] crate::container::RunError),
    #[error(transparent)]
    Exec(#[from] crate::container::ExecError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error(transparent)]
    Seal(#[from] crate::exe_seal::SealError),
    #[error(transparent)]
    Log(#[from] crate::logging::LogError),
    #[error(transparent)]
    Resources(#[from] crate::container::ResourcesError),
    #[error(transparent)]
    UpdateArgs(#[from] update::UpdateArgsError),
    #[error(transparent)]
    Interval(#[from] events::IntervalError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("{flag} is not supported: {why}")]
    Unsupported {
        flag: &'static str,
        why: &'static str,
    },
    #[error("unknown --cgroup-manager {0:?}: use fs or disabled")]
    CgroupManager(String),
    #[error("unknown --format {0:?}: use table or json")]
    Format(String),
}

impl Cli {
    pub fn state_root(&self) -> crate::state::Root {
        crate::state::Root::new(&self.root)
    }

    /// Refuse global flags whose meaning reevec cannot honour.
    fn refuse_unsupported(&self) -> Result<(), CliError> {
        match self.rootless.as_deref() {
            None | Some("auto") | Some("false") => Ok(()),
            Some("true") => Err(CliError::Unsupported {
                flag: "--rootless=true",
                why: "reevec runs as root; an unprivileged sandbox is a user namespace in config.json",
            }),
            Some(other) => Err(CliError::Usage(format!(
                "--rootless {other:?}: use auto, true or false"
            ))),
        }
    }

    pub fn cgroup_mode(&self) -> Result<CgroupMode, CliError> {
        if self.systemd_cgroup {
            if self.cgroup_manager == "disabled" {
                return Err(CliError::Usage(
                    "--systemd-cgroup and --cgroup-manager=disabled contradict each other".into(),
                ));
            }
            return Ok(CgroupMode::Systemd);
        }
        match (self.cgroup_manager.as_str(), &self.cgroup_root) {
            ("disabled", _) => Ok(CgroupMode::Disabled),
            ("fs", Some(root)) => Ok(CgroupMode::Root(root.clone())),
            ("fs", None) => Ok(CgroupMode::Enabled),
            (other, _) => Err(CliError::CgroupManager(other.to_string())),
        }
    }
}

/// Output format of list-like verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

impl std::str::FromStr for Format {
    type Err = CliError;
    fn from_str(s: &str) -> Result<Self, CliError> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            other => Err(CliError::Format(other.to_string())),
        }
    }
}

/// Print a line to stdout, turning a closed pipe into an error rather than a panic.
pub fn out(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    writeln!(o, "{text}").map_err(CliError::Stdout)
}

/// The verbs that run code inside a new sandbox and so must run from a sealed copy.
const SEALED_VERBS: [&str; 3] = ["create", "run", "exec"];

/// Whether the command line may name a verb that needs the sealed binary. A cheap look at the
/// raw arguments, before clap: a false positive (an id or a flag value spelled like a verb) only
/// seals a process that did not need it; a verb missed here is still sealed by its handler.
fn may_need_sealed_binary<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> bool {
    args.into_iter()
        .skip(1)
        .any(|a| SEALED_VERBS.iter().any(|v| a.as_os_str() == *v))
}

/// Run the CLI; returns the process exit code.
pub fn main() -> i32 {
    // Re-execute from the sealed copy before parsing anything: the unsealed process's work
    // (clap, logging) would be thrown away by the re-exec. Errors are not reported here: the
    // verb's own `ensure_sealed` tries again once logging (maybe to --log) is set up.
    if may_need_sealed_binary(std::env::args_os()) {
        let _ = crate::exe_seal::ensure_sealed();
    }
    let cli = Cli::parse();
    let format = match cli.log_format.parse::<crate::logging::Format>() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("reevec: {e}");
            return 1;
        }
    };
    if let Err(e) = crate::logging::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("reevec: {e}");
        return 1;
    }
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            if cli.log.is_some() {
                // The log file's last error line is what containerd shows its user.
                tracing::error!("{e}");
            }
            // People read stderr: the plain message, once.
            eprintln!("reevec: {e}");
            1
        }
    }
}

fn dispatch(cli: &Cli) -> Result<i32, CliError> {
    cli.refuse_unsupported()?;
    match &cli.command {
        Command::Create(a) => create::run(cli, a),
        Command::Start(a) => start::run(cli, a),
        Command::State(a) => state::run(cli, a),
        Command::Kill(a) => kill::run(cli, a),
        Command::Delete(a) => delete::run(cli, a),
        Command::Exec(a) => exec::run(cli, a),
        Command::Run(a) => run::run(cli, a),
        Command::Spec(a) => spec::run(cli, a),
        Command::List(a) => list::run(cli, a),
        Command::Ps(a) => ps::run(cli, a),
        Command::Features(a) => features::run(cli, a),
        Command::Pause(a) => pause::run(cli, a),
        Command::Resume(a) => resume::run(cli, a),
        Command::Update(a) => update::run(cli, a),
        Command::Events(a) => events::run(cli, a),
        Command::Checkpoint(_) => Err(checkpoint::unsupported("checkpoint")),
        Command::Restore(_) => Err(checkpoint::unsupported("restore")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<std::ffi::OsString> {
        v.iter().map(std::ffi::OsString::from).collect()
    }

    #[test]
    fn sealed_verbs_are_spotted_before_parsing() {
        for v in [
            &["reevec", "run", "c1"][..],
            &["reevec", "--root", "/r", "create", "--bundle", "b", "c1"],
            &["reevec", "--log", "l", "exec", "c1", "sh"],
        ] {
            assert!(may_need_sealed_binary(args(v)), "{v:?}");
        }
        for v in [
            &["reevec", "state", "c1"][..],
            &["reevec", "start", "c1"],
            &["reevec", "delete", "--force", "runner"],
            &["run"],
        ] {
            assert!(!may_need_sealed_binary(args(v)), "{v:?}");
        }
        // Every verb the check names is one clap knows, and needs the seal in its handler.
        let cmd = <Cli as clap::CommandFactory>::command();
        for v in SEALED_VERBS {
            assert!(cmd.find_subcommand(v).is_some(), "{v} is not a verb");
        }
    }
}
