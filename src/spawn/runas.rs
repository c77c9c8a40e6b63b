//! Running a command as another user: `user:` and `group:` of exec actions (start, restart,
//! stop), `on_give_up` and `command` checks. A root watchdog that starts a Node or Python app
//! as root turns any bug in that app into root; monit (`as uid`), supervisord (`user=`) and
//! systemd (`User=`) start it as its own user, and so does this.
//!
//! systemd's `User=`/`Group=` semantics, so that a unit and a watchdog config mean the same:
//! - `user:` alone: that uid, the user's primary group as gid, the supplementary groups
//!   initgroups(3) gives (`getgrouplist` of the user and that gid), and HOME, USER, LOGNAME and
//!   SHELL from the user database, in a clean environment (systemd's too): of the
//!   watchdog's, only PATH, LANG, LANGUAGE, LC_* and TZ are kept (see [`kept_env`]); the
//!   rest may hold secrets given to the daemon (`EnvironmentFile=`) for `${NAME}` in the
//!   config. The watchdog's own variables (`NEON_WATCHDOG_*`) and the config's `env:` follow.
//! - `user:` and `group:`: the same, with that group as gid (and as the base of the
//!   supplementary list, as systemd's initgroups(user, gid) does).
//! - `group:` alone: only the gid changes; the uid stays the watchdog's (root), its
//!   supplementary groups and environment are left as they are (a command run as root
//!   inherits the watchdog's environment, as it always did).
//! - The config's own `env:` wins over HOME, USER, LOGNAME and SHELL where it gives them (as
//!   `Environment=` does over `User=`'s).
//! - A name or a numeric id; either way it must exist in the user (group) database: an
//!   unknown one is a config error. Looked up when the config is loaded (each `check`; `run`
//!   at its start and at each reload), never between fork and exec.
//!
//! The switch happens in the child between fork and exec, in the one async-signal-safe hook
//! registered first (before the one that sets PR_SET_PDEATHSIG, which the kernel clears when
//! the credentials change): setgroups, setgid, then setuid (the uid last: after it, the
//! others are no longer allowed), then the chdir into `cwd:`, as the user, so a directory the
//! user cannot reach fails the start and says so. Everything else the spawn does stays the
//! watchdog's, as root: files the command's output goes to are opened before the fork (the
//! child only inherits the descriptors), its process group is killed at its timeout, the
//! guardian kills it if the watchdog dies, orphans are claimed from /proc (root may read the
//! environment of any process).
//!
//! Which step failed comes back through a close-on-exec pipe (one byte: std reports only the
//! errno of a failed spawn), so that the error says "cannot enter its working directory as
//! user nobody", not a bare "permission denied".

use nix::libc;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// A user of the user database, as `user:` named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Who a command runs as (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// `user:`, looked up. None: `group:` alone (the uid stays the watchdog's).
    pub user: Option<Account>,
    /// `group:`, looked up: its name and gid. None: the user's primary group.
    pub group: Option<(String, u32)>,
    /// The gid the command runs with.
    pub gid: u32,
    /// Its supplementary groups (initgroups of the user). None: left as they are (`group:`
    /// alone).
    pub groups: Option<Vec<u32>>,
}

/// A number that is no id (negative, or beyond 32 bits): an error, never a name to look up.
fn out_of_range(spec: &str, what: &str) -> Result<(), String> {
    let digits = spec.strip_prefix('-').unwrap_or(spec);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && spec.parse::<u32>().is_err()
    {
        return Err(format!(
            "{spec} is out of range 0..{} for a {what}",
            u32::MAX
        ));
    }
    Ok(())
}

/// `user:` (a name or a uid) in the user database.
pub fn lookup_user(spec: &str) -> Result<Account, String> {
    use nix::unistd::{Uid, User};
    out_of_range(spec, "uid")?;
    let found = match spec.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(spec),
    };
    match found {
        Ok(Some(u)) => Ok(Account {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir.to_string_lossy().into_owned(),
            shell: u.shell.to_string_lossy().into_owned(),
        }),
        Ok(None) if spec.parse::<u32>().is_ok() => Err(format!(
            "no user with uid {spec} on this machine (getent passwd {spec}): give an existing user, by name or uid"
        )),
        Ok(None) => Err(format!(
            "no user named {spec:?} on this machine (getent passwd {spec}): give an existing user, by name or uid"
        )),
        Err(e) => Err(format!("cannot look up user {spec:?}: {}", e.desc())),
    }
}

/// `group:` (a name or a gid) in the group database: its name and gid.
pub fn lookup_group(spec: &str) -> Result<(String, u32), String> {
    use nix::unistd::{Gid, Group};
    out_of_range(spec, "gid")?;
    let found = match spec.parse::<u32>() {
        Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
        Err(_) => Group::from_name(spec),
    };
    match found {
        Ok(Some(g)) => Ok((g.name, g.gid.as_raw())),
        Ok(None) if spec.parse::<u32>().is_ok() => Err(format!(
            "no group with gid {spec} on this machine (getent group {spec}): give an existing group, by name or gid"
        )),
        Ok(None) => Err(format!(
            "no group named {spec:?} on this machine (getent group {spec}): give an existing group, by name or gid"
        )),
        Err(e) => Err(format!("cannot look up group {spec:?}: {}", e.desc())),
    }
}

impl RunAs {
    /// Who runs the command, from `user:` and `group:` looked up (at least one is given):
    /// the gid and the supplementary groups follow (see the module doc).
    pub fn new(user: Option<Account>, group: Option<(String, u32)>) -> Result<RunAs, String> {
        let gid = match (&group, &user) {
            (Some((_, gid)), _) => *gid,
            (None, Some(u)) => u.gid,
            (None, None) => return Err("neither a user nor a group".into()),
        };
        let groups = match &user {
            None => None,
            Some(u) => {
                let name = CString::new(u.name.as_bytes())
                    .map_err(|_| format!("user name {:?} holds a NUL byte", u.name))?;
                let list = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
                    .map_err(|e| {
                        format!("cannot list the groups of user {}: {}", u.name, e.desc())
                    })?;
                // each once, in the order given (the gid first); a user listed as a member of
                // its own primary group is named there twice
                let mut once: Vec<u32> = Vec::with_capacity(list.len());
                for g in list.into_iter().map(|g| g.as_raw()) {
                    if !once.contains(&g) {
                        once.push(g);
                    }
                }
                Some(once)
            }
        };
        Ok(RunAs {
            user,
            group,
            gid,
            groups,
        })
    }

    /// The uid it runs with (None: the watchdog's).
    pub fn uid(&self) -> Option<u32> {
        self.user.as_ref().map(|u| u.uid)
    }

    /// For the `user=` field of log lines, in chown's notation: `www-data`, `www-data:adm`,
    /// or `:adm` (`group:` alone).
    pub fn shown(&self) -> String {
        match (&self.user, &self.group) {
            (Some(u), None) => u.name.clone(),
            (Some(u), Some((g, _))) => format!("{}:{g}", u.name),
            (None, Some((g, _))) => format!(":{g}"),
            (None, None) => String::new(),
        }
    }

    /// In words, for a check's description: `as user www-data`, `as user www-data, group
    /// adm`, `as group adm`.
    pub fn words(&self) -> String {
        match (&self.user, &self.group) {
            (Some(u), None) => format!("as user {}", u.name),
            (Some(u), Some((g, _))) => format!("as user {}, group {g}", u.name),
            (None, Some((g, _))) => format!("as group {g}"),
            (None, None) => String::new(),
        }
    }

    /// With the ids, for `test-config`: `as user www-data (uid 33, gid 33)`, `as group adm
    /// (gid 4; the uid stays root's)`.
    pub fn summary(&self) -> String {
        let groups = match &self.groups {
            Some(g) if g.iter().any(|&x| x != self.gid) => {
                let list: Vec<String> = g.iter().map(u32::to_string).collect();
                format!(", groups {}", list.join(","))
            }
            _ => String::new(),
        };
        match (&self.user, &self.group) {
            (Some(u), None) => format!(
                "as user {} (uid {}, gid {}{groups})",
                u.name, u.uid, self.gid
            ),
            (Some(u), Some((g, _))) => format!(
                "as user {} (uid {}), group {g} (gid {}{groups})",
                u.name, u.uid, self.gid
            ),
            (None, Some((g, gid))) => {
                format!("as group {g} (gid {gid}; the uid stays the watchdog's)")
            }
            (None, None) => String::new(),
        }
    }

    /// HOME, USER, LOGNAME and SHELL of the user (none with `group:` alone).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let Some(u) = &self.user else {
            return Vec::new();
        };
        let shell = if u.shell.is_empty() {
            "/bin/sh".to_string()
        } else {
            u.shell.clone()
        };
        vec![
            ("HOME", u.home.clone()),
            ("USER", u.name.clone()),
            ("LOGNAME", u.name.clone()),
            ("SHELL", shell),
        ]
    }

    /// Whether the watchdog must change its credentials in the child: always as root; not
    /// when it already runs with that uid and gid. Err: it must and cannot (not root).
    pub fn needs_switch(&self) -> Result<bool, String> {
        let euid = nix::unistd::geteuid().as_raw();
        if euid == 0 {
            return Ok(true);
        }
        let egid = nix::unistd::getegid().as_raw();
        if self.uid().is_none_or(|u| u == euid) && self.gid == egid {
            return Ok(false);
        }
        Err(format!(
            "only root can run a command as another user or group, and neon-watchdog runs as uid {euid}: run it as root, or remove user:/group:"
        ))
    }
}

/// The PATH a command run as another user gets when the watchdog has none (systemd's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What of the watchdog's environment (`vars`) a command run as another user (`user:`) keeps:
/// PATH (a default one if unset), and the locale and time zone (LANG, LANGUAGE, LC_*, TZ).
/// Nothing else: the rest may be secrets given to the daemon. The caller adds the user's
/// HOME, USER, LOGNAME and SHELL, the watchdog's own variables, then the config's `env:`.
fn kept_env(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut kept: Vec<_> = vars
        .filter(|(k, _)| {
            let k = k.as_encoded_bytes();
            matches!(k, b"PATH" | b"LANG" | b"LANGUAGE" | b"TZ") || k.starts_with(b"LC_")
        })
        .collect();
    if !kept.iter().any(|(k, _)| k == "PATH") {
        kept.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    kept
}

/// A command prepared to run as another user: the read end of the pipe its child reports the
/// failed step on (see [`Switch::explain`]).
pub(super) struct Switch {
    report: Option<OwnedFd>,
    /// `as user nobody`, for messages.
    words: String,
}

/// Steps that may fail in the child, as reported on the pipe.
const STEP_GROUPS: u8 = b'g';
const STEP_GID: u8 = b'G';
const STEP_UID: u8 = b'u';
const STEP_CWD: u8 = b'c';

/// Make `cmd` run as `runas`, in `cwd` (reached as that user): its environment, and the hook
/// that switches between fork and exec. Call it before any other `pre_exec` hook. Err: the
/// switch is needed and not allowed (not root), or no pipe could be made.
pub(super) fn apply(
    cmd: &mut Command,
    runas: &RunAs,
    cwd: Option<&Path>,
) -> Result<Switch, String> {
    if runas.user.is_some() {
        // a clean environment, as systemd's User= gives: none of the watchdog's own (secrets
        // handed to it through EnvironmentFile= and the like) reaches another user
        cmd.env_clear();
        for (k, v) in kept_env(std::env::vars_os()) {
            cmd.env(k, v);
        }
    }
    for (k, v) in runas.env() {
        cmd.env(k, v);
    }
    let words = runas.words();
    if !runas.needs_switch()? {
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        return Ok(Switch {
            report: None,
            words,
        });
    }
    let cwd = match cwd {
        Some(dir) => Some(
            CString::new(dir.as_os_str().as_encoded_bytes())
                .map_err(|_| format!("{} holds a NUL byte", dir.display()))?,
        ),
        None => None,
    };
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|e| format!("cannot make a pipe: {}", e.desc()))?;
    let groups: Option<Vec<libc::gid_t>> = runas.groups.clone();
    let gid: libc::gid_t = runas.gid;
    let uid: Option<libc::uid_t> = runas.uid();
    // SAFETY: runs between fork and exec, so only async-signal-safe calls (setgroups, setgid,
    // setuid, chdir, write, close_range/fcntl) on memory prepared before the fork; no allocation, no locks.
    unsafe {
        cmd.pre_exec(move || {
            let fd = write.as_raw_fd();
            let fail = |step: u8| {
                let e = std::io::Error::last_os_error();
                libc::write(fd, (&step as *const u8).cast(), 1);
                Err(e)
            };
            if let Some(g) = &groups {
                if libc::setgroups(g.len(), g.as_ptr()) != 0 {
                    return fail(STEP_GROUPS);
                }
            }
            if libc::setgid(gid) != 0 {
                return fail(STEP_GID);
            }
            if let Some(u) = uid {
                if libc::setuid(u) != 0 {
                    return fail(STEP_UID);
                }
            }
            if let Some(dir) = &cwd {
                if libc::chdir(dir.as_ptr()) != 0 {
                    return fail(STEP_CWD);
                }
            }
            // no stray descriptor reaches the user (the parent marked them once already; this
            // catches one opened since): close-on-exec, not closed, so the report pipe (and
            // std's own) still work until the exec
            super::cloexec_from_3();
            Ok(())
        });
    }
    Ok(Switch {
        report: Some(read),
        words,
    })
}

impl Switch {
    /// The message for a spawn that failed with `e`: which step of the switch failed, or the
    /// exec itself (the program as that user).
    pub(super) fn explain(&self, program: &str, cwd: Option<&Path>, e: &std::io::Error) -> String {
        let err = crate::util::os_error(e);
        let who = &self.words;
        let mut step = [0u8; 1];
        let got = self
            .report
            .as_ref()
            .is_some_and(|r| nix::unistd::read(r.as_raw_fd(), &mut step) == Ok(1));
        match (got, step[0]) {
            (true, STEP_CWD) => format!(
                "cannot run {program} {who}: cannot enter its working directory {} {who}: {err} (give cwd a directory reachable {who})",
                cwd.map(|d| d.display().to_string()).unwrap_or_default()
            ),
            (true, STEP_GROUPS | STEP_GID | STEP_UID) => {
                format!("cannot run {program} {who}: the switch failed: {err}")
            }
            _ => format!("cannot run {program} {who}: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_users_and_groups_are_named_in_the_error() {
        let e = lookup_user("no-such-user-nw").unwrap_err();
        assert!(e.contains("no user named \"no-such-user-nw\""), "{e}");
        let e = lookup_group("4000000000").unwrap_err();
        assert!(e.contains("no group with gid 4000000000"), "{e}");
        assert_eq!(lookup_user("0").unwrap().name, "root");
        let e = lookup_user("-1").unwrap_err();
        assert_eq!(e, "-1 is out of range 0..4294967295 for a uid");
        assert_eq!(lookup_group("root").unwrap(), ("root".to_string(), 0));
    }

    #[test]
    fn another_user_keeps_only_the_path_locale_and_time_zone() {
        let vars = [
            ("PATH", "/opt/bin:/usr/bin"),
            ("WEBHOOK_TOKEN", "s3cret"),
            ("LANG", "C.UTF-8"),
            ("LC_TIME", "en_GB.UTF-8"),
            ("TZ", "UTC"),
            ("HOME", "/root"),
            ("PATHX", "no"),
        ];
        let kept = kept_env(vars.iter().map(|(k, v)| (k.into(), v.into())));
        let names: Vec<_> = kept.iter().map(|(k, _)| k.to_string_lossy()).collect();
        assert_eq!(names, ["PATH", "LANG", "LC_TIME", "TZ"]);
        assert_eq!(kept[0].1, "/opt/bin:/usr/bin");
        let none = kept_env(std::iter::empty());
        assert_eq!(none, vec![("PATH".into(), DEFAULT_PATH.into())]);
    }

    #[test]
    fn the_gid_is_the_groups_else_the_users_primary_one() {
        let root = lookup_user("root").unwrap();
        let r = RunAs::new(Some(root.clone()), None).unwrap();
        assert_eq!((r.uid(), r.gid), (Some(0), 0));
        assert!(r.groups.as_ref().is_some_and(|g| g.contains(&0)));
        assert_eq!(r.shown(), "root");
        let g = RunAs::new(None, Some(("root".into(), 0))).unwrap();
        assert_eq!((g.uid(), g.gid, g.groups.clone()), (None, 0, None));
        assert_eq!(g.shown(), ":root");
        assert!(g.env().is_empty(), "group alone leaves the environment");
        let both = RunAs::new(Some(root), Some(("root".into(), 0))).unwrap();
        assert_eq!(both.shown(), "root:root");
        assert_eq!(both.words(), "as user root, group root");
    }
}
