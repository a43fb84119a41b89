//! `storage:`: where uploads go, exactly one of `local` or `s3`.

use std::path::PathBuf;

use serde::Deserialize;

/// The largest upload a dialect documents (API Mall's 100 MB), and the default cap of both
/// stores.
pub const MAX_FILE_SIZE: u64 = 104_857_600;

/// S3's limit for one PUT, and so the highest `max_upload_bytes` a store may set.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// Storage backend: exactly one of `local` or `s3`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "StorageSection")]
pub enum StorageConfig {
    Local(LocalStorageConfig),
    S3(S3StorageConfig),
}

impl StorageConfig {
    /// The largest upload the store accepts.
    pub fn max_upload_bytes(&self) -> u64 {
        match self {
            StorageConfig::Local(l) => l.max_upload_bytes,
            StorageConfig::S3(s) => s.max_upload_bytes,
        }
    }
}

/// The YAML shape of `storage:` (a map with one of two keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    local: Option<LocalStorageConfig>,
    s3: Option<S3StorageConfig>,
}

impl TryFrom<StorageSection> for StorageConfig {
    type Error = String;

    fn try_from(s: StorageSection) -> Result<Self, String> {
        match (s.local, s.s3) {
            (Some(l), None) => Ok(StorageConfig::Local(l)),
            (None, Some(s)) => Ok(StorageConfig::S3(s)),
            _ => Err("storage: set exactly one of `local` or `s3`".into()),
        }
    }
}

/// `storage.local`: the embedded store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalStorageConfig {
    /// Data directory; objects, metadata, temp files and the URL secret live under it.
    pub root: PathBuf,
    /// URL path under which objects are uploaded and served, e.g. `/files`.
    #[serde(default = "default_public_path")]
    pub public_path: String,
    /// Largest upload accepted (a URL that signed a size accepts exactly that size).
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
}

fn default_public_path() -> String {
    "/files".to_string()
}

fn default_max_upload() -> u64 {
    MAX_FILE_SIZE
}

/// How object URLs name the bucket.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// `https://endpoint/bucket/key`
    Path,
    /// `https://bucket.endpoint/key`
    Virtual,
}

/// `storage.s3`: an S3-compatible bucket the URLs point straight at.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3StorageConfig {
    /// e.g. `http://127.0.0.1:8014` or `https://s3.us-east-1.amazonaws.com`.
    pub endpoint: String,
    /// The region URLs are signed for.
    pub region: String,
    /// A DNS-style bucket name.
    pub bucket: String,
    /// `path` (default) or `virtual`.
    #[serde(default = "default_addressing")]
    pub addressing: Addressing,
    /// Base for public URLs; defaults to the object's URL on the endpoint.
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// Environment variable holding the access key id.
    #[serde(default = "default_akid_env")]
    pub access_key_id_env: String,
    /// Environment variable holding the secret access key.
    #[serde(default = "default_secret_env")]
    pub secret_access_key_env: String,
    /// Environment variable holding an optional session token.
    #[serde(default = "default_token_env")]
    pub session_token_env: String,
    /// Largest relayed upload (memories' multipart POST, from-url).
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
}

fn default_addressing() -> Addressing {
    Addressing::Path
}
fn default_akid_env() -> String {
    "AWS_ACCESS_KEY_ID".into()
}
fn default_secret_env() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}
fn default_token_env() -> String {
    "AWS_SESSION_TOKEN".into()
}
