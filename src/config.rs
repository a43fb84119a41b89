//! The gateway's configuration: one YAML file, loaded with `-c`, checked with `-t`.
//!
//! Every struct is `deny_unknown_fields`, so a typo fails at startup instead of being
//! silently ignored, and [`Config::validate`] names the offending field. Secrets never live
//! here: API keys are stored as SHA-256 hashes, storage credentials come from the environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

/// A configuration error that names the field it is about.
#[derive(Debug)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the gateway listens on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Origin(s) for pass-through traffic, `host:port`. Round-robin when several.
    #[serde(default)]
    pub origin: Vec<String>,
    /// Pingora worker threads.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Base for minted upload URLs and public URLs, e.g. `https://cdn.example.com`.
    /// When unset, the address the client reached (its `Host`) is used, over plain http.
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// Host values allowed to reach upload routes. Empty: any host.
    #[serde(default)]
    pub gateway_hosts: Vec<String>,
    /// Cap on JSON request bodies, in bytes (chunked bodies too).
    #[serde(default = "default_max_json_body")]
    pub max_json_body: usize,
    /// Which dialects are served.
    #[serde(default)]
    pub dialects: Dialects,
    /// API keys, stored as SHA-256 hashes (`presign-gateway hash-key`).
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
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
    /// Prometheus metrics and health endpoint listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Pass-through origin timeouts.
    #[serde(default)]
    pub origin_timeouts: OriginTimeouts,
    /// Pingora server settings passed through.
    #[serde(default)]
    pub server: ServerSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests per second per key on upload routes; 0 = unlimited. Keys may override.
    pub default_per_sec: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// e.g. `127.0.0.1:9091`; serves `/metrics` and `/healthz`. Unset: no listener.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (overridden by RUST_LOG).
    pub level: String,
    /// One structured line per request at info level (target `access`).
    pub access_log: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { level: "info".into(), access_log: false }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginTimeouts {
    pub connect_ms: u64,
    pub read_ms: u64,
}

impl Default for OriginTimeouts {
    fn default() -> Self {
        Self { connect_ms: 2_000, read_ms: 30_000 }
    }
}

fn default_threads() -> usize {
    2
}

fn default_max_json_body() -> usize {
    64 * 1024
}

/// Dialect switches; all on by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dialects {
    pub apimall: bool,
    pub octopusx: bool,
    pub memories: bool,
    pub ctxfy: bool,
}

impl Default for Dialects {
    fn default() -> Self {
        Self { apimall: true, octopusx: true, memories: true, ctxfy: true }
    }
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for logs and metrics; never the key itself.
    pub id: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
    /// The user id that scopes this key's namespace: `uploads/user/{user_id}`.
    pub user_id: u64,
    /// Requests per second on upload routes; overrides `rate_limit.default_per_sec` (0 = unlimited).
    #[serde(default)]
    pub rate_limit_per_sec: Option<u32>,
}

/// Storage backend: exactly one of `local` or `s3`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "StorageSection")]
pub enum StorageConfig {
    Local(LocalStorageConfig),
    S3(S3StorageConfig),
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalStorageConfig {
    /// Data directory; objects, metadata and temp files live under it.
    pub root: PathBuf,
    /// URL path under which objects are uploaded and served.
    #[serde(default = "default_public_path")]
    pub public_path: String,
    /// Largest upload accepted when the URL did not sign a size.
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
}

/// S3's limit for one PUT, and ours for one upload.
const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

fn default_public_path() -> String {
    "/files".to_string()
}

fn default_max_upload() -> u64 {
    104_857_600
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    Path,
    Virtual,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3StorageConfig {
    /// e.g. `http://127.0.0.1:8014` or `https://s3.us-east-1.amazonaws.com`.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    #[serde(default = "default_addressing")]
    pub addressing: Addressing,
    /// Base for public URLs; defaults to the object's URL on the endpoint.
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// Environment variables holding the credentials.
    #[serde(default = "default_akid_env")]
    pub access_key_id_env: String,
    #[serde(default = "default_secret_env")]
    pub secret_access_key_env: String,
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins allowed, e.g. `http://localhost:3000`. No wildcard by default.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FromUrlConfig {
    /// CIDR ranges exempt from the private-network block. Empty by default.
    pub allow_networks: Vec<String>,
    /// Concurrent fetches per API key; past it, 429.
    pub max_concurrent_per_key: usize,
    pub connect_timeout_secs: u64,
    pub timeout_secs: u64,
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

/// The subset of Pingora's `ServerConf` an operator is expected to tune.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub pid_file: String,
    pub upgrade_sock: String,
    pub error_log: Option<String>,
    pub grace_period_seconds: u64,
    pub graceful_shutdown_timeout_seconds: u64,
    pub upstream_keepalive_pool_size: usize,
    pub work_stealing: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            pid_file: "/tmp/presign-gateway.pid".into(),
            upgrade_sock: "/tmp/presign-gateway-upgrade.sock".into(),
            error_log: None,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 5,
            upstream_keepalive_pool_size: 128,
            work_stealing: true,
        }
    }
}

impl Config {
    /// Parse and validate YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = serde_yaml::from_str(text).map_err(|e| {
            let field = e
                .location()
                .map(|l| format!("line {} column {}", l.line(), l.column()))
                .unwrap_or_else(|| "<file>".into());
            ConfigError::new(field, e.to_string())
        })?;
        cfg.validate()
    }

    /// Read, parse and validate a file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("-c", format!("cannot read {}: {e}", path.display())))?;
        Self::from_yaml(&text)
    }

    /// Check every value that parsing alone cannot.
    pub fn validate(self) -> Result<Self, ConfigError> {
        parse_socket_addr("listen", &self.listen)?;
        for (i, o) in self.origin.iter().enumerate() {
            parse_socket_addr(&format!("origin[{i}]"), o)?;
        }
        if self.threads == 0 {
            return Err(ConfigError::new("threads", "must be at least 1"));
        }
        if let Some(base) = &self.public_base_url {
            check_base_url("public_base_url", base)?;
            // Upload URLs on the gateway are routed by path; a prefix here would not be.
            if url::Url::parse(base).map(|u| u.path() != "/").unwrap_or(true) {
                return Err(ConfigError::new("public_base_url", "must be scheme://host[:port] with no path"));
            }
        }
        if self.max_json_body < 256 {
            return Err(ConfigError::new("max_json_body", "must be at least 256 bytes"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::new(
                    format!("api_keys[{i}].sha256"),
                    "must be 64 hex characters (see `presign-gateway hash-key`)",
                ));
            }
            if k.id.is_empty() {
                return Err(ConfigError::new(format!("api_keys[{i}].id"), "must not be empty"));
            }
            if !seen.insert(k.sha256.to_ascii_lowercase()) {
                return Err(ConfigError::new(format!("api_keys[{i}].sha256"), "duplicate key"));
            }
        }
        match &self.storage {
            StorageConfig::Local(l) => {
                if l.root.as_os_str().is_empty() {
                    return Err(ConfigError::new("storage.local.root", "must not be empty"));
                }
                let p = &l.public_path;
                if !p.starts_with('/') || p.len() < 2 || p.ends_with('/') || p.contains("..") {
                    return Err(ConfigError::new(
                        "storage.local.public_path",
                        "must look like /files (leading slash, no trailing slash)",
                    ));
                }
                if l.max_upload_bytes == 0 || l.max_upload_bytes > MAX_SINGLE_PUT {
                    return Err(ConfigError::new(
                        "storage.local.max_upload_bytes",
                        "must be 1..=5368709120 (5 GiB)",
                    ));
                }
            }
            StorageConfig::S3(s) => {
                check_base_url("storage.s3.endpoint", &s.endpoint)?;
                if s.region.is_empty() {
                    return Err(ConfigError::new("storage.s3.region", "must not be empty"));
                }
                if s.bucket.is_empty()
                    || !s
                        .bucket
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
                {
                    return Err(ConfigError::new(
                        "storage.s3.bucket",
                        "must be a DNS-style bucket name (a-z, 0-9, '-', '.')",
                    ));
                }
                if let Some(b) = &s.public_base_url {
                    check_base_url("storage.s3.public_base_url", b)?;
                }
                if s.max_upload_bytes == 0 || s.max_upload_bytes > MAX_SINGLE_PUT {
                    return Err(ConfigError::new(
                        "storage.s3.max_upload_bytes",
                        "must be 1..=5368709120 (5 GiB)",
                    ));
                }
            }
        }
        for (i, o) in self.cors.allowed_origins.iter().enumerate() {
            if o == "*" || !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(ConfigError::new(
                    format!("cors.allowed_origins[{i}]"),
                    "must be an exact origin like https://app.example.com (no wildcard, no path)",
                ));
            }
        }
        for (i, n) in self.from_url.allow_networks.iter().enumerate() {
            n.parse::<IpNet>().map_err(|e| {
                ConfigError::new(format!("from_url.allow_networks[{i}]"), format!("{n:?}: {e}"))
            })?;
        }
        if let Some(m) = &self.metrics.listen {
            parse_socket_addr("metrics.listen", m)?;
        }
        if !matches!(self.logging.level.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
            return Err(ConfigError::new("logging.level", "must be error, warn, info, debug or trace"));
        }
        if self.origin_timeouts.connect_ms == 0 || self.origin_timeouts.read_ms == 0 {
            return Err(ConfigError::new("origin_timeouts", "timeouts must be > 0 ms"));
        }
        if self.from_url.max_concurrent_per_key == 0 {
            return Err(ConfigError::new("from_url.max_concurrent_per_key", "must be at least 1"));
        }
        if self.from_url.timeout_secs == 0 || self.from_url.connect_timeout_secs == 0 {
            return Err(ConfigError::new("from_url.timeout_secs", "timeouts must be at least 1s"));
        }
        Ok(self)
    }

    /// `from_url.allow_networks`, parsed (validated at load).
    pub fn allow_networks(&self) -> Vec<IpNet> {
        self.from_url.allow_networks.iter().filter_map(|n| n.parse().ok()).collect()
    }
}

fn parse_socket_addr(field: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse::<SocketAddr>()
        .map_err(|e| ConfigError::new(field, format!("{v:?} is not an ip:port address: {e}")))
}

fn check_base_url(field: &str, v: &str) -> Result<(), ConfigError> {
    let u = url::Url::parse(v).map_err(|e| ConfigError::new(field, format!("{v:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(ConfigError::new(field, "must be an http(s) URL with a host"));
    }
    if u.query().is_some() || v.ends_with('/') {
        return Err(ConfigError::new(field, "must have no query and no trailing slash"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "listen: 127.0.0.1:8080\nstorage:\n  local:\n    root: /tmp/x\n";

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = Config::from_yaml(MIN).expect("valid");
        assert_eq!(c.max_json_body, 65536);
        assert!(c.dialects.memories);
        assert!(c.cors.allowed_origins.is_empty());
    }

    #[test]
    fn unknown_field_is_rejected() {
        let e = Config::from_yaml(&format!("{MIN}bogus: 1\n")).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn bad_listen_names_the_field() {
        let e = Config::from_yaml(&MIN.replace("127.0.0.1:8080", "nope")).unwrap_err();
        assert_eq!(e.field, "listen");
    }

    #[test]
    fn wildcard_cors_is_rejected() {
        let e = Config::from_yaml(&format!("{MIN}cors:\n  allowed_origins: ['*']\n")).unwrap_err();
        assert_eq!(e.field, "cors.allowed_origins[0]");
    }

    #[test]
    fn bad_key_hash_names_the_field() {
        let y = format!("{MIN}api_keys:\n  - id: a\n    sha256: abc\n    user_id: 1\n");
        assert_eq!(Config::from_yaml(&y).unwrap_err().field, "api_keys[0].sha256");
    }

    #[test]
    fn public_base_url_is_an_origin_only() {
        let ok = format!("{MIN}public_base_url: https://cdn.example.com\n");
        assert!(Config::from_yaml(&ok).is_ok());
        for bad in ["https://cdn.example.com/media", "ftp://x", "https://cdn.example.com/", "nope"] {
            let y = format!("{MIN}public_base_url: {bad}\n");
            assert_eq!(Config::from_yaml(&y).unwrap_err().field, "public_base_url", "{bad}");
        }
    }

    #[test]
    fn upload_cap_is_bounded() {
        let y = MIN.replace("root: /tmp/x", "root: /tmp/x\n    max_upload_bytes: 18446744073709551615");
        assert_eq!(Config::from_yaml(&y).unwrap_err().field, "storage.local.max_upload_bytes");
    }

    #[test]
    fn bad_cidr_names_the_field() {
        let y = format!("{MIN}from_url:\n  allow_networks: [127.0.0.2/33]\n");
        assert_eq!(Config::from_yaml(&y).unwrap_err().field, "from_url.allow_networks[0]");
    }
}
