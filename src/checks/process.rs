//! process_name: a live process with this name (zombies do not count), from the pass snapshot,
//! optionally narrowed by command line (substring or regex) and user, and held to resource
//! limits.

use super::{resources, CheckResult, PassContext};
use crate::config::Limits;
use crate::procs::Proc;

/// What a process_name check looks for.
pub struct Want<'a> {
    pub name: &'a str,
    pub cmdline_contains: Option<&'a str>,
    pub cmdline_regex: Option<&'a regex::Regex>,
    pub user: Option<u32>,
}

impl Want<'_> {
    fn matches(&self, p: &Proc) -> bool {
        self.cmdline_regex.is_none_or_match(&p.cmdline) && self.user.is_none_or_eq(p.uid)
    }

    fn describe(&self) -> String {
        let mut what = self.name.to_string();
        if let Some(c) = self.cmdline_contains {
            what.push_str(&format!(" with {c:?} in its command line"));
        }
        if let Some(r) = self.cmdline_regex {
            what.push_str(&format!(" with a command line matching /{}/", r.as_str()));
        }
        if let Some(u) = self.user {
            what.push_str(&format!(" run by uid {u}"));
        }
        what
    }
}

trait OptRegex {
    fn is_none_or_match(&self, s: &str) -> bool;
}

impl OptRegex for Option<&regex::Regex> {
    fn is_none_or_match(&self, s: &str) -> bool {
        self.is_none_or(|r| r.is_match(s))
    }
}

trait OptUid {
    fn is_none_or_eq(&self, uid: Option<u32>) -> bool;
}

impl OptUid for Option<u32> {
    fn is_none_or_eq(&self, uid: Option<u32>) -> bool {
        self.is_none_or(|want| uid == Some(want))
    }
}

pub fn check(cx: &PassContext, want: &Want, limits: &Limits) -> CheckResult {
    let snap = cx.snapshot();
    let m = snap.find(want.name, want.cmdline_contains);
    let live: Vec<&Proc> = m.live.iter().copied().filter(|p| want.matches(p)).collect();
    let oldest = live.iter().min_by_key(|p| (p.starttime, p.pid)).copied();
    if let Some(oldest) = oldest {
        let base = CheckResult {
            pid: Some(oldest.pid),
            matches: Some(live.len()).filter(|n| *n > 1),
            ..CheckResult::ok()
        };
        return resources::judge(cx, &live, limits, base);
    }
    let what = want.describe();
    if !m.live.is_empty() {
        // some run, but not as wanted: say what differs
        let shown: Vec<String> = m
            .live
            .iter()
            .take(3)
            .map(|p| match p.uid {
                Some(u) => format!("pid {} (uid {u})", p.pid),
                None => format!("pid {}", p.pid),
            })
            .collect();
        return CheckResult::down(format!(
            "no process named {what} ({} named {} run{}: {})",
            m.live.len(),
            want.name,
            if m.live.len() == 1 { "s" } else { "" },
            shown.join(", ")
        ));
    }
    match m.zombies.first() {
        Some(z) => CheckResult::down(format!("{what} is a zombie (pid {}), not running", z.pid)),
        None => CheckResult::down(format!("no process named {what}")),
    }
}
