//! Fingerprints of the signing secrets: a short hash a fleet can compare at a glance (in the
//! start-up log and `/metrics`) to see that every gateway signs alike, never the secret.
//!
//! 12 hex digits of SHA-256 over a label and the secret: enough to tell two secrets apart,
//! far too little to search a secret space with, and the label keeps it from matching any
//! other hash of the same secret.

use sha2::{Digest, Sha256};

use super::{Backend, Storage};

const LABEL: &[u8] = b"presign-gateway secret fingerprint v1\0";

pub fn fingerprint(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(LABEL);
    h.update(secret.as_bytes());
    hex::encode(&h.finalize()[..6])
}

impl Storage {
    /// (`gateway` | `storage`, fingerprint): the gateway's own secret (its URLs, relay and
    /// session tokens) and, in S3 mode, the storage credentials' secret.
    pub fn fingerprints(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![(
            "gateway",
            fingerprint(self.gateway_signer.credentials().secret_access_key.expose_secret()),
        )];
        if let Backend::S3(s3) = &self.backend {
            out.push(("storage", fingerprint(s3.signer.credentials().secret_access_key.expose_secret())));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_stable_and_not_the_secret() {
        let a = fingerprint("a-secret-of-at-least-thirty-two-chars!!");
        assert_eq!(a.len(), 12);
        assert_eq!(a, fingerprint("a-secret-of-at-least-thirty-two-chars!!"));
        assert_ne!(a, fingerprint("a-secret-of-at-least-thirty-two-chars!?"));
        assert!(
            !hex::encode(sha2::Sha256::digest(b"a-secret-of-at-least-thirty-two-chars!!")).starts_with(&a)
        );
    }
}
