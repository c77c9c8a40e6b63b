//! Log formats: every stderr line is one event, parseable as logfmt (default) or as a JSON
//! object (`--log-format json`), with the documented keys.

use crate::harness::*;
use serde_json::Value;
use std::collections::BTreeMap;

const MIXED: &str = r#"
state_file: {dir}/state.json
default_policy: {restart_cooldown_seconds: 0}
targets:
  - name: ok
    checks:
      - command: ["/bin/true"]
    action: none
  - name: bad
    checks:
      - command: ["/bin/sh", "-c", "echo 'it \"broke\" = badly' >&2; exit 1"]
      - pid_file: /nonexistent/x.pid
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo restarting; exit 0"]
"#;

#[test]
fn json_log_lines_are_json_objects_with_the_documented_keys() {
    let t = Test::new().config(MIXED);
    let out = t.run(&["check", "-v", "--log-format", "json"]);
    out.assert_code(2);
    let lines = json_lines(&out);
    assert!(lines.len() >= 6, "{out}");
    for l in &lines {
        let level = l.get("level").and_then(Value::as_str).unwrap_or_default();
        assert!(
            ["error", "warn", "info", "debug", "trace"].contains(&level),
            "bad level in {l:?}"
        );
        assert!(
            l.get("msg").is_some_and(Value::is_string),
            "no msg in {l:?}"
        );
        let ts = l.get("ts").and_then(Value::as_str).unwrap_or_default();
        assert!(
            ts.ends_with('Z') && ts.contains('T'),
            "ts is not RFC 3339 UTC in {l:?}"
        );
    }
    let checks: Vec<_> = lines.iter().filter(|l| l["msg"] == "check").collect();
    assert_eq!(checks.len(), 3, "{out}");
    for c in &checks {
        assert!(c["target"].is_string() && c["check"].is_string(), "{c:?}");
        assert!(
            c["latency_ms"].is_u64(),
            "latency_ms is not a number: {c:?}"
        );
        match c["result"].as_str() {
            Some("OK") => assert!(c.get("err").is_none(), "{c:?}"),
            Some("FAIL") => assert!(c["err"].is_string(), "{c:?}"),
            other => panic!("result {other:?} in {c:?}"),
        }
    }
    let bad = checks
        .iter()
        .find(|c| c["target"] == "bad" && c["check"].as_str().unwrap().starts_with("command"))
        .expect("FAIL line of bad's command");
    assert_eq!(bad["err"], "exit 1: it \"broke\" = badly");
    let done = lines
        .iter()
        .find(|l| l["msg"] == "action done")
        .expect("action done");
    assert_eq!(done["target"], "bad");
    assert_eq!(done["action"], "restart");
    assert!(
        done["argv"].as_str().unwrap().starts_with("/bin/sh -c"),
        "{done:?}"
    );
    assert!(done["duration_ms"].is_u64(), "{done:?}");
    assert_eq!(done["output"], "restarting");
    let pass = lines
        .iter()
        .find(|l| l["msg"] == "pass done")
        .expect("pass done");
    assert_eq!(pass["healthy"], 1);
    assert_eq!(pass["failing"], 1);
}

/// `--log-format json` promises JSON lines on stderr; that includes the line reporting an
/// invalid config, which a log shipper would otherwise choke on.
#[test]
fn json_log_format_reports_config_errors_as_json() {
    let t = Test::new().config("state_file: {dir}/state.json\ninterval_seconds: 0\n");
    let out = t.run(&["check", "--log-format", "json"]);
    out.assert_code(78);
    let lines = json_lines(&out);
    assert!(
        lines.iter().any(|l| l["level"] == "error"),
        "no error line\n{out}"
    );
}

/// Parse one logfmt line: `key=value` pairs, values bare or double-quoted with escapes.
fn parse_logfmt(line: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            if c == ' ' || c == '"' {
                return Err(format!("bad key char {c:?} after {key:?}"));
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!("no '=' after key {key:?}"));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in {key}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('r') => value.push('\r'),
                        Some(c @ ('"' | '\\')) => value.push(c),
                        Some('u') => {
                            let code: String = chars.by_ref().take_while(|c| *c != '}').collect();
                            let hex = code.trim_start_matches('{');
                            let c = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or(format!("bad \\u escape in {key}"))?;
                            value.push(c);
                        }
                        other => return Err(format!("bad escape {other:?} in {key}")),
                    },
                    Some(c) => value.push(c),
                }
            }
            if chars.peek().is_some_and(|c| *c != ' ') {
                return Err(format!("junk after quoted value of {key}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                if c == '"' || c == '=' {
                    return Err(format!("unquoted {c:?} in value of {key}"));
                }
                value.push(c);
                chars.next();
            }
        }
        if out.insert(key.clone(), value).is_some() {
            return Err(format!("duplicate key {key}"));
        }
    }
}

#[test]
fn logfmt_lines_parse_with_the_documented_keys() {
    let t = Test::new().config(MIXED);
    let out = t.run(&["check", "-v"]);
    out.assert_code(2);
    let mut checks = 0;
    for line in out.stderr.lines() {
        let kv = parse_logfmt(line).unwrap_or_else(|e| panic!("not logfmt ({e}): {line}\n{out}"));
        for key in ["ts", "level", "msg"] {
            assert!(kv.contains_key(key), "no {key} in {line}");
        }
        if kv["msg"] == "check" {
            checks += 1;
            for key in ["target", "check", "result", "latency_ms"] {
                assert!(kv.contains_key(key), "no {key} in {line}");
            }
            assert_eq!(kv["result"] == "FAIL", kv.contains_key("err"), "{line}");
        }
        if kv.get("err").is_some_and(|e| e.starts_with("exit 1")) {
            assert_eq!(kv["err"], "exit 1: it \"broke\" = badly", "{line}");
        }
    }
    assert_eq!(checks, 3, "{out}");
}

// ---------------------------------------------------------------------------------------------
// log_checks: all | changes
// ---------------------------------------------------------------------------------------------

/// `app`: a real process named by a pid file, and a command; `log_checks` as given.
fn watched(log_checks: &str) -> String {
    let top = if log_checks.is_empty() {
        String::new()
    } else {
        format!("log_checks: {log_checks}\n")
    };
    format!(
        r#"
state_file: {{dir}}/state.json
{top}targets:
  - name: app
    checks:
      - pid_file: {{dir}}/app.pid
      - command: ["/bin/true"]
    action: none
"#
    )
}

/// Start the victim (a copy of sleep with a name of its own) and write its pid file.
fn start_victim(t: &Test, program: &str) -> ChildGuard {
    let mut cmd = std::process::Command::new(t.path(program));
    cmd.arg("300");
    let g = ChildGuard::spawn(cmd);
    t.write("app.pid", &format!("{}\n", g.pid()));
    g
}

/// The OK lines of `app`'s checks in one pass's output.
fn ok_lines(out: &Output) -> Vec<&str> {
    out.lines_with(&["msg=check", "target=app", "result=OK"])
}

#[test]
fn log_checks_changes_logs_an_ok_line_only_when_its_result_changed() {
    let t = Test::new();
    let (name, _kill) = unique_sleep(&t);
    let t = t.config(&watched("changes"));
    let mut victim = start_victim(&t, &name);
    let pid = victim.pid();
    // first check: nothing known of the last one, every result is said
    let first = t.run(&["check"]);
    first.assert_code(0);
    assert_eq!(ok_lines(&first).len(), 2, "{first}");
    first.assert_line_contains(&["result=OK", "pid_file"], &format!("pid={pid}"));
    first.assert_lines(&["msg=\"status changed\"", "to=healthy"], 1);
    // the same results on the next two passes: not a word of them, but each pass says it ended
    for _ in 0..2 {
        let out = t.run(&["check"]);
        out.assert_code(0)
            .assert_lines(&["msg=check"], 0)
            .assert_lines(&["msg=\"target healthy\""], 0)
            .assert_lines(&["msg=\"pass done\"", "healthy=1"], 1);
    }
    // the process dies: its FAIL line (the command's unchanged OK stays unsaid)
    victim.kill_now();
    let down = t.run(&["check"]);
    down.assert_code(2)
        .assert_lines(&["msg=check", "result=FAIL", "pid_file"], 1)
        .assert_lines(&["msg=check", "result=OK"], 0)
        .assert_lines(&["msg=\"status changed\"", "to=failed"], 1);
    // still down: a FAIL line is said every pass
    t.run(&["check"])
        .assert_code(2)
        .assert_lines(&["msg=check", "result=FAIL", "pid_file"], 1);
    // back (another process): its OK line again, with what it found, and the recovery
    let back = start_victim(&t, &name);
    let up = t.run(&["check"]);
    up.assert_code(0);
    assert_eq!(ok_lines(&up).len(), 1, "{up}");
    up.assert_line_contains(&["result=OK", "pid_file"], &format!("pid={}", back.pid()))
        .assert_lines(&["msg=\"target recovered\""], 1);
    t.run(&["check"])
        .assert_code(0)
        .assert_lines(&["msg=check"], 0);
    // each check's last result is in the state, with what its line said
    let st = t.state();
    let last = &st["last_checks"]["app"];
    assert_eq!(last[0]["name"], "pid_file", "{st}");
    assert_eq!(last[0]["ok"], true, "{st}");
    assert_eq!(last[0]["detail"], format!("pid={}", back.pid()), "{st}");
    assert_eq!(last[1]["detail"], "exit=0", "{st}");
}

/// The default (`log_checks: all`, the spec's rule): every check's result on every pass.
#[test]
fn by_default_every_pass_logs_every_check() {
    let t = Test::new();
    let (name, _kill) = unique_sleep(&t);
    let t = t.config(&watched(""));
    let _victim = start_victim(&t, &name);
    for _ in 0..3 {
        let out = t.run(&["check"]);
        out.assert_code(0)
            .assert_lines(&["msg=\"target healthy\""], 1);
        assert_eq!(ok_lines(&out).len(), 2, "{out}");
    }
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains("log_checks all");
}

/// `run` keeps the last results in memory: its first pass says every result (what stands
/// when the daemon starts, even with a state file from the timer), later passes only changes.
#[test]
fn log_checks_changes_under_run_says_everything_once_then_only_changes() {
    let t = Test::new();
    let (name, _kill) = unique_sleep(&t);
    let t = t.config(&watched("changes").replace("targets:", "interval_seconds: 1\ntargets:"));
    let _victim = start_victim(&t, &name);
    t.run(&["check"]).assert_code(0);
    let mut run = t.spawn(&["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.matches("msg=\"pass done\"").count() >= 3),
        "fewer than 3 passes: {}",
        run.stderr_so_far()
    );
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let out = run.wait_timeout(EVENT_LIMIT).expect("run did not exit");
    out.assert_code(0);
    assert!(out.lines_with(&["msg=\"pass done\""]).len() >= 3, "{out}");
    out.assert_lines(&["msg=check", "pid_file", "result=OK"], 1)
        .assert_lines(&["msg=check", "command", "result=OK"], 1);
}

/// State files of earlier versions still load: last results kept only for a target with an
/// interval of its own, without `detail`.
#[test]
fn a_state_file_from_before_check_details_still_loads() {
    let t = Test::new();
    let (name, _kill) = unique_sleep(&t);
    let t = t.config(&watched("changes"));
    let _victim = start_victim(&t, &name);
    t.write(
        "state.json",
        r#"{"version":1,"targets":{"app":{"status":"healthy","consecutive_failures":0,"restarts":[],"restarts_total":4}},"passes_total":41,"last_checks":{"app":[{"name":"pid_file","ok":true,"latency_ms":0},{"name":"command","ok":true,"latency_ms":1}]}}"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(0)
        .assert_stderr_not_contains("unusable")
        .assert_stderr_not_contains("fresh state");
    let st = t.state();
    assert_eq!(st["passes_total"], 42, "{st}");
    assert_eq!(st["targets"]["app"]["restarts_total"], 4, "{st}");
    assert_eq!(st["last_checks"]["app"][1]["detail"], "exit=0", "{st}");
}
