//! Drives one sink: deliver what is committed after the cursor, save the cursor, retry on
//! failure.
//!
//! A sink that is behind reads the store after its cursor. One that has caught up takes the
//! committed events from the store's feed ([`Store::subscribe_committed`]) instead, as long
//! as each one follows the last one delivered; a gap, a feed that fell behind or a failed
//! delivery sends it back to the store. Either way it delivers every stored event in seq
//! order, and the cursor moves only past delivered events.
//!
//! The cursor is saved in the store at most every `delivery.cursor_interval`, without the
//! delivery waiting for it, and when the sink stops. A restart after a crash therefore
//! re-delivers at most the events delivered since the last save (those of the last
//! `cursor_interval`, and the batch in flight); after a clean stop it re-delivers none.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_core::backoff::Backoff;
use camgate_core::config::DeliveryConfig;
use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Sink;
use crate::bus::{Bus, Committed};
use crate::metrics::{Metrics, SinkLabels};
use crate::store::{EventFilter, Store, StoreError, StoredEvent};

/// What a sink is doing, for `/api/sinks` and logs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkStatus {
    pub name: String,
    pub cursor: u64,
    pub lag_events: u64,
    pub delivered: u64,
    pub failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivery: Option<Timestamp>,
}

/// Runs one sink until `stop` is cancelled and it has caught up with the store.
pub struct SinkRunner {
    pub name: String,
    pub sink: Box<dyn Sink>,
    pub store: Store,
    pub delivery: DeliveryConfig,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Mutex<SinkStatus>>,
    /// Live-only events (never stored, `seq` 0) from the bus, delivered best-effort.
    live: Option<broadcast::Receiver<Arc<StoredEvent>>>,
}

/// Attempts at saving the cursor when the sink stops, and the first delay between them.
const FINAL_SAVE_ATTEMPTS: u32 = 3;
const FINAL_SAVE_RETRY: Duration = Duration::from_millis(100);

impl SinkRunner {
    pub fn new(name: &str, sink: Box<dyn Sink>, store: Store, delivery: DeliveryConfig, metrics: Arc<Metrics>) -> Self {
        let status = Arc::new(Mutex::new(SinkStatus { name: name.to_owned(), ..Default::default() }));
        SinkRunner { name: name.to_owned(), sink, store, delivery, metrics, status, live: None }
    }

    /// Also deliver the live-only events of `bus` (such as Viewtron traject with
    /// `traject = "live"`): best effort, between stored batches, never retried; missed ones
    /// are counted in `camgate_sink_live_dropped_total`.
    pub fn with_live(mut self, bus: &Bus) -> Self {
        self.live = Some(bus.subscribe_live());
        self
    }

    /// The next live-only event, or never when there is no live feed.
    async fn next_live(
        live: &mut Option<broadcast::Receiver<Arc<StoredEvent>>>,
        metrics: &Metrics,
        labels: &SinkLabels,
    ) -> Option<Arc<StoredEvent>> {
        let Some(rx) = live else { return std::future::pending().await };
        loop {
            match rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    metrics.sink_live_dropped.get_or_create(labels).inc_by(n);
                }
                Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut SinkStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Publish how far behind the sink is. `oldest`: when the oldest event not delivered yet
    /// was received, if the caller has it at hand; otherwise it is looked up.
    async fn publish_lag(&self, cursor: u64, head: u64, oldest: Option<Timestamp>) {
        let labels = Metrics::sink_labels(&self.name);
        let lag = head.saturating_sub(cursor);
        self.metrics.sink_lag_events.get_or_create(&labels).set(lag as i64);
        let oldest = match oldest {
            _ if lag == 0 => None,
            Some(t) => Some(t),
            None => self.store.received_at(cursor + 1).await.ok().flatten(),
        };
        let age = oldest.map_or(0.0, |t| (Timestamp::now() - t).total(jiff::Unit::Second).unwrap_or(0.0).max(0.0));
        self.metrics.sink_lag_seconds.get_or_create(&labels).set(age);
        self.update(|s| {
            s.cursor = cursor;
            s.lag_events = lag;
        });
    }

    /// Deliver until stopped. After `stop` it keeps going until it has delivered everything
    /// committed, unless a delivery fails: then it stops and the rest waits for next start.
    /// Either way it saves its cursor before it returns.
    pub async fn run(self, stop: CancellationToken) {
        let span = tracing::info_span!("sink", sink = %self.name);
        self.run_inner(stop).instrument(span).await
    }

    async fn run_inner(mut self, stop: CancellationToken) {
        let labels = Metrics::sink_labels(&self.name);
        let mut rng = rand::make_rng::<rand::rngs::StdRng>();
        let mut backoff = Backoff::new(self.delivery.retry_initial.get(), self.delivery.retry_max.get());
        let mut head_rx = self.store.watch_head();
        let mut cursor = loop {
            match self.store.cursor(&self.name).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the sink cursor; retrying");
                    if stop.is_cancelled() {
                        return;
                    }
                    tokio::time::sleep(backoff.next_delay(&mut rng)).await;
                }
            }
        };
        backoff.reset();
        let mut saver = CursorSaver::new(&self.store, &self.name, cursor, self.delivery.cursor_interval.get());
        let limit = self.delivery.batch.max(1);
        // Committed events, while the sink has caught up (`None` while it reads the store).
        let mut feed: Option<broadcast::Receiver<Committed>> = None;
        // Events from the feed that follow the cursor without a gap, not delivered yet.
        let mut carry: Vec<Arc<StoredEvent>> = Vec::new();
        tracing::info!(cursor, head = self.store.head(), "sink started");
        loop {
            let head = *head_rx.borrow_and_update();
            if let Some(rx) = &mut feed
                && !take_from_feed(rx, cursor, &mut carry, limit)
            {
                // A gap or a feed that fell behind: what is missing is in the store.
                feed = None;
            }
            let batch: Vec<Arc<StoredEvent>> = if !carry.is_empty() {
                carry.drain(..carry.len().min(limit)).collect()
            } else if cursor < head {
                match self.store.read_after(cursor, limit as u32, &EventFilter::default()).await {
                    Ok(b) if b.is_empty() => {
                        // Nothing stored between cursor and head: the events were removed.
                        tracing::warn!(cursor, head, "no stored events after the cursor below the head; moving on");
                        cursor = head;
                        continue;
                    }
                    Ok(b) => b.into_iter().map(Arc::new).collect(),
                    Err(e) => {
                        tracing::error!(error = %e, cursor, "cannot read events for the sink");
                        if !self.pause(&mut backoff, &mut rng, &stop).await {
                            break;
                        }
                        continue;
                    }
                }
            } else {
                // Caught up.
                self.publish_lag(cursor, head, None).await;
                if stop.is_cancelled() {
                    break;
                }
                if feed.is_none() {
                    // From now on committed events come from the feed; any committed before
                    // it was taken are read from the store (the head says so).
                    feed = Some(self.store.subscribe_committed());
                    continue;
                }
                let save_at = saver.due(cursor);
                tokio::select! {
                    changed = head_rx.changed() => if changed.is_err() { break },
                    () = stop.cancelled() => {}
                    () = sleep_until(save_at) => saver.save(cursor),
                    () = saver.saved() => {}
                    Some(e) = Self::next_live(&mut self.live, &self.metrics, &labels) => {
                        if let Err(err) = self.sink.deliver(std::slice::from_ref(&e)).await {
                            self.metrics.sink_live_dropped.get_or_create(&labels).inc();
                            tracing::debug!(error = %err, "a live-only event was not delivered");
                        }
                    }
                }
                continue;
            };
            self.publish_lag(cursor, head.max(cursor), Some(batch[0].event.received_at)).await;
            let last = batch.last().map_or(cursor, |e| e.seq);
            match self.sink.deliver(&batch).await {
                Ok(()) => {
                    backoff.reset();
                    self.metrics.sink_delivered.get_or_create(&labels).inc_by(batch.len() as u64);
                    cursor = last;
                    self.update(|s| {
                        s.cursor = cursor;
                        s.delivered += batch.len() as u64;
                        s.last_delivery = Some(Timestamp::now());
                        s.last_error = None;
                    });
                    if saver.interval.is_zero() {
                        // Saved before the next delivery, retried until it sticks: a lost
                        // cursor means re-delivery after a restart.
                        while let Err(e) = saver.save_now(cursor).await {
                            tracing::warn!(error = %e, seq = cursor, "cannot save the sink cursor; retrying");
                            if !self.pause(&mut backoff, &mut rng, &stop).await {
                                break;
                            }
                        }
                    } else if saver.due(cursor).is_some_and(|at| at <= Instant::now()) {
                        saver.save(cursor);
                    }
                }
                Err(e) => {
                    // Retried from the store; the feed would only hold events meanwhile.
                    feed = None;
                    carry.clear();
                    self.metrics.sink_failures.get_or_create(&labels).inc();
                    self.update(|s| {
                        s.failures += 1;
                        s.last_error = Some(e.0.clone());
                    });
                    if stop.is_cancelled() {
                        tracing::warn!(error = %e, undelivered = head.saturating_sub(cursor), "sink failed while stopping; the rest is delivered after the next start");
                        break;
                    }
                    tracing::warn!(error = %e, attempt = backoff.attempts() + 1, first_seq = cursor + 1, "sink delivery failed; retrying");
                    if !self.pause(&mut backoff, &mut rng, &stop).await {
                        break;
                    }
                }
            }
        }
        saver.finish(cursor).await;
        let head = self.store.head();
        self.publish_lag(cursor, head, None).await;
        tracing::info!(cursor, undelivered = head.saturating_sub(cursor), "sink stopped");
    }

    /// Wait the next back-off delay. Returns false when stopping makes waiting pointless.
    async fn pause(&self, backoff: &mut Backoff, rng: &mut rand::rngs::StdRng, stop: &CancellationToken) -> bool {
        let delay: Duration = backoff.next_delay(rng);
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = stop.cancelled() => false,
        }
    }
}

/// Move the feed's events that follow `cursor` (and the events already in `carry`) without
/// a gap into `carry`, until it holds `limit` or the feed has no more waiting. Returns false
/// when the feed cannot be used any more: it fell behind, or an event does not follow.
fn take_from_feed(
    rx: &mut broadcast::Receiver<Committed>,
    cursor: u64,
    carry: &mut Vec<Arc<StoredEvent>>,
    limit: usize,
) -> bool {
    let mut last = carry.last().map_or(cursor, |e| e.seq);
    while carry.len() < limit {
        match rx.try_recv() {
            Ok(c) if c.event.seq <= last => {}
            Ok(c) if c.after == last => {
                last = c.event.seq;
                carry.push(c.event);
            }
            Ok(_) => return false,
            Err(broadcast::error::TryRecvError::Empty) => break,
            Err(broadcast::error::TryRecvError::Lagged(_) | broadcast::error::TryRecvError::Closed) => return false,
        }
    }
    true
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Saves a sink's cursor in the store: in the background at most every `interval`, and at
/// the end.
struct CursorSaver {
    store: Store,
    name: String,
    interval: Duration,
    /// The cursor as last saved.
    saved: u64,
    /// When the last save was started.
    last: Instant,
    /// A save in progress: the cursor it saves.
    pending: Option<(u64, JoinHandle<Result<(), StoreError>>)>,
}

impl CursorSaver {
    fn new(store: &Store, name: &str, saved: u64, interval: Duration) -> Self {
        CursorSaver {
            store: store.clone(),
            name: name.to_owned(),
            interval,
            saved,
            last: Instant::now(),
            pending: None,
        }
    }

    /// When `cursor` should be saved next, if it needs saving and no save is in progress.
    fn due(&mut self, cursor: u64) -> Option<Instant> {
        self.check();
        (self.pending.is_none() && cursor > self.saved).then(|| self.last + self.interval)
    }

    /// Start saving `cursor` in the background.
    fn save(&mut self, cursor: u64) {
        self.check();
        if self.pending.is_some() || cursor <= self.saved {
            return;
        }
        self.last = Instant::now();
        let (store, name) = (self.store.clone(), self.name.clone());
        self.pending = Some((cursor, tokio::spawn(async move { store.set_cursor(&name, cursor).await })));
    }

    /// Save `cursor` and wait for it.
    async fn save_now(&mut self, cursor: u64) -> Result<(), StoreError> {
        self.wait().await;
        if cursor > self.saved {
            self.last = Instant::now();
            self.store.set_cursor(&self.name, cursor).await?;
            self.saved = cursor;
        }
        Ok(())
    }

    /// Resolves when the save in progress has finished (never when there is none).
    async fn saved(&mut self) {
        match &mut self.pending {
            Some((seq, task)) => {
                let seq = *seq;
                let outcome = task.await;
                self.pending = None;
                self.settle(seq, Some(outcome));
            }
            None => std::future::pending().await,
        }
    }

    /// Take the outcome of a finished save.
    fn check(&mut self) {
        if self.pending.as_ref().is_some_and(|(_, task)| task.is_finished()) {
            let (seq, task) = self.pending.take().expect("checked");
            self.settle(seq, futures::FutureExt::now_or_never(task));
        }
    }

    /// Wait for the save in progress, if any.
    async fn wait(&mut self) {
        if let Some((seq, task)) = self.pending.take() {
            self.settle(seq, Some(task.await));
        }
    }

    fn settle(&mut self, seq: u64, outcome: Option<Result<Result<(), StoreError>, tokio::task::JoinError>>) {
        match outcome {
            Some(Ok(Ok(()))) => self.saved = self.saved.max(seq),
            Some(Ok(Err(e))) => tracing::warn!(error = %e, seq, "cannot save the sink cursor; trying again later"),
            Some(Err(e)) => {
                tracing::warn!(error = %e, seq, "the task saving the sink cursor failed; trying again later")
            }
            None => {}
        }
    }

    /// Save `cursor` before the sink stops: a few attempts, then it gives up and says what a
    /// restart will deliver again.
    async fn finish(&mut self, cursor: u64) {
        let mut delay = FINAL_SAVE_RETRY;
        for attempt in 1..=FINAL_SAVE_ATTEMPTS {
            match self.save_now(cursor).await {
                Ok(()) => return,
                Err(e) if attempt == FINAL_SAVE_ATTEMPTS => {
                    tracing::error!(
                        error = %e,
                        seq = cursor,
                        saved = self.saved,
                        "cannot save the sink cursor; the events after the saved one are delivered again after the next start"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, seq = cursor, attempt, "cannot save the sink cursor; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}
