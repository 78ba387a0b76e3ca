use std::sync::atomic::{AtomicU64, Ordering};

use camgate_core::schedule::LocalWindow;
use camgate_core::{Kind, Vendor};
use jiff::civil::{Date, Time, date};
use jiff::tz::TimeZone;

use super::*;

fn bogota() -> TimeZone {
    TimeZone::get("America/Bogota").unwrap()
}

fn local(d: Date, h: i8, m: i8) -> Timestamp {
    bogota().to_ambiguous_timestamp(d.at(h, m, 0, 0)).compatible().unwrap()
}

fn lw(d: Date, name: &str, (sh, sm): (i8, i8), (eh, em): (i8, i8)) -> LocalWindow {
    LocalWindow { date: d, name: name.into(), start: Time::constant(sh, sm, 0, 0), end: Time::constant(eh, em, 0, 0) }
}

/// A [`TokioClock`] that counts how often it is read: each read is one turn of a wait loop.
#[derive(Debug)]
struct Counting {
    clock: TokioClock,
    reads: AtomicU64,
}

impl WallClock for Counting {
    fn now(&self) -> Timestamp {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.clock.now()
    }
}

fn gate(windows: &[LocalWindow], start: Timestamp) -> (ScheduleGate, Arc<Counting>) {
    let schedule = Arc::new(Schedule::new(windows, &bogota()).unwrap());
    let clock = Arc::new(Counting { clock: TokioClock::starting_at(start), reads: AtomicU64::new(0) });
    (ScheduleGate::with_clock(schedule, clock.clone()), clock)
}

/// Within a millisecond (tokio's timer resolution) after `expected`.
fn assert_at(actual: Timestamp, expected: Timestamp) {
    let late = actual.duration_since(expected);
    assert!(late >= SignedDuration::ZERO && late < SignedDuration::from_millis(2), "{actual} vs {expected}");
}

#[tokio::test(start_paused = true)]
async fn the_gate_sleeps_across_two_days_in_simulated_time() {
    let d = date(2026, 5, 16);
    let windows = [
        lw(d, "Concierto A", (20, 0), (2, 0)),
        lw(d.tomorrow().unwrap().tomorrow().unwrap(), "Partido", (14, 30), (17, 0)),
    ];
    let (gate, clock) = gate(&windows, local(d, 12, 0));
    let cancel = CancellationToken::new();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let started = tokio::time::Instant::now();
    let result = gate
        .run_windows(&cancel, |window, in_window| {
            let gate = gate.clone();
            let opened = gate.now();
            // Events seen while the window is open are tagged with it.
            let tagged = gate.schedule_for(opened);
            let runs = runs.clone();
            async move {
                in_window.cancelled().await;
                runs.lock().unwrap().push((window.name.clone(), opened, gate.now(), tagged));
            }
        })
        .await;
    assert_eq!(result, Ok(()), "no window left after the second");
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 2);
    let (name, opened, closed, tagged) = &runs[0];
    assert_eq!((name.as_str(), tagged.as_deref()), ("Concierto A", Some("Concierto A")));
    assert_at(*opened, local(d, 20, 0));
    assert_at(*closed, local(d.tomorrow().unwrap(), 2, 0));
    let (name, opened, closed, _) = &runs[1];
    assert_eq!(name, "Partido");
    assert_at(*opened, local(date(2026, 5, 18), 14, 30));
    assert_at(*closed, local(date(2026, 5, 18), 17, 0));
    // Simulated time ran for 2 days and 5 hours...
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(53 * 3600) && elapsed < Duration::from_secs(53 * 3600 + 1), "{elapsed:?}");
    // ... and the gate woke about once per MAX_NAP, not in a busy loop.
    let naps = elapsed.as_secs() / MAX_NAP.as_secs();
    let reads = clock.reads.load(Ordering::Relaxed);
    assert!(reads <= 3 * naps + 20, "{reads} clock reads for {naps} naps");
}

#[tokio::test(start_paused = true)]
async fn a_window_open_at_start_is_entered_at_once_and_back_to_back_windows_follow() {
    let d = date(2026, 5, 17);
    let windows = [lw(d, "A", (9, 0), (11, 0)), lw(d, "B", (11, 0), (12, 0))];
    let (gate, _) = gate(&windows, local(d, 10, 0));
    let cancel = CancellationToken::new();
    assert_eq!(gate.wait_open(&cancel).await.unwrap().map(|w| w.name), Some("A".into()));
    assert_eq!(gate.current().map(|w| w.name.as_str()), Some("A"));
    let a = gate.current().unwrap().clone();
    gate.wait_closed(&a, &cancel).await.unwrap();
    assert_at(gate.now(), local(d, 11, 0));
    // B opens the instant A closes.
    let b = gate.wait_open(&cancel).await.unwrap().unwrap();
    assert_eq!(b.name, "B");
    assert_at(gate.now(), local(d, 11, 0));
    gate.wait_closed(&b, &cancel).await.unwrap();
    assert_eq!(gate.wait_open(&cancel).await, Ok(None));
}

#[tokio::test(start_paused = true)]
async fn a_clock_step_is_noticed_within_one_nap() {
    let d = date(2026, 5, 17);
    let (gate, clock) = gate(&[lw(d, "A", (18, 0), (20, 0))], local(d, 12, 0));
    let cancel = CancellationToken::new();
    let started = tokio::time::Instant::now();
    let waiting = tokio::spawn({
        let gate = gate.clone();
        let cancel = cancel.clone();
        async move { gate.wait_open(&cancel).await }
    });
    tokio::time::sleep(Duration::from_secs(600)).await;
    // The system clock is stepped forward by 5 hours (it now reads 17:10).
    clock.clock.jump(SignedDuration::from_hours(5));
    let window = waiting.await.unwrap().unwrap().unwrap();
    assert_eq!(window.name, "A");
    assert_at(gate.now(), local(d, 18, 0));
    // Without the step it would have taken 6 hours; with it, 10 minutes + 50 minutes.
    let elapsed = started.elapsed();
    assert!(elapsed <= Duration::from_secs(3600 + 1), "{elapsed:?}");

    // Stepped back while a window is open: its end is still awaited on the wall clock.
    clock.clock.jump(SignedDuration::from_hours(-1));
    let before = tokio::time::Instant::now();
    gate.wait_closed(&window, &cancel).await.unwrap();
    assert!(before.elapsed() >= Duration::from_secs(3 * 3600), "{:?}", before.elapsed());
    assert_at(gate.now(), local(d, 20, 0));
}

#[tokio::test(start_paused = true)]
async fn waits_end_when_cancelled() {
    let d = date(2026, 5, 17);
    let (gate, _) = gate(&[lw(d, "A", (18, 0), (20, 0))], local(d, 12, 0));
    let cancel = CancellationToken::new();
    let started = tokio::time::Instant::now();
    let waiting = tokio::spawn({
        let gate = gate.clone();
        let cancel = cancel.clone();
        async move { gate.wait_open(&cancel).await }
    });
    tokio::time::sleep(Duration::from_secs(5400)).await;
    cancel.cancel();
    assert_eq!(waiting.await.unwrap(), Err(Cancelled));
    assert!(started.elapsed() < Duration::from_secs(5401));

    // run_windows: a cancel inside a window stops the work and returns Err.
    let (gate, _) = gate_at_open();
    let cancel = CancellationToken::new();
    let stopped = Arc::new(AtomicU64::new(0));
    let result = gate
        .run_windows(&cancel, |_, in_window| {
            let cancel = cancel.clone();
            let stopped = stopped.clone();
            async move {
                cancel.cancel();
                in_window.cancelled().await;
                stopped.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await;
    assert_eq!(result, Err(Cancelled));
    assert_eq!(stopped.load(Ordering::Relaxed), 1, "the work saw its window token cancelled");
}

fn gate_at_open() -> (ScheduleGate, Arc<Counting>) {
    let d = date(2026, 5, 17);
    gate(&[lw(d, "A", (18, 0), (20, 0))], local(d, 19, 0))
}

#[tokio::test(start_paused = true)]
async fn work_that_ends_early_is_not_run_twice_in_one_window() {
    let (gate, _) = gate_at_open();
    let cancel = CancellationToken::new();
    let mut runs = 0;
    gate.run_windows(&cancel, |_, _| {
        runs += 1;
        async {}
    })
    .await
    .unwrap();
    assert_eq!(runs, 1);
    assert_at(gate.now(), local(date(2026, 5, 17), 20, 0));
}

#[test]
fn events_are_tagged_by_device_time_else_receive_time() {
    let d = date(2026, 5, 17);
    let schedule = Schedule::new(&[lw(d, "Concierto A", (20, 0), (2, 0))], &bogota()).unwrap();
    let mut e = Event::new("k1", "cam", Vendor::Generic, Kind::Motion);
    e.received_at = local(d.tomorrow().unwrap(), 0, 30);
    assert!(tag(&schedule, &mut e));
    assert_eq!(e.schedule.as_deref(), Some("Concierto A"));

    // The device says it happened before the window; received inside it.
    let mut e = Event::new("k2", "cam", Vendor::Generic, Kind::Motion);
    e.received_at = local(d, 20, 0);
    e.occurred_at = Some(local(d, 19, 59));
    assert!(!tag(&schedule, &mut e));
    assert_eq!(e.schedule, None);

    // An event that already has a schedule keeps it.
    let mut e = Event::new("k3", "cam", Vendor::Generic, Kind::Motion);
    e.received_at = local(d, 23, 59);
    e.schedule = Some("from the device".into());
    tag(&schedule, &mut e);
    assert_eq!(e.schedule.as_deref(), Some("from the device"));

    assert_eq!(schedule_for(&schedule, local(d, 23, 59)).as_deref(), Some("Concierto A"));
    assert_eq!(schedule_for(&schedule, local(d.tomorrow().unwrap(), 2, 0)), None);
}

#[test]
fn durations_for_log_lines() {
    assert_eq!(humanize(SignedDuration::from_secs(5 * 3600 + 3 * 60 + 7)), "5h 3m");
    assert_eq!(humanize(SignedDuration::from_secs(42)), "42s");
    assert_eq!(humanize(SignedDuration::from_secs(-90)), "-1m 30s");
    assert_eq!(humanize(SignedDuration::ZERO), "0s");
    assert_eq!(humanize(SignedDuration::from_hours(49)), "2d 1h");
}
