//! Percent-encoding for URL paths we build (S3 style: unreserved and '/' kept).

/// Encode a decoded path for use in a URL.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

/// Decode %XX escapes; None on a bad escape or non-UTF-8 result.
pub fn decode_path(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(encode_path("/a b/ü+~.png"), "/a%20b/%C3%BC%2B~.png");
        assert_eq!(decode_path("/a%20b/%C3%BC%2B~.png").unwrap(), "/a b/ü+~.png");
        assert!(decode_path("%zz").is_none());
        assert!(decode_path("%ff").is_none());
        assert!(decode_path("%4").is_none());
    }
}
