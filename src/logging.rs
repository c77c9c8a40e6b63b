//! One line per event on stderr: logfmt (`ts=... level=info msg="check" target=web ...`) by
//! default, or JSON lines. The message and every text value of every line pass through the
//! [`Redactor`]: no call site has to remember to mask a secret. (Numbers and booleans are
//! produced by the code, not taken from user data, and stay as they are.) Values are masked
//! before they are quoted or JSON-encoded; a value logged with `?` (Debug) arrives already
//! escaped, which the redactor masks too (it knows every escaped form of each secret).
//!
//! Under systemd (`JOURNAL_STREAM` set) logfmt lines carry no `ts=`: journald stamps them.

use crate::config::LogLevel;
use crate::redact::Redactor;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// Lets the caller swap the redactor and the level (after a config reload).
#[derive(Clone)]
pub struct Handle {
    redactor: Arc<RwLock<Redactor>>,
    max: Arc<AtomicU8>,
}

impl Handle {
    pub fn set_redactor(&self, r: Redactor) {
        if let Ok(mut g) = self.redactor.write() {
            *g = r;
        }
    }

    pub fn set_level(&self, level: LogLevel) {
        self.max.store(level as u8, Ordering::Relaxed);
    }
}

struct LineLayer {
    format: LogFormat,
    /// A `LogLevel` as u8: events up to it are written.
    max: Arc<AtomicU8>,
    timestamps: bool,
    redactor: Arc<RwLock<Redactor>>,
}

fn rank(l: &Level) -> u8 {
    let l = match *l {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    };
    l as u8
}

/// Install the global subscriber. Call once; later calls are ignored.
pub fn init(level: LogLevel, format: LogFormat, redactor: Redactor) -> Handle {
    let redactor = Arc::new(RwLock::new(redactor));
    let max = Arc::new(AtomicU8::new(level as u8));
    let layer = LineLayer {
        format,
        max: max.clone(),
        timestamps: format == LogFormat::Json || std::env::var_os("JOURNAL_STREAM").is_none(),
        redactor: redactor.clone(),
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Handle { redactor, max }
}

enum Value {
    Str(String),
    Num(String),
    Bool(bool),
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .push((field.name(), Value::Str(value.to_string())));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let s = format!("{value:?}");
        if field.name() == "message" {
            self.message = s;
        } else {
            self.fields.push((field.name(), Value::Str(s)));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .push((field.name(), Value::Num(value.to_string())));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .push((field.name(), Value::Num(value.to_string())));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields
            .push((field.name(), Value::Num(format!("{value}"))));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), Value::Bool(value)));
    }
}

impl<S: Subscriber> Layer<S> for LineLayer {
    // the level can change at run time (SIGHUP): ask `enabled` every time
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        rank(metadata.level()) <= self.max.load(Ordering::Relaxed)
            && metadata.target().starts_with("neon_watchdog")
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let redactor = match self.redactor.read() {
            Ok(g) => g.clone(),
            Err(_) => return,
        };
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let ts = self
            .timestamps
            .then(|| crate::util::rfc3339(std::time::SystemTime::now()));
        let line = match self.format {
            LogFormat::Logfmt => logfmt_line(ts.as_deref(), &level, &f, &redactor),
            LogFormat::Json => json_line(ts.as_deref(), &level, &f, &redactor),
        };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    }
}

fn logfmt_line(ts: Option<&str>, level: &str, f: &Fields, r: &Redactor) -> String {
    let mut line = String::with_capacity(128);
    if let Some(ts) = ts {
        let _ = write!(line, "ts={ts} ");
    }
    let _ = write!(line, "level={level} msg={}", quote(&r.redact(&f.message)));
    for (k, v) in &f.fields {
        // numbers and booleans come from the code, never from user data: not masked
        let s = match v {
            Value::Str(s) => r.redact(s),
            Value::Num(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
        };
        let _ = write!(line, " {k}={}", quote(&s));
    }
    line.push('\n');
    line
}

fn json_line(ts: Option<&str>, level: &str, f: &Fields, r: &Redactor) -> String {
    let mut map = serde_json::Map::new();
    if let Some(ts) = ts {
        map.insert("ts".into(), ts.into());
    }
    map.insert("level".into(), level.into());
    map.insert("msg".into(), r.redact(&f.message).into());
    for (k, v) in &f.fields {
        let value = match v {
            Value::Str(s) => serde_json::Value::String(r.redact(s)),
            Value::Num(s) => {
                serde_json::from_str(s).unwrap_or(serde_json::Value::String(s.clone()))
            }
            Value::Bool(b) => serde_json::Value::Bool(*b),
        };
        map.insert((*k).to_string(), value);
    }
    let mut s = serde_json::Value::Object(map).to_string();
    s.push('\n');
    s
}

/// logfmt value: bare when safe, else double-quoted with `\"`, `\\`, `\n` escapes (the
/// redactor knows this escaping: see [`crate::redact::logfmt_escape`]).
pub fn quote(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if bare {
        return s.to_string();
    }
    format!("\"{}\"", crate::redact::logfmt_escape(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields {
            message: "check".into(),
            fields: vec![
                ("target", Value::Str("web".into())),
                (
                    "err",
                    Value::Str("exit 1: auth hunter2 failed\nline2".into()),
                ),
                ("latency_ms", Value::Num("3".into())),
                ("ok", Value::Bool(false)),
            ],
        }
    }

    #[test]
    fn logfmt_quotes_and_redacts() {
        let r = Redactor::new(["hunter2".to_string()]);
        let line = logfmt_line(Some("T"), "warn", &fields(), &r);
        assert_eq!(
            line,
            "ts=T level=warn msg=check target=web err=\"exit 1: auth *** failed\\nline2\" latency_ms=3 ok=false\n"
        );
    }

    #[test]
    fn json_redacts_and_keeps_types() {
        let r = Redactor::new(["hunter2".to_string()]);
        let line = json_line(None, "warn", &fields(), &r);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["err"], "exit 1: auth *** failed\nline2");
        assert_eq!(v["latency_ms"], 3);
        assert_eq!(v["ok"], false);
        assert!(v.get("ts").is_none());
    }

    #[test]
    fn quote_rules() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
