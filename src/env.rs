//! `${VAR}` and `${VAR:-default}` expansion, so secrets and per-machine addresses stay out
//! of workload files.
//!
//! A neutral module below both `spec` (workload URLs and paths) and `driver` (secrets in a
//! driver's own settings, such as Chroma's token): it must never import either, so that
//! neither depends on the other through it.

/// Expand `${VAR}` / `${VAR:-default}` with `lookup`. `$$` is a literal `$`.
/// Errors name the variable that is unset and has no default.
pub fn expand_env(input: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body_start) = after.strip_prefix('{') {
            let end = body_start.find('}').ok_or_else(|| format!("unclosed '${{' in {input:?}"))?;
            let body = &body_start[..end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("'${{{body}}}' is not a variable name"));
            }
            match lookup(name).filter(|v| !v.is_empty()) {
                Some(v) => out.push_str(&v),
                None => match default {
                    Some(d) => out.push_str(d),
                    None => {
                        return Err(format!(
                            "environment variable {name} is not set (set it, or write ${{{name}:-default}})"
                        ))
                    }
                },
            }
            rest = &body_start[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PASS" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_unset_and_defaults() {
        assert_eq!(expand_env("pg://u:${PASS}@h", env).unwrap(), "pg://u:s3cret@h");
        assert_eq!(expand_env("${NOPE:-http://x:1}", env).unwrap(), "http://x:1");
        assert_eq!(expand_env("${EMPTY:-d}", env).unwrap(), "d");
        assert_eq!(expand_env("a$$b $x", env).unwrap(), "a$b $x");
        let err = expand_env("${NOPE}", env).unwrap_err();
        assert!(err.contains("NOPE is not set"), "{err}");
        assert!(expand_env("${PASS", env).is_err());
        assert!(expand_env("${a-b}", env).is_err());
    }
}
