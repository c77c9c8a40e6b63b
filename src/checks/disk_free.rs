//! disk_free: the file system holding a path has enough free space. "Free" is what an
//! unprivileged process can still write (statvfs f_bavail), as `df` shows it: the blocks
//! reserved for root do not count.

use super::{os_error, CheckResult};
use std::path::Path;

pub fn check(path: &Path, min_percent: Option<f64>, min_mb: Option<u64>) -> CheckResult {
    let st = match nix::sys::statvfs::statvfs(path) {
        Ok(s) => s,
        Err(e) => {
            let e = std::io::Error::from_raw_os_error(e as i32);
            return CheckResult::fail(format!("cannot stat {}: {}", path.display(), os_error(&e)));
        }
    };
    let frsize = st.fragment_size() as u64;
    let total = (st.blocks() as u64).saturating_mul(frsize);
    let avail = (st.blocks_available() as u64).saturating_mul(frsize);
    let free_mb = avail / (1024 * 1024);
    let percent = if total == 0 {
        0.0
    } else {
        avail as f64 / total as f64 * 100.0
    };
    let percent = (percent * 10.0).round() / 10.0;
    let mut problems = Vec::new();
    if let Some(min) = min_percent {
        if percent < min {
            problems.push(format!(
                "only {percent}% free on {} (min {min}%)",
                path.display()
            ));
        }
    }
    if let Some(min) = min_mb {
        if free_mb < min {
            problems.push(format!(
                "only {free_mb} MiB free on {} (min {min} MiB)",
                path.display()
            ));
        }
    }
    let mut r = if problems.is_empty() {
        CheckResult::ok()
    } else {
        CheckResult::fail(problems.join("; "))
    };
    r.figures.free_percent = Some(percent);
    r.figures.free_mb = Some(free_mb);
    r
}
