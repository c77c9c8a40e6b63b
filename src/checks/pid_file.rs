//! pid_file: the file names a PID that is alive, not a zombie, and (with `process_name`) the
//! expected program, so a stale file whose PID was reused is not taken for the service.

use super::{resources, CheckResult, PassContext};
use crate::config::Limits;
use crate::procs::Proc;
use crate::util::os_error;
use std::path::Path;

pub fn check(
    cx: &PassContext,
    path: &Path,
    process_name: Option<&str>,
    limits: &Limits,
) -> CheckResult {
    let file = path.display();
    let text = match read_small(path) {
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
    let base = CheckResult {
        pid: Some(pid),
        ..CheckResult::ok()
    };
    resources::judge(cx, &[&proc], limits, base)
}

/// Read at most 64 bytes of a regular file, never blocking: a FIFO or device put where the
/// pid file should be must not hang the pass.
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut buf = Vec::with_capacity(64);
    f.take(64).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;

    fn cx() -> PassContext {
        PassContext::default()
    }

    #[test]
    fn a_fifo_instead_of_a_pid_file_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.pid");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let r = check(&cx(), &fifo, None, &Limits::default());
        assert!(!r.is_ok());
        assert!(r.reason.ends_with("not a regular file"), "{}", r.reason);
    }

    #[test]
    fn own_pid_is_alive_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("me.pid");
        std::fs::write(&f, format!("{}\n", std::process::id())).unwrap();
        let r = check(&cx(), &f, None, &Limits::default());
        assert!(r.is_ok(), "{}", r.reason);
        assert_eq!(r.pid, Some(std::process::id() as i32));
        let r = check(
            &cx(),
            &f,
            Some("surely-not-this-program"),
            &Limits::default(),
        );
        assert!(!r.is_ok());
        assert!(
            r.reason
                .contains("not surely-not-this-program (stale pid file, pid reused)"),
            "{}",
            r.reason
        );
        assert_eq!(r.verdict, Verdict::NOT_RUNNING);
    }
}
