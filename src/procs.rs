//! What runs on the machine, from /proc.
//!
//! A pass takes at most one [`Snapshot`] (lazily, on the first process check), shared by every
//! process check of every target: 200 process checks scan /proc once. Zombies are kept in the
//! snapshot but never count as running.

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// One process's CPU time at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSample {
    /// user + system time, clock ticks.
    pub ticks: u64,
    #[serde(with = "crate::util::time_rfc3339")]
    pub at: SystemTime,
}

/// One process, as seen at snapshot time.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    /// The kernel's name, cut at 15 characters.
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, ...
    pub state: char,
    /// Clock ticks after boot: with the pid, identifies a process across passes.
    pub starttime: u64,
    /// Basename of argv[0] (empty for kernel threads).
    pub argv0: String,
    /// Basename of /proc/PID/exe, when readable.
    pub exe: Option<String>,
    /// argv joined by spaces.
    pub cmdline: String,
    /// Real uid (the `Uid:` line of /proc/PID/status), when read: the owner, which a process
    /// cannot shed or borrow without privilege. Not the owner of /proc/PID: that is root for
    /// a process that made itself non-dumpable, and the effective uid of a setuid program run
    /// by anyone (a user's `passwd` renamed by a symlink would pass for root).
    pub uid: Option<u32>,
    /// A kernel thread: no command line, no executable, never a service.
    pub kernel: bool,
    /// Resident set size, in pages.
    pub rss_pages: u64,
    /// CPU time used so far (user + system), in clock ticks.
    pub cpu_ticks: u64,
    /// When `cpu_ticks` was read: CPU percent is ticks over this time, not over the scan's
    /// start (on a busy machine a scan of many processes takes long enough to skew it).
    pub read_at: std::time::SystemTime,
    /// Where its memory is laid out (see [`Layout`]); None when the kernel hides it (a
    /// watchdog not root looking at another user's process) or it has no memory (a kernel
    /// thread, a zombie).
    pub layout: Option<Layout>,
}

/// Where a process's code, stack, heap, arguments and environment start in its address space
/// (`startcode endcode startstack start_brk arg_start env_start` of /proc/PID/stat). A fork
/// inherits them unchanged; an exec lays the program out afresh, at addresses address space
/// layout randomisation draws anew (tens of bits of chance each): the same layout as its
/// parent's says a child is a fork of it that has not exec'd since, not a program someone
/// ran (see [`forked_from`]). The kernel shows them only to who may trace the process
/// (root, or its owner): to others they read 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout([u64; 6]);

/// Address space layout randomisation is on (/proc/sys/kernel/randomize_va_space is not 0):
/// without it, an exec of the same program with arguments and environment of the same sizes
/// lands at the same addresses as a fork would. Read once.
fn aslr_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/randomize_va_space")
            .is_ok_and(|v| v.trim() != "0")
    })
}

/// `child` is a fork of `parent` that has not exec'd since: its parent is `parent`, and its
/// memory layout is `parent`'s. False when either layout cannot be read (not root and not
/// the owner of both: the safe answer, the child then counts by its owner only) or address
/// space layout randomisation is off (a re-exec could not be told from a fork).
pub fn forked_from(child: &Proc, parent: &Proc) -> bool {
    child.ppid == parent.pid
        && aslr_on()
        && matches!((child.layout, parent.layout), (Some(c), Some(p)) if c == p)
}

impl Proc {
    /// Read a process. The command line of a process in uninterruptible sleep (`D`) is read
    /// only when `wanted(comm, exe)` says it may match: reading /proc/PID/cmdline takes the
    /// target's memory lock, and one process stuck in the kernel must not stall every
    /// process check. A kernel thread has no command line nor executable: neither is read.
    /// The owner is read when `owner(comm, argv0, exe)` says so (the process is named like a
    /// wanted program: who runs it decides whether it counts).
    fn read(
        pid: i32,
        wanted: &dyn Fn(&str, Option<&str>) -> bool,
        owner: &dyn Fn(&str, &str, Option<&str>) -> bool,
    ) -> Option<Proc> {
        let mut buf = Vec::with_capacity(512);
        let stat = read_stat(pid, &mut buf)?;
        let read_at = std::time::SystemTime::now();
        let kernel = stat.flags & PF_KTHREAD != 0;
        let exe = if kernel {
            None
        } else {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .and_then(|e| {
                    let s = e.to_string_lossy();
                    let s = s.strip_suffix(" (deleted)").unwrap_or(&s);
                    Some(basename(s).to_string()).filter(|b| !b.is_empty())
                })
        };
        // a process in uninterruptible sleep may hold its memory lock for long: read its
        // command line only if its name already points at a wanted program
        let argv: Vec<String> =
            if !kernel && (stat.state != 'D' || wanted(&stat.comm, exe.as_deref())) {
                buf.clear();
                read_small(&format!("/proc/{pid}/cmdline"), &mut buf, CMDLINE_CAP);
                buf.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            } else {
                Vec::new()
            };
        let argv0 = argv
            .first()
            .map(|a| basename(a).to_string())
            .unwrap_or_default();
        let uid = if owner(&stat.comm, &argv0, exe.as_deref()) {
            buf.clear();
            read_small(&format!("/proc/{pid}/status"), &mut buf, 8192);
            real_uid(&buf)
        } else {
            None
        };
        Some(Proc {
            pid,
            ppid: stat.ppid,
            pgrp: stat.pgrp,
            comm: stat.comm,
            state: stat.state,
            starttime: stat.starttime,
            argv0,
            exe,
            cmdline: argv.join(" "),
            uid,
            kernel,
            rss_pages: stat.rss,
            cpu_ticks: stat.utime.saturating_add(stat.stime),
            read_at,
            layout: stat.layout,
        })
    }

    /// The key of its CPU samples: its pid and start time (a reused pid is another process).
    pub fn sample_key(&self) -> String {
        format!("{}:{}", self.pid, self.starttime)
    }

    /// CPU percent of one core since `prev` (an earlier sample of it), or why it cannot be
    /// told from that sample.
    pub fn cpu_since(&self, prev: &CpuSample) -> Result<f64, &'static str> {
        // the time its ticks were read, not the pass's or the scan's start
        let wall = self
            .read_at
            .duration_since(prev.at)
            .unwrap_or(std::time::Duration::ZERO);
        if wall < std::time::Duration::from_millis(100) {
            return Err("the earlier CPU sample is less than 0.1 s old (or in the future): its CPU is judged from the next pass on");
        }
        if self.cpu_ticks < prev.ticks {
            return Err("its CPU time went down since the earlier sample: its CPU is judged from the next pass on");
        }
        let ticks = (self.cpu_ticks - prev.ticks) as f64;
        let hz = procfs::ticks_per_second().max(1) as f64;
        Ok(ticks / hz / wall.as_secs_f64() * 100.0)
    }

    /// Resident memory in MiB.
    pub fn rss_mb(&self) -> u64 {
        self.rss_pages.saturating_mul(procfs::page_size()) / (1024 * 1024)
    }

    /// Read one process directly (not from a snapshot); None if it does not exist.
    pub fn by_pid(pid: i32) -> Option<Proc> {
        Proc::read(pid, &|_, _| true, &|_, _, _| true)
    }

    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// The program is `name`: by comm, argv[0] basename or exe basename. comm is cut at 15
    /// characters by the kernel, so longer names match through argv[0] or exe only.
    pub fn is_named(&self, name: &str) -> bool {
        self.comm == name || self.argv0 == name || self.exe.as_deref() == Some(name)
    }

    /// The name to show for this process.
    pub fn name(&self) -> &str {
        if self.argv0.is_empty() {
            &self.comm
        } else {
            &self.argv0
        }
    }
}

/// The real uid in the text of /proc/PID/status (`Uid:\treal\teffective\tsaved\tfs`).
fn real_uid(status: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_ascii_whitespace().next()?.parse().ok()
}

/// The highest uid of a system account: `SYS_UID_MAX` of /etc/login.defs, else one below its
/// `UID_MIN`, else 999 (Debian's and most distributions' split). Read once.
fn sys_uid_max() -> u32 {
    static MAX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/login.defs").unwrap_or_default();
        let get = |key: &str| {
            text.lines().find_map(|l| {
                let mut w = l.split_ascii_whitespace();
                (w.next() == Some(key))
                    .then(|| w.next()?.parse::<u32>().ok())
                    .flatten()
            })
        };
        match (get("SYS_UID_MAX"), get("UID_MIN")) {
            (Some(m), _) => m,
            (None, Some(min)) => min.saturating_sub(1),
            _ => 999,
        }
        .min(65533)
    })
}

/// Who a process check counts by default (no `user:`): root and the system accounts services
/// run as (postgres, redis, www-data: uids up to `SYS_UID_MAX` of /etc/login.defs), and the
/// user the watchdog runs as (a user watching their own programs). Not the other login users,
/// nor `nobody` (65534), whose processes anyone with a shell or a sandbox can start under any
/// name.
pub fn is_service_owner(uid: u32) -> bool {
    uid == 0 || uid <= sys_uid_max() || uid == nix::unistd::getuid().as_raw()
}

/// A uid as messages show it: `uid 65534 (nobody)`.
pub fn uid_shown(uid: u32) -> String {
    match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(u)) => format!("uid {uid} ({})", u.name),
        _ => format!("uid {uid}"),
    }
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Processes per part of a scan read on a thread of its own (see [`Snapshot::take`]).
/// Measured on 2 cores: with 2,100 processes two parts take 0.73 of the time one does; below
/// about 700 a second thread costs what it saves (waking an idle core is slow in a VM).
const SCAN_PART: usize = 512;

/// Every process on the machine at one moment (except this one).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub procs: Vec<Proc>,
}

/// The processes that match a process check.
#[derive(Debug, Default)]
pub struct Matches<'a> {
    pub live: Vec<&'a Proc>,
    pub zombies: Vec<&'a Proc>,
}

impl Matches<'_> {
    /// The longest-running live match.
    pub fn oldest(&self) -> Option<&Proc> {
        self.live
            .iter()
            .min_by_key(|p| (p.starttime, p.pid))
            .copied()
    }
}

impl Snapshot {
    /// Scan /proc once. `names` are the programs the pass looks for (see [`Proc::read`]): the
    /// owner of each process named like one is read; `uids`: read every process's owner.
    pub fn take(names: &[String], uids: bool) -> Snapshot {
        Snapshot::take_in_parts(names, uids, SCAN_PART)
    }

    /// [`Snapshot::take`], in parts of at least `part` processes read side by side.
    fn take_in_parts(names: &[String], uids: bool, part: usize) -> Snapshot {
        let me = std::process::id() as i32;
        // comm is cut at 15 bytes: a 15-byte comm may be the start of a longer name
        let wanted = |comm: &str, exe: Option<&str>| {
            names.iter().any(|n| {
                // comm is cut at 15 bytes, possibly inside a UTF-8 character
                n == comm || exe == Some(n.as_str()) || (comm.len() >= 14 && n.len() > comm.len())
            })
        };
        let pids: Vec<i32> = match std::fs::read_dir("/proc") {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| *pid != me)
                .collect(),
            Err(_) => Vec::new(),
        };
        let owner = |comm: &str, argv0: &str, exe: Option<&str>| {
            uids || names
                .iter()
                .any(|n| n == comm || n == argv0 || exe == Some(n.as_str()))
        };
        let read = |pids: &[i32]| -> Vec<Proc> {
            pids.iter()
                .filter_map(|pid| Proc::read(*pid, &wanted, &owner))
                .collect()
        };
        // Reading /proc is the kernel's work, 20-30 microseconds per process: on a machine
        // with several cores and many processes the list is read in parts side by side.
        let parts = match pids.len() / part.max(1) {
            0 | 1 => 1,
            n => crate::parallel::cores().min(n).clamp(1, 8),
        };
        if parts == 1 {
            return Snapshot { procs: read(&pids) };
        }
        let size = pids.len().div_ceil(parts);
        let mut chunks = pids.chunks(size);
        let first = chunks.next().unwrap_or_default();
        let procs = std::thread::scope(|s| {
            let others: Vec<_> = chunks
                .map(|c| (c, std::thread::Builder::new().spawn_scoped(s, || read(c))))
                .collect();
            let mut procs = read(first);
            for (c, h) in others {
                // no thread to be had (task limit), or a bug in it: this thread reads it
                match h.ok().map(|h| h.join()) {
                    Some(Ok(more)) => procs.extend(more),
                    _ => procs.extend(read(c)),
                }
            }
            procs
        });
        Snapshot { procs }
    }

    /// Live (non-zombie) direct children of `pid`.
    pub fn children_of(&self, pid: i32) -> u32 {
        self.procs
            .iter()
            .filter(|p| p.ppid == pid && !p.is_zombie())
            .count() as u32
    }

    pub fn find(&self, name: &str, cmdline_contains: Option<&str>) -> Matches<'_> {
        let mut m = Matches::default();
        for p in &self.procs {
            if !p.is_named(name) {
                continue;
            }
            if p.is_zombie() {
                // a zombie has no command line left to match: the name must do
                m.zombies.push(p);
                continue;
            }
            if let Some(needle) = cmdline_contains {
                if !p.cmdline.contains(needle) {
                    continue;
                }
            }
            m.live.push(p);
        }
        m
    }
}

/// The few /proc/PID/stat facts process cleanup needs (no cmdline read: that can stall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: i32,
    pub pgrp: i32,
    /// The session id: the pid of the process that created the session with setsid.
    pub session: i32,
    pub state: char,
    pub starttime: u64,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

pub fn stat(pid: i32) -> Option<Stat> {
    let s = read_stat(pid, &mut Vec::with_capacity(512))?;
    Some(Stat {
        ppid: s.ppid,
        pgrp: s.pgrp,
        session: s.session,
        state: s.state,
        starttime: s.starttime,
    })
}

/// A kernel thread (flags of /proc/PID/stat): no command line, no executable.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The longest command line read (a longer one is cut: `cmdline_contains` sees its start).
const CMDLINE_CAP: usize = 64 * 1024;

/// What a pass needs of /proc/PID/stat.
struct RawStat {
    comm: String,
    state: char,
    ppid: i32,
    pgrp: i32,
    session: i32,
    flags: u64,
    utime: u64,
    stime: u64,
    starttime: u64,
    rss: u64,
    layout: Option<Layout>,
}

/// Read a small /proc file whole into `buf`: an open and a read or two, without the size
/// probe (statx, lseek) a generic read does; at most `cap` bytes.
fn read_small(path: &str, buf: &mut Vec<u8>, cap: usize) -> Option<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut chunk = 4096usize;
    loop {
        let len = buf.len();
        if len >= cap {
            return Some(());
        }
        let want = chunk.min(cap - len);
        buf.resize(len + want, 0);
        match f.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Some(());
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(_) => {
                buf.truncate(len);
                return (len > 0).then_some(());
            }
        }
        chunk = chunk.saturating_mul(2);
    }
}

/// /proc/PID/stat: `pid (comm) state ppid pgrp session tty tpgid flags ... utime stime ...
/// starttime vsize rss ...` (proc(5)); the comm may hold spaces and parentheses.
fn read_stat(pid: i32, buf: &mut Vec<u8>) -> Option<RawStat> {
    buf.clear();
    read_small(&format!("/proc/{pid}/stat"), buf, 4096)?;
    parse_stat(buf)
}

fn parse_stat(buf: &[u8]) -> Option<RawStat> {
    let open = buf.iter().position(|b| *b == b'(')?;
    let close = buf.iter().rposition(|b| *b == b')')?;
    let comm = String::from_utf8_lossy(buf.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(buf.get(close + 1..)?).ok()?;
    // fields from the 3rd (state) on: index 0 here is field 3
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let num = |field: usize| -> Option<u64> { f.get(field - 3)?.parse().ok() };
    let int = |field: usize| -> Option<i32> { f.get(field - 3)?.parse().ok() };
    Some(RawStat {
        comm,
        state: f.first()?.chars().next()?,
        ppid: int(4)?,
        pgrp: int(5)?,
        session: int(6)?,
        flags: num(9)?,
        utime: num(14)?,
        stime: num(15)?,
        starttime: num(22)?,
        rss: num(24)?,
        // hidden: startcode/endcode read 1, the others 0; no memory (a kernel thread): 0
        layout: [26, 27, 28, 47, 48, 50]
            .iter()
            .map(|n| num(*n))
            .collect::<Option<Vec<u64>>>()
            .and_then(|v| <[u64; 6]>::try_from(v).ok())
            .filter(|v| v.iter().all(|x| *x > 1))
            .map(Layout),
    })
}

/// The value of the environment variable `name` that process `pid` was started with (its
/// initial environment, /proc/PID/environ); None when it has none, or it cannot be read (gone,
/// a zombie, a kernel thread). At most 1 MiB is read. Do not call it for a process in
/// uninterruptible sleep (`D`): reading another process's memory takes its memory lock.
pub fn env_var(pid: i32, name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(format!("/proc/{pid}/environ")).ok()?;
    let mut buf = Vec::new();
    f.take(1 << 20).read_to_end(&mut buf).ok()?;
    buf.split(|b| *b == 0).find_map(|entry| {
        entry
            .strip_prefix(name.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"="))
            .map(<[u8]>::to_vec)
    })
}

/// The children of this process's main thread: the orphans it adopted as a subreaper (the
/// kernel hands an orphan to the first live thread of the subreaper, its main thread), and
/// what the main thread itself started. Children that worker threads start are not listed:
/// they are in their own thread's file, which is what lets workers spawn without a lock (a
/// sweep never sees another worker's fresh child). One read, whatever the number of threads.
pub fn adopted_children() -> Vec<i32> {
    let me = std::process::id();
    let mut buf = Vec::with_capacity(256);
    if read_small(&format!("/proc/self/task/{me}/children"), &mut buf, 1 << 24).is_some() {
        return buf
            .split(u8::is_ascii_whitespace)
            .filter_map(|p| std::str::from_utf8(p).ok()?.parse::<i32>().ok())
            .collect();
    }
    // kernels without /proc/PID/task/TID/children: scan for our pid as parent
    let me = me as i32;
    procfs::process::all_processes()
        .map(|iter| {
            iter.filter_map(Result::ok)
                .filter_map(|p| p.stat().ok())
                .filter(|s| s.ppid == me)
                .map(|s| s.pid)
                .collect()
        })
        .unwrap_or_default()
}

/// Now, in clock ticks since boot: the unit of a process's start time in /proc. A process
/// started after this call has a start time at least this.
pub fn ticks_since_boot() -> u64 {
    let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) else {
        return 0;
    };
    let hz = procfs::ticks_per_second().max(1);
    let ns = t.tv_sec().max(0) as u128 * 1_000_000_000 + t.tv_nsec().max(0) as u128;
    (ns * u128::from(hz) / 1_000_000_000) as u64
}

/// Every descendant of `root` (children, grandchildren, ...), found through ppid links.
pub fn descendants(root: i32) -> Vec<i32> {
    descendants_of(&[root])
}

/// Every descendant of any of `roots` (not the roots themselves), from one scan of /proc.
pub fn descendants_of(roots: &[i32]) -> Vec<i32> {
    let Ok(iter) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let links: Vec<(i32, i32)> = iter
        .filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .map(|s| (s.pid, s.ppid))
        .collect();
    let mut found = Vec::new();
    let mut frontier = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for (pid, ppid) in &links {
            if *ppid == parent && !found.contains(pid) && !roots.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// (pid, ppid) of every process in process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<(i32, i32)> {
    let Ok(iter) = procfs::process::all_processes() else {
        return Vec::new();
    };
    iter.filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .filter(|s| s.pgrp == pgid)
        .map(|s| (s.pid, s.ppid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sees_a_real_child_and_its_zombie_state() {
        // registered like every child of the watchdog, so a concurrent orphan sweep spares it
        let mut child =
            crate::spawn::spawn_registered(std::process::Command::new("sleep").arg("30"))
                .expect("spawn sleep");
        let pid = child.id() as i32;
        // until it has exec'd, the child is a copy of this test binary; during exec the new
        // name shows before the new command line
        for _ in 0..400 {
            if Proc::by_pid(pid).is_some_and(|p| p.comm == "sleep" && p.cmdline == "sleep 30") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let snap = Snapshot::take(&["sleep".to_string()], true);
        let m = snap.find("sleep", Some("30"));
        assert!(
            m.live.iter().any(|p| p.pid == pid),
            "live sleep {pid} not found"
        );
        child.kill().expect("kill");
        // killed but not yet reaped: a zombie, which must not count as running
        std::thread::sleep(std::time::Duration::from_millis(100));
        let p = Proc::by_pid(pid).expect("zombie still in /proc");
        assert!(p.is_zombie(), "state {}", p.state);
        let snap = Snapshot::take(&["sleep".to_string()], true);
        let m = snap.find("sleep", Some("30"));
        assert!(!m.live.iter().any(|p| p.pid == pid));
        assert!(m.zombies.iter().any(|p| p.pid == pid));
        child.wait().expect("reap");
        crate::spawn::unregister(pid);
        assert!(Proc::by_pid(pid).is_none());
    }

    #[test]
    fn a_scan_in_parts_sees_every_process_once() {
        let mut kids: Vec<_> = (0..3)
            .map(|_| {
                crate::spawn::spawn_registered(std::process::Command::new("sleep").arg("30"))
                    .expect("spawn sleep")
            })
            .collect();
        let whole = Snapshot::take_in_parts(&[], false, usize::MAX);
        // parts of 4: as many threads as there are cores (this machine's, at least 1)
        let parts = Snapshot::take_in_parts(&[], false, 4);
        let pids: Vec<i32> = parts.procs.iter().map(|p| p.pid).collect();
        let unique: std::collections::HashSet<i32> = pids.iter().copied().collect();
        assert_eq!(unique.len(), pids.len(), "a process read twice: {pids:?}");
        for k in &kids {
            assert!(
                unique.contains(&(k.id() as i32)),
                "child {} missing",
                k.id()
            );
        }
        assert!(unique.contains(&1));
        // the same machine seen twice: processes that lived through both scans are in both
        let before: std::collections::HashSet<i32> = whole.procs.iter().map(|p| p.pid).collect();
        let again: std::collections::HashSet<i32> = Snapshot::take_in_parts(&[], false, usize::MAX)
            .procs
            .iter()
            .map(|p| p.pid)
            .collect();
        for pid in before.intersection(&again) {
            assert!(unique.contains(pid), "{pid} missing from the scan in parts");
        }
        for k in &mut kids {
            let _ = k.kill();
            let _ = k.wait();
            crate::spawn::unregister(k.id() as i32);
        }
    }

    #[test]
    fn stat_lines_parse_whatever_the_comm() {
        let line = b"4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 123456 10000 250 18446744073709551615";
        let s = parse_stat(line).expect("parsed");
        assert_eq!(s.comm, "a (b) c");
        assert_eq!((s.state, s.ppid, s.pgrp, s.session), ('S', 1, 4242, 4242));
        assert_eq!((s.utime, s.stime, s.starttime, s.rss), (7, 3, 123456, 250));
        assert_eq!(s.flags & PF_KTHREAD, 0);
        // a line cut before the layout fields: no layout, not a made-up one
        assert_eq!(s.layout, None);
        // our own process: its layout is readable to us
        let me = Proc::by_pid(std::process::id() as i32).expect("myself");
        assert!(me.layout.is_some());
        let kthread = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 18446744073709551615";
        assert_ne!(parse_stat(kthread).expect("parsed").flags & PF_KTHREAD, 0);
        assert!(parse_stat(b"garbage").is_none());
        assert!(parse_stat(b"1 (x) S").is_none());
    }

    #[test]
    fn the_owner_is_the_real_uid_and_system_accounts_are_services() {
        let status = b"Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        // a setuid program run by uid 1000: effective 0, real 1000
        assert_eq!(real_uid(status), Some(1000));
        assert_eq!(real_uid(b"Name:\tx\n"), None);
        let me = Proc::by_pid(std::process::id() as i32).expect("myself");
        assert_eq!(me.uid, Some(nix::unistd::getuid().as_raw()));
        assert!(!me.kernel);
        assert!(is_service_owner(0));
        assert!(is_service_owner(33) && is_service_owner(999) || sys_uid_max() < 999);
        assert!(!is_service_owner(1000));
        assert!(!is_service_owner(65534));
    }

    #[test]
    fn long_names_match_by_argv0() {
        let p = Proc {
            pid: 1,
            ppid: 0,
            pgrp: 1,
            comm: "my-very-long-se".into(),
            state: 'S',
            starttime: 0,
            argv0: "my-very-long-service".into(),
            exe: None,
            cmdline: "my-very-long-service".into(),
            uid: Some(0),
            kernel: false,
            rss_pages: 0,
            cpu_ticks: 0,
            read_at: std::time::SystemTime::UNIX_EPOCH,
            layout: None,
        };
        assert!(p.is_named("my-very-long-service"));
        assert!(!p.is_named("my-very-long-se-other"));
    }
}
