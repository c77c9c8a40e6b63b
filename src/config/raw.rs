//! Stage one: serde structs that mirror the file exactly.
//!
//! Plain structs with optional fields and `deny_unknown_fields`, read through the adapter in
//! `de.rs`, which reports the exact field path of a wrong type, every unknown or repeated key
//! (with the key probably meant), and bounds what the document may expand to. Integers are
//! `i128`, so that a number too large for its setting reaches validation, which names the
//! setting's range (`4294967296 is out of range 1..4294967295`) instead of a parser's type.
//! Ranges, paths and cross-field rules are checked in `validate.rs`.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub interval_seconds: Option<i128>,
    pub timeout_seconds: Option<i128>,
    pub log_level: Option<String>,
    pub state_file: Option<String>,
    pub lock_file: Option<String>,
    pub max_parallel: Option<i128>,
    pub systemctl_path: Option<String>,
    pub docker_socket: Option<String>,
    pub default_policy: Option<RawPolicy>,
    pub targets: Option<Vec<RawTarget>>,
    pub reminder_every_seconds: Option<i128>,
    pub notify: Option<Vec<RawNotifier>>,
    pub heartbeat: Option<RawHeartbeat>,
    pub metrics: Option<RawMetrics>,
    /// Globs of files whose targets are added (`include.rs`).
    pub include: Option<IncludeSpec>,
}

/// An included file: a `targets:` list and nothing else (`include.rs` words any other key).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncluded {
    pub targets: Option<Vec<RawTarget>>,
}

/// `include: [conf.d/*.yml, ...]`, or one glob as a string.
#[derive(Debug, Clone, Default)]
pub struct IncludeSpec(pub Vec<String>);

impl<'de> Deserialize<'de> for IncludeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IncludeSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of globs, e.g. [\"conf.d/*.yml\"]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IncludeSpec, E> {
                Ok(IncludeSpec(vec![v.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<IncludeSpec, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(IncludeSpec(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One notifier: exactly one of `webhook:` / `exec:`, and the events it takes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifier {
    pub webhook: Option<RawWebhook>,
    pub exec: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    /// exec only (a webhook has its own).
    pub timeout_seconds: Option<i128>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: Option<String>,
    pub format: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub timeout_seconds: Option<i128>,
    pub retries: Option<i128>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub url: Option<String>,
    pub send_start: Option<bool>,
    pub timeout_seconds: Option<i128>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub textfile: Option<String>,
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub fail_threshold: Option<i128>,
    pub restart_cooldown_seconds: Option<i128>,
    pub max_restarts_per_hour: Option<i128>,
    pub restart_grace_seconds: Option<i128>,
    pub backoff_initial_seconds: Option<i128>,
    pub backoff_multiplier: Option<f64>,
    pub backoff_max_seconds: Option<i128>,
    pub give_up_after_restarts: Option<i128>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub checks: Option<Vec<RawCheck>>,
    pub policy: Option<RawPolicy>,
    pub action: Option<RawAction>,
    pub on_give_up: Option<RawOnGiveUp>,
    pub depends_on: Option<Vec<String>>,
    pub interval_seconds: Option<i128>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnGiveUp {
    pub exec: Option<Vec<String>>,
    pub timeout_seconds: Option<i128>,
}

/// One check: exactly one kind key, plus modifiers of that kind, plus `timeout_seconds` and
/// `name`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// What logs and metrics call the check (default: its description).
    pub name: Option<String>,
    // kinds
    pub process_name: Option<String>,
    pub pid_file: Option<String>,
    pub tcp_port: Option<PortSpec>,
    pub command: Option<Vec<String>>,
    pub http: Option<String>,
    pub tls_cert: Option<String>,
    pub docker: Option<String>,
    pub systemd_unit: Option<String>,
    pub file_fresh: Option<String>,
    pub disk_free: Option<String>,
    pub system: Option<RawSystem>,
    // modifiers
    pub cmdline_contains: Option<String>,
    pub cmdline_regex: Option<String>,
    pub user: Option<UserSpec>,
    pub max_rss_mb: Option<i128>,
    pub max_cpu_percent: Option<f64>,
    pub max_children: Option<i128>,
    pub ok_exit_codes: Option<Vec<i128>>,
    pub method: Option<String>,
    pub expect_status: Option<Vec<i128>>,
    pub body_contains: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub resolve: Option<String>,
    pub ip_version: Option<i128>,
    pub tls_verify: Option<bool>,
    pub ca_file: Option<String>,
    pub max_body_bytes: Option<i128>,
    pub min_days_left: Option<i128>,
    pub server_name: Option<String>,
    pub docker_socket: Option<String>,
    pub max_age_seconds: Option<i128>,
    pub min_free_percent: Option<f64>,
    pub min_free_mb: Option<i128>,
    pub timeout_seconds: Option<i128>,
}

/// `system: {max_load_per_core: 4.0, max_memory_used_percent: 95}`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSystem {
    pub max_load_per_core: Option<f64>,
    pub max_memory_used_percent: Option<f64>,
}

/// `user: www-data` or `user: 33`.
#[derive(Debug, Clone)]
pub struct UserSpec(pub String);

impl<'de> Deserialize<'de> for UserSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UserSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a user name or a numeric uid")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UserSpec, E> {
                Ok(UserSpec(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UserSpec, E> {
                Ok(UserSpec(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UserSpec, E> {
                Ok(UserSpec(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<UserSpec, E> {
                Ok(UserSpec(v.to_string()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<UserSpec, E> {
                Ok(UserSpec(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `tcp_port: 127.0.0.1:8080`, or a bare port number meaning 127.0.0.1.
#[derive(Debug, Clone)]
pub struct PortSpec(pub String);

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"host:port\" or a port number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortSpec, E> {
                Ok(PortSpec(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortSpec, E> {
                Ok(PortSpec(format!("127.0.0.1:{v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortSpec, E> {
                Ok(PortSpec(format!("127.0.0.1:{v}")))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<PortSpec, E> {
                Ok(PortSpec(format!("127.0.0.1:{v}")))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<PortSpec, E> {
                Ok(PortSpec(format!("127.0.0.1:{v}")))
            }
            /// A number too large for any integer type arrives as a float: still a port
            /// number, which validation finds out of range.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PortSpec, E> {
                if v.fract() == 0.0 {
                    Ok(PortSpec(format!("127.0.0.1:{v}")))
                } else {
                    Err(E::invalid_type(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `action: none`, or a map with `exec:` or `systemd:`.
#[derive(Debug)]
pub enum RawAction {
    None,
    Map(Box<RawActionMap>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActionMap {
    pub exec: Option<RawExec>,
    pub systemd: Option<RawSystemd>,
    pub docker: Option<RawDockerAction>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDockerAction {
    pub container: Option<String>,
    pub method: Option<String>,
    pub docker_socket: Option<String>,
    pub timeout_seconds: Option<i128>,
    pub stop_timeout_seconds: Option<i128>,
}

/// Read as a struct (the adapter in `de.rs` then knows the keys of the map and reports each
/// unknown one), whose visitor also takes the word `none`: only through that adapter, which
/// reads structs with `deserialize_any`, as every config is read.
impl<'de> Deserialize<'de> for RawAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAction;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`none` or a map with `exec`, `systemd` or `docker`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAction, E> {
                if v == "none" {
                    Ok(RawAction::None)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAction, A::Error> {
                RawActionMap::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|m| RawAction::Map(Box::new(m)))
            }
        }
        d.deserialize_struct("RawAction", super::de::fields_of::<RawActionMap>(), V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExec {
    pub stop: Option<Vec<String>>,
    pub start: Option<Vec<String>>,
    pub restart: Option<Vec<String>>,
    pub timeout_seconds: Option<i128>,
    pub detach: Option<bool>,
    pub log_file: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSystemd {
    pub unit: Option<String>,
    pub method: Option<String>,
    pub timeout_seconds: Option<i128>,
}
