//! The leaf: small helpers many modules share — how an OS error, a duration and a time are
//! worded, a stable short hash, rounding for log figures. It imports nothing of the crate, so
//! any module may use it without tying itself to another domain module.

use std::time::Duration;

/// An OS error as a short lowercase phrase: "connection refused", "permission denied".
pub fn os_error(e: &std::io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        if code == nix::libc::EAGAIN {
            return "resource temporarily unavailable (process limit reached?)".to_string();
        }
        let desc = nix::errno::Errno::from_raw(code).desc();
        let mut s = desc.to_string();
        if let Some(first) = s.get(0..1) {
            let lower = first.to_lowercase();
            s.replace_range(0..1, &lower);
        }
        return s;
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => e.to_string(),
    }
}

/// A duration for people: "3s", "1.5s".
pub fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A duration for machines, in seconds with microseconds: "0.000400" (Prometheus values).
pub fn secs_exact(d: Duration) -> String {
    format!("{:.6}", d.as_secs_f64())
}

/// One decimal, for figures on log lines (`cpu_percent=12.3`).
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// 32-bit FNV-1a: a stable short hash for file names and keys.
pub fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// This machine's name, for messages.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`); None where the system does not tell.
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && id.len() <= 64).then(|| id.to_string())
}

/// The time since boot in milliseconds (`CLOCK_BOOTTIME`: it counts suspend, and no step of
/// the wall clock moves it); None where the system does not tell.
pub fn boottime_ms() -> Option<u64> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let ms = u64::try_from(ts.tv_nsec()).ok()? / 1_000_000;
    secs.checked_mul(1000)?.checked_add(ms)
}

/// A time as an RFC 3339 UTC string with milliseconds: `2026-11-23T10:00:00.000Z` (the state
/// file, `status --json`, notification bodies).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A time for people, to the second: `2026-11-23T10:00:00Z`.
pub fn rfc3339_seconds(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A duration for people, rounded down to one unit: "12s", "5m", "3h", "2d".
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// `#[serde(with = "crate::util::time_rfc3339")]` for a `SystemTime`.
pub mod time_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&s).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "crate::util::opt_time")]` for an `Option<SystemTime>` (`null` when none).
pub mod opt_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| humantime::parse_rfc3339_weak(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `#[serde(with = "crate::util::time_vec")]` for a `Vec<SystemTime>`.
pub mod time_vec {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(v: &[SystemTime], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for t in v {
            seq.serialize_element(&super::rfc3339(*t))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SystemTime>, D::Error> {
        let v: Vec<String> = Vec::deserialize(d)?;
        v.iter()
            .map(|s| humantime::parse_rfc3339_weak(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// A character that prints as nothing or changes how the text around it is laid out: the
/// zero-width and joiner characters, the bidirectional marks, embeddings, overrides and
/// isolates (`U+202E` RIGHT-TO-LEFT OVERRIDE shows `web\u{202e}gol` as `weblog`), the other
/// Unicode format characters (category Cf), invisible fillers, variation selectors and tags.
/// Two names that differ only by one print identically; a name is refused with one in it.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                     // soft hyphen
            | '\u{034F}'               // combining grapheme joiner
            | '\u{0600}'..='\u{0605}' // Arabic number signs (prepended format characters)
            | '\u{061C}'               // Arabic letter mark
            | '\u{06DD}'               // Arabic end of ayah
            | '\u{070F}'               // Syriac abbreviation mark
            | '\u{0890}'..='\u{0891}' // Arabic pound and piastre marks above
            | '\u{08E2}'               // Arabic disputed end of ayah
            | '\u{115F}'..='\u{1160}' // Hangul fillers
            | '\u{17B4}'..='\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors, vowel separator
            | '\u{200B}'..='\u{200F}' // zero width space, (non-)joiner, LRM, RLM
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, isolates
            | '\u{3164}'               // Hangul filler
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}'               // zero width no-break space (BOM)
            | '\u{FFA0}'               // halfwidth Hangul filler
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
            | '\u{110BD}' | '\u{110CD}' // Kaithi number signs
            | '\u{13430}'..='\u{1343F}' // Egyptian hieroglyph format controls
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical format characters
            | '\u{2800}'               // braille pattern blank (prints as a space)
            | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
    )
}

/// A space other than the ASCII one (no-break, en, em, ideographic, ...): it prints as a
/// space, so `web` and `web\u{a0}` look the same.
pub fn is_unusual_space(c: char) -> bool {
    c != ' ' && c.is_whitespace() && !c.is_ascii()
}

/// `s` as it is safe to print on a terminal and in a table: each control character (the
/// start of a terminal escape sequence, a newline that would forge a line) and each invisible
/// or bidirectional formatting character ([`is_invisible`]) is written as an escape a person
/// can read: `\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}` (the Unicode line and paragraph
/// separators too). Everything else is left as it is.
pub fn printable(s: &str) -> String {
    use std::fmt::Write as _;
    let hidden =
        |c: char| c.is_control() || is_invisible(c) || matches!(c, '\u{2028}' | '\u{2029}');
    if !s.chars().any(hidden) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// [`printable`], line by line: the line breaks of a multi-line text stay, every other
/// control or invisible character is escaped (`test-config`'s summary).
pub fn printable_lines(s: &str) -> String {
    s.split('\n').map(printable).collect::<Vec<_>>().join("\n")
}

/// Edit distance (insertions, deletions, substitutions, and swaps of neighbours).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The key `key` probably meant: the same but for case or `-`, a typo (a few edits), or the
/// start of a longer key (`tcp` -> `tcp_port`, `timeout` -> `timeout_seconds`).
pub fn suggest<'f>(key: &str, fields: &[&'f str]) -> Option<&'f str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    // no key is this long: nothing to suggest (and the edit distance costs its length squared)
    if key.is_empty() || key.len() > 64 {
        return None;
    }
    let k = norm(key);
    if let Some(f) = fields.iter().find(|f| norm(f) == k) {
        return Some(f);
    }
    let (best, dist) = fields
        .iter()
        .map(|f| (*f, distance(&k, f)))
        .min_by_key(|(_, d)| *d)?;
    if dist <= (k.chars().count() / 4).max(1) {
        return Some(best);
    }
    // a typo in the start of a longer key: `timout` -> `timeout_seconds`
    let n = k.chars().count();
    if n >= 4 {
        let mut near: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| {
                let fc: Vec<char> = f.chars().collect();
                (n - 1..=n + 1).any(|m| {
                    m <= fc.len() && distance(&k, &fc[..m].iter().collect::<String>()) <= 1
                })
            })
            .collect();
        near.sort_by_key(|f| f.len());
        if let Some(f) = near.first() {
            return Some(f);
        }
    }
    if k.len() >= 3 {
        let mut starts: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| f.starts_with(&k) || (k.len() >= 5 && f.contains(&k)))
            .collect();
        starts.sort_by_key(|f| f.len());
        if let Some(f) = starts.first() {
            return Some(f);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_for_people_and_for_machines() {
        assert_eq!(secs(Duration::from_secs(3)), "3s");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5s");
        assert_eq!(secs_exact(Duration::from_micros(400)), "0.000400");
    }

    #[test]
    fn os_errors_are_short_lowercase_phrases() {
        let e = std::io::Error::from_raw_os_error(nix::libc::ECONNREFUSED);
        assert_eq!(os_error(&e), "connection refused");
        let e = std::io::Error::from_raw_os_error(nix::libc::EAGAIN);
        assert!(os_error(&e).contains("process limit"));
    }

    #[test]
    fn fnv1a_is_stable_and_round1_rounds() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(round1(12.345), 12.3);
        assert_eq!(round1(0.05), 0.1);
    }

    #[test]
    fn printable_escapes_terminal_escapes_and_invisible_characters() {
        assert_eq!(printable("plain text: ok"), "plain text: ok");
        assert_eq!(
            printable("\u{1b}]0;pwned\u{7}\u{1b}[2Jx"),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2Jx"
        );
        assert_eq!(printable("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(printable("web\u{202e}gol"), "web\\u{202e}gol");
        assert_eq!(printable("we\u{200b}b"), "we\\u{200b}b");
        assert_eq!(printable("caf\u{e9} \u{65e5}"), "caf\u{e9} \u{65e5}");
        assert_eq!(printable_lines("a\u{1b}\nb"), "a\\u{1b}\nb");
        assert!(is_invisible('\u{200b}') && is_invisible('\u{2066}') && is_invisible('\u{feff}'));
        // every format character (Cf) of Unicode 15, and blanks that print as a space
        for c in [
            '\u{600}',
            '\u{605}',
            '\u{6dd}',
            '\u{70f}',
            '\u{8e2}',
            '\u{110bd}',
            '\u{13430}',
        ]
        .into_iter()
        .chain(['\u{1bca0}', '\u{e0001}', '\u{2800}'])
        {
            assert!(is_invisible(c), "{c:?}");
        }
        assert!(!is_invisible('a') && !is_invisible('\u{e9}'));
        assert!(is_unusual_space('\u{a0}') && is_unusual_space('\u{3000}'));
        assert!(!is_unusual_space(' ') && !is_unusual_space('\t'));
    }
}

/// The systemd units shipped in `packaging/systemd` (what `install` and the Debian package
/// install), and the limits they put on a pass: read from the unit files themselves, so a
/// change there is a change here.
pub mod units {
    use std::time::Duration;

    pub const SERVICE: &str = include_str!("../packaging/systemd/neon-watchdog.service");
    pub const TIMER: &str = include_str!("../packaging/systemd/neon-watchdog.timer");
    pub const DAEMON: &str = include_str!("../packaging/systemd/neon-watchdog-daemon.service");

    /// A time span setting `key=` of a unit (`120s`, `2min`, `1h 30s`, a bare number of
    /// seconds); None if absent or not understood.
    pub fn span(unit: &str, key: &str) -> Option<Duration> {
        let value = unit
            .lines()
            .filter_map(|l| l.trim().strip_prefix(key)?.trim_start().strip_prefix('='))
            .next_back()?
            .trim();
        let mut total = 0u64;
        for part in value.split_whitespace() {
            let digits = part
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(part.len());
            let n: u64 = part[..digits].parse().ok()?;
            let per = match &part[digits..] {
                "" | "s" | "sec" | "second" | "seconds" => 1,
                "m" | "min" | "minute" | "minutes" => 60,
                "h" | "hr" | "hour" | "hours" => 3600,
                _ => return None,
            };
            total = total.checked_add(n.checked_mul(per)?)?;
        }
        Some(Duration::from_secs(total))
    }

    /// How long the shipped oneshot unit lets a `check` pass run before systemd kills it.
    pub fn timeout_start() -> Option<Duration> {
        span(SERVICE, "TimeoutStartSec")
    }

    /// How long the shipped daemon unit lets `run` go without a sign of life (it gives none
    /// while a pass runs) before systemd kills it.
    pub fn watchdog() -> Option<Duration> {
        span(DAEMON, "WatchdogSec")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_shipped_limits_are_read_from_the_units() {
            assert_eq!(timeout_start(), Some(Duration::from_secs(120)));
            assert_eq!(watchdog(), Some(Duration::from_secs(300)));
            assert_eq!(span("A=2min 30s\n", "A"), Some(Duration::from_secs(150)));
            assert_eq!(
                span("# A=5s\nAB=3\nA = 7\n", "A"),
                Some(Duration::from_secs(7))
            );
            assert_eq!(span("A=infinity\n", "A"), None);
            assert_eq!(span("B=1\n", "A"), None);
        }
    }
}
