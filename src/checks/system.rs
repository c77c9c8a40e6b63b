//! system: host-wide figures. Load per core is the 1-minute load average (/proc/loadavg)
//! divided by the online CPUs; memory used is (MemTotal - MemAvailable) / MemTotal
//! (/proc/meminfo), which leaves out caches the kernel can drop.

use super::CheckResult;
use crate::policy::Verdict;
use crate::util::{os_error, round1};

fn online_cpus() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { nix::libc::sysconf(nix::libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as f64
    } else {
        1.0
    }
}

fn load1() -> Result<f64, String> {
    let text = std::fs::read_to_string("/proc/loadavg")
        .map_err(|e| format!("cannot read /proc/loadavg: {}", os_error(&e)))?;
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("cannot parse /proc/loadavg: {text:?}"))
}

/// (MemTotal, MemAvailable) in KiB.
fn meminfo() -> Result<(u64, u64), String> {
    let text = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| format!("cannot read /proc/meminfo: {}", os_error(&e)))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (field("MemTotal:"), field("MemAvailable:")) {
        (Some(t), Some(a)) if t > 0 => Ok((t, a)),
        _ => Err("cannot parse MemTotal/MemAvailable from /proc/meminfo".to_string()),
    }
}

pub fn check(max_load_per_core: Option<f64>, max_mem_percent: Option<f64>) -> CheckResult {
    let mut problems = Vec::new();
    let mut r = CheckResult::ok();
    if let Some(max) = max_load_per_core {
        match load1() {
            Ok(load) => {
                let cpus = online_cpus();
                let per_core = load / cpus;
                r.figures.load_per_core = Some((per_core * 100.0).round() / 100.0);
                if per_core > max {
                    problems.push(format!(
                        "load {load:.2} on {cpus} cores is {per_core:.2} per core (max {max})"
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
    }
    if let Some(max) = max_mem_percent {
        match meminfo() {
            Ok((total, avail)) => {
                let used = total.saturating_sub(avail) as f64 / total as f64 * 100.0;
                let used = round1(used);
                r.figures.mem_used_percent = Some(used);
                if used > max {
                    problems.push(format!(
                        "memory {used}% used (max {max}%; {} MiB available)",
                        avail / 1024
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        r.verdict = Verdict::FAILING;
        r.reason = problems.join("; ");
    }
    r
}
