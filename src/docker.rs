//! A minimal Docker Engine API client over its Unix socket: one HTTP/1.1 request per
//! connection, a hard deadline for the whole exchange (the connect included: an engine that
//! accepts no connection any more costs the timeout, not a hang), the body capped. No docker CLI needed.
//! Paths are unversioned (`/containers/{name}/json`): the engine answers with its own API
//! version.

use crate::util::{os_error, secs};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bodies larger than this are cut (a container's inspect JSON is a few KiB).
const MAX_BODY: usize = 1 << 20;

/// An answer of the engine.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_BODY`] and was cut.
    pub truncated: bool,
}

/// At most this many characters of an engine's message are shown.
const MAX_MESSAGE: usize = 200;

impl Reply {
    /// The engine's `{"message": "..."}`, or the body as text: on one line, at most
    /// [`MAX_MESSAGE`] characters (a proxy's HTML error page is not a log line).
    pub fn message(&self) -> String {
        let text = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().count() > MAX_MESSAGE {
            let cut: String = text.chars().take(MAX_MESSAGE).collect();
            format!("{cut}...")
        } else {
            text
        }
    }

    /// Why the body is not what was asked for, in words: cut, or not JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        if self.truncated {
            return Err(format!(
                "Docker API sent an answer larger than {} MiB (cut)",
                MAX_BODY >> 20
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("Docker API sent invalid JSON: {e}"))
    }
}

/// Percent-encode a container name for a URL path.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `method path` on the engine at `socket`, within `timeout`. `Err` is a user-facing reason.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<Reply, String> {
    request_by(socket, method, path, Instant::now() + timeout, timeout)
}

/// [`request`], answered by `deadline`: one of several requests sharing a `timeout` (the
/// one a timeout error names).
pub fn request_by(
    socket: &Path,
    method: &str,
    path: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<Reply, String> {
    let unreachable = |e: &std::io::Error| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                " (is Docker running? set docker_socket if it listens elsewhere)"
            }
            std::io::ErrorKind::PermissionDenied => {
                " (add the watchdog's user to the docker group, or run it as root)"
            }
            _ => "",
        };
        format!(
            "cannot reach docker socket {}: {}{hint}",
            socket.display(),
            os_error(e)
        )
    };
    let mut s = match connect(socket, deadline) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(format!(
                "Docker API did not accept the connection within {} (its queue is full: is the engine hung?)",
                secs(timeout)
            ))
        }
        Err(e) => return Err(unreachable(&e)),
    };
    let timed_out = || format!("Docker API did not answer within {}", secs(timeout));
    let left = || deadline.saturating_duration_since(Instant::now());
    s.set_write_timeout(Some(left().max(Duration::from_millis(1))))
        .map_err(|e| os_error(&e))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: neon-watchdog/{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    s.write_all(req.as_bytes()).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => timed_out(),
        _ => format!("Docker API: {}", os_error(&e)),
    })?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let remaining = left();
        if remaining.is_zero() {
            return Err(timed_out());
        }
        s.set_read_timeout(Some(remaining))
            .map_err(|e| os_error(&e))?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&chunk[..n]);
                if raw.len() > MAX_BODY + 64 * 1024 {
                    break;
                }
                if complete(&raw) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out())
            }
            Err(e) => return Err(format!("Docker API: {}", os_error(&e))),
        }
    }
    if raw.is_empty() {
        return Err("Docker API closed the connection without answering".to_string());
    }
    parse(&raw).ok_or_else(|| "Docker API sent a malformed answer (not HTTP)".to_string())
}

/// Connect to the Unix socket at `path` by `deadline`. A blocking connect waits without
/// bound while the listener's accept queue is full (an engine that is stopped or wedged
/// stops accepting, and the queue fills up with the connections of earlier passes), so the
/// socket is non-blocking and the connect is retried until the deadline: `WouldBlock` then.
fn connect(path: &Path, deadline: Instant) -> std::io::Result<UnixStream> {
    use nix::libc;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: zeroed is a valid sockaddr_un (plain integers and bytes).
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path too long for a socket",
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: a new descriptor, owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a socket just created and not owned elsewhere.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    loop {
        // SAFETY: addr is a sockaddr_un that outlives the call; len is within it.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if r == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            std::io::ErrorKind::Interrupted => {}
            // the accept queue is full: retry until the deadline
            std::io::ErrorKind::WouldBlock if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return Err(e),
        }
    }
    let s = UnixStream::from(fd);
    s.set_nonblocking(false)?;
    Ok(s)
}

fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The whole answer is here (by Content-Length or the last chunk), so no need to wait for EOF.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = head_end(raw) else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return raw.len() >= end + len;
    }
    if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return raw[end..].windows(5).any(|w| w == b"0\r\n\r\n");
    }
    let status = head.split_whitespace().nth(1).unwrap_or("");
    status == "204" || status == "304"
}

fn parse(raw: &[u8]) -> Option<Reply> {
    let end = head_end(raw)?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &raw[end..];
    let mut body = if header(&head, "transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)
    } else if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    let truncated = body.len() > MAX_BODY;
    body.truncate(MAX_BODY);
    Some(Reply {
        status,
        body,
        truncated,
    })
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        let stop = start.saturating_add(size).min(rest.len());
        out.extend_from_slice(&rest[start..stop]);
        rest = rest.get(stop + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_answers() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n{\"message\":\"No such contai\r\n5\r\nner\"}\r\n0\r\n\r\n";
        assert!(complete(raw));
        let r = parse(raw).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.message(), "No such container");
        assert!(complete(b"HTTP/1.1 204 No Content\r\n\r\n"));
        assert_eq!(encode("my app/1"), "my%20app%2F1");
        // a lying chunk size must not overflow
        let r =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc")
                .unwrap();
        assert_eq!(r.body, b"abc");
    }
}
