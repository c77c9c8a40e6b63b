//! Invalid configs: exit 78 with a message that says what is wrong and where (file, field
//! path, line), every problem at once, never a panic. Messages are asserted nearly verbatim.

use crate::harness::*;

/// Run `check` and `test-config` on `text` (written as `name`); both must exit 78 with the
/// same message. Returns the stderr of `check` with the config's path replaced by `CFG`.
#[track_caller]
fn invalid(name: &str, text: &str) -> String {
    let t = Test::new().config_named(name, text);
    let cfg = t.config_path().display().to_string();
    let check = t.run(&["check"]);
    check.assert_code(78);
    let test_config = t.run(&["test-config"]);
    test_config.assert_code(78);
    for out in [&check, &test_config] {
        assert_eq!(out.stdout, "", "stdout on a config error\n{out}");
        for bad in ["panicked", "RUST_BACKTRACE", "Raw", "Error {", "Some("] {
            out.assert_stderr_not_contains(bad);
        }
    }
    assert_eq!(check.stderr, test_config.stderr);
    assert!(!t.exists("state.json"));
    check.stderr.replace(&cfg, "CFG")
}

#[test]
fn missing_file() {
    let t = Test::new();
    let out = t.run_bare(&["check", "-c", "/nonexistent/neon/config.yml"]);
    out.assert_code(78);
    assert_eq!(
        out.stderr,
        "neon-watchdog: /nonexistent/neon/config.yml: config file not found: create it (see examples/config.yml) or pass -c FILE\n"
    );
}

#[test]
fn a_directory_is_not_a_config() {
    let t = Test::new();
    let dir = t.dir().display().to_string();
    let out = t.run_bare(&["check", "-c", &dir]);
    out.assert_code(78)
        .assert_stderr_contains(&format!("{dir}: cannot read config: is a directory"));
}

#[test]
fn empty_file() {
    for text in ["", "\n\n", "# just a comment\n", "---\n"] {
        let e = invalid("config.yml", text);
        assert_eq!(
            e,
            "neon-watchdog: CFG: config is empty: it needs at least a `targets:` list (see examples/config.yml)\n",
            "for {text:?}"
        );
    }
}

#[test]
fn yaml_syntax_error_names_the_line() {
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [\n      - tcp_port: 1\n",
    );
    assert!(e.starts_with("neon-watchdog: CFG: "), "{e}");
    assert!(e.contains("(line 5, column"), "{e}");
}

#[test]
fn json_syntax_error_names_the_line() {
    let e = invalid(
        "config.json",
        "{\n  \"state_file\": \"{dir}/state.json\",\n  \"targets\": [\n    {\"name\": \"web\",}\n  ]\n}\n",
    );
    assert!(e.starts_with("neon-watchdog: CFG: "), "{e}");
    assert!(e.contains("(line 4, column"), "{e}");
}

#[test]
fn unknown_key_typo_is_named() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
default_policy:
  fail_treshold: 3
targets:
  - name: web
    checks:
      - tcp_port: 127.0.0.1:80
    action: none
"#,
    );
    assert!(
        e.starts_with("neon-watchdog: CFG: default_policy.fail_treshold: unknown field `fail_treshold`, expected one of `fail_threshold`"),
        "{e}"
    );
    assert!(e.contains("(line 3, column 3)"), "{e}");
}

#[test]
fn unknown_key_in_a_check_is_named() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
targets:
  - name: web
    checks:
      - tcp_port: 127.0.0.1:80
        timeout: 3
    action: none
"#,
    );
    assert!(
        e.contains("targets[0].checks[0].timeout: unknown field `timeout`"),
        "{e}"
    );
    assert!(e.contains("line 6"), "{e}");
}

#[test]
fn two_kinds_in_one_check() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
targets:
  - name: web
    checks:
      - tcp_port: 127.0.0.1:80
        command: ["/bin/true"]
    action: none
"#,
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: targets[0].checks[0].command: a check has exactly one kind, this one has tcp_port and command: split it into one check per kind (line 6)\n"
    );
}

#[test]
fn modifier_of_another_kind() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
targets:
  - name: web
    checks:
      - tcp_port: 127.0.0.1:80
        ok_exit_codes: [0]
    action: none
"#,
    );
    assert!(
        e.contains("targets[0].checks[0].ok_exit_codes: is a modifier of command checks only"),
        "{e}"
    );
}

#[test]
fn port_out_of_range_with_path_and_line() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
targets:
  - name: web
    checks:
      - process_name: nginx
      - tcp_port: 127.0.0.1:70000
    action: none
"#,
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: targets[0].checks[1].tcp_port: port 70000 is out of range 1..65535 (line 6)\n"
    );
}

#[test]
fn undefined_variable() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
targets:
  - name: web
    checks:
      - command: ["/bin/echo", "${NW_IT_NOT_DEFINED_ANYWHERE}"]
    action: none
"#,
    );
    assert!(
        e.starts_with("neon-watchdog: CFG: targets[0].checks[0].command[1]: environment variable NW_IT_NOT_DEFINED_ANYWHERE is not set"),
        "{e}"
    );
}

#[test]
fn json_config_with_a_wrong_type() {
    let e = invalid(
        "config.json",
        r#"{"state_file": "{dir}/state.json",
 "targets": [{"name": "web",
              "checks": [{"tcp_port": "127.0.0.1:80", "timeout_seconds": "five"}],
              "action": "none"}]}"#,
    );
    assert!(
        e.starts_with("neon-watchdog: CFG: targets[0].checks[0].timeout_seconds: invalid type: string \"five\", expected an integer"),
        "{e}"
    );
    assert!(e.contains("(line 3, column"), "{e}");
}

#[test]
fn yaml_wrong_type() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
interval_seconds: soon
targets:
  - name: web
    checks: [{tcp_port: 80}]
    action: none
"#,
    );
    assert!(
        e.starts_with("neon-watchdog: CFG: interval_seconds: invalid type: string \"soon\", expected an integer"),
        "{e}"
    );
}

#[test]
fn multiple_errors_are_all_reported() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
interval_seconds: 0
targets:
  - name: web
    checks:
      - tcp_port: 127.0.0.1:70000
      - pid_file: run/web.pid
    policy: {restart_cooldown_seconds: -1}
    action: none
  - name: web
    checks: []
    action:
      exec: {}
  - name: db
    checks:
      - command: []
    action:
      systemd: {method: restart}
"#,
    );
    let expected = [
        "neon-watchdog: config is invalid (9 problems):",
        "CFG: interval_seconds: must be 1 or more, got 0 (line 2)",
        "CFG: targets[0].checks[0].tcp_port: port 70000 is out of range 1..65535 (line 6)",
        "CFG: targets[0].checks[1].pid_file: \"run/web.pid\" is not an absolute path: start it with / (line 7)",
        "CFG: targets[0].policy.restart_cooldown_seconds: must be 0 or more (0 means none), got -1 (line 8)",
        "CFG: targets[1].name: \"web\" is already the name of targets[0]: names must be unique (line 10)",
        "CFG: targets[1].checks: is empty: give at least one check (process_name, pid_file, tcp_port, command, http, docker, systemd_unit, file_fresh, disk_free, system) (line 11)",
        "CFG: targets[1].action.exec: needs `start:` or `restart:` (or both): the command that brings the target back (line 13)",
    ];
    for line in expected {
        assert!(e.contains(line), "missing {line:?} in:\n{e}");
    }
    assert!(
        e.contains("targets[2].checks[0].command: is an empty list"),
        "{e}"
    );
    assert!(
        e.contains("targets[2].action.systemd.unit: is missing"),
        "{e}"
    );
}

#[test]
fn missing_pieces() {
    let e = invalid("config.yml", "state_file: {dir}/state.json\n");
    assert!(e.contains("CFG: targets: is missing"), "{e}");
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n",
    );
    assert!(e.contains("CFG: targets[0].action: is missing"), "{e}");
    assert!(e.contains("action: none"), "{e}");
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: restart\n",
    );
    assert!(e.contains("targets[0].action"), "{e}");
}

#[test]
fn lock_file_must_not_be_the_state_file() {
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\nlock_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: none\n",
    );
    assert!(e.contains("CFG: lock_file: is the state file"), "{e}");
}

#[test]
fn durations_are_bounded() {
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 80, timeout_seconds: 99999999999}]\n    action: none\n",
    );
    assert!(
        e.contains("targets[0].checks[0].timeout_seconds: 99999999999 is more than a year"),
        "{e}"
    );
}
