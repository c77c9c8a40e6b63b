//! Escalation over real passes: the grace period after a restart, backoff between restarts,
//! giving up (with `on_give_up` run exactly once), `reset`, `status`, and the
//! `NEON_WATCHDOG_*` environment of exec actions. The target is healthy while the file `up`
//! exists in the test dir; each action appends a line to a file, so "ran N times" is a count.

use crate::harness::*;

/// A target healthy while `{dir}/up` exists, with `policy`, an action that records its
/// environment, and `extra` target keys.
fn target(policy: &str, extra: &str) -> Test {
    let t = Test::new();
    t.script(
        "record.sh",
        "#!/bin/sh\n{ echo \"$NEON_WATCHDOG_TARGET|$NEON_WATCHDOG_EVENT|$NEON_WATCHDOG_STATUS|$NEON_WATCHDOG_FAILURES|$NEON_WATCHDOG_REASON\"; } >> \"$1\"\n",
    );
    t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/test", "-e", "{{dir}}/up"]
    policy: {policy}
    action:
      exec:
        restart: ["{{dir}}/record.sh", "{{dir}}/runs"]
{extra}
"#
    ))
}

fn status_of_app(t: &Test) -> String {
    t.state()["targets"]["app"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn exec_actions_get_the_neon_watchdog_environment() {
    let t = target("{restart_cooldown_seconds: 0}", "");
    t.run(&["check"]).assert_code(2);
    assert_eq!(
        t.read("runs").trim_end(),
        "app|restart|failed|1|command: exit 1"
    );
}

#[test]
fn failures_inside_the_grace_period_are_reported_but_not_counted() {
    let t = target(
        "{restart_cooldown_seconds: 0, restart_grace_seconds: 60, fail_threshold: 1}",
        "",
    );
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 1);
    for _ in 0..3 {
        t.run(&["check"])
            .assert_code(2)
            .assert_line_contains(&["inside the grace period"], "target=app")
            .assert_stderr_not_contains("running action");
    }
    assert_eq!(
        t.count_lines("runs"),
        1,
        "restarted a target still starting"
    );
    let st = t.state();
    assert_eq!(st["targets"]["app"]["consecutive_failures"], 1, "{st}");
    assert_eq!(st["targets"]["app"]["status"], "failed", "{st}");
    // 30 s after the restart: still inside the grace
    t.age_state(30);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["inside the grace period"], "target=app")
        .assert_stderr_not_contains("running action");
    assert_eq!(t.count_lines("runs"), 1);
    // 61 s after it the grace has passed: failures count and act again
    t.age_state(31);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"target failing; running action\""], "failures=2");
    assert_eq!(t.count_lines("runs"), 2);
}

#[test]
fn backoff_spaces_restarts_that_do_not_help_and_a_healthy_pass_resets_it() {
    let t = target(
        "{restart_cooldown_seconds: 0, backoff_initial_seconds: 60, backoff_multiplier: 2}",
        "",
    );
    t.run(&["check"]).assert_code(2);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["reason=backoff"], "backoff_s=60 ");
    assert_eq!(t.count_lines("runs"), 1);
    // 61 s after the first restart the second one is due
    t.age_state(61);
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 2);
    // the third restart waits 120 s: 61 s after the second it is still held back
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["reason=backoff"], "backoff_s=120 ");
    t.age_state(61);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["reason=backoff"], "backoff_s=120 ");
    assert_eq!(t.count_lines("runs"), 2);
    // a healthy pass resets it: the next failure acts at once
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    std::fs::remove_file(t.path("up")).expect("rm up");
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 3);
}

#[test]
fn gives_up_runs_on_give_up_once_and_reset_re_enables_restarts() {
    let t = target(
        "{restart_cooldown_seconds: 0, give_up_after_restarts: 2}",
        r#"    on_give_up: {exec: ["{dir}/record.sh", "{dir}/gave_up"]}"#,
    );
    t.run(&["check"]).assert_code(2);
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 2);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["level=error", "msg=\"giving up"], "restarts=2")
        .assert_line_contains(&["msg=\"on_give_up done\""], "exit=0")
        .assert_line_contains(&["msg=\"status changed\""], "from=failed to=gave_up");
    assert_eq!(status_of_app(&t), "gave_up");
    for _ in 0..3 {
        t.run(&["check"])
            .assert_code(2)
            .assert_line_contains(&["reason=gave_up"], "action skipped")
            .assert_stderr_not_contains("on_give_up");
    }
    assert_eq!(t.count_lines("runs"), 2, "restarted after giving up");
    assert_eq!(
        t.read("gave_up").trim_end(),
        "app|gave_up|gave_up|3|command: exit 1",
        "on_give_up runs exactly once, with the environment"
    );

    // status: what the state file says, exit 2
    let out = t.run(&["status", "--json"]);
    out.assert_code(2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("status --json is JSON");
    assert_eq!(v["healthy"], false);
    assert_eq!(v["targets"][0]["name"], "app");
    assert_eq!(v["targets"][0]["status"], "gave_up");
    assert_eq!(v["targets"][0]["consecutive_failures"], 6);
    assert_eq!(v["targets"][0]["restarts_last_hour"], 2);
    assert_eq!(v["targets"][0]["last_reason"], "command: exit 1");
    let tos: Vec<&str> = v["targets"][0]["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter_map(|t| t["to"].as_str())
        .collect();
    assert_eq!(tos, ["failed", "gave_up"]);

    // reset: unknown names are usage errors; the real one clears gave_up
    t.run(&["reset", "nosuch"])
        .assert_code(64)
        .assert_stderr_contains("no target named \"nosuch\"")
        .assert_stderr_contains("(targets: app)");
    t.run(&["reset"]).assert_code(64);
    t.run(&["reset", "app"])
        .assert_code(0)
        .assert_line_contains(&["msg=\"target reset"], "from=gave_up failures=6");
    assert_eq!(status_of_app(&t), "unknown");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"target failing; running action\""], "failures=1");
    assert_eq!(t.count_lines("runs"), 3, "reset re-enabled restarts");
    assert_eq!(t.count_lines("gave_up"), 1);
}

#[test]
fn status_table_and_exit_code_follow_the_last_pass() {
    let t = target("{restart_cooldown_seconds: 0}", "");
    // never checked: unknown, not healthy
    let out = t.run(&["status"]);
    out.assert_code(2).assert_stdout_contains("app     unknown");
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    let out = t.run(&["status"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("TARGET  STATUS"), "{}", out.stdout);
    assert!(lines[1].starts_with("app     healthy"), "{}", out.stdout);
    // status runs no check: the target is down now, status still says healthy
    std::fs::remove_file(t.path("up")).expect("rm up");
    t.run(&["status"]).assert_code(0);
    assert_eq!(t.count_lines("runs"), 0);
    // reset --all leaves a healthy target healthy (it used to make it unknown: status 2)
    t.run(&["reset", "--all"])
        .assert_code(0)
        .assert_stdout_contains("app: nothing to reset (healthy)");
    t.run(&["status"]).assert_code(0);
    assert_eq!(status_of_app(&t), "healthy");
}

/// A state file whose last check lies hours in the past: the timer stopped. `status` must not
/// call that healthy.
#[test]
fn stale_state_is_never_reported_healthy() {
    let t = target("{restart_cooldown_seconds: 0}", "");
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    t.run(&["status"]).assert_code(0);
    t.age_state(3 * 3600);
    let out = t.run(&["status"]);
    out.assert_code(1)
        .assert_stdout_contains("healthy (stale)")
        .assert_line_contains(&["level=warn", "stale"], "targets=app");
    let out = t.run(&["status", "--json"]);
    out.assert_code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("status --json is JSON");
    assert_eq!(v["healthy"], false);
    assert_eq!(v["targets"][0]["stale"], true);
    assert_eq!(v["targets"][0]["status"], "healthy");
    // a pass makes it fresh again
    t.run(&["check"]).assert_code(0);
    t.run(&["status"]).assert_code(0);
}
