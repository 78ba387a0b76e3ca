//! Store throughput: group commit against the commit-per-event reference, side by side.
//!
//! * `store/group_commit`: [`PRODUCERS`] tasks on a multi-thread runtime, each appending
//!   small events one at a time with `Store::append` (each call returns after its commit).
//! * `store/append_many`: one producer appending batches of [`BATCH`] with `append_many`.
//! * `store/reference_commit_per_event`: what the replaced Python scripts do, one
//!   `BEGIN; INSERT; COMMIT` per event on a plain connection to a database with the same
//!   schema (WAL, `synchronous = NORMAL`, like the store).
//!
//! Every iteration uses a fresh temporary directory and fresh keys; opening, migrating and
//! closing the database are not timed (`iter_custom`). The element counts per iteration are
//! recorded as `Throughput::Elements`, which criterion writes to `new/benchmark.json`, where
//! `scripts/bench` reads them.
//!
//! For experiments, `CAMGATE_BENCH_PRODUCERS`, `CAMGATE_BENCH_BATCH_MAX` and
//! `CAMGATE_BENCH_LINGER_US` override the producer count and the store's `batch_max` and
//! `batch_linger` for `store/group_commit`. `CAMGATE_BENCH_ZONES=N` configures N occupancy
//! zones for `store/group_commit` and `store/append_many` (each zone counts the events of two
//! of the 16 sources, so every event is tested against every zone and 1 in 8 per zone counts):
//! the cost of counting in the write transaction.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate::bus::Bus;
use camgate::metrics::Metrics;
use camgate::store::{Appended, Store, StoreOptions};
use camgate_core::{Event, Kind, Vendor};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};

/// Concurrent producers in `store/group_commit`.
const PRODUCERS: usize = 64;
/// Events each producer appends per iteration in `store/group_commit`.
const PER_PRODUCER: usize = 100;
/// Events per `append_many` call.
const BATCH: usize = 1000;
/// `append_many` calls per iteration.
const BATCHES: usize = 20;
/// Events per iteration of the reference.
const REFERENCE_EVENTS: usize = 2000;

fn env_parse<T: FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    match v.parse() {
        Ok(v) => Some(v),
        Err(_) => panic!("{name}={v:?} is not a valid number"),
    }
}

/// How `store/group_commit` runs.
#[derive(Debug, Clone, Copy)]
struct GroupCommit {
    producers: usize,
    batch_max: Option<usize>,
    linger: Option<Duration>,
    zones: usize,
}

impl GroupCommit {
    fn from_env() -> Self {
        GroupCommit {
            producers: env_parse("CAMGATE_BENCH_PRODUCERS").unwrap_or(PRODUCERS),
            batch_max: env_parse("CAMGATE_BENCH_BATCH_MAX"),
            linger: env_parse("CAMGATE_BENCH_LINGER_US").map(Duration::from_micros),
            zones: env_parse("CAMGATE_BENCH_ZONES").unwrap_or(0),
        }
    }

    fn options(&self, dir: &std::path::Path) -> StoreOptions {
        let mut o = StoreOptions::in_dir(dir);
        if let Some(n) = self.batch_max {
            o.batch_max = n;
        }
        if let Some(l) = self.linger {
            o.batch_linger = l;
        }
        o.occupancy = zones(self.zones);
        o
    }
}

/// `n` zones over the bench's 16 sources (none for 0).
fn zones(n: usize) -> Option<Arc<camgate::occupancy::Occupancy>> {
    if n == 0 {
        return None;
    }
    let text: String = (0..n)
        .map(|z| {
            format!(
                "[[zone]]\nname = \"zone-{z}\"\ncapacity = 1000\n\
                 enter = [{{ source = {{ equals = \"cam-{}\" }}, kind = {{ equals = \"motion\" }} }}]\n\
                 exit = [{{ source = {{ equals = \"cam-{}\" }} }}, {{ name = {{ contains = \"salida\" }} }}]\n",
                (2 * z) % 16,
                (2 * z + 1) % 16
            )
        })
        .collect();
    let config = camgate_core::config::Config::from_toml(&text, "bench").expect("bench zones");
    camgate::occupancy::Occupancy::from_config(&config)
}

/// A small event with a key unique within its database.
fn event(i: usize) -> Event {
    Event::new(format!("bench:{i}"), format!("cam-{}", i % 16), Vendor::Generic, Kind::Motion)
}

async fn open_store(options: StoreOptions) -> (Store, camgate::store::Writer) {
    Store::open(options, Arc::new(Metrics::new()), Bus::default()).await.expect("opening the bench store")
}

/// One iteration of `store/group_commit`; returns the time the appends took.
async fn group_commit_once(cfg: GroupCommit) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, writer) = open_store(cfg.options(dir.path())).await;
    let work: Vec<Vec<Event>> =
        (0..cfg.producers).map(|p| (0..PER_PRODUCER).map(|i| event(p * PER_PRODUCER + i)).collect()).collect();
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|events| {
            let store = store.clone();
            tokio::spawn(async move {
                for e in events {
                    let outcome = store.append(e).await.expect("append");
                    assert!(matches!(outcome, Appended::New(_)), "a fresh key was stored as {outcome:?}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("producer task");
    }
    let elapsed = started.elapsed();
    writer.close().await;
    elapsed
}

/// One iteration of `store/append_many`.
async fn append_many_once(zone_count: usize) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = StoreOptions::in_dir(dir.path());
    options.occupancy = zones(zone_count);
    let (store, writer) = open_store(options).await;
    let batches: Vec<Vec<Event>> = (0..BATCHES).map(|b| (0..BATCH).map(|i| event(b * BATCH + i)).collect()).collect();
    let started = Instant::now();
    for batch in batches {
        let outcomes = store.append_many(batch).await.expect("append_many");
        assert!(outcomes.iter().all(|o| matches!(o, Appended::New(_))), "fresh keys were not all stored");
    }
    let elapsed = started.elapsed();
    writer.close().await;
    elapsed
}

const REFERENCE_INSERT: &str = "INSERT INTO events (key, id, source, vendor, kind, occurred_at_us, received_at_us, body) \
                                VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// One iteration of `store/reference_commit_per_event`: serialise, `BEGIN`, `INSERT`,
/// `COMMIT` for every event, as Python's `sqlite3` does with `execute` + `commit()`.
async fn reference_once() -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("reference.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let mut conn = SqliteConnection::connect_with(&options).await.expect("opening the reference database");
    sqlx::migrate!("./migrations").run(&mut conn).await.expect("migrating the reference database");
    let events: Vec<Event> = (0..REFERENCE_EVENTS).map(event).collect();
    let started = Instant::now();
    for e in events {
        let body = serde_json::to_string(&e).expect("events serialise");
        let mut tx = conn.begin().await.expect("begin");
        sqlx::query(REFERENCE_INSERT)
            .bind(e.key.as_str())
            .bind(e.id.to_string())
            .bind(e.source.as_str())
            .bind("generic")
            .bind(e.kind.as_str())
            .bind(e.occurred_at.map(|t| t.as_microsecond()))
            .bind(e.received_at.as_microsecond())
            .bind(body)
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    }
    let elapsed = started.elapsed();
    conn.close().await.expect("closing the reference database");
    elapsed
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn store_benches(c: &mut Criterion) {
    let rt = runtime();
    let cfg = GroupCommit::from_env();
    if cfg.producers != PRODUCERS || cfg.batch_max.is_some() || cfg.linger.is_some() || cfg.zones > 0 {
        eprintln!("store/group_commit runs with overrides: {cfg:?}");
    }
    let mut group = c.benchmark_group("store");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(10));

    group.throughput(Throughput::Elements((cfg.producers * PER_PRODUCER) as u64));
    group.bench_function("group_commit", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += group_commit_once(cfg).await;
            }
            total
        })
    });

    group.throughput(Throughput::Elements((BATCH * BATCHES) as u64));
    group.bench_function("append_many", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += append_many_once(cfg.zones).await;
            }
            total
        })
    });

    group.throughput(Throughput::Elements(REFERENCE_EVENTS as u64));
    group.bench_function("reference_commit_per_event", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += reference_once().await;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
