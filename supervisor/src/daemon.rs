//! The main loop of `reeved run` (and of `reeved demo`): set up, start every tenant, tell
//! systemd, then serve signals, timers and the control socket until SIGTERM/SIGINT, and stop
//! everything on the way out, except when the SIGTERM is systemd restarting reeved's unit
//! (`systemctl restart`): then the gateways stay, for the next reeved to adopt.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::control::{self, ControlError};
use crate::host;
use crate::notify::{self, Notifier};
use crate::sdjob::{self, TermIntent};
use crate::supervisor::{Ctx, SupError, Supervisor};
use crate::tenant;

/// Errors of the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Sup(#[from] SupError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Host(#[from] host::HostError),
    #[error("install handler of {0}: {1}")]
    Signal(&'static str, std::io::Error),
}

/// How the loop presents itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print the status table this often (the demo).
    pub table_every: Option<Duration>,
    /// The demo's proxy (Caddy): the table shows `curl -H 'Host: <tenant>.<domain>'` through it.
    pub proxy: Option<std::net::SocketAddr>,
}

/// The loud warning of no-limits mode.
pub fn no_limits_banner(why: &str) -> String {
    let bar = "!".repeat(78);
    format!(
        "{bar}\n!!! NO RESOURCE LIMITS: tenants run WITHOUT memory/pids/cpu limits.\n!!! Reason: {why}\n\
         !!! (allow_no_limits = true; on a pure cgroup v2 host with Delegate=yes limits apply.)\n{bar}"
    )
}

/// How long reeved waits for systemd to say which job sent the SIGTERM.
pub const JOB_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Run until SIGTERM or SIGINT.
pub async fn run(cfg: Config, opts: Options) -> Result<(), DaemonError> {
    host::become_subreaper()?;
    let ctx = Ctx::new(cfg, true)?;
    // Gateways may outlive a restart of our unit only when their cgroups are not inside it (a
    // delegated unit cgroup with tenants in it is an inner node: systemd cannot put the next
    // reeved there).
    let unit = host::own_service().filter(|_| {
        ctx.tenant_cgroups
            .as_ref()
            .is_none_or(|c| c.outside_own_cgroup())
    });
    if !ctx.limits_on {
        eprintln!("{}", no_limits_banner(&ctx.limits_note));
        tracing::warn!("running WITHOUT resource limits: {}", ctx.limits_note);
    }
    ctx.paths.create()?;
    tenant::ensure_data_root(&ctx.cfg.data_root).map_err(SupError::from)?;
    purge(&ctx);
    let listener = control::bind(&ctx.paths.socket).await?;
    let notifier = Notifier::from_env();
    let sup = Arc::new(Supervisor::new(ctx));

    let mut term =
        signal(SignalKind::terminate()).map_err(|e| DaemonError::Signal("SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| DaemonError::Signal("SIGINT", e))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| DaemonError::Signal("SIGHUP", e))?;

    let server = tokio::spawn(control::serve(listener, sup.clone()));
    let (added, _) = sup.reload().await?;
    let summary = sup.summary().await;
    tracing::info!("reeved ready: {} tenants started; {summary}", added.len());
    if let Err(e) = notifier.ready(&summary) {
        tracing::warn!("{e}");
    }
    if opts.table_every.is_some() {
        print_table(&sup, opts.proxy).await;
    }

    let forever = Duration::from_secs(365 * 86_400);
    let wd_period = notify::watchdog_period_from_env();
    let mut watchdog = tokio::time::interval(wd_period.unwrap_or(forever));
    let mut status_tick = tokio::time::interval(Duration::from_secs(2));
    let mut rotate_tick = tokio::time::interval(Duration::from_secs(5));
    let mut purge_tick = tokio::time::interval(Duration::from_secs(86_400));
    let mut table_tick = tokio::time::interval(opts.table_every.unwrap_or(forever));
    for t in [
        &mut watchdog,
        &mut status_tick,
        &mut rotate_tick,
        &mut purge_tick,
        &mut table_tick,
    ] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t.reset();
    }
    let mut last_summary = summary;
    loop {
        tokio::select! {
            _ = term.recv() => {
                if sdjob::term_intent(unit.clone(), JOB_QUERY_TIMEOUT).await == TermIntent::Restart {
                    return leave_for_restart(&sup, &notifier, server).await;
                }
                tracing::info!("SIGTERM: stopping");
                break;
            }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                match sup.reload().await {
                    Ok((a, r)) => tracing::info!("reload: added {a:?}, removed {r:?}"),
                    Err(e) => tracing::error!("reload: {e}"),
                }
            }
            _ = watchdog.tick(), if wd_period.is_some() => {
                if let Err(e) = notifier.watchdog() { tracing::warn!("{e}"); }
            }
            _ = status_tick.tick() => {
                let s = sup.summary().await;
                if s != last_summary {
                    if let Err(e) = notifier.status(&s) { tracing::warn!("{e}"); }
                    last_summary = s;
                }
            }
            _ = rotate_tick.tick() => sup.rotate_logs().await,
            _ = purge_tick.tick() => purge(&sup.ctx),
            _ = table_tick.tick(), if opts.table_every.is_some() => print_table(&sup, opts.proxy).await,
        }
    }
    if let Err(e) = notifier.stopping() {
        tracing::warn!("{e}");
    }
    server.abort();
    sup.shutdown().await;
    sup.net_shutdown().await;
    let ctx = sup.ctx.clone();
    let left = tokio::task::spawn_blocking(move || ctx.oci.list())
        .await
        .map_err(|e| SupError::Join(e.to_string()))?;
    let oci_empty = match left {
        Ok(l) if l.is_empty() => true,
        Ok(l) => {
            let ids: Vec<&str> = l.iter().map(|s| s.id.as_str()).collect();
            tracing::error!("sandboxes left after shutdown: {ids:?}");
            false
        }
        Err(e) => {
            tracing::error!("list sandboxes after shutdown: {e}");
            false
        }
    };
    sup.ctx.paths.clean(oci_empty);
    tracing::info!("reeved stopped: every gateway stopped and deleted");
    Ok(())
}

/// `systemctl restart`: exit with every gateway running and its state (runtime state, bundles,
/// pid files, networks) on disk; the next reeved adopts them.
async fn leave_for_restart(
    sup: &Supervisor,
    notifier: &Notifier,
    server: tokio::task::JoinHandle<()>,
) -> Result<(), DaemonError> {
    let running = sup
        .status(false)
        .await
        .iter()
        .filter(|t| t.pid.is_some())
        .count();
    tracing::info!(
        "SIGTERM of a systemd restart: leaving {running} gateways running for the next reeved"
    );
    if let Err(e) = notifier.stopping() {
        tracing::warn!("{e}");
    }
    server.abort();
    Ok(())
}

fn purge(ctx: &Ctx) {
    match tenant::purge_tombstones(
        &ctx.cfg.data_root,
        ctx.cfg.tombstone_retention_days,
        tenant::unix_now(),
    ) {
        Ok(removed) => {
            for p in removed {
                tracing::info!("purged tombstone {}", p.display());
            }
        }
        Err(e) => tracing::error!("purge tombstones: {e}"),
    }
}

/// What the demo shows of hostname routing: one request per route, through the proxy when
/// there is one, else straight to the tenant's address.
async fn net_lines(
    routes: Vec<crate::network::RouteEntry>,
    proxy: Option<std::net::SocketAddr>,
) -> String {
    tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        let mut hosts: Vec<String> = routes.iter().map(|r| r.host.clone()).collect();
        if proxy.is_some() {
            if let Some(r) = routes.first() {
                // A name no tenant has: the proxy must not send it anywhere.
                let domain = r.host.split_once('.').map_or("", |(_, d)| d);
                hosts.push(format!("nobody.{domain}"));
            }
        }
        for host in hosts {
            let (target, url) = match (proxy, routes.iter().find(|r| r.host == host)) {
                (Some(p), _) => (p, format!("http://{p}/")),
                (None, Some(r)) => (
                    std::net::SocketAddr::V4(r.upstream),
                    format!("http://{}/", r.upstream),
                ),
                (None, None) => continue,
            };
            let known = routes.iter().any(|r| r.host == host);
            let mut r = crate::netns::http_get_host(target, &host);
            // The proxy reloads its configuration a moment after a route appears.
            for _ in 0..6 {
                if !(known && matches!(r, Ok((404, _)))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
                r = crate::netns::http_get_host(target, &host);
            }
            let got = match r {
                Ok((code, body)) => format!("{code} {}", body.lines().next().unwrap_or("")),
                Err(e) => format!("no answer ({e})"),
            };
            out.push_str(&format!("  curl -H 'Host: {host}' {url}  -> {got}\n"));
        }
        out
    })
    .await
    .unwrap_or_default()
}

async fn print_table(sup: &Supervisor, proxy: Option<std::net::SocketAddr>) {
    let ts = sup.status(false).await;
    let now = tenant::unix_now();
    let mut out = String::new();
    out.push_str(&format!(
        "\n== reeved: {} ==\n",
        crate::supervisor::summary(&ts, &sup.ctx)
    ));
    out.push_str(&crate::display::status_table(&ts, now));
    if let Some(routes) = sup.routes() {
        out.push_str(&net_lines(routes, proxy).await);
    }
    let pids: Vec<(String, i32)> = ts
        .iter()
        .filter_map(|t| t.pid.map(|p| (t.name.clone(), p)))
        .collect();
    let http = tokio::task::spawn_blocking(move || {
        pids.into_iter()
            .map(|(n, p)| {
                let r = crate::netns::run_helper(&[
                    "netns-http-get".into(),
                    p.to_string(),
                    "8080".into(),
                ]);
                (n, r.unwrap_or_else(|e| format!("no answer ({e})")))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (n, body) in http {
        out.push_str(&format!(
            "  {n} http://127.0.0.1:8080 in its netns> {body}\n"
        ));
    }
    for t in &ts {
        if let Ok(n) = crate::name::TenantName::parse(&t.name) {
            if let Ok(last) = crate::logs::tail(&sup.ctx.paths.log(&n), 1) {
                if let Some(l) = last.first() {
                    out.push_str(&format!("  {}> {l}\n", t.name));
                }
            }
        }
    }
    println!("{out}");
}
