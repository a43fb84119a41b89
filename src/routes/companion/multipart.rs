//! The multipart routes: create, sign parts (one or a batch), list, complete, abort. The
//! part bytes go straight to the store's presigned URLs, never through these routes.

use pingora::proxy::Session;
use serde::Deserialize;

use crate::events::{Committed, Source, UPLOAD_SESSION};
use crate::http_io::{read_body_capped, BodyError};
use crate::store::BaseUrl;

use super::params::new_key;
use super::{Call, CompanionError};

/// S3's part numbers.
const PART_NUMBERS: std::ops::RangeInclusive<u32> = 1..=10_000;
/// Longest life of a part URL, in seconds.
const PART_EXPIRES_SECS: u32 = 3600;
/// Body cap of `complete` (10,000 parts, as Companion allows with its 1 MB limit).
const COMPLETE_BODY_CAP: usize = 1 << 20;
/// How long after its session an unfinished upload is kept before the store clears it.
const UPLOAD_GRACE_SECS: i64 = 600;
/// Most part numbers signed by one batch call.
const MAX_BATCH: usize = 1000;

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    filename: Option<serde_json::Value>,
    #[serde(rename = "type", default)]
    content_type: Option<serde_json::Value>,
}

pub(super) async fn create(
    call: &Call<'_>,
    session: &mut Session,
) -> Result<serde_json::Value, CompanionError> {
    let body = read_json(call, session, call.ctx.max_json_body).await?;
    let body: CreateBody = serde_json::from_slice(&body).map_err(|_| {
        CompanionError::BadRequest("s3: the body must be a JSON object {filename, type, metadata}".into())
    })?;
    let Some(serde_json::Value::String(content_type)) = body.content_type else {
        return Err(CompanionError::BadRequest("s3: content type must be a string".into()));
    };
    let filename = match body.filename {
        Some(serde_json::Value::String(f)) => f,
        _ => return Err(CompanionError::BadRequest("s3: filename must be a string".into())),
    };
    let key = new_key(call, &filename, &content_type)?;
    let expires_at = time::OffsetDateTime::from_unix_timestamp(call.grant.expires_at + UPLOAD_GRACE_SECS)
        .map_err(|e| CompanionError::Internal(format!("upload expiry: {e}")))?;
    let upload_id =
        call.ctx.storage.create_multipart(&key, &content_type, expires_at, call.grant.max_file_size).await?;
    log::debug!("{} companion: multipart upload {upload_id} of {key}", call.rid);
    Ok(serde_json::json!({ "key": key, "uploadId": upload_id, "bucket": call.ctx.storage.bucket_name() }))
}

fn part_number(s: &str) -> Result<u32, CompanionError> {
    s.parse::<u32>()
        .ok()
        .filter(|n| PART_NUMBERS.contains(n) && !s.starts_with('+') && !s.starts_with('0'))
        .ok_or_else(|| {
            CompanionError::BadRequest("s3: the part number must be a number between 1 and 10000.".into())
        })
}

fn base(call: &Call<'_>, session: &Session) -> Result<BaseUrl, CompanionError> {
    call.ctx
        .base_url(session)
        .map(|b| b.into_owned())
        .map_err(|e| CompanionError::BadRequest(format!("s3: {}", e.message())))
}

pub(super) fn sign_part(
    call: &Call<'_>,
    session: &Session,
    upload_id: &str,
    part: &str,
) -> Result<serde_json::Value, CompanionError> {
    let key = call.key()?;
    let n = part_number(part)?;
    let expires = call.remaining_secs().min(PART_EXPIRES_SECS);
    let url = call.ctx.storage.presign_part(&base(call, session)?, &key, upload_id, n, expires, call.now);
    Ok(serde_json::json!({ "url": url, "expires": expires }))
}

pub(super) fn batch(
    call: &Call<'_>,
    session: &Session,
    upload_id: &str,
) -> Result<serde_json::Value, CompanionError> {
    let key = call.key()?;
    let list = call.param("partNumbers").ok_or_else(|| {
        CompanionError::BadRequest(
            "s3: the part numbers must be passed as a comma separated query parameter. For example: \"?partNumbers=4,6,7,21\"".into(),
        )
    })?;
    let numbers: Vec<&str> = list.split(',').collect();
    if numbers.len() > MAX_BATCH {
        return Err(CompanionError::BadRequest(format!("s3: at most {MAX_BATCH} part numbers per batch")));
    }
    let base = base(call, session)?;
    let expires = call.remaining_secs().min(PART_EXPIRES_SECS);
    let mut urls = serde_json::Map::with_capacity(numbers.len());
    for s in numbers {
        let n = part_number(s)?;
        urls.insert(
            n.to_string(),
            call.ctx.storage.presign_part(&base, &key, upload_id, n, expires, call.now).into(),
        );
    }
    Ok(serde_json::json!({ "presignedUrls": urls }))
}

pub(super) async fn list(call: &Call<'_>, upload_id: &str) -> Result<serde_json::Value, CompanionError> {
    let key = call.key()?;
    let parts = call.ctx.storage.list_parts(&key, upload_id).await?;
    let parts: Vec<serde_json::Value> = parts
        .iter()
        .map(|p| serde_json::json!({ "PartNumber": p.part_number, "ETag": p.etag, "Size": p.size }))
        .collect();
    Ok(serde_json::Value::Array(parts))
}

#[derive(Deserialize)]
struct CompleteBody {
    parts: Vec<CompletePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompletePart {
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

pub(super) async fn complete(
    call: &Call<'_>,
    session: &mut Session,
    upload_id: &str,
) -> Result<serde_json::Value, CompanionError> {
    let key = call.key()?;
    let body = read_json(call, session, COMPLETE_BODY_CAP).await?;
    let body: CompleteBody = serde_json::from_slice(&body).map_err(|_| {
        CompanionError::BadRequest("s3: `parts` must be an array of {ETag, PartNumber} objects.".into())
    })?;
    if body.parts.is_empty() {
        return Err(CompanionError::BadRequest("s3: `parts` must list at least one part.".into()));
    }
    let parts: Vec<(u32, String)> = body.parts.into_iter().map(|p| (p.part_number, p.etag)).collect();
    let storage = &call.ctx.storage;
    let meta = storage.complete_multipart(&key, upload_id, &parts, call.grant.max_file_size).await?;
    call.ctx.metrics.stored_bytes.with_label_values(&["multipart_complete"]).inc_by(meta.size);
    let committed = Committed {
        key: &key,
        size: meta.size,
        content_type: &meta.content_type,
        etag: &meta.etag,
        checksum_sha256: None,
        dialect: Some(UPLOAD_SESSION),
        source: Source::Multipart,
        request_id: call.rid.as_str(),
    };
    call.ctx.upload_completed(committed).await.map_err(CompanionError::Internal)?;
    let location = storage.public_url(&base(call, session)?, &key);
    log::debug!("{} companion: completed {upload_id} as {key} ({} bytes)", call.rid, meta.size);
    Ok(serde_json::json!({ "location": location, "key": key, "bucket": storage.bucket_name() }))
}

pub(super) async fn abort(call: &Call<'_>, upload_id: &str) -> Result<serde_json::Value, CompanionError> {
    let key = call.key()?;
    call.ctx.storage.abort_multipart(&key, upload_id).await?;
    Ok(serde_json::json!({}))
}

async fn read_json(
    call: &Call<'_>,
    session: &mut Session,
    cap: usize,
) -> Result<bytes::Bytes, CompanionError> {
    read_body_capped(session, cap).await.map_err(|e| match e {
        BodyError::TooLarge => CompanionError::TooLarge(format!("s3: the request body exceeds {cap} bytes")),
        BodyError::Read => {
            log::debug!("{} companion: body read failed", call.rid);
            CompanionError::BadRequest("s3: the request body could not be read".into())
        }
    })
}
