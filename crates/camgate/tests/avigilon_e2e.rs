//! End to end with the real binary: a simulated Avigilon ACC Web Endpoint
//! (`camgate_sim::avigilon`) → camgate's Avigilon polling source → store and `/api/*`.
//! Protocol facts: `docs/protocols/avigilon.md` of the shared folder (§1 sessions, §2 events
//! and CONTINUE paging, §6.4 the legacy bugs these tests pin down).
//!
//! Every test compares what camgate stored with the emulator's truth (unique STOP events per
//! camera and per normalised rule name): nothing lost, nothing twice. Loopback only, polls
//! every 200 ms, every wait bounded. Live scenarios start a few seconds after the emulator
//! binds, so the daemon is polling before the first event exists; a window that starts after
//! an event (a cursor moved past it) would lose it for good, which is what the tests with a
//! small `lookback` catch.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use camgate_sim::avigilon::{AcsServer, CountingSpec, Faults, Scenario, Stats, Truth, normalize_name};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

const USER: &str = "camgate-e2e";
const PASSWORD: &str = "Sim-acc-pw-4d1f";
const NONCE: &str = "E2E#Nonce0042";
const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// Longest any wait in this file may take.
const LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Set-up

/// A scenario whose events all exist from the start (STOP times 20 s to 10 s before the
/// emulator binds).
fn backfilled(spec: CountingSpec) -> Scenario {
    Scenario::counting(&CountingSpec { start_offset_ms: -20_000, span_ms: 10_000, ..spec }).unwrap()
}

/// A live scenario: STOP times from 2.5 s after the emulator binds, over `span_ms`.
fn live(spec: CountingSpec, span_ms: u64) -> Scenario {
    Scenario::counting(&CountingSpec { start_offset_ms: 2_500, span_ms, ..spec }).unwrap()
}

async fn emulator(scenario: Scenario, faults: Faults) -> AcsServer {
    AcsServer::builder()
        .credentials(USER, PASSWORD)
        .nonce_key(NONCE, KEY)
        .scenario(scenario)
        .faults(faults)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

/// One `[[avigilon]]` entry named `acc` for `server`; `extra` adds keys or replaces the
/// defaults set here.
fn site(server: &AcsServer, extra: &str) -> String {
    let mut keys = String::new();
    for (key, value) in [
        ("discover_cameras", "true".to_owned()),
        ("poll_interval", "\"200ms\"".to_owned()),
        ("lookback", "\"1m\"".to_owned()),
        ("request_timeout", "\"2s\"".to_owned()),
        ("concurrency", "4".to_owned()),
    ] {
        let overridden = extra.lines().any(|l| l.split('=').next().is_some_and(|k| k.trim() == key));
        if !overridden {
            keys.push_str(&format!("{key} = {value}\n"));
        }
    }
    format!(
        "[[avigilon]]\nname = \"acc\"\nurl = \"{}\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         user_nonce = \"{NONCE}\"\nuser_key = \"{KEY}\"\n{keys}{extra}\n",
        server.origin()
    )
}

fn start_site(dir: &Path, server: &AcsServer, extra: &str) -> Daemon {
    Daemon::start(dir, &config(dir, &site(server, extra)), &[])
}

// ---------------------------------------------------------------------------------------------
// Reading what camgate did

/// The stored Avigilon STOP events (not `device` events).
async fn stops(http: &reqwest::Client, daemon: &Daemon) -> Vec<Value> {
    all_events(http, daemon)
        .await
        .into_iter()
        .filter(|e| e["vendor"] == "avigilon" && e["kind"] != "device" && e["code"] == "DEVICE_ANALYTICS_STOP")
        .collect()
}

fn tally(items: impl IntoIterator<Item = String>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m
}

/// What a correct client stores: per camera and per normalised rule name.
fn expected(truth: &Truth) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let nonzero = |m: BTreeMap<String, u64>| m.into_iter().filter(|(_, n)| *n > 0).collect();
    (nonzero(truth.stops_by_camera()), nonzero(truth.stops_by_name()))
}

fn stored(events: &[Value]) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    (
        tally(events.iter().map(|e| e["data"]["cameraId"].as_str().unwrap_or_default().to_owned())),
        tally(events.iter().map(|e| normalize_name(e["rule"].as_str().unwrap_or_default()))),
    )
}

/// Each key once, and exactly the truth's events per camera and per rule name.
fn assert_matches_truth(events: &[Value], truth: &Truth) {
    let mut keys = HashSet::new();
    for e in events {
        let key = e["key"].as_str().unwrap();
        assert!(key.starts_with("avigilon:"), "{e}");
        assert!(keys.insert(key), "event key twice: {e}");
    }
    assert_eq!(events.len() as u64, truth.stops, "stored STOP events vs the emulator's unique STOP events");
    assert_eq!(stored(events), expected(truth), "per camera and per rule name");
}

/// Poll `f` every 50 ms until it answers, at most `limit`.
async fn wait_for<T, F: Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out ({limit:?}) waiting for {what}\n{}", context());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until camgate stored every unique STOP event of the scenario (at least `truth.stops`
/// of them, after the whole scenario is visible); returns them.
async fn await_all(http: &reqwest::Client, daemon: &Daemon, server: &AcsServer) -> Vec<Value> {
    let truth = server.truth().clone();
    let visible = server.all_visible_at();
    wait_for(
        &format!("{} STOP events stored", truth.stops),
        LIMIT,
        || daemon.output(),
        || async {
            if visible.is_some_and(|t| jiff::Timestamp::now() < t) {
                return None;
            }
            let events = stops(http, daemon).await;
            (events.len() as u64 >= truth.stops).then_some(events)
        },
    )
    .await
}

async fn source(http: &reqwest::Client, daemon: &Daemon) -> Value {
    let all: Value = http.get(daemon.api("/api/sources")).send().await.unwrap().json().await.unwrap();
    all["sources"].as_array().unwrap().iter().find(|s| s["name"] == "acc").cloned().unwrap_or(Value::Null)
}

async fn device_codes(http: &reqwest::Client, daemon: &Daemon) -> Vec<String> {
    all_events(http, daemon)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "device" && e["source"] == "acc")
        .map(|e| e["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn stop(daemon: &mut Daemon) {
    daemon.signal(Signal::SIGTERM);
    let (status, _) = daemon.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Discovery, names, event shape, health and logout: the plain path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfilled_site_is_stored_once_each_with_camera_names_and_zone_fields() {
    let server = emulator(backfilled(CountingSpec::default()), Faults::default()).await;
    let dir = temp();
    let mut daemon = start_site(dir.path(), &server, "");
    let http = client();
    let events = await_all(&http, &daemon, &server).await;
    // A few more cycles re-fetch the same windows (lookback): still once each.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let events2 = stops(&http, &daemon).await;
    assert_eq!(events.len(), events2.len(), "later cycles stored nothing new");
    assert_matches_truth(&events2, server.truth());

    let names: BTreeMap<String, String> =
        server.scenario().cameras.iter().map(|c| (c.id.clone(), c.name.clone())).collect();
    for e in &events2 {
        let cam = e["data"]["cameraId"].as_str().unwrap();
        assert_eq!(e["source"], names[cam], "source = the camera's name from GET /cameras: {e}");
        assert_eq!(e["state"], "stop", "{e}");
        assert!(e["kind"] == "counting", "{e}");
        assert!(e["data"]["area"].is_string() && e["data"]["activity"].is_string(), "zone matchers read these: {e}");
        assert!(e["occurred_at"].is_string(), "{e}");
        let server_id = e["data"]["originatingServerId"].as_str().unwrap();
        let this_id = e["data"]["thisId"].as_str().unwrap();
        assert_eq!(e["key"], format!("avigilon:{server_id}:{this_id}"));
    }
    let health = source(&http, &daemon).await;
    assert_eq!((health["state"].as_str(), health["mode"].as_str()), (Some("connected"), Some("pull")), "{health}");
    assert_eq!(health["events"].as_u64().unwrap() as usize, events2.len() + 1, "STOPs + the connected event");
    assert!(health["duplicates"].as_u64().unwrap() > 0, "overlapping windows give duplicates: {health}");
    assert_eq!(device_codes(&http, &daemon).await, ["connected"]);

    let stats = server.stats();
    stop(&mut daemon);
    assert_eq!(Stats::get(&stats.logins), 1, "one session for the whole run");
    assert_eq!(Stats::get(&stats.logouts), 1, "logged out at shutdown");
    assert_eq!(Stats::get(&stats.sent_401) + Stats::get(&stats.sent_403) + Stats::get(&stats.sent_400), 0);
    assert!(
        server
            .stats()
            .requests_log()
            .iter()
            .all(|r| r.path.ends_with("/login") || r.path.ends_with("/logout") || r.header_session),
        "the session goes in the x-avg-session header"
    );
}

/// §1.4: an expired session gets 401; camgate logs in again and retries, losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_401_logs_in_again_and_retries() {
    let faults = Faults { session_lifetime: Some(Duration::from_millis(400)), ..Faults::default() };
    let server = emulator(live(CountingSpec::default(), 3_000), faults).await;
    let dir = temp();
    let daemon = start_site(dir.path(), &server, "lookback = \"0s\"");
    let http = client();
    let events = await_all(&http, &daemon, &server).await;
    assert_matches_truth(&events, server.truth());
    let stats = server.stats();
    assert!(Stats::get(&stats.sent_401) > 0, "sessions expired mid-run");
    assert!(Stats::get(&stats.logins) >= 3, "logged in again: {}", Stats::get(&stats.logins));
    // Concurrent cameras that hit one expired session share one new login.
    assert!(Stats::get(&stats.logins) <= Stats::get(&stats.sent_401) + 1);
    let health = source(&http, &daemon).await;
    assert_eq!(health["state"], "connected", "{health}");
    assert_eq!(device_codes(&http, &daemon).await, ["connected"], "a re-login is not a disconnect");
}

/// §1.1: a server clock an hour ahead refuses the token (403): auth_failed, the skew logged
/// from the Date header; once the clock is fixed camgate connects and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_skew_403_is_reported_and_recovers_when_fixed() {
    let faults = Faults { clock_offset_secs: 3600, ..Faults::default() };
    let server = emulator(backfilled(CountingSpec::default()), faults).await;
    let dir = temp();
    let daemon = start_site(dir.path(), &server, "");
    let http = client();
    let health = wait_for(
        "auth_failed",
        LIMIT,
        || daemon.output(),
        || async {
            let h = source(&http, &daemon).await;
            (h["state"] == "auth_failed").then_some(h)
        },
    )
    .await;
    assert!(health["last_error"].as_str().unwrap().contains("403"), "{health}");
    assert!(health["auth_failures"].as_u64().unwrap() >= 1, "{health}");
    let out = daemon.output();
    assert!(
        out.contains("server_clock_ahead_secs=3600") || out.contains("server_clock_ahead_secs=3599"),
        "the skew is logged from the Date header: {out}"
    );
    assert!(stops(&http, &daemon).await.is_empty());

    server.update_faults(|f| f.clock_offset_secs = 0);
    let events = await_all(&http, &daemon, &server).await;
    assert_matches_truth(&events, server.truth());
    let health = source(&http, &daemon).await;
    assert_eq!(health["state"], "connected", "{health}");
    assert_eq!(device_codes(&http, &daemon).await, ["auth_failed", "connected"]);
}

/// Legacy bug 3: errors are not empty pages. With a quarter of all requests failing and no
/// lookback, a cursor moved past a failed window would lose its events for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_never_advance_a_cursor() {
    let faults = Faults { error_rate: 0.25, ..Faults::default() };
    let spec = CountingSpec { entries: 120, exits: 100, cameras: 6, ..CountingSpec::default() };
    let server = emulator(live(spec, 4_000), faults).await;
    let dir = temp();
    let daemon = start_site(dir.path(), &server, "lookback = \"0s\"\nconcurrency = 2");
    let http = client();
    let events = await_all(&http, &daemon, &server).await;
    assert_matches_truth(&events, server.truth());
    assert!(Stats::get(&server.stats().faults_injected) > 10, "errors were injected");
    let health = source(&http, &daemon).await;
    assert!(health["last_error"].as_str().is_some_and(|e| e.contains("HTTP 50")), "errors are reported: {health}");
}

/// Legacy bug 4: a burst of equal timestamps across a page boundary, pages that repeat the
/// last event, and a token on the last page: CONTINUE paging loses nothing, stores once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_timestamps_across_a_page_boundary_lose_nothing() {
    let spec = CountingSpec { equal_timestamp_burst: 25, servers: 1, cameras: 2, ..CountingSpec::default() };
    let scenario = backfilled(spec);
    let faults = Faults { repeat_last_on_continue: true, token_on_last_page: true, ..Faults::default() };
    let server = emulator(scenario, faults).await;
    assert!(server.truth().largest_equal_timestamp_stops >= 20, "{:?}", server.truth());
    let dir = temp();
    let daemon = start_site(dir.path(), &server, "limit = 10");
    let http = client();
    let events = await_all(&http, &daemon, &server).await;
    assert_matches_truth(&events, server.truth());
    let log = server.stats().requests_log();
    assert!(
        log.iter().any(|r| r.query.as_deref().is_some_and(|q| q.contains("queryType=CONTINUE"))),
        "paged with CONTINUE"
    );
    assert_eq!(Stats::get(&server.stats().sent_400), 0, "tokens URL-encoded, nothing extra on CONTINUE");
}

/// Legacy bug 5: events listed late (inside `lookback`) and delivered twice are stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_repeated_events_inside_the_lookback_are_stored_once() {
    let spec = CountingSpec {
        late_fraction: 0.4,
        late_delay_ms: 1_200,
        duplicate_fraction: 0.3,
        duplicate_shift_ms: 800,
        ..CountingSpec::default()
    };
    let server = emulator(live(spec, 3_000), Faults::default()).await;
    assert!(server.truth().late_stops > 0 && server.truth().duplicate_copies > 0);
    let dir = temp();
    let daemon = start_site(dir.path(), &server, "lookback = \"3s\"");
    let http = client();
    let events = await_all(&http, &daemon, &server).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let events2 = stops(&http, &daemon).await;
    assert_eq!(events.len(), events2.len());
    assert_matches_truth(&events2, server.truth());
    assert!(Stats::get(&server.stats().duplicates_served) > 0, "copies were served");
}

/// Exactly once across a crash: a daemon killed (SIGKILL) mid-run and started again stores
/// the same events as one that ran throughout, both against the same emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_run_stores_the_same_events_as_an_uninterrupted_run() {
    let spec = CountingSpec { entries: 150, exits: 120, cameras: 6, ..CountingSpec::default() };
    let server = emulator(live(spec, 5_000), Faults::default()).await;
    let (steady_dir, crash_dir) = (temp(), temp());
    let extra = "lookback = \"300ms\"";
    let steady = start_site(steady_dir.path(), &server, extra);
    let crashing = start_site(crash_dir.path(), &server, extra);
    let http = client();
    // Kill it while events are arriving, once some are stored.
    let begin = server.start();
    wait_for(
        "the middle of the scenario",
        LIMIT,
        || crashing.output(),
        || async {
            let mid = jiff::Timestamp::now() > begin + jiff::SignedDuration::from_millis(2_000);
            (mid && !stops(&http, &crashing).await.is_empty()).then_some(())
        },
    )
    .await;
    let before = stops(&http, &crashing).await.len();
    crashing.kill9();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let restarted = start_site(crash_dir.path(), &server, extra);

    let a = await_all(&http, &steady, &server).await;
    let b = await_all(&http, &restarted, &server).await;
    assert_matches_truth(&a, server.truth());
    assert_matches_truth(&b, server.truth());
    let keys = |v: &[Value]| v.iter().map(|e| e["key"].as_str().unwrap().to_owned()).collect::<HashSet<_>>();
    assert_eq!(keys(&a), keys(&b), "the same event set");
    assert!(
        (before as u64) < server.truth().stops,
        "the crash came before everything was stored ({before} of {})",
        server.truth().stops
    );
    let out = restarted.output();
    assert!(out.contains("resumed=") && !out.contains("resumed=0"), "cursors read back: {out}");
}

/// `active = "schedule"`: polls inside the open window, from its start; events carry the
/// window's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_site_polls_inside_the_open_window_and_tags_its_events() {
    let server = emulator(backfilled(CountingSpec::default()), Faults::default()).await;
    let dir = temp();
    // A window (site time zone UTC) that opened 2-3 minutes ago and ends in 3.
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let start = now.checked_sub(jiff::SignedDuration::from_mins(2)).unwrap();
    let end = now.checked_add(jiff::SignedDuration::from_mins(3)).unwrap();
    let schedule = format!(
        "active = \"schedule\"\nlookback = \"5m\"\n\n[[schedule.window]]\ndate = \"{}\"\nname = \"Concierto E2E\"\nstart = \"{}\"\nend = \"{}\"\n",
        start.date(),
        start.strftime("%H:%M"),
        end.strftime("%H:%M"),
    );
    let daemon = start_site(dir.path(), &server, &schedule);
    let http = client();
    let events = await_all(&http, &daemon, &server).await;
    assert_matches_truth(&events, server.truth());
    assert!(events.iter().all(|e| e["schedule"] == "Concierto E2E"), "{:?}", events.first());
    assert!(daemon.output().contains("scheduled window open: polling"), "{}", daemon.output());
}

/// `history` (issue 5, the legacy monitor's hard-coded filter made configurable): events the
/// filter leaves out are not in `/api/events` or a sink, yet every event counts for the zones,
/// exactly once, however often its window is fetched again and across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_filter_hides_events_that_still_count_for_the_zones_exactly_once() {
    // Two zones (PARQUEADERO NORTE, PARQUEADERO SUR) plus presence ("Presencia Puerta N")
    // and vehicle ("Conteo Vehicular Acceso N") noise that no zone counts.
    let spec = CountingSpec { entries: 120, exits: 100, cameras: 6, noise: 40, ..CountingSpec::default() };
    let server = emulator(backfilled(spec), Faults::default()).await;
    let truth = server.truth().clone();
    let (norte, sur) = (truth.zone("PARQUEADERO NORTE").unwrap(), truth.zone("PARQUEADERO SUR").unwrap());
    // History: the presence rules (the legacy filter's "PUERTA") and the north zone, matched
    // by its area. Everything else only counts.
    let kept = |r: &camgate_sim::avigilon::RuleTruth| {
        r.normalized_name.contains("PUERTA") || r.zone.as_deref() == Some("PARQUEADERO NORTE")
    };
    let history: u64 = truth.rules.iter().filter(|r| kept(r)).map(|r| r.stops).sum();
    let hidden = truth.stops - history;
    assert!(history > 0 && hidden > 0 && sur.entries > 0 && sur.exits > 0, "{truth:?}");
    let names = |list: &[String]| {
        let items: Vec<String> = list.iter().map(|n| format!("{{ name = {{ equals = {n:?} }} }}")).collect();
        format!("[{}]", items.join(", "))
    };
    let zone = |z: &camgate_sim::avigilon::ZoneTruth| {
        format!(
            "[[zone]]\nname = {:?}\nreset = \"never\"\nclamp_at_zero = false\nenter = {}\nexit = {}\n",
            z.zone,
            names(&z.entry_names),
            names(&z.exit_names)
        )
    };
    let dir = temp();
    let jsonl = dir.path().join("history.jsonl");
    let extra = format!(
        "history = [\n  {{ name = {{ contains = \"puerta\" }} }},\n  {{ area = {{ regex = \"^parqueadero norte$\" }} }},\n]\n\n\
         {}{}\n[[sink]]\ntype = \"jsonl\"\npath = {:?}\n",
        zone(norte),
        zone(sur),
        jsonl.display().to_string()
    );
    let text = config(dir.path(), &site(&server, &extra));
    let mut daemon = Daemon::start(dir.path(), &text, &[]);
    let http = client();
    let want = |z: &camgate_sim::avigilon::ZoneTruth| (z.zone.clone(), z.net(), z.entries as i64, z.exits as i64);
    let want = vec![want(norte), want(sur)];
    let zone_counts = |daemon: &Daemon| {
        let (http, url) = (http.clone(), daemon.api("/api/zones"));
        async move {
            let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            let mut v: Vec<(String, i64, i64, i64)> = body["zones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|z| {
                    let n = |k: &str| z[k].as_i64().unwrap();
                    (z["zone"].as_str().unwrap().to_owned(), n("count"), n("entries"), n("exits"))
                })
                .collect();
            v.sort();
            v
        }
    };
    let not_history_metric = |daemon: &Daemon| {
        let (http, url) = (http.clone(), daemon.api("/metrics"));
        async move {
            let text = http.get(url).send().await.unwrap().text().await.unwrap();
            text.lines()
                .filter(|l| l.starts_with("camgate_events_not_history_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        }
    };
    wait_for(
        "the zones to reach the truth",
        LIMIT,
        || daemon.output(),
        || async { (zone_counts(&daemon).await == want).then_some(()) },
    )
    .await;
    let shown = stops(&http, &daemon).await;
    assert_eq!(shown.len() as u64, history, "only history events are shown");
    assert!(
        shown.iter().all(|e| {
            let name = normalize_name(e["rule"].as_str().unwrap());
            name.contains("PUERTA") || name.contains("PARQUEADERO NORTE")
        }),
        "a hidden event in /api/events"
    );
    assert_eq!(shown.iter().map(|e| &e["key"]).collect::<HashSet<_>>().len(), shown.len());
    assert_eq!(not_history_metric(&daemon).await, hidden, "the others are counted as not history");
    // The sink gets the history only (and the site's `connected` event).
    let lines = wait_for(
        "the sink to write the history",
        LIMIT,
        || daemon.output(),
        || async {
            let text = std::fs::read_to_string(&jsonl).unwrap_or_default();
            let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let stops = lines.iter().filter(|e| e["code"] == "DEVICE_ANALYTICS_STOP").count() as u64;
            (stops >= history).then_some(lines)
        },
    )
    .await;
    let keys = |v: &[Value]| {
        v.iter()
            .filter(|e| e["code"] == "DEVICE_ANALYTICS_STOP")
            .map(|e| e["key"].as_str().unwrap().to_owned())
            .collect::<HashSet<_>>()
    };
    assert_eq!(keys(&lines), keys(&shown), "the sink delivers exactly the history");
    assert_eq!(lines.len(), shown.len() + 1, "plus the `connected` device event: {lines:?}");

    // Later cycles fetch the same windows again (lookback 1m): every event comes back as a
    // duplicate, hidden or not, and nothing is counted twice.
    let duplicates = |daemon: &Daemon| {
        let (http, url) = (http.clone(), daemon.api("/api/sources"));
        async move {
            let all: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            let acc = all["sources"].as_array().unwrap().iter().find(|s| s["name"] == "acc").cloned().unwrap();
            acc["duplicates"].as_u64().unwrap()
        }
    };
    wait_for(
        "every event fetched again",
        LIMIT,
        || daemon.output(),
        || async { (duplicates(&daemon).await >= 2 * truth.stops).then_some(()) },
    )
    .await;
    assert_eq!(zone_counts(&daemon).await, want, "re-polls counted something twice");
    assert_eq!(stops(&http, &daemon).await.len() as u64, history);
    assert_eq!(not_history_metric(&daemon).await, hidden);

    // And after a restart, which reads the cursors back and fetches the overlap again.
    stop(&mut daemon);
    let daemon = Daemon::start(dir.path(), &text, &[]);
    wait_for(
        "every event fetched again after the restart",
        LIMIT,
        || daemon.output(),
        || async { (duplicates(&daemon).await >= truth.stops).then_some(()) },
    )
    .await;
    assert_eq!(zone_counts(&daemon).await, want, "the restart counted something twice");
    assert_eq!(stops(&http, &daemon).await.len() as u64, history);
    assert_eq!(not_history_metric(&daemon).await, 0, "nothing new after the restart");
}
