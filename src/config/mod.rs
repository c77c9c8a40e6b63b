//! Configuration: read the file (YAML or JSON), parse into raw structs with exact field paths,
//! validate into the model. Every error names the file, the field path and, where known, the
//! line; all of them are reported at once.

pub mod env;
mod locate;
pub mod model;
pub mod raw;
pub mod validate;

pub use model::*;
pub use validate::Issue;

use std::path::{Path, PathBuf};

/// A loaded config and the warnings found while validating it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
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
    let text = std::fs::read_to_string(path).map_err(|e| {
        let what = crate::util::os_error(&e);
        match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "{}: config file not found: create it (see examples/config.yml) or pass -c FILE",
                path.display()
            ),
            std::io::ErrorKind::InvalidData => {
                format!(
                    "{}: cannot read config: it is not UTF-8 text",
                    path.display()
                )
            }
            _ => format!("{}: cannot read config: {what}", path.display()),
        }
    })?;
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
    parse(path, &text, &env)
}

/// Parse and validate `text` (the content of `path`).
pub fn parse(path: &Path, text: &str, env: &validate::Env) -> Result<Loaded, String> {
    let file = path.display();
    let meaningful = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    if !meaningful {
        return Err(format!(
            "{file}: config is empty: it needs at least a `targets:` list (see examples/config.yml)"
        ));
    }
    let format = format_of(path, text);
    let raw: raw::RawConfig = match format {
        Format::Yaml => {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let inner = e.inner().to_string();
                let msg = parse_error(&file, &e.path().to_string(), &inner);
                if is_syntax_error(&inner) {
                    syntax_hint(&file, &msg, "YAML")
                } else {
                    msg
                }
            })?
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let msg = parse_error(&file, &e.path().to_string(), &e.inner().to_string());
                if e.inner().is_syntax() || e.inner().is_eof() {
                    syntax_hint(&file, &msg, "JSON")
                } else {
                    msg
                }
            })?
        }
    };
    match validate::validate(raw, path, env) {
        Ok((config, warnings)) => Ok(Loaded {
            warnings: warnings
                .iter()
                .map(|w| render(&file, text, format, w))
                .collect(),
            config,
        }),
        Err(issues) => Err(issues
            .iter()
            .map(|i| render(&file, text, format, i))
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

fn render(file: &impl std::fmt::Display, text: &str, format: Format, i: &Issue) -> String {
    let line = match format {
        Format::Yaml => locate::line_of(text, &i.path),
        Format::Json => None,
    };
    match line {
        Some(l) => format!("{file}: {}: {} (line {l})", i.path, i.message),
        None => format!("{file}: {}: {}", i.path, i.message),
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
    let check_map = format!("a check map (one of {})", validate::kinds_text());
    for (from, to) in [
        (
            "struct RawConfig",
            "a map of settings (interval_seconds, targets, ...)",
        ),
        ("struct RawTarget", "a target map (name, checks, action)"),
        ("struct RawCheck", check_map.as_str()),
        ("struct RawPolicy", "a policy map"),
        ("struct RawActionMap", "a map with exec or systemd"),
        ("struct RawExec", "an exec map (start, restart, ...)"),
        ("struct RawSystemd", "a systemd map (unit, method)"),
        ("a sequence", "a list"),
        ("i64", "an integer"),
    ] {
        msg = msg.replace(from, to);
    }
    if path.is_empty() || path == "." {
        format!("{file}: {msg}")
    } else {
        format!("{file}: {path}: {msg}")
    }
}

#[cfg(test)]
mod tests;
