//! `; name=value` parameter lists, as `Content-Type` and `Content-Disposition` carry them.

/// The parameters after the first `;` of `value`, names as sent. A value is a token or a
/// quoted string; a quoted string ends at the next `"` (HTML's form encoding escapes `"`
/// as `%22` and never uses backslash escapes, so a backslash is an ordinary byte).
/// `None` when the list does not parse.
pub fn parse(list: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Some(out);
        }
        let (name, after) = rest.split_once('=')?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return None;
        }
        let after = after.trim_start_matches([' ', '\t']);
        let (value, tail) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"')?;
                (&q[..end], &q[end + 1..])
            }
            None => {
                let end = after.find([';', ' ', '\t']).unwrap_or(after.len());
                let token = &after[..end];
                if !is_token(token) {
                    return None;
                }
                (token, &after[end..])
            }
        };
        out.push((name, value));
        let tail = tail.trim_start_matches([' ', '\t']);
        rest = match tail.strip_prefix(';') {
            Some(t) => t,
            None if tail.is_empty() => tail,
            None => return None,
        };
    }
}

/// RFC 9110 `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn lists() {
        assert_eq!(parse(""), Some(vec![]));
        assert_eq!(
            parse(r#" name="a b"; filename=x.png"#),
            Some(vec![("name", "a b"), ("filename", "x.png")])
        );
        assert_eq!(parse(r#"name="C:\x";"#), Some(vec![("name", "C:\\x")]));
        for bad in [r#"name="open"#, "name", "=x", "name=a b", "na me=x", "name=\"a\"x"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
