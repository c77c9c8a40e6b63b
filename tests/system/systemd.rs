//! Under a real systemd as PID 1 (systemd-nspawn, [`nspawn`]), from the .deb built the
//! README's way (`NEON_WATCHDOG_DEB`; unset: built here with packaging/deb/build.sh).
//!
//! Each test boots its own container (an overlay of a cached Debian rootfs), so nothing
//! leaks between tests; at most two run at once. Tests wait on events (a journal line, a unit
//! state, a PID that changed), never on the timer's 30 s: they install with a short tick where
//! the tick is not what is tested.

pub mod nspawn;
mod package;

mod daemon;
mod lifecycle;
mod operator;
mod timer;
mod units;
