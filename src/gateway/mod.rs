//! [`Gateway`]: the binary's proxy. Upload routes first, everything else to the origin pool.
//!
//! An unreachable origin is a 502, a slow one a 504, both with a short JSON body, counted
//! and logged ([`failure`]).

mod failure;
mod pool;

pub use pool::OriginHealthService;

use std::time::Instant;

use async_trait::async_trait;
use pingora::modules::http::HttpModules;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, Result};

use crate::config::{Config, ConfigError};
use crate::edge::{Protocols, RequestTimeouts};
use crate::routes::{RequestInfo, UploadRoutes};

use pool::{OriginPool, Upstream};

pub struct Gateway {
    uploads: UploadRoutes,
    origins: OriginPool,
    access_log: bool,
    /// Header deadline marks, keep-alive idle and body read timeouts (`crate::edge`).
    timeouts: RequestTimeouts,
    protocols: Protocols,
}

/// Per-request state: what the upload routes learned, and when the request started.
pub struct RequestCtx {
    pub info: RequestInfo,
    start: Instant,
    /// Which origins this request has tried, and the one it is on.
    upstream: Upstream,
}

impl Gateway {
    /// Build the proxy and its origin health-check service.
    pub fn from_config(cfg: &Config) -> Result<(Self, OriginHealthService), ConfigError> {
        let uploads = UploadRoutes::from_config(&cfg.routes)?;
        let (origins, health) = OriginPool::from_config(cfg, uploads.metrics())?;
        let timeouts = RequestTimeouts::from_config(cfg);
        let protocols = Protocols::new(uploads.metrics());
        Ok((Self { uploads, origins, access_log: cfg.logging.access_log, timeouts, protocols }, health))
    }

    pub fn uploads(&self) -> &UploadRoutes {
        &self.uploads
    }

    /// One access-log line (target `access`): the key id, never the key.
    fn log_access(&self, session: &Session, ctx: &RequestCtx, route: &str, status: u16, ms: f64) {
        let req = session.req_header();
        log::info!(
            target: "access",
            "route={route} dialect={} key_id={} method={} path={} status={status} bytes_in={} bytes_out={} duration_ms={ms:.3} request_id={} client={}",
            ctx.info.dialect.unwrap_or("-"),
            ctx.info.key_id.as_deref().unwrap_or("-"),
            req.method,
            req.uri.path(),
            session.body_bytes_read(),
            session.body_bytes_sent(),
            ctx.info.request_id.as_ref().map_or("-", |r| r.as_str()),
            // The socket's peer, or the client a PROXY header named.
            session.client_addr().map_or_else(|| "-".to_string(), |a| a.to_string()),
        );
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx { info: RequestInfo::default(), start: Instant::now(), upstream: Upstream::default() }
    }

    /// No downstream modules. Pingora's default adds a response-compression module at level 0
    /// (disabled: it never compresses) that still costs a module context per request; the
    /// gateway never turns compression on, so responses are byte-for-byte the same without it.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    /// Headers are in: the connection's deadlines move on to this request (`crate::edge`).
    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Self::CTX) -> Result<()> {
        self.timeouts.on_request(session);
        self.protocols.count(session);
        Ok(())
    }

    /// In this phase the upload routes answer; by default the request moves on to the origin.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        // The route is decided once, on the path alone; the upload routes' (larger) future is
        // only built, boxed, for requests they answer, so proxied requests never carry it.
        let Some(route) = self.uploads.route(session) else {
            return Ok(false);
        };
        Box::pin(self.uploads.serve(session, route, &mut ctx.info)).await?;
        Ok(true)
    }

    /// The next eligible origin (see `pool`): on a retry, one this request has not tried.
    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<Box<HttpPeer>> {
        self.origins.next_peer(&mut ctx.upstream, session.req_header().uri.path())
    }

    /// Nothing was sent: another origin may take the request, within `max_tries`.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<Error>,
    ) -> Box<Error> {
        self.origins.connect_failed(&ctx.upstream);
        e.set_retry(self.origins.may_retry(&ctx.upstream));
        e
    }

    /// After connecting, a retry is safe when the request is idempotent (RFC 9110 9.2.2), no
    /// body byte was read from the client, and no answer to it has begun: then another origin
    /// may take it, whether the failed connection was reused or fresh (an origin that dies
    /// resets the connections in its accept queue). Anything else is never retried.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Self::CTX,
        _client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        self.origins.proxy_failed(&ctx.upstream);
        let unsent = session.req_header().method.is_idempotent()
            && session.body_bytes_read() == 0
            && !session.as_ref().retry_buffer_truncated()
            && session.as_ref().response_written().is_none();
        e.set_retry(unsent && self.origins.may_retry(&ctx.upstream));
        e
    }

    /// Passive health: 502/503/504 count against the origin, anything else clears its count.
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut pingora::http::ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        self.origins.answered(&ctx.upstream, upstream_response.status.as_u16());
        Ok(())
    }

    /// Origin unreachable: 502; too slow: 504; both with a short JSON body.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, _ctx: &mut Self::CTX) -> FailToProxy {
        let f = failure::classify(e);
        if f.status >= 500 {
            self.uploads.metrics().origin_errors.with_label_values(&[f.kind]).inc();
            log::warn!("origin error {} ({}): {e}", f.status, f.kind);
        }
        if f.status > 0 {
            if let Err(write) = failure::answer(session, &f).await {
                log::debug!("could not answer a failed proxy attempt: {write}");
            }
        }
        FailToProxy { error_code: f.status, can_reuse_downstream: false }
    }

    /// Metrics for every request; one access-log line when enabled.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Self::CTX) {
        RequestTimeouts::on_response_done(session);
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
            self.log_access(session, ctx, route, status, elapsed.as_secs_f64() * 1000.0);
        }
    }
}
