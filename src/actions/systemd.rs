//! systemd: `systemctl --no-ask-password <method> <unit>`, with systemd's usual failures
//! turned into plain advice (permissions, start limit, unknown unit).

use super::ActionResult;
use crate::config::SystemdAction;
use crate::redact::Redactor;
use crate::spawn::{self, Spec, Status};

pub fn argv(s: &SystemdAction, systemctl: &str) -> Vec<String> {
    vec![
        systemctl.to_string(),
        "--no-ask-password".to_string(),
        s.method.as_str().to_string(),
        s.unit.clone(),
    ]
}

pub fn run(s: &SystemdAction, systemctl: &str, redactor: &Redactor) -> ActionResult {
    let argv = argv(s, systemctl);
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
        Status::Exited(c) => r.error = explain(c, &r.output, s),
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

/// Turn systemctl's failure into what to do about it.
fn explain(code: i32, output: &str, s: &SystemdAction) -> String {
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
    } else if lower.contains("start request repeated too quickly") || lower.contains("start-limit")
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
        let e = explain(1, "Failed to restart nginx.service: Access denied", &u);
        assert!(e.starts_with("permission denied"), "{e}");
        assert!(e.contains("polkit"), "{e}");
        let e = explain(1, "Job for nginx.service failed. See 'systemctl status'. Start request repeated too quickly.", &u);
        assert!(e.contains("start limit"), "{e}");
        let e = explain(
            5,
            "Failed to restart nginx.service: Unit nginx.service not found.",
            &u,
        );
        assert!(e.starts_with("unit nginx.service not found"), "{e}");
        assert_eq!(explain(3, "something else", &u), "systemctl exit 3");
    }
}
