//! systemd's notification protocol (sd_notify(3)), for `run` under `Type=notify` with
//! `WatchdogSec=`: one datagram per message to the socket `$NOTIFY_SOCKET` names (a path, or
//! `@name` in the abstract namespace). Without `NOTIFY_SOCKET` every call does nothing.
//!
//! The watchdog ping is the loop's to send, never a side thread's: a thread that kept pinging
//! while the loop hung would hide the hang from systemd, which is what `WatchdogSec=` is for.
//!
//! It imports only `util` of the crate.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// Where to send, and how often systemd wants to hear that the loop is alive.
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    /// A send failed and was said on stderr (once: every ping would repeat it).
    told: std::cell::Cell<bool>,
    /// Half of `WATCHDOG_USEC` (when `WATCHDOG_PID` is unset or names us).
    ping_every: Option<Duration>,
    last_ping: Option<Instant>,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service. A socket that cannot be
    /// used is said once on stderr and then ignored: the service runs, systemd will time out
    /// waiting for READY=1 and say so in its own log.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            match open(&path) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("neon-watchdog: NOTIFY_SOCKET={path}: cannot use it ({e}); systemd will not hear from this service");
                    None
                }
            }
        });
        let ours = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.trim() == std::process::id().to_string());
        let ping_every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(|u| Duration::from_micros(u) / 2);
        // the commands we run must not talk to systemd in our name (a started daemon that
        // speaks sd_notify would say READY=1 for us): they do not inherit these. Called at the
        // start of `run`, before any thread of ours exists.
        for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            std::env::remove_var(k);
        }
        Notifier {
            socket,
            told: std::cell::Cell::new(false),
            ping_every,
            last_ping: None,
        }
    }

    /// systemd is listening.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Send `state` (newline-separated `KEY=value` assignments). Errors are not fatal: the
    /// service goes on; systemd notices the silence on its own.
    pub fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.socket {
            if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
                // under Type=notify systemd would only say the start timed out: say why, once
                if !self.told.replace(true) {
                    eprintln!(
                        "neon-watchdog: cannot tell systemd (NOTIFY_SOCKET): {}; under Type=notify systemd will time out waiting for READY=1",
                        crate::util::os_error(&e)
                    );
                }
            }
        }
    }

    /// `WATCHDOG=1` if half the watchdog period went by since the last one. Called by the
    /// loop itself, between and around passes.
    pub fn ping(&mut self) {
        let Some(every) = self.ping_every else {
            return;
        };
        if self.last_ping.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.send("WATCHDOG=1");
        self.last_ping = Some(Instant::now());
    }

    /// `RELOADING=1` with the monotonic time systemd asks for (systemd >= 253).
    pub fn reloading(&self) {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
            .unwrap_or(0);
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }
}

fn open(path: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None if path.starts_with('/') => SocketAddr::from_pathname(path)?,
        None => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "neither an absolute path nor @abstract",
            ))
        }
    };
    let sock = UnixDatagram::unbound()?;
    Ok((sock, addr))
}
