//! CORS for browser uploads: exact configured origins only, never a wildcard.

use http::header;
use pingora::http::ResponseHeader;

/// Allowed origins, compared exactly.
#[derive(Debug, Default, Clone)]
pub struct Cors {
    origins: Vec<String>,
}

/// Methods a browser may use on our routes.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
/// Headers a browser's script may read from our answers.
const EXPOSE_HEADERS: &str = "ETag, X-Request-Id";
/// Headers a browser may send; covers the JSON mint calls and S3-style uploads.
const ALLOW_HEADERS: &str =
    "authorization, content-type, x-amz-date, x-amz-content-sha256, x-amz-security-token, x-amz-checksum-sha256, if-none-match, x-requested-with";

impl Cors {
    pub fn new(origins: &[String]) -> Self {
        Self { origins: origins.to_vec() }
    }

    /// The request's Origin, if it is allowed.
    pub fn allowed<'a>(&self, origin: Option<&'a [u8]>) -> Option<&'a str> {
        let o = std::str::from_utf8(origin?).ok()?;
        self.origins.iter().any(|a| a == o).then_some(o)
    }

    /// Add the headers of an actual (non-preflight) response.
    pub fn decorate(&self, h: &mut ResponseHeader, origin: Option<&str>) -> pingora::Result<()> {
        if let Some(o) = origin {
            h.insert_header(header::ACCESS_CONTROL_ALLOW_ORIGIN, o)?;
            h.insert_header(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS)?;
            h.append_header(header::VARY, "Origin")?;
        }
        Ok(())
    }

    /// Add the headers of a preflight answer.
    pub fn decorate_preflight(&self, h: &mut ResponseHeader, origin: &str) -> pingora::Result<()> {
        self.decorate(h, Some(origin))?;
        h.insert_header(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS)?;
        h.insert_header(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS)?;
        h.insert_header(header::ACCESS_CONTROL_MAX_AGE, "600")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_origins() {
        let c = Cors::new(&["http://a.test:3000".to_string()]);
        assert_eq!(c.allowed(Some(b"http://a.test:3000")), Some("http://a.test:3000"));
        assert_eq!(c.allowed(Some(b"http://a.test:3000.evil")), None);
        assert_eq!(c.allowed(Some(b"null")), None);
        assert_eq!(c.allowed(None), None);
        assert_eq!(Cors::default().allowed(Some(b"http://a.test:3000")), None);
    }
}
