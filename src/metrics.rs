//! Prometheus metrics and the health endpoint, served on their own listener.
//!
//! Metrics live in a [`Registry`] owned by the gateway (no process globals), so an embedding
//! proxy can run several independent instances. Counters are label-indexed once per request;
//! nothing here allocates per request beyond the label lookup.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Label values the request counter is pre-indexed by (anything else goes to the slow path).
const ROUTES: [&str; 6] = ["proxy", "mint", "from_url", "object", "preflight", "other"];
const DIALECTS: [&str; 5] = ["-", "apimall", "octopusx", "memories", "ctxfy"];
const STATUSES: [u16; 19] =
    [200, 203, 204, 206, 304, 400, 401, 403, 404, 405, 411, 413, 416, 429, 500, 502, 503, 504, 0];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub minted: IntCounterVec,
    pub stored_bytes: IntCounterVec,
    pub from_url: IntCounterVec,
    pub origin_errors: IntCounterVec,
    /// Delegated auth: answers from the cache (hit), calls to the application (miss), and
    /// calls that got no answer (error).
    pub auth: IntCounterVec,
    /// Key file reloads by result (ok, refused).
    pub key_reloads: IntCounterVec,
    /// 1 while the shared rate-limit backend answers (or none is configured).
    pub rate_limit_shared_up: IntGauge,
    /// Requests decided by the per-process fallback because the shared backend was down.
    pub rate_limit_fallback: IntCounter,
    /// `upload.completed` events written to the outbox.
    pub events_recorded: IntCounter,
    /// Events the receiver took (a 2xx).
    pub events_delivered: IntCounter,
    /// Delivery attempts that failed (a non-2xx, a timeout, no connection).
    pub events_attempt_failures: IntCounter,
    /// Events parked after their last attempt.
    pub events_dead_lettered: IntCounter,
    /// Events in the outbox waiting for delivery.
    pub events_pending: IntGauge,
    /// Dead-lettered events in the outbox (until an operator requeues them).
    pub events_dead: IntGauge,
    /// Resolved `requests_total` children, so the per-request path is an index and an
    /// atomic add instead of hashing three labels under a lock (measured in benches/load.sh).
    request_slots: Vec<OnceLock<IntCounter>>,
    minted_slots: Vec<OnceLock<IntCounter>>,
    latency_slots: Vec<OnceLock<Histogram>>,
}

fn index_of(list: &[&str], v: &str) -> Option<usize> {
    list.iter().position(|x| *x == v)
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("presign_requests_total", "Requests by route, dialect and status"),
            &["route", "dialect", "status"],
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new("presign_request_duration_seconds", "Request latency by route").buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["route"],
        )
        .expect("static metric definition");
        let minted =
            IntCounterVec::new(Opts::new("presign_minted_urls_total", "Upload URLs minted"), &["dialect"])
                .expect("static metric definition");
        let stored_bytes = IntCounterVec::new(
            Opts::new("presign_stored_bytes_total", "Bytes stored by the gateway"),
            &["route"],
        )
        .expect("static metric definition");
        let from_url = IntCounterVec::new(
            Opts::new("presign_from_url_total", "from-url fetches by result (ok or refusal reason)"),
            &["result"],
        )
        .expect("static metric definition");
        let origin_errors = IntCounterVec::new(
            Opts::new("presign_origin_errors_total", "Pass-through failures by kind"),
            &["kind"],
        )
        .expect("static metric definition");
        let auth = IntCounterVec::new(
            Opts::new("presign_auth_cache_total", "Delegated auth lookups by result (hit, miss, error)"),
            &["result"],
        )
        .expect("static metric definition");
        let key_reloads = IntCounterVec::new(
            Opts::new("presign_key_reloads_total", "API key file reloads by result (ok, refused)"),
            &["result"],
        )
        .expect("static metric definition");
        let rate_limit_shared_up = IntGauge::new(
            "presign_rate_limit_shared_up",
            "1 while the shared rate-limit backend answers (or none is configured)",
        )
        .expect("static metric definition");
        rate_limit_shared_up.set(1);
        let rate_limit_fallback = IntCounter::new(
            "presign_rate_limit_fallback_total",
            "Requests decided by the per-process share because the shared backend was down",
        )
        .expect("static metric definition");
        let _ = registry.register(Box::new(rate_limit_shared_up.clone()));
        let _ = registry.register(Box::new(rate_limit_fallback.clone()));
        for c in [&requests, &minted, &stored_bytes, &from_url, &origin_errors, &auth, &key_reloads] {
            let _ = registry.register(Box::new(c.clone()));
        }
        let _ = registry.register(Box::new(latency.clone()));
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("static metric definition");
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let events_recorded =
            counter("presign_events_recorded_total", "upload.completed events written to the outbox");
        let events_delivered =
            counter("presign_events_delivered_total", "Events the receiver answered with a 2xx");
        let events_attempt_failures =
            counter("presign_events_attempt_failures_total", "Event delivery attempts that failed");
        let events_dead_lettered =
            counter("presign_events_dead_lettered_total", "Events parked as dead after their last attempt");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("static metric definition");
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let events_pending = gauge("presign_events_pending", "Events in the outbox waiting for delivery");
        let events_dead = gauge("presign_events_dead", "Dead-lettered events kept in the outbox");
        Arc::new(Self {
            registry,
            requests,
            latency,
            minted,
            stored_bytes,
            from_url,
            origin_errors,
            auth,
            key_reloads,
            rate_limit_shared_up,
            rate_limit_fallback,
            events_recorded,
            events_delivered,
            events_attempt_failures,
            events_dead_lettered,
            events_pending,
            events_dead,
            request_slots: (0..ROUTES.len() * DIALECTS.len() * STATUSES.len())
                .map(|_| OnceLock::new())
                .collect(),
            latency_slots: (0..ROUTES.len()).map(|_| OnceLock::new()).collect(),
            minted_slots: (0..DIALECTS.len()).map(|_| OnceLock::new()).collect(),
        })
    }

    /// `presign_secret_fingerprint{secret, fingerprint} 1`: the fleet compares these.
    pub fn record_fingerprints(&self, fingerprints: &[(&'static str, String)]) {
        let Ok(g) = prometheus::IntGaugeVec::new(
            Opts::new("presign_secret_fingerprint", "Short hash of each signing secret (never the secret)"),
            &["secret", "fingerprint"],
        ) else {
            return;
        };
        for (which, fp) in fingerprints {
            g.with_label_values(&[*which, fp.as_str()]).set(1);
        }
        self.register(Box::new(g));
    }

    /// Add a collector of another part of the gateway (the origin pool's series).
    pub fn register(&self, c: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(c) {
            log::error!("metrics: {e}");
        }
    }

    /// Count one minted URL.
    pub fn record_minted(&self, dialect: &str) {
        match index_of(&DIALECTS, dialect) {
            Some(i) => self.minted_slots[i].get_or_init(|| self.minted.with_label_values(&[dialect])).inc(),
            None => self.minted.with_label_values(&[dialect]).inc(),
        }
    }

    /// Count one finished request and its latency.
    pub fn record_request(&self, route: &str, dialect: &str, status: u16, seconds: f64) {
        let slots = (
            index_of(&ROUTES, route),
            index_of(&DIALECTS, dialect),
            STATUSES.iter().position(|s| *s == status),
        );
        if let (Some(r), Some(d), Some(st)) = slots {
            let i = (r * DIALECTS.len() + d) * STATUSES.len() + st;
            self.request_slots[i]
                .get_or_init(|| {
                    let code = status.to_string();
                    self.requests.with_label_values(&[route, dialect, &code])
                })
                .inc();
            self.latency_slots[r].get_or_init(|| self.latency.with_label_values(&[route])).observe(seconds);
        } else {
            self.requests.with_label_values(&[route, dialect, &status.to_string()]).inc();
            self.latency.with_label_values(&[route]).observe(seconds);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        #[cfg(feature = "heap-stats")]
        crate::heap_stats::render(&mut out);
        out
    }
}

/// An answer of an [`AdminRoutes`].
pub struct AdminAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl AdminAnswer {
    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        Self { status, content_type: "application/json", body: v.to_string().into_bytes() }
    }
}

/// More routes on the metrics listener (internal only): an operator's views, e.g. the
/// dead-lettered events.
#[async_trait]
pub trait AdminRoutes: Send + Sync {
    /// The answer when `path` is one of these routes, else `None`.
    async fn answer(&self, method: &http::Method, path: &str) -> Option<AdminAnswer>;
}

/// `GET /metrics` and `GET /healthz` on the metrics listener, and the [`AdminRoutes`].
pub struct MetricsApp {
    pub metrics: Arc<Metrics>,
    pub admin: Option<Arc<dyn AdminRoutes>>,
}

impl MetricsApp {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics, admin: None }
    }

    pub fn with_admin(mut self, admin: Option<Arc<dyn AdminRoutes>>) -> Self {
        self.admin = admin;
        self
    }
}

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let method = session.req_header().method.clone();
        let admin = match &self.admin {
            Some(a) => a.answer(&method, &path).await,
            None => None,
        };
        let (status, ctype, body) = match (admin, path.as_str()) {
            (Some(a), _) => (a.status, a.content_type, a.body),
            // Ready while this listener answers: Pingora closes it when the process drains.
            (None, "/healthz") => (200, "text/plain", b"ok\n".to_vec()),
            (None, "/metrics") => (200, "text/plain; version=0.0.4", self.metrics.render()),
            _ => (404, "text/plain", b"not found\n".to_vec()),
        };
        Response::builder()
            .status(status)
            .header("content-type", ctype)
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_slow_paths_count_the_same_series() {
        let m = Metrics::new();
        m.record_request("mint", "apimall", 200, 0.001);
        m.record_request("mint", "apimall", 200, 0.001);
        m.record_request("mint", "apimall", 599, 0.001); // not pre-indexed: slow path
        m.record_minted("ctxfy");
        m.record_minted("someday");
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains(r#"presign_requests_total{dialect="apimall",route="mint",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"presign_requests_total{dialect="apimall",route="mint",status="599"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"presign_request_duration_seconds_count{route="mint"} 3"#), "{text}");
        assert!(text.contains(r#"presign_minted_urls_total{dialect="ctxfy"} 1"#), "{text}");
        assert!(text.contains(r#"presign_minted_urls_total{dialect="someday"} 1"#), "{text}");
    }
}
