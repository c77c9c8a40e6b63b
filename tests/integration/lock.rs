//! The lock: a second concurrent instance exits 75 at once, without a pass.

use crate::harness::*;
use nix::sys::signal::Signal;
use std::os::unix::fs::PermissionsExt;
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

/// Run `script` with /bin/sh as user nobody (a real unprivileged process); returns it
/// running (killed with its group when dropped).
fn as_nobody(t: &Test, script: &str) -> ChildGuard {
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/bin/sh",
        "-c",
        &t.expand(script),
    ])
    .stdin(Stdio::null());
    ChildGuard::spawn(cmd)
}

/// A lock file in a directory anyone can write (`/run/lock`, `/tmp`: mode 1777) can be
/// created first by any user, who then holds it: root's pass could then never act (exit 75,
/// or `reason=no_lock`), tick after tick. Refusing such a config (exit 78) was worse: no check
/// at all. Now, as root, the lock is taken at a path only root can write that every instance
/// of the config computes alike (test-config and `run` say where): nobody holding the
/// configured path changes nothing, the checks and the action run, and a second instance
/// still finds the lock held (exit 75).
#[test]
fn another_user_cannot_take_the_lock_first() {
    let t = Test::new().config(&failing_config("lock_file: {dir}/lock/neon.lock", ""));
    // nobody must reach the sticky directory, as everyone reaches /run/lock
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(t.path("lock")).unwrap();
    std::fs::set_permissions(t.path("lock"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let _planted = as_nobody(
        &t,
        "exec /usr/bin/flock -x {dir}/lock/neon.lock -c 'echo held > {dir}/lock/held; exec sleep 60'",
    );
    wait_for_file(&t.path("lock/held"), EVENT_LIMIT);
    let lock = t.path("lock").display().to_string();
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_stderr_contains(&format!(
            "lock_file: directory {lock} is writable by everyone (mode 1777): another user could create the lock file there first and hold it, so the lock is taken at /run/neon-watchdog/neon.lock-"
        ))
        .assert_stderr_contains("the checks and actions go on")
        .assert_stderr_contains("leave lock_file unset");
    let safe = out
        .stderr
        .split("so the lock is taken at ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("test-config names where the lock is taken")
        .to_string();
    let _remove = RemoveOnDrop(safe.clone());
    // the checks and the action run, although nobody holds the configured path
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
        .assert_stderr_not_contains("reason=no_lock");
    assert_eq!(t.count_lines("runs"), 1);
    // root's lock file there: root's, 0600, in a directory only root can enter
    let m = std::fs::metadata(&safe).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&m), 0);
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    let d = std::fs::metadata("/run/neon-watchdog").unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&d), 0);
    assert_eq!(d.permissions().mode() & 0o777, 0o700);
    // nobody cannot take it
    let mut nobody = as_nobody(
        &t,
        &format!("/usr/bin/flock -x -n {safe} true; echo $? > {{dir}}/lock/tried"),
    );
    wait_for_file(&t.path("lock/tried"), EVENT_LIMIT);
    nobody.kill_now();
    assert_ne!(t.read("lock/tried").trim(), "0", "nobody took root's lock");
    // every instance of the config takes the same lock: a second one finds it held
    {
        let mut cmd = Command::new("/usr/bin/flock");
        cmd.args(["-x", &safe, "-c"])
            .arg(format!(
                "echo held > {}; exec sleep 60",
                t.path("held").display()
            ))
            .stdin(Stdio::null());
        let _root = ChildGuard::spawn(cmd);
        wait_for_file(&t.path("held"), EVENT_LIMIT);
        t.run(&["check"])
            .assert_code(75)
            .assert_stderr_contains("another neon-watchdog holds the lock");
    }
    assert_eq!(t.count_lines("runs"), 1);
    // `run` says at its start where it takes the lock, acts, and holds that lock: `check`
    // finds it held by `run` (fresh state: the policy acts at once)
    std::fs::remove_file(t.path("state.json")).unwrap();
    let mut run = t.spawn(&["run"]);
    assert!(
        wait_until(EVENT_LIMIT, || t.count_lines("runs") == 2),
        "run did not act"
    );
    t.run(&["check"])
        .assert_code(75)
        .assert_stderr_contains(&format!("(pid {})", run.pid()));
    run.signal(Signal::SIGTERM);
    let done = run
        .wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM");
    done.assert_code(0).assert_line_contains(
        &["level=warn", "lock_file"],
        &format!("so the lock is taken at {safe} instead"),
    );
}

/// Removes a file the watchdog made outside the test's directory (the lock it takes under
/// /run/neon-watchdog/) when the test ends, passed or failed.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
