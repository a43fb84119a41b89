//! `PUT {path}/{key}`: a presigned upload to the local store, streamed to a spool while
//! counted against the signed Content-Length, then committed by rename.

use pingora::proxy::Session;

use crate::content_type::is_acceptable_content_type;
use crate::http_io::{declared_length, header_bytes, Reply};
use crate::request_id::RequestId;
use crate::s3_error::S3Error;
use crate::store::{LocalStore, Spool, SpoolError, Spooled};

use super::super::context::RouteContext;
use super::{internal, verify_url};

pub(super) async fn put_object(
    ctx: &RouteContext,
    store: &LocalStore,
    session: &mut Session,
    key: &str,
    rid: RequestId,
) -> Result<Reply, S3Error> {
    verify_url(ctx, session, "PUT")?;
    let len = declared_length(session).ok_or(S3Error::MISSING_CONTENT_LENGTH)?;
    if len > ctx.storage.max_upload_bytes {
        return Err(S3Error::ENTITY_TOO_LARGE);
    }
    let content_type = header_bytes(session, http::header::CONTENT_TYPE)
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| is_acceptable_content_type(v))
        .unwrap_or("application/octet-stream")
        .to_string();
    crate::http_io::continue_if_expected(session).await;
    let spool = Spool::create(&store.tmp_dir(), len).await.map_err(|e| internal(rid, key, e))?;
    let done = receive_body(session, spool, len, rid, key).await?;
    let meta = store.commit(done, key, &content_type).await.map_err(|e| internal(rid, key, e))?;
    ctx.metrics.stored_bytes.with_label_values(&["put"]).inc_by(meta.size);
    Ok(Reply::empty(200).header_str(http::header::ETAG, &meta.etag))
}

/// The request body into `spool`, exactly `len` bytes, fsynced. On any failure the spool's
/// `Drop` removes the temp file.
async fn receive_body(
    session: &mut Session,
    mut spool: Spool,
    len: u64,
    rid: RequestId,
    key: &str,
) -> Result<Spooled, S3Error> {
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => spool.write(&chunk).await.map_err(|e| match e {
                SpoolError::TooLarge => S3Error::BODY_LONGER_THAN_DECLARED,
                SpoolError::Io(e) => internal(rid, key, format!("write: {e}")),
            })?,
            Ok(None) => break,
            // The client went away mid-body.
            Err(_) => return Err(S3Error::BODY_CUT_OFF),
        }
    }
    if spool.len() != len {
        return Err(S3Error::BODY_SHORTER_THAN_DECLARED);
    }
    spool.finish().await.map_err(|e| internal(rid, key, format!("fsync: {e}")))
}
