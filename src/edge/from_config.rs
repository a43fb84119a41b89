//! The TLS listener and its HTTP/2 settings, built from `tls:`.

use std::sync::Arc;
use std::time::Duration;

use pingora::apps::HttpServerOptions;
use pingora::protocols::http::v2::server::{default_h2_options, H2Options};

use crate::config::{Config, Http2Config, TlsConfig};
use crate::metrics::Metrics;

use super::certs::Certificates;
use super::h2_guard::H2Limits;
use super::tls::TlsEdge;

/// What a response may have buffered to send on one stream while the client's window is
/// shut: h2's default is 400 KiB, which at 100 streams would let one connection pin 40 MiB.
const H2_SEND_BUFFER: usize = 128 * 1024;
/// Receive windows: wide enough that an upload over h2 is not held to 64 KiB per round trip,
/// narrow enough that a connection's unread bodies stay bounded (the connection's window
/// bounds all its streams together).
const H2_STREAM_WINDOW: u32 = 256 * 1024;
const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;

/// The TLS listener: its certificate (open, to be reloaded) and its settings.
pub struct TlsListener {
    pub addr: String,
    pub certs: Arc<Certificates>,
    pub edge: Arc<TlsEdge>,
}

fn limits(h2: &Http2Config) -> H2Limits {
    H2Limits {
        max_header_frames: h2.max_header_frames,
        max_resets_per_sec: h2.max_resets_per_sec,
        max_control_frames_per_sec: h2.max_control_frames_per_sec,
    }
}

impl TlsListener {
    /// Load the certificate (a failure names the file) and build the TLS settings.
    pub fn from_config(tls: &TlsConfig, metrics: &Metrics) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = Certificates::open(&tls.cert_file, &tls.key_file, provider.clone(), metrics)
            .map_err(|e| format!("tls: {e}"))?;
        let h2 = tls.http2.enabled.then(|| limits(&tls.http2));
        let edge = TlsEdge::new(certs.clone(), provider, h2).map_err(|e| format!("tls: {e}"))?;
        if tls.reload_check_secs > 0 {
            certs
                .watch(Duration::from_secs(tls.reload_check_secs))
                .map_err(|e| format!("tls: cannot start the certificate watcher: {e}"))?;
        }
        Ok(Self { addr: tls.listen.clone(), certs, edge: Arc::new(edge) })
    }
}

/// The h2 codec's settings for the proxy.
pub fn h2_options(h2: &Http2Config) -> H2Options {
    let mut o = default_h2_options();
    o.max_concurrent_streams(h2.max_concurrent_streams)
        .max_header_list_size(h2.max_header_list_size)
        .max_send_buffer_size(H2_SEND_BUFFER)
        .initial_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW);
    o
}

/// Pingora's server options: an idle HTTP/2 connection closes after the keep-alive timeout.
pub fn server_options(cfg: &Config) -> HttpServerOptions {
    let mut o = HttpServerOptions::default();
    let idle = cfg.limits.keepalive_timeout_secs;
    o.h2_idle_timeout = (idle > 0).then(|| Duration::from_secs(idle));
    o
}
