//! Run an argv the way a watchdog must: no shell, stdin from /dev/null, its own process group,
//! stdout/stderr drained into capped tail buffers (a chatty command neither blocks nor bloats
//! memory), a hard timeout (SIGTERM, then SIGKILL to the whole group, grandchildren included),
//! and always reaped.
//!
//! Two things are deliberate:
//! - We stop reading output as soon as the command itself has exited. A start command such as
//!   `sh -c "server &"` leaves a daemon holding the inherited stdout/stderr; waiting for EOF
//!   would hang the pass for as long as the daemon lives.
//! - With [`Cleanup::KillAll`] (checks) and [`Cleanup::KillGroup`], whatever the command left
//!   in its process group is killed and reaped when it exits. Actions use
//!   [`Cleanup::LeaveGroup`]: their daemons stay.
//!
//! The watchdog makes itself a child subreaper (see [`become_subreaper`]), so orphans of its
//! commands are re-parented to it and reaped here instead of lingering as zombies on systems
//! whose PID 1 does not reap (containers).
//!
//! Nothing a command starts outlives it, unless it is an action's daemon:
//! - Process group: killed when a check (or systemctl, or a notification command) exits, and
//!   at any command's timeout, with every descendant, even those that left the group.
//! - Escapees: a process that left the group with setsid and whose parent died is no
//!   descendant any more: it is re-parented to us. Each command's environment carries a
//!   marker ([`COMMAND_ID_VAR`]), inherited by everything it starts, so such an adopted orphan
//!   says whose it is. When a check exits, and when any command times out, the adopted
//!   orphans that are its ([`Claim`] has the rule) are killed with all their descendants,
//!   round after round: an orphan's children come to us only once it is dead.
//! - The watchdog's own death: every command we wait for dies with the watchdog
//!   (PR_SET_PDEATHSIG, see [`die_with_us`]); the process groups of checks, systemctl and
//!   notification commands are killed by the [`guardian`], a small process that outlives the
//!   watchdog by a moment. An action's group is not: it may hold a daemon left on purpose.
//!   Detached starts ([`detach`]) get neither: they must live on.

use crate::redact::Redactor;
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod guardian;
mod runas;

pub use runas::{lookup_group, lookup_user, Account, RunAs};

/// Bytes of output kept per stream (the tail).
pub const OUTPUT_CAP: usize = 8 * 1024;
/// Between SIGTERM and SIGKILL after a timeout.
pub const KILL_GRACE: Duration = Duration::from_millis(1000);

/// What to do with what the command leaves behind once it has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Kill and reap everything it started: its process group, and the orphans re-parented
    /// to us that are its (see [`Claim::Check`]), even those that left the group with setsid,
    /// with all their descendants (check commands: nothing may outlive them). Only for
    /// commands that run while no action runs, as checks do.
    KillAll,
    /// Kill and reap anything left in its process group (systemctl).
    KillGroup,
    /// Leave it (exec actions: a start command may leave its daemon behind on purpose).
    LeaveGroup,
}

/// The environment variable that marks everything a command starts: `<watchdog pid>.<n>`,
/// unique per command run. A process keeps its initial environment through fork, exec and
/// setsid, so an orphan adopted by the watchdog tells whose it is (see [`Claim`]).
pub const COMMAND_ID_VAR: &str = "NEON_WATCHDOG_COMMAND_ID";

/// How long a sweep of adopted orphans may take (killing, then reaping, round after round).
const SWEEP_LIMIT: Duration = Duration::from_secs(1);

/// A direct child of ours that some thread is still waiting for.
#[derive(Debug, Clone, Copy)]
struct Live {
    pid: i32,
    /// A check command ([`Cleanup::KillAll`]): its start time (clock ticks after boot). An
    /// unmarked orphan adopted since then may be its; other sweeps leave such orphans to it.
    sweeps_from: Option<u64>,
    /// Its process group must die with the watchdog: the guardian watches it (a new
    /// guardian is told of every such group still running).
    watched: bool,
    /// The number of its [`COMMAND_ID_VAR`] (`<watchdog pid>.<n>`); 0: none.
    command: u64,
}

/// The children some thread is waiting for, and the guardian. Locked while spawning and while
/// listing adopted orphans, so a sweep never mistakes another thread's fresh child for an
/// orphan.
struct Registry {
    live: Vec<Live>,
    guardian: Option<guardian::Guardian>,
    /// Guardians let go early ([`let_guardian_go`]), to reap at exit.
    let_go: Vec<i32>,
}

static REGISTRY: std::sync::Mutex<Registry> = std::sync::Mutex::new(Registry {
    live: Vec::new(),
    guardian: None,
    let_go: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Spawn and register the child (see [`Registry`]). Every child process of the watchdog is
/// started here; [`unregister`] it once it is reaped.
pub(crate) fn spawn_registered(cmd: &mut Command) -> std::io::Result<Child> {
    spawn_tracked(cmd, None, 0).map(|(child, _)| child)
}

/// [`spawn_registered`] for [`run`]: with `KillAll` or `KillGroup` the guardian also watches
/// the command's process group (the child leads it), so that it dies with the watchdog
/// ([`unwatch`] it once cleaned up). Returns the child and its start time (clock ticks after
/// boot; `u64::MAX` if unknown).
fn spawn_tracked(
    cmd: &mut Command,
    cleanup: Option<Cleanup>,
    command: u64,
) -> std::io::Result<(Child, u64)> {
    let watched = matches!(cleanup, Some(Cleanup::KillAll | Cleanup::KillGroup));
    // Sweeps list the main thread's children only (procs::adopted_children): a child a
    // worker thread starts is never among them, so workers spawn outside the lock, side by
    // side, and register after. The main thread's own spawns hold the lock across the spawn.
    let on_main = nix::unistd::gettid() == nix::unistd::getpid();
    // descriptors inherited from our parent reach no command (see `cloexec_from_3`); once,
    // before the first spawn: the watchdog opens nothing without close-on-exec
    static STRAYS: std::sync::Once = std::sync::Once::new();
    STRAYS.call_once(cloexec_from_3);
    if watched && registry().guardian.is_none() {
        start_guardian();
    }
    // the start time, taken before: what it starts starts at or after this
    let started = crate::procs::ticks_since_boot();
    let mut held = on_main.then(registry);
    let child = cmd.spawn()?;
    let pid = child.id() as i32;
    let mut reg = held.take().unwrap_or_else(registry);
    reg.reap_let_go(false);
    reg.live.push(Live {
        pid,
        sweeps_from: (cleanup == Some(Cleanup::KillAll)).then_some(started),
        watched,
        command,
    });
    if watched {
        reg.tell_guardian(guardian::Op::Watch, pid);
    }
    Ok((child, started))
}

/// Get ready to run commands: fork the guardian now (it is forked on first need otherwise),
/// while the caller is the only thread: a fork copies less, and no lock is held elsewhere.
pub fn prepare() {
    if registry().guardian.is_none() {
        start_guardian();
    }
}

/// Whether the guardian runs (forked on first need).
fn guardian_running() -> bool {
    if registry().guardian.is_none() {
        start_guardian();
    }
    registry().guardian.is_some()
}

/// Fork the guardian if none runs (no guardian, as when it cannot be forked: the commands
/// still run; only SIGKILL of the watchdog would leave their groups running).
fn start_guardian() {
    let mut reg = registry();
    if reg.guardian.is_none() {
        // one let go is on its way out (it read EOF): reaped first, so that no <defunct> one
        // stays beside the new one while a long notifier runs
        reg.reap_let_go(true);
        reg.fork_guardian();
    }
}

impl Registry {
    /// Let the guardian go (see [`let_guardian_go`]); it is reaped by [`Registry::reap_let_go`].
    fn let_guardian_go(&mut self) {
        if let Some(g) = self.guardian.take() {
            let pid = g.let_go();
            self.let_go.push(pid);
        }
    }

    /// Reap the guardians let go: those that have exited, or with `wait` each of them once
    /// it exits (bounded, see [`guardian::reap`]). No `<defunct>` one stays during a long
    /// action.
    fn reap_let_go(&mut self, wait: bool) {
        if self.let_go.is_empty() {
            return;
        }
        let gone: Vec<i32> = self
            .let_go
            .iter()
            .copied()
            .filter(|&pid| {
                if wait {
                    guardian::reap(pid);
                    return true;
                }
                !matches!(
                    waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
                    Ok(WaitStatus::StillAlive)
                )
            })
            .collect();
        self.let_go.retain(|pid| !gone.contains(pid));
        self.live.retain(|l| !gone.contains(&l.pid));
    }

    /// Fork a guardian (none runs) and tell it of every group still watched: those of
    /// commands started under one that is gone or was replaced. No guardian (cannot fork
    /// one): the commands still run; only SIGKILL of the watchdog would leave their groups
    /// running.
    fn fork_guardian(&mut self) {
        let Some(g) = guardian::Guardian::start() else {
            return;
        };
        for l in self.live.iter().filter(|l| l.watched) {
            // a fresh pipe holds 8,192 records: as many groups as run side by side
            if g.tell(guardian::Op::Watch, l.pid) != guardian::Told::Yes {
                break;
            }
        }
        self.live.push(Live {
            pid: g.pid(),
            sweeps_from: None,
            watched: false,
            command: 0,
        });
        self.guardian = Some(g);
        static AT_EXIT: std::sync::Once = std::sync::Once::new();
        // SAFETY: registers a plain function; nothing to uphold
        AT_EXIT.call_once(|| unsafe {
            nix::libc::atexit(release_guardian);
        });
    }

    /// Tell the guardian, never waiting for it (the caller holds the registry: a wait here
    /// would stop every thread of the pass). Called after `live` says what is watched.
    fn tell_guardian(&mut self, op: guardian::Op, pgid: i32) {
        let Some(g) = &self.guardian else { return };
        match g.tell(op, pgid) {
            guardian::Told::Yes => {}
            guardian::Told::Gone => {
                // it is gone (killed?): forget it, reap it if we can; the next command
                // starts a new one, told of the groups still watched
                let pid = g.pid();
                self.guardian = None;
                self.live.retain(|l| l.pid != pid);
                let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            }
            guardian::Told::Full => {
                // it stopped reading (SIGSTOP, a cgroup freezer): a new one takes over, told
                // of every group watched now (this record's change included), and the stuck
                // one goes (reaped once it has, see `reap_let_go`)
                if let Some(stuck) = self.guardian.take() {
                    self.let_go.push(stuck.kill());
                }
                self.fork_guardian();
            }
        }
    }
}

/// At the watchdog's exit (libc `atexit`): let the guardian go and reap it, so that it does
/// not linger as a zombie under PID 1. Skipped if another thread holds the registry: the
/// guardian then leaves on its own when we are gone.
extern "C" fn release_guardian() {
    let mut reg = match REGISTRY.try_lock() {
        Ok(reg) => reg,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    reg.let_guardian_go();
    reg.reap_let_go(true);
}

/// No command of ours runs now and none may for a while (a one-shot pass whose checks are
/// done): let the guardian go, so that it exits while the pass goes on (logs, saves the
/// state); it is reaped at exit. A command started later forks a new one.
pub fn let_guardian_go() {
    registry().let_guardian_go();
}

pub(crate) fn unregister(pid: i32) {
    let mut reg = registry();
    if let Some(i) = reg.live.iter().position(|l| l.pid == pid) {
        reg.live.swap_remove(i);
    }
}

/// The command's group no longer needs killing when the watchdog dies.
fn unwatch(pgid: i32) {
    let mut reg = registry();
    if let Some(l) = reg.live.iter_mut().find(|l| l.pid == pgid) {
        l.watched = false;
    }
    reg.tell_guardian(guardian::Op::Unwatch, pgid);
}

/// Which adopted orphans (children re-parented to us, the subreaper, that no thread waits
/// for and that started at or after the command did) are the command's, to kill with their
/// descendants.
///
/// First, the marker: an orphan whose environment has [`COMMAND_ID_VAR`] is the command's if
/// the value is the command's id, and never if it is another's (another command of ours
/// started it: a daemon an action left on purpose, a helper a concurrent check still uses).
/// But a marker is only an environment variable: a command run as another user (`user:`) can
/// set any value in what it starts. So an orphan that runs as the command's user (see
/// [`Trust`]) and bears another command's marker is exempt only if that command still runs
/// (its own sweep takes it); any other marker on it counts for nothing. Only orphans without
/// a marker that counts (their environment was scrubbed, as `env -i` or sudo do, or cannot be
/// read, or the marker is forged) fall to the second rule, which depends on the command:
#[derive(Debug, Clone, Copy)]
enum Claim<'a> {
    /// A check command that is done: an unmarked orphan is its if it started while the check
    /// ran, unless a check still running started before the orphan did (that one sweeps it
    /// when it is done: the last check to finish takes what no other can). No action runs
    /// while checks run (the pass runs all checks, then the actions).
    Check { id: &'a str },
    /// A command that timed out (an action, with daemons it may have left on purpose, or any
    /// other): an unmarked orphan is its only if it was in the command's tree when the command
    /// timed out, or its session or process group is one of those processes (`setsid sh -c
    /// '(daemon &)'`: the daemon's session is the setsid'ed shell). `tree` holds (pid, start
    /// time) of the command and its descendants at the timeout.
    Timeout { id: &'a str, tree: &'a [(i32, u64)] },
}

/// Which markers count on an orphan (see [`Claim`]).
#[derive(Debug, Default)]
struct Trust<'a> {
    /// It runs as the (non-root) user the command ran as: it could have forged its marker.
    suspect: bool,
    /// The numbers of the commands still running (their [`COMMAND_ID_VAR`]s).
    running: &'a [u64],
}

impl Trust<'_> {
    /// Whether the marker `m` (not the command's own) exempts the orphan.
    fn exempts(&self, m: &[u8]) -> bool {
        if !self.suspect {
            return true;
        }
        let me = std::process::id().to_string();
        let Some(n) = m
            .strip_prefix(me.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"."))
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return false;
        };
        n != 0 && self.running.contains(&n)
    }
}

/// Whether process `pid` runs as `uid`: its real, effective, saved or filesystem uid (a
/// set-user-ID program keeps the real one; `/proc/PID`'s owner is root's for a process that
/// made itself non-dumpable, so it is not used).
fn runs_as(pid: i32, uid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|ids| ids.split_whitespace().any(|x| x.parse() == Ok(uid)))
}

impl Claim<'_> {
    /// `others_from`: the earliest start of a check command still running (`u64::MAX` if
    /// none). `trust`: which markers count.
    fn owns(&self, pid: i32, s: &crate::procs::Stat, others_from: u64, trust: &Trust) -> bool {
        if s.is_zombie() {
            // dead already, and no thread waits for it: reaping it harms no one
            return true;
        }
        let id = match self {
            Claim::Check { id } | Claim::Timeout { id, .. } => id,
        };
        // a process in uninterruptible sleep may hold its memory lock, which reading its
        // environment takes: judge it without the marker
        let marker = if s.state == 'D' {
            None
        } else {
            crate::procs::env_var(pid, COMMAND_ID_VAR)
        };
        // a marker forged by the command's user counts for nothing
        let marker = marker.filter(|m| m == id.as_bytes() || trust.exempts(m));
        match (marker, self) {
            (Some(m), _) => m == id.as_bytes(),
            (None, Claim::Check { .. }) => s.starttime < others_from,
            (None, Claim::Timeout { tree, .. }) => tree.iter().any(|&(p, started)| {
                (p == pid && started == s.starttime)
                    || ((p == s.session || p == s.pgrp) && started <= s.starttime)
            }),
        }
    }
}

/// SIGKILL the adopted orphans that started at or after `since` (clock ticks after boot)
/// and that `claim` says are the command's, with all their descendants, and reap them. An
/// orphan's children come to us only once it is dead, so this goes round again until a round
/// finds nothing to take, or [`SWEEP_LIMIT`] has passed. Never touches a child some thread
/// waits for (see [`Registry`]).
/// `run_as`: the uid the command ran as (`user:`), when not root: its orphans' markers may be
/// forged (see [`Claim`]).
fn kill_adopted(since: u64, claim: Claim, run_as: Option<u32>) {
    if since == u64::MAX {
        return;
    }
    let me = std::process::id() as i32;
    let until = Instant::now() + SWEEP_LIMIT;
    loop {
        // listed under the lock: a child not registered then is no fresh spawn of another
        // thread, and its pid stays ours (unreaped) after the lock is released
        let (candidates, others_from, running) = {
            let reg = registry();
            let running: Vec<u64> = reg
                .live
                .iter()
                .map(|l| l.command)
                .filter(|&n| n != 0)
                .collect();
            let others_from = reg
                .live
                .iter()
                .filter_map(|l| l.sweeps_from)
                .min()
                .unwrap_or(u64::MAX);
            let candidates: Vec<i32> = crate::procs::adopted_children()
                .into_iter()
                .filter(|pid| !reg.live.iter().any(|l| l.pid == *pid))
                .collect();
            (candidates, others_from, running)
        };
        let doomed: Vec<i32> = candidates
            .into_iter()
            .filter(|pid| {
                crate::procs::stat(*pid).is_some_and(|s| {
                    let trust = Trust {
                        suspect: run_as.is_some_and(|u| runs_as(*pid, u)),
                        running: &running,
                    };
                    s.ppid == me
                        && s.starttime >= since
                        && claim.owns(*pid, &s, others_from, &trust)
                })
            })
            .collect();
        if doomed.is_empty() {
            return;
        }
        // the trees first, while the links are there; a child forked after this scan comes
        // to us when its parent dies, and the next round takes it
        let tree = crate::procs::descendants_of(&doomed);
        signal_pids(&doomed, Signal::SIGKILL);
        signal_pids(&tree, Signal::SIGKILL);
        for pid in &doomed {
            // ECHILD: another sweep reaped it
            while let Ok(WaitStatus::StillAlive) =
                waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG))
            {
                if Instant::now() >= until {
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if Instant::now() >= until {
            return;
        }
    }
}

/// A fresh id for [`COMMAND_ID_VAR`]: its number, and the value.
fn command_id() -> (u64, String) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (n, format!("{}.{n}", std::process::id()))
}

/// Mark every descriptor from 3 up close-on-exec, so that no command inherits one the
/// watchdog got from its parent (a shell's stray descriptor, not close-on-exec): a command run
/// as another user must not reach a file through it. What a command needs is dup'ed onto 0, 1
/// and 2 by the spawn; every descriptor the watchdog opens itself is close-on-exec already
/// (the guardian's pipe, the output file, the lock), and one that is stays open here.
/// `close_range(CLOSE_RANGE_CLOEXEC)` (Linux 5.11), else each descriptor below the limit.
/// Async-signal-safe (system calls only): also called between fork and exec.
pub(crate) fn cloexec_from_3() {
    use nix::libc;
    // SAFETY: system calls on descriptors only: nothing is closed, no memory touched but the
    // rlimit struct on the stack
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        ) == 0
        {
            return;
        }
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(1 << 16) as libc::c_int
        } else {
            1024
        };
        for fd in 3..top {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// The command dies (SIGKILL) when the watchdog does, killed or not (Linux
/// PR_SET_PDEATHSIG). Only for commands we wait for: a detached start must live on.
///
/// The kernel sends it when the *thread* that forked the child exits, not the process. That
/// is the same here: [`run`] forks, waits and reaps in one call on one thread (checks and
/// actions run on the worker threads of `parallel::map`, each waiting for its own command),
/// so the thread outlives the command, except a command SIGKILLed already and stuck in the
/// kernel, which the signal cannot hurt. The setting is cleared by the kernel when the command
/// execs a set-user-ID or file-capability program that changes its credentials (not when
/// root runs a set-user-ID root program); the guardian still kills its group.
fn die_with_us(cmd: &mut Command) {
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: runs between fork and exec, so only async-signal-safe calls: prctl, getppid,
    // _exit. No allocation, no locks.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
            // the watchdog died before prctl took effect: we are an orphan already
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

pub struct Spec<'a> {
    pub argv: &'a [String],
    pub timeout: Duration,
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a Path>,
    pub cleanup: Cleanup,
    /// Send stdout and stderr to this file (truncated first) instead of pipes; its tail is read
    /// back once the command exits. For actions: a daemon the command leaves behind keeps
    /// writing to a file, where a pipe whose reader is gone would kill it with SIGPIPE.
    pub output: Option<&'a Path>,
    /// Written to the command's stdin, which is then closed (otherwise stdin is /dev/null).
    /// At most a pipe's buffer (64 KiB) is written: the watchdog never blocks on a reader.
    pub stdin: Option<&'a [u8]>,
    /// Run it as this user and/or group (`user:`/`group:`, see [`RunAs`]); None: as the
    /// watchdog.
    pub run_as: Option<&'a RunAs>,
}

/// No extra environment.
static NO_ENV: BTreeMap<String, String> = BTreeMap::new();

impl<'a> Spec<'a> {
    /// `argv` with `timeout`, and the defaults: no extra environment, the watchdog's working
    /// directory, whatever it leaves in its process group killed ([`Cleanup::KillGroup`]),
    /// output to pipes, stdin from /dev/null.
    pub fn new(argv: &'a [String], timeout: Duration) -> Spec<'a> {
        Spec {
            argv,
            timeout,
            env: &NO_ENV,
            cwd: None,
            cleanup: Cleanup::KillGroup,
            output: None,
            stdin: None,
            run_as: None,
        }
    }

    pub fn run_as(self, run_as: Option<&'a RunAs>) -> Self {
        Spec { run_as, ..self }
    }

    pub fn env(self, env: &'a BTreeMap<String, String>) -> Self {
        Spec { env, ..self }
    }

    pub fn cwd(self, cwd: Option<&'a Path>) -> Self {
        Spec { cwd, ..self }
    }

    pub fn cleanup(self, cleanup: Cleanup) -> Self {
        Spec { cleanup, ..self }
    }

    pub fn output(self, path: &'a Path) -> Self {
        Spec {
            output: Some(path),
            ..self
        }
    }

    pub fn stdin(self, data: &'a [u8]) -> Self {
        Spec {
            stdin: Some(data),
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    /// Did not finish within the timeout; its group was killed.
    TimedOut,
}

#[derive(Debug)]
pub struct Output {
    pub status: Status,
    /// The last [`OUTPUT_CAP`] bytes of each stream, raw (secrets and all: read them through
    /// [`Output::tail`]).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The stream was longer: its tail begins where earlier bytes were cut off, maybe inside
    /// a line, or a secret.
    pub stdout_cut: bool,
    pub stderr_cut: bool,
    pub duration: Duration,
}

impl Status {
    pub fn success(self) -> bool {
        self == Status::Exited(0)
    }

    /// The exit code, when the command exited.
    pub fn code(self) -> Option<i32> {
        match self {
            Status::Exited(c) => Some(c),
            _ => None,
        }
    }

    /// How the command ended, in the words every log line, FAIL reason and notification uses:
    /// "exit 3: <tail>" (or "exit 3" without output), "killed by signal 9", "timed out after
    /// 3s". `tail` is the command's last output, already masked and trimmed (see
    /// [`Output::tail`]); pass "" where the output is shown on its own.
    pub fn describe(self, timeout: Duration, tail: &str) -> String {
        match self {
            Status::Exited(c) if tail.is_empty() => format!("exit {c}"),
            Status::Exited(c) => format!("exit {c}: {tail}"),
            Status::Signaled(sig) => format!("killed by signal {sig}"),
            Status::TimedOut => format!("timed out after {}", crate::util::secs(timeout)),
        }
    }
}

impl Output {
    /// The last meaningful output, for a FAIL reason or a log line: stderr if any, else stdout;
    /// see [`tail_text`].
    pub fn tail(&self, max: usize, redactor: &Redactor) -> String {
        if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            tail_text(&self.stderr, self.stderr_cut, max, redactor)
        } else {
            tail_text(&self.stdout, self.stdout_cut, max, redactor)
        }
    }
}

/// `bytes` (a stream's tail; `cut`: it begins where earlier bytes were cut off) for one line
/// of text: secrets masked first (a secret the cut went through included, see
/// [`Redactor::redact_cut`]), then the partial first line dropped, whitespace collapsed, and
/// cut to the last `max` characters. Masking after cutting would leave part of a secret.
pub fn tail_text(bytes: &[u8], cut: bool, max: usize, redactor: &Redactor) -> String {
    let text = drop_partial_line(redactor.redact_cut(bytes, cut), cut);
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    let count = joined.chars().count();
    if count <= max {
        joined
    } else {
        let skip = count - max;
        format!("...{}", joined.chars().skip(skip + 3).collect::<String>())
    }
}

/// A buffer that keeps only the last `OUTPUT_CAP` bytes written to it.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > 2 * OUTPUT_CAP {
            let cut = self.buf.len() - OUTPUT_CAP;
            self.buf.drain(..cut);
            self.cut = true;
        }
    }

    /// The last `OUTPUT_CAP` bytes, and whether earlier ones were cut off.
    fn finish(mut self) -> (Vec<u8>, bool) {
        if self.buf.len() > OUTPUT_CAP {
            let cut = self.buf.len() - OUTPUT_CAP;
            self.buf.drain(..cut);
            self.cut = true;
        }
        (self.buf, self.cut)
    }
}

/// Text cut at its front may begin inside a line: drop that partial first line, unless it is
/// the only one. (Call it on masked text: what it drops may end a secret whose start is gone.)
pub fn drop_partial_line(mut text: String, cut: bool) -> String {
    if cut {
        if let Some(nl) = text.find('\n') {
            if nl + 1 < text.len() {
                text.drain(..=nl);
            }
        }
    }
    text
}

/// The last `OUTPUT_CAP` bytes of `f` (empty if unreadable), and whether earlier ones exist.
fn file_tail(f: &std::fs::File) -> (Vec<u8>, bool) {
    use std::os::unix::fs::FileExt;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(OUTPUT_CAP as u64);
    let mut buf = vec![0u8; OUTPUT_CAP];
    let mut got = 0;
    // a writer left behind may still append: read what is there, at most the cap
    while got < buf.len() {
        match f.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    buf.truncate(got);
    (buf, start > 0)
}

/// Open (or create, mode 0600) the file an action's output goes to, for reading and appending,
/// refusing what we must not write through as root (see `files::open_append`): a symlink,
/// anything but a regular file, a file with another hard link, a file another user owns
/// (they could read it whatever its mode). It is made 0600: it holds a command's raw output.
pub fn open_output_file(path: &Path) -> std::io::Result<std::fs::File> {
    crate::files::open_append(path, 0o600, crate::files::Append::Ours)
        .map_err(std::io::Error::other)
}

/// Re-parent orphans of our commands to us (Linux PR_SET_CHILD_SUBREAPER), so we can reap them.
/// Put SIGCHLD back to its default. The watchdog waits for its children; a parent that starts
/// it with SIGCHLD ignored (a disposition that survives exec) would have the kernel reap each
/// command as it exits, every wait would find nothing, and every command would be reported
/// as timed out.
pub fn default_sigchld() {
    use nix::sys::signal::{signal, SigHandler};
    // SAFETY: installs the default disposition, no handler code
    let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
}

pub fn become_subreaper() {
    // Failure only means orphans go to PID 1 as usual.
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// The command for `argv`, stdin from /dev/null, with `env` and `cwd`; as `run_as` when given
/// (its switch is the first `pre_exec` hook: register any other after this). Err: it cannot
/// run as that user (see [`RunAs::needs_switch`]).
fn command(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&Path>,
    run_as: Option<&RunAs>,
) -> Result<(Command, Option<runas::Switch>), SpawnError> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null());
    let switch = match run_as {
        // with `user:` a clean environment and the user's HOME, USER, LOGNAME and SHELL
        // first (see `runas::apply`): the config's env wins (as systemd's Environment= over
        // User=); as root, the watchdog's environment is inherited
        Some(r) => Some(runas::apply(&mut cmd, r, cwd).map_err(|e| SpawnError {
            message: format!("cannot run {} {}: {e}", argv[0], r.words()),
            local: false,
        })?),
        None => {
            if let Some(dir) = cwd {
                cmd.current_dir(dir);
            }
            None
        }
    };
    cmd.envs(env);
    Ok((cmd, switch))
}

/// The error of a spawn that failed: in the words of the switch to another user when there
/// was one (which step failed).
fn spawn_failed(
    argv: &[String],
    cwd: Option<&Path>,
    switch: Option<&runas::Switch>,
    e: &std::io::Error,
) -> SpawnError {
    let mut err = spawn_error(&argv[0], e);
    if let Some(s) = switch {
        err.message = s.explain(&argv[0], cwd, e);
    }
    err
}

/// A command that could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnError {
    /// "cannot run /x: no such file or directory"
    pub message: String,
    /// The watchdog itself ran out of processes, memory or file descriptors: this says
    /// nothing about the target being checked.
    pub local: bool,
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub fn spawn_error(program: &str, e: &std::io::Error) -> SpawnError {
    use nix::libc::{EAGAIN, EMFILE, ENFILE, ENOMEM};
    SpawnError {
        message: format!("cannot run {program}: {}", crate::util::os_error(e)),
        local: matches!(e.raw_os_error(), Some(EAGAIN | ENOMEM | EMFILE | ENFILE)),
    }
}

/// Run to completion (or timeout). `Err` only when the program could not be started.
pub fn run(spec: &Spec) -> Result<Output, SpawnError> {
    if spec.argv.is_empty() {
        return Err(SpawnError {
            message: "empty argv".into(),
            local: false,
        });
    }
    let (mut cmd, switch) = command(spec.argv, spec.env, spec.cwd, spec.run_as)?;
    cmd.process_group(0);
    let (number, id) = command_id();
    // a command as another (non-root) user may forge markers in what it leaves
    let suspect_uid = spec.run_as.and_then(RunAs::uid).filter(|&u| u != 0);
    cmd.env(COMMAND_ID_VAR, &id);
    // A command whose group the guardian watches dies with the watchdog through it; the
    // others (an action we wait for, or any command when no guardian could be forked) get
    // PR_SET_PDEATHSIG. That hook runs between fork and exec, so it forces a real fork of
    // the whole watchdog (page tables, TLB shootdowns on every core): without it std spawns
    // with posix_spawn (vfork), about twice as fast for a check command.
    let watched = matches!(spec.cleanup, Cleanup::KillAll | Cleanup::KillGroup);
    if !(watched && guardian_running()) {
        die_with_us(&mut cmd);
    }
    if spec.stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut output_file = None;
    match spec.output {
        None => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Some(path) => {
            // O_APPEND, then emptied: a daemon left by an earlier run that still writes here
            // (same flag) appends at the new end instead of leaving a hole.
            let open = || {
                let f = open_output_file(path)?;
                f.set_len(0)?;
                Ok::<_, std::io::Error>((f.try_clone()?, f.try_clone()?, f))
            };
            match open() {
                Ok((out, err, f)) => {
                    cmd.stdout(out).stderr(err);
                    output_file = Some(f);
                }
                // the output is lost, the action still runs (its caller says so)
                Err(_) => {
                    cmd.stdout(Stdio::null()).stderr(Stdio::null());
                }
            }
        }
    }
    let start = Instant::now();
    let (mut child, started_at) = spawn_tracked(&mut cmd, Some(spec.cleanup), number)
        .map_err(|e| spawn_failed(spec.argv, spec.cwd, switch.as_ref(), &e))?;
    let pgid = child.id() as i32;
    if let (Some(data), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        use std::io::Write;
        // non-blocking: a command that never reads cannot hold the pass (a short write
        // is its loss); EPIPE from one that exited at once is no error of ours
        set_nonblocking(stdin.as_raw_fd(), true);
        let _ = stdin.write_all(data);
    }
    // The timeout is the command's: it counts from when the command runs, not from before a
    // spawn that may have waited (a fork under load), and a command found exited is never
    // "timed out", however late the watchdog looks (it may itself have been stopped or frozen
    // for longer than the timeout: SIGSTOP, `systemctl freeze`).
    let deadline = Instant::now() + spec.timeout;

    let mut pipes = Pipes::new(&mut child);
    let mut status = None;
    while status.is_none() {
        status = child.try_wait().ok().flatten();
        if status.is_some() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let remaining = deadline - now;
        if pipes.all_closed() {
            status = wait_child(&mut child, remaining);
            break;
        }
        pipes.pump(remaining.min(Duration::from_millis(50)));
    }
    let status = match status {
        Some(st) => {
            // The command is done. Take what is already buffered, and do not wait for EOF:
            // a daemon it left behind may hold the pipes open.
            pipes.pump(Duration::ZERO);
            if let Some(sig) = st.signal() {
                Status::Signaled(sig)
            } else {
                Status::Exited(st.code().unwrap_or(-1))
            }
        }
        None => {
            let tree = terminate(&mut child, pgid, &mut pipes);
            // what escaped the group and the tree before the timeout: a grandchild that left
            // with setsid and double-forked is re-parented to us, no descendant any more
            kill_adopted(
                started_at,
                Claim::Timeout {
                    id: &id,
                    tree: &tree,
                },
                suspect_uid,
            );
            Status::TimedOut
        }
    };
    match spec.cleanup {
        Cleanup::KillAll => {
            kill_and_reap(pgid, &[]);
            unwatch(pgid);
            unregister(pgid);
            kill_adopted(started_at, Claim::Check { id: &id }, suspect_uid);
        }
        Cleanup::KillGroup => {
            kill_and_reap(pgid, &[]);
            unwatch(pgid);
            unregister(pgid);
        }
        Cleanup::LeaveGroup => unregister(pgid),
    }
    let ((mut stdout, mut stdout_cut), (stderr, stderr_cut)) = pipes.finish();
    if let Some(f) = &output_file {
        (stdout, stdout_cut) = file_tail(f);
    }
    Ok(Output {
        status,
        stdout,
        stderr,
        stdout_cut,
        stderr_cut,
        duration: start.elapsed(),
    })
}

/// Timeout: SIGTERM to the group and to every descendant (even one that left the group with
/// setsid), up to KILL_GRACE for them to go, then SIGKILL; reap all of them. Returns the
/// command's tree when it timed out: (pid, start time) of the command and its descendants.
fn terminate(child: &mut Child, pgid: i32, pipes: &mut Pipes) -> Vec<(i32, u64)> {
    let descendants = crate::procs::descendants(pgid);
    let tree = std::iter::once(pgid)
        .chain(descendants.iter().copied())
        .filter_map(|pid| crate::procs::stat(pid).map(|s| (pid, s.starttime)))
        .collect();
    signal_group(pgid, Signal::SIGTERM);
    signal_pids(&descendants, Signal::SIGTERM);
    let until = Instant::now() + KILL_GRACE;
    let mut exited = false;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            exited = true;
            break;
        }
        let step = (until - Instant::now()).min(Duration::from_millis(20));
        if pipes.all_closed() {
            if wait_child(child, step).is_some() {
                exited = true;
                break;
            }
        } else {
            // keep draining so a child blocked on a full pipe can act on SIGTERM
            pipes.pump(step);
        }
    }
    signal_pids(&descendants, Signal::SIGKILL);
    if !exited {
        signal_group(pgid, Signal::SIGKILL);
        // bounded: a process stuck in the kernel (D state) cannot die yet; the subreaper
        // reaps it later
        let _ = wait_child(child, Duration::from_secs(5));
    }
    kill_and_reap(pgid, &descendants);
    tree
}

/// Wait up to `timeout` for `child` to exit, and reap it. It polls the child's pidfd (Linux
/// 5.3), which becomes readable when the child exits: no SIGCHLD handler, so one child's exit
/// wakes only the thread waiting for it. (The wait-timeout crate, used before, installed a
/// handler for the whole process and a shared self-pipe: every child's exit woke every thread
/// waiting for a command, a socket pair was made per wait, and each spawn reset the handler in
/// the child: a pass of 300 commands spent about a tenth of its time there.) Without pidfds,
/// it looks every 5 ms.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    let until = Instant::now() + timeout;
    if !guardian::wait_for_exit(child.id() as i32, until) {
        while Instant::now() < until {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(5)));
        }
    }
    child.try_wait().ok().flatten()
}

fn signal_pids(pids: &[i32], sig: Signal) {
    for pid in pids.iter().filter(|p| **p > 1) {
        let _ = nix::sys::signal::kill(Pid::from_raw(*pid), sig);
    }
}

/// Returns false when the group no longer exists.
fn signal_group(pgid: i32, sig: Signal) -> bool {
    if pgid <= 1 {
        return false;
    }
    !matches!(killpg(Pid::from_raw(pgid), sig), Err(Errno::ESRCH))
}

/// SIGKILL whatever is left in the group (and `extra` pids), then reap those that became our
/// children (we are their subreaper). Bounded: gives up after a second.
fn kill_and_reap(pgid: i32, extra: &[i32]) {
    let group_alive = signal_group(pgid, Signal::SIGKILL);
    if !group_alive && extra.is_empty() {
        return;
    }
    let me = std::process::id() as i32;
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        let mut procs: Vec<(i32, i32)> = crate::procs::group_members(pgid);
        for pid in extra {
            if let Some(st) = crate::procs::stat(*pid) {
                if !procs.iter().any(|(q, _)| q == pid) {
                    procs.push((*pid, st.ppid));
                }
            }
        }
        let ours = |pid: i32| procs.iter().any(|(q, _)| *q == pid);
        let mut waiting = false;
        for (pid, ppid) in &procs {
            if *ppid == me {
                if let Ok(WaitStatus::StillAlive) =
                    waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG))
                {
                    waiting = true;
                }
            } else if ours(*ppid) {
                // its parent is dying too: it comes to us next
                waiting = true;
            }
        }
        if !waiting || Instant::now() >= until {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The two output pipes, non-blocking, drained into tails.
struct Pipes {
    out: Option<std::process::ChildStdout>,
    err: Option<std::process::ChildStderr>,
    out_buf: Tail,
    err_buf: Tail,
}

impl Pipes {
    fn new(child: &mut Child) -> Pipes {
        let out = child.stdout.take();
        let err = child.stderr.take();
        if let Some(o) = &out {
            set_nonblocking(o.as_raw_fd(), true);
        }
        if let Some(e) = &err {
            set_nonblocking(e.as_raw_fd(), true);
        }
        Pipes {
            out,
            err,
            out_buf: Tail::default(),
            err_buf: Tail::default(),
        }
    }

    fn all_closed(&self) -> bool {
        self.out.is_none() && self.err.is_none()
    }

    /// Wait up to `wait` for output, then read everything available.
    fn pump(&mut self, wait: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        if self.all_closed() {
            return;
        }
        if !wait.is_zero() {
            let mut fds = Vec::with_capacity(2);
            if let Some(o) = &self.out {
                fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            }
            if let Some(e) = &self.err {
                fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            }
            let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
            let _ = poll(&mut fds, PollTimeout::from(ms.max(1)));
        }
        if drain(&mut self.out, &mut self.out_buf) {
            self.out = None;
        }
        if drain(&mut self.err, &mut self.err_buf) {
            self.err = None;
        }
    }

    fn finish(self) -> ((Vec<u8>, bool), (Vec<u8>, bool)) {
        (self.out_buf.finish(), self.err_buf.finish())
    }
}

/// Read until EAGAIN; true at EOF or on error (the pipe is done).
fn drain<R: Read>(pipe: &mut Option<R>, buf: &mut Tail) -> bool {
    let Some(r) = pipe else { return false };
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => buf.push(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Set or clear O_NONBLOCK on `fd`.
fn set_nonblocking(fd: i32, on: bool) {
    // one ioctl where fcntl takes two (get the flags, set them)
    let arg: nix::libc::c_int = on.into();
    // SAFETY: FIONBIO reads one int from the pointer given
    unsafe { nix::libc::ioctl(fd, nix::libc::FIONBIO, &arg) };
}

/// Start a program that stays in the foreground, fully detached: a new session, stdin from
/// /dev/null, output to `log_file` (appended) or /dev/null, double-forked so it survives us.
/// (As we are a subreaper it is re-parented to us while we live; `run` reaps such orphans
/// between passes.) Returns once it has exec'd: with a note when `log_file` could not be used
/// (the program then runs with its output to /dev/null: a link or FIFO someone planted at the
/// log's path must not keep the service down).
pub fn detach(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&Path>,
    log_file: Option<&Path>,
    run_as: Option<&RunAs>,
) -> Result<Option<String>, String> {
    if argv.is_empty() {
        return Err("empty argv".into());
    }
    let (mut cmd, switch) = command(argv, env, cwd, run_as).map_err(|e| e.message)?;
    // the user's log file: never through a symlink (the file's or a directory's on the way) or
    // a second hard link, never a FIFO waited on; write-only (the program, maybe another
    // user, reads nothing through it); an existing file keeps its mode, a new one is 0600
    let log = log_file.map(|path| {
        crate::files::open_append(path, 0o600, crate::files::Append::Theirs).and_then(|f| {
            let f2 = f
                .try_clone()
                .map_err(|e| format!("{}: {}", path.display(), crate::util::os_error(&e)))?;
            Ok((f, f2))
        })
    });
    let note = match log {
        Some(Ok((f, f2))) => {
            cmd.stdout(f).stderr(f2);
            None
        }
        Some(Err(e)) => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            Some(format!(
                "log_file not used: {e}; the program's output goes to /dev/null (remove what is there, or move log_file to a directory only root can write)"
            ))
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            None
        }
    };
    // SAFETY: between fork and exec only async-signal-safe calls: fork, _exit, setsid.
    unsafe {
        cmd.pre_exec(|| match nix::unistd::fork() {
            Ok(nix::unistd::ForkResult::Parent { .. }) => nix::libc::_exit(0),
            Ok(nix::unistd::ForkResult::Child) => {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            }
            Err(e) => Err(std::io::Error::from(e)),
        });
    }
    let mut intermediate = spawn_registered(&mut cmd)
        .map_err(|e| spawn_failed(argv, cwd, switch.as_ref(), &e).message)?;
    // the intermediate exits at once; reap it
    let _ = intermediate.wait();
    unregister(intermediate.id() as i32);
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn spec<'a>(a: &'a [String], env: &'a BTreeMap<String, String>, secs: u64) -> Spec<'a> {
        Spec::new(a, Duration::from_secs(secs))
            .env(env)
            .cleanup(Cleanup::KillAll)
    }

    #[test]
    fn outcomes_are_worded_one_way() {
        let t = Duration::from_secs(3);
        assert_eq!(
            Status::Exited(3).describe(t, "last words"),
            "exit 3: last words"
        );
        assert_eq!(Status::Exited(1).describe(t, ""), "exit 1");
        assert_eq!(Status::Signaled(9).describe(t, "x"), "killed by signal 9");
        assert_eq!(Status::TimedOut.describe(t, "x"), "timed out after 3s");
        assert!(Status::Exited(0).success() && !Status::Exited(1).success());
    }

    #[test]
    fn captures_exit_code_and_output() {
        let env = BTreeMap::new();
        let a = argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
        let o = run(&spec(&a, &env, 5)).unwrap();
        assert_eq!(o.status, Status::Exited(3));
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
        assert_eq!(o.tail(100, &Redactor::default()), "err");
    }

    #[test]
    fn chatty_output_is_capped_not_blocking() {
        let env = BTreeMap::new();
        // ~10 MB on stdout: far beyond a pipe buffer and the cap
        let a = argv(&["sh", "-c", "head -c 10000000 /dev/zero; echo done >&2"]);
        let o = run(&spec(&a, &env, 20)).unwrap();
        assert_eq!(o.status, Status::Exited(0));
        assert_eq!(o.stdout.len(), OUTPUT_CAP);
        assert_eq!(o.stderr, b"done\n");
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let env = BTreeMap::new();
        let a = argv(&["/nonexistent/prog"]);
        let e = run(&spec(&a, &env, 5)).unwrap_err();
        assert_eq!(
            e.message,
            "cannot run /nonexistent/prog: no such file or directory"
        );
        assert!(!e.local);
        let e = spawn_error(
            "/bin/x",
            &std::io::Error::from_raw_os_error(nix::libc::EAGAIN),
        );
        assert!(
            e.local,
            "running out of processes is the watchdog's problem, not the target's"
        );
    }

    #[test]
    fn env_and_cwd_are_applied() {
        let mut env = BTreeMap::new();
        env.insert("NW_TEST_VAR".to_string(), "hello".to_string());
        let a = argv(&["sh", "-c", "echo $NW_TEST_VAR; pwd"]);
        let mut s = spec(&a, &env, 5);
        s.cwd = Some(Path::new("/tmp"));
        let o = run(&s).unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n/tmp\n");
    }

    #[test]
    fn tail_text_keeps_the_end() {
        let r = Redactor::default();
        assert_eq!(tail_text(b"a\n b  c\n", false, 10, &r), "a b c");
        assert_eq!(tail_text(b"0123456789abcdef", false, 8, &r), "...bcdef");
    }

    #[test]
    fn tail_masks_before_cutting_and_squeezing() {
        let r = Redactor::new([
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ".to_string(),
            "two  spaces".to_string(),
        ]);
        let out = b"failed for ABCDEFGHIJKLMNOPQRSTUVWXYZ now";
        assert_eq!(tail_text(out, false, 12, &r), "...r *** now");
        assert_eq!(tail_text(b"pw two  spaces\n", false, 50, &r), "pw ***");
    }

    #[test]
    fn capped_output_drops_the_partial_first_line() {
        let mut t = Tail::default();
        let mut data = b"SECRET-HEAD-PART".to_vec();
        data.extend(std::iter::repeat_n(b'x', OUTPUT_CAP));
        data.extend(b"\nlast line\n");
        t.push(&data);
        let (buf, cut) = t.finish();
        assert!(cut && buf.len() == OUTPUT_CAP);
        assert_eq!(tail_text(&buf, cut, 100, &Redactor::default()), "last line");
    }

    #[test]
    fn a_tail_cut_inside_a_secret_shows_none_of_it() {
        let r = Redactor::new(["Kx7Qz9Wv2Lp5Rn8Tj3Yb".to_string()]);
        let mut t = Tail::default();
        // one line: the cut keeps 12 of the secret's 20 characters
        let mut data = b"Kx7Qz9Wv2Lp5Rn8Tj3Yb".to_vec();
        data.extend(std::iter::repeat_n(b' ', OUTPUT_CAP - 16));
        data.extend(b"end\n");
        t.push(&data);
        let (buf, cut) = t.finish();
        assert!(buf.starts_with(b"2Lp5Rn8Tj3Yb "));
        assert_eq!(tail_text(&buf, cut, 100, &r), "*** end");
    }

    #[test]
    fn output_file_keeps_daemon_alive_and_gives_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("action.log");
        let marker = dir.path().join("survived");
        let env = BTreeMap::new();
        // the daemon writes to the inherited stdout after the command has exited
        let script = format!(
            "(sleep 0.3; echo alive; echo ok > {}) & echo started",
            marker.display()
        );
        let a = argv(&["sh", "-c", &script]);
        let mut s = spec(&a, &env, 5);
        s.cleanup = Cleanup::LeaveGroup;
        s.output = Some(&out);
        let o = run(&s).unwrap();
        assert_eq!(o.status, Status::Exited(0));
        assert_eq!(o.stdout, b"started\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !marker.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            marker.exists(),
            "the daemon died (SIGPIPE?) instead of writing its marker"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "started\nalive\n");
    }

    #[test]
    fn output_file_must_be_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::new();
        let a = argv(&["sh", "-c", "echo hi"]);
        // a FIFO where the output file should be: no hang, the command still runs
        let fifo = dir.path().join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let mut s = spec(&a, &env, 5);
        s.cleanup = Cleanup::LeaveGroup;
        s.output = Some(&fifo);
        assert_eq!(run(&s).unwrap().status, Status::Exited(0));
        // a symlink is not followed: its target is neither emptied nor chmod'ed
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        s.output = Some(&link);
        assert_eq!(run(&s).unwrap().status, Status::Exited(0));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    }

    #[test]
    fn timeout_kills_descendants_that_left_the_group() {
        let env = BTreeMap::new();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // the grandchild escapes the process group with setsid
        let script = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 300' & sleep 300",
            pidfile.display()
        );
        let a = argv(&["sh", "-c", &script]);
        let o = run(&spec(&a, &env, 1)).unwrap();
        assert_eq!(o.status, Status::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL is sent; give the kernel a moment to finish the exit
        let dead = || crate::procs::Proc::by_pid(pid).is_none_or(|p| p.is_zombie());
        let until = Instant::now() + Duration::from_secs(2);
        while !dead() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            dead(),
            "escaped grandchild {pid} still alive: {:?}",
            crate::procs::Proc::by_pid(pid)
        );
    }

    /// The rule for unmarked orphans (no environment to read: the pid does not exist).
    #[test]
    fn unmarked_orphans_are_claimed_by_start_time_or_by_link() {
        let nobody = i32::MAX;
        let orphan = |session, pgrp, starttime| crate::procs::Stat {
            ppid: 1,
            pgrp,
            session,
            state: 'S',
            starttime,
        };
        // a check: any orphan started since it did, unless a check still running started
        // before the orphan (that one takes it)
        let check = Claim::Check { id: "1.1" };
        assert!(check.owns(nobody, &orphan(7, 7, 50), u64::MAX, &Trust::default()));
        assert!(check.owns(nobody, &orphan(7, 7, 50), 51, &Trust::default()));
        assert!(!check.owns(nobody, &orphan(7, 7, 50), 50, &Trust::default()));
        // a timeout: only what is tied to the command's tree at the timeout
        let tree = [(100, 10), (101, 12)];
        let timeout = Claim::Timeout {
            id: "1.2",
            tree: &tree,
        };
        assert!(
            timeout.owns(nobody, &orphan(101, 300, 20), u64::MAX, &Trust::default()),
            "its session"
        );
        assert!(
            timeout.owns(nobody, &orphan(300, 100, 20), u64::MAX, &Trust::default()),
            "its group"
        );
        assert!(
            !timeout.owns(nobody, &orphan(300, 300, 20), u64::MAX, &Trust::default()),
            "unrelated"
        );
        assert!(
            !timeout.owns(nobody, &orphan(101, 101, 11), u64::MAX, &Trust::default()),
            "older than the session leader it names: another process had that pid"
        );
        // a zombie is reaped whoever it was
        let zombie = crate::procs::Stat {
            state: 'Z',
            ..orphan(300, 300, 20)
        };
        assert!(timeout.owns(nobody, &zombie, u64::MAX, &Trust::default()));
    }

    /// The marker decides for a live orphan that has it: the command's own, never another's.
    #[test]
    fn marked_orphans_are_claimed_by_their_marker() {
        let env = BTreeMap::from([(COMMAND_ID_VAR.to_string(), "42.7".to_string())]);
        let mut child = spawn_registered(
            Command::new("sleep")
                .arg("30")
                .env_clear()
                .envs(&env)
                .stdin(Stdio::null()),
        )
        .unwrap();
        let pid = child.id() as i32;
        // until it has exec'd, the child has the test binary's environment
        let until = Instant::now() + Duration::from_secs(5);
        while crate::procs::env_var(pid, COMMAND_ID_VAR).is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = crate::procs::stat(pid).unwrap();
        let tree = [(s.session, 0)];
        assert!(Claim::Check { id: "42.7" }.owns(pid, &s, 0, &Trust::default()));
        assert!(!Claim::Check { id: "42.8" }.owns(pid, &s, u64::MAX, &Trust::default()));
        assert!(!Claim::Timeout {
            id: "42.8",
            tree: &tree
        }
        .owns(pid, &s, u64::MAX, &Trust::default()));
        child.kill().unwrap();
        child.wait().unwrap();
        unregister(pid);
    }

    /// An orphan that runs as the command's user may have forged its marker: another command's
    /// marker exempts it only while that command runs (it sweeps it itself).
    #[test]
    fn a_marker_the_commands_user_could_forge_counts_only_for_a_running_command() {
        let me = std::process::id();
        let t = Trust {
            suspect: true,
            running: &[5],
        };
        assert!(t.exempts(format!("{me}.5").as_bytes()));
        assert!(!t.exempts(b"1.1"));
        assert!(!t.exempts(format!("{me}.6").as_bytes()));
        assert!(!t.exempts(format!("{me}.5x").as_bytes()));
        assert!(
            Trust::default().exempts(b"1.1"),
            "a root orphan's marker counts"
        );
    }

    /// Waiting for a command installs no SIGCHLD handler: with one (the wait-timeout crate's),
    /// every child's exit woke every thread waiting for a command, and each spawn reset it.
    #[test]
    fn running_a_command_installs_no_sigchld_handler() {
        let argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "exit 3".to_string(),
        ];
        let out = run(&Spec::new(&argv, Duration::from_secs(30))).expect("run sh");
        assert_eq!(out.status, Status::Exited(3));
        // the output pipes close before the exit is seen: the wait for the exit itself
        let argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "exec >/dev/null 2>&1; sleep 0.2; exit 4".to_string(),
        ];
        let out = run(&Spec::new(&argv, Duration::from_secs(30))).expect("run sh");
        assert_eq!(out.status, Status::Exited(4));
        let status = std::fs::read_to_string("/proc/self/status").expect("read status");
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .expect("SigCgt line");
        let sigchld = 1u64 << (nix::libc::SIGCHLD - 1);
        assert_eq!(caught & sigchld, 0, "SIGCHLD is caught: SigCgt {caught:x}");
    }

    /// A guardian that stopped reading (a real SIGSTOP) is replaced once its pipe is full, the
    /// writer never waiting; the new one is told of the group still running, and kills it when
    /// the watchdog's end closes (as when it dies). Run alone in a child process of this test
    /// binary: it lets the process's guardian go, which would kill the commands of tests
    /// running beside it.
    #[test]
    fn a_stopped_guardian_is_replaced_by_one_that_watches_what_still_runs() {
        const NAME: &str =
            "spawn::tests::a_stopped_guardian_is_replaced_by_one_that_watches_what_still_runs";
        if std::env::var_os("NW_TEST_ALONE").is_none() {
            let out = Command::new(std::env::current_exe().expect("the test binary"))
                .args([NAME, "--exact", "--test-threads=1", "--nocapture"])
                .env("NW_TEST_ALONE", "1")
                .stdin(Stdio::null())
                .output()
                .expect("run the test alone");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains(" 1 passed"),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        let guardian = || registry().guardian.as_ref().map(|g| g.pid());
        prepare();
        let old = guardian().expect("a guardian");
        let runner = std::thread::spawn(|| {
            let argv = ["sleep".to_string(), "300".to_string()];
            run(&Spec::new(&argv, Duration::from_secs(120))).map(|o| o.status)
        });
        let until = Instant::now() + Duration::from_secs(30);
        while !registry().live.iter().any(|l| l.watched) {
            assert!(
                Instant::now() < until,
                "the command's group is never watched"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::kill(Pid::from_raw(old), Signal::SIGSTOP).expect("SIGSTOP");
        // more records than its pipe holds (8,192), for groups above any pid; none waits
        let t0 = Instant::now();
        for i in 0..6_000 {
            let fake = (1 << 22) + 1 + i;
            let mut reg = registry();
            reg.tell_guardian(guardian::Op::Watch, fake);
            reg.tell_guardian(guardian::Op::Unwatch, fake);
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
        let new = guardian().expect("a new guardian");
        assert_ne!(new, old, "the stopped guardian was kept");
        // the stopped one is killed and reaped
        registry().reap_let_go(true);
        assert!(
            crate::procs::stat(old).is_none(),
            "{:?}",
            crate::procs::stat(old)
        );
        // the new one knows the group: it kills it when the watchdog's end closes
        let_guardian_go();
        let status = runner.join().expect("the runner");
        assert_eq!(status, Ok(Status::Signaled(nix::libc::SIGKILL)));
    }

    /// When the watchdog's end of the pipe closes (here: on purpose; in life: the watchdog
    /// died), the guardian kills the groups still watched, not those unwatched, and exits.
    #[test]
    fn guardian_kills_the_groups_still_watched_when_the_watchdog_is_gone() {
        guardian_kills_what_is_watched_at_the_end(0);
    }

    /// The same after 40,000 other records (5 times what its pipe holds: here the writer
    /// tries again while it is full), read in batches across many reads: none lost, none out
    /// of order.
    #[test]
    fn guardian_reads_every_record_in_order_when_they_come_faster_than_it_reads() {
        guardian_kills_what_is_watched_at_the_end(20_000);
    }

    /// `noise` groups watched then unwatched (ids above any pid) before the real ones.
    fn guardian_kills_what_is_watched_at_the_end(noise: i32) {
        let spawn = || {
            spawn_registered(
                Command::new("sleep")
                    .arg("30")
                    .process_group(0)
                    .stdin(Stdio::null()),
            )
            .unwrap()
        };
        let (mut watched, mut unwatched) = (spawn(), spawn());
        let g = guardian::Guardian::start().expect("fork the guardian");
        // the watchdog never waits (a full pipe replaces the guardian); this test does
        let tell = |op, pgid| {
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                match g.tell(op, pgid) {
                    guardian::Told::Full if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    told => return told == guardian::Told::Yes,
                }
            }
        };
        for i in 0..noise {
            // pid_max is at most 2^22
            let fake = (1 << 22) + 1 + i;
            assert!(tell(guardian::Op::Watch, fake));
            assert!(tell(guardian::Op::Unwatch, fake));
        }
        assert!(tell(guardian::Op::Watch, watched.id() as i32));
        assert!(tell(guardian::Op::Watch, unwatched.id() as i32));
        assert!(tell(guardian::Op::Unwatch, unwatched.id() as i32));
        let guardian = g.pid();
        guardian::reap(g.let_go());
        assert!(
            crate::procs::stat(guardian).is_none(),
            "the guardian did not exit (or was not reaped)"
        );
        let st = watched.wait().unwrap();
        assert_eq!(st.signal(), Some(nix::libc::SIGKILL));
        assert_eq!(
            unwatched.try_wait().unwrap(),
            None,
            "an unwatched group was killed"
        );
        unwatched.kill().unwrap();
        unwatched.wait().unwrap();
        unregister(watched.id() as i32);
        unregister(unwatched.id() as i32);
    }
}
