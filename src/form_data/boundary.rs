//! The boundary of a `multipart/form-data` request, from its `Content-Type`.

use super::params;

/// RFC 2046 `bchars`: what a boundary is made of.
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// 1 to 70 `bchars`, not ending in a space (RFC 2046 5.1.1). No CR or LF can be in one,
/// which the parser's linear search relies on.
pub fn is_valid(boundary: &str) -> bool {
    (1..=70).contains(&boundary.len()) && boundary.bytes().all(is_bchar) && !boundary.ends_with(' ')
}

/// The boundary of a `multipart/form-data; boundary=...` type, if it is one and the
/// boundary is valid.
pub fn parse_boundary(content_type: &str) -> Option<String> {
    let (essence, list) = content_type.split_once(';')?;
    if !essence.trim_matches([' ', '\t']).eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let found = params::parse(list)?;
    let mut boundaries = found.iter().filter(|(n, _)| n.eq_ignore_ascii_case("boundary"));
    let boundary = boundaries.next()?.1;
    (boundaries.next().is_none() && is_valid(boundary)).then(|| boundary.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(parse_boundary("multipart/form-data; boundary=abc").as_deref(), Some("abc"));
        assert_eq!(parse_boundary("Multipart/Form-Data;boundary=\"a b:c\"").as_deref(), Some("a b:c"));
        assert_eq!(
            parse_boundary("multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxk")
                .as_deref(),
            Some("----WebKitFormBoundary7MA4YWxk")
        );
        for bad in [
            "multipart/form-data",
            "multipart/mixed; boundary=abc",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"a \"",
            "multipart/form-data; boundary=a; boundary=b",
            "multipart/form-data; boundary=\"a\r\nb\"",
        ] {
            assert_eq!(parse_boundary(bad), None, "{bad:?}");
        }
        assert!(!is_valid(&"a".repeat(71)) && is_valid(&"a".repeat(70)));
    }
}
