//! The local store's multipart rules, on a real directory.

use super::*;
use crate::store::{MAX_PART_NUMBER, MIN_PART_SIZE};

const KEY: &str = "uploads/user/12/big.bin";

fn later() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::hours(1)
}

fn earlier() -> OffsetDateTime {
    OffsetDateTime::now_utc() - time::Duration::seconds(1)
}

async fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    (dir, store)
}

/// Part `n` of `id` with these bytes, through a spool as the route does.
async fn put(store: &LocalStore, id: &str, n: u32, bytes: &[u8]) -> Result<PartInfo, MultipartError> {
    let mut s = Spool::create(&store.tmp_dir(), bytes.len() as u64).await.unwrap().with_md5();
    s.write(bytes).await.unwrap();
    store.put_part(KEY, id, n, s.finish().await.unwrap()).await
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn listed(parts: &[&PartInfo]) -> Vec<(u32, String)> {
    parts.iter().map(|p| (p.part_number, p.etag.clone())).collect()
}

/// Everything under `multipart/` and `tmp/` (uploads, private dirs, temp files).
fn leftovers(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["multipart", "tmp"] {
        for e in std::fs::read_dir(root.join(sub)).unwrap().flatten() {
            out.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
        }
    }
    out
}

async fn complete(
    store: &LocalStore,
    id: &str,
    parts: &[(u32, String)],
) -> Result<ObjectMeta, MultipartError> {
    super::super::rules::check_request(parts)?;
    store.complete_upload(KEY, id, parts, u64::MAX).await
}

#[tokio::test]
async fn create_writes_the_record_and_lists_nothing() {
    let (dir, store) = store().await;
    let id = store.create_upload(KEY, "video/mp4", later(), u64::MAX).await.unwrap();
    assert!(valid_id(&id), "{id}");
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("multipart").join(&id).join("upload.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["key"], KEY);
    assert_eq!(record["content_type"], "video/mp4");
    assert!(record["expires_at"].is_i64());
    assert_eq!(store.list_upload_parts(KEY, &id).await.unwrap(), vec![]);
    assert!(matches!(
        store.create_upload("../etc", "text/plain", later(), u64::MAX).await,
        Err(MultipartError::Store(StoreError::UnsafeKey))
    ));
}

#[tokio::test]
async fn parts_have_md5_etags_list_in_order_and_replace() {
    let (_dir, store) = store().await;
    let id = store.create_upload(KEY, "video/mp4", later(), u64::MAX).await.unwrap();
    let p3 = put(&store, &id, 3, b"three").await.unwrap();
    let p1 = put(&store, &id, 1, b"one").await.unwrap();
    assert_eq!(p1.etag, format!("\"{}\"", hex::encode(<md5::Md5 as md5::Digest>::digest(b"one"))));
    assert_eq!(store.list_upload_parts(KEY, &id).await.unwrap(), vec![p1.clone(), p3]);
    let again = put(&store, &id, 3, b"three, again").await.unwrap();
    assert_eq!(store.list_upload_parts(KEY, &id).await.unwrap(), vec![p1, again.clone()]);
    assert_eq!(again.size, 12);
    for n in [0, MAX_PART_NUMBER + 1] {
        assert!(matches!(put(&store, &id, n, b"x").await, Err(MultipartError::InvalidPartNumber)));
    }
}

#[tokio::test]
async fn complete_assembles_the_listed_parts_with_s3s_etag() {
    let (dir, store) = store().await;
    let id = store.create_upload(KEY, "video/mp4", later(), u64::MAX).await.unwrap();
    let (a, b, c) = (bytes(MIN_PART_SIZE as usize, 1), bytes(MIN_PART_SIZE as usize + 7, 2), bytes(10, 3));
    let p1 = put(&store, &id, 1, &a).await.unwrap();
    let _unlisted = put(&store, &id, 2, b"not in the object").await.unwrap();
    let p4 = put(&store, &id, 4, &b).await.unwrap();
    let p9 = put(&store, &id, 9, &c).await.unwrap();
    // The client may send ETags without their quotes.
    let mut ask = listed(&[&p1, &p4, &p9]);
    ask[1].1 = super::super::rules::unquote(&ask[1].1).to_string();
    let meta = complete(&store, &id, &ask).await.unwrap();

    let want: Vec<u8> = [a.as_slice(), &b, &c].concat();
    assert_eq!(std::fs::read(dir.path().join("objects").join(KEY)).unwrap(), want);
    assert_eq!(meta.size, want.len() as u64);
    assert_eq!(meta.content_type, "video/mp4");
    assert_eq!(meta.etag, multipart_etag(&[&p1, &p4, &p9]).unwrap());
    assert!(meta.etag.ends_with("-3\""), "{}", meta.etag);
    assert_eq!(store.meta(KEY).await, Some(meta));
    assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "upload dir and temp files gone");
}

#[tokio::test]
async fn refused_completes_leave_the_upload_usable() {
    let (dir, store) = store().await;
    let id = store.create_upload(KEY, "video/mp4", later(), u64::MAX).await.unwrap();
    let small = put(&store, &id, 1, b"small").await.unwrap();
    let big = put(&store, &id, 2, &bytes(MIN_PART_SIZE as usize, 5)).await.unwrap();
    let last = put(&store, &id, 3, b"end").await.unwrap();

    let wrong_etag = vec![(2, "\"00000000000000000000000000000000\"".to_string())];
    assert!(matches!(complete(&store, &id, &wrong_etag).await, Err(MultipartError::InvalidPart(_))));
    let missing = vec![(2, big.etag.clone()), (5, last.etag.clone())];
    assert!(matches!(complete(&store, &id, &missing).await, Err(MultipartError::InvalidPart(_))));
    let unordered = listed(&[&big, &small]);
    assert!(matches!(complete(&store, &id, &unordered).await, Err(MultipartError::InvalidPartOrder)));
    let too_small = listed(&[&small, &big]);
    assert!(matches!(complete(&store, &id, &too_small).await, Err(MultipartError::EntityTooSmall)));
    assert!(!dir.path().join("objects").join(KEY).exists());

    // Still there, and a corrected list completes.
    assert_eq!(store.list_upload_parts(KEY, &id).await.unwrap().len(), 3);
    let meta = complete(&store, &id, &listed(&[&big, &last])).await.unwrap();
    assert_eq!(meta.size, MIN_PART_SIZE + 3);
}

#[tokio::test]
async fn too_large_is_refused_and_the_upload_dropped() {
    let (dir, store) = store().await;
    let id = store.create_upload(KEY, "video/mp4", later(), u64::MAX).await.unwrap();
    let p1 = put(&store, &id, 1, b"0123456789").await.unwrap();
    let r = store.complete_upload(KEY, &id, &listed(&[&p1]), 9).await;
    assert!(matches!(r, Err(MultipartError::EntityTooLarge)), "{r:?}");
    assert!(matches!(store.list_upload_parts(KEY, &id).await, Err(MultipartError::NoSuchUpload)));
    assert!(!dir.path().join("objects").join(KEY).exists());
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    // Exactly at the cap is fine.
    let id = store.create_upload(KEY, "video/mp4", later(), u64::MAX).await.unwrap();
    let p1 = put(&store, &id, 1, b"0123456789").await.unwrap();
    assert_eq!(store.complete_upload(KEY, &id, &listed(&[&p1]), 10).await.unwrap().size, 10);
}

#[tokio::test]
async fn finished_uploads_are_gone_for_every_operation() {
    let (dir, store) = store().await;
    // Completed twice.
    let id = store.create_upload(KEY, "text/plain", later(), u64::MAX).await.unwrap();
    let p1 = put(&store, &id, 1, b"x").await.unwrap();
    complete(&store, &id, &listed(&[&p1])).await.unwrap();
    assert!(matches!(complete(&store, &id, &listed(&[&p1])).await, Err(MultipartError::NoSuchUpload)));
    assert!(matches!(store.abort_upload(KEY, &id).await, Err(MultipartError::NoSuchUpload)));
    // A part after the complete neither lands nor brings the directory back.
    assert!(matches!(put(&store, &id, 2, b"late").await, Err(MultipartError::NoSuchUpload)));
    assert!(!dir.path().join("multipart").join(&id).exists());

    // Aborted, then completed or aborted again.
    let id = store.create_upload(KEY, "text/plain", later(), u64::MAX).await.unwrap();
    let p1 = put(&store, &id, 1, b"x").await.unwrap();
    store.abort_upload(KEY, &id).await.unwrap();
    assert!(matches!(complete(&store, &id, &listed(&[&p1])).await, Err(MultipartError::NoSuchUpload)));
    assert!(matches!(store.abort_upload(KEY, &id).await, Err(MultipartError::NoSuchUpload)));
    assert!(matches!(store.check_upload(KEY, &id).await, Err(MultipartError::NoSuchUpload)));
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn another_key_or_a_made_up_id_is_no_upload() {
    let (_dir, store) = store().await;
    let id = store.create_upload(KEY, "text/plain", later(), u64::MAX).await.unwrap();
    let p1 = put(&store, &id, 1, b"x").await.unwrap();
    let other = "uploads/user/13/big.bin";
    assert!(matches!(store.check_upload(other, &id).await, Err(MultipartError::NoSuchUpload)));
    assert!(matches!(store.list_upload_parts(other, &id).await, Err(MultipartError::NoSuchUpload)));
    assert!(matches!(
        store.complete_upload(other, &id, &listed(&[&p1]), u64::MAX).await,
        Err(MultipartError::NoSuchUpload)
    ));
    assert!(matches!(store.abort_upload(other, &id).await, Err(MultipartError::NoSuchUpload)));
    for bad in
        ["", "..", "../../objects", &id.to_uppercase(), &format!("{id}0"), "0123456789abcdef0123456789abcdeg"]
    {
        assert!(matches!(store.check_upload(KEY, bad).await, Err(MultipartError::NoSuchUpload)), "{bad}");
        assert!(
            matches!(store.list_upload_parts(KEY, bad).await, Err(MultipartError::NoSuchUpload)),
            "{bad}"
        );
    }
    // All of that left the upload as it was.
    assert_eq!(store.list_upload_parts(KEY, &id).await.unwrap(), vec![p1]);
}

#[tokio::test]
async fn racing_completes_and_aborts_let_exactly_one_through() {
    let (_dir, store) = store().await;
    for abort_second in [false, true] {
        let id = store.create_upload(KEY, "text/plain", later(), u64::MAX).await.unwrap();
        let p1 = put(&store, &id, 1, b"x").await.unwrap();
        let ask = listed(&[&p1]);
        let first = complete(&store, &id, &ask);
        let (a, b) = if abort_second {
            let (a, b) = tokio::join!(first, store.abort_upload(KEY, &id));
            (a.is_ok(), b.is_ok())
        } else {
            let (a, b) = tokio::join!(first, complete(&store, &id, &ask));
            (a.is_ok(), b.is_ok())
        };
        assert!(a ^ b, "exactly one of two racing finishes wins (abort_second: {abort_second})");
    }
}

#[tokio::test]
async fn expired_uploads_are_refused_and_swept() {
    let (dir, store) = store().await;
    let id = store.create_upload(KEY, "text/plain", earlier(), u64::MAX).await.unwrap();
    assert!(matches!(store.check_upload(KEY, &id).await, Err(MultipartError::NoSuchUpload)));
    assert!(matches!(put(&store, &id, 1, b"x").await, Err(MultipartError::NoSuchUpload)));
    let upload_dir = dir.path().join("multipart").join(&id);
    assert!(upload_dir.exists(), "not swept yet: the last sweep was at open");

    // The sweep on create runs once a minute: pretend the last one was long ago.
    let live = store.create_upload(KEY, "text/plain", later(), u64::MAX).await.unwrap();
    assert!(upload_dir.exists(), "within the minute, create does not sweep");
    store.uploads().last_sweep.store(0, Ordering::Relaxed);
    let third = store.create_upload(KEY, "text/plain", later(), u64::MAX).await.unwrap();
    assert!(!upload_dir.exists(), "swept on create");
    for id in [&live, &third] {
        store.check_upload(KEY, id).await.unwrap();
    }

    // And at open.
    let stale = store.create_upload(KEY, "text/plain", earlier(), u64::MAX).await.unwrap();
    drop(store);
    let store = LocalStore::open(dir.path()).unwrap();
    assert!(!dir.path().join("multipart").join(&stale).exists(), "swept at open");
    store.check_upload(KEY, &live).await.unwrap();
}
