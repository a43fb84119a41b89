//! The parts of a completed local upload copied into one temp file, in bounded memory
//! whatever the size: `std::io::copy` between two `File`s uses `copy_file_range` on Linux,
//! so the bytes move inside the kernel (or are shared, on filesystems with reflinks).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::TempPath;

/// One part to copy: its file, where in it the part starts (0 for a spooled part, its
/// region for one written in place), and the size its metadata recorded.
pub struct PartFile {
    pub path: PathBuf,
    pub offset: u64,
    pub size: u64,
}

/// Copy `parts` in order into a fresh temp file under `tmp_dir` and fsync it. A part whose
/// file is not the size recorded for it fails the whole (the object would not be the one
/// the ETag describes). On any failure, and if the caller stops waiting, the temp file goes.
pub async fn assemble(tmp_dir: &Path, parts: Vec<PartFile>) -> std::io::Result<(TempPath, u64)> {
    let tmp = TempPath::fresh(tmp_dir).await?;
    // The temp file moves into the blocking task: were this future dropped, the copy still
    // ends there and the TempPath's Drop removes the file.
    tokio::task::spawn_blocking(move || {
        let total = copy_parts(tmp.path(), &parts)?;
        Ok((tmp, total))
    })
    .await
    .map_err(|e| std::io::Error::other(format!("assembly task: {e}")))?
}

fn copy_parts(dest: &Path, parts: &[PartFile]) -> std::io::Result<u64> {
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(dest)?;
    let mut total = 0u64;
    for part in parts {
        let mut src = std::fs::File::open(&part.path)?;
        std::io::Seek::seek(&mut src, std::io::SeekFrom::Start(part.offset))?;
        let copied = std::io::copy(&mut std::io::Read::take(src, part.size), &mut out)?;
        if copied != part.size {
            return Err(std::io::Error::other(format!(
                "{}: {copied} bytes where {} were recorded",
                part.path.display(),
                part.size
            )));
        }
        total += copied;
    }
    out.flush()?;
    out.sync_all()?;
    Ok(total)
}
