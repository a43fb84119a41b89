//! `auth:` and `api_keys_file:`: how the upload routes know their callers.
//!
//! By default they look keys up in `api_keys:` (and `api_keys_file:`, reloaded on SIGHUP).
//! With `auth.delegated` they ask the application behind the gateway instead.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::routes::ApiKeyConfig;
use super::ConfigError;

/// `auth:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Ask the application who a credential belongs to. Off: the YAML keys decide.
    #[serde(default)]
    pub delegated: Option<DelegatedAuthConfig>,
}

/// `auth.delegated:`: the application's auth endpoint and how its answers are cached.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegatedAuthConfig {
    /// The endpoint, e.g. `http://127.0.0.1:3000/internal/presign-auth`. It gets a GET with
    /// the credential in `X-Presign-Api-Key` and the dialect in `X-Presign-Dialect`.
    pub url: String,
    /// Deadline for one call, connect included; past it the request gets 503.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long a 200 answer is trusted, in seconds: a revoked key keeps working this long.
    #[serde(default = "default_ttl")]
    pub cache_ttl_secs: u64,
    /// How long a 401/403 answer is trusted, in seconds.
    #[serde(default = "default_negative_ttl")]
    pub negative_cache_ttl_secs: u64,
    /// Most credentials cached at once.
    #[serde(default = "default_capacity")]
    pub cache_capacity: u64,
    /// An environment variable holding a token the gateway sends as
    /// `X-Presign-Gateway-Token`, so the endpoint can tell the gateway from a client that
    /// reached it through pass-through.
    #[serde(default)]
    pub token_env: Option<String>,
}

fn default_timeout_ms() -> u64 {
    1000
}
fn default_ttl() -> u64 {
    60
}
fn default_negative_ttl() -> u64 {
    5
}
fn default_capacity() -> u64 {
    100_000
}

/// The contents of an `api_keys_file`: the same `api_keys:` list as the main file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub api_keys: Vec<ApiKeyConfig>,
}

impl KeyFile {
    /// Read and parse a key file; the error names the file and the field.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let field = |f: &str| format!("api_keys_file {}: {f}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(field(""), e.to_string()))?;
        serde_yaml::from_str(&text).map_err(|e| {
            let at = e.location().map(|l| format!("line {} column {}", l.line(), l.column()));
            ConfigError::new(field(&at.unwrap_or_default()), e.to_string())
        })
    }
}

/// The keys in force: the main file's, then the key file's, checked as one list so that a
/// duplicate across the two is refused too.
pub fn all_keys(inline: &[ApiKeyConfig], file: Option<&PathBuf>) -> Result<Vec<ApiKeyConfig>, ConfigError> {
    let mut keys = inline.to_vec();
    if let Some(path) = file {
        let from_file = KeyFile::read(path)?.api_keys;
        let offset = keys.len();
        keys.extend(from_file);
        super::validate::check_api_keys(&keys).map_err(|e| {
            ConfigError::new(
                format!("api_keys_file {}: {}", path.display(), renumber(&e.field, offset)),
                e.message,
            )
        })?;
    }
    Ok(keys)
}

/// `api_keys[7].sha256` in the merged list is `api_keys[7 - offset].sha256` of the file.
fn renumber(field: &str, offset: usize) -> String {
    let index = field.strip_prefix("api_keys[").and_then(|r| r.split_once(']'));
    match index.and_then(|(n, rest)| Some((n.parse::<usize>().ok()?.checked_sub(offset)?, rest))) {
        Some((n, rest)) => format!("api_keys[{n}]{rest}"),
        None => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_error_names_the_files_own_index() {
        assert_eq!(renumber("api_keys[3].sha256", 2), "api_keys[1].sha256");
        assert_eq!(renumber("api_keys[1].id", 2), "api_keys[1].id", "an inline key's field is kept");
    }
}
