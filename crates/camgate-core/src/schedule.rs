//! Scheduled event windows: named periods of local time ("Concierto A, 2026-05-17,
//! 18:00 to 02:00") during which a source runs and whose name events are tagged with.
//!
//! This module is pure: [`Schedule::new`] turns windows written in local time
//! ([`LocalWindow`]) into UTC [`Window`]s in the site's time zone, and answers questions
//! about instants. Reading the legacy `eventos_programados.json` is split in two: the
//! parser here ([`parse_legacy`], text in, windows out) and the file read in
//! [`crate::config`].
//!
//! # How local times become instants
//!
//! - A window starts at `date` + `start` in the site's zone. When `end` is earlier than or
//!   equal to `start` the window runs past midnight and ends at `end` on the **next** day
//!   (`22:00`-`02:00`, or `18:00`-`00:00` which ends at the following midnight). A window
//!   belongs to the date it starts on; the next date does not get a copy of it.
//! - Daylight-saving changes are resolved with jiff's *compatible* disambiguation
//!   (the behaviour of RFC 5545 and of JavaScript's Temporal):
//!   - a local time that **does not exist** (it falls in the gap when clocks go forward)
//!     is moved forward by the length of the gap: in `America/New_York` on 2026-03-08,
//!     `02:30` is taken as `03:30` EDT;
//!   - a local time that **happens twice** (the fold when clocks go back) is the
//!     **earlier** of the two: in `America/New_York` on 2026-11-01, `01:30` is `01:30`
//!     EDT (05:30 UTC), not `01:30` EST.
//!
//!   So a `01:30`-`03:00` window lasts 30 minutes on 2026-03-08 and 2 h 30 min on
//!   2026-11-01. A window that would be empty after this (for example `02:10`-`02:40`
//!   on the day clocks skip from 02:00 to 03:00 resolves to `03:10`-`03:40`, but
//!   `02:30`-`03:15` would end before it starts) is an error.
//! - Windows are half-open, `[start, end)`: an instant equal to `end` is outside the
//!   window, so windows may touch (`18:00`-`20:00` and `20:00`-`22:00`) but not overlap.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::Event;

/// A window as people write it: a local date, a name and local start and end times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWindow {
    /// The local date the window starts on.
    pub date: Date,
    pub name: String,
    pub start: Time,
    /// The end; on the next day when it is not after `start`.
    pub end: Time,
}

impl LocalWindow {
    /// Whether the window ends on the day after `date`.
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }
}

/// A window resolved to instants in the site's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The name events in the window are tagged with (the legacy `nombre`).
    pub name: String,
    /// The local date it was written under (the day it starts).
    pub date: Date,
    /// First instant inside the window.
    pub start: Timestamp,
    /// First instant after the window (exclusive).
    pub end: Timestamp,
}

impl Window {
    /// Whether `t` is inside `[start, end)`.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// Why a set of windows is not a schedule. `index` is the position of the offending
/// window in the input of [`Schedule::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the window has no name; the name is what events in it are tagged with")]
    NoName { index: usize },
    #[error(
        "the window starts and ends at {time}; a window cannot be empty (an end earlier than the start runs past midnight)"
    )]
    Empty { index: usize, time: String },
    #[error(
        "in {zone} the window is empty: it starts at {start} and ends at {end} once the daylight-saving change is applied (local times in the skipped hour are moved forward); move it out of the skipped hour"
    )]
    EmptyAfterDst { index: usize, zone: String, start: String, end: String },
    #[error("{date} {time} is outside the supported range of dates")]
    OutOfRange { index: usize, date: Date, time: Time },
    #[error("the window {name:?} ({span}) overlaps the window {other_name:?} ({other_span})")]
    Overlap { index: usize, name: String, span: String, other: usize, other_name: String, other_span: String },
}

impl ScheduleError {
    /// The window the error is about.
    pub fn index(&self) -> usize {
        match self {
            ScheduleError::NoName { index }
            | ScheduleError::Empty { index, .. }
            | ScheduleError::EmptyAfterDst { index, .. }
            | ScheduleError::OutOfRange { index, .. }
            | ScheduleError::Overlap { index, .. } => *index,
        }
    }
}

/// Non-overlapping windows in one time zone, ordered by start.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: TimeZone,
    /// Sorted by `start`; `windows[i].end <= windows[i + 1].start`.
    windows: Vec<Window>,
    /// Every start and end, ascending, without duplicates.
    changes: Vec<Timestamp>,
}

impl Default for Schedule {
    /// No windows, in UTC.
    fn default() -> Self {
        Schedule { tz: TimeZone::UTC, windows: Vec::new(), changes: Vec::new() }
    }
}

impl Schedule {
    /// Resolve `windows` in `tz` (see the module documentation for midnight and
    /// daylight-saving rules) and check that none is empty and none overlaps another.
    /// Errors carry the index of the offending window in `windows`; for an overlap it is
    /// the later of the two in the input, and `other` the earlier.
    pub fn new<'a>(
        windows: impl IntoIterator<Item = &'a LocalWindow>,
        tz: &TimeZone,
    ) -> Result<Schedule, ScheduleError> {
        let mut resolved: Vec<(usize, Window)> = Vec::new();
        for (index, w) in windows.into_iter().enumerate() {
            if w.name.trim().is_empty() {
                return Err(ScheduleError::NoName { index });
            }
            if w.start == w.end {
                return Err(ScheduleError::Empty { index, time: hhmm(w.start) });
            }
            let out_of_range = |date: Date, time: Time| ScheduleError::OutOfRange { index, date, time };
            let end_date =
                if w.crosses_midnight() { w.date.tomorrow().map_err(|_| out_of_range(w.date, w.end))? } else { w.date };
            let start = tz
                .to_ambiguous_timestamp(w.date.to_datetime(w.start))
                .compatible()
                .map_err(|_| out_of_range(w.date, w.start))?;
            let end = tz
                .to_ambiguous_timestamp(end_date.to_datetime(w.end))
                .compatible()
                .map_err(|_| out_of_range(end_date, w.end))?;
            if end <= start {
                return Err(ScheduleError::EmptyAfterDst {
                    index,
                    zone: zone_name(tz),
                    start: local(start, tz),
                    end: local(end, tz),
                });
            }
            resolved.push((index, Window { name: w.name.clone(), date: w.date, start, end }));
        }
        resolved.sort_by_key(|(index, w)| (w.start, *index));
        // Sorted by start, the windows are disjoint exactly when each ends no later than
        // the next one starts.
        for pair in resolved.windows(2) {
            let [(a_index, a), (b_index, b)] = pair else { unreachable!("windows(2) yields pairs") };
            if a.end > b.start {
                let ((index, w), (other, o)) =
                    if a_index > b_index { ((a_index, a), (b_index, b)) } else { ((b_index, b), (a_index, a)) };
                return Err(ScheduleError::Overlap {
                    index: *index,
                    name: w.name.clone(),
                    span: span(w, tz),
                    other: *other,
                    other_name: o.name.clone(),
                    other_span: span(o, tz),
                });
            }
        }
        let windows: Vec<Window> = resolved.into_iter().map(|(_, w)| w).collect();
        let mut changes: Vec<Timestamp> = windows.iter().flat_map(|w| [w.start, w.end]).collect();
        changes.dedup();
        Ok(Schedule { tz: tz.clone(), windows, changes })
    }

    /// The zone the windows were resolved in.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }

    /// All windows, ordered by start.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// The window `t` falls in, if any.
    pub fn window_at(&self, t: Timestamp) -> Option<&Window> {
        let after = self.windows.partition_point(|w| w.start <= t);
        self.windows[..after].last().filter(|w| t < w.end)
    }

    /// The first instant strictly after `t` at which [`Schedule::window_at`] changes: the
    /// next start or end of a window. `None` once the last window has ended.
    pub fn next_change_after(&self, t: Timestamp) -> Option<Timestamp> {
        self.changes.get(self.changes.partition_point(|c| *c <= t)).copied()
    }

    /// The window open at `t`, or else the next one to open.
    pub fn current_or_next(&self, t: Timestamp) -> Option<&Window> {
        let after = self.windows.partition_point(|w| w.start <= t);
        self.windows[..after].last().filter(|w| t < w.end).or_else(|| self.windows.get(after))
    }

    /// The window an event belongs to: the one its device time (`occurred_at`) falls in,
    /// or, for events without one, the one its `received_at` falls in.
    pub fn window_for_event(&self, event: &Event) -> Option<&Window> {
        self.window_at(event_time(event))
    }

    /// `window`'s local start and end in this schedule's zone, e.g.
    /// `2026-05-17 22:00 - 2026-05-18 02:00 (America/Bogota)`.
    pub fn describe(&self, window: &Window) -> String {
        format!("{} ({})", span(window, &self.tz), zone_name(&self.tz))
    }
}

/// The instant that decides an event's window: `occurred_at` when the device gave one,
/// else `received_at`.
pub fn event_time(event: &Event) -> Timestamp {
    event.occurred_at.unwrap_or(event.received_at)
}

fn zone_name(tz: &TimeZone) -> String {
    tz.iana_name().map(str::to_owned).unwrap_or_else(|| format!("{tz:?}"))
}

fn local(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    format!("{} {}", z.date(), hhmm(z.time()))
}

fn span(w: &Window, tz: &TimeZone) -> String {
    format!("{} - {}", local(w.start, tz), local(w.end, tz))
}

/// `HH:MM`, or `HH:MM:SS` when the seconds are not zero.
pub fn hhmm(t: Time) -> String {
    if t.second() == 0 && t.subsec_nanosecond() == 0 {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    }
}

/// Parse a local time of day: `HH:MM` (the hour may have one digit) or `HH:MM:SS`,
/// from `00:00` to `23:59:59`. `24:00` is refused: a window ending at midnight ends at
/// `00:00` (of the next day).
pub fn parse_time(s: &str) -> Result<Time, String> {
    let bad = || format!("{s:?} is not a time of day; write HH:MM (24-hour clock), e.g. \"18:30\"");
    let parts: Vec<&str> = s.split(':').collect();
    let number = |p: &str, lo: usize, hi: usize| -> Option<i8> {
        (lo..=hi).contains(&p.len()).then_some(())?;
        p.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
        p.parse().ok()
    };
    let (h, m, sec) = match parts[..] {
        [h, m] => (number(h, 1, 2).ok_or_else(bad)?, number(m, 2, 2).ok_or_else(bad)?, 0),
        [h, m, sec] => {
            (number(h, 1, 2).ok_or_else(bad)?, number(m, 2, 2).ok_or_else(bad)?, number(sec, 2, 2).ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    };
    if h == 24 && m == 0 && sec == 0 {
        return Err(format!("{s:?} is not a time of day; for a window that ends at midnight write \"00:00\""));
    }
    Time::new(h, m, sec, 0).map_err(|_| bad())
}

/// Parse a date written `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let bad = || format!("{s:?} is not a date; write YYYY-MM-DD, e.g. \"2026-05-17\"");
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return Err(bad());
    }
    let (y, m, d) = (s[0..4].parse().map_err(|_| bad())?, s[5..7].parse().map_err(|_| bad())?, s[8..10].parse());
    Date::new(y, m, d.map_err(|_| bad())?).map_err(|_| bad())
}

/// One entry of the legacy schedule file, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEntry {
    /// The date key as written.
    pub key: String,
    /// 1-based line of the key in the file.
    pub line: Option<usize>,
    pub window: LocalWindow,
}

/// A problem in the legacy schedule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyError {
    /// The date key, or `date.field` (`2026-05-17.hora_fin`), when the problem is in an entry.
    pub key: Option<String>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for LegacyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for LegacyError {}

/// The top-level object, in file order and with repeated keys kept (a JSON object
/// parsed into a map would silently keep the last of two entries for one date).
struct RawEntries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for RawEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an object keyed by date: {"YYYY-MM-DD": {"nombre": ..., "hora_inicio": "HH:MM", "hora_fin": "HH:MM"}}"#)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    entries.push(entry);
                }
                Ok(RawEntries(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parse the legacy schedule file (`eventos_programados.json`):
///
/// ```json
/// {
///   "2026-05-17": {"nombre": "Concierto A", "hora_inicio": "18:00", "hora_fin": "02:00"}
/// }
/// ```
///
/// Keys are local dates (`YYYY-MM-DD`); `nombre` is the window's name, `hora_inicio` and
/// `hora_fin` its local start and end (`HH:MM`; an end not after the start is on the next
/// day). Other fields of an entry are ignored, as the legacy monitor ignored them. One
/// entry per date: a date that appears twice is an error. Entries come back in file
/// order; overlaps are checked by [`Schedule::new`].
pub fn parse_legacy(text: &str) -> Result<Vec<LegacyEntry>, LegacyError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let RawEntries(raw) = serde_json::from_str(text).map_err(|e| LegacyError {
        key: None,
        line: (e.line() > 0).then_some(e.line()),
        message: strip_position(&e.to_string()),
    })?;
    let mut out: Vec<LegacyEntry> = Vec::with_capacity(raw.len());
    let mut from = 0;
    for (key, value) in raw {
        // The key's position, for messages: the next occurrence of `"key"` after the previous key.
        let at = text[from..].find(&format!("\"{key}\"")).map(|i| from + i);
        from = at.map_or(from, |i| i + key.len() + 2);
        let line = at.map(|i| line_of(text, i));
        let err = |field: Option<&str>, message: String| {
            let field_line = field.and_then(|f| Some(line_of(text, at? + text[at?..].find(&format!("\"{f}\""))?)));
            LegacyError {
                key: Some(field.map_or_else(|| key.clone(), |f| format!("{key}.{f}"))),
                line: field_line.or(line),
                message,
            }
        };
        let date = parse_date(&key).map_err(|m| err(None, m))?;
        if let Some(first) = out.iter().find(|e| e.window.date == date) {
            return Err(err(
                None,
                format!(
                    "the date appears twice (first{}); the file holds one event per date: put further events of the same date in [[schedule.window]] tables of the configuration",
                    first.line.map(|l| format!(" on line {l}")).unwrap_or_default()
                ),
            ));
        }
        let serde_json::Value::Object(fields) = value else {
            return Err(err(
                None,
                r#"must be an object: {"nombre": ..., "hora_inicio": "HH:MM", "hora_fin": "HH:MM"}"#.into(),
            ));
        };
        let text_field = |name: &str| -> Result<&str, LegacyError> {
            match fields.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s),
                Some(other) => Err(err(Some(name), format!("must be a string, not {other}"))),
                None => Err(err(None, format!("`{name}` is missing"))),
            }
        };
        let name = text_field("nombre")?;
        if name.trim().is_empty() {
            return Err(err(Some("nombre"), "must not be empty: it is the name events are tagged with".into()));
        }
        let start = parse_time(text_field("hora_inicio")?).map_err(|m| err(Some("hora_inicio"), m))?;
        let end = parse_time(text_field("hora_fin")?).map_err(|m| err(Some("hora_fin"), m))?;
        out.push(LegacyEntry {
            key: key.clone(),
            line,
            window: LocalWindow { date, name: name.to_owned(), start, end },
        });
    }
    Ok(out)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// serde_json appends " at line L column C"; the line is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// serde helpers for `date = "YYYY-MM-DD"` and `start = "HH:MM"` in the configuration
/// file. Both also accept TOML's own local date and local time values
/// (`date = 2026-05-17`, `start = 18:00:00`).
pub mod serde_local {
    use super::*;

    /// Accepts a string, or the single-entry map TOML datetime values are presented as.
    struct Text(&'static str);

    impl<'de> Visitor<'de> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
            match map.next_entry::<String, String>()? {
                Some((_, v)) => Ok(v),
                None => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
            }
        }
    }

    pub mod date {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
            let s = d.deserialize_any(Text("a date \"YYYY-MM-DD\""))?;
            parse_date(&s).map_err(de::Error::custom)
        }

        pub fn serialize<S: serde::Serializer>(v: &Date, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(v)
        }
    }

    pub mod time {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
            let s = d.deserialize_any(Text("a time \"HH:MM\""))?;
            parse_time(&s).map_err(de::Error::custom)
        }

        pub fn serialize<S: serde::Serializer>(v: &Time, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&hhmm(*v))
        }
    }
}

#[cfg(test)]
mod tests;
