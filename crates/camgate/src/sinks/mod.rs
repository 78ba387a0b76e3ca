//! Sinks: where events go. Each sink delivers the stored events after its own cursor, in
//! order, and only then advances its cursor (the outbox pattern): it reads them from the
//! store, or, once it has caught up, takes them from the writer as they commit. The cursor
//! is saved in the store at most every `delivery.cursor_interval` and when the sink stops,
//! so a restart never skips an event, and after a crash re-delivers at most the events
//! delivered since the last save (see [`runner`](SinkRunner)).

pub mod jsonl;
pub mod log;
mod runner;

use std::sync::Arc;

use camgate_core::config::SinkConfig;
use futures::future::BoxFuture;

use crate::store::StoredEvent;

pub use runner::{SinkRunner, SinkStatus};

/// Why a delivery failed. The runner retries with back-off.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError(e.to_string())
    }
}

/// A destination of events.
pub trait Sink: Send + Sync + 'static {
    /// Deliver a batch, oldest first. `Ok` means every event of the batch is delivered: the
    /// cursor moves past it. An error means none is known to be: the batch is retried whole.
    fn deliver<'a>(&'a mut self, events: &'a [Arc<StoredEvent>]) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// Build the sink a `[[sink]]` table describes.
pub async fn build(config: &SinkConfig) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match config {
        SinkConfig::Log { .. } => Box::new(log::LogSink),
        SinkConfig::Jsonl { path, .. } => Box::new(jsonl::JsonlSink::open(path).await?),
    })
}
