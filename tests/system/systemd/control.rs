//! The control socket under the real systemd: the daemon unit `neon-watchdog install
//! --daemon` writes runs with its sandbox (ProtectSystem=full, RuntimeDirectory=), listens on
//! /run/neon-watchdog/control.sock (0600, root's), and a verb given inside the container
//! reaches it: the daemon applies it to the state it holds (its journal says so, by=operator)
//! at once, where without the socket the verb would wait for the daemon's lock and exit 75.
//! `systemctl reload` keeps the pause (same process, same memory); stopping the unit removes
//! the socket.

use super::nspawn::Container;
use super::package::{config, install, journal, messages};

const UNIT: &str = "neon-watchdog-daemon.service";
const SOCK: &str = "/run/neon-watchdog/control.sock";

#[test]
fn a_verb_reaches_the_daemon_unit_through_its_socket_and_reload_keeps_the_pause() {
    let c = Container::boot("daemon-control");
    install(&c);
    config(
        &c,
        1,
        "targets:\n\
         \x20 - name: web\n    checks: [{tcp_port: '127.0.0.1:80'}]\n    action: none\n\
         \x20 - name: ghost\n    checks: [{tcp_port: '127.0.0.1:9'}]\n    action: none\n",
    );
    c.ok("neon-watchdog install --daemon -c /etc/neon-watchdog/config.yml");
    assert!(
        c.wait_active(UNIT),
        "{}",
        c.sh("systemctl status neon-watchdog-daemon --no-pager")
    );
    c.wait(
        "the control socket",
        || c.sh(&format!("test -S {SOCK}")).ok(),
        "journalctl -u neon-watchdog-daemon --no-pager | tail -20",
    );
    assert_eq!(
        c.ok(&format!("stat -c '%a %U %F' {SOCK}")).trim(),
        "600 root socket"
    );
    assert_eq!(
        c.ok("stat -c '%a %U' /run/neon-watchdog").trim(),
        "700 root"
    );
    let pid = c.prop(UNIT, "MainPID");

    let out = c.ok("neon-watchdog pause ghost --reason 'disk swap' 2>&1");
    assert!(
        out.contains("ghost: paused until `neon-watchdog resume`"),
        "{out}"
    );
    let said = messages(&journal(&c, "-u neon-watchdog-daemon"));
    assert!(
        said.iter().any(|m| m.contains("target paused")
            && m.contains("target=ghost")
            && m.contains("by=operator")),
        "the daemon did not apply the pause: {said:?}"
    );

    let r = c.sh("systemctl reload neon-watchdog-daemon");
    assert!(r.ok(), "reload: {r}");
    assert_eq!(c.prop(UNIT, "MainPID"), pid, "reload restarted the daemon");
    // a pass after the reload: the daemon still holds the pause (and saved it)
    let passes = || {
        serde_json::from_str::<serde_json::Value>(&c.read("/var/lib/neon-watchdog/state.json"))
            .ok()
            .and_then(|v| v["passes_total"].as_u64())
            .unwrap_or(0)
    };
    let after = passes();
    c.wait(
        "two passes after the reload",
        || passes() >= after + 2,
        "journalctl -u neon-watchdog-daemon --no-pager | tail",
    );
    let st: serde_json::Value =
        serde_json::from_str(&c.read("/var/lib/neon-watchdog/state.json")).expect("state");
    assert_eq!(
        st["targets"]["ghost"]["paused"]["reason"], "disk swap",
        "{st}"
    );
    let out = c.ok("neon-watchdog resume ghost");
    assert!(out.contains("ghost: resumed"), "{out}");
    // not root (the config readable, the socket not): refused, nothing done
    c.ok("chmod 644 /etc/neon-watchdog/config.yml");
    let out = c.sh("setpriv --reuid=nobody --regid=nogroup --clear-groups neon-watchdog pause ghost -c /etc/neon-watchdog/config.yml");
    assert_eq!(out.code, Some(77), "{out}");
    assert!(
        out.stdout.contains("permission denied") && out.stdout.contains("run it as root"),
        "{out}"
    );
    let st: serde_json::Value =
        serde_json::from_str(&c.read("/var/lib/neon-watchdog/state.json")).expect("state");
    assert!(st["targets"]["ghost"]["paused"].is_null(), "{st}");

    c.ok("systemctl stop neon-watchdog-daemon");
    assert!(
        !c.sh(&format!("test -e {SOCK}")).ok(),
        "the socket outlived the daemon"
    );
}
