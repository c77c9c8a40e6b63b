//! Validation of `notify:`, `heartbeat:` and `metrics:` (the top-level observability keys).

use super::Ctx;
use crate::config::model::*;
use crate::config::raw::*;
use crate::policy::EventKind;
use std::time::Duration;

/// Webhook and heartbeat URLs: http(s) with a host.
fn url(cx: &mut Ctx, p: &str, v: Option<&str>, example: &str) -> Option<String> {
    let Some(v) = v else {
        cx.err(p, format!("is missing: give the URL, e.g. {example}"));
        return None;
    };
    let u = cx.expand(p, v)?;
    match crate::http_client::check_url(&u) {
        Ok(()) => Some(u),
        Err(e) => {
            cx.err(p, e);
            None
        }
    }
}

/// Webhook and heartbeat timeouts: they run inside the pass (and under its lock), so they must
/// stay short: 1..60 s.
fn short_timeout(cx: &mut Ctx, p: &str, v: Option<i128>, default: u64) -> Duration {
    match v {
        Some(n) if n > 60 => {
            cx.err(
                p,
                format!("{n}s is too long: notifications run inside the pass, use 1..60"),
            );
            Duration::from_secs(default)
        }
        v => cx.seconds(p, v, default, 1),
    }
}

/// Header names and values; values of secret-looking headers are masked in every output.
pub(super) fn headers(
    cx: &mut Ctx,
    p: &str,
    raw: Option<std::collections::BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in raw.unwrap_or_default() {
        let kp = format!("{p}.{k}");
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if k.is_empty() || !k.chars().all(token) {
            cx.err(&kp, format!("{k:?} is not a valid HTTP header name"));
            continue;
        }
        let Some(v) = cx.expand(&kp, &v) else {
            continue;
        };
        if v.contains(['\r', '\n']) {
            cx.err(&kp, "contains a line break: a header value is one line");
            continue;
        }
        if crate::redact::header_is_secret(&k) {
            cx.secrets.push(v.clone());
            // "Bearer abc": the token alone too, wherever it shows up
            if let Some((_, token)) = v.split_once(' ') {
                cx.secrets.push(token.trim().to_string());
            }
        }
        out.push((k, v));
    }
    out
}

fn events(cx: &mut Ctx, p: &str, raw: Option<Vec<String>>) -> Vec<EventKind> {
    let Some(raw) = raw else {
        return EventKind::DEFAULT.to_vec();
    };
    if raw.is_empty() {
        cx.err(
            p,
            "is empty: list the events to send (default: [down, recovered, gave_up])",
        );
    }
    let mut out = Vec::new();
    for (i, e) in raw.iter().enumerate() {
        match EventKind::parse(e) {
            Some(k) if !out.contains(&k) => out.push(k),
            Some(_) => {}
            None => {
                let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                cx.err(
                    format!("{p}[{i}]"),
                    format!("{e:?} is not an event: use {}", all.join(", ")),
                );
            }
        }
    }
    out
}

pub(super) fn notifiers(cx: &mut Ctx, raw: Option<Vec<RawNotifier>>) -> Vec<Notifier> {
    let mut out = Vec::new();
    for (i, n) in raw.unwrap_or_default().into_iter().enumerate() {
        let p = format!("notify[{i}]");
        let before = cx.issues.len();
        let events = events(cx, &format!("{p}.events"), n.events);
        let kind = match (n.webhook, n.exec) {
            (Some(_), Some(_)) => {
                cx.err(&p, "has both webhook and exec: one notifier each");
                None
            }
            (None, None) => {
                cx.err(&p, "needs `webhook:` or `exec:`");
                None
            }
            (Some(w), None) => {
                if n.timeout_seconds.is_some() {
                    cx.err(
                        format!("{p}.timeout_seconds"),
                        "belongs inside `webhook:` for a webhook",
                    );
                }
                let wp = format!("{p}.webhook");
                let url = url(
                    cx,
                    &format!("{wp}.url"),
                    w.url.as_deref(),
                    "https://hooks.example.com/${HOOK_ID}",
                );
                let format = match w.format.as_deref() {
                    None | Some("json") => WebhookFormat::Json,
                    Some("slack") => WebhookFormat::Slack,
                    Some("discord") => WebhookFormat::Discord,
                    Some(f) => {
                        cx.err(
                            format!("{wp}.format"),
                            format!("{f:?} is not a format: use json, slack or discord"),
                        );
                        WebhookFormat::Json
                    }
                };
                let headers = headers(cx, &format!("{wp}.headers"), w.headers);
                let timeout =
                    short_timeout(cx, &format!("{wp}.timeout_seconds"), w.timeout_seconds, 5);
                let retries = match w.retries {
                    None => 3,
                    Some(r) if (0..=10).contains(&r) => r as u32,
                    Some(r) => {
                        cx.err(
                            format!("{wp}.retries"),
                            format!("must be 0..10 (attempts after the first, inside one pass), got {r}"),
                        );
                        3
                    }
                };
                url.map(|url| {
                    NotifierKind::Webhook(Webhook {
                        url,
                        format,
                        headers,
                        timeout,
                        retries,
                    })
                })
            }
            (None, Some(argv)) => {
                let argv = cx.argv(&format!("{p}.exec"), &argv, None);
                let timeout = cx.seconds(&format!("{p}.timeout_seconds"), n.timeout_seconds, 10, 1);
                argv.map(|argv| NotifierKind::Exec { argv, timeout })
            }
        };
        if cx.issues.len() > before {
            continue;
        }
        let Some(kind) = kind else { continue };
        let (what, key_src) = match &kind {
            NotifierKind::Webhook(w) => (
                format!("webhook {}", crate::http_client::origin(&w.url)),
                format!("webhook {} {}", w.format.as_str(), w.url),
            ),
            NotifierKind::Exec { argv, .. } => (
                format!("exec {}", argv[0]),
                format!("exec {}", argv.join("\u{0}")),
            ),
        };
        let mut key = format!("{:08x}", crate::util::fnv1a(&key_src));
        if let Some(first) = out.iter().find(|n: &&Notifier| n.key == key) {
            cx.warn(
                &p,
                format!(
                    "sends to the same destination as {}: every event would be sent twice",
                    first.name
                ),
            );
            // each keeps its own undelivered notifications
            key = format!("{key}-{i}");
        }
        out.push(Notifier {
            name: format!("{p} {what}"),
            key,
            kind,
            events,
        });
    }
    out
}

pub(super) fn heartbeat(cx: &mut Ctx, raw: Option<RawHeartbeat>) -> Option<Heartbeat> {
    let raw = raw?;
    let url = url(
        cx,
        "heartbeat.url",
        raw.url.as_deref(),
        "https://hc-ping.com/${HC_UUID}",
    );
    let timeout = short_timeout(cx, "heartbeat.timeout_seconds", raw.timeout_seconds, 5);
    let url = url?;
    // a trailing slash would double with /start and /fail
    let url = match url.split_once('?') {
        Some((path, q)) => format!("{}?{q}", path.trim_end_matches('/')),
        None => url.trim_end_matches('/').to_string(),
    };
    Some(Heartbeat {
        url,
        send_start: raw.send_start.unwrap_or(false),
        timeout,
    })
}

pub(super) fn metrics(cx: &mut Ctx, raw: Option<RawMetrics>) -> MetricsConfig {
    let Some(raw) = raw else {
        return MetricsConfig::default();
    };
    let textfile = raw
        .textfile
        .as_deref()
        .and_then(|f| cx.file_path("metrics.textfile", f));
    if let Some(f) = &textfile {
        // its directory is often writable by the node exporter's user: what stands there is
        // refused at each write (an error line), never a reason to stop checking
        cx.our_file(
            "metrics.textfile",
            f,
            "the metrics cannot be written there (an error line each pass; checks and actions go on)",
        );
        if f.extension().and_then(|e| e.to_str()) != Some("prom") {
            cx.warn(
                "metrics.textfile",
                "node exporter's textfile collector only reads files ending in .prom",
            );
        }
    }
    let listen = raw.listen.as_deref().and_then(|l| {
        let l = cx.expand("metrics.listen", l)?;
        match l.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let shown = cx.show(&l);
                cx.err(
                    "metrics.listen",
                    format!("{shown} is not an address: write IP:PORT, e.g. 127.0.0.1:9798"),
                );
                None
            }
        }
    });
    if let Some(a) = listen.filter(|a| !a.ip().is_loopback()) {
        cx.warn(
            "metrics.listen",
            format!(
                "{a} can be reached from other hosts: the status page (/ and /status) shows every target's name and last reason to whoever connects (read only); keep it on 127.0.0.1 and put a reverse proxy that authenticates in front if others need it"
            ),
        );
    }
    if textfile.is_none() && listen.is_none() && cx.issues.is_empty() {
        cx.warn(
            "metrics",
            "has neither textfile nor listen: no metrics are written",
        );
    }
    MetricsConfig { textfile, listen }
}
