//! A fleet signs alike or refuses to start, and tolerates clocks a little apart: each
//! gateway reports a fingerprint of its secrets (never the secrets), a configured fleet
//! fingerprint that does not match stops start-up, and a URL minted on a gateway whose clock
//! runs ahead works on another, within the documented 15 minutes.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{post_json, Gateway, GatewayOpts};

const SECRET: &str = "fleet-secret-0123456789abcdef0123456789abcdef";
const MINT: &str = "/api/v1/files/upload-url";

fn member(root: &std::path::Path, secret: &str, clock_offset_ms: i64) -> Gateway {
    Gateway::start(GatewayOpts {
        metrics: true,
        no_rust_log: true,
        storage_yaml: Some(format!("  local:\n    root: {}\n    public_path: /files\n", root.display())),
        extra_yaml: "public_base_url: http://fleet.test\n".into(),
        env: vec![
            ("PRESIGN_GATEWAY_SECRET".into(), secret.into()),
            ("PRESIGN_GATEWAY_CLOCK_OFFSET_MS".into(), clock_offset_ms.to_string()),
        ],
        ..Default::default()
    })
}

async fn fingerprint(gw: &Gateway) -> String {
    let text = common::client().get(gw.metrics_url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("presign_secret_fingerprint{") && l.contains("secret=\"gateway\""))
        .unwrap_or_else(|| panic!("no fingerprint in {text}"));
    let fp = line.split("fingerprint=\"").nth(1).and_then(|r| r.split('"').next()).unwrap();
    fp.to_string()
}

#[tokio::test]
async fn gateways_report_their_secrets_fingerprint_and_a_mismatch_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (member(root.path(), SECRET, 0), member(root.path(), SECRET, 0));
    let other = member(root.path(), "another-secret-0123456789abcdef0123456789", 0);
    let fp = fingerprint(&a).await;
    assert_eq!(fp.len(), 12);
    assert_eq!(fingerprint(&b).await, fp, "one secret, one fingerprint");
    assert_ne!(fingerprint(&other).await, fp, "two secrets are told apart");
    assert!(a.log().contains(&format!("secret fingerprints: gateway {fp}")), "{}", a.log());
    for gw in [&a, &b, &other] {
        assert!(
            !gw.log().contains(SECRET) && !gw.log().contains("another-secret"),
            "never the secret itself"
        );
    }

    // A gateway configured with the fleet's fingerprint but another secret does not start.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gw.yaml");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:0\nfleet:\n  gateway_secret_fingerprint: {fp}\nstorage:\n  local:\n    root: {}\nserver:\n  pid_file: {}/p\n  upgrade_sock: {}/s\n",
            dir.path().display(),
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let run = |secret: &str| {
        let mut child = Command::new(common::bin())
            .arg("-c")
            .arg(&conf)
            .env("PRESIGN_GATEWAY_SECRET", secret)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                return Some((status, err));
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                return None; // still running: it started
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (status, err) = run("wrong-secret-0123456789abcdef0123456789ab").expect("a mismatch exits");
    assert!(!status.success());
    assert!(err.contains("fleet.gateway_secret_fingerprint") && err.contains(&fp), "{err}");
}

async fn upload_via(gw: &Gateway, url: &str, body: &'static [u8]) -> u16 {
    // The URL names the fleet's public host; the request goes to this gateway's socket.
    let path = url.strip_prefix("http://fleet.test").unwrap();
    common::client()
        .put(gw.url(path))
        .header("host", "fleet.test")
        .header("content-type", "image/png")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_url_minted_on_a_gateway_running_ahead_works_on_another() {
    let root = tempfile::tempdir().unwrap();
    let ahead = member(root.path(), SECRET, 5_000);
    let far_ahead = member(root.path(), SECRET, 16 * 60 * 1000);
    let on_time = member(root.path(), SECRET, 0);
    let mint = |gw: &Gateway| {
        let url = gw.url(MINT);
        async move {
            let (s, v) = post_json(
                &url,
                Some("Bearer demo-key"),
                r#"{"filename":"a.png","content_type":"image/png","file_size":5}"#,
            )
            .await;
            assert_eq!(s, 200, "{v}");
            v["data"]["upload_url"].as_str().unwrap().to_string()
        }
    };
    let url = mint(&ahead).await;
    assert_eq!(upload_via(&on_time, &url, b"hello").await, 200, "5 s ahead is within the tolerance");
    let url = mint(&on_time).await;
    assert_eq!(upload_via(&ahead, &url, b"hello").await, 200, "and the other way round");
    let url = mint(&far_ahead).await;
    assert_eq!(upload_via(&on_time, &url, b"hello").await, 403, "16 minutes ahead is refused");
}

#[test]
fn the_fleet_example_configs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/fleet/keys.yaml");
    for name in ["gateway.yaml", "store-front.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/fleet").join(name);
        // Only the key file's absolute path is this machine's.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/etc/presign-gateway/keys.yaml", &keys.display().to_string());
        let conf = dir.path().join(name);
        std::fs::write(&conf, text).unwrap();
        let out = Command::new(common::bin())
            .arg("-t")
            .arg("-c")
            .arg(&conf)
            .env("AWS_ACCESS_KEY_ID", "GK0000000000000000000000")
            .env("AWS_SECRET_ACCESS_KEY", "0000000000000000000000000000000000000000000000000000000000000000")
            .env("PRESIGN_GATEWAY_SECRET", SECRET)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
