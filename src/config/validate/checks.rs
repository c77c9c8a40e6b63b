//! Validation of one check: exactly one kind key, modifiers that belong to that kind, values
//! in range. Every problem is reported with its field path.

use super::{parse_host_port_shown, process_name, Ctx};
use crate::config::model::*;
use crate::config::raw::*;
use crate::http_client::Method;
use std::path::PathBuf;
use std::time::Duration;
use Role::{Kind, ModifierOf};

/// What a key of a check map is.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// A check kind: a check has exactly one (a `pid_file` guarded by `process_name` is the one
    /// allowed pair).
    Kind,
    /// A modifier, allowed only in checks of these kinds.
    ModifierOf(&'static [&'static str]),
}

/// One key of a check map.
struct Key {
    name: &'static str,
    role: Role,
    /// Whether this check gives the key.
    present: fn(&RawCheck) -> bool,
}

/// A row of `KEYS`: the key's name is its `RawCheck` field's name, so the two cannot drift apart.
macro_rules! key {
    ($field:ident, $role:expr) => {
        Key {
            name: stringify!($field),
            role: $role,
            present: |c: &RawCheck| c.$field.is_some(),
        }
    };
}

/// Every kind and modifier of a check map, in the order messages list them and errors are
/// reported. Adding a kind or a modifier is adding its row here (and its validation in
/// `check`). `timeout_seconds` and `name`, which every kind takes, are neither.
const KEYS: &[Key] = &[
    key!(process_name, Kind),
    key!(pid_file, Kind),
    key!(tcp_port, Kind),
    key!(command, Kind),
    key!(http, Kind),
    key!(tls_cert, Kind),
    key!(docker, Kind),
    key!(systemd_unit, Kind),
    key!(file_fresh, Kind),
    key!(disk_free, Kind),
    key!(system, Kind),
    key!(cmdline_contains, ModifierOf(&["process_name"])),
    key!(cmdline_regex, ModifierOf(&["process_name"])),
    // two meanings: whose processes count (process_name, pid_file), who the command runs as
    // (command)
    key!(user, ModifierOf(&["process_name", "pid_file", "command"])),
    key!(group, ModifierOf(&["command"])),
    key!(max_rss_mb, ModifierOf(&["process_name", "pid_file"])),
    key!(max_cpu_percent, ModifierOf(&["process_name", "pid_file"])),
    key!(max_children, ModifierOf(&["process_name", "pid_file"])),
    key!(ok_exit_codes, ModifierOf(&["command"])),
    key!(method, ModifierOf(&["http"])),
    key!(expect_status, ModifierOf(&["http"])),
    key!(body_contains, ModifierOf(&["http"])),
    key!(headers, ModifierOf(&["http"])),
    key!(resolve, ModifierOf(&["http"])),
    key!(ip_version, ModifierOf(&["http"])),
    key!(tls_verify, ModifierOf(&["http"])),
    key!(ca_file, ModifierOf(&["http", "tls_cert"])),
    key!(max_body_bytes, ModifierOf(&["http"])),
    key!(min_days_left, ModifierOf(&["tls_cert"])),
    key!(server_name, ModifierOf(&["tls_cert"])),
    key!(docker_socket, ModifierOf(&["docker"])),
    key!(max_age_seconds, ModifierOf(&["file_fresh"])),
    key!(min_free_percent, ModifierOf(&["disk_free"])),
    key!(min_free_mb, ModifierOf(&["disk_free"])),
];

fn kind_keys() -> impl Iterator<Item = &'static Key> {
    KEYS.iter().filter(|k| matches!(k.role, Kind))
}

/// The kinds as messages list them: "process_name, pid_file, ..., system".
pub(in crate::config) fn kinds_text() -> String {
    kind_keys().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Every key of the table: its name and, for a modifier, the kinds it belongs to (None: a
/// kind). The config's JSON Schema says the same (`schema.rs`).
pub(in crate::config) fn check_key_roles() -> Vec<(&'static str, Option<&'static [&'static str]>)> {
    KEYS.iter()
        .map(|k| match k.role {
            Kind => (k.name, None),
            ModifierOf(of) => (k.name, Some(of)),
        })
        .collect()
}

pub(super) fn check(cx: &mut Ctx, p: &str, c: RawCheck) -> Option<CheckSpec> {
    let before = cx.issues.len();
    let kinds: Vec<&str> = kind_keys()
        .filter(|k| (k.present)(&c))
        .map(|k| k.name)
        .collect();
    let guarded_pid_file = kinds == ["process_name", "pid_file"];
    if kinds.is_empty() {
        cx.err(
            p,
            format!("has no check kind: give one of {}", kinds_text()),
        );
        return None;
    }
    if kinds.len() > 1 && !guarded_pid_file {
        cx.err(
            format!("{p}.{}", kinds[1]),
            format!(
                "a check has exactly one kind, this one has {}: split it into one check per kind",
                kinds.join(" and ")
            ),
        );
        return None;
    }
    let kind = if guarded_pid_file {
        "pid_file"
    } else {
        kinds[0]
    };
    for key in KEYS.iter().filter(|k| (k.present)(&c)) {
        let Role::ModifierOf(allowed) = key.role else {
            continue;
        };
        if !allowed.contains(&kind) {
            let of = allowed.join(" and ");
            let what = if guarded_pid_file && allowed.contains(&"process_name") {
                format!("is a modifier of {of} checks only (here process_name guards a pid_file)")
            } else {
                format!("is a modifier of {of} checks only")
            };
            cx.err(format!("{p}.{}", key.name), what);
        }
    }
    if cx.issues.len() > before {
        return None;
    }
    let timeout = cx.seconds(
        &format!("{p}.timeout_seconds"),
        c.timeout_seconds,
        cx.check_timeout,
        1,
    );
    let name = c
        .name
        .as_deref()
        .and_then(|n| check_name(cx, &format!("{p}.name"), n));

    let check = match kind {
        "pid_file" => {
            let path = cx.abs_path(
                &format!("{p}.pid_file"),
                c.pid_file.as_deref().unwrap_or_default(),
            );
            let name = match c.process_name.as_deref() {
                Some(n) => Some(process_name(cx, &format!("{p}.process_name"), n)?),
                None => None,
            };
            let user = c
                .user
                .as_ref()
                .and_then(|u| user(cx, &format!("{p}.user"), &u.0));
            let limits = limits(cx, p, &c);
            Check::PidFile {
                path: path?,
                process_name: name,
                user,
                limits,
            }
        }
        "process_name" => {
            let name = process_name(
                cx,
                &format!("{p}.process_name"),
                c.process_name.as_deref().unwrap_or_default(),
            );
            let cmdline_contains = match c.cmdline_contains.as_deref() {
                Some(s) => cx.expand(&format!("{p}.cmdline_contains"), s),
                None => None,
            };
            let cmdline_regex = c.cmdline_regex.as_deref().and_then(|r| {
                let rp = format!("{p}.cmdline_regex");
                let r = cx.expand(&rp, r)?;
                match regex::RegexBuilder::new(&r).size_limit(1 << 20).build() {
                    Ok(re) => Some(re),
                    Err(e) => {
                        let msg = e.to_string();
                        let last = msg.lines().last().unwrap_or(&msg).trim().to_string();
                        let shown = cx.show(&r);
                        cx.err(rp, format!("{shown} is not a valid regex: {last}"));
                        None
                    }
                }
            });
            let user = c
                .user
                .as_ref()
                .and_then(|u| user(cx, &format!("{p}.user"), &u.0));
            let limits = limits(cx, p, &c);
            Check::ProcessName {
                name: name?,
                cmdline_contains,
                cmdline_regex,
                user,
                limits,
            }
        }
        "tcp_port" => {
            let spec = c.tcp_port.as_ref()?;
            let path = format!("{p}.tcp_port");
            let s = cx.expand(&path, &spec.0)?;
            let shown = |v: &str| cx.show(v);
            match parse_host_port_shown(&s, &shown) {
                Ok((host, port)) => Check::TcpPort { host, port },
                Err(e) => {
                    cx.err(path, e);
                    return None;
                }
            }
        }
        "command" => {
            let argv = cx.argv(
                &format!("{p}.command"),
                c.command.as_deref().unwrap_or_default(),
                None,
            );
            let mut codes = Vec::new();
            for (i, code) in c
                .ok_exit_codes
                .clone()
                .unwrap_or_else(|| vec![0])
                .into_iter()
                .enumerate()
            {
                match i32::try_from(code) {
                    Ok(v) if (0..=255).contains(&v) => codes.push(v),
                    _ => cx.err(
                        format!("{p}.ok_exit_codes[{i}]"),
                        format!("{code} is not an exit code (0..255)"),
                    ),
                }
            }
            if codes.is_empty() && cx.issues.len() == before {
                cx.err(
                    format!("{p}.ok_exit_codes"),
                    "is empty: give at least one exit code that means healthy",
                );
            }
            let run_as = super::runas::run_as(cx, p, c.user.as_ref(), c.group.as_ref());
            Check::Command {
                argv: argv?,
                ok_exit_codes: codes,
                run_as: run_as.ok()?,
            }
        }
        "http" => Check::Http(Box::new(http(cx, p, c)?)),
        "tls_cert" => Check::TlsCert(tls_cert(cx, p, &c)?),
        "docker" => {
            let dp = format!("{p}.docker");
            let container = cx.expand(&dp, c.docker.as_deref().unwrap_or_default())?;
            if container.is_empty() || container.contains(['/', ' ', '?', '#']) {
                let shown = cx.show(&container);
                cx.err(
                    dp,
                    format!("{shown} is not a container name or id, e.g. my-container"),
                );
                return None;
            }
            let socket = match c.docker_socket.as_deref() {
                Some(s) => cx.abs_path(&format!("{p}.docker_socket"), s)?,
                None => cx.docker_socket.clone(),
            };
            Check::Docker { container, socket }
        }
        "systemd_unit" => {
            let up = format!("{p}.systemd_unit");
            let unit = unit_name(cx, &up, c.systemd_unit.as_deref().unwrap_or_default())?;
            Check::SystemdUnit {
                unit,
                systemctl: cx.systemctl_path.clone(),
            }
        }
        "file_fresh" => {
            let path = cx.abs_path(
                &format!("{p}.file_fresh"),
                c.file_fresh.as_deref().unwrap_or_default(),
            );
            let mp = format!("{p}.max_age_seconds");
            let max_age = match c.max_age_seconds {
                None => {
                    cx.err(
                        &mp,
                        "is missing: say how old the file may get, e.g. max_age_seconds: 300",
                    );
                    Duration::ZERO
                }
                v => cx.seconds(&mp, v, 0, 1),
            };
            Check::FileFresh {
                path: path?,
                max_age,
            }
        }
        "disk_free" => {
            let path = cx.abs_path(
                &format!("{p}.disk_free"),
                c.disk_free.as_deref().unwrap_or_default(),
            );
            let min_free_percent = c.min_free_percent.and_then(|v| {
                if v.is_finite() && v > 0.0 && v < 100.0 {
                    Some(v)
                } else {
                    cx.err(
                        format!("{p}.min_free_percent"),
                        format!("must be more than 0 and less than 100, got {v}"),
                    );
                    None
                }
            });
            let min_free_mb = c.min_free_mb.and_then(|v| {
                if v >= 1 {
                    cx.mib(&format!("{p}.min_free_mb"), v)
                } else {
                    cx.err(
                        format!("{p}.min_free_mb"),
                        format!("must be 1 or more, got {v}"),
                    );
                    None
                }
            });
            if c.min_free_percent.is_none() && c.min_free_mb.is_none() {
                cx.err(
                    p,
                    "disk_free needs min_free_percent or min_free_mb (or both), e.g. min_free_percent: 10",
                );
            }
            Check::DiskFree {
                path: path?,
                min_free_percent,
                min_free_mb,
            }
        }
        _ => {
            let s = c.system.as_ref()?;
            let sp = format!("{p}.system");
            let positive = |cx: &mut Ctx, key: &str, v: Option<f64>, max: f64| {
                v.and_then(|v| {
                    if v.is_finite() && v > 0.0 && v <= max {
                        Some(v)
                    } else {
                        cx.err(
                            format!("{sp}.{key}"),
                            format!("must be more than 0 and at most {max}, got {v}"),
                        );
                        None
                    }
                })
            };
            let load = positive(cx, "max_load_per_core", s.max_load_per_core, 1000.0);
            let mem = positive(
                cx,
                "max_memory_used_percent",
                s.max_memory_used_percent,
                100.0,
            );
            if s.max_load_per_core.is_none() && s.max_memory_used_percent.is_none() {
                cx.err(
                    sp,
                    "is empty: give max_load_per_core and/or max_memory_used_percent, e.g. {max_load_per_core: 4.0}",
                );
            }
            Check::System {
                max_load_per_core: load,
                max_memory_used_percent: mem,
            }
        }
    };
    if cx.issues.len() > before {
        return None;
    }
    Some(CheckSpec {
        check,
        timeout,
        name,
    })
}

/// A check's `name:`: what logs, `status`, notifications and metrics call it.
fn check_name(cx: &mut Ctx, p: &str, n: &str) -> Option<String> {
    let n = cx.expand(p, n)?;
    if n.trim().is_empty() {
        cx.err(
            p,
            "is empty: give the check a name, or leave `name:` out (logs use its description, metrics its kind)",
        );
        return None;
    }
    if let Some(why) = super::hidden_character(&n) {
        cx.err(p, format!("{} {why}", cx.show(&n)));
        return None;
    }
    if n.chars().count() > super::MAX_NAME_CHARS || n.chars().any(char::is_control) {
        cx.err(
            p,
            format!(
                "must be 1 to {} characters, without control characters",
                super::MAX_NAME_CHARS
            ),
        );
        return None;
    }
    Some(n)
}

fn limits(cx: &mut Ctx, p: &str, c: &RawCheck) -> Limits {
    let max_rss_mb = c.max_rss_mb.and_then(|v| {
        if v >= 1 {
            cx.mib(&format!("{p}.max_rss_mb"), v)
        } else {
            cx.err(
                format!("{p}.max_rss_mb"),
                format!("must be 1 or more (MiB), got {v}"),
            );
            None
        }
    });
    let max_cpu_percent = c.max_cpu_percent.and_then(|v| {
        if v.is_finite() && v > 0.0 && v <= 100_000.0 {
            Some(v)
        } else {
            cx.err(
                format!("{p}.max_cpu_percent"),
                format!("must be more than 0 and at most 100000 (percent of one core: 100 is one busy core), got {v}"),
            );
            None
        }
    });
    let max_children = c.max_children.and_then(|v| {
        if v < 0 {
            cx.err(
                format!("{p}.max_children"),
                format!("must be 0 or more, got {v}"),
            );
            return None;
        }
        cx.at_most_u32(&format!("{p}.max_children"), v, 0)
    });
    Limits {
        max_rss_mb,
        max_cpu_percent,
        max_children,
    }
}

/// A user name (looked up now) or a numeric uid.
fn user(cx: &mut Ctx, p: &str, u: &str) -> Option<u32> {
    let u = cx.expand(p, u)?;
    if let Ok(uid) = u.parse::<u32>() {
        return Some(uid);
    }
    match nix::unistd::User::from_name(&u) {
        Ok(Some(user)) => Some(user.uid.as_raw()),
        Ok(None) => {
            let shown = cx.show(&u);
            cx.err(
                p,
                format!("no user named {shown} on this machine: give an existing user name or a numeric uid"),
            );
            None
        }
        Err(e) => {
            let shown = cx.show(&u);
            cx.err(p, format!("cannot look up user {shown}: {}", e.desc()));
            None
        }
    }
}

/// A systemd unit name as systemctl takes it.
pub(super) fn unit_name(cx: &mut Ctx, p: &str, u: &str) -> Option<String> {
    let u = cx.expand(p, u)?;
    if u.trim().is_empty() || u.starts_with('-') || u.contains(char::is_whitespace) {
        let shown = cx.show(&u);
        cx.err(p, format!("{shown} is not a unit name, e.g. nginx.service"));
        return None;
    }
    Some(u)
}

fn http(cx: &mut Ctx, p: &str, c: RawCheck) -> Option<HttpCheck> {
    let before = cx.issues.len();
    let up = format!("{p}.http");
    let url = cx.expand(&up, c.http.as_deref().unwrap_or_default())?;
    if let Err(e) = crate::http_client::check_url(&url) {
        cx.err(&up, e);
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    // user:password@ in the URL is a secret
    if let Some(r) = rest {
        let authority = r.split(['/', '?', '#']).next().unwrap_or(r);
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            cx.secrets.push(userinfo.to_string());
            if let Some((_, pw)) = userinfo.split_once(':') {
                cx.secrets.push(pw.to_string());
            }
        }
    }
    let method = match c.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        Some(m) => {
            cx.err(
                format!("{p}.method"),
                format!("{m:?} is not a method: use GET, HEAD or POST"),
            );
            Method::Get
        }
    };
    let mut expect_status = Vec::new();
    if let Some(codes) = &c.expect_status {
        if codes.is_empty() {
            cx.err(
                format!("{p}.expect_status"),
                "is empty: list the statuses that mean healthy, e.g. [200, 204] (without it: any 2xx or 3xx)",
            );
        }
        for (i, code) in codes.iter().enumerate() {
            match u16::try_from(*code) {
                Ok(v) if (100..=599).contains(&v) => expect_status.push(v),
                _ => cx.err(
                    format!("{p}.expect_status[{i}]"),
                    format!("{code} is not an HTTP status (100..599)"),
                ),
            }
        }
    }
    let body_contains = match c.body_contains.as_deref() {
        Some("") => {
            cx.err(
                format!("{p}.body_contains"),
                "is empty: give the text a healthy body contains",
            );
            None
        }
        Some(b) => cx.expand(&format!("{p}.body_contains"), b),
        None => None,
    };
    if body_contains.is_some() && method == Method::Head {
        cx.err(
            format!("{p}.body_contains"),
            "cannot be checked with method HEAD (a HEAD answer has no body): use GET",
        );
    }
    let headers = super::notify::headers(cx, &format!("{p}.headers"), c.headers);
    let resolve = c.resolve.as_deref().and_then(|r| {
        let rp = format!("{p}.resolve");
        let r = cx.expand(&rp, r)?;
        match r.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let shown = cx.show(&r);
                cx.err(
                    rp,
                    format!("{shown} is not an IP address: resolve takes the address to connect to, e.g. 127.0.0.1"),
                );
                None
            }
        }
    });
    let ip_version = match c.ip_version {
        None => None,
        Some(v @ (4 | 6)) => Some(v as u8),
        Some(v) => {
            cx.err(
                format!("{p}.ip_version"),
                format!("must be 4 or 6, got {v}"),
            );
            None
        }
    };
    if let (Some(ip), Some(v)) = (resolve, ip_version) {
        if (v == 4) != ip.is_ipv4() {
            cx.err(
                format!("{p}.ip_version"),
                format!(
                    "is {v}, but resolve ({ip}) is an IPv{} address",
                    if ip.is_ipv4() { 4 } else { 6 }
                ),
            );
        }
    }
    let tls_verify = c.tls_verify.unwrap_or(true);
    let ca_file: Option<PathBuf> = c
        .ca_file
        .as_deref()
        .and_then(|f| cx.abs_path(&format!("{p}.ca_file"), f));
    if let Some(f) = &ca_file {
        if !tls_verify {
            cx.err(
                format!("{p}.ca_file"),
                "is set with tls_verify: false: choose one (ca_file verifies against that CA)",
            );
        } else {
            ca_file_warnings(cx, &format!("{p}.ca_file"), f);
        }
    }
    if url.starts_with("http://") && (c.tls_verify.is_some() || ca_file.is_some()) {
        cx.warn(
            format!("{p}.http"),
            "is plain http://: tls_verify and ca_file only apply to https://",
        );
    }
    let max_body_bytes = match c.max_body_bytes {
        None => 65536,
        Some(n) if (1..=16 << 20).contains(&n) => n as u64,
        Some(n) => {
            cx.err(
                format!("{p}.max_body_bytes"),
                format!("must be 1..16777216 (bytes read of the body), got {n}"),
            );
            65536
        }
    };
    if cx.issues.len() > before {
        return None;
    }
    Some(HttpCheck {
        url,
        method,
        expect_status,
        body_contains,
        headers,
        resolve,
        ip_version,
        tls_verify,
        ca_file,
        max_body_bytes,
    })
}

/// The default of `tls_cert`'s `min_days_left`: two weeks, time to renew by hand.
const DEFAULT_MIN_DAYS_LEFT: u32 = 14;
/// The largest `min_days_left`: ten years.
const MAX_MIN_DAYS_LEFT: i128 = 3650;

fn tls_cert(cx: &mut Ctx, p: &str, c: &RawCheck) -> Option<TlsCertCheck> {
    let before = cx.issues.len();
    let tp = format!("{p}.tls_cert");
    let s = cx.expand(&tp, c.tls_cert.as_deref().unwrap_or_default())?;
    let s = s.trim();
    let target = if !s.is_empty() && s.chars().all(|ch| ch.is_ascii_digit()) {
        // tcp_port takes a bare port for 127.0.0.1; a certificate is for a name
        let shown = cx.show(s);
        cx.err(
            &tp,
            format!("{shown} has no host: write host:port, e.g. svc.example.com:443 (the host is also the name the certificate must be for)"),
        );
        None
    } else {
        let shown = |v: &str| cx.show(v);
        match parse_host_port_shown(s, &shown) {
            Ok(hp) => Some(hp),
            Err(e) => {
                let e = if s.contains(':') {
                    e
                } else {
                    e.replace("e.g. 127.0.0.1:8080", "e.g. svc.example.com:443")
                };
                cx.err(&tp, e);
                None
            }
        }
    };
    let server_name = match (c.server_name.as_deref(), &target) {
        (Some(n), _) => server_name(cx, &format!("{p}.server_name"), n, None),
        (None, Some((host, _))) => server_name(cx, &tp, host, Some(host)),
        (None, None) => None,
    };
    let min_days_left = match c.min_days_left {
        None => DEFAULT_MIN_DAYS_LEFT,
        Some(n) if (0..=MAX_MIN_DAYS_LEFT).contains(&n) => n as u32,
        Some(n) => {
            cx.err(
                format!("{p}.min_days_left"),
                format!("{n} is out of range 0..{MAX_MIN_DAYS_LEFT}: give the days a certificate must still be valid, e.g. 14 (0: fail only when expired)"),
            );
            DEFAULT_MIN_DAYS_LEFT
        }
    };
    let ca_file = c.ca_file.as_deref().and_then(|f| {
        let fp = format!("{p}.ca_file");
        let f = cx.abs_path(&fp, f)?;
        ca_file_warnings(cx, &fp, &f);
        Some(f)
    });
    if cx.issues.len() > before {
        return None;
    }
    let (host, port) = target?;
    Some(TlsCertCheck {
        host,
        port,
        server_name: server_name?,
        min_days_left,
        ca_file,
    })
}

/// A name a certificate can be for: a DNS name or an IP address (`[::1]` or `::1`). `host`:
/// the name is the check's host (no `server_name:` given), which the message says.
fn server_name(cx: &mut Ctx, p: &str, n: &str, host: Option<&str>) -> Option<String> {
    let n = if host.is_some() {
        n.to_string()
    } else {
        cx.expand(p, n)?
    };
    let bare = n.trim().trim_start_matches('[').trim_end_matches(']');
    if rustls::pki_types::ServerName::try_from(bare).is_ok() && !bare.is_empty() {
        return Some(bare.to_string());
    }
    let shown = cx.show(&n);
    let what = match host {
        Some(_) => format!("the host {shown} is not a DNS name or an IP address a certificate can be for: give server_name, e.g. server_name: svc.example.com"),
        None => format!("{shown} is not a DNS name or an IP address: give the name the certificate must be for (it is also sent as SNI), e.g. svc.example.com"),
    };
    cx.err(p, what);
    None
}

/// What can be told of a `ca_file` when the config is loaded: it cannot be read now, or is not
/// a regular file (the check fails until it is), or, as root, others than root could change it
/// and so choose which certificates pass.
fn ca_file_warnings(cx: &mut Ctx, p: &str, f: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let shown = cx.masked(&f.display().to_string());
    match std::fs::metadata(f) {
        Err(e) => cx.warn(
            p,
            format!(
                "{shown} cannot be read ({}): the check cannot be carried out (unknown: nothing counted, no action) until it can",
                crate::util::os_error(&e)
            ),
        ),
        Ok(m) if !m.is_file() => cx.warn(
            p,
            format!(
                "{shown} is {}, not a regular file: the check cannot be carried out (unknown: nothing counted, no action) until it is a PEM file",
                crate::files::kind(m.file_type())
            ),
        ),
        Ok(m) if cx.env.is_root => {
            let mode = m.mode() & 0o7777;
            let others = if m.uid() != 0 {
                Some(format!(
                    "is owned by uid {}, not root; fix: chown root {shown}",
                    m.uid()
                ))
            } else if mode & 0o002 != 0 || (mode & 0o020 != 0 && m.gid() != 0) {
                Some(format!(
                    "is writable by others than root (mode {mode:04o}); fix: chmod go-w {shown}"
                ))
            } else {
                None
            };
            if let Some(o) = others {
                cx.warn(
                    p,
                    format!("{shown} {o}: whoever can change it chooses which certificates the check trusts"),
                );
            }
        }
        Ok(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_check(yaml: &str) -> Result<RawCheck, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn kinds_text_is_the_list_users_know() {
        assert_eq!(
            kinds_text(),
            "process_name, pid_file, tcp_port, command, http, tls_cert, docker, systemd_unit, file_fresh, disk_free, system"
        );
    }

    #[test]
    fn every_key_is_a_field_raw_check_accepts() {
        for key in KEYS {
            // null fits every Option field: only an unknown key can fail
            if let Err(e) = raw_check(&format!("{}: null", key.name)) {
                panic!("{}: RawCheck does not accept it: {e}", key.name);
            }
        }
    }

    #[test]
    fn every_key_reads_its_own_field_and_no_other() {
        for key in KEYS {
            // a value of the field's type: the first of these that parses
            let parsed = ["1", "x", "[]", "{}", "true"]
                .iter()
                .find_map(|v| raw_check(&format!("{}: {v}", key.name)).ok());
            let Some(c) = parsed else {
                panic!("{}: no sample value parses", key.name);
            };
            let given: Vec<&str> = KEYS
                .iter()
                .filter(|k| (k.present)(&c))
                .map(|k| k.name)
                .collect();
            assert_eq!(given, [key.name]);
        }
    }

    #[test]
    fn every_raw_check_field_is_in_the_table() {
        // serde lists the fields it accepts in its unknown-field error
        let e = raw_check("no_such_key: 1").err().unwrap_or_default();
        let Some((_, list)) = e.split_once("expected one of ") else {
            panic!("unexpected serde wording: {e}");
        };
        let mut fields: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
        fields.retain(|f| *f != "timeout_seconds" && *f != "name");
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        fields.sort_unstable();
        names.sort_unstable();
        assert_eq!(fields, names);
    }

    #[test]
    fn modifiers_name_known_kinds_only() {
        let kinds: Vec<&str> = kind_keys().map(|k| k.name).collect();
        for key in KEYS {
            if let Role::ModifierOf(of) = key.role {
                assert!(!of.is_empty(), "{} modifies no kind", key.name);
                for k in of {
                    assert!(kinds.contains(k), "{} modifies {k}, not a kind", key.name);
                }
            }
        }
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len(), "a key is in the table twice");
    }
}
