//! [`Signer`]: credentials, region and service, plus the signing-key cache. It is `Send +
//! Sync` and meant to be shared (e.g. in an `Arc`) by every request of a service.

use std::sync::Arc;

use time::Date;

use crate::sigv4::{Credentials, SigningKey, SigningKeyCache};

/// Signs requests for one set of credentials, one region and one service.
#[derive(Debug)]
pub struct Signer {
    credentials: Credentials,
    region: String,
    service: String,
    keys: SigningKeyCache,
}

impl Signer {
    /// A signer for `service` (e.g. `s3`) in `region` (e.g. `us-east-1`).
    pub fn new(credentials: Credentials, region: &str, service: &str) -> Self {
        Self {
            credentials,
            region: region.to_owned(),
            service: service.to_owned(),
            keys: SigningKeyCache::new(),
        }
    }

    /// The credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The service.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The (cached) signing key for a UTC date.
    pub fn signing_key(&self, date: Date) -> Arc<SigningKey> {
        self.keys.get(&self.credentials.secret_access_key, date, &self.region, &self.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Signer>();
    }
}
