//! `reevec events [--stats] [--interval 5s] <id>`: container statistics and OOM notices as JSON
//! lines, in runc's shape. With `--stats`, one `{"type":"stats","id":..,"data":{..}}` and exit;
//! without, a stats event every interval and a `{"type":"oom","id":..}` event whenever the kernel
//! OOM-kills a process of the container, until the container stops.

use std::time::Duration;

use super::{out, Cli, CliError};
use crate::container::resources;

/// A malformed `--interval`.
#[derive(Debug, thiserror::Error)]
#[error("--interval {0:?}: not a positive duration (e.g. 5s, 500ms, 1m30s)")]
pub struct IntervalError(pub String);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
    /// Print the statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Time between stats events (Go duration syntax: 5s, 500ms, 1m30s).
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

/// A Go `time.ParseDuration` string (what runc's `--interval` takes); must be positive.
pub fn parse_duration(s: &str) -> Result<Duration, IntervalError> {
    let bad = || IntervalError(s.to_string());
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(n);
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(u);
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * secs;
        rest = next;
    }
    let d = Duration::try_from_secs_f64(total).map_err(|_| bad())?;
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

fn line(e: &resources::Event) -> Result<String, serde_json::Error> {
    serde_json::to_string(e)
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32, CliError> {
    let root = cli.state_root();
    if args.stats {
        let e = resources::stats(&root, &args.id)?;
        out(&line(&e).map_err(|e| CliError::Stdout(e.into()))?)?;
        return Ok(0);
    }
    let interval = parse_duration(&args.interval)?;
    resources::watch(&root, &args.id, interval, |e| {
        use std::io::Write;
        let text = line(e).map_err(std::io::Error::from)?;
        let mut o = std::io::stdout().lock();
        writeln!(o, "{text}")?;
        o.flush()
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        for (s, ms) in [
            ("5s", 5000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1.5s", 1500),
            ("2h", 7_200_000),
            ("+250ms", 250),
            ("1500us", 1),
        ] {
            assert_eq!(parse_duration(s).unwrap().as_millis(), ms, "{s}");
        }
        assert_eq!(parse_duration("10ns").unwrap().as_nanos(), 10);
    }

    #[test]
    fn bad_durations_are_refused() {
        for s in ["", "5", "0", "0s", "s", "-1s", "1x", "1.s2", ".s", "5 s"] {
            let e = parse_duration(s);
            assert!(e.is_err(), "{s:?} parsed as {e:?}");
        }
        let msg = parse_duration("soon").unwrap_err().to_string();
        assert!(msg.contains("--interval \"soon\""), "{msg}");
    }
}
