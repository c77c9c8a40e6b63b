//! pid_file: the file names a PID that is alive, not a zombie, and (with `process_name`) the
//! expected program, so a stale file whose PID was reused is not taken for the service.
//!
//! A name does not make a process the service: after the service dies, any user can fork until
//! the kernel hands out the dead pid (seconds with pid_max 32768) and name the process like the
//! service. So the process must also run as the service's owner (its real uid, see
//! [`Proc::uid`]):
//! - with `user:`, that user;
//! - without it, for a pid file only root can write: root or a system account (as for
//!   process_name checks);
//! - without it, for a pid file others than root can write (its owner is not root, its group
//!   or everyone may write it, a directory on its path, as given or resolved, is another
//!   user's or writable by a group or everyone without the sticky bit, or a component of the
//!   path is a symlink another user made, which can point at any root file holding a number):
//!   the file's owner (redis's pid file, redis's process), or the symlink's maker;
//! - without it, for a root-owned pid file others can write: no one (the check fails and asks
//!   for `user:`): any root process would pass, whatever pid was written there.
//!
//! A pid file others than root can write never names the service with pid 1 (a service's user
//! writing `1` would otherwise keep the check green forever); a root-only one may (a service
//! that is pid 1 of its container). A kernel thread is never the service.
//!
//! Not used: "the process started after the pid file was written" as proof of reuse. It is
//! the same attack seen through clocks: the start time counts from boot, the file's mtime is
//! wall-clock time, and a wall-clock step forward after the file was written (NTP at boot on a
//! machine without an RTC, a VM resumed) would make a healthy service look stale and get it
//! restarted, which is worse than what it guards against; the owner rule closes the attack
//! without a clock.

use super::{resources, CheckResult, PassContext};
use crate::config::Limits;
use crate::files::{self, ReadError};
use crate::procs::Proc;
use crate::util::os_error;
use std::path::Path;

/// What a FAIL reason says when a pid file no one can vouch for needs `user:` (test-config
/// looks for it).
pub const NO_TRUSTED_OWNER: &str = "no owner can be trusted without user:";

pub fn check(
    cx: &PassContext,
    path: &Path,
    process_name: Option<&str>,
    user: Option<u32>,
    limits: &Limits,
) -> CheckResult {
    let file = path.display();
    let (text, meta) = match read_small(path) {
        Ok(t) => t,
        Err(ReadError::Missing) => {
            return CheckResult::down(format!("pid file {file} does not exist"))
        }
        Err(ReadError::NotRegular(kind)) => {
            return CheckResult::fail(format!(
                "pid file {file} is {kind}, not a regular file: it is not opened (a pid file is a regular file the service writes; remove what stands there)"
            ))
        }
        Err(ReadError::TooLarge(n)) => {
            return CheckResult::fail(format!("pid file {file} is too large ({n} bytes)"))
        }
        Err(ReadError::Io(e)) => {
            return CheckResult::fail(format!("cannot read pid file {file}: {e}"))
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
    if proc.kernel {
        return CheckResult::down(format!(
            "pid {pid} from {file} is the kernel thread {:?}, not a service (stale pid file, pid reused)",
            proc.comm
        ));
    }
    if let Some(name) = process_name {
        if !proc.is_named(name) {
            return CheckResult::down(format!(
                "pid {pid} from {file} is {:?}, not {name} (stale pid file, pid reused)",
                proc.name()
            ));
        }
    }
    let w = Writers::of(path, &meta);
    let owner = proc.uid;
    let shown =
        |u: Option<u32>| u.map_or_else(|| "an unknown owner".to_string(), crate::procs::uid_shown);
    if let (Some(others), 1) = (&w.others, pid) {
        return CheckResult::down(format!(
            "{file} names pid 1, the init process: not the service; the file is writable by {others}, who can put any pid in it"
        ));
    }
    if let (None, Some(others)) = (user, &w.others) {
        // root's file, but others can write it (or what the path names): it tells nothing
        // about whose process it names, and root's is any root process. Or two users can
        // change it (a directory of one, the file of another): either could have put it there
        let whose = if w.owner == 0 {
            Some("belongs to root but".to_string())
        } else if w.users.len() > 1 {
            Some(format!(
                "belongs to {} but",
                crate::procs::uid_shown(w.owner)
            ))
        } else {
            None
        };
        if let Some(whose) = whose {
            let hint = owner
                .and_then(|o| nix::unistd::User::from_uid(o.into()).ok().flatten())
                .map_or_else(|| "NAME".to_string(), |u| u.name);
            return CheckResult::fail(format!(
                "{file} {whose} is writable by {others}, who can put any pid in it: {NO_TRUSTED_OWNER}; say whose process the service is with user: (user: {hint} if pid {pid} ({:?}) is the service), or make the pid file and its directories writable by root and the service's user alone",
                proc.name()
            ));
        }
    }
    let owned = match (user, &w.others) {
        (Some(u), _) => owner == Some(u),
        (None, Some(_)) => owner == Some(w.owner),
        (None, None) => owner.is_some_and(crate::procs::is_service_owner),
    };
    if !owned {
        let want = match (user, &w.others) {
            (Some(u), _) => format!("{} (user:)", crate::procs::uid_shown(u)),
            (None, Some(others)) => format!(
                "{}, the owner of the pid file (which {others} can write)",
                crate::procs::uid_shown(w.owner),
            ),
            (None, None) => "root or a system account".to_string(),
        };
        let hint = if user.is_none() {
            match owner.and_then(|o| nix::unistd::User::from_uid(o.into()).ok().flatten()) {
                Some(u) => format!("; if it is the service, say so with user: {}", u.name),
                None => String::new(),
            }
        } else {
            String::new()
        };
        return CheckResult::down(format!(
            "pid {pid} from {file} ({:?}) runs as {}, not {want}: a look-alike, not the service (stale pid file, pid reused?){hint}",
            proc.name(),
            shown(owner)
        ));
    }
    let base = CheckResult {
        pid: Some(pid),
        ..CheckResult::ok()
    };
    resources::judge(cx, &[&proc], limits, base)
}

/// Who wrote the pid file, as far as can be told: its owner, and who other than root could
/// have written it (None: root alone).
struct Writers {
    /// The file's owner; the owner of the last symlink on the path another user made, when
    /// there is one (whoever made it chose which file the path names: any file holding a
    /// number).
    owner: u32,
    others: Option<String>,
    /// The users other than root who can change what the path names (owners of the file, of
    /// a directory on the way, of a symlink), each once.
    users: Vec<u32>,
}

impl Writers {
    /// The file itself (`m`, its fstat), every component of the path as given (a symlink
    /// another user made), and every directory above it, as given and as resolved: one owned
    /// by another user, or writable by a group or everyone without the sticky bit, lets them
    /// put another file (or a symlink to one, as a directory swapped for a symlink into a
    /// root-only directory) where the pid file is read. The rules the config itself is held
    /// to (a sticky `/tmp` above is no way in).
    fn of(path: &Path, m: &std::fs::Metadata) -> Writers {
        use std::os::unix::fs::MetadataExt;
        let mut w: Vec<String> = Vec::new();
        let mut add = |s: String| {
            if !w.contains(&s) {
                w.push(s);
            }
        };
        let mut owner = m.uid();
        let mut users: Vec<u32> = Vec::new();
        let mut user = |u: u32| {
            if u != 0 && !users.contains(&u) {
                users.push(u);
            }
        };
        let given = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut at = std::path::PathBuf::new();
        for c in given.components() {
            at.push(c);
            if let Ok(l) = std::fs::symlink_metadata(&at) {
                if l.file_type().is_symlink() && l.uid() != 0 {
                    owner = l.uid();
                    user(l.uid());
                    add(format!(
                        "{} (who made the symlink {})",
                        crate::procs::uid_shown(l.uid()),
                        at.display()
                    ));
                }
            }
        }
        for d in &files::dirs_above(path) {
            let Ok(dm) = std::fs::metadata(d) else {
                continue;
            };
            let mode = dm.mode();
            let sticky = mode & 0o1000 != 0;
            if dm.uid() != 0 {
                user(dm.uid());
                add(format!(
                    "{} (who owns the directory {})",
                    crate::procs::uid_shown(dm.uid()),
                    d.display()
                ));
            }
            if !sticky && mode & 0o020 != 0 && dm.gid() != 0 {
                add(format!(
                    "group gid {} (who may write in the directory {})",
                    dm.gid(),
                    d.display()
                ));
            }
            if !sticky && mode & 0o002 != 0 {
                add(format!(
                    "everyone (who may write in the directory {})",
                    d.display()
                ));
            }
        }
        if m.uid() != 0 {
            user(m.uid());
            add(crate::procs::uid_shown(m.uid()));
        }
        if m.mode() & 0o020 != 0 && m.gid() != 0 {
            add(format!("group gid {}", m.gid()));
        }
        if m.mode() & 0o002 != 0 {
            add("everyone".to_string());
        }
        Writers {
            owner,
            others: (!w.is_empty()).then(|| w.join(" and ")),
            users,
        }
    }
}

/// Read at most 64 bytes of the regular file at `path` (followed through symlinks), and its
/// fstat (who can write it). Nothing but a regular file is ever opened ([`files::open_regular`]):
/// a FIFO put where the pid file should be must not hang the pass, a symlink to a user's
/// terminal must not become root's controlling terminal, a device must not be opened.
fn read_small(path: &Path) -> Result<(String, std::fs::Metadata), ReadError> {
    use std::io::Read;
    let (f, meta) = files::open_regular(path, true)?;
    let mut buf = Vec::with_capacity(64);
    f.take(64)
        .read_to_end(&mut buf)
        .map_err(|e| ReadError::Io(os_error(&e)))?;
    Ok((String::from_utf8_lossy(&buf).into_owned(), meta))
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
        let r = check(&cx(), &fifo, None, None, &Limits::default());
        assert!(!r.is_ok());
        assert!(
            r.reason
                .contains("is a FIFO (named pipe), not a regular file"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn a_kernel_thread_is_never_the_service_and_pid_1_only_from_roots_own_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.pid");
        // pid 2 is kthreadd where the kernel's threads are visible
        if Proc::by_pid(2).is_some_and(|p| p.kernel) {
            std::fs::write(&f, "2\n").unwrap();
            let r = check(&cx(), &f, None, None, &Limits::default());
            assert!(r.reason.contains("is the kernel thread"), "{}", r.reason);
            assert_eq!(r.verdict, Verdict::NOT_RUNNING);
        }
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        // root's own file (0644): pid 1 may be a container's service
        std::fs::write(&f, "1\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let pid1 = Proc::by_pid(1).expect("pid 1");
        let r = check(&cx(), &f, None, None, &Limits::default());
        assert_eq!(
            r.is_ok(),
            pid1.uid == Some(0) && !pid1.kernel,
            "{}",
            r.reason
        );
        // the same file writable by everyone: anyone could have written that 1
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let r = check(&cx(), &f, None, None, &Limits::default());
        assert!(!r.is_ok());
        assert!(
            r.reason.contains(
                "names pid 1, the init process: not the service; the file is writable by everyone"
            ),
            "{}",
            r.reason
        );
    }

    #[test]
    fn a_symlink_another_user_made_is_their_pid_file() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        // root's own pid file (this test process, root) is fine read directly ...
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("root.pid");
        std::fs::write(&real, format!("{}\n", std::process::id())).unwrap();
        assert!(check(&cx(), &real, None, None, &Limits::default()).is_ok());
        // ... not through a symlink user nobody made: nobody's pid file names root's process
        let link = dir.path().join("svc.pid");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        nix::unistd::fchownat(
            None,
            &link,
            Some(nix::unistd::Uid::from_raw(65534)),
            None,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let r = check(&cx(), &link, None, None, &Limits::default());
        assert!(!r.is_ok());
        assert!(
            r.reason.contains(&format!("runs as uid 0 (root), not uid 65534 (nobody), the owner of the pid file (which uid 65534 (nobody) (who made the symlink {}) can write)", link.display())),
            "{}",
            r.reason
        );
    }

    #[test]
    fn a_pid_file_two_users_can_change_needs_user() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        // a directory of one user (nobody) holding a pid file of another (uid 65533): either
        // could have put it there
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        nix::unistd::chown(&run, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let f = run.join("svc.pid");
        std::fs::write(&f, format!("{}\n", std::process::id())).unwrap();
        nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(65533)), None).unwrap();
        let r = check(&cx(), &f, None, None, &Limits::default());
        assert!(!r.is_ok());
        assert!(r.reason.contains(NO_TRUSTED_OWNER), "{}", r.reason);
        assert!(r.reason.contains("belongs to uid 65533"), "{}", r.reason);
        // with user: it is judged: the process (this test, root) is root's
        let r = check(&cx(), &f, None, Some(0), &Limits::default());
        assert!(r.is_ok(), "{}", r.reason);
    }

    #[test]
    fn own_pid_is_alive_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("me.pid");
        std::fs::write(&f, format!("{}\n", std::process::id())).unwrap();
        let r = check(&cx(), &f, None, None, &Limits::default());
        assert!(r.is_ok(), "{}", r.reason);
        assert_eq!(r.pid, Some(std::process::id() as i32));
        let r = check(
            &cx(),
            &f,
            Some("surely-not-this-program"),
            None,
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
