//! The fetcher: a reqwest client whose DNS resolver refuses blocked answers,
//! a manual redirect loop that re-checks every hop, and a body reader that
//! counts bytes and enforces one overall deadline.
//!
//! Why a custom resolver rather than resolving first and calling
//! `ClientBuilder::resolve`: `resolve` overrides are per client, so pinning
//! per request would mean building a client (TLS config, pool) per hop. With
//! the resolver plugged into the client, the addresses the connector dials are
//! exactly the ones the resolver classified (nothing resolves again between
//! check and connect, so DNS rebinding cannot swap them), pooled connections
//! were all made to checked addresses, and the client is built once. IP-literal
//! hosts never reach a resolver, so [`check_url`] classifies them first.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::StatusCode;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::time::Instant;
use url::Url;

use super::classify::{check_url, classify_ip_with, Verdict};
use super::error::FetchError;

/// Limits and exemptions for [`Fetcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Ranges exempt from the classifier (e.g. an internal mirror). Empty by
    /// default.
    pub allow_networks: Vec<IpNet>,
    /// Limit for one TCP (+TLS) connect and for one DNS lookup.
    pub connect_timeout: Duration,
    /// Deadline for the whole fetch: every hop plus reading the body.
    pub total_timeout: Duration,
    /// Body cap in bytes, counted while streaming.
    pub max_bytes: u64,
    /// Redirects followed before giving up.
    pub max_redirects: u8,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_networks: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(60),
            max_bytes: crate::config::MAX_FILE_SIZE,
            max_redirects: 5,
        }
    }
}

/// Resolver handed to reqwest: resolves with the system resolver, refuses the
/// whole name if any answer is blocked (a name that mixes public and internal
/// answers is an attack, not a misconfiguration to route around), and returns
/// only checked addresses.
#[derive(Debug)]
struct CheckedResolver {
    allow: Arc<[IpNet]>,
    lookup_timeout: Duration,
}

/// Carries our verdict through reqwest's boxed error chain so that
/// [`map_send_error`] can recover it.
#[derive(Debug)]
struct ResolverRefusal(FetchError);

impl fmt::Display for ResolverRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for ResolverRefusal {}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow = Arc::clone(&self.allow);
        let lookup_timeout = self.lookup_timeout;
        Box::pin(async move {
            let checked = tokio::time::timeout(lookup_timeout, resolve_checked(&host, 0, &allow))
                .await
                .unwrap_or(Err(FetchError::Timeout))
                // `?` boxes the refusal itself (boxing it here first would
                // hide it behind a second Box from the downcast).
                .map_err(ResolverRefusal)?;
            // Port 0 makes the connector use the URL's port.
            let addrs: Addrs = Box::new(checked.into_iter());
            Ok(addrs)
        })
    }
}

/// Resolves `host` with the system resolver and checks every answer (A and
/// AAAA). Fails with [`FetchError::Blocked`] if any answer is blocked, and
/// with [`FetchError::Resolve`] if there is none. The error never says which
/// address was found.
pub async fn resolve_checked(host: &str, port: u16, allow: &[IpNet]) -> Result<Vec<SocketAddr>, FetchError> {
    let answers: Vec<SocketAddr> =
        tokio::net::lookup_host((host, port)).await.map_err(|_| FetchError::Resolve)?.collect();
    if answers.is_empty() {
        return Err(FetchError::Resolve);
    }
    for addr in &answers {
        if let Verdict::Blocked(reason) = classify_ip_with(addr.ip(), allow) {
            log::debug!("ssrf: {host:?} resolved to a blocked address ({reason})");
            return Err(FetchError::Blocked(reason));
        }
    }
    Ok(answers)
}

/// SSRF-safe HTTP(S) fetcher. Build once and share: it is cheap to clone and
/// `Send + Sync`, and clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<FetchPolicy>,
}

impl Fetcher {
    /// Builds the client for `policy`.
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let resolver = CheckedResolver {
            allow: policy.allow_networks.clone().into(),
            lookup_timeout: policy.connect_timeout,
        };
        let client = reqwest::Client::builder()
            // Environment proxies would connect to the proxy, not to the
            // checked address.
            .no_proxy()
            // Redirects are followed by hand so every hop is re-checked.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .dns_resolver(Arc::new(resolver))
            .connect_timeout(policy.connect_timeout)
            // Backstop only; the fetch deadline below is what callers see.
            .timeout(policy.total_timeout)
            .user_agent(concat!("presign-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Client(e.without_url().to_string()))?;
        Ok(Fetcher { client, policy: Arc::new(policy) })
    }

    /// The policy this fetcher enforces.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Fetches `url`, following up to `max_redirects` redirects, and returns
    /// once a 2xx answer's headers are in. The body is read with
    /// [`FetchResponse::next_chunk`], still under the same deadline.
    pub async fn fetch(&self, url: &str) -> Result<FetchResponse, FetchError> {
        let deadline = Instant::now() + self.policy.total_timeout;
        let mut current = Url::parse(url).map_err(|_| FetchError::InvalidUrl)?;
        let mut redirects: u8 = 0;
        loop {
            check_url(&current, &self.policy.allow_networks)?;
            let request = self.client.get(current.clone()).send();
            let response = tokio::time::timeout_at(deadline, request)
                .await
                .map_err(|_| FetchError::Timeout)?
                .map_err(map_send_error)?;
            let status = response.status();
            if is_followed_redirect(status) {
                let location = response.headers().get(LOCATION).ok_or(FetchError::Status(status.as_u16()))?;
                let location = location.to_str().map_err(|_| FetchError::InvalidUrl)?;
                // Relative references resolve against the URL that answered.
                let next = current.join(location).map_err(|_| FetchError::InvalidUrl)?;
                if redirects >= self.policy.max_redirects {
                    return Err(FetchError::TooManyRedirects);
                }
                redirects += 1;
                current = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            let declared_length = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            // A declared length is only used to refuse early; the body is
            // counted regardless.
            if declared_length.is_some_and(|n| n > self.policy.max_bytes) {
                return Err(FetchError::TooLarge);
            }
            let content_type =
                response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            return Ok(FetchResponse {
                final_url: current,
                status: status.as_u16(),
                content_type,
                declared_length,
                redirects,
                inner: response,
                received: 0,
                max_bytes: self.policy.max_bytes,
                deadline,
                state: BodyState::Reading,
            });
        }
    }
}

fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Finds our resolver's verdict anywhere in an error's source chain.
fn find_refusal(err: &(dyn StdError + 'static)) -> Option<FetchError> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(refusal) = e.downcast_ref::<ResolverRefusal>() {
            return Some(refusal.0.clone());
        }
        current = e.source();
    }
    None
}

fn map_send_error(err: reqwest::Error) -> FetchError {
    if let Some(refusal) = find_refusal(&err) {
        return refusal;
    }
    if err.is_timeout() {
        return FetchError::Timeout;
    }
    if err.is_connect() {
        return FetchError::Connect;
    }
    // reqwest's Display names only the error kind (never the peer address);
    // the URL is the caller's own input but is dropped to keep messages short.
    FetchError::Client(err.without_url().to_string())
}

fn map_body_error(err: reqwest::Error) -> FetchError {
    if err.is_timeout() {
        return FetchError::Timeout;
    }
    // Body errors come from the HTTP parser or the socket (e.g. "connection
    // closed before message completed"); include the chain for diagnosis.
    let err = err.without_url();
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        msg.push_str(": ");
        msg.push_str(&e.to_string());
        source = e.source();
    }
    FetchError::Body(msg)
}

#[derive(Debug)]
enum BodyState {
    Reading,
    Done,
    Failed(FetchError),
}

/// A 2xx answer whose body is still to be read.
#[derive(Debug)]
pub struct FetchResponse {
    /// URL that answered, after redirects.
    pub final_url: Url,
    /// HTTP status (2xx).
    pub status: u16,
    /// `Content-Type` as sent by the source (untrusted; see
    /// [`super::sniff_content_type`]).
    pub content_type: Option<String>,
    /// `Content-Length` as sent by the source (untrusted; the body is counted).
    pub declared_length: Option<u64>,
    /// Redirects followed to get here.
    pub redirects: u8,
    inner: reqwest::Response,
    received: u64,
    max_bytes: u64,
    deadline: Instant,
    state: BodyState,
}

impl FetchResponse {
    /// Next body chunk, `Ok(None)` at the end. Fails with
    /// [`FetchError::TooLarge`] as soon as the counted bytes would pass the
    /// cap and with [`FetchError::Timeout`] once the overall deadline passes.
    /// After an error, every later call returns the same error.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        match &self.state {
            BodyState::Reading => {}
            BodyState::Done => return Ok(None),
            BodyState::Failed(e) => return Err(e.clone()),
        }
        let result = match tokio::time::timeout_at(self.deadline, self.inner.chunk()).await {
            Err(_) => Err(FetchError::Timeout),
            Ok(Err(e)) => Err(map_body_error(e)),
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(chunk))) => {
                let total = self.received.saturating_add(chunk.len() as u64);
                if total > self.max_bytes {
                    Err(FetchError::TooLarge)
                } else {
                    self.received = total;
                    Ok(Some(chunk))
                }
            }
        };
        match &result {
            Ok(None) => self.state = BodyState::Done,
            Err(e) => self.state = BodyState::Failed(e.clone()),
            Ok(Some(_)) => {}
        }
        result
    }

    /// Body bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Reads the rest of the body into memory (still capped and timed).
    pub async fn bytes(mut self) -> Result<Bytes, FetchError> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.next_chunk().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}
