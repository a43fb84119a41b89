//! Per-API-key request rate limits on the upload routes, on `pingora-limits`.
//!
//! One sliding one-second window per key id (a count-min estimator: no lock, no per-key
//! allocation). Pass-through traffic is never counted.

use std::collections::HashMap;
use std::time::Duration;

use pingora_limits::rate::Rate;

pub struct RateLimiter {
    rate: Rate,
    default_per_sec: u32,
    per_key: HashMap<String, u32>,
}

impl RateLimiter {
    /// `default_per_sec` 0 means unlimited unless a key sets its own limit.
    pub fn new(default_per_sec: u32, per_key: HashMap<String, u32>) -> Self {
        Self { rate: Rate::new(Duration::from_secs(1)), default_per_sec, per_key }
    }

    /// Count one request for `key_id`; false when it is over its limit.
    pub fn admit(&self, key_id: &str) -> bool {
        let limit = self.per_key.get(key_id).copied().unwrap_or(self.default_per_sec);
        if limit == 0 {
            return true;
        }
        self.rate.observe(&key_id, 1) <= limit as isize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key() {
        let rl = RateLimiter::new(3, HashMap::from([("vip".to_string(), 5), ("free".to_string(), 0)]));
        assert_eq!((0..10).filter(|_| rl.admit("a")).count(), 3);
        assert_eq!((0..10).filter(|_| rl.admit("b")).count(), 3, "keys are independent");
        assert_eq!((0..10).filter(|_| rl.admit("vip")).count(), 5);
        assert_eq!((0..10).filter(|_| rl.admit("free")).count(), 10, "0 = unlimited");
    }
}
