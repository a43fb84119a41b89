//! presign-gateway: an upload edge on Pingora.
//!
//! It answers the "give me an upload URL" routes of four media APIs (API Mall, OctopusX,
//! memories, Ctxfy) with SigV4 presigned URLs from its own signer ([`sigv4`]), stores or
//! relays the uploads ([`store`]), and leaves every other request to the origin.
//!
//! The upload routes are one filter, [`UploadRoutes`], that any Pingora `ProxyHttp` calls
//! from its `request_filter`, configured by its own part of the file ([`RoutesConfig`]);
//! [`Gateway`] is the ready proxy built on it.
//!
//! Layers, top to bottom (each uses only those below it): `gateway` (the binary's proxy) →
//! `routes` (the plugin and its handlers) → `dialect` (wire formats), `http_io` (our answers) →
//! `upload` (auth, keys, minting) → `store`, `ssrf`, `sigv4` → `config`, `content_type`,
//! `decimal`, `s3_error`, `metrics`, `request_id`. `events` (the outbox and its delivery) sits
//! beside `store`, under `routes`.

pub mod clock;
pub mod config;
mod content_type;
mod decimal;
mod dialect;
pub mod edge;
pub mod events;
mod form_data;
#[cfg(test)]
mod fuzz;
mod gateway;
#[cfg(feature = "heap-stats")]
pub mod heap_stats;
mod http_io;
mod metrics;
pub mod refusals;
mod request_id;
mod routes;
mod s3_error;
pub mod sigv4;
pub mod ssrf;
pub mod store;
mod upload;

pub use config::{Config, ConfigError, RoutesConfig};
pub use gateway::{Gateway, OriginHealthService};
pub use metrics::{AdminAnswer, AdminRoutes, Metrics, MetricsApp};
pub use routes::{RequestId, RequestInfo, UploadRoute, UploadRoutes};
pub use upload::auth::{hash_key, KeyReloader};
/// Browser upload session tokens (`POST /v1/upload-sessions`): their grant and their check,
/// for services that verify a session on their own.
pub use upload::session_token;

/// Stage-by-stage entry points for `benches/mint.rs`; not a stable API.
#[doc(hidden)]
pub mod bench {
    pub use crate::dialect::Dialect;
    pub use crate::upload::auth::{ApiKeys, AuthStyle};
    pub use crate::upload::mint::mint;
}
