//! The presigned-URL example from the S3 documentation ("Example: presigned URL"),
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>, with every
//! stage asserted, plus the header-signing example (GET Object) from
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>.

use presign_gateway::sigv4::{
    sha256_hex, Credentials, HeaderSignRequest, PresignRequest, Signer, EMPTY_PAYLOAD_SHA256,
};
use time::macros::datetime;

fn example_signer() -> Signer {
    Signer::new(
        Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
        "us-east-1",
        "s3",
    )
}

#[test]
fn example_presigned_url() {
    let signer = example_signer();
    let req = PresignRequest {
        method: "GET",
        scheme: "https",
        host: "examplebucket.s3.amazonaws.com",
        path: "/test.txt",
        expires_in: 86400,
        headers: &[],
    };
    let (url, trace) = signer.presign_url_traced(&req, datetime!(2013-05-24 00:00:00 UTC));

    assert_eq!(
        trace.canonical_request,
        "GET\n\
         /test.txt\n\
         X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n\
         host:examplebucket.s3.amazonaws.com\n\
         \n\
         host\n\
         UNSIGNED-PAYLOAD"
    );
    assert_eq!(
        trace.string_to_sign,
        "AWS4-HMAC-SHA256\n\
         20130524T000000Z\n\
         20130524/us-east-1/s3/aws4_request\n\
         3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
    );
    assert_eq!(
        url,
        "https://examplebucket.s3.amazonaws.com/test.txt\
         ?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
         &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    // The untraced path gives the same URL.
    assert_eq!(signer.presign_url(&req, datetime!(2013-05-24 00:00:00 UTC)), url);
}

#[test]
fn example_get_object_header_signing() {
    let signer = example_signer();
    assert_eq!(sha256_hex(b"").as_str(), EMPTY_PAYLOAD_SHA256);
    let headers = signer.sign_headers(
        &HeaderSignRequest {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: &[],
            headers: &[("range", "bytes=0-9")],
            payload_sha256_hex: EMPTY_PAYLOAD_SHA256,
        },
        datetime!(2013-05-24 00:00:00 UTC),
    );
    assert_eq!(
        headers,
        vec![
            ("x-amz-date", "20130524T000000Z".to_owned()),
            ("x-amz-content-sha256", EMPTY_PAYLOAD_SHA256.to_owned()),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
                    .to_owned()
            ),
        ]
    );
}
