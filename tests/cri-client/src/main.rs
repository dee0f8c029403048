//! reeve-cri: a minimal crictl-like client of the CRI v1 API (`runtime.v1.RuntimeService` and
//! `runtime.v1.ImageService`) over containerd's unix socket, for the engine tests
//! (tests/engines/cri.sh). crictl is not packaged in Debian.
//!
//! Output: ids on stdout for runp/create, JSON for version/inspect/inspectp/ps/pods/images,
//! the command's own stdout/stderr for `exec --sync` (and its exit code as ours).
//! Errors: one line on stderr (`reeve-cri: <method>: rpc error: code = <Code> desc = <message>`),
//! exit status 1 (2 for usage errors, 3 for client-side timeouts).

mod api;
mod client;
mod config;
mod error;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;

use client::Client;
use error::Error;

macro_rules! method {
    (runtime $m:literal) => {
        concat!("/runtime.v1.RuntimeService/", $m)
    };
    (image $m:literal) => {
        concat!("/runtime.v1.ImageService/", $m)
    };
}

#[derive(Parser, Debug)]
#[command(
    name = "reeve-cri",
    version,
    about = "Minimal CRI v1 client (crictl-like) for containerd's unix socket"
)]
struct Cli {
    /// CRI endpoint (unix:///path or a socket path)
    #[arg(
        long,
        short = 'r',
        env = "CONTAINER_RUNTIME_ENDPOINT",
        default_value = "unix:///run/containerd/containerd.sock"
    )]
    runtime_endpoint: String,
    /// Seconds allowed for connecting and for each call (stop and exec add their own timeout)
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runtime name and versions (JSON)
    Version,
    /// Run a pod sandbox from POD.json; prints its id
    Runp {
        /// Runtime handler (containerd `runtimes.<name>`); empty selects the default
        #[arg(long, default_value = "")]
        runtime: String,
        pod_config: PathBuf,
    },
    /// Create a container in a pod from CONTAINER.json and POD.json; prints its id
    Create {
        pod_id: String,
        container_config: PathBuf,
        pod_config: PathBuf,
    },
    /// Start created containers
    Start {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Stop running containers (SIGTERM, then SIGKILL after --timeout seconds)
    Stop {
        /// Grace period in seconds before the runtime kills the container
        #[arg(long, short = 't', default_value_t = 0)]
        timeout: i64,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove containers
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Stop pod sandboxes
    Stopp {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove pod sandboxes
    Rmp {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// List containers (running ones unless --all or --state)
    Ps {
        /// Only containers of this pod sandbox
        #[arg(long, short = 'p')]
        pod: Option<String>,
        /// Containers in any state
        #[arg(long, short = 'a')]
        all: bool,
        /// Only containers in this state (created, running, exited, unknown)
        #[arg(long, short = 's')]
        state: Option<String>,
        /// Print ids only, one per line
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// List pod sandboxes
    Pods {
        /// Print ids only, one per line
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Container status (JSON: state, exit_code, pid, info)
    Inspect {
        /// Print only this field: a top-level key (`state`, `pid`) or a JSON pointer (`/info/info/pid`)
        #[arg(long, short = 'f')]
        field: Option<String>,
        id: String,
    },
    /// Pod sandbox status (JSON: state, namespace options, pid, info)
    Inspectp {
        /// Print only this field: a top-level key (`state`, `pid`) or a JSON pointer
        #[arg(long, short = 'f')]
        field: Option<String>,
        id: String,
    },
    /// Run a command in a container and wait for it (ExecSync); exits with its exit code
    Exec {
        /// Synchronous exec (the only kind supported; accepted for crictl compatibility)
        #[arg(long, short = 's')]
        sync: bool,
        /// Seconds the command may run (0: no limit)
        #[arg(long, default_value_t = 0)]
        timeout: i64,
        id: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// List images (JSON, or ids with -q)
    Images {
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Update a container's resources
    Update {
        id: String,
        /// Memory limit in bytes
        #[arg(long)]
        memory: Option<i64>,
        /// CPU CFS quota (microseconds per period)
        #[arg(long)]
        cpu_quota: Option<i64>,
        /// CPU CFS period (microseconds)
        #[arg(long)]
        cpu_period: Option<i64>,
        /// CPU shares
        #[arg(long)]
        cpu_shares: Option<i64>,
    },
}

fn print_json(v: &Value) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(|e| Error::Output(e.into()))?;
    writeln!(out)?;
    Ok(())
}

/// The whole view as JSON, or one field of it (strings raw, anything else as compact JSON).
fn print_view(v: &Value, field: Option<&str>) -> Result<(), Error> {
    let Some(f) = field else { return print_json(v) };
    match config::field(v, f) {
        Some(Value::String(s)) => print_line(s),
        Some(other) => print_line(&other.to_string()),
        None => Err(Error::Usage(format!("no field {f:?} in the status"))),
    }
}

fn print_line(s: &str) -> Result<(), Error> {
    writeln!(std::io::stdout().lock(), "{s}")?;
    Ok(())
}

fn secs(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

async fn run(cli: Cli) -> Result<i32, Error> {
    let socket = client::socket_path(&cli.runtime_endpoint)?;
    let timeout = Duration::from_secs(cli.timeout.max(1));
    let mut c = Client::connect(socket, timeout).await?;
    let none = Duration::ZERO;
    match cli.cmd {
        Cmd::Version => {
            let r: api::VersionResponse = c
                .call(
                    method!(runtime "Version"),
                    api::VersionRequest {
                        version: "v1".into(),
                    },
                    none,
                )
                .await?;
            print_json(&serde_json::json!({
                "version": r.version,
                "runtime_name": r.runtime_name,
                "runtime_version": r.runtime_version,
                "runtime_api_version": r.runtime_api_version,
            }))?;
        }
        Cmd::Runp {
            runtime,
            pod_config,
        } => {
            let config: api::PodSandboxConfig = config::load(&pod_config)?;
            config::check_pod(&config, &pod_config)?;
            let req = api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: runtime,
            };
            let r: api::RunPodSandboxResponse =
                c.call(method!(runtime "RunPodSandbox"), req, none).await?;
            print_line(&r.pod_sandbox_id)?;
        }
        Cmd::Create {
            pod_id,
            container_config,
            pod_config,
        } => {
            let cc: api::ContainerConfig = config::load(&container_config)?;
            config::check_container(&cc, &container_config)?;
            let pc: api::PodSandboxConfig = config::load(&pod_config)?;
            config::check_pod(&pc, &pod_config)?;
            let req = api::CreateContainerRequest {
                pod_sandbox_id: pod_id,
                config: Some(cc),
                sandbox_config: Some(pc),
            };
            let r: api::CreateContainerResponse = c
                .call(method!(runtime "CreateContainer"), req, none)
                .await?;
            print_line(&r.container_id)?;
        }
        Cmd::Start { ids } => {
            for id in ids {
                let _: api::Empty = c
                    .call(
                        method!(runtime "StartContainer"),
                        api::ContainerIdRequest {
                            container_id: id.clone(),
                        },
                        none,
                    )
                    .await?;
                print_line(&id)?;
            }
        }
        Cmd::Stop {
            timeout: grace,
            ids,
        } => {
            for id in ids {
                let req = api::StopContainerRequest {
                    container_id: id.clone(),
                    timeout: grace,
                };
                let _: api::Empty = c
                    .call(method!(runtime "StopContainer"), req, secs(grace))
                    .await?;
                print_line(&id)?;
            }
        }
        Cmd::Rm { ids } => {
            for id in ids {
                let _: api::Empty = c
                    .call(
                        method!(runtime "RemoveContainer"),
                        api::ContainerIdRequest {
                            container_id: id.clone(),
                        },
                        none,
                    )
                    .await?;
                print_line(&id)?;
            }
        }
        Cmd::Stopp { ids } => {
            for id in ids {
                let req = api::PodSandboxIdRequest {
                    pod_sandbox_id: id.clone(),
                };
                let _: api::Empty = c.call(method!(runtime "StopPodSandbox"), req, none).await?;
                print_line(&id)?;
            }
        }
        Cmd::Rmp { ids } => {
            for id in ids {
                let req = api::PodSandboxIdRequest {
                    pod_sandbox_id: id.clone(),
                };
                let _: api::Empty = c
                    .call(method!(runtime "RemovePodSandbox"), req, none)
                    .await?;
                print_line(&id)?;
            }
        }
        Cmd::Ps {
            pod,
            all,
            state,
            quiet,
        } => {
            let state = match (state, all) {
                (Some(s), _) => Some(config::container_state(&s)?),
                (None, true) => None,
                (None, false) => Some(1),
            };
            let filter = api::ContainerFilter {
                pod_sandbox_id: pod.unwrap_or_default(),
                state: state.map(|state| api::ContainerStateValue { state }),
                ..Default::default()
            };
            let req = api::ListContainersRequest {
                filter: Some(filter),
            };
            let r: api::ListContainersResponse =
                c.call(method!(runtime "ListContainers"), req, none).await?;
            if quiet {
                for ct in &r.containers {
                    print_line(&ct.id)?;
                }
            } else {
                print_json(&Value::Array(
                    r.containers.iter().map(config::container).collect(),
                ))?;
            }
        }
        Cmd::Pods { quiet } => {
            let r: api::ListPodSandboxResponse = c
                .call(
                    method!(runtime "ListPodSandbox"),
                    api::ListPodSandboxRequest::default(),
                    none,
                )
                .await?;
            if quiet {
                for p in &r.items {
                    print_line(&p.id)?;
                }
            } else {
                print_json(&Value::Array(r.items.iter().map(config::sandbox).collect()))?;
            }
        }
        Cmd::Inspect { field, id } => {
            let req = api::ContainerStatusRequest {
                container_id: id,
                verbose: true,
            };
            let r: api::ContainerStatusResponse = c
                .call(method!(runtime "ContainerStatus"), req, none)
                .await?;
            print_view(&config::container_status(&r), field.as_deref())?;
        }
        Cmd::Inspectp { field, id } => {
            let req = api::PodSandboxStatusRequest {
                pod_sandbox_id: id,
                verbose: true,
            };
            let r: api::PodSandboxStatusResponse = c
                .call(method!(runtime "PodSandboxStatus"), req, none)
                .await?;
            print_view(&config::sandbox_status(&r), field.as_deref())?;
        }
        Cmd::Exec {
            sync,
            timeout: limit,
            id,
            cmd,
        } => {
            if !sync {
                return Err(Error::Usage("only `exec --sync` is supported (streaming exec needs the CRI streaming server)".into()));
            }
            let req = api::ExecSyncRequest {
                container_id: id,
                cmd,
                timeout: limit,
            };
            let r: api::ExecSyncResponse = c
                .call(method!(runtime "ExecSync"), req, secs(limit))
                .await?;
            std::io::stdout().lock().write_all(&r.stdout)?;
            std::io::stderr().lock().write_all(&r.stderr)?;
            return Ok(r.exit_code);
        }
        Cmd::Images { quiet } => {
            let r: api::ListImagesResponse = c
                .call(
                    method!(image "ListImages"),
                    api::ListImagesRequest::default(),
                    none,
                )
                .await?;
            if quiet {
                for i in &r.images {
                    print_line(&i.id)?;
                }
            } else {
                print_json(&Value::Array(r.images.iter().map(config::image).collect()))?;
            }
        }
        Cmd::Update {
            id,
            memory,
            cpu_quota,
            cpu_period,
            cpu_shares,
        } => {
            if memory.is_none()
                && cpu_quota.is_none()
                && cpu_period.is_none()
                && cpu_shares.is_none()
            {
                return Err(Error::Usage(
                    "update: nothing to update (--memory, --cpu-quota, --cpu-period, --cpu-shares)"
                        .into(),
                ));
            }
            let linux = api::LinuxContainerResources {
                memory_limit_in_bytes: memory.unwrap_or(0),
                cpu_quota: cpu_quota.unwrap_or(0),
                cpu_period: cpu_period.unwrap_or(0),
                cpu_shares: cpu_shares.unwrap_or(0),
                ..Default::default()
            };
            let req = api::UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(linux),
            };
            let _: api::Empty = c
                .call(method!(runtime "UpdateContainerResources"), req, none)
                .await?;
            print_line(&id)?;
        }
    }
    Ok(0)
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("reeve-cri: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("reeve-cri: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn method_paths() {
        assert_eq!(
            method!(runtime "RunPodSandbox"),
            "/runtime.v1.RuntimeService/RunPodSandbox"
        );
        assert_eq!(
            method!(image "ListImages"),
            "/runtime.v1.ImageService/ListImages"
        );
    }

    #[test]
    fn stop_and_exec_take_their_own_timeout() {
        let cli = Cli::try_parse_from([
            "reeve-cri",
            "--timeout",
            "9",
            "stop",
            "--timeout",
            "2",
            "abc",
        ])
        .expect("parse");
        assert_eq!(cli.timeout, 9);
        assert!(matches!(cli.cmd, Cmd::Stop { timeout: 2, ref ids } if ids == &["abc"]));
        let cli = Cli::try_parse_from([
            "reeve-cri",
            "exec",
            "--sync",
            "--timeout",
            "5",
            "c1",
            "sh",
            "-c",
            "echo hi",
        ])
        .expect("parse");
        assert!(
            matches!(cli.cmd, Cmd::Exec { sync: true, timeout: 5, ref id, ref cmd } if id == "c1" && cmd == &["sh", "-c", "echo hi"])
        );
    }
}
