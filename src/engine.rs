//! One pass over all targets, and the `run` loop around it.
//!
//! ```text
//! lock -> load state
//!   -> for each enabled target (side by side, up to max_parallel):
//!        run its checks in order (all of them) -> outcome -> policy::decide
//!   -> drop state of removed targets -> save state atomically
//!   -> run the decided actions (side by side) -> exit code
//! ```

use crate::actions;
use crate::checks::{self, PassContext};
use crate::config::{Check, Config, Target};
use crate::error::Error;
use crate::events::Event;
use crate::exit::Exit;
use crate::policy::{self, ActionKind, Alert, Decision, EventKind, Outcome, Skip};
use crate::policy::{Health, TargetState};
use crate::state::{self, StateFile};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tracing::{debug, error, info, warn};

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Decide everything, run no action, write nothing.
    pub dry_run: bool,
    /// The state lives on in this process between passes (`run`): the policy keeps its
    /// memory even when the state file cannot be written.
    pub in_process_state: bool,
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct PassReport {
    pub healthy: usize,
    pub failing: usize,
    /// Targets whose checks could not be carried out (the watchdog's own trouble).
    pub unknown: usize,
    pub duration: Duration,
    /// The state was written (always true in a dry run, which writes nothing).
    pub saved: bool,
    /// What happened, for notifications: status changes, actions and their results.
    pub events: Vec<Event>,
    /// Per target, per check results (for metrics).
    pub targets: Vec<TargetReport>,
    /// The metrics text of this pass, when `metrics:` is configured.
    pub metrics: Option<String>,
}

impl PassReport {
    /// 2 if a target failed; else 1 if a target could not be checked or the state could not
    /// be saved; else 0.
    pub fn exit(&self) -> Exit {
        if self.failing > 0 {
            Exit::Failing
        } else if !self.saved || self.unknown > 0 {
            Exit::Internal
        } else {
            Exit::Ok
        }
    }
}

/// Phase one's result for one target: checked and decided, not yet acted on.
struct Evaluated<'a> {
    target: &'a Target,
    /// The status before this pass.
    prev_status: Health,
    state: TargetState,
    healthy: bool,
    decision: Decision,
    /// What to tell humans (before any action ran).
    alerts: Vec<Alert>,
    /// Each check's kind, result and latency, in order (for metrics).
    checks: Vec<CheckReport>,
}

impl Evaluated<'_> {
    fn unknown(&self) -> bool {
        self.decision == Decision::Inconclusive
    }
}

/// One check's result, for metrics.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub kind: &'static str,
    pub ok: bool,
    pub latency: Duration,
}

/// One target's result, for metrics.
#[derive(Debug, Clone)]
pub struct TargetReport {
    pub name: String,
    pub healthy: bool,
    pub checks: Vec<CheckReport>,
}

/// Phase three's work for one target.
#[derive(Debug, Clone, Copy)]
enum Work {
    Act(ActionKind),
    GiveUp,
}

/// Run `f` over `items` on up to `max` threads, keeping order. A panic in `f` (a bug) gives
/// `None` for that item instead of taking the pass down; if no thread can be created (task
/// limit reached), the items run on this thread.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    max: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { break };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item))).ok();
        if let Ok(mut all) = results.lock() {
            all[i] = r;
        }
    };
    let workers = max.min(items.len());
    std::thread::scope(|s| {
        let mut started = 0;
        for _ in 0..workers {
            if std::thread::Builder::new().spawn_scoped(s, work).is_ok() {
                started += 1;
            }
        }
        if started == 0 {
            work();
        }
    });
    results.into_inner().unwrap_or_default()
}

/// Run one pass over every enabled target:
/// 1. checks and decisions, side by side;
/// 2. the new state is saved *before* any action runs, so a restart is on disk even if the
///    pass is killed mid-action, and cooldown and the hourly cap hold across passes;
/// 3. the actions, side by side.
///
/// If the state cannot be saved, a oneshot pass runs no action (`reason=state_unwritable`):
/// without its memory the policy could not enforce cooldown or the hourly cap, and restarting
/// on every pass is how a watchdog makes an outage worse. `run` keeps the state in memory, so
/// it still acts. The error is logged on every pass.
pub fn pass(config: &Config, st: &mut StateFile, opts: Options) -> PassReport {
    let started = Instant::now();
    if let (Some(hb), false) = (&config.heartbeat, opts.dry_run) {
        crate::heartbeat::start(hb, &config.redactor);
    }
    let targets: Vec<&Target> = config.enabled_targets().collect();
    // Taken before any command of this pass runs, so the watchdog's own commands can never
    // satisfy a process check.
    let process_names: Vec<String> = targets
        .iter()
        .flat_map(|t| &t.checks)
        .filter_map(|c| match &c.check {
            Check::ProcessName { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    // pid_file checks read their one process directly, but counting children needs the scan
    let scan = !process_names.is_empty()
        || targets.iter().flat_map(|t| &t.checks).any(
            |c| matches!(&c.check, Check::PidFile { limits, .. } if limits.max_children.is_some()),
        );
    let cx = PassContext::new(
        &process_names,
        scan,
        config.redactor.clone(),
        std::mem::take(&mut st.cpu_samples),
    );

    let prev_state: &StateFile = st;
    let evaluated = parallel_map(&targets, config.max_parallel, |target| {
        let prev = prev_state
            .targets
            .get(&target.name)
            .cloned()
            .unwrap_or_default();
        evaluate(config, target, prev, &cx, opts)
    });
    let mut report = PassReport::default();
    let mut work = Vec::new();
    let now = SystemTime::now();
    for (target, ev) in targets.iter().zip(evaluated) {
        let ev = ev.unwrap_or_else(|| {
            error!(target = %target.name, "internal error while checking target; counted as failing");
            let state = st.targets.get(&target.name).cloned().unwrap_or_default();
            Evaluated {
                target,
                prev_status: state.status,
                state,
                healthy: false,
                decision: Decision::Healthy,
                alerts: Vec::new(),
                checks: Vec::new(),
            }
        });
        if ev.healthy {
            report.healthy += 1;
        } else if ev.unknown() {
            report.unknown += 1;
        } else {
            report.failing += 1;
        }
        for a in &ev.alerts {
            report
                .events
                .push(event(config, ev.target, ev.prev_status, &ev.state, *a, now));
        }
        report.targets.push(TargetReport {
            name: ev.target.name.clone(),
            healthy: ev.healthy,
            checks: ev.checks,
        });
        st.targets.insert(ev.target.name.clone(), ev.state.clone());
        if opts.dry_run {
            continue;
        }
        match ev.decision {
            Decision::Act(kind) => work.push((ev.target, Work::Act(kind), ev.state)),
            Decision::GiveUp { .. } if ev.target.on_give_up.is_some() => {
                work.push((ev.target, Work::GiveUp, ev.state))
            }
            _ => {}
        }
    }
    state::retain_targets(st, config.targets.iter().map(|t| t.name.as_str()));
    st.cpu_samples = cx.take_cpu_samples();

    report.saved = save_state(config, st, opts);
    if !report.saved && !opts.in_process_state {
        work.retain(|(target, w, _)| {
            let Work::Act(kind) = w else { return true };
            error!(
                target = %target.name, action = kind.as_str(), reason = "state_unwritable",
                "action skipped: the state file cannot be saved, so cooldown and the hourly cap could not hold; fix the state file first"
            );
            false
        });
    }
    let done = parallel_map(&work, config.max_parallel, |(target, w, state)| match w {
        Work::Act(kind) => Some(act(config, target, *kind, state)),
        Work::GiveUp => {
            give_up(config, target, state);
            None
        }
    });
    for ((target, w, state), done) in work.iter().zip(done) {
        match (w, done) {
            (_, None) => error!(target = %target.name, "internal error while running the action"),
            (Work::Act(_), Some(Some(r))) => {
                let (kind, reason) = if r.ok {
                    (
                        EventKind::Restart,
                        state.last_reason.clone().unwrap_or_default(),
                    )
                } else {
                    (EventKind::RestartFailed, config.redactor.redact(&r.error))
                };
                let alert = Alert {
                    kind,
                    reminder: false,
                    downtime: None,
                };
                let mut e = event(config, target, state.status, state, alert, now);
                e.reason = reason;
                report.events.push(e);
            }
            _ => {}
        }
    }
    tell(config, st, &mut report, opts);
    report.duration = started.elapsed();
    if let (Some(hb), false) = (&config.heartbeat, opts.dry_run) {
        let healthy = report.failing == 0 && report.unknown == 0;
        crate::heartbeat::finish(hb, healthy, &summary(&report, st), &config.redactor);
    }
    if config.metrics.textfile.is_some() || config.metrics.listen.is_some() {
        report.metrics = Some(metrics(config, st, &report, opts));
    }
    report
}

/// Phase four: notifications. What cannot be delivered is kept in the state file for the
/// next pass (saved again here if anything changed).
fn tell(config: &Config, st: &mut StateFile, report: &mut PassReport, opts: Options) {
    if opts.dry_run {
        for e in &report.events {
            if config.notify.iter().any(|n| n.events.contains(&e.event)) {
                info!(target = %e.target, event = e.event.as_str(), reason = "dry_run", "notification skipped");
            }
        }
        return;
    }
    if config.notify.is_empty() {
        if !st.pending_notifications.is_empty() {
            error!(
                dropped = st.pending_notifications.len(),
                "dropping undelivered notifications: `notify:` is no longer in the config"
            );
            st.pending_notifications.clear();
            if report.saved {
                report.saved = save_state(config, st, opts);
            }
        }
        return;
    }
    if report.events.is_empty() && st.pending_notifications.is_empty() {
        return;
    }
    let before = st.pending_notifications.clone();
    st.pending_notifications = crate::notify::deliver(
        config,
        &report.events,
        std::mem::take(&mut st.pending_notifications),
    );
    if st.pending_notifications != before && report.saved {
        report.saved = save_state(config, st, opts);
    }
}

/// The heartbeat's body: one line, then the failing targets with their reasons.
fn summary(report: &PassReport, st: &StateFile) -> String {
    let mut s = format!(
        "neon-watchdog on {}: healthy={} failing={} unknown={}",
        crate::notify::hostname(),
        report.healthy,
        report.failing,
        report.unknown
    );
    for t in report.targets.iter().filter(|t| !t.healthy) {
        let reason = st
            .targets
            .get(&t.name)
            .and_then(|s| s.last_reason.as_deref())
            .unwrap_or("unknown");
        s.push_str(&format!("\n{}: {reason}", t.name));
    }
    s
}

/// Render this pass's metrics and write the textfile (not in a dry run).
fn metrics(config: &Config, st: &StateFile, report: &PassReport, opts: Options) -> String {
    use crate::metrics::{CheckMetrics, PassMetrics, TargetMetrics};
    let m = PassMetrics {
        targets: report
            .targets
            .iter()
            .map(|t| {
                let s = st.targets.get(&t.name).cloned().unwrap_or_default();
                TargetMetrics {
                    name: t.name.clone(),
                    up: t.healthy,
                    consecutive_failures: s.consecutive_failures,
                    restarts_total: s.restarts_total,
                    status: s.status,
                    checks: t
                        .checks
                        .iter()
                        .enumerate()
                        .map(|(index, c)| CheckMetrics {
                            index,
                            kind: c.kind,
                            up: c.ok,
                            duration: c.latency,
                        })
                        .collect(),
                }
            })
            .collect(),
        finished: SystemTime::now(),
        duration: report.duration,
    };
    let text = crate::metrics::render(&m);
    if let (Some(path), false) = (&config.metrics.textfile, opts.dry_run) {
        if let Err(e) = crate::metrics::write_textfile(path, &text) {
            error!("{e}");
        }
    }
    text
}

/// An event about `target` for notifications.
fn event(
    config: &Config,
    target: &Target,
    prev_status: Health,
    state: &TargetState,
    alert: Alert,
    now: SystemTime,
) -> Event {
    Event {
        target: target.name.clone(),
        event: alert.kind,
        reminder: alert.reminder,
        status: state.status,
        previous_status: prev_status,
        reason: config
            .redactor
            .redact(state.last_reason.as_deref().unwrap_or_default()),
        failures: state.consecutive_failures,
        restarts_last_hour: state.restarts.len() as u32,
        downtime_seconds: alert.downtime.map(|d| d.as_secs()),
        timestamp: now,
    }
}

/// Phase one for one target: run every check (no short-circuit), decide.
fn evaluate<'a>(
    config: &Config,
    target: &'a Target,
    prev: TargetState,
    cx: &PassContext,
    opts: Options,
) -> Evaluated<'a> {
    let name = target.name.as_str();
    let mut reasons = Vec::new();
    let mut not_running = false;
    let mut conclusive_failure = false;
    let mut check_reports = Vec::with_capacity(target.checks.len());
    for spec in &target.checks {
        let r = checks::run(spec, cx);
        log_check(name, &spec.check.describe(&config.redactor), &r);
        check_reports.push(CheckReport {
            kind: spec.check.kind(),
            ok: r.ok,
            latency: r.latency,
        });
        if !r.ok {
            reasons.push(format!("{}: {}", spec.check.kind(), r.reason));
            not_running |= r.not_running;
            conclusive_failure |= !r.inconclusive;
        }
    }
    let outcome = Outcome {
        healthy: reasons.is_empty(),
        not_running,
        reason: config.redactor.redact(&reasons.join("; ")),
        inconclusive: !reasons.is_empty() && !conclusive_failure,
    };
    let available = actions::available(&target.action);
    let now = SystemTime::now();
    let (mut state, decision) = policy::decide(&prev, &outcome, &target.policy, available, now);
    let alerts = policy::alerts(&prev, &mut state, &decision, config.reminder_every, now);
    log_decision(target, &prev, &state, &decision, &outcome);
    let state = match decision {
        // nothing will run: do not count it (and nothing is saved in a dry run anyway)
        Decision::Act(kind) if opts.dry_run => {
            let argv = actions::argv(&target.action, kind, config).unwrap_or_default();
            info!(
                target = name, failures = state.consecutive_failures, action = kind.as_str(),
                reason = "dry_run", would_run = %config.redactor.argv(&argv), "action skipped"
            );
            prev_restarts(state, &prev)
        }
        Decision::GiveUp { .. } if opts.dry_run => {
            if let Some(g) = &target.on_give_up {
                info!(
                    target = name, reason = "dry_run", would_run = %config.redactor.argv(&g.argv),
                    "on_give_up skipped"
                );
            }
            state
        }
        _ => state,
    };
    Evaluated {
        target,
        prev_status: prev.status,
        state,
        healthy: outcome.healthy,
        decision,
        alerts,
        checks: check_reports,
    }
}

/// The lines that say what the policy decided, and a line per status change.
fn log_decision(
    target: &Target,
    prev: &TargetState,
    state: &TargetState,
    decision: &Decision,
    outcome: &Outcome,
) {
    let name = target.name.as_str();
    let failures = state.consecutive_failures;
    let threshold = target.policy.fail_threshold;
    if state.status != prev.status && prev.status != Health::Unknown {
        info!(
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
                    target = name,
                    after_failures = prev.consecutive_failures,
                    "target recovered"
                );
            } else {
                debug!(target = name, "target healthy");
            }
        }
        Decision::Inconclusive => {
            warn!(
                target = name, reason = %outcome.reason,
                "cannot tell whether the target is healthy: the watchdog could not run its checks (out of processes or memory?); nothing counted, no action"
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
        Decision::Act(_) => {}
    }
}

/// The check line: OK at debug (journald stays quiet), FAIL at warn, with every figure the
/// check reported.
fn log_check(name: &str, check: &str, r: &checks::CheckResult) {
    let latency_ms = r.latency.as_millis() as u64;
    let (pid, matches, exit, addr) = (r.pid, r.matches, r.exit, r.addr.as_deref());
    let f = &r.figures;
    let (status, state, nrestarts) = (f.status, f.state.as_deref(), f.nrestarts);
    let (rss_mb, cpu_percent, children) = (f.rss_mb, f.cpu_percent, f.children);
    let (age_s, free_percent, free_mb) = (f.age_s, f.free_percent, f.free_mb);
    let (load_per_core, mem_used_percent) = (f.load_per_core, f.mem_used_percent);
    if r.ok {
        debug!(
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
            "check"
        );
    } else {
        let inconclusive = r.inconclusive.then_some(true);
        warn!(
            target = name, check, result = "FAIL", latency_ms, pid, exit, status, state,
            nrestarts, rss_mb, cpu_percent, children, age_s, free_percent, free_mb,
            load_per_core, mem_used_percent, inconclusive, err = %r.reason, "check"
        );
    }
}

/// The state as if no action had been recorded this pass.
fn prev_restarts(mut state: TargetState, prev: &TargetState) -> TargetState {
    state.restarts.pop();
    state.last_restart = prev.last_restart;
    state.restarts_since_healthy = prev.restarts_since_healthy;
    state.restarts_total = prev.restarts_total;
    state
}

/// The `NEON_WATCHDOG_*` environment of an exec action for this target.
fn action_env(target: &str, event: &str, state: &TargetState) -> BTreeMap<String, String> {
    crate::events::env(
        target,
        event,
        state.status.as_str(),
        state.last_reason.as_deref().unwrap_or_default(),
        state.consecutive_failures,
    )
}

/// Phase three for one target: run its action and log what happened.
fn act(
    config: &Config,
    target: &Target,
    kind: ActionKind,
    state: &TargetState,
) -> actions::ActionResult {
    let name = target.name.as_str();
    let failures = state.consecutive_failures;
    let argv = actions::argv(&target.action, kind, config).unwrap_or_default();
    let shown = config.redactor.argv(&argv);
    let threshold = target.policy.fail_threshold;
    warn!(target = name, failures, threshold, action = kind.as_str(), argv = %shown, "target failing; running action");
    let env = action_env(name, kind.as_str(), state);
    let r = actions::run(&target.action, kind, config, name, &env);
    let duration_ms = r.duration.as_millis() as u64;
    let exit = r.exit;
    if r.detached {
        info!(target = name, action = kind.as_str(), argv = %shown, detached = true, duration_ms, "action started");
    } else if r.ok {
        info!(target = name, action = kind.as_str(), argv = %shown, exit, duration_ms, output = %r.output, "action done");
    } else {
        error!(
            target = name, action = kind.as_str(), argv = %shown, exit, duration_ms,
            err = %r.error, output = %r.output, "action failed"
        );
    }
    r
}

/// Phase three for a target that gave up this pass: run `on_give_up` once.
fn give_up(config: &Config, target: &Target, state: &TargetState) {
    let Some(g) = &target.on_give_up else { return };
    let name = target.name.as_str();
    let shown = config.redactor.argv(&g.argv);
    let env = action_env(name, "gave_up", state);
    let spec = crate::spawn::Spec {
        argv: &g.argv,
        timeout: g.timeout,
        env: &env,
        cwd: None,
        cleanup: crate::spawn::Cleanup::KillGroup,
        output: None,
        stdin: None,
    };
    match crate::spawn::run(&spec) {
        Err(e) => error!(target = name, argv = %shown, err = %e.message, "on_give_up failed"),
        Ok(out) => {
            let output = out.tail(300, &config.redactor);
            let duration_ms = out.duration.as_millis() as u64;
            match out.status {
                crate::spawn::Status::Exited(0) => {
                    info!(target = name, argv = %shown, exit = 0, duration_ms, output = %output, "on_give_up done")
                }
                crate::spawn::Status::Exited(c) => {
                    error!(target = name, argv = %shown, exit = c, duration_ms, output = %output, "on_give_up failed")
                }
                crate::spawn::Status::Signaled(sig) => {
                    error!(target = name, argv = %shown, signal = sig, duration_ms, "on_give_up failed")
                }
                crate::spawn::Status::TimedOut => error!(
                    target = name, argv = %shown, duration_ms,
                    err = %format!("timed out after {} (its process group was killed)", crate::util::secs(g.timeout)),
                    "on_give_up failed"
                ),
            }
        }
    }
}

fn load_state(config: &Config, opts: Options) -> StateFile {
    let loaded = state::load(&config.state_file, opts.dry_run);
    if let Some(w) = loaded.warning {
        warn!("{w}");
    }
    loaded.state
}

/// Save unless dry-run; a failure is logged (the pass itself already happened).
fn save_state(config: &Config, st: &StateFile, opts: Options) -> bool {
    if opts.dry_run {
        return true;
    }
    match state::save(&config.state_file, st, &config.redactor) {
        Ok(()) => true,
        Err(e) => {
            let consequence = if opts.in_process_state {
                "the state is kept in memory until then"
            } else {
                "no action runs until the state can be saved"
            };
            error!("{e}; fix permissions or free space, or set state_file ({consequence})");
            false
        }
    }
}

fn log_start(config: &Config, mode: &str, opts: Options) {
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

fn log_pass(report: &PassReport) {
    info!(
        healthy = report.healthy,
        failing = report.failing,
        unknown = report.unknown,
        duration_ms = report.duration.as_millis() as u64,
        "pass done"
    );
}

/// `check` and `run --once`: one pass, then the exit code.
pub fn check(config: &Config, opts: Options, mode: &str) -> Result<Exit, Error> {
    log_start(config, mode, opts);
    let _lock = if opts.dry_run {
        None
    } else {
        Some(state::lock(&config.lock_file)?)
    };
    let mut st = load_state(config, opts);
    let report = pass(config, &mut st, opts);
    log_pass(&report);
    Ok(report.exit())
}

static STOP: AtomicBool = AtomicBool::new(false);
/// The signal that set STOP, for the log.
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(sig: nix::libc::c_int) {
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_hup(_: nix::libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let stop = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    let hup = SigAction::new(
        SigHandler::Handler(on_hup),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        let _ = sigaction(Signal::SIGTERM, &stop);
        let _ = sigaction(Signal::SIGINT, &stop);
        let _ = sigaction(Signal::SIGHUP, &hup);
    }
}

/// `run`: a pass every `interval` until SIGTERM/SIGINT, which let the pass in flight finish,
/// save state and exit 0. SIGHUP re-reads the config (a bad one is reported and ignored).
/// `reload` loads the config again; `on_reload` lets the caller update logging.
pub fn run_loop(
    mut config: Config,
    mut opts: Options,
    reload: &dyn Fn() -> Result<Config, String>,
    on_reload: &dyn Fn(&Config),
) -> Result<Exit, Error> {
    install_signal_handlers();
    opts.in_process_state = true;
    log_start(&config, "run", opts);
    let _lock = if opts.dry_run {
        None
    } else {
        Some(state::lock(&config.lock_file)?)
    };
    let mut st = load_state(&config, opts);
    let shared = std::sync::Arc::new(Mutex::new(crate::metrics::Shared::default()));
    let listen = config.metrics.listen;
    if let Some(addr) = listen {
        crate::metrics::serve_or_log(addr, shared.clone());
    }
    loop {
        let started = Instant::now();
        reap_orphans();
        let report = pass(&config, &mut st, opts);
        log_pass(&report);
        reap_orphans();
        if let (Some(text), Ok(mut sh)) = (&report.metrics, shared.lock()) {
            sh.text = text.clone();
            sh.last_pass = Some(Instant::now());
            // a pass is due every interval; three missed in a row is a hung loop
            sh.stale_after = (config.interval * 3).max(Duration::from_secs(60));
        }
        let next = started + config.interval;
        while !STOP.load(Ordering::SeqCst) && Instant::now() < next {
            if RELOAD.swap(false, Ordering::SeqCst) {
                match reload() {
                    Ok(c)
                        if c.lock_file != config.lock_file || c.state_file != config.state_file =>
                    {
                        error!("config reload refused: state_file and lock_file cannot change while running; restart neon-watchdog instead");
                    }
                    Ok(c) => {
                        if c.metrics.listen != listen {
                            warn!("metrics.listen changed: the metrics endpoint moves only when neon-watchdog restarts");
                        }
                        on_reload(&c);
                        config = c;
                        info!(
                            targets = config.enabled_targets().count(),
                            "config reloaded"
                        );
                    }
                    Err(e) => error!(err = %e, "config reload failed; keeping the running config"),
                }
            }
            std::thread::sleep(
                Duration::from_millis(100).min(next.saturating_duration_since(Instant::now())),
            );
        }
        if STOP.load(Ordering::SeqCst) {
            let signal = nix::sys::signal::Signal::try_from(STOP_SIGNAL.load(Ordering::SeqCst))
                .map(|s| s.as_str())
                .unwrap_or("signal");
            if report.saved {
                info!(signal, "stop signal received; state saved, exiting");
            } else {
                warn!(signal, "stop signal received; exiting, but the state could not be saved (see the errors above)");
            }
            return Ok(Exit::Ok);
        }
    }
}

/// Between passes no command of ours runs, so any child left is an adopted orphan (we are
/// a subreaper): reap them so none lingers as a zombie.
fn reap_orphans() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
