//! The live bus: committed events, as they commit, for the SSE stream and library callbacks;
//! and, on a channel of its own, live-only events that are never stored (Viewtron traject
//! with `traject = "live"`, `seq` 0).
//!
//! It is best-effort by design: a subscriber that falls more than the capacity behind misses
//! events (and is told how many). Anything that must not miss events reads the store after
//! a cursor instead, as sinks do. Live-only events have their own small channel so that a
//! subscriber waiting for them never holds stored events in memory.
//!
//! Sinks that have caught up with the store take committed events from a third channel,
//! [`subscribe_committed`](Bus::subscribe_committed), instead of reading them back: each
//! event there names the seq of the stored event before it, so a subscriber can tell that
//! it missed none and otherwise reads the store.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::store::StoredEvent;

/// Stored events buffered for the slowest live subscriber.
pub const BUS_CAPACITY: usize = 1024;
/// Live-only events buffered for the slowest subscriber.
pub const LIVE_CAPACITY: usize = 256;
/// Committed events buffered for the slowest subscriber of [`Bus::subscribe_committed`].
pub const COMMITTED_CAPACITY: usize = 4096;

/// A committed event, with the seq of the stored event (readers see) committed before it.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The seq of the previous event readers see ([`Store::read_after`]), 0 when there is
    /// none: an event whose `after` is a subscriber's cursor follows it without a gap.
    ///
    /// [`Store::read_after`]: crate::store::Store::read_after
    pub after: u64,
    pub event: Arc<StoredEvent>,
}

/// A cheap-to-clone handle to the live bus.
#[derive(Clone, Debug)]
pub struct Bus {
    stored: broadcast::Sender<Arc<StoredEvent>>,
    live: broadcast::Sender<Arc<StoredEvent>>,
    committed: broadcast::Sender<Committed>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            stored: broadcast::channel(BUS_CAPACITY).0,
            live: broadcast::channel(LIVE_CAPACITY).0,
            committed: broadcast::channel(COMMITTED_CAPACITY).0,
        }
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

    /// Every event committed from now on, oldest first, each with the seq before it. The
    /// store's writer publishes here before it moves the head
    /// ([`Store::watch_head`](crate::store::Store::watch_head)), so a subscriber that sees
    /// the head move finds the events up to it already waiting.
    pub fn subscribe_committed(&self) -> broadcast::Receiver<Committed> {
        self.committed.subscribe()
    }

    /// Publish committed events (oldest first, each with the seq before it).
    pub(crate) fn publish_committed(&self, events: impl IntoIterator<Item = Committed>) {
        if self.committed.receiver_count() == 0 {
            return;
        }
        for c in events {
            let _ = self.committed.send(c);
        }
    }
}
