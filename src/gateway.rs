//! [`Gateway`]: the binary's proxy. Upload routes first, everything else to the origin.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use crate::config::{Config, ConfigError};
use crate::upload_routes::UploadRoutes;

pub struct Gateway {
    uploads: UploadRoutes,
    origins: Vec<HttpPeer>,
    next: AtomicUsize,
}

impl Gateway {
    pub fn from_config(cfg: &Config) -> Result<Self, ConfigError> {
        let origins = cfg.origin.iter().map(|o| HttpPeer::new(o.as_str(), false, String::new())).collect();
        Ok(Self { uploads: UploadRoutes::from_config(cfg)?, origins, next: AtomicUsize::new(0) })
    }

    pub fn uploads(&self) -> &UploadRoutes {
        &self.uploads
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    /// In this phase the upload routes answer; by default the request moves on to the origin.
    async fn request_filter(&self, session: &mut Session, _ctx: &mut Self::CTX) -> Result<bool> {
        self.uploads.handle(session).await
    }

    /// Round-robin over the configured origins.
    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut Self::CTX) -> Result<Box<HttpPeer>> {
        if self.origins.is_empty() {
            return Error::e_explain(ErrorType::ConnectNoRoute, "no origin configured");
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.origins.len();
        Ok(Box::new(self.origins[i].clone()))
    }

    /// Origin unreachable: 502; too slow: 504; both with a short JSON body.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, _ctx: &mut Self::CTX) -> FailToProxy {
        let (code, body): (u16, &'static [u8]) = match e.etype() {
            ErrorType::HTTPStatus(c) => (*c, b"{\"error\":\"bad_request\"}"),
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &pingora::ErrorSource::Upstream =>
            {
                (504, b"{\"error\":\"gateway_timeout\"}")
            }
            _ => match e.esource() {
                pingora::ErrorSource::Upstream => (502, b"{\"error\":\"bad_gateway\"}"),
                pingora::ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => (0, b""),
                    _ => (400, b"{\"error\":\"bad_request\"}"),
                },
                _ => (500, b"{\"error\":\"internal_error\"}"),
            },
        };
        if code > 0 {
            log::warn!("proxy error {code}: {e}");
            if let Ok(mut h) = ResponseHeader::build(code, Some(3)) {
                let _ = h.insert_header("content-type", "application/json");
                let _ = h.insert_header("content-length", body.len().to_string());
                let _ = h.insert_header("connection", "close");
                session.set_keepalive(None);
                if session.write_response_header(Box::new(h), false).await.is_ok() {
                    let _ = session.write_response_body(Some(Bytes::from_static(body)), true).await;
                }
            }
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }
}
