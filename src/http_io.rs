//! Writing the gateway's own answers and reading capped request bodies.
//!
//! Every early answer goes through [`send`], which decides keep-alive: if the request body
//! was not fully read, the connection is closed after the answer instead of being reused,
//! so leftover body bytes can never be parsed as the next request.

use bytes::{Bytes, BytesMut};
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
    cors: &crate::cors::Cors,
    cors_origin: Option<&str>,
) -> pingora::Result<()> {
    finish_unread_body(session).await;
    let mut h = response_header(&reply)?;
    cors.decorate(&mut h, cors_origin);
    let body = std::mem::take(&mut reply.body);
    let head_only = session.req_header().method == http::Method::HEAD;
    if body.is_empty() || head_only {
        session.write_response_header(Box::new(h), true).await
    } else {
        session.write_response_header(Box::new(h), false).await?;
        session.write_response_body(Some(body), true).await
    }
}

/// Bytes of an unread request body we are willing to discard to keep the connection.
const DRAIN_LIMIT: usize = 1 << 20;
/// Time we are willing to spend discarding it.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Before an early answer: discard a small unread body (like nginx's lingering close) so the
/// client sees the answer instead of a reset and the connection stays usable; past the byte
/// or time budget, close the connection after the answer instead. Either way leftover body
/// bytes are never parsed as the next request.
pub async fn finish_unread_body(session: &mut Session) {
    if session.is_body_done() {
        return;
    }
    // A client waiting for 100 Continue sends no body: draining would only stall the answer.
    if header_bytes(session, "expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue")) {
        session.set_keepalive(None);
        return;
    }
    let drained = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0usize;
        loop {
            match session.read_request_body().await {
                Ok(Some(b)) => {
                    seen += b.len();
                    if seen > DRAIN_LIMIT {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    if !drained || !session.is_body_done() {
        session.set_keepalive(None);
    }
}

/// Answer `Expect: 100-continue` once the request is known to be acceptable, so the client
/// sends the body now (curl waits a second otherwise). Refusals are sent before it instead.
pub async fn continue_if_expected(session: &mut Session) {
    let expects = header_bytes(session, "expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
    if expects {
        if let Ok(h) = pingora::http::ResponseHeader::build(100, Some(0)) {
            let _ = session.write_response_header(Box::new(h), false).await;
        }
    }
}

/// Why a capped body read failed.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Read,
}

/// Read the whole request body, refusing past `cap` bytes (declared or streamed).
pub async fn read_body_capped(session: &mut Session, cap: usize) -> Result<Bytes, BodyError> {
    if let Some(len) = declared_length(session) {
        if len > cap as u64 {
            return Err(BodyError::TooLarge);
        }
    }
    let mut buf = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > cap {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(_) => return Err(BodyError::Read),
        }
    }
}

/// The request's Content-Length, if present and well-formed.
pub fn declared_length(session: &Session) -> Option<u64> {
    session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A request header as bytes.
pub fn header_bytes<'a>(session: &'a Session, name: &str) -> Option<&'a [u8]> {
    session.req_header().headers.get(name).map(|v| v.as_bytes())
}
