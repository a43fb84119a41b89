//! The strict verifier, part two: every breach of the presigned-URL rules is refused with
//! S3's code and status: expiry and the `X-Amz-Expires` bounds, malformed or duplicated
//! parameters, scope (region, service, date), unknown access key, clock skew, the host header,
//! the algorithm, missing authentication, a bad escape in the path. The shared signer and
//! check are in `common::verify`.

mod common;

use common::verify::*;
use presign_gateway::sigv4::{Credentials, Signer, VerifyError};
use time::Duration;

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
