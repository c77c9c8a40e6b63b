//! docker: restart or start a container through the Docker Engine API
//! (`POST /containers/{name}/restart?t=N` or `/start`) on its Unix socket, after
//! `POST /containers/{name}/unpause` if the container is paused. `timeout_seconds` bounds the
//! whole action, every request included.

use super::ActionResult;
use crate::config::DockerAction;
use crate::docker;
use std::time::Instant;

/// The request, shown in logs and `--dry-run` as an argv.
pub fn argv(d: &DockerAction) -> Vec<String> {
    argv_of(d, d.method.as_str())
}

/// The request of `method` (`restart`, `start`, `stop`), as an argv.
pub fn argv_of(d: &DockerAction, method: &str) -> Vec<String> {
    vec![
        "POST".to_string(),
        format!("unix://{}:{}", d.socket.display(), path(d, method)),
    ]
}

fn path(d: &DockerAction, method: &str) -> String {
    let name = docker::encode(&d.container);
    match method {
        "start" => format!("/containers/{name}/start"),
        // restart, stop: Docker waits this long for the container to stop, then kills it
        m => format!("/containers/{name}/{m}?t={}", d.stop_timeout),
    }
}

pub fn run(d: &DockerAction) -> ActionResult {
    run_method(d, d.method.as_str())
}

/// [`run`] with another method than the configured one (an operator's `stop`, `start`).
pub fn run_method(d: &DockerAction, method: &str) -> ActionResult {
    let start = Instant::now();
    let deadline = start + d.timeout;
    let request =
        |method: &str, path: &str| docker::request_by(&d.socket, method, path, deadline, d.timeout);
    let failed = |error: String| ActionResult {
        ok: false,
        exit: None,
        duration: start.elapsed(),
        output: String::new(),
        error,
        detached: false,
        stop: None,
        user: None,
    };
    let name = docker::encode(&d.container);
    // A paused container is unpaused first: Docker refuses to start one ("cannot start a
    // paused container, try unpause instead") and Podman to restart one ("unable to restart
    // a container in a paused or unknown state"); Docker restarts one, but unpausing first
    // costs nothing there. An inspect that says nothing (an odd answer) leaves it to the
    // method's own answer.
    let mut output = String::new();
    match request("GET", &format!("/containers/{name}/json")) {
        Err(e) => return failed(e),
        Ok(r) if r.status == 404 => return failed(format!("no such container: {}", d.container)),
        Ok(r) if r.status == 200 && paused(&r.body) => {
            let path = format!("/containers/{name}/unpause");
            match request("POST", &path) {
                Ok(r) if (200..=299).contains(&r.status) => {
                    output = "container was paused: unpaused it first".to_string();
                }
                Ok(r) => {
                    return failed(format!(
                        "container is paused and unpausing it failed: Docker API {}: {}",
                        r.status,
                        r.message()
                    ))
                }
                Err(e) => {
                    return failed(format!("container is paused and unpausing it failed: {e}"))
                }
            }
        }
        Ok(_) => {}
    }
    let error = match request("POST", &path(d, method)) {
        Ok(r) if matches!(r.status, 200..=299 | 304) => String::new(),
        Ok(r) if r.status == 404 => format!("no such container: {}", d.container),
        Ok(r) => format!("Docker API {}: {}", r.status, r.message()),
        Err(e) if e.contains("did not answer") => format!(
            "{e}: the container may still be restarting (raise timeout_seconds above stop_timeout_seconds, {}s)",
            d.stop_timeout
        ),
        Err(e) => e,
    };
    ActionResult {
        ok: error.is_empty(),
        error,
        output,
        ..failed(String::new())
    }
}

/// The inspect JSON says `State.Paused`.
fn paused(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v["State"]["Paused"].as_bool() == Some(true))
}
