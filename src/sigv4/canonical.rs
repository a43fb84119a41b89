//! The one canonicaliser: canonical URI, query, headers, the canonical request and the
//! string to sign. Minting URLs, signing headers and verifying all go through here.
//!
//! Each stage is a function laid out under the grammar from the AWS docs
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>).
//! Stages write into a [`Sink`], so the same code shows the text (a `String`) or hashes it.

use std::borrow::Cow;

use crate::sigv4::{cmp_encoded, encode_component, encode_path, Sink};

/// The only algorithm we sign with or accept.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How the path becomes the canonical URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMode {
    /// S3: the input is the *decoded* path; it is encoded once, with no normalisation
    /// (`//`, `.` and `..` segments and trailing slashes are kept as they are).
    S3,
    /// Every other AWS service: the input is the path *as sent on the wire* (already
    /// encoded); it is optionally normalised (RFC 3986 dot segments removed, empty segments
    /// dropped) and then encoded again, so `%` becomes `%25` ("double encoding").
    Service {
        /// Remove dot segments and empty segments first.
        normalize: bool,
    },
}

// <CanonicalURI> =
//     UriEncode(absolute path), "/" kept; "/" when the path is empty.
/// Writes the canonical URI of `path` (see [`UriMode`] for what `path` is in each mode).
pub fn write_canonical_uri<S: Sink + ?Sized>(out: &mut S, path: &[u8], mode: UriMode) {
    let needs_slash = path.first() != Some(&b'/');
    match mode {
        UriMode::S3 => {
            if needs_slash {
                out.put("/");
            }
            encode_path(out, path);
        }
        UriMode::Service { normalize } => {
            let path: Cow<'_, [u8]> =
                if normalize { Cow::Owned(normalize_path(path)) } else { Cow::Borrowed(path) };
            if path.first() != Some(&b'/') {
                out.put("/");
            }
            encode_path(out, &path);
        }
    }
}

/// RFC 3986 section 5.2.4 remove-dot-segments, also dropping empty segments, keeping a
/// trailing slash where the input ends in one (or in `/.` or `/..`).
fn normalize_path(path: &[u8]) -> Vec<u8> {
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in path.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    let trailing = [&b"/"[..], b"/.", b"/.."].iter().any(|end| path.ends_with(end));
    if out.is_empty() || (trailing && out.last() != Some(&b'/')) {
        out.push(b'/');
    }
    out
}

// <CanonicalQueryString> =
//     UriEncode(name1) "=" UriEncode(value1) "&" UriEncode(name2) "=" UriEncode(value2) ...
//     sorted by encoded name, then encoded value; "" when there are no parameters.
/// Sorts the *decoded* `params` in place by their encoded name and value, then writes them.
pub fn write_canonical_query<S, K, V>(out: &mut S, params: &mut [(K, V)])
where
    S: Sink + ?Sized,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    params.sort_by(|a, b| {
        cmp_encoded(a.0.as_ref(), b.0.as_ref()).then_with(|| cmp_encoded(a.1.as_ref(), b.1.as_ref()))
    });
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.put("&");
        }
        write_query_pair(out, k.as_ref(), v.as_ref());
    }
}

/// Writes one `UriEncode(name)=UriEncode(value)` pair.
pub fn write_query_pair<S: Sink + ?Sized>(out: &mut S, name: &[u8], value: &[u8]) {
    encode_component(out, name);
    out.put("=");
    encode_component(out, value);
}

/// The headers to sign: names lowercased, sorted (stable, so repeated headers keep their
/// order), values kept as given and trimmed when written.
#[derive(Debug, Clone)]
pub struct CanonicalHeaders<'a> {
    entries: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> CanonicalHeaders<'a> {
    /// Collects `(name, value)` pairs; a name may repeat (its values are joined with `,`).
    pub fn new<I: IntoIterator<Item = (&'a str, &'a str)>>(headers: I) -> Self {
        let iter = headers.into_iter();
        let mut entries = Vec::with_capacity(iter.size_hint().0);
        for (name, value) in iter {
            let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            };
            entries.push((name, value));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Self { entries }
    }

    /// The distinct lowercase names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, (name, _))| *i == 0 || self.entries[i - 1].0 != *name)
            .map(|(_, (name, _))| name.as_ref())
    }

    // <CanonicalHeaders> =
    //     Lowercase(name1) ":" Trimall(value1a) "," Trimall(value1b) ... "\n"
    //     Lowercase(name2) ":" Trimall(value2) "\n" ...
    // Trimall: drop leading and trailing whitespace, collapse inner runs into one space.
    /// Writes the canonical headers block (each line ends with `\n`).
    pub fn write_headers<S: Sink + ?Sized>(&self, out: &mut S) {
        for (i, (name, value)) in self.entries.iter().enumerate() {
            let continues = i > 0 && self.entries[i - 1].0 == *name;
            if continues {
                out.put(",");
            } else {
                if i > 0 {
                    out.put("\n");
                }
                out.put(name);
                out.put(":");
            }
            for (j, word) in value.split_ascii_whitespace().enumerate() {
                if j > 0 {
                    out.put(" ");
                }
                out.put(word);
            }
        }
        if !self.entries.is_empty() {
            out.put("\n");
        }
    }

    // <SignedHeaders> =
    //     Lowercase(name1) ";" Lowercase(name2) ";" ...
    /// Writes the signed-headers list.
    pub fn write_signed_headers<S: Sink + ?Sized>(&self, out: &mut S) {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                out.put(";");
            }
            out.put(name);
        }
    }

    /// The signed-headers list as a `String`.
    pub fn signed_headers(&self) -> String {
        let mut s = String::with_capacity(self.entries.len() * 16);
        self.write_signed_headers(&mut s);
        s
    }
}

/// The inputs of a canonical request, every part already in canonical form except the
/// headers, which are written from [`CanonicalHeaders`].
#[derive(Debug, Clone, Copy)]
pub struct CanonicalRequest<'a> {
    /// The HTTP method, e.g. `PUT`.
    pub method: &'a str,
    /// The canonical URI (from [`write_canonical_uri`]).
    pub uri: &'a str,
    /// The canonical query string, as consecutive pieces that are written one after the
    /// other (so a signer can hash it in place out of a URL it is building).
    pub query: &'a [&'a str],
    /// The headers to sign.
    pub headers: &'a CanonicalHeaders<'a>,
    /// `HexEncode(Hash(payload))`, or `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    // <CanonicalRequest> =
    //     HTTPMethod "\n"
    //     CanonicalURI "\n"
    //     CanonicalQueryString "\n"
    //     CanonicalHeaders "\n"
    //     SignedHeaders "\n"
    //     HashedPayload
    /// Writes the canonical request.
    pub fn write<S: Sink + ?Sized>(&self, out: &mut S) {
        out.put(self.method);
        out.put("\n");
        out.put(self.uri);
        out.put("\n");
        for piece in self.query {
            out.put(piece);
        }
        out.put("\n");
        self.headers.write_headers(out);
        out.put("\n");
        self.headers.write_signed_headers(out);
        out.put("\n");
        out.put(self.payload_hash);
    }

    /// The canonical request as text (for tests and debugging; signing hashes it in place).
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(256);
        self.write(&mut s);
        s
    }

    /// `HexEncode(SHA256(CanonicalRequest))`, hashed without building the text.
    pub fn sha256_hex(&self) -> crate::sigv4::Hex64 {
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut buffered = crate::sigv4::Buffered::new(&mut hasher);
        self.write(&mut buffered);
        buffered.finish();
        crate::sigv4::Hex64::encode(&sha2::Digest::finalize(hasher).into())
    }
}

// <StringToSign> =
//     Algorithm "\n"
//     RequestDateTime "\n"            (the X-Amz-Date)
//     CredentialScope "\n"            (yyyyMMdd/region/service/aws4_request)
//     HexEncode(Hash(CanonicalRequest))
/// Writes the string to sign.
pub fn write_string_to_sign<S: Sink + ?Sized>(
    out: &mut S,
    amz_date: &str,
    scope: &str,
    canonical_request_sha256_hex: &str,
) {
    out.put(ALGORITHM);
    out.put("\n");
    out.put(amz_date);
    out.put("\n");
    out.put(scope);
    out.put("\n");
    out.put(canonical_request_sha256_hex);
}

// <CredentialScope> =
//     yyyyMMdd "/" region "/" service "/aws4_request"
/// Writes the credential scope.
pub fn write_scope<S: Sink + ?Sized>(out: &mut S, date: &str, region: &str, service: &str) {
    out.put(date);
    out.put("/");
    out.put(region);
    out.put("/");
    out.put(service);
    out.put("/aws4_request");
}
