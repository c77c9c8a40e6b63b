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

/// Now plus `secs` (negative: in the past) as the state file writes times.
fn wall(secs: i64) -> String {
    let now = std::time::SystemTime::now();
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    let t = if secs < 0 { now - d } else { now + d };
    humantime::format_rfc3339_millis(t).to_string()
}

/// This boot's id and CLOCK_BOOTTIME in milliseconds, as the watchdog records them.
fn boot_clock() -> (String, u64) {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot_id");
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).expect("boottime");
    let ms = ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000;
    (id.trim().to_string(), ms)
}

/// A failed `app` whose last pass ran at `last` and whose restarts ran at `restarts`
/// (seconds from now), with `clock` as the state's clock reading (or none: an older file).
fn state_with_restarts(
    last: i64,
    restarts: &[i64],
    clock: Option<serde_json::Value>,
) -> serde_json::Value {
    let times: Vec<String> = restarts.iter().map(|s| wall(*s)).collect();
    let mut st = serde_json::json!({
        "version": 1,
        "targets": {"app": {
            "status": "failed",
            "since": wall(last - 4000),
            "consecutive_failures": 3,
            "last_reason": "command: exit 1",
            "last_check": wall(last),
            "restarts": times,
            "last_restart": times.last(),
            "restarts_since_healthy": restarts.len(),
            "down_since": wall(last - 4000),
        }}
    });
    if let Some(c) = clock {
        st["clock"] = c;
    }
    st
}

/// After the clock went back two hours (it was ahead, NTP corrected it), the restarts the
/// state file recorded lie in the future. They are not all taken as "just now", which filled
/// the hourly cap and blocked recovery for an hour (issue 18 M6): an older state file without
/// a clock reading takes its last pass as just now, so the restarts keep their spacing: the one
/// 5 minutes before the last pass is past its cooldown, the two an hour before have left the
/// hourly window, and the target is restarted at once (README Policy: delayed by one cooldown
/// at most).
#[test]
fn restarts_in_the_future_after_the_clock_went_back_do_not_block_recovery() {
    let t = always_failing("{restart_cooldown_seconds: 60, max_restarts_per_hour: 3}");
    let ahead = 7200;
    let st = state_with_restarts(ahead, &[ahead - 3900, ahead - 3720, ahead - 300], None);
    t.write_state(&st);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["msg=\"target failing; running action\""],
            "action=restart",
        )
        .assert_stderr_not_contains("reason=cooldown")
        .assert_stderr_not_contains("reason=rate_limit");
    assert_eq!(t.count_lines("runs"), 1);
    // no time in the state is left in the future
    let st = t.state();
    let now = std::time::SystemTime::now();
    for r in st["targets"]["app"]["restarts"]
        .as_array()
        .expect("restarts")
    {
        let r = humantime::parse_rfc3339(r.as_str().expect("a time")).expect("RFC 3339");
        assert!(r <= now, "a restart still in the future: {st}");
    }
    // one cooldown later it acts again: the cap holds this and the last one only
    t.age_state(61);
    t.run(&["check"]).assert_code(2).assert_line_contains(
        &["msg=\"target failing; running action\""],
        "action=restart",
    );
    assert_eq!(t.count_lines("runs"), 2);
}

/// Within one boot the state carries a clock reading (wall time, boot id, CLOCK_BOOTTIME), and
/// the time that really passed is measured on the clock no step moves: the last pass ran 10 s
/// ago by CLOCK_BOOTTIME, although the wall clock, stepped back two hours since, puts it two
/// hours ahead. The last restart, 50 s before that pass, is a whole cooldown (60 s) ago: the
/// target is restarted at once; and a wall clock stepped *forward* does not empty the hourly
/// cap either.
#[test]
fn the_clock_that_no_step_moves_measures_cooldown_and_cap_within_a_boot() {
    let (boot_id, boottime_ms) = boot_clock();
    let ahead = 7200;
    let reading = |wall_at_last_pass: i64| {
        serde_json::json!({
            "wall": wall(wall_at_last_pass),
            "boot_id": boot_id,
            "boottime_ms": boottime_ms - 10_000,
        })
    };
    // stepped back: the last pass's times read two hours ahead
    let t = always_failing("{restart_cooldown_seconds: 60, max_restarts_per_hour: 3}");
    let last = ahead - 10;
    t.write_state(&state_with_restarts(
        last,
        &[last - 4200, last - 3900, last - 50],
        Some(reading(last)),
    ));
    t.run(&["check"]).assert_code(2).assert_line_contains(
        &["msg=\"target failing; running action\""],
        "action=restart",
    );
    assert_eq!(t.count_lines("runs"), 1);
    let st = t.state();
    assert_eq!(st["clock"]["boot_id"], boot_id.as_str(), "{st}");
    let last_restart = st["targets"]["app"]["last_restart"]
        .as_str()
        .expect("last_restart");
    let last_restart = humantime::parse_rfc3339(last_restart).expect("RFC 3339");
    assert!(last_restart <= std::time::SystemTime::now(), "{st}");

    // stepped forward: three restarts in the last few minutes (two hours "ago" by the wall
    // clock) still fill the cap of 3 an hour
    let t = always_failing("{restart_cooldown_seconds: 0, max_restarts_per_hour: 3}");
    let last = -ahead - 10;
    t.write_state(&state_with_restarts(
        last,
        &[last - 300, last - 200, last - 100],
        Some(reading(last)),
    ));
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["target failing; action skipped"], "reason=rate_limit");
    assert_eq!(t.count_lines("runs"), 0);
}
