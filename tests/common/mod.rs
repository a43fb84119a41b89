//! Test harness: real processes on loopback, temp dirs, no fixed ports, no sleeps used as
//! synchronisation.
//!
//! - [`app`]: [`app::App`], the application that receives and verifies events.
//! - [`gateway`]: [`Gateway`] starts the built binary with a generated config and kills it on drop.
//! - [`garage`]: [`garage::Garage`], a real 3-node Garage cluster on 127.0.0.1-3.
//! - [`origin`]: [`Origin`] is a tiny HTTP/1.1 origin that echoes what it received.
//! - [`redis`]: [`redis::Redis`], a real redis-server on a Unix socket.
//! - [`s3s`]: [`S3sFs`] starts a real `s3s-fs` server with bucket `media`.
//! - [`edge_clients`]: sockets from a chosen loopback address, closes, descriptor counts.
//! - [`h2_raw`]: a raw HTTP/2 client over TLS (hand-built frames, a tiny HPACK encoder).
//! - [`pki`]: a CA and the TLS listener's certificates, made per run.
//! - [`ports`]: child processes on fresh ports with a retry when the bind fails, dead ports,
//!   and waits on conditions.
//! - [`http_client`]: client helpers.
//! - [`auth_app`]: [`auth_app::AuthApp`], the application's delegated-auth endpoint.
//! - [`metrics`]: one series out of the gateway's `/metrics`.
//! - [`seeds`]: the dialect pages' examples (`tests/fixtures/seeds/`) and the shape check.
//! - [`fetch_server`]: the SSRF fetcher tests' HTTP servers and tripwire.
//! - [`pool_origin`]: [`pool_origin::PoolOrigin`], an origin that can be killed, turned
//!   unhealthy, or made to cut a request off.
//! - [`page_server`]: [`page_server::PageServer`] serves a browser test's page and pipes
//!   everything else to an upstream (same-origin with an S3 server).
//! - [`ssrf_cases`]: the SSRF corpus tests' case runner.
//! - [`tls_origin`]: [`tls_origin::TlsOrigin`], an HTTPS origin that records the SNI and
//!   handshakes it saw, and [`tls_origin::TestCa`], the test's own CA (rcgen).
//! - [`verify`]: the SigV4 verifier tests' signer and check.
#![allow(dead_code, unused_imports)]

pub mod app;
pub mod auth_app;
pub mod boto3;
pub mod browser;
pub mod edge_clients;
pub mod fetch_server;
pub mod form;
pub mod garage;
pub mod gateway;
pub mod h2_raw;
pub mod http_client;
pub mod metrics;
pub mod origin;
pub mod page_server;
pub mod pki;
pub mod pool_origin;
pub mod ports;
pub mod redis;
pub mod s3s;
pub mod seeds;
pub mod ssrf_cases;
pub mod tls_origin;
pub mod verify;

pub use gateway::{bin, mint, walk, Gateway, GatewayOpts, MINT};
pub use http_client::{client, post_json, raw_exchange};
pub use origin::Origin;
pub use ports::{start_listening, wait_until, wait_until_async, DeadPort};
pub use s3s::{S3sFs, S3_ACCESS_KEY, S3_SECRET_KEY};
pub use seeds::{assert_same_shape, Seed};

pub const DEMO_KEY: &str = "demo-key";
pub const DEMO_KEY_SHA256: &str = "c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c";
