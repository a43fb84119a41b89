//! SSRF-safe fetching of user-supplied URLs (the API Mall "from-url" route).
//!
//! The gateway fetches a URL chosen by an untrusted caller, so every hop is
//! checked before a packet leaves the machine:
//!
//! * [`check_url`] refuses anything but `http`/`https`, URLs carrying
//!   credentials, and IP-literal hosts that are not public unicast. The host is
//!   classified as the WHATWG URL parser understood it (`2130706433`,
//!   `0x7f000001`, `127.1`, `[::ffff:127.0.0.1]` all become loopback), never as
//!   the raw string.
//! * Names are resolved by a resolver plugged into the HTTP client that
//!   classifies every A/AAAA answer and hands the client only addresses it
//!   checked, so the connection is pinned to a checked address and DNS
//!   rebinding cannot swap it between check and connect.
//! * Redirects are followed by hand (at most [`FetchPolicy::max_redirects`]),
//!   and each hop goes through the same checks.
//! * Body size is counted while streaming ([`FetchResponse::next_chunk`]) and
//!   one deadline covers resolution, connects, redirects and the body.
//!
//! [`sniff_content_type`] recognises common media formats from magic bytes.

mod classify;
mod error;
mod fetch;
mod magic;

pub use classify::*;
pub use error::*;
pub use fetch::*;
pub use magic::*;
