//! What happened to a target, as told to humans: the events a pass hands to notifications.
//!
//! The engine derives events from status changes (debounced: `down` once when a target
//! reaches `failed`, `recovered` once on the first healthy pass after it, never one per pass);
//! `notify` delivers them. Events are plain data, serializable, so a delivery that failed can
//! wait in the state file for the next pass.

use crate::policy::{EventKind, Health};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One event about one target. Its serde form is the one form it has: the state file keeps
/// undelivered events in it, and the JSON notification body is it plus `severity`, `host` and
/// `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub target: String,
    pub event: EventKind,
    /// A repeat of `down` while the target stays down (`reminder_every_seconds`); delivered
    /// to the notifiers that take `down`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reminder: bool,
    /// The target's status after this pass: healthy | degraded | failed | gave_up.
    pub status: Health,
    /// Its status before this pass.
    pub previous_status: Health,
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
    /// A target it `depends_on` is down too (the first one found): its action is held
    /// until that one is back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_down: Option<String>,
}

impl Event {
    /// The `NEON_WATCHDOG_*` environment an exec notifier gets with this event.
    pub fn env(&self) -> BTreeMap<String, String> {
        env(
            &self.target,
            self.event.as_str(),
            self.status.as_str(),
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

/// A delivery that failed: kept in the state file and tried again on the next pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The notifier's key (`config::Notifier::key`).
    pub notifier: String,
    pub event: Event,
    /// Passes that tried it.
    pub attempts: u32,
    #[serde(with = "crate::util::time_rfc3339")]
    pub first_failed: SystemTime,
}
