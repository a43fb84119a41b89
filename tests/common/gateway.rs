//! The gateway process under test: the built binary with a generated config in a temp dir,
//! killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::ports::{start_listening, DeadPort};
use super::DEMO_KEY_SHA256;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_presign-gateway")
}

/// A running gateway process.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    /// The metrics listener (with [`GatewayOpts::metrics`]).
    pub metrics_addr: Option<SocketAddr>,
    /// The TLS listener (with [`GatewayOpts::tls`]).
    pub tls_addr: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    /// Reserves the default origin's port (nothing listens there) while the gateway runs.
    _dead_origin: Option<DeadPort>,
}

/// What varies between test gateways.
#[derive(Default)]
pub struct GatewayOpts {
    pub origin: Option<SocketAddr>,
    /// More origins after `origin` (round-robin pool).
    pub more_origins: Vec<String>,
    /// Extra YAML appended at top level.
    pub extra_yaml: String,
    /// More lines of the `server:` block (each indented two spaces).
    pub server_yaml: String,
    /// `storage:` block body; default: local under the temp dir.
    pub storage_yaml: Option<String>,
    pub env: Vec<(String, String)>,
    /// Also listen for `/metrics` and `/healthz` (on a port of its own, see
    /// [`Gateway::metrics_url`]).
    pub metrics: bool,
    /// Leave RUST_LOG unset so the config's `logging.level` applies.
    pub no_rust_log: bool,
    /// Cap the size of any file the gateway writes (RLIMIT_FSIZE, in KiB), with SIGXFSZ
    /// ignored: writes past it fail like a full disk.
    pub file_size_limit_kb: Option<u64>,
    /// Lower the gateway's file descriptor limit (RLIMIT_NOFILE, soft and hard).
    pub fd_limit: Option<u64>,
    /// Pingora's drain window (default 1 s).
    pub grace_secs: Option<u64>,
    /// Write no `api_keys:` (delegated auth, or keys only in an `api_keys_file`).
    pub no_api_keys: bool,
    /// Also listen for TLS (on a port of its own, see [`Gateway::https_url`]).
    pub tls: Option<TlsOpts>,
}

/// The TLS listener's files, and more lines of its `tls:` block (indented two spaces).
pub struct TlsOpts {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub extra_yaml: String,
}

impl TlsOpts {
    pub fn new(pki: &super::pki::TestPki) -> TlsOpts {
        TlsOpts {
            cert_file: pki.cert_file.clone(),
            key_file: pki.key_file.clone(),
            extra_yaml: String::new(),
        }
    }
}

impl Gateway {
    /// Start a gateway on fresh loopback ports and wait until it listens on them. Its stderr
    /// goes to `<dir>/gateway.log` (see [`Gateway::log`]; printed if the test fails).
    pub fn start(opts: GatewayOpts) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        // Without an origin of its own, the gateway points at a port where nothing listens.
        let dead_origin = opts.origin.is_none().then(DeadPort::loopback);
        let first = opts.origin.or(dead_origin.as_ref().map(|d| d.addr)).expect("an origin").to_string();
        let all: Vec<String> = std::iter::once(first).chain(opts.more_origins.iter().cloned()).collect();
        let origin = format!("[{}]", all.join(", "));
        let storage = opts.storage_yaml.clone().unwrap_or_else(|| {
            format!("  local:\n    root: {}\n    public_path: /files\n", dir.path().join("data").display())
        });
        let conf = dir.path().join("gateway.yaml");
        let log = dir.path().join("gateway.log");
        let spawn = |ports: &[u16]| {
            let metrics = if opts.metrics {
                format!("metrics:\n  listen: 127.0.0.1:{}\n", ports[1])
            } else {
                String::new()
            };
            let tls = match &opts.tls {
                Some(t) => format!(
                    "tls:\n  listen: 127.0.0.1:{}\n  cert_file: {}\n  key_file: {}\n{}",
                    ports[ports.len() - 1],
                    t.cert_file.display(),
                    t.key_file.display(),
                    t.extra_yaml
                ),
                None => String::new(),
            };
            let keys = if opts.no_api_keys {
                String::new()
            } else {
                format!(
                    "api_keys:\n  - id: demo\n    sha256: {DEMO_KEY_SHA256}\n    user_id: 12\n  - id: other\n    sha256: {}\n    user_id: 13\n",
                    presign_gateway::hash_key("other-key"),
                )
            };
            let yaml = format!(
                "listen: 127.0.0.1:{}\norigin: {origin}\nthreads: 2\n{keys}storage:\n{storage}server:\n  pid_file: {}\n  upgrade_sock: {}\n  grace_period_seconds: {}\n  graceful_shutdown_timeout_seconds: 10\n{}{metrics}{tls}{}",
                ports[0],
                dir.path().join("gw.pid").display(),
                dir.path().join("gw.sock").display(),
                opts.grace_secs.unwrap_or(1),
                opts.server_yaml,
                opts.extra_yaml
            );
            std::fs::write(&conf, yaml).expect("write config");
            spawn_gateway(&opts, &conf, &log)
        };
        let ports = 1 + usize::from(opts.metrics) + usize::from(opts.tls.is_some());
        let (child, ports) = start_listening("gateway", ports, spawn, || read_log(&log));
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Gateway {
            child,
            addr: at(ports[0]),
            metrics_addr: opts.metrics.then(|| at(ports[1])),
            tls_addr: opts.tls.is_some().then(|| at(ports[ports.len() - 1])),
            dir,
            _dead_origin: dead_origin,
        }
    }

    pub fn local() -> Gateway {
        Gateway::start(GatewayOpts::default())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the TLS listener, by the name its certificate carries (with [`GatewayOpts::tls`]).
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.tls_addr.expect("started with tls").port(), path)
    }

    /// A URL on the metrics listener (with [`GatewayOpts::metrics`]).
    pub fn metrics_url(&self, path: &str) -> String {
        format!("http://{}{}", self.metrics_addr.expect("started with metrics: true"), path)
    }

    /// What the gateway logged so far.
    pub fn log(&self) -> String {
        read_log(&self.dir.path().join("gateway.log"))
    }

    /// A PUT URL for `key` on the local store, signed as the gateway signs with `secret` (the
    /// `PRESIGN_GATEWAY_SECRET` it was started with), `content-type` signed.
    pub fn local_put_url(&self, secret: &str, key: &str, content_type: &str) -> String {
        use presign_gateway::sigv4::{Credentials, PresignRequest, Signer};
        let host = self.addr.to_string();
        Signer::new(Credentials::new("presign-gateway", secret, None), "us-east-1", "s3").presign_url(
            &PresignRequest {
                method: "PUT",
                scheme: "http",
                host: &host,
                path: &format!("/files/{key}"),
                expires_in: 600,
                headers: &[("content-type", content_type)],
            },
            time::OffsetDateTime::now_utc(),
        )
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

    /// Whether an upload is being spooled: a temp file in `data/tmp` has received bytes.
    pub fn spooling(&self) -> bool {
        let mut tmp = Vec::new();
        walk(&self.data_dir().join("tmp"), &mut tmp);
        tmp.iter().any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
    }
}

fn spawn_gateway(opts: &GatewayOpts, conf: &Path, log: &Path) -> Child {
    let mut limits = String::new();
    if let Some(kb) = opts.file_size_limit_kb {
        limits.push_str(&format!("trap '' XFSZ; ulimit -f {kb}; "));
    }
    if let Some(n) = opts.fd_limit {
        limits.push_str(&format!("ulimit -n {n}; "));
    }
    let mut cmd = if limits.is_empty() {
        Command::new(bin())
    } else {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("{limits}exec \"$0\" \"$@\"")).arg(bin());
        c
    };
    cmd.arg("-c").arg(conf).stdout(Stdio::null());
    // A fresh log per attempt: an earlier attempt's "in use" must not count against this one.
    cmd.stderr(std::fs::File::create(log).expect("log file"));
    if opts.no_rust_log {
        cmd.env_remove("RUST_LOG");
    } else {
        cmd.env("RUST_LOG", "warn,pingora_load_balancing=error");
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn gateway")
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
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
        if std::thread::panicking() {
            eprintln!("--- gateway {} log ---\n{}--- end of gateway log ---", self.addr, self.log());
        }
    }
}

/// The API Mall mint route.
pub const MINT: &str = "/api/v1/files/upload-url";

/// Mint through the API Mall route with the demo key; asserts a 200 and returns the body.
pub async fn mint(gw: &Gateway, body: serde_json::Value) -> serde_json::Value {
    let (status, v) =
        super::http_client::post_json(&gw.url(MINT), Some("Bearer demo-key"), &body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    v
}
