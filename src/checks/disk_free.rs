//! disk_free: the file system holding a path has enough free space. "Free" is what an
//! unprivileged process can still write (statvfs f_bavail), as `df` shows it: the blocks
//! reserved for root do not count, and the percentage is 100 minus df's Use%
//! (avail / (used + avail)).

use super::CheckResult;
use crate::util::os_error;
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
    let blocks = st.blocks() as u64;
    let used = blocks.saturating_sub(st.blocks_free() as u64);
    let avail_blocks = st.blocks_available() as u64;
    let avail = avail_blocks.saturating_mul(frsize);
    let free_mb = avail / (1024 * 1024);
    // as df computes Use%: of what is used plus what users may still use (root's reserve
    // and metadata-only blocks are neither)
    let usable = used.saturating_add(avail_blocks);
    let percent = if usable == 0 {
        0.0
    } else {
        avail_blocks as f64 / usable as f64 * 100.0
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
