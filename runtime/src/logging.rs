//! Logging as runc callers expect it: `--log FILE` with `--log-format text|json`, where the
//! JSON lines are `{"level":"error","msg":"...","time":"..."}` (containerd reads the last error
//! line of that file to tell the user why a runtime call failed). Without `--log`, text to stderr.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Errors of setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("open log file {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("unknown --log-format {0:?}: use text or json")]
    Format(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl std::str::FromStr for Format {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, LogError> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(LogError::Format(other.to_string())),
        }
    }
}

struct Line {
    msg: String,
    fields: Vec<(String, String)>,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.fields
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

/// A layer that writes runc-style lines.
pub struct RuncLayer {
    out: Mutex<Box<dyn Write + Send>>,
    format: Format,
    max: Level,
}

/// Render one event line (exposed for tests).
pub fn render(
    format: Format,
    level: &Level,
    msg: &str,
    fields: &[(String, String)],
    time: &str,
) -> String {
    let lvl = level.as_str().to_ascii_lowercase();
    match format {
        Format::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("level".into(), lvl.into());
            obj.insert("msg".into(), msg.into());
            obj.insert("time".into(), time.into());
            for (k, v) in fields {
                obj.insert(k.clone(), v.clone().into());
            }
            serde_json::Value::Object(obj).to_string()
        }
        Format::Text => {
            let mut s = format!("time=\"{time}\" level={lvl} msg={msg:?}");
            for (k, v) in fields {
                s.push_str(&format!(" {k}={v:?}"));
            }
            s
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = event.metadata().level();
        if *level > self.max {
            return;
        }
        let mut line = Line {
            msg: String::new(),
            fields: Vec::new(),
        };
        event.record(&mut line);
        let text = render(
            self.format,
            level,
            &line.msg,
            &line.fields,
            &crate::state::now_rfc3339(),
        );
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{text}");
        }
    }
}

/// Install the global subscriber. With no file, warnings and errors go to stderr as text.
pub fn init(file: Option<&Path>, format: Format, debug: bool) -> Result<(), LogError> {
    let max = if debug { Level::DEBUG } else { Level::WARN };
    let out: Box<dyn Write + Send> = match file {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| LogError::Open {
                    path: p.to_path_buf(),
                    source,
                })?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let layer = RuncLayer {
        out: Mutex::new(out),
        format,
        max,
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_the_runc_shape() {
        let line = render(
            Format::Json,
            &Level::ERROR,
            "boom: x",
            &[("id".into(), "c1".into())],
            "T",
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom: x");
        assert_eq!(v["time"], "T");
        assert_eq!(v["id"], "c1");
        let text = render(Format::Text, &Level::WARN, "careful", &[], "T");
        assert_eq!(text, "time=\"T\" level=warn msg=\"careful\"");
    }
}
