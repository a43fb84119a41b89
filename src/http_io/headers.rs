//! Reading the request's headers.

use pingora::proxy::Session;

/// A request header as bytes, looked up by a typed name (no parsing or hashing of a string
/// name per lookup).
pub fn header_bytes(session: &Session, name: http::header::HeaderName) -> Option<&[u8]> {
    session.req_header().headers.get(name).map(|v| v.as_bytes())
}

/// The Host header, or the authority of an absolute-form request target.
pub fn request_host(session: &Session) -> Option<&str> {
    let req = session.req_header();
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
}

/// `host` without its port (`[::1]:80` → `[::1]`).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &host[..=h.len()]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.test:8080"), "a.test");
        assert_eq!(strip_port("a.test"), "a.test");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
