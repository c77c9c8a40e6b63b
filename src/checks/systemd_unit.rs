//! systemd_unit: systemd's machine-readable view of a unit (`systemctl show -p ...`, never the
//! human `status` text), reconciled with /proc: a unit systemd calls active whose main process
//! is gone or a zombie has crashed, whatever systemd believes.
//!
//! Healthy: ActiveState active (or reloading) and, when MainPID is set, that process alive.
//! `activating` (systemd is starting it, or `auto-restart`: restarting it after a crash) is a
//! FAIL that says so: the policy's threshold, grace and cooldown keep the watchdog from piling
//! its own restart on top of systemd's.

use super::CheckResult;
use crate::procs::Proc;
use crate::redact::Redactor;
use crate::spawn::{self, Spec};
use std::collections::BTreeMap;
use std::time::Duration;

const PROPS: &str = "LoadState,ActiveState,SubState,Result,MainPID,NRestarts";

/// `KEY=VALUE` lines of `systemctl show`.
fn parse(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

pub fn check(systemctl: &str, unit: &str, timeout: Duration, r: &Redactor) -> CheckResult {
    let argv: Vec<String> = [systemctl, "show", "-p", PROPS, "--", unit]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = match spawn::run(&Spec::new(&argv, timeout)) {
        Ok(o) => o,
        Err(e) if e.local => return CheckResult::unknown(e.message),
        // systemctl itself is missing: the unit's health is unknown, not failing
        Err(e) => {
            return CheckResult::unknown(format!(
                "{} (set systemctl_path if systemctl lives elsewhere)",
                e.message
            ))
        }
    };
    if !out.status.success() {
        return CheckResult::fail(format!(
            "systemctl show {unit}: {}",
            out.status.describe(timeout, &out.tail(200, r))
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    judge(unit, &parse(&text), Proc::by_pid)
}

/// The verdict from systemd's properties; `proc_of` looks a pid up in /proc.
fn judge(
    unit: &str,
    p: &BTreeMap<&str, &str>,
    proc_of: impl Fn(i32) -> Option<Proc>,
) -> CheckResult {
    let get = |k: &str| p.get(k).copied().unwrap_or("");
    let (load, active, sub, result) = (
        get("LoadState"),
        get("ActiveState"),
        get("SubState"),
        get("Result"),
    );
    let pid: i32 = get("MainPID").parse().unwrap_or(0);
    let nrestarts: Option<u32> = get("NRestarts").parse().ok();
    let mut r = match (load, active) {
        ("not-found", _) => CheckResult::down(format!(
            "unit {unit} not found (check the name: systemctl list-units --all)"
        )),
        ("masked", _) => CheckResult::down(format!("unit {unit} is masked")),
        (_, "active" | "reloading") if pid > 0 => match proc_of(pid) {
            None => CheckResult::fail(format!(
                "crashed (systemd says {active}, pid {pid} is gone)"
            )),
            Some(proc) if proc.is_zombie() => CheckResult::fail(format!(
                "crashed (systemd says {active}, pid {pid} is a zombie)"
            )),
            Some(_) => CheckResult {
                pid: Some(pid),
                ..CheckResult::ok()
            },
        },
        (_, "active" | "reloading") => CheckResult::ok(),
        (_, "failed") => CheckResult::down(format!("failed (Result={result})")),
        (_, "inactive") => CheckResult::down(format!("inactive ({sub})")),
        (_, "activating") if sub == "auto-restart" => CheckResult::fail(format!(
            "activating (auto-restart): systemd is restarting it after a failure (Result={result})"
        )),
        (_, "activating") => CheckResult::fail(format!("activating ({sub}): not up yet")),
        (_, "deactivating") => CheckResult::fail(format!("deactivating ({sub})")),
        ("", "") => CheckResult::fail(format!("systemctl show printed no ActiveState for {unit}")),
        (_, other) => CheckResult::fail(format!("{other} ({sub})")),
    };
    if !active.is_empty() {
        r.figures.state = Some(format!("{active}/{sub}"));
    }
    r.figures.nrestarts = nrestarts;
    if r.pid.is_none() && pid > 0 && !r.is_ok() {
        r.pid = Some(pid);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;

    fn show(active: &str, sub: &str, result: &str, pid: i32) -> String {
        format!(
            "LoadState=loaded\nActiveState={active}\nSubState={sub}\nResult={result}\nMainPID={pid}\nNRestarts=4\n"
        )
    }

    fn verdict(text: &str, alive: bool) -> CheckResult {
        judge("web.service", &parse(text), |pid| {
            alive.then(|| {
                Proc::by_pid(std::process::id() as i32).map(|mut p| {
                    p.pid = pid;
                    p
                })
            })?
        })
    }

    #[test]
    fn verdicts() {
        let r = verdict(&show("active", "running", "success", 42), true);
        assert!(r.is_ok());
        assert_eq!(r.figures.state.as_deref(), Some("active/running"));
        assert_eq!(r.figures.nrestarts, Some(4));
        assert_eq!(r.pid, Some(42));
        let r = verdict(&show("active", "running", "success", 42), false);
        assert_eq!(r.reason, "crashed (systemd says active, pid 42 is gone)");
        assert!(verdict(&show("active", "exited", "success", 0), false).is_ok());
        let r = verdict(&show("failed", "failed", "exit-code", 0), false);
        assert_eq!(r.reason, "failed (Result=exit-code)");
        assert_eq!(r.verdict, Verdict::NOT_RUNNING);
        assert_eq!(
            verdict(&show("inactive", "dead", "success", 0), false).reason,
            "inactive (dead)"
        );
        assert!(
            verdict(&show("activating", "auto-restart", "exit-code", 0), false)
                .reason
                .starts_with("activating (auto-restart)")
        );
        let r = verdict(
            "LoadState=not-found\nActiveState=inactive\nSubState=dead\n",
            false,
        );
        assert!(r.reason.starts_with("unit web.service not found"));
    }
}
