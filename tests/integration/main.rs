//! Integration tests: the real `neon-watchdog` binary, driven like a user drives it.
//!
//! Every test gets its own temp dir with its own config and `state_file` (we may run as
//! root, where the default state file would be /var/lib/...), runs the binary, and asserts
//! what a user can observe: the exit code, the log lines, the state file, ports that come
//! back, actions that ran exactly N times (counted as lines an action appends to a file).
//! Real processes, real sockets on 127.0.0.1, real servers (python's http.server, redis,
//! nginx). A real systemd and a real dockerd run in the system suite (`tests/system`); here
//! a stand-in speaking their interface is kept only for what the real thing cannot be made to
//! do (a polkit refusal, a hostile engine answer), and the test says so (STAND-IN).
//!
//! Layout: `harness` (the `Test` builder, output asserts, process guards), then one module
//! per topic.

mod harness;

mod action_log;
mod checks;
mod cli;
mod cli_docs;
mod commands;
mod config_errors;
mod config_files;
mod config_perms;
mod control;
mod dependencies;
mod docker;
mod escalation;
mod examples;
mod files;
mod golden;
mod http;
mod include;
mod install;
mod intervals;
mod journald;
mod kinds;
mod leftovers;
mod lock;
mod logs;
mod metrics;
mod nagios;
mod notify;
mod operator;
mod policy;
mod run_loop;
mod runas;
mod schema;
mod sd_notify;
mod secrets;
mod servers;
mod state;
mod statuspage;
mod systemd;
mod systemd_unit;
mod tls_cert;
