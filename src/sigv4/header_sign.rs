//! The header form: signs a request with an `Authorization` header, for the gateway's own
//! requests to S3 (e.g. relaying an upload with a PUT).
//!
//! ```text
//! Authorization: AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders={names}, Signature={sig}
//! ```
//! Signed: `host`, the given headers, `x-amz-content-sha256`, `x-amz-date` and, with a
//! session token, `x-amz-security-token`.

use time::OffsetDateTime;

use crate::sigv4::{
    write_canonical_query, write_canonical_uri, write_string_to_sign, AmzDate, CanonicalHeaders,
    CanonicalRequest, Hex64, Signer, Sink, UriMode, ALGORITHM,
};

/// A request to sign in the header form.
#[derive(Debug, Clone, Copy)]
pub struct HeaderSignRequest<'a> {
    /// HTTP method, e.g. `PUT`.
    pub method: &'a str,
    /// The authority as the `Host` header carries it.
    pub host: &'a str,
    /// The *decoded* path, encoded S3-style (no normalisation, no double encoding).
    pub path: &'a str,
    /// The *decoded* query parameters.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign besides `host` and the `x-amz-*` ones added here. `host`,
    /// `x-amz-date`, `x-amz-content-sha256` and `x-amz-security-token` entries are ignored.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_sha256_hex: &'a str,
}

/// Header names this module sets itself.
const OWN_HEADERS: [&str; 4] = ["host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"];

impl Signer {
    /// Signs `req` at `now` and returns the headers to add to it: `x-amz-date`,
    /// `x-amz-content-sha256`, `x-amz-security-token` (with a session token) and
    /// `authorization`. The request must also carry `host` and the given headers unchanged.
    pub fn sign_headers(
        &self,
        req: &HeaderSignRequest<'_>,
        now: OffsetDateTime,
    ) -> Vec<(&'static str, String)> {
        let date = AmzDate::new(now);
        let key = self.signing_key(date.date());
        let creds = self.credentials();

        let mut own: Vec<(&str, &str)> = vec![
            ("host", req.host),
            ("x-amz-content-sha256", req.payload_sha256_hex),
            ("x-amz-date", date.as_str()),
        ];
        if let Some(token) = &creds.session_token {
            own.push(("x-amz-security-token", token));
        }
        let headers = CanonicalHeaders::new(
            own.iter().copied().chain(
                req.headers
                    .iter()
                    .filter(|(name, _)| !OWN_HEADERS.iter().any(|own| name.eq_ignore_ascii_case(own)))
                    .copied(),
            ),
        );

        let mut uri = String::with_capacity(req.path.len() * 3 + 1);
        write_canonical_uri(&mut uri, req.path.as_bytes(), UriMode::S3);
        let mut params: Vec<(&str, &str)> = req.query.to_vec();
        let mut query = String::new();
        write_canonical_query(&mut query, &mut params);

        let creq = CanonicalRequest {
            method: req.method,
            uri: &uri,
            query: &[&query],
            headers: &headers,
            payload_hash: req.payload_sha256_hex,
        };
        let creq_hash = creq.sha256_hex();
        let signature = Hex64::encode(&key.sign_raw(|sink: &mut dyn Sink| {
            write_string_to_sign(sink, date.as_str(), key.scope(), creq_hash.as_str())
        }));

        let authorization =
            authorization_value(&creds.access_key_id, key.scope(), &headers, signature.as_str());
        let mut out = Vec::with_capacity(4);
        out.push(("x-amz-date", date.as_str().to_owned()));
        out.push(("x-amz-content-sha256", req.payload_sha256_hex.to_owned()));
        if let Some(token) = &creds.session_token {
            out.push(("x-amz-security-token", token.clone()));
        }
        out.push(("authorization", authorization));
        out
    }
}

/// `AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders={names}, Signature={sig}`.
fn authorization_value(akid: &str, scope: &str, headers: &CanonicalHeaders<'_>, signature: &str) -> String {
    let mut v = String::with_capacity(256);
    v.push_str(ALGORITHM);
    v.push_str(" Credential=");
    v.push_str(akid);
    v.push('/');
    v.push_str(scope);
    v.push_str(", SignedHeaders=");
    headers.write_signed_headers(&mut v);
    v.push_str(", Signature=");
    v.push_str(signature);
    v
}
