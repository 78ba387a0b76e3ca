//! The live bus: committed events, as they commit, for the SSE stream and library callbacks;
//! and, on a channel of its own, live-only events that are never stored (Viewtron traject
//! with `traject = "live"`, `seq` 0).
//!
//! It is best-effort by design: a subscriber that falls more than the capacity behind misses
//! events (and is told how many). Anything that must not miss events reads the store after
//! a cursor instead, as sinks do. Live-only events have their own small channel so that a
//! subscriber waiting for them never holds stored events in memory.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::store::StoredEvent;

/// Stored events buffered for the slowest live subscriber.
pub const BUS_CAPACITY: usize = 1024;
/// Live-only events buffered for the slowest subscriber.
pub const LIVE_CAPACITY: usize = 256;

/// A cheap-to-clone handle to the live bus.
#[derive(Clone, Debug)]
pub struct Bus {
    stored: broadcast::Sender<Arc<StoredEvent>>,
    live: broadcast::Sender<Arc<StoredEvent>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus { stored: broadcast::channel(BUS_CAPACITY).0, live: broadcast::channel(LIVE_CAPACITY).0 }
    }
}

impl Bus {
    /// Send an event to every current subscriber: a committed one (`seq` > 0) to
    /// [`subscribe`](Self::subscribe)rs, a live-only one (`seq` 0) to
    /// [`subscribe_live`](Self::subscribe_live)rs.
    pub fn publish(&self, event: Arc<StoredEvent>) {
        // No subscriber is not an error.
        let _ = if event.seq == 0 { self.live.send(event) } else { self.stored.send(event) };
    }

    /// Every event committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.stored.subscribe()
    }

    /// Every live-only (never stored) event from now on.
    pub fn subscribe_live(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.live.subscribe()
    }
}
