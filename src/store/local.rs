//! The embedded store: objects as files under a data directory.
//!
//! Layout under `root`: `objects/<key>` holds the bytes, `meta/<key>.json` the content type,
//! size and ETag, `tmp/` the in-flight uploads, `.gateway/signing.key` the secret that signs
//! this gateway's own upload URLs ([`super::gateway_secret`]), `multipart/` the multipart
//! uploads in progress ([`super::multipart`]). An object and then its metadata appear only
//! by rename.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::multipart::LocalUploads;
use super::spool::{Spool, Spooled, TempPath};

/// What is kept beside each object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: String,
    pub size: u64,
    pub etag: String,
}

#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// Striped per-key locks: a commit's two renames under the write side, a read's look at
    /// metadata and file under the read side (never held while streaming), so a reader
    /// pairs one object's bytes with that object's metadata.
    commit_locks: Vec<tokio::sync::RwLock<()>>,
    /// The multipart uploads in progress under `multipart/`.
    uploads: LocalUploads,
}

const COMMIT_STRIPES: usize = 64;

/// Longest path segment in a key (file systems stop at 255 bytes).
pub const MAX_KEY_SEGMENT_BYTES: usize = 200;

fn stripe(key: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() as usize) % COMMIT_STRIPES
}

/// Checks that a key is a plain relative path we could have minted.
pub fn key_is_safe(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 1024
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg.len() <= MAX_KEY_SEGMENT_BYTES
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

impl LocalStore {
    /// Open (creating) the data directory.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        // `.gateway/` (the URL secret) is made by `gateway_secret` when it writes one.
        for sub in ["objects", "meta", "tmp"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        // Temp files left by a crash are never objects. Only stale ones are cleared: during a
        // graceful upgrade the old process is still writing its in-flight uploads here.
        let stale = std::time::Duration::from_secs(3600);
        if let Ok(rd) = std::fs::read_dir(root.join("tmp")) {
            for e in rd.flatten() {
                let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                if old.is_some_and(|age| age > stale) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            commit_locks: (0..COMMIT_STRIPES).map(|_| tokio::sync::RwLock::new(())).collect(),
            uploads: LocalUploads::open(root)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The multipart uploads in progress.
    pub(crate) fn uploads(&self) -> &LocalUploads {
        &self.uploads
    }

    pub fn object_path(&self, key: &str) -> Option<PathBuf> {
        key_is_safe(key).then(|| self.root.join("objects").join(key))
    }

    fn meta_path(&self, key: &str) -> Option<PathBuf> {
        key_is_safe(key).then(|| self.root.join("meta").join(format!("{key}.json")))
    }

    /// Make a finished spool the object `key`: the data, then its metadata, each by rename.
    pub async fn commit(
        &self,
        spooled: Spooled,
        key: &str,
        content_type: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let (data, meta) = Self::spooled_object(spooled, content_type);
        self.commit_file(data, key, meta).await
    }

    /// [`Self::commit`], unless `key` already exists: then nothing is stored and `None` comes
    /// back (S3's `If-None-Match: *`). Checked under the key's lock, so of two racing
    /// creates exactly one wins.
    pub async fn commit_new(
        &self,
        spooled: Spooled,
        key: &str,
        content_type: &str,
    ) -> Result<Option<ObjectMeta>, StoreError> {
        let (data, meta) = Self::spooled_object(spooled, content_type);
        self.commit_file_if(data, key, meta, true).await
    }

    fn spooled_object(spooled: Spooled, content_type: &str) -> (TempPath, ObjectMeta) {
        // The first 128 bits of the SHA-256 (every spool but a part's has one), else its MD5.
        let digest = match (&spooled.sha256, &spooled.md5) {
            (Some(sha), _) => hex::encode(&sha[..16]),
            (None, Some(md5)) => hex::encode(md5),
            (None, None) => hex::encode(spooled.len.to_be_bytes()),
        };
        let etag = format!("\"{digest}\"");
        let size = spooled.len;
        (spooled.into_temp(), ObjectMeta { content_type: content_type.to_string(), size, etag })
    }

    /// Make a finished temp file the object `key` with `meta` (whose ETag and size the
    /// caller computed, e.g. an assembled multipart upload's), by the same renames as
    /// [`LocalStore::commit`].
    pub(crate) async fn commit_file(
        &self,
        data: TempPath,
        key: &str,
        meta: ObjectMeta,
    ) -> Result<ObjectMeta, StoreError> {
        let committed = self.commit_file_if(data, key, meta, false).await?;
        committed.ok_or_else(|| StoreError::Io(std::io::Error::other("unconditional commit refused")))
    }

    /// [`Self::commit_file`]; with `create_only`, `None` when `key` already exists.
    async fn commit_file_if(
        &self,
        data: TempPath,
        key: &str,
        meta: ObjectMeta,
        create_only: bool,
    ) -> Result<Option<ObjectMeta>, StoreError> {
        let (Some(obj), Some(meta_path)) = (self.object_path(key), self.meta_path(key)) else {
            return Err(StoreError::UnsafeKey);
        };
        let json = serde_json::to_vec(&meta).map_err(std::io::Error::other)?;
        let mut m = Spool::create(&self.tmp_dir(), json.len() as u64).await?;
        m.write(&json).await?;
        let meta_file = m.finish().await?;
        // Both renames under the key's lock, object first: concurrent PUTs of one URL cannot
        // pair one's bytes with the other's ETag, and a failed object rename leaves no metadata.
        let _guard = self.commit_locks[stripe(key)].write().await;
        if create_only && tokio::fs::try_exists(&obj).await? {
            return Ok(None);
        }
        data.rename_to(&obj).await?;
        meta_file.rename_to(&meta_path).await?;
        Ok(Some(meta))
    }

    /// The SHA-256 of a stored object's bytes (streamed, bounded memory), if it exists.
    pub async fn sha256(&self, key: &str) -> std::io::Result<Option<[u8; 32]>> {
        use sha2::{Digest, Sha256};
        use tokio::io::AsyncReadExt;
        let Some(path) = self.object_path(key) else { return Ok(None) };
        let mut file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(Some(hash.finalize().into()));
            }
            hash.update(&buf[..n]);
        }
    }

    /// The metadata of a stored object, if it exists.
    pub async fn meta(&self, key: &str) -> Option<ObjectMeta> {
        let obj = self.object_path(key)?;
        let fs_meta = tokio::fs::metadata(&obj).await.ok()?;
        self.meta_for(key, &fs_meta).await
    }

    /// The object `key` opened for reading, with the metadata of those very bytes: both are
    /// taken under the key's lock, so a concurrent overwrite is wholly before or after,
    /// and the open file keeps its bytes even after a later rename replaces it.
    pub async fn open_object(&self, key: &str) -> Option<(ObjectMeta, tokio::fs::File)> {
        let obj = self.object_path(key)?;
        let _guard = self.commit_locks[stripe(key)].read().await;
        let file = tokio::fs::File::open(&obj).await.ok()?;
        let fs_meta = file.metadata().await.ok()?;
        let meta = self.meta_for(key, &fs_meta).await?;
        Some((meta, file))
    }

    /// The stored metadata of `key` if it describes a file of this size, else what the
    /// file itself says.
    async fn meta_for(&self, key: &str, fs_meta: &std::fs::Metadata) -> Option<ObjectMeta> {
        if !fs_meta.is_file() {
            return None;
        }
        let stored: Option<ObjectMeta> = match self.meta_path(key) {
            Some(p) => tokio::fs::read(p).await.ok().and_then(|b| serde_json::from_slice(&b).ok()),
            None => None,
        };
        match stored {
            Some(m) if m.size == fs_meta.len() => Some(m),
            _ => Some(ObjectMeta {
                content_type: crate::content_type::type_for_key(key).to_string(),
                size: fs_meta.len(),
                etag: format!("\"{:x}\"", fs_meta.len()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_keys_are_refused() {
        for k in ["", "../x", "a/../b", "/abs", "a//b", "a/./b", "a\\b", "a\0b", "a/%2e%2e/b"] {
            assert!(!key_is_safe(k), "{k:?}");
        }
        assert!(key_is_safe("uploads/user/12/2026/01/02/abc-def.png"));
    }

    #[tokio::test]
    async fn commit_then_read_meta() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let mut s = Spool::create(&store.tmp_dir(), 100).await.unwrap();
        s.write(b"png-bytes").await.unwrap();
        let meta = store.commit(s.finish().await.unwrap(), "u/a.png", "image/png").await.unwrap();
        assert_eq!(store.meta("u/a.png").await, Some(meta.clone()));
        assert_eq!(meta.size, 9);
        assert_eq!(std::fs::read(dir.path().join("objects/u/a.png")).unwrap(), b"png-bytes");
        assert!(store.meta("u/missing.png").await.is_none());
        assert!(store.meta("../etc/passwd").await.is_none());
    }
}
