//! The edge of the binary: connections an attacker holds open, and logs under attack.
//!
//! - [`service`]: the listener and its accept loop (caps at accept, EMFILE survived);
//! - [`admission`]: the global and per-IP connection caps;
//! - [`proxy_protocol`]: the PROXY protocol header (v1, v2) a load balancer sends first;
//! - [`accept`]: failed accepts, the backoff, the reserved descriptor;
//! - [`stream`]: the header deadline on each client connection;
//! - [`tls`], [`certs`], [`h2_guard`]: the TLS listener, its reloadable certificate, and
//!   the HTTP/2 frames that end a connection;
//! - [`fd_limit`]: RLIMIT_NOFILE raised at start;
//! - [`log_limit`]: warnings and errors logged at most a few per second per call site;
//! - [`RequestTimeouts`]: what the proxy's hooks set on each request.
//!
//! README.md, "Running it on the internet", describes the limits, their defaults and why.

mod accept;
mod admission;
pub mod certs;
pub mod fd_limit;
mod from_config;
mod h2_guard;
pub mod log_limit;
mod protocols;
pub mod proxy_protocol;
mod service;
mod stream;
mod tls;

pub use admission::{Admission, Slot};
pub use certs::{CertError, Certificates};
pub use from_config::{h2_options, server_options, TlsListener};
pub use h2_guard::H2Limits;
pub use protocols::Protocols;
pub use proxy_protocol::ProxyProtocol;
pub use service::{EdgeService, EdgeSettings};
pub use stream::{mark_request_started, mark_response_done, EdgeStream};
pub use tls::{TlsEdge, TlsEdgeStream};

use std::time::Duration;

use pingora::proxy::Session;

use crate::config::Config;

/// The keep-alive idle timeout and the body read timeout, set on every request.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeouts {
    /// What Pingora is told for the wait after a request: 0 (no timer of its own) when the
    /// edge stream enforces the idle timeout, else the timeout in seconds (0: none).
    pingora_keepalive_secs: u64,
    /// `None`: Pingora's default (60 s per read).
    body_read: Option<Duration>,
    /// How long an HTTP/2 response may wait for the client's window; `None`: forever.
    h2_send_stall: Option<Duration>,
}

impl RequestTimeouts {
    pub fn from_config(cfg: &Config) -> Self {
        let stall = cfg.routes.upload_body.stall_timeout_secs;
        // With a header deadline the edge stream keeps a clock and the idle timeout with it,
        // with one timer per connection instead of Pingora's one per request.
        let stream_keeps_idle = cfg.limits.header_timeout_secs > 0;
        Self {
            pingora_keepalive_secs: if stream_keeps_idle { 0 } else { cfg.limits.keepalive_timeout_secs },
            body_read: (stall > 0).then(|| Duration::from_secs(stall)),
            h2_send_stall: cfg
                .tls
                .as_ref()
                .map(|t| t.http2.send_stall_timeout_secs)
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
        }
    }

    /// The request's headers are in: stop their deadline; bound the idle wait after this
    /// request (here, or by the edge stream) and each wait for a body byte.
    pub fn on_request(&self, session: &mut Session) {
        mark_request_started(session.as_downstream().stream());
        if session.as_downstream().get_keepalive().is_some() {
            session.set_keepalive(Some(self.pingora_keepalive_secs));
        }
        if let Some(t) = self.body_read {
            session.as_downstream_mut().set_read_timeout(Some(t));
        }
        if self.h2_send_stall.is_some() && session.as_downstream().is_http2() {
            // A client holding its window at zero holds the stream no longer than this.
            session.as_downstream_mut().set_write_timeout(self.h2_send_stall);
        }
    }

    /// The answer is sent: the next request's header deadline may begin.
    pub fn on_response_done(session: &Session) {
        mark_response_done(session.as_downstream().stream());
    }
}
