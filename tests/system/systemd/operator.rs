//! The operator's verbs under a real systemd, with the timer ticking every second (no daemon:
//! each verb takes the lock between two passes): `stop` runs `systemctl stop` and keeps the
//! timer from starting nginx again, `start` brings it back, `restart` gives it a new main PID
//! whatever the cooldown says.

use super::nspawn::Container;
use super::package::{config, install};

/// `passes_total` of the state file (0 before the first pass).
fn passes(c: &Container) -> u64 {
    serde_json::from_str::<serde_json::Value>(&c.read("/var/lib/neon-watchdog/state.json"))
        .ok()
        .and_then(|v| v["passes_total"].as_u64())
        .unwrap_or(0)
}

#[test]
fn stop_start_and_restart_drive_a_real_unit_while_the_timer_ticks() {
    let c = Container::boot("nginx");
    install(&c);
    assert!(c.wait_active("nginx.service"));
    config(
        &c,
        1,
        "targets:\n\
         \x20 - name: web\n\
         \x20   checks:\n\
         \x20     - systemd_unit: nginx.service\n\
         \x20   policy: {fail_threshold: 1, restart_cooldown_seconds: 3600}\n\
         \x20   action:\n\
         \x20     systemd: {unit: nginx.service, method: restart}\n",
    );
    c.ok("neon-watchdog install -c /etc/neon-watchdog/config.yml");
    c.wait(
        "a first pass",
        || passes(&c) >= 1,
        "systemctl status neon-watchdog.timer --no-pager",
    );

    let stop = c.ok("neon-watchdog stop web");
    assert!(stop.contains("web: stop done (exit 0)"), "{stop}");
    assert_eq!(c.prop("nginx.service", "ActiveState"), "inactive");
    // three passes later nginx is still down: the timer leaves a stopped target alone
    let after = passes(&c);
    c.wait(
        "three passes after the stop",
        || passes(&c) >= after + 3,
        "journalctl -u neon-watchdog --no-pager | tail",
    );
    assert_eq!(c.prop("nginx.service", "ActiveState"), "inactive");
    let status = c.ok("neon-watchdog status web");
    assert!(status.contains("paused:"), "{status}");
    assert!(
        status.contains("stop by operator: ok"),
        "the stop is in the target's actions: {status}"
    );

    let start = c.ok("neon-watchdog start web");
    assert!(start.contains("web: start done (exit 0)"), "{start}");
    assert!(c.wait_active("nginx.service"));
    let before = c.prop("nginx.service", "MainPID");
    // the cooldown (an hour) would hold the policy; the operator's restart runs at once
    let restart = c.ok("neon-watchdog restart web");
    assert!(restart.contains("web: restart done (exit 0)"), "{restart}");
    c.wait(
        "nginx active with a new main PID",
        || {
            let s = c.show("nginx.service", &["ActiveState", "MainPID"]);
            s["ActiveState"] == "active" && s["MainPID"] != before && s["MainPID"] != "0"
        },
        "systemctl status nginx --no-pager",
    );
    let st: serde_json::Value =
        serde_json::from_str(&c.read("/var/lib/neon-watchdog/state.json")).expect("state");
    let kinds: Vec<(&str, &str)> = st["targets"]["web"]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or(""),
                a["by"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("stop", "operator"),
            ("start", "operator"),
            ("restart", "operator")
        ],
        "{st}"
    );
    assert_eq!(
        st["targets"]["web"]["restarts_total"], 1,
        "the restart counts, the start that ends a stop does not: {st}"
    );
}
