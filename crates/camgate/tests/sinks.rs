//! The outbox: a failing sink retries until it delivers every event once, in order, and
//! never holds up ingestion; cursors carry a sink over restarts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate::bus::Bus;
use camgate::metrics::Metrics;
use camgate::sinks::{Sink, SinkError, SinkRunner};
use camgate::store::{Appended, Store, StoreOptions, StoredEvent};
use camgate_core::config::{DeliveryConfig, Dur};
use camgate_core::{Event, Kind, Vendor};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// Fails the first `fail_first` deliveries, and keeps failing while `hold` is set.
#[derive(Clone, Default)]
struct Flaky {
    fail_first: usize,
    hold: Arc<AtomicBool>,
    attempts: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<(u64, String)>>>,
}

impl Sink for Flaky {
    fn deliver<'a>(&'a mut self, events: &'a [Arc<StoredEvent>]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first || self.hold.load(Ordering::SeqCst) {
                self.failures.fetch_add(1, Ordering::SeqCst);
                return Err(SinkError(format!("simulated outage (attempt {})", n + 1)));
            }
            self.received.lock().unwrap().extend(events.iter().map(|e| (e.seq, e.event.key.clone())));
            Ok(())
        })
    }
}

fn fast_retry() -> DeliveryConfig {
    DeliveryConfig { batch: 50, retry_initial: Dur::millis(5), retry_max: Dur::millis(40), ..Default::default() }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ev(i: usize) -> Event {
    Event::new(format!("k{i:05}"), "cam", Vendor::Generic, Kind::Motion)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_failing_n_times_then_recovering_gets_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.unwrap();
    let flaky = Flaky { fail_first: 5, ..Default::default() };
    flaky.hold.store(true, Ordering::SeqCst);
    let stop = CancellationToken::new();
    let runner = SinkRunner::new("flaky", Box::new(flaky.clone()), store.clone(), fast_retry(), metrics.clone());
    let task = tokio::spawn(runner.run(stop.clone()));

    for i in 0..100 {
        store.append(ev(i)).await.unwrap();
    }
    wait_for("five failures", || flaky.failures.load(Ordering::SeqCst) >= 5).await;
    // The sink is down; ingestion goes on regardless.
    for i in 100..600 {
        assert!(matches!(store.append(ev(i)).await.unwrap(), Appended::New(_)));
    }
    assert!(flaky.received.lock().unwrap().is_empty(), "nothing delivered while failing");
    let text = metrics.render();
    assert!(text.contains(r#"camgate_sink_failures_total{sink="flaky"}"#), "{text}");
    assert!(text.contains(r#"camgate_sink_lag_events{sink="flaky"}"#), "{text}");

    flaky.hold.store(false, Ordering::SeqCst);
    wait_for("every event", || flaky.received.lock().unwrap().len() >= 600).await;
    let got = flaky.received.lock().unwrap().clone();
    assert_eq!(got.len(), 600, "each event exactly once");
    let keys: Vec<String> = got.iter().map(|(_, k)| k.clone()).collect();
    let expected: Vec<String> = (0..600).map(|i| format!("k{i:05}")).collect();
    assert_eq!(keys, expected, "in order");
    assert!(got.windows(2).all(|w| w[0].0 + 1 == w[1].0), "seqs without gaps");

    stop.cancel();
    task.await.unwrap();
    assert_eq!(store.cursor("flaky").await.unwrap(), 600);
    assert!(metrics.render().contains(r#"camgate_sink_lag_events{sink="flaky"} 0"#));
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sink_continues_after_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.unwrap();
    store.append_many((0..30).map(ev).collect()).await.unwrap();
    let first = Flaky::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        SinkRunner::new("s", Box::new(first.clone()), store.clone(), fast_retry(), metrics.clone()).run(stop.clone()),
    );
    wait_for("first delivery", || first.received.lock().unwrap().len() == 30).await;
    stop.cancel();
    task.await.unwrap();
    writer.close().await;
    drop(store);

    let (store, writer) = Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.unwrap();
    store.append_many((30..40).map(ev).collect()).await.unwrap();
    let second = Flaky::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        SinkRunner::new("s", Box::new(second.clone()), store.clone(), fast_retry(), metrics.clone()).run(stop.clone()),
    );
    wait_for("second delivery", || second.received.lock().unwrap().len() >= 10).await;
    stop.cancel();
    task.await.unwrap();
    let keys: Vec<String> = second.received.lock().unwrap().iter().map(|(_, k)| k.clone()).collect();
    assert_eq!(keys, (30..40).map(|i| format!("k{i:05}")).collect::<Vec<_>>(), "only what it had not delivered");
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_sink_does_not_hold_up_another() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.unwrap();
    let down = Flaky::default();
    down.hold.store(true, Ordering::SeqCst);
    let up = Flaky::default();
    let stop = CancellationToken::new();
    let t1 = tokio::spawn(
        SinkRunner::new("down", Box::new(down.clone()), store.clone(), fast_retry(), metrics.clone()).run(stop.clone()),
    );
    let t2 = tokio::spawn(
        SinkRunner::new("up", Box::new(up.clone()), store.clone(), fast_retry(), metrics.clone()).run(stop.clone()),
    );
    store.append_many((0..200).map(ev).collect()).await.unwrap();
    wait_for("the healthy sink", || up.received.lock().unwrap().len() == 200).await;
    assert!(down.received.lock().unwrap().is_empty());
    stop.cancel();
    t1.await.unwrap();
    t2.await.unwrap();
    assert_eq!(store.cursor("down").await.unwrap(), 0, "a failed delivery never advances the cursor");
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jsonl_sink_writes_one_event_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.unwrap();
    let path = dir.path().join("out/events.jsonl");
    let sink = camgate::sinks::jsonl::JsonlSink::open(&path).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        SinkRunner::new("jsonl", Box::new(sink), store.clone(), fast_retry(), metrics.clone()).run(stop.clone()),
    );
    let mut e = ev(1);
    e.rule = Some("Line 1".into());
    store.append_many(vec![ev(0), e]).await.unwrap();
    stop.cancel();
    task.await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Event> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].rule.as_deref(), Some("Line 1"));
    assert!(!text.contains("\"seq\""), "jsonl carries the event model only");
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_is_saved_at_most_every_interval_and_when_the_sink_stops() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.unwrap();
    let sink = Flaky::default();
    let delivery = DeliveryConfig { cursor_interval: Dur::secs(3600), ..fast_retry() };
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        SinkRunner::new("s", Box::new(sink.clone()), store.clone(), delivery, metrics.clone()).run(stop.clone()),
    );
    for i in 0..120 {
        store.append(ev(i)).await.unwrap();
    }
    store.append_many((120..300).map(ev).collect()).await.unwrap();
    wait_for("every event", || sink.received.lock().unwrap().len() == 300).await;
    // Delivered, but the interval has not passed since the sink started: nothing saved yet,
    // and no transaction was spent on it.
    assert_eq!(store.cursor("s").await.unwrap(), 0);
    stop.cancel();
    task.await.unwrap();
    assert_eq!(store.cursor("s").await.unwrap(), 300, "saved when the sink stops");
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_a_sink_delivers_again_only_what_came_after_its_saved_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.unwrap();
    let delivery = DeliveryConfig { cursor_interval: Dur::secs(3600), ..fast_retry() };
    let start = |sink: &Flaky, stop: &CancellationToken| {
        tokio::spawn(
            SinkRunner::new("s", Box::new(sink.clone()), store.clone(), delivery.clone(), metrics.clone())
                .run(stop.clone()),
        )
    };
    // A clean stop saves the cursor.
    store.append_many((0..50).map(ev).collect()).await.unwrap();
    let (first, stop) = (Flaky::default(), CancellationToken::new());
    let task = start(&first, &stop);
    wait_for("the first 50", || first.received.lock().unwrap().len() == 50).await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(store.cursor("s").await.unwrap(), 50);

    // A crash (the task is killed) between two saves: what was delivered since the last
    // save is delivered again after the restart, and nothing is skipped.
    let (second, stop) = (Flaky::default(), CancellationToken::new());
    let task = start(&second, &stop);
    for i in 50..120 {
        store.append(ev(i)).await.unwrap();
    }
    wait_for("70 more", || second.received.lock().unwrap().len() == 70).await;
    task.abort();
    let _ = task.await;
    assert_eq!(store.cursor("s").await.unwrap(), 50, "no save since the last one");

    let (third, stop) = (Flaky::default(), CancellationToken::new());
    let task = start(&third, &stop);
    store.append_many((120..130).map(ev).collect()).await.unwrap();
    wait_for("the rest", || third.received.lock().unwrap().len() >= 80).await;
    stop.cancel();
    task.await.unwrap();
    let keys: Vec<String> = third.received.lock().unwrap().iter().map(|(_, k)| k.clone()).collect();
    assert_eq!(
        keys,
        (50..130).map(|i| format!("k{i:05}")).collect::<Vec<_>>(),
        "again from the saved cursor, in order"
    );
    assert_eq!(store.cursor("s").await.unwrap(), 130);
    writer.close().await;
}

/// Holds its deliveries while `hold` is set.
#[derive(Clone, Default)]
struct Held {
    hold: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<u64>>>,
}

impl Sink for Held {
    fn deliver<'a>(&'a mut self, events: &'a [Arc<StoredEvent>]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            while self.hold.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            self.received.lock().unwrap().extend(events.iter().map(|e| e.seq));
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_falls_behind_the_live_feed_reads_the_rest_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.unwrap();
    let sink = Held::default();
    sink.hold.store(true, Ordering::SeqCst);
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        SinkRunner::new("s", Box::new(sink.clone()), store.clone(), fast_retry(), metrics.clone()).run(stop.clone()),
    );
    // The sink has caught up (nothing stored) and follows the feed; its first delivery is
    // held while far more events commit than the feed keeps.
    store.append(ev(0)).await.unwrap();
    let n = camgate::bus::COMMITTED_CAPACITY * 3;
    for chunk in (1..n).collect::<Vec<_>>().chunks(100) {
        store.append_many(chunk.iter().map(|&i| ev(i)).collect()).await.unwrap();
    }
    sink.hold.store(false, Ordering::SeqCst);
    wait_for("every event", || sink.received.lock().unwrap().len() >= n).await;
    stop.cancel();
    task.await.unwrap();
    let seqs = sink.received.lock().unwrap().clone();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>(), "each event once, in order");
    writer.close().await;
}
