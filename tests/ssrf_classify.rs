//! SSRF classes as pure functions: `allow_networks` exempts only its own range, the address
//! classifier agrees with `check_url`, and the class labels are stable while error messages
//! hide addresses and classes. Nothing here opens a socket or resolves a name. The case
//! runner is in `common::ssrf_cases`.

mod common;

use std::net::IpAddr;

use common::ssrf_cases::Expect::{Blk, Pass, Scheme, UserInfo};
use common::ssrf_cases::{run, url_for, Expect};
use ipnet::IpNet;
use presign_gateway::ssrf::{check_url, classify_ip, classify_ip_with, BlockReason, FetchError, Verdict};
use url::Url;

use BlockReason::*;

#[test]
fn allow_networks_exempt_only_their_range() {
    let allow: Vec<IpNet> = vec!["127.0.0.2/32".parse().unwrap()];
    let cases: &[(&str, Expect)] = &[
        ("http://127.0.0.2/", Pass),
        ("http://127.0.0.2:9000/x", Pass),
        ("http://2130706434/", Pass),
        ("http://0x7f000002/", Pass),
        ("http://127.0.2/", Pass),
        ("http://[::ffff:127.0.0.2]/", Pass),
        ("http://127.0.0.1/", Blk(Loopback)),
        ("http://127.0.0.3/", Blk(Loopback)),
        ("http://[::1]/", Blk(Loopback)),
        ("http://[64:ff9b::127.0.0.2]/", Blk(Ipv4Embedded)),
        ("http://10.0.0.1/", Blk(Private)),
        // The allow list exempts addresses, not schemes or credentials.
        ("ftp://127.0.0.2/", Scheme),
        ("http://u:p@127.0.0.2/", UserInfo),
    ];
    let failures: Vec<String> =
        cases.iter().filter_map(|(input, expect)| run(input, *expect, &allow)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Without the allow list the same address is loopback again.
    assert_eq!(run("http://127.0.0.2/", Blk(Loopback), &[]), None, "exemption leaked");

    let wide: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(classify_ip_with(ip("10.1.2.3"), &wide), Verdict::Public);
    assert_eq!(classify_ip_with(ip("fd00::1"), &wide), Verdict::Public);
    assert_eq!(classify_ip_with(ip("fc00::1"), &wide), Verdict::Blocked(UniqueLocal));
    assert_eq!(classify_ip_with(ip("172.16.0.1"), &wide), Verdict::Blocked(Private));
    assert_eq!(classify_ip_with(ip("11.0.0.1"), &wide), Verdict::Public);
}

#[test]
fn classifier_is_consistent_with_check_url() {
    // The pure classifier and check_url agree on a few direct addresses.
    for (s, want) in [
        ("127.0.0.1", Verdict::Blocked(Loopback)),
        ("::ffff:10.0.0.1", Verdict::Blocked(Ipv4Embedded)),
        ("8.8.8.8", Verdict::Public),
        ("2606:4700::1111", Verdict::Public),
    ] {
        let ip: IpAddr = s.parse().unwrap();
        assert_eq!(classify_ip(ip), want, "{s}");
        let url = Url::parse(&url_for(ip)).unwrap();
        let via_url = match check_url(&url, &[]) {
            Ok(()) => Verdict::Public,
            Err(FetchError::Blocked(r)) => Verdict::Blocked(r),
            Err(e) => panic!("{s}: unexpected {e:?}"),
        };
        assert_eq!(via_url, want, "{s} via URL");
    }
}

#[test]
fn labels_are_stable_and_display_hides_addresses() {
    let reasons = [
        Loopback,
        Private,
        LinkLocal,
        SharedCgnat,
        Unspecified,
        Multicast,
        Broadcast,
        Documentation,
        Benchmarking,
        Reserved,
        UniqueLocal,
        Ipv4Embedded,
        Tunnel,
        OtherSpecialPurpose,
    ];
    let labels: std::collections::HashSet<&str> = reasons.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), reasons.len(), "labels must be distinct");
    assert_eq!(Loopback.as_str(), "loopback");
    assert_eq!(LinkLocal.as_str(), "link_local");
    for r in reasons {
        let e = FetchError::Blocked(r);
        assert_eq!(e.reason(), "blocked");
        assert_eq!(e.block_reason(), Some(r));
        let msg = e.to_string();
        assert!(!msg.chars().any(|c| c.is_ascii_digit()), "{msg}");
        assert!(!msg.contains(r.as_str()), "class leaked in {msg}");
    }
    assert_eq!(FetchError::Status(404).status(), Some(404));
    assert_eq!(FetchError::Status(404).reason(), "status");
    assert!(FetchError::Status(404).to_string().contains("404"));
    assert_eq!(FetchError::TooLarge.status(), None);
}
