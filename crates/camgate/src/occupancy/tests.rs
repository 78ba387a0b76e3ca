use std::sync::Arc;

use camgate_core::config::Config;
use camgate_core::{Event, Kind, State, Vendor};
use jiff::Timestamp;

use super::*;
use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::store::{Appended, EventFilter, Store, StoreOptions, Writer};

const NORTE: &str = r#"
[[zone]]
name = "Norte"
enter = [{ name = { contains = "AFORO ENTRADA PARQUEADERO NORTE" } }]
exit = [{ name = { contains = "AFORO SALIDA PARQUEADERO NORTE" } }]
"#;

fn config(text: &str) -> Config {
    Config::from_toml(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

async fn open(dir: &std::path::Path, c: &Config) -> (Store, Writer, Arc<Metrics>, Bus) {
    let metrics = Arc::new(Metrics::new());
    let bus = Bus::default();
    let mut o = StoreOptions::in_dir(dir);
    o.occupancy = Occupancy::from_config(c);
    let (s, w) = Store::open(o, metrics.clone(), bus.clone()).await.unwrap();
    (s, w, metrics, bus)
}

/// An Avigilon analytic event as the poller stores it: `rule` = analyticEventName,
/// area and activity in `data`.
fn avigilon(key: &str, name: &str) -> Event {
    let mut e = Event::new(key, "acc", Vendor::Avigilon, Kind::Counting);
    e.rule = Some(name.into());
    e.code = Some("DEVICE_ANALYTICS_STOP".into());
    e.state = Some(State::Stop);
    e.data = Some(serde_json::json!({ "analyticEventName": name, "area": "", "activity": "OBJECT_COUNTING_ENTER" }));
    e
}

fn enter(key: &str) -> Event {
    avigilon(key, "AFORO ENTRADA PARQUEADERO NORTE")
}

fn exit(key: &str) -> Event {
    avigilon(key, "aforo salida  parqueadero norte")
}

fn at(mut e: Event, t: &str) -> Event {
    e.occurred_at = Some(t.parse().unwrap());
    e
}

fn in_window(mut e: Event, w: &str) -> Event {
    e.schedule = Some(w.into());
    e
}

async fn one(store: &Store, period: Option<&str>, now: Timestamp) -> ZoneStatus {
    store.zones(period, None, now).await.unwrap().remove(0)
}

fn now() -> Timestamp {
    Timestamp::now()
}

#[tokio::test]
async fn entries_and_exits_with_the_clamp_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, ..) = open(dir.path(), &config(NORTE)).await;
    // Two exits before any entry (their entries were before camgate started): clamped.
    store.append_many(vec![exit("x1"), exit("x2"), enter("e1")]).await.unwrap();
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries, z.exits), (1, 1, 2), "max(0, ...) per event: 0, 0, 1");
    assert_eq!(z.period.as_deref(), Some("all"));
    store.append(enter("e2")).await.unwrap();
    store.append(exit("x3")).await.unwrap();
    store.append(exit("x4")).await.unwrap();
    store.append(exit("x5")).await.unwrap();
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries, z.exits), (0, 2, 5));
    assert!(z.updated_at.is_some() && z.capacity.is_none() && z.percent.is_none());
    // Events that match no zone change nothing.
    store.append(avigilon("other", "PUERTA 3")).await.unwrap();
    assert_eq!(one(&store, None, now()).await.last_seq, Some(7));
    writer.close().await;
}

#[tokio::test]
async fn without_the_clamp_the_count_goes_negative() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, ..) = open(dir.path(), &config(&format!("{NORTE}clamp_at_zero = false\n"))).await;
    store.append_many(vec![exit("x1"), exit("x2"), enter("e1")]).await.unwrap();
    assert_eq!(one(&store, None, now()).await.count, -1);
    writer.close().await;
}

#[tokio::test]
async fn duplicates_never_count_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, ..) = open(dir.path(), &config(NORTE)).await;
    assert!(matches!(store.append(enter("a")).await.unwrap(), Appended::New(_)));
    // The same key again: a re-fetch or an overlapping poll window.
    assert_eq!(store.append(enter("a")).await.unwrap(), Appended::Duplicate);
    // Duplicates inside one batch, and of an earlier batch.
    let out = store.append_many(vec![enter("b"), enter("b"), enter("a"), exit("c"), exit("c")]).await.unwrap();
    assert_eq!(out.iter().filter(|o| matches!(o, Appended::New(_))).count(), 2);
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries, z.exits), (1, 2, 1));
    // Concurrent producers sending the same keys (two pollers with overlapping windows).
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                store.append(enter(&format!("p{i}"))).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries), (51, 52));
    writer.close().await;
}

#[tokio::test]
async fn counts_survive_a_restart_and_replays_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(NORTE);
    let (store, writer, ..) = open(dir.path(), &c).await;
    store.append_many((0..5).map(|i| enter(&format!("e{i}"))).collect()).await.unwrap();
    store.append(exit("x0")).await.unwrap();
    writer.close().await;
    drop(store);

    let (store, writer, ..) = open(dir.path(), &c).await;
    assert_eq!(one(&store, None, now()).await.count, 4, "persisted");
    // After a restart a poller fetches the same window again, plus one new event.
    let mut replay: Vec<Event> = (0..5).map(|i| enter(&format!("e{i}"))).collect();
    replay.push(exit("x0"));
    replay.push(enter("e5"));
    store.append_many(replay).await.unwrap();
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries, z.exits), (5, 6, 1));
    writer.close().await;
}

#[tokio::test]
async fn daily_reset_in_the_site_timezone_across_dst() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[site]\ntimezone = \"America/New_York\"\n{NORTE}reset = \"daily 04:00\"\n");
    let (store, writer, ..) = open(dir.path(), &config(&text)).await;
    // 2026-03-08 is the spring-forward day: 04:00 EDT = 08:00Z (04:00 EST would be 09:00Z).
    store
        .append_many(vec![
            at(enter("a"), "2026-03-08T03:00:00Z"), // 22:00 EST on the 7th
            at(enter("b"), "2026-03-08T07:59:00Z"), // 03:59 EDT: still the 7th's period
            at(enter("c"), "2026-03-08T08:00:00Z"), // 04:00 EDT: the 8th
            at(enter("d"), "2026-03-08T08:30:00Z"), // 04:30 EDT (03:30 at the old offset)
            at(exit("e"), "2026-03-09T07:00:00Z"),  // 03:00 EDT on the 9th: the 8th's period
        ])
        .await
        .unwrap();
    let day7 = one(&store, Some("2026-03-07"), now()).await;
    assert_eq!((day7.count, day7.entries), (2, 2));
    let day8 = one(&store, Some("2026-03-08"), now()).await;
    assert_eq!((day8.count, day8.entries, day8.exits), (1, 2, 1));
    // The current period follows the clock in the site zone.
    let z = one(&store, None, "2026-03-09T07:59:00Z".parse().unwrap()).await;
    assert_eq!((z.period.as_deref(), z.count), (Some("2026-03-08"), 1));
    let z = one(&store, None, "2026-03-09T08:00:00Z".parse().unwrap()).await;
    assert_eq!((z.period.as_deref(), z.count, z.updated_at), (Some("2026-03-09"), 0, None), "a fresh day is empty");
    // Without a device time, received_at decides.
    let mut late = enter("f");
    late.received_at = "2026-03-09T09:00:00Z".parse().unwrap();
    store.append(late).await.unwrap();
    assert_eq!(one(&store, Some("2026-03-09"), now()).await.count, 1);
    let history = store.zone_history(None, 10).await.unwrap();
    assert_eq!(history.len(), 3);
    writer.close().await;
}

#[tokio::test]
async fn reset_by_schedule_counts_per_window() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, ..) = open(dir.path(), &config(&format!("{NORTE}reset = \"schedule\"\n"))).await;
    assert_eq!(one(&store, None, now()).await.period, None, "nothing counted yet");
    store
        .append_many(vec![
            in_window(enter("a1"), "Concierto A"),
            in_window(enter("a2"), "Concierto A"),
            enter("outside"), // no window: not counted in a schedule zone
            in_window(exit("a3"), "Concierto A"),
        ])
        .await
        .unwrap();
    store.append_many(vec![in_window(enter("b1"), "Partido B")]).await.unwrap();
    let a = one(&store, Some("Concierto A"), now()).await;
    assert_eq!((a.count, a.entries, a.exits), (1, 2, 1));
    let b = one(&store, None, now()).await;
    assert_eq!((b.period.as_deref(), b.count), (Some("Partido B"), 1), "current = the window counted in last");
    assert_eq!(one(&store, Some("Nope"), now()).await.count, 0);
    writer.close().await;
}

#[tokio::test]
async fn capacity_alarms_have_hysteresis_and_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&format!("{NORTE}capacity = 10\nrecover_below = 80\n"));
    let (store, writer, metrics, bus) = open(dir.path(), &c).await;
    let mut live = bus.subscribe();
    let mut n = 0;
    let mut next = |f: fn(&str) -> Event| {
        n += 1;
        f(&format!("k{n}"))
    };
    // Up to 9: nothing. The 10th: exceeded.
    for _ in 0..9 {
        store.append(next(enter)).await.unwrap();
    }
    assert!(alarms(&store).await.is_empty());
    store.append(next(enter)).await.unwrap();
    let a = alarms(&store).await;
    assert_eq!(a.len(), 1);
    let e = &a[0].event;
    assert_eq!((e.source.as_str(), e.kind, e.code.as_deref()), ("Norte", Kind::Counting, Some(CAPACITY_EXCEEDED)));
    assert_eq!(e.state, Some(State::Start));
    assert_eq!(e.counts.as_ref().unwrap().total, Some(10));
    let data = e.data.as_ref().unwrap();
    assert_eq!(
        (data["count"].as_i64(), data["capacity"].as_u64(), data["percent"].as_f64()),
        (Some(10), Some(10), Some(100.0))
    );
    assert_eq!(data["cause"]["seq"].as_u64(), Some(10));
    assert!(a[0].seq > 10, "stored after its cause");
    let z = one(&store, None, now()).await;
    assert!(z.over_capacity);
    assert_eq!(z.percent, Some(100.0));
    // Hovering between 8 and 11: no new alarm (recovery is below 80 % = 8).
    for f in [exit as fn(&str) -> Event, exit, enter, enter, enter, exit, exit, exit] {
        store.append(next(f)).await.unwrap();
    }
    assert_eq!(alarms(&store).await.len(), 1);
    assert_eq!(one(&store, None, now()).await.count, 8);
    store.append(next(exit)).await.unwrap(); // 7 < 8: recovered
    let a = alarms(&store).await;
    assert_eq!(a.len(), 2);
    assert_eq!((a[1].event.code.as_deref(), a[1].event.state), (Some(CAPACITY_RECOVERED), Some(State::Stop)));
    assert!(!one(&store, None, now()).await.over_capacity);
    // Both went out on the live bus like any stored event.
    let mut seen = Vec::new();
    while let Ok(e) = live.try_recv() {
        if e.event.source == "Norte" {
            seen.push((e.seq, e.event.code.clone().unwrap()));
        }
    }
    assert_eq!(seen, a.iter().map(|s| (s.seq, s.event.code.clone().unwrap())).collect::<Vec<_>>());
    assert_eq!(store.head(), a[1].seq, "the head includes the alarm");
    assert!(metrics.render().contains(r#"camgate_events_stored_total{source="Norte",kind="counting"} 2"#));

    // In one batch: crossing up and down again stores both, in order.
    store
        .append_many((0..4).map(|i| enter(&format!("m{i}"))).chain((5..9).map(|i| exit(&format!("m{i}")))).collect())
        .await
        .unwrap();
    let codes: Vec<String> = alarms(&store).await.iter().map(|a| a.event.code.clone().unwrap()).collect();
    assert_eq!(codes, [CAPACITY_EXCEEDED, CAPACITY_RECOVERED, CAPACITY_EXCEEDED, CAPACITY_RECOVERED]);
    writer.close().await;
    drop(store);

    // The alarm state is persisted: after a restart, going up to 10 alarms once more, and
    // only once.
    let (store, writer, ..) = open(dir.path(), &c).await;
    assert_eq!(one(&store, None, now()).await.count, 7);
    for i in 0..5 {
        store.append(enter(&format!("r{i}"))).await.unwrap();
    }
    assert_eq!(alarms(&store).await.len(), 5);
    writer.close().await;
}

async fn alarms(store: &Store) -> Vec<crate::store::StoredEvent> {
    let filter = EventFilter { source: Some("Norte".into()), kind: Some(Kind::Counting) };
    store.read_after(0, 1000, &filter).await.unwrap()
}

#[tokio::test]
async fn an_event_can_count_in_several_zones_and_both_lists() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[[zone]]
name = "Estadio"
enter = [{ activity = { equals = "OBJECT_COUNTING_ENTER" } }]
exit = [{ activity = { equals = "OBJECT_COUNTING_EXIT" } }]
[[zone]]
name = "Gate"
enter = [{ source = { equals = "gate-1" }, kind = { equals = "line_crossing" } }]
exit = [{ source = { equals = "gate-1" } }]
"#;
    let (store, writer, ..) = open(dir.path(), &config(text)).await;
    let mut cross = Event::new("d1", "gate-1", Vendor::Dahua, Kind::LineCrossing);
    cross.data = Some(serde_json::json!({ "activity": "OBJECT_COUNTING_ENTER" }));
    store.append(cross).await.unwrap();
    let zones = store.zones(None, None, now()).await.unwrap();
    assert_eq!((zones[0].count, zones[0].entries), (1, 1), "Estadio: by activity, from a Dahua event");
    assert_eq!((zones[1].count, zones[1].entries, zones[1].exits), (0, 1, 1), "Gate: matched both lists");
    let only = store.zones(None, Some("Gate"), now()).await.unwrap();
    assert_eq!(only.len(), 1);
    writer.close().await;
}

#[tokio::test]
async fn legacy_tables_mirror_the_counts_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[site]\ntimezone = \"America/Bogota\"\n[occupancy]\nlegacy_tables = true\n\
         legacy_events = [{{ name = {{ contains = \"PUERTA\" }} }}]\n{NORTE}reset = \"schedule\"\nlegacy_table = \"Aforo_parqueadero\"\n"
    );
    let (store, writer, ..) = open(dir.path(), &config(&text)).await;
    let mut door = in_window(at(avigilon("d", "Puerta 4 ingreso"), "2026-05-17T20:00:00.250Z"), "Concierto A");
    door.data.as_mut().unwrap()["cameraId"] = "4xIx1DMwMLSw".into();
    store
        .append_many(vec![
            in_window(enter("a"), "Concierto A"),
            in_window(enter("b"), "Concierto A"),
            in_window(enter("b"), "Concierto A"),
            door.clone(),
            in_window(exit("c"), "Concierto A"),
        ])
        .await
        .unwrap();
    store.append(door).await.unwrap(); // a duplicate: no second row
    writer.close().await;
    drop(store);

    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("camgate.db").display()))
        .await
        .unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT evento, aforo FROM Aforo_parqueadero").fetch_all(&mut db).await.unwrap();
    assert_eq!(rows, [("Concierto A".to_string(), 1)]);
    let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
        "SELECT analyticEventName, activity, cameraId, timestamp, nombre_evento, event_seq FROM eventos_Analisis",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "Puerta 4 ingreso");
    assert_eq!(rows[0].2, "4xIx1DMwMLSw");
    assert_eq!(rows[0].3, "2026-05-17 15:00:00.250", "local Bogota time");
    assert_eq!(rows[0].4, "Concierto A");
    assert_eq!(rows[0].5, 3);
}

#[tokio::test]
async fn without_zones_nothing_is_counted_or_created() {
    let dir = tempfile::tempdir().unwrap();
    let c = config("");
    assert!(Occupancy::from_config(&c).is_none());
    let (store, writer, ..) = open(dir.path(), &c).await;
    store.append(enter("a")).await.unwrap();
    assert!(store.zones(None, None, now()).await.unwrap().is_empty());
    writer.close().await;
}

#[test]
fn percent_rounds_to_one_decimal() {
    assert_eq!(percent(1, 3), 33.3);
    assert_eq!(percent(2, 3), 66.7);
    assert_eq!(percent(500, 500), 100.0);
    assert_eq!(percent(-1, 10), -10.0);
}

#[tokio::test]
async fn a_batch_touching_many_periods_reads_and_writes_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, ..) = open(dir.path(), &config(&format!("{NORTE}reset = \"schedule\"\n"))).await;
    // More (zone, period) rows than one statement holds, twice, in one batch each.
    for round in 0..2 {
        let batch = (0..150).map(|i| in_window(enter(&format!("{round}-{i}")), &format!("w{i}"))).collect();
        store.append_many(batch).await.unwrap();
    }
    for i in [0, 63, 64, 149] {
        let z = one(&store, Some(&format!("w{i}")), now()).await;
        assert_eq!((z.count, z.entries), (2, 2), "w{i}");
    }
    assert_eq!(store.zone_history(None, 1000).await.unwrap().len(), 150);
    writer.close().await;
}

// ---- clamp_at_zero: the fold in event-time order, whatever order events arrive in ----

/// `NORTE` plus an unclamped copy counting the same events.
fn norte_and_libre(extra: &str) -> String {
    format!(
        "{NORTE}{extra}\n[[zone]]\nname = \"Libre\"\nclamp_at_zero = false\n\
         enter = [{{ name = {{ contains = \"AFORO ENTRADA PARQUEADERO NORTE\" }} }}]\n\
         exit = [{{ name = {{ contains = \"AFORO SALIDA PARQUEADERO NORTE\" }} }}]\n"
    )
}

/// `secs` seconds after 2026-05-17T20:00:00Z.
fn time(secs: i64) -> Timestamp {
    Timestamp::from_second(1_779_048_000 + secs).unwrap()
}

/// `e` at [`time`]`(secs)`.
fn at_s(mut e: Event, secs: i64) -> Event {
    e.occurred_at = Some(time(secs));
    e
}

/// The clamped count of `steps` (`(event time, seq, enter - exit)`) folded in (time, seq)
/// order: what camgate must show whatever order they arrived in.
fn clamped_fold(steps: &[(i64, u64, i64)]) -> i64 {
    let mut sorted = steps.to_vec();
    sorted.sort_unstable_by_key(|&(t, seq, _)| (t, seq));
    sorted.iter().fold(0, |count, &(_, _, d)| (count + d).max(0))
}

/// `zone_steps` of `zone`, in (at_us, seq) order: `(at_us, seq, delta, count_after)`.
async fn stored_steps(dir: &std::path::Path, zone: &str) -> Vec<(i64, i64, i64, i64)> {
    use sqlx::Connection;
    let mut db =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.join("camgate.db").display())).await.unwrap();
    sqlx::query_as("SELECT at_us, seq, delta, count_after FROM zone_steps WHERE zone = ? ORDER BY at_us, seq")
        .bind(zone)
        .fetch_all(&mut db)
        .await
        .unwrap()
}

/// Every stored step's `count_after` is the clamped fold up to it.
fn assert_steps_consistent(steps: &[(i64, i64, i64, i64)]) {
    let mut count = 0;
    for (i, &(at, seq, delta, after)) in steps.iter().enumerate() {
        count = if at == i64::MIN { after } else { (count + delta).max(0) };
        assert_eq!(after, count, "step {i} ({at}, {seq}) of {steps:?}");
    }
}

#[tokio::test]
async fn an_exit_stored_before_its_entry_counts_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, ..) = open(dir.path(), &config(&norte_and_libre(""))).await;
    // The exit at :05 is delivered a cycle before the entry at :00 it followed.
    store.append(at_s(exit("x"), 5)).await.unwrap();
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries, z.exits), (0, 0, 1), "clamped for now: its entry is unknown");
    store.append(at_s(enter("e"), 0)).await.unwrap();
    let zones = store.zones(None, None, now()).await.unwrap();
    assert_eq!((zones[0].count, zones[0].entries, zones[0].exits), (0, 1, 1), "in event time: 1, then 0");
    assert_eq!(zones[0].last_seq, Some(2));
    assert_eq!(zones[1].count, 0, "unclamped: entries - exits");
    // The same in one batch, stored exit first.
    store.append_many(vec![at_s(exit("x2"), 9), at_s(enter("e2"), 8), at_s(enter("e3"), 10)]).await.unwrap();
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries, z.exits), (1, 3, 2));
    // Equal times: the order stored (seq) decides, so this exit is swallowed.
    store.append_many(vec![at_s(exit("x3"), 20), at_s(exit("x4"), 20), at_s(enter("e4"), 20)]).await.unwrap();
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries, z.exits), (1, 4, 4), "1, 0, 0 (clamped), 1");
    writer.close().await;
    drop(store);
    let steps = stored_steps(dir.path(), "Norte").await;
    assert_eq!(steps.len(), 8, "one step per counted event: {steps:?}");
    assert_steps_consistent(&steps);
    assert!(stored_steps(dir.path(), "Libre").await.is_empty(), "no steps without the clamp");
}

/// An event that is an entry (`delta` 1), an exit (-1) or both (0), at `secs`.
fn step_event(key: &str, delta: i64, secs: i64) -> Event {
    let e = match delta {
        1 => enter(key),
        -1 => exit(key),
        _ => avigilon(key, "AFORO ENTRADA PARQUEADERO NORTE / AFORO SALIDA PARQUEADERO NORTE"),
    };
    at_s(e, secs)
}

/// Append `(key, delta, secs)` in one batch; the steps it counted, as `(µs, seq, delta)`.
async fn deliver(store: &Store, batch: &[(String, i64, i64)]) -> Vec<(i64, u64, i64)> {
    let out = store.append_many(batch.iter().map(|(k, d, t)| step_event(k, *d, *t)).collect()).await.unwrap();
    batch
        .iter()
        .zip(out)
        .filter_map(|((_, d, t), o)| match o {
            Appended::New(seq) => Some((time(*t).as_microsecond(), seq, *d)),
            Appended::Duplicate => None,
        })
        .collect()
}

#[tokio::test]
async fn a_late_event_in_a_long_sequence_refolds_what_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&norte_and_libre(""));
    let (store, writer, ..) = open(dir.path(), &c).await;
    // 300 events 10 s apart, the count going up and down and reaching 0 now and then.
    let delta = |i: i64| if (i / 7) % 3 == 2 || i % 5 == 4 { -1 } else { 1 };
    let mut counted = Vec::new();
    for chunk in (0..300i64).collect::<Vec<_>>().chunks(25) {
        let batch: Vec<_> = chunk.iter().map(|&i| (format!("k{i}"), delta(i), i * 10)).collect();
        counted.extend(deliver(&store, &batch).await);
    }
    let z = one(&store, None, now()).await;
    assert_eq!(z.count, clamped_fold(&counted));
    // Late: an exit before everything, then one exit and two entries in the middle, in one
    // batch with an event after the latest.
    for batch in [
        vec![("late0".to_string(), -1, -5)],
        vec![
            ("late1".into(), -1, 1_205),
            ("late2".into(), 1, 1_495),
            ("new".into(), 1, 5_000),
            ("late3".into(), 1, 15),
        ],
    ] {
        counted.extend(deliver(&store, &batch).await);
        let z = one(&store, None, now()).await;
        assert_eq!(z.count, clamped_fold(&counted), "after {batch:?}");
        assert_eq!(
            store.zones(None, Some("Libre"), now()).await.unwrap()[0].count,
            counted.iter().map(|s| s.2).sum::<i64>()
        );
    }
    // A restart: the steps are persisted, a late event still refolds.
    writer.close().await;
    drop(store);
    let (store, writer, ..) = open(dir.path(), &c).await;
    counted.extend(deliver(&store, &[("late4".into(), -1, 995)]).await);
    // And what comes again is a duplicate, not counted.
    assert!(deliver(&store, &[("late4".into(), -1, 995), ("k3".into(), 1, 30)]).await.is_empty());
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries + z.exits), (clamped_fold(&counted), counted.len() as i64));
    writer.close().await;
    drop(store);
    let steps = stored_steps(dir.path(), "Norte").await;
    assert_eq!(steps.len(), counted.len());
    assert_steps_consistent(&steps);
}

#[tokio::test]
async fn a_late_event_decides_the_alarm_on_the_refolded_count() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, ..) = open(dir.path(), &config(&format!("{NORTE}capacity = 3\nrecover_below = 50\n"))).await;
    let mut counted = deliver(&store, &[("e1".into(), 1, 1), ("e2".into(), 1, 2), ("e3".into(), 1, 3)]).await;
    counted.extend(deliver(&store, &[("x10".into(), -1, 10)]).await);
    let a = alarms(&store).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].event.data.as_ref().unwrap()["cause"]["seq"].as_u64(), Some(counted[2].1));
    // Late: an exit at 5 s. In event time 1, 2, 3, 2, 1: below 50 % of 3.
    let late = deliver(&store, &[("x5".into(), -1, 5), ("e20".into(), 1, 20)]).await;
    let a = alarms(&store).await;
    assert_eq!(a.len(), 2, "recovered on the refolded count, then 2 again is not 3");
    let data = a[1].event.data.as_ref().unwrap();
    assert_eq!(a[1].event.code.as_deref(), Some(CAPACITY_RECOVERED));
    assert_eq!((data["count"].as_i64(), data["cause"]["seq"].as_u64()), (Some(1), Some(late[0].1)));
    assert_eq!(a[1].event.key, format!("zone:Norte:all:{CAPACITY_RECOVERED}:{}", late[0].1));
    assert_eq!(a[1].event.occurred_at, Some(time(5)), "the cause's time");
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.over_capacity), (2, false));
    writer.close().await;
}

#[tokio::test]
async fn a_row_counted_without_steps_gets_a_baseline() {
    // Counted by a zone without the clamp (as a store from before the steps were kept
    // would be): its counts stay, as if before every event counted from then on.
    let dir = tempfile::tempdir().unwrap();
    let (store, writer, ..) = open(dir.path(), &config(&format!("{NORTE}clamp_at_zero = false\n"))).await;
    deliver(&store, &[("a".into(), 1, 100), ("b".into(), 1, 110), ("c".into(), -1, 120)]).await;
    writer.close().await;
    drop(store);
    let clamped = config(NORTE);
    let (store, writer, ..) = open(dir.path(), &clamped).await;
    deliver(&store, &[("d".into(), 1, 20), ("e".into(), -1, 30)]).await; // 1, 2, 1 (time before the baseline's events does not matter)
    deliver(&store, &[("f".into(), -1, 25)]).await; // late: 1, 2, 1, 0
    let z = one(&store, None, now()).await;
    assert_eq!((z.count, z.entries, z.exits), (0, 3, 3));
    writer.close().await;
    drop(store);
    let steps = stored_steps(dir.path(), "Norte").await;
    assert_eq!(steps.iter().map(|s| s.3).collect::<Vec<_>>(), [1, 2, 1, 0]);
    assert_steps_consistent(&steps);

    // Without the clamp again, then with it: the old steps are stale and replaced.
    let (store, writer, ..) = open(dir.path(), &config(&format!("{NORTE}clamp_at_zero = false\n"))).await;
    deliver(&store, &[("g".into(), -1, 40), ("h".into(), 1, 50), ("i".into(), 1, 60)]).await;
    assert_eq!(one(&store, None, now()).await.count, 1);
    writer.close().await;
    drop(store);
    let (store, writer, ..) = open(dir.path(), &clamped).await;
    deliver(&store, &[("j".into(), -1, 70)]).await;
    deliver(&store, &[("k".into(), -1, 65)]).await; // late: 1, 0, 0
    assert_eq!(one(&store, None, now()).await.count, 0);
    writer.close().await;
    drop(store);
    let steps = stored_steps(dir.path(), "Norte").await;
    assert_eq!(steps.iter().map(|s| s.3).collect::<Vec<_>>(), [1, 0, 0]);
}

mod fold_model {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    /// Events (`delta`, time in s; few distinct times, so many ties), delivered in the
    /// order generated (unrelated to their times) in batches of the sizes generated, with
    /// some keys sent again.
    fn run(events: Vec<(i64, i64)>, batches: Vec<usize>, again: Vec<(Index, Index)>, restart_after: Index) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let c = config(&norte_and_libre("capacity = 4\nrecover_below = 60"));
            let (mut store, mut writer, ..) = open(dir.path(), &c).await;
            let keyed: Vec<(String, i64, i64)> =
                events.iter().enumerate().map(|(i, &(d, t))| (format!("k{i}"), d, t)).collect();
            let mut batched: Vec<Vec<(String, i64, i64)>> = Vec::new();
            let mut rest = keyed.as_slice();
            for &n in batches.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (b, r) = rest.split_at(n.min(rest.len()));
                batched.push(b.to_vec());
                rest = r;
            }
            // Copies: an event already sent (or sent in this batch) sent again.
            let ends: Vec<usize> = (0..batched.len()).map(|b| batched[..=b].iter().map(Vec::len).sum()).collect();
            for (b, e) in &again {
                let b = b.index(batched.len());
                let upto = ends[b];
                let copy = keyed[e.index(upto)].clone();
                batched[b].push(copy);
            }
            let restart = restart_after.index(batched.len());
            let mut counted = Vec::new();
            for (i, batch) in batched.iter().enumerate() {
                counted.extend(deliver(&store, batch).await);
                if i == restart {
                    writer.close().await;
                    drop(store);
                    (store, writer, ..) = open(dir.path(), &c).await;
                }
            }
            assert_eq!(counted.len(), events.len(), "each key counted once");
            let zones = store.zones(None, None, now()).await.unwrap();
            let (norte, libre) = (&zones[0], &zones[1]);
            let entries = events.iter().filter(|e| e.0 >= 0).count() as i64;
            let exits = events.iter().filter(|e| e.0 <= 0).count() as i64;
            assert_eq!((norte.count, norte.entries, norte.exits), (clamped_fold(&counted), entries, exits));
            assert_eq!((libre.count, libre.entries, libre.exits), (entries - exits, entries, exits));
            // The alarm state fits the final count, and the alarms alternate.
            assert!(norte.count < 4 || norte.over_capacity, "{norte:?}");
            assert!(!norte.over_capacity || norte.count * 100 >= 4 * 60, "{norte:?}");
            let codes: Vec<String> = alarms(&store).await.iter().map(|a| a.event.code.clone().unwrap()).collect();
            for (i, code) in codes.iter().enumerate() {
                assert_eq!(code, if i % 2 == 0 { CAPACITY_EXCEEDED } else { CAPACITY_RECOVERED }, "{codes:?}");
            }
            assert_eq!(codes.len() % 2 == 1, norte.over_capacity, "{codes:?}");
            writer.close().await;
            drop(store);
            let steps = stored_steps(dir.path(), "Norte").await;
            assert_eq!(steps.len(), events.len());
            assert_steps_consistent(&steps);
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn the_clamped_count_is_the_fold_in_event_time_order(
            events in prop::collection::vec((prop_oneof![3 => Just(1i64), 3 => Just(-1i64), 1 => Just(0i64)], 0i64..60), 1..150),
            batches in prop::collection::vec(1usize..40, 1..10),
            again in prop::collection::vec((any::<Index>(), any::<Index>()), 0..8),
            restart_after in any::<Index>(),
        ) {
            run(events, batches, again, restart_after);
        }
    }
}
