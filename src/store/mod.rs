//! Where uploads go: the embedded local store or an S3-compatible bucket.
//!
//! [`Storage`] answers the two questions every mint asks (where does the client upload,
//! where is the object read afterwards) and owns the signer that verifies URLs pointing at
//! the gateway itself (local PUTs and memories' multipart POSTs).

mod base_url;
mod error;
mod fingerprint;
pub mod gateway_secret;
mod local;
mod multipart;
mod post;
mod s3;
mod spool;

pub use base_url::BaseUrl;
pub use error::StoreError;
pub use fingerprint::fingerprint;
pub use local::{key_is_safe, LocalStore, ObjectMeta, MAX_KEY_SEGMENT_BYTES};
pub(crate) use multipart::PartSink;
pub use multipart::{
    parse_complete_request, MultipartError, PartInfo, MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE,
};
pub use post::FormUpload;
pub use s3::S3Store;
pub use spool::{Spool, SpoolError, Spooled, TempPath};

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::config::{ConfigError, StorageConfig};
use crate::sigv4::{Credentials, PresignRequest, Signer};

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
    /// Spool directory for uploads, relays and from-url.
    pub tmp_dir: PathBuf,
    /// The largest upload the store accepts (the one copy of the configured cap).
    pub max_upload_bytes: u64,
}

/// What a store says about an object it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub meta: ObjectMeta,
    /// Base64 SHA-256, when the store keeps one (S3 does for an upload that sent it).
    pub checksum_sha256: Option<String>,
}

/// Access key id of the gateway's own URLs.
pub const GATEWAY_ACCESS_KEY_ID: &str = "presign-gateway";
/// Region of the gateway's own URLs (a region every S3 client accepts).
pub const GATEWAY_REGION: &str = "us-east-1";
/// The signed query parameter of a local-store PUT URL that names the dialect that minted it.
pub const DIALECT_PARAM: &str = "x-gateway-dialect";
/// Where the S3 mode receives memories' relayed POSTs.
pub const RELAY_PATH: &str = "/_gateway/upload";

fn gateway_signer(secret: String) -> Signer {
    Signer::new(Credentials::new(GATEWAY_ACCESS_KEY_ID, secret, None), GATEWAY_REGION, "s3")
}

impl Storage {
    /// Open the configured store: creates the local data directory (and its secret) when
    /// missing. [`Storage::check`] is the same without touching the disk.
    pub fn from_config(c: &StorageConfig) -> Result<Self, ConfigError> {
        match c {
            StorageConfig::Local(l) => {
                let store = LocalStore::open(&l.root).map_err(|e| {
                    ConfigError::new("storage.local.root", format!("{}: {e}", l.root.display()))
                })?;
                Ok(Self {
                    gateway_signer: gateway_signer(gateway_secret::for_local_store(&l.root)?),
                    gateway_path: l.public_path.clone(),
                    tmp_dir: store.tmp_dir(),
                    max_upload_bytes: l.max_upload_bytes,
                    backend: Backend::Local(store),
                })
            }
            StorageConfig::S3(s) => Ok(Self {
                backend: Backend::S3(Box::new(S3Store::from_config(s)?)),
                gateway_signer: gateway_signer(gateway_secret::for_stateless_gateway()?),
                gateway_path: RELAY_PATH.into(),
                tmp_dir: std::env::temp_dir().join("presign-gateway"),
                max_upload_bytes: s.max_upload_bytes,
            }),
        }
    }

    /// Everything [`Storage::from_config`] would refuse that the file alone cannot show
    /// (credentials and the secret in the environment), without writing anything.
    pub fn check(c: &StorageConfig) -> Result<(), ConfigError> {
        gateway_secret::from_env()?;
        match c {
            StorageConfig::Local(_) => Ok(()),
            StorageConfig::S3(s) => S3Store::from_config(s).map(drop),
        }
    }

    /// One line for the start-up log: which store, where.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local(l) => format!("local store at {}", l.root().display()),
            Backend::S3(s) => format!("s3 bucket {}", s.bucket_url()),
        }
    }

    /// The local store, when that is the backend.
    pub fn local(&self) -> Option<&LocalStore> {
        match &self.backend {
            Backend::Local(l) => Some(l),
            Backend::S3(_) => None,
        }
    }

    /// A presigned PUT for `key`, signing `headers` besides host. A local-store URL also
    /// signs `x-gateway-dialect` when `dialect` is given, so the upload's event can say which
    /// API minted it (the key alone does not: two dialects share a layout); a bucket's URL
    /// carries nothing of ours.
    pub fn presign_put(
        &self,
        base: &BaseUrl,
        key: &str,
        headers: &[(&str, &str)],
        dialect: Option<&str>,
        expires_in: u32,
        now: OffsetDateTime,
    ) -> String {
        match (&self.backend, dialect) {
            (Backend::Local(_), Some(d)) => {
                let query = [(DIALECT_PARAM, d)];
                let path = self.gateway_object_path(key);
                let req = PresignRequest {
                    method: "PUT",
                    scheme: &base.scheme,
                    host: &base.authority,
                    path: &path,
                    expires_in,
                    headers,
                };
                self.gateway_signer.presign_url_with_query(&req, &query, now)
            }
            (Backend::Local(_), None) => self.presign_gateway(base, "PUT", key, headers, expires_in, now),
            (Backend::S3(s3), _) => s3.presign("PUT", key, headers, expires_in, now),
        }
    }

    /// `{gateway_path}/{key}`, decoded.
    fn gateway_object_path(&self, key: &str) -> String {
        let mut path = String::with_capacity(self.gateway_path.len() + 1 + key.len());
        for part in [self.gateway_path.as_str(), "/", key] {
            path.push_str(part);
        }
        path
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
        let path = self.gateway_object_path(key);
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
            Backend::Local(_) => base.join(&[&self.gateway_path, "/", key]),
            Backend::S3(s3) => s3.public_url(key),
        }
    }

    /// What the store holds as `key`, `None` when nothing. The local store keeps no
    /// checksum: [`LocalStore::sha256`] computes one when it is asked for.
    pub async fn head_object(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        match &self.backend {
            Backend::Local(l) => {
                Ok(l.meta(key).await.map(|meta| StoredObject { meta, checksum_sha256: None }))
            }
            Backend::S3(s3) => multipart::head_s3(s3, key).await,
        }
    }

    /// A spool for one upload of at most `limit` bytes.
    pub async fn spool(&self, limit: u64) -> Result<Spool, SpoolError> {
        Spool::create(&self.tmp_dir, limit).await
    }

    /// Store a finished spool as `key`, in whichever backend is configured.
    pub async fn commit(
        &self,
        spooled: Spooled,
        key: &str,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        match &self.backend {
            Backend::Local(l) => l.commit(spooled, key, content_type).await,
            Backend::S3(s3) => s3.put_spooled(spooled, key, content_type).await,
        }
    }
}
