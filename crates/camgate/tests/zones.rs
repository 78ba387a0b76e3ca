//! Occupancy end to end: the shipped stadium example (the legacy Avigilon monitor's three
//! zones) in the real daemon, events posted to `/api/ingest` as the Avigilon source stores
//! them, `GET /api/zones`, `/metrics`, `camgate zones`, a `kill -9` restart and the legacy
//! tables.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Daemon, run_cli, temp};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

/// docs/examples/stadium.toml with the data in `dir`, loopback listeners and a capacity of
/// 3 for Parqueadero Norte.
fn stadium(dir: &Path) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/stadium.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let text = text
        .replace("data_dir = \"./data\"", &format!("data_dir = \"{}\"", dir.join("data").display()))
        .replace("# capacity = 500\n# recover_below = 95", "capacity = 3\nrecover_below = 70");
    assert!(text.contains("capacity = 3"), "the example changed: update this test");
    format!(
        "{text}\n[log]\nfile = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[webhook]\nlisten = \"127.0.0.1:0\"\n",
        dir.join("logs/camgate.log").display()
    )
}

/// An Avigilon analytic event as the poller stores it.
fn avigilon(this_id: u32, name: &str, topic: &str) -> Value {
    json!({
        "key": format!("avigilon:srv1:{this_id}"),
        "source": "acc",
        "vendor": "avigilon",
        "kind": "counting",
        "code": topic,
        "state": if topic.ends_with("STOP") { "stop" } else { "start" },
        "rule": name,
        "schedule": "Concierto A",
        "occurred_at": "2026-05-17T20:00:00Z",
        "data": {"type": topic, "thisId": this_id.to_string(), "analyticEventName": name, "area": "",
                 "activity": "OBJECT_COUNTING_ENTER", "cameraId": "cam-7", "originatingServerId": "srv1"},
    })
}

async fn post_all(http: &reqwest::Client, d: &Daemon, events: &[Value]) {
    for e in events {
        let r = http.post(d.ingest_url()).json(e).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

async fn get(http: &reqwest::Client, d: &Daemon, path: &str) -> (u16, Value) {
    let r = http.get(d.api(path)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn zone<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["zones"].as_array().unwrap().iter().find(|z| z["zone"] == name).unwrap()
}

const NORTE_IN: &str = "AFORO ENTRADA PARQUEADERO NORTE";
const NORTE_OUT: &str = "Aforo Salida Parqueadero  Norte";
const STOP: &str = "DEVICE_ANALYTICS_STOP";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stadium_zones_end_to_end() {
    let dir = temp();
    let config = stadium(dir.path());
    let d = Daemon::start(dir.path(), &config, &[]);
    let http = common::client();

    let first = vec![
        avigilon(1, NORTE_IN, "DEVICE_ANALYTICS_START"), // a START: not counted
        avigilon(2, NORTE_IN, STOP),
        avigilon(3, NORTE_IN, STOP),
        avigilon(3, NORTE_IN, STOP),                 // re-fetched: a duplicate
        avigilon(4, "SALIDA PARQUEADERO SUR", STOP), // an exit before any entry: clamped
        avigilon(5, "ENTRADA VEHICULAR CAMPINSITO", STOP),
        avigilon(6, "ENTRADA VEHICULAR CAMPINSITO", STOP),
        avigilon(7, "SALIDA VEHICULAR CAMPINSITO", STOP),
        avigilon(8, "PUERTA 4", STOP), // eventos_Analisis only
    ];
    post_all(&http, &d, &first).await;
    let (s, zones) = get(&http, &d, "/api/zones").await;
    assert_eq!(s, 200, "{zones}");
    let norte = zone(&zones, "Parqueadero Norte");
    assert_eq!(
        (&norte["period"], &norte["count"], &norte["entries"], &norte["exits"], &norte["capacity"]),
        (&json!("Concierto A"), &json!(2), &json!(2), &json!(0), &json!(3)),
        "{zones}"
    );
    assert_eq!(norte["percent"], 66.7);
    assert_eq!(norte["over_capacity"], false);
    assert_eq!(norte["reset"], "schedule");
    assert!(norte["updated_at"].as_str().unwrap().ends_with('Z'));
    let sur = zone(&zones, "Zona Sur");
    assert_eq!((&sur["count"], &sur["exits"]), (&json!(0), &json!(1)));
    assert!(sur.get("capacity").is_none() && sur.get("percent").is_none(), "{sur}");
    assert_eq!(zone(&zones, "Campinsito")["count"], 1);

    // The third car fills Parqueadero Norte: one capacity_exceeded event.
    post_all(&http, &d, &[avigilon(9, NORTE_IN, STOP)]).await;
    let (_, norte) = get(&http, &d, "/api/zones?zone=Parqueadero%20Norte").await;
    assert_eq!(norte["zones"].as_array().unwrap().len(), 1);
    assert_eq!((&norte["zones"][0]["count"], &norte["zones"][0]["over_capacity"]), (&json!(3), &json!(true)));
    let (_, alarms) = get(&http, &d, "/api/events?source=Parqueadero%20Norte").await;
    let alarms = alarms["events"].as_array().unwrap();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!((&alarms[0]["kind"], &alarms[0]["code"]), (&json!("counting"), &json!("capacity_exceeded")));
    assert_eq!(alarms[0]["data"]["cause"]["key"], "avigilon:srv1:9");
    assert_eq!(alarms[0]["schedule"], "Concierto A");

    let (s, other) = get(&http, &d, "/api/zones?period=Partido%20B").await;
    assert_eq!(s, 200);
    assert_eq!(
        (&zone(&other, "Parqueadero Norte")["count"], &zone(&other, "Parqueadero Norte")["period"]),
        (&json!(0), &json!("Partido B"))
    );
    let (s, body) = get(&http, &d, "/api/zones?zone=Nope").await;
    assert_eq!(s, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Nope"));

    let metrics = http.get(d.api("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        r#"camgate_zone_count{zone="Parqueadero Norte"} 3"#,
        r#"camgate_zone_entries{zone="Campinsito"} 2"#,
        r#"camgate_zone_exits{zone="Zona Sur"} 1"#,
        r#"camgate_zone_capacity{zone="Parqueadero Norte"} 3"#,
        r#"camgate_zone_over_capacity{zone="Parqueadero Norte"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }

    // kill -9, restart, and the poller fetches the same window again plus one new exit.
    d.kill9();
    let mut d = Daemon::start(dir.path(), &config, &[]);
    let mut again = first.clone();
    again.push(avigilon(9, NORTE_IN, STOP));
    again.push(avigilon(10, NORTE_OUT, STOP));
    post_all(&http, &d, &again).await;
    let (_, zones) = get(&http, &d, "/api/zones").await;
    let norte = zone(&zones, "Parqueadero Norte");
    assert_eq!((&norte["count"], &norte["entries"], &norte["exits"]), (&json!(2), &json!(3), &json!(1)), "{zones}");
    assert_eq!(norte["over_capacity"], false, "2 < 70 % of 3: recovered");
    let (_, alarms) = get(&http, &d, "/api/events?source=Parqueadero%20Norte").await;
    let codes: Vec<&str> = alarms["events"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["capacity_exceeded", "capacity_recovered"]);
    d.signal(Signal::SIGTERM);
    assert!(d.wait(Duration::from_secs(20)).0.success());

    // `camgate zones` reads the same numbers from the store.
    let cfg = dir.path().join("camgate.toml");
    let cfg = cfg.to_str().unwrap();
    let (status, out, err) = run_cli(&["zones", "-c", cfg], dir.path(), &[]);
    assert!(status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("zone ") && lines[0].contains("count") && lines[0].contains("percent"), "{out}");
    assert!(lines[1].starts_with("Parqueadero Norte  Concierto A"), "{out}");
    assert!(lines[1].contains("66.7%"), "{out}");
    let (status, out, err) = run_cli(&["zones", "-c", cfg, "--json", "--zone", "Campinsito"], dir.path(), &[]);
    assert!(status.success(), "{err}");
    let row: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((&row["count"], &row["entries"], &row["exits"]), (&json!(1), &json!(2), &json!(1)));
    let (status, _, err) = run_cli(&["zones", "-c", cfg, "--zone", "Nope"], dir.path(), &[]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("Parqueadero Norte"), "{err}");
    let (status, out, _) = run_cli(&["zones", "-c", cfg, "--history", "--json"], dir.path(), &[]);
    assert!(status.success());
    assert_eq!(out.lines().count(), 3, "one period per zone: {out}");

    // The legacy tables, as the old reports read them.
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.path().join("data/camgate.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (table, aforo) in [("Aforo_parqueadero", 2), ("Aforo_parqueadero_campinsito", 1), ("Aforo_parqueadero_SUR", 0)]
    {
        let rows: Vec<(String, i64)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT evento, aforo FROM {table}")))
                .fetch_all(&mut db)
                .await
                .unwrap();
        assert_eq!(rows, [("Concierto A".to_string(), aforo)], "{table}");
    }
    let names: Vec<(String, String)> = sqlx::query_as("SELECT analyticEventName, nombre_evento FROM eventos_Analisis")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(names, [("PUERTA 4".to_string(), "Concierto A".to_string())]);
}
