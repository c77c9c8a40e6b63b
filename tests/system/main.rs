//! The system suite: neon-watchdog under a real systemd as PID 1 (systemd-nspawn booting a
//! cached Debian rootfs) and against a real dockerd. Needs root and CAP_SYS_ADMIN; `.ci/run`
//! installs what it needs and runs it with
//! `cargo test --locked --features system-tests --test system`.
//! Where it cannot run, every test fails with the reason: it never passes without having run.

mod docker;
mod systemd;
