//! The Companion routes Uppy's `@uppy/aws-s3` plugin calls in companion mode, under each
//! session's endpoint `/uppy/{token}`, answered with Companion's shapes
//! (`controllers/s3.js`):
//!
//! | route | answer |
//! |---|---|
//! | `GET /s3/params?filename=&type=` | `{method:"POST", url, fields, expires}` |
//! | `POST /s3/multipart` `{filename, type, metadata}` | `{key, uploadId, bucket}` |
//! | `GET /s3/multipart/{uploadId}/{partNumber}?key=` | `{url, expires}` |
//! | `GET /s3/multipart/{uploadId}/batch?key=&partNumbers=1,2` | `{presignedUrls:{"1":url}}` |
//! | `GET /s3/multipart/{uploadId}?key=` | `[{PartNumber, ETag, Size}]` |
//! | `POST /s3/multipart/{uploadId}/complete?key=` `{parts:[{PartNumber, ETag}]}` | `{location, key, bucket}` |
//! | `DELETE /s3/multipart/{uploadId}?key=` | `{}` |
//!
//! Every route checks the session token first (401), then keeps every key inside the
//! session's prefix (403). An upload id only works with its own key, which the store checks,
//! so another session's upload id is refused too.

mod error;
mod multipart;
mod params;
mod sessions;

pub(crate) use error::CompanionError;
pub(crate) use sessions::Sessions;

use pingora::proxy::Session;
use time::OffsetDateTime;

use crate::http_io::reply::X_REQUEST_ID;
use crate::http_io::{send, Reply};
use crate::request_id::RequestId;
use crate::sigv4::percent_decode_str;
use crate::upload::session_token::{SessionGrant, TokenError};

use super::context::RouteContext;
use super::request_info::RequestInfo;

/// One Companion route, from the path after `/uppy/{token}/s3/`.
#[derive(Debug, PartialEq, Eq)]
enum Op {
    Params,
    Create,
    SignPart { upload_id: String, part: String },
    Batch { upload_id: String },
    List { upload_id: String },
    Complete { upload_id: String },
    Abort { upload_id: String },
}

fn parse_op(method: &http::Method, rest: &str) -> Result<Op, CompanionError> {
    let not_found = || CompanionError::NotFound("s3: no such route".into());
    let segments: Vec<&str> = rest.split('/').collect();
    let decode = |s: &str| {
        percent_decode_str(s)
            .map(|d| d.into_owned())
            .filter(|d| !d.is_empty())
            .ok_or_else(|| CompanionError::BadRequest("s3: the upload id is not valid".into()))
    };
    let op = match segments.as_slice() {
        ["params"] => Op::Params,
        ["multipart"] => Op::Create,
        ["multipart", id] if *method == http::Method::DELETE => Op::Abort { upload_id: decode(id)? },
        ["multipart", id] => Op::List { upload_id: decode(id)? },
        ["multipart", id, "batch"] => Op::Batch { upload_id: decode(id)? },
        ["multipart", id, "complete"] => Op::Complete { upload_id: decode(id)? },
        ["multipart", id, part] => Op::SignPart { upload_id: decode(id)?, part: (*part).to_owned() },
        _ => return Err(not_found()),
    };
    let allowed = match op {
        Op::Create | Op::Complete { .. } => http::Method::POST,
        Op::Abort { .. } => http::Method::DELETE,
        _ => http::Method::GET,
    };
    if *method != allowed {
        return Err(CompanionError::MethodNotAllowed);
    }
    Ok(op)
}

/// `rest` is the path after `/uppy/`.
pub(crate) async fn handle(
    ctx: &RouteContext,
    sessions: &Sessions,
    session: &mut Session,
    rest: &str,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    let now = crate::clock::now();
    let rid = info.assign_request_id_at(now);
    let reply = match answer(ctx, sessions, session, rest, rid, now, info).await {
        Ok(body) => Reply::json(200, &body),
        Err(e) => e.reply(rid),
    };
    send(session, reply.request_id(X_REQUEST_ID, rid), &ctx.cors, origin).await
}

async fn answer(
    ctx: &RouteContext,
    sessions: &Sessions,
    session: &mut Session,
    rest: &str,
    rid: RequestId,
    now: OffsetDateTime,
    info: &mut RequestInfo,
) -> Result<serde_json::Value, CompanionError> {
    let (token, route) =
        rest.split_once("/s3/").ok_or_else(|| CompanionError::NotFound("s3: no such route".into()))?;
    let grant = sessions.tokens.verify(token, now.unix_timestamp()).map_err(|e| match e {
        TokenError::Invalid => CompanionError::InvalidToken,
        TokenError::Expired => CompanionError::ExpiredToken,
    })?;
    info.key_id = Some(grant.key_id.as_str().into());
    let op = parse_op(&session.req_header().method, route)?;
    let query = session.req_header().uri.query().unwrap_or("").to_owned();
    let call = Call { ctx, sessions, grant: &grant, query: &query, rid, now };
    match op {
        Op::Params => params::params(&call, session),
        Op::Create => multipart::create(&call, session).await,
        Op::SignPart { upload_id, part } => multipart::sign_part(&call, session, &upload_id, &part),
        Op::Batch { upload_id } => multipart::batch(&call, session, &upload_id),
        Op::List { upload_id } => multipart::list(&call, &upload_id).await,
        Op::Complete { upload_id } => multipart::complete(&call, session, &upload_id).await,
        Op::Abort { upload_id } => multipart::abort(&call, &upload_id).await,
    }
}

/// What every route handler works with.
struct Call<'a> {
    ctx: &'a RouteContext,
    sessions: &'a Sessions,
    grant: &'a SessionGrant,
    /// The raw query string.
    query: &'a str,
    rid: RequestId,
    now: OffsetDateTime,
}

impl Call<'_> {
    /// The decoded query parameter `name` (form decoding: `+` is a space, as
    /// `URLSearchParams` writes it).
    fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }

    /// `?key=`, which must be one of this session's keys.
    fn key(&self) -> Result<String, CompanionError> {
        let key = self.param("key").ok_or_else(|| {
            CompanionError::BadRequest(
                "s3: the object key must be passed as a query parameter. For example: \"?key=abc.jpg\""
                    .into(),
            )
        })?;
        if !self.grant.owns_key(&key) {
            return Err(CompanionError::Forbidden(
                "s3: the key does not belong to this upload session".into(),
            ));
        }
        Ok(key)
    }

    /// Seconds left in the session, for the URLs it hands out (at least one).
    fn remaining_secs(&self) -> u32 {
        u32::try_from((self.grant.expires_at - self.now.unix_timestamp()).max(1)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn routes_parse_as_companion_lays_them_out() {
        let id = || "abc".to_string();
        assert_eq!(parse_op(&Method::GET, "params"), Ok(Op::Params));
        assert_eq!(parse_op(&Method::POST, "multipart"), Ok(Op::Create));
        assert_eq!(parse_op(&Method::GET, "multipart/abc"), Ok(Op::List { upload_id: id() }));
        assert_eq!(parse_op(&Method::DELETE, "multipart/abc"), Ok(Op::Abort { upload_id: id() }));
        assert_eq!(parse_op(&Method::GET, "multipart/abc/batch"), Ok(Op::Batch { upload_id: id() }));
        assert_eq!(parse_op(&Method::POST, "multipart/abc/complete"), Ok(Op::Complete { upload_id: id() }));
        assert_eq!(
            parse_op(&Method::GET, "multipart/a%7Eb/7"),
            Ok(Op::SignPart { upload_id: "a~b".into(), part: "7".into() })
        );
        assert_eq!(parse_op(&Method::POST, "params"), Err(CompanionError::MethodNotAllowed));
        assert_eq!(parse_op(&Method::GET, "multipart/abc/complete"), Err(CompanionError::MethodNotAllowed));
        assert!(matches!(parse_op(&Method::GET, "sts"), Err(CompanionError::NotFound(_))));
        assert!(matches!(parse_op(&Method::GET, "multipart/a/b/c"), Err(CompanionError::NotFound(_))));
        assert!(matches!(parse_op(&Method::GET, "multipart//1"), Err(CompanionError::BadRequest(_))));
    }
}
