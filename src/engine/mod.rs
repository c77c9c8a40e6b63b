//! One pass over all targets: the heart of `check`, and of each turn of the `run` loop
//! (`daemon`).
//!
//! ```text
//! one clock reading (`now`, and the state's times moved by any step of the wall clock)
//!   -> heartbeat start -> one /proc scan for the whole pass
//!   -> for each enabled target (side by side, up to max_parallel):
//!        run its checks in order (all of them) -> verdict -> policy::decide
//!   -> as soon as a target's checks and those of all it depends on are done (`stream`):
//!        hold for dependencies -> record its action -> save state atomically
//!        -> run its action (beside the checks still running)
//!   -> log lines (config order; a target acted on early first) -> drop state of removed
//!      targets -> save state -> wait for the actions
//!   -> notifications, heartbeat, metrics
//! ```
//!
//! The log lines of a pass are worded in `log`.

mod log;
mod stream;

pub use log::{log_pass, log_start};

use crate::actions::{self, ActionResult};
use crate::checks::{self, CheckResult, PassContext};
use crate::config::{Check, Config, Target};
use crate::error::Error;
use crate::events::Event;
use crate::exit::Exit;
use crate::metrics::{CheckReport, TargetReport};
use crate::policy::{
    self, ActionKind, Alert, Decision, EventKind, Health, Outcome, TargetState, Verdict,
};
use crate::state::{self, StateFile};
use std::time::{Duration, Instant, SystemTime};
use tracing::error;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Decide everything, run no action, write nothing.
    pub dry_run: bool,
    /// The state lives on in this process between passes (`run`): the policy keeps its
    /// memory even when the state file cannot be written.
    pub in_process_state: bool,
    /// The lock could not be taken (a read-only or unusable state directory): the checks
    /// run and are reported, but no action runs, since another instance might act too.
    pub unlocked: bool,
    /// This process runs this one pass and exits (`check`, `run --once`), not a loop.
    pub one_pass: bool,
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
    /// The pass ran without the lock (see `Options::unlocked`).
    pub unlocked: bool,
    /// What happened, for notifications: status changes, actions and their results.
    pub events: Vec<Event>,
    /// Per target, per check results (metrics, heartbeat).
    pub targets: Vec<TargetReport>,
    /// The metrics text of this pass, when `metrics:` is configured.
    pub metrics: Option<String>,
    /// Enabled targets left alone because an operator paused them.
    pub paused: usize,
    /// `check TARGET...`: the targets this pass was limited to.
    pub only: Option<Vec<String>>,
}

impl PassReport {
    /// 2 if a target failed; else 1 if a target could not be checked, or the state could not
    /// be saved or locked; else 0.
    pub fn exit(&self) -> Exit {
        if self.failing > 0 {
            Exit::Failing
        } else if !self.saved || self.unlocked || self.unknown > 0 {
            Exit::Internal
        } else {
            Exit::Ok
        }
    }
}

/// Phase one's result for one target: checked and decided, not yet logged nor acted on.
struct Evaluated<'a> {
    target: &'a Target,
    /// The state before this pass.
    prev: TargetState,
    state: TargetState,
    verdict: Verdict,
    decision: Decision,
    /// What to tell humans (before any action ran).
    alerts: Vec<Alert>,
    /// Each check's kind, result and latency, in order.
    checks: Vec<CheckReport>,
    /// What the log says of this target: each check (its description and result), then the
    /// decision. Logged by the pass, target after target in config order, so one target's
    /// lines come out together however the targets ran side by side.
    lines: Vec<(String, CheckResult)>,
    outcome: Outcome,
    /// Not due (its own `interval_seconds`): not checked this pass, it keeps its last status
    /// until then.
    next_due: Option<SystemTime>,
    /// The first target it depends on that is down this pass (see [`hold_for_dependencies`]).
    dependency_down: Option<String>,
    /// Per line, whether its result differs from the last check's (`log_checks: changes`).
    changed: Vec<bool>,
}

impl<'a> Evaluated<'a> {
    /// A target whose evaluation panicked (a bug): its health is unknown this pass, its
    /// state stays as it was, nothing is done.
    fn lost(target: &'a Target, state: TargetState) -> Self {
        error!(
            target = %target.name,
            "internal error while checking target (a bug: please report it); its health is unknown this pass"
        );
        Evaluated {
            target,
            prev: state.clone(),
            state,
            verdict: Verdict::Unknown,
            decision: Decision::Inconclusive,
            alerts: Vec::new(),
            checks: Vec::new(),
            lines: Vec::new(),
            outcome: Outcome {
                verdict: Verdict::Unknown,
                reason: "internal error".into(),
                failed_checks: 0,
            },
            next_due: None,
            dependency_down: None,
            changed: Vec::new(),
        }
    }

    /// A target not due this pass: its last status stands (and counts for the exit code);
    /// its checks' last results (`kept`, from the state file) stand for the metrics.
    fn kept(
        config: &Config,
        target: &'a Target,
        state: TargetState,
        kept: Option<&Vec<state::CheckRecord>>,
        next_due: SystemTime,
    ) -> Self {
        let verdict = match state.status {
            Health::Healthy => Verdict::Healthy,
            Health::Unknown => Verdict::Unknown,
            Health::Degraded | Health::Failed | Health::GaveUp => Verdict::FAILING,
        };
        // the series of checks still in the config, by label
        let checks = target
            .checks
            .iter()
            .zip(target.check_series())
            .filter_map(|(spec, series)| {
                let name = config.redactor.redact(&series);
                let r = kept?.iter().find(|r| r.name == name)?;
                Some(CheckReport {
                    name,
                    kind: spec.check.kind(),
                    ok: r.ok,
                    latency: Duration::from_millis(r.latency_ms),
                })
            })
            .collect();
        Evaluated {
            target,
            prev: state.clone(),
            outcome: Outcome {
                verdict,
                reason: state.last_reason.clone().unwrap_or_default(),
                failed_checks: 0,
            },
            state,
            verdict,
            decision: Decision::Inconclusive,
            alerts: Vec::new(),
            checks,
            lines: Vec::new(),
            next_due: Some(next_due),
            dependency_down: None,
            changed: Vec::new(),
        }
    }
}

/// `depends_on`: a failing target whose dependency is down this pass (failing, or not known
/// to be healthy; or down in turn because of its own dependencies) does not act: restarting
/// a web app because its database is down only adds restarts to the outage. It is still
/// checked and reported, and judged as usual once the dependency is back. A disabled
/// dependency counts as healthy (it is not watched). The config has no cycles. `down`: the
/// first target it depends on that is down, if any.
fn hold_for_dependencies(ev: &mut Evaluated, down: Option<String>) {
    if ev.verdict.is_healthy() {
        return;
    }
    if let (Some(dependency), Decision::Act(_)) = (&down, &ev.decision) {
        ev.decision = Decision::Skip(policy::Skip::DependencyDown {
            dependency: dependency.clone(),
        });
    }
    ev.dependency_down = down;
}

/// Phase three's work for one target.
#[derive(Debug, Clone, Copy)]
enum Work {
    Act(ActionKind),
    GiveUp,
}

/// An action (or `on_give_up`) to run for a target, decided and recorded.
struct Job<'a> {
    /// The target's index in the pass.
    index: usize,
    target: &'a Target,
    work: Work,
    /// The target's state with the action recorded (what the action's environment tells).
    state: TargetState,
    /// The state without it: put back if the action may not run after all.
    unrecorded: Option<TargetState>,
}

/// How long a pass waits for a slow check without saving what it has found so far: a pass
/// killed while it waits (systemd's `TimeoutStartSec`, `WatchdogSec`) loses nothing the other
/// targets found. Far above a pass without slow checks, which saves once, at its end.
const CHECKPOINT_AFTER: Duration = Duration::from_secs(1);

/// A pass in progress: targets are finished (held for their dependencies, counted, logged,
/// their actions recorded and saved) round by round, each as soon as its own checks and those
/// of every target it depends on are done: one slow check holds back only the targets that
/// wait for it (issue 18 M4).
struct Progress<'a> {
    config: &'a Config,
    opts: Options,
    now: SystemTime,
    targets: Vec<&'a Target>,
    /// Per target, the targets it depends on (indexes into `targets`; disabled ones left
    /// out: they count as healthy).
    deps: Vec<Vec<usize>>,
    /// Per target, every target it depends on, directly or not.
    needs: Vec<Vec<usize>>,
    evaluated: Vec<Option<Evaluated<'a>>>,
    finished: Vec<bool>,
    /// Lines are logged target after target in config order, from `cursor`; a target acted
    /// on before those above it are finished is logged then, out of order.
    logged: Vec<bool>,
    cursor: usize,
    events: Vec<Vec<Event>>,
    reports: Vec<Option<TargetReport>>,
    healthy: usize,
    failing: usize,
    unknown: usize,
    /// Targets were finished since the state was last saved.
    unsaved: bool,
    /// A save failed this pass (its error is logged once).
    save_failed: bool,
    /// Jobs were started this pass.
    acted: bool,
    /// Per target, the first target it depends on that is not in this pass (paused, or left
    /// out by `check TARGET`) and down by the state file or paused.
    outside_down: Vec<Option<String>>,
}

impl<'a> Progress<'a> {
    fn new(config: &'a Config, opts: Options, now: SystemTime, targets: Vec<&'a Target>) -> Self {
        let index: std::collections::HashMap<&str, usize> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let deps: Vec<Vec<usize>> = targets
            .iter()
            .map(|t| {
                t.depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let needs = (0..targets.len())
            .map(|i| {
                if deps[i].is_empty() {
                    return Vec::new();
                }
                let mut seen = vec![false; targets.len()];
                let mut todo = deps[i].clone();
                while let Some(j) = todo.pop() {
                    if !std::mem::replace(&mut seen[j], true) {
                        todo.extend(&deps[j]);
                    }
                }
                (0..targets.len()).filter(|&j| seen[j] && j != i).collect()
            })
            .collect();
        let n = targets.len();
        Progress {
            config,
            opts,
            now,
            targets,
            deps,
            needs,
            evaluated: (0..n).map(|_| None).collect(),
            finished: vec![false; n],
            logged: vec![false; n],
            cursor: 0,
            events: (0..n).map(|_| Vec::new()).collect(),
            reports: (0..n).map(|_| None).collect(),
            healthy: 0,
            failing: 0,
            unknown: 0,
            unsaved: false,
            save_failed: false,
            acted: false,
            outside_down: vec![None; n],
        }
    }

    /// Finish every target whose checks, and those of all it depends on, are done; return
    /// the jobs they call for, recorded in `st` (not yet saved).
    fn advance(&mut self, st: &mut StateFile) -> Vec<Job<'a>> {
        let ready: Vec<usize> = (0..self.targets.len())
            .filter(|&i| {
                !self.finished[i]
                    && self.evaluated[i].is_some()
                    && self.needs[i].iter().all(|&j| self.evaluated[j].is_some())
            })
            .collect();
        if ready.is_empty() {
            return Vec::new();
        }
        // targets not checked yet are in no ready target's dependencies
        let down = if ready.iter().any(|&i| !self.deps[i].is_empty()) {
            let healthy: Vec<bool> = self
                .evaluated
                .iter()
                .map(|ev| ev.as_ref().is_none_or(|ev| ev.verdict.is_healthy()))
                .collect();
            policy::dependencies_down(&self.deps, &healthy)
        } else {
            vec![None; self.targets.len()]
        };
        let mut jobs = Vec::new();
        for &i in &ready {
            let name_of = |j: usize| self.targets[j].name.clone();
            let dependency = down[i]
                .map(name_of)
                .or_else(|| self.outside_down[i].clone());
            let Some(ev) = self.evaluated[i].as_mut() else {
                continue;
            };
            hold_for_dependencies(ev, dependency);
            match ev.verdict {
                Verdict::Healthy => self.healthy += 1,
                Verdict::Failing { .. } => self.failing += 1,
                Verdict::Unknown => self.unknown += 1,
            }
            if !self.opts.dry_run {
                match ev.decision {
                    Decision::Act(kind) => {
                        let unrecorded = ev.state.clone();
                        // counted now, saved before it runs
                        policy::record_action(&mut ev.state, self.now);
                        jobs.push(Job {
                            index: i,
                            target: ev.target,
                            work: Work::Act(kind),
                            state: ev.state.clone(),
                            unrecorded: Some(unrecorded),
                        });
                    }
                    Decision::GiveUp { .. } if ev.target.on_give_up.is_some() => jobs.push(Job {
                        index: i,
                        target: ev.target,
                        work: Work::GiveUp,
                        state: ev.state.clone(),
                        unrecorded: None,
                    }),
                    _ => {}
                }
            }
            for a in &ev.alerts {
                let mut e = event(
                    self.config,
                    ev.target,
                    ev.prev.status,
                    &ev.state,
                    *a,
                    self.now,
                );
                e.dependency_down = ev.dependency_down.clone();
                self.events[i].push(e);
            }
            // each check's result, for the next pass (a target not due keeps its own)
            if ev.next_due.is_none() && !ev.lines.is_empty() {
                let kept: Vec<state::CheckRecord> = (ev.checks.iter().zip(&ev.lines))
                    .map(|(c, (_, r))| state::CheckRecord {
                        name: c.name.clone(),
                        ok: c.ok,
                        latency_ms: c.latency.as_millis() as u64,
                        detail: log::detail(r),
                    })
                    .collect();
                ev.changed = log::changed(st.last_checks.get(&ev.target.name), &kept);
                st.last_checks.insert(ev.target.name.clone(), kept);
            }
            self.reports[i] = Some(TargetReport {
                name: ev.target.name.clone(),
                verdict: ev.verdict,
                checks: std::mem::take(&mut ev.checks),
            });
            st.targets.insert(ev.target.name.clone(), ev.state.clone());
            self.finished[i] = true;
            self.unsaved = true;
        }
        // a target acted on now is logged now, its lines before its action's (after those of
        // the targets above it that are finished); the others wait for `log_finished`, so
        // that a pass without slow checks writes its lines in one go
        if !jobs.is_empty() {
            let _batch = crate::logging::Batch::start();
            self.log_in_order();
            for job in &jobs {
                self.log(job.index);
            }
        }
        jobs
    }

    /// Log the finished targets not logged yet, in config order, up to the first one not
    /// finished; each target's lines together, all in one write.
    fn log_finished(&mut self) {
        let _batch = crate::logging::Batch::start();
        self.log_in_order();
    }

    fn log_in_order(&mut self) {
        while self.cursor < self.targets.len() && self.finished[self.cursor] {
            self.log(self.cursor);
            self.cursor += 1;
        }
    }

    fn log(&mut self, i: usize) {
        if let (false, Some(ev)) = (self.logged[i], &self.evaluated[i]) {
            log::target(self.config, ev, self.opts, self.now);
            self.logged[i] = true;
        }
    }

    /// Save the state as it is now. A failure is logged once a pass.
    fn save(&mut self, st: &StateFile) -> bool {
        if self.opts.dry_run {
            return true;
        }
        match save_file(self.config, st) {
            Ok(()) => {
                self.unsaved = false;
                true
            }
            Err(e) => {
                if !std::mem::replace(&mut self.save_failed, true) {
                    log::state_unsaved(
                        &e,
                        self.config.state_untrusted.is_some(),
                        self.opts.in_process_state,
                    );
                }
                false
            }
        }
    }

    /// Before `jobs` run: save the state with their actions recorded. Returns those that may
    /// run: without its memory on disk a oneshot pass may not act (the policy could not hold
    /// the cooldown and the cap), nor without the lock (another instance may be acting on the
    /// same targets); such an action is put back as not run (and said so).
    fn may_run(&mut self, st: &mut StateFile, mut jobs: Vec<Job<'a>>) -> Vec<Job<'a>> {
        if jobs.is_empty() {
            return jobs;
        }
        let put_back = |st: &mut StateFile, jobs: &mut Vec<Job<'a>>| {
            for job in jobs.iter_mut() {
                if let Some(before) = job.unrecorded.take() {
                    st.targets.insert(job.target.name.clone(), before);
                }
            }
        };
        let reason = if self.opts.unlocked {
            put_back(st, &mut jobs);
            // saved all the same, to tell which of the two it is
            Some(if self.save(st) {
                "no_lock"
            } else {
                "state_unwritable"
            })
        } else if !self.save(st) && !self.opts.in_process_state {
            put_back(st, &mut jobs);
            self.unsaved = true;
            Some("state_unwritable")
        } else {
            None
        };
        if let Some(reason) = reason {
            jobs.retain(|job| match job.work {
                Work::Act(kind) => {
                    log::action_unsafe(&job.target.name, kind, reason);
                    false
                }
                Work::GiveUp => true,
            });
        }
        self.acted |= !jobs.is_empty();
        jobs
    }
}

/// Run one pass over every enabled target:
/// 1. the checks, side by side; each target is decided as soon as its own checks and those of
///    every target it depends on are done;
/// 2. before its action runs, the new state is saved, so a restart is on disk even if the
///    pass is killed mid-action, and cooldown and the hourly cap hold across passes;
/// 3. its action runs at once, beside the checks still running: one slow check never holds
///    back another target's recovery. What the pass found is saved while it waits for a slow
///    check ([`CHECKPOINT_AFTER`]), and once more at its end.
///
/// If the state cannot be saved, a oneshot pass runs no action (`reason=state_unwritable`):
/// without its memory the policy could not enforce cooldown or the hourly cap, and restarting
/// on every pass is how a watchdog makes an outage worse. `run` keeps the state in memory, so
/// it still acts. The error is logged on every pass.
pub fn pass(config: &Config, st: &mut StateFile, opts: Options) -> PassReport {
    pass_of(config, st, opts, None)
}

/// [`pass`] over the targets named in `only` (`check TARGET...`): the others are neither
/// checked nor changed, and a partial pass publishes no metrics and pings no heartbeat (they
/// describe whole passes). A target it depends on that is left out holds it when the state
/// says that one is down or paused.
pub fn pass_of<'a>(
    config: &'a Config,
    st: &mut StateFile,
    opts: Options,
    only: Option<&[String]>,
) -> PassReport {
    let started = Instant::now();
    let partial = only.is_some();
    // the one clock reading of the pass's decisions and events, with the clock no step moves
    let boot_id = crate::util::boot_id();
    let now = SystemTime::now();
    let reading = boot_id
        .zip(crate::util::boottime_ms())
        .map(|(boot_id, boottime_ms)| policy::ClockReading {
            wall: now,
            boot_id,
            boottime_ms,
        });
    if let Some(step) = state::rebase(st, now, reading) {
        log::clock_stepped(step);
    }
    if let (Some(hb), false, false) = (&config.heartbeat, opts.dry_run, partial) {
        crate::heartbeat::start(hb, &config.redactor);
    }
    // a pause whose `--for` is over ends now; a paused target is not part of the pass (one
    // look at each target's state for both)
    let mut targets: Vec<&Target> = Vec::new();
    let mut paused = 0;
    for t in config.enabled_targets() {
        if let Some(s) = st.targets.get_mut(&t.name) {
            if let Some(p) = policy::pause_expired(s, now) {
                log::pause_ended(&t.name, p.since);
            }
            if s.paused.is_some() {
                paused += 1;
                continue;
            }
        }
        if only.is_none_or(|names| names.contains(&t.name)) {
            targets.push(t);
        }
    }
    // a target with an `interval_seconds` of its own that is not due keeps its last status:
    // none of its checks runs
    let next_due: Vec<Option<SystemTime>> = targets
        .iter()
        .map(|t| {
            let prev = st.targets.get(&t.name).cloned().unwrap_or_default();
            policy::next_due(
                &prev,
                t.interval,
                config.interval,
                t.policy.restart_grace,
                now,
            )
        })
        .collect();
    let due: Vec<&Target> = targets
        .iter()
        .zip(&next_due)
        .filter(|(_, n)| n.is_none())
        .map(|(t, _)| *t)
        .collect();
    let cx = context(config, &due, st);
    let prev: Vec<TargetState> = targets
        .iter()
        .map(|t| st.targets.get(&t.name).cloned().unwrap_or_default())
        .collect();
    let eval = |i: usize| evaluate(config, targets[i], prev[i].clone(), &cx, now);
    // targets whose checks wait (commands, sockets) run side by side on threads; the others
    // read memory and files and run here, one after the other, where a thread would cost
    // more than the check
    let (waiting, inline): (Vec<usize>, Vec<usize>) = (0..targets.len())
        .filter(|&i| next_due[i].is_none())
        .partition(|&i| targets[i].checks.iter().any(|c| c.check.waits()));
    let mut progress = Progress::new(config, opts, now, targets.clone());
    progress.outside_down = outside_down(config, &targets, st);
    for (i, at) in next_due.iter().enumerate() {
        if let Some(at) = at {
            let kept = st.last_checks.get(&targets[i].name);
            let ev = Evaluated::kept(config, targets[i], prev[i].clone(), kept, *at);
            progress.evaluated[i] = Some(ev);
        }
    }
    for &i in &inline {
        let ev = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| eval(i)));
        progress.evaluated[i] =
            Some(ev.unwrap_or_else(|_| Evaluated::lost(targets[i], prev[i].clone())));
    }
    if !waiting.is_empty() {
        // forked now, from this one thread, not later from a worker amid many
        crate::spawn::prepare();
    }
    let mut report = PassReport {
        unlocked: opts.unlocked,
        paused,
        only: only.map(<[String]>::to_vec),
        ..PassReport::default()
    };
    let done = std::thread::scope(|s| {
        let mut running = Vec::new();
        let mut start = |jobs: Vec<Job<'a>>| {
            if !jobs.is_empty() {
                running.push(start_jobs(s, config, jobs));
            }
        };
        let jobs = progress.advance(st);
        start(progress.may_run(st, jobs));
        stream::each(
            &waiting,
            config.max_parallel,
            |&i| eval(i),
            |step| match step {
                stream::Step::Done(done) => {
                    for (k, ev) in done {
                        let i = waiting[k];
                        let ev = ev.unwrap_or_else(|| Evaluated::lost(targets[i], prev[i].clone()));
                        progress.evaluated[i] = Some(ev);
                    }
                    let jobs = progress.advance(st);
                    start(progress.may_run(st, jobs));
                }
                // waiting for a slow check: say and save what is known so far
                stream::Step::Idle => {
                    progress.log_finished();
                    if progress.unsaved {
                        progress.save(st);
                    }
                }
            },
            CHECKPOINT_AFTER,
        );
        let jobs = progress.advance(st);
        start(progress.may_run(st, jobs));
        progress.log_finished();
        if opts.one_pass && !progress.acted {
            // no command runs until a notification needs one, which forks another
            crate::spawn::let_guardian_go();
        }
        state::retain_targets(st, config.targets.iter().map(|t| t.name.as_str()));
        if partial {
            st.cpu_samples.extend(cx.take_cpu_samples());
        } else {
            st.cpu_samples = cx.take_cpu_samples();
        }
        st.passes_total = st.passes_total.saturating_add(1);
        report.saved = progress.save(st);
        running
            .into_iter()
            .filter_map(|rx| rx.recv().ok())
            .collect::<Vec<_>>()
    });
    report.healthy = progress.healthy;
    report.failing = progress.failing;
    report.unknown = progress.unknown;
    report.targets = progress.reports.into_iter().flatten().collect();
    report.events = progress.events.into_iter().flatten().collect();
    let mut recorded = false;
    for (jobs, results) in &done {
        for (job, r) in jobs.iter().zip(results) {
            let (Some(r), Some(s)) = (r, st.targets.get_mut(&job.target.name)) else {
                continue;
            };
            let kind = match job.work {
                Work::Act(kind) => kind.as_str(),
                Work::GiveUp => "on_give_up",
            };
            policy::record_result(s, action_record(config, kind, policy::By::Policy, r, now));
            recorded = true;
        }
    }
    if recorded && report.saved {
        report.saved = save_state(config, st, opts);
    }
    for (jobs, results) in done {
        for (job, r) in jobs.iter().zip(results) {
            let (target, state) = (job.target, &job.state);
            match (job.work, r) {
                (_, None) => {
                    error!(target = %target.name, "internal error while running the action")
                }
                (Work::Act(_), Some(r)) => {
                    let (kind, reason) = if r.ok {
                        let reason = state.last_reason.clone().unwrap_or_default();
                        (EventKind::Restart, reason)
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
                (Work::GiveUp, Some(_)) => {}
            }
        }
    }
    tell(config, st, &mut report, opts, now);
    report.duration = started.elapsed();
    if let (Some(hb), false, false) = (&config.heartbeat, opts.dry_run, partial) {
        crate::heartbeat::finish(hb, &report.targets, &st.targets, &config.redactor);
    }
    if !partial && (config.metrics.textfile.is_some() || config.metrics.listen.is_some()) {
        let pass = crate::metrics::Pass {
            finished: SystemTime::now(),
            duration: report.duration,
            ok: report.saved && !report.unlocked && report.unknown == 0,
            interval: config.interval,
            passes_total: st.passes_total,
        };
        let text =
            crate::metrics::publish(config, &report.targets, &st.targets, &pass, opts.dry_run);
        report.metrics = Some(text);
    }
    report
}

/// What a batch of jobs did.
type Ran<'a> = (Vec<Job<'a>>, Vec<Option<ActionResult>>);

/// Start `jobs` side by side on a thread of the pass's scope (here, if no thread can be had);
/// their results come on the channel returned.
fn start_jobs<'scope, 'a: 'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    config: &'a Config,
    jobs: Vec<Job<'a>>,
) -> std::sync::mpsc::Receiver<Ran<'a>> {
    let run = move |jobs: &[Job<'a>]| {
        crate::parallel::map(jobs, config.max_parallel, |job| {
            run_work(config, job.target, job.work, &job.state)
        })
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Vec<Job<'a>>>();
    let tx = done_tx.clone();
    let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
        if let Ok(jobs) = jobs_rx.recv() {
            let results = run(&jobs);
            let _ = tx.send((jobs, results));
        }
    });
    match spawned {
        Ok(_) => {
            let _ = jobs_tx.send(jobs);
        }
        Err(_) => {
            let results = run(&jobs);
            let _ = done_tx.send((jobs, results));
        }
    }
    done_rx
}

/// What the checks of this pass share: the /proc snapshot, taken here once and before any
/// command of the pass runs (so the watchdog's own commands can never satisfy a process
/// check), and the CPU samples of the previous pass.
fn context(config: &Config, targets: &[&Target], st: &StateFile) -> PassContext {
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
    let uids = targets
        .iter()
        .flat_map(|t| &t.checks)
        .any(|c| matches!(&c.check, Check::ProcessName { user, .. } if user.is_some()));
    PassContext::new(
        &process_names,
        scan,
        uids,
        config.redactor.clone(),
        // kept in the state until the pass ends: a pass killed meanwhile keeps them
        st.cpu_samples.clone(),
    )
}

/// Phase one for one target: run every check (no short-circuit), decide, log.
fn evaluate<'a>(
    config: &Config,
    target: &'a Target,
    prev: TargetState,
    cx: &PassContext,
    now: SystemTime,
) -> Evaluated<'a> {
    let mut reasons = Vec::new();
    let mut verdicts = Vec::with_capacity(target.checks.len());
    let mut check_reports = Vec::with_capacity(target.checks.len());
    let mut lines = Vec::with_capacity(target.checks.len());
    for (spec, series) in target.checks.iter().zip(target.check_series()) {
        let r = checks::run(spec, cx);
        let mut label = spec.label(&config.redactor);
        // two identical unnamed checks: their log lines must still differ
        let same = lines
            .iter()
            .filter(|(l, _): &&(String, CheckResult)| {
                *l == label || l.starts_with(&format!("{label} #"))
            })
            .count();
        if same > 0 {
            label = format!("{label} #{}", same + 1);
        }
        check_reports.push(CheckReport {
            // masked here too: it is kept in the state file
            name: config.redactor.redact(&series),
            kind: spec.check.kind(),
            ok: r.is_ok(),
            latency: r.latency,
        });
        if !r.is_ok() {
            // a named check says which it is (status, Nagios, notifications read the reason)
            match &spec.name {
                Some(name) => reasons.push(format!("{} ({name}): {}", spec.check.kind(), r.reason)),
                // the second check of a kind is told from the first as in the metrics (`http#2`)
                None => reasons.push(format!("{series}: {}", r.reason)),
            }
        }
        verdicts.push(r.verdict);
        lines.push((label, r));
    }
    let failed_checks = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Failing { .. }))
        .count() as u32;
    let outcome = Outcome {
        verdict: Verdict::of(verdicts),
        reason: config.redactor.redact(&reasons.join("; ")),
        failed_checks,
    };
    let available = actions::available(&target.action);
    let (mut state, decision) = policy::decide(&prev, &outcome, &target.policy, available, now);
    state.pids = lines.iter().filter_map(|(_, r)| r.pid).collect();
    state.pids.dedup();
    let alerts = policy::alerts(&prev, &mut state, &decision, config.reminder_every, now);
    Evaluated {
        target,
        prev,
        state,
        verdict: outcome.verdict,
        decision,
        alerts,
        checks: check_reports,
        lines,
        outcome,
        next_due: None,
        dependency_down: None,
        changed: Vec::new(),
    }
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
        dependency_down: None,
    }
}

/// For each target of the pass, the first target it depends on that is enabled but not in the
/// pass (paused, or left out by `check TARGET`) and, by the state file, paused or down:
/// restarting a web app while its database is paused for maintenance adds restarts to it.
fn outside_down(config: &Config, targets: &[&Target], st: &StateFile) -> Vec<Option<String>> {
    targets
        .iter()
        .map(|t| {
            t.depends_on
                .iter()
                .filter(|d| !targets.iter().any(|o| o.name == **d))
                .filter(|d| config.enabled_targets().any(|o| o.name == **d))
                .find(|d| {
                    // as `status` says it: paused, failing, or inconclusive (never checked is
                    // not news of a failure)
                    st.targets.get(d.as_str()).is_some_and(|s| {
                        s.paused.is_some()
                            || s.inconclusive
                            || matches!(
                                s.status,
                                Health::Degraded | Health::Failed | Health::GaveUp
                            )
                    })
                })
                .cloned()
        })
        .collect()
}

/// Whether `target` runs now, by its process and pid-file checks (nothing else tells):
/// Some(true) they all pass, Some(false) one finds it not running, None it has no such check.
/// Nothing is recorded: an operator's `start` and `restart` ask before they run anything.
pub fn running(config: &Config, st: &StateFile, target: &Target) -> Option<bool> {
    let procs: Vec<&crate::config::CheckSpec> = target
        .checks
        .iter()
        .filter(|c| matches!(c.check, Check::ProcessName { .. } | Check::PidFile { .. }))
        .collect();
    if procs.is_empty() {
        return None;
    }
    let cx = context(config, &[target], st);
    let verdicts = procs.iter().map(|c| checks::run(c, &cx).verdict);
    Some(Verdict::of(verdicts) != Verdict::NOT_RUNNING)
}

/// Run every check of `target` now and say what they find, deciding nothing and recording
/// nothing (`check TARGET` of a paused target: look, do not touch).
pub fn probe(config: &Config, st: &StateFile, target: &Target) -> Outcome {
    let cx = context(config, &[target], st);
    let prev = st.targets.get(&target.name).cloned().unwrap_or_default();
    evaluate(config, target, prev, &cx, SystemTime::now()).outcome
}

/// What `status TARGET` keeps of an action's result.
fn action_record(
    config: &Config,
    kind: &str,
    by: policy::By,
    r: &ActionResult,
    now: SystemTime,
) -> policy::ActionRecord {
    policy::ActionRecord {
        at: now,
        kind: kind.to_string(),
        by,
        ok: r.ok,
        exit: r.exit,
        duration_ms: r.duration.as_millis() as u64,
        error: (!r.ok).then(|| config.redactor.redact(&r.error)),
    }
}

/// An operator's `start`, `restart` or `stop` of `target` now (`neon-watchdog restart web`),
/// whatever the policy would say: the operator decided. With `counts` (a `restart`) it is
/// recorded like the policy's actions (it counts in the hourly window and starts a cooldown),
/// and saved before it runs; a stop, and the start that ends a maintenance, count for
/// nothing. Its result is kept for `status TARGET` and saved. Returns the result, and whether
/// the state could be saved.
pub fn operate(
    config: &Config,
    st: &mut StateFile,
    target: &Target,
    op: actions::Op,
    counts: bool,
    opts: Options,
) -> (ActionResult, bool) {
    let now = SystemTime::now();
    let name = target.name.as_str();
    let shown = config
        .redactor
        .argv(&actions::op_argv(&target.action, op, config).unwrap_or_default());
    let s = st.targets.entry(name.to_string()).or_default();
    if counts {
        policy::record_action(s, now);
    }
    let env = crate::events::env(
        name,
        op.as_str(),
        s.status.as_str(),
        s.last_reason.as_deref().unwrap_or_default(),
        s.consecutive_failures,
    );
    // on disk before it runs: a restart counted by the operator stays counted
    let mut saved = save_state(config, st, opts);
    log::operator_action_start(name, op.as_str(), &shown);
    let r = actions::operate(&target.action, op, config, name, &env);
    log::operator_action_done(name, op.as_str(), &shown, &r);
    if let Some(s) = st.targets.get_mut(name) {
        policy::record_result(
            s,
            action_record(config, op.as_str(), policy::By::Operator, &r, now),
        );
    }
    saved &= save_state(config, st, opts);
    (r, saved)
}

/// Phase three for one target: run its action (or `on_give_up`) and log what happened.
fn run_work(config: &Config, target: &Target, w: Work, state: &TargetState) -> ActionResult {
    let name = target.name.as_str();
    let (event, argv) = match w {
        Work::Act(kind) => (
            kind.as_str(),
            actions::argv(&target.action, kind, config).unwrap_or_default(),
        ),
        Work::GiveUp => (
            "gave_up",
            target
                .on_give_up
                .as_ref()
                .map(|g| g.argv.clone())
                .unwrap_or_default(),
        ),
    };
    let shown = config.redactor.argv(&argv);
    let env = crate::events::env(
        name,
        event,
        state.status.as_str(),
        state.last_reason.as_deref().unwrap_or_default(),
        state.consecutive_failures,
    );
    match (w, &target.on_give_up) {
        (Work::Act(kind), _) => {
            log::action_start(target, state, kind, &shown);
            let r = actions::run(&target.action, kind, config, name, &env);
            log::action_done(name, kind.as_str(), &shown, &r);
            r
        }
        (Work::GiveUp, Some(g)) => {
            let r = actions::on_give_up(g, &config.redactor, &env);
            log::on_give_up_done(name, &shown, &r);
            r
        }
        (Work::GiveUp, None) => ActionResult::default(),
    }
}

/// Phase four: notifications. What cannot be delivered is kept in the state file for the
/// next pass (saved again here if anything changed).
fn tell(
    config: &Config,
    st: &mut StateFile,
    report: &mut PassReport,
    opts: Options,
    now: SystemTime,
) {
    if opts.dry_run {
        log::notifications_skipped(config, &report.events);
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
        now,
    );
    if st.pending_notifications != before && report.saved {
        report.saved = save_state(config, st, opts);
    }
}

/// Load the state for a pass (a bad file is reported and replaced by fresh state).
/// A state file where other users can create files (see `Config::state_untrusted`) is not
/// read: fresh state, and every save fails (said once a pass), as for an unwritable state.
pub fn load_state(config: &Config, opts: Options) -> StateFile {
    if config.state_untrusted.is_some() {
        return StateFile::default();
    }
    let loaded = state::load(&config.state_file, opts.dry_run);
    if let Some(w) = loaded.warning {
        tracing::warn!("{w}");
    }
    loaded.state
}

/// Save unless dry-run; a failure is logged (the pass itself already happened).
pub fn save_state(config: &Config, st: &StateFile, opts: Options) -> bool {
    if opts.dry_run {
        return true;
    }
    match save_file(config, st) {
        Ok(()) => true,
        Err(e) => {
            log::state_unsaved(&e, config.state_untrusted.is_some(), opts.in_process_state);
            false
        }
    }
}

/// Write the state file, unless the config does not trust where it lies: then it is as
/// unwritable (the checks run, a oneshot pass runs no action: `reason=state_unwritable`).
fn save_file(config: &Config, st: &StateFile) -> Result<(), String> {
    match &config.state_untrusted {
        Some(why) => Err(why.clone()),
        None => state::save(&config.state_file, st, &config.redactor),
    }
}

/// Take the lock for a pass (not in a dry run, which changes nothing). Held by another
/// instance: exit 75. Impossible (a read-only or unusable state directory): said on an error
/// line, and the pass goes on unlocked: every check runs, no action does.
pub fn lock(config: &Config, opts: &mut Options) -> Result<Option<state::Lock>, Error> {
    if opts.dry_run {
        return Ok(None);
    }
    match state::lock(&config.lock_file) {
        Ok(l) => {
            opts.unlocked = false;
            Ok(Some(l))
        }
        Err(e @ Error::Locked { .. }) => Err(e),
        Err(e) => {
            log::unlocked(&e);
            opts.unlocked = true;
            Ok(None)
        }
    }
}

/// `check` and `run --once`: one pass, then the exit code.
pub fn check(config: &Config, mut opts: Options, mode: &str) -> Result<Exit, Error> {
    log_start(config, mode, opts);
    let _lock = lock(config, &mut opts)?;
    let mut st = load_state(config, opts);
    let report = pass(config, &mut st, opts);
    log_pass(&report);
    let exit = report.exit();
    // The process exits next, and the kernel takes its memory back at once: freeing the state
    // and the report piece by piece would cost a millisecond and more at 1,000 targets.
    std::mem::forget(report);
    std::mem::forget(st);
    Ok(exit)
}
