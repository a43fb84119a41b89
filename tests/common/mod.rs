//! Test harness: real processes on loopback, temp dirs, no fixed ports.
//!
//! - [`Gateway`] starts the built binary with a generated config and kills it on drop.
//! - [`Origin`] is a tiny HTTP/1.1 origin that echoes what it received.
//! - [`S3sFs`] starts a real `s3s-fs` server with bucket `media`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DEMO_KEY: &str = "demo-key";
pub const DEMO_KEY_SHA256: &str = "c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c";
pub const S3_ACCESS_KEY: &str = "AKIDTESTGATEWAY";
pub const S3_SECRET_KEY: &str = "test-secret-key-for-s3s-fs-0123456789";

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Wait until something accepts TCP connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, child: Option<&mut Child>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut child = child;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("process exited early with {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on {addr} after 30s");
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_presign-gateway")
}

/// A running gateway process.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// What varies between test gateways.
#[derive(Default)]
pub struct GatewayOpts {
    pub origin: Option<SocketAddr>,
    /// More origins after `origin` (round-robin pool).
    pub more_origins: Vec<String>,
    /// Extra YAML appended at top level.
    pub extra_yaml: String,
    /// `storage:` block body; default: local under the temp dir.
    pub storage_yaml: Option<String>,
    pub env: Vec<(String, String)>,
    /// Send the gateway's stderr to `<dir>/gateway.log` (see [`Gateway::log`]).
    pub capture_log: bool,
    /// Leave RUST_LOG unset so the config's `logging.level` applies.
    pub no_rust_log: bool,
    /// Cap the size of any file the gateway writes (RLIMIT_FSIZE, in KiB), with SIGXFSZ
    /// ignored: writes past it fail like a full disk.
    pub file_size_limit_kb: Option<u64>,
    /// Pingora's drain window (default 1 s).
    pub grace_secs: Option<u64>,
}

impl Gateway {
    pub fn start(opts: GatewayOpts) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let first =
            opts.origin.map(|o| o.to_string()).unwrap_or_else(|| format!("127.0.0.1:{}", free_port()));
        let all: Vec<String> = std::iter::once(first).chain(opts.more_origins.iter().cloned()).collect();
        let origin = format!("[{}]", all.join(", "));
        let storage = opts.storage_yaml.clone().unwrap_or_else(|| {
            format!("  local:\n    root: {}\n    public_path: /files\n", dir.path().join("data").display())
        });
        let yaml = format!(
            "listen: {addr}\norigin: {origin}\nthreads: 2\napi_keys:\n  - id: demo\n    sha256: {DEMO_KEY_SHA256}\n    user_id: 12\n  - id: other\n    sha256: {}\n    user_id: 13\nstorage:\n{storage}server:\n  pid_file: {}\n  upgrade_sock: {}\n  grace_period_seconds: {}\n  graceful_shutdown_timeout_seconds: 10\n{}",
            presign_gateway::hash_key("other-key"),
            dir.path().join("gw.pid").display(),
            dir.path().join("gw.sock").display(),
            opts.grace_secs.unwrap_or(1),
            opts.extra_yaml
        );
        let conf = dir.path().join("gateway.yaml");
        std::fs::write(&conf, yaml).expect("write config");
        let mut cmd = match opts.file_size_limit_kb {
            Some(kb) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("trap '' XFSZ; ulimit -f {kb}; exec \"$0\" \"$@\"")).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        cmd.arg("-c").arg(&conf).stdout(Stdio::null());
        if opts.capture_log {
            cmd.stderr(std::fs::File::create(dir.path().join("gateway.log")).expect("log file"));
        } else {
            cmd.stderr(Stdio::inherit());
        }
        if opts.no_rust_log {
            cmd.env_remove("RUST_LOG");
        } else {
            cmd.env("RUST_LOG", "warn,pingora_load_balancing=error");
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gateway");
        wait_for_port(addr, Some(&mut child));
        Gateway { child, addr, dir }
    }

    pub fn local() -> Gateway {
        Gateway::start(GatewayOpts::default())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// What the gateway logged so far (with `capture_log`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Every regular file under `data/objects` and `data/tmp`.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for sub in ["objects", "tmp"] {
            walk(&self.data_dir().join(sub), &mut out);
        }
        out
    }
}

pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small echo origin: answers every request with a JSON summary of it.
pub struct Origin {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
}

impl Origin {
    pub fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || serve_echo(stream, counter));
            }
        });
        Origin { addr, requests }
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve_echo(stream: TcpStream, counter: Arc<AtomicUsize>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let request_line = line.trim_end().to_string();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_string();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        counter.fetch_add(1, Ordering::SeqCst);
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let hdrs: serde_json::Map<String, serde_json::Value> =
            headers.iter().map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone()))).collect();
        let out = serde_json::json!({
            "origin": true,
            "method": method,
            "target": target,
            "headers": hdrs,
            "body": String::from_utf8_lossy(&body),
        })
        .to_string();
        let resp = format!(
            "HTTP/1.1 203 Non-Authoritative Information\r\ncontent-type: application/json\r\nx-origin: echo\r\ncontent-length: {}\r\n\r\n{}",
            out.len(),
            out
        );
        if stream.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// A real s3s-fs server with bucket `media`.
pub struct S3sFs {
    pub child: Child,
    pub port: u16,
    pub root: tempfile::TempDir,
}

/// Where s3s-fs is installed (PATH or ~/.cargo/bin); tests fail clearly without it.
pub fn s3s_fs_bin() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = Path::new(&home).join(".cargo/bin/s3s-fs");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    PathBuf::from("s3s-fs")
}

impl S3sFs {
    pub fn start() -> S3sFs {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("media")).expect("bucket dir");
        let port = free_port();
        let mut child = Command::new(s3s_fs_bin())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs must be installed: cargo install s3s-fs@0.14.1 --features binary --locked");
        wait_for_port(format!("127.0.0.1:{port}").parse().unwrap(), Some(&mut child));
        S3sFs { child, port, root }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `storage:` YAML for a gateway using this server.
    pub fn storage_yaml(&self) -> String {
        format!(
            "  s3:\n    endpoint: {}\n    region: us-east-1\n    bucket: media\n    addressing: path\n    access_key_id_env: TEST_S3_AKID\n    secret_access_key_env: TEST_S3_SECRET\n",
            self.endpoint()
        )
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![("TEST_S3_AKID".into(), S3_ACCESS_KEY.into()), ("TEST_S3_SECRET".into(), S3_SECRET_KEY.into())]
    }

    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.path().join("media").join(key)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().expect("client")
}

/// POST JSON with an Authorization header; returns (status, JSON body).
pub async fn post_json(url: &str, auth: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut req = client().post(url).header("content-type", "application/json").body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, v)
}

/// A raw HTTP/1.1 exchange over one connection: send bytes, read until the peer closes or `timeout`.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
