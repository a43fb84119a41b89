//! The one error type of the upload routes.
//!
//! Every failure on a mint or from-url route is an [`ApiError`]; each dialect turns it into
//! its own envelope in `dialect::render_error`, so status codes and messages are decided here
//! once and the wire shapes live beside each dialect.

use std::fmt;

/// What went wrong, independent of any dialect's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No credentials, or credentials in the wrong style for the dialect.
    MissingApiKey,
    /// Credentials present but unknown.
    InvalidApiKey,
    /// The request reached an upload route on a host that is not a gateway host.
    NonGatewayHost,
    /// The body is not JSON, or not the object the dialect expects.
    MalformedBody(String),
    /// A field failed validation.
    InvalidField { field: &'static str, message: String },
    /// The content type is not image/*, video/* or audio/*.
    UnsupportedContentType,
    /// The declared size is outside 1..=max.
    InvalidFileSize { max: u64 },
    /// The request body exceeded its cap.
    BodyTooLarge { limit: usize },
    /// Too many requests or concurrent jobs for this key.
    RateLimited { retry_after_secs: u64 },
    /// from-url: the source could not be fetched (status set when it answered with one).
    FetchFailed { status: Option<u16> },
    /// from-url: the destination is not a public address (no detail, by design).
    DestinationBlocked,
    /// Delegated auth: the application's endpoint gave no answer in time (fail closed).
    AuthUnavailable,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The key named is not in the caller's namespace (`field` is the dialect's name for it).
    KeyOutsideNamespace { field: &'static str },
    /// No object is stored under the key named.
    ObjectNotFound,
    /// The stored object differs from what the request says (size, type or checksum).
    ObjectMismatch { field: &'static str, message: String },
    /// Anything on our side.
    Internal(String),
}

impl ApiError {
    /// HTTP status, the same for every dialect.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::MissingApiKey | ApiError::InvalidApiKey => 401,
            ApiError::NonGatewayHost | ApiError::KeyOutsideNamespace { .. } => 403,
            ApiError::ObjectNotFound => 404,
            ApiError::ObjectMismatch { .. } => 409,
            ApiError::MalformedBody(_)
            | ApiError::InvalidField { .. }
            | ApiError::UnsupportedContentType
            | ApiError::InvalidFileSize { .. }
            | ApiError::FetchFailed { .. }
            | ApiError::DestinationBlocked => 400,
            ApiError::MethodNotAllowed => 405,
            ApiError::BodyTooLarge { .. } => 413,
            ApiError::RateLimited { .. } => 429,
            ApiError::Internal(_) => 500,
            ApiError::AuthUnavailable => 503,
        }
    }

    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::InvalidField { field, .. }
            | ApiError::KeyOutsideNamespace { field }
            | ApiError::ObjectMismatch { field, .. } => Some(field),
            ApiError::UnsupportedContentType => Some("content_type"),
            ApiError::InvalidFileSize { .. } => Some("file_size"),
            ApiError::FetchFailed { .. } | ApiError::DestinationBlocked => Some("url"),
            _ => None,
        }
    }

    /// A short machine code (API Mall's `error.code`; also used in logs).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingApiKey | ApiError::InvalidApiKey => "unauthorized",
            ApiError::NonGatewayHost | ApiError::KeyOutsideNamespace { .. } => "forbidden",
            ApiError::ObjectNotFound => "not_found",
            ApiError::ObjectMismatch { .. } => "conflict",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::BodyTooLarge { .. } => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal_error",
            ApiError::AuthUnavailable => "service_unavailable",
            _ => "invalid_request",
        }
    }

    /// A human message. Internal details are never sent to clients.
    pub fn message(&self) -> String {
        match self {
            ApiError::MissingApiKey => "API key required".into(),
            ApiError::InvalidApiKey => "Invalid API key".into(),
            ApiError::NonGatewayHost => "Request made on a non-gateway host".into(),
            ApiError::MalformedBody(m) => format!("Malformed request body: {m}"),
            ApiError::InvalidField { message, .. } => message.clone(),
            ApiError::UnsupportedContentType => "Unsupported content_type".into(),
            ApiError::InvalidFileSize { max } => {
                format!("file_size must be an integer from 1 to {max}")
            }
            ApiError::BodyTooLarge { limit } => {
                format!("Request body exceeds the {limit}-byte limit")
            }
            ApiError::MethodNotAllowed => "Method not allowed; use POST".into(),
            ApiError::KeyOutsideNamespace { field } => {
                format!("{field} is not in this API key's namespace")
            }
            ApiError::ObjectNotFound => "No object is stored under this key".into(),
            ApiError::ObjectMismatch { field, message } => format!("{field} differs: {message}"),
            ApiError::RateLimited { .. } => "Rate limit exceeded".into(),
            ApiError::FetchFailed { .. } => "Failed to fetch source url".into(),
            ApiError::DestinationBlocked => {
                "Failed to fetch source url: destination is not a public address".into()
            }
            ApiError::Internal(_) => "Internal server error".into(),
            ApiError::AuthUnavailable => "Authentication service unavailable; retry later".into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Internal(detail) => write!(f, "internal error: {detail}"),
            other => f.write_str(&other.message()),
        }
    }
}

impl std::error::Error for ApiError {}
