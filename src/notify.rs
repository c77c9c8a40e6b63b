//! Notifications: deliver a pass's events to webhooks (JSON, Slack, Discord bodies) and exec
//! notifiers, with retries inside the pass, and keep what still failed for the next pass.
//!
//! - Each event goes to every notifier whose `events:` has its kind (a reminder goes to those
//!   that take `down`).
//! - A delivery is tried 1 + `retries` times with a short backoff (0.5 s, 1 s, 2 s, ...).
//!   If it still fails it is kept (in the state file) and tried again on the next pass, in
//!   order, before newer events: a flaky webhook neither loses nor duplicates an event.
//! - Time budget: once a notifier has failed a delivery after all its retries, the rest of its
//!   deliveries this pass are not tried (they wait for the next pass), so a dead webhook costs
//!   one delivery's time per pass, not one per event. Notifiers run side by side.
//! - Owed deliveries older than a day, or beyond 100, are dropped with an error line; so are
//!   deliveries owed to a notifier that was removed or changed in the config.
//! - Failures are logged; they never change the exit code.
//! - Slack and Discord read their text as markup: what a check's output or a name puts in
//!   it is shown, never obeyed ([`Markup`]). No `@everyone`/`@here`/`@channel` ping, no
//!   `<!channel>` or `<@U123>` mention, no `<https://evil|https://good>` or `[good](evil)`
//!   link in disguise; Discord bodies also carry `allowed_mentions: {parse: []}`.

use crate::config::{Config, Notifier, NotifierKind, Webhook, WebhookFormat};
use crate::events::{Event, Pending};
use crate::http_client::{self, Method, Tls};
use crate::policy::EventKind;
use crate::redact::Redactor;
use crate::spawn::{self, Spec};
use serde::Serialize;
use std::time::{Duration, SystemTime};
use tracing::{error, info, warn};

/// Deliveries kept for the next pass, at most.
pub const MAX_PENDING: usize = 100;
/// A delivery owed for longer than this is dropped.
pub const MAX_PENDING_AGE: Duration = Duration::from_secs(24 * 3600);

/// One delivery to make this pass.
struct Job {
    event: Event,
    attempts: u32,
    first_failed: Option<SystemTime>,
}

fn takes(n: &Notifier, e: &Event) -> bool {
    let kind = if e.reminder { EventKind::Down } else { e.event };
    n.events.contains(&kind)
}

/// Deliver owed `pending` deliveries, then `events` (of the pass at `now`); return what is
/// still owed.
pub fn deliver(
    config: &Config,
    events: &[Event],
    pending: Vec<Pending>,
    now: SystemTime,
) -> Vec<Pending> {
    let notifiers = &config.notify;
    let mut jobs: Vec<Vec<Job>> = notifiers.iter().map(|_| Vec::new()).collect();
    for p in pending {
        let Some(i) = notifiers.iter().position(|n| n.key == p.notifier) else {
            error!(
                target = %p.event.target, event = p.event.event.as_str(),
                "dropping an undelivered notification: its notifier was removed or changed in the config"
            );
            continue;
        };
        if now.duration_since(p.first_failed).unwrap_or(Duration::ZERO) > MAX_PENDING_AGE {
            error!(
                notifier = %notifiers[i].name, target = %p.event.target,
                event = p.event.event.as_str(), attempts = p.attempts,
                "dropping a notification undelivered for more than a day"
            );
            continue;
        }
        jobs[i].push(Job {
            event: p.event,
            attempts: p.attempts,
            first_failed: Some(p.first_failed),
        });
    }
    for e in events {
        for (i, n) in notifiers.iter().enumerate() {
            if takes(n, e) {
                jobs[i].push(Job {
                    event: e.clone(),
                    attempts: 0,
                    first_failed: None,
                });
            }
        }
    }
    let work: Vec<(&Notifier, Vec<Job>)> = notifiers
        .iter()
        .zip(jobs)
        .filter(|(_, j)| !j.is_empty())
        .collect();
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = work
            .into_iter()
            .map(|(n, jobs)| {
                let r = &config.redactor;
                let h = std::thread::Builder::new()
                    .spawn_scoped(s, move || run_notifier(n, jobs, r, now));
                (n, h)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| match h {
                Ok(h) => h.join().unwrap_or_default(),
                Err(e) => {
                    warn!(notifier = %n.name, err = %e, "cannot start a notification thread; trying next pass");
                    Vec::new()
                }
            })
            .collect::<Vec<_>>()
    });
    let mut still: Vec<Pending> = results;
    still.sort_by_key(|p| p.first_failed);
    if still.len() > MAX_PENDING {
        let dropped = still.len() - MAX_PENDING;
        error!(
            dropped,
            kept = MAX_PENDING,
            "too many undelivered notifications; dropping the oldest"
        );
        still.drain(..dropped);
    }
    still
}

/// One notifier's deliveries, in order; returns what is still owed.
fn run_notifier(n: &Notifier, jobs: Vec<Job>, r: &Redactor, now: SystemTime) -> Vec<Pending> {
    let mut owed = Vec::new();
    let mut dead = false;
    for job in jobs {
        let pending = |job: Job, tried: bool| Pending {
            notifier: n.key.clone(),
            attempts: job.attempts + u32::from(tried),
            first_failed: job.first_failed.unwrap_or(now),
            event: job.event,
        };
        if dead {
            owed.push(pending(job, false));
            continue;
        }
        let e = &job.event;
        match send(n, e, r) {
            Ok(tries) => info!(
                notifier = %n.name, target = %e.target, event = e.event.as_str(),
                reminder = e.reminder.then_some(true), tries, "notification sent"
            ),
            Err(err) => {
                warn!(
                    notifier = %n.name, target = %e.target, event = e.event.as_str(),
                    err = %r.redact(&err), "notification failed; will retry next pass"
                );
                dead = true;
                owed.push(pending(job, true));
            }
        }
    }
    owed
}

/// Try one delivery 1 + retries times; Ok(attempts) or the last error.
fn send(n: &Notifier, e: &Event, r: &Redactor) -> Result<u32, String> {
    match &n.kind {
        NotifierKind::Webhook(w) => {
            let body = r.redact(&body(w.format, e, r));
            let mut last = String::new();
            for attempt in 0..=w.retries {
                if attempt > 0 {
                    let backoff = Duration::from_millis(500 << (attempt - 1).min(4));
                    std::thread::sleep(backoff);
                }
                match post(w, body.as_bytes()) {
                    Ok(()) => return Ok(attempt + 1),
                    Err(err) => last = err,
                }
            }
            Err(last)
        }
        NotifierKind::Exec { argv, timeout } => {
            let json = r.redact(&body(WebhookFormat::Json, e, r));
            let env = e.env();
            let env: std::collections::BTreeMap<String, String> =
                env.into_iter().map(|(k, v)| (k, r.redact(&v))).collect();
            let spec = Spec::new(argv, *timeout).env(&env).stdin(json.as_bytes());
            let out = spawn::run(&spec).map_err(|e| e.message)?;
            if out.status.success() {
                Ok(1)
            } else {
                Err(out.status.describe(*timeout, &out.tail(200, r)))
            }
        }
    }
}

fn post(w: &Webhook, body: &[u8]) -> Result<(), String> {
    let req = http_client::Request {
        method: Method::Post,
        url: &w.url,
        headers: &w.headers,
        body: Some(body),
        content_type: Some("application/json"),
        timeout: w.timeout,
        tls: Tls::Verify,
        ip_version: None,
        resolve: None,
        max_body: 4096,
        env_proxy: true,
    };
    let resp = http_client::send(&req)?;
    if (200..300).contains(&resp.status) {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&resp.body);
        let text: String = text.trim().chars().take(200).collect();
        Err(if text.is_empty() {
            format!("HTTP {}", resp.status)
        } else {
            format!("HTTP {}: {text}", resp.status)
        })
    }
}

/// "5m 12s", "2h 3m", "40s"
fn human(d: u64) -> String {
    match d {
        0..=59 => format!("{d}s"),
        60..=3599 => format!("{}m {}s", d / 60, d % 60),
        _ => format!("{}h {}m", d / 3600, (d % 3600) / 60),
    }
}

/// How a chat service reads a message's text, and how text we do not control (a check's
/// output in the reason, names, the host name) is written so that it shows as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Shown as it is (tests, logs).
    Plain,
    /// Slack's mrkdwn: `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;` (Slack's own rule: then no
    /// `<!channel>`, `<@U123>`, `<url|text>` can be formed), and `@here`-style words broken.
    Slack,
    /// Discord's markdown: its markup characters backslash-escaped (no `[text](url)` link, no
    /// `<@123>` mention, no formatting), `@everyone`-style words broken. The body also says
    /// `allowed_mentions: {parse: []}`, so nothing in it can ping anyone.
    Discord,
}

impl Markup {
    /// `s` (text we do not control) as it must be written to show as it is.
    pub fn text(self, s: &str) -> String {
        match self {
            Markup::Plain => s.to_string(),
            Markup::Slack => {
                let mut out = String::with_capacity(s.len());
                for c in s.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        c => out.push(c),
                    }
                }
                break_pings(&out)
            }
            Markup::Discord => {
                let mut out = String::with_capacity(s.len());
                for c in s.chars() {
                    if matches!(
                        c,
                        '\\' | '*'
                            | '_'
                            | '~'
                            | '`'
                            | '|'
                            | '['
                            | ']'
                            | '('
                            | ')'
                            | '<'
                            | '>'
                            | '#'
                    ) {
                        out.push('\\');
                    }
                    out.push(c);
                }
                break_pings(&out)
            }
        }
    }

    /// `s` inside a code span: shown literally, backticks (which would end it) become `'`.
    fn code(self, s: &str) -> String {
        match self {
            Markup::Plain => s.to_string(),
            // Slack decodes its three entities in code too: escape them, break no ping
            Markup::Slack => self.text(s),
            Markup::Discord => s.replace('`', "'"),
        }
    }
}

/// `@everyone`, `@here`, `@channel` (any case) with a zero-width space after the `@`: it reads
/// the same and pings no one (the way Discord's own libraries escape mentions).
fn break_pings(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('@') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
        if ["everyone", "here", "channel"]
            .iter()
            .any(|w| lower.starts_with(w))
        {
            out.push('\u{200b}');
        }
    }
    out.push_str(rest);
    out
}

/// The one-line human message of Slack, Discord (and exec notifiers' logs), with what we do
/// not control written for `markup`.
pub fn message(e: &Event, host: &str, markup: Markup) -> String {
    let m = |s: &str| markup.text(s);
    let host = m(host);
    let target = m(&e.target);
    let reason = m(&e.reason);
    let who = format!("[neon-watchdog@{host}] {target}");
    let restarts = match e.restarts_last_hour {
        1 => "1 restart in the last hour".to_string(),
        n => format!("{n} restarts in the last hour"),
    };
    let failures = match e.failures {
        1 => "1 failure".to_string(),
        n => format!("{n} failures"),
    };
    let line = match e.event {
        EventKind::Down if e.reminder => format!(
            "{who} is STILL DOWN{}: {} ({failures}, {restarts})",
            e.downtime_seconds
                .map(|d| format!(" after {}", human(d)))
                .unwrap_or_default(),
            reason
        ),
        EventKind::Down => format!("{who} is DOWN: {reason} ({failures}, {restarts})"),
        EventKind::Recovered => format!(
            "{who} RECOVERED{}",
            e.downtime_seconds
                .map(|d| format!(" after {} down", human(d)))
                .unwrap_or_default()
        ),
        EventKind::GaveUp => format!(
            "CRITICAL {who} GAVE UP: restarts did not bring it back: {reason} ({failures}, {restarts}); run `neon-watchdog reset {}` once fixed",
            markup.code(&e.target)
        ),
        EventKind::Restart => format!("{who} restarted: {reason} ({restarts})"),
        EventKind::RestartFailed => format!("{who} restart FAILED: {reason}"),
        EventKind::RateLimited => format!(
            "{who} is failing but restarts are paused: the hourly cap is reached ({restarts}): {reason}"
        ),
    };
    match &e.dependency_down {
        Some(d) if e.event != EventKind::Recovered => {
            let d = m(d);
            format!("{line}; {d}, which it depends on, is down too: no restart until {d} is back")
        }
        _ => line,
    }
}

/// The `json` body: the event's own serde form, and who sent it.
#[derive(Serialize)]
struct JsonBody<'a> {
    #[serde(flatten)]
    event: &'a Event,
    severity: &'static str,
    host: &'a str,
    version: &'static str,
}

/// The request body for `format`. For Slack and Discord, what we do not control is masked by
/// `r` before it is escaped for their markup (an escaped secret would no longer match).
pub fn body(format: WebhookFormat, e: &Event, r: &Redactor) -> String {
    let host = crate::util::hostname();
    let masked = || {
        let mut e = e.clone();
        e.target = r.redact(&e.target);
        e.reason = r.redact(&e.reason);
        e.dependency_down = e.dependency_down.map(|d| r.redact(&d));
        e
    };
    let v = match format {
        WebhookFormat::Json => serde_json::to_value(JsonBody {
            event: e,
            severity: e.event.severity(),
            host: &host,
            version: env!("CARGO_PKG_VERSION"),
        })
        .unwrap_or_default(),
        WebhookFormat::Slack => {
            serde_json::json!({ "text": message(&masked(), &r.redact(&host), Markup::Slack) })
        }
        WebhookFormat::Discord => serde_json::json!({
            "content": message(&masked(), &r.redact(&host), Markup::Discord),
            "allowed_mentions": { "parse": [] },
        }),
    };
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Health;

    fn event(kind: EventKind) -> Event {
        Event {
            target: "web".into(),
            event: kind,
            reminder: false,
            status: Health::Failed,
            previous_status: Health::Degraded,
            reason: "tcp_port: connection refused".into(),
            failures: 3,
            restarts_last_hour: 1,
            downtime_seconds: None,
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            dependency_down: None,
        }
    }

    #[test]
    fn json_body_has_the_documented_fields() {
        let v: serde_json::Value = serde_json::from_str(&body(
            WebhookFormat::Json,
            &event(EventKind::Down),
            &Redactor::default(),
        ))
        .unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "event",
                "failures",
                "host",
                "previous_status",
                "reason",
                "restarts_last_hour",
                "severity",
                "status",
                "target",
                "timestamp",
                "version"
            ]
        );
        assert_eq!(v["timestamp"], "2027-01-15T08:00:00.000Z");
    }

    #[test]
    fn human_messages() {
        let m = message(&event(EventKind::Down), "h1", Markup::Plain);
        assert_eq!(
            m,
            "[neon-watchdog@h1] web is DOWN: tcp_port: connection refused (3 failures, 1 restart in the last hour)"
        );
        let mut r = event(EventKind::Recovered);
        r.downtime_seconds = Some(312);
        assert_eq!(
            message(&r, "h1", Markup::Plain),
            "[neon-watchdog@h1] web RECOVERED after 5m 12s down"
        );
        let mut rem = event(EventKind::Down);
        rem.reminder = true;
        rem.downtime_seconds = Some(7300);
        assert!(message(&rem, "h1", Markup::Plain).contains("is STILL DOWN after 2h 1m"));
        assert!(message(&event(EventKind::GaveUp), "h1", Markup::Plain)
            .contains("neon-watchdog reset web"));
        let slack: serde_json::Value = serde_json::from_str(&body(
            WebhookFormat::Slack,
            &event(EventKind::Down),
            &Redactor::default(),
        ))
        .unwrap();
        assert!(slack["text"].as_str().unwrap().contains("web is DOWN"));
        let discord: serde_json::Value = serde_json::from_str(&body(
            WebhookFormat::Discord,
            &event(EventKind::Down),
            &Redactor::default(),
        ))
        .unwrap();
        assert!(discord["content"].as_str().unwrap().contains("web is DOWN"));
    }

    #[test]
    fn chat_markup_shows_hostile_text_as_it_is() {
        let mut e = event(EventKind::Down);
        e.reason = "command: exit 1: @everyone <!channel> <@U024BE7LH> <https://evil.example|https://good.example> [good](https://evil.example) @Here a&b".into();
        let slack = Markup::Slack.text(&e.reason);
        assert!(!slack.contains('<') && !slack.contains('>'), "{slack}");
        assert!(
            slack.contains("&lt;!channel&gt;") && slack.contains("a&amp;b"),
            "{slack}"
        );
        assert!(
            slack.contains("@\u{200b}everyone") && slack.contains("@\u{200b}Here"),
            "{slack}"
        );
        let discord = Markup::Discord.text(&e.reason);
        assert!(discord.contains("\\[good\\]\\(https"), "{discord}");
        assert!(discord.contains("\\<@U024BE7LH\\>"), "{discord}");
        assert!(discord.contains("@\u{200b}everyone"), "{discord}");
        let v: serde_json::Value =
            serde_json::from_str(&body(WebhookFormat::Discord, &e, &Redactor::default())).unwrap();
        assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));
        // the reset hint is a code span: shown literally, it cannot be closed early
        e.event = EventKind::GaveUp;
        e.target = "a_b`c".into();
        let m = message(&e, "h", Markup::Discord);
        assert!(m.contains("`neon-watchdog reset a_b'c`"), "{m}");
        assert_eq!(
            break_pings("mail me @ home, @heRe, @channels"),
            "mail me @ home, @\u{200b}heRe, @\u{200b}channels"
        );
    }
}
