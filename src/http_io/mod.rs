//! HTTP plumbing for the answers the gateway writes itself: replies ([`reply`]), request
//! bodies ([`body`]), request headers ([`headers`]) and CORS ([`cors`]).

pub mod body;
pub mod cors;
pub mod headers;
pub mod pace;
pub mod reply;

pub use body::{continue_if_expected, declared_length, finish_unread_body, read_body_capped, BodyError};
pub use cors::Cors;
pub use headers::{header_bytes, request_host};
pub use pace::{PaceError, Pacer};
pub use reply::{response_header, send, Reply};
