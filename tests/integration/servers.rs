//! Real servers as watched targets: kill them, and the next `check` must notice (exit 2),
//! bring them back (the port accepts connections again) and the pass after that is healthy.

use crate::harness::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A small real HTTP server (python's http.server) that writes its pid file once listening.
const HTTP_SERVER: &str = r#"
import http.server, os, sys
port, pid_file = int(sys.argv[1]), sys.argv[2]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Quiet)
with open(pid_file + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pid_file + ".tmp", pid_file)
srv.serve_forever()
"#;

/// The seed's smoke test: start a server, kill it, `check` exits 2 and starts it (detached),
/// the port is back, the next `check` exits 0.
#[test]
fn smoke_killed_http_server_is_started_again() {
    let port = free_port();
    let t = Test::new().config(&format!(
        r#"
state_file: {{dir}}/state.json
timeout_seconds: 3
default_policy: {{fail_threshold: 1, restart_cooldown_seconds: 0}}
targets:
  - name: web
    checks:
      - pid_file: {{dir}}/web.pid
      - tcp_port: 127.0.0.1:{port}
      - command: ["/usr/bin/curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:{port}/"]
    action:
      exec:
        start: ["{PYTHON}", "{{dir}}/server.py", "{port}", "{{dir}}/web.pid"]
        detach: true
        log_file: {{dir}}/server.log
"#
    ));
    t.write("server.py", HTTP_SERVER);

    // the server runs: healthy
    let mut cmd = Command::new(PYTHON);
    cmd.arg(t.path("server.py"))
        .arg(port.to_string())
        .arg(t.path("web.pid"))
        .stdin(Stdio::null());
    let mut first = ChildGuard::spawn(cmd);
    wait_for_port(port, EVENT_LIMIT);
    wait_for_file(&t.path("web.pid"), EVENT_LIMIT);
    t.run(&["check"]).assert_code(0);

    // kill -9: the next pass notices and starts it
    let old_pid = first.pid();
    first.kill_now();
    assert!(!port_open(port), "port {port} still open after kill");
    let out = t.run(&["check"]);
    // detach: the pass does not wait for the server it started
    out.assert_code(2)
        .assert_faster_than(Duration::from_secs(10));
    out.assert_line_contains(
        &["result=FAIL", "target=web", "check=\"tcp_port 127.0.0.1:"],
        "err=\"connection refused\"",
    );
    out.line(&["result=FAIL", "pid_file"]);
    out.line(&["msg=\"target failing; running action\"", "action=start"]);
    out.line(&["msg=\"action started\"", "detached=true"]);

    wait_for_port(port, EVENT_LIMIT);
    assert!(
        wait_until(EVENT_LIMIT, || {
            read_pid(&t.path("web.pid")).is_some_and(|p| p != old_pid)
        }),
        "the restarted server did not write a new pid file"
    );
    let _second = Guard::from_pid_file(&t.path("web.pid")).expect("new server pid");

    let out = t.run(&["check"]);
    out.assert_code(0)
        .line(&["msg=\"target recovered\"", "target=web"]);
    let st = t.state();
    assert_eq!(st["targets"]["web"]["status"], "healthy", "{st}");
    assert_eq!(st["targets"]["web"]["consecutive_failures"], 0, "{st}");
    assert_eq!(
        st["targets"]["web"]["restarts"].as_array().map(Vec::len),
        Some(1)
    );
}

fn redis_argv(port: u16, dir: &str) -> Vec<String> {
    [
        "/usr/bin/redis-server",
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--daemonize",
        "yes",
        "--pidfile",
        &format!("{dir}/redis.pid"),
        "--logfile",
        &format!("{dir}/redis.log"),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A real redis, `kill -9`'d: noticed through its stale pid file and its closed port, started
/// again by the exec action (which daemonizes), healthy on the next pass.
#[test]
fn real_redis_killed_with_sigkill_is_restarted() {
    let port = free_port();
    let t = Test::new();
    let dir = t.dir().display().to_string();
    let argv = redis_argv(port, &dir);
    let argv_json = serde_json::to_string(&argv).unwrap();
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
timeout_seconds: 3
default_policy: {{restart_cooldown_seconds: 0}}
targets:
  - name: redis
    checks:
      - pid_file: {{dir}}/redis.pid
        process_name: redis-server
      - tcp_port: 127.0.0.1:{port}
      - command: ["/usr/bin/redis-cli", "-p", "{port}", "ping"]
    action:
      exec:
        start: {argv_json}
        timeout_seconds: 20
"#
    ));

    let status = status_of(Command::new(&argv[0]).args(&argv[1..]));
    assert!(
        status.success(),
        "redis-server failed to start ({status}): {:?}",
        std::fs::read_to_string(t.path("redis.log"))
    );
    wait_for_file(&t.path("redis.pid"), EVENT_LIMIT);
    let first = Guard::from_pid_file(&t.path("redis.pid")).expect("redis pid");
    wait_for_port(port, EVENT_LIMIT);
    t.run(&["check"]).assert_code(0);

    let old_pid = first.id();
    drop(first); // kill -9 (and reap)
    assert!(
        !is_alive_or_zombie(old_pid),
        "redis {old_pid} survived kill -9"
    );

    let out = t.run(&["check"]);
    out.assert_code(2);
    let line = out.line(&["result=FAIL", "target=redis", "pid_file"]);
    assert!(line.contains("not running"), "{line}\n{out}");
    out.line(&["result=FAIL", "tcp_port"]);
    out.line(&["msg=\"target failing; running action\"", "action=start"]);
    out.line(&["msg=\"action done\"", "exit=0"]);

    wait_for_port(port, EVENT_LIMIT);
    assert!(
        wait_until(EVENT_LIMIT, || {
            read_pid(&t.path("redis.pid")).is_some_and(|p| p != old_pid)
        }),
        "redis did not write a new pid file"
    );
    let _second = Guard::from_pid_file(&t.path("redis.pid")).expect("new redis pid");

    t.run(&["check"])
        .assert_code(0)
        .assert_stderr_contains("msg=\"target recovered\"");
}

/// README's `stop:` for nginx (the recipe under Actions), `stop: [...]` as written there, with
/// its pid file moved to `pid_file`: the tests run the recipe users copy, not a copy of it.
fn readme_nginx_stop(pid_file: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let lines: Vec<&str> = readme
        .lines()
        .filter(|l| l.trim_start().starts_with("stop: [") && l.contains("/run/nginx.pid"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "README.md should have one nginx stop recipe: {lines:?}"
    );
    lines[0].trim().replace("/run/nginx.pid", pid_file)
}

/// A config watching a real nginx (its files in the test dir, on `port`) the README's way:
/// `pid_file` + `process_name: nginx`, an http check, README's `stop:`, then `start:`.
fn nginx_test(port: u16) -> Test {
    let t = Test::new();
    t.write(
        "nginx.conf",
        &format!(
            r#"
daemon on;
worker_processes 2;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {{dir}}/tmp-body;
    proxy_temp_path {{dir}}/tmp-proxy;
    fastcgi_temp_path {{dir}}/tmp-fastcgi;
    uwsgi_temp_path {{dir}}/tmp-uwsgi;
    scgi_temp_path {{dir}}/tmp-scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\n"; }}
    }}
}}
"#
        ),
    );
    let stop = readme_nginx_stop(&t.path("nginx.pid").display().to_string());
    t.config(&format!(
        r#"
state_file: {{dir}}/state.json
timeout_seconds: 3
targets:
  - name: nginx
    checks:
      - pid_file: {{dir}}/nginx.pid
        process_name: nginx
      - http: http://127.0.0.1:{port}/
    action:
      exec:
        {stop}
        start: ["/usr/sbin/nginx", "-p", "{{dir}}", "-e", "{{dir}}/error.log", "-c", "{{dir}}/nginx.conf"]
"#
    ))
}

/// A real nginx as Debian ships it: a master and its workers (`master_process` on, the
/// default). `kill -9` of the master leaves the workers running, still named `nginx` and still
/// holding the listening socket: a `process_name: nginx` + `tcp_port` config would call that
/// healthy, and a plain `start` would fail on "Address already in use" every pass. The recipe
/// that tells the truth (README's): `pid_file` with the name guard (the master's pid), and a
/// `stop:` that kills what is left of the old master's process group before `start:`.
#[test]
fn real_nginx_master_killed_with_sigkill_is_restarted_without_its_orphaned_workers() {
    let port = free_port();
    let t = nginx_test(port);
    let status = status_of(
        Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(t.dir())
            .arg("-e")
            .arg(t.path("error.log"))
            .arg("-c")
            .arg(t.path("nginx.conf")),
    );
    assert!(
        status.success(),
        "nginx failed ({status}): {:?}",
        std::fs::read_to_string(t.path("error.log"))
    );
    wait_for_file(&t.path("nginx.pid"), EVENT_LIMIT);
    let master = read_pid(&t.path("nginx.pid")).expect("nginx master pid");
    // the whole old group is killed at the end of the test, whatever happens
    let _old_group = Guard::group(master);
    wait_for_port(port, EVENT_LIMIT);
    let workers = || -> Vec<i32> {
        all_procs()
            .into_iter()
            .filter(|p| p.pgrp == master && p.pid != master && p.state != 'Z')
            .map(|p| p.pid)
            .collect()
    };
    assert!(
        wait_until(EVENT_LIMIT, || workers().len() == 2),
        "nginx did not start two workers: {:?}",
        workers()
    );
    t.run(&["check"]).assert_code(0);

    // kill -9 the master: the workers live on, holding the port
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(master),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill master");
    assert!(wait_until(EVENT_LIMIT, || !is_alive_or_zombie(master)
        || is_zombie(master)));
    reap(master, Duration::from_secs(5));
    assert!(
        port_open(port),
        "the orphaned workers should still hold the port"
    );
    let orphans = workers();
    assert_eq!(orphans.len(), 2, "{orphans:?}");

    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(&["result=FAIL", "target=nginx "], "stale pid file")
        .assert_line_contains(&["msg=\"action done\"", "action=start"], "stop=\"exit 0\"");
    wait_for_port(port, EVENT_LIMIT);
    assert!(
        wait_until(EVENT_LIMIT, || read_pid(&t.path("nginx.pid"))
            .is_some_and(|p| p != master)),
        "no new master"
    );
    // the new master and its workers (killing the master alone would orphan them)
    let _new = Guard::group(read_pid(&t.path("nginx.pid")).expect("new nginx master"));
    for w in orphans {
        assert!(
            wait_until(EVENT_LIMIT, || !is_alive_or_zombie(w) || is_zombie(w)),
            "orphaned worker {w} still runs"
        );
    }
    assert!(
        !std::fs::read_to_string(t.path("error.log"))
            .unwrap_or_default()
            .contains("Address already in use"),
        "start raced the old workers for the port"
    );
    t.run(&["check"]).assert_code(0);
}

// ---------------------------------------------------------------------------------------------
// Whose process it is (issue 18, M1 and M2): Debian's redis run as its own user `redis` (as its
// systemd unit does, here through setpriv), Debian's nginx with its root master and www-data
// workers, and look-alikes started by user `nobody`.
// ---------------------------------------------------------------------------------------------

/// `argv` run as user `user` (setpriv, with that user's groups).
fn as_user(user: &str, argv: &[String]) -> Vec<String> {
    let group = if user == "nobody" { "nogroup" } else { user };
    let mut v: Vec<String> = [
        "/usr/bin/setpriv",
        &format!("--reuid={user}"),
        &format!("--regid={group}"),
        "--clear-groups",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(argv.iter().cloned());
    v
}

/// A directory `redis` in the test dir owned by user redis (the test dir made traversable),
/// where redis keeps its pid file, log and data, as /run/redis and /var/lib/redis are.
fn redis_dir(t: &Test) -> String {
    std::fs::set_permissions(t.dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod test dir");
    let dir = t.path("redis");
    std::fs::create_dir(&dir).expect("mkdir redis");
    let status = status_of(Command::new("/bin/chown").arg("redis:redis").arg(&dir));
    assert!(status.success(), "chown redis {status}");
    dir.display().to_string()
}

/// Start a real redis-server as user redis; its pid (from the pid file it writes as redis).
fn start_redis_as_redis(argv: &[String], dir: &str) -> Guard {
    let argv = as_user("redis", argv);
    let status = status_of(Command::new(&argv[0]).args(&argv[1..]));
    assert!(
        status.success(),
        "redis-server failed to start ({status}): {:?}",
        std::fs::read_to_string(format!("{dir}/redis.log"))
    );
    let pid_file = std::path::Path::new(dir).join("redis.pid");
    wait_for_file(&pid_file, EVENT_LIMIT);
    Guard::from_pid_file(&pid_file).expect("redis pid")
}

/// A process of user nobody that looks like `name` (`exec -a name`) and runs `python3 -c code
/// args...`: holds what `code` makes it hold.
fn nobody_look_alike(name: &str, code: &str, args: &[&str]) -> ChildGuard {
    let mut argv = vec![
        "/bin/bash".to_string(),
        "-c".to_string(),
        format!("exec -a {name} {PYTHON} -c \"$0\" \"$@\""),
        code.to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    let argv = as_user("nobody", &argv);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ChildGuard::spawn(cmd)
}

/// Python holding `mib` MiB of resident memory, then sleeping.
fn holding(mib: u32) -> String {
    format!(
        "import time\nb = bytearray({mib} * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(120)"
    )
}

/// Resident memory of `pid` in MiB (VmRSS), 0 when gone.
fn rss_mib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// M1: a process of another user named like the target neither fails its resource limits nor
/// keeps it "healthy" once the real one is gone. The target is Debian's redis-server run as
/// user redis (found by default, no `user:`); the look-alike is user nobody's python3 under
/// `exec -a redis-server`, holding 100 MiB against `max_rss_mb: 60`.
#[test]
fn a_look_alike_of_another_user_neither_fails_nor_keeps_alive_a_redis_run_as_redis() {
    let port = free_port();
    let t = Test::new();
    let dir = redis_dir(&t);
    let argv = as_user("redis", &redis_argv(port, &dir));
    let argv_json = serde_json::to_string(&argv).unwrap();
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
timeout_seconds: 3
default_policy: {{fail_threshold: 1, restart_cooldown_seconds: 0}}
targets:
  - name: redis
    checks:
      - process_name: redis-server
        cmdline_contains: "127.0.0.1:{port}"
        max_rss_mb: 60
    action:
      exec:
        start: {argv_json}
        timeout_seconds: 20
"#
    ));
    let first = start_redis_as_redis(&redis_argv(port, &dir), &dir);
    wait_for_port(port, EVENT_LIMIT);
    let decoy = nobody_look_alike(
        "redis-server",
        &holding(100),
        &[&format!("127.0.0.1:{port}")],
    );
    assert!(
        wait_until(EVENT_LIMIT, || rss_mib(decoy.pid()) >= 90),
        "the look-alike did not grow to 100 MiB"
    );

    // the look-alike's 100 MiB is not redis's: healthy, nothing done
    let out = t.run(&["check"]);
    out.assert_code(0)
        .assert_lines(&["result=OK", "target=redis "], 1)
        .assert_lines(&["msg=\"target failing; running action\""], 0);
    let line = out.line(&["result=OK", "target=redis "]);
    assert!(line.contains(&format!("pid={}", first.id())), "{line}");

    // redis dies; the look-alike alone does not keep it "healthy": it is started again
    let old_pid = first.id();
    drop(first);
    assert!(
        !is_alive_or_zombie(old_pid),
        "redis {old_pid} survived kill -9"
    );
    let out = t.run(&["check"]);
    out.assert_code(2).assert_line_contains(
        &["result=FAIL", "target=redis "],
        &format!(
            "a look-alike of another owner (not root or a system account) not counted: pid {} (uid 65534 (nobody))",
            decoy.pid()
        ),
    );
    out.line(&["msg=\"action done\"", "action=start", "exit=0"]);
    wait_for_port(port, EVENT_LIMIT);
    let pid_file = t.path("redis/redis.pid");
    assert!(
        wait_until(EVENT_LIMIT, || read_pid(&pid_file)
            .is_some_and(|p| p != old_pid)),
        "redis did not write a new pid file"
    );
    let _second = Guard::from_pid_file(&pid_file).expect("new redis pid");
    t.run(&["check"]).assert_code(0);
}

/// Debian's nginx in its default master/worker mode: the root master and its workers are found
/// without `user:` (a default that stopped finding them would restart a healthy nginx), with
/// Debian's `user www-data;` and without a `user` directive (the workers then run as nobody,
/// like the look-alike: they count as the root master's children); user nobody's 100 MiB
/// python3 named `nginx` is not counted against `max_rss_mb`; `user: root` on a pid_file check
/// is accepted and holds.
#[test]
fn nginx_master_and_workers_are_found_by_default_and_a_look_alike_is_not() {
    for (user_line, worker_uid) in [("user www-data;", 33), ("", 65534)] {
        nginx_with_a_look_alike(user_line, worker_uid);
    }
}

fn nginx_with_a_look_alike(user_line: &str, worker_uid: u32) {
    let port = free_port();
    let t = Test::new();
    std::fs::set_permissions(t.dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod test dir");
    t.write(
        "nginx.conf",
        &format!(
            r#"
{user_line}
daemon on;
worker_processes 2;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {{dir}}/tmp-body;
    proxy_temp_path {{dir}}/tmp-proxy;
    fastcgi_temp_path {{dir}}/tmp-fastcgi;
    uwsgi_temp_path {{dir}}/tmp-uwsgi;
    scgi_temp_path {{dir}}/tmp-scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\n"; }}
    }}
}}
"#
        ),
    );
    let t = t.config(
        r#"
state_file: {dir}/state.json
timeout_seconds: 3
default_policy: {fail_threshold: 1, restart_cooldown_seconds: 0}
targets:
  - name: master
    checks:
      - pid_file: {dir}/nginx.pid
        process_name: nginx
        user: root
        max_children: 2
    action: {exec: {restart: ["/usr/bin/touch", "{dir}/master-restarted"]}}
  - name: workers
    checks:
      - process_name: nginx
        max_rss_mb: 60
    action: {exec: {restart: ["/usr/bin/touch", "{dir}/workers-restarted"]}}
"#,
    );
    let status = status_of(
        Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(t.dir())
            .arg("-e")
            .arg(t.path("error.log"))
            .arg("-c")
            .arg(t.path("nginx.conf")),
    );
    assert!(
        status.success(),
        "nginx failed ({status}): {:?}",
        std::fs::read_to_string(t.path("error.log"))
    );
    wait_for_file(&t.path("nginx.pid"), EVENT_LIMIT);
    let master = read_pid(&t.path("nginx.pid")).expect("nginx master pid");
    let _group = Guard::group(master);
    wait_for_port(port, EVENT_LIMIT);
    let workers = || -> Vec<i32> {
        all_procs()
            .into_iter()
            .filter(|p| p.pgrp == master && p.pid != master && p.state != 'Z')
            .map(|p| p.pid)
            .collect()
    };
    // a fresh worker is root's until it has switched to its user: wait for that too
    let switched = |w: &i32| {
        std::fs::read_to_string(format!("/proc/{w}/status"))
            .is_ok_and(|s| s.contains(&format!("\nUid:\t{worker_uid}\t")))
    };
    assert!(
        wait_until(EVENT_LIMIT, || {
            let w = workers();
            w.len() == 2 && w.iter().all(switched)
        }),
        "nginx did not start two workers: {:?}",
        workers()
    );
    for w in workers() {
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).unwrap_or_default();
        assert!(
            status.contains(&format!("\nUid:\t{worker_uid}\t")),
            "worker {w} is not uid {worker_uid}: {status}"
        );
    }
    let decoy = nobody_look_alike("nginx", &holding(100), &[]);
    assert!(
        wait_until(EVENT_LIMIT, || rss_mib(decoy.pid()) >= 90),
        "the look-alike did not grow to 100 MiB"
    );
    let out = t.run(&["check"]);
    out.assert_code(0)
        .assert_lines(&["result=OK", "target=master "], 1)
        .assert_lines(&["msg=\"target failing; running action\""], 0);
    // the master and both workers are counted (other tests' nginx may run too), the
    // look-alike is not: its 100 MiB would have failed the check
    let line = out.line(&["result=OK", "target=workers "]);
    let matches: usize = line
        .split(" matches=")
        .nth(1)
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no matches= in {line}"));
    assert!(matches >= 3, "{line}");
    assert!(!t.exists("master-restarted") && !t.exists("workers-restarted"));
}

/// Fork children until one gets `pid` (set the kernel's last pid just below it first, as CRIU
/// does), and run `argv` in it: the PID reuse an attacker gets by forking until the pid comes
/// round, without waiting for a wrap-around. Other tests fork too: tried up to 200 times.
fn spawn_at_pid(pid: i32, argv: &[String]) -> ChildGuard {
    for _ in 0..200 {
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            panic!("cannot write /proc/sys/kernel/ns_last_pid (root in the initial pid namespace needed)");
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let g = ChildGuard::spawn(cmd);
        if g.pid() == pid {
            return g;
        }
        drop(g);
    }
    panic!("could not get pid {pid} back in 200 forks");
}

/// M2: redis (as user redis) dies; user nobody gets its pid and names the process
/// `redis-server`: the stale pid file with `process_name` no longer reads healthy, and redis
/// is started again. Then redis's user writes `1` in its own pid file: pid 1 is not redis
/// either. And `user: redis` on a pid_file check is accepted.
#[test]
fn a_reused_pid_or_pid_1_in_redis_pid_file_is_not_redis() {
    let port = free_port();
    let t = Test::new();
    let dir = redis_dir(&t);
    let argv = as_user("redis", &redis_argv(port, &dir));
    let argv_json = serde_json::to_string(&argv).unwrap();
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
timeout_seconds: 3
default_policy: {{fail_threshold: 1, restart_cooldown_seconds: 0}}
targets:
  - name: named
    checks:
      - pid_file: {dir}/redis.pid
        process_name: redis-server
    action:
      exec:
        start: {argv_json}
        timeout_seconds: 20
  - name: bare
    checks:
      - pid_file: {dir}/redis.pid
    action: {{exec: {{restart: ["/usr/bin/touch", "{{dir}}/bare-restarted"]}}}}
  - name: as-redis
    checks:
      - pid_file: {dir}/redis.pid
        user: redis
    action: {{exec: {{restart: ["/usr/bin/touch", "{{dir}}/as-redis-restarted"]}}}}
"#
    ));
    let first = start_redis_as_redis(&redis_argv(port, &dir), &dir);
    wait_for_port(port, EVENT_LIMIT);
    t.run(&["check"])
        .assert_code(0)
        .assert_lines(&["result=OK"], 3);

    // redis dies; nobody forks until it holds redis's pid, named redis-server
    let old_pid = first.id();
    drop(first);
    assert!(
        !is_alive_or_zombie(old_pid),
        "redis {old_pid} survived kill -9"
    );
    let reused = spawn_at_pid(
        old_pid,
        &as_user(
            "nobody",
            &[
                "/bin/bash".to_string(),
                "-c".to_string(),
                "exec -a redis-server /bin/sleep 120".to_string(),
            ],
        ),
    );
    assert!(
        wait_until(EVENT_LIMIT, || std::fs::read(format!(
            "/proc/{old_pid}/cmdline"
        ))
        .is_ok_and(|c| c.starts_with(b"redis-server\0"))),
        "the reused pid did not become a look-alike"
    );
    let out = t.run(&["check"]);
    out.assert_code(2);
    for target in ["named", "bare", "as-redis"] {
        out.assert_line_contains(
            &["result=FAIL", &format!("target={target} ")],
            &format!("pid {old_pid} from {dir}/redis.pid (\\\"redis-server\\\") runs as uid 65534 (nobody), not"),
        );
    }
    out.line(&[
        "msg=\"action done\"",
        "target=named",
        "action=start",
        "exit=0",
    ]);
    wait_for_port(port, EVENT_LIMIT);
    let pid_file = std::path::Path::new(&dir).join("redis.pid");
    assert!(
        wait_until(EVENT_LIMIT, || read_pid(&pid_file)
            .is_some_and(|p| p != old_pid)),
        "redis did not write a new pid file"
    );
    drop(reused);
    let second = Guard::from_pid_file(&pid_file).expect("new redis pid");
    t.run(&["check"]).assert_code(0);

    // redis dies again, and its user (who can write the pid file) puts 1 in it
    let pid2 = second.id();
    drop(second);
    assert!(!is_alive_or_zombie(pid2), "redis {pid2} survived kill -9");
    let echo = as_user(
        "redis",
        &[
            "/bin/sh".to_string(),
            "-c".to_string(),
            format!("echo 1 > {dir}/redis.pid"),
        ],
    );
    assert!(status_of(Command::new(&echo[0]).args(&echo[1..])).success());
    assert_eq!(read_pid(&pid_file), Some(1));
    let _ = std::fs::remove_file(t.path("bare-restarted"));
    let out = t.run(&["check"]);
    out.assert_code(2).assert_line_contains(
        &["result=FAIL", "target=bare "],
        &format!("{dir}/redis.pid names pid 1, the init process: not the service"),
    );
    out.line(&["msg=\"action done\"", "target=bare", "exit=0"]);
    assert!(t.exists("bare-restarted"));
    wait_for_port(port, EVENT_LIMIT);
    assert!(
        wait_until(EVENT_LIMIT, || read_pid(&pid_file).is_some_and(|p| p > 1)),
        "redis did not write a new pid file"
    );
    let _third = Guard::from_pid_file(&pid_file).expect("new redis pid");
}

/// README's nginx recipe when the pid file names no process group (an empty pid file, as a
/// crash while nginx writes it leaves, then none at all): its `stop:` says there is nothing
/// to stop and leaves `start:` to run. It used to hand `pkill -g ""` and `pgrep -g ""` an
/// empty group, whose usage text filled the action log.
#[test]
fn readme_nginx_recipe_with_an_empty_pid_file_stops_nothing_and_starts_nginx() {
    let port = free_port();
    let t = nginx_test(port);
    for pid_file in ["empty", "missing"] {
        if pid_file == "empty" {
            t.write("nginx.pid", "");
        } else {
            let _ = std::fs::remove_file(t.path("nginx.pid"));
            // the first round's start two hours ago: past any cooldown, grace or hourly cap
            t.age_state(7200);
        }
        let out = t.run(&["check"]);
        out.assert_code(2);
        // the stop's output ends up on the action's line (and in the action log)
        let line = out.line(&["msg=\"action done\"", "action=start"]);
        let said = format!(
            "stop=\"exit 0: no master pid in {}: nothing to stop\"",
            t.path("nginx.pid").display()
        );
        assert!(
            line.contains(&said),
            "{pid_file} pid file: the stop did not say that it stopped nothing: {line}\n{out}"
        );
        let log = std::fs::read_to_string(t.path("nginx.action.log")).unwrap_or_default();
        for noise in ["Usage", "No such file"] {
            assert!(
                !line.contains(noise) && !log.contains(noise),
                "{pid_file} pid file: the stop command's errors are in the output: {line}\naction log:\n{log}"
            );
        }
        wait_for_port(port, EVENT_LIMIT);
        assert!(
            wait_until(EVENT_LIMIT, || read_pid(&t.path("nginx.pid")).is_some()),
            "{pid_file} pid file: nginx did not write its pid file"
        );
        let master = read_pid(&t.path("nginx.pid")).expect("nginx master pid");
        let group = Guard::group(master);
        t.run(&["check"]).assert_code(0);
        // stopped for the next round: its group killed, the port free again
        drop(group);
        assert!(
            wait_until(EVENT_LIMIT, || !port_open(port)),
            "nginx still listens"
        );
    }
}
