//! `test-config`: a readable summary of what the config means after defaults.

use crate::config::{Action, Config, Policy};
use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

fn policy_line(p: &Policy) -> String {
    let cooldown = if p.restart_cooldown.is_zero() {
        "no cooldown".to_string()
    } else {
        format!("restart_cooldown {}s", p.restart_cooldown.as_secs())
    };
    let mut line = format!(
        "fail_threshold {}, {cooldown}, max_restarts_per_hour {}",
        p.fail_threshold, p.max_restarts_per_hour
    );
    if !p.restart_grace.is_zero() {
        let _ = write!(line, ", restart_grace {}s", p.restart_grace.as_secs());
    }
    if !p.backoff_initial.is_zero() {
        let max = if p.backoff_max.is_zero() {
            "no cap".to_string()
        } else {
            format!("max {}s", p.backoff_max.as_secs())
        };
        let _ = write!(
            line,
            ", backoff {}s x{} ({max})",
            p.backoff_initial.as_secs(),
            p.backoff_multiplier
        );
    }
    if p.give_up_after_restarts > 0 {
        let _ = write!(
            line,
            ", give up after {} restarts",
            p.give_up_after_restarts
        );
    }
    line
}

/// What an http check accepts, after defaults.
fn http_details(h: &crate::config::HttpCheck) -> String {
    let mut parts = vec![if h.expect_status.is_empty() {
        "healthy on 2xx/3xx".to_string()
    } else {
        let codes: Vec<String> = h.expect_status.iter().map(u16::to_string).collect();
        format!("healthy on {}", codes.join(", "))
    }];
    if let Some(b) = &h.body_contains {
        parts.push(format!("body contains {b:?}"));
    }
    if !h.headers.is_empty() {
        let names: Vec<&str> = h.headers.iter().map(|(k, _)| k.as_str()).collect();
        parts.push(format!("headers {}", names.join(", ")));
    }
    if let Some(v) = h.ip_version {
        parts.push(format!("IPv{v} only"));
    }
    if h.url.starts_with("https://") {
        parts.push(match (&h.ca_file, h.tls_verify) {
            (_, false) => "TLS not verified".to_string(),
            (Some(f), true) => format!("TLS verified against {}", f.display()),
            (None, true) => "TLS verified (Mozilla roots)".to_string(),
        });
    }
    parts.push(format!("body read up to {} bytes", h.max_body_bytes));
    parts.join(", ")
}

/// `p` as the summary shows it: relative to the config's directory when under it.
fn shown_path(c: &Config, p: &Path) -> String {
    let dir = c.source.parent().unwrap_or(Path::new(""));
    match p.strip_prefix(dir) {
        Ok(rel) if !dir.as_os_str().is_empty() => rel.display().to_string(),
        _ => p.display().to_string(),
    }
}

/// What each `include:` glob read, in order, and what it skipped.
fn include_lines(s: &mut String, c: &Config) {
    for g in &c.includes {
        let files: Vec<String> = g.files.iter().map(|f| shown_path(c, f)).collect();
        let _ = match files.len() {
            0 => writeln!(s, "include {:?}: matches no file", g.pattern),
            n => writeln!(
                s,
                "include {:?}: {n} file{}, read in this order: {}",
                g.pattern,
                if n == 1 { "" } else { "s" },
                files.join(", ")
            ),
        };
        for (f, why) in &g.skipped {
            let _ = writeln!(
                s,
                "include {:?}: skipped {} ({why})",
                g.pattern,
                shown_path(c, f)
            );
        }
    }
}

/// What a tls_cert check fails on, after defaults.
fn tls_cert_details(t: &crate::config::TlsCertCheck) -> String {
    let name = if t.server_name.parse::<std::net::IpAddr>().is_ok() {
        format!("certificate must be for {} (IP: no SNI)", t.server_name)
    } else {
        format!("certificate must be for {} (also the SNI)", t.server_name)
    };
    let expiry = match t.min_days_left {
        0 => "fails once expired".to_string(),
        1 => "fails 1 day before expiry".to_string(),
        n => format!("fails {n} days before expiry"),
    };
    let roots = match &t.ca_file {
        Some(f) => format!("verified against {} only", f.display()),
        None => "verified against the Mozilla roots".to_string(),
    };
    format!("{name}, {roots}, {expiry}")
}

/// The summary text (already redacted).
/// The summary of `test-config`. `due`: the state file and the time, to say when targets
/// with an interval of their own are next checked (None: the state could not be read).
pub fn render(c: &Config, due: Option<(&crate::state::StateFile, SystemTime)>) -> String {
    let r = &c.redactor;
    let enabled = c.enabled_targets().count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: valid, {} target{} ({enabled} enabled, {} disabled)",
        c.source.display(),
        c.targets.len(),
        if c.targets.len() == 1 { "" } else { "s" },
        c.targets.len() - enabled
    );
    let level = c
        .log_level
        .map(|l| format!("{l:?}").to_lowercase())
        .unwrap_or_else(|| "info".into());
    let _ = writeln!(
        s,
        "settings: interval {}s, check timeout {}s, max_parallel {}, log_level {level}, log_checks {}",
        c.interval.as_secs(),
        c.timeout.as_secs(),
        c.max_parallel,
        c.log_checks.as_str()
    );
    let _ = writeln!(
        s,
        "state: {} (lock {})",
        c.state_file.display(),
        c.lock_file.display()
    );
    let _ = writeln!(s, "control socket (run): {}", c.control_socket.display());
    let _ = writeln!(s, "default policy: {}", policy_line(&c.default_policy));
    for n in &c.notify {
        let events: Vec<&str> = n.events.iter().map(|e| e.as_str()).collect();
        let how = match &n.kind {
            crate::config::NotifierKind::Webhook(w) => format!(
                "format {}, timeout {}s, retries {}{}",
                w.format.as_str(),
                w.timeout.as_secs(),
                w.retries,
                if w.headers.is_empty() {
                    String::new()
                } else {
                    let names: Vec<&str> = w.headers.iter().map(|(k, _)| k.as_str()).collect();
                    format!(", headers {}", names.join(", "))
                }
            ),
            crate::config::NotifierKind::Exec { argv, timeout } => {
                format!("{}, timeout {}s", r.argv(argv), timeout.as_secs())
            }
        };
        let _ = writeln!(s, "notify: {} ({how}): {}", n.name, events.join(", "));
    }
    if let Some(hb) = &c.heartbeat {
        let _ = writeln!(
            s,
            "heartbeat: {}{} after each pass (/fail when a target fails), timeout {}s",
            crate::http_client::origin(&hb.url),
            if hb.send_start { " (with /start)" } else { "" },
            hb.timeout.as_secs()
        );
    }
    if let Some(f) = &c.metrics.textfile {
        let _ = writeln!(s, "metrics: textfile {}", f.display());
    }
    if let Some(a) = &c.metrics.listen {
        let _ = writeln!(
            s,
            "metrics: http://{a}/metrics and /healthz, status page http://{a}/ and /status (run only, read only)"
        );
    }
    if let Some(every) = c.reminder_every {
        let _ = writeln!(
            s,
            "reminders: every {}s while a target stays down",
            every.as_secs()
        );
    }
    include_lines(&mut s, c);
    // looked up once per dependency: a long chain of targets stays linear
    let disabled: std::collections::HashSet<&str> = c
        .targets
        .iter()
        .filter(|t| !t.enabled)
        .map(|t| t.name.as_str())
        .collect();
    for t in &c.targets {
        let _ = writeln!(s);
        // with `include:`, every target says which file it is in
        let mut notes: Vec<String> = Vec::new();
        if !t.enabled {
            notes.push("disabled".into());
        }
        if !c.includes.is_empty() {
            notes.push(format!("from {}", shown_path(c, &t.origin.file)));
        }
        let _ = writeln!(
            s,
            "target {}{}",
            t.name,
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            }
        );
        if !t.depends_on.is_empty() {
            let deps: Vec<String> = t
                .depends_on
                .iter()
                .map(|d| {
                    let disabled = disabled.contains(d.as_str());
                    if disabled {
                        format!("{d} (disabled: counts as healthy)")
                    } else {
                        d.clone()
                    }
                })
                .collect();
            let _ = writeln!(
                s,
                "  depends on: {} (while one is down, this target's action is held)",
                deps.join(", ")
            );
        }
        if let Some(every) = t.interval {
            let next = match due.map(|(st, now)| {
                let prev = st.targets.get(&t.name).cloned().unwrap_or_default();
                crate::policy::next_due(&prev, t.interval, c.interval, t.policy.restart_grace, now)
                    .map(|at| (at, at.duration_since(now).unwrap_or_default()))
            }) {
                Some(Some((at, wait))) => format!(
                    "next check at {} (in {}s)",
                    crate::util::rfc3339(at),
                    wait.as_secs()
                ),
                Some(None) => "next check on the next pass".to_string(),
                None => "the state file cannot be read: next check unknown".to_string(),
            };
            let _ = writeln!(
                s,
                "  checked every {}s (its own interval_seconds); {next}",
                every.as_secs()
            );
        }
        let _ = writeln!(s, "  checks (all must pass):");
        let metrics = c.metrics.textfile.is_some() || c.metrics.listen.is_some();
        for (i, (ch, series)) in t.checks.iter().zip(t.check_series()).enumerate() {
            // its `name:` first, as logs call it; with metrics, the `check` label of its series
            let _ = writeln!(
                s,
                "    {}. {}{}, timeout {}s{}",
                i + 1,
                ch.name
                    .as_ref()
                    .map(|n| format!("{n}: "))
                    .unwrap_or_default(),
                ch.check.describe(r),
                ch.timeout.as_secs(),
                if metrics {
                    format!(" (metrics: check=\"{series}\")")
                } else {
                    String::new()
                }
            );
            match &ch.check {
                crate::config::Check::Command {
                    run_as: Some(u), ..
                } => {
                    let _ = writeln!(s, "       runs {}", u.summary());
                }
                crate::config::Check::Http(h) => {
                    let _ = writeln!(s, "       {}", http_details(h));
                }
                crate::config::Check::TlsCert(t) => {
                    let _ = writeln!(s, "       {}", tls_cert_details(t));
                }
                _ => {}
            }
        }
        let _ = writeln!(s, "  policy: {}", policy_line(&t.policy));
        if let Some(g) = &t.on_give_up {
            let _ = writeln!(
                s,
                "  on_give_up: {}, timeout {}s{}",
                r.argv(&g.argv),
                g.timeout.as_secs(),
                g.run_as
                    .as_ref()
                    .map(|u| format!(", {}", u.summary()))
                    .unwrap_or_default()
            );
        }
        match &t.action {
            Action::None => {
                let _ = writeln!(s, "  action: none (monitor only)");
            }
            Action::Exec(e) => {
                let _ = writeln!(s, "  action: exec");
                if let Some(u) = &e.run_as {
                    let _ = writeln!(s, "    runs {} (start, restart and stop)", u.summary());
                }
                if let Some(a) = &e.stop {
                    let _ = writeln!(s, "    stop (before start): {}", r.argv(a));
                }
                if let Some(a) = &e.start {
                    let _ = writeln!(s, "    start (process not running): {}", r.argv(a));
                }
                if let Some(a) = &e.restart {
                    let _ = writeln!(s, "    restart (otherwise): {}", r.argv(a));
                }
                let mut opts = vec![format!("timeout {}s", e.timeout.as_secs())];
                if e.detach {
                    opts.push(match &e.log_file {
                        Some(f) => format!("detached, output to {}", f.display()),
                        None => "detached, output to /dev/null".into(),
                    });
                }
                if let Some(cwd) = &e.cwd {
                    opts.push(format!("cwd {}", cwd.display()));
                }
                if !e.env.is_empty() {
                    let keys: Vec<&str> = e.env.keys().map(String::as_str).collect();
                    opts.push(format!("env {}", keys.join(", ")));
                }
                let _ = writeln!(s, "    {}", opts.join(", "));
            }
            Action::Docker(d) => {
                let _ = writeln!(
                    s,
                    "  action: docker {} {} (Docker API on {}; stop timeout {}s, timeout {}s)",
                    d.method.as_str(),
                    d.container,
                    d.socket.display(),
                    d.stop_timeout,
                    d.timeout.as_secs()
                );
            }
            Action::Systemd(u) => {
                let _ = writeln!(
                    s,
                    "  action: {} --no-ask-password {} {}, timeout {}s",
                    c.systemctl_path,
                    u.method.as_str(),
                    u.unit,
                    u.timeout.as_secs()
                );
            }
        }
    }
    // a path or a name may hold a terminal escape: shown escaped, line breaks kept
    crate::util::printable_lines(&r.redact(&s))
}
