//! API Mall `POST /api/v1/files/from-url`: fetch a public URL and store it.
//!
//! The fetch goes through [`crate::ssrf::Fetcher`], which refuses every non-public
//! destination before connecting and pins the checked address. The body is spooled while
//! counted against the cap, its type decided (override, else response header, else magic
//! bytes), and only then committed, so a failed or cut-off fetch leaves no object.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingora::proxy::Session;
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::config::{Config, ConfigError};
use crate::dialect::{apimall, Dialect};
use crate::error::ApiError;
use crate::http_io::{send, Reply};
use crate::json_fields::{invalid, Fields};
use crate::mint::{build_key, is_media_type, KeyStyle, MintInput, UploadMethod, MAX_FILE_SIZE};
use crate::object_key::check_filename;
use crate::ssrf::{sniff_content_type, FetchError, FetchPolicy, Fetcher};
use crate::store::Storage;
use crate::upload_routes::{RequestInfo, UploadRoutes};

/// The fetcher plus the per-key concurrency cap.
pub struct FromUrlService {
    fetcher: Option<Fetcher>,
    storage: Arc<Storage>,
    max_concurrent_per_key: usize,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

/// Holds one concurrency slot for a key until dropped.
struct Slot {
    key_id: String,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.in_flight.lock() {
            if let Some(n) = m.get_mut(&self.key_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.key_id);
                }
            }
        }
    }
}

impl FromUrlService {
    pub fn from_config(cfg: &Config, storage: Arc<Storage>) -> Result<Self, ConfigError> {
        let fetcher = if cfg.dialects.apimall {
            let policy = FetchPolicy {
                allow_networks: cfg.allow_networks(),
                connect_timeout: Duration::from_secs(cfg.from_url.connect_timeout_secs),
                total_timeout: Duration::from_secs(cfg.from_url.timeout_secs),
                max_bytes: cap(storage.max_upload_bytes),
                max_redirects: 5,
            };
            Some(Fetcher::new(policy).map_err(|e| ConfigError::new("from_url", e.to_string()))?)
        } else {
            None
        };
        Ok(Self {
            fetcher,
            storage,
            max_concurrent_per_key: cfg.from_url.max_concurrent_per_key,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn acquire(&self, key_id: &str) -> Option<Slot> {
        let mut m = self.in_flight.lock().ok()?;
        let n = m.entry(key_id.to_string()).or_insert(0);
        if *n >= self.max_concurrent_per_key {
            return None;
        }
        *n += 1;
        Some(Slot { key_id: key_id.to_string(), in_flight: self.in_flight.clone() })
    }
}

pub async fn handle(
    routes: &UploadRoutes,
    session: &mut Session,
    origin: Option<&str>,
    info: &mut RequestInfo,
) -> pingora::Result<()> {
    let request_id = info.assign_request_id();
    let result = run(routes, session, info).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(ApiError::DestinationBlocked) => "blocked",
        Err(ApiError::FetchFailed { .. }) => "fetch_failed",
        Err(ApiError::InvalidFileSize { .. }) => "too_large",
        Err(ApiError::UnsupportedContentType) => "unsupported_type",
        Err(ApiError::RateLimited { .. }) => "rate_limited",
        Err(_) => "rejected",
    };
    routes.metrics.from_url.with_label_values(&[label]).inc();
    if let Ok(s) = &result {
        routes.metrics.stored_bytes.with_label_values(&["from_url"]).inc_by(s.size);
    }
    let reply = match result {
        Ok(stored) => Reply::json(
            200,
            &apimall::render_stored(&stored.url, &stored.key, &stored.content_type, stored.size, &request_id),
        ),
        Err(e) => routes.error_reply(Dialect::ApiMall, &e, &request_id),
    };
    send(session, reply.header("x-request-id", request_id), &routes.cors, origin).await
}

struct Stored {
    url: String,
    key: String,
    content_type: String,
    size: u64,
}

async fn run(
    routes: &UploadRoutes,
    session: &mut Session,
    info: &mut RequestInfo,
) -> Result<Stored, ApiError> {
    let caller: Caller = routes.admit(session, Dialect::ApiMall, info)?.clone();
    let body = routes.read_json(session).await?;
    let f = Fields::parse(&body)?;
    let url = f.req_str("url")?.to_string();
    let filename = f.opt_str("filename")?.map(|n| check_filename("filename", n)).transpose()?;
    let override_type = f.opt_str("content_type")?.map(str::to_string);
    if let Some(ct) = &override_type {
        if !is_media_type(ct) {
            return Err(ApiError::UnsupportedContentType);
        }
    }
    let base = routes.base_url(session)?;
    let svc = &routes.from_url;
    let fetcher = svc.fetcher.as_ref().ok_or_else(|| ApiError::Internal("from-url disabled".into()))?;
    let _slot = svc.acquire(&caller.key_id).ok_or(ApiError::RateLimited { retry_after_secs: 1 })?;

    let mut resp = fetcher.fetch(&url).await.map_err(fetch_error)?;
    let mut spool = svc
        .storage
        .spool(cap(svc.storage.max_upload_bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("spool: {e:?}")))?;
    let mut head: Vec<u8> = Vec::with_capacity(64);
    while let Some(chunk) = resp.next_chunk().await.map_err(fetch_error)? {
        if head.len() < 64 {
            head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
        }
        spool.write(&chunk).await.map_err(|e| match e {
            crate::store::SpoolError::TooLarge => {
                ApiError::InvalidFileSize { max: cap(svc.storage.max_upload_bytes) }
            }
            crate::store::SpoolError::Io(e) => ApiError::Internal(format!("spool write: {e}")),
        })?;
    }
    if spool.is_empty() {
        return Err(invalid("url", "source returned an empty body"));
    }
    let header_type = resp
        .content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "application/octet-stream" && c != "binary/octet-stream");
    let content_type = match (override_type, header_type) {
        (Some(o), _) => o,
        (None, Some(h)) => h,
        (None, None) => sniff_content_type(&head).ok_or(ApiError::UnsupportedContentType)?.to_string(),
    };
    if !is_media_type(&content_type) {
        return Err(ApiError::UnsupportedContentType);
    }
    let (stem, ext) = match filename {
        Some(n) => n,
        None => name_from_url(&resp.final_url),
    };
    let input = MintInput {
        stem,
        ext,
        content_type: content_type.clone(),
        size: None,
        expires_in: 0,
        prefix: None,
        key_style: KeyStyle::Dated,
        method: UploadMethod::Put,
    };
    let key = build_key(&input, &caller, OffsetDateTime::now_utc(), None);
    let done = spool.finish().await.map_err(|e| ApiError::Internal(format!("fsync: {e:?}")))?;
    let size = done.len;
    svc.storage.commit(done, &key, &content_type).await.map_err(ApiError::Internal)?;
    Ok(Stored { url: svc.storage.public_url(&base, &key), key, content_type, size })
}

/// The last path segment of the source, cleaned; falls back to no stem.
fn name_from_url(u: &url::Url) -> (String, Option<String>) {
    u.path_segments()
        .and_then(|mut s| s.next_back())
        .and_then(crate::url_path::decode_path)
        .and_then(|seg| check_filename("filename", &seg).ok())
        .unwrap_or_default()
}

/// The fetch cap: the page's 100 MB, or the store's own limit when lower.
fn cap(store_limit: u64) -> u64 {
    store_limit.min(MAX_FILE_SIZE)
}

fn fetch_error(e: FetchError) -> ApiError {
    match e {
        FetchError::Blocked(_) => ApiError::DestinationBlocked,
        FetchError::InvalidUrl => invalid("url", "must be a valid absolute URL"),
        FetchError::SchemeNotAllowed => invalid("url", "must use http or https"),
        FetchError::UserInfoNotAllowed => invalid("url", "must not contain credentials"),
        FetchError::TooLarge => ApiError::InvalidFileSize { max: MAX_FILE_SIZE },
        FetchError::Status(s) => ApiError::FetchFailed { status: Some(s) },
        other => {
            log::debug!("from-url fetch failed: {} ({other})", other.reason());
            ApiError::FetchFailed { status: None }
        }
    }
}
