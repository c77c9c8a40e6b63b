//! The lock: a second concurrent instance exits 75 at once, without a pass.

use crate::harness::*;
use nix::sys::signal::Signal;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Hold `lock` with flock(1) (the same flock(2) lock the watchdog takes) until dropped.
fn hold_lock(t: &Test, lock: &str) -> ChildGuard {
    let mut cmd = Command::new("/usr/bin/flock");
    cmd.arg("-x")
        .arg(t.path(lock))
        .arg("-c")
        .arg(format!(
            "echo held > {}; exec sleep 60",
            t.path("held").display()
        ))
        .stdin(Stdio::null());
    let guard = ChildGuard::spawn(cmd);
    wait_for_file(&t.path("held"), EVENT_LIMIT);
    guard
}

#[test]
fn check_exits_75_at_once_when_the_lock_is_held() {
    let t = Test::new().config(FAILING);
    let _holder = hold_lock(&t, "state.json.lock");
    let out = t.run(&["check"]);
    out.assert_code(75)
        .assert_stderr_contains("another neon-watchdog holds the lock")
        .assert_stderr_contains("state.json.lock")
        .assert_stderr_not_contains("running action")
        .assert_faster_than(Duration::from_secs(5));
    assert!(!t.exists("runs"), "a pass ran although the lock was held");
    assert!(
        !t.exists("state.json"),
        "state written although the lock was held"
    );
    // `run` too
    t.run(&["run"]).assert_code(75);
}

#[test]
fn lock_file_setting_is_honoured() {
    let t = Test::new().config(&failing_config("lock_file: {dir}/custom.lock", ""));
    {
        let _holder = hold_lock(&t, "custom.lock");
        t.run(&["check"]).assert_code(75);
    }
    // released: a normal pass
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 1);
}

/// A long-running `run` holds the lock; `check` says which pid holds it; once `run` is gone
/// the lock is free again.
#[test]
fn running_loop_holds_the_lock_and_releases_it() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
interval_seconds: 30
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    let mut run = t.spawn(&["run"]);
    wait_for_file(&t.path("state.json"), EVENT_LIMIT);
    let out = t.run(&["check"]);
    out.assert_code(75)
        .assert_stderr_contains(&format!("(pid {})", run.pid()));
    run.signal(Signal::SIGTERM);
    let done = run
        .wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM");
    done.assert_code(0);
    t.run(&["check"]).assert_code(0);
}

/// A lock still held after its instance died (SIGKILLed while it was starting a command: the
/// half-started command, or the guardian just forked, shares the lock until it execs or closes
/// its descriptors) is waited for, not reported as "another neon-watchdog (pid of the dead
/// one)": the next pass runs once the leftover lets go. Here flock(1) plays the leftover and
/// the lock file names a pid that has exited.
#[test]
fn a_lock_left_by_an_exited_instance_is_waited_for() {
    let t = Test::new().config(FAILING);
    let mut gone = Command::new("/bin/true").spawn().expect("spawn /bin/true");
    let gone_pid = gone.id();
    gone.wait().expect("reap /bin/true");
    std::fs::write(t.path("state.json.lock"), format!("{gone_pid}\n")).unwrap();
    let mut leftover = hold_lock(&t, "state.json.lock");
    let mut check = t.spawn(&["check"]);
    assert!(
        check.wait_for_stderr(EVENT_LIMIT, |e| e
            .contains(&format!("process left by pid {gone_pid}, which has exited"))),
        "check did not wait for the leftover: {}",
        check.stderr_so_far()
    );
    leftover.kill_now();
    check
        .wait_timeout(EVENT_LIMIT)
        .expect("check exits once the lock is free")
        .assert_code(2)
        .assert_stderr_not_contains("another neon-watchdog holds the lock");
    assert_eq!(t.count_lines("runs"), 1);
}
