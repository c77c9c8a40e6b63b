//! docker: a container is running, and healthy if it has a HEALTHCHECK (`starting` is not a
//! failure: the container is still coming up). Reads `GET /containers/{name}/json` from the
//! Docker Engine API on its Unix socket.

use super::CheckResult;
use crate::docker;
use std::path::Path;
use std::time::Duration;

pub fn check(socket: &Path, container: &str, timeout: Duration) -> CheckResult {
    let path = format!("/containers/{}/json", docker::encode(container));
    let reply = match docker::request(socket, "GET", &path, timeout) {
        Ok(r) => r,
        Err(e) => return CheckResult::fail(e),
    };
    match reply.status {
        200 => {}
        404 => return CheckResult::down(format!("no such container: {container}")),
        s => return CheckResult::fail(format!("Docker API {s}: {}", reply.message())),
    }
    let v = match reply.json() {
        Ok(v) => v,
        Err(e) => return CheckResult::fail(e),
    };
    judge(&v["State"])
}

/// The verdict from the inspect JSON's `State`.
fn judge(state: &serde_json::Value) -> CheckResult {
    let status = state["Status"].as_str().unwrap_or("unknown");
    let running = state["Running"].as_bool().unwrap_or(false);
    let paused = state["Paused"].as_bool().unwrap_or(false);
    let restarting = state["Restarting"].as_bool().unwrap_or(false);
    let oom = state["OOMKilled"].as_bool().unwrap_or(false);
    let code = state["ExitCode"].as_i64().unwrap_or(0);
    // Podman's Docker-compatible API sends `"Health": {"Status": ""}` for a container without
    // a HEALTHCHECK, and Docker calls a disabled one `none`: neither is a health
    let health = state["Health"]["Status"]
        .as_str()
        .filter(|h| !h.is_empty() && *h != "none");
    let exit = || {
        if oom {
            format!("code {code}, OOM killed")
        } else {
            format!("code {code}")
        }
    };
    let mut r = if paused {
        CheckResult::fail("container is paused")
    } else if restarting {
        CheckResult::fail(format!("container is restarting (last exit {})", exit()))
    } else if running {
        match health {
            Some("unhealthy") => {
                let last = state["Health"]["Log"]
                    .as_array()
                    .and_then(|l| l.last())
                    .and_then(|e| e["Output"].as_str())
                    .map(|o| o.split_whitespace().collect::<Vec<_>>().join(" "))
                    .filter(|o| !o.is_empty())
                    .map(|o| {
                        let tail: String = o.chars().rev().take(200).collect();
                        format!(": {}", tail.chars().rev().collect::<String>())
                    })
                    .unwrap_or_default();
                let streak = state["Health"]["FailingStreak"].as_i64().unwrap_or(0);
                CheckResult::fail(format!("unhealthy ({streak} failed health checks){last}"))
            }
            _ => CheckResult::ok(),
        }
    } else if status == "exited" || status == "dead" {
        CheckResult::down(format!("container {status} ({})", exit()))
    } else {
        CheckResult::down(format!("container is {status}, not running"))
    };
    // the engine keeps the last health of a container that has stopped (its probes stopped
    // with it): shown only while the container lives
    let alive = matches!(status, "running" | "paused");
    r.figures.state = Some(match health.filter(|_| alive) {
        Some(h) => format!("{status}/{h}"),
        None => status.to_string(),
    });
    if let Some(pid) = state["Pid"].as_i64().filter(|p| *p > 0) {
        r.pid = i32::try_from(pid).ok();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;
    use serde_json::json;

    #[test]
    fn verdicts_from_state() {
        let r = judge(&json!({"Status": "running", "Running": true, "Pid": 42}));
        assert!(r.is_ok());
        assert_eq!(r.figures.state.as_deref(), Some("running"));
        let r =
            judge(&json!({"Status": "running", "Running": true, "Health": {"Status": "starting"}}));
        assert!(r.is_ok(), "starting is not a failure");
        let r = judge(&json!({"Status": "running", "Running": true,
            "Health": {"Status": "unhealthy", "FailingStreak": 3, "Log": [{"Output": "curl: (7) refused\n"}]}}));
        assert_eq!(
            r.reason,
            "unhealthy (3 failed health checks): curl: (7) refused"
        );
        let r = judge(
            &json!({"Status": "exited", "Running": false, "OOMKilled": true, "ExitCode": 137}),
        );
        assert_eq!(r.reason, "container exited (code 137, OOM killed)");
        assert_eq!(r.verdict, Verdict::NOT_RUNNING);
        let r = judge(&json!({"Status": "paused", "Running": true, "Paused": true}));
        assert_eq!(r.reason, "container is paused");
    }

    #[test]
    fn no_healthcheck_shows_no_health() {
        // Podman without a HEALTHCHECK; Docker's word for a disabled one
        for h in ["", "none"] {
            let r = judge(&json!({"Status": "running", "Running": true, "Health": {"Status": h}}));
            assert!(r.is_ok());
            assert_eq!(r.figures.state.as_deref(), Some("running"), "{h:?}");
        }
        // a dead container's last health is stale
        let r = judge(
            &json!({"Status": "exited", "Running": false, "ExitCode": 137,
            "Health": {"Status": "unhealthy", "FailingStreak": 2}}),
        );
        assert_eq!(r.figures.state.as_deref(), Some("exited"));
        assert_eq!(r.reason, "container exited (code 137)");
    }
}
