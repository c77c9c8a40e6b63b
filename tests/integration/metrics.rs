//! Metrics as Prometheus users expect of a batch job: counters that survive between oneshot
//! passes, the last healthy time per target, the build and the interval; and the shipped
//! alerting rules, checked and unit-tested with the real `promtool`.

use crate::harness::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo("packaging/prometheus"))
        .output()
        .expect("promtool (Debian package prometheus) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The value of the series `name` (a whole series text, labels included).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn watched() -> Test {
    watched_at("{dir}/state.json")
}

fn watched_at(state_file: &str) -> Test {
    Test::new().config(&format!(
        r#"
state_file: {state_file}
interval_seconds: 30
metrics: {{textfile: "{{dir}}/nw.prom"}}
targets:
  - name: app
    checks:
      - command: ["/bin/test", "-e", "{{dir}}/up"]
      - command: ["/bin/test", "-e", "{{dir}}/up"]
    action: none
"#
    ))
}

#[test]
fn counters_survive_between_oneshot_passes() {
    let t = watched();
    t.run(&["check"]).assert_code(2);
    t.run(&["check"]).assert_code(2);
    let text = t.read("nw.prom");
    assert_eq!(
        value(&text, "neon_watchdog_passes_total"),
        Some(2.0),
        "{text}"
    );
    // two failing checks a pass, two passes
    let failed = "neon_watchdog_target_checks_failed_total{target=\"app\"}";
    assert_eq!(value(&text, failed), Some(4.0), "{text}");
    assert!(
        !text.contains("neon_watchdog_target_last_healthy_timestamp_seconds{"),
        "never healthy, yet a last-healthy time:\n{text}"
    );
    assert_eq!(value(&text, "neon_watchdog_pass_ok"), Some(1.0), "{text}");
    assert_eq!(value(&text, "neon_watchdog_interval_seconds"), Some(30.0));
    let build = format!(
        "neon_watchdog_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&text, &build), Some(1.0), "{text}");
    // healthy now: the failures stay counted, the last healthy time appears
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    let text = t.read("nw.prom");
    assert_eq!(value(&text, failed), Some(4.0), "{text}");
    assert_eq!(value(&text, "neon_watchdog_passes_total"), Some(3.0));
    let healthy = value(
        &text,
        "neon_watchdog_target_last_healthy_timestamp_seconds{target=\"app\"}",
    )
    .expect("a last healthy time");
    let last_run = value(&text, "neon_watchdog_last_run_timestamp_seconds").expect("last run");
    assert!(
        healthy <= last_run && healthy > last_run - 60.0,
        "{healthy} vs {last_run}"
    );
    // what promtool says of the whole text
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(t.path("nw.prom")).expect("open"))
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_pass_in_trouble_of_its_own_says_so() {
    // the state cannot be saved: a file where its directory should be
    let t = watched_at("{dir}/blocked/state.json");
    t.write("blocked", "a file where a directory should be");
    t.write("up", "");
    t.run(&["check"]).assert_code(1);
    let text = t.read("nw.prom");
    assert_eq!(value(&text, "neon_watchdog_pass_ok"), Some(0.0), "{text}");
}

#[test]
fn the_shipped_alert_rules_pass_promtool_and_their_unit_tests() {
    promtool(&["check", "rules", "neon-watchdog.rules.yml"]);
    let out = promtool(&["test", "rules", "neon-watchdog.rules.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    // every series the rules use is one the watchdog writes
    let t = watched();
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    let text = t.read("nw.prom");
    let rules = std::fs::read_to_string(repo("packaging/prometheus/neon-watchdog.rules.yml"))
        .expect("rules");
    let used: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("neon_watchdog_"))
        .collect();
    assert!(used.len() >= 4, "{used:?}");
    for name in used {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "the rules use {name}, which the watchdog does not write:\n{text}"
        );
    }
}

/// Checks are labelled by their `name:`, else their kind (`command`, `command#2`): never by
/// their description, which holds thresholds and values a secret may hide in. Logs still
/// show the description (two identical ones told apart).
#[test]
fn checks_are_labelled_by_name_else_by_kind() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
metrics: {textfile: "{dir}/nw.prom"}
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
        name: liveness
      - command: ["/bin/true"]
      - command: ["/bin/true"]
      - tcp_port: 1
    action: none
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["msg=check", "check=liveness"], "result=OK")
        .assert_lines(&["msg=check", "check=\"command /bin/true\""], 1)
        .assert_lines(&["msg=check", "check=\"command /bin/true #2\""], 1);
    let text = t.read("nw.prom");
    for (series, v) in [
        (
            "neon_watchdog_check_up{target=\"app\",check=\"liveness\",kind=\"command\"}",
            1.0,
        ),
        (
            "neon_watchdog_check_up{target=\"app\",check=\"command#2\",kind=\"command\"}",
            1.0,
        ),
        (
            "neon_watchdog_check_up{target=\"app\",check=\"command#3\",kind=\"command\"}",
            1.0,
        ),
        (
            "neon_watchdog_check_up{target=\"app\",check=\"tcp_port\",kind=\"tcp_port\"}",
            0.0,
        ),
    ] {
        assert_eq!(value(&text, series), Some(v), "{series} in:\n{text}");
    }
    assert!(!text.contains("/bin/true"), "{text}");
    // test-config says what each check is called in the metrics
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_stdout_contains(
            "1. liveness: command /bin/true, timeout 5s (metrics: check=\"liveness\")",
        )
        .assert_stdout_contains("3. command /bin/true, timeout 5s (metrics: check=\"command#3\")");
    // a name given twice in a target is an error that says why
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - {command: ["/bin/true"], name: live}
      - {command: ["/bin/false"], name: live}
    action: none
"#,
    );
    t.run(&["test-config"])
        .assert_code(78)
        .assert_stderr_contains(
            "targets[0].checks[1].name: \"live\" names another check of this target too",
        );
}

/// Issue 19: changing a threshold (or anything else in a check's description) keeps its
/// series: dashboards and alerts on `check="disk_free"` go on working.
#[test]
fn changing_a_threshold_keeps_the_series() {
    let config = |min: u32| {
        format!(
            r#"
state_file: {{dir}}/state.json
metrics: {{textfile: "{{dir}}/nw.prom"}}
targets:
  - name: app
    checks:
      - disk_free: "{{dir}}"
        min_free_mb: {min}
      - tcp_port: 1
        timeout_seconds: {min}
    action: none
"#
        )
    };
    let t = Test::new().config(&config(1));
    t.run(&["check"]).assert_code(2);
    let series = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("neon_watchdog_check_"))
            .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s).to_string())
            .collect()
    };
    let before = series(&t.read("nw.prom"));
    assert_eq!(before.len(), 4, "{before:?}");
    std::fs::write(t.config_path(), t.expand(&config(2))).expect("rewrite the config");
    t.run(&["check"]).assert_code(2);
    assert_eq!(series(&t.read("nw.prom")), before);
}

/// One raw HTTP/1.1 GET on 127.0.0.1:`port` with `Host: host`: the status code and the body,
/// and how long the answer took (from the connect). None when no answer came within `limit`.
fn get_as(port: u16, path: &str, host: &str, limit: Duration) -> Option<(u16, String, Duration)> {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Prometheus/2.45.3\r\nAccept: text/plain\r\n\r\n").ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string(), started.elapsed()))
}

/// A daemon with one healthy target, serving on a free port and writing the textfile; one
/// pass an hour, so that what `/metrics` serves stays the textfile's text.
fn served() -> (Test, u16) {
    let port = free_port();
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
interval_seconds: 3600
metrics: {{textfile: "{{dir}}/nw.prom", listen: "127.0.0.1:{port}"}}
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#
    ));
    (t, port)
}

/// Security review: the listener served one connection at a time and gave each 3 s to send its
/// request, so 20 idle connections held `/healthz` for a minute (and whoever kept reconnecting,
/// for ever). Now 50 idle connections, held open, delay neither `/healthz` nor `/metrics`, and
/// `/metrics` is still the textfile's text byte for byte.
#[test]
fn idle_connections_keep_neither_healthz_nor_metrics_from_answering() {
    let (t, port) = served();
    let mut run = t.spawn(&["run"]);
    let host = format!("127.0.0.1:{port}");
    assert!(
        wait_until(EVENT_LIMIT, || get_as(port, "/healthz", &host, EVENT_LIMIT)
            .is_some_and(|(code, _, _)| code == 200)),
        "/healthz never answered 200:\n{}",
        run.stderr_so_far()
    );
    // a local user's connections that never send a byte, all open at once
    let idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect an idle client"))
        .collect();
    // the old listener took 3 s per idle connection ahead of a request: 150 s here
    let limit = Duration::from_secs(20);
    for round in 0..3 {
        let (code, body, took) = get_as(port, "/healthz", &host, limit)
            .unwrap_or_else(|| panic!("round {round}: no answer to /healthz within {limit:?} while 50 idle connections are open"));
        assert_eq!((code, body.as_str()), (200, "ok\n"), "round {round}");
        assert!(took < limit, "round {round}: /healthz took {took:?}");
        let (code, body, took) = get_as(port, "/metrics", &host, limit)
            .unwrap_or_else(|| panic!("round {round}: no answer to /metrics within {limit:?} while 50 idle connections are open"));
        assert_eq!(code, 200, "round {round}: {body}");
        assert!(took < limit, "round {round}: /metrics took {took:?}");
        assert_eq!(
            body,
            t.read("nw.prom"),
            "/metrics is not the textfile's text"
        );
    }
    drop(idle);
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run exits on SIGTERM")
        .assert_code(0);
}

/// STAND-IN for systemd's end of NOTIFY_SOCKET (as in sd_notify.rs): the STATUS= lines `run`
/// sends, until one holds `what` (or `limit` passes).
fn status_line_with(sock: &UnixDatagram, what: &str, limit: Duration) -> Option<String> {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(l) = msg
                .lines()
                .find(|l| l.starts_with("STATUS=") && l.contains(what))
            {
                return Some(l.to_string());
            }
        }
    }
    None
}

/// Security review: a local user who binds `metrics.listen` first serves a fake `/healthz` and
/// status page; the daemon only logged that it went on without the endpoint. Now it is an
/// error that names the squatter (a real HTTP server, started as `nobody`) and says what
/// answers there is not the watchdog, and systemd's STATUS line says so too.
#[test]
fn a_port_held_by_another_process_is_an_error_that_names_it() {
    let (t, port) = served();
    let squatter = ChildGuard::spawn({
        let mut c = Command::new(PYTHON);
        c.args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    });
    wait_for_port(port, EVENT_LIMIT);
    let notify = t.path("notify.sock");
    let sock = UnixDatagram::bind(&notify).expect("bind the notify socket");
    let t = t.env("NOTIFY_SOCKET", &notify.display().to_string());
    let mut run = t.spawn(&["run"]);
    let status = status_line_with(&sock, "healthy", EVENT_LIMIT);
    let pid = squatter.pid();
    let stderr = run.stderr_so_far();
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{port}")) && l.contains("another process"))
        .unwrap_or_else(|| panic!("no line says another process holds the port:\n{stderr}"));
    assert!(line.contains("level=error"), "{line}");
    for needle in [
        &format!("pid {pid} (python3)") as &str,
        "uid 65534 (nobody)",
        "is not this watchdog",
        "metrics.listen",
    ] {
        assert!(line.contains(needle), "{needle:?} missing in:\n{line}");
    }
    let status = status.expect("no STATUS= line after the first pass");
    assert!(
        status.contains(&format!(
            "127.0.0.1:{port} is held by another process (pid {pid})"
        )) && status.contains("not this watchdog"),
        "{status}"
    );
    // the squatter still answers: the daemon took nothing from it, and said so
    assert!(port_open(port));
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run exits on SIGTERM")
        .assert_code(0);
}
