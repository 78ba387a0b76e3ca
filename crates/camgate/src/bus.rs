//! The live bus: committed events, as they commit, for the SSE stream and library callbacks.
//!
//! It is best-effort by design: a subscriber that falls more than the capacity behind misses
//! events (and is told how many). Anything that must not miss events reads the store after
//! a cursor instead, as sinks do.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::store::StoredEvent;

/// Events buffered for the slowest live subscriber.
pub const BUS_CAPACITY: usize = 4096;

/// A cheap-to-clone handle to the live bus.
#[derive(Clone, Debug)]
pub struct Bus {
    tx: broadcast::Sender<Arc<StoredEvent>>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new(BUS_CAPACITY)
    }
}

impl Bus {
    pub fn new(capacity: usize) -> Self {
        Bus { tx: broadcast::channel(capacity).0 }
    }

    /// Send a committed event to every current subscriber.
    pub fn publish(&self, event: Arc<StoredEvent>) {
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    /// Receive every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.tx.subscribe()
    }
}
