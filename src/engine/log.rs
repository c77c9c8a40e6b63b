//! The log lines of a pass: what started, each check, each decision and status change, each
//! action and its result, and the pass's end. One place for their wording and fields.

use super::{Evaluated, Options, PassReport};
use crate::actions::ActionResult;
use crate::checks::CheckResult;
use crate::config::{Config, LogChecks, RunAs, Target};
use crate::events::Event;
use crate::logging::NOTICE;
use crate::policy::{ActionKind, Decision, Health, Outcome, Skip, TargetState, Verdict};
use crate::state::CheckRecord;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;
use tracing::{debug, error, info, trace, warn};

/// The first line of `check` and `run`.
pub fn log_start(config: &Config, mode: &str, opts: Options) {
    info!(
        version = env!("CARGO_PKG_VERSION"),
        mode,
        config = %config.source.display(),
        targets = config.enabled_targets().count(),
        disabled = config.targets.len() - config.enabled_targets().count(),
        dry_run = opts.dry_run,
        "neon-watchdog starting"
    );
}

/// A pass of this process has ended (`log_pass`): with `log_checks: changes`, the first pass
/// of `run` logs every check's result (what stands when the daemon starts), later ones only
/// what changed.
static PASSED: AtomicBool = AtomicBool::new(false);

/// The last line of a pass.
pub fn log_pass(report: &PassReport) {
    PASSED.store(true, Ordering::Relaxed);
    let paused = (report.paused > 0).then_some(report.paused);
    match &report.only {
        Some(names) => info!(
            targets = %names.join(","),
            by = "operator",
            healthy = report.healthy,
            failing = report.failing,
            unknown = report.unknown,
            paused,
            duration_ms = report.duration.as_millis() as u64,
            "pass done"
        ),
        None => info!(
            healthy = report.healthy,
            failing = report.failing,
            unknown = report.unknown,
            paused,
            duration_ms = report.duration.as_millis() as u64,
            "pass done"
        ),
    }
}

/// One target's lines, together: each check (and at trace level what ran, with what
/// timeout), the policy's inputs (trace), the decision and any status change, and in a dry run
/// what would have run.
pub(super) fn target(config: &Config, ev: &Evaluated, opts: Options, now: SystemTime) {
    let (target, prev, state) = (ev.target, &ev.prev, &ev.state);
    let (decision, outcome, lines) = (&ev.decision, &ev.outcome, &ev.lines);
    let name = target.name.as_str();
    if let Some(at) = ev.next_due {
        not_due(target, state, at, now, opts);
        return;
    }
    // `log_checks: changes`: an OK line only when its result changed (or nothing is known of
    // the last one), except on the first pass of `run`
    let quiet = config.log_checks == LogChecks::Changes
        && (opts.one_pass || PASSED.load(Ordering::Relaxed));
    let mut logged = false;
    for (i, ((check_text, r), spec)) in lines.iter().zip(&target.checks).enumerate() {
        trace!(
            target = name,
            check = %check_text,
            timeout_ms = spec.timeout.as_millis() as u64,
            "check ran"
        );
        if quiet && r.is_ok() && !ev.changed.get(i).copied().unwrap_or(true) {
            continue;
        }
        logged = true;
        check(name, check_text, r);
    }
    trace!(
        target = name,
        verdict = ?outcome.verdict,
        prev_status = prev.status.as_str(),
        prev_failures = prev.consecutive_failures,
        restarts_last_hour = prev.restarts.len(),
        restarts_since_healthy = prev.restarts_since_healthy,
        last_restart = prev.last_restart.map(crate::util::rfc3339),
        threshold = target.policy.fail_threshold,
        cooldown_s = target.policy.restart_cooldown.as_secs(),
        max_per_hour = target.policy.max_restarts_per_hour,
        decision = ?decision,
        "policy"
    );
    // quiet, a target still healthy whose checks said nothing new says nothing either
    let routine = quiet && !logged;
    self::decision(target, prev, state, decision, outcome, routine);
    if let (Some(dependency), false) = (
        &ev.dependency_down,
        matches!(decision, Decision::Skip(Skip::DependencyDown { .. })),
    ) {
        // failing, and nothing to hold yet (below the threshold, cooldown, ...): still say why
        // it may be failing
        info!(target = name, dependency = %dependency, "a target it depends on is down too");
    }
    if opts.dry_run {
        // nothing runs, so nothing is recorded: the policy only records what runs
        dry_run(config, target, state, decision);
        if let Some(interval) = target.interval {
            info!(
                target = name,
                interval_s = interval.as_secs(),
                next_check = %crate::util::rfc3339(now + interval),
                "checked; next check due (its own interval)"
            );
        }
    }
}

/// A target with an `interval_seconds` of its own, not due this pass: it keeps its last
/// status. Said at info while it is not healthy (the exit code counts it) and in a dry run,
/// at debug otherwise (a healthy target would fill the journal every tick).
fn not_due(target: &Target, state: &TargetState, at: SystemTime, now: SystemTime, opts: Options) {
    let name = target.name.as_str();
    let status = state.status.as_str();
    let next_check_in_s = at.duration_since(now).map(|d| d.as_secs()).unwrap_or(0);
    let last_check = state.last_check.map(crate::util::rfc3339);
    let last_reason = state.last_reason.as_deref();
    if state.status == Health::Healthy && !opts.dry_run {
        debug!(
            target = name,
            status, last_check, next_check_in_s, "target not due; keeps its last status"
        );
    } else {
        info!(
            target = name,
            status,
            last_check,
            next_check_in_s,
            last_reason,
            "target not due; keeps its last status"
        );
    }
}

/// The lines that say what the policy decided, and a line per status change.
fn decision(
    target: &Target,
    prev: &TargetState,
    state: &TargetState,
    decision: &Decision,
    outcome: &Outcome,
    routine: bool,
) {
    let name = target.name.as_str();
    let failures = state.consecutive_failures;
    let threshold = target.policy.fail_threshold;
    // a first status (first pass, or after `reset`) is a change too
    if state.status != prev.status {
        info!(
            target: NOTICE,
            target = name,
            from = prev.status.as_str(),
            to = state.status.as_str(),
            "status changed"
        );
    }
    match decision {
        Decision::Healthy => {
            if prev.status.is_down() || prev.status == Health::Degraded {
                info!(
                    target: NOTICE,
                    target = name,
                    after_failures = prev.consecutive_failures,
                    "target recovered"
                );
            } else if !routine || state.status != prev.status {
                info!(target = name, "target healthy");
            }
        }
        Decision::Inconclusive => {
            error!(
                target = name, reason = %outcome.reason,
                "cannot tell whether the target is healthy: a check could not be carried out (its program missing or not executable, a file it needs such as ca_file unusable, or the watchdog out of processes or memory: see reason); nothing counted, no action"
            );
        }
        Decision::BelowThreshold { .. } => {
            warn!(target = name, failures, threshold, reason = %outcome.reason, "target failing; waiting for the threshold before acting");
        }
        Decision::Grace { remaining } => {
            warn!(
                target = name, failures, grace_remaining_s = remaining.as_secs(), reason = %outcome.reason,
                "target failing inside the grace period after a restart; not counted, no action"
            );
        }
        Decision::GiveUp { restarts } => {
            error!(
                target = name, failures, restarts, reason = %outcome.reason,
                "giving up: restarts did not bring the target back; no more actions until a healthy pass or `neon-watchdog reset`"
            );
        }
        Decision::Skip(Skip::GaveUp) => {
            warn!(
                target = name, failures, reason = "gave_up",
                "target failing; action skipped (gave up earlier: `neon-watchdog reset` re-enables actions)"
            );
        }
        Decision::Skip(Skip::MonitorOnly) => {
            warn!(target = name, failures, reason = %outcome.reason, "target failing; no action configured (monitor only)");
        }
        Decision::Skip(Skip::Cooldown { remaining }) => {
            warn!(
                target = name,
                failures,
                reason = "cooldown",
                cooldown_remaining_s = remaining.as_secs(),
                "target failing; action skipped"
            );
        }
        Decision::Skip(Skip::Backoff { remaining, wait }) => {
            warn!(
                target = name,
                failures,
                reason = "backoff",
                restarts = state.restarts_since_healthy,
                backoff_s = wait.as_secs(),
                backoff_remaining_s = remaining.as_secs(),
                "target failing; action skipped"
            );
        }
        Decision::Skip(Skip::RateLimit {
            restarts_last_hour,
            max,
        }) => {
            warn!(
                target = name,
                failures,
                reason = "rate_limit",
                restarts_last_hour,
                max,
                "target failing; action skipped"
            );
        }
        Decision::Skip(Skip::DependencyDown { dependency }) => {
            warn!(
                target = name,
                failures,
                reason = "dependency_down",
                dependency = %dependency,
                "target failing; action held: a target it depends on is down (it acts once that one is back)"
            );
        }
        Decision::Act(_) => {}
    }
}

/// The check line: OK at info, FAIL at warn (spec: every check's result is logged), with
/// its latency and every figure the check reported.
fn check(name: &str, check: &str, r: &CheckResult) {
    let latency_ms = r.latency.as_millis() as u64;
    let (pid, matches, exit, addr) = (r.pid, r.matches, r.exit, r.addr.as_deref());
    let f = &r.figures;
    let (status, state, nrestarts) = (f.status, f.state.as_deref(), f.nrestarts);
    let (rss_mb, cpu_percent, children) = (f.rss_mb, f.cpu_percent, f.children);
    let (age_s, free_percent, free_mb) = (f.age_s, f.free_percent, f.free_mb);
    let (load_per_core, mem_used_percent) = (f.load_per_core, f.mem_used_percent);
    let (days_left, expires) = (f.days_left, f.expires.as_deref());
    if r.is_ok() {
        info!(
            target = name,
            check,
            result = "OK",
            latency_ms,
            pid,
            matches,
            exit,
            addr,
            status,
            state,
            nrestarts,
            rss_mb,
            cpu_percent,
            children,
            age_s,
            free_percent,
            free_mb,
            load_per_core,
            mem_used_percent,
            days_left,
            expires,
            "check"
        );
    } else {
        let inconclusive = (r.verdict == Verdict::Unknown).then_some(true);
        warn!(
            target = name, check, result = "FAIL", latency_ms, pid, exit, status, state,
            nrestarts, rss_mb, cpu_percent, children, age_s, free_percent, free_mb,
            load_per_core, mem_used_percent, days_left, expires, inconclusive, err = %r.reason,
            "check"
        );
    }
}

/// What a check's line gives as its result, as kept in the state (`CheckRecord::detail`): a
/// failure's reason; for an OK, what it found (`pid=4242`, `status=200`,
/// `state=active/running nrestarts=0`, ...), without the figures measured anew every pass
/// (latency, how many processes matched (a pool of workers grows and shrinks), memory, CPU,
/// ages, free space, load, days left), so that it changes only when what was found did. Not
/// masked here (the state masks it as it saves).
pub(super) fn detail(r: &CheckResult) -> String {
    if !r.is_ok() {
        return r.reason.clone();
    }
    let f = &r.figures;
    let mut out = String::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{k}={}", crate::logging::quote(&v));
        }
    };
    put("pid", r.pid.map(|p| p.to_string()));
    put("exit", r.exit.map(|e| e.to_string()));
    put("addr", r.addr.clone());
    put("status", f.status.map(|s| s.to_string()));
    put("state", f.state.clone());
    put("nrestarts", f.nrestarts.map(|n| n.to_string()));
    put("expires", f.expires.clone());
    out
}

/// Per check of a target just checked, whether its result differs from the last check's in
/// `last` (OK or FAIL, or what it found: see [`detail`]); a check with no record is new.
pub(super) fn changed(last: Option<&Vec<CheckRecord>>, now: &[CheckRecord]) -> Vec<bool> {
    now.iter()
        .map(|c| {
            last.and_then(|l| l.iter().find(|p| p.name == c.name))
                .is_none_or(|p| p.ok != c.ok || p.detail != c.detail)
        })
        .collect()
}

/// In a dry run: what would have run.
fn dry_run(config: &Config, target: &Target, state: &TargetState, decision: &Decision) {
    let name = target.name.as_str();
    match decision {
        Decision::Act(kind) => {
            let argv = crate::actions::argv(&target.action, *kind, config).unwrap_or_default();
            let user = match &target.action {
                crate::config::Action::Exec(e) => e.run_as.as_deref().map(RunAs::shown),
                _ => None,
            };
            let user = user.as_deref();
            info!(
                target = name, failures = state.consecutive_failures, action = kind.as_str(),
                reason = "dry_run", would_run = %config.redactor.argv(&argv), user, "action skipped"
            );
        }
        Decision::GiveUp { .. } => {
            if let Some(g) = &target.on_give_up {
                let user = g.run_as.as_ref().map(RunAs::shown);
                let user = user.as_deref();
                info!(
                    target = name, reason = "dry_run", would_run = %config.redactor.argv(&g.argv),
                    user, "on_give_up skipped"
                );
            }
        }
        _ => {}
    }
}

/// In a dry run: the notifications that would have been sent.
pub(super) fn notifications_skipped(config: &Config, events: &[Event]) {
    for e in events {
        if config.notify.iter().any(|n| n.events.contains(&e.event)) {
            info!(target = %e.target, event = e.event.as_str(), reason = "dry_run", "notification skipped");
        }
    }
}

pub(super) fn action_start(target: &Target, state: &TargetState, kind: ActionKind, shown: &str) {
    let failures = state.consecutive_failures;
    let threshold = target.policy.fail_threshold;
    // who it runs as (`user:`/`group:` of an exec action): every line of the action says so
    let user = match &target.action {
        crate::config::Action::Exec(e) => e.run_as.as_deref().map(RunAs::shown),
        _ => None,
    };
    let user = user.as_deref();
    warn!(target = %target.name, failures, threshold, action = kind.as_str(), argv = %shown, user, "target failing; running action");
}

/// An action's result: its argv (masked), exit code, duration and output tail.
pub(super) fn action_done(name: &str, action: &str, shown: &str, r: &ActionResult) {
    let duration_ms = r.duration.as_millis() as u64;
    let exit = r.exit;
    let stop = r.stop.as_deref();
    let user = r.user.as_deref();
    if r.detached && !r.output.is_empty() {
        // started, but without its log_file (what stood at its path was not ours to write)
        warn!(target = name, action, argv = %shown, user, stop, detached = true, duration_ms, err = %r.output, "action started");
    } else if r.detached {
        info!(target: NOTICE, target = name, action, argv = %shown, user, stop, detached = true, duration_ms, "action started");
    } else if r.ok {
        info!(target: NOTICE, target = name, action, argv = %shown, user, stop, exit, duration_ms, output = %r.output, "action done");
    } else {
        error!(
            target = name, action, argv = %shown, user, stop, exit, duration_ms,
            err = %r.error, output = %r.output, "action failed"
        );
    }
}

pub(super) fn on_give_up_done(name: &str, shown: &str, r: &ActionResult) {
    let duration_ms = r.duration.as_millis() as u64;
    let exit = r.exit;
    let user = r.user.as_deref();
    if r.ok {
        info!(target: NOTICE, target = name, argv = %shown, user, exit, duration_ms, output = %r.output, "on_give_up done");
    } else {
        error!(
            target = name, argv = %shown, user, exit, duration_ms, err = %r.error, output = %r.output,
            "on_give_up failed"
        );
    }
}

/// An action the policy decided that may not run: `state_unwritable` (its memory could not
/// be saved) or `no_lock` (another instance might act too).
pub(super) fn action_unsafe(name: &str, kind: ActionKind, reason: &str) {
    let why = if reason == "no_lock" {
        "action skipped: the lock could not be taken, so another neon-watchdog may be acting on it too; fix the lock file first"
    } else {
        "action skipped: the state file cannot be saved, so cooldown and the hourly cap could not hold; fix the state file first"
    };
    error!(target = %name, action = kind.as_str(), reason, "{why}");
}

/// The lock could not be taken for a reason other than another holder.
pub(super) fn unlocked(e: &crate::error::Error) {
    error!("{e}; the checks run, but no action runs until the lock can be taken");
}

/// The state could not be saved: `err` says why, and what to do when `err` holds its own fix
/// (a state file where other users can create files), else the usual causes are named.
pub(super) fn state_unsaved(err: &str, own_fix: bool, in_process_state: bool) {
    let consequence = if in_process_state {
        "the state is kept in memory until then"
    } else {
        "no action runs until the state can be saved"
    };
    let fix = if own_fix {
        ""
    } else {
        "; fix permissions or free space, or set state_file"
    };
    error!("{err}{fix} ({consequence})");
}

/// The wall clock stepped since the state was saved: the times in it moved with it.
pub(super) fn clock_stepped(step: crate::policy::Step) {
    let direction = if step.back { "back" } else { "forward" };
    warn!(
        direction,
        step_s = step.by.as_secs(),
        "the wall clock stepped {direction} by {} since the state was saved; the times in the state moved with it, so cooldown, backoff and the hourly cap count the time that really passed",
        humantime::format_duration(std::time::Duration::from_secs(step.by.as_secs()))
    );
}

/// An operator's verb runs a target's action (`by=operator`): never refused by the policy.
pub(super) fn operator_action_start(name: &str, op: &str, shown: &str) {
    warn!(target = name, action = op, by = "operator", argv = %shown, "operator asked; running action");
}

/// How an operator's action ended (as [`action_done`], with `by=operator`).
pub(super) fn operator_action_done(name: &str, op: &str, shown: &str, r: &ActionResult) {
    let duration_ms = r.duration.as_millis() as u64;
    let exit = r.exit;
    let stop = r.stop.as_deref();
    if r.ok {
        info!(target: NOTICE, target = name, action = op, by = "operator", argv = %shown, user = r.user.as_deref(), stop, exit, duration_ms, output = %r.output, "action done");
    } else {
        error!(
            target = name, action = op, by = "operator", argv = %shown, stop, exit, duration_ms,
            err = %r.error, output = %r.output, "action failed"
        );
    }
}

/// A paused target is left alone this pass; a pause whose `--for` is over ends.
pub(super) fn pause_ended(name: &str, since: std::time::SystemTime) {
    info!(target: NOTICE, target = name, paused_since = %crate::util::rfc3339(since), "pause over (pause --for); watching it again");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, ok: bool, detail: &str) -> CheckRecord {
        CheckRecord {
            name: name.into(),
            ok,
            latency_ms: 1,
            detail: detail.into(),
        }
    }

    #[test]
    fn detail_is_the_reason_or_what_was_found_without_what_moves_every_pass() {
        assert_eq!(
            detail(&CheckResult::fail("connection refused")),
            "connection refused"
        );
        let mut r = CheckResult::ok();
        r.pid = Some(42);
        r.matches = Some(5);
        r.figures.rss_mb = Some(100);
        r.figures.cpu_percent = Some(3.5);
        r.figures.state = Some("active/running".into());
        r.figures.expires = Some("2026-12-06".into());
        r.figures.days_left = Some(12);
        assert_eq!(detail(&r), "pid=42 state=active/running expires=2026-12-06");
        r.addr = Some("has space".into());
        assert!(detail(&r).contains("addr=\"has space\""));
        assert_eq!(detail(&CheckResult::ok()), "");
    }

    #[test]
    fn a_result_changed_when_ok_or_detail_differ_or_nothing_was_known() {
        let last = vec![
            record("http", true, "status=200"),
            record("tcp_port", true, ""),
        ];
        let now = [
            record("http", true, "status=200"),
            record("tcp_port", false, "connection refused"),
            record("command", true, "exit=0"),
        ];
        assert_eq!(changed(Some(&last), &now), [false, true, true]);
        assert_eq!(changed(None, &now[..1]), [true]);
        let moved = [record("http", true, "status=204")];
        assert_eq!(changed(Some(&last), &moved), [true]);
    }
}
