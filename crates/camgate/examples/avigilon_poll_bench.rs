//! One Avigilon poll cycle over many cameras against the simulated Web Endpoint, with a
//! fixed latency per request: camgate's poller (bounded concurrency, CONTINUE paging, one
//! store write per camera) at several `concurrency` settings, and a sequential poller like
//! the legacy monitor's (one camera after another), in Python, against the same emulator.
//!
//! Run by `scripts/bench avigilon`; prints a table, asserts nothing.
//!
//! ```text
//! cargo run --release -p camgate --example avigilon_poll_bench -- \
//!     [--cameras 1000] [--servers 2] [--latency-ms 20] [--events 40000] \
//!     [--concurrency 8,16,32,64] [--baseline scripts/bench_avigilon.py] [--out FILE]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate::bus::Bus;
use camgate::metrics::Metrics;
use camgate::sources::avigilon::{Camera, Client, Poller};
use camgate::sources::{Registry, SourceState};
use camgate::store::{Store, StoreOptions};
use camgate_core::Vendor;
use camgate_core::config::Config;
use camgate_sim::avigilon::{AcsServer, CountingSpec, DEFAULT_NONCE, DEFAULT_PASSWORD, DEFAULT_USER, DEFAULT_USER_KEY};
use camgate_sim::avigilon::{Scenario, Stats};
use tokio_util::sync::CancellationToken;

struct Args {
    cameras: usize,
    servers: usize,
    latency_ms: u64,
    events: u64,
    concurrency: Vec<usize>,
    baseline: Option<String>,
    out: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        cameras: 1000,
        servers: 2,
        latency_ms: 20,
        events: 40_000,
        concurrency: vec![8, 16, 32, 64],
        baseline: None,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--cameras" => a.cameras = value().parse().expect("--cameras N"),
            "--servers" => a.servers = value().parse().expect("--servers N"),
            "--latency-ms" => a.latency_ms = value().parse().expect("--latency-ms N"),
            "--events" => a.events = value().parse().expect("--events N"),
            "--concurrency" => {
                a.concurrency = value().split(',').map(|c| c.trim().parse().expect("--concurrency 8,16")).collect()
            }
            "--baseline" => a.baseline = Some(value()),
            "--out" => a.out = Some(value()),
            "--quick" => {
                a.cameras = 200;
                a.events = 8_000;
            }
            "-h" | "--help" => {
                println!(
                    "avigilon_poll_bench [--cameras N] [--servers N] [--latency-ms MS] [--events N] \
                     [--concurrency 8,16,32] [--baseline bench_avigilon.py] [--out FILE] [--quick]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

struct Row {
    who: String,
    seconds: f64,
    requests: u64,
    events: u64,
}

#[tokio::main]
async fn main() {
    camgate::sources::dahua::install_crypto_provider();
    let a = args();
    // Every STOP of the scenario lies 110 s to 10 s before the emulator starts: all visible,
    // all inside the first window of a camera without a cursor (poll_interval + lookback).
    let spec = CountingSpec {
        entries: a.events / 2,
        exits: a.events / 2,
        zones: 3,
        cameras: a.cameras,
        servers: a.servers,
        start_offset_ms: -110_000,
        span_ms: 100_000,
        ..CountingSpec::default()
    };
    let scenario = Scenario::counting(&spec).expect("scenario");
    let server = AcsServer::builder()
        .scenario(scenario)
        .latency(Duration::from_millis(a.latency_ms))
        .bind("127.0.0.1:0")
        .await
        .expect("bind the emulator");
    let stops = server.truth().stops;
    let cameras: Vec<Camera> = server
        .scenario()
        .cameras
        .iter()
        .map(|c| Camera { id: c.id.clone(), source: c.name.clone(), servers: vec![c.server_id.clone()] })
        .collect();
    println!(
        "emulator: {} cameras on {} servers, {} STOP events, {} ms per request",
        cameras.len(),
        a.servers,
        stops,
        a.latency_ms
    );
    let mut rows = Vec::new();
    for &concurrency in &a.concurrency {
        let text = format!(
            "[[avigilon]]\nname = \"bench\"\nurl = \"{}\"\nusername = \"{DEFAULT_USER}\"\npassword = \"{DEFAULT_PASSWORD}\"\n\
             user_nonce = \"{DEFAULT_NONCE}\"\nuser_key = \"{DEFAULT_USER_KEY}\"\ncameras = [\"x\"]\n\
             poll_interval = \"60s\"\nlookback = \"2m\"\nconcurrency = {concurrency}\n",
            server.origin()
        );
        let cfg = Arc::new(Config::from_toml(&text, "<bench>").expect("config").avigilon.remove(0));
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let (store, writer) =
            Store::open(StoreOptions::in_dir(dir.path()), metrics.clone(), Bus::default()).await.expect("store");
        let client = Arc::new(Client::new(cfg.clone(), metrics).expect("client"));
        client.connect().await.expect("login");
        let health = Registry::default().register("bench", Vendor::Avigilon, "pull", SourceState::Connected);
        let poller = Poller::new(cfg, client.clone(), store.clone(), health, cameras.clone(), None);
        let stats = server.stats();
        let before = Stats::get(&stats.requests);
        let started = Instant::now();
        let report =
            poller.cycle(jiff::Timestamp::now() - Duration::from_secs(1), None, &CancellationToken::new()).await;
        let seconds = started.elapsed().as_secs_f64();
        assert!(report.error.is_none(), "cycle failed: {:?}", report.error);
        let requests = Stats::get(&stats.requests) - before;
        client.logout().await;
        writer.close().await;
        let stored = report.stats.new;
        if stored != stops {
            println!("warning: camgate (concurrency {concurrency}) stored {stored} of {stops} events");
        }
        rows.push(Row { who: format!("camgate, concurrency {concurrency}"), seconds, requests, events: stored });
    }
    if let Some(script) = &a.baseline {
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg("--url")
            .arg(server.base_url())
            .output()
            .expect("run the Python baseline");
        if !out.status.success() {
            eprintln!("baseline failed: {}", String::from_utf8_lossy(&out.stderr));
        } else {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("baseline JSON");
            rows.push(Row {
                who: "sequential (legacy-style, Python)".into(),
                seconds: v["seconds"].as_f64().unwrap(),
                requests: v["requests"].as_u64().unwrap(),
                events: v["events"].as_u64().unwrap(),
            });
        }
    }
    server.shutdown().await;
    let reference = rows.iter().find(|r| r.who.starts_with("sequential")).map(|r| r.seconds);
    let mut table = String::from(
        "| poller | cycle (s) | requests | events | events/s | vs sequential |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        let ratio = reference.map_or("-".into(), |s| format!("{:.1}x faster", s / r.seconds));
        table.push_str(&format!(
            "| {} | {:.2} | {} | {} | {:.0} | {} |\n",
            r.who,
            r.seconds,
            r.requests,
            r.events,
            r.events as f64 / r.seconds,
            ratio
        ));
    }
    println!("\n{table}\ngoal: one cycle over {} cameras in under 2 s (shown, not asserted)", cameras.len());
    if let Some(path) = &a.out {
        std::fs::write(path, &table).expect("write --out");
    }
}
