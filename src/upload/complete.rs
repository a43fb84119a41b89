//! The completion route's request and answer, dialect-independent: `POST {mint path}/complete`
//! names an object the caller uploaded; the gateway checks it in the store and reports it.
//!
//! Each dialect names the fields as its own mint does ([`CompleteFields`]): the key as its
//! mint answer calls it, the size and type as its mint request does.

use serde_json::{Map, Value};

use crate::dialect::fields::{invalid, Fields};
use crate::upload::error::ApiError;

/// A dialect's names for the completion's fields.
#[derive(Debug, Clone, Copy)]
pub struct CompleteFields {
    pub key: &'static str,
    pub size: &'static str,
    pub content_type: &'static str,
    pub checksum_sha256: &'static str,
    pub etag: &'static str,
    pub event_id: &'static str,
}

/// What the caller says it uploaded; every field but the key is optional, and each given
/// one must match the stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteInput {
    pub key: String,
    pub size: Option<u64>,
    pub content_type: Option<String>,
    pub checksum_sha256: Option<String>,
}

/// The object as the store holds it, and the event recorded for it (S3 mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteOutcome {
    pub key: String,
    pub size: u64,
    pub content_type: String,
    pub etag: String,
    pub checksum_sha256: Option<String>,
    /// `None` on the local store, whose commit already recorded the event.
    pub event_id: Option<String>,
}

impl CompleteFields {
    pub fn parse(&self, body: &[u8]) -> Result<CompleteInput, ApiError> {
        let f = Fields::parse(body)?;
        let key = f.req_str(self.key)?.to_owned();
        let size = match f.opt_i64(self.size)? {
            Some(n) if n < 0 => return Err(invalid(self.size, "must be a non-negative integer")),
            Some(n) => Some(n as u64),
            None => None,
        };
        Ok(CompleteInput {
            key,
            size,
            content_type: f.opt_str(self.content_type)?.map(str::to_owned),
            checksum_sha256: f.opt_checksum_sha256(self.checksum_sha256)?,
        })
    }

    /// The answer's object, under this dialect's names.
    pub fn render(&self, o: &CompleteOutcome) -> Value {
        let mut m = Map::new();
        m.insert(self.event_id.into(), o.event_id.clone().map_or(Value::Null, Value::String));
        m.insert(self.key.into(), o.key.clone().into());
        m.insert(self.size.into(), o.size.into());
        m.insert(self.content_type.into(), o.content_type.clone().into());
        m.insert(self.etag.into(), o.etag.clone().into());
        if let Some(sum) = &o.checksum_sha256 {
            m.insert(self.checksum_sha256.into(), sum.clone().into());
        }
        Value::Object(m)
    }
}

/// The first way `stored` differs from what the caller said: (field, message).
pub fn mismatch(
    fields: &CompleteFields,
    input: &CompleteInput,
    size: u64,
    content_type: &str,
    checksum_sha256: Option<&str>,
) -> Option<ApiError> {
    let differs = |field: &'static str, message: String| Some(ApiError::ObjectMismatch { field, message });
    if let Some(want) = input.size {
        if want != size {
            return differs(fields.size, format!("the stored object has {size} bytes, not {want}"));
        }
    }
    if let Some(want) = &input.content_type {
        if !want.trim().eq_ignore_ascii_case(content_type.trim()) {
            return differs(
                fields.content_type,
                format!("the stored object is {content_type:?}, not {want:?}"),
            );
        }
    }
    if let Some(want) = &input.checksum_sha256 {
        match checksum_sha256 {
            Some(have) if have == want => {}
            Some(have) => {
                return differs(
                    fields.checksum_sha256,
                    format!("the stored object's SHA-256 is {have}, not {want}"),
                )
            }
            None => {
                return differs(fields.checksum_sha256, "the store keeps no SHA-256 for this object".into())
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: CompleteFields = CompleteFields {
        key: "fileKey",
        size: "size",
        content_type: "contentType",
        checksum_sha256: "checksumSha256",
        etag: "etag",
        event_id: "eventId",
    };

    #[test]
    fn parses_and_compares_under_the_dialects_names() {
        let i = F.parse(br#"{"fileKey":"k","size":5,"contentType":"image/png"}"#).unwrap();
        assert_eq!(i.size, Some(5));
        assert!(mismatch(&F, &i, 5, "IMAGE/PNG", None).is_none());
        let e = mismatch(&F, &i, 6, "image/png", None).unwrap();
        assert_eq!(e.field(), Some("size"));
        assert_eq!(e.status(), 409);
        assert_eq!(mismatch(&F, &i, 5, "image/gif", None).unwrap().field(), Some("contentType"));
        assert_eq!(F.parse(br#"{"size":5}"#).unwrap_err().field(), Some("fileKey"));
        assert_eq!(F.parse(br#"{"fileKey":"k","size":-1}"#).unwrap_err().field(), Some("size"));
        let sum = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let i = F.parse(format!(r#"{{"fileKey":"k","checksumSha256":"{sum}"}}"#).as_bytes()).unwrap();
        assert!(mismatch(&F, &i, 0, "x", Some(sum)).is_none());
        assert_eq!(mismatch(&F, &i, 0, "x", None).unwrap().field(), Some("checksumSha256"));
    }
}
