//! [`Sessions`]: the session tokens, the caps, and how many files each session started.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::UploadSessionsConfig;
use crate::upload::session_token::{SessionGrant, SessionTokens};

/// Sessions whose file counts are kept before the expired ones are swept.
const SWEEP_AT: usize = 4096;

pub(crate) struct Sessions {
    pub tokens: SessionTokens,
    pub caps: UploadSessionsConfig,
    /// Files started per session id, with the session's expiry. Per process: a fleet of N
    /// gateways lets a session start up to N × `max_files` (see the README).
    started: Mutex<HashMap<String, (u32, i64)>>,
}

impl Sessions {
    pub fn new(tokens: SessionTokens, caps: UploadSessionsConfig) -> Self {
        Self { tokens, caps, started: Mutex::new(HashMap::new()) }
    }

    /// Count one more file for the session; false once it has started `max_files`.
    pub fn start_file(&self, grant: &SessionGrant, now: i64) -> bool {
        let mut started = match self.started.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if started.len() >= SWEEP_AT {
            started.retain(|_, (_, expires)| *expires >= now);
        }
        // Looked up by reference first: only a session's first file allocates its key.
        let entry = match started.get_mut(&grant.session_id) {
            Some(entry) => entry,
            None => started.entry(grant.session_id.clone()).or_insert((0, grant.expires_at)),
        };
        if entry.0 >= grant.max_files {
            return false;
        }
        entry.0 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_starts_at_most_max_files() {
        let s = Sessions::new(SessionTokens::new("x".repeat(32).as_str()), UploadSessionsConfig::default());
        let g = SessionGrant {
            session_id: "a".repeat(24),
            user_id: 1,
            key_id: "k".into(),
            max_file_size: 1,
            allowed_types: vec![],
            max_files: 2,
            expires_at: 100,
        };
        assert!(s.start_file(&g, 0));
        assert!(s.start_file(&g, 0));
        assert!(!s.start_file(&g, 0));
        let other = SessionGrant { session_id: "b".repeat(24), ..g };
        assert!(s.start_file(&other, 0));
    }
}
