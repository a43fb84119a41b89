//! Delegated auth: the application behind the gateway says who a credential belongs to.
//!
//! The contract (README, "Put it in front of your app"): the gateway sends
//! `GET <url>` with the caller's credential in `X-Presign-Api-Key` (a header, so it never
//! lands in an access log as part of a URL) and the dialect in `X-Presign-Dialect`. The
//! application answers 200 with `{"user_id": 42, "key_id": "...", "rate_limit_per_sec": 10,
//! "max_file_size": 1048576}` (only `user_id` required), or 401/403.
//!
//! Answers are cached by a SHA-256 of dialect and credential, never the credential itself:
//! grants for `cache_ttl_secs`, refusals for the shorter `negative_cache_ttl_secs`. The cache
//! is moka's: bounded, and concurrent misses for one credential share one call. Anything
//! else (a timeout, a refused connection, a 5xx, a body that is not the contract) fails
//! closed with 503, and is not cached, so the next request asks again.

use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use prometheus::IntCounter;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Caller;
use crate::config::{ConfigError, DelegatedAuthConfig};
use crate::metrics::Metrics;
use crate::upload::error::ApiError;

/// The largest answer read from the endpoint.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone)]
enum Answer {
    Allowed(Caller),
    Denied,
}

/// The identity a 200 answer carries.
#[derive(Deserialize)]
struct Identity {
    user_id: u64,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    rate_limit_per_sec: Option<u32>,
    #[serde(default)]
    max_file_size: Option<u64>,
}

/// Why the endpoint gave no answer; logged, never sent to the client.
#[derive(Debug)]
struct Unavailable(String);

/// Grants and refusals live for different times.
struct ByAnswer {
    grant: Duration,
    refusal: Duration,
}

impl Expiry<[u8; 32], Answer> for ByAnswer {
    fn expire_after_create(&self, _key: &[u8; 32], answer: &Answer, _now: Instant) -> Option<Duration> {
        Some(match answer {
            Answer::Allowed(_) => self.grant,
            Answer::Denied => self.refusal,
        })
    }
}

/// Counters resolved once, so a cached answer costs two atomic adds, not a label lookup.
struct Counters {
    hit: IntCounter,
    miss: IntCounter,
    error: IntCounter,
}

pub struct DelegatedAuth {
    url: String,
    token: Option<String>,
    client: reqwest::Client,
    cache: Cache<[u8; 32], Answer>,
    counters: Counters,
}

impl DelegatedAuth {
    pub fn from_config(cfg: &DelegatedAuthConfig, metrics: &Metrics) -> Result<Self, ConfigError> {
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::new("auth.delegated", format!("cannot build the HTTP client: {e}")))?;
        let token = match &cfg.token_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| ConfigError::new("auth.delegated.token_env", format!("{var} is not set")))?,
            ),
            None => None,
        };
        let cache = Cache::builder()
            .max_capacity(cfg.cache_capacity)
            .expire_after(ByAnswer {
                grant: Duration::from_secs(cfg.cache_ttl_secs),
                refusal: Duration::from_secs(cfg.negative_cache_ttl_secs),
            })
            .build();
        let counter = |result: &str| metrics.auth.with_label_values(&[result]);
        Ok(Self {
            url: cfg.url.clone(),
            token,
            client,
            cache,
            counters: Counters { hit: counter("hit"), miss: counter("miss"), error: counter("error") },
        })
    }

    /// The caller behind `key`, from the cache or the application.
    pub async fn authenticate(&self, key: &str, dialect: &'static str) -> Result<Caller, ApiError> {
        let id = cache_key(key, dialect);
        match self.cache.entry(id).or_try_insert_with(self.ask(key, dialect, id)).await {
            Ok(entry) => {
                if !entry.is_fresh() {
                    self.counters.hit.inc();
                }
                match entry.into_value() {
                    Answer::Allowed(caller) => Ok(caller),
                    Answer::Denied => Err(ApiError::InvalidApiKey),
                }
            }
            Err(e) => {
                log::warn!("delegated auth at {} gave no answer: {}", self.url, e.0);
                Err(ApiError::AuthUnavailable)
            }
        }
    }

    /// One call to the endpoint (moka runs one per credential however many wait on it).
    async fn ask(&self, key: &str, dialect: &'static str, id: [u8; 32]) -> Result<Answer, Unavailable> {
        self.counters.miss.inc();
        let answer = self.call(key, dialect, id).await;
        if answer.is_err() {
            self.counters.error.inc();
        }
        answer
    }

    async fn call(&self, key: &str, dialect: &'static str, id: [u8; 32]) -> Result<Answer, Unavailable> {
        let Ok(key_header) = http::HeaderValue::from_str(key) else {
            // Not sendable as a header value, so no application could have issued it.
            return Ok(Answer::Denied);
        };
        let mut req = self.client.get(&self.url).header("x-presign-api-key", key_header);
        req = req.header("x-presign-dialect", dialect);
        if let Some(t) = &self.token {
            req = req.header("x-presign-gateway-token", t);
        }
        let mut resp = req.send().await.map_err(|e| Unavailable(error_chain(&e)))?;
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => return Ok(Answer::Denied),
            s => return Err(Unavailable(format!("status {s}"))),
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| Unavailable(error_chain(&e)))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Unavailable(format!("answer over {MAX_ANSWER_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let who: Identity = serde_json::from_slice(&body)
            .map_err(|e| Unavailable(format!("200 answer is not the contract's JSON: {e}")))?;
        let key_id = who.key_id.unwrap_or_else(|| format!("delegated-{}", hex::encode(&id[..6])));
        Ok(Answer::Allowed(Caller {
            key_id: key_id.into(),
            user_id: who.user_id,
            rate_limit_per_sec: who.rate_limit_per_sec,
            max_file_size: who.max_file_size,
        }))
    }
}

/// What the cache is keyed by: never the credential itself. The dialect is in it because
/// the application is told the dialect and may answer differently for each.
fn cache_key(key: &str, dialect: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(dialect.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.finalize().into()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// For tests and embedders: the metrics hold the counters, the cache holds no raw key.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_is_a_hash_of_dialect_and_credential() {
        let a = cache_key("secret-key", "apimall");
        assert_ne!(a, cache_key("secret-key", "ctxfy"), "each dialect asks on its own");
        assert_ne!(a, cache_key("secret-kez", "apimall"));
        assert!(!hex::encode(a).contains(&hex::encode("secret")), "no raw key in the cache key");
    }
}
