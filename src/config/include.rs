//! `include:` (conf.d): the targets of other files, from the drop-in directory that packages and
//! configuration management write into (`include: [conf.d/*.yml]`).
//!
//! The globs (a small matcher of our own: the `glob` crate is not in the tree, and walking the
//! directories ourselves lets every directory read be checked like the config's):
//! - `*` any run of characters, `?` one character, `[abc]`, `[a-z]`, `[!a]` (or `[^a]`) one of,
//!   or none of, the characters; `\` makes the next character literal. Any component may hold
//!   wildcards (`conf.d/*/*.yml`); none matches a `/`; `**` (any depth) is not supported.
//! - A relative glob resolves against the config's directory; an absolute one is used as is.
//! - Each glob's files are read in name order (byte order of the path); globs in the listed
//!   order. A file reached twice (by two globs, or through a symlink) is read once, and the
//!   config itself is skipped.
//! - A wildcard does not take hidden names (`.x`, unless the glob's component starts with `.`)
//!   nor editor and package-manager leftovers ([`LEFTOVER_SUFFIXES`], `#x#`): they are skipped,
//!   as other conf.d readers skip them, and listed as skipped.
//! - A glob that matches nothing is fine (the debug log and `test-config` say so); a path
//!   without wildcards names a file that must exist.
//!
//! Each file holds a `targets:` list and, for merge keys, top-level `x-` templates, nothing else (an empty file holds no targets, as
//! packages empty a conffile to switch it off); `include:` in one is refused: includes do not
//! nest. Every file is read by the config's rules (`file.rs`: regular files only, opened
//! non-blocking, size cap); as root, every file and every directory a glob reads is checked for
//! others' write access like the config. At most [`MAX_INCLUDED_FILES`] files and
//! [`MAX_INCLUDED_TARGETS`] targets in all.

use super::file::{self, Role};
use super::model::IncludeGlob;
use super::raw::{RawConfig, RawIncluded, RawTarget};
use super::validate::Issue;
use super::{format_of, meaningful, read_raw, render, Format, Report};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// The most files the `include:` globs may match, together.
pub const MAX_INCLUDED_FILES: usize = 1000;

/// The most targets the included files may hold, together.
pub const MAX_INCLUDED_TARGETS: usize = 10_000;

/// Names a wildcard skips: editor backups and swap files, files dpkg, ucf and rpm leave beside
/// a configuration file they did not replace.
pub const LEFTOVER_SUFFIXES: &[&str] = &[
    "~",
    ".swp",
    ".swo",
    ".bak",
    ".orig",
    ".rej",
    ".dpkg-old",
    ".dpkg-dist",
    ".dpkg-new",
    ".dpkg-tmp",
    ".dpkg-bak",
    ".ucf-old",
    ".ucf-new",
    ".ucf-dist",
    ".rpmnew",
    ".rpmsave",
    ".rpmorig",
];

/// One included file, read and parsed.
pub struct IncludedFile {
    /// As messages show it: the glob's match, joined to the config's directory as given.
    pub path: PathBuf,
    pub text: String,
    pub format: Format,
    pub targets: Vec<RawTarget>,
}

/// What the `include:` globs added.
pub struct Expanded {
    pub files: Vec<IncludedFile>,
    pub globs: Vec<IncludeGlob>,
    /// As root: who else could change an included file, or a directory a glob reads.
    pub writable_by_others: Vec<String>,
}

/// Read the files the `include:` globs of `config` match. `at_line(path, message)` words a
/// problem of the config's own `include[N]` (with its line). The error holds the problems
/// (the first [`super::MAX_PROBLEMS`] worded, the rest counted).
pub fn expand(
    config: &Path,
    patterns: &[String],
    is_root: bool,
    at_line: &dyn Fn(&str, &str) -> String,
) -> Result<Expanded, Report> {
    let base = config.parent().unwrap_or(Path::new(""));
    let config_id = std::fs::metadata(config).ok().map(|m| (m.dev(), m.ino()));
    let mut seen_dirs = file::Seen {
        dirs: if is_root {
            crate::files::dirs_above(config)
        } else {
            Vec::new()
        },
        listed: Vec::new(),
    };
    let mut ids: Vec<(u64, u64)> = Vec::new();
    // files that could not be read, by path as matched and by what it leads to (device and
    // inode, where stat can tell): a FIFO reached by two globs, or through a `self -> .`
    // symlink, is one problem
    let mut failed: Vec<PathBuf> = Vec::new();
    let mut failed_ids: Vec<(u64, u64)> = Vec::new();
    let mut out = Expanded {
        files: Vec::new(),
        globs: Vec::new(),
        writable_by_others: Vec::new(),
    };
    let mut errors = Report::default();
    let mut matched = 0;
    let mut targets = 0;
    for (i, pattern) in patterns.iter().enumerate() {
        let at = format!("include[{i}]");
        let parts = match parse_glob(pattern) {
            Ok(p) => p,
            Err(e) => {
                errors.push(at_line(&at, &format!("{pattern:?}: {e}")));
                continue;
            }
        };
        let start = if Path::new(pattern).is_absolute() {
            PathBuf::from("/")
        } else {
            base.to_path_buf()
        };
        let walk = match walk(&start, &parts, MAX_INCLUDED_FILES - matched) {
            Ok(w) => w,
            Err(e) => {
                errors.push(at_line(&at, &format!("{pattern:?}: {e}")));
                continue;
            }
        };
        if parts.iter().all(|p| !p.wild) {
            if let Some(p) = walk.matches.first() {
                if std::fs::metadata(p).is_ok_and(|m| m.is_dir()) {
                    errors.push(at_line(
                        &at,
                        &format!("{pattern:?}: {} is a directory: give a glob of the files in it, e.g. {}/*.yml", p.display(), pattern.trim_end_matches('/')),
                    ));
                    continue;
                }
                if std::fs::symlink_metadata(p).is_err() {
                    errors.push(at_line(
                        &at,
                        &format!("{pattern:?}: there is no file {}: a path without wildcards names a file that must exist; fix the path, or write a glob (conf.d/*.yml), which may match nothing", p.display()),
                    ));
                    continue;
                }
            }
        }
        matched += walk.matches.len();
        if is_root {
            for d in &walk.dirs {
                out.writable_by_others.extend(file::dir_writable_by_others(
                    pattern,
                    d,
                    &mut seen_dirs,
                ));
            }
        }
        let mut glob = IncludeGlob {
            pattern: pattern.clone(),
            files: Vec::new(),
            skipped: walk.skipped,
        };
        for path in walk.matches {
            let read = match file::read_as(&path, Role::Included) {
                Ok(r) => r,
                Err(e) => {
                    let id = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
                    let again =
                        failed.contains(&path) || id.is_some_and(|i| failed_ids.contains(&i));
                    if again {
                        glob.skipped.push((path, "already reported"));
                    } else {
                        errors.push(e);
                        failed.push(path);
                        failed_ids.extend(id);
                    }
                    continue;
                }
            };
            if Some(read.id) == config_id {
                glob.skipped.push((path, "the config itself"));
                continue;
            }
            if ids.contains(&read.id) {
                glob.skipped.push((path, "already included"));
                continue;
            }
            ids.push(read.id);
            if is_root {
                out.writable_by_others
                    .extend(file::included_writable_by_others(
                        &path,
                        &read.meta,
                        &mut seen_dirs.dirs,
                    ));
            }
            match parse_included(config, &path, read.text, errors.room()) {
                Ok(f) => {
                    targets += f.targets.len();
                    glob.files.push(path);
                    out.files.push(f);
                }
                Err(e) => errors.extend(e),
            }
        }
        out.globs.push(glob);
    }
    if targets > MAX_INCLUDED_TARGETS {
        errors.push(at_line(
            "include",
            &format!("the included files hold {targets} targets, more than the {MAX_INCLUDED_TARGETS} they may hold together: are the globs right?"),
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parse one included file: a `targets:` list (and `x-` templates) and nothing else. At most `room` problems are
/// worded, the rest counted.
fn parse_included(
    config: &Path,
    path: &Path,
    text: String,
    room: usize,
) -> Result<IncludedFile, Report> {
    let shown = path.display();
    // a UTF-8 byte-order mark is not content
    let text = match text.strip_prefix('\u{feff}') {
        Some(t) => t.to_string(),
        None => text,
    };
    let format = format_of(path, &text);
    if !meaningful(&text) {
        return Ok(IncludedFile {
            path: path.to_path_buf(),
            text,
            format,
            targets: Vec::new(),
        });
    }
    let main = config.display();
    let only = "an included file holds only a `targets:` list (and `x-` templates)";
    let top_key = |k: &str| -> String {
        let q = super::de::quote_key(k);
        if k == "include" {
            format!("includes do not nest: {only}; list this glob in the `include:` of {main}")
        } else if super::de::fields_of::<RawConfig>().contains(&k) {
            format!("{q} is a setting of the config ({main}), not of an included file: {only}")
        } else {
            let m = super::de::unknown_key_message(k, &["targets"]);
            if m.contains("did you mean") {
                format!("{m} ({only})")
            } else {
                format!("unknown field {q}: {only}")
            }
        }
    };
    let raw: RawIncluded = read_raw(&shown, &text, format, Some(&top_key), room)?;
    match raw.targets {
        Some(targets) => Ok(IncludedFile {
            path: path.to_path_buf(),
            text,
            format,
            targets,
        }),
        None => Err(Report::from(render(
            &shown,
            &text,
            format,
            &Issue {
                path: "targets".into(),
                message: format!("is missing: {only} (an empty file holds no targets)"),
                file: None,
            },
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Globs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Star,
    Class {
        neg: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Tok {
    fn takes(&self, c: char) -> bool {
        match self {
            Tok::Lit(l) => *l == c,
            Tok::One | Tok::Star => true,
            Tok::Class { neg, ranges } => {
                ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *neg
            }
        }
    }
}

/// One component of a glob.
#[derive(Debug)]
struct Part {
    toks: Vec<Tok>,
    /// Holds a wildcard (else `lit` is the name).
    wild: bool,
    lit: String,
    /// Starts with a literal `.`: it may match hidden names.
    dot: bool,
}

impl Part {
    fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let toks = &self.toks;
        let (mut t, mut n) = (0, 0);
        // where the last `*` was, and how much of the name it has taken so far
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match toks.get(t) {
                Some(Tok::Star) => {
                    star = Some((t, n));
                    t += 1;
                }
                Some(tok) if tok.takes(name[n]) => {
                    t += 1;
                    n += 1;
                }
                _ => match star {
                    Some((st, sn)) => {
                        t = st + 1;
                        n = sn + 1;
                        star = Some((st, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        toks[t..].iter().all(|x| *x == Tok::Star)
    }
}

/// The components of a glob; `..` and absolute globs are fine.
fn parse_glob(pattern: &str) -> Result<Vec<Part>, String> {
    if pattern.trim().is_empty() {
        return Err("is empty: give a glob, e.g. conf.d/*.yml".into());
    }
    if pattern.contains('\0') {
        return Err("holds a NUL byte (in YAML double quotes, \\0 is one), which no path can hold (the system stops reading at it)".into());
    }
    let mut parts = Vec::new();
    for c in Path::new(pattern).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => parts.push(Part {
                toks: vec![Tok::Lit('.'), Tok::Lit('.')],
                wild: false,
                lit: "..".into(),
                dot: true,
            }),
            Component::Normal(s) => parts.push(parse_part(&s.to_string_lossy())?),
        }
    }
    if parts.is_empty() {
        return Err("names a directory, not files: add the files' glob, e.g. conf.d/*.yml".into());
    }
    Ok(parts)
}

fn parse_part(s: &str) -> Result<Part, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                toks.push(Tok::Lit(chars[i + 1]));
                i += 2;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                return Err("`**` (any depth) is not supported: write one `*` per directory level, e.g. conf.d/*/*.yml".into());
            }
            '*' => {
                toks.push(Tok::Star);
                i += 1;
            }
            '?' => {
                toks.push(Tok::One);
                i += 1;
            }
            '[' => {
                let mut j = i + 1;
                let neg = matches!(chars.get(j), Some('!' | '^'));
                if neg {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(&c) = chars.get(j) else {
                        return Err(
                            "has an unclosed `[`: close it with `]`, or write `\\[` for a literal ["
                                .into(),
                        );
                    };
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|e| *e != ']')
                    {
                        let end = chars[j + 2];
                        if end < c {
                            return Err(format!(
                                "has the range `{c}-{end}`, which is backwards: write `{end}-{c}`"
                            ));
                        }
                        ranges.push((c, end));
                        j += 3;
                    } else {
                        ranges.push((c, c));
                        j += 1;
                    }
                }
                toks.push(Tok::Class { neg, ranges });
                i = j + 1;
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    let wild = toks.iter().any(|t| !matches!(t, Tok::Lit(_)));
    let lit: String = toks
        .iter()
        .filter_map(|t| match t {
            Tok::Lit(c) => Some(*c),
            _ => None,
        })
        .collect();
    let dot = toks.first() == Some(&Tok::Lit('.'));
    Ok(Part {
        toks,
        wild,
        lit,
        dot,
    })
}

/// Why a wildcard does not take `name`, if it does not.
fn skip_reason(name: &str, dot: bool) -> Option<&'static str> {
    if name.starts_with('.') && !dot {
        return Some("a hidden file");
    }
    if LEFTOVER_SUFFIXES.iter().any(|s| name.ends_with(s))
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
    {
        return Some("an editor or package manager leftover");
    }
    None
}

/// What a glob found.
#[derive(Debug, Default)]
struct Walk {
    /// In name order. For a glob without wildcards: the one path it names, which may not exist.
    matches: Vec<PathBuf>,
    skipped: Vec<(PathBuf, &'static str)>,
    /// Every directory read.
    dirs: Vec<PathBuf>,
}

/// The most directories a glob's wildcards may walk into (`conf.d/*/app.yml`: the
/// subdirectories of conf.d), apart from the files it matches.
pub const MAX_GLOB_DIRS: usize = 10 * MAX_INCLUDED_FILES;

/// Expand the glob `parts` from `start`; more than `budget` matches (files of the last
/// component: the directories walked through on the way do not count) is an error.
fn walk(start: &Path, parts: &[Part], budget: usize) -> Result<Walk, String> {
    let too_many = || {
        format!(
            "matches more than {budget} files{}, more than a config may include ({MAX_INCLUDED_FILES} in all): is the glob right?",
            if budget < MAX_INCLUDED_FILES { " left" } else { "" }
        )
    };
    let mut w = Walk::default();
    let mut current = vec![start.to_path_buf()];
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        let mut next: Vec<PathBuf> = Vec::new();
        for dir in &current {
            if !part.wild {
                next.push(dir.join(&part.lit));
                continue;
            }
            let at = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let entries = match std::fs::read_dir(at) {
                Ok(e) => e,
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(nix::libc::ENOTDIR) =>
                {
                    continue
                }
                Err(e) => {
                    return Err(format!(
                        "cannot read directory {}: {}",
                        at.display(),
                        crate::util::os_error(&e)
                    ))
                }
            };
            w.dirs.push(at.to_path_buf());
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| {
                    format!(
                        "cannot read directory {}: {}",
                        at.display(),
                        crate::util::os_error(&e)
                    )
                })?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !part.matches(name) {
                    continue;
                }
                let path = dir.join(name);
                if let Some(why) = skip_reason(name, part.dot) {
                    w.skipped.push((path, why));
                    continue;
                }
                if !last && !path.is_dir() {
                    continue;
                }
                found.push(path);
                if last && found.len() + next.len() > budget {
                    return Err(too_many());
                }
                if !last && found.len() + next.len() > MAX_GLOB_DIRS {
                    return Err(format!(
                        "walks into more than {MAX_GLOB_DIRS} directories: is the glob right?"
                    ));
                }
            }
            found.sort();
            next.extend(found);
        }
        current = next;
    }
    if parts.iter().any(|p| p.wild) {
        // a literal name after a wildcard (`*/app.yml`): where it is there
        current.retain(|p| std::fs::symlink_metadata(p).is_ok());
    }
    if current.len() > budget {
        return Err(too_many());
    }
    current.sort();
    w.skipped.sort();
    w.matches = current;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, name: &str) -> bool {
        parse_part(glob).unwrap().matches(name)
    }

    #[test]
    fn wildcards_match_like_the_shell() {
        assert!(m("*.yml", "api.yml"));
        assert!(m("*.yml", ".yml"));
        assert!(!m("*.yml", "api.yaml"));
        assert!(!m("*.yml", "api.yml.bak"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("?.yml", "a.yml"));
        assert!(!m("?.yml", "ab.yml"));
        assert!(m("[ab]*.yml", "b1.yml"));
        assert!(!m("[ab]*.yml", "c1.yml"));
        assert!(m("[!ab]*", "c"));
        assert!(m("[^ab]*", "c"));
        assert!(!m("[!ab]*", "a"));
        assert!(m("[0-9][0-9]-*", "10-api.yml"));
        assert!(!m("[0-9][0-9]-*", "1a-api.yml"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("\\*.yml", "*.yml"));
        assert!(!m("\\*.yml", "a.yml"));
        assert!(m("api.yml", "api.yml"));
        assert!(m("*ü*", "grün.yml"));
    }

    #[test]
    fn bad_globs_say_what_to_write() {
        assert!(parse_part("[ab").unwrap_err().contains("unclosed `[`"));
        assert!(parse_part("**").unwrap_err().contains("not supported"));
        assert!(parse_part("[z-a]").unwrap_err().contains("backwards"));
        assert!(parse_glob("").unwrap_err().contains("is empty"));
        assert!(parse_glob("/").unwrap_err().contains("names a directory"));
    }

    #[test]
    fn literal_parts_are_unescaped_names() {
        let p = parse_part("a\\[1\\].yml").unwrap();
        assert!(!p.wild);
        assert_eq!(p.lit, "a[1].yml");
    }

    #[test]
    fn leftovers_and_hidden_names_are_skipped() {
        assert_eq!(skip_reason(".api.yml.swp", false), Some("a hidden file"));
        assert_eq!(skip_reason(".api.yml", true), None);
        for n in [
            "api.yml~",
            "api.yml.dpkg-old",
            "api.yml.rpmnew",
            "#api.yml#",
        ] {
            assert_eq!(
                skip_reason(n, false),
                Some("an editor or package manager leftover"),
                "{n}"
            );
        }
        assert_eq!(skip_reason("api.yml", false), None);
        assert_eq!(skip_reason("#", false), None);
    }

    /// Each target knows its file and index, for messages raised after validation.
    #[test]
    fn targets_carry_their_origin() {
        let d = tempfile::tempdir().unwrap();
        let t =
            |n: &str| format!("  - name: {n}\n    checks: [{{tcp_port: 80}}]\n    action: none\n");
        std::fs::create_dir(d.path().join("conf.d")).unwrap();
        std::fs::write(
            d.path().join("conf.d/a.yml"),
            format!("targets:\n{}{}", t("a0"), t("a1")),
        )
        .unwrap();
        let config = d.path().join("config.yml");
        let text = format!("include: [conf.d/*.yml]\ntargets:\n{}", t("main"));
        let env = super::super::validate::Env {
            lookup: &|_| None,
            is_root: false,
            config_dir: d.path().to_path_buf(),
        };
        let loaded = super::super::parse(&config, &text, &env).unwrap();
        let origins: Vec<(String, bool, String)> = loaded
            .config
            .targets
            .iter()
            .map(|t| {
                let o = &t.origin;
                let file = o.file.strip_prefix(d.path()).unwrap().display().to_string();
                (file, o.included, o.path())
            })
            .collect();
        assert_eq!(
            origins,
            [
                ("config.yml".into(), false, "targets[0]".into()),
                ("conf.d/a.yml".into(), true, "targets[0]".into()),
                ("conf.d/a.yml".into(), true, "targets[1]".into()),
            ]
        );
        assert_eq!(loaded.config.includes.len(), 1);
        assert_eq!(loaded.config.includes[0].files.len(), 1);
    }

    #[test]
    fn walks_in_name_order_and_only_into_directories() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b/2.yml", "b/1.yml", "a/9.yml", "a/x.json", "c.yml/3.yml"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        std::fs::write(d.path().join("top.yml"), "").unwrap();
        let parts = parse_glob("*/*.yml").unwrap();
        let w = walk(d.path(), &parts, 100).unwrap();
        let rel: Vec<String> = w
            .matches
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(rel, ["a/9.yml", "b/1.yml", "b/2.yml", "c.yml/3.yml"]);
        assert_eq!(w.dirs.len(), 4, "{:?}", w.dirs);
        assert!(walk(d.path(), &parts, 3)
            .unwrap_err()
            .contains("more than 3 files"));
        // nothing there: no match, no error
        let w = walk(d.path(), &parse_glob("none/*.yml").unwrap(), 100).unwrap();
        assert!(w.matches.is_empty() && w.dirs.is_empty());
        let w = walk(d.path(), &parse_glob("*/none.yml").unwrap(), 100).unwrap();
        assert!(w.matches.is_empty());
    }
}
