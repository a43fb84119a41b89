//! `events:`: where `upload.completed` events go, and how hard the gateway tries. Absent:
//! no events, and nothing else changes.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `events:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The application's receiver, e.g. `http://127.0.0.1:9000/hooks/uploads`.
    pub url: String,
    /// The outbox file (a redb database), created when missing. Events are written here
    /// before the upload is acknowledged and stay until the receiver takes them.
    pub outbox: PathBuf,
    /// The environment variable holding the signing secret; the gateway refuses to start
    /// when it is unset or shorter than [`MIN_EVENTS_SECRET_LEN`].
    #[serde(default = "default_secret_env")]
    pub secret_env: String,
    /// Deliveries tried before an event is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; each later one doubles, up to `backoff_max_ms`, with jitter.
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Limit for one delivery (connect, send, answer).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

/// The shortest signing secret accepted (128 bits of hex).
pub const MIN_EVENTS_SECRET_LEN: usize = 32;

fn default_secret_env() -> String {
    "PRESIGN_GATEWAY_EVENTS_SECRET".into()
}
fn default_max_attempts() -> u32 {
    12
}
fn default_backoff_initial_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_concurrency() -> usize {
    8
}

impl EventsConfig {
    /// Every value the file alone can show to be wrong; each error names its field.
    pub fn check(&self) -> Result<(), ConfigError> {
        let u = url::Url::parse(&self.url)
            .map_err(|e| ConfigError::new("events.url", format!("{:?}: {e}", self.url)))?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(ConfigError::new("events.url", "must be an http(s) URL with a host"));
        }
        if self.outbox.as_os_str().is_empty() {
            return Err(ConfigError::new("events.outbox", "must not be empty"));
        }
        if self.secret_env.is_empty() {
            return Err(ConfigError::new("events.secret_env", "must name an environment variable"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError::new("events.max_attempts", "must be 1..=100"));
        }
        if self.backoff_initial_ms == 0 {
            return Err(ConfigError::new("events.backoff_initial_ms", "must be at least 1 ms"));
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err(ConfigError::new("events.backoff_max_ms", "must be at least backoff_initial_ms"));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new("events.timeout_ms", "must be at least 1 ms"));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err(ConfigError::new("events.concurrency", "must be 1..=256"));
        }
        Ok(())
    }

    /// The signing secret from the environment (startup and `-t`).
    pub fn secret(&self) -> Result<String, ConfigError> {
        let value = std::env::var(&self.secret_env).map_err(|_| {
            ConfigError::new(
                "events.secret_env",
                format!("environment variable {} is not set (or not UTF-8)", self.secret_env),
            )
        })?;
        if value.len() < MIN_EVENTS_SECRET_LEN {
            return Err(ConfigError::new(
                "events.secret_env",
                format!(
                    "{} is only {} characters long; it must be at least {MIN_EVENTS_SECRET_LEN} \
                     (e.g. `openssl rand -hex 32`)",
                    self.secret_env,
                    value.len()
                ),
            ));
        }
        Ok(value)
    }
}
