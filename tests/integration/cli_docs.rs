//! The CLI documents itself: `completions bash|zsh|fish` and `man` print what the Debian
//! package ships, need no config, and are checked with the real consumers: a bash driving the
//! completion function as it does on TAB, and groff rendering the page with every warning on.
//! (zsh and fish only get a syntax check, when installed.)

use crate::harness::*;
use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

/// Every run here points -c (and the env var) at a config that does not exist.
fn no_config() -> Test {
    let t = Test::new();
    let missing = t.path("no-such-config.yml").display().to_string();
    t.env("NEON_WATCHDOG_CONFIG", &missing)
}

/// The commands `--help` lists (clap's `help` aside), as the binary says them.
fn subcommands(t: &Test) -> Vec<String> {
    let out = t.run_bare(&["--help"]);
    out.assert_code(0);
    let names: Vec<String> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 9, "too few commands in --help\n{out}");
    names
}

/// The long flags `neon-watchdog [SUB] --help` lists (--help and --version aside).
fn long_flags(t: &Test, sub: Option<&str>) -> BTreeSet<String> {
    let mut args: Vec<&str> = sub.into_iter().collect();
    args.push("--help");
    let out = t.run_bare(&args);
    out.assert_code(0);
    out.stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            l.split([' ', ','])
                .find(|w| w.starts_with("--"))
                // `--verbose...`: a flag that counts
                .map(|w| w.trim_end_matches("...").to_string())
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// Source `neon-watchdog completions bash` in a real bash and complete `words` (the last
/// one being the word under the cursor) the way bash does on TAB: the function that
/// `complete -p neon-watchdog` names, called with COMP_WORDS/COMP_CWORD set. Returns
/// COMPREPLY, one entry per line.
fn bash_complete(t: &Test, words: &[&str]) -> Vec<String> {
    let script = t.path("neon-watchdog.bash");
    if !script.exists() {
        let out = t.run_bare(&["completions", "bash"]);
        out.assert_code(0);
        std::fs::write(&script, &out.stdout).expect("write the completion script");
    }
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let program = format!(
        r#"source {script}
spec=$(complete -p neon-watchdog) || exit 3
fn=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")
[ -n "$fn" ] || {{ echo "no -F function in: $spec" >&2; exit 4; }}
COMP_WORDS=(neon-watchdog {words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$fn" neon-watchdog "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        script = script.display(),
        words = quoted.join(" "),
    );
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(&program)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "bash completing {words:?}: {:?}\n{stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_the_subcommands() {
    let t = no_config();
    assert_eq!(bash_complete(&t, &["stat"]), ["status"]);
    assert_eq!(bash_complete(&t, &["st"]), ["stop", "start", "status"]);
    assert_eq!(bash_complete(&t, &["test-"]), ["test-config"]);
    let all = bash_complete(&t, &[""]);
    for sub in subcommands(&t) {
        assert!(all.contains(&sub), "completing '' lacks {sub}: {all:?}");
    }
}

/// Fails with clap_complete's own script (clap-rs/clap#6421): past a subcommand it completed
/// nothing for a binary with a hyphen in its name.
#[test]
fn bash_completes_a_subcommands_flags() {
    let t = no_config();
    assert_eq!(bash_complete(&t, &["status", "--f"]), ["--format"]);
    assert_eq!(bash_complete(&t, &["status", "--format", "n"]), ["nagios"]);
    assert_eq!(bash_complete(&t, &["install", "--da"]), ["--daemon"]);
    assert_eq!(
        bash_complete(&t, &["test-config", "--log-f"]),
        ["--log-format"]
    );
    let shells = bash_complete(&t, &["completions", ""]);
    for sh in ["bash", "zsh", "fish"] {
        assert!(
            shells.iter().any(|s| s == sh),
            "{sh} not offered: {shells:?}"
        );
    }
    // every flag of every command is offered after it
    for sub in subcommands(&t) {
        let offered = bash_complete(&t, &[&sub, "--"]);
        for flag in long_flags(&t, Some(&sub)) {
            assert!(
                offered.contains(&flag),
                "`neon-watchdog {sub} --<TAB>` lacks {flag}: {offered:?}"
            );
        }
    }
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    let t = no_config();
    let subs = subcommands(&t);
    for (shell, marker) in [
        ("zsh", "#compdef neon-watchdog"),
        ("fish", "complete -c neon-watchdog"),
    ] {
        let out = t.run_bare(&["completions", shell]);
        out.assert_code(0).assert_stdout_contains(marker);
        for sub in &subs {
            out.assert_stdout_contains(sub);
        }
        for flag in long_flags(&t, Some("install")) {
            // zsh writes `--daemon[...]`, fish `-l daemon`
            let name = flag.trim_start_matches('-');
            out.assert_stdout_contains(name);
        }
        // a syntax check where the shell is installed (CI does not install them for this)
        if Command::new(shell).arg("--version").output().is_ok() {
            let path = t.path(&format!("completion.{shell}"));
            std::fs::write(&path, &out.stdout).expect("write the script");
            let check = Command::new(shell)
                .arg("-n")
                .arg(&path)
                .output()
                .expect("run the shell");
            assert!(
                check.status.success(),
                "{shell} -n rejects the completion script: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            // fish completes a command line on request, as on TAB
            if shell == "fish" {
                let complete = |line: &str| -> Vec<String> {
                    let out = Command::new("fish")
                        .arg("--no-config")
                        .arg("-c")
                        .arg(format!("source {}; complete -C'{line}'", path.display()))
                        .output()
                        .expect("run fish");
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .filter_map(|l| l.split('\t').next())
                        .map(str::to_string)
                        .collect()
                };
                assert_eq!(complete("neon-watchdog st"), ["status"]);
                assert_eq!(complete("neon-watchdog status --f"), ["--format"]);
            }
        }
    }
    t.run_bare(&["completions", "powershell"])
        .assert_code(64)
        .assert_stderr_contains("bash");
}

/// `man` renders with groff, every warning on, and covers the whole CLI: every command,
/// every long flag of each, every exit code of `--help`, the files and where to read on.
#[test]
fn man_page_renders_and_covers_every_command_flag_and_exit_code() {
    let t = no_config();
    let out = t.run_bare(&["man"]);
    out.assert_code(0)
        .assert_stdout_contains(".TH NEON-WATCHDOG 1");
    let page = t.path("neon-watchdog.1");
    std::fs::write(&page, &out.stdout).expect("write the page");
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-c", "-P-b", "-P-u"])
        .arg(&page)
        .stdin(Stdio::null())
        .output()
        .expect("run groff (Debian: groff-base)");
    let warnings = String::from_utf8_lossy(&groff.stderr);
    assert!(
        groff.status.success() && warnings.is_empty(),
        "groff: {:?}\n{warnings}",
        groff.status
    );
    // the rendered text, hyphenation at line ends undone
    let text = String::from_utf8_lossy(&groff.stdout)
        .replace("\u{2010}\n", "")
        .replace("-\n", "");
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let has = |needle: &str| {
        assert!(
            text.contains(needle),
            "the man page lacks {needle:?}:\n{text}"
        )
    };
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
    ] {
        has(section);
    }
    for flag in long_flags(&t, None) {
        has(&flag);
    }
    for sub in subcommands(&t) {
        has(&format!("neon-watchdog {sub}"));
        for flag in long_flags(&t, Some(&sub)) {
            has(&flag);
        }
    }
    // the exit codes `--help` lists, each with its meaning
    let help = t.run_bare(&["--help"]);
    let codes: Vec<(String, String)> = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Exit codes:"))
        .skip(1)
        .filter_map(|l| {
            let (code, meaning) = l.trim().split_once(' ')?;
            Some((code.to_string(), meaning.trim().to_string()))
        })
        .collect();
    assert!(codes.len() >= 8, "exit codes in --help:\n{help}");
    for (code, meaning) in codes {
        has(&format!("{code} {meaning}"));
    }
    for path in [
        "/etc/neon-watchdog/config.yml",
        "/var/lib/neon-watchdog/state.json",
        "NEON_WATCHDOG_CONFIG",
        "systemctl(1)",
    ] {
        has(path);
    }
}

/// Output to a reader that went away (`neon-watchdog man | head`) ends quietly, exit 0; with
/// clap_complete writing to stdout itself it panicked.
#[test]
fn a_closed_pipe_is_no_panic() {
    let t = no_config();
    for args in [&["man"][..], &["completions", "bash"]] {
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("pipe");
        drop(read);
        let out = Command::new(BIN)
            .args(args)
            .env("NEON_WATCHDOG_CONFIG", t.path("no-such-config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .output()
            .expect("run neon-watchdog");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Every key of a JSON Schema (`properties` at any depth), sorted, once each.
fn schema_keys(schema: &serde_json::Value) -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::Object(p)) = o.get("properties") {
                    out.extend(p.keys().cloned());
                }
                o.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, &mut out);
    out
}

/// groff's text on one line, blanks squeezed, a word hyphenated at a line's end made whole
/// again (its `‐` dropped; a `-` of the word kept).
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let line: String = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if out.ends_with('\u{2010}') {
            out.pop();
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push(' ');
        }
        out.push_str(&line);
    }
    out
}

/// Every `patternProperties` entry of a JSON Schema: its pattern and description.
fn schema_patterns(schema: &serde_json::Value) -> BTreeSet<(String, String)> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<(String, String)>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::Object(p)) = o.get("patternProperties") {
                    out.extend(p.iter().map(|(k, v)| {
                        let desc = v.get("description").and_then(|d| d.as_str());
                        (k.clone(), desc.unwrap_or("").to_string())
                    }));
                }
                o.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, &mut out);
    out
}

/// `man 5` is the config file's page, neon-watchdog.yml(5): it renders with groff, every
/// warning on, and has an item for every key of the config and of an included file (the keys
/// `neon-watchdog schema` lists, by name or by pattern), every form of a value, merge keys,
/// with the sections a section-5 page has.
#[test]
fn config_man_page_renders_and_names_every_config_key() {
    let t = no_config();
    let out = t.run_bare(&["man", "5"]);
    out.assert_code(0)
        .assert_stdout_contains(".TH NEON-WATCHDOG.YML 5");
    let page = t.path("neon-watchdog.yml.5");
    std::fs::write(&page, &out.stdout).expect("write the page");
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-c", "-P-b", "-P-u"])
        .arg(&page)
        .stdin(Stdio::null())
        .output()
        .expect("run groff (Debian: groff-base)");
    let warnings = String::from_utf8_lossy(&groff.stderr);
    assert!(
        groff.status.success() && warnings.is_empty(),
        "groff: {:?}\n{warnings}",
        groff.status
    );
    let text = one_line(&String::from_utf8_lossy(&groff.stdout));
    for needle in [
        "NAME",
        "neon-watchdog.yml - the configuration of neon-watchdog",
        "SYNOPSIS",
        "DESCRIPTION",
        "KEYS",
        "INCLUDED FILES",
        "EXAMPLE",
        "FILES",
        "/etc/neon-watchdog/conf.d/",
        "/usr/share/neon-watchdog/schema.json",
        "SEE ALSO",
        "neon-watchdog(1)",
    ] {
        assert!(text.contains(needle), "the page lacks {needle:?}:\n{text}");
    }
    let mut keys = BTreeSet::new();
    for args in [&["schema"][..], &["schema", "--included"]] {
        let schema = t.run_bare(args);
        schema.assert_code(0);
        let v: serde_json::Value = serde_json::from_str(&schema.stdout).expect("schema JSON");
        keys.extend(schema_keys(&v));
    }
    assert!(keys.len() > 50, "too few keys in the schemas: {keys:?}");
    for key in &keys {
        // an item of its own (`.TP`, the key in bold), and in the rendered text
        assert!(
            out.stdout.contains(&format!(".TP\n\\fB{key}\\fR\n")),
            "no item for the config key {key:?} in `man 5`"
        );
        assert!(text.contains(key.as_str()), "{key:?} is not in the text");
    }
    // a key a `patternProperties` entry admits (the top level's `x-` templates, in the
    // config and in an included file) is an item too, with its meaning: for `^PREFIX`, the
    // item PREFIXname
    let mut patterns = BTreeSet::new();
    for args in [&["schema"][..], &["schema", "--included"]] {
        let v: serde_json::Value =
            serde_json::from_str(&t.run_bare(args).stdout).expect("schema JSON");
        patterns.extend(schema_patterns(&v));
    }
    assert!(
        patterns.iter().any(|(p, _)| p == "^x-"),
        "no x- keys in the schemas: {patterns:?}"
    );
    for (pattern, desc) in &patterns {
        let label = match pattern.strip_prefix('^') {
            Some(prefix) => format!("{prefix}name"),
            None => pattern.clone(),
        };
        assert!(
            text.contains(&format!("{label} (any")),
            "no item for the keys {pattern:?} in `man 5`:\n{text}"
        );
        let desc: String = desc.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(&desc), "{desc:?} is not in the text");
    }
    // merge keys, which no schema lists, have a section with an example; included files take
    // the x- keys too
    for needle in [
        "MERGE KEYS",
        "<<: *probe",
        "<<: [*a, *b]",
        "Its keys: $schema, targets, x-name",
    ] {
        assert!(text.contains(needle), "the page lacks {needle:?}:\n{text}");
    }
    // every branch of a value that takes several forms: tcp_port is a port or host:port
    assert!(
        text.contains("tcp_port (integer, 1 to 65535; or text host:port, [IPv6]:port"),
        "tcp_port's forms:\n{text}"
    );
    // conf.d is shipped holding its README
    assert!(!text.contains("Shipped empty"), "{text}");
    assert!(text.contains("Shipped with a README only"), "{text}");
    // section 1 points to it (in roff, `-` is `\-`)
    let one = t.run_bare(&["man"]);
    one.assert_code(0)
        .assert_stdout_contains("\\fBneon\\-watchdog.yml\\fR(5)");
    t.run_bare(&["man", "8"]).assert_code(64);
}
