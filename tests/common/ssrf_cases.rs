//! What the SSRF corpus tests share (`ssrf_corpus.rs`, `ssrf_classify.rs`): the expected
//! verdict for a URL, and one case run through `url::Url` (WHATWG, as the fetcher parses) and
//! `check_url` as pure functions.

use std::net::IpAddr;

use ipnet::IpNet;
use presign_gateway::ssrf::{check_url, BlockReason, FetchError};
use url::Url;

use Expect::{Blk, Pass, Scheme, Unparseable, UserInfo};

/// What `check_url` must say about a URL.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
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

pub fn url_for(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]/"),
    }
}

/// Runs one case; returns a description of the mismatch, if any.
pub fn run(input: &str, expect: Expect, allow: &[IpNet]) -> Option<String> {
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
