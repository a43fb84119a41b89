//! Every check that parsing alone cannot make, one function per section. Each error names
//! its field.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::routes::{
    ApiKeyConfig, CorsConfig, FromUrlConfig, RoutesConfig, UploadSessionsConfig, MAX_OBJECT_SIZE,
};
use super::server::{LoggingConfig, OriginTimeouts};
use super::storage::{LocalStorageConfig, S3StorageConfig, StorageConfig, MAX_SINGLE_PUT};
use super::{Config, ConfigError};

impl Config {
    /// Check every value of the binary's file, then the routes' part.
    pub fn validate(mut self) -> Result<Self, ConfigError> {
        parse_socket_addr("listen", &self.listen)?;
        for (i, o) in self.origin.iter().enumerate() {
            parse_socket_addr(&format!("origin[{i}]"), o)?;
        }
        if self.threads == 0 {
            return Err(ConfigError::new("threads", "must be at least 1"));
        }
        if self.server.blocking_threads.is_some_and(|n| !(1..=512).contains(&n)) {
            return Err(ConfigError::new("server.blocking_threads", "must be 1..=512"));
        }
        if let Some(m) = &self.metrics.listen {
            parse_socket_addr("metrics.listen", m)?;
        }
        check_logging(&self.logging)?;
        check_origin_timeouts(&self.origin_timeouts)?;
        self.origin_pool.validate(self.origin.len())?;
        self.origin_tls.validate()?;
        self.limits.validate()?;
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        self.routes = self.routes.validate()?;
        Ok(self)
    }
}

impl RoutesConfig {
    /// Check every value of the routes' part; parses `from_url.allow_networks`.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if let Some(base) = &self.public_base_url {
            check_public_base_url(base)?;
        }
        if self.max_json_body < 256 {
            return Err(ConfigError::new("max_json_body", "must be at least 256 bytes"));
        }
        check_api_keys(&self.api_keys)?;
        check_auth(&self)?;
        check_shared_limits(&self.rate_limit)?;
        check_storage(&self.storage)?;
        check_cors(&self.cors)?;
        check_from_url(&self.from_url)?;
        check_upload_sessions(&self.upload_sessions)?;
        if let Some(events) = &self.events {
            events.check()?;
        }
        self.upload_body.validate()?;
        Ok(self)
    }
}

fn check_logging(l: &LoggingConfig) -> Result<(), ConfigError> {
    if !matches!(l.level.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
        return Err(ConfigError::new("logging.level", "must be error, warn, info, debug or trace"));
    }
    Ok(())
}

fn check_origin_timeouts(t: &OriginTimeouts) -> Result<(), ConfigError> {
    if t.connect_ms == 0 {
        return Err(ConfigError::new("origin_timeouts.connect_ms", "must be > 0 ms"));
    }
    if t.read_ms == 0 {
        return Err(ConfigError::new("origin_timeouts.read_ms", "must be > 0 ms"));
    }
    Ok(())
}

/// Upload URLs on the gateway are routed by path, so the base is an origin with no path.
fn check_public_base_url(base: &str) -> Result<(), ConfigError> {
    check_base_url("public_base_url", base)?;
    if url::Url::parse(base).map(|u| u.path() != "/").unwrap_or(true) {
        return Err(ConfigError::new("public_base_url", "must be scheme://host[:port] with no path"));
    }
    Ok(())
}

pub(super) fn check_api_keys(keys: &[ApiKeyConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, k) in keys.iter().enumerate() {
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
    Ok(())
}

/// Delegated auth replaces the keys, so keys beside it would be a config that means two
/// things; the key file is read here so that `-t` and startup refuse a bad one.
fn check_auth(r: &RoutesConfig) -> Result<(), ConfigError> {
    let Some(d) = &r.auth.delegated else {
        return super::all_keys(&r.api_keys, r.api_keys_file.as_ref()).map(drop);
    };
    if !r.api_keys.is_empty() || r.api_keys_file.is_some() {
        return Err(ConfigError::new(
            "auth.delegated",
            "the application answers for every caller: remove api_keys and api_keys_file",
        ));
    }
    check_base_url("auth.delegated.url", &d.url)?;
    if !(1..=60_000).contains(&d.timeout_ms) {
        return Err(ConfigError::new("auth.delegated.timeout_ms", "must be from 1 to 60000 ms"));
    }
    if d.cache_ttl_secs > 86_400 {
        return Err(ConfigError::new("auth.delegated.cache_ttl_secs", "must be at most 86400 (a day)"));
    }
    if d.negative_cache_ttl_secs > d.cache_ttl_secs {
        return Err(ConfigError::new(
            "auth.delegated.negative_cache_ttl_secs",
            "must not exceed cache_ttl_secs: a refusal is trusted for less time than a grant",
        ));
    }
    if d.cache_capacity == 0 {
        return Err(ConfigError::new("auth.delegated.cache_capacity", "must be at least 1"));
    }
    if let Some(var) = &d.token_env {
        if std::env::var_os(var).is_none() {
            return Err(ConfigError::new("auth.delegated.token_env", format!("{var} is not set")));
        }
    }
    Ok(())
}

fn check_shared_limits(r: &super::RateLimitConfig) -> Result<(), ConfigError> {
    let Some(s) = &r.shared else { return Ok(()) };
    if !(s.url.starts_with("redis://") || s.url.starts_with("rediss://") || s.url.starts_with("unix://")) {
        return Err(ConfigError::new(
            "rate_limit.shared.url",
            "must be a redis://, rediss:// or unix:// URL",
        ));
    }
    if s.expected_fleet_size == 0 {
        return Err(ConfigError::new("rate_limit.shared.expected_fleet_size", "must be at least 1"));
    }
    if !(1..=5_000).contains(&s.timeout_ms) {
        return Err(ConfigError::new("rate_limit.shared.timeout_ms", "must be from 1 to 5000 ms"));
    }
    Ok(())
}

fn check_storage(s: &StorageConfig) -> Result<(), ConfigError> {
    match s {
        StorageConfig::Local(l) => check_local(l),
        StorageConfig::S3(s) => check_s3(s),
    }
}

fn check_local(l: &LocalStorageConfig) -> Result<(), ConfigError> {
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
    check_upload_cap("storage.local.max_upload_bytes", l.max_upload_bytes)
}

fn check_s3(s: &S3StorageConfig) -> Result<(), ConfigError> {
    check_base_url("storage.s3.endpoint", &s.endpoint)?;
    if s.region.is_empty() {
        return Err(ConfigError::new("storage.s3.region", "must not be empty"));
    }
    let dns_style = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    if s.bucket.is_empty() || !s.bucket.bytes().all(dns_style) {
        return Err(ConfigError::new(
            "storage.s3.bucket",
            "must be a DNS-style bucket name (a-z, 0-9, '-', '.')",
        ));
    }
    if let Some(b) = &s.public_base_url {
        check_base_url("storage.s3.public_base_url", b)?;
    }
    check_upload_cap("storage.s3.max_upload_bytes", s.max_upload_bytes)
}

fn check_upload_cap(field: &str, cap: u64) -> Result<(), ConfigError> {
    if cap == 0 || cap > MAX_SINGLE_PUT {
        return Err(ConfigError::new(field, format!("must be 1..={MAX_SINGLE_PUT} (5 GiB)")));
    }
    Ok(())
}

fn check_upload_sessions(u: &UploadSessionsConfig) -> Result<(), ConfigError> {
    if u.max_file_size == 0 || u.max_file_size > MAX_OBJECT_SIZE {
        return Err(ConfigError::new("upload_sessions.max_file_size", "must be 1..=5497558138880 (5 TiB)"));
    }
    if u.max_files == 0 {
        return Err(ConfigError::new("upload_sessions.max_files", "must be at least 1"));
    }
    if !(60..=3600).contains(&u.max_expires_in) {
        return Err(ConfigError::new("upload_sessions.max_expires_in", "must be 60..=3600 seconds"));
    }
    Ok(())
}

fn check_cors(c: &CorsConfig) -> Result<(), ConfigError> {
    for (i, o) in c.allowed_origins.iter().enumerate() {
        if o == "*" || !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
            return Err(ConfigError::new(
                format!("cors.allowed_origins[{i}]"),
                "must be an exact origin like https://app.example.com (no wildcard, no path)",
            ));
        }
    }
    Ok(())
}

fn check_from_url(f: &FromUrlConfig) -> Result<(), ConfigError> {
    if f.max_concurrent_per_key == 0 {
        return Err(ConfigError::new("from_url.max_concurrent_per_key", "must be at least 1"));
    }
    if f.connect_timeout_secs == 0 {
        return Err(ConfigError::new("from_url.connect_timeout_secs", "must be at least 1s"));
    }
    if f.timeout_secs == 0 {
        return Err(ConfigError::new("from_url.timeout_secs", "must be at least 1s"));
    }
    f.networks().map(drop)
}

pub(super) fn parse_socket_addr(field: &str, v: &str) -> Result<SocketAddr, ConfigError> {
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
