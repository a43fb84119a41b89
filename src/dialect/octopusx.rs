//! OctopusX: `POST /api/upload/presign`.
//!
//! Success: `{success:true, message:"", data:{method:"PUT",upload_url,object_key,public_url,expires_in,content_type}}`.
//! Error: `{success:false, message, data:null}`.

use serde_json::{json, Value};

use crate::content_type::{extension_for, is_media_type};
use crate::dialect::fields::{invalid, Fields};
use crate::dialect::json_out::Obj;
use crate::upload::auth::Caller;
use crate::upload::complete::{CompleteFields, CompleteOutcome};
use crate::upload::error::ApiError;
use crate::upload::mint::{KeyStyle, MintInput, Minted, UploadMethod};
use crate::upload::object_key::{check_filename, check_prefix};

pub fn parse(body: &[u8], caller: &Caller) -> Result<MintInput, ApiError> {
    let f = Fields::parse(body)?;
    let file_name = f.opt_str("file_name")?;
    let content_type = f.req_str("content_type")?;
    // The page: "automatically constrains it between 60 and 3600", default 900.
    let expires_in = f.opt_i64("expires_in")?.unwrap_or(900).clamp(60, 3600) as u32;
    let prefix = f.opt_str("prefix")?;
    if !is_media_type(content_type) {
        return Err(invalid("content_type", "must be an image/*, video/* or audio/* type"));
    }
    // The key is derived from the extension only; the name may be omitted.
    let ext = match file_name {
        Some(n) => check_filename("file_name", n)?.1,
        None => None,
    }
    .or_else(|| extension_for(content_type).map(str::to_string));
    let prefix = match prefix {
        Some(p) => Some(check_prefix(p, &caller.namespace())?),
        None => None,
    };
    Ok(MintInput {
        stem: String::new(),
        ext,
        content_type: content_type.to_string(),
        size: None,
        expires_in,
        prefix,
        key_style: KeyStyle::Compact,
        method: UploadMethod::Put,
        checksum_sha256: f.opt_checksum_sha256("checksum_sha256")?,
        create_only: false,
        dialect: None,
    })
}

pub fn render_success(m: &Minted) -> String {
    let mut out = String::with_capacity(256 + 2 * m.upload_url.len());
    let mut o = Obj::new(&mut out);
    o.bool("success", true).str("message", "");
    o.obj("data")
        .str("method", "PUT")
        .str("upload_url", &m.upload_url)
        .str("object_key", &m.key)
        .str("public_url", &m.public_url)
        .num("expires_in", u64::from(m.expires_in))
        .str("content_type", &m.content_type)
        .end();
    o.end();
    out
}

/// The completion route's names: the key as the mint answers it (`object_key`); its mint
/// takes no size, so `size`.
pub const COMPLETE: CompleteFields = CompleteFields {
    key: "object_key",
    size: "size",
    content_type: "content_type",
    checksum_sha256: "checksum_sha256",
    etag: "etag",
    event_id: "event_id",
};

/// Completion success: `{success:true, message:"", data:{event_id,object_key,size,...}}`.
pub fn render_completed(o: &CompleteOutcome) -> Value {
    json!({ "success": true, "message": "", "data": COMPLETE.render(o) })
}

pub fn render_error(e: &ApiError) -> Value {
    json!({ "success": false, "message": e.message(), "data": null })
}
