//! The checkpoint task: folds the WAL back into the database file, off the writer's path.
//!
//! Every [`EVERY`] a PASSIVE checkpoint copies what no reader still needs; it never waits
//! for the writer. Under sustained writes that is not enough: SQLite starts the WAL over
//! from its beginning only when a write transaction begins while every frame of it has been
//! copied, and a writer that commits every few milliseconds always adds frames while a
//! checkpoint runs. The WAL then grows without end (measured: 2.3 GB in 40 s at 5,000
//! events/s, which fills a disk within hours), and with it the work of every checkpoint.
//! So once the WAL holds more than `wal_max`, the task takes the writer's gate right after a
//! PASSIVE checkpoint (the writer finishes the transaction it is in and waits before the
//! next one), copies the few frames written since with a RESTART checkpoint, and lets the
//! writer go on: its next transaction starts the WAL over. Writes queued meanwhile commit
//! together in that transaction.
//!
//! A WAL that starts over is overwritten from its beginning. Its frames (a 24-byte header
//! and a page) do not line up with the file system's blocks, so each write covers blocks
//! only in part, and a block that has left the page cache since it was last written must be
//! read from disk first, by the writer, one at a time (measured on the benchmark VM, whose
//! page cache keeps little: 23 times slower than appending, for as long as the overwrite
//! lasts). So while the writer overwrites an old WAL, this task asks the kernel to read the
//! part of the file just ahead of it back into the page cache ([`Prefetch`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the WAL is checkpointed into the database file.
pub(super) const EVERY: Duration = Duration::from_millis(500);
/// PASSIVE checkpoints run back to back before writes are held, until one takes less than
/// `PRE_ENOUGH`.
const PRE_ROUNDS: usize = 3;
const PRE_ENOUGH: Duration = Duration::from_millis(10);
/// After a RESTART checkpoint that could not finish (a reader held on to the WAL), the
/// next one waits at least this long, so that a long reader does not hold writes again and
/// again.
const RETRY_RESTART_AFTER: Duration = Duration::from_secs(5);
/// How long a RESTART checkpoint waits for readers to finish with the WAL (the writer is
/// held meanwhile); the connection's busy timeout.
pub(super) const READERS_WAIT: Duration = Duration::from_millis(100);

#[derive(Clone, Copy)]
enum Mode {
    Passive,
    Restart,
    Truncate,
}

pub(super) struct Checkpointer {
    /// A connection of its own, with a busy timeout of [`READERS_WAIT`].
    pub conn: SqliteConnection,
    /// The writer holds it for each transaction.
    pub gate: Arc<Mutex<()>>,
    /// Bytes of WAL (frames × page size) above which the WAL is made to start over.
    pub wal_max: u64,
    pub page_size: u64,
    pub metrics: Arc<Metrics>,
    pub prefetch: Prefetch,
}

impl Checkpointer {
    /// Checkpoint until `close` is cancelled, then fold the whole WAL back in and truncate
    /// it (the writer has stopped by then).
    pub async fn run(mut self, close: CancellationToken) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut no_restart_before = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = close.cancelled() => break,
            }
            // PASSIVE: copies what no reader still needs, never waits for the writer.
            let frames = match self.checkpoint(Mode::Passive).await {
                Ok((_, frames, _)) => frames,
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    continue;
                }
            };
            self.prefetch.ahead_of(frames, self.page_size);
            let wal = frames * self.page_size;
            self.metrics.store_wal_bytes.set(wal as i64);
            if wal < self.wal_max || tokio::time::Instant::now() < no_restart_before {
                continue;
            }
            // Copy what was written during that checkpoint too, while writes go on, so that
            // little is left to copy while they are held.
            for _ in 0..PRE_ROUNDS {
                let started = std::time::Instant::now();
                if self.checkpoint(Mode::Passive).await.is_err() || started.elapsed() < PRE_ENOUGH {
                    break;
                }
            }
            let (outcome, held) = {
                let gate = self.gate.clone();
                let _gate = gate.lock().await;
                let started = std::time::Instant::now();
                let outcome = self.checkpoint(Mode::Restart).await;
                if matches!(outcome, Ok((0, _, _))) {
                    // The writer starts over at the beginning of the file.
                    self.prefetch.ahead_of(0, self.page_size);
                }
                (outcome, started.elapsed())
            };
            self.metrics.store_checkpoint_hold_seconds.observe(held.as_secs_f64());
            match outcome {
                Ok((0, _, _)) => {
                    self.metrics.store_wal_restarts.inc();
                    self.metrics.store_wal_bytes.set(0);
                    tracing::debug!(wal_bytes = wal, held_ms = held.as_millis() as u64, "the WAL starts over");
                }
                Ok(_) => {
                    no_restart_before = tokio::time::Instant::now() + RETRY_RESTART_AFTER;
                    tracing::info!(
                        wal_bytes = wal,
                        "a reader kept the WAL from starting over; trying again in {}s",
                        RETRY_RESTART_AFTER.as_secs()
                    );
                }
                Err(e) => {
                    no_restart_before = tokio::time::Instant::now() + RETRY_RESTART_AFTER;
                    tracing::warn!(error = %e, wal_bytes = wal, "WAL checkpoint (RESTART) failed; retrying later");
                }
            }
        }
        // The writer has stopped (it is closed first): fold the WAL back in.
        if let Err(e) = self.checkpoint(Mode::Truncate).await {
            tracing::warn!(error = %e, "final WAL checkpoint failed; the WAL is replayed at the next start");
        }
        let _ = self.conn.close().await;
    }

    /// `PRAGMA wal_checkpoint(MODE)`: (1 if it could not finish, frames in the WAL, frames
    /// copied).
    async fn checkpoint(&mut self, mode: Mode) -> Result<(i64, u64, u64), sqlx::Error> {
        let sql = match mode {
            Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            Mode::Restart => "PRAGMA wal_checkpoint(RESTART)",
            Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        let (busy, log, done): (i64, i64, i64) = sqlx::query_as(sql).fetch_one(&mut self.conn).await?;
        Ok((busy, log.max(0) as u64, done.max(0) as u64))
    }
}

/// Reads the part of an old WAL that the writer is about to overwrite back into the page
/// cache, ahead of it (Linux; elsewhere it does nothing).
pub(super) struct Prefetch {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    file: Option<std::fs::File>,
}

/// SQLite's WAL format: a 32-byte file header, then frames of a 24-byte header and a page.
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;
/// How much of the file ahead of the writer is read: more than it writes between two
/// checkpoints under any load seen.
const PREFETCH_AHEAD: u64 = 128 << 20;

impl Prefetch {
    /// For the WAL at `path` (the database's name with `-wal`).
    pub fn new(path: PathBuf) -> Self {
        Prefetch {
            path,
            #[cfg(target_os = "linux")]
            file: None,
        }
    }

    /// The WAL holds `frames` frames: if the file is longer (the WAL started over and the
    /// writer overwrites the old one), have the kernel read the next [`PREFETCH_AHEAD`]
    /// bytes after them. It only hints: nothing waits for the reads.
    pub fn ahead_of(&mut self, frames: u64, page_size: u64) {
        #[cfg(target_os = "linux")]
        {
            use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
            if self.file.is_none() {
                self.file = std::fs::File::open(&self.path).ok();
            }
            let Some(file) = &self.file else { return };
            let Ok(len) = file.metadata().map(|m| m.len()) else {
                self.file = None;
                return;
            };
            let at = WAL_HEADER + frames * (page_size + FRAME_HEADER);
            if at >= len {
                return;
            }
            let n = (len - at).min(PREFETCH_AHEAD);
            if let Err(e) = posix_fadvise(file, at as i64, n as i64, PosixFadviseAdvice::POSIX_FADV_WILLNEED) {
                tracing::debug!(error = %e, "cannot read ahead in the WAL");
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (frames, page_size, &self.path);
    }
}
