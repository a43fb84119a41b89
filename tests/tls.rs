//! The TLS listener: HTTP/2 and HTTP/1.1 by ALPN (curl), a client that verifies against the
//! test CA (Python requests), https in gives https out, a bad certificate at start names its
//! file, and the certificate is swapped under load (file change and SIGHUP) with no failed
//! request, a connection open across the swap kept, and a broken file refused.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::TlsOpts;
use common::metrics::metric;
use common::origin::Origin;
use common::pki::TestPki;
use common::{Gateway, GatewayOpts, MINT};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::http_client::MINT_BODY as BODY;

fn tls_gateway(pki: &TestPki, origin: Option<&Origin>, extra: &str) -> Gateway {
    let mut tls = TlsOpts::new(pki);
    tls.extra_yaml = extra.to_string();
    Gateway::start(GatewayOpts {
        origin: origin.map(|o| o.addr),
        tls: Some(tls),
        metrics: true,
        ..Default::default()
    })
}

/// curl against the TLS listener, trusting the test CA; returns (HTTP version, status, body).
fn curl(pki: &TestPki, gw: &Gateway, http: &str, args: &[&str]) -> (String, u16, String) {
    let port = gw.tls_addr.expect("tls").port();
    let out = Command::new("curl")
        .args(["-s", "--noproxy", "*", http, "--cacert"])
        .arg(&pki.ca_file)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1"), "-w", "\n%{http_version} %{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut tail = tail.split_whitespace();
    let version = tail.next().unwrap_or("").to_string();
    let status = tail.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (version, status, body.to_string())
}

#[test]
fn curl_over_h2_and_h1_mints_uploads_downloads_and_passes_through() {
    let pki = TestPki::new("tls test CA");
    let origin = Origin::start();
    let gw = tls_gateway(&pki, Some(&origin), "");
    let data = tempfile::NamedTempFile::new().unwrap();
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let payload = format!("png bytes over {flag}");
        std::fs::write(data.path(), &payload).unwrap();
        let body =
            format!(r#"{{"filename":"a.png","content_type":"image/png","file_size":{}}}"#, payload.len());
        let (v, status, minted) = curl(
            &pki,
            &gw,
            flag,
            &[
                "-X",
                "POST",
                "-H",
                "Authorization: Bearer demo-key",
                "-H",
                "Content-Type: application/json",
                "--data",
                &body,
                &gw.https_url(MINT),
            ],
        );
        assert_eq!((v.as_str(), status), (version, 200), "{minted}");
        let minted: serde_json::Value = serde_json::from_str(&minted).unwrap();
        let upload = minted["data"]["upload_url"].as_str().unwrap();
        let public = minted["data"]["public_url"].as_str().unwrap();
        let https_base = gw.https_url("/");
        assert!(upload.starts_with(&https_base), "https in, https out: {upload}");
        assert!(public.starts_with(&https_base), "{public}");

        let file = format!("@{}", data.path().display());
        let (v, status, answer) = curl(
            &pki,
            &gw,
            flag,
            &["-X", "PUT", "-H", "Content-Type: image/png", "--data-binary", &file, upload],
        );
        assert_eq!((v.as_str(), status), (version, 200), "{answer}");
        let (v, status, got) = curl(&pki, &gw, flag, &[public]);
        assert_eq!((v.as_str(), status, got.as_str()), (version, 200, payload.as_str()));

        let before = origin.count();
        let (v, status, echoed) = curl(&pki, &gw, flag, &[&gw.https_url("/anything/else?q=1")]);
        // The echo origin answers 203: proof the answer came from it, untouched.
        assert_eq!((v.as_str(), status), (version, 203), "{echoed}");
        assert!(echoed.contains("/anything/else?q=1"), "{echoed}");
        assert_eq!(origin.count(), before + 1);
    }
    // The plain listener still speaks plain HTTP, and its URLs stay http.
    let plain = curl_plain_mint(&gw);
    assert!(plain.starts_with(&format!("http://{}/", gw.addr)), "{plain}");
}

fn curl_plain_mint(gw: &Gateway) -> String {
    let out = Command::new("curl")
        .args(["-s", "--noproxy", "*", "-X", "POST", "-H", "Authorization: Bearer demo-key"])
        .args(["-H", "Content-Type: application/json", "--data", BODY])
        .arg(gw.url(MINT))
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["data"]["upload_url"].as_str().unwrap_or_default().to_string()
}

const REQUESTS_CLIENT: &str = r#"
import json, sys, requests
base, ca = sys.argv[1], sys.argv[2]
out = {}
try:
    requests.get(base + "/", timeout=10)
    out["default_trust"] = "accepted"
except requests.exceptions.SSLError:
    out["default_trust"] = "refused"
s = requests.Session()
m = s.post(base + "/api/v1/files/upload-url", timeout=10, verify=ca,
           headers={"Authorization": "Bearer demo-key"},
           json={"filename": "r.png", "content_type": "image/png", "file_size": 7})
out["mint"] = m.status_code
d = m.json()["data"]
out["put"] = s.put(d["upload_url"], data=b"7 bytes", headers={"Content-Type": "image/png"}, timeout=10,
                   verify=ca).status_code
g = s.get(d["public_url"], timeout=10, verify=ca)
out["get"] = [g.status_code, g.content.decode()]
print(json.dumps(out))
"#;

#[test]
fn python_requests_verifies_against_the_test_ca() {
    let pki = TestPki::new("requests CA");
    let gw = tls_gateway(&pki, None, "");
    let base = gw.https_url("");
    let out = Command::new("python3")
        .args(["-c", REQUESTS_CLIENT, &base])
        .arg(&pki.ca_file)
        .env("NO_PROXY", "*")
        // The machine's bundle would otherwise be the default trust (it lacks the test CA,
        // which is the point of the first check).
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["default_trust"], "refused", "an unknown CA must not verify: {v}");
    assert_eq!((v["mint"].as_u64(), v["put"].as_u64()), (Some(200), Some(200)), "{v}");
    assert_eq!(v["get"], serde_json::json!([200, "7 bytes"]));
}

/// `presign-gateway -t` on a config whose `tls:` names these files; returns (ok, stderr).
fn check_config(dir: &Path, cert: &Path, key: &Path) -> (bool, String) {
    let conf = dir.join("check.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:1\nstorage:\n  local:\n    root: {}\ntls:\n  listen: 127.0.0.1:2\n  cert_file: {}\n  key_file: {}\n  reload_check_secs: 0\n",
        dir.join("data").display(),
        cert.display(),
        key.display()
    );
    std::fs::write(&conf, yaml).unwrap();
    let out = Command::new(common::gateway::bin()).arg("-t").arg("-c").arg(&conf).output().expect("run -t");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_missing_unreadable_or_mismatched_certificate_is_a_startup_error_naming_the_file() {
    let pki = TestPki::new("startup CA");
    let dir = pki.dir.path();
    let (ok, err) = check_config(dir, &pki.cert_file, &pki.key_file);
    assert!(ok, "the good pair is valid: {err}");

    let missing = dir.join("nowhere.pem");
    let (ok, err) = check_config(dir, &missing, &pki.key_file);
    assert!(!ok && err.contains("nowhere.pem") && err.contains("cannot read"), "{err}");

    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let (ok, err) = check_config(dir, &garbage, &pki.key_file);
    assert!(!ok && err.contains("garbage.pem") && err.contains("no CERTIFICATE"), "{err}");

    let (_, other_key) = pki.issue("other");
    let other = dir.join("other-key.pem");
    std::fs::write(&other, other_key).unwrap();
    let (ok, err) = check_config(dir, &pki.cert_file, &other);
    assert!(!ok && err.contains("other-key.pem") && err.contains("is not the key"), "{err}");
}

/// The common name of the certificate a fresh handshake gets.
async fn served_cn(pki: &TestPki, gw: &Gateway, names: &[&str]) -> String {
    let stream = tokio::net::TcpStream::connect(gw.tls_addr.unwrap()).await.expect("connect");
    let tls =
        connector(pki).connect(ServerName::try_from("localhost").unwrap(), stream).await.expect("handshake");
    let der = tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    names
        .iter()
        .find(|n| der.windows(n.len()).any(|w| w == n.as_bytes()))
        .map(|n| n.to_string())
        .unwrap_or_default()
}

fn connector(pki: &TestPki) -> tokio_rustls::TlsConnector {
    common::pki::tls_connector(&pki.ca_file, &[])
}

fn https_client(pki: &TestPki) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_file).unwrap()).unwrap();
    // No pooling: every request is a new handshake, so each sees the certificate in force.
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .add_root_certificate(ca)
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap()
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    gw: &Gateway,
    mut f: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(Instant::now() < deadline, "{what} never happened\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Wait until fresh handshakes get the certificate named `want`.
async fn wait_cn(pki: &TestPki, gw: &Gateway, names: &[&str], want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while served_cn(pki, gw, names).await != want {
        assert!(Instant::now() < deadline, "certificate {want} never served\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One mint on an open TLS connection (HTTP/1.1 keep-alive); returns the status line.
async fn mint_on(conn: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    let req = format!(
        "POST {MINT} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer demo-key\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The answer is small and framed by content-length; read until its body is in.
    loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return head.lines().next().unwrap_or("").to_string();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_certificate_is_swapped_under_load_without_a_failed_request() {
    let pki = Arc::new(TestPki::new("reload CA"));
    let gw = Arc::new(tls_gateway(&pki, None, "  reload_check_secs: 1\n"));
    let names = ["first", "second", "third"];
    assert_eq!(served_cn(&pki, &gw, &names).await, "first");

    // A keep-alive connection opened before the swaps, used across them.
    let stream = tokio::net::TcpStream::connect(gw.tls_addr.unwrap()).await.unwrap();
    let mut kept = connector(&pki).connect(ServerName::try_from("localhost").unwrap(), stream).await.unwrap();
    assert!(mint_on(&mut kept).await.contains(" 200 "));

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (client, url) = (https_client(&pki), gw.https_url(MINT));
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match common::http_client::send_mint(&client, &url).await {
                    Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let served = ok.clone();
    wait_until("load", &gw, || {
        let served = served.clone();
        async move { served.load(Ordering::Relaxed) > 50 }
    })
    .await;

    // A renewal written in place: picked up by the watcher.
    pki.issue_to_files("second");
    wait_cn(&pki, &gw, &names, "second").await;
    assert!(mint_on(&mut kept).await.contains(" 200 "), "the connection open across the swap still works");

    // SIGHUP: loaded at once, whatever the watcher's period.
    pki.issue_to_files("third");
    let hup = Command::new("kill").arg("-HUP").arg(gw.child.id().to_string()).status().unwrap();
    assert!(hup.success());
    wait_cn(&pki, &gw, &names, "third").await;

    // A broken file: refused, logged with its name, and the certificate in force stays.
    let errors_before = metric(&gw, "presign_tls_cert_reloads_total{result=\"error\"}").await;
    common::pki::write_atomically(&pki.cert_file, "-----BEGIN CERTIFICATE-----\ntruncated\n");
    let g = gw.clone();
    wait_until("the broken file refused", &gw, || {
        let g = g.clone();
        async move { metric(&g, "presign_tls_cert_reloads_total{result=\"error\"}").await > errors_before }
    })
    .await;
    assert_eq!(served_cn(&pki, &gw, &names).await, "third");
    assert!(gw.log().contains("cert.pem"), "the refusal names the file:\n{}", gw.log());

    let during = ok.load(Ordering::Relaxed);
    let served = ok.clone();
    wait_until("more load after the swaps", &gw, || {
        let served = served.clone();
        async move { served.load(Ordering::Relaxed) > during + 50 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(mint_on(&mut kept).await.contains(" 200 "));
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{} served", ok.load(Ordering::Relaxed));
    assert!(metric(&gw, "presign_tls_cert_reloads_total{result=\"ok\"}").await >= 2.0);
}

/// `-u` + SIGQUIT hands the TLS listener over with the plain one: after the old process has
/// gone, the same port still handshakes (with the same certificate) and mints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_upgrade_hands_the_tls_listener_over() {
    let pki = TestPki::new("upgrade CA");
    let mut old = tls_gateway(&pki, None, "");
    let client = https_client(&pki);
    let mint = common::http_client::send_mint;
    assert_eq!(mint(&client, &old.https_url(MINT)).await.unwrap(), 200);

    let mut new = Command::new(common::gateway::bin())
        .arg("-c")
        .arg(old.dir.path().join("gateway.yaml"))
        .arg("-u")
        .env("RUST_LOG", "warn,pingora_load_balancing=error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sock = old.dir.path().join("gw.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::ports::unix_socket_listening(&sock) {
        assert!(Instant::now() < deadline, "the new process never listened on {}", sock.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quit = Command::new("kill").arg("-QUIT").arg(old.child.id().to_string()).status().unwrap();
    assert!(quit.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while old.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the old process did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Only the new process holds the port now.
    let status = mint(&client, &old.https_url(MINT)).await;
    let _ = new.kill();
    let _ = new.wait();
    assert_eq!(status.expect("a TLS mint on the new process"), 200);
}
