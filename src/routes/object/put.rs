//! `PUT {path}/{key}`: a presigned upload to the local store, streamed to a spool while
//! counted against the signed Content-Length, then committed by rename.
//!
//! `PUT {path}/{key}?partNumber=N&uploadId=U`: S3's UploadPart into a multipart upload of
//! the local store, verified and streamed the same way, stored as part N with its MD5 ETag.

use pingora::proxy::Session;

use crate::content_type::type_to_store;
use crate::dialect::Dialect;
use crate::events::{Committed, Source};
use crate::http_io::{declared_length, header_bytes, PaceError, Pacer, Reply};
use crate::request_id::RequestId;
use crate::s3_error::S3Error;
use crate::sigv4::percent_decode_str;
use crate::store::{
    LocalStore, MultipartError, PartSink, Spool, SpoolError, Spooled, DIALECT_PARAM, MAX_PART_NUMBER,
    MAX_PART_SIZE,
};

use super::super::context::RouteContext;
use super::form_stream::record_slow;
use super::{internal, verify_url};

pub(super) async fn put_object(
    ctx: &RouteContext,
    store: &LocalStore,
    session: &mut Session,
    key: &str,
    rid: RequestId,
) -> Result<Reply, S3Error> {
    verify_url(ctx, session, "PUT")?;
    if has_operation_params(session) {
        return Err(S3Error::UNEXPECTED_QUERY);
    }
    let len = declared_length(session).ok_or(S3Error::MISSING_CONTENT_LENGTH)?;
    if len > ctx.storage.max_upload_bytes {
        return Err(S3Error::ENTITY_TOO_LARGE);
    }
    let declared = header_bytes(session, http::header::CONTENT_TYPE)
        .map(|v| std::str::from_utf8(v).map_err(|_| S3Error::INVALID_CONTENT_TYPE))
        .transpose()?;
    let content_type = type_to_store(declared).ok_or(S3Error::INVALID_CONTENT_TYPE)?.to_string();
    let create_only = create_only(session)?;
    let checksum = checksum_sha256(session)?;
    // Refused before the body when the object is already there; checked again at commit.
    if create_only && store.meta(key).await.is_some() {
        return Err(S3Error::PRECONDITION_FAILED);
    }
    crate::http_io::continue_if_expected(session).await;
    let spool = Spool::create(&store.tmp_dir(), len).await.map_err(|e| internal(rid, key, e))?;
    let done = receive_body(ctx, session, spool, len, rid, key).await?;
    if let Some((want, _)) = &checksum {
        if done.sha256.as_ref() != Some(want) {
            return Err(S3Error::BAD_DIGEST);
        }
    }
    let meta = if create_only {
        store.commit_new(done, key, &content_type).await.map_err(|e| internal(rid, key, e))?
    } else {
        Some(store.commit(done, key, &content_type).await.map_err(|e| internal(rid, key, e))?)
    };
    let meta = meta.ok_or(S3Error::PRECONDITION_FAILED)?;
    ctx.metrics.stored_bytes.with_label_values(&["put"]).inc_by(meta.size);
    let committed = Committed {
        key,
        size: meta.size,
        content_type: &content_type,
        etag: &meta.etag,
        checksum_sha256: checksum.as_ref().map(|(_, sent)| sent.as_str()),
        dialect: url_dialect(session),
        source: Source::Put,
        request_id: rid.as_str(),
    };
    ctx.upload_completed(committed).await.map_err(|_| S3Error::INTERNAL)?;
    let reply = Reply::empty(200).header_str(http::header::ETAG, &meta.etag);
    Ok(match checksum {
        Some((_, sent)) => reply.header_str(X_AMZ_CHECKSUM_SHA256, &sent),
        None => reply,
    })
}

const X_AMZ_CHECKSUM_SHA256: http::HeaderName = http::HeaderName::from_static("x-amz-checksum-sha256");

/// `If-None-Match: *`: create the object only if it does not exist (S3 takes no other
/// value on a PUT).
fn create_only(session: &Session) -> Result<bool, S3Error> {
    match header_bytes(session, http::header::IF_NONE_MATCH) {
        None => Ok(false),
        Some(v) if v.trim_ascii() == b"*" => Ok(true),
        Some(_) => Err(S3Error::CONDITIONAL_NOT_IMPLEMENTED),
    }
}

/// `x-amz-checksum-sha256`: the 32 bytes it names, and the header as sent.
fn checksum_sha256(session: &Session) -> Result<Option<([u8; 32], String)>, S3Error> {
    let Some(v) = header_bytes(session, X_AMZ_CHECKSUM_SHA256) else { return Ok(None) };
    let text = std::str::from_utf8(v).map_err(|_| S3Error::INVALID_CHECKSUM)?.trim();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text)
        .map_err(|_| S3Error::INVALID_CHECKSUM)?;
    let sum: [u8; 32] = bytes.try_into().map_err(|_| S3Error::INVALID_CHECKSUM)?;
    Ok(Some((sum, text.to_owned())))
}

/// Whether the query makes this PUT an UploadPart (either parameter does: a PUT carrying
/// one of them is never a plain object upload).
pub(super) fn is_upload_part(session: &Session) -> bool {
    let query = session.req_header().uri.query().unwrap_or("");
    query_params(query).any(|(name, _)| name == "partNumber" || name == "uploadId")
}

/// Whether the query carries anything but the `X-Amz-*` authentication parameters and our
/// own dialect tag: a plain object PUT never does (a part URL with its names re-encoded must
/// not land here).
pub(super) fn has_operation_params(session: &Session) -> bool {
    let query = session.req_header().uri.query().unwrap_or("");
    query_params(query).any(|(name, _)| !name.starts_with("X-Amz-") && name != DIALECT_PARAM)
}

/// The dialect the (verified) URL names, when it is one of ours.
fn url_dialect(session: &Session) -> Option<&'static str> {
    let query = session.req_header().uri.query().unwrap_or("");
    let (_, value) = query_params(query).find(|(name, _)| name == DIALECT_PARAM)?;
    let value = percent_decode_str(value)?;
    Dialect::ALL.into_iter().map(Dialect::name).find(|n| *n == value)
}

pub(super) async fn put_part(
    ctx: &RouteContext,
    store: &LocalStore,
    session: &mut Session,
    key: &str,
    rid: RequestId,
) -> Result<Reply, S3Error> {
    // The signature covers the whole query, partNumber and uploadId included.
    verify_url(ctx, session, "PUT")?;
    let len = declared_length(session).ok_or(S3Error::MISSING_CONTENT_LENGTH)?;
    if len > MAX_PART_SIZE {
        return Err(S3Error::MULTIPART_TOO_LARGE);
    }
    let query = session.req_header().uri.query().unwrap_or("");
    let value = |wanted: &str| {
        query_params(query).find(|(name, _)| name == wanted).and_then(|(_, v)| percent_decode_str(v))
    };
    let part_number = value("partNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or(S3Error::INVALID_PART_NUMBER)?;
    let upload_id = value("uploadId").ok_or(S3Error::NO_SUCH_UPLOAD)?.into_owned();
    let refused = |e: MultipartError| match e {
        MultipartError::Store(e) => internal(rid, key, e),
        other => other.to_s3(),
    };
    // Before the body: an unknown upload is refused without receiving a byte.
    // Before the body: an unknown upload, or a part past the upload's size, is refused
    // without receiving a byte.
    let mut sink = store.open_part(key, &upload_id, part_number, len).await.map_err(refused)?;
    crate::http_io::continue_if_expected(session).await;
    receive_into(ctx, session, &mut sink, len, rid, key).await?;
    let part = store.finish_part(key, &upload_id, part_number, sink).await.map_err(refused)?;
    ctx.metrics.stored_bytes.with_label_values(&["part"]).inc_by(part.size);
    Ok(Reply::empty(200).header_str(http::header::ETAG, &part.etag))
}

/// The query's `name=value` pairs, names decoded (as the signature check decodes them, so
/// `upload%49d` is `uploadId` here too; a name that does not decode is kept as sent) and
/// values still encoded. A name without `=` has an empty value.
fn query_params(query: &str) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, &str)> {
    query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode_str(name).unwrap_or(std::borrow::Cow::Borrowed(name)), value)
    })
}

/// The request body into `spool`, exactly `len` bytes, fsynced. On any failure the spool's
/// `Drop` removes the temp file.
async fn receive_body(
    ctx: &RouteContext,
    session: &mut Session,
    mut spool: Spool,
    len: u64,
    rid: RequestId,
    key: &str,
) -> Result<Spooled, S3Error> {
    receive_into(ctx, session, &mut spool, len, rid, key).await?;
    spool.finish().await.map_err(|e| internal(rid, key, format!("fsync: {e}")))
}

/// Where a body goes: a spool, or a part's sink.
trait BodySink {
    fn write(&mut self, chunk: &[u8]) -> impl std::future::Future<Output = Result<(), SpoolError>> + Send;
    fn len(&self) -> u64;
}

impl BodySink for Spool {
    fn write(&mut self, chunk: &[u8]) -> impl std::future::Future<Output = Result<(), SpoolError>> + Send {
        Spool::write(self, chunk)
    }
    fn len(&self) -> u64 {
        Spool::len(self)
    }
}

impl BodySink for PartSink {
    fn write(&mut self, chunk: &[u8]) -> impl std::future::Future<Output = Result<(), SpoolError>> + Send {
        PartSink::write(self, chunk)
    }
    fn len(&self) -> u64 {
        PartSink::len(self)
    }
}

/// The request body into `sink`, exactly `len` bytes, at the pace `upload_body:` asks.
async fn receive_into(
    ctx: &RouteContext,
    session: &mut Session,
    sink: &mut impl BodySink,
    len: u64,
    rid: RequestId,
    key: &str,
) -> Result<(), S3Error> {
    let mut pacer = Pacer::new(&ctx.upload_body);
    loop {
        match pacer.read(session).await {
            Ok(Some(chunk)) => sink.write(&chunk).await.map_err(|e| match e {
                SpoolError::TooLarge => S3Error::BODY_LONGER_THAN_DECLARED,
                SpoolError::Io(e) => internal(rid, key, format!("write: {e}")),
            })?,
            Ok(None) => break,
            // The client went away mid-body.
            Err(PaceError::Read) => return Err(S3Error::BODY_CUT_OFF),
            Err(PaceError::Slow(reason)) => {
                record_slow(ctx, session, reason, &pacer);
                return Err(S3Error::REQUEST_TIMEOUT);
            }
        }
    }
    if sink.len() != len {
        return Err(S3Error::BODY_SHORTER_THAN_DECLARED);
    }
    Ok(())
}
