//! Destination classifier: decides whether an IP address is public unicast
//! (fetchable) or belongs to a range the gateway must never connect to, and
//! checks a parsed URL's scheme, userinfo and literal-IP host.
//!
//! The tables follow the IANA IPv4 and IPv6 special-purpose address registries:
//! every range that is not globally reachable is refused, plus multicast,
//! the deprecated/transition ranges that can tunnel to arbitrary IPv4
//! destinations (6to4, Teredo), and IPv6 space outside global unicast
//! `2000::/3`. Refusing too much is the safe failure here: a caller with a
//! legitimate need for an internal range must list it in `allow_networks`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::{Host, Url};

use super::error::FetchError;

/// Outcome of classifying one destination address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Public unicast (or exempted by the allow list): may be connected to.
    Public,
    /// Must not be connected to, with the class that caused the refusal.
    Blocked(BlockReason),
}

impl Verdict {
    /// True when the address may be connected to.
    pub fn is_public(&self) -> bool {
        matches!(self, Verdict::Public)
    }
}

/// Why an address was refused. Labels from [`BlockReason::as_str`] are stable
/// so they can be used as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918 and the deprecated IPv6 site-local fec0::/10.
    Private,
    /// 169.254.0.0/16 (cloud metadata lives here), fe80::/10.
    LinkLocal,
    /// Carrier-grade NAT shared space 100.64.0.0/10.
    SharedCgnat,
    /// 0.0.0.0/8 ("this network"; 0.0.0.0 reaches the local host), ::.
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18.0.0/15, 2001:2::/48.
    Benchmarking,
    /// 240.0.0.0/4 and IPv6 outside global unicast 2000::/3.
    Reserved,
    /// fc00::/7.
    UniqueLocal,
    /// IPv4-mapped, IPv4-compatible or NAT64 address carrying a blocked IPv4.
    Ipv4Embedded,
    /// 6to4 (2002::/16, 192.88.99.0/24 relays) and Teredo (2001::/32).
    Tunnel,
    /// Any other special-purpose range that is not globally reachable.
    OtherSpecialPurpose,
}

impl BlockReason {
    /// Stable, lowercase label (for metrics and logs).
    pub fn as_str(&self) -> &'static str {
        match self {
            BlockReason::Loopback => "loopback",
            BlockReason::Private => "private",
            BlockReason::LinkLocal => "link_local",
            BlockReason::SharedCgnat => "shared_cgnat",
            BlockReason::Unspecified => "unspecified",
            BlockReason::Multicast => "multicast",
            BlockReason::Broadcast => "broadcast",
            BlockReason::Documentation => "documentation",
            BlockReason::Benchmarking => "benchmarking",
            BlockReason::Reserved => "reserved",
            BlockReason::UniqueLocal => "unique_local",
            BlockReason::Ipv4Embedded => "ipv4_embedded",
            BlockReason::Tunnel => "tunnel",
            BlockReason::OtherSpecialPurpose => "other_special_purpose",
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// IPv4 ranges checked in order; the first match wins, so the narrower
/// entries come before the ones that contain them.
const V4_BLOCKED: &[([u8; 4], u8, BlockReason)] = &[
    ([255, 255, 255, 255], 32, BlockReason::Broadcast),
    ([0, 0, 0, 0], 8, BlockReason::Unspecified),
    ([10, 0, 0, 0], 8, BlockReason::Private),
    ([100, 64, 0, 0], 10, BlockReason::SharedCgnat),
    ([127, 0, 0, 0], 8, BlockReason::Loopback),
    ([169, 254, 0, 0], 16, BlockReason::LinkLocal),
    ([172, 16, 0, 0], 12, BlockReason::Private),
    // IETF protocol assignments (DS-Lite, NAT64 discovery, ...). A couple of
    // anycast addresses inside are globally reachable, but no upload source
    // lives there, so the whole /24 is refused.
    ([192, 0, 0, 0], 24, BlockReason::OtherSpecialPurpose),
    ([192, 0, 2, 0], 24, BlockReason::Documentation),
    ([192, 88, 99, 0], 24, BlockReason::Tunnel),
    ([192, 168, 0, 0], 16, BlockReason::Private),
    ([198, 18, 0, 0], 15, BlockReason::Benchmarking),
    ([198, 51, 100, 0], 24, BlockReason::Documentation),
    ([203, 0, 113, 0], 24, BlockReason::Documentation),
    ([224, 0, 0, 0], 4, BlockReason::Multicast),
    ([240, 0, 0, 0], 4, BlockReason::Reserved),
];

/// IPv6 ranges checked in order after the special cases handled in code
/// (::, ::1 and the IPv4-embedding forms). First match wins.
const V6_BLOCKED: &[([u16; 8], u8, BlockReason)] = &[
    // Local-use NAT64 prefix: the IPv4 position depends on the operator's
    // prefix length, so the embedded address cannot be extracted reliably.
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, BlockReason::OtherSpecialPurpose),
    // Discard-only and dummy prefixes.
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, BlockReason::OtherSpecialPurpose),
    ([0x100, 0, 0, 1, 0, 0, 0, 0], 64, BlockReason::OtherSpecialPurpose),
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, BlockReason::Tunnel),
    ([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, BlockReason::Benchmarking),
    // The rest of the IETF protocol assignment block (ORCHID 2001:10::/28,
    // ORCHIDv2 2001:20::/28, AMT, AS112, anycast ...): no upload source.
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, BlockReason::OtherSpecialPurpose),
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, BlockReason::Documentation),
    ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, BlockReason::Tunnel),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, BlockReason::Documentation),
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, BlockReason::OtherSpecialPurpose),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, BlockReason::UniqueLocal),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, BlockReason::LinkLocal),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, BlockReason::Private),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, BlockReason::Multicast),
];

fn v4_in(addr: u32, base: [u8; 4], len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    addr & mask == u32::from_be_bytes(base) & mask
}

fn v6_in(addr: u128, base: [u16; 8], len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    addr & mask == u128::from(Ipv6Addr::from(base)) & mask
}

/// Classifies an IPv4 address (pure).
pub fn classify_ipv4(ip: Ipv4Addr) -> Verdict {
    let n = u32::from(ip);
    V4_BLOCKED
        .iter()
        .find(|(base, len, _)| v4_in(n, *base, *len))
        .map_or(Verdict::Public, |(_, _, reason)| Verdict::Blocked(*reason))
}

/// Classifies an IPv6 address (pure). Forms that carry an IPv4 address are
/// judged by that IPv4 address, because that is where a packet would go.
pub fn classify_ipv6(ip: Ipv6Addr) -> Verdict {
    let n = u128::from(ip);
    if n == 0 {
        return Verdict::Blocked(BlockReason::Unspecified);
    }
    if n == 1 {
        return Verdict::Blocked(BlockReason::Loopback);
    }
    let low32 = Ipv4Addr::from(n as u32);
    // ::ffff:a.b.c.d is the IPv4 socket address a.b.c.d on a dual-stack socket.
    if v6_in(n, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) {
        return embedded(low32, Verdict::Public);
    }
    // Deprecated IPv4-compatible ::a.b.c.d: refused whatever it carries (it is
    // not global unicast), but report a blocked carried IPv4 as such.
    if v6_in(n, [0; 8], 96) {
        return embedded(low32, Verdict::Blocked(BlockReason::Reserved));
    }
    // Well-known NAT64 prefix: the translator forwards to the embedded IPv4.
    if v6_in(n, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return embedded(low32, Verdict::Public);
    }
    if let Some((_, _, reason)) = V6_BLOCKED.iter().find(|(base, len, _)| v6_in(n, *base, *len)) {
        return Verdict::Blocked(*reason);
    }
    // Everything outside global unicast (2000::/3) is reserved or unassigned.
    if !v6_in(n, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Verdict::Blocked(BlockReason::Reserved);
    }
    Verdict::Public
}

fn embedded(v4: Ipv4Addr, if_public: Verdict) -> Verdict {
    match classify_ipv4(v4) {
        Verdict::Public => if_public,
        Verdict::Blocked(_) => Verdict::Blocked(BlockReason::Ipv4Embedded),
    }
}

/// Classifies an address with no exemptions (pure).
pub fn classify_ip(ip: IpAddr) -> Verdict {
    match ip {
        IpAddr::V4(v4) => classify_ipv4(v4),
        IpAddr::V6(v6) => classify_ipv6(v6),
    }
}

/// Classifies an address, letting `allow` exempt ranges first. An IPv4-mapped
/// IPv6 address is matched against the allow list in its IPv4 form too, since
/// both reach the same host.
pub fn classify_ip_with(ip: IpAddr, allow: &[IpNet]) -> Verdict {
    let canonical = ip.to_canonical();
    if allow.iter().any(|net| net.contains(&ip) || net.contains(&canonical)) {
        return Verdict::Public;
    }
    classify_ip(ip)
}

/// The IP address a URL's host denotes, when the host is an IP literal (in
/// whatever spelling the WHATWG parser accepted). `None` for domain names.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        // The WHATWG parser turns anything that looks numeric into Host::Ipv4
        // for http(s); parsing again guards against a parser change.
        Host::Domain(d) => d.parse().ok(),
    }
}

/// Checks everything about a URL that can be judged without resolving it:
/// scheme (http/https only), no userinfo, and a literal-IP host must classify
/// as public. Domain names pass here; their addresses are checked at
/// resolution time by the fetcher.
pub fn check_url(url: &Url, allow: &[IpNet]) -> Result<(), FetchError> {
    match url.scheme() {
        "http" | "https" => {}
        _ => return Err(FetchError::SchemeNotAllowed),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::UserInfoNotAllowed);
    }
    match url.host() {
        None => return Err(FetchError::InvalidUrl),
        Some(Host::Domain("")) => return Err(FetchError::InvalidUrl),
        Some(_) => {}
    }
    match literal_ip(url).map(|ip| classify_ip_with(ip, allow)) {
        Some(Verdict::Blocked(reason)) => Err(FetchError::Blocked(reason)),
        Some(Verdict::Public) | None => Ok(()),
    }
}
