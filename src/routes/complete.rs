//! `POST {mint path}/complete`: the caller says it has uploaded an object; the gateway checks
//! the object in the store (it exists, in the caller's namespace, with the size, type and
//! checksum the caller gives) and answers with what the store holds.
//!
//! In S3 mode a presigned PUT never passes through the gateway, so this is where its
//! `upload.completed` event is recorded (under an id derived from the key and ETag: a
//! completion called twice is one event to a receiver that dedupes). On the local store the
//! commit already recorded it, so this only checks and reports.

use pingora::proxy::Session;

use crate::dialect::Dialect;
use crate::events::{Committed, Source};
use crate::http_io::reply::X_REQUEST_ID;
use crate::http_io::{send, Reply};
use crate::store::{key_is_safe, Backend};
use crate::upload::complete::{mismatch, CompleteOutcome};
use crate::upload::error::ApiError;

use super::context::{dialect_error, RouteContext};
use super::request_info::{RequestId, RequestInfo};

pub(crate) async fn handle(
    ctx: &RouteContext,
    session: &mut Session,
    dialect: Dialect,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    let request_id = info.assign_request_id();
    let reply = match answer(ctx, session, dialect, request_id, info).await {
        Ok(done) => Reply::json(200, &dialect.render_completed(&done, request_id.as_str())),
        Err(e) => dialect_error(dialect, &e, request_id),
    };
    send(session, reply.request_id(X_REQUEST_ID, request_id), &ctx.cors, origin).await
}

async fn answer(
    ctx: &RouteContext,
    session: &mut Session,
    dialect: Dialect,
    request_id: RequestId,
    info: &mut RequestInfo,
) -> Result<CompleteOutcome, ApiError> {
    let caller = ctx.admit(session, dialect, info).await?;
    let fields = dialect.complete_fields();
    let input = fields.parse(&ctx.read_json(session).await?)?;
    let ns = caller.namespace();
    let inside = input.key.strip_prefix(ns.as_str()).is_some_and(|rest| rest.starts_with('/'));
    if !inside || !key_is_safe(&input.key) {
        return Err(ApiError::KeyOutsideNamespace { field: fields.key });
    }
    let stored = ctx
        .storage
        .head_object(&input.key)
        .await
        .map_err(|e| ApiError::Internal(format!("HEAD {}: {e}", input.key)))?
        .ok_or(ApiError::ObjectNotFound)?;
    let checksum = match (&ctx.storage.backend, &input.checksum_sha256) {
        // The local store verified a checksum at the PUT but keeps none: hash the bytes.
        (Backend::Local(l), Some(_)) => l
            .sha256(&input.key)
            .await
            .map_err(|e| ApiError::Internal(format!("hashing {}: {e}", input.key)))?
            .map(|sum| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sum)),
        _ => stored.checksum_sha256.clone(),
    };
    let meta = &stored.meta;
    if let Some(e) = mismatch(&fields, &input, meta.size, &meta.content_type, checksum.as_deref()) {
        return Err(e);
    }
    let event_id = match (&ctx.storage.backend, &ctx.events) {
        (Backend::S3(_), Some(events)) => {
            let committed = Committed {
                key: &input.key,
                size: meta.size,
                content_type: &meta.content_type,
                etag: &meta.etag,
                checksum_sha256: checksum.as_deref(),
                dialect: Some(dialect.name()),
                source: Source::Completion,
                request_id: request_id.as_str(),
            };
            let id = events.completion_id(&input.key, &meta.etag);
            let recorded =
                events.record_as(id, &committed).await.map_err(|e| ApiError::Internal(e.to_string()))?;
            Some(recorded.id)
        }
        _ => None,
    };
    Ok(CompleteOutcome {
        key: input.key,
        size: meta.size,
        content_type: meta.content_type.clone(),
        etag: meta.etag.clone(),
        checksum_sha256: checksum,
        event_id,
    })
}
