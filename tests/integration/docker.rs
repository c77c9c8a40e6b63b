//! The docker check and action where a real engine cannot be brought to answer the way a test
//! needs. Everything a real Docker engine can show (running, healthy, unhealthy, paused,
//! killed, OOM-killed, stopped, created, missing, restart loops, and the action's effect) is
//! tested against a real dockerd in the system suite (`tests/system/docker.rs`).
//!
//! Here the engine is a STAND-IN, a Unix-socket server in this test process, in two roles,
//! each named in its test (`stand_in_...`):
//! - a HOSTILE or broken engine: not HTTP, no answer, an HTML error page, invalid JSON, a
//!   body far over the cap, a hang;
//! - PODMAN's Docker-compatible API (not installed here): `Health.Status: ""` without a
//!   HEALTHCHECK, and its refusal to restart a paused container.
//!
//! No engine at all (a socket path nobody listens on) needs no stand-in. The watchdog's side
//! is real: its client over the socket, its parsing, policy and logs.

use crate::harness::*;
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A stand-in engine on `socket`: every connection's request head is passed to `answer`
/// (method, path, and the state it keeps), which returns the raw bytes to send back; then
/// the connection is closed. The requests seen are recorded.
struct StandIn {
    seen: Arc<Mutex<Vec<String>>>,
}

type Answer = dyn Fn(&str, &str, &mut Value) -> Vec<u8> + Send + Sync;

impl StandIn {
    fn start(socket: &Path, state: Value, answer: Box<Answer>) -> StandIn {
        let listener = UnixListener::bind(socket).expect("bind stand-in docker socket");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sn = seen.clone();
        std::thread::spawn(move || {
            let mut state = state;
            for mut conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let Some((head, _)) = read_head(&mut conn) else {
                    continue;
                };
                let mut first = head.split(' ');
                let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                sn.lock().unwrap().push(format!("{method} {path}"));
                let bytes = answer(method, path, &mut state);
                let _ = conn.write_all(&bytes);
            }
        });
        StandIn { seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// An HTTP answer as the engines send them (Go's net/http: a JSON body, chunked).
fn http(status: &str, server: &str, body: &str) -> Vec<u8> {
    if body.is_empty() {
        return format!("HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nServer: {server}\r\n\r\n")
            .into_bytes();
    }
    format!(
        "HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nServer: {server}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
    .into_bytes()
}

const PODMAN: &str = "Libpod/4.3.1 (linux)";

/// Podman 4's answer to `GET /containers/{name}/json` (Docker-compatible API), trimmed: a
/// container without a HEALTHCHECK still has a `Health` object, with an empty status.
fn podman_inspect(name: &str, paused: bool) -> Value {
    json!({
        "Id": "b4c0ffee7e1a9f3c2b1d0e8a7f6c5b4a3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a",
        "Created": "2026-11-20T10:00:00.123456789Z",
        "Path": "nginx",
        "Args": ["-g", "daemon off;"],
        "State": {
            "Status": if paused { "paused" } else { "running" },
            "Running": true, "Paused": paused, "Restarting": false, "OOMKilled": false,
            "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
            "StartedAt": "2026-11-23T10:00:00.123456789Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
            "Health": {"Status": "", "FailingStreak": 0, "Log": null}
        },
        "Image": "sha256:3f8a4339aadda5897b744682f5f774dc69991a81af8d715d37a616bb4c99edf5",
        "Name": name,
        "RestartCount": 0,
        "Driver": "overlay",
        "Config": {"Hostname": "b4c0ffee7e1a", "Image": "docker.io/library/nginx:1.25"}
    })
}

/// Podman's compat API on a paused container: `restart` is refused with its own error
/// (libpod's `restartWithTimeout`, answered 500 by the compat handler), `unpause` works.
fn podman(name: &'static str) -> Box<Answer> {
    Box::new(move |method, path, paused| {
        let container = path.split(['/', '?']).nth(2).unwrap_or("");
        if container != name {
            let body = json!({"cause": "no such container",
                "message": format!("no container with name or ID \"{container}\" found: no such container"),
                "response": 404});
            return http("404 Not Found", PODMAN, &body.to_string());
        }
        let is_paused = paused.as_bool() == Some(true);
        match (method, path.split(['/', '?']).nth(3).unwrap_or("")) {
            ("GET", "json") => http(
                "200 OK",
                PODMAN,
                &podman_inspect(name, is_paused).to_string(),
            ),
            ("POST", "unpause") => {
                *paused = json!(false);
                http("204 No Content", PODMAN, "")
            }
            ("POST", "restart") if is_paused => {
                let body = json!({"cause": "container state improper",
                    "message": "unable to restart a container in a paused or unknown state: container state improper",
                    "response": 500});
                http("500 Internal Server Error", PODMAN, &body.to_string())
            }
            ("POST", "restart") => http("204 No Content", PODMAN, ""),
            _ => http(
                "400 Bad Request",
                PODMAN,
                &json!({"message": "bad request"}).to_string(),
            ),
        }
    })
}

#[test]
fn stand_in_podman_without_healthcheck_shows_no_health() {
    let t = Test::new();
    let _podman = StandIn::start(&t.path("podman.sock"), json!(false), podman("web"));
    let t = t.config(
        r#"
state_file: {dir}/state.json
docker_socket: {dir}/podman.sock
targets:
  - name: web
    checks: [{docker: web}]
    action: none
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(0);
    let line = out.line(&["result=OK", "target=web "]);
    assert!(line.ends_with(" state=running"), "{line}\n{out}");
}

#[test]
fn stand_in_podman_refuses_to_restart_a_paused_container_so_it_is_unpaused_first() {
    let t = Test::new();
    let podman = StandIn::start(&t.path("podman.sock"), json!(true), podman("web"));
    let t = t.config(
        r#"
state_file: {dir}/state.json
docker_socket: {dir}/podman.sock
targets:
  - name: web
    checks: [{docker: web}]
    action:
      docker: {container: web, method: restart}
"#,
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL"], "err=\"container is paused\"")
        .assert_line_contains(
            &["msg=\"action done\""],
            "output=\"container was paused: unpaused it first\"",
        );
    let posts: Vec<String> = podman
        .seen()
        .into_iter()
        .filter(|r| r.starts_with("POST"))
        .collect();
    assert_eq!(
        posts,
        [
            "POST /containers/web/unpause",
            "POST /containers/web/restart?t=10"
        ]
    );
    t.run(&["check"])
        .assert_code(0)
        .assert_line_contains(&["result=OK"], "state=running");
}

#[test]
fn stand_in_podman_error_of_a_failed_unpause_is_reported() {
    // a Podman that cannot unpause (its cgroup freezer refused): the action says so and
    // does not try the restart it would refuse anyway
    let t = Test::new();
    let answer: Box<Answer> = Box::new(|method, path, _| {
        if method == "GET" {
            return http("200 OK", PODMAN, &podman_inspect("web", true).to_string());
        }
        if path.ends_with("/unpause") {
            let body = json!({"cause": "permission denied",
                "message": "unpausing container b4c0ffee: permission denied", "response": 500});
            return http("500 Internal Server Error", PODMAN, &body.to_string());
        }
        http("204 No Content", PODMAN, "")
    });
    let podman = StandIn::start(&t.path("podman.sock"), json!(null), answer);
    let t = t.config(
        r#"
state_file: {dir}/state.json
docker_socket: {dir}/podman.sock
targets:
  - name: web
    checks: [{docker: web}]
    action:
      docker: {container: web}
"#,
    );
    t.run(&["check"]).assert_code(2).assert_line_contains(
        &["msg=\"action failed\""],
        "err=\"container is paused and unpausing it failed: Docker API 500: unpausing container b4c0ffee: permission denied\"",
    );
    assert!(
        !podman.seen().iter().any(|r| r.contains("/restart")),
        "{:?}",
        podman.seen()
    );
}

/// One target per stand-in engine, each on its own socket, checked in one pass.
#[test]
fn stand_in_hostile_engines_fail_the_check_with_what_is_wrong() {
    let t = Test::new();
    let docker = "Docker/20.10.24+dfsg1 (linux)";
    let engines: Vec<(&str, Box<Answer>)> = vec![
        // something else listens on the socket
        (
            "not-http",
            Box::new(|_, _, _| b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec()),
        ),
        // closes the connection without a word
        ("silent", Box::new(|_, _, _| Vec::new())),
        // a proxy's HTML error page
        (
            "html",
            Box::new(move |_, _, _| {
                let page = format!(
                    "<html><head><title>502 Bad Gateway</title></head>\n<body>{}</body></html>",
                    "<p>upstream went away</p>\n".repeat(40)
                );
                format!(
                    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
                    page.len()
                )
                .into_bytes()
            }),
        ),
        // 200 with a body that is not JSON
        (
            "not-json",
            Box::new(move |_, _, _| http("200 OK", docker, "{\"State\": {\"Status\": \"runn")),
        ),
        // a body far over the 1 MiB cap (the client stops reading at the cap)
        (
            "huge",
            Box::new(move |_, _, _| {
                let filler = "x".repeat(3 << 20);
                let body = format!("{{\"State\": {{\"Status\": \"running\", \"Running\": true}}, \"Pad\": \"{filler}\"}}");
                format!(
                    "HTTP/1.1 200 OK\r\nServer: {docker}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }),
        ),
    ];
    let mut targets = String::new();
    let mut keep = Vec::new();
    for (name, answer) in engines {
        keep.push(StandIn::start(
            &t.path(&format!("{name}.sock")),
            json!(null),
            answer,
        ));
        targets.push_str(&format!(
            "  - name: {name}\n    checks: [{{docker: web, docker_socket: \"{{dir}}/{name}.sock\", timeout_seconds: 10}}]\n    action: none\n"
        ));
    }
    let t = t.config(&format!(
        "state_file: {{dir}}/state.json\ntargets:\n{targets}"
    ));
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=not-http "],
            "err=\"Docker API sent a malformed answer (not HTTP)\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=silent "],
            "err=\"Docker API closed the connection without answering\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=html "],
            "err=\"Docker API 502: <html><head><title>502 Bad Gateway</title></head> <body><p>upstream went away</p> <p>",
        )
        .assert_line_contains(
            &["result=FAIL", "target=not-json "],
            "err=\"Docker API sent invalid JSON: EOF while parsing a string",
        )
        .assert_line_contains(
            &["result=FAIL", "target=huge "],
            "err=\"Docker API sent an answer larger than 1 MiB (cut)\"",
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=0 failing=5");
    // the error page is cut, not copied into the log
    let html = out.line(&["result=FAIL", "target=html "]);
    assert!(html.len() < 500, "{html}");
    // nothing waited for a timeout
    assert!(
        out.elapsed < Duration::from_secs(8),
        "{:?}\n{out}",
        out.elapsed
    );
}

#[test]
fn no_engine_on_the_socket_says_is_docker_running() {
    // no stand-in: nothing listens on the path
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: web
    checks: [{docker: web, docker_socket: "{dir}/nope.sock"}]
    action:
      docker: {container: web, docker_socket: "{dir}/nope.sock"}
"#,
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["result=FAIL"],
            "nope.sock: no such file or directory (is Docker running? set docker_socket if it listens elsewhere)",
        )
        .assert_line_contains(&["msg=\"action failed\""], "nope.sock: no such file or directory");
}

#[test]
fn stand_in_hanging_engine_costs_the_timeout_not_the_pass() {
    let t = Test::new();
    let sock = t.path("docker.sock");
    // a stand-in that accepts connections and never answers
    let listener = UnixListener::bind(&sock).expect("bind");
    std::thread::spawn(move || {
        let mut held: Vec<UnixStream> = Vec::new();
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
    action:
      docker: {container: web, docker_socket: "{dir}/docker.sock", stop_timeout_seconds: 0, timeout_seconds: 1}
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL"], "Docker API did not answer within 1s")
        .assert_line_contains(
            &["msg=\"action failed\""],
            "Docker API did not answer within 1s",
        );
    // the check's second and the action's (its inspect and its request share one)
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}

/// A listening Unix socket whose accept queue is full (backlog 0, one connection waiting)
/// and that never accepts: a stopped engine (`kill -STOP`) after its queue filled up.
struct FullQueue {
    _listener: std::os::fd::OwnedFd,
    _queued: UnixStream,
}

impl FullQueue {
    fn new(path: &Path) -> FullQueue {
        use nix::libc;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain socket calls on a descriptor we own; the address is zeroed, then
        // filled within sun_path's bounds (asserted).
        let listener = unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket");
            let fd = OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_un = std::mem::zeroed();
            addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let bytes = path.as_os_str().as_bytes();
            assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
            for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
                *d = *s as libc::c_char;
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            let r = libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            );
            assert_eq!(r, 0, "bind {}", path.display());
            assert_eq!(libc::listen(fd.as_raw_fd(), 0), 0, "listen");
            fd
        };
        let queued = UnixStream::connect(path).expect("the one connection the queue holds");
        FullQueue {
            _listener: listener,
            _queued: queued,
        }
    }
}

#[test]
fn stand_in_engine_that_accepts_no_connection_costs_the_timeout() {
    let t = Test::new();
    let _engine = FullQueue::new(&t.path("docker.sock"));
    let t = t.config(
        r#"
state_file: {dir}/state.json
targets:
  - name: web
    checks: [{docker: web, docker_socket: "{dir}/docker.sock", timeout_seconds: 1}]
    action:
      docker: {container: web, docker_socket: "{dir}/docker.sock", stop_timeout_seconds: 0, timeout_seconds: 1}
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["result=FAIL"],
            "err=\"Docker API did not accept the connection within 1s (its queue is full: is the engine hung?)\"",
        )
        .assert_line_contains(&["msg=\"action failed\""], "did not accept the connection within 1s");
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}
