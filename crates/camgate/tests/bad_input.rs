//! Hostile and broken input: each gets a clear answer, and the gateway keeps serving.

mod common;

use std::time::{Duration, Instant};

use camgate::app::Gateway;
use camgate_core::config::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn gateway(dir: &std::path::Path, extra_webhook: &str, extra: &str) -> Gateway {
    let text = format!(
        "[site]\ndata_dir = \"{}\"\n[log]\nfile = \"\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [webhook]\nlisten = \"127.0.0.1:0\"\n{extra_webhook}\n{extra}",
        dir.display()
    );
    Gateway::start(&Config::from_toml(&text, "test.toml").unwrap()).await.unwrap()
}

fn ingest(gw: &Gateway) -> String {
    format!("http://{}/api/ingest", gw.webhook_addr().unwrap())
}

/// Send raw bytes, read the whole answer until the server closes or `limit` passes.
async fn raw(gw: &Gateway, request: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(gw.webhook_addr().unwrap()).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the server closes the connection (EOF or reset) within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut out)).await {
        Ok(_) => Some(out),
        Err(_) => None,
    }
}

async fn still_serving(gw: &Gateway) {
    let http = common::plain_client();
    let r = http.post(ingest(gw)).json(&json!({"source": "probe", "kind": "other"})).send().await.unwrap();
    assert_eq!(r.status(), 200, "the gateway keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_wrong_types_get_400_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "", "").await;
    let http = common::plain_client();
    let cases: &[(&str, &str)] = &[
        ("{\"source\": \"a\", \"kind\": ", "invalid JSON"),
        ("[]", "invalid JSON"),
        ("", "invalid JSON"),
        ("{\"source\": 5, \"kind\": \"motion\"}", "source"),
        ("{\"source\": \"a\", \"kind\": \"motion\", \"channel\": \"one\"}", "channel"),
        ("{\"source\": \"a\", \"kind\": \"motion\", \"channel\": 0}", "channel"),
        ("{\"source\": \"a\", \"kind\": \"motion\", \"objects\": [{\"type\": \"x\", \"bbox\": [2, 0, 3, 1]}]}", "bbox"),
        ("{\"source\": \"a\", \"kind\": \"motion\", \"extra\": 1}", "extra"),
    ];
    for (body, needle) in cases {
        let r = http.post(ingest(&gw)).header("content-type", "application/json").body(*body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let reply: Value = r.json().await.unwrap();
        let msg = reply["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let bytes = b"\xff\xfe\x00garbage";
    let r = http.post(ingest(&gw)).body(bytes.to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(gw.store().head(), 0, "nothing stored as an event");
    // Each refused body is kept verbatim as a dead letter, with the reason and the sender.
    let letters = gw.store().dead_letters(100).await.unwrap();
    assert_eq!(letters.len(), cases.len() + 1);
    assert_eq!(letters[0].payload, bytes);
    assert_eq!(letters[0].source, "ingest/127.0.0.1");
    assert!(letters[0].reason.contains("invalid JSON"), "{}", letters[0].reason);
    assert!(gw.metrics().render().contains(r#"camgate_dead_letters_total{source="ingest/127.0.0.1"} 9"#));
    still_serving(&gw).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_before_the_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "token = \"t0k3n-abc\"", "").await;
    // 1 MB announced, none sent: the 401 comes at once.
    let answer = raw(
        &gw,
        b"POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(!answer.contains("t0k3n-abc"));
    let r = common::plain_client()
        .post(ingest(&gw))
        .bearer_auth("t0k3n-abc")
        .json(&json!({"source": "a", "kind": "motion"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_without_being_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "max_body = \"2KB\"", "").await;
    let big = json!({"source": "a", "kind": "motion", "data": {"pad": "x".repeat(5000)}}).to_string();
    let http = common::plain_client();
    let r = http.post(ingest(&gw)).header("content-type", "application/json").body(big.clone()).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let reply: Value = r.json().await.unwrap();
    assert!(reply["error"].as_str().unwrap().contains("max_body"), "{reply}");
    // Declared 100 MB but never sent: the answer comes from the header alone.
    let answer = raw(
        &gw,
        b"POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{",
        Duration::from_secs(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Chunked, no length: cut off at the limit.
    let mut req = b"POST /api/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        req.extend_from_slice(format!("{:x}\r\n{}\r\n", 1000, "y".repeat(1000)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(&gw, &req, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(gw.store().head(), 0);
    assert!(gw.metrics().render().contains(r#"camgate_ingest_rejected_total{reason="too_large"} 3"#));
    still_serving(&gw).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "header_timeout = \"500ms\"\nbody_timeout = \"500ms\"", "").await;
    // Headers that never end.
    let mut s = TcpStream::connect(gw.webhook_addr().unwrap()).await.unwrap();
    s.write_all(b"POST /api/ingest HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let start = Instant::now();
    let trickle = async {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let got = closed_within(&mut s, Duration::from_secs(10)).await;
    assert!(got.is_some(), "the connection is closed");
    assert!(start.elapsed() < Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.metrics().render().contains(r#"camgate_connections_timed_out_total{listener="webhook"} 1"#) {
        assert!(Instant::now() < deadline, "the timeout is counted:\n{}", gw.metrics().render());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A body that never completes.
    let mut s = TcpStream::connect(gw.webhook_addr().unwrap()).await.unwrap();
    s.write_all(b"POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{\"source\":").await.unwrap();
    let got = closed_within(&mut s, Duration::from_secs(10)).await.expect("the server gives up on the body");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");

    // A body trickled in, each piece in time but the whole too late: the limit is on the total.
    let mut s = TcpStream::connect(gw.webhook_addr().unwrap()).await.unwrap();
    s.write_all(b"POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n").await.unwrap();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.write_all(b" ").await.is_err() {
            break;
        }
    }
    let got = closed_within(&mut s, Duration::from_secs(10)).await.expect("the server gives up on the body");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"));
    assert_eq!(gw.store().head(), 0);
    still_serving(&gw).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // Client and server share this process: make room for both ends of 1500 connections.
    rlimit::increase_nofile_limit(8192).unwrap();
    let gw = gateway(dir.path(), "max_connections = 64\nheader_timeout = \"1s\"", "").await;
    let addr = gw.webhook_addr().unwrap();
    let mut idle = Vec::new();
    for _ in 0..1500 {
        match TcpStream::connect(addr).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect failed: {e}"),
        }
    }
    // Over the cap, connections are closed at once; the ones inside it time out when idle.
    let mut closed = 0;
    for s in idle.iter_mut() {
        if closed_within(s, Duration::from_secs(10)).await.is_some() {
            closed += 1;
        }
    }
    assert_eq!(closed, idle.len(), "every idle connection is closed by the server");
    let metrics = gw.metrics().render();
    let refused: f64 = metrics
        .lines()
        .find(|l| l.starts_with(r#"camgate_connections_refused_total{listener="webhook"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(refused >= 1000.0, "{metrics}");
    drop(idle);
    still_serving(&gw).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_answers_503_and_writes_nothing_half() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), "", "[store]\nmax_size = \"300KB\"").await;
    let http = common::plain_client();
    let jpeg = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, camgate_sim::generic::TINY_JPEG);
    let mut ok = 0u64;
    let reply = loop {
        let body = json!({"key": format!("full-{ok}"), "source": "a", "kind": "plate", "plate": {"number": "Z9"},
                          "data": {"pad": "x".repeat(4000)}, "images": [{"role": "plate", "data": jpeg}]});
        let r = http.post(ingest(&gw)).json(&body).send().await.unwrap();
        if r.status() == 200 {
            ok += 1;
            assert!(ok < 500, "the store never filled up");
            continue;
        }
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "5");
        break r.json::<Value>().await.unwrap();
    };
    assert!(reply["error"].as_str().unwrap().contains("full"), "{reply}");
    // The refused event left no image behind; every stored one has its file.
    let mut files = 0;
    let mut stack = vec![dir.path().join("images")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                assert_eq!(p.extension().unwrap(), "jpg", "no partial files: {}", p.display());
                files += 1;
            }
        }
    }
    assert_eq!(files, ok);
    // Reads, health and small writes still work.
    let health = http.get(format!("http://{}/healthz", gw.http_addr().unwrap())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let page: Value = http
        .get(format!("http://{}/api/events?limit=1000", gw.http_addr().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"].as_array().unwrap().len() as u64, ok);
    gw.shutdown().await;
}
