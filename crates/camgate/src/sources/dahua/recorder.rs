//! Where one Dahua device's output goes: events and dead letters to the store, health to the
//! registry, counters to the metrics.

use std::sync::Arc;
use std::time::Duration;

use camgate_core::config::DahuaCamera;
use camgate_core::{Event, EventId, Kind, State, Vendor};
use camgate_protocols::dahua::{DataError, Normalised};
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, PostLabels};
use crate::sources::SourceHandle;
use crate::store::{Appended, DeadLetter, Store, StoreError};

/// How long to wait before trying a store write again that failed (disk full, ...). The
/// stream is not read meanwhile: the device's TCP buffer holds what it sends.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// One device's way into the store.
pub struct Recorder {
    pub camera: Arc<DahuaCamera>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub health: SourceHandle,
}

/// Identifies one connection in event keys, so that events without a device event id stay
/// apart, across reconnects and restarts too.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// Milliseconds since the epoch when the stream started.
    pub started_ms: i64,
    /// Events seen on it so far.
    pub events: u64,
}

impl Recorder {
    /// The camgate event for a normalised record.
    pub fn to_event(&self, n: Normalised, conn: &mut Connection, received_at: Timestamp) -> Event {
        conn.events += 1;
        // The stream never replays an event, so only a device event id makes two records the
        // same event. A device time alone (to the second) does not: Start, Stop, Start on one
        // channel within a second are three events.
        let mut key = format!("dahua:{}:{}", self.camera.name, n.key);
        if !n.key_unique || n.event_id.is_none() {
            key.push_str(&format!("#{}.{}", conn.started_ms, conn.events));
        }
        // Alarm inputs are numbered by `index` too, but they are not video channels.
        let channel_source = if n.kind == Kind::AlarmInput { None } else { n.channel.map(|c| c.get()) };
        let mut data = n.data;
        if let (Some(err), Some(obj)) = (n.data_error, data.as_object_mut()) {
            let what = match err {
                DataError::Truncated => "truncated",
                DataError::Invalid => "invalid",
            };
            obj.insert("data_error".into(), what.into());
        }
        Event {
            id: EventId::new(),
            key,
            source: self.camera.source_for(channel_source).to_owned(),
            vendor: Vendor::Dahua,
            kind: n.kind,
            code: Some(n.code),
            state: n.state,
            channel: n.channel,
            rule: n.rule,
            occurred_at: n.occurred_at,
            received_at,
            plate: n.plate,
            face: None,
            objects: n.objects,
            counts: n.counts,
            data: Some(data),
            images: Vec::new(),
            schedule: None,
        }
    }

    /// Store events, retrying while the store cannot take them. `false` when `stop` came
    /// first (the events are then lost, and logged as such).
    pub async fn store(&self, events: Vec<Event>, stop: &CancellationToken) -> bool {
        if events.is_empty() {
            return true;
        }
        let mut warned = false;
        loop {
            match self.store.append_many(events.clone()).await {
                Ok(outcomes) => {
                    for o in outcomes {
                        self.health.event(matches!(o, Appended::New(_)));
                    }
                    return true;
                }
                Err(StoreError::Closed) => {
                    tracing::error!(device = %self.camera.name, lost = events.len(), "the store closed; events from the stream are lost");
                    return false;
                }
                Err(e) => {
                    if !warned {
                        tracing::error!(device = %self.camera.name, error = %e, pending = events.len(), "events could not be stored; retrying every second, the stream waits");
                        warned = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(STORE_RETRY) => {}
                        () = stop.cancelled() => {
                            tracing::error!(device = %self.camera.name, lost = events.len(), error = %e, "stopping with events that could not be stored");
                            return false;
                        }
                    }
                }
            }
        }
    }

    /// Keep a part nothing could read.
    pub async fn dead_letter(&self, reason: String, payload: Vec<u8>) {
        self.health.rejected(&reason);
        let letter =
            DeadLetter { source: self.camera.name.clone(), received_at: camgate_core::time::now_ms(), reason, payload };
        if let Err(e) = self.store.dead_letter(letter).await {
            tracing::warn!(device = %self.camera.name, error = %e, "could not store a dead letter");
        }
    }

    /// A `device` event: the connection to the device changed.
    pub async fn device_event(&self, code: &str, state: State, data: serde_json::Value) {
        let mut event = Event::new(String::new(), &self.camera.name, Vendor::Dahua, Kind::Device);
        event.key = format!("dahua:{}:{code}:{}", self.camera.name, event.received_at.as_millisecond());
        event.code = Some(code.into());
        event.state = Some(state);
        event.data = Some(data);
        match self.store.append(event).await {
            Ok(o) => self.health.event(matches!(o, Appended::New(_))),
            Err(e) => tracing::warn!(device = %self.camera.name, error = %e, "could not store the device event"),
        }
    }

    /// Count a part of the stream by what it was.
    pub fn count_part(&self, kind: &'static str) {
        self.metrics.dahua_parts.get_or_create(&PostLabels { kind: kind.to_owned() }).inc();
    }
}
