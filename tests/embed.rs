//! `examples/embed.rs` runs: an operator's own proxy with the upload routes embedded
//! answers mints and uploads, keeps its own routes, and proxies the rest.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example_bin() -> std::path::PathBuf {
    // cargo test builds examples next to the test binaries: target/<profile>/examples/.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = profile_dir.join("examples/embed");
    assert!(p.exists(), "{} missing: run through `cargo test`, which builds examples", p.display());
    p
}

#[tokio::test]
async fn embedded_upload_routes_work_in_a_foreign_proxy() {
    let api = Origin::start();
    let web = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("g.yaml");
    std::fs::write(
        &conf,
        format!(
            "api_keys:\n  - id: demo\n    sha256: {DEMO_KEY_SHA256}\n    user_id: 12\nstorage:\n  local:\n    root: {}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    // The example binds the address it is given: start it on a fresh port, again on another
    // if something takes that port first.
    let log = dir.path().join("embed.log");
    let spawn = |ports: &[u16]| {
        Command::new(example_bin())
            .arg(&conf)
            .arg(format!("127.0.0.1:{}", ports[0]))
            .arg(api.addr.to_string())
            .arg(web.addr.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn embed example")
    };
    let (child, ports) =
        start_listening("embed example", 1, spawn, || std::fs::read_to_string(&log).unwrap_or_default());
    let _guard = Kill(child);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let base = format!("http://{addr}");

    let (status, v) = post_json(
        &format!("{base}/api/v1/files/upload-url"),
        Some("Bearer demo-key"),
        &json!({"filename":"a.png","content_type":"image/png","file_size":3}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let put = client()
        .put(v["data"]["upload_url"].as_str().unwrap())
        .header("content-type", "image/png")
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let got = client().get(v["data"]["public_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"abc");

    // The operator's own routes still work.
    assert_eq!(client().get(format!("{base}/health")).send().await.unwrap().text().await.unwrap(), "ok");
    assert_eq!(client().get(format!("{base}/api/other")).send().await.unwrap().status(), 203);
    assert_eq!(client().get(format!("{base}/page")).send().await.unwrap().status(), 203);
    assert_eq!((api.count(), web.count()), (1, 1), "mint and upload never reached a backend");
}
