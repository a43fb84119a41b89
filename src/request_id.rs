//! Request ids: `req_` followed by a ULID (48-bit millisecond time, 80 random bits,
//! Crockford base32), so ids sort by time and never collide in practice.

use rand::RngCore;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh `req_<ULID>` for the given Unix time in milliseconds.
pub fn new_request_id(unix_ms: u64) -> String {
    let mut rnd = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut rnd);
    let mut v: u128 = (u128::from(unix_ms & 0xFFFF_FFFF_FFFF)) << 80;
    for (i, b) in rnd.iter().enumerate() {
        v |= u128::from(*b) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(30);
    out.push_str("req_");
    for i in (0..26).rev() {
        let idx = ((v >> (5 * i)) & 0x1F) as usize;
        out.push(CROCKFORD[idx] as char);
    }
    out
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_ulid_shape() {
        let id = new_request_id(1_700_000_000_000);
        assert_eq!(id.len(), 30);
        assert!(id.starts_with("req_"));
        assert!(id[4..].bytes().all(|b| CROCKFORD.contains(&b)));
        // 48-bit time of 0 encodes as ten leading zeros.
        assert!(new_request_id(0)[4..14].bytes().all(|b| b == b'0'));
    }

    #[test]
    fn ids_sort_by_time_and_differ() {
        let a = new_request_id(1_000);
        let b = new_request_id(2_000);
        assert!(a < b);
        assert_ne!(new_request_id(5), new_request_id(5));
    }
}
