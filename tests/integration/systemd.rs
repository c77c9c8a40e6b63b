//! The systemd action. There is no systemd as PID 1 in a test container, so `systemctl_path`
//! points at a stand-in script that speaks systemctl's interface: it records its argv and
//! answers like systemctl does (exit code, messages on stderr).

use crate::harness::*;

fn with_systemctl(method: &str, behaviour: &str) -> Test {
    let t = Test::new();
    t.script(
        "systemctl",
        &format!(
            "#!/bin/sh\n# stand-in for systemctl (no systemd as PID 1 here)\necho \"$*\" >> {{dir}}/systemctl.calls\n{behaviour}\n"
        ),
    );
    t.config(&format!(
        r#"
state_file: {{dir}}/state.json
systemctl_path: {{dir}}/systemctl
targets:
  - name: web
    checks:
      - command: ["/bin/false"]
    action:
      systemd: {{unit: nginx.service, method: {method}}}
"#
    ))
}

#[test]
fn systemd_action_runs_systemctl_with_exact_argv() {
    let t = with_systemctl("restart", "exit 0");
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["msg=\"action done\""], "exit=0");
    assert_eq!(
        t.read("systemctl.calls"),
        "--no-ask-password restart nginx.service\n"
    );
    // the log says what ran: the method is not a secret (it merely follows a flag whose
    // name ends in "password")
    out.assert_line_contains(
        &["running action"],
        "--no-ask-password restart nginx.service",
    );
}

#[test]
fn systemd_methods_are_passed_through() {
    for method in ["start", "reload-or-restart"] {
        let t = with_systemctl(method, "exit 0");
        t.run(&["check"]).assert_code(2);
        assert_eq!(
            t.read("systemctl.calls"),
            format!("--no-ask-password {method} nginx.service\n")
        );
    }
}

#[test]
fn systemd_permission_failure_is_explained() {
    let t = with_systemctl(
        "restart",
        "echo 'Failed to restart nginx.service: Access denied' >&2\nexit 1",
    );
    let out = t.run(&["check"]);
    out.assert_code(2);
    let line = out.line(&["level=error", "msg=\"action failed\""]);
    assert!(line.contains("permission denied"), "{line}");
    assert!(line.contains("polkit"), "{line}");
    assert!(line.contains("exit=1"), "{line}");
    assert!(
        line.contains("Access denied"),
        "systemctl's own words are kept: {line}"
    );
}

#[test]
fn systemd_start_limit_is_explained() {
    let t = with_systemctl(
        "restart",
        "echo 'Job for nginx.service failed.' >&2\necho \"See 'systemctl status nginx.service' for details.\" >&2\necho 'Start request repeated too quickly.' >&2\nexit 1",
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["msg=\"action failed\""], "start limit");
}

#[test]
fn systemd_unknown_unit_is_explained() {
    let t = with_systemctl(
        "restart",
        "echo 'Failed to restart nginx.service: Unit nginx.service not found.' >&2\nexit 5",
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"action failed\""], "not found");
}

#[test]
fn missing_systemctl_is_a_clear_action_failure() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
systemctl_path: {dir}/no-such-systemctl
targets:
  - name: web
    checks:
      - command: ["/bin/false"]
    action:
      systemd: {unit: nginx.service}
"#,
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"action failed\""], "no such file or directory");
}
