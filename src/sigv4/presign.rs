//! The query-string form: presigned URLs.
//!
//! ```text
//! {scheme}://{host}{CanonicalURI}?X-Amz-Algorithm=AWS4-HMAC-SHA256
//!     &X-Amz-Credential={akid}%2F{scope}&X-Amz-Date={date}&X-Amz-Expires={secs}
//!     &X-Amz-SignedHeaders={names}[&X-Amz-Security-Token={token}]&X-Amz-Signature={sig}
//! ```
//! The parameters come in botocore's order, so our URLs equal botocore's byte for byte. That
//! order is sorted except for the session token, which the canonical query string sorts
//! before `X-Amz-SignedHeaders`; the canonical query is hashed out of the URL in pieces.
//! The payload is `UNSIGNED-PAYLOAD`: the body is unknown when the URL is minted.

use time::OffsetDateTime;

use crate::sigv4::{
    encode_component, write_canonical_uri, write_string_to_sign, AmzDate, CanonicalHeaders, CanonicalRequest,
    Credentials, EncodeComponent, Hex64, Signer, SigningKey, Sink, UriMode, ALGORITHM, UNSIGNED_PAYLOAD,
};

/// Longest validity S3 accepts for a presigned URL: seven days.
pub const MAX_EXPIRES_SECS: u32 = 604_800;

/// A request to presign.
#[derive(Debug, Clone, Copy)]
pub struct PresignRequest<'a> {
    /// HTTP method, e.g. `PUT`.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The authority exactly as the `Host` header will carry it, with any non-default port.
    pub host: &'a str,
    /// The *decoded* path, e.g. `/media/uploads/a b+c.png`. It is encoded S3-style: RFC 3986
    /// unreserved characters and `/` kept, everything else `%XX`; no normalisation.
    pub path: &'a str,
    /// Validity in seconds; clamped to `1..=604800` (S3 refuses anything else).
    pub expires_in: u32,
    /// Headers to sign besides `host`, e.g. `[("content-type", "image/png")]`. The client
    /// must then send exactly these values. A `host` entry here is ignored.
    pub headers: &'a [(&'a str, &'a str)],
}

/// The intermediate texts of one presigning, for tests and debugging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresignTrace {
    /// The canonical request that was hashed.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
}

impl Signer {
    /// Mints a presigned URL (see the module docs for its shape) valid from `now` for
    /// `req.expires_in` seconds.
    pub fn presign_url(&self, req: &PresignRequest<'_>, now: OffsetDateTime) -> String {
        self.presign(req, now, None)
    }

    /// [`Signer::presign_url`] for a request that carries its own query parameters (decoded
    /// name, value), e.g. UploadPart's `partNumber` and `uploadId`. As botocore does, they
    /// come first in the URL, in the order given, then the authentication parameters; the
    /// canonical query sorts them all.
    pub fn presign_url_with_query(
        &self,
        req: &PresignRequest<'_>,
        query: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> String {
        if query.is_empty() {
            return self.presign(req, now, None);
        }
        self.presign_query(req, query, now)
    }

    /// [`Signer::presign_url`], also returning the canonical request and string to sign.
    pub fn presign_url_traced(
        &self,
        req: &PresignRequest<'_>,
        now: OffsetDateTime,
    ) -> (String, PresignTrace) {
        let mut trace = PresignTrace::default();
        let url = self.presign(req, now, Some(&mut trace));
        (url, trace)
    }

    fn presign(
        &self,
        req: &PresignRequest<'_>,
        now: OffsetDateTime,
        trace: Option<&mut PresignTrace>,
    ) -> String {
        let date = AmzDate::new(now);
        let key = self.signing_key(date.date());
        let creds = self.credentials();
        let headers = canonical_headers(req);
        // Written as bytes (no UTF-8 check per piece), checked once when the query is done.
        let mut url: Vec<u8> = Vec::with_capacity(url_capacity(req, key.scope(), creds));
        let (uri_start, uri_end) = write_url_head(&mut url, req);

        // <CanonicalQueryString>, written in URL order; see the module docs.
        let q = write_auth_params(&mut url, creds, key.scope(), &date, req.expires_in, &headers);
        let mut url = into_string(url);
        if !url.is_char_boundary(q.end) || !url.is_char_boundary(uri_end) {
            return url;
        }
        let query_pieces =
            [&url[q.start..q.signed_start], &url[q.signed_end..q.end], &url[q.signed_start..q.signed_end]];
        let creq = CanonicalRequest {
            method: req.method,
            uri: &url[uri_start..uri_end],
            query: &query_pieces,
            headers: &headers,
            payload_hash: UNSIGNED_PAYLOAD,
        };
        let creq_hash = creq.sha256_hex();
        if let Some(trace) = trace {
            trace.canonical_request = creq.to_text();
            write_string_to_sign(&mut trace.string_to_sign, date.as_str(), key.scope(), creq_hash.as_str());
        }
        push_signature(&mut url, &key, &date, &creq_hash);
        url
    }
}

impl Signer {
    /// The general form behind [`Signer::presign_url_with_query`]: off the mint's hot path,
    /// so it sorts a list of pairs instead of reading the canonical query back out of the URL.
    fn presign_query(&self, req: &PresignRequest<'_>, query: &[(&str, &str)], now: OffsetDateTime) -> String {
        let date = AmzDate::new(now);
        let key = self.signing_key(date.date());
        let creds = self.credentials();
        let headers = canonical_headers(req);
        let mut url: Vec<u8> = Vec::with_capacity(url_capacity(req, key.scope(), creds) + query_len(query));
        let (uri_start, uri_end) = write_url_head(&mut url, req);
        for (name, value) in query {
            crate::sigv4::write_query_pair(&mut url, name.as_bytes(), value.as_bytes());
            url.push(b'&');
        }
        write_auth_params(&mut url, creds, key.scope(), &date, req.expires_in, &headers);

        let credential = format!("{}/{}", creds.access_key_id, key.scope());
        let expires = crate::decimal::Decimal::new(u64::from(req.expires_in.clamp(1, MAX_EXPIRES_SECS)));
        let signed = headers.signed_headers();
        let mut pairs: Vec<(&[u8], &[u8])> =
            query.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        pairs.extend([
            (&b"X-Amz-Algorithm"[..], ALGORITHM.as_bytes()),
            (b"X-Amz-Credential", credential.as_bytes()),
            (b"X-Amz-Date", date.as_str().as_bytes()),
            (b"X-Amz-Expires", expires.as_str().as_bytes()),
            (b"X-Amz-SignedHeaders", signed.as_bytes()),
        ]);
        if let Some(token) = &creds.session_token {
            pairs.push((b"X-Amz-Security-Token", token.as_bytes()));
        }
        let mut canonical_query = String::with_capacity(url.len());
        crate::sigv4::write_canonical_query(&mut canonical_query, &mut pairs);

        let mut url = into_string(url);
        if !url.is_char_boundary(uri_end) {
            return url;
        }
        let creq = CanonicalRequest {
            method: req.method,
            uri: &url[uri_start..uri_end],
            query: &[&canonical_query],
            headers: &headers,
            payload_hash: UNSIGNED_PAYLOAD,
        };
        let creq_hash = creq.sha256_hex();
        push_signature(&mut url, &key, &date, &creq_hash);
        url
    }
}

/// `host` and the request's headers (a `host` among them is ignored), to sign.
fn canonical_headers<'a>(req: &PresignRequest<'a>) -> CanonicalHeaders<'a> {
    CanonicalHeaders::new(
        std::iter::once(("host", req.host))
            .chain(req.headers.iter().filter(|(name, _)| !name.eq_ignore_ascii_case("host")).copied()),
    )
}

/// `{scheme}://{host}<CanonicalURI>?`; where the canonical URI starts and ends.
fn write_url_head(url: &mut Vec<u8>, req: &PresignRequest<'_>) -> (usize, usize) {
    url.put(req.scheme);
    url.put("://");
    url.put(req.host);
    let uri_start = url.len();
    write_canonical_uri(url, req.path.as_bytes(), UriMode::S3);
    let uri_end = url.len();
    url.push(b'?');
    (uri_start, uri_end)
}

/// Every piece was a `&str` or ASCII from the encoder, so this never fails; were it to, the
/// signature would be over the replacement text and simply not verify.
fn into_string(url: Vec<u8>) -> String {
    String::from_utf8(url).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `&X-Amz-Signature=` and the signature of the canonical request hashed as `creq_hash`.
fn push_signature(url: &mut String, key: &SigningKey, date: &AmzDate, creq_hash: &Hex64) {
    let signature = key.sign_raw(|sink: &mut dyn Sink| {
        write_string_to_sign(sink, date.as_str(), key.scope(), creq_hash.as_str())
    });
    url.push_str("&X-Amz-Signature=");
    url.push_str(Hex64::encode(&signature).as_str());
}

fn query_len(query: &[(&str, &str)]) -> usize {
    query.iter().map(|(n, v)| 3 * (n.len() + v.len()) + 2).sum()
}

/// An upper bound on the URL's length, so it is written without reallocating.
fn url_capacity(req: &PresignRequest<'_>, scope: &str, creds: &Credentials) -> usize {
    let token_len = creds.session_token.as_ref().map_or(0, |t| t.len() * 3 + 24);
    req.scheme.len()
        + req.host.len()
        + req.path.len() * 3
        + scope.len()
        + creds.access_key_id.len()
        + token_len
        + 64 * req.headers.len()
        + 300
}

/// Where the pieces of the written query start and end in the URL.
struct QueryMarks {
    start: usize,
    signed_start: usize,
    signed_end: usize,
    end: usize,
}

/// The `X-Amz-*` authentication parameters but the signature, in URL order. SigV4 sorts
/// them differently (SignedHeaders after Security-Token), so the marks let the canonical
/// query be read back in its own order without a copy.
fn write_auth_params(
    url: &mut Vec<u8>,
    creds: &Credentials,
    scope: &str,
    date: &AmzDate,
    expires_in: u32,
    headers: &CanonicalHeaders<'_>,
) -> QueryMarks {
    let start = url.len();
    url.put("X-Amz-Algorithm=");
    url.put(ALGORITHM);
    url.put("&X-Amz-Credential=");
    encode_component(url, creds.access_key_id.as_bytes());
    url.put("%2F");
    encode_component(url, scope.as_bytes());
    url.put("&X-Amz-Date=");
    url.put(date.as_str());
    url.put("&X-Amz-Expires=");
    url.put(crate::decimal::Decimal::new(u64::from(expires_in.clamp(1, MAX_EXPIRES_SECS))).as_str());
    let signed_start = url.len();
    url.put("&X-Amz-SignedHeaders=");
    headers.write_signed_headers(&mut EncodeComponent(url));
    let signed_end = url.len();
    if let Some(token) = &creds.session_token {
        url.put("&X-Amz-Security-Token=");
        encode_component(url, token.as_bytes());
    }
    QueryMarks { start, signed_start, signed_end, end: url.len() }
}
