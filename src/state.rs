//! The policy's memory: a JSON state file, and the lock that keeps two passes apart.
//!
//! - Saved atomically: a temp file in the same directory, fsync, rename, fsync of the
//!   directory. `kill -9` at any moment leaves the old file or the new one, never a torn one.
//! - A corrupt or unreadable state never stops a pass: the bad file is moved aside
//!   (`state.json.corrupt-<time>`), a warning is logged, and the pass starts from fresh state.
//! - As root, no file planted in the state directory can turn a save or the lock into a write
//!   elsewhere, and a FIFO, device or directory at the path is never read, moved or replaced
//!   (see `files`). The directory is created 0700, the state and lock files 0600.
//! - Every string stored passes through the redactor, like every log line.

use crate::error::Error;
use crate::events::Pending;
use crate::files::{self, ReadError};
use crate::policy::{ClockReading, Step, TargetState};
use crate::procs::CpuSample;
use crate::redact::Redactor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    #[serde(default)]
    pub targets: BTreeMap<String, TargetState>,
    /// Notifications that could not be delivered yet, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_notifications: Vec<Pending>,
    /// CPU time of the processes checked with `max_cpu_percent` at the last pass, keyed
    /// `pid:starttime` (so a new process under a reused pid is never compared with the old).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_samples: BTreeMap<String, CpuSample>,
    /// Passes run, ever (a metrics counter).
    #[serde(default)]
    pub passes_total: u64,
    /// The checks' results at the last check of each target: a pass that does not check a
    /// target (its own `interval_seconds`) reports these (metrics keep their series), and
    /// `log_checks: changes` logs an OK line only when it differs from these. Files of earlier
    /// versions hold them only for targets with an interval of their own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_checks: BTreeMap<String, Vec<CheckRecord>>,
    /// The clocks when the times above were last brought onto the wall clock (see [`rebase`]):
    /// absent in files of earlier versions, and where the system has no boot id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockReading>,
}

/// One check's result at its target's last check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The `check` label of its metrics series (`name:`, else its kind; masked).
    pub name: String,
    pub ok: bool,
    pub latency_ms: u64,
    /// What its log line gave as its result (masked): a failure's reason, or what an OK found
    /// (`pid=4242`, `status=200`; empty when it reports nothing). Absent in earlier files.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            version: VERSION,
            targets: BTreeMap::new(),
            pending_notifications: Vec::new(),
            cpu_samples: BTreeMap::new(),
            passes_total: 0,
            last_checks: BTreeMap::new(),
            clock: None,
        }
    }
}

/// The result of loading: the state to use, and a warning to log if the file was bad.
pub struct Loaded {
    pub state: StateFile,
    pub warning: Option<String>,
}

/// The largest state file read: far above any real one (about 600 bytes a target).
pub const MAX_STATE_BYTES: u64 = 64 << 20;

/// Load the state file. Never fails: a missing file is fresh state; a bad one is moved aside
/// (unless `read_only`, as in `--dry-run`) and replaced by fresh state, with a warning. A path
/// that is not a regular file (a FIFO, a device, a directory, a symlink) is never read, moved
/// or replaced: fresh state, a warning, and saving will fail (so no action runs).
pub fn load(path: &Path, read_only: bool) -> Loaded {
    let fresh = |warning: Option<String>| Loaded {
        state: StateFile::default(),
        warning,
    };
    let problem = match files::read_capped(path, MAX_STATE_BYTES, false) {
        // whoever owns it could have written anything in it (say `gave_up`, to keep root's
        // watchdog from ever acting): only the watchdog's own state is trusted
        Ok(_) if files::owner(path).is_some_and(|u| u != nix::unistd::geteuid().as_raw()) => {
            format!(
                "it belongs to uid {}, not to this user: it is not trusted (keep the state directory writable by the watchdog's user only)",
                files::owner(path).unwrap_or_default()
            )
        }
        Ok(text) => match serde_json::from_slice::<StateFile>(&text) {
            Ok(s) if s.version == VERSION => {
                return Loaded {
                    state: s,
                    warning: None,
                }
            }
            Ok(s) => format!(
                "it has version {}, this neon-watchdog knows version {VERSION}",
                s.version
            ),
            Err(e) => format!("it is not valid state JSON ({e})"),
        },
        Err(ReadError::Missing) => return fresh(None),
        Err(ReadError::NotRegular(what)) => {
            return fresh(Some(format!(
                "state file {} is {what}, not a regular file: it is left alone, and the state cannot be saved there (remove it, or set state_file); going on with fresh state",
                path.display()
            )))
        }
        Err(ReadError::TooLarge(n)) => format!(
            "it is {n} bytes, more than the {MAX_STATE_BYTES} a state file may have"
        ),
        Err(ReadError::Io(e)) if read_only => {
            return fresh(Some(format!(
                "cannot read state file {}: {e}; shown as if no pass had run (nothing is changed: this command only reads it)",
                path.display()
            )))
        }
        Err(ReadError::Io(e)) => {
            return fresh(Some(format!(
                "cannot read state file {}: {e}; going on with fresh state (failure counts and restart history are lost for this pass)",
                path.display()
            )))
        }
    };
    let aside = if read_only {
        "left in place (this command only reads it)".to_string()
    } else {
        match move_aside(path) {
            Ok(p) => format!("moved aside to {}", p.display()),
            Err(e) => format!("could not be moved aside: {e}"),
        }
    };
    fresh(Some(format!(
        "state file {} is unusable: {problem}; {aside}; going on with fresh state",
        path.display()
    )))
}

/// Rename a bad state file (a regular file we read) aside. The name holds a millisecond
/// stamp and our pid, and the rename never replaces an existing entry.
fn move_aside(path: &Path) -> Result<PathBuf, String> {
    let stamp = crate::util::rfc3339(SystemTime::now()).replace(':', "");
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{stamp}-{}", std::process::id()));
    let dest = PathBuf::from(name);
    files::regular_or_missing(path)?;
    nix::fcntl::renameat2(
        None,
        path,
        None,
        &dest,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(|e| crate::util::os_error(&std::io::Error::from(e)))?;
    Ok(dest)
}

/// Write the state atomically (mode 0600), creating its directory (0700) if missing.
pub fn save(path: &Path, state: &StateFile, redactor: &Redactor) -> Result<(), String> {
    let masked = masked(state, redactor);
    let state = masked.as_ref().unwrap_or(state);
    // compact: a third smaller and faster to write and read than pretty JSON at thousands of
    // targets (`jq . state.json` shows it pretty)
    let mut json = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    json.push(b'\n');
    files::write_atomic(path, &json, 0o600, 0o700)
        .map_err(|e| format!("cannot save state file {}: {e}", path.display()))
}

/// A copy of `state` with every reason and check detail masked, or None if masking changes
/// none (then no copy is made: a copy of thousands of targets' state costs more than checking
/// their reasons).
fn masked(state: &StateFile, redactor: &Redactor) -> Option<StateFile> {
    let changes = |r: &str| redactor.redact(r) != r;
    let any = state
        .pending_notifications
        .iter()
        .any(|p| changes(&p.event.reason))
        || state.targets.values().any(|t| {
            t.last_reason.as_deref().is_some_and(changes)
                || t.transitions
                    .iter()
                    .any(|tr| tr.reason.as_deref().is_some_and(changes))
                || t.paused
                    .as_ref()
                    .and_then(|p| p.reason.as_deref())
                    .is_some_and(changes)
                || t.actions
                    .iter()
                    .any(|a| a.error.as_deref().is_some_and(changes))
        })
        || state
            .last_checks
            .values()
            .flatten()
            .any(|c| !c.detail.is_empty() && changes(&c.detail));
    if !any {
        return None;
    }
    let mut state = state.clone();
    for p in &mut state.pending_notifications {
        p.event.reason = redactor.redact(&p.event.reason);
    }
    for t in state.targets.values_mut() {
        if let Some(r) = &t.last_reason {
            t.last_reason = Some(redactor.redact(r));
        }
        for tr in &mut t.transitions {
            if let Some(r) = &tr.reason {
                tr.reason = Some(redactor.redact(r));
            }
        }
        if let Some(p) = &mut t.paused {
            p.reason = p.reason.as_deref().map(|r| redactor.redact(r));
        }
        for a in &mut t.actions {
            a.error = a.error.as_deref().map(|e| redactor.redact(e));
        }
    }
    for c in state.last_checks.values_mut().flatten() {
        c.detail = redactor.redact(&c.detail);
    }
    Some(state)
}

/// Bring every time in the state onto the wall clock of now, before a pass measures anything
/// with them: if the wall clock stepped since the state was saved (NTP corrected it, someone
/// set it), every recorded time moves with it (see `policy::clock_step`), so cooldown, backoff,
/// the hourly cap, grace and intervals count the time that really passed. `reading`: this
/// boot's clocks, read with `now`; it is kept for the next pass. Returns the step, if any.
pub fn rebase(st: &mut StateFile, now: SystemTime, reading: Option<ClockReading>) -> Option<Step> {
    let latest = st
        .targets
        .values()
        .filter_map(TargetState::latest_time)
        .max();
    let step = crate::policy::clock_step(st.clock.as_ref(), now, reading.as_ref(), latest);
    if let Some(step) = step {
        for t in st.targets.values_mut() {
            t.shift_times(step);
        }
        for p in &mut st.pending_notifications {
            p.first_failed = step.apply(p.first_failed);
            p.event.timestamp = step.apply(p.event.timestamp);
        }
        for c in st.cpu_samples.values_mut() {
            c.at = step.apply(c.at);
        }
    }
    st.clock = reading;
    step
}

/// Drop the state of targets no longer in the config.
pub fn retain_targets<'a>(state: &mut StateFile, names: impl Iterator<Item = &'a str>) {
    let keep: std::collections::HashSet<&str> = names.collect();
    state.targets.retain(|k, _| keep.contains(k.as_str()));
    state.last_checks.retain(|k, _| keep.contains(k.as_str()));
}

/// Take the lock at `path`, or say who holds it (exit 75) or why it cannot be taken.
pub fn lock(path: &Path) -> Result<Lock, Error> {
    Lock::acquire(path).map_err(|e| match e {
        LockError::Held(holder) => Error::Locked {
            path: path.to_path_buf(),
            holder,
        },
        LockError::Io(msg) => Error::Other(anyhow::anyhow!(
            "{msg} (the lock file lives beside the state file; set state_file or lock_file to a writable place, or run as root)"
        )),
    })
}

/// An exclusive, non-blocking lock on the lock file; released when dropped (or when the
/// process dies, however it dies).
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

pub enum LockError {
    /// Another process holds it; the text names the holder if known.
    Held(String),
    Io(String),
}

impl Lock {
    /// Open (create, 0600, in a 0700 directory if missing) and lock the file at `path`. The
    /// file must be a regular file of ours with one link (see `files::open_in_place`): the
    /// lock file is never a way to write elsewhere. After locking, the path must still name
    /// the file locked: one unlinked meanwhile is locked by nobody who comes later.
    pub fn acquire(path: &Path) -> Result<Lock, LockError> {
        use fs2::FileExt;
        let dir = files::parent(path);
        files::ensure_dir(&dir, 0o700).map_err(LockError::Io)?;
        let mut leftover_since: Option<std::time::Instant> = None;
        let mut replaced = 0;
        while replaced < 5 {
            let file = files::open_in_place(path, 0o600)
                .map_err(|e| LockError::Io(format!("cannot use lock file: {e}")))?;
            if let Err(e) = file.try_lock_exclusive() {
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
                {
                    let pid = holder(&file);
                    match pid.filter(|&p| !alive(p)) {
                        Some(gone) => {
                            let since = *leftover_since.get_or_insert_with(|| {
                                tracing::warn!(
                                    lock_file = %path.display(),
                                    pid = gone,
                                    "the lock is still held by a process left by pid {gone}, which has exited (a command it was starting); waiting up to {}s for it to let go",
                                    LEFTOVER_WAIT.as_secs()
                                );
                                std::time::Instant::now()
                            });
                            if since.elapsed() < LEFTOVER_WAIT {
                                std::thread::sleep(std::time::Duration::from_millis(10));
                                continue;
                            }
                            return Err(LockError::Held(format!(
                                " (by a process left by pid {gone}, which has exited; `fuser -v {}` names it)",
                                path.display()
                            )));
                        }
                        None => {
                            return Err(LockError::Held(
                                pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                            ))
                        }
                    }
                }
                return Err(LockError::Io(format!(
                    "cannot lock {}: {}",
                    path.display(),
                    crate::util::os_error(&e)
                )));
            }
            let lock = Lock {
                file,
                path: path.to_path_buf(),
            };
            if lock.still_held() {
                lock.record_holder();
                return Ok(lock);
            }
            replaced += 1;
        }
        Err(LockError::Io(format!(
            "cannot lock {}: the file keeps being removed or replaced",
            path.display()
        )))
    }

    /// The path still names the file this lock is on (nobody removed or replaced it).
    pub fn still_held(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::symlink_metadata(&self.path), self.file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// Our pid in the file, for the message of a second instance (best effort). Written
    /// before the old content is cut, so the file is never seen empty.
    fn record_holder(&self) {
        use std::os::unix::fs::FileExt;
        let pid = format!("{}\n", std::process::id());
        // opened read-only (a read-only directory): nothing is written
        if self.file.write_all_at(pid.as_bytes(), 0).is_ok() {
            let _ = self.file.set_len(pid.len() as u64);
        }
    }
}

/// How long a pass waits for a lock held by what an exited instance left behind. Every process
/// the watchdog forks shares its lock (flock belongs to the open file, and a fork copies the
/// descriptors) until it execs, closes its descriptors (the guardian does that first thing) or
/// dies: a command being started, or the guardian just forked, when the watchdog is SIGKILLed.
/// Such a process lets go as soon as the kernel runs it, but on a loaded machine that can take a
/// while; exiting 75 meanwhile would name an instance that no longer exists. Well above any
/// scheduling delay, and small beside a timer's tick.
const LEFTOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The process `pid` runs (exists and is not a zombie: a zombie holds no descriptor). A pid of
/// another pid namespace reads as gone: that costs a wait of [`LEFTOVER_WAIT`], then exit 75.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // pid (comm) S ...; comm may hold spaces and parentheses
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Who holds the lock on `file`: the pid written in it, else the kernel's record of flock
/// holders (/proc/locks), which holds even while the holder has not written its pid yet.
fn holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    if let Ok(pid) = text.trim().parse::<u32>() {
        return Some(pid);
    }
    let ino = file.metadata().ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|l| {
        // 1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF
        let f: Vec<&str> = l.split_whitespace().collect();
        let (kind, pid, id) = (f.get(1)?, f.get(4)?, f.get(5)?);
        let this = id.rsplit(':').next()?.parse::<u64>().ok()? == ino;
        (*kind == "FLOCK" && this)
            .then(|| pid.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Health, Transition};
    use crate::procs::CpuSample;
    use std::time::Duration;

    fn sample() -> StateFile {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let mut s = StateFile::default();
        s.targets.insert(
            "web".into(),
            TargetState {
                status: Health::Failed,
                since: Some(t),
                consecutive_failures: 2,
                last_reason: Some("exit 1: bad token=abc".into()),
                last_check: Some(t),
                restarts: vec![t],
                last_restart: Some(t),
                restarts_since_healthy: 1,
                restarts_total: 7,
                down_since: Some(t),
                last_alert: Some(t),
                rate_limited: false,
                checks_failed_total: 3,
                last_healthy: Some(t),
                inconclusive: false,
                paused: Some(crate::policy::Pause {
                    since: t,
                    until: Some(t + Duration::from_secs(7200)),
                    reason: Some("upgrade, token=abc".into()),
                }),
                actions: vec![crate::policy::ActionRecord {
                    at: t,
                    kind: "restart".into(),
                    by: crate::policy::By::Operator,
                    ok: false,
                    exit: Some(1),
                    duration_ms: 12,
                    error: Some("exit 1: password=abc".into()),
                }],
                pids: vec![42, 43],
                transitions: vec![Transition {
                    at: t,
                    from: Health::Degraded,
                    to: Health::Failed,
                    reason: Some("exit 1: bad password=abc".into()),
                }],
            },
        );
        s
    }

    #[test]
    fn round_trips_and_redacts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        save(&path, &sample(), &Redactor::default()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"2023-11-14T22:13:20.123Z\""), "{text}");
        assert!(text.contains("token=***"), "{text}");
        let l = load(&path, false);
        assert!(l.warning.is_none());
        let mut expected = sample();
        let web = expected.targets.get_mut("web").unwrap();
        web.last_reason = Some("exit 1: bad token=***".into());
        web.transitions[0].reason = Some("exit 1: bad password=***".into());
        if let Some(p) = &mut web.paused {
            p.reason = Some("upgrade, token=***".into());
        }
        web.actions[0].error = Some("exit 1: password=***".into());
        assert_eq!(l.state, expected);
        // no temp file left behind
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn masks_a_secret_anywhere_and_copies_nothing_without_one() {
        let secret = Redactor::new(["hunter22".to_string()]);
        let mut s = sample();
        let web = s.targets.get_mut("web").unwrap();
        web.last_reason = Some("exit 1".into());
        web.paused = None;
        web.actions.clear();
        web.transitions[0].reason = Some("exit 1: hunter22".into());
        // only a transition's reason holds it: still masked
        let m = masked(&s, &secret).expect("a reason to mask");
        assert_eq!(
            m.targets["web"].transitions[0].reason.as_deref(),
            Some("exit 1: ***")
        );
        s.targets.get_mut("web").unwrap().transitions[0].reason = Some("exit 1".into());
        assert!(masked(&s, &secret).is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, &s, &secret).unwrap();
        assert_eq!(load(&path, false).state, s);
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\"version\": 1, \"targets\": {\"web\": ").unwrap();
        let l = load(&path, false);
        assert_eq!(l.state, StateFile::default());
        let w = l.warning.unwrap();
        assert!(w.contains("moved aside"), "{w}");
        assert!(!path.exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0].starts_with("state.json.corrupt-"), "{aside:?}");
    }

    #[test]
    fn dry_run_leaves_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "garbage").unwrap();
        let l = load(&path, true);
        assert!(l.warning.unwrap().contains("left in place"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage");
    }

    #[test]
    fn unknown_version_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\"version\": 99, \"targets\": {}}").unwrap();
        let l = load(&path, false);
        assert!(l.warning.unwrap().contains("version 99"));
    }

    #[test]
    fn missing_file_is_fresh_without_warning() {
        let l = load(Path::new("/nonexistent/dir/state.json"), false);
        assert!(l.warning.is_none());
    }

    #[test]
    fn special_files_are_never_read_moved_or_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // a blocking open of a FIFO would hang here for good
        let (tx, rx) = std::sync::mpsc::channel();
        let p = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(load(&p, false));
        });
        let l = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("loading a FIFO state file hangs");
        assert_eq!(l.state, StateFile::default());
        assert!(l
            .warning
            .unwrap()
            .contains("is a FIFO (named pipe), not a regular file"));
        let e = save(&fifo, &sample(), &Redactor::default()).unwrap_err();
        assert!(e.contains("is a FIFO"), "{e}");
        let null = dir.path().join("null.json");
        nix::sys::stat::mknod(
            &null,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod (the tests run as root)");
        let l = load(&null, false);
        assert!(l.warning.unwrap().contains("is a character device"));
        assert!(save(&null, &sample(), &Redactor::default()).is_err());
        let zero = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(load(&zero, false)
            .warning
            .unwrap()
            .contains("is a symbolic link"));
        let sub = dir.path().join("dir.json");
        std::fs::create_dir(&sub).unwrap();
        assert!(load(&sub, false)
            .warning
            .unwrap()
            .contains("is a directory"));
        // all of them still there, as they were
        for (p, ok) in [
            (
                &fifo,
                std::fs::FileType::is_fifo as fn(&std::fs::FileType) -> bool,
            ),
            (&null, std::fs::FileType::is_char_device),
            (&zero, std::fs::FileType::is_symlink),
            (&sub, std::fs::FileType::is_dir),
        ] {
            assert!(
                ok(&std::fs::symlink_metadata(p).unwrap().file_type()),
                "{}",
                p.display()
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn a_state_file_of_another_user_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, &sample(), &Redactor::default()).unwrap();
        // someone else's file, saying the target gave up: it must not be believed
        nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let l = load(&path, false);
        assert_eq!(l.state, StateFile::default());
        let w = l.warning.unwrap();
        assert!(w.contains("belongs to uid 65534"), "{w}");
        assert!(w.contains("moved aside"), "{w}");
    }

    #[test]
    fn the_lock_names_its_holder_even_before_the_pid_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.lock");
        let first = Lock::acquire(&path).ok().unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        match Lock::acquire(&path) {
            Err(LockError::Held(h)) => assert_eq!(h, format!(" (pid {})", std::process::id())),
            _ => panic!("second lock must fail as held"),
        }
        drop(first);
    }

    #[test]
    fn a_removed_lock_file_is_no_longer_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json.lock");
        let first = Lock::acquire(&path).ok().unwrap();
        assert!(first.still_held());
        std::fs::remove_dir_all(dir.path().join("sub")).unwrap();
        assert!(!first.still_held());
        // and whoever comes now gets a lock of its own on the new file
        let second = Lock::acquire(&path).ok().unwrap();
        assert!(second.still_held());
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/state.json.lock");
        let first = Lock::acquire(&path).ok().unwrap();
        match Lock::acquire(&path) {
            Err(LockError::Held(h)) => assert_eq!(h, format!(" (pid {})", std::process::id())),
            _ => panic!("second lock must fail as held"),
        }
        drop(first);
        assert!(Lock::acquire(&path).is_ok());
    }

    #[test]
    fn a_version_1_file_from_before_the_status_model_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            r#"{"version": 1, "targets": {"web": {"status": "failing", "consecutive_failures": 3,
               "restarts": ["2026-11-23T10:00:00.000Z"], "last_restart": "2026-11-23T10:00:00.000Z"}}}"#,
        )
        .unwrap();
        let l = load(&path, false);
        assert!(l.warning.is_none(), "{:?}", l.warning);
        let web = &l.state.targets["web"];
        assert_eq!(web.status, Health::Failed);
        assert_eq!(web.consecutive_failures, 3);
        assert_eq!(web.restarts.len(), 1);
        assert_eq!(web.restarts_since_healthy, 0);
        assert!(web.transitions.is_empty());
    }

    #[test]
    fn rebase_moves_every_time_with_a_step_of_the_wall_clock_and_keeps_the_reading() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let reading = |wall: SystemTime, ms: u64| ClockReading {
            wall,
            boot_id: "b1".into(),
            boottime_ms: ms,
        };
        let mut s = sample();
        s.cpu_samples
            .insert("1:2".into(), CpuSample { ticks: 5, at: t0 });
        s.clock = Some(reading(t0, 1_000_000));
        let before = s.clone();
        // 10 s later by the boot clock, the wall clock reads an hour less than it should
        let now = t0 + Duration::from_secs(10) - crate::policy::HOUR;
        let step = rebase(&mut s, now, Some(reading(now, 1_010_000)));
        assert_eq!(
            step,
            Some(Step {
                back: true,
                by: crate::policy::HOUR
            })
        );
        let (web, was) = (&s.targets["web"], &before.targets["web"]);
        assert_eq!(web.restarts[0], was.restarts[0] - crate::policy::HOUR);
        assert_eq!(
            web.transitions[0].at,
            was.transitions[0].at - crate::policy::HOUR
        );
        assert_eq!(s.cpu_samples["1:2"].at, t0 - crate::policy::HOUR);
        assert_eq!(s.clock, Some(reading(now, 1_010_000)));
        // saved and loaded with its reading; a file without one (an earlier version) loads
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, &s, &Redactor::default()).unwrap();
        assert_eq!(load(&path, false).state.clock, s.clock);
        // no step: nothing moves
        let again = s.clone();
        let later = now + Duration::from_secs(30);
        assert_eq!(rebase(&mut s, later, Some(reading(later, 1_040_000))), None);
        assert_eq!(s.targets, again.targets);
    }

    #[test]
    fn check_records_keep_their_detail_masked_and_older_ones_load_without() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // before: records for targets with an interval of their own only, without detail
        std::fs::write(
            &path,
            r#"{"version":1,"targets":{},"last_checks":{"slow":[{"name":"http","ok":false,"latency_ms":7}]}}"#,
        )
        .unwrap();
        let l = load(&path, false);
        assert!(l.warning.is_none(), "{:?}", l.warning);
        assert_eq!(l.state.last_checks["slow"][0].detail, "");
        assert!(!l.state.last_checks["slow"][0].ok);
        let mut s = sample();
        s.last_checks.insert(
            "web".into(),
            vec![
                CheckRecord {
                    name: "command".into(),
                    ok: false,
                    latency_ms: 3,
                    detail: "exit 1: login hunter22 refused".into(),
                },
                CheckRecord {
                    name: "pid_file".into(),
                    ok: true,
                    latency_ms: 0,
                    detail: String::new(),
                },
            ],
        );
        save(&path, &s, &Redactor::new(["hunter22".to_string()])).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter22"), "{text}");
        // an empty detail is left out
        assert!(
            text.contains(r#"{"name":"pid_file","ok":true,"latency_ms":0}"#),
            "{text}"
        );
        let web = &load(&path, false).state.last_checks["web"];
        assert_eq!(web[0].detail, "exit 1: login *** refused");
    }

    #[test]
    fn retain_drops_removed_targets() {
        let mut s = sample();
        s.targets.insert("old".into(), TargetState::default());
        retain_targets(&mut s, ["web"].into_iter());
        assert_eq!(s.targets.keys().collect::<Vec<_>>(), vec!["web"]);
    }
}
