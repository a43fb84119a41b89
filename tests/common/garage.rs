//! A real 3-node Garage cluster on loopback (replication factor 3), one node per loopback
//! address (127.0.0.1, .2, .3) so that every node has the same ports and a health check can
//! name the admin port once. Nodes can be killed, restarted (they rejoin through
//! `bootstrap_peers`), and isolated: restarted with a wrong RPC secret, so that the node
//! still accepts S3 connections but cannot reach its peers and answers 503.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ports::candidate_ports;
use super::wait_until;

pub const GARAGE_KEY_ID: &str = "GK31c2f218a2e44f485b94239e";
pub const GARAGE_SECRET: &str = "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835";
pub const GARAGE_REGION: &str = "garage";
const RPC_SECRET: &str = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6";
const WRONG_RPC_SECRET: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn garage_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GARAGE_BIN") {
        return PathBuf::from(p);
    }
    let cargo_bin = Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/garage");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    PathBuf::from("garage")
}

pub struct GarageNode {
    pub ip: String,
    dir: PathBuf,
    child: Option<Child>,
    /// `<hex id>@<ip>:<rpc port>`.
    pub id: String,
}

pub struct Garage {
    pub nodes: Vec<GarageNode>,
    pub s3_port: u16,
    pub rpc_port: u16,
    pub admin_port: u16,
    _dir: tempfile::TempDir,
}

impl Garage {
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = candidate_ports(3);
        let (s3_port, rpc_port, admin_port) = (p[0], p[1], p[2]);
        let mut nodes: Vec<GarageNode> = (1..=3)
            .map(|i| GarageNode {
                ip: format!("127.0.0.{i}"),
                dir: dir.path().join(format!("node{i}")),
                child: None,
                id: String::new(),
            })
            .collect();
        let mut g = Garage { nodes: Vec::new(), s3_port, rpc_port, admin_port, _dir: dir };
        for n in &mut nodes {
            std::fs::create_dir_all(&n.dir).expect("node dir");
            g.write_config(n, RPC_SECRET, &[]);
            g.spawn(n);
        }
        for n in &mut nodes {
            let out = g.cli(n, &["node", "id", "-q"]);
            n.id = out.trim().to_string();
            assert!(n.id.contains('@'), "node id: {out}");
        }
        let first = &nodes[0];
        for other in &nodes[1..] {
            // A node's S3 port can open before its RPC listener: retry until it connects.
            wait_until(&format!("garage to connect to {}", other.id), Duration::from_secs(60), || {
                g.try_cli(first, &["node", "connect", &other.id]).is_ok()
            });
        }
        for n in &nodes {
            let hex = n.id.split('@').next().unwrap_or_default();
            g.cli(first, &["layout", "assign", "-z", "dc1", "-c", "1G", hex]);
        }
        g.cli(first, &["layout", "apply", "--version", "1"]);
        // Restarts must rejoin on their own: every node lists the others as bootstrap peers.
        let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
        for n in &nodes {
            let peers: Vec<&str> = ids.iter().filter(|i| **i != n.id).map(String::as_str).collect();
            g.write_config(n, RPC_SECRET, &peers);
        }
        g.nodes = nodes;
        g.wait_healthy(None);
        g.wait_fully_connected();
        g.cli(&g.nodes[0], &["key", "import", "--yes", "-n", "fleet", GARAGE_KEY_ID, GARAGE_SECRET]);
        g.cli(&g.nodes[0], &["bucket", "create", "media"]);
        g.cli(&g.nodes[0], &["bucket", "allow", "--read", "--write", "--owner", "media", "--key", "fleet"]);
        g
    }

    fn config_path(n: &GarageNode) -> PathBuf {
        n.dir.join("garage.toml")
    }

    fn write_config(&self, n: &GarageNode, rpc_secret: &str, peers: &[&str]) {
        let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
        let toml = format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"lmdb\"\nreplication_factor = 3\n\
             rpc_bind_addr = \"{ip}:{rpc}\"\nrpc_public_addr = \"{ip}:{rpc}\"\nrpc_secret = \"{rpc_secret}\"\n\
             bootstrap_peers = [{peers}]\n\n[s3_api]\ns3_region = \"{GARAGE_REGION}\"\napi_bind_addr = \"{ip}:{s3}\"\n\n\
             [admin]\napi_bind_addr = \"{ip}:{admin}\"\nadmin_token = \"fleet-admin-token\"\n",
            d = n.dir.display(),
            ip = n.ip,
            rpc = self.rpc_port,
            s3 = self.s3_port,
            admin = self.admin_port,
            peers = peers.join(", "),
        );
        std::fs::write(Self::config_path(n), toml).expect("garage.toml");
    }

    fn spawn(&self, n: &mut GarageNode) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.dir.join("garage.log"))
            .expect("garage log");
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(Self::config_path(n))
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("garage must be installed: cargo install garage@2.5.0 --locked");
        n.child = Some(child);
        let addr: SocketAddr = format!("{}:{}", n.ip, self.s3_port).parse().expect("addr");
        let log_path = n.dir.join("garage.log");
        let child = n.child.as_mut().expect("child");
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                panic!("garage {addr} exited with {status}:\n{}", log());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "garage {addr} not listening after 120 s:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run the CLI against node `n`; panics with its output when it fails.
    pub fn cli(&self, n: &GarageNode, args: &[&str]) -> String {
        self.try_cli(n, args).unwrap_or_else(|e| panic!("garage {args:?}: {e}"))
    }

    /// Run the CLI against node `n`: its stdout, or its output when it fails.
    pub fn try_cli(&self, n: &GarageNode, args: &[&str]) -> Result<String, String> {
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(Self::config_path(n))
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .expect("garage cli");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    pub fn s3_addr(&self, i: usize) -> SocketAddr {
        format!("{}:{}", self.nodes[i].ip, self.s3_port).parse().expect("addr")
    }

    pub fn s3_addrs(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.s3_addr(i).to_string()).collect()
    }

    /// `GET /health` on a node's admin API: 200 while it can serve with quorum.
    pub fn health(&self, i: usize) -> Option<u16> {
        use std::io::{Read, Write};
        let addr: SocketAddr = format!("{}:{}", self.nodes[i].ip, self.admin_port).parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /health HTTP/1.1\r\nhost: garage\r\nconnection: close\r\n\r\n").ok()?;
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split_whitespace().nth(1)?.parse().ok()
    }

    /// The admin API's cluster health as node `i` sees it (`/v2/GetClusterHealth`).
    pub fn cluster_health(&self, i: usize) -> Option<serde_json::Value> {
        use std::io::{Read, Write};
        let addr: SocketAddr = format!("{}:{}", self.nodes[i].ip, self.admin_port).parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let req = "GET /v2/GetClusterHealth HTTP/1.1\r\nhost: garage\r\nauthorization: Bearer fleet-admin-token\r\nconnection: close\r\n\r\n";
        s.write_all(req.as_bytes()).ok()?;
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        serde_json::from_str(out.split("\r\n\r\n").nth(1)?).ok()
    }

    /// Wait until every node sees every other connected and every partition fully up: only
    /// then can any one node be lost without losing quorum.
    pub fn wait_fully_connected(&self) {
        let n = self.nodes.len() as u64;
        for i in 0..self.nodes.len() {
            wait_until(&format!("garage node {i} connected to all"), Duration::from_secs(60), || {
                self.cluster_health(i).is_some_and(|h| {
                    h["connectedNodes"].as_u64() == Some(n) && h["partitionsAllOk"] == h["partitions"]
                })
            });
        }
    }

    /// Wait until every running node (all but `except`) reports 200 on `/health`.
    pub fn wait_healthy(&self, except: Option<usize>) {
        for i in (0..self.nodes.len()).filter(|i| Some(*i) != except) {
            wait_until(&format!("garage node {i} healthy"), Duration::from_secs(60), || {
                self.health(i) == Some(200)
            });
        }
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start node `i` again with its own config (it rejoins through its bootstrap peers).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let mut n = std::mem::replace(
            &mut self.nodes[i],
            GarageNode { ip: String::new(), dir: PathBuf::new(), child: None, id: String::new() },
        );
        self.spawn(&mut n);
        self.nodes[i] = n;
    }

    /// Restart node `i` unable to talk to its peers (a wrong RPC secret): its S3 port stays
    /// open and answers, without quorum.
    pub fn isolate(&mut self, i: usize) {
        self.kill(i);
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let peers: Vec<&str> = ids.iter().filter(|x| **x != ids[i]).map(String::as_str).collect();
        self.write_config(&self.nodes[i], WRONG_RPC_SECRET, &peers);
        self.restart(i);
    }

    /// Undo [`Self::isolate`].
    pub fn heal(&mut self, i: usize) {
        let ids: Vec<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let peers: Vec<&str> = ids.iter().filter(|x| **x != ids[i]).map(String::as_str).collect();
        self.write_config(&self.nodes[i], RPC_SECRET, &peers);
        self.restart(i);
    }

    /// The node's log so far (printed when a fleet test fails).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("garage.log")).unwrap_or_default()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                let log = self.log(i);
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                eprintln!("--- garage node {i} log (tail) ---\n{tail}");
            }
        }
    }
}
