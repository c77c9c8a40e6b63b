//! process_name: a live process with this name (zombies do not count), from the pass snapshot,
//! optionally narrowed by command line (substring or regex) and user, and held to resource
//! limits.
//!
//! Whose processes count. A name is no identity: any local user can start a process called
//! anything (`exec -a myjava python3 ...`, a symlink named like the service). Such a look-alike
//! must neither fail the check (a 600 MiB decoy over `max_rss_mb` would make root restart a
//! healthy service) nor pass it (a decoy `sleep` would keep a dead service "healthy"). So:
//! - with `user:`, only that user's processes count;
//! - without it, only those of root and of system accounts (uid up to `SYS_UID_MAX` of
//!   /etc/login.defs, 999 on Debian): postgres, redis, nginx's root master and its www-data
//!   workers are all found as before (and those of the user the watchdog runs as, when not
//!   root). A login user's or `nobody`'s process of the same name is
//!   a look-alike: not counted, not judged by the limits, and named in the FAIL reason when
//!   it is all there is (with the `user:` to write if it is the service after all). Except
//!   the forks of a counted process, whoever they run as (nginx's workers run as `nobody`
//!   when its config has no `user` directive): no one else can make a process its fork. A
//!   fork is told by its memory layout, which it shares with its parent until it execs (see
//!   [`crate::procs::forked_from`]): a child that exec'd since, even the service's own
//!   program (a user's cron job `exec env LD_PRELOAD=hog.so /usr/sbin/cron` under root's
//!   cron), or another one (a user's shell under sshd, renamed with `exec -a sshd`), counts
//!   by its owner only. Where the layout cannot be read (a watchdog not running as root sees
//!   other users' layouts as 0) or address space layout randomisation is off, no child
//!   counts by descent: the safe side (nginx's workers as `nobody` then need `user:` or
//!   nginx's `user` directive; as www-data they count by their owner anyway).
//!
//! Why not "the owner of the oldest match": after the service dies, the oldest match is the
//! decoy. Why not the executable's path: a symlink makes comm and exe's basename anything,
//! and a service's executable is not in the config. The owner is the real uid (see
//! [`Proc::uid`]), which no unprivileged process can borrow.

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
        self.cmdline_regex.is_none_or_match(&p.cmdline)
    }

    /// The process runs as the service's owner: `user:`, else root or a system account.
    fn owned(&self, p: &Proc) -> bool {
        match self.user {
            Some(_) => self.user.is_none_or_eq(p.uid),
            None => p.uid.is_some_and(crate::procs::is_service_owner),
        }
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
    let named: Vec<&Proc> = m.live.iter().copied().filter(|p| want.matches(p)).collect();
    let mut live: Vec<&Proc> = named.iter().copied().filter(|p| want.owned(p)).collect();
    if want.user.is_none() {
        // the forks of a counted process (nginx's workers) are the service's, whoever they run
        // as (nobody, without a `user` directive): no one else can make a process a fork of
        // it. A child that exec'd a program since, even the service's own (a user's cron job
        // `exec /usr/sbin/cron` under root's cron; an sshd session's shell after
        // `exec -a sshd ...`), may be a user's: it counts only by its owner.
        loop {
            let more: Vec<&Proc> = named
                .iter()
                .copied()
                .filter(|p| !live.iter().any(|l| l.pid == p.pid))
                .filter(|p| live.iter().any(|l| crate::procs::forked_from(p, l)))
                .collect();
            if more.is_empty() {
                break;
            }
            live.extend(more);
        }
    }
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
    if !named.is_empty() {
        // only processes of other owners: look-alikes, or the service under another user
        let owners: Vec<u32> = named.iter().filter_map(|p| p.uid).collect();
        let shown: Vec<String> = named
            .iter()
            .take(3)
            .map(|p| match p.uid {
                Some(u) => format!("pid {} ({})", p.pid, crate::procs::uid_shown(u)),
                None => format!("pid {} (owner unknown)", p.pid),
            })
            .collect();
        let whose = match want.user {
            Some(u) => format!("not {}", crate::procs::uid_shown(u)),
            None => "not root or a system account".to_string(),
        };
        let hint = match owners.first() {
            Some(u) if owners.iter().all(|o| o == u) && want.user.is_none() => format!(
                "; if that is the service, say so with user: {}",
                nix::unistd::User::from_uid((*u).into())
                    .ok()
                    .flatten()
                    .map_or_else(|| u.to_string(), |u| u.name)
            ),
            _ => String::new(),
        };
        return CheckResult::down(format!(
            "no process named {what}: {} of another owner ({whose}) not counted: {}{hint}",
            if named.len() == 1 {
                "a look-alike".to_string()
            } else {
                format!("{} look-alikes", named.len())
            },
            shown.join(", ")
        ));
    }
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
