//! Writing the gateway's own answers.
//!
//! Every early answer goes through [`send`], which decides keep-alive: if the request body
//! was not fully read, the connection is closed after the answer instead of being reused,
//! so leftover body bytes can never be parsed as the next request.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::request_id::RequestId;

/// The header our JSON routes carry their request id in.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The header the S3-style object routes carry their request id in.
pub const X_AMZ_REQUEST_ID: HeaderName = HeaderName::from_static("x-amz-request-id");

/// A complete answer.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Reply {
    fn with_body(status: u16, content_type: &'static str, body: Bytes) -> Self {
        Self { status, content_type, body, headers: Vec::with_capacity(2) }
    }

    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
        Self::with_body(status, "application/json", Bytes::from(body))
    }

    /// An already-serialised JSON body.
    pub fn json_text(status: u16, body: String) -> Self {
        Self::with_body(status, "application/json", Bytes::from(body))
    }

    pub fn xml(status: u16, body: String) -> Self {
        Self::with_body(status, "application/xml", Bytes::from(body))
    }

    /// An S3 error as S3 answers it, about `resource`.
    pub fn s3(e: &crate::s3_error::S3Error, resource: &str, request_id: RequestId) -> Self {
        Self::xml(e.status, e.to_xml(resource, request_id.as_str()))
    }

    pub fn empty(status: u16) -> Self {
        Self::with_body(status, "", Bytes::new())
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A header whose value comes from data (a stored ETag): one that is not a valid header
    /// value is left out rather than failing the answer.
    pub fn header_str(self, name: HeaderName, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(v) => self.header(name, v),
            Err(_) => {
                log::warn!("{name} value {value:?} is not a valid header value; left out");
                self
            }
        }
    }

    /// The request id under `name`.
    pub fn request_id(self, name: HeaderName, id: RequestId) -> Self {
        self.header_str(name, id.as_str())
    }
}

/// Build the response header for a reply. No case map is kept for answers we build
/// ourselves, so Pingora writes well-known names title-cased (`Content-Type`) and others as
/// given (lowercase); header names are case-insensitive.
pub fn response_header(reply: &Reply) -> pingora::Result<ResponseHeader> {
    let mut h = ResponseHeader::build_no_case(reply.status, Some(4 + reply.headers.len()))?;
    if !reply.content_type.is_empty() {
        h.insert_header(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type))?;
    }
    // 204 and 304 carry no body and, per RFC 9110, no Content-Length of their own.
    if !matches!(reply.status, 204 | 304) {
        h.insert_header(header::CONTENT_LENGTH, HeaderValue::from(reply.body.len()))?;
    }
    for (n, v) in &reply.headers {
        h.append_header(n.clone(), v.clone())?;
    }
    Ok(h)
}

/// Send a reply; `cors_origin` adds CORS headers for an allowed origin.
pub async fn send(
    session: &mut Session,
    mut reply: Reply,
    cors: &crate::http_io::cors::Cors,
    cors_origin: Option<&str>,
) -> pingora::Result<()> {
    super::body::finish_unread_body(session).await;
    let mut h = response_header(&reply)?;
    cors.decorate(&mut h, cors_origin)?;
    let body = std::mem::take(&mut reply.body);
    let head_only = session.req_header().method == http::Method::HEAD;
    if body.is_empty() || head_only {
        session.write_response_header(Box::new(h), true).await
    } else {
        session.write_response_header(Box::new(h), false).await?;
        session.write_response_body(Some(body), true).await
    }
}
