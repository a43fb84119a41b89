//! Hex digests kept on the stack: SHA-256 of the canonical request and the signature
//! are 64 lowercase hex characters, written without allocating.

use sha2::{Digest, Sha256};

/// 64 lowercase hex characters (a hex-encoded 32-byte digest), on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex64([u8; 64]);

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Hex64 {
    /// Hex-encodes 32 bytes.
    pub fn encode(bytes: &[u8; 32]) -> Self {
        let mut out = [0u8; 64];
        for (i, b) in bytes.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
        Self(out)
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written, so this never takes the fallback.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for Hex64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Hex64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses exactly 64 lowercase hex characters into 32 bytes; anything else is `None`.
pub fn parse_lower_hex64(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(s[2 * i])? << 4) | nibble(s[2 * i + 1])?;
    }
    Some(out)
}

/// `HexEncode(SHA256(data))`.
pub fn sha256_hex(data: &[u8]) -> Hex64 {
    Hex64::encode(&Sha256::digest(data).into())
}

/// Hex of the SHA-256 of the empty string, the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The payload hash S3 presigned URLs use: the body is not known when the URL is minted.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
