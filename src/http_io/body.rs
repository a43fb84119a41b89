//! Request bodies on the routes the gateway answers itself: read with a cap, drained before
//! an early answer, and `Expect: 100-continue` answered only when the request is acceptable.

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;

use super::headers::header_bytes;

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
    if header_bytes(session, http::header::EXPECT).is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue")) {
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
    let expects =
        header_bytes(session, http::header::EXPECT).is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
    if expects {
        if let Ok(h) = pingora::http::ResponseHeader::build(100, Some(0)) {
            if let Err(e) = session.write_response_header(Box::new(h), false).await {
                // The final answer's write will fail the same way and end the request.
                log::debug!("100 Continue not sent: {e}");
            }
        }
    }
}

/// Why a capped body read failed.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Read,
}

/// Read the whole request body, refusing past `cap` bytes (declared or streamed). A declared
/// size over the cap is refused before `100 Continue`, so such a client never sends its body.
pub async fn read_body_capped(session: &mut Session, cap: usize) -> Result<Bytes, BodyError> {
    if declared_length(session).is_some_and(|len| len > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    continue_if_expected(session).await;
    // A body that arrives in one chunk (every small JSON body) is kept as it came, uncopied.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                let seen = first.as_ref().map_or(0, Bytes::len) + buf.len();
                if seen + chunk.len() > cap {
                    return Err(BodyError::TooLarge);
                }
                match first.take() {
                    None if buf.is_empty() => first = Some(chunk),
                    earlier => {
                        if let Some(e) = earlier {
                            buf.extend_from_slice(&e);
                        }
                        buf.extend_from_slice(&chunk);
                    }
                }
            }
            Ok(None) => return Ok(first.unwrap_or_else(|| buf.freeze())),
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
