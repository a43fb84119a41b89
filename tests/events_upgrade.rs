//! A graceful upgrade (`-u` + SIGQUIT) with events on: the old process keeps the outbox until
//! it exits, the new one opens it then (its uploads wait for it), and every acknowledged
//! upload's event arrives, the one that finished in the draining old process too.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::app::{events_env, events_yaml, wait_app, App};
use common::ports::unix_socket_listening;
use common::*;
use serde_json::json;

/// Kills the new process when the test ends, also when it fails.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn mint_put(gw_url: &str, size: usize) -> (String, String) {
    let (s, v) = post_json(
        &format!("{gw_url}{MINT}"),
        Some("Bearer demo-key"),
        &json!({"filename": "clip.mp4", "content_type": "video/mp4", "file_size": size}).to_string(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (v["data"]["upload_url"].as_str().unwrap().to_owned(), v["data"]["key"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_graceful_upgrade() {
    let app = App::up();
    let work = tempfile::tempdir().unwrap();
    let mut old = Gateway::start(GatewayOpts {
        extra_yaml: events_yaml(&app, &work.path().join("outbox.redb"), ""),
        env: events_env(),
        grace_secs: Some(2),
        ..Default::default()
    });
    let base = old.url("");
    let mut keys = HashSet::new();
    let (url, key) = mint_put(&base, 5).await;
    let r = client().put(&url).header("content-type", "video/mp4").body("hello").send().await.unwrap();
    assert_eq!(r.status(), 200);
    keys.insert(key);

    // A slow upload still in flight at the upgrade: it finishes in the old process.
    let size = 2_000_000;
    let (slow_url, slow_key) = mint_put(&base, size).await;
    let slow = tokio::spawn(async move {
        let stream = futures_util::stream::unfold(0usize, |i| async move {
            if i == 20 {
                return None;
            }
            // Pacing, not synchronisation: the body trickles across the upgrade.
            tokio::time::sleep(Duration::from_millis(150)).await;
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; 100_000])), i + 1))
        });
        let r = client()
            .put(slow_url)
            .header("content-type", "video/mp4")
            .header("content-length", size.to_string())
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    });
    wait_until_async("the slow upload spooling", Duration::from_secs(10), || old.spooling()).await;

    let mut cmd = Command::new(bin());
    cmd.arg("-c").arg(old.dir.path().join("gateway.yaml")).arg("-u").env("RUST_LOG", "warn");
    for (k, v) in events_env() {
        cmd.env(k, v);
    }
    let _new = Kill(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let sock = old.dir.path().join("gw.sock");
    wait_until_async("the new process on the upgrade socket", Duration::from_secs(10), || {
        unix_socket_listening(&sock)
    })
    .await;
    let ok = Command::new("kill").arg("-QUIT").arg(old.child.id().to_string()).status().unwrap();
    assert!(ok.success());

    // Uploads to the new process while the old one drains: answered once the outbox is free.
    for _ in 0..5 {
        let (url, key) = mint_put(&base, 5).await;
        let r = client().put(&url).header("content-type", "video/mp4").body("hello").send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        keys.insert(key);
    }
    assert_eq!(slow.await.unwrap(), 200, "the slow upload finished in the old process");
    keys.insert(slow_key);
    let status = old.child.wait().unwrap();
    assert!(status.success() || status.code().is_none(), "old process: {status}");

    wait_app("every event after the upgrade", Duration::from_secs(60), || keys.is_subset(&app.keys())).await;
    assert_eq!(app.bad_signatures(), 0);
}
