//! The strict verifier: a URL we mint verifies, and every tampering or rule breach is
//! refused with S3's code and status.

use presign_gateway::sigv4::{
    verify_presigned, Credentials, PresignRequest, PresignedRequest, Signer, VerifyError,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2024-03-01 12:00:00 UTC);
const HOST: &str = "127.0.0.1:8080";

fn signer() -> Signer {
    Signer::new(Credentials::new("AKIDGATEWAY", "gateway/secret+key=", None), "us-east-1", "s3")
}

/// A URL for PUT /media/uploads/a b+c.png with content-type and content-length signed.
fn mint(signer: &Signer, expires_in: u32, at: OffsetDateTime) -> String {
    signer.presign_url(
        &PresignRequest {
            method: "PUT",
            scheme: "http",
            host: HOST,
            path: "/media/uploads/a b+c.png",
            expires_in,
            headers: &[("content-type", "image/png"), ("content-length", "524288")],
        },
        at,
    )
}

fn headers(host: Option<&str>, content_type: &str) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    if let Some(host) = host {
        map.insert("host", host.parse().expect("host"));
    }
    map.insert("content-type", content_type.parse().expect("ct"));
    map.insert("content-length", "524288".parse().expect("cl"));
    map
}

/// Splits a minted URL into (raw path, raw query).
fn split(url: &str) -> (String, String) {
    let rest = url.strip_prefix(&format!("http://{HOST}")).expect("prefix");
    let (path, query) = rest.split_once('?').expect("query");
    (path.to_owned(), query.to_owned())
}

fn check(
    signer: &Signer,
    path: &str,
    query: &str,
    map: &http::HeaderMap,
    now: OffsetDateTime,
) -> Result<presign_gateway::sigv4::Verified, VerifyError> {
    verify_presigned(
        signer,
        &PresignedRequest { method: "PUT", raw_path: path, raw_query: query, headers: map },
        now,
    )
}

fn assert_refused(
    result: Result<presign_gateway::sigv4::Verified, VerifyError>,
    code: &str,
    status: u16,
) -> VerifyError {
    let err = result.expect_err("must be refused");
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(err.status(), status, "{err}");
    err
}

fn replace_param(query: &str, name: &str, value: &str) -> String {
    query
        .split('&')
        .map(|p| if p.starts_with(&format!("{name}=")) { format!("{name}={value}") } else { p.to_owned() })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn round_trip_verifies() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    assert_eq!(path, "/media/uploads/a%20b%2Bc.png");
    let v = check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW + Duration::seconds(30))
        .expect("valid");
    assert_eq!(v.signed_headers, ["content-length", "content-type", "host"]);
    assert_eq!(v.date, NOW);
    assert_eq!(v.expires_at, NOW + Duration::seconds(900));
    // Still valid at the last second.
    assert!(check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW + Duration::seconds(900)).is_ok());
}

#[test]
fn expired_is_access_denied() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    let err = assert_refused(
        check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW + Duration::seconds(901)),
        "AccessDenied",
        403,
    );
    assert_eq!(err.message(), "Request has expired");
    assert!(err.to_xml("/media/uploads/a b+c.png", "rid").contains("<Message>Request has expired</Message>"));
}

#[test]
fn tampered_signature_does_not_match() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    let sig_at = query.find("X-Amz-Signature=").expect("sig") + "X-Amz-Signature=".len();
    let mut tampered = query.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).expect("utf8");
    let err = assert_refused(
        check(&s, &path, &tampered, &headers(Some(HOST), "image/png"), NOW),
        "SignatureDoesNotMatch",
        403,
    );
    assert!(err.message().starts_with("The request signature we calculated does not match"));
}

#[test]
fn tampered_path_does_not_match() {
    let s = signer();
    let (_, query) = split(&mint(&s, 900, NOW));
    assert_refused(
        check(&s, "/media/uploads/other.png", &query, &headers(Some(HOST), "image/png"), NOW),
        "SignatureDoesNotMatch",
        403,
    );
}

#[test]
fn equivalent_path_encoding_still_verifies() {
    // `%61` and `a` decode to the same path: the canonical URI is decode-then-encode.
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    let respelled = path.replace("a%20b", "%61%20b");
    assert!(check(&s, &respelled, &query, &headers(Some(HOST), "image/png"), NOW).is_ok());
}

#[test]
fn bad_percent_escape_in_path_is_invalid_uri() {
    let s = signer();
    let (_, query) = split(&mint(&s, 900, NOW));
    assert_refused(
        check(&s, "/media/uploads/a%2", &query, &headers(Some(HOST), "image/png"), NOW),
        "InvalidURI",
        400,
    );
}

#[test]
fn tampered_content_type_does_not_match() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    assert_refused(
        check(&s, &path, &query, &headers(Some(HOST), "text/html"), NOW),
        "SignatureDoesNotMatch",
        403,
    );
}

#[test]
fn duplicate_amz_params_are_refused() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    let doubled = format!("{query}&X-Amz-Expires=900");
    let err = assert_refused(
        check(&s, &path, &doubled, &headers(Some(HOST), "image/png"), NOW),
        "AuthorizationQueryParametersError",
        400,
    );
    assert!(err.message().contains("X-Amz-Expires"), "{err}");
}

#[test]
fn expires_bounds() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    for bad in ["0", "604801", "-1", "abc", ""] {
        assert_refused(
            check(
                &s,
                &path,
                &replace_param(&query, "X-Amz-Expires", bad),
                &headers(Some(HOST), "image/png"),
                NOW,
            ),
            "AuthorizationQueryParametersError",
            400,
        );
    }
    // The bounds themselves are accepted by the signer (clamped) and the verifier.
    let (path, query) = split(&mint(&s, 604_800, NOW));
    assert!(check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW + Duration::days(7)).is_ok());
    let (path, query) = split(&mint(&s, 0, NOW));
    assert!(query.contains("X-Amz-Expires=1&"), "0 is clamped to 1: {query}");
    assert!(check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW).is_ok());
}

#[test]
fn malformed_signatures_are_refused() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    let sig = query.rsplit_once("X-Amz-Signature=").expect("sig").1.to_owned();
    for bad in [
        sig[..63].to_owned(),
        format!("{sig}0"),
        sig.to_uppercase(),
        format!("{}g", &sig[..63]),
        String::new(),
    ] {
        assert_refused(
            check(
                &s,
                &path,
                &replace_param(&query, "X-Amz-Signature", &bad),
                &headers(Some(HOST), "image/png"),
                NOW,
            ),
            "AuthorizationQueryParametersError",
            400,
        );
    }
}

#[test]
fn wrong_region_service_or_date_in_scope() {
    let s = signer();
    let other_region = Signer::new(s.credentials().clone(), "eu-west-1", "s3");
    let (path, query) = split(&mint(&other_region, 900, NOW));
    let err = assert_refused(
        check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW),
        "AuthorizationQueryParametersError",
        400,
    );
    assert!(err.message().contains("region 'eu-west-1' is wrong"), "{err}");

    let other_service = Signer::new(s.credentials().clone(), "us-east-1", "execute-api");
    let (path, query) = split(&mint(&other_service, 900, NOW));
    assert_refused(
        check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW),
        "AuthorizationQueryParametersError",
        400,
    );

    let (path, query) = split(&mint(&s, 900, NOW));
    let moved = replace_param(&query, "X-Amz-Date", "20240302T120000Z");
    let err = assert_refused(
        check(&s, &path, &moved, &headers(Some(HOST), "image/png"), NOW),
        "AuthorizationQueryParametersError",
        400,
    );
    assert!(err.message().contains("Invalid credential date"), "{err}");
    for bad_date in ["2024-03-01T12:00:00Z", "20240301T120000", "20241301T120000Z", "20240301T250000Z"] {
        assert_refused(
            check(
                &s,
                &path,
                &replace_param(&query, "X-Amz-Date", bad_date),
                &headers(Some(HOST), "image/png"),
                NOW,
            ),
            "AuthorizationQueryParametersError",
            400,
        );
    }
}

#[test]
fn wrong_access_key_is_invalid_access_key_id() {
    let s = signer();
    let stranger =
        Signer::new(Credentials::new("AKIDSTRANGER", "gateway/secret+key=", None), "us-east-1", "s3");
    let (path, query) = split(&mint(&stranger, 900, NOW));
    assert_refused(
        check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW),
        "InvalidAccessKeyId",
        403,
    );
}

#[test]
fn wrong_secret_does_not_match() {
    let s = signer();
    let forger = Signer::new(Credentials::new("AKIDGATEWAY", "guessed", None), "us-east-1", "s3");
    let (path, query) = split(&mint(&forger, 900, NOW));
    assert_refused(
        check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW),
        "SignatureDoesNotMatch",
        403,
    );
}

#[test]
fn future_date_is_refused_beyond_skew() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW + Duration::minutes(16)));
    let err =
        assert_refused(check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW), "AccessDenied", 403);
    assert_eq!(err, VerifyError::NotYetValid);
    // Within the skew it is fine.
    let (path, query) = split(&mint(&s, 900, NOW + Duration::minutes(14)));
    assert!(check(&s, &path, &query, &headers(Some(HOST), "image/png"), NOW).is_ok());
}

#[test]
fn missing_host_header_is_refused() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    let err = assert_refused(check(&s, &path, &query, &headers(None, "image/png"), NOW), "AccessDenied", 403);
    assert!(err.message().contains("host"), "{err}");
}

#[test]
fn host_must_be_signed() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    let unsigned_host = replace_param(&query, "X-Amz-SignedHeaders", "content-length%3Bcontent-type");
    let err = assert_refused(
        check(&s, &path, &unsigned_host, &headers(Some(HOST), "image/png"), NOW),
        "AuthorizationQueryParametersError",
        400,
    );
    assert!(err.message().contains("host"), "{err}");
}

#[test]
fn wrong_algorithm_is_refused() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    assert_refused(
        check(
            &s,
            &path,
            &replace_param(&query, "X-Amz-Algorithm", "AWS4-HMAC-SHA1"),
            &headers(Some(HOST), "image/png"),
            NOW,
        ),
        "AuthorizationQueryParametersError",
        400,
    );
}

#[test]
fn missing_authentication() {
    let s = signer();
    let err = assert_refused(
        check(&s, "/media/x.png", "", &headers(Some(HOST), "image/png"), NOW),
        "AccessDenied",
        403,
    );
    assert!(err.message().starts_with("Query-string authentication requires"));
    let (path, query) = split(&mint(&s, 900, NOW));
    let without_date: String =
        query.split('&').filter(|p| !p.starts_with("X-Amz-Date=")).collect::<Vec<_>>().join("&");
    assert_refused(
        check(&s, &path, &without_date, &headers(Some(HOST), "image/png"), NOW),
        "AuthorizationQueryParametersError",
        400,
    );
}

#[test]
fn extra_unsigned_query_param_does_not_match() {
    let s = signer();
    let (path, query) = split(&mint(&s, 900, NOW));
    assert_refused(
        check(&s, &path, &format!("{query}&acl=public-read"), &headers(Some(HOST), "image/png"), NOW),
        "SignatureDoesNotMatch",
        403,
    );
}

#[test]
fn session_token_must_match() {
    let with_token = Signer::new(
        Credentials::new("AKIDGATEWAY", "gateway/secret+key=", Some("tok/en+1=".to_owned())),
        "us-east-1",
        "s3",
    );
    let (path, query) = split(&mint(&with_token, 900, NOW));
    assert!(query.contains("X-Amz-Security-Token=tok%2Fen%2B1%3D"));
    assert!(check(&with_token, &path, &query, &headers(Some(HOST), "image/png"), NOW).is_ok());
    assert_refused(
        check(&signer(), &path, &query, &headers(Some(HOST), "image/png"), NOW),
        "InvalidToken",
        400,
    );
    let swapped = replace_param(&query, "X-Amz-Security-Token", "other");
    assert_refused(
        check(&with_token, &path, &swapped, &headers(Some(HOST), "image/png"), NOW),
        "InvalidToken",
        400,
    );
}

#[test]
fn secret_key_debug_is_redacted() {
    let creds = Credentials::new("AKID", "super-secret-value", None);
    let shown = format!("{creds:?}");
    assert!(!shown.contains("super-secret-value"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    assert_eq!(creds.secret_access_key, Credentials::new("x", "super-secret-value", None).secret_access_key);
    assert_ne!(creds.secret_access_key, Credentials::new("x", "super-secret-valuf", None).secret_access_key);
}
