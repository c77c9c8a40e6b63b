//! Notifications, heartbeats and metrics over real passes. The webhook and heartbeat
//! endpoints are a real HTTP server on 127.0.0.1 in this test process that records every
//! request and can fail the first N; exec notifiers are real scripts; the metrics textfile is
//! checked with the real `promtool check metrics`.
//!
//! The target is healthy while the file `up` exists in the test dir.

use crate::harness::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// What the server answered.
    pub status: u16,
}

impl Req {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 server that records requests and answers 500 to the first `fail_first`.
pub struct Recorder {
    pub port: u16,
    requests: Arc<Mutex<Vec<Req>>>,
    fail_left: Arc<AtomicUsize>,
}

impl Recorder {
    pub fn start(fail_first: usize) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fail_left = Arc::new(AtomicUsize::new(fail_first));
        let (reqs, fails) = (requests.clone(), fail_left.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                if let Some(r) = serve_one(conn, &fails) {
                    reqs.lock().unwrap().push(r);
                }
            }
        });
        Recorder {
            port,
            requests,
            fail_left,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 200)
            .collect()
    }

    pub fn fail_next(&self, n: usize) {
        self.fail_left.store(n, Ordering::SeqCst);
    }
}

fn serve_one(mut s: TcpStream, fails: &AtomicUsize) -> Option<Req> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let (head, mut buf) = read_head(&mut s)?;
    let mut chunk = [0u8; 4096];
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf).into_owned();
    let fail = fails
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail { 500 } else { 200 };
    let text = if fail { "boom" } else { "ok" };
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    Some(Req {
        method,
        path,
        headers,
        body,
        status,
    })
}

/// A target healthy while `{dir}/up` exists, no action, and `top` as extra top-level keys.
fn watched(top: &str, policy: &str) -> Test {
    Test::new()
        .env("HOOK_TOKEN", "s3cr3t-hook-token")
        .config(&format!(
            r#"
state_file: {{dir}}/state.json
{top}
targets:
  - name: app
    checks:
      - command: ["/bin/test", "-e", "{{dir}}/up"]
    policy: {policy}
    action: none
"#
        ))
}

fn events(reqs: &[Req]) -> Vec<String> {
    reqs.iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn down_and_recovered_are_sent_once_each_over_many_passes() {
    let hook = Recorder::start(0);
    let t = watched(
        &format!(
            r#"notify:
  - webhook:
      url: {}
      headers: {{Authorization: "Bearer ${{HOOK_TOKEN}}", X-Source: watchdog}}"#,
            hook.url("/hook")
        ),
        "{fail_threshold: 2}",
    );
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    std::fs::remove_file(t.path("up")).expect("rm up");
    for _ in 0..5 {
        let out = t.run(&["check"]);
        out.assert_code(2).assert_stderr_not_contains("s3cr3t");
    }
    t.write("up", "");
    for _ in 0..3 {
        t.run(&["check"]).assert_code(0);
    }
    let got = hook.delivered();
    assert_eq!(events(&got), ["down", "recovered"], "{got:#?}");
    let down = got[0].json();
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/hook");
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer s3cr3t-hook-token")
    );
    assert_eq!(got[0].header("x-source"), Some("watchdog"));
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(down["target"], "app");
    assert_eq!(down["severity"], "error");
    assert_eq!(down["status"], "failed");
    assert_eq!(down["previous_status"], "degraded");
    assert_eq!(down["failures"], 2);
    assert_eq!(down["restarts_last_hour"], 0);
    assert_eq!(down["reason"], "command: exit 1");
    assert_eq!(down["version"], env!("CARGO_PKG_VERSION"));
    assert!(down["host"].as_str().is_some_and(|h| !h.is_empty()));
    let ts = down["timestamp"].as_str().expect("timestamp");
    assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    let rec = got[1].json();
    assert_eq!(rec["status"], "healthy");
    assert_eq!(rec["previous_status"], "failed");
    assert!(rec["downtime_seconds"].as_u64().is_some(), "{rec}");
    assert!(!t.read("state.json").contains("s3cr3t"));
}

#[test]
fn retries_inside_the_pass_deliver_a_flaky_webhook() {
    let hook = Recorder::start(2);
    let t = watched(
        &format!(
            "notify:\n  - webhook: {{url: \"{}\", retries: 3}}",
            hook.url("/h")
        ),
        "{}",
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"notification sent\""], "tries=3");
    assert_eq!(hook.requests().len(), 3);
    assert_eq!(events(&hook.delivered()), ["down"]);
    assert!(t.state().get("pending_notifications").is_none());
}

#[test]
fn a_failed_delivery_waits_in_the_state_file_and_is_sent_once_next_pass() {
    let hook = Recorder::start(100);
    let t = watched(
        &format!(
            "notify:\n  - webhook: {{url: \"{}\", retries: 1, timeout_seconds: 2}}\n    events: [down, recovered]",
            hook.url("/h")
        ),
        "{}",
    );
    t.run(&["check"]).assert_code(2).assert_line_contains(
        &["msg=\"notification failed; will retry next pass\""],
        "err=\"HTTP 500: boom\"",
    );
    assert_eq!(hook.requests().len(), 2, "1 try + 1 retry");
    let st = t.state();
    let pending = st["pending_notifications"]
        .as_array()
        .expect("pending kept");
    assert_eq!(pending.len(), 1, "{st}");
    assert_eq!(pending[0]["event"]["event"], "down");
    assert_eq!(pending[0]["attempts"], 1);
    // the webhook is back: the next pass delivers it, exactly once, and no new event
    hook.fail_next(0);
    t.run(&["check"]).assert_code(2);
    t.run(&["check"]).assert_code(2);
    assert_eq!(events(&hook.delivered()), ["down"]);
    assert!(t.state().get("pending_notifications").is_none());
    // and the next event follows in order
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    assert_eq!(events(&hook.delivered()), ["down", "recovered"]);
}

#[test]
fn slack_and_discord_bodies_and_event_filters() {
    let hook = Recorder::start(0);
    let t = watched(
        &format!(
            "notify:\n  - webhook: {{url: \"{0}\", format: slack}}\n  - webhook: {{url: \"{1}\", format: discord}}\n    events: [recovered]",
            hook.url("/slack"),
            hook.url("/discord")
        ),
        "{}",
    );
    t.run(&["check"]).assert_code(2);
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    let got = hook.delivered();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(sorted, ["/discord", "/slack", "/slack"], "{got:#?}");
    let slack: Vec<String> = got
        .iter()
        .filter(|r| r.path == "/slack")
        .map(|r| r.json()["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        slack[0].contains("app is DOWN: command: exit 1"),
        "{slack:?}"
    );
    assert!(slack[1].contains("app RECOVERED after"), "{slack:?}");
    let discord = got.iter().find(|r| r.path == "/discord").expect("discord");
    assert!(discord.json()["content"]
        .as_str()
        .is_some_and(|c| c.contains("app RECOVERED")));
}

#[test]
fn exec_notifier_gets_the_event_on_stdin_and_in_its_environment() {
    let t = Test::new();
    t.script(
        "notify.sh",
        "#!/bin/sh\ncat > {dir}/event.json\necho \"$NEON_WATCHDOG_TARGET|$NEON_WATCHDOG_EVENT|$NEON_WATCHDOG_STATUS|$NEON_WATCHDOG_FAILURES|$NEON_WATCHDOG_REASON\" >> {dir}/env.txt\n",
    );
    let t = t.config(
        r#"
state_file: {dir}/state.json
notify:
  - exec: ["{dir}/notify.sh"]
    events: [down, gave_up]
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action: none
"#,
    );
    for _ in 0..3 {
        t.run(&["check"]).assert_code(2);
    }
    assert_eq!(
        t.read("env.txt").trim_end(),
        "app|down|failed|1|command: exit 1",
        "told once"
    );
    let e = t.json("event.json");
    assert_eq!(e["event"], "down");
    assert_eq!(e["target"], "app");
    assert_eq!(e["status"], "failed");
}

#[test]
fn reminders_repeat_down_while_the_target_stays_down() {
    let hook = Recorder::start(0);
    let t = watched(
        &format!(
            "reminder_every_seconds: 60\nnotify:\n  - webhook: {{url: \"{}\"}}",
            hook.url("/h")
        ),
        "{}",
    );
    t.run(&["check"]).assert_code(2);
    t.run(&["check"]).assert_code(2);
    // 30 s after `down`: no reminder yet
    t.age_state(30);
    t.run(&["check"]).assert_code(2);
    assert_eq!(hook.delivered().len(), 1, "a reminder before a minute");
    // 61 s after it: one reminder, with the downtime so far
    t.age_state(31);
    t.run(&["check"]).assert_code(2);
    let got = hook.delivered();
    assert_eq!(events(&got), ["down", "down"]);
    assert_eq!(got[1].json()["reminder"], true);
    let downtime = got[1].json()["downtime_seconds"].as_u64();
    assert!(downtime.is_some_and(|d| d >= 61), "{:?}", got[1].body);
}

#[test]
fn heartbeat_pings_start_success_and_fail() {
    let hb = Recorder::start(0);
    let t = watched(
        &format!(
            "heartbeat: {{url: \"{}\", send_start: true}}",
            hb.url("/ping/abc")
        ),
        "{}",
    );
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    std::fs::remove_file(t.path("up")).expect("rm up");
    t.run(&["check"]).assert_code(2);
    let got: Vec<(String, String)> = hb
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let want: Vec<(String, String)> = [
        ("GET", "/ping/abc/start"),
        ("POST", "/ping/abc"),
        ("GET", "/ping/abc/start"),
        ("POST", "/ping/abc/fail"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);
    let fail = &hb.requests()[3];
    assert!(fail.body.contains("failing=1"), "{}", fail.body);
    assert!(fail.body.contains("app: command: exit 1"), "{}", fail.body);
}

#[test]
fn a_dead_heartbeat_or_webhook_never_changes_the_exit_code() {
    let dead = free_port();
    let t = watched(
        &format!(
            "heartbeat: {{url: \"http://127.0.0.1:{dead}/hb\", timeout_seconds: 1}}\nnotify:\n  - webhook: {{url: \"http://127.0.0.1:{dead}/h\", retries: 0, timeout_seconds: 1}}"
        ),
        "{}",
    );
    t.write("up", "");
    t.run(&["check"])
        .assert_code(0)
        .assert_line_contains(&["msg=\"heartbeat failed\""], "connection refused");
    std::fs::remove_file(t.path("up")).expect("rm up");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"notification failed"], "connection refused");
}

#[test]
fn metrics_textfile_passes_promtool() {
    let t = watched(
        "metrics: {textfile: \"{dir}/nw.prom\"}",
        "{restart_cooldown_seconds: 0}",
    );
    t.write("up", "");
    t.run(&["check"]).assert_code(0);
    std::fs::remove_file(t.path("up")).expect("rm up");
    t.run(&["check"]).assert_code(2);
    let text = t.read("nw.prom");
    let check_up =
        "neon_watchdog_check_up{target=\"app\",check=\"command\",kind=\"command\"} 0".to_string();
    for line in [
        check_up.as_str(),
        "neon_watchdog_target_up{target=\"app\"} 0",
        "neon_watchdog_target_consecutive_failures{target=\"app\"} 1",
        "neon_watchdog_target_restarts_total{target=\"app\"} 0",
        "neon_watchdog_target_status{target=\"app\",status=\"failed\"} 1",
        "neon_watchdog_target_status{target=\"app\",status=\"healthy\"} 0",
        "# TYPE neon_watchdog_target_restarts_total counter",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("neon_watchdog_run_duration_seconds "));
    assert!(text.contains("neon_watchdog_last_run_timestamp_seconds "));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(t.path("nw.prom"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(t.path("nw.prom")).expect("open"))
        .output()
        .expect("promtool (Debian package prometheus) must be installed");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect metrics");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn run_serves_metrics_and_healthz() {
    let port = free_port();
    let t = watched(
        &format!("interval_seconds: 1\nmetrics: {{listen: \"127.0.0.1:{port}\"}}"),
        "{}",
    );
    t.write("up", "");
    let mut run = t.spawn(&["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("msg=\"pass done\"")),
        "no pass: {}",
        run.stderr_so_far()
    );
    let (code, body) = http_get(port, "/metrics");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("neon_watchdog_target_up{target=\"app\"} 1"),
        "{body}"
    );
    let (code, body) = http_get(port, "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    assert_eq!(http_get(port, "/nope").0, 404);
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let out = run.wait_timeout(EVENT_LIMIT).expect("run exits on SIGTERM");
    out.assert_code(0);
}

#[test]
fn removing_notify_drops_what_was_owed() {
    let hook = Recorder::start(100);
    let t = watched(
        &format!(
            "notify:\n  - webhook: {{url: \"{}\", retries: 0}}",
            hook.url("/h")
        ),
        "{}",
    );
    t.run(&["check"]).assert_code(2);
    assert!(t.state()["pending_notifications"]
        .as_array()
        .is_some_and(|p| p.len() == 1));
    t.write(
        "config.yml",
        "state_file: {dir}/state.json\ntargets:\n  - name: app\n    checks:\n      - command: [\"/bin/test\", \"-e\", \"{dir}/up\"]\n    action: none\n",
    );
    t.run(&["check"]).assert_code(2).assert_line_contains(
        &["level=error", "dropping undelivered notifications"],
        "dropped=1",
    );
    assert!(
        t.state().get("pending_notifications").is_none(),
        "{}",
        t.state()
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_stderr_not_contains("dropping");
}

#[test]
fn heartbeat_suffixes_go_before_a_query_string() {
    let hb = Recorder::start(0);
    let t = watched(
        &format!(
            "heartbeat: {{url: \"{}\", send_start: true}}",
            hb.url("/ping/key/my-slug/?create=1")
        ),
        "{}",
    );
    t.run(&["check"]).assert_code(2);
    let paths: Vec<String> = hb.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/ping/key/my-slug/start?create=1",
            "/ping/key/my-slug/fail?create=1"
        ]
    );
}

/// L4: a check's output goes into the chat message, and the service reads the message as
/// markup: the output must be shown, never obeyed. No `@everyone`/`@here`/`@channel` ping,
/// no `<!channel>`/`<!here>`/`<@U...>` mention, no `<url|text>` or `[text](url)` link that
/// shows one address and opens another. The posted bodies, as a real receiver gets them.
#[test]
fn check_output_cannot_ping_mention_or_disguise_links_in_chat() {
    let hook = Recorder::start(0);
    let hostile = "@everyone @here @channel <!channel> <!here> <@U024BE7LH> <https://evil.example/x|https://good.example/> [https://good.example/](https://evil.example/y)";
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
notify:
  - webhook: {{url: "{slack}", format: slack}}
  - webhook: {{url: "{discord}", format: discord}}
targets:
  - name: app
    checks:
      - command: ["/bin/sh", "-c", "echo \"$0\"; exit 1", "{hostile}"]
    action: none
"#,
        slack = hook.url("/slack"),
        discord = hook.url("/discord"),
    ));
    t.run(&["check"]).assert_code(2);
    let got = hook.delivered();
    let text = |path: &str, field: &str| -> (String, serde_json::Value) {
        let r = got
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("nothing posted to {path}: {got:#?}"));
        let v = r.json();
        (v[field].as_str().unwrap_or_default().to_string(), v)
    };
    let (slack, _) = text("/slack", "text");
    let (discord, body) = text("/discord", "content");
    for (what, m) in [("slack", &slack), ("discord", &discord)] {
        assert!(m.contains("app is DOWN"), "{what}: {m}");
        for ping in ["@everyone", "@here", "@channel"] {
            assert!(!m.contains(ping), "{what} would ping {ping}: {m}");
        }
        for markup in [
            "<!channel>",
            "<!here>",
            "<@U024BE7LH>",
            "<https://evil.example/x|",
        ] {
            assert!(!m.contains(markup), "{what} obeys {markup:?}: {m}");
        }
    }
    // a markdown link is Discord's (Slack shows `[text](url)` as it is)
    assert!(
        !discord.contains("](https://evil.example/y)"),
        "discord obeys a markdown link: {discord}"
    );
    // Slack's own escaping: the text is still there to read
    assert!(slack.contains("&lt;!channel&gt;"), "{slack}");
    assert!(
        slack.contains("&lt;https://evil.example/x|https://good.example/&gt;"),
        "{slack}"
    );
    // Discord: no mention of any kind is allowed to notify anyone
    assert_eq!(
        body["allowed_mentions"],
        serde_json::json!({"parse": []}),
        "{body}"
    );
}
