//! `status` (what the state file says, no check run) and `reset` (forget failures, backoff and
//! `gave_up`, so the policy acts again).
//!
//! `status --json` is a stable interface: fields are only ever added. Its shape:
//!
//! ```json
//! {"version": "0.1.0", "state_file": "/var/lib/neon-watchdog/state.json",
//!  "generated": "2026-11-23T10:00:00.000Z", "healthy": false,
//!  "targets": [{"name": "web", "enabled": true, "status": "failed",
//!    "since": "...", "consecutive_failures": 3, "restarts_last_hour": 1,
//!    "restarts_total": 4, "last_reason": "tcp_port: connection refused",
//!    "last_check": "...", "last_check_age_seconds": 12, "last_restart": "...",
//!    "transitions": [{"at": "...", "from": "degraded", "to": "failed", "reason": "..."}],
//!    "stale": false, "interval_seconds": 300, "next_check": "...",
//!    "depends_on": ["db"], "dependency_down": "db"}]}
//! ```

use crate::config::Config;
use crate::error::Error;
use crate::exit::Exit;
use crate::policy::{Health, TargetState, Transition, HOUR};
use crate::state;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};
use tracing::warn;

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub state_file: String,
    #[serde(with = "crate::util::time_rfc3339")]
    pub generated: SystemTime,
    /// Every enabled target is healthy, and checked recently (the exit code is 0).
    pub healthy: bool,
    /// A target whose last check is older than this is stale: three intervals, at least a
    /// minute.
    pub stale_after_seconds: u64,
    pub targets: Vec<Row>,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub enabled: bool,
    /// `unknown` too when the last check could not be carried out (`inconclusive`).
    pub status: &'static str,
    /// The last check could not be carried out (see `last_reason`): the status before it is
    /// not known to hold.
    pub inconclusive: bool,
    #[serde(serialize_with = "crate::util::opt_time::serialize")]
    pub since: Option<SystemTime>,
    pub consecutive_failures: u32,
    pub restarts_last_hour: usize,
    pub restarts_total: u64,
    pub last_reason: Option<String>,
    #[serde(serialize_with = "crate::util::opt_time::serialize")]
    pub last_check: Option<SystemTime>,
    pub last_check_age_seconds: Option<u64>,
    #[serde(serialize_with = "crate::util::opt_time::serialize")]
    pub last_restart: Option<SystemTime>,
    pub transitions: Vec<Transition>,
    /// The last check is older than `stale_after_seconds` (for a target with an interval of
    /// its own, three of those): the watchdog stopped checking (its timer stopped, or it is
    /// broken), so the status above is old news.
    pub stale: bool,
    /// Its own `interval_seconds`, if it has one (else it is checked on every pass).
    pub interval_seconds: Option<u64>,
    /// When it is next checked (its own interval); null: on the next pass.
    #[serde(serialize_with = "crate::util::opt_time::serialize")]
    pub next_check: Option<SystemTime>,
    /// The targets it `depends_on`.
    pub depends_on: Vec<String>,
    /// The first of those (or of theirs) that is not healthy: while it is down, this target's
    /// action is held.
    pub dependency_down: Option<String>,
    /// `action: none`: nothing to hold.
    #[serde(skip)]
    pub monitor_only: bool,
    /// Paused by an operator (`neon-watchdog pause`): not checked, nothing done, not counted.
    pub paused: Option<crate::policy::Pause>,
    /// Why the policy does not act on it now, and until when (null: nothing holds it; shown
    /// for every target that is not healthy): `paused`, `gave_up`, `grace`,
    /// `below_threshold`, `cooldown`, `backoff`, `rate_limit`, `dependency_down`.
    pub waiting: Option<crate::policy::Wait>,
    /// The last actions run for it, oldest first (what, by whom, how they ended).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<crate::policy::ActionRecord>,
    /// `status TARGET`: each check's last result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<state::CheckRecord>>,
    /// `status TARGET`: the processes its last check found, as they are now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessInfo>>,
    /// `status TARGET`: when the policy next allows an action, if it fails (null: at once).
    #[serde(
        serialize_with = "crate::util::opt_time::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_action_at: Option<SystemTime>,
}

/// The report for `config`'s targets from `st` at `now` (pure: tested below).
pub fn report(config: &Config, st: &state::StateFile, now: SystemTime) -> Report {
    let hour_ago = now.checked_sub(HOUR).unwrap_or(SystemTime::UNIX_EPOCH);
    let stale_after = stale_after(config);
    let age_of = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO);
    let down = dependencies_down(config, st);
    let targets: Vec<Row> = config
        .targets
        .iter()
        .zip(down)
        .map(|(t, dependency_down)| {
            let s = st.targets.get(&t.name).cloned().unwrap_or_default();
            let next_check = crate::policy::next_due(
                &s,
                t.interval,
                config.interval,
                t.policy.restart_grace,
                now,
            );
            let stale_after = t.interval.map_or(stale_after, |i| stale_after.max(i * 3));
            let inconclusive = s.inconclusive;
            let waiting = if matches!(t.action, crate::config::Action::None) {
                // it never acts: only a pause is news
                crate::policy::waiting(&s, &t.policy, now).filter(|w| w.reason == "paused")
            } else {
                crate::policy::waiting(&s, &t.policy, now)
            };
            let waiting = match (&dependency_down, waiting) {
                (Some(d), w)
                    if w.as_ref().is_none_or(|w| w.reason != "paused")
                        && !matches!(t.action, crate::config::Action::None) =>
                {
                    Some(crate::policy::Wait {
                        reason: "dependency_down",
                        until: None,
                        detail: format!("held while {d}, a target it depends on, is down"),
                    })
                }
                (_, w) => w,
            };
            // news only for a target that is not healthy, or paused
            let waiting = waiting
                .filter(|w| w.reason == "paused" || (s.status != Health::Healthy && !inconclusive));
            let paused = s.paused.clone().map(|mut p| {
                p.reason = p.reason.map(|r| config.redactor.redact(&r));
                p
            });
            let TargetState {
                status,
                since,
                consecutive_failures,
                last_reason,
                last_check,
                restarts,
                last_restart,
                restarts_total,
                transitions,
                actions,
                ..
            } = s;
            Row {
                name: t.name.clone(),
                enabled: t.enabled,
                // what was known before a check that could not be carried out is not known now
                status: if inconclusive {
                    Health::Unknown.as_str()
                } else {
                    status.as_str()
                },
                inconclusive,
                since,
                consecutive_failures,
                restarts_last_hour: restarts.iter().filter(|r| **r > hour_ago).count(),
                restarts_total,
                last_reason: last_reason.map(|r| config.redactor.redact(&r)),
                last_check,
                last_check_age_seconds: last_check.map(|c| age_of(c).as_secs()),
                stale: t.enabled
                    && s.paused.is_none()
                    && last_check.is_some_and(|c| age_of(c) > stale_after),
                last_restart,
                interval_seconds: t.interval.map(|i| i.as_secs()),
                next_check,
                depends_on: t.depends_on.clone(),
                dependency_down,
                monitor_only: matches!(t.action, crate::config::Action::None),
                paused,
                waiting,
                actions: actions
                    .into_iter()
                    .map(|mut a| {
                        a.error = a.error.map(|e| config.redactor.redact(&e));
                        a
                    })
                    .collect(),
                checks: None,
                processes: None,
                next_action_at: None,
                // masked here, before any formatting, like the last reason (a state file
                // written by an older version may hold anything)
                transitions: transitions
                    .into_iter()
                    .map(|mut tr| {
                        tr.reason = tr.reason.map(|r| config.redactor.redact(&r));
                        tr
                    })
                    .collect(),
            }
        })
        .collect();
    // a paused target does not count
    let healthy = targets
        .iter()
        .filter(|r| r.enabled && r.paused.is_none())
        .all(|r| r.status == Health::Healthy.as_str() && !r.stale);
    Report {
        version: env!("CARGO_PKG_VERSION"),
        state_file: config.state_file.display().to_string(),
        generated: now,
        healthy,
        stale_after_seconds: stale_after.as_secs(),
        targets,
    }
}

/// For each target of the config, the first target it depends on (or they do) that the state
/// file says is down (paused or failing), as the last pass saw them (a disabled one counts as
/// healthy).
fn dependencies_down(config: &Config, st: &state::StateFile) -> Vec<Option<String>> {
    let names: Vec<Option<&str>> = config
        .targets
        .iter()
        .map(|t| t.enabled.then_some(t.name.as_str()))
        .collect();
    let deps: Vec<&[String]> = config.targets.iter().map(|t| &t.depends_on[..]).collect();
    let healthy: Vec<bool> = config
        .targets
        .iter()
        .map(|t| {
            // down as far as the state says: paused, failing, or its last check inconclusive
            // (the engine holds on those too); never checked (or the state unreadable) is
            // not news of a failure
            let down = st.targets.get(&t.name).is_some_and(|s| {
                s.paused.is_some()
                    || s.inconclusive
                    || matches!(s.status, Health::Degraded | Health::Failed | Health::GaveUp)
            });
            !t.enabled || !down
        })
        .collect();
    crate::policy::dependencies_down_by_name(&names, &deps, &healthy)
        .into_iter()
        .zip(&healthy)
        .map(|(d, healthy)| {
            // held only while it fails itself
            d.filter(|_| !healthy)
                .map(|j| config.targets[j].name.clone())
        })
        .collect()
}

/// When a target's last check is old news: three intervals (the timer's tick, or `run`'s
/// loop), at least a minute.
pub fn stale_after(config: &Config) -> Duration {
    (config.interval * 3).max(Duration::from_secs(60))
}

use crate::util::human_duration as age;

/// The table a human reads.
pub fn table(r: &Report, now: SystemTime) -> String {
    let ago = |t: Option<SystemTime>| {
        t.map(|t| {
            format!(
                "{} ago",
                age(now.duration_since(t).unwrap_or(Duration::ZERO))
            )
        })
        .unwrap_or_else(|| "never".to_string())
    };
    let header = [
        "TARGET",
        "STATUS",
        "SINCE",
        "FAILURES",
        "RESTARTS/1H",
        "LAST CHECK",
        "WAITS",
        "LAST REASON",
    ];
    let rows: Vec<[String; 8]> = r
        .targets
        .iter()
        .map(|t| {
            let mut status = if !t.enabled {
                format!("{} (disabled)", t.status)
            } else if t.paused.is_some() {
                // what it is now is not known: the last check's word comes second
                format!("paused (last: {})", t.status)
            } else if t.stale {
                format!("{} (stale)", t.status)
            } else {
                t.status.to_string()
            };
            match (&t.dependency_down, t.monitor_only) {
                (Some(d), false) => {
                    let _ = write!(status, " (held: {d} down)");
                }
                (Some(d), true) => {
                    let _ = write!(status, " ({d} down too)");
                }
                (None, _) => {}
            }
            let mut last_check = ago(t.last_check);
            if let Some(i) = t.interval_seconds {
                let _ = write!(last_check, " (every {})", age(Duration::from_secs(i)));
            }
            // a check's output may hold terminal escapes, and a newline would forge a row:
            // every cell is shown escaped
            [
                t.name.clone(),
                status,
                ago(t.since),
                t.consecutive_failures.to_string(),
                t.restarts_last_hour.to_string(),
                last_check,
                waits(t.waiting.as_ref(), now),
                t.last_reason.clone().unwrap_or_else(|| "-".to_string()),
            ]
            .map(|cell| crate::util::printable(&cell))
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &header.map(String::from));
    for row in &rows {
        line(&mut out, row);
    }
    out
}

/// The WAITS cell: why the policy does not act, and for how long: `cooldown 45s`,
/// `rate_limit 32m`, `gave_up`, `paused 2h`, `paused`.
fn waits(w: Option<&crate::policy::Wait>, now: SystemTime) -> String {
    match w {
        None => "-".to_string(),
        Some(w) => match w.until {
            Some(u) => format!("{} {}", w.reason, age(remaining(u, now))),
            None => w.reason.to_string(),
        },
    }
}

/// A time for people, with how far it is from `now`: "2026-12-08T10:00:00Z (in 2h)",
/// "... (5m ago)" (a wait still to come rounded up: it never reads "in 0s").
pub fn when(t: SystemTime, now: SystemTime) -> String {
    let rel = match now.duration_since(t) {
        Ok(d) => format!("{} ago", age(d)),
        Err(_) => format!("in {}", age(remaining(t, now))),
    };
    format!("{} ({rel})", crate::util::rfc3339_seconds(t))
}

/// The time left until `u`, rounded up to the second: a wait that still holds never reads 0s.
pub fn remaining(u: SystemTime, now: SystemTime) -> Duration {
    let d = u.duration_since(now).unwrap_or(Duration::ZERO);
    if d.subsec_nanos() > 0 {
        Duration::from_secs(d.as_secs() + 1)
    } else {
        d
    }
}

/// How `status` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Nagios,
}

/// The monitoring-plugin convention's states (Nagios, Icinga, Zabbix, Sensu).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Plugin {
    fn as_str(self) -> &'static str {
        match self {
            Plugin::Ok => "OK",
            Plugin::Warning => "WARNING",
            Plugin::Critical => "CRITICAL",
            Plugin::Unknown => "UNKNOWN",
        }
    }

    pub fn exit(self) -> Exit {
        match self {
            Plugin::Ok => Exit::Ok,
            Plugin::Warning => Exit::Internal,
            Plugin::Critical => Exit::Failing,
            Plugin::Unknown => Exit::PluginUnknown,
        }
    }
}

/// Text for a plugin line: one line, no `|` (it starts the performance data), no control or
/// invisible character (a check's output may hold terminal escapes: they are shown escaped,
/// as in the table, by [`crate::util::printable`]); for names as for reasons.
fn plugin_text(s: &str) -> String {
    crate::util::printable(s).replace('|', "/")
}

/// `status --format nagios` when the config cannot be loaded: UNKNOWN, with the first problem.
pub fn nagios_config_error(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or_default();
    let more = msg.lines().count().saturating_sub(1);
    let more = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!(
        "NEON-WATCHDOG UNKNOWN - config cannot be used: {}{more}",
        plugin_text(first)
    )
}

/// `status --format nagios`: one status line with performance data, then a line per target
/// that is not healthy; and the plugin state. `unreadable`: why the state file could not be
/// used, if it could not.
///
/// - UNKNOWN: the state file cannot be read, a target's last check is stale (the watchdog
///   stopped: what it said is old news), or nothing was checked yet;
/// - CRITICAL: a target is `failed` or `gave_up`;
/// - WARNING: a target is `degraded` (failing, below its threshold or in its grace period);
/// - OK: every enabled target healthy and checked recently.
pub fn nagios(r: &Report, unreadable: Option<&str>) -> (String, Plugin) {
    // a paused target is neither good nor bad news: listed, not judged
    let paused: Vec<&Row> = r
        .targets
        .iter()
        .filter(|t| t.enabled && t.paused.is_some())
        .collect();
    let enabled: Vec<&Row> = r
        .targets
        .iter()
        .filter(|t| t.enabled && t.paused.is_none())
        .collect();
    let count = |s: Health| enabled.iter().filter(|t| t.status == s.as_str()).count();
    let (healthy, degraded) = (count(Health::Healthy), count(Health::Degraded));
    let (failed, gave_up) = (count(Health::Failed), count(Health::GaveUp));
    let never = count(Health::Unknown);
    let stale: Vec<&str> = enabled
        .iter()
        .filter(|t| t.stale)
        .map(|t| t.name.as_str())
        .collect();
    let n = enabled.len();
    let down: Vec<String> = enabled
        .iter()
        .filter(|t| t.status == Health::Failed.as_str() || t.status == Health::GaveUp.as_str())
        .map(|t| match &t.last_reason {
            Some(reason) => format!("{} ({})", t.name, plugin_text(reason)),
            None => t.name.clone(),
        })
        .collect();
    let (state, summary) = if let Some(why) = unreadable {
        // `status` reads only: what a pass would do about it is not this line's news
        let why = why.split("; going on").next().unwrap_or(why);
        (
            Plugin::Unknown,
            format!("state file unusable: {}", plugin_text(why)),
        )
    } else if !stale.is_empty() {
        (
            Plugin::Unknown,
            format!(
                "stale: {} not checked for over {}s; is the neon-watchdog timer running?",
                stale.join(", "),
                r.stale_after_seconds
            ),
        )
    } else if !down.is_empty() {
        (
            Plugin::Critical,
            format!("{} of {n} targets failing: {}", down.len(), down.join(", ")),
        )
    } else if degraded > 0 {
        let names: Vec<&str> = enabled
            .iter()
            .filter(|t| t.status == Health::Degraded.as_str())
            .map(|t| t.name.as_str())
            .collect();
        (
            Plugin::Warning,
            format!("{degraded} of {n} targets degraded: {}", names.join(", ")),
        )
    } else if never > 0 {
        let names: Vec<&str> = enabled
            .iter()
            .filter(|t| t.status == Health::Unknown.as_str())
            .map(|t| t.name.as_str())
            .collect();
        (
            Plugin::Unknown,
            format!(
                "{never} of {n} targets not checked yet or not checkable: {}",
                names.join(", ")
            ),
        )
    } else if n == 0 && !paused.is_empty() {
        (
            Plugin::Ok,
            format!("every target is paused ({})", names(&paused)),
        )
    } else if n == 0 {
        (
            Plugin::Unknown,
            "no target is enabled: nothing is watched".to_string(),
        )
    } else if !paused.is_empty() {
        (
            Plugin::Ok,
            format!(
                "{healthy} of {n} targets healthy, {} paused ({})",
                paused.len(),
                names(&paused)
            ),
        )
    } else {
        (Plugin::Ok, format!("{healthy} of {n} targets healthy"))
    };
    // names may hold `|` too: the whole text goes through plugin_text
    let summary = plugin_text(&summary);
    let disabled = r.targets.len() - n - paused.len();
    let mut out = format!(
        "NEON-WATCHDOG {} - {summary} | healthy={healthy};;;0;{n} degraded={degraded};;;0;{n} failed={failed};;;0;{n} gave_up={gave_up};;;0;{n} unknown={never};;;0;{n} stale={};;;0;{n} disabled={disabled} paused={}\n",
        state.as_str(),
        stale.len(),
        paused.len()
    );
    for t in enabled
        .iter()
        .filter(|t| t.status != Health::Healthy.as_str())
    {
        let waits = t
            .waiting
            .as_ref()
            .filter(|w| w.reason != t.status)
            .map(|w| format!(" (waits: {})", plugin_text(&nagios_wait(w))))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}: {}{waits}{}",
            plugin_text(&t.name),
            t.status,
            t.last_reason
                .as_deref()
                .map(|r| format!(" - {}", plugin_text(r)))
                .unwrap_or_default()
        );
    }
    for t in &paused {
        let p = t.paused.as_ref();
        let _ = writeln!(
            out,
            "{}: paused since {}{}{}",
            plugin_text(&t.name),
            p.map(|p| crate::util::rfc3339_seconds(p.since))
                .unwrap_or_default(),
            p.and_then(|p| p.until)
                .map(|u| format!(" until {}", crate::util::rfc3339_seconds(u)))
                .unwrap_or_default(),
            p.and_then(|p| p.reason.as_deref())
                .map(|r| format!(" - {}", plugin_text(r)))
                .unwrap_or_default()
        );
    }
    (out, state)
}

/// "paused: db, cache" style list of names.
fn names(rows: &[&Row]) -> String {
    rows.iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// "cooldown until 2026-12-08T10:00:00Z" for the plugin's per-target line.
fn nagios_wait(w: &crate::policy::Wait) -> String {
    match w.until {
        Some(u) => format!("{} until {}", w.reason, crate::util::rfc3339_seconds(u)),
        None => w.reason.to_string(),
    }
}

/// What `status` can tell of the state file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// There is something at the path (loading it says whether it is usable).
    Present,
    /// Nothing at the path: no pass has saved state there.
    Missing,
    /// Its directory cannot be searched by this user (the package's is root's only).
    Denied,
}

fn seen(path: &std::path::Path) -> Seen {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Seen::Missing,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Seen::Denied,
        // a file this user may see but not read (0600 in a directory it can enter): asked of
        // the kernel without opening anything
        Ok(m)
            if m.is_file()
                && nix::unistd::access(path, nix::unistd::AccessFlags::R_OK)
                    == Err(nix::errno::Errno::EACCES) =>
        {
            Seen::Denied
        }
        _ => Seen::Present,
    }
}

/// Below the table: why enabled targets show `never` as their last check, and what to do
/// (empty when every enabled target was checked). No state file: no pass ran with this
/// config (the timer is not running, or runs another config, whose state is elsewhere).
pub fn never_checked(config: &Config, r: &Report, state: Seen) -> String {
    let never: Vec<&str> = r
        .targets
        .iter()
        .filter(|t| t.enabled && t.last_check.is_none())
        .map(|t| t.name.as_str())
        .collect();
    if never.is_empty() {
        return String::new();
    }
    let (file, cfg) = (config.state_file.display(), config.source.display());
    match state {
        Seen::Missing => format!(
            "\nNever checked: no state file {file}: no pass has run with this config yet.\n\
             - The passes come from the timer: is it enabled and running? `systemctl enable --now \
             neon-watchdog.timer`, then `systemctl status neon-watchdog.timer` (the loop instead: \
             `systemctl status neon-watchdog-daemon.service`).\n\
             - A timer running another config saves its state where that config's state_file \
             says: `systemctl cat neon-watchdog.service` shows the -c it runs; give status the same -c.\n\
             - A pass now: `neon-watchdog check -c {cfg}`.\n"
        ),
        Seen::Denied => format!(
            "\nNever checked, as far as this user can see: {file} cannot be read (permission \
             denied); run `sudo neon-watchdog status -c {cfg}`.\n"
        ),
        Seen::Present => {
            let mut out = String::from("\n");
            for name in never {
                let _ = writeln!(
                    out,
                    "{name}: not checked yet: no pass has checked it since it was added to the \
                     config (the next pass does)."
                );
            }
            out
        }
    }
}

/// `status --json`'s text, secrets masked: also what `run` serves at `/status` (the one
/// rendering of the document, so the two never differ).
pub fn json(config: &Config, r: &Report) -> Result<String, String> {
    let mut s =
        serde_json::to_string_pretty(r).map_err(|e| format!("cannot render the status: {e}"))?;
    s.push('\n');
    Ok(config.redactor.redact(&s))
}

/// `neon-watchdog status [TARGET] [--json | --format nagios]`: reads the state file, runs no
/// check. With a target: that target alone, in detail (`detail`).
pub fn status(config: &Config, format: Format, target: Option<&str>) -> Result<Exit, Error> {
    if let Some(name) = target {
        if !config.targets.iter().any(|t| t.name == name) {
            return Err(Error::Usage(config.unknown_target(name)));
        }
    }
    let loaded = state::load(&config.state_file, true);
    if let Some(w) = &loaded.warning {
        warn!("{w}");
    }
    let now = SystemTime::now();
    let mut r = report(config, &loaded.state, now);
    if let Some(name) = target {
        r.targets.retain(|t| t.name == name);
        r.healthy = r.targets.iter().all(|t| {
            !t.enabled || t.paused.is_some() || (t.status == Health::Healthy.as_str() && !t.stale)
        });
        if format != Format::Nagios {
            for row in &mut r.targets {
                add_detail(config, &loaded.state, row);
            }
        }
    }
    // each text masked once, as a whole
    let text = match format {
        Format::Json => json(config, &r).map_err(|e| Error::Other(anyhow::anyhow!("{e}")))?,
        Format::Table if target.is_some() => config.redactor.redact(
            &r.targets
                .iter()
                .map(|row| detail(config, row, now))
                .collect::<String>(),
        ),
        Format::Table => {
            let mut text = table(&r, now);
            text.push_str(&never_checked(config, &r, seen(&config.state_file)));
            config.redactor.redact(&text)
        }
        Format::Nagios => {
            let (text, state) = nagios(&r, loaded.warning.as_deref());
            print!("{}", config.redactor.redact(&text));
            return Ok(state.exit());
        }
    };
    print!("{text}");
    let failing = r
        .targets
        .iter()
        .any(|t| t.enabled && t.paused.is_none() && t.status != Health::Healthy.as_str());
    let stale: Vec<&str> = r
        .targets
        .iter()
        .filter(|t| t.stale)
        .map(|t| t.name.as_str())
        .collect();
    if !stale.is_empty() {
        warn!(
            targets = %stale.join(","),
            stale_after_s = r.stale_after_seconds,
            "stale: the last check is older than three intervals; is the neon-watchdog timer (or `run`) still running? (`systemctl status neon-watchdog.timer`)"
        );
    }
    // 0 healthy and checked recently; 2 a target not healthy (failing, or never checked);
    // 1 the watchdog's own trouble: healthy, but stale
    Ok(if r.healthy {
        Exit::Ok
    } else if failing {
        Exit::Failing
    } else {
        Exit::Internal
    })
}

/// One process a target's last check found, as it is now (`status TARGET`).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    pub pid: i32,
    /// Gone (or a zombie) since that check.
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_mb: Option<u64>,
    /// CPU since the last pass measured it (`max_cpu_percent`), percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
}

/// The processes `pids` are now, by /proc (no check runs: nothing is started or changed).
pub fn processes(
    pids: &[i32],
    samples: &std::collections::BTreeMap<String, crate::procs::CpuSample>,
) -> Vec<ProcessInfo> {
    let hz = procfs::ticks_per_second().max(1);
    let now_ticks = crate::procs::ticks_since_boot();
    pids.iter()
        .map(
            |&pid| match crate::procs::Proc::by_pid(pid).filter(|p| !p.is_zombie()) {
                None => ProcessInfo {
                    pid,
                    running: false,
                    name: None,
                    uptime_seconds: None,
                    rss_mb: None,
                    cpu_percent: None,
                },
                Some(p) => {
                    let cpu = samples
                        .get(&p.sample_key())
                        .and_then(|c| p.cpu_since(c).ok())
                        .map(crate::util::round1);
                    ProcessInfo {
                        pid,
                        running: true,
                        // the kernel's name: nginx rewrites its argv ("nginx: master
                        // process ... -c .../nginx.conf")
                        name: Some(p.comm.clone()),
                        uptime_seconds: Some(now_ticks.saturating_sub(p.starttime) / hz),
                        rss_mb: Some(p.rss_mb()),
                        cpu_percent: cpu,
                    }
                }
            },
        )
        .collect()
}

/// `status TARGET`: what the state knows of it beyond the table's row.
fn add_detail(config: &Config, st: &state::StateFile, row: &mut Row) {
    let s = st.targets.get(&row.name).cloned().unwrap_or_default();
    row.checks = Some(st.last_checks.get(&row.name).cloned().unwrap_or_default());
    row.processes = Some(processes(&s.pids, &st.cpu_samples));
    if let Some(t) = config.targets.iter().find(|t| t.name == row.name) {
        row.next_action_at = next_action_at(
            &st.targets.get(&row.name).cloned().unwrap_or_default(),
            &t.policy,
            SystemTime::now(),
        );
    }
}

/// When the policy next allows an action (None: now, on a failed check; or never by itself:
/// paused, gave up).
fn next_action_at(
    s: &TargetState,
    policy: &crate::policy::Policy,
    now: SystemTime,
) -> Option<SystemTime> {
    let mut s = s.clone();
    // what holds a failing target, whatever this one's health
    s.paused = None;
    if s.status == Health::Healthy || s.status == Health::Unknown {
        s.status = Health::Failed;
    }
    crate::policy::waiting(&s, policy, now)
        .filter(|w| w.reason != "below_threshold")
        .and_then(|w| w.until)
}

/// What a target's action runs, in a few words: `exec start:, stop: (as user nobody)`,
/// `systemd restart nginx.service`, `docker restart web`, `none (only watched)`.
fn action_words(a: &crate::config::Action) -> String {
    use crate::config::Action;
    match a {
        Action::None => "none (only watched)".to_string(),
        Action::Systemd(s) => format!("systemd {} {}", s.method.as_str(), s.unit),
        Action::Docker(d) => format!("docker {} {}", d.method.as_str(), d.container),
        Action::Exec(e) => {
            let has: Vec<&str> = [
                ("start:", e.start.is_some()),
                ("restart:", e.restart.is_some()),
                ("stop:", e.stop.is_some()),
            ]
            .into_iter()
            .filter_map(|(k, on)| on.then_some(k))
            .collect();
            let mut v = format!("exec {}", has.join(", "));
            if e.detach {
                v.push_str(", detached");
            }
            if let Some(r) = &e.run_as {
                let _ = write!(v, " (as {})", r.shown());
            }
            v
        }
    }
}

/// `status TARGET` as text: one target in detail.
pub fn detail(config: &Config, r: &Row, now: SystemTime) -> String {
    let when = |t: SystemTime| when(t, now);
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let v = crate::util::printable(&v);
        let _ = writeln!(out, "  {k:<13}{v}");
    };
    let mut head = match &r.paused {
        Some(_) => format!("{}: paused; its last check said {}", r.name, r.status),
        None => format!("{}: {}", r.name, r.status),
    };
    if let Some(since) = r.since {
        let _ = write!(head, " since {}", when(since));
    }
    if !r.enabled {
        head.push_str(" (disabled in the config: not watched)");
    }
    if r.stale {
        head.push_str(" (stale: not checked for a while; is the timer or `run` running?)");
    }
    if let Some(p) = &r.paused {
        let mut v = format!("since {}", when(p.since));
        match p.until {
            Some(u) => {
                let _ = write!(v, ", until {}", when(u));
            }
            None if p.reason.as_deref() == Some("stopped by an operator") => {
                v.push_str(", until `neon-watchdog start`")
            }
            None => v.push_str(", until `neon-watchdog resume`"),
        }
        if let Some(reason) = &p.reason {
            let _ = write!(v, ": {reason}");
        }
        line("paused:", v);
    }
    if let Some(reason) = &r.last_reason {
        line("reason:", reason.clone());
    }
    let mut checked = r
        .last_check
        .map(when)
        .unwrap_or_else(|| "never".to_string());
    if let Some(i) = r.interval_seconds {
        let _ = write!(checked, ", every {}", age(Duration::from_secs(i)));
    }
    line("last check:", checked);
    for (i, c) in r.checks.iter().flatten().enumerate() {
        let k = if i == 0 { "checks:" } else { "" };
        line(
            k,
            format!(
                "{} {} ({} ms){}",
                c.name,
                if c.ok { "OK" } else { "FAIL" },
                c.latency_ms,
                if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", config.redactor.redact(&c.detail))
                }
            ),
        );
    }
    for (i, p) in r.processes.iter().flatten().enumerate() {
        let k = if i == 0 { "processes:" } else { "" };
        let v = if p.running {
            let mut v = format!("pid {}", p.pid);
            if let Some(n) = &p.name {
                let _ = write!(v, " {n}");
            }
            if let Some(u) = p.uptime_seconds {
                let _ = write!(v, ", up {}", age(Duration::from_secs(u)));
            }
            if let Some(m) = p.rss_mb {
                let _ = write!(v, ", {m} MiB");
            }
            if let Some(c) = p.cpu_percent {
                let _ = write!(v, ", {c}% CPU");
            }
            v
        } else {
            format!("pid {} (found by the last check; gone now)", p.pid)
        };
        line(k, v);
    }
    if let Some(t) = config.targets.iter().find(|t| t.name == r.name) {
        line("action:", action_words(&t.action));
    }
    line(
        "restarts:",
        format!(
            "{} in the last hour, {} in all{}",
            r.restarts_last_hour,
            r.restarts_total,
            r.last_restart
                .map(|t| format!("; last {}", when(t)))
                .unwrap_or_default()
        ),
    );
    for (i, a) in r.actions.iter().rev().enumerate() {
        let k = if i == 0 { "actions:" } else { "" };
        let mut v = format!(
            "{} {} by {}: ",
            crate::util::rfc3339_seconds(a.at),
            a.kind,
            a.by.as_str()
        );
        if a.ok {
            v.push_str("ok");
        } else {
            v.push_str("failed");
        }
        if let Some(e) = a.exit {
            let _ = write!(v, ", exit {e}");
        }
        let _ = write!(v, ", {} ms", a.duration_ms);
        if let Some(e) = &a.error {
            let _ = write!(v, ": {e}");
        }
        line(k, v);
    }
    if !r.depends_on.is_empty() {
        let mut v = r.depends_on.join(", ");
        if let Some(d) = &r.dependency_down {
            let _ = write!(v, " ({d} is down)");
        }
        line("depends on:", v);
    }
    let next_check = match (&r.paused, r.next_check) {
        (Some(_), _) => "none while paused".to_string(),
        (None, Some(t)) => when(t),
        (None, None) if !r.enabled => "none: disabled".to_string(),
        (None, None) => format!("on the next pass (every {})", age(config.interval)),
    };
    line("next check:", next_check);
    let next_action = match (&r.waiting, r.monitor_only) {
        (_, true) => "none: action is none (only watched)".to_string(),
        (Some(w), _) => {
            let mut v = format!("waits: {}", w.reason);
            if let Some(u) = w.until {
                let _ = write!(v, " until {}", when(u));
            }
            let _ = write!(v, " ({})", w.detail);
            v
        }
        (None, _) => match r.next_action_at {
            Some(t) => format!("if it fails, not before {}", when(t)),
            None => "allowed on the next failed check".to_string(),
        },
    };
    line("next action:", next_action);
    for (i, tr) in r.transitions.iter().rev().take(5).enumerate() {
        let k = if i == 0 { "transitions:" } else { "" };
        line(
            k,
            format!(
                "{} {} -> {}{}",
                crate::util::rfc3339_seconds(tr.at),
                tr.from.as_str(),
                tr.to.as_str(),
                tr.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        );
    }
    format!("{head}\n{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::parse(
            std::path::Path::new("/etc/nw/c.yml"),
            "state_file: /var/lib/nw/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 1}]\n    action: none\n  - name: db-primary\n    checks: [{tcp_port: 2}]\n    action: none\n  - name: off\n    enabled: false\n    checks: [{tcp_port: 3}]\n    action: none\n",
            &crate::config::validate::Env {
                lookup: &|_| None,
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

    #[test]
    fn report_counts_the_last_hour_and_ignores_disabled_targets() {
        let c = config();
        let mut st = state::StateFile::default();
        st.targets.insert(
            "web".into(),
            TargetState {
                status: Health::Failed,
                since: Some(at(4000)),
                consecutive_failures: 3,
                last_reason: Some("tcp_port: connection refused".into()),
                last_check: Some(at(4988)),
                restarts: vec![at(100), at(4000), at(4900)],
                restarts_total: 9,
                ..TargetState::default()
            },
        );
        st.targets.insert(
            "db-primary".into(),
            TargetState {
                status: Health::Healthy,
                ..TargetState::default()
            },
        );
        st.targets.insert(
            "off".into(),
            TargetState {
                status: Health::Failed,
                ..TargetState::default()
            },
        );
        let r = report(&c, &st, at(5000));
        assert!(!r.healthy);
        let web = &r.targets[0];
        assert_eq!(web.status, "failed");
        assert_eq!(web.restarts_last_hour, 2);
        assert_eq!(web.last_check_age_seconds, Some(12));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["targets"][0]["since"], "2027-01-15T09:06:40.000Z");
        assert_eq!(json["targets"][1]["status"], "healthy");
        assert_eq!(json["targets"][2]["enabled"], false);
        let table = table(&r, at(5000));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("TARGET      STATUS"), "{table}");
        assert!(
            lines[1].starts_with("web         failed")
                && lines[1].contains("16m ago")
                && lines[1].ends_with("tcp_port: connection refused"),
            "{table}"
        );
        assert!(lines[3].contains("failed (disabled)"), "{table}");
        // the disabled target does not make it unhealthy
        st.targets.get_mut("web").unwrap().status = Health::Healthy;
        assert!(report(&c, &st, at(5000)).healthy);
        // stale: the last check is older than three intervals (30 s) and a minute
        let web = st.targets.get_mut("web").unwrap();
        web.last_check = Some(at(5000 - 91));
        let r = report(&c, &st, at(5000));
        assert!(r.targets[0].stale && !r.healthy);
        assert_eq!(r.stale_after_seconds, 90);
        assert!(super::table(&r, at(5000)).contains("healthy (stale)"));
        st.targets.get_mut("web").unwrap().last_check = Some(at(5000 - 89));
        assert!(report(&c, &st, at(5000)).healthy);
        // a target never checked is not healthy
        st.targets.remove("web");
        let r = report(&c, &st, at(5000));
        assert!(!r.healthy);
        assert_eq!(r.targets[0].status, "unknown");
    }
}
