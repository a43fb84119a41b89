//! memories: `POST /serve/api/v2/upload/signed-url`, raw key in `Authorization`.
//!
//! Success: `{code:200, msg:"success", data:{asset_id,signed_url,expires_in}, success:true, failed:false}`.
//! Error: `{code:<status>, msg, data:null, success:false, failed:true}`.
//! The upload itself is a multipart POST of a `file` field to `signed_url` (the gateway).

use serde_json::{json, Value};

use crate::content_type::content_type_for;
use crate::dialect::fields::{invalid, Fields};
use crate::dialect::json_out::Obj;
use crate::upload::error::ApiError;
use crate::upload::mint::{KeyStyle, MintInput, Minted, UploadMethod};
use crate::upload::object_key::check_filename;

/// The page's documented lifetime.
pub const EXPIRES_IN: u32 = 93_600;

pub fn parse(body: &[u8]) -> Result<MintInput, ApiError> {
    let f = Fields::parse(body)?;
    let name = f.req_str("original_filename")?;
    let (stem, ext) = check_filename("original_filename", name)?;
    let ext = ext.ok_or_else(|| invalid("original_filename", "must have an extension (e.g. video.mp4)"))?;
    let content_type = content_type_for(&ext)
        .ok_or_else(|| invalid("original_filename", "must be an image, video or audio file"))?;
    Ok(MintInput {
        stem,
        ext: Some(ext),
        content_type: content_type.to_string(),
        size: None,
        expires_in: EXPIRES_IN,
        prefix: None,
        key_style: KeyStyle::Asset,
        method: UploadMethod::MultipartPost,
        checksum_sha256: None,
        create_only: false,
        dialect: None,
    })
}

pub fn render_success(m: &Minted) -> String {
    let mut out = String::with_capacity(192 + m.upload_url.len());
    let mut o = Obj::new(&mut out);
    o.num("code", 200).str("msg", "success");
    o.obj("data")
        .str("asset_id", m.asset_id.as_deref().unwrap_or(""))
        .str("signed_url", &m.upload_url)
        .num("expires_in", u64::from(m.expires_in))
        .end();
    o.bool("success", true).bool("failed", false).end();
    out
}

pub fn render_error(e: &ApiError) -> Value {
    json!({ "code": e.status(), "msg": e.message(), "data": null, "success": false, "failed": true })
}
