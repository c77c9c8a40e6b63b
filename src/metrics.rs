//! Prometheus metrics: the text exposition format, written atomically for node exporter's
//! textfile collector at the end of each pass, and (in `run` mode) served on
//! `metrics.listen` at `/metrics`, with `/healthz` beside it, and the status pages `/` (HTML
//! for people) and `/status` (the `status --json` document), which [`crate::web`] renders.
//! The listener only reads: GET and HEAD, nothing else (control is the root-only socket's).
//! It serves [`MAX_CONNECTIONS`] connections at once, each on its own thread with time limits
//! for the whole request and the whole answer, idle ones giving way to new ones; and it
//! answers only requests whose `Host` names it (no DNS rebinding).
//!
//! ```text
//! neon_watchdog_target_up{target="web"} 1
//! neon_watchdog_target_consecutive_failures{target="web"} 0
//! neon_watchdog_target_restarts_total{target="web"} 3
//! neon_watchdog_target_paused{target="web"} 0   (1, and no other series, while paused)
//! neon_watchdog_target_status{target="web",status="healthy"} 1   (one series per status)
//! neon_watchdog_check_up{target="web",check="tcp_port",kind="tcp_port"} 1
//! neon_watchdog_check_duration_seconds{target="web",check="tcp_port",kind="tcp_port"} 0.0004
//! neon_watchdog_last_run_timestamp_seconds 1.7637e9
//! neon_watchdog_run_duration_seconds 0.021
//! ```
//!
//! **No secret in a label.** The textfile is world-readable and shipped to Prometheus, and
//! `/metrics` answers anyone who can connect: every label value is written by [`Labels`],
//! the one place that masks it with the config's [`Redactor`] (the one the logs use) before
//! escaping it. The `check` label is never the check's description (see
//! [`crate::config::Target::check_series`]), so URLs, paths and unit names stay out of it.

use crate::config::Config;
use crate::policy::{Health, TargetState, Verdict};
use crate::redact::Redactor;
use crate::util::secs_exact;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tracing::{debug, error, info};

/// One target's result in a pass: the pass report's shape, which metrics and the heartbeat
/// read (its status and counters come from the target's state).
#[derive(Debug, Clone)]
pub struct TargetReport {
    pub name: String,
    pub verdict: Verdict,
    /// Each check's result, in the config's order.
    pub checks: Vec<CheckReport>,
}

/// One check's result in a pass.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The `check` label of its series: its `name:`, else its kind (`http`, `http#2`); see
    /// [`crate::config::Target::check_series`]. Stays when a threshold changes.
    pub name: String,
    pub kind: &'static str,
    pub ok: bool,
    pub latency: Duration,
}

/// Writes every label value of the metrics: masked by the redactor, then escaped. No label
/// value reaches the text any other way.
struct Labels<'a>(&'a Redactor);

impl Labels<'_> {
    /// `v` as a label value: secrets masked (before escaping, so no escaped form is missed),
    /// then escaped as the exposition format wants.
    fn value(&self, v: &str) -> String {
        escape(&self.0.redact(v))
    }
}

/// A label value, escaped as the exposition format wants: `\\`, `\"`, `\n`.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

/// What the pass as a whole adds to the metrics.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub finished: SystemTime,
    pub duration: Duration,
    /// None of the watchdog's own trouble: the state was saved, the lock held, every target
    /// judged (the exit code is 0 or 2, not 1).
    pub ok: bool,
    /// The config's `interval_seconds`: a pass is due that often.
    pub interval: Duration,
    /// Passes run, ever (kept in the state file).
    pub passes_total: u64,
}

/// Render a pass's metrics and write the textfile (unless `dry_run`, or none is configured);
/// returns the text (what `run` serves on `metrics.listen`).
pub fn publish(
    config: &Config,
    targets: &[TargetReport],
    states: &BTreeMap<String, TargetState>,
    pass: &Pass,
    dry_run: bool,
) -> String {
    let text = render(targets, states, pass, &config.redactor);
    if let (Some(path), false) = (&config.metrics.textfile, dry_run) {
        if let Err(e) = write_textfile(path, &text) {
            error!("{e}");
        }
    }
    text
}

/// Seconds since the Unix epoch, with microseconds.
fn unix(t: SystemTime) -> String {
    secs_exact(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO),
    )
}

/// A per-target series: its name, type, help, and its value for a target (None: no sample).
type PerTarget = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TargetReport, &TargetState) -> Option<String>,
);

const PER_TARGET: [PerTarget; 5] = [
    (
        "neon_watchdog_target_up",
        "gauge",
        "1 if every check of the target passed in the last pass, else 0.",
        |x, _| Some(u8::from(x.verdict.is_healthy()).to_string()),
    ),
    (
        "neon_watchdog_target_consecutive_failures",
        "gauge",
        "Consecutive failed passes of the target.",
        |_, st| Some(st.consecutive_failures.to_string()),
    ),
    (
        "neon_watchdog_target_restarts_total",
        "counter",
        "Recovery actions run for the target.",
        |_, st| Some(st.restarts_total.to_string()),
    ),
    (
        "neon_watchdog_target_checks_failed_total",
        "counter",
        "Checks of the target that failed, ever (kept in the state file between passes).",
        |_, st| Some(st.checks_failed_total.to_string()),
    ),
    (
        "neon_watchdog_target_last_healthy_timestamp_seconds",
        "gauge",
        "When a pass last found the target healthy (Unix time); no sample until one has.",
        |_, st| st.last_healthy.map(unix),
    ),
];

/// The exposition text of one pass: `targets` as checked, with the figures of their `states`;
/// every label value masked by `redactor`.
pub fn render(
    targets: &[TargetReport],
    states: &BTreeMap<String, TargetState>,
    pass: &Pass,
    redactor: &Redactor,
) -> String {
    let mut s = String::new();
    let none = TargetState::default();
    let state = |name: &str| states.get(name).unwrap_or(&none);
    let labels = Labels(redactor);
    let t = |v: &str| labels.value(v);
    header(
        &mut s,
        "neon_watchdog_build_info",
        "gauge",
        "The version of neon-watchdog that ran the last pass (always 1).",
    );
    let _ = writeln!(
        s,
        "neon_watchdog_build_info{{version=\"{}\"}} 1",
        t(env!("CARGO_PKG_VERSION"))
    );
    for (name, kind, help, value) in PER_TARGET {
        header(&mut s, name, kind, help);
        for x in targets {
            if let Some(v) = value(x, state(&x.name)) {
                let _ = writeln!(s, "{name}{{target=\"{}\"}} {v}", t(&x.name));
            }
        }
    }
    header(
        &mut s,
        "neon_watchdog_target_paused",
        "gauge",
        "1 if an operator paused the target (`neon-watchdog pause`): it is not checked and has no other series until resumed; else 0.",
    );
    for x in targets {
        let _ = writeln!(
            s,
            "neon_watchdog_target_paused{{target=\"{}\"}} 0",
            t(&x.name)
        );
    }
    for (name, _) in states.iter().filter(|(_, st)| st.paused.is_some()) {
        if !targets.iter().any(|x| x.name == *name) {
            let _ = writeln!(s, "neon_watchdog_target_paused{{target=\"{}\"}} 1", t(name));
        }
    }
    header(
        &mut s,
        "neon_watchdog_target_status",
        "gauge",
        "The target's status: 1 for the current one, 0 for the others.",
    );
    for x in targets {
        for st in Health::ALL {
            let _ = writeln!(
                s,
                "neon_watchdog_target_status{{target=\"{}\",status=\"{}\"}} {}",
                t(&x.name),
                t(st.as_str()),
                u8::from(state(&x.name).status == st)
            );
        }
    }
    header(
        &mut s,
        "neon_watchdog_check_up",
        "gauge",
        "1 if the check passed in the last pass, else 0.",
    );
    for x in targets {
        for c in &x.checks {
            let _ = writeln!(
                s,
                "neon_watchdog_check_up{{target=\"{}\",check=\"{}\",kind=\"{}\"}} {}",
                t(&x.name),
                t(&c.name),
                t(c.kind),
                u8::from(c.ok)
            );
        }
    }
    header(
        &mut s,
        "neon_watchdog_check_duration_seconds",
        "gauge",
        "How long the check took in the last pass.",
    );
    for x in targets {
        for c in &x.checks {
            let _ = writeln!(
                s,
                "neon_watchdog_check_duration_seconds{{target=\"{}\",check=\"{}\",kind=\"{}\"}} {}",
                t(&x.name),
                t(&c.name),
                t(c.kind),
                secs_exact(c.latency)
            );
        }
    }
    let whole: [(&str, &str, &str, String); 5] = [
        (
            "neon_watchdog_last_run_timestamp_seconds",
            "gauge",
            "When the last pass finished (Unix time).",
            unix(pass.finished),
        ),
        (
            "neon_watchdog_run_duration_seconds",
            "gauge",
            "How long the last pass took.",
            secs_exact(pass.duration),
        ),
        (
            "neon_watchdog_passes_total",
            "counter",
            "Passes run, ever (kept in the state file between passes).",
            pass.passes_total.to_string(),
        ),
        (
            "neon_watchdog_interval_seconds",
            "gauge",
            "How often a pass is due (interval_seconds): alert when the last one is older than three.",
            secs_exact(pass.interval),
        ),
        (
            "neon_watchdog_pass_ok",
            "gauge",
            "1 if the last pass had none of the watchdog's own trouble (state saved, lock held, every target judged), else 0.",
            u8::from(pass.ok).to_string(),
        ),
    ];
    for (name, kind, help, value) in whole {
        header(&mut s, name, kind, help);
        let _ = writeln!(s, "{name} {value}");
    }
    s
}

/// Write the textfile atomically (mode 0644, a new directory 0755: node exporter runs as
/// another user).
pub fn write_textfile(path: &Path, text: &str) -> Result<(), String> {
    crate::files::write_atomic(path, text.as_bytes(), 0o644, 0o755)
        .map_err(|e| {
            format!(
                "cannot write metrics textfile {}: {e} (the checks and actions go on; fix it or set another metrics.textfile)",
                path.display()
            )
        })
}

/// What the `run` loop shares with the metrics server.
#[derive(Debug, Default)]
pub struct Shared {
    pub text: String,
    pub last_pass: Option<Instant>,
    /// `/healthz` fails when the last pass is older than this.
    pub stale_after: Duration,
    /// What `/` and `/status` show: the daemon's state as it last published it (after each
    /// pass and each operator's verb: [`crate::web::publish`]); None until then.
    pub pages: Option<Arc<dyn StatusPages>>,
    /// A server answers on `metrics.listen`: the pages are worth publishing.
    pub serving: bool,
}

/// The status pages, rendered at each request (so ages and staleness are as of the request)
/// from what the daemon last published. Implemented above this module ([`crate::web`]), which
/// knows the status report: the server only asks for the text.
pub trait StatusPages: Send + Sync + std::fmt::Debug {
    /// `/status`: the `status --json` document, byte for byte as `status --json` prints it.
    fn json(&self, now: SystemTime) -> Result<String, String>;
    /// `/`: the page for people.
    fn html(&self, now: SystemTime) -> String;
}

/// The headers of the status pages beyond the type and length: no script may run, the page
/// may not be framed, nothing is cached or sniffed.
const PAGE_HEADERS: &str = "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store\r\n";

/// Connections served at once, each on its own thread. Beyond it, the oldest connection still
/// sending its request is closed to make room (a client that sends its request at once, as
/// Prometheus and a health check do, is served however many idle ones are open); when every
/// one is being answered, the new one gets `503` at once.
pub const MAX_CONNECTIONS: usize = 16;
/// A whole request (line and headers, at most [`MAX_HEAD`]) must arrive within this: requests
/// are a few hundred bytes, sent at once.
pub const REQUEST_TIME: Duration = Duration::from_secs(2);
/// A whole answer must be written within this (a client that reads slowly is cut off).
pub const ANSWER_TIME: Duration = Duration::from_secs(5);
/// The request line and headers, at most.
pub const MAX_HEAD: usize = 8192;

/// A connection being served: when it came, whether it is still sending its request, and a
/// handle to close it with.
struct Conn {
    id: u64,
    since: Instant,
    reading: bool,
    stream: TcpStream,
}

/// What every connection's thread shares: the listener's own names and the connections open.
struct Server {
    shared: Arc<Mutex<Shared>>,
    /// The address bound (its real port when `metrics.listen` gave 0).
    local: SocketAddr,
    conns: Mutex<Vec<Conn>>,
}

/// Why the listener could not start.
#[derive(Debug)]
pub struct ServeError {
    /// What is wrong, where, and what to do.
    pub message: String,
    /// Another process listens on the port (it answers there, not us).
    pub squatted: bool,
    /// That process, when found.
    pub pid: Option<u32>,
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Serve `/metrics`, `/healthz`, `/` and `/status` on `addr`: an accept thread, a thread per
/// connection (at most [`MAX_CONNECTIONS`]).
pub fn serve(addr: SocketAddr, shared: Arc<Mutex<Shared>>) -> Result<SocketAddr, ServeError> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            let (who, pid) = holder(addr.port());
            ServeError {
                message: format!(
                    "cannot listen on {addr} for metrics: another process holds the port ({who}): what answers on {addr} (/metrics, /healthz, the status page) is not this watchdog; stop that process or set another metrics.listen, then restart neon-watchdog"
                ),
                squatted: true,
                pid,
            }
        } else {
            ServeError {
                message: format!(
                    "cannot listen on {addr} for metrics: {}",
                    crate::util::os_error(&e)
                ),
                squatted: false,
                pid: None,
            }
        }
    })?;
    let local = listener.local_addr().unwrap_or(addr);
    if let Ok(mut sh) = shared.lock() {
        sh.serving = true;
    }
    let server = Arc::new(Server {
        shared,
        local,
        conns: Mutex::new(Vec::new()),
    });
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || accept_loop(&listener, &server))
        .map_err(|e| ServeError {
            message: format!("cannot start the metrics server thread: {e}"),
            squatted: false,
            pid: None,
        })?;
    info!(listen = %local, "serving /metrics, /healthz and the status pages / and /status");
    Ok(local)
}

fn accept_loop(listener: &TcpListener, server: &Arc<Server>) {
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                debug!(err = %e, "metrics: accept failed");
                // EMFILE and the like: do not spin
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Ok(closer) = stream.try_clone() else {
            continue;
        };
        next_id += 1;
        let id = next_id;
        {
            let Ok(mut conns) = server.conns.lock() else {
                return;
            };
            if conns.len() >= MAX_CONNECTIONS {
                // the oldest one still sending its request makes room: an idle client cannot
                // keep a prompt one (a scrape, a health check) waiting
                let oldest = conns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.reading)
                    .min_by_key(|(_, c)| c.since)
                    .map(|(i, _)| i);
                match oldest {
                    Some(i) => {
                        let old = conns.swap_remove(i);
                        let _ = old.stream.shutdown(std::net::Shutdown::Both);
                        debug!("metrics: {MAX_CONNECTIONS} connections open; closed the oldest one still sending its request");
                    }
                    None => {
                        drop(conns);
                        let body =
                            format!("busy: {MAX_CONNECTIONS} answers are being sent; try again\n");
                        let out = format!(
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ =
                            write_within(&mut stream, out.as_bytes(), Duration::from_millis(200));
                        continue;
                    }
                }
            }
            conns.push(Conn {
                id,
                since: Instant::now(),
                reading: true,
                stream: closer,
            });
        }
        let server2 = Arc::clone(server);
        let spawned = std::thread::Builder::new()
            .name("metrics-conn".into())
            .spawn(move || {
                handle(stream, &server2, id);
                server2.forget(id);
            });
        if spawned.is_err() {
            server.forget(id);
        }
    }
}

impl Server {
    /// Connection `id` is done (or was never served).
    fn forget(&self, id: u64) {
        if let Ok(mut conns) = self.conns.lock() {
            conns.retain(|c| c.id != id);
        }
    }

    /// Connection `id` has sent its request: it is answered now, and no longer closed to make
    /// room. False when it was closed already.
    fn answering(&self, id: u64) -> bool {
        let Ok(mut conns) = self.conns.lock() else {
            return false;
        };
        match conns.iter_mut().find(|c| c.id == id) {
            Some(c) => {
                c.reading = false;
                true
            }
            None => false,
        }
    }
}

/// Who holds TCP `port` (listening), from `/proc/net/tcp{,6}` and the processes' open files:
/// "pid 123 (python3), uid 1000 (alice)", or as much of it as is found; and its pid.
fn holder(port: u16) -> (String, Option<u32>) {
    let mut found = None;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        found = text.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit_once(':')?.1;
            let listening = *f.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| Some((f.get(7)?.parse::<u32>().ok()?, f.get(9)?.to_string())))
                .flatten()
        });
        if found.is_some() {
            break;
        }
    }
    let Some((uid, inode)) = found else {
        return ("its owner not found in /proc/net/tcp".to_string(), None);
    };
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(
            || format!("uid {uid}"),
            |u| format!("uid {uid} ({})", u.name),
        );
    match socket_owner(&format!("socket:[{inode}]")) {
        Some(pid) => {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            (format!("pid {pid} ({}), {user}", comm.trim()), Some(pid))
        }
        None => (format!("{user}; its process not found"), None),
    }
}

/// The first process with `link` (`socket:[inode]`) among its open files.
fn socket_owner(link: &str) -> Option<u32> {
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == link) {
                return Some(pid);
            }
        }
    }
    None
}

/// Read the request's line and headers within [`REQUEST_TIME`]; None when it does not come
/// whole (or the connection is closed to make room).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let deadline = Instant::now() + REQUEST_TIME;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= MAX_HEAD {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn handle(mut stream: TcpStream, server: &Server, id: u64) {
    // a client gets REQUEST_TIME to send its request, however slowly it sends, and
    // ANSWER_TIME to read the answer; idle ones give way to new ones (accept_loop)
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    if !server.answering(id) {
        return;
    }
    let mut lines = head.split("\r\n");
    let mut words = lines.next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    let hosts: Vec<&str> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("host").then(|| v.trim())
        })
        .collect();
    let resp = match hosts.as_slice() {
        [] => respond(method, path, &server.shared),
        [host] if own_host(host, server.local, &hostname()) => {
            respond(method, path, &server.shared)
        }
        [host] => misdirected(host, server.local),
        _ => Response {
            status: "400 Bad Request",
            ctype: "text/plain",
            headers: "",
            body: "bad request: more than one Host header\n".to_string(),
        },
    };
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
        resp.status,
        resp.ctype,
        resp.body.len(),
        resp.headers
    );
    if method != "HEAD" {
        out.push_str(&resp.body);
    }
    if let Err(e) = write_within(&mut stream, out.as_bytes(), ANSWER_TIME) {
        debug!(err = %e, "metrics: write failed");
        return;
    }
    linger(&mut stream);
}

/// Close gently: say we are done writing, then read what the client still sends (a body we
/// did not read; a second of it, 64 KiB at most) until it closes. Closed with unread bytes
/// pending, the socket would be reset, and a reset may destroy the answer before the client
/// reads it (a 405 to a POST with a body).
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut chunk = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// The machine's hostname (as `hostname` prints it), lowercase; empty if unknown.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether `host` (a Host header's value) names this listener: its address `local` (any
/// address of the machine when it listens on all of them), `localhost` or the machine's
/// `hostname`, each with `local`'s port or none (IPv6 in brackets). Any other name may be a
/// DNS name an attacker's web page pointed at this address (DNS rebinding).
fn own_host(host: &str, local: SocketAddr, hostname: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => (inside, None),
            p => match p.strip_prefix(':') {
                Some(p) => (inside, Some(p)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host.as_str(), None),
        }
    };
    if let Some(p) = port {
        if p.parse::<u16>().ok() != Some(local.port()) {
            return false;
        }
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        // an address cannot be rebound; an IPv6 one is only ever written in brackets
        let bracketed = host.starts_with('[');
        return bracketed == ip.is_ipv6() && (ip == local.ip() || local.ip().is_unspecified());
    }
    !name.is_empty() && (name == "localhost" || name == hostname)
}

/// The answer to a request whose Host is not this listener's: `421`, one line.
fn misdirected(host: &str, local: SocketAddr) -> Response {
    let shown: String = host
        .chars()
        .take(100)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    Response {
        status: "421 Misdirected Request",
        ctype: "text/plain",
        headers: PAGE_HEADERS,
        body: format!(
            "misdirected request: Host \"{shown}\" is not this listener's address, localhost or this machine's name; ask for http://{local}/ (names other than these are refused: DNS rebinding)\n"
        ),
    }
}

/// Write `bytes` within `limit` in all: a client that reads slowly (a page of many targets
/// is larger than the socket's buffer) cannot hold its connection's thread longer than that.
fn write_within(stream: &mut TcpStream, mut bytes: &[u8], limit: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + limit;
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An answer of the listener.
struct Response {
    status: &'static str,
    ctype: &'static str,
    /// Header lines beyond the type, length and `Connection: close`, each ending in CRLF.
    headers: &'static str,
    body: String,
}

/// The answer to `method path`. Only GET and HEAD are answered: nothing on this listener can
/// change anything, whatever the path.
fn respond(method: &str, path: &str, shared: &Mutex<Shared>) -> Response {
    let answer = |status, ctype, body: String| Response {
        status,
        ctype,
        headers: "",
        body,
    };
    if !matches!(method, "GET" | "HEAD") {
        return Response {
            headers: "Allow: GET, HEAD\r\n",
            ..answer(
                "405 Method Not Allowed",
                "text/plain",
                "GET or HEAD only: this listener only reads; operators' verbs go to the control socket\n"
                    .to_string(),
            )
        };
    }
    match path {
        "/metrics" => {
            let text = shared.lock().map(|s| s.text.clone()).unwrap_or_default();
            answer("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
        }
        "/healthz" => {
            let (last, stale) = shared
                .lock()
                .map(|s| (s.last_pass, s.stale_after))
                .unwrap_or((None, Duration::ZERO));
            match last {
                Some(t) if t.elapsed() <= stale => {
                    answer("200 OK", "text/plain", "ok\n".to_string())
                }
                Some(t) => answer(
                    "503 Service Unavailable",
                    "text/plain",
                    format!(
                        "stale: the last pass finished {}s ago\n",
                        t.elapsed().as_secs()
                    ),
                ),
                None => answer(
                    "503 Service Unavailable",
                    "text/plain",
                    "no pass finished yet\n".to_string(),
                ),
            }
        }
        "/" | "/status" => {
            // rendered outside the lock: the loop publishing a pass never waits for a page
            let pages = shared.lock().ok().and_then(|s| s.pages.clone());
            let now = SystemTime::now();
            let (status, ctype, body) = match (pages, path) {
                (Some(p), "/status") => match p.json(now) {
                    Ok(json) => ("200 OK", "application/json", json),
                    Err(e) => ("500 Internal Server Error", "text/plain", format!("{e}\n")),
                },
                (Some(p), _) => ("200 OK", "text/html; charset=utf-8", p.html(now)),
                (None, "/status") => (
                    "503 Service Unavailable",
                    "text/plain",
                    "no pass finished yet\n".to_string(),
                ),
                (None, _) => (
                    "503 Service Unavailable",
                    "text/html; charset=utf-8",
                    STARTING.to_string(),
                ),
            };
            Response {
                headers: PAGE_HEADERS,
                ..answer(status, ctype, body)
            }
        }
        _ => answer(
            "404 Not Found",
            "text/plain",
            "not found: try / (the status page), /status (JSON), /metrics or /healthz\n"
                .to_string(),
        ),
    }
}

/// `/` before the first pass has finished: says so, and looks again in a few seconds.
const STARTING: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>neon-watchdog: starting</title></head>\n<body><p>neon-watchdog is starting: no pass has finished yet. This page reloads every 5 seconds.</p></body></html>\n";

/// Serve, or log why not (an error: the watchdog goes on without the endpoint). When another
/// process holds the port, what systemd's STATUS line should say of it (anyone may read that
/// line: it names the address and the pid, nothing of the config).
pub fn serve_or_log(addr: SocketAddr, shared: Arc<Mutex<Shared>>) -> Option<String> {
    let e = serve(addr, shared).err()?;
    error!(listen = %addr, "{e}; going on without the metrics endpoint");
    e.squatted.then(|| {
        let pid = e.pid.map_or(String::new(), |p| format!(" (pid {p})"));
        format!("metrics.listen {addr} is held by another process{pid}: what answers there is not this watchdog")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickling_client_cannot_hold_the_server() {
        let shared = Arc::new(Mutex::new(Shared {
            text: "x 1\n".into(),
            last_pass: Some(Instant::now()),
            stale_after: Duration::from_secs(60),
            ..Shared::default()
        }));
        let addr = serve("127.0.0.1:0".parse().unwrap(), shared).unwrap();
        // sends one byte every half second, never finishing its request
        let mut slow = TcpStream::connect(addr).unwrap();
        let dripper = std::thread::spawn(move || {
            for _ in 0..20 {
                if slow.write_all(b"G").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
        let mut resp = String::new();
        let _ = c.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
        let _ = dripper.join();
    }

    #[test]
    fn a_slow_reader_cannot_hold_the_server() {
        // an answer far larger than the socket buffers, read at 640 KB/s: 100 s to read it all
        let shared = Arc::new(Mutex::new(Shared {
            text: "x".repeat(64 << 20),
            last_pass: Some(Instant::now()),
            stale_after: Duration::from_secs(600),
            ..Shared::default()
        }));
        let addr = serve("127.0.0.1:0".parse().unwrap(), shared).unwrap();
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        // the server is answering it (a thread of the server is held by it now)
        let mut first = [0u8; 1];
        slow.read_exact(&mut first).unwrap();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = vec![0u8; 64 << 10];
            for _ in 0..1200 {
                if stop.load(std::sync::atomic::Ordering::SeqCst)
                    || matches!(slow.read(&mut chunk), Ok(0) | Err(_))
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let started = Instant::now();
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(150))).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
        let mut resp = String::new();
        let _ = c.read_to_string(&mut resp);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
        // served beside the slow one (which is cut after 5 s), not after the 100 s it would
        // take to read its answer
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        let _ = reader.join();
    }

    #[test]
    fn only_the_listeners_own_names_are_its_hosts() {
        let v4: SocketAddr = "127.0.0.1:9798".parse().unwrap();
        let v6: SocketAddr = "[::1]:9798".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9798".parse().unwrap();
        for (host, local) in [
            ("127.0.0.1:9798", v4),
            ("127.0.0.1", v4),
            ("localhost", v4),
            ("LOCALHOST:9798", v4),
            ("box1:9798", v4),
            ("Box1.", v4),
            ("[::1]:9798", v6),
            ("[::1]", v6),
            ("192.0.2.7:9798", any),
            ("box1", any),
        ] {
            assert!(own_host(host, local, "box1"), "{host} on {local}");
        }
        for (host, local) in [
            ("evil.example:9798", v4),
            ("evil.example", any),
            ("127.0.0.1:9799", v4),
            ("127.0.0.2:9798", v4),
            ("localhost:", v4),
            ("localhost:x", v4),
            ("localhost.evil.example", v4),
            ("box1.evil.example:9798", v4),
            ("::1", v6),
            ("[::1]9798", v6),
            ("[box1]:9798", v6),
            ("[::1]:9798", v4),
            ("", v4),
            (":9798", v4),
        ] {
            assert!(!own_host(host, local, "box1"), "{host} on {local}");
        }
        // no hostname known: an empty Host does not match it
        assert!(!own_host("", v4, ""));
    }

    #[test]
    fn idle_connections_give_way_and_answers_in_flight_make_a_new_one_wait() {
        use nix::sys::socket::{setsockopt, sockopt::RcvBuf};
        // an answer larger than what the kernel buffers for a client that reads nothing
        let shared = Arc::new(Mutex::new(Shared {
            text: "x".repeat(2 << 20),
            last_pass: Some(Instant::now()),
            stale_after: Duration::from_secs(600),
            ..Shared::default()
        }));
        let addr = serve("127.0.0.1:0".parse().unwrap(), shared).unwrap();
        let healthz = || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut resp = String::new();
            let _ = c.read_to_string(&mut resp);
            resp
        };
        // more idle connections than the cap: the new request is served at once
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS * 2)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let r = healthz();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r:?}");
        // the oldest idle ones were closed to make room: they read the end, no answer
        let mut first = idle.into_iter().next().unwrap();
        first
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut got = Vec::new();
        assert!(matches!(first.read_to_end(&mut got), Ok(0) | Err(_)) && got.is_empty());
        // MAX_CONNECTIONS answers in flight to clients that read nothing: a new one is told
        // to come back, at once
        let stuck: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| {
                let s = TcpStream::connect(addr).unwrap();
                let _ = setsockopt(&s, RcvBuf, &4096);
                let mut w = &s;
                w.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
                let mut one = [0u8; 1];
                (&s).read_exact(&mut one).unwrap();
                s
            })
            .collect();
        let r = healthz();
        assert!(
            r.starts_with("HTTP/1.1 503 Service Unavailable\r\n") && r.contains("Retry-After: 1"),
            "{r:?}"
        );
        // once their answers are written or cut off (ANSWER_TIME), the listener answers again
        let started = Instant::now();
        let ok = loop {
            let r = healthz();
            if r.starts_with("HTTP/1.1 200") {
                break true;
            }
            if started.elapsed() > Duration::from_secs(60) {
                break false;
            }
            // polling for the event, not letting time pass
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(ok, "never answered again after {:?}", started.elapsed());
        drop(stuck);
    }

    #[test]
    fn only_get_and_head_are_answered_and_the_pages_wait_for_a_pass() {
        let shared = Mutex::new(Shared::default());
        for method in [
            "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "",
        ] {
            for path in ["/", "/status", "/metrics", "/healthz", "/nope"] {
                let r = respond(method, path, &shared);
                assert_eq!(
                    (r.status, r.headers),
                    ("405 Method Not Allowed", "Allow: GET, HEAD\r\n"),
                    "{method} {path}"
                );
            }
        }
        assert_eq!(
            respond("GET", "/index.html", &shared).status,
            "404 Not Found"
        );
        // before the first pass: the pages say so, with their headers
        let r = respond("GET", "/status", &shared);
        assert_eq!(
            (r.status, r.headers),
            ("503 Service Unavailable", PAGE_HEADERS)
        );
        let r = respond("HEAD", "/", &shared);
        assert_eq!(r.status, "503 Service Unavailable");
        assert!(r.body.contains("http-equiv=\"refresh\""), "{}", r.body);
        // /metrics has none of the pages' headers
        assert_eq!(respond("GET", "/metrics", &shared).headers, "");
    }

    #[test]
    fn label_values_are_escaped_and_every_status_has_a_series() {
        let name = "we\"b\\1\n";
        let targets = [TargetReport {
            name: name.into(),
            verdict: Verdict::FAILING,
            checks: vec![CheckReport {
                name: "tcp_port".into(),
                kind: "tcp_port",
                ok: false,
                latency: Duration::from_millis(1500),
            }],
        }];
        let states = BTreeMap::from([(
            name.to_string(),
            TargetState {
                consecutive_failures: 3,
                restarts_total: 2,
                status: Health::GaveUp,
                ..TargetState::default()
            },
        )]);
        let pass = Pass {
            finished: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration: Duration::from_millis(21),
            ok: true,
            interval: Duration::from_secs(30),
            passes_total: 7,
        };
        let text = render(&targets, &states, &pass, &Redactor::default());
        assert!(
            text.contains("neon_watchdog_target_up{target=\"we\\\"b\\\\1\\n\"} 0"),
            "{text}"
        );
        assert_eq!(text.matches("neon_watchdog_target_status{").count(), 5);
        assert!(text.contains("status=\"gave_up\"} 1"));
        assert!(text.contains("check=\"tcp_port\",kind=\"tcp_port\"} 1.500000"));
        assert!(text.contains("neon_watchdog_last_run_timestamp_seconds 1800000000.000000"));
        assert!(text.contains("neon_watchdog_run_duration_seconds 0.021000"));
        assert!(text.contains("neon_watchdog_passes_total 7\n"));
        assert!(text.contains("neon_watchdog_interval_seconds 30.000000\n"));
        assert!(text.contains("neon_watchdog_pass_ok 1\n"));
        assert!(text.contains(&format!(
            "neon_watchdog_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        // never healthy: no timestamp sample (a 0 would read as "healthy in 1970")
        assert!(!text.contains("neon_watchdog_target_last_healthy_timestamp_seconds{"));
    }

    #[test]
    fn every_label_value_is_masked_before_it_is_escaped() {
        let secret = r#"tok"en\x-9876"#;
        let redactor = Redactor::new([secret.to_string()]);
        let targets = [TargetReport {
            name: format!("api {secret}"),
            verdict: Verdict::Healthy,
            checks: vec![CheckReport {
                name: format!("db password=hunter22 {secret}"),
                kind: "command",
                ok: true,
                latency: Duration::from_millis(1),
            }],
        }];
        let pass = Pass {
            finished: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            ok: true,
            interval: Duration::from_secs(30),
            passes_total: 1,
        };
        let text = render(&targets, &BTreeMap::new(), &pass, &redactor);
        for piece in ["9876", "hunter22", "tok"] {
            assert!(!text.contains(piece), "{piece} in:\n{text}");
        }
        assert!(
            text.contains(r#"neon_watchdog_check_up{target="api ***",check="db password=*** ***",kind="command"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn check_series_are_names_else_kinds_and_never_collide() {
        let config = crate::config::parse(
            std::path::Path::new("/etc/nw/c.yml"),
            "state_file: /var/lib/nw/state.json\ntargets:\n  - name: web\n    checks:\n      - {tcp_port: 1}\n      - {http: \"http://127.0.0.1:1/\"}\n      - {tcp_port: 2}\n      - {command: [\"/bin/true\"], name: \"tcp_port#3\"}\n      - {tcp_port: 3}\n      - {tcp_port: 4, name: http}\n    action: none\n",
            &crate::config::validate::Env {
                lookup: &|_| None,
                is_root: true,
                config_dir: "/etc/nw".into(),
            },
        )
        .unwrap()
        .config;
        assert_eq!(
            config.targets[0].check_series(),
            [
                "tcp_port",
                "http",
                "tcp_port#2",
                "tcp_port#3",
                "tcp_port#3 #2",
                "http #2"
            ]
        );
    }
}
