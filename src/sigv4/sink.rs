//! Where canonical text goes: into a `String` (to show or send it) or straight into a hash
//! or MAC (to sign it), so the signing path never copies the canonical request.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A destination for canonical text.
pub trait Sink {
    /// Appends `s`.
    fn put(&mut self, s: &str);
}

impl Sink for String {
    #[inline]
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl Sink for Sha256 {
    #[inline]
    fn put(&mut self, s: &str) {
        Digest::update(self, s.as_bytes());
    }
}

impl Sink for Hmac<Sha256> {
    #[inline]
    fn put(&mut self, s: &str) {
        Mac::update(self, s.as_bytes());
    }
}

/// A sink that percent-encodes everything written to it as a query component
/// (RFC 3986 unreserved characters kept, everything else `%XX`), e.g. to put
/// `content-type;host` into a URL as `content-type%3Bhost`.
pub struct EncodeComponent<'s, S: Sink + ?Sized>(pub &'s mut S);

impl<S: Sink + ?Sized> Sink for EncodeComponent<'_, S> {
    #[inline]
    fn put(&mut self, s: &str) {
        crate::sigv4::encode_component(self.0, s.as_bytes());
    }
}
