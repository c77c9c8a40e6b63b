//! The restart policy over real passes: threshold, cooldown, hourly cap, start vs restart.
//! Each action appends a line to a file, so "the action ran N times" is a line count.

use crate::harness::*;

/// The harness's always-failing target (an action that counts its runs) with `policy`.
fn always_failing(policy: &str) -> Test {
    Test::new().config(&failing_config("", policy))
}

#[test]
fn acts_only_when_failures_reach_the_threshold() {
    let t = always_failing("{fail_threshold: 3, restart_cooldown_seconds: 0}");
    for pass in 1..=2 {
        let out = t.run(&["check"]);
        out.assert_code(2)
            .assert_line_contains(&["waiting for the threshold"], &format!("failures={pass} "))
            .assert_stderr_not_contains("running action");
        assert_eq!(t.count_lines("runs"), 0, "acted after {pass} failures");
        assert_eq!(t.state()["targets"]["app"]["consecutive_failures"], pass);
    }
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["msg=\"target failing; running action\""],
            "failures=3 threshold=3 action=restart",
        )
        .assert_line_contains(&["msg=\"action done\""], "exit=0");
    assert_eq!(t.count_lines("runs"), 1);
    let st = t.state();
    assert_eq!(st["targets"]["app"]["status"], "failed");
    assert_eq!(
        st["targets"]["app"]["restarts"].as_array().map(Vec::len),
        Some(1),
        "{st}"
    );
}

#[test]
fn a_healthy_pass_resets_the_failure_count() {
    let failing = |t: &Test, check: &str| {
        t.write(
            "config.yml",
            &format!(
                r#"
state_file: {{dir}}/state.json
targets:
  - name: app
    checks:
      - command: ["{check}"]
    policy: {{fail_threshold: 2, restart_cooldown_seconds: 0}}
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {{dir}}/runs"]
"#
            ),
        );
    };
    let t = Test::new();
    failing(&t, "/bin/false");
    t.run(&["check"]).assert_code(2);
    failing(&t, "/bin/true");
    let out = t.run(&["check"]);
    out.assert_code(0)
        .assert_line_contains(&["msg=\"target recovered\""], "after_failures=1");
    let st = t.state();
    assert_eq!(st["targets"]["app"]["status"], "healthy", "{st}");
    assert_eq!(st["targets"]["app"]["consecutive_failures"], 0, "{st}");
    failing(&t, "/bin/false");
    t.run(&["check"]).assert_code(2);
    assert_eq!(
        t.count_lines("runs"),
        0,
        "the count was not reset by the healthy pass"
    );
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 1);
}

#[test]
fn cooldown_allows_one_action_then_skips() {
    let t = always_failing(
        "{fail_threshold: 1, restart_cooldown_seconds: 3600, max_restarts_per_hour: 10}",
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_lines(&["msg=\"action done\""], 1);
    for _ in 2..=5 {
        let out = t.run(&["check"]);
        out.assert_code(2)
            .assert_line_contains(
                &["msg=\"target failing; action skipped\""],
                "reason=cooldown",
            )
            .assert_line_contains(&["reason=cooldown"], "cooldown_remaining_s=3")
            .assert_stderr_not_contains("running action");
    }
    assert_eq!(t.count_lines("runs"), 1);
}

#[test]
fn hourly_cap_stops_actions_after_max() {
    let t = always_failing(
        "{fail_threshold: 1, restart_cooldown_seconds: 0, max_restarts_per_hour: 3}",
    );
    for pass in 1..=6 {
        let out = t.run(&["check"]);
        out.assert_code(2);
        if pass <= 3 {
            out.assert_lines(&["msg=\"action done\""], 1);
        } else {
            out.assert_line_contains(
                &["msg=\"target failing; action skipped\""],
                "reason=rate_limit restarts_last_hour=3 max=3",
            )
            .assert_stderr_not_contains("running action");
        }
    }
    assert_eq!(t.count_lines("runs"), 3);
    let st = t.state();
    assert_eq!(
        st["targets"]["app"]["restarts"].as_array().map(Vec::len),
        Some(3),
        "{st}"
    );
    assert_eq!(st["targets"]["app"]["consecutive_failures"], 6, "{st}");
}

/// A failing action still counts as a restart: a broken action must not become a storm.
#[test]
fn failed_actions_count_toward_the_hourly_cap() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    policy: {restart_cooldown_seconds: 0, max_restarts_per_hour: 2}
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/runs; echo cannot restart >&2; exit 7"]
"#,
    );
    for _ in 0..2 {
        t.run(&["check"])
            .assert_code(2)
            .assert_line_contains(&["level=error", "msg=\"action failed\""], "exit=7");
    }
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_stderr_contains("reason=rate_limit restarts_last_hour=2 max=2");
    assert_eq!(t.count_lines("runs"), 2);
}

/// `start` when a pid_file/process_name check says the process is not running; `restart`
/// when it runs but fails another check.
#[test]
fn start_when_not_running_restart_otherwise() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
default_policy: {restart_cooldown_seconds: 0}
targets:
  - name: down
    checks:
      - pid_file: {dir}/nothing.pid
      - command: ["/bin/false"]
    action:
      exec:
        start: ["/bin/sh", "-c", "echo start >> {dir}/down.runs"]
        restart: ["/bin/sh", "-c", "echo restart >> {dir}/down.runs"]
  - name: sick
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        start: ["/bin/sh", "-c", "echo start >> {dir}/sick.runs"]
        restart: ["/bin/sh", "-c", "echo restart >> {dir}/sick.runs"]
  - name: only-restart
    checks:
      - pid_file: {dir}/nothing.pid
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo restart >> {dir}/only.runs"]
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["running action", "target=down "], "action=start")
        .assert_line_contains(&["running action", "target=sick "], "action=restart")
        .assert_line_contains(
            &["running action", "target=only-restart "],
            "action=restart",
        );
    assert_eq!(t.read("down.runs"), "start\n");
    assert_eq!(t.read("sick.runs"), "restart\n");
    assert_eq!(t.read("only.runs"), "restart\n");
}

/// `action: none` only monitors; a disabled target is not checked at all.
#[test]
fn monitor_only_and_disabled_targets() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: watched
    checks:
      - command: ["/bin/false"]
    action: none
  - name: off
    enabled: false
    checks:
      - command: ["/bin/sh", "-c", "echo ran >> {dir}/off.runs; exit 1"]
    action: none
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["target=watched ", "no action configured"], "monitor only")
        .assert_stderr_not_contains("target=off ");
    assert!(!t.exists("off.runs"), "a disabled target's check ran");

    // only the disabled target failing: exit 0
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: fine
    checks:
      - command: ["/bin/true"]
    action: none
  - name: off
    enabled: false
    checks:
      - command: ["/bin/false"]
    action: none
"#,
    );
    t.run(&["check"]).assert_code(0);
}
