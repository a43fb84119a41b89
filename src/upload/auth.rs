//! API keys: looked up by their SHA-256, never stored or logged in plain text.
//!
//! Dialects differ in how the key travels: most use `Authorization: Bearer K`, memories
//! sends the raw key with no scheme. A key in the other style is refused, so a client
//! written for one API does not accidentally work against another's contract.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::config::ApiKeyConfig;
use crate::upload::error::ApiError;

/// How a dialect expects the key in `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer K`
    Bearer,
    /// `Authorization: K`
    Raw,
}

/// The caller, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The configured key id (safe to log).
    pub key_id: std::sync::Arc<str>,
    pub user_id: u64,
}

impl Caller {
    /// The key prefix everything this caller writes lives under.
    pub fn namespace(&self) -> String {
        let mut ns = String::with_capacity(32);
        self.push_namespace(&mut ns);
        ns
    }

    /// Append [`Self::namespace`].
    pub fn push_namespace(&self, out: &mut String) {
        out.push_str("uploads/user/");
        crate::decimal::push_u64(out, self.user_id);
    }
}

/// All configured keys, by hash.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], Caller>,
}

/// The hex SHA-256 of a key, as written in the config.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    pub fn from_config(keys: &[ApiKeyConfig]) -> Self {
        let mut by_hash = HashMap::with_capacity(keys.len());
        for k in keys {
            let mut h = [0u8; 32];
            // Validated at load; a bad entry simply never matches.
            if hex::decode_to_slice(k.sha256.to_ascii_lowercase(), &mut h).is_ok() {
                by_hash.insert(h, Caller { key_id: k.id.as_str().into(), user_id: k.user_id });
            }
        }
        Self { by_hash }
    }

    /// Authenticate an `Authorization` header value in the given style.
    pub fn authenticate(&self, header: Option<&[u8]>, style: AuthStyle) -> Result<&Caller, ApiError> {
        let raw = header.ok_or(ApiError::MissingApiKey)?;
        let raw = std::str::from_utf8(raw).map_err(|_| ApiError::InvalidApiKey)?.trim();
        if raw.is_empty() {
            return Err(ApiError::MissingApiKey);
        }
        let bearer = strip_bearer(raw);
        let key = match (style, bearer) {
            (AuthStyle::Bearer, Some(k)) => k,
            // A raw key sent to a Bearer API: the credential is missing in that API's terms.
            (AuthStyle::Bearer, None) => return Err(ApiError::MissingApiKey),
            (AuthStyle::Raw, None) => raw,
            // Bearer sent to memories: its contract is the raw key.
            (AuthStyle::Raw, Some(_)) => return Err(ApiError::InvalidApiKey),
        };
        if key.is_empty() {
            return Err(ApiError::MissingApiKey);
        }
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.by_hash.get(&digest).ok_or(ApiError::InvalidApiKey)
    }
}

fn strip_bearer(v: &str) -> Option<&str> {
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::from_config(&[ApiKeyConfig {
            id: "demo".into(),
            sha256: hash_key("demo-key"),
            user_id: 12,
            rate_limit_per_sec: None,
        }])
    }

    #[test]
    fn bearer_style() {
        let k = keys();
        assert_eq!(k.authenticate(Some(b"Bearer demo-key"), AuthStyle::Bearer).unwrap().user_id, 12);
        assert_eq!(
            k.authenticate(Some(b"bearer demo-key"), AuthStyle::Bearer).unwrap().key_id.as_ref(),
            "demo"
        );
        assert_eq!(k.authenticate(None, AuthStyle::Bearer), Err(ApiError::MissingApiKey));
        assert_eq!(k.authenticate(Some(b"demo-key"), AuthStyle::Bearer), Err(ApiError::MissingApiKey));
        assert_eq!(k.authenticate(Some(b"Bearer nope"), AuthStyle::Bearer), Err(ApiError::InvalidApiKey));
        assert_eq!(k.authenticate(Some(b"Bearer \xff"), AuthStyle::Bearer), Err(ApiError::InvalidApiKey));
    }

    #[test]
    fn raw_style() {
        let k = keys();
        assert!(k.authenticate(Some(b"demo-key"), AuthStyle::Raw).is_ok());
        assert_eq!(k.authenticate(Some(b"Bearer demo-key"), AuthStyle::Raw), Err(ApiError::InvalidApiKey));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash_key(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
