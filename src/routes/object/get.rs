//! `GET`/`HEAD {path}/{key}`: an object of the local store, with ETag, `If-None-Match` and
//! single byte ranges. Headers first, then the body streamed from the file in chunks:
//! objects are never read whole.

use bytes::Bytes;
use http::header;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::content_type::{is_media_type, served_type};
use crate::http_io::reply::X_AMZ_REQUEST_ID;
use crate::http_io::{header_bytes, Reply};
use crate::request_id::RequestId;
use crate::s3_error::S3Error;
use crate::store::{LocalStore, ObjectMeta};

use super::super::context::RouteContext;
use super::conditional::{etag_matches, parse_range, RangeSpec};
use super::internal;

/// Bytes read from the file per body chunk.
const CHUNK: usize = 64 * 1024;

/// The reply to send, or `None` once the object was streamed.
pub(super) async fn serve_object(
    ctx: &RouteContext,
    store: &LocalStore,
    session: &mut Session,
    key: &str,
    rid: RequestId,
) -> Result<Option<Reply>, S3Error> {
    // The file and its metadata as one pair: a concurrent overwrite cannot mix them.
    let (meta, file) = store.open_object(key).await.ok_or(S3Error::NO_SUCH_KEY)?;
    if header_bytes(session, http::header::IF_NONE_MATCH).is_some_and(|v| etag_matches(v, &meta.etag)) {
        return Ok(Some(Reply::empty(304).header_str(header::ETAG, &meta.etag)));
    }
    let range = header_bytes(session, http::header::RANGE).and_then(|v| std::str::from_utf8(v).ok());
    let (status, start, end) = match parse_range(range, meta.size) {
        RangeSpec::Full => (200, 0, meta.size.saturating_sub(1)),
        RangeSpec::Partial(s, e) => (206, s, e),
        RangeSpec::Unsatisfiable => {
            let reply = Reply::s3(&S3Error::INVALID_RANGE, session.req_header().uri.path(), rid);
            return Ok(Some(reply.header_str(header::CONTENT_RANGE, &format!("bytes */{}", meta.size))));
        }
    };
    let count = if meta.size == 0 { 0 } else { end - start + 1 };
    let mut h = object_header(status, &meta, count, rid).map_err(|e| internal(rid, key, e))?;
    if status == 206 {
        h.insert_header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{}", meta.size))
            .map_err(|e| internal(rid, key, e))?;
    }
    let origin = ctx.cors.allowed(header_bytes(session, http::header::ORIGIN));
    ctx.cors.decorate(&mut h, origin).map_err(|e| internal(rid, key, e))?;
    stream_file(session, h, file, start, count).await;
    Ok(None)
}

/// The response header of an object.
fn object_header(
    status: u16,
    meta: &ObjectMeta,
    count: u64,
    rid: RequestId,
) -> pingora::Result<ResponseHeader> {
    let mut h = ResponseHeader::build_no_case(status, Some(10))?;
    let content_type = served_type(&meta.content_type);
    h.insert_header(header::CONTENT_TYPE, content_type)?;
    h.insert_header(header::CONTENT_LENGTH, count.to_string())?;
    h.insert_header(header::ETAG, meta.etag.as_str())?;
    h.insert_header(header::ACCEPT_RANGES, "bytes")?;
    h.insert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")?;
    if !is_media_type(content_type) {
        // Not a media type: never rendered from our origin.
        h.insert_header(header::CONTENT_DISPOSITION, "attachment")?;
        h.insert_header(header::CONTENT_SECURITY_POLICY, "sandbox")?;
    }
    h.insert_header(X_AMZ_REQUEST_ID, rid.as_str())?;
    Ok(h)
}

/// Write `h`, then `count` bytes of `file` from `start` (nothing for HEAD). A failure past
/// the header ends the response abruptly ([`abandon`]): the client sees a short body, never
/// a wrong one.
async fn stream_file(
    session: &mut Session,
    h: ResponseHeader,
    mut file: tokio::fs::File,
    start: u64,
    count: u64,
) {
    let head = session.req_header().method == http::Method::HEAD;
    if session.write_response_header(Box::new(h), head || count == 0).await.is_err() || head || count == 0 {
        return;
    }
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        abandon(session).await;
        return;
    }
    let mut left = count;
    while left > 0 {
        let mut buf = vec![0u8; CHUNK.min(left as usize)];
        let n = match file.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // The file shrank under us.
                abandon(session).await;
                return;
            }
            Ok(n) => n,
        };
        buf.truncate(n);
        left -= n as u64;
        if session.write_response_body(Some(Bytes::from(buf)), left == 0).await.is_err() {
            // E.g. an HTTP/2 client that kept its window shut past `send_stall_timeout_secs`.
            abandon(session).await;
            return;
        }
    }
}

/// End a response whose body cannot be finished so that the client cannot take it for whole:
/// HTTP/1.1 closes the connection after it (its `Content-Length` is then short); HTTP/2
/// resets the stream, where the end of the route would otherwise send `END_STREAM`.
async fn abandon(session: &mut Session) {
    session.set_keepalive(None);
    if session.as_downstream().is_http2() {
        session.as_downstream_mut().shutdown().await;
    }
}
