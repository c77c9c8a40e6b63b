//! A target's own `interval_seconds`: checked less often than the timer ticks. Not due, its
//! commands do not run, it keeps its last status, which still counts for the exit code,
//! status and metrics. Time passes by ageing the state file, never by sleeping.

use crate::harness::*;

/// `slow` (checked every `every` seconds; its check appends a line to `{dir}/ran` and exits
/// `code`) beside `fast` (checked every pass, appending to `{dir}/fast`).
fn config(every: u64, code: u8) -> String {
    format!(
        r#"
state_file: {{dir}}/state.json
interval_seconds: 30
metrics:
  textfile: {{dir}}/metrics.prom
targets:
  - name: slow
    interval_seconds: {every}
    checks:
      - name: expensive
        command: ["/bin/sh", "-c", "echo ran >> {{dir}}/ran; exit {code}"]
    action: none
  - name: fast
    checks:
      - command: ["/bin/sh", "-c", "echo ran >> {{dir}}/fast"]
    action: none
"#
    )
}

#[test]
fn a_target_not_due_is_not_checked_and_keeps_its_status() {
    let t = Test::new().config(&config(300, 0));
    t.run(&["check"]).assert_code(0);
    assert_eq!((t.count_lines("ran"), t.count_lines("fast")), (1, 1));

    // the next tick: the fast target is checked, the slow one is not, and is still healthy
    let out = t.run(&["check"]);
    out.assert_code(0)
        .assert_stderr_not_contains("check=expensive")
        .assert_line_contains(&["msg=\"pass done\""], "healthy=2 failing=0");
    assert_eq!((t.count_lines("ran"), t.count_lines("fast")), (1, 2));
    // its check's series stay in the metrics, with the last result
    let metrics = t.read("metrics.prom");
    assert!(
        metrics.contains(
            "neon_watchdog_check_up{target=\"slow\",check=\"expensive\",kind=\"command\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("neon_watchdog_target_up{target=\"slow\"} 1"),
        "{metrics}"
    );

    // 250 s later it is still not due; 290 s later it is (within half a tick of its time)
    t.age_state(250);
    t.run(&["check"]).assert_code(0);
    assert_eq!(t.count_lines("ran"), 1);
    t.age_state(40);
    t.run(&["check"]).assert_code(0);
    assert_eq!(
        t.count_lines("ran"),
        2,
        "due after 290 s of 300 on a 30 s tick"
    );
}

#[test]
fn a_failing_target_not_due_keeps_the_exit_at_2_and_says_so() {
    let t = Test::new().config(&config(300, 1));
    t.run(&["check"]).assert_code(2);
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["target=slow ", "target not due"], "status=failed")
        .assert_line_contains(&["msg=\"pass done\""], "healthy=1 failing=1");
    assert_eq!(
        t.count_lines("ran"),
        1,
        "its command ran again while not due"
    );
    // status counts it, and says when it is next checked
    let st = t.run(&["status", "--json"]);
    st.assert_code(2);
    let j: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    assert_eq!(j["targets"][0]["interval_seconds"], 300);
    assert!(j["targets"][0]["next_check"].is_string(), "{j}");
    assert!(j["targets"][1]["next_check"].is_null(), "{j}");
    t.run(&["status"]).assert_stdout_contains("(every 5m)");
}

#[test]
fn a_config_change_of_the_interval_takes_effect_at_once() {
    let t = Test::new().config(&config(300, 0));
    t.run(&["check"]).assert_code(0);
    t.age_state(70);
    t.run(&["check"]).assert_code(0);
    assert_eq!(t.count_lines("ran"), 1);
    // 70 s after its last check, now every 60 s: due
    t.write("config.yml", &config(60, 0));
    t.run(&["check"]).assert_code(0);
    assert_eq!(t.count_lines("ran"), 2);
}

#[test]
fn dry_run_and_test_config_say_when_each_target_is_next_due() {
    let t = Test::new().config(&config(300, 0));
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains(
            "checked every 300s (its own interval_seconds); next check on the next pass",
        );
    t.run(&["check"]).assert_code(0);
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains("checked every 300s (its own interval_seconds); next check at ");
    let out = t.run(&["check", "--dry-run"]);
    out.assert_code(0)
        .assert_line_contains(&["target=slow ", "target not due"], "next_check_in_s=");
    assert_eq!(t.count_lines("ran"), 1);
}

#[test]
fn a_target_checked_less_often_is_not_stale_in_status() {
    // 200 s since the last pass: stale for a target checked every 30 s (after 90 s), not for
    // one checked every 300 s (after 900 s)
    let t = Test::new().config(&config(300, 0));
    t.run(&["check"]).assert_code(0);
    t.age_state(200);
    let st = t.run(&["status", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    assert_eq!(j["targets"][0]["stale"], false, "{j}");
    assert_eq!(j["targets"][1]["stale"], true, "{j}");
}

#[test]
fn reset_makes_a_target_due_at_once() {
    let t = Test::new().config(&config(300, 1));
    t.run(&["check"]).assert_code(2);
    t.run(&["reset", "slow"]).assert_code(0);
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("ran"), 2, "checked again after reset");
}

#[test]
fn interval_seconds_of_a_target_is_validated() {
    let t = Test::new().config(&config(0, 0));
    t.run(&["test-config"])
        .assert_code(78)
        .assert_stderr_contains("targets[0].interval_seconds: must be 1 or more, got 0 (line 8)");
    let t = Test::new().config(&config(10, 0));
    t.run(&["test-config"]).assert_code(0).assert_stderr_contains(
        "targets[0].interval_seconds: is shorter than interval_seconds (30s): the target is checked on every pass",
    );
}

#[test]
fn an_inconclusive_check_is_due_again_and_not_reported_healthy() {
    // the check's program vanishes: the pass cannot tell (exit 1); the next tick must not
    // call the target healthy on the strength of the check before, for a whole interval
    let t = Test::new();
    let probe = t.script("probe", "#!/bin/sh\nexit 0\n");
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: exp
    interval_seconds: 300
    checks: [{{command: ["{}"]}}]
    action: none
"#,
        probe.display()
    ));
    t.run(&["check"]).assert_code(0);
    std::fs::remove_file(&probe).expect("remove the probe");
    t.age_state(400);
    t.run(&["check"])
        .assert_code(1)
        .assert_line_contains(&["msg=\"pass done\""], "unknown=1");
    // the next tick checks it again: still unknown, exit 1, not "healthy" and 0
    t.run(&["check"])
        .assert_code(1)
        .assert_line_contains(&["msg=\"pass done\""], "healthy=0 failing=0 unknown=1");
    let st = t.run(&["status", "--json"]);
    st.assert_code(2);
    let j: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    assert_eq!(j["targets"][0]["status"], "unknown", "{j}");
    assert_eq!(j["targets"][0]["inconclusive"], true, "{j}");
    t.run(&["status", "--format", "nagios"]).assert_code(3);
    // the program is back: healthy again, and no longer inconclusive
    t.script("probe", "#!/bin/sh\nexit 0\n");
    t.run(&["check"]).assert_code(0);
    let st = t.run(&["status", "--json"]);
    st.assert_code(0);
    assert!(
        st.stdout.contains("\"inconclusive\": false"),
        "{}",
        st.stdout
    );
}
