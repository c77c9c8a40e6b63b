//! The http check against real servers on 127.0.0.1: an HTTP/1.1 server in this test process
//! (routes for status, body, redirect, slowness, echoing the Host header), and python3's
//! `http.server` wrapped in TLS with certificates made by the openssl CLI (a test CA, a
//! server certificate it signed, and an expired one).

use crate::harness::*;
use crate::notify::Recorder;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A server answering by path: `/ok` 200 `{"status":"UP"}`, `/down` 503, `/moved` 302 to
/// /login, `/slow` after 30 s, `/host` 200 with the request's Host header as the body.
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || answer(conn));
        }
    });
    port
}

fn answer(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let Some((head, _)) = read_head(&mut s) else {
        return;
    };
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    let host = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Host: ")
                .or_else(|| l.strip_prefix("host: "))
        })
        .unwrap_or("")
        .trim()
        .to_string();
    let (status, extra, body) = match path.as_str() {
        "/ok" => ("200 OK", "", "{\"status\":\"UP\"}".to_string()),
        "/down" => ("503 Service Unavailable", "", "maintenance".to_string()),
        "/moved" => ("302 Found", "Location: /login\r\n", String::new()),
        "/slow" => {
            // far beyond the check's 1 s timeout: a pass that waited for it is obvious
            std::thread::sleep(Duration::from_secs(30));
            ("200 OK", "", "late".to_string())
        }
        "/host" => ("200 OK", "", host),
        _ => ("404 Not Found", "", "no".to_string()),
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn status_body_redirect_timeout_and_refusal_are_named() {
    let port = server();
    let dead = free_port();
    // a 64-character label is longer than DNS allows: glibc's resolver refuses the name
    // without asking a name server, so this fails the same way with or without a network
    let nxhost = format!("{}.invalid", "x".repeat(64));
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: ok
    checks: [{{http: "http://127.0.0.1:{port}/ok", body_contains: '"status":"UP"'}}]
    action: none
  - name: down
    checks: [{{http: "http://127.0.0.1:{port}/down"}}]
    action: none
  - name: expected-503
    checks: [{{http: "http://127.0.0.1:{port}/down", expect_status: [503]}}]
    action: none
  - name: body
    checks: [{{http: "http://127.0.0.1:{port}/ok", body_contains: DOWN}}]
    action: none
  - name: moved-ok
    checks: [{{http: "http://127.0.0.1:{port}/moved"}}]
    action: none
  - name: moved-strict
    checks: [{{http: "http://127.0.0.1:{port}/moved", expect_status: [200]}}]
    action: none
  - name: slow
    checks: [{{http: "http://127.0.0.1:{port}/slow", timeout_seconds: 1}}]
    action: none
  - name: refused
    checks: [{{http: "http://127.0.0.1:{dead}/"}}]
    action: none
  - name: head
    checks: [{{http: "http://127.0.0.1:{port}/ok", method: HEAD}}]
    action: none
  - name: unresolvable
    checks: [{{http: "http://{nxhost}:{port}/ok"}}]
    action: none
"#
    ));
    let out = t.run(&["check", "-v"]);
    out.assert_code(2)
        .assert_line_contains(&["result=OK", "target=ok "], "status=200")
        .assert_line_contains(&["result=FAIL", "target=down "], "err=\"HTTP 503\"")
        .assert_line_contains(&["result=FAIL", "target=down "], "status=503")
        .assert_lines(&["result=FAIL", "target=expected-503 "], 0)
        .assert_line_contains(
            &["result=FAIL", "target=body "],
            "body does not contain \\\"DOWN\\\"",
        )
        .assert_lines(&["result=FAIL", "target=moved-ok "], 0)
        .assert_line_contains(
            &["result=FAIL", "target=moved-strict "],
            "HTTP 302 (redirect to /login, not followed)",
        )
        .assert_line_contains(&["result=FAIL", "target=slow "], "timed out after 1s")
        .assert_line_contains(&["result=FAIL", "target=refused "], "connection refused")
        .assert_lines(&["result=FAIL", "target=head "], 0)
        .assert_line_contains(
            &["result=FAIL", "target=unresolvable "],
            &format!("err=\"cannot resolve {nxhost}: "),
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=4 failing=6");
    assert!(
        out.elapsed < Duration::from_secs(15),
        "the 1 s timeout did not cut the 30 s answer: {:?}",
        out.elapsed
    );
}

#[test]
fn resolve_keeps_the_host_and_headers_are_sent_but_never_logged() {
    let port = server();
    let hook = Recorder::start(0);
    let t = Test::new()
        .env("API_TOKEN", "tok-abcdef-123456")
        .config(&format!(
            r#"
state_file: {{dir}}/state.json
targets:
  - name: resolved
    checks:
      - http: "http://health.invalid:{port}/host"
        resolve: 127.0.0.1
        ip_version: 4
        body_contains: "health.invalid:{port}"
    action: none
  - name: headers
    checks:
      - http: "http://user:pa55word-xyz@127.0.0.1:{hp}/h"
        headers: {{Authorization: "Bearer ${{API_TOKEN}}", X-Check: "yes"}}
        method: POST
    action: none
"#,
            hp = hook.port
        ));
    let out = t.run(&["check", "-v"]);
    out.assert_code(0)
        .assert_stderr_not_contains("tok-abcdef")
        .assert_stderr_not_contains("pa55word")
        .assert_line_contains(&["result=OK", "target=headers "], "http://***@127.0.0.1");
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(
        reqs[0].header("authorization"),
        Some("Bearer tok-abcdef-123456")
    );
    assert_eq!(reqs[0].header("x-check"), Some("yes"));
    assert!(
        reqs[0]
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer")),
        "basic auth from the URL must not replace the configured header"
    );
    let summary = t.run(&["test-config"]);
    summary
        .assert_code(0)
        .assert_stdout_contains("http POST http://***@127.0.0.1")
        .assert_stdout_contains("http GET http://health.invalid")
        .assert_stdout_contains(
            "healthy on 2xx/3xx, headers Authorization, X-Check, body read up to 65536 bytes",
        )
        .assert_stdout_contains("IPv4 only");
    assert!(!summary.stdout.contains("pa55word") && !summary.stdout.contains("tok-abcdef"));
    assert!(!t.read("state.json").contains("tok-abcdef"));
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let st = status_of(Command::new("openssl").args(args).current_dir(dir));
    assert!(st.success(), "openssl {args:?} failed");
}

/// A test CA, a server certificate for localhost/127.0.0.1 signed by it, and an expired one.
fn certificates(t: &Test) {
    let d = t.dir();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=neon-test-ca",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    t.write("ext.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    for (out, days) in [("srv.pem", "2"), ("expired.pem", "-1")] {
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "srv.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                out,
                "-days",
                days,
                "-extfile",
                "ext.cnf",
            ],
        );
    }
}

/// python3's http.server behind TLS with `cert`; answers 200 "OK" to GET.
fn https_server(t: &Test, cert: &str) -> (ChildGuard, u16) {
    let port = free_port();
    t.write(
        "tls.py",
        r#"import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"OK")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#,
    );
    let mut cmd = Command::new(PYTHON);
    cmd.arg(t.path("tls.py"))
        .arg(port.to_string())
        .arg(t.path(cert))
        .arg(t.path("srv.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let guard = ChildGuard::spawn(cmd);
    wait_for_port(port, EVENT_LIMIT);
    (guard, port)
}

#[test]
fn https_verifies_certificates_against_roots_ca_file_or_not_at_all() {
    let t = Test::new();
    certificates(&t);
    let (_good, port) = https_server(&t, "srv.pem");
    let (_old, old_port) = https_server(&t, "expired.pem");
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: verify
    checks: [{{http: "https://localhost:{port}/"}}]
    action: none
  - name: no-verify
    checks: [{{http: "https://localhost:{port}/", tls_verify: false}}]
    action: none
  - name: ca-file
    checks: [{{http: "https://localhost:{port}/", ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: expired
    checks: [{{http: "https://localhost:{old_port}/", ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: wrong-name
    checks: [{{http: "https://neon.invalid:{port}/", resolve: 127.0.0.1, ca_file: "{{dir}}/ca.pem"}}]
    action: none
"#
    ));
    t.run(&["check", "-v"])
        .assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=verify "],
            "TLS: invalid certificate (unknown issuer",
        )
        .assert_line_contains(&["result=OK", "target=no-verify "], "status=200")
        .assert_line_contains(&["result=OK", "target=ca-file "], "status=200")
        .assert_line_contains(
            &["result=FAIL", "target=expired "],
            "TLS: certificate expired",
        )
        .assert_line_contains(
            &["result=FAIL", "target=wrong-name "],
            "TLS: certificate is not valid for neon.invalid",
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=2 failing=3");
}

/// A ca_file is read like every file the config names: a FIFO there makes the check unknown
/// at once (reading it used to block the pass for good), and test-config warns about it.
#[test]
fn a_fifo_as_ca_file_is_unknown_at_once_instead_of_blocking_the_check() {
    let dead = free_port();
    fifo_ca_file_is_unknown(&format!("http: \"https://127.0.0.1:{dead}/\""));
}
