//! The status pages `run` serves on `metrics.listen`: `/status` is what `status --json`
//! prints, `/` a page for people that a real browser (Debian's chromium, headless) renders,
//! every name and reason escaped; and nothing on the listener changes anything. A real
//! daemon with a real listener on 127.0.0.1, real processes as its targets.

use crate::harness::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A target name and a check's output a page must show, never obey.
const HOSTILE: &str = r#"<script>alert(1)</script> "'&"#;

/// A `${NAME}` value of the config that the hostile check prints after [`HOSTILE`]: never shown.
const SECRET: &str = "pg-Secret-8675309";

/// An answer of the listener: status code, head (status line and headers), body.
struct Answer {
    code: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `method path` on the listener, as raw HTTP/1.1 (with `body`, if any).
fn request(port: u16, method: &str, path: &str, body: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the listener");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read answer");
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    Answer {
        code: head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn get(port: u16, path: &str) -> Answer {
    request(port, "GET", path, "")
}

/// A daemon watching real things: `app`, a running process found by name; `web`, a real HTTP
/// server's port; and a target whose name and check output are [`HOSTILE`] (it fails).
struct Watched {
    t: Test,
    port: u16,
    app: ChildGuard,
    _web: ChildGuard,
    _app_name: KillNamed,
}

fn watched() -> Watched {
    let t = Test::new().env("NW_IT_PAGE_SECRET", SECRET);
    let (app_name, cleanup) = unique_sleep(&t);
    let app = ChildGuard::spawn({
        let mut c = Command::new(t.path(&app_name));
        c.arg("300");
        c
    });
    let web_port = free_port();
    let web = ChildGuard::spawn({
        let mut c = Command::new(PYTHON);
        c.args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &web_port.to_string(),
        ])
        .current_dir(t.dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    });
    wait_for_port(web_port, EVENT_LIMIT);
    let port = free_port();
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
interval_seconds: 2
metrics: {{listen: "127.0.0.1:{port}"}}
targets:
  - name: app
    checks:
      - process_name: {app_name}
    action: none
  - name: web
    checks:
      - tcp_port: {web_port}
    action: none
  - name: {hostile:?}
    checks:
      - command: ["/bin/sh", "-c", "echo \"$0 $1\"; exit 1", {hostile:?}, "${{NW_IT_PAGE_SECRET}}"]
    action: none
"#,
        hostile = HOSTILE,
    ));
    Watched {
        t,
        port,
        app,
        _web: web,
        _app_name: cleanup,
    }
}

/// The run's `/status`, once it answers with every target checked.
fn status_when(
    port: u16,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = String::new();
    let ok = wait_until(EVENT_LIMIT, || {
        if !port_open(port) {
            return false;
        }
        let a = get(port, "/status");
        last = format!("{}\n\n{}", a.head, a.body);
        a.code == 200 && serde_json::from_str(&a.body).is_ok_and(|v| ready(&v))
    });
    assert!(ok, "/status never showed {what}; last answer:\n{last}");
    serde_json::from_str(last.split_once("\n\n").map_or("", |(_, b)| b)).expect("JSON")
}

fn target<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no target {name:?} in {doc:#}"))
}

/// What changes between two renderings of the same state: the time it was rendered and the
/// ages counted from it.
fn without_ages(mut doc: serde_json::Value) -> serde_json::Value {
    if let Some(o) = doc.as_object_mut() {
        o.remove("generated");
    }
    for t in doc["targets"].as_array_mut().into_iter().flatten() {
        if let Some(o) = t.as_object_mut() {
            o.remove("last_check_age_seconds");
        }
    }
    doc
}

/// `/status` and `status --json` at the same time, modulo `generated` and ages: the command
/// between two requests that answer the same (no pass between). A pass saves the state file
/// a moment before the daemon publishes it, so one such window may still see the file ahead
/// of the page: the three must agree in some window, and the last window is shown if they
/// never do.
fn status_and_cli(w: &Watched) -> (serde_json::Value, serde_json::Value) {
    let mut last = None;
    let deadline = Instant::now() + EVENT_LIMIT;
    while Instant::now() < deadline {
        let before = get(w.port, "/status");
        let cli = w.t.run(&["status", "--json"]);
        let after = get(w.port, "/status");
        let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).map(without_ages);
        let (Ok(before), Ok(after), Ok(printed)) =
            (parse(&before.body), parse(&after.body), parse(&cli.stdout))
        else {
            panic!("not JSON: /status {}\n{cli}", before.body);
        };
        if before == after {
            if before == printed {
                return (before, printed);
            }
            last = Some((before, printed));
        }
    }
    let (served, printed) = last.expect("never a quiet moment between two passes");
    (served, printed)
}

/// `/status` is the `status --json` document; a killed process shows failed, with its
/// reason, after the next pass, on both.
#[test]
fn status_is_what_status_json_prints_and_follows_a_kill() {
    let mut w = watched();
    let mut run = w.t.spawn(&["run"]);
    let doc = status_when(w.port, "app and web healthy", |d| {
        ["app", "web"].iter().all(|n| {
            d["targets"].as_array().is_some_and(|ts| {
                ts.iter()
                    .any(|t| t["name"] == *n && t["status"] == "healthy")
            })
        })
    });
    assert_eq!(doc["targets"].as_array().map(Vec::len), Some(3), "{doc:#}");
    assert_eq!(target(&doc, HOSTILE)["status"], "failed", "{doc:#}");
    let answer = get(w.port, "/status");
    assert_eq!(
        answer.header("Content-Type"),
        Some("application/json"),
        "{}",
        answer.head
    );
    // the same text as the command's, byte for byte, but for the time and the ages
    let (served, printed) = status_and_cli(&w);
    assert_eq!(served, printed, "/status differs from `status --json`");

    // the process dies: the next pass finds it gone
    w.app.kill_now();
    let doc = status_when(w.port, "app failed", |d| {
        d["targets"].as_array().is_some_and(|ts| {
            ts.iter()
                .any(|t| t["name"] == "app" && t["status"] == "failed")
        })
    });
    let app = target(&doc, "app");
    let reason = app["last_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("process_name:"), "{app:#}");
    assert_eq!(target(&doc, "web")["status"], "healthy", "{doc:#}");
    let (served, printed) = status_and_cli(&w);
    assert_eq!(
        served, printed,
        "/status differs from `status --json` after the kill"
    );
    assert_eq!(target(&printed, "app")["last_reason"], app["last_reason"]);
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run exits on SIGTERM")
        .assert_code(0);
}

/// The page's HTML once every target has been checked.
fn page_when_checked(port: u16) -> Answer {
    status_when(port, "every target checked", |d| {
        d["targets"]
            .as_array()
            .is_some_and(|ts| ts.iter().all(|t| !t["last_check"].is_null()))
    });
    get(port, "/")
}

/// `/` is HTML with every target and its status in words; the hostile name and output are
/// shown escaped; nothing but GET and HEAD is answered, and nothing is changed by trying.
#[test]
fn the_page_shows_every_target_escaped_and_the_listener_changes_nothing() {
    let w = watched();
    let mut run = w.t.spawn(&["run"]);
    let page = page_when_checked(w.port);
    assert_eq!(page.code, 200, "{}", page.head);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.header("Content-Security-Policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
        "{}",
        page.head
    );
    let html = &page.body;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "{html}"
    );
    for row in [
        "<td class=\"name\">app</td>",
        "<td class=\"name\">web</td>",
        "<td class=\"name\">&lt;script&gt;alert(1)&lt;/script&gt; &quot;&#39;&amp;</td>",
    ] {
        let line = html
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("no row {row} in:\n{html}"));
        let status = if row.contains("script") {
            "\u{2716} failed"
        } else {
            "\u{2714} healthy"
        };
        assert!(line.contains(status), "{status} not in {line}");
    }
    // the check's output, escaped, as the last reason
    assert!(
        html.contains("command: exit 1: &lt;script&gt;alert(1)&lt;/script&gt; &quot;&#39;&amp;"),
        "{html}"
    );
    // the secret the check printed is masked, on the page as in the JSON
    assert!(html.contains("&amp; ***</span>"), "{html}");
    let json = get(w.port, "/status").body;
    assert!(json.contains(" ***"), "{json}");
    for text in [html, &json] {
        assert!(!text.contains("8675309"), "the secret is shown:\n{text}");
    }
    // no markup of the config's or the check's own: not a tag, not an attribute
    assert!(
        !html.contains("<script") && !html.contains("alert(1)</"),
        "{html}"
    );
    let head = request(w.port, "HEAD", "/", "");
    assert_eq!((head.code, head.body.as_str()), (200, ""), "{}", head.head);

    // the listener only reads: every other method is refused, on every path
    let before = w.t.read("state.json");
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in [
            "/",
            "/status",
            "/metrics",
            "/healthz",
            "/targets/app/pause",
            "/pause",
        ] {
            let a = request(
                w.port,
                method,
                path,
                "{\"target\": \"app\", \"verb\": \"pause\"}",
            );
            assert_eq!(a.code, 405, "{method} {path}:\n{}\n{}", a.head, a.body);
            assert_eq!(a.header("Allow"), Some("GET, HEAD"), "{method} {path}");
        }
    }
    assert_eq!(get(w.port, "/pause").code, 404);
    assert_eq!(get(w.port, "/index.html").code, 404);
    // nothing was paused or reset: after another pass, the same targets, statuses and counts
    let passes = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s).expect("state")["passes_total"]
            .as_u64()
            .unwrap_or(0)
    };
    let n = passes(&before);
    assert!(
        wait_until(EVENT_LIMIT, || passes(&w.t.read("state.json")) > n),
        "no pass after the requests: {}",
        run.stderr_so_far()
    );
    let doc = status_when(w.port, "the same statuses", |_| true);
    for (name, status) in [("app", "healthy"), ("web", "healthy"), (HOSTILE, "failed")] {
        let t = target(&doc, name);
        assert_eq!(t["status"], status, "{t:#}");
        assert!(t["paused"].is_null(), "{t:#}");
    }
    // the failing target's count went on, pass by pass: nothing reset it
    let before: serde_json::Value = serde_json::from_str(&before).expect("state");
    let after = w.t.state();
    let figure = |st: &serde_json::Value, key: &str| {
        let v = if key == "passes_total" {
            &st[key]
        } else {
            &st["targets"][HOSTILE][key]
        };
        v.as_u64().unwrap_or_else(|| panic!("no {key} in {st:#}"))
    };
    assert_eq!(
        figure(&after, "consecutive_failures") - figure(&before, "consecutive_failures"),
        figure(&after, "passes_total") - figure(&before, "passes_total"),
        "{before:#}\n{after:#}"
    );
    // /metrics answers as it always did: the same head, no header of the pages
    let m = get(w.port, "/metrics");
    assert_eq!(
        m.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close",
            m.body.len()
        )
    );
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run exits on SIGTERM")
        .assert_code(0);
}

/// Run `cmd` to its end, for at most `limit` (then killed): its stdout.
fn output_within(mut cmd: Command, limit: Duration) -> (std::process::ExitStatus, String, String) {
    let what = format!("{cmd:?}");
    let mut child = ChildGuard::spawn({
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    });
    let out = child.child.stdout.take().expect("stdout");
    let err = child.child.stderr.take().expect("stderr");
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.child.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "{what} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

/// A real browser renders the page: headless chromium's DOM has every target and its
/// status, the hostile name as text, and no script element.
#[test]
fn a_real_browser_renders_the_page() {
    let chromium = "/usr/bin/chromium";
    assert!(
        std::path::Path::new(chromium).exists(),
        "{chromium} is missing: this test needs Debian's chromium (`apt-get install chromium`; .ci/run installs it)"
    );
    let w = watched();
    let mut run = w.t.spawn(&["run"]);
    page_when_checked(w.port);
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        // this machine has no network: no background calls home
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!(
        "--user-data-dir={}",
        w.t.path("chromium").display()
    ))
    .arg("--dump-dom")
    .arg(format!("http://127.0.0.1:{}/", w.port));
    let (status, dom, err) = output_within(cmd, EVENT_LIMIT);
    assert!(status.success(), "chromium failed ({status}):\n{err}");
    assert!(
        dom.contains("<table>"),
        "no table in the DOM:\n{dom}\n{err}"
    );
    // the DOM as the browser built it: one row per target, each with its status in words
    let rows: Vec<&str> = dom.split("<tr").skip(2).collect();
    assert_eq!(rows.len(), 3, "{dom}");
    for (row, name, status) in [
        (rows[0], ">app</td>", "healthy"),
        (rows[1], ">web</td>", "healthy"),
        (
            rows[2],
            ">&lt;script&gt;alert(1)&lt;/script&gt; \"'&amp;</td>",
            "failed",
        ),
    ] {
        assert!(row.contains(name), "{name} not in {row}");
        assert!(row.contains(status), "{status} not in {row}");
    }
    assert!(
        !dom.contains("<script"),
        "a script element in the DOM:\n{dom}"
    );
    assert!(dom.contains("1 of 3 not healthy"), "{dom}");
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run exits on SIGTERM")
        .assert_code(0);
}

/// The page shows names and reasons to whoever connects: `test-config` says so of a listener
/// other hosts can reach, and not of one on the loopback.
#[test]
fn test_config_warns_of_a_listener_other_hosts_reach() {
    let cfg = |listen: &str| {
        Test::new().config(&format!(
            r#"
state_file: {{dir}}/state.json
metrics: {{listen: "{listen}"}}
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#
        ))
    };
    for listen in ["0.0.0.0:9798", "[::]:9798", "192.0.2.1:9798"] {
        let t = cfg(listen);
        t.run(&["test-config"])
            .assert_code(0)
            .assert_stderr_contains(&format!(
                "metrics.listen: {listen} can be reached from other hosts: the status page (/ and /status) shows every target's name and last reason to whoever connects (read only); keep it on 127.0.0.1"
            ))
            .assert_stdout_contains(&format!("status page http://{listen}/ and /status"));
    }
    for listen in ["127.0.0.1:9798", "[::1]:9798"] {
        cfg(listen)
            .run(&["test-config"])
            .assert_code(0)
            .assert_stderr_not_contains("other hosts");
    }
}

/// `GET path` with the raw header lines `headers` (a `Host:` among them, or none).
fn get_with(port: u16, path: &str, headers: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the listener");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\n{headers}\r\n").expect("write request");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read answer");
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    Answer {
        code: head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Security review (DNS rebinding): a web page the operator visits can point a name of its own
/// at 127.0.0.1 and read the listener as same-origin; the browser then sends that name as
/// `Host`. Only the listener's own names are answered: its address (as Prometheus sends it),
/// `localhost` and the machine's hostname, with or without the port; any other name gets `421`
/// on every path and learns nothing of the targets.
#[test]
fn only_the_listeners_own_host_names_are_answered() {
    let port = free_port();
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
interval_seconds: 3600
metrics: {{listen: "127.0.0.1:{port}"}}
targets:
  - name: secret-billing-db
    checks:
      - command: ["/bin/sh", "-c", "echo replica lag on db-7.internal; exit 1"]
    action: none
"#
    ));
    let mut run = t.spawn(&["run"]);
    status_when(port, "the target checked", |d| {
        d["targets"][0]["last_check"].is_string()
    });
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    let paths = ["/", "/status", "/metrics", "/healthz"];
    // what Prometheus, curl, a browser on the address or on the machine's name send
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        format!("localhost:{port}"),
        "LocalHost".to_string(),
        format!("{hostname}:{port}"),
        hostname.to_uppercase(),
    ] {
        for path in paths {
            let a = get_with(port, path, &format!("Host: {host}\r\n"));
            assert_eq!(
                a.code, 200,
                "Host: {host}, {path}:\n{}\n\n{}",
                a.head, a.body
            );
        }
    }
    // a request without Host (HTTP/1.0 tools; a browser always sends one)
    assert_eq!(get_with(port, "/healthz", "").code, 200);
    // names that are not the listener's: what a rebinding page's requests carry
    for host in [
        format!("rebind.attacker.example:{port}"),
        "rebind.attacker.example".to_string(),
        format!("127.0.0.1.nip.io:{port}"),
        format!("localhost.attacker.example:{port}"),
        format!("{hostname}.attacker.example:{port}"),
        format!("127.0.0.2:{port}"),
        format!("localhost:{}", port.wrapping_add(1).max(1)),
        String::new(),
    ] {
        for path in paths {
            let a = get_with(port, path, &format!("Host: {host}\r\n"));
            assert_eq!(
                a.code, 421,
                "Host: {host:?}, {path}:\n{}\n\n{}",
                a.head, a.body
            );
            assert!(
                a.body.starts_with("misdirected request: Host ")
                    && a.body.ends_with('\n')
                    && a.body.lines().count() == 1,
                "{:?}",
                a.body
            );
            for leak in ["secret-billing-db", "db-7.internal", "replica"] {
                assert!(!a.body.contains(leak), "{leak} in: {}", a.body);
            }
        }
    }
    // two Host headers: which one would a proxy have checked?
    let a = get_with(
        port,
        "/status",
        &format!("Host: 127.0.0.1:{port}\r\nHost: rebind.attacker.example\r\n"),
    );
    assert_eq!(a.code, 400, "{}\n\n{}", a.head, a.body);
    assert!(!a.body.contains("secret-billing-db"), "{}", a.body);
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run exits on SIGTERM")
        .assert_code(0);
}
