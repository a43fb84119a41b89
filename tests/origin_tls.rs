//! `origin_tls`: pass-through to an HTTPS origin on loopback, with a CA made in the test
//! (rcgen). The origin over TLS sees the configured SNI and the same bytes; a certificate from
//! another CA, or without the configured name, fails verification (502, and the origin
//! answers nothing); the health checks speak TLS too; a bad `origin_tls` fails `-t` naming
//! its field.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::metrics::metric;
use common::tls_origin::{TestCa, TlsOrigin};
use common::{wait_until_async, Gateway, GatewayOpts};

/// A check that runs once at startup and can never take the origin out (fall 2), so each
/// request's own handshake is what is tested.
const ONE_CHECK: &str = "origin_pool:\n  health_check: {interval_ms: 3600000, fall: 2}\n";

/// The test's CA, an origin serving a certificate it issued for `localhost` and `127.0.0.1`,
/// and the CA's PEM file.
struct Setup {
    ca: TestCa,
    origin: TlsOrigin,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let ca = TestCa::new("presign-gateway test CA");
        let origin = TlsOrigin::start(ca.issue(&["localhost", "127.0.0.1"]));
        let dir = tempfile::tempdir().expect("tempdir");
        ca.write_pem(&dir.path().join("ca.pem"));
        Setup { ca, origin, dir }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA file of a CA that did not issue the origin's certificate.
    fn other_ca_file(&self) -> PathBuf {
        let path = self.dir.path().join("other-ca.pem");
        TestCa::new("another test CA").write_pem(&path);
        path
    }

    fn gateway(&self, sni: &str, ca_file: Option<&Path>, more_yaml: &str) -> Gateway {
        Gateway::start(self.opts(sni, ca_file, more_yaml))
    }

    fn opts(&self, sni: &str, ca_file: Option<&Path>, more_yaml: &str) -> GatewayOpts {
        let ca = ca_file.map(|p| format!("  ca_file: {}\n", p.display())).unwrap_or_default();
        GatewayOpts {
            origin: Some(self.origin.addr),
            metrics: true,
            extra_yaml: format!("origin_tls:\n  enabled: true\n  sni: {sni}\n{ca}{more_yaml}"),
            ..Default::default()
        }
    }
}

async fn send(gw: &Gateway, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = common::client().request(method, gw.url(path)).body(body).send().await.expect("request");
    (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn pass_through_reaches_the_origin_over_tls_with_its_sni_and_the_same_bytes() {
    let s = Setup::new();
    // At the config's info level, for the start-up line.
    let gw = Gateway::start(GatewayOpts {
        no_rust_log: true,
        ..s.opts("localhost", Some(&s.ca_file()), ONE_CHECK)
    });
    let line =
        format!("origins: {} over TLS as localhost (CA file {})", s.origin.addr, s.ca_file().display());
    assert!(gw.log().contains(&line), "{}", gw.log());

    for i in 0..10 {
        let (status, body) = send(&gw, reqwest::Method::GET, &format!("/page/{i}?q=1"), vec![]).await;
        assert_eq!(
            (status, String::from_utf8_lossy(&body).as_ref()),
            (200, format!("origin saw GET /page/{i}?q=1").as_str())
        );
    }
    let upload: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let (status, echoed) = send(&gw, reqwest::Method::POST, "/echo", upload.clone()).await;
    assert_eq!(status, 200);
    assert!(echoed == upload, "the answer is the bytes sent ({} of {})", echoed.len(), upload.len());

    let requests = s.origin.requests();
    assert_eq!(requests.len(), 11, "{requests:?}");
    let post = requests.iter().find(|r| r.method == "POST").expect("the POST reached the origin");
    assert!(post.path == "/echo" && post.body == upload, "the origin got the same bytes");
    assert!(requests.iter().all(|r| r.sni.as_deref() == Some("localhost")), "{requests:?}");
    let handshakes = s.origin.handshakes();
    assert!(
        handshakes
            .iter()
            .all(|h| h.sni.as_deref() == Some("localhost") && h.alpn.as_deref() == Some("http/1.1")),
        "SNI localhost, HTTP/1.1 agreed although the origin prefers h2: {handshakes:?}"
    );
    assert!(
        handshakes.len() < requests.len(),
        "pooled TLS connections are reused: {} handshakes",
        handshakes.len()
    );
    assert!(s.origin.refused().is_empty(), "{:?}", s.origin.refused());
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_502_and_the_origin_answers_nothing() {
    let s = Setup::new();
    let gw = s.gateway("localhost", Some(&s.other_ca_file()), ONE_CHECK);
    for (method, body) in [(reqwest::Method::GET, vec![]), (reqwest::Method::POST, vec![b'x'; 10_000])] {
        let (status, answer) = send(&gw, method.clone(), "/secret", body).await;
        assert_eq!((status, answer.as_slice()), (502, &b"{\"error\":\"bad_gateway\"}"[..]), "{method}");
    }
    assert!(s.origin.requests().is_empty(), "{:?}", s.origin.requests());
    assert!(s.origin.handshakes().is_empty(), "no handshake completed");
    let refused = s.origin.refused();
    assert!(refused.len() >= 2, "each request tried a handshake: {refused:?}");
    assert!(refused.iter().all(|r| r.error.contains("UnknownCA")), "{refused:?}");
    assert!(metric(&gw, "presign_origin_errors_total{kind=\"tls\"}").await >= 2.0);
    let failures = format!("presign_origin_connect_failures_total{{origin=\"{}\"}}", s.origin.addr);
    assert!(metric(&gw, &failures).await >= 2.0, "a handshake failure is the origin's connect failure");
}

#[tokio::test]
async fn an_origin_whose_certificate_does_not_verify_is_passed_over_for_another() {
    let s = Setup::new();
    let stranger = TlsOrigin::start(TestCa::new("a stranger's CA").issue(&["localhost", "127.0.0.1"]));
    let gw = Gateway::start(GatewayOpts {
        origin: Some(s.origin.addr),
        more_origins: vec![stranger.addr.to_string()],
        metrics: true,
        extra_yaml: format!(
            "origin_tls: {{enabled: true, sni: localhost, ca_file: {}}}\n{ONE_CHECK}  passive: {{max_failures: 0}}\n",
            s.ca_file().display()
        ),
        ..Default::default()
    });
    for i in 0..6 {
        let (status, body) = send(&gw, reqwest::Method::GET, &format!("/r/{i}"), vec![]).await;
        assert_eq!((status, body), (200, format!("origin saw GET /r/{i}").into_bytes()), "request {i}");
    }
    assert!(stranger.requests().is_empty() && stranger.handshakes().is_empty());
    // Round robin sends every other request to the stranger first; each is retried.
    let retries = format!("presign_origin_retries_total{{origin=\"{}\"}}", stranger.addr);
    assert!(metric(&gw, &retries).await >= 3.0, "{}", gw.log());
    assert_eq!(s.origin.requests().len(), 6);
}

#[tokio::test]
async fn a_name_the_certificate_does_not_carry_fails_verification() {
    let s = Setup::new();
    let gw = s.gateway("api.internal", Some(&s.ca_file()), ONE_CHECK);
    let (status, _) = send(&gw, reqwest::Method::GET, "/x", vec![]).await;
    assert_eq!(status, 502);
    assert!(s.origin.requests().is_empty() && s.origin.handshakes().is_empty());
    let refused = s.origin.refused();
    assert!(!refused.is_empty(), "the request tried a handshake");
    for r in &refused {
        assert_eq!(r.sni.as_deref(), Some("api.internal"), "the configured name was sent: {r:?}");
        assert!(r.error.contains("BadCertificate"), "refused for the name, not the CA: {r:?}");
    }
}

#[tokio::test]
async fn an_ip_address_as_the_name_is_verified_against_the_certificate_and_sends_no_sni() {
    let s = Setup::new();
    let gw = s.gateway("127.0.0.1", Some(&s.ca_file()), ONE_CHECK);
    assert_eq!(send(&gw, reqwest::Method::GET, "/ip", vec![]).await.0, 200);
    let handshakes = s.origin.handshakes();
    assert!(!handshakes.is_empty() && handshakes.iter().all(|h| h.sni.is_none()), "{handshakes:?}");

    // A certificate for localhost alone does not carry the address.
    let named_only = TlsOrigin::start(s.ca.issue(&["localhost"]));
    let gw = Gateway::start(GatewayOpts {
        origin: Some(named_only.addr),
        extra_yaml: format!(
            "origin_tls: {{enabled: true, sni: 127.0.0.1, ca_file: {}}}\n{ONE_CHECK}",
            s.ca_file().display()
        ),
        ..Default::default()
    });
    assert_eq!(send(&gw, reqwest::Method::GET, "/ip", vec![]).await.0, 502);
    assert!(named_only.requests().is_empty());
    assert!(
        named_only.refused().iter().all(|r| r.error.contains("BadCertificate")),
        "{:?}",
        named_only.refused()
    );
}

#[tokio::test]
async fn without_a_ca_file_the_system_roots_do_not_trust_a_private_ca() {
    let s = Setup::new();
    let gw = s.gateway("localhost", None, ONE_CHECK);
    assert_eq!(send(&gw, reqwest::Method::GET, "/x", vec![]).await.0, 502);
    assert!(s.origin.requests().is_empty());
    assert!(
        !s.origin.refused().is_empty() && s.origin.refused().iter().all(|r| r.error.contains("UnknownCA"))
    );
}

#[tokio::test]
async fn the_http_health_check_runs_over_tls() {
    let s = Setup::new();
    let gw = s.gateway(
        "localhost",
        Some(&s.ca_file()),
        "origin_pool:\n  health_check: {kind: http, path: /health, interval_ms: 100}\n",
    );
    wait_until_async("a health check over TLS", Duration::from_secs(10), || {
        s.origin
            .requests()
            .iter()
            .filter(|r| r.path == "/health" && r.sni.as_deref() == Some("localhost"))
            .count()
            >= 2
    })
    .await;
    assert_eq!(metric(&gw, &format!("presign_origin_up{{origin=\"{}\"}}", s.origin.addr)).await, 1.0);
    assert!(s.origin.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn the_tcp_health_check_verifies_the_certificate_and_takes_an_unverified_origin_out() {
    let s = Setup::new();
    let gw = s.gateway(
        "localhost",
        Some(&s.other_ca_file()),
        "origin_pool:\n  health_check: {kind: tcp, interval_ms: 100}\n",
    );
    let up = format!("presign_origin_up{{origin=\"{}\"}}", s.origin.addr);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(&gw, &up).await != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a plain TCP connect would pass; the handshake must not"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gw.log().contains("is down (health check)"), "{}", gw.log());
    assert!(s.origin.refused().iter().all(|r| r.error.contains("UnknownCA")));
    let (status, _) = send(&gw, reqwest::Method::GET, "/x", vec![]).await;
    assert_eq!(status, 502);
    assert!(s.origin.requests().is_empty());
}

#[test]
fn check_refuses_a_bad_origin_tls_naming_its_field() {
    let s = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let check = |tls: &str| {
        let conf = dir.path().join("gw.yaml");
        let yaml = format!(
            "listen: 127.0.0.1:1\norigin: [127.0.0.1:2]\norigin_tls: {tls}\nstorage:\n  local:\n    root: {}\n",
            dir.path().join("data").display()
        );
        std::fs::write(&conf, yaml).unwrap();
        let out = std::process::Command::new(common::bin()).arg("-t").arg("-c").arg(&conf).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = check(&format!("{{enabled: true, sni: localhost, ca_file: {}}}", s.ca_file().display()));
    assert!(ok, "a good origin_tls passes: {err}");
    for (tls, field, names) in [
        (
            format!("{{enabled: true, sni: localhost, ca_file: {}}}", missing.display()),
            "origin_tls.ca_file",
            "missing-ca.pem",
        ),
        (
            format!("{{enabled: true, sni: localhost, ca_file: {}}}", empty.display()),
            "origin_tls.ca_file",
            "empty.pem",
        ),
        ("{enabled: true}".to_string(), "origin_tls.sni", "required"),
        ("{enabled: true, sni: localhost, verify: false}".to_string(), "verify", "unknown field"),
    ] {
        let (ok, err) = check(&tls);
        assert!(!ok && err.contains(field) && err.contains(names), "{tls}: {err}");
    }
}
