//! Secrets: values that came from `${NAME}` (and `password=`-style values) never appear in
//! any output, at any level, in either log format, in the state file or in `test-config`.

use crate::harness::*;

const SECRET: &str = "s3cr3t-Vq7zK9";
const LITERAL_PASSWORD: &str = "hunter2-literal";

fn secret_test() -> Test {
    Test::new()
        .env("NW_IT_SECRET", SECRET)
        .config(&format!(
            r#"
state_file: {{dir}}/state.json
default_policy: {{restart_cooldown_seconds: 0}}
targets:
  - name: api
    checks:
      - command: ["/bin/sh", "-c", "echo \"auth failed for $0\" >&2; exit 1", "${{NW_IT_SECRET}}"]
      - command: ["/bin/sh", "-c", "echo \"auth $0 rejected\"; exit 2", "token={LITERAL_PASSWORD}"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo \"login with $API_TOKEN $1 failed\" >&2; exit 3", "restart", "--password={LITERAL_PASSWORD}"]
        env: {{API_TOKEN: "${{NW_IT_SECRET}}"}}
"#
        ))
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for s in [SECRET, LITERAL_PASSWORD] {
        assert!(!text.contains(s), "{what} leaks {s:?}:\n{text}");
    }
}

#[test]
fn secrets_never_appear_in_logs_at_any_level_or_format() {
    let t = secret_test();
    let runs: &[&[&str]] = &[
        &["check"],
        &["check", "-v"],
        &["check", "-vv"],
        &["check", "--debug", "--log-format", "json"],
        &["check", "--log-level", "trace", "--log-format", "json"],
        &["check", "--dry-run", "-v"],
        &["run", "--once", "-v"],
    ];
    for args in runs {
        let out = t.run(args);
        out.assert_code(2);
        assert_clean(&format!("stderr of {args:?}"), &out.stderr);
        assert_clean(&format!("stdout of {args:?}"), &out.stdout);
        // the failure is still readable, with the secret masked
        out.assert_stderr_contains("auth failed for ***");
        if args.contains(&"--dry-run") {
            out.assert_stderr_contains("would_run");
        } else {
            out.assert_stderr_contains("login with ***");
        }
    }
    let state = t.read("state.json");
    assert_clean("state.json", &state);
    assert!(state.contains("auth failed for ***"), "{state}");
}

#[test]
fn test_config_summary_masks_secrets() {
    let t = secret_test();
    let out = t.run(&["test-config"]);
    out.assert_code(0);
    assert_clean("test-config stdout", &out.stdout);
    assert_clean("test-config stderr", &out.stderr);
    out.assert_stdout_contains("***");
}

/// A secret in a config error (e.g. an invalid port built from an env var) is masked too.
#[test]
fn secrets_are_masked_in_config_errors() {
    let t = Test::new()
        .env("NW_IT_PORT", "70000")
        .env("NW_IT_SECRET", SECRET)
        .config(
            r#"
state_file: {dir}/state.json
targets:
  - name: api
    checks:
      - tcp_port: "127.0.0.1:${NW_IT_PORT}"
      - process_name: "/opt/${NW_IT_SECRET}/bin"
    action: none
"#,
        );
    let out = t.run(&["check"]);
    out.assert_code(78);
    assert_clean("config error", &out.stderr);
}

/// The files the watchdog itself writes beside the state (state file, lock, the exec action's
/// output file) must not expose a secret to other users: a file holding a command's raw output
/// (which may echo a `${NAME}` value) has to be private (no group/other access), and the state
/// file must not hold one at all.
#[test]
fn files_written_by_the_watchdog_do_not_expose_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let t = secret_test();
    t.run(&["check"]).assert_code(2);
    let mut checked = 0;
    for name in t.entries() {
        if name == "config.yml" {
            continue;
        }
        let path = t.path(&name);
        let meta = std::fs::metadata(&path).unwrap();
        if !meta.is_file() {
            continue;
        }
        checked += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let leaks = text.contains(SECRET) || text.contains(LITERAL_PASSWORD);
        let mode = meta.permissions().mode() & 0o777;
        assert!(
            !leaks || mode & 0o077 == 0,
            "{name} (mode {mode:o}) is readable by other users and holds a secret:\n{text}"
        );
    }
    assert!(checked >= 2, "{:?}", t.entries());
}
