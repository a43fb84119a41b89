//! API Mall `POST /api/v1/files/from-url`: fetch a public URL and store it.
//!
//! The fetch goes through [`crate::ssrf::Fetcher`], which refuses every non-public
//! destination before connecting and pins the checked address. The body is spooled while
//! counted against the cap, its type decided (override, else response header, else magic
//! bytes), and only then committed, so a failed or cut-off fetch leaves no object.

use std::time::Duration;

use pingora::proxy::Session;

use crate::config::{ConfigError, RoutesConfig};
use crate::content_type::is_media_type;
use crate::dialect::fields::{invalid, Fields};
use crate::dialect::{apimall, Dialect};
use crate::events::{Committed, Source};
use crate::http_io::reply::X_REQUEST_ID;
use crate::http_io::{send, Reply};
use crate::ssrf::{sniff_content_type, FetchError, FetchPolicy, FetchResponse, Fetcher};
use crate::store::{Spool, SpoolError, Storage};
use crate::upload::error::ApiError;
use crate::upload::mint::{build_key, size_cap, KeyStyle, MintInput, UploadMethod};
use crate::upload::object_key::check_filename;

use super::context::{dialect_error, RouteContext};
use super::job_slots::JobSlots;
use super::request_info::RequestInfo;

/// Redirects followed before a fetch gives up.
const MAX_REDIRECTS: u8 = 5;
/// Bytes of the body kept for magic-byte sniffing.
const SNIFF_BYTES: usize = 64;

/// The fetcher plus the per-key concurrency cap.
pub(crate) struct FromUrlService {
    fetcher: Option<Fetcher>,
    slots: JobSlots,
}

impl FromUrlService {
    pub fn from_config(cfg: &RoutesConfig, storage: &Storage) -> Result<Self, ConfigError> {
        let fetcher = if cfg.dialects.apimall {
            let policy = FetchPolicy {
                allow_networks: cfg.from_url.networks()?,
                connect_timeout: Duration::from_secs(cfg.from_url.connect_timeout_secs),
                total_timeout: Duration::from_secs(cfg.from_url.timeout_secs),
                max_bytes: size_cap(storage),
                max_redirects: MAX_REDIRECTS,
            };
            Some(Fetcher::new(policy).map_err(|e| ConfigError::new("from_url", e.to_string()))?)
        } else {
            None
        };
        Ok(Self { fetcher, slots: JobSlots::new(cfg.from_url.max_concurrent_per_key) })
    }
}

pub(crate) async fn handle(
    ctx: &RouteContext,
    svc: &FromUrlService,
    session: &mut Session,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    let request_id = info.assign_request_id();
    let result = run(ctx, svc, session, info, request_id).await;
    ctx.metrics.from_url.with_label_values(&[outcome_label(&result)]).inc();
    let reply = match result {
        Ok(s) => {
            ctx.metrics.stored_bytes.with_label_values(&["from_url"]).inc_by(s.size);
            Reply::json(
                200,
                &apimall::render_stored(&s.url, &s.key, &s.content_type, s.size, request_id.as_str()),
            )
        }
        Err(e) => dialect_error(Dialect::ApiMall, &e, request_id),
    };
    send(session, reply.request_id(X_REQUEST_ID, request_id), &ctx.cors, origin).await
}

/// The `presign_from_url_total` label: `ok` or the refusal reason.
fn outcome_label(result: &Result<Stored, ApiError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ApiError::DestinationBlocked) => "blocked",
        Err(ApiError::FetchFailed { .. }) => "fetch_failed",
        Err(ApiError::InvalidFileSize { .. }) => "too_large",
        Err(ApiError::UnsupportedContentType) => "unsupported_type",
        Err(ApiError::RateLimited { .. }) => "rate_limited",
        Err(_) => "rejected",
    }
}

/// What the caller asked for.
struct FromUrlRequest {
    url: String,
    /// The cleaned stem and extension of `filename`, when given.
    name: Option<(String, Option<String>)>,
    /// `content_type`, when given: wins over what the source says.
    content_type: Option<String>,
}

fn parse_request(body: &[u8]) -> Result<FromUrlRequest, ApiError> {
    let f = Fields::parse(body)?;
    let url = f.req_str("url")?.to_string();
    let name = f.opt_str("filename")?.map(|n| check_filename("filename", n)).transpose()?;
    let content_type = f.opt_str("content_type")?.map(str::to_string);
    if content_type.as_deref().is_some_and(|ct| !is_media_type(ct)) {
        return Err(ApiError::UnsupportedContentType);
    }
    Ok(FromUrlRequest { url, name, content_type })
}

/// What was stored.
struct Stored {
    url: String,
    key: String,
    content_type: String,
    size: u64,
}

async fn run(
    ctx: &RouteContext,
    svc: &FromUrlService,
    session: &mut Session,
    info: &mut RequestInfo,
    request_id: crate::request_id::RequestId,
) -> Result<Stored, ApiError> {
    let caller = ctx.admit(session, Dialect::ApiMall, info).await?;
    let req = parse_request(&ctx.read_json(session).await?)?;
    let base = ctx.base_url(session)?;
    let fetcher = svc.fetcher.as_ref().ok_or_else(|| ApiError::Internal("from-url disabled".into()))?;
    let _slot = svc.slots.acquire(&caller.key_id).ok_or(ApiError::RateLimited { retry_after_secs: 1 })?;

    let cap = caller.max_file_size.map_or(fetcher.policy().max_bytes, |m| m.min(fetcher.policy().max_bytes));
    let mut resp = fetcher.fetch(&req.url).await.map_err(|e| fetch_error(e, cap))?;
    let (spool, head) = spool_body(&ctx.storage, &mut resp, cap).await?;
    // The type is decided before the fsync: a refused source costs no flush to disk.
    let content_type = decide_type(req.content_type, resp.content_type.as_deref(), &head)?;
    let spooled = spool.finish().await.map_err(|e| ApiError::Internal(format!("fsync: {e}")))?;
    let (stem, ext) = req.name.unwrap_or_else(|| name_from_url(&resp.final_url));
    let input = MintInput {
        stem,
        ext,
        content_type: content_type.clone(),
        size: None,
        expires_in: 0,
        prefix: None,
        key_style: KeyStyle::Dated,
        method: UploadMethod::Put,
        checksum_sha256: None,
        create_only: false,
        dialect: None,
    };
    let key = build_key(&input, &caller, crate::clock::now(), None);
    let meta = ctx
        .storage
        .commit(spooled, &key, &content_type)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let committed = Committed {
        key: &key,
        size: meta.size,
        content_type: &content_type,
        etag: &meta.etag,
        checksum_sha256: None,
        dialect: Some(Dialect::ApiMall.name()),
        source: Source::FromUrl,
        request_id: request_id.as_str(),
    };
    ctx.upload_completed(committed).await.map_err(ApiError::Internal)?;
    Ok(Stored { url: ctx.storage.public_url(&base, &key), key, content_type, size: meta.size })
}

/// Stream the source's body into a spool, counted against `cap`; also returns its first
/// bytes for sniffing. The spool is not yet flushed.
async fn spool_body(
    storage: &Storage,
    resp: &mut FetchResponse,
    cap: u64,
) -> Result<(Spool, Vec<u8>), ApiError> {
    let mut spool = storage.spool(cap).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    while let Some(chunk) = resp.next_chunk().await.map_err(|e| fetch_error(e, cap))? {
        if head.len() < SNIFF_BYTES {
            head.extend_from_slice(&chunk[..chunk.len().min(SNIFF_BYTES - head.len())]);
        }
        spool.write(&chunk).await.map_err(|e| match e {
            SpoolError::TooLarge => ApiError::InvalidFileSize { max: cap },
            SpoolError::Io(e) => ApiError::Internal(format!("spool write: {e}")),
        })?;
    }
    if spool.is_empty() {
        return Err(invalid("url", "source returned an empty body"));
    }
    Ok((spool, head))
}

/// The caller's override, else the source's header (unless generic), else magic bytes; it
/// must be a media type.
fn decide_type(over: Option<String>, header: Option<&str>, head: &[u8]) -> Result<String, ApiError> {
    // Only the source's essence is kept (its parameters are the source's business); the
    // caller's override is kept whole, so it passes the grammar whole.
    let header = header
        .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "application/octet-stream" && c != "binary/octet-stream");
    let ct = match (over, header) {
        (Some(o), _) => o,
        (None, Some(h)) => h,
        (None, None) => sniff_content_type(head).ok_or(ApiError::UnsupportedContentType)?.to_string(),
    };
    if !is_media_type(&ct) {
        return Err(ApiError::UnsupportedContentType);
    }
    Ok(ct)
}

/// The last path segment of the source, cleaned; falls back to no stem.
fn name_from_url(u: &url::Url) -> (String, Option<String>) {
    u.path_segments()
        .and_then(|mut s| s.next_back())
        .and_then(crate::sigv4::percent_decode_str)
        .and_then(|seg| check_filename("filename", &seg).ok())
        .unwrap_or_default()
}

/// A fetch failure in API Mall's terms; `cap` is the size limit the fetch enforced.
fn fetch_error(e: FetchError, cap: u64) -> ApiError {
    match e {
        FetchError::Blocked(_) => ApiError::DestinationBlocked,
        FetchError::InvalidUrl => invalid("url", "must be a valid absolute URL"),
        FetchError::SchemeNotAllowed => invalid("url", "must use http or https"),
        FetchError::UserInfoNotAllowed => invalid("url", "must not contain credentials"),
        FetchError::TooLarge => ApiError::InvalidFileSize { max: cap },
        FetchError::Status(s) => ApiError::FetchFailed { status: Some(s) },
        other => {
            log::debug!("from-url fetch failed: {} ({other})", other.reason());
            ApiError::FetchFailed { status: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_comes_from_override_then_header_then_magic() {
        let png = b"\x89PNG\r\n\x1a\n0000";
        assert_eq!(decide_type(Some("image/webp".into()), Some("image/png"), png).unwrap(), "image/webp");
        assert_eq!(decide_type(None, Some("Image/PNG; x=1"), b"").unwrap(), "image/png");
        assert_eq!(decide_type(None, Some("application/octet-stream"), png).unwrap(), "image/png");
        assert_eq!(decide_type(None, Some("text/html"), png), Err(ApiError::UnsupportedContentType));
        assert_eq!(decide_type(None, None, b"plain"), Err(ApiError::UnsupportedContentType));
    }

    #[test]
    fn too_large_reports_the_enforced_cap() {
        assert_eq!(fetch_error(FetchError::TooLarge, 1234), ApiError::InvalidFileSize { max: 1234 });
    }
}
