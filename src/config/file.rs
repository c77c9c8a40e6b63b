//! Reading the config file, and the files it names, without trusting what is at the path.
//!
//! - The config is opened non-blocking (a FIFO or a device cannot hang the open), must be a
//!   regular file (or a symlink to one) by `fstat` of what was opened, and is read with a size
//!   cap ([`MAX_CONFIG_BYTES`]): `/dev/zero`, a FIFO or a 40 MiB file is an error at once.
//! - Not UTF-8: the error says where (line and column of the first bad byte).
//! - As root, who else could have written the config is found out (the file, and every
//!   directory up to `/`, of the path as given and as resolved): whoever can change it runs
//!   commands as root. The caller decides what that means (`check`/`run` refuse, `test-config`
//!   warns).
//! - Files the config includes (`include:`) are read by the same rules ([`Role::Included`]),
//!   and so are the directories an include glob reads ([`dir_writable_by_others`]). A sticky
//!   world-writable directory (`/tmp`) is fine above a file we read (others cannot replace
//!   it), not as a directory a glob lists (others can add files to what it reads).

use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The largest config file read: a config of 5,000 targets weighs about 1 MiB, and loads in
/// well under a second.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// What a path that is not a regular file is, for messages: "a FIFO (named pipe)".
pub fn kind_of(m: &Metadata) -> &'static str {
    crate::files::kind(m.file_type())
}

/// The config's text and who else could change it.
pub struct ConfigFile {
    pub text: String,
    /// One message per way someone other than root could change the config (as root only;
    /// always empty for an included file: see [`included_writable_by_others`]).
    pub writable_by_others: Vec<String>,
    /// Device and inode: the same file reached by two paths is read once.
    pub id: (u64, u64),
    /// What `fstat` said of the file that was read.
    pub meta: Metadata,
}

/// Which file is read: the config given with `-c`, or one it includes. Only the messages
/// differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Config,
    Included,
}

/// Read the config at `path`. The error is the full message, starting with the path.
pub fn read(path: &Path) -> Result<ConfigFile, String> {
    read_as(path, Role::Config)
}

/// Read the config or an included file at `path` (see [`Role`]).
pub fn read_as(path: &Path, role: Role) -> Result<ConfigFile, String> {
    let shown = path.display();
    let what = match role {
        Role::Config => "config",
        Role::Included => "included file",
    };
    let cannot = |e: &std::io::Error| {
        match (e.kind(), role) {
        (std::io::ErrorKind::NotFound, Role::Config) => format!(
            "{shown}: config file not found: create it (the README's Configuration section shows one) or pass -c FILE"
        ),
        (std::io::ErrorKind::NotFound, Role::Included) => format!(
            "{shown}: cannot read included file: it is not there (a symlink to nothing, or it was removed while the config was read): remove it or fix the link"
        ),
        _ => format!("{shown}: cannot read {what}: {}", crate::util::os_error(e)),
    }
    };
    // nothing but a regular file is opened: no FIFO waited on, no device or terminal opened
    let (file, meta) = match crate::files::open_regular(path, true) {
        Ok(f) => f,
        Err(crate::files::ReadError::Missing) => {
            return Err(cannot(&std::io::ErrorKind::NotFound.into()))
        }
        Err(crate::files::ReadError::NotRegular(kind)) => {
            return Err(match role {
                Role::Config => format!(
                    "{shown}: cannot read config: is {kind}, not a regular file: give the path of the config file"
                ),
                Role::Included => format!(
                    "{shown}: cannot read included file: is {kind}, not a regular file: an include glob may only match regular files: move it away, or narrow the glob"
                ),
            })
        }
        Err(crate::files::ReadError::TooLarge(n)) => {
            return Err(format!("{shown}: cannot read {what}: too large ({n} bytes)"))
        }
        Err(crate::files::ReadError::Io(e)) => {
            // the package's config is root's only (0600): say how to read it
            let hint = if !nix::unistd::geteuid().is_root()
                && nix::unistd::access(path, nix::unistd::AccessFlags::R_OK)
                    == Err(nix::errno::Errno::EACCES)
            {
                " (it is readable by root only: run this as root, e.g. with sudo)"
            } else {
                ""
            };
            return Err(format!("{shown}: cannot read {what}: {e}{hint}"));
        }
    };
    let too_large = |size: u64| {
        format!(
            "{shown}: {what} is too large: {} bytes, more than the {} MiB a config file may have \
             (5,000 targets take about 1 MiB): is this the right file?",
            size,
            MAX_CONFIG_BYTES >> 20
        )
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(&e))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        // it grew while we read it
        return Err(too_large(bytes.len() as u64));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        format!(
            "{shown}: cannot read {what}: it is not UTF-8 text: byte 0x{:02x} is not UTF-8; save the file as UTF-8 (line {line}, column {column})",
            bytes.get(at).copied().unwrap_or_default()
        )
    })?;
    let writable_by_others = match role {
        Role::Config if nix::unistd::geteuid().is_root() => writable_by_others(path, &meta),
        _ => Vec::new(),
    };
    Ok(ConfigFile {
        text,
        writable_by_others,
        id: (meta.dev(), meta.ino()),
        meta,
    })
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(u)) => format!("uid {uid} ({})", u.name),
        _ => format!("uid {uid}"),
    }
}

fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(gid.into()) {
        Ok(Some(g)) => format!("group {} (gid {gid})", g.name),
        _ => format!("group gid {gid}"),
    }
}

/// Who else than root could change the file `path` itself (`file` is its fstat; `what`:
/// "the config", "the included file"): its owner, and its mode for everyone and its group.
fn file_writable_by_others(path: &Path, file: &Metadata, what: &str) -> Vec<String> {
    let mut out = Vec::new();
    let shown = path.display();
    let runs = "whoever can change it runs commands as root";
    let mode = file.mode() & 0o7777;
    if file.uid() != 0 {
        out.push(format!(
            "{shown}: {what} is owned by {}, not root: {runs}; fix: chown root {shown}",
            user_name(file.uid())
        ));
    }
    if mode & 0o002 != 0 {
        out.push(format!(
            "{shown}: {what} is writable by everyone (mode {mode:04o}): {runs}; fix: chmod go-w {shown}"
        ));
    }
    if mode & 0o020 != 0 && file.gid() != 0 {
        out.push(format!(
            "{shown}: {what} is writable by {} (mode {mode:04o}): {runs}; fix: chmod go-w {shown}",
            group_name(file.gid())
        ));
    }
    out
}

/// Who else than root could change the config `path` (already opened: `file` is its fstat):
/// the file itself, and every directory above it, of the path as given and as resolved
/// through symlinks. Each problem is one message naming the file or directory, what is wrong
/// and the fix.
pub fn writable_by_others(path: &Path, file: &Metadata) -> Vec<String> {
    let mut out = file_writable_by_others(path, file, "the config");
    let shown = path.display();
    let replace = "whoever can write there can replace the config, whose commands run as root";
    let chown_hint = ", or keep the config in a root-owned directory such as /etc/neon-watchdog";
    for d in &crate::files::dirs_above(path) {
        out.extend(dir_problems(
            &shown.to_string(),
            d,
            replace,
            chown_hint,
            Look::Above,
        ));
    }
    out
}

/// How a directory is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// A directory above a file that is read: with the sticky bit (`/tmp`), others may add
    /// entries but not rename or remove ours, so it is no way in.
    Above,
    /// A directory an include glob lists: whatever others add there, the glob takes (a file
    /// of theirs runs commands as root; a FIFO makes every `check` a config error, and
    /// monitoring stops). The sticky bit does not help.
    Listed,
    /// Only what [`Look::Listed`] finds beyond [`Look::Above`] (the directory was looked at
    /// as one above a file already).
    ListedSticky,
}

/// Who else than root could change directory `d`: one message each, starting with `prefix`.
/// `replace` says what that allows; `chown_hint` follows the owner's fix.
fn dir_problems(
    prefix: &str,
    d: &Path,
    replace: &str,
    chown_hint: &str,
    look: Look,
) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(m) = std::fs::metadata(d) else {
        return out;
    };
    let dm = m.mode() & 0o7777;
    let sticky = dm & 0o1000 != 0;
    // writable by others, as far as this look goes
    let counts = match look {
        Look::Above => !sticky,
        Look::Listed => true,
        Look::ListedSticky => sticky,
    };
    let ds = d.display();
    if m.uid() != 0 && look != Look::ListedSticky {
        out.push(format!(
            "{prefix}: directory {ds} is owned by {}, not root: {replace}; fix: chown root {ds}{chown_hint}",
            user_name(m.uid())
        ));
    }
    let how = if sticky {
        "; the sticky bit does not help: the include glob lists this directory, and takes what anyone adds to it"
    } else {
        ""
    };
    if dm & 0o002 != 0 && counts {
        out.push(format!(
            "{prefix}: directory {ds} is writable by everyone (mode {dm:04o}{}): {replace}{how}; fix: chmod go-w {ds}{}",
            if sticky { "" } else { ", no sticky bit" },
            if sticky { ", or keep included files in a directory of root's (e.g. /etc/neon-watchdog/conf.d)" } else { "" }
        ));
    }
    if dm & 0o020 != 0 && m.gid() != 0 && counts {
        out.push(format!(
            "{prefix}: directory {ds} is writable by {} (mode {dm:04o}): {replace}{how}; fix: chmod go-w {ds}",
            group_name(m.gid())
        ));
    }
    out
}

/// Who else than root could change the program `path` that the config runs as root (a check
/// command, an action, a notifier): the file (followed through symlinks) and every directory
/// above it, as given and as resolved, by the rules the config itself is held to. Empty when
/// it does not exist (the config's own warning says so).
pub fn program_writable_by_others(path: &Path) -> Vec<String> {
    let Ok(m) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let mut out = file_writable_by_others(path, &m, "the program");
    let shown = path.display().to_string();
    for d in &crate::files::dirs_above(path) {
        out.extend(dir_problems(
            &shown,
            d,
            "whoever can write there can replace the program, which runs as root",
            "",
            Look::Above,
        ));
    }
    out
}

const REPLACE_INCLUDED: &str =
    "whoever can write there can add or replace included files, whose commands run as root";

/// Like [`writable_by_others`], for a file the config includes (`file` is its fstat): the file
/// itself, and the directories above it (as given and as resolved) not yet in `seen` (the
/// main config's, and those of files and globs already looked at: each directory is reported
/// once).
pub fn included_writable_by_others(
    path: &Path,
    file: &Metadata,
    seen: &mut Vec<PathBuf>,
) -> Vec<String> {
    let mut out = file_writable_by_others(path, file, "the included file");
    let shown = path.display();
    for d in crate::files::dirs_above(path) {
        if !seen.contains(&d) {
            out.extend(dir_problems(
                &shown.to_string(),
                &d,
                REPLACE_INCLUDED,
                "",
                Look::Above,
            ));
            seen.push(d);
        }
    }
    out
}

/// The directories looked at so far, each reported once.
#[derive(Debug, Default)]
pub struct Seen {
    /// Looked at as a directory above a file ([`Look::Above`]) or as one a glob lists.
    pub dirs: Vec<PathBuf>,
    /// Looked at as a directory a glob lists ([`Look::Listed`]).
    pub listed: Vec<PathBuf>,
}

/// Who else than root could change directory `dir`, which the include glob `glob` lists (and
/// every directory above it, as given and as resolved), skipping those in `seen`: whoever can
/// write there can drop a file the glob matches. For `dir` itself, the sticky bit is no
/// excuse (see [`Look::Listed`]).
pub fn dir_writable_by_others(glob: &str, dir: &Path, seen: &mut Seen) -> Vec<String> {
    let mut out = Vec::new();
    let given = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let resolved = std::fs::canonicalize(dir).ok();
    let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
    for p in std::iter::once(given).chain(resolved) {
        for (n, d) in p.ancestors().enumerate() {
            if !d.as_os_str().is_empty() && !dirs.iter().any(|(x, _)| x == d) {
                dirs.push((d.to_path_buf(), n == 0));
            }
        }
    }
    let prefix = format!("include {glob:?}");
    for (d, listed) in dirs {
        let look = match (listed, seen.dirs.contains(&d)) {
            (true, _) if seen.listed.contains(&d) => continue,
            (true, false) => Look::Listed,
            (true, true) => Look::ListedSticky,
            (false, false) => Look::Above,
            (false, true) => continue,
        };
        out.extend(dir_problems(&prefix, &d, REPLACE_INCLUDED, "", look));
        if listed {
            seen.listed.push(d.clone());
        }
        if !seen.dirs.contains(&d) {
            seen.dirs.push(d);
        }
    }
    out
}

/// Who else than root (or the user we run as) could create entries where a file of ours
/// lives (the state file, the lock), before we do: the nearest existing directory on its
/// path (where the file, or the first missing directory we would create, goes), writable by
/// others with or without the sticky bit (a sticky `/tmp` or `/run/lock` lets anyone create a
/// name no one holds yet), or owned by another user; and every directory above it, as for the
/// config (writable by others without the sticky bit, or owned by another user), of the path
/// as given and as resolved. One message each, ending with `harm` (what a file planted there
/// does) and the fix (`fix`: where to put the file instead).
///
/// Each message says whether the file itself could be created first by another user (true;
/// the caller then keeps nothing of ours there: the lock moves to a safe path, the state is
/// not used), or only a missing directory of ours on the way, in a sticky directory (`/tmp`):
/// another user could create that directory first, but then it is theirs, which the next
/// load sees (where the file itself would be created in it, they could hold it without a
/// word). Either way only a warning: nothing here may stop the checks.
pub fn dir_open_to_others(path: &Path, harm: &str, fix: &str) -> Vec<(bool, String)> {
    let given = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(first) = given
        .ancestors()
        .skip(1)
        .find(|d| !d.as_os_str().is_empty() && std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
    else {
        return Vec::new();
    };
    let mut holders = vec![first.to_path_buf()];
    if let Ok(r) = std::fs::canonicalize(first) {
        if r != first {
            holders.push(r);
        }
    }
    // the file itself goes in `first`, or a directory of ours still to be created
    let direct = given.parent() == Some(first);
    let me = nix::unistd::geteuid().as_raw();
    let mut out = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for h in &holders {
        for (n, d) in h.ancestors().enumerate() {
            if d.as_os_str().is_empty() || seen.iter().any(|x| x == d) {
                continue;
            }
            seen.push(d.to_path_buf());
            let Ok(m) = std::fs::metadata(d) else {
                continue;
            };
            let mode = m.mode() & 0o7777;
            let sticky = mode & 0o1000 != 0;
            // where our entry is created, the sticky bit does not help: it only keeps others
            // from removing or renaming what is already there
            let holds = n == 0;
            let open = holds || !sticky;
            let ds = d.display();
            let note = if holds && sticky {
                "; the sticky bit does not help: anyone may create a name no one holds yet"
            } else {
                ""
            };
            if m.uid() != 0 && m.uid() != me {
                out.push((
                    true,
                    format!(
                        "directory {ds} is owned by {}, not root: {harm}; fix: {fix}",
                        user_name(m.uid())
                    ),
                ));
            }
            // a sticky directory where a directory of ours is still to be created
            let error = !(holds && sticky && !direct);
            let (harm, note) = if error {
                (harm, note)
            } else {
                (
                    "another user could create the missing directory on the way first (then it is theirs, which the next load sees: a state file there is not used, a lock there is taken elsewhere)",
                    "",
                )
            };
            if mode & 0o002 != 0 && open {
                out.push((
                    error,
                    format!(
                        "directory {ds} is writable by everyone (mode {mode:04o}): {harm}{note}; fix: {fix}"
                    ),
                ));
            }
            if mode & 0o020 != 0 && m.gid() != 0 && open {
                out.push((
                    error,
                    format!(
                        "directory {ds} is writable by {} (mode {mode:04o}): {harm}{note}; fix: {fix}",
                        group_name(m.gid())
                    ),
                ));
            }
        }
    }
    out
}

/// A path the config names for a file of ours (state_file, lock_file, metrics.textfile): if
/// something exists there that is not a regular file, what it is. Symlinks count as not
/// regular: we never write through one.
pub fn not_regular(path: &Path) -> Option<&'static str> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Some(kind_of(&m)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Where others may create entries, a file of ours could be created first by them: the
    /// directory it goes in (sticky or not), a missing one's nearest existing parent, a
    /// directory of another user's; above them, only what lets others rename the way (the
    /// tests run as root, in a root-owned temp directory).
    #[test]
    fn a_directory_where_others_can_create_our_file_first_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        chmod(d, 0o755);
        let open = |p: &Path| -> Vec<String> {
            dir_open_to_others(p, "HARM", "FIX")
                .into_iter()
                .map(|(error, m)| format!("{}{m}", if error { "" } else { "warning: " }))
                .collect()
        };
        // root's own, 0700: nothing
        std::fs::create_dir(d.join("own")).unwrap();
        chmod(&d.join("own"), 0o700);
        assert_eq!(open(&d.join("own/x.lock")), Vec::<String>::new());
        assert_eq!(
            open(&d.join("own/missing/deeper/x.lock")),
            Vec::<String>::new()
        );
        // sticky 1777 (/run/lock): the sticky bit does not help where the file is created
        let sticky = d.join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        chmod(&sticky, 0o1777);
        let want = vec![format!(
            "directory {} is writable by everyone (mode 1777): HARM; the sticky bit does not help: anyone may create a name no one holds yet; fix: FIX",
            sticky.display()
        )];
        assert_eq!(open(&sticky.join("x.lock")), want);
        // where a missing directory of ours would be created: whoever creates it first owns
        // it, which is refused loudly at the next load (below)
        assert_eq!(
            open(&sticky.join("sub/x.lock")),
            vec![format!(
                "warning: directory {} is writable by everyone (mode 1777): another user could create the missing directory on the way first (then it is theirs, which the next load sees: a state file there is not used, a lock there is taken elsewhere); fix: FIX",
                sticky.display()
            )]
        );
        // but above a directory of root's, it does (others cannot rename it away)
        std::fs::create_dir(sticky.join("root")).unwrap();
        chmod(&sticky.join("root"), 0o700);
        assert_eq!(open(&sticky.join("root/x.lock")), Vec::<String>::new());
        // a directory of another user's, even one only they can write
        let theirs = sticky.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chmod(&theirs, 0o700);
        nix::unistd::chown(&theirs, Some(65534.into()), None).unwrap();
        let got = open(&theirs.join("x.lock"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with(&format!(
                "directory {} is owned by uid 65534",
                theirs.display()
            )),
            "{got:?}"
        );
        // group-writable, not root's group
        let group = d.join("group");
        std::fs::create_dir(&group).unwrap();
        nix::unistd::chown(&group, None, Some(65534.into())).unwrap();
        chmod(&group, 0o770);
        let got = open(&group.join("x.lock"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("(mode 0770): HARM; fix: FIX"), "{got:?}");
    }
}
