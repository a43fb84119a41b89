//! The per-process limiter, on `pingora-limits`: one sliding one-second window per key id
//! (a count-min estimator: no lock, no per-key allocation).

use std::time::Duration;

use pingora_limits::rate::Rate;

pub struct LocalLimiter {
    rate: Rate,
    default_per_sec: u32,
}

impl LocalLimiter {
    /// `default_per_sec` 0 means unlimited unless a key sets its own limit.
    pub fn new(default_per_sec: u32) -> Self {
        Self { rate: Rate::new(Duration::from_secs(1)), default_per_sec }
    }

    /// Count one request for `key_id`, whose own limit (from its config entry or the
    /// application's answer) overrides the default; false when it is over its limit.
    pub fn admit(&self, key_id: &str, own_limit: Option<u32>) -> bool {
        let limit = own_limit.unwrap_or(self.default_per_sec);
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
        let rl = LocalLimiter::new(3);
        assert_eq!((0..10).filter(|_| rl.admit("a", None)).count(), 3);
        assert_eq!((0..10).filter(|_| rl.admit("b", None)).count(), 3, "keys are independent");
        assert_eq!((0..10).filter(|_| rl.admit("vip", Some(5))).count(), 5);
        assert_eq!((0..10).filter(|_| rl.admit("free", Some(0))).count(), 10, "0 = unlimited");
    }
}
