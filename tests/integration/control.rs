//! The operator's verbs while `run` holds the state: they reach the daemon over its control
//! socket (`<state_file>.sock` here), which applies them to the state it holds, between passes,
//! without restarting and without losing what it holds in memory. Same words, same exit codes
//! as without a daemon. Only root may use it; a path planted beforehand is left alone; a
//! client sends nothing to a socket it does not trust.

use crate::harness::*;
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

/// `web`: a real process (a copy of sleep under a unique name) that the exec action starts,
/// stops and restarts, each run appending its name to `actions`; its check is its pid file.
/// `down`: a command check that always fails, action none.
fn config(t: &Test, prog: &str, interval: u64) -> String {
    t.expand(&format!(
        r#"
state_file: {{dir}}/state.json
interval_seconds: {interval}
targets:
  - name: web
    checks:
      - pid_file: {{dir}}/web.pid
    action:
      exec:
        start: ["/bin/sh", "-c", "echo start >> {{dir}}/actions; {{dir}}/{prog} 1000 > /dev/null 2>&1 & echo $! > {{dir}}/web.pid"]
        stop: ["/bin/sh", "-c", "echo stop >> {{dir}}/actions; kill $(cat {{dir}}/web.pid)"]
        restart: ["/bin/sh", "-c", "echo restart >> {{dir}}/actions; kill $(cat {{dir}}/web.pid); {{dir}}/{prog} 1000 > /dev/null 2>&1 & echo $! > {{dir}}/web.pid"]
    policy:
      restart_cooldown_seconds: 0
  - name: down
    checks:
      - command: ["/bin/false"]
    action: none
"#
    ))
}

/// A test dir with the config above, its program, and the daemon's socket path.
fn setup(interval: u64) -> (Test, KillNamed) {
    let t = Test::new();
    let (prog, guard) = unique_sleep(&t);
    let text = config(&t, &prog, interval);
    (t.config(&text), guard)
}

fn sock(t: &Test) -> std::path::PathBuf {
    t.path("state.json.sock")
}

/// `run`, once its socket is there and its first pass done (web started).
fn daemon(t: &Test) -> Running {
    let mut run = t.spawn(&["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("msg=\"pass done\"")),
        "no first pass: {}",
        run.stderr_so_far()
    );
    assert!(
        std::fs::symlink_metadata(sock(t)).is_ok_and(|m| m.file_type().is_socket()),
        "no control socket: {}",
        run.stderr_so_far()
    );
    run
}

fn passes(run: &mut Running) -> usize {
    run.stderr_so_far().matches("msg=\"pass done\"").count()
}

/// Wait for `n` more passes of the daemon.
#[track_caller]
fn wait_passes(run: &mut Running, n: usize) {
    let start = passes(run);
    assert!(
        wait_until(EVENT_LIMIT, || passes(run) >= start + n),
        "the daemon ran no {n} more passes: {}",
        run.stderr_so_far()
    );
}

fn actions(t: &Test) -> Vec<String> {
    std::fs::read_to_string(t.path("actions"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn web_pid(t: &Test) -> i32 {
    read_pid(&t.path("web.pid")).expect("web.pid")
}

fn running(pid: i32) -> bool {
    proc_info(pid).is_some_and(|p| p.state != 'Z')
}

/// curl over the control socket: (HTTP status, body).
fn curl(t: &Test, method: &str, url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "60",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
        ])
        .arg(sock(t))
        .args(["-X", method, url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn stop(mut run: Running) -> Output {
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit after SIGTERM")
}

/// A paused target is neither checked nor acted on by the daemon: its process, killed,
/// stays down over several passes (exactly one action: the first start); resumed, the next
/// pass starts it again. The pause is in the state file the daemon saved.
#[test]
fn pause_through_the_daemon_keeps_a_killed_target_down_until_resume() {
    let (t, _g) = setup(1);
    let mut run = daemon(&t);
    // the first pass started it (its stop first, as for any target not running)
    let initial = actions(&t);
    assert_eq!(initial.last().map(String::as_str), Some("start"));
    let first = web_pid(&t);
    let out = t.run(&["pause", "web", "--reason", "disk swap"]);
    out.assert_code(0)
        .assert_stdout_contains("web: paused until `neon-watchdog resume`");
    assert!(
        run.stderr_so_far()
            .contains("msg=\"target paused: not checked, nothing done for it until resumed\" target=web by=operator"),
        "the daemon did not log the pause: {}",
        run.stderr_so_far()
    );
    assert_eq!(t.state()["targets"]["web"]["paused"]["reason"], "disk swap");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), Signal::SIGKILL);
    wait_passes(&mut run, 3);
    assert_eq!(actions(&t), initial, "the daemon acted on a paused target");
    assert!(!running(first));
    t.run(&["resume", "web"])
        .assert_code(0)
        .assert_stdout_contains("web: resumed (paused since");
    assert!(
        wait_until(EVENT_LIMIT, || actions(&t)
            .last()
            .is_some_and(|a| a == "start")
            && actions(&t).len() > initial.len()),
        "not started again after resume: {}",
        run.stderr_so_far()
    );
    assert!(wait_until(EVENT_LIMIT, || running(web_pid(&t))));
    let out = stop(run);
    out.assert_code(0);
    assert!(t.state()["targets"]["web"]
        .get("paused")
        .is_none_or(|p| p.is_null()));
}

/// A restart through the daemon runs the action exactly once, and the daemon's memory keeps
/// it: its status (from memory) and its later passes count it; the state is not clobbered.
#[test]
fn restart_through_the_daemon_runs_once_and_the_daemon_keeps_count() {
    let (t, _g) = setup(1);
    let mut run = daemon(&t);
    assert!(wait_until(EVENT_LIMIT, || running(web_pid(&t))));
    let mut expected = actions(&t);
    let before = web_pid(&t);
    let (code, body) = curl(&t, "GET", "http://localhost/v1/status");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    let web = |s: &serde_json::Value| {
        s["targets"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == "web").cloned())
            .expect("web in status")
    };
    assert_eq!(web(&status)["restarts_total"], 1, "{status}");
    t.run(&["restart", "web"])
        .assert_code(0)
        .assert_stdout_contains("web: restart done (exit 0) in");
    expected.push("restart".to_string());
    assert_eq!(actions(&t), expected, "not exactly one restart");
    assert!(run.stderr_so_far().contains("action=restart by=operator"));
    let after = web_pid(&t);
    assert_ne!(after, before);
    assert!(running(after));
    let (_, body) = curl(&t, "GET", "http://localhost/v1/status");
    let status: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(web(&status)["restarts_total"], 2, "{status}");
    // later passes keep it, and act no more (the target is healthy)
    wait_passes(&mut run, 2);
    assert_eq!(actions(&t), expected);
    let (_, body) = curl(&t, "GET", "http://localhost/v1/status");
    let status: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(web(&status)["restarts_total"], 2, "{status}");
    stop(run).assert_code(0);
    assert_eq!(t.state()["targets"]["web"]["restarts_total"], 2);
}

/// stop: paused, then its stop (the process is gone and stays gone over passes); start:
/// resumed, then its start.
#[test]
fn stop_and_start_through_the_daemon() {
    let (t, _g) = setup(1);
    let mut run = daemon(&t);
    assert!(wait_until(EVENT_LIMIT, || running(web_pid(&t))));
    let pid = web_pid(&t);
    let mut expected = actions(&t);
    t.run(&["stop", "web"])
        .assert_code(0)
        .assert_stdout_contains("web: stop done (exit 0) in");
    assert!(wait_until(EVENT_LIMIT, || !running(pid)));
    expected.push("stop".to_string());
    wait_passes(&mut run, 2);
    assert_eq!(
        actions(&t),
        expected,
        "the daemon acted on a stopped target"
    );
    t.run(&["start", "web"])
        .assert_code(0)
        .assert_stdout_contains("web: start done (exit 0) in");
    // its start (an exec start runs its stop first, as for any target not running)
    let now = actions(&t);
    assert!(
        now.starts_with(&expected) && now.last().is_some_and(|a| a == "start"),
        "{now:?}"
    );
    let expected = now;
    assert!(running(web_pid(&t)));
    wait_passes(&mut run, 2);
    assert_eq!(actions(&t), expected);
    stop(run).assert_code(0);
}

/// check TARGET through the daemon: a partial pass in the daemon (its lines in the daemon's
/// log), exit 2 failing, 0 healthy; an unknown target 64, as without a daemon.
#[test]
fn check_through_the_daemon() {
    let (t, _g) = setup(3600);
    let mut run = daemon(&t);
    let out = t.run(&["check", "down"]);
    out.assert_code(2);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.matches("target=down check=").count()
            >= 2),
        "the check did not run in the daemon: {}",
        run.stderr_so_far()
    );
    assert!(
        !out.stderr.contains("target=down"),
        "the check ran in the client: {out}"
    );
    t.run(&["check", "web"]).assert_code(0);
    let unknown = t.run(&["check", "wbe"]);
    unknown
        .assert_code(64)
        .assert_stderr_contains("did you mean \"web\"?");
    let (code, body) = curl(&t, "POST", "http://localhost/v1/check?target=wbe");
    assert_eq!(code, 404, "{body}");
    let (code, body) = curl(&t, "POST", "http://localhost/v1/targets/down/check");
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("{\"exit\":2,"), "{body}");
    stop(run);
    // without the daemon: the same words
    let direct = t.run(&["check", "wbe"]);
    direct.assert_code(64);
    assert_eq!(direct.stderr, unknown.stderr);
}

/// The same verbs with and without a daemon: the same words and exit codes (times and the
/// test's directory aside).
#[test]
fn the_same_verb_gives_the_same_answer_with_and_without_a_daemon() {
    let verbs: &[&[&str]] = &[
        &["pause", "web", "--for", "2h", "--reason", "maintenance"],
        &["pause", "web"],
        &["resume", "web"],
        &["resume", "web"],
        &["reset", "down"],
        &["reset", "--all"],
        &["restart", "down"],
        &["pause", "web", "web"],
        &["pause", "nope"],
        &["check", "down"],
        &["check", "web"],
    ];
    let normalize = |t: &Test, s: &str| -> String {
        let s = s.replace(&t.dir().display().to_string(), "{dir}");
        let re = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z( \([^)]*\))?")
            .expect("regex");
        let s = re.replace_all(&s, "TIME").into_owned();
        let ms = regex::Regex::new(r"in \d+ ms").expect("regex");
        ms.replace_all(&s, "in N ms").into_owned()
    };
    let answers = |t: &Test| -> Vec<(Option<i32>, String, String)> {
        verbs
            .iter()
            .map(|v| {
                let o = t.run(v);
                let err: String = o
                    .stderr
                    .lines()
                    .filter(|l| !l.starts_with("ts="))
                    .map(|l| format!("{l}\n"))
                    .collect();
                (o.code, normalize(t, &o.stdout), normalize(t, &err))
            })
            .collect()
    };
    // without: one pass first, as the daemon's first pass
    let (a, _ga) = setup(3600);
    a.run(&["check"]).assert_code(2);
    let without = answers(&a);
    let (b, _gb) = setup(3600);
    let run = daemon(&b);
    let with = answers(&b);
    stop(run).assert_code(0);
    for ((v, w), d) in verbs.iter().zip(&with).zip(&without) {
        assert_eq!(w, d, "{v:?}: with a daemon (left), without (right)");
    }
    // and they said something
    assert_eq!(with[0].0, Some(0));
    assert_eq!(with[8].0, Some(64));
    assert_eq!(with[9].0, Some(2));
}

/// Not root: a verb as nobody against root's socket is refused (exit 77, "run it as root")
/// and changes nothing, whether it cannot reach the socket (0600) or reaches it anyway (with
/// CAP_DAC_OVERRIDE): then the daemon refuses its credentials (403) and logs it.
#[test]
fn a_verb_as_nobody_is_refused_and_changes_nothing() {
    let (t, _g) = setup(3600);
    // nobody may read the config and walk to the socket: the socket's own mode stops it
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(t.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut run = daemon(&t);
    let m = std::fs::symlink_metadata(sock(&t)).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert_eq!(m.uid(), 0);
    let state_before = t.read("state.json");
    let nobody = |caps: bool| {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
        if caps {
            c.args(["--inh-caps=+dac_override", "--ambient-caps=+dac_override"]);
        }
        c.arg(env!("CARGO_BIN_EXE_neon-watchdog"))
            .args(["pause", "web", "-c"])
            .arg(t.config_path());
        c.output().expect("run setpriv")
    };
    let o = nobody(false);
    let err = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(77), "{err}");
    assert!(
        err.contains("permission denied") && err.contains("run it as root"),
        "{err}"
    );
    let o = nobody(true);
    let err = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(77), "{err}");
    assert!(
        err.contains("permission denied: neon-watchdog's control socket")
            && err.contains("(you are uid 65534); run it as root"),
        "{err}"
    );
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s
            .contains("refused a request from uid 65534")),
        "{}",
        run.stderr_so_far()
    );
    assert_eq!(t.read("state.json"), state_before, "the state changed");
    let (code, body) = curl(&t, "GET", "http://localhost/v1/status");
    assert_eq!(code, 200);
    assert!(!body.contains("\"paused\": {"), "{body}");
    stop(run).assert_code(0);
    assert!(!sock(&t).exists(), "the socket outlived the daemon");
}

/// A socket file left at `path` by a process that is gone (bound, never listening again).
fn dead_socket(path: &std::path::Path, owner: u32) {
    let l = std::os::unix::net::UnixListener::bind(path).expect("bind");
    drop(l);
    nix::unistd::chown(path, Some(owner.into()), Some(owner.into())).unwrap();
    assert!(std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()));
}

/// What someone put at the socket's path before the daemon started (a symlink to a victim
/// file, a regular file, a FIFO, a socket of another user's) is left as it was: the daemon
/// runs its passes without a control socket and says where and what to do.
#[test]
fn a_planted_socket_path_is_left_alone() {
    for what in ["symlink", "file", "fifo", "their socket"] {
        let (t, _g) = setup(1);
        let path = sock(&t);
        let victim = t.write("victim", "precious\n");
        match what {
            "symlink" => std::os::unix::fs::symlink(&victim, &path).unwrap(),
            "file" => std::fs::write(&path, "planted\n").unwrap(),
            "their socket" => dead_socket(&path, 65534),
            _ => {
                nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap()
            }
        }
        let before = std::fs::symlink_metadata(&path).unwrap();
        let mut run = t.spawn(&["run"]);
        assert!(
            run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("no control socket:")),
            "{what}: {}",
            run.stderr_so_far()
        );
        wait_passes(&mut run, 2);
        let err = run.stderr_so_far();
        assert!(
            err.contains("not a socket of ours: it is left alone")
                && err.contains("remove it, then restart neon-watchdog"),
            "{what}: {err}"
        );
        let out = stop(run);
        out.assert_code(0);
        let after = std::fs::symlink_metadata(&path).expect("the planted path is gone");
        assert_eq!(
            (after.ino(), after.file_type(), after.mode()),
            (before.ino(), before.file_type(), before.mode()),
            "{what}"
        );
        assert_eq!(t.read("victim"), "precious\n", "{what}");
        if what == "file" {
            assert_eq!(t.read("state.json.sock"), "planted\n");
        }
    }
}

/// A previous run's socket (ours, no one listening: a daemon killed with SIGKILL) is no
/// daemon: a verb takes the lock and changes the state file itself; the next `run` replaces
/// the socket and listens there.
#[test]
fn a_stale_socket_of_ours_is_replaced() {
    let (t, _g) = setup(3600);
    dead_socket(&sock(&t), 0);
    t.run(&["pause", "down"])
        .assert_code(0)
        .assert_stdout_contains("down: paused");
    assert!(!t.state()["targets"]["down"]["paused"].is_null());
    let run = daemon(&t);
    let now = std::fs::symlink_metadata(sock(&t)).unwrap();
    // (the new one may reuse the old inode number: the log says it was replaced)
    assert_eq!(now.mode() & 0o777, 0o600);
    t.run(&["resume", "down"])
        .assert_code(0)
        .assert_stdout_contains("down: resumed");
    let out = stop(run);
    out.assert_code(0)
        .assert_stderr_contains("msg=\"removed the stale control socket of a previous run\"");
    assert!(
        out.stderr.contains("target resumed: watched again"),
        "{out}"
    );
}

/// STAND-IN: a server that is not neon-watchdog, listening at the socket's path as nobody
/// (python, binding as root then dropping to uid 65534 before listen(2), so its credentials
/// are nobody's). The client refuses to talk to it: first while the socket file is nobody's,
/// then (owned by root) because its peer credentials are nobody's. It sends nothing, changes
/// nothing, and does not fall back to acting on the state file.
#[test]
fn a_client_refuses_a_socket_it_does_not_trust() {
    let (t, _g) = setup(3600);
    let script = t.write(
        "standin.py",
        r#"
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
out = open(log, "a")
ready = open(path + ".ready", "w")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chown(path, 65534, 65534)
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
s.listen(8)
ready.write("listening")
ready.close()
while True:
    c, _ = s.accept()
    data = b""
    while True:
        b = c.recv(4096)
        if not b:
            break
        data += b
    out.write("conn %d bytes\n" % len(data))
    out.flush()
    c.close()
"#,
    );
    let mut server = std::process::Command::new("python3");
    server.arg(&script).arg(sock(&t)).arg(t.path("standin.log"));
    let mut server = ChildGuard::spawn(server);
    let _ = server.pid();
    assert!(wait_until(EVENT_LIMIT, || std::fs::symlink_metadata(sock(
        &t
    ))
    .is_ok_and(|m| m.uid() == 65534)));
    // wait for listen(2): a connect would be refused before
    assert!(wait_until(EVENT_LIMIT, || std::fs::read_to_string(
        t.path("state.json.sock.ready")
    )
    .is_ok_and(|s| s == "listening")));
    let o = t.run(&["pause", "web"]);
    o.assert_code(1)
        .assert_stdout_contains("refusing the control socket")
        .assert_stdout_contains("it is owned by uid 65534, not by root or you");
    // owned by root now, served by nobody
    nix::unistd::chown(&sock(&t), Some(0.into()), Some(0.into())).unwrap();
    let o = t.run(&["pause", "web"]);
    o.assert_code(1)
        .assert_stdout_contains("runs as uid 65534, not as root or you")
        .assert_stdout_contains("nothing was sent");
    assert!(
        wait_until(EVENT_LIMIT, || t.count_lines("standin.log") >= 1),
        "the stand-in saw no connection"
    );
    assert_eq!(t.read("standin.log"), "conn 0 bytes\n");
    assert!(
        !t.exists("state.json"),
        "the client acted on the state file instead"
    );
    server.kill_now();
}

/// A client that connects and sends nothing delays neither another client nor SIGTERM: the
/// connections are served on their own threads, each with a deadline.
#[test]
fn a_silent_client_delays_neither_other_clients_nor_sigterm() {
    let (t, _g) = setup(3600);
    let run = daemon(&t);
    // two silent, one half request: below MAX_CONNECTIONS (4), which bounds how many are
    // served at once (a fourth silent one would make others wait for its deadline)
    let silent: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(sock(&t)).expect("connect"))
        .collect();
    // REQUEST_TIME is 10 s: an answer within it was not held up by them
    t.run(&["pause", "web"])
        .assert_code(0)
        .assert_faster_than(Duration::from_secs(9));
    // a half request, never finished
    let mut half = UnixStream::connect(sock(&t)).expect("connect");
    half.write_all(b"POST /v1/pause?target=web HTTP/1.1\r\nContent-Le")
        .unwrap();
    t.run(&["resume", "web"])
        .assert_code(0)
        .assert_faster_than(Duration::from_secs(9));
    let out = stop(run);
    out.assert_code(0)
        .assert_faster_than(Duration::from_secs(9));
    // the silent ones were answered or closed, never left hanging on a dead daemon
    for mut s in silent {
        s.set_read_timeout(Some(EVENT_LIMIT)).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
}

/// The status page follows a verb at once, not at the next pass (an hour away here): a pause
/// through the daemon shows on `/status` right after the verb answers.
#[test]
fn the_status_page_shows_a_verb_without_waiting_for_a_pass() {
    let (t, _g) = setup(3600);
    let port = free_port();
    let text = std::fs::read_to_string(t.config_path()).expect("config");
    std::fs::write(
        t.config_path(),
        text.replacen(
            "targets:",
            &format!("metrics: {{listen: \"127.0.0.1:{port}\"}}\ntargets:"),
            1,
        ),
    )
    .expect("write config");
    let run = daemon(&t);
    wait_for_port(port, EVENT_LIMIT);
    let status = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read");
        let json = body.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str::<serde_json::Value>(json).expect("status JSON")
    };
    assert!(status()["targets"][0]["paused"].is_null());
    t.run(&["pause", "web", "--reason", "deploy"])
        .assert_code(0)
        .assert_stdout_contains("web: paused");
    let v = status();
    assert_eq!(v["targets"][0]["paused"]["reason"], "deploy", "{v}");
    stop(run);
}
