//! `origin_pool:`: how pass-through traffic picks an origin, retries another, and learns
//! which origins are healthy (active checks, and failures seen on real traffic).

use serde::Deserialize;

use super::ConfigError;

/// The most origins one pool takes (a request's tried origins are a 64-bit set).
pub const MAX_ORIGINS: usize = 64;

/// `origin_pool:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginPoolConfig {
    /// How an origin is picked among the healthy ones.
    pub selection: Selection,
    /// Most origins one request tries (connect failures, or a dead pooled connection before
    /// any of the request body was read); capped at the pool's size.
    pub max_tries: usize,
    pub health_check: HealthCheckConfig,
    pub passive: PassiveHealthConfig,
}

impl Default for OriginPoolConfig {
    fn default() -> Self {
        Self {
            selection: Selection::RoundRobin,
            max_tries: 3,
            health_check: HealthCheckConfig::default(),
            passive: PassiveHealthConfig::default(),
        }
    }
}

/// `origin_pool.selection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Equal turns: the default, for origins alike.
    RoundRobin,
    /// The origin with the fewest requests in flight: for uploads of mixed sizes.
    LeastConnections,
    /// Rendezvous hashing on the request path (the object key): the same key goes to the same
    /// origin while it is healthy, so reads hit the node most likely to have it cached, and
    /// losing a node moves only that node's keys.
    KeyHash,
}

/// `origin_pool.health_check`: Pingora's own TCP or HTTP health check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    pub kind: HealthCheckKind,
    /// HTTP: the request line's path.
    pub path: String,
    /// HTTP: GET or HEAD.
    pub method: String,
    /// HTTP: the `Host` header (default: the origin's address).
    pub host: Option<String>,
    /// HTTP: another port on the origin's address (e.g. Garage's admin `/health`).
    pub port: Option<u16>,
    /// HTTP: the statuses that count as healthy.
    pub healthy_statuses: Vec<u16>,
    pub interval_ms: u64,
    /// Connect and read deadline of one check.
    pub timeout_ms: u64,
    /// Failed checks in a row that take an origin out.
    pub fall: usize,
    /// Passed checks in a row that bring it back.
    pub rise: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckKind {
    Tcp,
    Http,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            kind: HealthCheckKind::Tcp,
            path: "/".into(),
            method: "GET".into(),
            host: None,
            port: None,
            healthy_statuses: vec![200],
            interval_ms: 1000,
            timeout_ms: 1000,
            fall: 1,
            rise: 1,
        }
    }
}

/// `origin_pool.passive`: what real traffic says between checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveHealthConfig {
    /// Connect failures or 5xx answers in a row that take an origin out at once; 0: off.
    pub max_failures: u32,
    /// How long it stays out before it gets traffic again (one failure then takes it out
    /// again; a success clears the count).
    pub eject_ms: u64,
}

impl Default for PassiveHealthConfig {
    fn default() -> Self {
        Self { max_failures: 1, eject_ms: 2000 }
    }
}

impl OriginPoolConfig {
    pub fn validate(&self, origins: usize) -> Result<(), ConfigError> {
        if origins > MAX_ORIGINS {
            return Err(ConfigError::new("origin", format!("at most {MAX_ORIGINS} origins")));
        }
        if self.max_tries == 0 {
            return Err(ConfigError::new("origin_pool.max_tries", "must be at least 1"));
        }
        let h = &self.health_check;
        let field = |f: &str| format!("origin_pool.health_check.{f}");
        if !h.path.starts_with('/') || h.path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(ConfigError::new(field("path"), "must start with / and hold no spaces or controls"));
        }
        if !matches!(h.method.as_str(), "GET" | "HEAD") {
            return Err(ConfigError::new(field("method"), "must be GET or HEAD"));
        }
        if h.healthy_statuses.is_empty() || h.healthy_statuses.iter().any(|s| !(100..=599).contains(s)) {
            return Err(ConfigError::new(field("healthy_statuses"), "must list statuses from 100 to 599"));
        }
        if !(10..=3_600_000).contains(&h.interval_ms) {
            return Err(ConfigError::new(field("interval_ms"), "must be from 10 ms to an hour"));
        }
        if !(1..=60_000).contains(&h.timeout_ms) {
            return Err(ConfigError::new(field("timeout_ms"), "must be from 1 to 60000 ms"));
        }
        if h.fall == 0 {
            return Err(ConfigError::new(field("fall"), "must be at least 1"));
        }
        if h.rise == 0 {
            return Err(ConfigError::new(field("rise"), "must be at least 1"));
        }
        if self.passive.max_failures > 0 && self.passive.eject_ms == 0 {
            return Err(ConfigError::new(
                "origin_pool.passive.eject_ms",
                "must be > 0 when max_failures is set",
            ));
        }
        Ok(())
    }
}
