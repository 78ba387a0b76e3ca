//! Time helpers. camgate stores UTC; `received_at` is kept to the millisecond.

use jiff::Timestamp;

/// Now, to the millisecond: the precision of `received_at`.
pub fn now_ms() -> Timestamp {
    let now = Timestamp::now();
    now.round(jiff::Unit::Millisecond).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_whole_milliseconds() {
        assert_eq!(super::now_ms().subsec_nanosecond() % 1_000_000, 0);
    }
}
