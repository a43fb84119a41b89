//! Parts written where the object will have them: one `data` file per upload, part `n` at
//! `(n - 1) × stride`, so that completing an upload whose parts are all the same size (as
//! Uppy, boto3 and the AWS CLI send them) moves no bytes: the file is cut to its length,
//! fsynced and renamed into place.
//!
//! The stride is part 1's size, fixed by the first part 1 of at least 5 MiB to arrive (its
//! Content-Length, known before its body). A part goes in place only when the stride is
//! known, the part is no larger than it, and no other upload of the same part number is in
//! flight (a `<n>.writing` marker, made with `create_new`); otherwise it is spooled to a file
//! of its own as before. A part's metadata is removed before its region is written and
//! written back only after the region is fsynced, so a region is only ever read under the
//! metadata that describes its bytes. At complete, a layout where every listed in-place part
//! already sits at its final offset is finished in place (spooled parts copied to their
//! offsets); any other falls back to copying every part into a new file.

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::store::{SpoolError, TempPath};

use super::{PartInfo, MIN_PART_SIZE};

/// Bytes gathered before one write to the data file.
const WRITE_BUFFER: usize = 1 << 20;

pub(super) fn data_path(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn stride_path(dir: &Path) -> PathBuf {
    dir.join("stride")
}

fn marker_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n}.writing"))
}

/// The upload's stride, once part 1 fixed it.
pub(super) async fn stride(dir: &Path) -> Option<u64> {
    tokio::fs::read_to_string(stride_path(dir)).await.ok()?.trim().parse().ok()
}

/// Fix the stride to `len` if this is part 1, large enough, and nothing fixed it yet.
/// Returns the stride in force.
pub(super) async fn fix_stride(dir: &Path, n: u32, len: u64) -> Option<u64> {
    if let Some(s) = stride(dir).await {
        return Some(s);
    }
    if n != 1 || len < MIN_PART_SIZE {
        return None;
    }
    // Written whole to a temp name, then linked in without replacing: of two racing part 1s
    // exactly one fixes the stride, and a reader never sees a half-written number.
    let tmp = dir.join(format!(".stride-{:016x}", rand::random::<u64>()));
    if tokio::fs::write(&tmp, len.to_string()).await.is_ok() {
        let _ = tokio::fs::hard_link(&tmp, stride_path(dir)).await;
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    stride(dir).await
}

/// One part being written into the data file.
pub(crate) struct InPlaceWriter {
    /// Buffered so a part's many small body chunks reach the file (each write a trip to
    /// tokio's blocking pool) in few large writes.
    file: tokio::io::BufWriter<tokio::fs::File>,
    md5: Md5,
    len: u64,
    limit: u64,
    /// `<n>.writing`, removed when this writer goes, however it ends.
    marker: TempPath,
}

impl InPlaceWriter {
    /// A writer for part `n` of `len` bytes at `(n - 1) × stride`, or `None` when another
    /// upload of part `n` is in flight (then the caller spools it).
    pub(super) async fn open(dir: &Path, n: u32, len: u64, stride: u64) -> std::io::Result<Option<Self>> {
        let marker = marker_path(dir, n);
        match tokio::fs::OpenOptions::new().write(true).create_new(true).open(&marker).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e),
        }
        let marker = TempPath::adopt(marker);
        let offset = u64::from(n - 1).saturating_mul(stride);
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(data_path(dir))
            .await?;
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        let file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        Ok(Some(Self { file, md5: Md5::new(), len: 0, limit: len, marker }))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        let new_len = self.len + chunk.len() as u64;
        if new_len > self.limit {
            return Err(SpoolError::TooLarge);
        }
        self.file.write_all(chunk).await?;
        self.md5.update(chunk);
        self.len = new_len;
        Ok(())
    }

    /// Flush and fsync the region; its MD5, and the marker for the caller to drop once the
    /// part's metadata is written.
    pub async fn finish(mut self) -> std::io::Result<([u8; 16], TempPath)> {
        self.file.flush().await?;
        self.file.get_mut().sync_data().await?;
        Ok((self.md5.finalize().into(), self.marker))
    }
}

/// Whether the listed parts, laid end to end, put every in-place one exactly where it
/// already is (`in_place[i]` says whether `parts[i]` is in the data file).
pub(super) fn layout_holds(parts: &[PartInfo], in_place: &[bool], stride: u64) -> bool {
    let mut offset = 0u64;
    for (p, &placed) in parts.iter().zip(in_place) {
        if placed && offset != u64::from(p.part_number - 1).saturating_mul(stride) {
            return false;
        }
        offset += p.size;
    }
    true
}

/// Finish an upload in place: copy the spooled parts (`path`, final offset, size) into the
/// data file at their offsets, cut it to `total` and fsync it (blocking I/O, off the
/// runtime). The data file becomes the caller's.
pub(super) async fn finish_in_place(
    dir: &Path,
    spooled: Vec<(PathBuf, u64, u64)>,
    total: u64,
) -> std::io::Result<TempPath> {
    let data = TempPath::adopt(data_path(dir));
    let path = data.path().to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let mut out = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&path)?;
        for (src, offset, size) in spooled {
            out.seek(SeekFrom::Start(offset))?;
            let copied = std::io::copy(&mut std::fs::File::open(&src)?, &mut out)?;
            if copied != size {
                return Err(std::io::Error::other(format!(
                    "{}: {copied} bytes, {size} recorded",
                    src.display()
                )));
            }
        }
        out.set_len(total)?;
        out.sync_all()
    })
    .await
    .map_err(|e| std::io::Error::other(format!("in-place assembly task: {e}")))??;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: u32, size: u64) -> PartInfo {
        PartInfo { part_number: n, etag: String::new(), size }
    }

    #[test]
    fn a_layout_holds_only_where_every_placed_part_is_at_its_final_offset() {
        let s = 10;
        let even = [part(1, 10), part(2, 10), part(3, 4)];
        assert!(layout_holds(&even, &[true, true, true], s));
        // A smaller part in the middle shifts everything after it.
        let uneven = [part(1, 10), part(2, 6), part(3, 10)];
        assert!(!layout_holds(&uneven, &[true, true, true], s));
        assert!(layout_holds(&uneven, &[true, true, false], s), "the shifted part was spooled");
        // A part left out of the list shifts the rest too.
        let gap = [part(1, 10), part(3, 10)];
        assert!(!layout_holds(&gap, &[true, true], s));
        assert!(layout_holds(&gap, &[true, false], s));
    }
}
