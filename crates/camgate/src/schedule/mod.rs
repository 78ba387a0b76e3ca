//! Scheduled event windows at run time: waiting for a window to open and close, and
//! tagging events with the window they fell in.
//!
//! The windows themselves (`[schedule]` in the configuration, the legacy
//! `eventos_programados.json`) are resolved by [`camgate_core::schedule`] into a
//! [`Schedule`] of UTC instants in `site.timezone`; build it once at start-up with
//! [`Config::schedule`](camgate_core::config::Config::schedule) and share it in an `Arc`.
//!
//! # Wiring
//!
//! **A source with `active = "schedule"`** runs only while a window is open. The simplest
//! form is [`ScheduleGate::run_windows`], which calls the source's work once per window
//! with a token that is cancelled when the window ends:
//!
//! ```no_run
//! # async fn example(config: camgate_core::config::Config, stop: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use camgate::schedule::ScheduleGate;
//!
//! let gate = ScheduleGate::new(Arc::new(config.schedule()?));
//! let _ = gate
//!     .run_windows(&stop, |window, in_window| async move {
//!         tracing::info!(schedule = %window.name, "scheduled window open: polling");
//!         while !in_window.is_cancelled() {
//!             // poll [last end, now - settle] ...
//!             tokio::select! {
//!                 () = in_window.cancelled() => {}
//!                 () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
//!             }
//!         }
//!         // The window has ended (or camgate is stopping): poll once more up to
//!         // `window.end` so events that happened before the end and arrive late are kept.
//!     })
//!     .await; // Ok(()) once no window is left, Err(Cancelled) when `stop` fired
//! # Ok(()) }
//! ```
//!
//! or, by hand, a loop over [`ScheduleGate::wait_open`] and [`ScheduleGate::wait_closed`].
//! A source that has no window left ([`ScheduleGate::wait_open`] returns `Ok(None)`)
//! should say so in its health and wait for shutdown.
//!
//! **The store path** tags each event before it is written with [`tag`] (or
//! [`ScheduleGate::tag`]): the event's `schedule` becomes the name of the window its
//! **`occurred_at`** (the device's time) falls in, or its **`received_at`** when the device
//! gave no time. An event that already carries a `schedule` (the generic ingest source
//! accepts one) keeps it. Tag before the event is stored and published, so every sink
//! and the live stream see the same value.
//!
//! # Time
//!
//! Windows are instants on the wall clock; tokio's timers run on the monotonic clock.
//! The gate converts between the two on every wake-up and never sleeps longer than
//! [`MAX_NAP`] at a time, so a step of the system clock (NTP, a manual change, a
//! suspended VM) is noticed within that time and the wait is recomputed; it does not
//! poll in between. Tests use [`TokioClock`], a wall clock that follows tokio's (paused)
//! clock, so a two-day schedule runs in simulated time.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_core::Event;
pub use camgate_core::schedule::{Schedule, Window, event_time};
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

#[cfg(test)]
mod tests;

/// The longest single sleep: how soon a step of the system clock is noticed.
pub const MAX_NAP: Duration = Duration::from_secs(60);

/// A wall-clock difference between what a nap should have advanced and what it did that
/// is reported as a clock step.
const JUMP_REPORTED: SignedDuration = SignedDuration::from_secs(5);

/// The wall clock schedules are compared with.
pub trait WallClock: std::fmt::Debug + Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A wall clock that starts at a given instant and advances with tokio's clock, so it
/// follows `tokio::time::pause` and `advance` in tests; [`TokioClock::jump`] simulates
/// a step of the system clock.
#[derive(Debug)]
pub struct TokioClock {
    origin: Timestamp,
    started: tokio::time::Instant,
    offset: Mutex<SignedDuration>,
}

impl TokioClock {
    /// A clock that reads `now` at this moment of tokio's clock.
    pub fn starting_at(now: Timestamp) -> TokioClock {
        TokioClock { origin: now, started: tokio::time::Instant::now(), offset: Mutex::new(SignedDuration::ZERO) }
    }

    /// Step the clock forward (or back, with a negative duration).
    pub fn jump(&self, by: SignedDuration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset = offset.saturating_add(by);
    }
}

impl WallClock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.started.elapsed()).unwrap_or(SignedDuration::MAX);
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        self.origin.saturating_add(elapsed.saturating_add(offset)).unwrap_or(Timestamp::MAX)
    }
}

/// The wait was cut short by the cancellation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// The name of the window `at` falls in, if any.
pub fn schedule_for(schedule: &Schedule, at: Timestamp) -> Option<String> {
    schedule.window_at(at).map(|w| w.name.clone())
}

/// Set `event.schedule` to the window of its `occurred_at`, else its `received_at`,
/// unless it already has one. Returns whether the event is in a window now.
pub fn tag(schedule: &Schedule, event: &mut Event) -> bool {
    if event.schedule.is_none() {
        event.schedule = schedule_for(schedule, event_time(event));
    }
    event.schedule.is_some()
}

/// Waits for a [`Schedule`]'s windows on a wall clock. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ScheduleGate {
    schedule: Arc<Schedule>,
    clock: Arc<dyn WallClock>,
}

impl ScheduleGate {
    /// A gate on the system clock.
    pub fn new(schedule: Arc<Schedule>) -> ScheduleGate {
        ScheduleGate::with_clock(schedule, Arc::new(SystemClock))
    }

    pub fn with_clock(schedule: Arc<Schedule>, clock: Arc<dyn WallClock>) -> ScheduleGate {
        ScheduleGate { schedule, clock }
    }

    pub fn schedule(&self) -> &Arc<Schedule> {
        &self.schedule
    }

    /// The wall clock's time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The window open now, if any.
    pub fn current(&self) -> Option<&Window> {
        self.schedule.window_at(self.now())
    }

    /// The name of the window `at` falls in; see [`schedule_for`].
    pub fn schedule_for(&self, at: Timestamp) -> Option<String> {
        schedule_for(&self.schedule, at)
    }

    /// Tag an event with its window; see [`tag`].
    pub fn tag(&self, event: &mut Event) -> bool {
        tag(&self.schedule, event)
    }

    /// Sleep until the wall clock reads `t` or later.
    pub async fn sleep_until(&self, t: Timestamp, cancel: &CancellationToken) -> Result<(), Cancelled> {
        while self.now() < t {
            self.nap_toward(t, cancel).await?;
        }
        Ok(())
    }

    /// Wait until a window is open and return it: at once when one is open now.
    /// `Ok(None)` when every window has ended.
    pub async fn wait_open(&self, cancel: &CancellationToken) -> Result<Option<Window>, Cancelled> {
        let mut announced = None;
        loop {
            if cancel.is_cancelled() {
                return Err(Cancelled);
            }
            let now = self.now();
            let Some(window) = self.schedule.current_or_next(now) else {
                tracing::debug!("no scheduled window is left");
                return Ok(None);
            };
            if window.contains(now) {
                return Ok(Some(window.clone()));
            }
            if announced != Some(window.start) {
                tracing::info!(
                    schedule = %window.name,
                    at = %self.schedule.describe(window),
                    starts_in = %humanize(window.start.duration_since(now)),
                    "waiting for the next scheduled window"
                );
                announced = Some(window.start);
            }
            self.nap_toward(window.start, cancel).await?;
        }
    }

    /// Wait until `window` has ended (the wall clock reads its `end` or later).
    pub async fn wait_closed(&self, window: &Window, cancel: &CancellationToken) -> Result<(), Cancelled> {
        self.sleep_until(window.end, cancel).await
    }

    /// Run `work` once per window, from its start, with a token that is cancelled when
    /// the window ends (or when `cancel` fires); each run is awaited to completion before
    /// the next window is waited for, so it can finish cleanly (a last poll, a flush).
    /// When `work` returns before its window ends, the rest of the window is waited out.
    ///
    /// Returns `Ok(())` when no window is left, `Err(Cancelled)` when `cancel` fired.
    pub async fn run_windows<F, Fut>(&self, cancel: &CancellationToken, mut work: F) -> Result<(), Cancelled>
    where
        F: FnMut(Window, CancellationToken) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let Some(window) = self.wait_open(cancel).await? else {
                return Ok(());
            };
            tracing::debug!(schedule = %window.name, until = %window.end, "scheduled window open");
            let in_window = cancel.child_token();
            let run = work(window.clone(), in_window.clone());
            tokio::pin!(run);
            let closed = tokio::select! {
                () = &mut run => self.wait_closed(&window, cancel).await,
                closed = self.wait_closed(&window, cancel) => {
                    in_window.cancel();
                    run.await;
                    closed
                }
            };
            in_window.cancel();
            closed?;
            tracing::debug!(schedule = %window.name, "scheduled window closed");
        }
    }

    /// One sleep toward wall-clock instant `t`: until `t`, or [`MAX_NAP`] if that is
    /// sooner. The caller reads the clock again afterwards.
    async fn nap_toward(&self, t: Timestamp, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let before = self.now();
        let nap = Duration::try_from(t.duration_since(before)).unwrap_or_default().min(MAX_NAP);
        let deadline = tokio::time::Instant::now() + nap;
        tokio::select! {
            () = cancel.cancelled() => return Err(Cancelled),
            () = tokio::time::sleep_until(deadline) => {}
        }
        let moved = self.now().duration_since(before);
        let slept = SignedDuration::try_from(nap).unwrap_or(SignedDuration::MAX);
        if (moved - slept).abs() > JUMP_REPORTED {
            tracing::warn!(
                slept = %humanize(slept),
                wall_clock_moved = %humanize(moved),
                "the system clock was stepped (or the machine was suspended); the schedule is re-evaluated"
            );
        }
        Ok(())
    }
}

/// `5h 3m`, `42s`: a duration for log lines.
fn humanize(d: SignedDuration) -> String {
    let secs = d.as_secs();
    let sign = if secs < 0 { "-" } else { "" };
    let secs = secs.unsigned_abs();
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .into_iter()
        .filter(|(v, _)| *v > 0)
        .take(2)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if parts.is_empty() { "0s".into() } else { format!("{sign}{}", parts.join(" ")) }
}
