//! The docker check and action. No Docker engine runs on these machines, so the engine is a
//! STAND-IN: a Unix-socket server in this test process that answers the real Docker Engine
//! API (`GET /containers/{id}/json` with the inspect JSON shape of the API docs, `POST
//! /containers/{id}/restart`, 404 `{"message": "No such container: x"}`) and records every
//! request. The watchdog's side is real: its HTTP client over the socket, its parsing, its
//! policy and logs.

use crate::harness::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The stand-in engine: container states by name, and the requests seen.
struct Engine {
    states: Arc<Mutex<HashMap<String, Value>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

fn inspect(name: &str, state: &Value) -> Value {
    // the shape of GET /containers/{id}/json (Docker Engine API v1.43), trimmed
    json!({
        "Id": "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2",
        "Created": "2026-11-20T10:00:00.000000000Z",
        "Path": "/docker-entrypoint.sh",
        "Args": ["nginx", "-g", "daemon off;"],
        "State": state,
        "Image": "sha256:3f8a4339aadda5897b744682f5f774dc69991a81af8d715d37a616bb4c99edf5",
        "Name": format!("/{name}"),
        "RestartCount": 0,
        "Driver": "overlay2",
        "Config": {"Hostname": "4fa6e0f0c678", "Image": "nginx:1.25"}
    })
}

fn running(health: Option<&str>) -> Value {
    let mut s = json!({
        "Status": "running", "Running": true, "Paused": false, "Restarting": false,
        "OOMKilled": false, "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
        "StartedAt": "2026-11-23T10:00:00.000000000Z", "FinishedAt": "0001-01-01T00:00:00Z"
    });
    if let Some(h) = health {
        s["Health"] = json!({
            "Status": h,
            "FailingStreak": if h == "unhealthy" { 3 } else { 0 },
            "Log": [{"Start": "2026-11-23T10:00:01Z", "End": "2026-11-23T10:00:02Z",
                     "ExitCode": if h == "unhealthy" { 1 } else { 0 },
                     "Output": if h == "unhealthy" { "curl: (7) Failed to connect to localhost port 80\n" } else { "" }}]
        });
    }
    s
}

fn exited(code: i64, oom: bool) -> Value {
    json!({
        "Status": "exited", "Running": false, "Paused": false, "Restarting": false,
        "OOMKilled": oom, "Dead": false, "Pid": 0, "ExitCode": code, "Error": "",
        "StartedAt": "2026-11-23T10:00:00.000000000Z", "FinishedAt": "2026-11-23T10:05:00.000000000Z"
    })
}

impl Engine {
    fn start(socket: &Path, containers: &[(&str, Value)]) -> Engine {
        let listener = UnixListener::bind(socket).expect("bind stand-in docker socket");
        let states: HashMap<String, Value> = containers
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect();
        let states = Arc::new(Mutex::new(states));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (st, sn) = (states.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                answer(conn, &st, &sn);
            }
        });
        Engine { states, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(mut s: UnixStream, states: &Mutex<HashMap<String, Value>>, seen: &Mutex<Vec<String>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let Some((head, _)) = read_head(&mut s) else {
        return;
    };
    let mut first = head.split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    seen.lock().unwrap().push(format!("{method} {path}"));
    let parts: Vec<&str> = path.split(['/', '?']).collect();
    // ["", "containers", name, "json" | "restart" | "start", ...]
    let name = parts.get(2).copied().unwrap_or("");
    let mut states = states.lock().unwrap();
    let (status, body) = match (method, parts.get(3).copied(), states.get(name).cloned()) {
        (_, _, None) => (
            "404 Not Found",
            json!({"message": format!("No such container: {name}")}).to_string(),
        ),
        ("GET", Some("json"), Some(state)) => ("200 OK", inspect(name, &state).to_string()),
        ("POST", Some("restart" | "start"), Some(_)) => {
            // a container named stuck-* does not come back: restarts do not help it
            if !name.starts_with("stuck") {
                states.insert(name.to_string(), running(None));
            }
            ("204 No Content", String::new())
        }
        _ => (
            "400 Bad Request",
            json!({"message": "bad request"}).to_string(),
        ),
    };
    // the engine answers with chunked bodies; a 204 has none
    let resp = if body.is_empty() {
        format!("HTTP/1.1 {status}\r\nApi-Version: 1.43\r\nServer: Docker/24.0.7 (linux)\r\n\r\n")
    } else {
        format!(
            "HTTP/1.1 {status}\r\nApi-Version: 1.43\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };
    let _ = s.write_all(resp.as_bytes());
}

#[test]
fn container_states_are_judged_from_the_engine_api() {
    let t = Test::new();
    let sock = t.path("docker.sock");
    let _engine = Engine::start(
        &sock,
        &[
            ("plain", running(None)),
            ("healthy", running(Some("healthy"))),
            ("starting", running(Some("starting"))),
            ("sick", running(Some("unhealthy"))),
            ("oom", exited(137, true)),
        ],
    );
    let t = t.config(
        r#"
state_file: {dir}/state.json
docker_socket: {dir}/docker.sock
targets:
  - name: plain
    checks: [{docker: plain}]
    action: none
  - name: healthy
    checks: [{docker: healthy}]
    action: none
  - name: starting
    checks: [{docker: starting}]
    action: none
  - name: sick
    checks: [{docker: sick}]
    action: none
  - name: oom
    checks: [{docker: oom}]
    action: none
  - name: missing
    checks: [{docker: ghost}]
    action: none
  - name: no-engine
    checks: [{docker: plain, docker_socket: "{dir}/nope.sock"}]
    action: none
"#,
    );
    t.run(&["check", "-v"])
        .assert_code(2)
        .assert_line_contains(&["result=OK", "target=plain "], "state=running")
        .assert_line_contains(&["result=OK", "target=healthy "], "state=running/healthy")
        .assert_line_contains(&["result=OK", "target=starting "], "state=running/starting")
        .assert_line_contains(
            &["result=FAIL", "target=sick "],
            "unhealthy (3 failed health checks): curl: (7) Failed to connect to localhost port 80",
        )
        .assert_line_contains(
            &["result=FAIL", "target=oom "],
            "container exited (code 137, OOM killed)",
        )
        .assert_line_contains(
            &["result=FAIL", "target=missing "],
            "no such container: ghost",
        )
        .assert_line_contains(
            &["result=FAIL", "target=no-engine "],
            "nope.sock: no such file or directory (is Docker running?",
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=3 failing=4");
}

#[test]
fn docker_action_restarts_the_container_once() {
    let t = Test::new();
    let sock = t.path("docker.sock");
    let engine = Engine::start(&sock, &[("web", exited(1, false))]);
    let t = t.config(
        r#"
state_file: {dir}/state.json
targets:
  - name: web
    checks: [{docker: web, docker_socket: "{dir}/docker.sock"}]
    action:
      docker: {container: web, method: restart, docker_socket: "{dir}/docker.sock"}
"#,
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL"], "container exited (code 1)")
        .assert_line_contains(
            &["msg=\"target failing; running action\""],
            "/containers/web/restart?t=10",
        )
        .assert_line_contains(&["msg=\"action done\""], "target=web");
    t.run(&["check"]).assert_code(0);
    let posts: Vec<String> = engine
        .seen()
        .into_iter()
        .filter(|r| r.starts_with("POST"))
        .collect();
    assert_eq!(posts, ["POST /containers/web/restart?t=10"]);
    assert_eq!(
        engine.states.lock().unwrap()["web"]["Status"],
        "running",
        "the stand-in records the restart"
    );
}

#[test]
fn docker_action_reports_a_missing_container() {
    let t = Test::new();
    let sock = t.path("docker.sock");
    let _engine = Engine::start(&sock, &[]);
    let t = t.config(
        r#"
state_file: {dir}/state.json
docker_socket: {dir}/docker.sock
targets:
  - name: web
    checks: [{docker: web}]
    action:
      docker: {container: web, method: start}
"#,
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"action failed\""], "err=\"no such container: web\"");
}

#[test]
fn a_container_that_stays_down_is_restarted_once_per_cooldown() {
    let t = Test::new();
    let sock = t.path("docker.sock");
    let engine = Engine::start(&sock, &[("stuck-web", exited(1, false))]);
    let t = t.config(
        r#"
state_file: {dir}/state.json
docker_socket: {dir}/docker.sock
targets:
  - name: web
    checks: [{docker: stuck-web}]
    policy: {restart_cooldown_seconds: 600}
    action:
      docker: {container: stuck-web}
"#,
    );
    t.run(&["check"]).assert_code(2);
    for _ in 0..3 {
        t.run(&["check"]).assert_code(2).assert_line_contains(
            &["msg=\"target failing; action skipped\""],
            "reason=cooldown",
        );
    }
    let posts = engine
        .seen()
        .into_iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(posts, 1, "{:?}", engine.seen());
}

#[test]
fn a_hanging_engine_costs_the_timeout_not_the_pass() {
    let t = Test::new();
    let sock = t.path("docker.sock");
    // accepts connections and never answers
    let listener = UnixListener::bind(&sock).expect("bind");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let t = t.config(
        r#"
state_file: {dir}/state.json
targets:
  - name: web
    checks: [{docker: web, docker_socket: "{dir}/docker.sock", timeout_seconds: 1}]
    action: none
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL"], "Docker API did not answer within 1s");
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}
