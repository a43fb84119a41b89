//! `upload.completed` events: recorded durably when an object is committed, delivered at
//! least once to the application's URL, signed.
//!
//! - [`event`]: the [`UploadEvent`] and its JSON.
//! - [`signature`]: `Presign-Signature` (HMAC-SHA256 over `"{t}.{body}"`), sign and verify.
//! - [`outbox`]: the redb outbox (pending, due, dead), with group commit.
//! - [`delivery`]: the worker (backoff with jitter, bounded concurrency, dead letters).
//!
//! The routes call [`Events::record`] after a commit and before they answer; the binary runs
//! [`EventDelivery`] as a background service and serves [`EventsAdmin`] on the metrics
//! listener. The contract for receivers is in README.md, "Put it in front of your app".

pub mod delivery;
pub mod event;
pub mod outbox;
pub mod signature;

pub use delivery::EventDelivery;
pub use event::{Committed, Source, UploadData, UploadEvent, UPLOAD_SESSION};

use std::sync::Arc;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::config::{ConfigError, EventsConfig};
use crate::metrics::{AdminAnswer, AdminRoutes, Metrics};

use outbox::{Counts, Outbox, OutboxError};

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The events side of the gateway: the outbox, the secret, the receiver, the worker's wake-up.
pub struct Events {
    outbox: Outbox,
    secret: Vec<u8>,
    cfg: EventsConfig,
    client: reqwest::Client,
    notify: Notify,
    metrics: Arc<Metrics>,
}

impl Events {
    /// Open the outbox and read the secret; errors name the config field.
    pub(crate) fn from_config(cfg: &EventsConfig, metrics: Arc<Metrics>) -> Result<Arc<Self>, ConfigError> {
        let secret = cfg.secret()?.into_bytes();
        let outbox =
            Outbox::open(&cfg.outbox).map_err(|e| ConfigError::new("events.outbox", e.to_string()))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(std::time::Duration::from_millis(cfg.timeout_ms))
            .user_agent(concat!("presign-gateway/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::new("events.url", format!("cannot build HTTP client: {e}")))?;
        let events =
            Arc::new(Self { outbox, secret, cfg: cfg.clone(), client, notify: Notify::new(), metrics });
        events.refresh_gauges();
        Ok(events)
    }

    /// What `-t` checks without opening anything: the secret is set.
    pub(crate) fn check(cfg: &EventsConfig) -> Result<(), ConfigError> {
        cfg.secret().map(drop)
    }

    /// Record `upload.completed` for `c` under a fresh id; durable when this returns.
    pub(crate) async fn record(&self, c: &Committed<'_>) -> Result<UploadEvent, OutboxError> {
        self.record_as(event::new_event_id(), c).await
    }

    /// [`Self::record`] under a given id (recording the same id again replaces the pending
    /// event, and a receiver that already has it drops the repeat).
    pub(crate) async fn record_as(&self, id: String, c: &Committed<'_>) -> Result<UploadEvent, OutboxError> {
        let now = OffsetDateTime::now_utc();
        let ev = UploadEvent::completed(id, now, c);
        let body = String::from_utf8(ev.to_json()).map_err(|e| OutboxError(e.to_string()))?;
        let counts = self.outbox.record(&ev.id, body, now_ms()).await?;
        self.metrics.events_recorded.inc();
        self.set_gauges(counts);
        self.notify.notify_one();
        Ok(ev)
    }

    /// The id of a completion's event: the same object (key and ETag) always gets the same
    /// id, so a completion called twice is one event to a receiver that dedupes.
    pub(crate) fn completion_id(&self, key: &str, etag: &str) -> String {
        let mut mac =
            <Hmac<Sha256>>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!("any key"));
        for part in ["upload.completed/completion", key, etag] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        let tag = mac.finalize().into_bytes();
        let mut bits = [0u8; 16];
        bits.copy_from_slice(&tag[..16]);
        event::event_id_from(bits)
    }

    fn set_gauges(&self, c: Counts) {
        self.metrics.events_pending.set(i64::try_from(c.pending).unwrap_or(i64::MAX));
        self.metrics.events_dead.set(i64::try_from(c.dead).unwrap_or(i64::MAX));
    }

    fn refresh_gauges(&self) {
        if let Ok(c) = self.outbox.counts() {
            self.set_gauges(c);
        }
    }
}

/// `GET /admin/events/dead` and `POST /admin/events/dead/{id}/retry`, on the metrics listener.
pub struct EventsAdmin(pub(crate) Arc<Events>);

/// Most dead events one listing returns.
const MAX_LISTING: usize = 1000;

#[async_trait]
impl AdminRoutes for EventsAdmin {
    async fn answer(&self, method: &http::Method, path: &str) -> Option<AdminAnswer> {
        let rest = path.strip_prefix("/admin/events/dead")?;
        let ev = self.0.clone();
        let answer = match (method.as_str(), rest) {
            ("GET", "" | "/") => {
                let listed = tokio::task::spawn_blocking(move || ev.outbox.dead(MAX_LISTING)).await;
                match listed {
                    Ok(Ok(dead)) => AdminAnswer::json(200, &dead_listing(dead)),
                    Ok(Err(e)) => AdminAnswer::json(503, &serde_json::json!({ "error": e.to_string() })),
                    Err(e) => AdminAnswer::json(500, &serde_json::json!({ "error": e.to_string() })),
                }
            }
            ("POST", r) if r.ends_with("/retry") => {
                let id = r.trim_start_matches('/').trim_end_matches("/retry").to_owned();
                let requeued = {
                    let id = id.clone();
                    let ev = ev.clone();
                    tokio::task::spawn_blocking(move || ev.outbox.retry_dead(&id, now_ms())).await
                };
                match requeued {
                    Ok(Ok(Some(c))) => {
                        ev.set_gauges(c);
                        ev.notify.notify_one();
                        AdminAnswer::json(200, &serde_json::json!({ "id": id, "requeued": true }))
                    }
                    Ok(Ok(None)) => AdminAnswer::json(
                        404,
                        &serde_json::json!({ "error": "no such dead event", "id": id }),
                    ),
                    Ok(Err(e)) => AdminAnswer::json(503, &serde_json::json!({ "error": e.to_string() })),
                    Err(e) => AdminAnswer::json(500, &serde_json::json!({ "error": e.to_string() })),
                }
            }
            _ => AdminAnswer::json(405, &serde_json::json!({ "error": "method not allowed" })),
        };
        Some(answer)
    }
}

fn dead_listing(dead: Vec<(String, outbox::Record)>) -> serde_json::Value {
    let items: Vec<serde_json::Value> = dead
        .into_iter()
        .map(|(id, r)| {
            let event: serde_json::Value = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null);
            serde_json::json!({
                "id": id,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "recorded_at_ms": r.recorded_ms,
                "dead_at_ms": r.dead_at_ms,
                "event": event,
            })
        })
        .collect();
    serde_json::json!({ "count": items.len(), "dead": items })
}
