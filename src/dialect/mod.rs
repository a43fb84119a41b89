//! The four upload APIs the gateway speaks, each only a parser and a renderer.
//!
//! A dialect turns its JSON body into a [`MintInput`](crate::upload::mint::MintInput) and renders a
//! [`Minted`](crate::upload::mint::Minted) or an [`ApiError`] in its own envelope. Everything else
//! (auth, policy, keys, signing) is shared.

pub mod apimall;
pub mod ctxfy;
pub mod fields;
pub mod json_out;
pub mod memories;
pub mod octopusx;
#[cfg(test)]
mod proptests;

use serde_json::Value;

use crate::upload::auth::{AuthStyle, Caller};
use crate::upload::complete::{CompleteFields, CompleteOutcome};
use crate::upload::error::ApiError;
use crate::upload::mint::{MintInput, Minted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    ApiMall,
    OctopusX,
    Memories,
    Ctxfy,
}

impl Dialect {
    pub const ALL: [Dialect; 4] = [Dialect::ApiMall, Dialect::OctopusX, Dialect::Memories, Dialect::Ctxfy];

    /// The mint route's path.
    pub fn path(self) -> &'static str {
        match self {
            Dialect::ApiMall => "/api/v1/files/upload-url",
            Dialect::OctopusX => "/api/upload/presign",
            Dialect::Memories => "/serve/api/v2/upload/signed-url",
            Dialect::Ctxfy => "/v1/upload/s3",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::ApiMall => "apimall",
            Dialect::OctopusX => "octopusx",
            Dialect::Memories => "memories",
            Dialect::Ctxfy => "ctxfy",
        }
    }

    pub fn auth_style(self) -> AuthStyle {
        match self {
            Dialect::Memories => AuthStyle::Raw,
            _ => AuthStyle::Bearer,
        }
    }

    pub fn parse(self, body: &[u8], caller: &Caller) -> Result<MintInput, ApiError> {
        match self {
            Dialect::ApiMall => apimall::parse(body),
            Dialect::OctopusX => octopusx::parse(body, caller),
            Dialect::Memories => memories::parse(body),
            Dialect::Ctxfy => ctxfy::parse(body),
        }
    }

    /// The success body, written directly (see [`crate::dialect::json_out`]).
    pub fn render_success(self, m: &Minted, request_id: &str) -> String {
        match self {
            Dialect::ApiMall => apimall::render_success(m, request_id),
            Dialect::OctopusX => octopusx::render_success(m),
            Dialect::Memories => memories::render_success(m),
            Dialect::Ctxfy => ctxfy::render_success(m),
        }
    }

    /// The completion route (`POST {path}/complete`), when the dialect has one: memories
    /// has none, since its upload always passes through the gateway, which records the
    /// event at the commit.
    pub fn completion_path(self) -> Option<&'static str> {
        match self {
            Dialect::ApiMall => Some("/api/v1/files/upload-url/complete"),
            Dialect::OctopusX => Some("/api/upload/presign/complete"),
            Dialect::Memories => None,
            Dialect::Ctxfy => Some("/v1/upload/s3/complete"),
        }
    }

    /// The completion's field names.
    pub fn complete_fields(self) -> CompleteFields {
        match self {
            Dialect::ApiMall | Dialect::Memories => apimall::COMPLETE,
            Dialect::OctopusX => octopusx::COMPLETE,
            Dialect::Ctxfy => ctxfy::COMPLETE,
        }
    }

    /// The completion's success body.
    pub fn render_completed(self, o: &CompleteOutcome, request_id: &str) -> Value {
        match self {
            Dialect::ApiMall | Dialect::Memories => apimall::render_completed(o, request_id),
            Dialect::OctopusX => octopusx::render_completed(o),
            Dialect::Ctxfy => ctxfy::render_completed(o),
        }
    }

    /// The one place an [`ApiError`] becomes a wire body: (status, JSON).
    pub fn render_error(self, e: &ApiError, request_id: &str) -> (u16, Value) {
        let body = match self {
            Dialect::ApiMall => apimall::render_error(e, request_id),
            Dialect::OctopusX => octopusx::render_error(e),
            Dialect::Memories => memories::render_error(e),
            Dialect::Ctxfy => ctxfy::render_error(e, request_id),
        };
        (e.status(), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ctxfy_500_carries_request_id() {
        let (s, v) = Dialect::Ctxfy.render_error(&ApiError::Internal("boom".into()), "req_1234567890");
        assert_eq!(s, 500);
        assert_eq!(
            v,
            json!({"error":"Internal Server Error","message":"An unexpected error occurred on the server","code":500,"requestId":"req_1234567890"})
        );
    }

    #[test]
    fn internal_details_never_leak() {
        for d in Dialect::ALL {
            let (s, v) = d.render_error(&ApiError::Internal("secret detail".into()), "req_x");
            assert_eq!(s, 500);
            assert!(!v.to_string().contains("secret detail"), "{d:?}: {v}");
        }
    }
}
