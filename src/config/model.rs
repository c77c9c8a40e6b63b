//! Stage two: the validated config every other module works with. Values here are checked and
//! complete (defaults applied), so the rest of the program never re-validates.

use crate::redact::Redactor;
pub use crate::spawn::RunAs;
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
    /// Which check results are logged (`log_checks:`).
    pub log_checks: LogChecks,
    pub state_file: PathBuf,
    /// As root, `state_file` lies where other users can create files (/tmp): why it is
    /// neither read nor written (the pass runs as with an unwritable state). None: use it.
    pub state_untrusted: Option<String>,
    /// Where the lock is taken: `lock_file`, or, as root when that lies where other users can
    /// create files (/run/lock), a path under /run/neon-watchdog/ (see test-config).
    pub lock_file: PathBuf,
    /// Where `run` listens for the operator's verbs (`control_socket`, or its default: see
    /// [`crate::config`]'s `control_socket_default`); at most 107 bytes.
    pub control_socket: PathBuf,
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
    /// The `include:` globs, in order, and the files each matched (empty: no `include:`).
    pub includes: Vec<IncludeGlob>,
}

/// One `include:` glob and what it matched, for `test-config` and the debug log.
#[derive(Debug, Clone, Default)]
pub struct IncludeGlob {
    pub pattern: String,
    /// The files read, in the order read.
    pub files: Vec<PathBuf>,
    /// What the glob matched but was not read, and why (a hidden file, an editor or package
    /// manager leftover, the config itself, a file another glob already included).
    pub skipped: Vec<(PathBuf, &'static str)>,
}

/// Where a target is defined: its file and its index in that file's `targets:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as messages show it: the config as given with `-c`, or an included file (its
    /// glob joined to the config's directory).
    pub file: PathBuf,
    /// Whether `file` is an included file (not the config itself).
    pub included: bool,
    pub index: usize,
}

impl Origin {
    /// The target's field path within its file: `targets[2]`.
    pub fn path(&self) -> String {
        format!("targets[{}]", self.index)
    }
}

impl Config {
    pub fn enabled_targets(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter().filter(|t| t.enabled)
    }

    /// The words for a name that is no target's: `no target named "ngnix" in config.yml: did
    /// you mean "nginx"? (targets: nginx, db)` (the operator's verbs and `status TARGET`).
    pub fn unknown_target(&self, name: &str) -> String {
        let known: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        let hint = crate::util::suggest(name, &known)
            .map(|c| format!(": did you mean {c:?}?"))
            .unwrap_or_default();
        format!(
            "no target named {} in {}{hint} (targets: {})",
            crate::util::printable(&format!("{name:?}")),
            self.source.display(),
            crate::util::printable(&known.join(", "))
        )
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

/// `log_checks:`: which check results are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogChecks {
    /// Every check's result, every pass (the spec's rule).
    #[default]
    All,
    /// A check's OK line only when its result changed since the target's last check; FAIL
    /// lines and every event are still logged.
    Changes,
}

impl LogChecks {
    pub fn parse(s: &str) -> Option<LogChecks> {
        match s {
            "all" => Some(LogChecks::All),
            "changes" => Some(LogChecks::Changes),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogChecks::All => "all",
            LogChecks::Changes => "changes",
        }
    }
}

/// The restart policy's settings belong to the policy (its pure function takes them).
pub use crate::policy::Policy;

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub enabled: bool,
    pub checks: Vec<CheckSpec>,
    pub policy: Policy,
    pub action: Action,
    /// Run once when the target gives up (`give_up_after_restarts`).
    pub on_give_up: Option<OnGiveUp>,
    /// Targets this one needs (`depends_on:`): while one of them is down, this target's
    /// action is held (restarting an app because its database is down only adds restarts to
    /// the outage). Validated: known names, no cycle.
    pub depends_on: Vec<String>,
    /// Checked at most this often (`interval_seconds:` of the target), when the timer ticks
    /// more often; `None`: every pass.
    pub interval: Option<Duration>,
    /// Where it is defined (the config or an included file), for messages.
    pub origin: Origin,
}

/// `on_give_up: {exec: [argv...]}`: isolate, page, open a ticket.
#[derive(Debug, Clone)]
pub struct OnGiveUp {
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// `user:`/`group:`: who it runs as (None: as the watchdog).
    pub run_as: Option<RunAs>,
}

impl Target {
    /// The `check` label of each check's metrics series, in order: its `name:`, else its kind,
    /// with `#2`, `#3`... for the second and later checks of that kind in the target
    /// (`http`, `http#2`). Never its description, which holds thresholds (changing one would
    /// rename the series) and values a secret may hide in (URLs, paths, unit names). A label
    /// already taken (a `name:` that reads like another check's kind) gets ` #2`, ` #3`...
    pub fn check_series(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(self.checks.len());
        let mut of_kind: std::collections::HashMap<&str, usize> = Default::default();
        for spec in &self.checks {
            let kind = spec.check.kind();
            let n = of_kind.entry(kind).or_insert(0);
            *n += 1;
            let base = match (&spec.name, *n) {
                (Some(name), _) => name.clone(),
                (None, 1) => kind.to_string(),
                (None, n) => format!("{kind}#{n}"),
            };
            let mut label = base.clone();
            let mut k = 1;
            while out.contains(&label) {
                k += 1;
                label = format!("{base} #{k}");
            }
            out.push(label);
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub check: Check,
    pub timeout: Duration,
    /// `name:` given in the config; see [`CheckSpec::label`].
    pub name: Option<String>,
}

impl CheckSpec {
    /// What log lines call the check: its `name:`, else its description (secrets
    /// masked). Stable when checks are reordered, unlike an index.
    pub fn label(&self, redactor: &Redactor) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => self.check.describe(redactor),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Check {
    /// A live (non-zombie) process whose comm, argv[0] basename or exe basename is `name`,
    /// optionally with identity modifiers and resource limits.
    ProcessName {
        name: String,
        cmdline_contains: Option<String>,
        cmdline_regex: Option<regex::Regex>,
        /// The process's owner (real uid). None: root's and system accounts' processes count.
        user: Option<u32>,
        limits: Limits,
    },
    /// The pid in `path` is alive and not a zombie; with `process_name`, it must also be that
    /// program (guards against a reused PID).
    PidFile {
        path: PathBuf,
        process_name: Option<String>,
        /// The process's owner (real uid). None: root or a system account for a pid file only
        /// root can write, else the pid file's owner.
        user: Option<u32>,
        limits: Limits,
    },
    /// A TCP connect to `host:port` succeeds within the timeout.
    TcpPort { host: String, port: u16 },
    /// The argv exits with one of `ok_exit_codes` within the timeout.
    Command {
        argv: Vec<String>,
        ok_exit_codes: Vec<i32>,
        /// `user:`/`group:`: who it runs as (None: as the watchdog). Not the `user:` of
        /// process checks, which says whose processes count.
        run_as: Option<RunAs>,
    },
    /// An HTTP(S) request answers as expected.
    Http(Box<HttpCheck>),
    /// A TLS server presents a certificate that verifies, names the server and does not
    /// expire soon.
    TlsCert(TlsCertCheck),
    /// A Docker container is running (and healthy if it has a HEALTHCHECK).
    Docker { container: String, socket: PathBuf },
    /// A systemd unit is active, and its main process really runs.
    SystemdUnit { unit: String, systemctl: String },
    /// A file exists and was modified within `max_age`.
    FileFresh { path: PathBuf, max_age: Duration },
    /// The file system holding `path` has enough free space.
    DiskFree {
        path: PathBuf,
        min_free_percent: Option<f64>,
        min_free_mb: Option<u64>,
    },
    /// Host-wide load and memory.
    System {
        max_load_per_core: Option<f64>,
        max_memory_used_percent: Option<f64>,
    },
}

/// Resource limits of process_name / pid_file checks; each applies to every matching process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub max_rss_mb: Option<u64>,
    /// Percent of one core, averaged since the previous pass.
    pub max_cpu_percent: Option<f64>,
    /// Live direct children.
    pub max_children: Option<u32>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.max_rss_mb.is_some() || self.max_cpu_percent.is_some() || self.max_children.is_some()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.max_rss_mb {
            parts.push(format!("rss <= {m} MiB"));
        }
        if let Some(c) = self.max_cpu_percent {
            parts.push(format!("cpu <= {c}%"));
        }
        if let Some(n) = self.max_children {
            parts.push(format!("children <= {n}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" [{}]", parts.join(", "))
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub url: String,
    pub method: crate::http_client::Method,
    /// Healthy statuses; empty means 200..=399.
    pub expect_status: Vec<u16>,
    pub body_contains: Option<String>,
    pub headers: Vec<(String, String)>,
    pub resolve: Option<std::net::IpAddr>,
    pub ip_version: Option<u8>,
    pub tls_verify: bool,
    pub ca_file: Option<PathBuf>,
    pub max_body_bytes: u64,
}

/// `tls_cert: host:port`.
#[derive(Debug, Clone)]
pub struct TlsCertCheck {
    pub host: String,
    pub port: u16,
    /// The name the certificate must be for (a DNS name or an IP address), sent as SNI when it
    /// is a DNS name. Default: the host.
    pub server_name: String,
    /// FAIL when the certificate expires in fewer days than this.
    pub min_days_left: u32,
    /// Verify against the CA certificates in this PEM file only (default: the bundled Mozilla
    /// roots).
    pub ca_file: Option<PathBuf>,
}

impl Check {
    /// The check waits on something outside the watchdog (a command, a socket, an HTTP or
    /// Docker answer, systemctl): it runs on a thread of its own. The others read memory or
    /// the file system (the /proc snapshot, a pid file, a file's age, free space, load) and
    /// run inline, where a thread would cost more than the check.
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Check::TcpPort { .. }
                | Check::Command { .. }
                | Check::Http(_)
                | Check::TlsCert(_)
                | Check::Docker { .. }
                | Check::SystemdUnit { .. }
        )
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Check::ProcessName { .. } => "process_name",
            Check::PidFile { .. } => "pid_file",
            Check::TcpPort { .. } => "tcp_port",
            Check::Command { .. } => "command",
            Check::Http(_) => "http",
            Check::TlsCert(_) => "tls_cert",
            Check::Docker { .. } => "docker",
            Check::SystemdUnit { .. } => "systemd_unit",
            Check::FileFresh { .. } => "file_fresh",
            Check::DiskFree { .. } => "disk_free",
            Check::System { .. } => "system",
        }
    }

    /// A short human description, for logs and `test-config` (not yet redacted).
    pub fn describe(&self, redactor: &Redactor) -> String {
        match self {
            Check::ProcessName {
                name,
                cmdline_contains,
                cmdline_regex,
                user,
                limits,
            } => {
                let mut s = format!("process_name {name}");
                if let Some(c) = cmdline_contains {
                    s.push_str(&format!(" (cmdline contains {c:?})"));
                }
                if let Some(r) = cmdline_regex {
                    s.push_str(&format!(" (cmdline matches /{}/)", r.as_str()));
                }
                if let Some(u) = user {
                    s.push_str(&format!(" (uid {u})"));
                }
                s + &limits.describe()
            }
            Check::PidFile {
                path,
                process_name,
                user,
                limits,
            } => {
                let mut s = match process_name {
                    Some(n) => format!("pid_file {} (process {n})", path.display()),
                    None => format!("pid_file {}", path.display()),
                };
                if let Some(u) = user {
                    s.push_str(&format!(" (uid {u})"));
                }
                s + &limits.describe()
            }
            Check::TcpPort { host, port } => format!("tcp_port {}", host_port(host, *port)),
            Check::Command { argv, run_as, .. } => match run_as {
                Some(r) => format!("command {} ({})", redactor.argv(argv), r.words()),
                None => format!("command {}", redactor.argv(argv)),
            },
            Check::Http(h) => {
                let mut s = format!(
                    "http {} {}",
                    h.method.as_str(),
                    crate::http_client::without_userinfo(&h.url)
                );
                if let Some(ip) = h.resolve {
                    s.push_str(&format!(" (via {ip})"));
                }
                s
            }
            Check::TlsCert(t) => {
                let mut s = format!("tls_cert {}", host_port(&t.host, t.port));
                if t.server_name != t.host {
                    s.push_str(&format!(" (name {})", t.server_name));
                }
                s
            }
            Check::Docker { container, .. } => format!("docker {container}"),
            Check::SystemdUnit { unit, .. } => format!("systemd_unit {unit}"),
            Check::FileFresh { path, max_age } => {
                format!(
                    "file_fresh {} (max age {}s)",
                    path.display(),
                    max_age.as_secs()
                )
            }
            Check::DiskFree {
                path,
                min_free_percent,
                min_free_mb,
            } => {
                let mut mins = Vec::new();
                if let Some(p) = min_free_percent {
                    mins.push(format!("{p}%"));
                }
                if let Some(m) = min_free_mb {
                    mins.push(format!("{m} MiB"));
                }
                format!("disk_free {} (min {})", path.display(), mins.join(" and "))
            }
            Check::System {
                max_load_per_core,
                max_memory_used_percent,
            } => {
                let mut parts = Vec::new();
                if let Some(l) = max_load_per_core {
                    parts.push(format!("load per core <= {l}"));
                }
                if let Some(m) = max_memory_used_percent {
                    parts.push(format!("memory used <= {m}%"));
                }
                format!("system ({})", parts.join(", "))
            }
        }
    }
}

/// `host:port`, `[::1]:port` for IPv6.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Monitor only.
    None,
    Exec(ExecAction),
    Systemd(SystemdAction),
    Docker(DockerAction),
}

#[derive(Debug, Clone)]
pub struct DockerAction {
    pub container: String,
    pub method: DockerMethod,
    pub socket: PathBuf,
    /// For the whole API call (a restart waits for the container to stop and start).
    pub timeout: Duration,
    /// Seconds Docker waits for the container to stop before killing it (`?t=`).
    pub stop_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerMethod {
    Restart,
    Start,
}

impl DockerMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            DockerMethod::Restart => "restart",
            DockerMethod::Start => "start",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExecAction {
    /// Run before `start` (whenever `start` runs): clears what is left of a dead service, such
    /// as nginx workers that outlived their master and still hold the port.
    pub stop: Option<Vec<String>>,
    pub start: Option<Vec<String>>,
    pub restart: Option<Vec<String>>,
    pub timeout: Duration,
    pub detach: bool,
    pub log_file: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// `user:`/`group:`: who start, restart and stop run as (None: as the watchdog).
    pub run_as: Option<Box<RunAs>>,
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
    pub events: Vec<crate::policy::EventKind>,
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
    /// `run` only: serve /metrics, /healthz, / and /status here.
    pub listen: Option<std::net::SocketAddr>,
}
