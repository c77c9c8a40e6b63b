//! The systemd action where the real systemd cannot be made to answer: a STAND-IN `systemctl`
//! script (`systemctl_path`) refusing with polkit's "Access denied" (the system suite's rootfs
//! has no polkit and its watchdog runs as root), and no systemctl at all. The rest (the argv,
//! every method, the start limit, an unknown unit) runs against a real systemd as PID 1 in
//! tests/system/systemd/units.rs.

use crate::harness::*;

fn with_systemctl(method: &str, behaviour: &str) -> Test {
    let t = Test::new();
    t.script(
        "systemctl",
        &format!(
            "#!/bin/sh\n# STAND-IN for systemctl: a polkit refusal the real one cannot be made to give here\necho \"$*\" >> {{dir}}/systemctl.calls\n{behaviour}\n"
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
fn standin_systemctl_permission_failure_is_explained() {
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
