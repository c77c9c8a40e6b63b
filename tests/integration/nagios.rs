//! `status --format nagios`: the monitoring-plugin convention (Nagios, Icinga, Zabbix's
//! nagios-compatible checks, Sensu): one line `NEON-WATCHDOG STATE - text | perfdata`, long
//! text on the lines after it, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

use crate::harness::*;

/// The plugin guidelines' first line: `SERVICE STATE - text | label=value;warn;crit;min;max ...`,
/// with exactly one `|`.
#[track_caller]
fn first_line(out: &Output, state: &str, code: i32) -> String {
    out.assert_code(code);
    let line = out.stdout.lines().next().unwrap_or_default().to_string();
    let re = regex::Regex::new(
        r"^NEON-WATCHDOG (OK|WARNING|CRITICAL|UNKNOWN) - [^|]+ \| ([a-z_]+=\d+(;\d*){0,4})( [a-z_]+=\d+(;\d*){0,4})*$",
    )
    .expect("regex");
    assert!(re.is_match(&line), "not a plugin line: {line:?}\n{out}");
    assert!(
        line.starts_with(&format!("NEON-WATCHDOG {state} - ")),
        "{line}"
    );
    line
}

fn two_targets(app_check: &str, policy: &str) -> Test {
    Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: app
    checks:
      - command: {app_check}
    policy: {policy}
    action: none
  - name: db
    checks:
      - command: ["/bin/true"]
    action: none
"#
    ))
}

#[test]
fn ok_critical_and_warning_follow_the_targets() {
    let t = two_targets(r#"["/bin/true"]"#, "{}");
    t.run(&["check"]).assert_code(0);
    let line = first_line(&t.run(&["status", "--format", "nagios"]), "OK", 0);
    assert!(
        line.contains("2 of 2 targets healthy | healthy=2;;;0;2 degraded=0;;;0;2 failed=0;;;0;2"),
        "{line}"
    );

    let t = two_targets(r#"["/bin/sh", "-c", "echo 'a|b'; exit 1"]"#, "{}");
    t.run(&["check"]).assert_code(2);
    let out = t.run(&["status", "--format", "nagios"]);
    let line = first_line(&out, "CRITICAL", 2);
    assert!(
        line.contains("1 of 2 targets failing: app (command: exit 1: a/b) | healthy=1;;;0;2"),
        "{line}"
    );
    // the long text: one line per target not healthy
    assert_eq!(
        out.stdout.lines().nth(1),
        Some("app: failed - command: exit 1: a/b")
    );

    let t = two_targets(r#"["/bin/false"]"#, "{fail_threshold: 3}");
    t.run(&["check"]).assert_code(2);
    let line = first_line(&t.run(&["status", "--format", "nagios"]), "WARNING", 1);
    assert!(line.contains("1 of 2 targets degraded: app"), "{line}");
}

#[test]
fn gave_up_is_critical() {
    let t = two_targets(r#"["/bin/false"]"#, "{}");
    t.run(&["check"]).assert_code(2);
    let mut st = t.state();
    st["targets"]["app"]["status"] = "gave_up".into();
    t.write_state(&st);
    first_line(&t.run(&["status", "--format", "nagios"]), "CRITICAL", 2);
}

#[test]
fn no_state_stale_state_and_unreadable_state_are_unknown() {
    let t = two_targets(r#"["/bin/true"]"#, "{}");
    let line = first_line(&t.run(&["status", "--format", "nagios"]), "UNKNOWN", 3);
    assert!(line.contains("2 of 2 targets not checked yet"), "{line}");

    t.run(&["check"]).assert_code(0);
    t.age_state(600);
    let line = first_line(&t.run(&["status", "--format", "nagios"]), "UNKNOWN", 3);
    assert!(
        line.contains("stale: app, db not checked for over 90s"),
        "{line}"
    );

    t.write("state.json", "{not json");
    let line = first_line(&t.run(&["status", "--format", "nagios"]), "UNKNOWN", 3);
    assert!(line.contains("state file unusable: state file "), "{line}");
    assert!(!line.contains("going on"), "{line}");
    assert_eq!(
        t.read("state.json"),
        "{not json",
        "status must leave it alone"
    );
}

#[test]
fn a_config_that_cannot_be_used_is_unknown_on_stdout() {
    let t = Test::new().config("targets: [\n");
    let out = t.run(&["status", "--format", "nagios"]);
    out.assert_code(3);
    assert!(
        out.stdout
            .starts_with("NEON-WATCHDOG UNKNOWN - config cannot be used: "),
        "{out}"
    );
    // the other formats keep the config exit code
    t.run(&["status"]).assert_code(78);
    // --json and --format together are a usage error
    t.run(&["status", "--json", "--format", "table"])
        .assert_code(64);
}

#[test]
fn names_and_output_can_never_break_the_plugin_line() {
    // a `|` in a target's name, a terminal escape in a check's output
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: "a|b"
    checks:
      - command: ["/bin/sh", "-c", "printf '\\033[31mred\\n'; exit 1"]
    action: none
"#,
    );
    t.run(&["check"]).assert_code(2);
    let out = t.run(&["status", "--format", "nagios"]);
    let line = first_line(&out, "CRITICAL", 2);
    assert!(
        line.contains("1 of 1 targets failing: a/b (command: exit 1: "),
        "{line}"
    );
    assert!(!out.stdout.contains('\u{1b}'), "{:?}", out.stdout);
    assert_eq!(out.stdout.matches('|').count(), 1, "{:?}", out.stdout);

    // nothing enabled: nothing is watched, which is no OK
    let t = Test::new().config(
        "state_file: {dir}/state.json\ntargets:\n  - name: a\n    enabled: false\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
    );
    let line = first_line(&t.run(&["status", "--format", "nagios"]), "UNKNOWN", 3);
    assert!(line.contains("no target is enabled"), "{line}");
}

/// Issue 19: a check's `name:` shows wherever its failure is told, as in logs: the status
/// table, `status --json` and the plugin line all name the check that failed.
#[test]
fn a_named_check_is_named_in_status_json_and_the_plugin_line() {
    let t = two_targets(
        r#"["/bin/false"]
        name: app-ping"#,
        "{}",
    );
    t.run(&["check"]).assert_code(2);
    let out = t.run(&["status"]);
    out.assert_code(2);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("app "))
        .unwrap_or_default();
    assert!(row.ends_with("command (app-ping): exit 1"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&t.run(&["status", "--json"]).stdout).expect("status --json");
    assert_eq!(
        json["targets"][0]["last_reason"], "command (app-ping): exit 1",
        "{json}"
    );
    let line = first_line(&t.run(&["status", "--format", "nagios"]), "CRITICAL", 2);
    assert!(
        line.contains("1 of 2 targets failing: app (command (app-ping): exit 1) |"),
        "{line}"
    );
}

/// Two unnamed checks of one kind that both fail are told apart in the reason as in the
/// metrics (`command`, `command#2`), where the reason read "command: exit 1; command: exit 2".
#[test]
fn two_unnamed_checks_of_a_kind_are_told_apart_in_the_reason() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/sh", "-c", "exit 1"]
      - command: ["/bin/sh", "-c", "exit 2"]
    action: none
"#,
    );
    t.run(&["check"]).assert_code(2);
    let json: serde_json::Value =
        serde_json::from_str(&t.run(&["status", "--json"]).stdout).expect("status --json");
    assert_eq!(
        json["targets"][0]["last_reason"], "command: exit 1; command#2: exit 2",
        "{json}"
    );
}

/// L1: a check's output is shown by `status`, which root runs in a terminal: a terminal
/// escape in it (a title change, a screen clear, a right-to-left override) is shown escaped,
/// never obeyed; so is one in a path shown by `test-config`.
#[test]
fn terminal_escapes_never_reach_the_terminal() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/sh", "-c", "printf '\\033]0;pwned\\007\\033[2J\\342\\200\\256evil\\n'; exit 1"]
      - file_fresh: "{dir}/beat\e[2J"
        max_age_seconds: 60
    action: none
"#,
    );
    let bad = |c: char| c.is_control() && c != '\n' || c == '\u{202e}';
    // the log lines of the pass, on root's terminal too
    let out = t.run(&["check"]);
    out.assert_code(2);
    assert!(!out.stderr.contains(bad), "{:?}", out.stderr);
    assert!(out.stderr.contains("\\u{202e}evil"), "{}", out.stderr);
    let out = t.run(&["status"]);
    out.assert_code(2);
    assert!(!out.stdout.contains(bad), "{:?}", out.stdout);
    out.assert_stdout_contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{202e}evil");
    let out = t.run(&["test-config"]);
    out.assert_code(0);
    assert!(!out.stdout.contains(bad), "{:?}", out.stdout);
    out.assert_stdout_contains("beat\\u{1b}[2J");
}
