//! [`UploadEvent`]: what the application is told when an object is committed, and its JSON.
//!
//! ```json
//! {"id":"evt_…","type":"upload.completed","time":"2026-12-01T08:00:00Z",
//!  "data":{"key":"uploads/user/12/…","size":5,"content_type":"image/png","etag":"\"…\"",
//!          "checksum_sha256":"…","user_id":12,"namespace":"uploads/user/12",
//!          "dialect":"apimall","source":"put","request_id":"req_…"}}
//! ```

use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The `dialect` of uploads made through a browser upload session (Companion routes).
pub const UPLOAD_SESSION: &str = "upload_session";

/// The one event type the gateway sends.
pub const UPLOAD_COMPLETED: &str = "upload.completed";

/// One `upload.completed` event, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEvent {
    /// `evt_` + 26 base32 characters: 128 bits, the receiver's deduplication key.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// When the gateway recorded the event, RFC 3339 UTC.
    pub time: String,
    pub data: UploadData,
}

/// The object the event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadData {
    pub key: String,
    pub size: u64,
    pub content_type: String,
    /// Quoted, as S3 writes it.
    pub etag: String,
    /// Base64, as S3 writes it; only when the upload carried one the store checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_sha256: Option<String>,
    /// The id of `uploads/user/{id}/`, the namespace the key lives in.
    pub user_id: Option<u64>,
    pub namespace: Option<String>,
    /// Which API minted the upload: `apimall`, `octopusx`, `memories`, `ctxfy`, or
    /// `upload_session` (a browser session); `None` for a local PUT URL minted before
    /// URLs carried it.
    pub dialect: Option<String>,
    /// How the object arrived (see [`Source`]).
    pub source: String,
    /// The request that committed (or, in S3 mode, completed) the object.
    pub request_id: String,
}

/// How an object arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A presigned PUT to the local store.
    Put,
    /// A browser form POST to the local store.
    FormPost,
    /// memories' multipart POST, stored or relayed by the gateway.
    Relay,
    /// API Mall's from-url.
    FromUrl,
    /// A multipart upload's complete.
    Multipart,
    /// The completion route (S3 mode: the gateway checked the bucket).
    Completion,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Put => "put",
            Source::FormPost => "form_post",
            Source::Relay => "relay",
            Source::FromUrl => "from_url",
            Source::Multipart => "multipart",
            Source::Completion => "completion",
        }
    }
}

const BASE32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `evt_` + the 128 bits of `bits` in 26 lowercase Crockford base32 characters.
pub fn event_id_from(bits: [u8; 16]) -> String {
    let v = u128::from_be_bytes(bits);
    let mut id = String::with_capacity(30);
    id.push_str("evt_");
    for i in (0..26).rev() {
        id.push(char::from(BASE32[((v >> (5 * i)) & 0x1F) as usize]));
    }
    id
}

/// A fresh random event id.
pub fn new_event_id() -> String {
    let mut bits = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bits);
    event_id_from(bits)
}

/// `uploads/user/{id}` of a key, and the id.
pub fn namespace_of(key: &str) -> Option<(u64, &str)> {
    let rest = key.strip_prefix("uploads/user/")?;
    let digits = rest.split('/').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() == digits.len() {
        return None;
    }
    let id = digits.parse().ok()?;
    Some((id, &key[..("uploads/user/".len() + digits.len())]))
}

/// RFC 3339 UTC with second precision, e.g. `2026-12-01T08:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A committed object, as the route that committed it knows it.
#[derive(Debug, Clone, Copy)]
pub struct Committed<'a> {
    pub key: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub etag: &'a str,
    pub checksum_sha256: Option<&'a str>,
    pub dialect: Option<&'a str>,
    pub source: Source,
    pub request_id: &'a str,
}

impl UploadEvent {
    /// A new `upload.completed` event at `now`; the namespace comes from the key.
    pub fn completed(id: String, now: OffsetDateTime, c: &Committed<'_>) -> Self {
        let ns = namespace_of(c.key);
        UploadEvent {
            id,
            kind: UPLOAD_COMPLETED.into(),
            time: rfc3339(now),
            data: UploadData {
                key: c.key.into(),
                size: c.size,
                content_type: c.content_type.into(),
                etag: c.etag.into(),
                checksum_sha256: c.checksum_sha256.map(str::to_owned),
                user_id: ns.map(|(id, _)| id),
                namespace: ns.map(|(_, n)| n.to_owned()),
                dialect: c.dialect.map(str::to_owned),
                source: c.source.as_str().into(),
                request_id: c.request_id.into(),
            },
        }
    }

    /// The JSON body, exactly as it is signed and sent (every attempt sends these bytes).
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bits_of_base32() {
        let a = new_event_id();
        assert_eq!(a.len(), 30);
        assert!(a.starts_with("evt_") && a[4..].bytes().all(|b| BASE32.contains(&b)), "{a}");
        assert_ne!(a, new_event_id());
        assert_eq!(event_id_from([0; 16]), format!("evt_{}", "0".repeat(26)));
        assert_eq!(event_id_from([0xff; 16]), format!("evt_7{}", "z".repeat(25)));
    }

    #[test]
    fn namespace_comes_from_the_key() {
        assert_eq!(namespace_of("uploads/user/12/2026/a.png"), Some((12, "uploads/user/12")));
        assert_eq!(namespace_of("uploads/user/12"), None);
        assert_eq!(namespace_of("uploads/user/x/a.png"), None);
        assert_eq!(namespace_of("uploads/user//a.png"), None);
        assert_eq!(namespace_of("other/12/a.png"), None);
    }

    #[test]
    fn json_has_the_documented_shape() {
        let now = time::macros::datetime!(2026-12-01 08:00:05 UTC);
        let c = Committed {
            key: "uploads/user/12/a.png",
            size: 5,
            content_type: "image/png",
            etag: "\"abc\"",
            checksum_sha256: None,
            dialect: Some("apimall"),
            source: Source::Put,
            request_id: "req_1",
        };
        let e = UploadEvent::completed("evt_x".into(), now, &c);
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"evt_x","type":"upload.completed","time":"2026-12-01T08:00:05Z",
                "data":{"key":"uploads/user/12/a.png","size":5,"content_type":"image/png","etag":"\"abc\"",
                "user_id":12,"namespace":"uploads/user/12","dialect":"apimall","source":"put","request_id":"req_1"}})
        );
        let back: UploadEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
