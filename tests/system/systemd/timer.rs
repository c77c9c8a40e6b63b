//! The timer mode: the package installs and starts the timer; with a short tick from
//! `neon-watchdog install`, passes come one tick apart and their lines reach journald with
//! priorities and fields of their own.

use super::nspawn::Container;
use super::package::{binary_only, config, install, journal, messages};

#[test]
fn install_then_the_timer_ticks_and_journald_files_priorities_and_fields() {
    let c = Container::boot("timer");
    install(&c);
    // the package: the timer enabled and started, the oneshot not run inside dpkg
    assert_eq!(
        c.ok("systemctl is-enabled neon-watchdog.timer").trim(),
        "enabled"
    );
    assert_eq!(
        c.ok("systemctl is-active neon-watchdog.timer").trim(),
        "active"
    );
    assert_eq!(c.prop("neon-watchdog.service", "NRestarts"), "0");

    // a healthy and a failing target, a 2 s tick (`install` takes the config's)
    config(
        &c,
        2,
        "targets:\n\
         \x20 - name: web\n    checks: [{tcp_port: '127.0.0.1:80'}]\n    action: none\n\
         \x20 - name: ghost\n    checks: [{tcp_port: '127.0.0.1:9'}]\n    action: none\n",
    );
    c.ok("neon-watchdog test-config -c /etc/neon-watchdog/config.yml");
    c.ok("neon-watchdog install -c /etc/neon-watchdog/config.yml");
    assert!(
        c.ok("systemctl cat neon-watchdog.timer")
            .contains("\nOnUnitActiveSec=2s\n"),
        "install did not write the config's tick"
    );

    // three passes, each at least a tick after the one before
    let passes = || {
        journal(&c, "-u neon-watchdog.service")
            .into_iter()
            .filter(|e| {
                e["MESSAGE"]
                    .as_str()
                    .unwrap_or("")
                    .contains("msg=\"pass done\"")
            })
            .filter_map(|e| e["__MONOTONIC_TIMESTAMP"].as_str()?.parse::<u64>().ok())
            .collect::<Vec<u64>>()
    };
    c.wait(
        "three passes of the timer",
        || passes().len() >= 3,
        "systemctl status neon-watchdog.timer neon-watchdog.service --no-pager; journalctl -u neon-watchdog --no-pager | tail -20",
    );
    let t = passes();
    for w in t.windows(2) {
        assert!(
            w[1] - w[0] >= 1_900_000,
            "two passes less than the 2 s tick apart: {t:?}"
        );
    }

    // -p warning: the failing target's lines, none of the healthy one's
    let warn = journal(&c, "-u neon-watchdog -p warning");
    assert!(!warn.is_empty(), "no warning in the journal");
    for e in &warn {
        let p: u8 = e["PRIORITY"].as_str().unwrap_or("9").parse().unwrap_or(9);
        assert!(p <= 4, "journalctl -p warning gave priority {p}: {e}");
        assert_ne!(e["TARGET"], "web", "a healthy target at warning: {e}");
    }
    let ghost: Vec<_> = warn.iter().filter(|e| e["TARGET"] == "ghost").collect();
    assert!(
        ghost
            .iter()
            .any(|e| e["RESULT"] == "FAIL" && e["CHECK"].is_string()),
        "no FAIL line of ghost with its fields: {:?}",
        messages(&warn)
    );
    // a field selects: everything about one target, at info too
    let web = journal(&c, "-u neon-watchdog TARGET=web");
    assert!(
        web.iter()
            .any(|e| e["RESULT"] == "OK" && e["PRIORITY"] == "6"),
        "TARGET=web has no OK line at info: {:?}",
        messages(&web)
    );
    assert!(web.iter().all(|e| e["TARGET"] == "web"));
    assert_eq!(
        journal(&c, "-u neon-watchdog -p warning TARGET=web").len(),
        0,
        "the healthy target at warning"
    );
    assert_eq!(
        c.prop("neon-watchdog.service", "Result"),
        "success",
        "exit 2 (a target failing) is not a failed unit"
    );
}

/// `neon-watchdog install` on a host without the package, under the real systemd: the timer
/// runs, `--daemon` switches to the loop and back, a new tick restarts the timer with it, and
/// `uninstall` stops and removes its units, keeping the config.
#[test]
fn install_switches_modes_and_uninstall_removes_its_units() {
    let c = Container::boot("install");
    binary_only(&c);
    let active = |u: &str| c.prop(u, "ActiveState") == "active";
    let enabled = |u: &str| c.sh(&format!("systemctl is-enabled {u}")).stdout.trim() == "enabled";
    let out = c.ok("neon-watchdog install");
    assert!(out.contains("installed and enabled"), "{out}");
    assert!(c
        .read("/etc/systemd/system/neon-watchdog.service")
        .contains(
            "\nExecStart=/usr/local/bin/neon-watchdog check -c /etc/neon-watchdog/config.yml\n"
        ));
    assert!(active("neon-watchdog.timer") && enabled("neon-watchdog.timer"));
    c.ok("neon-watchdog test-config -c /etc/neon-watchdog/config.yml");

    // the loop instead
    c.ok("neon-watchdog install --daemon");
    assert!(c.wait_active("neon-watchdog-daemon.service"));
    assert!(enabled("neon-watchdog-daemon.service"));
    assert!(!active("neon-watchdog.timer") && !enabled("neon-watchdog.timer"));
    // and back
    c.ok("neon-watchdog install");
    assert!(active("neon-watchdog.timer") && enabled("neon-watchdog.timer"));
    assert!(!active("neon-watchdog-daemon.service") && !enabled("neon-watchdog-daemon.service"));

    // a new tick in the config: the running timer takes it
    c.ok("sed -i 's/^interval_seconds: 30$/interval_seconds: 60/' /etc/neon-watchdog/config.yml");
    let out = c.ok("neon-watchdog install");
    assert!(
        out.contains("updated /etc/systemd/system/neon-watchdog.timer"),
        "{out}"
    );
    assert!(
        c.prop("neon-watchdog.timer", "TimersMonotonic")
            .contains("1min"),
        "{}",
        c.prop("neon-watchdog.timer", "TimersMonotonic")
    );

    // uninstall: stopped, disabled, removed; the config kept
    let out = c.ok("neon-watchdog uninstall");
    assert!(out.contains("kept /etc/neon-watchdog/config.yml"), "{out}");
    for u in [
        "neon-watchdog.timer",
        "neon-watchdog.service",
        "neon-watchdog-daemon.service",
    ] {
        assert_eq!(c.prop(u, "LoadState"), "not-found", "{u}");
        assert!(!active(u), "{u}");
        assert!(
            !c.host_path(&format!("/etc/systemd/system/{u}")).exists(),
            "{u}"
        );
    }
    assert!(c.host_path("/etc/neon-watchdog/config.yml").exists());
}
