//! Writing the gateway's own answers.
//!
//! Every early answer goes through [`send`], which decides keep-alive: if the request body
//! was not fully read, the connection is closed after the answer instead of being reused,
//! so leftover body bytes can never be parsed as the next request.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// A complete answer.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
        Self { status, content_type: "application/json", body: Bytes::from(body), headers: Vec::new() }
    }

    /// An already-serialised JSON body.
    pub fn json_text(status: u16, body: String) -> Self {
        Self { status, content_type: "application/json", body: Bytes::from(body), headers: Vec::new() }
    }

    pub fn xml(status: u16, body: String) -> Self {
        Self { status, content_type: "application/xml", body: Bytes::from(body), headers: Vec::new() }
    }

    /// An S3 error as S3 answers it, about `resource`.
    pub fn s3(e: &crate::s3_error::S3Error, resource: &str, request_id: &str) -> Self {
        Self::xml(e.status, e.to_xml(resource, request_id))
    }

    pub fn empty(status: u16) -> Self {
        Self { status, content_type: "", body: Bytes::new(), headers: Vec::new() }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Build the response header for a reply.
pub fn response_header(reply: &Reply) -> pingora::Result<ResponseHeader> {
    let mut h = ResponseHeader::build(reply.status, Some(4 + reply.headers.len()))?;
    if !reply.content_type.is_empty() {
        h.insert_header("content-type", reply.content_type)?;
    }
    // 204 and 304 carry no body and, per RFC 9110, no Content-Length of their own.
    if !matches!(reply.status, 204 | 304) {
        h.insert_header("content-length", reply.body.len().to_string())?;
    }
    for (n, v) in &reply.headers {
        h.append_header(*n, v.as_str())?;
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
