//! `${NAME}` expansion from the environment, at load time.
//!
//! Every expanded value is recorded as a secret, so the redactor masks it in all output.
//! `$${` stands for a literal `${`. A lone `$` (as in `sh -c 'echo $$'`) is left as it is.

/// Expand `${NAME}` in `s`, reading values with `lookup`. Each value used is pushed onto
/// `secrets`. An undefined or malformed reference is an error message.
pub fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<String, String> {
    if !s.contains("${") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("${") {
        // `$${` escapes a literal `${`
        if pos > 0 && rest.as_bytes()[pos - 1] == b'$' {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unclosed `${{` in {s:?} (write `$${{` for a literal `${{`)"
            ));
        };
        let name = &after[..end];
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.as_bytes()[0].is_ascii_digit()
        {
            return Err(format!(
                "`${{{name}}}` is not a valid variable name (letters, digits and _ only)"
            ));
        }
        match lookup(name) {
            Some(v) => {
                out.push_str(&v);
                secrets.push(v);
            }
            None => {
                return Err(format!(
                    "environment variable {name} is not set (referenced as `${{{name}}}`); \
                     set it in the environment of neon-watchdog (systemd: Environment= or EnvironmentFile=)"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0ps3cret".into()),
            "HOST" => Some("db.local".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_and_records_secrets() {
        let mut s = vec![];
        let out = expand("--token=${TOKEN}@${HOST}", &env, &mut s).unwrap();
        assert_eq!(out, "--token=t0ps3cret@db.local");
        assert_eq!(s, vec!["t0ps3cret".to_string(), "db.local".to_string()]);
    }

    #[test]
    fn plain_strings_untouched() {
        let mut s = vec![];
        assert_eq!(
            expand("echo $$ $HOME", &env, &mut s).unwrap(),
            "echo $$ $HOME"
        );
        assert!(s.is_empty());
    }

    #[test]
    fn escape_gives_literal() {
        let mut s = vec![];
        assert_eq!(
            expand("a $${TOKEN} b", &env, &mut s).unwrap(),
            "a ${TOKEN} b"
        );
        assert!(s.is_empty());
    }

    #[test]
    fn undefined_is_an_error_naming_it() {
        let mut s = vec![];
        let e = expand("x ${NOPE}", &env, &mut s).unwrap_err();
        assert!(e.contains("NOPE is not set"), "{e}");
    }

    #[test]
    fn malformed_references() {
        let mut s = vec![];
        assert!(expand("${TOKEN", &env, &mut s)
            .unwrap_err()
            .contains("unclosed"));
        assert!(expand("${}", &env, &mut s)
            .unwrap_err()
            .contains("not a valid"));
        assert!(expand("${A-B}", &env, &mut s)
            .unwrap_err()
            .contains("not a valid"));
    }
}
