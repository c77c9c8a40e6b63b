//! The one redaction mechanism for everything the watchdog prints, stores or sends.
//!
//! Every log line (both formats, every level), every `test-config` summary line, every string
//! written to the state file, `status` (table and JSON), webhook and heartbeat bodies and config
//! errors pass through [`Redactor::redact`]. It hides:
//! - every value that came from a `${NAME}` expansion in the config (registered at load time),
//!   in every form our output can give it (see below);
//! - the value of `password=`, `token=`, `secret=`, `key=` style assignments (also with a
//!   prefix such as `api_key=`, `--db-password=`, or in a URL query `?token=...`);
//! - in an argv, the element after a flag like `--password` or `--token` ([`Redactor::argv`]).
//!
//! Values are replaced by `***`. Plain strings stay readable: only what looks secret goes.
//!
//! **Every form.** A value with `"` or `\` in it changes when it is formatted: `{:?}`, JSON and
//! logfmt write `tok"en\x` as `tok\"en\\x`, and text that is formatted twice (a `{:?}` reason
//! inside a JSON body) escapes it twice. Masking must not depend on every call site redacting
//! before it formats, so each secret is registered with every form it can take in our output:
//! as it is, escaped once and twice by each escaper the watchdog uses (Rust `{:?}` and
//! `escape_debug`, JSON, logfmt, the terminal escaping of tables and summaries), inside POSIX
//! sh single quotes, and percent-encoded (URLs).
//!
//! **Cut text.** Output tails are cut out of longer streams. A cut can fall inside a secret,
//! and the part on our side of it is no full match. [`Redactor::redact_cut`] masks, at a cut,
//! any end of a secret (at the front) or any beginning of one (at the back) before anything
//! else, so callers mask before they cut and use it for text that was cut before they saw it.

use std::sync::Arc;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Shorter `${NAME}` values are not masked (see [`Redactor::new`]).
pub const MIN_SECRET_LEN: usize = 4;

/// Names whose assigned value is secret, matched case-insensitively on the end of an
/// identifier (`api_key`, `DB_PASSWORD`, `access-token`), at a `_`/`-` boundary or whole.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "key",
    "apikey",
    "auth",
    "credentials",
];

/// Holds the literal secret values known to this run; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every form of every secret (see the module doc), longest first, so that a form
    /// containing another is masked whole.
    forms: Arc<Vec<String>>,
}

/// The escapers a string can go through on its way out, each giving the text between the
/// quotes it would add.
const ESCAPERS: &[fn(&str) -> String] = &[
    rust_debug,
    rust_escape_debug,
    json_escape,
    logfmt_escape,
    crate::util::printable,
];

/// `format!("{s:?}")` without its quotes (escapes `"`, not `'`).
fn rust_debug(s: &str) -> String {
    let q = format!("{s:?}");
    q.get(1..q.len().saturating_sub(1))
        .unwrap_or_default()
        .to_string()
}

/// `str::escape_debug` (escapes `'` too).
fn rust_escape_debug(s: &str) -> String {
    s.escape_debug().to_string()
}

/// A JSON string's contents, as serde_json writes them.
fn json_escape(s: &str) -> String {
    let q = serde_json::Value::String(s.to_string()).to_string();
    q.get(1..q.len().saturating_sub(1))
        .unwrap_or_default()
        .to_string()
}

/// A logfmt quoted value's contents: `\"`, `\\`, `\n`, `\r`, `\t`, other controls and
/// invisible or bidirectional characters ([`crate::util::is_invisible`]) as `\u{..}`. The logger quotes with this (see `logging::quote`), so the two cannot differ.
pub fn logfmt_escape(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || crate::util::is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Inside POSIX sh single quotes: `'` becomes `'\''`.
fn sh_escape(s: &str) -> String {
    s.replace('\'', "'\\''")
}

/// Percent-encoding of every byte outside RFC 3986's unreserved set.
fn percent_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `value` and every form our output can give it.
fn forms_of(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string(), sh_escape(value), percent_encode(value)];
    for first in ESCAPERS {
        let once = first(value);
        for second in ESCAPERS {
            forms.push(second(&once));
        }
        forms.push(once);
    }
    forms
}

impl Redactor {
    /// A redactor for these literal values. Values shorter than [`MIN_SECRET_LEN`] characters
    /// are ignored: masking `1` or `on` everywhere would make every log line unreadable, and
    /// so short a value is no secret (the config loader warns about them).
    pub fn new<I: IntoIterator<Item = String>>(values: I) -> Self {
        let mut v: Vec<String> = values
            .into_iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .flat_map(|s| forms_of(&s))
            .collect();
        v.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        v.dedup();
        Redactor { forms: Arc::new(v) }
    }

    /// Mask every known secret, in every form, and every `name=value` assignment whose name
    /// looks secret.
    pub fn redact(&self, s: &str) -> String {
        if self.forms.is_empty() {
            return mask_assignments(s);
        }
        let mut out = s.to_string();
        for form in self.forms.iter() {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), MASK);
            }
        }
        mask_assignments(&out)
    }

    /// [`Redactor::redact`] for bytes cut out of a longer stream (an output tail), as text.
    /// `front_cut`: earlier bytes were dropped, so the bytes begin exactly at a cut, maybe
    /// inside a secret: the longest end of any secret form they begin with is masked, however
    /// short. The back may be cut too (a writer still writing as the tail is read): a beginning
    /// of a secret form of at least [`MIN_SECRET_LEN`] bytes that they end with is masked
    /// (shorter ones would mask ordinary endings of output too often).
    pub fn redact_cut(&self, bytes: &[u8], front_cut: bool) -> String {
        let mut start = 0;
        let mut front_masked = false;
        if front_cut {
            let k = self
                .forms
                .iter()
                .map(|f| longest_suffix_prefix(f.as_bytes(), bytes))
                .max()
                .unwrap_or(0);
            if k > 0 {
                start = k;
                front_masked = true;
            }
        }
        let rest = &bytes[start..];
        let k = self
            .forms
            .iter()
            .map(|f| longest_prefix_suffix(f.as_bytes(), rest))
            .max()
            .unwrap_or(0);
        let (body, back_masked) = if k >= MIN_SECRET_LEN {
            (&rest[..rest.len() - k], true)
        } else {
            (rest, false)
        };
        let mut text = String::with_capacity(bytes.len() + 2 * MASK.len());
        if front_masked {
            text.push_str(MASK);
        }
        text.push_str(&String::from_utf8_lossy(body));
        if back_masked {
            text.push_str(MASK);
        }
        self.redact(&text)
    }

    /// Render an argv for humans, POSIX sh quoted (pasted into a shell it gives back the same
    /// words), masking the value after a secret-looking flag (`--password hunter2`) as well as
    /// everything [`Redactor::redact`] masks. Each element is masked before it is quoted.
    pub fn argv(&self, argv: &[String]) -> String {
        let mut parts = Vec::with_capacity(argv.len());
        let mut hide_next = false;
        for (i, arg) in argv.iter().enumerate() {
            if hide_next {
                parts.push(MASK.to_string());
                hide_next = false;
                continue;
            }
            let shown = match secret_assignment(arg) {
                // the whole rest of the element is the value, quotes and all
                Some(name) => format!("{name}={MASK}"),
                None => self.redact(arg),
            };
            parts.push(sh_quote(&shown, i == 0));
            hide_next = is_secret_flag(arg);
        }
        self.redact(&parts.join(" "))
    }
}

/// The longest proper end of `form` (at least 1 byte) that `text` begins with; 0 if none.
fn longest_suffix_prefix(form: &[u8], text: &[u8]) -> usize {
    let Some(&first) = text.first() else { return 0 };
    let from = form.len().saturating_sub(text.len()).max(1);
    (from..form.len())
        .find(|&i| form[i] == first && text.starts_with(&form[i..]))
        .map_or(0, |i| form.len() - i)
}

/// The longest proper beginning of `form` that `text` ends with; 0 if none.
fn longest_prefix_suffix(form: &[u8], text: &[u8]) -> usize {
    let Some(&last) = text.last() else { return 0 };
    let max = form.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&k| form[k - 1] == last && text.ends_with(&form[..k]))
        .unwrap_or(0)
}

/// One word for POSIX sh: bare when every character is plain, else in single quotes with each
/// `'` written `'\''`. A mask stays bare where the rest is plain (`--password=***`): it stands
/// for a value, it is not meant to be run. In the first word `=` is quoted too (`A=b` would be
/// an assignment).
fn sh_quote(word: &str, first: bool) -> String {
    let plain = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '@' | '%' | '+' | ':' | ',' | '.' | '/' | '-')
            || (c == '=' && !first)
    };
    if word.is_empty() {
        "''".to_string()
    } else if word.replace(MASK, "").chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", sh_escape(word))
    }
}

/// An HTTP header whose value is a secret: Authorization, Proxy-Authorization, Cookie, and
/// names that contain token, key, secret, auth, password or session (`X-Api-Key`).
pub fn header_is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "cookie"
        || n == "set-cookie"
        || [
            "auth", "token", "key", "secret", "password", "passwd", "session",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// `--password=VALUE`, `DB_TOKEN=VALUE` as one argv element: the part before `=`, when the
/// value is secret.
fn secret_assignment(arg: &str) -> Option<&str> {
    let (name, value) = arg.split_once('=')?;
    let bare = name.trim_start_matches('-');
    let ident = !bare.is_empty()
        && bare
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    (ident && !value.is_empty() && name_is_secret(bare)).then_some(name)
}

/// `--password`, `-token`, `--api-key` (with no `=` in it): the next argv element is secret.
/// Boolean flags such as `--no-ask-password` take no value.
fn is_secret_flag(arg: &str) -> bool {
    let name = arg.trim_start_matches('-');
    arg.starts_with('-')
        && !arg.contains('=')
        && !name.starts_with("no-")
        && !name.starts_with("no_")
        && name_is_secret(name)
}

fn name_is_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|word| {
        lower == *word
            || (lower.ends_with(word) && {
                let before = lower.as_bytes()[lower.len() - word.len() - 1];
                before == b'_' || before == b'-' || before == b'.'
            })
    })
}

/// Mask the value of each `name=value` (or `name: value` is left alone: too common in prose)
/// whose name looks secret. The value ends at whitespace, `&`, `;`, `,` or a quote.
fn mask_assignments(s: &str) -> String {
    if !s.contains('=') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            // the identifier just before '='
            let mut start = i;
            while start > 0 {
                let c = bytes[start - 1];
                if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' {
                    start -= 1;
                } else {
                    break;
                }
            }
            if start < i && name_is_secret(&s[start..i]) {
                let mut end = i + 1;
                while end < bytes.len() && !is_value_end(bytes[end]) {
                    end += 1;
                }
                if end > i + 1 && &s[i + 1..end] != MASK {
                    out.push_str(&s[copied..=i]);
                    out.push_str(MASK);
                    copied = end;
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

fn is_value_end(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'&' | b';' | b',' | b'"' | b'\'')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(secrets: &[&str]) -> Redactor {
        Redactor::new(secrets.iter().map(|s| s.to_string()))
    }

    #[test]
    fn masks_registered_values_everywhere() {
        let red = r(&["s3cr3t-value"]);
        assert_eq!(
            red.redact("auth failed for s3cr3t-value (s3cr3t-value)"),
            "auth failed for *** (***)"
        );
    }

    #[test]
    fn longest_secret_wins() {
        let red = r(&["abcd", "abcdefgh"]);
        assert_eq!(red.redact("x abcdefgh y abcd"), "x *** y ***");
    }

    #[test]
    fn empty_and_very_short_values_are_not_secrets() {
        let red = r(&["", "1", "on", "abc"]);
        assert_eq!(red.redact("plain 1 on abc"), "plain 1 on abc");
    }

    #[test]
    fn masks_secret_assignments() {
        let red = Redactor::default();
        assert_eq!(red.redact("--password=hunter2 -v"), "--password=*** -v");
        assert_eq!(red.redact("api_key=abc123"), "api_key=***");
        assert_eq!(
            red.redact("http://h/x?token=abc&page=2"),
            "http://h/x?token=***&page=2"
        );
        assert_eq!(
            red.redact("DB_PASSWORD=x SECRET=y"),
            "DB_PASSWORD=*** SECRET=***"
        );
        assert_eq!(red.redact("key=v"), "key=***");
    }

    #[test]
    fn leaves_lookalikes_alone() {
        let red = Redactor::default();
        assert_eq!(red.redact("monkey=banana"), "monkey=banana");
        assert_eq!(red.redact("tokens_used=5"), "tokens_used=5");
        assert_eq!(red.redact("a == b"), "a == b");
        assert_eq!(red.redact("password= x"), "password= x");
    }

    #[test]
    fn argv_masks_value_after_secret_flag() {
        let red = Redactor::default();
        let argv: Vec<String> = ["/bin/cli", "--password", "hunter2", "--user", "bob"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(red.argv(&argv), "/bin/cli --password *** --user bob");
    }

    #[test]
    fn boolean_no_flags_hide_nothing() {
        let red = Redactor::default();
        let argv: Vec<String> = ["systemctl", "--no-ask-password", "restart", "x.service"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            red.argv(&argv),
            "systemctl --no-ask-password restart x.service"
        );
    }

    #[test]
    fn argv_quotes_spaces_and_masks_registered() {
        let red = r(&["tok1"]);
        let argv: Vec<String> = ["/bin/echo", "a b", "Bearer tok1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(red.argv(&argv), "/bin/echo 'a b' 'Bearer ***'");
    }

    const ESCAPY: &str = r#"tok"en\x\y-1234"#;

    #[test]
    fn masks_every_escaped_form() {
        let red = r(&[ESCAPY]);
        let debug = format!("reason: {ESCAPY:?}");
        assert_eq!(red.redact(&debug), "reason: \"***\"");
        let json = serde_json::json!({ "r": ESCAPY }).to_string();
        assert_eq!(red.redact(&json), r#"{"r":"***"}"#);
        // twice: a `{:?}` reason inside a JSON body, JSON inside a Debug dump
        let twice = serde_json::json!({ "r": debug }).to_string();
        assert_eq!(red.redact(&twice), r#"{"r":"reason: \"***\""}"#);
        assert_eq!(red.redact(&format!("{json:?}")), r#""{\"r\":\"***\"}""#);
        assert_eq!(
            red.redact(&crate::redact::logfmt_escape(ESCAPY)),
            "***",
            "logfmt"
        );
        assert_eq!(red.redact(&ESCAPY.escape_debug().to_string()), "***");
        assert_eq!(red.redact("/x/tok%22en%5Cx%5Cy-1234/y"), "/x/***/y");
        // a single quote, inside sh single quotes
        let red = r(&["it's-secret"]);
        assert_eq!(red.redact("'it'\\''s-secret'"), "'***'");
        let argv: Vec<String> = ["/bin/x", "it's-secret", "a it's-secret"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(red.argv(&argv), "/bin/x *** 'a ***'");
    }

    #[test]
    fn argv_is_posix_sh_quoted() {
        let red = Redactor::default();
        let argv: Vec<String> = ["/bin/sh", "-c", "printf 'x %s' \"$0\"", "", "a=b", "$HOME"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            red.argv(&argv),
            r#"/bin/sh -c 'printf '\''x %s'\'' "$0"' '' a=b '$HOME'"#
        );
        let first: Vec<String> = vec!["A=b".into(), "x".into()];
        assert_eq!(red.argv(&first), "'A=b' x");
        let pw: Vec<String> = vec!["cli".into(), "--password=it's".into()];
        assert_eq!(red.argv(&pw), "cli --password=***");
    }

    #[test]
    fn a_cut_inside_a_secret_leaks_no_part_of_it() {
        let red = r(&["ABCDEFGHIJKLMNOPQRST"]);
        // the front cut 8 characters into the secret
        assert_eq!(red.redact_cut(b"IJKLMNOPQRST end", true), "*** end");
        // however little is left of it
        assert_eq!(red.redact_cut(b"T end", true), "*** end");
        // not cut: text that merely begins like the end of a secret is left alone
        assert_eq!(red.redact_cut(b"T end", false), "T end");
        // the back cut inside one (a writer still writing)
        assert_eq!(red.redact_cut(b"start ABCDEFG", false), "start ***");
        assert_eq!(red.redact_cut(b"start ABC", false), "start ABC");
        // and an escaped form cut the same way
        let red = r(&[ESCAPY]);
        assert_eq!(red.redact_cut(br#"en\\x\\y-1234" x"#, true), r#"***" x"#);
        // and a whole one in the middle, as ever
        assert_eq!(red.redact_cut(br#"a tok"en\x\y-1234 b"#, true), "a *** b");
        assert_eq!(red.redact_cut(b"", true), "");
    }
}
