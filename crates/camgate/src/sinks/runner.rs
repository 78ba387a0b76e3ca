//! Drives one sink: read after the cursor, deliver, advance the cursor, retry on failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_core::backoff::Backoff;
use camgate_core::config::DeliveryConfig;
use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Sink;
use crate::bus::Bus;
use crate::metrics::{Metrics, SinkLabels};
use crate::store::{EventFilter, Store, StoredEvent};

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

    async fn publish_lag(&self, cursor: u64, head: u64) {
        let labels = Metrics::sink_labels(&self.name);
        let lag = head.saturating_sub(cursor);
        self.metrics.sink_lag_events.get_or_create(&labels).set(lag as i64);
        let age = if lag == 0 {
            0.0
        } else {
            match self.store.received_at(cursor + 1).await {
                Ok(Some(t)) => (Timestamp::now() - t).total(jiff::Unit::Second).unwrap_or(0.0).max(0.0),
                _ => 0.0,
            }
        };
        self.metrics.sink_lag_seconds.get_or_create(&labels).set(age);
        self.update(|s| {
            s.cursor = cursor;
            s.lag_events = lag;
        });
    }

    /// Deliver until stopped. After `stop` it keeps going until it has delivered everything
    /// committed, unless a delivery fails: then it stops and the rest waits for next start.
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
        tracing::info!(cursor, head = self.store.head(), "sink started");
        loop {
            let head = *head_rx.borrow_and_update();
            self.publish_lag(cursor, head).await;
            if cursor >= head {
                if stop.is_cancelled() {
                    break;
                }
                tokio::select! {
                    changed = head_rx.changed() => if changed.is_err() { break },
                    () = stop.cancelled() => {}
                    Some(e) = Self::next_live(&mut self.live, &self.metrics, &labels) => {
                        if let Err(err) = self.sink.deliver(std::slice::from_ref(&*e)).await {
                            self.metrics.sink_live_dropped.get_or_create(&labels).inc();
                            tracing::debug!(error = %err, "a live-only event was not delivered");
                        }
                    }
                }
                continue;
            }
            let batch = match self.store.read_after(cursor, self.delivery.batch as u32, &EventFilter::default()).await {
                Ok(b) if b.is_empty() => {
                    // Nothing stored between cursor and head: the events were removed.
                    tracing::warn!(cursor, head, "no stored events after the cursor below the head; moving on");
                    cursor = head;
                    continue;
                }
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, cursor, "cannot read events for the sink");
                    if !self.pause(&mut backoff, &mut rng, &stop).await {
                        break;
                    }
                    continue;
                }
            };
            let last = batch.last().map(|e| e.seq).unwrap_or(cursor);
            match self.sink.deliver(&batch).await {
                Ok(()) => {
                    backoff.reset();
                    self.metrics.sink_delivered.get_or_create(&labels).inc_by(batch.len() as u64);
                    // The cursor write goes through the store writer; it is retried until it
                    // sticks, because a lost cursor means redelivery after restart.
                    loop {
                        match self.store.set_cursor(&self.name, last).await {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, seq = last, "cannot save the sink cursor; retrying");
                                if !self.pause(&mut backoff, &mut rng, &stop).await {
                                    return;
                                }
                            }
                        }
                    }
                    cursor = last;
                    self.update(|s| {
                        s.delivered += batch.len() as u64;
                        s.last_delivery = Some(Timestamp::now());
                        s.last_error = None;
                    });
                }
                Err(e) => {
                    self.metrics.sink_failures.get_or_create(&labels).inc();
                    self.update(|s| {
                        s.failures += 1;
                        s.last_error = Some(e.0.clone());
                    });
                    if stop.is_cancelled() {
                        tracing::warn!(error = %e, undelivered = head - cursor, "sink failed while stopping; the rest is delivered after the next start");
                        break;
                    }
                    tracing::warn!(error = %e, attempt = backoff.attempts() + 1, first_seq = cursor + 1, "sink delivery failed; retrying");
                    if !self.pause(&mut backoff, &mut rng, &stop).await {
                        break;
                    }
                }
            }
        }
        let head = self.store.head();
        self.publish_lag(cursor, head).await;
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
