//! What systemd is doing to reeved's own unit when it sends SIGTERM: systemd signals the same
//! way for `systemctl stop` and `systemctl restart`, so reeved asks the manager (D-Bus,
//! `org.freedesktop.systemd1.Manager.ListJobs`) which job runs for its unit. A restart keeps the
//! gateways for the next reeved to adopt; anything else (stop, shutdown, no answer) stops them.

use std::time::Duration;

/// What a SIGTERM means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermIntent {
    /// systemd restarts our unit: leave the gateways running, with their state on disk.
    Restart,
    /// Anything else: stop every gateway.
    Stop,
}

/// Errors of asking systemd.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("systemd D-Bus (system bus): {0}")]
    Bus(#[from] zbus::Error),
    #[error("systemd did not answer ListJobs within {0:?}")]
    Timeout(Duration),
    #[error("ListJobs thread: {0}")]
    Join(String),
}

/// One row of `ListJobs`: (id, unit, type, state, job path, unit path).
pub type JobRow = (
    u32,
    String,
    String,
    String,
    zbus::zvariant::OwnedObjectPath,
    zbus::zvariant::OwnedObjectPath,
);

/// Job types that start the unit again after stopping it. (systemd collapses `try-restart` and
/// `reload-or-restart` into `restart` when it installs the job; the others are listed in case a
/// version shows them as asked.)
pub const RESTART_JOBS: &[&str] = &[
    "restart",
    "try-restart",
    "reload-or-restart",
    "reload-or-try-restart",
];

/// The intent of the jobs systemd runs for `unit`: restart if one of them is a restart.
pub fn intent_of(jobs: &[(String, String)], unit: &str) -> TermIntent {
    if jobs
        .iter()
        .any(|(u, t)| u == unit && RESTART_JOBS.contains(&t.as_str()))
    {
        TermIntent::Restart
    } else {
        TermIntent::Stop
    }
}

/// `ListJobs` as (unit, type) pairs (blocking; the connection times out after `timeout`).
pub fn list_jobs(timeout: Duration) -> Result<Vec<(String, String)>, JobError> {
    let conn = zbus::blocking::connection::Builder::system()?
        .method_timeout(timeout)
        .build()?;
    let proxy = zbus::blocking::Proxy::new(
        &conn,
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
    )?;
    let rows: Vec<JobRow> = proxy.call("ListJobs", &())?;
    Ok(rows.into_iter().map(|(_, u, t, ..)| (u, t)).collect())
}

/// What the SIGTERM reeved got means, for its unit `unit` (None: not a systemd service, so a
/// SIGTERM is a stop). Runs the D-Bus query on a blocking thread, never in the async runtime,
/// and gives up after `timeout`: no answer means stop.
pub async fn term_intent(unit: Option<String>, timeout: Duration) -> TermIntent {
    let Some(unit) = unit else {
        return TermIntent::Stop;
    };
    let task = tokio::task::spawn_blocking(move || list_jobs(timeout));
    // (the thread may outlive the timeout; it is abandoned, not waited for)
    let r = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(JobError::Join(e.to_string())),
        Err(_) => Err(JobError::Timeout(timeout)),
    };
    match r {
        Ok(jobs) => {
            let i = intent_of(&jobs, &unit);
            let mine: Vec<&str> = jobs
                .iter()
                .filter(|(u, _)| *u == unit)
                .map(|(_, t)| t.as_str())
                .collect();
            tracing::info!("systemd jobs of {unit}: {mine:?} -> {i:?}");
            i
        }
        Err(e) => {
            tracing::warn!("cannot ask systemd what the SIGTERM means ({e}): stopping");
            TermIntent::Stop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(u, t)| (u.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn only_a_restart_of_our_own_unit_keeps_the_gateways() {
        let u = "reeved.service";
        assert_eq!(intent_of(&[], u), TermIntent::Stop);
        assert_eq!(intent_of(&jobs(&[(u, "stop")]), u), TermIntent::Stop);
        assert_eq!(intent_of(&jobs(&[(u, "restart")]), u), TermIntent::Restart);
        assert_eq!(
            intent_of(&jobs(&[("x.service", "stop"), (u, "try-restart")]), u),
            TermIntent::Restart
        );
        assert_eq!(
            intent_of(&jobs(&[("other.service", "restart"), (u, "stop")]), u),
            TermIntent::Stop
        );
        assert_eq!(
            intent_of(&jobs(&[("shutdown.target", "start"), (u, "stop")]), u),
            TermIntent::Stop
        );
    }

    #[tokio::test]
    async fn without_a_unit_or_a_bus_sigterm_means_stop() {
        assert_eq!(
            term_intent(None, Duration::from_secs(2)).await,
            TermIntent::Stop
        );
        // A unit name that systemd (if any) runs no restart job for: stop, within the timeout.
        let t = std::time::Instant::now();
        assert_eq!(
            term_intent(
                Some("reeve-test-no-such-unit.service".into()),
                Duration::from_secs(2)
            )
            .await,
            TermIntent::Stop
        );
        assert!(t.elapsed() < Duration::from_secs(3));
    }
}
