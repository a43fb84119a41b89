//! [`StoreError`]: why a store could not keep an object.

use std::fmt;

use super::spool::SpoolError;

/// Why committing (or spooling) an object failed. Every variant is the gateway's fault or
/// the store's, never the client's: the routes answer it as a 500 and log it.
#[derive(Debug)]
pub enum StoreError {
    /// The key is not one the gateway could have minted.
    UnsafeKey,
    /// The local disk failed (full, permissions, ...).
    Io(std::io::Error),
    /// The S3 store could not be reached or did not finish answering.
    Unreachable(String),
    /// The S3 store answered with an error status.
    Refused { status: u16, body: String },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::UnsafeKey => f.write_str("unsafe key"),
            StoreError::Io(e) => write!(f, "disk: {e}"),
            StoreError::Unreachable(e) => write!(f, "S3 PUT failed: {e}"),
            StoreError::Refused { status, body } => write!(f, "S3 PUT answered {status}: {body}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<SpoolError> for StoreError {
    fn from(e: SpoolError) -> Self {
        match e {
            SpoolError::Io(e) => StoreError::Io(e),
            SpoolError::TooLarge => StoreError::Io(std::io::Error::other("metadata larger than its spool")),
        }
    }
}
