//! The binary tunes its allocator at start (src/allocator.rs): transparent huge pages off
//! and freed pages purged after 10 ms, unless the operator's MIMALLOC_* variables say otherwise.

mod common;

use common::*;

fn thp_enabled(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(|v| v.trim().to_string())
        .expect("THP_enabled in /proc/PID/status (Linux 5.0+)")
}

fn start(env: &[(&str, &str)]) -> Gateway {
    let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env.push(("RUST_LOG".into(), "info".into()));
    Gateway::start(GatewayOpts { env, ..Default::default() })
}

#[test]
fn by_default_huge_pages_are_off_and_pages_are_purged_after_10_ms() {
    let gw = start(&[]);
    assert_eq!(thp_enabled(gw.child.id()), "0");
    let log = gw.log();
    assert!(
        log.contains("allocator: mimalloc 3.3.")
            && log.contains("transparent huge pages off, freed pages purged after 10 ms"),
        "{log}"
    );
}

#[test]
fn the_operators_mimalloc_variables_win() {
    let gw = start(&[("MIMALLOC_ALLOW_THP", "1"), ("MIMALLOC_PURGE_DELAY", "1000")]);
    assert_eq!(thp_enabled(gw.child.id()), "1");
    let log = gw.log();
    assert!(
        log.contains("as MIMALLOC_ALLOW_THP says")
            && log.contains("purge delay as MIMALLOC_PURGE_DELAY says"),
        "{log}"
    );
}
