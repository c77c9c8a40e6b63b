//! Config validation: good and bad cases, messages asserted with their field paths and lines.

use super::validate::Env;
use super::*;
use std::path::Path;
use std::time::Duration;

fn env_lookup(name: &str) -> Option<String> {
    match name {
        "API_TOKEN" => Some("tok-123456".into()),
        "HOME" => Some("/home/u".into()),
        _ => None,
    }
}

fn parse_as(file: &str, text: &str) -> Result<Loaded, String> {
    let env = Env {
        lookup: &env_lookup,
        is_root: false,
        config_dir: "/etc/nw".into(),
    };
    parse(Path::new(file), text, &env)
}

fn ok(text: &str) -> Config {
    match parse_as("c.yml", text) {
        Ok(l) => l.config,
        Err(e) => panic!("expected valid config, got:\n{e}"),
    }
}

#[track_caller]
fn err(text: &str) -> String {
    match parse_as("c.yml", text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

const MINIMAL: &str =
    "targets:\n  - name: web\n    checks:\n      - tcp_port: 127.0.0.1:80\n    action: none\n";

#[test]
fn minimal_config_gets_defaults() {
    let c = ok(MINIMAL);
    assert_eq!(c.interval, Duration::from_secs(30));
    assert_eq!(c.timeout, Duration::from_secs(5));
    assert_eq!(c.max_parallel, 128);
    assert_eq!(
        c.state_file,
        Path::new("/home/u/.local/state/neon-watchdog/state.json")
    );
    assert_eq!(
        c.lock_file,
        Path::new("/home/u/.local/state/neon-watchdog/state.json.lock")
    );
    assert_eq!(c.default_policy, Policy::default());
    let t = &c.targets[0];
    assert!(t.enabled);
    assert_eq!(t.checks[0].timeout, Duration::from_secs(5));
    assert!(matches!(&t.checks[0].check, Check::TcpPort { host, port: 80 } if host == "127.0.0.1"));
    assert!(matches!(t.action, Action::None));
}

#[test]
fn root_default_state_is_var_lib() {
    let env = Env {
        lookup: &env_lookup,
        is_root: true,
        config_dir: "/etc/nw".into(),
    };
    let c = parse(Path::new("c.yml"), MINIMAL, &env).unwrap().config;
    assert_eq!(c.state_file, Path::new("/var/lib/neon-watchdog/state.json"));
}

#[test]
fn full_example_parses() {
    let c = ok(r#"
interval_seconds: 10
timeout_seconds: 3
log_level: debug
state_file: state/state.json
max_parallel: 4
default_policy: {fail_threshold: 2, restart_cooldown_seconds: 0, max_restarts_per_hour: 5}
targets:
  - name: web
    checks:
      - process_name: nginx
        cmdline_contains: "-c /etc/nginx"
      - pid_file: /run/nginx.pid
      - tcp_port: "[::1]:8080"
      - command: ["/usr/bin/curl", "-fsS", "http://127.0.0.1/?token=${API_TOKEN}"]
        timeout_seconds: 2
        ok_exit_codes: [0, 22]
    policy: {fail_threshold: 3}
    action:
      exec:
        start: ["/usr/sbin/nginx"]
        restart: ["/usr/sbin/nginx", "-s", "reload"]
        timeout_seconds: 20
        env: {AUTH: "Bearer ${API_TOKEN}"}
        cwd: /
  - name: db
    enabled: false
    checks:
      - pid_file: /run/db.pid
        process_name: postgres
      - tcp_port: 5432
    action:
      systemd: {unit: postgresql.service, method: reload-or-restart}
"#);
    assert_eq!(c.interval, Duration::from_secs(10));
    assert_eq!(c.state_file, Path::new("/etc/nw/state/state.json"));
    assert_eq!(c.enabled_targets().count(), 1);
    let web = &c.targets[0];
    assert_eq!(web.policy.fail_threshold, 3);
    assert_eq!(
        web.policy.restart_cooldown,
        Duration::ZERO,
        "inherits default_policy"
    );
    assert_eq!(web.policy.max_restarts_per_hour, 5);
    assert_eq!(web.checks[0].timeout, Duration::from_secs(3));
    assert_eq!(web.checks[3].timeout, Duration::from_secs(2));
    match &web.checks[3].check {
        Check::Command {
            argv,
            ok_exit_codes,
            ..
        } => {
            assert_eq!(argv[2], "http://127.0.0.1/?token=tok-123456");
            assert_eq!(ok_exit_codes, &vec![0, 22]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&web.checks[2].check, Check::TcpPort { host, port: 8080 } if host == "::1"));
    let db = &c.targets[1];
    assert!(
        matches!(&db.checks[0].check, Check::PidFile { process_name: Some(n), .. } if n == "postgres")
    );
    assert!(matches!(
        &db.checks[1].check,
        Check::TcpPort { port: 5432, .. }
    ));
    match &db.action {
        Action::Systemd(s) => assert_eq!(s.method, SystemdMethod::ReloadOrRestart),
        other => panic!("{other:?}"),
    }
    // the expanded value is a secret for every output
    assert_eq!(c.redactor.redact("x tok-123456 y"), "x *** y");
}

#[test]
fn json_and_yaml_are_the_same_schema() {
    let json = r#"{"targets": [{"name": "web", "checks": [{"tcp_port": "127.0.0.1:80"}], "action": "none"}]}"#;
    let c = parse_as("c.json", json).unwrap().config;
    assert_eq!(c.targets[0].name, "web");
    // no extension: detected by content
    let c = parse_as("config", json).unwrap().config;
    assert_eq!(c.targets.len(), 1);
}

#[test]
fn empty_file_is_a_clear_error() {
    assert_eq!(
        err("\n# nothing here\n\n"),
        "c.yml: config is empty: it needs at least a `targets:` list (the README's Configuration section shows one)"
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let e = err("targets:\n  - name: web\n    checks: [\n");
    assert!(e.starts_with("c.yml: "), "{e}");
    assert!(e.contains("line "), "{e}");
    assert!(e.contains("column "), "{e}");
}

#[test]
fn typo_names_the_key_and_path() {
    let e = err("default_policy:\n  fail_treshold: 2\ntargets: []\n");
    assert_eq!(
        e,
        "c.yml: default_policy.fail_treshold: unknown field `fail_treshold`: did you mean `fail_threshold`? (line 2)"
    );
}

#[test]
fn wrong_type_names_the_path() {
    let e = err("interval_seconds: soon\ntargets: []\n");
    assert!(
        e.starts_with(
            "c.yml: interval_seconds: invalid type: string \"soon\", expected an integer"
        ),
        "{e}"
    );
    let e = parse_as(
        "c.json",
        r#"{"targets": [{"name": "w", "checks": {"tcp_port": 1}, "action": "none"}]}"#,
    )
    .unwrap_err();
    assert!(
        e.starts_with("c.json: targets[0].checks: invalid type: map, expected a list"),
        "{e}"
    );
}

#[test]
fn port_out_of_range_has_path_and_line() {
    let e = err("targets:\n  - name: web\n    checks:\n      - tcp_port: 127.0.0.1:70000\n    action: none\n");
    assert_eq!(
        e,
        "c.yml: targets[0].checks[0].tcp_port: port 70000 is out of range 1..65535 (line 4)"
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let e = err(r#"
interval_seconds: 0
max_parallel: -1
targets:
  - name: web
    checks: []
    action: none
  - name: web
    checks:
      - tcp_port: localhost
      - command: []
      - pid_file: run/x.pid
    action:
      exec: {}
  - checks:
      - process_name: /usr/sbin/nginx
"#);
    let lines: Vec<&str> = e.lines().collect();
    let expected = [
        "c.yml: interval_seconds: must be 1 or more, got 0 (line 2)",
        "c.yml: max_parallel: must be 1 or more, got -1 (line 3)",
        "c.yml: targets[0].checks: is empty: give at least one check (process_name, pid_file, tcp_port, command, http, tls_cert, docker, systemd_unit, file_fresh, disk_free, system) (line 6)",
        "c.yml: targets[1].name: \"web\" is already the name of targets[0]: names must be unique (line 8)",
        "c.yml: targets[1].checks[0].tcp_port: \"localhost\" has no port: write host:port, e.g. 127.0.0.1:8080 (line 10)",
        "c.yml: targets[1].checks[1].command: is an empty list: give the program and its arguments, e.g. [\"/usr/bin/curl\", \"-fsS\", \"http://127.0.0.1/\"] (line 11)",
        "c.yml: targets[1].checks[2].pid_file: \"run/x.pid\" is not an absolute path: start it with / (line 12)",
        "c.yml: targets[1].action.exec: needs `start:` or `restart:` (or both): the command that brings the target back (line 14)",
        "c.yml: targets[2].name: is missing: every target needs a unique name (line 15)",
        "c.yml: targets[2].checks[0].process_name: \"/usr/sbin/nginx\" is a path: process_name takes the program name (\"nginx\"); use pid_file to pin one process (line 16)",
        "c.yml: targets[2].action: is missing: give `exec:`, `systemd:` or `docker:` to recover, or `action: none` to only monitor (line 15)",
    ];
    assert_eq!(lines, expected, "\n{e}");
}

#[test]
fn check_kind_rules() {
    let base = |check: &str| {
        format!("targets:\n  - name: w\n    checks:\n      - {check}\n    action: none\n")
    };
    let e = err(&base("{tcp_port: 80, command: [/bin/true]}"));
    assert_eq!(
        e,
        "c.yml: targets[0].checks[0].command: a check has exactly one kind, this one has tcp_port and command: split it into one check per kind (line 4)"
    );
    let e = err(&base("{timeout_seconds: 3}"));
    assert!(e.contains("targets[0].checks[0]: has no check kind: give one of process_name, pid_file, tcp_port, command"), "{e}");
    let e = err(&base("{tcp_port: 80, cmdline_contains: x}"));
    assert!(
        e.contains(
            "targets[0].checks[0].cmdline_contains: is a modifier of process_name checks only"
        ),
        "{e}"
    );
    let e = err(&base("{process_name: x, ok_exit_codes: [0]}"));
    assert!(
        e.contains("ok_exit_codes: is a modifier of command checks only"),
        "{e}"
    );
    let e = err(&base("{command: [/bin/true], ok_exit_codes: [300]}"));
    assert!(
        e.contains("targets[0].checks[0].ok_exit_codes[0]: 300 is not an exit code (0..255)"),
        "{e}"
    );
    let e = err(&base("{tcp_port: 80, timeout_seconds: 0}"));
    assert!(
        e.contains("targets[0].checks[0].timeout_seconds: must be 1 or more, got 0"),
        "{e}"
    );
    let e = err(&base("{tcp_port: \"::1:80\"}"));
    assert!(
        e.contains("looks like IPv6 without brackets: write [::1]:PORT"),
        "{e}"
    );
    let e = err(&base("{tcp_port: 0}"));
    assert!(e.contains("port 0 is out of range 1..65535"), "{e}");
    let e = err(&base("{nope: 1}"));
    assert!(
        e.contains("targets[0].checks[0].nope: unknown field `nope`"),
        "{e}"
    );
}

#[test]
fn policy_ranges() {
    let e = err(&format!("default_policy: {{fail_threshold: 0, restart_cooldown_seconds: -1, max_restarts_per_hour: 0}}\n{MINIMAL}"));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "c.yml: default_policy.fail_threshold: must be 1 or more, got 0 (line 1)",
            "c.yml: default_policy.restart_cooldown_seconds: must be 0 or more (0 means none), got -1 (line 1)",
            "c.yml: default_policy.max_restarts_per_hour: must be 1 or more, got 0 (line 1)",
        ]
    );
}

#[test]
fn action_rules() {
    let base = |action: &str| {
        format!("targets:\n  - name: w\n    checks:\n      - tcp_port: 80\n    action: {action}\n")
    };
    let e = err(&base("restart"));
    assert!(e.contains("targets[0].action: invalid value: string \"restart\", expected `none` or a map with `exec`, `systemd` or `docker`"), "{e}");
    let e = err(&base("{}"));
    assert!(e.contains("targets[0].action: is empty"), "{e}");
    let e = err(&base(
        "{exec: {start: [/bin/true]}, systemd: {unit: x.service}}",
    ));
    assert!(e.contains("has exec and systemd: choose one"), "{e}");
    let e = err(&base("{systemd: {method: restart}}"));
    assert!(
        e.contains("targets[0].action.systemd.unit: is missing"),
        "{e}"
    );
    let e = err(&base("{systemd: {unit: x.service, method: bounce}}"));
    assert!(
        e.contains("\"bounce\" is not a method: use restart, start or reload-or-restart"),
        "{e}"
    );
    let e = err(&base("{exec: {start: [/bin/true], cwd: tmp}}"));
    assert!(
        e.contains("targets[0].action.exec.cwd: \"tmp\" is not an absolute path"),
        "{e}"
    );
    let e = err(&base("{exec: {start: [/bin/true], log_file: /tmp/x.log}}"));
    assert!(
        e.contains("log_file: only applies with `detach: true`"),
        "{e}"
    );
    let e = err(&base("{exec: {start: [\"\"]}}"));
    assert!(
        e.contains("targets[0].action.exec.start[0]: the program is an empty string"),
        "{e}"
    );
}

#[test]
fn undefined_variable_is_an_error_with_path() {
    let e = err("targets:\n  - name: w\n    checks:\n      - command: [/bin/echo, \"${NOPE}\"]\n    action: none\n");
    assert!(
        e.starts_with(
            "c.yml: targets[0].checks[0].command[1]: environment variable NOPE is not set"
        ),
        "{e}"
    );
}

#[test]
fn warnings_for_relative_or_missing_programs() {
    let l = parse_as(
        "c.yml",
        "targets:\n  - name: w\n    checks:\n      - tcp_port: 80\n    action:\n      exec:\n        start: [nginx]\n        restart: [/nonexistent/bin/x]\n",
    )
    .unwrap();
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(
        l.warnings[0].starts_with(
            "c.yml: targets[0].action.exec.start[0]: \"nginx\" is not an absolute path"
        ),
        "{}",
        l.warnings[0]
    );
    assert!(
        l.warnings[1]
            .contains("\"/nonexistent/bin/x\" cannot be found (no such file or directory)"),
        "{}",
        l.warnings[1]
    );
}

/// A program is looked at once however many commands name it (1,000 targets of `/bin/true`
/// cost one stat), and each of them still gets its warning, at its own path.
#[test]
fn a_program_named_twice_is_warned_about_twice() {
    let l = parse_as(
        "c.yml",
        "targets:\n  - name: a\n    checks:\n      - command: [/nonexistent/bin/x]\n    action: none\n  - name: b\n    checks:\n      - command: [/nonexistent/bin/x, -v]\n    action: none\n",
    )
    .unwrap();
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    for (i, w) in l.warnings.iter().enumerate() {
        assert!(
            w.starts_with(&format!(
                "c.yml: targets[{i}].checks[0].command[0]: \"/nonexistent/bin/x\" cannot be found"
            )),
            "{w}"
        );
    }
}

#[test]
fn check_programs_are_found_or_warned_about_and_relative_ones_sit_beside_the_config() {
    let l = parse_as(
        "/etc/nw/c.yml",
        "targets:\n  - name: w\n    checks:\n      - command: [/usr/bin/crul, -fsS, http://x/]\n      - command: [crul-nowhere-1234]\n      - command: [./probe.sh]\n      - command: [sh, -c, 'true']\n    action: none\n",
    )
    .unwrap();
    let w = l.warnings.join("\n");
    assert!(
        w.contains("checks[0].command[0]: \"/usr/bin/crul\" cannot be found"),
        "{w}"
    );
    assert!(
        w.contains("checks[1].command[0]: \"crul-nowhere-1234\" is not an absolute path and is not in PATH"),
        "{w}"
    );
    assert!(
        w.contains("checks[2].command[0]: \"/etc/nw/probe.sh\" cannot be found"),
        "{w}"
    );
    assert!(w.contains("prefer the full path (/"), "{w}");
    match &l.config.targets[0].checks[2].check {
        Check::Command { argv, .. } => assert_eq!(argv[0], "/etc/nw/probe.sh"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stop_runs_before_start_and_needs_one() {
    let e = err("targets:\n  - name: w\n    checks: [{tcp_port: 80}]\n    action:\n      exec:\n        stop: [/bin/true]\n        restart: [/bin/true]\n");
    assert!(
        e.contains("targets[0].action.exec.stop: runs before `start:`, and there is no `start:`"),
        "{e}"
    );
    let l = parse_as(
        "c.yml",
        "targets:\n  - name: w\n    checks: [{tcp_port: 80}]\n    action:\n      exec:\n        stop: [/bin/true]\n        start: [/bin/true]\n",
    )
    .unwrap();
    match &l.config.targets[0].action {
        Action::Exec(e) => assert_eq!(e.stop.as_deref(), Some(&["/bin/true".to_string()][..])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_or_empty_targets() {
    assert_eq!(
        err("interval_seconds: 5\n"),
        "c.yml: targets: is missing: list at least one target to watch"
    );
    assert_eq!(
        err("targets: []\n"),
        "c.yml: targets: is empty: list at least one target to watch (line 1)"
    );
}

#[test]
fn top_level_must_be_a_map() {
    let e = err("- just\n- a list\n");
    assert!(e.contains("expected a map of settings"), "{e}");
}

#[test]
fn garbage_never_panics() {
    for text in [
        "\0\0\0",
        "targets: [[[[",
        "targets:\n  - 5\n",
        "{\"targets\": 5}",
        "targets:\n  - name: [1]\n",
        ": : :",
        "targets:\n  - name: w\n    checks:\n      - tcp_port: [1]\n",
        "targets:\n  - name: w\n    checks:\n      - tcp_port: -5\n    action: none\n",
        "targets:\n  - name: w\n    checks:\n      - tcp_port: 99999999999999999999\n    action: none\n",
        "interval_seconds: 99999999999999999999999\n",
        "interval_seconds: 9223372036854775807\ntargets:\n  - name: w\n    checks:\n      - tcp_port: 1\n    action: none\n",
    ] {
        assert!(parse_as("c.yml", text).is_err(), "{text:?} should be invalid");
    }
}

#[test]
fn lock_file_cannot_be_the_state_file() {
    let e = err(&format!(
        "state_file: /tmp/s.json\nlock_file: /tmp/s.json\n{MINIMAL}"
    ));
    assert_eq!(
        e,
        "c.yml: lock_file: is the state file: the lock needs a file of its own (default: state_file + \".lock\") (line 2)"
    );
}

#[test]
fn errors_never_show_expanded_values() {
    let e = err("targets:\n  - name: w\n    checks:\n      - tcp_port: \"${API_TOKEN}\"\n    action: none\n");
    assert!(!e.contains("tok-123456"), "{e}");
    assert!(e.contains("\"***\" has no port"), "{e}");
}

#[test]
fn short_expanded_values_are_warned_about() {
    let env = Env {
        lookup: &|n: &str| (n == "N").then(|| "1".to_string()),
        is_root: false,
        config_dir: "/etc/nw".into(),
    };
    let l = parse(
        Path::new("c.yml"),
        "targets:\n  - name: w\n    checks:\n      - command: [/bin/sleep, \"${N}\"]\n    action: none\n",
        &env,
    )
    .unwrap();
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(
        l.warnings[0],
        "c.yml: targets[0].checks[0].command[1]: a ${NAME} value here is shorter than 4 characters: too short to be a secret, it is not masked in logs (line 4)"
    );
    assert_eq!(l.config.redactor.redact("sleep 1"), "sleep 1");
}

#[test]
fn escalation_policy_keys_default_to_off_and_merge_per_key() {
    let c = ok(MINIMAL);
    let p = c.default_policy;
    assert_eq!(p.restart_grace, Duration::ZERO);
    assert_eq!(p.backoff_initial, Duration::ZERO);
    assert_eq!(p.backoff_multiplier, 2.0);
    assert_eq!(p.backoff_max, Duration::ZERO);
    assert_eq!(p.give_up_after_restarts, 0);
    assert!(c.reminder_every.is_none());
    assert!(c.targets[0].on_give_up.is_none());
    let c = ok("default_policy:\n  restart_grace_seconds: 20\n  backoff_initial_seconds: 10\n  backoff_multiplier: 3\n  backoff_max_seconds: 600\n  give_up_after_restarts: 5\nreminder_every_seconds: 3600\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    policy: {give_up_after_restarts: 2}\n    action: {exec: {restart: [/bin/true]}}\n    on_give_up: {exec: [/bin/echo, gave up]}\n");
    let p = c.targets[0].policy;
    assert_eq!(p.give_up_after_restarts, 2);
    assert_eq!(p.restart_grace, Duration::from_secs(20), "inherited");
    assert_eq!(p.backoff_multiplier, 3.0);
    assert_eq!(p.backoff_max, Duration::from_secs(600));
    assert_eq!(c.reminder_every, Some(Duration::from_secs(3600)));
    let g = c.targets[0].on_give_up.as_ref().unwrap();
    assert_eq!(g.argv, vec!["/bin/echo", "gave up"]);
    assert_eq!(g.timeout, Duration::from_secs(30));
}

#[test]
fn escalation_policy_errors_have_paths() {
    let e = err("default_policy:\n  backoff_multiplier: 0.5\n  give_up_after_restarts: -1\n  restart_grace_seconds: -3\n  backoff_initial_seconds: 60\n  backoff_max_seconds: 30\nreminder_every_seconds: 0\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: none\n    on_give_up: {timeout_seconds: 5}\n");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        vec![
            "c.yml: reminder_every_seconds: must be 1 or more, got 0 (line 7)",
            "c.yml: default_policy.restart_grace_seconds: must be 0 or more (0 means none), got -3 (line 4)",
            "c.yml: default_policy.backoff_multiplier: must be between 1 and 100 (1: a constant wait, 2: doubling), got 0.5 (line 2)",
            "c.yml: default_policy.give_up_after_restarts: must be 0 or more (0 means never give up), got -1 (line 3)",
            "c.yml: default_policy.backoff_max_seconds: 30s is less than backoff_initial_seconds (60s): the cap must be at least the first wait (line 6)",
            "c.yml: targets[0].on_give_up.exec: is missing: give the command to run once when the target gives up, e.g. [\"/usr/local/bin/page-oncall\"] (line 12)",
        ]
    );
}

#[test]
fn on_give_up_without_give_up_is_a_warning() {
    let l = parse_as("c.yml", "targets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: none\n    on_give_up: {exec: [/bin/true]}\n").unwrap();
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("targets[0].on_give_up: never runs")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn notify_heartbeat_and_metrics_are_validated_with_paths() {
    let e = err("notify:\n  - webhook: {url: \"ftp://x/y\", format: teams, retries: 20}\n    events: [down, donw]\n  - exec: []\n  - {}\n  - webhook: {url: \"https://h/x\"}\n    exec: [/bin/true]\nheartbeat: {}\nmetrics: {listen: \"localhost\"}\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: none\n");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        vec![
            "c.yml: notify[0].events[1]: \"donw\" is not an event: use down, recovered, gave_up, restart, restart_failed, rate_limited (line 3)",
            "c.yml: notify[0].webhook.url: \"ftp://x\" is not an http:// or https:// URL (line 2)",
            "c.yml: notify[0].webhook.format: \"teams\" is not a format: use json, slack or discord (line 2)",
            "c.yml: notify[0].webhook.retries: must be 0..10 (attempts after the first, inside one pass), got 20 (line 2)",
            "c.yml: notify[1].exec: is an empty list: give the program and its arguments, e.g. [\"/usr/bin/curl\", \"-fsS\", \"http://127.0.0.1/\"] (line 4)",
            "c.yml: notify[2]: needs `webhook:` or `exec:` (line 5)",
            "c.yml: notify[3]: has both webhook and exec: one notifier each (line 6)",
            "c.yml: heartbeat.url: is missing: give the URL, e.g. https://hc-ping.com/${HC_UUID} (line 8)",
            "c.yml: metrics.listen: \"localhost\" is not an address: write IP:PORT, e.g. 127.0.0.1:9798 (line 9)",
        ]
    );
}

#[test]
fn notify_defaults_and_secret_headers() {
    let c = ok("notify:\n  - webhook:\n      url: https://hooks.example.com/services/x\n      headers: {Authorization: \"Bearer ${API_TOKEN}\", X-Api-Key: literal-key-value, X-Env: prod}\nheartbeat: {url: \"https://hc-ping.com/abc/\"}\nmetrics: {textfile: m.prom, listen: \"127.0.0.1:9798\"}\ntargets:\n  - name: web\n    checks: [{tcp_port: 80}]\n    action: none\n");
    let n = &c.notify[0];
    assert_eq!(n.name, "notify[0] webhook https://hooks.example.com");
    assert_eq!(n.events, crate::policy::EventKind::DEFAULT.to_vec());
    let crate::config::NotifierKind::Webhook(w) = &n.kind else {
        panic!("webhook")
    };
    assert_eq!((w.timeout, w.retries), (Duration::from_secs(5), 3));
    let shown = c
        .redactor
        .redact("Bearer tok-123456 literal-key-value prod");
    assert_eq!(shown, "*** *** prod");
    let hb = c.heartbeat.as_ref().unwrap();
    assert_eq!(hb.url, "https://hc-ping.com/abc");
    assert!(!hb.send_start);
    assert_eq!(
        c.metrics.textfile.as_deref(),
        Some(Path::new("/etc/nw/m.prom"))
    );
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9798".parse().unwrap()));
}

#[test]
fn new_check_kinds_are_validated_with_paths() {
    let e = err(r#"targets:
  - name: web
    checks:
      - http: "ftp://x/"
      - {http: "http://h/", method: PUT, expect_status: [99], ip_version: 5, resolve: nohost}
      - {http: "http://h/", tls_verify: false, ca_file: /etc/ca.pem}
      - {tcp_port: 80, max_rss_mb: 10}
      - {process_name: java, cmdline_regex: "(", user: no-such-user-here, max_cpu_percent: 0}
      - {file_fresh: /var/run/x}
      - {disk_free: /var, min_free_percent: 100}
      - {system: {}}
      - {docker: "a b"}
      - {systemd_unit: "-x"}
      - {process_name: x, pid_file: /run/x.pid, cmdline_contains: y}
    action: none
"#);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        vec![
            "c.yml: targets[0].checks[0].http: \"ftp://x\" is not an http:// or https:// URL (line 4)",
            "c.yml: targets[0].checks[1].method: \"PUT\" is not a method: use GET, HEAD or POST (line 5)",
            "c.yml: targets[0].checks[1].expect_status[0]: 99 is not an HTTP status (100..599) (line 5)",
            "c.yml: targets[0].checks[1].resolve: \"nohost\" is not an IP address: resolve takes the address to connect to, e.g. 127.0.0.1 (line 5)",
            "c.yml: targets[0].checks[1].ip_version: must be 4 or 6, got 5 (line 5)",
            "c.yml: targets[0].checks[2].ca_file: is set with tls_verify: false: choose one (ca_file verifies against that CA) (line 6)",
            "c.yml: targets[0].checks[3].max_rss_mb: is a modifier of process_name and pid_file checks only (line 7)",
            "c.yml: targets[0].checks[4].cmdline_regex: \"(\" is not a valid regex: error: unclosed group (line 8)",
            "c.yml: targets[0].checks[4].user: no user named \"no-such-user-here\" on this machine: give an existing user name or a numeric uid (line 8)",
            "c.yml: targets[0].checks[4].max_cpu_percent: must be more than 0 and at most 100000 (percent of one core: 100 is one busy core), got 0 (line 8)",
            "c.yml: targets[0].checks[5].max_age_seconds: is missing: say how old the file may get, e.g. max_age_seconds: 300 (line 9)",
            "c.yml: targets[0].checks[6].min_free_percent: must be more than 0 and less than 100, got 100 (line 10)",
            "c.yml: targets[0].checks[7].system: is empty: give max_load_per_core and/or max_memory_used_percent, e.g. {max_load_per_core: 4.0} (line 11)",
            "c.yml: targets[0].checks[8].docker: \"a b\" is not a container name or id, e.g. my-container (line 12)",
            "c.yml: targets[0].checks[9].systemd_unit: \"-x\" is not a unit name, e.g. nginx.service (line 13)",
            "c.yml: targets[0].checks[10].cmdline_contains: is a modifier of process_name checks only (here process_name guards a pid_file) (line 14)",
        ]
    );
}

/// The wording that lists the check kinds and the order of check errors, pinned whole: the kinds
/// and their modifiers come from one table, and these must not move when it changes.
#[test]
fn check_kind_lists_and_error_order() {
    let base = |check: &str| {
        format!("targets:\n  - name: w\n    checks:\n      - {check}\n    action: none\n")
    };
    assert_eq!(
        err(&base("tcp")),
        "c.yml: targets[0].checks[0]: invalid type: string \"tcp\", expected a check map (one of process_name, pid_file, tcp_port, command, http, tls_cert, docker, systemd_unit, file_fresh, disk_free, system) (line 4, column 9)"
    );
    assert_eq!(
        err(&base("{timeout_seconds: 3}")),
        "c.yml: targets[0].checks[0]: has no check kind: give one of process_name, pid_file, tcp_port, command, http, tls_cert, docker, systemd_unit, file_fresh, disk_free, system (line 4)"
    );
    // the first kind after the first one is blamed, kinds named in table order (not map order)
    assert_eq!(
        err(&base("{system: {}, http: \"http://x/\", tcp_port: 80}")),
        "c.yml: targets[0].checks[0].http: a check has exactly one kind, this one has tcp_port and http and system: split it into one check per kind (line 4)"
    );
    // every misplaced modifier is reported, in table order (not map order)
    let e = err(&base(
        "{tcp_port: 80, min_free_mb: 1, headers: {}, cmdline_contains: x, max_children: 1}",
    ));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "c.yml: targets[0].checks[0].cmdline_contains: is a modifier of process_name checks only (line 4)",
            "c.yml: targets[0].checks[0].max_children: is a modifier of process_name and pid_file checks only (line 4)",
            "c.yml: targets[0].checks[0].headers: is a modifier of http checks only (line 4)",
            "c.yml: targets[0].checks[0].min_free_mb: is a modifier of disk_free checks only (line 4)",
        ],
        "\n{e}"
    );
}

#[test]
fn new_check_kinds_get_their_defaults() {
    let c = ok(r#"docker_socket: /run/docker.sock
systemctl_path: /bin/systemctl
targets:
  - name: web
    checks:
      - http: http://127.0.0.1:8080/healthz
      - {docker: app}
      - {systemd_unit: nginx.service}
      - {process_name: java, user: 0, max_rss_mb: 2048, max_children: 200}
    action:
      docker: {container: app}
"#);
    let checks = &c.targets[0].checks;
    let Check::Http(h) = &checks[0].check else {
        panic!("http")
    };
    assert_eq!(h.method, crate::http_client::Method::Get);
    assert!(h.expect_status.is_empty() && h.tls_verify && h.max_body_bytes == 65536);
    assert!(
        matches!(&checks[1].check, Check::Docker { socket, .. } if socket == Path::new("/run/docker.sock"))
    );
    assert!(
        matches!(&checks[2].check, Check::SystemdUnit { systemctl, .. } if systemctl == "/bin/systemctl")
    );
    let Check::ProcessName { user, limits, .. } = &checks[3].check else {
        panic!("process")
    };
    assert_eq!(*user, Some(0));
    assert_eq!(limits.max_rss_mb, Some(2048));
    assert_eq!(limits.max_children, Some(200));
    let Action::Docker(d) = &c.targets[0].action else {
        panic!("docker action")
    };
    assert_eq!((d.stop_timeout, d.timeout.as_secs()), (10, 60));
    assert_eq!(d.method, DockerMethod::Restart);
}

#[test]
fn malformed_urls_are_refused_without_quoting_their_path() {
    let e = err("notify:\n  - webhook: {url: \"http://h/SEC RET\"}\nheartbeat: {url: \"http://h:99999/x\"}\ntargets:\n  - name: web\n    checks: [{http: \"http://ho st/x\"}]\n    action: none\n");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].starts_with("c.yml: notify[0].webhook.url: is not a valid URL ("),
        "{e}"
    );
    assert_eq!(
        lines[1],
        "c.yml: heartbeat.url: port 99999 is out of range 1..65535 (line 3)"
    );
    assert!(
        lines[2].starts_with("c.yml: targets[0].checks[0].http: is not a valid URL"),
        "{e}"
    );
    assert!(!e.contains("SEC RET"), "{e}");
}

#[test]
fn tls_cert_checks_get_defaults_and_labels() {
    let c = ok(r#"targets:
  - name: web
    checks:
      - tls_cert: svc.example.com:443
      - {tls_cert: "127.0.0.1:8443", server_name: svc.example.com, min_days_left: 0, ca_file: /etc/ssl/ca.pem}
      - {tls_cert: "[::1]:8443"}
      - {tls_cert: "10.0.0.1:443", server_name: "[fd00::1]", min_days_left: 3650}
    action: none
"#);
    let r = &c.redactor;
    let checks = &c.targets[0].checks;
    let tls = |i: usize| match &checks[i].check {
        Check::TlsCert(t) => t.clone(),
        other => panic!("not a tls_cert check: {other:?}"),
    };
    let t = tls(0);
    assert_eq!((t.host.as_str(), t.port), ("svc.example.com", 443));
    assert_eq!(t.server_name, "svc.example.com");
    assert_eq!(t.min_days_left, 14);
    assert_eq!(t.ca_file, None);
    assert_eq!(checks[0].label(r), "tls_cert svc.example.com:443");
    assert!(checks[0].check.waits());
    let t = tls(1);
    assert_eq!(t.server_name, "svc.example.com");
    assert_eq!(t.min_days_left, 0);
    assert_eq!(t.ca_file.as_deref(), Some(Path::new("/etc/ssl/ca.pem")));
    assert_eq!(
        checks[1].label(r),
        "tls_cert 127.0.0.1:8443 (name svc.example.com)"
    );
    assert_eq!(tls(2).server_name, "::1");
    assert_eq!(checks[2].label(r), "tls_cert [::1]:8443");
    assert_eq!(tls(3).server_name, "fd00::1");
    assert_eq!(tls(3).min_days_left, 3650);
}

#[test]
fn tls_cert_errors_name_the_field_and_line() {
    let e = err(r#"targets:
  - name: web
    checks:
      - tls_cert: "443"
      - {tls_cert: "svc.example.com:99999"}
      - {tls_cert: svc.example.com}
      - {tls_cert: "svc.example.com:443", min_days_left: 3651}
      - {tls_cert: "svc.example.com:443", min_days_left: -1}
      - {tls_cert: "127.0.0.1:443", server_name: "bad name!"}
      - {tls_cert: "bad host!:443"}
      - {tcp_port: "127.0.0.1:443", server_name: svc.example.com, min_days_left: 3}
      - {tcp_port: "127.0.0.1:443", ca_file: /etc/ca.pem}
      - {tls_cert: "svc.example.com:443", ca_file: ca.pem, max_body_bytes: 10}
    action: none
"#);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        vec![
            "c.yml: targets[0].checks[0].tls_cert: \"443\" has no host: write host:port, e.g. svc.example.com:443 (the host is also the name the certificate must be for) (line 4)",
            "c.yml: targets[0].checks[1].tls_cert: port 99999 is out of range 1..65535 (line 5)",
            "c.yml: targets[0].checks[2].tls_cert: \"svc.example.com\" has no port: write host:port, e.g. svc.example.com:443 (line 6)",
            "c.yml: targets[0].checks[3].min_days_left: 3651 is out of range 0..3650: give the days a certificate must still be valid, e.g. 14 (0: fail only when expired) (line 7)",
            "c.yml: targets[0].checks[4].min_days_left: -1 is out of range 0..3650: give the days a certificate must still be valid, e.g. 14 (0: fail only when expired) (line 8)",
            "c.yml: targets[0].checks[5].server_name: \"bad name!\" is not a DNS name or an IP address: give the name the certificate must be for (it is also sent as SNI), e.g. svc.example.com (line 9)",
            "c.yml: targets[0].checks[6].tls_cert: the host \"bad host!\" is not a DNS name or an IP address a certificate can be for: give server_name, e.g. server_name: svc.example.com (line 10)",
            "c.yml: targets[0].checks[7].min_days_left: is a modifier of tls_cert checks only (line 11)",
            "c.yml: targets[0].checks[7].server_name: is a modifier of tls_cert checks only (line 11)",
            "c.yml: targets[0].checks[8].ca_file: is a modifier of http and tls_cert checks only (line 12)",
            "c.yml: targets[0].checks[9].max_body_bytes: is a modifier of http checks only (line 13)",
        ]
    );
}

/// As root, a ca_file others could change is a warning: whoever writes it chooses which
/// certificates pass. Not an error: the file holds no command.
#[test]
fn tls_cert_ca_file_others_can_write_is_warned_as_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "x").expect("write");
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let env = Env {
        lookup: &env_lookup,
        is_root: true,
        config_dir: "/etc/nw".into(),
    };
    let text = format!(
        "targets:\n  - name: web\n    checks:\n      - {{tls_cert: \"h.example:443\", ca_file: {}}}\n    action: none\n",
        ca.display()
    );
    let loaded = match parse(Path::new("c.yml"), &text, &env) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let shown = ca.display();
    let expected = if nix::unistd::geteuid().is_root() {
        format!("{shown} is writable by others than root (mode 0666)")
    } else {
        format!(
            "{shown} is owned by uid {}, not root",
            nix::unistd::geteuid()
        )
    };
    assert!(
        loaded.warnings.iter().any(|w| w.contains(&expected)
            && w.contains("targets[0].checks[0].ca_file")
            && w.contains("whoever can change it chooses which certificates the check trusts")),
        "{:?}",
        loaded.warnings
    );
    let missing = text.replace(&ca.display().to_string(), "/nonexistent/ca.pem");
    let loaded = match parse(Path::new("c.yml"), &missing, &env) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    assert!(
        loaded.warnings.iter().any(|w| w.contains(
            "ca_file: /nonexistent/ca.pem cannot be read (no such file or directory): the check cannot be carried out (unknown: nothing counted, no action) until it can"
        )),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn user_means_whose_processes_on_a_process_check_and_who_runs_on_a_command() {
    let c = ok("targets:
  - name: a
    checks:
      - process_name: nginx
        user: 0
      - command: [/bin/true]
        user: root
        group: 0
    action:
      exec:
        start: [/bin/true]
        user: \"0\"
    on_give_up:
      exec: [/bin/true]
      group: root
");
    let t = &c.targets[0];
    assert!(matches!(
        &t.checks[0].check,
        Check::ProcessName { user: Some(0), .. }
    ));
    let Check::Command {
        run_as: Some(r), ..
    } = &t.checks[1].check
    else {
        panic!("{:?}", t.checks[1].check)
    };
    assert_eq!(
        (r.uid(), r.gid, r.shown().as_str()),
        (Some(0), 0, "root:root")
    );
    let Action::Exec(e) = &t.action else {
        panic!("{:?}", t.action)
    };
    assert_eq!(
        e.run_as.as_ref().map(|r| r.shown()).as_deref(),
        Some("root")
    );
    let g = t.on_give_up.as_ref().and_then(|g| g.run_as.as_ref());
    assert_eq!(
        g.map(|r| (r.uid(), r.shown())),
        Some((None, ":root".into()))
    );
    // group: is a command's only, and an unknown account is an error with its line
    let e = err("targets:
  - name: a
    checks:
      - process_name: nginx
        group: root
      - command: [/bin/true]
        user: no-such-user-nw
    action: none
");
    assert!(
        e.contains("targets[0].checks[0].group: is a modifier of command checks only (line 5)"),
        "{e}"
    );
    assert!(
        e.contains("targets[0].checks[1].user: no user named \"no-such-user-nw\" on this machine"),
        "{e}"
    );
}

#[test]
fn log_checks_takes_all_or_changes_and_names_the_word_meant() {
    assert_eq!(ok(MINIMAL).log_checks, LogChecks::All);
    let c = ok(&format!("log_checks: changes\n{MINIMAL}"));
    assert_eq!(c.log_checks, LogChecks::Changes);
    assert_eq!(
        ok(&format!("log_checks: all\n{MINIMAL}")).log_checks,
        LogChecks::All
    );
    assert_eq!(
        err(&format!("interval_seconds: 30\nlog_checks: change\n{MINIMAL}")),
        "c.yml: log_checks: \"change\" is not a log_checks value (did you mean \"changes\"?): use all or changes (line 2)"
    );
    assert_eq!(
        err(&format!("log_checks: quiet\n{MINIMAL}")),
        "c.yml: log_checks: \"quiet\" is not a log_checks value: use all or changes (line 1)"
    );
}
