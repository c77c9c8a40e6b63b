//! `run`: a pass every `interval` until SIGTERM/SIGINT, which let the pass in flight finish,
//! save state and exit 0. SIGHUP re-reads the config (a bad one is reported and ignored).
//! Between passes, orphans adopted as subreaper are reaped, and the metrics endpoint (if any)
//! serves the last pass's text.

use crate::config::Config;
use crate::engine::{self, Options};
use crate::error::Error;
use crate::exit::Exit;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// The signals `run` acts on, each a flag set by its handler (signal-hook: the handler only
/// stores to an atomic, which is async-signal-safe).
struct Signals {
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Signals {
        let s = Signals {
            term: Arc::new(AtomicBool::new(false)),
            int: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
        };
        for (sig, flag) in [(SIGTERM, &s.term), (SIGINT, &s.int), (SIGHUP, &s.hup)] {
            if let Err(e) = signal_hook::flag::register(sig, Arc::clone(flag)) {
                warn!(signal = sig, err = %e, "cannot handle this signal; it keeps its default action");
            }
        }
        s
    }

    /// The stop signal received, if any.
    fn stop(&self) -> Option<&'static str> {
        if self.term.load(Ordering::SeqCst) {
            Some("SIGTERM")
        } else if self.int.load(Ordering::SeqCst) {
            Some("SIGINT")
        } else {
            None
        }
    }

    /// A SIGHUP came since the last call.
    fn reload(&self) -> bool {
        self.hup.swap(false, Ordering::SeqCst)
    }
}

/// The loop. `reload` loads the config again; `on_reload` lets the caller update logging.
pub fn run(
    mut config: Config,
    mut opts: Options,
    reload: &dyn Fn() -> Result<Config, String>,
    on_reload: &dyn Fn(&Config),
) -> Result<Exit, Error> {
    let mut systemd = crate::sd_notify::Notifier::from_env();
    let signals = Signals::install();
    opts.in_process_state = true;
    opts.one_pass = false;
    engine::log_start(&config, "run", opts);
    let mut lock = engine::lock(&config, &mut opts)?;
    let mut st = engine::load_state(&config, opts);
    let shared = Arc::new(Mutex::new(crate::metrics::Shared::default()));
    let listen = config.metrics.listen;
    // another process holding the port, told on every STATUS line: what answers there is not us
    let squatted = listen.and_then(|addr| crate::metrics::serve_or_log(addr, shared.clone()));
    // the operator's verbs reach the state this loop holds through it (not with --dry-run:
    // a verb would act)
    let control = if opts.dry_run {
        None
    } else {
        crate::control::Server::start(&config.control_socket)
    };
    // started: the config is valid, the lock taken, the state read
    systemd.send("READY=1\nSTATUS=first pass running");
    // the last reload's refusal, shown on every STATUS line until a reload succeeds
    let mut refused: Option<String> = None;
    let mut reloads = 0u64;
    loop {
        let started = Instant::now();
        systemd.ping();
        if !relock(&config, &mut lock, &mut opts) {
            systemd.send("STATUS=another neon-watchdog holds the lock; waiting for it");
            wait(
                &signals,
                started + config.interval,
                &mut systemd,
                control.as_ref(),
                &mut |call| answer_unlocked(call, &config, &st),
            );
            if let Some(signal) = signals.stop() {
                systemd.send("STOPPING=1");
                info!(signal, "stop signal received; exiting");
                return Ok(Exit::Ok);
            }
            continue;
        }
        reap_orphans();
        let report = engine::pass(&config, &mut st, opts);
        // served before "pass done" is logged: whoever acts on that line finds this pass's
        // metrics on /metrics, not the previous pass's (or none)
        if let (Some(text), Ok(mut sh)) = (&report.metrics, shared.lock()) {
            sh.text = text.clone();
            sh.last_pass = Some(Instant::now());
            // a pass is due every interval; three missed in a row is a hung loop
            sh.stale_after = (config.interval * 3).max(Duration::from_secs(60));
        }
        crate::web::publish(&shared, &config, &st);
        engine::log_pass(&report);
        systemd.ping();
        let mut status = status_line(&report, refused.as_deref(), squatted.as_deref());
        if systemd.enabled() {
            systemd.send(&status);
        }
        reap_orphans();
        let next = started + config.interval;
        // a SIGHUP is answered even when passes take longer than the interval
        let mut first = true;
        while signals.stop().is_none() && (first || Instant::now() < next) {
            first = false;
            systemd.ping();
            if signals.reload() {
                systemd.reloading();
                let answer = match reload() {
                    Ok(c)
                        if c.lock_file != config.lock_file || c.state_file != config.state_file =>
                    {
                        let why = "state_file and lock_file cannot change while running; restart neon-watchdog instead";
                        error!("config reload refused: {why}");
                        Err(why.to_string())
                    }
                    Ok(c) => {
                        if c.control_socket != config.control_socket {
                            warn!("control_socket changed: the control socket moves only when neon-watchdog restarts");
                        }
                        if c.metrics.listen != listen {
                            warn!("metrics.listen changed: the metrics endpoint moves only when neon-watchdog restarts");
                        }
                        on_reload(&c);
                        config = c;
                        info!(
                            targets = config.enabled_targets().count(),
                            "config reloaded"
                        );
                        Ok(())
                    }
                    Err(e) => {
                        error!(err = %e, "config reload failed; keeping the running config");
                        Err(e)
                    }
                };
                refused = answer.as_ref().err().map(|e| first_line(e));
                status = status_line(&report, refused.as_deref(), squatted.as_deref());
                // the STATUS first, so that `systemctl status` shows the refusal by the time
                // `systemctl reload` (waiting for the answer below) returns
                systemd.send(&format!("READY=1\n{status}"));
                answer_reload(&mut reloads, &answer);
            }
            // the operator's verbs, between passes, on the state this loop holds
            let step =
                Duration::from_millis(100).min(next.saturating_duration_since(Instant::now()));
            if let Some(call) = idle(control.as_ref(), step) {
                answer(call, &config, &mut st, opts);
                // the status page shows what the verb changed, not the last pass's state
                crate::web::publish(&shared, &config, &st);
            }
        }
        if let Some(signal) = signals.stop() {
            systemd.send("STOPPING=1");
            if report.saved {
                info!(signal, "stop signal received; state saved, exiting");
            } else {
                warn!(signal, "stop signal received; exiting, but the state could not be saved (see the errors above)");
            }
            return Ok(Exit::Ok);
        }
    }
}

/// Before each pass: the lock must still be on the file its path names. If the lock file
/// (or the whole state directory, which the README says may be deleted) was removed, take the
/// lock again on a new file; false (skip this pass) if another instance took it meanwhile.
fn relock(config: &Config, lock: &mut Option<crate::state::Lock>, opts: &mut Options) -> bool {
    if opts.dry_run || lock.as_ref().is_some_and(|l| l.still_held()) {
        return true;
    }
    let was_unlocked = lock.is_none();
    match engine::lock(config, opts) {
        Ok(new) => {
            if !was_unlocked {
                warn!(
                    lock_file = %config.lock_file.display(),
                    "the lock file was removed or replaced while running; took the lock again"
                );
            }
            *lock = new;
            true
        }
        Err(e) => {
            error!("{e}; skipping this pass");
            *lock = None;
            false
        }
    }
}

/// systemd's one-line status of the service (`systemctl status`): the last pass's counts,
/// each failing target's name right after the failing count, and a refused reload (`refused`:
/// the last reload was refused, for this reason) until a reload succeeds, and another process
/// holding `metrics.listen` (`squatted`: what to say of it) until a restart.
fn status_line(
    report: &engine::PassReport,
    refused: Option<&str>,
    squatted: Option<&str>,
) -> String {
    let failing: Vec<&str> = report
        .targets
        .iter()
        .filter(|t| matches!(t.verdict, crate::policy::Verdict::Failing { .. }))
        .map(|t| t.name.as_str())
        .take(5)
        .collect();
    let mut s = format!(
        "STATUS={} healthy, {} failing",
        report.healthy, report.failing
    );
    if !failing.is_empty() {
        s.push_str(&format!(
            " ({}{})",
            failing.join(", "),
            if report.failing > 5 { ", ..." } else { "" }
        ));
    }
    s.push_str(&format!(
        ", {} unknown; last pass {} ms",
        report.unknown,
        report.duration.as_millis()
    ));
    // why stays out of it: anyone may read a unit's status, a config error may quote the
    // config; the journal and the reload's answer (root's) say why
    if refused.is_some() {
        s.push_str(
            "; new config refused, running the previous one (journalctl -u neon-watchdog-daemon)",
        );
    }
    if let Some(squatted) = squatted {
        s.push_str("; ");
        s.push_str(squatted);
    }
    s
}

/// The first line of a message, at most 200 characters: a STATUS= line is one line.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

/// The answer to a SIGHUP for the unit's `ExecReload=`, which waits for it (so that
/// `systemctl reload` returns once the config is reloaded, and fails when it was refused):
/// `$RUNTIME_DIRECTORY/reload` holds `<pid>.<n> reloaded` or `<pid>.<n> refused: <why>`, a
/// new first word each time; root's only (the reason may quote the config). Without
/// `RUNTIME_DIRECTORY` (not under systemd) nothing is written.
fn answer_reload(reloads: &mut u64, answer: &Result<(), String>) {
    *reloads += 1;
    let Some(dir) = std::env::var_os("RUNTIME_DIRECTORY") else {
        return;
    };
    // systemd sets it to an absolute path (several, colon-separated, for several directories)
    let dir = std::path::PathBuf::from(dir);
    if !dir.is_absolute() {
        return;
    }
    let text = match answer {
        Ok(()) => format!("{}.{} reloaded\n", std::process::id(), reloads),
        Err(why) => format!(
            "{}.{} refused: {}\n",
            std::process::id(),
            reloads,
            first_line(why)
        ),
    };
    if let Err(e) = crate::files::write_atomic(&dir.join("reload"), text.as_bytes(), 0o600, 0o755) {
        warn!(err = %e, "cannot write the reload's answer; `systemctl reload` will time out waiting for it");
    }
}

/// Sleep until `until` or a stop signal, telling systemd the loop is alive; calls on the
/// control socket meanwhile are answered by `on_call`.
fn wait(
    signals: &Signals,
    until: Instant,
    systemd: &mut crate::sd_notify::Notifier,
    control: Option<&crate::control::Server>,
    on_call: &mut dyn FnMut(crate::control::Call),
) {
    while signals.stop().is_none() && Instant::now() < until {
        systemd.ping();
        let step = Duration::from_millis(100).min(until.saturating_duration_since(Instant::now()));
        if let Some(call) = idle(control, step) {
            on_call(call);
        }
    }
}

/// Wait `step` at most: for a call on the control socket, if there is one (returned at
/// once), else just the time.
fn idle(control: Option<&crate::control::Server>, step: Duration) -> Option<crate::control::Call> {
    match control {
        Some(c) => c.next(step),
        None => {
            std::thread::sleep(step);
            None
        }
    }
}

/// A call on the control socket, between passes: a verb applied to the state this loop
/// holds (saved as a pass saves it), or the status document from it.
fn answer(
    call: crate::control::Call,
    config: &Config,
    st: &mut crate::state::StateFile,
    opts: Options,
) {
    match &call.request {
        crate::control::Request::Verb(v) => {
            let reply = crate::ops::apply(config, st, v, opts);
            call.reply(&reply);
        }
        crate::control::Request::Status => status_document(call, config, st),
    }
}

/// While another instance holds the lock, verbs are refused (75) and the status is this
/// loop's memory.
fn answer_unlocked(call: crate::control::Call, config: &Config, st: &crate::state::StateFile) {
    match &call.request {
        crate::control::Request::Verb(v) => {
            let reply = crate::ops::Reply {
                exit: Exit::Locked.code(),
                text: format!(
                    "{}: this neon-watchdog run does not hold the lock {} right now (another instance took it; see its log); nothing was done\n",
                    v.name(),
                    config.lock_file.display()
                ),
            };
            call.reply(&reply);
        }
        crate::control::Request::Status => status_document(call, config, st),
    }
}

/// `GET /v1/status`: the `status --json` document of the state this loop holds.
fn status_document(call: crate::control::Call, config: &Config, st: &crate::state::StateFile) {
    let report = crate::status::report(config, st, std::time::SystemTime::now());
    match serde_json::to_string_pretty(&report) {
        Ok(mut s) => {
            s.push('\n');
            call.document(s);
        }
        Err(e) => call.reply(&crate::ops::Reply {
            exit: Exit::Internal.code(),
            text: format!("cannot render the status: {e}\n"),
        }),
    }
}

/// Between passes no command of ours runs, so any child left is an adopted orphan (we are
/// a subreaper): reap them so none lingers as a zombie.
fn reap_orphans() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
