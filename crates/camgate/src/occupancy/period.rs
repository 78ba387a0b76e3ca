//! Which period an event counts in.

use camgate_core::Event;
use camgate_core::config::Reset;
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// The period of a zone with `reset = "never"`.
pub const ALL: &str = "all";

/// The local date on which the daily period holding `at` began: the reset moment of `at`'s
/// local date if `at` is at or after it, else the previous day's.
///
/// Compared as instants, so a day of 23 or 25 hours (DST) still has exactly one reset. A
/// reset time that does not exist that day (inside a spring-forward gap) happens at the
/// instant it names at the offset before the gap (02:30 in New York on a spring-forward
/// day is 03:30 EDT); one that exists twice (fall-back) happens the first time.
pub fn daily(at: Timestamp, reset: Time, tz: &TimeZone) -> Date {
    let date = at.to_zoned(tz.clone()).date();
    let reset_that_day = date.to_datetime(reset).to_zoned(tz.clone()).map(|z| z.timestamp());
    match reset_that_day {
        Ok(r) if at < r => date.yesterday().unwrap_or(date),
        _ => date,
    }
}

/// When the event happened for counting purposes: the device's time, else ours.
pub fn event_time(e: &Event) -> Timestamp {
    e.occurred_at.unwrap_or(e.received_at)
}

/// The period `event` counts in for a zone with `reset`; `None` when it does not count
/// (a `schedule` zone and an event outside every scheduled window).
pub fn of_event(reset: Reset, event: &Event, tz: &TimeZone) -> Option<String> {
    match reset {
        Reset::Never => Some(ALL.to_owned()),
        Reset::Schedule => event.schedule.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned),
        Reset::Daily(t) => Some(daily(event_time(event), t, tz).to_string()),
    }
}

/// The period that is current at `now`; `None` for `schedule` zones, whose current period
/// is not a matter of the clock (the store takes the one updated last).
pub fn current(reset: Reset, now: Timestamp, tz: &TimeZone) -> Option<String> {
    match reset {
        Reset::Never => Some(ALL.to_owned()),
        Reset::Schedule => None,
        Reset::Daily(t) => Some(daily(now, t, tz).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn at(h: i8, m: i8) -> Time {
        Time::constant(h, m, 0, 0)
    }

    #[test]
    fn daily_in_a_fixed_offset_zone() {
        let bogota = TimeZone::get("America/Bogota").unwrap(); // UTC-5, no DST
        // 05:59 local on the 17th is before a 06:00 reset: still the 16th's period.
        assert_eq!(daily(ts("2026-05-17T10:59:59Z"), at(6, 0), &bogota).to_string(), "2026-05-16");
        assert_eq!(daily(ts("2026-05-17T11:00:00Z"), at(6, 0), &bogota).to_string(), "2026-05-17");
        // Midnight reset: 23:30 local on the 17th is 04:30Z on the 18th, still the 17th.
        assert_eq!(daily(ts("2026-05-18T04:30:00Z"), Time::midnight(), &bogota).to_string(), "2026-05-17");
    }

    #[test]
    fn daily_across_spring_forward() {
        let ny = TimeZone::get("America/New_York").unwrap();
        // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT. A 04:00 reset is at 08:00Z
        // that day (EDT), not 09:00Z (EST).
        assert_eq!(daily(ts("2026-03-08T07:59:59Z"), at(4, 0), &ny).to_string(), "2026-03-07");
        assert_eq!(daily(ts("2026-03-08T08:00:00Z"), at(4, 0), &ny).to_string(), "2026-03-08");
        // The day before, 04:00 EST is 09:00Z.
        assert_eq!(daily(ts("2026-03-07T08:30:00Z"), at(4, 0), &ny).to_string(), "2026-03-06");
        // A reset inside the gap (02:30 does not exist) happens at 03:30 EDT = 07:30Z.
        assert_eq!(daily(ts("2026-03-08T07:29:00Z"), at(2, 30), &ny).to_string(), "2026-03-07");
        assert_eq!(daily(ts("2026-03-08T07:30:00Z"), at(2, 30), &ny).to_string(), "2026-03-08");
    }

    #[test]
    fn daily_across_fall_back() {
        let ny = TimeZone::get("America/New_York").unwrap();
        // 2026-11-01: 01:00-02:00 happens twice (EDT, then EST). A 01:30 reset happens once,
        // the first time (05:30Z); the second 01:30 (06:30Z) stays in the same period.
        assert_eq!(daily(ts("2026-11-01T05:29:00Z"), at(1, 30), &ny).to_string(), "2026-10-31");
        assert_eq!(daily(ts("2026-11-01T05:30:00Z"), at(1, 30), &ny).to_string(), "2026-11-01");
        assert_eq!(daily(ts("2026-11-01T06:45:00Z"), at(1, 30), &ny).to_string(), "2026-11-01");
        // A 23:00 reset on the 25-hour day: 2026-11-01T23:00 EST = 2026-11-02T04:00Z.
        assert_eq!(daily(ts("2026-11-02T03:59:00Z"), at(23, 0), &ny).to_string(), "2026-10-31");
        assert_eq!(daily(ts("2026-11-02T04:00:00Z"), at(23, 0), &ny).to_string(), "2026-11-01");
    }

    #[test]
    fn schedule_and_never() {
        let tz = TimeZone::UTC;
        let mut e = Event::new("k", "s", camgate_core::Vendor::Generic, camgate_core::Kind::Counting);
        assert_eq!(of_event(Reset::Schedule, &e, &tz), None);
        e.schedule = Some(" Concierto A ".into());
        assert_eq!(of_event(Reset::Schedule, &e, &tz).as_deref(), Some("Concierto A"));
        assert_eq!(of_event(Reset::Never, &e, &tz).as_deref(), Some("all"));
        assert_eq!(current(Reset::Schedule, Timestamp::UNIX_EPOCH, &tz), None);
        e.occurred_at = Some(ts("2026-01-02T03:04:05Z"));
        assert_eq!(of_event(Reset::Daily(Time::midnight()), &e, &tz).as_deref(), Some("2026-01-02"));
    }
}
