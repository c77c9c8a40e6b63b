//! pid_file: the file names a PID that is alive, not a zombie, and (with `process_name`) the
//! expected program, so a stale file whose PID was reused is not taken for the service.

use super::{os_error, CheckResult};
use crate::procs::Proc;
use std::path::Path;

pub fn check(path: &Path, process_name: Option<&str>) -> CheckResult {
    let file = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return CheckResult::down(format!("pid file {file} does not exist"))
        }
        Err(e) => {
            return CheckResult::fail(format!("cannot read pid file {file}: {}", os_error(&e)))
        }
    };
    let first = text.lines().next().unwrap_or("").trim();
    let pid = match first.parse::<i32>() {
        Ok(p) if p > 0 => p,
        _ => {
            let shown: String = first.chars().take(40).collect();
            return CheckResult::down(format!("pid file {file} holds {shown:?}, not a pid"));
        }
    };
    let Some(proc) = Proc::by_pid(pid) else {
        return CheckResult::down(format!(
            "pid {pid} from {file} is not running (stale pid file)"
        ));
    };
    if proc.is_zombie() {
        return CheckResult::down(format!("pid {pid} from {file} is a zombie"));
    }
    if let Some(name) = process_name {
        if !proc.is_named(name) {
            return CheckResult::down(format!(
                "pid {pid} from {file} is {:?}, not {name} (stale pid file, pid reused)",
                proc.name()
            ));
        }
    }
    CheckResult {
        pid: Some(pid),
        ..CheckResult::ok()
    }
}
