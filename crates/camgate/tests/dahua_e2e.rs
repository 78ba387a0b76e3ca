//! End to end over TCP with the real binary: simulated Dahua cameras and NVRs
//! (`camgate_sim::dahua`) → camgate's Dahua event source → `jsonl` sink, store, `/api/sources`
//! and `/metrics`. Protocol facts: `docs/protocols/dahua.md` of the shared folder (§1 request,
//! §2 response, §6 authentication, §7 reconnect policy).
//!
//! Loopback only; every wait is bounded; heartbeats of 1 s and back-offs of half a second keep
//! each test to a few seconds. Timing asserts leave room for a loaded machine (tests run in
//! parallel); the exact delays are held by the seeded unit tests of `Reconnect`.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use camgate::bus::Bus;
use camgate::metrics::Metrics;
use camgate::store::{Store, StoreOptions};
use camgate_sim::dahua::{
    AuthMode, DahuaServer, DahuaServerBuilder, DigestAlgorithm, EventCode, Fault, Framing, SentEvent, Stats,
    UNKNOWN_CODE,
};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const USER: &str = "operator";
const PASSWORD: &str = "Sim-e2e-pw-9b3e";
const WRONG_PASSWORD: &str = "Not-the-pw-51c7";
/// Longest any wait in this file may take.
const LIMIT: Duration = Duration::from_secs(20);
/// Codes whose event keys hold an id per event (`EventID`, object ids), so that no two are
/// alike whatever the rate and across reconnects. camgate keys plain `VideoMotion` by code,
/// channel, state and device second: a Start repeated within one second (a fast simulator, or a
/// stream that starts again with the same Start) is a duplicate and stored once.
const UNIQUE: [EventCode; 2] = [EventCode::CrossLineDetection, EventCode::SmartMotionHuman];

// ---------------------------------------------------------------------------------------------
// Set-up

/// A simulated device with the test account and Digest (MD5, qop=auth).
fn sim() -> DahuaServerBuilder {
    DahuaServer::builder().credentials(USER, PASSWORD).auth(AuthMode::digest())
}

/// One `[[camera]] vendor = "dahua"` on loopback: heartbeat 1 s, back-off from 0.5 s. `extra`
/// adds keys, or replaces the defaults set here.
fn camera(name: &str, port: u16, extra: &str) -> String {
    let mut keys = String::new();
    for (key, value) in [
        ("password", format!("\"{PASSWORD}\"")),
        ("heartbeat", "1".to_owned()),
        ("backoff_base", "\"500ms\"".to_owned()),
        ("backoff_max", "\"10s\"".to_owned()),
        ("connect_timeout", "\"2s\"".to_owned()),
    ] {
        let overridden = extra.lines().any(|l| l.split('=').next().is_some_and(|k| k.trim() == key));
        if !overridden {
            keys.push_str(&format!("{key} = {value}\n"));
        }
    }
    format!(
        "[[camera]]\nname = \"{name}\"\nvendor = \"dahua\"\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"{USER}\"\n{keys}{extra}\n"
    )
}

/// The daemon config: `cameras` plus the `jsonl` sink writing `events.jsonl` in `dir`.
fn daemon_config(dir: &Path, cameras: &str) -> String {
    config(dir, &format!("{cameras}[[sink]]\ntype = \"jsonl\"\npath = \"events.jsonl\"\n"))
}

// ---------------------------------------------------------------------------------------------
// Reading what camgate did

/// Every line of `events.jsonl`. `strict`: each line must parse (after the daemon exited);
/// otherwise a line being written is skipped.
fn jsonl(dir: &Path, strict: bool) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(v) => Some(v),
            Err(e) if strict => panic!("not one event per line: {e}: {l}"),
            Err(_) => None,
        })
        .collect()
}

fn is_device(e: &Value) -> bool {
    e["kind"] == "device"
}

/// The `device` events of `camera` with this code.
fn device_events<'a>(events: &'a [Value], camera: &str, code: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| is_device(e) && e["source"] == camera && e["code"] == code).collect()
}

/// What identifies one event on both sides: code, state, 1-based channel, device time (`UTC`).
type Key = (String, String, u64, i64);

fn sent_key(e: &SentEvent) -> Key {
    (e.code.clone(), e.action.to_ascii_lowercase(), u64::from(e.index) + 1, e.utc)
}

fn event_key(e: &Value) -> Key {
    (
        e["code"].as_str().unwrap_or_default().to_owned(),
        e["state"].as_str().unwrap_or_default().to_owned(),
        e["channel"].as_u64().unwrap_or_default(),
        e["data"]["data"]["UTC"].as_i64().unwrap_or_default(),
    )
}

fn tally<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m
}

/// Whether `have` holds at least as many of each key as `want`.
fn covers<T: Ord>(have: &BTreeMap<T, usize>, want: &BTreeMap<T, usize>) -> bool {
    want.iter().all(|(k, n)| have.get(k).copied().unwrap_or(0) >= *n)
}

/// The device events (not `device`) among `events` that `pick` selects, as keys.
fn keys_of(events: &[Value], pick: impl Fn(&Value) -> bool) -> BTreeMap<Key, usize> {
    tally(events.iter().filter(|e| !is_device(e) && pick(e)).map(event_key))
}

/// Poll `f` every 25 ms until it answers, at most `limit`; `context` explains a timeout.
async fn wait_for<T>(what: &str, limit: Duration, context: impl Fn() -> String, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out ({limit:?}) waiting for {what}\n{}", context());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Wait until the jsonl file holds every event of a snapshot of at least `min` events the sim
/// sent (those `pick` keeps), the jsonl events chosen by `mine`; returns the snapshot.
async fn await_snapshot(
    daemon: &Daemon,
    dir: &Path,
    stats: &Stats,
    min: usize,
    pick: impl Fn(&SentEvent) -> bool,
    mine: impl Fn(&Value) -> bool,
) -> Vec<SentEvent> {
    await_snapshot_but_last(daemon, dir, stats, min, 0, pick, mine).await
}

/// As [`await_snapshot`], the last `lag` sent events left out of the snapshot: a part without
/// `Content-Length` ends only at the next boundary (dahua.md §3.2 V8), so the newest event
/// of such a stream is not in yet.
async fn await_snapshot_but_last(
    daemon: &Daemon,
    dir: &Path,
    stats: &Stats,
    min: usize,
    lag: usize,
    pick: impl Fn(&SentEvent) -> bool,
    mine: impl Fn(&Value) -> bool,
) -> Vec<SentEvent> {
    let context = || format!("{} events sent\n{}", stats.events().len(), daemon.output());
    wait_for(&format!("{min} events in events.jsonl"), LIMIT, context, || {
        let mut sent: Vec<SentEvent> = stats.events().into_iter().filter(|e| pick(e)).collect();
        sent.truncate(sent.len().saturating_sub(lag));
        let logged = keys_of(&jsonl(dir, false), &mine);
        (sent.len() >= min && covers(&logged, &tally(sent.iter().map(sent_key)))).then_some(sent)
    })
    .await
}

/// Each sent event in `events` once: all of `snapshot`, nothing the device did not send (in
/// `sent`), nothing twice, no event key twice.
fn assert_exactly_once(events: &[&Value], snapshot: &[SentEvent], sent: &[SentEvent]) {
    let mut seen = HashSet::new();
    for e in events {
        assert!(seen.insert(e["key"].as_str().unwrap()), "event key twice: {e}");
    }
    let logged = tally(events.iter().map(|e| event_key(e)));
    let missing: Vec<_> = tally(snapshot.iter().map(sent_key))
        .into_iter()
        .filter(|(k, n)| logged.get(k).copied().unwrap_or(0) < *n)
        .collect();
    assert!(missing.is_empty(), "sent but not in events.jsonl: {missing:?}");
    let sent = tally(sent.iter().map(sent_key));
    let extra: Vec<_> = logged.iter().filter(|(k, n)| sent.get(*k).copied().unwrap_or(0) < **n).collect();
    assert!(extra.is_empty(), "in events.jsonl but not sent (or twice): {extra:?}");
}

async fn api(http: &reqwest::Client, daemon: &Daemon, path: &str) -> String {
    http.get(daemon.api(path)).send().await.unwrap().text().await.unwrap()
}

/// `/api/sources` entry of `name`.
async fn source(http: &reqwest::Client, daemon: &Daemon, name: &str) -> Value {
    let all: Value = serde_json::from_str(&api(http, daemon, "/api/sources").await).unwrap();
    all["sources"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap_or(Value::Null)
}

/// The value of the `/metrics` sample whose line starts with `name{labels}`.
async fn metric(http: &reqwest::Client, daemon: &Daemon, series: &str) -> f64 {
    let text = api(http, daemon, "/metrics").await;
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

/// Stop with SIGTERM; exit 0 is required. Returns how long it took.
fn stop(daemon: &mut Daemon) -> Duration {
    daemon.signal(Signal::SIGTERM);
    let (status, took) = daemon.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    took
}

/// Dead letters in the store of `dir` (after the daemon exited).
async fn dead_letters(dir: &Path) -> Vec<camgate::store::DeadLetter> {
    let (store, writer) =
        Store::open(StoreOptions::in_dir(dir.join("data")), Arc::new(Metrics::new()), Bus::default()).await.unwrap();
    let letters = store.dead_letters(1000).await.unwrap();
    writer.close().await;
    letters
}

// ---------------------------------------------------------------------------------------------
// 1. Events: kind, channel, state, source, data; each once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nvr_stream_arrives_in_jsonl_once_each_with_kind_channel_state_and_data() {
    let nvr = sim().channels(4).event_interval(Some(Duration::from_millis(50))).bind("127.0.0.1:0").await.unwrap();
    let dir = temp();
    let cfg = daemon_config(
        dir.path(),
        &camera("nvr", nvr.local_addr().port(), "channels = [\"front\", \"back\", \"side\", \"yard\"]"),
    );
    let mut daemon = Daemon::start(dir.path(), &cfg, &[]);
    let stats = nvr.stats();
    // Two rounds of 7 codes × 4 channels: every code on every channel, Start and Stop.
    let snapshot = await_snapshot(&daemon, dir.path(), &stats, 60, |_| true, |_| true).await;
    stop(&mut daemon);
    let events = jsonl(dir.path(), true);
    let sent = stats.events();
    let names = ["front", "back", "side", "yard"];

    let dahua: Vec<&Value> = events.iter().filter(|e| !is_device(e)).collect();
    assert_exactly_once(&dahua, &snapshot, &sent);
    let codes: BTreeSet<&str> = dahua.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), EventCode::ALL.len(), "the whole mix arrived: {codes:?}");
    for e in &dahua {
        let code = e["code"].as_str().unwrap();
        let record = &e["data"];
        let index = record["index"].as_u64().unwrap();
        let kind = match code {
            "VideoMotion" => "motion",
            "SmartMotionHuman" => "human",
            "CrossLineDetection" => "line_crossing",
            "AlarmLocal" => "alarm_input",
            "_DoTalkAction_" => "doorbell",
            "NumberStat" => "counting",
            UNKNOWN_CODE => "other",
            other => panic!("a code the simulator does not send: {other}"),
        };
        assert_eq!(e["kind"], kind, "{e}");
        assert_eq!(e["vendor"], "dahua", "{e}");
        assert_eq!(e["channel"].as_u64(), Some(index + 1), "channel = index + 1: {e}");
        // `data` is the record: head keys as sent, the payload under `data`.
        assert_eq!(record["Code"], code, "{e}");
        let action = record["action"].as_str().unwrap();
        assert_eq!(e["state"], action.to_ascii_lowercase(), "{e}");
        let utc = record["data"]["UTC"].as_i64().expect("the payload is kept as JSON");
        let at: jiff::Timestamp = e["occurred_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(at.as_second(), utc, "occurred_at from the device's UTC: {e}");
        if code == "AlarmLocal" {
            // Alarm inputs are numbered by `index` too, but they are not video channels.
            assert_eq!(e["source"], "nvr", "{e}");
        } else {
            assert_eq!(e["source"], names[index as usize], "channel names become the source: {e}");
        }
        if ["VideoMotion", "SmartMotionHuman", "CrossLineDetection", "AlarmLocal"].contains(&code) {
            assert!(["Start", "Stop"].contains(&action), "{e}");
        } else {
            assert_eq!(action, "Pulse", "{e}");
        }
        match code {
            "CrossLineDetection" => {
                assert_eq!(e["rule"], "Gate; Drive", "a `;` inside the JSON is not a separator: {e}");
                assert_eq!(record["data"]["Direction"], "LeftToRight", "{e}");
                assert_eq!(at.subsec_millisecond(), 250, "UTCMS: {e}");
            }
            "SmartMotionHuman" => {
                assert_eq!(e["objects"][0]["type"], "human", "{e}");
                assert!(e["objects"][0]["bbox"].is_array(), "{e}");
            }
            "_DoTalkAction_" => assert_eq!(record["data"]["Action"], "Invite", "{e}"),
            "NumberStat" => assert_eq!(e["counts"]["enter"], record["data"]["EnteredNumber"], "{e}"),
            "VideoMotion" => assert_eq!(e["rule"], "Region1", "{e}"),
            UNKNOWN_CODE => assert_eq!(record["data"]["Foo"], "bar", "an unknown code keeps its data: {e}"),
            _ => {}
        }
        assert!(e["data"].get("data_error").is_none(), "{e}");
    }

    let connected = device_events(&events, "nvr", "connected");
    assert_eq!(connected.len(), 1, "{events:?}");
    assert_eq!(connected[0]["state"], "start");
    assert_eq!(connected[0]["data"]["scheme"], "Digest");
    assert_eq!(Stats::get(&stats.auth_failed), 0);
    assert_eq!(Stats::get(&stats.streams), 1, "one stream for the whole NVR");
    nvr.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 2. A stalled stream is noticed after 3 heartbeats and attached again after the back-off.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_detected_after_three_heartbeats_and_reattached() {
    let cam = sim()
        .events(&UNIQUE)
        .event_interval(Some(Duration::from_millis(300)))
        .fault(Some(Fault::StallAfter(Duration::from_secs(2))))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dir = temp();
    let mut daemon =
        Daemon::start(dir.path(), &daemon_config(dir.path(), &camera("gate", cam.local_addr().port(), "")), &[]);
    let stats = cam.stats();
    let out = || daemon.output();
    let started = wait_for("a second stream", LIMIT, out, || {
        let s = stats.streams_started();
        (s.len() >= 2).then_some(s)
    })
    .await;
    let stalled = stats.streams_stalled();
    assert_eq!(stalled[0].connection, started[0].connection);
    // From the last byte of the stalled stream to the next stream's `200`: the stall timeout
    // (3 × 1 s) plus the first back-off (0.5 s ± 20 %), plus a re-authentication round trip.
    let gap = started[1].at.duration_since(stalled[0].at);
    let bound = Duration::from_millis(3000 + 600 + 900);
    assert!(gap >= Duration::from_millis(3300), "reattached before the stall timeout and back-off: {gap:?}");
    assert!(gap <= bound, "reattached {gap:?} after the last byte (bound {bound:?})\n{}", daemon.output());

    let http = client();
    let health = wait_for_source(&http, &daemon, "gate", |s| s["reconnects"].as_u64() >= Some(1)).await;
    let last_error = health["last_error"].as_str().unwrap_or_default();
    assert!(last_error.contains("nothing received for 3s"), "{health}");
    // Everything sent before the stall arrived, and events flow again on the new stream.
    let second = started[1].connection;
    let snapshot = wait_for(
        "events of the new stream",
        LIMIT,
        || daemon.output(),
        || {
            let sent = stats.events();
            let logged = keys_of(&jsonl(dir.path(), false), |_| true);
            (sent.iter().any(|e| e.connection == second) && covers(&logged, &tally(sent.iter().map(sent_key))))
                .then_some(sent)
        },
    )
    .await;
    assert!(snapshot.iter().any(|e| e.connection == started[0].connection), "events before the stall");
    stop(&mut daemon);
    let events = jsonl(dir.path(), true);
    let stalled_events = device_events(&events, "gate", "stalled");
    assert_eq!(stalled_events.len(), 1, "{events:?}");
    assert_eq!(stalled_events[0]["state"], "stop");
    assert!(stalled_events[0]["data"]["reason"].as_str().unwrap().contains("nothing received"), "{events:?}");
    assert_eq!(device_events(&events, "gate", "connected").len(), 2, "connected, stalled, connected again");
    let dahua: Vec<&Value> = events.iter().filter(|e| !is_device(e)).collect();
    assert_exactly_once(&dahua, &snapshot, &stats.events());
    cam.shutdown().await;
}

/// Poll `/api/sources` until `name`'s entry satisfies `ok`.
async fn wait_for_source(http: &reqwest::Client, daemon: &Daemon, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let s = source(http, daemon, name).await;
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "/api/sources never got there: {s}\n{}", daemon.output());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. An abrupt close mid-part: the complete parts are events, the cut one a dead letter.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abrupt_close_mid_part_keeps_the_complete_events_and_dead_letters_the_cut_one() {
    const N: u32 = 4;
    let cam = sim()
        .channels(2)
        .events(&UNIQUE)
        .event_interval(Some(Duration::from_millis(60)))
        .fault(Some(Fault::CloseMidPart { after_events: N }))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dir = temp();
    let mut daemon =
        Daemon::start(dir.path(), &daemon_config(dir.path(), &camera("door", cam.local_addr().port(), "")), &[]);
    let stats = cam.stats();
    // Two streams cut, and every complete event of both in the file.
    let snapshot = wait_for(
        "two streams' events",
        LIMIT,
        || daemon.output(),
        || {
            let sent = stats.events();
            let conns: BTreeSet<u64> = sent.iter().map(|e| e.connection).collect();
            let logged = keys_of(&jsonl(dir.path(), false), |_| true);
            (conns.len() >= 2 && sent.len() >= 2 * N as usize && covers(&logged, &tally(sent.iter().map(sent_key))))
                .then_some(sent)
        },
    )
    .await;
    let http = client();
    // Both cut parts counted (the second cut may come just after its events).
    let series = "camgate_dahua_parts_total{kind=\"unrecognised\"}";
    let deadline = Instant::now() + LIMIT;
    let mut unrecognised = metric(&http, &daemon, series).await;
    while unrecognised < 2.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
        unrecognised = metric(&http, &daemon, series).await;
    }
    let health = source(&http, &daemon, "door").await;
    stop(&mut daemon);
    let events = jsonl(dir.path(), true);
    let dahua: Vec<&Value> = events.iter().filter(|e| !is_device(e)).collect();
    let sent = stats.events();
    assert_exactly_once(&dahua, &snapshot, &sent);
    for (conn, n) in tally(sent.iter().map(|e| e.connection)) {
        assert!(n <= N as usize, "connection {conn} sent {n} complete events");
    }
    assert!(dahua.iter().all(|e| e["data"].get("data_error").is_none()), "the cut part is not an event");

    let letters = dead_letters(dir.path()).await;
    // One per cut stream: each stream ends with a cut part.
    assert!(letters.len() as f64 >= unrecognised, "the cut parts are dead letters: {letters:?}");
    assert!(letters.len() as u64 <= Stats::get(&stats.streams), "{letters:?}");
    for l in &letters {
        assert_eq!(l.source, "door");
        assert!(l.reason.contains("cut short"), "{}", l.reason);
        let text = String::from_utf8_lossy(&l.payload);
        assert!(text.starts_with("Code="), "the cut body, verbatim: {text:?}");
    }
    assert!(unrecognised >= 2.0, "camgate_dahua_parts{{kind=\"unrecognised\"}} = {unrecognised}");
    assert!(health["reconnects"].as_u64() >= Some(1), "{health}");
    assert!(health["rejected"].as_u64() >= Some(2), "{health}");
    cam.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 4. SIGTERM with streams open.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_streams_open_exits_0_promptly_and_says_disconnected() {
    let busy = sim().channels(2).event_interval(Some(Duration::from_millis(100))).bind("127.0.0.1:0").await.unwrap();
    // A stream that is open but silent (heartbeats stop after the first).
    let silent = sim()
        .event_interval(None)
        .fault(Some(Fault::StallAfter(Duration::from_millis(1200))))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dir = temp();
    let cameras = camera("busy", busy.local_addr().port(), "") + &camera("silent", silent.local_addr().port(), "");
    let mut daemon = Daemon::start(dir.path(), &daemon_config(dir.path(), &cameras), &[]);
    let busy_stats = busy.stats();
    let silent_stats = silent.stats();
    await_snapshot(&daemon, dir.path(), &busy_stats, 10, |_| true, |_| true).await;
    wait_for(
        "the silent stream to go quiet",
        LIMIT,
        || daemon.output(),
        || (!silent_stats.streams_stalled().is_empty()).then_some(()),
    )
    .await;
    assert_eq!(Stats::get(&busy_stats.connections_open), 1, "the stream is open");
    assert_eq!(Stats::get(&silent_stats.connections_open), 1, "the stream is open");
    let took = stop(&mut daemon);
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    let events = jsonl(dir.path(), true);
    for name in ["busy", "silent"] {
        let gone = device_events(&events, name, "disconnected");
        assert_eq!(gone.len(), 1, "{name}: {events:?}");
        assert_eq!(gone[0]["state"], "stop");
        let reason = gone[0]["data"]["reason"].as_str().unwrap();
        assert!(reason.contains("stopping"), "{reason}");
        assert_eq!(device_events(&events, name, "stalled").len(), 0, "{name} was stopped, not stalled");
    }
    busy.shutdown().await;
    silent.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Authentication variants; wrong password within the budget; no secret in any output.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_auth_variant_works_and_a_wrong_password_stops_within_the_budget() {
    let quick = |b: DahuaServerBuilder| b.events(&UNIQUE).event_interval(Some(Duration::from_millis(100)));
    let digest =
        |qop, algorithm, stale_after| AuthMode::Digest { qop, algorithm, nonce_per_request: false, stale_after };
    let basic = quick(sim().auth(AuthMode::Basic)).bind("127.0.0.1:0").await.unwrap();
    let no_qop = quick(sim().auth(digest(false, DigestAlgorithm::Md5, None))).bind("127.0.0.1:0").await.unwrap();
    let sha256 = quick(sim().auth(digest(true, DigestAlgorithm::Sha256, None))).bind("127.0.0.1:0").await.unwrap();
    // Each nonce is good for one request; the streams are cut after two events, so every
    // re-attach meets a stale nonce.
    let stale = quick(sim().auth(digest(true, DigestAlgorithm::Md5, Some(1))))
        .fault(Some(Fault::CloseMidPart { after_events: 2 }))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let locked = sim().lockout(5, Duration::from_secs(3600)).bind("127.0.0.1:0").await.unwrap();
    let dir = temp();
    let cameras = [
        camera("basic", basic.local_addr().port(), ""),
        camera("no-qop", no_qop.local_addr().port(), ""),
        camera("sha256", sha256.local_addr().port(), ""),
        camera("stale", stale.local_addr().port(), ""),
        camera(
            "wrong",
            locked.local_addr().port(),
            &format!("password = \"{WRONG_PASSWORD}\"\nauth_failures = 3\nauth_lockout = \"1h\""),
        ),
    ]
    .concat();
    let mut daemon = Daemon::start(dir.path(), &daemon_config(dir.path(), &cameras), &[]);
    let http = client();

    // The wrong password: three refused attempts, then the long wait.
    let failed = wait_for(
        "the auth_failed event",
        LIMIT,
        || daemon.output(),
        || device_events(&jsonl(dir.path(), false), "wrong", "auth_failed").first().map(|e| (*e).clone()),
    )
    .await;
    assert_eq!(failed["data"]["attempts"], 3, "{failed}");
    assert_eq!(failed["data"]["username"], USER, "{failed}");
    let wrong_health = wait_for_source(&http, &daemon, "wrong", |s| s["state"] == "auth_failed").await;
    // Attaches that ended refused: the second attach presents the cached nonce, is refused,
    // and retries at once with the new one (two attempts, one attach).
    let refused_attaches = wrong_health["auth_failures"].as_u64().unwrap();
    assert!((2..=3).contains(&refused_attaches), "{wrong_health}");
    // The stale camera re-attaches a few times meanwhile.
    let stale_stats = stale.stats();
    wait_for(
        "stale nonces",
        LIMIT,
        || daemon.output(),
        || {
            (Stats::get(&stale_stats.auth_stale) >= 2
                && stale_stats.events_on(stale_stats.streams_started()[2].connection).len() >= 2)
                .then_some(())
        },
    )
    .await;
    // A few more seconds: still three attempts, the device never locked camgate out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let locked_stats = locked.stats();
    assert_eq!(Stats::get(&locked_stats.auth_failed), 3, "attempts with the wrong password");
    assert_eq!(Stats::get(&locked_stats.auth_locked), 0, "camgate stopped before the device's lockout");
    assert_eq!(Stats::get(&locked_stats.auth_ok), 0);

    let sources = api(&http, &daemon, "/api/sources").await;
    for name in ["basic", "no-qop", "sha256", "stale"] {
        let s = source(&http, &daemon, name).await;
        assert_eq!(s["auth_failures"], 0, "{s}");
        assert_ne!(s["state"], "auth_failed", "{s}");
        assert!(s["events"].as_u64() >= Some(2), "{s}");
    }
    assert_eq!(Stats::get(&stale_stats.auth_failed), 0, "stale nonces are not failures");
    let mut snapshots = Vec::new();
    for (name, server) in [("basic", &basic), ("no-qop", &no_qop), ("sha256", &sha256)] {
        let stats = server.stats();
        assert_eq!(Stats::get(&stats.auth_failed), 0, "{name}");
        assert!(Stats::get(&stats.auth_ok) >= 1, "{name}");
        let snapshot = await_snapshot(&daemon, dir.path(), &stats, 2, |_| true, |e| e["source"] == name).await;
        snapshots.push((name, stats, snapshot));
    }
    // Basic only after the device asked for it: the first request carried nothing, later ones
    // (none here: the stream lasts) would send Basic at once.
    assert_eq!(Stats::get(&basic.stats().challenges), 1);
    stop(&mut daemon);

    let events = jsonl(dir.path(), true);
    for (name, stats, snapshot) in &snapshots {
        let mine: Vec<&Value> = events.iter().filter(|e| !is_device(e) && e["source"] == *name).collect();
        assert_exactly_once(&mine, snapshot, &stats.events());
        let connected = device_events(&events, name, "connected");
        let scheme = if *name == "basic" { "Basic" } else { "Digest" };
        assert_eq!(connected[0]["data"]["scheme"], scheme, "{name}");
    }
    let basic_token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}").as_bytes());
    let everything = format!(
        "{}\n{}\n{sources}\n{}",
        daemon.output(),
        std::fs::read_to_string(dir.path().join("logs/camgate.log")).unwrap_or_default(),
        std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap()
    );
    for secret in [PASSWORD, WRONG_PASSWORD, basic_token.as_str()] {
        assert!(!everything.contains(secret), "{secret} in the output:\n{everything}");
    }
    assert!(everything.contains("refused the credentials"), "the refusal is logged");
    for s in [basic, no_qop, sha256, stale, locked] {
        s.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 6. A refused code list falls back to [All], filtered here.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_code_list_falls_back_to_all_and_filters_locally() {
    let cam = sim()
        .max_codes(1)
        .channels(2)
        .event_interval(Some(Duration::from_millis(50)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let dir = temp();
    let cfg = daemon_config(
        dir.path(),
        &camera("yard", cam.local_addr().port(), "codes = [\"VideoMotion\", \"CrossLineDetection\"]"),
    );
    let mut daemon = Daemon::start(dir.path(), &cfg, &[]);
    let stats = cam.stats();
    let wanted = |code: &str| code == "VideoMotion" || code == "CrossLineDetection";
    let snapshot = await_snapshot(&daemon, dir.path(), &stats, 12, |e| wanted(&e.code), |_| true).await;
    let http = client();
    let filtered = metric(&http, &daemon, "camgate_dahua_parts_total{kind=\"filtered\"}").await;
    stop(&mut daemon);
    assert_eq!(Stats::get(&stats.bad_requests), 1, "the list was refused once, then [All]");
    assert_eq!(Stats::get(&stats.streams), 1);
    let sent = stats.events();
    assert!(sent.iter().any(|e| !wanted(&e.code)), "the device sent every code");
    assert!(filtered > 0.0, "the other codes were dropped here");
    let events = jsonl(dir.path(), true);
    let dahua: Vec<&Value> = events.iter().filter(|e| !is_device(e)).collect();
    let codes: BTreeSet<&str> = dahua.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, BTreeSet::from(["CrossLineDetection", "VideoMotion"]));
    let sent_wanted: Vec<SentEvent> = sent.into_iter().filter(|e| wanted(&e.code)).collect();
    assert_exactly_once(&dahua, &snapshot, &sent_wanted);
    let connected = device_events(&events, "yard", "connected");
    assert_eq!(connected.len(), 1);
    assert_eq!(connected[0]["data"]["request"], "/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=1");
    assert!(daemon.output().contains("refused the code list"), "{}", daemon.output());
    cam.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 7. The request line on the wire: brackets literal.

/// A camera that records every request head: the first request gets a Digest challenge, later
/// ones a `200` stream with one heartbeat, held open.
async fn recording_camera() -> (SocketAddr, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let heads = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let n = {
                    let mut h = heads.lock().unwrap();
                    h.push(String::from_utf8_lossy(&buf).into_owned());
                    h.len()
                };
                if n == 1 {
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"Login to raw\", qop=\"auth\", nonce=\"n0nce\", opaque=\"0paque\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = socket.shutdown().await;
                    return;
                }
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=myboundary\r\n\r\n--myboundary\r\nContent-Type: text/plain\r\nContent-Length:9\r\n\r\nHeartbeat\r\n",
                    )
                    .await;
                // Hold the stream until camgate closes it.
                while let Ok(n) = socket.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (addr, heads, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_line_keeps_the_brackets_literal() {
    let (all_addr, all_heads, all_task) = recording_camera().await;
    let (list_addr, list_heads, list_task) = recording_camera().await;
    let dir = temp();
    let cameras = camera("all", all_addr.port(), "")
        + &camera("list", list_addr.port(), "codes = [\"VideoMotion\", \"CrossLineDetection\"]");
    let mut daemon = Daemon::start(dir.path(), &daemon_config(dir.path(), &cameras), &[]);
    for (name, heads) in [("all", &all_heads), ("list", &list_heads)] {
        wait_for(
            &format!("{name}: connected"),
            LIMIT,
            || daemon.output(),
            || {
                (heads.lock().unwrap().len() >= 2
                    && !device_events(&jsonl(dir.path(), false), name, "connected").is_empty())
                .then_some(())
            },
        )
        .await;
    }
    stop(&mut daemon);
    for (heads, codes) in [(&all_heads, "[All]"), (&list_heads, "[VideoMotion,CrossLineDetection]")] {
        let heads = heads.lock().unwrap().clone();
        let target = format!("/cgi-bin/eventManager.cgi?action=attach&codes={codes}&heartbeat=1");
        let request_line = format!("GET {target} HTTP/1.1");
        let lines = |h: &str| h.split("\r\n").map(str::to_owned).collect::<Vec<_>>();
        let first = lines(&heads[0]);
        let second = lines(&heads[1]);
        assert_eq!(first[0], request_line, "{heads:?}");
        assert_eq!(second[0], request_line, "{heads:?}");
        let authorization = |l: &[String]| {
            l.iter().find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case("authorization").then(|| v.trim().to_owned())
            })
        };
        assert_eq!(authorization(&first), None, "no credentials before the challenge: {heads:?}");
        let auth = authorization(&second).expect("the retry carries credentials");
        assert!(auth.starts_with("Digest "), "{auth}");
        assert!(auth.contains(&format!("uri=\"{target}\"")), "uri is the target as sent: {auth}");
        assert!(auth.contains("qop=auth") && !auth.contains("qop=\"auth\""), "qop unquoted: {auth}");
        assert!(auth.contains("nc=00000001"), "{auth}");
    }
    all_task.abort();
    list_task.abort();
}

// ---------------------------------------------------------------------------------------------
// 8. A 200 that closes at once is a failure: the delays grow.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_that_closes_at_once_backs_off_like_a_failure() {
    let cam = sim().auth(AuthMode::None).fault(Some(Fault::CloseAfterHead)).bind("127.0.0.1:0").await.unwrap();
    let dir = temp();
    let mut daemon =
        Daemon::start(dir.path(), &daemon_config(dir.path(), &camera("flaky", cam.local_addr().port(), "")), &[]);
    let stats = cam.stats();
    let first =
        wait_for("the first stream", LIMIT, || daemon.output(), || stats.streams_started().first().copied()).await;
    // Back-off 0.5 s, 1 s, 2 s (± 20 %): streams at about 0, 0.5, 1.5 and 3.5 s.
    let window = Duration::from_millis(4000);
    tokio::time::sleep((first.at + window).saturating_duration_since(Instant::now())).await;
    let starts: Vec<Instant> =
        stats.streams_started().iter().map(|m| m.at).filter(|at| at.duration_since(first.at) <= window).collect();
    assert!((3..=5).contains(&starts.len()), "{} streams in {window:?}: {:?}", starts.len(), gaps(&starts));
    let g = gaps(&starts);
    for pair in g.windows(2) {
        assert!(pair[1] > pair[0], "the delays grow: {g:?}");
    }
    assert!(g[0] >= Duration::from_millis(350), "{g:?}");
    let http = client();
    let health = source(&http, &daemon, "flaky").await;
    assert!(
        health["last_error"].as_str().unwrap_or_default().contains("closed the stream without sending anything"),
        "{health}"
    );
    assert!(health["reconnects"].as_u64() >= Some(2), "{health}");
    stop(&mut daemon);
    cam.shutdown().await;
}

/// A device that answers `200` and closes is reachable, so it is never announced
/// `unreachable`; it never delivers a byte, so it is never announced `connected` either
/// (dahua.md §2: that is a failure, not a connection). `/api/sources` says what is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_answers_200_and_closes_is_neither_connected_nor_unreachable() {
    let cam = sim().auth(AuthMode::None).fault(Some(Fault::CloseAfterHead)).bind("127.0.0.1:0").await.unwrap();
    let dir = temp();
    let cfg = daemon_config(
        dir.path(),
        &camera("flaky", cam.local_addr().port(), "backoff_base = \"50ms\"\nbackoff_max = \"100ms\""),
    );
    let mut daemon = Daemon::start(dir.path(), &cfg, &[]);
    let stats = cam.stats();
    wait_for("eight streams", LIMIT, || daemon.output(), || (Stats::get(&stats.streams) >= 8).then_some(())).await;
    let http = client();
    let health = source(&http, &daemon, "flaky").await;
    assert_ne!(health["state"], "connected", "{health}");
    assert!(health.get("connected_since").is_none(), "{health}");
    assert!(
        health["last_error"].as_str().unwrap_or_default().contains("closed the stream without sending anything"),
        "{health}"
    );
    stop(&mut daemon);
    let events = jsonl(dir.path(), true);
    let codes: Vec<&str> = events.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert!(codes.is_empty(), "no device event for a device that never sent a byte: {codes:?}");
    cam.shutdown().await;
}

fn gaps(starts: &[Instant]) -> Vec<Duration> {
    starts.windows(2).map(|w| w[1].duration_since(w[0])).collect()
}

// ---------------------------------------------------------------------------------------------
// 9. Offline at start, then up.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_offline_at_start_is_attached_once_it_is_up() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = temp();
    let cfg = daemon_config(dir.path(), &camera("late", port, "backoff_base = \"100ms\"\nbackoff_max = \"400ms\""));
    let mut daemon = Daemon::start(dir.path(), &cfg, &[]);
    let http = client();
    // Five refused connections (0.1 + 0.2 + 0.4 + 0.4 s apart): `unreachable`.
    let unreachable = wait_for(
        "the unreachable event",
        LIMIT,
        || daemon.output(),
        || device_events(&jsonl(dir.path(), false), "late", "unreachable").first().map(|e| (*e).clone()),
    )
    .await;
    assert_eq!(unreachable["data"]["failures"], 5, "{unreachable}");
    assert!(unreachable["data"]["last_error"].as_str().unwrap().contains("cannot connect"), "{unreachable}");
    let health = source(&http, &daemon, "late").await;
    assert_ne!(health["state"], "connected", "{health}");
    assert!(health["last_error"].as_str().unwrap_or_default().contains("cannot connect"), "{health}");

    let cam =
        sim().event_interval(Some(Duration::from_millis(100))).events(&UNIQUE).bind(("127.0.0.1", port)).await.unwrap();
    let up = Instant::now();
    let stats = cam.stats();
    let snapshot = await_snapshot(&daemon, dir.path(), &stats, 3, |_| true, |_| true).await;
    let first_stream = stats.streams_started()[0].at;
    assert!(
        first_stream.duration_since(up) < Duration::from_millis(400 + 80 + 500),
        "attached {:?} after the device came up (back-off max 0.4 s)",
        first_stream.duration_since(up)
    );
    let health = wait_for_source(&http, &daemon, "late", |s| s["state"] == "connected").await;
    assert!(health["reconnects"].as_u64() >= Some(5), "{health}");
    stop(&mut daemon);
    let events = jsonl(dir.path(), true);
    let order: Vec<&str> = events.iter().filter(|e| is_device(e)).map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(order, ["unreachable", "connected", "disconnected"], "{events:?}");
    let dahua: Vec<&Value> = events.iter().filter(|e| !is_device(e)).collect();
    assert_exactly_once(&dahua, &snapshot, &stats.events());
    cam.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 10. Every framing variant of the simulator.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_variant_delivers_its_events() {
    let mut servers = Vec::new();
    for framing in Framing::ALL {
        // 7 codes at 200 ms: a pulse code comes back after 1.4 s, in another device second.
        let s = sim()
            .framings(&[framing])
            .event_interval(Some(Duration::from_millis(200)))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        servers.push((format!("{framing:?}"), s));
    }
    let dir = temp();
    let cameras: String = servers.iter().map(|(name, s)| camera(name, s.local_addr().port(), "")).collect();
    let mut daemon = Daemon::start(dir.path(), &daemon_config(dir.path(), &cameras), &[]);
    let mut snapshots = Vec::new();
    for (name, s) in &servers {
        let stats = s.stats();
        let lag = usize::from(*name == format!("{:?}", Framing::NoContentLength));
        let snapshot =
            await_snapshot_but_last(&daemon, dir.path(), &stats, 10, lag, |_| true, |e| e["source"] == name.as_str())
                .await;
        snapshots.push((name.clone(), stats, snapshot));
    }
    let http = client();
    let dead = metric(&http, &daemon, "camgate_dahua_parts_total{kind=\"unrecognised\"}").await;
    stop(&mut daemon);
    let events = jsonl(dir.path(), true);
    for (name, stats, snapshot) in &snapshots {
        let mine: Vec<&Value> = events.iter().filter(|e| !is_device(e) && e["source"] == name.as_str()).collect();
        assert_exactly_once(&mine, snapshot, &stats.events());
        assert!(mine.iter().all(|e| e["data"].get("data_error").is_none()), "{name}");
        assert_eq!(Stats::get(&stats.streams), 1, "{name}: one stream, never broken");
        assert_eq!(device_events(&events, name, "connected").len(), 1, "{name}");
        assert_eq!(device_events(&events, name, "stalled").len(), 0, "{name}: heartbeats were read");
    }
    assert_eq!(dead, 0.0, "no part became a dead letter");
    for (_, s) in servers {
        s.shutdown().await;
    }
}
