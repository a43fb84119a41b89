//! The floors the gateway is measured against, on the same server settings as its binary:
//! - a bare Pingora responder: request_filter reads the body and answers a fixed 200 with
//!   ~600 bytes of JSON (the size of a mint answer);
//! - with `BARE_PROXY=host:port`, a bare Pingora proxy to that origin (no filter at all), the
//!   framework's own cost for pass-through.
//!
//! See the usage at the bottom.

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::modules::http::HttpModules;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::Result;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: &str = r#"{"success":true,"data":{"upload_url":"http://127.0.0.1:8080/files/uploads/user/12/2025/01/01/0123456789abcdef0123-cover.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=gateway%2F20250101%2Flocal%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","key":"uploads/user/12/2025/01/01/0123456789abcdef0123-cover.png","public_url":"http://127.0.0.1:8080/files/uploads/user/12/2025/01/01/0123456789abcdef0123-cover.png","expires_in":900,"max_file_size":104857600,"content_type":"image/png"},"request_id":"req_0123456789abcdef01234567"}"#;

pub struct Bare {
    /// Pass-through mode: the origin to proxy every request to.
    upstream: Option<String>,
    /// `BARE_TIMEOUTS=1`: the gateway's default origin timeouts (connect 2 s, read 30 s), so
    /// the floor pays for the same upstream timers the gateway sets.
    timeouts: Option<(std::time::Duration, std::time::Duration)>,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) -> Self::CTX {}
    fn init_downstream_modules(&self, _m: &mut HttpModules) {} // as the gateway: none

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        if self.upstream.is_some() {
            return Ok(false);
        }
        while session.read_request_body().await?.is_some() {}
        let mut h = ResponseHeader::build(200, Some(4))?;
        h.insert_header("content-type", "application/json")?;
        h.insert_header("content-length", BODY.len().to_string())?;
        h.insert_header("x-request-id", "req_0123456789abcdef01234567")?;
        session.write_response_header(Box::new(h), false).await?;
        session.write_response_body(Some(Bytes::from_static(BODY.as_bytes())), true).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        match &self.upstream {
            Some(addr) => {
                let mut peer = HttpPeer::new(addr.as_str(), false, String::new());
                if let Some((connect, read)) = self.timeouts {
                    peer.options.connection_timeout = Some(connect);
                    peer.options.read_timeout = Some(read);
                }
                Ok(Box::new(peer))
            }
            None => pingora::Error::e_explain(pingora::ErrorType::ConnectNoRoute, "bare: no upstream"),
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let env = |k: &str| std::env::var(k).ok();
    let threads = args.next().or(env("BARE_THREADS")).map_or(1, |t| t.parse().expect("threads"));
    let work_stealing = env("BARE_WORK_STEALING").is_none_or(|v| v != "false");
    let conf = ServerConf {
        threads,
        work_stealing,
        pid_file: format!("/tmp/bare-{}.pid", std::process::id()),
        upgrade_sock: format!("/tmp/bare-{}.sock", std::process::id()),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(
        &server.configuration,
        Bare {
            upstream: env("BARE_PROXY").filter(|v| !v.is_empty()),
            timeouts: env("BARE_TIMEOUTS")
                .filter(|v| v == "1")
                .map(|_| (std::time::Duration::from_secs(2), std::time::Duration::from_secs(30))),
        },
    );
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}

// Run:  cargo run --release --example bare -- 127.0.0.1:8090 1      (listen addr, threads)
//       curl -si -X POST -d '{}' http://127.0.0.1:8090/api/v1/files/upload-url
//       BARE_PROXY=127.0.0.1:8081 cargo run --release --example bare -- 127.0.0.1:8091 1
