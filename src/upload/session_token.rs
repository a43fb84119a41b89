//! Browser upload sessions: a self-contained token the application's backend obtains with
//! its API key and hands to the browser, which never sees the key.
//!
//! ```text
//! token = "v1." base64url(JSON grant) "." base64url(HMAC-SHA256(k, "v1." base64url(JSON grant)))
//! k     = HMAC-SHA256(gateway secret, "presign-gateway upload-session v1")
//! ```
//! Any gateway holding the same secret verifies it with no shared state. The grant names
//! the caller's namespace, the session's own id (every key it may write lives under
//! `uploads/user/{user}/uppy/{session}/`) and its limits.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1.";
/// Longest token we parse: the largest grant a session may ask for (32 types of 127
/// characters) encodes to under 6 KiB.
const MAX_TOKEN_LEN: usize = 8192;

/// What one session may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGrant {
    /// The session's id: 24 lowercase hex characters.
    #[serde(rename = "s")]
    pub session_id: String,
    /// The calling key's user id (its namespace `uploads/user/{user_id}`).
    #[serde(rename = "u")]
    pub user_id: u64,
    /// The calling key's id, for logs.
    #[serde(rename = "k")]
    pub key_id: String,
    /// Largest file, in bytes.
    #[serde(rename = "m")]
    pub max_file_size: u64,
    /// `type/subtype` or `type/*`; empty: any type the gateway accepts.
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_types: Vec<String>,
    /// Most files the session may start.
    #[serde(rename = "n")]
    pub max_files: u32,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

impl SessionGrant {
    /// The prefix of every key this session may write, with its trailing `/`.
    pub fn key_prefix(&self) -> String {
        format!("uploads/user/{}/uppy/{}/", self.user_id, self.session_id)
    }

    /// Whether `key` is one this session could have been given: its prefix, then one plain
    /// segment.
    pub fn owns_key(&self, key: &str) -> bool {
        key.strip_prefix(&self.key_prefix())
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/') && crate::store::key_is_safe(key))
    }

    /// Whether the session allows `content_type` (its essence, compared case-insensitively).
    pub fn allows_type(&self, content_type: &str) -> bool {
        if self.allowed_types.is_empty() {
            return true;
        }
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let (ty, _) = essence.split_once('/').unwrap_or((essence, ""));
        self.allowed_types.iter().any(|a| match a.strip_suffix("/*") {
            Some(prefix) => prefix.eq_ignore_ascii_case(ty),
            None => a.eq_ignore_ascii_case(essence),
        })
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token we issued, or edited since.
    Invalid,
    Expired,
}

/// Issues and verifies session tokens.
#[derive(Clone)]
pub struct SessionTokens {
    mac: HmacSha256,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionTokens")
    }
}

impl SessionTokens {
    /// Keyed from the gateway secret, under a label of its own, so a token's MAC can never
    /// stand for a SigV4 signature or the reverse.
    pub fn new(gateway_secret: &str) -> Self {
        let mut derive = mac_with(gateway_secret.as_bytes());
        derive.update(b"presign-gateway upload-session v1");
        let key = derive.finalize().into_bytes();
        Self { mac: mac_with(&key) }
    }

    pub fn issue(&self, grant: &SessionGrant) -> String {
        let json = serde_json::to_vec(grant).unwrap_or_default();
        let mut token = String::with_capacity(VERSION.len() + json.len() * 4 / 3 + 48);
        token.push_str(VERSION);
        URL_SAFE_NO_PAD.encode_string(json, &mut token);
        let tag = self.tag(&token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, &mut token);
        token
    }

    /// The grant of a token we issued, unedited and not expired at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<SessionGrant, TokenError> {
        if token.len() > MAX_TOKEN_LEN || !token.starts_with(VERSION) {
            return Err(TokenError::Invalid);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let json = URL_SAFE_NO_PAD.decode(&signed[VERSION.len()..]).map_err(|_| TokenError::Invalid)?;
        let grant: SessionGrant = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
        if now > grant.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(grant)
    }

    fn tag(&self, signed: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn mac_with(key: &[u8]) -> HmacSha256 {
    crate::sigv4::keyed(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> SessionGrant {
        SessionGrant {
            session_id: "0123456789abcdef01234567".into(),
            user_id: 12,
            key_id: "demo".into(),
            max_file_size: 1 << 20,
            allowed_types: vec!["image/*".into(), "video/mp4".into()],
            max_files: 3,
            expires_at: 1_000,
        }
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let t = SessionTokens::new("a-secret-of-at-least-thirty-two-chars!");
        let token = t.issue(&grant());
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
        assert_eq!(t.verify(&token, 1_000), Ok(grant()));
        assert_eq!(t.verify(&token, 1_001), Err(TokenError::Expired));
        let other = SessionTokens::new("another-secret-of-at-least-thirty-two!");
        assert_eq!(other.verify(&token, 0), Err(TokenError::Invalid));
    }

    #[test]
    fn edited_tokens_are_invalid() {
        let t = SessionTokens::new("a-secret-of-at-least-thirty-two-chars!");
        let token = t.issue(&grant());
        let mut bigger = grant();
        bigger.max_file_size = u64::MAX;
        let forged_body = t.issue(&bigger);
        let (body, _) = forged_body.rsplit_once('.').unwrap();
        let (_, tag) = token.rsplit_once('.').unwrap();
        assert_eq!(t.verify(&format!("{body}.{tag}"), 0), Err(TokenError::Invalid));
        for bad in ["", "v1.", "v1..", "v2.abc.def", &token[..token.len() - 1], &format!("{token}x")] {
            assert_eq!(t.verify(bad, 0), Err(TokenError::Invalid), "{bad}");
        }
    }

    #[test]
    fn keys_and_types_stay_inside_the_grant() {
        let g = grant();
        assert!(g.owns_key("uploads/user/12/uppy/0123456789abcdef01234567/ab-cat.png"));
        for k in [
            "uploads/user/12/uppy/0123456789abcdef01234567/",
            "uploads/user/12/uppy/0123456789abcdef01234567/a/b.png",
            "uploads/user/12/uppy/0123456789abcdef01234568/ab.png",
            "uploads/user/13/uppy/0123456789abcdef01234567/ab.png",
            "uploads/user/12/uppy/0123456789abcdef01234567/..",
        ] {
            assert!(!g.owns_key(k), "{k}");
        }
        assert!(g.allows_type("image/png"));
        assert!(g.allows_type("IMAGE/jpeg; q=1"));
        assert!(g.allows_type("video/mp4"));
        assert!(!g.allows_type("video/webm"));
        assert!(!g.allows_type("application/pdf"));
        assert!(!g.allows_type("imagex/png"));
    }
}
