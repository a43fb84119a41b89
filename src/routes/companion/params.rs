//! `GET /s3/params`: a presigned form POST for one small file, and the key it gets.

use pingora::proxy::Session;

use crate::content_type::{extension_for, is_acceptable_content_type};
use crate::upload::object_key::{check_filename, push_random_token};

use super::{Call, CompanionError};

/// Longest life of a form upload's policy, in seconds.
const FORM_EXPIRES_SECS: u32 = 3600;

pub(super) fn params(call: &Call<'_>, session: &Session) -> Result<serde_json::Value, CompanionError> {
    let filename = call.param("filename").unwrap_or_default();
    let content_type = call.param("type").unwrap_or_else(|| "application/octet-stream".into());
    let key = new_key(call, &filename, &content_type)?;
    let storage = &call.ctx.storage;
    let max = call.grant.max_file_size.min(storage.max_upload_bytes);
    let base =
        call.ctx.base_url(session).map_err(|e| CompanionError::BadRequest(format!("s3: {}", e.message())))?;
    let expires = call.remaining_secs().min(FORM_EXPIRES_SECS);
    let form = storage.presign_post(&base, &key, &content_type, max, expires, call.now);
    let fields: serde_json::Map<String, serde_json::Value> =
        form.post.fields.into_iter().map(|(n, v)| (n, v.into())).collect();
    log::debug!("{} companion: form upload of {key}", call.rid);
    Ok(serde_json::json!({ "method": "POST", "url": form.url, "fields": fields, "expires": expires }))
}

/// The checks every new file passes (name, type, the session's file count), then its key:
/// `{session prefix}{random}-{stem}.{ext}`.
pub(super) fn new_key(call: &Call<'_>, filename: &str, content_type: &str) -> Result<String, CompanionError> {
    let (stem, ext) = check_filename("filename", filename)
        .map_err(|e| CompanionError::BadRequest(format!("s3: {}", e.message())))?;
    if !is_acceptable_content_type(content_type) {
        return Err(CompanionError::BadRequest(format!("s3: content type {content_type:?} is not accepted")));
    }
    if !call.grant.allows_type(content_type) {
        return Err(CompanionError::Forbidden(format!(
            "s3: content type {content_type:?} is not allowed in this upload session"
        )));
    }
    if !call.sessions.start_file(call.grant, call.now.unix_timestamp()) {
        return Err(CompanionError::Forbidden(format!(
            "s3: this upload session has already started its {} files",
            call.grant.max_files
        )));
    }
    let ext = ext.or_else(|| extension_for(content_type).map(str::to_owned));
    let mut key = call.grant.key_prefix();
    push_random_token(&mut key);
    if !stem.is_empty() {
        key.push('-');
        key.push_str(&stem);
    }
    if let Some(ext) = ext {
        key.push('.');
        key.push_str(&ext);
    }
    Ok(key)
}
