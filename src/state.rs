//! The policy's memory: a JSON state file, and the lock that keeps two passes apart.
//!
//! - Saved atomically: a temp file in the same directory, fsync, rename, fsync of the
//!   directory. `kill -9` at any moment leaves the old file or the new one, never a torn one.
//! - A corrupt or unreadable state never stops a pass: the bad file is moved aside
//!   (`state.json.corrupt-<time>`), a warning is logged, and the pass starts from fresh state.
//! - Every string stored passes through the redactor, like every log line.

use crate::error::Error;
use crate::events::Pending;
use crate::policy::TargetState;
use crate::procs::CpuSample;
use crate::redact::Redactor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
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
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            version: VERSION,
            targets: BTreeMap::new(),
            pending_notifications: Vec::new(),
            cpu_samples: BTreeMap::new(),
        }
    }
}

/// The result of loading: the state to use, and a warning to log if the file was bad.
pub struct Loaded {
    pub state: StateFile,
    pub warning: Option<String>,
}

/// Load the state file. Never fails: a missing file is fresh state; a bad one is moved aside
/// (unless `read_only`, as in `--dry-run`) and replaced by fresh state, with a warning.
pub fn load(path: &Path, read_only: bool) -> Loaded {
    let fresh = |warning: Option<String>| Loaded {
        state: StateFile::default(),
        warning,
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return fresh(None),
        Err(e) => {
            return fresh(Some(format!(
                "cannot read state file {}: {}; going on with fresh state (failure counts and restart history are lost for this pass)",
                path.display(),
                crate::util::os_error(&e)
            )))
        }
    };
    let problem = match serde_json::from_slice::<StateFile>(&text) {
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
    };
    let aside = if read_only {
        "left in place (dry run)".to_string()
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

fn move_aside(path: &Path) -> Result<PathBuf, String> {
    // millisecond stamp and pid: two bad files never overwrite each other's copy
    let stamp = crate::util::rfc3339(SystemTime::now()).replace(':', "");
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{stamp}-{}", std::process::id()));
    let dest = PathBuf::from(name);
    std::fs::rename(path, &dest).map_err(|e| crate::util::os_error(&e))?;
    Ok(dest)
}

/// Write the state atomically, creating the directory if missing.
pub fn save(path: &Path, state: &StateFile, redactor: &Redactor) -> Result<(), String> {
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
    }
    let mut json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
    json.push(b'\n');
    write_atomic(path, &json).map_err(|e| format!("cannot save state file {}: {e}", path.display()))
}

/// Replace `path` with `data`: temp file in the same directory, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), String> {
    write_atomic_inner(path, data, None)
}

/// [`write_atomic`], the new file with exactly `mode` (umask aside).
pub fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    write_atomic_inner(path, data, Some(mode))
}

fn write_atomic_inner(path: &Path, data: &[u8], mode: Option<u32>) -> Result<(), String> {
    let err = |e: std::io::Error| crate::util::os_error(&e);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if dir.exists() && !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create {}: {}", dir.display(), err(e)))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(err)?;
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(err)?;
        }
        f.write_all(data).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_ok() {
        remove_stale_temps(&dir, &file_name);
    }
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A writer killed between creating its temp file and the rename leaves `.NAME.tmp-PID`
/// behind; the next successful save (under the lock) clears them.
fn remove_stale_temps(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Drop the state of targets no longer in the config.
pub fn retain_targets<'a>(state: &mut StateFile, names: impl Iterator<Item = &'a str>) {
    let keep: std::collections::HashSet<&str> = names.collect();
    state.targets.retain(|k, _| keep.contains(k.as_str()));
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
    _file: File,
}

pub enum LockError {
    /// Another process holds it; the text names the holder if known.
    Held(String),
    Io(String),
}

impl Lock {
    pub fn acquire(path: &Path) -> Result<Lock, LockError> {
        use fs2::FileExt;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                LockError::Io(format!(
                    "cannot create {}: {}",
                    dir.display(),
                    crate::util::os_error(&e)
                ))
            })?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                LockError::Io(format!(
                    "cannot open lock file {}: {}",
                    path.display(),
                    crate::util::os_error(&e)
                ))
            })?;
        if let Err(e) = file.try_lock_exclusive() {
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
            {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
                    format!(" (pid {holder})")
                } else {
                    String::new()
                };
                return Err(LockError::Held(holder));
            }
            return Err(LockError::Io(format!(
                "cannot lock {}: {}",
                path.display(),
                crate::util::os_error(&e)
            )));
        }
        // record the holder for the message of a second instance (best effort)
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Health, Transition};
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
        assert_eq!(l.state, expected);
        // no temp file left behind
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
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
    fn retain_drops_removed_targets() {
        let mut s = sample();
        s.targets.insert("old".into(), TargetState::default());
        retain_targets(&mut s, ["web"].into_iter());
        assert_eq!(s.targets.keys().collect::<Vec<_>>(), vec!["web"]);
    }
}
