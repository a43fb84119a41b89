//! The upload routes' own part of the configuration ([`RoutesConfig`]): everything
//! [`UploadRoutes`](crate::UploadRoutes) needs, and nothing about listeners or origins, so an
//! operator embedding the routes in a proxy of their own configures only this.

use ipnet::IpNet;
use serde::Deserialize;

use super::auth::AuthConfig;
use super::events::EventsConfig;
use super::limits::UploadBodyConfig;
use super::storage::StorageConfig;
use super::ConfigError;

/// What the upload routes need. In the binary's file these keys sit at the top level beside
/// the server's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesConfig {
    /// Base for minted upload URLs and public URLs, e.g. `https://cdn.example.com`. When
    /// unset, the address the client reached (its `Host`) is used, over plain http.
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// Host values allowed to reach upload routes (others get 403). Empty: any host.
    #[serde(default)]
    pub gateway_hosts: Vec<String>,
    /// Cap on JSON request bodies, in bytes (chunked bodies too); past it, 413.
    #[serde(default = "default_max_json_body")]
    pub max_json_body: usize,
    /// Which dialects are served.
    #[serde(default)]
    pub dialects: Dialects,
    /// API keys, stored as SHA-256 hashes (`presign-gateway hash-key`).
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// More keys in a file of their own (`api_keys:` there too), reloaded on SIGHUP.
    #[serde(default)]
    pub api_keys_file: Option<std::path::PathBuf>,
    /// Delegated auth: the application answers for its own users instead of the keys.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Where uploads go.
    pub storage: StorageConfig,
    /// CORS for browser uploads.
    #[serde(default)]
    pub cors: CorsConfig,
    /// API Mall's upload-from-URL route.
    #[serde(default)]
    pub from_url: FromUrlConfig,
    /// Per-API-key rate limit on upload routes.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Which dialects' PUT URLs sign `If-None-Match: *`, so that each creates its object once
    /// and never replaces it. All off by default.
    #[serde(default)]
    pub create_only: CreateOnly,
    /// Browser upload sessions (`POST /v1/upload-sessions`) and their Companion routes.
    #[serde(default)]
    pub upload_sessions: UploadSessionsConfig,
    /// `upload.completed` events to the application; off when absent.
    #[serde(default)]
    pub events: Option<EventsConfig>,
    /// What every gateway of the fleet must agree on, checked at start-up.
    #[serde(default)]
    pub fleet: FleetConfig,
    /// How slowly an upload body may arrive before it is aborted.
    #[serde(default)]
    pub upload_body: UploadBodyConfig,
}

/// `fleet:`: the fingerprints (`presign-gateway` logs and exports its own) that this
/// gateway's secrets must have; a gateway that would sign differently refuses to start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// Of `PRESIGN_GATEWAY_SECRET` (or the local store's own secret).
    pub gateway_secret_fingerprint: Option<String>,
    /// Of the S3 storage credentials' secret.
    pub storage_secret_fingerprint: Option<String>,
}

fn default_max_json_body() -> usize {
    64 * 1024
}

/// `dialects:`: which APIs are answered; all on by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dialects {
    /// API Mall: `/api/v1/files/upload-url` and `/api/v1/files/from-url`.
    pub apimall: bool,
    /// OctopusX: `/api/upload/presign`.
    pub octopusx: bool,
    /// memories: `/serve/api/v2/upload/signed-url`.
    pub memories: bool,
    /// Ctxfy: `/v1/upload/s3`.
    pub ctxfy: bool,
}

impl Default for Dialects {
    fn default() -> Self {
        Self { apimall: true, octopusx: true, memories: true, ctxfy: true }
    }
}

/// `create_only:`: per dialect, whether its PUT URLs sign `If-None-Match: *`. memories has
/// no entry: its upload is a form POST to the gateway, not a presigned PUT.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreateOnly {
    pub apimall: bool,
    pub octopusx: bool,
    pub ctxfy: bool,
}

/// One entry of `api_keys:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for logs and metrics; never the key itself.
    pub id: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
    /// The user id that scopes this key's namespace: `uploads/user/{user_id}`.
    pub user_id: u64,
    /// Requests per second on upload routes; overrides `rate_limit.default_per_sec`
    /// (0 = unlimited).
    #[serde(default)]
    pub rate_limit_per_sec: Option<u32>,
}

/// `cors:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins allowed, e.g. `http://localhost:3000`. No wildcard.
    pub allowed_origins: Vec<String>,
}

/// `from_url:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FromUrlConfig {
    /// CIDR ranges exempt from the private-network block. Empty by default.
    pub allow_networks: Vec<String>,
    /// Concurrent fetches per API key; past it, 429.
    pub max_concurrent_per_key: usize,
    /// Limit for one connect (and one DNS lookup), in seconds.
    pub connect_timeout_secs: u64,
    /// Deadline for the whole fetch, redirects and body included, in seconds.
    pub timeout_secs: u64,
}

impl FromUrlConfig {
    /// `allow_networks` parsed; an error names the entry at fault.
    pub fn networks(&self) -> Result<Vec<IpNet>, ConfigError> {
        let parse = |(i, n): (usize, &String)| {
            n.parse::<IpNet>()
                .map_err(|e| ConfigError::new(format!("from_url.allow_networks[{i}]"), format!("{n:?}: {e}")))
        };
        self.allow_networks.iter().enumerate().map(parse).collect()
    }
}

impl Default for FromUrlConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            max_concurrent_per_key: 4,
            connect_timeout_secs: 5,
            timeout_secs: 60,
        }
    }
}

/// `rate_limit:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests per second per key on upload routes; 0 = unlimited. Keys may override.
    pub default_per_sec: u32,
    /// Count for the whole fleet in Redis or Valkey instead of per process.
    pub shared: Option<SharedRateLimitConfig>,
}

/// `rate_limit.shared:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedRateLimitConfig {
    /// e.g. `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// How many gateways share the limit: with the backend down, each allows limit ÷ this.
    pub expected_fleet_size: u32,
    /// Deadline for one count, connect included; past it the request is decided locally.
    #[serde(default = "default_shared_timeout_ms")]
    pub timeout_ms: u64,
    /// Prefix of the counters' keys.
    #[serde(default = "default_shared_prefix")]
    pub key_prefix: String,
}

fn default_shared_timeout_ms() -> u64 {
    50
}

fn default_shared_prefix() -> String {
    "presign:".into()
}

/// `upload_sessions:`: the caps on what an application's backend may grant one browser
/// session. A session asks for less or gets these.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSessionsConfig {
    /// Serve `POST /v1/upload-sessions` and the Companion routes under `/uppy/`.
    pub enabled: bool,
    /// Largest file a session may allow, in bytes (multipart uploads; a single form POST is
    /// also capped by the store's `max_upload_bytes`). At most 5 TiB, S3's object limit.
    pub max_file_size: u64,
    /// Most files one session may start.
    pub max_files: u32,
    /// Longest session, in seconds (at most 3600).
    pub max_expires_in: u32,
}

/// S3's largest object: 5 TiB.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

impl Default for UploadSessionsConfig {
    fn default() -> Self {
        Self { enabled: true, max_file_size: 5 * 1024 * 1024 * 1024, max_files: 1000, max_expires_in: 3600 }
    }
}
