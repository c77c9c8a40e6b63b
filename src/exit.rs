//! The exit-code contract, in one place.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | every enabled target is healthy (or the command succeeded) |
//! | 1    | any other error (I/O, internal) |
//! | 2    | at least one target failed its checks in this pass |
//! | 3    | `status --format nagios` only: UNKNOWN (no state yet, stale or unreadable) |
//! | 64   | usage error (unknown flag, missing argument) |
//! | 75   | another instance holds the lock |
//! | 77   | not root: `install`/`uninstall` (without `--root DIR`), or a verb against root's watchdog |
//! | 78   | configuration missing, unreadable or invalid |

/// How the process ends. `main` turns this into the OS exit status and nothing else does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Internal,
    Failing,
    /// `status --format nagios`: the plugin convention's UNKNOWN.
    PluginUnknown,
    Usage,
    Locked,
    /// `install`/`uninstall` as a user other than root, without `--root DIR`.
    NoPermission,
    Config,
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Internal => 1,
            Exit::Failing => 2,
            Exit::PluginUnknown => 3,
            Exit::Usage => 64,
            Exit::Locked => 75,
            Exit::NoPermission => 77,
            Exit::Config => 78,
        }
    }
}

impl Exit {
    /// The exit for a code of [`Exit::code`] (a control socket's answer carries the code); an
    /// unknown code is `Internal`.
    pub const fn from_code(code: u8) -> Exit {
        match code {
            0 => Exit::Ok,
            2 => Exit::Failing,
            3 => Exit::PluginUnknown,
            64 => Exit::Usage,
            75 => Exit::Locked,
            77 => Exit::NoPermission,
            78 => Exit::Config,
            _ => Exit::Internal,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// The table shown in `--help` and README.
pub const TABLE: &str = "\
Exit codes:
  0   all enabled targets healthy
  2   at least one target failed its checks in this pass
  3   status --format nagios: UNKNOWN (it exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)
  64  usage error (unknown flag, missing argument)
  75  another instance holds the lock
  77  not root: install, uninstall (use sudo, or --root DIR); a verb (pause, restart, ...) against root's watchdog
  78  config missing, unreadable or invalid
  1   any other error (also: an action a verb ran failed)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let all = [
            (Exit::Ok, 0),
            (Exit::Internal, 1),
            (Exit::Failing, 2),
            (Exit::PluginUnknown, 3),
            (Exit::Usage, 64),
            (Exit::Locked, 75),
            (Exit::NoPermission, 77),
            (Exit::Config, 78),
        ];
        for (e, c) in all {
            assert_eq!(e.code(), c);
            assert!(TABLE.contains(&format!("  {c} ")), "{c} missing from TABLE");
        }
    }
}
