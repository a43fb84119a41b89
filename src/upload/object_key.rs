//! Object keys: sanitised, namespaced and collision-free.
//!
//! Two rules hold for every key minted here: it lives under the caller's namespace
//! (`uploads/user/{id}`), and it carries 80 random bits, so two requests never share a key
//! whatever filename they send. Filenames only contribute a cleaned stem and extension.

use rand::RngCore;

use crate::store::MAX_KEY_SEGMENT_BYTES;
use crate::upload::error::ApiError;

/// Longest filename accepted, in bytes.
pub const MAX_FILENAME_BYTES: usize = 255;
/// Longest stem kept in a key.
const MAX_STEM_CHARS: usize = 64;

const B32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Length of a [`random_token`].
pub const TOKEN_LEN: usize = 16;

/// 16 lowercase base32 characters (80 bits) of randomness.
pub fn random_token() -> [u8; TOKEN_LEN] {
    let mut b = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut b);
    let mut v: u128 = 0;
    for x in b {
        v = (v << 8) | u128::from(x);
    }
    let mut out = [0u8; TOKEN_LEN];
    for (i, c) in out.iter_mut().enumerate() {
        *c = B32[((v >> (5 * (TOKEN_LEN - 1 - i))) & 31) as usize];
    }
    out
}

/// Append a [`random_token`].
pub fn push_random_token(out: &mut String) {
    // Base32 digits are ASCII.
    out.push_str(std::str::from_utf8(&random_token()).unwrap_or_default());
}

/// A filename as the client sent it, checked: no control characters, no path separators
/// or `..` tricks, bounded length. Returns (stem, extension) both cleaned for a key.
pub fn check_filename(field: &'static str, name: &str) -> Result<(String, Option<String>), ApiError> {
    let bad = |m: &str| ApiError::InvalidField { field, message: format!("{field} {m}") };
    if name.trim().is_empty() {
        return Err(bad("must not be empty"));
    }
    if name.len() > MAX_FILENAME_BYTES {
        return Err(bad(&format!("must be at most {MAX_FILENAME_BYTES} bytes")));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(bad("must not contain control characters"));
    }
    if name.contains('/') || name.contains('\\') || name.contains("..") || name.contains('%') {
        return Err(bad("must be a plain file name (no '/', '\\', '..' or '%')"));
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && !e.is_empty() => (s, Some(e)),
        _ => (name, None),
    };
    let stem = clean_segment(stem, MAX_STEM_CHARS);
    let ext = ext
        .map(|e| {
            let mut e = clean_segment(e, 10);
            e.make_ascii_lowercase();
            e
        })
        .filter(|e| !e.is_empty());
    Ok((stem, ext))
}

/// Keep ASCII letters, digits, '-' and '_'; everything else becomes '-'; runs collapse.
fn clean_segment(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        if out.len() >= max {
            break;
        }
        let c = if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Checks a client-supplied prefix and returns it normalised. It must be the caller's
/// namespace or a path below it, in plain segments: no `..`, no `.`, no empty segments,
/// no leading `/`, no percent-encoding, no backslashes or control characters.
pub fn check_prefix(prefix: &str, namespace: &str) -> Result<String, ApiError> {
    let bad = |m: &str| ApiError::InvalidField { field: "prefix", message: format!("prefix {m}") };
    let p = prefix.strip_suffix('/').unwrap_or(prefix);
    if p.len() > 512 {
        return Err(bad("is too long"));
    }
    if p.starts_with('/') || p.contains('\\') || p.contains('%') || p.chars().any(|c| c.is_control()) {
        return Err(bad("must be a relative path of plain segments"));
    }
    for seg in p.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(bad("must not contain empty, '.' or '..' segments"));
        }
        if seg.len() > MAX_KEY_SEGMENT_BYTES {
            return Err(bad(&format!("segments must be at most {MAX_KEY_SEGMENT_BYTES} bytes")));
        }
        if !seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            return Err(bad("segments may only use letters, digits, '-', '_' and '.'"));
        }
    }
    let inside = p == namespace || p.strip_prefix(namespace).is_some_and(|rest| rest.starts_with('/'));
    if !inside {
        return Err(bad(&format!("must be within your namespace {namespace}")));
    }
    Ok(p.to_string())
}

/// `{yyyy}/{mm}/{dd}` or `{yyyymmdd}` parts of a date.
pub fn date_parts(now: time::OffsetDateTime) -> (i32, u8, u8) {
    (now.year(), u8::from(now.month()), now.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_16_base32_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 16);
        assert!(a.iter().all(|b| B32.contains(b)));
        let set: std::collections::HashSet<_> = (0..10_000).map(|_| random_token()).collect();
        assert_eq!(set.len(), 10_000);
    }

    #[test]
    fn filenames_are_cleaned() {
        assert_eq!(check_filename("f", "cover.png").unwrap(), ("cover".into(), Some("png".into())));
        assert_eq!(
            check_filename("f", "My Photo (1).JPG").unwrap(),
            ("My-Photo-1".into(), Some("jpg".into()))
        );
        assert_eq!(check_filename("f", "noext").unwrap(), ("noext".into(), None));
        assert_eq!(check_filename("f", ".bashrc").unwrap().1, None);
        let (stem, _) = check_filename("f", "日本語.png").unwrap();
        assert_eq!(stem, "");
    }

    #[test]
    fn filename_tricks_are_refused() {
        for bad in ["../etc/passwd", "a/b.png", "a\\b.png", "..", "a\0b.png", "a\nb", "%2e%2e", "", "  "] {
            assert!(check_filename("filename", bad).is_err(), "{bad:?}");
        }
        assert!(check_filename("filename", &"a".repeat(300)).is_err());
    }

    #[test]
    fn prefix_stays_in_namespace() {
        let ns = "uploads/user/12";
        assert_eq!(check_prefix("uploads/user/12", ns).unwrap(), ns);
        assert_eq!(check_prefix("uploads/user/12/", ns).unwrap(), ns);
        assert_eq!(check_prefix("uploads/user/12/avatars", ns).unwrap(), "uploads/user/12/avatars");
        for bad in [
            "uploads/user/13",
            "uploads/user/123",
            "uploads/user/12/../13",
            "/uploads/user/12",
            "uploads/user/12/%2e%2e",
            "uploads/user/12//x",
            "uploads/user/12/./x",
            "uploads\\user\\12",
            "other",
            "",
        ] {
            assert!(check_prefix(bad, ns).is_err(), "{bad:?}");
        }
        let long = format!("uploads/user/12/{}", "a".repeat(201));
        assert!(check_prefix(&long, ns).is_err(), "segment over 200 bytes");
    }
}
