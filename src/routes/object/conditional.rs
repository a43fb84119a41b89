//! Conditional and partial reads: `If-None-Match` and a single `Range: bytes=`.

/// `If-None-Match`: `*`, or a comma-separated list of (possibly weak) ETags.
pub fn etag_matches(header: &[u8], etag: &str) -> bool {
    let Ok(h) = std::str::from_utf8(header) else { return false };
    h.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// A parsed single `Range: bytes=` header against an object of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// Parse one byte range; several ranges or bad syntax fall back to the full object (RFC 9110 allows ignoring Range).
pub fn parse_range(header: Option<&str>, len: u64) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        match b.parse::<u64>() {
            Ok(0) => return RangeSpec::Unsatisfiable,
            Ok(n) => (len.saturating_sub(n), len.saturating_sub(1)),
            Err(_) => return RangeSpec::Full,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeSpec::Full;
        };
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.min(len.saturating_sub(1)),
                _ => return RangeSpec::Full,
            }
        };
        (start, end)
    };
    if len == 0 || range.0 >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Partial(range.0, range.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), RangeSpec::Partial(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeSpec::Partial(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeSpec::Partial(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeSpec::Partial(0, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), RangeSpec::Partial(8, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeSpec::Full);
    }

    #[test]
    fn if_none_match_lists() {
        let e = "\"abc\"";
        for yes in ["\"abc\"", "*", "W/\"abc\"", "\"x\", \"abc\"", " \"abc\" "] {
            assert!(etag_matches(yes.as_bytes(), e), "{yes}");
        }
        for no in ["\"abd\"", "abc", "", "\"x\""] {
            assert!(!etag_matches(no.as_bytes(), e), "{no}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Any header, any length: no panic, and a partial range lies inside the object.
        #[test]
        fn ranges_stay_inside(h in "(bytes=)?[ 0-9,-]{0,24}|\\PC{0,24}", len in prop_oneof![Just(0u64), 1u64..100, any::<u64>()]) {
            match parse_range(Some(&h), len) {
                RangeSpec::Partial(s, e) => prop_assert!(s <= e && e < len, "{h:?} {len}: {s}-{e}"),
                RangeSpec::Full | RangeSpec::Unsatisfiable => {}
            }
        }

        /// A well-formed single range means what RFC 9110 says.
        #[test]
        fn well_formed_ranges(len in 1u64..10_000, a in 0u64..12_000, n in 0u64..12_000, suffix in any::<bool>()) {
            if suffix {
                let want = if n == 0 { RangeSpec::Unsatisfiable } else { RangeSpec::Partial(len.saturating_sub(n), len - 1) };
                prop_assert_eq!(parse_range(Some(&format!("bytes=-{n}")), len), want);
            } else {
                let b = a + n;
                let want = if a >= len { RangeSpec::Unsatisfiable } else { RangeSpec::Partial(a, b.min(len - 1)) };
                prop_assert_eq!(parse_range(Some(&format!("bytes={a}-{b}")), len), want);
            }
        }

        #[test]
        fn if_none_match_never_panics(h in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = etag_matches(&h, "\"abc\"");
        }
    }
}
