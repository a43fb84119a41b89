//! The API key file is reloaded on SIGHUP: under mint load nothing fails, a connection open
//! across the reload stays up, the new key works, and a broken file is refused while the
//! old keys stay in force.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::metrics::metric;
use common::{post_json, Gateway, GatewayOpts};

const MINT: &str = "/api/v1/files/upload-url";
const BODY: &str = r#"{"filename":"a.png","content_type":"image/png","file_size":5}"#;

fn write_keys(path: &Path, keys: &[(&str, &str, u64)]) {
    let entries: String = keys
        .iter()
        .map(|(id, key, user)| {
            format!("  - id: {id}\n    sha256: {}\n    user_id: {user}\n", presign_gateway::hash_key(key))
        })
        .collect();
    // Written whole and renamed in, as an operator's deploy tool would.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("api_keys:\n{entries}")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn sighup(gw: &Gateway) {
    let ok = std::process::Command::new("kill").arg("-HUP").arg(gw.child.id().to_string()).status().unwrap();
    assert!(ok.success());
}

async fn wait_metric(gw: &Gateway, series: &str, want: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(gw, series).await < want {
        assert!(std::time::Instant::now() < deadline, "{series} never reached {want}\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request on an open connection; returns the status.
fn mint_on(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, key: &str) -> u16 {
    let req = format!(
        "POST {MINT} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    status.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn sighup_reloads_keys_under_load_and_refuses_a_broken_file() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("keys.yaml");
    write_keys(&keys, &[("a", "key-a", 1)]);
    let mut gw = Gateway::start(GatewayOpts {
        no_api_keys: true,
        metrics: true,
        extra_yaml: format!("api_keys_file: {}\n", keys.display()),
        ..Default::default()
    });
    let (status, _) = post_json(&gw.url(MINT), Some("Bearer key-b"), BODY).await;
    assert_eq!(status, 401, "key-b is not in force yet");

    // A connection opened before the reload.
    let mut kept = TcpStream::connect(gw.addr).unwrap();
    let mut kept_reader = BufReader::new(kept.try_clone().unwrap());
    assert_eq!(mint_on(&mut kept, &mut kept_reader, "key-a"), 200);

    // Mint load with key-a on pooled connections while the file changes.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, done, failed, client, url) =
                (stop.clone(), done.clone(), failed.clone(), client.clone(), gw.url(MINT));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .post(&url)
                        .header("authorization", "Bearer key-a")
                        .header("content-type", "application/json")
                        .body(BODY)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => done.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    common::wait_until_async("load to start", Duration::from_secs(10), || done.load(Ordering::Relaxed) > 50)
        .await;

    write_keys(&keys, &[("a", "key-a", 1), ("b", "key-b", 2)]);
    sighup(&gw);
    wait_metric(&gw, r#"presign_key_reloads_total{result="ok"}"#, 1.0).await;
    let at_reload = done.load(Ordering::Relaxed);
    common::wait_until_async("load after the reload", Duration::from_secs(10), || {
        done.load(Ordering::Relaxed) > at_reload + 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{} mints, none may fail", done.load(Ordering::Relaxed));
    let (status, v) = post_json(&gw.url(MINT), Some("Bearer key-b"), BODY).await;
    assert_eq!(status, 200, "the new key works: {v}");
    assert!(v["data"]["key"].as_str().unwrap().starts_with("uploads/user/2/"), "{v}");
    assert_eq!(mint_on(&mut kept, &mut kept_reader, "key-b"), 200, "the connection stayed up");

    // A broken file: refused with the field named, and the old keys stay in force.
    std::fs::write(
        &keys,
        format!(
            "api_keys:\n  - id: c\n    sha256: {}\n    user_id: 3\n  - id: d\n    sha256: not-a-hash\n    user_id: 4\n",
            presign_gateway::hash_key("key-c")
        ),
    )
    .unwrap();
    sighup(&gw);
    wait_metric(&gw, r#"presign_key_reloads_total{result="refused"}"#, 1.0).await;
    let log = gw.log();
    assert!(
        log.contains("api_keys[1].sha256") && log.contains("keys.yaml"),
        "the log names the field: {log}"
    );
    for (key, want) in [("key-a", 200), ("key-b", 200), ("key-c", 401)] {
        let (status, v) = post_json(&gw.url(MINT), Some(&format!("Bearer {key}")), BODY).await;
        assert_eq!(status, want, "{key}: {v}");
    }
    assert_eq!(metric(&gw, r#"presign_key_reloads_total{result="ok"}"#).await, 1.0);
    assert!(gw.child.try_wait().unwrap().is_none(), "SIGHUP never ends the process");
}

#[test]
fn a_bad_key_file_is_a_startup_error_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.yaml");
    std::fs::write(&keys, "api_keys:\n  - id: ''\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n    user_id: 1\n").unwrap();
    let conf = dir.path().join("gw.yaml");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:1\napi_keys_file: {}\nstorage:\n  local:\n    root: {}\n",
            keys.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::bin()).arg("-t").arg("-c").arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("keys.yaml") && err.contains("api_keys[0].id"), "{err}");
    std::fs::remove_file(&keys).unwrap();
    let out = std::process::Command::new(common::bin()).arg("-t").arg("-c").arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("keys.yaml"), "a missing file is named: {err}");
}
