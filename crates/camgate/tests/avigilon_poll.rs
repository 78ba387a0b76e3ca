//! The Avigilon poller as a library, against the in-process emulator: the bounds of a poll
//! cycle. A backlog larger than a cycle's event budget is fetched in bounded steps, cycle
//! after cycle, and every event is stored exactly once; no ACC server ever has more than
//! `concurrency` requests in flight.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use camgate::bus::Bus;
use camgate::metrics::Metrics;
use camgate::sources::avigilon::{Camera, Client, Poller};
use camgate::sources::{Registry, SourceState};
use camgate::store::{EventFilter, Store, StoreOptions};
use camgate_core::Vendor;
use camgate_core::config::Config;
use camgate_sim::avigilon::{
    AcsServer, CountingSpec, DEFAULT_NONCE, DEFAULT_PASSWORD, DEFAULT_USER, DEFAULT_USER_KEY, Faults, Scenario,
};
use tokio_util::sync::CancellationToken;

/// A poller for every camera of `server`, storing into `dir`.
async fn poller(server: &AcsServer, dir: &std::path::Path, extra: &str) -> (Poller, Store, camgate::store::Writer) {
    let text = format!(
        "[[avigilon]]\nname = \"acc\"\nurl = \"{}\"\nusername = \"{DEFAULT_USER}\"\npassword = \"{DEFAULT_PASSWORD}\"\n\
         user_nonce = \"{DEFAULT_NONCE}\"\nuser_key = \"{DEFAULT_USER_KEY}\"\ncameras = [\"x\"]\n\
         poll_interval = \"60s\"\n{extra}\n",
        server.origin()
    );
    let cfg = Arc::new(Config::from_toml(&text, "<test>").unwrap().avigilon.remove(0));
    let metrics = Arc::new(Metrics::new());
    let (store, writer) = Store::open(StoreOptions::in_dir(dir), metrics.clone(), Bus::default()).await.unwrap();
    let client = Arc::new(Client::new(cfg.clone(), metrics).unwrap());
    client.connect().await.unwrap();
    let cameras: Vec<Camera> = server
        .scenario()
        .cameras
        .iter()
        .map(|c| Camera { id: c.id.clone(), source: c.name.clone(), servers: vec![c.server_id.clone()] })
        .collect();
    let health = Registry::default().register("acc", Vendor::Avigilon, "pull", SourceState::Connected);
    (Poller::new(cfg, client, store.clone(), health, cameras, None), store, writer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_the_cycle_budget_is_fetched_in_bounded_cycles_exactly_once() {
    // 2,400 STOP events of 8 cameras on 2 servers, all 20 s to 10 s old.
    let spec = CountingSpec {
        entries: 1_300,
        exits: 1_100,
        cameras: 8,
        servers: 2,
        start_offset_ms: -20_000,
        span_ms: 10_000,
        ..CountingSpec::default()
    };
    let faults = Faults { latency: Duration::from_millis(2), ..Faults::default() };
    let server = AcsServer::builder()
        .scenario(Scenario::counting(&spec).unwrap())
        .faults(faults)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let stops = server.truth().stops;
    assert_eq!(stops, 2_400);
    let dir = tempfile::tempdir().unwrap();
    // Pages of 50; one request in flight per server; at most 500 events per cycle; no
    // lookback (the overlap it fetches again is on top of the budget).
    let (mut poller, store, writer) =
        poller(&server, dir.path(), "limit = 50\nconcurrency = 1\nlookback = \"0s\"").await;
    poller.cycle_events = 500;
    let end = jiff::Timestamp::now() - Duration::from_secs(1);
    let mut cycles = 0;
    let mut new = 0;
    loop {
        let report = poller.cycle(end, None, &CancellationToken::new()).await;
        assert!(report.error.is_none(), "{:?}", report.error);
        cycles += 1;
        // The budget, plus at most one page of each of the 2 windows under way when it ran
        // out (and the few events of the millisecond before each cursor, fetched again).
        assert!(report.stats.fetched <= 500 + 2 * 50 + 20, "cycle {cycles} held {} events", report.stats.fetched);
        new += report.stats.new;
        if report.deferred == 0 {
            break;
        }
        assert!(cycles < 40, "no progress: {report:?}");
    }
    assert!(cycles >= 5, "2,400 events in cycles of at most 600 take several: {cycles}");
    assert_eq!(new, stops, "each event stored once over the cycles");
    let stored = store.read_after(0, 10_000, &EventFilter::default()).await.unwrap();
    let keys: HashSet<&str> = stored.iter().map(|e| e.event.key.as_str()).collect();
    assert_eq!((stored.len() as u64, keys.len() as u64), (stops, stops));
    // One more cycle over the same windows: all duplicates, nothing deferred.
    let report = poller.cycle(end, None, &CancellationToken::new()).await;
    assert_eq!((report.stats.new, report.deferred), (0, 0), "{report:?}");
    writer.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_the_requests_in_flight_to_each_server() {
    let spec = CountingSpec {
        entries: 400,
        exits: 300,
        cameras: 24,
        servers: 2,
        start_offset_ms: -20_000,
        span_ms: 10_000,
        ..CountingSpec::default()
    };
    let faults = Faults { latency: Duration::from_millis(30), ..Faults::default() };
    let server = AcsServer::builder()
        .scenario(Scenario::counting(&spec).unwrap())
        .faults(faults)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (poller, _store, writer) = poller(&server, dir.path(), "concurrency = 3").await;
    let stats = server.stats();
    let report = poller.cycle(jiff::Timestamp::now() - Duration::from_secs(1), None, &CancellationToken::new()).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.stats.new, server.truth().stops);
    // 3 per server: 6 in flight at most, and both servers were busy at once.
    let most = camgate_sim::avigilon::Stats::get(&stats.max_in_flight);
    assert!((4..=6).contains(&most), "requests in flight at most: {most}");
    writer.close().await;
    server.shutdown().await;
}
