//! Where uploads go: the embedded local store or an S3-compatible bucket.
//!
//! [`Storage`] answers the two questions every mint asks (where does the client upload,
//! where is the object read afterwards) and owns the signer that verifies URLs pointing at
//! the gateway itself (local PUTs and memories' multipart POSTs).

mod local;
mod s3;
mod spool;

pub use local::{key_is_safe, LocalStore, ObjectMeta};
pub use s3::S3Store;
pub use spool::{Spool, SpoolError, Spooled};

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::config::{ConfigError, StorageConfig};
use crate::sigv4::{Credentials, PresignRequest, Signer};

/// The scheme and authority URLs are built on, e.g. `http` + `127.0.0.1:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub scheme: String,
    pub authority: String,
}

impl BaseUrl {
    pub fn parse(s: &str) -> Option<Self> {
        let u = url::Url::parse(s).ok()?;
        let host = u.host_str()?;
        let authority = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        Some(Self { scheme: u.scheme().to_string(), authority })
    }

    /// From the request's Host header: plain http, exactly the authority the client used.
    pub fn from_host(host: &str) -> Option<Self> {
        let ok = !host.is_empty()
            && host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
        ok.then(|| Self { scheme: "http".into(), authority: host.to_ascii_lowercase() })
    }

    pub fn join(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.authority, path)
    }
}

pub enum Backend {
    Local(LocalStore),
    S3(Box<S3Store>),
}

/// The configured storage plus the gateway's own URL signer.
pub struct Storage {
    pub backend: Backend,
    /// Signs and verifies URLs that point at the gateway.
    pub gateway_signer: Signer,
    /// Path under which the gateway receives uploads (and, for local, serves objects).
    pub gateway_path: String,
    /// Spool directory for relays and from-url.
    pub tmp_dir: PathBuf,
    pub max_upload_bytes: u64,
}

/// Access key id of the gateway's own URLs.
pub const GATEWAY_ACCESS_KEY_ID: &str = "presign-gateway";
/// Region of the gateway's own URLs (a region every S3 client accepts).
pub const GATEWAY_REGION: &str = "us-east-1";

impl Storage {
    pub fn from_config(c: &StorageConfig) -> Result<Self, ConfigError> {
        match c {
            StorageConfig::Local(l) => {
                let store = LocalStore::open(&l.root, l.max_upload_bytes).map_err(|e| {
                    ConfigError::new("storage.local.root", format!("{}: {e}", l.root.display()))
                })?;
                let secret = store
                    .signing_secret()
                    .map_err(|e| ConfigError::new("storage.local.root", format!("signing key: {e}")))?;
                Ok(Self {
                    gateway_signer: Signer::new(
                        Credentials::new(GATEWAY_ACCESS_KEY_ID, secret, None),
                        GATEWAY_REGION,
                        "s3",
                    ),
                    gateway_path: l.public_path.clone(),
                    tmp_dir: store.tmp_dir(),
                    max_upload_bytes: l.max_upload_bytes,
                    backend: Backend::Local(store),
                })
            }
            StorageConfig::S3(s) => {
                let store = S3Store::from_config(s)?;
                let secret = std::env::var("PRESIGN_GATEWAY_SECRET")
                    .ok()
                    .filter(|v| v.len() >= 16)
                    .unwrap_or_else(|| {
                        // Relay URLs then only verify on the gateway that minted them; set
                        // PRESIGN_GATEWAY_SECRET for a fleet.
                        let mut b = [0u8; 32];
                        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
                        hex::encode(b)
                    });
                let tmp_dir = std::env::temp_dir().join("presign-gateway");
                std::fs::create_dir_all(&tmp_dir).map_err(|e| {
                    ConfigError::new("storage.s3", format!("temp dir {}: {e}", tmp_dir.display()))
                })?;
                Ok(Self {
                    gateway_signer: Signer::new(
                        Credentials::new(GATEWAY_ACCESS_KEY_ID, secret, None),
                        GATEWAY_REGION,
                        "s3",
                    ),
                    gateway_path: "/_gateway/upload".into(),
                    tmp_dir,
                    max_upload_bytes: s.max_upload_bytes,
                    backend: Backend::S3(Box::new(store)),
                })
            }
        }
    }

    /// A presigned PUT for `key`, signing `headers` besides host.
    pub fn presign_put(
        &self,
        base: &BaseUrl,
        key: &str,
        headers: &[(&str, &str)],
        expires_in: u32,
        now: OffsetDateTime,
    ) -> String {
        match &self.backend {
            Backend::Local(_) => self.presign_gateway(base, "PUT", key, headers, expires_in, now),
            Backend::S3(s3) => s3.presign("PUT", key, headers, expires_in, now),
        }
    }

    /// A URL on the gateway itself, signed with the gateway's key.
    pub fn presign_gateway(
        &self,
        base: &BaseUrl,
        method: &str,
        key: &str,
        headers: &[(&str, &str)],
        expires_in: u32,
        now: OffsetDateTime,
    ) -> String {
        let path = format!("{}/{key}", self.gateway_path);
        self.gateway_signer.presign_url(
            &PresignRequest {
                method,
                scheme: &base.scheme,
                host: &base.authority,
                path: &path,
                expires_in,
                headers,
            },
            now,
        )
    }

    /// Where the object is read after upload.
    pub fn public_url(&self, base: &BaseUrl, key: &str) -> String {
        match &self.backend {
            Backend::Local(_) => base.join(&format!("{}/{key}", self.gateway_path)),
            Backend::S3(s3) => s3.public_url(key),
        }
    }

    /// A spool for a relayed or fetched object.
    pub async fn spool(&self, limit: u64) -> Result<Spool, SpoolError> {
        Spool::create(&self.tmp_dir, limit).await
    }

    /// Store a finished spool as `key`, in whichever backend is configured.
    pub async fn commit(&self, spooled: Spooled, key: &str, content_type: &str) -> Result<(), String> {
        match &self.backend {
            Backend::Local(l) => {
                l.commit(spooled, key, content_type).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Backend::S3(s3) => s3.put_spooled(&spooled, key, content_type).await,
        }
    }
}
