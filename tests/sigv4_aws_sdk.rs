//! Cross-check against the official `aws-sigv4` crate (dev-dependency only): the same inputs
//! must give the same signature, in the query form (presigned URLs) and the header form.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use presign_gateway::sigv4::{
    encode_path, sha256_hex, Credentials, HeaderSignRequest, PresignRequest, Signer,
};
use time::macros::datetime;
use time::OffsetDateTime;

struct Case {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    token: Option<&'static str>,
    expires: u32,
    at: OffsetDateTime,
}

const CASES: &[Case] = &[
    Case {
        method: "PUT",
        host: "examplebucket.s3.amazonaws.com",
        path: "/media/uploads/a b+c.png",
        headers: &[("content-type", "image/png"), ("content-length", "524288")],
        token: None,
        expires: 900,
        at: datetime!(2024-03-01 12:00:00 UTC),
    },
    Case {
        method: "GET",
        host: "127.0.0.1:9000",
        path: "/bucket/日本語/~tilde/=eq%pct",
        headers: &[],
        token: Some("FwoGZXIvYXdzE+/token=="),
        expires: 604_800,
        at: datetime!(2030-12-31 23:59:59 UTC),
    },
    Case {
        method: "DELETE",
        host: "s3.eu-west-3.amazonaws.com",
        path: "/b//double//slash/",
        headers: &[("x-amz-meta-note", "  spaced   out  ")],
        token: None,
        expires: 1,
        at: datetime!(2015-08-30 12:36:00 UTC),
    },
];

fn system_time(t: OffsetDateTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix_timestamp()).expect("after 1970"))
}

fn aws_signature(
    case: &Case,
    location: SignatureLocation,
    body: SignableBody<'_>,
) -> (String, Vec<(String, String)>) {
    let identity: Identity = AwsCredentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        case.token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.signature_location = location;
    settings.expires_in = Some(Duration::from_secs(u64::from(case.expires)));
    if location == SignatureLocation::Headers {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(system_time(case.at))
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let mut path = String::new();
    encode_path(&mut path, case.path.as_bytes());
    let uri = format!("https://{}{path}", case.host);
    let headers = std::iter::once(("host", case.host)).chain(case.headers.iter().copied());
    let request = SignableRequest::new(case.method, uri, headers, body).expect("request");
    let output = sign(request, &params).expect("sign");
    let signature = output.signature().to_owned();
    let (headers, _) = output.into_parts().0.into_parts();
    let headers = headers.into_iter().map(|h| (h.name().to_owned(), h.value().to_owned())).collect();
    (signature, headers)
}

fn our_signer(case: &Case) -> Signer {
    Signer::new(
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            case.token.map(str::to_owned),
        ),
        "us-east-1",
        "s3",
    )
}

#[test]
fn presigned_signature_equals_aws_sigv4() {
    for case in CASES {
        let url = our_signer(case).presign_url(
            &PresignRequest {
                method: case.method,
                scheme: "https",
                host: case.host,
                path: case.path,
                expires_in: case.expires,
                headers: case.headers,
            },
            case.at,
        );
        let ours = url.rsplit_once("X-Amz-Signature=").expect("signature").1;
        let (theirs, _) = aws_signature(case, SignatureLocation::QueryParams, SignableBody::UnsignedPayload);
        assert_eq!(ours, theirs, "{}", case.path);
    }
}

#[test]
fn header_signature_equals_aws_sigv4() {
    let body_hash = sha256_hex(b"hello upload");
    for case in CASES {
        let ours = our_signer(case).sign_headers(
            &HeaderSignRequest {
                method: case.method,
                host: case.host,
                path: case.path,
                query: &[],
                headers: case.headers,
                payload_sha256_hex: body_hash.as_str(),
            },
            case.at,
        );
        let (signature, theirs) = aws_signature(
            case,
            SignatureLocation::Headers,
            SignableBody::Precomputed(body_hash.as_str().to_owned()),
        );
        let authorization = &ours.iter().find(|(n, _)| *n == "authorization").expect("authorization").1;
        assert!(authorization.ends_with(&format!("Signature={signature}")), "{authorization} vs {signature}");
        let their_authorization = &theirs.iter().find(|(n, _)| n == "authorization").expect("theirs").1;
        assert_eq!(authorization, their_authorization, "{}", case.path);
    }
}
