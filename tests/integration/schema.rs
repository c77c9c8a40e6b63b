//! `neon-watchdog schema`: the JSON Schema editors read. Checked with a real validator
//! (Python's `jsonschema`, the reference implementation, from Debian's python3-jsonschema: run
//! by Debian's own /usr/bin/python3, where apt installs it) against the shipped examples and
//! against bad configs, side by side with the loader (`test-config`): what one rejects, the
//! other rejects too.

use crate::harness::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PYTHON: &str = "/usr/bin/python3";

/// Validates each instance of a JSON list read on stdin against the schema in argv[1] (itself
/// checked as a draft-07 schema first); one line per instance: a JSON list of its errors.
const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft7Validator
schema = json.load(open(sys.argv[1]))
Draft7Validator.check_schema(schema)
v = Draft7Validator(schema)
for inst in json.load(sys.stdin):
    errs = sorted(v.iter_errors(inst), key=lambda e: [str(p) for p in e.absolute_path])
    print(json.dumps(["/".join(map(str, e.absolute_path)) + ": " + e.message for e in errs]))
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The schema the binary prints (`--included`: of an included file).
fn printed(included: bool) -> String {
    let args: &[&str] = if included {
        &["schema", "--included"]
    } else {
        &["schema"]
    };
    let out = Test::new().run_bare(args);
    out.assert_code(0);
    out.stdout.clone()
}

/// The errors the validator finds in each instance (empty: valid).
fn validate(schema: &str, instances: &[Value]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("schema.json");
    std::fs::write(&path, schema).expect("write schema");
    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(VALIDATE)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
    let input = serde_json::to_vec(instances).expect("instances as JSON");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write instances");
    let out = child.wait_with_output().expect("validator output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'jsonschema'"),
        "the JSON Schema validator is missing: apt-get install python3-jsonschema (.ci/run installs it)"
    );
    assert!(out.status.success(), "the validator failed: {stderr}");
    let results: Vec<Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON list of errors"))
        .collect();
    assert_eq!(results.len(), instances.len(), "{stderr}");
    results
}

/// A YAML file as the value an editor validates (JSON is YAML too).
fn yaml_value(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| exts.iter().any(|x| e == *x)))
        .collect();
    out.sort();
    out
}

#[test]
fn schema_needs_no_config_and_prints_a_draft_07_schema() {
    let out = Test::new().run_bare(&["schema", "-c", "/nonexistent/config.yml"]);
    out.assert_code(0);
    let s: Value = serde_json::from_str(&out.stdout).expect("the schema is JSON");
    assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(s["$id"], "urn:neon-watchdog:config");
    assert_eq!(s["title"], "neon-watchdog config");
    assert_eq!(s["additionalProperties"], json!(false));
    // pretty, for people who read it
    assert!(out.stdout.starts_with("{\n  \""), "{}", &out.stdout[..40]);
    let inc: Value = serde_json::from_str(&printed(true)).expect("JSON");
    assert_eq!(inc["$id"], "urn:neon-watchdog:included");
}

/// schema/*.json are generated: the copies the examples point at are what the binary prints.
#[test]
fn committed_schemas_are_what_the_binary_prints() {
    for (file, included, args) in [
        ("schema/neon-watchdog.schema.json", false, "schema"),
        (
            "schema/neon-watchdog-included.schema.json",
            true,
            "schema --included",
        ),
    ] {
        let committed = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        assert!(
            committed == printed(included),
            "{file} is not what `neon-watchdog {args}` prints (a raw config struct changed?); \
             regenerate it: cargo run -q -- {args} > {file}"
        );
    }
}

/// Every example validates against the schema its editor line names, and names the one it
/// should: the config's, or an included file's for conf.d.
#[test]
fn every_example_validates_against_its_schema() {
    let examples = root().join("examples");
    let mut cases: Vec<(PathBuf, &str)> = Vec::new();
    for f in files(&examples, &["yml", "yaml", "json"]) {
        cases.push((f, "neon-watchdog.schema.json"));
    }
    for f in files(&examples.join("conf.d"), &["yml", "yaml", "json"]) {
        cases.push((f, "neon-watchdog-included.schema.json"));
    }
    assert!(cases.len() >= 6, "{cases:?}");
    for (f, schema_file) in &cases {
        let text = std::fs::read_to_string(f).expect("read example");
        let named = if f.extension().is_some_and(|e| e == "json") {
            yaml_value(f)["$schema"].as_str().map(str::to_string)
        } else {
            text.lines()
                .next()
                .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
                .map(str::to_string)
        };
        let Some(named) = named else {
            panic!(
                "{}: its first line should be `# yaml-language-server: $schema=<path of schema/{schema_file}>` (a JSON file: a \"$schema\" key)",
                f.display()
            );
        };
        let target = f.parent().expect("dir").join(&named);
        assert!(
            target.ends_with(schema_file) && target.is_file(),
            "{}: names {named}, not schema/{schema_file}",
            f.display()
        );
        let schema = std::fs::read_to_string(&target).expect("read schema");
        let errors = validate(&schema, &[yaml_value(f)]);
        assert!(
            errors[0].is_empty(),
            "{} does not validate against {named}: {:?}",
            f.display(),
            errors[0]
        );
    }
}

const GOOD_TARGET: &str = "name: t\n    checks:\n      - command: [/bin/true]\n    action: none";

/// A config whose first target is `target` (YAML, indented for a list item).
fn config_with(top: &str, target: &str) -> String {
    format!("state_file: {{dir}}/state.json\n{top}\ntargets:\n  - {target}\n")
}

/// Bad configs the schema and the loader both refuse; and configs that look odd but that
/// both take (YAML's scalars as text, words in any case, the pid_file guard, `action: none`).
#[test]
fn schema_and_loader_agree_on_bad_and_odd_configs() {
    let check = |c: &str| {
        config_with(
            "",
            &format!("name: t\n    checks:\n      - {c}\n    action: none"),
        )
    };
    let bad: Vec<(&str, String)> = vec![
        ("unknown key (a typo)", config_with("intervall_seconds: 30", GOOD_TARGET)),
        ("unknown key in a check", check("tcp_prot: 8080")),
        ("unknown key in a policy", config_with("default_policy: {fail_treshold: 2}", GOOD_TARGET)),
        ("wrong type: a string for an integer", config_with("interval_seconds: \"30\"", GOOD_TARGET)),
        ("wrong type: a string for a list", check("command: /bin/true")),
        ("wrong type: a map for a list", config_with("notify: {exec: [/bin/true]}", GOOD_TARGET)),
        ("wrong type: a word for a boolean", config_with("", "name: t\n    enabled: maybe\n    checks: [{command: [/bin/true]}]\n    action: none")),
        ("out of range: 0 seconds", config_with("interval_seconds: 0", GOOD_TARGET)),
        ("out of range: a port", check("tcp_port: 70000")),
        ("out of range: the port of host:port", check("tcp_port: 127.0.0.1:70000")),
        ("out of range: the port of [IPv6]:port", check("tcp_port: \"[::1]:0\"")),
        ("out of range: tls_cert's port", check("tls_cert: svc.example.com:65536")),
        ("tls_cert without a host", check("tls_cert: \"443\"")),
        ("out of range: the port of metrics.listen", config_with("metrics: {listen: \"127.0.0.1:70000\"}", GOOD_TARGET)),
        ("not an IP:PORT: metrics.listen", config_with("metrics: {listen: \"localhost:9798\"}", GOOD_TARGET)),
        ("out of range: an exit code", check("command: [/bin/true]\n        ok_exit_codes: [256]")),
        ("out of range: a policy count", config_with("default_policy: {fail_threshold: 4294967296}", GOOD_TARGET)),
        ("out of range: a float", check("system: {max_memory_used_percent: 100.5}")),
        ("out of range: webhook retries", config_with("notify: [{webhook: {url: \"http://127.0.0.1/\", retries: 11}}]", GOOD_TARGET)),
        ("a name too long", config_with("", &format!("name: {}\n    checks: [{{command: [/bin/true]}}]\n    action: none", "n".repeat(101)))),
        ("not a log level", config_with("log_level: loud", GOOD_TARGET)),
        ("not a method", check("http: http://127.0.0.1/\n        method: PUT")),
        ("not an event", config_with("notify: [{exec: [/bin/true], events: [exploded]}]", GOOD_TARGET)),
        ("not a systemd method", config_with("", "name: t\n    checks: [{command: [/bin/true]}]\n    action: {systemd: {unit: a.service, method: kick}}")),
        ("two kinds in one check", check("tcp_port: 8080\n        http: http://127.0.0.1/")),
        ("a modifier of another kind", check("tcp_port: 8080\n        expect_status: [200]")),
        ("a process_name modifier beside a pid_file", check("pid_file: /run/x.pid\n        process_name: x\n        cmdline_contains: y")),
        ("a check without a kind", check("timeout_seconds: 3")),
        ("file_fresh without max_age_seconds", check("file_fresh: /tmp/x")),
        ("disk_free without a minimum", check("disk_free: /")),
        ("an empty argv", check("command: []")),
        ("two actions", config_with("", "name: t\n    checks: [{command: [/bin/true]}]\n    action: {exec: {start: [/bin/true]}, systemd: {unit: a.service}}")),
        ("an empty action", config_with("", "name: t\n    checks: [{command: [/bin/true]}]\n    action: {}")),
        ("an action word but none", config_with("", "name: t\n    checks: [{command: [/bin/true]}]\n    action: restart")),
        ("an exec action without start or restart", config_with("", "name: t\n    checks: [{command: [/bin/true]}]\n    action: {exec: {stop: [/bin/true]}}")),
        ("a notifier with webhook and exec", config_with("notify: [{exec: [/bin/true], webhook: {url: \"http://127.0.0.1/\"}}]", GOOD_TARGET)),
        ("a target without a name", config_with("", "checks: [{command: [/bin/true]}]\n    action: none")),
        ("a target without checks", config_with("", "name: t\n    checks: []\n    action: none")),
        ("a target without an action", config_with("", "name: t\n    checks: [{command: [/bin/true]}]")),
        ("an x- key below the top level", config_with("", "name: t\n    x-note: 1\n    checks: [{command: [/bin/true]}]\n    action: none")),
        ("a merged key that is unknown", config_with("x-t: &t {acton: none}", "name: t\n    <<: *t\n    checks: [{command: [/bin/true]}]\n    action: none")),
        ("a webhook without url", config_with("notify: [{webhook: {format: slack}}]", GOOD_TARGET)),
    ];
    let good: Vec<(&str, String)> = vec![
        ("the minimal config", config_with("", GOOD_TARGET)),
        ("YAML scalars as text", check("command: [/bin/sleep, 0]")),
        ("a number as a target name", config_with("", "name: 2024\n    checks: [{command: [/bin/true]}]\n    action: none")),
        ("a number as an env value", config_with("", "name: t\n    checks: [{command: [/bin/true]}]\n    action: {exec: {start: [/bin/true], env: {PORT: 8080}}}")),
        ("a bare port", check("tcp_port: 8080")),
        ("host:port", check("tcp_port: \"[::1]:80\"")),
        ("host:port at the edges", check("tcp_port: 127.0.0.1:65535")),
        ("tls_cert's host:port", check("tls_cert: svc.example.com:1")),
        ("metrics.listen", config_with("metrics: {listen: \"127.0.0.1:65535\"}", GOOD_TARGET)),
        ("a uid", check("process_name: x\n        user: 0")),
        ("a pid_file guarded by process_name", check("pid_file: /run/x.pid\n        process_name: x\n        max_rss_mb: 10")),
        ("log_level in capitals", config_with("log_level: WARNING", GOOD_TARGET)),
        ("http method in lower case", check("http: http://127.0.0.1/\n        method: head")),
        ("include as one glob", config_with("include: \"conf.d/*.yml\"", GOOD_TARGET)),
        ("$schema", config_with("$schema: ../schema/neon-watchdog.schema.json", GOOD_TARGET)),
        ("a YAML merge key and an x- template", config_with("x-check: &c {command: [/bin/true], timeout_seconds: 2}\nx-policy: &p {fail_threshold: 2}", "name: t\n    checks: [{<<: *c, timeout_seconds: 3}]\n    policy: {<<: *p, restart_cooldown_seconds: 5}\n    action: none")),
        ("the edges", config_with("interval_seconds: 31536000\nmax_parallel: 4294967295\ndefault_policy: {backoff_multiplier: 1, give_up_after_restarts: 0}", "name: t\n    checks:\n      - {tcp_port: 65535}\n      - {system: {max_load_per_core: 1000, max_memory_used_percent: 100}}\n      - {command: [/bin/true], ok_exit_codes: [0, 255]}\n    action: none")),
    ];
    let t = Test::new();
    let texts: Vec<(&str, String, bool)> = bad
        .iter()
        .map(|(w, c)| (*w, t.expand(c), false))
        .chain(good.iter().map(|(w, c)| (*w, t.expand(c), true)))
        .collect();
    // as editors read YAML: merge keys applied (yaml-language-server does since 0.7)
    let values: Vec<Value> = texts
        .iter()
        .map(|(what, text, _)| {
            let mut v: serde_yaml::Value =
                serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
            v.apply_merge().expect("merge keys");
            serde_json::to_value(v).expect("YAML as JSON")
        })
        .collect();
    let schema = printed(false);
    let verdicts = validate(&schema, &values);
    let mut wrong = Vec::new();
    for ((what, text, valid), errors) in texts.iter().zip(&verdicts) {
        let path = t.write("config.yml", text);
        let out = t.run_bare(&["test-config", "-c", &path.display().to_string()]);
        let loader = out.code == Some(0);
        if !*valid && out.code != Some(78) {
            wrong.push(format!(
                "{what}: the loader does not refuse it (exit {:?}): {}",
                out.code, out.stderr
            ));
        }
        if *valid && !loader {
            wrong.push(format!("{what}: the loader refuses it: {}", out.stderr));
        }
        if errors.is_empty() != *valid {
            wrong.push(format!(
                "{what}: the schema says {}: {errors:?}\n{text}",
                if errors.is_empty() {
                    "valid"
                } else {
                    "invalid"
                }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The kinds of a check and the kinds each modifier belongs to, for every combination: the
/// schema (generated from validation's table) and the loader agree on each.
#[test]
fn schema_and_loader_agree_on_every_kind_and_modifier_combination() {
    let kinds: Vec<(&str, Value)> = vec![
        ("process_name", json!("x")),
        ("pid_file", json!("/run/x.pid")),
        ("tcp_port", json!(80)),
        ("command", json!(["/bin/true"])),
        ("http", json!("http://127.0.0.1/")),
        ("tls_cert", json!("localhost:443")),
        ("docker", json!("c")),
        ("systemd_unit", json!("a.service")),
        ("file_fresh", json!("/tmp/x")),
        ("disk_free", json!("/")),
        ("system", json!({"max_load_per_core": 1})),
    ];
    let modifiers: Vec<(&str, Value)> = vec![
        ("cmdline_contains", json!("x")),
        ("cmdline_regex", json!("x")),
        ("user", json!(0)),
        ("max_rss_mb", json!(1)),
        ("max_cpu_percent", json!(1)),
        ("max_children", json!(1)),
        ("ok_exit_codes", json!([0])),
        ("method", json!("GET")),
        ("expect_status", json!([200])),
        ("body_contains", json!("x")),
        ("headers", json!({"X-A": "b"})),
        ("resolve", json!("127.0.0.1")),
        ("ip_version", json!(4)),
        ("tls_verify", json!(true)),
        ("ca_file", json!("/etc/ssl/certs/ca-certificates.crt")),
        ("max_body_bytes", json!(1)),
        ("min_days_left", json!(1)),
        ("server_name", json!("localhost")),
        ("docker_socket", json!("/var/run/docker.sock")),
        ("max_age_seconds", json!(1)),
        ("min_free_percent", json!(1)),
        ("min_free_mb", json!(1)),
    ];
    // what a kind needs beside it
    let with_needs = |mut c: Value| {
        if c.get("file_fresh").is_some() && c.get("max_age_seconds").is_none() {
            c["max_age_seconds"] = json!(60);
        }
        if c.get("disk_free").is_some() && c.get("min_free_mb").is_none() {
            c["min_free_mb"] = json!(1);
        }
        c
    };
    let mut checks: Vec<Value> = Vec::new();
    for (i, (a, va)) in kinds.iter().enumerate() {
        checks.push(with_needs(json!({ *a: va })));
        for (b, vb) in &kinds[i + 1..] {
            checks.push(with_needs(json!({ *a: va, *b: vb })));
        }
        for (m, vm) in &modifiers {
            checks.push(with_needs(json!({ *a: va, *m: vm })));
        }
    }
    // beside a pid_file, process_name guards it: its modifiers do not apply
    for (m, vm) in &modifiers {
        checks.push(json!({"pid_file": "/run/x.pid", "process_name": "x", *m: vm}));
    }
    let t = Test::new();
    let state = t.path("state.json").display().to_string();
    let config = |c: &Value| json!({"state_file": state, "targets": [{"name": "t", "checks": [c], "action": "none"}]});
    let values: Vec<Value> = checks.iter().map(config).collect();
    let verdicts = validate(&printed(false), &values);
    // the loader: 10 at a time as the targets of one config (a config error shows its first 20
    // problems), each target's errors by its path
    let mut stderr = String::new();
    let mut takes: Vec<bool> = Vec::new();
    for chunk in checks.chunks(10) {
        let all = json!({
            "state_file": state,
            "targets": chunk.iter().enumerate().map(|(i, c)| json!({"name": format!("t{i}"), "checks": [c], "action": "none"})).collect::<Vec<_>>()
        });
        let path = t.write("config.json", &all.to_string());
        let out = t.run_bare(&["test-config", "-c", &path.display().to_string()]);
        assert!(!out.stderr.contains("more problems"), "{out}");
        for i in 0..chunk.len() {
            let at = format!("targets[{i}].");
            takes.push(
                !out.stderr
                    .lines()
                    .any(|l| l.contains(&at) && !l.starts_with("warning: ")),
            );
        }
        stderr.push_str(&out.stderr);
    }
    let mut wrong = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for ((c, errors), &loader) in checks.iter().zip(&verdicts).zip(&takes) {
        if loader {
            valid += 1;
        } else {
            invalid += 1;
        }
        if errors.is_empty() != loader {
            wrong.push(format!(
                "{c}: the loader {}, the schema {}",
                if loader { "takes it" } else { "refuses it" },
                if errors.is_empty() {
                    "takes it".to_string()
                } else {
                    format!("refuses it: {errors:?}")
                }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), stderr);
    // both ways covered: single kinds, the guarded pair and each modifier with its own kinds
    // are valid; every other pair and modifier invalid
    assert!(
        valid >= 11 + 1 + 25 && invalid >= 54 + 200,
        "valid {valid}, invalid {invalid}"
    );
}

/// A JSON file may name its schema with a `"$schema"` key (VS Code reads it): the loader takes
/// it, in the config and in an included file, and ignores it.
#[test]
fn loader_takes_a_dollar_schema_key_in_json_files() {
    let t = Test::new();
    t.write(
        "conf.d/a.json",
        r#"{"$schema": "neon-watchdog-included.schema.json",
            "targets": [{"name": "a", "checks": [{"command": ["/bin/true"]}], "action": "none"}]}"#,
    );
    let t = t.config_named(
        "config.json",
        r#"{"$schema": "neon-watchdog.schema.json", "state_file": "{dir}/state.json",
            "include": ["conf.d/*.json"]}"#,
    );
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains("1 target");
}
