//! The daemon mode (`neon-watchdog install --daemon`): Type=notify, its STATUS line,
//! WatchdogSec killing a stopped loop and systemd starting a new one, reload with a good and
//! a bad config.

use super::nspawn::Container;
use super::package::{config, install, journal, messages};

const UNIT: &str = "neon-watchdog-daemon.service";

fn targets(extra: &str) -> String {
    format!(
        "targets:\n\
         \x20 - name: web\n    checks: [{{tcp_port: '127.0.0.1:80'}}]\n    action: none\n\
         \x20 - name: ghost\n    checks: [{{tcp_port: '127.0.0.1:9'}}]\n    action: none\n{extra}"
    )
}

fn daemon(hint: &str) -> Container {
    let c = Container::boot(hint);
    install(&c);
    config(&c, 1, &targets(""));
    c.ok("neon-watchdog install --daemon -c /etc/neon-watchdog/config.yml");
    assert!(
        c.wait_active(UNIT),
        "{}",
        c.sh("systemctl status neon-watchdog-daemon --no-pager")
    );
    c
}

/// Finding (e): the failing targets' names stood after the unknown count
/// ("1 healthy, 1 failing, 0 unknown (ghost)").
#[test]
fn the_daemon_is_notify_active_with_a_status_line_and_watchdog_restarts_a_stopped_loop() {
    let c = daemon("daemon-watchdog");
    let s = c.show(UNIT, &["Type", "ActiveState", "SubState", "NotifyAccess"]);
    assert_eq!(
        (s["Type"].as_str(), s["SubState"].as_str()),
        ("notify", "running")
    );
    assert_eq!(
        c.prop("neon-watchdog.timer", "ActiveState"),
        "inactive",
        "both modes at once"
    );
    c.wait(
        "the STATUS line of a pass",
        || c.prop(UNIT, "StatusText").contains("last pass"),
        "systemctl status neon-watchdog-daemon --no-pager",
    );
    let status = c.prop(UNIT, "StatusText");
    assert!(
        status.starts_with("1 healthy, 1 failing (ghost), 0 unknown; last pass "),
        "StatusText={status}"
    );
    assert!(
        c.ok("systemctl status neon-watchdog-daemon --no-pager")
            .contains("Status: \"1 healthy, 1 failing (ghost), 0 unknown; last pass"),
        "systemctl status does not show it"
    );

    // a short WatchdogSec (a drop-in, as README says local changes go), then the loop stopped
    c.write(
        "/etc/systemd/system/neon-watchdog-daemon.service.d/fast.conf",
        "[Service]\nWatchdogSec=2s\nRestartSec=100ms\n",
        0o644,
    );
    c.ok("systemctl daemon-reload && systemctl restart neon-watchdog-daemon");
    let pid = c.prop(UNIT, "MainPID");
    assert_eq!(c.prop(UNIT, "WatchdogUSec"), "2s");
    c.ok(&format!("kill -STOP {pid}"));
    c.wait(
        "systemd killing the stopped loop and starting a new one",
        || {
            let s = c.show(UNIT, &["ActiveState", "SubState", "MainPID", "NRestarts"]);
            s["ActiveState"] == "active"
                && s["SubState"] == "running"
                && s["MainPID"] != pid
                && s["NRestarts"] == "1"
        },
        "systemctl status neon-watchdog-daemon --no-pager; journalctl -u neon-watchdog-daemon --no-pager | tail -20",
    );
    let systemd_said = messages(&journal(&c, "-u neon-watchdog-daemon _PID=1"));
    assert!(
        systemd_said.iter().any(|m| m.contains("Watchdog timeout")),
        "{systemd_said:?}"
    );
    assert!(
        !c.sh(&format!("kill -0 {pid}")).ok(),
        "the stopped loop still exists"
    );
}

/// Finding (c): `systemctl reload` exited 0 before the daemon had reloaded, and also when the
/// daemon refused the new config; `systemctl status` did not say so either.
#[test]
fn reload_waits_for_the_daemon_and_fails_when_the_new_config_is_refused() {
    let c = daemon("daemon-reload");
    let pid = c.prop(UNIT, "MainPID");
    let reloaded = || {
        journal(&c, "-u neon-watchdog-daemon")
            .iter()
            .filter(|e| {
                e["MESSAGE"]
                    .as_str()
                    .is_some_and(|m| m.contains("msg=\"config reloaded\""))
            })
            .count()
    };
    assert_eq!(reloaded(), 0);

    // good: a third target; when reload returns, the daemon has it
    config(
        &c,
        1,
        &targets("  - name: third\n    checks: [{tcp_port: '127.0.0.1:80'}]\n    action: none\n"),
    );
    let r = c.sh("systemctl reload neon-watchdog-daemon");
    assert!(r.ok(), "reload of a good config: {r}");
    assert_eq!(
        reloaded(),
        1,
        "systemctl reload returned before the daemon reloaded"
    );
    // bad: a config test-config refuses
    config(&c, 1, &format!("{}  bogus_key: 1\n", targets("")));
    let r = c.sh("systemctl reload neon-watchdog-daemon");
    assert!(!r.ok(), "reload of an invalid config succeeded: {r}");
    let status = c.prop(UNIT, "StatusText");
    assert!(status.contains("refused"), "StatusText={status}");

    // bad for the daemon only: valid, but a state_file it cannot switch to while running
    config(
        &c,
        1,
        &format!(
            "state_file: /var/lib/neon-watchdog/other.json\n{}",
            targets("")
        ),
    );
    c.ok("neon-watchdog test-config -c /etc/neon-watchdog/config.yml");
    let r = c.sh("systemctl reload neon-watchdog-daemon");
    assert!(
        !r.ok(),
        "reload of a config the daemon refused succeeded: {r}"
    );
    assert!(r.stderr.contains("failed"), "{r}");
    let status = c.prop(UNIT, "StatusText");
    assert!(status.contains("refused"), "StatusText={status}");
    // the reason: in the unit's journal (the ExecReload said it), not in the world-readable
    // status
    let said = messages(&journal(&c, "-u neon-watchdog-daemon"));
    assert!(
        said.iter()
            .any(|m| m.contains("neon-watchdog refused: state_file and lock_file cannot change")),
        "{said:?}"
    );
    assert!(!status.contains("state_file"), "StatusText={status}");
    // still the same daemon on the previous config (three targets), and the refusal stays in
    // view
    let s = c.show(UNIT, &["ActiveState", "MainPID"]);
    assert_eq!(
        (s["ActiveState"].as_str(), s["MainPID"].as_str()),
        ("active", pid.as_str())
    );
    c.wait(
        "a pass after the refusal",
        || {
            let st = c.prop(UNIT, "StatusText");
            st.starts_with("2 healthy, 1 failing (ghost), 0 unknown; last pass")
                && st.contains("refused")
        },
        "systemctl status neon-watchdog-daemon --no-pager",
    );
    assert!(
        c.ok("systemctl status neon-watchdog-daemon --no-pager")
            .contains("refused"),
        "systemctl status does not show the refusal"
    );
}
