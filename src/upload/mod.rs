//! What an upload request decides, whatever dialect it came in: who the caller is
//! ([`auth`]), whether they may ([`rate_limit`]), what went wrong ([`error`]), and the key
//! and signed URLs they get ([`mint`], [`object_key`]).

pub mod auth;
pub mod complete;
pub mod error;
pub mod mint;
pub mod object_key;
pub mod rate_limit;
pub mod session_token;
