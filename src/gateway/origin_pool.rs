//! The origin pool for pass-through traffic: round robin over the healthy origins, a TCP
//! health check run as a Pingora background service, and the connect/read timeouts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::services::background::{background_service, GenBackgroundService};
use pingora::{Error, ErrorType, Result};
use pingora_load_balancing::health_check::{HealthObserve, TcpHealthCheck};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::LoadBalancer;

use crate::config::{Config, ConfigError};

/// The origin pool's health-check task, to be added to the server beside the proxy.
pub type OriginHealthService = GenBackgroundService<LoadBalancer<RoundRobin>>;

/// How often each origin is checked.
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct OriginPool {
    origins: Arc<LoadBalancer<RoundRobin>>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

/// One short line when an origin goes down or comes back (Pingora's own line dumps the
/// whole peer configuration; main.rs turns that one down to errors).
struct OriginHealthLog;

#[async_trait]
impl HealthObserve for OriginHealthLog {
    async fn observe(&self, target: &pingora_load_balancing::Backend, healthy: bool) {
        let state = if healthy { "up" } else { "down" };
        log::warn!("origin {} is {state}", target.addr);
    }
}

impl OriginPool {
    /// The pool and its health-check service.
    pub fn from_config(cfg: &Config) -> Result<(Self, OriginHealthService), ConfigError> {
        let mut lb = LoadBalancer::<RoundRobin>::try_from_iter(cfg.origin.iter().map(String::as_str))
            .map_err(|e| ConfigError::new("origin", e.to_string()))?;
        let connect_timeout = Duration::from_millis(cfg.origin_timeouts.connect_ms);
        let mut hc = TcpHealthCheck::new();
        hc.peer_template.options.connection_timeout = Some(connect_timeout);
        hc.health_changed_callback = Some(Box::new(OriginHealthLog));
        lb.set_health_check(hc);
        lb.health_check_frequency = Some(HEALTH_CHECK_EVERY);
        let health = background_service("origin health check", lb);
        let pool = Self {
            origins: health.task(),
            connect_timeout,
            read_timeout: Duration::from_millis(cfg.origin_timeouts.read_ms),
        };
        Ok((pool, health))
    }

    /// The next healthy origin, round robin.
    pub fn next_peer(&self) -> Result<Box<HttpPeer>> {
        let Some(backend) = self.origins.select(b"", 256) else {
            return Error::e_explain(ErrorType::ConnectNoRoute, "no healthy origin");
        };
        let mut peer = HttpPeer::new(backend, false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        Ok(Box::new(peer))
    }
}
