//! tcp_port: a TCP connection to host:port succeeds within the timeout.
//!
//! Names are resolved on a helper thread, so a hung resolver costs the timeout, not the pass.
//! Every resolved address is tried, within the one overall timeout.

use super::CheckResult;
use crate::util::{os_error, secs};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub fn check(host: &str, port: u16, timeout: Duration) -> CheckResult {
    match connect(host, port, timeout, Instant::now() + timeout) {
        Ok((_, addr)) => CheckResult {
            addr: Some(addr.to_string()),
            ..CheckResult::ok()
        },
        Err(e) => CheckResult::fail(e),
    }
}

/// A connection to `host:port` by `deadline` (`timeout` is what messages call it), trying
/// every address the host resolves to. `Err` is the reason: `connection refused`, `timed out
/// after 3s`, `cannot resolve db.local: ...` (tcp_port, tls_cert).
pub(super) fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), String> {
    let addrs = resolve(host, port, timeout)?;
    let mut last = String::from("no address");
    for addr in addrs {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("timed out after {}", secs(timeout)));
        }
        match TcpStream::connect_timeout(&addr, deadline - now) {
            Ok(s) => return Ok((s, addr)),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!("timed out after {}", secs(timeout));
            }
            Err(e) => last = os_error(&e),
        }
    }
    Err(last)
}

fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(
            (name.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>()),
        );
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(a)) if !a.is_empty() => Ok(a),
        Ok(Ok(_)) => Err(format!("{host} resolves to no address")),
        Ok(Err(e)) => Err(format!("cannot resolve {host}: {e}")),
        Err(_) => Err(format!(
            "resolving {host} timed out after {}",
            secs(timeout)
        )),
    }
}
