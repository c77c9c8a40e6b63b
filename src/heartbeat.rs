//! Who watches the watchdog: a ping per pass to a dead man's switch (the healthchecks.io
//! convention). `url/start` when a pass begins (with `send_start`), `url` when it ends with
//! every target healthy, `url/fail` when a target failed, with a short summary as the body.
//! A failed ping is a warning line; it never changes the exit code.

use crate::config::Heartbeat;
use crate::http_client::{self, Method, Tls};
use crate::metrics::TargetReport;
use crate::policy::{TargetState, Verdict};
use crate::redact::Redactor;
use std::collections::BTreeMap;
use tracing::{debug, warn};

/// `url` with `suffix` added to its path, before any query (`.../slug?create=1` ->
/// `.../slug/start?create=1`).
fn with_suffix(url: &str, suffix: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) => format!("{}{suffix}?{query}", path.trim_end_matches('/')),
        None => format!("{url}{suffix}"),
    }
}

fn ping(hb: &Heartbeat, suffix: &str, method: Method, body: &str, r: &Redactor) {
    let url = with_suffix(&hb.url, suffix);
    let req = http_client::Request {
        method,
        url: &url,
        headers: &[],
        body: (method == Method::Post).then_some(body.as_bytes()),
        content_type: Some("text/plain; charset=utf-8"),
        timeout: hb.timeout,
        tls: Tls::Verify,
        ip_version: None,
        resolve: None,
        max_body: 1024,
        env_proxy: true,
    };
    let shown = format!("{}{suffix}", http_client::origin(&hb.url));
    match http_client::send(&req) {
        Ok(resp) if (200..300).contains(&resp.status) => {
            debug!(heartbeat = %shown, status = resp.status, "heartbeat sent")
        }
        Ok(resp) => {
            warn!(heartbeat = %shown, status = resp.status, err = %format!("HTTP {}", resp.status), "heartbeat failed")
        }
        Err(e) => warn!(heartbeat = %shown, err = %r.redact(&e), "heartbeat failed"),
    }
}

/// At the start of a pass (only with `send_start`).
pub fn start(hb: &Heartbeat, r: &Redactor) {
    if hb.send_start {
        ping(hb, "/start", Method::Get, "", r);
    }
}

/// At the end of a pass: `url` when every target is healthy, else `url/fail`, with the summary.
pub fn finish(
    hb: &Heartbeat,
    targets: &[TargetReport],
    states: &BTreeMap<String, TargetState>,
    r: &Redactor,
) {
    let healthy = targets.iter().all(|t| t.verdict.is_healthy());
    let suffix = if healthy { "" } else { "/fail" };
    ping(
        hb,
        suffix,
        Method::Post,
        &r.redact(&summary(targets, states)),
        r,
    );
}

/// The ping's body: one line, then each target that is not healthy with its reason.
fn summary(targets: &[TargetReport], states: &BTreeMap<String, TargetState>) -> String {
    let count = |f: fn(Verdict) -> bool| targets.iter().filter(|t| f(t.verdict)).count();
    let mut s = format!(
        "neon-watchdog on {}: healthy={} failing={} unknown={}",
        crate::util::hostname(),
        count(Verdict::is_healthy),
        count(|v| matches!(v, Verdict::Failing { .. })),
        count(|v| v == Verdict::Unknown),
    );
    for t in targets.iter().filter(|t| !t.verdict.is_healthy()) {
        let reason = states
            .get(&t.name)
            .and_then(|s| s.last_reason.as_deref())
            .unwrap_or("unknown");
        s.push_str(&format!("\n{}: {reason}", t.name));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_go_before_the_query() {
        assert_eq!(
            with_suffix("https://hc/ping/k/slug?create=1", "/start"),
            "https://hc/ping/k/slug/start?create=1"
        );
        assert_eq!(
            with_suffix("https://hc/ping/uuid", "/fail"),
            "https://hc/ping/uuid/fail"
        );
        assert_eq!(
            with_suffix("https://hc/ping/uuid", ""),
            "https://hc/ping/uuid"
        );
    }
}
