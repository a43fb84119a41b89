//! A temp file that becomes an object only on commit.
//!
//! Uploads, relays and from-url fetches all stream into a [`Spool`] under the data
//! directory's `tmp/`, hashing as they go. If anything fails before commit (bad size,
//! disconnect, full disk, a panic unwinding) the `Drop` removes the temp file, so no
//! half-written object is ever visible and no temp file is left behind.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// A temp file being written.
pub struct Spool {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    len: u64,
    limit: u64,
}

/// Why a spool write failed.
#[derive(Debug)]
pub enum SpoolError {
    /// More bytes than the limit.
    TooLarge,
    Io(std::io::Error),
}

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpoolError::TooLarge => f.write_str("more bytes than the spool's limit"),
            SpoolError::Io(e) => write!(f, "spool: {e}"),
        }
    }
}

impl std::error::Error for SpoolError {}

impl From<std::io::Error> for SpoolError {
    fn from(e: std::io::Error) -> Self {
        SpoolError::Io(e)
    }
}

/// A finished spool: flushed and fsynced, still a temp file until renamed or sent.
pub struct Spooled {
    path: PathBuf,
    pub len: u64,
    pub sha256: [u8; 32],
    kept: bool,
}

impl Spool {
    /// Create a fresh temp file in `tmp_dir` that accepts at most `limit` bytes.
    pub async fn create(tmp_dir: &Path, limit: u64) -> Result<Self, SpoolError> {
        tokio::fs::create_dir_all(tmp_dir).await?;
        let path = tmp_dir.join(format!("{:032x}.part", rand::random::<u128>()));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
        Ok(Self { path, file: Some(file), hasher: Sha256::new(), len: 0, limit })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append a chunk, refusing to grow past the limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        let new_len = self.len + chunk.len() as u64;
        if new_len > self.limit {
            return Err(SpoolError::TooLarge);
        }
        let file = self.file.as_mut().ok_or_else(|| std::io::Error::other("spool closed"))?;
        file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.len = new_len;
        Ok(())
    }

    /// Flush and fsync; the bytes are durable in the temp file.
    pub async fn finish(mut self) -> Result<Spooled, SpoolError> {
        let mut file = self.file.take().ok_or_else(|| std::io::Error::other("spool closed"))?;
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let path = std::mem::take(&mut self.path);
        let sha256 = std::mem::take(&mut self.hasher).finalize().into();
        Ok(Spooled { path, len: self.len, sha256, kept: false })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Spooled {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Atomically move the data to `dest` (same filesystem), creating parent directories.
    pub async fn rename_to(mut self, dest: &Path) -> std::io::Result<()> {
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(&self.path, dest).await?;
        self.kept = true;
        if let Some(parent) = dest.parent() {
            // Make the rename itself durable; failure here is not worth failing the upload.
            if let Ok(dir) = tokio::fs::File::open(parent).await {
                let _ = dir.sync_all().await;
            }
        }
        Ok(())
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropped_spool_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::create(dir.path(), 10).await.unwrap();
        s.write(b"hello").await.unwrap();
        assert!(matches!(s.write(b"world!").await, Err(SpoolError::TooLarge)));
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn committed_spool_moves_and_unsent_spooled_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::create(&dir.path().join("tmp"), 100).await.unwrap();
        s.write(b"abc").await.unwrap();
        let done = s.finish().await.unwrap();
        assert_eq!(done.len, 3);
        assert_eq!(
            hex::encode(done.sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dest = dir.path().join("objects/a/b.bin");
        done.rename_to(&dest).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        let mut s = Spool::create(&dir.path().join("tmp"), 100).await.unwrap();
        s.write(b"x").await.unwrap();
        drop(s.finish().await.unwrap());
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
