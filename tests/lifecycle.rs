//! Graceful life of the real process: SIGTERM drains, `-u` + SIGQUIT upgrades without
//! dropping a request, and a bad config at reload is refused while the old process serves.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ports::unix_socket_listening;
use common::*;
use serde_json::json;

/// Kills a child process when the test ends, also when it fails.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().unwrap();
    assert!(ok.success(), "kill -{sig}");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "process did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mint requests running in the background.
struct Load {
    ok: Arc<AtomicUsize>,
    /// (ok, failed) once stopped.
    done: tokio::task::JoinHandle<(usize, usize)>,
}

impl Load {
    /// Mints answered 200 so far.
    fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }
}

/// Mint requests in a loop until `stop`.
fn mint_load(gw_url: String, stop: Arc<AtomicBool>) -> Load {
    let ok = Arc::new(AtomicUsize::new(0));
    let counter = ok.clone();
    let done = tokio::spawn(async move {
        let ok = counter;
        let failed = Arc::new(AtomicUsize::new(0));
        let retried = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (ok, failed, stop, url) = (ok.clone(), failed.clone(), stop.clone(), gw_url.clone());
            let retried = retried.clone();
            workers.push(tokio::spawn(async move {
                let c = client();
                while !stop.load(Ordering::SeqCst) {
                    // Like any HTTP/1.1 client or load balancer, retry once when a fresh
                    // connection is closed before a single response byte (the request was
                    // never processed; see README "Graceful upgrade"). Anything else fails.
                    let mut outcome = send_mint(&c, &url).await;
                    if matches!(outcome, Err(ref e) if closed_before_response(e)) {
                        retried.fetch_add(1, Ordering::SeqCst);
                        outcome = send_mint(&c, &url).await;
                    }
                    match outcome {
                        Ok(200) => ok.fetch_add(1, Ordering::SeqCst),
                        Ok(status) => {
                            eprintln!("load: status {status}");
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(e) => {
                            eprintln!("load: {e:?}");
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
        let retried = retried.load(Ordering::SeqCst);
        if retried > 0 {
            eprintln!("load: {retried} request(s) retried after a close before any response byte");
        }
        (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst))
    });
    Load { ok, done }
}

async fn send_mint(c: &reqwest::Client, url: &str) -> Result<u16, reqwest::Error> {
    c.post(url)
        .header("authorization", "Bearer demo-key")
        .body(json!({"filename":"a.png","content_type":"image/png","file_size":3}).to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
}

/// hyper's IncompleteMessage (or a send Canceled because of it), or a reset while sending,
/// on a fresh connection: closed before any response byte, so the request was never
/// processed. (A close with the request still unread in the socket is a reset on Linux.)
fn closed_before_response(e: &reqwest::Error) -> bool {
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionReset && e.is_request() {
                return true;
            }
        }
        src = s.source();
    }
    false
}

/// A slow PUT of `size` bytes (about `secs` seconds); returns its status.
fn slow_upload(url: String, size: usize, secs: u64) -> tokio::task::JoinHandle<u16> {
    tokio::spawn(async move {
        let chunks = 40usize;
        let chunk = size / chunks;
        let pause = Duration::from_millis(secs * 1000 / chunks as u64);
        let stream = futures_util::stream::unfold(0usize, move |i| async move {
            if i == chunks {
                return None;
            }
            // Pacing, not synchronisation: the body trickles so the upload is still in flight
            // while the test upgrades or stops the gateway.
            tokio::time::sleep(pause).await;
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from(vec![(i % 251) as u8; chunk])), i + 1))
        });
        let r = client()
            .put(url)
            .header("content-type", "video/mp4")
            .header("content-length", size.to_string())
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await;
        match r {
            Ok(r) => r.status().as_u16(),
            Err(e) => {
                eprintln!("slow upload: {e:?}");
                0
            }
        }
    })
}

async fn mint_big(gw: &Gateway, size: usize) -> (String, String) {
    let (s, v) = post_json(
        &gw.url("/api/v1/files/upload-url"),
        Some("Bearer demo-key"),
        &json!({"filename":"long.mp4","content_type":"video/mp4","file_size":size}).to_string(),
    )
    .await;
    assert_eq!(s, 200);
    (v["data"]["upload_url"].as_str().unwrap().to_string(), v["data"]["key"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_upgrade_drops_nothing() {
    let mut old = Gateway::start(GatewayOpts { grace_secs: Some(5), ..Default::default() });
    let size = 4_000_000;
    let (upload_url, key) = mint_big(&old, size).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = mint_load(old.url("/api/v1/files/upload-url"), stop.clone());
    let upload = slow_upload(upload_url, size, 3);
    wait_until_async("mints answered and the long upload spooling", Duration::from_secs(10), || {
        load.ok() > 0 && old.spooling()
    })
    .await;

    // The new process asks for the sockets; the old one hands them over on SIGQUIT, once the
    // new one listens on the upgrade socket.
    let new = Kill(
        Command::new(bin())
            .arg("-c")
            .arg(old.dir.path().join("gateway.yaml"))
            .arg("-u")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let upgrade_sock = old.dir.path().join("gw.sock");
    wait_until_async("the new process on the upgrade socket", Duration::from_secs(10), || {
        unix_socket_listening(&upgrade_sock)
    })
    .await;
    signal(&old.child, "QUIT");
    let status = tokio::task::spawn_blocking({
        let mut child = std::mem::replace(&mut old.child, Command::new("true").spawn().unwrap());
        move || wait_exit(&mut child, Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert!(status.success() || status.code().is_none(), "old process: {status}");
    // Keep the load on the new process until it has answered 20 mints on its own.
    let before = load.ok();
    wait_until_async("20 mints answered by the new process", Duration::from_secs(10), || {
        load.ok() >= before + 20
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = load.done.await.unwrap();
    let upload_status = upload.await.unwrap();
    drop(new);

    assert_eq!(failed, 0, "requests failed during the upgrade ({ok} succeeded)");
    assert!(ok > 20, "load ran ({ok})");
    assert_eq!(upload_status, 200, "the long upload survived the upgrade");
    let stored = std::fs::read(old.data_dir().join("objects").join(&key)).unwrap();
    assert_eq!(stored.len(), size, "no partial object");
    let mut tmp = Vec::new();
    walk(&old.data_dir().join("tmp"), &mut tmp);
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_uploads() {
    let mut gw = Gateway::start(GatewayOpts { grace_secs: Some(5), ..Default::default() });
    let size = 2_000_000;
    let (upload_url, key) = mint_big(&gw, size).await;
    let upload = slow_upload(upload_url, size, 2);
    wait_until_async("the upload spooling", Duration::from_secs(10), || gw.spooling()).await;
    signal(&gw.child, "TERM");
    let status = upload.await.unwrap();
    assert_eq!(status, 200, "in-flight upload finished during the drain");
    let exit = tokio::task::spawn_blocking({
        let mut child = std::mem::replace(&mut gw.child, Command::new("true").spawn().unwrap());
        move || wait_exit(&mut child, Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert!(exit.success() || exit.code().is_none(), "{exit}");
    assert_eq!(std::fs::read(gw.data_dir().join("objects").join(&key)).unwrap().len(), size);
    // After the drain nothing listens any more.
    assert!(std::net::TcpStream::connect(gw.addr).is_err());
}

#[tokio::test]
async fn bad_config_at_reload_is_refused_and_old_keeps_serving() {
    let gw = Gateway::start(GatewayOpts { grace_secs: Some(5), ..Default::default() });
    let conf = gw.dir.path().join("gateway.yaml");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, good.replace("threads: 2", "threads: 0")).unwrap();
    // The operator checks first (-t), as Pingora's guide says; then a -u start also refuses.
    for extra in [vec!["-t"], vec!["-u"]] {
        let out = Command::new(bin()).arg("-c").arg(&conf).args(&extra).output().unwrap();
        assert!(!out.status.success(), "{extra:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("`threads`"), "{extra:?}");
    }
    let (s, _) = post_json(
        &gw.url("/api/v1/files/upload-url"),
        Some("Bearer demo-key"),
        &json!({"filename":"a.png","content_type":"image/png","file_size":3}).to_string(),
    )
    .await;
    assert_eq!(s, 200, "the old process still serves");
}
