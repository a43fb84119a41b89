//! [`UploadRoutes`]: the plugin. One filter that any Pingora proxy calls first from its own
//! `request_filter`; it answers the upload routes and leaves everything else alone.
//!
//! ```ignore
//! async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
//!     if self.uploads.handle(session).await? {
//!         return Ok(true); // answered: a mint, an upload, an object, a preflight
//!     }
//!     // ... the operator's own routing
//!     Ok(false)
//! }
//! ```

use std::sync::Arc;

use pingora::proxy::Session;
use time::OffsetDateTime;

use crate::auth::{ApiKeys, Caller};
use crate::config::{Config, ConfigError};
use crate::cors::Cors;
use crate::dialect::Dialect;
use crate::error::ApiError;
use crate::from_url::FromUrlService;
use crate::http_io::{header_bytes, read_body_capped, send, BodyError, Reply};
use crate::metrics::Metrics;
use crate::mint::{mint, MAX_FILE_SIZE};
use crate::rate_limit::RateLimiter;
use crate::request_id::{new_request_id, now_ms};
use crate::routes::{Route, RouteTable};
use crate::store::{BaseUrl, Storage};

/// The upload routes, built once from the config and shared by all requests.
pub struct UploadRoutes {
    pub(crate) routes: RouteTable,
    pub(crate) keys: ApiKeys,
    pub(crate) storage: Arc<Storage>,
    pub(crate) cors: Cors,
    gateway_hosts: Vec<String>,
    public_base: Option<BaseUrl>,
    max_json_body: usize,
    pub(crate) from_url: FromUrlService,
    rate_limiter: RateLimiter,
    pub(crate) metrics: Arc<Metrics>,
}

/// What the upload routes learned about a request, for logs and metrics.
#[derive(Debug, Default, Clone)]
pub struct RequestInfo {
    /// `mint`, `from_url`, `object`, `preflight`, or empty for pass-through.
    pub route: &'static str,
    pub dialect: Option<&'static str>,
    /// The API key's configured id (never the key).
    pub key_id: Option<Arc<str>>,
    pub request_id: Option<String>,
}

impl RequestInfo {
    /// A fresh `req_<ULID>` for this request, kept here for the access log and returned.
    pub fn assign_request_id(&mut self) -> String {
        let id = new_request_id(now_ms());
        self.request_id = Some(id.clone());
        id
    }
}

impl UploadRoutes {
    /// Build the filter. Fails with a message naming the config field at fault.
    pub fn from_config(cfg: &Config) -> Result<Self, ConfigError> {
        let d = &cfg.dialects;
        let dialects = Dialect::ALL
            .into_iter()
            .filter(|x| match x {
                Dialect::ApiMall => d.apimall,
                Dialect::OctopusX => d.octopusx,
                Dialect::Memories => d.memories,
                Dialect::Ctxfy => d.ctxfy,
            })
            .collect();
        let storage = Arc::new(Storage::from_config(&cfg.storage)?);
        let public_base = match &cfg.public_base_url {
            Some(b) => Some(
                BaseUrl::parse(b).ok_or_else(|| ConfigError::new("public_base_url", "not a valid URL"))?,
            ),
            None => None,
        };
        let per_key =
            cfg.api_keys.iter().filter_map(|k| k.rate_limit_per_sec.map(|r| (k.id.clone(), r))).collect();
        Ok(Self {
            rate_limiter: RateLimiter::new(cfg.rate_limit.default_per_sec, per_key),
            metrics: Metrics::new(),
            routes: RouteTable { dialects, from_url: d.apimall, object_path: storage.gateway_path.clone() },
            keys: ApiKeys::from_config(&cfg.api_keys),
            from_url: FromUrlService::from_config(cfg, storage.clone())?,
            storage,
            cors: Cors::new(&cfg.cors.allowed_origins),
            gateway_hosts: cfg.gateway_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            public_base,
            max_json_body: cfg.max_json_body,
        })
    }

    /// Answer the request if it is an upload route. Returns `Ok(true)` when a response was
    /// written (the caller's `request_filter` should then return `Ok(true)` too), `Ok(false)`
    /// when the request is not ours and should continue to the operator's routing.
    pub async fn handle(&self, session: &mut Session) -> pingora::Result<bool> {
        self.handle_with_info(session, &mut RequestInfo::default()).await
    }

    /// True when `handle` would answer this request (a cheap path check, no I/O).
    pub fn is_upload_route(&self, session: &Session) -> bool {
        !matches!(self.routes.classify(session.req_header().uri.path()), Route::Passthrough)
    }

    /// The metrics this filter records into (serve them with [`crate::metrics::MetricsApp`]).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// [`Self::handle`], also filling `info` for the caller's access log and metrics.
    pub async fn handle_with_info(
        &self,
        session: &mut Session,
        info: &mut RequestInfo,
    ) -> pingora::Result<bool> {
        let route = self.routes.classify(session.req_header().uri.path());
        let route = match route {
            Route::Passthrough => return Ok(false),
            Route::Mint(d) => Route::Mint(d),
            Route::FromUrl => Route::FromUrl,
            // The key borrows the session; re-borrowed inside the object handler.
            Route::Object(_) => Route::Object(""),
        };
        let origin = self.cors.allowed(header_bytes(session, "origin")).map(str::to_owned);
        if session.req_header().method == http::Method::OPTIONS {
            info.route = "preflight";
            Box::pin(self.preflight(session, origin.as_deref())).await?;
            return Ok(true);
        }
        match route {
            Route::Mint(d) => {
                info.route = "mint";
                info.dialect = Some(d.name());
                self.mint_route(session, d, origin.as_deref(), info).await?
            }
            Route::FromUrl => {
                info.route = "from_url";
                info.dialect = Some(Dialect::ApiMall.name());
                // Boxed: the rare heavy routes must not inflate every request's future.
                Box::pin(crate::from_url::handle(self, session, origin.as_deref(), info)).await?
            }
            Route::Object(_) => {
                info.route = "object";
                Box::pin(crate::object_routes::handle(self, session, origin.as_deref(), info)).await?
            }
            Route::Passthrough => return Ok(false),
        }
        Ok(true)
    }

    async fn preflight(&self, session: &mut Session, origin: Option<&str>) -> pingora::Result<()> {
        match origin {
            Some(o) => {
                let mut h = crate::http_io::response_header(&Reply::empty(204))?;
                self.cors.decorate_preflight(&mut h, o);
                crate::http_io::finish_unread_body(session).await;
                session.write_response_header(Box::new(h), true).await
            }
            None => send(session, Reply::empty(403), &self.cors, None).await,
        }
    }

    async fn mint_route(
        &self,
        session: &mut Session,
        dialect: Dialect,
        origin: Option<&str>,
        info: &mut RequestInfo,
    ) -> pingora::Result<()> {
        let request_id = info.assign_request_id();
        let reply = match self.mint_inner(session, dialect, &request_id, info).await {
            Ok(body) => {
                self.metrics.record_minted(dialect.name());
                Reply::json_text(200, body)
            }
            Err(e) => self.error_reply(dialect, &e, &request_id),
        };
        send(session, reply.header("x-request-id", request_id), &self.cors, origin).await
    }

    /// An error in the dialect's envelope, logged once here.
    pub(crate) fn error_reply(&self, dialect: Dialect, e: &ApiError, request_id: &str) -> Reply {
        if let ApiError::Internal(detail) = e {
            log::error!("{request_id} {}: {detail}", dialect.name());
        } else {
            log::debug!("{request_id} {}: {e}", dialect.name());
        }
        let (status, body) = dialect.render_error(e, request_id);
        let mut reply = Reply::json(status, &body);
        if let ApiError::RateLimited { retry_after_secs } = e {
            reply = reply.header("retry-after", retry_after_secs.to_string());
        }
        reply
    }

    async fn mint_inner(
        &self,
        session: &mut Session,
        dialect: Dialect,
        request_id: &str,
        info: &mut RequestInfo,
    ) -> Result<String, ApiError> {
        let caller = self.admit(session, dialect, info)?.clone();
        let body = self.read_json(session).await?;
        let input = dialect.parse(&body, &caller)?;
        // A URL for a size the store would refuse is never handed out.
        if input.size.is_some_and(|n| n > self.storage.max_upload_bytes) {
            return Err(ApiError::InvalidFileSize { max: self.storage.max_upload_bytes.min(MAX_FILE_SIZE) });
        }
        let base = self.base_url(session)?;
        let minted = mint(&self.storage, &base, &caller, &input, OffsetDateTime::now_utc());
        log::debug!("{request_id} {} minted {} for key {}", dialect.name(), minted.key, caller.key_id);
        Ok(dialect.render_success(&minted, request_id))
    }

    /// Method, gateway host and API key checks shared by every JSON route.
    pub(crate) fn admit(
        &self,
        session: &Session,
        dialect: Dialect,
        info: &mut RequestInfo,
    ) -> Result<&Caller, ApiError> {
        if session.req_header().method != http::Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        if !self.gateway_hosts.is_empty() {
            let host = request_host(session).unwrap_or("").to_ascii_lowercase();
            let bare = strip_port(&host);
            if !self.gateway_hosts.iter().any(|h| *h == host || h == bare) {
                return Err(ApiError::NonGatewayHost);
            }
        }
        let caller = self.keys.authenticate(header_bytes(session, "authorization"), dialect.auth_style())?;
        info.key_id = Some(caller.key_id.clone());
        if !self.rate_limiter.admit(&caller.key_id) {
            return Err(ApiError::RateLimited { retry_after_secs: 1 });
        }
        Ok(caller)
    }

    pub(crate) async fn read_json(&self, session: &mut Session) -> Result<bytes::Bytes, ApiError> {
        if crate::http_io::declared_length(session).is_none_or(|n| n <= self.max_json_body as u64) {
            crate::http_io::continue_if_expected(session).await;
        }
        read_body_capped(session, self.max_json_body).await.map_err(|e| match e {
            BodyError::TooLarge => ApiError::BodyTooLarge { limit: self.max_json_body },
            BodyError::Read => ApiError::MalformedBody("request body could not be read".into()),
        })
    }

    /// The base for URLs: the configured one, else the address the client reached.
    pub(crate) fn base_url(&self, session: &Session) -> Result<BaseUrl, ApiError> {
        if let Some(b) = &self.public_base {
            return Ok(b.clone());
        }
        request_host(session)
            .and_then(BaseUrl::from_host)
            .ok_or_else(|| ApiError::MalformedBody("a valid Host header is required".into()))
    }
}

/// The Host header, or the authority of an absolute-form request target.
pub fn request_host(session: &Session) -> Option<&str> {
    let req = session.req_header();
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &host[..=h.len()]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<'a, Fut: std::future::Future>(
        _f: impl FnOnce(&'a UploadRoutes, &'a mut Session, &'a mut RequestInfo) -> Fut,
    ) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// The request future is boxed per request by async-trait; keep it small (see `Box::pin`
    /// on the heavy routes). A regression here shows up as memmove in the mint profile.
    #[test]
    fn request_future_stays_small() {
        let size = future_size(|r, s, i| r.handle_with_info(s, i));
        assert!(size <= 2048, "request future is {size} bytes");
    }
}
