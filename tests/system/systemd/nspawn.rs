//! A real systemd 252 as PID 1: Debian bookworm booted with `systemd-nspawn`.
//!
//! - The rootfs: `debootstrap --variant=minbase` of [`PACKAGES`] from the host's configured
//!   Debian mirror, built once and cached outside the clone in
//!   `/var/cache/neon-watchdog-tests/<key>` (`NEON_WATCHDOG_TEST_CACHE` moves it), the key
//!   naming the suite, the package list and the mirror: change any and a new rootfs is built.
//!   It is built in `<key>.partial` under an exclusive lock and renamed into place when whole,
//!   so a killed build never leaves a half cache (the next run deletes the partial one).
//! - Each [`Container`] boots an overlay of that rootfs (its writes land in its own upper
//!   directory under `/var/tmp/neon-watchdog-tests/`), with its own network namespace (only
//!   `lo`: nginx on port 80 in two containers at once cannot collide) and a cgroup of its own
//!   (two systemds sharing one would share `/system.slice`), and is torn down by `Drop` even
//!   when the test fails: its PID 1 killed, its cgroup removed, the overlay unmounted and
//!   deleted.
//! - At most [`max_containers`] run at once (2 by default, `NEON_WATCHDOG_SYSTEM_CONTAINERS`):
//!   a test waits for a slot before booting.
//! - [`Container::sh`] runs a shell script inside, through
//!   `nsenter -t <its PID 1> -m -u -i -n -p -C` (systemctl, journalctl, dpkg as root in there).
//!   nspawn mounts its own tmpfs on the container's /tmp: tests put files elsewhere.
//!
//! Where this cannot run (not root, no CAP_SYS_ADMIN, no systemd-nspawn or debootstrap, no
//! mirror), every test fails with the reason: nothing passes without having run.
//!
//! The one-call helper for a benchmark or a test about one unit:
//! [`Container::boot_with_unit`]`("web.service", UNIT_TEXT)` returns a running container
//! with the unit enabled and active.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What the rootfs holds besides minbase: systemd as init, D-Bus for systemctl, a real server
/// to watch (nginx), `pkill`/`pgrep`, curl and python3 for the tests' probes.
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "nginx-light",
    "procps",
    "curl",
    "python3-minimal",
];
const SUITE: &str = "bookworm";
/// Bumped when the steps after debootstrap change (a new key, a new rootfs).
const RECIPE: &str = "v1";

/// A bound that only ends a hung test: events normally come in well under a second.
pub const BOUND: Duration = Duration::from_secs(60);

/// Why the system suite cannot run here, as every test says it (it never passes silently).
fn cannot(why: &str) -> ! {
    panic!(
        "the system suite cannot run here: {why}. It needs root with CAP_SYS_ADMIN, \
         systemd-nspawn (systemd-container), debootstrap and a reachable Debian mirror \
         (`cargo test --locked --features system-tests --test system`; .ci/run installs them)"
    )
}

fn preflight() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let r = CHECKED.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            return Err("not root".into());
        }
        // CAP_SYS_ADMIN is bit 21 of CapEff
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
            .unwrap_or(0);
        if eff & (1 << 21) == 0 {
            return Err("CAP_SYS_ADMIN is not in the effective set".into());
        }
        for tool in [
            "systemd-nspawn",
            "nsenter",
            "debootstrap",
            "mount",
            "umount",
        ] {
            let found = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
                .unwrap_or(false)
                || ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                    .iter()
                    .any(|d| Path::new(d).join(tool).is_file());
            if !found {
                return Err(format!("{tool} is not installed"));
            }
        }
        Ok(())
    });
    if let Err(e) = r {
        cannot(e);
    }
}

/// The first `URIs:` of the host's apt sources for Debian's main archive (deb822 or one-line
/// format), else deb.debian.org.
fn mirror() -> String {
    if let Ok(m) = std::env::var("NEON_WATCHDOG_TEST_MIRROR") {
        return m;
    }
    let mut texts = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        texts.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    texts.extend(std::fs::read_to_string("/etc/apt/sources.list").ok());
    for t in &texts {
        for l in t.lines() {
            let l = l.trim();
            if let Some(u) = l.strip_prefix("URIs:") {
                let u = u.split_whitespace().next().unwrap_or("");
                if !u.contains("security") && u.starts_with("http") {
                    return u.to_string();
                }
            }
            if let Some(rest) = l.strip_prefix("deb ") {
                if let Some(u) = rest
                    .split_whitespace()
                    .find(|w| w.starts_with("http") && !w.contains("security"))
                {
                    return u.to_string();
                }
            }
        }
    }
    "http://deb.debian.org/debian".into()
}

fn cache_dir() -> PathBuf {
    std::env::var_os("NEON_WATCHDOG_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/neon-watchdog-tests"))
}

/// FNV-1a: a stable name for the recipe (not a security boundary).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The cached rootfs, built on first use (a few minutes; later runs find it).
pub fn rootfs() -> PathBuf {
    preflight();
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match ROOT.get_or_init(build_rootfs) {
        Ok(p) => p.clone(),
        Err(e) => cannot(e),
    }
}

fn build_rootfs() -> Result<PathBuf, String> {
    let mirror = mirror();
    let recipe = format!("{SUITE}|minbase|{}|{mirror}|{RECIPE}", PACKAGES.join(","));
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let key = format!("{SUITE}-{:016x}", fnv(&recipe));
    let done = dir.join(&key);
    // another `cargo test` may be building it: wait for its lock, then look again
    let lock = std::fs::File::create(dir.join(format!("{key}.lock")))
        .map_err(|e| format!("cannot open the cache lock in {}: {e}", dir.display()))?;
    fs2::FileExt::lock_exclusive(&lock).map_err(|e| format!("cannot lock the cache: {e}"))?;
    if done.join(".neon-watchdog-rootfs").is_file() {
        return Ok(done);
    }
    let partial = dir.join(format!("{key}.partial"));
    // what a killed build left (we hold the lock: nobody is writing it)
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .map_err(|e| format!("cannot remove the stale {}: {e}", partial.display()))?;
    }
    let started = Instant::now();
    eprintln!(
        "system suite: building the {SUITE} rootfs into {} from {mirror} (once; a few minutes)",
        done.display()
    );
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={}", PACKAGES.join(",")),
            SUITE,
        ])
        .arg(&partial)
        .arg(&mirror)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run debootstrap: {e}"))?;
    if !out.status.success() {
        let log = std::fs::read_to_string(partial.join("debootstrap/debootstrap.log"))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        return Err(format!(
            "debootstrap of {SUITE} from {mirror} failed ({}): {}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    // the downloaded .debs are not needed to boot
    if let Ok(d) = std::fs::read_dir(partial.join("var/cache/apt/archives")) {
        for e in d.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    std::fs::write(partial.join(".neon-watchdog-rootfs"), format!("{recipe}\n"))
        .map_err(|e| format!("cannot mark the rootfs: {e}"))?;
    std::fs::rename(&partial, &done).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            done.display()
        )
    })?;
    eprintln!(
        "system suite: rootfs built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(done)
}

/// How many containers may run at once.
pub fn max_containers() -> usize {
    std::env::var("NEON_WATCHDOG_SYSTEM_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2)
}

static SLOTS: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// A running container's place among [`max_containers`].
struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut n = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= max_containers() {
            n = FREED.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        FREED.notify_one();
    }
}

/// A program's result, bounded in time.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run `cmd`, killing it after `bound`.
pub fn run_bounded(cmd: &mut Command, bound: Duration) -> Ran {
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                code: None,
                stdout: String::new(),
                stderr: format!("cannot start {cmd:?}: {e}"),
            }
        }
    };
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let end = Instant::now() + bound;
    let code = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code(),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = out.join().unwrap_or_default();
    let mut stderr = err.join().unwrap_or_default();
    if code.is_none() {
        stderr.push_str(&format!("\n(killed after {bound:?}: {cmd:?})"));
    }
    Ran {
        code,
        stdout,
        stderr,
    }
}

/// Wait for `what` until [`BOUND`]; panics naming it (and `why()`) if it never comes.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool, why: impl Fn() -> String) {
    let end = Instant::now() + BOUND;
    while !cond() {
        if Instant::now() > end {
            panic!("{what}: not within {BOUND:?}\n{}", why());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A booted container; `Drop` tears it down.
pub struct Container {
    pub name: String,
    /// Its PID 1, as the host sees it.
    pub leader: i32,
    nspawn: std::process::Child,
    dir: PathBuf,
    merged: PathBuf,
    /// Dropped after the container is killed (fields drop after `Drop::drop`).
    _cgroup: Cgroup,
    _overlay: Overlay,
    _slot: Slot,
}

/// The container's own cgroup, beside the caller's in each hierarchy systemd uses (v1's
/// `name=systemd`, v2's unified one): removed on drop, deepest first.
struct Cgroup {
    dirs: Vec<PathBuf>,
}

impl Cgroup {
    fn create(name: &str) -> Cgroup {
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut dirs = Vec::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let base = if ctrl == "name=systemd" {
                Path::new("/sys/fs/cgroup/systemd")
            } else if id == "0" && ctrl.is_empty() {
                if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
                    Path::new("/sys/fs/cgroup/unified")
                } else {
                    Path::new("/sys/fs/cgroup")
                }
            } else {
                continue;
            };
            let dir = base
                .join(path.trim_start_matches('/'))
                .join(format!("neon-watchdog-test-{name}"));
            if let Err(e) = std::fs::create_dir_all(&dir) {
                cannot(&format!("cannot create the cgroup {}: {e}", dir.display()));
            }
            dirs.push(dir);
        }
        if dirs.is_empty() {
            cannot("no cgroup hierarchy of systemd's in /proc/self/cgroup");
        }
        Cgroup { dirs }
    }
}

/// Remove a cgroup directory and the ones below it (rmdir only: cgroupfs has no files to
/// delete); true once gone.
fn remove_cgroup(dir: &Path) -> bool {
    if let Ok(d) = std::fs::read_dir(dir) {
        for e in d.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok() || !dir.exists()
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // the killed processes leave their cgroups a moment after the kill
        let end = Instant::now() + Duration::from_secs(10);
        for d in &self.dirs {
            while !remove_cgroup(d) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The container's overlay mount and its directory: unmounted and deleted on drop.
struct Overlay {
    dir: PathBuf,
    merged: PathBuf,
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let umount = Command::new("umount").arg(&self.merged).status();
        if !umount.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.merged).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Container {
    /// Boot a fresh container (an overlay of the cached rootfs) and wait until its systemd
    /// says `running`.
    pub fn boot(hint: &str) -> Container {
        Container::boot_prepared(hint, |_| {})
    }

    /// THE one-call helper: a container whose `unit_name` (e.g. `web.service`) holds
    /// `unit_text`, enabled (`WantedBy=multi-user.target` or not: it is linked there) and
    /// active when this returns. For the recovery benchmark: time systemd's own `Restart=`
    /// on this unit beside neon-watchdog's (`c.sh("kill -9 $(systemctl show -P MainPID
    /// web)")`, then wait on `c.show("web.service", ...)`).
    pub fn boot_with_unit(unit_name: &str, unit_text: &str) -> Container {
        let c = Container::boot_prepared(unit_name, |root| {
            let units = root.join("etc/systemd/system");
            write_host(&units.join(unit_name), unit_text, 0o644);
            let wants = units.join("multi-user.target.wants");
            let _ = std::fs::create_dir_all(&wants);
            let _ = std::os::unix::fs::symlink(
                format!("/etc/systemd/system/{unit_name}"),
                wants.join(unit_name),
            );
        });
        let active = c.wait_active(unit_name);
        assert!(
            active,
            "{unit_name} did not become active\n{}",
            c.sh(&format!("systemctl status {unit_name} --no-pager; journalctl -b -u {unit_name} --no-pager | tail -30"))
        );
        c
    }

    /// Boot after `prepare` wrote into the container's root (as the host sees it).
    pub fn boot_prepared(hint: &str, prepare: impl FnOnce(&Path)) -> Container {
        let lower = rootfs();
        let slot = Slot::take();
        let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let clean: String = hint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(24)
            .collect();
        let name = format!("nwt-{clean}-{}-{n}", std::process::id());
        let base = PathBuf::from("/var/tmp/neon-watchdog-tests");
        let dir = base.join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["upper", "work", "merged"] {
            if let Err(e) = std::fs::create_dir_all(dir.join(d)) {
                cannot(&format!("cannot create {}: {e}", dir.join(d).display()));
            }
        }
        let merged = dir.join("merged");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        let m = run_bounded(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &opts])
                .arg(&merged),
            Duration::from_secs(30),
        );
        if !m.ok() {
            let _ = std::fs::remove_dir_all(&dir);
            cannot(&format!("cannot mount an overlay of the rootfs: {m}"));
        }
        // from here on, unmounted and deleted whatever happens
        let overlay = Overlay {
            dir: dir.clone(),
            merged: merged.clone(),
        };
        prepare(&merged);
        let log = match std::fs::File::create(dir.join("nspawn.log")) {
            Ok(f) => f,
            Err(e) => cannot(&format!("cannot create the nspawn log: {e}")),
        };
        // a cgroup of its own: containers sharing the caller's would share /system.slice,
        // and one's systemd would remove what another's is starting a unit in
        let cgroup = Cgroup::create(&name);
        let joined = cgroup
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let spawned = Command::new("/bin/sh")
            .args([
                "-c",
                "IFS=:; for d in $NWT_CGROUPS; do echo $$ > \"$d/cgroup.procs\" || exit 97; done; unset IFS NWT_CGROUPS; exec systemd-nspawn \"$@\"",
                "sh",
            ])
            .env("NWT_CGROUPS", joined)
            .arg("-D")
            .arg(&merged)
            .args([
                "-b",
                "--register=no",
                "--keep-unit",
                "--private-network",
                "--link-journal=no",
                "--console=passive",
                "-M",
                &name,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map(Stdio::from).unwrap_or(Stdio::null()))
            .stderr(Stdio::from(log))
            .spawn();
        let nspawn = match spawned {
            Ok(c) => c,
            Err(e) => cannot(&format!("cannot start systemd-nspawn: {e}")),
        };
        let mut c = Container {
            name,
            leader: 0,
            nspawn,
            dir,
            merged,
            _cgroup: cgroup,
            _overlay: overlay,
            _slot: slot,
        };
        // its PID 1: the child of nspawn that is PID 1 in its own PID namespace
        let pid = c.nspawn.id() as i32;
        let end = Instant::now() + BOUND;
        while c.leader == 0 {
            if let Ok(Some(s)) = c.nspawn.try_wait() {
                panic!(
                    "systemd-nspawn exited ({s}) before the container booted:\n{}",
                    c.log()
                );
            }
            c.leader = leader_of(pid).unwrap_or(0);
            if c.leader == 0 {
                assert!(
                    Instant::now() < end,
                    "the container's PID 1 did not appear within {BOUND:?}:\n{}",
                    c.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // systemd inside: running (or degraded, which names what failed)
        let mut last = String::new();
        loop {
            let r = c.sh_bounded("systemctl is-system-running --wait", BOUND);
            let state = r.stdout.trim().to_string();
            if state == "running" {
                break;
            }
            if state == "degraded" {
                panic!(
                    "the container booted degraded:\n{}",
                    c.sh("systemctl --failed --no-pager; journalctl -b -p warning --no-pager | tail -40")
                );
            }
            last = r.to_string();
            assert!(
                Instant::now() < end,
                "the container's systemd was not running within {BOUND:?}: {last}\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = last;
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nspawn.log")).unwrap_or_default()
    }

    /// `path` inside the container, as the host sees it (writes land in this container's
    /// overlay only).
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.merged.join(path.trim_start_matches('/'))
    }

    /// Write a file inside the container (parents created).
    pub fn write(&self, path: &str, text: &str, mode: u32) {
        write_host(&self.host_path(path), text, mode);
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.host_path(path)).unwrap_or_default()
    }

    /// A shell script run as root inside the container, bounded by [`BOUND`].
    pub fn sh(&self, script: &str) -> Ran {
        self.sh_bounded(script, BOUND)
    }

    pub fn sh_bounded(&self, script: &str, bound: Duration) -> Ran {
        run_bounded(
            Command::new("nsenter")
                .args([
                    "-t",
                    &self.leader.to_string(),
                    "-m",
                    "-u",
                    "-i",
                    "-n",
                    "-p",
                    "-C",
                ])
                .args([
                    "--",
                    "/usr/bin/env",
                    "-i",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG=C.UTF-8",
                    "SYSTEMD_PAGER=",
                    "SYSTEMD_COLORS=0",
                    "DEBIAN_FRONTEND=noninteractive",
                    "HOME=/root",
                    "/bin/sh",
                    "-c",
                    script,
                ])
                .current_dir("/"),
            bound,
        )
    }

    /// Like [`Container::sh`], but the script must succeed: its stdout.
    pub fn ok(&self, script: &str) -> String {
        let r = self.sh(script);
        assert!(r.ok(), "in {}: `{script}` failed: {r}", self.name);
        r.stdout
    }

    /// `systemctl show -p` of `props`, as a map.
    pub fn show(&self, unit: &str, props: &[&str]) -> HashMap<String, String> {
        let r = self.sh(&format!("systemctl show {unit} -p {}", props.join(",")));
        r.stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub fn prop(&self, unit: &str, prop: &str) -> String {
        self.show(unit, &[prop]).remove(prop).unwrap_or_default()
    }

    /// Wait until `unit` is active (false if it failed or the bound passed).
    pub fn wait_active(&self, unit: &str) -> bool {
        let end = Instant::now() + BOUND;
        loop {
            match self.prop(unit, "ActiveState").as_str() {
                "active" => return true,
                "failed" => return false,
                _ if Instant::now() > end => return false,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Wait for `cond` on this container; on timeout the panic shows `debug` run inside.
    pub fn wait(&self, what: &str, cond: impl FnMut() -> bool, debug: &str) {
        wait_for(what, cond, || self.sh(debug).to_string());
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // PID 1 of a PID namespace killed: the kernel kills everything in it, nspawn exits
        if self.leader > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.leader),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match self.nspawn.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > end => {
                    let _ = self.nspawn.kill();
                    let _ = self.nspawn.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        // then the overlay goes (its own Drop)
    }
}

/// The process that is PID 1 of its own PID namespace among the children of `nspawn`.
fn leader_of(nspawn: i32) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let ppid = field("PPid:");
        let nspid = field("NSpid:");
        if ppid.first().map(String::as_str) == Some(&nspawn.to_string())
            && nspid.len() >= 2
            && nspid.last().map(String::as_str) == Some("1")
        {
            return Some(pid);
        }
    }
    None
}

/// Write `text` at a host path (parents created, mode set).
pub fn write_host(path: &Path, text: &str, mode: u32) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Output of a host command (for dpkg-deb and the like).
pub fn host(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}
