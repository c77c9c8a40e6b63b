//! `depends_on`: a target whose dependency is down is checked and reported, but its action
//! is held (`reason=dependency_down dependency=db`) until the dependency is back. The database
//! is a real listening socket on 127.0.0.1, there or not.

use crate::harness::*;
use std::net::TcpListener;

/// `db` (a TCP port, whose own action counts its runs in `db-runs`) and `web` (always failing,
/// depending on `extra_deps` and counting its restarts in `runs`); `more` adds targets.
fn config(port: u16, web_deps: &str, more: &str) -> String {
    format!(
        r#"
state_file: {{dir}}/state.json
notify:
  - exec: ["/bin/sh", "-c", "cat >> {{dir}}/events.jsonl; echo >> {{dir}}/events.jsonl"]
    events: [down]
targets:
  - name: db
    checks:
      - tcp_port: 127.0.0.1:{port}
    policy: {{fail_threshold: 1, restart_cooldown_seconds: 0}}
    action:
      exec:
        start: ["/bin/sh", "-c", "echo db >> {{dir}}/db-runs"]
  - name: web
    depends_on: {web_deps}
    checks:
      - command: ["/bin/false"]
    policy: {{fail_threshold: 1, restart_cooldown_seconds: 0}}
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {{dir}}/runs"]
{more}"#
    )
}

#[test]
fn a_dependency_down_holds_the_action_until_it_is_back() {
    let port = free_port();
    let t = Test::new().config(&config(port, "[db]", ""));

    // the database is down: it is acted on, the web app is checked and reported, not restarted
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["target=web ", "result=FAIL"], "command")
        .assert_line_contains(
            &["target=web ", "action held"],
            "reason=dependency_down dependency=db",
        )
        .assert_stderr_not_contains("target failing; running action\" target=web");
    assert_eq!(t.count_lines("runs"), 0, "web restarted while db was down");
    assert_eq!(t.count_lines("db-runs"), 1, "db itself is still recovered");
    assert_eq!(t.state()["targets"]["web"]["status"], "failed");

    // the `down` event of the dependent says its dependency is down
    let events = t.read("events.jsonl");
    let web_down = events
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("event JSON"))
        .find(|e| e["target"] == "web")
        .unwrap_or_else(|| panic!("no down event for web:\n{events}"));
    assert_eq!(web_down["event"], "down");
    assert_eq!(web_down["dependency_down"], "db");

    // status shows it
    let st = t.run(&["status", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    let web = &j["targets"][1];
    assert_eq!(web["name"], "web");
    assert_eq!(web["depends_on"], serde_json::json!(["db"]));
    assert_eq!(web["dependency_down"], "db");
    t.run(&["status"])
        .assert_stdout_contains("failed (held: db down)");

    // still down on the next pass: still held
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 0);

    // the database is back: web is judged as usual, and acts
    let _db = TcpListener::bind(("127.0.0.1", port)).expect("bind db port");
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["target=db ", "result=OK"], "tcp_port")
        .assert_line_contains(&["msg=\"action done\"", "target=web "], "exit=0")
        .assert_stderr_not_contains("dependency_down");
    assert_eq!(t.count_lines("runs"), 1, "web acts once db is back");
    let st = t.run(&["status", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    assert!(j["targets"][1]["dependency_down"].is_null(), "{j}");
}

#[test]
fn dependencies_of_dependencies_hold_too_and_the_root_cause_is_named() {
    let port = free_port();
    let cache = r#"  - name: cache
    depends_on: [db]
    checks:
      - command: ["/bin/true"]
    action: none
"#;
    let t = Test::new().config(&config(port, "[cache]", cache));
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["target=cache ", "result=OK"], "command")
        .assert_line_contains(
            &["target=web ", "action held"],
            "reason=dependency_down dependency=db",
        );
    assert_eq!(t.count_lines("runs"), 0);
}

#[test]
fn a_disabled_dependency_counts_as_healthy() {
    let port = free_port();
    let t = Test::new().config(&config(port, "[db]", "").replacen(
        "  - name: db\n",
        "  - name: db\n    enabled: false\n",
        1,
    ));
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"action done\"", "target=web "], "exit=0");
    assert_eq!(t.count_lines("runs"), 1);
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains("depends on: db (disabled: counts as healthy)");
}

#[test]
fn a_failing_dependent_of_a_healthy_dependency_acts_as_usual() {
    let port = free_port();
    let _db = TcpListener::bind(("127.0.0.1", port)).expect("bind db port");
    let t = Test::new().config(&config(port, "[db]", ""));
    t.run(&["check"])
        .assert_code(2)
        .assert_stderr_not_contains("dependency_down");
    assert_eq!(t.count_lines("runs"), 1);
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains("depends on: db (while one is down, this target's action is held)");
}

fn config_error(targets: &str) -> Output {
    let t = Test::new().config(&format!(
        "state_file: {{dir}}/state.json\ntargets:\n{targets}"
    ));
    let out = t.run(&["test-config"]);
    out.assert_code(78);
    out
}

const T: &str = "    checks: [{command: [\"/bin/true\"]}]\n    action: none\n";

#[test]
fn unknown_self_and_cyclic_dependencies_are_config_errors_with_paths_and_lines() {
    // an unknown name, with the one probably meant
    let out = config_error(&format!(
        "  - name: database\n{T}  - name: web\n    depends_on: [databse]\n{T}"
    ));
    out.assert_stderr_contains(
        "targets[1].depends_on[0]: \"databse\" is not the name of a target (did you mean \"database\"?) (line 7)",
    );

    // itself
    let out = config_error(&format!("  - name: web\n    depends_on: [web]\n{T}"));
    out.assert_stderr_contains(
        "targets[0].depends_on[0]: \"web\" is this target itself: a target cannot depend on itself",
    );

    // a cycle through three targets, named in order
    let out = config_error(&format!(
        "  - name: a\n    depends_on: [b]\n{T}  - name: b\n    depends_on: [c]\n{T}  - name: c\n    depends_on: [a]\n{T}"
    ));
    out.assert_stderr_contains("makes a dependency cycle: a -> b -> c -> a");
    assert_eq!(
        out.stderr.matches("dependency cycle").count(),
        1,
        "one cycle, told once:\n{}",
        out.stderr
    );

    // the same name twice
    let out = config_error(&format!(
        "  - name: db\n{T}  - name: web\n    depends_on: [db, db]\n{T}"
    ));
    out.assert_stderr_contains("targets[1].depends_on[1]: \"db\" is listed twice");
}

#[test]
fn dependencies_cross_included_files_and_their_errors_name_the_file() {
    // db in the config, web in conf.d depending on it: held while db is down
    let port = free_port();
    let t = Test::new();
    t.write(
        "conf.d/web.yml",
        "targets:\n  - name: web\n    depends_on: [db]\n    checks: [{command: [\"/bin/false\"]}]\n    policy: {fail_threshold: 1}\n    action: {exec: {restart: [\"/bin/sh\", \"-c\", \"echo run >> {dir}/runs\"]}}\n"
            .replace("{dir}", &t.dir().display().to_string())
            .as_str(),
    );
    let t = t.config(&format!(
        "state_file: {{dir}}/state.json\ninclude: [conf.d/*.yml]\ntargets:\n  - name: db\n    checks: [{{tcp_port: 127.0.0.1:{port}}}]\n    action: none\n"
    ));
    t.run(&["check"]).assert_code(2).assert_line_contains(
        &["target=web ", "action held"],
        "reason=dependency_down dependency=db",
    );
    assert_eq!(t.count_lines("runs"), 0);

    // a name that is nowhere: the error names the included file and its line
    t.write(
        "conf.d/web.yml",
        "targets:\n  - name: web\n    depends_on: [dbb]\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
    );
    let out = t.run(&["test-config"]);
    out.assert_code(78);
    assert!(
        out.stderr.contains("conf.d/web.yml: targets[0].depends_on[0]: \"dbb\" is not the name of a target (did you mean \"db\"?) (line 3)"),
        "{out}"
    );
}

#[test]
fn an_inconclusive_dependency_holds_in_status_as_in_the_engine_and_monitor_only_is_not_held() {
    let t = Test::new();
    let probe = t.script("probe", "#!/bin/sh\nexit 0\n");
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: db
    checks: [{{command: ["{}"]}}]
    action: none
  - name: web
    depends_on: [db]
    checks: [{{command: ["/bin/false"]}}]
    policy: {{fail_threshold: 1}}
    action: {{exec: {{restart: ["/bin/sh", "-c", "echo run >> {{dir}}/runs"]}}}}
  - name: report
    depends_on: [db]
    checks: [{{command: ["/bin/false"]}}]
    action: none
"#,
        probe.display()
    ));
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.count_lines("runs"), 1);
    std::fs::remove_file(&probe).expect("remove the probe");
    t.age_state(3600);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["target=web ", "action held"], "dependency=db");
    assert_eq!(
        t.count_lines("runs"),
        1,
        "held while db could not be checked"
    );
    let table = t.run(&["status"]);
    table
        .assert_stdout_contains("failed (held: db down)")
        .assert_stdout_contains("failed (db down too)");
    let report = table
        .stdout
        .lines()
        .find(|l| l.starts_with("report "))
        .unwrap_or_default();
    assert!(
        report.contains("(db down too)") && !report.contains("held"),
        "{table}"
    );
}

/// A dependency checked only hourly (its own `interval_seconds`) is checked again once its
/// action's grace is over, not an hour later (issue 18 M5): its `failed` from before the action
/// no longer holds its dead dependent. Both are real listeners their actions start; time passes
/// by ageing the state file.
#[test]
fn a_dependency_fixed_by_its_action_is_checked_again_and_releases_its_dependent() {
    let (db_port, web_port) = (free_port(), free_port());
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: db
    interval_seconds: 3600
    checks:
      - tcp_port: 127.0.0.1:{db_port}
    policy: {{fail_threshold: 1, restart_grace_seconds: 20}}
    action:
      exec:
        start: ["{PYTHON}", "{{dir}}/listener.py", "{db_port}", "{{dir}}/db.pid"]
        detach: true
        log_file: {{dir}}/db.log
  - name: web
    depends_on: [db]
    checks:
      - tcp_port: 127.0.0.1:{web_port}
    policy: {{fail_threshold: 1}}
    action:
      exec:
        start: ["{PYTHON}", "{{dir}}/listener.py", "{web_port}", "{{dir}}/web.pid"]
        detach: true
        log_file: {{dir}}/web.log
"#
    ));
    t.write("listener.py", crate::state::LISTENER);
    // both down: db is started, web held
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["target=web ", "action held"], "dependency=db");
    wait_for_port(db_port, EVENT_LIMIT);
    wait_for_file(&t.path("db.pid"), EVENT_LIMIT);
    let _db = Guard::from_pid_file(&t.path("db.pid")).expect("db pid");
    // inside db's grace it is not checked yet: web still held
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["target=db ", "target not due"], "status=failed")
        .assert_line_contains(&["target=web ", "action held"], "dependency=db");
    assert!(!port_open(web_port));
    // its grace over (20 s later, not an hour): db is checked, healthy, and web acts
    t.age_state(25);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["target=db ", "result=OK"], "tcp_port")
        .assert_line_contains(&["target=web ", "running action"], "action=start");
    wait_for_port(web_port, EVENT_LIMIT);
    wait_for_file(&t.path("web.pid"), EVENT_LIMIT);
    let _web = Guard::from_pid_file(&t.path("web.pid")).expect("web pid");
    let st = t.state();
    assert_eq!(st["targets"]["db"]["status"], "healthy", "{st}");
    // and db keeps its hourly interval from now on
    t.run(&["check"])
        .assert_code(0)
        .assert_stderr_not_contains(&format!("tcp_port 127.0.0.1:{db_port}"));
}
