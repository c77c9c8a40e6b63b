//! command: the argv exits with an accepted code within the timeout. Runs through `spawn`
//! (own process group, capped output, group killed on timeout and after exit).

use super::CheckResult;
use crate::redact::Redactor;
use crate::spawn::{self, Cleanup, Spec};
use std::time::Duration;

pub fn check(
    argv: &[String],
    ok_codes: &[i32],
    timeout: Duration,
    redactor: &Redactor,
) -> CheckResult {
    let spec = Spec::new(argv, timeout).cleanup(Cleanup::KillAll);
    let out = match spawn::run(&spec) {
        Ok(o) => o,
        Err(e) if e.local => return CheckResult::unknown(e.message),
        Err(e) => return CheckResult::fail(e.message),
    };
    let exit = out.status.code();
    let r = match exit {
        Some(code) if ok_codes.contains(&code) => CheckResult::ok(),
        _ => CheckResult::fail(out.status.describe(timeout, &out.tail(200, redactor))),
    };
    CheckResult { exit, ..r }
}
