//! What the strict verifier's tests share (`sigv4_verify_tampering.rs`,
//! `sigv4_verify_rules.rs`): one signer, a URL it mints at a fixed instant, the request headers
//! and the check itself.

use presign_gateway::sigv4::{
    verify_presigned, Credentials, PresignRequest, PresignedRequest, Signer, Verified, VerifyError,
};
use time::macros::datetime;
use time::OffsetDateTime;

pub const NOW: OffsetDateTime = datetime!(2024-03-01 12:00:00 UTC);
pub const HOST: &str = "127.0.0.1:8080";

pub fn signer() -> Signer {
    Signer::new(Credentials::new("AKIDGATEWAY", "gateway/secret+key=", None), "us-east-1", "s3")
}

/// A URL for PUT /media/uploads/a b+c.png with content-type and content-length signed.
pub fn mint(signer: &Signer, expires_in: u32, at: OffsetDateTime) -> String {
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

pub fn headers(host: Option<&str>, content_type: &str) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    if let Some(host) = host {
        map.insert("host", host.parse().expect("host"));
    }
    map.insert("content-type", content_type.parse().expect("ct"));
    map.insert("content-length", "524288".parse().expect("cl"));
    map
}

/// Splits a minted URL into (raw path, raw query).
pub fn split(url: &str) -> (String, String) {
    let rest = url.strip_prefix(&format!("http://{HOST}")).expect("prefix");
    let (path, query) = rest.split_once('?').expect("query");
    (path.to_owned(), query.to_owned())
}

pub fn check(
    signer: &Signer,
    path: &str,
    query: &str,
    map: &http::HeaderMap,
    now: OffsetDateTime,
) -> Result<Verified, VerifyError> {
    verify_presigned(
        signer,
        &PresignedRequest { method: "PUT", raw_path: path, raw_query: query, headers: map },
        now,
    )
}

pub fn assert_refused(result: Result<Verified, VerifyError>, code: &str, status: u16) -> VerifyError {
    let err = result.expect_err("must be refused");
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(err.status(), status, "{err}");
    err
}

pub fn replace_param(query: &str, name: &str, value: &str) -> String {
    query
        .split('&')
        .map(|p| if p.starts_with(&format!("{name}=")) { format!("{name}={value}") } else { p.to_owned() })
        .collect::<Vec<_>>()
        .join("&")
}
