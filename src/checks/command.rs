//! command: the argv exits with an accepted code within the timeout. Runs through `spawn`
//! (own process group, capped output, group killed on timeout and after exit).

use super::CheckResult;
use crate::redact::Redactor;
use crate::spawn::{self, Cleanup, Spec, Status};
use crate::util::secs;
use std::collections::BTreeMap;
use std::time::Duration;

pub fn check(
    argv: &[String],
    ok_codes: &[i32],
    timeout: Duration,
    redactor: &Redactor,
) -> CheckResult {
    let env = BTreeMap::new();
    let spec = Spec {
        argv,
        timeout,
        env: &env,
        cwd: None,
        cleanup: Cleanup::KillAll,
        output: None,
        stdin: None,
    };
    let out = match spawn::run(&spec) {
        Ok(o) => o,
        Err(e) if e.local => return CheckResult::inconclusive(e.message),
        Err(e) => return CheckResult::fail(e.message),
    };
    match out.status {
        Status::Exited(code) if ok_codes.contains(&code) => CheckResult {
            exit: Some(code),
            ..CheckResult::ok()
        },
        Status::Exited(code) => {
            let tail = out.tail(200, redactor);
            let reason = if tail.is_empty() {
                format!("exit {code}")
            } else {
                format!("exit {code}: {tail}")
            };
            CheckResult {
                exit: Some(code),
                ..CheckResult::fail(reason)
            }
        }
        Status::Signaled(sig) => CheckResult::fail(format!("killed by signal {sig}")),
        Status::TimedOut => CheckResult::fail(format!("timed out after {}", secs(timeout))),
    }
}
