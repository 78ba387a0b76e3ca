//! Capped exponential back-off with jitter.
//!
//! Hand-written (about 40 lines) rather than taken from `backon`: callers keep the state
//! between attempts (a device stream resets it after a long healthy run, a sink after a
//! delivery), report it in health output, and drive it from tests with a seeded RNG.

use std::time::Duration;

use rand::{Rng, RngExt};

/// Delays that double from `initial` up to `max`, each spread by ±`jitter` (0..1).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max: max.max(initial), jitter: 0.2, attempt: 0 }
    }

    /// Spread each delay uniformly over `delay × (1 ± jitter)`.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Failures since the last [`reset`](Self::reset).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let base = self.initial.as_secs_f64() * 2f64.powi(self.attempt.min(62) as i32);
        let capped = base.min(self.max.as_secs_f64());
        self.attempt = self.attempt.saturating_add(1);
        let spread = if self.jitter > 0.0 { rng.random_range(-self.jitter..=self.jitter) } else { 0.0 };
        Duration::from_secs_f64((capped * (1.0 + spread)).clamp(0.0, self.max.as_secs_f64()))
    }

    /// Start again from `initial` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn doubles_and_caps() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).with_jitter(0.0);
        let d: Vec<u128> = (0..6).map(|_| b.next_delay(&mut rng).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(&mut rng).as_millis(), 100);
    }

    #[test]
    fn jitter_stays_in_band_and_never_passes_max() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).with_jitter(0.5);
        let mut seen = std::collections::HashSet::new();
        for i in 0..50 {
            let d = b.next_delay(&mut rng);
            assert!(d <= Duration::from_secs(2));
            if i == 0 {
                assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(150));
            }
            seen.insert(d.as_micros());
        }
        assert!(seen.len() > 10, "jitter must vary the delays");
    }
}
