//! exec: run the start or restart argv through `spawn` (process group, timeout, env, cwd, and
//! `user:`/`group:`, which `stop:` runs as too),
//! leaving the daemon it starts alone; or, with `detach: true`, start a foreground program in
//! its own session and return at once. Output goes to a file (see `output_file`), whose tail
//! is logged.
//!
//! The file (the action log) is written by the command itself, raw. Once the command has
//! exited the watchdog rewrites it in place: only its last [`LOG_CAP`] bytes are kept, with
//! every secret masked by the one redactor (a secret cut by the cap included). So what a run
//! leaves there is bounded and masked. What it cannot bound or mask is what a daemon the
//! command left behind writes to its inherited stdout/stderr afterwards: that is appended
//! raw (the file stays 0600) until the target's next exec action starts the file over.

use super::ActionResult;
use crate::config::ExecAction;
use crate::policy::ActionKind;
use crate::redact::Redactor;
use crate::spawn::{self, Cleanup, Spec};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::{Duration, Instant};
use tracing::warn;

/// What the action log keeps of one run: its last 64 KiB.
pub const LOG_CAP: usize = 64 * 1024;

pub fn argv(e: &ExecAction, kind: ActionKind) -> Option<&[String]> {
    let (first, other) = match kind {
        ActionKind::Start => (&e.start, &e.restart),
        ActionKind::Restart => (&e.restart, &e.start),
    };
    first.as_deref().or(other.as_deref())
}

pub fn run(
    e: &ExecAction,
    kind: ActionKind,
    output_file: &Path,
    redactor: &Redactor,
    event_env: &BTreeMap<String, String>,
) -> ActionResult {
    let start = Instant::now();
    let Some(argv) = argv(e, kind) else {
        return ActionResult::failed("no start or restart command".into(), Duration::ZERO);
    };
    // the watchdog's NEON_WATCHDOG_* say what happened; the user's own env comes on top
    let mut env = event_env.clone();
    env.extend(e.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    // `stop:` first, whenever `start:` is what runs; its failure does not keep the start
    // from running (it may fail only because there was nothing left to stop)
    let stop = match (&e.stop, e.start.as_deref() == Some(argv)) {
        (Some(stop), true) => Some(run_stop(stop, e, &env, redactor)),
        _ => None,
    };
    if e.detach {
        let started = spawn::detach(
            argv,
            &env,
            e.cwd.as_deref(),
            e.log_file.as_deref(),
            e.run_as.as_deref(),
        );
        return match started {
            Ok(note) => ActionResult {
                ok: true,
                exit: None,
                duration: start.elapsed(),
                output: note.unwrap_or_default(),
                error: String::new(),
                detached: true,
                stop,
                user: user(e),
            },
            Err(err) => ActionResult {
                stop,
                user: user(e),
                ..ActionResult::failed(err, start.elapsed())
            },
        };
    }
    let spec = Spec::new(argv, e.timeout)
        .env(&env)
        .cwd(e.cwd.as_deref())
        .cleanup(Cleanup::LeaveGroup)
        .output(output_file)
        .run_as(e.run_as.as_deref());
    if let Some(dir) = output_file.parent() {
        // the state directory: 0700 whatever the umask, like the state file's
        let _ = crate::files::ensure_dir(dir, 0o700);
    }
    let result = match spawn::run(&spec) {
        Ok(out) => ActionResult::of(&out, e.timeout, redactor),
        Err(err) => ActionResult::failed(err.message, start.elapsed()),
    };
    if let Err(err) = keep_masked_tail(output_file, redactor) {
        warn!(
            file = %output_file.display(),
            err = %err,
            "action output not kept"
        );
    }
    ActionResult {
        stop,
        user: user(e),
        ..result
    }
}

/// Who the action runs as, for its log lines (`user=www-data`); None: as the watchdog.
fn user(e: &ExecAction) -> Option<String> {
    e.run_as.as_deref().map(spawn::RunAs::shown)
}

/// Run `stop:` to completion (its group killed after, like a check's: what it leaves is of no
/// use); how it ended, in spawn's words ("exit 0", "exit 1: no process found").
fn run_stop(
    stop: &[String],
    e: &ExecAction,
    env: &BTreeMap<String, String>,
    redactor: &Redactor,
) -> String {
    let spec = Spec::new(stop, e.timeout)
        .env(env)
        .cwd(e.cwd.as_deref())
        .run_as(e.run_as.as_deref());
    match spawn::run(&spec) {
        Ok(out) => out.status.describe(e.timeout, &out.tail(200, redactor)),
        Err(err) => err.message,
    }
}

/// Rewrite the action log in place as its last [`LOG_CAP`] bytes, secrets masked (see the
/// module doc). In place, not renamed over: a daemon left behind keeps appending to this very
/// file, which therefore stays where the next run will empty it. What it writes while we
/// rewrite is lost.
fn keep_masked_tail(path: &Path, redactor: &Redactor) -> std::io::Result<()> {
    let f = spawn::open_output_file(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(LOG_CAP as u64);
    let mut buf = vec![0u8; LOG_CAP];
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    let cut = start > 0;
    let mut text = spawn::drop_partial_line(redactor.redact_cut(&buf, cut), cut);
    if cut {
        text.insert_str(
            0,
            &format!(
                "[neon-watchdog: {len} bytes of output; the last {} KiB are kept]\n",
                LOG_CAP / 1024
            ),
        );
    }
    f.set_len(0)?;
    // O_APPEND: lands at the end, after whatever a daemon appended meanwhile
    (&f).write_all(text.as_bytes())
}
