//! The events' signature, as payment webhooks sign theirs:
//!
//! ```text
//! Presign-Signature: t=1764576000,v1=<hex HMAC-SHA256(secret, "1764576000." + raw body)>
//! ```
//!
//! The timestamp is signed with the body, so a receiver that checks both the signature and
//! that `t` is recent ([`TOLERANCE_SECS`]) refuses an old request replayed; it dedupes the
//! rest by the event id. Several `v1=` entries may appear (one per secret while a secret is
//! being rotated); one matching is enough. This module is public so receivers written in
//! Rust, and the tests, verify with the very code that signs.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "presign-signature";
/// The header carrying the event id (also in the body).
pub const EVENT_ID_HEADER: &str = "presign-event-id";
/// How far `t` may be from the receiver's clock, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Presign-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// No `t=` or no `v1=`, or a value that does not parse.
    Malformed,
    /// `t` is more than the tolerance away from now: a replay, or a clock far off.
    OutsideTolerance,
    /// No `v1=` matches this body under this secret.
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureError::Malformed => "malformed Presign-Signature header",
            SignatureError::OutsideTolerance => "timestamp outside the tolerance",
            SignatureError::Mismatch => "no signature matches",
        })
    }
}

impl std::error::Error for SignatureError {}

/// Check a `Presign-Signature` header value against the raw `body` at `now` (Unix seconds),
/// allowing `tolerance` seconds of skew. Compares in constant time. Returns `t`.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", v)) => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => tags.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            // Other schemes (a future v2) are skipped, as the payment providers do.
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance {
        return Err(SignatureError::OutsideTolerance);
    }
    let expected = mac(secret, t, body);
    if tags.iter().any(|tag| expected.clone().verify_slice(tag).is_ok()) {
        Ok(t)
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"whsec", 1_700_000_000, b"{}"),
            "t=1700000000,v1=7d44587dddbaf4c7f70fef20f48cd594834ffea1641e3ac227b84408298738af"
        );
    }

    #[test]
    fn verify_accepts_its_own_and_refuses_the_rest() {
        let body = br#"{"id":"evt_1"}"#;
        let h = sign(b"secret", 1000, body);
        assert_eq!(verify(b"secret", &h, body, 1000, 300), Ok(1000));
        assert_eq!(verify(b"secret", &h, body, 1300, 300), Ok(1000));
        assert_eq!(verify(b"secret", &h, body, 1301, 300), Err(SignatureError::OutsideTolerance));
        assert_eq!(verify(b"secret", &h, body, 699, 300), Err(SignatureError::OutsideTolerance));
        assert_eq!(verify(b"other", &h, body, 1000, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", &h, b"{}", 1000, 300), Err(SignatureError::Mismatch));
        let moved = h.replace("t=1000", "t=1001");
        assert_eq!(verify(b"secret", &moved, body, 1000, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", "v1=00", body, 1000, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(b"secret", "t=1000", body, 1000, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(b"secret", "t=x,v1=00", body, 1000, 300), Err(SignatureError::Malformed));
        let two = format!("t=1000,v1={},{}", "00".repeat(32), &h["t=1000,".len()..]);
        assert_eq!(verify(b"secret", &two, body, 1000, 300), Ok(1000), "one of several v1 is enough");
    }
}
