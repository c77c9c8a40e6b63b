//! process_name: a live process with this name (zombies do not count), from the pass snapshot.

use super::CheckResult;
use crate::procs::Snapshot;

pub fn check(snap: &Snapshot, name: &str, cmdline_contains: Option<&str>) -> CheckResult {
    let m = snap.find(name, cmdline_contains);
    if let Some(oldest) = m.oldest() {
        return CheckResult {
            pid: Some(oldest.pid),
            matches: Some(m.live.len()).filter(|n| *n > 1),
            ..CheckResult::ok()
        };
    }
    let what = match cmdline_contains {
        Some(c) => format!("{name} with {c:?} in its command line"),
        None => name.to_string(),
    };
    match m.zombies.first() {
        Some(z) => CheckResult::down(format!("{what} is a zombie (pid {}), not running", z.pid)),
        None => CheckResult::down(format!("no process named {what}")),
    }
}
