//! The systemd_unit check where the real systemd cannot be made to answer: a unit systemd still
//! calls active whose main process is gone or a zombie (the real one notices at once). A
//! STAND-IN `systemctl` script (`systemctl_path`) prints what real `systemctl show -p ...`
//! prints (KEY=VALUE lines) for units described in files the test writes, and records its
//! argv; the reconciliation with /proc is real (a live process, a dead pid, a real zombie).
//! Every state the real systemd gives is read from it in tests/system/systemd/units.rs.

use crate::harness::*;
use std::process::{Command, Stdio};

/// `systemctl show` output for one unit, in the real format.
fn show(load: &str, active: &str, sub: &str, result: &str, pid: i32, restarts: u32) -> String {
    format!(
        "LoadState={load}\nActiveState={active}\nSubState={sub}\nResult={result}\nMainPID={pid}\nNRestarts={restarts}\n"
    )
}

#[test]
fn standin_systemctl_active_unit_whose_pid_is_gone_or_a_zombie_has_crashed() {
    let t = Test::new();
    t.script(
        "systemctl",
        "#!/bin/sh\n# STAND-IN for systemctl: states the real one never shows: prints `systemctl show` output\necho \"$*\" >> {dir}/calls\nfor last; do :; done\ncat \"{dir}/units/$last\" 2>/dev/null || printf 'LoadState=not-found\\nActiveState=inactive\\nSubState=dead\\nResult=success\\nMainPID=0\\nNRestarts=0\\n'\n",
    );
    let mut cmd = Command::new("/bin/sleep");
    cmd.arg("60").stdin(Stdio::null());
    let live = ChildGuard::spawn(cmd);
    let zprog = t.copy_program("/bin/true", &unique_name("nwzu"));
    let zombie = Zombie::new(&t, &zprog);
    t.write(
        "units/web.service",
        &show("loaded", "active", "running", "success", live.pid(), 2),
    );
    t.write(
        "units/gone.service",
        &show("loaded", "active", "running", "success", dead_pid(), 5),
    );
    t.write(
        "units/zombie.service",
        &show("loaded", "active", "running", "success", zombie.pid, 0),
    );
    let t = t.config(
        r#"
state_file: {dir}/state.json
systemctl_path: {dir}/systemctl
targets:
  - {name: web, checks: [{systemd_unit: web.service}], action: none}
  - {name: gone, checks: [{systemd_unit: gone.service}], action: none}
  - {name: zombie, checks: [{systemd_unit: zombie.service}], action: none}
"#,
    );
    let out = t.run(&["check", "-v"]);
    out.assert_code(2)
        .assert_line_contains(
            &["result=OK", "target=web "],
            "state=active/running nrestarts=2",
        )
        .assert_line_contains(
            &["result=OK", "target=web "],
            &format!("pid={}", live.pid()),
        )
        .assert_line_contains(
            &["result=FAIL", "target=gone "],
            "crashed (systemd says active, pid",
        )
        .assert_line_contains(&["result=FAIL", "target=gone "], "is gone)")
        .assert_line_contains(&["result=FAIL", "target=gone "], "nrestarts=5")
        .assert_line_contains(
            &["result=FAIL", "target=zombie "],
            &format!(
                "crashed (systemd says active, pid {} is a zombie)",
                zombie.pid
            ),
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=1 failing=2");
    let calls = t.read("calls");
    assert!(
        calls.lines().any(|l| l
            == "show -p LoadState,ActiveState,SubState,Result,MainPID,NRestarts -- web.service"),
        "{calls}"
    );
    drop(zombie);
}

#[test]
fn a_missing_systemctl_says_what_to_set() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
systemctl_path: {dir}/no-systemctl
targets:
  - {name: web, checks: [{systemd_unit: web.service}], action: none}
"#,
    );
    // the unit's health is unknown, not failing: exit 1, nothing counted
    t.run(&["check"])
        .assert_code(1)
        .assert_line_contains(&["result=FAIL"], "set systemctl_path")
        .assert_line_contains(&["level=error", "cannot tell"], "no-systemctl");
}
