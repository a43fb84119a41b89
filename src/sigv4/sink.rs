//! Where canonical text goes: into a `String` (to show or send it) or straight into a hash
//! or MAC (to sign it), so the signing path never copies the canonical request.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A destination for canonical text.
pub trait Sink {
    /// Appends `s`.
    fn put(&mut self, s: &str);

    /// Appends bytes that are a concatenation of whole `&str`s (so valid UTF-8). Hashes take
    /// them as they are; the default checks them and calls [`Sink::put`].
    fn put_str_bytes(&mut self, b: &[u8]) {
        if let Ok(s) = std::str::from_utf8(b) {
            self.put(s);
        }
    }
}

impl Sink for String {
    #[inline]
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// The presigner builds its URL as bytes and checks them once at the end.
impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    #[inline]
    fn put_str_bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

impl Sink for Sha256 {
    #[inline]
    fn put(&mut self, s: &str) {
        Digest::update(self, s.as_bytes());
    }

    #[inline]
    fn put_str_bytes(&mut self, b: &[u8]) {
        Digest::update(self, b);
    }
}

impl Sink for Hmac<Sha256> {
    #[inline]
    fn put(&mut self, s: &str) {
        Mac::update(self, s.as_bytes());
    }

    #[inline]
    fn put_str_bytes(&mut self, b: &[u8]) {
        Mac::update(self, b);
    }
}

/// Gathers many small writes in a stack buffer and passes them on in large pieces. A hash's
/// `update` has a fixed cost per call, and a canonical request is some thirty small pieces.
/// Call [`Buffered::finish`] (or drop it) before reading the inner sink.
pub struct Buffered<'s, S: Sink + ?Sized> {
    inner: &'s mut S,
    buf: [u8; 512],
    len: usize,
}

impl<'s, S: Sink + ?Sized> Buffered<'s, S> {
    pub fn new(inner: &'s mut S) -> Self {
        Self { inner, buf: [0; 512], len: 0 }
    }

    /// Pass on what is buffered.
    pub fn finish(mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        if self.len > 0 {
            // Only whole `&str`s were copied in, so the buffer is valid UTF-8.
            self.inner.put_str_bytes(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl<S: Sink + ?Sized> Sink for Buffered<'_, S> {
    #[inline]
    fn put(&mut self, s: &str) {
        self.put_str_bytes(s.as_bytes());
    }

    #[inline]
    fn put_str_bytes(&mut self, b: &[u8]) {
        if self.len + b.len() > self.buf.len() {
            self.flush();
            if b.len() > self.buf.len() {
                self.inner.put_str_bytes(b);
                return;
            }
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
}

impl<S: Sink + ?Sized> Drop for Buffered<'_, S> {
    fn drop(&mut self) {
        self.flush();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_writes_hash_like_direct_ones() {
        let long = "x".repeat(700);
        let pieces = ["PUT", "\n", "/a b", &long, "é", "", "tail"];
        let mut direct = Sha256::new();
        let mut text = String::new();
        for p in pieces {
            direct.put(p);
            text.put(p);
        }
        let mut hasher = Sha256::new();
        let mut buffered = Buffered::new(&mut hasher);
        for p in pieces {
            buffered.put(p);
        }
        buffered.finish();
        assert_eq!(hasher.finalize(), direct.finalize());
        let mut copy = String::new();
        {
            let mut b = Buffered::new(&mut copy);
            for p in pieces {
                b.put(p);
            }
        }
        assert_eq!(copy, text, "dropping flushes");
    }
}
