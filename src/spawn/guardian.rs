//! The guardian: a small process forked from the watchdog that kills the process groups of
//! the commands still running when the watchdog dies, however it dies (SIGKILL from the OOM
//! killer, or from systemd after TimeoutStartSec with KillMode=process).
//!
//! PR_SET_PDEATHSIG (see `die_with_us`) only reaches the watchdog's direct child: in
//! `sh -c "a | b"` the shell dies, `a` and `b` run on under PID 1. Nothing in the kernel kills
//! a process group when its leader's parent dies, so a process outside the watchdog has to.
//!
//! How: the watchdog holds the write end of a pipe, the guardian the read end. The watchdog
//! writes "watch pgid" when it starts a command whose group must not outlive it (checks,
//! systemctl, notification and give-up commands; never exec actions, whose group may hold a
//! daemon left on purpose) and "unwatch pgid" once the group is cleaned up. When the watchdog
//! is gone, however it went, the kernel closes its end: the guardian reads EOF, SIGKILLs every
//! group still watched, and exits. A normal exit has nothing watched; the watchdog then closes
//! its end and reaps the guardian (libc `atexit`), so no zombie is left with PID 1.
//!
//! Started lazily by the first command that needs it; one at a time. A one-shot pass lets it
//! go once its checks are done (it exits while the pass saves its state; a notifier or
//! give-up command later in the pass starts another). It reads its pipe in batches (see
//! [`guard`]). It ignores the signals a terminal or a service manager sends to stop the
//! watchdog (it must outlive the watchdog by a moment to do its job) and leaves on EOF. The
//! pipe's write end is close-on-exec: no command inherits it past its exec, so no command can
//! hold the guardian's EOF back.
//!
//! The watchdog never waits for it: its end of the pipe is non-blocking. A guardian that stops
//! reading (SIGSTOP, a cgroup freezer) lets its pipe fill (8,192 records, about 4,000
//! commands); the next record that does not fit ([`Told::Full`]) makes the watchdog replace
//! it: a new guardian is forked and told of every group still watched, and the stuck one is
//! SIGKILLed (it never gets to run its EOF sweep) and reaped once it is gone. Before, the
//! write blocked under the registry lock and every thread of the pass with it, for good.
//!
//! It shows what it is: `comm` is `neon-wd-guard` (`ps -o comm`, `pgrep`), and its command
//! line (`ps`, `systemctl status`, which read /proc/PID/cmdline) reads `neon-watchdog:
//! guardian of PID N`, the way sshd and PostgreSQL name their helpers: the forked child
//! overwrites its own copy of the argv area (see [`Title`]). Chosen over PR_SET_MM_ARG_START
//! (needs CAP_SYS_RESOURCE, and the kernel checks the order of each field against the others)
//! and over re-executing the binary with a new argv[0] (an exec per guardian, about a
//! millisecond a pass, and a binary replaced by an upgrade would be the one run): plain stores
//! into memory the child owns, no system call, no privilege; the title is cut to the
//! argv area's length (the watchdog's own command line, 20 bytes at least for
//! `neon-watchdog check`).
//!
//! A group id is a pid; it is only reused once the group is empty. The watchdog writes
//! "unwatch" right after the group is dead, so the guardian could kill a reused group only if
//! the watchdog died in those microseconds and the kernel handed that number out again within
//! them.

use nix::libc;

/// What the watchdog tells the guardian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Watch,
    Unwatch,
}

/// The watchdog's handle on its guardian: the pipe's write end and the guardian's pid.
#[derive(Debug)]
pub(super) struct Guardian {
    fd: std::os::fd::OwnedFd,
    pid: i32,
}

/// How telling the guardian went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Told {
    Yes,
    /// Its pipe is full: it has not read for thousands of records (stopped, frozen).
    Full,
    /// It is gone (the pipe is broken).
    Gone,
}

/// The guardian's command line: written by the forked child over its copy of the argv area
/// (`arg_start..arg_end`, as /proc/self/stat gives them), ended by a NUL and padded with
/// non-zero bytes up to the area's last one, the form the kernel reads as a title set by
/// setproctitle(3): /proc/PID/cmdline is then the title up to its NUL. Prepared before the
/// fork, where allocating is allowed; the child only copies bytes.
#[derive(Debug, Clone, Copy)]
struct Title {
    area: (usize, usize),
    text: [u8; 64],
    len: usize,
}

impl Title {
    /// The title for a guardian of the process `watchdog`, or None if the argv area cannot be
    /// found (then the command line stays the watchdog's).
    fn new(watchdog: u32) -> Option<Title> {
        Title::for_area(argv_area()?, watchdog)
    }

    /// The title to write over `start..end`.
    fn for_area((start, end): (usize, usize), watchdog: u32) -> Option<Title> {
        let room = (end - start).checked_sub(1)?;
        // the first that fits, else the shortest cut to the room
        let full = format!("neon-watchdog: guardian of PID {watchdog}");
        let short = format!("neon-wd-guard {watchdog}");
        let pick = [full.as_str(), short.as_str(), "neon-wd-guard"]
            .into_iter()
            .find(|t| t.len() <= room)
            .unwrap_or("neon-wd-guard");
        let mut text = [0u8; 64];
        let len = pick.len().min(room).min(text.len());
        text.get_mut(..len)?
            .copy_from_slice(pick.as_bytes().get(..len)?);
        Some(Title {
            area: (start, end),
            text,
            len,
        })
    }

    /// Write the title over the argv area.
    ///
    /// # Safety
    /// Only in the freshly forked guardian, whose copy of the argv area nothing else reads
    /// (the kernel sets the area at exec, writable, on the initial stack; it stays mapped for
    /// the process's life). No allocation, no lock.
    unsafe fn apply(&self) {
        let (start, end) = self.area;
        let p = start as *mut u8;
        let size = end - start;
        let mut i = 0;
        while i < size {
            let b = if i < self.len {
                self.text.get(i).copied().unwrap_or(b' ')
            } else if i == self.len {
                0
            } else {
                b' '
            };
            p.add(i).write_volatile(b);
            i += 1;
        }
    }
}

/// Where the process's argv strings lie (fields 48 and 49 of /proc/self/stat, `arg_start` and
/// `arg_end`); read once. None when unreadable or empty.
fn argv_area() -> Option<(usize, usize)> {
    static AREA: std::sync::OnceLock<Option<(usize, usize)>> = std::sync::OnceLock::new();
    *AREA.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // fields from the 3rd on follow the last ')' (comm may hold anything)
        let rest = stat.rsplit_once(')')?.1;
        let mut f = rest.split_whitespace().skip(48 - 3);
        let start: usize = f.next()?.parse().ok()?;
        let end: usize = f.next()?.parse().ok()?;
        (start > 0 && end > start).then_some((start, end))
    })
}

/// Groups watched at once, at most: commands running side by side (up to `max_parallel`
/// checks, plus notifications). Beyond that, a group is not killed when the watchdog dies.
const SLOTS: usize = 16384;
/// A record on the pipe: the op byte, three zero bytes, the group id (native endian). Writes
/// of 8 bytes to a pipe are atomic.
const RECORD: usize = 8;
/// Its `comm`, NUL-terminated, at most 16 bytes.
const NAME: &[u8] = b"neon-wd-guard\0";

impl Guardian {
    /// Fork the guardian; None if that fails (out of processes or descriptors).
    pub(super) fn start() -> Option<Guardian> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let title = Title::new(std::process::id());
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into the array we pass. Both ends non-blocking:
        // the watchdog never waits for the guardian (see the module doc); the guardian polls.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return None;
        }
        // SAFETY: fresh descriptors, owned from here on
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the child runs `guard`, which keeps to async-signal-safe calls and never
        // returns (see there)
        match unsafe { libc::fork() } {
            -1 => None,
            0 => unsafe {
                if let Some(t) = &title {
                    t.apply();
                }
                guard(fds[0])
            },
            pid => {
                drop(read_end);
                Some(Guardian { fd: write_end, pid })
            }
        }
    }

    pub(super) fn pid(&self) -> i32 {
        self.pid
    }

    /// Tell it a record, never waiting: a full pipe is [`Told::Full`].
    pub(super) fn tell(&self, op: Op, pgid: i32) -> Told {
        use std::os::fd::AsRawFd;
        let mut rec = [0u8; RECORD];
        rec[0] = match op {
            Op::Watch => b'+',
            Op::Unwatch => b'-',
        };
        rec[4..].copy_from_slice(&pgid.to_ne_bytes());
        loop {
            // SAFETY: writes RECORD bytes from a buffer of that size
            let n = unsafe { libc::write(self.fd.as_raw_fd(), rec.as_ptr().cast(), RECORD) };
            if n == RECORD as isize {
                return Told::Yes;
            }
            // a record of 8 bytes is written whole or not at all (PIPE_BUF)
            match (n < 0).then(nix::errno::Errno::last) {
                Some(nix::errno::Errno::EINTR) => continue,
                Some(nix::errno::Errno::EAGAIN) => return Told::Full,
                // EPIPE (Rust ignores SIGPIPE): the guardian is gone
                _ => return Told::Gone,
            }
        }
    }

    /// Get rid of a guardian that stopped reading: SIGKILL (which also ends a stopped
    /// process; a frozen one dies once thawed, without running its EOF sweep) and close our
    /// end. Returns its pid, to reap it once it is gone.
    pub(super) fn kill(self) -> i32 {
        // SAFETY: a signal to our own child, not yet reaped (its pid cannot be reused)
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        drop(self.fd);
        self.pid
    }

    /// Let the guardian go: it reads EOF, has nothing watched (the caller made sure), and
    /// exits. Returns its pid, to [`reap`] it.
    pub(super) fn let_go(self) -> i32 {
        drop(self.fd);
        self.pid
    }
}

/// Reap a guardian let go ([`Guardian::let_go`]); bounded.
pub(super) fn reap(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
    wait_for_exit(pid, until);
    let pid = nix::unistd::Pid::from_raw(pid);
    while let Ok(WaitStatus::StillAlive) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        if std::time::Instant::now() >= until {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Wait until process `pid` (a child of ours, not yet reaped) has exited, or until `until`,
/// without reaping it: poll on its pidfd (Linux 5.3), which becomes readable when it exits.
/// (A guardian exits as soon as it reads EOF, microseconds from now; a sleep here would cost
/// the pass a millisecond.) False, at once, where there are no pidfds.
pub(super) fn wait_for_exit(pid: i32, until: std::time::Instant) -> bool {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: a fresh descriptor, owned from here on
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    use std::os::fd::AsRawFd;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        // rounded up: never back before `until`
        let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR && ms > 0 {
            continue;
        }
        return true;
    }
}

/// How long the guardian lets records gather after the first one before it reads them (see
/// [`guard`]): two per command, read in one go instead of one wake-up each. The pipe holds
/// at least 512 records (4,096 by default), far more than come in this time.
const BATCH_MS: i32 = 20;

/// Apply one record ([`RECORD`] bytes) to the watched groups.
fn record(rec: &[u8], groups: &mut [i32; SLOTS], n: &mut usize) {
    let (Some(&op), Some(id)) = (rec.first(), rec.get(4..8)) else {
        return;
    };
    let pgid = i32::from_ne_bytes([
        id.first().copied().unwrap_or(0),
        id.get(1).copied().unwrap_or(0),
        id.get(2).copied().unwrap_or(0),
        id.get(3).copied().unwrap_or(0),
    ]);
    match op {
        b'+' if *n < SLOTS => {
            if let Some(slot) = groups.get_mut(*n) {
                *slot = pgid;
                *n += 1;
            }
        }
        b'-' => {
            let mut i = 0;
            while i < *n {
                if groups.get(i) == Some(&pgid) {
                    *n -= 1;
                    let last = groups.get(*n).copied().unwrap_or(0);
                    if let Some(slot) = groups.get_mut(i) {
                        *slot = last;
                    }
                    break;
                }
                i += 1;
            }
        }
        _ => {}
    }
}

/// The guardian process: read records until EOF, then SIGKILL the groups still watched and
/// exit.
///
/// # Safety
/// Runs in the child of a fork of a multi-threaded process: another thread may have held the
/// allocator's or any other lock at the fork. So: raw system calls only (all async-signal-
/// safe), no allocation, no locks, nothing that can panic, and it never returns.
unsafe fn guard(read_fd: i32) -> ! {
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGPIPE,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ] {
        libc::signal(sig, libc::SIG_IGN);
    }
    // Keep only the pipe, as fd 0: the watchdog's stdout and stderr (a reader waits for their
    // EOF), its lock file, the pipes of its other commands must not stay open in here.
    if read_fd != 0 && libc::dup2(read_fd, 0) != 0 {
        libc::_exit(1);
    }
    if libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32) != 0 {
        // kernels before 5.9
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(1 << 20) as i32
        } else {
            1024
        };
        for fd in 1..max {
            libc::close(fd);
        }
    }
    libc::prctl(
        libc::PR_SET_NAME,
        NAME.as_ptr() as libc::c_ulong,
        0 as libc::c_ulong,
        0 as libc::c_ulong,
        0 as libc::c_ulong,
    );
    let mut groups = [0i32; SLOTS];
    let mut n = 0usize;
    // Records are read in batches: woken by the first one, the guardian naps BATCH_MS before
    // it reads what has come (two records per command: a wake-up for each cost a busy 2-core
    // machine about 1% of a pass of commands). The watchdog's end closing (POLLHUP: it is
    // gone, however it went) is read at once, after every record still in the pipe.
    libc::fcntl(0, libc::F_SETFL, libc::O_NONBLOCK);
    let mut buf = [0u8; 4096];
    // bytes at the start of `buf`: a record's first bytes, carried over
    let mut have = 0usize;
    'records: loop {
        loop {
            let r = libc::read(0, buf.as_mut_ptr().add(have).cast(), buf.len() - have);
            if r == 0 {
                // EOF: the watchdog is gone
                break 'records;
            }
            if r < 0 {
                match nix::errno::Errno::last() {
                    nix::errno::Errno::EINTR => continue,
                    nix::errno::Errno::EAGAIN => break,
                    _ => break 'records,
                }
            }
            have = (have + r as usize).min(buf.len());
            let whole = have - have % RECORD;
            let mut off = 0;
            while off < whole {
                if let Some(rec) = buf.get(off..off + RECORD) {
                    record(rec, &mut groups, &mut n);
                }
                off += RECORD;
            }
            // the rest of a record written in parts (never, by 8-byte atomic writes) to the
            // front
            let mut k = 0;
            while whole + k < have {
                let b = buf.get(whole + k).copied().unwrap_or(0);
                if let Some(d) = buf.get_mut(k) {
                    *d = b;
                }
                k += 1;
            }
            have -= whole;
        }
        // nothing to read: sleep until a record comes or the watchdog is gone, then, for a
        // record, let the next ones come for BATCH_MS and read them together
        let mut p = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        let r = libc::poll(&mut p, 1, -1);
        if r > 0 && p.revents & (libc::POLLHUP | libc::POLLERR) == 0 {
            // the nap: asking for no event, only the watchdog's end closing ends it early
            p.events = 0;
            libc::poll(&mut p, 1, BATCH_MS);
        }
    }
    let mut i = 0;
    while i < n {
        if groups[i] > 1 {
            libc::kill(-groups[i], libc::SIGKILL);
        }
        i += 1;
    }
    libc::_exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The title as the kernel shows it: up to its NUL, the rest of the area non-zero (read
    /// as a title), or cut to the area, NUL last (read as one argument).
    #[test]
    fn the_title_fits_the_argv_area() {
        let write = |area: &mut [u8]| {
            let at = area.as_mut_ptr() as usize;
            let t = Title::for_area((at, at + area.len()), 4242).expect("a title");
            // SAFETY: the area is this test's buffer
            unsafe { t.apply() };
        };
        let mut area = [b'x'; 40];
        write(&mut area);
        let want = b"neon-watchdog: guardian of PID 4242";
        assert_eq!(&area[..want.len()], want);
        assert_eq!(area[want.len()], 0);
        assert!(area[want.len() + 1..].iter().all(|&b| b == b' '));
        // `neon-watchdog check`: the short form
        let mut area = [b'x'; 20];
        write(&mut area);
        assert_eq!(&area, b"neon-wd-guard 4242\0 ");
        let mut area = [b'x'; 10];
        write(&mut area);
        assert_eq!(&area, b"neon-wd-g\0");
        // the real one is found
        assert!(argv_area().is_some());
    }

    #[test]
    fn waits_for_a_child_to_exit_not_for_the_bound() {
        // registered, as every child: a concurrent sweep in another test leaves it alone
        let mut child = crate::spawn::spawn_registered(&mut std::process::Command::new("true"))
            .expect("spawn true");
        let pid = child.id() as i32;
        let t0 = std::time::Instant::now();
        wait_for_exit(pid, t0 + std::time::Duration::from_secs(30));
        assert!(t0.elapsed() < std::time::Duration::from_secs(10));
        // it has exited (a zombie until reaped here)
        assert!(matches!(child.try_wait(), Ok(Some(_))));
        crate::spawn::unregister(pid);
    }
}
