use jiff::civil::date;
use jiff::{SignedDuration, ToSpan};
use proptest::prelude::*;

use super::*;
use crate::{Kind, Vendor};

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

fn t(h: i8, m: i8) -> Time {
    Time::constant(h, m, 0, 0)
}

fn lw(d: Date, name: &str, start: Time, end: Time) -> LocalWindow {
    LocalWindow { date: d, name: name.into(), start, end }
}

/// The instant of a local date and time in `zone`, written as a string.
fn at(zone: &TimeZone, s: &str) -> Timestamp {
    let dt: jiff::civil::DateTime = s.parse().unwrap();
    zone.to_ambiguous_timestamp(dt).compatible().unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn time_and_date_parsing() {
    assert_eq!(parse_time("18:30"), Ok(t(18, 30)));
    assert_eq!(parse_time("8:05"), Ok(t(8, 5)));
    assert_eq!(parse_time("00:00"), Ok(t(0, 0)));
    assert_eq!(parse_time("23:59:30"), Ok(Time::constant(23, 59, 30, 0)));
    for bad in ["", "18", "18:5", "18:60", "24:30", "-1:00", "18:00:00:00", "18h30", " 18:30", "１8:30"] {
        assert!(parse_time(bad).is_err(), "{bad:?}");
    }
    assert!(parse_time("24:00").unwrap_err().contains("00:00"));
    assert_eq!(parse_date("2026-05-17"), Ok(date(2026, 5, 17)));
    assert_eq!(parse_date("2028-02-29"), Ok(date(2028, 2, 29)));
    for bad in
        ["", "2026-5-17", "2026-02-29", "2026-13-01", "17-05-2026", "2026/05/17", "2026-05-17T00:00", "２026-05-17"]
    {
        assert!(parse_date(bad).is_err(), "{bad:?}");
    }
    assert_eq!((hhmm(t(7, 5)), hhmm(Time::constant(7, 5, 9, 0))), ("07:05".to_string(), "07:05:09".to_string()));
}

#[test]
fn legacy_file_parses() {
    let text = "\u{feff}{\n  \"2026-05-17\": {\"nombre\": \"Concierto A\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"02:00\"},\n  \"2026-05-16\": {\"nombre\": \"Partido\", \"hora_inicio\": \"9:30\", \"hora_fin\": \"12:00\", \"nota\": \"ignored\"}\n}";
    let entries = parse_legacy(text).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].key, "2026-05-17");
    assert_eq!(entries[0].line, Some(2));
    assert_eq!(entries[0].window, lw(date(2026, 5, 17), "Concierto A", t(18, 0), t(2, 0)));
    assert!(entries[0].window.crosses_midnight());
    assert_eq!(entries[1].line, Some(3));
    assert_eq!(entries[1].window, lw(date(2026, 5, 16), "Partido", t(9, 30), t(12, 0)));
    assert_eq!(parse_legacy("{}").unwrap(), []);
}

#[test]
fn legacy_file_errors() {
    let entry = |body: &str| format!("{{\n  \"2026-05-17\": {body}\n}}");
    for (text, key, line, needle) in [
        (entry(r#"{"nombre": "A", "hora_inicio": "18:00", "hora_fin": "6pm"}"#), Some("2026-05-17.hora_fin"), 2, "6pm"),
        (entry(r#"{"nombre": "A", "hora_inicio": 18, "hora_fin": "20:00"}"#), Some("2026-05-17.hora_inicio"), 2, "string"),
        (entry(r#"{"nombre": "", "hora_inicio": "18:00", "hora_fin": "20:00"}"#), Some("2026-05-17.nombre"), 2, "empty"),
        (entry(r#"{"hora_inicio": "18:00", "hora_fin": "20:00"}"#), Some("2026-05-17"), 2, "`nombre` is missing"),
        (entry(r#"["A", "18:00", "20:00"]"#), Some("2026-05-17"), 2, "must be an object"),
        (
            "{\n \"2026-05-31\": {\"nombre\": \"A\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"20:00\"},\n \"2026-06-31\": {}\n}".into(),
            Some("2026-06-31"),
            3,
            "not a date",
        ),
        (
            "{\n \"2026-05-17\": {\"nombre\": \"A\", \"hora_inicio\": \"18:00\", \"hora_fin\": \"20:00\"},\n \"2026-05-17\": {\"nombre\": \"B\", \"hora_inicio\": \"21:00\", \"hora_fin\": \"22:00\"}\n}".into(),
            Some("2026-05-17"),
            3,
            "appears twice (first on line 2)",
        ),
        ("{\n \"2026-05-17\": {\"nombre\": \"A\",}\n}".into(), None, 2, "trailing comma"),
        ("[\"2026-05-17\"]".into(), None, 1, "object keyed by date"),
    ] {
        let e = parse_legacy(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), key, "{text}: {e}");
        assert_eq!(e.line, Some(line), "{text}: {e}");
        assert!(e.message.contains(needle), "{text}: {e}");
    }
    // A multi-line entry: a field's error points at the field's line.
    let e = parse_legacy("{\n  \"2026-05-17\": {\n    \"nombre\": \"A\",\n    \"hora_inicio\": \"18:00\",\n    \"hora_fin\": \"x\"\n  }\n}")
        .unwrap_err();
    assert_eq!((e.key.as_deref(), e.line), (Some("2026-05-17.hora_fin"), Some(5)), "{e}");
    assert_eq!(
        e.to_string(),
        "line 5: key `2026-05-17.hora_fin`: \"x\" is not a time of day; write HH:MM (24-hour clock), e.g. \"18:30\""
    );
}

#[test]
fn a_window_crossing_midnight_belongs_to_its_start_date() {
    let bogota = tz("America/Bogota");
    let s = Schedule::new(
        &[
            lw(date(2026, 5, 17), "Concierto A", t(20, 0), t(2, 0)),
            lw(date(2026, 5, 18), "Feria", t(10, 0), t(12, 0)),
            lw(date(2026, 5, 19), "Hasta medianoche", t(18, 0), t(0, 0)),
        ],
        &bogota,
    )
    .unwrap();
    let w = &s.windows()[0];
    assert_eq!((w.start, w.end), (ts("2026-05-18T01:00:00Z"), ts("2026-05-18T07:00:00Z")));
    assert_eq!(w.date, date(2026, 5, 17));
    for inside in ["2026-05-17T20:00", "2026-05-17T23:59", "2026-05-18T00:30", "2026-05-18T01:59:59"] {
        assert_eq!(s.window_at(at(&bogota, inside)).map(|w| w.name.as_str()), Some("Concierto A"), "{inside}");
    }
    for outside in ["2026-05-17T19:59:59", "2026-05-18T02:00", "2026-05-18T09:59", "2026-05-17T00:30"] {
        assert_eq!(s.window_at(at(&bogota, outside)), None, "{outside}");
    }
    // The next date does not get a copy: on 2026-05-18 only "Feria" exists, and the
    // night of the 18th is empty.
    let on_18th: Vec<&str> =
        s.windows().iter().filter(|w| w.date == date(2026, 5, 18)).map(|w| w.name.as_str()).collect();
    assert_eq!(on_18th, ["Feria"]);
    assert_eq!(s.window_at(at(&bogota, "2026-05-18T23:59")), None);
    assert_eq!(s.window_at(at(&bogota, "2026-05-19T00:30")), None);
    // "00:00" as the end is the next midnight.
    let last = &s.windows()[2];
    assert_eq!(last.end, at(&bogota, "2026-05-20T00:00"));
    assert_eq!(s.window_at(at(&bogota, "2026-05-19T23:59:59")).map(|w| w.name.as_str()), Some("Hasta medianoche"));
    assert_eq!(s.window_at(last.end), None);

    assert_eq!(s.next_change_after(at(&bogota, "2026-05-17T12:00")), Some(w.start));
    assert_eq!(s.next_change_after(w.start), Some(w.end));
    assert_eq!(s.next_change_after(last.end), None);
    assert_eq!(s.current_or_next(at(&bogota, "2026-05-18T00:30")).map(|w| w.name.as_str()), Some("Concierto A"));
    assert_eq!(s.current_or_next(at(&bogota, "2026-05-18T03:00")).map(|w| w.name.as_str()), Some("Feria"));
    assert_eq!(s.current_or_next(last.end), None);
    assert_eq!(s.describe(w), "2026-05-17 20:00 - 2026-05-18 02:00 (America/Bogota)");
}

#[test]
fn dst_in_new_york_uses_compatible_disambiguation() {
    let ny = tz("America/New_York");
    // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT. 2026-11-01: from 02:00 EDT back to 01:00 EST.
    let s = Schedule::new(
        &[
            lw(date(2026, 3, 8), "spring", t(1, 30), t(3, 0)),
            lw(date(2026, 3, 8), "in the gap", t(3, 0), t(2, 40)),
            lw(date(2026, 11, 1), "fall", t(1, 30), t(3, 0)),
            // Daily boundaries: windows that end at, or run past, a midnight next to a change.
            lw(date(2026, 3, 7), "over the spring night", t(23, 0), t(1, 0)),
            lw(date(2026, 10, 31), "until midnight", t(20, 0), t(0, 0)),
            lw(date(2026, 11, 1), "whole evening", t(18, 0), t(0, 0)),
        ],
        &ny,
    )
    .unwrap();
    let find = |name: &str| s.windows().iter().find(|w| w.name == name).unwrap().clone();

    // 01:30 EST to 03:00 EDT: 30 minutes of real time.
    let spring = find("spring");
    assert_eq!((spring.start, spring.end), (ts("2026-03-08T06:30:00Z"), ts("2026-03-08T07:00:00Z")));
    assert_eq!(spring.end.duration_since(spring.start), SignedDuration::from_mins(30));

    // 02:40 does not exist on 2026-03-08 (nor does it on the 9th; this window ends on the
    // 9th at 02:40 EDT, which exists). Its start at 03:00 EDT touches "spring"'s end.
    let gap = find("in the gap");
    assert_eq!(gap.start, spring.end);
    assert_eq!(gap.end, ts("2026-03-09T06:40:00Z"));

    // 01:30 happens twice on 2026-11-01: the earlier one (EDT) is the start; 03:00 EST is
    // the end: 2 h 30 min of real time.
    let fall = find("fall");
    assert_eq!((fall.start, fall.end), (ts("2026-11-01T05:30:00Z"), ts("2026-11-01T08:00:00Z")));
    assert_eq!(fall.end.duration_since(fall.start), SignedDuration::from_mins(150));
    // Both 01:45 EDT and 01:45 EST are inside it.
    assert!(fall.contains(ts("2026-11-01T05:45:00Z")) && fall.contains(ts("2026-11-01T06:45:00Z")));

    // A start in the missing hour is moved forward.
    let s2 = Schedule::new(&[lw(date(2026, 3, 8), "gap start", t(2, 30), t(4, 0))], &ny).unwrap();
    assert_eq!(s2.windows()[0].start, ts("2026-03-08T07:30:00Z"), "02:30 is taken as 03:30 EDT");

    // Daily boundaries. Midnight before the fall change is EDT, after it EST; a window
    // from 23:00 on 2026-03-07 (EST) to 01:00 on the 8th (EST) is unaffected by the gap
    // at 02:00 but ends before "spring" starts.
    let night = find("over the spring night");
    assert_eq!((night.start, night.end), (ts("2026-03-08T04:00:00Z"), ts("2026-03-08T06:00:00Z")));
    let until = find("until midnight");
    assert_eq!(until.end, ts("2026-11-01T04:00:00Z"), "00:00 EDT on 2026-11-01");
    let evening = find("whole evening");
    assert_eq!((evening.start, evening.end), (ts("2026-11-01T23:00:00Z"), ts("2026-11-02T05:00:00Z")));
    assert_eq!(evening.end.duration_since(evening.start), SignedDuration::from_hours(6));
    // Between the windows of 2026-11-01 nothing is open, and the changes come in order.
    assert_eq!(s.window_at(until.end), None);
    assert_eq!(s.next_change_after(until.end), Some(fall.start));
    assert_eq!(s.next_change_after(fall.start), Some(fall.end));
    assert_eq!(s.next_change_after(fall.end), Some(evening.start));
    assert_eq!(s.window_at(ts("2026-11-02T04:59:59Z")).map(|w| w.name.as_str()), Some("whole evening"));
    assert_eq!(s.window_at(ts("2026-11-02T05:00:00Z")), None);
}

#[test]
fn a_window_emptied_by_the_dst_gap_is_an_error() {
    let ny = tz("America/New_York");
    // 02:30 becomes 03:30 EDT, after the 03:15 end.
    let e = Schedule::new(&[lw(date(2026, 3, 8), "x", t(2, 30), t(3, 15))], &ny).unwrap_err();
    assert!(matches!(e, ScheduleError::EmptyAfterDst { index: 0, .. }), "{e}");
    assert!(e.to_string().contains("2026-03-08 03:30") && e.to_string().contains("America/New_York"), "{e}");
    // Entirely in the gap: moved, not empty.
    let s = Schedule::new(&[lw(date(2026, 3, 8), "x", t(2, 10), t(2, 40))], &ny).unwrap();
    assert_eq!(s.windows()[0].start, ts("2026-03-08T07:10:00Z"));
    assert_eq!(s.windows()[0].end, ts("2026-03-08T07:40:00Z"));
}

#[test]
fn overlaps_empty_and_nameless_windows_are_errors() {
    let utc = TimeZone::UTC;
    let d = date(2026, 5, 17);
    let e = Schedule::new(
        &[lw(d, "A", t(18, 0), t(20, 0)), lw(d, "B", t(10, 0), t(11, 0)), lw(d, "C", t(19, 0), t(19, 30))],
        &utc,
    )
    .unwrap_err();
    assert_eq!(e.index(), 2, "the later one in the input: {e}");
    let ScheduleError::Overlap { other, .. } = &e else { panic!("{e}") };
    assert_eq!(*other, 0);
    assert_eq!(
        e.to_string(),
        "the window \"C\" (2026-05-17 19:00 - 2026-05-17 19:30) overlaps the window \"A\" (2026-05-17 18:00 - 2026-05-17 20:00)"
    );
    // Same start.
    let e = Schedule::new(&[lw(d, "A", t(18, 0), t(20, 0)), lw(d, "B", t(18, 0), t(18, 1))], &utc).unwrap_err();
    assert_eq!(e.index(), 1);
    // Across midnight into the next date.
    let e = Schedule::new(&[lw(d, "A", t(22, 0), t(2, 0)), lw(d.tomorrow().unwrap(), "B", t(1, 0), t(3, 0))], &utc)
        .unwrap_err();
    assert_eq!(e.index(), 1);
    // Touching is fine.
    Schedule::new(&[lw(d, "A", t(22, 0), t(2, 0)), lw(d.tomorrow().unwrap(), "B", t(2, 0), t(3, 0))], &utc).unwrap();
    assert!(matches!(Schedule::new(&[lw(d, "A", t(8, 0), t(8, 0))], &utc), Err(ScheduleError::Empty { index: 0, .. })));
    assert!(matches!(Schedule::new(&[lw(d, " ", t(8, 0), t(9, 0))], &utc), Err(ScheduleError::NoName { index: 0 })));
    assert!(matches!(
        Schedule::new(&[lw(Date::MAX, "A", t(8, 0), t(7, 0))], &utc),
        Err(ScheduleError::OutOfRange { index: 0, .. })
    ));
}

#[test]
fn events_are_placed_by_device_time_else_receive_time() {
    let s = Schedule::new(&[lw(date(2026, 5, 17), "A", t(18, 0), t(20, 0))], &TimeZone::UTC).unwrap();
    let mut e = Event::new("k", "cam", Vendor::Generic, Kind::Motion);
    e.received_at = ts("2026-05-17T20:00:05Z");
    assert_eq!(event_time(&e), e.received_at);
    assert_eq!(s.window_for_event(&e), None);
    e.occurred_at = Some(ts("2026-05-17T19:59:58Z"));
    assert_eq!(s.window_for_event(&e).map(|w| w.name.as_str()), Some("A"));
}

#[test]
fn an_empty_schedule_never_changes() {
    let s = Schedule::default();
    assert!(s.is_empty());
    assert_eq!(s.window_at(Timestamp::UNIX_EPOCH), None);
    assert_eq!(s.next_change_after(Timestamp::MIN), None);
    assert_eq!(s.current_or_next(Timestamp::MIN), None);
}

/// Random windows over a few weeks that include both 2026 DST changes in New York.
fn arb_windows() -> impl Strategy<Value = Vec<LocalWindow>> {
    let day = prop_oneof![
        (0i32..20).prop_map(|n| date(2026, 3, 1).checked_add(n.days()).unwrap()),
        (0i32..20).prop_map(|n| date(2026, 10, 22).checked_add(n.days()).unwrap()),
    ];
    // Minute resolution, with extra weight on the hours around the changes.
    let time = prop_oneof![
        (0i8..24, 0i8..60).prop_map(|(h, m)| t(h, m)),
        (0i8..4, prop::sample::select(vec![0i8, 30, 59])).prop_map(|(h, m)| t(h, m)),
    ];
    prop::collection::vec((day, time.clone(), time), 0..12).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (d, s, e))| lw(d, &format!("w{i}"), s, e))
            .filter(|w| w.start != w.end)
            .collect()
    })
}

/// Build a schedule from `windows`, dropping the ones that overlap or are empty.
fn lenient(mut windows: Vec<LocalWindow>, zone: &TimeZone) -> Schedule {
    loop {
        match Schedule::new(&windows, zone) {
            Ok(s) => return s,
            Err(e) => {
                windows.remove(e.index());
            }
        }
    }
}

fn zone() -> impl Strategy<Value = TimeZone> {
    prop_oneof![Just(tz("America/New_York")), Just(tz("America/Bogota")), Just(TimeZone::UTC)]
}

/// Instants from 2026-02-27 to 2026-11-13, around the windows.
fn arb_instant() -> impl Strategy<Value = Timestamp> {
    let (lo, hi) = (ts("2026-02-27T00:00:00Z").as_second(), ts("2026-11-13T00:00:00Z").as_second());
    prop_oneof![
        (lo..hi).prop_map(|s| Timestamp::from_second(s).unwrap()),
        // Whole minutes, which hit starts and ends exactly.
        (lo / 60..hi / 60).prop_map(|m| Timestamp::from_second(m * 60).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn windows_are_sorted_and_disjoint(windows in arb_windows(), zone in zone()) {
        let s = lenient(windows, &zone);
        for w in s.windows() {
            prop_assert!(w.start < w.end);
        }
        for pair in s.windows().windows(2) {
            prop_assert!(pair[0].end <= pair[1].start);
        }
    }

    #[test]
    fn next_change_is_strictly_later_and_window_at_is_constant_until_it(
        windows in arb_windows(), zone in zone(), t in arb_instant(), frac in 0.0f64..1.0,
    ) {
        let s = lenient(windows, &zone);
        let here = s.window_at(t).cloned();
        match s.next_change_after(t) {
            Some(c) => {
                prop_assert!(c > t);
                // Constant on [t, c): at a point in between and just before c.
                let gap = c.duration_since(t);
                let mid = t + gap.mul_f64(frac).min(gap - SignedDuration::from_nanos(1));
                prop_assert_eq!(s.window_at(mid).cloned(), here.clone());
                prop_assert_eq!(s.window_at(c - SignedDuration::from_nanos(1)).cloned(), here.clone());
                // ... and it does change at c.
                prop_assert_ne!(s.window_at(c).cloned(), here.clone());
                // current_or_next: the open window, or the one that opens at c.
                let expected = here.clone().or_else(|| s.window_at(c).cloned());
                prop_assert_eq!(s.current_or_next(t).cloned(), expected);
            }
            None => {
                prop_assert!(here.is_none());
                prop_assert!(s.windows().iter().all(|w| w.end <= t));
                prop_assert_eq!(s.current_or_next(t), None);
            }
        }
        // window_at agrees with a linear scan.
        prop_assert_eq!(s.window_at(t), s.windows().iter().find(|w| w.contains(t)));
    }

    #[test]
    fn window_at_changes_only_at_change_points(windows in arb_windows(), zone in zone(), t in arb_instant(), step in 1i64..7_200) {
        let s = lenient(windows, &zone);
        let u = t + SignedDuration::from_secs(step);
        if s.window_at(t) != s.window_at(u) {
            let c = s.next_change_after(t);
            prop_assert!(c.is_some_and(|c| c <= u), "a change in ({t}, {u}] but next_change_after says {c:?}");
        }
    }
}
