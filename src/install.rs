//! `neon-watchdog install` and `uninstall`: the systemd units and a starter config, written
//! the way a root process must write (through [`crate::files`]: nothing planted can redirect
//! a write), then systemctl to enable them.
//!
//! - One source: the units are packaging/systemd's files, embedded, and the starter config is
//!   packaging/config.yml (the Debian package ships the same files). Install replaces whole
//!   known lines only (the `ExecStart=` lines naming `/usr/bin/neon-watchdog` and
//!   `/etc/neon-watchdog/config.yml`, the timer's `OnBootSec=`/`OnUnitActiveSec=`, the
//!   config's `interval_seconds: 30`) and puts [`MARKER`] on top of each unit.
//! - Ours only: install replaces only a unit that carries [`MARKER`], and `uninstall` removes
//!   only those: never a package's units (/lib/systemd/system), never a file written by hand.
//! - One tick: the timer's `OnUnitActiveSec` and the config's `interval_seconds` agree. A new
//!   config gets `--interval` (default 30). An existing config is never edited: its
//!   `interval_seconds` is the tick, and an `--interval` that says otherwise is refused with
//!   the file to change (rewriting a user's YAML would lose their comments and layout).
//! - Idempotent: a unit whose text and mode are already right is not rewritten.
//! - `--root DIR` writes under DIR and runs no systemctl (packaging, images, tests).
//!
//! An edge module beside `cli`: only `cli` imports it.

use crate::exit::Exit;
use crate::files;
use crate::spawn::{self, Spec, Status};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first line of every unit install writes; `uninstall` removes only files that carry it.
pub const MARKER: &str =
    "# Installed by neon-watchdog install; `neon-watchdog uninstall` removes it.";

/// The starter config (also the Debian package's /etc/neon-watchdog/config.yml).
pub const STARTER_CONFIG: &str = include_str!("../packaging/config.yml");

/// The paths the shipped templates name (the Debian package's).
const BIN_AS_SHIPPED: &str = "/usr/bin/neon-watchdog";
const CONFIG_AS_SHIPPED: &str = "/etc/neon-watchdog/config.yml";
const INTERVAL_AS_SHIPPED: u64 = 30;

/// Where units go, under the root.
const UNIT_DIR: &str = "etc/systemd/system";
/// Where units may also be found (a package's), under the root.
const PACKAGE_UNIT_DIRS: [&str; 2] = ["lib/systemd/system", "usr/lib/systemd/system"];

/// The state the units' StateDirectory= holds, when the config cannot tell.
const DEFAULT_STATE: &str = "/var/lib/neon-watchdog/state.json";

const UNIT_MODE: u32 = 0o644;
const UNIT_DIR_MODE: u32 = 0o755;
/// The config holds commands run as root: readable by root only, in a directory nobody else
/// may write.
const CONFIG_MODE: u32 = 0o600;
const CONFIG_DIR_MODE: u32 = 0o755;

/// A unit file is a few KiB; anything larger at a unit's path is not one we wrote.
const MAX_UNIT_BYTES: u64 = 1 << 20;

/// How long one systemctl call may take (`enable --now` of the daemon waits for its READY=1,
/// sent before its first pass).
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(90);

/// The units, as shipped in packaging/systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// The oneshot pass (`check`) the timer starts.
    Service,
    Timer,
    /// The loop (`run`).
    Daemon,
}

impl Unit {
    pub const ALL: [Unit; 3] = [Unit::Timer, Unit::Service, Unit::Daemon];

    pub fn name(self) -> &'static str {
        match self {
            Unit::Service => "neon-watchdog.service",
            Unit::Timer => "neon-watchdog.timer",
            Unit::Daemon => "neon-watchdog-daemon.service",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Unit::Service => crate::util::units::SERVICE,
            Unit::Timer => crate::util::units::TIMER,
            Unit::Daemon => crate::util::units::DAEMON,
        }
    }

    /// The unit's text for this binary, config and tick: whole template lines replaced, the
    /// marker on top. `bin` and `config` are already escaped for a unit file ([`unit_word`]).
    pub fn render(self, bin: &str, config: &str, interval: u64) -> Result<String, String> {
        let exec = |cmd: &str| {
            (
                format!("ExecStart={BIN_AS_SHIPPED} {cmd} -c {CONFIG_AS_SHIPPED}"),
                format!("ExecStart={bin} {cmd} -c {config}"),
            )
        };
        let swaps = match self {
            Unit::Service => vec![exec("check")],
            Unit::Daemon => vec![exec("run")],
            Unit::Timer => ["OnBootSec", "OnUnitActiveSec"]
                .iter()
                .map(|k| {
                    (
                        format!("{k}={INTERVAL_AS_SHIPPED}s"),
                        format!("{k}={interval}s"),
                    )
                })
                .collect(),
        };
        let body = replace_lines(self.template(), self.name(), &swaps)?;
        Ok(format!(
            "{MARKER}\n# Change it with a drop-in (systemctl edit {}): install rewrites this file.\n{body}",
            self.name()
        ))
    }
}

/// The starter config with `interval_seconds: {interval}`.
pub fn starter_config(interval: u64) -> Result<String, String> {
    let line = format!("interval_seconds: {INTERVAL_AS_SHIPPED}");
    replace_lines(
        STARTER_CONFIG,
        "packaging/config.yml",
        &[(line, format!("interval_seconds: {interval}"))],
    )
}

/// `text` with each line equal to a `from` replaced by its `to`; each `from` must be there
/// exactly once (the embedded templates are tested to hold them).
fn replace_lines(text: &str, what: &str, swaps: &[(String, String)]) -> Result<String, String> {
    let mut found = vec![0usize; swaps.len()];
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line);
        match swaps.iter().position(|(from, _)| from == bare) {
            Some(i) => {
                found[i] += 1;
                out.push_str(&swaps[i].1);
                out.push_str(&line[bare.len()..]);
            }
            None => out.push_str(line),
        }
    }
    for ((from, _), n) in swaps.iter().zip(found) {
        if n != 1 {
            return Err(format!(
                "internal error: the embedded {what} has {n} lines `{from}`, not one (a bug: please report it)"
            ));
        }
    }
    Ok(out)
}

/// `path` as one word of an `ExecStart=` line: `%` doubled (systemd's specifiers), the word
/// quoted if it holds a space. What systemd would read otherwise (`$` variables, quotes,
/// backslashes, control characters) or cannot hold (not UTF-8) is refused.
pub fn unit_word(path: &Path, what: &str) -> Result<String, String> {
    let Some(s) = path.to_str() else {
        return Err(format!(
            "{what} {}: the path is not valid UTF-8, which a unit file cannot name; use a path that is",
            path.display()
        ));
    };
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '\'' | '\\' | '$'))
    {
        return Err(format!(
            "{what} {s:?}: a systemd unit cannot name a path with {c:?} in ExecStart= as it is; use a path without it"
        ));
    }
    let s = s.replace('%', "%%");
    Ok(if s.contains(' ') {
        format!("\"{s}\"")
    } else {
        s
    })
}

/// What install and uninstall are told.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-c`, as given.
    pub config: PathBuf,
    /// `--interval`: the tick; by default the existing config's, else 30.
    pub interval: Option<u64>,
    /// `--bin`: the binary the units run; by default this one.
    pub bin: Option<PathBuf>,
    /// `--daemon`: the loop unit instead of the timer.
    pub daemon: bool,
    /// `--root`: write under this directory, run no systemctl.
    pub root: Option<PathBuf>,
    /// `--no-enable`: run no systemctl, print the commands.
    pub no_enable: bool,
}

/// Why install or uninstall stopped: the message for stderr and the exit code.
#[derive(Debug)]
struct Failure {
    exit: Exit,
    message: String,
}

fn fail(exit: Exit, message: impl Into<String>) -> Failure {
    Failure {
        exit,
        message: message.into(),
    }
}

/// `neon-watchdog install`: prints what it does on stdout; returns how to exit.
pub fn install(o: &Options) -> Exit {
    finish(run_install(o))
}

/// `neon-watchdog uninstall` (only `config` and `root` of the options count).
pub fn uninstall(o: &Options) -> Exit {
    finish(run_uninstall(o))
}

fn finish(r: Result<(), Failure>) -> Exit {
    match r {
        Ok(()) => Exit::Ok,
        Err(f) => {
            eprintln!("neon-watchdog: {}", f.message);
            f.exit
        }
    }
}

/// Where things are: as the units name them, and on this machine (under `--root`).
struct Layout {
    /// `--root`, absolute; None: the live system.
    root: Option<PathBuf>,
    /// The config as the units name it (absolute).
    config: PathBuf,
}

impl Layout {
    fn new(o: &Options, command: &str) -> Result<Layout, Failure> {
        if o.root.is_none() && !nix::unistd::geteuid().is_root() {
            return Err(fail(
                Exit::NoPermission,
                format!(
                    "{command} writes to /etc/systemd/system and runs systemctl: run it as root (sudo neon-watchdog {command} ...), or pass --root DIR to write the files under DIR only"
                ),
            ));
        }
        let root = match &o.root {
            None => None,
            Some(dir) => {
                let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                match std::fs::metadata(&abs) {
                    Ok(m) if m.is_dir() => Some(abs),
                    Ok(_) => {
                        return Err(fail(
                            Exit::Usage,
                            format!("--root {}: not a directory", dir.display()),
                        ))
                    }
                    Err(e) => {
                        return Err(fail(
                            Exit::Usage,
                            format!(
                                "--root {}: {} (create the directory first)",
                                dir.display(),
                                crate::util::os_error(&e)
                            ),
                        ))
                    }
                }
            }
        };
        // a config is a file: `/etc/neon-watchdog/` or `.../.` would make the directory a file
        let raw = o.config.as_os_str().as_encoded_bytes();
        let last = o.config.components().next_back();
        if raw.ends_with(b"/")
            || raw.ends_with(b"/.")
            || raw == b"."
            || !matches!(last, Some(std::path::Component::Normal(_)))
        {
            return Err(fail(
                Exit::Usage,
                format!(
                    "-c {}: name the config file, not a directory (e.g. -c /etc/neon-watchdog/config.yml)",
                    o.config.display()
                ),
            ));
        }
        let config = if o.config.is_absolute() {
            o.config.clone()
        } else if root.is_some() {
            return Err(fail(
                Exit::Usage,
                format!(
                    "-c {}: with --root, give the config's absolute path as the installed system sees it (e.g. -c /etc/neon-watchdog/config.yml)",
                    o.config.display()
                ),
            ));
        } else {
            std::path::absolute(&o.config).map_err(|e| {
                fail(
                    Exit::Usage,
                    format!(
                        "-c {}: cannot make it absolute: {}",
                        o.config.display(),
                        crate::util::os_error(&e)
                    ),
                )
            })?
        };
        let layout = Layout { root, config };
        for dir in [
            layout.unit_dir(),
            crate::files::parent(&layout.config_file()),
        ] {
            layout.no_link_inside_root(&dir)?;
        }
        Ok(layout)
    }

    /// Under `--root`, no directory between the root and `dir` may be a symlink: an image's
    /// absolute link (`etc/systemd/system -> /srv/x`) resolves on this machine, not in the
    /// image, and would take the files out of the tree.
    fn no_link_inside_root(&self, dir: &Path) -> Result<(), Failure> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let Ok(rel) = dir.strip_prefix(root) else {
            return Ok(());
        };
        let mut at = root.clone();
        for c in rel.components() {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(fail(
                        Exit::Internal,
                        format!(
                            "{} is a symbolic link inside --root: it would resolve on this machine, not in the image, and take the files out of the tree; make it a directory (or write to its target's place in the image)",
                            at.display()
                        ),
                    ))
                }
                Ok(_) => {}
                // not there yet: created as a directory
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// `path` (absolute, as the installed system sees it) on this machine.
    fn here(&self, path: &Path) -> PathBuf {
        match &self.root {
            None => path.to_path_buf(),
            Some(r) => r.join(path.strip_prefix("/").unwrap_or(path)),
        }
    }

    fn unit_dir(&self) -> PathBuf {
        self.here(&Path::new("/").join(UNIT_DIR))
    }

    fn unit_path(&self, u: Unit) -> PathBuf {
        self.unit_dir().join(u.name())
    }

    fn config_file(&self) -> PathBuf {
        self.here(&self.config)
    }

    /// Whether `u` is installed, by install or by a package.
    fn has_unit(&self, u: Unit) -> bool {
        std::iter::once(UNIT_DIR).chain(PACKAGE_UNIT_DIRS).any(|d| {
            std::fs::symlink_metadata(self.here(&Path::new("/").join(d).join(u.name()))).is_ok()
        })
    }
}

/// What becomes of a unit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    Update,
    Unchanged,
}

/// What to do with the unit file at `path` so that it holds `text`. Only a missing file or
/// one of ours ([`MARKER`]) may be written.
fn plan_unit(path: &Path, text: &str) -> Result<Step, String> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Step::Create),
        Err(e) => {
            return Err(format!(
                "cannot inspect {}: {}",
                path.display(),
                crate::util::os_error(&e)
            ))
        }
    };
    let old = ours(path, &m)?;
    let me = nix::unistd::geteuid().as_raw();
    if old == text.as_bytes() && m.permissions().mode() & 0o7777 == UNIT_MODE && m.uid() == me {
        Ok(Step::Unchanged)
    } else {
        Ok(Step::Update)
    }
}

/// The bytes of the unit file at `path` (`m`: its metadata, not followed) if install wrote it,
/// else why it is left alone.
fn ours(path: &Path, m: &std::fs::Metadata) -> Result<Vec<u8>, String> {
    let shown = path.display();
    if !m.file_type().is_file() {
        return Err(format!(
            "{shown} is {}, not a file neon-watchdog install wrote: it is left alone",
            files::kind(m.file_type())
        ));
    }
    let bytes = match files::read_capped(path, MAX_UNIT_BYTES, false) {
        Ok(b) => b,
        Err(files::ReadError::TooLarge(n)) => {
            return Err(format!(
                "{shown} is {n} bytes, not a unit neon-watchdog install wrote: it is left alone"
            ))
        }
        Err(files::ReadError::NotRegular(k)) => {
            return Err(format!(
                "{shown} is {k}, not a file neon-watchdog install wrote: it is left alone"
            ))
        }
        Err(files::ReadError::Missing) => return Err(format!("{shown} vanished while read")),
        Err(files::ReadError::Io(e)) => return Err(format!("cannot read {shown}: {e}")),
    };
    let marked = String::from_utf8_lossy(&bytes)
        .lines()
        .any(|l| l.trim_end() == MARKER);
    if marked {
        Ok(bytes)
    } else {
        Err(format!(
            "{shown} was not written by neon-watchdog install (it lacks the line `{MARKER}`): it is left alone"
        ))
    }
}

/// The tick, and the starter config to create if there is none.
struct ConfigPlan {
    interval: u64,
    create: Option<String>,
}

fn plan_config(o: &Options, l: &Layout) -> Result<ConfigPlan, Failure> {
    let file = l.config_file();
    let shown = file.display();
    match std::fs::symlink_metadata(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if file.extension().is_some_and(|e| e == "json") {
                return Err(fail(
                    Exit::Usage,
                    format!(
                        "{shown} does not exist, and the starter config install writes is YAML: give -c a path ending in .yml, or write the JSON config first"
                    ),
                ));
            }
            let interval = o.interval.unwrap_or(INTERVAL_AS_SHIPPED);
            let text = starter_config(interval).map_err(|e| fail(Exit::Internal, e))?;
            Ok(ConfigPlan {
                interval,
                create: Some(text),
            })
        }
        Err(e) => Err(fail(
            Exit::Config,
            format!("cannot inspect {shown}: {}", crate::util::os_error(&e)),
        )),
        Ok(_) => {
            let loaded = crate::config::load(&file).map_err(|msg| {
                fail(
                    Exit::Config,
                    format!(
                        "{msg}\ninstall takes the tick from the existing config {shown} (interval_seconds) and never edits it: fix it (neon-watchdog test-config -c {shown}) and run install again, or give -c another path"
                    ),
                )
            })?;
            for w in &loaded.writable_by_others {
                eprintln!("warning: {w} (`check` and `run` refuse this config as root)");
            }
            let interval = loaded.config.interval.as_secs();
            match o.interval {
                Some(want) if want != interval => Err(fail(
                    Exit::Usage,
                    format!(
                        "--interval {want} disagrees with the existing config {shown}, which says interval_seconds: {interval}. {} must agree with the config, and install never edits a config: set interval_seconds: {want} in {shown} and run install again, or leave out --interval to use {interval}",
                        if o.daemon { "The daemon's loop" } else { "The timer's tick" }
                    ),
                )),
                _ => Ok(ConfigPlan {
                    interval,
                    create: None,
                }),
            }
        }
    }
}

/// The binary the units run, as they name it.
fn binary(o: &Options, l: &Layout) -> Result<PathBuf, Failure> {
    let bin = match &o.bin {
        Some(b) if !b.is_absolute() => {
            return Err(fail(
                Exit::Usage,
                format!(
                    "--bin {}: give the binary's absolute path (systemd runs it from /)",
                    b.display()
                ),
            ))
        }
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map_err(|e| {
                fail(
                    Exit::Internal,
                    format!(
                        "cannot tell where this binary is ({}): pass --bin PATH",
                        crate::util::os_error(&e)
                    ),
                )
            })?,
    };
    let here = l.here(&bin);
    let problem = match std::fs::metadata(&here) {
        Ok(m) if !m.is_file() => Some("is not a regular file".to_string()),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Some("is not executable".to_string()),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist".to_string()),
        Err(e) => Some(format!(
            "cannot be inspected: {}",
            crate::util::os_error(&e)
        )),
    };
    match (problem, &l.root) {
        (None, _) => {}
        (Some(p), None) => {
            return Err(fail(
                Exit::Usage,
                format!("--bin {}: {p}", bin.display()),
            ))
        }
        // a package or an image may put the binary there later
        (Some(p), Some(root)) => eprintln!(
            "note: the units run {}, but under {} it {p}: put the binary there, or pass --bin with the path it has in the installed system",
            bin.display(),
            root.display()
        ),
    }
    Ok(bin)
}

fn run_install(o: &Options) -> Result<(), Failure> {
    let l = Layout::new(o, "install")?;
    let bin = binary(o, &l)?;
    let usage = |e: String| fail(Exit::Usage, e);
    let label = if o.bin.is_some() {
        "--bin"
    } else {
        "this binary"
    };
    let bin_word = unit_word(&bin, label).map_err(usage)?;
    let config_word = unit_word(&l.config, "-c").map_err(usage)?;
    let cfg = plan_config(o, &l)?;
    let main = if o.daemon {
        vec![Unit::Daemon]
    } else {
        vec![Unit::Service, Unit::Timer]
    };

    // everything is checked before anything is written
    let mut units = Vec::new();
    let mut problems = Vec::new();
    for &u in &main {
        let text = u
            .render(&bin_word, &config_word, cfg.interval)
            .map_err(|e| fail(Exit::Internal, e))?;
        let path = l.unit_path(u);
        match plan_unit(&path, &text) {
            Ok(step) => units.push((u, path, text, step)),
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(fail(
            Exit::Internal,
            format!(
                "{}\nnothing was written: move what is there aside (local changes to a unit belong in a drop-in, {}/NAME.d/*.conf), then run install again",
                problems.join("\n"),
                l.unit_dir().display()
            ),
        ));
    }

    let config_file = l.config_file();
    let shown_config = config_file.display();
    match &cfg.create {
        Some(text) => {
            let created =
                files::create_new(&config_file, text.as_bytes(), CONFIG_MODE, CONFIG_DIR_MODE)
                    .map_err(|e| fail(Exit::Internal, e))?;
            if created {
                println!(
                    "created {shown_config}: a starter config (interval_seconds: {}; one target, `host`: load, memory, free space on /); add your targets, then: neon-watchdog test-config -c {}",
                    cfg.interval,
                    l.config.display()
                );
            } else {
                println!("kept {shown_config}: it appeared meanwhile; install never overwrites a config");
            }
        }
        None => println!(
            "kept {shown_config}: it exists (interval_seconds: {}); install never overwrites a config",
            cfg.interval
        ),
    }
    for (_, path, text, step) in &units {
        match step {
            Step::Unchanged => println!("unchanged {}", path.display()),
            Step::Create | Step::Update => {
                files::write_atomic(path, text.as_bytes(), UNIT_MODE, UNIT_DIR_MODE)
                    .map_err(|e| fail(Exit::Internal, e))?;
                let verb = if *step == Step::Create {
                    "created"
                } else {
                    "updated"
                };
                println!("{verb} {}", path.display());
            }
        }
    }

    let leader = if o.daemon { Unit::Daemon } else { Unit::Timer };
    let leader_updated = units
        .iter()
        .any(|(u, _, _, step)| *u == leader && *step == Step::Update);
    let (cmd, every) = if o.daemon {
        ("run", ", a pass every")
    } else {
        ("check", " every")
    };
    let what = format!(
        "{} runs `{} {cmd} -c {}`{every} {} s",
        leader.name(),
        bin.display(),
        l.config.display(),
        cfg.interval
    );
    enable(o, &l, leader, leader_updated, &what)
}

/// After the files: systemctl daemon-reload, disable --now the other mode if it is installed,
/// enable --now `leader` (and restart it if its unit changed: a running timer or daemon keeps
/// what it read). With --no-enable the commands are printed; with --root, the offline ones.
fn enable(o: &Options, l: &Layout, leader: Unit, updated: bool, what: &str) -> Result<(), Failure> {
    let other = if o.daemon { Unit::Timer } else { Unit::Daemon };
    let other = l.has_unit(other).then_some(other.name());
    if let Some(root) = &l.root {
        let root = root.display();
        println!("installed under {root} ({what}); ran no systemctl (--root). To enable it in that tree:");
        if let Some(other) = other {
            println!("  systemctl --root={root} disable {other}");
        }
        println!("  systemctl --root={root} enable {}", leader.name());
        return Ok(());
    }
    let mut calls: Vec<Vec<&str>> = vec![vec!["daemon-reload"]];
    if let Some(other) = other {
        calls.push(vec!["disable", "--now", other]);
    }
    calls.push(vec!["enable", "--now", leader.name()]);
    if updated {
        calls.push(vec!["restart", leader.name()]);
    }
    if o.no_enable {
        println!("installed ({what}); not enabled (--no-enable). To enable it, run:");
        for c in &calls {
            println!("  systemctl {}", c.join(" "));
        }
        return Ok(());
    }
    for (i, c) in calls.iter().enumerate() {
        systemctl(c, &calls[i + 1..])?;
    }
    let journal = leader_journal(leader);
    println!("installed and enabled: {what}; its log: journalctl -u {journal}");
    Ok(())
}

/// The unit whose journal holds the passes' log lines.
fn leader_journal(leader: Unit) -> &'static str {
    match leader {
        Unit::Daemon => "neon-watchdog-daemon",
        _ => "neon-watchdog",
    }
}

/// Run `systemctl ARGS` (from PATH, with a timeout); on failure, say what to do, naming the
/// commands that did not run yet (`rest`).
fn systemctl(args: &[&str], rest: &[Vec<&str>]) -> Result<(), Failure> {
    let shown = format!("systemctl {}", args.join(" "));
    println!("running: {shown}");
    let argv: Vec<String> = std::iter::once("systemctl")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    let then = if rest.is_empty() {
        String::new()
    } else {
        format!(
            ", then: {}",
            rest.iter()
                .map(|c| format!("systemctl {}", c.join(" ")))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    let out = match spawn::run(&Spec::new(&argv, SYSTEMCTL_TIMEOUT)) {
        Ok(out) => out,
        Err(e) => {
            return Err(fail(
                Exit::Internal,
                format!(
                    "{e}: is this a systemd system? The files are in place; run `{shown}`{then} where systemctl runs, or use --no-enable (print the commands) or --root DIR (files only)"
                ),
            ))
        }
    };
    if out.status == Status::Exited(0) {
        return Ok(());
    }
    let tail = out.tail(300, &crate::redact::Redactor::default());
    let how = out.status.describe(SYSTEMCTL_TIMEOUT, &tail);
    let lower = tail.to_ascii_lowercase();
    let advice = if lower.contains("not been booted with systemd")
        || lower.contains("failed to connect to bus")
        || lower.contains("systemd is not running")
    {
        format!(
            "systemd is not running here (a container or a chroot?): the files are in place; use --root DIR to write files only, or run `{shown}`{then} once systemd runs"
        )
    } else {
        format!(
            "the files are in place; fix what systemctl says and run install again (it rewrites nothing that is right), or run `{shown}`{then} yourself"
        )
    };
    Err(fail(
        Exit::Internal,
        format!("{shown} failed ({how}): {advice}"),
    ))
}

fn run_uninstall(o: &Options) -> Result<(), Failure> {
    let l = Layout::new(o, "uninstall")?;
    let mut remove = Vec::new();
    for u in Unit::ALL {
        let path = l.unit_path(u);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => println!(
                "left alone {}: cannot inspect it: {}",
                path.display(),
                crate::util::os_error(&e)
            ),
            Ok(m) => match ours(&path, &m) {
                Ok(_) => remove.push((u, path)),
                Err(why) => println!("left alone: {why}"),
            },
        }
    }
    if remove.is_empty() {
        println!(
            "nothing to remove: no unit written by neon-watchdog install in {}",
            l.unit_dir().display()
        );
    } else {
        let names: Vec<&str> = remove.iter().map(|(u, _)| u.name()).collect();
        let live = l.root.is_none();
        if live {
            systemctl(&[&["disable", "--now"][..], &names].concat(), &[])?;
        }
        for (_, path) in &remove {
            std::fs::remove_file(path).map_err(|e| {
                fail(
                    Exit::Internal,
                    format!(
                        "cannot remove {}: {}",
                        path.display(),
                        crate::util::os_error(&e)
                    ),
                )
            })?;
            println!("removed {}", path.display());
        }
        if live {
            systemctl(&["daemon-reload"], &[])?;
        } else {
            println!("ran no systemctl (--root)");
        }
    }
    // the config and the state are the user's: named, never removed
    let config_file = l.config_file();
    let state = crate::config::load(&config_file)
        .map(|c| c.config.state_file)
        .unwrap_or_else(|_| PathBuf::from(DEFAULT_STATE));
    let state_file = l.here(&state);
    for (path, what) in [(&config_file, "the config"), (&state_file, "the state")] {
        if std::fs::symlink_metadata(path).is_ok() {
            println!(
                "kept {} ({what}; uninstall never removes it: delete it yourself if it is no longer needed)",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_hold_the_lines_install_replaces() {
        for u in Unit::ALL {
            let text = u.render("/opt/nw", "/srv/c.yml", 45).unwrap();
            assert!(text.starts_with(&format!("{MARKER}\n")), "{text}");
            assert_eq!(text.matches(MARKER).count(), 1);
            match u {
                Unit::Service => {
                    assert!(text.contains("\nExecStart=/opt/nw check -c /srv/c.yml\n"))
                }
                Unit::Daemon => assert!(text.contains("\nExecStart=/opt/nw run -c /srv/c.yml\n")),
                Unit::Timer => {
                    assert!(text.contains("\nOnBootSec=45s\n"), "{text}");
                    assert!(text.contains("\nOnUnitActiveSec=45s\n"), "{text}");
                }
            }
            // nothing else of the shipped paths is left in a setting
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                assert!(!line.contains(BIN_AS_SHIPPED), "{line}");
                assert!(!line.contains(CONFIG_AS_SHIPPED), "{line}");
                assert!(!line.contains("=30s"), "{line}");
            }
        }
        let c = starter_config(45).unwrap();
        assert!(c.contains("\ninterval_seconds: 45\n"), "{c}");
        assert!(!c.contains("interval_seconds: 30"), "{c}");
    }

    #[test]
    fn a_template_without_its_line_is_an_error_not_a_silent_default() {
        let swaps = [("OnBootSec=30s".to_string(), "OnBootSec=5s".to_string())];
        let e = replace_lines("[Timer]\nOnBootSec=30s \n", "t", &swaps).unwrap_err();
        assert!(e.contains("has 0 lines `OnBootSec=30s`"), "{e}");
        let e = replace_lines("OnBootSec=30s\nOnBootSec=30s\n", "t", &swaps).unwrap_err();
        assert!(e.contains("has 2 lines"), "{e}");
        assert_eq!(
            replace_lines("a\nOnBootSec=30s", "t", &swaps).unwrap(),
            "a\nOnBootSec=5s"
        );
    }

    #[test]
    fn paths_are_escaped_for_systemd_or_refused() {
        let w = |s: &str| unit_word(Path::new(s), "--bin");
        assert_eq!(
            w("/usr/bin/neon-watchdog").unwrap(),
            "/usr/bin/neon-watchdog"
        );
        assert_eq!(w("/opt/50%/nw").unwrap(), "/opt/50%%/nw");
        assert_eq!(w("/opt/my apps/nw").unwrap(), "\"/opt/my apps/nw\"");
        assert_eq!(w("/opt/a b%c/nw").unwrap(), "\"/opt/a b%%c/nw\"");
        for bad in [
            "/opt/$HOME/nw",
            "/opt/a\"b",
            "/opt/a'b",
            "/opt/a\\b",
            "/opt/a\nb",
            "/opt/a\tb",
        ] {
            let e = w(bad).unwrap_err();
            assert!(e.starts_with("--bin "), "{e}");
            assert!(e.contains("use a path without it"), "{e}");
        }
        use std::os::unix::ffi::OsStrExt;
        let e = unit_word(
            Path::new(std::ffi::OsStr::from_bytes(b"/opt/\xff/nw")),
            "-c",
        )
        .unwrap_err();
        assert!(e.contains("not valid UTF-8"), "{e}");
    }

    /// The commented examples of the starter config are valid once uncommented.
    #[test]
    fn the_starter_configs_examples_are_valid() {
        let text: String = STARTER_CONFIG
            .lines()
            .map(|l| match l.strip_prefix("  # ") {
                Some(rest) if rest.starts_with("- ") || rest.starts_with("  ") => {
                    format!("  {rest}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect();
        let env = crate::config::validate::Env {
            lookup: &|_| None,
            is_root: false,
            config_dir: PathBuf::from("/etc/neon-watchdog"),
        };
        let c = crate::config::parse(Path::new("config.yml"), &text, &env)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .config;
        let names: Vec<&str> = c.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["host", "web", "redis"], "{text}");
        let plain = crate::config::parse(Path::new("config.yml"), STARTER_CONFIG, &env)
            .unwrap()
            .config;
        assert_eq!(plain.targets.len(), 1);
        assert_eq!(plain.interval, Duration::from_secs(INTERVAL_AS_SHIPPED));
    }
}
