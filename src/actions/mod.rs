//! Recovery actions: `exec` (an argv) and `systemd` (`systemctl <method> <unit>`).
//! One entry point, [`run`], and [`argv`] to say what would run (logs, `--dry-run`).

mod exec;
mod systemd;

use crate::config::{Action, Config};
use crate::policy::{ActionKind, Available};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What an action run did.
#[derive(Debug, Clone)]
pub struct ActionResult {
    pub ok: bool,
    /// Exit code, when the command exited.
    pub exit: Option<i32>,
    pub duration: Duration,
    /// Last output (stderr, else stdout), trimmed; empty if none.
    pub output: String,
    /// Why it failed, in words (empty when ok).
    pub error: String,
    /// `detach: true`: started and left running.
    pub detached: bool,
}

impl ActionResult {
    fn failed(error: String, duration: Duration) -> Self {
        ActionResult {
            ok: false,
            exit: None,
            duration,
            output: String::new(),
            error,
            detached: false,
        }
    }
}

/// Which of start/restart the action offers (systemd offers its one method as "restart").
pub fn available(action: &Action) -> Available {
    match action {
        Action::None => Available::NONE,
        Action::Exec(e) => Available {
            start: e.start.is_some(),
            restart: e.restart.is_some(),
        },
        Action::Systemd(_) => Available::RESTART_ONLY,
    }
}

/// The argv that `kind` runs (not yet redacted), or None for `action: none`.
pub fn argv(action: &Action, kind: ActionKind, config: &Config) -> Option<Vec<String>> {
    match action {
        Action::None => None,
        Action::Exec(e) => exec::argv(e, kind).map(<[String]>::to_vec),
        Action::Systemd(s) => Some(systemd::argv(s, &config.systemctl_path)),
    }
}

/// Run the action for `kind` on behalf of `target`.
pub fn run(action: &Action, kind: ActionKind, config: &Config, target: &str) -> ActionResult {
    match action {
        Action::None => ActionResult::failed("no action configured".into(), Duration::ZERO),
        Action::Exec(e) => {
            let output = output_file(config, target);
            exec::run(e, kind, &output, &config.redactor)
        }
        Action::Systemd(s) => systemd::run(s, &config.systemctl_path, &config.redactor),
    }
}

/// Where an exec action's output goes: `<state dir>/<target>.action.log`, rewritten at each
/// run. A file rather than a pipe, because a daemon the action leaves behind keeps the
/// inherited stdout/stderr: on a pipe it would die of SIGPIPE once the watchdog stops reading.
pub fn output_file(config: &Config, target: &str) -> PathBuf {
    let dir = config
        .state_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let safe: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.action.log"))
}
