//! Errors of the SSRF-safe fetcher. Messages are safe to show to the caller:
//! they never contain resolved addresses (that would turn the route into an
//! oracle for internal DNS), and the block class is only exposed
//! programmatically ([`FetchError::block_reason`]) for metrics and logs.

use std::fmt;

use super::classify::BlockReason;

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Not a parseable absolute URL, no host, or an unusable `Location`.
    InvalidUrl,
    /// Scheme other than http/https (at the start or at any redirect hop).
    SchemeNotAllowed,
    /// URL carries a username or password.
    UserInfoNotAllowed,
    /// Destination address is not public unicast.
    Blocked(BlockReason),
    /// Name did not resolve to any address.
    Resolve,
    /// No connection could be made to any (checked) address.
    Connect,
    /// Connect timeout or the overall deadline passed.
    Timeout,
    /// Source answered with a non-2xx status (or a 3xx without `Location`).
    Status(u16),
    /// More redirects than the policy allows.
    TooManyRedirects,
    /// Body is (or is declared to be) larger than the cap.
    TooLarge,
    /// Body stream broke off.
    Body(String),
    /// Other HTTP client failure.
    Client(String),
}

impl FetchError {
    /// Stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl => "invalid_url",
            FetchError::SchemeNotAllowed => "scheme_not_allowed",
            FetchError::UserInfoNotAllowed => "userinfo_not_allowed",
            FetchError::Blocked(_) => "blocked",
            FetchError::Resolve => "resolve",
            FetchError::Connect => "connect",
            FetchError::Timeout => "timeout",
            FetchError::Status(_) => "status",
            FetchError::TooManyRedirects => "too_many_redirects",
            FetchError::TooLarge => "too_large",
            FetchError::Body(_) => "body",
            FetchError::Client(_) => "client",
        }
    }

    /// The source's HTTP status, for [`FetchError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status(code) => Some(*code),
            _ => None,
        }
    }

    /// The address class, for [`FetchError::Blocked`].
    pub fn block_reason(&self) -> Option<BlockReason> {
        match self {
            FetchError::Blocked(reason) => Some(*reason),
            _ => None,
        }
    }

    /// Suggested status for the gateway's own answer: the caller's input was
    /// unacceptable (400), too big (413), or the source failed (502/504).
    pub fn http_status_hint(&self) -> u16 {
        match self {
            FetchError::InvalidUrl
            | FetchError::SchemeNotAllowed
            | FetchError::UserInfoNotAllowed
            | FetchError::Blocked(_)
            | FetchError::TooManyRedirects => 400,
            FetchError::TooLarge => 413,
            FetchError::Timeout => 504,
            FetchError::Resolve | FetchError::Connect | FetchError::Status(_) | FetchError::Body(_) => 502,
            FetchError::Client(_) => 500,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::InvalidUrl => f.write_str("invalid URL"),
            FetchError::SchemeNotAllowed => f.write_str("only http and https URLs are allowed"),
            FetchError::UserInfoNotAllowed => f.write_str("URLs with credentials are not allowed"),
            // Deliberately generic: no address and no address class.
            FetchError::Blocked(_) => f.write_str("destination is not allowed"),
            FetchError::Resolve => f.write_str("could not resolve the source host"),
            FetchError::Connect => f.write_str("could not connect to the source"),
            FetchError::Timeout => f.write_str("fetching the source timed out"),
            FetchError::Status(code) => write!(f, "source answered with HTTP status {code}"),
            FetchError::TooManyRedirects => f.write_str("too many redirects"),
            FetchError::TooLarge => f.write_str("source body exceeds the size limit"),
            FetchError::Body(msg) => write!(f, "error reading the source body: {msg}"),
            FetchError::Client(msg) => write!(f, "HTTP client error: {msg}"),
        }
    }
}

impl std::error::Error for FetchError {}
