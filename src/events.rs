//! What happened to a target, as told to humans: the events a pass hands to notifications.
//!
//! The engine derives events from status changes (debounced: `down` once when a target
//! reaches `failed`, `recovered` once on the first healthy pass after it, never one per pass);
//! `notify` delivers them. Events are plain data, serializable, so a delivery that failed can
//! wait in the state file for the next pass.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

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

/// One event about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub target: String,
    pub event: EventKind,
    /// A repeat of `down` while the target stays down (`reminder_every_seconds`); delivered
    /// to the notifiers that take `down`.
    #[serde(default)]
    pub reminder: bool,
    /// The target's status after this pass: healthy | degraded | failed | gave_up.
    pub status: String,
    /// Its status before this pass.
    pub previous_status: String,
    /// Why (the failing checks' reasons, or the action's error); already redacted.
    pub reason: String,
    /// Consecutive failed passes.
    pub failures: u32,
    pub restarts_last_hour: u32,
    /// `recovered`, and reminders: how long the target was (has been) down, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_seconds: Option<u64>,
    /// When it happened (RFC 3339 UTC in JSON).
    #[serde(with = "crate::util::time_rfc3339")]
    pub timestamp: SystemTime,
}

impl Event {
    /// The `NEON_WATCHDOG_*` environment an exec notifier gets with this event.
    pub fn env(&self) -> BTreeMap<String, String> {
        env(
            &self.target,
            self.event.as_str(),
            &self.status,
            &self.reason,
            self.failures,
        )
    }
}

/// The `NEON_WATCHDOG_*` environment of exec actions (recovery and `on_give_up`) and exec
/// notifiers: what happened to which target, so one script can serve several targets.
pub fn env(
    target: &str,
    event: &str,
    status: &str,
    reason: &str,
    failures: u32,
) -> BTreeMap<String, String> {
    [
        ("NEON_WATCHDOG_TARGET", target.to_string()),
        ("NEON_WATCHDOG_EVENT", event.to_string()),
        ("NEON_WATCHDOG_STATUS", status.to_string()),
        ("NEON_WATCHDOG_REASON", reason.to_string()),
        ("NEON_WATCHDOG_FAILURES", failures.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
