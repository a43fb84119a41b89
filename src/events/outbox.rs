//! [`Outbox`]: the events not yet taken by the receiver, in a redb database on local disk.
//!
//! Tables: `pending` (event id → [`Record`]), `due` ((next attempt in Unix ms, event id) → (),
//! so the due events are a range scan from the start), and `dead` (event id → [`Record`],
//! parked after the last attempt and never removed by the gateway).
//!
//! Recording is durable before it returns: the commit is `Durability::Immediate` (an fsync).
//! What delivery writes back (an event taken, a retry scheduled) is committed without an
//! fsync and made durable by the next record or by [`Outbox::sync`] soon after: a crash in
//! between only sends those events again, which at-least-once allows. A dead-lettering is
//! committed durably at once.
//! Concurrent uploads share one commit (group commit): one writer thread takes every record
//! queued while the previous commit ran and writes them in one transaction, so the fsync cost
//! is paid per batch, not per upload, and each caller still waits for its own commit.
//!
//! redb locks its file. In a graceful upgrade the new process starts while the old one still
//! has the outbox open; the new one then keeps trying to open it (each record waits up to
//! [`OPEN_WAIT`]) and takes over when the old process exits.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use redb::{Database, DatabaseError, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending");
const DUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("due");
const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead");

/// How long one record waits for an outbox another process holds before it fails.
pub const OPEN_WAIT: Duration = Duration::from_secs(30);
/// Most records written by one group commit.
const MAX_BATCH: usize = 1024;
/// Longest `last_error` kept.
const MAX_ERROR_LEN: usize = 300;

/// One event and its delivery so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The event's JSON, exactly as signed and sent.
    pub body: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (pending) or was due (dead), Unix ms.
    pub next_at_ms: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub recorded_ms: u64,
    #[serde(default)]
    pub dead_at_ms: Option<u64>,
}

/// The due events, and when the first one not yet due is due.
pub type Due = (Vec<(String, Record)>, Option<u64>);

/// How many events wait, and how many are dead-lettered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub dead: u64,
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered {
        id: String,
    },
    /// Retry at `next_at_ms`, or park it when this was attempt `max_attempts`.
    Failed {
        id: String,
        error: String,
        next_at_ms: u64,
        max_attempts: u32,
        now_ms: u64,
    },
}

/// What [`Outbox::apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub delivered: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub counts: Counts,
}

/// Why the outbox could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxError(pub String);

impl std::fmt::Display for OutboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "outbox: {}", self.0)
    }
}

impl std::error::Error for OutboxError {}

fn err(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

/// The database, opened on first use.
struct Store {
    path: PathBuf,
    db: OnceLock<Database>,
    opening: Mutex<()>,
}

/// Why an open did not happen.
enum OpenError {
    /// Another process has the file (a graceful upgrade's old process).
    Busy,
    Failed(OutboxError),
}

impl Store {
    fn try_db(&self) -> Result<&Database, OpenError> {
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        let _one_opener = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        let db = match Database::create(&self.path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::Busy),
            Err(e) => return Err(OpenError::Failed(err(format!("{}: {e}", self.path.display())))),
        };
        // Every table exists from the start, so readers never meet a missing one.
        let created = db.begin_write().map_err(err).and_then(|tx| {
            tx.open_table(PENDING).map_err(err)?;
            tx.open_table(DUE).map_err(err)?;
            tx.open_table(DEAD).map_err(err)?;
            tx.commit().map_err(err)
        });
        created.map_err(OpenError::Failed)?;
        Ok(self.db.get_or_init(|| db))
    }

    /// The database, waiting up to `wait` while another process holds it.
    fn db(&self, wait: Duration) -> Result<&Database, OutboxError> {
        let deadline = Instant::now() + wait;
        loop {
            match self.try_db() {
                Ok(db) => return Ok(db),
                Err(OpenError::Failed(e)) => return Err(e),
                Err(OpenError::Busy) if Instant::now() >= deadline => {
                    return Err(OutboxError(format!("{} is held by another process", self.path.display())))
                }
                Err(OpenError::Busy) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// One record waiting for the group commit.
struct Job {
    id: String,
    record: Vec<u8>,
    next_at_ms: u64,
    done: tokio::sync::oneshot::Sender<Result<Counts, OutboxError>>,
}

/// The outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<Store>,
    jobs: mpsc::Sender<Job>,
}

fn counts(tx: &redb::WriteTransaction) -> Result<Counts, OutboxError> {
    Ok(Counts {
        pending: tx.open_table(PENDING).map_err(err)?.len().map_err(err)?,
        dead: tx.open_table(DEAD).map_err(err)?.len().map_err(err)?,
    })
}

fn encode(r: &Record) -> Vec<u8> {
    // Strings and numbers only: serialization cannot fail.
    serde_json::to_vec(r).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<Record, OutboxError> {
    serde_json::from_slice(bytes).map_err(|e| err(format!("unreadable record: {e}")))
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

impl Outbox {
    /// Open (creating) the outbox at `path`, its parent directory too. When another process
    /// holds the file the outbox opens later, on first use.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| err(format!("{}: {e}", parent.display())))?;
        }
        let store =
            Arc::new(Store { path: path.to_path_buf(), db: OnceLock::new(), opening: Mutex::new(()) });
        match store.try_db() {
            Ok(_) => {}
            Err(OpenError::Busy) => log::warn!(
                "events outbox {} is held by another process (a graceful upgrade?); it opens when that one exits",
                path.display()
            ),
            Err(OpenError::Failed(e)) => return Err(e),
        }
        let (jobs, rx) = mpsc::channel::<Job>();
        let writer = store.clone();
        std::thread::Builder::new()
            .name("events-outbox".into())
            .spawn(move || group_commit(&writer, &rx))
            .map_err(|e| err(format!("cannot start the outbox writer: {e}")))?;
        Ok(Self { store, jobs })
    }

    /// Record an event durably: when this returns `Ok` the event survives a crash.
    pub async fn record(&self, id: &str, body: String, now_ms: u64) -> Result<Counts, OutboxError> {
        let record = Record {
            body,
            attempts: 0,
            next_at_ms: now_ms,
            last_error: None,
            recorded_ms: now_ms,
            dead_at_ms: None,
        };
        let (done, wait) = tokio::sync::oneshot::channel();
        let job = Job { id: id.to_owned(), record: encode(&record), next_at_ms: now_ms, done };
        self.jobs.send(job).map_err(|_| OutboxError("the outbox writer has stopped".into()))?;
        wait.await.map_err(|_| OutboxError("the outbox writer has stopped".into()))?
    }

    /// Up to `limit` due events (next attempt at or before `now_ms`) not in `skip`, and when
    /// the first not-yet-due one is due.
    pub fn due(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &std::collections::HashSet<String>,
    ) -> Result<Due, OutboxError> {
        let db = self.store.db(Duration::ZERO)?;
        let tx = db.begin_read().map_err(err)?;
        let due = tx.open_table(DUE).map_err(err)?;
        let pending = tx.open_table(PENDING).map_err(err)?;
        let mut out = Vec::new();
        let mut next = None;
        for entry in due.iter().map_err(err)? {
            let (k, _) = entry.map_err(err)?;
            let (at, id) = k.value();
            if at > now_ms {
                next = Some(at);
                break;
            }
            if skip.contains(id) {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            if let Some(r) = pending.get(id).map_err(err)? {
                out.push((id.to_owned(), decode(r.value())?));
            }
        }
        Ok((out, next))
    }

    /// Write what became of a batch of attempts, in one transaction; durable (fsynced) only
    /// when it dead-letters an event, else made durable by the next durable commit
    /// ([`Self::sync`] or a record). Returns whether it is durable already.
    pub fn apply(&self, outcomes: &[Outcome]) -> Result<(Applied, bool), OutboxError> {
        let db = self.store.db(Duration::ZERO)?;
        let mut tx = db.begin_write().map_err(err)?;
        let durable = self.would_dead_letter(&tx, outcomes)?;
        if !durable {
            tx.set_durability(redb::Durability::None);
        }
        let mut applied = Applied::default();
        {
            let mut pending = tx.open_table(PENDING).map_err(err)?;
            let mut due = tx.open_table(DUE).map_err(err)?;
            let mut dead = tx.open_table(DEAD).map_err(err)?;
            for o in outcomes {
                let id = match o {
                    Outcome::Delivered { id } | Outcome::Failed { id, .. } => id.as_str(),
                };
                let Some(old) = pending.remove(id).map_err(err)?.map(|r| decode(r.value())).transpose()?
                else {
                    continue;
                };
                due.remove((old.next_at_ms, id)).map_err(err)?;
                match o {
                    Outcome::Delivered { .. } => applied.delivered += 1,
                    Outcome::Failed { error, next_at_ms, max_attempts, now_ms, .. } => {
                        applied.failed += 1;
                        let mut r = old;
                        r.attempts += 1;
                        r.last_error = Some(truncate(error.clone()));
                        if r.attempts >= *max_attempts {
                            r.dead_at_ms = Some(*now_ms);
                            dead.insert(id, encode(&r).as_slice()).map_err(err)?;
                            applied.dead_lettered += 1;
                        } else {
                            r.next_at_ms = *next_at_ms;
                            pending.insert(id, encode(&r).as_slice()).map_err(err)?;
                            due.insert((r.next_at_ms, id), ()).map_err(err)?;
                        }
                    }
                }
            }
        }
        applied.counts = counts(&tx)?;
        tx.commit().map_err(err)?;
        Ok((applied, durable))
    }

    /// Whether one of the failures is its event's last attempt.
    fn would_dead_letter(
        &self,
        tx: &redb::WriteTransaction,
        outcomes: &[Outcome],
    ) -> Result<bool, OutboxError> {
        let pending = tx.open_table(PENDING).map_err(err)?;
        for o in outcomes {
            if let Outcome::Failed { id, max_attempts, .. } = o {
                if let Some(r) = pending.get(id.as_str()).map_err(err)? {
                    if decode(r.value())?.attempts + 1 >= *max_attempts {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Make every earlier commit durable (an empty fsynced commit).
    pub fn sync(&self) -> Result<(), OutboxError> {
        let db = self.store.db(Duration::ZERO)?;
        db.begin_write().map_err(err)?.commit().map_err(err)
    }

    /// The dead-lettered events, oldest id first, at most `limit`.
    pub fn dead(&self, limit: usize) -> Result<Vec<(String, Record)>, OutboxError> {
        let db = self.store.db(Duration::ZERO)?;
        let tx = db.begin_read().map_err(err)?;
        let dead = tx.open_table(DEAD).map_err(err)?;
        let mut out = Vec::new();
        for entry in dead.iter().map_err(err)?.take(limit) {
            let (k, v) = entry.map_err(err)?;
            out.push((k.value().to_owned(), decode(v.value())?));
        }
        Ok(out)
    }

    /// Move a dead-lettered event back to pending, due now, with its attempts reset.
    /// `Ok(None)` when there is no such dead event.
    pub fn retry_dead(&self, id: &str, now_ms: u64) -> Result<Option<Counts>, OutboxError> {
        let db = self.store.db(Duration::ZERO)?;
        let tx = db.begin_write().map_err(err)?;
        {
            let mut dead = tx.open_table(DEAD).map_err(err)?;
            let Some(mut r) = dead.remove(id).map_err(err)?.map(|r| decode(r.value())).transpose()? else {
                return Ok(None);
            };
            r.attempts = 0;
            r.next_at_ms = now_ms;
            r.dead_at_ms = None;
            let mut pending = tx.open_table(PENDING).map_err(err)?;
            if let Some(old) = pending.insert(id, encode(&r).as_slice()).map_err(err)? {
                let old = decode(old.value())?;
                tx.open_table(DUE).map_err(err)?.remove((old.next_at_ms, id)).map_err(err)?;
            }
            tx.open_table(DUE).map_err(err)?.insert((now_ms, id), ()).map_err(err)?;
        }
        let c = counts(&tx)?;
        tx.commit().map_err(err)?;
        Ok(Some(c))
    }

    /// How many events wait and how many are dead.
    pub fn counts(&self) -> Result<Counts, OutboxError> {
        let db = self.store.db(Duration::ZERO)?;
        let tx = db.begin_read().map_err(err)?;
        Ok(Counts {
            pending: tx.open_table(PENDING).map_err(err)?.len().map_err(err)?,
            dead: tx.open_table(DEAD).map_err(err)?.len().map_err(err)?,
        })
    }
}

/// The writer thread: each commit takes every record queued meanwhile.
fn group_commit(store: &Store, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = store.db(OPEN_WAIT).and_then(|db| write_batch(db, &batch));
        for job in batch {
            let _ = job.done.send(result.clone());
        }
    }
}

fn write_batch(db: &Database, batch: &[Job]) -> Result<Counts, OutboxError> {
    let tx = db.begin_write().map_err(err)?;
    {
        let mut pending = tx.open_table(PENDING).map_err(err)?;
        let mut due = tx.open_table(DUE).map_err(err)?;
        for job in batch {
            // The same id recorded again (a completion called twice) replaces the first.
            if let Some(old) = pending.insert(job.id.as_str(), job.record.as_slice()).map_err(err)? {
                let old = decode(old.value())?;
                due.remove((old.next_at_ms, job.id.as_str())).map_err(err)?;
            }
            due.insert((job.next_at_ms, job.id.as_str()), ()).map_err(err)?;
        }
    }
    let c = counts(&tx)?;
    // Durability::Immediate is redb's default: the commit returns after the fsync.
    tx.commit().map_err(err)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn failed(id: &str, next_at_ms: u64, max_attempts: u32) -> Outcome {
        Outcome::Failed { id: id.into(), error: "HTTP 500".into(), next_at_ms, max_attempts, now_ms: 1 }
    }

    #[tokio::test]
    async fn record_due_deliver_retry_and_dead_letter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/outbox.redb");
        let ob = Outbox::open(&path).unwrap();
        ob.record("evt_a", "{\"a\":1}".into(), 100).await.unwrap();
        let c = ob.record("evt_b", "{\"b\":1}".into(), 200).await.unwrap();
        assert_eq!(c, Counts { pending: 2, dead: 0 });

        let (due, next) = ob.due(150, 8, &HashSet::new()).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].0.as_str(), due[0].1.body.as_str()), ("evt_a", "{\"a\":1}"));
        assert_eq!(next, Some(200));
        let skip: HashSet<String> = ["evt_a".to_string()].into();
        assert!(ob.due(150, 8, &skip).unwrap().0.is_empty(), "in flight is skipped");

        let (a, durable) =
            ob.apply(&[Outcome::Delivered { id: "evt_a".into() }, failed("evt_b", 500, 2)]).unwrap();
        assert!(!durable, "nothing dead-lettered: no fsync");
        assert_eq!((a.delivered, a.failed, a.dead_lettered), (1, 1, 0));
        assert_eq!(a.counts, Counts { pending: 1, dead: 0 });
        let (due, next) = ob.due(400, 8, &HashSet::new()).unwrap();
        assert!(due.is_empty());
        assert_eq!(next, Some(500));
        let (due, _) = ob.due(500, 8, &HashSet::new()).unwrap();
        assert_eq!(due[0].1.attempts, 1);
        assert_eq!(due[0].1.last_error.as_deref(), Some("HTTP 500"));

        let (a, durable) = ob.apply(&[failed("evt_b", 900, 2)]).unwrap();
        assert!(durable, "a dead-lettering is fsynced at once");
        assert_eq!(a.dead_lettered, 1);
        assert_eq!(a.counts, Counts { pending: 0, dead: 1 });
        let dead = ob.dead(10).unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].1.attempts, 2);
        assert!(ob.due(u64::MAX, 8, &HashSet::new()).unwrap().0.is_empty());

        assert_eq!(ob.retry_dead("evt_nope", 1000).unwrap(), None);
        assert_eq!(ob.retry_dead("evt_b", 1000).unwrap(), Some(Counts { pending: 1, dead: 0 }));
        let (due, _) = ob.due(1000, 8, &HashSet::new()).unwrap();
        assert_eq!((due[0].0.as_str(), due[0].1.attempts), ("evt_b", 0));
    }

    #[tokio::test]
    async fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.redb");
        {
            let ob = Outbox::open(&path).unwrap();
            let writes = (0..50).map(|i| {
                let ob = ob.clone();
                async move { ob.record(&format!("evt_{i:02}"), "{}".into(), 1).await }
            });
            for r in futures_util::future::join_all(writes).await {
                r.unwrap();
            }
        }
        // The writer thread lets go of the file once the last handle is gone.
        let reopened = (0..200).find_map(|_| match Outbox::open(&path) {
            Ok(ob) if ob.counts().is_ok() => Some(ob),
            _ => {
                std::thread::sleep(Duration::from_millis(10));
                None
            }
        });
        let ob = reopened.expect("reopens");
        assert_eq!(ob.counts().unwrap(), Counts { pending: 50, dead: 0 });
        assert_eq!(ob.due(1, 100, &HashSet::new()).unwrap().0.len(), 50);
    }

    #[tokio::test]
    async fn the_same_id_twice_is_one_event() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(&dir.path().join("o.redb")).unwrap();
        ob.record("evt_same", "1".into(), 10).await.unwrap();
        let c = ob.record("evt_same", "2".into(), 20).await.unwrap();
        assert_eq!(c.pending, 1);
        let (due, _) = ob.due(20, 8, &HashSet::new()).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.body, "2");
    }
}
