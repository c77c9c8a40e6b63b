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
