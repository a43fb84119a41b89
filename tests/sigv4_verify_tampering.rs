//! The strict verifier, part one: a URL we mint verifies (also respelled in an equivalent
//! encoding), and every tampering with what it signed (signature, path, content type, secret,
//! an added query parameter, the session token) is refused as S3 refuses it. The shared
//! signer and check are in `common::verify`.

mod common;

use common::verify::*;
use presign_gateway::sigv4::{Credentials, Signer};
use time::Duration;

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
