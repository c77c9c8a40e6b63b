//! The operator's verbs: `check TARGET...`, `pause`, `resume`, `stop`, `start`, `restart` and
//! `reset`. One implementation of each ([`apply`]), two ways in (DESIGN.md, "Operators and
//! the daemon"): without a running `run`, the command takes the lock and applies the verb to
//! the state file ([`direct`]); with one, it asks the daemon over its root-only control socket
//! (`control`), which applies the same verb to the state it holds. Same words, same exit codes
//! either way: the answer is a [`Reply`], its text for stdout and its exit code.
//!
//! What a verb does is logged where it runs (the daemon's journal, or this command's stderr),
//! with `by=operator`.

use crate::actions::{self, Op};
use crate::config::{Config, Target};
use crate::engine::{self, Options};
use crate::exit::Exit;
use crate::logging::NOTICE;
use crate::policy::{self, Health, Verdict};
use crate::state::StateFile;
use crate::status::when;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};
use tracing::info;

/// An operator's verb, as the command line and the control socket carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case", deny_unknown_fields)]
pub enum Verb {
    /// A pass over these targets only.
    Check { targets: Vec<String> },
    /// Not checked, nothing done, until `resume` (or `for_seconds`).
    Pause {
        targets: Vec<String>,
        #[serde(default)]
        all: bool,
        #[serde(default)]
        for_seconds: Option<u64>,
        #[serde(default)]
        reason: Option<String>,
    },
    Resume {
        targets: Vec<String>,
        #[serde(default)]
        all: bool,
    },
    /// Pause, then its stop.
    Stop { targets: Vec<String> },
    /// Resume, then its start.
    Start { targets: Vec<String> },
    /// Its recovery action now, whatever the policy says.
    Restart { targets: Vec<String> },
    /// Forget failures, backoff and `gave_up`.
    Reset {
        targets: Vec<String>,
        #[serde(default)]
        all: bool,
        #[serde(default)]
        dry_run: bool,
    },
}

impl Verb {
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Check { .. } => "check",
            Verb::Pause { .. } => "pause",
            Verb::Resume { .. } => "resume",
            Verb::Stop { .. } => "stop",
            Verb::Start { .. } => "start",
            Verb::Restart { .. } => "restart",
            Verb::Reset { .. } => "reset",
        }
    }

    /// The targets named, and whether `--all` was given.
    fn selection(&self) -> (&[String], bool) {
        match self {
            Verb::Pause { targets, all, .. }
            | Verb::Resume { targets, all }
            | Verb::Reset { targets, all, .. } => (targets, *all),
            Verb::Check { targets }
            | Verb::Stop { targets }
            | Verb::Start { targets }
            | Verb::Restart { targets } => (targets, false),
        }
    }
}

/// A verb's answer: what to print on stdout, and how to exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// An [`Exit`] code.
    pub exit: u8,
    pub text: String,
}

impl Reply {
    fn new(exit: Exit, text: String) -> Reply {
        Reply {
            exit: exit.code(),
            text,
        }
    }

    fn usage(text: String) -> Reply {
        Reply::new(Exit::Usage, text)
    }

    pub fn exit(&self) -> Exit {
        Exit::from_code(self.exit)
    }
}

/// The longest `--for` (a year, like every `*_seconds` of the config).
pub const MAX_PAUSE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The longest pause reason kept (it is shown on one line of `status`).
pub const MAX_REASON: usize = 200;

/// The targets a verb names, or why not (exit 64, nothing changed): an unknown name (with the
/// closest one), a name given twice, neither names nor `--all`.
fn select<'a>(config: &'a Config, verb: &Verb) -> Result<Vec<&'a Target>, Reply> {
    let (names, all) = verb.selection();
    if all {
        if !names.is_empty() {
            return Err(Reply::usage(format!(
                "{}: give target names or --all, not both",
                verb.name()
            )));
        }
        return Ok(config.targets.iter().collect());
    }
    if names.is_empty() {
        return Err(Reply::usage(format!(
            "{}: name a target (neon-watchdog {} TARGET...)",
            verb.name(),
            verb.name()
        )));
    }
    let mut out: Vec<&Target> = Vec::with_capacity(names.len());
    for name in names {
        let Some(t) = config.targets.iter().find(|t| t.name == *name) else {
            return Err(Reply::usage(format!(
                "{}; nothing was changed",
                config.unknown_target(name)
            )));
        };
        if out.iter().any(|o| o.name == t.name) {
            return Err(Reply::usage(format!(
                "{}: target {:?} is named twice; nothing was changed",
                verb.name(),
                t.name
            )));
        }
        out.push(t);
    }
    Ok(out)
}

/// Check a `pause` reason: one line, at most [`MAX_REASON`] characters, nothing invisible.
fn check_reason(reason: Option<&str>) -> Result<Option<String>, Reply> {
    let Some(r) = reason else { return Ok(None) };
    let r = r.trim();
    if r.is_empty() {
        return Ok(None);
    }
    if r.chars().count() > MAX_REASON {
        return Err(Reply::usage(format!(
            "pause: --reason is longer than {MAX_REASON} characters; nothing was changed"
        )));
    }
    if r.chars()
        .any(|c| c.is_control() || crate::util::is_invisible(c))
    {
        return Err(Reply::usage(
            "pause: --reason must be one line of visible text (no control, invisible or bidi characters); nothing was changed"
                .to_string(),
        ));
    }
    Ok(Some(r.to_string()))
}

/// " until 2026-12-08T10:00:00Z (in 2h)" for a wait that ends, else nothing.
fn until_words(w: &policy::Wait, now: SystemTime) -> String {
    w.until
        .map(|u| format!(" until {}", when(u, now)))
        .unwrap_or_default()
}

/// Apply `verb` to `st` (the state this process holds, loaded from the file or the daemon's),
/// saving it as a pass does; the caller holds the lock. Logs what it does.
pub fn apply(config: &Config, st: &mut StateFile, verb: &Verb, opts: Options) -> Reply {
    let targets = match select(config, verb) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if opts.dry_run && !matches!(verb, Verb::Check { .. } | Verb::Reset { .. }) {
        return Reply::usage(format!(
            "{}: --dry-run is for check and reset (they say what they would do); nothing was changed",
            verb.name()
        ));
    }
    match verb {
        Verb::Check { .. } => check(config, st, &targets, opts),
        Verb::Pause {
            for_seconds,
            reason,
            ..
        } => {
            let for_ = for_seconds.map(Duration::from_secs);
            if for_.is_some_and(|d| d.is_zero() || d > MAX_PAUSE) {
                return Reply::usage(
                    "pause: --for must be between 1s and 365d; nothing was changed".to_string(),
                );
            }
            let reason = match check_reason(reason.as_deref()) {
                Ok(r) => r,
                Err(r) => return r,
            };
            pause(config, st, &targets, for_, reason, opts)
        }
        Verb::Resume { .. } => resume(config, st, &targets, opts),
        Verb::Stop { .. } => act(config, st, &targets, Op::Stop, opts),
        Verb::Start { .. } => act(config, st, &targets, Op::Start, opts),
        Verb::Restart { .. } => act(config, st, &targets, Op::Restart, opts),
        Verb::Reset { dry_run, .. } => reset(config, st, &targets, *dry_run, opts),
    }
}

/// Save after a verb changed the state; the reply says so when it could not.
fn save(config: &Config, st: &StateFile, opts: Options, out: &mut String) -> bool {
    let ok = engine::save_state(config, st, opts);
    if !ok {
        if opts.in_process_state {
            out.push_str("warning: the state file cannot be saved (see the daemon's log): this holds until the daemon restarts\n");
        } else {
            out.push_str("error: the state file cannot be saved (see the error above): nothing was changed\n");
        }
    }
    ok
}

fn pause(
    config: &Config,
    st: &mut StateFile,
    targets: &[&Target],
    for_: Option<Duration>,
    reason: Option<String>,
    opts: Options,
) -> Reply {
    let now = SystemTime::now();
    let until = for_.and_then(|d| now.checked_add(d));
    let mut out = String::new();
    let mut changed = 0;
    for t in targets {
        let s = st.targets.entry(t.name.clone()).or_default();
        if let Some(p) = &mut s.paused {
            // paused again: a new --for or --reason replaces the old (the pause goes on
            // without a gap); with neither, nothing changes
            if until.is_none() && reason.is_none() {
                let _ = writeln!(
                    out,
                    "{}: already paused since {}{}; unchanged (give --for or --reason to change it)",
                    t.name,
                    when(p.since, now),
                    p.until
                        .map(|u| format!(" until {}", when(u, now)))
                        .unwrap_or_default(),
                );
                continue;
            }
            let was = p.until;
            if until.is_some() {
                p.until = until;
            }
            if reason.is_some() {
                p.reason = reason.clone();
            }
            changed += 1;
            info!(
                target: NOTICE,
                target = %t.name,
                by = "operator",
                until = p.until.map(crate::util::rfc3339),
                reason = p.reason.as_deref(),
                "target pause changed"
            );
            let _ = writeln!(
                out,
                "{}: still paused (since {}), now until {}{}",
                t.name,
                when(p.since, now),
                p.until
                    .map(|u| when(u, now))
                    .unwrap_or_else(|| "`neon-watchdog resume`".to_string()),
                match (until, was) {
                    (Some(_), Some(w)) => format!(" (was until {})", when(w, now)),
                    (Some(_), None) => " (was until `neon-watchdog resume`)".to_string(),
                    _ => String::new(),
                }
            );
            continue;
        }
        policy::pause(s, now, until, reason.clone());
        changed += 1;
        info!(
            target: NOTICE,
            target = %t.name,
            by = "operator",
            until = until.map(crate::util::rfc3339),
            reason = reason.as_deref(),
            "target paused: not checked, nothing done for it until resumed"
        );
        let _ = writeln!(
            out,
            "{}: paused{}: not checked, nothing done for it{}",
            t.name,
            until
                .map(|u| format!(" until {}", when(u, now)))
                .unwrap_or_else(|| " until `neon-watchdog resume`".to_string()),
            if t.enabled {
                ""
            } else {
                " (it is disabled in the config anyway)"
            }
        );
    }
    if changed > 0 && !save(config, st, opts, &mut out) && !opts.in_process_state {
        return Reply::new(Exit::Internal, out);
    }
    Reply::new(Exit::Ok, out)
}

/// Resume each target; lines of what changed into `out`. Returns how many were paused.
fn unpause(st: &mut StateFile, targets: &[&Target], out: &mut String, quiet: bool) -> usize {
    let now = SystemTime::now();
    let mut changed = 0;
    for t in targets {
        match st.targets.get_mut(&t.name).and_then(|s| s.paused.take()) {
            Some(p) => {
                changed += 1;
                info!(target: NOTICE, target = %t.name, by = "operator", paused_since = %crate::util::rfc3339(p.since), "target resumed: watched again");
                let _ = writeln!(
                    out,
                    "{}: resumed (paused since {}): checked on the next pass",
                    t.name,
                    when(p.since, now)
                );
            }
            None if !quiet => {
                let _ = writeln!(out, "{}: not paused; unchanged", t.name);
            }
            None => {}
        }
    }
    changed
}

fn resume(config: &Config, st: &mut StateFile, targets: &[&Target], opts: Options) -> Reply {
    let mut out = String::new();
    if unpause(st, targets, &mut out, false) > 0
        && !save(config, st, opts, &mut out)
        && !opts.in_process_state
    {
        return Reply::new(Exit::Internal, out);
    }
    Reply::new(Exit::Ok, out)
}

/// What an operator's `op` runs on `t` now, or why it must not (exit 64, nothing changed).
/// `running`: what its process and pid-file checks say (None: it has none).
enum Plan {
    Run(Op),
    /// `start` of a target that runs: nothing to start.
    AlreadyRunning,
}

fn plan(t: &Target, op: Op, running: Option<bool>) -> Result<Plan, String> {
    let exec = match &t.action {
        crate::config::Action::None => {
            return Err("its action is none: it is only watched".to_string())
        }
        crate::config::Action::Exec(e) => Some(e),
        _ => None,
    };
    match (op, exec) {
        (Op::Stop, Some(e)) if e.stop.is_none() => {
            Err("its exec action has no stop: command (add one under action.exec)".to_string())
        }
        // systemctl start and the engine's start do nothing to what runs; an exec start: would
        // run a second copy
        (Op::Start, Some(_)) if running == Some(true) => Ok(Plan::AlreadyRunning),
        (Op::Restart, Some(e)) if running == Some(false) && e.start.is_some() => {
            Ok(Plan::Run(Op::Start))
        }
        (Op::Restart, Some(e)) if e.restart.is_none() => {
            // its start: is what runs; before it, stop: (exec runs it first when start: runs)
            if e.stop.is_none() && running != Some(false) {
                return Err(format!(
                    "{}its exec action has no restart: and no stop: command, so start: would run a second copy; add restart: or stop: under action.exec",
                    if running == Some(true) { "it runs and " } else { "" }
                ));
            }
            Ok(Plan::Run(Op::Start))
        }
        (op, _) => Ok(Plan::Run(op)),
    }
}

/// The pids a target's last check found, for "already running (pid 42)".
fn pids_of(st: &StateFile, name: &str) -> String {
    let pids: Vec<String> = st
        .targets
        .get(name)
        .map(|s| s.pids.iter().map(i32::to_string).collect())
        .unwrap_or_default();
    if pids.is_empty() {
        String::new()
    } else {
        format!(" (pid {})", pids.join(", "))
    }
}

/// How an action ended, for the verb's answer: `done (exit 0) in 12 ms`, `failed: exit 3 in
/// 4 ms: cannot start: missing config`, with the `stop:` run before a start.
fn how(r: &actions::ActionResult) -> String {
    let mut how = match (r.ok, r.exit) {
        (true, _) if r.detached => format!("done, detached in {} ms", r.duration.as_millis()),
        (true, Some(code)) => format!("done (exit {code}) in {} ms", r.duration.as_millis()),
        (true, None) => format!("done in {} ms", r.duration.as_millis()),
        (false, _) => format!("failed: {} in {} ms", r.error, r.duration.as_millis()),
    };
    if !r.ok && !r.output.is_empty() {
        let _ = write!(how, ": {}", r.output.trim_end());
    }
    if let Some(stop) = &r.stop {
        let _ = write!(how, " (its stop: ran first: {stop})");
    }
    how
}

/// `stop` (pause, then its stop), `start` (resume, then its start), `restart` (its recovery
/// action now: a start when its checks find it not running, else a restart).
fn act(config: &Config, st: &mut StateFile, targets: &[&Target], op: Op, opts: Options) -> Reply {
    let now = SystemTime::now();
    let mut out = String::new();
    // decided, and refused, before anything changes
    let mut plans = Vec::with_capacity(targets.len());
    for t in targets {
        let running = match (op, &t.action) {
            (Op::Start | Op::Restart, crate::config::Action::Exec(_)) => {
                engine::running(config, st, t)
            }
            _ => None,
        };
        match plan(t, op, running) {
            Ok(p) => plans.push(p),
            Err(why) => {
                return Reply::usage(format!(
                    "{}: cannot {} {}: {why}; nothing was changed",
                    op.as_str(),
                    op.as_str(),
                    t.name
                ))
            }
        }
    }
    let mut failed = false;
    for (t, plan) in targets.iter().zip(plans) {
        match op {
            Op::Stop => {
                let s = st.targets.entry(t.name.clone()).or_default();
                // stopped stays stopped until `start`: a pause with an end loses its end
                if let Some(p) = &mut s.paused {
                    p.until = None;
                    p.reason = Some(STOPPED.to_string());
                }
                if policy::pause(s, now, None, Some(STOPPED.to_string())) {
                    info!(target: NOTICE, target = %t.name, by = "operator", "target paused: stopped by an operator");
                }
            }
            Op::Start => {
                unpause(st, std::slice::from_ref(t), &mut out, true);
            }
            Op::Restart => {}
        }
        let run = match plan {
            Plan::AlreadyRunning => {
                let _ = writeln!(
                    out,
                    "{}: already running{}: nothing started; watched again",
                    t.name,
                    pids_of(st, &t.name)
                );
                let mut saved = String::new();
                if !save(config, st, opts, &mut saved) {
                    out.push_str(&saved);
                }
                continue;
            }
            Plan::Run(run) => run,
        };
        let (r, saved) = engine::operate(config, st, t, run, op == Op::Restart, opts);
        failed |= !r.ok;
        // the command that ran, named as the policy names it (a restart of an exec action
        // without restart: runs its start:)
        let label = if run == op {
            op.as_str().to_string()
        } else {
            format!("{} (its {}: command)", op.as_str(), run.as_str())
        };
        let _ = writeln!(
            out,
            "{}: {label} {}{}",
            t.name,
            how(&r),
            match op {
                Op::Stop => "; paused: it stays down until `neon-watchdog start`",
                _ if st.targets.get(&t.name).is_some_and(|s| s.paused.is_some()) => {
                    "; still paused (`neon-watchdog resume` to watch it again)"
                }
                Op::Start if !r.ok => "; watched again: the policy takes it from here",
                _ => "",
            }
        );
        if !saved {
            out.push_str("warning: the state file could not be saved (see the log)\n");
        }
    }
    let text = crate::util::printable_lines(&config.redactor.redact(&out));
    Reply::new(if failed { Exit::Internal } else { Exit::Ok }, text)
}

/// The pause reason of `stop`.
const STOPPED: &str = "stopped by an operator";

fn check(config: &Config, st: &mut StateFile, targets: &[&Target], opts: Options) -> Reply {
    let mut out = String::new();
    let mut names = Vec::new();
    let mut paused = Vec::new();
    for t in targets {
        if !t.enabled {
            return Reply::usage(format!(
                "check: target {:?} is disabled in the config (enabled: false): it is not watched",
                t.name
            ));
        }
        if st.targets.get(&t.name).is_some_and(|s| s.paused.is_some()) {
            paused.push(*t);
        } else {
            names.push(t.name.clone());
        }
    }
    let started = SystemTime::now();
    let mut exit = Exit::Ok;
    if !names.is_empty() {
        let report = engine::pass_of(config, st, opts, Some(&names));
        engine::log_pass(&report);
        exit = report.exit();
        let now = SystemTime::now();
        for r in &report.targets {
            let s = st.targets.get(&r.name).cloned().unwrap_or_default();
            let _ = write!(out, "{}: {}", r.name, s.status.as_str());
            if let (false, Some(reason)) = (r.verdict.is_healthy(), &s.last_reason) {
                let _ = write!(out, " - {reason}");
            }
            // what this pass did about it
            for a in s.actions.iter().filter(|a| a.at >= started) {
                let _ = write!(
                    out,
                    "; {} by the policy: {}{}, {} ms",
                    a.kind,
                    if a.ok { "ok" } else { "failed" },
                    a.exit.map(|c| format!(" (exit {c})")).unwrap_or_default(),
                    a.duration_ms
                );
            }
            if r.verdict != Verdict::Healthy {
                let t = targets.iter().find(|t| t.name == r.name);
                if let Some(w) = t.and_then(|t| policy::waiting(&s, &t.policy, now)) {
                    let until = until_words(&w, now);
                    let _ = write!(
                        out,
                        "; next action waits: {}{until} ({})",
                        w.reason, w.detail
                    );
                }
            }
            out.push('\n');
        }
    }
    // a paused target is looked at, not touched: its checks run, nothing is decided or kept
    for t in paused {
        let o = engine::probe(config, st, t);
        let verdict = if o.verdict.is_healthy() {
            "healthy".to_string()
        } else if o.verdict == Verdict::Unknown {
            format!("unknown - {}", o.reason)
        } else {
            if exit == Exit::Ok {
                exit = Exit::Failing;
            }
            format!("failing - {}", o.reason)
        };
        let _ = writeln!(
            out,
            "{}: {verdict} (paused: nothing done, nothing kept; `neon-watchdog resume {}` to watch it again)",
            t.name, t.name
        );
    }
    let text = crate::util::printable_lines(&config.redactor.redact(&out));
    Reply::new(exit, text)
}

fn reset(
    config: &Config,
    st: &mut StateFile,
    targets: &[&Target],
    dry_run: bool,
    opts: Options,
) -> Reply {
    let now = SystemTime::now();
    let mut out = String::new();
    let mut changed = 0;
    for t in targets {
        let Some(s) = st.targets.get_mut(&t.name) else {
            let _ = writeln!(out, "{}: nothing to reset (never checked)", t.name);
            continue;
        };
        let before = s.clone();
        let cleared = policy::reset(s, now);
        let mut what = Vec::new();
        if before.consecutive_failures > 0 {
            what.push(format!("{} failures", before.consecutive_failures));
        }
        if before.status == Health::GaveUp {
            what.push("gave_up".to_string());
        }
        if before.restarts_since_healthy > 0 {
            let n = before.restarts_since_healthy;
            what.push(format!(
                "the count of {n} restart{} without a healthy check (what backoff and give-up go by)",
                if n == 1 { "" } else { "s" }
            ));
        }
        if cleared {
            changed += 1;
            info!(
                target: NOTICE,
                target = %t.name,
                by = "operator",
                from = before.status.as_str(),
                failures = before.consecutive_failures,
                dry_run,
                "target reset: {}",
                match (what.is_empty(), dry_run) {
                    (true, false) => "status cleared".to_string(),
                    (true, true) => "would clear its status".to_string(),
                    (false, false) => format!("cleared {}", what.join(", ")),
                    (false, true) => format!("would clear {}", what.join(", ")),
                }
            );
        }
        let verb = if dry_run { "would clear" } else { "cleared" };
        let _ = write!(
            out,
            "{}: {}",
            t.name,
            match (cleared, what.is_empty()) {
                (false, _) => format!("nothing to reset ({})", before.status.as_str()),
                (true, true) => format!("{verb} its {} status", before.status.as_str()),
                (true, false) => format!("{verb} {}", what.join(", ")),
            }
        );
        // what still holds: a reset never opens the door to a restart storm
        match policy::waiting(s, &t.policy, now) {
            Some(w) if w.reason == "cooldown" || w.reason == "rate_limit" => {
                let until = until_words(&w, now);
                let _ = write!(
                    out,
                    "; the {} still holds{until} ({}): `neon-watchdog restart {}` acts now",
                    if w.reason == "cooldown" {
                        "cooldown"
                    } else {
                        "hourly cap"
                    },
                    w.detail,
                    t.name
                );
            }
            Some(w) if w.reason == "paused" => {
                let _ = write!(out, "; still paused (`neon-watchdog resume {}`)", t.name);
            }
            _ if cleared => out.push_str("; the next failed check acts again"),
            _ => {}
        }
        out.push('\n');
        if dry_run {
            *s = before;
        }
    }
    if changed > 0 && !dry_run && !save(config, st, opts, &mut out) && !opts.in_process_state {
        return Reply::new(Exit::Internal, out);
    }
    Reply::new(
        Exit::Ok,
        crate::util::printable_lines(&config.redactor.redact(&out)),
    )
}

/// How long a verb waits for a pass of the timer holding the lock to end.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A verb without a running daemon: take the lock (waiting up to [`LOCK_WAIT`] for a pass of
/// the timer to end), load the state file, apply, save.
pub fn direct(config: &Config, verb: &Verb, opts: Options) -> Reply {
    if let Err(r) = select(config, verb) {
        return r;
    }
    if let Some(why) = &config.state_untrusted {
        return Reply::new(
            Exit::Internal,
            format!("{}: {why}; nothing was changed\n", verb.name()),
        );
    }
    let dry_run = matches!(verb, Verb::Reset { dry_run: true, .. }) || opts.dry_run;
    let started = std::time::Instant::now();
    let _lock = if dry_run {
        None
    } else {
        loop {
            match crate::state::lock(&config.lock_file) {
                Ok(l) => break Some(l),
                Err(crate::error::Error::Locked { holder, .. }) => {
                    if started.elapsed() >= LOCK_WAIT {
                        return Reply::new(
                            Exit::Locked,
                            format!(
                                "{}: another neon-watchdog{holder} holds the lock {} and answers on no control socket (a `run` whose socket could not be made: its log says why); waited {}s; nothing was changed\n",
                                verb.name(),
                                config.lock_file.display(),
                                LOCK_WAIT.as_secs()
                            ),
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                // the state is root's: say so, as the daemon's socket does (not "set
                // state_file elsewhere": a private state would pause nothing)
                Err(e)
                    if !nix::unistd::geteuid().is_root()
                        && e.to_string().to_lowercase().contains("permission denied") =>
                {
                    return Reply::new(
                        Exit::NoPermission,
                        format!(
                            "permission denied: the state of this watchdog ({}) is root's; run it as root (sudo neon-watchdog {} ...); nothing was changed ({e})\n",
                            config.state_file.display(),
                            verb.name()
                        ),
                    )
                }
                Err(e) => return Reply::new(Exit::Internal, format!("{e}; nothing was changed\n")),
            }
        }
    };
    let opts = Options {
        dry_run,
        in_process_state: false,
        unlocked: false,
        one_pass: true,
    };
    let mut st = engine::load_state(config, opts);
    apply(config, &mut st, verb, opts)
}
