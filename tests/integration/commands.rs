//! Running commands the way a watchdog must: hung checks are killed with their whole process
//! group (grandchildren included) and reaped; a start command that leaves a daemon holding
//! its stdout/stderr does not hang the pass; hung targets run side by side; chatty output is
//! capped. Leftovers are found by `comm` in /proc (a copy of sleep under a unique name), which
//! a zombie keeps too.

use crate::harness::*;
use std::time::Duration;

fn hung_check(t: Test, script: &str) -> Test {
    t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: hung
    checks:
      - command: ["/bin/sh", "-c", "{script}"]
        timeout_seconds: 1
    action: none
"#
    ))
}

#[test]
fn hung_check_is_killed_with_its_grandchildren() {
    let t = Test::new();
    let (name, _cleanup) = unique_sleep(&t);
    let t = hung_check(t, &format!("{{dir}}/{name} 300 & {{dir}}/{name} 300"));
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=hung "],
            "err=\"timed out after 1s\"",
        )
        .assert_faster_than(Duration::from_secs(6));
    assert_no_leftovers(&name);
}

/// The group ignores SIGTERM: the watchdog must escalate to SIGKILL.
#[test]
fn hung_check_ignoring_sigterm_is_killed_too() {
    let t = Test::new();
    let (name, _cleanup) = unique_sleep(&t);
    let t = hung_check(
        t,
        &format!("trap '' TERM; {{dir}}/{name} 300 & {{dir}}/{name} 300; {{dir}}/{name} 300"),
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_stderr_contains("timed out after 1s")
        .assert_faster_than(Duration::from_secs(8));
    assert_no_leftovers(&name);
}

/// A grandchild that left the group with `setsid` is killed at the timeout too.
#[test]
fn hung_check_grandchild_in_its_own_session_is_killed() {
    let t = Test::new();
    let (name, _cleanup) = unique_sleep(&t);
    let t = hung_check(
        t,
        &format!("setsid {{dir}}/{name} 300 & {{dir}}/{name} 300"),
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_stderr_contains("timed out after 1s")
        .assert_faster_than(Duration::from_secs(8));
    assert_no_leftovers(&name);
}

/// A check that succeeds but leaves a background process: nothing may outlive a check.
#[test]
fn check_background_children_do_not_outlive_it() {
    let t = Test::new();
    let (name, _cleanup) = unique_sleep(&t);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: quick
    checks:
      - command: ["/bin/sh", "-c", "{{dir}}/{name} 300 & exit 0"]
    action: none
"#
    ));
    t.run(&["check"])
        .assert_code(0)
        .assert_faster_than(Duration::from_secs(6));
    assert_no_leftovers(&name);
}

/// Double-forked into its own session, a check's leftover is an orphan in no group of ours:
/// it is re-parented to the watchdog (a subreaper) and killed all the same, on a normal exit
/// and at the timeout.
#[test]
fn check_leftovers_that_escape_group_and_parent_are_killed() {
    for (script, code) in [
        // the check exits once the escapee runs (setsid execs it after leaving the group)
        (
            "(setsid {dir}/NAME 300 &); until grep -qsx NAME /proc/[0-9]*/comm; do sleep 0.01; done; exit 0",
            0,
        ),
        ("(setsid {dir}/NAME 300 &); sleep 30", 2),
    ] {
        let t = Test::new();
        let (name, _cleanup) = unique_sleep(&t);
        let t = t.config(&format!(
            r#"
state_file: {{dir}}/state.json
targets:
  - name: sneaky
    checks:
      - command: ["/bin/sh", "-c", "{}"]
        timeout_seconds: 1
    action: none
"#,
            script.replace("NAME", &name)
        ));
        t.run(&["check"])
            .assert_code(code)
            .assert_faster_than(Duration::from_secs(8));
        assert_no_leftovers(&name);
    }
}

/// `sh -c "daemon &"` as a (non-detached) start command: the daemon inherits the command's
/// stdout/stderr; the pass must not wait for their EOF, and the daemon must survive the
/// watchdog's exit while it keeps writing to that inherited stdout (on a pipe nobody reads any
/// more it would die of SIGPIPE).
#[test]
fn start_command_leaving_a_daemon_does_not_hang_the_pass() {
    let t = Test::new();
    // a daemon without children of its own (nothing of it can outlive its guard)
    t.write(
        "daemon.py",
        "import time\nwhile True:\n    print('tick', flush=True)\n    with open('{dir}/ticks', 'a') as f:\n        f.write('tick\\n')\n    time.sleep(0.05)\n",
    );
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: daemon
    checks:
      - pid_file: {{dir}}/daemon.pid
    action:
      exec:
        start: ["/bin/sh", "-c", "{PYTHON} {{dir}}/daemon.py & echo $! > {{dir}}/daemon.pid; echo started"]
        timeout_seconds: 60
"#
    ));
    let out = t.run(&["check"]);
    let daemon = Guard::from_pid_file(&t.path("daemon.pid"));
    out.assert_code(2)
        .assert_faster_than(Duration::from_secs(10))
        .assert_line_contains(&["msg=\"action done\""], "exit=0");
    let daemon = daemon.expect("the start command wrote no pid file");
    // the watchdog is gone; the daemon goes on writing to its stdout
    let ticks = t.count_lines("ticks");
    assert!(
        wait_until(EVENT_LIMIT, || t.count_lines("ticks") >= ticks + 10),
        "the daemon stopped writing after the pass: {:?}",
        proc_info(daemon.id())
    );
    let p = proc_info(daemon.id()).expect("the daemon started by the action is gone");
    assert_ne!(p.state, 'Z', "the daemon is a zombie");
    // it is running: the next pass is healthy
    t.run(&["check"]).assert_code(0);
}

/// 12 targets whose checks all hang (2 s timeout) cost about one timeout, not twelve.
#[test]
fn hung_targets_are_checked_side_by_side() {
    let t = Test::new();
    let (name, _cleanup) = unique_sleep(&t);
    let mut cfg = String::from("state_file: {dir}/state.json\ntargets:\n");
    for i in 0..12 {
        cfg.push_str(&format!(
            "  - name: hang{i}\n    checks:\n      - command: [\"{{dir}}/{name}\", \"30\"]\n        timeout_seconds: 2\n    action: none\n"
        ));
    }
    let t = t.config(&cfg);
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_lines(&["result=FAIL", "err=\"timed out after 2s\""], 12)
        .assert_line_contains(&["msg=\"pass done\""], "healthy=0 failing=12")
        .assert_faster_than(Duration::from_secs(10));
    assert_no_leftovers(&name);
    let st = t.state();
    assert_eq!(st["targets"].as_object().map(|m| m.len()), Some(12), "{st}");
}

/// A command writing megabytes neither blocks the pass nor ends up in the log whole.
#[test]
fn chatty_check_output_is_capped() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: chatty
    checks:
      - command: ["/bin/sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' x; echo last words >&2; exit 3"]
        timeout_seconds: 20
    action: none
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL"], "err=\"exit 3: last words\"")
        .assert_faster_than(Duration::from_secs(15));
    assert!(
        out.stderr.len() < 64 * 1024,
        "log is {} bytes",
        out.stderr.len()
    );
}

/// ok_exit_codes: a listed non-zero exit is healthy, an unlisted zero is not.
#[test]
fn ok_exit_codes_decide_health() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: three-ok
    checks:
      - command: ["/bin/sh", "-c", "exit 3"]
        ok_exit_codes: [0, 3]
    action: none
  - name: zero-bad
    checks:
      - command: ["/bin/true"]
        ok_exit_codes: [1]
    action: none
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_lines(&["result=FAIL", "target=three-ok "], 0)
        .assert_line_contains(&["result=FAIL", "target=zero-bad "], "err=\"exit 0\"");
}

/// exec actions get their `env` and `cwd`.
#[test]
fn exec_action_env_and_cwd_are_applied() {
    let t = Test::new();
    std::fs::create_dir(t.path("work")).unwrap();
    let t = t.config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "pwd > {dir}/out; echo \"$NW_IT_GREETING\" >> {dir}/out"]
        env: {NW_IT_GREETING: "hello from env"}
        cwd: "{dir}/work"
"#,
    );
    t.run(&["check"]).assert_code(2);
    assert_eq!(
        t.read("out"),
        format!("{}\nhello from env\n", t.path("work").display())
    );
}

/// An action that hangs is killed at its timeout (group and all) and reported; the pass ends.
#[test]
fn hung_action_is_killed_at_its_timeout() {
    let t = Test::new();
    let (name, _cleanup) = unique_sleep(&t);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "{{dir}}/{name} 300 & {{dir}}/{name} 300"]
        timeout_seconds: 1
"#
    ));
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["level=error", "msg=\"action failed\""],
            "timed out after 1s",
        )
        .assert_faster_than(Duration::from_secs(8));
    assert_no_leftovers(&name);
}

/// `detach: true` with a `log_file`: the program's stdout and stderr are appended to it.
#[test]
fn detached_action_writes_to_its_log_file() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        start: ["/bin/sh", "-c", "echo $$ > {dir}/detached.pid; echo to-stdout; echo to-stderr >&2"]
        detach: true
        log_file: "{dir}/app.log"
"#,
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"action started\""], "detached=true");
    wait_for_file(&t.path("detached.pid"), EVENT_LIMIT);
    let _reap = Guard::from_pid_file(&t.path("detached.pid"));
    assert!(
        wait_until(EVENT_LIMIT, || t.count_lines("app.log") == 2),
        "log_file did not get both lines: {:?}",
        std::fs::read_to_string(t.path("app.log"))
    );
    let log = t.read("app.log");
    assert!(
        log.contains("to-stdout\n") && log.contains("to-stderr\n"),
        "{log}"
    );
}

/// A check whose own program is missing (a typo) makes the target's health unknown: a healthy
/// service is never restarted because of it, pass after pass.
#[test]
fn a_missing_check_program_is_no_failure_of_the_target() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: api
    checks:
      - command: ["/usr/bin/crul", "-fsS", "http://127.0.0.1:1/health"]
    policy: {restart_cooldown_seconds: 0}
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/runs"]
"#,
    );
    for _ in 0..3 {
        t.run(&["check"])
            .assert_code(1)
            .assert_line_contains(&["result=FAIL"], "inconclusive=true")
            .assert_line_contains(
                &["level=error", "cannot tell"],
                "cannot run /usr/bin/crul: no such file or directory",
            )
            .assert_line_contains(&["msg=\"pass done\""], "failing=0 unknown=1");
    }
    assert_eq!(
        t.count_lines("runs"),
        0,
        "restarted because of a typo in a check"
    );
    assert_eq!(t.state()["targets"]["api"]["consecutive_failures"], 0);
}

/// A start command that cannot run is an action failure with the OS's words, not a crash.
#[test]
fn missing_action_program_is_reported() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["{dir}/no-such-program"]
  - name: app2
    checks:
      - command: ["{dir}/no-such-check"]
    action: none
"#,
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"action failed\""], "no such file or directory")
        .assert_line_contains(
            &["result=FAIL", "target=app2 "],
            "no such file or directory",
        );
}

/// When the watchdog cannot start a check command because it is out of processes (here: as
/// user nobody with `prlimit --nproc=1`), the target's health is unknown: nothing is counted,
/// no action runs (restarting a healthy service would make things worse), and `check` exits 1.
#[test]
fn out_of_processes_is_inconclusive_not_a_failure() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/runs"]
"#,
    );
    // user nobody must reach the binary, the config and the state directory
    let bin = t.copy_program(env!("CARGO_BIN_EXE_neon-watchdog"), "nw");
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o777)).expect("chmod dir");
    std::fs::set_permissions(t.config_path(), std::fs::Permissions::from_mode(0o644))
        .expect("chmod config");
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "prlimit",
            "--nproc=1",
        ])
        .arg(&bin)
        .arg("check")
        .arg("-c")
        .arg(t.config_path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot tell whether the target is healthy"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown=1"), "{stderr}");
    assert!(
        !t.exists("runs"),
        "acted although the target's health was unknown"
    );
    let st = t.state();
    assert_eq!(st["targets"]["app"]["consecutive_failures"], 0, "{st}");
}

/// A check program given relative to the config (`./probe.sh`) runs from beside the config,
/// wherever the watchdog runs from; test-config warns about one that cannot be found.
#[test]
fn relative_check_programs_sit_beside_the_config() {
    let t = Test::new().config_named(
        "conf/config.yml",
        r#"
state_file: {dir}/state.json
targets:
  - name: api
    checks:
      - command: ["./probe.sh"]
    action: none
  - name: typo
    checks:
      - command: ["/usr/bin/crul", "-fsS", "http://127.0.0.1:1/"]
    action: none
"#,
    );
    t.script("conf/probe.sh", "#!/bin/sh\nexit 0\n");
    // the harness runs the binary from the test dir, not from conf/
    let out = t.run(&["check"]);
    out.assert_code(1)
        .assert_line_contains(&["result=OK", "target=api "], "/conf/probe.sh")
        .assert_line_contains(
            &["level=error", "cannot tell", "target=typo"],
            "/usr/bin/crul",
        );
    let out = t.run(&["test-config"]);
    out.assert_code(0).assert_stderr_contains(
        "targets[1].checks[0].command[0]: \"/usr/bin/crul\" cannot be found",
    );
}

/// Started with SIGCHLD ignored (a disposition that survives exec: `trap '' CHLD` in a script,
/// some supervisors), the kernel would reap each command as it exits and every wait would
/// find nothing: a `/bin/true` check was reported "timed out after 3s" (and the watchdog
/// before that crashed). The watchdog puts SIGCHLD back to its default.
#[test]
fn a_parent_that_ignores_sigchld_does_not_make_commands_time_out() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
timeout_seconds: 3
targets:
  - name: ok
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    // bash, not dash: dash leaves SIGCHLD alone under `trap '' CHLD`
    let mut cmd = std::process::Command::new("/bin/bash");
    cmd.arg("-c")
        .arg(r#"trap '' CHLD; exec "$0" check -c "$1""#)
        .arg(BIN)
        .arg(t.config_path())
        .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("result=OK") && !stderr.contains("timed out"),
        "{stderr}"
    );
}

/// A check's timeout counts the command's time, not the time the watchdog itself could not
/// run (SIGSTOP, a cgroup freezer: `systemctl freeze`). Here the check stops the watchdog
/// (its parent) for 3 s, longer than its 1 s timeout, and exits at once; a helper it leaves
/// wakes the watchdog up. Before, the check read "timed out after 1s".
#[test]
fn time_the_watchdog_was_stopped_is_no_check_timeout() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: ok
    checks:
      - command: ["/bin/sh", "-c", "kill -STOP $PPID; (sleep 3; kill -CONT $PPID) &"]
        timeout_seconds: 1
    action: none
"#,
    );
    t.run(&["check"])
        .assert_code(0)
        .assert_line_contains(&["target=ok ", "msg=check"], "result=OK")
        .assert_stderr_not_contains("timed out");
}
