//! The CLI documents itself: `neon-watchdog man` (roff, the whole CLI on one page,
//! neon-watchdog.1) and `neon-watchdog completions SHELL`, both generated from the clap
//! definitions, so they never drift from the parser. The Debian package ships exactly what
//! these print (packaging/deb/build.sh runs the built binary).
//!
//! clap_mangen renders one `Command` per page and points at a page per subcommand
//! (`neon-watchdog-check(1)`). Here every subcommand becomes a subsection of COMMANDS on the
//! one page instead (its synopsis, what it does, its own flags), and the page gets the
//! sections a man page needs that clap does not know: EXIT STATUS (from [`crate::exit::TABLE`],
//! the one list of codes), ENVIRONMENT (from the flags' `env`), FILES and SEE ALSO.
//!
//! An edge module beside `cli`: only `cli` imports it; it takes the `clap::Command` as an
//! argument instead of importing `cli` (no cycle).

mod config_page;

use crate::exit::TABLE;
use clap::Command;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;
use std::io::Write;

/// The shells `completions` writes for (the ones the Debian package ships).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The completion script for `shell`, for the command named `bin_name`.
pub fn completions(mut cmd: Command, shell: Shell, bin_name: &str) -> Vec<u8> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // into memory: clap_complete panics when its writer fails (a closed pipe); the caller
    // writes the bytes and handles that
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin_name, &mut out);
    if shell == clap_complete::Shell::Bash {
        out = fix_bash_hyphen(&out, bin_name);
    }
    out
}

/// clap_complete's bash script (4.6.12) never completes past a subcommand when the binary's
/// name has a hyphen (clap-rs/clap#6421): its loop names the state `neon__watchdog__subcmd__
/// status` but the `case` arms say `neon__subcmd__watchdog__subcmd__status`, so `neon-watchdog
/// status --<TAB>` offered nothing. Spell the arms the way the loop does; once clap_complete
/// is fixed there is nothing to replace (the integration test `bash_completes_a_subcommands_
/// flags` checks the result either way).
fn fix_bash_hyphen(script: &[u8], bin_name: &str) -> Vec<u8> {
    const SEP: &str = "__subcmd__";
    let broken = format!("{}{SEP}", bin_name.replace('-', SEP));
    let loop_spelling = format!("{}{SEP}", bin_name.replace('-', "__"));
    String::from_utf8_lossy(script)
        .replace(&broken, &loop_spelling)
        .into_bytes()
}

/// What the page says after the one-line summary.
const DESCRIPTION: &[&str] = &[
    "neon-watchdog checks the targets its configuration names (processes, pid files, TCP \
     ports, HTTP endpoints, TLS certificates, systemd units, Docker containers, commands, \
     disk space and load) and runs their recovery action when they fail, with a policy that \
     never makes an outage worse: thresholds, grace after a start, cooldown, backoff, an \
     hourly cap and giving up.",
    "It runs either once per tick of a systemd timer (neon-watchdog check, the package's \
     neon-watchdog.timer) or as a long-lived loop (neon-watchdog run, \
     neon-watchdog-daemon.service); use one or the other. Each pass loads the config, takes \
     the lock, runs every due target's checks, decides, saves the state file atomically, runs \
     the actions, and exits with the codes under EXIT STATUS.",
    "The configuration (YAML or JSON) holds commands that run as root: keep it owned by root \
     and not writable by others; check and run refuse it otherwise. Every key is described in \
     neon-watchdog.yml(5) (neon-watchdog man 5) and the README (below under SEE ALSO); \
     neon-watchdog test-config validates a config and prints what it means after defaults.",
    "Each event is one line on stderr (logfmt, or JSON with --log-format json); under systemd \
     it goes to the journal with its priority and fields. journalctl -u neon-watchdog -p \
     notice shows the incidents start to end (a target going down, the action run, how it \
     ended, the target back), without the routine lines; log_checks: changes in the config \
     logs a check's OK result only when it changed, for a quiet journal.",
    "For maintenance, an operator works with it from the shell: neon-watchdog pause nginx \
     --for 2h keeps it from checking or starting nginx (resume ends it early); stop and start \
     pause and resume a target around its own stop and start; restart runs its recovery \
     action at once, whatever the cooldown or the hourly cap say; check nginx checks that \
     target alone; status nginx shows it in detail, with why the policy waits and until when. \
     These verbs mean the same whether a timer or a running loop holds the state.",
];

/// FILES: path and what it is.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/neon-watchdog/config.yml",
        "The configuration (the default of -c). The package ships a monitor-only starter \
         config (a conffile: an upgrade never overwrites local changes).",
    ),
    (
        "/etc/neon-watchdog/conf.d/*.yml",
        "Targets dropped in by other packages or configuration management, when the config \
         says include: [conf.d/*.yml].",
    ),
    (
        "/var/lib/neon-watchdog/state.json",
        "The policy's memory (state_file): failures, restarts, backoff per target. Safe to \
         delete: the next pass starts fresh.",
    ),
    (
        "/var/lib/neon-watchdog/state.json.lock",
        "The lock (lock_file) that keeps two passes from running at once (exit 75).",
    ),
    (
        "/var/lib/neon-watchdog/TARGET.action.log",
        "The output of the last exec action of a target (the last 64 KiB, secrets masked).",
    ),
    (
        "/usr/lib/systemd/system/neon-watchdog.timer",
        "Starts neon-watchdog.service every 30 seconds; the package enables it.",
    ),
    (
        "/usr/lib/systemd/system/neon-watchdog.service",
        "One check pass with the config above.",
    ),
    (
        "/usr/lib/systemd/system/neon-watchdog-daemon.service",
        "The loop (run) instead of the timer; not enabled by the package, and it conflicts \
         with the timer: systemctl disable --now neon-watchdog.timer, then systemctl enable \
         --now neon-watchdog-daemon.service.",
    ),
];

/// SEE ALSO: (page, section).
const SEE_ALSO: &[(&str, &str)] = &[
    ("neon-watchdog.yml", "5"),
    ("systemctl", "1"),
    ("journalctl", "1"),
    ("systemd.timer", "5"),
    ("systemd.service", "5"),
    ("systemd.exec", "5"),
];

/// The whole manual page, neon-watchdog.1, as roff.
pub fn man(cmd: Command) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let version = cmd.get_version().unwrap_or_default().to_string();
    // the subcommands as written, before clap adds `help` and copies the global flags in
    let subcommands: Vec<Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let man = Man::new(cmd.clone())
        .title(name.to_uppercase())
        .source(format!("{name} {version}"))
        .manual("neon-watchdog manual");

    let mut page = Vec::new();
    // each fragment clap_mangen renders starts with the same two-line preamble: keep the first
    let _ = man.render_title(&mut page);
    append(&mut page, |w| man.render_name_section(w), Keep::Heading);
    append(&mut page, |w| man.render_synopsis_section(w), Keep::Heading);

    let mut r = Roff::new();
    r.control("SH", ["DESCRIPTION"]);
    for (i, p) in DESCRIPTION.iter().enumerate() {
        if i > 0 {
            r.control("PP", []);
        }
        r.text([roman(*p)]);
    }
    append_roff(&mut page, &r);

    // OPTIONS: the flags of neon-watchdog itself (the global ones are accepted after the
    // subcommand too)
    let globals: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let mut r = Roff::new();
    r.control("SH", ["OPTIONS"]);
    r.text([roman(format!(
        "{} are accepted before or after the command; the others before it (and where a \
         command lists them, after it too).",
        globals.join(", ")
    ))]);
    append_roff(&mut page, &r);
    append(&mut page, |w| man.render_options_section(w), Keep::Body);

    let mut r = Roff::new();
    r.control("SH", ["COMMANDS"]);
    append_roff(&mut page, &r);
    for sub in subcommands {
        let full = format!("{name} {}", sub.get_name());
        let mut r = Roff::new();
        r.control("SS", [full.as_str()]);
        append_roff(&mut page, &r);
        // a page of its own for the subcommand, without the flags every page has, of which
        // only the body of its synopsis, description and options are kept
        let sub = sub
            .bin_name(&full)
            .display_name(&full)
            .disable_help_flag(true);
        let has_args = sub.get_arguments().any(|a| !a.is_hide_set());
        let sub_man = Man::new(sub);
        append(
            &mut page,
            |w| sub_man.render_synopsis_section(w),
            Keep::Body,
        );
        let mut r = Roff::new();
        r.control("PP", []);
        append_roff(&mut page, &r);
        append(
            &mut page,
            |w| sub_man.render_description_section(w),
            Keep::Body,
        );
        if has_args {
            append(&mut page, |w| sub_man.render_options_section(w), Keep::Body);
        }
    }

    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for line in TABLE.lines().skip(1) {
        let (code, meaning) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(meaning.trim())]);
    }

    r.control("SH", ["ENVIRONMENT"]);
    let mut env: Vec<(String, String)> = cmd
        .get_arguments()
        .chain(cmd.get_subcommands().flat_map(|s| s.get_arguments()))
        .filter_map(|a| {
            let var = a.get_env()?.to_string_lossy().into_owned();
            let flag = format!("--{}", a.get_long()?);
            Some((var, flag))
        })
        .collect();
    env.sort();
    env.dedup();
    for (var, flag) in env {
        r.control("TP", []);
        r.text([bold(var)]);
        r.text([roman("The same as "), bold(flag), roman(".")]);
    }

    r.control("SH", ["FILES"]);
    for (path, what) in FILES {
        r.control("TP", []);
        r.text([italic(*path)]);
        r.text([roman(*what)]);
    }

    r.control("SH", ["SEE ALSO"]);
    let mut refs = Vec::new();
    for (i, (page_name, section)) in SEE_ALSO.iter().enumerate() {
        if i > 0 {
            refs.push(roman(", "));
        }
        refs.push(bold(*page_name));
        refs.push(roman(format!("({section})")));
    }
    r.text(refs);
    r.control("PP", []);
    r.text([
        roman("The README, with every configuration key: "),
        italic("/usr/share/doc/neon-watchdog/README.md"),
        roman(" (in the package), or README.md in the source."),
    ]);
    append_roff(&mut page, &r);
    page
}

/// The config file's manual page, neon-watchdog.yml(5), as roff: every key, from the JSON
/// Schema (see [`config_page`]).
pub fn config_man(version: &str) -> Vec<u8> {
    config_page::page(version)
}

/// Which lines of a clap_mangen section to keep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The whole section.
    Heading,
    /// Its body only: the `.SH` line goes (the page puts the body under a heading of its own).
    Body,
}

/// Append what `render` writes, without roff's preamble (the page has it once, at the top).
fn append(
    page: &mut Vec<u8>,
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    keep: Keep,
) {
    let mut buf = Vec::new();
    // writing into a Vec cannot fail
    let _ = render(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    for line in text.lines() {
        let preamble = line.starts_with(r".ie \n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if preamble || (keep == Keep::Body && line.starts_with(".SH")) {
            continue;
        }
        page.extend_from_slice(line.as_bytes());
        page.push(b'\n');
    }
}

fn append_roff(page: &mut Vec<u8>, r: &Roff) {
    append(page, |w| r.to_writer(w), Keep::Heading);
}
