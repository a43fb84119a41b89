//! SigV4 URI encoding (`UriEncode()` in the AWS docs) and strict percent-decoding.
//!
//! Encoding keeps the RFC 3986 unreserved characters `A-Z a-z 0-9 - . _ ~` and, in paths,
//! `/`; every other byte becomes `%XX` with uppercase hex. Nothing is normalised.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::sigv4::Sink;

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 unreserved: `A-Z a-z 0-9 - . _ ~`.
#[inline]
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Which bytes stay as they are: unreserved, and `/` in the path table.
const fn keep_table(keep_slash: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') || (keep_slash && c == b'/');
        b += 1;
    }
    t
}
static KEEP_IN_COMPONENT: [bool; 256] = keep_table(false);
static KEEP_IN_PATH: [bool; 256] = keep_table(true);

/// Percent-encodes `input` into `out`, keeping unreserved bytes (and `/` when `keep_slash`).
/// Kept bytes go to the sink in runs, as bytes (they are ASCII), so a hash or a byte buffer
/// takes them without a UTF-8 check.
pub fn encode_into<S: Sink + ?Sized>(out: &mut S, input: &[u8], keep_slash: bool) {
    let keep = if keep_slash { &KEEP_IN_PATH } else { &KEEP_IN_COMPONENT };
    let mut rest = input;
    while !rest.is_empty() {
        let run = rest.iter().position(|&b| !keep[usize::from(b)]).unwrap_or(rest.len());
        if run > 0 {
            out.put_str_bytes(&rest[..run]);
            rest = &rest[run..];
        }
        if let Some((&b, tail)) = rest.split_first() {
            out.put_str_bytes(&[b'%', UPPER_HEX[usize::from(b >> 4)], UPPER_HEX[usize::from(b & 0xf)]]);
            rest = tail;
        }
    }
}

/// Encodes a path: `/` is kept, everything else as [`encode_component`].
pub fn encode_path<S: Sink + ?Sized>(out: &mut S, input: &[u8]) {
    encode_into(out, input, true);
}

/// Encodes a query name or value (or anything else where `/` must become `%2F`).
pub fn encode_component<S: Sink + ?Sized>(out: &mut S, input: &[u8]) {
    encode_into(out, input, false);
}

/// Compares the encoded forms of `a` and `b` (as [`encode_component`] would write them)
/// without building them. SigV4 sorts query parameters by their encoded names.
pub fn cmp_encoded(a: &[u8], b: &[u8]) -> Ordering {
    encoded_bytes(a).cmp(encoded_bytes(b))
}

fn encoded_bytes(input: &[u8]) -> impl Iterator<Item = u8> + '_ {
    input.iter().flat_map(|&b| {
        let (bytes, n) = if is_unreserved(b) {
            ([b, 0, 0], 1)
        } else {
            ([b'%', UPPER_HEX[usize::from(b >> 4)], UPPER_HEX[usize::from(b & 0xf)]], 3)
        };
        bytes.into_iter().take(n)
    })
}

/// A `%` not followed by two hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPercentEncoding;

impl std::fmt::Display for InvalidPercentEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid percent-encoding")
    }
}

impl std::error::Error for InvalidPercentEncoding {}

/// Decodes `%XX` escapes strictly (a lone or malformed `%` is an error). `+` is kept as
/// `+`: SigV4 encodes a space as `%20`, never `+`. Borrows when there is nothing to decode.
pub fn percent_decode(input: &str) -> Result<Cow<'_, [u8]>, InvalidPercentEncoding> {
    let bytes = input.as_bytes();
    if !bytes.contains(&b'%') {
        return Ok(Cow::Borrowed(bytes));
    }
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                _ => return Err(InvalidPercentEncoding),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(Cow::Owned(out))
}

/// [`percent_decode`] that also requires the result to be UTF-8 (object keys, file names).
pub fn percent_decode_str(input: &str) -> Option<Cow<'_, str>> {
    match percent_decode(input).ok()? {
        Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v).ok().map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_round_trip() {
        let mut enc = String::new();
        encode_path(&mut enc, "/a b/ü+~.png".as_bytes());
        assert_eq!(enc, "/a%20b/%C3%BC%2B~.png");
        assert_eq!(percent_decode_str(&enc).as_deref(), Some("/a b/ü+~.png"));
        assert!(percent_decode_str("%zz").is_none());
        assert!(percent_decode_str("%ff").is_none(), "not UTF-8");
        assert!(percent_decode_str("%4").is_none());
    }
}
