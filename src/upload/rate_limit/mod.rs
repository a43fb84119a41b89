//! Per-API-key request rate limits on the upload routes. Pass-through traffic is never
//! counted.
//!
//! - [`local`]: per process, on `pingora-limits`. The default.
//! - [`shared`]: one count for the whole fleet, on Redis or Valkey, one round trip per
//!   request. When the backend is unreachable each process falls back to its share of the
//!   limit (limit ÷ `expected_fleet_size`), and goes back when the backend returns; a request
//!   is never refused for lack of the backend.

mod local;
mod shared;

pub use local::LocalLimiter;
pub use shared::SharedLimiter;

use crate::config::{ConfigError, RateLimitConfig};
use crate::metrics::Metrics;

pub enum RateLimiter {
    Local(LocalLimiter),
    Shared(Box<SharedLimiter>),
}

impl RateLimiter {
    pub fn from_config(cfg: &RateLimitConfig, metrics: &Metrics) -> Result<Self, ConfigError> {
        Ok(match &cfg.shared {
            None => RateLimiter::Local(LocalLimiter::new(cfg.default_per_sec)),
            Some(s) => {
                RateLimiter::Shared(Box::new(SharedLimiter::from_config(s, cfg.default_per_sec, metrics)?))
            }
        })
    }

    /// Count one request for `key_id` (its own limit, from its config entry or the
    /// application's answer, overrides the default); false when it is over its limit.
    pub async fn admit(&self, key_id: &str, own_limit: Option<u32>) -> bool {
        match self {
            RateLimiter::Local(l) => l.admit(key_id, own_limit),
            // Boxed: the Redis round trip's future would otherwise grow every request's.
            RateLimiter::Shared(s) => Box::pin(s.admit(key_id, own_limit)).await,
        }
    }
}
