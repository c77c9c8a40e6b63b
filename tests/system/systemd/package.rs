//! The .deb under test, put into containers and installed with apt, as README's Install says.

use super::nspawn::{host, run_bounded, Container};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The package: `NEON_WATCHDOG_DEB` (what `.ci/run` built), else built here with
/// `bash packaging/deb/build.sh` (a release build: minutes the first time).
pub fn deb() -> PathBuf {
    static DEB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = DEB.get_or_init(|| {
        if let Some(p) = std::env::var_os("NEON_WATCHDOG_DEB") {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(format!("NEON_WATCHDOG_DEB={} is not a file", p.display()))
            };
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        eprintln!(
            "system suite: NEON_WATCHDOG_DEB unset: building the .deb with packaging/deb/build.sh"
        );
        let r = run_bounded(
            Command::new("bash")
                .arg(repo.join("packaging/deb/build.sh"))
                .current_dir(repo),
            Duration::from_secs(3600),
        );
        let last = r.stdout.lines().last().unwrap_or("").trim().to_string();
        if r.ok() && Path::new(&last).is_file() {
            Ok(PathBuf::from(last))
        } else {
            Err(format!("packaging/deb/build.sh failed: {r}"))
        }
    });
    match r {
        Ok(p) => p.clone(),
        Err(e) => panic!("the system suite needs the .deb: {e}"),
    }
}

/// The version inside the package.
pub fn version_of(deb: &Path) -> String {
    let o = host(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(deb)
            .arg("Version"),
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A directory of this test run under /var/tmp/neon-watchdog-tests (`what-<pid>`), emptied;
/// those earlier runs left (their process gone) are deleted.
fn scratch(what: &str) -> PathBuf {
    let base = Path::new("/var/tmp/neon-watchdog-tests");
    if let Ok(d) = std::fs::read_dir(base) {
        for e in d.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(&format!("{what}-"))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

/// The same package under a higher version (`+systest1`): what an upgrade installs.
pub fn upgrade_deb() -> PathBuf {
    static UP: OnceLock<PathBuf> = OnceLock::new();
    UP.get_or_init(|| {
        let deb = deb();
        let dir = scratch("upgrade");
        let tree = dir.join("tree");
        let o = host(Command::new("dpkg-deb").arg("-R").arg(&deb).arg(&tree));
        assert!(o.status.success(), "dpkg-deb -R: {o:?}");
        let control = tree.join("DEBIAN/control");
        let text = std::fs::read_to_string(&control).unwrap_or_default();
        let v = version_of(&deb);
        let text = text.replace(
            &format!("Version: {v}\n"),
            &format!("Version: {v}+systest1\n"),
        );
        std::fs::write(&control, text).unwrap_or_else(|e| panic!("write control: {e}"));
        let out = dir.join("neon-watchdog-upgrade.deb");
        let o = host(
            Command::new("dpkg-deb")
                .args(["--root-owner-group", "-b"])
                .arg(&tree)
                .arg(&out),
        );
        assert!(o.status.success(), "dpkg-deb -b: {o:?}");
        out
    })
    .clone()
}

/// Put `deb` into the container and `apt install` it (as README's Install says).
pub fn apt_install(c: &Container, deb: &Path) {
    let inside = "/root/neon-watchdog.deb";
    std::fs::copy(deb, c.host_path(inside))
        .unwrap_or_else(|e| panic!("copy {} into {}: {e}", deb.display(), c.name));
    c.ok(&format!(
        "apt-get install -y -q -o Dpkg::Options::=--force-confold {inside} 2>&1"
    ));
}

pub fn install(c: &Container) {
    apt_install(c, &deb());
}

/// `journalctl ... -o json` as JSON objects.
pub fn journal(c: &Container, args: &str) -> Vec<serde_json::Value> {
    let out = c
        .sh(&format!("journalctl --no-pager -o json {args}"))
        .stdout;
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The MESSAGE of each entry.
pub fn messages(entries: &[serde_json::Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["MESSAGE"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A config for the container: `body` after the settings every test shares.
pub fn config(c: &Container, interval: u64, body: &str) {
    c.write(
        "/etc/neon-watchdog/config.yml",
        &format!("interval_seconds: {interval}\n{body}"),
        0o600,
    );
}

/// The package's binary alone in the container, at /usr/local/bin (a host without the
/// package, where `neon-watchdog install` writes the units).
pub fn binary_only(c: &Container) {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let dir = scratch("binary");
        let o = host(Command::new("dpkg-deb").arg("-x").arg(deb()).arg(&dir));
        assert!(o.status.success(), "dpkg-deb -x: {o:?}");
        dir.join("usr/bin/neon-watchdog")
    });
    let to = c.host_path("/usr/local/bin/neon-watchdog");
    let _ = std::fs::create_dir_all(to.parent().unwrap_or(Path::new("/")));
    std::fs::copy(bin, &to).unwrap_or_else(|e| panic!("copy the binary into {}: {e}", c.name));
}
