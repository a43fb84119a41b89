//! Property test against botocore: seeded random presign cases (awkward keys, methods,
//! expiries, signed headers, times, with and without a session token) are presigned by us
//! and by botocore's `S3SigV4QueryAuth` (tests/botocore_presign.py); the URLs must be equal
//! byte for byte. Each of our URLs must also pass our own verifier.
//!
//! Needs python3 with botocore (CI installs boto3). Without them this test fails: it never
//! passes silently.

use std::process::Command;

use presign_gateway::sigv4::{verify_presigned, Credentials, PresignRequest, PresignedRequest, Signer};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::OffsetDateTime;

const CASES: usize = 300;
const SEED: u64 = 0x5167_0004;

struct Case {
    method: &'static str,
    scheme: &'static str,
    host: &'static str,
    path: String,
    expires: u32,
    headers: Vec<(String, String)>,
    access_key: String,
    secret_key: String,
    token: Option<String>,
    region: &'static str,
    time: OffsetDateTime,
}

const KEY_PIECES: &[&str] = &[
    "a",
    "photo",
    "IMG_0001",
    "file.png",
    " ",
    "+",
    "=",
    "%",
    "~",
    "/",
    "//",
    "-",
    "_",
    ".",
    "..",
    "!",
    "*",
    "'",
    "(",
    ")",
    "&",
    "$",
    "@",
    ":",
    ",",
    ";",
    "?",
    "#",
    "[",
    "]",
    "%20",
    "%2F",
    "é",
    "日本語",
    "😀",
    "ü",
    "a b",
    "c+d",
    "e=f",
    "Ω",
    "\u{202e}",
];

fn random_string(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| char::from(*alphabet.choose(rng).unwrap_or(&b'x'))).collect()
}

fn random_case(rng: &mut StdRng) -> Case {
    let mut key = String::new();
    if rng.gen_bool(0.1) {
        key.push('/');
    }
    for _ in 0..rng.gen_range(1..8) {
        key.push_str(KEY_PIECES.choose(rng).unwrap_or(&"k"));
    }
    if rng.gen_bool(0.15) {
        key.push('/');
    }
    let bucket = *["examplebucket", "media", "uploads-1", "a.b.c"].choose(rng).unwrap_or(&"b");
    let mut headers = Vec::new();
    if rng.gen_bool(0.6) {
        let name = if rng.gen_bool(0.5) { "content-type" } else { "Content-Type" };
        let value = *[
            "image/png",
            "video/mp4",
            "audio/mpeg",
            "application/octet-stream",
            "text/plain; charset=utf-8",
        ]
        .choose(rng)
        .unwrap_or(&"image/png");
        headers.push((name.to_owned(), value.to_owned()));
    }
    if rng.gen_bool(0.5) {
        headers.push(("content-length".to_owned(), rng.gen_range(0u64..104_857_600).to_string()));
    }
    for i in 0..rng.gen_range(0..3) {
        let value_alphabet = b"abcXYZ019 -_.:/=+;,\"'()!*";
        let len = rng.gen_range(0..20);
        headers.push((
            format!("x-amz-meta-{}{}", random_string(rng, b"abcdefgh", 3), i),
            random_string(rng, value_alphabet, len),
        ));
    }
    let token = rng.gen_bool(0.4).then(|| {
        let len = rng.gen_range(16..300);
        random_string(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", len)
    });
    Case {
        method: ["GET", "PUT", "POST", "DELETE"].choose(rng).copied().unwrap_or("PUT"),
        scheme: ["http", "https"].choose(rng).copied().unwrap_or("https"),
        host: [
            "s3.us-east-1.amazonaws.com",
            "127.0.0.1:9000",
            "localhost:8080",
            "minio.internal:9000",
            "storage.example.com",
        ]
        .choose(rng)
        .copied()
        .unwrap_or("localhost:9000"),
        path: format!("/{bucket}/{key}"),
        expires: rng.gen_range(1..=604_800),
        headers,
        access_key: format!("AKIA{}", random_string(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
        secret_key: random_string(
            rng,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        ),
        token,
        region: ["us-east-1", "eu-west-3", "auto", "garage", "ap-southeast-2"]
            .choose(rng)
            .copied()
            .unwrap_or("us-east-1"),
        time: OffsetDateTime::from_unix_timestamp(rng.gen_range(946_684_800..2_145_916_800))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

fn timestamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn botocore_urls(cases: &[Case]) -> Vec<String> {
    let payload: Vec<_> = cases
        .iter()
        .map(|c| {
            json!({
                "method": c.method, "scheme": c.scheme, "host": c.host, "path": c.path,
                "expires": c.expires, "headers": c.headers, "access_key": c.access_key,
                "secret_key": c.secret_key, "token": c.token, "region": c.region,
                "timestamp": timestamp(c.time),
            })
        })
        .collect();
    let file = std::env::temp_dir().join(format!("sigv4-botocore-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&payload).expect("json")).expect("write cases");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/botocore_presign.py");
    let output = Command::new("python3").arg(script).arg(&file).output();
    let _ = std::fs::remove_file(&file);
    let output = output.unwrap_or_else(|e| {
        panic!("this test needs python3 with botocore (pip install boto3): cannot run python3: {e}")
    });
    assert!(
        output.status.success(),
        "this test needs python3 with botocore (pip install boto3); the script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("botocore output is a JSON list of URLs")
}

#[test]
fn presigned_urls_equal_botocore() {
    let mut rng = StdRng::seed_from_u64(SEED);
    let cases: Vec<Case> = (0..CASES).map(|_| random_case(&mut rng)).collect();
    let expected = botocore_urls(&cases);
    assert_eq!(expected.len(), CASES);

    let mut mismatches = Vec::new();
    for (case, expected) in cases.iter().zip(&expected) {
        let signer = Signer::new(
            Credentials::new(&case.access_key, &case.secret_key, case.token.clone()),
            case.region,
            "s3",
        );
        let headers: Vec<(&str, &str)> = case.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let req = PresignRequest {
            method: case.method,
            scheme: case.scheme,
            host: case.host,
            path: &case.path,
            expires_in: case.expires,
            headers: &headers,
        };
        let ours = signer.presign_url(&req, case.time);
        if &ours != expected {
            mismatches.push(format!("path {:?}\n ours     {ours}\n botocore {expected}", case.path));
            continue;
        }

        // Our own verifier accepts it, as received.
        let after_authority = &ours[case.scheme.len() + 3 + case.host.len()..];
        let (raw_path, raw_query) = after_authority.split_once('?').expect("query");
        let mut map = http::HeaderMap::new();
        map.insert("host", case.host.parse().expect("host"));
        for (n, v) in &case.headers {
            map.append(http::HeaderName::from_bytes(n.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        let received = PresignedRequest { method: case.method, raw_path, raw_query, headers: &map };
        if let Err(e) = verify_presigned(&signer, &received, case.time) {
            mismatches.push(format!("verify refused {ours}: {e}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {CASES} cases differ; first ones:\n{}",
        mismatches.len(),
        mismatches.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}
