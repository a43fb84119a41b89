//! The origin pool for pass-through traffic: round robin over the healthy origins, a TCP
//! health check run as a Pingora background service, and the connect/read timeouts.
//!
//! Pingora's health check decides who is healthy and tells us on every change; the pick
//! itself is ours: an atomic counter over a list of flags. Pingora's own `select` hashes each
//! backend (SipHash) to look its health up, several times per request, which was the largest
//! cost the gateway added to a proxied request.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::services::background::{background_service, GenBackgroundService};
use pingora::{Error, ErrorType, Result};
use pingora_load_balancing::health_check::{HealthObserve, TcpHealthCheck};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, LoadBalancer};

use crate::config::{Config, ConfigError};

/// The origin pool's health-check task, to be added to the server beside the proxy.
pub type OriginHealthService = GenBackgroundService<LoadBalancer<RoundRobin>>;

/// How often each origin is checked.
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct OriginPool {
    origins: Arc<[Origin]>,
    next: AtomicUsize,
    connect_timeout: Duration,
    read_timeout: Duration,
}

/// One origin and whether the health check last found it up (every origin starts up, as
/// in Pingora).
struct Origin {
    backend: Backend,
    healthy: AtomicBool,
}

/// Keeps the pool's flags in step with the health check, with one short line when an origin
/// goes down or comes back (Pingora's own line dumps the whole peer configuration; main.rs
/// turns that one down to errors).
struct OriginHealthLog {
    origins: Arc<[Origin]>,
}

#[async_trait]
impl HealthObserve for OriginHealthLog {
    async fn observe(&self, target: &Backend, healthy: bool) {
        for o in self.origins.iter().filter(|o| o.backend.addr == target.addr) {
            o.healthy.store(healthy, Ordering::Relaxed);
        }
        let state = if healthy { "up" } else { "down" };
        log::warn!("origin {} is {state}", target.addr);
    }
}

impl OriginPool {
    /// The pool and its health-check service.
    pub fn from_config(cfg: &Config) -> Result<(Self, OriginHealthService), ConfigError> {
        let mut lb = LoadBalancer::<RoundRobin>::try_from_iter(cfg.origin.iter().map(String::as_str))
            .map_err(|e| ConfigError::new("origin", e.to_string()))?;
        let mut unique: Vec<Backend> = Vec::with_capacity(cfg.origin.len());
        for (i, o) in cfg.origin.iter().enumerate() {
            let backend =
                Backend::new(o).map_err(|e| ConfigError::new(format!("origin[{i}]"), e.to_string()))?;
            // Listed twice is listed once, as in Pingora's own pool: no origin gets two turns.
            if !unique.iter().any(|u| u.addr == backend.addr) {
                unique.push(backend);
            }
        }
        let origins: Arc<[Origin]> =
            unique.into_iter().map(|backend| Origin { backend, healthy: AtomicBool::new(true) }).collect();
        let connect_timeout = Duration::from_millis(cfg.origin_timeouts.connect_ms);
        let mut hc = TcpHealthCheck::new();
        hc.peer_template.options.connection_timeout = Some(connect_timeout);
        hc.health_changed_callback = Some(Box::new(OriginHealthLog { origins: origins.clone() }));
        lb.set_health_check(hc);
        lb.health_check_frequency = Some(HEALTH_CHECK_EVERY);
        let health = background_service("origin health check", lb);
        let pool = Self {
            origins,
            next: AtomicUsize::new(0),
            connect_timeout,
            read_timeout: Duration::from_millis(cfg.origin_timeouts.read_ms),
        };
        Ok((pool, health))
    }

    /// The next healthy origin, round robin.
    pub fn next_peer(&self) -> Result<Box<HttpPeer>> {
        // Each look takes the next turn, so a down origin's turns pass to the ones after it
        // in order and the healthy ones keep equal shares.
        let n = self.origins.len();
        let take_turn = || &self.origins[self.next.fetch_add(1, Ordering::Relaxed) % n];
        let Some(origin) = (0..n).map(|_| take_turn()).find(|o| o.healthy.load(Ordering::Relaxed)) else {
            return Error::e_explain(ErrorType::ConnectNoRoute, "no healthy origin");
        };
        let mut peer = HttpPeer::new(origin.backend.clone(), false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        Ok(Box::new(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(origins: &str) -> OriginPool {
        let yaml = format!("listen: 127.0.0.1:1\norigin: {origins}\nstorage:\n  local:\n    root: /tmp/x\n");
        let cfg = Config::from_yaml(&yaml).expect("config");
        OriginPool::from_config(&cfg).expect("pool").0
    }

    fn picks(p: &OriginPool, n: usize) -> Vec<String> {
        (0..n).map(|_| p.next_peer().map(|peer| peer._address.to_string()).unwrap_or_default()).collect()
    }

    #[test]
    fn turns_are_shared_equally_and_skip_a_down_origin() {
        let p = pool("[127.0.0.1:1001, 127.0.0.1:1001, 127.0.0.1:1002, 127.0.0.1:1003]");
        assert_eq!(p.origins.len(), 3, "an origin listed twice is one origin");
        p.origins[2].healthy.store(false, Ordering::Relaxed);
        let got = picks(&p, 6);
        assert_eq!(got.iter().filter(|a| a.ends_with(":1001")).count(), 3, "{got:?}");
        assert_eq!(got.iter().filter(|a| a.ends_with(":1002")).count(), 3, "{got:?}");
        for o in p.origins.iter() {
            o.healthy.store(false, Ordering::Relaxed);
        }
        assert!(p.next_peer().is_err(), "no healthy origin");
        assert!(pool("[]").next_peer().is_err(), "no origin at all");
    }
}
