//! exec: run the start or restart argv through `spawn` (process group, timeout, env, cwd),
//! leaving the daemon it starts alone; or, with `detach: true`, start a foreground program in
//! its own session and return at once. Output goes to a file (see `output_file`), whose tail
//! is logged.

use super::ActionResult;
use crate::config::ExecAction;
use crate::policy::ActionKind;
use crate::redact::Redactor;
use crate::spawn::{self, Cleanup, Spec};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

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
    if e.detach {
        return match spawn::detach(argv, &env, e.cwd.as_deref(), e.log_file.as_deref()) {
            Ok(()) => ActionResult {
                ok: true,
                exit: None,
                duration: start.elapsed(),
                output: String::new(),
                error: String::new(),
                detached: true,
            },
            Err(err) => ActionResult::failed(err, start.elapsed()),
        };
    }
    let spec = Spec::new(argv, e.timeout)
        .env(&env)
        .cwd(e.cwd.as_deref())
        .cleanup(Cleanup::LeaveGroup)
        .output(output_file);
    if let Some(dir) = output_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match spawn::run(&spec) {
        Ok(out) => ActionResult::of(&out, e.timeout, redactor),
        Err(err) => ActionResult::failed(err.message, start.elapsed()),
    }
}
