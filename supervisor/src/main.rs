//! `reeved`: the tenant supervisor and its command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;

use reeve_supervisor::config::{self, Config};
use reeve_supervisor::control::{self, Request};
use reeve_supervisor::name::TenantName;
use reeve_supervisor::supervisor::{Ctx, Paths, TenantStatus};
use reeve_supervisor::{daemon, demo, display, tenant};

/// reeved: runs one sandboxed gateway per tenant and keeps it running.
#[derive(Debug, Parser)]
#[command(name = "reeved", version, about)]
struct Cli {
    /// The configuration file [default: /etc/reeve/reeved.toml]. Control commands dial the
    /// socket in its state_dir.
    #[arg(long, global = true, env = "REEVED_CONFIG")]
    config: Option<PathBuf>,
    /// The state directory (control socket) when no --config is given.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the supervisor (what reeved.service starts).
    Run,
    /// Show every tenant's state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Restarts, state, pid, memory and CPU of every tenant.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// The hostname routing table `<tenant>.<domain> -> address:port` (with `[network]`).
    Routes {
        #[arg(long)]
        json: bool,
    },
    /// Re-read the tenant directory (as SIGHUP does).
    Reload,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Print a tenant's gateway log.
    Logs {
        name: String,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Lines of history.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Parse the configuration and print what reeved would do.
    CheckConfig,
    /// Run the isolation probe in a copy of a live tenant's sandbox and print the verdicts
    /// (exit 1 if anything escaped, 2 if the audit could not run).
    Audit {
        name: String,
        /// The probe binary (default: reeve-probe next to reeved).
        #[arg(long)]
        probe: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Helpers reeved execs for itself (single-threaded, so setns is safe).
    #[command(flatten)]
    Helper(Helper),
    /// Run the whole thing in temporary directories with two demo tenants.
    Demo {
        /// OCI runtime binary (default: reevec next to reeved).
        #[arg(long)]
        runtime: Option<PathBuf>,
        /// Status table refresh interval in seconds.
        #[arg(long, default_value_t = 5)]
        refresh: u64,
        /// Tenants to create.
        #[arg(long, value_delimiter = ',', default_value = "acme,beta")]
        tenants: Vec<String>,
        /// No per-tenant networks (by default the demo gives each tenant an address, inside a
        /// network namespace of its own, when `nft` is installed).
        #[arg(long)]
        no_network: bool,
    },
}

#[derive(Debug, Subcommand)]
enum Helper {
    /// (helper) Bring up lo in the network namespace of PID.
    #[command(hide = true)]
    NetnsLoUp { pid: i32 },
    /// (helper) GET / from 127.0.0.1:PORT in the network namespace of PID.
    #[command(hide = true)]
    NetnsHttpGet { pid: i32, port: u16 },
}

#[derive(Debug, Subcommand)]
enum TenantCmd {
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a tenant's data (and start it when reeved runs).
    Create { name: String },
    /// Stop a tenant and move its data to the tombstones.
    Delete { name: String },
    /// Start a stopped tenant.
    Start { name: String },
    /// Stop a tenant (it stays stopped until started).
    Stop { name: String },
    /// Restart a tenant's gateway.
    Restart { name: String },
}

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
    #[error(transparent)]
    Demo(#[from] Box<demo::DemoError>),
    #[error(transparent)]
    Sup(#[from] reeve_supervisor::supervisor::SupError),
    #[error(transparent)]
    Name(#[from] reeve_supervisor::name::NameError),
    #[error("start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("bad data from reeved: {0}")]
    Data(serde_json::Error),
}

/// println! that ignores a closed stdout (`reeved status | head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// The exec'd helpers: run before any thread exists.
fn helper(h: &Helper) -> ExitCode {
    use reeve_supervisor::netns;
    let r = match h {
        Helper::NetnsLoUp { pid } => netns::enter_net_of(*pid).and_then(|()| netns::loopback_up()),
        Helper::NetnsHttpGet { pid, port } => netns::enter_net_of(*pid)
            .and_then(|()| netns::http_get(*port))
            .map(|body| say!("{body}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reeved: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Helper(h) = &cli.command {
        return helper(h);
    }
    // The demo's network lives in a namespace of its own, entered while single-threaded.
    let mut demo_network = false;
    if let Cmd::Demo { no_network, .. } = &cli.command {
        if !*no_network && nix::unistd::geteuid().is_root() {
            if demo::network_available() {
                match demo::enter_private_netns() {
                    Ok(()) => demo_network = true,
                    Err(e) => eprintln!("reeved demo: {e}; running without networking"),
                }
            } else {
                eprintln!("reeved demo: nft is missing (apt-get install nftables): running without networking");
            }
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REEVED_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("reeved: {}", MainError::Runtime(e));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, demo_network)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("reeved: {e}");
            ExitCode::FAILURE
        }
    }
}

impl Cli {
    /// --config, or the default path.
    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH))
    }
}

/// The control socket, and where its path came from: the state_dir of an explicit --config,
/// then --state-dir, then the default config file's state_dir, then /run/reeve. A config
/// file that is named or exists but does not load is an error, never a silent fallback.
fn socket(cli: &Cli) -> Result<(PathBuf, String), MainError> {
    let from_config = |path: &std::path::Path| -> Result<(PathBuf, String), MainError> {
        let c = Config::load(path)?;
        let used = format!("state_dir {} of {}", c.state_dir.display(), path.display());
        Ok((Paths::new(&c.state_dir).socket, used))
    };
    if let Some(path) = &cli.config {
        return from_config(path);
    }
    if let Some(s) = &cli.state_dir {
        return Ok((Paths::new(s).socket, format!("--state-dir {}", s.display())));
    }
    let default = PathBuf::from(config::DEFAULT_PATH);
    if default.exists() {
        return from_config(&default);
    }
    let dir = std::path::Path::new("/run/reeve");
    Ok((
        Paths::new(dir).socket,
        format!(
            "the default state dir {} ({} does not exist)",
            dir.display(),
            default.display()
        ),
    ))
}

async fn ask(cli: &Cli, req: Request) -> Result<Value, MainError> {
    let (path, used) = socket(cli)?;
    control::request(&path, &req, |l| say!("{l}"))
        .await
        .map_err(|e| match e {
            control::ControlError::NotRunning { path, source, .. } => {
                MainError::Control(control::ControlError::NotRunning {
                    path,
                    source,
                    used: format!(", socket from {used}"),
                })
            }
            e => MainError::Control(e),
        })
}

fn tenants_of(v: &Value) -> Result<Vec<TenantStatus>, MainError> {
    serde_json::from_value(v["tenants"].clone()).map_err(MainError::Data)
}

fn print_json(v: &Value) {
    say!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn run(cli: Cli, demo_network: bool) -> Result<ExitCode, MainError> {
    match &cli.command {
        Cmd::Run => {
            let cfg = Config::load(&cli.config_path())?;
            daemon::run(cfg, daemon::Options::default()).await?;
        }
        Cmd::Status { json } | Cmd::Tenant(TenantCmd::List { json }) => {
            let v = ask(&cli, Request::Status).await?;
            if *json {
                print_json(&v);
            } else {
                say!(
                    "reeved pid {}, runtime {}, limits: {}",
                    v["pid"],
                    v["runtime"].as_str().unwrap_or("?"),
                    v["limits"].as_str().unwrap_or("?")
                );
                say!("{}", v["summary"].as_str().unwrap_or(""));
                say!(
                    "{}",
                    display::status_table(&tenants_of(&v)?, tenant::unix_now()).trim_end()
                );
            }
        }
        Cmd::Stats { json } => {
            let v = ask(&cli, Request::Stats).await?;
            if *json {
                print_json(&v);
            } else {
                say!("{}", display::stats_table(&tenants_of(&v)?).trim_end());
            }
        }
        Cmd::Routes { json } => {
            let v = ask(&cli, Request::Routes).await?;
            if *json {
                print_json(&v);
            } else if v["enabled"] == Value::Bool(false) {
                say!("networking is off ([network] enabled = false): no routes");
            } else {
                let routes: Vec<reeve_supervisor::network::RouteEntry> =
                    serde_json::from_value(v["routes"].clone()).map_err(MainError::Data)?;
                say!(
                    "{}",
                    reeve_supervisor::network::routes_table(&routes).trim_end()
                );
            }
        }
        Cmd::Reload => {
            let v = ask(&cli, Request::Reload).await?;
            say!("added {}, removed {}", v["added"], v["removed"]);
        }
        Cmd::Tenant(t) => {
            let (req, name) = match t {
                TenantCmd::List { .. } => unreachable_list(),
                TenantCmd::Create { name } => (Request::Create { name: name.clone() }, name),
                TenantCmd::Delete { name } => (Request::Delete { name: name.clone() }, name),
                TenantCmd::Start { name } => (Request::Start { name: name.clone() }, name),
                TenantCmd::Stop { name } => (Request::Stop { name: name.clone() }, name),
                TenantCmd::Restart { name } => (Request::Restart { name: name.clone() }, name),
            };
            // Refused here, before anything is sent or touched.
            let n = TenantName::parse(name)?;
            let is_create = matches!(t, TenantCmd::Create { .. });
            match ask(&cli, req).await {
                Ok(v) => print_json(&v),
                Err(MainError::Control(control::ControlError::NotRunning { .. })) if is_create => {
                    // No daemon: create the data; the next reeved start picks it up.
                    let cfg = Config::load(&cli.config_path())?;
                    let dir = reeve_supervisor::supervisor::create_tenant_data(&cfg, &n)?;
                    say!("created {} (reeved is not running)", dir.display());
                }
                Err(e) => return Err(e),
            }
        }
        Cmd::Logs {
            name,
            follow,
            lines,
        } => {
            TenantName::parse(name)?;
            ask(
                &cli,
                Request::Logs {
                    name: name.clone(),
                    follow: *follow,
                    lines: *lines,
                },
            )
            .await?;
        }
        Cmd::CheckConfig => {
            let cfg = Config::load(&cli.config_path())?;
            let ctx = Ctx::new(cfg, false)?;
            say!(
                "runtime: {} {}",
                ctx.oci.binary.display(),
                ctx.oci.global.join(" ")
            );
            say!(
                "limits: {}",
                if ctx.limits_on {
                    ctx.limits_note.clone()
                } else {
                    format!("NOT ENFORCED ({})", ctx.limits_note)
                }
            );
            let n = &ctx.cfg.network;
            if n.enabled {
                say!(
                    "network: bridge {} subnet {} gateway port {} domain {} services {:?} egress NAT {}",
                    n.bridge,
                    n.subnet,
                    n.gateway_port,
                    n.domain,
                    n.services,
                    if n.egress_nat { "on" } else { "off" }
                );
                for (what, f) in [("traefik", &n.traefik_file), ("caddy", &n.caddy_file)] {
                    if let Some(f) = f {
                        say!("routes ({what}): {}", f.display());
                    }
                }
            } else {
                say!("network: off");
            }
            let (names, bad) = tenant::list(&ctx.cfg.data_root)
                .map_err(reeve_supervisor::supervisor::SupError::from)?;
            for n in names {
                say!("tenant {n}: limits {:?}", ctx.cfg.limits_for(&n));
            }
            for (n, e) in bad {
                say!("ignored {n:?}: {e}");
            }
        }
        Cmd::Helper(h) => return Ok(helper(h)),
        Cmd::Audit { name, probe, json } => {
            let code =
                reeve_supervisor::audit::main(&cli.config_path(), name, probe.clone(), *json);
            return Ok(ExitCode::from(code));
        }
        Cmd::Demo {
            runtime,
            refresh,
            tenants,
            ..
        } => {
            let tenants = tenants
                .iter()
                .map(|t| TenantName::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            demo::run(demo::DemoOptions {
                runtime: runtime.clone(),
                tenants,
                refresh: Duration::from_secs((*refresh).max(1)),
                network: demo_network,
            })
            .await
            .map_err(Box::new)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn unreachable_list() -> (Request, &'static String) {
    // `tenant list` is answered with `status` above.
    static EMPTY: String = String::new();
    (Request::Status, &EMPTY)
}
