//! file_fresh: a file exists and was modified within `max_age_seconds`: the heartbeat of a
//! cron job or an app that touches a file while it works. A modification time in the future
//! (clock skew) counts as fresh.

use super::CheckResult;
use crate::util::os_error;
use std::path::Path;
use std::time::{Duration, SystemTime};

pub fn check(path: &Path, max_age: Duration) -> CheckResult {
    let file = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return CheckResult::fail(format!("{file} does not exist"))
        }
        Err(e) => return CheckResult::fail(format!("cannot read {file}: {}", os_error(&e))),
    };
    let modified = match meta.modified() {
        Ok(t) => t,
        Err(e) => {
            return CheckResult::fail(format!(
                "cannot read the modification time of {file}: {}",
                os_error(&e)
            ))
        }
    };
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    let mut r = if age > max_age {
        CheckResult::fail(format!(
            "{file} was last modified {}s ago (max {}s)",
            age.as_secs(),
            max_age.as_secs()
        ))
    } else {
        CheckResult::ok()
    };
    r.figures.age_s = Some(age.as_secs());
    r
}
