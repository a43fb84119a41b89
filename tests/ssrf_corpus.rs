//! SSRF corpus: destinations in many spellings, parsed by `url::Url` (WHATWG,
//! as the fetcher does) and judged by `check_url` / the classifier as pure
//! functions. Nothing here opens a socket or resolves a name.

use std::net::IpAddr;

use ipnet::IpNet;
use presign_gateway::ssrf::{check_url, classify_ip, classify_ip_with, BlockReason, FetchError, Verdict};
use url::Url;

use BlockReason::*;

/// What `check_url` must say about a URL.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Passes `check_url`: public IP literal, or a domain name (whose
    /// addresses are checked at resolution time).
    Pass,
    /// Refused with this class.
    Blk(BlockReason),
    Scheme,
    UserInfo,
    /// The WHATWG parser rejects it, so it can never be fetched.
    Unparseable,
}

use Expect::{Blk, Pass, Scheme, Unparseable, UserInfo};

const CASES: &[(&str, Expect)] = &[
    // --- IPv4 loopback in every spelling the parser accepts ---
    ("http://127.0.0.1/", Blk(Loopback)),
    ("http://127.0.0.1:8080/path", Blk(Loopback)),
    ("https://127.0.0.1/", Blk(Loopback)),
    ("HTTP://127.0.0.1/", Blk(Loopback)),
    ("http://127.1/", Blk(Loopback)),
    ("http://127.0.1/", Blk(Loopback)),
    ("http://127.000.000.001/", Blk(Loopback)),
    ("http://2130706433/", Blk(Loopback)),
    ("http://0x7f000001/", Blk(Loopback)),
    ("http://0X7F000001/", Blk(Loopback)),
    ("http://0x7f.0x0.0x0.0x1/", Blk(Loopback)),
    ("http://0x7f.1/", Blk(Loopback)),
    ("http://0x7f.0.0.1/", Blk(Loopback)),
    ("http://0177.0.0.1/", Blk(Loopback)),
    ("http://0177.1/", Blk(Loopback)),
    ("http://017700000001/", Blk(Loopback)),
    ("http://127.0.0.1./", Blk(Loopback)),
    ("http://127.255.255.254/", Blk(Loopback)),
    ("http://%31%32%37.0.0.1/", Blk(Loopback)),
    ("http://127%2E0%2E0%2E1/", Blk(Loopback)),
    ("http://127\u{3002}0\u{3002}0\u{3002}1/", Blk(Loopback)),
    ("http://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/", Blk(Loopback)),
    ("http://0x7f000001:80/", Blk(Loopback)),
    ("http://127.0.0.1:65535/", Blk(Loopback)),
    ("http://127.0.0.1#@8.8.8.8/", Blk(Loopback)),
    ("http://127.0.0.1\\@8.8.8.8/", Blk(Loopback)),
    ("http://127.0.0.1?@8.8.8.8/", Blk(Loopback)),
    // --- IPv6 loopback ---
    ("http://[::1]/", Blk(Loopback)),
    ("http://[::1]:8080/", Blk(Loopback)),
    ("http://[0:0:0:0:0:0:0:1]/", Blk(Loopback)),
    ("http://[0000:0000:0000:0000:0000:0000:0000:0001]/", Blk(Loopback)),
    ("http://[::0001]/", Blk(Loopback)),
    // --- unspecified / this network ---
    ("http://0.0.0.0/", Blk(Unspecified)),
    ("http://0.0.0.0:8080/", Blk(Unspecified)),
    ("http://0/", Blk(Unspecified)),
    ("http://0x0/", Blk(Unspecified)),
    ("http://00000/", Blk(Unspecified)),
    ("http://0.1.2.3/", Blk(Unspecified)),
    ("http://[::]/", Blk(Unspecified)),
    ("http://[0::0]/", Blk(Unspecified)),
    // --- cloud metadata / link-local ---
    ("http://169.254.169.254/latest/meta-data/", Blk(LinkLocal)),
    ("http://2852039166/", Blk(LinkLocal)),
    ("http://0xa9fea9fe/", Blk(LinkLocal)),
    ("http://0251.0376.0251.0376/", Blk(LinkLocal)),
    ("http://0xa9.0xfe.0xa9.0xfe/", Blk(LinkLocal)),
    ("http://169.254.43518/", Blk(LinkLocal)),
    ("http://169.254.0.1/", Blk(LinkLocal)),
    ("http://[fe80::1]/", Blk(LinkLocal)),
    ("http://[FE80::1]/", Blk(LinkLocal)),
    ("http://[fe80::a9fe:a9fe]/", Blk(LinkLocal)),
    ("http://[febf:ffff::1]/", Blk(LinkLocal)),
    ("http://[fd00:ec2::254]/", Blk(UniqueLocal)),
    ("http://metadata.google.internal/computeMetadata/v1/", Pass),
    // --- RFC 1918 ---
    ("http://10.0.0.1/", Blk(Private)),
    ("http://10.1/", Blk(Private)),
    ("http://10.0.1/", Blk(Private)),
    ("http://167772161/", Blk(Private)),
    ("http://0xa000001/", Blk(Private)),
    ("http://012.0.0.1/", Blk(Private)),
    ("http://172.16.0.1/", Blk(Private)),
    ("http://172.20.10.5:3000/", Blk(Private)),
    ("http://2886729729/", Blk(Private)),
    ("http://192.168.0.1/", Blk(Private)),
    ("http://192.168.1.1:8443/", Blk(Private)),
    ("http://3232235777/", Blk(Private)),
    ("http://0xc0a80101/", Blk(Private)),
    ("http://0300.0250.1.1/", Blk(Private)),
    ("http://192.168.257/", Blk(Private)),
    ("http://[fec0::1]/", Blk(Private)),
    // --- other IPv4 special purpose ---
    ("http://100.64.0.1/", Blk(SharedCgnat)),
    ("http://100.100.100.200/", Blk(SharedCgnat)),
    ("http://192.0.0.1/", Blk(OtherSpecialPurpose)),
    ("http://192.0.0.170/", Blk(OtherSpecialPurpose)),
    ("http://192.0.2.1/", Blk(Documentation)),
    ("http://198.51.100.7/", Blk(Documentation)),
    ("http://203.0.113.9/", Blk(Documentation)),
    ("http://198.18.0.1/", Blk(Benchmarking)),
    ("http://198.19.1.1/", Blk(Benchmarking)),
    ("http://192.88.99.1/", Blk(Tunnel)),
    ("http://224.0.0.1/", Blk(Multicast)),
    ("http://239.255.255.250/", Blk(Multicast)),
    ("http://240.0.0.1/", Blk(Reserved)),
    ("http://255.255.255.254/", Blk(Reserved)),
    ("http://255.255.255.255/", Blk(Broadcast)),
    ("http://4294967295/", Blk(Broadcast)),
    ("http://0xffffffff/", Blk(Broadcast)),
    // --- IPv4-mapped ::ffff:0:0/96 ---
    ("http://[::ffff:127.0.0.1]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:7f00:1]/", Blk(Ipv4Embedded)),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/", Blk(Ipv4Embedded)),
    ("http://[::FFFF:127.0.0.1]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:169.254.169.254]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:a9fe:a9fe]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:10.0.0.1]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:192.168.0.1]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:0.0.0.0]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:0:0]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:100.64.0.1]/", Blk(Ipv4Embedded)),
    ("http://[::ffff:8.8.8.8]/", Pass),
    // SIIT "IPv4-translated" ::ffff:0:a.b.c.d is not the mapped form.
    ("http://[::ffff:0:127.0.0.1]/", Blk(Reserved)),
    // --- IPv4-compatible ::/96 (deprecated) ---
    ("http://[::127.0.0.1]/", Blk(Ipv4Embedded)),
    ("http://[::7f00:1]/", Blk(Ipv4Embedded)),
    ("http://[::10.0.0.1]/", Blk(Ipv4Embedded)),
    ("http://[::169.254.169.254]/", Blk(Ipv4Embedded)),
    ("http://[::2]/", Blk(Ipv4Embedded)),
    ("http://[::8.8.8.8]/", Blk(Reserved)),
    // --- NAT64 ---
    ("http://[64:ff9b::127.0.0.1]/", Blk(Ipv4Embedded)),
    ("http://[64:ff9b::7f00:1]/", Blk(Ipv4Embedded)),
    ("http://[64:ff9b::a9fe:a9fe]/", Blk(Ipv4Embedded)),
    ("http://[64:ff9b::10.0.0.1]/", Blk(Ipv4Embedded)),
    ("http://[64:ff9b::192.168.1.1]/", Blk(Ipv4Embedded)),
    ("http://[64:ff9b::8.8.8.8]/", Pass),
    ("http://[64:ff9b::1.1.1.1]/", Pass),
    ("http://[64:ff9b:1::a00:1]/", Blk(OtherSpecialPurpose)),
    ("http://[64:ff9b:1::8.8.8.8]/", Blk(OtherSpecialPurpose)),
    // --- 6to4 and Teredo tunnels ---
    ("http://[2002:7f00:1::]/", Blk(Tunnel)),
    ("http://[2002:a9fe:a9fe::1]/", Blk(Tunnel)),
    ("http://[2002:c0a8:101::1]/", Blk(Tunnel)),
    ("http://[2002:808:808::]/", Blk(Tunnel)),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", Blk(Tunnel)),
    ("http://[2001::1]/", Blk(Tunnel)),
    // --- other IPv6 special purpose ---
    ("http://[fc00::1]/", Blk(UniqueLocal)),
    ("http://[fd12:3456:789a::1]/", Blk(UniqueLocal)),
    ("http://[ff02::1]/", Blk(Multicast)),
    ("http://[ff05::1:3]/", Blk(Multicast)),
    ("http://[100::1]/", Blk(OtherSpecialPurpose)),
    ("http://[100:0:0:1::1]/", Blk(OtherSpecialPurpose)),
    ("http://[2001:db8::1]/", Blk(Documentation)),
    ("http://[2001:db8:85a3::8a2e:370:7334]/", Blk(Documentation)),
    ("http://[3fff::1]/", Blk(Documentation)),
    ("http://[5f00::1]/", Blk(OtherSpecialPurpose)),
    ("http://[2001:2::1]/", Blk(Benchmarking)),
    ("http://[2001:10::1]/", Blk(OtherSpecialPurpose)),
    ("http://[2001:20::1]/", Blk(OtherSpecialPurpose)),
    ("http://[2001:1::1]/", Blk(OtherSpecialPurpose)),
    ("http://[1::1]/", Blk(Reserved)),
    ("http://[4000::1]/", Blk(Reserved)),
    ("http://[5eff::1]/", Blk(Reserved)),
    ("http://[e000::1]/", Blk(Reserved)),
    // --- public controls: must pass ---
    ("http://8.8.8.8/", Pass),
    ("https://1.1.1.1/", Pass),
    ("http://93.184.216.34/", Pass),
    ("http://[2606:4700::1111]/", Pass),
    ("http://[2001:4860:4860::8888]/", Pass),
    ("http://134744072/", Pass),
    ("http://0x08080808/", Pass),
    ("http://010.010.010.010/", Pass),
    ("http://8.8.8.8:8443/x?y#z", Pass),
    ("http://8.8.8.8\\@127.0.0.1/", Pass),
    ("http://1.0.0.1/", Pass),
    ("http://192.31.196.1/", Pass),
    ("http://[2620:4f:8000::1]/", Pass),
    ("http://[2001:200::1]/", Pass),
    ("http://[2001:db7:ffff::1]/", Pass),
    ("http://[2001:db9::1]/", Pass),
    ("http://[2003::1]/", Pass),
    ("http://[3fff:1000::1]/", Pass),
    ("http://[2a00:1450:4001::200e]/", Pass),
    ("https://example.com/", Pass),
    ("http://example.com:8080/a?b#c", Pass),
    ("https://xn--bcher-kva.example/", Pass),
    // Domain names pass the pure check; localhost is refused at resolution.
    ("http://localhost/", Pass),
    // WHATWG skips extra slashes for special schemes: the host is "x".
    ("http:///x", Pass),
    // --- neighbours just outside blocked ranges ---
    ("http://1.0.0.0/", Pass),
    ("http://9.255.255.255/", Pass),
    ("http://11.0.0.0/", Pass),
    ("http://100.63.255.255/", Pass),
    ("http://100.128.0.0/", Pass),
    ("http://126.255.255.255/", Pass),
    ("http://128.0.0.0/", Pass),
    ("http://169.253.255.255/", Pass),
    ("http://169.255.0.0/", Pass),
    ("http://172.15.255.255/", Pass),
    ("http://172.32.0.0/", Pass),
    ("http://192.0.1.255/", Pass),
    ("http://192.0.3.0/", Pass),
    ("http://192.88.98.255/", Pass),
    ("http://192.88.100.0/", Pass),
    ("http://192.167.255.255/", Pass),
    ("http://192.169.0.0/", Pass),
    ("http://198.17.255.255/", Pass),
    ("http://198.20.0.0/", Pass),
    ("http://198.51.99.255/", Pass),
    ("http://198.51.101.0/", Pass),
    ("http://203.0.112.255/", Pass),
    ("http://203.0.114.0/", Pass),
    ("http://223.255.255.255/", Pass),
    // --- scheme ---
    ("ftp://example.com/file", Scheme),
    ("ftp://127.0.0.1/", Scheme),
    ("file:///etc/passwd", Scheme),
    ("gopher://127.0.0.1:70/_x", Scheme),
    ("dict://127.0.0.1:11211/", Scheme),
    ("ws://example.com/", Scheme),
    ("wss://example.com/", Scheme),
    ("data:text/plain,hello", Scheme),
    ("javascript:alert(1)", Scheme),
    ("jar:http://8.8.8.8/a.jar!/", Scheme),
    // --- userinfo ---
    ("http://user:pass@example.com/", UserInfo),
    ("https://user@example.com/", UserInfo),
    ("http://:secret@example.com/", UserInfo),
    ("http://user@8.8.8.8/", UserInfo),
    ("http://8.8.8.8@127.0.0.1/", UserInfo),
    ("http://127.0.0.1%2f@8.8.8.8/", UserInfo),
    // --- rejected by the parser: can never reach the network ---
    ("http://4294967296/", Unparseable),
    ("http://256.0.0.1/", Unparseable),
    ("http://0x100000000/", Unparseable),
    ("http://127.0.0.1.1/", Unparseable),
    ("http://[fe80::1%25eth0]/", Unparseable),
    ("http://[::1/", Unparseable),
    ("http://", Unparseable),
    ("http://[]/", Unparseable),
    ("//127.0.0.1/", Unparseable),
];

/// Ranges whose first and last addresses are checked, with the class
/// expected at each end.
const RANGES: &[(&str, BlockReason, BlockReason)] = &[
    ("0.0.0.0/8", Unspecified, Unspecified),
    ("10.0.0.0/8", Private, Private),
    ("100.64.0.0/10", SharedCgnat, SharedCgnat),
    ("127.0.0.0/8", Loopback, Loopback),
    ("169.254.0.0/16", LinkLocal, LinkLocal),
    ("172.16.0.0/12", Private, Private),
    ("192.0.0.0/24", OtherSpecialPurpose, OtherSpecialPurpose),
    ("192.0.2.0/24", Documentation, Documentation),
    ("192.88.99.0/24", Tunnel, Tunnel),
    ("192.168.0.0/16", Private, Private),
    ("198.18.0.0/15", Benchmarking, Benchmarking),
    ("198.51.100.0/24", Documentation, Documentation),
    ("203.0.113.0/24", Documentation, Documentation),
    ("224.0.0.0/4", Multicast, Multicast),
    ("240.0.0.0/4", Reserved, Broadcast),
    ("::ffff:0:0/96", Ipv4Embedded, Ipv4Embedded),
    ("64:ff9b::/96", Ipv4Embedded, Ipv4Embedded),
    ("64:ff9b:1::/48", OtherSpecialPurpose, OtherSpecialPurpose),
    ("100::/64", OtherSpecialPurpose, OtherSpecialPurpose),
    ("2001::/23", Tunnel, OtherSpecialPurpose),
    ("2001::/32", Tunnel, Tunnel),
    ("2001:2::/48", Benchmarking, Benchmarking),
    ("2001:10::/28", OtherSpecialPurpose, OtherSpecialPurpose),
    ("2001:20::/28", OtherSpecialPurpose, OtherSpecialPurpose),
    ("2001:db8::/32", Documentation, Documentation),
    ("2002::/16", Tunnel, Tunnel),
    ("3fff::/20", Documentation, Documentation),
    ("5f00::/16", OtherSpecialPurpose, OtherSpecialPurpose),
    ("fc00::/7", UniqueLocal, UniqueLocal),
    ("fe80::/10", LinkLocal, LinkLocal),
    ("fec0::/10", Private, Private),
    ("ff00::/8", Multicast, Multicast),
];

fn url_for(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]/"),
    }
}

/// Runs one case; returns a description of the mismatch, if any.
fn run(input: &str, expect: Expect, allow: &[IpNet]) -> Option<String> {
    let got = match Url::parse(input) {
        Err(_) => {
            return match expect {
                Unparseable => None,
                _ => Some(format!("{input:?}: expected {expect:?}, did not parse")),
            }
        }
        Ok(url) => (url.to_string(), check_url(&url, allow)),
    };
    let ok = match (expect, &got.1) {
        (Pass, Ok(())) => true,
        (Blk(want), Err(FetchError::Blocked(have))) => want == *have,
        (Scheme, Err(FetchError::SchemeNotAllowed)) => true,
        (UserInfo, Err(FetchError::UserInfoNotAllowed)) => true,
        _ => false,
    };
    (!ok).then(|| format!("{input:?} (parsed {}): expected {expect:?}, got {:?}", got.0, got.1))
}

#[test]
fn corpus_of_destinations() {
    let mut failures = Vec::new();
    let mut count = 0usize;
    for (input, expect) in CASES {
        count += 1;
        failures.extend(run(input, *expect, &[]));
    }
    for (cidr, first, last) in RANGES {
        let net: IpNet = cidr.parse().unwrap();
        for (ip, reason) in [(net.network(), *first), (net.broadcast(), *last)] {
            count += 1;
            failures.extend(run(&url_for(ip), Blk(reason), &[]));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(count >= 150, "corpus has only {count} destinations");
}

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
