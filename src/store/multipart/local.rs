//! Multipart uploads in the local store.
//!
//! Layout under `root/multipart/`:
//!
//! ```text
//! <uploadId>/upload.json     {key, content_type, expires_at (unix seconds)}
//! <uploadId>/<n>.part        the bytes of part n
//! <uploadId>/<n>.json        {etag, size, in_place} of part n
//! <uploadId>/data, stride    parts written in place (see `in_place`), `<n>.writing` while one is
//! .<why>-<uploadId>-<rand>/  an upload taken out of service (completing, aborted, expired)
//! ```
//!
//! Every file arrives by rename from a fsynced spool, so nothing half-written is visible.
//! An upload leaves service by one atomic rename of its directory to a private name, the
//! first step of complete, abort and the expiry sweep: of two racing, exactly one renames,
//! and the other finds no upload. The renames that change an upload (a part's two files,
//! taking the directory away) happen under the upload's lock, so a complete validates
//! exactly the parts it then assembles. The locks are per process: two gateway processes
//! sharing a data directory (a graceful upgrade) still get the atomic directory rename.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::assemble::{assemble, PartFile};
use super::in_place::{self, InPlaceWriter};
use super::rules::{multipart_etag, part_number_ok, quoted, select_parts};
use super::{MultipartError, PartInfo};
use crate::store::{key_is_safe, LocalStore, ObjectMeta, Spool, SpoolError, Spooled, StoreError};

#[cfg(test)]
mod tests;

/// The multipart state of one local store: where uploads live, their locks, the sweep clock.
#[derive(Debug)]
pub struct LocalUploads {
    dir: PathBuf,
    locks: Vec<Mutex<()>>,
    /// When the last expiry sweep started (unix seconds).
    last_sweep: AtomicI64,
}

const LOCK_STRIPES: usize = 64;

/// Sweeps on create are at most this often (seconds).
const SWEEP_EVERY: i64 = 60;

/// A private or unfinished directory older than this is a crash's leftover (a live one is
/// being completed or removed right now, which takes far less).
const STALE_SECS: u64 = 3600;

/// What `upload.json` keeps.
#[derive(Debug, Serialize, Deserialize)]
struct UploadRecord {
    key: String,
    content_type: String,
    /// Unix seconds; the upload is gone from then on.
    expires_at: i64,
    /// The most its parts may add up to; a part that would pass it is refused as it
    /// arrives, so an upload never holds more disk than its session allows.
    #[serde(default = "unlimited")]
    max_size: u64,
}

fn unlimited() -> u64 {
    u64::MAX
}

/// What `<n>.json` keeps beside a part.
#[derive(Debug, Serialize, Deserialize)]
struct PartRecord {
    etag: String,
    size: u64,
    /// In the upload's data file at `(n - 1) × stride`, not in `<n>.part`.
    #[serde(default)]
    in_place: bool,
}

/// Where a part's bytes go while they arrive: its own spool, or its region of the data file.
pub(crate) enum PartSink {
    Spool(Spool),
    InPlace(InPlaceWriter),
}

impl PartSink {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        match self {
            PartSink::Spool(s) => s.write(chunk).await,
            PartSink::InPlace(w) => w.write(chunk).await,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            PartSink::Spool(s) => s.len(),
            PartSink::InPlace(w) => w.len(),
        }
    }
}

/// Upload ids are 32 lowercase hex characters; anything else names no upload (and never
/// reaches a path).
fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn part_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n}.part"))
}

fn part_meta_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n}.json"))
}

impl LocalUploads {
    /// Open (creating) `root/multipart/` and drop what expired or a crash left behind.
    pub(crate) fn open(root: &Path) -> std::io::Result<Self> {
        let dir = root.join("multipart");
        std::fs::create_dir_all(&dir)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        for doomed in sweep_candidates(&dir, now) {
            let _ = std::fs::remove_dir_all(doomed);
        }
        Ok(Self {
            dir,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            last_sweep: AtomicI64::new(now),
        })
    }

    fn lock(&self, id: &str) -> &Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        &self.locks[(h.finish() as usize) % LOCK_STRIPES]
    }

    /// The directory of upload `id`; `NoSuchUpload` for an id we could not have made.
    fn upload_dir(&self, id: &str) -> Result<PathBuf, MultipartError> {
        valid_id(id).then(|| self.dir.join(id)).ok_or(MultipartError::NoSuchUpload)
    }

    /// A fresh private name to take upload `id` out of service under.
    fn private_dir(&self, why: &str, id: &str) -> PathBuf {
        self.dir.join(format!(".{why}-{id}-{:016x}", rand::random::<u64>()))
    }

    /// Take upload `id` out of service: its directory renamed to a private name, returned
    /// for the caller to delete once it let go of the lock. Call under the upload's lock.
    async fn take_out(&self, dir: &Path, why: &str, id: &str) -> Result<PathBuf, MultipartError> {
        let private = self.private_dir(why, id);
        tokio::fs::rename(dir, &private).await.map_err(not_found_is_no_upload)?;
        Ok(private)
    }

    /// Remove expired uploads, at most once a [`SWEEP_EVERY`] (the caller need not wait for
    /// a sweep another task is running).
    async fn sweep_if_due(&self, now: i64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY
            || self.last_sweep.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let dir = self.dir.clone();
        let Ok(candidates) = tokio::task::spawn_blocking(move || sweep_candidates(&dir, now)).await else {
            return;
        };
        for path in candidates {
            let id = path.file_name().and_then(|n| n.to_str()).filter(|n| valid_id(n)).map(str::to_owned);
            match id {
                // An upload: taken away under its lock, unless it is live after all (a
                // complete or abort may also have taken it first; then the rename fails). One
                // without a record is a create that crashed (the candidates' check saw it stale).
                Some(id) => {
                    let taken = {
                        let _guard = self.lock(&id).lock().await;
                        let live = matches!(read_record(&path).await, Ok(r) if r.expires_at > now);
                        if live {
                            None
                        } else {
                            self.take_out(&path, "expired", &id).await.ok()
                        }
                    };
                    if let Some(private) = taken {
                        remove_dir_logged(&private).await;
                    }
                }
                None => remove_dir_logged(&path).await,
            }
        }
    }
}

/// What a sweep removes under `dir` (blocking I/O): uploads past their `expires_at`, and
/// private or record-less directories older than [`STALE_SECS`].
fn sweep_candidates(dir: &Path, now: i64) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let stale = |path: &Path| {
        let age = std::fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        age.is_some_and(|a| a.as_secs() > STALE_SECS)
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let record = valid_id(&name.to_string_lossy())
            .then(|| std::fs::read(path.join("upload.json")).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice::<UploadRecord>(&b).ok());
        let doomed = match record {
            Some(r) => r.expires_at <= now,
            None => stale(&path),
        };
        if doomed {
            out.push(path);
        }
    }
    out
}

fn not_found_is_no_upload(e: std::io::Error) -> MultipartError {
    match e.kind() {
        std::io::ErrorKind::NotFound => MultipartError::NoSuchUpload,
        _ => MultipartError::Store(StoreError::Io(e)),
    }
}

async fn remove_dir_logged(path: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(path).await {
        log::warn!("multipart: cannot remove {}: {e}", path.display());
    }
}

async fn read_record(dir: &Path) -> Result<UploadRecord, MultipartError> {
    let bytes = tokio::fs::read(dir.join("upload.json")).await.map_err(not_found_is_no_upload)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        MultipartError::Store(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}/upload.json: {e}", dir.display()),
        )))
    })
}

/// The upload's record, if it is live and for `key`.
async fn live_record(dir: &Path, key: &str) -> Result<UploadRecord, MultipartError> {
    let record = read_record(dir).await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if record.key != key || record.expires_at <= now {
        return Err(MultipartError::NoSuchUpload);
    }
    Ok(record)
}

/// The upload is live and for `key`, and a part `n` of `len` bytes keeps its parts within
/// the upload's size (`EntityTooLarge` otherwise). Call under the upload's lock.
async fn live_record_fitting(dir: &Path, key: &str, n: u32, len: u64) -> Result<(), MultipartError> {
    let record = live_record(dir, key).await?;
    let others: u64 = read_parts(dir).await?.iter().filter(|p| p.part_number != n).map(|p| p.size).sum();
    if others.saturating_add(len) > record.max_size {
        return Err(MultipartError::EntityTooLarge);
    }
    Ok(())
}

/// Part `n`'s metadata removed (absent already is fine).
async fn remove_part_meta(dir: &Path, n: u32) -> Result<(), MultipartError> {
    match tokio::fs::remove_file(part_meta_path(dir, n)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// The parts in `dir` by ascending number: those with both files, whose sizes agree.
async fn read_parts(dir: &Path) -> Result<Vec<PartInfo>, MultipartError> {
    Ok(read_stored(dir).await?.into_iter().map(|(p, _)| p).collect())
}

/// [`read_parts`], each with whether it is in place. A part in place counts only when the
/// data file reaches the end of its region.
async fn read_stored(dir: &Path) -> Result<Vec<(PartInfo, bool)>, MultipartError> {
    let stride = in_place::stride(dir).await;
    let data_len = tokio::fs::metadata(in_place::data_path(dir)).await.map(|m| m.len()).ok();
    let mut parts = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await.map_err(not_found_is_no_upload)?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| part_number_ok(*n))
        else {
            continue;
        };
        let Ok(bytes) = tokio::fs::read(entry.path()).await else { continue };
        let Ok(record) = serde_json::from_slice::<PartRecord>(&bytes) else { continue };
        let present = if record.in_place {
            let end = stride.map(|s| u64::from(n - 1).saturating_mul(s).saturating_add(record.size));
            matches!((end, data_len), (Some(end), Some(len)) if len >= end)
        } else {
            tokio::fs::metadata(part_path(dir, n)).await.map(|m| m.len()).ok() == Some(record.size)
        };
        if present {
            parts.push((PartInfo { part_number: n, etag: record.etag, size: record.size }, record.in_place));
        }
    }
    parts.sort_by_key(|(p, _)| p.part_number);
    Ok(parts)
}

/// Whether a part upload is writing in place right now (or a crash left its marker).
async fn writers_in_flight(dir: &Path) -> std::io::Result<bool> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_name().to_string_lossy().ends_with(".writing") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How a complete builds `selected` (under the upload's lock, so no part upload starts or
/// finishes meanwhile): in place only when no in-place writer is in flight, every part in
/// place is listed (finishing in place then touches no region another part still needs),
/// and each listed one already sits at its final offset.
async fn plan(
    dir: &Path,
    stored: &[(PartInfo, bool)],
    selected: &[(PartInfo, bool)],
) -> Result<Assembly, MultipartError> {
    let stride = in_place::stride(dir).await;
    let Some(s) = stride else { return Ok(Assembly::Copy { stride }) };
    let listed = |n: u32| selected.iter().any(|(p, _)| p.part_number == n);
    let all_placed_listed = stored.iter().filter(|(_, placed)| *placed).all(|(p, _)| listed(p.part_number));
    let parts: Vec<PartInfo> = selected.iter().map(|(p, _)| p.clone()).collect();
    let flags: Vec<bool> = selected.iter().map(|(_, placed)| *placed).collect();
    if all_placed_listed && in_place::layout_holds(&parts, &flags, s) && !writers_in_flight(dir).await? {
        Ok(Assembly::InPlace)
    } else {
        Ok(Assembly::Copy { stride })
    }
}

/// How a complete builds its object.
enum Assembly {
    /// Every listed in-place part is already where the object has it.
    InPlace,
    /// Copy every part, spooled or in place, into a new file.
    Copy { stride: Option<u64> },
}

/// A small JSON value as a finished spool, ready to be renamed into place.
async fn json_spool(tmp_dir: &Path, value: &impl Serialize) -> Result<Spooled, MultipartError> {
    let json = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let mut s = Spool::create(tmp_dir, json.len() as u64).await?;
    s.write(&json).await?;
    Ok(s.finish().await?)
}

impl LocalStore {
    /// Start an upload of `key` whose parts may add up to at most `max_size` bytes (see
    /// [`crate::store::Storage::create_multipart`]).
    pub(crate) async fn create_upload(
        &self,
        key: &str,
        content_type: &str,
        expires_at: OffsetDateTime,
        max_size: u64,
    ) -> Result<String, MultipartError> {
        if !key_is_safe(key) {
            return Err(MultipartError::Store(StoreError::UnsafeKey));
        }
        let uploads = self.uploads();
        uploads.sweep_if_due(OffsetDateTime::now_utc().unix_timestamp()).await;
        let id = new_id();
        let record = UploadRecord {
            key: key.to_string(),
            content_type: content_type.to_string(),
            expires_at: expires_at.unix_timestamp(),
            max_size,
        };
        let spooled = json_spool(&self.tmp_dir(), &record).await?;
        // Creates the directory; until the record lands there, the id names no upload.
        spooled.rename_to(&uploads.dir.join(&id).join("upload.json")).await?;
        Ok(id)
    }

    /// Whether upload `id` is live and for `key` (the part route asks before reading a
    /// body); the most its parts may add up to.
    #[cfg(test)]
    pub(crate) async fn check_upload(&self, key: &str, id: &str) -> Result<u64, MultipartError> {
        live_record(&self.uploads().upload_dir(id)?, key).await.map(|r| r.max_size)
    }

    /// Where part `n` (`len` bytes) of upload `id` is written as it arrives: in place when
    /// the upload's stride allows (see `in_place`), else a spool of its own. Refuses an
    /// unknown upload and a part that would take the upload past its size before a byte.
    pub(crate) async fn open_part(
        &self,
        key: &str,
        id: &str,
        n: u32,
        len: u64,
    ) -> Result<PartSink, MultipartError> {
        if !part_number_ok(n) {
            return Err(MultipartError::InvalidPartNumber);
        }
        let uploads = self.uploads();
        let dir = uploads.upload_dir(id)?;
        {
            let _guard = uploads.lock(id).lock().await;
            live_record_fitting(&dir, key, n, len).await?;
            if let Some(stride) = in_place::fix_stride(&dir, n, len).await.filter(|s| len <= *s) {
                if let Some(writer) = InPlaceWriter::open(&dir, n, len, stride).await? {
                    // Its region is about to change: the old metadata goes first.
                    remove_part_meta(&dir, n).await?;
                    return Ok(PartSink::InPlace(writer));
                }
            }
        }
        Ok(PartSink::Spool(Spool::create(&self.tmp_dir(), len).await?.with_md5()))
    }

    /// Record part `n` once all its bytes arrived through [`Self::open_part`]'s sink.
    pub(crate) async fn finish_part(
        &self,
        key: &str,
        id: &str,
        n: u32,
        sink: PartSink,
    ) -> Result<PartInfo, MultipartError> {
        let writer = match sink {
            PartSink::Spool(s) => return self.put_part(key, id, n, s.finish().await?).await,
            PartSink::InPlace(w) => w,
        };
        let size = writer.len();
        let (md5, marker) = writer.finish().await?;
        let info = PartInfo { part_number: n, etag: quoted(&hex::encode(md5)), size };
        let meta = json_spool(&self.tmp_dir(), &PartRecord { etag: info.etag.clone(), size, in_place: true })
            .await?;
        let uploads = self.uploads();
        let dir = uploads.upload_dir(id)?;
        let _guard = uploads.lock(id).lock().await;
        live_record_fitting(&dir, key, n, size).await?;
        meta.into_temp().rename_into(&part_meta_path(&dir, n)).await.map_err(not_found_is_no_upload)?;
        // The marker goes only once the metadata describes the region.
        drop(marker);
        Ok(info)
    }

    /// Store a received part (spooled [`Spool::with_md5`]) as part `n` of upload `id`,
    /// replacing an earlier part `n`.
    pub(crate) async fn put_part(
        &self,
        key: &str,
        id: &str,
        n: u32,
        spooled: Spooled,
    ) -> Result<PartInfo, MultipartError> {
        if !part_number_ok(n) {
            return Err(MultipartError::InvalidPartNumber);
        }
        let md5 = spooled.md5.ok_or_else(|| std::io::Error::other("part spooled without its MD5"))?;
        let info = PartInfo { part_number: n, etag: quoted(&hex::encode(md5)), size: spooled.len };
        let meta = json_spool(
            &self.tmp_dir(),
            &PartRecord { etag: info.etag.clone(), size: info.size, in_place: false },
        )
        .await?;
        let uploads = self.uploads();
        let dir = uploads.upload_dir(id)?;
        let _guard = uploads.lock(id).lock().await;
        live_record_fitting(&dir, key, n, info.size).await?;
        // The old metadata goes first: a crash between the renames then leaves part n absent
        // (the client uploads it again), never new bytes under the old ETag.
        remove_part_meta(&dir, n).await?;
        // Into the existing directory only: a rename never brings back a finished upload.
        spooled.into_temp().rename_into(&part_path(&dir, n)).await.map_err(not_found_is_no_upload)?;
        meta.into_temp().rename_into(&part_meta_path(&dir, n)).await.map_err(not_found_is_no_upload)?;
        Ok(info)
    }

    /// The parts of upload `id` so far.
    pub(crate) async fn list_upload_parts(
        &self,
        key: &str,
        id: &str,
    ) -> Result<Vec<PartInfo>, MultipartError> {
        let uploads = self.uploads();
        let dir = uploads.upload_dir(id)?;
        let _guard = uploads.lock(id).lock().await;
        live_record(&dir, key).await?;
        read_parts(&dir).await
    }

    /// Complete upload `id` (see [`crate::store::Storage::complete_multipart`]); `parts`
    /// passed [`super::rules::check_request`].
    pub(crate) async fn complete_upload(
        &self,
        key: &str,
        id: &str,
        parts: &[(u32, String)],
        max_size: u64,
    ) -> Result<ObjectMeta, MultipartError> {
        let uploads = self.uploads();
        let dir = uploads.upload_dir(id)?;
        let (private, record, selected, size, assembly) = {
            let guard = uploads.lock(id).lock().await;
            let record = live_record(&dir, key).await?;
            let stored_flags = read_stored(&dir).await?;
            let stored: Vec<PartInfo> = stored_flags.iter().map(|(p, _)| p.clone()).collect();
            let (selected, size) = match select_parts(parts, &stored, max_size) {
                Ok((sel, size)) => (sel.into_iter().cloned().collect::<Vec<_>>(), size),
                // Too large is final: nothing of it is kept.
                Err(MultipartError::EntityTooLarge) => {
                    let private = uploads.take_out(&dir, "abort", id).await?;
                    drop(guard);
                    remove_dir_logged(&private).await;
                    return Err(MultipartError::EntityTooLarge);
                }
                Err(e) => return Err(e),
            };
            let selected: Vec<(PartInfo, bool)> = selected
                .into_iter()
                .map(|p| {
                    let placed =
                        stored_flags.iter().any(|(q, placed)| q.part_number == p.part_number && *placed);
                    (p, placed)
                })
                .collect();
            let assembly = plan(&dir, &stored_flags, &selected).await?;
            log::debug!(
                "multipart {id}: complete {} parts {}",
                selected.len(),
                if matches!(assembly, Assembly::InPlace) { "in place" } else { "by copy" }
            );
            let private = uploads.private_dir("complete", id);
            tokio::fs::rename(&dir, &private).await.map_err(not_found_is_no_upload)?;
            (private, record, selected, size, assembly)
        };
        match self.assemble_and_commit(&private, key, record, &selected, size, assembly).await {
            Ok(meta) => {
                remove_dir_logged(&private).await;
                Ok(meta)
            }
            Err(e) => {
                // Our failure, not the client's: give the upload back so a retry can work.
                let _guard = uploads.lock(id).lock().await;
                if let Err(back) = tokio::fs::rename(&private, &dir).await {
                    log::error!("multipart {id}: cannot restore after a failed complete: {back}");
                }
                Err(e)
            }
        }
    }

    async fn assemble_and_commit(
        &self,
        private: &Path,
        key: &str,
        record: UploadRecord,
        selected: &[(PartInfo, bool)],
        size: u64,
        assembly: Assembly,
    ) -> Result<ObjectMeta, MultipartError> {
        let refs: Vec<&PartInfo> = selected.iter().map(|(p, _)| p).collect();
        let etag =
            multipart_etag(&refs).ok_or_else(|| std::io::Error::other("a stored part ETag is not an MD5"))?;
        let data = match assembly {
            Assembly::InPlace => {
                let mut offset = 0u64;
                let mut spooled = Vec::new();
                for (p, placed) in selected {
                    if !placed {
                        spooled.push((part_path(private, p.part_number), offset, p.size));
                    }
                    offset += p.size;
                }
                in_place::finish_in_place(private, spooled, size).await?
            }
            Assembly::Copy { stride } => {
                let files = selected
                    .iter()
                    .map(|(p, placed)| match (placed, stride) {
                        (true, Some(s)) => PartFile {
                            path: in_place::data_path(private),
                            offset: u64::from(p.part_number - 1).saturating_mul(s),
                            size: p.size,
                        },
                        _ => PartFile { path: part_path(private, p.part_number), offset: 0, size: p.size },
                    })
                    .collect();
                let (data, assembled) = assemble(&self.tmp_dir(), files).await?;
                if assembled != size {
                    return Err(std::io::Error::other("assembled size differs from the parts' sum").into());
                }
                data
            }
        };
        let meta = ObjectMeta { content_type: record.content_type, size, etag };
        Ok(self.commit_file(data, key, meta).await?)
    }

    /// Abort upload `id`: it and its parts are gone.
    pub(crate) async fn abort_upload(&self, key: &str, id: &str) -> Result<(), MultipartError> {
        let uploads = self.uploads();
        let dir = uploads.upload_dir(id)?;
        let private = {
            let _guard = uploads.lock(id).lock().await;
            live_record(&dir, key).await?;
            uploads.take_out(&dir, "abort", id).await?
        };
        remove_dir_logged(&private).await;
        Ok(())
    }
}
