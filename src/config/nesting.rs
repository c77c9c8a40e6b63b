//! A cheap look at how deeply a YAML text nests flow collections (`[...]`, `{...}`), before
//! the parser sees it.
//!
//! The YAML scanner under `yaml_serde` (a port of libyaml) keeps one "possible simple key" per
//! open flow collection and walks all of them for every token: a text nesting `[` n levels
//! deep costs n² steps before the parser's own depth limit (128) is ever reached. 160 KB of
//! `x: [[[[...]]]]` took 11 s, and a SIGHUP reload of such a file stalled `run`. This pass
//! reads the text once, in linear time, and stops at the first place where flow
//! collections nest deeper than [`MAX_FLOW_DEPTH`]: the config is refused there, with its
//! line, before the parser starts.
//!
//! It follows only what it must of YAML's syntax to count right: quoted scalars (a `[` in
//! `"echo [x]"` is text), comments, block scalars (`|`, `>`), and plain scalars (`^a\[b` and
//! `it's` are text, a `[` starts a collection only where a value starts). Where it is unsure
//! it counts, and the limit is that of the parser: a text it refuses, the parser would have
//! refused too (after the quadratic work), so no config that loads today is refused here.

/// The deepest nesting of flow collections taken: the parser's own depth limit for lists and
/// maps of every style (a config's top-level map is one more level on top of these).
pub const MAX_FLOW_DEPTH: usize = 128;

/// The 1-based line where flow collections first nest deeper than [`MAX_FLOW_DEPTH`], if they
/// do.
pub fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    let mut line = 1;
    let mut depth = 0usize;
    // where a node may start: a `[` or `{` here opens a collection, a quote a quoted scalar
    let mut token_start = true;
    // the start of the current line (block context)
    let mut line_start = 0;
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let flow_ind = |c: u8| matches!(c, b',' | b'[' | b']' | b'{' | b'}');
    while i < n {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let ends = |x: Option<u8>| x.is_none_or(blank);
        match c {
            b'\n' => {
                line += 1;
                i += 1;
                if depth == 0 {
                    token_start = true;
                    line_start = i;
                    // document markers
                    let marker = b[i..].starts_with(b"---") || b[i..].starts_with(b"...");
                    if marker && ends(b.get(i + 3).copied()) {
                        i += 3;
                    }
                }
                continue;
            }
            b' ' | b'\t' | b'\r' => {}
            b'#' if i == 0 || blank(b[i - 1]) => {
                // a comment: to the end of the line
                while i < n && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' if token_start || depth > 0 => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(line);
                }
                token_start = true;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                token_start = false;
            }
            b',' if depth > 0 => token_start = true,
            b'"' | b'\'' if token_start => {
                // a quoted scalar, over lines if need be
                i += 1;
                while i < n {
                    match b[i] {
                        b'\\' if c == b'"' => {
                            if b.get(i + 1) == Some(&b'\n') {
                                line += 1;
                            }
                            i += 1;
                        }
                        b'\'' if c == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 1,
                        q if q == c => break,
                        b'\n' => line += 1,
                        _ => {}
                    }
                    i += 1;
                }
                token_start = false;
            }
            b'|' | b'>' if token_start && depth == 0 => {
                // a block scalar: its lines are indented more than the line it starts on
                // (after any `- ` markers)
                let head = &b[line_start..i];
                let lead = head.iter().take_while(|&&x| x == b' ').count();
                let mut parent = lead;
                let mut k = lead;
                while k < head.len()
                    && head[k] == b'-'
                    && head.get(k + 1).is_some_and(|x| blank(*x))
                {
                    parent = k;
                    k += 1;
                    while k < head.len() && head[k] == b' ' {
                        k += 1;
                    }
                }
                if k < head.len() {
                    parent = k;
                }
                while i < n && b[i] != b'\n' {
                    i += 1;
                }
                // the following lines, blank or indented more than `parent`
                while i < n {
                    let start = i + 1;
                    let mut e = start;
                    while e < n && b[e] != b'\n' {
                        e += 1;
                    }
                    let l = &b[start.min(n)..e];
                    let indent = l.iter().take_while(|&&x| x == b' ').count();
                    let empty = l.iter().all(|x| blank(*x));
                    if start >= n || !(empty || indent > parent) {
                        break;
                    }
                    line += 1;
                    i = e;
                }
                continue;
            }
            b'-' | b'?' | b':' if ends(next) || (depth > 0 && next.is_some_and(flow_ind)) => {
                token_start = true;
            }
            b':' if depth > 0 && i > 0 && matches!(b[i - 1], b'"' | b'\'') => {
                // `{"a":1}`: JSON-like, after a quoted key
                token_start = true;
            }
            b'&' | b'!' if token_start => {
                // an anchor or a tag: the node comes after it
                while i < n && !blank(b[i]) && !(depth > 0 && flow_ind(b[i])) {
                    i += 1;
                }
                continue;
            }
            _ => token_start = false,
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}x{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn counts_flow_collections_of_both_kinds() {
        let at = MAX_FLOW_DEPTH;
        assert_eq!(too_deep(&format!("x: {}\n", nested("[", "]", at))), None);
        assert_eq!(
            too_deep(&format!("x: {}\n", nested("[", "]", at + 1))),
            Some(1)
        );
        assert_eq!(
            too_deep(&format!("a: 1\n\nx: {}\n", nested("{a: ", "}", at + 1))),
            Some(3)
        );
        assert_eq!(
            too_deep(&format!("x: {}\n", nested("[{a: ", "}]", at / 2 + 1))),
            Some(1)
        );
        // over lines, in a list item, after an anchor or a tag
        let deep = format!("x:\n  - &a !!seq\n{}\n", nested("[\n", "]\n", at + 1));
        assert_eq!(too_deep(&deep), Some(3 + at));
        // the line where the limit is crossed
        let deep = format!("x: {}\n{}\n", "[".repeat(at), nested("[", "]", 1));
        assert_eq!(too_deep(&deep), Some(2));
    }

    #[test]
    fn brackets_in_text_are_not_counted() {
        let many = "[".repeat(500);
        for text in [
            format!("a: \"{many}\"\n"),
            format!("a: '{many}'\n"),
            format!("a: '{many}''{many}'\n"),
            format!("a: \"\\\"{many}\"\n"),
            format!("a: ^x{many}\n"),
            format!("a: b # {many}\n"),
            format!("# {many}\n"),
            format!("a: |\n  {many}\n\n  {many}\nb: 1\n"),
            format!("- a: >-\n    {many}\n"),
            format!("- |\n  {many}\n"),
            format!("a: [\"{many}\", '{many}', it's, x'y, '{many}']\n"),
            format!("a: {{\"k\":\"{many}\"}}\n"),
            format!("a: [x, y # {many}\n  ]\n"),
            format!("a: http://x/{many}\n"),
        ] {
            assert_eq!(too_deep(&text), None, "{text}");
        }
    }

    #[test]
    fn a_huge_text_is_read_in_linear_time() {
        // 8 MiB of nested brackets: one pass, stopped at the limit
        let text = format!("x: {}\n", nested("[", "]", 4 << 20));
        assert_eq!(too_deep(&text), Some(1));
        // and a long text that nests little
        let text = "x: [[a], {b: c}, \"[\"]\n".repeat(200_000);
        assert_eq!(too_deep(&text), None);
    }
}
