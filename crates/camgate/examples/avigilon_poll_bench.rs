//! One Avigilon poll cycle over many cameras against the simulated Web Endpoint, with a
//! fixed latency per request: camgate's poller (bounded concurrency per ACC server, CONTINUE
//! paging, one time-ordered store write per cycle) at several `concurrency` settings, a bare
//! client sending the same requests and only reading the answers (what the emulator and
//! HTTP cost by themselves), and a sequential poller like the legacy monitor's (one camera
//! after another), in Python, against the same emulator.
//!
//! For each run: the cycle time, split into fetching the windows and storing their events,
//! the CPU time of the whole process (emulator included: everything shares the machine)
//! and the peak memory (RSS) reached during the run.
//!
//! Run by `scripts/bench avigilon`; prints a table, asserts nothing.
//!
//! ```text
//! cargo run --release -p camgate --example avigilon_poll_bench -- \
//!     [--cameras 1000] [--servers 2] [--latency-ms 20] [--events 40000] \
//!     [--concurrency 4,8,16,32] [--runs 1] [--baseline scripts/bench_avigilon.py] [--out FILE]
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
    runs: usize,
    baseline: Option<String>,
    out: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        cameras: 1000,
        servers: 2,
        latency_ms: 20,
        events: 40_000,
        concurrency: vec![4, 8, 16, 32],
        runs: 1,
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
            "--runs" => a.runs = value().parse().expect("--runs N"),
            "--baseline" => a.baseline = Some(value()),
            "--out" => a.out = Some(value()),
            "--quick" => {
                a.cameras = 200;
                a.events = 8_000;
            }
            "-h" | "--help" => {
                println!(
                    "avigilon_poll_bench [--cameras N] [--servers N] [--latency-ms MS] [--events N] \
                     [--concurrency 4,8,16 (per server)] [--runs N] [--baseline bench_avigilon.py] [--out FILE] [--quick]"
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
    /// Fetching and storing (camgate's poller only).
    split: Option<(f64, f64)>,
    /// CPU seconds of the process during the run, and its peak RSS in MB with how much of it
    /// the run added (the process keeps memory freed by earlier runs).
    cpu: Option<f64>,
    peak_mb: Option<(f64, f64)>,
    requests: u64,
    events: u64,
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

/// Reset the peak RSS (Linux: `5` to clear_refs), so the next reading is this run's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A memory figure of /proc/self/status (`VmHWM:` the peak RSS since the last reset,
/// `VmRSS:` the current one), in MB.
fn status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Reset the peak; the RSS now.
fn start_memory() -> Option<f64> {
    reset_peak_rss();
    status_mb("VmRSS:")
}

/// The peak since [`start_memory`], and how much above the RSS then it went.
fn peak_memory(start: Option<f64>) -> Option<(f64, f64)> {
    let peak = status_mb("VmHWM:")?;
    Some((peak, (peak - start?).max(0.0)))
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
    for run in 0..a.runs {
        if a.runs > 1 {
            println!("run {} of {}", run + 1, a.runs);
        }
        rows.push(bare_client(&server, &cameras, 16 * a.servers, a.latency_ms).await);
        for &concurrency in &a.concurrency {
            rows.push(camgate_cycle(&server, &cameras, concurrency, a.servers, stops, false).await);
        }
        // The default, with the scenario's zones counting every event (as at the stadium).
        rows.push(camgate_cycle(&server, &cameras, 16, a.servers, stops, true).await);
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
                split: None,
                cpu: None,
                peak_mb: None,
                seconds: v["seconds"].as_f64().unwrap(),
                requests: v["requests"].as_u64().unwrap(),
                events: v["events"].as_u64().unwrap(),
            });
        }
    }
    server.shutdown().await;
    let reference = rows.iter().find(|r| r.who.starts_with("sequential")).map(|r| r.seconds);
    let mut table = String::from(
        "| poller | cycle (s) | fetch / store (s) | CPU (s) | peak RSS (MB, +run) | requests | events | events/s | vs sequential |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for r in &rows {
        let ratio = reference.map_or("-".into(), |s| format!("{:.1}x faster", s / r.seconds));
        let split = r.split.map_or("-".to_string(), |(f, s)| format!("{f:.2} / {s:.2}"));
        table.push_str(&format!(
            "| {} | {:.2} | {split} | {} | {} | {} | {} | {:.0} | {} |\n",
            r.who,
            r.seconds,
            opt(r.cpu, 2),
            r.peak_mb.map_or("-".to_string(), |(peak, run)| format!("{peak:.0} (+{run:.0})")),
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

/// One cycle of camgate's poller over every camera, into a fresh store; with `zones`, the
/// scenario's zones count its entries and exits (in the store's write transactions).
async fn camgate_cycle(
    server: &AcsServer,
    cameras: &[Camera],
    concurrency: usize,
    servers: usize,
    stops: u64,
    zones: bool,
) -> Row {
    let mut text = format!(
        "[[avigilon]]\nname = \"bench\"\nurl = \"{}\"\nusername = \"{DEFAULT_USER}\"\npassword = \"{DEFAULT_PASSWORD}\"\n\
         user_nonce = \"{DEFAULT_NONCE}\"\nuser_key = \"{DEFAULT_USER_KEY}\"\ncameras = [\"x\"]\n\
         poll_interval = \"60s\"\nlookback = \"2m\"\nconcurrency = {concurrency}\n",
        server.origin()
    );
    if zones {
        let names = |list: &[String]| {
            let items: Vec<String> = list.iter().map(|n| format!("{{ name = {{ equals = {n:?} }} }}")).collect();
            format!("[{}]", items.join(", "))
        };
        for z in &server.truth().zones {
            text.push_str(&format!(
                "\n[[zone]]\nname = {:?}\nenter = {}\nexit = {}\n",
                z.zone,
                names(&z.entry_names),
                names(&z.exit_names)
            ));
        }
    }
    let config = Config::from_toml(&text, "<bench>").expect("config");
    let cfg = Arc::new(config.avigilon[0].clone());
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let options = StoreOptions {
        occupancy: camgate::occupancy::Occupancy::from_config(&config),
        ..StoreOptions::in_dir(dir.path())
    };
    let (store, writer) = Store::open(options, metrics.clone(), Bus::default()).await.expect("store");
    let client = Arc::new(Client::new(cfg.clone(), metrics).expect("client"));
    client.connect().await.expect("login");
    let health = Registry::default().register("bench", Vendor::Avigilon, "pull", SourceState::Connected);
    let poller = Poller::new(cfg, client.clone(), store.clone(), health, cameras.to_vec(), None);
    let stats = server.stats();
    let before = Stats::get(&stats.requests);
    let memory = start_memory();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let report = poller.cycle(jiff::Timestamp::now() - Duration::from_secs(1), None, &CancellationToken::new()).await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let peak_mb = peak_memory(memory);
    assert!(report.error.is_none(), "cycle failed: {:?}", report.error);
    let requests = Stats::get(&stats.requests) - before;
    client.logout().await;
    writer.close().await;
    let stored = report.stats.new;
    if stored != stops {
        println!("warning: camgate (concurrency {concurrency}) stored {stored} of {stops} events");
    }
    Row {
        who: format!(
            "camgate, concurrency {concurrency} per server ({} in flight){}",
            concurrency * servers,
            if zones { ", 3 zones counting" } else { "" }
        ),
        seconds,
        split: Some((report.fetch_time.as_secs_f64(), report.store_time.as_secs_f64())),
        cpu: Some(cpu),
        peak_mb,
        requests,
        events: stored,
    }
}

/// The same TIME_RANGE requests as a cycle (one per camera), `in_flight` at a time, by a
/// client that only reads the answers: what the emulator and HTTP cost without camgate's
/// parsing and storing.
async fn bare_client(server: &AcsServer, cameras: &[Camera], in_flight: usize, latency_ms: u64) -> Row {
    use futures::StreamExt;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = server.base_url();
    let login = serde_json::json!({
        "username": DEFAULT_USER,
        "password": DEFAULT_PASSWORD,
        "clientName": "bench-bare",
        "authorizationToken": camgate_sim::avigilon::authorization_token(
            DEFAULT_NONCE,
            DEFAULT_USER_KEY,
            jiff::Timestamp::now().as_second(),
            None,
        ),
    });
    let answer: serde_json::Value =
        http.post(format!("{base}/login")).json(&login).send().await.unwrap().json().await.unwrap();
    let session = answer["result"]["session"].as_str().expect("session").to_owned();
    let to = jiff::Timestamp::now() - Duration::from_secs(1);
    let from = to - Duration::from_secs(180);
    let iso = |t: jiff::Timestamp| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let (from, to) = (iso(from), iso(to));
    let stats = server.stats();
    let before = Stats::get(&stats.requests);
    let memory = start_memory();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let events: usize = futures::stream::iter(cameras)
        .map(|c| {
            let (http, session) = (&http, &session);
            let url = format!(
                "{base}/events/search?queryType=TIME_RANGE&serverId={}&from={from}&to={to}\
                 &eventTopics=DEVICE_ANALYTICS_STOP&deviceIds={}&limit=1000",
                c.servers[0], c.id
            );
            async move {
                let body = http.get(url).header("x-avg-session", session).send().await.unwrap().bytes().await.unwrap();
                // Count the events without parsing them: one "thisId" each.
                body.windows(8).filter(|w| w == b"\"thisId\"").count()
            }
        })
        .buffer_unordered(in_flight)
        .fold(0, |n, e| async move { n + e })
        .await;
    let seconds = started.elapsed().as_secs_f64();
    Row {
        who: format!("bare client, answers read only ({in_flight} in flight, {latency_ms} ms each)"),
        seconds,
        split: None,
        cpu: Some(cpu_seconds() - cpu),
        peak_mb: peak_memory(memory),
        requests: Stats::get(&stats.requests) - before,
        events: events as u64,
    }
}
