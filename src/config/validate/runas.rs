//! `user:` and `group:` of exec actions, `on_give_up` and `command` checks: who the command
//! runs as, looked up in the user and group databases now, so that an unknown one is a config
//! error with its line (see `spawn::RunAs` for what they mean).

use super::Ctx;
use crate::config::raw::{GroupSpec, UserSpec};
use crate::spawn::{lookup_group, lookup_user, RunAs};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Who a command at `p` runs as. `Ok(None)`: neither key given (as the watchdog). `Err`: an
/// error was recorded.
pub(super) fn run_as(
    cx: &mut Ctx,
    p: &str,
    user: Option<&UserSpec>,
    group: Option<&GroupSpec>,
) -> Result<Option<RunAs>, ()> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let before = cx.issues.len();
    let account = user.and_then(|u| {
        let up = format!("{p}.user");
        let v = cx.expand(&up, &u.0)?;
        lookup_user(&v)
            .map_err(|e| {
                let e = cx.masked(&e);
                cx.err(&up, e)
            })
            .ok()
    });
    let grp = group.and_then(|g| {
        let gp = format!("{p}.group");
        let v = cx.expand(&gp, &g.0)?;
        lookup_group(&v)
            .map_err(|e| {
                let e = cx.masked(&e);
                cx.err(&gp, e)
            })
            .ok()
    });
    if cx.issues.len() > before {
        return Err(());
    }
    let key = if user.is_some() {
        format!("{p}.user")
    } else {
        format!("{p}.group")
    };
    match RunAs::new(account, grp) {
        Ok(r) => {
            if !cx.env.is_root {
                if let Err(e) = r.needs_switch() {
                    cx.warn(&key, format!("will fail to run: {e}"));
                }
            }
            Ok(Some(r))
        }
        Err(e) => {
            let e = cx.masked(&e);
            cx.err(&key, e);
            Err(())
        }
    }
}

/// As root: an exec action's `log_file` (`p`, the key) lies where another user than root and
/// the one the program runs as (`run_as`) could put something of theirs on its way: a
/// directory above it that user owns, or may write (everyone, or a group other than root's;
/// the sticky bit helps only above the file's own directory). The file is opened with no
/// symbolic link followed anywhere on its path, write-only, and must be a regular file with
/// one link (`files::open_append`), so no such user can make root open another file; but
/// the log may end up in a file of theirs, or not be used. The sticky bit of the directory
/// where an entry is created next (the file's, or the nearest existing one) does not help. A warning (the program still
/// starts). A symbolic link on the way is named too: the log is never opened through it.
pub(super) fn log_file_dirs(cx: &mut Ctx, key: &str, path: &Path, run_as: Option<&RunAs>) {
    if !cx.env.is_root {
        return;
    }
    let trusted = |uid: u32| uid == 0 || run_as.and_then(RunAs::uid) == Some(uid);
    let harm = "another user could put a file or a directory of theirs on the way to the log: the program's output could go to a file they read, or nowhere";
    let fix =
        "put log_file in a directory that only root (or the user the program runs as) can write";
    let given = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // where an entry of the path is created next: the file's directory, or the nearest one
    // that exists (another user could create the missing rest first)
    let first = given
        .ancestors()
        .skip(1)
        .find(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_ok())
        .map(Path::to_path_buf);
    for d in given.ancestors().skip(1) {
        if d.as_os_str().is_empty() {
            continue;
        }
        let Ok(l) = std::fs::symlink_metadata(d) else {
            continue;
        };
        let ds = cx.masked(&d.display().to_string());
        if l.file_type().is_symlink() {
            cx.warn(
                key,
                format!("{ds} is a symbolic link: no link is followed on the way to log_file (the program would start with its output to /dev/null); give the real path"),
            );
            continue;
        }
        let mode = l.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        let own_dir = first.as_deref() == Some(d);
        let open = own_dir || !sticky;
        if !trusted(l.uid()) {
            cx.warn(
                key,
                format!(
                    "directory {ds} is owned by uid {}: {harm}; fix: {fix}",
                    l.uid()
                ),
            );
        } else if mode & 0o002 != 0 && open {
            cx.warn(
                key,
                format!(
                    "directory {ds} is writable by everyone (mode {mode:04o}): {harm}; fix: {fix}"
                ),
            );
        } else if mode & 0o020 != 0 && l.gid() != 0 && open {
            cx.warn(
                key,
                format!(
                    "directory {ds} is writable by group {} (mode {mode:04o}): {harm}; fix: {fix}",
                    l.gid()
                ),
            );
        }
    }
}
