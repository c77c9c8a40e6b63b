//! Checks: each turns one [`CheckSpec`] into OK or FAIL with a reason and its latency.
//! One file per kind; this module dispatches.

mod command;
mod disk_free;
mod docker;
mod file_fresh;
mod http;
mod pid_file;
mod process;
mod resources;
mod system;
mod systemd_unit;
mod tcp;
mod tls_cert;

use crate::config::{Check, CheckSpec};
use crate::policy::Verdict;
use crate::procs::CpuSample;
use crate::procs::Snapshot;
use crate::redact::Redactor;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Healthy; failing (and whether the process is not running at all: the policy then
    /// prefers `start`); or unknown: the check could not be carried out for a reason of the
    /// watchdog's own (out of processes or memory), a FAIL that says nothing about the target.
    pub verdict: Verdict,
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
    pub latency: Duration,
}

impl CheckResult {
    /// The check passed.
    pub fn is_ok(&self) -> bool {
        self.verdict.is_healthy()
    }

    pub fn ok() -> Self {
        CheckResult {
            verdict: Verdict::Healthy,
            reason: String::new(),
            pid: None,
            matches: None,
            exit: None,
            addr: None,
            figures: Figures::default(),
            latency: Duration::ZERO,
        }
    }

    pub fn fail(reason: impl Into<String>) -> Self {
        CheckResult {
            verdict: Verdict::FAILING,
            reason: reason.into(),
            ..CheckResult::ok()
        }
    }

    /// A FAIL that says nothing about the target (see `inconclusive`).
    pub fn unknown(reason: impl Into<String>) -> Self {
        CheckResult {
            verdict: Verdict::Unknown,
            ..CheckResult::fail(reason)
        }
    }

    /// A FAIL because the process is not running at all.
    pub fn down(reason: impl Into<String>) -> Self {
        CheckResult {
            verdict: Verdict::NOT_RUNNING,
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
    /// Whole days until the certificate expires, negative once it has (tls_cert).
    pub days_left: Option<i64>,
    /// The certificate's notAfter date, UTC: `2026-12-06` (tls_cert).
    pub expires: Option<String>,
}

/// What checks of one pass share: the /proc snapshot (taken once per pass), the redactor
/// (command output is masked before it is cut to a tail), and the CPU samples of the previous
/// pass and this one (`max_cpu_percent`).
#[derive(Default)]
pub struct PassContext {
    snapshot: Snapshot,
    pub redactor: Redactor,
    prev_cpu: BTreeMap<String, CpuSample>,
    cpu: Mutex<BTreeMap<String, CpuSample>>,
}

impl PassContext {
    /// Scans /proc here, once, if `scan` (some check needs it): before any command of the
    /// pass runs, so the watchdog's own commands can never satisfy a process check.
    /// `process_names` are the programs process checks look for; `uids`: some check asks for
    /// a user, so each process's owner is read.
    pub fn new(
        process_names: &[String],
        scan: bool,
        uids: bool,
        redactor: Redactor,
        prev_cpu: BTreeMap<String, CpuSample>,
    ) -> Self {
        let snapshot = if scan {
            Snapshot::take(process_names, uids)
        } else {
            Snapshot::default()
        };
        PassContext {
            snapshot,
            redactor,
            prev_cpu,
            cpu: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The CPU samples taken this pass (for the state file).
    pub fn take_cpu_samples(&self) -> BTreeMap<String, CpuSample> {
        self.cpu
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }
}

/// Run one check, timing it.
pub fn run(spec: &CheckSpec, cx: &PassContext) -> CheckResult {
    let start = Instant::now();
    let mut r = match &spec.check {
        Check::ProcessName {
            name,
            cmdline_contains,
            cmdline_regex,
            user,
            limits,
        } => process::check(
            cx,
            &process::Want {
                name,
                cmdline_contains: cmdline_contains.as_deref(),
                cmdline_regex: cmdline_regex.as_ref(),
                user: *user,
            },
            limits,
        ),
        Check::PidFile {
            path,
            process_name,
            user,
            limits,
        } => pid_file::check(cx, path, process_name.as_deref(), *user, limits),
        Check::TcpPort { host, port } => tcp::check(host, *port, spec.timeout),
        Check::Command {
            argv,
            ok_exit_codes,
            run_as,
        } => command::check(
            argv,
            ok_exit_codes,
            run_as.as_ref(),
            spec.timeout,
            &cx.redactor,
        ),
        Check::Http(h) => http::check(h, spec.timeout),
        Check::TlsCert(t) => tls_cert::check(t, spec.timeout),
        Check::Docker { container, socket } => docker::check(socket, container, spec.timeout),
        Check::SystemdUnit { unit, systemctl } => {
            systemd_unit::check(systemctl, unit, spec.timeout, &cx.redactor)
        }
        Check::FileFresh { path, max_age } => file_fresh::check(path, *max_age),
        Check::DiskFree {
            path,
            min_free_percent,
            min_free_mb,
        } => disk_free::check(path, *min_free_percent, *min_free_mb),
        Check::System {
            max_load_per_core,
            max_memory_used_percent,
        } => system::check(*max_load_per_core, *max_memory_used_percent),
    };
    r.latency = start.elapsed();
    r
}

/// For `test-config`: the process checks without `user:` that a pass would fail now because
/// the program runs only as another user than root or a system account (a service run as a
/// login user, found before process checks counted only the service's owners): one message
/// each, naming the target, the check and the `user:` to write. Looks at /proc once.
pub fn owner_warnings(config: &crate::config::Config) -> Vec<String> {
    let wanted: Vec<(&crate::config::Target, usize, &CheckSpec)> = config
        .targets
        .iter()
        .flat_map(|t| t.checks.iter().enumerate().map(move |(i, c)| (t, i, c)))
        .filter(|(_, _, c)| {
            matches!(
                &c.check,
                Check::ProcessName { user: None, .. } | Check::PidFile { user: None, .. }
            )
        })
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = wanted
        .iter()
        .filter_map(|(_, _, c)| match &c.check {
            Check::ProcessName { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let cx = PassContext::new(
        &names,
        true,
        false,
        config.redactor.clone(),
        BTreeMap::new(),
    );
    wanted
        .into_iter()
        .filter_map(|(t, i, spec)| {
            // only whose processes count matters here: resource limits are not judged (no CPU
            // sample is taken, no debug line logged)
            let mut bare = spec.clone();
            if let Check::ProcessName { limits, .. } | Check::PidFile { limits, .. } =
                &mut bare.check
            {
                *limits = crate::config::Limits::default();
            }
            let r = run(&bare, &cx);
            (r.reason.contains(LOOK_ALIKE) || r.reason.contains(pid_file::NO_TRUSTED_OWNER)).then(
                || {
                    format!(
                        "{}.checks[{i}] ({}): a pass now would fail: {}",
                        t.origin.path(),
                        spec.label(&config.redactor),
                        r.reason
                    )
                },
            )
        })
        .collect()
}

/// What a FAIL reason says of a process it did not count because of its owner.
const LOOK_ALIKE: &str = "a look-alike";
