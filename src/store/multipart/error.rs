//! [`MultipartError`]: why a multipart operation was refused, each with S3's answer.

use std::fmt;

use crate::s3_error::S3Error;
use crate::store::StoreError;

/// Why a multipart operation was refused. All but [`MultipartError::Store`] are the client's
/// doing and answered as S3 would; `Store` is ours (a 500, logged by the route).
#[derive(Debug)]
pub enum MultipartError {
    /// No such upload for this key (never created, expired, aborted or completed).
    NoSuchUpload,
    /// A listed part is missing or its ETag does not match; the detail says which.
    InvalidPart(String),
    /// The listed part numbers are not strictly ascending.
    InvalidPartOrder,
    /// A part other than the last is under [`super::MIN_PART_SIZE`].
    EntityTooSmall,
    /// A part over [`super::MAX_PART_SIZE`], or the parts together over the caller's cap.
    EntityTooLarge,
    /// A part number outside 1..=10000.
    InvalidPartNumber,
    /// A CompleteMultipartUpload body that is not the XML S3 expects; the detail says why.
    MalformedXml(String),
    /// The store failed (disk, S3 unreachable or answering an unexpected error).
    Store(StoreError),
}

impl MultipartError {
    /// S3's code, status and message for this refusal.
    pub fn to_s3(&self) -> S3Error {
        match self {
            MultipartError::NoSuchUpload => S3Error::NO_SUCH_UPLOAD,
            MultipartError::InvalidPart(_) => S3Error::INVALID_PART,
            MultipartError::InvalidPartOrder => S3Error::INVALID_PART_ORDER,
            MultipartError::EntityTooSmall => S3Error::ENTITY_TOO_SMALL,
            MultipartError::EntityTooLarge => S3Error::MULTIPART_TOO_LARGE,
            MultipartError::InvalidPartNumber => S3Error::INVALID_PART_NUMBER,
            MultipartError::MalformedXml(_) => S3Error::MALFORMED_XML,
            MultipartError::Store(_) => S3Error::INTERNAL,
        }
    }
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::InvalidPart(detail) => write!(f, "InvalidPart: {detail}"),
            MultipartError::MalformedXml(detail) => write!(f, "MalformedXML: {detail}"),
            MultipartError::Store(e) => write!(f, "store: {e}"),
            other => {
                let s3 = other.to_s3();
                write!(f, "{}: {}", s3.code, s3.message)
            }
        }
    }
}

impl std::error::Error for MultipartError {}

impl From<StoreError> for MultipartError {
    fn from(e: StoreError) -> Self {
        MultipartError::Store(e)
    }
}

impl From<std::io::Error> for MultipartError {
    fn from(e: std::io::Error) -> Self {
        MultipartError::Store(StoreError::Io(e))
    }
}

impl From<crate::store::SpoolError> for MultipartError {
    fn from(e: crate::store::SpoolError) -> Self {
        MultipartError::Store(e.into())
    }
}
