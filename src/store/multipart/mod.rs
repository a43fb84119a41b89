//! STUB until the multipart-store branch is merged (the interface only).
use super::{BaseUrl, ObjectMeta, Storage, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
}

#[derive(Debug)]
pub enum MultipartError {
    NoSuchUpload,
    InvalidPart(String),
    InvalidPartOrder,
    EntityTooSmall,
    EntityTooLarge,
    InvalidPartNumber,
    MalformedXml(String),
    Store(StoreError),
}

impl MultipartError {
    pub fn to_s3(&self) -> crate::s3_error::S3Error {
        crate::s3_error::S3Error::INTERNAL
    }
}

impl Storage {
    pub async fn create_multipart(
        &self,
        _key: &str,
        _ct: &str,
        _exp: time::OffsetDateTime,
    ) -> Result<String, MultipartError> {
        Err(MultipartError::NoSuchUpload)
    }
    pub fn presign_part(
        &self,
        base: &BaseUrl,
        key: &str,
        upload_id: &str,
        n: u32,
        expires_in: u32,
        now: time::OffsetDateTime,
    ) -> String {
        let _ = (base, key, upload_id, n, expires_in, now);
        String::new()
    }
    pub async fn list_parts(&self, _key: &str, _id: &str) -> Result<Vec<PartInfo>, MultipartError> {
        Err(MultipartError::NoSuchUpload)
    }
    pub async fn complete_multipart(
        &self,
        _key: &str,
        _id: &str,
        _parts: &[(u32, String)],
        _max: u64,
    ) -> Result<ObjectMeta, MultipartError> {
        Err(MultipartError::NoSuchUpload)
    }
    pub async fn abort_multipart(&self, _key: &str, _id: &str) -> Result<(), MultipartError> {
        Err(MultipartError::NoSuchUpload)
    }
}
