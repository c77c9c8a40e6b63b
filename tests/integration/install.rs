//! `install` and `uninstall`: the units and the starter config they write, checked with the
//! real `systemd-analyze verify` and the binary's own `test-config`.
//!
//! With `--root DIR` everything lands in the test's directory and no systemctl runs. The
//! systemctl calls of a live install need /etc/systemd/system: those tests run the binary in
//! a private mount namespace (`unshare -m`) with a directory of the test bind-mounted over
//! /etc/systemd/system, so the host's units are never touched, and with a stand-in
//! `systemctl` first in PATH: this host is not booted with systemd (the system suite,
//! `tests/system/systemd`, installs and switches modes under a real one).

use crate::harness::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MARKER: &str = "# Installed by neon-watchdog install; `neon-watchdog uninstall` removes it.";

/// The binary as install names it (it canonicalizes its own path).
fn bin() -> String {
    std::fs::canonicalize(BIN)
        .expect("canonicalize the binary")
        .display()
        .to_string()
}

/// `install --root {dir}/root ...`, with the image root created first.
fn install_root(t: &Test, extra: &[&str]) -> Output {
    let root = t.path("root");
    std::fs::create_dir_all(&root).expect("create root");
    let root = root.display().to_string();
    let mut args = vec!["install", "--root", root.as_str()];
    args.extend_from_slice(extra);
    t.run_bare(&args)
}

fn unit(t: &Test, name: &str) -> PathBuf {
    t.path(&format!("root/etc/systemd/system/{name}"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

/// The one line of `text` that starts with `key=`.
#[track_caller]
fn setting<'a>(text: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    let found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "{key}= lines: {found:?}\n{text}");
    found[0]
}

/// `systemd-analyze verify` on unit files, as packaging/systemd/verify.sh runs it: fails on a
/// non-zero exit or on any diagnostic about our units.
#[track_caller]
fn verify(units: &[PathBuf]) {
    let mut cmd = std::process::Command::new("systemd-analyze");
    cmd.env("SYSTEMD_LOG_COLOR", "0")
        .args([
            "verify",
            "--man=no",
            "--generators=no",
            "--recursive-errors=one",
        ])
        .args(units)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = spawn_cmd(&mut cmd)
        .wait_with_output()
        .expect("run systemd-analyze (Debian package systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("neon-watchdog") || units.iter().any(|u| l.contains(&*u.to_string_lossy()))
        })
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify {units:?}: {:?}\n{text}",
        out.status
    );
}

/// Every entry under `dir`: its inode, mtime (ns), mode and size.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, i64, u32, u64)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("stat");
            if m.is_dir() {
                todo.push(p.clone());
            }
            out.insert(p, (m.ino(), m.mtime(), m.mtime_nsec(), m.mode(), m.size()));
        }
    }
    out
}

#[test]
fn install_root_writes_units_naming_the_binary_the_config_and_the_tick() {
    let t = Test::new();
    let out = install_root(&t, &["--interval", "45"]);
    out.assert_code(0);
    let service = read(&unit(&t, "neon-watchdog.service"));
    let timer = read(&unit(&t, "neon-watchdog.timer"));
    assert!(service.starts_with(&format!("{MARKER}\n")), "{service}");
    assert!(timer.starts_with(&format!("{MARKER}\n")), "{timer}");
    assert_eq!(
        setting(&service, "ExecStart"),
        format!("{} check -c /etc/neon-watchdog/config.yml", bin())
    );
    assert_eq!(setting(&timer, "OnUnitActiveSec"), "45s");
    assert_eq!(setting(&timer, "OnBootSec"), "45s");
    assert!(
        !unit(&t, "neon-watchdog-daemon.service").exists(),
        "timer mode wrote the daemon unit"
    );
    // the same units as packaging/systemd, but for the marker and the replaced lines
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd/neon-watchdog.service"),
    )
    .expect("read the shipped unit");
    let kept = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                !l.starts_with("ExecStart=")
                    && !l.starts_with("# Installed by")
                    && !l.starts_with("# Change it with a drop-in")
            })
            .map(String::from)
            .collect()
    };
    assert_eq!(kept(&service), kept(&shipped));

    // the starter config: the same tick, root's only, and valid on a bare host
    let config = t.path("root/etc/neon-watchdog/config.yml");
    let text = read(&config);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("interval_seconds:"))
            .collect::<Vec<_>>(),
        ["interval_seconds: 45"]
    );
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(&t.path("root/etc/neon-watchdog")), 0o755);
    assert_eq!(mode(&unit(&t, "neon-watchdog.service")), 0o644);
    assert_eq!(mode(&unit(&t, "neon-watchdog.timer")), 0o644);
    assert_eq!(mode(&t.path("root/etc/systemd/system")), 0o755);
    let cfg = config.display().to_string();
    let tc = t.run_bare(&["test-config", "-c", &cfg]);
    tc.assert_code(0).assert_stdout_contains("valid, 1 target");
    tc.assert_stdout_contains("interval 45s");

    verify(&[
        unit(&t, "neon-watchdog.service"),
        unit(&t, "neon-watchdog.timer"),
    ]);
    out.assert_stdout_contains(&format!(
        "created {}",
        unit(&t, "neon-watchdog.timer").display()
    ))
    .assert_stdout_contains(&format!("created {cfg}"))
    .assert_stdout_contains("ran no systemctl (--root)");
}

#[test]
fn a_second_identical_install_changes_nothing() {
    let t = Test::new();
    install_root(&t, &["--interval", "20"]).assert_code(0);
    let before = snapshot(&t.path("root"));
    assert_eq!(before.len(), 7, "{before:#?}");
    let out = install_root(&t, &["--interval", "20"]);
    out.assert_code(0);
    assert_eq!(snapshot(&t.path("root")), before, "{out}");
    for name in ["neon-watchdog.service", "neon-watchdog.timer"] {
        out.assert_stdout_contains(&format!("unchanged {}", unit(&t, name).display()));
    }
    out.assert_stdout_contains("install never overwrites a config");
    assert!(!out.stdout.contains("created"), "{out}");
    // without --interval: the existing config's tick, still nothing to do
    let out = install_root(&t, &[]);
    out.assert_code(0);
    assert_eq!(snapshot(&t.path("root")), before, "{out}");
}

#[test]
fn an_existing_config_is_never_overwritten_and_sets_the_tick() {
    let t = Test::new();
    let mine = "# mine\ninterval_seconds: 60\ntargets:\n  - name: app\n    checks:\n      - command: [\"/bin/true\"]\n    action: none\n";
    let config = t.write("root/etc/neon-watchdog/config.yml", mine);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let ino = std::fs::metadata(&config).unwrap().ino();
    let out = install_root(&t, &[]);
    out.assert_code(0)
        .assert_stdout_contains("interval_seconds: 60")
        .assert_stdout_contains("install never overwrites a config");
    assert_eq!(read(&config), mine);
    assert_eq!(mode(&config), 0o640);
    assert_eq!(std::fs::metadata(&config).unwrap().ino(), ino);
    assert_eq!(
        setting(&read(&unit(&t, "neon-watchdog.timer")), "OnUnitActiveSec"),
        "60s"
    );

    // an --interval the config disagrees with: refused, naming the file to change; the
    // units stay as they were
    let before = snapshot(&t.path("root"));
    let out = install_root(&t, &["--interval", "45"]);
    out.assert_code(64)
        .assert_stderr_contains("--interval 45 disagrees with the existing config")
        .assert_stderr_contains(&format!("set interval_seconds: 45 in {}", config.display()));
    assert_eq!(snapshot(&t.path("root")), before);
    assert_eq!(read(&config), mine);
}

#[test]
fn an_invalid_config_stops_install_before_it_writes() {
    let t = Test::new();
    let bad = "interval_seconds: 30\ntargets: []\nbogus: 1\n";
    let config = t.write("root/etc/neon-watchdog/config.yml", bad);
    let out = install_root(&t, &[]);
    out.assert_code(78)
        .assert_stderr_contains("bogus")
        .assert_stderr_contains("neon-watchdog test-config -c");
    assert_eq!(read(&config), bad);
    assert!(
        !t.exists("root/etc/systemd"),
        "wrote units for a config that does not load"
    );
}

#[test]
fn daemon_installs_the_loop_unit() {
    let t = Test::new();
    let out = install_root(&t, &["--daemon"]);
    out.assert_code(0);
    let daemon = unit(&t, "neon-watchdog-daemon.service");
    let text = read(&daemon);
    assert!(text.starts_with(&format!("{MARKER}\n")), "{text}");
    assert_eq!(
        setting(&text, "ExecStart"),
        format!("{} run -c /etc/neon-watchdog/config.yml", bin())
    );
    assert_eq!(setting(&text, "Type"), "notify");
    assert_eq!(setting(&text, "WatchdogSec"), "300s");
    assert!(!unit(&t, "neon-watchdog.timer").exists());
    assert!(!unit(&t, "neon-watchdog.service").exists());
    verify(&[daemon]);
    out.assert_stdout_contains("neon-watchdog-daemon.service runs");
}

/// A binary at a path with a space and a `%` (systemd's specifier character): the units
/// escape it, and systemd finds the binary again (verify fails on a missing ExecStart binary).
#[test]
fn paths_systemd_would_misread_are_escaped() {
    let t = Test::new();
    std::fs::create_dir_all(t.path("my apps/50%")).unwrap();
    let b = t.copy_program(BIN, "my apps/50%/nw");
    let b = b.display().to_string();
    install_root(&t, &["--bin", &b]).assert_code(0);
    let service = read(&unit(&t, "neon-watchdog.service"));
    let escaped = format!("\"{}\"", b.replace('%', "%%"));
    assert_eq!(
        setting(&service, "ExecStart"),
        format!("{escaped} check -c /etc/neon-watchdog/config.yml")
    );
    verify(&[
        unit(&t, "neon-watchdog.service"),
        unit(&t, "neon-watchdog.timer"),
    ]);

    // what systemd would expand ($VAR) is refused, and nothing is written
    let t = Test::new();
    let out = install_root(&t, &["--bin", "/opt/$HOME/nw"]);
    out.assert_code(64)
        .assert_stderr_contains("use a path without it");
    assert!(!t.exists("root/etc"));
    let out = install_root(&t, &["--bin", "relative/nw"]);
    out.assert_code(64).assert_stderr_contains("absolute path");
}

#[test]
fn uninstall_removes_only_what_install_wrote_and_keeps_config_and_state() {
    let t = Test::new();
    install_root(&t, &[]).assert_code(0);
    // a unit written by hand, and a package's unit: not ours
    let hand = "[Service]\nExecStart=/bin/true\n";
    let hand_path = unit(&t, "neon-watchdog-daemon.service");
    std::fs::write(&hand_path, hand).unwrap();
    let package = t.write("root/lib/systemd/system/neon-watchdog.service", hand);
    let state = t.write("root/var/lib/neon-watchdog/state.json", "{}");
    let root = t.path("root").display().to_string();
    let out = t.run_bare(&["uninstall", "--root", &root]);
    out.assert_code(0);
    assert!(!unit(&t, "neon-watchdog.service").exists(), "{out}");
    assert!(!unit(&t, "neon-watchdog.timer").exists(), "{out}");
    assert_eq!(read(&hand_path), hand);
    assert_eq!(read(&package), hand);
    let config = t.path("root/etc/neon-watchdog/config.yml");
    assert!(config.exists() && state.exists());
    out.assert_stdout_contains(&format!(
        "removed {}",
        unit(&t, "neon-watchdog.timer").display()
    ))
    .assert_stdout_contains(&format!(
        "left alone: {} was not written by neon-watchdog install",
        hand_path.display()
    ))
    .assert_stdout_contains(&format!("kept {} (the config", config.display()))
    .assert_stdout_contains(&format!("kept {} (the state", state.display()));
    // again: nothing of ours is left
    let out = t.run_bare(&["uninstall", "--root", &root]);
    out.assert_code(0)
        .assert_stdout_contains("nothing to remove");
    assert_eq!(read(&hand_path), hand);
}

#[test]
fn what_install_did_not_write_stops_it_and_is_never_written_through() {
    let t = Test::new();
    let victim = t.write("victim", "precious\n");
    std::fs::create_dir_all(t.path("root/etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink(&victim, unit(&t, "neon-watchdog.timer")).unwrap();
    let out = install_root(&t, &[]);
    out.assert_code(1)
        .assert_stderr_contains("is a symbolic link")
        .assert_stderr_contains("nothing was written");
    assert_eq!(read(&victim), "precious\n");
    assert!(std::fs::symlink_metadata(unit(&t, "neon-watchdog.timer"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!unit(&t, "neon-watchdog.service").exists());
    assert!(
        !t.exists("root/etc/neon-watchdog"),
        "wrote the config before refusing"
    );
    // uninstall leaves it too
    let root = t.path("root").display().to_string();
    t.run_bare(&["uninstall", "--root", &root])
        .assert_code(0)
        .assert_stdout_contains("is a symbolic link, not a file neon-watchdog install wrote");
    assert_eq!(read(&victim), "precious\n");
    assert!(std::fs::symlink_metadata(unit(&t, "neon-watchdog.timer")).is_ok());

    // a unit someone wrote by hand (the README's manual way) is not replaced
    std::fs::remove_file(unit(&t, "neon-watchdog.timer")).unwrap();
    let hand = "[Timer]\nOnUnitActiveSec=5s\n";
    std::fs::write(unit(&t, "neon-watchdog.timer"), hand).unwrap();
    install_root(&t, &[])
        .assert_code(1)
        .assert_stderr_contains("was not written by neon-watchdog install");
    assert_eq!(read(&unit(&t, "neon-watchdog.timer")), hand);
}

// ---------------------------------------------------------------------------------------------
// Live installs: systemctl, in a private mount namespace
// ---------------------------------------------------------------------------------------------

/// A test whose `systemctl` is a STAND-IN that records its argv in `{dir}/systemctl.calls`
/// and then runs `behaviour`; `{dir}/units` is what the binary sees as /etc/systemd/system.
/// Kept for what needs no systemd or cannot have one: `--no-enable` (no systemctl at all),
/// systemctl failing as on a host not booted with systemd, a non-root caller. Install, the
/// switch between modes, a new tick and uninstall run under the real systemd in
/// tests/system/systemd/timer.rs.
fn live(behaviour: &str) -> Test {
    let t = Test::new();
    std::fs::create_dir_all(t.path("bin")).unwrap();
    t.script(
        "bin/systemctl",
        &format!(
            "#!/bin/sh\n# STAND-IN for systemctl (see live())\necho \"$*\" >> {{dir}}/systemctl.calls\n{behaviour}\n"
        ),
    );
    std::fs::create_dir_all(t.path("units")).unwrap();
    let path = format!(
        "{}:{}",
        t.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let units = t.path("units").display().to_string();
    t.env("PATH", &path).env("UNITS", &units)
}

/// `args` (then `-c {dir}/config.yml`) with `{dir}/units` over /etc/systemd/system; `user`:
/// as that user (setpriv) instead of root.
fn run_live(t: &Test, args: &[&str], user: Option<&str>) -> Output {
    let script = match user {
        None => "mount --bind \"$UNITS\" /etc/systemd/system || exit 90; exec \"$0\" \"$@\"".to_string(),
        Some(u) => format!(
            "mount --bind \"$UNITS\" /etc/systemd/system || exit 90; exec /usr/bin/setpriv --reuid={u} --regid={u} --clear-groups \"$0\" \"$@\""
        ),
    };
    t.run_wrapped(
        &[
            "/usr/bin/unshare",
            "-m",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            &script,
        ],
        args,
    )
}

fn calls(t: &Test) -> Vec<String> {
    if !t.exists("systemctl.calls") {
        return Vec::new();
    }
    t.read("systemctl.calls")
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn no_enable_runs_no_systemctl_and_prints_the_commands() {
    let t = live("exit 0");
    let out = run_live(&t, &["install", "--no-enable"], None);
    out.assert_code(0)
        .assert_stdout_contains("not enabled (--no-enable)")
        .assert_stdout_contains(
            "\n  systemctl daemon-reload\n  systemctl enable --now neon-watchdog.timer\n",
        );
    assert!(calls(&t).is_empty(), "{:?}", calls(&t));
    assert!(t.exists("units/neon-watchdog.timer"));
}

#[test]
fn a_failing_systemctl_says_what_to_do() {
    let t = live(
        "echo \"System has not been booted with systemd as init system (PID 1). Can't operate.\" >&2\nexit 1",
    );
    let out = run_live(&t, &["install"], None);
    out.assert_code(1)
        .assert_stderr_contains(
            "systemctl daemon-reload failed (exit 1: System has not been booted",
        )
        .assert_stderr_contains("systemd is not running here")
        .assert_stderr_contains("--root DIR")
        .assert_stderr_contains("systemctl enable --now neon-watchdog.timer");
    // it stopped at the first failure
    assert_eq!(calls(&t), ["daemon-reload"]);
    // uninstall does not remove units systemd may still run
    let out = run_live(&t, &["uninstall"], None);
    out.assert_code(1);
    assert!(t.exists("units/neon-watchdog.timer"));
}

#[test]
fn not_root_and_no_root_dir_is_refused_before_anything_is_written() {
    let t = live("exit 0");
    // nobody could write here: only the check keeps it from doing so
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(t.path("units"), std::fs::Permissions::from_mode(0o777)).unwrap();
    for cmd in ["install", "uninstall"] {
        let out = run_live(&t, &[cmd], Some("65534"));
        out.assert_code(77)
            .assert_stderr_contains("run it as root (sudo neon-watchdog")
            .assert_stderr_contains("--root DIR");
    }
    assert!(!t.config_path().exists());
    assert_eq!(std::fs::read_dir(t.path("units")).unwrap().count(), 0);
    assert!(calls(&t).is_empty());
}

/// `--dry-run` (a global flag of check, run and reset) would be ignored: refused instead.
#[test]
fn install_has_no_dry_run() {
    let t = Test::new();
    std::fs::create_dir_all(t.path("root")).unwrap();
    let root = t.path("root").display().to_string();
    let out = t.run_bare(&["--dry-run", "install", "--root", &root]);
    out.assert_code(64)
        .assert_stderr_contains("--root DIR writes the files under DIR");
    assert_eq!(std::fs::read_dir(t.path("root")).unwrap().count(), 0);
}

/// `-c /etc/neon-watchdog/` (a directory, by a trailing slash or `.`) turned the directory into
/// a 0600 file and wrote a unit that could never load: refused, nothing written.
#[test]
fn a_config_path_naming_a_directory_is_refused() {
    let t = Test::new();
    for c in [
        "/etc/neon-watchdog/",
        "/etc/neon-watchdog/.",
        "/etc/neon-watchdog/config.yml/",
        "/etc/x/..",
    ] {
        install_root(&t, &["-c", c])
            .assert_code(64)
            .assert_stderr_contains("name the config file, not a directory");
        assert!(
            !t.path("root/etc").exists(),
            "{c}: something was written under the root"
        );
    }
}

/// An image's absolute symlink under `--root` resolves on this machine: writing through it
/// put the units (and the 0600 config) outside the tree. Refused; the victim is untouched.
#[test]
fn a_symlink_inside_the_root_is_not_followed_out_of_the_tree() {
    let t = Test::new();
    let victim = t.path("victim");
    std::fs::create_dir_all(&victim).expect("victim dir");
    std::fs::create_dir_all(t.path("root/etc/systemd")).expect("etc/systemd");
    std::os::unix::fs::symlink(&victim, t.path("root/etc/systemd/system")).expect("symlink");
    install_root(&t, &["--no-enable"])
        .assert_code(1)
        .assert_stderr_contains("is a symbolic link inside --root");
    assert_eq!(
        std::fs::read_dir(&victim).expect("read victim").count(),
        0,
        "something was written through the link"
    );
    assert!(!t.path("root/etc/neon-watchdog").exists());
}
