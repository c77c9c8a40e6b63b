//! systemd: `systemctl --no-ask-password <method> <unit>`, with systemd's usual failures
//! turned into plain advice (permissions, start limit, unknown unit).
//!
//! The start limit is asked of systemd, not read from systemctl's words: real systemctl says
//! only "Job for X failed because the control process exited with error code" (the unit's
//! `Result` stays `exit-code`), while PID 1 logs "Start request repeated too quickly" for the
//! unit. So after a failed action this asks `systemctl show -p Result`
//! (`start-limit-hit`) and the unit's journal since the action began (journalctl beside
//! systemctl_path, or on PATH).

use super::ActionResult;
use crate::config::SystemdAction;
use crate::redact::Redactor;
use crate::spawn::{self, Spec, Status};

pub fn argv(s: &SystemdAction, systemctl: &str) -> Vec<String> {
    argv_of(s, s.method.as_str(), systemctl)
}

/// `systemctl --no-ask-password <method> <unit>`.
pub fn argv_of(s: &SystemdAction, method: &str, systemctl: &str) -> Vec<String> {
    vec![
        systemctl.to_string(),
        "--no-ask-password".to_string(),
        method.to_string(),
        s.unit.clone(),
    ]
}

pub fn run(s: &SystemdAction, systemctl: &str, redactor: &Redactor) -> ActionResult {
    run_method(s, s.method.as_str(), systemctl, redactor)
}

/// [`run`] with another method than the configured one (an operator's `stop`, `start`).
pub fn run_method(
    s: &SystemdAction,
    method: &str,
    systemctl: &str,
    redactor: &Redactor,
) -> ActionResult {
    let argv = argv_of(s, method, systemctl);
    // when the action began, for the unit's journal since then (`@SECONDS.MICROS`): an
    // earlier failure's message, even a moment before, is not this one's
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| format!("@{}.{:06}", d.as_secs(), d.subsec_micros()))
        .unwrap_or_else(|_| "@0".to_string());
    let out = match spawn::run(&Spec::new(&argv, s.timeout)) {
        Ok(o) => o,
        Err(e) => {
            return ActionResult::failed(
                format!("{e} (set systemctl_path if systemctl lives elsewhere)"),
                std::time::Duration::ZERO,
            )
        }
    };
    let mut r = ActionResult::of(&out, s.timeout, redactor);
    match out.status {
        Status::Exited(0) => {}
        Status::Exited(c) => {
            let limit = start_limit_hit(s, systemctl, &since);
            r.error = explain(c, &r.output, limit, s)
        }
        Status::Signaled(_) => r.error = format!("systemctl {}", r.error),
        Status::TimedOut => {
            r.error = format!(
                "systemctl {} {}: {}: the unit may still be starting (raise timeout_seconds)",
                s.method.as_str(),
                s.unit,
                r.error
            )
        }
    }
    r
}

/// How long each question to systemd about a failed action may take.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The unit name as systemd files it (`nginx` is `nginx.service`).
fn full_name(unit: &str) -> String {
    if unit.contains('.') {
        unit.to_string()
    } else {
        format!("{unit}.service")
    }
}

/// Whether systemd says the unit hit its start limit (after a failed action that began at
/// `since`, `@SECONDS.MICROS` since the epoch): its `Result` is `start-limit-hit`, or PID 1 logged
/// "Start request repeated too quickly" for it since then. False when systemd cannot be asked.
fn start_limit_hit(s: &SystemdAction, systemctl: &str, since: &str) -> bool {
    let unit = full_name(&s.unit);
    let show = [
        systemctl.to_string(),
        "show".to_string(),
        "-p".to_string(),
        "Result".to_string(),
        "--".to_string(),
        unit.clone(),
    ];
    if let Ok(o) = spawn::run(&Spec::new(&show, ASK_TIMEOUT)) {
        if String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim() == "Result=start-limit-hit")
        {
            return true;
        }
    }
    let journalctl = match std::path::Path::new(systemctl).parent() {
        Some(dir) if systemctl.contains('/') && dir.join("journalctl").is_file() => {
            dir.join("journalctl").to_string_lossy().into_owned()
        }
        _ => "journalctl".to_string(),
    };
    let query = [
        journalctl,
        "--no-pager".to_string(),
        "-q".to_string(),
        "-o".to_string(),
        "cat".to_string(),
        format!("--since={since}"),
        "_PID=1".to_string(),
        format!("UNIT={unit}"),
    ];
    match spawn::run(&Spec::new(&query, ASK_TIMEOUT)) {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.contains("Start request repeated too quickly")),
        _ => false,
    }
}

/// Turn systemctl's failure into what to do about it (`limit`: systemd says the unit hit its
/// start limit).
fn explain(code: i32, output: &str, limit: bool, s: &SystemdAction) -> String {
    let lower = output.to_ascii_lowercase();
    let unit = &s.unit;
    if lower.contains("access denied")
        || lower.contains("interactive authentication required")
        || lower.contains("permission denied")
        || code == 4 && lower.contains("authentication")
    {
        format!(
            "permission denied: systemctl {} {unit} needs root, or a polkit rule or sudoers entry allowing it for this user",
            s.method.as_str()
        )
    } else if limit
        || lower.contains("start request repeated too quickly")
        || lower.contains("start-limit")
        || lower.contains("attempted too often")
    {
        format!(
            "systemd's start limit was hit for {unit} (start request repeated too quickly): systemd refuses to start it until `systemctl reset-failed {unit}` or StartLimitIntervalSec passes"
        )
    } else if lower.contains("not found") || lower.contains("not loaded") {
        format!("unit {unit} not found: check the unit name (`systemctl list-units --all | grep {unit}`)")
    } else {
        format!("systemctl exit {code}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemdMethod;
    use std::time::Duration;

    fn unit() -> SystemdAction {
        SystemdAction {
            unit: "nginx.service".into(),
            method: SystemdMethod::Restart,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn explains_systemd_failures() {
        let u = unit();
        let e = explain(
            1,
            "Failed to restart nginx.service: Access denied",
            false,
            &u,
        );
        assert!(e.starts_with("permission denied"), "{e}");
        assert!(e.contains("polkit"), "{e}");
        // what real systemctl 252 prints at the start limit: only systemd itself can tell
        let job =
            "Job for nginx.service failed because the control process exited with error code.";
        assert_eq!(explain(1, job, false, &u), "systemctl exit 1");
        let e = explain(1, job, true, &u);
        assert!(e.contains("start limit"), "{e}");
        let e = explain(
            1,
            "Failed to start nginx.service: Start of the service was attempted too often.",
            false,
            &u,
        );
        assert!(e.contains("start limit"), "{e}");
        let e = explain(
            5,
            "Failed to restart nginx.service: Unit nginx.service not found.",
            false,
            &u,
        );
        assert!(e.starts_with("unit nginx.service not found"), "{e}");
        assert_eq!(explain(3, "something else", false, &u), "systemctl exit 3");
    }
}
