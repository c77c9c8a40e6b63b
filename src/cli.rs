//! The command line: clap definitions, and the one place that turns an outcome into an exit
//! code. Usage errors exit 64, never clap's default 2 (which means "a target failed" here).

use crate::config::{self, LogLevel};
use crate::engine::{self, Options};
use crate::error::Error;
use crate::exit::{self, Exit};
use crate::logging::{self, LogFormat};
use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use tracing::{error, warn};

#[derive(Debug, Parser)]
#[command(
    name = "neon-watchdog",
    version,
    about = "A process watchdog for Linux: checks targets, restarts what is down, never makes an outage worse.",
    after_help = exit::TABLE,
    subcommand_value_name = "COMMAND"
)]
pub struct Cli {
    /// Config file (YAML or JSON)
    #[arg(
        short = 'c',
        long,
        global = true,
        env = "NEON_WATCHDOG_CONFIG",
        hide_env_values = true,
        default_value = "/etc/neon-watchdog/config.yml"
    )]
    pub config: PathBuf,

    /// check, run, reset: decide everything, run no action, write nothing (also after the
    /// subcommand)
    #[arg(long)]
    pub dry_run: bool,

    /// More log output: -v debug, -vv trace (what ran with which timeout, the policy's inputs)
    #[arg(short = 'v', long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Same as --log-level debug
    #[arg(long, global = true)]
    pub debug: bool,

    /// Log level (overrides the config's log_level)
    #[arg(long, global = true, value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,

    /// Log line format
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    /// check, run: as root, run commands from a config that others than root could change
    /// (also after the subcommand)
    #[arg(
        long,
        env = "NEON_WATCHDOG_ALLOW_UNSAFE_CONFIG",
        hide_env_values = true,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub allow_unsafe_config: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The flags of the commands that run checks and actions (shown only in their help).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ActFlags {
    /// Decide everything but run no action and write nothing (reads the state file, takes no
    /// lock: safe beside a running timer)
    #[arg(long)]
    pub dry_run: bool,

    /// As root, run commands from a config that others than root could change (refused
    /// otherwise: whoever can write the config, or a directory above it, runs commands as root)
    #[arg(
        long,
        env = "NEON_WATCHDOG_ALLOW_UNSAFE_CONFIG",
        hide_env_values = true,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub allow_unsafe_config: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one pass over all targets (or only those named: the others are neither checked nor
    /// changed), then exit 0 (all healthy) or 2 (a target failing)
    Check {
        /// Check only these targets (through the running daemon, if one runs)
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
        #[command(flatten)]
        act: ActFlags,
    },
    /// Pause targets for maintenance: not checked, nothing done for them, not counted for the
    /// exit code, until `resume` (or --for); kept in the state, across restarts and reboots
    #[command(group(clap::ArgGroup::new("which").required(true).args(["targets", "all"])))]
    Pause {
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
        /// Every target
        #[arg(long)]
        all: bool,
        /// End the pause by itself after this long (30m, 2h, 1d; at most 365d)
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        for_: Option<std::time::Duration>,
        /// Why, shown by status (one line, at most 200 characters)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Watch paused targets again (checked on the next pass)
    #[command(group(clap::ArgGroup::new("which").required(true).args(["targets", "all"])))]
    Resume {
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
        /// Every target
        #[arg(long)]
        all: bool,
    },
    /// Pause a target, then run its stop (exec stop:, systemctl stop, docker stop)
    Stop {
        /// The targets to stop, one or more
        #[arg(value_name = "TARGET", required = true)]
        targets: Vec<String>,
    },
    /// Resume a target, then run its start (exec start:, systemctl start, docker start)
    Start {
        /// The targets to start, one or more
        #[arg(value_name = "TARGET", required = true)]
        targets: Vec<String>,
    },
    /// Run a target's recovery action now (start when not running, else restart), whatever
    /// the cooldown or the hourly cap say; it counts in both, like any action
    Restart {
        /// The targets to restart, one or more
        #[arg(value_name = "TARGET", required = true)]
        targets: Vec<String>,
    },
    /// Run a pass every interval_seconds until SIGTERM/SIGINT (SIGHUP reloads the config)
    Run {
        /// One pass only, like `check`
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        act: ActFlags,
    },
    /// Validate the config and print what it means (after defaults); exit 0 valid, 78 invalid
    TestConfig,
    /// Show each target's status from the state file (runs no check), or one target in detail;
    /// exit 0 all healthy and checked recently, 2 a target not healthy, 1 stale (no recent
    /// check)
    Status {
        /// Show this target in detail: its checks, processes, last actions, what happens next
        #[arg(value_name = "TARGET")]
        target: Option<String>,
        /// JSON instead of a table (a stable interface: fields are only ever added); the same
        /// as --format json
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// table, json, or nagios: one line in the monitoring-plugin convention (Nagios,
        /// Icinga, Zabbix, Sensu), exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
        #[arg(long, value_enum)]
        format: Option<crate::status::Format>,
    },
    /// Clear failures, backoff and gave_up of targets (or all), so actions run again (the
    /// cooldown and the hourly cap hold: `restart` acts at once)
    #[command(group(clap::ArgGroup::new("which").required(true).args(["targets", "all"])))]
    Reset {
        /// The targets' names
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
        /// Every target
        #[arg(long)]
        all: bool,
        /// Say what would be reset, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// As root: write the systemd units (a timer running `check`, or with --daemon the `run`
    /// loop) and a starter config if none exists (never overwriting one), then enable them
    Install {
        #[command(flatten)]
        args: InstallArgs,
    },
    /// As root: stop, disable and remove the units `install` wrote (only those); the config
    /// and the state stay
    Uninstall {
        /// Remove them under DIR instead of /, and run no systemctl
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Print the config's JSON Schema, for editors (completion, help, validation); reads no
    /// config
    Schema {
        /// The schema of a file that `include:` reads (a `targets:` list and `x-` templates)
        #[arg(long)]
        included: bool,
    },
    /// Print the completion script for a shell (the Debian package installs them; by hand:
    /// `neon-watchdog completions bash > /usr/share/bash-completion/completions/neon-watchdog`)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: crate::docs::Shell,
    },
    /// Print a manual page, roff: section 1 (the default), neon-watchdog(1), every command,
    /// flag and exit code; section 5, neon-watchdog.yml(5), every key of the config file
    /// (`neon-watchdog man 5 | man -l -`)
    Man {
        /// The section: 1 the command, 5 the config file
        #[arg(value_parser = ["1", "5"], default_value = "1")]
        section: String,
    },
}

/// The flags of `install`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InstallArgs {
    /// Seconds between passes: the timer's OnUnitActiveSec and a new config's
    /// interval_seconds (default: the existing config's interval_seconds, else 30; a value
    /// the existing config disagrees with is refused: install never edits a config)
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub interval: Option<u64>,
    /// The binary the units run, an absolute path (default: this binary)
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// Install the loop unit (neon-watchdog-daemon.service, `run`) instead of the timer, and
    /// disable the timer if it is installed (without it: the timer, and the daemon disabled)
    #[arg(long)]
    pub daemon: bool,
    /// Write everything under DIR (DIR/etc/systemd/system, DIR/<the config path>) and run no
    /// systemctl: for packages and images
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write the files, run no systemctl: print the commands that enable the units
    #[arg(long)]
    pub no_enable: bool,
}

impl Command {
    /// The flags given after the subcommand, merged with those given before it.
    fn act(&self, cli: &Cli) -> ActFlags {
        let after = match self {
            Command::Check { act, .. } | Command::Run { act, .. } => *act,
            Command::Reset { dry_run, .. } => ActFlags {
                dry_run: *dry_run,
                ..ActFlags::default()
            },
            _ => ActFlags::default(),
        };
        ActFlags {
            dry_run: cli.dry_run || after.dry_run,
            allow_unsafe_config: cli.allow_unsafe_config || after.allow_unsafe_config,
        }
    }
}

impl Cli {
    fn level(&self, from_config: Option<LogLevel>) -> LogLevel {
        let flag = match self.verbose {
            0 if self.debug => Some(LogLevel::Debug),
            0 => None,
            1 => Some(LogLevel::Debug),
            _ => Some(LogLevel::Trace),
        };
        flag.or_else(|| self.log_level.as_deref().and_then(LogLevel::parse))
            .or(from_config)
            .unwrap_or(LogLevel::Info)
    }
}

/// Parse the arguments and run; returns how to exit.
pub fn main() -> Exit {
    crate::spawn::default_sigchld();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
                _ => Exit::Usage,
            };
        }
    };
    // completions and man print what the clap definitions say: no config involved
    if matches!(
        cli.command,
        Command::Completions { .. } | Command::Man { .. }
    ) {
        return self_docs(&cli.command);
    }
    // install and uninstall write a config if there is none: they must not need one that loads
    if matches!(
        cli.command,
        Command::Install { .. } | Command::Uninstall { .. }
    ) {
        return install(&cli);
    }
    // needs no config: handled before one is loaded
    if let Command::Schema { included } = cli.command {
        return print_schema(included);
    }
    let runs_commands = matches!(
        cli.command,
        Command::Check { .. }
            | Command::Run { .. }
            | Command::Stop { .. }
            | Command::Start { .. }
            | Command::Restart { .. }
    );
    let act = cli.command.act(&cli);
    let nagios = matches!(
        cli.command,
        Command::Status {
            format: Some(crate::status::Format::Nagios),
            ..
        }
    );
    let loaded = match config::load(&cli.config) {
        Ok(l) => l,
        Err(msg) if nagios => {
            // a monitoring system reads stdout and the plugin's codes, not 78
            println!("{}", crate::status::nagios_config_error(&msg));
            return Exit::PluginUnknown;
        }
        Err(msg) => {
            report_config_error(&msg, cli.log_format);
            return Exit::Config;
        }
    };
    if runs_commands && !act.allow_unsafe_config && !loaded.writable_by_others.is_empty() {
        report_unsafe_config(&loaded.writable_by_others, cli.log_format);
        return Exit::Config;
    }
    let cfg = loaded.config;
    let handle = logging::init(
        cli.level(cfg.log_level),
        cli.log_format,
        cfg.redactor.clone(),
    );
    let opts = Options {
        dry_run: act.dry_run,
        in_process_state: false,
        unlocked: false,
        one_pass: true,
    };
    let result: Result<Exit, Error> = match cli.command {
        Command::TestConfig => {
            // when targets with an interval of their own are next due: the state says
            let state = cfg
                .targets
                .iter()
                .any(|t| t.interval.is_some())
                .then(|| crate::state::load(&cfg.state_file, true))
                .filter(|l| l.warning.is_none())
                .map(|l| l.state);
            let due = state.as_ref().map(|st| (st, std::time::SystemTime::now()));
            print!("{}", crate::summary::render(&cfg, due));
            for w in &loaded.warnings {
                eprintln!("warning: {}", cfg.redactor.redact(w));
            }
            for w in crate::checks::owner_warnings(&cfg) {
                eprintln!("warning: {}", cfg.redactor.redact(&w));
            }
            // CI runs test-config on checkouts it does not own: a warning, not an error
            for w in &loaded.writable_by_others {
                eprintln!("warning: {w} (`check` and `run` refuse this config as root)");
            }
            Ok(Exit::Ok)
        }
        Command::Check { ref targets, .. } if !targets.is_empty() => {
            let verb = crate::ops::Verb::Check {
                targets: targets.clone(),
            };
            crate::spawn::become_subreaper();
            Ok(operator(&cfg, &verb, act.dry_run))
        }
        Command::Pause {
            ref targets,
            all,
            for_,
            ref reason,
        } => {
            let verb = crate::ops::Verb::Pause {
                targets: targets.clone(),
                all,
                for_seconds: for_.map(|d| d.as_secs()),
                reason: reason.clone(),
            };
            Ok(operator(&cfg, &verb, act.dry_run))
        }
        Command::Resume { ref targets, all } => {
            let verb = crate::ops::Verb::Resume {
                targets: targets.clone(),
                all,
            };
            Ok(operator(&cfg, &verb, act.dry_run))
        }
        Command::Stop { ref targets }
        | Command::Start { ref targets }
        | Command::Restart { ref targets } => {
            let targets = targets.clone();
            let verb = match cli.command {
                Command::Stop { .. } => crate::ops::Verb::Stop { targets },
                Command::Start { .. } => crate::ops::Verb::Start { targets },
                _ => crate::ops::Verb::Restart { targets },
            };
            crate::spawn::become_subreaper();
            Ok(operator(&cfg, &verb, act.dry_run))
        }
        Command::Check { .. } | Command::Run { once: true, .. } => {
            let mode = if matches!(cli.command, Command::Check { .. }) {
                "check"
            } else {
                "run --once"
            };
            for w in &loaded.warnings {
                tracing::debug!("{w}");
            }
            log_includes(&cfg);
            warn_allowed_unsafe(&loaded.writable_by_others);
            // not warn_owners: its look costs a second /proc scan each pass (+15% at 100
            // targets), and a one-shot pass says the same in its FAIL line ("say so with user:")
            crate::spawn::become_subreaper();
            let result = engine::check(&cfg, opts, mode);
            // the process exits next (see engine::check)
            std::mem::forget(cfg);
            result
        }
        Command::Status {
            json,
            format,
            ref target,
        } => {
            let format = match (json, format) {
                (true, _) => crate::status::Format::Json,
                (false, f) => f.unwrap_or_default(),
            };
            crate::status::status(&cfg, format, target.as_deref())
        }
        Command::Reset {
            ref targets, all, ..
        } => {
            let verb = crate::ops::Verb::Reset {
                targets: targets.clone(),
                all,
                dry_run: act.dry_run,
            };
            Ok(operator(&cfg, &verb, act.dry_run))
        }
        // handled before the config is loaded
        Command::Install { .. } | Command::Uninstall { .. } => Ok(install(&cli)),
        Command::Schema { .. } => Ok(Exit::Ok),
        Command::Completions { .. } | Command::Man { .. } => Ok(self_docs(&cli.command)),
        Command::Run { once: false, .. } => {
            for w in &loaded.warnings {
                warn!("{w}");
            }
            log_includes(&cfg);
            warn_allowed_unsafe(&loaded.writable_by_others);
            warn_owners(&cfg);
            crate::spawn::become_subreaper();
            let path = cli.config.clone();
            let allow_unsafe = act.allow_unsafe_config;
            let reload = move || {
                let l = config::load(&path)?;
                if !allow_unsafe && !l.writable_by_others.is_empty() {
                    return Err(format!(
                        "{} (pass --allow-unsafe-config to run it anyway)",
                        l.writable_by_others.join("; ")
                    ));
                }
                warn_allowed_unsafe(&l.writable_by_others);
                log_includes(&l.config);
                warn_owners(&l.config);
                Ok(l.config)
            };
            let on_reload = |c: &config::Config| {
                handle.set_redactor(c.redactor.clone());
                // flags given on the command line still win over the new config
                handle.set_level(cli.level(c.log_level));
            };
            crate::daemon::run(cfg, opts, &reload, &on_reload)
        }
    };
    match result {
        Ok(e) => e,
        // a usage error reads like clap's own, and like the verbs' (see `operator`)
        Err(e @ Error::Usage(_)) => {
            eprintln!("neon-watchdog: {e}");
            e.exit()
        }
        Err(e) => {
            error!("{e}");
            e.exit()
        }
    }
}

/// An operator's verb (see [`crate::ops`]): its answer on stdout, its exit code.
fn operator(cfg: &config::Config, verb: &crate::ops::Verb, dry_run: bool) -> Exit {
    let opts = Options {
        dry_run,
        ..Options::default()
    };
    // a running `run` holds the state: ask it over its control socket; without one (no
    // socket, or a stale one no one listens on), take the lock and change the state file. A
    // dry run never goes to the daemon (it would act): it reads the state file.
    let dry = dry_run || matches!(verb, crate::ops::Verb::Reset { dry_run: true, .. });
    let reply = match (!dry).then(|| crate::control::call(cfg, verb)).flatten() {
        Some(r) => r,
        None => crate::ops::direct(cfg, verb, opts),
    };
    let text = &reply.text;
    if reply.exit() == Exit::Usage {
        eprint!("neon-watchdog: {text}");
        if !text.ends_with('\n') {
            eprintln!();
        }
    } else {
        print!("{text}");
    }
    reply.exit()
}

/// `--for 2h`: a duration of whole seconds (`30s`, `15m`, `2h`, `1d`, `1h30m`).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|_| "give a number with its unit: 90s, 30m, 2h or 1d (1s to 365d)".to_string())?;
    if d.as_secs() == 0 {
        return Err("the duration must be at least 1s".to_string());
    }
    if d > crate::ops::MAX_PAUSE {
        return Err("the duration must be at most 365d".to_string());
    }
    Ok(std::time::Duration::from_secs(d.as_secs()))
}

/// `neon-watchdog schema`: the JSON Schema on stdout.
fn print_schema(included: bool) -> Exit {
    use std::io::Write;
    let text = config::schema::render(included);
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!(
                "neon-watchdog: cannot write the schema to stdout: {}",
                crate::util::os_error(&e)
            );
            Exit::Internal
        }
    }
}

/// `include:` globs that match no file, and the names they skipped: said at debug level (a
/// conf.d that packages have not dropped files into yet is fine).
fn log_includes(c: &config::Config) {
    for g in &c.includes {
        if g.files.is_empty() {
            tracing::debug!(glob = %g.pattern, "include glob matches no file");
        }
        for (f, why) in &g.skipped {
            tracing::debug!(glob = %g.pattern, file = %f.display(), "include skipped {why}");
        }
    }
}

/// `completions` and `man`: generated from the clap definitions (see [`crate::docs`]).
fn self_docs(command: &Command) -> Exit {
    let text = match command {
        Command::Completions { shell } => {
            crate::docs::completions(Cli::command(), *shell, "neon-watchdog")
        }
        Command::Man { section } if section == "5" => {
            crate::docs::config_man(env!("CARGO_PKG_VERSION"))
        }
        Command::Man { .. } => crate::docs::man(Cli::command()),
        _ => return Exit::Internal,
    };
    print_stdout(&text)
}

/// Write generated text to stdout. A reader that went away (`| head`) is not an error of
/// ours; any other write error is (exit 1, said on stderr).
fn print_stdout(bytes: &[u8]) -> Exit {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Exit::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => {
            eprintln!("neon-watchdog: cannot write to stdout: {e}");
            Exit::Internal
        }
    }
}

/// `install` and `uninstall` (see [`crate::install`]).
fn install(cli: &Cli) -> Exit {
    if cli.dry_run {
        eprintln!("neon-watchdog: install and uninstall have no --dry-run: --root DIR writes the files under DIR to look at, --no-enable runs no systemctl");
        return Exit::Usage;
    }
    let mut o = crate::install::Options {
        config: cli.config.clone(),
        interval: None,
        bin: None,
        daemon: false,
        root: None,
        no_enable: false,
    };
    match &cli.command {
        Command::Install { args } => {
            o.interval = args.interval;
            o.bin = args.bin.clone();
            o.daemon = args.daemon;
            o.root = args.root.clone();
            o.no_enable = args.no_enable;
            crate::install::install(&o)
        }
        Command::Uninstall { root } => {
            o.root = root.clone();
            crate::install::uninstall(&o)
        }
        _ => Exit::Internal,
    }
}

/// A config others could change, run anyway (`--allow-unsafe-config`): said on every load.
fn warn_allowed_unsafe(problems: &[String]) {
    for p in problems {
        warn!("{p}; running it anyway (--allow-unsafe-config)");
    }
}

/// At the start of `check` and `run` (and after a reload): each process check without
/// `user:` that a pass would fail because its program runs only as a user whose processes
/// no longer count by default (a login user, `nobody`), or whose pid file needs `user:`, at
/// warn level, once when `run` starts or reloads: after an upgrade, the log says why a
/// healthy service is restarted, and what to write (README, Upgrade and uninstall). A
/// one-shot `check` does not look twice: its FAIL line says the same.
fn warn_owners(cfg: &config::Config) {
    for w in crate::checks::owner_warnings(cfg) {
        warn!(
            "{}; add user: to the check if that is the service (process checks count only root's, system accounts' and their forks' processes without it: README, Upgrade and uninstall)",
            cfg.redactor.redact(&w)
        );
    }
}

/// As root, `check` and `run` refuse a config others could change: its commands run as root.
fn report_unsafe_config(problems: &[String], format: LogFormat) {
    let fix = "fix the owner and modes, or pass --allow-unsafe-config (env NEON_WATCHDOG_ALLOW_UNSAFE_CONFIG=1) to run it anyway";
    match format {
        LogFormat::Json => {
            for line in problems {
                let ts = crate::util::rfc3339(std::time::SystemTime::now());
                let v = serde_json::json!({"ts": ts, "level": "error", "msg": "config others could change; refusing to run its commands as root", "err": line, "fix": fix});
                eprintln!("{v}");
            }
        }
        LogFormat::Logfmt => {
            eprintln!(
                "neon-watchdog: refusing to run commands as root from a config others could change ({fix}):\n{}",
                problems.join("\n")
            );
        }
    }
}

/// Config errors come before logging is set up: plain lines for humans, or JSON lines (one per
/// problem) with `--log-format json`, so a log reader sees them too.
fn report_config_error(msg: &str, format: LogFormat) {
    // a capped report ends "and 80 more problems (100 in all; ...)": the header says 100
    let n = msg
        .lines()
        .last()
        .and_then(|l| l.split_once(" more problems ("))
        .and_then(|(_, rest)| rest.split_once(" in all")?.0.parse::<usize>().ok())
        .unwrap_or_else(|| msg.lines().count());
    match format {
        LogFormat::Json => {
            for line in msg.lines() {
                let ts = crate::util::rfc3339(std::time::SystemTime::now());
                let v = serde_json::json!({"ts": ts, "level": "error", "msg": "config is invalid", "err": line});
                eprintln!("{v}");
            }
        }
        LogFormat::Logfmt if n > 1 => {
            eprintln!("neon-watchdog: config is invalid ({n} problems):\n{msg}")
        }
        LogFormat::Logfmt => eprintln!("neon-watchdog: {msg}"),
    }
}
