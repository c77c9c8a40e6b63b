//! One line per event on stderr: logfmt (`ts=... level=info msg="check" target=web ...`) by
//! default, or JSON lines. The message and every text value of every line pass through the
//! [`Redactor`]: no call site has to remember to mask a secret. (Numbers and booleans are
//! produced by the code, not taken from user data, and stay as they are.) Values are masked
//! before they are quoted or JSON-encoded; a value logged with `?` (Debug) arrives already
//! escaped, which the redactor masks too (it knows every escaped form of each secret).
//!
//! Under systemd, when stderr is the journal (`JOURNAL_STREAM` names stderr's device and
//! inode), each event goes to journald with its native protocol instead (a datagram on
//! /run/systemd/journal/socket): `PRIORITY` from the level, `MESSAGE` the line as it would have
//! been printed (without `ts=`: journald stamps it), and every field as a journal field of its
//! own (`TARGET`, `CHECK`, `RESULT`, `LATENCY_MS`, `ERR`, ...), masked like the line. If the
//! socket cannot be used, the line goes to stderr with the `<N>` priority prefix journald reads.
//!
//! Events of an incident logged at info (a status change, a recovery, an action's or
//! `on_give_up`'s result) are logged with the tracing target [`NOTICE`]: journald files them at
//! priority 5 (notice), the routine info lines (OK checks, `pass done`) at 6, so that
//! `journalctl -p notice` tells an incident start to end. The lines themselves keep
//! `level=info`: logfmt and JSON promise error, warn, info, debug and trace.

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
    sink: Sink,
    redactor: Arc<RwLock<Redactor>>,
}

/// Where lines go.
enum Sink {
    /// A terminal, a file, a pipe: lines with their timestamp.
    Stderr,
    /// stderr is the journal: native entries on its socket (journald stamps them).
    Journal(std::os::unix::net::UnixDatagram),
    /// stderr is the journal but its socket cannot be used: lines with a `<N>` prefix.
    JournalStream,
}

/// journald's native socket.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

impl Sink {
    fn detect() -> Sink {
        if !stderr_is_journal() {
            return Sink::Stderr;
        }
        let sock = std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.connect(JOURNAL_SOCKET).map(|()| s));
        match sock {
            Ok(s) => Sink::Journal(s),
            Err(_) => Sink::JournalStream,
        }
    }
}

/// systemd sets `JOURNAL_STREAM=DEV:INODE` for a service whose stderr goes to the journal;
/// it holds only while stderr is still that stream (not redirected by a wrapper).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let v = v.to_string_lossy();
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // fstat of fd 2, through /proc/self/fd/2 (a socket or a pipe has no path of its own)
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The tracing target of an event that journald files at notice (5) rather than info (6):
/// `info!(target: NOTICE, ...)`. A warning or an error keeps its own priority.
pub const NOTICE: &str = "neon_watchdog::notice";

/// syslog priority of an event, as journald files it.
fn priority(meta: &Metadata<'_>) -> u8 {
    match *meta.level() {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO if meta.target() == NOTICE => 5,
        Level::INFO => 6,
        _ => 7,
    }
}

/// A journal field name: uppercase letters, digits and `_`, not starting with `_` (those
/// are journald's own) nor a digit.
fn journal_name(k: &str) -> String {
    let mut n: String = k
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if n.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
        n.insert(0, 'F');
    }
    n
}

/// One entry of journald's native protocol: `NAME=value\n`, or for a value with a newline
/// `NAME\n`, its length as 64-bit little endian, the value, `\n`.
fn journal_entry(message: &str, priority: u8, f: &Fields, r: &Redactor) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut field = |name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        } else {
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'\n');
    };
    field("MESSAGE", message);
    field("PRIORITY", &priority.to_string());
    field("SYSLOG_IDENTIFIER", "neon-watchdog");
    for (k, v) in &f.fields {
        let value = match v {
            Value::Str(s) => r.redact(s),
            Value::Num(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
        };
        field(&journal_name(k), &value);
    }
    out
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
        sink: Sink::detect(),
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
        // a copy (an Arc): the lock is not held while the line is written
        let redactor = match self.redactor.read() {
            Ok(g) => g.clone(),
            Err(_) => return,
        };
        let meta_level = event.metadata().level();
        let level = level_name(meta_level);
        let priority = priority(event.metadata());
        // journald stamps what it receives; JSON lines keep their ts
        let ts =
            (matches!(self.sink, Sink::Stderr) || self.format == LogFormat::Json).then(timestamp);
        let line = match self.format {
            LogFormat::Logfmt => logfmt_line(ts.as_deref(), level, &f, &redactor),
            LogFormat::Json => json_line(ts.as_deref(), level, &f, &redactor),
        };
        if let Sink::Journal(sock) = &self.sink {
            let entry = journal_entry(line.trim_end(), priority, &f, &redactor);
            if sock.send(&entry).is_ok() {
                return;
            }
        }
        let prefix = if matches!(self.sink, Sink::Stderr) {
            String::new()
        } else {
            format!("<{priority}>")
        };
        let batched = BATCH.with(|b| match b.borrow_mut().as_mut() {
            Some(buf) => {
                buf.push_str(&prefix);
                buf.push_str(&line);
                true
            }
            None => false,
        });
        if !batched {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(format!("{prefix}{line}").as_bytes());
        }
    }
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Now, RFC 3339 with milliseconds; formatted once per millisecond and thread (a pass logs
/// its hundreds of lines within a few).
fn timestamp() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(u128, String)> =
            const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    LAST.try_with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != ms || last.1.is_empty() {
            *last = (ms, crate::util::rfc3339(now));
        }
        last.1.clone()
    })
    // a line logged while the thread ends
    .unwrap_or_else(|_| crate::util::rfc3339(now))
}

thread_local! {
    /// Lines of a [`Batch`] on this thread, written together when it ends.
    static BATCH: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// While it lives, the lines this thread logs to stderr are kept and written in one go when
/// it is dropped (a pass's per-target lines: one write instead of hundreds). Lines sent to
/// the journal's socket are not held back.
pub struct Batch(());

impl Batch {
    pub fn start() -> Batch {
        BATCH.with(|b| {
            let mut b = b.borrow_mut();
            if b.is_none() {
                *b = Some(String::with_capacity(16 * 1024));
            }
        });
        Batch(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(text) = BATCH.with(|b| b.borrow_mut().take()) {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

fn logfmt_line(ts: Option<&str>, level: &str, f: &Fields, r: &Redactor) -> String {
    let mut line = String::with_capacity(128);
    if let Some(ts) = ts {
        let _ = write!(line, "ts={ts} ");
    }
    let _ = write!(line, "level={level} msg=");
    push_quoted(&mut line, &r.redact(&f.message));
    for (k, v) in &f.fields {
        line.push(' ');
        line.push_str(k);
        line.push('=');
        // numbers and booleans come from the code, never from user data: not masked
        match v {
            Value::Str(s) => push_quoted(&mut line, &r.redact(s)),
            Value::Num(s) => push_quoted(&mut line, s),
            Value::Bool(b) => line.push_str(if *b { "true" } else { "false" }),
        }
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
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

/// [`quote`], onto the end of `out`.
fn push_quoted(out: &mut String, s: &str) {
    let bare = !s.is_empty()
        && s.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !crate::util::is_invisible(c)
                && c != '"'
                && c != '='
                && c != '\\'
        });
    if bare {
        out.push_str(s);
    } else {
        out.push('"');
        out.push_str(&crate::redact::logfmt_escape(s));
        out.push('"');
    }
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
    fn journal_entries_carry_priority_and_fields() {
        let r = Redactor::new(["hunter2".to_string()]);
        let e = journal_entry("level=warn msg=check", 4, &fields(), &r);
        let text = String::from_utf8_lossy(&e);
        assert!(
            text.starts_with("MESSAGE=level=warn msg=check\nPRIORITY=4\n"),
            "{text}"
        );
        assert!(
            text.contains("SYSLOG_IDENTIFIER=neon-watchdog\nTARGET=web\n"),
            "{text}"
        );
        assert!(text.contains("LATENCY_MS=3\nOK=false\n"), "{text}");
        // a value with a newline: NAME, newline, 64-bit LE length, the value, newline
        let value = "exit 1: auth *** failed\nline2";
        let mut want = b"ERR\n".to_vec();
        want.extend_from_slice(&(value.len() as u64).to_le_bytes());
        want.extend_from_slice(value.as_bytes());
        want.push(b'\n');
        assert!(
            e.windows(want.len()).any(|w| w == want.as_slice()),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
        assert_eq!(journal_name("latency_ms"), "LATENCY_MS");
        assert_eq!(journal_name("_x"), "F_X");
    }

    #[test]
    fn quote_rules() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
