//! Ports for child processes, without races, and waiting on conditions instead of sleeping.
//!
//! A child (the gateway, s3s-fs, the embed example) cannot report a `:0` port: Pingora binds
//! the address it is given. So the harness picks a free port and the child binds it a moment
//! later, and in between another process (another test's child, an outgoing connection's
//! ephemeral port) may take it. [`start_listening`] closes that race: it checks that the child
//! itself listens on every port it was given (Linux: `/proc/net/tcp*` and `/proc/<pid>/fd`),
//! and when the bind failed (the child exited, its log says the address is in use, or another
//! process listens there) it kills the child and starts it again on fresh ports, a bounded
//! number of times.
//!
//! Listeners the test process owns itself bind `127.0.0.1:0` directly and keep the listener;
//! a port where nothing may ever listen is a [`DeadPort`].

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// How many times a child is started on fresh ports before the harness gives up.
pub const START_ATTEMPTS: usize = 5;

/// How long a child gets to listen (or a condition to come true) before the test fails.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Poll interval of the condition waits.
const POLL: Duration = Duration::from_millis(20);

/// `n` distinct candidate ports (bound together, then released). Only for a child that
/// [`start_listening`] supervises: the port may be taken again before the child binds it.
pub fn candidate_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a candidate port")).collect();
    held.iter().map(|l| l.local_addr().expect("candidate addr").port()).collect()
}

/// Start a child that listens on `ports` fresh loopback ports, retrying on a bind failure.
///
/// `spawn` starts the child on the given ports; `log` returns what the child has logged so far
/// (for the "in use" check and for the error message). Panics when the child fails for another
/// reason (it exits without a bind error), or when no attempt got its ports.
pub fn start_listening(
    what: &str,
    ports: usize,
    mut spawn: impl FnMut(&[u16]) -> Child,
    log: impl Fn() -> String,
) -> (Child, Vec<u16>) {
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let ports = candidate_ports(ports);
        let mut child = spawn(&ports);
        match wait_listening(&mut child, &ports, &log) {
            Listening::Ready => return (child, ports),
            Listening::PortTaken(why) => {
                let _ = child.kill();
                let _ = child.wait();
                failures.push(format!("ports {ports:?}: {why}"));
            }
        }
    }
    panic!("{what}: no attempt got its ports ({START_ATTEMPTS} tries):\n{}", failures.join("\n"));
}

/// How waiting for a child to listen ended.
pub enum Listening {
    /// The child itself listens on every port.
    Ready,
    /// The bind failed because something else has the port; start again on another.
    PortTaken(String),
}

/// What a bind failure looks like in a child's log: Pingora's retry warning, the OS error.
fn says_in_use(log: &str) -> bool {
    log.contains("is in use, will try again")
        || log.contains("still in use")
        || log.contains("Address already in use")
        || log.contains("AddrInUse")
}

/// Wait until `child` listens on all `ports`, or its bind failed.
pub fn wait_listening(child: &mut Child, ports: &[u16], log: &dyn Fn() -> String) -> Listening {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = log();
            if says_in_use(&log) {
                return Listening::PortTaken(format!("exited with {status}, address in use"));
            }
            panic!("process exited early with {status}; its log:\n{log}");
        }
        if says_in_use(&log()) {
            return Listening::PortTaken("its log says the address is in use".into());
        }
        match ports_owned_by(child.id(), ports) {
            Some(Ownership::All) => return Listening::Ready,
            Some(Ownership::TakenByOther(port)) => {
                return Listening::PortTaken(format!("another process listens on {port}"))
            }
            Some(Ownership::Pending) => {}
            // No /proc: the best available sign is that the ports accept connections.
            None => {
                if ports.iter().all(|p| accepts(SocketAddr::from(([127, 0, 0, 1], *p)))) {
                    return Listening::Ready;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "not listening on {ports:?} after {STARTUP_TIMEOUT:?}:\n{}",
            log()
        );
        std::thread::sleep(POLL);
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Who listens on the ports of interest.
enum Ownership {
    /// The process listens on every one of them.
    All,
    /// Not yet (nobody listens on at least one of them).
    Pending,
    /// Another process listens on this one: the child cannot get it.
    TakenByOther(u16),
}

/// `None` when `/proc` cannot tell (not Linux).
fn ports_owned_by(pid: u32, ports: &[u16]) -> Option<Ownership> {
    // Listening sockets first, then the process's fds: a socket the child listens on already
    // has its fd when the listing is read, so the order cannot miss it.
    let listening = listening_sockets()?;
    let mine = socket_inodes(pid)?;
    let mut all = true;
    for port in ports {
        let inodes: Vec<u64> = listening.iter().filter(|(p, _)| p == port).map(|(_, i)| *i).collect();
        if inodes.iter().any(|i| mine.contains(i)) {
            continue;
        }
        if !inodes.is_empty() {
            return Some(Ownership::TakenByOther(*port));
        }
        all = false;
    }
    Some(if all { Ownership::All } else { Ownership::Pending })
}

/// (port, socket inode) of every TCP socket in LISTEN state, IPv4 and IPv6.
fn listening_sockets() -> Option<Vec<(u16, u64)>> {
    let mut out = Vec::new();
    let mut any = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        any = true;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... inode (field 9); 0A is LISTEN.
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let port = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Ok(inode)) = (port, f[9].parse()) {
                out.push((port, inode));
            }
        }
    }
    any.then_some(out)
}

/// Inodes of the sockets `pid` has open.
fn socket_inodes(pid: u32) -> Option<HashSet<u64>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        dir.flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|l| {
                let l = l.to_string_lossy().into_owned();
                l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect(),
    )
}

/// Wait until `cond` holds, polling; fails the test with `what` after `within`.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for async tests: polls without blocking the runtime's thread.
pub async fn wait_until_async(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Whether a Unix socket at `path` is listening (Linux: `/proc/net/unix`; elsewhere, whether
/// the socket file exists).
pub fn unix_socket_listening(path: &Path) -> bool {
    const ACCEPTING: u32 = 0x0001_0000; // __SO_ACCEPTCON in the Flags column
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else { return path.exists() };
    let want = path.to_string_lossy();
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode Path
        f.len() >= 8
            && f[7] == want
            && u32::from_str_radix(f[3], 16).map(|flags| flags & ACCEPTING != 0).unwrap_or(false)
    })
}

/// A loopback port where nothing listens, reserved for as long as this value lives: a socket
/// bound to it that never listens, so connections to it are refused and no other process can
/// bind it (unlike a port that was bound and released, which anyone may take).
pub struct DeadPort {
    _socket: tokio::net::TcpSocket,
    pub addr: SocketAddr,
}

impl DeadPort {
    pub fn on(ip: std::net::IpAddr) -> DeadPort {
        let socket = match ip {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .expect("socket");
        socket.bind(SocketAddr::new(ip, 0)).expect("bind a dead port");
        let addr = socket.local_addr().expect("dead port addr");
        DeadPort { _socket: socket, addr }
    }

    pub fn loopback() -> DeadPort {
        DeadPort::on([127, 0, 0, 1].into())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}
