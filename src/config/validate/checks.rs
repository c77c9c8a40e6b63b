//! Validation of one check: exactly one kind key, modifiers that belong to that kind, values
//! in range. Every problem is reported with its field path.

use super::{parse_host_port, process_name, Ctx};
use crate::config::model::*;
use crate::config::raw::*;
use crate::http_client::Method;
use std::path::PathBuf;
use std::time::Duration;

pub(super) const KINDS: &str =
    "process_name, pid_file, tcp_port, command, http, docker, systemd_unit, file_fresh, disk_free, system";

/// Which kinds each modifier belongs to (for "is a modifier of ... checks only").
const MODIFIERS: &[(&str, &[&str])] = &[
    ("cmdline_contains", &["process_name"]),
    ("cmdline_regex", &["process_name"]),
    ("user", &["process_name"]),
    ("max_rss_mb", &["process_name", "pid_file"]),
    ("max_cpu_percent", &["process_name", "pid_file"]),
    ("max_children", &["process_name", "pid_file"]),
    ("ok_exit_codes", &["command"]),
    ("method", &["http"]),
    ("expect_status", &["http"]),
    ("body_contains", &["http"]),
    ("headers", &["http"]),
    ("resolve", &["http"]),
    ("ip_version", &["http"]),
    ("tls_verify", &["http"]),
    ("ca_file", &["http"]),
    ("max_body_bytes", &["http"]),
    ("docker_socket", &["docker"]),
    ("max_age_seconds", &["file_fresh"]),
    ("min_free_percent", &["disk_free"]),
    ("min_free_mb", &["disk_free"]),
];

fn present_modifiers(c: &RawCheck) -> Vec<&'static str> {
    let flags = [
        c.cmdline_contains.is_some(),
        c.cmdline_regex.is_some(),
        c.user.is_some(),
        c.max_rss_mb.is_some(),
        c.max_cpu_percent.is_some(),
        c.max_children.is_some(),
        c.ok_exit_codes.is_some(),
        c.method.is_some(),
        c.expect_status.is_some(),
        c.body_contains.is_some(),
        c.headers.is_some(),
        c.resolve.is_some(),
        c.ip_version.is_some(),
        c.tls_verify.is_some(),
        c.ca_file.is_some(),
        c.max_body_bytes.is_some(),
        c.docker_socket.is_some(),
        c.max_age_seconds.is_some(),
        c.min_free_percent.is_some(),
        c.min_free_mb.is_some(),
    ];
    MODIFIERS
        .iter()
        .zip(flags)
        .filter(|(_, on)| *on)
        .map(|((name, _), _)| *name)
        .collect()
}

pub(super) fn check(cx: &mut Ctx, p: &str, c: RawCheck) -> Option<CheckSpec> {
    let before = cx.issues.len();
    let mut kinds = Vec::new();
    for (name, on) in [
        ("process_name", c.process_name.is_some()),
        ("pid_file", c.pid_file.is_some()),
        ("tcp_port", c.tcp_port.is_some()),
        ("command", c.command.is_some()),
        ("http", c.http.is_some()),
        ("docker", c.docker.is_some()),
        ("systemd_unit", c.systemd_unit.is_some()),
        ("file_fresh", c.file_fresh.is_some()),
        ("disk_free", c.disk_free.is_some()),
        ("system", c.system.is_some()),
    ] {
        if on {
            kinds.push(name);
        }
    }
    let guarded_pid_file = kinds == ["process_name", "pid_file"];
    if kinds.is_empty() {
        cx.err(p, format!("has no check kind: give one of {KINDS}"));
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
    for m in present_modifiers(&c) {
        let allowed = MODIFIERS
            .iter()
            .find(|(name, _)| *name == m)
            .map(|(_, k)| *k)
            .unwrap_or(&[]);
        if !allowed.contains(&kind) {
            let of = allowed.join(" and ");
            let what = if guarded_pid_file && allowed.contains(&"process_name") {
                format!("is a modifier of {of} checks only (here process_name guards a pid_file)")
            } else {
                format!("is a modifier of {of} checks only")
            };
            cx.err(format!("{p}.{m}"), what);
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
            let limits = limits(cx, p, &c);
            Check::PidFile {
                path: path?,
                process_name: name,
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
                        cx.err(rp, format!("{r:?} is not a valid regex: {last}"));
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
            match parse_host_port(&s) {
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
                false,
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
            Check::Command {
                argv: argv?,
                ok_exit_codes: codes,
            }
        }
        "http" => Check::Http(Box::new(http(cx, p, c)?)),
        "docker" => {
            let dp = format!("{p}.docker");
            let container = cx.expand(&dp, c.docker.as_deref().unwrap_or_default())?;
            if container.is_empty() || container.contains(['/', ' ', '?', '#']) {
                cx.err(
                    dp,
                    format!("{container:?} is not a container name or id, e.g. my-container"),
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
                    Some(v as u64)
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
    Some(CheckSpec { check, timeout })
}

fn limits(cx: &mut Ctx, p: &str, c: &RawCheck) -> Limits {
    let max_rss_mb = c.max_rss_mb.and_then(|v| {
        if v >= 1 {
            Some(v as u64)
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
                format!("must be more than 0 (percent of one core: 100 is one busy core), got {v}"),
            );
            None
        }
    });
    let max_children = c.max_children.and_then(|v| match u32::try_from(v) {
        Ok(n) => Some(n),
        Err(_) => {
            cx.err(
                format!("{p}.max_children"),
                format!("must be 0 or more, got {v}"),
            );
            None
        }
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
            cx.err(
                p,
                format!("no user named {u:?} on this machine: give an existing user name or a numeric uid"),
            );
            None
        }
        Err(e) => {
            cx.err(p, format!("cannot look up user {u:?}: {}", e.desc()));
            None
        }
    }
}

/// A systemd unit name as systemctl takes it.
pub(super) fn unit_name(cx: &mut Ctx, p: &str, u: &str) -> Option<String> {
    let u = cx.expand(p, u)?;
    if u.trim().is_empty() || u.starts_with('-') || u.contains(char::is_whitespace) {
        cx.err(p, format!("{u:?} is not a unit name, e.g. nginx.service"));
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
                cx.err(
                    rp,
                    format!("{r:?} is not an IP address: resolve takes the address to connect to, e.g. 127.0.0.1"),
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
        } else if let Err(e) = std::fs::metadata(f) {
            cx.warn(
                format!("{p}.ca_file"),
                format!(
                    "{} cannot be read ({}): the check will fail until it can",
                    f.display(),
                    crate::util::os_error(&e)
                ),
            );
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
