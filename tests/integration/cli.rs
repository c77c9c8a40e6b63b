//! The command line: usage errors exit 64 (never 2, which means "a target failed"), help and
//! version exit 0, global flags work before or after the subcommand, `run --once` is `check`.

use crate::harness::*;

const HEALTHY: &str = r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#;

#[test]
fn usage_errors_exit_64() {
    let t = Test::new().config(HEALTHY);
    let cfg = t.config_path().display().to_string();
    let cases: &[&[&str]] = &[
        &["check", "--bogus", "-c", &cfg],
        &["--chekc"],
        &["frobnicate", "-c", &cfg],
        &["-c", &cfg],
        &[],
        &["check", "extra-argument", "-c", &cfg],
        &["check", "--log-format", "xml", "-c", &cfg],
        &["check", "--log-level", "loud", "-c", &cfg],
        &["check", "-c"],
        &["run", "--once=yes", "-c", &cfg],
    ];
    for args in cases {
        let out = t.run_bare(args);
        out.assert_code(64);
        assert!(
            !out.stderr.trim().is_empty(),
            "no message for {args:?}\n{out}"
        );
        out.assert_stderr_not_contains("panicked");
    }
    t.run_bare(&["check", "--bogus", "-c", &cfg])
        .assert_stderr_contains("--bogus");
    t.run_bare(&["frobnicate"])
        .assert_stderr_contains("frobnicate");
    assert!(!t.exists("state.json"), "a usage error ran a pass");
}

#[test]
fn help_and_version_exit_0() {
    let t = Test::new();
    for args in [&["--help"][..], &["-h"], &["help"], &["check", "--help"]] {
        t.run_bare(args)
            .assert_code(0)
            .assert_stdout_contains("Usage");
    }
    let out = t.run_bare(&["--help"]);
    out.assert_stdout_contains("Exit codes:");
    for line in ["0 ", "2 ", "64 ", "75 ", "78 ", "1 "] {
        assert!(
            out.stdout.lines().any(|l| l.trim_start().starts_with(line)),
            "help lacks exit code {line}\n{out}"
        );
    }
    for sub in ["check", "run", "test-config"] {
        out.assert_stdout_contains(sub);
    }
    let v = t.run_bare(&["--version"]);
    v.assert_code(0);
    assert_eq!(
        v.stdout.trim(),
        format!("neon-watchdog {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn global_flags_work_after_the_subcommand() {
    let t = Test::new().config(FAILING);
    let cfg = t.config_path().display().to_string();
    // `check -c f --dry-run`
    let out = t.run_bare(&["check", "-c", &cfg, "--dry-run"]);
    out.assert_code(2).assert_stderr_contains("reason=dry_run");
    assert!(
        !t.exists("runs"),
        "--dry-run after the subcommand was ignored"
    );
    // and before it
    t.run_bare(&["--dry-run", "-c", &cfg, "check"])
        .assert_code(2)
        .assert_stderr_contains("reason=dry_run");
    assert!(!t.exists("runs"));
    // -vv after the subcommand shows the trace lines (what ran, the policy's inputs);
    // --log-format after it gives JSON
    let t = Test::new().config(HEALTHY);
    let cfg = t.config_path().display().to_string();
    t.run_bare(&["check", "-c", &cfg])
        .assert_code(0)
        .assert_stderr_contains("result=OK")
        .assert_stderr_not_contains("level=trace");
    t.run_bare(&["check", "-c", &cfg, "-vv"])
        .assert_code(0)
        .assert_line_contains(&["level=trace", "msg=\"check ran\""], "timeout_ms=")
        .assert_line_contains(&["level=trace", "msg=policy"], "prev_failures=");
    t.run_bare(&["check", "-c", &cfg, "--log-level", "trace"])
        .assert_code(0)
        .assert_stderr_contains("level=trace");
    t.run_bare(&["check", "-c", &cfg, "--log-level", "warn"])
        .assert_code(0)
        .assert_stderr_not_contains("result=OK");
    let out = t.run_bare(&["check", "-c", &cfg, "--log-format", "json"]);
    out.assert_code(0);
    assert!(!json_lines(&out).is_empty());
    // --log-level error hides the info lines
    let out = t.run_bare(&["check", "-c", &cfg, "--log-level", "error"]);
    out.assert_code(0);
    assert_eq!(out.stderr, "", "--log-level error still logs info lines");
}

#[test]
fn config_from_environment_variable() {
    let t = Test::new().config(HEALTHY);
    let cfg = t.config_path().display().to_string();
    let t = t.env("NEON_WATCHDOG_CONFIG", &cfg);
    t.run_bare(&["check"]).assert_code(0);
    assert!(t.exists("state.json"));
}

#[test]
fn default_config_path_missing_is_78() {
    if std::path::Path::new("/etc/neon-watchdog/config.yml").exists() {
        return; // a real install on this machine: nothing to assert about a missing default
    }
    Test::new()
        .run_bare(&["check"])
        .assert_code(78)
        .assert_stderr_contains("/etc/neon-watchdog/config.yml: config file not found");
}

#[test]
fn run_once_is_one_pass() {
    let t = Test::new().config(FAILING);
    let out = t.run(&["run", "--once"]);
    out.assert_code(2).assert_lines(&["msg=\"pass done\""], 1);
    assert_eq!(t.count_lines("runs"), 1);
    let t = Test::new().config(HEALTHY);
    t.run(&["run", "--once"]).assert_code(0);
}

#[test]
fn start_and_pass_lines_are_logged() {
    let t = Test::new().config(FAILING);
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["msg=\"neon-watchdog starting\""],
            &format!("version={}", env!("CARGO_PKG_VERSION")),
        )
        .assert_line_contains(&["msg=\"neon-watchdog starting\""], "targets=1")
        .assert_line_contains(&["msg=\"neon-watchdog starting\""], "config=")
        .assert_line_contains(
            &["msg=\"pass done\""],
            "healthy=0 failing=1 unknown=0 duration_ms=",
        )
        .assert_line_contains(
            &["result=FAIL"],
            "target=app check=\"command /bin/false\" result=FAIL latency_ms=",
        );
    for line in out.stderr.lines() {
        assert!(line.starts_with("ts="), "line without ts=: {line}\n{out}");
    }
}

/// JSON is recognised by content when the file has no telling extension.
#[test]
fn json_config_without_extension() {
    let t = Test::new().config_named(
        "watchdog.conf",
        r#"{"state_file": "{dir}/state.json",
            "targets": [{"name": "app", "checks": [{"command": ["/bin/true"]}], "action": "none"}]}"#,
    );
    t.run(&["check"]).assert_code(0);
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains("target app");
}

/// Each command's help shows the flags that mean something there, and no empty env value.
#[test]
fn help_shows_only_what_means_something() {
    let t = Test::new();
    for (cmd, has_dry_run) in [
        ("check", true),
        ("run", true),
        ("reset", true),
        ("status", false),
        ("test-config", false),
    ] {
        let out = t.run_bare(&[cmd, "--help"]);
        out.assert_code(0);
        assert_eq!(
            out.stdout.contains("--dry-run"),
            has_dry_run,
            "{cmd} --help:\n{}",
            out.stdout
        );
        assert_eq!(
            out.stdout.contains("--allow-unsafe-config"),
            cmd == "check" || cmd == "run",
            "{cmd} --help:\n{}",
            out.stdout
        );
        assert!(
            !out.stdout.contains("NEON_WATCHDOG_CONFIG="),
            "{}",
            out.stdout
        );
    }
    let out = t.run_bare(&["--help"]);
    assert!(
        !out.stdout.contains("NEON_WATCHDOG_CONFIG="),
        "{}",
        out.stdout
    );
}

/// Messages never point at a file an installed host does not have.
#[test]
fn a_missing_config_says_what_to_do_without_pointing_at_the_source_tree() {
    let t = Test::new();
    let out = t.run_bare(&["check", "-c", "/nonexistent/neon.yml"]);
    out.assert_code(78)
        .assert_stderr_contains("config file not found")
        .assert_stderr_not_contains("examples/");
}
