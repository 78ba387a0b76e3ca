//! The `jsonl` sink: one event JSON per line, to a file or standard output, flushed per batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Sink, SinkError};
use crate::store::StoredEvent;

/// Appends events to a file (`path = "-"`: standard output).
pub struct JsonlSink {
    path: PathBuf,
    out: Box<dyn AsyncWrite + Send + Sync + Unpin>,
    buf: Vec<u8>,
}

impl JsonlSink {
    /// Open `path` for appending, creating it and its directory; `-` is standard output.
    pub async fn open(path: &Path) -> Result<Self, SinkError> {
        let out: Box<dyn AsyncWrite + Send + Sync + Unpin> = if path == Path::new("-") {
            Box::new(tokio::io::stdout())
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| SinkError(format!("cannot create {}: {e}", dir.display())))?;
            }
            let f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map_err(|e| SinkError(format!("cannot open {}: {e}", path.display())))?;
            Box::new(f)
        };
        Ok(JsonlSink { path: path.to_path_buf(), out, buf: Vec::with_capacity(64 * 1024) })
    }
}

impl Sink for JsonlSink {
    fn deliver<'a>(&'a mut self, events: &'a [Arc<StoredEvent>]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.buf.clear();
            for e in events {
                self.buf.extend_from_slice(e.json.as_bytes());
                self.buf.push(b'\n');
            }
            let write = async {
                self.out.write_all(&self.buf).await?;
                self.out.flush().await
            };
            write.await.map_err(|e| SinkError(format!("writing {}: {e}", self.path.display())))
        })
    }
}
