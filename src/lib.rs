//! neon-watchdog: a process watchdog for Linux. See README.md and DESIGN notes in the module
//! docs: `engine` (the pass), `policy` (the pure decision), `config` (two-stage parsing).

pub mod actions;
pub mod checks;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod docker;
pub mod engine;
pub mod error;
pub mod events;
pub mod exit;
pub mod heartbeat;
pub mod http_client;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod parallel;
pub mod policy;
pub mod procs;
pub mod redact;
pub mod spawn;
pub mod state;
pub mod status;
pub mod summary;
pub mod util;
