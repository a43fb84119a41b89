//! [`BaseUrl`]: the scheme and authority URLs are built on, and the one place a host and a
//! port are joined into an authority.

use std::borrow::Cow;

/// The scheme and authority URLs are built on, e.g. `http` + `127.0.0.1:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub scheme: Cow<'static, str>,
    pub authority: String,
}

impl BaseUrl {
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_url(&url::Url::parse(s).ok()?)
    }

    /// The scheme and `host[:port]` of a parsed URL (the port only when it is not the
    /// scheme's default, as the URL parser reports it).
    pub fn from_url(u: &url::Url) -> Option<Self> {
        let host = u.host_str()?;
        let authority = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        Some(Self { scheme: Cow::Owned(u.scheme().to_string()), authority })
    }

    /// From the request's Host header (or HTTP/2 `:authority`): exactly the authority the
    /// client used, on the scheme it reached us by.
    pub fn from_host(host: &str, https: bool) -> Option<Self> {
        let ok = !host.is_empty()
            && host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
        let scheme = Cow::Borrowed(if https { "https" } else { "http" });
        ok.then(|| Self { scheme, authority: host.to_ascii_lowercase() })
    }

    /// `scheme://authority` followed by `path`, given in pieces, in one allocation.
    pub fn join(&self, path: &[&str]) -> String {
        let len = self.scheme.len() + 3 + self.authority.len() + path.iter().map(|p| p.len()).sum::<usize>();
        let mut url = String::with_capacity(len);
        for part in [&*self.scheme, "://", &self.authority].into_iter().chain(path.iter().copied()) {
            url.push_str(part);
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_keeps_only_a_non_default_port() {
        assert_eq!(BaseUrl::parse("https://a.test:443").unwrap().authority, "a.test");
        assert_eq!(BaseUrl::parse("http://a.test:8080").unwrap().authority, "a.test:8080");
        assert_eq!(BaseUrl::parse("http://[::1]:9000").unwrap().authority, "[::1]:9000");
        assert!(BaseUrl::from_host("a b", false).is_none());
        let b = BaseUrl::from_host("127.0.0.1:8080", false).unwrap();
        assert_eq!(b.join(&["/files", "/", "k.png"]), "http://127.0.0.1:8080/files/k.png");
        let tls = BaseUrl::from_host("Edge.test", true).unwrap();
        assert_eq!(tls.join(&["/k"]), "https://edge.test/k");
    }
}
