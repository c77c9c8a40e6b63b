//! Under systemd, stderr is the journal: entries go to journald with their priority and
//! their fields. Tested against a real systemd-journald (Debian's, /lib/systemd), run without
//! systemd as PID 1 in a private mount namespace (`unshare -m`, a tmpfs on /run), with
//! neon-watchdog's stderr connected to the journal by the real `systemd-cat`, then read back
//! with the real `journalctl -o json`.
//!
//! systemd sets `JOURNAL_STREAM=DEV:INODE` (of the stream socket) for a service; Debian 12's
//! `systemd-cat` does not, so the script sets it exactly as systemd does: `stat -L` of fd 2.

use crate::harness::*;

/// Runs in the namespace: journald up, one `check` under systemd-cat, then the journal as
/// JSON lines in `{dir}/journal.json` (and `-p warning` / `TARGET=api` queries beside it).
const SCRIPT: &str = r#"
set -u
mount -t tmpfs tmpfs /run || exit 90
mkdir -p /run/systemd/journal
/lib/systemd/systemd-journald &
J=$!
trap 'kill $J 2>/dev/null' EXIT
i=0
until [ -S /run/systemd/journal/socket ] && [ -S /run/systemd/journal/stdout ]; do
  i=$((i+1)); [ $i -gt 200 ] && exit 91; sleep 0.05
done
systemd-cat -t neon-watchdog sh -c 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"' sh "$@"
rc=$?
# journald files what it received in its own time: wait for the last line of the pass
i=0
until journalctl --no-pager -o cat SYSLOG_IDENTIFIER=neon-watchdog | grep -q 'pass done'; do
  i=$((i+1)); [ $i -gt 200 ] && exit 92; sleep 0.05
done
journalctl --no-pager -o json SYSLOG_IDENTIFIER=neon-watchdog > "$OUT/journal.json"
journalctl --no-pager -o json -p warning SYSLOG_IDENTIFIER=neon-watchdog > "$OUT/warnings.json"
journalctl --no-pager -o json TARGET=api > "$OUT/api.json"
exit $rc
"#;

fn entries(t: &Test, file: &str) -> Vec<serde_json::Value> {
    t.read(file)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn field<'a>(e: &'a serde_json::Value, k: &str) -> &'a str {
    e[k].as_str().unwrap_or("")
}

#[test]
fn a_real_journald_files_priorities_and_fields() {
    let t = Test::new()
        .env("NW_JOURNAL_SECRET", "s3cr3t-in-the-journal")
        .config(
            r#"
state_file: {dir}/state.json
targets:
  - name: api
    checks:
      - command: ["/bin/sh", "-c", "echo \"login ${NW_JOURNAL_SECRET} refused\" >&2; exit 1"]
    action: none
  - name: web
    checks:
      - command: ["/bin/true"]
    action: none
"#,
        );
    t.write("script.sh", SCRIPT);
    let script = t.path("script.sh").display().to_string();
    let dir = t.dir().display().to_string();
    let t = t.env("OUT", &dir);
    let out = t.run_wrapped(
        &[
            "/usr/bin/unshare",
            "-m",
            "--propagation",
            "private",
            "/bin/sh",
            &script,
        ],
        &["check"],
    );
    // the exit code of `check` itself comes through the script
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        !out.stderr.contains("msg=check"),
        "lines went to stderr, not to the journal:\n{out}"
    );
    let all = entries(&t, "journal.json");
    let fail = all
        .iter()
        .find(|e| field(e, "RESULT") == "FAIL")
        .unwrap_or_else(|| panic!("no FAIL entry in the journal: {all:?}"));
    assert_eq!(field(fail, "PRIORITY"), "4", "{fail}");
    assert_eq!(field(fail, "TARGET"), "api", "{fail}");
    assert_eq!(
        field(fail, "_TRANSPORT"),
        "journal",
        "not the native protocol: {fail}"
    );
    assert!(field(fail, "MESSAGE").contains("msg=check"), "{fail}");
    assert!(
        !field(fail, "MESSAGE").contains("ts="),
        "journald stamps it: {fail}"
    );
    assert!(field(fail, "LATENCY_MS").parse::<u64>().is_ok(), "{fail}");
    assert_eq!(field(fail, "ERR"), "exit 1: login *** refused", "{fail}");
    let ok = all
        .iter()
        .find(|e| field(e, "RESULT") == "OK")
        .unwrap_or_else(|| panic!("no OK entry: {all:?}"));
    assert_eq!(field(ok, "PRIORITY"), "6", "{ok}");
    assert_eq!(field(ok, "TARGET"), "web", "{ok}");
    // `journalctl -p warning` shows the failure and none of the info lines
    let warnings = entries(&t, "warnings.json");
    assert!(
        warnings.iter().any(|e| field(e, "RESULT") == "FAIL"),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .all(|e| field(e, "PRIORITY").parse::<u8>().unwrap_or(9) <= 4),
        "{warnings:?}"
    );
    // `journalctl TARGET=api`: that target's lines only
    let api = entries(&t, "api.json");
    assert!(api.len() >= 2, "{api:?}");
    assert!(api.iter().all(|e| field(e, "TARGET") == "api"), "{api:?}");
    // no secret in any field of any entry
    let raw = t.read("journal.json");
    assert!(!raw.contains("s3cr3t-in-the-journal"), "{raw}");
}

/// stderr is the journal but its socket cannot be reached (a namespace with an empty /run,
/// no journald): nothing is lost, lines carry the `<N>` priority prefix journald reads.
#[test]
fn without_the_socket_lines_carry_their_priority_prefix() {
    let t = Test::new().config(FAILING);
    let out = t.run_wrapped(
        &[
            "/usr/bin/unshare",
            "-m",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            "mount -t tmpfs tmpfs /run || exit 90; JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$0\" \"$@\"",
        ],
        &["check"],
    );
    out.assert_code(2);
    let line = out.line(&["msg=check"]);
    assert!(line.starts_with("<4>level=warn"), "{line}");
    assert!(!line.contains("ts="), "{line}");
    let done = out.line(&["msg=\"pass done\""]);
    assert!(done.starts_with("<6>level=info"), "{done}");
    // an event of the incident: notice
    let changed = out.line(&["msg=\"status changed\""]);
    assert!(changed.starts_with("<5>level=info"), "{changed}");
    let action = out.line(&["msg=\"action done\""]);
    assert!(action.starts_with("<5>level=info"), "{action}");
}

/// Runs in the namespace: journald up; `check` under systemd-cat (as the timer runs it) three
/// times: the victim up, then killed (the exec action starts it again), then back; then the
/// journal as JSON lines in `{dir}/journal.json`, and `-p notice` in `{dir}/notice.json`.
const INCIDENT: &str = r#"
set -u
mount -t tmpfs tmpfs /run || exit 90
mkdir -p /run/systemd/journal
/lib/systemd/systemd-journald &
J=$!
trap 'kill $J 2>/dev/null' EXIT
i=0
until [ -S /run/systemd/journal/socket ] && [ -S /run/systemd/journal/stdout ]; do
  i=$((i+1)); [ $i -gt 200 ] && exit 91; sleep 0.05
done
pass() {
  systemd-cat -t neon-watchdog sh -c 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"' sh "$@"
  echo $? >> "$OUT/codes"
}
pass "$@"
# the victim dies (kill -9); it is gone, or a zombie, before the next pass
p=$(cat "$OUT/app.pid")
kill -9 "$p" || exit 93
i=0
while [ -e /proc/$p ] && ! grep -q '^State:[[:space:]]*Z' /proc/$p/status 2>/dev/null; do
  i=$((i+1)); [ $i -gt 400 ] && exit 94; sleep 0.05
done
pass "$@"
pass "$@"
i=0
until [ "$(journalctl --no-pager -o cat SYSLOG_IDENTIFIER=neon-watchdog | grep -c 'pass done')" -ge 3 ]; do
  i=$((i+1)); [ $i -gt 200 ] && exit 92; sleep 0.05
done
journalctl --no-pager -o json SYSLOG_IDENTIFIER=neon-watchdog > "$OUT/journal.json"
journalctl --no-pager -o json -p notice SYSLOG_IDENTIFIER=neon-watchdog > "$OUT/notice.json"
exit 0
"#;

/// `journalctl -p notice` tells a whole incident, start to end: the process went down, the
/// action ran, how it ended, the target came back; the routine lines (each OK check, `pass
/// done`) stay at info, out of it. A real process killed, started again by a real exec action.
#[test]
fn journalctl_p_notice_tells_a_whole_incident() {
    let t = Test::new();
    let (name, _kill) = unique_sleep(&t);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: app
    checks:
      - pid_file: {{dir}}/app.pid
    action:
      exec:
        start: ["/bin/sh", "-c", "{{dir}}/{name} 300 & echo $! > {{dir}}/app.pid; echo started it"]
  - name: quiet
    checks:
      - command: ["/bin/true"]
    action: none
"#
    ));
    let mut cmd = std::process::Command::new(t.path(&name));
    cmd.arg("300");
    let first = ChildGuard::spawn(cmd);
    t.write("app.pid", &format!("{}\n", first.pid()));
    t.write("script.sh", INCIDENT);
    let script = t.path("script.sh").display().to_string();
    let dir = t.dir().display().to_string();
    let t = t.env("OUT", &dir);
    let out = t.run_wrapped(
        &[
            "/usr/bin/unshare",
            "-m",
            "--propagation",
            "private",
            "/bin/sh",
            &script,
        ],
        &["check"],
    );
    let _restarted = Guard::from_pid_file(&t.path("app.pid"));
    assert_eq!(out.code, Some(0), "{out}");
    // healthy, failing (the action ran), healthy again
    assert_eq!(
        t.read("codes").split_whitespace().collect::<Vec<_>>(),
        ["0", "2", "0"],
        "{out}"
    );
    let all = entries(&t, "journal.json");
    let notice = entries(&t, "notice.json");
    let prio = |e: &serde_json::Value| field(e, "PRIORITY").parse::<u8>().unwrap_or(9);
    // the routine lines are at info: every OK check, and the end of each pass
    let routine: Vec<_> = all
        .iter()
        .filter(|e| field(e, "RESULT") == "OK" || field(e, "MESSAGE").contains("msg=\"pass done\""))
        .collect();
    assert!(routine.len() >= 3 + 2 + 3, "{all:?}");
    assert!(routine.iter().all(|e| prio(e) == 6), "{routine:?}");
    // `-p notice`: nothing routine, and the incident's lines in order
    assert!(notice.iter().all(|e| prio(e) <= 5), "{notice:?}");
    let told = |target: &str| -> Vec<String> {
        notice
            .iter()
            .filter(|e| field(e, "TARGET") == target)
            .map(|e| {
                let m = field(e, "MESSAGE");
                let msg = m.split(" msg=").nth(1).unwrap_or(m);
                format!("{} {}", field(e, "PRIORITY"), msg)
            })
            .collect()
    };
    // the healthy target: its first status, nothing more
    assert_eq!(
        told("quiet"),
        ["5 \"status changed\" target=quiet from=unknown to=healthy"],
        "routine lines under -p notice"
    );
    let told = told("app");
    let expect = [
        ("5", "\"status changed\"", "to=healthy"),
        ("4", "check", "result=FAIL"),
        ("5", "\"status changed\"", "to=failed"),
        ("4", "\"target failing; running action\"", "action=start"),
        ("5", "\"action done\"", "exit=0"),
        ("5", "\"status changed\"", "to=healthy"),
        ("5", "\"target recovered\"", "after_failures=1"),
    ];
    assert_eq!(told.len(), expect.len(), "{told:#?}");
    for (line, (p, msg, detail)) in told.iter().zip(expect) {
        assert!(
            line.starts_with(&format!("{p} {msg}")) && line.contains(detail),
            "expected {p} {msg} .. {detail}, got {line}\nall: {told:#?}"
        );
    }
    let done = notice
        .iter()
        .find(|e| field(e, "MESSAGE").contains("msg=\"action done\""))
        .expect("action done");
    assert_eq!(field(done, "OUTPUT"), "started it", "{done}");
    assert_eq!(field(done, "_TRANSPORT"), "journal", "{done}");
}
