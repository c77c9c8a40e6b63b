//! `run`: a pass every interval until SIGTERM/SIGINT, which finish the pass in flight, save
//! state and exit 0.

use crate::harness::*;
use nix::sys::signal::Signal;

#[test]
fn run_loops_and_exits_0_on_sigterm_with_state_saved() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
interval_seconds: 1
targets:
  - name: app
    checks:
      - command: ["/bin/sh", "-c", "echo x >> {dir}/checks"]
    action: none
"#,
    );
    let mut run = t.spawn(&["run"]);
    wait_for_file(&t.path("state.json"), EVENT_LIMIT);
    // a second pass, about one interval later
    assert!(
        wait_until(EVENT_LIMIT, || t.count_lines("checks") >= 2),
        "no second pass: {}",
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    let out = run
        .wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM");
    out.assert_code(0)
        .assert_stderr_contains("mode=run")
        .assert_stderr_contains("signal received");
    assert!(out.lines_with(&["msg=\"pass done\""]).len() >= 2, "{out}");
    let st = t.state();
    assert_eq!(st["targets"]["app"]["status"], "healthy", "{st}");
    // the lock went with it
    t.run(&["check"]).assert_code(0);
}

#[test]
fn run_exits_0_on_sigint() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
interval_seconds: 60
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    let mut run = t.spawn(&["run"]);
    wait_for_file(&t.path("state.json"), EVENT_LIMIT);
    run.signal(Signal::SIGINT);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGINT")
        .assert_code(0);
}

/// SIGTERM in the middle of a pass: the pass finishes (its check is not cut short), its state
/// is saved, then `run` exits 0.
#[test]
fn sigterm_lets_the_pass_in_flight_finish() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
interval_seconds: 60
targets:
  - name: slow
    checks:
      - command: ["/bin/sh", "-c", "touch {dir}/in-pass; sleep 2; echo done > {dir}/finished"]
        timeout_seconds: 10
    action: none
"#,
    );
    let mut run = t.spawn(&["run"]);
    assert!(
        wait_until(EVENT_LIMIT, || t.exists("in-pass")),
        "the check never started: {}",
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    let out = run
        .wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM");
    out.assert_code(0)
        .assert_lines(&["result=FAIL"], 0)
        .assert_lines(&["msg=\"pass done\""], 1);
    assert!(t.exists("finished"), "the check in flight was cut short");
    let st = t.state();
    assert_eq!(st["targets"]["slow"]["status"], "healthy", "{st}");
}

/// SIGHUP re-reads the config: a valid new config replaces the running one (and its targets'
/// state); an invalid one is reported and ignored, the loop goes on.
#[test]
fn sighup_reloads_the_config() {
    let cfg = |name: &str| {
        format!(
            r#"
state_file: {{dir}}/state.json
interval_seconds: 1
targets:
  - name: {name}
    checks:
      - command: ["/bin/sh", "-c", "echo x >> {{dir}}/{name}.checks"]
    action: none
"#
        )
    };
    let t = Test::new().config(&cfg("first"));
    let mut run = t.spawn(&["run"]);
    assert!(wait_until(EVENT_LIMIT, || t.count_lines("first.checks") >= 1));
    t.write("config.yml", &cfg("second"));
    run.signal(Signal::SIGHUP);
    assert!(
        wait_until(EVENT_LIMIT, || t.count_lines("second.checks") >= 1),
        "the reloaded target was never checked: {}",
        run.stderr_so_far()
    );
    assert!(run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("config reloaded")));
    assert!(wait_until(EVENT_LIMIT, || {
        std::fs::read_to_string(t.path("state.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .is_some_and(|v| {
                v["targets"].get("second").is_some() && v["targets"].get("first").is_none()
            })
    }));

    // an invalid config: reported, the running one is kept
    t.write("config.yml", "targets: [");
    run.signal(Signal::SIGHUP);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("config reload failed")),
        "{}",
        run.stderr_so_far()
    );
    let before = t.count_lines("second.checks");
    assert!(
        wait_until(EVENT_LIMIT, || t.count_lines("second.checks") > before),
        "the loop stopped after a bad reload"
    );

    // the state file cannot move under a running loop (the lock protects the old one)
    t.write(
        "config.yml",
        &cfg("third").replace("{dir}/state.json", "{dir}/other.json"),
    );
    run.signal(Signal::SIGHUP);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("config reload refused")),
        "{}",
        run.stderr_so_far()
    );
    assert!(!t.exists("third.checks") && !t.exists("other.json"));
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM")
        .assert_code(0);
}

/// In `run` mode the watchdog is a long-lived subreaper: a daemon left by an action that
/// later dies is re-parented to it, and must be reaped, not left as a zombie.
#[test]
fn run_reaps_orphans_left_by_actions() {
    let t = Test::new();
    let name = unique_name("nworph");
    t.copy_program("/bin/sleep", &name);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
interval_seconds: 1
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    policy: {{restart_cooldown_seconds: 3600}}
    action:
      exec:
        restart: ["/bin/sh", "-c", "{{dir}}/{name} 0.5 & echo $! > {{dir}}/orphan.pid"]
"#
    ));
    let mut run = t.spawn(&["run"]);
    wait_for_file(&t.path("orphan.pid"), EVENT_LIMIT);
    let orphan = read_pid(&t.path("orphan.pid")).expect("orphan pid");
    let _guard = Guard::pid(orphan);
    // it dies after 0.5 s; within a pass or two it must be gone from /proc altogether
    let gone = wait_until(EVENT_LIMIT, || !is_alive_or_zombie(orphan));
    let info = proc_info(orphan);
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM")
        .assert_code(0);
    assert!(gone, "the action's orphan lingers under `run`: {info:?}");
}

/// `run` keeps the policy's memory in the process: with an unwritable state file it still
/// acts, and its cooldown still holds across passes (one action over several failed passes).
#[test]
fn run_acts_on_in_memory_state_when_the_state_file_is_unwritable() {
    let t = Test::new().config(
        r#"
state_file: {dir}/not-a-dir/state.json
lock_file: {dir}/lock
interval_seconds: 1
default_policy: {restart_cooldown_seconds: 3600}
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/runs"]
"#,
    );
    t.write("not-a-dir", "a file where a directory should be");
    let mut run = t.spawn(&["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |e| e.matches("msg=\"pass done\"").count() >= 3),
        "fewer than 3 passes: {}",
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    let out = run
        .wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM");
    out.assert_code(0)
        .assert_lines(&["reason=state_unwritable"], 0);
    let errors = out.lines_with(&["level=error", "cannot save state file"]);
    assert!(
        errors.len() >= 3,
        "the save error is logged every pass: {}",
        out.stderr
    );
    assert!(errors[0].contains("kept in memory"), "{}", errors[0]);
    assert!(
        out.lines_with(&["reason=cooldown"]).len() >= 2,
        "{}",
        out.stderr
    );
    assert_eq!(t.count_lines("runs"), 1, "in-memory cooldown did not hold");
}

/// The reloaded config's log_level takes effect: `info` shows the OK check lines that `warn`
/// hides.
#[test]
fn sighup_applies_the_new_log_level() {
    let cfg = |level: &str| {
        format!(
            r#"
state_file: {{dir}}/state.json
interval_seconds: 1
log_level: {level}
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#
        )
    };
    let t = Test::new().config(&cfg("warn"));
    let mut run = t.spawn(&["run"]);
    // nothing is logged at warn: the state file the first pass writes says it ran
    wait_for_file(&t.path("state.json"), EVENT_LIMIT);
    assert!(!run.stderr_so_far().contains("result=OK"));
    t.write("config.yml", &cfg("info"));
    run.signal(Signal::SIGHUP);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("result=OK")),
        "debug lines never appeared after the reload: {}",
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM")
        .assert_code(0);
}

/// A pass longer than the interval left no time between passes, and a SIGHUP was then never
/// handled: the reload waited forever (and `systemctl reload` with it).
#[test]
fn sighup_is_answered_when_passes_take_longer_than_the_interval() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
interval_seconds: 1
targets:
  - name: slow
    checks:
      - command: ["/bin/sh", "-c", "echo x >> {dir}/slow.checks; sleep 2"]
    action: none
"#,
    );
    let mut run = t.spawn(&["run"]);
    assert!(wait_until(EVENT_LIMIT, || t.count_lines("slow.checks") >= 1));
    run.signal(Signal::SIGHUP);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("config reloaded")),
        "the SIGHUP was never handled: {}",
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit on SIGTERM")
        .assert_code(0);
}
