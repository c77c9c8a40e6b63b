//! The package's life in both modes: install, upgrade, remove, reinstall, purge, as README's
//! "Upgrade and uninstall" says it goes.

use super::nspawn::Container;
use super::package::{apt_install, config, deb, install, journal, upgrade_deb, version_of};

fn gone(c: &Container, path: &str) -> bool {
    !c.sh(&format!("test -e {path}")).ok()
}

#[test]
fn timer_mode_upgrade_remove_reinstall_purge() {
    let c = Container::boot("life-timer");
    install(&c);
    let timer = "neon-watchdog.timer";
    assert_eq!(c.prop(timer, "ActiveState"), "active");
    // a tick that comes (the package's 30 s is not what is tested): 1 s after the timer
    // starts, then 1 s after each pass (an empty assignment resets all of its timers)
    c.write(
        "/etc/systemd/system/neon-watchdog.timer.d/fast.conf",
        "[Timer]\nOnUnitActiveSec=\nOnActiveSec=1s\nOnUnitActiveSec=1s\n",
        0o644,
    );
    c.ok("systemctl daemon-reload && systemctl restart neon-watchdog.timer");
    let passes = || {
        journal(&c, "-u neon-watchdog.service")
            .iter()
            .filter(|e| {
                e["MESSAGE"]
                    .as_str()
                    .is_some_and(|m| m.contains("msg=\"pass done\""))
            })
            .count()
    };
    c.wait(
        "a pass",
        || passes() > 0,
        "systemctl status neon-watchdog.timer --no-pager",
    );

    // upgrade: the edited config kept, the timer still runs the new binary
    c.ok("echo '# mine' >> /etc/neon-watchdog/config.yml");
    apt_install(&c, &upgrade_deb());
    let v = format!("{}+systest1", version_of(&deb()));
    assert_eq!(c.ok("dpkg-query -W -f '${Version}' neon-watchdog"), v);
    assert!(c
        .read("/etc/neon-watchdog/config.yml")
        .ends_with("# mine\n"));
    assert_eq!(c.prop(timer, "ActiveState"), "active");
    let before = passes();
    c.wait(
        "a pass after the upgrade",
        || passes() > before,
        "systemctl status neon-watchdog.timer --no-pager",
    );

    // remove: stopped, config and state kept
    c.ok("apt-get remove -y -q neon-watchdog 2>&1");
    assert_ne!(c.prop(timer, "ActiveState"), "active");
    assert!(gone(&c, "/usr/bin/neon-watchdog"));
    assert!(c
        .read("/etc/neon-watchdog/config.yml")
        .ends_with("# mine\n"));
    assert!(!gone(&c, "/var/lib/neon-watchdog/state.json"));

    // reinstall: the timer runs again
    install(&c);
    assert_eq!(c.prop(timer, "ActiveState"), "active");
    assert_eq!(
        c.ok("systemctl is-enabled neon-watchdog.timer").trim(),
        "enabled"
    );
    let before = passes();
    c.wait(
        "a pass after the reinstall",
        || passes() > before,
        "systemctl status neon-watchdog.timer --no-pager",
    );

    // purge: nothing left but the operator's drop-in
    c.ok("apt-get purge -y -q neon-watchdog 2>&1");
    assert!(
        gone(&c, "/etc/neon-watchdog"),
        "{}",
        c.sh("ls -la /etc/neon-watchdog")
    );
    assert!(gone(&c, "/var/lib/neon-watchdog"));
    assert_eq!(c.prop(timer, "LoadState"), "not-found");
    assert_ne!(c.prop(timer, "ActiveState"), "active");
}

/// Finding (a): in daemon mode, `apt remove` then reinstalling left nothing running (prerm
/// stopped the daemon; postinst only started the timer, disabled in that mode).
/// Finding (d): daemons that exec actions started outlive the package's removal (KillMode=
/// process), as README's "Upgrade and uninstall" says.
#[test]
fn daemon_mode_upgrade_remove_reinstall_purge() {
    let c = Container::boot("life-daemon");
    install(&c);
    let unit = "neon-watchdog-daemon.service";
    config(
        &c,
        1,
        "targets:\n\
         \x20 - name: leftover\n\
         \x20   checks: [{pid_file: /var/lib/leftover.pid}]\n\
         \x20   policy: {fail_threshold: 1}\n\
         \x20   action:\n\
         \x20     exec:\n\
         \x20       start: ['/bin/sh', '-c', 'sleep 86400 & echo $! > /var/lib/leftover.pid']\n",
    );
    // README: the loop instead of the timer
    c.ok("systemctl disable --now neon-watchdog.timer && systemctl enable --now neon-watchdog-daemon.service");
    assert_eq!(c.prop(unit, "ActiveState"), "active");
    c.wait(
        "the exec action's daemon",
        || c.sh("kill -0 $(cat /var/lib/leftover.pid)").ok(),
        "journalctl -u neon-watchdog-daemon --no-pager | tail",
    );
    let leftover = c.read("/var/lib/leftover.pid").trim().to_string();

    // upgrade: a new daemon (the new binary), still the loop, not the timer
    let pid = c.prop(unit, "MainPID");
    apt_install(&c, &upgrade_deb());
    assert!(c.wait_active(unit));
    assert_ne!(
        c.prop(unit, "MainPID"),
        pid,
        "the daemon was not restarted on upgrade"
    );
    assert_ne!(c.prop("neon-watchdog.timer", "ActiveState"), "active");
    assert!(
        c.sh(&format!("kill -0 {leftover}")).ok(),
        "the upgrade killed the action's daemon"
    );

    // remove: the loop stops, the action's daemon lives on
    c.ok("apt-get remove -y -q neon-watchdog 2>&1");
    assert_ne!(c.prop(unit, "ActiveState"), "active");
    assert!(
        c.sh(&format!("kill -0 {leftover}")).ok(),
        "remove killed the action's daemon"
    );

    // reinstall: the operator's choice, the loop, runs again (and not the timer)
    install(&c);
    assert!(
        c.wait_active(unit),
        "nothing runs after remove + reinstall in daemon mode: {}",
        c.sh("systemctl status neon-watchdog-daemon neon-watchdog.timer --no-pager")
    );
    assert_ne!(c.prop("neon-watchdog.timer", "ActiveState"), "active");
    assert_eq!(
        c.ok("systemctl is-enabled neon-watchdog-daemon.service")
            .trim(),
        "enabled"
    );

    // purge: all of ours gone; the action's daemon still runs, as README promises, and
    // README's way to stop it works
    c.ok("apt-get purge -y -q neon-watchdog 2>&1");
    assert!(gone(&c, "/etc/neon-watchdog"));
    assert!(gone(&c, "/var/lib/neon-watchdog"));
    assert_ne!(c.prop(unit, "ActiveState"), "active");
    assert!(
        c.sh(&format!("kill -0 {leftover}")).ok(),
        "purge killed the action's daemon"
    );
    assert!(
        c.ok(&format!("cat /proc/{leftover}/cgroup"))
            .contains("neon-watchdog-daemon.service"),
        "the action's daemon is not where README says it is"
    );
    c.ok("systemctl kill --signal=SIGTERM --kill-whom=all neon-watchdog-daemon.service");
    c.wait(
        "the action's daemon stopped by README's recipe",
        || !c.sh(&format!("kill -0 {leftover}")).ok(),
        "systemctl status neon-watchdog-daemon --no-pager",
    );
}
