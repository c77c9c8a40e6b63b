//! The test harness: a temp dir per test, a config written into it, the real binary run
//! against it, and `#[track_caller]` asserts on its exit code, stdout, stderr and files.
//!
//! Also the process plumbing every test needs: free ports, bounded waits, /proc scans and
//! guards that kill (and reap) whatever a test started, whatever the outcome of the test.
//!
//! This test process makes itself a child subreaper (Linux `PR_SET_CHILD_SUBREAPER`): servers
//! the watchdog starts detached outlive the watchdog and are re-parented to the nearest
//! subreaper. In containers PID 1 often never reaps, so without this every server a test kills
//! would stay behind as a zombie; with it, the guards below reap what they kill.

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Once, RwLock};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_neon-watchdog");

/// The bound of every wait for an event (a process started or gone, a port open, a file
/// written, a log line, the binary's exit): generous, because it only ends a test that hangs.
/// A real process may take seconds to start on a loaded machine (the suite beside builds, or
/// under CPU hogs), and a wait that gives up early fails a test that would have passed: wait
/// for the event itself with this bound, never for a guess at how long it takes.
pub const EVENT_LIMIT: Duration = Duration::from_secs(60);

/// No single run of the binary may take longer than this: a hung pass fails the test
/// (after killing the binary) instead of hanging the whole suite.
pub const RUN_LIMIT: Duration = EVENT_LIMIT;

/// The interpreter for helper scripts: the system one, not a version-manager shim.
pub const PYTHON: &str = "/usr/bin/python3";

static SUBREAPER: Once = Once::new();

/// Held (shared) while this process forks and execs, and (exclusively) while it writes a file
/// that will be executed. Without it, a child forked by another test thread between the
/// write's open and close inherits the write descriptor until its exec, and executing the
/// new file fails with ETXTBSY ("Text file busy").
static EXEC_LOCK: RwLock<()> = RwLock::new(());

/// `cmd.spawn()`, never while an executable is being written. `spawn` returns after the
/// child has exec'd, so no descriptor of ours lingers in it afterwards.
pub fn spawn_cmd(cmd: &mut Command) -> Child {
    let _g = EXEC_LOCK.read().unwrap_or_else(|e| e.into_inner());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"))
}

/// Run `cmd` to completion (spawned under the exec lock), its output discarded: a daemon it
/// leaves behind may hold inherited pipes open forever.
pub fn status_of(cmd: &mut Command) -> ExitStatus {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn_cmd(cmd)
        .wait()
        .unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"))
}

/// Write a file that will be executed: exclusive against every spawn of this process.
fn write_executable(path: &Path, contents: &[u8]) {
    let _g = EXEC_LOCK.write().unwrap_or_else(|e| e.into_inner());
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn init_process() {
    SUBREAPER.call_once(|| {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    });
}

/// A short name unique to this test run (<= 15 chars, so it is a whole `comm`).
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}x{n}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "unique name {name} is longer than a comm");
    name
}

// ---------------------------------------------------------------------------------------------
// Test: a temp dir, a config, runs of the binary
// ---------------------------------------------------------------------------------------------

pub struct Test {
    dir: tempfile::TempDir,
    config: PathBuf,
    env: BTreeMap<String, String>,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    pub fn new() -> Test {
        init_process();
        let dir = tempfile::Builder::new()
            .prefix("nw-it-")
            .tempdir()
            .expect("create temp dir");
        let config = dir.path().join("config.yml");
        Test {
            dir,
            config,
            env: BTreeMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the test's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `{dir}` -> the test's directory.
    pub fn expand(&self, text: &str) -> String {
        text.replace("{dir}", &self.dir.path().display().to_string())
    }

    /// Write `config.yml` (with `{dir}` replaced); later runs use it via `-c`.
    pub fn config(self, text: &str) -> Test {
        self.config_named("config.yml", text)
    }

    /// Write the config under another name (e.g. `config.json`) and use that one.
    pub fn config_named(mut self, name: &str, text: &str) -> Test {
        self.config = self.write(name, text);
        self
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn env(mut self, key: &str, value: &str) -> Test {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Write a file in the test dir (`{dir}` replaced); returns its path.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, self.expand(contents)).expect("write file");
        path
    }

    /// Write an executable script in the test dir (`{dir}` replaced); returns its path.
    pub fn script(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path(rel);
        write_executable(&path, self.expand(contents).as_bytes());
        path
    }

    /// Copy a program under a new (unique) name, so the processes it runs can be found by
    /// `comm` in /proc, zombies included (a zombie has no command line left).
    pub fn copy_program(&self, src: &str, name: &str) -> PathBuf {
        let dest = self.path(name);
        let bytes = std::fs::read(src).unwrap_or_else(|e| panic!("read {src}: {e}"));
        write_executable(&dest, &bytes);
        dest
    }

    fn command(&self, args: &[&str], with_config: bool) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        if with_config {
            cmd.arg("-c").arg(&self.config);
        }
        cmd.current_dir(self.dir.path())
            .env_remove("NEON_WATCHDOG_CONFIG")
            .env_remove("JOURNAL_STREAM")
            .env_remove("RUST_LOG")
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Run the binary with `args` followed by `-c <config>`.
    pub fn run(&self, args: &[&str]) -> Output {
        run_command(self.command(args, true), args)
    }

    /// Run the binary with exactly `args` (no `-c` added).
    pub fn run_bare(&self, args: &[&str]) -> Output {
        run_command(self.command(args, false), args)
    }

    /// Start the binary (with `-c <config>`) and leave it running.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut cmd = self.command(args, true);
        let child = spawn_cmd(&mut cmd);
        Running::new(child, args)
    }

    // --- files -----------------------------------------------------------------------------

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    pub fn read(&self, rel: &str) -> String {
        let path = self.path(rel);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Lines in a file; 0 when it does not exist (an action that never ran).
    pub fn count_lines(&self, rel: &str) -> usize {
        match std::fs::read_to_string(self.path(rel)) {
            Ok(s) => s.lines().count(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => panic!("cannot read {rel}: {e}"),
        }
    }

    /// The state file (`state.json` in the test dir), parsed; panics unless it is valid JSON.
    #[track_caller]
    pub fn state(&self) -> serde_json::Value {
        self.json("state.json")
    }

    /// Move every timestamp in the state file `secs` seconds into the past, as if the passes
    /// so far had run that much earlier: to the policy, `secs` seconds have gone by (grace,
    /// cooldown, backoff, reminders, the hourly window, downtime). Time-based behaviour is
    /// tested this way, never by sleeping. Panics if the file holds no timestamp to move.
    #[track_caller]
    pub fn age_state(&self, secs: u64) {
        let mut st = self.state();
        let moved = shift_times(&mut st, None, Duration::from_secs(secs));
        assert!(moved > 0, "no timestamp to move in the state file:\n{st}");
        self.write_state(&st);
    }

    /// Replace the state file (`state.json` in the test dir) with `st`.
    pub fn write_state(&self, st: &serde_json::Value) {
        let text = serde_json::to_string_pretty(st).expect("serialise state") + "\n";
        std::fs::write(self.path("state.json"), text).expect("write state.json");
    }

    #[track_caller]
    pub fn json(&self, rel: &str) -> serde_json::Value {
        let text = self.read(rel);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{rel} is not valid JSON ({e}):\n{text}"))
    }

    /// Names of the entries of the test dir.
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("read test dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    }
}

/// The state file's time fields (README "State file"; RFC 3339 UTC strings): the targets'
/// `since`, `last_check`, `last_restart`, `down_since`, `last_alert`, `restarts` and
/// `transitions[].at`, `cpu_samples[].at`, and the pending notifications' `first_failed` and
/// `event.timestamp`.
const STATE_TIME_KEYS: &[&str] = &[
    "since",
    "last_check",
    "last_restart",
    "down_since",
    "last_alert",
    "restarts",
    "at",
    "first_failed",
    "until",
    "timestamp",
];

/// Move the time strings under [`STATE_TIME_KEYS`] (`key`: the key `v` is found under) back
/// by `by`; returns how many moved.
fn shift_times(v: &mut serde_json::Value, key: Option<&str>, by: Duration) -> usize {
    use serde_json::Value;
    match v {
        Value::Object(m) => m
            .iter_mut()
            .map(|(k, v)| shift_times(v, Some(k.as_str()), by))
            .sum(),
        // the elements of `restarts` are times; those of other lists are objects with keys
        Value::Array(a) => a
            .iter_mut()
            .map(|v| shift_times(v, key.filter(|k| *k == "restarts"), by))
            .sum(),
        Value::String(s) => match key {
            Some(k) if STATE_TIME_KEYS.contains(&k) => {
                let t = humantime::parse_rfc3339(s)
                    .unwrap_or_else(|e| panic!("state file {k}: {s:?} is not RFC 3339 UTC: {e}"));
                *s = humantime::format_rfc3339_millis(t - by).to_string();
                1
            }
            _ => 0,
        },
        _ => 0,
    }
}

fn run_command(mut cmd: Command, args: &[&str]) -> Output {
    let started = Instant::now();
    let child = spawn_cmd(&mut cmd);
    let mut running = Running::new(child, args);
    match running.wait_timeout(RUN_LIMIT) {
        Some(mut out) => {
            out.elapsed = started.elapsed();
            out
        }
        None => {
            let partial = running.stderr_so_far();
            panic!(
                "neon-watchdog {args:?} did not finish within {RUN_LIMIT:?} (killed); stderr so far:\n{partial}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configs several topics share
// ---------------------------------------------------------------------------------------------

/// One target, `app`, whose check always fails (`/bin/false`) and whose restart appends a line
/// to `{dir}/runs`, so "the action ran N times" is `count_lines("runs")`. Default policy.
pub const FAILING: &str = r#"
state_file: {dir}/state.json
targets:
  - name: app
    checks:
      - command: ["/bin/false"]
    action:
      exec:
        restart: ["/bin/sh", "-c", "echo run >> {dir}/runs"]
"#;

/// [`FAILING`] with `top` added to its top-level keys and `policy` as the target's policy
/// (`""` for none: the defaults).
pub fn failing_config(top: &str, policy: &str) -> String {
    let mut yaml = FAILING.to_string();
    assert!(yaml.contains("targets:\n") && yaml.contains("    action:\n"));
    if !top.is_empty() {
        yaml = yaml.replacen("targets:\n", &format!("{top}\ntargets:\n"), 1);
    }
    if !policy.is_empty() {
        yaml = yaml.replacen(
            "    action:\n",
            &format!("    policy: {policy}\n    action:\n"),
            1,
        );
    }
    yaml
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

pub struct Output {
    pub args: Vec<String>,
    /// None when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "neon-watchdog {:?}\n--- exit: {:?} after {:?}\n--- stdout:\n{}\n--- stderr:\n{}--- end",
            self.args, self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

impl Output {
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "wrong exit code\n{self}");
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr does not contain {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_stderr_not_contains(&self, needle: &str) -> &Self {
        assert!(
            !self.stderr.contains(needle),
            "stderr contains {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout does not contain {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_faster_than(&self, limit: Duration) -> &Self {
        assert!(
            self.elapsed < limit,
            "took {:?}, expected well under {limit:?}\n{self}",
            self.elapsed
        );
        self
    }

    /// stderr lines that contain every one of `needles`.
    pub fn lines_with(&self, needles: &[&str]) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .collect()
    }

    /// The single stderr line containing all `needles` (panics on none or several).
    #[track_caller]
    pub fn line(&self, needles: &[&str]) -> &str {
        let found = self.lines_with(needles);
        assert!(
            found.len() == 1,
            "expected exactly one stderr line with {needles:?}, found {}\n{self}",
            found.len()
        );
        found[0]
    }

    /// The single stderr line with all `needles` also contains `expected`.
    #[track_caller]
    pub fn assert_line_contains(&self, needles: &[&str], expected: &str) -> &Self {
        let line = self.line(needles);
        assert!(
            line.contains(expected),
            "the line with {needles:?} does not contain {expected:?}: {line}\n{self}"
        );
        self
    }

    /// Exactly `n` stderr lines contain all of `needles`.
    #[track_caller]
    pub fn assert_lines(&self, needles: &[&str], n: usize) -> &Self {
        let found = self.lines_with(needles).len();
        assert_eq!(
            found, n,
            "expected {n} stderr lines with {needles:?}, found {found}\n{self}"
        );
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Running: a neon-watchdog (or any child) that keeps running, with its output collected
// ---------------------------------------------------------------------------------------------

pub struct Running {
    child: Option<Child>,
    args: Vec<String>,
    stdout_rx: mpsc::Receiver<Vec<u8>>,
    stderr_rx: mpsc::Receiver<Vec<u8>>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_done: bool,
    stderr_done: bool,
}

/// Forward a pipe's chunks over a channel; the channel closes at EOF.
fn pump<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

impl Running {
    fn new(mut child: Child, args: &[&str]) -> Running {
        let stdout_rx = pump(child.stdout.take().expect("piped stdout"));
        let stderr_rx = pump(child.stderr.take().expect("piped stderr"));
        Running {
            child: Some(child),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdout_rx,
            stderr_rx,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_done: false,
            stderr_done: false,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("child").id() as i32
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("signal neon-watchdog");
    }

    fn collect(&mut self) {
        loop {
            match self.stdout_rx.try_recv() {
                Ok(b) => self.stdout.extend(b),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.stdout_done = true;
                    break;
                }
            }
        }
        loop {
            match self.stderr_rx.try_recv() {
                Ok(b) => self.stderr.extend(b),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.stderr_done = true;
                    break;
                }
            }
        }
    }

    pub fn stderr_so_far(&mut self) -> String {
        self.collect();
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Wait up to `limit` for `pred(stderr so far)`.
    pub fn wait_for_stderr(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> bool {
        wait_until(limit, || pred(&self.stderr_so_far()))
    }

    /// Wait up to `limit` for the process to exit; then its complete output. None if it is
    /// still running. Panics if, after the exit, a leftover process keeps its stdout/stderr
    /// open (nothing the watchdog starts may inherit them).
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<Output> {
        let started = Instant::now();
        let deadline = started + limit;
        let status: ExitStatus = loop {
            self.collect();
            let child = self.child.as_mut().expect("child");
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.child = None;
        let eof_deadline = Instant::now() + EVENT_LIMIT;
        while !(self.stdout_done && self.stderr_done) {
            self.collect();
            if Instant::now() >= eof_deadline {
                panic!(
                    "neon-watchdog {:?} exited ({status}) but its stdout/stderr are still held open by a leftover process:\n{}",
                    self.args,
                    String::from_utf8_lossy(&self.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Some(Output {
            args: self.args.clone(),
            code: status.code(),
            stdout: String::from_utf8_lossy(&self.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr).into_owned(),
            elapsed: started.elapsed(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Process guards
// ---------------------------------------------------------------------------------------------

/// A process started by a test (directly or through the watchdog), killed with SIGKILL (its
/// whole process group with `group`) and reaped when the guard is dropped.
pub struct Guard {
    pid: i32,
    group: bool,
}

impl Guard {
    pub fn pid(pid: i32) -> Guard {
        Guard { pid, group: false }
    }

    /// Kill the process group `pgid` (and reap its leader) on drop.
    pub fn group(pgid: i32) -> Guard {
        Guard {
            pid: pgid,
            group: true,
        }
    }

    /// The process named by a pid file, if the file holds a pid.
    pub fn from_pid_file(path: &Path) -> Option<Guard> {
        read_pid(path).map(Guard::pid)
    }

    pub fn id(&self) -> i32 {
        self.pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.pid <= 1 {
            return;
        }
        if self.group {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
            reap_group(self.pid, Duration::from_secs(2));
        } else {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            reap(self.pid, Duration::from_secs(2));
        }
    }
}

/// Reap `pid` if it is (or becomes, as a re-parented orphan) our child; bounded.
pub fn reap(pid: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return,
            // not our child (yet): it may still be on its way to us
            Err(_) if !is_alive_or_zombie(pid) => return,
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reap the members of process group `pgid` (already killed) that are re-parented to us.
fn reap_group(pgid: i32, limit: Duration) {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + limit;
    loop {
        let members: Vec<ProcInfo> = all_procs().into_iter().filter(|p| p.pgrp == pgid).collect();
        if members.is_empty() || Instant::now() >= deadline {
            return;
        }
        for p in &members {
            if p.ppid == me {
                let _ = waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A std child in its own process group, killed (group) and reaped on drop.
pub struct ChildGuard {
    pub child: Child,
}

impl ChildGuard {
    /// Spawn `cmd` in a new process group.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        cmd.process_group(0);
        let child = spawn_cmd(&mut cmd);
        ChildGuard { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Kill the group now and reap the leader (kill -9 of a watched server), and the other
    /// members of the group that, orphaned, came to us.
    pub fn kill_now(&mut self) {
        let pgid = self.pid();
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        let _ = self.child.wait();
        reap_group(pgid, Duration::from_secs(2));
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill_now();
    }
}

// ---------------------------------------------------------------------------------------------
// /proc, ports, waits
// ---------------------------------------------------------------------------------------------

/// Poll `cond` every 20 ms for up to `limit` ([`EVENT_LIMIT`] for an event that must come).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

pub fn port_open(port: u16) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

#[track_caller]
pub fn wait_for_port(port: u16, limit: Duration) {
    assert!(
        wait_until(limit, || port_open(port)),
        "nothing accepts connections on 127.0.0.1:{port} after {limit:?}"
    );
}

#[track_caller]
pub fn wait_for_file(path: &Path, limit: Duration) {
    assert!(
        wait_until(limit, || std::fs::metadata(path).is_ok_and(|m| m.len() > 0)),
        "{} did not appear within {limit:?}",
        path.display()
    );
}

pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// One process as /proc shows it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub state: char,
    pub comm: String,
}

pub fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let mut rest = stat[close + 2..].split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgrp,
        state,
        comm,
    })
}

/// `/proc/PID/stat` fields after the command: (start time, utime + stime), in clock ticks.
fn stat_ticks(pid: i32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // fields 3.. of proc(5): utime is field 14, stime 15, starttime 22
    let fields: Vec<&str> = after_comm.split(' ').collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(22)?, field(14)? + field(15)?))
}

/// CPU time (user + system) `pid` has used so far, in clock ticks.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    stat_ticks(pid).map(|(_, ticks)| ticks)
}

/// `pid:starttime`: how the state file's `cpu_samples` name a process.
pub fn cpu_sample_key(pid: i32) -> Option<String> {
    stat_ticks(pid).map(|(start, _)| format!("{pid}:{start}"))
}

pub fn is_alive_or_zombie(pid: i32) -> bool {
    proc_info(pid).is_some()
}

pub fn is_zombie(pid: i32) -> bool {
    proc_info(pid).is_some_and(|p| p.state == 'Z' || p.state == 'X')
}

/// Every process on the machine (live or zombie).
pub fn all_procs() -> Vec<ProcInfo> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter_map(proc_info)
        .collect()
}

/// Every process (live or zombie) whose `comm` is `name`.
pub fn procs_named(name: &str) -> Vec<ProcInfo> {
    all_procs().into_iter().filter(|p| p.comm == name).collect()
}

/// Kill and reap every process named `name` (cleanup after a test that found leftovers).
pub fn kill_all_named(name: &str) {
    for p in procs_named(name) {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        reap(p.pid, Duration::from_millis(500));
    }
}

/// A pid that no process has right now (a child that ran and was reaped).
pub fn dead_pid() -> i32 {
    let mut c = spawn_cmd(&mut Command::new("/bin/true"));
    let pid = c.id() as i32;
    c.wait().expect("wait true");
    assert!(proc_info(pid).is_none(), "pid {pid} reused already");
    pid
}

/// A zombie: a python parent forks `program` (exec'd under its own name) and never reaps it.
/// On drop the parent is killed, which re-parents the zombie to us (subreaper), and reaped.
pub struct Zombie {
    parent: ChildGuard,
    pub pid: i32,
}

impl Zombie {
    /// Returns once /proc shows the child as a zombie.
    pub fn new(t: &Test, program: &Path) -> Zombie {
        let pid_file = t.path(&format!("{}.zombie-pid", unique_name("z")));
        let code = r#"
import os, sys, time
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1]])
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(pid))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(120)
"#;
        let mut cmd = Command::new(PYTHON);
        cmd.arg("-c")
            .arg(code)
            .arg(program)
            .arg(&pid_file)
            .stdin(Stdio::null());
        let parent = ChildGuard::spawn(cmd);
        wait_for_file(&pid_file, EVENT_LIMIT);
        let pid = read_pid(&pid_file).expect("zombie pid");
        let z = Zombie { parent, pid };
        assert!(
            wait_until(EVENT_LIMIT, || is_zombie(pid)),
            "pid {pid} did not become a zombie: {:?}",
            proc_info(pid)
        );
        z
    }
}

impl Drop for Zombie {
    fn drop(&mut self) {
        self.parent.kill_now();
        reap(self.pid, Duration::from_secs(2));
    }
}

/// A JSON object per stderr line; panics on a line that is not one.
#[track_caller]
pub fn json_lines(out: &Output) -> Vec<serde_json::Map<String, serde_json::Value>> {
    out.stderr
        .lines()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(other) => panic!("stderr line is JSON but not an object: {other}\n{out}"),
            Err(e) => panic!("stderr line is not JSON ({e}): {l:?}\n{out}"),
        })
        .collect()
}

/// For the HTTP servers of the tests: read a request up to the end of its head (5 s read
/// timeout set by the caller's socket). Returns the head as text and whatever body bytes came
/// with it; None if the peer went away first.
pub fn read_head(s: &mut impl Read) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Golden output: a whole stderr, with what changes from run to run replaced
// ---------------------------------------------------------------------------------------------

/// A field whose values change from run to run, its placeholder, and whether a value has
/// the field's shape (a value of another shape is left as it is, so a golden shows it).
type Volatile = (&'static str, &'static str, fn(&str) -> bool);

const VOLATILE: &[Volatile] = &[
    ("ts", "<ts>", is_rfc3339_utc_millis),
    ("latency_ms", "<ms>", is_number),
    ("duration_ms", "<ms>", is_number),
    ("pid", "<pid>", is_number),
    ("version", "<version>", is_this_version),
];

fn is_number(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

/// `2026-11-23T10:00:00.000Z`
fn is_rfc3339_utc_millis(v: &str) -> bool {
    v.len() == 24 && v.ends_with('Z') && humantime::parse_rfc3339(v).is_ok()
}

fn is_this_version(v: &str) -> bool {
    v == env!("CARGO_PKG_VERSION")
}

fn placeholder(key: &str, value: &str) -> Option<&'static str> {
    VOLATILE
        .iter()
        .find(|(k, _, shape)| *k == key && shape(value))
        .map(|(_, p, _)| *p)
}

/// One logfmt line with the values of [`VOLATILE`] fields replaced; the rest byte for byte.
/// A line that is not `key=value key="quoted \" value" ...` is returned as it is.
fn normalise_logfmt_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            return line.to_string();
        };
        let key = &rest[..eq];
        if key.is_empty() || key.contains([' ', '"']) {
            return line.to_string();
        }
        let after = &rest[eq + 1..];
        let len = if let Some(quoted) = after.strip_prefix('"') {
            // up to the closing quote, skipping escaped characters
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = Some(i + 2);
                        break;
                    }
                    _ => {}
                }
            }
            match end {
                Some(n) => n,
                None => return line.to_string(),
            }
        } else {
            after.find(' ').unwrap_or(after.len())
        };
        let value = &after[..len];
        out.push_str(key);
        out.push('=');
        out.push_str(placeholder(key, value).unwrap_or(value));
        rest = &after[len..];
        if let Some(r) = rest.strip_prefix(' ') {
            out.push(' ');
            rest = r;
        } else if !rest.is_empty() {
            return line.to_string();
        }
    }
    out
}

impl Test {
    /// The test dir (as given and canonical) replaced by `{dir}`.
    fn normalise_dir(&self, text: &str) -> String {
        let mut text = text.to_string();
        let dir = self.dir();
        if let Ok(canonical) = dir.canonicalize() {
            text = text.replace(&canonical.display().to_string(), "{dir}");
        }
        text.replace(&dir.display().to_string(), "{dir}")
    }

    /// The whole stderr of a run logging logfmt, one line per line, with the values of `ts`,
    /// `latency_ms`, `duration_ms`, `pid` and `version` (this package's) replaced by
    /// placeholders, and the test dir by `{dir}`: compare it with today's output, and an
    /// unexpected line (or field) fails the test.
    pub fn golden_logfmt(&self, out: &Output) -> String {
        let lines: Vec<String> = out.stderr.lines().map(normalise_logfmt_line).collect();
        self.normalise_dir(&lines.join("\n"))
    }

    /// [`Test::golden_logfmt`] for `--log-format json`: every line must be a JSON object; the
    /// same fields get the same placeholders, and each object is written back as compact
    /// JSON with its keys sorted.
    #[track_caller]
    pub fn golden_json(&self, out: &Output) -> String {
        let lines: Vec<String> = json_lines(out)
            .into_iter()
            .map(|mut m| {
                for (key, value) in m.iter_mut() {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        _ => continue,
                    };
                    if let Some(p) = placeholder(key, &text) {
                        *value = p.into();
                    }
                }
                let sorted: BTreeMap<String, serde_json::Value> = m.into_iter().collect();
                serde_json::to_string(&sorted).expect("serialise a log line")
            })
            .collect();
        self.normalise_dir(&lines.join("\n"))
    }
}

/// `actual` (a normalised stderr) equals `expected` (a golden: today's output, normalised;
/// written as a raw string starting and ending with a newline), shown line by line.
#[track_caller]
pub fn assert_golden(actual: &str, expected: &str, out: &Output) {
    let expected = expected.strip_prefix('\n').unwrap_or(expected);
    let expected = expected.strip_suffix('\n').unwrap_or(expected);
    if actual != expected {
        panic!(
            "stderr differs from the golden\n--- expected:\n{expected}\n--- actual (normalised):\n{actual}\n--- run:\n{out}"
        );
    }
}

impl Test {
    /// The binary (with `-c <config>`) under `wrapper`, a command that ends by exec'ing its
    /// arguments: `["/bin/sh", "-c", "umask 000; exec \"$0\" \"$@\""]`, `setpriv ...`.
    fn wrapped(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let inner = self.command(args, true);
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// Run the binary under `wrapper` (see `wrapped`).
    pub fn run_wrapped(&self, wrapper: &[&str], args: &[&str]) -> Output {
        run_command(self.wrapped(wrapper, args), args)
    }

    /// Start the binary under `wrapper` and leave it running.
    pub fn spawn_wrapped(&self, wrapper: &[&str], args: &[&str]) -> Running {
        let child = spawn_cmd(&mut self.wrapped(wrapper, args));
        Running::new(child, args)
    }
}

// ---------------------------------------------------------------------------------------------
// Leftovers: processes found by a unique name
// ---------------------------------------------------------------------------------------------

/// Kills whatever runs under `name` when dropped, so a failing test leaves nothing behind.
pub struct KillNamed(pub String);

impl Drop for KillNamed {
    fn drop(&mut self) {
        kill_all_named(&self.0);
    }
}

/// A copy of /bin/sleep with a unique name in the test dir, and the guard that kills (and
/// reaps) whatever runs under that name at the end of the test.
pub fn unique_sleep(t: &Test) -> (String, KillNamed) {
    let name = unique_name("nwslp");
    t.copy_program("/bin/sleep", &name);
    (name.clone(), KillNamed(name))
}

#[track_caller]
pub fn assert_no_leftovers(name: &str) {
    let left = procs_named(name);
    assert!(
        left.is_empty(),
        "processes of the check are left behind (state Z = zombie): {left:?}"
    );
}

/// Processes named `name` that are still running (zombies are dead: they do not count).
pub fn live_procs_named(name: &str) -> Vec<ProcInfo> {
    procs_named(name)
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X')
        .collect()
}

/// The direct children of `pid` (of all its threads), as /proc lists them.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    out
}

/// A check (`check`: its kind and value, YAML flow style) whose `ca_file` is a FIFO: the
/// check is unknown at once (exit 1, never blocked reading it), and test-config warns.
#[track_caller]
pub fn fifo_ca_file_is_unknown(check: &str) {
    let t = Test::new();
    let fifo = t.path("ca.pem");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let t = t.config(&format!(
        "state_file: {{dir}}/state.json\ntargets:\n  - name: tls\n    checks: [{{{check}, ca_file: \"{{dir}}/ca.pem\"}}]\n    action: none\n"
    ));
    let shown = fifo.display();
    t.run(&["check"])
        .assert_code(1)
        .assert_line_contains(
            &["result=FAIL", "target=tls "],
            &format!("inconclusive=true err=\"ca_file {shown} is a FIFO (named pipe), not a regular file\""),
        )
        .assert_faster_than(Duration::from_secs(10));
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stderr_contains(&format!(
            "config.yml: targets[0].checks[0].ca_file: {shown} is a FIFO (named pipe), not a regular file: the check cannot be carried out (unknown: nothing counted, no action) until it is a PEM file (line 4)"
        ));
}
