//! API keys: looked up by their SHA-256, never stored or logged in plain text.
//!
//! [`KeyStore`] holds the keys in force behind an [`ArcSwap`], so a reload swaps the whole
//! table at once: a request sees the old keys or the new ones, never a mix, and no request
//! waits on a lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

use super::Caller;
use crate::config::{all_keys, ApiKeyConfig, ConfigError};
use crate::upload::error::ApiError;

/// One table of keys, by hash.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], Caller>,
}

/// The hex SHA-256 of a key, as written in the config.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    pub fn from_config(keys: &[ApiKeyConfig]) -> Self {
        let mut by_hash = HashMap::with_capacity(keys.len());
        for k in keys {
            let mut h = [0u8; 32];
            // Validated at load; a bad entry simply never matches.
            if hex::decode_to_slice(k.sha256.to_ascii_lowercase(), &mut h).is_ok() {
                let caller = Caller {
                    rate_limit_per_sec: k.rate_limit_per_sec,
                    ..Caller::new(k.id.as_str(), k.user_id)
                };
                by_hash.insert(h, caller);
            }
        }
        Self { by_hash }
    }

    /// The caller a key (already out of its header) belongs to.
    pub fn lookup(&self, key: &str) -> Result<&Caller, ApiError> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.by_hash.get(&digest).ok_or(ApiError::InvalidApiKey)
    }

    /// Authenticate an `Authorization` header value in the given style.
    pub fn authenticate(&self, header: Option<&[u8]>, style: super::AuthStyle) -> Result<&Caller, ApiError> {
        self.lookup(super::credential(header, style)?)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// The keys in force, and where to read them again.
pub struct KeyStore {
    current: ArcSwap<ApiKeys>,
    inline: Vec<ApiKeyConfig>,
    file: Option<PathBuf>,
}

impl KeyStore {
    /// The config's keys and its key file's. Fails naming the field when the file is bad.
    pub fn load(inline: &[ApiKeyConfig], file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let keys = all_keys(inline, file.as_ref())?;
        Ok(Self {
            current: ArcSwap::from_pointee(ApiKeys::from_config(&keys)),
            inline: inline.to_vec(),
            file,
        })
    }

    /// The caller behind a key, cloned out of the table in force.
    pub fn authenticate(&self, key: &str) -> Result<Caller, ApiError> {
        self.current.load().lookup(key).cloned()
    }

    /// Read the key file again and swap the new table in whole. A file that fails
    /// validation changes nothing: the error names the field, the old keys stay in force.
    /// Returns how many keys are now in force.
    pub fn reload(&self) -> Result<usize, ConfigError> {
        let keys = all_keys(&self.inline, self.file.as_ref())?;
        let table = ApiKeys::from_config(&keys);
        let n = table.len();
        self.current.store(Arc::new(table));
        Ok(n)
    }

    /// The key file, when there is one (nothing to reload otherwise).
    pub fn file(&self) -> Option<&PathBuf> {
        self.file.as_ref()
    }
}

/// A handle that re-reads the key file, for whatever triggers it (SIGHUP in the binary, an
/// embedder's own signal or admin call). It logs and counts every outcome.
#[derive(Clone)]
pub struct KeyReloader {
    store: Arc<KeyStore>,
    ok: prometheus::IntCounter,
    refused: prometheus::IntCounter,
}

impl KeyReloader {
    pub fn new(store: Arc<KeyStore>, metrics: &crate::metrics::Metrics) -> Self {
        let counter = |r: &str| metrics.key_reloads.with_label_values(&[r]);
        Self { store, ok: counter("ok"), refused: counter("refused") }
    }

    /// Reload now; false when the file was refused (the old keys stay in force).
    pub fn reload(&self) -> bool {
        let Some(path) = self.store.file() else {
            log::info!("key reload: no api_keys_file configured; the keys are the config's");
            return true;
        };
        match self.store.reload() {
            Ok(n) => {
                self.ok.inc();
                log::info!("key reload: {n} keys in force from the config and {}", path.display());
                true
            }
            Err(e) => {
                self.refused.inc();
                log::error!("key reload refused, the old keys stay in force: {e}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::auth::AuthStyle;

    fn key(id: &str, key: &str, user_id: u64) -> ApiKeyConfig {
        ApiKeyConfig { id: id.into(), sha256: hash_key(key), user_id, rate_limit_per_sec: None }
    }

    #[test]
    fn lookup_by_hash() {
        let k = ApiKeys::from_config(&[key("demo", "demo-key", 12)]);
        assert_eq!(k.authenticate(Some(b"Bearer demo-key"), AuthStyle::Bearer).unwrap().user_id, 12);
        assert_eq!(
            k.authenticate(Some(b"bearer demo-key"), AuthStyle::Bearer).unwrap().key_id.as_ref(),
            "demo"
        );
        assert_eq!(k.authenticate(Some(b"Bearer nope"), AuthStyle::Bearer), Err(ApiError::InvalidApiKey));
        assert!(k.authenticate(Some(b"demo-key"), AuthStyle::Raw).is_ok());
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash_key(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    fn write_keys(path: &std::path::Path, keys: &[ApiKeyConfig]) {
        let list: Vec<String> = keys
            .iter()
            .map(|k| format!("  - {{id: {}, sha256: {}, user_id: {}}}\n", k.id, k.sha256, k.user_id))
            .collect();
        std::fs::write(path, format!("api_keys:\n{}", list.concat())).unwrap();
    }

    #[test]
    fn reload_swaps_the_file_keys_and_a_bad_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.yaml");
        write_keys(&path, &[key("a", "key-a", 1)]);
        let store = KeyStore::load(&[key("inline", "key-i", 9)], Some(path.clone())).unwrap();
        assert_eq!(store.authenticate("key-a").unwrap().user_id, 1);
        assert_eq!(store.authenticate("key-b"), Err(ApiError::InvalidApiKey));

        write_keys(&path, &[key("b", "key-b", 2)]);
        assert_eq!(store.reload().unwrap(), 2);
        assert_eq!(store.authenticate("key-b").unwrap().user_id, 2);
        assert_eq!(store.authenticate("key-a"), Err(ApiError::InvalidApiKey), "a key left the file");
        assert_eq!(store.authenticate("key-i").unwrap().user_id, 9, "inline keys stay");

        std::fs::write(&path, "api_keys:\n  - {id: c, sha256: nothex, user_id: 3}\n").unwrap();
        let e = store.reload().unwrap_err();
        assert!(e.field.ends_with("api_keys[0].sha256"), "{e}");
        assert!(e.field.contains("keys.yaml"), "the file is named: {e}");
        assert_eq!(store.authenticate("key-b").unwrap().user_id, 2, "the old keys stay in force");

        write_keys(&path, &[key("dup", "key-i", 4)]);
        assert!(store.reload().unwrap_err().message.contains("duplicate"));
        std::fs::write(&path, "api_keys: [\n").unwrap();
        assert!(store.reload().unwrap_err().field.contains("line"), "a YAML error has its line");
        std::fs::remove_file(&path).unwrap();
        assert!(store.reload().is_err(), "a vanished file is refused too");
        assert_eq!(store.authenticate("key-b").unwrap().user_id, 2);
    }
}
