//! Files the watchdog writes, opened so that nothing someone else planted can redirect, block
//! or replace them. It runs as root: whoever can create entries in the state directory (or the
//! metrics textfile's) must not be able to make it write, truncate, chmod, rename or hang on
//! any other file.
//!
//! - New files are created with O_EXCL under an unpredictable name (`tempfile`), written,
//!   fsynced and renamed over the target in the same directory; a rename replaces a directory
//!   entry, so it never writes through a symlink or a hard link.
//! - Files opened in place (the lock) are opened with O_NOFOLLOW | O_NONBLOCK, and must be a
//!   regular file with one link, owned by us.
//! - Reads are non-blocking and capped (a FIFO never blocks, /dev/zero is never read forever),
//!   and open nothing but a regular file ([`open_regular`]: `O_PATH`, `fstat`, then the
//!   same inode through `/proc/self/fd`): no terminal becomes ours, no device sees an open.
//! - Files opened in place never take a terminal planted there as ours (`O_NOCTTY`).
//! - A path of ours that exists and is not a regular file is an error, never something to
//!   replace or move aside.
//! - Modes never follow the umask: directories we create are 0700 (0755 where another user
//!   must read, as node exporter reads the metrics textfile), files get exactly their mode.

use crate::util::os_error;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a file type is, in words, for messages: "a FIFO (named pipe)", "a directory", "a
/// symbolic link"...
pub fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Err when `path` exists and is not a regular file (a symlink counts as not regular: it is
/// not followed). Ok when it is a regular file or does not exist.
pub fn regular_or_missing(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => Err(format!(
            "{} is {}, not a regular file",
            path.display(),
            kind(m.file_type())
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot inspect {}: {}",
            path.display(),
            os_error(&e)
        )),
    }
}

/// The owner (uid) of what stands at `path` (not followed), if anything does.
pub fn owner(path: &Path) -> Option<u32> {
    std::fs::symlink_metadata(path).ok().map(|m| m.uid())
}

/// Err when a directory on the way to `path` is a symlink someone else could have planted:
/// one owned by neither this user nor root (the rule of the kernel's protected_symlinks). A
/// root-owned link such as /var/run -> /run is followed as usual.
pub fn no_planted_links(path: &Path) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    let mut at = PathBuf::new();
    for c in path.components() {
        at.push(c);
        if let Ok(m) = std::fs::symlink_metadata(&at) {
            if m.file_type().is_symlink() && m.uid() != me && m.uid() != 0 {
                return Err(format!(
                    "{} is a symbolic link owned by uid {}: it is not followed (someone else could have put it there)",
                    at.display(),
                    m.uid()
                ));
            }
        }
    }
    Ok(())
}

/// The directory `path` lives in ("." for a bare name).
pub fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Create `dir` (and missing parents) with `mode` whatever the umask; an existing directory is
/// left as it is.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<(), String> {
    no_planted_links(dir)?;
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(_) => {}
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {}", dir.display(), os_error(&e)))?;
    // the umask may have taken bits away; no more than `mode`, never more
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode));
    Ok(())
}

/// Replace `path` with `data`, the new file with exactly `mode`: a fresh temp file (O_EXCL,
/// random name) in the same directory, fsync, rename, fsync of the directory. A missing
/// directory is created with `dir_mode`. Refuses to replace anything but a regular file.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32, dir_mode: u32) -> Result<(), String> {
    let dir = parent(path);
    ensure_dir(&dir, dir_mode)?;
    let held = HeldDir::open(&dir);
    write_atomic_in(&held, &dir, &file_name(path), data, mode)
        .map_err(|e| e.replace(&held.via.display().to_string(), &dir.display().to_string()))
}

/// [`write_atomic`] in a directory already held open (`shown`: its path, for messages).
fn write_atomic_in(
    held: &HeldDir,
    shown: &Path,
    name: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), String> {
    let path = held.via.join(name);
    regular_or_missing(&path).map_err(|e| format!("{e}; it is left alone"))?;
    let tmp = filled_temp(&held.via, name, data, mode).map_err(|e| {
        e.replace(
            &held.via.display().to_string(),
            &shown.display().to_string(),
        )
    })?;
    tmp.persist(&path).map_err(|e| os_error(&e.error))?;
    sync_dir(&held.via);
    remove_stale_temps(&held.via, name);
    Ok(())
}

/// A directory held open while a file is written in it: its entries are reached through
/// `/proc/self/fd/N/`, so whoever owns a directory on the way and swaps it for a link after it
/// was opened cannot send the temp file, the rename or the clean-up of stale temps elsewhere
/// (checking the path and then using it again would leave that moment open). Opened with no
/// link followed; a path with a link on the way (root's or ours: [`ensure_dir`] refused any
/// other) is opened as usual. Without /proc, the path itself is used.
struct HeldDir {
    _fd: Option<File>,
    via: PathBuf,
}

impl HeldDir {
    fn open(dir: &Path) -> HeldDir {
        use nix::fcntl::OFlag;
        use std::os::fd::AsRawFd;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let fd = match open_no_links(dir, flags, 0) {
            Ok(f) => Some(f),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
                .open(dir)
                .ok(),
            Err(_) => None,
        };
        match fd {
            Some(f) => {
                let via = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
                if std::fs::metadata(&via).is_ok_and(|m| m.is_dir()) {
                    return HeldDir { _fd: Some(f), via };
                }
                HeldDir {
                    _fd: None,
                    via: dir.to_path_buf(),
                }
            }
            None => HeldDir {
                _fd: None,
                via: dir.to_path_buf(),
            },
        }
    }
}

/// Create `path` with `data` and exactly `mode`, only if nothing stands there yet: a fresh
/// temp file (O_EXCL, random name) in the same directory, filled and fsynced, then given its
/// name without replacing anything (`renameat2(RENAME_NOREPLACE)`, or link + unlink). Whatever
/// exists at `path` (a file, a symlink, even a dangling one, anything) is left exactly as it
/// is, and nothing is followed: `Ok(false)`. `Ok(true)`: created. A missing directory is
/// created with `dir_mode`.
pub fn create_new(path: &Path, data: &[u8], mode: u32, dir_mode: u32) -> Result<bool, String> {
    let dir = parent(path);
    ensure_dir(&dir, dir_mode)?;
    let held = HeldDir::open(&dir);
    let name = file_name(path);
    let tmp = filled_temp(&held.via, &name, data, mode)
        .map_err(|e| e.replace(&held.via.display().to_string(), &dir.display().to_string()))?;
    match tmp.persist_noclobber(held.via.join(&name)) {
        Ok(_) => {
            sync_dir(&held.via);
            Ok(true)
        }
        // the temp file is removed when the error is dropped
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(format!(
            "cannot create {}: {}",
            path.display(),
            os_error(&e.error)
        )),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A new temp file `.NAME.tmp-*` in `dir` (O_EXCL, random name) holding `data`, with exactly
/// `mode`, fsynced. Removed when dropped unless persisted.
fn filled_temp(
    dir: &Path,
    name: &str,
    data: &[u8],
    mode: u32,
) -> Result<tempfile::NamedTempFile, String> {
    let err = |e: std::io::Error| os_error(&e);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| {
            // tempfile wraps the OS error with the path; say it our way
            let os = e.raw_os_error().map(std::io::Error::from_raw_os_error);
            format!(
                "cannot create a file in {}: {}",
                dir.display(),
                os.map_or_else(|| e.kind().to_string(), |o| os_error(&o))
            )
        })?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    tmp.write_all(data).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    Ok(tmp)
}

/// fsync a directory, so a rename or link in it survives a crash (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A writer killed between creating its temp file and the rename leaves `.NAME.tmp-*`
/// behind; the next successful write (under the lock) clears them. Unlinking removes the entry
/// itself, whatever it is: nothing is followed.
fn remove_stale_temps(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Why a read gave nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    Missing,
    /// Exists, but is not a regular file (the text says what it is); never read.
    NotRegular(String),
    /// Larger than the cap.
    TooLarge(u64),
    Io(String),
}

/// Every directory above `path`, up to `/`, of the path as given and as resolved through
/// symlinks (given first).
pub fn dirs_above(path: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    let given = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let resolved = std::fs::canonicalize(path).ok();
    for p in std::iter::once(given).chain(resolved) {
        for d in p.ancestors().skip(1) {
            if !d.as_os_str().is_empty() && !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
    }
    dirs
}

/// Open the regular file at `path` to read it, without ever opening anything else: the path
/// is first opened with `O_PATH` (which opens no device, waits on no FIFO and makes no
/// terminal ours), what it names is checked with `fstat`, and only a regular file is then
/// opened for reading, through `/proc/self/fd/N`: the very inode that was checked, whatever
/// was put at the path in between, with `O_NOCTTY | O_NONBLOCK`. A plain open of a symlink to
/// another user's pty would make that terminal root's controlling one (its ^C, its SIGHUP),
/// and the open of a device node is the driver's to act on (`/dev/watchdog` arms a timer).
/// With `follow` false a symlink is refused (not followed), as anything else not regular.
pub fn open_regular(path: &Path, follow: bool) -> Result<(File, std::fs::Metadata), ReadError> {
    let mut flags = nix::libc::O_PATH | nix::libc::O_CLOEXEC;
    if !follow {
        flags |= nix::libc::O_NOFOLLOW;
    }
    // O_PATH ignores the access mode; std still wants one
    let at = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path);
    let at = match at {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(ReadError::NotRegular(if follow {
                "a symbolic link loop".into()
            } else {
                "a symbolic link".into()
            }))
        }
        Err(e) => return Err(ReadError::Io(os_error(&e))),
    };
    let m = at.metadata().map_err(|e| ReadError::Io(os_error(&e)))?;
    if !m.is_file() {
        return Err(ReadError::NotRegular(kind(m.file_type()).into()));
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&at);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{fd}"))
        .map_err(|e| {
            ReadError::Io(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{} (reopening the checked file through /proc/self/fd: is /proc mounted?)",
                    os_error(&e)
                )
            } else {
                // permission denied and the like: the file's own answer
                os_error(&e)
            })
        })?;
    let again = f.metadata().map_err(|e| ReadError::Io(os_error(&e)))?;
    if (again.dev(), again.ino()) != (m.dev(), m.ino()) || !again.is_file() {
        return Err(ReadError::Io("the file changed while it was opened".into()));
    }
    Ok((f, again))
}

/// Read the regular file at `path`, at most `cap` bytes, opened by [`open_regular`]: nothing
/// but a regular file is ever opened (no FIFO waited on, no device or terminal opened). With
/// `follow` false a symlink is refused too.
pub fn read_capped(path: &Path, cap: u64, follow: bool) -> Result<Vec<u8>, ReadError> {
    let (f, m) = open_regular(path, follow)?;
    if m.len() > cap {
        return Err(ReadError::TooLarge(m.len()));
    }
    let mut buf = Vec::with_capacity(m.len() as usize);
    // one more byte than the cap: a file that grew since the fstat is still caught
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ReadError::Io(os_error(&e)))?;
    if buf.len() as u64 > cap {
        return Err(ReadError::TooLarge(buf.len() as u64));
    }
    Ok(buf)
}

/// Open (creating with `mode` if missing) a file to keep in place, such as the lock: no
/// symlink followed, no FIFO waited on; it must be a regular file with a single link.
/// Read-write if possible (then it must be ours, and one writable by group or others is
/// narrowed to `mode`), else read-only (an existing file we may not write, as in a read-only
/// state directory: still good for a lock, and never written), if it is ours or root's.
/// Another user's file is never used, even read-only: in a directory where others may create
/// files (`/tmp`, `/run/lock`), it is theirs to hold locked (as root, fs.protected_regular
/// refuses the read-write open of it, which led to the read-only one before).
pub fn open_in_place(path: &Path, mode: u32) -> Result<File, String> {
    let mut rw = std::fs::OpenOptions::new();
    rw.read(true).write(true).create(true);
    let (file, writable) = match open_nofollow(path, &mut rw, mode) {
        Ok(f) => (f, true),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::EROFS | nix::libc::EACCES | nix::libc::EPERM)
            ) =>
        {
            let f = open_nofollow(path, std::fs::OpenOptions::new().read(true), mode)
                .map_err(|_| opening(path, &e))?;
            (f, false)
        }
        Err(e) => return Err(opening(path, &e)),
    };
    let m = vet(&file, path, writable)?;
    if !writable && m.uid() != 0 {
        vet(&file, path, true)?;
    }
    if writable && m.mode() & 0o022 != 0 {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
    }
    Ok(file)
}

/// What a file opened by [`open_append`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    /// A file of ours that holds a command's raw output (in the state directory): read back
    /// (opened read + append), it must belong to us, and is made exactly the mode given
    /// whatever its old one.
    Ours,
    /// A file the user named (an exec action's `log_file`), handed to a program that may run
    /// as another user: opened write-only (the program cannot read what was in it), through a
    /// path with no symbolic link anywhere (see [`open_no_links`]); an existing file keeps its
    /// mode (a log set up for a group of readers).
    Theirs,
}

/// Open `path` to append to it, creating it with `mode`: no symlink followed, no FIFO waited
/// on, a regular file with one link (a second name could be anywhere). See [`Append`] for the
/// two uses. The descriptor is blocking.
pub fn open_append(path: &Path, mode: u32, what: Append) -> Result<File, String> {
    let file = match what {
        Append::Ours => {
            let mut opts = std::fs::OpenOptions::new();
            opts.read(true).append(true).create(true);
            open_nofollow(path, &mut opts, mode).map_err(|e| opening(path, &e))?
        }
        Append::Theirs => {
            use nix::fcntl::OFlag;
            open_no_links(
                path,
                OFlag::O_WRONLY
                    | OFlag::O_APPEND
                    | OFlag::O_CREAT
                    | OFlag::O_NONBLOCK
                    | OFlag::O_NOCTTY,
                mode,
            )
            .map_err(|e| opening_no_links(path, &e))?
        }
    };
    let ours = what == Append::Ours;
    vet(&file, path, ours)?;
    if ours {
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| opening(path, &e))?;
    }
    // opened non-blocking only so that a FIFO could not hang the open
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    if let Ok(flags) = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL) {
        let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        flags.remove(nix::fcntl::OFlag::O_NONBLOCK);
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags));
    }
    Ok(file)
}

/// Open `path` with `flags` (and `mode` if it creates the file) without following a symbolic
/// link anywhere on it: not the file (as `O_NOFOLLOW` alone), nor any directory on the way,
/// even one owned by root (`/var/run`). Root opening a path under a directory another user
/// owns must not be sent elsewhere by a link that user puts in place of a directory: the
/// descriptor would reach a root-only file. `openat2(RESOLVE_NO_SYMLINKS)` (Linux 5.6);
/// without it, the path is walked a directory at a time, each opened with `O_NOFOLLOW`. A
/// link anywhere: `ELOOP`. Close-on-exec. A link even root's own (`/var/run`) is refused: the
/// caller says to give the real path.
pub fn open_no_links(path: &Path, flags: nix::fcntl::OFlag, mode: u32) -> std::io::Result<File> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    use std::os::fd::FromRawFd;
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let how = OpenHow::new()
        .flags(flags)
        .mode(nix::sys::stat::Mode::from_bits_truncate(mode))
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match nix::fcntl::openat2(nix::libc::AT_FDCWD, path, how) {
        // SAFETY: a descriptor just opened, owned by nothing else
        Ok(fd) => Ok(unsafe { File::from_raw_fd(fd) }),
        // no openat2 (before Linux 5.6), or a seccomp filter that refuses it with EPERM (older
        // container runtimes): the walk is as strict; a real EPERM comes back from it too
        Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM) => {
            open_walking(path, flags, mode)
        }
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// [`open_no_links`] without openat2: each directory on the way opened with `O_PATH |
/// O_DIRECTORY | O_NOFOLLOW` from the one before, then the file with `O_NOFOLLOW` from the
/// last.
fn open_walking(path: &Path, flags: nix::fcntl::OFlag, mode: u32) -> std::io::Result<File> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Component;
    let own = |fd: i32| {
        // SAFETY: a descriptor just opened, owned by nothing else
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = own(openat(None, start, dir_flags, Mode::empty())?);
    let comps: Vec<Component> = path.components().collect();
    let Some((Component::Normal(last), on_the_way)) = comps.split_last() else {
        return Err(std::io::Error::from_raw_os_error(nix::libc::EISDIR));
    };
    for c in on_the_way {
        let name: &std::ffi::OsStr = match c {
            Component::Normal(n) => n,
            Component::ParentDir => "..".as_ref(),
            _ => continue,
        };
        match openat(Some(dir.as_raw_fd()), name, dir_flags, Mode::empty()) {
            Ok(fd) => dir = own(fd),
            // O_DIRECTORY | O_NOFOLLOW on a symlink says "not a directory": say what it is
            Err(nix::errno::Errno::ENOTDIR)
                if nix::sys::stat::fstatat(
                    Some(dir.as_raw_fd()),
                    name,
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFLNK) =>
            {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ELOOP))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let fd = openat(
        Some(dir.as_raw_fd()),
        *last,
        flags,
        Mode::from_bits_truncate(mode),
    )?;
    Ok(File::from(own(fd)))
}

fn open_nofollow(path: &Path, opts: &mut std::fs::OpenOptions, mode: u32) -> std::io::Result<File> {
    opts.mode(mode)
        .custom_flags(
            nix::libc::O_NOFOLLOW
                | nix::libc::O_NONBLOCK
                | nix::libc::O_NOCTTY
                | nix::libc::O_CLOEXEC,
        )
        .open(path)
}

/// Why `path` could not be opened, in words.
fn opening(path: &Path, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        format!(
            "{} is a symbolic link, not a regular file; it is not followed (remove it)",
            path.display()
        )
    } else {
        format!("cannot open {}: {}", path.display(), os_error(e))
    }
}

/// Why `path` could not be opened through [`open_no_links`], in words.
fn opening_no_links(path: &Path, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        format!(
            "{} is a symbolic link, or a directory on its way is: no link is followed there (another user could have swapped one in); give the real path, without symbolic links",
            path.display()
        )
    } else {
        format!("cannot open {}: {}", path.display(), os_error(e))
    }
}

/// What was opened at `path` must be a regular file with one link, and with `ours`, ours.
fn vet(file: &File, path: &Path, ours: bool) -> Result<std::fs::Metadata, String> {
    let m = file
        .metadata()
        .map_err(|e| format!("cannot inspect {}: {}", path.display(), os_error(&e)))?;
    if !m.is_file() {
        return Err(format!(
            "{} is {}, not a regular file (remove it)",
            path.display(),
            kind(m.file_type())
        ));
    }
    if m.nlink() != 1 {
        return Err(format!(
            "{} has {} hard links: it may be another file planted here; it is not used (remove it)",
            path.display(),
            m.nlink()
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if ours && m.uid() != me {
        return Err(format!(
            "{} belongs to uid {}, not to this user (uid {me}); it is not used (remove it)",
            path.display(),
            m.uid()
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory on the way swapped for a link after it was opened (the moment between a
    /// check of the path and its use) sends nothing elsewhere: the temp file, the rename and
    /// the clean-up of stale temps all happen in the directory that was opened.
    #[test]
    fn a_directory_swapped_for_a_link_after_it_was_opened_gets_the_write_not_the_link() {
        let d = tempfile::tempdir().unwrap();
        let (sub, moved, victim) = (
            d.path().join("sub"),
            d.path().join("moved"),
            d.path().join("victim"),
        );
        std::fs::create_dir(&sub).unwrap();
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join(".f.tmp-stale"), "victim's").unwrap();
        let held = HeldDir::open(&sub);
        assert!(
            held.via.starts_with("/proc/self/fd"),
            "{}",
            held.via.display()
        );
        std::fs::rename(&sub, &moved).unwrap();
        std::os::unix::fs::symlink(&victim, &sub).unwrap();
        write_atomic_in(&held, &sub, "f", b"data\n", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(moved.join("f")).unwrap(), "data\n");
        assert!(!victim.join("f").exists(), "written through the link");
        assert!(
            victim.join(".f.tmp-stale").exists(),
            "a file of the link's target removed"
        );
        // with the path checked and used again, it would have gone to the victim: the path
        // now leads there
        assert!(sub.join(".f.tmp-stale").exists());
    }
    use std::os::unix::fs::symlink;

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn write_atomic_never_writes_through_planted_links() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let before = mode_of(&victim);
        let path = dir.path().join("state.json");
        // the temp names of old: .state.json.tmp-PID for the next pids
        let me = std::process::id();
        for pid in me.saturating_sub(5)..me + 200 {
            let _ = symlink(&victim, dir.path().join(format!(".state.json.tmp-{pid}")));
        }
        write_atomic(&path, b"{}", 0o600, 0o700).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(mode_of(&victim), before);
        let m = std::fs::symlink_metadata(&path).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
    }

    #[test]
    fn create_new_never_replaces_nor_follows_what_stands_there() {
        let dir = tempfile::tempdir().unwrap();
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let path = dir.path().join("etc/neon/config.yml");
        let r = create_new(&path, b"fresh", 0o600, 0o755);
        nix::sys::stat::umask(old);
        assert_eq!(r, Ok(true));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fresh");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&dir.path().join("etc/neon")), 0o755);
        // an existing file keeps its bytes, its mode and its inode
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let ino = std::fs::metadata(&path).unwrap().ino();
        assert_eq!(create_new(&path, b"other", 0o600, 0o755), Ok(false));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fresh");
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), ino);
        // a symlink, dangling or not, is neither replaced nor followed
        let victim = dir.path().join("victim");
        let link = dir.path().join("link.yml");
        symlink(&victim, &link).unwrap();
        assert_eq!(create_new(&link, b"x", 0o600, 0o755), Ok(false));
        assert!(!victim.exists(), "wrote through a dangling symlink");
        std::fs::write(&victim, "precious").unwrap();
        assert_eq!(create_new(&link, b"x", 0o600, 0o755), Ok(false));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // no temp file is left behind
        let names: Vec<_> = std::fs::read_dir(dir.path().join("etc/neon"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.yml")]);
    }

    #[test]
    fn write_atomic_replaces_only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("state.json");
        symlink(&victim, &link).unwrap();
        let e = write_atomic(&link, b"{}", 0o600, 0o700).unwrap_err();
        assert!(e.contains("is a symbolic link, not a regular file"), "{e}");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = write_atomic(&fifo, b"{}", 0o600, 0o700).unwrap_err();
        assert!(e.contains("is a FIFO"), "{e}");
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
    }

    #[test]
    fn modes_do_not_follow_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let path = dir.path().join("a/b/state.json");
        let r = write_atomic(&path, b"{}", 0o600, 0o700);
        nix::sys::stat::umask(old);
        r.unwrap();
        assert_eq!(mode_of(&dir.path().join("a")), 0o700);
        assert_eq!(mode_of(&dir.path().join("a/b")), 0o700);
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn reads_never_block_nor_run_away() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            read_capped(&fifo, 1024, true),
            Err(ReadError::NotRegular("a FIFO (named pipe)".into()))
        );
        let zero = dir.path().join("zero");
        symlink("/dev/zero", &zero).unwrap();
        assert_eq!(
            read_capped(&zero, 1024, false),
            Err(ReadError::NotRegular("a symbolic link".into()))
        );
        assert_eq!(
            read_capped(&zero, 1024, true),
            Err(ReadError::NotRegular("a character device".into()))
        );
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        assert_eq!(
            read_capped(&big, 1024, true),
            Err(ReadError::TooLarge(2048))
        );
        assert_eq!(read_capped(&big, 4096, true).map(|b| b.len()), Ok(2048));
        assert_eq!(
            read_capped(&dir.path().join("none"), 10, true),
            Err(ReadError::Missing)
        );
    }

    #[test]
    fn a_directory_link_someone_else_planted_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim_dir = dir.path().join("victim");
        std::fs::create_dir(&victim_dir).unwrap();
        std::fs::write(victim_dir.join("neon.prom"), "old").unwrap();
        std::fs::write(victim_dir.join(".neon.prom.tmp-keepme"), "keep").unwrap();
        let link = dir.path().join("m");
        symlink(&victim_dir, &link).unwrap();
        // planted by another user (the tests run as root: give the link away)
        nix::unistd::fchownat(
            None,
            &link,
            Some(nix::unistd::Uid::from_raw(65534)),
            None,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let e = write_atomic(&link.join("neon.prom"), b"new", 0o644, 0o755).unwrap_err();
        assert!(e.contains("symbolic link owned by uid 65534"), "{e}");
        assert_eq!(
            std::fs::read_to_string(victim_dir.join("neon.prom")).unwrap(),
            "old"
        );
        assert!(victim_dir.join(".neon.prom.tmp-keepme").exists());
        // a link of our own (or root's, as /var/run) is followed as usual
        let mine = dir.path().join("mine");
        symlink(&victim_dir, &mine).unwrap();
        write_atomic(&mine.join("neon.prom"), b"new", 0o644, 0o755).unwrap();
        assert_eq!(
            std::fs::read_to_string(victim_dir.join("neon.prom")).unwrap(),
            "new"
        );
    }

    /// A log file someone else's directory leads to: a link in place of a directory on the
    /// way (a user who owns `appdir` swaps `logs` for a link to a root-only directory) is not
    /// followed, by openat2 nor by the walk without it, and the file is opened write-only.
    #[test]
    fn no_link_on_the_way_to_a_log_file_is_followed() {
        use nix::fcntl::OFlag;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::create_dir(&secret).unwrap();
        std::fs::write(secret.join("app.log"), "root only\n").unwrap();
        let appdir = dir.path().join("appdir");
        std::fs::create_dir(&appdir).unwrap();
        symlink(&secret, appdir.join("logs")).unwrap();
        let path = appdir.join("logs/app.log");
        let e = open_append(&path, 0o600, Append::Theirs).unwrap_err();
        assert!(e.contains("a directory on its way is"), "{e}");
        let flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT;
        let e = open_walking(&path, flags | OFlag::O_NOFOLLOW, 0o600).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::ELOOP));
        assert_eq!(
            std::fs::read_to_string(secret.join("app.log")).unwrap(),
            "root only\n"
        );
        // a real directory: created, write-only, appended to
        std::fs::remove_file(appdir.join("logs")).unwrap();
        std::fs::create_dir(appdir.join("logs")).unwrap();
        let mut f = open_append(&path, 0o640, Append::Theirs).unwrap();
        let mut buf = [0u8; 1];
        assert!(f.read(&mut buf).is_err(), "a log file is opened write-only");
        f.write_all(b"one\n").unwrap();
        let mut g = open_walking(&path, flags | OFlag::O_NOFOLLOW, 0o600).unwrap();
        g.write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert!(g.read(&mut buf).is_err());
    }

    #[test]
    fn in_place_files_must_be_ours_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("x.lock");
        symlink(&victim, &link).unwrap();
        let e = open_in_place(&link, 0o600).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        let hard = dir.path().join("y.lock");
        std::fs::hard_link(&victim, &hard).unwrap();
        let e = open_in_place(&hard, 0o600).unwrap_err();
        assert!(e.contains("2 hard links"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let fresh = dir.path().join("z.lock");
        open_in_place(&fresh, 0o600).unwrap();
        assert_eq!(mode_of(&fresh), 0o600);
    }
}
