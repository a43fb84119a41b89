//! The fleet's limiter: a fixed one-second window per key id in Redis or Valkey, counted by
//! a Lua script in one round trip (`INCR`, and `PEXPIRE` on the window's first request).
//!
//! The backend is reached through redis-rs's `ConnectionManager` (one multiplexed connection
//! that reconnects by itself). Each call has a deadline; a failure marks the backend down for
//! a second, during which requests are decided by the per-process fallback at once (no
//! request waits on a dead backend), then one request probes it again. The switch each way
//! is logged once and counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use prometheus::{IntCounter, IntGauge};
use redis::aio::ConnectionManager;

use super::LocalLimiter;
use crate::config::{ConfigError, SharedRateLimitConfig};
use crate::metrics::Metrics;

const WINDOW_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// How long the backend counts as down after a failure before a request probes it again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct SharedLimiter {
    client: redis::Client,
    conn: ArcSwapOption<ConnectionManager>,
    script: redis::Script,
    prefix: String,
    default_per_sec: u32,
    timeout: Duration,
    fleet: u32,
    fallback: LocalLimiter,
    /// Unix ms until which the backend counts as down (0: up).
    down_until_ms: AtomicU64,
    /// One probe at a time while down.
    probing: AtomicBool,
    up_gauge: IntGauge,
    fallback_decisions: IntCounter,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl SharedLimiter {
    pub fn from_config(
        cfg: &SharedRateLimitConfig,
        default_per_sec: u32,
        metrics: &Metrics,
    ) -> Result<Self, ConfigError> {
        let client = redis::Client::open(cfg.url.as_str())
            .map_err(|e| ConfigError::new("rate_limit.shared.url", e.to_string()))?;
        let up_gauge = metrics.rate_limit_shared_up.clone();
        up_gauge.set(1);
        Ok(Self {
            client,
            conn: ArcSwapOption::empty(),
            script: redis::Script::new(WINDOW_SCRIPT),
            prefix: cfg.key_prefix.clone(),
            default_per_sec,
            timeout: Duration::from_millis(cfg.timeout_ms),
            fleet: cfg.expected_fleet_size,
            fallback: LocalLimiter::new(0),
            down_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            up_gauge,
            fallback_decisions: metrics.rate_limit_fallback.clone(),
        })
    }

    pub async fn admit(&self, key_id: &str, own_limit: Option<u32>) -> bool {
        let limit = own_limit.unwrap_or(self.default_per_sec);
        if limit == 0 {
            return true;
        }
        let now = unix_ms();
        let down_until = self.down_until_ms.load(Ordering::Relaxed);
        let probe = down_until != 0;
        if probe && (now < down_until || self.probing.swap(true, Ordering::AcqRel)) {
            return self.decide_locally(key_id, limit);
        }
        let counted = self.count(key_id, now).await;
        if probe {
            self.probing.store(false, Ordering::Release);
        }
        match counted {
            Ok(n) => {
                if probe {
                    self.down_until_ms.store(0, Ordering::Relaxed);
                    self.up_gauge.set(1);
                    log::warn!("shared rate limiter is back: fleet-wide limits again");
                }
                n <= i64::from(limit)
            }
            Err(why) => {
                let until = now.saturating_add(RETRY_AFTER.as_millis() as u64);
                if self.down_until_ms.swap(until, Ordering::Relaxed) == 0 {
                    self.up_gauge.set(0);
                    log::error!(
                        "shared rate limiter unreachable ({why}): each process limits to its share (limit / {})",
                        self.fleet
                    );
                }
                self.decide_locally(key_id, limit)
            }
        }
    }

    fn decide_locally(&self, key_id: &str, limit: u32) -> bool {
        self.fallback_decisions.inc();
        self.fallback.admit(key_id, Some(limit.div_ceil(self.fleet).max(1)))
    }

    /// This window's count for `key_id`, after counting this request.
    async fn count(&self, key_id: &str, now_ms: u64) -> Result<i64, String> {
        let conn = match self.conn.load_full() {
            Some(c) => c,
            None => {
                let c = tokio::time::timeout(self.timeout, ConnectionManager::new(self.client.clone()))
                    .await
                    .map_err(|_| "connect timed out".to_string())?
                    .map_err(|e| e.to_string())?;
                let c = Arc::new(c);
                self.conn.store(Some(c.clone()));
                c
            }
        };
        let key = format!("{}rl:{key_id}:{}", self.prefix, now_ms / 1000);
        // A clone is a handle on the same multiplexed connection.
        let mut conn = ConnectionManager::clone(&conn);
        let mut invocation = self.script.key(key);
        invocation.arg(2000);
        let call = invocation.invoke_async::<i64>(&mut conn);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}
