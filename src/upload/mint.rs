//! The shared core of every mint route: request → policy → key → signed URL.
//!
//! Dialects only parse their body into a [`MintInput`] and render a [`Minted`]; the rules
//! about keys, namespaces and what gets signed live here once.

use time::OffsetDateTime;

use crate::config::MAX_FILE_SIZE;
use crate::content_type::extension_for;
use crate::decimal::{push_padded, Decimal};
use crate::store::{BaseUrl, Storage};
use crate::upload::auth::Caller;
use crate::upload::object_key::{date_parts, push_random_token};

/// The cap on one upload: the pages' 100 MB, or the store's own limit when lower.
pub fn size_cap(storage: &Storage) -> u64 {
    storage.max_upload_bytes.min(MAX_FILE_SIZE)
}

/// How the object key is laid out; each dialect keeps the shape its page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStyle {
    /// `{ns}/{yyyy}/{mm}/{dd}/{token}-{stem}.{ext}` (API Mall, Ctxfy)
    Dated,
    /// `{prefix}/{yyyymmdd}-{token}.{ext}` (OctopusX)
    Compact,
    /// `{ns}/assets/{asset_id}.{ext}` (memories)
    Asset,
}

/// How the client will upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMethod {
    /// A presigned PUT, to the store directly.
    Put,
    /// A multipart/form-data POST with a `file` field, to the gateway.
    MultipartPost,
}

/// A validated mint request, dialect-independent.
#[derive(Debug, Clone)]
pub struct MintInput {
    /// Cleaned filename stem and extension.
    pub stem: String,
    pub ext: Option<String>,
    pub content_type: String,
    /// Declared size; when present it is signed, so the store refuses any other size.
    pub size: Option<u64>,
    pub expires_in: u32,
    /// Validated prefix inside the caller's namespace (OctopusX).
    pub prefix: Option<String>,
    pub key_style: KeyStyle,
    pub method: UploadMethod,
    /// The file's SHA-256, base64 as S3 writes it: signed as `x-amz-checksum-sha256`, so the
    /// store refuses any other bytes.
    pub checksum_sha256: Option<String>,
    /// Sign `If-None-Match: *`: the URL creates its object once and never replaces it.
    pub create_only: bool,
    /// The dialect minting, signed into a local-store PUT URL for the upload's event.
    pub dialect: Option<&'static str>,
}

/// The result every dialect renders.
#[derive(Debug, Clone)]
pub struct Minted {
    pub upload_url: String,
    pub key: String,
    pub public_url: String,
    pub expires_in: u32,
    pub content_type: String,
    /// The cap for this upload: the page's 100 MB, or the store's limit when lower.
    pub max_file_size: u64,
    /// memories' `re_<digits>` id.
    pub asset_id: Option<String>,
}

/// memories-style asset id: `re_` and 18 digits.
pub fn new_asset_id() -> String {
    let n: u64 =
        rand::Rng::gen_range(&mut rand::thread_rng(), 100_000_000_000_000_000..1_000_000_000_000_000_000);
    format!("re_{n}")
}

/// Build the object key for a caller, written into one string.
pub fn build_key(input: &MintInput, caller: &Caller, now: OffsetDateTime, asset_id: Option<&str>) -> String {
    let ext = input.ext.as_deref().or_else(|| extension_for(&input.content_type));
    let (y, m, d) = date_parts(now);
    let mut key = String::with_capacity(64 + input.stem.len() + input.prefix.as_ref().map_or(0, String::len));
    match (input.key_style, &input.prefix) {
        (KeyStyle::Compact, Some(prefix)) => key.push_str(prefix),
        _ => caller.push_namespace(&mut key),
    }
    key.push('/');
    match input.key_style {
        KeyStyle::Dated => {
            for (n, width) in [(y as u64, 4), (u64::from(m), 2), (u64::from(d), 2)] {
                push_padded(&mut key, n, width);
                key.push('/');
            }
            push_random_token(&mut key);
            if !input.stem.is_empty() {
                key.push('-');
                key.push_str(&input.stem);
            }
        }
        KeyStyle::Compact => {
            push_padded(&mut key, y as u64, 4);
            push_padded(&mut key, u64::from(m), 2);
            push_padded(&mut key, u64::from(d), 2);
            key.push('-');
            push_random_token(&mut key);
        }
        KeyStyle::Asset => {
            key.push_str("assets/");
            match asset_id {
                Some(id) => key.push_str(id),
                None => push_random_token(&mut key),
            }
        }
    }
    if let Some(e) = ext {
        key.push('.');
        key.push_str(e);
    }
    key
}

/// Mint the URLs for a validated request.
pub fn mint(
    storage: &Storage,
    base: &BaseUrl,
    caller: &Caller,
    input: &MintInput,
    now: OffsetDateTime,
) -> Minted {
    let asset_id = (input.key_style == KeyStyle::Asset).then(new_asset_id);
    let key = build_key(input, caller, now, asset_id.as_deref());
    let upload_url = match input.method {
        UploadMethod::Put => {
            let len = input.size.map(Decimal::new);
            // At most four signed headers, gathered without allocating.
            let mut headers: [(&str, &str); 4] = [("", ""); 4];
            let mut n = 0;
            if let Some(len) = &len {
                headers[n] = ("content-length", len.as_str());
                n += 1;
            }
            headers[n] = ("content-type", input.content_type.as_str());
            n += 1;
            if let Some(sum) = &input.checksum_sha256 {
                headers[n] = ("x-amz-checksum-sha256", sum.as_str());
                n += 1;
            }
            if input.create_only {
                headers[n] = ("if-none-match", "*");
                n += 1;
            }
            storage.presign_put(base, &key, &headers[..n], input.dialect, input.expires_in, now)
        }
        // The multipart body's boundary is unknown at mint time, so only host is signed.
        UploadMethod::MultipartPost => {
            storage.presign_gateway(base, "POST", &key, &[], input.expires_in, now)
        }
    };
    Minted {
        public_url: storage.public_url(base, &key),
        upload_url,
        key,
        expires_in: input.expires_in,
        content_type: input.content_type.clone(),
        max_file_size: size_cap(storage),
        asset_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_and_unique() {
        let caller = Caller::new("k", 12);
        let now = time::macros::datetime!(2026-05-19 10:00 UTC);
        let input = MintInput {
            stem: "cover".into(),
            ext: Some("png".into()),
            content_type: "image/png".into(),
            size: Some(1),
            expires_in: 900,
            prefix: None,
            key_style: KeyStyle::Dated,
            method: UploadMethod::Put,
            checksum_sha256: None,
            create_only: false,
            dialect: None,
        };
        let a = build_key(&input, &caller, now, None);
        assert!(a.starts_with("uploads/user/12/2026/05/19/"), "{a}");
        assert!(a.ends_with("-cover.png"), "{a}");
        assert_ne!(a, build_key(&input, &caller, now, None));
        let compact = MintInput { key_style: KeyStyle::Compact, ..input.clone() };
        let c = build_key(&compact, &caller, now, None);
        assert!(c.starts_with("uploads/user/12/20260519-") && c.ends_with(".png"), "{c}");
        let asset = MintInput { key_style: KeyStyle::Asset, ext: Some("mp4".into()), ..input };
        assert_eq!(build_key(&asset, &caller, now, Some("re_1")), "uploads/user/12/assets/re_1.mp4");
        let id = new_asset_id();
        assert!(id.starts_with("re_") && id.len() == 21 && id[3..].bytes().all(|b| b.is_ascii_digit()));
    }
}
