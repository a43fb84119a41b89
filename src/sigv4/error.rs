//! [`VerifyError`]: why a presigned request was refused, mapped to S3's error code,
//! message and HTTP status, and rendered as S3's XML error body.

use std::fmt;

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

    /// S3's XML error body for this error on `resource` (e.g. `/bucket/key`).
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        push_escaped(&mut xml, self.code());
        xml.push_str("</Code><Message>");
        push_escaped(&mut xml, self.message());
        xml.push_str("</Message><Resource>");
        push_escaped(&mut xml, resource);
        xml.push_str("</Resource><RequestId>");
        push_escaped(&mut xml, request_id);
        xml.push_str("</RequestId></Error>");
        xml
    }
}

/// XML character-data escaping.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
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
