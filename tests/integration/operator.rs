//! The operator's verbs without a daemon (issue 20): `check TARGET`, `pause`/`resume`,
//! `stop`/`start`/`restart`, `status TARGET`, and `reset` saying truthfully what it cleared and
//! what still holds. Each takes the lock and changes the state file, as a pass does. The
//! service is a real process (`sleep`) started by a real exec action and found through its
//! pid file; "the action ran N times" is a count of lines the action appends to a file.

use crate::harness::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `svc`: a real `sleep` started by its exec action (pid file `svc.pid`), stopped by its
/// `stop:`; each start appends `start`, each stop `stop` to `runs`. `policy`: its policy.
fn service(policy: &str, extra_top: &str) -> Test {
    let t = Test::new();
    t.script(
        "start.sh",
        "#!/bin/sh\nsleep 1000 >/dev/null 2>&1 &\necho $! > \"$1/svc.pid\"\necho start >> \"$1/runs\"\n",
    );
    t.script(
        "stop.sh",
        "#!/bin/sh\nkill -9 \"$(cat \"$1/svc.pid\")\"\necho stop >> \"$1/runs\"\n",
    );
    t.config(&format!(
        r#"
state_file: {{dir}}/state.json
{extra_top}
targets:
  - name: svc
    checks:
      - pid_file: {{dir}}/svc.pid
    policy: {policy}
    action:
      exec:
        start: ["{{dir}}/start.sh", "{{dir}}"]
        stop: ["{{dir}}/stop.sh", "{{dir}}"]
"#
    ))
}

fn svc_pid(t: &Test) -> Option<i32> {
    read_pid(&t.path("svc.pid"))
}

fn alive(pid: i32) -> bool {
    is_alive_or_zombie(pid) && !is_zombie(pid)
}

/// Start the service through a pass; returns a guard that kills what the test leaves.
fn started(t: &Test) -> (i32, Guard) {
    t.run(&["check"]).assert_code(2);
    let pid = svc_pid(t).expect("the start wrote the pid file");
    assert!(alive(pid), "the service runs");
    t.run(&["check"]).assert_code(0);
    (pid, Guard::pid(pid))
}

fn lines(t: &Test, word: &str) -> usize {
    if !t.exists("runs") {
        return 0;
    }
    t.read("runs").lines().filter(|l| *l == word).count()
}

#[test]
fn a_paused_target_stays_down_and_resume_brings_it_back() {
    let t = service(
        "{restart_cooldown_seconds: 0}",
        "metrics: {textfile: \"{dir}/m.prom\"}",
    );
    let (pid, _g) = started(&t);
    assert_eq!(lines(&t, "start"), 1);
    t.run(&["pause", "svc", "--for", "2h", "--reason", "nginx upgrade"])
        .assert_code(0)
        .assert_stdout_contains("svc: paused until ")
        .assert_line_contains(&["msg=\"target paused"], "by=operator");
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill the service");
    wait_until(EVENT_LIMIT, || !alive(pid));
    // not checked, nothing done, not counted: exit 0 with the service down
    for _ in 0..2 {
        t.run(&["check"]).assert_code(0);
    }
    assert_eq!(lines(&t, "start"), 1, "nothing was done while paused");
    let st = t.run(&["status"]);
    st.assert_code(0)
        .assert_stdout_contains("paused (last: healthy)");
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["status", "--json"]).stdout).expect("json");
    let row = &v["targets"][0];
    assert_eq!(row["paused"]["reason"], "nginx upgrade", "{v}");
    assert_eq!(row["waiting"]["reason"], "paused", "{v}");
    assert!(row["paused"]["until"].is_string(), "{v}");
    let nagios = t.run(&["status", "--format", "nagios"]);
    nagios
        .assert_code(0)
        .assert_stdout_contains("paused=1")
        .assert_stdout_contains("svc: paused since ")
        .assert_stdout_contains(" - nginx upgrade");
    assert!(
        t.read("m.prom")
            .contains("neon_watchdog_target_paused{target=\"svc\"} 1"),
        "{}",
        t.read("m.prom")
    );
    // the pause is in the state file: it survives whatever restarts the watchdog
    assert_eq!(
        t.state()["targets"]["svc"]["paused"]["reason"],
        "nginx upgrade"
    );

    t.run(&["resume", "svc"])
        .assert_code(0)
        .assert_stdout_contains("svc: resumed");
    t.run(&["check"]).assert_code(2);
    assert_eq!(lines(&t, "start"), 2, "watched again: started");
    let new = svc_pid(&t).expect("pid");
    let _g2 = Guard::pid(new);
    assert!(alive(new));
    assert!(t
        .read("m.prom")
        .contains("neon_watchdog_target_paused{target=\"svc\"} 0"));
}

#[test]
fn a_pause_for_a_while_ends_by_itself() {
    let t = service("{restart_cooldown_seconds: 0}", "");
    let (pid, _g) = started(&t);
    t.run(&["pause", "svc", "--for", "1h"]).assert_code(0);
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
    wait_until(EVENT_LIMIT, || !alive(pid));
    t.run(&["check"]).assert_code(0);
    assert_eq!(lines(&t, "start"), 1);
    // an hour and a second later
    t.age_state(3601);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["pause over"], "target=svc");
    assert_eq!(lines(&t, "start"), 2);
    let _g2 = svc_pid(&t).map(Guard::pid);
    assert!(t.state()["targets"]["svc"]["paused"].is_null());
}

#[test]
fn stop_pauses_then_stops_and_start_resumes_then_starts() {
    let t = service("{restart_cooldown_seconds: 0}", "");
    let (pid, _g) = started(&t);
    // paused for an hour first: the stop makes it for good (until `start`)
    t.run(&["pause", "svc", "--for", "1h"]).assert_code(0);
    // the policy's start ran `stop:` first (it clears what a dead service left)
    let stops = lines(&t, "stop");
    t.run(&["stop", "svc"])
        .assert_code(0)
        .assert_stdout_contains("svc: stop done (exit 0)")
        .assert_line_contains(&["msg=\"action done\""], "by=operator");
    assert_eq!(lines(&t, "stop"), stops + 1);
    wait_until(EVENT_LIMIT, || !alive(pid));
    assert!(!alive(pid), "the stop command killed it");
    // stopped by the operator: the watchdog does not start it again
    t.run(&["check"]).assert_code(0);
    assert_eq!(lines(&t, "start"), 1);
    assert_eq!(
        t.state()["targets"]["svc"]["paused"]["reason"],
        "stopped by an operator"
    );
    t.age_state(7200);
    t.run(&["check"]).assert_code(0);
    assert_eq!(
        lines(&t, "start"),
        1,
        "a stop does not end with the pause it replaced"
    );
    t.run(&["start", "svc"])
        .assert_code(0)
        .assert_stdout_contains("svc: start done (exit 0)");
    assert_eq!(lines(&t, "start"), 2);
    let new = svc_pid(&t).expect("pid");
    let _g2 = Guard::pid(new);
    assert!(alive(new));
    assert!(t.state()["targets"]["svc"]["paused"].is_null());
    t.run(&["check"]).assert_code(0);
    assert_eq!(lines(&t, "start"), 2);
}

#[test]
fn restart_acts_now_whatever_the_cooldown_and_counts_like_any_action() {
    let t = Test::new().config(&failing_config(
        "",
        "{restart_cooldown_seconds: 3600, max_restarts_per_hour: 2}",
    ));
    t.run(&["check"]).assert_code(2);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["action skipped"], "reason=cooldown");
    assert_eq!(t.count_lines("runs"), 1);
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["status", "--json"]).stdout).expect("json");
    assert_eq!(v["targets"][0]["waiting"]["reason"], "cooldown", "{v}");
    t.run(&["status"]).assert_stdout_contains("cooldown 60m");
    let out = t.run(&["restart", "app"]);
    out.assert_code(0)
        .assert_stdout_contains("app: restart done (exit 0)")
        .assert_line_contains(&["operator asked; running action"], "action=restart");
    assert_eq!(t.count_lines("runs"), 2, "ran exactly once more");
    let st = t.state();
    assert_eq!(st["targets"]["app"]["restarts_total"], 2, "counted");
    assert_eq!(
        st["targets"]["app"]["restarts"].as_array().map(Vec::len),
        Some(2)
    );
    let acts = st["targets"]["app"]["actions"].as_array().expect("actions");
    assert_eq!(acts.len(), 2);
    assert_eq!(acts[1]["by"], "operator");
    assert_eq!(acts[0]["by"], "policy");
    // the operator's restart started a cooldown, and the cap (2) is reached: the next
    // passes do not act
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 2);
    // a restart is never refused by the cap: the operator decided
    t.run(&["restart", "app"]).assert_code(0);
    assert_eq!(t.count_lines("runs"), 3);
}

#[test]
fn reset_says_the_hourly_cap_still_holds_and_how_to_act_now() {
    let t = Test::new().config(&failing_config(
        "",
        "{restart_cooldown_seconds: 0, max_restarts_per_hour: 1}",
    ));
    t.run(&["check"]).assert_code(2);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["action skipped"], "reason=rate_limit");
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["status", "--json"]).stdout).expect("json");
    let w = &v["targets"][0]["waiting"];
    assert_eq!(w["reason"], "rate_limit", "{v}");
    assert!(w["until"].is_string(), "{v}");
    t.run(&["status", "--format", "nagios"])
        .assert_code(2)
        .assert_stdout_contains("(waits: rate_limit until ");
    // reset clears the failures but not the cap, and says so (it used to say "actions
    // enabled again", and the next pass still said rate_limit)
    t.run(&["reset", "app"])
        .assert_code(0)
        .assert_stdout_contains("app: cleared 2 failures")
        .assert_stdout_contains("the hourly cap still holds until ")
        .assert_stdout_contains("`neon-watchdog restart app` acts now");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["action skipped"], "reason=rate_limit");
    assert_eq!(t.count_lines("runs"), 1);
    t.run(&["restart", "app"]).assert_code(0);
    assert_eq!(t.count_lines("runs"), 2);
    // an hour later the cap lets the policy act again
    t.age_state(3601);
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 3);
}

#[test]
fn check_of_named_targets_leaves_the_others_alone() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: alpha
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/alpha"]
  - name: beta
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/beta"]
  - name: gamma
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    t.run(&["check", "alpha"])
        .assert_code(2)
        .assert_stdout_contains("alpha: failed - command: exit 1");
    assert_eq!(t.count_lines("alpha"), 1);
    assert!(!t.exists("beta"), "beta was not acted on");
    let st = t.state();
    assert!(
        st["targets"]["beta"].is_null(),
        "beta was not checked: {st}"
    );
    t.run(&["check", "gamma"])
        .assert_code(0)
        .assert_stdout_contains("gamma: healthy");
    assert!(t.state()["targets"]["beta"].is_null());
    // an unknown name: 64, the closest one suggested, nothing checked
    t.run(&["check", "alhpa"])
        .assert_code(64)
        .assert_stderr_contains("no target named \"alhpa\"")
        .assert_stderr_contains("did you mean \"alpha\"?");
    assert_eq!(t.count_lines("alpha"), 1);
}

#[test]
fn a_paused_dependency_holds_its_dependents() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: db
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/db"]
  - name: web
    depends_on: [db]
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/web"]
"#,
    );
    t.run(&["pause", "db", "--reason", "migration"])
        .assert_code(0);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["target failing", "target=web"], "reason=dependency_down");
    assert!(!t.exists("db") && !t.exists("web"), "nothing restarted");
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["status", "--json"]).stdout).expect("json");
    assert_eq!(
        v["targets"][1]["waiting"]["reason"], "dependency_down",
        "{v}"
    );
}

#[test]
fn status_of_one_target_shows_its_processes_actions_and_what_comes_next() {
    let t = service("{restart_cooldown_seconds: 120}", "");
    let (pid, _g) = started(&t);
    let out = t.run(&["status", "svc"]);
    out.assert_code(0)
        .assert_stdout_contains("svc: healthy since ")
        .assert_stdout_contains(&format!("pid {pid} sleep, up "))
        .assert_stdout_contains(" MiB")
        .assert_stdout_contains("pid_file OK (")
        .assert_stdout_contains(&format!("ms): pid={pid}"))
        .assert_stdout_contains("start by policy: ok, exit 0")
        .assert_stdout_contains("next check:  on the next pass")
        .assert_stdout_contains("if it fails, not before ");
    let v: serde_json::Value =
        serde_json::from_str(&t.run(&["status", "svc", "--json"]).stdout).expect("json");
    let row = &v["targets"][0];
    assert_eq!(v["targets"].as_array().map(Vec::len), Some(1));
    assert_eq!(row["processes"][0]["pid"], pid, "{v}");
    assert_eq!(row["processes"][0]["running"], true, "{v}");
    assert_eq!(row["checks"][0]["ok"], true, "{v}");
    assert_eq!(row["checks"][0]["detail"], format!("pid={pid}"), "{v}");
    assert_eq!(row["actions"][0]["kind"], "start", "{v}");
    // gone since: said so, not hidden
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
    wait_until(EVENT_LIMIT, || !alive(pid));
    t.run(&["status", "svc"])
        .assert_stdout_contains(&format!("pid {pid} (found by the last check; gone now)"));
    t.run(&["status", "scv"])
        .assert_code(64)
        .assert_stderr_contains("did you mean \"svc\"?");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let t = Test::new().config(&failing_config("", ""));
    t.run(&["check"]).assert_code(2);
    let before = t.read("state.json");
    for (args, says) in [
        (&["pause", "app", "app"][..], "named twice"),
        (&["pause", "--for", "0s", "app"][..], "at least 1s"),
        (
            &["pause", "--for", "soon", "app"][..],
            "give a number with its unit",
        ),
        (&["pause", "--for", "400d", "app"][..], "at most 365d"),
        (&["pause", "nope"][..], "no target named \"nope\""),
        (&["pause", "app", "--all"][..], "cannot be used with"),
        (&["resume", "nope"][..], "no target named"),
        (&["restart", "app", "nope"][..], "no target named"),
    ] {
        t.run(args).assert_code(64).assert_stderr_contains(says);
        assert_eq!(t.read("state.json"), before, "{args:?} changed the state");
    }
    t.run(&["pause"]).assert_code(64);
    t.run(&["--dry-run", "pause", "app"])
        .assert_code(64)
        .assert_stderr_contains("--dry-run is for check and reset");
    t.run(&["--dry-run", "restart", "app"]).assert_code(64);
    assert_eq!(t.read("state.json"), before);
    assert_eq!(t.count_lines("runs"), 1);
    // pausing twice with nothing new: the first pause stands, unchanged
    t.run(&["pause", "app", "--for", "1h"]).assert_code(0);
    let paused = t.state()["targets"]["app"]["paused"].clone();
    t.run(&["pause", "app"])
        .assert_code(0)
        .assert_stdout_contains("app: already paused since ");
    assert_eq!(t.state()["targets"]["app"]["paused"], paused);
}

#[test]
fn an_action_none_target_cannot_be_restarted_and_says_why() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: watched
    checks:
      - command: ["/bin/false"]
    action: none
"#,
    );
    t.run(&["restart", "watched"])
        .assert_code(64)
        .assert_stderr_contains("its action is none");
    t.run(&["stop", "watched"]).assert_code(64);
    assert!(!t.exists("state.json"), "nothing was written");
}

#[test]
fn start_of_a_running_service_starts_no_second_copy_and_restart_says_what_it_ran() {
    let t = service("{restart_cooldown_seconds: 0}", "");
    let (pid, _g) = started(&t);
    t.run(&["start", "svc"])
        .assert_code(0)
        .assert_stdout_contains(&format!(
            "svc: already running (pid {pid}): nothing started"
        ));
    assert_eq!(lines(&t, "start"), 1, "no second copy");
    assert!(alive(pid));
    // restart of an exec action with start: and stop: only: stop:, then start:, said so
    t.run(&["restart", "svc"])
        .assert_code(0)
        .assert_stdout_contains("svc: restart (its start: command) done (exit 0)")
        .assert_stdout_contains("(its stop: ran first: exit 0)");
    assert_eq!(lines(&t, "start"), 2);
    wait_until(EVENT_LIMIT, || !alive(pid));
    let new = svc_pid(&t).expect("pid");
    let _g2 = Guard::pid(new);
    assert!(alive(new) && new != pid);
}

#[test]
fn restart_refuses_to_run_a_second_copy_when_only_start_exists() {
    let t = Test::new();
    t.script(
        "start.sh",
        "#!/bin/sh\nsleep 1000 >/dev/null 2>&1 &\necho $! > \"$1/svc.pid\"\necho start >> \"$1/runs\"\n",
    );
    let t = t.config(
        r#"
state_file: {dir}/state.json
targets:
  - name: svc
    checks:
      - pid_file: {dir}/svc.pid
    action:
      exec:
        start: ["{dir}/start.sh", "{dir}"]
"#,
    );
    t.run(&["check"]).assert_code(2);
    let pid = svc_pid(&t).expect("pid");
    let _g = Guard::pid(pid);
    let before = t.read("state.json");
    t.run(&["restart", "svc"])
        .assert_code(64)
        .assert_stderr_contains("start: would run a second copy");
    assert_eq!(lines(&t, "start"), 1);
    assert_eq!(t.read("state.json"), before, "nothing changed");
}

#[test]
fn check_of_a_target_says_what_the_pass_did_and_looks_at_a_paused_one_without_touching() {
    let t = service("{restart_cooldown_seconds: 600}", "");
    let out = t.run(&["check", "svc"]);
    out.assert_code(2)
        .assert_stdout_contains("svc: failed - pid_file: ")
        .assert_stdout_contains("; start by the policy: ok (exit 0)")
        .assert_stdout_contains("; next action waits: cooldown until ");
    let pid = svc_pid(&t).expect("pid");
    let _g = Guard::pid(pid);
    t.run(&["pause", "svc"]).assert_code(0);
    t.run(&["check", "svc"])
        .assert_code(0)
        .assert_stdout_contains("svc: healthy (paused: nothing done, nothing kept");
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
    wait_until(EVENT_LIMIT, || !alive(pid));
    let before = t.read("state.json");
    t.run(&["check", "svc"])
        .assert_code(2)
        .assert_stdout_contains("svc: failing - pid_file: ");
    assert_eq!(lines(&t, "start"), 1, "paused: looked at, not touched");
    assert_eq!(t.read("state.json"), before, "nothing kept");
}

#[test]
fn a_second_pause_with_for_or_reason_changes_it_without_a_gap() {
    let t = Test::new().config(&failing_config("", ""));
    t.run(&["check"]).assert_code(2);
    t.run(&["pause", "app", "--for", "1h"]).assert_code(0);
    let first = t.state()["targets"]["app"]["paused"].clone();
    t.run(&["pause", "app", "--for", "3h", "--reason", "longer upgrade"])
        .assert_code(0)
        .assert_stdout_contains("app: still paused (since ")
        .assert_stdout_contains("(was until ");
    let p = &t.state()["targets"]["app"]["paused"];
    assert_eq!(p["since"], first["since"], "the same pause goes on");
    assert_eq!(p["reason"], "longer upgrade");
    let until = |v: &serde_json::Value| {
        humantime::parse_rfc3339(v["until"].as_str().expect("until")).expect("time")
    };
    let more = until(p).duration_since(until(&first)).expect("later");
    assert!(more.as_secs() >= 7190, "{more:?}");
}

#[test]
fn reset_dry_run_logs_what_it_would_clear() {
    let t = Test::new().config(&failing_config("", ""));
    t.run(&["check"]).assert_code(2);
    let before = t.read("state.json");
    t.run(&["reset", "app", "--dry-run"])
        .assert_code(0)
        .assert_stdout_contains("app: would clear 1 failures")
        .assert_line_contains(&["msg=\"target reset"], "would clear");
    assert_eq!(t.read("state.json"), before);
}

#[test]
fn a_verb_as_another_user_without_a_daemon_exits_77_and_says_run_it_as_root() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new().config(&failing_config("", ""));
    t.run(&["check"]).assert_code(2);
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(t.config_path(), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let before = t.read("state.json");
    let o = std::process::Command::new("/usr/bin/setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_neon-watchdog"))
        .args(["pause", "app", "-c"])
        .arg(t.config_path())
        .output()
        .expect("setpriv");
    let all = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(77), "{all}");
    assert!(
        all.contains("permission denied: the state of this watchdog")
            && all.contains("run it as root"),
        "{all}"
    );
    assert_eq!(t.read("state.json"), before);
}
