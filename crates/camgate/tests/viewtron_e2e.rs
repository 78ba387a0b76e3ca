//! End to end over TCP with the real binary: simulated Viewtron camera and NVR → camgate →
//! `jsonl` sink; and `kill -9` during a burst loses nothing that was answered 200.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use camgate::bus::Bus;
use camgate::metrics::Metrics;
use camgate::store::{Store, StoreOptions};
use camgate_sim::viewtron::{
    Alarm, Camera, EventType, Fault, KeepaliveShape, Nvr, PostSpec, Report, Script, SentEvent, Shape, Step, Until,
};
use common::*;
use nix::sys::signal::Signal;
use sha2::Digest;
use tokio_util::sync::CancellationToken;

const CAMERA: [u8; 4] = [127, 0, 0, 2];
const NVR: [u8; 4] = [127, 0, 0, 3];

fn viewtron_config(dir: &std::path::Path) -> String {
    config(
        dir,
        "max_body = \"1MB\"\n\
         [[camera]]\nname = \"gate\"\nvendor = \"viewtron\"\naddress = \"127.0.0.2\"\nusername = \"cam\"\npassword = \"s3cret\"\n\
         [[camera]]\nname = \"nvr\"\nvendor = \"viewtron\"\naddress = \"127.0.0.3\"\n\
         [[sink]]\ntype = \"jsonl\"\npath = \"events.jsonl\"\n",
    )
}

fn camera_script() -> Script {
    let mut s = Script::new(11)
        .send(PostSpec::Keepalive(KeepaliveShape::Empty))
        .send(PostSpec::Keepalive(KeepaliveShape::DeviceInfo))
        .send(PostSpec::Keepalive(KeepaliveShape::Config17));
    for t in EventType::ALL {
        s = s.send(PostSpec::Event(t)).send(PostSpec::AlarmStatus { alarm: Alarm::Perimeter, on: true });
    }
    s.send(PostSpec::AlarmStatus { alarm: Alarm::Lpr, on: false })
        .send(PostSpec::Traject { targets: 2, fresh: true })
        .step(Step::send(PostSpec::Event(EventType::Lpr)).with_shape(Shape::Chunked { chunks: 5 }))
        .step(Step::send(PostSpec::Event(EventType::Face)).with_shape(Shape::Pipelined(3)))
        .step(Step::send(PostSpec::Event(EventType::Intrusion)).with_shape(Shape::Expect100))
        .step(Step::send(PostSpec::Event(EventType::Metadata)).with_shape(Shape::Http10))
        .step(Step::send(PostSpec::Event(EventType::Lpr)).with_fault(Fault::Malformed))
        .step(Step::send(PostSpec::Event(EventType::Lpr)).with_fault(Fault::Oversized))
        .step(Step::send(PostSpec::Event(EventType::Face)).with_fault(Fault::WrongCredentials))
        .step(Step::send(PostSpec::Event(EventType::LineCrossing)).with_fault(Fault::Duplicate))
        .send(PostSpec::Keepalive(KeepaliveShape::Empty))
}

fn nvr_script() -> Script {
    let mut s = Script::new(12).send(PostSpec::Keepalive(KeepaliveShape::Nvr));
    for (i, t) in [
        EventType::Lpr,
        EventType::Face,
        EventType::Intrusion,
        EventType::LineCrossing,
        EventType::CountingByLine,
        EventType::CountingByArea,
        EventType::Metadata,
    ]
    .into_iter()
    .enumerate()
    {
        s = s
            .step(Step::Channel(i as u32 % 4 + 1))
            .send(PostSpec::AlarmStatus { alarm: Alarm::Perimeter, on: true })
            .send(PostSpec::Event(t));
    }
    s.step(Step::send(PostSpec::Event(EventType::Face)).with_fault(Fault::Malformed))
        .step(Step::send(PostSpec::Event(EventType::Lpr)).with_shape(Shape::Chunked { chunks: 3 }))
}

fn kinds_of(events: &[SentEvent]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry(e.kind.as_str().to_owned()).or_default() += 1;
    }
    m
}

fn read_jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one event"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_camera_and_nvr_through_camgate_to_jsonl() {
    let dir = temp();
    let mut daemon = Daemon::start(dir.path(), &viewtron_config(dir.path()), &[]);
    let target = daemon.webhook;
    let camera = async {
        Camera::new(target)
            .local_address(IpAddr::from(CAMERA))
            .credentials("cam", "s3cret")
            .run_script(&camera_script())
            .await
            .unwrap()
    };
    let nvr = async { Nvr::new(target).local_address(IpAddr::from(NVR)).run_script(&nvr_script()).await.unwrap() };
    let (camera, nvr): (Report, Report) = tokio::join!(camera, nvr);

    // What the devices were told: every clean post 200, the faults refused as they should be.
    assert_eq!(camera.refused.get(&413), Some(&1), "oversized: {camera}");
    assert_eq!(camera.refused.get(&401), Some(&1), "wrong credentials: {camera}");
    assert_eq!(camera.bad_reply_body, 0, "{camera}");
    assert_eq!(camera.connection_errors + nvr.connection_errors, 0, "{camera} / {nvr}");
    assert!(nvr.refused.is_empty(), "{nvr}");
    assert!(nvr.connections > 10, "the NVR opens a connection per post: {nvr}");
    assert_eq!(camera.duplicates_acked, 1);

    // Stop cleanly: the jsonl sink is flushed.
    daemon.signal(Signal::SIGTERM);
    let (status, _) = daemon.wait(Duration::from_secs(10));
    assert!(status.success(), "{}", daemon.output());
    let stored = read_jsonl(&dir.path().join("events.jsonl"));

    // Exactly the acknowledged events, by kind, plus one `connected` device event each; no
    // keepalive or refused post. Traject is live-only by default: in the jsonl file (sinks
    // get live events) but not in the store.
    let sent: Vec<SentEvent> = camera.events.iter().chain(&nvr.events).cloned().collect();
    let mut expected = kinds_of(&sent);
    *expected.entry("device".into()).or_default() += 2;
    assert_eq!(expected.get("track"), Some(&1), "the script sends one traject post");
    let mut got = BTreeMap::new();
    for e in &stored {
        *got.entry(e["kind"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(got, expected, "stored kinds vs acknowledged events");
    assert!(stored.iter().all(|e| e["vendor"] == "viewtron"));
    let sources: HashSet<&str> = stored.iter().map(|e| e["source"].as_str().unwrap()).collect();
    assert_eq!(sources, HashSet::from(["gate", "nvr"]));

    // Every image the devices sent is a file of the right size and sha256.
    let sent_images: HashSet<(String, usize)> =
        sent.iter().flat_map(|e| e.images.iter().map(|(_, sha, len)| (sha.clone(), *len))).collect();
    let mut stored_images = HashSet::new();
    for e in &stored {
        for img in e["images"].as_array().into_iter().flatten() {
            let path = dir.path().join("data").join(img["path"].as_str().unwrap());
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let sha = hex::encode(sha2::Sha256::digest(&bytes));
            assert_eq!(sha, img["sha256"].as_str().unwrap());
            assert_eq!(bytes.len() as u64, img["bytes"].as_u64().unwrap());
            stored_images.insert((sha, bytes.len()));
        }
    }
    assert!(!sent_images.is_empty());
    assert_eq!(stored_images, sent_images, "images on disk vs images sent");

    // The malformed bodies are dead letters.
    let (store, writer) =
        Store::open(StoreOptions::in_dir(dir.path().join("data")), Arc::new(Metrics::new()), Bus::default())
            .await
            .unwrap();
    let in_store = store.read_after(0, 1000, &camgate::store::EventFilter::default()).await.unwrap();
    assert_eq!(in_store.len(), stored.len() - 1, "everything but the live traject is stored");
    assert!(in_store.iter().all(|e| e.event.kind != camgate_core::Kind::Track));
    let letters = store.dead_letters(100).await.unwrap();
    let by_source: HashMap<&str, usize> = letters.iter().fold(HashMap::new(), |mut m, l| {
        *m.entry(l.source.as_str()).or_default() += 1;
        m
    });
    assert_eq!(by_source, HashMap::from([("gate", 1), ("nvr", 1)]), "{letters:?}");
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_burst_loses_no_acknowledged_viewtron_event() {
    let dir = temp();
    let cfg = viewtron_config(dir.path()).replace("max_body = \"1MB\"", "traject = \"store\"");
    let daemon = Daemon::start(dir.path(), &cfg, &[]);
    let target: SocketAddr = daemon.webhook;
    let stop = CancellationToken::new();
    // Several cameras' worth of posts from the two addresses, as fast as they are answered.
    let mut devices = Vec::new();
    for i in 0..3u64 {
        let camera_stop = stop.clone();
        devices.push(tokio::spawn(async move {
            Camera::new(target)
                .local_address(IpAddr::from(CAMERA))
                .credentials("cam", "s3cret")
                .seed(100 + i)
                .run(2000.0, Until::Stopped, camera_stop)
                .await
                .unwrap()
        }));
        let stop = stop.clone();
        devices.push(tokio::spawn(async move {
            Nvr::new(target)
                .local_address(IpAddr::from(NVR))
                .seed(200 + i)
                .run(2000.0, Until::Stopped, stop)
                .await
                .unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    daemon.kill9();
    stop.cancel();
    let mut acked: Vec<SentEvent> = Vec::new();
    for d in devices {
        acked.extend(d.await.unwrap().events);
    }
    assert!(acked.len() > 50, "the burst got through: {} events", acked.len());

    // Restart and check every acknowledged event is there, once.
    let daemon = Daemon::start(dir.path(), &cfg, &[]);
    let http = client();
    let stored = all_events(&http, &daemon).await;
    let mut keys = HashSet::new();
    for e in &stored {
        assert!(keys.insert(e["key"].as_str().unwrap().to_owned()), "stored twice: {}", e["key"]);
    }
    // Match acknowledged events by what identifies them: code, device time, rule.
    let identity = |code: &str, at_us: i64, rule: Option<String>| (code.to_owned(), at_us, rule.unwrap_or_default());
    let stored_ids: HashSet<(String, i64, String)> = stored
        .iter()
        .filter_map(|e| {
            let at = e["occurred_at"].as_str()?.parse::<jiff::Timestamp>().ok()?;
            Some(identity(e["code"].as_str()?, at.as_microsecond(), e["rule"].as_str().map(String::from)))
        })
        .collect();
    let missing: Vec<_> = acked
        .iter()
        .map(|a| identity(&a.code, a.device_time_us, a.rule.map(|r| r.to_string())))
        .filter(|id| !stored_ids.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events missing, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(stored.len() >= acked.len(), "{} stored, {} acknowledged", stored.len(), acked.len());
}
