//! `run` under `Type=notify` + `WatchdogSec=`: READY=1, WATCHDOG=1 from the loop (never from a
//! side thread that would keep pinging while the loop hangs), RELOADING=1/READY=1 around a
//! SIGHUP, STOPPING=1 on SIGTERM, a STATUS= line, as datagrams. The real systemd (the system
//! suite, tests/system/systemd/daemon.rs) proves the effects: active under Type=notify, the
//! STATUS line in `systemctl status`, WatchdogSec restarting a stopped loop, reload. What it
//! cannot show is kept here with a STAND-IN for systemd's end of the socket (a datagram socket
//! bound by the test, speaking sd_notify(3)): each message and its order, the ping cadence
//! (half of WATCHDOG_USEC, not a flood), that children do not inherit NOTIFY_SOCKET, and a
//! socket that cannot be used.

use crate::harness::*;
use nix::sys::signal::Signal;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// STAND-IN for systemd's end of NOTIFY_SOCKET: what it received, with when.
struct Systemd {
    sock: UnixDatagram,
    got: Vec<(Instant, String)>,
}

impl Systemd {
    fn bind(t: &Test) -> (Systemd, String) {
        let path = t.path("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        (
            Systemd {
                sock,
                got: Vec::new(),
            },
            path.display().to_string(),
        )
    }

    /// Read messages until `pred` holds for what was received (or `limit` passes).
    fn until(&mut self, limit: Duration, pred: impl Fn(&[(Instant, String)]) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if pred(&self.got) {
                return true;
            }
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.got.push((Instant::now(), msg));
            }
        }
        pred(&self.got)
    }

    fn count(got: &[(Instant, String)], what: &str) -> usize {
        got.iter()
            .filter(|(_, m)| m.lines().any(|l| l == what))
            .count()
    }

    /// When each WATCHDOG=1 came.
    fn pings(&self) -> Vec<Instant> {
        self.got
            .iter()
            .filter(|(_, m)| m == "WATCHDOG=1")
            .map(|(at, _)| *at)
            .collect()
    }

    fn texts(&self) -> Vec<&str> {
        self.got.iter().map(|(_, m)| m.as_str()).collect()
    }
}

#[test]
fn run_tells_systemd_ready_alive_reloading_and_stopping() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
interval_seconds: 1
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
  - name: down
    checks:
      - command: ["/bin/false"]
    action: none
"#,
    );
    let (mut systemd, path) = Systemd::bind(&t);
    // a 2 s watchdog: a ping at least every second
    let t = t
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "2000000");
    let mut run = t.spawn(&["run"]);

    assert!(
        systemd.until(Duration::from_secs(10), |g| Systemd::count(g, "READY=1")
            >= 1
            && Systemd::count(g, "WATCHDOG=1") >= 3
            && g.iter().any(|(_, m)| m.contains(
                "STATUS=1 healthy, 1 failing (down), 0 unknown; last pass"
            ))),
        "got {:?}\n{}",
        systemd.texts(),
        run.stderr_so_far()
    );
    assert!(
        systemd.got[0].1.starts_with("READY=1"),
        "READY=1 first: {:?}",
        systemd.texts()
    );
    // pings every half period, not a flood
    let pings = systemd.pings();
    for w in pings.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(900),
            "pings {:?} apart",
            w[1] - w[0]
        );
    }

    // SIGHUP: RELOADING=1 (with the monotonic time), then READY=1 again
    let before = systemd.got.len();
    run.signal(Signal::SIGHUP);
    assert!(
        systemd.until(Duration::from_secs(10), |g| {
            let after = &g[before..];
            let r = after
                .iter()
                .position(|(_, m)| m.starts_with("RELOADING=1\nMONOTONIC_USEC="));
            let ready = after
                .iter()
                .rposition(|(_, m)| m.starts_with("READY=1\nSTATUS="));
            matches!((r, ready), (Some(r), Some(ready)) if ready > r)
        }),
        "got {:?}",
        systemd.texts()
    );

    // SIGTERM: STOPPING=1, exit 0
    run.signal(Signal::SIGTERM);
    let out = run
        .wait_timeout(EVENT_LIMIT)
        .expect("run did not exit on SIGTERM");
    out.assert_code(0);
    systemd.until(Duration::from_millis(500), |g| {
        Systemd::count(g, "STOPPING=1") >= 1
    });
    assert_eq!(
        Systemd::count(&systemd.got, "STOPPING=1"),
        1,
        "{:?}",
        systemd.texts()
    );
}

#[test]
fn a_hung_loop_stops_the_pings() {
    // the second pass hangs 4 s in a check (its timeout is 20 s): a ping from a side thread
    // would hide that from systemd; the loop's own pings stop for as long
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
interval_seconds: 1
timeout_seconds: 20
targets:
  - name: app
    checks:
      - command: ["/bin/sh", "-c", "if [ -e {dir}/hung-once ]; then exit 0; fi; touch {dir}/hung-once; exec sleep 4"]
    action: none
"#,
    );
    let (mut systemd, path) = Systemd::bind(&t);
    let t = t
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "1000000");
    let mut run = t.spawn(&["run"]);
    // READY=1, the hung first pass, then pings again
    assert!(
        systemd.until(Duration::from_secs(20), |g| {
            g.iter().any(|(_, m)| m.starts_with("STATUS=1 healthy"))
                && Systemd::count(g, "WATCHDOG=1") >= 3
        }),
        "got {:?}\n{}",
        systemd.texts(),
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit on SIGTERM");
    let pings = systemd.pings();
    let longest = pings
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        longest >= Duration::from_secs(3),
        "pings went on while the pass hung (longest gap {longest:?}): {:?}",
        systemd.texts()
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_children_do_not_inherit_it() {
    // NOTIFY_SOCKET given: the commands run by the watchdog do not see it
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
interval_seconds: 1
targets:
  - name: app
    checks:
      - command: ["/bin/sh", "-c", "echo \"[$NOTIFY_SOCKET][$WATCHDOG_USEC]\" >> {dir}/env"]
    action: none
"#,
    );
    let (mut systemd, path) = Systemd::bind(&t);
    let t = t
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "2000000");
    let mut run = t.spawn(&["run"]);
    wait_for_file(&t.path("env"), EVENT_LIMIT);
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT).expect("exit");
    assert_eq!(t.read("env").lines().next(), Some("[][]"));
    systemd.until(Duration::from_millis(300), |_| false);
    assert!(!systemd.got.is_empty());

    // `check` (the timer's oneshot) sends nothing, even with NOTIFY_SOCKET set
    let t2 = Test::new().config(
        "state_file: {dir}/state.json\ntargets:\n  - name: a\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
    );
    let (mut quiet, path) = Systemd::bind(&t2);
    let t2 = t2.env("NOTIFY_SOCKET", &path);
    t2.run(&["check"]).assert_code(0);
    quiet.until(Duration::from_millis(300), |_| false);
    assert!(quiet.got.is_empty(), "{:?}", quiet.texts());
}

#[test]
fn a_notify_socket_that_cannot_be_used_is_said_once() {
    // NOTIFY_SOCKET names a regular file: under Type=notify systemd would only report a start
    // timeout; the watchdog says why, once, and runs on
    let t = Test::new().config(
        "state_file: {dir}/state.json\ninterval_seconds: 1\ntargets:\n  - name: a\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
    );
    t.write("not-a-socket", "");
    let path = t.path("not-a-socket").display().to_string();
    let t = t
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "1000000");
    let mut run = t.spawn(&["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |e| e.matches("msg=\"pass done\"").count() >= 2),
        "{}",
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    let out = run
        .wait_timeout(EVENT_LIMIT)
        .expect("run did not exit on SIGTERM");
    out.assert_code(0);
    assert_eq!(
        out.stderr
            .matches("cannot tell systemd (NOTIFY_SOCKET)")
            .count(),
        1,
        "{out}"
    );
}
