//! The action log, `<state dir>/<target>.action.log`: what an exec action's command writes to
//! stdout/stderr. Once the command has exited the watchdog keeps only its last 64 KiB, secrets
//! masked; the file is 0600 and never written through a hard link, a symlink or a file
//! another user owns.

use crate::harness::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const SECRET: &str = "Kx7Qz9Wv2Lp5Rn8Tj3Yb";
/// What the log may hold beyond the last 64 KiB of output: one line saying it was cut.
const LOG_LIMIT: u64 = 64 * 1024 + 128;

/// No 4 characters in a row of [`SECRET`].
#[track_caller]
fn assert_no_piece(what: &str, text: &str) {
    let chars: Vec<char> = SECRET.chars().collect();
    for w in chars.windows(4) {
        let piece: String = w.iter().collect();
        assert!(
            !text.contains(&piece),
            "{what} holds {piece:?}, a piece of the secret"
        );
    }
}

fn with_restart(restart: &str) -> Test {
    Test::new().env("NW_IT_SECRET", SECRET).config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: api
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: {restart}
"#
    ))
}

/// 4 MB of output, every line with the secret: the log keeps the last 64 KiB, masked, and says
/// that it was cut. (It used to keep all of it, raw.)
#[test]
fn the_action_log_is_masked_and_capped() {
    let t = with_restart(
        r#"["/bin/sh", "-c", "yes \"line with $0 in it\" | head -n 130000; echo \"last $0\"", "${NW_IT_SECRET}"]"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["msg=\"action done\""], "in it last ***\"");
    let path = t.path("api.action.log");
    let meta = std::fs::metadata(&path).expect("the action log");
    assert!(
        meta.len() <= LOG_LIMIT,
        "the action log is {} bytes",
        meta.len()
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = t.read("api.action.log");
    assert_no_piece("the action log", &text);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("[neon-watchdog: ") && lines[0].contains("the last 64 KiB"),
        "{}",
        lines[0]
    );
    // whole lines after the header, masked, down to the last one
    assert_eq!(lines[1], "line with *** in it");
    assert_eq!(lines.last().copied(), Some("last ***"));
}

/// A short output is kept whole, masked, with no header.
#[test]
fn a_short_action_log_is_kept_whole_and_masked() {
    let t = with_restart(
        r#"["/bin/sh", "-c", "echo \"out $0\"; echo \"err $0\" >&2", "${NW_IT_SECRET}"]"#,
    );
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.read("api.action.log"), "out ***\nerr ***\n");
}

/// What stands at the action log's path and must not be written through: the watchdog does
/// not empty, fill or chmod it, says why on a warning line, and the action still runs.
#[test]
fn the_action_log_is_never_written_through_a_link_or_a_foreign_file() {
    let mut cases = vec!["hard link", "symlink"];
    if nix::unistd::geteuid().is_root() {
        cases.push("owned by another user");
    }
    for case in cases {
        let t = with_restart(
            r#"["/bin/sh", "-c", "echo ran >> {dir}/ran; echo \"out $0\"", "${NW_IT_SECRET}"]"#,
        );
        let victim = t.write("victim", "keep me\n");
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let log = t.path("api.action.log");
        let why = match case {
            "hard link" => {
                std::fs::hard_link(&victim, &log).unwrap();
                "hard links"
            }
            "symlink" => {
                std::os::unix::fs::symlink(&victim, &log).unwrap();
                "is a symbolic link"
            }
            _ => {
                std::fs::write(&log, "keep me\n").unwrap();
                std::os::unix::fs::chown(&log, Some(65534), Some(65534)).unwrap();
                "belongs to uid 65534"
            }
        };
        let out = t.run(&["check"]);
        out.assert_code(2)
            .assert_line_contains(&["msg=\"action output not kept\""], why);
        assert_eq!(
            t.count_lines("ran"),
            1,
            "{case}: the action still runs\n{out}"
        );
        let target = if case == "owned by another user" {
            &log
        } else {
            &victim
        };
        assert_eq!(
            std::fs::read_to_string(target).unwrap(),
            "keep me\n",
            "{case}"
        );
        let meta = std::fs::metadata(target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644, "{case}: chmod'ed");
        if case == "owned by another user" {
            assert_eq!(meta.uid(), 65534);
        }
    }
}

/// The log is rewritten in place, not replaced: a daemon the action leaves behind keeps
/// writing to the very file the next run will empty (what it writes after the run is its
/// own output, appended as it comes: see README).
#[test]
fn a_daemon_left_behind_keeps_writing_to_the_same_log() {
    let t = with_restart(
        r#"["/bin/sh", "-c", "echo \"started $0\"; (while [ ! -e {dir}/go ]; do sleep 0.02; done; echo daemon says hi) &", "${NW_IT_SECRET}"]"#,
    );
    t.run(&["check"]).assert_code(2);
    assert_eq!(t.read("api.action.log"), "started ***\n");
    let ino = std::fs::metadata(t.path("api.action.log")).unwrap().ino();
    t.write("go", "");
    assert!(
        wait_until(EVENT_LIMIT, || t
            .read("api.action.log")
            .contains("daemon says hi")),
        "{}",
        t.read("api.action.log")
    );
    assert_eq!(t.read("api.action.log"), "started ***\ndaemon says hi\n");
    assert_eq!(
        std::fs::metadata(t.path("api.action.log")).unwrap().ino(),
        ino
    );
}
