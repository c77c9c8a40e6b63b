//! `neon-watchdog man 5`: the config's manual page, neon-watchdog.yml(5), generated from the
//! config's JSON Schema (`neon-watchdog schema`), which schemars generates from the raw
//! structs the loader reads: every key is there, with its doc comment as its description, its
//! type, range and words. So the page, the editor schema and the parser cannot drift apart: a
//! key added to the config is on the page. What the schema cannot say (rules between values,
//! `${NAME}`, includes, merge keys) is said in the prose around the keys, and the README has the
//! rest.

use crate::config::schema::render;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What the page says after its one-line summary.
const DESCRIPTION: &[&str] = &[
    "neon-watchdog(1) reads its configuration from one file, YAML or JSON (by the file name's \
     extension, else by its content), by default /etc/neon-watchdog/config.yml (-c FILE or \
     NEON_WATCHDOG_CONFIG for another). It holds a few settings and the targets to watch: each \
     target has checks, an action that recovers it, and a restart policy.",
    "Every key is listed below with its type and meaning, and merge keys (<<) are under MERGE \
     KEYS; any other key is an error (with the key the typo probably meant), and so is a value \
     of the wrong type or out of range. A \
     key given as null is a key not given. Durations are integer seconds, in keys ending in \
     _seconds. neon-watchdog test-config -c FILE validates a config, naming each problem's \
     field path and line, and prints what the config means after defaults: run it after every \
     edit.",
    "${NAME} in a string of a check or an action, and in state_file, lock_file, \
     control_socket and systemctl_path, is read from the environment when the config is loaded (an undefined NAME \
     is an error; $${ writes a literal ${). Every such value is a secret: it is masked (***) in \
     every log line, in the state file, in status and in notifications.",
    "The configuration holds commands that run as root: keep it, its directory and the files \
     it includes owned by root and not writable by others; check and run refuse them otherwise.",
    "user and group on an exec action (its start, restart and stop), on on_give_up and on a \
     command check run that command as another user, as systemd's User= and Group=: that uid, \
     the user's primary group as gid (or group), the supplementary groups of initgroups(3), and \
     HOME, USER, LOGNAME and SHELL of the user, in a clean environment that keeps only PATH, \
     the locale and TZ of the watchdog's (env wins where it gives them); group alone \
     changes only the gid. A name or an id, which must exist: an unknown one is an error. Only \
     root can switch. The user of a process_name or pid_file check is something else: whose \
     processes count.",
];

/// A short config that `test-config` accepts (a unit test holds it to that).
pub const EXAMPLE: &str = "\
state_file: /var/lib/neon-watchdog/state.json
include: [conf.d/*.yml]
default_policy:
  fail_threshold: 2
  restart_cooldown_seconds: 60
targets:
  - name: nginx
    checks:
      - systemd_unit: nginx.service
      - http: http://127.0.0.1/
        expect_status: [200]
    action:
      systemd: {unit: nginx.service, method: restart}
  - name: host
    checks:
      - disk_free: /
        min_free_percent: 10
    action: none
";

/// What MERGE KEYS says: YAML's merge key, which no schema lists (the loader applies it before
/// it reads the keys).
const MERGE_KEYS: &[&str] = &[
    "In YAML, any map (a target, a check, a policy, an action, env) may hold a merge key, \
     <<: *name, which brings in the keys of the map the anchor &name marks; <<: [*a, *b] \
     brings in several. The map's own keys win over merged ones, and an earlier merged map \
     over a later one. A merged key is checked as if written in the map: an unknown one is an \
     error reported at the line of its <<.",
    "Keep the templates in top-level keys whose names start with x- (in the config and in an \
     included file): they are no settings and are ignored. JSON has no merge keys: there << is \
     an unknown key. Below, both checks take the template's expect_status; the first its \
     timeout of 3 seconds, the second its own of 10:",
];

/// The example of MERGE KEYS: a config that `test-config` accepts (a unit test holds it to
/// that, and to what it says it means).
pub const MERGE_EXAMPLE: &str = "\
x-probe: &probe {timeout_seconds: 3, expect_status: [200]}
targets:
  - name: api
    checks:
      - {<<: *probe, http: \"http://127.0.0.1:8080/health\"}
    action: none
  - name: web
    checks:
      - {<<: *probe, http: \"http://127.0.0.1/\", timeout_seconds: 10}
    action: none
";

/// FILES: path and what it is.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/neon-watchdog/config.yml",
        "The configuration: the default of -c. The package ships a starter config that only \
         monitors the host (a conffile).",
    ),
    (
        "/etc/neon-watchdog/conf.d/",
        "Files of targets dropped in by other packages or configuration management, read when \
         the config says include: [conf.d/*.yml]. Shipped with a README only (conf.d/README, \
         which that glob does not read).",
    ),
    (
        "/usr/share/neon-watchdog/schema.json",
        "The JSON Schema of the config, for editors (completion, hover help, validation while \
         typing): what neon-watchdog schema prints.",
    ),
    (
        "/usr/share/neon-watchdog/included.schema.json",
        "The JSON Schema of a file include: reads: what neon-watchdog schema --included prints.",
    ),
];

/// The whole page, neon-watchdog.yml(5), as roff.
pub fn page(version: &str) -> Vec<u8> {
    let config: Value = serde_json::from_str(&render(false)).unwrap_or(Value::Null);
    let included: Value = serde_json::from_str(&render(true)).unwrap_or(Value::Null);
    let empty = Map::new();
    let defs = config
        .get("definitions")
        .and_then(Value::as_object)
        .unwrap_or(&empty);

    let mut r = Roff::new();
    r.control(
        "TH",
        [
            "NEON-WATCHDOG.YML",
            "5",
            "",
            &format!("neon-watchdog {version}"),
            "neon-watchdog manual",
        ],
    );
    r.control("SH", ["NAME"]);
    r.text([roman(
        "neon-watchdog.yml - the configuration of neon-watchdog",
    )]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([italic("/etc/neon-watchdog/config.yml")]);
    r.control("br", []);
    r.text([italic("/etc/neon-watchdog/conf.d/*.yml")]);
    r.control("SH", ["DESCRIPTION"]);
    for (i, p) in DESCRIPTION.iter().enumerate() {
        if i > 0 {
            r.control("PP", []);
        }
        r.text([roman(*p)]);
    }

    // the maps, in the order a reader meets them: the top level, then each definition where
    // it is first referred to, breadth first
    r.control("SH", ["KEYS"]);
    r.text([roman(
        "Each map's keys, in alphabetical order. (required) marks a key the map must have; \
         a list's items are the map or value named.",
    )]);
    let mut order: Vec<String> = Vec::new();
    let mut used_at: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue: Vec<(String, &Value)> = vec![(String::new(), &config)];
    let mut i = 0;
    while i < queue.len() {
        let (at, map) = (queue[i].0.clone(), queue[i].1);
        i += 1;
        for (key, schema) in properties(map) {
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            for (name, list) in refs(schema) {
                let shown = if list {
                    format!("{path}[]")
                } else {
                    path.clone()
                };
                let places = used_at.entry(name.clone()).or_default();
                if !places.contains(&shown) {
                    places.push(shown.clone());
                }
                if !order.contains(&name) {
                    order.push(name.clone());
                    if let Some(def) = defs.get(&name) {
                        queue.push((shown, def));
                    }
                }
            }
        }
    }
    map_section(&mut r, "The top level", &config, &used_at);
    for name in &order {
        if let Some(def) = defs.get(name) {
            let places = used_at.get(name).cloned().unwrap_or_default();
            map_section(&mut r, &places.join(", "), def, &used_at);
        }
    }

    r.control("SH", ["MERGE KEYS"]);
    for (i, p) in MERGE_KEYS.iter().enumerate() {
        if i > 0 {
            r.control("PP", []);
        }
        r.text([roman(*p)]);
    }
    literal(&mut r, MERGE_EXAMPLE);

    r.control("SH", ["INCLUDED FILES"]);
    r.text([
        roman("A file that "),
        bold("include:"),
        roman(
            " reads is YAML or JSON and holds a targets: list (the same targets[] as above) \
             and, as the config, may hold templates in x- keys and merge keys (see MERGE \
             KEYS); any other key is an error, and an include: in it is refused (includes do \
             not nest). An empty \
             file holds no targets. Target names are unique across the config and all its \
             files. A relative glob is relative to the config's directory; each glob's files \
             are read in name order, and editors' and package managers' leftovers (*~, \
             *.dpkg-old, *.dpkg-dist, ...) are skipped. Its keys: ",
        ),
    ]);
    let mut keys: Vec<Vec<Inline>> = properties(&included)
        .map(|(k, _)| vec![bold(k.as_str())])
        .collect();
    keys.extend(pattern_properties(&included).map(|(p, _)| pattern_label(p)));
    let mut line: Vec<Inline> = Vec::new();
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.extend(k);
    }
    line.push(roman("."));
    r.text(line);

    r.control("SH", ["EXAMPLE"]);
    literal(&mut r, EXAMPLE);

    r.control("SH", ["FILES"]);
    for (path, what) in FILES {
        r.control("TP", []);
        r.text([italic(*path)]);
        r.text([roman(*what)]);
    }
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("neon-watchdog"),
        roman("(1); the README, "),
        italic("/usr/share/doc/neon-watchdog/README.md"),
        roman(", with a worked example of each check and action."),
    ]);
    let mut out = Vec::new();
    // writing into a Vec cannot fail
    let _ = r.to_writer(&mut out);
    out
}

/// Lines as they are (a YAML example), indented, in a paragraph of their own.
fn literal(r: &mut Roff, text: &str) {
    r.control("PP", []);
    r.control("nf", []);
    r.control("RS", ["4"]);
    for l in text.lines() {
        r.text([roman(l)]);
        r.control("br", []);
    }
    r.control("RE", []);
    r.control("fi", []);
}

/// A map's keys as `.TP` items under a `.SS` heading: the key, its type, its description;
/// then the keys a pattern admits (`patternProperties`), as PREFIX*name* for `^PREFIX`.
fn map_section(r: &mut Roff, title: &str, map: &Value, used_at: &BTreeMap<String, Vec<String>>) {
    r.control("SS", [title]);
    if let Some(d) = map.get("description").and_then(Value::as_str) {
        r.text([roman(d)]);
    }
    let required: Vec<&str> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // a check: the kind keys (one of them) and which kinds a modifier goes with
    let kinds: Vec<&str> = alternatives_required(map);
    if !kinds.is_empty() {
        r.control("PP", []);
        r.text([roman(format!(
            "Exactly one of these keys: {}.",
            kinds.join(", ")
        ))]);
    }
    for (key, schema) in properties(map) {
        r.control("TP", []);
        r.text([bold(key.as_str())]);
        let mut what = kind(schema, used_at);
        if required.contains(&key.as_str()) {
            what.push_str(", required");
        }
        if let Some(with) = goes_with(map, key).filter(|_| !kinds.contains(&key.as_str())) {
            what.push_str(&format!(", with {with}"));
        }
        let desc = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        r.text([italic(format!("({what})")), roman(format!(" {desc}"))]);
    }
    for (pattern, schema) in pattern_properties(map) {
        r.control("TP", []);
        r.text(pattern_label(pattern));
        let mut what = kind(schema, used_at);
        if what == "any" {
            what.push_str(" value");
        }
        let which = match literal_prefix(pattern) {
            Some(prefix) => format!("any key that starts with {prefix}"),
            None => format!("any key that matches the pattern {pattern}"),
        };
        let desc = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        r.text([
            italic(format!("({what}; {which})")),
            roman(format!(" {desc}")),
        ]);
    }
}

/// A map's `patternProperties`: each pattern of key names and the schema of their values.
fn pattern_properties(map: &Value) -> impl Iterator<Item = (&String, &Value)> {
    map.get("patternProperties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

/// `^x-` → `x-`: a pattern that only says how a key starts, that start.
fn literal_prefix(pattern: &str) -> Option<&str> {
    pattern.strip_prefix('^').filter(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// The keys a pattern admits, as an item's name: `x-`*name* for `^x-`, else the pattern.
fn pattern_label(pattern: &str) -> Vec<Inline> {
    match literal_prefix(pattern) {
        Some(prefix) => vec![bold(prefix), italic("name")],
        None => vec![bold(pattern)],
    }
}

/// A map's properties in the schema's (alphabetical) order.
fn properties(map: &Value) -> impl Iterator<Item = (&String, &Value)> {
    map.get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

/// The definitions a property's schema refers to, and whether as a list's items.
fn refs(schema: &Value) -> Vec<(String, bool)> {
    fn walk(v: &Value, list: bool, out: &mut Vec<(String, bool)>) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    if let Some(name) = r.strip_prefix("#/definitions/") {
                        out.push((name.to_string(), list));
                    }
                }
                for (k, v) in o {
                    walk(v, list || k == "items", out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, list, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(schema, false, &mut out);
    out
}

/// A map whose `anyOf`/`oneOf` are each one required key: those keys (a check's kinds, a
/// notifier's webhook or exec).
fn alternatives_required(map: &Value) -> Vec<&str> {
    let alts = map
        .get("anyOf")
        .or_else(|| map.get("oneOf"))
        .and_then(Value::as_array);
    let Some(alts) = alts else { return Vec::new() };
    let keys: Vec<&str> = alts
        .iter()
        .filter_map(|a| match a.get("required").and_then(Value::as_array) {
            Some(r) if r.len() == 1 && a.as_object().is_some_and(|o| o.len() == 1) => r[0].as_str(),
            _ => None,
        })
        .collect();
    if keys.len() == alts.len() {
        keys
    } else {
        Vec::new()
    }
}

/// The keys `key` goes with, from the map's `dependencies` (a check modifier's kinds).
fn goes_with(map: &Value, key: &str) -> Option<String> {
    let dep = map.get("dependencies")?.get(key)?;
    let kinds: Vec<&str> = dep
        .get("anyOf")?
        .as_array()?
        .iter()
        .filter_map(|a| a.get("required")?.as_array()?.first()?.as_str())
        .collect();
    (!kinds.is_empty()).then(|| kinds.join(" or "))
}

/// A value's type in words: "integer, 1 to 65535", "list of text", "one of: a, b", ...
fn kind(s: &Value, used_at: &BTreeMap<String, Vec<String>>) -> String {
    let Some(o) = s.as_object() else {
        return "any".into();
    };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/definitions/").unwrap_or(r);
        let at = used_at
            .get(name)
            .and_then(|p| p.first())
            .cloned()
            .unwrap_or_else(|| name.to_string());
        return format!("a map, see {at}");
    }
    if let Some(words) = o.get("enum").and_then(Value::as_array) {
        let words: Vec<String> = words.iter().filter(|w| !w.is_null()).map(word).collect();
        return if words.len() == 1 {
            words[0].clone()
        } else {
            format!("one of {}", words.join(", "))
        };
    }
    for alt in ["anyOf", "oneOf"] {
        if let Some(alts) = o.get(alt).and_then(Value::as_array) {
            let mut parts: Vec<String> = Vec::new();
            let mut any_case = false;
            let words = alts.iter().any(|a| a.get("enum").is_some());
            for a in alts {
                if a.get("type").and_then(Value::as_str) == Some("null") {
                    continue;
                }
                if words && a.get("pattern").is_some() && a.get("enum").is_none() {
                    // beside the words, a pattern is the same words in any case (log_level,
                    // method)
                    any_case = true;
                    continue;
                }
                let k = kind(a, used_at);
                if !parts.contains(&k) {
                    parts.push(k);
                }
            }
            let mut k = if parts.is_empty() {
                "text".to_string()
            } else {
                parts.join("; or ")
            };
            if any_case && parts.len() == 1 && k.starts_with("one of") {
                k.push_str(" (any case)");
            }
            return k;
        }
    }
    let types: Vec<&str> = match o.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    let range = |unit: &str| {
        let (min, max) = (o.get("minimum"), o.get("maximum"));
        match (min, max) {
            (Some(a), Some(b)) => format!("{unit}, {a} to {b}"),
            (Some(a), None) => format!("{unit}, at least {a}"),
            (None, Some(b)) => format!("{unit}, at most {b}"),
            (None, None) => unit.to_string(),
        }
    };
    if types.contains(&"string") {
        // YAML gives any scalar as text where text belongs
        return match o.get("pattern").and_then(Value::as_str) {
            Some(p) => format!("text {}", shape(p)),
            None => "text".into(),
        };
    }
    match types.first().copied() {
        Some("integer") => range("integer"),
        Some("number") => range("number"),
        Some("boolean") => "true or false".into(),
        Some("array") => match o.get("items") {
            Some(items) => {
                let k = kind(items, used_at);
                match k.strip_prefix("a map, ") {
                    Some(see) => format!("list of maps, {see}"),
                    None => format!("list of {k}"),
                }
            }
            None => "list".into(),
        },
        Some("object") => match o.get("additionalProperties") {
            Some(v @ Value::Object(_)) => {
                format!("map of names to {}", kind(v, used_at))
            }
            _ => "map".into(),
        },
        _ => "any".into(),
    }
}

/// A text's pattern in words: the address forms the schema's patterns say (`${NAME}` goes
/// anywhere, as DESCRIPTION says); another pattern as it is.
fn shape(pattern: &str) -> String {
    use crate::config::schema::{host_port_pattern, listen_pattern};
    if pattern == host_port_pattern(true) {
        "host:port, [IPv6]:port or a port alone".into()
    } else if pattern == host_port_pattern(false) {
        "host:port or [IPv6]:port".into()
    } else if pattern == listen_pattern() {
        "IP:PORT or [IPv6]:PORT".into()
    } else {
        format!("that matches the pattern {pattern}")
    }
}

fn word(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's example is a config the loader takes.
    #[test]
    fn the_example_is_a_valid_config() {
        let loaded = crate::config::parse(
            std::path::Path::new("/etc/neon-watchdog/config.yml"),
            EXAMPLE,
            &crate::config::validate::Env {
                lookup: &|_| None,
                is_root: true,
                config_dir: "/etc/neon-watchdog".into(),
            },
        );
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }

    /// The example of merge keys is a config the loader takes, meaning what the page says: the
    /// template's keys in both checks, the second's own timeout over the template's.
    #[test]
    fn the_merge_keys_example_is_a_valid_config_and_means_what_it_says() {
        let loaded = crate::config::parse(
            std::path::Path::new("/etc/neon-watchdog/config.yml"),
            MERGE_EXAMPLE,
            &crate::config::validate::Env {
                lookup: &|_| None,
                is_root: true,
                config_dir: "/etc/neon-watchdog".into(),
            },
        );
        let config = match loaded {
            Ok(c) => c,
            Err(e) => panic!("{e:?}"),
        };
        let checks: Vec<_> = config
            .config
            .targets
            .iter()
            .flat_map(|t| t.checks.iter())
            .collect();
        let timeouts: Vec<u64> = checks.iter().map(|c| c.timeout.as_secs()).collect();
        assert_eq!(timeouts, [3, 10]);
        for c in checks {
            match &c.check {
                crate::config::model::Check::Http(h) => assert_eq!(h.expect_status, [200]),
                other => panic!("{other:?}"),
            }
        }
        let text = String::from_utf8(page("0")).unwrap();
        assert!(text.contains(".SH \"MERGE KEYS\""), "{text}");
        assert!(text.contains("{<<: *probe, http:"), "{text}");
    }

    /// A value that takes several forms has each named: tcp_port a port or host:port, and
    /// a text's address pattern in words.
    #[test]
    fn every_form_of_a_value_is_named() {
        let text = String::from_utf8(page("0")).unwrap();
        let item = |key: &str| {
            let at = text
                .find(&format!(".TP\n\\fB{key}\\fR\n"))
                .unwrap_or_else(|| panic!("no item {key}:\n{text}"));
            text[at..].lines().nth(2).unwrap_or("").to_string()
        };
        let tcp = item("tcp_port");
        assert!(
            tcp.contains("(integer, 1 to 65535; or text host:port, [IPv6]:port or a port alone)"),
            "{tcp}"
        );
        assert!(item("tls_cert").contains("(text host:port or [IPv6]:port)"));
        assert!(item("listen").contains("(text IP:PORT or [IPv6]:PORT)"));
        // words in any case stay words
        assert!(item("log_level").contains("(one of error, warn, info, debug, trace (any case))"));
    }

    /// Every key pattern (`patternProperties`) of both schemas is an item of the page, with
    /// its meaning, and an included file's are among its keys; conf.d is shipped with its
    /// README.
    #[test]
    fn every_key_pattern_is_an_item() {
        let text = String::from_utf8(page("0")).unwrap();
        let mut found = 0;
        for included in [false, true] {
            let schema: Value = serde_json::from_str(&render(included)).unwrap();
            for (pattern, s) in pattern_properties(&schema) {
                found += 1;
                let prefix = literal_prefix(pattern).unwrap().replace('-', "\\-");
                let desc = s["description"].as_str().unwrap().replace('-', "\\-");
                let item = format!(".TP\n\\fB{prefix}\\fR\\fIname\\fR\n");
                assert!(text.contains(&item), "no item {item}:\n{text}");
                assert!(text.contains(&desc), "no {desc}:\n{text}");
                if included {
                    let keys = format!("\\fBtargets\\fR, \\fB{prefix}\\fR\\fIname\\fR.");
                    assert!(text.contains(&keys), "{keys}:\n{text}");
                }
            }
        }
        assert_eq!(found, 2);
        assert!(!text.contains("Shipped empty"), "{text}");
    }

    /// Every key of both schemas is an item of the page.
    #[test]
    fn every_key_is_an_item() {
        let text = String::from_utf8(page("0")).unwrap();
        fn keys(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::Object(p)) = o.get("properties") {
                        out.extend(p.keys().cloned());
                    }
                    o.values().for_each(|v| keys(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        for included in [false, true] {
            keys(&serde_json::from_str(&render(included)).unwrap(), &mut all);
        }
        assert!(all.len() > 50, "{all:?}");
        for k in all {
            assert!(
                text.contains(&format!(".TP\n\\fB{k}\\fR")),
                "no item for {k}:\n{text}"
            );
        }
    }
}
