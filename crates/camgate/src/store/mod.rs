//! The store: events, dead letters and sink cursors in SQLite, images as files.
//!
//! It is the outbox of the data flow. Sources [`append`](Store::append) events and get an
//! answer only after the transaction committed; one writer task groups concurrent appends
//! into one transaction (group commit). Sinks read after their own cursor and advance it.

mod checkpoint;
mod images;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use camgate_core::config::{Config, Synchronous};
use camgate_core::{Event, Kind};
use jiff::Timestamp;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Committed};
use crate::metrics::Metrics;
use crate::occupancy::{self, Occupancy};

pub use images::ImageStore;

/// An event with its place in the store. On the live bus, `seq` 0 marks an event that is
/// published but not stored (Viewtron traject with `traject = "live"`).
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    #[serde(skip_serializing_if = "is_live_only")]
    pub seq: u64,
    #[serde(flatten)]
    pub event: Event,
    /// `event` as JSON, exactly as stored (sinks that write JSON use it as is).
    #[serde(skip)]
    pub json: Arc<str>,
}

impl StoredEvent {
    /// An event with its JSON.
    pub fn new(seq: u64, event: Event) -> Self {
        let json = serde_json::to_string(&event)
            .unwrap_or_else(|e| serde_json::json!({ "key": event.key, "error": e.to_string() }).to_string())
            .into();
        StoredEvent { seq, event, json }
    }
}

fn is_live_only(seq: &u64) -> bool {
    *seq == 0
}

/// What [`Store::append`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The key was new; the event is stored under this seq.
    New(u64),
    /// An event with the same key was already stored; nothing was written.
    Duplicate,
}

/// A payload that could not be parsed, kept verbatim.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub source: String,
    pub received_at: Timestamp,
    pub reason: String,
    pub payload: Vec<u8>,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub source: Option<String>,
    pub kind: Option<Kind>,
}

/// Why the store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the store is full: {0}; free disk space or raise store.max_size")]
    Full(String),
    #[error("the store is shutting down and takes no more writes")]
    Closed,
    #[error("database error: {0}")]
    Database(String),
    #[error("image file error: {0}")]
    Image(String),
    #[error("stored event {seq} is not valid JSON: {message}")]
    Corrupt { seq: u64, message: String },
}

impl StoreError {
    /// Whether the caller should answer "try again later" (HTTP 503) rather than "broken".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Full(_) | StoreError::Closed | StoreError::Database(_) | StoreError::Image(_))
    }

    pub(crate) fn from_sqlx(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            // SQLITE_FULL (13) and its extended codes: the disk or max_page_count is exhausted.
            if db.code().and_then(|c| c.parse::<i64>().ok()).is_some_and(|c| c & 0xff == 13) {
                return StoreError::Full(db.message().to_string());
            }
        }
        StoreError::Database(e.to_string())
    }
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub database: PathBuf,
    pub data_dir: PathBuf,
    pub batch_max: usize,
    pub batch_linger: Duration,
    pub queue: usize,
    pub synchronous: Synchronous,
    pub max_size: Option<u64>,
    /// WAL bytes above which writes are held for a moment so that the WAL starts over.
    pub wal_max: u64,
    /// The zones counted in the write transaction (`None`: no zones, nothing to do).
    pub occupancy: Option<Arc<Occupancy>>,
    /// The scheduled windows: every event appended inside one gets its name as `schedule`
    /// (`None`: no `[schedule]`).
    pub schedule: Option<Arc<camgate_core::schedule::Schedule>>,
}

impl StoreOptions {
    pub fn from_config(c: &Config) -> Self {
        StoreOptions {
            database: c.database_path(),
            data_dir: c.site.data_dir.clone(),
            batch_max: c.store.batch_max,
            batch_linger: c.store.batch_linger.get(),
            queue: c.store.queue,
            synchronous: c.store.synchronous,
            max_size: c.store.max_size.map(|s| s.get()),
            wal_max: c.store.wal_max.get(),
            occupancy: Occupancy::from_config(c),
            // The configuration was validated with the same schedule; an error here means
            // the legacy file changed since, which the start-up of the sources reports.
            schedule: c.schedule().ok().filter(|s| !s.is_empty()).map(Arc::new),
        }
    }

    /// Defaults for a database in `data_dir` (tests, benches, the library).
    pub fn in_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        StoreOptions {
            database: data_dir.join("camgate.db"),
            data_dir,
            batch_max: 1000,
            batch_linger: Duration::from_millis(2),
            queue: 16_384,
            synchronous: Synchronous::Normal,
            max_size: None,
            wal_max: 128_000_000,
            occupancy: None,
            schedule: None,
        }
    }
}

/// An event ready for [`Store::append_prepared`]: tagged with its schedule window and
/// serialised, once ([`Store::prepare`]). Lets a source do that work in its own tasks, while
/// it waits for the network, rather than in the one write.
pub struct PreparedEvent {
    event: Event,
    json: String,
    /// Kept as history (read back by the API, sinks, the live stream); `false`: stored for
    /// its key and the zones only (an `[[avigilon]]` site's `history` filter).
    history: bool,
}

impl PreparedEvent {
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The event's JSON, as it will be stored.
    pub fn json(&self) -> &str {
        &self.json
    }

    pub fn is_history(&self) -> bool {
        self.history
    }
}

pub(crate) enum WriteOp {
    Append { events: Vec<PreparedEvent>, reply: oneshot::Sender<Result<Vec<Appended>, StoreError>> },
    DeadLetter { letter: DeadLetter, reply: oneshot::Sender<Result<(), StoreError>> },
    SetCursor { sink: String, seq: u64, reply: oneshot::Sender<Result<(), StoreError>> },
    SetSourceCursors { source: String, cursors: Vec<(String, String)>, reply: oneshot::Sender<Result<(), StoreError>> },
}

impl WriteOp {
    fn weight(&self) -> usize {
        match self {
            WriteOp::Append { events, .. } => events.len(),
            WriteOp::SetSourceCursors { cursors, .. } => cursors.len().max(1),
            _ => 1,
        }
    }
}

struct Inner {
    pool: SqlitePool,
    tx: mpsc::Sender<WriteOp>,
    head: watch::Receiver<u64>,
    images: ImageStore,
    occupancy: Option<Arc<Occupancy>>,
    schedule: Option<Arc<camgate_core::schedule::Schedule>>,
    /// The writer publishes committed events here.
    bus: Bus,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// The writer task; [`close`](Writer::close) it to flush and stop.
pub struct Writer {
    close: CancellationToken,
    /// Resolves when the writer task has committed everything and stopped.
    written: oneshot::Receiver<()>,
    stop_checkpoints: CancellationToken,
    /// Resolves when the checkpoint task has stopped too.
    stopped: oneshot::Receiver<()>,
}

impl Writer {
    /// Stop taking writes, commit everything already queued, and wait for the task.
    pub async fn close(self) {
        self.close.cancel();
        if self.written.await.is_err() {
            tracing::error!("the store writer task failed");
        }
        self.stop_checkpoints.cancel();
        if self.stopped.await.is_err() {
            tracing::error!("the store checkpoint task failed");
        }
    }
}

/// The WAL file of the database at `database`.
fn wal_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn connect_options(o: &StoreOptions) -> SqliteConnectOptions {
    SqliteConnectOptions::from_str("sqlite://")
        .expect("static sqlite url")
        .filename(&o.database)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match o.synchronous {
            Synchronous::Normal => SqliteSynchronous::Normal,
            Synchronous::Full => SqliteSynchronous::Full,
        })
        .busy_timeout(Duration::from_secs(10))
        // Statement journals (each multi-row INSERT has one) and other temporary data in
        // memory: otherwise SQLite creates, writes and deletes a temporary file on disk in
        // nearly every write transaction.
        .pragma("temp_store", "memory")
}

impl Store {
    /// Open (and migrate) the database, start the writer task.
    pub async fn open(o: StoreOptions, metrics: Arc<Metrics>, bus: Bus) -> Result<(Store, Writer), StoreError> {
        if let Some(dir) = o.database.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
        }
        use sqlx::Connection;
        let mut conn = SqliteConnection::connect_with(&connect_options(&o))
            .await
            .map_err(|e| StoreError::Database(format!("cannot open database {}: {e}", o.database.display())))?;
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Database(format!("migrating {}: {e}", o.database.display())))?;
        if let Some(occ) = &o.occupancy {
            occupancy::prepare(occ, &mut conn).await.map_err(StoreError::from_sqlx)?;
        }
        if let Some(max) = o.max_size {
            let page_size: i64 =
                sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut conn).await.map_err(StoreError::from_sqlx)?;
            let pages = (max as i64 / page_size.max(512)).max(1);
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {pages}")))
                .execute(&mut conn)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        // Checkpoints are done by a task of their own (checkpoint.rs), not inside the writer's
        // commits, where each one stalled the commit that crossed the threshold.
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await.map_err(StoreError::from_sqlx)?;
        // A WAL that grew past twice `wal_max` (while a reader kept it from starting over) is
        // cut back to that size when it starts over.
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA journal_size_limit = {}", o.wal_max.saturating_mul(2))))
            .execute(&mut conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        let page_size: i64 =
            sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut conn).await.map_err(StoreError::from_sqlx)?;
        let checkpoint_conn =
            SqliteConnection::connect_with(&connect_options(&o).busy_timeout(checkpoint::READERS_WAIT))
                .await
                .map_err(StoreError::from_sqlx)?;
        // The head is the last history event: readers never see the others.
        let head: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT seq FROM events WHERE history = 1 ORDER BY seq DESC LIMIT 1), 0)",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(StoreError::from_sqlx)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(connect_options(&o).read_only(true))
            .await
            .map_err(StoreError::from_sqlx)?;
        let (head_tx, head_rx) = watch::channel(head as u64);
        let (tx, rx) = mpsc::channel(o.queue);
        let close = CancellationToken::new();
        let stop_checkpoints = CancellationToken::new();
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let checkpointer = checkpoint::Checkpointer {
            conn: checkpoint_conn,
            gate: gate.clone(),
            wal_max: o.wal_max,
            page_size: page_size.max(512) as u64,
            metrics: metrics.clone(),
            prefetch: checkpoint::Prefetch::new(wal_path(&o.database)),
        };
        let writer = writer::Writer {
            conn,
            rx,
            head: head_tx,
            batch_max: o.batch_max,
            linger: o.batch_linger,
            metrics,
            bus: bus.clone(),
            occupancy: o.occupancy.clone(),
            gate,
            spin: writer::Spin::new(),
        };
        // The writer and the checkpoint task run on a thread and runtime of their own. Each
        // transaction takes several round trips to SQLite's thread, and on the shared
        // runtime each round trip waited behind every task that had become ready meanwhile:
        // with thousands of device streams that made commits several times slower.
        let (written_tx, written) = oneshot::channel();
        let (stopped_tx, stopped) = oneshot::channel();
        let (close_writer, stop_checkpointer) = (close.clone(), stop_checkpoints.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(format!("cannot start the store writer's runtime: {e}")))?;
        std::thread::Builder::new()
            .name("camgate-store".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let checkpoints = tokio::spawn(checkpointer.run(stop_checkpointer.clone()));
                    writer.run(close_writer).await;
                    // Also when every handle was dropped without `close`: the thread ends.
                    stop_checkpointer.cancel();
                    let _ = written_tx.send(());
                    let _ = checkpoints.await;
                    let _ = stopped_tx.send(());
                });
            })
            .map_err(|e| StoreError::Database(format!("cannot start the store writer thread: {e}")))?;
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                tx,
                head: head_rx,
                images: ImageStore::new(&o.data_dir),
                occupancy: o.occupancy,
                schedule: o.schedule,
                bus,
            }),
        };
        Ok((store, Writer { close, written, stop_checkpoints, stopped }))
    }

    /// Append one event; returns after the transaction committed.
    pub async fn append(&self, event: Event) -> Result<Appended, StoreError> {
        Ok(self.append_many(vec![event]).await?[0])
    }

    /// Append several events in one write; the outcomes come back in the same order.
    pub async fn append_many(&self, events: Vec<Event>) -> Result<Vec<Appended>, StoreError> {
        self.append_marked(events.into_iter().map(|e| (e, true)).collect()).await
    }

    /// [`append_many`](Self::append_many) with each event marked whether it is kept as
    /// history (`true`). An event that is not is stored all the same, so its key makes a
    /// later copy a duplicate and the zones count it in this write, exactly once; but no
    /// reader sees it: not [`read_after`](Self::read_after) (the API, sinks, `camgate
    /// events`), the live bus or [`head`](Self::head). Its outcome is `New(seq)` as usual.
    pub async fn append_marked(&self, events: Vec<(Event, bool)>) -> Result<Vec<Appended>, StoreError> {
        let events =
            events.into_iter().map(|(event, history)| self.prepare(event, history)).collect::<Result<Vec<_>, _>>()?;
        self.append_prepared(events).await
    }

    /// Tag `event` with its schedule window and serialise it, for
    /// [`append_prepared`](Self::append_prepared); `history` as in
    /// [`append_marked`](Self::append_marked).
    pub fn prepare(&self, mut event: Event, history: bool) -> Result<PreparedEvent, StoreError> {
        // Every source's events: tagged with the window they fall in (occurred_at, else
        // received_at), before the zones count them by it.
        if let Some(s) = self.inner.schedule.as_deref() {
            crate::schedule::tag(s, &mut event);
        }
        match serde_json::to_string(&event) {
            Ok(json) => Ok(PreparedEvent { event, json, history }),
            // Only a non-finite number can fail here; parsers and ingest refuse them.
            Err(e) => Err(StoreError::Database(format!("event {} cannot be written as JSON: {e}", event.key))),
        }
    }

    /// Append events [`prepare`](Self::prepare)d before, in one write; the outcomes come
    /// back in the same order.
    pub async fn append_prepared(&self, events: Vec<PreparedEvent>) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.send(WriteOp::Append { events, reply }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Write the images to files, then append the event with them. Files of an event that
    /// turns out to be a duplicate, or whose commit fails, are removed again.
    ///
    /// The work runs in a task of its own, to the end even when the caller goes away (a
    /// client that disconnects mid-request): otherwise files could stay behind for an event
    /// that is never appended.
    pub async fn append_with_images(
        &self,
        event: Event,
        images: Vec<(String, Vec<u8>)>,
    ) -> Result<Appended, StoreError> {
        if images.is_empty() {
            return self.append(event).await;
        }
        let store = self.clone();
        tokio::spawn(async move { store.write_then_append(event, images).await })
            .await
            .unwrap_or_else(|e| Err(StoreError::Image(format!("the image task failed: {e}"))))
    }

    async fn write_then_append(
        &self,
        mut event: Event,
        images: Vec<(String, Vec<u8>)>,
    ) -> Result<Appended, StoreError> {
        let files = self.inner.images.clone();
        let (id, at) = (event.id, event.received_at);
        let written = tokio::task::spawn_blocking(move || files.save_all(id, at, &images))
            .await
            .map_err(|e| StoreError::Image(format!("the image task failed: {e}")))??;
        event.images.extend(written.iter().cloned());
        let outcome = self.append(event).await;
        if !matches!(outcome, Ok(Appended::New(_))) {
            let files = self.inner.images.clone();
            let _ = tokio::task::spawn_blocking(move || files.remove_all(&written)).await;
        }
        outcome
    }

    /// Keep a payload that could not be parsed; returns after commit.
    pub async fn dead_letter(&self, letter: DeadLetter) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(WriteOp::DeadLetter { letter, reply }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Record that `sink` delivered everything up to `seq`.
    pub async fn set_cursor(&self, sink: &str, seq: u64) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(WriteOp::SetCursor { sink: sink.to_owned(), seq, reply }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Record where polling source `source` has got to for `key` (a camera): `value` is the
    /// source's own position. Goes through the writer, so it commits after every write queued
    /// before it: call it once the events it covers were appended (their `append_many`
    /// returned), and a crash can never leave the cursor ahead of stored events.
    pub async fn set_source_cursor(&self, source: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.set_source_cursors(source, vec![(key.to_owned(), value.to_owned())]).await
    }

    /// [`set_source_cursor`](Self::set_source_cursor) for several keys (`(key, value)`), in
    /// one transaction.
    pub async fn set_source_cursors(&self, source: &str, cursors: Vec<(String, String)>) -> Result<(), StoreError> {
        if cursors.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.send(WriteOp::SetSourceCursors { source: source.to_owned(), cursors, reply }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// The position last recorded with [`set_source_cursor`](Self::set_source_cursor).
    pub async fn source_cursor(&self, source: &str, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM source_cursors WHERE source = ? AND key = ?")
            .bind(source)
            .bind(key)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(StoreError::from_sqlx)
    }

    async fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        self.inner.tx.send(op).await.map_err(|_| StoreError::Closed)
    }

    /// The last seq `sink` delivered (0 when it never delivered).
    pub async fn cursor(&self, sink: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM sink_cursors WHERE sink = ?")
            .bind(sink)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(seq.unwrap_or(0) as u64)
    }

    /// The highest committed seq of a history event.
    pub fn head(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// Follow the highest committed seq.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.head.clone()
    }

    /// The events committed from now on, as [`read_after`](Self::read_after) would return
    /// them, each with the seq before it (see [`Bus::subscribe_committed`]).
    pub fn subscribe_committed(&self) -> broadcast::Receiver<Committed> {
        self.inner.bus.subscribe_committed()
    }

    /// History events with `seq > after`, oldest first, at most `limit` (events stored for
    /// counting only are never read back).
    pub async fn read_after(
        &self,
        after: u64,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut sql = String::from("SELECT seq, body FROM events WHERE seq > ? AND history = 1");
        if filter.source.is_some() {
            sql.push_str(" AND source = ?");
        }
        if filter.kind.is_some() {
            sql.push_str(" AND kind = ?");
        }
        sql.push_str(" ORDER BY seq LIMIT ?");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after as i64);
        if let Some(s) = &filter.source {
            q = q.bind(s.as_str());
        }
        if let Some(k) = filter.kind {
            q = q.bind(k.as_str());
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.inner.pool).await.map_err(StoreError::from_sqlx)?;
        rows.iter()
            .map(|row| {
                let seq = row.get::<i64, _>(0) as u64;
                let body: &str = row.get(1);
                serde_json::from_str(body)
                    .map(|event| StoredEvent { seq, event, json: body.into() })
                    .map_err(|e| StoreError::Corrupt { seq, message: e.to_string() })
            })
            .collect()
    }

    /// `received_at` of the event stored under `seq`.
    pub async fn received_at(&self, seq: u64) -> Result<Option<Timestamp>, StoreError> {
        let us: Option<i64> = sqlx::query_scalar("SELECT received_at_us FROM events WHERE seq = ?")
            .bind(seq as i64)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(us.and_then(|us| Timestamp::from_microsecond(us).ok()))
    }

    /// The seq and id of the event stored under `key`.
    pub async fn find_key(&self, key: &str) -> Result<Option<(u64, String)>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as("SELECT seq, id FROM events WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(row.map(|(seq, id)| (seq as u64, id)))
    }

    /// How many events are stored under `key` (0 or 1).
    pub async fn count_key(&self, key: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE key = ?")
            .bind(key)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(n as u64)
    }

    /// The newest dead letters, newest first.
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let rows =
            sqlx::query("SELECT source, received_at_us, reason, payload FROM dead_letters ORDER BY id DESC LIMIT ?")
                .bind(i64::from(limit))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(StoreError::from_sqlx)?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                source: r.get(0),
                received_at: Timestamp::from_microsecond(r.get(1)).unwrap_or(Timestamp::UNIX_EPOCH),
                reason: r.get(2),
                payload: r.get(3),
            })
            .collect())
    }

    /// The directory images are stored under.
    pub fn images_root(&self) -> &Path {
        self.inner.images.root()
    }

    /// The zones counted in the write transaction, if any.
    pub fn occupancy(&self) -> Option<&Arc<Occupancy>> {
        self.inner.occupancy.as_ref()
    }

    /// The read-only connection pool (for queries of other modules, e.g. occupancy).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }
}

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[cfg(test)]
mod tests;
