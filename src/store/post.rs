//! Form uploads (S3's POST with a policy): where the form goes and what it carries.

use time::OffsetDateTime;

use crate::sigv4::{PostPolicyRequest, PresignedPost};

use super::{Backend, BaseUrl, Storage};

/// A form upload the browser can send as it is.
pub struct FormUpload {
    /// The bucket's URL, ending in `/`: the form goes here, and this plus the key is the
    /// object's URL.
    pub url: String,
    pub post: PresignedPost,
}

impl Storage {
    /// The bucket name clients see: the S3 bucket, or the local store's public path
    /// without its slash (`files`).
    pub fn bucket_name(&self) -> &str {
        match &self.backend {
            Backend::Local(_) => self.gateway_path.trim_start_matches('/'),
            Backend::S3(s3) => s3.bucket(),
        }
    }

    /// A presigned form upload of `key` of at most `max_size` bytes.
    pub fn presign_post(
        &self,
        base: &BaseUrl,
        key: &str,
        content_type: &str,
        max_size: u64,
        expires_in: u32,
        now: OffsetDateTime,
    ) -> FormUpload {
        let req = PostPolicyRequest {
            bucket: self.bucket_name(),
            key,
            content_type,
            content_length_range: (0, max_size),
            expires_in,
            fields: &[("success_action_status", "201")],
        };
        match &self.backend {
            Backend::Local(_) => FormUpload {
                url: base.join(&[&self.gateway_path, "/"]),
                post: self.gateway_signer.presign_post(&req, now),
            },
            Backend::S3(s3) => FormUpload { url: s3.post_url(), post: s3.signer.presign_post(&req, now) },
        }
    }
}
