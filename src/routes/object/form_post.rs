//! `POST {bucket}/`: S3's browser form upload to the local store, verified as S3 verifies
//! it (the policy's signature, expiry and every condition), the file counted against
//! `content-length-range` while it streams, and committed only when all of it held.
//!
//! Fields come before `file` (S3 ignores any after it), so the policy is checked before a
//! byte of the file is written.

use pingora::proxy::Session;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::content_type::is_acceptable_content_type;
use crate::events::{Committed, Source, UPLOAD_SESSION};
use crate::http_io::{header_bytes, Reply};
use crate::request_id::RequestId;
use crate::s3_error::{push_escaped, S3Error};
use crate::sigv4::{verify_post, FormField, VerifiedPost};
use crate::store::{key_is_safe, LocalStore, Spool, SpoolError};

use super::super::context::RouteContext;
use super::internal;
use super::multipart::{pump_body, Chunk};

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
const BAD_CONTENT_TYPE: S3Error = S3Error {
    status: 400,
    code: "InvalidArgument",
    message: std::borrow::Cow::Borrowed("The Content-Type field is not a type this store accepts"),
};

pub(super) async fn post_form(
    ctx: &RouteContext,
    store: &LocalStore,
    session: &mut Session,
    rid: RequestId,
) -> Result<Reply, S3Error> {
    let boundary = header_bytes(session, http::header::CONTENT_TYPE)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or(S3Error::NOT_MULTIPART)?;
    let cap = ctx.storage.max_upload_bytes;
    crate::http_io::continue_if_expected(session).await;
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let form = receive(ctx, store, rx, boundary, rid);
    let ((), received) = tokio::join!(pump_body(session, tx, cap + MAX_FIELD_BYTES as u64), form);
    let (post, done) = received?;
    let content_type = post.content_type.as_deref().unwrap_or("application/octet-stream");
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

fn malformed(e: multer::Error) -> S3Error {
    S3Error::malformed_post(&e.to_string())
}

/// Read the fields, verify the policy, then spool the file within its size range.
async fn receive(
    ctx: &RouteContext,
    store: &LocalStore,
    rx: mpsc::Receiver<Chunk>,
    boundary: String,
    rid: RequestId,
) -> Result<(VerifiedPost, crate::store::Spooled), S3Error> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields: Vec<FormField> = Vec::new();
    let mut field_bytes = 0usize;
    while let Some(mut field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_owned();
        if name.eq_ignore_ascii_case("file") {
            let post = check(ctx, &fields)?;
            let (min, max) = post.content_length_range.unwrap_or((0, u64::MAX));
            let limit = max.min(ctx.storage.max_upload_bytes);
            let mut spool =
                Spool::create(&store.tmp_dir(), limit).await.map_err(|e| internal(rid, &post.key, e))?;
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                spool.write(&chunk).await.map_err(|e| match e {
                    SpoolError::TooLarge => POST_TOO_LARGE,
                    SpoolError::Io(e) => internal(rid, &post.key, e),
                })?;
            }
            if spool.len() < min {
                return Err(POST_TOO_SMALL);
            }
            let done = spool.finish().await.map_err(|e| internal(rid, &post.key, format!("fsync: {e}")))?;
            drop(field);
            // Whatever follows the file is ignored, as S3 does; the pump still reads it.
            while form.next_field().await.map_err(malformed)?.is_some() {}
            return Ok((post, done));
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            field_bytes += chunk.len();
            if field_bytes > MAX_FIELD_BYTES {
                return Err(S3Error::malformed_post("the form fields exceed 64 KiB"));
            }
            value.extend_from_slice(&chunk);
        }
        if fields.len() >= MAX_FIELDS {
            return Err(S3Error::malformed_post("too many form fields"));
        }
        let value =
            String::from_utf8(value).map_err(|_| S3Error::malformed_post("a form field is not UTF-8"))?;
        fields.push((name, value));
    }
    // No file field: S3 names the first thing it misses.
    check(ctx, &fields)?;
    Err(S3Error::NO_FILE_FIELD)
}

/// The policy holds for these fields, and the key and type are ones this store serves.
fn check(ctx: &RouteContext, fields: &[FormField]) -> Result<VerifiedPost, S3Error> {
    let post = verify_post(
        &ctx.storage.gateway_signer,
        ctx.storage.bucket_name(),
        fields,
        OffsetDateTime::now_utc(),
    )
    .map_err(|e| e.to_s3())?;
    if !key_is_safe(&post.key) {
        return Err(S3Error::INVALID_KEY);
    }
    if post.content_type.as_deref().is_some_and(|ct| !is_acceptable_content_type(ct)) {
        return Err(BAD_CONTENT_TYPE);
    }
    Ok(post)
}
