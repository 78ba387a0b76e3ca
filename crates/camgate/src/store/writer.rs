//! The one task that writes to SQLite: group commit of everything queued.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Row, SqliteConnection};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Appended, PreparedEvent, StoreError, StoredEvent, WriteOp};
use crate::bus::{Bus, Committed};
use crate::metrics::{Metrics, ReasonLabels, SourceLabels};
use crate::occupancy::{self, Occupancy};

/// Rows per multi-row INSERT: 9 columns × 64 rows stays far below SQLite's bind limit and
/// gives at most 64 distinct statements for sqlx's statement cache.
const ROWS_PER_INSERT: usize = 64;

/// How long an empty queue is re-checked before a batch closes (see [`Spin`]).
const SPIN_WINDOW: Duration = Duration::from_micros(80);

/// Re-checking an empty queue for a few microseconds before a batch closes.
///
/// The writer runs on a thread of its own, so `yield_now().await` returns at once without
/// letting any producer run, and tokio's timers are millisecond-grained, a thousand times
/// too coarse. Under load, producers on the other runtime threads queue their next write
/// within microseconds of the previous commit: waiting up to [`SPIN_WINDOW`] for it lets
/// batches grow (`store/group_commit` in `scripts/bench`: about 34k -> 41k events/s on 2
/// cores). With one CPU the producers cannot run while the writer waits, so it only yields
/// once, as before: the Dahua 5,000-stream benchmark pins camgate to one core, and there an
/// 80 µs wait raised p99 from about 35 to 60 ms.
#[derive(Debug)]
pub(super) struct Spin {
    window: Duration,
}

impl Spin {
    pub fn new() -> Spin {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Spin { window: if cpus > 1 { SPIN_WINDOW } else { Duration::ZERO } }
    }

    async fn wait(&self, rx: &mut mpsc::Receiver<WriteOp>, deadline: Instant) -> Option<WriteOp> {
        if self.window.is_zero() {
            // One CPU: one turn for the checkpoint task on this runtime, then one more look.
            tokio::task::yield_now().await;
            return rx.try_recv().ok();
        }
        // The standard clock: this wait is real time even where a test pauses tokio's.
        let until = std::cmp::min(std::time::Instant::now() + self.window, deadline.into_std());
        loop {
            std::thread::yield_now();
            match rx.try_recv() {
                Ok(op) => return Some(op),
                Err(mpsc::error::TryRecvError::Empty) if std::time::Instant::now() < until => {}
                Err(_) => return None,
            }
        }
    }
}

pub(super) struct Writer {
    pub conn: SqliteConnection,
    pub rx: mpsc::Receiver<WriteOp>,
    pub head: watch::Sender<u64>,
    pub batch_max: usize,
    pub linger: Duration,
    pub metrics: Arc<Metrics>,
    pub bus: Bus,
    /// Zones to count in each transaction; `None` costs nothing.
    pub occupancy: Option<Arc<Occupancy>>,
    /// Held for each transaction; the checkpoint task takes it to hold writes while it
    /// folds the whole WAL back in (see `Store::open`).
    pub gate: Arc<Mutex<()>>,
    pub spin: Spin,
}

impl Writer {
    pub async fn run(mut self, close: CancellationToken) {
        let mut closing = false;
        loop {
            let first = if closing {
                self.rx.recv().await
            } else {
                tokio::select! {
                    op = self.rx.recv() => op,
                    () = close.cancelled() => {
                        // No new writes; what is queued still commits.
                        self.rx.close();
                        closing = true;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            let batch = self.collect(first, closing).await;
            self.commit(batch).await;
        }
        if let Err(e) = self.conn.close().await {
            tracing::warn!(error = %e, "closing the database connection");
        }
        tracing::debug!("store writer stopped");
    }

    /// Gather ops for one transaction. The batch closes at `batch_max` events, `linger`
    /// after its first op, or as soon as the queue is still empty after the producers had
    /// one chance to run ([`Spin`]): waiting longer would only add latency. Producers woken by the
    /// previous commit queue their next writes meanwhile, so under load batches grow by
    /// themselves (group commit without a fixed delay; a timer wait here cost 3 ms per
    /// batch and capped throughput at about 16k events/s, see `scripts/bench`).
    async fn collect(&mut self, first: WriteOp, closing: bool) -> Vec<WriteOp> {
        let deadline = Instant::now() + self.linger;
        let mut weight = first.weight();
        let mut batch = vec![first];
        while weight < self.batch_max && Instant::now() < deadline {
            let op = match self.rx.try_recv() {
                Ok(op) => op,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) if closing => break,
                Err(mpsc::error::TryRecvError::Empty) => match self.spin.wait(&mut self.rx, deadline).await {
                    Some(op) => op,
                    None => break,
                },
            };
            weight += op.weight();
            batch.push(op);
        }
        batch
    }

    async fn commit(&mut self, mut batch: Vec<WriteOp>) {
        let gate = self.gate.clone();
        let _gate = match gate.try_lock() {
            Ok(g) => g,
            Err(_) => {
                // The checkpoint task holds writes for a moment: whatever queued meanwhile
                // joins this transaction.
                let g = gate.lock().await;
                let mut weight: usize = batch.iter().map(WriteOp::weight).sum();
                while weight < self.batch_max {
                    let Ok(op) = self.rx.try_recv() else { break };
                    weight += op.weight();
                    batch.push(op);
                }
                g
            }
        };
        let started = std::time::Instant::now();
        let events: usize =
            batch.iter().map(|op| if let WriteOp::Append { events, .. } = op { events.len() } else { 0 }).sum();
        let result = write_batch(&mut self.conn, &batch, self.occupancy.as_deref()).await;
        drop(_gate);
        let elapsed = started.elapsed();
        self.metrics.writer_commit_seconds.observe(elapsed.as_secs_f64());
        if events > 0 {
            self.metrics.writer_batch_events.observe(events as f64);
        }
        let (outcomes, derived) = match result {
            Ok(o) => o,
            Err(e) => {
                self.metrics.writer_errors.get_or_create(&ReasonLabels::new(error_reason(&e))).inc();
                tracing::error!(error = %e, ops = batch.len(), events, "store write failed; the writes are refused");
                for op in batch {
                    match op {
                        WriteOp::Append { reply, .. } => drop(reply.send(Err(e.clone()))),
                        WriteOp::DeadLetter { reply, .. }
                        | WriteOp::SetCursor { reply, .. }
                        | WriteOp::SetSourceCursors { reply, .. } => drop(reply.send(Err(e.clone()))),
                    }
                }
                return;
            }
        };
        // Answers wait until the committed events are published, in this order: the sinks'
        // feed first, so that a sink that sees the head move finds the events up to it
        // already waiting there; then the head, before anyone is answered, because whoever
        // hears "committed" (a source, then a sink told to stop) must already see it; then
        // the live bus. Events that are not history are invisible to readers: they are not
        // published and never move the head.
        let mut stored: Vec<Arc<StoredEvent>> = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        let mut outcomes = outcomes.into_iter();
        for op in batch {
            match op {
                WriteOp::Append { events, reply } => {
                    let results: Vec<Appended> = outcomes.by_ref().take(events.len()).collect();
                    for (p, r) in events.into_iter().zip(&results) {
                        let labels = self.metrics.event_labels(&p.event.source, p.event.kind);
                        match r {
                            Appended::New(_) if !p.history => {
                                self.metrics.events_not_history.get_or_create(&labels).inc();
                            }
                            Appended::New(seq) => {
                                self.metrics.events_stored.get_or_create(&labels).inc();
                                stored.push(Arc::new(StoredEvent { seq: *seq, event: p.event, json: p.json.into() }));
                            }
                            Appended::Duplicate => {
                                self.metrics.events_duplicate.get_or_create(&labels).inc();
                            }
                        }
                    }
                    replies.push(Reply::Append(reply, results));
                }
                WriteOp::DeadLetter { letter, reply } => {
                    self.metrics
                        .dead_letters
                        .get_or_create(&SourceLabels { source: self.metrics.source_label(&letter.source) })
                        .inc();
                    replies.push(Reply::Done(reply));
                }
                WriteOp::SetCursor { reply, .. } | WriteOp::SetSourceCursors { reply, .. } => {
                    replies.push(Reply::Done(reply));
                }
            }
        }
        // Events the transaction made itself (capacity alarms); their seqs follow the batch's.
        for d in derived {
            self.metrics.events_stored.get_or_create(&self.metrics.event_labels(&d.event.source, d.event.kind)).inc();
            stored.push(Arc::new(d));
        }
        stored.sort_unstable_by_key(|e| e.seq);
        if let Some(last) = stored.last().map(|e| e.seq) {
            let mut after = *self.head.borrow();
            self.bus.publish_committed(stored.iter().map(|e| {
                let c = Committed { after, event: e.clone() };
                after = e.seq;
                c
            }));
            self.head.send_if_modified(|h| {
                let changed = last > *h;
                *h = (*h).max(last);
                changed
            });
        }
        for e in stored {
            self.bus.publish(e);
        }
        for r in replies {
            match r {
                Reply::Append(reply, results) => drop(reply.send(Ok(results))),
                Reply::Done(reply) => drop(reply.send(Ok(()))),
            }
        }
    }
}

/// An answer to send once the batch's events are published.
enum Reply {
    Append(oneshot::Sender<Result<Vec<Appended>, StoreError>>, Vec<Appended>),
    Done(oneshot::Sender<Result<(), StoreError>>),
}

fn error_reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::Full(_) => "full",
        StoreError::Closed => "closed",
        StoreError::Database(_) | StoreError::Corrupt { .. } => "database",
        StoreError::Image(_) => "image",
    }
}

fn micros(t: jiff::Timestamp) -> i64 {
    t.as_microsecond()
}

/// Write every op of the batch in one transaction. Returns the append outcomes of all
/// `Append` ops, flattened in order, and the events the transaction derived from them
/// (occupancy capacity alarms), already stored.
async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[WriteOp],
    occupancy: Option<&Occupancy>,
) -> Result<(Vec<Appended>, Vec<StoredEvent>), StoreError> {
    let mut tx = conn.begin().await.map_err(StoreError::from_sqlx)?;
    let all: Vec<&PreparedEvent> = batch
        .iter()
        .flat_map(|op| match op {
            WriteOp::Append { events, .. } => events.as_slice(),
            _ => &[],
        })
        .collect();
    // The first occurrence of a key in the batch is the one that may be new.
    let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(all.len());
    let unique: Vec<&PreparedEvent> = all
        .iter()
        .enumerate()
        .filter(|(i, p)| *first_of.entry(p.event.key.as_str()).or_insert(*i) == *i)
        .map(|(_, p)| *p)
        .collect();
    let mut inserted: HashMap<String, u64> = HashMap::with_capacity(unique.len());
    for chunk in unique.chunks(ROWS_PER_INSERT) {
        // Leave out keys already stored. (INSERT ... ON CONFLICT DO NOTHING would do it in one
        // statement, but SQLite spends an AUTOINCREMENT value on every ignored row, leaving
        // gaps in `seq`.)
        let mut sql = String::with_capacity(48 + chunk.len() * 2);
        sql.push_str("SELECT key FROM events WHERE key IN (");
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "?" } else { ",?" });
        }
        sql.push(')');
        let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for p in chunk {
            q = q.bind(p.event.key.as_str());
        }
        let existing: std::collections::HashSet<String> =
            q.fetch_all(&mut *tx).await.map_err(StoreError::from_sqlx)?.into_iter().collect();
        let fresh: Vec<&&PreparedEvent> = chunk.iter().filter(|p| !existing.contains(&p.event.key)).collect();
        if fresh.is_empty() {
            continue;
        }
        let mut sql = String::with_capacity(120 + fresh.len() * 20);
        sql.push_str(
            "INSERT INTO events (key, id, source, vendor, kind, occurred_at_us, received_at_us, body, history) VALUES ",
        );
        for i in 0..fresh.len() {
            sql.push_str(if i == 0 { "(?,?,?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?,?,?)" });
        }
        sql.push_str(" RETURNING seq, key");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for p in fresh {
            let e = &p.event;
            q = q
                .bind(e.key.as_str())
                .bind(e.id.to_string())
                .bind(e.source.as_str())
                .bind(vendor_str(e.vendor))
                .bind(e.kind.as_str())
                .bind(e.occurred_at.map(micros))
                .bind(micros(e.received_at))
                .bind(p.json.as_str())
                .bind(p.history);
        }
        for row in q.fetch_all(&mut *tx).await.map_err(StoreError::from_sqlx)? {
            inserted.insert(row.get::<String, _>(1), row.get::<i64, _>(0) as u64);
        }
    }
    let mut derived = Vec::new();
    if let Some(occ) = occupancy
        && !inserted.is_empty()
    {
        // Only events whose key was new are counted, in the order they were stored.
        let mut fresh: Vec<(u64, &camgate_core::Event)> =
            unique.iter().filter_map(|p| inserted.get(p.event.key.as_str()).map(|seq| (*seq, &p.event))).collect();
        fresh.sort_unstable_by_key(|(seq, _)| *seq);
        let now = jiff::Timestamp::now();
        for event in occupancy::apply(occ, &mut tx, &fresh, now).await.map_err(StoreError::from_sqlx)? {
            let json = serde_json::to_string(&event)
                .map_err(|e| StoreError::Database(format!("event {} cannot be written as JSON: {e}", event.key)))?;
            if let Some(seq) = insert_one(&mut tx, &event, &json).await? {
                derived.push(StoredEvent { seq, event, json: json.into() });
            }
        }
    }
    for op in batch {
        match op {
            WriteOp::DeadLetter { letter, .. } => {
                sqlx::query("INSERT INTO dead_letters (source, received_at_us, reason, payload) VALUES (?, ?, ?, ?)")
                    .bind(letter.source.as_str())
                    .bind(micros(letter.received_at))
                    .bind(letter.reason.as_str())
                    .bind(letter.payload.as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_sqlx)?;
            }
            WriteOp::SetCursor { sink, seq, .. } => {
                sqlx::query(
                    "INSERT INTO sink_cursors (sink, seq, updated_at_us) VALUES (?, ?, ?) \
                     ON CONFLICT (sink) DO UPDATE SET seq = MAX(seq, excluded.seq), updated_at_us = excluded.updated_at_us",
                )
                .bind(sink.as_str())
                .bind(*seq as i64)
                .bind(micros(jiff::Timestamp::now()))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            }
            WriteOp::SetSourceCursors { source, cursors, .. } => {
                let now = micros(jiff::Timestamp::now());
                for chunk in cursors.chunks(ROWS_PER_INSERT) {
                    let mut sql =
                        String::from("INSERT INTO source_cursors (source, key, value, updated_at_us) VALUES ");
                    for i in 0..chunk.len() {
                        sql.push_str(if i == 0 { "(?,?,?,?)" } else { ",(?,?,?,?)" });
                    }
                    sql.push_str(
                        " ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, updated_at_us = excluded.updated_at_us",
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (key, value) in chunk {
                        q = q.bind(source.as_str()).bind(key.as_str()).bind(value.as_str()).bind(now);
                    }
                    q.execute(&mut *tx).await.map_err(StoreError::from_sqlx)?;
                }
            }
            WriteOp::Append { .. } => {}
        }
    }
    tx.commit().await.map_err(StoreError::from_sqlx)?;
    let outcomes = all
        .iter()
        .enumerate()
        .map(|(i, p)| match inserted.get(p.event.key.as_str()) {
            Some(seq) if first_of[p.event.key.as_str()] == i => Appended::New(*seq),
            _ => Appended::Duplicate,
        })
        .collect();
    Ok((outcomes, derived))
}

/// Insert one event unless its key is stored; its seq when it was inserted.
async fn insert_one(
    conn: &mut SqliteConnection,
    e: &camgate_core::Event,
    json: &str,
) -> Result<Option<u64>, StoreError> {
    let seq: Option<i64> = sqlx::query_scalar(
        "INSERT INTO events (key, id, source, vendor, kind, occurred_at_us, received_at_us, body) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING seq",
    )
    .bind(e.key.as_str())
    .bind(e.id.to_string())
    .bind(e.source.as_str())
    .bind(vendor_str(e.vendor))
    .bind(e.kind.as_str())
    .bind(e.occurred_at.map(micros))
    .bind(micros(e.received_at))
    .bind(json)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(seq.map(|s| s as u64))
}

fn vendor_str(v: camgate_core::Vendor) -> &'static str {
    use camgate_core::Vendor::*;
    match v {
        Dahua => "dahua",
        Hikvision => "hikvision",
        Viewtron => "viewtron",
        Avigilon => "avigilon",
        Generic => "generic",
    }
}
