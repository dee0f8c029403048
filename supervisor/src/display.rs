//! Tables for people.

use crate::supervisor::TenantStatus;

fn age(since: Option<u64>, now: u64) -> String {
    let Some(s) = since else { return "-".into() };
    let d = now.saturating_sub(s);
    match d {
        0..=59 => format!("{d}s"),
        60..=3599 => format!("{}m{}s", d / 60, d % 60),
        _ => format!("{}h{}m", d / 3600, (d % 3600) / 60),
    }
}

fn bytes(b: Option<u64>) -> String {
    match b {
        None => "-".into(),
        Some(b) if b >= 1 << 30 => format!("{:.1}G", b as f64 / (1u64 << 30) as f64),
        Some(b) if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1u64 << 20) as f64),
        Some(b) => format!("{}K", b >> 10),
    }
}

fn limits(s: &TenantStatus) -> String {
    let l = &s.limits;
    let mut parts = Vec::new();
    if let Some(m) = l.memory {
        parts.push(format!("mem={}", bytes(Some(m.0))));
    }
    if let Some(p) = l.pids {
        parts.push(format!("pids={p}"));
    }
    if let Some(c) = l.cpu {
        parts.push(format!("cpu={c}"));
    }
    if parts.is_empty() {
        "-".into()
    } else if s.limits_enforced {
        parts.join(",")
    } else {
        format!("NOT ENFORCED ({})", parts.join(","))
    }
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.iter().map(|s| s.to_string()).collect());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.clone()));
    }
    out.push('\n');
    out
}

/// The status table (with an ADDRESS column when any tenant has a network).
pub fn status_table(ts: &[TenantStatus], now: u64) -> String {
    let net = ts.iter().any(|s| s.address.is_some());
    let rows: Vec<Vec<String>> = ts
        .iter()
        .map(|s| {
            let mut row = vec![
                s.name.clone(),
                s.phase.to_string(),
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.restarts.to_string(),
                if s.pid.is_some() {
                    age(s.started_unix, now)
                } else {
                    "-".into()
                },
                s.uid_base.map_or("-".into(), |u| u.to_string()),
                limits(s),
                s.last_error
                    .clone()
                    .or_else(|| s.last_exit.clone().map(|e| format!("last: {e}")))
                    .unwrap_or_default()
                    + if s.adopted { " (re-adopted)" } else { "" },
            ];
            if net {
                row.insert(6, s.address.map_or("-".into(), |a| a.to_string()));
            }
            row
        })
        .collect();
    let mut header = vec![
        "TENANT", "STATE", "PID", "RESTARTS", "UPTIME", "UID-BASE", "LIMITS", "NOTE",
    ];
    if net {
        header.insert(6, "ADDRESS");
    }
    render(&header, &rows)
}

/// The stats table.
pub fn stats_table(ts: &[TenantStatus]) -> String {
    let rows: Vec<Vec<String>> = ts
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.phase.to_string(),
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.restarts.to_string(),
                bytes(s.stats.memory_bytes),
                s.stats
                    .cpu_usec
                    .map_or("-".into(), |u| format!("{:.2}s", u as f64 / 1e6)),
            ]
        })
        .collect();
    render(
        &["TENANT", "STATE", "PID", "RESTARTS", "MEMORY", "CPU"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, Size};
    use crate::supervisor::Phase;

    fn st(name: &str, phase: Phase, pid: Option<i32>) -> TenantStatus {
        TenantStatus {
            name: name.into(),
            phase,
            pid,
            restarts: 2,
            started_unix: Some(1000),
            adopted: false,
            last_exit: Some("killed by signal 9".into()),
            last_error: None,
            uid_base: Some(200_000),
            limits: Limits {
                memory: Some(Size(256 << 20)),
                pids: Some(64),
                cpu: None,
            },
            limits_enforced: phase == Phase::Running,
            stats: Default::default(),
            address: None,
        }
    }

    #[test]
    fn address_column_only_with_networks() {
        let mut a = st("acme", Phase::Running, Some(1));
        let plain = status_table(std::slice::from_ref(&a), 1000);
        assert!(!plain.contains("ADDRESS"), "{plain}");
        a.address = Some("10.88.0.2:8080".parse().unwrap());
        let b = st("beta", Phase::Stopped, None);
        let t = status_table(&[a, b], 1000);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("UID-BASE  ADDRESS"), "{t}");
        assert!(lines[1].contains("200000    10.88.0.2:8080"), "{t}");
        assert!(lines[2].contains("200000    -  "), "{t}");
    }

    #[test]
    fn tables_line_up() {
        let t = status_table(
            &[
                st("acme", Phase::Running, Some(4242)),
                st("beta-long", Phase::CrashLoop, None),
            ],
            1125,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("TENANT     STATE"), "{t}");
        assert!(
            lines[1].contains("running") && lines[1].contains("4242") && lines[1].contains("2m5s"),
            "{t}"
        );
        assert!(lines[1].contains("mem=256.0M,pids=64"), "{t}");
        assert!(
            lines[2].contains("NOT ENFORCED (mem=256.0M,pids=64)"),
            "{t}"
        );
        assert!(
            lines[2].contains("crash-loop") && lines[2].contains("last: killed by signal 9"),
            "{t}"
        );
        let pos = |l: &str| {
            l.find("STATE")
                .or_else(|| l.find("running"))
                .or_else(|| l.find("crash"))
        };
        assert_eq!(pos(lines[0]), pos(lines[1]));
        assert_eq!(pos(lines[1]), pos(lines[2]));
        let s = stats_table(&[st("acme", Phase::Running, Some(1))]);
        assert!(
            s.contains("MEMORY") && s.lines().nth(1).unwrap().ends_with('-'),
            "{s}"
        );
    }
}
