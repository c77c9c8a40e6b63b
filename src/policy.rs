//! The restart policy: a pure function of (previous state, this pass's outcome, policy, what
//! the action can do, now). No I/O, no clock reads: tested with a fake clock below.
//!
//! Rules:
//! - A healthy pass resets the consecutive-failure count.
//! - A failed pass counts; once the count reaches `fail_threshold`, act, unless
//!   - the last action is younger than `restart_cooldown` (skip: `cooldown`), or
//!   - the sliding last hour already holds `max_restarts_per_hour` actions (skip: `rate_limit`).
//! - Every action run, start or restart, counts as a restart for cooldown and the hourly cap,
//!   whether or not it succeeded: a broken action must not become a restart storm.
//! - `start` when a process check found the process not running, else `restart`; fall back to
//!   whichever the action defines.
//! - Timestamps in the future (the clock went back) are clamped to `now`, so a clock jump can
//!   delay one restart by one cooldown at most, never block recovery for hours.
//! - A pass whose only failures are the watchdog's own (a check command could not be started
//!   for lack of processes or memory) is inconclusive: not counted, no action.

use crate::config::Policy;
use crate::state::{Health, TargetState};
use std::time::{Duration, SystemTime};

pub const HOUR: Duration = Duration::from_secs(3600);

/// This pass's result for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub healthy: bool,
    /// A process/pid-file check said the process is not running at all.
    pub not_running: bool,
    /// The failing checks' reasons, joined (empty when healthy).
    pub reason: String,
    /// Every failing check failed for a reason of the watchdog's own (it could not start a
    /// command: out of processes or memory): the target's health is unknown this pass.
    pub inconclusive: bool,
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
    /// Run the action now (already counted in the new state).
    Act(ActionKind),
    /// Would act, but may not.
    Skip(Skip),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// `action: none`.
    MonitorOnly,
    Cooldown {
        remaining: Duration,
    },
    RateLimit {
        restarts_last_hour: u32,
        max: u32,
    },
}

impl Skip {
    pub fn reason(&self) -> &'static str {
        match self {
            Skip::MonitorOnly => "monitor_only",
            Skip::Cooldown { .. } => "cooldown",
            Skip::RateLimit { .. } => "rate_limit",
        }
    }
}

fn clamp(t: SystemTime, now: SystemTime) -> SystemTime {
    t.min(now)
}

/// Decide what to do about one target this pass. Returns the new state and the decision.
pub fn decide(
    prev: &TargetState,
    outcome: &Outcome,
    policy: &Policy,
    available: Available,
    now: SystemTime,
) -> (TargetState, Decision) {
    let mut next = prev.clone();
    next.last_check = Some(now);
    next.last_restart = prev.last_restart.map(|t| clamp(t, now));
    let window_start = now.checked_sub(HOUR).unwrap_or(SystemTime::UNIX_EPOCH);
    next.restarts = prev
        .restarts
        .iter()
        .map(|t| clamp(*t, now))
        .filter(|t| *t > window_start)
        .collect();

    if !outcome.healthy && outcome.inconclusive {
        // Not knowing is no failure: restarting a service because the watchdog ran out of
        // processes would make things worse.
        return (next, Decision::Inconclusive);
    }

    let new_health = if outcome.healthy {
        Health::Healthy
    } else {
        Health::Failing
    };
    if next.status != new_health {
        next.since = Some(now);
    }
    next.status = new_health;

    if outcome.healthy {
        next.consecutive_failures = 0;
        next.last_reason = None;
        return (next, Decision::Healthy);
    }

    next.consecutive_failures = prev.consecutive_failures.saturating_add(1);
    next.last_reason = Some(outcome.reason.clone());

    if next.consecutive_failures < policy.fail_threshold {
        let d = Decision::BelowThreshold {
            failures: next.consecutive_failures,
            threshold: policy.fail_threshold,
        };
        return (next, d);
    }
    let kind = match (outcome.not_running, available.start, available.restart) {
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
    }
    let count = next.restarts.len() as u32;
    if count >= policy.max_restarts_per_hour {
        let d = Decision::Skip(Skip::RateLimit {
            restarts_last_hour: count,
            max: policy.max_restarts_per_hour,
        });
        return (next, d);
    }
    next.restarts.push(now);
    next.last_restart = Some(now);
    (next, Decision::Act(kind))
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

    fn policy(threshold: u32, cooldown: u64, per_hour: u32) -> Policy {
        Policy {
            fail_threshold: threshold,
            restart_cooldown: Duration::from_secs(cooldown),
            max_restarts_per_hour: per_hour,
        }
    }

    fn fail() -> Outcome {
        Outcome {
            healthy: false,
            not_running: false,
            reason: "connection refused".into(),
            inconclusive: false,
        }
    }

    fn down() -> Outcome {
        Outcome {
            not_running: true,
            ..fail()
        }
    }

    fn ok() -> Outcome {
        Outcome {
            healthy: true,
            not_running: false,
            reason: String::new(),
            inconclusive: false,
        }
    }

    fn unknown() -> Outcome {
        Outcome {
            inconclusive: true,
            reason: "command: cannot run /bin/x: resource temporarily unavailable".into(),
            ..fail()
        }
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
            let (next, d) = decide(&st, o, p, avail, at(*t));
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
        let (st, d) = decide(&st, &fail(), &p, BOTH, at(0));
        assert_eq!(
            d,
            Decision::Skip(Skip::Cooldown {
                remaining: Duration::from_secs(60)
            })
        );
        assert_eq!(st.last_restart, Some(at(0)));
        // one cooldown later it acts: recovery is delayed, never blocked for hours
        let (_, d) = decide(&st, &fail(), &p, BOTH, at(60));
        assert_eq!(d, Decision::Act(ActionKind::Restart));
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
        // the next real failure continues the count
        let (_, d) = decide(&st, &fail(), &p, BOTH, at(30));
        assert_eq!(d, Decision::Act(ActionKind::Restart));
    }

    #[test]
    fn since_marks_status_changes_only() {
        let p = policy(5, 0, 10);
        let (st, _) = passes(&p, BOTH, &[(0, ok()), (10, fail()), (20, fail())]);
        assert_eq!(st.since, Some(at(10)));
        assert_eq!(st.status, Health::Failing);
    }

    #[test]
    fn failure_count_saturates() {
        let p = policy(1, 0, 10);
        let st = TargetState {
            consecutive_failures: u32::MAX,
            ..TargetState::default()
        };
        let (st, _) = decide(&st, &fail(), &p, Available::NONE, at(0));
        assert_eq!(st.consecutive_failures, u32::MAX);
    }
}
