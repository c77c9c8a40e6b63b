//! How long a target's checks may take, held against the limits the shipped systemd units put
//! on a pass (issue 18 M4): `TimeoutStartSec` of `neon-watchdog.service` (a `check` pass
//! taking longer is killed) and `WatchdogSec` of `neon-watchdog-daemon.service` (`run` gives
//! no sign of life while a pass runs). A pass acts on each target as soon as its own checks
//! and those of what it depends on are done, so a slow check costs only the targets that wait
//! for it; those are warned about here.

use super::Ctx;
use crate::config::model::Target;
use crate::util::units;
use std::time::Duration;

/// Warn about every enabled target whose checks (one after the other), or those of a target
/// it depends on, may take as long as a shipped unit lets a pass run.
pub(super) fn warn(cx: &mut Ctx, targets: &[Target]) {
    let limits: Vec<(Duration, &str)> = [
        (
            units::timeout_start(),
            "neon-watchdog.service kills a `check` pass after TimeoutStartSec",
        ),
        (
            units::watchdog(),
            "neon-watchdog-daemon.service kills `run` when a pass outlasts WatchdogSec",
        ),
    ]
    .into_iter()
    .filter_map(|(limit, what)| Some((limit?, what)))
    .collect();
    let Some(shortest) = limits.iter().map(|(l, _)| *l).min() else {
        return;
    };
    // how long each target's own checks may take
    let own = |t: &Target| -> Duration { t.checks.iter().map(|c| c.timeout).sum() };
    let enabled: Vec<&Target> = targets.iter().filter(|t| t.enabled).collect();
    let beyond = |d: Duration| -> String {
        limits
            .iter()
            .filter(|(l, _)| d >= *l)
            .map(|(l, what)| format!("{what}={}s", l.as_secs()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let advice = "lower timeout_seconds, or raise the limit in a drop-in (`systemctl edit neon-watchdog` or `neon-watchdog-daemon`)";
    for t in &enabled {
        let mine = own(t);
        if mine >= shortest {
            let n = t.checks.len();
            cx.warn_at(
                &t.origin,
                ".checks",
                format!(
                    "may take up to {}s (the timeout_seconds of its {n} check{}, one after the other), at least as long as the shipped units let a pass run ({}): systemd would kill the pass before this target is judged, so it would never be acted on (the other targets still are, as soon as their own checks are done); {advice}",
                    mine.as_secs(),
                    if n == 1 { "" } else { "s" },
                    beyond(mine)
                ),
            );
            continue;
        }
        // its action waits for the checks of what it depends on, directly or not
        let mut seen: Vec<&str> = Vec::new();
        let mut todo: Vec<&str> = t.depends_on.iter().map(String::as_str).collect();
        let mut slowest: Option<(&str, Duration)> = None;
        while let Some(name) = todo.pop() {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            if let Some(d) = enabled.iter().find(|d| d.name == name) {
                let took = own(d);
                if slowest.is_none_or(|(_, s)| took > s) {
                    slowest = Some((&d.name, took));
                }
                todo.extend(d.depends_on.iter().map(String::as_str));
            }
        }
        if let Some((name, took)) = slowest.filter(|(_, took)| *took >= shortest) {
            cx.warn_at(
                &t.origin,
                ".depends_on",
                format!(
                    "its action waits for the checks of {name:?}, which may take up to {}s, at least as long as the shipped units let a pass run ({}): systemd would kill the pass before this target could be acted on; {advice}",
                    took.as_secs(),
                    beyond(took)
                ),
            );
        }
    }
}
