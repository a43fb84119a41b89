//! `POST {bucket}/`: S3's browser form upload to the local store, verified as S3 verifies
//! it (the policy's signature, expiry and every condition), the file counted against
//! `content-length-range` while it streams, and committed only when all of it held.
//!
//! Fields come before `file` (S3 ignores any after it), so the policy is checked before a
//! byte of the file is written.

use pingora::proxy::Session;
use tokio::sync::mpsc;

use crate::content_type::{type_to_store, FALLBACK_TYPE};
use crate::events::{Committed, Source, UPLOAD_SESSION};
use crate::form_data::Event;
use crate::http_io::Reply;
use crate::request_id::RequestId;
use crate::s3_error::{push_escaped, S3Error};
use crate::sigv4::{verify_post, FormField, VerifiedPost};
use crate::store::{key_is_safe, LocalStore, Spool, SpoolError, Spooled};

use super::super::context::RouteContext;
use super::form_stream::{boundary, pump_body, refuse_declared_over, Chunk, FormStream};
use super::internal;

/// Most fields before the file, and their total size: far above any policy's needs.
const MAX_FIELDS: usize = 64;
const MAX_FIELD_BYTES: usize = 64 * 1024;

const POST_TOO_LARGE: S3Error = S3Error {
    status: 400,
    code: "EntityTooLarge",
    message: std::borrow::Cow::Borrowed("Your proposed upload exceeds the maximum allowed size"),
};
const POST_TOO_SMALL: S3Error = S3Error {
    status: 400,
    code: "EntityTooSmall",
    message: std::borrow::Cow::Borrowed("Your proposed upload is smaller than the minimum allowed size"),
};

pub(super) async fn post_form(
    ctx: &RouteContext,
    store: &LocalStore,
    session: &mut Session,
    rid: RequestId,
) -> Result<Reply, S3Error> {
    let cap = ctx.storage.max_upload_bytes;
    refuse_declared_over(session, cap + MAX_FIELD_BYTES as u64)?;
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let form = FormStream::new(rx, &boundary(session)?)?;
    crate::http_io::continue_if_expected(session).await;
    let form = receive(ctx, store, form, rid);
    let ((), received) = tokio::join!(pump_body(ctx, session, tx, cap + MAX_FIELD_BYTES as u64), form);
    let (post, done) = received?;
    // `check` refused a type with no stored form, so the fallback is never taken.
    let content_type = type_to_store(post.content_type.as_deref()).unwrap_or(FALLBACK_TYPE);
    let meta = store.commit(done, &post.key, content_type).await.map_err(|e| internal(rid, &post.key, e))?;
    ctx.metrics.stored_bytes.with_label_values(&["form_post"]).inc_by(meta.size);
    // Form POSTs come from browser upload sessions (Companion's /s3/params).
    let committed = Committed {
        key: &post.key,
        size: meta.size,
        content_type,
        etag: &meta.etag,
        checksum_sha256: None,
        dialect: Some(UPLOAD_SESSION),
        source: Source::FormPost,
        request_id: rid.as_str(),
    };
    ctx.upload_completed(committed).await.map_err(|_| S3Error::INTERNAL)?;
    Ok(success(ctx, session, &post, &meta.etag))
}

/// S3's answer: 204 by default, or what `success_action_status` asked for (201 carries the
/// `PostResponse` XML).
fn success(ctx: &RouteContext, session: &Session, post: &VerifiedPost, etag: &str) -> Reply {
    let location = ctx.base_url(session).map(|b| ctx.storage.public_url(&b, &post.key)).unwrap_or_default();
    let reply = match post.success_action_status {
        Some(201) => {
            let mut xml = String::with_capacity(256 + location.len() + post.key.len());
            xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>");
            push_escaped(&mut xml, &location);
            xml.push_str("</Location><Bucket>");
            push_escaped(&mut xml, ctx.storage.bucket_name());
            xml.push_str("</Bucket><Key>");
            push_escaped(&mut xml, &post.key);
            xml.push_str("</Key><ETag>");
            push_escaped(&mut xml, etag);
            xml.push_str("</ETag></PostResponse>");
            Reply::xml(201, xml)
        }
        Some(200) => Reply::empty(200),
        _ => Reply::empty(204),
    };
    reply.header_str(http::header::ETAG, etag).header_str(http::header::LOCATION, &location)
}

/// The file being spooled, under the policy it was checked against.
struct Filling {
    post: VerifiedPost,
    spool: Spool,
    min: u64,
    /// The answer past the spool's limit: the policy's own range is S3's 400; the store's
    /// cap is the 413 every upload path gives.
    over: S3Error,
}

/// Read the fields, verify the policy, then spool the file within its size range.
async fn receive(
    ctx: &RouteContext,
    store: &LocalStore,
    mut form: FormStream,
    rid: RequestId,
) -> Result<(VerifiedPost, Spooled), S3Error> {
    let mut fields: Vec<FormField> = Vec::new();
    let mut field_bytes = 0usize;
    // The field being read, the file being spooled, and the file once it has ended.
    let mut field: Option<(String, Vec<u8>)> = None;
    let mut file: Option<Filling> = None;
    let mut done: Option<(VerifiedPost, Spooled)> = None;
    while let Some(ev) = form.next().await.map_err(|e| e.to_s3())? {
        let head = match ev {
            Event::Data(chunk) => {
                if let Some(f) = &mut file {
                    f.spool.write(&chunk).await.map_err(|e| match e {
                        SpoolError::TooLarge => f.over.clone(),
                        SpoolError::Io(e) => internal(rid, &f.post.key, e),
                    })?;
                } else if let Some((_, value)) = &mut field {
                    field_bytes += chunk.len();
                    if field_bytes > MAX_FIELD_BYTES {
                        return Err(S3Error::malformed_post("the form fields exceed 64 KiB"));
                    }
                    value.extend_from_slice(&chunk);
                }
                continue;
            }
            Event::Part(head) => Some(head),
            Event::End => None,
        };
        if let Some((name, value)) = field.take() {
            if fields.len() >= MAX_FIELDS {
                return Err(S3Error::malformed_post("too many form fields"));
            }
            let value =
                String::from_utf8(value).map_err(|_| S3Error::malformed_post("a form field is not UTF-8"))?;
            fields.push((name, value));
        }
        if let Some(f) = file.take() {
            if f.spool.len() < f.min {
                return Err(POST_TOO_SMALL);
            }
            let spooled =
                f.spool.finish().await.map_err(|e| internal(rid, &f.post.key, format!("fsync: {e}")))?;
            done = Some((f.post, spooled));
        }
        // Whatever follows the file is ignored, as S3 does, but still read.
        match head {
            Some(head) if done.is_some() => drop(head),
            Some(head) if head.name.eq_ignore_ascii_case("file") => {
                let post = check(ctx, &fields)?;
                let (min, max) = post.content_length_range.unwrap_or((0, u64::MAX));
                let cap = ctx.storage.max_upload_bytes;
                let over = if max <= cap { POST_TOO_LARGE } else { S3Error::ENTITY_TOO_LARGE };
                let spool = Spool::create(&store.tmp_dir(), max.min(cap))
                    .await
                    .map_err(|e| internal(rid, &post.key, e))?;
                file = Some(Filling { post, spool, min, over });
            }
            Some(head) => field = Some((head.name, Vec::new())),
            None => {}
        }
    }
    if let Some(done) = done {
        return Ok(done);
    }
    // No file field: S3 names the first thing it misses.
    check(ctx, &fields)?;
    Err(S3Error::NO_FILE_FIELD)
}

/// The policy holds for these fields, and the key and type are ones this store serves.
fn check(ctx: &RouteContext, fields: &[FormField]) -> Result<VerifiedPost, S3Error> {
    let post =
        verify_post(&ctx.storage.gateway_signer, ctx.storage.bucket_name(), fields, crate::clock::now())
            .map_err(|e| e.to_s3())?;
    if !key_is_safe(&post.key) {
        return Err(S3Error::INVALID_KEY);
    }
    if type_to_store(post.content_type.as_deref()).is_none() {
        return Err(S3Error::INVALID_CONTENT_TYPE);
    }
    Ok(post)
}
