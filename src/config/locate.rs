//! Find the line of a field path (`targets[1].checks[0].tcp_port`) in block-style YAML, so a
//! validation error can say where to look. Best effort: flow style (`{a: 1}`) resolves to the
//! line holding the flow value; JSON and anything unusual yield `None` (no line is better than
//! a wrong one).

#[derive(Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn parse_path(path: &str) -> Option<Vec<Seg<'_>>> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            segs.push(Seg::Key(name));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let close = stripped.find(']')?;
            segs.push(Seg::Index(stripped[..close].parse().ok()?));
            rest = &stripped[close + 1..];
        }
    }
    Some(segs)
}

#[derive(Debug)]
struct Line<'a> {
    no: usize,
    /// Column of the first `- ` marker, if the line starts a sequence item.
    dash: Option<usize>,
    /// Column where the content (after any `- ` markers) starts.
    col: usize,
    key: Option<&'a str>,
    inline_value: bool,
    /// The content is a flow collection (`{a: 1}` or `[1, 2]`): its inner paths are on it.
    flow: bool,
}

impl Line<'_> {
    fn first_col(&self) -> usize {
        self.dash.unwrap_or(self.col)
    }
}

fn scan(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut col = raw.len() - trimmed.len();
        let mut content = trimmed;
        let mut dash = None;
        while content == "-" || content.starts_with("- ") {
            dash.get_or_insert(col);
            let after = content[1..].trim_start_matches(' ');
            col += content.len() - after.len();
            content = after;
        }
        let (key, rest) = split_key(content);
        let inline_value = rest.is_some_and(|r| {
            let r = r.trim();
            !r.is_empty() && !r.starts_with('#')
        });
        out.push(Line {
            no: i + 1,
            dash,
            col,
            key,
            inline_value,
            flow: content.starts_with('{') || content.starts_with('['),
        });
    }
    out
}

/// `key: rest` -> (Some(key), Some(rest)); quoted keys too.
fn split_key(content: &str) -> (Option<&str>, Option<&str>) {
    let (key, after) = if let Some(q) = content.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let inner = &content[1..];
        match inner.find(q) {
            Some(end) => (&inner[..end], &inner[end + 1..]),
            None => return (None, None),
        }
    } else {
        match content
            .find(": ")
            .or_else(|| content.strip_suffix(':').map(|k| k.len()))
        {
            Some(end) => (&content[..end], &content[end..]),
            None => return (None, None),
        }
    };
    match after.strip_prefix(':') {
        Some(rest) => (Some(key.trim_end()), Some(rest)),
        None => (None, None),
    }
}

/// The 1-based line of `path` in `text`, when it can be found with confidence.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    line_of_nth(text, path, 0)
}

/// Like [`line_of`], for the `nth` (0-based) occurrence of the path's last key in its map: a
/// key given twice is reported where it is repeated.
pub fn line_of_nth(text: &str, path: &str, nth: usize) -> Option<usize> {
    let segs = parse_path(path)?;
    let lines = scan(text);
    let mut block: &[Line] = &lines;
    let mut found: Option<&Line> = None;
    for (n, seg) in segs.iter().enumerate() {
        let first = block.first()?;
        let last = n + 1 == segs.len();
        match seg {
            Seg::Key(k) => {
                let col = first.col;
                if first.flow {
                    return Some(first.no);
                }
                let idx = block
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.col == col && l.key == Some(*k))
                    .map(|(i, _)| i)
                    .nth(if last { nth } else { 0 })?;
                let line = &block[idx];
                found = Some(line);
                if line.inline_value {
                    // the rest is inside a flow value or a scalar on this line
                    return Some(line.no);
                }
                let rest = &block[idx + 1..];
                let end = rest
                    .iter()
                    .position(|l| {
                        l.first_col() < col || (l.first_col() == col && l.dash != Some(col))
                    })
                    .unwrap_or(rest.len());
                block = &rest[..end];
            }
            Seg::Index(i) => {
                let dash_col = first.dash?;
                let items: Vec<usize> = block
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.dash == Some(dash_col))
                    .map(|(j, _)| j)
                    .collect();
                let start = *items.get(*i)?;
                let end = items.get(i + 1).copied().unwrap_or(block.len());
                let item = &block[start..end];
                found = Some(&item[0]);
                if item[0].key.is_none() && !item[0].inline_value && item.len() > 1 {
                    // a bare `-` with the mapping on the next lines
                    block = &item[1..];
                } else {
                    block = item;
                }
            }
        }
    }
    found.map(|l| l.no)
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: &str = "\
interval_seconds: 30
# comment
default_policy:
  fail_threshold: 0
targets:
  - name: web
    checks:
      - process_name: nginx
      - tcp_port: 127.0.0.1:70000
    policy: {fail_threshold: 2}
    action: none
  - name: db
    checks:
    - pid_file: run/x.pid
    action:
      exec:
        start: []
";

    #[test]
    fn finds_nested_paths() {
        assert_eq!(line_of(Y, "interval_seconds"), Some(1));
        assert_eq!(line_of(Y, "default_policy.fail_threshold"), Some(4));
        assert_eq!(line_of(Y, "targets[0].name"), Some(6));
        assert_eq!(line_of(Y, "targets[0].checks[1].tcp_port"), Some(9));
        assert_eq!(line_of(Y, "targets[0].policy.fail_threshold"), Some(10));
        assert_eq!(line_of(Y, "targets[1].checks[0].pid_file"), Some(14));
        assert_eq!(line_of(Y, "targets[1].action.exec.start"), Some(17));
        assert_eq!(line_of(Y, "targets[1]"), Some(12));
    }

    #[test]
    fn unknown_paths_have_no_line() {
        assert_eq!(line_of(Y, "targets[5].name"), None);
        assert_eq!(line_of(Y, "nope"), None);
    }
}
