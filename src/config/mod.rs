//! Configuration: read the file (YAML or JSON), parse into raw structs with exact field paths,
//! validate into the model. Every error names the file, the field path and, where known, the
//! line; all of them are reported at once.

mod de;
pub mod env;
mod file;
mod include;
mod locate;
pub mod model;
mod nesting;
pub mod raw;
pub mod schema;
pub mod validate;

pub use de::{MAX_TEXT, MAX_VALUES};
pub use file::MAX_CONFIG_BYTES;
pub use include::{MAX_INCLUDED_FILES, MAX_INCLUDED_TARGETS};
pub use model::*;
pub use validate::{Issue, SOCKET_PATH_MAX};

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The most problems a config error shows; the rest are counted ("and 15980 more problems").
/// A file of 300,000 unknown keys is reported in the time it takes to read it, and in a few
/// lines: each `check` of the timer would print it again.
pub const MAX_PROBLEMS: usize = 20;

/// The problems found: the first [`MAX_PROBLEMS`], worded (one line each), and how many more.
#[derive(Debug, Default)]
pub(crate) struct Report {
    lines: Vec<String>,
    more: usize,
}

impl Report {
    /// How many more problems would be worded.
    fn room(&self) -> usize {
        MAX_PROBLEMS.saturating_sub(self.lines.len())
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.more == 0
    }

    /// Add a problem, worded only if it will be shown.
    fn push_with(&mut self, line: impl FnOnce() -> String) {
        if self.room() > 0 {
            self.lines.push(line());
        } else {
            self.more += 1;
        }
    }

    fn push(&mut self, line: String) {
        self.push_with(|| line);
    }

    fn extend(&mut self, other: Report) {
        for l in other.lines {
            self.push(l);
        }
        self.more += other.more;
    }

    /// One problem per line; then how many were left out.
    fn finish(self) -> String {
        let mut out = self.lines.join("\n");
        if self.more > 0 {
            let n = self.lines.len() + self.more;
            out.push_str(&format!(
                "\nand {} more problems ({n} in all; the first {} are shown): fix these first",
                self.more,
                self.lines.len()
            ));
        }
        out
    }
}

impl From<String> for Report {
    fn from(line: String) -> Self {
        Report {
            lines: vec![line],
            more: 0,
        }
    }
}

/// A file's text, with its lines indexed on first use (see [`locate::Locator`]).
struct Source<'a> {
    name: String,
    text: &'a str,
    format: Format,
    lines: OnceCell<locate::Locator<'a>>,
}

impl<'a> Source<'a> {
    fn new(name: String, text: &'a str, format: Format) -> Self {
        Source {
            name,
            text,
            format,
            lines: OnceCell::new(),
        }
    }

    fn locator(&self) -> Option<&locate::Locator<'a>> {
        (self.format == Format::Yaml)
            .then(|| self.lines.get_or_init(|| locate::Locator::new(self.text)))
    }

    fn line_of(&self, path: &str) -> Option<usize> {
        self.locator()?.line_of_nth(path, 0)
    }

    fn render(&self, i: &Issue) -> String {
        render_at(&self.name, self.locator(), i)
    }
}
/// A loaded config and the warnings found while validating it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
    /// As root: one message per way someone other than root could change the config file
    /// (the file or a directory above it writable by others, or not owned by root), or a file
    /// it includes, or a directory an include glob reads. Its commands run as root: `check`
    /// and `run` refuse such a config, `test-config` warns. For a config parsed from text,
    /// only what concerns the files it includes.
    pub writable_by_others: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Json,
}

fn format_of(path: &Path, text: &str) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("yml" | "yaml") => Format::Yaml,
        _ if text.trim_start().starts_with('{') => Format::Json,
        _ => Format::Yaml,
    }
}

/// Load and validate the config at `path`, reading `${NAME}` from the process environment.
/// The error is the full, user-facing message (one problem per line).
pub fn load(path: &Path) -> Result<Loaded, String> {
    let file = file::read(path)?;
    let lookup = |name: &str| std::env::var(name).ok();
    let config_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let config_dir = std::path::absolute(&config_dir).unwrap_or(config_dir);
    let env = validate::Env {
        lookup: &lookup,
        is_root: nix::unistd::geteuid().is_root(),
        config_dir,
    };
    let mut loaded = parse(path, &file.text, &env)?;
    let included = std::mem::take(&mut loaded.writable_by_others);
    loaded.writable_by_others = file.writable_by_others;
    loaded.writable_by_others.extend(included);
    Ok(loaded)
}

/// Whether `text` holds anything but blank lines, comments and `---`.
fn meaningful(text: &str) -> bool {
    text.lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---")
}

/// Parse and validate `text` (the content of `path`), with the files it includes.
pub fn parse(path: &Path, text: &str, env: &validate::Env) -> Result<Loaded, String> {
    let file = path.display();
    // a UTF-8 byte-order mark (editors on Windows write one) is not content
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !meaningful(text) {
        return Err(format!(
            "{file}: config is empty: it needs at least a `targets:` list (the README's Configuration section shows one)"
        ));
    }
    let format = format_of(path, text);
    let mut raw: raw::RawConfig =
        read_raw(&file, text, format, None, MAX_PROBLEMS).map_err(Report::finish)?;
    let main = Source::new(file.to_string(), text, format);
    let includes = match raw.include.take() {
        Some(globs) => {
            let at_line = |p: &str, msg: &str| {
                main.render(&Issue {
                    path: p.to_string(),
                    message: msg.to_string(),
                    file: None,
                })
            };
            Some(include::expand(path, &globs.0, env.is_root, &at_line).map_err(Report::finish)?)
        }
        None => None,
    };
    let used = includes.as_ref().is_some_and(|x| !x.globs.is_empty());
    let (mut files, globs, writable_by_others) = match includes {
        Some(x) => (x.files, x.globs, x.writable_by_others),
        None => Default::default(),
    };
    let targets: Vec<validate::TargetsFile> = files
        .iter_mut()
        .map(|f| validate::TargetsFile {
            path: f.path.clone(),
            targets: std::mem::take(&mut f.targets),
        })
        .collect();
    // each file by its name in an issue (None: the config itself), its lines indexed once
    let sources: Vec<Source> = files
        .iter()
        .map(|f| Source::new(f.path.display().to_string(), &f.text, f.format))
        .collect();
    let by_path: HashMap<&Path, usize> = files
        .iter()
        .enumerate()
        .map(|(n, f)| (f.path.as_path(), n))
        .collect();
    let source = |of: Option<&Path>| -> &Source {
        match of.and_then(|p| by_path.get(p)) {
            Some(&n) => &sources[n],
            None => &main,
        }
    };
    let line_of = |of: Option<&Path>, p: &str| source(of).line_of(p);
    let included = validate::Included {
        used,
        files: targets,
        line_of: &line_of,
    };
    let shown = |i: &Issue| source(i.file.as_deref()).render(i);
    match validate::validate(raw, included, path, env) {
        Ok((mut config, warnings)) => {
            config.includes = globs;
            Ok(Loaded {
                warnings: warnings.iter().map(shown).collect(),
                config,
                writable_by_others,
            })
        }
        Err(issues) => {
            let mut report = Report::default();
            for i in &issues {
                report.push_with(|| shown(i));
            }
            Err(report.finish())
        }
    }
}

/// Parse `text` into the raw struct `T` (stage one). `top_key` words the message of an
/// unknown top-level key (an included file's, which is also how an included file is told
/// from the config), instead of the generic one. At most `room` problems are worded, the
/// rest counted.
fn read_raw<T: for<'de> serde::Deserialize<'de>>(
    file: &impl std::fmt::Display,
    text: &str,
    format: Format,
    top_key: Option<&dyn Fn(&str) -> String>,
    room: usize,
) -> Result<T, Report> {
    fn reword<E>(f: &mut de::Failure<E>, top_key: Option<&dyn Fn(&str) -> String>) {
        let Some(top_key) = top_key else { return };
        for k in &mut f.keys {
            if !k.path.contains(['.', '[']) && k.message.starts_with("unknown field") {
                k.message = top_key(&k.path);
            }
        }
    }
    let included = top_key.is_some();
    let opts = de::Options {
        json: format == Format::Json,
        aliases: format == Format::Yaml && text.contains('&'),
        merge_keys: format == Format::Yaml,
        max_keys: room,
    };
    let fields = de::fields_of::<T>();
    match format {
        Format::Yaml => {
            // before the parser, whose scanner takes quadratic time on deep flow nesting
            if let Some(line) = nesting::too_deep(text) {
                return Err(Report::from(format!(
                    "{file}: lists and maps are nested too deeply at line {line}: more than {} levels of `[` and `{{`, where a config needs a few; is this the right file? (line {line})",
                    nesting::MAX_FLOW_DEPTH
                )));
            }
            de::deserialize(serde_yaml::Deserializer::from_str(text), opts).map_err(|mut f| {
                if let Some(r) = not_a_config(file, text, format, &f, fields, included) {
                    return r;
                }
                reword(&mut f, top_key);
                failure(file, text, format, f, room, |path, e| {
                    yaml_error(file, text, path, e)
                })
            })
        }
        Format::Json => {
            let mut d = serde_json::Deserializer::from_str(text);
            let raw = de::deserialize(&mut d, opts).and_then(|r| match d.end() {
                Ok(()) => Ok(r),
                Err(e) => Err(de::Failure {
                    keys: Vec::new(),
                    more_keys: 0,
                    first_key: None,
                    has_targets: false,
                    error: Some((String::new(), e)),
                }),
            });
            raw.map_err(|mut f| {
                if let Some(r) = not_a_config(file, text, format, &f, fields, included) {
                    return r;
                }
                reword(&mut f, top_key);
                failure(file, text, format, f, room, |path, e| {
                    json_error(file, path, text, e)
                })
            })
        }
    }
}

/// A file whose first key is no setting (nor close to one) and that has no `targets:` is not
/// a config with typos but some other file (`-c` or an include glob pointed at the wrong
/// thing, `/etc/shadow` as root): one line says so, instead of one per line of the file, each
/// quoting it.
fn not_a_config<E>(
    file: &impl std::fmt::Display,
    text: &str,
    format: Format,
    f: &de::Failure<E>,
    fields: &[&str],
    included: bool,
) -> Option<Report> {
    let first = f.first_key.as_deref()?;
    if (f.keys.is_empty() && f.more_keys == 0) || f.has_targets || fields.contains(&first) {
        return None;
    }
    if de::suggest(first, fields).is_some() {
        return None;
    }
    let line = match format {
        Format::Yaml if !first.contains(['.', '[']) => locate::line_of(text, first),
        _ => None,
    }
    .map(|l| format!(" (line {l})"))
    .unwrap_or_default();
    let key = de::quote_key(first);
    let what = if included {
        "an included file holds a `targets:` list: is the include glob right?"
    } else {
        "a config holds settings such as `targets:`: is this the right file? (the README's Configuration section shows one)"
    };
    Some(Report::from(format!(
        "{file}: does not look like a neon-watchdog config file: its first key is {key}, which is not a setting, and it has no `targets:`; {what}{line}"
    )))
}

/// Every problem found while reading: the unknown and repeated keys, then the error that
/// stopped reading, if any. One line each, the first `room` of them worded.
fn failure<E>(
    file: &impl std::fmt::Display,
    text: &str,
    format: Format,
    f: de::Failure<E>,
    room: usize,
    error: impl Fn(&str, &E) -> String,
) -> Report {
    // the lines of the file are indexed once for all its problems
    let lines = (format == Format::Yaml && !f.keys.is_empty()).then(|| locate::Locator::new(text));
    let mut report = Report {
        lines: Vec::new(),
        more: f.more_keys,
    };
    for k in &f.keys {
        let line = lines
            .as_ref()
            .and_then(|x| x.line_of_nth(&k.path, k.occurrence));
        report.lines.push(match line {
            Some(l) => format!("{file}: {}: {} (line {l})", k.shown, k.message),
            None => format!("{file}: {}: {}", k.shown, k.message),
        });
    }
    if let Some((path, e)) = &f.error {
        let msg = error(path, e);
        // the reader stops at an unknown key it could not skip: that key is reported above
        let reported = f.keys.len() + f.more_keys > 0;
        if !(msg.contains(de::STOPPED) && reported) {
            if report.lines.len() < room {
                report.lines.push(msg);
            } else {
                report.more += 1;
            }
        }
    }
    report
}

/// A YAML error: syntax (with what to do about tabs and extra documents), or a wrong value.
fn yaml_error(
    file: &impl std::fmt::Display,
    text: &str,
    path: &str,
    e: &serde_yaml::Error,
) -> String {
    let inner = e.to_string();
    if inner.contains("more than one document") {
        return match second_document(text) {
            Some(l) => format!(
                "{file}: a second YAML document starts at line {l}: a config is one document; remove the `---` or `...` that separates them and merge what follows into the first (line {l})"
            ),
            None => format!(
                "{file}: the file holds more than one YAML document: a config is one document; merge them into one"
            ),
        };
    }
    if inner.contains("repetition limit exceeded") {
        return format!(
            "{file}: the config expands to too much once YAML aliases are expanded: an alias `*name` repeats everything its anchor `&name` holds; write such parts out or use fewer aliases"
        );
    }
    if inner.contains("recursion limit exceeded") {
        let msg = parse_error(file, path, &inner);
        return msg.replacen(
            "recursion limit exceeded",
            "nested too deeply (more than 128 levels of lists and maps)",
            1,
        );
    }
    let msg = parse_error(file, path, &inner);
    if is_syntax_error(&inner) {
        if let Some((line, column)) = tab_indent(text, &inner) {
            return format!(
                "{file}: YAML syntax error: line {line} is indented with a tab: YAML indents with spaces only; replace the tab with spaces (line {line}, column {column})"
            );
        }
        syntax_hint(file, &msg, "YAML")
    } else {
        msg
    }
}

/// A JSON error; a file named .json that holds YAML is told so.
fn json_error(
    file: &impl std::fmt::Display,
    path: &str,
    text: &str,
    e: &serde_json::Error,
) -> String {
    let msg = parse_error(file, path, &e.to_string());
    if !(e.is_syntax() || e.is_eof()) {
        return msg;
    }
    let first = text.trim_start().chars().next();
    if matches!(first, Some('{' | '[')) {
        return syntax_hint(file, &msg, "JSON");
    }
    // the extension chose JSON for what is YAML (or anything but JSON)
    let rest = msg.strip_prefix(&format!("{file}: ")).unwrap_or(&msg);
    let rest = match rest.split_once(": ") {
        Some((path, tail)) if !path.contains(' ') => tail,
        _ => rest,
    };
    format!(
        "{file}: JSON syntax error: {rest}; the file name ends in .json, so it is read as JSON, but the content looks like YAML: name it .yml (or write it as JSON)"
    )
}

/// The line where a second YAML document starts (a `---` after content, or content after a
/// `...`), if any.
fn second_document(text: &str) -> Option<usize> {
    let mut content = false;
    let mut ended = false;
    for (i, l) in text.lines().enumerate() {
        let marker =
            |m: &str| l == m || l.starts_with(&format!("{m} ")) || l.starts_with(&format!("{m}\t"));
        if marker("---") {
            if content || ended {
                return Some(i + 1);
            }
            continue;
        }
        if marker("...") {
            ended = true;
            continue;
        }
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if ended {
            return Some(i + 1);
        }
        content = true;
    }
    None
}

/// A line indented with a tab near the lines a YAML syntax error names: (line, column).
fn tab_indent(text: &str, msg: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let named: Vec<usize> = msg
        .match_indices("line ")
        .filter_map(|(i, _)| {
            let digits: String = msg[i + 5..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect();
    for n in named {
        for l in [n, n.saturating_sub(1), n + 1] {
            let Some(line) = l.checked_sub(1).and_then(|i| lines.get(i)) else {
                continue;
            };
            let indent: &str = &line[..line.len() - line.trim_start().len()];
            if let Some(col) = indent.find('\t') {
                return Some((l, col + 1));
            }
        }
    }
    None
}

/// One issue of `text`, with its line (for one issue: the lines are scanned for it).
fn render(file: &impl std::fmt::Display, text: &str, format: Format, i: &Issue) -> String {
    let lines = (format == Format::Yaml).then(|| locate::Locator::new(text));
    render_at(file, lines.as_ref(), i)
}

/// One issue, with its line found in `lines` (None: JSON, no lines).
fn render_at(file: &impl std::fmt::Display, lines: Option<&locate::Locator>, i: &Issue) -> String {
    match lines.and_then(|x| line_near(x, &i.path)) {
        Some(l) => format!("{file}: {}: {} (line {l})", i.path, i.message),
        None => format!("{file}: {}: {}", i.path, i.message),
    }
}

/// The line of `path`; for a key a merge key brought in, of that `<<`; for a key that is not
/// in the file (`is missing`), of the map that should hold it (the nearest enclosing path that
/// is).
fn line_near(lines: &locate::Locator, path: &str) -> Option<usize> {
    let mut p = path;
    loop {
        if p.is_empty() {
            return None;
        }
        if let Some(l) = lines.line_of_nth(p, 0) {
            return Some(l);
        }
        let cut = p.rfind(['.', '[']).unwrap_or(0);
        if !p[cut..].starts_with('[') {
            let merge = match cut {
                0 => "<<".to_string(),
                _ => format!("{}.<<", &p[..cut]),
            };
            if let Some(l) = lines.line_of_nth(&merge, 0) {
                return Some(l);
            }
        }
        p = &p[..cut];
    }
}

/// Errors of the YAML scanner/parser (as opposed to a wrong type or an unknown key).
fn is_syntax_error(msg: &str) -> bool {
    [
        "mapping values are not allowed",
        "did not find expected",
        "found character that cannot start",
        "while parsing",
        "while scanning",
        "found unexpected end of stream",
        "found undefined alias",
        "control characters are not allowed",
        "invalid leading UTF-8",
        "found unknown anchor",
        "block sequence entries are not allowed",
    ]
    .iter()
    .any(|p| msg.contains(p))
}

/// "<file>: YAML syntax error: ... (line 3, column 5); check the indentation ...". The field
/// path is dropped: the parser had not got that far (`targets[0].?`).
fn syntax_hint(file: &impl std::fmt::Display, msg: &str, format: &str) -> String {
    let prefix = format!("{file}: ");
    let rest = msg.strip_prefix(&prefix).unwrap_or(msg);
    let rest = match rest.split_once(": ") {
        Some((path, tail)) if !path.contains(' ') => tail,
        _ => rest,
    };
    let advice = if format == "YAML" {
        "check the indentation and quoting around that line"
    } else {
        "check the brackets, commas and quotes around that place"
    };
    format!("{file}: {format} syntax error: {rest}; {advice}")
}

/// The longest string value a message quotes in full (`invalid type: string "..."`). A value
/// in the wrong place can be anything: a token, or a whole file an `include:` glob or `-c`
/// pointed at by mistake (`/etc/shadow` as root): its start says where it is, the rest stays
/// out of the journal.
const MAX_QUOTED: usize = 40;

/// `invalid type: string "<long value>", expected ...` -> the value's first [`MAX_QUOTED`]
/// characters and its length.
fn shorten_quoted_string(msg: &str) -> String {
    const AT: &str = "invalid type: string \"";
    let Some(start) = msg.find(AT).map(|i| i + AT.len()) else {
        return msg.to_string();
    };
    // the value ends at the last `", expected` (the value itself may hold quotes)
    let Some(len) = msg[start..].rfind("\", expected") else {
        return msg.to_string();
    };
    let value = &msg[start..start + len];
    let n = value.chars().count();
    if n <= MAX_QUOTED {
        return msg.to_string();
    }
    let head: String = value.chars().take(MAX_QUOTED).collect();
    format!(
        "{}{head}...\" ({n} characters){}",
        &msg[..start],
        &msg[start + len + 1..]
    )
}

/// Make serde's message readable: no internal struct names, keep the line/column.
fn parse_error(file: &impl std::fmt::Display, path: &str, msg: &str) -> String {
    // yaml_serde puts its own (shorter) path first; ours is exact
    let msg = match msg.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && path.starts_with(prefix) => rest,
        _ => msg,
    };
    // "... at line 3 column 5" -> "... (line 3, column 5)"
    let mut msg = match msg.rsplit_once(" at line ") {
        Some((head, pos)) if pos.contains(" column ") => {
            format!("{head} (line {})", pos.replacen(" column ", ", column ", 1))
        }
        _ => msg.to_string(),
    };
    // serde's words for Rust types (from visitors that word their own errors)
    for (from, to) in [
        ("a sequence", "a list"),
        ("i64", "an integer"),
        ("expected i128", "expected an integer"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        msg = msg.replace(from, to);
    }
    // an integer too large for any integer type was read as a float
    if let Some(rest) = msg.strip_prefix("invalid type: floating point `") {
        if let Some((number, tail)) = rest.split_once('`') {
            let digits = number.strip_suffix(".0").unwrap_or(number);
            let integral = digits.trim_start_matches('-');
            if integral.len() > 18 && integral.chars().all(|c| c.is_ascii_digit()) {
                let at = tail.find(" (line ").map_or("", |i| &tail[i..]);
                msg = format!("{digits} is out of range: no setting takes a number this large{at}");
            }
        }
    }
    let msg = shorten_quoted_string(&msg);
    // no name of a raw struct ever reaches a user, whoever worded the message
    let msg = de::describe_struct_names(&msg);
    if path.is_empty() || path == "." {
        format!("{file}: {msg}")
    } else {
        format!("{file}: {path}: {msg}")
    }
}

#[cfg(test)]
mod tests;
