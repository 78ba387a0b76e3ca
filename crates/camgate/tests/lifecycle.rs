//! Start-up and shutdown of the real binary: SIGTERM under load, a second signal,
//! defaults without a config file.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_0_within_5s_and_loses_nothing() {
    let dir = temp();
    let cfg = config(dir.path(), "[[sink]]\ntype = \"jsonl\"\npath = \"events.jsonl\"\n");
    let mut daemon = Daemon::start(dir.path(), &cfg, &[]);
    let http = client();
    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (http, url, acked) = (http.clone(), daemon.ingest_url(), acked.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..100_000u32 {
                let key = format!("term:{c}:{i}");
                let body = json!({"key": key, "source": "cam", "kind": "human"});
                match http.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 200 => {
                        acked.lock().unwrap().insert(key);
                    }
                    // 503 while stopping, or the connection closed: stop posting.
                    _ => return,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 1000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.signal(Signal::SIGTERM);
    let (status, took) = daemon.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    for c in clients {
        c.await.unwrap();
    }
    let out = daemon.output();
    assert!(out.contains("SIGTERM received"), "{out}");
    assert!(out.contains("sink stopped") && out.contains("undelivered=0"), "every sink flushed:\n{out}");

    // Every acknowledged event is in the store and in the jsonl file (the sink was flushed).
    let acked = acked.lock().unwrap().clone();
    let jsonl = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let in_file: HashSet<String> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        acked.is_subset(&in_file),
        "{} acknowledged events missing from the sink",
        acked.difference(&in_file).count()
    );
    let daemon = Daemon::start(dir.path(), &cfg, &[]);
    let stored: HashSet<String> =
        all_events(&http, &daemon).await.iter().map(|e| e["key"].as_str().unwrap().to_owned()).collect();
    assert!(acked.is_subset(&stored));
    assert_eq!(stored.len(), in_file.len(), "the file holds each stored event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let dir = temp();
    let mut daemon = Daemon::start(dir.path(), &config(dir.path(), ""), &[]);
    // A request in flight that never finishes keeps the graceful stop waiting.
    let mut slow = std::net::TcpStream::connect(daemon.webhook).unwrap();
    slow.write_all(b"POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"source\":").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    daemon.signal(Signal::SIGINT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(daemon.child.try_wait().unwrap().is_none(), "still waiting for the request in flight");
    daemon.signal(Signal::SIGINT);
    let (status, took) = daemon.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{}", daemon.output());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(daemon.output().contains("second signal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_config_file_the_defaults_apply_and_the_log_says_so() {
    let dir = temp();
    let daemon = Daemon::start_with(dir.path(), &["run"], &[]);
    let out = daemon.output();
    assert!(out.contains("no configuration file (camgate.toml not found); using the defaults"), "{out}");
    assert_eq!(daemon.webhook.port(), 5050);
    assert_eq!(daemon.http.to_string(), "127.0.0.1:8080");
    let http = client();
    let r = http
        .post(format!("http://127.0.0.1:{}/api/ingest", daemon.webhook.port()))
        .json(&json!({"source": "front", "kind": "motion", "code": "VideoMotion", "state": "start", "channel": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The default `log` sink prints the event; the default store is ./data/camgate.db.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !daemon.output().contains("EVENT VideoMotion [start] source=front ch=1") {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dir.path().join("data/camgate.db").exists());
    assert!(dir.path().join("logs/camgate.log").exists());
    daemon.signal(Signal::SIGTERM);
}

#[test]
fn the_demo_runs_simulated_devices_end_to_end() {
    let dir = temp();
    let (status, _, err) = run_cli(
        &["demo", "--duration", "3s", "--rate", "20", "--http", "127.0.0.1:0", "--data-dir", "demo"],
        dir.path(),
        &[],
    );
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("demo running"), "{err}");
    assert!(err.contains("EVENT "), "the log sink shows events:\n{err}");
    let jsonl = std::fs::read_to_string(dir.path().join("demo/events.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() >= 20, "{} events", events.len());
    let kinds: HashSet<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.len() >= 3, "a mix of events: {kinds:?}");
    assert!(err.contains("0 failed"), "{err}");
    // The stadium zones count the simulated Avigilon site's detections, in the order they
    // happened: "zones: Parqueadero Norte 2 (5 in, 3 out); Campinsito ...".
    let line = err.lines().find_map(|l| l.split_once(" zones: ")).map(|(_, z)| z).expect(&err);
    let zones: Vec<(&str, i64, i64, i64)> = line
        .split("; ")
        .map(|z| {
            let (name, rest) = z.split_once(" (").unwrap();
            let (name, count) = name.rsplit_once(' ').unwrap();
            let nums: Vec<i64> = rest.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
            (name, count.parse().unwrap(), nums[0], nums[1])
        })
        .collect();
    let names: Vec<&str> = zones.iter().map(|z| z.0).collect();
    assert_eq!(names, ["Parqueadero Norte", "Campinsito", "Zona Sur"], "{line}");
    assert!(zones.iter().map(|z| z.2).sum::<i64>() > 0, "the zones counted: {line}");
    assert!(zones.iter().all(|&(_, count, entries, exits)| count == entries - exits), "{line}");
}

#[test]
fn the_events_command_reads_the_store() {
    let dir = temp();
    let cfg = config(dir.path(), "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut daemon = Daemon::start(dir.path(), &cfg, &[]);
    rt.block_on(async {
        let http = client();
        for (i, kind) in ["motion", "plate", "motion"].iter().enumerate() {
            let mut body = json!({"key": format!("e{i}"), "source": "gate", "kind": kind, "rule": "Lane 1"});
            if *kind == "plate" {
                body["plate"] = json!({"number": "QWE123"});
            }
            assert_eq!(http.post(daemon.ingest_url()).json(&body).send().await.unwrap().status(), 200);
        }
    });
    daemon.signal(Signal::SIGTERM);
    daemon.wait(Duration::from_secs(10));
    let cfg_path = dir.path().join("camgate.toml");
    let c = cfg_path.to_str().unwrap();
    let (status, out, err) = run_cli(&["events", "-c", c], dir.path(), &[]);
    assert_eq!(status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].contains("EVENT plate source=gate") && lines[1].contains("plate=QWE123"), "{out}");
    assert!(lines[0].contains("rule=\"Lane 1\""), "{out}");
    let (_, out, _) = run_cli(&["events", "-c", c, "--json", "--kind", "motion", "--after", "1"], dir.path(), &[]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((v["seq"].as_u64(), v["key"].as_str()), (Some(3), Some("e2")));
    let (status, _, err) = run_cli(&["events", "-c", c, "--kind", "teleport"], dir.path(), &[]);
    assert_eq!(status.code(), Some(2), "{err}");
}
