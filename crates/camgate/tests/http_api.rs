//! The HTTP API against a gateway running in-process on loopback.

mod common;

use std::time::Duration;

use camgate::app::Gateway;
use camgate_core::config::Config;
use futures::StreamExt;
use serde_json::{Value, json};

async fn gateway(dir: &std::path::Path) -> Gateway {
    let text = format!(
        "[site]\ndata_dir = \"{}\"\n[log]\nfile = \"\"\n[http]\nlisten = \"127.0.0.1:0\"\n[webhook]\nlisten = \"127.0.0.1:0\"\n",
        dir.display()
    );
    Gateway::start(&Config::from_toml(&text, "test.toml").unwrap()).await.unwrap()
}

async fn post(http: &reqwest::Client, gw: &Gateway, body: Value) -> reqwest::Response {
    http.post(format!("http://{}/api/ingest", gw.webhook_addr().unwrap())).json(&body).send().await.unwrap()
}

async fn get(http: &reqwest::Client, gw: &Gateway, path: &str) -> (u16, Value) {
    let r = http.get(format!("http://{}{path}", gw.http_addr().unwrap())).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_paged_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = common::plain_client();
    let sent = [("gate", "plate"), ("door", "motion"), ("gate", "motion"), ("door", "face"), ("gate", "plate")];
    for (i, (source, kind)) in sent.iter().enumerate() {
        let mut body = json!({"key": format!("k{i}"), "source": source, "kind": kind});
        if *kind == "plate" {
            body["plate"] = json!({"number": format!("ABC{i}")});
        }
        let r = post(&http, &gw, body).await;
        assert_eq!(r.status(), 200);
        let reply: Value = r.json().await.unwrap();
        assert_eq!(reply["seq"], i as u64 + 1);
        assert_eq!(reply["duplicate"], false);
    }
    let (s, page) = get(&http, &gw, "/api/events?limit=2").await;
    assert_eq!(s, 200);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_after"], 2);
    assert_eq!(page["head_seq"], 5);
    assert_eq!(page["events"][0]["seq"], 1);
    assert_eq!(page["events"][0]["plate"]["number"], "ABC0");
    assert!(page["events"][0]["id"].as_str().unwrap().len() == 36);
    let (_, rest) = get(&http, &gw, "/api/events?after=2&limit=100").await;
    let seqs: Vec<u64> = rest["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [3, 4, 5]);
    let (_, gate) = get(&http, &gw, "/api/events?source=gate&kind=plate").await;
    let seqs: Vec<u64> = gate["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 5]);
    let (_, empty) = get(&http, &gw, "/api/events?after=5").await;
    assert_eq!(empty["events"].as_array().unwrap().len(), 0);
    assert_eq!(empty["next_after"], 5);
    for bad in ["/api/events?kind=teleport", "/api/events?limit=0", "/api/events?limit=5000", "/api/events?after=abc"] {
        let (s, body) = get(&http, &gw, bad).await;
        assert_eq!(s, 400, "{bad}");
        assert!(body["error"].as_str().unwrap().len() > 5, "{bad}: {body}");
    }
    gw.shutdown().await;
}

/// Read SSE frames until one with `data:` arrives; returns (id, data JSON).
async fn next_sse(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
) -> (u64, Value) {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse().unwrap());
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str(v.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                return (id, data);
            }
            continue;
        }
        let chunk =
            tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("an SSE frame").unwrap().unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_sends_new_events_and_replays_after_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = common::plain_client();
    post(&http, &gw, json!({"key": "before", "source": "cam", "kind": "motion"})).await;

    let url = format!("http://{}/api/events/stream", gw.http_addr().unwrap());
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    // Give the handler a moment to subscribe; an event posted before that would be replayed
    // from the store anyway, so this only avoids testing the replay path by accident.
    tokio::time::sleep(Duration::from_millis(100)).await;
    post(&http, &gw, json!({"key": "live-1", "source": "cam", "kind": "human"})).await;
    post(&http, &gw, json!({"key": "live-2", "source": "other", "kind": "motion"})).await;
    let (id, data) = next_sse(&mut stream, &mut buf).await;
    assert_eq!((id, data["key"].as_str().unwrap()), (2, "live-1"));
    let (id, data) = next_sse(&mut stream, &mut buf).await;
    assert_eq!((id, data["key"].as_str().unwrap()), (3, "live-2"));

    // A client coming back with Last-Event-ID: 1 gets 2 and 3 from the store, then live ones.
    let resp = http.get(&url).header("Last-Event-ID", "1").send().await.unwrap();
    let mut again = resp.bytes_stream();
    let mut buf2 = String::new();
    assert_eq!(next_sse(&mut again, &mut buf2).await.0, 2);
    assert_eq!(next_sse(&mut again, &mut buf2).await.0, 3);
    post(&http, &gw, json!({"key": "live-3", "source": "cam", "kind": "motion"})).await;
    assert_eq!(next_sse(&mut again, &mut buf2).await.0, 4);

    // Filters apply to the stream too.
    let resp = http.get(format!("{url}?source=cam&after=0")).send().await.unwrap();
    let mut filtered = resp.bytes_stream();
    let mut buf3 = String::new();
    let keys: Vec<String> = {
        let mut k = Vec::new();
        for _ in 0..3 {
            k.push(next_sse(&mut filtered, &mut buf3).await.1["key"].as_str().unwrap().to_owned());
        }
        k
    };
    assert_eq!(keys, ["before", "live-1", "live-3"]);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_sources_sinks_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = common::plain_client();
    let first: Value =
        post(&http, &gw, json!({"key": "a", "source": "gate", "kind": "plate", "plate": {"number": "X1"}}))
            .await
            .json()
            .await
            .unwrap();
    let again: Value =
        post(&http, &gw, json!({"key": "a", "source": "gate", "kind": "plate", "plate": {"number": "X2"}}))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], first["id"], "a duplicate is answered with the stored event's id");
    assert_eq!(again["seq"], 1);
    post(&http, &gw, json!({"source": "gate", "kind": "nope"})).await;

    let (s, health) = get(&http, &gw, "/healthz").await;
    assert_eq!(s, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["head_seq"], 1);

    let (_, sources) = get(&http, &gw, "/api/sources").await;
    let ingest = &sources["sources"][0];
    assert_eq!(ingest["name"], "ingest");
    assert_eq!(ingest["state"], "listening");
    assert_eq!(ingest["events"], 1);
    assert_eq!(ingest["duplicates"], 1);
    assert_eq!(ingest["rejected"], 1);
    assert!(ingest["last_event"].is_string());
    assert!(ingest["last_error"].as_str().unwrap().contains("kind"));

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, sinks) = get(&http, &gw, "/api/sinks").await;
        if sinks["sinks"][0]["cursor"] == 1 {
            assert_eq!(sinks["sinks"][0]["name"], "log");
            assert_eq!(sinks["sinks"][0]["lag_events"], 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{sinks}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let text =
        http.get(format!("http://{}/metrics", gw.http_addr().unwrap())).send().await.unwrap().text().await.unwrap();
    for needle in [
        r#"camgate_events_stored_total{source="gate",kind="plate"} 1"#,
        r#"camgate_events_duplicate_total{source="gate",kind="plate"} 1"#,
        r#"camgate_ingest_rejected_total{reason="invalid"} 1"#,
        "camgate_writer_batch_events_bucket",
        "camgate_writer_commit_seconds_bucket",
        r#"camgate_sink_lag_events{sink="log"} 0"#,
        r#"camgate_sink_lag_seconds{sink="log"}"#,
        r#"camgate_sink_delivered_total{sink="log"} 1"#,
        "# EOF",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    gw.shutdown().await;
}
