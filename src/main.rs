//! The presign-gateway binary: `presign-gateway -c conf/gateway.yaml`.
//!
//! Reads the file once, applies the command-line overrides, validates once, then either
//! checks (`-t`, which writes nothing) or runs the server.

/// mimalloc: pass-through and mint allocate per request (headers, bodies, JSON); glibc
/// malloc was ~11% of the gateway's CPU under load, see benches/load.sh.
mod allocator;
mod cli;

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use presign_gateway::{Config, Gateway, MetricsApp, UploadRoutes};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let allocator = allocator::tune();
    let mut cli = Cli::parse();
    // The helper subcommands exit 2 on a usage or input error; the server exits 1.
    let (outcome, failure) = match cli.command.take() {
        Some(Command::Sign(args)) => (sign(&args), 2),
        Some(Command::HashKey { key }) => (hash_key(key), 2),
        None => (run(cli, &allocator), 1),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(failure)
        }
    }
}

fn sign(args: &cli::SignArgs) -> Result<(), String> {
    let url =
        cli::credentials_from_env().and_then(|c| cli::sign(args, c, time::OffsetDateTime::now_utc()))?;
    println!("{url}");
    Ok(())
}

fn hash_key(key: Option<String>) -> Result<(), String> {
    let key = match key {
        Some(k) => k,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read the key from stdin: {e}"))?;
            s.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    println!("{}", presign_gateway::hash_key(&key));
    Ok(())
}

fn run(cli: Cli, allocator: &str) -> Result<(), String> {
    let Cli { command: _, conf, test, daemon, upgrade, overrides } = cli;
    let path = conf.ok_or("no configuration: pass -c conf/gateway.yaml")?;
    let mut cfg = Config::read(&path).map_err(|e| e.to_string())?;
    overrides.apply(&mut cfg);
    let cfg = cfg.validate().map_err(|e| e.to_string())?;
    init_logging(&cfg.logging.level);
    log::info!("{allocator}");
    if test {
        UploadRoutes::check(&cfg.routes).map_err(|e| e.to_string())?;
        if let Some(tls) = &cfg.tls {
            // The certificate is checked as at start (a watcher thread is of no harm here).
            presign_gateway::edge::TlsListener::from_config(tls, &presign_gateway::Metrics::new())?;
        }
        println!("configuration {} is valid", path.display());
        return Ok(());
    }
    serve(&cfg, daemon, upgrade)
}

/// SIGHUP reloads the API key file and the TLS certificate. Pingora handles TERM, INT and
/// QUIT itself and leaves HUP alone; without a handler, HUP's default action would kill the
/// process. The handler is registered before any listener opens, so no signal can arrive in
/// between.
fn watch_sighup(
    reloader: Option<presign_gateway::KeyReloader>,
    certs: Option<std::sync::Arc<presign_gateway::edge::Certificates>>,
) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                match &reloader {
                    Some(r) => {
                        r.reload();
                    }
                    None => log::info!("SIGHUP: delegated auth has no key file to reload"),
                }
                if let Some(c) = &certs {
                    // A refusal is logged by the reload; the certificate in force stays.
                    let _ = c.reload();
                }
            }
        })
        .map_err(|e| format!("cannot start the SIGHUP thread: {e}"))?;
    Ok(())
}

/// RUST_LOG wins; else the config's level. Pingora's own health-check line dumps the whole
/// peer configuration: ours (one short line) replaces it.
/// Warnings and errors go through [`LimitedLogger`](presign_gateway::edge::log_limit), so no
/// client can fill the disk with them.
fn init_logging(level: &str) {
    let level = format!("{level},pingora_load_balancing=error");
    let logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(presign_gateway::edge::log_limit::LimitedLogger::new(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// Raise the descriptor limit and size the connection caps from it.
fn edge_settings(cfg: &Config) -> Result<presign_gateway::edge::EdgeSettings, String> {
    let soft = match presign_gateway::edge::fd_limit::raise() {
        Ok(l) => {
            log::info!(
                "file descriptors: soft limit {} (was {}), hard limit {}",
                l.soft,
                l.soft_before,
                l.hard
            );
            l.soft
        }
        Err(e) => {
            let soft = presign_gateway::edge::fd_limit::soft();
            log::warn!("file descriptors: cannot raise the soft limit ({e}); it stays {soft}");
            soft
        }
    };
    let l = &cfg.limits;
    let max_connections =
        l.max_connections.unwrap_or_else(|| presign_gateway::config::auto_max_connections(soft));
    if max_connections == 0 || max_connections > soft.saturating_sub(presign_gateway::config::RESERVED_FDS) {
        log::warn!(
            "limits.max_connections {max_connections} leaves too few of the {soft} file descriptors for upstream sockets and files"
        );
    }
    log::info!(
        "connections: at most {max_connections} at once, {} per client address (0: no cap)",
        l.max_connections_per_ip
    );
    let proxy_protocol = if l.proxy_protocol.enabled {
        let trusted = l.proxy_protocol.networks().map_err(|e| e.to_string())?;
        let list: Vec<String> = trusted.iter().map(|n| n.to_string()).collect();
        log::info!("PROXY protocol: required on every listener, from {} only", list.join(", "));
        Some(presign_gateway::edge::ProxyProtocol::new(trusted))
    } else {
        None
    };
    Ok(presign_gateway::edge::EdgeSettings {
        max_connections,
        max_connections_per_ip: l.max_connections_per_ip,
        header_timeout: (l.header_timeout_secs > 0)
            .then(|| std::time::Duration::from_secs(l.header_timeout_secs)),
        keepalive_timeout: (l.keepalive_timeout_secs > 0)
            .then(|| std::time::Duration::from_secs(l.keepalive_timeout_secs)),
        proxy_protocol,
    })
}

fn serve(cfg: &Config, daemon: bool, upgrade: bool) -> Result<(), String> {
    let edge = edge_settings(cfg)?;
    let (gateway, origin_health) = Gateway::from_config(cfg).map_err(|e| e.to_string())?;
    let conf = ServerConf {
        threads: cfg.threads,
        daemon,
        pid_file: cfg.server.pid_file.clone(),
        upgrade_sock: cfg.server.upgrade_sock.clone(),
        error_log: cfg.server.error_log.clone(),
        grace_period_seconds: Some(cfg.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(cfg.server.graceful_shutdown_timeout_seconds),
        upstream_keepalive_pool_size: cfg.server.upstream_keepalive_pool_size,
        work_stealing: cfg.server.work_stealing,
        max_blocking_threads: Some(cfg.server.blocking_threads_for(cfg.threads)),
        blocking_threads_ttl_seconds: Some(cfg.server.blocking_threads_idle_seconds),
        ..Default::default()
    };
    let opt = Opt { upgrade, daemon, nocapture: false, test: false, conf: None };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    // After bootstrap: a daemon forks there, and a thread started before would stay behind.
    let tls = match &cfg.tls {
        Some(t) => Some(presign_gateway::edge::TlsListener::from_config(t, gateway.uploads().metrics())?),
        None => None,
    };
    watch_sighup(gateway.uploads().key_reloader(), tls.as_ref().map(|t| t.certs.clone()))?;
    let fingerprints: Vec<String> =
        gateway.uploads().secret_fingerprints().iter().map(|(w, f)| format!("{w} {f}")).collect();
    let origin_tls = match (cfg.origin_tls.server_name(), &cfg.origin_tls.ca_file) {
        (None, _) => String::new(),
        (Some(name), None) => format!(" over TLS as {name} (system roots)"),
        (Some(name), Some(ca)) => format!(" over TLS as {name} (CA file {})", ca.display()),
    };
    log::info!(
        "presign-gateway listening on {}{}; {}; secret fingerprints: {}; dialects: {}; origins: {}{origin_tls}",
        cfg.listen,
        tls.as_ref().map(|t| format!(" and {} (TLS)", t.addr)).unwrap_or_default(),
        gateway.uploads().store_description(),
        fingerprints.join(", "),
        gateway.uploads().dialect_names().join(", "),
        if cfg.origin.is_empty() { "none".to_string() } else { cfg.origin.join(", ") },
    );
    let metrics = gateway.uploads().metrics().clone();
    let event_delivery = gateway.uploads().event_delivery();
    let events_admin = gateway.uploads().events_admin();
    let refusals = gateway.uploads().refusals().clone();
    let mut proxy = pingora::proxy::http_proxy(&server.configuration, gateway);
    proxy.server_options = Some(presign_gateway::edge::server_options(cfg));
    if let Some(t) = &cfg.tls {
        proxy.h2_options = Some(presign_gateway::edge::h2_options(&t.http2));
    }
    let mut service = presign_gateway::edge::EdgeService::new("gateway", &cfg.listen, proxy, edge, refusals);
    if let Some(t) = &tls {
        service = service.with_tls_listener(&t.addr, t.edge.clone());
    }
    server.add_service(service);
    server.add_service(origin_health);
    if let Some(delivery) = event_delivery {
        server.add_service(delivery);
    }
    if let Some(addr) = &cfg.metrics.listen {
        let mut svc = pingora::services::listening::Service::new(
            "metrics".to_string(),
            MetricsApp::new(metrics).with_admin(events_admin),
        );
        svc.add_tcp(addr);
        server.add_service(svc);
    }
    server.run_forever();
}
