//! Checks: each turns one [`CheckSpec`] into OK or FAIL with a reason and its latency.
//! One file per kind; this module dispatches.

mod command;
mod pid_file;
mod process;
mod tcp;

use crate::config::{Check, CheckSpec};
use crate::procs::Snapshot;
use crate::redact::Redactor;
use std::time::{Duration, Instant};

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub ok: bool,
    /// Why it failed (empty when OK).
    pub reason: String,
    /// The process found (process_name, pid_file).
    pub pid: Option<i32>,
    /// How many live processes matched (process_name), when more than one.
    pub matches: Option<usize>,
    /// The command's exit code (command).
    pub exit: Option<i32>,
    /// The address connected to (tcp_port).
    pub addr: Option<String>,
    /// Kind-specific figures, each logged as its own `key=value` on the check line (None:
    /// not logged). Floats are rounded to one decimal by the check.
    pub figures: Figures,
    /// True when a process/pid-file check found the process not running at all (so the
    /// policy prefers `start` over `restart`).
    pub not_running: bool,
    /// The check could not be carried out for a reason of the watchdog's own (out of
    /// processes or memory): a FAIL that says nothing about the target.
    pub inconclusive: bool,
    pub latency: Duration,
}

impl CheckResult {
    pub fn ok() -> Self {
        CheckResult {
            ok: true,
            reason: String::new(),
            pid: None,
            matches: None,
            exit: None,
            addr: None,
            figures: Figures::default(),
            not_running: false,
            inconclusive: false,
            latency: Duration::ZERO,
        }
    }

    pub fn fail(reason: impl Into<String>) -> Self {
        CheckResult {
            ok: false,
            reason: reason.into(),
            ..CheckResult::ok()
        }
    }

    /// A FAIL that says nothing about the target (see `inconclusive`).
    pub fn inconclusive(reason: impl Into<String>) -> Self {
        CheckResult {
            inconclusive: true,
            ..CheckResult::fail(reason)
        }
    }

    /// A FAIL because the process is not running at all.
    pub fn down(reason: impl Into<String>) -> Self {
        CheckResult {
            not_running: true,
            ..CheckResult::fail(reason)
        }
    }
}

/// Figures a check reports beyond OK/FAIL, for the log line (`status=503 nrestarts=4`).
/// One field per key: every check line is built from the same list, so both log formats show
/// the same keys, and a kind adds a key here and in `engine::log_check`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// HTTP status code (http).
    pub status: Option<u16>,
    /// What the target says about itself: `active/running` (systemd_unit), `running/healthy`
    /// (docker).
    pub state: Option<String>,
    /// systemd's restart counter of the unit (systemd_unit).
    pub nrestarts: Option<u32>,
    /// Resident memory of the (worst) process, MiB (resource limits).
    pub rss_mb: Option<u64>,
    /// CPU since the previous pass, percent of one core (resource limits).
    pub cpu_percent: Option<f64>,
    /// Number of child processes (resource limits).
    pub children: Option<u32>,
    /// Age of the file in seconds (file_fresh).
    pub age_s: Option<u64>,
    /// Free space (disk_free).
    pub free_percent: Option<f64>,
    pub free_mb: Option<u64>,
    /// Host figures (system).
    pub load_per_core: Option<f64>,
    pub mem_used_percent: Option<f64>,
}

/// What checks of one pass share: the /proc snapshot (taken once per pass) and the
/// redactor (command output is masked before it is cut to a tail).
#[derive(Default)]
pub struct PassContext {
    snapshot: Snapshot,
    pub redactor: Redactor,
}

impl PassContext {
    /// Scans /proc here, once, if `process_names` is not empty: before any command of the
    /// pass runs, so the watchdog's own commands can never satisfy a process check.
    pub fn new(process_names: &[String], redactor: Redactor) -> Self {
        let snapshot = if process_names.is_empty() {
            Snapshot::default()
        } else {
            Snapshot::take(process_names)
        };
        PassContext { snapshot, redactor }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

/// Run one check, timing it.
pub fn run(spec: &CheckSpec, cx: &PassContext) -> CheckResult {
    let start = Instant::now();
    let mut r = match &spec.check {
        Check::ProcessName {
            name,
            cmdline_contains,
        } => process::check(cx.snapshot(), name, cmdline_contains.as_deref()),
        Check::PidFile { path, process_name } => pid_file::check(path, process_name.as_deref()),
        Check::TcpPort { host, port } => tcp::check(host, *port, spec.timeout),
        Check::Command {
            argv,
            ok_exit_codes,
        } => command::check(argv, ok_exit_codes, spec.timeout, &cx.redactor),
    };
    r.latency = start.elapsed();
    r
}

/// An OS error as a short lowercase phrase: "connection refused", "permission denied".
pub fn os_error(e: &std::io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        if code == nix::libc::EAGAIN {
            return "resource temporarily unavailable (process limit reached?)".to_string();
        }
        let desc = nix::errno::Errno::from_raw(code).desc();
        let mut s = desc.to_string();
        if let Some(first) = s.get(0..1) {
            let lower = first.to_lowercase();
            s.replace_range(0..1, &lower);
        }
        return s;
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => e.to_string(),
    }
}

/// "3s", "1.5s"
pub fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
