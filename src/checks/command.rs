//! command: the argv exits with an accepted code within the timeout. Runs through `spawn`
//! (own process group, capped output, group killed on timeout and after exit), as the
//! watchdog or as `user:`/`group:` (see `spawn::RunAs`; its description, in every log line of
//! the check, says so).

use super::CheckResult;
use crate::redact::Redactor;
use crate::spawn::{self, Cleanup, RunAs, Spec};
use std::time::Duration;

pub fn check(
    argv: &[String],
    ok_codes: &[i32],
    run_as: Option<&RunAs>,
    timeout: Duration,
    redactor: &Redactor,
) -> CheckResult {
    let spec = Spec::new(argv, timeout)
        .cleanup(Cleanup::KillAll)
        .run_as(run_as);
    let out = match spawn::run(&spec) {
        Ok(o) => o,
        // the check's own program could not be started (a typo, a missing package, out of
        // processes): that says nothing about the target, and restarting a healthy service
        // because of a config typo is how a watchdog makes things worse
        Err(e) => return CheckResult::unknown(e.message),
    };
    let exit = out.status.code();
    let r = match exit {
        Some(code) if ok_codes.contains(&code) => CheckResult::ok(),
        _ => CheckResult::fail(out.status.describe(timeout, &out.tail(200, redactor))),
    };
    CheckResult { exit, ..r }
}
