//! Time as behaviour sees it: a [`Clock`] that tests can replace with simulated time.

use std::sync::Arc;

use jiff::Timestamp;

/// The source of "now" for anything whose behaviour depends on wall-clock time
/// (timestamps, schedules, daily resets). Waiting is done with `tokio::time`, which tests
/// drive with `tokio::time::pause`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock as a [`SharedClock`].
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// Now, to the millisecond: the precision of `received_at`.
pub fn now_ms() -> Timestamp {
    let now = Timestamp::now();
    now.round(jiff::Unit::Millisecond).unwrap_or(now)
}
