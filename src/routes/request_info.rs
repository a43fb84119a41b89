//! [`RequestInfo`]: what the upload routes learned about a request, for logs and metrics.

use std::sync::Arc;

pub use crate::request_id::RequestId;

/// What the upload routes learned about a request, for the caller's access log and metrics.
#[derive(Debug, Default, Clone)]
pub struct RequestInfo {
    /// `mint`, `from_url`, `object`, `preflight`, or empty for pass-through.
    pub route: &'static str,
    pub dialect: Option<&'static str>,
    /// The API key's configured id (never the key).
    pub key_id: Option<Arc<str>>,
    pub request_id: Option<RequestId>,
}

impl RequestInfo {
    /// A fresh `req_<ULID>` for this request, kept here for the access log and returned.
    pub fn assign_request_id(&mut self) -> RequestId {
        self.assign_request_id_at(crate::clock::now())
    }

    /// [`Self::assign_request_id`] for a clock already read.
    pub fn assign_request_id_at(&mut self, now: time::OffsetDateTime) -> RequestId {
        let ms = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let id = RequestId::new(ms);
        self.request_id = Some(id);
        id
    }
}
