//! The fleet tier: a real 3-node Garage cluster (replication factor 3) on 127.0.0.1-3, two
//! minting gateways in s3 mode sharing one secret, and a store front (a gateway whose origin
//! pool is the Garage nodes, with an HTTP health check on Garage's `/health`). It shows that
//! every dialect's upload lands and reads back through another node, that a node killed
//! under load costs no upload and leaves the pool within a health interval, that a node
//! without quorum (still accepting connections, answering 503) is taken out, and that URLs a
//! killed gateway minted keep working.
//!
//! Needs `garage` (cargo install garage@2.5.0 --locked; scripts/setup.sh installs it when
//! missing).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::garage::{Garage, GARAGE_KEY_ID, GARAGE_REGION, GARAGE_SECRET};
use common::metrics::metric;
use common::{client, post_json, Gateway, GatewayOpts};
use presign_gateway::sigv4::{Credentials, PresignRequest, Signer};
use serde_json::{json, Value};

const SECRET: &str = "fleet-tier-secret-0123456789abcdef0123456789";
const HEALTH_INTERVAL_MS: u64 = 500;
const HEALTH_TIMEOUT_MS: u64 = 500;

fn pool_yaml(g: &Garage) -> String {
    format!(
        "origin_pool:\n  selection: least_connections\n  health_check: {{kind: http, path: /health, port: {}, healthy_statuses: [200], interval_ms: {HEALTH_INTERVAL_MS}, timeout_ms: {HEALTH_TIMEOUT_MS}, fall: 1, rise: 1}}\n  passive: {{max_failures: 1, eject_ms: 2000}}\n",
        g.admin_port
    )
}

fn s3_storage(endpoint: &str) -> String {
    format!(
        "  s3:\n    endpoint: {endpoint}\n    region: {GARAGE_REGION}\n    bucket: media\n    addressing: path\n    access_key_id_env: FLEET_AKID\n    secret_access_key_env: FLEET_SECRET\n"
    )
}

fn member(g: &Garage, endpoint: &str) -> Gateway {
    let addrs = g.s3_addrs();
    Gateway::start(GatewayOpts {
        origin: Some(addrs[0].parse().unwrap()),
        more_origins: addrs[1..].to_vec(),
        metrics: true,
        storage_yaml: Some(s3_storage(endpoint)),
        extra_yaml: pool_yaml(g),
        env: vec![
            ("FLEET_AKID".into(), GARAGE_KEY_ID.into()),
            ("FLEET_SECRET".into(), GARAGE_SECRET.into()),
            ("PRESIGN_GATEWAY_SECRET".into(), SECRET.into()),
        ],
        ..Default::default()
    })
}

struct Fleet {
    garage: Garage,
    front: Gateway,
    a: Gateway,
    b: Gateway,
}

impl Fleet {
    fn start() -> Fleet {
        let garage = Garage::start();
        // The store front's own upload routes are not used; its storage names node 1.
        let front = member(&garage, &format!("http://{}", garage.s3_addr(0)));
        let endpoint = format!("http://{}", front.addr);
        let a = member(&garage, &endpoint);
        let b = member(&garage, &endpoint);
        Fleet { garage, front, a, b }
    }

    /// A signed GET of `key` for the host `host` (any node, or the store front).
    fn signed_get(host: &str, key: &str) -> String {
        let signer = Signer::new(Credentials::new(GARAGE_KEY_ID, GARAGE_SECRET, None), GARAGE_REGION, "s3");
        signer.presign_url(
            &PresignRequest {
                method: "GET",
                scheme: "http",
                host,
                path: &format!("/media/{key}"),
                expires_in: 600,
                headers: &[],
            },
            time::OffsetDateTime::now_utc(),
        )
    }

    async fn read(&self, host: &str, key: &str) -> (u16, Vec<u8>) {
        let r = client().get(Self::signed_get(host, key)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
    }
}

fn body(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

/// Mint through API Mall on `gw`; (upload URL, key).
async fn mint(gw: &Gateway, len: usize) -> Result<(String, String), String> {
    let (s, v) = post_json(
        &gw.url("/api/v1/files/upload-url"),
        Some("Bearer demo-key"),
        &json!({"filename":"f.png","content_type":"image/png","file_size":len}).to_string(),
    )
    .await;
    if s != 200 {
        return Err(format!("mint {s}: {v}"));
    }
    Ok((
        v["data"]["upload_url"].as_str().unwrap().to_string(),
        v["data"]["key"].as_str().unwrap().to_string(),
    ))
}

async fn put(url: &str, bytes: Vec<u8>) -> Result<(), String> {
    let r = client()
        .put(url)
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 200 {
        return Err(format!("PUT {}: {}", r.status(), r.text().await.unwrap_or_default()));
    }
    Ok(())
}

/// A PUT as S3 clients make it: one retry on a 5xx or a broken connection (boto3's and the
/// AWS SDKs' default). The store front never replays a request that was partly sent, so the
/// uploads in flight on a node at the moment it dies get a 502 and are retried here.
async fn put_as_s3_clients_do(url: &str, bytes: Vec<u8>, retried: &AtomicUsize) -> Result<(), String> {
    match put(url, bytes.clone()).await {
        Ok(()) => Ok(()),
        Err(e) if e.starts_with("PUT 5") || !e.starts_with("PUT ") => {
            retried.fetch_add(1, Ordering::SeqCst);
            put(url, bytes).await.map_err(|again| format!("{e}, then after a retry: {again}"))
        }
        Err(e) => Err(e),
    }
}

async fn every_dialect_lands_and_reads_back_through_another_node(f: &Fleet) {
    let bytes = body(1, 30_000);
    let n = bytes.len();
    for (gw, name) in [(&f.a, "a"), (&f.b, "b")] {
        for (path, req, url_field, key_field) in common::form::put_dialect_mints(n) {
            let (s, v) = post_json(&gw.url(path), Some("Bearer demo-key"), &req.to_string()).await;
            assert_eq!(s, 200, "{name} {path}: {v}");
            let url = v.pointer(url_field).and_then(Value::as_str).unwrap();
            assert!(
                url.starts_with(&format!("http://{}/media/", f.front.addr)),
                "through the store front: {url}"
            );
            put(url, bytes.clone()).await.unwrap_or_else(|e| panic!("{name} {path}: {e}"));
            let key = v.pointer(key_field).and_then(Value::as_str).unwrap();
            for node in 0..3 {
                let (status, got) = f.read(&f.garage.s3_addr(node).to_string(), key).await;
                assert_eq!((status, got == bytes), (200, true), "{name} {path} read back on node {node}");
            }
        }
        // memories: the relay POST to the gateway, which PUTs through the store front.
        let (s, v) = post_json(
            &gw.url("/serve/api/v2/upload/signed-url"),
            Some("demo-key"),
            r#"{"original_filename":"v.mp4"}"#,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let url = v["data"]["signed_url"].as_str().unwrap();
        let asset = v["data"]["asset_id"].as_str().unwrap();
        let r = client()
            .post(url)
            .header("content-type", common::form::form_content_type())
            .body(common::form::form_body(&[], "v.mp4", "video/mp4", &bytes))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "memories relay on {name}: {}", r.text().await.unwrap());
        let key = format!("uploads/user/12/assets/{asset}.mp4");
        let (status, got) = f.read(&f.garage.s3_addr(2).to_string(), &key).await;
        assert_eq!((status, got == bytes), (200, true), "memories on {name} read back on node 2");
    }
    // A URL minted on A, used through B's address (a load balancer keeps the Host).
    let (url, key) = mint(&f.a, n).await.unwrap();
    let path = url.split_once(&f.front.addr.to_string()).unwrap().1;
    let r = client()
        .put(f.b.url(path))
        .header("host", f.front.addr.to_string())
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "A's URL through B: {}", r.text().await.unwrap());
    assert_eq!(f.read(&f.front.addr.to_string(), &key).await, (200, bytes));
}

async fn wait_metric(gw: &Gateway, series: &str, want: f64, within: Duration) -> Duration {
    let started = Instant::now();
    while metric(gw, series).await != want {
        assert!(started.elapsed() < within, "{series} never became {want} within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

async fn a_node_killed_under_load_costs_no_upload(f: &mut Fleet) -> String {
    const UPLOADS: usize = 300;
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicUsize::new(0));
    let urls = [f.a.url(""), f.b.url("")];
    const WORKERS: usize = 8;
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (done, failures, keys, next, urls) =
            (done.clone(), failures.clone(), keys.clone(), next.clone(), urls.clone());
        let retried = retried.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= UPLOADS {
                    return;
                }
                let len = 20_000 + (i * 997) % 40_000;
                let url = format!("{}/api/v1/files/upload-url", urls[i % 2]);
                let (s, v) = post_json(
                    &url,
                    Some("Bearer demo-key"),
                    &json!({"filename":"f.png","content_type":"image/png","file_size":len}).to_string(),
                )
                .await;
                let outcome = if s != 200 {
                    Err(format!("mint {s}: {v}"))
                } else {
                    let up = v["data"]["upload_url"].as_str().unwrap().to_string();
                    let key = v["data"]["key"].as_str().unwrap().to_string();
                    put_as_s3_clients_do(&up, body(i, len), &retried).await.map(|()| key)
                };
                match outcome {
                    Ok(key) => keys.lock().unwrap().push((i, len, key)),
                    Err(e) => failures.lock().unwrap().push(format!("upload {i}: {e}")),
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let node = 1;
    let up = format!("presign_origin_up{{origin=\"{}\"}}", f.garage.s3_addr(node));
    common::wait_until_async("100 uploads", Duration::from_secs(120), || done.load(Ordering::SeqCst) >= 100)
        .await;
    f.garage.kill(node);
    let left_after = wait_metric(&f.front, &up, 0.0, Duration::from_secs(10)).await;
    common::wait_until_async("200 uploads", Duration::from_secs(120), || done.load(Ordering::SeqCst) >= 200)
        .await;
    f.garage.restart(node);
    let rejoined_after = wait_metric(&f.front, &up, 1.0, Duration::from_secs(60)).await;
    // Back in the pool on its own health; the cluster is whole again once its peers have
    // reconnected to it too.
    tokio::task::block_in_place(|| f.garage.wait_fully_connected());
    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} of {UPLOADS} uploads failed: {failures:#?}", failures.len());
    let retried = retried.load(Ordering::SeqCst);
    assert!(
        retried <= 2 * WORKERS,
        "{retried} client retries: more than the uploads in flight at a kill and a restart"
    );
    let limit = Duration::from_millis(HEALTH_INTERVAL_MS + HEALTH_TIMEOUT_MS + 500);
    assert!(
        left_after <= limit,
        "the dead node left the pool after {left_after:?} (interval {HEALTH_INTERVAL_MS} ms)"
    );
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), UPLOADS);
    let front = f.front.addr.to_string();
    for (i, len, key) in &keys {
        let (status, got) = f.read(&front, key).await;
        assert_eq!(status, 200, "upload {i} reads back");
        assert!(got == body(*i, *len), "upload {i} byte-equal");
    }
    let retries: f64 = {
        let mut sum = 0.0;
        for addr in f.garage.s3_addrs() {
            sum += metric(&f.front, &format!("presign_origin_retries_total{{origin=\"{addr}\"}}")).await;
        }
        sum
    };
    format!(
        "{UPLOADS} uploads over 2 gateways ({WORKERS} at a time), node {node} SIGKILLed after 100 and restarted after 200: 0 failed, all byte-equal; {retried} in flight on the node when it died got a 502 and succeeded on the client's retry; the store front retried {retries} request(s) on another node itself; the node left the pool {left_after:?} after the kill (health interval {HEALTH_INTERVAL_MS} ms), back {rejoined_after:?} after the restart"
    )
}

async fn a_node_without_quorum_is_taken_out(f: &mut Fleet) {
    let node = 2;
    let host = f.garage.s3_addr(node).to_string();
    let up = format!("presign_origin_up{{origin=\"{host}\"}}");
    f.garage.isolate(node);
    // It accepts connections and answers, but cannot reach quorum.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = f.read(&host, "uploads/nothing-here").await;
        if status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "the isolated node never answered 503 (last {status})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_metric(&f.front, &up, 0.0, Duration::from_secs(10)).await;
    for i in 0..10 {
        let (url, key) = mint(&f.a, 1000).await.unwrap();
        put(&url, body(1000 + i, 1000))
            .await
            .unwrap_or_else(|e| panic!("upload {i} with node {node} isolated: {e}"));
        assert_eq!(f.read(&f.front.addr.to_string(), &key).await.0, 200);
    }
    f.garage.heal(node);
    wait_metric(&f.front, &up, 1.0, Duration::from_secs(60)).await;
    tokio::task::block_in_place(|| f.garage.wait_fully_connected());
}

async fn urls_minted_by_a_killed_gateway_keep_working(f: &mut Fleet) {
    let mut minted = Vec::new();
    for i in 0..10 {
        minted.push((i, mint(&f.a, 5000).await.unwrap()));
    }
    f.a.child.kill().unwrap();
    let _ = f.a.child.wait();
    for (i, (url, key)) in minted {
        if i % 2 == 0 {
            put(&url, body(2000 + i, 5000)).await.unwrap();
        } else {
            let path = url.split_once(&f.front.addr.to_string()).unwrap().1;
            let r = client()
                .put(f.b.url(path))
                .header("host", f.front.addr.to_string())
                .header("content-type", "image/png")
                .body(body(2000 + i, 5000))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "through B");
        }
        assert_eq!(f.read(&f.front.addr.to_string(), &key).await, (200, body(2000 + i, 5000)));
    }
    assert!(mint(&f.b, 10).await.is_ok(), "B still mints");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_over_garage() {
    let mut f = Fleet::start();
    every_dialect_lands_and_reads_back_through_another_node(&f).await;
    let summary = a_node_killed_under_load_costs_no_upload(&mut f).await;
    eprintln!("fleet: {summary}");
    a_node_without_quorum_is_taken_out(&mut f).await;
    urls_minted_by_a_killed_gateway_keep_working(&mut f).await;
}
