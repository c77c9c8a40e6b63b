//! Secrets: values that came from `${NAME}` (and `password=`-style values) never appear in
//! any output, at any level, in either log format, in the state file or in `test-config`.

use crate::harness::*;

const SECRET: &str = "s3cr3t-Vq7zK9";
const LITERAL_PASSWORD: &str = "hunter2-literal";

fn secret_test() -> Test {
    Test::new()
        .env("NW_IT_SECRET", SECRET)
        .config(&format!(
            r#"
state_file: {{dir}}/state.json
default_policy: {{restart_cooldown_seconds: 0}}
targets:
  - name: api
    checks:
      - command: ["/bin/sh", "-c", "echo \"auth failed for $0\" >&2; exit 1", "${{NW_IT_SECRET}}"]
      - command: ["/bin/sh", "-c", "echo \"auth $0 rejected\"; exit 2", "token={LITERAL_PASSWORD}"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo \"login with $API_TOKEN $1 failed\" >&2; exit 3", "restart", "--password={LITERAL_PASSWORD}"]
        env: {{API_TOKEN: "${{NW_IT_SECRET}}"}}
"#
        ))
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for s in [SECRET, LITERAL_PASSWORD] {
        assert!(!text.contains(s), "{what} leaks {s:?}:\n{text}");
    }
}

#[test]
fn secrets_never_appear_in_logs_at_any_level_or_format() {
    let t = secret_test();
    let runs: &[&[&str]] = &[
        &["check"],
        &["check", "-v"],
        &["check", "-vv"],
        &["check", "--debug", "--log-format", "json"],
        &["check", "--log-level", "trace", "--log-format", "json"],
        &["check", "--dry-run", "-v"],
        &["run", "--once", "-v"],
    ];
    for args in runs {
        let out = t.run(args);
        out.assert_code(2);
        assert_clean(&format!("stderr of {args:?}"), &out.stderr);
        assert_clean(&format!("stdout of {args:?}"), &out.stdout);
        // the failure is still readable, with the secret masked
        out.assert_stderr_contains("auth failed for ***");
        if args.contains(&"--dry-run") {
            out.assert_stderr_contains("would_run");
        } else {
            out.assert_stderr_contains("login with ***");
        }
    }
    let state = t.read("state.json");
    assert_clean("state.json", &state);
    assert!(state.contains("auth failed for ***"), "{state}");
}

#[test]
fn test_config_summary_masks_secrets() {
    let t = secret_test();
    let out = t.run(&["test-config"]);
    out.assert_code(0);
    assert_clean("test-config stdout", &out.stdout);
    assert_clean("test-config stderr", &out.stderr);
    out.assert_stdout_contains("***");
}

/// A secret in a config error (e.g. an invalid port built from an env var) is masked too.
#[test]
fn secrets_are_masked_in_config_errors() {
    let t = Test::new()
        .env("NW_IT_PORT", "70000")
        .env("NW_IT_SECRET", SECRET)
        .config(
            r#"
state_file: {dir}/state.json
targets:
  - name: api
    checks:
      - tcp_port: "127.0.0.1:${NW_IT_PORT}"
      - process_name: "/opt/${NW_IT_SECRET}/bin"
    action: none
"#,
        );
    let out = t.run(&["check"]);
    out.assert_code(78);
    assert_clean("config error", &out.stderr);
}

/// The files the watchdog itself writes beside the state (state file, lock, the exec action's
/// output file) must not expose a secret to other users: a file holding a command's raw output
/// (which may echo a `${NAME}` value) has to be private (no group/other access), and the state
/// file must not hold one at all.
#[test]
fn files_written_by_the_watchdog_do_not_expose_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let t = secret_test();
    t.run(&["check"]).assert_code(2);
    let mut checked = 0;
    for name in t.entries() {
        if name == "config.yml" {
            continue;
        }
        let path = t.path(&name);
        let meta = std::fs::metadata(&path).unwrap();
        if !meta.is_file() {
            continue;
        }
        checked += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let leaks = text.contains(SECRET) || text.contains(LITERAL_PASSWORD);
        let mode = meta.permissions().mode() & 0o777;
        assert!(
            !leaks || mode & 0o077 == 0,
            "{name} (mode {mode:o}) is readable by other users and holds a secret:\n{text}"
        );
    }
    assert!(checked >= 2, "{:?}", t.entries());
}

// --- secrets in every form ----------------------------------------------------------------

/// A `${NAME}` value that every escaper changes: `{:?}`, JSON and logfmt all write it as
/// `tok\"en\\x\\y-1234`, so a mask applied after formatting would never match it.
const ESCAPY: &str = r#"tok"en\x\y-1234"#;

/// Neither the value nor any escaped form of it: every form keeps `y-1234` as it is (nothing
/// in it is escaped) and begins with `tok` and a quote or a backslash.
#[track_caller]
fn assert_no_escapy(what: &str, text: &str) {
    for piece in ["y-1234", "tok\"", "tok\\"] {
        assert!(
            !text.contains(piece),
            "{what} holds {piece:?}, a piece of the secret {ESCAPY:?}:\n{text}"
        );
    }
}

/// The value reaches the reason of a failing check through `{:?}` ("with \"...\" in its
/// command line"), and from there every output: check lines in both formats, the state file,
/// `status` and `status --json`, the three webhook bodies, the heartbeat body and the
/// `test-config` summary.
#[test]
fn an_escaped_secret_is_masked_in_every_output() {
    let hook = crate::notify::Recorder::start(0);
    let name = unique_name("nwesc");
    let t = Test::new().env("NW_IT_SECRET", ESCAPY).config(&format!(
        r#"
state_file: {{dir}}/state.json
heartbeat: {{url: "{hb}"}}
notify:
  - webhook: {{url: "{json}"}}
  - webhook: {{url: "{slack}", format: slack}}
  - webhook: {{url: "{discord}", format: discord}}
targets:
  - name: api
    checks:
      - process_name: {name}
        cmdline_contains: "${{NW_IT_SECRET}}"
    action: none
"#,
        hb = hook.url("/hb"),
        json = hook.url("/json"),
        slack = hook.url("/slack"),
        discord = hook.url("/discord"),
    ));
    let out = t.run(&["check", "-v"]);
    out.assert_code(2);
    assert_no_escapy("logfmt check lines", &out.stderr);
    out.assert_line_contains(&["msg=check", "result=FAIL"], "***");
    let out = t.run(&["check", "-v", "--log-format", "json"]);
    out.assert_code(2);
    assert_no_escapy("JSON check lines", &out.stderr);
    let fail = json_lines(&out)
        .into_iter()
        .find(|l| l["msg"] == "check")
        .expect("a check line");
    assert!(
        fail["err"].as_str().is_some_and(|e| e.contains("***")),
        "{fail:?}"
    );
    let state = t.read("state.json");
    assert_no_escapy("state.json", &state);
    assert!(state.contains("***"), "{state}");
    for args in [&["status"][..], &["status", "--json"][..]] {
        let out = t.run(args);
        out.assert_code(2);
        assert_no_escapy(&format!("stdout of {args:?}"), &out.stdout);
        out.assert_stdout_contains("***");
    }
    let out = t.run(&["test-config"]);
    out.assert_code(0);
    assert_no_escapy("test-config stdout", &out.stdout);
    assert_no_escapy("test-config stderr", &out.stderr);
    out.assert_stdout_contains("***");
    let reqs = hook.requests();
    for path in ["/json", "/slack", "/discord", "/hb/fail"] {
        let got: Vec<_> = reqs.iter().filter(|r| r.path == path).collect();
        assert!(!got.is_empty(), "nothing sent to {path}: {reqs:#?}");
        for r in got {
            assert_no_escapy(&format!("the body sent to {path}"), &r.body);
            // Discord shows `\*\*\*` (its markup escaped) as `***`
            let mask = if path == "/discord" { r"\*\*\*" } else { "***" };
            let shown = match path {
                "/discord" => r.json()["content"].as_str().unwrap_or_default().to_string(),
                _ => r.body.clone(),
            };
            assert!(shown.contains(mask), "{path}: {}", r.body);
        }
    }
}

/// A config error that quotes the value with `{:?}` masks it in both log formats.
#[test]
fn an_escaped_secret_is_masked_in_config_errors() {
    let t = Test::new().env("NW_IT_SECRET", ESCAPY).config(
        r#"
state_file: {dir}/state.json
targets:
  - name: api
    checks:
      - process_name: "/opt/${NW_IT_SECRET}/bin"
    action: none
"#,
    );
    for args in [&["check"][..], &["check", "--log-format", "json"][..]] {
        let out = t.run(args);
        out.assert_code(78);
        assert_no_escapy(&format!("config error of {args:?}"), &out.stderr);
        out.assert_stderr_contains("***");
    }
}

/// 20 characters none of which a log line holds otherwise.
const LONG: &str = "Kx7Qz9Wv2Lp5Rn8Tj3Yb";

/// No 4 characters in a row of [`LONG`].
#[track_caller]
fn assert_no_piece_of_long(what: &str, text: &str) {
    let chars: Vec<char> = LONG.chars().collect();
    for w in chars.windows(4) {
        let piece: String = w.iter().collect();
        assert!(
            !text.contains(&piece),
            "{what} holds {piece:?}, a piece of the secret {LONG:?}:\n{text}"
        );
    }
}

/// The output is kept as its last 8 KiB: a command that prints the secret and then 8180 more
/// bytes (spaces, collapsed away in the tail) has its tail begin 8 characters into the secret.
/// The 12 characters after the cut are no less secret than the whole.
#[test]
fn an_output_tail_cut_inside_a_secret_shows_no_part_of_it() {
    let script = r#"printf '%s' "$0"; head -c 8176 /dev/zero | tr '\0' ' '; echo end; exit 1"#;
    let t = Test::new().env("NW_IT_SECRET", LONG).config(&format!(
        r#"
state_file: {{dir}}/state.json
default_policy: {{restart_cooldown_seconds: 0}}
targets:
  - name: api
    checks:
      - command: ["/bin/sh", "-c", "{script}", "${{NW_IT_SECRET}}"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "{script}", "${{NW_IT_SECRET}}"]
"#,
        script = script.replace('\\', "\\\\").replace('"', "\\\"")
    ));
    for args in [&["check"][..], &["check", "--log-format", "json"][..]] {
        let out = t.run(args);
        out.assert_code(2);
        assert_no_piece_of_long(&format!("stderr of {args:?}"), &out.stderr);
        // the tail is still there, cut where the secret was
        out.assert_stderr_contains("*** end");
    }
    assert_no_piece_of_long("state.json", &t.read("state.json"));
}

/// The displayed argv is POSIX sh quoted: pasted after a command in a shell, it gives back
/// the very argv that ran (nested single quotes included).
#[test]
fn the_displayed_argv_can_be_pasted_into_a_shell() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: api
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "printf 'x %s\\n' \"$0\" >> {dir}/ran", "it's a \\ \"test\"", "", "$HOME", "plain"]
"#,
    );
    let out = t.run(&["check", "--log-format", "json"]);
    out.assert_code(2);
    assert_eq!(t.read("ran"), "x it's a \\ \"test\"\n");
    let done = json_lines(&out)
        .into_iter()
        .find(|l| l["msg"] == "action done")
        .unwrap_or_else(|| panic!("no action done line\n{out}"));
    let shown = done["argv"].as_str().expect("argv").to_string();
    let back = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("printf '%s\\0' {shown}"))
        .output()
        .expect("run sh");
    let words: Vec<String> = back
        .stdout
        .split(|b| *b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let expected = [
        "/bin/sh".to_string(),
        "-c".into(),
        t.expand("printf 'x %s\\n' \"$0\" >> {dir}/ran"),
        "it's a \\ \"test\"".into(),
        "".into(),
        "$HOME".into(),
        "plain".into(),
        "".into(),
    ];
    assert_eq!(words, expected, "displayed as: {shown}");
}

// --- secrets in the metrics -----------------------------------------------------------------

/// `GET path` on 127.0.0.1:`port`: the body of a 200 answer, else None.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Literal `password=`-style values in an http check's URL.
const URL_TOKEN: &str = "tok-Lw8Hq2Xr";
const URL_PASSWORD: &str = "pw-Dz4Mk7Ns";
const URL_API_KEY: &str = "key-Gt5Vb9Cq";

/// Every secret of the metrics test, in every form: the `${NAME}` value and the literal ones
/// as they are (their escaped and quoted forms contain them: nothing in them is escaped), and
/// no piece of the escapy one (raw, `\"`-escaped, quoted: see [`assert_no_escapy`]).
#[track_caller]
fn assert_no_secret_in_metrics(what: &str, text: &str) {
    for s in [SECRET, URL_TOKEN, URL_PASSWORD, URL_API_KEY] {
        assert!(!text.contains(s), "{what} leaks {s:?}:\n{text}");
    }
    assert_no_escapy(what, text);
}

/// H1: the metrics are world-readable (the textfile is 0644 and shipped to Prometheus,
/// `/metrics` answers anyone who connects), so no label may carry a secret from any place a
/// check takes one: an http URL (`${NAME}` in its path, `token=`/`password=`/`api_key=` in
/// its query), file_fresh, pid_file and disk_free paths, a docker container, a systemd unit,
/// a tls_cert `server_name`, and a check's own `name:` (the value with `"` and `\\` in a path
/// and a name, where escaping changes it). Each check is still there, under a label that says
/// which it is.
#[test]
fn no_secret_reaches_the_metrics_textfile_or_endpoint() {
    let port = free_port();
    let closed = free_port();
    let t = Test::new()
        .env("NW_IT_SECRET", SECRET)
        .env("NW_IT_ESCAPY", ESCAPY)
        .config(&format!(
            r#"
state_file: {{dir}}/state.json
systemctl_path: /bin/false
metrics: {{textfile: "{{dir}}/nw.prom", listen: "127.0.0.1:{port}"}}
targets:
  - name: api
    checks:
      - http: "http://127.0.0.1:{closed}/${{NW_IT_SECRET}}/health?token={URL_TOKEN}&password={URL_PASSWORD}&api_key={URL_API_KEY}"
      - file_fresh: "{{dir}}/${{NW_IT_SECRET}}/beat"
        max_age_seconds: 60
      - pid_file: "{{dir}}/${{NW_IT_SECRET}}.pid"
      - disk_free: "{{dir}}/${{NW_IT_SECRET}}"
        min_free_mb: 1
      - disk_free: "{{dir}}/${{NW_IT_ESCAPY}}"
        min_free_mb: 1
      - docker: "${{NW_IT_SECRET}}"
        docker_socket: "{{dir}}/no-docker.sock"
      - systemd_unit: "${{NW_IT_SECRET}}.service"
      - tls_cert: "127.0.0.1:{closed}"
        server_name: "${{NW_IT_SECRET}}.example.com"
      - command: ["/bin/true"]
        name: "db ${{NW_IT_ESCAPY}}"
    action: none
"#
        ));
    // the textfile, after a oneshot pass
    let out = t.run(&["check"]);
    assert!(matches!(out.code, Some(1 | 2)), "{out}");
    let text = t.read("nw.prom");
    assert_no_secret_in_metrics("the metrics textfile", &text);
    for check in [
        "http",
        "file_fresh",
        "pid_file",
        "disk_free",
        "disk_free#2",
        "docker",
        "systemd_unit",
        "tls_cert",
        "db ***",
    ] {
        assert!(
            text.contains(&format!("target=\"api\",check=\"{check}\",")),
            "no series for {check:?}:\n{text}"
        );
    }
    // `/metrics` of `run`
    let mut run = t.spawn(&["run"]);
    let mut served = None;
    let got = wait_until(std::time::Duration::from_secs(60), || {
        served = http_get(port, "/metrics").filter(|b| b.contains("neon_watchdog_check_up{"));
        served.is_some()
    });
    let stderr = run.stderr_so_far();
    drop(run);
    assert!(got, "/metrics never served the checks' series:\n{stderr}");
    let served = served.unwrap_or_default();
    assert_no_secret_in_metrics("/metrics", &served);
    assert!(served.contains("check=\"db ***\""), "{served}");
}

// --- look-alike names -----------------------------------------------------------------------

/// L6: two names that print the same are two names no one can tell apart in logs, `status`
/// and alerts, nor type for `reset`: a target or check name holding an invisible or
/// bidirectional formatting character (or a space that is not the ASCII one) is refused at
/// load, saying where, which character and what to do.
#[test]
fn look_alike_names_are_refused_at_load() {
    for (name, code) in [
        ("web\u{200b}", "U+200B"),
        ("web\u{202e}gol", "U+202E"),
        ("\u{2066}web", "U+2066"),
        ("web\u{feff}", "U+FEFF"),
        ("my\u{a0}web", "U+00A0"),
    ] {
        let t = Test::new().config(&format!(
            r#"
state_file: {{dir}}/state.json
targets:
  - name: web
    checks:
      - command: ["/bin/true"]
    action: none
  - name: "{name}"
    checks:
      - command: ["/bin/true"]
        name: "ping{name}"
    action: none
"#
        ));
        for args in [&["test-config"][..], &["check"][..]] {
            let out = t.run(args);
            out.assert_code(78)
                .assert_stderr_contains("targets[1].name: ")
                .assert_stderr_contains("targets[1].checks[0].name: ")
                .assert_stderr_contains(&format!("({code}, character "))
                .assert_stderr_contains("retype the name with visible characters only")
                .assert_stderr_contains("line 8");
        }
    }
}
