//! Against a real dockerd (Debian's docker.io), started by the tests ([`dockerd`]): the docker
//! check's verdicts and messages for running, healthy, starting, unhealthy, paused, killed,
//! OOM-killed, stopped, created, missing and restart-looping containers, and the docker
//! action's observable effect (the container runs again with a new `StartedAt`, its HTTP
//! answers). The watchdog is the real binary, pointed at the daemon with `docker_socket:`.
//!
//! What a real engine cannot be made to do (malformed, oversized or hostile answers, hangs,
//! Podman's answers) is tested against stand-ins in `tests/integration/docker.rs`.

#[path = "../integration/harness.rs"]
#[allow(dead_code)]
mod harness;

mod dockerd;

use dockerd::{engine, Container};
use harness::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A bound for waits on the engine: it only ends a hung test.
const WAIT: Duration = Duration::from_secs(60);

/// A test dir whose config has `docker_socket:` set to the test daemon's socket and
/// `targets` (YAML, its lines indented by two spaces) below.
fn config(targets: &str) -> Test {
    let socket = engine().socket.display().to_string();
    Test::new().config(&format!(
        "state_file: {{dir}}/state.json\ndocker_socket: {socket}\ntargets:\n{targets}"
    ))
}

/// An HTTP server container on a free 127.0.0.1 port (host network: the bridge is off), with
/// tini as PID 1 (`--init`) so that SIGTERM stops it at once. `opts` come before the image.
fn web(what: &str, opts: &[&str]) -> (Container, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec!["--init", "--network", "host"];
    all.extend(opts);
    let c = Container::run(
        what,
        &all,
        &["/bin/busybox", "httpd", "-f", "-p", &listen, "-h", "/www"],
    );
    wait_for_port(port, WAIT);
    (c, port)
}

/// The body of `GET /` on 127.0.0.1:port, if the server answers 200.
fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer
        .split(' ')
        .nth(1)
        .is_some_and(|status| status == "200")
        .then(|| answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

/// The value of `key=` on a logfmt line (unquoted; `None` if absent).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"').unwrap_or(q.len())],
        None => &rest[..rest.find(' ').unwrap_or(rest.len())],
    })
}

trait FieldAssert {
    fn assert_field(&self, needles: &[&str], key: &str, value: &str) -> &Self;
}

impl FieldAssert for Output {
    /// The single line with `needles` has `key=value` (the whole value).
    #[track_caller]
    fn assert_field(&self, needles: &[&str], key: &str, value: &str) -> &Self {
        let line = self.line(needles);
        assert_eq!(field(line, key), Some(value), "{key}= of {line}\n{self}");
        self
    }
}

fn started_at(c: &Container) -> String {
    c.state()["StartedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn health(state: &Value) -> &str {
    state["Health"]["Status"].as_str().unwrap_or("")
}

fn kill_main_process(c: &Container) {
    let pid = c.state()["Pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "container {} has no process", c.name);
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill the container's process");
    c.wait_state("exited", |s| s["Status"] == "exited");
}

// ---------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------

#[test]
fn running_containers_pass_with_their_health_shown() {
    let (plain, port) = web("plain", &[]);
    let probe = format!("wget -q -O /dev/null http://127.0.0.1:{port}/");
    let healthy = Container::run(
        "healthy",
        &[
            "--init",
            "--network",
            "host",
            "--health-cmd",
            &probe,
            "--health-interval",
            "1s",
        ],
        &["/bin/busybox", "sleep", "100000"],
    );
    // the first probe runs after the interval: the container stays `starting` meanwhile
    let starting = Container::run(
        "starting",
        &[
            "--init",
            "--network",
            "none",
            "--health-cmd",
            "true",
            "--health-interval",
            "300s",
        ],
        &["/bin/busybox", "sleep", "100000"],
    );
    healthy.wait_state("healthy", |s| health(s) == "healthy");
    assert_eq!(health(&starting.state()), "starting");
    let t = config(&format!(
        r#"
  - name: plain
    checks: [{{docker: {plain}}}, {{http: "http://127.0.0.1:{port}/"}}]
    action: none
  - name: healthy
    checks: [{{docker: {healthy}}}]
    action: none
  - name: starting
    checks: [{{docker: {starting}}}]
    action: none
"#,
        plain = plain.name,
        healthy = healthy.name,
        starting = starting.name,
    ));
    let pid = plain.state()["Pid"].as_i64().unwrap_or(0);
    t.run(&["check", "-v"])
        .assert_code(0)
        .assert_field(
            &["result=OK", "target=plain ", "check=\"docker"],
            "state",
            "running",
        )
        .assert_line_contains(
            &["result=OK", "target=plain ", "check=\"docker"],
            &format!("pid={pid} "),
        )
        .assert_line_contains(
            &["result=OK", "target=plain ", "check=\"http"],
            "status=200",
        )
        .assert_line_contains(&["result=OK", "target=healthy "], "state=running/healthy")
        .assert_line_contains(&["result=OK", "target=starting "], "state=running/starting");
}

#[test]
fn an_unhealthy_container_fails_with_its_probe_output() {
    let sick = Container::run(
        "sick",
        &[
            "--init",
            "--network",
            "none",
            "--health-cmd",
            "echo probe failed: /tmp/ready is missing; exit 1",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        &["/bin/busybox", "sleep", "100000"],
    );
    sick.wait_state("unhealthy", |s| health(s) == "unhealthy");
    let t = config(&format!(
        "  - name: sick\n    checks: [{{docker: {}}}]\n    action: none\n",
        sick.name
    ));
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=sick "], "state=running/unhealthy")
        .assert_line_contains(
            &["result=FAIL", "target=sick "],
            "failed health checks): probe failed: /tmp/ready is missing\"",
        );
    let line = out.line(&["result=FAIL", "target=sick "]);
    let streak: u32 = line
        .split("err=\"unhealthy (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failed-probe count in {line}"));
    assert!(streak >= 1, "{line}");
}

#[test]
fn paused_killed_oom_killed_stopped_created_and_missing_containers_fail() {
    let (paused, _) = web("paused", &[]);
    paused.cli("pause");
    // a container killed with -9 (a crash) whose HEALTHCHECK had passed: the engine keeps
    // the last health of a dead container, which says nothing about it any more
    let killed = Container::run(
        "killed",
        &[
            "--init",
            "--network",
            "none",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
        ],
        &["/bin/busybox", "sleep", "100000"],
    );
    killed.wait_state("healthy", |s| health(s) == "healthy");
    kill_main_process(&killed);
    // a shell filling a variable in an 8 MiB cgroup
    let oom = Container::run(
        "oom",
        &["--network", "none", "--memory", "8m", "--memory-swap", "8m"],
        &[
            "/bin/sh",
            "-c",
            "x=$(yes | head -c 200000000); echo survived",
        ],
    );
    oom.wait_state("OOM killed", |s| s["Status"] == "exited");
    assert_eq!(oom.state()["OOMKilled"], true, "{}", oom.state());
    let stopped = Container::run(
        "stopped",
        &["--init", "--network", "none"],
        &["/bin/busybox", "sleep", "100000"],
    );
    stopped.cli("stop");
    let created = Container::create("created", &["/bin/busybox", "sleep", "100000"]);
    let missing = Container::unused_name("missing");
    let t = config(&format!(
        r#"
  - name: paused
    checks: [{{docker: {}}}]
    action: none
  - name: killed
    checks: [{{docker: {}}}]
    action: none
  - name: oom
    checks: [{{docker: {}}}]
    action: none
  - name: stopped
    checks: [{{docker: {}}}]
    action: none
  - name: created
    checks: [{{docker: {}}}]
    action: none
  - name: missing
    checks: [{{docker: {missing}}}]
    action: none
"#,
        paused.name, killed.name, oom.name, stopped.name, created.name
    ));
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=paused "],
            "err=\"container is paused\"",
        )
        .assert_line_contains(&["result=FAIL", "target=paused "], "state=paused")
        .assert_line_contains(
            &["result=FAIL", "target=killed "],
            "err=\"container exited (code 137)\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=oom "],
            "err=\"container exited (code 137, OOM killed)\"",
        )
        // tini passes docker stop's SIGTERM on: 128 + 15
        .assert_line_contains(
            &["result=FAIL", "target=stopped "],
            "err=\"container exited (code 143)\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=created "],
            "err=\"container is created, not running\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=missing "],
            &format!("err=\"no such container: {missing}\""),
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=0 failing=6");
    // a dead container's last health is not shown as if it were current
    out.assert_field(&["result=FAIL", "target=killed "], "state", "exited");
}

#[test]
fn a_restart_loop_fails_as_restarting() {
    let looping = Container::run(
        "loop",
        &["--network", "none", "--restart", "always"],
        &["/bin/sh", "-c", "exit 3"],
    );
    let t = config(&format!(
        "  - name: loop\n    checks: [{{docker: {}}}]\n    action: none\n",
        looping.name
    ));
    // Docker restarts it after a delay that doubles (100 ms, 200 ms, ...); between two
    // attempts it runs for a moment. A pass is judged on what the engine said: bracket it
    // between two inspections that show the same `restarting` state (same StartedAt), so
    // the engine said `restarting` all along.
    let restarting = |s: &Value| s["Restarting"] == true && s["Status"] == "restarting";
    let mut seen = None;
    assert!(
        wait_until(WAIT, || {
            let before = looping.state();
            if !restarting(&before) {
                return false;
            }
            let out = t.run(&["check"]);
            let after = looping.state();
            if restarting(&after) && after["StartedAt"] == before["StartedAt"] {
                seen = Some(out);
                true
            } else {
                false
            }
        }),
        "never saw a pass while the container was restarting: {}",
        looping.state()
    );
    let out = seen.expect("a pass");
    out.assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=loop "],
            "err=\"container is restarting (last exit code 3)\"",
        )
        .assert_line_contains(&["result=FAIL", "target=loop "], "state=restarting");
}

// ---------------------------------------------------------------------------------------------
// The action
// ---------------------------------------------------------------------------------------------

/// One target checking the container `name` (and its HTTP on `port` if given), recovered by
/// the docker action `method`.
fn recovered(name: &str, port: Option<u16>, method: &str, extra: &str) -> Test {
    let http = port
        .map(|p| format!(", {{http: \"http://127.0.0.1:{p}/\", timeout_seconds: 2}}"))
        .unwrap_or_default();
    config(&format!(
        r#"
  - name: app
    checks: [{{docker: {name}}}{http}]
    action:
      docker: {{container: {name}, method: {method}{extra}}}
"#
    ))
}

#[test]
fn a_killed_container_is_restarted_and_serves_again() {
    let (web, port) = web("web", &[]);
    let before = started_at(&web);
    kill_main_process(&web);
    assert!(http_get(port).is_none(), "the server is down");
    let t = recovered(&web.name, Some(port), "restart", "");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "check=\"docker"],
            "container exited (code 137)",
        )
        .assert_line_contains(
            &["msg=\"target failing; running action\""],
            &format!("/containers/{}/restart?t=10", web.name),
        )
        .assert_lines(&["msg=\"action done\"", "target=app "], 1);
    let state = web.state();
    assert_eq!(state["Running"], true, "{state}");
    assert_ne!(
        state["StartedAt"].as_str(),
        Some(before.as_str()),
        "{state}"
    );
    wait_for_port(port, WAIT);
    assert_eq!(http_get(port).as_deref(), Some(dockerd::INDEX));
    t.run(&["check"])
        .assert_code(0)
        .assert_line_contains(&["result=OK", "check=\"http"], "status=200");
}

#[test]
fn a_stopped_container_is_started_again() {
    let (web, port) = web("stopped", &[]);
    web.cli("stop");
    let t = recovered(&web.name, Some(port), "start", "");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "check=\"docker"],
            "container exited (code 143)",
        )
        .assert_line_contains(
            &["msg=\"target failing; running action\""],
            &format!("/containers/{}/start", web.name),
        )
        .assert_lines(&["msg=\"action done\""], 1);
    assert_eq!(web.state()["Running"], true);
    wait_for_port(port, WAIT);
    assert!(http_get(port).is_some());
    t.run(&["check"]).assert_code(0);
}

/// A paused container recovered by `method`: it ends running and unpaused, and the action
/// line says it was unpaused first. Docker restarts a paused container itself, but refuses
/// to start one ("cannot start a paused container, try unpause instead"), and Podman refuses
/// to restart one: the action unpauses first.
fn paused_container_is_recovered(method: &str) {
    let (web, port) = web("paused", &[]);
    let before = started_at(&web);
    web.cli("pause");
    let t = recovered(&web.name, Some(port), method, "");
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "check=\"docker"], "container is paused")
        .assert_line_contains(
            &["msg=\"action done\""],
            "output=\"container was paused: unpaused it first\"",
        );
    let state = web.state();
    assert_eq!(
        (state["Running"].as_bool(), state["Paused"].as_bool()),
        (Some(true), Some(false)),
        "{state}"
    );
    if method == "restart" {
        assert_ne!(
            state["StartedAt"].as_str(),
            Some(before.as_str()),
            "{state}"
        );
    }
    wait_for_port(port, WAIT);
    assert!(http_get(port).is_some());
    t.run(&["check"]).assert_code(0);
}

#[test]
fn a_paused_container_is_unpaused_then_restarted() {
    paused_container_is_recovered("restart");
}

#[test]
fn a_paused_container_is_unpaused_then_started() {
    paused_container_is_recovered("start");
}

#[test]
fn a_container_whose_server_died_inside_is_restarted_until_healthy() {
    // the container lives on (its shell waits) while the server in it is gone: only the
    // HEALTHCHECK sees it
    let port = free_port();
    let script = format!("httpd -p 127.0.0.1:{port} -h /www; exec sleep 100000");
    let probe = format!("wget -q -O /dev/null http://127.0.0.1:{port}/");
    let app = Container::run(
        "app",
        &[
            "--init",
            "--network",
            "host",
            "--health-cmd",
            &probe,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        &["/bin/sh", "-c", &script],
    );
    app.wait_state("healthy", |s| health(s) == "healthy");
    engine().must(&["exec", &app.name, "killall", "httpd"]);
    app.wait_state("unhealthy", |s| health(s) == "unhealthy");
    let before = started_at(&app);
    let t = recovered(&app.name, None, "restart", ", stop_timeout_seconds: 2");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL", "check=\"docker"], "failed health checks)")
        .assert_lines(&["msg=\"action done\""], 1);
    assert_ne!(started_at(&app), before);
    app.wait_state("healthy again", |s| health(s) == "healthy");
    assert!(http_get(port).is_some());
    t.run(&["check"])
        .assert_code(0)
        .assert_line_contains(&["result=OK"], "state=running/healthy");
}

#[test]
fn a_restart_waits_for_a_container_that_ignores_sigterm() {
    // without --init, busybox httpd is PID 1 of its namespace and has no SIGTERM handler:
    // the signal is ignored and Docker kills it after stop_timeout_seconds
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let web = Container::run(
        "pid1",
        &["--network", "host"],
        &["/bin/busybox", "httpd", "-f", "-p", &listen, "-h", "/www"],
    );
    wait_for_port(port, WAIT);
    // the server answers, but not what the check asks for: the container is restarted
    let socket = engine().socket.display().to_string();
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
docker_socket: {socket}
targets:
  - name: app
    checks: [{{docker: {name}}}, {{http: "http://127.0.0.1:{port}/health"}}]
    action:
      docker: {{container: {name}, stop_timeout_seconds: 2}}
"#,
        name = web.name
    ));
    let before = started_at(&web);
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "check=\"http"], "HTTP 404");
    let line = out.line(&["msg=\"action done\""]);
    let ms: u64 = line
        .split("duration_ms=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration_ms in {line}"));
    assert!(
        ms >= 2000,
        "the restart took {ms} ms, less than the stop timeout: {line}"
    );
    assert!(line.contains("/restart?t=2"), "{line}");
    let state = web.state();
    assert_eq!(state["Running"], true, "{state}");
    assert_ne!(
        state["StartedAt"].as_str(),
        Some(before.as_str()),
        "{state}"
    );
    wait_for_port(port, WAIT);
}

#[test]
fn a_container_that_stays_down_is_restarted_once_per_cooldown() {
    let down = Container::run("down", &["--network", "none"], &["/bin/sh", "-c", "exit 3"]);
    down.wait_state("exited", |s| s["Status"] == "exited");
    let created_start = started_at(&down);
    let t = config(&format!(
        r#"
  - name: app
    checks: [{{docker: {name}}}]
    policy: {{restart_cooldown_seconds: 600}}
    action:
      docker: {{container: {name}}}
"#,
        name = down.name
    ));
    t.run(&["check"])
        .assert_code(2)
        .assert_lines(&["msg=\"action done\""], 1);
    // the restart ran (a new start) and did not help
    down.wait_state("exited again", |s| s["Status"] == "exited");
    let restarted = started_at(&down);
    assert_ne!(restarted, created_start);
    for _ in 0..3 {
        t.run(&["check"])
            .assert_code(2)
            .assert_line_contains(
                &["result=FAIL", "check=\"docker"],
                "container exited (code 3)",
            )
            .assert_line_contains(
                &["msg=\"target failing; action skipped\""],
                "reason=cooldown",
            );
    }
    assert_eq!(started_at(&down), restarted, "no other restart");
}

#[test]
fn an_action_on_a_missing_container_says_so() {
    let missing = Container::unused_name("gone");
    let t = recovered(&missing, None, "start", "");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "check=\"docker"],
            &format!("no such container: {missing}"),
        )
        .assert_line_contains(
            &["msg=\"action failed\""],
            &format!("err=\"no such container: {missing}\""),
        );
}

/// The operator's verbs on a docker target, against the real engine: `stop` stops the
/// container (`POST /containers/NAME/stop`) and a pass leaves it stopped, `start` starts it,
/// `restart` restarts it at once (a new `StartedAt`) whatever the cooldown says.
#[test]
fn stop_start_and_restart_drive_a_real_container() {
    let (web, port) = web("verbs", &[]);
    let t = recovered(&web.name, Some(port), "restart", "");
    t.run(&["check"]).assert_code(0);
    t.run(&["stop", "app"])
        .assert_code(0)
        .assert_stdout_contains("app: stop done");
    assert_eq!(web.state()["Running"], false, "{}", web.state());
    // paused by the stop: the pass leaves it down and does not count it
    t.run(&["check"]).assert_code(0);
    assert_eq!(web.state()["Running"], false);
    t.run(&["start", "app"])
        .assert_code(0)
        .assert_stdout_contains("app: start done");
    assert_eq!(web.state()["Running"], true);
    wait_for_port(port, WAIT);
    let before = started_at(&web);
    t.run(&["restart", "app"])
        .assert_code(0)
        .assert_stdout_contains("app: restart done");
    let state = web.state();
    assert_eq!(state["Running"], true, "{state}");
    assert_ne!(
        state["StartedAt"].as_str(),
        Some(before.as_str()),
        "{state}"
    );
    wait_for_port(port, WAIT);
    assert_eq!(http_get(port).as_deref(), Some(dockerd::INDEX));
    t.run(&["check"]).assert_code(0);
    let kinds: Vec<String> = t.state()["targets"]["app"]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["kind"].as_str().unwrap_or(""),
                a["by"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        ["stop operator", "start operator", "restart operator"]
    );
}
