//! Find the line of a field path (`targets[1].checks[0].tcp_port`) in block-style YAML, so a
//! validation error can say where to look. Best effort: flow style (`{a: 1}`) resolves to the
//! line holding the flow value; JSON and anything unusual yield `None` (no line is better than
//! a wrong one).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

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
    Locator::new(text).line_of_nth(path, 0)
}

/// The lines of one file, scanned once, for many lookups. Each block of lines a lookup walks
/// through (the document, the `targets:` list, one target, ...) is indexed the first time it
/// is walked (its keys, its list items), so that a lookup costs its depth, not the file: the
/// lines of 30,000 problems cost about one pass over the file, not 30,000.
pub struct Locator<'a> {
    lines: Vec<Line<'a>>,
    /// By (first line, end) of a block, as indices into `lines`.
    blocks: RefCell<HashMap<(usize, usize), Rc<Block<'a>>>>,
}

/// What a block holds, read as a map (keys at the first line's column) and as a list (items
/// at the first line's dash).
struct Block<'a> {
    /// Indices of the lines holding each key, in order.
    keys: HashMap<&'a str, Vec<usize>>,
    /// Indices where the value of a key of this block has ended (sorted).
    stops: Vec<usize>,
    /// Indices of the lines starting each list item.
    items: Vec<usize>,
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str) -> Self {
        Locator {
            lines: scan(text),
            blocks: RefCell::new(HashMap::new()),
        }
    }

    fn block(&self, start: usize, end: usize) -> Rc<Block<'a>> {
        if let Some(b) = self.blocks.borrow().get(&(start, end)) {
            return Rc::clone(b);
        }
        let lines = &self.lines[start..end];
        let mut b = Block {
            keys: HashMap::new(),
            stops: Vec::new(),
            items: Vec::new(),
        };
        if let Some(first) = lines.first() {
            let col = first.col;
            for (i, l) in lines.iter().enumerate() {
                let at = start + i;
                if l.col == col {
                    if let Some(k) = l.key {
                        b.keys.entry(k).or_default().push(at);
                    }
                }
                if l.first_col() < col || (l.first_col() == col && l.dash != Some(col)) {
                    b.stops.push(at);
                }
                if first.dash.is_some() && l.dash == first.dash {
                    b.items.push(at);
                }
            }
        }
        let b = Rc::new(b);
        self.blocks.borrow_mut().insert((start, end), Rc::clone(&b));
        b
    }

    /// See [`line_of_nth`].
    pub fn line_of_nth(&self, path: &str, nth: usize) -> Option<usize> {
        let segs = parse_path(path)?;
        let (mut start, mut end) = (0, self.lines.len());
        let mut found: Option<usize> = None;
        for (n, seg) in segs.iter().enumerate() {
            let first = self.lines[start..end].first()?;
            let last = n + 1 == segs.len();
            let block = self.block(start, end);
            match seg {
                Seg::Key(k) => {
                    if first.flow {
                        return Some(first.no);
                    }
                    let idx = *block.keys.get(k)?.get(if last { nth } else { 0 })?;
                    let line = &self.lines[idx];
                    found = Some(idx);
                    if line.inline_value {
                        // the rest is inside a flow value or a scalar on this line
                        return Some(line.no);
                    }
                    // the value ends at the first stop after the key, or with the block
                    let after = block.stops.partition_point(|s| *s <= idx);
                    let stop = block.stops.get(after).copied().unwrap_or(end).min(end);
                    start = idx + 1;
                    end = stop.max(start);
                }
                Seg::Index(i) => {
                    first.dash?;
                    let s = *block.items.get(*i)?;
                    let e = block.items.get(i + 1).copied().unwrap_or(end);
                    found = Some(s);
                    let head = &self.lines[s];
                    if head.key.is_none() && !head.inline_value && e - s > 1 {
                        // a bare `-` with the mapping on the next lines
                        start = s + 1;
                    } else {
                        start = s;
                    }
                    end = e;
                }
            }
        }
        found.map(|i| self.lines[i].no)
    }
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
