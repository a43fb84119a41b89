//! [`RouteContext`]: the shared state every route handler works with (keys, storage, CORS,
//! limiter, metrics, limits), and the admission steps the JSON routes share.
//!
//! Handlers take this context, never the plugin, so the layers only point down:
//! [`UploadRoutes`](super::UploadRoutes) dispatches to the handlers, the handlers use this.

use std::borrow::Cow;
use std::sync::Arc;

use pingora::proxy::Session;

use crate::config::{ConfigError, RoutesConfig};
use crate::dialect::Dialect;
use crate::events::Events;
use crate::http_io::{header_bytes, read_body_capped, request_host, BodyError, Cors, Reply};
use crate::metrics::Metrics;
use crate::refusals::Refusals;
use crate::store::{BaseUrl, Storage};
use crate::upload::auth::{Authenticator, Caller, DelegatedAuth, KeyStore};
use crate::upload::error::ApiError;
use crate::upload::rate_limit::RateLimiter;

use super::request_info::{RequestId, RequestInfo};

/// Shared by every request the upload routes answer.
pub(crate) struct RouteContext {
    pub auth: Authenticator,
    pub storage: Storage,
    pub cors: Cors,
    pub limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
    /// `upload.completed` events, when `events:` is configured (see `emit.rs`).
    pub events: Option<Arc<Events>>,
    /// Cap on JSON request bodies, in bytes.
    pub max_json_body: usize,
    /// Which dialects' PUT URLs sign `If-None-Match: *`.
    create_only: crate::config::CreateOnly,
    /// Lowercase hosts allowed on upload routes; empty: any.
    gateway_hosts: Vec<String>,
    public_base: Option<BaseUrl>,
    /// How slowly an upload body may arrive.
    pub upload_body: crate::config::UploadBodyConfig,
    /// Bodies ended for their pace, by reason (shared with the listener's refusals).
    pub refusals: Arc<Refusals>,
}

impl RouteContext {
    /// Build from the routes' config; opens the store.
    pub fn from_config(cfg: &RoutesConfig) -> Result<Self, ConfigError> {
        let public_base = match &cfg.public_base_url {
            Some(b) => Some(
                BaseUrl::parse(b).ok_or_else(|| ConfigError::new("public_base_url", "not a valid URL"))?,
            ),
            None => None,
        };
        let metrics = Metrics::new();
        let auth = match &cfg.auth.delegated {
            Some(d) => Authenticator::Delegated(DelegatedAuth::from_config(d, &metrics)?),
            None => Authenticator::Keys(Arc::new(KeyStore::load(&cfg.api_keys, cfg.api_keys_file.clone())?)),
        };
        let events = cfg.events.as_ref().map(|e| Events::from_config(e, metrics.clone())).transpose()?;
        Ok(Self {
            auth,
            storage: Storage::from_config(&cfg.storage)?,
            cors: Cors::new(&cfg.cors.allowed_origins),
            limiter: RateLimiter::from_config(&cfg.rate_limit, &metrics)?,
            events,
            max_json_body: cfg.max_json_body,
            create_only: cfg.create_only,
            gateway_hosts: cfg.gateway_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            public_base,
            upload_body: cfg.upload_body,
            refusals: Refusals::new(&metrics),
            metrics,
        })
    }

    /// Method, gateway host, API key and rate limit: the checks every JSON route makes
    /// before it reads a body.
    pub async fn admit(
        &self,
        session: &Session,
        dialect: Dialect,
        info: &mut RequestInfo,
    ) -> Result<Caller, ApiError> {
        if session.req_header().method != http::Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        if !self.is_gateway_host(session) {
            return Err(ApiError::NonGatewayHost);
        }
        let header = header_bytes(session, http::header::AUTHORIZATION);
        let caller = self.auth.authenticate(header, dialect.auth_style(), dialect.name()).await?;
        info.key_id = Some(caller.key_id.clone());
        if !self.limiter.admit(&caller.key_id, caller.rate_limit_per_sec).await {
            return Err(ApiError::RateLimited { retry_after_secs: 1 });
        }
        Ok(caller)
    }

    /// Whether `dialect`'s PUT URLs create their object once only.
    pub fn create_only(&self, dialect: Dialect) -> bool {
        let c = &self.create_only;
        match dialect {
            Dialect::ApiMall => c.apimall,
            Dialect::OctopusX => c.octopusx,
            Dialect::Ctxfy => c.ctxfy,
            Dialect::Memories => false,
        }
    }

    fn is_gateway_host(&self, session: &Session) -> bool {
        if self.gateway_hosts.is_empty() {
            return true;
        }
        let host = request_host(session).unwrap_or("").to_ascii_lowercase();
        let bare = crate::http_io::headers::strip_port(&host);
        self.gateway_hosts.iter().any(|h| *h == host || h == bare)
    }

    /// The JSON body, capped at `max_json_body`.
    pub async fn read_json(&self, session: &mut Session) -> Result<bytes::Bytes, ApiError> {
        read_body_capped(session, self.max_json_body).await.map_err(|e| match e {
            BodyError::TooLarge => ApiError::BodyTooLarge { limit: self.max_json_body },
            BodyError::Read => ApiError::MalformedBody("request body could not be read".into()),
        })
    }

    /// The base for URLs: the configured one, else the address the client reached.
    pub fn base_url(&self, session: &Session) -> Result<Cow<'_, BaseUrl>, ApiError> {
        if let Some(b) = &self.public_base {
            return Ok(Cow::Borrowed(b));
        }
        let https = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        request_host(session)
            .and_then(|h| BaseUrl::from_host(h, https))
            .map(Cow::Owned)
            .ok_or_else(|| ApiError::MalformedBody("a valid Host header is required".into()))
    }
}

/// An error in the dialect's envelope, logged once here.
pub(crate) fn dialect_error(dialect: Dialect, e: &ApiError, request_id: RequestId) -> Reply {
    if let ApiError::Internal(detail) = e {
        log::error!("{request_id} {}: {detail}", dialect.name());
    } else {
        log::debug!("{request_id} {}: {e}", dialect.name());
    }
    let (status, body) = dialect.render_error(e, request_id.as_str());
    with_retry_after(Reply::json(status, &body), e)
}

/// `Retry-After` on the answer to a rate-limited request.
pub(crate) fn with_retry_after(reply: Reply, e: &ApiError) -> Reply {
    match e {
        ApiError::RateLimited { retry_after_secs } => {
            reply.header(http::header::RETRY_AFTER, http::HeaderValue::from(*retry_after_secs))
        }
        _ => reply,
    }
}
