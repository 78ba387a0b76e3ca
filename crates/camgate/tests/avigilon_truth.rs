//! The acceptance test of the Avigilon occupancy work: the real binary polls a simulated ACC
//! site of known truth, 10,000 entries and 9,400 exits over 3 zones and 40 cameras on 2
//! servers, with every fault of the emulator injected (docs/protocols/avigilon.md §7 of the
//! shared folder), and is killed with SIGKILL mid-run. The zones' final counts in
//! `/api/zones` must equal the truth exactly.
//!
//! The scenario is accelerated: its 19,400 counting detections (plus presence and vehicle
//! noise no zone counts) happen over 12 s, starting just after the daemon is up. Faults, in
//! order:
//!
//! * all the time: 8 % of requests answered `500`/`503`/`504`, 3 ms of latency, sessions that
//!   end 1.5 s after login (`401` mid-run), each CONTINUE page repeating the previous page's
//!   last event, a token on the last page, 10 % of the exits listed 1 s late (inside windows
//!   already polled), 5 % of the STOP events delivered twice, exactly `limit` (1000) entries
//!   of one camera with one timestamp, which every window that holds them pages across;
//! * for 1.2 s, responses slower than `request_timeout` (every request times out);
//! * SIGKILL, then a restart against a server whose clock is an hour ahead (login `403`,
//!   `auth_failed`) until the clock is fixed.
//!
//! Each zone is configured twice, `reset = "never"` (one period) both times, and both
//! copies must equal the truth exactly (count, entries and exits):
//!
//! * `clamp_at_zero = false` (the zone's own name): `count = entries - exits` whatever the
//!   order events are stored in.
//! * `clamp_at_zero = true` (the default, `"<zone> (clamped)"`): the count is `max(0, ...)`
//!   folded in event-time order (ties by seq), whatever order events are stored in. They are
//!   stored out of that order here: a camera whose window failed (a `5xx`, a timeout)
//!   delivers it a cycle later, after the exits other cameras saw meanwhile, and late exits
//!   come with the `lookback` overlap (the burst, 1000 entries on one camera whose window
//!   pages, makes an exit stored before its entry likely in the first zone). In event-time
//!   order the scenario's running count never goes below 0, even with the exits first among
//!   equal timestamps (the generator only keeps it >= 0 in its own order of ties, so
//!   [`untie_exits`] moves the few exits tied with the entry they follow 1 ms later;
//!   checked by [`the_clamp_never_binds_in_event_time_order`]), so the clamped truth is
//!   `entries - exits` too, whatever order ties are stored in.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use camgate_sim::avigilon::{
    AcsServer, CountingSpec, Faults, OBJECT_COUNTING_ENTER, Scenario, Stats, Truth, ZoneTruth,
};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

const USER: &str = "camgate-truth";
const PASSWORD: &str = "Sim-acc-pw-77c1";
const NONCE: &str = "TRUTH#Nonce0007";
const KEY: &str = "c0ffee00deadbeef0123456789abcdef00112233445566778899aabbccddeeff";
/// Page size (`limit`), and the size of the equal-timestamp burst.
const LIMIT: usize = 1000;
/// When the counting detections start, after the emulator binds (the daemon is polling by
/// then: camgate does not back-fill history older than its first window).
const START_OFFSET_MS: i64 = 2_500;
/// Over how long they happen.
const SPAN_MS: u64 = 12_000;
/// How long the whole test may take, at most.
const DEADLINE: Duration = Duration::from_secs(55);

/// 10,000 entries and 9,400 exits, 3 zones, 40 cameras, 2 servers, late exits, duplicates,
/// noise, and a burst of exactly `LIMIT` equal timestamps on one camera.
fn scenario() -> Scenario {
    let spec = CountingSpec {
        entries: 10_000,
        exits: 9_400,
        zones: 3,
        cameras: 40,
        servers: 2,
        start_offset_ms: START_OFFSET_MS,
        span_ms: SPAN_MS,
        seed: 20_260_517,
        late_fraction: 0.1,
        late_delay_ms: 1_000,
        duplicate_fraction: 0.05,
        duplicate_shift_ms: 700,
        noise: 400,
        ..CountingSpec::default()
    };
    let mut s = Scenario::counting(&spec).unwrap();
    // The burst: `LIMIT` entries of zone 0 from the middle of the span on, moved back to one
    // instant on camera 0's entry rule (rule 0). An entry moved earlier only raises the
    // running count; the same zone and activity leave the zone's truth unchanged. Camera 0
    // has events of its own before that instant in every window that holds it, so the page
    // boundary falls inside the burst.
    let zone0 = s.rules[0].zone.clone();
    assert_eq!(s.rules[0].activity, OBJECT_COUNTING_ENTER);
    let mid = SPAN_MS as i64 / 2;
    let mut picked: Vec<usize> = (0..s.timeline.len())
        .filter(|&i| {
            let o = &s.timeline[i];
            let r = &s.rules[o.rule];
            o.at_ms >= mid && o.count == 1 && r.zone == zone0 && r.activity == OBJECT_COUNTING_ENTER
        })
        .collect();
    picked.sort_by_key(|&i| s.timeline[i].at_ms);
    picked.truncate(LIMIT);
    assert_eq!(picked.len(), LIMIT);
    let (at_ms, dwell_ms) = (s.timeline[picked[0]].at_ms, s.timeline[picked[0]].dwell_ms);
    for &i in &picked {
        let o = &mut s.timeline[i];
        (o.rule, o.at_ms, o.dwell_ms, o.delay_ms, o.duplicate) = (0, at_ms, dwell_ms, 0, false);
    }
    s.timeline.sort_by_key(|o| o.at_ms);
    untie_exits(&mut s);
    s.validate().unwrap();
    s
}

/// Per zone, per STOP `timestamp` (ms after the start), its entries and exits.
fn by_instant(s: &Scenario) -> BTreeMap<&str, BTreeMap<i64, (i64, i64)>> {
    let mut at: BTreeMap<&str, BTreeMap<i64, (i64, i64)>> = BTreeMap::new();
    for o in &s.timeline {
        let rule = &s.rules[o.rule];
        let Some(zone) = rule.zone.as_deref() else { continue };
        let slot = at.entry(zone).or_default().entry(o.at_ms).or_default();
        if rule.activity == OBJECT_COUNTING_ENTER {
            slot.0 += i64::from(o.count);
        } else {
            slot.1 += i64::from(o.count);
        }
    }
    at
}

/// Per zone, the lowest running count in event-time (STOP `timestamp`) order, taking the
/// exits first among equal timestamps (the worst order the store could see ties in), and
/// the first instant where it is below 0. When it never is, `max(0, ...)` never binds in
/// any order of ties, and the clamped count must equal `entries - exits`.
fn lowest_running_counts(s: &Scenario) -> BTreeMap<String, (i64, Option<i64>)> {
    by_instant(s)
        .into_iter()
        .map(|(zone, times)| {
            let (mut count, mut lowest, mut first_dip) = (0i64, 0i64, None);
            for (at_ms, (entries, exits)) in times {
                if count - exits < 0 && first_dip.is_none() {
                    first_dip = Some(at_ms);
                }
                lowest = lowest.min(count - exits);
                count += entries - exits;
            }
            (zone.to_owned(), (lowest, first_dip))
        })
        .collect()
}

/// Move exits that share their timestamp with the entry they follow 1 ms later, until no
/// zone's running count goes below 0 even with the exits first among equal timestamps.
/// The generator keeps the count >= 0 in its own order of equal timestamps, which the
/// store cannot know (it breaks ties by arrival); with ties of that kind the clamped
/// truth would depend on arrival order. Moving an exit later never lowers a running count,
/// and leaves every zone's entries and exits as they were.
fn untie_exits(s: &mut Scenario) {
    while let Some((zone, at_ms)) = lowest_running_counts(s).into_iter().find_map(|(zone, (_, dip))| Some((zone, dip?)))
    {
        let exit = s
            .timeline
            .iter()
            .position(|o| {
                let r = &s.rules[o.rule];
                o.at_ms == at_ms && r.zone.as_deref() == Some(zone.as_str()) && r.activity != OBJECT_COUNTING_ENTER
            })
            .expect("a dip is made by an exit");
        s.timeline[exit].at_ms += 1;
    }
    s.timeline.sort_by_key(|o| o.at_ms);
}

#[test]
fn the_clamp_never_binds_in_event_time_order() {
    let s = scenario();
    let lowest = lowest_running_counts(&s);
    assert_eq!(lowest.len(), 3, "{lowest:?}");
    assert!(lowest.values().all(|&(l, _)| l >= 0), "the running count dips below 0: {lowest:?}");
    // The check itself: an exit tied with the entry it follows, from 0, would dip.
    let mut tied = s.clone();
    let (enter_rule, exit_rule) = (0, 1);
    assert_eq!(tied.rules[exit_rule].zone, tied.rules[enter_rule].zone);
    assert_ne!(tied.rules[exit_rule].activity, OBJECT_COUNTING_ENTER);
    let first = tied.timeline.iter().map(|o| o.at_ms).min().unwrap() - 10;
    for rule in [enter_rule, exit_rule] {
        let mut o = tied.timeline[0].clone();
        (o.rule, o.at_ms, o.count) = (rule, first, 1);
        tied.timeline.insert(0, o);
    }
    let zone = tied.rules[0].zone.clone().unwrap();
    assert_eq!(lowest_running_counts(&tied)[&zone], (-1, Some(first)));
    let before = tied.truth().zones;
    untie_exits(&mut tied);
    assert_eq!(lowest_running_counts(&tied)[&zone], (0, None));
    assert_eq!(tied.truth().zones, before, "the same entries and exits");
}

fn faults() -> Faults {
    Faults {
        clock_offset_secs: 0,
        error_rate: 0.08,
        error_statuses: vec![500, 503, 504],
        latency: Duration::from_millis(3),
        session_lifetime: Some(Duration::from_millis(1_500)),
        repeat_last_on_continue: true,
        token_on_last_page: true,
        ..Faults::default()
    }
}

/// TOML string literal.
fn lit(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A matcher list: the STOP events of rules named `names` (normalised names: matching
/// ignores case and extra spaces, and the emulator's names have both).
fn matchers(names: &[String]) -> String {
    let items: Vec<String> = names
        .iter()
        .map(|n| format!("{{ name = {{ equals = {} }}, code = {{ equals = \"DEVICE_ANALYTICS_STOP\" }} }}", lit(n)))
        .collect();
    format!("[{}]", items.join(", "))
}

/// The name of the clamped copy of a zone.
fn clamped(zone: &str) -> String {
    format!("{zone} (clamped)")
}

/// The zone twice: without the clamp under its own name, with it as [`clamped`].
fn zone_tables(z: &ZoneTruth) -> String {
    assert!(!z.entry_names.is_empty() && !z.exit_names.is_empty(), "{z:?}");
    let (enter, exit) = (matchers(&z.entry_names), matchers(&z.exit_names));
    let table = |name: &str, clamp: bool| {
        format!(
            "[[zone]]\nname = {}\nreset = \"never\"\nclamp_at_zero = {clamp}\nenter = {enter}\nexit = {exit}\n",
            lit(name)
        )
    };
    table(&z.zone, false) + &table(&clamped(&z.zone), true)
}

fn config_text(dir: &std::path::Path, server: &AcsServer) -> String {
    let truth = server.truth();
    assert_eq!(truth.zones.len(), 3);
    let zones: String = truth.zones.iter().map(zone_tables).collect();
    let site = format!(
        "[[avigilon]]\nname = \"acc\"\nurl = \"{}\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         user_nonce = \"{NONCE}\"\nuser_key = \"{KEY}\"\ndiscover_cameras = true\npoll_interval = \"500ms\"\n\
         lookback = \"2s\"\nlimit = {LIMIT}\nrequest_timeout = \"1s\"\nconcurrency = 16\n\n{zones}",
        server.origin()
    );
    config(dir, &site)
}

async fn zones(http: &reqwest::Client, daemon: &Daemon) -> Vec<Value> {
    let body: Value = http.get(daemon.api("/api/zones")).send().await.unwrap().json().await.unwrap();
    body["zones"].as_array().unwrap().clone()
}

type Counts = Vec<(String, i64, i64, i64)>;

/// `(zone, count, entries, exits)` of the zones without the clamp, sorted by zone.
fn counts(zones: &[Value]) -> Counts {
    all_counts(zones).into_iter().filter(|z| !z.0.ends_with(" (clamped)")).collect()
}

/// `(zone, count, entries, exits)` of every zone, sorted by zone.
fn all_counts(zones: &[Value]) -> Counts {
    let mut v: Vec<_> = zones
        .iter()
        .map(|z| {
            let n = |k: &str| z[k].as_i64().unwrap();
            (z["zone"].as_str().unwrap().to_owned(), n("count"), n("entries"), n("exits"))
        })
        .collect();
    v.sort();
    v
}

fn expected(truth: &Truth) -> Counts {
    let mut v: Vec<_> =
        truth.zones.iter().map(|z| (z.zone.clone(), z.net(), z.entries as i64, z.exits as i64)).collect();
    v.sort();
    v
}

async fn state(http: &reqwest::Client, daemon: &Daemon) -> Value {
    let all: Value = http.get(daemon.api("/api/sources")).send().await.unwrap().json().await.unwrap();
    all["sources"].as_array().unwrap().iter().find(|s| s["name"] == "acc").cloned().unwrap_or(Value::Null)
}

async fn wait_until<F: Future<Output = bool>>(what: &str, begin: Instant, daemon: &Daemon, mut f: impl FnMut() -> F) {
    loop {
        if f().await {
            return;
        }
        assert!(begin.elapsed() < DEADLINE, "timed out waiting for {what}\n{}", daemon.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_counts_equal_the_truth_through_every_fault_and_a_kill_9() {
    let begin = Instant::now();
    let server = AcsServer::builder()
        .credentials(USER, PASSWORD)
        .nonce_key(NONCE, KEY)
        .scenario(scenario())
        .faults(faults())
        .tls(true)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let truth = server.truth().clone();
    let total = |f: fn(&ZoneTruth) -> u64| truth.zones.iter().map(f).sum::<u64>();
    assert_eq!((total(|z| z.entries), total(|z| z.exits)), (10_000, 9_400), "{truth:?}");
    assert_eq!(truth.stops, 19_400 + 400, "counting detections and noise");
    assert!(truth.largest_equal_timestamp_stops >= LIMIT as u64, "{}", truth.largest_equal_timestamp_stops);
    assert!(truth.late_stops > 500 && truth.duplicate_copies > 500, "{truth:?}");
    assert_eq!(truth.events_by_server.len(), 2);
    let scenario_start = server.start();

    let dir = temp();
    let text = config_text(dir.path(), &server);
    let first = Daemon::start(dir.path(), &text, &[]);
    let http = client();

    // Slow responses: for 1.2 s every request takes longer than request_timeout, once the
    // detections have started.
    wait_until("the scenario to start", begin, &first, || async {
        jiff::Timestamp::now() > scenario_start + jiff::SignedDuration::from_millis(1_500)
    })
    .await;
    server.update_faults(|f| f.latency = Duration::from_millis(1_300));
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    server.update_faults(|f| f.latency = faults().latency);
    // The requests sent in that time end with a timeout within request_timeout.
    wait_until("requests timed out in the slow phase", begin, &first, || async {
        let metrics = http.get(first.api("/metrics")).send().await.unwrap().text().await.unwrap();
        metrics.lines().any(|l| {
            l.starts_with("camgate_avigilon_requests")
                && l.contains("outcome=\"transport\"")
                && l.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()).is_some_and(|n| n > 0.0)
        })
    })
    .await;

    // SIGKILL in the middle, once about a third of the entries are counted.
    wait_until("a third of the entries counted", begin, &first, || async {
        counts(&zones(&http, &first).await).iter().map(|z| z.2).sum::<i64>() > 3_300
    })
    .await;
    let at_kill = counts(&zones(&http, &first).await);
    first.kill9();
    let killed_at = jiff::Timestamp::now();
    assert!(
        killed_at < scenario_start + jiff::SignedDuration::from_millis(SPAN_MS as i64 - 2_000),
        "killed too late to be mid-run: {at_kill:?}"
    );

    // The server's clock jumps an hour ahead: the restarted daemon's logins are refused (403).
    server.update_faults(|f| f.clock_offset_secs = 3600);
    let second = Daemon::start(dir.path(), &text, &[]);
    wait_until("auth_failed after the restart", begin, &second, || async {
        state(&http, &second).await["state"] == "auth_failed"
    })
    .await;
    server.update_faults(|f| f.clock_offset_secs = 0);

    // Every event visible, then the counts must reach the truth, and stay there.
    let want = expected(&truth);
    let visible = server.all_visible_at().unwrap();
    let mut last = Vec::new();
    loop {
        if jiff::Timestamp::now() > visible {
            last = counts(&zones(&http, &second).await);
            if last == want {
                break;
            }
        }
        assert!(
            begin.elapsed() < DEADLINE,
            "zone counts never reached the truth:\n got  {last:?}\n want {want:?}\n{}",
            second.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reached = begin.elapsed();
    // A few more cycles re-fetch the overlapping windows: nothing counted twice.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let every = all_counts(&zones(&http, &second).await);
    assert_eq!(counts(&zones(&http, &second).await), want, "the counts moved after reaching the truth");
    // The clamped copies: exact too (the clamp never binds in event-time order).
    let mut clamped_want: Counts = want.iter().map(|(z, c, n, x)| (clamped(z), *c, *n, *x)).collect();
    clamped_want.sort();
    let got: Counts = every.iter().filter(|z| z.0.ends_with(" (clamped)")).cloned().collect();
    assert_eq!(got, clamped_want, "clamped copies vs the truth");

    // Each STOP event stored once.
    let events: Vec<Value> = all_events(&http, &second)
        .await
        .into_iter()
        .filter(|e| e["vendor"] == "avigilon" && e["code"] == "DEVICE_ANALYTICS_STOP")
        .collect();
    let keys: HashSet<&str> = events.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), events.len(), "a key stored twice");
    assert_eq!(events.len() as u64, truth.stops, "stored STOP events vs the truth");

    // Every fault happened.
    let stats = server.stats();
    let health = state(&http, &second).await;
    let summary = format!(
        "401={} 403={} 5xx={} continues={} duplicates_served={} logins={} health={health}",
        Stats::get(&stats.sent_401),
        Stats::get(&stats.sent_403),
        Stats::get(&stats.faults_injected),
        Stats::get(&stats.continues),
        Stats::get(&stats.duplicates_served),
        Stats::get(&stats.logins),
    );
    assert!(Stats::get(&stats.sent_401) > 0, "sessions expired mid-run: {summary}");
    assert!(Stats::get(&stats.sent_403) > 0, "clock skew refused logins: {summary}");
    assert!(Stats::get(&stats.faults_injected) > 20, "5xx injected: {summary}");
    assert!(Stats::get(&stats.continues) > 0, "paged with CONTINUE: {summary}");
    assert!(Stats::get(&stats.duplicates_served) > 0, "duplicates served: {summary}");
    assert_eq!(Stats::get(&stats.sent_400), 0, "no malformed request: {summary}");
    let out = second.output();
    assert!(out.contains("resumed=") && !out.contains("resumed=0"), "cursors read back after SIGKILL: {out}");
    assert_eq!(health["state"], "connected", "{summary}");
    eprintln!("at kill: {at_kill:?}\nfinal:   {last:?}\n{summary}\ntruth reached after {reached:?}");

    let mut second = second;
    second.signal(Signal::SIGTERM);
    let (status, _) = second.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", second.output());
    eprintln!("total {:?}", begin.elapsed());
}
