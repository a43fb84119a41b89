//! TLS to the origins (`origin_tls:`): the name and the trusted CAs every peer of the pool
//! carries, pass-through and health checks alike.
//!
//! The CA file is parsed once, at startup, into Pingora's per-peer CA type; each peer then
//! holds a clone of one `Arc`. Pingora's rustls connector verifies the chain and the name
//! (`verify_cert`, `verify_hostname`, both kept on) against those CAs, or against the system
//! roots without a file. The name is never empty: Pingora skips verification for a peer
//! without one.

use std::sync::Arc;

use pingora::listeners::ALPN;
use pingora::protocols::tls::CaType;
use pingora::upstreams::peer::PeerOptions;
use pingora::utils::tls::WrappedX509;

use crate::config::{ConfigError, OriginTlsConfig};

/// How every origin is reached over TLS.
pub(super) struct OriginTls {
    /// Sent as SNI (unless an IP address) and verified against the certificate.
    pub sni: String,
    /// `ca_file`'s certificates; `None`: the system roots Pingora loaded.
    ca: Option<Arc<CaType>>,
}

impl OriginTls {
    /// `None` when TLS is off.
    pub fn from_config(cfg: &OriginTlsConfig) -> Result<Option<Self>, ConfigError> {
        let Some(sni) = cfg.server_name() else { return Ok(None) };
        let ca = match cfg.load_ca()? {
            None => None,
            Some(certs) => {
                let wrapped = certs
                    .into_iter()
                    .map(|der| {
                        WrappedX509::try_new(der.to_vec(), |raw| {
                            x509_parser::parse_x509_certificate(raw).map(|(_, cert)| cert)
                        })
                        .map_err(|e| ConfigError::new("origin_tls.ca_file", e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Arc::from(wrapped))
            }
        };
        Ok(Some(Self { sni: sni.to_string(), ca }))
    }

    /// Set a peer's TLS options: this CA, full verification, HTTP/1.1 by ALPN.
    pub fn apply(&self, options: &mut PeerOptions) {
        options.ca = self.ca.clone();
        options.verify_cert = true;
        options.verify_hostname = true;
        options.alpn = ALPN::H1;
    }
}
