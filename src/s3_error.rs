//! [`S3Error`]: one error of the S3 API, as a storage client expects it: an HTTP status, an
//! S3 error code, a message, and S3's XML error body.
//!
//! Both the signature verifier and the gateway's object routes answer with it, so every S3
//! error leaves the gateway through [`S3Error::to_xml`] and its one escaper.

use std::borrow::Cow;

/// One S3 error: status, code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: Cow<'static, str>,
}

impl S3Error {
    const fn fixed(status: u16, code: &'static str, message: &'static str) -> Self {
        Self { status, code, message: Cow::Borrowed(message) }
    }

    pub const ACCESS_DENIED: Self = Self::fixed(403, "AccessDenied", "Access Denied");
    pub const INVALID_KEY: Self = Self::fixed(400, "InvalidArgument", "Invalid object key");
    pub const METHOD_NOT_ALLOWED: Self =
        Self::fixed(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    pub const MISSING_CONTENT_LENGTH: Self =
        Self::fixed(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
    pub const ENTITY_TOO_LARGE: Self =
        Self::fixed(413, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
    pub const BODY_LONGER_THAN_DECLARED: Self =
        Self::fixed(400, "IncompleteBody", "The body is larger than the Content-Length");
    pub const BODY_CUT_OFF: Self = Self::fixed(400, "IncompleteBody", "The request body was cut off");
    /// S3's answer to a body that stalls (here also: one below the minimum rate).
    pub const REQUEST_TIMEOUT: Self = Self::fixed(
        400,
        "RequestTimeout",
        "Your socket connection to the server was not read from or written to within the timeout period.",
    );
    pub const BODY_SHORTER_THAN_DECLARED: Self = Self::fixed(
        400,
        "IncompleteBody",
        "You did not provide the number of bytes specified by the Content-Length HTTP header",
    );
    pub const NOT_MULTIPART: Self =
        Self::fixed(400, "InvalidArgument", "POST requires multipart/form-data with a file field");
    pub const NO_FILE_FIELD: Self =
        Self::fixed(400, "InvalidArgument", "POST requires a form field named file");
    pub const EMPTY_FILE_FIELD: Self = Self::fixed(400, "InvalidArgument", "The file field is empty");
    /// A declared Content-Type outside the store's policy (`content_type.rs`).
    pub const INVALID_CONTENT_TYPE: Self =
        Self::fixed(400, "InvalidArgument", "The Content-Type is not a type this store accepts");
    pub const NO_SUCH_KEY: Self = Self::fixed(404, "NoSuchKey", "The specified key does not exist.");
    pub const INVALID_RANGE: Self =
        Self::fixed(416, "InvalidRange", "The requested range is not satisfiable");
    // Multipart uploads, with S3's statuses and messages.
    pub const PRECONDITION_FAILED: Self = Self::fixed(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    );
    pub const CONDITIONAL_NOT_IMPLEMENTED: Self = Self::fixed(
        501,
        "NotImplemented",
        "A header you provided implies functionality that is not implemented: If-None-Match takes only *",
    );
    pub const BAD_DIGEST: Self =
        Self::fixed(400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.");
    pub const INVALID_CHECKSUM: Self =
        Self::fixed(400, "InvalidRequest", "Value for x-amz-checksum-sha256 header is invalid.");
    pub const UNEXPECTED_QUERY: Self = Self::fixed(
        400,
        "InvalidArgument",
        "This URL signs an object upload; it carries no other query parameters.",
    );
    pub const NO_SUCH_UPLOAD: Self = Self::fixed(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been \
         aborted or completed.",
    );
    pub const INVALID_PART: Self = Self::fixed(
        400,
        "InvalidPart",
        "One or more of the specified parts could not be found. The part may not have been uploaded, or \
         the specified entity tag may not match the part's entity tag.",
    );
    pub const INVALID_PART_ORDER: Self = Self::fixed(
        400,
        "InvalidPartOrder",
        "The list of parts was not in ascending order. The parts list must be specified in order by part \
         number.",
    );
    pub const ENTITY_TOO_SMALL: Self = Self::fixed(
        400,
        "EntityTooSmall",
        "Your proposed upload is smaller than the minimum allowed object size.",
    );
    /// A multipart object (or one part) over the limit: S3 answers these with 400, not 413.
    pub const MULTIPART_TOO_LARGE: Self =
        Self::fixed(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.");
    pub const INVALID_PART_NUMBER: Self =
        Self::fixed(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
    pub const MALFORMED_XML: Self = Self::fixed(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    );
    pub const INTERNAL: Self =
        Self::fixed(500, "InternalError", "We encountered an internal error. Please try again.");

    /// A multipart body that could not be parsed; `detail` says where.
    pub fn malformed_post(detail: &str) -> Self {
        Self {
            status: 400,
            code: "MalformedPOSTRequest",
            message: Cow::Owned(format!(
                "The body of your POST request is not well-formed multipart/form-data: {detail}"
            )),
        }
    }

    /// S3's XML error body for this error on `resource` (e.g. `/bucket/key`).
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        push_escaped(&mut xml, self.code);
        xml.push_str("</Code><Message>");
        push_escaped(&mut xml, &self.message);
        xml.push_str("</Message><Resource>");
        push_escaped(&mut xml, resource);
        xml.push_str("</Resource><RequestId>");
        push_escaped(&mut xml, request_id);
        xml.push_str("</RequestId></Error>");
        xml
    }
}

/// XML character-data escaping (the five predefined entities). The one escaper of the XML
/// the gateway writes, S3 error bodies and the requests it sends to a store alike.
pub(crate) fn push_escaped(out: &mut String, s: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_body_is_s3_shaped_and_escaped() {
        let xml = S3Error::malformed_post("<b>&'").to_xml("/b/a&b<c>", "req-1");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>MalformedPOSTRequest</Code>\
             <Message>The body of your POST request is not well-formed multipart/form-data: \
             &lt;b&gt;&amp;&apos;</Message><Resource>/b/a&amp;b&lt;c&gt;</Resource>\
             <RequestId>req-1</RequestId></Error>"
        );
    }
}
