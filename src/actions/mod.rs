//! Recovery actions: `exec` (an argv), `systemd` (`systemctl <method> <unit>`) and `docker`;
//! and `on_give_up`, the command run once when the policy gives up.
//! Entry points: [`run`] and [`on_give_up`]; [`argv`] says what would run (logs, `--dry-run`).

mod docker;
mod exec;
mod systemd;

use crate::config::{Action, Config, OnGiveUp};
use crate::policy::{ActionKind, Available};
use crate::redact::Redactor;
use crate::spawn::{self, Spec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What an action run did.
#[derive(Debug, Clone, Default)]
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
    /// How `stop:` ended, when it ran before `start:` ("exit 0", "exit 1: no such process").
    pub stop: Option<String>,
    /// Who it ran as, when `user:`/`group:` says (`www-data`, `www-data:adm`, `:adm`).
    pub user: Option<String>,
}

impl ActionResult {
    /// The result of a command that ran: its exit, duration and output tail; when it did not
    /// exit 0, the error in spawn's words ("exit 3", "timed out after 5s").
    fn of(out: &spawn::Output, timeout: Duration, redactor: &Redactor) -> Self {
        let ok = out.status.success();
        ActionResult {
            ok,
            exit: out.status.code(),
            duration: out.duration,
            output: out.tail(300, redactor),
            error: if ok {
                String::new()
            } else {
                out.status.describe(timeout, "")
            },
            detached: false,
            stop: None,
            user: None,
        }
    }

    fn failed(error: String, duration: Duration) -> Self {
        ActionResult {
            ok: false,
            exit: None,
            duration,
            output: String::new(),
            error,
            detached: false,
            stop: None,
            user: None,
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
        Action::Systemd(_) | Action::Docker(_) => Available::RESTART_ONLY,
    }
}

/// The argv that `kind` runs (not yet redacted), or None for `action: none`.
pub fn argv(action: &Action, kind: ActionKind, config: &Config) -> Option<Vec<String>> {
    match action {
        Action::None => None,
        Action::Exec(e) => exec::argv(e, kind).map(<[String]>::to_vec),
        Action::Systemd(s) => Some(systemd::argv(s, &config.systemctl_path)),
        Action::Docker(d) => Some(docker::argv(d)),
    }
}

/// Run the action for `kind` on behalf of `target`. `env` (`NEON_WATCHDOG_*`: what happened)
/// is added to an exec action's environment.
pub fn run(
    action: &Action,
    kind: ActionKind,
    config: &Config,
    target: &str,
    env: &BTreeMap<String, String>,
) -> ActionResult {
    match action {
        Action::None => ActionResult::failed("no action configured".into(), Duration::ZERO),
        Action::Exec(e) => {
            let output = output_file(config, target);
            exec::run(e, kind, &output, &config.redactor, env)
        }
        Action::Systemd(s) => systemd::run(s, &config.systemctl_path, &config.redactor),
        Action::Docker(d) => docker::run(d),
    }
}

/// Run `on_give_up` once for `target` (its process group is killed when it exits). `env`
/// (`NEON_WATCHDOG_*`: what happened) is its environment.
/// What an operator's verb asks of a target's action (`neon-watchdog start|stop|restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Restart,
    Stop,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Restart => "restart",
            Op::Stop => "stop",
        }
    }
}

/// The argv an operator's `op` runs (None: the action has no such command), for the log.
pub fn op_argv(action: &Action, op: Op, config: &Config) -> Option<Vec<String>> {
    match (action, op) {
        (Action::None, _) => None,
        (Action::Exec(e), Op::Stop) => e.stop.clone(),
        (Action::Exec(_), Op::Start) => argv(action, ActionKind::Start, config),
        (Action::Exec(_), Op::Restart) => argv(action, ActionKind::Restart, config),
        (Action::Systemd(s), op) => Some(systemd::argv_of(s, op.as_str(), &config.systemctl_path)),
        (Action::Docker(d), op) => Some(docker::argv_of(d, op.as_str())),
    }
}

/// Run an operator's `op` on the target's action: exec runs its `start:` (else `restart:`),
/// `restart:` (else `start:`), or `stop:`; systemd runs `systemctl start|restart|stop UNIT`,
/// docker asks the engine to start, restart or stop the container.
pub fn operate(
    action: &Action,
    op: Op,
    config: &Config,
    target: &str,
    env: &BTreeMap<String, String>,
) -> ActionResult {
    match (action, op) {
        (Action::None, _) => ActionResult::failed(
            "action: none: there is nothing to run (the target is only watched)".into(),
            Duration::ZERO,
        ),
        (Action::Exec(e), Op::Stop) => {
            let Some(stop) = &e.stop else {
                return ActionResult::failed(
                    "its exec action has no stop: command (add one under action.exec)".into(),
                    Duration::ZERO,
                );
            };
            // the stop command runs as the action's start would: same env, cwd, timeout and
            // output file; to completion, its group left alone like a start's
            let as_start = crate::config::ExecAction {
                start: Some(stop.clone()),
                stop: None,
                restart: None,
                detach: false,
                ..e.clone()
            };
            let output = output_file(config, target);
            exec::run(&as_start, ActionKind::Start, &output, &config.redactor, env)
        }
        (Action::Exec(_), Op::Start) => run(action, ActionKind::Start, config, target, env),
        (Action::Exec(_), Op::Restart) => run(action, ActionKind::Restart, config, target, env),
        (Action::Systemd(s), op) => {
            systemd::run_method(s, op.as_str(), &config.systemctl_path, &config.redactor)
        }
        (Action::Docker(d), op) => docker::run_method(d, op.as_str()),
    }
}

pub fn on_give_up(
    g: &OnGiveUp,
    redactor: &Redactor,
    env: &BTreeMap<String, String>,
) -> ActionResult {
    let started = std::time::Instant::now();
    let spec = Spec::new(&g.argv, g.timeout)
        .env(env)
        .run_as(g.run_as.as_ref());
    let r = match spawn::run(&spec) {
        Ok(out) => ActionResult::of(&out, g.timeout, redactor),
        Err(e) => ActionResult::failed(e.message, started.elapsed()),
    };
    ActionResult {
        user: g.run_as.as_ref().map(spawn::RunAs::shown),
        ..r
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
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let safe: String = target
        .chars()
        .map(|c| if plain(c) { c } else { '_' })
        .collect();
    if target.chars().all(plain) && !target.starts_with('.') {
        dir.join(format!("{safe}.action.log"))
    } else {
        // `web/a` and `web_a` must not share a file: add a hash of the real name
        dir.join(format!(
            "{safe}-{:08x}.action.log",
            crate::util::fnv1a(target)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_files_of_distinct_targets_are_distinct() {
        let cfg = crate::config::parse(
            Path::new("/etc/nw/c.yml"),
            "state_file: /var/lib/nw/state.json\ntargets:\n  - name: w\n    checks:\n      - tcp_port: 1\n    action: none\n",
            &crate::config::validate::Env {
                lookup: &|_| None,
                is_root: true,
                config_dir: "/etc/nw".into(),
            },
        )
        .unwrap()
        .config;
        assert_eq!(
            output_file(&cfg, "web-1"),
            Path::new("/var/lib/nw/web-1.action.log")
        );
        let a = output_file(&cfg, "web/a");
        let b = output_file(&cfg, "web_a");
        let c = output_file(&cfg, "web a");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(
            a.to_string_lossy().starts_with("/var/lib/nw/web_a-"),
            "{}",
            a.display()
        );
        assert!(!output_file(&cfg, "..").ends_with("...action.log"));
    }
}
