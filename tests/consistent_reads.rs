//! A GET during concurrent overwrites returns one whole version, old or new, with the
//! headers of those bytes (length, ETag, type): never a mix, never a short body.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use sha2::{Digest, Sha256};

const SECRET: &str = "consistent-reads-test-secret-0123456789abc";
const KEY: &str = "uploads/user/12/overwritten.bin";
const OVERWRITES: usize = 100;

/// Version `i`: its own size, every byte `i`, and a type that alternates.
fn version(i: usize) -> (Vec<u8>, &'static str) {
    let ty = if i % 2 == 0 { "image/png" } else { "video/mp4" };
    (vec![i as u8; 100_000 + i * 7919], ty)
}

async fn put(gw: &Gateway, i: usize) {
    let (body, ty) = version(i);
    let r = client()
        .put(gw.local_put_url(SECRET, KEY, ty))
        .header("content-type", ty)
        .body(body)
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 200, "version {i}");
}

/// One GET checked: the bytes are one version whole, and every header is that version's.
async fn read_once(url: &str, range: bool) -> usize {
    let mut req = client().get(url);
    if range {
        req = req.header("range", "bytes=50000-");
    }
    let r = req.send().await.expect("GET");
    assert_eq!(r.status(), if range { 206 } else { 200 });
    let h = r.headers().clone();
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = r.bytes().await.expect("a whole body");
    assert_eq!(header("content-length"), body.len().to_string());
    let i = usize::from(body[0]);
    let (want, ty) = version(i);
    assert!(body.iter().all(|&b| usize::from(b) == i), "bytes of two versions in one body");
    assert_eq!(header("content-type"), ty, "type of another version (bytes of {i})");
    if range {
        assert_eq!(body.len(), want.len() - 50_000, "version {i}");
        assert_eq!(header("content-range"), format!("bytes 50000-{}/{}", want.len() - 1, want.len()));
    } else {
        assert_eq!(body.len(), want.len(), "short or long body for version {i}");
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
        assert_eq!(header("etag"), etag, "ETag of another version (bytes of {i})");
    }
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_overwrites_see_one_whole_version() {
    let gw = Arc::new(Gateway::start(GatewayOpts {
        env: vec![("PRESIGN_GATEWAY_SECRET".into(), SECRET.into())],
        ..Default::default()
    }));
    put(&gw, 0).await;
    let done = Arc::new(AtomicBool::new(false));
    let url = gw.url(&format!("/files/{KEY}"));
    let readers: Vec<_> = (0..2)
        .map(|n| {
            let (done, url) = (done.clone(), url.clone());
            tokio::spawn(async move {
                let mut seen = std::collections::BTreeSet::new();
                let mut reads = 0usize;
                while !done.load(Ordering::SeqCst) {
                    seen.insert(read_once(&url, n == 1 && reads % 2 == 1).await);
                    reads += 1;
                }
                (reads, seen)
            })
        })
        .collect();
    for i in 1..=OVERWRITES {
        put(&gw, i).await;
    }
    done.store(true, Ordering::SeqCst);
    let mut versions = std::collections::BTreeSet::new();
    for r in readers {
        let (reads, seen) = r.await.expect("reader");
        assert!(reads > 0);
        versions.extend(seen);
    }
    // The readers really raced the writer: they saw more than the first and last versions.
    assert!(versions.len() > 2, "versions seen: {versions:?}");
    assert_eq!(read_once(&url, false).await, OVERWRITES, "the last write wins");
}
