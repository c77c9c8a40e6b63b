//! The state file: corrupt state never stops a pass, removed targets are dropped, the
//! directory is created; `--dry-run` reads state but writes nothing and runs no action.

use crate::harness::*;
use std::time::Duration;

fn corrupt_copies(t: &Test) -> Vec<String> {
    t.entries()
        .into_iter()
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect()
}

#[test]
fn corrupt_state_is_moved_aside_and_the_pass_goes_on() {
    let t = Test::new().config(FAILING);
    let garbage = "{\"version\": 1, \"targets\": {\"app\": \x00 this is not JSON";
    t.write("state.json", garbage);
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["level=warn", "state file"], "is unusable")
        .assert_line_contains(&["level=warn", "state file"], "moved aside to");
    // recovery is never skipped because of state trouble
    assert_eq!(t.count_lines("runs"), 1);
    let aside = corrupt_copies(&t);
    assert_eq!(aside.len(), 1, "{:?}", t.entries());
    assert_eq!(t.read(&aside[0]), garbage);
    let st = t.state();
    assert_eq!(st["version"], 1, "{st}");
    assert_eq!(st["targets"]["app"]["status"], "failed", "{st}");
    assert_eq!(st["targets"]["app"]["consecutive_failures"], 1, "{st}");
}

#[test]
fn state_of_unknown_version_is_not_trusted_and_healthy_pass_exits_0() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    let future = r#"{"version": 99, "targets": {"app": {"consecutive_failures": 5}}}"#;
    t.write("state.json", future);
    t.run(&["check"])
        .assert_code(0)
        .assert_line_contains(&["level=warn"], "version 99");
    let aside = corrupt_copies(&t);
    assert_eq!(aside.len(), 1, "{:?}", t.entries());
    assert_eq!(t.read(&aside[0]), future);
    assert_eq!(t.state()["targets"]["app"]["status"], "healthy");
}

#[test]
fn state_file_format_and_removed_targets_are_dropped() {
    let two = r#"
state_file: {dir}/deep/er/state.json
targets:
  - name: a
    checks:
      - command: ["/bin/true"]
    action: none
  - name: b
    checks:
      - command: ["/bin/false"]
    action: none
"#;
    let t = Test::new().config(two);
    t.run(&["check"]).assert_code(2);
    let st = t.json("deep/er/state.json");
    assert_eq!(st["version"], 1);
    let b = &st["targets"]["b"];
    assert_eq!(b["status"], "failed", "{st}");
    assert_eq!(b["consecutive_failures"], 1, "{st}");
    assert!(
        b["last_reason"].as_str().unwrap_or("").contains("exit 1"),
        "{st}"
    );
    let last_check = b["last_check"].as_str().expect("last_check is a string");
    assert!(
        last_check.ends_with('Z') && last_check.contains('T'),
        "last_check is not RFC 3339 UTC: {last_check}"
    );
    assert_eq!(st["targets"]["a"]["status"], "healthy", "{st}");
    // no temp file left beside it
    let names: Vec<_> = std::fs::read_dir(t.path("deep/er"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n == "state.json" || n == "state.json.lock"),
        "{names:?}"
    );

    t.write(
        "config.yml",
        &two.replace(
            "  - name: b\n    checks:\n      - command: [\"/bin/false\"]\n    action: none\n",
            "",
        ),
    );
    t.run(&["check"]).assert_code(0);
    let st = t.json("deep/er/state.json");
    let names: Vec<_> = st["targets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(names, vec!["a".to_string()], "{st}");
}

#[test]
fn dry_run_runs_no_action_and_writes_nothing() {
    let t = Test::new().config(FAILING);
    let before = t.entries();
    let out = t.run(&["check", "--dry-run"]);
    out.assert_code(2)
        .assert_line_contains(&["msg=\"action skipped\""], "reason=dry_run")
        .assert_line_contains(&["reason=dry_run"], "would_run=\"/bin/sh -c 'echo run >>")
        .assert_stderr_not_contains("running action");
    assert!(!t.exists("runs"), "the action ran in a dry run");
    assert!(!t.exists("state.json"), "a dry run wrote the state file");
    assert_eq!(t.entries(), before, "a dry run created files");
}

/// A dry run reads the state: with fail_threshold 2 and one failure on record, it decides to
/// act (and says so), yet leaves the state file byte for byte as it was.
#[test]
fn dry_run_reads_state_but_leaves_it_unchanged() {
    let t = Test::new().config(&failing_config("", "{fail_threshold: 2}"));
    t.run(&["check"])
        .assert_code(2)
        .assert_stderr_contains("waiting for the threshold");
    let saved = t.read("state.json");
    let out = t.run(&["--dry-run", "check"]);
    out.assert_code(2)
        .assert_line_contains(&["reason=dry_run"], "would_run=");
    assert_eq!(
        t.read("state.json"),
        saved,
        "a dry run changed the state file"
    );
    assert!(!t.exists("runs"));
    // a corrupt state file is left in place by a dry run
    t.write("state.json", "garbage");
    t.run(&["check", "--dry-run"])
        .assert_code(2)
        .assert_stderr_contains("left in place");
    assert_eq!(t.read("state.json"), "garbage");
    assert!(corrupt_copies(&t).is_empty());
}

/// The state cannot be saved (its directory cannot be created): the checks still run and
/// report; no action runs (README: without its memory the policy could not hold cooldown or
/// the hourly cap, so acting on every tick could become a restart storm), said at error level;
/// a failing pass exits 2, a healthy one exits 1 (the broken state file is not hidden).
#[test]
fn unwritable_state_skips_actions_but_not_checks() {
    let cfg = r#"
state_file: {dir}/not-a-dir/state.json
lock_file: {dir}/lock
targets:
  - name: app
    checks:
      - command: ["CHECK"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/runs"]
"#;
    let t = Test::new().config(&cfg.replace("CHECK", "/bin/false"));
    t.write("not-a-dir", "a file where a directory should be");
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
        .assert_line_contains(&["level=error", "cannot save state file"], "not-a-dir")
        .assert_line_contains(&["level=error", "target=app "], "reason=state_unwritable");
    assert_eq!(
        t.count_lines("runs"),
        0,
        "acted without a state file to remember it"
    );
    let t = Test::new().config(&cfg.replace("CHECK", "/bin/true"));
    t.write("not-a-dir", "a file where a directory should be");
    t.run(&["check"])
        .assert_code(1)
        .assert_line_contains(&["level=error"], "cannot save state file");
}

/// No lock can be taken (its directory cannot be created): exit 1 with the reason.
#[test]
fn unusable_lock_path_exits_1() {
    let t = Test::new().config(
        r#"
state_file: {dir}/not-a-dir/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    t.write("not-a-dir", "a file where a directory should be");
    t.run(&["check"])
        .assert_code(1)
        .assert_stderr_contains("not-a-dir");
}

/// A relative state_file is relative to the config file's directory, not to the cwd.
#[test]
fn relative_state_file_is_beside_the_config() {
    let t = Test::new().config_named(
        "conf/config.yml",
        r#"
state_file: state/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    t.run(&["check"]).assert_code(0);
    assert!(t.exists("conf/state/state.json"), "{:?}", t.entries());
    assert!(!t.exists("state"), "state_file resolved against the cwd");
}

/// The state is saved before the action runs: `kill -9` of the watchdog in the middle of a
/// (slow) action leaves a valid state file that already counts the restart, so the next pass
/// honours the cooldown instead of acting again.
#[test]
fn restart_is_on_disk_before_the_action_runs() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    policy: {restart_cooldown_seconds: 3600}
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo $$ > {dir}/action.pgid; echo run >> {dir}/runs; exec sleep 30"]
        timeout_seconds: 60
"#,
    );
    let mut check = t.spawn(&["check"]);
    wait_for_file(&t.path("action.pgid"), EVENT_LIMIT);
    let _action = Guard::group(read_pid(&t.path("action.pgid")).expect("action pgid"));
    check.signal(nix::sys::signal::Signal::SIGKILL);
    check
        .wait_timeout(EVENT_LIMIT)
        .expect("check survived SIGKILL");
    let st = t.state();
    assert_eq!(
        st["targets"]["app"]["restarts"].as_array().map(Vec::len),
        Some(1),
        "the restart was not saved before the action ran: {st}"
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_stderr_contains("reason=cooldown");
    assert_eq!(t.count_lines("runs"), 1);
}

/// `kill -9` at any moment leaves the old or the new state file, never a torn one; the temp
/// files of killed writers are cleared by the next save.
#[test]
fn sigkill_at_any_moment_never_tears_the_state_file() {
    use nix::sys::signal::Signal;
    let mut yaml = String::from("state_file: {dir}/state.json\ntargets:\n");
    for i in 0..40 {
        yaml.push_str(&format!(
            "  - name: target-with-a-long-name-{i}\n    checks:\n      - command: [\"/bin/false\"]\n    action: none\n"
        ));
    }
    let t = Test::new().config(&yaml);
    let mut rng = 0x2545_f491_u64;
    for round in 0..40 {
        let mut running = t.spawn(&["check"]);
        // xorshift: a different kill moment each round, same sequence each run
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 25_000));
        running.signal(Signal::SIGKILL);
        let _ = running.wait_timeout(EVENT_LIMIT);
        if t.exists("state.json") {
            let text = t.read("state.json");
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("round {round}: torn state file ({e}):\n{text}"));
            assert_eq!(v["version"], 1, "round {round}");
        }
    }
    // a clean pass afterwards leaves exactly the state file and its lock
    t.run(&["check"]).assert_code(2);
    let mut left: Vec<String> = t
        .entries()
        .into_iter()
        .filter(|n| n.starts_with(".state.json") || n.starts_with("state.json"))
        .collect();
    left.sort();
    assert_eq!(left, ["state.json", "state.json.lock"]);
    assert_eq!(t.state()["targets"].as_object().map(|m| m.len()), Some(40));
}

/// `status` before any pass saved state (no timer running yet, or a timer that runs another
/// config): the targets were never checked, and the table says why and what to do instead of
/// a bare "never". Once a pass ran, a target added since is "not checked yet", and the note
/// about the missing state file is gone.
#[test]
fn status_without_a_state_file_says_why_nothing_was_checked() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    let out = t.run(&["status"]);
    out.assert_code(2);
    let config = t.config_path().display().to_string();
    let state = t.path("state.json").display().to_string();
    for said in [
        format!("Never checked: no state file {state}: no pass has run with this config yet."),
        "systemctl enable --now neon-watchdog.timer".to_string(),
        "systemctl status neon-watchdog.timer".to_string(),
        // a timer that runs another config keeps its state elsewhere
        "systemctl cat neon-watchdog.service".to_string(),
        format!("neon-watchdog check -c {config}"),
    ] {
        out.assert_stdout_contains(&said);
    }
    // JSON stays a document
    let json = t.run(&["status", "--json"]);
    serde_json::from_str::<serde_json::Value>(&json.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e})\n{json}"));

    t.run(&["check"]).assert_code(0);
    let mut yaml = std::fs::read_to_string(t.config_path()).expect("read config");
    yaml.push_str(
        "  - name: added\n    checks:\n      - command: [\"/bin/true\"]\n    action: none\n",
    );
    std::fs::write(t.config_path(), yaml).expect("write config");
    let out = t.run(&["status"]);
    out.assert_code(2)
        .assert_stdout_contains("added: not checked yet: no pass has checked it since it was added to the config (the next pass does).");
    assert!(!out.stdout.contains("no state file"), "{out}");
}

/// `status` run by a user who may see the state file but not read it (0600, root's, in a
/// directory anyone can enter) says so and how to read it (`sudo`), not that the targets were
/// added since the last pass; and it does not warn that history is lost, as a pass would: it
/// only reads.
#[test]
fn status_by_a_user_who_cannot_read_the_state_file_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new().config(
        "state_file: {dir}/state.json\ntargets:\n  - name: app\n    checks:\n      - command: [\"/bin/true\"]\n    action: none\n",
    );
    t.run(&["check"]).assert_code(0);
    // a new target, never checked, beside one the unreadable file knows
    let mut yaml = std::fs::read_to_string(t.config_path()).expect("read config");
    yaml.push_str(
        "  - name: added\n    checks:\n      - command: [\"/bin/true\"]\n    action: none\n",
    );
    std::fs::write(t.config_path(), yaml).expect("write config");
    for (path, mode) in [
        (t.dir().to_path_buf(), 0o755),
        (t.config_path().to_path_buf(), 0o644),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    std::fs::set_permissions(t.path("state.json"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod state");
    let out = std::process::Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            BIN,
            "status",
            "-c",
        ])
        .arg(t.config_path())
        .current_dir("/")
        .output()
        .expect("run status as nobody");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let state = t.path("state.json").display().to_string();
    assert!(
        stdout.contains(&format!(
            "{state} cannot be read (permission denied); run `sudo neon-watchdog status"
        )),
        "status did not say the state file is unreadable:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("not checked yet"), "{stdout}");
    assert!(
        !stderr.contains("lost"),
        "status, which only reads, warns of lost history:\n{stderr}"
    );
    assert!(stderr.contains("nothing is changed"), "{stderr}");
    // and a config only root may read (the package's is 0600) says how to read it
    std::fs::set_permissions(t.config_path(), std::fs::Permissions::from_mode(0o600))
        .expect("chmod config");
    let out = std::process::Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            BIN,
            "status",
            "-c",
        ])
        .arg(t.config_path())
        .current_dir("/")
        .output()
        .expect("run status as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("cannot read config: permission denied (it is readable by root only: run this as root, e.g. with sudo)"),
        "{stderr}"
    );
}

/// A real listener (python) on a port, detached by the action that starts it; it writes its
/// pid file once it listens.
pub(crate) const LISTENER: &str = r#"
import os, socket, sys
port, pid_file = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
with open(pid_file + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pid_file + ".tmp", pid_file)
while True:
    c, _ = s.accept()
    c.close()
"#;

/// One slow check never costs the other targets their recovery (issue 18 M4): beside a check
/// that hangs for five minutes (longer than the pass may live under the shipped unit's
/// `TimeoutStartSec`), a dead server is started again while that check still hangs, with the
/// restart on disk before its action ran, and a healthy target's status is saved too. The pass
/// is then killed as systemd would kill it: what was done stays done.
#[test]
fn a_hung_check_does_not_hold_back_another_targets_recovery() {
    use nix::sys::signal::Signal;
    let port = free_port();
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
default_policy: {{fail_threshold: 1, restart_cooldown_seconds: 3600}}
targets:
  - name: slow
    checks:
      - command: ["/bin/sh", "-c", "echo $$ > {{dir}}/slow.pgid; exec sleep 300"]
        timeout_seconds: 300
    action: none
  - name: dead
    checks:
      - tcp_port: 127.0.0.1:{port}
    action:
      exec:
        start: ["{PYTHON}", "{{dir}}/listener.py", "{port}", "{{dir}}/dead.pid"]
        detach: true
        log_file: {{dir}}/listener.log
  - name: fine
    checks:
      - command: ["/bin/true"]
    action: none
"#
    ));
    t.write("listener.py", LISTENER);
    let mut check = t.spawn(&["check"]);
    wait_for_file(&t.path("slow.pgid"), EVENT_LIMIT);
    let _slow = Guard::group(read_pid(&t.path("slow.pgid")).expect("slow check pgid"));
    // the dead server is back while the slow check still hangs
    wait_for_port(port, EVENT_LIMIT);
    wait_for_file(&t.path("dead.pid"), EVENT_LIMIT);
    let _server = Guard::from_pid_file(&t.path("dead.pid")).expect("server pid");
    // and the state on disk says so, with the healthy target's status, before the pass ends
    assert!(
        wait_until(EVENT_LIMIT, || {
            let Ok(text) = std::fs::read_to_string(t.path("state.json")) else {
                return false;
            };
            let st: serde_json::Value = serde_json::from_str(&text).expect("state JSON");
            st["targets"]["fine"]["status"] == "healthy"
                && st["targets"]["dead"]["restarts"].as_array().map(Vec::len) == Some(1)
        }),
        "the state on disk does not record the restart and the healthy target: {}",
        t.read("state.json")
    );
    assert!(
        is_alive_or_zombie(read_pid(&t.path("slow.pgid")).unwrap_or(1)),
        "the slow check ended before the test looked: the test proves nothing"
    );
    // systemd's TimeoutStartSec: SIGKILL of the pass. What it did stays done.
    check.signal(Signal::SIGKILL);
    check
        .wait_timeout(EVENT_LIMIT)
        .expect("check survived SIGKILL");
    let st = t.state();
    assert_eq!(st["targets"]["dead"]["status"], "failed", "{st}");
    assert_eq!(st["targets"]["fine"]["status"], "healthy", "{st}");
    assert_eq!(
        st["targets"]["slow"]["status"],
        serde_json::Value::Null,
        "the slow target was never judged: {st}"
    );
    assert!(port_open(port));
}

/// test-config warns about checks that may take as long as the shipped units let a pass run
/// (TimeoutStartSec=120s of neon-watchdog.service, WatchdogSec=300s of the daemon unit), and
/// about targets whose action waits for such checks (issue 18 M4); not about the others.
#[test]
fn test_config_warns_when_checks_could_outlive_the_units_limits() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: slow
    checks:
      - command: ["/bin/true"]
        timeout_seconds: 100
      - tcp_port: 127.0.0.1:1
        timeout_seconds: 30
    action: none
  - name: slower
    checks:
      - command: ["/bin/true"]
        timeout_seconds: 400
    action: none
  - name: web
    depends_on: [slow]
    checks:
      - command: ["/bin/true"]
    action: none
  - name: quick
    checks:
      - command: ["/bin/true"]
        timeout_seconds: 60
      - command: ["/bin/true"]
        timeout_seconds: 59
    action: none
"#,
    );
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_line_contains(
            &["warning:", "targets[0].checks:"],
            "may take up to 130s (the timeout_seconds of its 2 checks, one after the other), at least as long as the shipped units let a pass run (neon-watchdog.service kills a `check` pass after TimeoutStartSec=120s)",
        )
        .assert_line_contains(
            &["warning:", "targets[1].checks:"],
            "TimeoutStartSec=120s; neon-watchdog-daemon.service kills `run` when a pass outlasts WatchdogSec=300s",
        )
        .assert_line_contains(
            &["warning:", "targets[2].depends_on:"],
            "its action waits for the checks of \"slow\", which may take up to 130s",
        )
        .assert_stderr_not_contains("targets[3]");
}

/// The same under `run` (issue 18 M4, `WatchdogSec`): the daemon's first pass starts the dead
/// server while a check of another target hangs, and saves it; systemd's watchdog would kill
/// the daemon after `WatchdogSec` (SIGKILL here), and what the pass did stays done.
#[test]
fn under_run_a_hung_check_does_not_hold_back_another_targets_recovery() {
    use nix::sys::signal::Signal;
    let port = free_port();
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
default_policy: {{fail_threshold: 1, restart_cooldown_seconds: 3600}}
targets:
  - name: slow
    checks:
      - command: ["/bin/sh", "-c", "echo $$ > {{dir}}/slow.pgid; exec sleep 300"]
        timeout_seconds: 300
    action: none
  - name: dead
    checks:
      - tcp_port: 127.0.0.1:{port}
    action:
      exec:
        start: ["{PYTHON}", "{{dir}}/listener.py", "{port}", "{{dir}}/dead.pid"]
        detach: true
        log_file: {{dir}}/listener.log
"#
    ));
    t.write("listener.py", LISTENER);
    let mut run = t.spawn(&["run"]);
    wait_for_file(&t.path("slow.pgid"), EVENT_LIMIT);
    let slow = read_pid(&t.path("slow.pgid")).expect("slow check pgid");
    let _slow = Guard::group(slow);
    wait_for_port(port, EVENT_LIMIT);
    wait_for_file(&t.path("dead.pid"), EVENT_LIMIT);
    let _server = Guard::from_pid_file(&t.path("dead.pid")).expect("server pid");
    assert!(
        is_alive_or_zombie(slow),
        "the slow check ended before the test looked: the test proves nothing"
    );
    assert_eq!(
        t.state()["targets"]["dead"]["restarts"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{}",
        t.read("state.json")
    );
    run.signal(Signal::SIGKILL);
    run.wait_timeout(EVENT_LIMIT).expect("run survived SIGKILL");
    assert!(port_open(port));
}
