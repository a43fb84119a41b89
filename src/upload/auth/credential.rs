//! The credential out of `Authorization`, in the style the dialect's page shows.
//!
//! Most dialects use `Authorization: Bearer K`; memories sends the raw key with no scheme. A
//! key in the other style is refused, so a client written for one API does not accidentally
//! work against another's contract.

use crate::upload::error::ApiError;

/// How a dialect expects the key in `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer K`
    Bearer,
    /// `Authorization: K`
    Raw,
}

/// The key an `Authorization` header value carries in the given style.
pub fn credential(header: Option<&[u8]>, style: AuthStyle) -> Result<&str, ApiError> {
    let raw = header.ok_or(ApiError::MissingApiKey)?;
    let raw = std::str::from_utf8(raw).map_err(|_| ApiError::InvalidApiKey)?.trim();
    if raw.is_empty() {
        return Err(ApiError::MissingApiKey);
    }
    let key = match (style, strip_bearer(raw)) {
        (AuthStyle::Bearer, Some(k)) => k,
        // A raw key sent to a Bearer API: the credential is missing in that API's terms.
        (AuthStyle::Bearer, None) => return Err(ApiError::MissingApiKey),
        (AuthStyle::Raw, None) => raw,
        // Bearer sent to memories: its contract is the raw key.
        (AuthStyle::Raw, Some(_)) => return Err(ApiError::InvalidApiKey),
    };
    if key.is_empty() {
        return Err(ApiError::MissingApiKey);
    }
    Ok(key)
}

fn strip_bearer(v: &str) -> Option<&str> {
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_style() {
        assert_eq!(credential(Some(b"Bearer demo-key"), AuthStyle::Bearer), Ok("demo-key"));
        assert_eq!(credential(Some(b"bearer  demo-key "), AuthStyle::Bearer), Ok("demo-key"));
        assert_eq!(credential(None, AuthStyle::Bearer), Err(ApiError::MissingApiKey));
        assert_eq!(credential(Some(b"demo-key"), AuthStyle::Bearer), Err(ApiError::MissingApiKey));
        assert_eq!(credential(Some(b"Bearer "), AuthStyle::Bearer), Err(ApiError::MissingApiKey));
        assert_eq!(credential(Some(b"Bearer \xff"), AuthStyle::Bearer), Err(ApiError::InvalidApiKey));
    }

    #[test]
    fn raw_style() {
        assert_eq!(credential(Some(b"demo-key"), AuthStyle::Raw), Ok("demo-key"));
        assert_eq!(credential(Some(b"Bearer demo-key"), AuthStyle::Raw), Err(ApiError::InvalidApiKey));
    }
}
