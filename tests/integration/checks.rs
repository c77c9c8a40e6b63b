//! The process checks against real processes: pid files (missing, garbage, stale, zombie,
//! reused pid) and process names (zombies do not count; long names match by argv[0]), and the
//! tcp check with a name to resolve.

use crate::harness::*;
use std::net::TcpListener;
use std::process::{Command, Stdio};

fn sleeper(program: &str) -> ChildGuard {
    let mut cmd = Command::new(program);
    cmd.arg("60").stdin(Stdio::null());
    ChildGuard::spawn(cmd)
}

#[test]
fn pid_file_failures_name_their_reason() {
    let t = Test::new();
    let alive = sleeper("/bin/sleep");
    let zombie_prog = t.copy_program("/bin/true", &unique_name("nwz"));
    let zombie = Zombie::new(&t, &zombie_prog);
    t.write("garbage.pid", "hello world\n");
    nix::unistd::mkfifo(&t.path("fifo.pid"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    t.write("stale.pid", &format!("{}\n", dead_pid()));
    t.write("zombie.pid", &format!("{}\n", zombie.pid));
    t.write("alive.pid", &format!("{}\n", alive.pid()));
    let t = t.config(
        r#"
state_file: {dir}/state.json
targets:
  - name: missing
    checks: [{pid_file: "{dir}/missing.pid"}]
    action: none
  - name: garbage
    checks: [{pid_file: "{dir}/garbage.pid"}]
    action: none
  - name: stale
    checks: [{pid_file: "{dir}/stale.pid"}]
    action: none
  - name: zombie
    checks: [{pid_file: "{dir}/zombie.pid"}]
    action: none
  - name: fifo
    checks: [{pid_file: "{dir}/fifo.pid"}]
    action: none
  - name: alive
    checks: [{pid_file: "{dir}/alive.pid"}]
    action: none
  - name: reused
    checks: [{pid_file: "{dir}/alive.pid", process_name: redis-server}]
    action: none
  - name: named
    checks: [{pid_file: "{dir}/alive.pid", process_name: sleep}]
    action: none
"#,
    );
    let out = t.run(&["check", "-v"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=missing "], "does not exist")
        .assert_line_contains(&["result=FAIL", "target=garbage "], "not a pid")
        .assert_line_contains(&["result=FAIL", "target=stale "], "not running")
        .assert_line_contains(&["result=FAIL", "target=zombie "], "zombie")
        .assert_line_contains(&["result=FAIL", "target=reused "], "not redis-server")
        .assert_line_contains(&["result=FAIL", "target=fifo "], "not a regular file")
        .assert_lines(&["result=FAIL", "target=alive "], 0)
        .assert_lines(&["result=FAIL", "target=named "], 0)
        .assert_line_contains(
            &["result=OK", "target=alive "],
            &format!("pid={}", alive.pid()),
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=2 failing=6");
    drop(zombie);
}

#[test]
fn process_name_zombie_does_not_count() {
    let t = Test::new();
    let name = unique_name("nwz");
    let prog = t.copy_program("/bin/true", &name);
    let zombie = Zombie::new(&t, &prog);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: z
    checks:
      - process_name: {name}
    action: none
"#
    ));
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=z "], "zombie")
        .assert_line_contains(
            &["result=FAIL", "target=z "],
            &format!("pid {}", zombie.pid),
        );
    drop(zombie);
    // gone altogether
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(&["result=FAIL"], &format!("no process named {name}"));
}

#[test]
fn process_name_matches_live_processes_and_long_names() {
    let t = Test::new();
    let short = unique_name("nwp");
    let long = format!("{}-with-a-long-name", unique_name("nwl"));
    assert!(long.len() > 15);
    let _a = sleeper(t.copy_program("/bin/sleep", &short).to_str().unwrap());
    let _b = sleeper(t.copy_program("/bin/sleep", &long).to_str().unwrap());
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: short
    checks:
      - process_name: {short}
        cmdline_contains: "60"
    action: none
  - name: long
    checks:
      - process_name: {long}
    action: none
  - name: wrong-args
    checks:
      - process_name: {short}
        cmdline_contains: "--no-such-arg"
    action: none
"#
    ));
    let out = t.run(&["check", "-v"]);
    out.assert_code(2)
        .assert_lines(&["result=OK", "target=short "], 1)
        .assert_lines(&["result=OK", "target=long "], 1)
        .assert_line_contains(&["result=FAIL", "target=wrong-args "], "--no-such-arg");
}

#[test]
fn tcp_port_resolves_names_and_reports_refusal() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = free_port();
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: by-name
    checks: [{{tcp_port: "localhost:{open}"}}]
    action: none
  - name: by-ip
    checks: [{{tcp_port: "127.0.0.1:{open}"}}]
    action: none
  - name: bare-port
    checks: [{{tcp_port: {open}}}]
    action: none
  - name: closed
    checks: [{{tcp_port: "127.0.0.1:{closed}"}}]
    action: none
"#
    ));
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=closed "],
            "err=\"connection refused\"",
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=3 failing=1");
    drop(listener);
}

/// A process known only by its argv[0] (`exec -a NAME`, systemd's `ExecStart=@prog NAME`):
/// its kernel name and executable are `sleep`, its argv[0] is the name the check asks for.
#[test]
fn process_name_matches_a_renamed_argv0() {
    let name = unique_name("nwargv");
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c")
        .arg(format!("exec -a {name} /bin/sleep 60"))
        .stdin(Stdio::null());
    let child = ChildGuard::spawn(cmd);
    assert!(
        wait_until(EVENT_LIMIT, || {
            std::fs::read_to_string(format!("/proc/{}/cmdline", child.pid()))
                .is_ok_and(|c| c.starts_with(&name))
        }),
        "the helper never exec'd"
    );
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: renamed
    checks: [{{process_name: {name}}}]
    action: none
"#
    ));
    t.run(&["check", "-v"]).assert_code(0).assert_line_contains(
        &["result=OK", "target=renamed "],
        &format!("pid={}", child.pid()),
    );
}

/// The controlling terminal of `pid` (tty_nr, the 7th field of /proc/PID/stat): 0 for none.
fn tty_nr(pid: i32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(4)?.parse().ok()
}

/// Issue 18 review F1: a pid file path is a symlink, made by the service's user, to a
/// terminal that user holds (a real pty, opened by python's `pty` module), and beside it a
/// FIFO. `run` runs as a session leader without a terminal, as under systemd: if it opened
/// the pty (a plain open, without O_NOCTTY), the pty would become its controlling terminal
/// and ^C typed there would kill it. It opens neither: its tty_nr stays 0, the check says
/// what the file is, and the FIFO never blocks the pass.
#[test]
fn a_pid_file_that_is_a_users_terminal_or_a_fifo_is_never_opened() {
    let t = Test::new();
    // a pty held open by its owner; the slave's name on stdout
    let mut holder = Command::new(PYTHON);
    holder
        .args([
            "-c",
            "import os, pty, sys, time\nm, s = pty.openpty()\nprint(os.ttyname(s), flush=True)\ntime.sleep(120)",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut holder = ChildGuard::spawn(holder);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.child.stdout.take().expect("piped")),
        &mut line,
    )
    .expect("pty name");
    let pty = line.trim().to_string();
    assert!(pty.starts_with("/dev/pts/"), "{pty:?}");
    std::os::unix::fs::symlink(&pty, t.path("tty.pid")).expect("symlink");
    nix::unistd::mkfifo(
        &t.path("fifo.pid"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    let t = t.config(
        r#"
state_file: {dir}/state.json
interval_seconds: 3600
targets:
  - name: tty
    checks: [{pid_file: "{dir}/tty.pid"}]
    action: none
  - name: fifo
    checks: [{pid_file: "{dir}/fifo.pid"}]
    action: none
"#,
    );
    // a session leader of its own, without a terminal: setsid(1) execs it in place, as it is
    // not a process group leader (spawned in the test's group)
    let err = std::fs::File::create(t.path("run.err")).expect("stderr file");
    let mut cmd = Command::new("/usr/bin/setsid");
    cmd.arg(BIN)
        .args(["run", "-c"])
        .arg(t.config_path())
        .current_dir(t.dir())
        .env_remove("NEON_WATCHDOG_CONFIG")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    let run = Guard::pid(spawn_cmd(&mut cmd).id() as i32);
    let checked = || {
        let e = t.read("run.err");
        e.contains("target=tty") && e.contains("target=fifo")
    };
    assert!(
        wait_until(EVENT_LIMIT, checked),
        "no check lines: {}",
        t.read("run.err")
    );
    assert_eq!(
        tty_nr(run.id()),
        Some(0),
        "the watchdog took the user's terminal as its own; stderr: {}",
        t.read("run.err")
    );
    let e = t.read("run.err");
    let tty_line = e.lines().find(|l| l.contains("target=tty")).unwrap_or("");
    assert!(
        tty_line.contains("is a character device, not a regular file"),
        "{tty_line}"
    );
    let fifo_line = e.lines().find(|l| l.contains("target=fifo")).unwrap_or("");
    assert!(
        fifo_line.contains("is a FIFO (named pipe), not a regular file"),
        "{fifo_line}"
    );
    drop(run);
    holder.kill_now();
}

/// `argv` run as user nobody (group nogroup, no other groups), to its end.
fn as_nobody(argv: &[&str]) {
    let st = status_of(
        Command::new("/usr/bin/setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .args(argv)
            .stdin(Stdio::null()),
    );
    assert!(st.success(), "as nobody: {argv:?}: {st}");
}

/// Issue 18 review F3: the pid file lives in a directory of the service's user (nobody here).
/// That user swaps the directory for a symlink into a root-only directory holding a root-owned
/// pid file that names a root process running the service's program: the path's last component
/// is then a root-owned regular file. It must not read as the service: whoever made the
/// symlink chose the file, so the process must be theirs.
#[test]
fn a_directory_on_the_pid_files_path_swapped_for_a_symlink_is_the_users() {
    let t = Test::new();
    let name = unique_name("nwsw");
    let prog = t.copy_program("/bin/sleep", &name);
    let root_proc = sleeper(prog.to_str().expect("utf-8"));
    // a root-only directory with root's pid file of a root process named like the service
    let secret = t.path("rootonly");
    std::fs::create_dir(&secret).expect("mkdir");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    std::fs::write(secret.join("svc.pid"), format!("{}\n", root_proc.pid())).expect("pid");
    // the service user's own run directory, in a directory only root can write
    std::fs::set_permissions(t.dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod dir");
    let run = t.path("svcrun");
    std::fs::create_dir(&run).expect("mkdir");
    nix::unistd::chown(&run, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
    // nobody swaps its directory `cur` for a symlink to the root-only one
    let cur = run.join("cur");
    as_nobody(&[
        "/bin/ln",
        "-s",
        secret.to_str().expect("utf-8"),
        cur.to_str().expect("utf-8"),
    ]);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: svc
    checks: [{{pid_file: "{{dir}}/svcrun/cur/svc.pid", process_name: {name}}}]
    action: none
"#
    ));
    let out = t.run(&["check"]);
    out.assert_code(2);
    let line = out.line(&["target=svc ", "result=FAIL"]);
    assert!(
        line.contains("runs as uid 0 (root), not uid 65534 (nobody), the owner of the pid file"),
        "{line}"
    );
    assert!(line.contains("who made the symlink"), "{line}");
}

/// Issue 18 review F4: a root-owned pid file that a group or everyone can write names any pid
/// someone put there; without `user:` no owner can be trusted, so a root process it names is
/// not taken for the service: the check fails and says to add `user:`, and test-config warns.
/// With `user: root` it is healthy.
#[test]
fn a_root_pid_file_others_can_write_needs_user() {
    let t = Test::new();
    let name = unique_name("nwgw");
    let prog = t.copy_program("/bin/sleep", &name);
    let root_proc = sleeper(prog.to_str().expect("utf-8"));
    let pid_file = t.path("svc.pid");
    std::fs::write(&pid_file, format!("{}\n", root_proc.pid())).expect("pid");
    nix::unistd::chown(&pid_file, None, Some(nix::unistd::Gid::from_raw(65534))).expect("chgrp");
    std::fs::set_permissions(
        &pid_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o664),
    )
    .expect("chmod");
    let config = |user: &str| {
        format!(
            r#"
state_file: {{dir}}/state.json
targets:
  - name: svc
    checks: [{{pid_file: "{{dir}}/svc.pid", process_name: {name}{user}}}]
    action: none
"#
        )
    };
    let t = t.config(&config(""));
    let out = t.run(&["check"]);
    out.assert_code(2);
    let line = out.line(&["target=svc ", "result=FAIL"]);
    assert!(
        line.contains("belongs to root but is writable by group gid 65534")
            && line.contains("user: root"),
        "{line}"
    );
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stderr_contains("no owner can be trusted without user:");
    let t = t.config(&config(", user: root"));
    t.run(&["check"]).assert_code(0);
}
