//! The files the watchdog writes as root are no way in: links planted in its directories never
//! redirect a write, modes never follow the umask, the lock stays on the file its path names,
//! and a state directory it cannot write does not stop the checks.

use crate::harness::*;
use nix::sys::signal::Signal;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

const FAILING_WITH_ACTION: &str = r#"
state_file: {dir}/state/state.json
metrics:
  textfile: {dir}/metrics/neon.prom
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/out/runs"]
"#;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// The last pid the kernel handed out: the next processes get the ones after it.
fn last_pid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1)
}

#[test]
fn links_planted_for_the_temp_files_never_redirect_a_write() {
    let t = Test::new().config(FAILING_WITH_ACTION);
    let victim = t.write("victim", "precious\n");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    for d in ["state", "metrics", "out"] {
        std::fs::create_dir_all(t.path(d)).unwrap();
    }
    // the old temp names were `.NAME.tmp-PID`: plant them for the pids to come
    let from = last_pid() + 1;
    for pid in from..from + 3000 {
        for name in ["state/.state.json", "metrics/.neon.prom"] {
            let link = t.path(&format!("{name}.tmp-{pid}"));
            let _ = std::os::unix::fs::symlink(&victim, link);
        }
    }
    t.run(&["check"]).assert_code(2);
    assert_eq!(
        t.read("victim"),
        "precious\n",
        "root wrote through a planted link"
    );
    assert_eq!(mode(&victim), 0o600, "root chmodded the victim");
    for f in ["state/state.json", "metrics/neon.prom"] {
        let m = std::fs::symlink_metadata(t.path(f)).unwrap();
        assert!(m.file_type().is_file(), "{f} is not a regular file");
    }
    assert!(t.json("state/state.json")["targets"]["app"].is_object());
}

#[test]
fn a_lock_file_planted_as_a_link_is_never_followed_nor_stops_the_checks() {
    let t = Test::new().config(FAILING_WITH_ACTION);
    let victim = t.write("victim", "precious\n");
    std::fs::create_dir_all(t.path("state")).unwrap();
    std::fs::create_dir_all(t.path("out")).unwrap();
    std::os::unix::fs::symlink(&victim, t.path("state/state.json.lock")).unwrap();
    // never followed, and no reason to stop checking: the checks run, no action does
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["level=error", "cannot use lock file"],
            "state.json.lock is a symbolic link, not a regular file",
        )
        .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
        .assert_line_contains(&["level=error", "target=app "], "reason=no_lock");
    assert_eq!(
        t.read("victim"),
        "precious\n",
        "the lock truncated its victim"
    );
    assert_eq!(t.count_lines("out/runs"), 0, "acted without the lock");
    // a hard link to another file is a regular file to the loader, but no lock file: the
    // pass runs its checks, no action (the lock could not be taken), the victim untouched
    std::fs::remove_file(t.path("state/state.json.lock")).unwrap();
    std::fs::remove_file(t.path("state/state.json")).unwrap();
    std::fs::hard_link(&victim, t.path("state/state.json.lock")).unwrap();
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["level=error", "cannot use lock file"], "2 hard links")
        .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
        .assert_line_contains(&["level=error", "target=app "], "reason=no_lock");
    assert_eq!(t.read("victim"), "precious\n");
    assert_eq!(t.count_lines("out/runs"), 0, "acted without the lock");
    // unlocked, a healthy pass is still the watchdog's own trouble: exit 1
    t.write(
        "config.yml",
        &FAILING_WITH_ACTION.replace("/bin/false", "/bin/true"),
    );
    t.run(&["check"]).assert_code(1);
    assert_eq!(t.read("victim"), "precious\n");
}

#[test]
fn modes_never_follow_the_umask() {
    let t = Test::new().config(FAILING_WITH_ACTION);
    std::fs::create_dir_all(t.path("out")).unwrap();
    t.run_wrapped(
        &["/bin/sh", "-c", "umask 000; exec \"$0\" \"$@\""],
        &["check"],
    )
    .assert_code(2);
    assert_eq!(mode(&t.path("state")), 0o700, "state directory");
    assert_eq!(mode(&t.path("state/state.json")), 0o600, "state file");
    assert_eq!(mode(&t.path("state/state.json.lock")), 0o600, "lock file");
    assert_eq!(mode(&t.path("state/app.action.log")), 0o600, "action log");
    // node exporter, another user, reads the textfile
    assert_eq!(mode(&t.path("metrics")), 0o755, "metrics directory");
    assert_eq!(
        mode(&t.path("metrics/neon.prom")),
        0o644,
        "metrics textfile"
    );
}

/// The README says the state file may be deleted: deleting the whole state directory under a
/// running `run` must not let a `check` run beside it.
#[test]
fn run_takes_the_lock_again_when_its_file_is_deleted() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state/state.json
interval_seconds: 1
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
    action: none
"#,
    );
    let mut run = t.spawn(&["run"]);
    wait_for_file(&t.path("state/state.json.lock"), EVENT_LIMIT);
    // `rm -rf state`: `run` may be saving into it meanwhile, and a file created during the
    // removal makes it fail (directory not empty), as `rm -rf` would; an operator runs it
    // again, and so do we, until the directory is gone
    let mut last_err = None;
    let removed = wait_until(EVENT_LIMIT, || {
        match std::fs::remove_dir_all(t.path("state")) {
            Ok(()) => true,
            Err(e) => {
                last_err = Some(e);
                false
            }
        }
    });
    assert!(removed, "cannot remove the state directory: {last_err:?}");
    // the pid is written once the lock is taken: the new file exists a moment before that
    let run_pid = run.pid().to_string();
    assert!(
        wait_until(EVENT_LIMIT, || std::fs::read_to_string(
            t.path("state/state.json.lock")
        )
        .is_ok_and(|s| s.trim() == run_pid)),
        "run did not take the lock again on a new lock file"
    );
    t.run(&["check"])
        .assert_code(75)
        .assert_stderr_contains(&format!("(pid {})", run.pid()));
    run.signal(Signal::SIGTERM);
    let done = run.wait_timeout(EVENT_LIMIT).expect("run exits");
    done.assert_code(0)
        .assert_stderr_contains("the lock file was removed or replaced while running");
}

/// The holder's pid comes from the kernel when the lock file does not (yet) hold it.
#[test]
fn the_exit_75_message_always_names_the_holder() {
    let t = Test::new().config(FAILING_WITH_ACTION);
    std::fs::create_dir_all(t.path("state")).unwrap();
    std::fs::write(t.path("state/state.json.lock"), "").unwrap();
    let mut cmd = Command::new("/usr/bin/flock");
    cmd.arg("-x")
        .arg(t.path("state/state.json.lock"))
        .arg("-c")
        .arg(format!(
            "echo held > {}; exec sleep 60",
            t.path("held").display()
        ))
        .stdin(Stdio::null());
    let holder = ChildGuard::spawn(cmd);
    wait_for_file(&t.path("held"), EVENT_LIMIT);
    t.run(&["check"])
        .assert_code(75)
        .assert_stderr_contains(&format!("(pid {})", holder.pid()));
}

/// A state directory this user cannot write (here: root's directory, the watchdog run as
/// nobody): every check still runs and is logged, a failing target exits 2, no action runs.
#[test]
fn a_read_only_state_directory_does_not_stop_the_checks() {
    let t = Test::new().config(
        FAILING_WITH_ACTION
            .replace("metrics:\n  textfile: {dir}/metrics/neon.prom\n", "")
            .as_str(),
    );
    // nobody must reach the config and the action's output directory
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(t.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir_all(t.path("out")).unwrap();
    std::fs::set_permissions(t.path("out"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir_all(t.path("state")).unwrap();
    std::fs::set_permissions(t.path("state"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = [
        "/usr/bin/setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    // no lock file yet, and none can be created
    let out = t.run_wrapped(&nobody, &["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
        .assert_line_contains(
            &["level=error", "cannot use lock file"],
            "permission denied",
        )
        .assert_line_contains(
            &["level=error", "cannot save state file"],
            "permission denied",
        )
        .assert_line_contains(&["level=error", "target=app "], "reason=state_unwritable");
    assert_eq!(t.count_lines("out/runs"), 0, "acted without its memory");
    // an existing lock file it may only read (root's): locked read-only, same result
    std::fs::write(t.path("state/state.json.lock"), "").unwrap();
    std::fs::set_permissions(
        t.path("state/state.json.lock"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = t.run_wrapped(&nobody, &["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
        .assert_line_contains(&["level=error", "target=app "], "reason=state_unwritable");
    assert_eq!(t.count_lines("out/runs"), 0, "acted without its memory");
    // the `run` loop starts too, and keeps checking (holding the lock read-only, it keeps
    // the policy's memory in the process, as it does whenever the state cannot be saved)
    let mut run = t.spawn_wrapped(&nobody, &["run"]);
    assert!(
        run.wait_for_stderr(EVENT_LIMIT, |s| s.contains("pass done")),
        "run did not start a pass: {}",
        run.stderr_so_far()
    );
    run.signal(Signal::SIGTERM);
    let done = run.wait_timeout(EVENT_LIMIT).expect("run exits");
    done.assert_code(0)
        .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
        .assert_line_contains(
            &["level=error", "cannot save state file"],
            "permission denied",
        );
}

/// A detached start's `log_file` planted as a link to another file: the daemon's output never
/// goes through it, and the victim is untouched; nor does the plant keep the service down: it
/// starts with its output to /dev/null, and the action's line (warn) says why.
#[test]
fn a_detached_start_never_logs_through_a_planted_link() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        start: ["/bin/sh", "-c", "echo started >> {dir}/runs; echo hello"]
        detach: true
        log_file: {dir}/app.log
"#,
    );
    let victim = t.write("victim", "precious\n");
    for plant in ["symlink", "hard link"] {
        let _ = std::fs::remove_file(t.path("app.log"));
        match plant {
            "symlink" => std::os::unix::fs::symlink(&victim, t.path("app.log")).unwrap(),
            _ => std::fs::hard_link(&victim, t.path("app.log")).unwrap(),
        }
        let _ = std::fs::remove_file(t.path("state.json"));
        let _ = std::fs::remove_file(t.path("runs"));
        let out = t.run(&["check"]);
        out.assert_code(2)
            .assert_line_contains(&["msg=\"action started\""], "log_file not used");
        // what was planted at the log's path does not keep the service down: it starts, with
        // its output to /dev/null
        assert!(
            wait_until(EVENT_LIMIT, || t.count_lines("runs") == 1),
            "{plant}: the start did not run\n{out}"
        );
        assert_eq!(t.read("victim"), "precious\n", "{plant}: written through");
    }
    // a plain file of ours is used, appended to
    std::fs::remove_file(t.path("app.log")).unwrap();
    std::fs::remove_file(t.path("state.json")).unwrap();
    t.run(&["check"]).assert_code(2);
    assert!(wait_until(EVENT_LIMIT, || t.exists("runs")
        && std::fs::read_to_string(t.path("app.log"))
            .is_ok_and(|s| s.contains("hello"))));
}

/// Run `script` with /bin/sh as user nobody (a real unprivileged process) and wait for it.
fn as_nobody(t: &Test, script: &str) {
    let st = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/bin/sh",
            "-ec",
            &t.expand(script),
        ])
        .stdin(Stdio::null())
        .status()
        .expect("run setpriv");
    assert!(st.success(), "{script}: {st}");
}

/// The metrics textfile's directory often belongs to the node exporter's user (here: nobody),
/// who can plant a symlink or a FIFO where the textfile goes. Before, that made every `check`
/// a config error (exit 78: no check, no action, tick after tick). Now the checks and the
/// actions go on; the write is refused with an error line that names the path and what is
/// there, which is left as it is (the link's victim untouched), and test-config warns.
#[test]
fn a_link_or_fifo_planted_at_the_textfile_stops_neither_checks_nor_actions() {
    let t = Test::new().config(FAILING_WITH_ACTION);
    t.write("victim", "precious\n");
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(t.path("out")).unwrap();
    std::fs::create_dir_all(t.path("metrics")).unwrap();
    nix::unistd::chown(&t.path("metrics"), Some(65534.into()), Some(65534.into())).unwrap();
    as_nobody(&t, "ln -s {dir}/victim {dir}/metrics/neon.prom");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
        .assert_line_contains(
            &["level=error", "cannot write metrics textfile"],
            "neon.prom is a symbolic link, not a regular file",
        )
        .assert_stderr_contains("action done");
    assert_eq!(t.count_lines("out/runs"), 1, "the action did not run");
    assert_eq!(t.read("victim"), "precious\n");
    assert!(std::fs::symlink_metadata(t.path("metrics/neon.prom"))
        .unwrap()
        .file_type()
        .is_symlink());
    // a FIFO: never opened, never waited on
    std::fs::remove_file(t.path("metrics/neon.prom")).unwrap();
    as_nobody(&t, "mkfifo {dir}/metrics/neon.prom");
    // fresh state: the policy acts again at once
    std::fs::remove_file(t.path("state/state.json")).unwrap();
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["level=error", "cannot write metrics textfile"],
            "neon.prom is a FIFO (named pipe), not a regular file",
        )
        .assert_faster_than(std::time::Duration::from_secs(15));
    assert_eq!(t.count_lines("out/runs"), 2, "the action did not run");
    let out = t.run(&["test-config"]);
    out.assert_code(0).assert_stderr_contains(&format!(
        "warning: {}: metrics.textfile: {} is a FIFO (named pipe), not a regular file: the metrics cannot be written there (an error line each pass; checks and actions go on)",
        t.config_path().display(),
        t.path("metrics/neon.prom").display()
    ));
}

/// A state file in a directory anyone can create files in (`/tmp`: mode 1777) could be
/// created first by another user (a FIFO, a file of theirs saying the target gave up). Refusing
/// such a config (exit 78) stopped every check. Now, as root, the checks run and are logged,
/// the state there is neither read nor written (as an unwritable state: no action runs,
/// `reason=state_unwritable`, exit 2), whatever nobody planted; test-config warns and says
/// where to put it.
#[test]
fn a_state_file_where_others_can_create_files_never_stops_the_checks() {
    let t = Test::new()
        .config(&FAILING_WITH_ACTION.replace("{dir}/state/state.json", "{dir}/open/state.json"));
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(t.path("out")).unwrap();
    std::fs::create_dir(t.path("open")).unwrap();
    std::fs::set_permissions(t.path("open"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let open = t.path("open").display().to_string();
    let state = t.path("open/state.json").display().to_string();
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_stderr_contains(&format!(
            "state_file: directory {open} is writable by everyone (mode 1777): another user could create the state file there first (a FIFO, a file of theirs), so it is neither read nor written"
        ))
        .assert_stderr_contains("leave state_file unset");
    // the lock beside it is taken where only root can write (see lock.rs): removed at the end
    let lock = out
        .stderr
        .split("so the lock is taken at ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("test-config names where the lock is taken")
        .to_string();
    let _remove = RemoveOnDrop(lock.clone());
    for plant in ["", "mkfifo {dir}/open/state.json"] {
        if !plant.is_empty() {
            as_nobody(&t, plant);
        }
        t.run(&["check"])
            .assert_code(2)
            .assert_line_contains(&["result=FAIL", "target=app "], "exit 1")
            .assert_line_contains(
                &["level=error", "is not used"],
                &format!("state file {state} is not used: other users can create files in {open}; fix: leave state_file unset"),
            )
            .assert_line_contains(&["action skipped"], "reason=state_unwritable")
            .assert_faster_than(std::time::Duration::from_secs(15));
        assert!(
            !t.exists("out/runs"),
            "{plant}: an action ran without its memory"
        );
    }
    // what nobody planted is left as it is
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(t.path("open/state.json"))
        .unwrap()
        .file_type()
        .is_fifo());
}

/// Removes a file the watchdog made outside the test's directory (the lock it takes under
/// /run/neon-watchdog/) when the test ends, passed or failed.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
