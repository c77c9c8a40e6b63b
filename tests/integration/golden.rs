//! Golden tests: the whole stderr of a pass, compared with today's output line for line, so
//! an unexpected extra line (or field) fails them. What changes from run to run (times,
//! durations, pids, the version, the temp dir) is replaced by placeholders in the harness
//! (`Test::golden_logfmt`, `Test::golden_json`); everything else is pinned.
//!
//! A pass checks its targets side by side, but logs each target's lines together, in config
//! order: the order of a golden is fixed.

use crate::harness::*;

/// Default level (spec section 7): every check's result with its latency, each target's first
/// status, "target healthy", one target's lines together and in config order; a later healthy
/// pass says the same without the status change.
#[test]
fn healthy_pass_of_two_targets() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: web
    checks:
      - command: ["/bin/true"]
    action: none
  - name: stamp
    checks:
      - command: ["/bin/test", "-e", "{dir}/config.yml"]
    action: none
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "", "{out}");
    assert_golden(
        &t.golden_logfmt(&out),
        r#"
ts=<ts> level=info msg="neon-watchdog starting" version=<version> mode=check config={dir}/config.yml targets=2 disabled=0 dry_run=false
ts=<ts> level=info msg=check target=web check="command /bin/true" result=OK latency_ms=<ms> exit=0
ts=<ts> level=info msg="status changed" target=web from=unknown to=healthy
ts=<ts> level=info msg="target healthy" target=web
ts=<ts> level=info msg=check target=stamp check="command /bin/test -e {dir}/config.yml" result=OK latency_ms=<ms> exit=0
ts=<ts> level=info msg="status changed" target=stamp from=unknown to=healthy
ts=<ts> level=info msg="target healthy" target=stamp
ts=<ts> level=info msg="pass done" healthy=2 failing=0 unknown=0 duration_ms=<ms>
"#,
        &out,
    );
    let out = t.run(&["check"]);
    out.assert_code(0);
    assert_golden(
        &t.golden_logfmt(&out),
        r#"
ts=<ts> level=info msg="neon-watchdog starting" version=<version> mode=check config={dir}/config.yml targets=2 disabled=0 dry_run=false
ts=<ts> level=info msg=check target=web check="command /bin/true" result=OK latency_ms=<ms> exit=0
ts=<ts> level=info msg="target healthy" target=web
ts=<ts> level=info msg=check target=stamp check="command /bin/test -e {dir}/config.yml" result=OK latency_ms=<ms> exit=0
ts=<ts> level=info msg="target healthy" target=stamp
ts=<ts> level=info msg="pass done" healthy=2 failing=0 unknown=0 duration_ms=<ms>
"#,
        &out,
    );
}

/// The check's FAIL line, the decision, the action and its result, the summary (the
/// harness's FAILING config: `/bin/false`, a restart appending to `{dir}/runs`).
#[test]
fn failing_pass_that_runs_an_action() {
    let t = Test::new().config(FAILING);
    let out = t.run(&["check"]);
    out.assert_code(2);
    assert_eq!(out.stdout, "", "{out}");
    assert_golden(
        &t.golden_logfmt(&out),
        r#"
ts=<ts> level=info msg="neon-watchdog starting" version=<version> mode=check config={dir}/config.yml targets=1 disabled=0 dry_run=false
ts=<ts> level=warn msg=check target=app check="command /bin/false" result=FAIL latency_ms=<ms> exit=1 err="exit 1"
ts=<ts> level=info msg="status changed" target=app from=unknown to=failed
ts=<ts> level=warn msg="target failing; running action" target=app failures=1 threshold=1 action=restart argv="/bin/sh -c 'echo run >> {dir}/runs'"
ts=<ts> level=info msg="action done" target=app action=restart argv="/bin/sh -c 'echo run >> {dir}/runs'" exit=0 duration_ms=<ms> output=""
ts=<ts> level=info msg="pass done" healthy=0 failing=1 unknown=0 duration_ms=<ms>
"#,
        &out,
    );
    assert_eq!(t.read("runs"), "run\n");
}

/// The same pass as JSON lines, each object compared with its keys sorted.
#[test]
fn failing_pass_in_json() {
    let t = Test::new().config(FAILING);
    let out = t.run(&["check", "--log-format", "json"]);
    out.assert_code(2);
    assert_eq!(out.stdout, "", "{out}");
    assert_golden(
        &t.golden_json(&out),
        r#"
{"config":"{dir}/config.yml","disabled":0,"dry_run":false,"level":"info","mode":"check","msg":"neon-watchdog starting","targets":1,"ts":"<ts>","version":"<version>"}
{"check":"command /bin/false","err":"exit 1","exit":1,"latency_ms":"<ms>","level":"warn","msg":"check","result":"FAIL","target":"app","ts":"<ts>"}
{"from":"unknown","level":"info","msg":"status changed","target":"app","to":"failed","ts":"<ts>"}
{"action":"restart","argv":"/bin/sh -c 'echo run >> {dir}/runs'","failures":1,"level":"warn","msg":"target failing; running action","target":"app","threshold":1,"ts":"<ts>"}
{"action":"restart","argv":"/bin/sh -c 'echo run >> {dir}/runs'","duration_ms":"<ms>","exit":0,"level":"info","msg":"action done","output":"","target":"app","ts":"<ts>"}
{"duration_ms":"<ms>","failing":1,"healthy":0,"level":"info","msg":"pass done","ts":"<ts>","unknown":0}
"#,
        &out,
    );
    assert_eq!(t.read("runs"), "run\n");
}

/// The normaliser replaces only the volatile fields' values, and only when they have their
/// shape: a line, a field or a value it does not expect stays in the text and fails a golden.
#[test]
fn the_normaliser_replaces_only_volatile_values() {
    let t = Test::new();
    let dir = t.dir().display();
    let stderr = format!(
        "ts=2026-11-23T10:00:00.000Z level=warn msg=check pid=42 latency_ms=7 err=\"pid=42 \\\"ts=1\\\" in {dir}/x\" version={v}\n\
         ts=yesterday duration_ms=1.5 pid=-1 version=9.9.9\n\
         a line that is not logfmt ts=2026-11-23T10:00:00.000Z\n",
        v = env!("CARGO_PKG_VERSION")
    );
    let out = Output {
        args: Vec::new(),
        code: Some(0),
        stdout: String::new(),
        stderr,
        elapsed: std::time::Duration::ZERO,
    };
    assert_eq!(
        t.golden_logfmt(&out),
        "ts=<ts> level=warn msg=check pid=<pid> latency_ms=<ms> err=\"pid=42 \\\"ts=1\\\" in {dir}/x\" version=<version>\n\
         ts=yesterday duration_ms=1.5 pid=-1 version=9.9.9\n\
         a line that is not logfmt ts=2026-11-23T10:00:00.000Z"
    );
    let json = Output {
        stderr: format!(
            "{{\"ts\":\"2026-11-23T10:00:00.000Z\",\"latency_ms\":3,\"msg\":\"ts\",\"path\":\"{dir}/y\",\"version\":\"9.9.9\"}}\n"
        ),
        ..out
    };
    assert_eq!(
        t.golden_json(&json),
        r#"{"latency_ms":"<ms>","msg":"ts","path":"{dir}/y","ts":"<ts>","version":"9.9.9"}"#
    );
}
