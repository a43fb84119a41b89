//! `POST {path}/{key}`: memories' multipart/form-data upload. The `file` part is spooled
//! (bounded memory, capped at the store's limit) and then committed to the local store or
//! relayed to S3; any other part is read and dropped.
//!
//! Two tasks run joined: a pump that reads the request body from Pingora into a channel, and
//! the multipart parser that consumes it, so the parser never holds the session.

use bytes::Bytes;
use pingora::proxy::Session;
use tokio::sync::mpsc;

use crate::content_type::type_for_key;
use crate::dialect::Dialect;
use crate::events::{Committed, Source};
use crate::http_io::{header_bytes, Reply};
use crate::request_id::RequestId;
use crate::s3_error::S3Error;
use crate::store::{Spool, SpoolError};

use super::super::context::RouteContext;
use super::{internal, verify_url};

/// Multipart overhead allowed beyond the file itself (boundaries, part headers, small fields).
const FORM_OVERHEAD: u64 = 64 * 1024;

pub(super) type Chunk = Result<Bytes, std::io::Error>;

pub(super) async fn post_object(
    ctx: &RouteContext,
    session: &mut Session,
    key: &str,
    rid: RequestId,
) -> Result<Reply, S3Error> {
    verify_url(ctx, session, "POST")?;
    let boundary = header_bytes(session, http::header::CONTENT_TYPE)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or(S3Error::NOT_MULTIPART)?;
    let limit = ctx.storage.max_upload_bytes;
    let spool = ctx.storage.spool(limit).await.map_err(|e| internal(rid, key, e))?;
    crate::http_io::continue_if_expected(session).await;
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let ((), parsed) =
        tokio::join!(pump_body(session, tx, limit + FORM_OVERHEAD), spool_file_field(rx, boundary, spool));
    let spool = parsed.map_err(|e| e.into_s3(rid, key))?;
    if spool.is_empty() {
        return Err(S3Error::EMPTY_FILE_FIELD);
    }
    let done = spool.finish().await.map_err(|e| internal(rid, key, format!("fsync: {e}")))?;
    let meta = ctx.storage.commit(done, key, type_for_key(key)).await.map_err(|e| internal(rid, key, e))?;
    ctx.metrics.stored_bytes.with_label_values(&["multipart"]).inc_by(meta.size);
    // Only memories mints multipart POST URLs.
    let committed = Committed {
        key,
        size: meta.size,
        content_type: &meta.content_type,
        etag: &meta.etag,
        checksum_sha256: None,
        dialect: Some(Dialect::Memories.name()),
        source: Source::Relay,
        request_id: rid.as_str(),
    };
    ctx.upload_completed(committed).await.map_err(|_| S3Error::INTERNAL)?;
    Ok(Reply::empty(204))
}

/// Read the request body into `tx`, failing the stream past `cap` bytes.
pub(super) async fn pump_body(session: &mut Session, tx: mpsc::Sender<Chunk>, cap: u64) {
    let mut total = 0u64;
    loop {
        let item = match session.read_request_body().await {
            Ok(Some(b)) => {
                total += b.len() as u64;
                if total > cap {
                    Err(std::io::Error::other("body too large"))
                } else {
                    Ok(b)
                }
            }
            Ok(None) => return,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        let stop = item.is_err();
        if tx.send(item).await.is_err() || stop {
            return;
        }
    }
}

/// Why the form could not be taken.
enum FormError {
    NoFile,
    TooLarge,
    Malformed(String),
    Io(std::io::Error),
}

impl FormError {
    fn into_s3(self, rid: RequestId, key: &str) -> S3Error {
        match self {
            FormError::NoFile => S3Error::NO_FILE_FIELD,
            FormError::TooLarge => S3Error::ENTITY_TOO_LARGE,
            FormError::Malformed(m) => S3Error::malformed_post(&m),
            FormError::Io(e) => internal(rid, key, e),
        }
    }
}

fn malformed(e: multer::Error) -> FormError {
    FormError::Malformed(e.to_string())
}

/// Parse the form from `rx`; the first `file` part goes into `spool`.
async fn spool_file_field(
    rx: mpsc::Receiver<Chunk>,
    boundary: String,
    spool: Spool,
) -> Result<Spool, FormError> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut spool = Some(spool);
    let mut stored = None;
    while let Some(mut field) = form.next_field().await.map_err(malformed)? {
        match (field.name() == Some("file"), spool.take()) {
            (true, Some(mut s)) => {
                while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                    s.write(&chunk).await.map_err(|e| match e {
                        SpoolError::TooLarge => FormError::TooLarge,
                        SpoolError::Io(e) => FormError::Io(e),
                    })?;
                }
                stored = Some(s);
            }
            (_, s) => {
                spool = s;
                while field.chunk().await.map_err(malformed)?.is_some() {}
            }
        }
    }
    stored.ok_or(FormError::NoFile)
}
