//! Stage one: serde structs that mirror the file exactly.
//!
//! Plain structs with optional fields and `deny_unknown_fields`, read through the adapter in
//! `de.rs`, which reports the exact field path of a wrong type, every unknown or repeated key
//! (with the key probably meant), and bounds what the document may expand to. Integers are
//! `i128`, so that a number too large for its setting reaches validation, which names the
//! setting's range (`4294967296 is out of range 1..4294967295`) instead of a parser's type.
//! Ranges, paths and cross-field rules are checked in `validate.rs`.
//!
//! The same structs describe the config's JSON Schema (`neon-watchdog schema`, `schema.rs`):
//! each field's doc comment is its description in editors, and its `#[schemars]` attributes
//! say the range or the words validation accepts (a test holds the two to the same edges).

use super::schema::{self as s, MAX_SECONDS};
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "neon-watchdog config",
    description = "neon-watchdog's config (YAML or JSON): settings, and the targets to watch."
)]
pub struct RawConfig {
    /// The JSON Schema of this file, for editors (JSON files; YAML files use a
    /// `# yaml-language-server: $schema=...` comment). Ignored by neon-watchdog.
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    /// Seconds between passes: the period of `run` (the timer's for `check`). Default 30.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub interval_seconds: Option<i128>,
    /// Default timeout of each check, in seconds. Default 5.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub timeout_seconds: Option<i128>,
    /// error, warn, info, debug or trace (any case; `warning` is warn). Default info.
    #[schemars(with = "Option<s::LogLevelWord>")]
    pub log_level: Option<String>,
    /// Which check results are logged: all (default: every check's result, OK or FAIL, every
    /// pass) or changes (a check's OK line only when its result changed since the target's
    /// last check; FAIL lines, status changes, recoveries, actions and their results, and
    /// `pass done` are always logged).
    #[schemars(with = "Option<s::LogChecksWord>")]
    pub log_checks: Option<String>,
    /// Where the state is kept (relative: to this file's directory). Default
    /// /var/lib/neon-watchdog/state.json as root.
    pub state_file: Option<String>,
    /// The lock file. Default: state_file + ".lock".
    pub lock_file: Option<String>,
    /// The unix socket `run` listens on for the operator's verbs (pause, restart, ...; root
    /// only, mode 0600; HTTP, see README "Control socket"); relative: to this file's
    /// directory. At most 107 bytes. Default: /run/neon-watchdog/control.sock with the
    /// default state file as root, else state_file + ".sock".
    pub control_socket: Option<String>,
    /// Targets whose checks wait (commands, sockets) checked side by side. Default 128.
    #[schemars(range(min = 1, max = s::U32))]
    pub max_parallel: Option<i128>,
    /// The program systemd actions and systemd_unit checks run. Default: systemctl from PATH.
    pub systemctl_path: Option<String>,
    /// Docker Engine API socket of docker checks and actions. Default /var/run/docker.sock.
    pub docker_socket: Option<String>,
    /// The restart policy of every target; a target's `policy:` overrides keys of it.
    pub default_policy: Option<RawPolicy>,
    /// The targets to watch (with `include:`, may be left out).
    pub targets: Option<Vec<RawTarget>>,
    /// Repeat `down` notifications this often (seconds) while a target stays down.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub reminder_every_seconds: Option<i128>,
    /// Where events (down, recovered, gave_up, ...) are sent: webhooks and programs.
    pub notify: Option<Vec<RawNotifier>>,
    /// A URL pinged at the end of every pass, so that a dead watchdog is noticed.
    pub heartbeat: Option<RawHeartbeat>,
    /// Prometheus metrics: a textfile for node exporter and/or an HTTP listener.
    pub metrics: Option<RawMetrics>,
    /// Globs of files whose targets are added (conf.d), relative to this file's directory:
    /// a list, or one glob.
    pub include: Option<IncludeSpec>,
}

/// An included file: a `targets:` list and `x-` templates, nothing else (`include.rs` words any other key).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "neon-watchdog included file",
    description = "A file of conf.d that the config's `include:` reads: a `targets:` list, and top-level `x-` keys holding templates for YAML merge keys; nothing else."
)]
pub struct RawIncluded {
    /// The JSON Schema of this file, for editors (JSON files). Ignored by neon-watchdog.
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    /// The targets of this file, added to the config's.
    pub targets: Option<Vec<RawTarget>>,
}

/// `include: [conf.d/*.yml, ...]`, or one glob as a string (its schema: `schema.rs`).
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
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Notifier", transform = s::one_of_keys(&["webhook", "exec"]))]
pub struct RawNotifier {
    /// POST each event to a URL (json, slack or discord).
    pub webhook: Option<RawWebhook>,
    /// Run this argv for each event (the event as JSON on stdin).
    #[schemars(length(min = 1))]
    pub exec: Option<Vec<String>>,
    /// The events sent. Default [down, recovered, gave_up].
    #[schemars(with = "Option<Vec<s::EventWord>>", length(min = 1))]
    pub events: Option<Vec<String>>,
    /// exec only (a webhook has its own): seconds before the program is killed. Default 10.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub timeout_seconds: Option<i128>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Webhook")]
pub struct RawWebhook {
    /// The http(s) URL events are POSTed to.
    #[schemars(required)]
    pub url: Option<String>,
    /// The body: json (default), slack or discord.
    #[schemars(with = "Option<s::WebhookFormatWord>")]
    pub format: Option<String>,
    /// Request headers; values of secret-looking ones are masked in every output.
    pub headers: Option<BTreeMap<String, String>>,
    /// Seconds per attempt (it runs inside the pass). Default 5.
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: Option<i128>,
    /// Attempts after the first, inside the pass. Default 3.
    #[schemars(range(min = 0, max = 10))]
    pub retries: Option<i128>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Heartbeat")]
pub struct RawHeartbeat {
    /// POSTed at the end of every pass, url/fail when a target is failing.
    #[schemars(required)]
    pub url: Option<String>,
    /// Also GET url/start when a pass begins. Default false.
    pub send_start: Option<bool>,
    /// Seconds per ping (it runs inside the pass). Default 5.
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: Option<i128>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Metrics")]
pub struct RawMetrics {
    /// A .prom file for node exporter's textfile collector, written after every pass.
    pub textfile: Option<String>,
    /// `run` only: serve /metrics, /healthz and the status pages / (HTML) and /status (JSON)
    /// at this IP:PORT, e.g. 127.0.0.1:9798; read only (GET, HEAD). It shows target names and
    /// reasons to whoever connects: keep it on 127.0.0.1 or behind a proxy.
    #[schemars(with = "Option<s::ListenAddr>")]
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Policy")]
pub struct RawPolicy {
    /// Consecutive failed passes before acting. Default 1.
    #[schemars(range(min = 1, max = s::U32))]
    pub fail_threshold: Option<i128>,
    /// Least seconds between two actions; 0: no cooldown. Default 60.
    #[schemars(range(min = 0, max = MAX_SECONDS))]
    pub restart_cooldown_seconds: Option<i128>,
    /// Most actions in any hour. Default 10.
    #[schemars(range(min = 1, max = s::U32))]
    pub max_restarts_per_hour: Option<i128>,
    /// After an action, failures are not counted for this many seconds; 0: off (default).
    #[schemars(range(min = 0, max = MAX_SECONDS))]
    pub restart_grace_seconds: Option<i128>,
    /// Seconds before the 2nd restart that did not help; 0: no backoff (default).
    #[schemars(range(min = 0, max = MAX_SECONDS))]
    pub backoff_initial_seconds: Option<i128>,
    /// Each further restart waits this many times longer. Default 2.
    #[schemars(range(min = 1, max = 100))]
    pub backoff_multiplier: Option<f64>,
    /// The longest backoff wait, in seconds; 0: no cap (default).
    #[schemars(range(min = 0, max = MAX_SECONDS))]
    pub backoff_max_seconds: Option<i128>,
    /// Give up after this many restarts without a healthy pass; 0: never (default).
    #[schemars(range(min = 0, max = s::U32))]
    pub give_up_after_restarts: Option<i128>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Target")]
pub struct RawTarget {
    /// Unique name, in every log line.
    #[schemars(required, length(min = 1, max = super::validate::MAX_NAME_CHARS))]
    pub name: Option<String>,
    /// false: not watched. Default true.
    pub enabled: Option<bool>,
    /// Run in order every pass; all must pass for the target to be healthy.
    #[schemars(required, length(min = 1))]
    pub checks: Option<Vec<RawCheck>>,
    /// Keys that override default_policy for this target.
    pub policy: Option<RawPolicy>,
    /// What recovers the target: exec, systemd or docker; `none` only monitors.
    #[schemars(required)]
    pub action: Option<RawAction>,
    /// Run once when the target gives up (give_up_after_restarts).
    pub on_give_up: Option<RawOnGiveUp>,
    /// Targets this one needs: while one is down, this one's action is held.
    pub depends_on: Option<Vec<String>>,
    /// Check this target at most this often (seconds), when longer than the tick.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub interval_seconds: Option<i128>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "OnGiveUp")]
pub struct RawOnGiveUp {
    /// The argv run once when the target gives up.
    #[schemars(required, length(min = 1))]
    pub exec: Option<Vec<String>>,
    /// Seconds before it is killed. Default 30.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub timeout_seconds: Option<i128>,
    /// Run it as this user (a name or a uid): its uid, primary group (or `group:`),
    /// supplementary groups, HOME, USER, LOGNAME and SHELL, in a clean environment (PATH,
    /// locale and TZ kept). Default: as the watchdog (root).
    pub user: Option<UserSpec>,
    /// Run it with this group as its gid (a name or a gid); alone, only the gid changes.
    pub group: Option<GroupSpec>,
}

/// One check: exactly one kind key, plus modifiers of that kind, plus `timeout_seconds` and
/// `name`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "Check",
    description = "One check: exactly one kind key (process_name, tcp_port, http, ...), modifiers of that kind, an optional timeout_seconds and name.",
    transform = s::check_kinds
)]
pub struct RawCheck {
    /// What logs, status and metrics call the check (default: its description in logs, its kind in metrics); unique in the target.
    #[schemars(length(min = 1, max = super::validate::MAX_NAME_CHARS))]
    pub name: Option<String>,
    // kinds
    /// Kind: a live process of this program name (comm, argv[0] or executable basename).
    pub process_name: Option<String>,
    /// Kind: the pid in this file (absolute path) is alive; with process_name, that program.
    pub pid_file: Option<String>,
    /// Kind: a TCP connect to host:port succeeds (a bare port: 127.0.0.1).
    pub tcp_port: Option<PortSpec>,
    /// Kind: this argv (no shell) exits with an accepted code.
    #[schemars(length(min = 1))]
    pub command: Option<Vec<String>>,
    /// Kind: this http(s) URL answers 2xx/3xx (or expect_status).
    pub http: Option<String>,
    /// Kind: the certificate at host:port verifies and expires in min_days_left days or more.
    #[schemars(with = "Option<s::HostPort>")]
    pub tls_cert: Option<String>,
    /// Kind: this container (name or id) runs, and is healthy if it has a HEALTHCHECK.
    pub docker: Option<String>,
    /// Kind: systemd says this unit is active and its MainPID runs.
    pub systemd_unit: Option<String>,
    /// Kind: this file (absolute path) was modified within max_age_seconds.
    pub file_fresh: Option<String>,
    /// Kind: the file system of this path has min_free_percent and/or min_free_mb free.
    pub disk_free: Option<String>,
    /// Kind: load per core and memory use within these limits.
    pub system: Option<RawSystem>,
    // modifiers
    /// process_name: the space-joined argv contains this.
    pub cmdline_contains: Option<String>,
    /// process_name: the space-joined argv matches this regex.
    pub cmdline_regex: Option<String>,
    /// Two meanings, by kind. process_name, pid_file: whose processes count, the user the
    /// process runs as (its real uid; a name, or a uid); without it, only processes of root and
    /// system accounts count (pid_file: of the pid file's owner when others than root can
    /// write it). command: run the command as this user (a name or a uid): its uid, its
    /// primary group (or `group:`), its supplementary groups, and its HOME, USER, LOGNAME and
    /// SHELL, in a clean environment (PATH, locale and TZ kept); root is needed to switch.
    pub user: Option<UserSpec>,
    /// command: run the command with this group as its gid (a name or a gid); alone, only the
    /// gid changes (systemd's Group=).
    pub group: Option<GroupSpec>,
    /// process_name, pid_file: most resident memory of each process, MiB.
    #[schemars(range(min = 1, max = s::MAX_MIB))]
    pub max_rss_mb: Option<i128>,
    /// process_name, pid_file: most CPU since the previous pass, percent of one core.
    #[schemars(range(max = 100_000), extend("exclusiveMinimum" = 0))]
    pub max_cpu_percent: Option<f64>,
    /// process_name, pid_file: most live direct children.
    #[schemars(range(min = 0, max = s::U32))]
    pub max_children: Option<i128>,
    /// command: the exit codes that mean healthy. Default [0].
    #[schemars(length(min = 1), inner(range(min = 0, max = 255)))]
    pub ok_exit_codes: Option<Vec<i128>>,
    /// http: GET (default), HEAD or POST (an empty body).
    #[schemars(with = "Option<s::HttpMethodWord>")]
    pub method: Option<String>,
    /// http: the statuses that mean healthy (default: any 2xx or 3xx).
    #[schemars(length(min = 1), inner(range(min = 100, max = 599)))]
    pub expect_status: Option<Vec<i128>>,
    /// http: text the body must contain (in its first max_body_bytes).
    #[schemars(length(min = 1))]
    pub body_contains: Option<String>,
    /// http: request headers; values of secret-looking ones are masked in every output.
    pub headers: Option<BTreeMap<String, String>>,
    /// http: connect to this IP address; the URL's host stays for Host and SNI.
    pub resolve: Option<String>,
    /// http: 4 or 6, connect over that family only.
    #[schemars(with = "Option<s::IpVersion>")]
    pub ip_version: Option<i128>,
    /// http: false accepts any certificate (self-signed). Default true.
    pub tls_verify: Option<bool>,
    /// http, tls_cert: verify against the CAs of this PEM file only.
    pub ca_file: Option<String>,
    /// http: the most bytes of the body read. Default 65536.
    #[schemars(range(min = 1, max = 16_777_216))]
    pub max_body_bytes: Option<i128>,
    /// tls_cert: FAIL when the certificate expires in fewer days (0: only once expired). Default 14.
    #[schemars(range(min = 0, max = 3650))]
    pub min_days_left: Option<i128>,
    /// tls_cert: the name the certificate must be for, also the SNI. Default: the host.
    pub server_name: Option<String>,
    /// docker: the Docker Engine API socket. Default: the top-level docker_socket.
    pub docker_socket: Option<String>,
    /// file_fresh (required there): how old the file may get, in seconds.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub max_age_seconds: Option<i128>,
    /// disk_free: the least free space, percent (above 0, below 100).
    #[schemars(extend("exclusiveMinimum" = 0, "exclusiveMaximum" = 100))]
    pub min_free_percent: Option<f64>,
    /// disk_free: the least free space, MiB.
    #[schemars(range(min = 1, max = s::MAX_MIB))]
    pub min_free_mb: Option<i128>,
    /// Seconds before the check fails as timed out. Default: the top-level timeout_seconds.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub timeout_seconds: Option<i128>,
}

/// `system: {max_load_per_core: 4.0, max_memory_used_percent: 95}`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SystemLimits", extend("minProperties" = 1))]
pub struct RawSystem {
    /// The 1-minute load average divided by the online CPUs, at most.
    #[schemars(range(max = 1000), extend("exclusiveMinimum" = 0))]
    pub max_load_per_core: Option<f64>,
    /// (MemTotal - MemAvailable) / MemTotal, percent, at most.
    #[schemars(range(max = 100), extend("exclusiveMinimum" = 0))]
    pub max_memory_used_percent: Option<f64>,
}

/// A name or a numeric id, as `user:` and `group:` take them: YAML gives `33` as a number.
macro_rules! name_or_id {
    ($(#[$doc:meta])* $name:ident, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                    fn visit_i128<E: de::Error>(self, v: i128) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                    fn visit_u128<E: de::Error>(self, v: u128) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

name_or_id!(
    /// `user: www-data` or `user: 33` (its schema: `schema.rs`).
    UserSpec,
    "a user name or a numeric uid"
);

name_or_id!(
    /// `group: www-data` or `group: 33` (its schema: `schema.rs`).
    GroupSpec,
    "a group name or a numeric gid"
);

/// `tcp_port: 127.0.0.1:8080`, or a bare port number meaning 127.0.0.1 (its schema:
/// `schema.rs`).
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

/// `action: none`, or a map with `exec:` or `systemd:` (its schema: `schema.rs`).
#[derive(Debug)]
pub enum RawAction {
    None,
    Map(Box<RawActionMap>),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ActionMap", extend("minProperties" = 1, "maxProperties" = 1))]
pub struct RawActionMap {
    /// Run commands: start when the process is not running, restart otherwise.
    pub exec: Option<RawExec>,
    /// systemctl restart (or start, reload-or-restart) a unit.
    pub systemd: Option<RawSystemd>,
    /// Restart (or start) a container through the Docker Engine API.
    pub docker: Option<RawDockerAction>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DockerAction")]
pub struct RawDockerAction {
    /// The container's name or id.
    #[schemars(required)]
    pub container: Option<String>,
    /// restart (default) or start.
    #[schemars(with = "Option<s::DockerMethodWord>")]
    pub method: Option<String>,
    /// The Docker Engine API socket. Default: the top-level docker_socket.
    pub docker_socket: Option<String>,
    /// Seconds the whole call may take; more than stop_timeout_seconds. Default 60.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub timeout_seconds: Option<i128>,
    /// Seconds Docker waits for the container to stop before killing it; less than
    /// timeout_seconds. Default 10.
    #[schemars(range(min = 0, max = MAX_SECONDS - 1))]
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

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ExecAction", transform = s::any_of_keys(&["start", "restart"]))]
pub struct RawExec {
    /// Runs before start (argv), to clear what is left of a dead service.
    #[schemars(length(min = 1))]
    pub stop: Option<Vec<String>>,
    /// The argv run when the process is not running at all.
    #[schemars(length(min = 1))]
    pub start: Option<Vec<String>>,
    /// The argv run otherwise.
    #[schemars(length(min = 1))]
    pub restart: Option<Vec<String>>,
    /// Seconds before its process group is killed. Default 30.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub timeout_seconds: Option<i128>,
    /// true: for programs that stay in the foreground (started in a session of their own).
    pub detach: Option<bool>,
    /// With detach: append the program's output here (absolute path). Default /dev/null.
    pub log_file: Option<String>,
    /// Added to the inherited environment.
    pub env: Option<BTreeMap<String, String>>,
    /// The working directory (absolute path); with `user:`, entered as that user.
    pub cwd: Option<String>,
    /// Run start, restart and stop as this user (a name or a uid): its uid, primary group
    /// (or `group:`), supplementary groups, HOME, USER, LOGNAME and SHELL, in a clean
    /// environment (PATH, locale and TZ kept; `env:` wins where it gives them). Default: as
    /// the watchdog (root). Not a process check's `user:`.
    pub user: Option<UserSpec>,
    /// Run them with this group as their gid (a name or a gid); alone, only the gid changes
    /// (the uid stays root's), as systemd's Group=.
    pub group: Option<GroupSpec>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SystemdAction")]
pub struct RawSystemd {
    /// The unit, e.g. nginx.service.
    #[schemars(required)]
    pub unit: Option<String>,
    /// restart (default), start or reload-or-restart.
    #[schemars(with = "Option<s::SystemdMethodWord>")]
    pub method: Option<String>,
    /// Seconds systemctl may take. Default 90.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub timeout_seconds: Option<i128>,
}
