//! The derived signing key and its cache.
//!
//! ```text
//! kSecret  = "AWS4" + secret access key
//! kDate    = HMAC-SHA256(kSecret,  yyyyMMdd)
//! kRegion  = HMAC-SHA256(kDate,    region)
//! kService = HMAC-SHA256(kRegion,  service)
//! kSigning = HMAC-SHA256(kService, "aws4_request")
//! signature = HexEncode(HMAC-SHA256(kSigning, StringToSign))
//! ```
//! The chain costs four HMACs; it only changes with the date, so it is cached per date
//! (a [`SigningKeyCache`] belongs to one region and service). The cached entry keeps the
//! HMAC already keyed with kSigning, so signing clones it and hashes only the string to sign.

use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::Date;

use crate::sigv4::{write_scope, Hex64, SecretKey, Sink};

type HmacSha256 = Hmac<Sha256>;

/// An HMAC-SHA256 keyed with `key`, built without a fallible constructor: keys longer
/// than the SHA-256 block are hashed first and shorter ones zero-padded, as RFC 2104 says.
pub(crate) fn keyed(key: &[u8]) -> HmacSha256 {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <HmacSha256 as hmac::digest::KeyInit>::new(&block.into())
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// kSigning for one date, region and service, with its credential scope.
#[derive(Clone)]
pub struct SigningKey {
    date: Date,
    date_text: [u8; 8],
    scope: String,
    mac: HmacSha256,
}

impl SigningKey {
    /// Derives kSigning (four HMACs).
    pub fn derive(secret: &SecretKey, date: Date, region: &str, service: &str) -> Self {
        let date_text = crate::sigv4::AmzDate::new(date.midnight().assume_utc());
        let mut date_bytes = [0u8; 8];
        date_bytes.copy_from_slice(date_text.date_str().as_bytes());

        let mut k_secret = Vec::with_capacity(4 + secret.expose_secret().len());
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret.expose_secret().as_bytes());
        let k_date = hmac(&k_secret, &date_bytes);
        k_secret.fill(0);
        let k_region = hmac(&k_date, region.as_bytes());
        let k_service = hmac(&k_region, service.as_bytes());
        let k_signing = hmac(&k_service, b"aws4_request");

        let mut scope = String::with_capacity(8 + region.len() + service.len() + 16);
        write_scope(&mut scope, date_text.date_str(), region, service);
        Self { date, date_text: date_bytes, scope, mac: keyed(&k_signing) }
    }

    /// The date this key is for.
    pub fn date(&self) -> Date {
        self.date
    }

    /// `yyyyMMdd`.
    pub fn date_str(&self) -> &str {
        std::str::from_utf8(&self.date_text).unwrap_or_default()
    }

    /// The credential scope `yyyyMMdd/region/service/aws4_request`.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// An HMAC keyed with kSigning, ready to take a string to sign through [`Sink`].
    pub fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// `HMAC-SHA256(kSigning, string_to_sign)` as raw bytes.
    pub fn sign_raw(&self, write: impl FnOnce(&mut dyn Sink)) -> [u8; 32] {
        let mut mac = self.mac();
        let mut buffered = crate::sigv4::Buffered::new(&mut mac);
        write(&mut buffered);
        buffered.finish();
        mac.finalize().into_bytes().into()
    }

    /// `HexEncode(HMAC-SHA256(kSigning, string_to_sign))`.
    pub fn sign(&self, string_to_sign: &str) -> Hex64 {
        Hex64::encode(&self.sign_raw(|s| s.put(string_to_sign)))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("scope", &self.scope).finish_non_exhaustive()
    }
}

/// How many dates the cache keeps: today and the previous days a presigned URL (up to
/// seven days old) may still be verified against.
const CACHE_DATES: usize = 8;

/// Derived signing keys for one region and service, per date. Reads take a shared lock and
/// clone an `Arc`; a miss derives the key and keeps the newest [`CACHE_DATES`] dates.
#[derive(Debug, Default)]
pub struct SigningKeyCache {
    entries: RwLock<Vec<Arc<SigningKey>>>,
}

impl SigningKeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key for `date`, derived on a miss.
    pub fn get(&self, secret: &SecretKey, date: Date, region: &str, service: &str) -> Arc<SigningKey> {
        if let Ok(entries) = self.entries.read() {
            if let Some(hit) = entries.iter().find(|k| k.date == date) {
                return Arc::clone(hit);
            }
        }
        let key = Arc::new(SigningKey::derive(secret, date, region, service));
        // A poisoned lock only means another thread panicked mid-insert; the Vec is still
        // valid, so keep using it.
        let mut entries = match self.entries.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !entries.iter().any(|k| k.date == date) {
            entries.push(Arc::clone(&key));
            entries.sort_by_key(|k| std::cmp::Reverse(k.date));
            entries.truncate(CACHE_DATES);
        }
        key
    }
}
