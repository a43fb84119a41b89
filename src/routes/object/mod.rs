//! The gateway acting as a store: verified uploads in, objects out.
//!
//! - `PUT {path}/{key}?X-Amz-...`: a presigned PUT (local store) ([`put`]); with
//!   `partNumber` and `uploadId` in the query, one part of a multipart upload.
//! - `POST {path}/{key}?X-Amz-...`: memories' multipart upload, committed to the local store
//!   or relayed to S3 ([`multipart`]).
//! - `GET`/`HEAD {path}/{key}`: the object (local store), with ETag and single byte ranges
//!   ([`get`]).
//!
//! Every refusal is an [`S3Error`] in S3's XML body, as a storage client expects.

mod conditional;
mod form_post;
mod form_stream;
mod get;
mod multipart;
mod put;

use pingora::proxy::Session;

use crate::http_io::reply::X_AMZ_REQUEST_ID;
use crate::http_io::{send, Reply};
use crate::request_id::RequestId;
use crate::s3_error::S3Error;
use crate::sigv4::{verify_presigned, PresignedRequest};

use super::context::RouteContext;
use super::request_info::RequestInfo;

/// `POST {bucket}/`: a form upload to the local store.
pub(crate) async fn handle_bucket(
    ctx: &RouteContext,
    session: &mut Session,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    let rid = info.assign_request_id();
    let path = session.req_header().uri.path().to_string();
    let reply = match (session.req_header().method == http::Method::POST, ctx.storage.local()) {
        (true, Some(store)) => form_post::post_form(ctx, store, session, rid).await,
        _ => Err(S3Error::METHOD_NOT_ALLOWED),
    };
    let reply = reply.unwrap_or_else(|e| Reply::s3(&e, &path, rid));
    send(session, reply.request_id(X_AMZ_REQUEST_ID, rid), &ctx.cors, origin).await
}

/// `key` is the decoded key from the route, `None` when the path names no valid key.
pub(crate) async fn handle(
    ctx: &RouteContext,
    session: &mut Session,
    key: Option<String>,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    let rid = info.assign_request_id();
    let path = session.req_header().uri.path().to_string();
    let reply = match key {
        None => Err(S3Error::INVALID_KEY),
        Some(key) => answer(ctx, session, &key, rid).await,
    };
    match reply {
        Ok(Some(reply)) => send(session, reply.request_id(X_AMZ_REQUEST_ID, rid), &ctx.cors, origin).await,
        // Already streamed.
        Ok(None) => Ok(()),
        Err(e) => {
            let reply = Reply::s3(&e, &path, rid).request_id(X_AMZ_REQUEST_ID, rid);
            send(session, reply, &ctx.cors, origin).await
        }
    }
}

/// The reply to send, `None` when the response was already streamed, or the refusal.
async fn answer(
    ctx: &RouteContext,
    session: &mut Session,
    key: &str,
    rid: RequestId,
) -> Result<Option<Reply>, S3Error> {
    let local = ctx.storage.local();
    match (session.req_header().method.as_str(), local) {
        ("PUT", Some(store)) if put::is_upload_part(session) => {
            put::put_part(ctx, store, session, key, rid).await.map(Some)
        }
        ("PUT", Some(store)) => put::put_object(ctx, store, session, key, rid).await.map(Some),
        ("POST", _) => multipart::post_object(ctx, session, key, rid).await.map(Some),
        ("GET" | "HEAD", Some(store)) => get::serve_object(ctx, store, session, key, rid).await,
        _ => Err(S3Error::METHOD_NOT_ALLOWED),
    }
}

/// Verify the presigned URL of this request for `method`.
fn verify_url(ctx: &RouteContext, session: &Session, method: &str) -> Result<(), S3Error> {
    let req = session.req_header();
    let raw_query = req.uri.query().unwrap_or("");
    if !raw_query.contains("X-Amz-Signature") && !raw_query.contains("X-Amz-Credential") {
        return Err(S3Error::ACCESS_DENIED);
    }
    // HTTP/2 carries the host as `:authority`, which S3 signs as `host`.
    let with_host;
    let headers = match req.uri.authority() {
        Some(a) if !req.headers.contains_key(http::header::HOST) => {
            let mut h = req.headers.clone();
            let host = http::HeaderValue::from_str(a.as_str()).map_err(|_| S3Error::ACCESS_DENIED)?;
            h.insert(http::header::HOST, host);
            with_host = h;
            &with_host
        }
        _ => &req.headers,
    };
    let pre = PresignedRequest { method, raw_path: req.uri.path(), raw_query, headers };
    verify_presigned(&ctx.storage.gateway_signer, &pre, crate::clock::now()).map(drop).map_err(|e| e.to_s3())
}

/// Our fault: logged with the request id, answered as S3's InternalError.
fn internal(rid: RequestId, key: &str, detail: impl std::fmt::Display) -> S3Error {
    log::error!("{rid} store {key}: {detail}");
    S3Error::INTERNAL
}
