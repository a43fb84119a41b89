//! Request ids: `req_` followed by a ULID (48-bit millisecond time, 80 random bits,
//! Crockford base32), so ids sort by time and never collide in practice.
//!
//! A [`RequestId`] is 30 bytes on the stack and `Copy`: the response header, the body and the
//! access log each take it without an allocation of their own.

use std::fmt;

use rand::RngCore;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LEN: usize = 30;

/// `req_` + 26 Crockford base32 characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId([u8; LEN]);

impl RequestId {
    /// A fresh id for the given Unix time in milliseconds.
    pub fn new(unix_ms: u64) -> Self {
        let mut rnd = [0u8; 10];
        rand::thread_rng().fill_bytes(&mut rnd);
        let mut v: u128 = (u128::from(unix_ms & 0xFFFF_FFFF_FFFF)) << 80;
        for (i, b) in rnd.iter().enumerate() {
            v |= u128::from(*b) << (8 * (9 - i));
        }
        let mut out = [0u8; LEN];
        out[..4].copy_from_slice(b"req_");
        for (i, slot) in out[4..].iter_mut().enumerate() {
            *slot = CROCKFORD[((v >> (5 * (25 - i))) & 0x1F) as usize];
        }
        Self(out)
    }

    pub fn as_str(&self) -> &str {
        // Built only from ASCII above.
        std::str::from_utf8(&self.0).unwrap_or("req_")
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_ulid_shape() {
        let id = RequestId::new(1_700_000_000_000);
        let s = id.as_str();
        assert_eq!(s.len(), 30);
        assert!(s.starts_with("req_"));
        assert!(s[4..].bytes().all(|b| CROCKFORD.contains(&b)));
        // 48-bit time of 0 encodes as ten leading zeros.
        assert!(RequestId::new(0).as_str()[4..14].bytes().all(|b| b == b'0'));
    }

    #[test]
    fn ids_sort_by_time_and_differ() {
        let a = RequestId::new(1_000);
        let b = RequestId::new(2_000);
        assert!(a.as_str() < b.as_str());
        assert_ne!(RequestId::new(5), RequestId::new(5));
    }
}
