//! The shipped examples are valid (`test-config` exits 0 on every one of them), YAML and JSON
//! examples describe the same targets, the quickstart really works, and `test-config` warns
//! about actions that cannot run.

use crate::harness::*;
use std::path::{Path, PathBuf};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml" | "json")
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn test_config_accepts_every_example() {
    let files = examples();
    assert!(
        files.iter().any(|f| f.ends_with("quickstart.yml")),
        "examples/quickstart.yml is missing: {files:?}"
    );
    let t = Test::new();
    for f in &files {
        let path = f.display().to_string();
        let out = t.run_bare(&["test-config", "-c", &path]);
        out.assert_code(0)
            .assert_stdout_contains(&format!("{path}: valid"));
    }
}

/// examples/include.yml reads every file of examples/conf.d (a file added there that its glob
/// does not match, or that does not parse, fails here), in name order, each target's file named.
#[test]
fn include_example_reads_every_file_of_its_conf_d() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dropped: Vec<String> = std::fs::read_dir(dir.join("conf.d"))
        .unwrap_or_else(|e| panic!("cannot read examples/conf.d: {e}"))
        .map(|e| format!("conf.d/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    dropped.sort();
    assert!(dropped.len() >= 2, "examples/conf.d: {dropped:?}");
    let path = dir.join("include.yml").display().to_string();
    let out = Test::new().run_bare(&["test-config", "-c", &path]);
    out.assert_code(0).assert_stdout_contains(&format!(
        "include \"conf.d/*.yml\": {} files, read in this order: {}\n",
        dropped.len(),
        dropped.join(", ")
    ));
    for f in &dropped {
        out.assert_stdout_contains(&format!(" (from {f})\n"));
    }
}

/// The body of the summary (everything after its first line, which names the file).
fn summary_body(path: &Path) -> String {
    let out = Test::new().run_bare(&["test-config", "-c", &path.display().to_string()]);
    out.assert_code(0);
    out.stdout.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn yaml_and_json_examples_describe_the_same_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (yml, json) = (dir.join("config.yml"), dir.join("config.json"));
    if !(yml.exists() && json.exists()) {
        // being written alongside these tests; test_config_accepts_every_example covers
        // whichever exists
        return;
    }
    assert_eq!(summary_body(&yml), summary_body(&json));
}

/// README's first command on a fresh clone, in a sandbox: examples/quickstart.yml with its
/// port and paths moved into the test dir. First pass finds the demo down and starts it
/// (exit 2); once it listens, the next pass exits 0.
#[test]
fn quickstart_example_works() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.yml"),
    )
    .expect("read quickstart.yml");
    let port = free_port();
    let t = Test::new();
    let text = text
        .replace(
            "/tmp/neon-watchdog-quickstart",
            &t.dir().display().to_string(),
        )
        .replace("8765", &port.to_string());
    assert!(
        text.contains(&port.to_string()),
        "quickstart no longer uses port 8765"
    );
    let t = t.config(&text);
    let out = t.run(&["check"]);
    // whatever it started is ours to clean up: find it by the test dir in its command line
    let _demo = DemoCleanup(t.dir().display().to_string());
    out.assert_code(2).assert_stderr_contains("action=start");
    wait_for_port(port, EVENT_LIMIT);
    t.run(&["check"]).assert_code(0);
}

/// Kills the processes whose command line mentions the test dir.
struct DemoCleanup(String);

impl Drop for DemoCleanup {
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&self.0)
                && pid != std::process::id() as i32
            {
                drop(Guard::pid(pid));
            }
        }
    }
}

#[test]
fn test_config_warns_about_actions_that_cannot_run() {
    let t = Test::new().config(
        r#"
state_file: {dir}/state.json
targets:
  - name: web
    checks: [{tcp_port: 80}]
    action:
      exec:
        start: ["nginx"]
        restart: ["{dir}/no-such-program", "reload"]
"#,
    );
    let out = t.run(&["test-config"]);
    out.assert_code(0)
        .assert_stderr_contains("warning:")
        .assert_stderr_contains("targets[0].action.exec.start[0]")
        .assert_stderr_contains("not an absolute path")
        .assert_stderr_contains("targets[0].action.exec.restart[0]")
        .assert_stderr_contains("cannot be found");
    // the summary says what the config means after defaults
    out.assert_stdout_contains("target web")
        .assert_stdout_contains("fail_threshold 1");
}

/// `bash examples/quickstart.sh ARGS` from a copy of the repository's quickstart files in the
/// test dir (readable by every user), as root or as nobody, with `base` as TMPDIR and no
/// XDG_RUNTIME_DIR (the shared /tmp case), running the test's binary: (exit code, output).
fn quickstart_sh(t: &Test, base: &Path, nobody: bool, args: &[&str]) -> (Option<i32>, String) {
    let script = t.path("repo/examples/quickstart.sh");
    let mut cmd = if nobody {
        let mut c = std::process::Command::new("/usr/bin/setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/bin/bash",
        ]);
        c
    } else {
        std::process::Command::new("/bin/bash")
    };
    let who = if nobody { "nobody" } else { "root" };
    let log = t.path(&format!("quickstart-{who}-{}.out", unique_name("q")));
    let out = std::fs::File::create(&log).expect("create the output file");
    cmd.arg(&script)
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", base)
        .env("NEON_WATCHDOG_BIN", t.path("repo/neon-watchdog"))
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    let mut child = spawn_cmd(&mut cmd);
    let mut code = None;
    let exited = wait_until(EVENT_LIMIT, || match child.try_wait() {
        Ok(Some(status)) => {
            code = status.code();
            true
        }
        _ => false,
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exited, "quickstart.sh {args:?} as {who} hung:\n{text}");
    (code, text)
}

/// README's first command, run by two users side by side on one host (root and nobody, one
/// shared /tmp): each gets a directory and a port of its own, both demos run at once, and
/// `stop` stops only the user's own. It used to share /tmp/neon-watchdog-quickstart and port
/// 8765: the second user's run failed (root's files in the way, the port taken).
#[test]
fn quickstart_script_runs_side_by_side_for_two_users() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let t = Test::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(t.path("repo/examples")).expect("mkdir");
    for f in ["quickstart.sh", "quickstart.yml"] {
        std::fs::copy(
            repo.join("examples").join(f),
            t.path(&format!("repo/examples/{f}")),
        )
        .expect("copy the quickstart");
    }
    t.copy_program(BIN, "repo/neon-watchdog");
    // a shared, sticky directory, as /tmp
    let base = t.path("tmp");
    std::fs::create_dir(&base).expect("mkdir tmp");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    std::fs::set_permissions(t.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let _demos = DemoCleanup(base.display().to_string());

    let (code, out) = quickstart_sh(&t, &base, false, &[]);
    assert_eq!(code, Some(0), "root's quickstart:\n{out}");
    assert!(out.contains("quickstart OK"), "{out}");
    // root's demo still runs: nobody's quickstart must not care
    let (code, out) = quickstart_sh(&t, &base, true, &[]);
    assert_eq!(code, Some(0), "nobody's quickstart beside root's:\n{out}");
    assert!(out.contains("quickstart OK"), "{out}");

    let (mut ports, mut pids) = (Vec::new(), Vec::new());
    for uid in [0, 65534] {
        let dir = base.join(format!("neon-watchdog-quickstart-{uid}"));
        let meta = std::fs::symlink_metadata(&dir).expect("the user's quickstart directory");
        assert!(meta.is_dir(), "{}", dir.display());
        assert_eq!(meta.uid(), uid, "{} is not uid {uid}'s", dir.display());
        assert_eq!(meta.mode() & 0o777, 0o700, "{}", dir.display());
        let port: u16 = std::fs::read_to_string(dir.join("port"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("a port file");
        let pid = read_pid(&dir.join("demo.pid")).expect("a demo pid");
        let owner = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid());
        assert_eq!(owner.ok(), Some(uid), "demo {pid} of uid {uid}");
        assert!(
            port_open(port),
            "uid {uid}'s demo does not listen on {port}"
        );
        ports.push(port);
        pids.push(pid);
    }
    assert_ne!(ports[0], ports[1], "both users' demos on one port");

    // each user's stop stops that user's demo only
    let (code, out) = quickstart_sh(&t, &base, true, &["stop"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("stopped"), "{out}");
    assert!(
        wait_until(EVENT_LIMIT, || !port_open(ports[1])),
        "nobody's demo still listens"
    );
    // detached, it was re-parented to this test process (a subreaper): reap it
    reap(pids[1], EVENT_LIMIT);
    assert!(port_open(ports[0]), "nobody's stop stopped root's demo");
    let (code, out) = quickstart_sh(&t, &base, false, &["stop"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        wait_until(EVENT_LIMIT, || !port_open(ports[0])),
        "root's demo still listens"
    );
    reap(pids[0], EVENT_LIMIT);
}
