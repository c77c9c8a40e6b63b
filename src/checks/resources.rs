//! Resource limits of process_name and pid_file checks: resident memory, CPU since the previous
//! pass, live direct children. Each limit applies to every matching process; a FAIL names the
//! worst one with its figure (`rss 2310 MiB > 2048 MiB (pid 123, the worst of 4)`).
//!
//! CPU: a oneshot pass does not sleep to measure. Each pass stores every checked process's CPU
//! ticks under `pid:starttime` in the state file; the next pass compares with it: percent of
//! one core = delta ticks / ticks per second / delta wall seconds * 100 (one busy thread is
//! 100%, as `top` shows). A process with no sample of the same start time (new, restarted,
//! or the first pass) is not judged this pass (debug line).

use super::{CheckResult, PassContext};
use crate::config::Limits;
use crate::policy::Verdict;
use crate::procs::CpuSample;
use crate::procs::Proc;
use crate::util::round1;
use tracing::debug;

/// CPU percent of one core since the previous sample, and record this pass's sample. Err:
/// why it cannot be judged this pass (for the debug line).
fn cpu_percent(cx: &PassContext, p: &Proc) -> Result<f64, &'static str> {
    let k = p.sample_key();
    if let Ok(mut m) = cx.cpu.lock() {
        m.insert(
            k.clone(),
            CpuSample {
                ticks: p.cpu_ticks,
                at: p.read_at,
            },
        );
    }
    let Some(prev) = cx.prev_cpu.get(&k) else {
        return Err(
            "no earlier CPU sample of this process: its CPU is judged from the next pass on",
        );
    };
    p.cpu_since(prev)
}

/// Judge `procs` (the matching live processes) against `limits`; `base` is the OK result.
pub fn judge(cx: &PassContext, procs: &[&Proc], limits: &Limits, base: CheckResult) -> CheckResult {
    if !limits.any() || procs.is_empty() {
        return base;
    }
    let of = |pid: i32| {
        if procs.len() > 1 {
            format!("pid {pid}, the worst of {}", procs.len())
        } else {
            format!("pid {pid}")
        }
    };
    let mut r = base;
    let mut problems = Vec::new();
    if let Some(max) = limits.max_rss_mb {
        if let Some(worst) = procs.iter().max_by_key(|p| p.rss_mb()) {
            let rss = worst.rss_mb();
            r.figures.rss_mb = Some(rss);
            if rss > max {
                problems.push(format!("rss {rss} MiB > {max} MiB ({})", of(worst.pid)));
            }
        }
    }
    if let Some(max) = limits.max_cpu_percent {
        let measured: Vec<(i32, f64)> = procs
            .iter()
            .filter_map(|p| match cpu_percent(cx, p) {
                Ok(c) => Some((p.pid, c)),
                Err(why) => {
                    debug!(pid = p.pid, "{why}");
                    None
                }
            })
            .collect();
        if let Some((pid, cpu)) = measured.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)) {
            r.figures.cpu_percent = Some(round1(cpu));
            if cpu > max {
                problems.push(format!(
                    "cpu {:.1}% > {max}% of a core since the previous pass ({})",
                    cpu,
                    of(pid)
                ));
            }
        }
    }
    if let Some(max) = limits.max_children {
        let snap = cx.snapshot();
        if let Some((pid, n)) = procs
            .iter()
            .map(|p| (p.pid, snap.children_of(p.pid)))
            .max_by_key(|(_, n)| *n)
        {
            r.figures.children = Some(n);
            if n > max {
                problems.push(format!("{n} children > {max} ({})", of(pid)));
            }
        }
    }
    if problems.is_empty() {
        r
    } else {
        CheckResult {
            verdict: Verdict::FAILING,
            reason: problems.join("; "),
            ..r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;
    use std::time::SystemTime;

    fn proc(pid: i32, starttime: u64, ticks: u64) -> Proc {
        proc_at(pid, starttime, ticks, SystemTime::UNIX_EPOCH)
    }

    fn proc_at(pid: i32, starttime: u64, ticks: u64, read_at: SystemTime) -> Proc {
        Proc {
            pid,
            ppid: 1,
            pgrp: pid,
            comm: "x".into(),
            state: 'R',
            starttime,
            argv0: "x".into(),
            exe: None,
            cmdline: "x".into(),
            uid: Some(0),
            kernel: false,
            rss_pages: 0,
            cpu_ticks: ticks,
            read_at,
            layout: None,
        }
    }

    #[test]
    fn cpu_is_compared_only_with_the_same_process() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hz = procfs::ticks_per_second();
        let mut prev = BTreeMap::new();
        prev.insert("7:100".to_string(), CpuSample { ticks: 0, at: t0 });
        let cx = PassContext::new(&[], false, false, Default::default(), prev);
        let later = t0 + Duration::from_secs(10);
        // the same pid and start time: 5 s of CPU in 10 s = 50%
        let same = proc_at(7, 100, 5 * hz, later);
        let c = cpu_percent(&cx, &same).expect("judged");
        assert!((c - 50.0).abs() < 0.01, "{c}");
        // the pid was reused by a process started later: not judged
        let e = cpu_percent(&cx, &proc_at(7, 999, 5 * hz, later)).unwrap_err();
        assert!(e.starts_with("no earlier CPU sample"), "{e}");
        // too close to the earlier sample, or fewer ticks than before: said so, not judged
        let soon = proc_at(7, 100, 5 * hz, t0 + Duration::from_millis(50));
        let e = cpu_percent(&cx, &soon).unwrap_err();
        assert!(e.contains("less than 0.1 s old"), "{e}");
        // both were recorded for the next pass
        let samples = cx.take_cpu_samples();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples["7:100"].ticks, 5 * hz);
    }

    #[test]
    fn limits_fail_with_the_worst_figure() {
        let cx = PassContext::new(&[], false, false, Default::default(), BTreeMap::new());
        let page = procfs::page_size();
        let mut a = proc(1, 1, 0);
        a.rss_pages = 100 * 1024 * 1024 / page;
        let mut b = proc(2, 1, 0);
        b.rss_pages = 300 * 1024 * 1024 / page;
        let limits = Limits {
            max_rss_mb: Some(200),
            ..Limits::default()
        };
        let r = judge(&cx, &[&a, &b], &limits, CheckResult::ok());
        assert!(!r.is_ok());
        assert_eq!(r.reason, "rss 300 MiB > 200 MiB (pid 2, the worst of 2)");
        assert_eq!(r.figures.rss_mb, Some(300));
    }
}
