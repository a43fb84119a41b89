//! `POST /v1/upload-sessions`: an application's backend, with its API key, opens a browser
//! upload session and gets a token and the Companion endpoint to hand to Uppy.
//!
//! Body (JSON, every field optional): `max_file_size`, `allowed_types`, `max_files`,
//! `expires_in`. Each is capped by `upload_sessions:`; a value over its cap is a 400 naming
//! the field. Answer 201: `{"token", "companion_endpoint", "expires_at"}`.

use pingora::proxy::Session;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::UploadSessionsConfig;
use crate::dialect::Dialect;
use crate::http_io::reply::X_REQUEST_ID;
use crate::http_io::{send, Reply};
use crate::upload::auth::Caller;
use crate::upload::error::ApiError;
use crate::upload::session_token::{SessionGrant, SessionTokens};

use super::context::{with_retry_after, RouteContext};
use super::request_info::RequestInfo;
use super::table::COMPANION_PREFIX;

/// Most entries in `allowed_types`.
const MAX_ALLOWED_TYPES: usize = 32;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    max_file_size: Option<serde_json::Value>,
    allowed_types: Option<serde_json::Value>,
    max_files: Option<serde_json::Value>,
    expires_in: Option<serde_json::Value>,
}

pub(crate) async fn handle(
    ctx: &RouteContext,
    tokens: &SessionTokens,
    caps: &UploadSessionsConfig,
    session: &mut Session,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    let now = crate::clock::now();
    let rid = info.assign_request_id_at(now);
    let reply = match answer(ctx, tokens, caps, session, now, info).await {
        Ok(body) => Reply::json(201, &body),
        Err(e) => {
            log::debug!("{rid} upload-sessions: {e}");
            if let ApiError::Internal(d) = &e {
                log::error!("{rid} upload-sessions: {d}");
            }
            let mut body = serde_json::json!({ "error": e.message() });
            if let Some(f) = e.field() {
                body["field"] = f.into();
            }
            with_retry_after(Reply::json(e.status(), &body), &e)
        }
    };
    send(session, reply.request_id(X_REQUEST_ID, rid), &ctx.cors, origin).await
}

async fn answer(
    ctx: &RouteContext,
    tokens: &SessionTokens,
    caps: &UploadSessionsConfig,
    session: &mut Session,
    now: OffsetDateTime,
    info: &mut RequestInfo,
) -> Result<serde_json::Value, ApiError> {
    // The session route takes a Bearer key, as every dialect but memories does.
    let caller = ctx.admit(session, Dialect::ApiMall, info).await?;
    let body = ctx.read_json(session).await?;
    let req: Request = if body.iter().all(u8::is_ascii_whitespace) {
        Request::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::MalformedBody(format!("expected a JSON object ({e})")))?
    };
    let grant = grant(&req, caps, &caller, now)?;
    let token = tokens.issue(&grant);
    let base = ctx.base_url(session)?;
    let endpoint = base.join(&[COMPANION_PREFIX, &token]);
    let expires_at = OffsetDateTime::from_unix_timestamp(grant.expires_at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| ApiError::Internal("expiry out of range".into()))?;
    log::debug!("upload session {} for key {} until {expires_at}", grant.session_id, caller.key_id);
    Ok(serde_json::json!({ "token": token, "companion_endpoint": endpoint, "expires_at": expires_at }))
}

fn grant(
    req: &Request,
    caps: &UploadSessionsConfig,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<SessionGrant, ApiError> {
    let size_cap = caller.max_file_size.map_or(caps.max_file_size, |m| m.min(caps.max_file_size));
    let max_file_size = capped("max_file_size", req.max_file_size.as_ref(), size_cap)?;
    let max_files = capped("max_files", req.max_files.as_ref(), u64::from(caps.max_files))?;
    let expires_in = capped("expires_in", req.expires_in.as_ref(), u64::from(caps.max_expires_in))?;
    let allowed_types = allowed_types(req.allowed_types.as_ref())?;
    Ok(SessionGrant {
        session_id: hex::encode(rand::random::<[u8; 12]>()),
        user_id: caller.user_id,
        key_id: caller.key_id.to_string(),
        max_file_size,
        allowed_types,
        max_files: u32::try_from(max_files).unwrap_or(u32::MAX),
        expires_at: now.unix_timestamp().saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX)),
    })
}

/// A positive integer at most `cap`; absent: `cap`.
fn capped(field: &'static str, v: Option<&serde_json::Value>, cap: u64) -> Result<u64, ApiError> {
    let bad = |m: String| ApiError::InvalidField { field, message: format!("{field} {m}") };
    match v {
        None | Some(serde_json::Value::Null) => Ok(cap),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=cap).contains(&n) => Ok(n),
            Some(0) => Err(bad("must be at least 1".into())),
            Some(_) => Err(bad(format!("must be at most {cap}"))),
            None => Err(bad("must be a positive integer".into())),
        },
    }
}

/// `type/subtype` or `type/*` tokens, each a type the gateway would accept.
fn allowed_types(v: Option<&serde_json::Value>) -> Result<Vec<String>, ApiError> {
    let field = "allowed_types";
    let bad = |m: String| ApiError::InvalidField { field, message: format!("{field} {m}") };
    let list = match v {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(list)) => list,
        Some(_) => return Err(bad("must be a list of media types".into())),
    };
    if list.len() > MAX_ALLOWED_TYPES {
        return Err(bad(format!("must have at most {MAX_ALLOWED_TYPES} entries")));
    }
    list.iter()
        .map(|t| {
            let t = t.as_str().ok_or_else(|| bad("must be a list of strings".into()))?;
            let valid = match t.split_once('/') {
                Some((ty, "*")) => {
                    !ty.contains('*') && crate::content_type::is_acceptable_content_type(&format!("{ty}/x"))
                }
                Some((_, sub)) => {
                    !sub.contains('*')
                        && !t.contains(';')
                        && crate::content_type::is_acceptable_content_type(t)
                }
                None => false,
            };
            if valid {
                Ok(t.to_ascii_lowercase())
            } else {
                Err(bad(format!("entry {t:?} must be type/subtype or type/* of an accepted type")))
            }
        })
        .collect()
}
