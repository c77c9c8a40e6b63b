//! The real dockerd the docker system tests share (Debian's `docker.io`), and the busybox image
//! their containers run.
//!
//! One daemon per test process, started by the first test that asks for it ([`engine`]) and
//! stopped when the process ends: libtest has no global teardown, so the daemon is started
//! from a thread that lives as long as the process, with `PR_SET_PDEATHSIG` = SIGTERM (the
//! signal fires when the *thread* that forked the child ends, hence the dedicated thread).
//! Whatever way the test process ends, dockerd gets SIGTERM and shuts down on its own: no
//! dockerd outlives the tests.
//!
//! Its data (`--data-root`, with the imported image) lives in a cache directory outside the
//! clone, `$NEON_WATCHDOG_TEST_CACHE/docker` (default `/var/cache/neon-watchdog-tests/docker`),
//! so the image import is paid once. A lock file there keeps two test processes from running
//! a daemon on the same data at once (the second waits); a daemon left by an earlier run that
//! is still shutting down is waited for (then killed) before ours starts, and containers an
//! earlier run left behind are removed.
//!
//! No registry is reachable: the image is `docker import` of a tar of a rootfs made of
//! Debian's `busybox-static` (`/bin/busybox` and a few applet links): `busybox httpd` serves
//! HTTP, `sh` runs health checks. The bridge is off (`--bridge=none`): containers use
//! `--network host` (to serve on a free 127.0.0.1 port) or `--network none`.
//!
//! Where the daemon cannot run (not root, dockerd or busybox missing), every docker test fails
//! with the reason: none passes without having run.

use super::harness::{spawn_cmd, wait_until};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// The image the tests' containers run (imported once into the cached data root).
const IMAGE_REPO: &str = "neon-watchdog-test/busybox";

/// The busybox applets the image links (`/bin/<applet>` -> busybox).
const APPLETS: &[&str] = &[
    "sh", "httpd", "wget", "sleep", "true", "false", "test", "echo", "cat", "kill", "killall",
    "pidof", "ps", "yes", "head", "touch", "rm",
];

/// `/www/index.html`, which `busybox httpd -h /www` serves at `/`.
pub const INDEX: &str = "neon-watchdog test page\n";
const PASSWD: &str = "root:x:0:0:root:/:/bin/sh\n";

/// Label on every container the tests create: leftovers of an earlier run are found by it.
pub const LABEL: &str = "neon-watchdog-test";

/// How long the daemon may take to answer, and another test process to release the lock. A
/// bound only ends a hung run: dockerd answers in about half a second.
const START_LIMIT: Duration = Duration::from_secs(60);
const LOCK_LIMIT: Duration = Duration::from_secs(600);

/// The running daemon.
pub struct Engine {
    /// Its API socket (`docker_socket:` in the tests' configs).
    pub socket: PathBuf,
    /// `repo:tag` of the busybox image.
    pub image: String,
    /// `DOCKER_CONFIG` of the docker CLI (so root's own ~/.docker is never read).
    cli_config: PathBuf,
    /// How long the start took, and whether the image was imported now (cold) or cached.
    pub started_in: Duration,
    pub imported: bool,
}

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The shared daemon, started on first use. Panics (failing the calling test) with the reason
/// when it cannot run here.
#[track_caller]
pub fn engine() -> &'static Engine {
    match ENGINE.get_or_init(start) {
        Ok(e) => e,
        Err(e) => panic!("the docker system tests need a real dockerd and cannot run here: {e}"),
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("NEON_WATCHDOG_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/neon-watchdog-tests"))
        .join("docker")
}

/// A directory of ours: created 0700 where missing; refused unless it is a real directory
/// owned by root that nobody else can write (root starts a daemon from what it holds).
fn own_dir(path: &Path) -> Result<(), String> {
    if let Err(e) = std::fs::create_dir(path) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(format!("cannot create {}: {e}", path.display()));
        }
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    }
    let m = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is not a directory owned by root and writable only by it: remove it or set NEON_WATCHDOG_TEST_CACHE",
            path.display()
        ));
    }
    Ok(())
}

fn open_own(path: &Path, truncate: bool) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn find_program(name: &str, apt: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} not found: apt-get install {apt} (.ci/run installs it)"))
}

fn start() -> Result<Engine, String> {
    let started = Instant::now();
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "dockerd needs root: run the system suite as root (CI does, in .ci/run)".into(),
        );
    }
    let dockerd = find_program("dockerd", "docker.io")?;
    find_program("docker", "docker.io")?;
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        return Err("/bin/busybox not found: apt-get install busybox-static".into());
    }
    let cache = cache_dir();
    if let Some(parent) = cache.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    own_dir(&cache)?;
    let lock = take_lock(&cache.join("lock"))?;
    // the lock is ours for the rest of the process: leaked on purpose, closed at exit
    std::mem::forget(lock);

    let pid_file = cache.join("dockerd.pid");
    stop_leftover_daemon(&pid_file)?;
    let socket = cache.join("docker.sock");
    let _ = std::fs::remove_file(&socket);
    let (data, exec, cli_config) = (cache.join("data"), cache.join("exec"), cache.join("cli"));
    for d in [&data, &exec, &cli_config] {
        own_dir(d)?;
    }
    let log_path = cache.join("dockerd.log");
    let log = open_own(&log_path, true)?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("dup {}: {e}", log_path.display()))?;

    let mut cmd = Command::new(&dockerd);
    cmd.arg("--iptables=false")
        .arg("--ip6tables=false")
        .arg("--bridge=none")
        .arg("--ip-masq=false")
        .arg("--data-root")
        .arg(&data)
        .arg("--exec-root")
        .arg(&exec)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .arg("--pidfile")
        .arg(&pid_file)
        // a system containerd, if the host runs one, is shared: keep to our own namespaces
        .args(["--containerd-namespace", "neon-watchdog-test"])
        .args([
            "--containerd-plugins-namespace",
            "neon-watchdog-test-plugins",
        ])
        .args(["--default-ulimit", "nofile=20000:20000"])
        .args(["--default-ulimit", "nproc=32768:32768"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let parent = std::process::id() as i32;
    // SAFETY: prctl, getppid and kill are async-signal-safe; nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // the test process may have ended between fork and prctl
            if nix::unistd::getppid().as_raw() != parent {
                let _ = kill(Pid::this(), Signal::SIGKILL);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("dockerd-keeper".into())
        .spawn(move || {
            let spawned =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| spawn_cmd(&mut cmd)));
            let mut child = match spawned {
                Ok(c) => c,
                Err(_) => {
                    let _ = tx.send(Err(format!("cannot start {}", dockerd.display())));
                    return;
                }
            };
            let _ = tx.send(Ok(child.id()));
            // reaps dockerd if it dies; the thread must outlive the tests (PDEATHSIG)
            let _ = child.wait();
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    let pid = rx
        .recv()
        .map_err(|_| "the dockerd keeper thread died".to_string())??;

    let answered = wait_until(START_LIMIT, || {
        ping(&socket) || !Path::new(&format!("/proc/{pid}")).exists()
    }) && ping(&socket);
    if !answered {
        return Err(format!(
            "dockerd (pid {pid}) did not answer on {} within {START_LIMIT:?}; its log ({}) ends:\n{}",
            socket.display(),
            log_path.display(),
            tail(&log_path)
        ));
    }
    let mut engine = Engine {
        socket,
        image: String::new(),
        cli_config,
        started_in: Duration::ZERO,
        imported: false,
    };
    engine.remove_leftovers()?;
    let (image, imported) = engine.image(busybox)?;
    engine.image = image;
    engine.imported = imported;
    engine.started_in = started.elapsed();
    eprintln!(
        "dockerd ready in {:?} ({}; data under {})",
        engine.started_in,
        if imported {
            "image imported now"
        } else {
            "image cached"
        },
        cache.display()
    );
    Ok(engine)
}

/// Exclusive lock on `path`, waiting (bounded) for another test process to finish.
fn take_lock(path: &Path) -> Result<File, String> {
    use fs2::FileExt;
    let mut f = open_own(path, false)?;
    let deadline = Instant::now() + LOCK_LIMIT;
    loop {
        match f.try_lock_exclusive() {
            Ok(()) => break,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                return Err(format!(
                    "{} is still locked after {LOCK_LIMIT:?} by another test run (pid {}): {e}",
                    path.display(),
                    holder.trim()
                ));
            }
        }
    }
    f.set_len(0).map_err(|e| format!("truncate lock: {e}"))?;
    let _ = write!(f, "{}", std::process::id());
    Ok(f)
}

/// A dockerd of an earlier run on our data (its test process gone, it got SIGTERM and may
/// still be shutting down): wait for it, then kill it.
fn stop_leftover_daemon(pid_file: &Path) -> Result<(), String> {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return Ok(());
    };
    let is_dockerd = || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dockerd")
    };
    if !is_dockerd() {
        return Ok(());
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    if !wait_until(Duration::from_secs(30), || !is_dockerd()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        if !wait_until(Duration::from_secs(10), || !is_dockerd()) {
            return Err(format!(
                "a dockerd of an earlier run (pid {pid}) does not exit"
            ));
        }
    }
    Ok(())
}

/// `GET /_ping` answers 200.
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The result of a docker CLI run.
pub struct Cli {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Engine {
    /// `docker args...` against this daemon.
    pub fn docker(&self, args: &[&str]) -> Cli {
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.cli_config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = spawn_cmd(&mut cmd);
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
        Cli {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `docker args...`, which must succeed; its stdout, trimmed.
    #[track_caller]
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.ok,
            "docker {args:?} failed: {}{}",
            out.stdout, out.stderr
        );
        out.stdout.trim().to_string()
    }

    /// Containers an earlier run left (killed before its guards ran).
    fn remove_leftovers(&self) -> Result<(), String> {
        let out = self.docker(&["ps", "-aq", "--filter", &format!("label={LABEL}")]);
        if !out.ok {
            return Err(format!("docker ps: {}", out.stderr.trim()));
        }
        let ids: Vec<&str> = out.stdout.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let out = self.docker(&args);
            if !out.ok {
                return Err(format!("docker rm -f: {}", out.stderr.trim()));
            }
        }
        Ok(())
    }

    /// The busybox image, imported unless the cached data root has it already: its name and
    /// whether it was imported now. The tag is a hash of /bin/busybox, so a new busybox gets
    /// a new image, and so does a change of the recipe (applets, files).
    fn image(&self, busybox: &Path) -> Result<(String, bool), String> {
        let bytes = std::fs::read(busybox).map_err(|e| format!("read /bin/busybox: {e}"))?;
        if !is_static_elf(&bytes) {
            return Err("/bin/busybox is not statically linked (Debian's busybox package): apt-get install busybox-static".into());
        }
        // FNV-1a: a name for this build of busybox, not a security measure
        let recipe = format!("{APPLETS:?} {INDEX:?} {PASSWD:?}");
        let hash = bytes
            .iter()
            .chain(recipe.as_bytes())
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
            });
        let image = format!("{IMAGE_REPO}:{hash:016x}");
        if self.docker(&["image", "inspect", &image]).ok {
            return Ok((image, false));
        }
        let dir = tempfile::Builder::new()
            .prefix("nw-busybox-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let root = dir.path().join("rootfs");
        for d in ["bin", "www", "tmp", "proc", "sys", "dev", "etc"] {
            std::fs::create_dir_all(root.join(d)).map_err(|e| format!("mkdir {d}: {e}"))?;
        }
        std::fs::write(root.join("bin/busybox"), &bytes).map_err(|e| format!("copy: {e}"))?;
        std::fs::set_permissions(
            root.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .map_err(|e| format!("chmod: {e}"))?;
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a))
                .map_err(|e| format!("link {a}: {e}"))?;
        }
        std::fs::write(root.join("www/index.html"), INDEX)
            .map_err(|e| format!("write index.html: {e}"))?;
        std::fs::write(root.join("etc/passwd"), PASSWD)
            .map_err(|e| format!("write passwd: {e}"))?;
        let tar = dir.path().join("rootfs.tar");
        let ok = spawn_cmd(
            Command::new("tar")
                .arg("-C")
                .arg(&root)
                .args(["--owner=0", "--group=0", "-cf"])
                .arg(&tar)
                .arg(".")
                .stdin(Stdio::null()),
        )
        .wait()
        .is_ok_and(|s| s.success());
        if !ok {
            return Err("tar of the busybox rootfs failed".into());
        }
        let tar = tar.display().to_string();
        let out = self.docker(&["import", &tar, &image]);
        if !out.ok {
            return Err(format!("docker import: {}", out.stderr.trim()));
        }
        Ok((image, true))
    }
}

/// A 64-bit little-endian ELF without a PT_INTERP program header: it runs in an empty
/// rootfs (no dynamic loader, no libc).
fn is_static_elf(b: &[u8]) -> bool {
    let u16_at = |i: usize| {
        b.get(i..i + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u32_at = |i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let u64_at = |i: usize| {
        b.get(i..i + 8)
            .and_then(|s| s.try_into().ok())
            .map(|s: [u8; 8]| u64::from_le_bytes(s) as usize)
    };
    if !b.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| u32_at(phoff + i * phentsize).is_some_and(|t| t != 3))
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A container of a test, removed (`docker rm -f`) when dropped, whatever the outcome.
pub struct Container {
    pub name: String,
    engine: &'static Engine,
}

impl Container {
    /// `docker run -d --name <unique> --label neon-watchdog-test <opts> <image> <cmd>`;
    /// `what` is part of the name.
    #[track_caller]
    pub fn run(what: &str, opts: &[&str], cmd: &[&str]) -> Container {
        let c = Container::named(what);
        let mut args = vec!["run", "-d", "--name", &c.name, "--label", LABEL];
        args.extend(opts);
        args.push(&c.engine.image);
        args.extend(cmd);
        c.engine.must(&args);
        c
    }

    /// `docker create` (never started).
    #[track_caller]
    pub fn create(what: &str, cmd: &[&str]) -> Container {
        let c = Container::named(what);
        let mut args = vec!["create", "--name", &c.name, "--label", LABEL];
        args.push(&c.engine.image);
        args.extend(cmd);
        c.engine.must(&args);
        c
    }

    /// A name no container has (for a missing one), unique to this run.
    pub fn unused_name(what: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("nwt-{}-{n}-{what}", std::process::id())
    }

    fn named(what: &str) -> Container {
        Container {
            name: Container::unused_name(what),
            engine: engine(),
        }
    }

    /// `docker inspect`: the container's JSON.
    #[track_caller]
    pub fn inspect(&self) -> serde_json::Value {
        let text = self.engine.must(&["inspect", &self.name]);
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("docker inspect {}: {e}: {text}", self.name));
        v[0].clone()
    }

    /// `State` of the inspect JSON.
    #[track_caller]
    pub fn state(&self) -> serde_json::Value {
        self.inspect()["State"].clone()
    }

    /// Wait (bounded) until `pred(State)`; panics with the last state otherwise.
    #[track_caller]
    pub fn wait_state(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
        let mut last = serde_json::Value::Null;
        let ok = wait_until(START_LIMIT, || {
            last = self.state();
            pred(&last)
        });
        assert!(
            ok,
            "container {} never became {what} within {START_LIMIT:?}: {last}",
            self.name
        );
    }

    /// `docker <verb> <name>`, which must succeed.
    #[track_caller]
    pub fn cli(&self, verb: &str) {
        self.engine.must(&[verb, &self.name]);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.engine.docker(&["rm", "-f", &self.name]);
    }
}

#[test]
fn a_static_busybox_is_told_from_a_dynamic_program() {
    let read = |p: &str| std::fs::read(p).unwrap_or_else(|e| panic!("read {p}: {e}"));
    assert!(is_static_elf(&read("/bin/busybox")), "busybox-static");
    assert!(!is_static_elf(&read("/bin/sh")), "a dynamic program");
    assert!(!is_static_elf(b"#!/bin/sh\n"));
}
