//! The gateway acting as a store: verified uploads in, objects out.
//!
//! - `PUT {path}/{key}?X-Amz-...`: a presigned PUT (local store), streamed to a spool, then
//!   renamed into place. The size must equal the Content-Length, which the URL signed.
//! - `POST {path}/{key}?X-Amz-...`: memories' multipart upload; the `file` part is spooled
//!   and committed to the local store or relayed to S3.
//! - `GET`/`HEAD {path}/{key}`: the object (local store), with ETag and single byte ranges.
//!
//! Errors use S3's XML error body, as a storage client expects.

use bytes::Bytes;
use pingora::proxy::Session;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::http_io::{declared_length, header_bytes, send, Reply};
use crate::sigv4::{verify_presigned, PresignedRequest};
use crate::store::{key_is_safe, Backend, SpoolError};
use crate::upload_routes::{RequestInfo, UploadRoutes};
use crate::url_path::decode_path;

/// S3's XML error body.
pub fn s3_error_xml(code: &str, message: &str, resource: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
        xml_escape(code),
        xml_escape(message),
        xml_escape(resource),
        xml_escape(request_id)
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn s3_error(status: u16, code: &str, message: &str, resource: &str, request_id: &str) -> Reply {
    Reply::xml(status, s3_error_xml(code, message, resource, request_id))
}

pub async fn handle(
    routes: &UploadRoutes,
    session: &mut Session,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    let request_id = info.assign_request_id();
    match respond(routes, session, &request_id).await {
        Some(reply) => {
            send(session, reply.header("x-amz-request-id", request_id), &routes.cors, origin).await
        }
        None => Ok(()),
    }
}

/// The reply to send, or None when the response was already streamed.
async fn respond(routes: &UploadRoutes, session: &mut Session, rid: &str) -> Option<Reply> {
    let path = session.req_header().uri.path().to_string();
    let Some(key) = path
        .strip_prefix(routes.routes.object_path.as_str())
        .and_then(|r| r.strip_prefix('/'))
        .and_then(decode_path)
        .filter(|k| key_is_safe(k))
    else {
        return Some(s3_error(400, "InvalidArgument", "Invalid object key", &path, rid));
    };
    let method = session.req_header().method.clone();
    let local = matches!(routes.storage.backend, Backend::Local(_));
    match method.as_str() {
        "PUT" if local => Some(put_object(routes, session, &path, &key, rid).await),
        "POST" => Some(post_multipart(routes, session, &path, &key, rid).await),
        "GET" | "HEAD" if local => serve_object(routes, session, &path, &key, rid).await,
        _ => Some(s3_error(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            &path,
            rid,
        )),
    }
}

/// Verify the presigned URL for `method`; an S3 error reply on failure.
fn verify(
    routes: &UploadRoutes,
    session: &Session,
    method: &str,
    path: &str,
    rid: &str,
) -> Result<(), Reply> {
    let req = session.req_header();
    let raw_query = req.uri.query().unwrap_or("");
    if !raw_query.contains("X-Amz-Signature") && !raw_query.contains("X-Amz-Credential") {
        return Err(s3_error(403, "AccessDenied", "Access Denied", path, rid));
    }
    let pre = PresignedRequest { method, raw_path: req.uri.path(), raw_query, headers: &req.headers };
    verify_presigned(&routes.storage.gateway_signer, &pre, OffsetDateTime::now_utc())
        .map(|_| ())
        .map_err(|e| Reply::xml(e.status(), e.to_xml(path, rid)))
}

async fn put_object(routes: &UploadRoutes, session: &mut Session, path: &str, key: &str, rid: &str) -> Reply {
    if let Err(r) = verify(routes, session, "PUT", path, rid) {
        return r;
    }
    let Backend::Local(store) = &routes.storage.backend else {
        return s3_error(405, "MethodNotAllowed", "Uploads go to the bucket directly", path, rid);
    };
    let Some(len) = declared_length(session) else {
        return s3_error(
            411,
            "MissingContentLength",
            "You must provide the Content-Length HTTP header.",
            path,
            rid,
        );
    };
    if len > store.max_upload_bytes {
        return too_large(path, rid);
    }
    let content_type = header_bytes(session, "content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| crate::mint::is_acceptable_content_type(v))
        .unwrap_or("application/octet-stream")
        .to_string();
    crate::http_io::continue_if_expected(session).await;
    let mut spool = match store.spool(len).await {
        Ok(s) => s,
        Err(e) => return internal(path, rid, &format!("spool: {e:?}")),
    };
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => match spool.write(&chunk).await {
                Ok(()) => {}
                Err(SpoolError::TooLarge) => {
                    return s3_error(
                        400,
                        "IncompleteBody",
                        "The body is larger than the Content-Length",
                        path,
                        rid,
                    )
                }
                Err(SpoolError::Io(e)) => return internal(path, rid, &format!("write: {e}")),
            },
            Ok(None) => break,
            // Client went away mid-body: the spool's Drop removes the temp file.
            Err(_) => return s3_error(400, "IncompleteBody", "The request body was cut off", path, rid),
        }
    }
    if spool.len() != len {
        return s3_error(
            400,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header",
            path,
            rid,
        );
    }
    let done = match spool.finish().await {
        Ok(d) => d,
        Err(e) => return internal(path, rid, &format!("fsync: {e:?}")),
    };
    match store.commit(done, key, &content_type).await {
        Ok(meta) => {
            routes.metrics.stored_bytes.with_label_values(&["put"]).inc_by(meta.size);
            Reply::empty(200).header("etag", meta.etag)
        }
        Err(e) => internal(path, rid, &format!("commit: {e}")),
    }
}

fn too_large(path: &str, rid: &str) -> Reply {
    s3_error(413, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", path, rid)
}

fn internal(path: &str, rid: &str, detail: &str) -> Reply {
    log::error!("{rid} store {path}: {detail}");
    s3_error(500, "InternalError", "We encountered an internal error. Please try again.", path, rid)
}

async fn post_multipart(
    routes: &UploadRoutes,
    session: &mut Session,
    path: &str,
    key: &str,
    rid: &str,
) -> Reply {
    if let Err(r) = verify(routes, session, "POST", path, rid) {
        return r;
    }
    let boundary = header_bytes(session, "content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|ct| multer::parse_boundary(ct).ok());
    let Some(boundary) = boundary else {
        return s3_error(
            400,
            "InvalidArgument",
            "POST requires multipart/form-data with a file field",
            path,
            rid,
        );
    };
    let content_type = key
        .rsplit_once('.')
        .and_then(|(_, e)| crate::object_key::content_type_for(e))
        .unwrap_or("application/octet-stream");
    let limit = routes.storage.max_upload_bytes;
    let spool = match routes.storage.spool(limit).await {
        Ok(s) => s,
        Err(e) => return internal(path, rid, &format!("spool: {e:?}")),
    };
    crate::http_io::continue_if_expected(session).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    // Multipart overhead beyond the file itself is bounded too.
    let body_cap = limit + 64 * 1024;
    let pump = async {
        let mut total = 0u64;
        loop {
            match session.read_request_body().await {
                Ok(Some(b)) => {
                    total += b.len() as u64;
                    let item =
                        if total > body_cap { Err(std::io::Error::other("body too large")) } else { Ok(b) };
                    let stop = item.is_err();
                    if tx.send(item).await.is_err() || stop {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    break;
                }
            }
        }
        drop(tx);
    };
    let consume = async move {
        let stream =
            futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
        let mut mp = multer::Multipart::new(stream, boundary);
        let mut spool = Some(spool);
        let mut stored = None;
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(MultipartFail::Body(e.to_string())),
            };
            let is_file = field.name() == Some("file");
            let mut field = field;
            match (is_file, spool.take()) {
                (true, Some(mut s)) => {
                    while let Some(chunk) =
                        field.chunk().await.map_err(|e| MultipartFail::Body(e.to_string()))?
                    {
                        s.write(&chunk).await.map_err(|e| match e {
                            SpoolError::TooLarge => MultipartFail::TooLarge,
                            SpoolError::Io(e) => MultipartFail::Io(e.to_string()),
                        })?;
                    }
                    stored = Some(s);
                }
                (_, s) => {
                    spool = s;
                    while field.chunk().await.map_err(|e| MultipartFail::Body(e.to_string()))?.is_some() {}
                }
            }
        }
        stored.ok_or(MultipartFail::NoFile)
    };
    let ((), result) = tokio::join!(pump, consume);
    let spool = match result {
        Ok(s) => s,
        Err(MultipartFail::NoFile) => {
            return s3_error(400, "InvalidArgument", "POST requires a form field named file", path, rid)
        }
        Err(MultipartFail::TooLarge) => return too_large(path, rid),
        Err(MultipartFail::Body(m)) => {
            return s3_error(
                400,
                "MalformedPOSTRequest",
                &format!("The body of your POST request is not well-formed multipart/form-data: {m}"),
                path,
                rid,
            )
        }
        Err(MultipartFail::Io(m)) => return internal(path, rid, &m),
    };
    if spool.is_empty() {
        return s3_error(400, "InvalidArgument", "The file field is empty", path, rid);
    }
    let done = match spool.finish().await {
        Ok(d) => d,
        Err(e) => return internal(path, rid, &format!("fsync: {e:?}")),
    };
    let size = done.len;
    match routes.storage.commit(done, key, content_type).await {
        Ok(()) => {
            routes.metrics.stored_bytes.with_label_values(&["multipart"]).inc_by(size);
            Reply::empty(204)
        }
        Err(e) => internal(path, rid, &e),
    }
}

enum MultipartFail {
    NoFile,
    TooLarge,
    Body(String),
    Io(String),
}

/// `If-None-Match`: `*`, or a comma-separated list of (possibly weak) ETags.
pub fn etag_matches(header: &[u8], etag: &str) -> bool {
    let Ok(h) = std::str::from_utf8(header) else { return false };
    h.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// A parsed single `Range: bytes=` header against an object of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// Parse one byte range; several ranges or bad syntax fall back to the full object (RFC 9110 allows ignoring Range).
pub fn parse_range(header: Option<&str>, len: u64) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        match b.parse::<u64>() {
            Ok(0) => return RangeSpec::Unsatisfiable,
            Ok(n) => (len.saturating_sub(n), len.saturating_sub(1)),
            Err(_) => return RangeSpec::Full,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeSpec::Full;
        };
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.min(len.saturating_sub(1)),
                _ => return RangeSpec::Full,
            }
        };
        (start, end)
    };
    if len == 0 || range.0 >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Partial(range.0, range.1)
}

async fn serve_object(
    routes: &UploadRoutes,
    session: &mut Session,
    path: &str,
    key: &str,
    rid: &str,
) -> Option<Reply> {
    let Backend::Local(store) = &routes.storage.backend else {
        return Some(s3_error(404, "NoSuchKey", "The specified key does not exist.", path, rid));
    };
    let Some(meta) = store.meta(key).await else {
        return Some(s3_error(404, "NoSuchKey", "The specified key does not exist.", path, rid));
    };
    if header_bytes(session, "if-none-match").is_some_and(|v| etag_matches(v, &meta.etag)) {
        return Some(Reply::empty(304).header("etag", meta.etag));
    }
    let range =
        parse_range(header_bytes(session, "range").and_then(|v| std::str::from_utf8(v).ok()), meta.size);
    let (status, start, end) = match range {
        RangeSpec::Full => (200, 0, meta.size.saturating_sub(1)),
        RangeSpec::Partial(s, e) => (206, s, e),
        RangeSpec::Unsatisfiable => {
            return Some(
                s3_error(416, "InvalidRange", "The requested range is not satisfiable", path, rid)
                    .header("content-range", format!("bytes */{}", meta.size)),
            );
        }
    };
    let count = if meta.size == 0 { 0 } else { end - start + 1 };
    // Headers first, then the body streamed in chunks: objects are never read whole.
    let mut h = match pingora::http::ResponseHeader::build(status, Some(8)) {
        Ok(h) => h,
        Err(_) => return Some(internal(path, rid, "header")),
    };
    let _ = h.insert_header("content-type", meta.content_type.as_str());
    let _ = h.insert_header("content-length", count.to_string());
    let _ = h.insert_header("etag", meta.etag.as_str());
    let _ = h.insert_header("accept-ranges", "bytes");
    let _ = h.insert_header("x-content-type-options", "nosniff");
    if !crate::mint::is_inline_safe(&meta.content_type) {
        // Not a media type: never rendered from our origin.
        let _ = h.insert_header("content-disposition", "attachment");
        let _ = h.insert_header("content-security-policy", "sandbox");
    }
    let _ = h.insert_header("x-amz-request-id", rid);
    if status == 206 {
        let _ = h.insert_header("content-range", format!("bytes {start}-{end}/{}", meta.size));
    }
    StreamReply::respond(routes, session, h, store.object_path(key), start, count).await
}

/// A reply whose body is streamed from a file after the headers.
struct StreamReply;

impl StreamReply {
    async fn respond(
        routes: &UploadRoutes,
        session: &mut Session,
        mut h: pingora::http::ResponseHeader,
        file: Option<std::path::PathBuf>,
        start: u64,
        count: u64,
    ) -> Option<Reply> {
        let origin = routes.cors.allowed(header_bytes(session, "origin")).map(str::to_owned);
        routes.cors.decorate(&mut h, origin.as_deref());
        let head = session.req_header().method == http::Method::HEAD;
        let opened = match file {
            Some(p) => tokio::fs::File::open(p).await.ok(),
            None => None,
        };
        let Some(mut f) = opened else {
            return Some(Reply::empty(404));
        };
        if session.write_response_header(Box::new(h), head || count == 0).await.is_err() {
            return None;
        }
        if head || count == 0 {
            return None;
        }
        if f.seek(std::io::SeekFrom::Start(start)).await.is_err() {
            session.set_keepalive(None);
            return None;
        }
        let mut left = count;
        while left > 0 {
            let mut buf = vec![0u8; (64 * 1024).min(left as usize)];
            let n = match f.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    // The file shrank under us; the client sees a short body and a closed connection.
                    session.set_keepalive(None);
                    return None;
                }
                Ok(n) => n,
            };
            buf.truncate(n);
            left -= n as u64;
            if session.write_response_body(Some(Bytes::from(buf)), left == 0).await.is_err() {
                return None;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), RangeSpec::Partial(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeSpec::Partial(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeSpec::Partial(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeSpec::Partial(0, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), RangeSpec::Partial(8, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeSpec::Full);
    }

    #[test]
    fn if_none_match_lists() {
        let e = "\"abc\"";
        for yes in ["\"abc\"", "*", "W/\"abc\"", "\"x\", \"abc\"", " \"abc\" "] {
            assert!(etag_matches(yes.as_bytes(), e), "{yes}");
        }
        for no in ["\"abd\"", "abc", "", "\"x\""] {
            assert!(!etag_matches(no.as_bytes(), e), "{no}");
        }
    }

    #[test]
    fn xml_is_escaped() {
        let x = s3_error_xml("A", "<b>&", "/k", "r");
        assert!(x.contains("<Message>&lt;b&gt;&amp;</Message>"));
    }
}
