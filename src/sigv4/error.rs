//! [`VerifyError`]: why a presigned request was refused, mapped to S3's error code,
//! message and HTTP status, and rendered as S3's XML error body.

use std::borrow::Cow;
use std::fmt;

use crate::s3_error::S3Error;

/// Why [`crate::sigv4::verify_presigned`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `X-Amz-*` authentication parameter at all.
    MissingAuthentication,
    /// A malformed, missing, duplicated or out-of-range `X-Amz-*` parameter; the message
    /// says which.
    QueryParameters(String),
    /// The credential names an access key id we do not sign with.
    InvalidAccessKeyId,
    /// The session token is missing, unexpected or different from ours.
    InvalidToken,
    /// `now` is past `X-Amz-Date + X-Amz-Expires`.
    Expired,
    /// `X-Amz-Date` is further in the future than the allowed clock skew.
    NotYetValid,
    /// A header named in `X-Amz-SignedHeaders` is absent from the request.
    MissingSignedHeader(String),
    /// The path is not valid percent-encoding.
    InvalidUri,
    /// The signature is well-formed but wrong.
    SignatureDoesNotMatch,
}

impl VerifyError {
    /// S3's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthentication
            | Self::Expired
            | Self::NotYetValid
            | Self::MissingSignedHeader(_) => "AccessDenied",
            Self::QueryParameters(_) => "AuthorizationQueryParametersError",
            Self::InvalidAccessKeyId => "InvalidAccessKeyId",
            Self::InvalidToken => "InvalidToken",
            Self::InvalidUri => "InvalidURI",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
        }
    }

    /// S3's message.
    pub fn message(&self) -> &str {
        match self {
            Self::MissingAuthentication => {
                "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
            }
            Self::QueryParameters(message) => message,
            Self::InvalidAccessKeyId => {
                "The AWS Access Key Id you provided does not exist in our records."
            }
            Self::InvalidToken => "The provided token is malformed or otherwise invalid.",
            Self::Expired => "Request has expired",
            Self::NotYetValid => "Request is not yet valid",
            Self::MissingSignedHeader(message) => message,
            Self::InvalidUri => "Couldn't parse the specified URI.",
            Self::SignatureDoesNotMatch => {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method."
            }
        }
    }

    /// The HTTP status S3 answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::QueryParameters(_) | Self::InvalidToken | Self::InvalidUri => 400,
            Self::MissingAuthentication
            | Self::InvalidAccessKeyId
            | Self::Expired
            | Self::NotYetValid
            | Self::MissingSignedHeader(_)
            | Self::SignatureDoesNotMatch => 403,
        }
    }

    /// This error as S3 answers it.
    pub(crate) fn to_s3(&self) -> S3Error {
        S3Error { status: self.status(), code: self.code(), message: Cow::Owned(self.message().to_owned()) }
    }

    /// S3's XML error body for this error on `resource` (e.g. `/bucket/key`).
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        self.to_s3().to_xml(resource, request_id)
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for VerifyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_body_is_s3_shaped_and_escaped() {
        let xml = VerifyError::Expired.to_xml("/b/a&b<c>", "req-1");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
             <Message>Request has expired</Message><Resource>/b/a&amp;b&lt;c&gt;</Resource>\
             <RequestId>req-1</RequestId></Error>"
        );
    }
}
