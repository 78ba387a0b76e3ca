//! The daemon's Viewtron handler: events and dead letters to the store, health to the
//! registry, device events for first contact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use camgate_core::config::{TrajectMode, ViewtronCamera};
use camgate_core::{Event, EventId, Kind, State, Vendor};
use camgate_protocols::viewtron::{Device, ParseError, Parsed};
use futures::future::BoxFuture;
use jiff::Timestamp;

use super::{Handler, Peer, Unavailable};
use crate::bus::Bus;
use crate::metrics::{Metrics, PostLabels, SourceLabels};
use crate::sources::{Registry, SourceHandle, SourceState};
use crate::store::{Appended, DeadLetter, Store, StoredEvent};

/// Stores what Viewtron devices post.
pub struct StoreHandler {
    store: Store,
    bus: Bus,
    metrics: Arc<Metrics>,
    registry: Registry,
    traject: TrajectMode,
    /// Health handles by device name; configured cameras are registered up front.
    health: Mutex<HashMap<String, SourceHandle>>,
    /// When each device last posted, while it counts as connected.
    live: Mutex<HashMap<String, tokio::time::Instant>>,
}

impl StoreHandler {
    pub fn new(
        store: Store,
        bus: Bus,
        metrics: Arc<Metrics>,
        registry: Registry,
        traject: TrajectMode,
        cameras: &[ViewtronCamera],
    ) -> Self {
        let health = cameras
            .iter()
            .map(|c| (c.name.clone(), registry.register(&c.name, Vendor::Viewtron, "push", SourceState::Listening)))
            .collect();
        StoreHandler {
            store,
            bus,
            metrics,
            registry,
            traject,
            health: Mutex::new(health),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// A post arrived from `peer`: it is alive. On the transition to connected a `device`
    /// event is stored.
    async fn touch(&self, peer: &Peer, device: Option<&Device>) {
        let name = peer.name();
        let now = Timestamp::now();
        let was_live = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), tokio::time::Instant::now())
            .is_some();
        let health = self.health(peer);
        health.update(|h| {
            h.last_byte = Some(now);
            if !was_live {
                h.state = SourceState::Connected;
                h.connected_since = Some(now);
            }
        });
        if was_live {
            return;
        }
        let device = device.cloned().unwrap_or_default();
        tracing::info!(device = %name, ip = %peer.ip, name = ?device.name, mac = ?device.mac, serial = ?device.serial, "Viewtron device connected");
        let data = serde_json::json!({
            "ip": peer.ip.to_string(), "device_name": device.name, "mac": device.mac,
            "serial": device.serial, "device_ip": device.ip,
        });
        self.device_event(&name, "connected", State::Start, data).await;
    }

    async fn device_event(&self, name: &str, code: &str, state: State, data: serde_json::Value) {
        let mut event = Event::new(String::new(), name, Vendor::Viewtron, Kind::Device);
        event.key = format!("viewtron:{name}:{code}:{}", event.received_at.as_millisecond());
        event.code = Some(code.into());
        event.state = Some(state);
        event.data = Some(data);
        if let Err(e) = self.store.append(event).await {
            tracing::warn!(device = %name, error = %e, "could not store the device event");
        }
    }

    /// Mark devices silent for longer than `timeout` as disconnected, until `stop`.
    pub async fn watch(self: Arc<Self>, timeout: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(
            (timeout / 4).clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(10)),
        );
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            let silent: Vec<String> = {
                let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
                let gone: Vec<String> =
                    live.iter().filter(|(_, t)| t.elapsed() > timeout).map(|(n, _)| n.clone()).collect();
                for n in &gone {
                    live.remove(n);
                }
                gone
            };
            for name in silent {
                tracing::warn!(device = %name, ?timeout, "Viewtron device silent; marked disconnected");
                if let Some(h) = self.health.lock().unwrap_or_else(|e| e.into_inner()).get(&name) {
                    h.set_state(SourceState::Disconnected);
                }
                let data = serde_json::json!({ "silent_for_seconds": timeout.as_secs_f64() });
                self.device_event(&name, "disconnected", State::Stop, data).await;
            }
        }
    }

    fn health(&self, peer: &Peer) -> SourceHandle {
        let name = peer.name();
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.clone())
            .or_insert_with(|| self.registry.register(&name, Vendor::Viewtron, "push", SourceState::Listening))
            .clone()
    }

    fn count(&self, what: &str) {
        self.metrics.viewtron_posts.get_or_create(&PostLabels { kind: what.to_owned() }).inc();
    }

    /// The camgate event for a parsed Viewtron event, and its images.
    pub fn to_event(peer: &Peer, p: Parsed, received_at: Timestamp) -> (Event, Vec<(String, Vec<u8>)>) {
        let source = match &peer.camera {
            Some(c) => c.source_for(p.channel.map(|c| c.get())).to_owned(),
            None => peer.ip.to_string(),
        };
        let event = Event {
            id: EventId::new(),
            key: format!("viewtron:{}:{}", peer.name(), p.key),
            source,
            vendor: Vendor::Viewtron,
            kind: p.kind,
            code: Some(p.code),
            state: p.state,
            channel: p.channel,
            rule: p.rule,
            occurred_at: p.occurred_at,
            received_at,
            plate: p.plate,
            face: p.face,
            objects: p.objects,
            counts: p.counts,
            data: Some(p.data),
            images: Vec::new(),
            schedule: None,
        };
        (event, p.images.into_iter().map(|i| (i.role, i.bytes)).collect())
    }

    async fn store_events(&self, peer: &Peer, events: Vec<Parsed>) -> Result<(), Unavailable> {
        let health = self.health(peer);
        let received_at = camgate_core::time::now_ms();
        for p in events {
            if !p.image_errors.is_empty() {
                let labels = SourceLabels { source: self.metrics.source_label(&peer.name()) };
                self.metrics.image_errors.get_or_create(&labels).inc_by(p.image_errors.len() as u64);
                tracing::warn!(device = %peer.name(), code = %p.code, errors = ?p.image_errors, "images of an event could not be decoded; the event is kept without them");
            }
            if let Some(raw) = &p.time_error {
                tracing::warn!(device = %peer.name(), code = %p.code, time = %raw, "the device time is unusable; the event has no occurred_at");
            }
            let (event, images) = Self::to_event(peer, p, received_at);
            match self.store.append_with_images(event, images).await {
                Ok(outcome) => health.event(matches!(outcome, Appended::New(_))),
                Err(e) => {
                    tracing::error!(device = %peer.name(), error = %e, "a Viewtron event could not be stored; answered 503");
                    return Err(Unavailable(e.to_string()));
                }
            }
        }
        Ok(())
    }
}

impl Handler for StoreHandler {
    fn connected<'a>(&'a self, _peer: &'a Peer, _device: &'a Device) -> BoxFuture<'a, ()> {
        // Connection state is tracked by `touch`, which also notices silence.
        Box::pin(async {})
    }

    fn keepalive<'a>(&'a self, peer: &'a Peer, device: &'a Device) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.count("keepalive");
            self.touch(peer, Some(device)).await;
        })
    }

    fn events<'a>(&'a self, peer: &'a Peer, events: Vec<Parsed>) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            self.count(if events.iter().all(|e| e.category == "status") { "status" } else { "event" });
            self.touch(peer, events.first().map(|e| &e.device)).await;
            self.store_events(peer, events).await
        })
    }

    fn traject<'a>(&'a self, peer: &'a Peer, update: Parsed) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            self.count("traject");
            self.touch(peer, Some(&update.device)).await;
            match self.traject {
                TrajectMode::Drop => Ok(()),
                TrajectMode::Store => self.store_events(peer, vec![update]).await,
                TrajectMode::Live => {
                    let (event, _) = Self::to_event(peer, update, camgate_core::time::now_ms());
                    // seq 0: on the live bus only, never stored.
                    self.bus.publish(Arc::new(StoredEvent::new(0, event)));
                    Ok(())
                }
            }
        })
    }

    fn unparsed<'a>(
        &'a self,
        peer: &'a Peer,
        body: &'a [u8],
        error: ParseError,
    ) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            self.count("unparsed");
            self.touch(peer, None).await;
            let health = self.health(peer);
            health.rejected(&error.to_string());
            tracing::warn!(device = %peer.name(), bytes = body.len(), error = %error, "a Viewtron post could not be parsed; kept as a dead letter and answered with success");
            let letter = DeadLetter {
                source: peer.name(),
                received_at: camgate_core::time::now_ms(),
                reason: error.to_string(),
                payload: body.to_vec(),
            };
            self.store.dead_letter(letter).await.map_err(|e| Unavailable(e.to_string()))
        })
    }

    fn refused<'a>(&'a self, peer: &'a Peer, status: StatusCode, why: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.count("refused");
            self.health(peer).rejected(why);
            tracing::warn!(device = %peer.name(), ip = %peer.ip, %status, "Viewtron post refused: {why}");
        })
    }
}
