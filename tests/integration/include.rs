//! `include:` (conf.d): targets from the files packages and configuration management drop into
//! a directory run like the config's own; files are read in name order; an error in one names
//! that file, the field path and the line; a name defined twice names both files; includes do
//! not nest; a glob matching nothing is fine; `${NAME}` works; the hostile-input rules (regular
//! files, permissions as root) hold for every included file and every directory a glob reads;
//! editor and package-manager leftovers are skipped; `test-config` says where each target is.

use crate::harness::*;
use nix::sys::stat::Mode;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The config: its own target (`main`) and `include:` of `globs`.
fn config_with(globs: &str) -> String {
    format!(
        "state_file: {{dir}}/state.json\ninclude: {globs}\ntargets:\n  - name: main\n    checks: [{{command: [\"/bin/true\"]}}]\n    action: none\n"
    )
}

/// An included file holding one monitor-only target `name` with `check` (a flow map).
fn one_target(name: &str, check: &str) -> String {
    format!("targets:\n  - name: {name}\n    checks:\n      - {check}\n    action: none\n")
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("not root: the ownership rules apply to root only; nothing to test");
        false
    }
}

/// The target names of `test-config`'s summary, in order, with what follows each name.
fn summary_targets(out: &Output) -> Vec<String> {
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("target "))
        .map(str::to_string)
        .collect()
}

#[test]
fn targets_of_two_conf_d_files_are_checked_and_in_status() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    let (name, _cleanup) = unique_sleep(&t);
    let mut sleeper = Command::new(t.path(&name));
    sleeper.arg("60").stdin(Stdio::null());
    let _sleeper = ChildGuard::spawn(sleeper);
    t.write(
        "conf.d/api.yml",
        &one_target("api", &format!("tcp_port: 127.0.0.1:{port}")),
    );
    t.write(
        "conf.d/worker.yml",
        &one_target("worker", &format!("process_name: {name}")),
    );
    wait_until(EVENT_LIMIT, || !live_procs_named(&name).is_empty());
    let out = t.run(&["check"]);
    out.assert_code(0)
        .assert_lines(&["result=OK", "target=main "], 1)
        .assert_line_contains(&["result=OK", "target=api "], &format!("127.0.0.1:{port}"))
        .assert_line_contains(&["result=OK", "target=worker "], &name)
        .assert_line_contains(&["msg=\"pass done\""], "healthy=3 failing=0");
    let out = t.run(&["status"]);
    out.assert_code(0);
    for target in ["main", "api", "worker"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{target} ")) && l.contains("healthy")),
            "{target} is not healthy in status:\n{out}"
        );
    }
    // and a target of an included file fails like any other
    drop(listener);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=api "], "connection refused");
    assert_eq!(t.state()["targets"]["api"]["status"], "failed");
}

/// Sorted by name per glob (whatever order the directory lists them in), globs in the order
/// given; `test-config` says which file each target came from.
#[test]
fn files_are_read_in_name_order_and_test_config_says_where_each_target_is() {
    let t = Test::new().config(&config_with("[second/*.yml, first/*.yml]"));
    for (file, name) in [
        ("first/b.yml", "first-b"),
        ("first/10.yml", "first-10"),
        ("first/a.yml", "first-a"),
        ("second/z.yml", "second-z"),
    ] {
        t.write(file, &one_target(name, "command: [\"/bin/true\"]"));
    }
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_stdout_contains(": valid, 5 targets (5 enabled, 0 disabled)")
        .assert_stdout_contains(
            "include \"second/*.yml\": 1 file, read in this order: second/z.yml\n",
        )
        .assert_stdout_contains(
            "include \"first/*.yml\": 3 files, read in this order: first/10.yml, first/a.yml, first/b.yml\n",
        );
    assert_eq!(
        summary_targets(&out),
        [
            "main (from config.yml)",
            "second-z (from second/z.yml)",
            "first-10 (from first/10.yml)",
            "first-a (from first/a.yml)",
            "first-b (from first/b.yml)",
        ],
        "{out}"
    );
    // check runs them in that order too (a target's lines come out in config order)
    let out = t.run(&["check"]);
    out.assert_code(0);
    let order: Vec<&str> = out
        .lines_with(&["msg=\"target healthy\""])
        .iter()
        .filter_map(|l| l.split("target=").nth(1))
        .collect();
    assert_eq!(
        order,
        ["main", "second-z", "first-10", "first-a", "first-b"],
        "{out}"
    );
}

/// Without `include:`, the summary is as it was: no `from`.
#[test]
fn without_include_the_summary_names_no_file() {
    let t = Test::new().config(
        "state_file: {dir}/state.json\ntargets:\n  - name: main\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
    );
    let out = t.run(&["test-config"]);
    out.assert_code(0);
    assert_eq!(summary_targets(&out), ["main"], "{out}");
    assert!(!out.stdout.contains("include"), "{out}");
}

#[test]
fn a_name_defined_in_two_files_names_both_files_and_lines() {
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    t.write(
        "conf.d/a.yml",
        "# the api\ntargets:\n  - name: api\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
    );
    t.write(
        "conf.d/b.yml",
        "targets:\n  - name: other\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n  - name: api\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n  - name: main\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
    );
    let dir = t.dir().display().to_string();
    for cmd in ["check", "test-config"] {
        let out = t.run(&[cmd]);
        out.assert_code(78);
        assert_eq!(
            out.stderr,
            format!(
                "neon-watchdog: config is invalid (2 problems):\n\
                 {dir}/conf.d/b.yml: targets[1].name: \"api\" is already the name of a target in {dir}/conf.d/a.yml (targets[0], line 3): names must be unique across the config and the files it includes; rename one of them (line 5)\n\
                 {dir}/conf.d/b.yml: targets[2].name: \"main\" is already the name of a target in {dir}/config.yml (targets[0], line 4): names must be unique across the config and the files it includes; rename one of them (line 8)\n"
            ),
            "{out}"
        );
    }
    // twice in the config itself: the message is the one it always was
    let t = Test::new().config(
        "state_file: {dir}/state.json\ntargets:\n  - name: a\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n  - name: a\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n",
    );
    t.run(&["test-config"]).assert_code(78).assert_stderr_contains(&format!(
        "{dir}/config.yml: targets[1].name: \"a\" is already the name of targets[0]: names must be unique (line 6)",
        dir = t.dir().display()
    ));
}

#[test]
fn an_error_in_an_included_file_names_the_file_the_path_and_the_line() {
    let t = Test::new().config(&config_with("[conf.d/*.yml, conf.d/*.json]"));
    t.write(
        "conf.d/api.yml",
        "targets:\n  - name: ok\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n  - name: api\n    checks:\n      - command: [\"/bin/true\"]\n      - tcp_port: 127.0.0.1:70000\n    action: none\n",
    );
    let dir = t.dir().display().to_string();
    let out = t.run(&["check"]);
    out.assert_code(78);
    assert_eq!(
        out.stderr,
        format!("neon-watchdog: {dir}/conf.d/api.yml: targets[1].checks[1].tcp_port: port 70000 is out of range 1..65535 (line 8)\n"),
        "{out}"
    );
    // JSON: the parser's line and column
    std::fs::remove_file(t.path("conf.d/api.yml")).expect("rm");
    t.write(
        "conf.d/db.json",
        "{\"targets\": [\n  {\"name\": \"db\", \"checks\": [{\"command\": [\"/bin/true\"]}], \"action\": \"none\"},\n  {\"name\": \"db2\", \"checks\": [{\"tcp_port\": true}], \"action\": \"none\"}\n]}\n",
    );
    let out = t.run(&["test-config"]);
    out.assert_code(78).assert_stderr_contains(&format!(
        "{dir}/conf.d/db.json: targets[1].checks[0].tcp_port: invalid type: boolean `true`, expected \"host:port\" or a port number (line 3, column 46)"
    ));
    // a setting in an included file: named with its file and line
    std::fs::remove_file(t.path("conf.d/db.json")).expect("rm");
    t.write(
        "conf.d/web.yml",
        &format!(
            "interval_seconds: 5\n{}",
            one_target("web", "command: [\"/bin/true\"]")
        ),
    );
    t.run(&["check"]).assert_code(78).assert_stderr_contains(&format!(
        "{dir}/conf.d/web.yml: interval_seconds: `interval_seconds` is a setting of the config ({dir}/config.yml), not of an included file: an included file holds only a `targets:` list (and `x-` templates) (line 1)"
    ));
}

#[test]
fn includes_do_not_nest() {
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    t.write(
        "conf.d/api.yml",
        &format!(
            "{}include: [more/*.yml]\n",
            one_target("api", "command: [\"/bin/true\"]")
        ),
    );
    t.write(
        "conf.d/more/x.yml",
        &one_target("x", "command: [\"/bin/true\"]"),
    );
    let dir = t.dir().display().to_string();
    let out = t.run(&["check"]);
    out.assert_code(78).assert_stderr_contains(&format!(
        "{dir}/conf.d/api.yml: include: includes do not nest: an included file holds only a `targets:` list (and `x-` templates); list this glob in the `include:` of {dir}/config.yml (line 6)"
    ));
    assert!(!t.exists("state.json"), "a pass ran");
}

#[test]
fn a_glob_that_matches_nothing_is_fine_and_said() {
    let t = Test::new().config(&config_with("[conf.d/*.yml, /nonexistent-nw/*.yml]"));
    let out = t.run(&["check", "-v"]);
    out.assert_code(0)
        .assert_line_contains(
            &["level=debug", "glob=conf.d/*.yml"],
            "include glob matches no file",
        )
        .assert_line_contains(
            &["level=debug", "glob=/nonexistent-nw/*.yml"],
            "include glob matches no file",
        );
    // not said at the default level
    t.run(&["check"])
        .assert_code(0)
        .assert_stderr_not_contains("matches no file");
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains("include \"conf.d/*.yml\": matches no file\n")
        .assert_stdout_contains("include \"/nonexistent-nw/*.yml\": matches no file\n");
    // only included files, none there yet (a fresh package install): valid, nothing watched
    let t = Test::new().config("state_file: {dir}/state.json\ninclude: conf.d/*.yml\n");
    std::fs::create_dir(t.path("conf.d")).expect("mkdir");
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains(": valid, 0 targets")
        .assert_stderr_contains("include: no target to watch");
    t.run(&["check"]).assert_code(0);
    // a path without wildcards names a file that must be there
    let t = Test::new().config(&config_with("[extra.yml]"));
    t.run(&["check"]).assert_code(78).assert_stderr_contains(&format!(
        "config.yml: include[0]: \"extra.yml\": there is no file {}/extra.yml: a path without wildcards names a file that must exist",
        t.dir().display()
    ));
}

/// What is wrong with a glob itself is said at its place in the config.
#[test]
fn a_glob_that_cannot_be_read_is_an_error_at_its_line() {
    for (glob, expected) in [
        (
            "[\"conf.d/[ab.yml\"]",
            "config.yml: include[0]: \"conf.d/[ab.yml\": has an unclosed `[`",
        ),
        (
            "[\"conf.d/**/*.yml\"]",
            "config.yml: include[0]: \"conf.d/**/*.yml\": `**` (any depth) is not supported",
        ),
        (
            "[conf.d/*.yml, conf.d]",
            "conf.d is a directory: give a glob of the files in it, e.g. conf.d/*.yml (line 2)",
        ),
    ] {
        let t = Test::new().config(&config_with(glob));
        std::fs::create_dir(t.path("conf.d")).expect("mkdir");
        t.run(&["check"])
            .assert_code(78)
            .assert_stderr_contains(expected)
            .assert_stderr_contains(" (line 2)\n");
    }
}

#[test]
fn env_names_expand_in_included_files() {
    let secret = "s3cret-word-42";
    let t = Test::new()
        .config(&config_with("[conf.d/*.yml]"))
        .env("NW_WORD", secret);
    t.write(
        "conf.d/api.yml",
        &one_target(
            "api",
            &format!("command: [\"/usr/bin/test\", \"${{NW_WORD}}\", \"=\", \"{secret}\"]"),
        ),
    );
    let out = t.run(&["check"]);
    out.assert_code(0)
        .assert_lines(&["result=OK", "target=api "], 1)
        .assert_stderr_not_contains(secret);
    let out = t.run(&["test-config"]);
    out.assert_code(0);
    assert!(!out.stdout.contains(secret), "{out}");
    // an unset one is an error in that file
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    t.write(
        "conf.d/api.yml",
        &one_target("api", "command: [\"/usr/bin/test\", \"${NW_NOT_SET}\"]"),
    );
    t.run(&["check"]).assert_code(78).assert_stderr_contains(&format!(
        "{}/conf.d/api.yml: targets[0].checks[0].command[1]: environment variable NW_NOT_SET is not set",
        t.dir().display()
    ));
}

/// A program given as a relative path in an included file runs from that file's directory
/// (in the config, from the config's).
#[test]
fn relative_paths_in_an_included_file_resolve_beside_it() {
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    t.script(
        "probe.sh",
        "#!/bin/sh
exit 1
",
    );
    std::fs::create_dir(t.path("conf.d")).expect("mkdir");
    t.script(
        "conf.d/probe.sh",
        "#!/bin/sh
exit 0
",
    );
    t.write(
        "conf.d/api.yml",
        &one_target("api", "command: [\"./probe.sh\"]"),
    );
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_stdout_contains(&format!("command {}/conf.d/probe.sh,", t.dir().display()));
    assert_eq!(out.stderr, "", "no warning: the program is there");
    t.run(&["check"])
        .assert_code(0)
        .assert_lines(&["result=OK", "target=api "], 1);
}

#[test]
fn a_fifo_in_conf_d_is_refused_not_waited_for() {
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    t.write(
        "conf.d/api.yml",
        &one_target("api", "command: [\"/bin/true\"]"),
    );
    nix::unistd::mkfifo(&t.path("conf.d/zz.yml"), Mode::S_IRWXU).expect("mkfifo");
    for cmd in ["check", "test-config"] {
        t.run(&[cmd]).assert_code(78).assert_stderr_contains(&format!(
            "{}/conf.d/zz.yml: cannot read included file: is a FIFO (named pipe), not a regular file",
            t.dir().display()
        ));
    }
    assert!(!t.exists("state.json"), "a pass ran");
}

#[test]
fn a_world_writable_included_file_is_refused_as_root_unless_allowed() {
    if !root() {
        return;
    }
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    let file = t.write(
        "conf.d/api.yml",
        &one_target("api", "command: [\"/bin/true\"]"),
    );
    chmod(&file, 0o666);
    let shown = file.display().to_string();
    let problem = format!("{shown}: the included file is writable by everyone (mode 0666): whoever can change it runs commands as root; fix: chmod go-w {shown}");
    for args in [&["check"][..], &["run", "--once"]] {
        t.run(args)
            .assert_code(78)
            .assert_stderr_contains("refusing to run commands as root")
            .assert_stderr_contains(&problem);
    }
    assert!(!t.exists("state.json"), "a pass ran");
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stderr_contains(&format!("warning: {problem}"));
    t.run(&["check", "--allow-unsafe-config"])
        .assert_code(0)
        .assert_lines(&["result=OK", "target=api "], 1)
        .assert_line_contains(&["level=warn", &problem], "running it anyway");
}

/// The directory a glob reads counts even when nothing in it matches yet: whoever can write
/// there can drop a file in.
#[test]
fn a_conf_d_others_can_write_is_refused_as_root_even_empty() {
    if !root() {
        return;
    }
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    let dir = t.path("conf.d");
    std::fs::create_dir(&dir).expect("mkdir");
    chmod(&dir, 0o777);
    let shown = dir.display().to_string();
    t.run(&["check"]).assert_code(78).assert_stderr_contains(&format!(
        "include \"conf.d/*.yml\": directory {shown} is writable by everyone (mode 0777, no sticky bit): whoever can write there can add or replace included files, whose commands run as root; fix: chmod go-w {shown}"
    ));
    chmod(&dir, 0o755);
    t.run(&["check"]).assert_code(0);
}

/// A symlinked included file is followed, like the config; the directory it resolves into
/// counts.
#[test]
fn a_symlink_into_a_directory_others_can_write_is_refused_as_root() {
    if !root() {
        return;
    }
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    let real = t.write(
        "open/api.yml",
        &one_target("api", "command: [\"/bin/true\"]"),
    );
    std::fs::create_dir(t.path("conf.d")).expect("mkdir");
    std::os::unix::fs::symlink(&real, t.path("conf.d/api.yml")).expect("symlink");
    t.run(&["check"])
        .assert_code(0)
        .assert_lines(&["result=OK", "target=api "], 1);
    chmod(&t.path("open"), 0o777);
    t.run(&["check"])
        .assert_code(78)
        .assert_stderr_contains(&format!(
            "directory {} is writable by everyone",
            t.path("open").display()
        ));
}

#[test]
fn hidden_files_and_editor_leftovers_are_skipped() {
    let t = Test::new().config(&config_with("[conf.d/*]"));
    t.write(
        "conf.d/api.yml",
        &one_target("api", "command: [\"/bin/true\"]"),
    );
    // each of these would be an error if it were read
    for junk in [
        "api.yml~",
        ".api.yml.swp",
        "api.yml.dpkg-old",
        "api.yml.dpkg-dist",
        "api.yml.rpmnew",
        "api.yml.rpmsave",
        "#api.yml#",
    ] {
        t.write(&format!("conf.d/{junk}"), "this: is not a target list\n");
    }
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_stdout_contains(": valid, 2 targets")
        .assert_stdout_contains(
            "include \"conf.d/*\": 1 file, read in this order: conf.d/api.yml\n",
        )
        .assert_stdout_contains(
            "include \"conf.d/*\": skipped conf.d/api.yml~ (an editor or package manager leftover)\n",
        )
        .assert_stdout_contains(
            "include \"conf.d/*\": skipped conf.d/.api.yml.swp (a hidden file)\n",
        );
    t.run(&["check"])
        .assert_code(0)
        .assert_lines(&["result=OK", "target=api "], 1);
    // named without a wildcard, a leftover is read (and here, refused)
    let t = Test::new().config(&config_with("[conf.d/api.yml.rpmnew]"));
    t.write("conf.d/api.yml.rpmnew", "this: is not a target list\n");
    t.run(&["check"])
        .assert_code(78)
        .assert_stderr_contains("conf.d/api.yml.rpmnew: does not look like a neon-watchdog config file: its first key is `this`");
}

#[test]
fn too_many_included_files_is_a_clear_error() {
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    std::fs::create_dir(t.path("conf.d")).expect("mkdir");
    for i in 0..=1000 {
        std::fs::write(t.path(&format!("conf.d/{i:04}.yml")), "").expect("write");
    }
    let out = t.run(&["check"]);
    out.assert_code(78).assert_stderr_contains(
        "config.yml: include[0]: \"conf.d/*.yml\": matches more than 1000 files, more than a config may include (1000 in all): is the glob right? (line 2)",
    );
    // 1000 (empty) files are fine
    std::fs::remove_file(t.path("conf.d/1000.yml")).expect("rm");
    t.run(&["check"]).assert_code(0);
}

/// `run` re-reads the included files on SIGHUP: a file dropped into conf.d is watched from
/// then on.
#[test]
fn sighup_reads_a_file_added_to_conf_d() {
    let t = Test::new().config(
        &config_with("[conf.d/*.yml]").replace("targets:", "interval_seconds: 1\ntargets:"),
    );
    let mut run = t.spawn(&["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("pass done")),
        "no pass: {}",
        run.stderr_so_far()
    );
    t.write(
        "conf.d/api.yml",
        &one_target("api", "command: [\"/bin/true\"]"),
    );
    run.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s
            .lines()
            .any(|l| l.contains("result=OK") && l.contains("target=api "))),
        "the added file's target was not checked: {}",
        run.stderr_so_far()
    );
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit on SIGTERM")
        .assert_code(0);
}

/// A glob that matched some other file (`/etc/shadow` through a symlink, as root) says so once,
/// quoting at most 40 characters of it: not one error per line, each quoting the line twice.
#[test]
fn a_file_that_is_no_config_is_reported_once_and_not_quoted_at_length() {
    let t = Test::new().config(&config_with("[conf.d/*]"));
    let secret = "s3cr3t-hash-".repeat(10);
    let lines: String = (0..30)
        .map(|i| format!("user{i}:{secret}:20228:0:99999:7::\n"))
        .collect();
    t.write("conf.d/shadow", &lines);
    let out = t.run(&["test-config"]);
    out.assert_code(78);
    let shown = t.path("conf.d/shadow").display().to_string();
    assert_eq!(
        out.stderr,
        format!("neon-watchdog: {shown}: does not look like a neon-watchdog config file: its first key is `user0:s3cr3t-hash-s3cr3t-hash-s3cr3t-has...` (143 characters), which is not a setting, and it has no `targets:`; an included file holds a `targets:` list: is the include glob right? (line 1)\n"),
    );
    out.assert_stderr_not_contains("user1");
}

/// Unknown keys of a file that does look like a config are each reported once, a long one cut
/// at 40 characters with its length, in the path as in the message.
#[test]
fn a_long_unknown_key_is_cut() {
    let t = Test::new().config(&config_with("[conf.d/*]"));
    // (YAML takes keys of up to 1024 characters; JSON any)
    let long = "k".repeat(1000);
    t.write("conf.d/a.yml", &format!("targets: []\n{long}: 1\n"));
    let out = t.run(&["check"]);
    out.assert_code(78);
    let head = "k".repeat(40);
    assert_eq!(
        out.stderr,
        format!(
            "neon-watchdog: {}: {head}... (1000 characters): unknown field `{head}...` (1000 characters): an included file holds only a `targets:` list (and `x-` templates) (line 2)\n",
            t.path("conf.d/a.yml").display()
        )
    );
    // and in JSON, a key of megabytes
    let long = "k".repeat(3 << 20);
    t.write("conf.d/a.yml", "targets: []\n");
    t.write(
        "conf.d/b.json",
        &format!("{{\"targets\": [], \"{long}\": 1}}"),
    );
    let out = t.run(&["check"]);
    out.assert_code(78);
    assert_eq!(
        out.stderr,
        format!(
            "neon-watchdog: {}: {head}... (3145728 characters): unknown field `{head}...` (3145728 characters): an included file holds only a `targets:` list (and `x-` templates)\n",
            t.path("conf.d/b.json").display()
        )
    );
}

/// A FIFO reached by two paths (here through a `self -> .` symlink) is one problem, not two.
#[test]
fn a_fifo_reached_twice_is_reported_once() {
    let t = Test::new().config(&config_with("[conf.d/*.yml, \"conf.d/*/*.yml\"]"));
    std::fs::create_dir(t.path("conf.d")).expect("mkdir");
    std::os::unix::fs::symlink(".", t.path("conf.d/self")).expect("symlink");
    nix::unistd::mkfifo(&t.path("conf.d/zz.yml"), Mode::S_IRWXU).expect("mkfifo");
    let out = t.run(&["check"]);
    out.assert_code(78);
    assert_eq!(
        out.lines_with(&["zz.yml: cannot read included file: is a FIFO"])
            .len(),
        1,
        "{out}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

/// `conf.d/*/app.yml`: the subdirectories walked through are not files the glob matches; only
/// the files count toward the 1,000.
#[test]
fn subdirectories_a_glob_walks_do_not_count_as_included_files() {
    let t = Test::new().config(&config_with("[\"conf.d/*/app.yml\"]"));
    for i in 0..1200 {
        std::fs::create_dir_all(t.path(&format!("conf.d/d{i:04}"))).expect("mkdir");
    }
    t.write(
        "conf.d/d0007/app.yml",
        &one_target("app", "command: [\"/bin/true\"]"),
    );
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains(": valid, 2 targets");
}

/// A sticky world-writable directory (/tmp's mode, 1777) is no protection for a directory a
/// glob lists: anyone can add a file it takes (a FIFO there would stop every check). It is
/// refused as root like any directory others can write; above a named file it stays fine.
#[test]
fn a_sticky_world_writable_conf_d_is_refused_as_root() {
    if !root() {
        return;
    }
    let t = Test::new().config(&config_with("[conf.d/*.yml]"));
    t.write(
        "conf.d/api.yml",
        &one_target("api", "command: [\"/bin/true\"]"),
    );
    let dir = t.path("conf.d");
    chmod(&dir, 0o1777);
    let shown = dir.display().to_string();
    let problem = format!("include \"conf.d/*.yml\": directory {shown} is writable by everyone (mode 1777): whoever can write there can add or replace included files, whose commands run as root; the sticky bit does not help: the include glob lists this directory, and takes what anyone adds to it; fix: chmod go-w {shown}");
    t.run(&["check"])
        .assert_code(78)
        .assert_stderr_contains("refusing to run commands as root")
        .assert_stderr_contains(&problem);
    assert!(!t.exists("state.json"), "a pass ran");
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stderr_contains(&format!("warning: {problem}"));
    t.run(&["check", "--allow-unsafe-config"]).assert_code(0);
    // a file named without wildcards in that directory: nobody can replace it (sticky)
    let t2 = Test::new().config(&config_with(&format!("[{shown}/api.yml]")));
    t2.run(&["check"])
        .assert_code(0)
        .assert_lines(&["result=OK", "target=api "], 1);
    chmod(&dir, 0o755);
    t.run(&["check"]).assert_code(0);
}
