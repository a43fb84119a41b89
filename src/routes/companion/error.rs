//! [`CompanionError`]: why a Companion route refused, as Companion answers it: a status and
//! `{"error": "..."}`. Uppy shows only the status text, so the reason also goes to the log
//! with the request id.

use crate::http_io::Reply;
use crate::request_id::RequestId;
use crate::s3_error::S3Error;
use crate::store::MultipartError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CompanionError {
    /// 400: a missing or malformed parameter; the text says which.
    BadRequest(String),
    /// 401: the session token is not one we issued, or was edited.
    InvalidToken,
    /// 401: the session is over.
    ExpiredToken,
    /// 403: a key or type outside the session, or its file count spent.
    Forbidden(String),
    /// 404: no such route, or no such multipart upload.
    NotFound(String),
    /// 405.
    MethodNotAllowed,
    /// 413: a file over the session's size.
    TooLarge(String),
    /// The store refused; its status and code go through.
    Store(S3Error),
    /// 500: our fault; the detail is logged, never sent.
    Internal(String),
}

impl CompanionError {
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::InvalidToken | Self::ExpiredToken => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed => 405,
            Self::TooLarge(_) => 413,
            Self::Store(e) => e.status,
            Self::Internal(_) => 500,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(m) | Self::Forbidden(m) | Self::NotFound(m) | Self::TooLarge(m) => m.clone(),
            Self::InvalidToken => "s3: the upload session token is invalid".into(),
            Self::ExpiredToken => "s3: the upload session has expired".into(),
            Self::MethodNotAllowed => "s3: method not allowed on this route".into(),
            Self::Store(e) => format!("s3: {}: {}", e.code, e.message),
            Self::Internal(_) => "s3: internal error".into(),
        }
    }

    /// The answer, logged once here with the request id.
    pub fn reply(&self, rid: RequestId) -> Reply {
        match self {
            Self::Internal(detail) => log::error!("{rid} companion: {detail}"),
            Self::Store(e) if e.status >= 500 => {
                log::warn!("{rid} companion: store: {} {}", e.code, e.message)
            }
            other => log::info!("{rid} companion: {} {}", other.status(), other.message()),
        }
        Reply::json(self.status(), &serde_json::json!({ "error": self.message() }))
    }
}

impl From<MultipartError> for CompanionError {
    fn from(e: MultipartError) -> Self {
        match e {
            MultipartError::NoSuchUpload => Self::NotFound(
                "s3: NoSuchUpload: The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.".into(),
            ),
            MultipartError::EntityTooLarge => {
                Self::TooLarge("s3: EntityTooLarge: the parts add up to more than the session allows".into())
            }
            MultipartError::Store(s) => Self::Internal(s.to_string()),
            other => Self::Store(other.to_s3()),
        }
    }
}
