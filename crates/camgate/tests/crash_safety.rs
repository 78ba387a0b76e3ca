//! Nothing acknowledged is lost, and nothing is stored twice, when the process is
//! killed with SIGKILL in the middle of a stream of posts; a sink then delivers again only
//! what it delivered after its last saved cursor.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_no_acknowledged_event_and_stores_none_twice() {
    let dir = temp();
    let cfg = config(
        dir.path(),
        "[store]\nbatch_linger = \"5ms\"\n[[sink]]\ntype = \"jsonl\"\npath = \"events.jsonl\"\n\
         delivery = { cursor_interval = \"100ms\" }\n",
    );
    let daemon = Daemon::start(dir.path(), &cfg, &[]);
    let http = client();
    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let url = daemon.ingest_url();

    // Four clients post continuously until the process dies.
    let mut clients = Vec::new();
    for c in 0..4 {
        let (http, url, acked) = (http.clone(), url.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..100_000u32 {
                let key = format!("crash:{c}:{i}");
                let body = json!({"key": key, "source": format!("cam-{c}"), "kind": "motion", "state": "start"});
                match http.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 200 => {
                        acked.lock().unwrap().insert(key);
                    }
                    // The process is gone: stop.
                    _ => return,
                }
            }
        }));
    }
    // Let a few thousand posts through, then kill without warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 2000 {
        assert!(std::time::Instant::now() < deadline, "posts are not getting through:\n{}", daemon.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.kill9();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    // What the sink had delivered, and the cursor it had saved, when it was killed.
    let jsonl = dir.path().join("events.jsonl");
    let delivered_before = keys_in(&jsonl);
    let saved: i64 = {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data_db(dir.path()).display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT seq FROM sink_cursors WHERE sink = 'jsonl'").fetch_one(&mut db).await.unwrap()
    };

    // Restart on the same data and check the store.
    let daemon = Daemon::start(dir.path(), &cfg, &[]);
    let events = all_events(&http, &daemon).await;
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for e in &events {
        *per_key.entry(e["key"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let missing: Vec<&String> = acked.iter().filter(|k| !per_key.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(per_key.values().all(|&n| n == 1), "an event is stored twice");
    // Seqs are strictly increasing.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    // A device retrying an acknowledged event after the restart gets "duplicate".
    let some_key = acked.iter().next().unwrap();
    let r: serde_json::Value = http
        .post(daemon.ingest_url())
        .json(&json!({"key": some_key, "source": "cam-0", "kind": "motion"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["duplicate"], true);
    assert_eq!(all_events(&http, &daemon).await.len(), events.len());

    // The jsonl sink picks up after its saved cursor: after the restart it delivers every
    // stored event at least once, and none is missing from the file.
    let stored: HashSet<String> = per_key.into_keys().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let in_file = loop {
        let in_file = keys_in(&jsonl);
        if stored.iter().all(|k| in_file.contains_key(k)) {
            break in_file;
        }
        assert!(std::time::Instant::now() < deadline, "the jsonl sink did not catch up after restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // It saved its cursor while it ran, and delivers again exactly the events after it that
    // it had delivered before the kill: the re-delivery is bounded by what it delivered
    // since its last save, never the whole store.
    assert!(saved > 0, "the cursor was never saved while the sink ran");
    let seq_of: HashMap<String, i64> =
        events.iter().map(|e| (e["key"].as_str().unwrap().to_owned(), e["seq"].as_i64().unwrap())).collect();
    for (key, n) in &in_file {
        let again = delivered_before.contains_key(key) && seq_of[key] > saved;
        assert_eq!(*n, if again { 2 } else { 1 }, "{key} (seq {}, saved cursor {saved})", seq_of[key]);
    }
}

/// Each event key in a jsonl file, with how often it appears (lines that do not parse, such
/// as one cut short by the kill, are left out).
fn keys_in(path: &std::path::Path) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut keys = HashMap::new();
    for v in text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        *keys.entry(v["key"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    keys
}
