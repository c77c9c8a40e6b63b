//! The schema against the loader, read from the schema itself: every bound it gives is the
//! loader's at both edges, every word list is the loader's, and every number setting has a
//! range. A range added to validation and not to the raw field's `#[schemars]` (or the other way
//! round) fails here; so does a new number setting without one.

use super::super::parse;
use super::super::validate::{check_key_roles, Env};
use super::*;
use std::path::Path;

/// Whether the loader takes `config` (written as JSON, read as a .json and as a .yml file:
/// JSON is YAML too): the error if not. Both readers must agree.
fn loads(config: &Value) -> Result<(), String> {
    let env = Env {
        lookup: &|_| None,
        is_root: false,
        config_dir: "/etc/nw".into(),
    };
    let text = config.to_string();
    let json = parse(Path::new("c.json"), &text, &env).map(|_| ());
    let yaml = parse(Path::new("c.yml"), &text, &env).map(|_| ());
    assert_eq!(
        json.is_ok(),
        yaml.is_ok(),
        "the JSON and YAML readers disagree on {text}: {json:?} / {yaml:?}"
    );
    json
}

fn base() -> Value {
    json!({
        "state_file": "/nonexistent/neon-watchdog-test/state.json",
        "targets": [{"name": "t", "checks": [{"command": ["/bin/true"]}], "action": "none"}]
    })
}

/// A valid value of each check kind.
fn kind_sample(kind: &str) -> Value {
    match kind {
        "process_name" => json!("x"),
        "pid_file" => json!("/run/x.pid"),
        "tcp_port" => json!(80),
        "command" => json!(["/bin/true"]),
        "http" => json!("http://127.0.0.1/"),
        "tls_cert" => json!("localhost:443"),
        "docker" => json!("c"),
        "systemd_unit" => json!("a.service"),
        "file_fresh" => json!("/tmp/x"),
        "disk_free" => json!("/"),
        "system" => json!({"max_load_per_core": 1}),
        _ => panic!("no sample of the check kind {kind}: add one to kind_sample()"),
    }
}

/// A check holding `key: v`: of the kind `key` is (or belongs to), with what that kind needs.
fn check_with(key: &str, v: Value) -> Value {
    let roles = check_key_roles();
    let kind = match roles.iter().find(|(k, _)| *k == key) {
        Some((k, None)) => *k,
        Some((_, Some(of))) => of[0],
        // timeout_seconds, name: any kind
        None => "command",
    };
    let mut c = json!({ kind: kind_sample(kind) });
    match kind {
        "file_fresh" => c["max_age_seconds"] = json!(60),
        "disk_free" => c["min_free_mb"] = json!(1),
        _ => {}
    }
    c[key] = v;
    c
}

/// A valid config with `prop: v` in a map of the definition `def` ("" the top level).
fn place(def: &str, prop: &str, v: Value) -> Value {
    let mut c = base();
    let t = &mut c["targets"][0];
    match def {
        "" => c[prop] = v,
        "Policy" => c["default_policy"] = json!({ prop: v }),
        "Target" => t[prop] = v,
        "Check" => t["checks"][0] = check_with(prop, v),
        "SystemLimits" => t["checks"][0] = json!({"system": { prop: v }}),
        "OnGiveUp" => t["on_give_up"] = json!({"exec": ["/bin/true"], prop: v}),
        "ExecAction" => t["action"] = json!({"exec": {"start": ["/bin/true"], prop: v}}),
        "SystemdAction" => t["action"] = json!({"systemd": {"unit": "a.service", prop: v}}),
        "DockerAction" => {
            // timeout_seconds must be more than stop_timeout_seconds: the other at its far edge
            let mut d = json!({"container": "c", prop: v});
            match prop {
                "timeout_seconds" => d["stop_timeout_seconds"] = json!(0),
                "stop_timeout_seconds" => d["timeout_seconds"] = json!(MAX_SECONDS),
                _ => {}
            }
            t["action"] = json!({ "docker": d });
        }
        "Notifier" => c["notify"] = json!([{"exec": ["/bin/true"], prop: v}]),
        "Webhook" => c["notify"] = json!([{"webhook": {"url": "http://127.0.0.1/", prop: v}}]),
        "Heartbeat" => c["heartbeat"] = json!({"url": "http://127.0.0.1/", prop: v}),
        "Metrics" => c["metrics"] = json!({ prop: v }),
        _ => panic!("no place for a setting of {def} ({prop}): add one to place()"),
    }
    c
}

/// A schema a setting's value is checked against: the setting's own, its list items' or one
/// of its branches'.
struct Leaf<'a> {
    schema: &'a Map<String, Value>,
    /// The value goes into a list (`ok_exit_codes: [v]`).
    in_list: bool,
}

fn leaves<'a>(s: &'a Value, in_list: bool, out: &mut Vec<Leaf<'a>>) {
    let Value::Object(o) = s else { return };
    out.push(Leaf { schema: o, in_list });
    if let Some(items) = o.get("items") {
        leaves(items, true, out);
    }
    for branch in o
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        leaves(branch, in_list, out);
    }
}

/// Every setting of the schema: (definition, key, its schema).
fn settings(schema: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    let mut maps: Vec<(String, &Value)> = vec![(String::new(), schema)];
    if let Some(Value::Object(defs)) = schema.get("definitions") {
        maps.extend(defs.iter().map(|(n, d)| (n.clone(), d)));
    }
    for (def, m) in maps {
        if let Some(Value::Object(props)) = m.get("properties") {
            for (k, p) in props {
                out.push((def.clone(), k.clone(), p));
            }
        }
    }
    assert!(
        out.len() > 60,
        "too few settings read from the schema: {}",
        out.len()
    );
    out
}

fn has_type(s: &Map<String, Value>, t: &str) -> bool {
    match s.get("type") {
        Some(Value::String(x)) => x == t,
        Some(Value::Array(a)) => a.iter().any(|x| x == t),
        _ => false,
    }
}

fn number(n: f64, integer: bool) -> Value {
    if integer {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// Settings whose ids must name an existing account (`user:`/`group:` of commands run as
/// another user): within the range, the loader looks them up.
const LOOKED_UP: &[&str] = &[
    "Check.group",
    "ExecAction.user",
    "ExecAction.group",
    "OnGiveUp.user",
    "OnGiveUp.group",
];

#[test]
fn schema_and_loader_agree_at_every_edge() {
    let schema = generate::<RawConfig>("test");
    let mut wrong = Vec::new();
    let mut checked = Vec::new();
    for (def, key, p) in settings(&schema) {
        let mut ls = Vec::new();
        leaves(p, false, &mut ls);
        for leaf in ls {
            let s = leaf.schema;
            let integer = has_type(s, "integer");
            let step = if integer { 1.0 } else { 0.001 };
            let bound = |k: &str| s.get(k).and_then(Value::as_f64);
            // (value, whether the loader must take it)
            let mut cases: Vec<(f64, bool)> = Vec::new();
            if let Some(m) = bound("minimum") {
                cases.extend([(m, true), (m - step, false)]);
            }
            if let Some(m) = bound("exclusiveMinimum") {
                cases.extend([(m, false), (m + step, true)]);
            }
            if let Some(m) = bound("maximum") {
                cases.extend([(m, true), (m + step, false)]);
            }
            if let Some(m) = bound("exclusiveMaximum") {
                cases.extend([(m, false), (m - step, true)]);
            }
            if cases.is_empty() {
                continue;
            }
            checked.push(format!("{def}.{key}"));
            for (n, take) in cases {
                let v = number(n, integer);
                let v = if leaf.in_list { json!([v]) } else { v };
                let got = loads(&place(&def, &key, v.clone()));
                // who a command runs as: any id in range is looked up, and one no account
                // has is refused as unknown, not as out of range
                let unknown = LOOKED_UP.contains(&format!("{def}.{key}").as_str())
                    && got.as_ref().is_err_and(|e| e.contains("on this machine"));
                if (got.is_ok() || unknown) != take {
                    wrong.push(format!(
                        "{def}.{key} = {v}: the schema says {}, the loader {}",
                        if take { "valid" } else { "invalid" },
                        match got {
                            Ok(()) => "takes it".to_string(),
                            Err(e) => format!("says: {e}"),
                        }
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the schema's ranges (#[schemars(range)] in raw.rs) and validation's differ:\n{}",
        wrong.join("\n")
    );
    for must in [
        ".interval_seconds",
        "Policy.backoff_multiplier",
        "Check.tcp_port",
        "Check.user",
        "Check.ok_exit_codes",
        "Check.min_free_percent",
        "DockerAction.stop_timeout_seconds",
        "Webhook.retries",
    ] {
        assert!(
            checked.iter().any(|c| c == must),
            "{must} not checked: {checked:?}"
        );
    }
    assert!(checked.len() >= 35, "{checked:?}");
}

/// The patterns of addresses (`tcp_port`, `tls_cert`, `metrics.listen`) say what the loader
/// says, ports at both edges first: `tcp_port: 127.0.0.1:70000` was taken by the schema and
/// refused by the loader.
#[test]
fn address_patterns_are_the_loaders() {
    let schema = generate::<RawConfig>("test");
    let pattern_of = |def: &str, key: &str| -> regex::Regex {
        let mut ls = Vec::new();
        leaves(
            &schema["definitions"][def]["properties"][key],
            false,
            &mut ls,
        );
        let p = ls
            .iter()
            .find_map(|l| l.schema.get("pattern").and_then(Value::as_str))
            .unwrap_or_else(|| panic!("{def}.{key} has no pattern"));
        regex::Regex::new(p).unwrap_or_else(|e| panic!("{def}.{key}: {e}"))
    };
    let host_port = [
        "127.0.0.1:1",
        "127.0.0.1:65535",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:70000",
        "127.0.0.1:99999",
        "localhost:080",
        "localhost:+80",
        "svc.example.com:443",
        "[::1]:443",
        "[::1]:0",
        "[::1]:65536",
        "[fe80::1%eth0]:22",
        " localhost:80 ",
        "localhost",
        "localhost:",
        ":80",
        "[::1]",
        "[::1]443",
        "[]:80",
        "::1:80",
        "a b:80",
        " [a]b:80",
        "[::1]:80]",
        "localhost:8o",
        "localhost:-1",
        "80",
        "0",
        "65536",
        "0080",
        "localhost:6553500",
        "localhost:00000000000000000000080",
    ];
    let listen = [
        "127.0.0.1:9798",
        "0.0.0.0:0",
        "127.0.0.1:65535",
        "127.0.0.1:65536",
        "127.0.0.1:70000",
        "127.0.0.1:009798",
        "[::1]:9798",
        "[::]:65536",
        "[fe80::1%2]:80",
        "256.0.0.1:80",
        "01.2.3.4:80",
        "1.2.3:80",
        "localhost:80",
        " 127.0.0.1:80",
        "127.0.0.1",
        "127.0.0.1:+80",
        ":80",
        "[::1]:",
    ];
    // tls_cert's host is also the certificate's name unless server_name is given: a rule
    // between keys, the loader's alone
    let tls_cert: Vec<&str> = host_port
        .iter()
        .copied()
        .filter(|v| !["a b:80", "[fe80::1%eth0]:22"].contains(v))
        .collect();
    let cases: Vec<(&str, &str, &[&str])> = vec![
        ("Check", "tcp_port", &host_port),
        ("Check", "tls_cert", &tls_cert),
        ("Metrics", "listen", &listen),
    ];
    let mut wrong = Vec::new();
    for (def, key, values) in cases {
        let re = pattern_of(def, key);
        for v in values {
            let schema_takes = re.is_match(v);
            let loader = loads(&place(def, key, json!(v)));
            if schema_takes != loader.is_ok() {
                wrong.push(format!(
                    "{def}.{key} = {v:?}: the schema {}, the loader {}",
                    if schema_takes {
                        "takes it"
                    } else {
                        "refuses it"
                    },
                    match loader {
                        Ok(()) => "takes it".to_string(),
                        Err(e) => format!("says: {e}"),
                    }
                ));
            }
        }
        // `${NAME}`: known once expanded, at load time
        for v in ["${HOST}:443", "127.0.0.1:${PORT}", "${ADDR}"] {
            assert!(re.is_match(v), "{def}.{key}: {v}");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A number setting without a range would take anything in an editor: validation gives every
/// one a range (or a set of values).
#[test]
fn every_number_setting_has_a_range() {
    let schema = generate::<RawConfig>("test");
    let mut bare = Vec::new();
    for (def, key, p) in settings(&schema) {
        let mut ls = Vec::new();
        leaves(p, false, &mut ls);
        for leaf in ls {
            let s = leaf.schema;
            // (a string setting takes numbers too, as YAML text: not a number setting)
            let numeric =
                (has_type(s, "integer") || has_type(s, "number")) && !has_type(s, "string");
            let bounded = ["minimum", "exclusiveMinimum", "enum"]
                .iter()
                .any(|k| s.contains_key(*k))
                && ["maximum", "exclusiveMaximum", "enum"]
                    .iter()
                    .any(|k| s.contains_key(*k));
            if numeric && !bounded {
                bare.push(format!("{def}.{key}"));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "give these a #[schemars(range(min = .., max = ..))] in raw.rs, as validation checks them: {bare:?}"
    );
}

/// The words the loader's message lists for a wrong one: `... is not a method: use restart,
/// start or reload-or-restart (line 3)` -> [restart, start, reload-or-restart].
fn listed_words(msg: &str) -> Option<Vec<String>> {
    let (_, list) = msg.rsplit_once(": use ")?;
    let list = list.split(" (line ").next().unwrap_or(list);
    Some(
        list.replace(" or ", ", ")
            .split(", ")
            .map(|w| w.trim().to_string())
            .collect(),
    )
}

/// `^(?:[Gg][Ee][Tt]|...)$` -> [get, ...].
fn pattern_words(pattern: &str) -> Vec<String> {
    let inner = pattern
        .strip_prefix("^(?:")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap_or_else(|| panic!("unexpected pattern {pattern}"));
    inner
        .split('|')
        .map(|alt| {
            let mut w = String::new();
            let mut chars = alt.chars();
            while let Some(c) = chars.next() {
                match c {
                    '[' => {
                        let class: String = chars.by_ref().take_while(|c| *c != ']').collect();
                        w.push(class.chars().last().unwrap_or_default());
                    }
                    '\\' => w.extend(chars.next()),
                    c => w.push(c),
                }
            }
            w
        })
        .collect()
}

#[test]
fn schema_words_are_the_loaders() {
    let schema = generate::<RawConfig>("test");
    let mut wrong = Vec::new();
    let mut with_message = Vec::new();
    let mut any_case = Vec::new();
    for (def, key, p) in settings(&schema) {
        let mut ls = Vec::new();
        leaves(p, false, &mut ls);
        let at = |v: Value, in_list: bool| {
            let v = if in_list { json!([v]) } else { v };
            place(&def, &key, v)
        };
        for leaf in ls {
            let s = leaf.schema;
            if let Some(words) = s.get("enum").and_then(Value::as_array) {
                let words: Vec<&Value> = words.iter().filter(|w| !w.is_null()).collect();
                for w in &words {
                    if let Err(e) = loads(&at((*w).clone(), leaf.in_list)) {
                        wrong.push(format!(
                            "{def}.{key}: {w} is in the schema, the loader says: {e}"
                        ));
                    }
                }
                let bad = if words.iter().all(|w| w.is_string()) {
                    json!("nope")
                } else {
                    json!(5)
                };
                match loads(&at(bad.clone(), leaf.in_list)) {
                    Ok(()) => wrong.push(format!("{def}.{key}: the loader takes {bad}")),
                    Err(e) => {
                        if let Some(listed) = listed_words(&e) {
                            with_message.push(format!("{def}.{key}"));
                            let ours: Vec<String> = words
                                .iter()
                                .filter_map(|w| w.as_str().map(str::to_string))
                                .collect();
                            if listed != ours {
                                wrong.push(format!(
                                    "{def}.{key}: the loader's words {listed:?}, the schema's {ours:?}"
                                ));
                            }
                        }
                    }
                }
            }
            // (the patterns of addresses: `address_patterns_are_the_loaders`)
            let address = ["tcp_port", "tls_cert", "listen"].contains(&key.as_str());
            if let Some(pattern) = s
                .get("pattern")
                .and_then(Value::as_str)
                .filter(|_| !address)
            {
                any_case.push(format!("{def}.{key}"));
                let re = regex::Regex::new(pattern).expect("the schema's pattern compiles");
                for w in pattern_words(pattern) {
                    for form in [w.to_lowercase(), w.to_uppercase()] {
                        assert!(re.is_match(&form), "{pattern} does not match {form}");
                        if let Err(e) = loads(&at(json!(form), leaf.in_list)) {
                            wrong.push(format!(
                                "{def}.{key}: {form} matches the schema, the loader says: {e}"
                            ));
                        }
                    }
                }
                assert!(!re.is_match("nope"), "{pattern}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // method (http, systemd, docker), format, events, log_level
    assert!(with_message.len() >= 6, "{with_message:?}");
    assert_eq!(any_case, [".log_level", "Check.method"]);
}

/// The words a fixed set allows are validation's own lists where it has them.
#[test]
fn events_are_the_policys() {
    let schema = generate::<RawConfig>("test");
    let events = &schema["definitions"]["Notifier"]["properties"]["events"]["items"]["enum"];
    let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(events, &json!(all));
}

/// `neon-watchdog schema --included` describes what `include:` reads: targets, nothing else.
#[test]
fn included_schema_holds_targets_only() {
    let s = generate::<RawIncluded>("test");
    let keys: Vec<&String> = s["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    assert_eq!(keys, ["$schema", "targets"]);
    assert_eq!(s["additionalProperties"], json!(false));
    assert!(s["definitions"]["Check"].is_object());
}

#[test]
fn any_case_pattern_escapes_what_is_not_a_letter() {
    assert_eq!(
        any_case(&["reload-or-restart", "a.1"]),
        "^(?:[Rr][Ee][Ll][Oo][Aa][Dd]-[Oo][Rr]-[Rr][Ee][Ss][Tt][Aa][Rr][Tt]|[Aa]\\.1)$"
    );
}

/// A JSON config names its schema with a `$schema` key (VS Code's JSON support reads it): the
/// loader takes it, in the config and in an included file, and ignores it.
#[test]
fn dollar_schema_key_is_taken_and_ignored() {
    let mut c = base();
    c["$schema"] = json!("../schema/neon-watchdog.schema.json");
    assert_eq!(loads(&c), Ok(()));
    let schema = generate::<RawIncluded>("test");
    assert!(schema["properties"]["$schema"].is_object());
}
