//! The config's JSON Schema (`neon-watchdog schema`), for editors: completion, hover help and
//! validation while typing (VS Code's YAML extension, neovim's yamlls, any yaml-language-server).
//!
//! Generated with schemars from the raw structs serde reads (`raw.rs`), so it cannot drift from
//! the parser: a field added there is in the schema, with its doc comment as its description.
//! What the structs alone do not say is said here, each in the loader's own terms:
//! - ranges (`#[schemars(range)]` on the raw fields, with the bounds below): a test walks the
//!   schema and holds the loader to the same edges (`schema_and_loader_agree_at_every_edge`);
//! - words the loader takes from a fixed set (log_level, methods, format, events): `enum`s,
//!   with the case-insensitive ones (log_level, http's method) also as a pattern;
//! - the types read with a deserializer of their own (`include:` a glob or a list, `tcp_port` a
//!   port or host:port, `user` a name or a uid, `group` a name or a gid, `action: none` or a map);
//! - a check's one kind and the modifiers of each kind, from the table validation uses
//!   (`validate/checks.rs`), and the keys some maps need one of.
//!
//! Draft-07: what yaml-language-server (and so VS Code's YAML extension) implements.
//!
//! Two things the schema cannot say as the loader does:
//! - YAML reads any scalar as text where a string belongs (`command: [sleep, 5]`): string
//!   settings take numbers and true/false too, which a JSON config must quote (the loader says
//!   so);
//! - a value present but null (`tcp_port: ~`) is, to the loader, a key not given.

use super::raw::{
    GroupSpec, IncludeSpec, PortSpec, RawAction, RawActionMap, RawConfig, RawIncluded, UserSpec,
};
use crate::policy::EventKind;
use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// Upper bound of every `*_seconds` setting (validation's, as the schema's JSON number).
pub const MAX_SECONDS: i64 = super::validate::MAX_SECONDS as i64;
/// Upper bound of counts held in 32 bits (fail_threshold, max_parallel, ...).
pub const U32: u32 = u32::MAX;
/// Upper bound of sizes in MiB: what a u64 counts in bytes.
pub const MAX_MIB: u64 = u64::MAX >> 20;

/// The schema of the config (`included`: of a file its `include:` reads), as pretty JSON.
pub fn render(included: bool) -> String {
    let schema = if included {
        generate::<RawIncluded>("urn:neon-watchdog:included")
    } else {
        generate::<RawConfig>("urn:neon-watchdog:config")
    };
    let mut out = serde_json::to_string_pretty(&schema).unwrap_or_default();
    out.push('\n');
    out
}

/// The schema of `T` with its `$id`, post-processed (see [`yaml_scalars`], [`tidy`]).
pub fn generate<T: JsonSchema>(id: &str) -> Value {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut v = schema.to_value();
    if let Value::Object(root) = &mut v {
        root.insert("$id".into(), Value::from(id));
        // top-level `x-...` keys: not settings, a place for the anchors of templates
        root.insert(
            "patternProperties".into(),
            json!({ format!("^{}", super::de::EXTENSION): {
                "description": "Not a setting (ignored): a place for YAML anchors that merge keys name, e.g. `x-web: &web {...}` then `<<: *web` in a target."
            } }),
        );
        yaml_scalars(root);
        if let Some(Value::Object(defs)) = root.get_mut("definitions") {
            for def in defs.values_mut() {
                if let Value::Object(def) = def {
                    yaml_scalars(def);
                }
            }
        }
    }
    tidy(&mut v);
    v
}

/// YAML gives the text of any scalar where a string is asked for (`name: 2024`, `command:
/// [sleep, 5]`, `env: {PORT: 8080}`), and the loader takes it: a string setting's schema takes
/// numbers and true/false too. Only the settings' own schemas (and their list items and map
/// values), not the branches of `tcp_port` or `user`, where a number means something else.
fn yaml_scalars(def: &mut Map<String, Value>) {
    fn widen(s: &mut Value) {
        let Value::Object(o) = s else { return };
        // words, and strings of a form (host:port), which a number or true/false is not
        if o.contains_key("enum") || o.contains_key("const") || o.contains_key("pattern") {
            return;
        }
        match o.get_mut("type") {
            Some(Value::String(t)) if t == "string" => {
                o.insert("type".into(), json!(["string", "number", "boolean"]));
            }
            Some(Value::Array(ts)) if ts.iter().any(|t| t == "string") => {
                let null = ts.iter().any(|t| t == "null");
                *ts = vec![json!("string"), json!("number"), json!("boolean")];
                if null {
                    ts.push(json!("null"));
                }
            }
            _ => {
                if let Some(items) = o.get_mut("items") {
                    widen(items);
                }
                if let Some(values) = o.get_mut("additionalProperties") {
                    widen(values);
                }
            }
        }
    }
    if let Some(Value::Object(props)) = def.get_mut("properties") {
        for p in props.values_mut() {
            widen(p);
        }
    }
}

/// What is for Rust, not for people: raw integers are i128 and floats f64 (`format: int128`
/// and `format: double` mean nothing to a user or an editor), and a doc comment's line breaks
/// are not breaks in its text.
fn tidy(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if matches!(
                o.get("format").and_then(Value::as_str),
                Some("int128" | "double")
            ) {
                o.remove("format");
            }
            if let Some(Value::String(d)) = o.get_mut("description") {
                *d = d.split_whitespace().collect::<Vec<_>>().join(" ");
            }
            o.values_mut().for_each(tidy);
        }
        Value::Array(a) => a.iter_mut().for_each(tidy),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Words from a fixed set
// ---------------------------------------------------------------------------------------------

/// `^(?:[Ee][Rr]...|...)$`: the words, in any case (JSON Schema patterns have no flags).
/// Only regex syntax is escaped: ECMAScript's unicode mode, which validators use, refuses
/// any other escape.
fn any_case(words: &[&str]) -> String {
    let alts: Vec<String> = words
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else if "^$\\.*+?()[]{}|/".contains(c) {
                        format!("\\{c}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("^(?:{})$", alts.join("|"))
}

/// The words as an `enum` (what editors complete), and, when the loader takes them in any
/// case, also as a pattern (`extra`: further words it takes, not offered).
fn words(exact: &[&str], any_case_too: Option<&[&str]>) -> Schema {
    match any_case_too {
        None => json_schema!({ "type": "string", "enum": exact }),
        Some(extra) => {
            let all: Vec<&str> = exact.iter().chain(extra).copied().collect();
            json_schema!({
                "anyOf": [
                    { "type": "string", "enum": exact },
                    { "type": "string", "pattern": any_case(&all) }
                ]
            })
        }
    }
}

macro_rules! word_schema {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

/// The log levels `LogLevel::parse` takes.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];
/// What `log_checks` takes.
pub const LOG_CHECKS: &[&str] = &["all", "changes"];
/// The http check's methods (any case).
pub const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST"];
/// A webhook's body formats.
pub const WEBHOOK_FORMATS: &[&str] = &["json", "slack", "discord"];
/// A systemd action's methods.
pub const SYSTEMD_METHODS: &[&str] = &["restart", "start", "reload-or-restart"];
/// A docker action's methods.
pub const DOCKER_METHODS: &[&str] = &["restart", "start"];

word_schema!(
    /// `log_level`: any case, and `warning` for warn.
    LogLevelWord => words(LOG_LEVELS, Some(&["warning"]))
);
word_schema!(
    /// The http check's `method`: any case.
    HttpMethodWord => words(HTTP_METHODS, Some(&[]))
);
word_schema!(LogChecksWord => words(LOG_CHECKS, None));
word_schema!(WebhookFormatWord => words(WEBHOOK_FORMATS, None));
word_schema!(SystemdMethodWord => words(SYSTEMD_METHODS, None));
word_schema!(DockerMethodWord => words(DOCKER_METHODS, None));
word_schema!(
    /// An event a notifier takes.
    EventWord => {
        let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        words(&all, None)
    }
);
word_schema!(
    /// The http check's `ip_version`.
    IpVersion => json_schema!({ "type": "integer", "enum": [4, 6] })
);

// ---------------------------------------------------------------------------------------------
// Addresses: host:port, IP:PORT
// ---------------------------------------------------------------------------------------------

/// A port 1..65535, without leading zeros.
const PORT: &str =
    "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";

/// A value holding `${NAME}`: what it is, the loader knows once it is expanded.
const VARIABLE: &str = "[\\s\\S]*\\$\\{[\\s\\S]*";

/// `host:port` or `[IPv6]:port` as the loader reads them (`parse_host_port` in validation):
/// blanks around, any host without a `:` (IPv6 in brackets, nothing after them but the
/// port), a port 1..65535 (as an integer is
/// read: leading zeros and a `+` taken); `bare_port`: a port alone too (tcp_port:
/// 127.0.0.1), of digits only.
pub fn host_port_pattern(bare_port: bool) -> String {
    let port = format!("\\+?0*{PORT}");
    let mut forms = vec![
        format!("\\[[^\\]]+\\]:{port}"),
        format!("[^\\s:\\[][^:]*:{port}"),
    ];
    if bare_port {
        forms.push(format!("0*{PORT}"));
    }
    format!("^(?:\\s*(?:{})\\s*|{VARIABLE})$", forms.join("|"))
}

/// `IP:PORT` as `metrics.listen` takes it (Rust's `SocketAddr`): IPv4 in four decimal octets
/// without leading zeros, or IPv6 in brackets (its form loosely), and a port 0..65535 (0: any
/// free port), nothing around.
pub fn listen_pattern() -> String {
    let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    let port = format!("(?:0*{PORT}|0+)");
    format!(
        "^(?:{octet}(?:\\.{octet}){{3}}:{port}|\\[[0-9A-Fa-f:.]+(?:%[0-9A-Za-z]+)?\\]:{port}|{VARIABLE})$"
    )
}

word_schema!(
    /// tls_cert's `host:port` (no bare port: the host is also the name).
    HostPort => json_schema!({ "type": "string", "pattern": host_port_pattern(false) })
);
word_schema!(
    /// metrics.listen's `IP:PORT`.
    ListenAddr => json_schema!({ "type": "string", "pattern": listen_pattern() })
);

// ---------------------------------------------------------------------------------------------
// The types `raw.rs` reads with a deserializer of its own
// ---------------------------------------------------------------------------------------------

impl JsonSchema for IncludeSpec {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "IncludeSpec".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

impl JsonSchema for PortSpec {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "PortSpec".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": 65535 },
                { "type": "string", "pattern": host_port_pattern(true) }
            ]
        })
    }
}

impl JsonSchema for UserSpec {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "UserSpec".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "integer", "minimum": 0, "maximum": U32 }
            ]
        })
    }
}

impl JsonSchema for GroupSpec {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "GroupSpec".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        UserSpec::json_schema(generator)
    }
}

impl JsonSchema for RawAction {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Action".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let map = generator.subschema_for::<RawActionMap>();
        json_schema!({
            "anyOf": [
                { "type": "string", "enum": ["none"], "description": "Only monitor: no action." },
                map
            ]
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Rules between keys
// ---------------------------------------------------------------------------------------------

/// A map that needs exactly one of `keys` (a notifier: webhook or exec).
pub fn one_of_keys(keys: &'static [&'static str]) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        let branches: Vec<Value> = keys.iter().map(|k| json!({ "required": [k] })).collect();
        schema.insert("oneOf".into(), Value::Array(branches));
    }
}

/// A map that needs at least one of `keys` (an exec action: start or restart).
pub fn any_of_keys(keys: &'static [&'static str]) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        let branches: Vec<Value> = keys.iter().map(|k| json!({ "required": [k] })).collect();
        schema.insert("anyOf".into(), Value::Array(branches));
    }
}

/// The pair of kinds a check may hold: a pid_file whose process must have this name.
const GUARDED_PAIR: [&str; 2] = ["process_name", "pid_file"];

/// A check: at least one kind key and no other kind beside it (a pid_file guarded by
/// process_name is the one pair), each modifier only with a kind it belongs to (beside a
/// pid_file, process_name is a guard, not the kind: its modifiers do not apply), and what some
/// kinds need beside them. From the table validation uses, so the two say the same.
pub fn check_kinds(schema: &mut Schema) {
    let roles = super::validate::check_key_roles();
    let kinds: Vec<&str> = roles
        .iter()
        .filter(|(_, of)| of.is_none())
        .map(|(k, _)| *k)
        .collect();
    let any_kind: Vec<Value> = kinds.iter().map(|k| json!({ "required": [k] })).collect();
    schema.insert("anyOf".into(), Value::Array(any_kind));
    let mut deps = Map::new();
    for k in &kinds {
        let others: Map<String, Value> = kinds
            .iter()
            .filter(|o| *o != k && !(GUARDED_PAIR.contains(k) && GUARDED_PAIR.contains(o)))
            .map(|o| (o.to_string(), Value::Bool(false)))
            .collect();
        let mut rule = json!({ "properties": others });
        match *k {
            "file_fresh" => rule["required"] = json!(["max_age_seconds"]),
            "disk_free" => {
                rule["anyOf"] = json!([
                    { "required": ["min_free_percent"] },
                    { "required": ["min_free_mb"] }
                ])
            }
            _ => {}
        }
        deps.insert(k.to_string(), rule);
    }
    for (m, of) in &roles {
        let Some(of) = of else { continue };
        let kind_is: Vec<Value> = of
            .iter()
            .map(|k| match *k {
                "process_name" => json!({ "required": [k], "properties": { "pid_file": false } }),
                _ => json!({ "required": [k] }),
            })
            .collect();
        deps.insert(m.to_string(), json!({ "anyOf": kind_is }));
    }
    schema.insert("dependencies".into(), Value::Object(deps));
}

#[cfg(test)]
mod tests;
