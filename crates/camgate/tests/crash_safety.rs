//! Nothing acknowledged is lost, and nothing is stored twice, when the process is
//! killed with SIGKILL in the middle of a stream of posts.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_no_acknowledged_event_and_stores_none_twice() {
    let dir = temp();
    let cfg =
        config(dir.path(), "[store]\nbatch_linger = \"5ms\"\n[[sink]]\ntype = \"jsonl\"\npath = \"events.jsonl\"\n");
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

    // The jsonl sink picks up after its cursor: after the restart it delivers every stored
    // event at least once, and none is missing from the file.
    let jsonl = dir.path().join("events.jsonl");
    let stored: HashSet<String> = per_key.into_keys().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&jsonl).unwrap_or_default();
        let in_file: HashSet<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["key"].as_str().unwrap().to_owned())
            .collect();
        if stored.is_subset(&in_file) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the jsonl sink did not catch up after restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
