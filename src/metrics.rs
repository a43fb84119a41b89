//! Prometheus metrics and the health endpoint, served on their own listener.
//!
//! Metrics live in a [`Registry`] owned by the gateway (no process globals), so an embedding
//! proxy can run several independent instances. Counters are label-indexed once per request;
//! nothing here allocates per request beyond the label lookup.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub minted: IntCounterVec,
    pub stored_bytes: IntCounterVec,
    pub from_url: IntCounterVec,
    pub origin_errors: IntCounterVec,
    pub ready: AtomicBool,
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
        for c in [&requests, &minted, &stored_bytes, &from_url, &origin_errors] {
            let _ = registry.register(Box::new(c.clone()));
        }
        let _ = registry.register(Box::new(latency.clone()));
        Arc::new(Self {
            registry,
            requests,
            latency,
            minted,
            stored_bytes,
            from_url,
            origin_errors,
            ready: AtomicBool::new(true),
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// `GET /metrics` and `GET /healthz` on the metrics listener.
pub struct MetricsApp {
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let (status, ctype, body) = match path.as_str() {
            "/healthz" if self.metrics.ready.load(Ordering::Relaxed) => (200, "text/plain", b"ok\n".to_vec()),
            "/healthz" => (503, "text/plain", b"draining\n".to_vec()),
            "/metrics" => (200, "text/plain; version=0.0.4", self.metrics.render()),
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
