//! The gateway's configuration: one YAML file, loaded with `-c`, checked with `-t`.
//!
//! The file has two parts at one level: the binary's own keys ([`Config`]: listener, origins
//! and how they are reached, threads, metrics, logging, Pingora settings) and the upload
//! routes' keys ([`RoutesConfig`]), which an operator embedding the routes uses alone. Every
//! struct is `deny_unknown_fields`, so a typo fails at startup, and validation
//! (`validate.rs`) names the field at fault. Secrets never live here: API keys are SHA-256
//! hashes, credentials come from the environment.

mod auth;
mod error;
mod events;
mod file;
mod limits;
mod origin_pool;
mod origin_tls;
mod routes;
mod server;
mod storage;
mod tls;
mod validate;

pub use auth::{all_keys, AuthConfig, DelegatedAuthConfig, KeyFile};
pub use error::ConfigError;
pub use events::{EventsConfig, MIN_EVENTS_SECRET_LEN};
pub use limits::{auto_max_connections, LimitsConfig, ProxyProtocolConfig, UploadBodyConfig, RESERVED_FDS};
pub use origin_pool::{
    HealthCheckConfig, HealthCheckKind, OriginPoolConfig, PassiveHealthConfig, Selection, MAX_ORIGINS,
};
pub use origin_tls::OriginTlsConfig;
pub use routes::{
    ApiKeyConfig, CorsConfig, CreateOnly, Dialects, FleetConfig, FromUrlConfig, RateLimitConfig,
    RoutesConfig, SharedRateLimitConfig, UploadSessionsConfig, MAX_OBJECT_SIZE,
};
pub use server::{LoggingConfig, MetricsConfig, OriginTimeouts, ServerSettings};
pub use storage::{
    Addressing, LocalStorageConfig, S3StorageConfig, StorageConfig, MAX_FILE_SIZE, MAX_SINGLE_PUT,
};
pub use tls::{Http2Config, TlsConfig};

use std::path::Path;

/// The binary's whole file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the gateway listens on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Origin(s) for pass-through traffic, `host:port`; round-robin when several.
    pub origin: Vec<String>,
    /// Pingora worker threads.
    pub threads: usize,
    /// Prometheus metrics and health endpoint listener.
    pub metrics: MetricsConfig,
    /// Logging.
    pub logging: LoggingConfig,
    /// Pass-through origin timeouts.
    pub origin_timeouts: OriginTimeouts,
    /// Pingora server settings passed through.
    pub server: ServerSettings,
    /// Pass-through origin selection, retries and health.
    pub origin_pool: OriginPoolConfig,
    /// Pass-through origins over TLS.
    pub origin_tls: OriginTlsConfig,
    /// Connection caps and header/keep-alive deadlines.
    pub limits: LimitsConfig,
    /// The TLS listener, when there is one.
    pub tls: Option<TlsConfig>,
    /// The upload routes' keys, at the same level of the file.
    pub routes: RoutesConfig,
}

fn yaml_error(e: serde_yaml::Error) -> ConfigError {
    let field = e
        .location()
        .map(|l| format!("line {} column {}", l.line(), l.column()))
        .unwrap_or_else(|| "<file>".into());
    ConfigError::new(field, e.to_string())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("-c", format!("cannot read {}: {e}", path.display())))
}

impl Config {
    /// Parse YAML text without validating it (the binary applies command-line overrides
    /// first, then validates once).
    pub fn parse_yaml(text: &str) -> Result<Self, ConfigError> {
        let f: file::ServerPart = serde_yaml::from_str(text).map_err(yaml_error)?;
        let file::RoutesPart(routes) = serde_yaml::from_str(text).map_err(yaml_error)?;
        Ok(Config {
            listen: f.listen,
            origin: f.origin,
            threads: f.threads,
            metrics: f.metrics,
            logging: f.logging,
            origin_timeouts: f.origin_timeouts,
            server: f.server,
            origin_pool: f.origin_pool,
            origin_tls: f.origin_tls,
            limits: f.limits,
            tls: f.tls,
            routes,
        })
    }

    /// Parse and validate YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::parse_yaml(text)?.validate()
    }

    /// Read a file without validating it.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        Self::parse_yaml(&read(path)?)
    }

    /// Read, parse and validate a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::read(path)?.validate()
    }
}

impl RoutesConfig {
    /// Parse and validate the routes' keys alone (an embedding proxy's own file).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let cfg: RoutesConfig = serde_yaml::from_str(text).map_err(yaml_error)?;
        cfg.validate()
    }

    /// Read, parse and validate a file of the routes' keys alone.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_yaml(&read(path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "listen: 127.0.0.1:8080\nstorage:\n  local:\n    root: /tmp/x\n";

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = Config::from_yaml(MIN).expect("valid");
        assert_eq!(c.routes.max_json_body, 65536);
        assert!(c.routes.dialects.memories);
        assert!(c.routes.cors.allowed_origins.is_empty());
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

    #[test]
    fn a_bad_value_keeps_its_line_in_either_part() {
        let y = MIN.replace("root: /tmp/x", "root: /tmp/x\n    max_upload_bytes: lots");
        let e = Config::from_yaml(&y).unwrap_err();
        assert!(e.field.starts_with("line 5 column"), "{e}");
        let e = Config::from_yaml(&format!("{MIN}threads: x\n")).unwrap_err();
        assert!(e.field.starts_with("line 5 column"), "{e}");
        let e = Config::from_yaml(&format!("{MIN}max_json_body: \"x\"\n")).unwrap_err();
        assert!(e.field.starts_with("line 5 column") && e.message.contains("max_json_body"), "{e}");
    }

    #[test]
    fn every_server_key_is_read_by_the_server_part() {
        let y = format!(
            "{MIN}origin: [127.0.0.1:2]\nthreads: 3\nmetrics: {{listen: 127.0.0.1:3}}\nlogging: {{level: warn}}\norigin_timeouts: {{read_ms: 5}}\nserver: {{work_stealing: false}}\norigin_tls: {{enabled: true, sni: api.internal}}\n"
        );
        let c = Config::from_yaml(&y).expect("all of the binary's keys are known");
        assert_eq!((c.threads, c.origin_timeouts.read_ms, c.server.work_stealing), (3, 5, false));
        assert_eq!(c.origin_tls.server_name(), Some("api.internal"));
    }

    #[test]
    fn file_io_threads_are_bounded() {
        let c = Config::from_yaml(MIN).expect("valid");
        assert_eq!((c.server.blocking_threads_for(2), c.server.blocking_threads_for(8)), (4, 8));
        assert_eq!(c.server.blocking_threads_idle_seconds, 600);
        let c = Config::from_yaml(&format!("{MIN}server: {{blocking_threads: 2}}\n")).expect("valid");
        assert_eq!(c.server.blocking_threads_for(8), 2);
        for bad in ["0", "513"] {
            let e = Config::from_yaml(&format!("{MIN}server: {{blocking_threads: {bad}}}\n")).unwrap_err();
            assert_eq!(e.field, "server.blocking_threads", "{bad}: {e}");
        }
    }

    #[test]
    fn routes_part_loads_alone() {
        let r = RoutesConfig::from_yaml("storage:\n  local:\n    root: /tmp/x\n").expect("valid");
        assert!(r.dialects.apimall);
        let e = RoutesConfig::from_yaml("listen: 127.0.0.1:1\nstorage:\n  local:\n    root: /tmp/x\n")
            .unwrap_err();
        assert!(e.to_string().contains("listen"), "the binary's keys are not the routes' keys: {e}");
    }

    #[test]
    fn allow_networks_are_parsed() {
        let y = format!("{MIN}from_url:\n  allow_networks: [10.1.0.0/16]\n");
        let c = Config::from_yaml(&y).unwrap();
        assert_eq!(
            c.routes.from_url.networks().unwrap(),
            vec!["10.1.0.0/16".parse::<ipnet::IpNet>().unwrap()]
        );
    }

    #[test]
    fn delegated_auth_fields_are_checked_by_name() {
        let d = |body: &str| format!("{MIN}auth:\n  delegated:\n    url: http://127.0.0.1:3000/auth\n{body}");
        assert!(Config::from_yaml(&d("")).is_ok());
        let field = |body: &str| Config::from_yaml(&d(body)).unwrap_err().field;
        assert_eq!(field("    timeout_ms: 0\n"), "auth.delegated.timeout_ms");
        assert_eq!(
            field("    cache_ttl_secs: 5\n    negative_cache_ttl_secs: 6\n"),
            "auth.delegated.negative_cache_ttl_secs"
        );
        assert_eq!(field("    cache_capacity: 0\n"), "auth.delegated.cache_capacity");
        assert_eq!(field("    token_env: PRESIGN_TEST_SURELY_UNSET_VAR\n"), "auth.delegated.token_env");
        let bad_url = format!("{MIN}auth:\n  delegated:\n    url: ftp://x/auth\n");
        assert_eq!(Config::from_yaml(&bad_url).unwrap_err().field, "auth.delegated.url");
        let unknown = d("    ttl: 5\n");
        assert!(Config::from_yaml(&unknown).unwrap_err().to_string().contains("ttl"));
    }

    #[test]
    fn zero_connect_timeout_names_its_own_field() {
        let y = format!("{MIN}from_url:\n  connect_timeout_secs: 0\n");
        assert_eq!(Config::from_yaml(&y).unwrap_err().field, "from_url.connect_timeout_secs");
    }
}
