//! [`Gateway`]: the binary's proxy. Upload routes first, everything else to the origin pool.
//!
//! Origins are a round-robin [`LoadBalancer`] with a TCP health check run by a Pingora
//! background service; connect and read timeouts come from the config. An unreachable
//! origin is a 502, a slow one a 504, both with a short JSON body, counted and logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::modules::http::HttpModules;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::services::background::{background_service, GenBackgroundService};
use pingora::{Error, ErrorType, Result};
use pingora_load_balancing::health_check::{HealthObserve, TcpHealthCheck};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::LoadBalancer;

use crate::config::{Config, ConfigError};
use crate::upload_routes::{RequestInfo, UploadRoutes};

/// The origin pool's health-check task, to be added to the server beside the proxy.
pub type OriginHealthService = GenBackgroundService<LoadBalancer<RoundRobin>>;

pub struct Gateway {
    uploads: UploadRoutes,
    origins: Arc<LoadBalancer<RoundRobin>>,
    connect_timeout: Duration,
    read_timeout: Duration,
    access_log: bool,
}

/// One short line when an origin goes down or comes back (Pingora's own line dumps the
/// whole peer configuration; main.rs turns that one down to errors).
struct OriginHealthLog;

#[async_trait]
impl HealthObserve for OriginHealthLog {
    async fn observe(&self, target: &pingora_load_balancing::Backend, healthy: bool) {
        if healthy {
            log::warn!("origin {} is up", target.addr);
        } else {
            log::warn!("origin {} is down", target.addr);
        }
    }
}

/// Per-request state: what the upload routes learned, and when the request started.
pub struct RequestCtx {
    pub info: RequestInfo,
    start: Instant,
}

impl Gateway {
    /// Build the proxy and its origin health-check service.
    pub fn from_config(cfg: &Config) -> Result<(Self, OriginHealthService), ConfigError> {
        let mut lb = LoadBalancer::<RoundRobin>::try_from_iter(cfg.origin.iter().map(String::as_str))
            .map_err(|e| ConfigError::new("origin", e.to_string()))?;
        let mut hc = TcpHealthCheck::new();
        hc.peer_template.options.connection_timeout =
            Some(Duration::from_millis(cfg.origin_timeouts.connect_ms));
        hc.health_changed_callback = Some(Box::new(OriginHealthLog));
        lb.set_health_check(hc);
        lb.health_check_frequency = Some(Duration::from_secs(1));
        let health = background_service("origin health check", lb);
        let gateway = Self {
            uploads: UploadRoutes::from_config(cfg)?,
            origins: health.task(),
            connect_timeout: Duration::from_millis(cfg.origin_timeouts.connect_ms),
            read_timeout: Duration::from_millis(cfg.origin_timeouts.read_ms),
            access_log: cfg.logging.access_log,
        };
        Ok((gateway, health))
    }

    pub fn uploads(&self) -> &UploadRoutes {
        &self.uploads
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx { info: RequestInfo::default(), start: Instant::now() }
    }

    /// No downstream modules. Pingora's default adds a response-compression module at level 0
    /// (disabled: it never compresses) that still costs a module context per request; the
    /// gateway never turns compression on, so responses are byte-for-byte the same without it.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    /// In this phase the upload routes answer; by default the request moves on to the origin.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        // Pass-through decides on the path alone; the upload routes' (larger) future is only
        // built, boxed, for requests they answer, so proxied requests never carry it.
        if !self.uploads.is_upload_route(session) {
            return Ok(false);
        }
        Box::pin(self.uploads.handle_with_info(session, &mut ctx.info)).await
    }

    /// Round-robin over the healthy origins.
    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut Self::CTX) -> Result<Box<HttpPeer>> {
        let Some(backend) = self.origins.select(b"", 256) else {
            return Error::e_explain(ErrorType::ConnectNoRoute, "no healthy origin");
        };
        let mut peer = HttpPeer::new(backend, false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        Ok(Box::new(peer))
    }

    /// Origin unreachable: 502; too slow: 504; both with a short JSON body.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, _ctx: &mut Self::CTX) -> FailToProxy {
        let upstream = e.esource() == &pingora::ErrorSource::Upstream;
        let (code, kind, body): (u16, &str, &'static [u8]) = match e.etype() {
            ErrorType::HTTPStatus(c) => (*c, "status", b"{\"error\":\"bad_request\"}"),
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout if upstream => {
                (504, "timeout", b"{\"error\":\"gateway_timeout\"}")
            }
            ErrorType::ConnectNoRoute => (502, "no_healthy_origin", b"{\"error\":\"bad_gateway\"}"),
            _ if upstream => (502, "unreachable", b"{\"error\":\"bad_gateway\"}"),
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => (0, "client", b""),
            _ if e.esource() == &pingora::ErrorSource::Downstream => {
                (400, "client", b"{\"error\":\"bad_request\"}")
            }
            _ => (500, "internal", b"{\"error\":\"internal_error\"}"),
        };
        if code >= 500 {
            self.uploads.metrics().origin_errors.with_label_values(&[kind]).inc();
            log::warn!("origin error {code} ({kind}): {e}");
        }
        if code > 0 {
            if let Ok(mut h) = ResponseHeader::build(code, Some(3)) {
                let _ = h.insert_header("content-type", "application/json");
                let _ = h.insert_header("content-length", body.len().to_string());
                let _ = h.insert_header("connection", "close");
                session.set_keepalive(None);
                if session.write_response_header(Box::new(h), false).await.is_ok() {
                    let _ = session.write_response_body(Some(Bytes::from_static(body)), true).await;
                }
            }
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }

    /// Metrics for every request; one access-log line when enabled.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Self::CTX) {
        let status = session.response_written().map(|h| h.status.as_u16()).unwrap_or(0);
        let route = if ctx.info.route.is_empty() { "proxy" } else { ctx.info.route };
        let elapsed = ctx.start.elapsed();
        self.uploads.metrics().record_request(
            route,
            ctx.info.dialect.unwrap_or("-"),
            status,
            elapsed.as_secs_f64(),
        );
        if self.access_log {
            let req = session.req_header();
            log::info!(
                target: "access",
                "route={route} dialect={} key_id={} method={} path={} status={status} bytes_in={} bytes_out={} duration_ms={:.3} request_id={}",
                ctx.info.dialect.unwrap_or("-"),
                ctx.info.key_id.as_deref().unwrap_or("-"),
                req.method,
                req.uri.path(),
                session.body_bytes_read(),
                session.body_bytes_sent(),
                elapsed.as_secs_f64() * 1000.0,
                ctx.info.request_id.as_deref().unwrap_or("-"),
            );
        }
    }
}
