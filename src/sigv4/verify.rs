//! Strict verification of a presigned (query-string) request received by the gateway.
//!
//! The request is re-canonicalised through the same [`CanonicalRequest`] the signer uses:
//! the canonical URI is the received path decoded and re-encoded S3-style, the canonical
//! query is every parameter except `X-Amz-Signature`, decoded, re-encoded and sorted, and
//! the payload is `UNSIGNED-PAYLOAD`.
//!
//! Rules, each with S3's error: exactly `AWS4-HMAC-SHA256`; `1 <= X-Amz-Expires <= 604800`;
//! no duplicate `X-Amz-*` parameter; a credential scope of our access key id, region,
//! service and `aws4_request` whose date is the date of `X-Amz-Date`; a 64-character
//! lowercase hex signature compared in constant time; `host` among the signed headers and
//! every signed header present; `X-Amz-Date` at most [`MAX_CLOCK_SKEW`] ahead of `now`; and
//! `now <= X-Amz-Date + X-Amz-Expires`.

use std::borrow::Cow;

use hmac::Mac;
use time::{Duration, OffsetDateTime};

use crate::sigv4::{
    ct_eq, parse_lower_hex64, percent_decode, write_canonical_query, write_canonical_uri,
    write_string_to_sign, AmzDate, CanonicalHeaders, CanonicalRequest, Signer, UriMode, VerifyError,
    ALGORITHM, MAX_EXPIRES_SECS, UNSIGNED_PAYLOAD,
};

/// How far in the future `X-Amz-Date` may be (client clocks run fast).
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(15);

/// A presigned request as received.
#[derive(Debug, Clone, Copy)]
pub struct PresignedRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path as received, still percent-encoded.
    pub raw_path: &'a str,
    /// The query string as received, without the `?`.
    pub raw_query: &'a str,
    /// The request headers; `host` must be among them (for HTTP/2, copy `:authority` in).
    pub headers: &'a http::HeaderMap,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed header names (lowercase, sorted), e.g. `["content-type", "host"]`.
    pub signed_headers: Vec<String>,
    /// `X-Amz-Date + X-Amz-Expires`.
    pub expires_at: OffsetDateTime,
    /// `X-Amz-Date`.
    pub date: OffsetDateTime,
}

const REQUIRED: [&str; 6] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
];

fn query_error(message: impl Into<String>) -> VerifyError {
    VerifyError::QueryParameters(message.into())
}

type Param<'q> = (Cow<'q, [u8]>, Cow<'q, [u8]>);

/// Splits and strictly decodes `raw_query` (empty `&&` segments are skipped; `name`
/// without `=` has an empty value).
fn parse_query(raw_query: &str) -> Result<Vec<Param<'_>>, VerifyError> {
    let mut params = Vec::with_capacity(8);
    for part in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let bad = |_| query_error("The query string is not valid percent-encoding.");
        params.push((percent_decode(name).map_err(bad)?, percent_decode(value).map_err(bad)?));
    }
    Ok(params)
}

/// The single value of the authentication parameter `name`, as UTF-8.
fn auth_param<'p>(params: &'p [Param<'_>], name: &str) -> Result<Option<&'p str>, VerifyError> {
    match params.iter().find(|(k, _)| k.as_ref() == name.as_bytes()) {
        None => Ok(None),
        Some((_, v)) => {
            std::str::from_utf8(v).map(Some).map_err(|_| query_error(format!("{name} is not valid UTF-8.")))
        }
    }
}

/// Refuses any `X-Amz-*` parameter that appears twice.
fn reject_duplicates(params: &[Param<'_>]) -> Result<(), VerifyError> {
    let mut names: Vec<&[u8]> =
        params.iter().map(|(k, _)| k.as_ref()).filter(|k| k.starts_with(b"X-Amz-")).collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(query_error(format!("Duplicate query parameter: {}.", String::from_utf8_lossy(w[0])))),
        None => Ok(()),
    }
}

/// `X-Amz-Expires`: decimal seconds, `1..=604800`.
fn parse_expires(s: &str) -> Result<u32, VerifyError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(query_error("X-Amz-Expires should be a number"));
    }
    let secs: u64 = s.parse().map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if secs == 0 {
        return Err(query_error("X-Amz-Expires must be greater than 0"));
    }
    u32::try_from(secs)
        .ok()
        .filter(|&s| s <= MAX_EXPIRES_SECS)
        .ok_or_else(|| query_error("X-Amz-Expires must be less than a week (in seconds) that is 604800"))
}

/// `X-Amz-Credential` = `{akid}/{yyyyMMdd}/{region}/{service}/aws4_request`, checked
/// against the signer and the date of `X-Amz-Date`.
pub(crate) fn check_credential(signer: &Signer, credential: &str, date: &AmzDate) -> Result<(), VerifyError> {
    let malformed = || {
        query_error(
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; \
             expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        )
    };
    let mut parts = credential.rsplitn(5, '/');
    let terminal = parts.next().ok_or_else(malformed)?;
    let service = parts.next().ok_or_else(malformed)?;
    let region = parts.next().ok_or_else(malformed)?;
    let scope_date = parts.next().ok_or_else(malformed)?;
    let akid = parts.next().ok_or_else(malformed)?;
    if akid.is_empty() || scope_date.len() != 8 || !scope_date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    if !ct_eq(akid.as_bytes(), signer.credentials().access_key_id.as_bytes()) {
        return Err(VerifyError::InvalidAccessKeyId);
    }
    if scope_date != date.date_str() {
        return Err(query_error(format!(
            "Invalid credential date \"{scope_date}\". This date is not the same as X-Amz-Date: \"{}\".",
            date.date_str()
        )));
    }
    if region != signer.region() {
        return Err(query_error(format!(
            "Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; expecting '{}'",
            signer.region()
        )));
    }
    if service != signer.service() {
        return Err(query_error(format!(
            "Error parsing the X-Amz-Credential parameter; incorrect service \"{service}\". This endpoint belongs to \"{}\".",
            signer.service()
        )));
    }
    if terminal != "aws4_request" {
        return Err(query_error(format!(
            "Error parsing the X-Amz-Credential parameter; incorrect terminal \"{terminal}\". This endpoint uses \"aws4_request\"."
        )));
    }
    Ok(())
}

/// `X-Amz-SignedHeaders`: lowercase names, strictly ascending, separated by `;`, with `host`.
fn parse_signed_headers(s: &str) -> Result<Vec<&str>, VerifyError> {
    let names: Vec<&str> = s.split(';').collect();
    let well_formed = names.iter().all(|n| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() && b != b':')
    }) && names.windows(2).all(|w| w[0] < w[1]);
    if !well_formed {
        return Err(query_error(
            "X-Amz-SignedHeaders must be lowercase header names, sorted and separated by ';'.",
        ));
    }
    if !names.contains(&"host") {
        return Err(query_error("X-Amz-SignedHeaders must include host."));
    }
    Ok(names)
}

/// The authentication parameters of a presigned request, checked for shape.
struct AuthParams<'p> {
    date: AmzDate,
    expires: u32,
    signature: [u8; 32],
    signed_names: Vec<&'p str>,
    token: Option<&'p str>,
}

/// Every `X-Amz-*` parameter present once and well-formed, and the credential ours (checked
/// in S3's order, so the first fault found is the one S3 would name).
fn parse_auth_params<'p>(signer: &Signer, params: &'p [Param<'_>]) -> Result<AuthParams<'p>, VerifyError> {
    let mut found = [None; 6];
    for (slot, name) in found.iter_mut().zip(REQUIRED) {
        *slot = auth_param(params, name)?;
    }
    if found.iter().all(Option::is_none) {
        return Err(VerifyError::MissingAuthentication);
    }
    reject_duplicates(params)?;
    let [Some(algorithm), Some(credential), Some(date), Some(expires), Some(signed_headers), Some(signature)] =
        found
    else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, \
             X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
             X-Amz-Expires parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(query_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""));
    }
    let date = AmzDate::parse(date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires = parse_expires(expires)?;
    check_credential(signer, credential, &date)?;
    Ok(AuthParams {
        expires,
        signature: parse_lower_hex64(signature)
            .ok_or_else(|| query_error("X-Amz-Signature must be 64 lowercase hexadecimal characters."))?,
        signed_names: parse_signed_headers(signed_headers)?,
        token: auth_param(params, "X-Amz-Security-Token")?,
        date,
    })
}

/// The session token must be ours exactly when we have one.
fn check_token(signer: &Signer, token: Option<&str>) -> Result<(), VerifyError> {
    match (&signer.credentials().session_token, token) {
        (None, None) => Ok(()),
        (Some(ours), Some(theirs)) if ct_eq(ours.as_bytes(), theirs.as_bytes()) => Ok(()),
        _ => Err(VerifyError::InvalidToken),
    }
}

/// Not too far ahead, not expired; returns when it expires.
fn check_time(
    signed_at: OffsetDateTime,
    expires: u32,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, VerifyError> {
    if now.checked_add(MAX_CLOCK_SKEW).is_some_and(|limit| signed_at > limit) {
        return Err(VerifyError::NotYetValid);
    }
    let expires_at = signed_at
        .checked_add(Duration::seconds(i64::from(expires)))
        .ok_or_else(|| query_error("X-Amz-Date is out of range."))?;
    if now > expires_at {
        return Err(VerifyError::Expired);
    }
    Ok(expires_at)
}

/// <CanonicalHeaders>: every signed header must be present.
fn signed_header_values<'r>(
    headers: &'r http::HeaderMap,
    names: &[&'r str],
) -> Result<CanonicalHeaders<'r>, VerifyError> {
    let mut values = Vec::with_capacity(names.len());
    for &name in names {
        let mut any = false;
        for value in headers.get_all(name) {
            let value =
                std::str::from_utf8(value.as_bytes()).map_err(|_| VerifyError::SignatureDoesNotMatch)?;
            values.push((name, value));
            any = true;
        }
        if !any {
            return Err(VerifyError::MissingSignedHeader(format!(
                "Header '{name}' is listed in X-Amz-SignedHeaders but missing from the request."
            )));
        }
    }
    Ok(CanonicalHeaders::new(values))
}

/// Verifies a presigned request against `signer` at `now`.
pub fn verify_presigned(
    signer: &Signer,
    req: &PresignedRequest<'_>,
    now: OffsetDateTime,
) -> Result<Verified, VerifyError> {
    let params = parse_query(req.raw_query)?;
    let auth = parse_auth_params(signer, &params)?;
    check_token(signer, auth.token)?;
    let signed_at = auth.date.datetime();
    let expires_at = check_time(signed_at, auth.expires, now)?;
    let headers = signed_header_values(req.headers, &auth.signed_names)?;

    // <CanonicalURI>: decode, then encode S3-style.
    let path = percent_decode(req.raw_path).map_err(|_| VerifyError::InvalidUri)?;
    let mut uri = String::with_capacity(req.raw_path.len() + 1);
    write_canonical_uri(&mut uri, &path, UriMode::S3);

    // <CanonicalQueryString>: everything but the signature.
    let mut pairs: Vec<(&[u8], &[u8])> = params
        .iter()
        .filter(|(k, _)| k.as_ref() != b"X-Amz-Signature")
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    let mut query = String::with_capacity(req.raw_query.len() + 16);
    write_canonical_query(&mut query, &mut pairs);

    let creq = CanonicalRequest {
        method: req.method,
        uri: &uri,
        query: &[&query],
        headers: &headers,
        payload_hash: UNSIGNED_PAYLOAD,
    };
    let creq_hash = creq.sha256_hex();
    let key = signer.signing_key(auth.date.date());
    let mut mac = key.mac();
    write_string_to_sign(&mut mac, auth.date.as_str(), key.scope(), creq_hash.as_str());
    mac.verify_slice(&auth.signature).map_err(|_| VerifyError::SignatureDoesNotMatch)?;

    Ok(Verified {
        signed_headers: auth.signed_names.into_iter().map(str::to_owned).collect(),
        expires_at,
        date: signed_at,
    })
}
