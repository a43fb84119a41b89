//! The presign-gateway binary: `presign-gateway -c conf/gateway.yaml`.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use presign_gateway::cli::{self, Cli, Command};
use presign_gateway::{Config, Gateway};

/// mimalloc: pass-through and mint allocate per request (headers, bodies, JSON); glibc
/// malloc was ~11% of the gateway's CPU under load, see benches/load.sh.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // RUST_LOG wins; else the config's logging.level (read again, cheaply, before logging starts).
    let level = cli
        .conf
        .as_ref()
        .and_then(|p| Config::load(p).ok())
        .map(|c| c.logging.level)
        .unwrap_or_else(|| "info".to_string());
    let level = format!("{level},pingora_load_balancing=error");
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match &cli.command {
        Some(Command::Sign(args)) => {
            let out =
                cli::credentials_from_env().and_then(|c| cli::sign(args, c, time::OffsetDateTime::now_utc()));
            return match out {
                Ok(url) => {
                    println!("{url}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Some(Command::HashKey { key }) => {
            let key = match key {
                Some(k) => k.clone(),
                None => {
                    let mut s = String::new();
                    if std::io::stdin().read_to_string(&mut s).is_err() {
                        eprintln!("error: cannot read the key from stdin");
                        return ExitCode::from(2);
                    }
                    s.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            println!("{}", presign_gateway::hash_key(&key));
            return ExitCode::SUCCESS;
        }
        None => {}
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let path = cli.conf.clone().ok_or("no configuration: pass -c conf/gateway.yaml")?;
    let mut cfg = Config::load(&path).map_err(|e| e.to_string())?;
    if let Some(l) = &cli.listen {
        cfg.listen = l.clone();
    }
    if let Some(o) = &cli.origin {
        cfg.origin = vec![o.clone()];
    }
    let cfg = cfg.validate().map_err(|e| format!("{e} (after command-line overrides)"))?;
    let (gateway, origin_health) = Gateway::from_config(&cfg).map_err(|e| e.to_string())?;
    if cli.test {
        println!("configuration {} is valid", path.display());
        return Ok(());
    }

    let conf = ServerConf {
        threads: cfg.threads,
        daemon: cli.daemon,
        pid_file: cfg.server.pid_file.clone(),
        upgrade_sock: cfg.server.upgrade_sock.clone(),
        error_log: cfg.server.error_log.clone(),
        grace_period_seconds: Some(cfg.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(cfg.server.graceful_shutdown_timeout_seconds),
        upstream_keepalive_pool_size: cfg.server.upstream_keepalive_pool_size,
        work_stealing: cfg.server.work_stealing,
        ..Default::default()
    };
    let opt = Opt { upgrade: cli.upgrade, daemon: cli.daemon, nocapture: false, test: false, conf: None };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let metrics = gateway.uploads().metrics().clone();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, gateway);
    proxy.add_tcp(&cfg.listen);
    server.add_service(proxy);
    server.add_service(origin_health);
    if let Some(addr) = &cfg.metrics.listen {
        let mut svc = pingora::services::listening::Service::new(
            "metrics".to_string(),
            presign_gateway::metrics::MetricsApp { metrics },
        );
        svc.add_tcp(addr);
        server.add_service(svc);
    }
    log::info!("presign-gateway listening on {}", cfg.listen);
    server.run_forever();
}
