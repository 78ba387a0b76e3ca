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
