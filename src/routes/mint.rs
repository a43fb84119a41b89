//! The mint routes: one per dialect, each `POST` JSON in, a signed upload URL out.

use pingora::proxy::Session;
use time::OffsetDateTime;

use crate::dialect::Dialect;
use crate::http_io::reply::X_REQUEST_ID;
use crate::http_io::{send, Reply};
use crate::upload::error::ApiError;
use crate::upload::mint::{mint, size_cap};

use super::context::{dialect_error, RouteContext};
use super::request_info::{RequestId, RequestInfo};

pub(crate) async fn handle(
    ctx: &RouteContext,
    session: &mut Session,
    dialect: Dialect,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    // One clock read serves the request id and the signature.
    let now = crate::clock::now();
    let request_id = info.assign_request_id_at(now);
    let reply = match answer(ctx, session, dialect, request_id, now, info).await {
        Ok(body) => {
            ctx.metrics.record_minted(dialect.name());
            Reply::json_text(200, body)
        }
        Err(e) => dialect_error(dialect, &e, request_id),
    };
    send(session, reply.request_id(X_REQUEST_ID, request_id), &ctx.cors, origin).await
}

/// The success body, or why there is none.
async fn answer(
    ctx: &RouteContext,
    session: &mut Session,
    dialect: Dialect,
    request_id: RequestId,
    now: OffsetDateTime,
    info: &mut RequestInfo,
) -> Result<String, ApiError> {
    let caller = ctx.admit(session, dialect, info).await?;
    let body = ctx.read_json(session).await?;
    let mut input = dialect.parse(&body, &caller)?;
    input.create_only = ctx.create_only(dialect);
    // Only with events on: the tag takes the signer off its fastest path (see presign.rs).
    input.dialect = ctx.events.is_some().then_some(dialect.name());
    // A URL for a size the store (or the caller's own limit) would refuse is never handed out.
    let cap =
        caller.max_file_size.map_or(ctx.storage.max_upload_bytes, |m| m.min(ctx.storage.max_upload_bytes));
    if input.size.is_some_and(|n| n > cap) {
        return Err(ApiError::InvalidFileSize { max: size_cap(&ctx.storage).min(cap) });
    }
    let base = ctx.base_url(session)?;
    let minted = mint(&ctx.storage, &base, &caller, &input, now);
    log::debug!("{request_id} {} minted {} for key {}", dialect.name(), minted.key, caller.key_id);
    Ok(dialect.render_success(&minted, request_id.as_str()))
}
