//! `tls:` (the binary's part): a TLS listener beside the plain one, its certificate, and the
//! HTTP/2 it negotiates by ALPN with the limits that keep an abusive h2 client cheap to
//! refuse. The reasons for each default are in README.md, "Running it on the internet".

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `tls:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the TLS listener, e.g. `0.0.0.0:443`.
    pub listen: String,
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub key_file: PathBuf,
    /// Seconds between checks of the two files for a change (a renewed certificate is then
    /// loaded without a restart); 0: only on SIGHUP.
    #[serde(default = "default_reload_check_secs")]
    pub reload_check_secs: u64,
    /// HTTP/2 by ALPN, and its limits.
    #[serde(default)]
    pub http2: Http2Config,
}

fn default_reload_check_secs() -> u64 {
    5
}

/// `tls.http2:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Config {
    /// Offer `h2` by ALPN; false: HTTP/1.1 only.
    pub enabled: bool,
    /// Streams a client may have open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Decoded size of one request's header list (HPACK bombs end here).
    pub max_header_list_size: u32,
    /// Frames one header block may span (a CONTINUATION flood ends here).
    pub max_header_frames: u32,
    /// Streams a client may reset per second on one connection, after a burst of as many
    /// (rapid reset, CVE-2023-44487, ends here).
    pub max_resets_per_sec: u32,
    /// PING, SETTINGS and PRIORITY frames a client may send per second on one connection,
    /// after a burst of as many. (A WINDOW_UPDATE of zero needs no rate: the h2 codec ends
    /// the connection at the first.)
    pub max_control_frames_per_sec: u32,
    /// Seconds a response may wait for the client to open its flow-control window (a window
    /// kept at zero ends here).
    pub send_stall_timeout_secs: u64,
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            enabled: true,
            max_concurrent_streams: 100,
            max_header_list_size: 64 * 1024,
            max_header_frames: 16,
            max_resets_per_sec: 100,
            max_control_frames_per_sec: 200,
            send_stall_timeout_secs: 30,
        }
    }
}

impl TlsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        super::validate::parse_socket_addr("tls.listen", &self.listen)?;
        for (field, path) in [("tls.cert_file", &self.cert_file), ("tls.key_file", &self.key_file)] {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::new(field, "must name a PEM file"));
            }
        }
        if self.reload_check_secs > 86_400 {
            return Err(ConfigError::new("tls.reload_check_secs", "must be at most 86400 (a day)"));
        }
        self.http2.validate()
    }
}

impl Http2Config {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("tls.http2.max_concurrent_streams", u64::from(self.max_concurrent_streams)),
            ("tls.http2.max_header_list_size", u64::from(self.max_header_list_size)),
            ("tls.http2.max_header_frames", u64::from(self.max_header_frames)),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(ConfigError::new(field, "must be at least 1"));
            }
        }
        if self.max_header_list_size < 4096 {
            return Err(ConfigError::new(
                "tls.http2.max_header_list_size",
                "must be at least 4096 (RFC 9113 lets a client assume 4 KiB of headers fit)",
            ));
        }
        if self.send_stall_timeout_secs > 86_400 {
            return Err(ConfigError::new(
                "tls.http2.send_stall_timeout_secs",
                "must be at most 86400 (a day)",
            ));
        }
        Ok(())
    }
}
