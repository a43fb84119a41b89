//! What the client gets when pass-through fails: 502 for an unreachable origin (or one whose
//! TLS certificate does not verify), 504 for a slow one, each with a short JSON body; nothing
//! for a client that went away.

use bytes::Bytes;
use http::header;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

/// The answer to a failed proxy attempt: status (0: none, the client is gone), a metric
/// label, and the body.
pub(crate) struct Failure {
    pub status: u16,
    pub kind: &'static str,
    pub body: &'static [u8],
}

pub(crate) fn classify(e: &Error) -> Failure {
    let upstream = e.esource() == &ErrorSource::Upstream;
    let (status, kind, body): (u16, &'static str, &'static [u8]) = match e.etype() {
        ErrorType::HTTPStatus(c) => (*c, "status", b"{\"error\":\"bad_request\"}"),
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout if upstream => {
            (504, "timeout", b"{\"error\":\"gateway_timeout\"}")
        }
        ErrorType::ConnectNoRoute => (502, "no_healthy_origin", b"{\"error\":\"bad_gateway\"}"),
        ErrorType::TLSHandshakeFailure | ErrorType::InvalidCert | ErrorType::HandshakeError if upstream => {
            (502, "tls", b"{\"error\":\"bad_gateway\"}")
        }
        _ if upstream => (502, "unreachable", b"{\"error\":\"bad_gateway\"}"),
        ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => (0, "client", b""),
        _ if e.esource() == &ErrorSource::Downstream => (400, "client", b"{\"error\":\"bad_request\"}"),
        _ => (500, "internal", b"{\"error\":\"internal_error\"}"),
    };
    Failure { status, kind, body }
}

/// Write the failure's answer and close the connection after it. Nothing is written once a
/// response has begun (a route failing mid-body, an origin cut off mid-response): its header
/// cannot be replaced, and this body would be spliced onto that response's.
pub(crate) async fn answer(session: &mut Session, f: &Failure) -> pingora::Result<()> {
    session.set_keepalive(None);
    if session.response_written().is_some_and(|h| !h.status.is_informational()) {
        return Ok(());
    }
    let mut h = ResponseHeader::build(f.status, Some(3))?;
    h.insert_header(header::CONTENT_TYPE, "application/json")?;
    h.insert_header(header::CONTENT_LENGTH, f.body.len().to_string())?;
    h.insert_header(header::CONNECTION, "close")?;
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(Bytes::from_static(f.body)), true).await
}
