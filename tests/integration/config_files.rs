//! What is at the config's paths is not trusted: a FIFO, a device or a directory where the
//! config belongs is a config error (78) at once, never a hang or an endless read (where a
//! file of ours belongs, it never stops the checks); a config too large,
//! or one whose YAML aliases expand beyond the limits, is refused quickly, in bounded memory;
//! a big honest config still loads.
//!
//! Time limits here are the harness's `RUN_LIMIT` (a run that hangs fails the test); nothing
//! is timed.

use crate::harness::*;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

const OK: &str = "state_file: {dir}/state.json\ntargets:\n  - name: web\n    checks: [{command: [\"/bin/true\"]}]\n    action: none\n";

fn mkfifo(path: &std::path::Path) {
    nix::unistd::mkfifo(path, Mode::S_IRWXU).expect("mkfifo");
}

#[test]
fn a_fifo_as_the_config_is_an_error_not_a_hang() {
    let t = Test::new();
    mkfifo(t.config_path());
    let cfg = t.config_path().display().to_string();
    for sub in ["check", "test-config", "run"] {
        t.run(&[sub])
            .assert_code(78)
            .assert_stderr_contains(&format!(
                "{cfg}: cannot read config: is a FIFO (named pipe), not a regular file"
            ));
    }
}

#[test]
fn a_device_as_the_config_is_an_error_not_an_endless_read() {
    let t = Test::new();
    for sub in ["check", "test-config"] {
        t.run_bare(&[sub, "-c", "/dev/zero"])
            .assert_code(78)
            .assert_stderr_contains(
                "/dev/zero: cannot read config: is a character device, not a regular file",
            );
    }
}

#[test]
fn a_symlink_to_a_config_file_is_fine() {
    let t = Test::new().config_named("real.yml", OK);
    let link = t.path("config.yml");
    std::os::unix::fs::symlink(t.path("real.yml"), &link).expect("symlink");
    let link = link.display().to_string();
    t.run_bare(&["check", "-c", &link]).assert_code(0);
}

/// state_file, lock_file and metrics.textfile name files of ours: whatever else stands there
/// (whoever can write to that directory could have put it there) never stops the checks.
/// `check` runs them and leaves each thing as it is, saying on error lines what it could not
/// do: no action without the state or the lock, exit 1 (the watchdog's own trouble).
/// test-config warns, naming the path, what it is and what it costs. (Before, each was a
/// config error: exit 78, no check at all.)
#[test]
fn a_file_of_ours_that_is_not_a_regular_file_never_stops_the_checks() {
    let t = Test::new().config(&format!(
        "{OK}metrics: {{textfile: {{dir}}/metrics.prom}}\n"
    ));
    let dir = t.dir().display().to_string();
    mkfifo(&t.path("state.json"));
    std::fs::create_dir(t.path("state.json.lock")).expect("mkdir");
    std::os::unix::fs::symlink("/etc/passwd", t.path("metrics.prom")).expect("symlink");
    t.run(&["check"])
        .assert_code(1)
        .assert_line_contains(&["result=OK", "target=web "], "latency_ms")
        .assert_line_contains(&["level=error", "cannot use lock file"], "is a directory")
        .assert_line_contains(&["level=error", "cannot save state file"], "is a FIFO")
        .assert_line_contains(
            &["level=error", "cannot write metrics textfile"],
            "is a symbolic link",
        );
    let out = t.run(&["test-config"]);
    out.assert_code(0);
    let cfg = t.config_path().display().to_string();
    let warnings: Vec<String> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(|l| l.replace(&cfg, "CFG"))
        .collect();
    assert_eq!(
        warnings,
        [
            format!("warning: CFG: metrics.textfile: {dir}/metrics.prom is a symbolic link, not a regular file: the metrics cannot be written there (an error line each pass; checks and actions go on); remove it or choose another path (line 6)"),
            format!("warning: CFG: state_file: {dir}/state.json is a FIFO (named pipe), not a regular file: the state cannot be saved there, so the checks run but no action does; remove it or choose another path (line 1)"),
            format!("warning: CFG: lock_file: {dir}/state.json.lock is a directory, not a regular file: the lock cannot be taken there, so the checks run but no action does; remove it or choose another path"),
        ]
    );
    // nothing was replaced, nothing read
    assert!(std::fs::symlink_metadata(t.path("metrics.prom"))
        .expect("link")
        .file_type()
        .is_symlink());
    assert!(t.path("state.json.lock").is_dir());
    assert_eq!(
        std::fs::read_to_string("/etc/passwd")
            .map(|s| s.is_empty())
            .ok(),
        Some(false)
    );
}

/// `run` re-reads the config on SIGHUP: a config that has become a FIFO is an error logged
/// at once (the running config is kept), not a hang that leaves SIGTERM unanswered.
#[test]
fn sighup_after_the_config_became_a_fifo_keeps_the_running_config() {
    let t = Test::new().config(&OK.replace("targets:", "interval_seconds: 1\ntargets:"));
    let mut run = t.spawn(&["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("pass done")),
        "no pass: {}",
        run.stderr_so_far()
    );
    std::fs::remove_file(t.config_path()).expect("rm config");
    mkfifo(t.config_path());
    run.signal(Signal::SIGHUP);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s
            .lines()
            .any(|l| l.contains("config reload failed") && l.contains("is a FIFO"))),
        "the reload did not fail at once: {}",
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit on SIGTERM")
        .assert_code(0);
}

/// A SIGHUP reload of a config nesting flow collections 80,000 deep (160 KB) used to keep
/// `run` in the YAML parser for 11 s (quadratic): it is refused at once, the running config
/// kept, and the loop answers SIGTERM.
#[test]
fn sighup_with_deeply_nested_yaml_is_refused_at_once_and_run_goes_on() {
    let t = Test::new().config(&OK.replace("targets:", "interval_seconds: 1\ntargets:"));
    let mut run = t.spawn(&["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("pass done")),
        "no pass: {}",
        run.stderr_so_far()
    );
    let n = 80_000;
    t.write(
        "config.yml",
        &format!("{}x: {}{}\n", OK, "[".repeat(n), "]".repeat(n)),
    );
    let sent = std::time::Instant::now();
    run.signal(Signal::SIGHUP);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.lines().any(|l| l
            .contains("config reload failed")
            && l.contains("nested too deeply at line 6"))),
        "the reload was not refused: {}",
        run.stderr_so_far()
    );
    // a hang guard, not a benchmark: the parser took 11 s (release, over a minute in a debug build) on this file
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        sent.elapsed()
    );
    run.signal(Signal::SIGTERM);
    run.wait_timeout(EVENT_LIMIT)
        .expect("run did not exit on SIGTERM")
        .assert_code(0);
}

#[test]
fn a_config_larger_than_4_mib_is_refused_at_once() {
    let mut text = OK.to_string();
    let comment = format!("# {}\n", "x".repeat(1022));
    while text.len() < 40 << 20 {
        text.push_str(&comment);
    }
    let t = Test::new().config(&text);
    let size = std::fs::metadata(t.config_path()).expect("stat").len();
    let cfg = t.config_path().display().to_string();
    for sub in ["check", "test-config"] {
        let out = t.run(&[sub]);
        out.assert_code(78);
        assert_eq!(
            out.stderr,
            format!("neon-watchdog: {cfg}: config is too large: {size} bytes, more than the 4 MiB a config file may have (5,000 targets take about 1 MiB): is this the right file?\n")
        );
    }
}

/// Billion laughs that type-check: an argv anchored once, a list of 100 checks that alias it,
/// 1000 targets that alias that list: 100 million strings from a 60 KB file.
#[test]
fn a_billion_laughs_config_is_refused_quickly() {
    let argv = (0..1000)
        .map(|i| format!("\"arg{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "state_file: {{dir}}/state.json\ntargets:\n  - name: t0\n    checks: &checks [{{command: &argv [{argv}]}}{}]\n    action: none\n",
        ", {command: *argv}".repeat(99)
    );
    for i in 1..1000 {
        text.push_str(&format!(
            "  - name: t{i}\n    checks: *checks\n    action: none\n"
        ));
    }
    let e = invalid_fast(&text);
    assert!(
        e.contains("the config expands to more than 500000 values (keys, scalars, lists, maps; a simple target holds about 13) once YAML aliases are expanded, past the size limit of a config file: an alias `*name` repeats everything its anchor `&name` holds"),
        "{e}"
    );
}

/// The shape of the issue: one large argv, aliased by thousands of targets (a 3 MB file).
#[test]
fn one_large_argv_aliased_thousands_of_times_is_refused() {
    let argv = (0..1000)
        .map(|i| format!("\"a{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "state_file: {{dir}}/state.json\ntargets:\n  - name: t0\n    checks: [{{command: &argv [{argv}]}}]\n    action: none\n"
    );
    for i in 1..45_000 {
        text.push_str(&format!(
            "  - name: t{i}\n    checks: [{{command: *argv}}]\n    action: none\n"
        ));
    }
    assert!(text.len() < 4 << 20);
    let e = invalid_fast(&text);
    assert!(
        e.contains("the config expands to more than 500000 values"),
        "{e}"
    );
}

/// Run `check` and `test-config`: both exit 78 (within the harness's RUN_LIMIT) with the
/// same message, on one line.
#[track_caller]
fn invalid_fast(text: &str) -> String {
    let t = Test::new().config(text);
    let check = t.run(&["check"]);
    check.assert_code(78);
    let test_config = t.run(&["test-config"]);
    test_config.assert_code(78);
    assert_eq!(check.stderr, test_config.stderr);
    assert_eq!(check.stderr.lines().count(), 1, "{check}");
    check.stderr
}

/// Limits are far above any real config: 5,000 targets (about 1 MiB) load.
#[test]
fn a_big_honest_config_loads() {
    let mut text = String::from("state_file: {dir}/state.json\ntargets:\n");
    for i in 0..5000 {
        text.push_str(&format!(
            "  - name: target-{i}\n    enabled: {}\n    checks:\n      - tcp_port: 127.0.0.1:{}\n      - command: [\"/bin/true\", \"--flag\", \"value-{i}\"]\n    policy: {{fail_threshold: 2}}\n    action:\n      exec:\n        restart: [\"/bin/true\", \"restart\", \"target-{i}\"]\n",
            i == 0,
            1024 + i
        ));
    }
    let t = Test::new().config(&text.replace("      - tcp_port: 127.0.0.1:1024\n", ""));
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains("valid, 5000 targets (1 enabled, 4999 disabled)");
    t.run(&["check"]).assert_code(0);
}

/// Thousands of problems are read in the time the file takes to read, and reported in a few
/// lines: the first 20, then how many more (each `check` of the timer prints them again). The
/// config's own unknown keys and an included file's alike. Before: every problem rescanned the
/// file for its line (4,000 keys took 12 s) and all of them were printed.
#[test]
fn ten_thousand_unknown_keys_are_reported_in_twenty_one_lines_and_quickly() {
    let keys: String = (0..10_000).map(|i| format!("k{i}: 1\n")).collect();
    // the config's own keys (after a setting: it is a config with typos, not some other file)
    let t = Test::new().config(&format!(
        "state_file: {{dir}}/state.json\n{keys}targets: []\n"
    ));
    let out = t.run(&["check"]);
    out.assert_code(78)
        .assert_faster_than(std::time::Duration::from_secs(10));
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 22, "{out}");
    // the header counts them all, not the lines shown
    assert_eq!(
        lines[0], "neon-watchdog: config is invalid (10000 problems):",
        "{out}"
    );
    assert!(lines[1].ends_with("k0: unknown field `k0`, expected one of `interval_seconds`, `timeout_seconds`, `log_level`, `log_checks`, `state_file`, `lock_file`, `max_parallel`, `systemctl_path`, `docker_socket`, `default_policy`, `targets`, `reminder_every_seconds`, `notify`, `heartbeat`, `metrics`, `include` (line 2)"), "{out}");
    assert!(
        lines[20].contains("k19: unknown field `k19`") && lines[20].ends_with("(line 21)"),
        "{out}"
    );
    assert_eq!(
        lines[21],
        "and 9980 more problems (10000 in all; the first 20 are shown): fix these first"
    );
    // an included file's
    let t = Test::new().config("state_file: {dir}/state.json\ninclude: [conf.d/*]\n");
    t.write("conf.d/a.yml", &format!("targets: []\n{keys}"));
    let out = t.run(&["test-config"]);
    out.assert_code(78)
        .assert_faster_than(std::time::Duration::from_secs(10));
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 22, "{out}");
    assert!(
        lines[1].ends_with(
            "conf.d/a.yml: k0: unknown field `k0`: an included file holds only a `targets:` list (and `x-` templates) (line 2)"
        ),
        "{out}"
    );
    assert!(lines[21].starts_with("and 9980 more problems"), "{out}");
}

/// The cap holds across included files: 50 files of 10 problems each show 20 in all.
#[test]
fn problems_of_many_included_files_are_capped_together() {
    let t = Test::new().config("state_file: {dir}/state.json\ninclude: [conf.d/*.yml]\n");
    let keys: String = (0..10).map(|i| format!("k{i}: 1\n")).collect();
    for f in 0..50 {
        t.write(
            &format!("conf.d/{f:02}.yml"),
            &format!("targets: []\n{keys}"),
        );
    }
    let out = t.run(&["check"]);
    out.assert_code(78);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 22, "{out}");
    assert!(lines[1].contains("conf.d/00.yml: k0:"), "{out}");
    assert!(lines[20].contains("conf.d/01.yml: k9:"), "{out}");
    assert_eq!(
        lines[21],
        "and 480 more problems (500 in all; the first 20 are shown): fix these first"
    );
}

/// Validation of 30,000 targets, each with a problem, in a YAML file: every issue's line was
/// found by rescanning the file (quadratic); now the file's lines are indexed once.
#[test]
fn thirty_thousand_invalid_targets_are_reported_quickly() {
    let mut text = String::from("state_file: {dir}/state.json\ntargets:\n");
    for i in 0..30_000 {
        text.push_str(&format!(
            "  - name: t{i}\n    checks:\n      - tcp_port: 70000\n    action: none\n"
        ));
    }
    let t = Test::new().config(&text);
    let out = t.run(&["check"]);
    out.assert_code(78)
        .assert_faster_than(std::time::Duration::from_secs(20));
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 22, "{out}");
    assert!(
        lines[20].contains("config.yml: targets[19].checks[0].tcp_port: ")
            && lines[20].ends_with("(line 81)"),
        "{out}"
    );
    assert!(lines[21].starts_with("and 29980 more problems"), "{out}");
}

/// A big JSON config is not blamed on YAML aliases it does not have: the message says which
/// size limit it passed.
#[test]
fn a_json_config_past_the_value_limit_says_so_without_aliases() {
    let targets: Vec<String> = (0..45_000)
        .map(|i| format!(r#"{{"name":"{i}","checks":[{{"tcp_port":1}}],"action":"none","depends_on":["1","2"]}}"#))
        .collect();
    let text = format!(
        r#"{{"state_file":"{{dir}}/state.json","targets":[{}]}}"#,
        targets.join(",")
    );
    let t = Test::new().config_named("config.json", &text);
    let out = t.run(&["check"]);
    out.assert_code(78)
        .assert_stderr_contains("the file holds more than 500000 values (keys, scalars, lists, maps; a simple target holds about 13): that is the size limit of a config file; is this the right file?")
        .assert_stderr_not_contains("alias");
}

/// YAML merge keys (`<<: *template`), the common way to share settings between similar
/// targets, used to be refused as an unknown field. They are taken in every map (a target, a
/// check, a policy, an action, env): the map's own keys override what is merged, an earlier
/// map of a `<<: [*a, *b]` list overrides a later one, a template may merge another, and the
/// templates live under top-level `x-` keys, which are no settings. What is merged runs: the
/// merged command check passes, the merged policy and action are the target's.
#[test]
fn yaml_merge_keys_share_settings_between_targets_and_checks() {
    let t = Test::new().config(
        r#"state_file: {dir}/state.json
x-probe: &probe
  command: ["/bin/sh", "-c", "exit $CODE"]
  timeout_seconds: 7
x-policy: &policy {fail_threshold: 3, restart_cooldown_seconds: 600}
x-service: &service
  policy: *policy
  action:
    exec:
      start: ["/bin/sh", "-c", "echo started >> {dir}/$NAME.log"]
      env: &env {NAME: none, KEEP: "yes"}
targets:
  - <<: *service
    name: ok
    checks:
      - <<: *probe
        name: probe
  - <<: [{name: failing, enabled: false}, *service]
    enabled: true
    checks:
      - {<<: *probe, command: ["/bin/false"]}
    action:
      exec:
        start: ["/bin/sh", "-c", "echo started >> {dir}/$NAME.log"]
        env: {<<: *env, NAME: failing}
    policy: {<<: *policy, fail_threshold: 1}
"#,
    );
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_stdout_contains("valid, 2 targets (2 enabled, 0 disabled)")
        .assert_stdout_contains("timeout 7s")
        .assert_stdout_contains("policy: fail_threshold 3, restart_cooldown 600s")
        .assert_stdout_contains("policy: fail_threshold 1, restart_cooldown 600s");
    // the merged check and action run: `ok`'s command exits 0 (CODE unset: `exit` alone),
    // `failing`'s own /bin/false fails and its action runs with the merged env overridden
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["target=ok ", "check=probe"], "result=OK")
        .assert_line_contains(&["target=failing ", "check="], "result=FAIL");
    assert!(
        wait_until(EVENT_LIMIT, || t.exists("failing.log")),
        "the merged action did not run"
    );
    assert_eq!(t.read("failing.log"), "started\n");
    assert!(!t.exists("none.log"));
}

/// Merge keys keep the rules of every map: an unknown key a template brings in is reported
/// (at the line of the `<<` that merged it), as is an unknown key beside a `<<`; a `<<` that
/// names no map says what it takes; in JSON `<<` is no merge key; and what merges expand to
/// counts towards the limits, as aliases do.
#[test]
fn merge_keys_keep_unknown_keys_and_the_expansion_limits() {
    let refused_as = |name: &str, text: &str| {
        let out = Test::new().config_named(name, text).run(&["test-config"]);
        out.assert_code(78);
        out.stderr.clone()
    };
    let refused = |text: &str| refused_as("config.yml", text);
    let e = refused(
        "state_file: {dir}/state.json\nx-t: &t {checks: [{command: [/bin/true]}], acton: none}\ntargets:\n  - name: a\n    <<: *t\n    action: none\n    nmae: b\n",
    );
    assert!(
        e.contains("targets[0].nmae: unknown field `nmae`: did you mean `name`? (line 7)"),
        "{e}"
    );
    assert!(e.contains("targets[0].acton: unknown field `acton`: did you mean `action`? (brought in by the merge key `<<`) (line 5)"), "{e}");
    let e = refused(
        "state_file: {dir}/state.json\ntargets:\n  - name: a\n    <<: [x]\n    checks: [{command: [/bin/true]}]\n    action: none\n",
    );
    assert!(
        e.contains(
            "targets[0].<<: the merge key `<<` takes a map or a list of maps, e.g. `<<: *defaults`"
        ),
        "{e}"
    );
    let e = refused_as(
        "config.json",
        r#"{"state_file": "{dir}/state.json", "targets": [{"<<": {"name": "a"}, "checks": [{"command": ["/bin/true"]}], "action": "none"}]}"#,
    );
    assert!(e.contains("targets[0].<<: unknown field `<<`"), "{e}");
    // each level merges the one below ten times: 10^6 copies of a small map
    let mut text = String::from("state_file: {dir}/state.json\nx-0: &l0 {k0: a, k1: b, k2: c}\n");
    for i in 1..7 {
        text.push_str(&format!(
            "x-{i}: &l{i} {{<<: [{}]}}\n",
            vec![format!("*l{}", i - 1); 10].join(", ")
        ));
    }
    text.push_str("targets:\n  - name: a\n    checks: [{command: [/bin/true]}]\n    action: {exec: {start: [/bin/true], env: {<<: *l6}}}\n");
    let e = invalid_fast(&text);
    assert!(
        e.contains("once YAML aliases are expanded, past the size limit of a config file")
            || e.contains("the config expands to too much once YAML aliases are expanded"),
        "{e}"
    );
}
