//! docker: restart or start a container through the Docker Engine API
//! (`POST /containers/{name}/restart?t=N` or `/start`) on its Unix socket.

use super::ActionResult;
use crate::config::{DockerAction, DockerMethod};
use crate::docker;
use std::time::Instant;

/// The request, shown in logs and `--dry-run` as an argv.
pub fn argv(d: &DockerAction) -> Vec<String> {
    vec![
        "POST".to_string(),
        format!("unix://{}:{}", d.socket.display(), path(d)),
    ]
}

fn path(d: &DockerAction) -> String {
    let name = docker::encode(&d.container);
    match d.method {
        DockerMethod::Restart => format!("/containers/{name}/restart?t={}", d.stop_timeout),
        DockerMethod::Start => format!("/containers/{name}/start"),
    }
}

pub fn run(d: &DockerAction) -> ActionResult {
    let start = Instant::now();
    let failed = |error: String| ActionResult {
        ok: false,
        exit: None,
        duration: start.elapsed(),
        output: String::new(),
        error,
        detached: false,
        stop: None,
    };
    let reply = match docker::request(&d.socket, "POST", &path(d), d.timeout) {
        Ok(r) => r,
        Err(e) if e.contains("did not answer") => {
            return failed(format!(
                "{e}: the container may still be restarting (raise timeout_seconds above stop_timeout_seconds, {}s)",
                d.stop_timeout
            ))
        }
        Err(e) => return failed(e),
    };
    match reply.status {
        200..=299 | 304 => ActionResult {
            ok: true,
            exit: None,
            duration: start.elapsed(),
            output: String::new(),
            error: String::new(),
            detached: false,
            stop: None,
        },
        404 => failed(format!("no such container: {}", d.container)),
        s => failed(format!("Docker API {s}: {}", reply.message())),
    }
}
