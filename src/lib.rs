//! presign-gateway: an upload edge on Pingora.
//!
//! It answers the "give me an upload URL" routes of four media APIs (API Mall, OctopusX,
//! memories, Ctxfy) with SigV4 presigned URLs from its own signer ([`sigv4`]), stores or
//! relays the uploads ([`store`]), and leaves every other request to the origin.
//!
//! The upload routes are one filter, [`UploadRoutes`], that any Pingora `ProxyHttp` calls
//! from its `request_filter`; [`Gateway`] is the ready proxy built on it.

pub mod auth;
pub mod cli;
pub mod config;
pub mod cors;
pub mod dialect;
pub mod error;
pub mod from_url;
pub mod gateway;
pub mod http_io;
pub mod json_fields;
pub mod json_out;
pub mod metrics;
pub mod mint;
pub mod object_key;
pub mod object_routes;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod sigv4;
pub mod ssrf;
pub mod store;
pub mod upload_routes;
pub mod url_path;

pub use auth::hash_key;
pub use config::Config;
pub use gateway::Gateway;
pub use upload_routes::UploadRoutes;
