//! API Mall: `POST /api/v1/files/upload-url` and the envelope shared with `from-url`.
//!
//! Success: `{success:true, data:{upload_url,key,public_url,expires_in,max_file_size,content_type}, request_id}`.
//! Error: `{success:false, error:{code,message,details}, request_id}`.

use serde_json::{json, Value};

use crate::config::MAX_FILE_SIZE;
use crate::content_type::is_media_type;
use crate::dialect::fields::{invalid, Fields};
use crate::dialect::json_out::Obj;
use crate::upload::complete::{CompleteFields, CompleteOutcome};
use crate::upload::error::ApiError;
use crate::upload::mint::{KeyStyle, MintInput, Minted, UploadMethod};
use crate::upload::object_key::check_filename;

pub fn parse(body: &[u8]) -> Result<MintInput, ApiError> {
    let f = Fields::parse(body)?;
    let filename = f.req_str("filename")?;
    let content_type = f.req_str("content_type")?;
    let file_size = f.req_i64("file_size")?;
    let expires_in = f.opt_i64("expires_in")?.unwrap_or(900);
    let (stem, ext) = check_filename("filename", filename)?;
    if !is_media_type(content_type) {
        return Err(ApiError::UnsupportedContentType);
    }
    if !(1..=MAX_FILE_SIZE as i64).contains(&file_size) {
        return Err(ApiError::InvalidFileSize { max: MAX_FILE_SIZE });
    }
    if !(60..=3600).contains(&expires_in) {
        return Err(invalid("expires_in", "must be between 60 and 3600"));
    }
    Ok(MintInput {
        stem,
        ext,
        content_type: content_type.to_string(),
        size: Some(file_size as u64),
        expires_in: expires_in as u32,
        prefix: None,
        key_style: KeyStyle::Dated,
        method: UploadMethod::Put,
        checksum_sha256: f.opt_checksum_sha256("checksum_sha256")?,
        create_only: false,
        dialect: None,
    })
}

pub fn render_success(m: &Minted, request_id: &str) -> String {
    let mut out = String::with_capacity(256 + 2 * m.upload_url.len());
    let mut o = Obj::new(&mut out);
    o.bool("success", true);
    o.obj("data")
        .str("upload_url", &m.upload_url)
        .str("key", &m.key)
        .str("public_url", &m.public_url)
        .num("expires_in", u64::from(m.expires_in))
        .num("max_file_size", m.max_file_size)
        .str("content_type", &m.content_type)
        .end();
    o.str("request_id", request_id).end();
    out
}

/// `from-url` success: `{success, data:{url,key,content_type,file_size}, request_id}`.
pub fn render_stored(url: &str, key: &str, content_type: &str, file_size: u64, request_id: &str) -> Value {
    json!({
        "success": true,
        "data": { "url": url, "key": key, "content_type": content_type, "file_size": file_size },
        "request_id": request_id,
    })
}

/// The completion route's names: the key as the mint answers it, the rest as it asks.
pub const COMPLETE: CompleteFields = CompleteFields {
    key: "key",
    size: "file_size",
    content_type: "content_type",
    checksum_sha256: "checksum_sha256",
    etag: "etag",
    event_id: "event_id",
};

/// Completion success: `{success, data:{event_id,key,file_size,content_type,etag}, request_id}`.
pub fn render_completed(o: &CompleteOutcome, request_id: &str) -> Value {
    json!({ "success": true, "data": COMPLETE.render(o), "request_id": request_id })
}

pub fn render_error(e: &ApiError, request_id: &str) -> Value {
    let details = match e {
        // The page's own example: "Unsupported content_type" with the size cap in details.
        ApiError::UnsupportedContentType => json!({ "max_file_size": MAX_FILE_SIZE }),
        ApiError::InvalidFileSize { max } => json!({ "max_file_size": max }),
        ApiError::FetchFailed { status: Some(s) } => json!({ "status": s }),
        ApiError::RateLimited { retry_after_secs } => json!({ "retry_after": retry_after_secs }),
        ApiError::BodyTooLarge { limit } => json!({ "max_body_size": limit }),
        _ => match e.field() {
            Some(field) => json!({ "field": field }),
            None => json!({}),
        },
    };
    json!({
        "success": false,
        "error": { "code": e.code(), "message": e.message(), "details": details },
        "request_id": request_id,
    })
}
