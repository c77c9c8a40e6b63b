//! The status pages `run` serves on `metrics.listen` beside `/metrics`: `/status`, the
//! `status --json` document ([`crate::status::json`], the same text), and `/`, a page for
//! people: every target, its status in colour and in words, since when, its last check and
//! reason, and what holds its next action back. The page refreshes itself (`<meta
//! http-equiv="refresh">`, every pass interval, 5 to 60 s) and needs no script: the server
//! sends a Content-Security-Policy that forbids all of them ([`crate::metrics`]).
//!
//! The daemon [`publish`]es its state after each pass (and after each operator's verb); each
//! request renders the report from it at the time of the request, so the ages, `stale` and
//! `healthy` are as of the request: a hung loop shows as stale, never as fresh news.
//!
//! **Nothing from the config or the state reaches the page unescaped.** A target's name comes
//! from the config, a reason from a check's output, which may hold anything: every such
//! string goes through [`Text`], which masks the secrets (as `status` does), shows control and
//! invisible characters as escapes (as the table does), then escapes it for HTML.

use crate::config::Config;
use crate::metrics::{Shared, StatusPages};
use crate::redact::Redactor;
use crate::state::StateFile;
use crate::status::{self, Report, Row};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What the daemon last published: its config and its state, as they were then.
#[derive(Debug)]
struct Snapshot {
    config: Config,
    state: StateFile,
}

impl StatusPages for Snapshot {
    fn json(&self, now: SystemTime) -> Result<String, String> {
        status::json(
            &self.config,
            &status::report(&self.config, &self.state, now),
        )
    }

    fn html(&self, now: SystemTime) -> String {
        page(
            &self.config,
            &status::report(&self.config, &self.state, now),
            now,
        )
    }
}

/// Show `config` and `st` on `/` and `/status` from now on: the daemon calls it after each
/// pass, and after each operator's verb that changed its state. Without a server answering
/// (no `metrics.listen`, or it could not be bound) nothing is kept.
pub fn publish(shared: &Mutex<Shared>, config: &Config, st: &StateFile) {
    let Ok(mut sh) = shared.lock() else {
        return;
    };
    if sh.serving {
        sh.pages = Some(Arc::new(Snapshot {
            config: config.clone(),
            state: st.clone(),
        }));
    }
}

/// How often the page reloads itself: every pass interval, within 5..60 s (a page that
/// reloads every second is a page nobody can read; one a minute old is old news).
pub fn refresh(config: &Config) -> u64 {
    config.interval.as_secs().clamp(5, 60)
}

/// `s` escaped for HTML text and attribute values (quoted with `"`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes every string from the config or the state onto the page: secrets masked first (so
/// no escaped form slips past the mask), then control and invisible characters shown as
/// escapes (line breaks kept), then escaped for HTML. No such string reaches the page any
/// other way.
struct Text<'a>(&'a Redactor);

impl Text<'_> {
    fn of(&self, s: &str) -> String {
        escape(&crate::util::printable_lines(&self.0.redact(s)))
    }
}

/// How a status looks: its CSS class, a sign and its words (never the colour alone).
fn look(status: &str) -> (&'static str, &'static str, &'static str) {
    match status {
        "healthy" => ("ok", "\u{2714}", "healthy"),
        "degraded" => ("warn", "\u{25B2}", "degraded"),
        "failed" => ("bad", "\u{2716}", "failed"),
        "gave_up" => ("dead", "\u{2716}", "gave up"),
        _ => ("none", "?", "unknown"),
    }
}

/// A time as people read it, "3m ago" (or "in 3m"), with the absolute time (UTC) in its
/// title and `datetime`.
fn when(t: Option<SystemTime>, now: SystemTime) -> String {
    let Some(t) = t else {
        return "<span class=\"dim\">never</span>".to_string();
    };
    let words = match now.duration_since(t) {
        Ok(d) => format!("{} ago", crate::util::human_duration(d)),
        Err(e) if e.duration() < Duration::from_secs(1) => "now".to_string(),
        Err(e) => format!("in {}", crate::util::human_duration(e.duration())),
    };
    let exact = crate::util::rfc3339(t);
    let readable = format!(
        "{} UTC",
        exact.get(..19).unwrap_or(&exact).replacen('T', " ", 1)
    );
    format!("<time datetime=\"{exact}\" title=\"{readable}\">{words}</time>")
}

/// `now` as a clock time, "02:31:07 UTC", with the whole date in its title.
fn clock(now: SystemTime) -> String {
    let exact = crate::util::rfc3339(now);
    format!(
        "<time datetime=\"{exact}\" title=\"{exact}\">{} UTC</time>",
        exact.get(11..19).unwrap_or(&exact)
    )
}

const STYLE: &str = "
:root{color-scheme:light dark;--fg:#1f2328;--dim:#59636e;--bg:#fff;--line:#d1d9e0;--head:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--dim:#9198a1;--bg:#0d1117;--line:#3d444d;--head:#151b23}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1400px;margin:0 auto}
h1{font-size:1.3rem;margin:0 0 .25rem}
.dim,small{color:var(--dim)}
.summary{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin:.5rem 0 1rem}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;vertical-align:top;padding:.5rem .6rem;border-bottom:1px solid var(--line)}
th{background:var(--head);font-weight:600;white-space:nowrap}
td.name{font-weight:600;overflow-wrap:anywhere;min-width:7em}
td.name small{display:block;font-weight:400}
.reason,.wait{overflow-wrap:anywhere;white-space:pre-wrap}
td.waits{min-width:13em}
time,.nw{white-space:nowrap}
.st{display:inline-block;padding:.1rem .5rem;border-radius:1rem;font-weight:600;white-space:nowrap;border:1px solid}
.ok{color:#116329;background:#dafbe1;border-color:#4ac26b}
.warn{color:#7d4e00;background:#fff8c5;border-color:#d4a72c}
.bad{color:#a40e26;background:#ffebe9;border-color:#ff8182}
.dead{color:#fff;background:#a40e26;border-color:#a40e26}
.none{color:#424a53;background:#eff2f5;border-color:#afb8c1}
.paused{color:#0550ae;background:#ddf4ff;border-color:#54aeff}
.tag{display:inline-block;margin:.15rem .25rem 0 0;padding:0 .4rem;border-radius:.3rem;font-size:.85em;border:1px solid var(--line);white-space:nowrap}
tr.off td{opacity:.6}
footer{margin-top:1rem;font-size:.9em}
a{color:inherit}
@media (max-width:760px){
 body{padding:.6rem}
 thead{display:none}
 table,tbody,tr,td{display:block;width:100%}
 tr{border:1px solid var(--line);border-radius:.5rem;margin:0 0 .75rem;padding:.4rem .6rem}
 td{border:0;padding:.2rem 0}
 td[data-label]::before{content:attr(data-label) ': ';color:var(--dim);font-weight:400}
 td.name{font-size:1.1rem}
 td.empty{display:none}
}
";

/// The page for people: `r` as of `now`, every string of `config` and the state escaped.
pub fn page(config: &Config, r: &Report, now: SystemTime) -> String {
    let text = Text(&config.redactor);
    let host = text.of(&crate::util::hostname());
    // a paused target is not counted (as for the exit code): it is shown apart
    let enabled: Vec<&Row> = r.targets.iter().filter(|t| t.enabled).collect();
    let (paused, watched): (Vec<&Row>, Vec<&Row>) =
        enabled.iter().partition(|t| t.paused.is_some());
    let count = |s: &str| watched.iter().filter(|t| t.status == s).count();
    let mut parts: Vec<String> = Vec::new();
    for (status, words) in [
        ("failed", "failed"),
        ("gave_up", "gave up"),
        ("degraded", "degraded"),
        ("unknown", "unknown"),
        ("healthy", "healthy"),
    ] {
        let n = count(status);
        if n > 0 {
            let (class, sign, _) = look(status);
            parts.push(format!(
                "<span class=\"st {class}\">{sign} {n} {words}</span>"
            ));
        }
    }
    if !paused.is_empty() {
        parts.push(format!(
            "<span class=\"st paused\">{PAUSED} {} paused</span>",
            paused.len()
        ));
    }
    let stale = watched.iter().filter(|t| t.stale).count();
    if stale > 0 {
        parts.push(format!(
            "<span class=\"st bad\">{stale} stale: not checked for over {}</span>",
            crate::util::human_duration(Duration::from_secs(r.stale_after_seconds))
        ));
    }
    let disabled = r.targets.len() - enabled.len();
    if disabled > 0 {
        parts.push(format!("<span class=\"dim\">{disabled} disabled</span>"));
    }
    let headline = if watched.is_empty() {
        "nothing is watched: no target is enabled and not paused".to_string()
    } else if r.healthy {
        format!("all {} healthy", watched.len())
    } else {
        let down = watched
            .iter()
            .filter(|t| t.status != "healthy" || t.stale)
            .count();
        format!("{down} of {} not healthy", watched.len())
    };
    let refresh = refresh(config);
    let mut s = String::with_capacity(4096 + 1024 * r.targets.len());
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\n\
         <title>{} neon-watchdog on {host}: {headline}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>neon-watchdog on {host}</h1>\n\
         <div class=\"summary\"><strong>{headline}</strong>{}</div>\n",
        if r.healthy { "\u{2714}" } else { "\u{2716}" },
        parts.join(""),
    );
    s.push_str(
        "<table>\n<thead><tr><th>Target</th><th>Status</th><th>Since</th><th>Last check</th>\
         <th>Restarts <small>1 h / all</small></th><th>Waiting</th><th>Last reason</th></tr></thead>\n<tbody>\n",
    );
    for t in &r.targets {
        row(&mut s, &text, t, now);
    }
    let _ = write!(
        s,
        "</tbody>\n</table>\n<footer class=\"dim\">As of {}; this page reloads every {refresh} s. \
         The same as JSON: <a href=\"/status\">/status</a> (what <code>neon-watchdog status \
         --json</code> prints); Prometheus: <a href=\"/metrics\">/metrics</a>. Read only: \
         operators act with <code>neon-watchdog</code> on the host. neon-watchdog {}.</footer>\n\
         </main>\n</body>\n</html>\n",
        clock(now),
        escape(r.version),
    );
    s
}

/// One target's row. On a narrow screen each row is a card, each cell labelled by its
/// `data-label`.
fn row(s: &mut String, text: &Text, t: &Row, now: SystemTime) {
    let (class, sign, mut words) = look(t.status);
    if t.last_check.is_none() && !t.inconclusive {
        words = "not checked yet";
    }
    let mut tags = String::new();
    let mut tag = |words: &str| {
        let _ = write!(tags, " <span class=\"tag\">{words}</span>");
    };
    // disabled or paused: that is the news; what the last check found is a footnote
    let badge = if !t.enabled {
        if t.last_check.is_some() {
            tag(&format!("last check: {words}"));
        }
        "<span class=\"st none\">\u{2013} disabled</span>".to_string()
    } else if t.paused.is_some() {
        tag(&format!("last check: {words}"));
        format!("<span class=\"st paused\">{PAUSED} paused</span>")
    } else {
        format!("<span class=\"st {class}\">{sign} {words}</span>")
    };
    if t.stale {
        tag("stale: not checked lately");
    }
    if t.inconclusive {
        tag("last check inconclusive");
    }
    let mut about = String::new();
    if let Some(i) = t.interval_seconds {
        let _ = write!(
            about,
            "every {}",
            crate::util::human_duration(Duration::from_secs(i))
        );
    }
    if !t.depends_on.is_empty() {
        let names: Vec<String> = t.depends_on.iter().map(|d| text.of(d)).collect();
        if !about.is_empty() {
            about.push_str(", ");
        }
        let _ = write!(about, "needs {}", names.join(", "));
    }
    let name = if about.is_empty() {
        text.of(&t.name)
    } else {
        format!("{}<small>{about}</small>", text.of(&t.name))
    };
    let waiting = waiting(text, t, now);
    let reason = t
        .last_reason
        .as_deref()
        .map(|r| format!("<span class=\"reason\">{}</span>", text.of(r)))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "<tr class=\"{}\">\
         <td class=\"name\">{name}</td>\
         <td data-label=\"Status\">{badge}{tags}</td>\
         <td data-label=\"Since\">{}</td>\
         <td data-label=\"Last check\">{}</td>\
         <td data-label=\"Restarts (1 h / all)\" class=\"nw\">{} / {}</td>\
         {}{}</tr>",
        if t.enabled { "on" } else { "off" },
        when(t.since, now),
        when(t.last_check, now),
        t.restarts_last_hour,
        t.restarts_total,
        cell("Waiting", "waits", &waiting),
        cell("Last reason", "", &reason),
    );
}

/// The sign of a paused target.
const PAUSED: &str = "\u{2016}";

/// What holds the target's next action back ([`Row::waiting`], by the policy's rules), in
/// words, until when, and the figures; a monitor-only target whose dependency is down says so.
/// Empty when nothing does.
fn waiting(text: &Text, t: &Row, now: SystemTime) -> String {
    let Some(w) = &t.waiting else {
        return match (&t.dependency_down, t.monitor_only) {
            (Some(d), true) => format!("<span class=\"wait\">{} is down too</span>", text.of(d)),
            _ => String::new(),
        };
    };
    let what = match w.reason {
        "paused" => "paused",
        "gave_up" => "gave up",
        "grace" => "grace after an action",
        "below_threshold" => "below the fail threshold",
        "cooldown" => "cooldown",
        "backoff" => "backoff",
        "rate_limit" => "hourly cap reached",
        "dependency_down" => "held by a dependency",
        other => other,
    };
    let mut out = format!("<strong>{}</strong>", escape(what));
    if let (Some(p), "paused") = (&t.paused, w.reason) {
        let _ = write!(
            out,
            " <span class=\"nw\">since {}</span>",
            when(Some(p.since), now)
        );
    }
    match w.until {
        Some(u) => {
            let _ = write!(
                out,
                " <span class=\"nw\">ends {}</span>",
                when(Some(u), now)
            );
        }
        None if w.reason == "paused" => out.push_str(" <span class=\"nw\">until resumed</span>"),
        None => {}
    }
    let _ = write!(
        out,
        "<br><small class=\"wait\">{}</small>",
        text.of(&w.detail)
    );
    out
}

/// A cell of class `class` labelled `label` on a narrow screen, where an empty one is left
/// out; "-" on a wide one, where the columns must line up.
fn cell(label: &str, class: &str, html: &str) -> String {
    if html.is_empty() {
        format!("<td class=\"empty\" data-label=\"{label}\"><span class=\"dim\">-</span></td>")
    } else {
        format!("<td class=\"{class}\" data-label=\"{label}\">{html}</td>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Health, TargetState};

    const HOSTILE: &str = "<script>alert(1)</script> \"'&";

    fn config(interval: u64) -> Config {
        crate::config::parse(
            std::path::Path::new("/etc/nw/c.yml"),
            &format!(
                "state_file: /var/lib/nw/state.json\ninterval_seconds: {interval}\ntargets:\n  - name: web\n    checks: [{{tcp_port: 1}}]\n    action: none\n  - name: {HOSTILE:?}\n    checks: [{{command: [\"/bin/sh\", \"-c\", \"echo ${{NW_SECRET}}\"]}}]\n    action: none\n  - name: off\n    enabled: false\n    checks: [{{tcp_port: 3}}]\n    action: none\n"
            ),
            &crate::config::validate::Env {
                lookup: &|k| (k == "NW_SECRET").then(|| "hunter2-s3cr3t".to_string()),
                is_root: true,
                config_dir: "/etc/nw".into(),
            },
        )
        .unwrap()
        .config
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn state() -> StateFile {
        let mut st = StateFile::default();
        st.targets.insert(
            "web".into(),
            TargetState {
                status: Health::Healthy,
                since: Some(at(0)),
                last_check: Some(at(990)),
                ..TargetState::default()
            },
        );
        st.targets.insert(
            HOSTILE.into(),
            TargetState {
                status: Health::Failed,
                since: Some(at(820)),
                consecutive_failures: 2,
                last_reason: Some(format!(
                    "command: exit 1: {HOSTILE} hunter2-s3cr3t\n\u{1b}[2Jline two"
                )),
                last_check: Some(at(990)),
                ..TargetState::default()
            },
        );
        st
    }

    fn render(interval: u64) -> String {
        let c = config(interval);
        page(&c, &status::report(&c, &state(), at(1000)), at(1000))
    }

    #[test]
    fn names_and_reasons_are_escaped_and_masked() {
        let html = render(30);
        assert!(!html.contains("<script"), "{html}");
        assert!(
            !html.contains("hunter2") && !html.contains("s3cr3t"),
            "{html}"
        );
        let name = "&lt;script&gt;alert(1)&lt;/script&gt; &quot;&#39;&amp;";
        assert!(
            html.contains(&format!("<td class=\"name\">{name}</td>")),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "command: exit 1: {name} ***\n\\u{{1b}}[2Jline two</span>"
            )),
            "{html}"
        );
        // no attribute of ours takes a value from the config or the state unescaped: every
        // `"` on the page opens or closes one of ours
        for line in html.lines().filter(|l| l.starts_with("<tr")) {
            for attr in line.split('"').skip(1).step_by(2) {
                assert!(!attr.contains(['<', '>']), "{attr:?} in {line}");
            }
        }
    }

    #[test]
    fn statuses_have_words_and_times_have_ages_with_the_exact_time() {
        let html = render(30);
        assert!(
            html.contains("<span class=\"st ok\">\u{2714} healthy</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"st bad\">\u{2716} failed</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"st none\">\u{2013} disabled</span></td>"),
            "{html}"
        );
        assert!(
            html.contains("<strong>1 of 2 not healthy</strong>"),
            "{html}"
        );
        // since 180 s ago, checked 10 s ago; the exact time in the title
        assert!(
            html.contains("<time datetime=\"2027-01-15T08:13:40.000Z\" title=\"2027-01-15 08:13:40 UTC\">3m ago</time>"),
            "{html}"
        );
        assert!(html.contains(">10s ago</time>"), "{html}");
    }

    #[test]
    fn the_page_reloads_every_interval_within_bounds() {
        for (interval, every) in [(1, 5), (30, 30), (300, 60)] {
            assert!(
                render(interval).contains(&format!(
                    "<meta http-equiv=\"refresh\" content=\"{every}\">"
                )),
                "{interval}"
            );
        }
    }

    #[test]
    fn a_pause_and_what_holds_an_action_are_shown_with_their_ends() {
        let c = config(30);
        let mut st = state();
        let web = st.targets.get_mut("web").unwrap();
        web.paused = Some(crate::policy::Pause {
            since: at(400),
            until: Some(at(1000 + 7200)),
            reason: Some("kernel <upgrade> hunter2-s3cr3t".into()),
        });
        let hostile = st.targets.get_mut(HOSTILE).unwrap();
        let html = {
            // gave up: nothing more is done until a reset or a healthy check
            hostile.status = Health::GaveUp;
            hostile.restarts_since_healthy = 5;
            page(&c, &status::report(&c, &st, at(1000)), at(1000))
        };
        let row = |name: &str| {
            html.lines()
                .find(|l| l.contains(&format!("<td class=\"name\">{name}")))
                .unwrap_or_else(|| panic!("no row {name}:\n{html}"))
                .to_string()
        };
        let web = row("web");
        assert!(web.contains("<span class=\"st paused\">\u{2016} paused</span> <span class=\"tag\">last check: healthy</span>"), "{web}");
        assert!(web.contains("<strong>paused</strong> <span class=\"nw\">since <time datetime=\"2027-01-15T08:06:40.000Z\""), "{web}");
        assert!(web.contains(">in 2h</time></span>"), "{web}");
        assert!(
            web.contains("<small class=\"wait\">kernel &lt;upgrade&gt; ***</small>"),
            "{web}"
        );
        let hostile = row("&lt;script&gt;");
        assert!(hostile.contains("\u{2716} gave up"), "{hostile}");
        // a paused target is not counted: the one left is not healthy
        assert!(
            html.contains("<strong>1 of 1 not healthy</strong>"),
            "{html}"
        );
        assert!(html.contains("\u{2016} 1 paused</span>"), "{html}");
        assert!(!html.contains("hunter2"), "{html}");
    }
}
