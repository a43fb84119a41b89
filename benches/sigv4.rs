//! Presigning one PUT URL (host, content-type and content-length signed), side by side:
//! - `ours/cached`: the shipped path, signing key cached per date;
//! - `ours/cold`: a fresh `Signer` per URL, so the key chain (four HMACs) is derived each time;
//! - `aws-sigv4`: the official crate with the same inputs (its key is derived per call).
//!
//! Run: `cargo bench --bench sigv4`

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use criterion::{criterion_group, criterion_main, Criterion};
use presign_gateway::sigv4::{Credentials, PresignRequest, Signer};
use time::macros::datetime;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HOST: &str = "examplebucket.s3.us-east-1.amazonaws.com";
const PATH: &str = "/media/uploads/2024/03/01/0f8e6c1a-4b1e-4f7e-9d7a-1c2b3a4d5e6f.png";
const HEADERS: &[(&str, &str)] = &[("content-type", "image/png"), ("content-length", "524288")];

fn request() -> PresignRequest<'static> {
    PresignRequest {
        method: "PUT",
        scheme: "https",
        host: HOST,
        path: PATH,
        expires_in: 900,
        headers: HEADERS,
    }
}

fn presign(c: &mut Criterion) {
    let now = datetime!(2024-03-01 12:00:00 UTC);
    let mut group = c.benchmark_group("presign_put_url");

    let signer = Signer::new(Credentials::new(AKID, SECRET, None), "us-east-1", "s3");
    group.bench_function("ours/cached", |b| {
        b.iter(|| signer.presign_url(black_box(&request()), black_box(now)))
    });

    group.bench_function("ours/cold", |b| {
        b.iter(|| {
            let signer = Signer::new(Credentials::new(AKID, SECRET, None), "us-east-1", "s3");
            signer.presign_url(black_box(&request()), black_box(now))
        })
    });

    let identity: Identity = AwsCredentials::new(AKID, SECRET, None, None, "bench").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(900));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_294_400))
        .settings(settings)
        .build()
        .map(Into::into);
    let Ok(params) = params else { panic!("aws-sigv4 signing params") };
    let uri = format!("https://{HOST}{PATH}");
    group.bench_function("aws-sigv4", |b| {
        b.iter(|| {
            let headers = [("host", HOST)].into_iter().chain(HEADERS.iter().copied());
            let req =
                SignableRequest::new("PUT", black_box(uri.as_str()), headers, SignableBody::UnsignedPayload);
            let Ok(req) = req else { panic!("request") };
            let Ok(out) = sign(req, &params) else { panic!("sign") };
            // Build the URL as a caller would, so both sides produce the same thing.
            let (instructions, _) = out.into_parts();
            let mut url = uri.clone();
            for (i, (k, v)) in instructions.params().iter().enumerate() {
                url.push(if i == 0 { '?' } else { '&' });
                url.push_str(k);
                url.push('=');
                url.push_str(v);
            }
            url
        })
    });
    group.finish();
}

criterion_group!(benches, presign);
criterion_main!(benches);
