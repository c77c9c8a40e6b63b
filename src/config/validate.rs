//! Stage two: raw structs -> validated model. Collects every problem it finds, each with its
//! field path, instead of stopping at the first.
//!
//! This file holds the orchestration (top-level settings, targets, policies, `${NAME}`
//! expansion); each part of a target has its own module: `checks`, `actions` (action and
//! on_give_up), and `notify` (notify, heartbeat, metrics).

mod actions;
mod checks;
mod limits;
mod notify;
mod runas;

use checks::check;
pub(super) use checks::{check_key_roles, kinds_text};

use super::env::expand;
use super::model::*;
use super::raw::*;
use crate::redact::Redactor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem, at one field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
    /// The included file the path is in (as messages show it); None: the config itself.
    pub file: Option<PathBuf>,
}

/// The targets of one included file, read and parsed (`include.rs`).
pub struct TargetsFile {
    /// The file as messages show it.
    pub path: PathBuf,
    pub targets: Vec<RawTarget>,
}

/// What `include:` added to the config's own targets.
pub struct Included<'a> {
    /// `include:` was given: the config's own `targets:` may be absent or empty (the targets
    /// come from the included files, of which there may be none yet).
    pub used: bool,
    pub files: Vec<TargetsFile>,
    /// The line of a field path in a file (None: the config itself), for messages about one
    /// target that point at another.
    pub line_of: &'a dyn Fn(Option<&Path>, &str) -> Option<usize>,
}

/// Where defaults that depend on the machine come from (injected so tests are deterministic).
pub struct Env<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub is_root: bool,
    /// Directory of the config file: relative `state_file`/`lock_file` are relative to it.
    pub config_dir: PathBuf,
}

struct Ctx<'a> {
    env: &'a Env<'a>,
    issues: Vec<Issue>,
    warnings: Vec<Issue>,
    secrets: Vec<String>,
    /// The top-level `timeout_seconds`, default of every check.
    check_timeout: u64,
    /// The top-level `systemctl_path` (systemd_unit checks use it).
    systemctl_path: String,
    /// The top-level `docker_socket`, default of docker checks and actions.
    docker_socket: PathBuf,
    /// The included file whose targets are being validated (None: the config itself): its
    /// issues are reported against it, and its relative paths resolve against its directory.
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
    /// What [`exe_warning`] said of each program already looked at: 300 commands of
    /// `/bin/true` cost one look, not 300 (it stats the file; it walks PATH for a bare name).
    exe_looked: HashMap<String, Option<String>>,
    /// What [`program_warnings`] said of each program already looked at (as root).
    perms_looked: HashMap<String, Vec<String>>,
}

impl Ctx<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
            file: self.file.clone(),
        });
    }

    /// A problem of the target defined at `origin` (`field`: `.name`, `.checks[0]`, or ""),
    /// reported against its file, whichever file is being validated: for rules across
    /// targets, checked once all are read.
    fn err_at(&mut self, origin: &Origin, field: &str, message: impl Into<String>) {
        self.issues.push(Issue {
            path: format!("{}{field}", origin.path()),
            message: message.into(),
            file: origin.included.then(|| origin.file.clone()),
        });
    }

    fn warn_at(&mut self, origin: &Origin, field: &str, message: impl Into<String>) {
        self.warnings.push(Issue {
            path: format!("{}{field}", origin.path()),
            message: message.into(),
            file: origin.included.then(|| origin.file.clone()),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Issue {
            path: path.into(),
            message: message.into(),
            file: self.file.clone(),
        });
    }

    /// Expand `${NAME}`; on error, record it and return None. A value holding a NUL byte is
    /// an error too: every value of the config ends up in a path, a name, an address or an
    /// argument the system takes, none of which can hold one (it used to pass `test-config`
    /// and fail every pass: "nul byte found in provided data").
    fn expand(&mut self, path: &str, s: &str) -> Option<String> {
        let v = self.expand_text(path, s)?;
        if v.contains('\0') {
            self.err(
                path,
                format!("{NUL_BYTE}, which no path, name or address can hold (the system stops reading at it)"),
            );
            return None;
        }
        Some(v)
    }

    /// [`Ctx::expand`] without the NUL check (for values that check it themselves).
    fn expand_text(&mut self, path: &str, s: &str) -> Option<String> {
        let before = self.secrets.len();
        match expand(s, self.env.lookup, &mut self.secrets) {
            Ok(v) => {
                let short = self.secrets[before..]
                    .iter()
                    .any(|v| !v.is_empty() && v.chars().count() < crate::redact::MIN_SECRET_LEN);
                if short {
                    self.warn(
                        path,
                        format!(
                            "a ${{NAME}} value here is shorter than {} characters: too short to be a secret, it is not masked in logs",
                            crate::redact::MIN_SECRET_LEN
                        ),
                    );
                }
                Some(v)
            }
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    /// Where relative paths resolve: the directory of the file being validated.
    fn base_dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| self.env.config_dir.clone())
    }

    /// `v` as people read it in a message: quoted, with every `${NAME}` value expanded so far
    /// masked first. Messages quote values through this, never with `{:?}` of the value, so
    /// that no escaped form of a secret (`"tok\"en"`) escapes the mask.
    fn show(&self, v: &str) -> String {
        format!("{:?}", Redactor::new(self.secrets.clone()).redact(v))
    }

    /// `v` with every `${NAME}` value expanded so far masked (for messages that show a path
    /// unquoted).
    fn masked(&self, v: &str) -> String {
        Redactor::new(self.secrets.clone()).redact(v)
    }

    /// A path of the config for a file of ours (state, lock, metrics): whatever is there must
    /// be a regular file, never something to rename over, block on or read forever.
    /// Whatever is at `p` is left alone and never stops a pass (it may have been planted by
    /// someone who can write to that directory): a warning saying what it costs
    /// (`consequence`), for test-config and `run`.
    fn our_file(&mut self, key: &str, p: &Path, consequence: &str) {
        if let Some(kind) = super::file::not_regular(p) {
            let shown = self.masked(&p.display().to_string());
            self.warn(
                key,
                format!("{shown} is {kind}, not a regular file: {consequence}; remove it or choose another path"),
            );
        }
    }

    /// As root: whether another user could create the state file or the lock (`p`) first,
    /// because its directory lets others create entries (see `file::dir_open_to_others`).
    /// Each problem is a warning, never an error: such a path must not stop the checks (the
    /// caller moves the lock to a safe place, or treats the state as unwritable). True when
    /// the file itself could be created first (not merely a missing directory of ours).
    fn dir_of_ours(&mut self, key: &str, p: &Path, harm: &str, fix: &str) -> bool {
        if !self.env.is_root || p.as_os_str().is_empty() {
            return false;
        }
        let mut open = false;
        for (first, m) in super::file::dir_open_to_others(p, harm, fix) {
            let m = self.masked(&m);
            self.warn(key, m);
            open |= first;
        }
        open
    }

    fn seconds(&mut self, path: &str, v: Option<i128>, default: u64, min: i128) -> Duration {
        match v {
            None => Duration::from_secs(default),
            Some(n) if n < min => {
                let what = if min == 0 {
                    "0 or more (0 means none)"
                } else {
                    "1 or more"
                };
                self.err(path, format!("must be {what}, got {n}"));
                Duration::from_secs(default)
            }
            Some(n) if n > MAX_SECONDS => {
                self.err(
                    path,
                    format!("{n} is more than a year ({MAX_SECONDS} seconds); use a smaller value"),
                );
                Duration::from_secs(default)
            }
            Some(n) => Duration::from_secs(n as u64),
        }
    }

    fn count(&mut self, path: &str, v: Option<i128>, default: u32) -> u32 {
        match v {
            None => default,
            Some(n) if n < 1 => {
                self.err(path, format!("must be 1 or more, got {n}"));
                default
            }
            Some(n) => self.at_most_u32(path, n, 1).unwrap_or(default),
        }
    }

    /// A size in MiB (already known to be at least 1): at most what a u64 counts in bytes.
    fn mib(&mut self, path: &str, n: i128) -> Option<u64> {
        const MAX_MIB: u64 = u64::MAX >> 20;
        match u64::try_from(n) {
            Ok(v) if v <= MAX_MIB => Some(v),
            _ => {
                self.err(path, format!("{n} is out of range 1..{MAX_MIB} (MiB)"));
                None
            }
        }
    }

    /// `n` (already known to be at least `min`) as a u32, or an error giving the range.
    fn at_most_u32(&mut self, path: &str, n: i128, min: u32) -> Option<u32> {
        match u32::try_from(n) {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(path, format!("{n} is out of range {min}..{}", u32::MAX));
                None
            }
        }
    }

    /// An argv: every element expanded; a program given as a relative path with a `/`
    /// (`./start.sh`, `bin/check`) resolved against `base` (the action's `cwd`) or the
    /// config's directory, like every other path of the config (it used to resolve against
    /// the watchdog's working directory, `/` under systemd); and a warning when the program
    /// cannot be found, is not executable, or is a bare name looked up in PATH at run time.
    fn argv(&mut self, path: &str, argv: &[String], base: Option<&Path>) -> Option<Vec<String>> {
        if argv.is_empty() {
            self.err(path, "is an empty list: give the program and its arguments, e.g. [\"/usr/bin/curl\", \"-fsS\", \"http://127.0.0.1/\"]");
            return None;
        }
        let mut out = Vec::with_capacity(argv.len());
        let mut ok = true;
        for (i, a) in argv.iter().enumerate() {
            match self.expand_text(&format!("{path}[{i}]"), a) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        if out[0].is_empty() {
            self.err(format!("{path}[0]"), "the program is an empty string");
            return None;
        }
        // no program can take a NUL byte in an argument (a YAML "\0" or "\033" typo)
        if let Some(i) = out.iter().position(|a| a.contains('\0')) {
            self.err(
                format!("{path}[{i}]"),
                format!("{NUL_BYTE}, which no program can take"),
            );
            return None;
        }
        if !out[0].starts_with('/') && out[0].contains('/') {
            let base = base.map_or_else(|| self.base_dir(), Path::to_path_buf);
            let rel: PathBuf = Path::new(&out[0])
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            out[0] = base.join(rel).display().to_string();
        }
        let looked = match self.exe_looked.get(&out[0]) {
            Some(w) => w.clone(),
            None => {
                let w = exe_warning(&out[0], &self.show(&out[0]));
                self.exe_looked.insert(out[0].clone(), w.clone());
                w
            }
        };
        if let Some(w) = looked {
            self.warn(format!("{path}[0]"), w);
        }
        if self.env.is_root {
            for (i, program) in programs_run(&out) {
                let ws = match self.perms_looked.get(&program) {
                    Some(w) => w.clone(),
                    None => {
                        let w =
                            crate::config::file::program_writable_by_others(Path::new(&program));
                        self.perms_looked.insert(program.clone(), w.clone());
                        w
                    }
                };
                for w in ws {
                    self.warn(format!("{path}[{i}]"), self.masked(&w));
                }
            }
        }
        Some(out)
    }

    fn abs_path(&mut self, path: &str, v: &str) -> Option<PathBuf> {
        let v = self.expand(path, v)?;
        if v.is_empty() {
            self.err(path, "is empty: give an absolute path");
            return None;
        }
        if !v.starts_with('/') {
            let shown = self.show(&v);
            self.err(
                path,
                format!("{shown} is not an absolute path: start it with /"),
            );
            return None;
        }
        Some(PathBuf::from(v))
    }

    /// Absolute, or relative to the config file's directory.
    fn file_path(&mut self, path: &str, v: &str) -> Option<PathBuf> {
        let v = self.expand(path, v)?;
        if v.is_empty() {
            self.err(path, "is empty: give a path");
            return None;
        }
        let p = PathBuf::from(v);
        Some(if p.is_absolute() {
            p
        } else {
            self.base_dir().join(p)
        })
    }
}

/// Warn when argv[0] cannot be found or run: a bare name not in PATH, or in PATH only at run
/// time (PATH under systemd is minimal), an absolute path that does not exist or is not
/// executable. `shown` is how the message quotes it (secrets masked).
fn exe_warning(program: &str, shown: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if !program.starts_with('/') {
        let path = std::env::var("PATH").unwrap_or_default();
        let found = path
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(program))
            .find(|p| executable(p));
        return Some(match found {
            Some(full) => format!(
                "{shown} is not an absolute path: it is looked up in PATH at run time, and PATH under systemd is minimal; prefer the full path ({})",
                full.display()
            ),
            None => format!(
                "{shown} is not an absolute path and is not in PATH ({path}): it will not run; give its full path"
            ),
        });
    }
    match std::fs::metadata(program) {
        Err(e) => Some(format!(
            "{shown} cannot be found ({}): it will not run until it exists",
            crate::util::os_error(&e)
        )),
        Ok(_) if !executable(Path::new(program)) => Some(format!(
            "{shown} is not an executable file: it will not run"
        )),
        Ok(_) => None,
    }
}

/// How a program that runs another program (`env`, `timeout 5`, `nice -n 5`, `flock FILE`...)
/// or a script (`sh -e /opt/x.sh`) is read, to find what it runs.
struct Runner {
    names: &'static [&'static str],
    /// Options whose value is the next argument (`-n 5`): `-n5` and `--adjustment=5` hold
    /// theirs.
    takes_value: &'static [&'static str],
    /// Arguments before the program (`timeout`'s duration, `flock`'s file, `chrt`'s priority).
    positionals: usize,
    /// Options after which no program file follows (`sh -c`, `python3 -m`, `env -S`,
    /// `taskset -p`): what runs is then a string or a module, not a file here.
    stop: &'static [&'static str],
    /// What follows is a script (read as code by this interpreter), not a program that runs
    /// on its own.
    script: bool,
}

const RUNNERS: &[Runner] = &[
    Runner {
        names: &["env"],
        takes_value: &["-u", "--unset", "-C", "--chdir"],
        positionals: 0,
        stop: &["-S", "--split-string"],
        script: false,
    },
    Runner {
        names: &["timeout"],
        takes_value: &["-s", "--signal", "-k", "--kill-after"],
        positionals: 1,
        stop: &[],
        script: false,
    },
    Runner {
        names: &["nice"],
        takes_value: &["-n", "--adjustment"],
        positionals: 0,
        stop: &[],
        script: false,
    },
    Runner {
        names: &["ionice"],
        takes_value: &["-c", "--class", "-n", "--classdata"],
        positionals: 0,
        stop: &["-p", "--pid", "-P", "--pgid", "-u", "--uid"],
        script: false,
    },
    Runner {
        names: &["setsid", "nohup"],
        takes_value: &[],
        positionals: 0,
        stop: &[],
        script: false,
    },
    Runner {
        names: &["stdbuf"],
        takes_value: &["-i", "-o", "-e", "--input", "--output", "--error"],
        positionals: 0,
        stop: &[],
        script: false,
    },
    Runner {
        names: &["chrt"],
        takes_value: &[
            "-T",
            "--sched-runtime",
            "-P",
            "--sched-period",
            "-D",
            "--sched-deadline",
        ],
        positionals: 1,
        stop: &["-p", "--pid"],
        script: false,
    },
    Runner {
        names: &["taskset"],
        takes_value: &[],
        positionals: 1,
        stop: &["-p", "--pid"],
        script: false,
    },
    Runner {
        names: &["flock"],
        takes_value: &["-E", "--conflict-exit-code", "-w", "--wait", "--timeout"],
        positionals: 1,
        stop: &["-c", "--command"],
        script: false,
    },
    Runner {
        names: &["sh", "dash", "ash", "bash", "zsh", "ksh", "mksh"],
        takes_value: &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"],
        positionals: 0,
        stop: &["-c"],
        script: true,
    },
    Runner {
        names: &["perl"],
        takes_value: &["-I", "-M", "-m"],
        positionals: 0,
        stop: &["-e", "-E"],
        script: true,
    },
    Runner {
        names: &["ruby"],
        takes_value: &["-I", "-r"],
        positionals: 0,
        stop: &["-e"],
        script: true,
    },
    Runner {
        names: &["node", "nodejs"],
        takes_value: &["-r", "--require"],
        positionals: 0,
        stop: &["-e", "-p", "--eval", "--print"],
        script: true,
    },
    Runner {
        names: &["php"],
        takes_value: &["-c", "-d", "-z"],
        positionals: 0,
        stop: &["-r"],
        script: true,
    },
    Runner {
        names: &["python"],
        takes_value: &["-W", "-X", "--check-hash-based-pycs"],
        positionals: 0,
        stop: &["-c", "-m"],
        script: true,
    },
];

fn runner(program: &str) -> Option<&'static Runner> {
    let base = program.rsplit('/').next().unwrap_or_default();
    RUNNERS
        .iter()
        .find(|r| r.names.contains(&base) || (r.names == ["python"] && base.starts_with("python")))
}

/// The file a bare program name runs (looked up in PATH as at run time), or the path itself.
fn resolve_program(p: &str) -> Option<String> {
    if p.starts_with('/') {
        return Some(p.to_string());
    }
    if p.contains('/') {
        return None;
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(p))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// The files an argv runs as code, with their index: argv[0] (looked up in PATH when it is a
/// bare name), and through known wrappers and their options the program they run (`env
/// A=1 /opt/x`, `timeout -s KILL 5 /opt/x`, `nice -n 5`, `ionice -c 3`, `setsid`, `nohup`,
/// `stdbuf -oL`, `chrt -f 10`, `taskset -c 0`, `flock /run/x.lock /opt/x`, chained), and the
/// script an interpreter is given (`sh -e /opt/x/restart.sh`, `python3 -u /srv/app/check.py`:
/// the first argument that is no option, when it is an absolute path and no option such as
/// `-c` comes first).
fn programs_run(argv: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    // the program at `i` is a file that runs (not a script read by an interpreter)
    let mut script = false;
    while let Some(arg) = argv.get(i) {
        let file = if script {
            arg.starts_with('/').then(|| arg.clone())
        } else {
            resolve_program(arg)
        };
        if let Some(f) = file {
            if !out.iter().any(|(_, o)| *o == f) {
                out.push((i, f));
            }
        }
        if script {
            break;
        }
        let Some(r) = runner(arg) else {
            break;
        };
        let mut j = i + 1;
        let mut positionals = r.positionals;
        let mut stopped = false;
        while let Some(a) = argv.get(j) {
            if a == "--" {
                j += 1;
                // positionals still to come, then the program
                j += positionals;
                break;
            }
            let is_option = (a.starts_with('-') || (r.script && a.starts_with('+'))) && a.len() > 1;
            if is_option {
                let name = a.split('=').next().unwrap_or(a);
                // `sh -ec '...'`: a cluster of short options holding the stop letter
                let cluster_stops = r.script
                    && r.stop.contains(&"-c")
                    && !a.starts_with("--")
                    && a[1..].contains('c');
                if r.stop.contains(&name) || cluster_stops {
                    stopped = true;
                    break;
                }
                j += if r.takes_value.contains(&a.as_str()) {
                    2
                } else {
                    1
                };
                continue;
            }
            if r.names == ["env"] && a.contains('=') {
                // NAME=VALUE
                j += 1;
                continue;
            }
            if positionals > 0 {
                positionals -= 1;
                j += 1;
                continue;
            }
            break;
        }
        if stopped {
            break;
        }
        // options after flock's file (`flock FILE -c CMD`)
        if r.names == ["flock"] && argv.get(j).is_some_and(|a| r.stop.contains(&a.as_str())) {
            break;
        }
        script = r.script;
        i = j;
    }
    out
}

/// The start of the message of a value holding a NUL byte, and how one gets there.
const NUL_BYTE: &str =
    "holds a NUL byte (in YAML double quotes, \\0 or \\033 is one: write \\\\033 for a backslash)";

/// Upper bound of every `*_seconds` value: beyond it, it is a typo, and time arithmetic would
/// overflow.
pub(in crate::config) const MAX_SECONDS: i128 = 365 * 24 * 3600;

/// The longest target name, in characters: it is in every log line, in metrics labels and in
/// the name of the target's action log file (which must stay under 255 bytes).
pub const MAX_NAME_CHARS: usize = 100;

/// What is wrong with a name (a target's, a check's) that holds a character no one sees: an
/// invisible or bidirectional formatting one (`web\u{200b}` and `web` print the same; a
/// right-to-left override shows `web\u{202e}gol` as `weblog`), or a space other than the
/// ASCII one. Names are what people read in logs, `status` and alerts, and what `reset`,
/// `depends_on` and metrics queries are typed with: two must never look alike.
pub(in crate::config) fn hidden_character(n: &str) -> Option<String> {
    let (i, c) = n
        .chars()
        .enumerate()
        .find(|(_, c)| crate::util::is_invisible(*c) || crate::util::is_unusual_space(*c))?;
    let what = if crate::util::is_invisible(c) {
        "an invisible or bidirectional formatting character"
    } else {
        "a space that is not the ASCII space"
    };
    Some(format!(
        "contains {what} (U+{:04X}, character {} of the name): it would print like another name; retype the name with visible characters only",
        c as u32,
        i + 1
    ))
}

/// Validate a raw config into the model. `Err` holds every problem found; the `Ok` side
/// carries warnings (things that will work but probably not as meant).
pub fn validate(
    raw: RawConfig,
    included: Included,
    source: &Path,
    env: &Env,
) -> Result<(Config, Vec<Issue>), Vec<Issue>> {
    let mut cx = Ctx {
        env,
        issues: Vec::new(),
        warnings: Vec::new(),
        secrets: Vec::new(),
        check_timeout: 5,
        systemctl_path: "systemctl".to_string(),
        docker_socket: PathBuf::from("/var/run/docker.sock"),
        file: None,
        dir: None,
        exe_looked: HashMap::new(),
        perms_looked: HashMap::new(),
    };

    let interval = cx.seconds("interval_seconds", raw.interval_seconds, 30, 1);
    let timeout = cx.seconds("timeout_seconds", raw.timeout_seconds, 5, 1);
    cx.check_timeout = timeout.as_secs();
    let log_level = raw.log_level.as_deref().and_then(|l| {
        let parsed = LogLevel::parse(l);
        if parsed.is_none() {
            cx.err(
                "log_level",
                format!("{l:?} is not a log level: use error, warn, info, debug or trace"),
            );
        }
        parsed
    });
    let log_checks = match raw.log_checks.as_deref() {
        None => LogChecks::All,
        Some(v) => LogChecks::parse(v).unwrap_or_else(|| {
            let words = super::schema::LOG_CHECKS;
            let hint = super::de::suggest(v, words)
                .map(|w| format!(" (did you mean {w:?}?)"))
                .unwrap_or_default();
            cx.err(
                "log_checks",
                format!("{v:?} is not a log_checks value{hint}: use all or changes"),
            );
            LogChecks::All
        }),
    };
    let max_parallel = cx.count("max_parallel", raw.max_parallel, 128) as usize;
    let notify = notify::notifiers(&mut cx, raw.notify);
    let heartbeat = notify::heartbeat(&mut cx, raw.heartbeat);
    let metrics = notify::metrics(&mut cx, raw.metrics);
    let reminder_every = raw
        .reminder_every_seconds
        .map(|_| cx.seconds("reminder_every_seconds", raw.reminder_every_seconds, 0, 1));

    let state_file = match raw.state_file.as_deref() {
        Some(s) => cx.file_path("state_file", s),
        None => Some(default_state_file(env)),
    }
    .unwrap_or_default();
    let lock_file = match raw.lock_file.as_deref() {
        Some(s) => cx.file_path("lock_file", s),
        None => {
            let mut p = state_file.clone().into_os_string();
            p.push(".lock");
            Some(PathBuf::from(p))
        }
    }
    .unwrap_or_default();
    let systemctl_path = match raw.systemctl_path.as_deref() {
        Some(s) => cx.expand("systemctl_path", s).unwrap_or_default(),
        None => "systemctl".to_string(),
    };
    cx.systemctl_path = systemctl_path.clone();
    if let Some(d) = raw.docker_socket.as_deref() {
        if let Some(p) = cx.abs_path("docker_socket", d) {
            cx.docker_socket = p;
        }
    }

    let default_policy = policy(
        &mut cx,
        "default_policy",
        raw.default_policy.as_ref(),
        Policy::default(),
    );

    let mut targets = Vec::new();
    let own = match raw.targets {
        None if !included.used => {
            cx.err("targets", "is missing: list at least one target to watch");
            Vec::new()
        }
        Some(ts) if ts.is_empty() && !included.used => {
            cx.err("targets", "is empty: list at least one target to watch");
            Vec::new()
        }
        ts => ts.unwrap_or_default(),
    };
    let files = std::iter::once((None, own)).chain(
        included
            .files
            .into_iter()
            .map(|f| (Some(f.path), f.targets)),
    );
    let mut seen: HashMap<String, Origin> = HashMap::new();
    for (file, ts) in files {
        cx.dir = file.as_ref().map(|f| {
            let dir = f.parent().unwrap_or(Path::new(""));
            std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
        });
        cx.file = file.clone();
        for (i, t) in ts.into_iter().enumerate() {
            let origin = Origin {
                file: file.clone().unwrap_or_else(|| source.to_path_buf()),
                included: file.is_some(),
                index: i,
            };
            let p = origin.path();
            if let Some(name) = t.name.as_deref() {
                if let Some(first) = seen.get(name) {
                    let message = if first.file == origin.file {
                        format!(
                            "{name:?} is already the name of {}: names must be unique",
                            first.path()
                        )
                    } else {
                        let in_file = first.included.then_some(first.file.as_path());
                        let line = (included.line_of)(in_file, &format!("{}.name", first.path()))
                            .map(|l| format!(", line {l}"))
                            .unwrap_or_default();
                        format!(
                            "{name:?} is already the name of a target in {} ({}{line}): names must be unique across the config and the files it includes; rename one of them",
                            first.file.display(),
                            first.path()
                        )
                    };
                    cx.err_at(&origin, ".name", message);
                } else {
                    seen.insert(name.to_string(), origin.clone());
                }
            }
            if let Some(t) = target(&mut cx, &p, t, default_policy, origin) {
                targets.push(t);
            }
        }
    }
    cx.file = None;
    cx.dir = None;
    if included.used && targets.is_empty() && cx.issues.is_empty() {
        cx.warn(
            "include",
            "no target to watch: the config has none of its own and the included files hold none (yet); passes check nothing until a file with targets is added",
        );
    }
    dependency_graph(&mut cx, &targets, &seen);
    limits::warn(&mut cx, &targets);
    for t in &targets {
        if t.interval.is_some_and(|i| i < interval) {
            let origin = t.origin.clone();
            cx.warn_at(
                &origin,
                ".interval_seconds",
                format!(
                    "is shorter than interval_seconds ({}s): the target is checked on every pass, not more often",
                    interval.as_secs()
                ),
            );
        }
    }

    if lock_file == state_file && !state_file.as_os_str().is_empty() {
        cx.err(
            "lock_file",
            "is the state file: the lock needs a file of its own (default: state_file + \".lock\")",
        );
    }
    if state_file == source || lock_file == source {
        let which = if state_file == source {
            "state_file"
        } else {
            "lock_file"
        };
        cx.err(which, "is the config file itself: choose another path");
    }
    // As root, a state file or a lock in a directory other users can create entries in
    // (/run/lock, /tmp) could be created first by them: a FIFO, a file of theirs, a lock they
    // hold. That never stops the checks (a config error would stop every one of them, which is
    // worse than what it prevents): the lock moves to a path only root can write, the same
    // for every instance of this config; the state is not used, as an unwritable one.
    let state_untrusted = cx
        .dir_of_ours(
            "state_file",
            &state_file,
            "another user could create the state file there first (a FIFO, a file of theirs), so it is neither read nor written: the checks run and are logged, but `check` runs no action (reason=state_unwritable; `run` keeps its memory in the process)",
            "leave state_file unset (/var/lib/neon-watchdog/state.json) or put it in a directory only root can write",
        )
        .then(|| {
            format!(
                "state file {} is not used: other users can create files in {}; fix: leave state_file unset (/var/lib/neon-watchdog/state.json) or put it in a directory only root can write (see `neon-watchdog test-config`)",
                cx.masked(&state_file.display().to_string()),
                cx.masked(&crate::files::parent(&state_file).display().to_string()),
            )
        });
    if state_untrusted.is_none() && !state_file.as_os_str().is_empty() {
        cx.our_file(
            "state_file",
            &state_file,
            "the state cannot be saved there, so the checks run but no action does",
        );
    }
    let mut lock_file = lock_file;
    if !lock_file.as_os_str().is_empty() && lock_file != state_file {
        let safe = safe_lock_path(&lock_file);
        let harm = format!(
            "another user could create the lock file there first and hold it, so the lock is taken at {} instead (a directory only root can write): the checks and actions go on, whatever is put at the configured path",
            safe.display()
        );
        if cx.dir_of_ours(
            "lock_file",
            &lock_file,
            &harm,
            "leave lock_file unset (it lives beside the state file) or put it in a directory only root can write (/run/neon-watchdog/)",
        ) {
            lock_file = safe;
        } else {
            cx.our_file(
                "lock_file",
                &lock_file,
                "the lock cannot be taken there, so the checks run but no action does",
            );
        }
    }

    // Messages may quote expanded values: mask them like every other output.
    let redactor = Redactor::new(cx.secrets.clone());
    // ... in any form: a message that quoted a value with `{:?}` or as JSON holds it escaped
    let escaped: Vec<String> = cx
        .secrets
        .iter()
        .filter(|v| v.chars().count() >= crate::redact::MIN_SECRET_LEN)
        .flat_map(|v| {
            let debug = format!("{v:?}");
            let json = serde_json::to_string(v).unwrap_or_default();
            [debug, json]
        })
        .filter_map(|q| q.get(1..q.len().saturating_sub(1)).map(str::to_string))
        .filter(|e| !e.is_empty() && !cx.secrets.contains(e))
        .collect();
    let mask = |issues: Vec<Issue>| -> Vec<Issue> {
        issues
            .into_iter()
            .map(|i| {
                let mut message = redactor.redact(&i.message);
                for e in &escaped {
                    message = message.replace(e.as_str(), crate::redact::MASK);
                }
                Issue {
                    path: i.path,
                    message,
                    file: i.file,
                }
            })
            .collect()
    };
    if !cx.issues.is_empty() {
        return Err(mask(cx.issues));
    }
    cx.warnings = mask(std::mem::take(&mut cx.warnings));
    let uses_systemd = targets
        .iter()
        .any(|t| matches!(t.action, Action::Systemd(_)));
    if uses_systemd {
        let shown = cx.show(&systemctl_path);
        if let Some(w) =
            exe_warning(&systemctl_path, &shown).filter(|_| systemctl_path.starts_with('/'))
        {
            cx.warn("systemctl_path", w);
        }
    }
    let config = Config {
        source: source.to_path_buf(),
        interval,
        timeout,
        log_level,
        log_checks,
        state_file,
        state_untrusted,
        lock_file,
        max_parallel,
        systemctl_path,
        default_policy,
        targets,
        reminder_every,
        notify,
        heartbeat,
        metrics,
        redactor,
        includes: Vec::new(),
    };
    Ok((config, cx.warnings))
}

/// Where the lock is taken, as root, when `lock_file` lies in a directory other users can
/// create entries in: /run/neon-watchdog/ (created 0700; only root can write /run), under a
/// name every instance of the same config computes alike (the configured name, then a hash
/// of the whole configured path: two configs that share a lock_file still share the lock).
pub(crate) fn safe_lock_path(configured: &Path) -> PathBuf {
    let name: String = configured
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let name = name.trim_start_matches('.');
    let hash = crate::util::fnv1a(&configured.to_string_lossy());
    PathBuf::from(format!("/run/neon-watchdog/{name}-{hash:08x}"))
}

fn default_state_file(env: &Env) -> PathBuf {
    if env.is_root {
        return PathBuf::from("/var/lib/neon-watchdog/state.json");
    }
    let base = (env.lookup)("XDG_STATE_HOME")
        .filter(|s| s.starts_with('/'))
        .map(PathBuf::from)
        .or_else(|| {
            (env.lookup)("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".local/state"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("neon-watchdog/state.json")
}

fn policy(cx: &mut Ctx, p: &str, raw: Option<&RawPolicy>, base: Policy) -> Policy {
    let Some(raw) = raw else { return base };
    let fail_threshold = cx.count(
        &format!("{p}.fail_threshold"),
        raw.fail_threshold,
        base.fail_threshold,
    );
    // an absent key keeps the base's value; a present one is checked (0 allowed: "off")
    let secs = |cx: &mut Ctx, key: &str, v: Option<i128>, base: Duration| match v {
        None => base,
        Some(_) => cx.seconds(&format!("{p}.{key}"), v, base.as_secs(), 0),
    };
    let restart_cooldown = secs(
        cx,
        "restart_cooldown_seconds",
        raw.restart_cooldown_seconds,
        base.restart_cooldown,
    );
    let restart_grace = secs(
        cx,
        "restart_grace_seconds",
        raw.restart_grace_seconds,
        base.restart_grace,
    );
    let backoff_initial = secs(
        cx,
        "backoff_initial_seconds",
        raw.backoff_initial_seconds,
        base.backoff_initial,
    );
    let backoff_max = secs(
        cx,
        "backoff_max_seconds",
        raw.backoff_max_seconds,
        base.backoff_max,
    );
    let backoff_multiplier = match raw.backoff_multiplier {
        None => base.backoff_multiplier,
        Some(m) if m.is_finite() && (1.0..=100.0).contains(&m) => m,
        Some(m) => {
            cx.err(
                format!("{p}.backoff_multiplier"),
                format!("must be between 1 and 100 (1: a constant wait, 2: doubling), got {m}"),
            );
            base.backoff_multiplier
        }
    };
    let give_up_after_restarts = match raw.give_up_after_restarts {
        None => base.give_up_after_restarts,
        Some(n) if n < 0 => {
            cx.err(
                format!("{p}.give_up_after_restarts"),
                format!("must be 0 or more (0 means never give up), got {n}"),
            );
            base.give_up_after_restarts
        }
        Some(n) => cx
            .at_most_u32(&format!("{p}.give_up_after_restarts"), n, 0)
            .unwrap_or(base.give_up_after_restarts),
    };
    if !backoff_max.is_zero() && backoff_max < backoff_initial {
        cx.err(
            format!("{p}.backoff_max_seconds"),
            format!(
                "{}s is less than backoff_initial_seconds ({}s): the cap must be at least the first wait",
                backoff_max.as_secs(),
                backoff_initial.as_secs()
            ),
        );
    }
    Policy {
        fail_threshold,
        restart_cooldown,
        max_restarts_per_hour: cx.count(
            &format!("{p}.max_restarts_per_hour"),
            raw.max_restarts_per_hour,
            base.max_restarts_per_hour,
        ),
        restart_grace,
        backoff_initial,
        backoff_multiplier,
        backoff_max,
        give_up_after_restarts,
    }
}

fn target(
    cx: &mut Ctx,
    p: &str,
    t: RawTarget,
    default_policy: Policy,
    origin: Origin,
) -> Option<Target> {
    let before = cx.issues.len();
    let name = match t.name {
        None => {
            cx.err(
                format!("{p}.name"),
                "is missing: every target needs a unique name",
            );
            String::new()
        }
        Some(n) if n.trim().is_empty() => {
            cx.err(
                format!("{p}.name"),
                "is empty: every target needs a unique name",
            );
            n
        }
        Some(n) if n.chars().any(char::is_control) => {
            let shown = cx.show(&n);
            cx.err(
                format!("{p}.name"),
                format!("{shown} contains control characters"),
            );
            n
        }
        Some(n) if hidden_character(&n).is_some() => {
            let why = hidden_character(&n).unwrap_or_default();
            let shown = cx.show(&n);
            cx.err(format!("{p}.name"), format!("{shown} {why}"));
            n
        }
        Some(n) if n.chars().count() > MAX_NAME_CHARS => {
            cx.err(
                format!("{p}.name"),
                format!(
                    "is {} characters long: a name has at most {MAX_NAME_CHARS} (it is in every log line and names the target's action log file)",
                    n.chars().count()
                ),
            );
            n
        }
        Some(n) => n,
    };
    let mut checks = Vec::new();
    match t.checks {
        None => cx.err(
            format!("{p}.checks"),
            format!("is missing: give at least one check ({})", kinds_text()),
        ),
        Some(cs) if cs.is_empty() => cx.err(
            format!("{p}.checks"),
            format!("is empty: give at least one check ({})", kinds_text()),
        ),
        Some(cs) => {
            for (i, c) in cs.into_iter().enumerate() {
                if let Some(c) = check(cx, &format!("{p}.checks[{i}]"), c) {
                    let given = |s: &CheckSpec| s.name.clone();
                    if let Some(n) =
                        given(&c).filter(|n| checks.iter().any(|o| given(o).as_ref() == Some(n)))
                    {
                        cx.err(
                            format!("{p}.checks[{i}].name"),
                            format!("{} names another check of this target too: names tell checks apart in logs and metrics", cx.show(&n)),
                        );
                    }
                    checks.push(c);
                }
            }
        }
    }
    let policy = policy(
        cx,
        &format!("{p}.policy"),
        t.policy.as_ref(),
        default_policy,
    );
    let action = match t.action {
        None => {
            cx.err(
                format!("{p}.action"),
                "is missing: give `exec:`, `systemd:` or `docker:` to recover, or `action: none` to only monitor",
            );
            None
        }
        Some(a) => actions::action(cx, &format!("{p}.action"), a),
    };
    let on_give_up = t
        .on_give_up
        .and_then(|g| actions::on_give_up(cx, &format!("{p}.on_give_up"), g, &policy));
    let interval = t
        .interval_seconds
        .map(|_| cx.seconds(&format!("{p}.interval_seconds"), t.interval_seconds, 0, 1));
    let depends_on = depends_on(cx, p, &name, t.depends_on.unwrap_or_default());
    if cx.issues.len() > before {
        return None;
    }
    Some(Target {
        name,
        enabled: t.enabled.unwrap_or(true),
        checks,
        policy,
        action: action?,
        on_give_up,
        depends_on,
        interval,
        origin,
    })
}

/// A target's `depends_on:` list on its own: names, not empty, each once, not itself. That
/// each names a target, and that they form no cycle, is [`dependency_graph`]'s.
fn depends_on(cx: &mut Ctx, p: &str, name: &str, deps: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(deps.len());
    for (i, d) in deps.into_iter().enumerate() {
        let at = format!("{p}.depends_on[{i}]");
        if d.trim().is_empty() {
            cx.err(at, "is empty: give the name of another target");
        } else if d == name {
            cx.err(
                at,
                format!(
                    "{} is this target itself: a target cannot depend on itself",
                    cx.show(&d)
                ),
            );
        } else if out.contains(&d) {
            cx.err(at, format!("{} is listed twice", cx.show(&d)));
        } else {
            out.push(d);
        }
    }
    out
}

/// Every `depends_on:` names a target of the config (or of a file it includes), and no
/// target depends on itself through others (`a -> b -> a`): a cycle would hold every action
/// in it forever once one is down. `named` holds every name given, also of targets with
/// errors of their own (not reported again as unknown).
fn dependency_graph(cx: &mut Ctx, targets: &[Target], named: &HashMap<String, Origin>) {
    let index: HashMap<&str, usize> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    for t in targets {
        for (j, d) in t.depends_on.iter().enumerate() {
            if !named.contains_key(d.as_str()) {
                let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                let hint = super::de::suggest(d, &names)
                    .map(|c| format!(" (did you mean {c:?}?)"))
                    .unwrap_or_default();
                let message = format!("{} is not the name of a target{hint}", cx.show(d));
                cx.err_at(&t.origin, &format!(".depends_on[{j}]"), message);
            }
        }
    }
    // depth-first search; each cycle is reported once, at its first member in config order
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; targets.len()];
    for start in 0..targets.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // (target, next dependency to visit)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Open;
        while let Some(&mut (at, ref mut next)) = stack.last_mut() {
            let deps = &targets[at].depends_on;
            if *next >= deps.len() {
                mark[at] = Mark::Done;
                stack.pop();
                continue;
            }
            let d = &deps[*next];
            *next += 1;
            let Some(&to) = index.get(d.as_str()) else {
                continue;
            };
            match mark[to] {
                Mark::New => {
                    mark[to] = Mark::Open;
                    stack.push((to, 0));
                }
                Mark::Open => {
                    let from = stack.iter().position(|(i, _)| *i == to).unwrap_or(0);
                    let mut names: Vec<&str> = stack[from..]
                        .iter()
                        .map(|(i, _)| targets[*i].name.as_str())
                        .collect();
                    names.push(targets[to].name.as_str());
                    let (_, j) = stack[stack.len() - 1];
                    let message = format!(
                        "makes a dependency cycle: {}; a cycle would hold every action in it while one is down: remove one of these dependencies",
                        names.join(" -> ")
                    );
                    let origin = targets[at].origin.clone();
                    cx.err_at(&origin, &format!(".depends_on[{}]", j - 1), message);
                }
                Mark::Done => {}
            }
        }
    }
}

fn process_name(cx: &mut Ctx, p: &str, n: &str) -> Option<String> {
    let n = cx.expand(p, n)?;
    if n.is_empty() {
        cx.err(p, "is empty: give the program name, e.g. nginx");
        return None;
    }
    if n.contains('/') {
        let base = cx.show(n.rsplit('/').next().unwrap_or_default());
        let shown = cx.show(&n);
        cx.err(
            p,
            format!("{shown} is a path: process_name takes the program name ({base}); use pid_file to pin one process"),
        );
        return None;
    }
    Some(n)
}

/// `host:port`, `[v6]:port`, or a bare port (127.0.0.1).
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    parse_host_port_shown(s, &|v| format!("{v:?}"))
}

/// [`parse_host_port`], quoting the value in messages with `show` (the config masks secrets
/// in it first).
fn parse_host_port_shown(s: &str, show: &dyn Fn(&str) -> String) -> Result<(String, u16), String> {
    let s = s.trim();
    let q = show(s);
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(format!("{q} has an unclosed `[`: write IPv6 as [::1]:80"));
        };
        let host = &rest[..end];
        let Some(port) = rest[end + 1..].strip_prefix(':') else {
            return Err(format!(
                "{q} has no port: write [{}]:PORT",
                show(host).trim_matches('"')
            ));
        };
        (host.to_string(), port)
    } else if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
        ("127.0.0.1".to_string(), s)
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                    "{q} looks like IPv6 without brackets: write [{}]:PORT",
                    show(h).trim_matches('"')
                ))
            }
            Some((h, p)) => (h.to_string(), p),
            None => {
                return Err(format!(
                    "{q} has no port: write host:port, e.g. 127.0.0.1:8080"
                ))
            }
        }
    };
    if host.is_empty() {
        return Err(format!(
            "{q} has no host: write host:port, e.g. 127.0.0.1:8080"
        ));
    }
    match port.parse::<u128>() {
        Ok(p) if (1..=65535).contains(&p) => Ok((host, p as u16)),
        Ok(p) => Err(format!(
            "port {} is out of range 1..65535",
            show(&p.to_string()).trim_matches('"')
        )),
        Err(_) => Err(format!("{} is not a port number (1..65535)", show(port))),
    }
}

#[cfg(test)]
mod lock_path_tests {
    use super::safe_lock_path;
    use std::path::Path;

    /// Every instance of a config computes the same safe lock path from the same lock_file
    /// (so they still keep apart), and distinct lock_files get distinct ones.
    #[test]
    fn the_safe_lock_path_is_the_same_for_the_same_lock_file() {
        let a = safe_lock_path(Path::new("/run/lock/neon-watchdog.lock"));
        assert_eq!(a, safe_lock_path(Path::new("/run/lock/neon-watchdog.lock")));
        assert!(a.starts_with("/run/neon-watchdog/"), "{a:?}");
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("neon-watchdog.lock-"));
        assert_ne!(a, safe_lock_path(Path::new("/tmp/neon-watchdog.lock")));
        // a name that would be hidden or odd is made plain, and stays one component
        let b = safe_lock_path(Path::new("/tmp/.a b/..\n"));
        assert_eq!(b.parent(), Some(Path::new("/run/neon-watchdog")), "{b:?}");
    }
}
