//! Credentials: an access key id, a secret that never shows in logs, and an optional
//! session token (temporary credentials, sent as `X-Amz-Security-Token`).

/// A secret access key. `Debug` prints `[redacted]`; equality runs in constant time.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for key derivation. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretKey {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretKey {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl PartialEq for SecretKey {
    /// Constant time in the contents (the length is not secret-dependent enough to hide).
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for SecretKey {}

/// Constant-time byte-slice equality: the time depends on the lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The credentials a [`crate::sigv4::Signer`] signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA…`), public.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretKey,
    /// The session token of temporary credentials, if any.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Builds credentials.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: SecretKey(secret_access_key.into()),
            session_token,
        }
    }
}
