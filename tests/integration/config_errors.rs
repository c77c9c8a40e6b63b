//! Invalid configs: exit 78 with a message that says what is wrong and where (file, field
//! path, line), every problem at once, never a panic. Messages are asserted nearly verbatim.

use crate::harness::*;
use std::time::Duration;

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
        "neon-watchdog: /nonexistent/neon/config.yml: config file not found: create it (the README's Configuration section shows one) or pass -c FILE\n"
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
            "neon-watchdog: CFG: config is empty: it needs at least a `targets:` list (the README's Configuration section shows one)\n",
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
    assert_eq!(
        e,
        "neon-watchdog: CFG: default_policy.fail_treshold: unknown field `fail_treshold`: did you mean `fail_threshold`? (line 3)\n"
    );
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
        "CFG: targets[1].checks: is empty: give at least one check (process_name, pid_file, tcp_port, command, http, tls_cert, docker, systemd_unit, file_fresh, disk_free, system) (line 11)",
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

// ---------------------------------------------------------------------------------------------
// Every message says where and what to do (issue 9)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_byte_order_mark_is_no_error() {
    for (name, text) in [
        (
            "config.yml",
            "\u{feff}state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
        ),
        (
            "config.json",
            "\u{feff}{\"state_file\": \"{dir}/state.json\", \"targets\": [{\"name\": \"web\", \"checks\": [{\"command\": [\"/bin/true\"]}], \"action\": \"none\"}]}\n",
        ),
    ] {
        let t = Test::new().config_named(name, text);
        assert!(std::fs::read(t.config_path())
            .expect("read config")
            .starts_with(&[0xef, 0xbb, 0xbf]));
        t.run(&["test-config"])
            .assert_code(0)
            .assert_stdout_contains("valid, 1 target");
        t.run(&["check"]).assert_code(0);
    }
}

#[test]
fn a_tab_in_the_indentation_is_named() {
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n\tchecks: [{tcp_port: 80}]\n    action: none\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: YAML syntax error: line 4 is indented with a tab: YAML indents with spaces only; replace the tab with spaces (line 4, column 1)\n"
    );
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks:\n    \t- tcp_port: 80\n    action: none\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: YAML syntax error: line 5 is indented with a tab: YAML indents with spaces only; replace the tab with spaces (line 5, column 5)\n"
    );
}

#[test]
fn a_key_given_twice_is_named_with_the_line_that_repeats_it() {
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    name: web2\n    action: none\nstate_file: {dir}/other.json\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: config is invalid (2 problems):\n\
         CFG: targets[0].name: `name` is given twice in the same map: keep one (line 5)\n\
         CFG: state_file: `state_file` is given twice in the same map: keep one (line 7)\n"
    );
    // free-form maps too: the second value used to replace the first silently
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action:\n      exec:\n        start: [\"/bin/true\"]\n        env:\n          MODE: a\n          MODE: b\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: targets[0].action.exec.env.MODE: `MODE` is given twice in the same map: keep one (line 10)\n"
    );
}

#[test]
fn a_second_yaml_document_is_named_with_its_line() {
    let e = invalid(
        "config.yml",
        "---\nstate_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: none\n---\ninterval_seconds: 5\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: a second YAML document starts at line 7: a config is one document; remove the `---` or `...` that separates them and merge what follows into the first (line 7)\n"
    );
}

#[test]
fn text_that_is_not_utf8_is_located() {
    let t = Test::new();
    let mut bytes = t
        .expand("state_file: {dir}/state.json\ntargets:\n  - name: w")
        .into_bytes();
    bytes.push(0xe9); // "é" in Latin-1
    bytes.extend_from_slice(b"b\n    checks: [{tcp_port: 80}]\n    action: none\n");
    std::fs::write(t.config_path(), bytes).expect("write config");
    let cfg = t.config_path().display().to_string();
    for sub in ["check", "test-config"] {
        let out = t.run(&[sub]);
        out.assert_code(78);
        assert_eq!(
            out.stderr,
            format!("neon-watchdog: {cfg}: cannot read config: it is not UTF-8 text: byte 0xe9 is not UTF-8; save the file as UTF-8 (line 3, column 12)\n")
        );
    }
}

#[test]
fn a_missing_key_points_at_the_map_that_lacks_it() {
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks:\n      - file_fresh: /var/run/backup.heartbeat\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: config is invalid (2 problems):\n\
         CFG: targets[0].checks[0].max_age_seconds: is missing: say how old the file may get, e.g. max_age_seconds: 300 (line 5)\n\
         CFG: targets[0].action: is missing: give `exec:`, `systemd:` or `docker:` to recover, or `action: none` to only monitor (line 3)\n"
    );
}

#[test]
fn every_unknown_key_is_reported_with_the_key_it_probably_meant() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
intervall_seconds: 5
targets:
  - name: web
    checks:
      - tcp: 80
        timout: 3
    policy: {fail_treshold: 2}
    action:
      sytemd: {unit: nginx.service}
  - name: db
    checks: [{command: ["/bin/true"], bogus: 1}]
    action:
      exec: {strat: ["/bin/true"]}
"#,
    );
    assert_eq!(
        e,
        "neon-watchdog: config is invalid (7 problems):\n\
         CFG: intervall_seconds: unknown field `intervall_seconds`: did you mean `interval_seconds`? (line 2)\n\
         CFG: targets[0].checks[0].tcp: unknown field `tcp`: did you mean `tcp_port`? (line 6)\n\
         CFG: targets[0].checks[0].timout: unknown field `timout`: did you mean `timeout_seconds`? (line 7)\n\
         CFG: targets[0].policy.fail_treshold: unknown field `fail_treshold`: did you mean `fail_threshold`? (line 8)\n\
         CFG: targets[0].action.sytemd: unknown field `sytemd`: did you mean `systemd`? (line 10)\n\
         CFG: targets[1].checks[0].bogus: unknown field `bogus`: a check takes one kind (process_name, pid_file, tcp_port, command, http, tls_cert, docker, systemd_unit, file_fresh, disk_free, system), the modifiers of that kind and timeout_seconds (line 12)\n\
         CFG: targets[1].action.exec.strat: unknown field `strat`: did you mean `start`? (line 14)\n"
    );
    // JSON too (JSON messages carry no line for keys)
    let e = invalid(
        "config.json",
        r#"{"state_file": "{dir}/state.json", "targets": [{"name": "web", "checks": [{"tcp": 80}], "action": "none", "polcy": {}}]}"#,
    );
    assert_eq!(
        e,
        "neon-watchdog: config is invalid (2 problems):\n\
         CFG: targets[0].checks[0].tcp: unknown field `tcp`: did you mean `tcp_port`?\n\
         CFG: targets[0].polcy: unknown field `polcy`: did you mean `policy`?\n"
    );
}

#[test]
fn numbers_out_of_range_give_the_range() {
    let e = invalid(
        "config.yml",
        r#"state_file: {dir}/state.json
interval_seconds: 18446744073709551616
targets:
  - name: web
    checks:
      - {process_name: x, max_children: 4294967296}
      - {process_name: y, max_cpu_percent: 200000}
    policy: {fail_threshold: 4294967296, give_up_after_restarts: 99999999999}
    action: none
"#,
    );
    assert_eq!(
        e,
        "neon-watchdog: config is invalid (5 problems):\n\
         CFG: interval_seconds: 18446744073709551616 is more than a year (31536000 seconds); use a smaller value (line 2)\n\
         CFG: targets[0].checks[0].max_children: 4294967296 is out of range 0..4294967295 (line 6)\n\
         CFG: targets[0].checks[1].max_cpu_percent: must be more than 0 and at most 100000 (percent of one core: 100 is one busy core), got 200000 (line 7)\n\
         CFG: targets[0].policy.fail_threshold: 4294967296 is out of range 1..4294967295 (line 8)\n\
         CFG: targets[0].policy.give_up_after_restarts: 99999999999 is out of range 0..4294967295 (line 8)\n"
    );
    // beyond any integer type
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntimeout_seconds: 100000000000000000000000000000000000000000\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: none\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: timeout_seconds: 100000000000000000000000000000000000000000 is out of range: no setting takes a number this large (line 2, column 18)\n"
    );
}

#[test]
fn a_wrong_type_names_the_form_to_write() {
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    enabled: maybe\n    checks: [{tcp_port: 80}]\n    action: none\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: targets[0].enabled: invalid type: string \"maybe\", expected true or false (line 4, column 14)\n"
    );
    let e = invalid(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{process_name: nginx}]\n    action:\n      exec:\n        start: \"/usr/sbin/nginx -c x\"\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: targets[0].action.exec.start: invalid type: string \"/usr/sbin/nginx -c x\", expected a list, e.g. [\"/usr/sbin/nginx\", \"-c\", \"x\"] (line 7, column 16)\n"
    );
}

#[test]
fn yaml_in_a_file_named_json_is_told_so() {
    let e = invalid(
        "config.json",
        "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: none\n",
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: JSON syntax error: expected value (line 1, column 1); the file name ends in .json, so it is read as JSON, but the content looks like YAML: name it .yml (or write it as JSON)\n"
    );
}

#[test]
fn target_names_are_at_most_100_characters() {
    let e = invalid(
        "config.yml",
        &format!(
            "state_file: {{dir}}/state.json\ntargets:\n  - name: {}\n    checks: [{{tcp_port: 80}}]\n    action: none\n",
            "a".repeat(300)
        ),
    );
    assert_eq!(
        e,
        "neon-watchdog: CFG: targets[0].name: is 300 characters long: a name has at most 100 (it is in every log line and names the target's action log file) (line 3)\n"
    );
    // 100 is fine, and the action's output is kept in its log file
    let name = "n".repeat(100);
    let t = Test::new().config(&format!(
        "state_file: {{dir}}/state.json\ntargets:\n  - name: {name}\n    checks: [{{command: [\"/bin/false\"]}}]\n    action:\n      exec:\n        restart: [\"/bin/echo\", \"restarted-it\"]\n"
    ));
    t.run(&["check"])
        .assert_code(2)
        .assert_stderr_contains("restarted-it");
    assert!(t
        .read(&format!("{name}.action.log"))
        .contains("restarted-it"));
}

/// No name of a raw serde struct (`RawCheck`, `RawSystem`, ...) and no Rust type reaches a
/// user, whatever is wrong with whatever key.
#[test]
fn no_internal_type_name_reaches_a_user() {
    let yaml = |top: &str, target: &str, check: &str| {
        format!(
            "state_file: {{dir}}/state.json\n{top}targets:\n  - name: web\n    checks:\n      - {check}\n{target}"
        )
    };
    let none = "    action: none\n";
    let mut cases: Vec<(&str, String)> = Vec::new();
    for v in ["5", "[1]", "x", "true", "[]", "-1.5"] {
        for key in [
            "default_policy",
            "heartbeat",
            "metrics",
            "notify",
            "targets",
        ] {
            cases.push((
                "config.yml",
                format!("state_file: {{dir}}/state.json\n{key}: {v}\n"),
            ));
        }
        for check in [
            format!("{{system: {v}}}"),
            format!("{{tcp_port: 80, timeout_seconds: {v}}}"),
            format!("{{command: {v}}}"),
            format!("{{http: \"http://h/\", headers: {v}}}"),
            format!("{{process_name: x, user: {v}}}"),
            format!("{{tcp_port: {v}}}"),
            v.to_string(),
        ] {
            cases.push(("config.yml", yaml("", none, &check)));
        }
        for action in [
            format!("    action: {v}\n"),
            format!("    action: {{exec: {v}}}\n"),
            format!("    action: {{systemd: {v}}}\n"),
            format!("    action: {{docker: {v}}}\n"),
            format!("    action: {{exec: {{start: {v}}}}}\n"),
            format!("    action: none\n    on_give_up: {v}\n"),
            format!("    action: none\n    policy: {v}\n"),
            format!("    action: none\n    enabled: {v}\n"),
        ] {
            cases.push(("config.yml", yaml("", &action, "{tcp_port: 80}")));
        }
        for notify in [
            format!("notify: [{v}]\n"),
            format!("notify: [{{webhook: {v}}}]\n"),
            format!("notify: [{{webhook: {{url: {v}}}}}]\n"),
            format!("heartbeat: {{url: {v}}}\n"),
        ] {
            cases.push(("config.yml", yaml(&notify, none, "{tcp_port: 80}")));
        }
    }
    // JSON takes a list where a struct belongs unless told otherwise
    for key in ["default_policy", "heartbeat", "metrics"] {
        cases.push((
            "config.json",
            format!(
                "{{\"state_file\": \"{{dir}}/state.json\", \"{key}\": [], \"targets\": [{{\"name\": \"w\", \"checks\": [{{\"tcp_port\": 80}}], \"action\": \"none\"}}]}}"
            ),
        ));
    }
    cases.push((
        "config.json",
        "{\"state_file\": \"{dir}/state.json\", \"targets\": [{\"name\": \"w\", \"checks\": [[]], \"action\": {\"docker\": []}}]}".to_string(),
    ));
    let mut invalid = 0;
    for (name, text) in &cases {
        let t = Test::new().config_named(name, text);
        let out = t.run(&["test-config"]);
        // a few of the values fit where they are put (`timeout_seconds: 5`)
        assert!(matches!(out.code, Some(0 | 78)), "{out}");
        invalid += usize::from(out.code == Some(78));
        // the test's random directory name could spell one of the words below
        let stderr = out.stderr.replace(&t.dir().display().to_string(), "{dir}");
        for bad in [
            "Raw",
            "struct ",
            "i64",
            "i128",
            "u128",
            "f64",
            "a sequence",
            "a boolean",
        ] {
            assert!(
                !stderr.contains(bad),
                "{bad:?} in the message for\n{text}\n{out}"
            );
        }
    }
    assert!(
        invalid > cases.len() * 3 / 4,
        "{invalid} of {}",
        cases.len()
    );
}

/// `${NAME}` values are secrets: no config error shows one, raw, escaped or quoted, even when
/// it holds `"` or `\`, which `{:?}` escapes.
#[test]
fn config_errors_never_show_a_secret_in_any_form() {
    let secret = "s3cr\"et\\v4lue x";
    let t = Test::new().env("NW_IT_QUOTED_SECRET", secret).config(
        r#"state_file: {dir}/state.json
targets:
  - name: web
    checks:
      - tcp_port: "${NW_IT_QUOTED_SECRET}"
      - process_name: "/opt/${NW_IT_QUOTED_SECRET}"
      - pid_file: "run/${NW_IT_QUOTED_SECRET}"
      - systemd_unit: "${NW_IT_QUOTED_SECRET}"
      - docker: "${NW_IT_QUOTED_SECRET}"
      - {process_name: x, user: "${NW_IT_QUOTED_SECRET}", cmdline_regex: "(${NW_IT_QUOTED_SECRET}"}
      - {http: "http://h/", resolve: "${NW_IT_QUOTED_SECRET}"}
    action: none
metrics: {listen: "${NW_IT_QUOTED_SECRET}"}
"#,
    );
    for args in [
        &["check"][..],
        &["test-config"],
        &["check", "--log-format", "json"],
    ] {
        let out = t.run(args);
        out.assert_code(78).assert_stderr_contains("***");
        for part in ["s3cr", "v4lue", "et\\\\v4", "et\\v4"] {
            out.assert_stderr_not_contains(part);
        }
        assert!(
            out.stderr.lines().count() >= 9,
            "every problem is reported\n{out}"
        );
    }
}

/// A value in the wrong place is quoted by its start only: it may be a token, or a whole file
/// an `include:` or `-c` named by mistake (as root, /etc/shadow), which must not land in the
/// journal.
#[test]
fn a_long_value_in_the_wrong_place_is_not_quoted_whole() {
    let secret = format!("root:x:0:0:{}", "s3cr3t-hash-".repeat(30));
    let t = Test::new();
    t.write("passwd", &format!("{secret}\n"));
    let t = t.config(&format!(
        "state_file: {{dir}}/state.json\ntargets: \"{secret}\"\n"
    ));
    let out = t.run(&["test-config"]);
    out.assert_code(78)
        .assert_stderr_contains("targets: invalid type: string \"root:x:0:0:s3cr3t-hash-s3cr3t-hash-s3cr3...\" (371 characters), expected a list");
    assert!(
        out.stderr.matches("s3cr3t-hash-").count() <= 4,
        "the value is quoted whole:\n{out}"
    );
    t.write(
        "config.yml",
        "state_file: {dir}/state.json\ninclude: [passwd]\n",
    );
    let out = t.run(&["test-config"]);
    out.assert_code(78)
        .assert_stderr_contains("passwd: invalid type: string \"root:x:0:0:s3cr3t-hash-s3cr3t-hash-s3cr3...\" (371 characters), expected a map");
    assert!(
        out.stderr.matches("s3cr3t-hash-").count() <= 4,
        "the value is quoted whole:\n{out}"
    );
}

/// A NUL byte in an argument (YAML's "\033" in double quotes is "\0" then "33") used to be
/// found only when the check ran ("cannot run /bin/sh: nul byte found"), making the target
/// unknown on every pass; it is a config error with its place.
#[test]
fn a_nul_byte_in_an_argument_is_a_config_error() {
    let t = Test::new().config(
        "state_file: {dir}/state.json\ntargets:\n  - name: a\n    checks:\n      - command: [\"/bin/sh\", \"-c\", \"printf \\\"\\033[31m\\\"\"]\n    action: none\n",
    );
    t.run(&["test-config"]).assert_code(78).assert_stderr_contains(
        "targets[0].checks[0].command[2]: holds a NUL byte (in YAML double quotes, \\0 or \\033 is one: write \\\\033 for a backslash), which no program can take (line 5)",
    );
}

/// Flow collections nested 80,000 deep (160 KB of `x: [[[[...]]]]`) used to cost the YAML
/// scanner quadratic time (11 s, a SIGHUP reload of such a file stalled `run`): they are
/// refused before the parser starts, with the line, in the time it takes to read the file.
/// Deep nesting of block lists is bounded by the parser's own depth limit.
#[test]
fn deeply_nested_flow_collections_are_refused_at_once_with_their_line() {
    let n = 80_000;
    let deep = format!(
        "state_file: {{dir}}/state.json\ntargets: []\nx: {}{}\n",
        "[".repeat(n),
        "]".repeat(n)
    );
    let t = Test::new().config(&deep);
    for cmd in ["test-config", "check"] {
        // a hang guard, not a benchmark: it took 11 s in a release build
        t.run(&[cmd])
            .assert_code(78)
            .assert_faster_than(Duration::from_secs(30))
            .assert_stderr_contains(
                ": lists and maps are nested too deeply at line 3: more than 128 levels of `[` and `{`, where a config needs a few; is this the right file? (line 3)",
            );
    }
    // the same in an included file
    let t =
        Test::new().config("state_file: {dir}/state.json\ninclude: conf.d/*.yml\ntargets: []\n");
    t.write(
        "conf.d/deep.yml",
        &format!(
            "targets:\n  - {}{}\n",
            "{a: ".repeat(n / 2),
            "}".repeat(n / 2)
        ),
    );
    t.run(&["test-config"])
        .assert_code(78)
        .assert_faster_than(Duration::from_secs(30))
        .assert_stderr_contains("conf.d/deep.yml: lists and maps are nested too deeply at line 2");
    // 128 levels pass this look (the parser's own limit): what is wrong there is said as before
    let e = invalid(
        "config.yml",
        &format!("targets: []\nx: {}{}\n", "[".repeat(128), "]".repeat(128)),
    );
    assert!(e.contains("x: unknown field `x`"), "{e}");
    assert!(!e.contains("nested too deeply"), "{e}");
}

/// A NUL byte in a path (YAML's "\0" in double quotes) used to pass `test-config` and fail
/// every pass (the system cannot take it: "nul byte found in provided data"): every path
/// field, and every other value the system takes (names of programs, units, containers), is
/// a config error at load, with its field path and line.
#[test]
fn a_nul_byte_in_a_path_or_a_name_is_a_config_error_with_its_place() {
    let t = Test::new().config(
        r#"state_file: "{dir}/st\0ate.json"
lock_file: "{dir}/lo\0ck"
metrics: {textfile: "{dir}/m\0.prom"}
targets:
  - name: a
    checks:
      - pid_file: "/run/a\0.pid"
      - file_fresh: "/tmp/f\0"
        max_age_seconds: 60
      - disk_free: "/\0"
        min_free_percent: 5
      - tls_cert: "127.0.0.1:443"
        ca_file: "/etc/ssl/ca\0.pem"
      - process_name: "ngi\0nx"
    action:
      exec:
        start: [/bin/true]
        cwd: "/tm\0p"
        detach: true
        log_file: "/tmp/l\0og"
  - name: b
    checks: [{docker: web, docker_socket: "/run/d\0.sock"}, {docker: "we\0b"}]
    action: {systemd: {unit: "ngi\0nx.service"}}
"#,
    );
    let out = t.run(&["test-config"]);
    out.assert_code(78);
    let nul = "holds a NUL byte (in YAML double quotes, \\0 or \\033 is one: write \\\\033 for a backslash), which no path, name or address can hold (the system stops reading at it)";
    for (path, line) in [
        ("state_file", 1),
        ("lock_file", 2),
        ("metrics.textfile", 3),
        ("targets[0].checks[0].pid_file", 7),
        ("targets[0].checks[1].file_fresh", 8),
        ("targets[0].checks[2].disk_free", 10),
        ("targets[0].checks[3].ca_file", 13),
        ("targets[0].checks[4].process_name", 14),
        ("targets[0].action.exec.cwd", 18),
        ("targets[0].action.exec.log_file", 20),
        ("targets[1].checks[1].docker", 22),
        ("targets[1].checks[0].docker_socket", 22),
        ("targets[1].action.systemd.unit", 23),
    ] {
        out.assert_stderr_contains(&format!(": {path}: {nul} (line {line})\n"));
    }
    assert!(!t.exists("state.json"));
    // an include glob
    let t = Test::new()
        .config("state_file: {dir}/state.json\ninclude: [\"conf.d/*\\0.yml\"]\ntargets: []\n");
    t.run(&["test-config"]).assert_code(78).assert_stderr_contains(
        ": include[0]: \"conf.d/*\\0.yml\": holds a NUL byte (in YAML double quotes, \\0 is one), which no path can hold (the system stops reading at it) (line 2)",
    );
}
