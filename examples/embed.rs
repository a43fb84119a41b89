//! An operator's own Pingora proxy that embeds presign-gateway's upload routes.
//!
//! The proxy has routing of its own (`/health` answered locally, `/api/*` to one backend,
//! the rest to another). It adds the upload routes by calling `UploadRoutes::handle` first
//! in its `request_filter`; nothing else about it changes. The routes are configured by
//! their own part of the file only (`RoutesConfig`: keys, storage, dialects, CORS, ...); the
//! listener and backends stay the operator's.

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use presign_gateway::{RoutesConfig, UploadRoutes};

struct MyProxy {
    uploads: UploadRoutes,
    api: String,
    web: String,
}

#[async_trait]
impl ProxyHttp for MyProxy {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        // 1. presign-gateway's upload routes answer first.
        if self.uploads.handle(session).await? {
            return Ok(true);
        }
        // 2. The operator's own routes.
        if session.req_header().uri.path() == "/health" {
            let mut h = ResponseHeader::build(200, None)?;
            h.insert_header("content-length", "2")?;
            session.write_response_header(Box::new(h), false).await?;
            session.write_response_body(Some(Bytes::from_static(b"ok")), true).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(&self, session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let to = if session.req_header().uri.path().starts_with("/api/") { &self.api } else { &self.web };
        Ok(Box::new(HttpPeer::new(to.as_str(), false, String::new())))
    }
}

fn main() {
    env_logger::init();
    // Usage: embed <routes.yaml> <listen> <api-backend> <web-backend>
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: embed CONF LISTEN API_BACKEND WEB_BACKEND");
        std::process::exit(2);
    }
    let cfg = match RoutesConfig::load(std::path::Path::new(&args[1])) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let uploads = match UploadRoutes::from_config(&cfg) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let mut server = match Server::new(None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(
        &server.configuration,
        MyProxy { uploads, api: args[3].clone(), web: args[4].clone() },
    );
    proxy.add_tcp(&args[2]);
    server.add_service(proxy);
    server.run_forever();
}

// Run:  cargo run --example embed -- conf/embed-routes.yaml 127.0.0.1:6190 127.0.0.1:8081 127.0.0.1:8082
// Try:  curl -s 127.0.0.1:6190/health
//       curl -s -X POST 127.0.0.1:6190/api/v1/files/upload-url -H 'Authorization: Bearer demo-key' \
//         -d '{"filename":"a.png","content_type":"image/png","file_size":3}'
