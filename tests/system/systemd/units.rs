//! The `systemd_unit` check and the `systemd` action against real units: nginx killed with
//! -9 and restarted through `systemctl restart`; a unit at its start limit, explained from
//! what systemd itself says about the unit.

use super::nspawn::Container;
use super::package::{config, install, journal, messages};

#[test]
fn a_unit_killed_with_9_is_seen_failed_and_restarted_with_systemctl() {
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
         \x20     - http: http://127.0.0.1/\n\
         \x20   policy: {fail_threshold: 1, restart_cooldown_seconds: 0}\n\
         \x20   action:\n\
         \x20     systemd: {unit: nginx.service, method: restart}\n",
    );
    c.ok("neon-watchdog install -c /etc/neon-watchdog/config.yml");
    c.wait(
        "a healthy pass of web",
        || {
            journal(&c, "-u neon-watchdog TARGET=web").iter().any(|e| {
                e["RESULT"] == "OK"
                    && e["CHECK"]
                        .as_str()
                        .is_some_and(|s| s.contains("systemd_unit"))
            })
        },
        "journalctl -u neon-watchdog --no-pager | tail",
    );
    let before = c.prop("nginx.service", "MainPID");
    c.ok(&format!("kill -9 {before}"));
    // nginx has no Restart=: systemd leaves it failed; the watchdog restarts it
    c.wait(
        "nginx active again with a new main PID",
        || {
            let s = c.show("nginx.service", &["ActiveState", "MainPID"]);
            s["ActiveState"] == "active" && s["MainPID"] != before && s["MainPID"] != "0"
        },
        "systemctl status nginx --no-pager; journalctl -u neon-watchdog --no-pager | tail -20",
    );
    assert_eq!(
        c.prop("nginx.service", "NRestarts"),
        "0",
        "systemd restarted it itself"
    );
    assert_eq!(
        c.ok("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/"),
        "200"
    );
    let web = journal(&c, "-u neon-watchdog TARGET=web");
    let failed_check = web.iter().any(|e| {
        e["RESULT"] == "FAIL"
            && e["STATE"].as_str().is_some_and(|s| {
                s.starts_with("failed") || s.contains("crashed") || s.starts_with("inactive")
            })
    });
    assert!(
        failed_check,
        "no FAIL of systemd_unit with the unit's state: {:?}",
        messages(&web)
    );
    let actions: Vec<_> = web
        .iter()
        .filter(|e| {
            e["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.contains("msg=\"action done\""))
        })
        .collect();
    assert_eq!(actions.len(), 1, "one restart: {:?}", messages(&web));
    assert_eq!(
        actions[0]["ARGV"], "systemctl --no-ask-password restart nginx.service",
        "{}",
        actions[0]
    );
}

/// Each method reaches the real systemd as written, and an unknown unit is said to be one.
#[test]
fn every_method_and_an_unknown_unit_against_the_real_systemd() {
    let c = Container::boot("methods");
    install(&c);
    c.ok("systemctl stop nginx.service");
    config(
        &c,
        30,
        "targets:
           - name: stopped
             checks: [{systemd_unit: nginx.service}]
             policy: {fail_threshold: 1}
             action: {systemd: {unit: nginx.service, method: start}}
           - name: reload
             checks: [{tcp_port: '127.0.0.1:9'}]
             policy: {fail_threshold: 1}
             action: {systemd: {unit: cron-less-reload.service, method: reload-or-restart}}
           - name: nounit
             checks: [{tcp_port: '127.0.0.1:9'}]
             policy: {fail_threshold: 1}
             action: {systemd: {unit: no-such.service}}
",
    );
    c.write(
        "/etc/systemd/system/cron-less-reload.service",
        "[Service]
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'echo reloaded >> /var/lib/reloads'
",
        0o644,
    );
    c.ok("systemctl daemon-reload && systemctl start cron-less-reload.service");
    let r = c.sh("neon-watchdog check -c /etc/neon-watchdog/config.yml");
    assert_eq!(r.code, Some(2), "{r}");
    // start: nginx runs again
    assert_eq!(c.prop("nginx.service", "ActiveState"), "active", "{r}");
    assert_eq!(
        c.ok("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/"),
        "200"
    );
    // reload-or-restart of a running unit: its ExecReload ran, it was not restarted
    assert_eq!(c.read("/var/lib/reloads"), "reloaded\n", "{r}");
    let line = |target: &str| {
        r.stderr
            .lines()
            .find(|l| l.contains(&format!("target={target} ")) && l.contains("msg=\"action "))
            .unwrap_or_else(|| panic!("no action line of {target}: {r}"))
            .to_string()
    };
    assert!(
        line("stopped").contains("argv=\"systemctl --no-ask-password start nginx.service\""),
        "{}",
        line("stopped")
    );
    assert!(line("reload").contains("reload-or-restart cron-less-reload.service"));
    let nounit = line("nounit");
    assert!(
        nounit.contains("msg=\"action failed\"")
            && nounit.contains("unit no-such.service not found"),
        "{nounit}"
    );
    assert!(!nounit.contains("start limit"), "{nounit}");
}

/// Finding: systemctl's words at the start limit ("Job for X failed because the control process
/// exited with error code") do not say it; the journal does ("Start request repeated too
/// quickly"), and `Result` stays `exit-code`. The action asks systemd.
#[test]
fn a_unit_at_its_start_limit_is_explained_by_asking_systemd() {
    let c = Container::boot("startlimit");
    install(&c);
    c.write(
        "/etc/systemd/system/flaky.service",
        "[Unit]\nStartLimitBurst=2\nStartLimitIntervalSec=1h\n[Service]\nType=oneshot\nExecStart=/bin/false\n",
        0o644,
    );
    c.ok("systemctl daemon-reload");
    // the limit used up by hand: two failed starts
    for _ in 0..2 {
        assert!(!c.sh("systemctl start flaky.service").ok());
    }
    config(
        &c,
        30,
        "targets:\n\
         \x20 - name: flaky\n\
         \x20   checks: [{systemd_unit: flaky.service}]\n\
         \x20   policy: {fail_threshold: 1, restart_cooldown_seconds: 0}\n\
         \x20   action:\n\
         \x20     systemd: {unit: flaky.service, method: restart}\n",
    );
    let r = c.sh("neon-watchdog check -c /etc/neon-watchdog/config.yml");
    assert_eq!(r.code, Some(2), "{r}");
    let failed = r
        .stderr
        .lines()
        .find(|l| l.contains("msg=\"action failed\""))
        .unwrap_or_else(|| panic!("no action failed line: {r}"));
    assert!(
        failed.contains("start limit") && failed.contains("reset-failed flaky.service"),
        "the start limit is not explained: {failed}"
    );
    // a unit failing for another reason is not called rate-limited
    c.ok("systemctl reset-failed flaky.service; rm -f /var/lib/neon-watchdog/state.json");
    let r = c.sh("neon-watchdog check -c /etc/neon-watchdog/config.yml");
    let failed = r
        .stderr
        .lines()
        .find(|l| l.contains("msg=\"action failed\""))
        .unwrap_or_else(|| panic!("no action failed line: {r}"));
    assert!(!failed.contains("start limit"), "{failed}");
}

/// The one-call helper the recovery benchmark builds on: a container with one unit in it,
/// active; systemd's own `Restart=` brings it back after a `kill -9`.
#[test]
fn boot_with_unit_gives_an_active_unit_that_systemd_restarts_itself() {
    let c = Container::boot_with_unit(
        "sleeper.service",
        "[Service]\nExecStart=/bin/sleep infinity\nRestart=always\nRestartSec=100ms\n",
    );
    let pid = c.prop("sleeper.service", "MainPID");
    assert_ne!(pid, "0");
    c.ok(&format!("kill -9 {pid}"));
    c.wait(
        "systemd restarting sleeper.service",
        || {
            let s = c.show("sleeper.service", &["ActiveState", "MainPID", "NRestarts"]);
            s["ActiveState"] == "active" && s["MainPID"] != pid && s["NRestarts"] == "1"
        },
        "systemctl status sleeper.service --no-pager",
    );
}

/// The systemd_unit check reads each state the real systemd gives (running, a oneshot's
/// exited, failed with its Result, never started, restarting itself, unknown).
#[test]
fn the_systemd_unit_check_reads_real_unit_states() {
    let units: &[(&str, &str)] = &[
        ("web", "[Service]\nExecStart=/bin/sleep infinity\n"),
        (
            "oneshot",
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
        ),
        ("failed", "[Service]\nType=oneshot\nExecStart=/bin/false\n"),
        ("stopped", "[Service]\nExecStart=/bin/sleep infinity\n"),
        (
            "looping",
            "[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=1h\n",
        ),
    ];
    let c = Container::boot("unit-states");
    install(&c);
    let mut cfg = String::from("targets:\n");
    for (name, text) in units {
        c.write(&format!("/etc/systemd/system/{name}.service"), text, 0o644);
        cfg.push_str(&format!(
            "  - {{name: {name}, checks: [{{systemd_unit: {name}.service}}], action: none}}\n"
        ));
    }
    cfg.push_str("  - {name: unknown, checks: [{systemd_unit: nosuch.service}], action: none}\n");
    config(&c, 30, &cfg);
    c.ok("systemctl daemon-reload && systemctl start web oneshot looping; systemctl start failed; true");
    c.wait(
        "looping waiting to restart itself",
        || c.prop("looping.service", "SubState") == "auto-restart",
        "systemctl status looping --no-pager",
    );
    let r = c.sh("neon-watchdog check -v -c /etc/neon-watchdog/config.yml");
    assert_eq!(r.code, Some(2), "{r}");
    let line = |target: &str| {
        r.stderr
            .lines()
            .find(|l| l.contains("msg=check") && l.contains(&format!("target={target} ")))
            .unwrap_or_else(|| panic!("no check line of {target}: {r}"))
            .to_string()
    };
    let web_pid = c.prop("web.service", "MainPID");
    let web = line("web");
    assert!(
        web.contains("result=OK")
            && web.contains("state=active/running")
            && web.contains(&format!("pid={web_pid}")),
        "{web}"
    );
    assert!(line("oneshot").contains("result=OK"), "{}", line("oneshot"));
    for (target, says) in [
        ("failed", "failed (Result=exit-code)"),
        ("stopped", "inactive (dead)"),
        ("looping", "activating (auto-restart)"),
        ("unknown", "unit nosuch.service not found"),
    ] {
        let l = line(target);
        assert!(
            l.contains("result=FAIL") && l.contains(says),
            "{target}: {l}"
        );
    }
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("msg=\"pass done\"") && l.contains("healthy=2 failing=4")),
        "{r}"
    );
}
