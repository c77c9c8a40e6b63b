//! Stage two: the validated config every other module works with. Values here are checked and
//! complete (defaults applied), so the rest of the program never re-validates.

use crate::redact::Redactor;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for messages).
    pub source: PathBuf,
    pub interval: Duration,
    pub timeout: Duration,
    pub log_level: Option<LogLevel>,
    pub state_file: PathBuf,
    pub lock_file: PathBuf,
    pub max_parallel: usize,
    pub systemctl_path: String,
    pub default_policy: Policy,
    pub targets: Vec<Target>,
    /// Repeat `down` while a target stays down (None: never).
    pub reminder_every: Option<Duration>,
    /// Who is told about events (`notify:`).
    pub notify: Vec<Notifier>,
    /// Pinged at the end of every pass (`heartbeat:`).
    pub heartbeat: Option<Heartbeat>,
    pub metrics: MetricsConfig,
    /// Masks every `${NAME}` value this config expanded.
    pub redactor: Redactor,
}

impl Config {
    pub fn enabled_targets(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter().filter(|t| t.enabled)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.to_ascii_lowercase().as_str() {
            "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Consecutive failed passes before acting (>= 1).
    pub fail_threshold: u32,
    /// Minimum time between two actions; zero means none.
    pub restart_cooldown: Duration,
    /// At most this many actions in any sliding hour (>= 1).
    pub max_restarts_per_hour: u32,
    /// After an action, failures are reported but not counted for this long (zero: none).
    pub restart_grace: Duration,
    /// Wait before the 2nd restart without a healthy pass in between; zero: no backoff.
    pub backoff_initial: Duration,
    /// Each further restart without a healthy pass waits this many times longer (>= 1).
    pub backoff_multiplier: f64,
    /// The longest backoff wait; zero: no cap.
    pub backoff_max: Duration,
    /// Give up after this many restarts without a healthy pass in between; zero: never.
    pub give_up_after_restarts: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fail_threshold: 1,
            restart_cooldown: Duration::from_secs(60),
            max_restarts_per_hour: 10,
            restart_grace: Duration::ZERO,
            backoff_initial: Duration::ZERO,
            backoff_multiplier: 2.0,
            backoff_max: Duration::ZERO,
            give_up_after_restarts: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub enabled: bool,
    pub checks: Vec<CheckSpec>,
    pub policy: Policy,
    pub action: Action,
    /// Run once when the target gives up (`give_up_after_restarts`).
    pub on_give_up: Option<OnGiveUp>,
}

/// `on_give_up: {exec: [argv...]}`: isolate, page, open a ticket.
#[derive(Debug, Clone)]
pub struct OnGiveUp {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub check: Check,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum Check {
    /// A live (non-zombie) process whose comm, argv[0] basename or exe basename is `name`.
    ProcessName {
        name: String,
        cmdline_contains: Option<String>,
    },
    /// The pid in `path` is alive and not a zombie; with `process_name`, it must also be that
    /// program (guards against a reused PID).
    PidFile {
        path: PathBuf,
        process_name: Option<String>,
    },
    /// A TCP connect to `host:port` succeeds within the timeout.
    TcpPort { host: String, port: u16 },
    /// The argv exits with one of `ok_exit_codes` within the timeout.
    Command {
        argv: Vec<String>,
        ok_exit_codes: Vec<i32>,
    },
}

impl Check {
    pub fn kind(&self) -> &'static str {
        match self {
            Check::ProcessName { .. } => "process_name",
            Check::PidFile { .. } => "pid_file",
            Check::TcpPort { .. } => "tcp_port",
            Check::Command { .. } => "command",
        }
    }

    /// A short human description, for logs and `test-config` (not yet redacted).
    pub fn describe(&self, redactor: &Redactor) -> String {
        match self {
            Check::ProcessName {
                name,
                cmdline_contains,
            } => match cmdline_contains {
                Some(c) => format!("process_name {name} (cmdline contains {c:?})"),
                None => format!("process_name {name}"),
            },
            Check::PidFile { path, process_name } => match process_name {
                Some(n) => format!("pid_file {} (process {n})", path.display()),
                None => format!("pid_file {}", path.display()),
            },
            Check::TcpPort { host, port } => {
                if host.contains(':') {
                    format!("tcp_port [{host}]:{port}")
                } else {
                    format!("tcp_port {host}:{port}")
                }
            }
            Check::Command { argv, .. } => format!("command {}", redactor.argv(argv)),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Monitor only.
    None,
    Exec(ExecAction),
    Systemd(SystemdAction),
}

#[derive(Debug, Clone)]
pub struct ExecAction {
    pub start: Option<Vec<String>>,
    pub restart: Option<Vec<String>>,
    pub timeout: Duration,
    pub detach: bool,
    pub log_file: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SystemdAction {
    pub unit: String,
    pub method: SystemdMethod,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemdMethod {
    Restart,
    Start,
    ReloadOrRestart,
}

impl SystemdMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SystemdMethod::Restart => "restart",
            SystemdMethod::Start => "start",
            SystemdMethod::ReloadOrRestart => "reload-or-restart",
        }
    }
}

/// One notifier and the events it takes.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// Stable name for logs and the state file: `notify[0] webhook https://hooks.slack.com`
    /// (no path or query: they are often the secret).
    pub name: String,
    /// Changes when the notifier's destination changes: a delivery owed to a notifier that is
    /// gone or changed is dropped.
    pub key: String,
    pub kind: NotifierKind,
    pub events: Vec<crate::events::EventKind>,
}

#[derive(Debug, Clone)]
pub enum NotifierKind {
    Webhook(Webhook),
    /// The event as JSON on stdin, `NEON_WATCHDOG_*` in the environment.
    Exec {
        argv: Vec<String>,
        timeout: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub format: WebhookFormat,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// Attempts after the first one, inside the pass.
    pub retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Slack,
    Discord,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Discord => "discord",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub url: String,
    /// GET `url/start` at the beginning of a pass.
    pub send_start: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// node exporter textfile, written atomically at the end of each pass.
    pub textfile: Option<PathBuf>,
    /// `run` only: serve /metrics and /healthz here.
    pub listen: Option<std::net::SocketAddr>,
}
