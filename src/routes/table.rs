//! Which requests the upload routes answer, decided from the path alone.
//!
//! Classification is a handful of string comparisons, so pass-through traffic pays almost
//! nothing for the upload routes sitting in front of it.

use crate::dialect::Dialect;

/// API Mall's upload-from-URL route.
pub const FROM_URL_PATH: &str = "/api/v1/files/from-url";
/// Where an application's backend opens a browser upload session.
pub const UPLOAD_SESSIONS_PATH: &str = "/v1/upload-sessions";
/// Where the Companion routes of each session live: `/uppy/{token}/s3/...`.
pub const COMPANION_PREFIX: &str = "/uppy/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// Not ours: stream to the origin untouched.
    Passthrough,
    /// A mint route of an enabled dialect.
    Mint(Dialect),
    /// `POST {mint path}/complete` of an enabled dialect.
    Complete(Dialect),
    /// API Mall from-url.
    FromUrl,
    /// Under the gateway's upload/object path; the raw (still encoded) key.
    Object(&'a str),
    /// The local store's bucket itself (`/files` or `/files/`): form uploads.
    Bucket,
    /// `POST /v1/upload-sessions`.
    UploadSessions,
    /// A Companion route; the path after `/uppy/` (token, then `/s3/...`).
    Companion(&'a str),
}

/// The enabled routes.
#[derive(Debug, Clone)]
pub struct RouteTable {
    pub dialects: Vec<Dialect>,
    pub from_url: bool,
    /// e.g. `/files` (local store) or `/_gateway/upload` (relay for S3).
    pub object_path: String,
    /// Whether `object_path` is a bucket that takes form uploads (the local store).
    pub bucket: bool,
    /// Upload sessions and their Companion routes.
    pub upload_sessions: bool,
}

impl RouteTable {
    pub fn classify<'a>(&self, path: &'a str) -> Route<'a> {
        for d in &self.dialects {
            if path == d.path() {
                return Route::Mint(*d);
            }
        }
        if path.ends_with("/complete") {
            if let Some(d) = self.dialects.iter().find(|d| d.completion_path() == Some(path)) {
                return Route::Complete(*d);
            }
        }
        if self.from_url && path == FROM_URL_PATH {
            return Route::FromUrl;
        }
        if let Some(rest) = path.strip_prefix(self.object_path.as_str()) {
            if self.bucket && (rest.is_empty() || rest == "/") {
                return Route::Bucket;
            }
            if let Some(key) = rest.strip_prefix('/') {
                return Route::Object(key);
            }
        }
        if self.upload_sessions {
            if path == UPLOAD_SESSIONS_PATH {
                return Route::UploadSessions;
            }
            if let Some(rest) = path.strip_prefix(COMPANION_PREFIX) {
                return Route::Companion(rest);
            }
        }
        Route::Passthrough
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_routes() {
        let t = RouteTable {
            dialects: vec![Dialect::ApiMall, Dialect::Memories],
            from_url: true,
            object_path: "/files".into(),
            bucket: true,
            upload_sessions: true,
        };
        assert_eq!(t.classify("/api/v1/files/upload-url"), Route::Mint(Dialect::ApiMall));
        assert_eq!(t.classify("/serve/api/v2/upload/signed-url"), Route::Mint(Dialect::Memories));
        assert_eq!(t.classify("/api/upload/presign"), Route::Passthrough, "octopusx disabled");
        assert_eq!(t.classify("/api/v1/files/upload-url/complete"), Route::Complete(Dialect::ApiMall));
        assert_eq!(t.classify("/api/upload/presign/complete"), Route::Passthrough, "octopusx disabled");
        assert_eq!(
            t.classify("/serve/api/v2/upload/signed-url/complete"),
            Route::Passthrough,
            "none for memories"
        );
        assert_eq!(t.classify("/api/v1/files/from-url"), Route::FromUrl);
        assert_eq!(t.classify("/files/a/b.png"), Route::Object("a/b.png"));
        assert_eq!(t.classify("/filesx/a"), Route::Passthrough);
        assert_eq!(t.classify("/files"), Route::Bucket);
        assert_eq!(t.classify("/files/"), Route::Bucket);
        assert_eq!(t.classify("/v1/upload-sessions"), Route::UploadSessions);
        assert_eq!(t.classify("/v1/upload-sessions/"), Route::Passthrough);
        assert_eq!(t.classify("/uppy/tok/s3/params"), Route::Companion("tok/s3/params"));
        assert_eq!(t.classify("/uppyx/tok"), Route::Passthrough);
        assert_eq!(t.classify("/api/v1/files/upload-url/"), Route::Passthrough);
        assert_eq!(t.classify("/"), Route::Passthrough);
    }
}
