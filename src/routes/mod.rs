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
//!
//! Layers point down only: this module decides the route and dispatches; each handler
//! (`mint`, `from_url`, `object`, `preflight`) takes the shared [`RouteContext`].

mod companion;
mod complete;
mod context;
mod emit;
mod from_url;
mod job_slots;
mod mint;
mod object;
mod preflight;
mod request_info;
mod table;
mod upload_sessions;

pub use request_info::{RequestId, RequestInfo};

use std::sync::Arc;

use pingora::proxy::Session;
use pingora::services::background::{background_service, GenBackgroundService};

use crate::config::{ConfigError, RoutesConfig};
use crate::dialect::Dialect;
use crate::events::{EventDelivery, EventsAdmin};
use crate::metrics::{AdminRoutes, Metrics};
use crate::sigv4::percent_decode_str;
use crate::store::key_is_safe;
use crate::upload::session_token::SessionTokens;

use context::RouteContext;
use from_url::FromUrlService;
use table::{Route, RouteTable};

/// The upload routes, built once from the config and shared by all requests.
pub struct UploadRoutes {
    table: RouteTable,
    ctx: RouteContext,
    from_url: FromUrlService,
    sessions: companion::Sessions,
}

/// A request the upload routes answer, decided once from its path by
/// [`UploadRoutes::route`] and handed back to [`UploadRoutes::serve`].
#[derive(Debug)]
pub struct UploadRoute(Target);

#[derive(Debug)]
enum Target {
    Mint(Dialect),
    Complete(Dialect),
    FromUrl,
    /// The decoded key, or `None` when the path cannot name one we could have minted.
    Object(Option<String>),
    /// The local store's bucket (form uploads).
    Bucket,
    UploadSessions,
    /// The path after `/uppy/`.
    Companion(String),
}

impl UploadRoutes {
    /// Build the filter from its own part of the config. Fails with a message naming the
    /// config field at fault.
    pub fn from_config(cfg: &RoutesConfig) -> Result<Self, ConfigError> {
        // A config an embedder built or deserialized without `validate` is checked here too.
        let cfg = &cfg.clone().validate()?;
        crate::clock::init()?;
        let ctx = RouteContext::from_config(cfg)?;
        let fingerprints = ctx.storage.fingerprints();
        check_fleet(&cfg.fleet, &fingerprints)?;
        ctx.metrics.record_fingerprints(&fingerprints);
        let d = &cfg.dialects;
        let enabled = [d.apimall, d.octopusx, d.memories, d.ctxfy];
        let dialects = Dialect::ALL.into_iter().zip(enabled).filter_map(|(x, on)| on.then_some(x)).collect();
        Ok(Self {
            table: RouteTable {
                dialects,
                from_url: d.apimall,
                object_path: ctx.storage.gateway_path.clone(),
                bucket: ctx.storage.local().is_some(),
                upload_sessions: cfg.upload_sessions.enabled,
            },
            from_url: FromUrlService::from_config(cfg, &ctx.storage)?,
            sessions: companion::Sessions::new(
                SessionTokens::new(
                    ctx.storage.gateway_signer.credentials().secret_access_key.expose_secret(),
                ),
                cfg.upload_sessions.clone(),
            ),
            ctx,
        })
    }

    /// Everything [`Self::from_config`] would refuse that the file alone cannot show, without
    /// writing anything (`presign-gateway -t`).
    pub fn check(cfg: &RoutesConfig) -> Result<(), ConfigError> {
        crate::store::Storage::check(&cfg.storage)?;
        cfg.events.as_ref().map_or(Ok(()), crate::events::Events::check)
    }

    /// Which dialects are on, for the start-up log.
    pub fn dialect_names(&self) -> Vec<&'static str> {
        self.table.dialects.iter().map(|d| d.name()).collect()
    }

    /// (`gateway` | `storage`, fingerprint) of each signing secret: for the start-up log and
    /// for comparing the gateways of a fleet.
    pub fn secret_fingerprints(&self) -> Vec<(&'static str, String)> {
        self.ctx.storage.fingerprints()
    }

    /// Which store the routes use, for the start-up log.
    pub fn store_description(&self) -> String {
        self.ctx.storage.describe()
    }

    /// The metrics this filter records into (serve them with [`crate::MetricsApp`]).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.ctx.metrics
    }

    /// Connections and bodies ended for breaking a limit, counted in [`Self::metrics`]; the
    /// binary's listener records into the same set.
    pub fn refusals(&self) -> &Arc<crate::refusals::Refusals> {
        &self.ctx.refusals
    }

    /// A handle that reloads the API key file (the binary calls it on SIGHUP); `None` in
    /// delegated-auth mode, where the application owns the keys.
    pub fn key_reloader(&self) -> Option<crate::upload::auth::KeyReloader> {
        match &self.ctx.auth {
            crate::upload::auth::Authenticator::Keys(store) => {
                Some(crate::upload::auth::KeyReloader::new(store.clone(), &self.ctx.metrics))
            }
            crate::upload::auth::Authenticator::Delegated(_) => None,
        }
    }

    /// The worker that delivers `upload.completed` events, when `events:` is configured: add
    /// it to the server (`server.add_service(..)`) or no event leaves the outbox.
    pub fn event_delivery(&self) -> Option<GenBackgroundService<EventDelivery>> {
        let events = self.ctx.events.clone()?;
        Some(background_service("event delivery", EventDelivery(events)))
    }

    /// The operator's routes for events (`GET /admin/events/dead`, `POST
    /// /admin/events/dead/{id}/retry`), for [`crate::MetricsApp::with_admin`].
    pub fn events_admin(&self) -> Option<Arc<dyn AdminRoutes>> {
        let events = self.ctx.events.clone()?;
        Some(Arc::new(EventsAdmin(events)))
    }

    /// Answer the request if it is an upload route. Returns `Ok(true)` when a response was
    /// written (the caller's `request_filter` should then return `Ok(true)` too), `Ok(false)`
    /// when the request is not ours and should continue to the operator's routing.
    pub async fn handle(&self, session: &mut Session) -> pingora::Result<bool> {
        match self.route(session) {
            Some(route) => self.serve(session, route, &mut RequestInfo::default()).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// The upload route this request is for, from its path alone (no I/O); `None` for
    /// pass-through. Decide once, then [`Self::serve`] the route.
    pub fn route(&self, session: &Session) -> Option<UploadRoute> {
        let target = match self.table.classify(session.req_header().uri.path()) {
            Route::Passthrough => return None,
            Route::Mint(d) => Target::Mint(d),
            Route::Complete(d) => Target::Complete(d),
            Route::FromUrl => Target::FromUrl,
            Route::Object(raw) => {
                Target::Object(percent_decode_str(raw).filter(|k| key_is_safe(k)).map(|k| k.into_owned()))
            }
            Route::Bucket => Target::Bucket,
            Route::UploadSessions => Target::UploadSessions,
            Route::Companion(rest) => Target::Companion(rest.to_owned()),
        };
        Some(UploadRoute(target))
    }

    /// Answer a request [`Self::route`] matched, filling `info` for the caller's access log
    /// and metrics.
    pub async fn serve(
        &self,
        session: &mut Session,
        route: UploadRoute,
        info: &mut RequestInfo,
    ) -> pingora::Result<()> {
        let origin = self
            .ctx
            .cors
            .allowed(crate::http_io::header_bytes(session, http::header::ORIGIN))
            .map(str::to_owned);
        let origin = origin.as_deref();
        if session.req_header().method == http::Method::OPTIONS {
            info.route = "preflight";
            return Box::pin(preflight::handle(&self.ctx, session, origin)).await;
        }
        match route.0 {
            Target::Mint(d) => {
                info.route = "mint";
                info.dialect = Some(d.name());
                mint::handle(&self.ctx, session, d, origin, info).await
            }
            Target::Complete(d) => {
                info.route = "complete";
                info.dialect = Some(d.name());
                Box::pin(complete::handle(&self.ctx, session, d, origin, info)).await
            }
            Target::FromUrl => {
                info.route = "from_url";
                info.dialect = Some(Dialect::ApiMall.name());
                // Boxed: the rare heavy routes must not inflate every request's future.
                Box::pin(from_url::handle(&self.ctx, &self.from_url, session, origin, info)).await
            }
            Target::Object(key) => {
                info.route = "object";
                Box::pin(object::handle(&self.ctx, session, key, origin, info)).await
            }
            Target::Bucket => {
                info.route = "form_post";
                Box::pin(object::handle_bucket(&self.ctx, session, origin, info)).await
            }
            Target::UploadSessions => {
                info.route = "upload_sessions";
                let (tokens, caps) = (&self.sessions.tokens, &self.sessions.caps);
                Box::pin(upload_sessions::handle(&self.ctx, tokens, caps, session, origin, info)).await
            }
            Target::Companion(rest) => {
                info.route = "companion";
                Box::pin(companion::handle(&self.ctx, &self.sessions, session, &rest, origin, info)).await
            }
        }
    }
}

/// A gateway whose secrets do not have the fleet's fingerprints would mint URLs the others
/// refuse: it does not start.
fn check_fleet(
    fleet: &crate::config::FleetConfig,
    have: &[(&'static str, String)],
) -> Result<(), ConfigError> {
    let want = [
        ("gateway", "fleet.gateway_secret_fingerprint", &fleet.gateway_secret_fingerprint),
        ("storage", "fleet.storage_secret_fingerprint", &fleet.storage_secret_fingerprint),
    ];
    for (which, field, expected) in want {
        let Some(expected) = expected else { continue };
        match have.iter().find(|(w, _)| *w == which) {
            Some((_, got)) if got.eq_ignore_ascii_case(expected.trim()) => {}
            Some((_, got)) => {
                return Err(ConfigError::new(
                    field,
                    format!("this gateway's {which} secret has fingerprint {got}, the fleet's is {expected}"),
                ))
            }
            None => return Err(ConfigError::new(field, format!("no {which} secret here (local store?)"))),
        }
    }
    Ok(())
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
        let size = future_size(|r, s, i| r.serve(s, UploadRoute(Target::FromUrl), i));
        assert!(size <= 2048, "request future is {size} bytes");
    }
}
