//! S3 multipart uploads: create, presigned part URLs, list, complete, abort.
//!
//! The same rules hold whichever the backend ([`rules`]), so a client sees one behaviour:
//! part numbers 1..=10000, parts listed in ascending order with their ETags, every part but
//! the last at least 5 MiB, the whole at most the caller's cap.
//!
//! - Local store ([`local`]): uploads under `root/multipart/<uploadId>/`, parts received by
//!   the gateway's own part route (PUT with `partNumber` and `uploadId`), assembled by
//!   kernel copies on complete.
//! - S3 ([`s3`]): the bucket's own multipart API, header-signed; part URLs point straight at
//!   the bucket, so no part byte passes through the gateway.

mod assemble;
mod error;
mod in_place;
mod local;
mod rules;
mod s3;
mod xml;

pub use error::MultipartError;
pub(crate) use local::LocalUploads;
pub(crate) use local::PartSink;
pub use rules::{MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE};
pub(crate) use s3::head as head_s3;
pub use xml::parse_complete_request;

use time::OffsetDateTime;

use super::{Backend, BaseUrl, ObjectMeta, Storage};
use crate::decimal::Decimal;
use crate::sigv4::PresignRequest;

/// One uploaded part, as ListParts reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    /// Quoted, `"<hex md5>"` (S3's form). Empty when an S3-compatible store's ListParts
    /// did not report it (s3s-fs does not; AWS S3 always does).
    pub etag: String,
    pub size: u64,
}

impl Storage {
    /// Start a multipart upload of `key`; the object will have `content_type` and at most
    /// `max_size` bytes. The local store refuses a part that would take its parts past it
    /// (`EntityTooLarge`) as it arrives, and forgets the upload (and its parts) after
    /// `expires_at`; an S3 bucket cannot refuse early, so there the cap holds at `complete`,
    /// and it keeps the upload until its own lifecycle rule (AbortIncompleteMultipartUpload)
    /// removes it.
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        expires_at: OffsetDateTime,
        max_size: u64,
    ) -> Result<String, MultipartError> {
        match &self.backend {
            Backend::Local(l) => l.create_upload(key, content_type, expires_at, max_size).await,
            Backend::S3(s3) => s3::create(s3, key, content_type).await,
        }
    }

    /// A presigned PUT of part `part_number` of `upload_id`: on the gateway (local store) or
    /// straight at the bucket (S3). Only `host` is signed; the query carries `partNumber`
    /// then `uploadId`, botocore's order.
    pub fn presign_part(
        &self,
        base: &BaseUrl,
        key: &str,
        upload_id: &str,
        part_number: u32,
        expires_in: u32,
        now: OffsetDateTime,
    ) -> String {
        let n = Decimal::new(u64::from(part_number));
        // boto3's order (uploadId, then partNumber), so our part URLs equal its byte for byte.
        let query = [("uploadId", upload_id), ("partNumber", n.as_str())];
        match &self.backend {
            Backend::Local(_) => {
                let path = format!("{}/{key}", self.gateway_path);
                let req = PresignRequest {
                    method: "PUT",
                    scheme: &base.scheme,
                    host: &base.authority,
                    path: &path,
                    expires_in,
                    headers: &[],
                };
                self.gateway_signer.presign_url_with_query(&req, &query, now)
            }
            Backend::S3(s3) => {
                let path = s3.object_path(key);
                let req = PresignRequest {
                    method: "PUT",
                    scheme: s3.scheme(),
                    host: s3.host(),
                    path: &path,
                    expires_in,
                    headers: &[],
                };
                s3.signer.presign_url_with_query(&req, &query, now)
            }
        }
    }

    /// The parts uploaded so far, by ascending part number.
    pub async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<PartInfo>, MultipartError> {
        match &self.backend {
            Backend::Local(l) => l.list_upload_parts(key, upload_id).await,
            Backend::S3(s3) => s3::list_parts(s3, key, upload_id).await,
        }
    }

    /// Make the listed parts the object `key`.
    ///
    /// `parts`: (PartNumber, ETag with or without quotes) as the client sent them.
    /// `max_size`: refuse (EntityTooLarge) when the parts add up to more; the upload is then
    /// aborted, so nothing of it stays stored. Any other refusal leaves the upload as it was,
    /// for the client to complete with a corrected list.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        max_size: u64,
    ) -> Result<ObjectMeta, MultipartError> {
        rules::check_request(parts)?;
        match &self.backend {
            Backend::Local(l) => l.complete_upload(key, upload_id, parts, max_size).await,
            Backend::S3(s3) => s3::complete(s3, key, upload_id, parts, max_size).await,
        }
    }

    /// Drop the upload and every part of it.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), MultipartError> {
        match &self.backend {
            Backend::Local(l) => l.abort_upload(key, upload_id).await,
            Backend::S3(s3) => s3::abort(s3, key, upload_id).await,
        }
    }
}
