//! The presigned-query parser and verifier under arbitrary input: never a panic; a URL the
//! signer minted verifies; any edit to its query, path or signed headers is refused.
//! `PROPTEST_CASES` sets the number of cases (default 2000).

use presign_gateway::sigv4::{verify_presigned, Credentials, PresignRequest, PresignedRequest, Signer};
use proptest::prelude::*;
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2024-03-01 12:00:00 UTC);

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn signer() -> Signer {
    Signer::new(Credentials::new("AKIDGATEWAY", "gateway/secret+key=", None), "us-east-1", "s3")
}

fn headers(ct: &str) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    map.insert("host", "127.0.0.1:8080".parse().expect("host"));
    if let Ok(v) = ct.parse() {
        map.insert("content-type", v);
    }
    map
}

fn check(path: &str, query: &str, map: &http::HeaderMap) -> bool {
    verify_presigned(
        &signer(),
        &PresignedRequest { method: "PUT", raw_path: path, raw_query: query, headers: map },
        NOW,
    )
    .is_ok()
}

/// Query strings made of the presigned parameters' own pieces, shuffled and broken.
fn query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("X-Amz-Algorithm=AWS4-HMAC-SHA256".to_string()),
        Just("X-Amz-Credential=AKIDGATEWAY%2F20240301%2Fus-east-1%2Fs3%2Faws4_request".to_string()),
        Just("X-Amz-Date=20240301T120000Z".to_string()),
        "X-Amz-Expires=[0-9]{0,8}",
        "X-Amz-SignedHeaders=[a-z;%-]{0,20}",
        "X-Amz-Signature=[0-9a-f]{0,70}",
        "[A-Za-z%=&;+-]{0,12}",
        "\\PC{0,10}",
    ];
    prop::collection::vec(piece, 0..9).prop_map(|v| v.join("&"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_queries_never_panic(q in query(), path in "/[a-z%0-9./]{0,20}") {
        let _ = check(&path, &q, &headers("image/png"));
    }

    #[test]
    fn minted_urls_verify_and_edits_do_not(
        key in "[a-zA-Z0-9 +._-]{1,20}",
        ct in "[a-z]{1,8}/[a-z0-9.+-]{1,10}",
        expires in 1u32..=604_800,
        at in 0usize..400,
        byte in 0x21u8..0x7f,
    ) {
        let path = format!("/media/{key}");
        let url = signer().presign_url(
            &PresignRequest { method: "PUT", scheme: "http", host: "127.0.0.1:8080", path: &path, expires_in: expires, headers: &[("content-type", &ct)] },
            NOW,
        );
        let rest = url.strip_prefix("http://127.0.0.1:8080").expect("prefix");
        let (raw_path, raw_query) = rest.split_once('?').expect("query");
        prop_assert!(check(raw_path, raw_query, &headers(&ct)), "{url}");
        prop_assert!(!check(raw_path, raw_query, &headers(&format!("{ct}x"))), "another type");
        // Replace one byte of the query with another byte.
        let mut q = raw_query.as_bytes().to_vec();
        let i = at % q.len();
        prop_assume!(q[i] != byte);
        // A hex digit's case inside a percent escape decodes to the same byte: not an edit.
        let in_escape = (i >= 1 && q[i - 1] == b'%') || (i >= 2 && q[i - 2] == b'%');
        prop_assume!(!(in_escape && q[i].eq_ignore_ascii_case(&byte)));
        q[i] = byte;
        let edited = String::from_utf8_lossy(&q).into_owned();
        prop_assert!(!check(raw_path, &edited, &headers(&ct)), "{edited}");
    }
}
