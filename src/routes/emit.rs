//! The one place a route reports a committed object: [`RouteContext::upload_completed`].
//!
//! Called after the commit and before the answer, so an acknowledged upload always has its
//! event in the outbox. When the outbox cannot take it the route answers 500: the object is
//! stored, the client retries, and the retry records the event (at least once).

use crate::events::{Committed, UploadEvent};

use super::context::RouteContext;

impl RouteContext {
    /// Record `upload.completed` for `c`; `Ok(None)` when events are off. The error is
    /// logged here, with the request id; callers only map it to their 500.
    pub async fn upload_completed(&self, c: Committed<'_>) -> Result<Option<UploadEvent>, String> {
        let Some(events) = &self.events else { return Ok(None) };
        events.record(&c).await.map(Some).map_err(|e| {
            log::error!("{} event for {} not recorded: {e}", c.request_id, c.key);
            e.to_string()
        })
    }
}
