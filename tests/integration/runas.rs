//! `user:` and `group:`: exec actions (start, restart, stop), `on_give_up` and `command` checks
//! run as another user, the way systemd's User=/Group= do: that uid, the user's primary group
//! (or `group:`), the supplementary groups initgroups(3) gives, HOME, USER, LOGNAME and SHELL.
//! The suite runs as root, which can switch; the accounts are the system's own (nobody, and a
//! user found with a supplementary group, such as postgres in ssl-cert), none is created.
//! What each command saw is what it wrote (`id`, its environment) or the file it created.

use crate::harness::*;
use nix::unistd::{Group, User};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Stdio;

/// A test whose directory other users can traverse (a temp dir is 0700), with `shared/`,
/// a directory they can write: what a command run as another user writes lands there.
fn open_test() -> Test {
    let t = Test::new();
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let shared = t.path("shared");
    std::fs::create_dir(&shared).expect("mkdir shared");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    t
}

fn nobody() -> User {
    User::from_name("nobody")
        .ok()
        .flatten()
        .expect("this system has a user nobody")
}

/// A user of this system in at least one group besides its primary one (postgres is in
/// ssl-cert on Debian), and those groups' gids as `id -G` prints them, from the group database.
fn user_with_supplementary_groups() -> (User, Vec<u32>) {
    let text = std::fs::read_to_string("/etc/group").expect("read /etc/group");
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 || fields[3].is_empty() {
            continue;
        }
        for member in fields[3].split(',') {
            let Some(u) = User::from_name(member).ok().flatten() else {
                continue;
            };
            let name = std::ffi::CString::new(member).expect("name");
            let mut gids: Vec<u32> = Vec::new();
            for g in nix::unistd::getgrouplist(&name, u.gid).expect("getgrouplist") {
                if !gids.contains(&g.as_raw()) {
                    gids.push(g.as_raw());
                }
            }
            if gids.iter().any(|g| *g != u.gid.as_raw()) {
                return (u, gids);
            }
        }
    }
    panic!("no user of this system has a supplementary group (getent group): install postgresql, which puts postgres in ssl-cert");
}

/// A command check as a user with supplementary groups: its uid, primary gid, `id -G` (the
/// groups of initgroups), HOME, USER, LOGNAME and SHELL are that user's. The check fails on
/// purpose so that its FAIL line carries what the command printed; the line says who it ran as.
#[test]
fn a_command_check_runs_with_the_users_ids_groups_and_environment() {
    let (u, gids) = user_with_supplementary_groups();
    let t = open_test().config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: as-user
    checks:
      - command: ["/bin/sh", "-c", "echo \"ids=$(id -u):$(id -g) groups=$(id -G) home=$HOME user=$USER logname=$LOGNAME shell=$SHELL\"; exit 1"]
        user: {}
    action: none
"#,
        u.name
    ));
    let groups: Vec<String> = gids.iter().map(u32::to_string).collect();
    let expected = format!(
        "exit 1: ids={}:{} groups={} home={} user={} logname={} shell={}",
        u.uid,
        u.gid,
        groups.join(" "),
        u.dir.display(),
        u.name,
        u.name,
        u.shell.display()
    );
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL"], &expected)
        .assert_line_contains(&["result=FAIL"], &format!("(as user {})", u.name));
    // test-config says who, with the ids
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains(&format!(
            "runs as user {} (uid {}, gid {}, groups {})",
            u.name,
            u.uid,
            u.gid,
            groups.join(",")
        ));
}

/// A numeric uid is that user, with its name in USER; `group:` alone changes only the gid
/// (systemd's Group=): the uid stays root's and the environment the watchdog's.
#[test]
fn a_numeric_uid_and_a_group_alone() {
    let n = nobody();
    let adm = Group::from_name("adm")
        .ok()
        .flatten()
        .expect("this system has a group adm");
    let t = open_test()
        .config(&format!(
            r#"
state_file: {{dir}}/state.json
targets:
  - name: by-uid
    checks:
      - command: ["/bin/sh", "-c", "echo \"ids=$(id -u):$(id -g) user=$USER home=$HOME\"; exit 1"]
        user: {}
    action: none
  - name: by-group
    checks:
      - command: ["/bin/sh", "-c", "echo \"ids=$(id -u):$(id -g) user=$USER home=$HOME\"; exit 1"]
        group: adm
    action: none
"#,
            n.uid
        ))
        .env("USER", "the-watchdogs")
        .env("HOME", "/the/watchdogs/home");
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=by-uid"],
            &format!(
                "exit 1: ids={}:{} user=nobody home={}",
                n.uid,
                n.gid,
                n.dir.display()
            ),
        )
        .assert_line_contains(
            &["result=FAIL", "target=by-group"],
            &format!(
                "exit 1: ids=0:{} user=the-watchdogs home=/the/watchdogs/home",
                adm.gid
            ),
        )
        .assert_line_contains(&["result=FAIL", "target=by-group"], "(as group adm)");
}

/// An exec action's start as a user: the file it creates is that user's, the environment is
/// the user's except where `env:` says otherwise, `stop:` runs as the user too, and every line
/// of the action says who (`user=nobody`).
#[test]
fn an_exec_start_runs_as_the_user_and_so_does_its_stop() {
    let n = nobody();
    let t = open_test().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        stop: ["/bin/sh", "-c", "id -u > {dir}/shared/stop.uid"]
        start: ["/bin/sh", "-c", "echo \"$(id -u) $(id -g) $HOME $USER\" > {dir}/shared/started"]
        user: nobody
        env: {HOME: /srv/app}
        cwd: /
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["msg=\"target failing; running action\""], "user=nobody")
        .assert_line_contains(&["msg=\"action done\""], "user=nobody");
    let meta = std::fs::metadata(t.path("shared/started")).expect("the start created its file");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (n.uid.as_raw(), n.gid.as_raw()),
        "the file the start created is nobody's"
    );
    assert_eq!(
        t.read("shared/started").trim_end(),
        format!("{} {} /srv/app nobody", n.uid, n.gid),
        "env: wins over the user's HOME"
    );
    assert_eq!(t.read("shared/stop.uid").trim_end(), n.uid.to_string());
}

/// A detached start as a user writes to a log_file it could not open itself (a directory only
/// root can enter): the watchdog opens it, the program inherits the descriptor.
#[test]
fn a_detached_start_as_a_user_writes_to_the_log_file_root_opened() {
    let n = nobody();
    let t = open_test().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        start: ["/bin/sh", "-c", "echo uid=$(id -u); echo $$ > {dir}/shared/detached.pid"]
        detach: true
        log_file: {dir}/private/app.log
        user: nobody
"#,
    );
    let private = t.path("private");
    std::fs::create_dir(&private).expect("mkdir private");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"action started\""], "user=nobody");
    wait_for_file(&t.path("shared/detached.pid"), EVENT_LIMIT);
    let _reap = Guard::from_pid_file(&t.path("shared/detached.pid"));
    assert!(
        wait_until(EVENT_LIMIT, || t.read("private/app.log").contains("uid=")),
        "nothing in the log file"
    );
    assert_eq!(
        t.read("private/app.log").trim_end(),
        format!("uid={}", n.uid)
    );
}

/// on_give_up runs as its own user.
#[test]
fn on_give_up_runs_as_its_user() {
    let n = nobody();
    let t = open_test().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    policy: {restart_cooldown_seconds: 0, give_up_after_restarts: 1}
    action:
      exec:
        restart: ["/bin/true"]
    on_give_up:
      exec: ["/bin/sh", "-c", "echo \"$(id -u) $USER\" > {dir}/shared/gave_up"]
      user: nobody
"#,
    );
    t.run(&["check"]).assert_code(2);
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"on_give_up done\""], "user=nobody");
    assert_eq!(
        t.read("shared/gave_up").trim_end(),
        format!("{} nobody", n.uid)
    );
}

/// A command run as nobody that hangs is killed at its timeout with everything it started:
/// the watchdog (root) kills another user's process group, and nothing is left in /proc.
#[test]
fn a_hung_command_as_nobody_is_killed_at_its_timeout() {
    let t = open_test();
    let (name, _cleanup) = unique_sleep(&t);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: hung
    checks:
      - command: ["/bin/sh", "-c", "id -u > {{dir}}/shared/hung.uid; {{dir}}/{name} 300 & setsid {{dir}}/{name} 300 & {{dir}}/{name} 300"]
        user: nobody
        timeout_seconds: 1
    action: none
"#
    ));
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL"], "err=\"timed out after 1s\"");
    assert_eq!(
        t.read("shared/hung.uid").trim_end(),
        nobody().uid.to_string()
    );
    assert_no_leftovers(&name);
}

/// cwd: is entered as the user: one it cannot reach fails the action, and the error says so.
#[test]
fn a_cwd_the_user_cannot_reach_is_named_in_the_error() {
    let t = open_test().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        start: ["/bin/true"]
        user: nobody
        cwd: {dir}/private
"#,
    );
    let private = t.path("private");
    std::fs::create_dir(&private).expect("mkdir private");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    t.run(&["check"]).assert_code(2).assert_line_contains(
        &["msg=\"action failed\""],
        &format!(
            "cannot run /bin/true as user nobody: cannot enter its working directory {}/private as user nobody: permission denied",
            t.dir().display()
        ),
    );
}

/// An unknown user or group is a config error (78) naming the key and its line; nothing runs.
#[test]
fn an_unknown_user_or_group_is_a_config_error_with_its_line() {
    let t = open_test().config(
        r#"state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
        group: no-such-group-nw
    action:
      exec:
        start: ["/bin/sh", "-c", "touch {dir}/ran"]
        user: no-such-user-nw
"#,
    );
    for verb in ["check", "test-config"] {
        t.run(&[verb])
            .assert_code(78)
            .assert_stderr_contains(
                "targets[0].action.exec.user: no user named \"no-such-user-nw\" on this machine (getent passwd no-such-user-nw): give an existing user, by name or uid (line 10)",
            )
            .assert_stderr_contains(
                "targets[0].checks[0].group: no group named \"no-such-group-nw\" on this machine",
            )
            .assert_stderr_contains("(line 6)");
    }
    assert!(!t.exists("ran"));
}

/// A watchdog that does not run as root cannot switch: the check says why (not judged: the
/// watchdog's own trouble), no panic; `test-config` warns.
#[test]
fn without_root_a_command_as_another_user_fails_with_a_clear_message() {
    let n = nobody();
    let t = open_test().config(
        r#"
state_file: {dir}/shared/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/true"]
        user: root
    action: none
"#,
    );
    std::fs::set_permissions(t.config_path(), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let run = |verb: &str| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args([verb, "-c"])
            .arg(t.config_path())
            .current_dir("/")
            .uid(n.uid.as_raw())
            .gid(n.gid.as_raw())
            .env_remove("NEON_WATCHDOG_CONFIG")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        spawn_cmd(&mut cmd)
            .wait_with_output()
            .expect("run the binary as nobody")
    };
    let out = run("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "err=\"cannot run /bin/true as user root: only root can run a command as another user or group, and neon-watchdog runs as uid {}",
            n.uid
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let out = run("test-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("targets[0].checks[0].user: will fail to run: only root can run"),
        "{stderr}"
    );
}

/// The switch to the user comes before PR_SET_PDEATHSIG is set (the kernel clears it when the
/// credentials change): an action the watchdog waits for, run as nobody, still dies with the
/// watchdog. It reads its own setting (prctl PR_GET_PDEATHSIG) and writes it down.
#[test]
fn an_action_as_a_user_still_dies_with_the_watchdog() {
    let t = open_test().config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        start: ["{PYTHON}", "-c", "import ctypes, os; s = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(s)); open('{{dir}}/shared/pdeathsig', 'w').write('%d %d' % (os.getuid(), s.value))"]
        user: nobody
"#
    ));
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["msg=\"action done\""], "exit=0");
    assert_eq!(
        t.read("shared/pdeathsig"),
        format!("{} 9", nobody().uid),
        "runs as nobody with SIGKILL as its parent-death signal"
    );
}

/// A detached start's log_file is opened by root with no symbolic link followed anywhere on
/// its path, write-only: the app's user (nobody owns `appdir`) swapped `logs` for a link to a
/// root-only directory, whose app.log root would otherwise have opened (read + append) and
/// handed to the app. The app reads nothing of it and appends nothing to it; its output goes
/// to /dev/null, and the action's line says why.
#[test]
fn a_log_file_behind_a_link_the_apps_user_planted_is_not_opened() {
    let n = nobody();
    let t = open_test().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        start: ["/bin/sh", "-c", "cat <&1 > {dir}/shared/leak 2>/dev/null; echo appended; echo $$ > {dir}/shared/detached.pid"]
        detach: true
        log_file: {dir}/srv/appdir/logs/app.log
        user: nobody
"#,
    );
    let secret = t.path("secret");
    std::fs::create_dir(&secret).expect("mkdir secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::write(secret.join("app.log"), "root only\n").expect("write");
    let appdir = t.path("srv/appdir");
    std::fs::create_dir_all(&appdir).expect("mkdir appdir");
    std::os::unix::fs::symlink(&secret, appdir.join("logs")).expect("symlink");
    for p in [&appdir, &appdir.join("logs")] {
        std::os::unix::fs::lchown(p, Some(n.uid.as_raw()), Some(n.gid.as_raw())).expect("chown");
    }
    let out = t.run(&["check"]);
    wait_for_file(&t.path("shared/detached.pid"), EVENT_LIMIT);
    let _reap = Guard::from_pid_file(&t.path("shared/detached.pid"));
    assert_eq!(t.read("shared/leak"), "", "the app read a root-only file");
    assert_eq!(
        std::fs::read_to_string(secret.join("app.log")).expect("read"),
        "root only\n",
        "the app appended to a root-only file"
    );
    out.assert_code(2).assert_line_contains(
        &["msg=\"action started\""],
        &format!(
            "log_file not used: {}/logs/app.log is a symbolic link, or a directory on its way is",
            appdir.display()
        ),
    );
    // test-config names the link and the directory nobody owns... as nobody's own: no word
    // on the directory, which the program's user may own
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stderr_contains(&format!(
            "{}/logs is a symbolic link: no link is followed on the way to log_file",
            appdir.display()
        ))
        .assert_stderr_not_contains("is owned by uid");
}

/// test-config warns about a log_file in a directory another user than root and the program's
/// own could write (its files could be there first).
#[test]
fn a_log_file_where_another_user_can_write_is_warned_about() {
    let n = nobody();
    let t = open_test().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        start: ["/bin/true"]
        detach: true
        log_file: {dir}/others/app.log
"#,
    );
    let others = t.path("others");
    std::fs::create_dir(&others).expect("mkdir");
    std::os::unix::fs::lchown(&others, Some(n.uid.as_raw()), None).expect("chown");
    t.run(&["test-config"]).assert_code(0).assert_stderr_contains(&format!(
        "targets[0].action.exec.log_file: directory {} is owned by uid {}: another user could put a file or a directory of theirs on the way to the log",
        others.display(),
        n.uid
    ));
}

/// A command run as another user starts from a clean environment, as systemd's User= does:
/// none of the watchdog's own variables (a secret handed to the daemon) reaches it; it keeps
/// PATH and the locale, gets the user's HOME, the watchdog's NEON_WATCHDOG_* variables and
/// the config's env:. A command run as root inherits the watchdog's environment, as before.
#[test]
fn a_command_as_another_user_does_not_inherit_the_watchdogs_secrets() {
    let n = nobody();
    let t = open_test()
        .config(
            r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/sh", "-c", "env > {dir}/shared/env.check; exit 1"]
        user: nobody
      - command: ["/bin/sh", "-c", "env > {dir}/env.root; exit 1"]
    action:
      exec:
        start: ["/bin/sh", "-c", "env > {dir}/shared/env.action"]
        user: nobody
        env: {APP_MODE: prod}
"#,
        )
        .env("WEBHOOK_TOKEN", "s3cret-token-nw")
        .env("LANG", "C.UTF-8");
    t.run(&["check"]).assert_code(2);
    let check = t.read("shared/env.check");
    let action = t.read("shared/env.action");
    for (what, env) in [("check", &check), ("action", &action)] {
        assert!(
            !env.contains("s3cret-token-nw"),
            "{what} as nobody got the secret:\n{env}"
        );
        for want in [
            "PATH=".to_string(),
            "LANG=C.UTF-8".to_string(),
            format!("HOME={}", n.dir.display()),
            "USER=nobody".to_string(),
            "NEON_WATCHDOG_COMMAND_ID=".to_string(),
        ] {
            assert!(
                env.lines().any(|l| l.starts_with(&want)),
                "{what}: no {want}:\n{env}"
            );
        }
    }
    assert!(action.lines().any(|l| l == "APP_MODE=prod"), "{action}");
    assert!(
        action.lines().any(|l| l == "NEON_WATCHDOG_TARGET=app"),
        "{action}"
    );
    assert!(
        t.read("env.root")
            .lines()
            .any(|l| l == "WEBHOOK_TOKEN=s3cret-token-nw"),
        "a command as root inherits the watchdog's environment"
    );
}

/// A check as nobody cannot keep a process alive by giving it another command's marker
/// (NEON_WATCHDOG_COMMAND_ID) in a session of its own: it is swept with the check.
#[test]
fn a_forged_marker_does_not_save_a_leftover_of_a_check_as_nobody() {
    let t = open_test();
    let (name, _cleanup) = unique_sleep(&t);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: forger
    checks:
      - command: ["/bin/sh", "-c", "( setsid sh -c 'NEON_WATCHDOG_COMMAND_ID=1.1 exec {{dir}}/{name} 1234' & ); exit 0"]
        user: nobody
    action: none
"#
    ));
    t.run(&["check"]).assert_code(0);
    assert_no_leftovers(&name);
}

/// A descriptor the watchdog inherited from its parent (not close-on-exec: a shell's `5<`)
/// reaches no command: not one run as nobody, which would read a root-only file through it,
/// nor one run as root.
#[test]
fn stray_descriptors_of_the_watchdogs_parent_reach_no_command() {
    let t = open_test().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/sh", "-c", ": > {dir}/shared/leak.nobody; cat <&5 >> {dir}/shared/leak.nobody 2>/dev/null; exit 0"]
        user: nobody
      - command: ["/bin/sh", "-c", ": > {dir}/shared/leak.root; cat <&5 >> {dir}/shared/leak.root 2>/dev/null; exit 0"]
    action: none
"#,
    );
    let secret = t.write("secret", "root only\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let file = std::fs::File::open(&secret).expect("open secret");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["check", "-c"])
        .arg(t.config_path())
        .current_dir(t.dir())
        .env_remove("NEON_WATCHDOG_CONFIG")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: dup2 only, between fork and exec; the new descriptor is not close-on-exec
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::dup2(fd, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = spawn_cmd(&mut cmd).wait_with_output().expect("run check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        t.read("shared/leak.nobody"),
        "",
        "nobody read a root-only file"
    );
    assert_eq!(t.read("shared/leak.root"), "");
}
