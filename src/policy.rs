//! The restart policy: a pure function of (previous state, this pass's outcome, policy, what
//! the action can do, now). No I/O, no clock reads: tested with a fake clock below.
//!
//! Statuses: `healthy`; `degraded` (failing, below `fail_threshold`, or inside the grace
//! period after a restart); `failed` (threshold reached: recovering); `gave_up`.
//!
//! Rules:
//! - A healthy pass resets the consecutive-failure count, the backoff and `gave_up`.
//! - A failed pass counts; once the count reaches `fail_threshold` the target is `failed` and
//!   the policy acts, unless
//!   - it gave up already (skip: `gave_up`), or gives up now: `give_up_after_restarts`
//!     actions ran without a healthy pass in between and it still fails;
//!   - the action is `none` (skip: `monitor_only`);
//!   - the last action is younger than `restart_cooldown` (skip: `cooldown`);
//!   - the backoff wait has not passed (skip: `backoff`): the k-th restart without a healthy
//!     pass in between waits `backoff_initial * backoff_multiplier^(k-2)` after the previous
//!     one, capped at `backoff_max`;
//!   - the sliding last hour already holds `max_restarts_per_hour` actions (skip:
//!     `rate_limit`).
//! - Within `restart_grace` after an action, failures are reported but not counted (and
//!   nothing is done): a service that is still starting is not restarted again.
//! - Every action run, start or restart, counts as a restart for cooldown, backoff, the
//!   hourly cap and give-up, whether or not it succeeded: a broken action must not become a
//!   restart storm.
//! - `start` when a process check found the process not running, else `restart`; fall back to
//!   whichever the action defines.
//! - Durations are measured on the time that really passed: before a pass decides, every time
//!   recorded is moved by the step of the wall clock since the state was saved ([`clock_step`],
//!   measured against `CLOCK_BOOTTIME` within a boot), so a clock step neither fills the hourly
//!   cap with restarts "in the future" nor empties it. A time still in the future is clamped to
//!   `now`.
//! - A pass whose only failures are the watchdog's own (a check command could not be started
//!   for lack of processes or memory) is inconclusive: not counted, no action.
//!
//! [`alerts`] turns a decision into what humans are told, debounced: `down` once when a
//! target reaches `failed`, `gave_up` once, `recovered` once on the first healthy pass after
//! them, `rate_limited` once per stretch of capped passes, and a reminder every
//! `reminder_every` while it stays down. Never one per pass.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

pub const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Consecutive failed passes before acting (>= 1).
    pub fail_threshold: u32,
    /// Minimum time between two actions; zero means none.
    pub restart_cooldown: Duration,
    /// At most this many actions in any sliding hour (>= 1).
    pub max_restarts_per_hour: u32,
    /// After an action, failures are reported but not counted for this long (zero: none).
    pub restart_grace: Duration,
    /// Wait before the 2nd restart without a healthy pass in between; zero: no backoff.
    pub backoff_initial: Duration,
    /// Each further restart without a healthy pass waits this many times longer (>= 1).
    pub backoff_multiplier: f64,
    /// The longest backoff wait; zero: no cap.
    pub backoff_max: Duration,
    /// Give up after this many restarts without a healthy pass in between; zero: never.
    pub give_up_after_restarts: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fail_threshold: 1,
            restart_cooldown: Duration::from_secs(60),
            max_restarts_per_hour: 10,
            restart_grace: Duration::ZERO,
            backoff_initial: Duration::ZERO,
            backoff_multiplier: 2.0,
            backoff_max: Duration::ZERO,
            give_up_after_restarts: 0,
        }
    }
}

/// A target's status, as the policy sees it after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Never checked (or reset).
    #[default]
    Unknown,
    Healthy,
    /// Failing, but below fail_threshold or inside the grace period after a restart.
    Degraded,
    /// fail_threshold reached: recovering (actions run under the policy).
    #[serde(alias = "failing")]
    Failed,
    /// `give_up_after_restarts` restarts did not bring it back: no more actions until a
    /// healthy pass or `neon-watchdog reset`.
    GaveUp,
}

impl Health {
    pub const ALL: [Health; 5] = [
        Health::Unknown,
        Health::Healthy,
        Health::Degraded,
        Health::Failed,
        Health::GaveUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failed => "failed",
            Health::GaveUp => "gave_up",
        }
    }

    /// Failed or gave up: down, as far as notifications are concerned.
    pub fn is_down(self) -> bool {
        matches!(self, Health::Failed | Health::GaveUp)
    }
}

/// The most recent status changes kept per target.
pub const MAX_TRANSITIONS: usize = 20;

/// One status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    #[serde(with = "crate::util::time_rfc3339")]
    pub at: SystemTime,
    pub from: Health,
    pub to: Health,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the policy remembers about one target between passes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetState {
    pub status: Health,
    /// When `status` last changed.
    #[serde(with = "crate::util::opt_time")]
    pub since: Option<SystemTime>,
    pub consecutive_failures: u32,
    pub last_reason: Option<String>,
    #[serde(with = "crate::util::opt_time")]
    pub last_check: Option<SystemTime>,
    /// Actions run in the last hour (the sliding window of the hourly cap).
    #[serde(with = "crate::util::time_vec")]
    pub restarts: Vec<SystemTime>,
    #[serde(with = "crate::util::opt_time")]
    pub last_restart: Option<SystemTime>,
    /// Actions run since the last healthy pass (backoff and give-up count these).
    pub restarts_since_healthy: u32,
    /// Actions run, ever (the metrics counter).
    pub restarts_total: u64,
    /// When the target went down (reached `failed`), for the downtime of `recovered`.
    #[serde(with = "crate::util::opt_time")]
    pub down_since: Option<SystemTime>,
    /// When humans were last told it is down (`down`, `gave_up` or a reminder).
    #[serde(with = "crate::util::opt_time")]
    pub last_alert: Option<SystemTime>,
    /// The last due action was skipped by the hourly cap (`rate_limited` is told once).
    pub rate_limited: bool,
    /// The last [`MAX_TRANSITIONS`] status changes, oldest first.
    pub transitions: Vec<Transition>,
    /// Checks that failed, ever (a metrics counter: a flap between two scrapes still shows).
    pub checks_failed_total: u64,
    /// When a pass last found the target healthy.
    #[serde(with = "crate::util::opt_time")]
    pub last_healthy: Option<SystemTime>,
    /// The last check could not be carried out (the watchdog's own trouble, e.g. a check's
    /// program missing): `status` is what was known before, so the target is not known to be
    /// in it now. It is due for a check on every pass until one is conclusive, and `status`
    /// shows it unknown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inconclusive: bool,
    /// Paused by an operator (`neon-watchdog pause`): not checked, nothing done for it, not
    /// counted for the exit code, until resumed or `until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
    /// The last [`MAX_ACTIONS`] actions run for it, oldest first: what ran, who decided it,
    /// how it ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
    /// The processes its checks found at the last check (process_name: the oldest match;
    /// pid_file: the pid in the file), for `status TARGET`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<i32>,
}

/// An operator's pause of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    #[serde(with = "crate::util::time_rfc3339")]
    pub since: SystemTime,
    /// It ends by itself then (`pause --for`); None: until `resume`.
    #[serde(default, with = "crate::util::opt_time")]
    pub until: Option<SystemTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who decided an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// The restart policy, on a failed pass.
    Policy,
    /// An operator's verb (`restart`, `start`, `stop`).
    Operator,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Policy => "policy",
            By::Operator => "operator",
        }
    }
}

/// One action run, as `status TARGET` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    #[serde(with = "crate::util::time_rfc3339")]
    pub at: SystemTime,
    /// `start`, `restart`, `stop`, `on_give_up`.
    pub kind: String,
    pub by: By,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    pub duration_ms: u64,
    /// Why it failed (masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The most recent actions kept per target.
pub const MAX_ACTIONS: usize = 10;

/// Keep an action's record (the last [`MAX_ACTIONS`]).
pub fn record_result(state: &mut TargetState, record: ActionRecord) {
    state.actions.push(record);
    let excess = state.actions.len().saturating_sub(MAX_ACTIONS);
    state.actions.drain(..excess);
}

impl TargetState {
    /// The latest time recorded in it.
    pub fn latest_time(&self) -> Option<SystemTime> {
        let one = [
            self.since,
            self.last_check,
            self.last_restart,
            self.down_since,
            self.last_alert,
            self.last_healthy,
        ];
        one.into_iter()
            .flatten()
            .chain(self.restarts.iter().copied())
            .chain(self.transitions.iter().map(|t| t.at))
            .chain(self.actions.iter().map(|a| a.at))
            .chain(self.paused.as_ref().map(|p| p.since))
            .max()
    }

    /// Move every time recorded in it by `step` (onto the wall clock of now).
    pub fn shift_times(&mut self, step: Step) {
        for t in [
            &mut self.since,
            &mut self.last_check,
            &mut self.last_restart,
            &mut self.down_since,
            &mut self.last_alert,
            &mut self.last_healthy,
        ]
        .into_iter()
        .flatten()
        {
            *t = step.apply(*t);
        }
        for t in &mut self.restarts {
            *t = step.apply(*t);
        }
        for tr in &mut self.transitions {
            tr.at = step.apply(tr.at);
        }
        for a in &mut self.actions {
            a.at = step.apply(a.at);
        }
        if let Some(p) = &mut self.paused {
            p.since = step.apply(p.since);
            p.until = p.until.map(|u| step.apply(u));
        }
    }
}

/// One reading of the clocks: the wall clock, and at the same moment the boot it was taken in
/// and the time since that boot (`CLOCK_BOOTTIME`: it counts suspend, and no step of the wall
/// clock moves it). Saved with the state, it tells the next pass of the same boot how much time
/// really passed, whatever the wall clock did meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReading {
    #[serde(with = "crate::util::time_rfc3339")]
    pub wall: SystemTime,
    pub boot_id: String,
    pub boottime_ms: u64,
}

/// A step of the wall clock: how far a time recorded before it must move to read on the wall
/// clock of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The clock went back (times move back with it).
    pub back: bool,
    pub by: Duration,
}

impl Step {
    pub fn apply(self, t: SystemTime) -> SystemTime {
        if self.back {
            t.checked_sub(self.by).unwrap_or(SystemTime::UNIX_EPOCH)
        } else {
            t.checked_add(self.by).unwrap_or(t)
        }
    }
}

/// Steps smaller than this are not told apart from the moment between the two clock readings
/// (and suspend's rounding): the times stay as they are.
pub const STEP_TOLERANCE: Duration = Duration::from_secs(1);

/// How far the wall clock stepped since the state was saved (`saved`: the reading saved with
/// it; `now` and `reading`: this pass's). Within one boot the time that really passed is the
/// difference of the two `CLOCK_BOOTTIME` readings, so a step either way is measured exactly.
/// Across boots, or without readings (an older state file), only a step back shows, as times
/// recorded in the future (`latest`: the latest recorded): the last of them is taken as just
/// now, so the recorded times keep their spacing. Either way, a step never makes a restart
/// look more recent than it was, so it never blocks recovery for longer than the policy would
/// without it (at most one cooldown, measured from the last pass before the step).
pub fn clock_step(
    saved: Option<&ClockReading>,
    now: SystemTime,
    reading: Option<&ClockReading>,
    latest: Option<SystemTime>,
) -> Option<Step> {
    if let (Some(a), Some(b)) = (saved, reading) {
        if a.boot_id == b.boot_id && b.boottime_ms >= a.boottime_ms {
            let passed = Duration::from_millis(b.boottime_ms - a.boottime_ms);
            let expected = a.wall.checked_add(passed)?;
            let (back, by) = match now.duration_since(expected) {
                Ok(d) => (false, d),
                Err(e) => (true, e.duration()),
            };
            return (by >= STEP_TOLERANCE).then_some(Step { back, by });
        }
    }
    let by = latest?.duration_since(now).ok()?;
    (!by.is_zero()).then_some(Step { back: true, by })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The target reached `failed` (its fail_threshold).
    Down,
    /// The first healthy pass after `failed` or `gave_up`.
    Recovered,
    /// `give_up_after_restarts` restarts did not bring it back: no more restarts.
    GaveUp,
    /// A recovery action ran and succeeded.
    Restart,
    /// A recovery action ran and failed.
    RestartFailed,
    /// An action was due but skipped by the hourly cap.
    RateLimited,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Down,
        EventKind::Recovered,
        EventKind::GaveUp,
        EventKind::Restart,
        EventKind::RestartFailed,
        EventKind::RateLimited,
    ];

    /// What a notifier gets when its `events:` is not given.
    pub const DEFAULT: [EventKind; 3] = [EventKind::Down, EventKind::Recovered, EventKind::GaveUp];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Down => "down",
            EventKind::Recovered => "recovered",
            EventKind::GaveUp => "gave_up",
            EventKind::Restart => "restart",
            EventKind::RestartFailed => "restart_failed",
            EventKind::RateLimited => "rate_limited",
        }
    }

    /// How urgent: `critical` (gave up: a human must act), `error` (down, a restart failed),
    /// `warning` (restarts paused by the hourly cap), `info` (recovered, restarted).
    pub fn severity(self) -> &'static str {
        match self {
            EventKind::GaveUp => "critical",
            EventKind::Down | EventKind::RestartFailed => "error",
            EventKind::RateLimited => "warning",
            EventKind::Recovered | EventKind::Restart => "info",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a check, or a whole pass over a target, found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Healthy,
    /// The target is failing. `not_running`: a process check found its process not running
    /// at all (the policy then prefers `start` over `restart`).
    Failing {
        not_running: bool,
    },
    /// The watchdog could not judge: it could not carry the check out for a reason of its own
    /// (out of processes or memory, a bug). "I cannot tell" is never "failing".
    Unknown,
}

impl Verdict {
    pub const FAILING: Verdict = Verdict::Failing { not_running: false };
    pub const NOT_RUNNING: Verdict = Verdict::Failing { not_running: true };

    pub fn is_healthy(self) -> bool {
        self == Verdict::Healthy
    }

    /// The verdict of a target from its checks' verdicts: failing if any check failed (not
    /// running if any said so); else unknown if any could not be carried out; else healthy.
    pub fn of(checks: impl IntoIterator<Item = Verdict>) -> Verdict {
        checks
            .into_iter()
            .fold(Verdict::Healthy, |acc, v| match (acc, v) {
                (Verdict::Failing { not_running: a }, Verdict::Failing { not_running: b }) => {
                    Verdict::Failing {
                        not_running: a || b,
                    }
                }
                (f @ Verdict::Failing { .. }, _) | (_, f @ Verdict::Failing { .. }) => f,
                (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
                _ => Verdict::Healthy,
            })
    }
}

/// This pass's result for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// The failing checks' reasons, joined (empty when healthy).
    pub reason: String,
    /// How many checks failed (for the `checks_failed_total` counter).
    pub failed_checks: u32,
}

/// Which commands the target's action has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    pub start: bool,
    pub restart: bool,
}

impl Available {
    pub const NONE: Available = Available {
        start: false,
        restart: false,
    };
    pub const RESTART_ONLY: Available = Available {
        start: false,
        restart: true,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Start,
    Restart,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Start => "start",
            ActionKind::Restart => "restart",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Healthy: nothing to do.
    Healthy,
    /// The checks could not be carried out: nothing is counted, nothing is done.
    Inconclusive,
    /// Failing, but fewer consecutive failures than the threshold.
    BelowThreshold { failures: u32, threshold: u32 },
    /// Failing within `restart_grace` after an action: not counted, nothing done.
    Grace { remaining: Duration },
    /// Run the action now (counted by [`record_action`] once it runs).
    Act(ActionKind),
    /// Give up now: `restarts` actions did not bring it back. Run `on_give_up` once.
    GiveUp { restarts: u32 },
    /// Would act, but may not.
    Skip(Skip),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// `action: none`.
    MonitorOnly,
    /// Gave up on an earlier pass; waiting for a healthy pass or `reset`.
    GaveUp,
    Cooldown {
        remaining: Duration,
    },
    Backoff {
        remaining: Duration,
        /// The whole wait before this restart.
        wait: Duration,
    },
    RateLimit {
        restarts_last_hour: u32,
        max: u32,
    },
    /// A target it `depends_on` is down this pass (named: the first one down, following
    /// dependencies of dependencies): restarting this one would not bring it back.
    DependencyDown {
        dependency: String,
    },
}

impl Skip {
    pub fn reason(&self) -> &'static str {
        match self {
            Skip::MonitorOnly => "monitor_only",
            Skip::GaveUp => "gave_up",
            Skip::Cooldown { .. } => "cooldown",
            Skip::Backoff { .. } => "backoff",
            Skip::RateLimit { .. } => "rate_limit",
            Skip::DependencyDown { .. } => "dependency_down",
        }
    }
}

fn clamp(t: SystemTime, now: SystemTime) -> SystemTime {
    t.min(now)
}

/// The wait before the next action when `restarts` actions already ran without a healthy
/// pass in between (zero for the first one, or without backoff).
pub fn backoff_wait(policy: &Policy, restarts: u32) -> Duration {
    if policy.backoff_initial.is_zero() || restarts == 0 {
        return Duration::ZERO;
    }
    // capped at a year: the config caps every *_seconds there, and f64 -> Duration must
    // not overflow
    let year = 365.0 * 24.0 * 3600.0;
    let exp = i32::try_from(restarts - 1).unwrap_or(i32::MAX);
    let secs = policy.backoff_initial.as_secs_f64() * policy.backoff_multiplier.powi(exp);
    let mut wait = Duration::from_secs_f64(if secs.is_finite() {
        secs.min(year)
    } else {
        year
    });
    if !policy.backoff_max.is_zero() {
        wait = wait.min(policy.backoff_max);
    }
    wait
}

/// Record a status change (keeping the last [`MAX_TRANSITIONS`]).
fn set_status(next: &mut TargetState, to: Health, reason: Option<&str>, now: SystemTime) {
    if next.status == to {
        return;
    }
    next.transitions.push(Transition {
        at: now,
        from: next.status,
        to,
        reason: reason.filter(|r| !r.is_empty()).map(str::to_string),
    });
    let excess = next.transitions.len().saturating_sub(MAX_TRANSITIONS);
    next.transitions.drain(..excess);
    next.status = to;
    next.since = Some(now);
}

/// Decide what to do about one target this pass. Returns the new state and the decision.
/// `Act` is only a decision: the caller records the action with [`record_action`] when it
/// runs it.
pub fn decide(
    prev: &TargetState,
    outcome: &Outcome,
    policy: &Policy,
    available: Available,
    now: SystemTime,
) -> (TargetState, Decision) {
    let mut next = prev.clone();
    next.last_check = Some(now);
    next.checks_failed_total = prev
        .checks_failed_total
        .saturating_add(u64::from(outcome.failed_checks));
    next.last_restart = prev.last_restart.map(|t| clamp(t, now));
    next.since = prev.since.map(|t| clamp(t, now));
    next.down_since = prev.down_since.map(|t| clamp(t, now));
    next.last_alert = prev.last_alert.map(|t| clamp(t, now));
    let window_start = now.checked_sub(HOUR).unwrap_or(SystemTime::UNIX_EPOCH);
    next.restarts = prev
        .restarts
        .iter()
        .map(|t| clamp(*t, now))
        .filter(|t| *t > window_start)
        .collect();

    next.inconclusive = outcome.verdict == Verdict::Unknown;
    if outcome.verdict == Verdict::Unknown {
        // Not knowing is no failure: restarting a service because the watchdog ran out of
        // processes would make things worse. Why it could not tell is kept (status shows it).
        next.last_reason = Some(outcome.reason.clone()).filter(|r| !r.is_empty());
        return (next, Decision::Inconclusive);
    }

    if outcome.verdict.is_healthy() {
        set_status(&mut next, Health::Healthy, None, now);
        next.last_healthy = Some(now);
        next.consecutive_failures = 0;
        next.last_reason = None;
        next.restarts_since_healthy = 0;
        next.rate_limited = false;
        next.down_since = None;
        return (next, Decision::Healthy);
    }

    let reason = outcome.reason.as_str();
    next.last_reason = Some(outcome.reason.clone());

    if prev.status == Health::GaveUp {
        next.consecutive_failures = prev.consecutive_failures.saturating_add(1);
        return (next, Decision::Skip(Skip::GaveUp));
    }

    if let Some(last) = next.last_restart {
        let elapsed = now.duration_since(last).unwrap_or(Duration::ZERO);
        if elapsed < policy.restart_grace {
            // still starting: report, do not count; a target that was down stays down
            if prev.status != Health::Failed {
                set_status(&mut next, Health::Degraded, Some(reason), now);
            }
            let remaining = policy.restart_grace - elapsed;
            return (next, Decision::Grace { remaining });
        }
    }

    next.consecutive_failures = prev.consecutive_failures.saturating_add(1);
    if next.consecutive_failures < policy.fail_threshold {
        set_status(&mut next, Health::Degraded, Some(reason), now);
        let d = Decision::BelowThreshold {
            failures: next.consecutive_failures,
            threshold: policy.fail_threshold,
        };
        return (next, d);
    }
    if !next.status.is_down() {
        next.down_since = Some(now);
    }
    set_status(&mut next, Health::Failed, Some(reason), now);

    let done = next.restarts_since_healthy;
    if policy.give_up_after_restarts > 0 && done >= policy.give_up_after_restarts {
        let why = format!("{done} restarts did not bring it back: {reason}");
        set_status(&mut next, Health::GaveUp, Some(&why), now);
        next.rate_limited = false;
        return (next, Decision::GiveUp { restarts: done });
    }
    let not_running = outcome.verdict == Verdict::NOT_RUNNING;
    let kind = match (not_running, available.start, available.restart) {
        (_, false, false) => return (next, Decision::Skip(Skip::MonitorOnly)),
        (true, true, _) | (_, true, false) => ActionKind::Start,
        _ => ActionKind::Restart,
    };
    if let Some(last) = next.last_restart {
        let elapsed = now.duration_since(last).unwrap_or(Duration::ZERO);
        if elapsed < policy.restart_cooldown {
            let remaining = policy.restart_cooldown - elapsed;
            return (next, Decision::Skip(Skip::Cooldown { remaining }));
        }
        let wait = backoff_wait(policy, done);
        if elapsed < wait {
            let remaining = wait - elapsed;
            return (next, Decision::Skip(Skip::Backoff { remaining, wait }));
        }
    }
    let count = next.restarts.len() as u32;
    if count >= policy.max_restarts_per_hour {
        next.rate_limited = true;
        let d = Decision::Skip(Skip::RateLimit {
            restarts_last_hour: count,
            max: policy.max_restarts_per_hour,
        });
        return (next, d);
    }
    (next, Decision::Act(kind))
}

/// An action decided by [`decide`] really runs now: count it for cooldown, backoff, the
/// hourly cap and give-up. Called where the action is started, so a dry run (which runs
/// nothing) records nothing.
pub fn record_action(state: &mut TargetState, now: SystemTime) {
    state.restarts.push(now);
    state.last_restart = Some(now);
    state.restarts_since_healthy = state.restarts_since_healthy.saturating_add(1);
    state.restarts_total = state.restarts_total.saturating_add(1);
    state.rate_limited = false;
}

/// What to tell humans about this pass's decision (see the module doc), before any action
/// runs (`restart`/`restart_failed` come from the action's result). Updates `last_alert` in
/// `next`. `reminder_every`: repeat `down` while the target stays down.
pub fn alerts(
    prev: &TargetState,
    next: &mut TargetState,
    decision: &Decision,
    reminder_every: Option<Duration>,
    now: SystemTime,
) -> Vec<Alert> {
    let mut out = Vec::new();
    let was_down = prev.status.is_down();
    match next.status {
        Health::Healthy if was_down => {
            let downtime = prev
                .down_since
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or(Duration::ZERO);
            out.push(Alert::new(EventKind::Recovered, Some(downtime)));
            next.last_alert = None;
        }
        Health::Failed if !was_down => out.push(Alert::new(EventKind::Down, None)),
        Health::GaveUp if prev.status != Health::GaveUp => {
            out.push(Alert::new(EventKind::GaveUp, None))
        }
        _ => {}
    }
    if let (Decision::Skip(Skip::RateLimit { .. }), false) = (decision, prev.rate_limited) {
        out.push(Alert::new(EventKind::RateLimited, None));
    }
    let told = out
        .iter()
        .any(|a| matches!(a.kind, EventKind::Down | EventKind::GaveUp));
    if told {
        next.last_alert = Some(now);
    } else if let (true, Some(every)) = (next.status.is_down(), reminder_every) {
        let last = next.last_alert.or(next.down_since);
        let due = last.is_none_or(|t| now.duration_since(t).unwrap_or(Duration::ZERO) >= every);
        if due && !every.is_zero() {
            let downtime = next.down_since.and_then(|t| now.duration_since(t).ok());
            out.push(Alert {
                kind: EventKind::Down,
                reminder: true,
                downtime,
            });
            next.last_alert = Some(now);
        }
    }
    out
}

/// How early a target with its own `interval_seconds` may be checked: half a pass interval
/// (`tick`), at most half its own. Timers drift: a target due every 300 s on a 30 s timer is
/// checked on the tick nearest its due time, not one tick late every other time.
fn due_slack(interval: Duration, tick: Duration) -> Duration {
    (tick / 2).min(interval / 2)
}

/// When a target checked every `interval` (its own `interval_seconds`) is next due: `None`
/// means now (no interval of its own; never checked; its status unknown, as after `reset`;
/// its last check inconclusive). A last check in the future (the clock went back)
/// is ignored.
///
/// After an action, the verdict that called for it is stale: the target is due again as soon
/// as the action's `grace` (its `restart_grace`) is over, on the next pass without one, not a
/// whole interval later: a dependency its action fixed must not hold its dependents, nor read
/// `failed`, for an hour.
pub fn next_due(
    state: &TargetState,
    interval: Option<Duration>,
    tick: Duration,
    grace: Duration,
    now: SystemTime,
) -> Option<SystemTime> {
    let (last, interval) = (state.last_check?, interval?);
    if last > now || state.status == Health::Unknown || state.inconclusive {
        return None;
    }
    if let Some(acted) = state.last_restart {
        // not checked since the action, or only inside its grace (a verdict not counted)
        let settled = acted.checked_add(grace)?;
        if last <= acted || last < settled {
            return (settled > now).then_some(settled);
        }
    }
    let at = last
        .checked_add(interval)?
        .checked_sub(due_slack(interval, tick))?;
    (at > now).then_some(at)
}

/// `depends_on`, for every target at once: the first target each depends on that is down
/// (not healthy), in `depends_on` order, following dependencies of dependencies depth first
/// (a web app on a cache on a database is held while the database is down). `deps[i]` are the
/// indexes target `i` depends on (disabled targets left out: they count as healthy);
/// `healthy[i]` its verdict. A cycle, which the config refuses, ends the search.
/// [`dependencies_down`] by name, for the engine and `status` alike: target `i` is named
/// `names[i]`, depends on the targets named in `depends_on[i]`, and is healthy per
/// `healthy[i]`; a name of no target here (a disabled one, left out of `names` by passing
/// `None`) counts as healthy.
pub fn dependencies_down_by_name(
    names: &[Option<&str>],
    depends_on: &[&[String]],
    healthy: &[bool],
) -> Vec<Option<usize>> {
    let index: std::collections::HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some(((*n)?, i)))
        .collect();
    let deps: Vec<Vec<usize>> = depends_on
        .iter()
        .map(|ds| {
            ds.iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    dependencies_down(&deps, healthy)
}

/// [`dependencies_down_by_name`] on indexes: `deps[i]`, the targets `i` depends on.
pub fn dependencies_down(deps: &[Vec<usize>], healthy: &[bool]) -> Vec<Option<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Memo {
        New,
        Open,
        Done(Option<usize>),
    }
    fn visit(i: usize, deps: &[Vec<usize>], healthy: &[bool], memo: &mut [Memo]) -> Option<usize> {
        match memo[i] {
            Memo::Done(d) => return d,
            Memo::Open => return None,
            Memo::New => {}
        }
        memo[i] = Memo::Open;
        let mut found = None;
        for &d in &deps[i] {
            if !healthy.get(d).copied().unwrap_or(true) {
                found = Some(d);
                break;
            }
            if let Some(x) = visit(d, deps, healthy, memo) {
                found = Some(x);
                break;
            }
        }
        memo[i] = Memo::Done(found);
        found
    }
    let mut memo = vec![Memo::New; deps.len()];
    (0..deps.len())
        .map(|i| visit(i, deps, healthy, &mut memo))
        .collect()
}

/// Why a target's next action must wait, and until when: what `status` shows for a failing
/// target the policy is not acting on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wait {
    /// `paused`, `gave_up`, `grace`, `below_threshold`, `cooldown`, `backoff`, `rate_limit`
    /// (the engine's `reason=` words), or `dependency_down` (see `status`).
    pub reason: &'static str,
    /// When it ends by itself; None: it does not (a pause without `--for`, `gave_up`), or at
    /// the next failed check (`below_threshold`).
    #[serde(serialize_with = "crate::util::opt_time::serialize")]
    pub until: Option<SystemTime>,
    /// In words, with the figures: `3 of 3 restarts in the last hour`.
    pub detail: String,
}

/// What holds the next action of a target in state `s` back at `now`, if anything, by the
/// same rules as [`decide`] and in its order: a pause, `gave_up`, the grace after an action,
/// the fail threshold, the cooldown, the backoff, the hourly cap. Pure; `status` and the
/// operator's verbs use it, so what they say is what the next pass does.
pub fn waiting(s: &TargetState, policy: &Policy, now: SystemTime) -> Option<Wait> {
    let wait = |reason, until, detail: String| {
        Some(Wait {
            reason,
            until,
            detail,
        })
    };
    if let Some(p) = &s.paused {
        let detail = p
            .reason
            .clone()
            .unwrap_or_else(|| "paused by an operator".to_string());
        return wait("paused", p.until, detail);
    }
    if s.status == Health::GaveUp {
        return wait(
            "gave_up",
            None,
            format!(
                "gave up after {} restarts; `neon-watchdog reset` or a healthy check lets it act again",
                s.restarts_since_healthy
            ),
        );
    }
    let after = |d: Duration| {
        s.last_restart
            .and_then(|t| t.checked_add(d))
            .filter(|u| *u > now)
    };
    if let Some(until) = after(policy.restart_grace) {
        return wait(
            "grace",
            Some(until),
            "starting after an action: failures are not counted".to_string(),
        );
    }
    // the next failed check still does not reach the threshold
    if s.status != Health::Failed
        && s.consecutive_failures.saturating_add(1) < policy.fail_threshold
    {
        return wait(
            "below_threshold",
            None,
            format!(
                "{} of {} failed checks in a row before acting",
                s.consecutive_failures, policy.fail_threshold
            ),
        );
    }
    // the time-based holds: what it waits for is the one that ends last (a cooldown of a
    // minute says nothing when the hourly cap holds for another 59), the others are named too
    let mut holds: Vec<(&'static str, Option<SystemTime>, String)> = Vec::new();
    if let Some(until) = after(policy.restart_cooldown) {
        holds.push((
            "cooldown",
            Some(until),
            format!(
                "restart_cooldown_seconds {}",
                policy.restart_cooldown.as_secs()
            ),
        ));
    }
    let backoff = backoff_wait(policy, s.restarts_since_healthy);
    if let Some(until) = after(backoff) {
        holds.push((
            "backoff",
            Some(until),
            format!(
                "{} without a healthy check: waiting {}s before the next",
                plural(s.restarts_since_healthy, "restart"),
                backoff.as_secs()
            ),
        ));
    }
    let window_start = now.checked_sub(HOUR).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut recent: Vec<SystemTime> = s
        .restarts
        .iter()
        .map(|t| clamp(*t, now))
        .filter(|t| *t > window_start)
        .collect();
    let max = policy.max_restarts_per_hour as usize;
    if max > 0 && recent.len() >= max {
        recent.sort();
        // the cap lets an action run again once enough of these are an hour old
        holds.push((
            "rate_limit",
            recent[recent.len() - max].checked_add(HOUR),
            format!(
                "{} of {} restarts in the last hour (max_restarts_per_hour)",
                recent.len(),
                max
            ),
        ));
    }
    // None (no end) sorts last
    let last = holds
        .iter()
        .enumerate()
        .max_by_key(|(_, h)| (h.1.is_none(), h.1))
        .map(|(i, _)| i)?;
    let (reason, until, mut detail) = holds.swap_remove(last);
    for (r, u, _) in &holds {
        if let Some(u) = u {
            let _ = write!(
                detail,
                "; also {r} until {}",
                crate::util::rfc3339_seconds(*u)
            );
        }
    }
    wait(reason, until, detail)
}

/// "1 restart", "3 restarts".
fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `neon-watchdog pause`: from now, until `until` (None: until `resume`). Returns whether it
/// was not paused already (a second pause changes nothing, not even its end).
pub fn pause(
    s: &mut TargetState,
    now: SystemTime,
    until: Option<SystemTime>,
    reason: Option<String>,
) -> bool {
    if s.paused.is_some() {
        return false;
    }
    s.paused = Some(Pause {
        since: now,
        until,
        reason,
    });
    true
}

/// A pause whose `--for` is over at `now` ends: returns it (the engine logs that it ended).
pub fn pause_expired(s: &mut TargetState, now: SystemTime) -> Option<Pause> {
    if s.paused.as_ref()?.until.is_some_and(|u| u <= now) {
        return s.paused.take();
    }
    None
}

/// `neon-watchdog reset`: forget failures, backoff and `gave_up`, so the policy acts again on
/// the next failed pass. The hourly window and the cooldown stay: a reset must not open the
/// door to a restart storm. Returns whether anything changed.
pub fn reset(state: &mut TargetState, now: SystemTime) -> bool {
    if state.status == Health::Healthy {
        // nothing to forget: a healthy target has no failures, backoff or gave_up; it stays
        // healthy (`reset --all` must not make `status` report it unknown)
        return false;
    }
    let before = state.clone();
    set_status(
        state,
        Health::Unknown,
        Some("reset by neon-watchdog reset"),
        now,
    );
    state.consecutive_failures = 0;
    state.restarts_since_healthy = 0;
    state.rate_limited = false;
    state.down_since = None;
    state.last_alert = None;
    state.last_reason = None;
    *state != before
}

/// One thing to tell humans (the engine adds the target's name and figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    pub kind: EventKind,
    /// A repeat of `down`.
    pub reminder: bool,
    /// `recovered` and reminders: how long it was (has been) down.
    pub downtime: Option<Duration>,
}

impl Alert {
    fn new(kind: EventKind, downtime: Option<Duration>) -> Alert {
        Alert {
            kind,
            reminder: false,
            downtime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Available = Available {
        start: true,
        restart: true,
    };

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn next_due_counts_from_the_last_check_with_half_a_tick_of_slack() {
        let tick = Duration::from_secs(30);
        let every = Some(Duration::from_secs(300));
        let checked = |status| TargetState {
            status,
            last_check: Some(at(1000)),
            ..TargetState::default()
        };
        let st = checked(Health::Healthy);
        assert_eq!(
            next_due(&st, every, tick, Duration::ZERO, at(1100)),
            Some(at(1285))
        );
        assert_eq!(next_due(&st, every, tick, Duration::ZERO, at(1285)), None);
        // no interval of its own, never checked, unknown, a clock gone back: due now
        assert_eq!(next_due(&st, None, tick, Duration::ZERO, at(1100)), None);
        assert_eq!(
            next_due(
                &TargetState::default(),
                every,
                tick,
                Duration::ZERO,
                at(1100)
            ),
            None
        );
        assert_eq!(
            next_due(
                &checked(Health::Unknown),
                every,
                tick,
                Duration::ZERO,
                at(1100)
            ),
            None
        );
        assert_eq!(next_due(&st, every, tick, Duration::ZERO, at(900)), None);
        // a failing target waits its interval too; a short interval gets half itself as slack
        assert!(next_due(
            &checked(Health::Failed),
            every,
            tick,
            Duration::ZERO,
            at(1100)
        )
        .is_some());
        let short = Some(Duration::from_secs(10));
        assert_eq!(
            next_due(&st, short, tick, Duration::ZERO, at(1001)),
            Some(at(1005))
        );
    }

    #[test]
    fn after_an_action_a_target_is_due_again_once_its_grace_is_over() {
        let tick = Duration::from_secs(30);
        let hourly = Some(HOUR);
        // failed at 1000 and acted on in that pass
        let acted = TargetState {
            status: Health::Failed,
            last_check: Some(at(1000)),
            last_restart: Some(at(1000)),
            ..TargetState::default()
        };
        // no grace: due on the next pass, not an hour later
        assert_eq!(
            next_due(&acted, hourly, tick, Duration::ZERO, at(1030)),
            None
        );
        // a grace of 20 s: due once it is over
        let grace = Duration::from_secs(20);
        assert_eq!(
            next_due(&acted, hourly, tick, grace, at(1010)),
            Some(at(1020))
        );
        assert_eq!(next_due(&acted, hourly, tick, grace, at(1020)), None);
        // checked inside the grace (not counted): still due when it ends
        let in_grace = TargetState {
            last_check: Some(at(1010)),
            ..acted.clone()
        };
        assert_eq!(
            next_due(&in_grace, hourly, tick, grace, at(1015)),
            Some(at(1020))
        );
        // checked after it: its interval again
        let checked = TargetState {
            status: Health::Healthy,
            last_check: Some(at(1030)),
            ..acted.clone()
        };
        assert_eq!(
            next_due(&checked, hourly, tick, grace, at(1040)),
            Some(at(1030 + 3600 - 15))
        );
    }

    #[test]
    fn dependencies_down_names_the_first_down_depth_first() {
        // 0 web -> [1 cache, 3 queue]; 1 cache -> [2 db]; 3 queue; 4 alone
        let deps = vec![vec![1, 3], vec![2], vec![], vec![], vec![]];
        let all_up = [true; 5];
        assert_eq!(dependencies_down(&deps, &all_up), vec![None; 5]);
        let db_down = [true, true, false, true, true];
        assert_eq!(
            dependencies_down(&deps, &db_down),
            vec![Some(2), Some(2), None, None, None]
        );
        let both = [true, false, false, false, true];
        assert_eq!(dependencies_down(&deps, &both)[0], Some(1));
        // a cycle (the config refuses them) ends the search instead of looping
        let cycle = vec![vec![1], vec![0]];
        assert_eq!(dependencies_down(&cycle, &[true, true]), vec![None, None]);
        assert_eq!(dependencies_down(&cycle, &[false, true])[1], Some(0));
    }

    fn policy(threshold: u32, cooldown: u64, per_hour: u32) -> Policy {
        Policy {
            fail_threshold: threshold,
            restart_cooldown: Duration::from_secs(cooldown),
            max_restarts_per_hour: per_hour,
            ..Policy::default()
        }
    }

    fn fail() -> Outcome {
        Outcome {
            verdict: Verdict::FAILING,
            reason: "connection refused".into(),
            failed_checks: 1,
        }
    }

    fn down() -> Outcome {
        Outcome {
            verdict: Verdict::NOT_RUNNING,
            ..fail()
        }
    }

    fn ok() -> Outcome {
        Outcome {
            verdict: Verdict::Healthy,
            reason: String::new(),
            failed_checks: 0,
        }
    }

    fn unknown() -> Outcome {
        Outcome {
            verdict: Verdict::Unknown,
            reason: "command: cannot run /bin/x: resource temporarily unavailable".into(),
            failed_checks: 0,
        }
    }

    /// One pass as the engine runs it: decide, and record the action when one runs.
    fn step(
        prev: &TargetState,
        o: &Outcome,
        p: &Policy,
        avail: Available,
        now: SystemTime,
    ) -> (TargetState, Decision) {
        let (mut next, d) = decide(prev, o, p, avail, now);
        if let Decision::Act(_) = d {
            record_action(&mut next, now);
        }
        (next, d)
    }

    #[test]
    fn deciding_records_nothing_until_the_action_runs() {
        let p = policy(1, 60, 10);
        let prev = TargetState {
            rate_limited: true,
            ..TargetState::default()
        };
        let (next, d) = decide(&prev, &fail(), &p, BOTH, at(0));
        assert_eq!(d, Decision::Act(ActionKind::Restart));
        assert!(next.restarts.is_empty());
        assert_eq!(next.last_restart, None);
        assert_eq!(next.restarts_total, 0);
        assert!(
            next.rate_limited,
            "a dry run must leave rate_limited as it was"
        );
        let mut ran = next.clone();
        record_action(&mut ran, at(0));
        assert_eq!(ran.restarts, vec![at(0)]);
        assert_eq!(ran.last_restart, Some(at(0)));
        assert_eq!((ran.restarts_since_healthy, ran.restarts_total), (1, 1));
        assert!(!ran.rate_limited);
    }

    #[test]
    fn a_target_verdict_comes_from_its_checks() {
        use Verdict::*;
        assert_eq!(Verdict::of([]), Healthy);
        assert_eq!(Verdict::of([Healthy, Unknown]), Unknown);
        assert_eq!(Verdict::of([Unknown, Verdict::FAILING]), Verdict::FAILING);
        assert_eq!(
            Verdict::of([Verdict::FAILING, Unknown, Verdict::NOT_RUNNING]),
            Verdict::NOT_RUNNING
        );
    }

    /// Run a sequence of (time, outcome) passes; return the decisions.
    fn passes(
        p: &Policy,
        avail: Available,
        seq: &[(u64, Outcome)],
    ) -> (TargetState, Vec<Decision>) {
        let mut st = TargetState::default();
        let mut out = Vec::new();
        for (t, o) in seq {
            let (next, d) = step(&st, o, p, avail, at(*t));
            st = next;
            out.push(d);
        }
        (st, out)
    }

    #[test]
    fn healthy_pass_does_nothing_and_resets() {
        let p = policy(3, 0, 10);
        let (st, d) = passes(&p, BOTH, &[(0, fail()), (10, fail()), (20, ok())]);
        assert_eq!(d[2], Decision::Healthy);
        assert_eq!(st.last_healthy, Some(at(20)));
        assert_eq!(st.checks_failed_total, 2, "the failed checks stay counted");
        assert_eq!(st.consecutive_failures, 0);
        assert_eq!(st.last_reason, None);
        assert_eq!(st.status, Health::Healthy);
        assert_eq!(st.last_check, Some(at(20)));
    }

    #[test]
    fn acts_only_at_threshold() {
        let p = policy(3, 0, 10);
        let (st, d) = passes(&p, BOTH, &[(0, fail()), (10, fail()), (20, fail())]);
        assert_eq!(
            d[0],
            Decision::BelowThreshold {
                failures: 1,
                threshold: 3
            }
        );
        assert_eq!(
            d[1],
            Decision::BelowThreshold {
                failures: 2,
                threshold: 3
            }
        );
        assert_eq!(d[2], Decision::Act(ActionKind::Restart));
        assert_eq!(st.restarts, vec![at(20)]);
        assert_eq!(st.last_restart, Some(at(20)));
        assert_eq!(st.last_reason.as_deref(), Some("connection refused"));
    }

    #[test]
    fn healthy_pass_between_failures_restarts_the_count() {
        let p = policy(2, 0, 10);
        let (_, d) = passes(
            &p,
            BOTH,
            &[(0, fail()), (10, ok()), (20, fail()), (30, fail())],
        );
        assert_eq!(
            d[2],
            Decision::BelowThreshold {
                failures: 1,
                threshold: 2
            }
        );
        assert_eq!(d[3], Decision::Act(ActionKind::Restart));
    }

    #[test]
    fn start_when_not_running_restart_otherwise() {
        let p = policy(1, 0, 10);
        let (_, d) = passes(&p, BOTH, &[(0, down()), (10, fail())]);
        assert_eq!(
            d,
            vec![
                Decision::Act(ActionKind::Start),
                Decision::Act(ActionKind::Restart)
            ]
        );
    }

    #[test]
    fn falls_back_to_whichever_is_defined() {
        let p = policy(1, 0, 10);
        let only_start = Available {
            start: true,
            restart: false,
        };
        let (_, d) = passes(&p, only_start, &[(0, fail())]);
        assert_eq!(d[0], Decision::Act(ActionKind::Start));
        let (_, d) = passes(&p, Available::RESTART_ONLY, &[(0, down())]);
        assert_eq!(d[0], Decision::Act(ActionKind::Restart));
    }

    #[test]
    fn monitor_only_never_acts_but_counts() {
        let p = policy(1, 0, 10);
        let (st, d) = passes(&p, Available::NONE, &[(0, fail()), (10, fail())]);
        assert_eq!(d, vec![Decision::Skip(Skip::MonitorOnly); 2]);
        assert_eq!(st.consecutive_failures, 2);
        assert!(st.restarts.is_empty());
    }

    #[test]
    fn cooldown_blocks_then_allows() {
        let p = policy(1, 60, 10);
        let (st, d) = passes(
            &p,
            BOTH,
            &[(0, fail()), (30, fail()), (59, fail()), (60, fail())],
        );
        assert_eq!(d[0], Decision::Act(ActionKind::Restart));
        assert_eq!(
            d[1],
            Decision::Skip(Skip::Cooldown {
                remaining: Duration::from_secs(30)
            })
        );
        assert_eq!(
            d[2],
            Decision::Skip(Skip::Cooldown {
                remaining: Duration::from_secs(1)
            })
        );
        assert_eq!(d[3], Decision::Act(ActionKind::Restart));
        assert_eq!(st.restarts, vec![at(0), at(60)]);
    }

    #[test]
    fn zero_cooldown_means_none() {
        let p = policy(1, 0, 10);
        let (_, d) = passes(&p, BOTH, &[(0, fail()), (0, fail())]);
        assert_eq!(d, vec![Decision::Act(ActionKind::Restart); 2]);
    }

    #[test]
    fn hourly_cap_is_a_sliding_window() {
        let p = policy(1, 0, 3);
        let seq: Vec<(u64, Outcome)> = [0, 100, 200, 300, 3599, 3600, 3700, 3800, 3900]
            .iter()
            .map(|t| (*t, fail()))
            .collect();
        let (st, d) = passes(&p, BOTH, &seq);
        let act = Decision::Act(ActionKind::Restart);
        let capped = Decision::Skip(Skip::RateLimit {
            restarts_last_hour: 3,
            max: 3,
        });
        // 0,100,200 act; 300 and 3599 capped; at 3600 the restart at 0 leaves the window
        assert_eq!(
            d[..5],
            [
                act.clone(),
                act.clone(),
                act.clone(),
                capped.clone(),
                capped.clone()
            ]
        );
        assert_eq!(d[5], act);
        assert_eq!(d[6], act, "at 3700 the restart at 100 has left");
        assert_eq!(d[7], act, "at 3800 the restart at 200 has left");
        assert_eq!(d[8], capped);
        assert_eq!(st.restarts, vec![at(3600), at(3700), at(3800)]);
    }

    #[test]
    fn cap_counts_starts_and_restarts_alike() {
        let p = policy(1, 0, 2);
        let (_, d) = passes(&p, BOTH, &[(0, down()), (10, fail()), (20, down())]);
        assert_eq!(d[0], Decision::Act(ActionKind::Start));
        assert_eq!(d[1], Decision::Act(ActionKind::Restart));
        assert!(matches!(d[2], Decision::Skip(Skip::RateLimit { .. })));
    }

    #[test]
    fn cooldown_is_reported_before_rate_limit() {
        let p = policy(1, 600, 1);
        let (_, d) = passes(&p, BOTH, &[(0, fail()), (10, fail())]);
        assert!(matches!(d[1], Decision::Skip(Skip::Cooldown { .. })));
    }

    #[test]
    fn clock_going_back_is_clamped() {
        let p = policy(1, 60, 10);
        // a restart recorded "in the future" (the clock was ahead, then corrected)
        let st = TargetState {
            last_restart: Some(at(10_000)),
            restarts: vec![at(10_000)],
            ..TargetState::default()
        };
        let (st, d) = step(&st, &fail(), &p, BOTH, at(0));
        assert_eq!(
            d,
            Decision::Skip(Skip::Cooldown {
                remaining: Duration::from_secs(60)
            })
        );
        assert_eq!(st.last_restart, Some(at(0)));
        // one cooldown later it acts: recovery is delayed, never blocked for hours
        let (_, d) = step(&st, &fail(), &p, BOTH, at(60));
        assert_eq!(d, Decision::Act(ActionKind::Restart));
    }

    #[test]
    fn a_clock_step_is_measured_on_the_clock_no_step_moves() {
        let reading = |wall: SystemTime, ms: u64, boot: &str| ClockReading {
            wall,
            boot_id: boot.into(),
            boottime_ms: ms,
        };
        // the last pass: wall at(10_000), 5,000 s after boot
        let saved = reading(at(10_000), 5_000_000, "b1");
        let step = |wall: u64, ms: u64, boot: &str, latest: Option<u64>| {
            let now = reading(at(wall), ms, boot);
            clock_step(Some(&saved), at(wall), Some(&now), latest.map(at))
        };
        let back = |secs| {
            Some(Step {
                back: true,
                by: Duration::from_secs(secs),
            })
        };
        // 30 s later by the boot clock, the wall clock reads two hours less than it should
        assert_eq!(step(10_030 - 7200, 5_030_000, "b1", None), back(7200));
        // or two hours more
        assert_eq!(
            step(10_030 + 7200, 5_030_000, "b1", None),
            Some(Step {
                back: false,
                by: Duration::from_secs(7200)
            })
        );
        // no step: the wall clock moved as much as the boot clock
        assert_eq!(step(10_030, 5_030_400, "b1", Some(10_000)), None);
        // another boot: only a step back shows, as recorded times in the future; the last of
        // them is taken as just now
        assert_eq!(step(2830, 30_000, "b2", Some(10_000)), back(7170));
        assert_eq!(step(12_000, 30_000, "b2", Some(10_000)), None);
        assert_eq!(
            clock_step(None, at(2830), None, Some(at(10_000))),
            back(7170)
        );
        assert_eq!(clock_step(None, at(2830), None, None), None);
    }

    #[test]
    fn after_a_clock_step_back_recovery_waits_one_cooldown_at_most() {
        let p = policy(1, 60, 3);
        // recorded before the step: restarts at 6000, 6300 and 9970, the last pass at 10_000
        let before = TargetState {
            status: Health::Failed,
            consecutive_failures: 3,
            last_check: Some(at(10_000)),
            last_restart: Some(at(9970)),
            restarts: vec![at(6000), at(6300), at(9970)],
            restarts_since_healthy: 3,
            ..TargetState::default()
        };
        // clamping alone (no clock reading): all three "just now", the cap full for an hour
        let (_, d) = step(&before, &fail(), &p, BOTH, at(2830));
        assert_eq!(
            d,
            Decision::Skip(Skip::Cooldown {
                remaining: Duration::from_secs(60)
            })
        );
        // 30 s after the last pass by the boot clock, the wall clock went back two hours
        let saved = ClockReading {
            wall: at(10_000),
            boot_id: "b1".into(),
            boottime_ms: 5_000_000,
        };
        let now = ClockReading {
            wall: at(2830),
            boot_id: "b1".into(),
            boottime_ms: 5_030_000,
        };
        let s = clock_step(Some(&saved), at(2830), Some(&now), before.latest_time()).unwrap();
        let mut moved = before.clone();
        moved.shift_times(s);
        assert_eq!(
            moved.restarts,
            vec![at(6000) - HOUR * 2, at(6300) - HOUR * 2, at(2770)]
        );
        assert_eq!(moved.last_check, Some(at(2800)));
        // the last restart was 60 s ago, the others left the hourly window: it acts
        let (next, d) = step(&moved, &fail(), &p, BOTH, at(2830));
        assert_eq!(d, Decision::Act(ActionKind::Restart));
        assert_eq!(next.restarts, vec![at(2770), at(2830)]);
    }

    #[test]
    fn inconclusive_passes_neither_count_nor_act() {
        let p = policy(2, 0, 10);
        let (st, d) = passes(&p, BOTH, &[(0, fail()), (10, unknown()), (20, unknown())]);
        assert_eq!(d[1], Decision::Inconclusive);
        assert_eq!(d[2], Decision::Inconclusive);
        assert_eq!(st.consecutive_failures, 1);
        assert_eq!(st.last_check, Some(at(20)));
        assert!(st.restarts.is_empty());
        // why it could not tell is kept, for `status`
        assert_eq!(st.last_reason.as_deref(), Some(unknown().reason.as_str()));
        // the next real failure continues the count
        let (_, d) = step(&st, &fail(), &p, BOTH, at(30));
        assert_eq!(d, Decision::Act(ActionKind::Restart));
    }

    #[test]
    fn since_marks_status_changes_only() {
        let p = policy(5, 0, 10);
        let (st, _) = passes(&p, BOTH, &[(0, ok()), (10, fail()), (20, fail())]);
        assert_eq!(st.since, Some(at(10)));
        assert_eq!(st.status, Health::Degraded);
    }

    #[test]
    fn failure_count_saturates() {
        let p = policy(1, 0, 10);
        let st = TargetState {
            consecutive_failures: u32::MAX,
            ..TargetState::default()
        };
        let (st, _) = step(&st, &fail(), &p, Available::NONE, at(0));
        assert_eq!(st.consecutive_failures, u32::MAX);
    }

    fn with(p: Policy) -> Policy {
        p
    }

    fn statuses(p: &Policy, seq: &[(u64, Outcome)]) -> Vec<Health> {
        let mut st = TargetState::default();
        seq.iter()
            .map(|(t, o)| {
                st = step(&st, o, p, BOTH, at(*t)).0;
                st.status
            })
            .collect()
    }

    #[test]
    fn statuses_follow_the_threshold() {
        let p = policy(2, 0, 10);
        let s = statuses(&p, &[(0, ok()), (10, fail()), (20, fail()), (30, ok())]);
        assert_eq!(
            s,
            vec![
                Health::Healthy,
                Health::Degraded,
                Health::Failed,
                Health::Healthy
            ]
        );
    }

    #[test]
    fn transitions_are_kept_with_reasons_and_capped() {
        let p = policy(1, 0, 1000);
        let seq: Vec<(u64, Outcome)> = (0..30)
            .map(|i| (i * 10, if i % 2 == 0 { fail() } else { ok() }))
            .collect();
        let (st, _) = passes(&p, BOTH, &seq);
        assert_eq!(st.transitions.len(), MAX_TRANSITIONS);
        let last = st.transitions.last().unwrap();
        assert_eq!((last.from, last.to), (Health::Failed, Health::Healthy));
        assert_eq!(last.at, at(290));
        let failed = &st.transitions[st.transitions.len() - 2];
        assert_eq!(failed.to, Health::Failed);
        assert_eq!(failed.reason.as_deref(), Some("connection refused"));
    }

    #[test]
    fn grace_reports_but_does_not_count() {
        let p = with(Policy {
            restart_grace: Duration::from_secs(30),
            ..policy(1, 0, 10)
        });
        let (st, d) = passes(
            &p,
            BOTH,
            &[(0, fail()), (10, fail()), (29, fail()), (30, fail())],
        );
        assert_eq!(d[0], Decision::Act(ActionKind::Restart));
        assert_eq!(
            d[1],
            Decision::Grace {
                remaining: Duration::from_secs(20)
            }
        );
        assert_eq!(
            d[2],
            Decision::Grace {
                remaining: Duration::from_secs(1)
            }
        );
        // after the grace the failure counts again and acts
        assert_eq!(d[3], Decision::Act(ActionKind::Restart));
        assert_eq!(
            st.consecutive_failures, 2,
            "the two grace failures were not counted"
        );
        assert_eq!(st.restarts, vec![at(0), at(30)]);
    }

    #[test]
    fn grace_keeps_a_failed_target_failed() {
        let p = with(Policy {
            restart_grace: Duration::from_secs(30),
            ..policy(1, 0, 10)
        });
        let s = statuses(&p, &[(0, fail()), (10, fail())]);
        assert_eq!(s, vec![Health::Failed, Health::Failed]);
        // a healthy pass in the grace period is healthy at once
        let s = statuses(&p, &[(0, fail()), (10, ok())]);
        assert_eq!(s[1], Health::Healthy);
    }

    #[test]
    fn zero_grace_is_off() {
        let (_, d) = passes(&policy(1, 0, 10), BOTH, &[(0, fail()), (0, fail())]);
        assert_eq!(d, vec![Decision::Act(ActionKind::Restart); 2]);
    }

    #[test]
    fn backoff_doubles_between_restarts_and_is_capped() {
        let p = with(Policy {
            backoff_initial: Duration::from_secs(10),
            backoff_multiplier: 2.0,
            backoff_max: Duration::from_secs(35),
            ..policy(1, 0, 100)
        });
        assert_eq!(backoff_wait(&p, 0), Duration::ZERO);
        assert_eq!(backoff_wait(&p, 1), Duration::from_secs(10));
        assert_eq!(backoff_wait(&p, 2), Duration::from_secs(20));
        assert_eq!(backoff_wait(&p, 3), Duration::from_secs(35), "capped");
        assert_eq!(backoff_wait(&p, u32::MAX), Duration::from_secs(35));
        // passes every 5s: restarts at 0, 10 (+10), 30 (+20), 65 (+35), 100 (+35)
        let seq: Vec<(u64, Outcome)> = (0..=20).map(|i| (i * 5, fail())).collect();
        let (st, d) = passes(&p, BOTH, &seq);
        let acted: Vec<u64> = seq
            .iter()
            .zip(&d)
            .filter(|(_, d)| matches!(d, Decision::Act(_)))
            .map(|((t, _), _)| *t)
            .collect();
        assert_eq!(acted, vec![0, 10, 30, 65, 100]);
        assert_eq!(
            d[1],
            Decision::Skip(Skip::Backoff {
                remaining: Duration::from_secs(5),
                wait: Duration::from_secs(10)
            })
        );
        assert_eq!(st.restarts_since_healthy, 5);
    }

    #[test]
    fn a_healthy_pass_resets_the_backoff() {
        let p = with(Policy {
            backoff_initial: Duration::from_secs(100),
            ..policy(1, 0, 100)
        });
        let (_, d) = passes(&p, BOTH, &[(0, fail()), (10, ok()), (20, fail())]);
        assert_eq!(d[2], Decision::Act(ActionKind::Restart));
        let (_, d) = passes(&p, BOTH, &[(0, fail()), (20, fail())]);
        assert!(matches!(d[1], Decision::Skip(Skip::Backoff { .. })));
    }

    #[test]
    fn unbounded_backoff_does_not_overflow() {
        let p = with(Policy {
            backoff_initial: Duration::from_secs(365 * 24 * 3600),
            backoff_multiplier: 100.0,
            ..policy(1, 0, 100)
        });
        assert_eq!(backoff_wait(&p, 1000), Duration::from_secs(365 * 24 * 3600));
    }

    #[test]
    fn gives_up_after_n_restarts_without_a_healthy_pass() {
        let p = with(Policy {
            give_up_after_restarts: 2,
            ..policy(1, 0, 100)
        });
        let (st, d) = passes(
            &p,
            BOTH,
            &[(0, fail()), (10, fail()), (20, fail()), (30, fail())],
        );
        assert_eq!(d[0], Decision::Act(ActionKind::Restart));
        assert_eq!(d[1], Decision::Act(ActionKind::Restart));
        assert_eq!(d[2], Decision::GiveUp { restarts: 2 });
        assert_eq!(d[3], Decision::Skip(Skip::GaveUp));
        assert_eq!(st.status, Health::GaveUp);
        assert_eq!(st.restarts.len(), 2, "no restart after giving up");
        assert_eq!(st.consecutive_failures, 4);
        let last = st.transitions.last().unwrap();
        assert_eq!((last.from, last.to), (Health::Failed, Health::GaveUp));
        assert!(last
            .reason
            .as_deref()
            .unwrap()
            .starts_with("2 restarts did not bring it back"));
    }

    #[test]
    fn a_healthy_pass_clears_gave_up() {
        let p = with(Policy {
            give_up_after_restarts: 1,
            ..policy(1, 0, 100)
        });
        let (st, d) = passes(
            &p,
            BOTH,
            &[(0, fail()), (10, fail()), (20, ok()), (30, fail())],
        );
        assert_eq!(d[1], Decision::GiveUp { restarts: 1 });
        assert_eq!(d[2], Decision::Healthy);
        assert_eq!(d[3], Decision::Act(ActionKind::Restart));
        assert_eq!(st.restarts_since_healthy, 1);
    }

    #[test]
    fn reset_re_enables_actions_but_keeps_the_hourly_window() {
        let p = with(Policy {
            give_up_after_restarts: 1,
            ..policy(1, 0, 100)
        });
        let (mut st, d) = passes(&p, BOTH, &[(0, fail()), (10, fail())]);
        assert_eq!(d[1], Decision::GiveUp { restarts: 1 });
        assert!(reset(&mut st, at(15)));
        assert_eq!(st.status, Health::Unknown);
        assert_eq!(st.consecutive_failures, 0);
        assert_eq!(st.restarts_since_healthy, 0);
        assert_eq!(st.restarts, vec![at(0)], "the hourly cap still counts it");
        assert_eq!(st.transitions.last().unwrap().to, Health::Unknown);
        let (_, d) = step(&st, &fail(), &p, BOTH, at(20));
        assert_eq!(d, Decision::Act(ActionKind::Restart));
        // resetting a clean state changes nothing
        let mut clean = TargetState::default();
        assert!(!reset(&mut clean, at(0)));
        // nor does resetting a healthy target: it stays healthy
        let (mut healthy, _) = passes(&p, BOTH, &[(0, ok())]);
        let before = healthy.clone();
        assert!(!reset(&mut healthy, at(5)));
        assert_eq!(healthy, before);
    }

    #[test]
    fn monitor_only_never_gives_up() {
        let p = with(Policy {
            give_up_after_restarts: 1,
            ..policy(1, 0, 100)
        });
        let (st, _) = passes(
            &p,
            Available::NONE,
            &[(0, fail()), (10, fail()), (20, fail())],
        );
        assert_eq!(st.status, Health::Failed);
    }

    /// Run passes and collect alerts, as the engine does.
    fn alert_run(
        p: &Policy,
        every: Option<u64>,
        seq: &[(u64, Outcome)],
    ) -> Vec<(u64, EventKind, bool)> {
        let mut st = TargetState::default();
        let mut out = Vec::new();
        for (t, o) in seq {
            let (mut next, d) = step(&st, o, p, BOTH, at(*t));
            for a in alerts(&st, &mut next, &d, every.map(Duration::from_secs), at(*t)) {
                out.push((*t, a.kind, a.reminder));
            }
            st = next;
        }
        out
    }

    #[test]
    fn down_and_recovered_are_told_once() {
        let p = policy(2, 0, 100);
        let mut seq: Vec<(u64, Outcome)> = (0..10).map(|i| (i * 10, fail())).collect();
        seq.extend((10..20).map(|i| (i * 10, ok())));
        let a = alert_run(&p, None, &seq);
        assert_eq!(
            a,
            vec![
                (10, EventKind::Down, false),
                (100, EventKind::Recovered, false)
            ]
        );
    }

    #[test]
    fn degraded_only_is_never_told() {
        let p = policy(3, 0, 100);
        let a = alert_run(
            &p,
            None,
            &[(0, fail()), (10, fail()), (20, ok()), (30, fail())],
        );
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn recovered_carries_the_downtime() {
        let p = policy(1, 0, 100);
        let mut st = TargetState::default();
        let (next, _) = step(&st, &fail(), &p, BOTH, at(0));
        st = next;
        let (mut next, d) = step(&st, &ok(), &p, BOTH, at(312));
        let a = alerts(&st, &mut next, &d, None, at(312));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, EventKind::Recovered);
        assert_eq!(a[0].downtime, Some(Duration::from_secs(312)));
    }

    #[test]
    fn reminders_repeat_while_down() {
        let p = policy(1, 0, 1000);
        let seq: Vec<(u64, Outcome)> = (0..=25).map(|i| (i * 10, fail())).collect();
        let a = alert_run(&p, Some(100), &seq);
        assert_eq!(
            a,
            vec![
                (0, EventKind::Down, false),
                (100, EventKind::Down, true),
                (200, EventKind::Down, true)
            ]
        );
        assert!(alert_run(&p, None, &seq).len() == 1);
    }

    #[test]
    fn gave_up_is_told_once_and_rate_limit_once_per_stretch() {
        let p = with(Policy {
            give_up_after_restarts: 2,
            ..policy(1, 0, 100)
        });
        let seq: Vec<(u64, Outcome)> = (0..6).map(|i| (i * 10, fail())).collect();
        let a = alert_run(&p, None, &seq);
        assert_eq!(
            a,
            vec![(0, EventKind::Down, false), (20, EventKind::GaveUp, false)]
        );
        let p = policy(1, 0, 1);
        let mut seq: Vec<(u64, Outcome)> = (0..5).map(|i| (i * 10, fail())).collect();
        seq.push((50, ok()));
        seq.extend((6..9).map(|i| (i * 10, fail())));
        let a = alert_run(&p, None, &seq);
        assert_eq!(
            a,
            vec![
                (0, EventKind::Down, false),
                (10, EventKind::RateLimited, false),
                (50, EventKind::Recovered, false),
                (60, EventKind::Down, false),
                (60, EventKind::RateLimited, false),
            ]
        );
    }

    /// `waiting` says what `decide` does on the next failed check: the same reason, and a
    /// time that is when that reason stops holding (over thousands of histories).
    #[test]
    fn waiting_agrees_with_decide() {
        let mut seed = 7u64;
        let mut rnd = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let mut checked = 0;
        for _ in 0..3000 {
            let p = Policy {
                fail_threshold: 1 + rnd(3) as u32,
                restart_cooldown: Duration::from_secs(rnd(3) * 60),
                max_restarts_per_hour: 1 + rnd(4) as u32,
                restart_grace: Duration::from_secs(rnd(2) * 30),
                backoff_initial: Duration::from_secs(rnd(2) * 100),
                give_up_after_restarts: rnd(2) as u32 * 5,
                ..Policy::default()
            };
            let mut s = TargetState::default();
            let mut now = at(0);
            for _ in 0..(1 + rnd(12)) {
                now += Duration::from_secs(1 + rnd(400));
                let outcome = if rnd(5) == 0 {
                    Outcome {
                        verdict: Verdict::Healthy,
                        reason: String::new(),
                        failed_checks: 0,
                    }
                } else {
                    fail()
                };
                let (mut next, d) = decide(&s, &outcome, &p, BOTH, now);
                if matches!(d, Decision::Act(_)) {
                    record_action(&mut next, now);
                }
                s = next;
            }
            now += Duration::from_secs(1 + rnd(400));
            let w = waiting(&s, &p, now);
            let (_, d) = decide(&s, &fail(), &p, BOTH, now);
            let reason = w.as_ref().map(|w| w.reason);
            let until = w.as_ref().and_then(|w| w.until);
            match d {
                Decision::Skip(
                    Skip::Cooldown { .. } | Skip::Backoff { .. } | Skip::RateLimit { .. },
                ) => {
                    // the hold that ends last: one of the three, and at its end none of them
                    // holds any more, while a second before it one still does
                    assert!(
                        matches!(reason, Some("cooldown" | "backoff" | "rate_limit")),
                        "{s:?}: {w:?}"
                    );
                    let u = until.expect("these end");
                    let timed = |d: &Decision| {
                        matches!(
                            d,
                            Decision::Skip(
                                Skip::Cooldown { .. }
                                    | Skip::Backoff { .. }
                                    | Skip::RateLimit { .. }
                            )
                        )
                    };
                    let (_, later) = decide(&s, &fail(), &p, BOTH, u);
                    assert!(!timed(&later), "{s:?} at {u:?}: {later:?}");
                    let (_, before) = decide(&s, &fail(), &p, BOTH, u - Duration::from_secs(1));
                    assert!(timed(&before), "{s:?}: {before:?}");
                    // and it is never earlier than what decide says holds now
                    if let Decision::Skip(
                        Skip::Cooldown { remaining } | Skip::Backoff { remaining, .. },
                    ) = d
                    {
                        assert!(u >= now + remaining, "{s:?}");
                    }
                }
                Decision::Skip(Skip::GaveUp) => assert_eq!(reason, Some("gave_up"), "{s:?}"),
                Decision::Grace { remaining } => {
                    assert_eq!(
                        (reason, until),
                        (Some("grace"), Some(now + remaining)),
                        "{s:?}"
                    )
                }
                Decision::Act(_) | Decision::GiveUp { .. } => {
                    assert!(
                        reason.is_none() || reason == Some("below_threshold"),
                        "{s:?}: {w:?}"
                    )
                }
                _ => {}
            }
            checked += 1;
        }
        assert_eq!(checked, 3000);
    }

    #[test]
    fn a_pause_holds_until_its_end_and_a_second_one_changes_nothing() {
        let mut s = TargetState::default();
        assert!(pause(&mut s, at(0), Some(at(100)), Some("upgrade".into())));
        assert!(!pause(&mut s, at(5), None, None), "already paused");
        assert_eq!(s.paused.as_ref().and_then(|p| p.until), Some(at(100)));
        let w = waiting(&s, &Policy::default(), at(10)).expect("paused");
        assert_eq!((w.reason, w.until), ("paused", Some(at(100))));
        assert!(w.detail.contains("upgrade"));
        assert_eq!(pause_expired(&mut s, at(99)), None);
        assert!(s.paused.is_some());
        assert_eq!(pause_expired(&mut s, at(100)).map(|p| p.since), Some(at(0)));
        assert!(s.paused.is_none());
        assert_eq!(waiting(&s, &Policy::default(), at(101)), None);
    }
}
