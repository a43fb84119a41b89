//! Ctxfy: `POST /v1/upload/s3`.
//!
//! Success (bare): `{uploadUrl, publicUrl, fileKey}`.
//! Errors: `{error, message, code, details:[{field,message}]}` for 400; 401 with the page's
//! fixed message; 500 adds `requestId`.

use serde_json::{json, Value};

use crate::config::MAX_FILE_SIZE;
use crate::content_type::{is_acceptable_content_type, is_lone_token};
use crate::dialect::fields::{invalid, Fields};
use crate::dialect::json_out::Obj;
use crate::upload::complete::{CompleteFields, CompleteOutcome};
use crate::upload::error::ApiError;
use crate::upload::mint::{KeyStyle, MintInput, Minted, UploadMethod};
use crate::upload::object_key::check_filename;

pub fn parse(body: &[u8]) -> Result<MintInput, ApiError> {
    let f = Fields::parse(body)?;
    let filename = f.req_str("filename")?;
    let content_type = f.req_str("contentType")?;
    let size = f.req_i64("size")?;
    let (stem, ext) = check_filename("filename", filename)?;
    // Ctxfy is a general file API, so any well-formed type is taken except those a browser
    // would execute from our origin; and its page's own example type, "example_string", a
    // lone token (signed as sent, stored as application/octet-stream).
    if !(is_acceptable_content_type(content_type) || is_lone_token(content_type)) {
        return Err(invalid("contentType", "is not an allowed content type"));
    }
    if !(1..=MAX_FILE_SIZE as i64).contains(&size) {
        return Err(invalid("size", &format!("must be an integer from 1 to {MAX_FILE_SIZE}")));
    }
    Ok(MintInput {
        stem,
        ext,
        content_type: content_type.to_string(),
        size: Some(size as u64),
        expires_in: 900,
        prefix: None,
        key_style: KeyStyle::Dated,
        method: UploadMethod::Put,
        checksum_sha256: f.opt_checksum_sha256("checksumSha256")?,
        create_only: false,
        dialect: None,
    })
}

/// The completion route's names: the key as the mint answers it, the rest as it asks.
pub const COMPLETE: CompleteFields = CompleteFields {
    key: "fileKey",
    size: "size",
    content_type: "contentType",
    checksum_sha256: "checksumSha256",
    etag: "etag",
    event_id: "eventId",
};

/// Completion success (bare, as the mint's).
pub fn render_completed(o: &CompleteOutcome) -> Value {
    COMPLETE.render(o)
}

pub fn render_success(m: &Minted) -> String {
    let mut out = String::with_capacity(128 + 2 * m.upload_url.len());
    Obj::new(&mut out)
        .str("uploadUrl", &m.upload_url)
        .str("publicUrl", &m.public_url)
        .str("fileKey", &m.key)
        .end();
    out
}

pub fn render_error(e: &ApiError, request_id: &str) -> Value {
    match e.status() {
        400 => {
            let field = e.field().unwrap_or("body");
            json!({
                "error": "Bad Request",
                "message": "The request contains invalid parameters or malformed data",
                "code": 400,
                "details": [{ "field": field, "message": e.message() }],
            })
        }
        401 => json!({
            "error": "Unauthorized",
            "message": "Authentication required. Please provide a valid API token",
            "code": 401,
        }),
        500 => json!({
            "error": "Internal Server Error",
            "message": "An unexpected error occurred on the server",
            "code": 500,
            "requestId": request_id,
        }),
        s => match e.field() {
            Some(field) => json!({
                "error": reason_phrase(s),
                "message": e.message(),
                "code": s,
                "details": [{ "field": field, "message": e.message() }],
            }),
            None => json!({ "error": reason_phrase(s), "message": e.message(), "code": s }),
        },
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
