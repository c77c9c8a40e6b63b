//! The control socket: how the operator's verbs reach a running `run` (DESIGN.md, "Operators
//! and the daemon"). The daemon listens on a unix stream socket (`control_socket`, mode 0600,
//! in a directory only root can write) and speaks HTTP/1.1 on it, as Docker's and monit's
//! do, so that `curl --unix-socket` drives it as well as the command line does:
//!
//! ```text
//! POST /v1/verb                     body: a verb as JSON ({"verb":"pause","targets":["web"]})
//! POST /v1/{verb}?target=web&...    check pause resume stop start restart reset
//!                                   (target= repeated, all=1, for=2h, reason=..., dry_run=1)
//! POST /v1/targets/{name}/{verb}    the same for one target
//! GET  /v1/status                   the `status --json` document, from the daemon's memory
//! ```
//!
//! A verb is answered with an [`ops::Reply`] as JSON (`{"exit":0,"text":"..."}`) and an HTTP
//! status that matches its exit code (200 for 0 and 2, 400 usage, 404 no such target or
//! route, 403 peer refused, 405 wrong method, 500 the watchdog's own trouble, 503 busy or not
//! holding the lock).
//!
//! Security (it steers root's watchdog):
//! - The daemon answers only a peer whose credentials (SO_PEERCRED) are uid 0 or its own euid;
//!   others get 403 and nothing happens. The socket file is 0600 from the start (bound under
//!   a umask of 0177).
//! - It binds only in a directory owned by root (or us) that no one else can write, reached
//!   through no link someone else planted; what stands at the path is replaced only when it is
//!   a socket of ours no one listens on (a stale one from a previous run). Anything else (a
//!   file, a symlink, a FIFO, another user's socket) is left alone: the daemon runs without a
//!   control socket and logs where and what to do.
//! - The client sends nothing to a socket file owned by anyone but root or itself, nor to a
//!   server whose credentials are not root's or its own.
//! - Requests are bounded ([`MAX_HEAD`], [`MAX_BODY`]) and must arrive within
//!   [`REQUEST_TIME`]; at most [`MAX_CONNECTIONS`] are served at once, each on its own
//!   thread: a client that connects and sends nothing delays neither the loop nor another
//!   client.
//!
//! The daemon's loop receives each request as a [`Call`] ([`Server::next`]) between passes,
//! applies it to the state it holds and answers; the connection's thread writes the answer.

use crate::config::Config;
use crate::exit::Exit;
use crate::ops::{Reply, Verb};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

/// Connections served at once; more are answered 503 at once.
pub const MAX_CONNECTIONS: usize = 4;
/// The request line and headers, at most.
pub const MAX_HEAD: usize = 16 * 1024;
/// A request's body, at most.
pub const MAX_BODY: usize = 64 * 1024;
/// A whole request must arrive within this.
pub const REQUEST_TIME: Duration = Duration::from_secs(10);
/// How long the client waits for the answer: a verb takes as long as its action (a restart
/// waits for stop and start, up to their timeouts) and waits for a pass in flight to end.
pub const REPLY_WAIT: Duration = Duration::from_secs(600);
/// A response, at most (the status document of many targets).
const MAX_RESPONSE: u64 = 32 * 1024 * 1024;

/// What a client asks of the daemon.
#[derive(Debug)]
pub enum Request {
    Verb(Verb),
    Status,
}

/// A request waiting for the daemon's answer. Dropped unanswered, the client gets a 500.
pub struct Call {
    pub request: Request,
    answer: mpsc::SyncSender<Answer>,
}

struct Answer {
    status: u16,
    body: String,
}

impl Call {
    /// Answer a verb.
    pub fn reply(self, r: &Reply) {
        let _ = self.answer.send(reply_answer(r));
    }

    /// Answer with a JSON document (200).
    pub fn document(self, body: String) {
        let _ = self.answer.send(Answer { status: 200, body });
    }
}

fn reply_answer(r: &Reply) -> Answer {
    let status = match r.exit() {
        Exit::Ok | Exit::Failing => 200,
        Exit::Usage if r.text.starts_with("no target named") => 404,
        Exit::Usage => 400,
        Exit::NoPermission => 403,
        Exit::Locked => 503,
        _ => 500,
    };
    let mut body = serde_json::to_string(r)
        .unwrap_or_else(|_| "{\"exit\":1,\"text\":\"cannot render the reply\\n\"}".to_string());
    body.push('\n');
    Answer { status, body }
}

fn error_answer(status: u16, exit: Exit, text: String) -> Answer {
    let mut a = reply_answer(&Reply {
        exit: exit.code(),
        text,
    });
    a.status = status;
    a
}

/// The daemon's side: the listening socket (served by an accept thread) and the calls it
/// hands to the loop. Dropped, it removes its socket file (if it is still the one it bound).
pub struct Server {
    path: PathBuf,
    id: (u64, u64),
    calls: mpsc::Receiver<Call>,
}

impl Server {
    /// Listen on `path`, or log why not (an error saying where and what to do) and return
    /// None: the daemon then runs without a control socket.
    pub fn start(path: &Path) -> Option<Server> {
        let (listener, id) = match listen(path) {
            Ok(l) => l,
            Err(why) => {
                error!(
                    control_socket = %path.display(),
                    "no control socket: {why}; running without one (pause, restart and the other verbs wait for the lock and give up with exit 75 while this daemon runs)"
                );
                return None;
            }
        };
        let (tx, calls) = mpsc::sync_channel(MAX_CONNECTIONS);
        let shown = path.display().to_string();
        let spawned = std::thread::Builder::new()
            .name("control".to_string())
            .spawn(move || accept_loop(listener, tx, shown));
        if let Err(e) = spawned {
            error!(control_socket = %path.display(), err = %e, "no control socket: cannot start its thread; running without one");
            let _ = std::fs::remove_file(path);
            return None;
        }
        info!(control_socket = %path.display(), "control socket listening (root only)");
        Some(Server {
            path: path.to_path_buf(),
            id,
            calls,
        })
    }

    /// The next call, waiting at most `timeout` for one.
    pub fn next(&self, timeout: Duration) -> Option<Call> {
        self.calls.recv_timeout(timeout).ok()
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // only the socket we bound: a file put there since is not ours to remove
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if m.file_type().is_socket() && (m.dev(), m.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Bind `path` (see the module doc for the rules); the listener and the socket file's
/// (device, inode).
fn listen(path: &Path) -> Result<(UnixListener, (u64, u64)), String> {
    const FIX: &str = "put control_socket in a directory only root can write, or leave it unset";
    if path.as_os_str().is_empty() {
        return Err("control_socket is empty".to_string());
    }
    let len = path.as_os_str().len();
    if len > crate::config::SOCKET_PATH_MAX {
        return Err(format!(
            "{} is {len} bytes long, more than a unix socket's {}; set a shorter control_socket",
            path.display(),
            crate::config::SOCKET_PATH_MAX
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    let my_group = nix::unistd::getegid().as_raw();
    let dir = crate::files::parent(path);
    crate::files::ensure_dir(&dir, 0o700)?;
    crate::files::no_planted_links(path)?;
    let dm = std::fs::metadata(&dir).map_err(|e| {
        format!(
            "cannot inspect {}: {}",
            dir.display(),
            crate::util::os_error(&e)
        )
    })?;
    if dm.uid() != 0 && dm.uid() != me {
        return Err(format!(
            "directory {} is owned by uid {}, not by root: its owner could replace the socket; {FIX}",
            dir.display(),
            dm.uid()
        ));
    }
    let mode = dm.permissions().mode();
    if mode & 0o002 != 0 || (mode & 0o020 != 0 && dm.gid() != 0 && dm.gid() != my_group) {
        return Err(format!(
            "directory {} is writable by other users (mode {:04o}): they could plant or replace the socket; {FIX}",
            dir.display(),
            mode & 0o7777
        ));
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot inspect {}: {}",
                path.display(),
                crate::util::os_error(&e)
            ))
        }
        Ok(m) if m.file_type().is_socket() && m.uid() == me => {
            match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(format!(
                        "{} is in use: another process listens on it (another `neon-watchdog run` with this control_socket?); stop it, or give this config another control_socket",
                        path.display()
                    ))
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    // a previous run's, no one listens: ours to replace
                    std::fs::remove_file(path).map_err(|e| {
                        format!(
                            "cannot remove the stale socket {}: {}",
                            path.display(),
                            crate::util::os_error(&e)
                        )
                    })?;
                    info!(control_socket = %path.display(), "removed the stale control socket of a previous run");
                }
                Err(e) => {
                    return Err(format!(
                        "{} is a socket that cannot be tested ({}): it is left alone; remove it, then restart neon-watchdog",
                        path.display(),
                        crate::util::os_error(&e)
                    ))
                }
            }
        }
        Ok(m) => {
            let whose = if m.uid() == me {
                String::new()
            } else {
                format!(" owned by uid {}", m.uid())
            };
            return Err(format!(
                "{} is {}{whose}, not a socket of ours: it is left alone (someone may have put it there); look at it, remove it, then restart neon-watchdog",
                path.display(),
                crate::files::kind(m.file_type())
            ));
        }
    }
    // 0600 from the start: no moment where another user could connect
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| {
        format!(
            "cannot listen on {}: {}",
            path.display(),
            crate::util::os_error(&e)
        )
    })?;
    let m = std::fs::symlink_metadata(path).map_err(|e| {
        format!(
            "cannot inspect {}: {}",
            path.display(),
            crate::util::os_error(&e)
        )
    })?;
    if m.permissions().mode() & 0o777 != 0o600 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok((listener, (m.dev(), m.ino())))
}

fn accept_loop(listener: UnixListener, tx: mpsc::SyncSender<Call>, path: String) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                warn!(control_socket = %path, err = %crate::util::os_error(&e), "control socket: cannot accept a connection");
                // EMFILE and the like: do not spin
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let mut stream = stream;
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            write_answer(
                &mut stream,
                &error_answer(
                    503,
                    Exit::Internal,
                    format!("busy: {MAX_CONNECTIONS} requests are being served; try again\n"),
                ),
            );
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (tx, active2, path2) = (tx.clone(), Arc::clone(&active), path.clone());
        let spawned = std::thread::Builder::new()
            .name("control-conn".to_string())
            .spawn(move || {
                serve(stream, &tx, &path2);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// One connection: read the request, check the peer, hand the call to the loop, answer.
fn serve(mut stream: UnixStream, tx: &mpsc::SyncSender<Call>, path: &str) {
    let me = nix::unistd::geteuid().as_raw();
    let peer = getsockopt(&stream, PeerCredentials).ok();
    let request = read_request(&mut stream);
    let _ = stream.set_write_timeout(Some(REQUEST_TIME));
    match peer {
        Some(c) if c.uid() == 0 || c.uid() == me => {}
        _ => {
            let (uid, pid) = peer.map(|c| (c.uid(), c.pid())).unwrap_or((u32::MAX, 0));
            warn!(control_socket = %path, peer_uid = uid, peer_pid = pid, "control socket: refused a request from uid {uid}: only root may steer the watchdog; nothing was done");
            write_answer(
                &mut stream,
                &error_answer(
                    403,
                    Exit::NoPermission,
                    format!("permission denied: neon-watchdog's control socket {path} answers only root (you are uid {uid}); run it as root; nothing was done\n"),
                ),
            );
            return;
        }
    }
    let request = match request {
        Ok(r) => r,
        Err(a) => {
            write_answer(&mut stream, &a);
            return;
        }
    };
    let request = match route(&request) {
        Ok(r) => r,
        Err(a) => {
            write_answer(&mut stream, &a);
            return;
        }
    };
    if let Request::Verb(v) = &request {
        debug!(control_socket = %path, verb = v.name(), "control socket: verb received");
    }
    let (atx, arx) = mpsc::sync_channel(1);
    let answer = if tx
        .send(Call {
            request,
            answer: atx,
        })
        .is_err()
    {
        error_answer(
            503,
            Exit::Internal,
            "the daemon is stopping; nothing was done\n".to_string(),
        )
    } else {
        match arx.recv_timeout(REPLY_WAIT) {
            Ok(a) => a,
            Err(_) => error_answer(
                500,
                Exit::Internal,
                "the daemon did not answer (it is stopping, or a pass is hung: see its log)\n"
                    .to_string(),
            ),
        }
    };
    write_answer(&mut stream, &answer);
}

/// A request as read: method, target (path and query), body.
struct HttpRequest {
    method: String,
    target: String,
    body: Vec<u8>,
}

fn read_request(stream: &mut UnixStream) -> Result<HttpRequest, Answer> {
    let deadline = Instant::now() + REQUEST_TIME;
    let timeout = || {
        error_answer(
            408,
            Exit::Usage,
            format!(
                "the request did not arrive within {}s\n",
                REQUEST_TIME.as_secs()
            ),
        )
    };
    let bad = |why: &str| error_answer(400, Exit::Usage, format!("bad request: {why}\n"));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(error_answer(
                431,
                Exit::Usage,
                format!("the request's head is longer than {MAX_HEAD} bytes\n"),
            ));
        }
        let n = read_some(stream, &mut chunk, deadline).ok_or_else(timeout)?;
        if n == 0 {
            return Err(bad("the connection closed before the request's end"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("the head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default(),
    );
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(bad(
            "expected a request line such as `POST /v1/pause?target=web HTTP/1.1`",
        ));
    }
    let mut length = 0usize;
    let mut expect_continue = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| bad("Content-Length is not a number"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(error_answer(
                411,
                Exit::Usage,
                "send the body with a Content-Length, not chunked\n".to_string(),
            ));
        } else if name.eq_ignore_ascii_case("expect") && value.eq_ignore_ascii_case("100-continue")
        {
            expect_continue = true;
        }
    }
    if length > MAX_BODY {
        return Err(error_answer(
            413,
            Exit::Usage,
            format!("the body is longer than {MAX_BODY} bytes\n"),
        ));
    }
    let mut body = buf[head_end + 4..].to_vec();
    if expect_continue && body.len() < length {
        let _ = stream.set_write_timeout(Some(REQUEST_TIME));
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    while body.len() < length {
        let n = read_some(stream, &mut chunk, deadline).ok_or_else(timeout)?;
        if n == 0 {
            return Err(bad("the connection closed before the body's end"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(HttpRequest {
        method,
        target,
        body,
    })
}

/// Read what is there, waiting until `deadline` at most; None when it passed (or an error).
fn read_some(stream: &mut UnixStream, buf: &mut [u8], deadline: Instant) -> Option<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(buf) {
            Ok(n) => return Some(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

const VERBS: &[&str] = &[
    "check", "pause", "resume", "stop", "start", "restart", "reset",
];

/// The request a route names, or the answer to a wrong one.
fn route(r: &HttpRequest) -> Result<Request, Answer> {
    let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
    let segments: Vec<String> = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(percent_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let not_found = || {
        error_answer(
            404,
            Exit::Usage,
            format!(
                "no such route: {} {}; the routes are GET /v1/status, POST /v1/verb (a JSON body), POST /v1/VERB?target=NAME and POST /v1/targets/NAME/VERB, VERB one of {}\n",
                r.method,
                crate::util::printable(path),
                VERBS.join(", ")
            ),
        )
    };
    let only = |method: &str| -> Result<(), Answer> {
        if r.method == method {
            Ok(())
        } else {
            Err(error_answer(
                405,
                Exit::Usage,
                format!(
                    "{} is answered to {method} only\n",
                    crate::util::printable(path)
                ),
            ))
        }
    };
    let query = parse_query(query);
    match seg.as_slice() {
        ["v1", "status"] => {
            only("GET")?;
            Ok(Request::Status)
        }
        ["v1", "verb"] => {
            only("POST")?;
            serde_json::from_slice::<Verb>(&r.body)
                .map(Request::Verb)
                .map_err(|e| {
                    error_answer(
                        400,
                        Exit::Usage,
                        format!(
                            "the body is not a verb ({e}): send JSON such as {{\"verb\":\"pause\",\"targets\":[\"web\"],\"for_seconds\":7200}}\n"
                        ),
                    )
                })
        }
        ["v1", "targets", name, verb] if VERBS.contains(verb) => {
            only("POST")?;
            verb_from_query(verb, vec![name.to_string()], &query, false).map(Request::Verb)
        }
        ["v1", verb] if VERBS.contains(verb) => {
            only("POST")?;
            verb_from_query(verb, Vec::new(), &query, true).map(Request::Verb)
        }
        _ => Err(not_found()),
    }
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `%XX` and `+` (a space) decoded; an invalid escape is kept as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A verb from a route's query: `target=` (repeatable, when `targets_in_query`), `all=1`,
/// `for=` (seconds or 2h, 30m...), `reason=`, `dry_run=1`.
fn verb_from_query(
    verb: &str,
    mut targets: Vec<String>,
    query: &[(String, String)],
    targets_in_query: bool,
) -> Result<Verb, Answer> {
    let usage = |text: String| error_answer(400, Exit::Usage, text + "\n");
    let flag = |k: &str, v: &str| -> Result<bool, Answer> {
        match v {
            "" | "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" => Ok(false),
            _ => Err(usage(format!("{k}={v}: give 1 or 0"))),
        }
    };
    let mut all = false;
    let mut for_seconds = None;
    let mut reason = None;
    let mut dry_run = false;
    let takes = |k: &str| -> bool {
        match k {
            "target" => targets_in_query,
            "all" => matches!(verb, "pause" | "resume" | "reset"),
            "for" | "reason" => verb == "pause",
            "dry_run" => verb == "reset",
            _ => false,
        }
    };
    for (k, v) in query {
        if !takes(k) {
            return Err(usage(format!(
                "{verb}: unknown parameter {}; nothing was done",
                crate::util::printable(&format!("{k:?}"))
            )));
        }
        match k.as_str() {
            "target" => targets.push(v.clone()),
            "all" => all = flag(k, v)?,
            "dry_run" => dry_run = flag(k, v)?,
            "reason" => reason = Some(v.clone()),
            "for" => {
                let secs = match v.parse::<u64>() {
                    Ok(n) => n,
                    Err(_) => humantime::parse_duration(v.trim())
                        .map_err(|e| {
                            usage(format!(
                                "pause: for={}: {e}: give seconds or a duration such as 30m, 2h or 1d; nothing was changed",
                                crate::util::printable(v)
                            ))
                        })?
                        .as_secs(),
                };
                for_seconds = Some(secs);
            }
            _ => {}
        }
    }
    Ok(match verb {
        "check" => Verb::Check { targets },
        "pause" => Verb::Pause {
            targets,
            all,
            for_seconds,
            reason,
        },
        "resume" => Verb::Resume { targets, all },
        "stop" => Verb::Stop { targets },
        "start" => Verb::Start { targets },
        "restart" => Verb::Restart { targets },
        _ => Verb::Reset {
            targets,
            all,
            dry_run,
        },
    })
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

fn write_answer(stream: &mut UnixStream, a: &Answer) {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        a.status,
        reason_phrase(a.status),
        a.body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(a.body.as_bytes()))
        .and_then(|()| stream.flush());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// Ask the daemon listening on `config.control_socket` to apply `verb`. None: no daemon
/// listens there (no socket file, something else than a socket, or a stale socket no one
/// listens on): apply it directly. Some: the daemon's reply, or why it could not be asked (a
/// socket or a server it does not trust, permission denied).
pub fn call(config: &Config, verb: &Verb) -> Option<Reply> {
    let path = &config.control_socket;
    if path.as_os_str().is_empty() {
        return None;
    }
    let shown = path.display();
    let me = nix::unistd::geteuid().as_raw();
    let denied = |what: String| {
        Some(Reply {
            exit: Exit::NoPermission.code(),
            text: format!("permission denied: {what}: the running neon-watchdog answers only root; run it as root (sudo neon-watchdog {}); nothing was done\n", verb.name()),
        })
    };
    let refuse = |why: String| {
        Some(Reply {
            exit: Exit::Internal.code(),
            text: format!(
                "refusing the control socket {shown}: {why}; nothing was sent, nothing was done\n"
            ),
        })
    };
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return denied(format!("cannot reach {shown}"))
        }
        Err(e) => return refuse(format!("cannot inspect it: {}", crate::util::os_error(&e))),
    };
    if !m.file_type().is_socket() {
        // not a daemon's: the daemon refuses to listen there and says so in its log
        return None;
    }
    if m.uid() != 0 && m.uid() != me {
        return refuse(format!(
            "it is owned by uid {}, not by root or you: someone else may have put it there (remove it; the daemon creates its own when it starts)",
            m.uid()
        ));
    }
    let mut stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
            return None
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return denied(format!("cannot connect to {shown}"))
        }
        Err(e) => {
            return refuse(format!("cannot connect: {}", crate::util::os_error(&e)));
        }
    };
    match getsockopt(&stream, PeerCredentials) {
        Ok(c) if c.uid() == 0 || c.uid() == me => {}
        Ok(c) => {
            return refuse(format!(
                "the process listening on it (pid {}) runs as uid {}, not as root or you",
                c.pid(),
                c.uid()
            ))
        }
        Err(e) => return refuse(format!("cannot tell who listens on it: {e}")),
    }
    let body = match serde_json::to_string(verb) {
        Ok(b) => b,
        Err(e) => return refuse(format!("cannot encode the verb: {e}")),
    };
    let request = format!(
        "POST /v1/verb HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.set_write_timeout(Some(REQUEST_TIME));
    let _ = stream.set_read_timeout(Some(REPLY_WAIT));
    let failed = |what: String| {
        Some(Reply {
            exit: Exit::Internal.code(),
            text: format!("the running neon-watchdog ({shown}) {what}; see its log (journalctl -u neon-watchdog-daemon)\n"),
        })
    };
    // a daemon refusing at once (busy) closes without reading: its answer is still there
    let sent = stream.write_all(request.as_bytes());
    let mut response = Vec::new();
    if let Err(e) = (&mut stream).take(MAX_RESPONSE).read_to_end(&mut response) {
        return failed(
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                format!("did not answer within {}s", REPLY_WAIT.as_secs())
            } else {
                format!("did not answer: {}", crate::util::os_error(&e))
            },
        );
    }
    let Some(i) = find(&response, b"\r\n\r\n") else {
        if let Err(e) = sent {
            return failed(format!(
                "did not take the request: {}",
                crate::util::os_error(&e)
            ));
        }
        return failed("answered something that is not HTTP".to_string());
    };
    match serde_json::from_slice::<Reply>(&response[i + 4..]) {
        Ok(r) => Some(r),
        Err(e) => failed(format!("answered something that is not a reply ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, target: &str, body: &str) -> HttpRequest {
        HttpRequest {
            method: method.to_string(),
            target: target.to_string(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn verb(r: Result<Request, Answer>) -> Verb {
        match r {
            Ok(Request::Verb(v)) => v,
            Ok(other) => panic!("not a verb: {other:?}"),
            Err(a) => panic!("refused: {} {}", a.status, a.body),
        }
    }

    fn refused(r: Result<Request, Answer>) -> (u16, String) {
        match r {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(a) => (a.status, a.body),
        }
    }

    #[test]
    fn routes_name_the_verbs() {
        assert_eq!(
            verb(route(&req(
                "POST",
                "/v1/targets/web/pause?for=2h&reason=disk+swap%20now",
                ""
            ))),
            Verb::Pause {
                targets: vec!["web".into()],
                all: false,
                for_seconds: Some(7200),
                reason: Some("disk swap now".into()),
            }
        );
        assert_eq!(
            verb(route(&req("POST", "/v1/check?target=a&target=b", ""))),
            Verb::Check {
                targets: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            verb(route(&req("POST", "/v1/reset?all=1", ""))),
            Verb::Reset {
                targets: vec![],
                all: true,
                dry_run: false
            }
        );
        assert_eq!(
            verb(route(&req(
                "POST",
                "/v1/verb",
                r#"{"verb":"restart","targets":["web"]}"#
            ))),
            Verb::Restart {
                targets: vec!["web".into()]
            }
        );
        assert!(matches!(
            route(&req("GET", "/v1/status", "")),
            Ok(Request::Status)
        ));
    }

    #[test]
    fn wrong_routes_are_refused_with_a_status_that_says_why() {
        assert_eq!(refused(route(&req("GET", "/v1/pause?target=a", ""))).0, 405);
        assert_eq!(refused(route(&req("POST", "/v1/status", ""))).0, 405);
        assert_eq!(refused(route(&req("POST", "/v1/frobnicate", ""))).0, 404);
        assert_eq!(refused(route(&req("POST", "/", ""))).0, 404);
        let (status, body) = refused(route(&req("POST", "/v1/verb", "{\"verb\":\"nope\"}")));
        assert_eq!(status, 400, "{body}");
        let (status, body) = refused(route(&req("POST", "/v1/restart?target=a&for=2h", "")));
        assert_eq!(status, 400);
        assert!(body.contains("unknown parameter \\\"for\\\""), "{body}");
        let (status, body) = refused(route(&req("POST", "/v1/pause?target=a&for=soon", "")));
        assert_eq!(status, 400);
        assert!(body.contains("give seconds or a duration"), "{body}");
    }

    #[test]
    fn replies_map_to_http_statuses() {
        let s = |exit: Exit, text: &str| {
            reply_answer(&Reply {
                exit: exit.code(),
                text: text.to_string(),
            })
            .status
        };
        assert_eq!(s(Exit::Ok, ""), 200);
        assert_eq!(s(Exit::Failing, ""), 200);
        assert_eq!(s(Exit::Usage, "no target named \"x\""), 404);
        assert_eq!(s(Exit::Usage, "pause: name a target"), 400);
        assert_eq!(s(Exit::NoPermission, ""), 403);
        assert_eq!(s(Exit::Internal, ""), 500);
    }

    /// The daemon binds only where no one else can plant or replace the socket (the tests
    /// run as root): not in a directory others can write, not through another user's
    /// symlink; in a directory of root's it binds 0600, and leaves a live socket alone.
    #[test]
    fn it_binds_only_where_no_one_else_can_write() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let chmod =
            |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        chmod(d.path(), 0o755).unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o1777).unwrap();
        let e = listen(&open.join("c.sock")).expect_err("bound in a 1777 dir");
        assert!(e.contains("is writable by other users (mode 1777)"), "{e}");
        assert!(!open.join("c.sock").exists());
        let theirs = d.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        nix::unistd::chown(&theirs, Some(65534.into()), None).unwrap();
        let e = listen(&theirs.join("c.sock")).expect_err("bound in nobody's dir");
        assert!(e.contains("is owned by uid 65534, not by root"), "{e}");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(d.path(), &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
        let e = listen(&link.join("c.sock")).expect_err("bound through nobody's link");
        assert!(e.contains("symbolic link owned by uid 65534"), "{e}");
        let ok = d.path().join("c.sock");
        let (_l, _) = listen(&ok).expect("bind in root's dir");
        let m = std::fs::symlink_metadata(&ok).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let e = listen(&ok).expect_err("took a live socket over");
        assert!(
            e.contains("is in use: another process listens on it"),
            "{e}"
        );
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
