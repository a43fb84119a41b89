//! `POST {path}/{key}`: memories' multipart/form-data upload. The `file` part is spooled
//! (bounded memory, capped at the store's limit) and then committed to the local store or
//! relayed to S3; any other part is read and dropped. The form itself is bounded
//! ([`crate::form_data::LIMITS`]); a body past the cap is 413 like every upload.

use tokio::sync::mpsc;

use crate::content_type::type_for_key;
use crate::dialect::Dialect;
use crate::events::{Committed, Source};
use crate::form_data::Event;
use crate::http_io::Reply;
use crate::request_id::RequestId;
use crate::s3_error::S3Error;
use crate::store::{Spool, SpoolError};
use pingora::proxy::Session;

use super::super::context::RouteContext;
use super::form_stream::{boundary, pump_body, refuse_declared_over, Chunk, FormStream, StreamError};
use super::{internal, verify_url};

/// Multipart overhead allowed beyond the file itself (boundaries, part headers, small fields).
const FORM_OVERHEAD: u64 = 64 * 1024;

pub(super) async fn post_object(
    ctx: &RouteContext,
    session: &mut Session,
    key: &str,
    rid: RequestId,
) -> Result<Reply, S3Error> {
    verify_url(ctx, session, "POST")?;
    let limit = ctx.storage.max_upload_bytes;
    refuse_declared_over(session, limit + FORM_OVERHEAD)?;
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let form = FormStream::new(rx, &boundary(session)?)?;
    let spool = ctx.storage.spool(limit).await.map_err(|e| internal(rid, key, e))?;
    crate::http_io::continue_if_expected(session).await;
    let ((), parsed) =
        tokio::join!(pump_body(ctx, session, tx, limit + FORM_OVERHEAD), spool_file_field(form, spool));
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

/// Why the form could not be taken.
enum FormError {
    NoFile,
    TooLarge,
    Stream(StreamError),
    Io(std::io::Error),
}

impl FormError {
    fn into_s3(self, rid: RequestId, key: &str) -> S3Error {
        match self {
            FormError::NoFile => S3Error::NO_FILE_FIELD,
            FormError::TooLarge => S3Error::ENTITY_TOO_LARGE,
            FormError::Stream(e) => e.to_s3(),
            FormError::Io(e) => internal(rid, key, e),
        }
    }
}

/// Parse the form; the first `file` part goes into `spool`.
async fn spool_file_field(mut form: FormStream, spool: Spool) -> Result<Spool, FormError> {
    let mut spool = Some(spool);
    let mut filling = false;
    while let Some(ev) = form.next().await.map_err(FormError::Stream)? {
        match ev {
            Event::Part(head) => {
                if filling {
                    break;
                }
                filling = head.name == "file";
            }
            Event::Data(chunk) if filling => {
                let Some(s) = spool.as_mut() else { break };
                s.write(&chunk).await.map_err(|e| match e {
                    SpoolError::TooLarge => FormError::TooLarge,
                    SpoolError::Io(e) => FormError::Io(e),
                })?;
            }
            Event::Data(_) => {}
            Event::End => break,
        }
    }
    if !filling {
        return Err(FormError::NoFile);
    }
    // Whatever follows the file is read and dropped, so the connection stays usable.
    while form.next().await.map_err(FormError::Stream)?.is_some() {}
    spool.ok_or(FormError::NoFile)
}
