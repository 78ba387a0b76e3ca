//! Where one Dahua device's output goes: events and dead letters to the store, health to the
//! registry, counters to the metrics.

use std::sync::Arc;
use std::time::Duration;

use camgate_core::config::DahuaCamera;
use camgate_core::{Event, EventId, Kind, State, Vendor};
use camgate_protocols::dahua::{DataError, Normalised};
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, PostLabels};
use crate::sources::SourceHandle;
use crate::store::{Appended, DeadLetter, Store, StoreError};

/// How long to wait before trying a store write again that failed (disk full, ...). The
/// stream is not read meanwhile: the device's TCP buffer holds what it sends.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// One device's way into the store.
pub struct Recorder {
    pub camera: Arc<DahuaCamera>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub health: SourceHandle,
}

/// Identifies one connection in event keys, so that events without a device event id stay
/// apart, across reconnects and restarts too.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// Milliseconds since the epoch when the stream started.
    pub started_ms: i64,
    /// Events seen on it so far.
    pub events: u64,
}

impl Recorder {
    /// The camgate event for a normalised record ([`event_for`] with this camera).
    pub fn to_event(&self, n: Normalised, conn: &mut Connection, received_at: Timestamp) -> Event {
        event_for(&self.camera, n, conn, received_at)
    }

    /// Store events, retrying while the store cannot take them. `false` when `stop` came
    /// first (the events are then lost, and logged as such).
    pub async fn store(&self, events: Vec<Event>, stop: &CancellationToken) -> bool {
        if events.is_empty() {
            return true;
        }
        let mut warned = false;
        loop {
            match self.store.append_many(events.clone()).await {
                Ok(outcomes) => {
                    for o in outcomes {
                        self.health.event(matches!(o, Appended::New(_)));
                    }
                    return true;
                }
                Err(StoreError::Closed) => {
                    tracing::error!(device = %self.camera.name, lost = events.len(), "the store closed; events from the stream are lost");
                    return false;
                }
                Err(e) => {
                    if !warned {
                        tracing::error!(device = %self.camera.name, error = %e, pending = events.len(), "events could not be stored; retrying every second, the stream waits");
                        warned = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(STORE_RETRY) => {}
                        () = stop.cancelled() => {
                            tracing::error!(device = %self.camera.name, lost = events.len(), error = %e, "stopping with events that could not be stored");
                            return false;
                        }
                    }
                }
            }
        }
    }

    /// Keep a part nothing could read.
    pub async fn dead_letter(&self, reason: String, payload: Vec<u8>) {
        self.health.rejected(&reason);
        let letter =
            DeadLetter { source: self.camera.name.clone(), received_at: camgate_core::time::now_ms(), reason, payload };
        if let Err(e) = self.store.dead_letter(letter).await {
            tracing::warn!(device = %self.camera.name, error = %e, "could not store a dead letter");
        }
    }

    /// A `device` event: the connection to the device changed.
    pub async fn device_event(&self, code: &str, state: State, data: serde_json::Value) {
        let mut event = Event::new(String::new(), &self.camera.name, Vendor::Dahua, Kind::Device);
        event.key = format!("dahua:{}:{code}:{}", self.camera.name, event.received_at.as_millisecond());
        event.code = Some(code.into());
        event.state = Some(state);
        event.data = Some(data);
        match self.store.append(event).await {
            Ok(o) => self.health.event(matches!(o, Appended::New(_))),
            Err(e) => tracing::warn!(device = %self.camera.name, error = %e, "could not store the device event"),
        }
    }

    /// Count a part of the stream by what it was.
    pub fn count_part(&self, kind: &'static str) {
        self.metrics.dahua_parts.get_or_create(&PostLabels { kind: kind.to_owned() }).inc();
    }
}

/// The camgate event for a normalised record of `camera`, the `conn`-th on its connection.
/// The event's `data`, the record as a JSON value, is built here from the record text the
/// decoder keeps ([`Normalised::data`]): the decoder itself builds no JSON tree.
pub fn event_for(camera: &DahuaCamera, n: Normalised, conn: &mut Connection, received_at: Timestamp) -> Event {
    conn.events += 1;
    // The stream never replays an event, so only a device event id makes two records the
    // same event. A device time alone (to the second) does not: Start, Stop, Start on one
    // channel within a second are three events.
    let mut key = format!("dahua:{}:{}", camera.name, n.key);
    if !n.key_unique || n.event_id.is_none() {
        key.push_str(&format!("#{}.{}", conn.started_ms, conn.events));
    }
    // Alarm inputs are numbered by `index` too, but they are not video channels.
    let channel_source = if n.kind == Kind::AlarmInput { None } else { n.channel.map(|c| c.get()) };
    let mut data = n.data();
    if let (Some(err), Some(obj)) = (n.data_error, data.as_object_mut()) {
        let what = match err {
            DataError::Truncated => "truncated",
            DataError::Invalid => "invalid",
        };
        obj.insert("data_error".into(), what.into());
    }
    Event {
        id: EventId::new(),
        key,
        source: camera.source_for(channel_source).to_owned(),
        vendor: Vendor::Dahua,
        kind: n.kind,
        code: Some(n.code().to_owned()),
        state: n.state,
        channel: n.channel,
        rule: n.rule,
        occurred_at: n.occurred_at,
        received_at,
        plate: n.plate.map(|p| *p),
        face: None,
        objects: n.objects,
        counts: n.counts,
        data: Some(data),
        images: Vec::new(),
        schedule: None,
    }
}

#[cfg(test)]
mod tests {
    use camgate_protocols::dahua::{CodeFilter, Decoder, Limits, NormaliseOptions, Output};
    use uuid::Uuid;

    use super::*;

    /// The shared Dahua samples (`samples/dahua` next to the repository).
    fn sample(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/samples/dahua").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A canonical part around `body`.
    fn frame(body: &[u8]) -> Vec<u8> {
        let mut part =
            format!("--myboundary\r\nContent-Type: text/plain\r\nContent-Length:{}\r\n\r\n", body.len()).into_bytes();
        part.extend_from_slice(body);
        part.extend_from_slice(b"\r\n\r\n");
        part
    }

    /// The bodies of a `*_bodies.txt` sample, one per line starting with `Code=`, framed.
    fn framed_bodies(text: &[u8]) -> Vec<u8> {
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for line in text.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b"Code=") || bodies.is_empty() {
                bodies.push(Vec::new());
            }
            bodies.last_mut().unwrap().extend_from_slice(line);
        }
        bodies.iter().flat_map(|b| frame(b.trim_ascii_end())).collect()
    }

    /// Bodies for the odd paths: counts, times, plates, objects, extra and repeated head
    /// keys, `data=null`, malformed, truncated and non-object JSON, bad UTF-8.
    const EDGE_BODIES: [&[u8]; 20] = [
        b"Code=NumberStat;action=Pulse;index=2;data={\"EnteredNumber\":5,\"ExitedSubtotal\":{\"Total\":\"7\"},\"Number\":12,\"UTC\":1e300}",
        b"Code=ManNumDetection;action=Start;index=0;data={\"EnteredSubtotal\":{\"total\":3},\"number\":-1,\"LocaleTime\":\"yesterday\"}",
        b"Code=QueueDetection;action=Stop;index=x;data={\"Number\":1e16,\"LocaleTime\":\"05-09-2023 11:32:22\"}",
        b"code = CrowdDetection ; Action = start ; INDEX = 4294967295 ; foo = bar ; foo=baz; =x; data = {\"UTC\": -5, \"LocaleTime\":\"2023/05/09 11:32:22\"}",
        b"Code=CallNoAnswered;action=Start;index=0;data={\"UTC\":\"1660425993\",\"UTCMS\":\"999\",\"RecNo\":42}",
        b"Code=AccessControl;action=Pulse;index=0;data={\"RecNo\":\" \",\"EventID\":null,\"UTC\":1660425993.5,\"UTCMS\":1000}",
        b"Code=TrafficManualSnap;action=Pulse;index=0;data={\"CurrentPlateInfo\":[{\"Text\":\"XYZ\"}],\"Vehicle\":{\"Category\":\"Bus\",\"MainColor\":\"Red\",\"Text\":\"VW\"}}",
        b"Code=TrafficJunction;action=Pulse;index=0;data={\"trafficcar\":{\"platenumber\":\"a/b%c\",\"confidence\":50},\"PlateNumber\":\"Q\",\"Object\":[{\"ObjectType\":\"plate\",\"Text\":\"P1\",\"Color\":\"Blue\"}]}",
        b"Code=FaceDetection;action=Start;index=1;data={\"Faces\":[{\"BoundingBox\":[1,2,3,4],\"ID\":\"f1\"},{\"Rect\":[0,0,8191,8191],\"FaceID\":7}],\"Name\":[\"n1\"]}",
        b"Code=SmartMotionVehicle;action=Start;index=0;data={\"Object\":{\"ObjectType\":\"MotorVehicle\",\"ObjectID\":1},\"Objects\":[{\"ObjectType\":\"NonMotor\",\"ObjectID\":1},{\"ObjectType\":\"Strange Thing\",\"ObjectID\":2,\"Confidence\":0.5}]}",
        b"Code=VideoMotion;action=Start;index=0;data={\"BoundingBox\":[100,200,300,400],\"utc\":1660425993,\"UTC\":0}",
        b"Code=VideoMotion;action=Start;index=0;data=null\nCode=VideoMotion;action=Stop;index=0;data=\nHeartbeat\n  code=VideoBlind;action=Pulse;index=3",
        b"Heartbeat\r\nCode=Unknown\xff\xfeCode;action=Pulse;index=01;data={\"RuleName\":\"r\\u00e9gle/%\",\"PTS\":1.5}",
        b"Code=VideoMotion;action=Start;index=0;data={\"Id\" : [",
        b"Code=VideoMotion;action=Start;index=0;data={\"Id\" : ]}",
        b"Code=VideoMotion;action=Start;index=0;data=[1,2,3]",
        b"Code=\xc3\xa9t\xc3\xa9;action=STATE;index=007;data={\"Name\":\"   \",\"RegionName\":[1,\"x\"],\"UTC\":0,\"PTS\":\"p\"}",
        b"Code=X;action=Start;index=+5;Code=Y;Action=Stop;data={\"Object\":[{\"ObjectID\":1},{\"ObjectID\":1},{\"ObjectID\":\"2/3\"}],\"EventID\":\"e/1\",\"Name\":{\"a\":[1.5e3,-0,\"\\ud83d\\ude00\"]}}",
        b"Code=AlarmLocal;action=Start;index=2;data={\"name\":\"in\",\"NAME\":\"IN\",\"Name\":1,\"Name\":\"last\",\"x\":{\"y\":1e400}}",
        b"Code=VideoMotion;action=Start;index=0;data={\"LocaleTime\":\"2022-03-13 02:30:00\",\"object\":[{\"HumamID\":3,\"Rect\":[1,2,3,4]}]}",
    ];

    fn corpus() -> Vec<Vec<u8>> {
        let ipc = sample("03_ipc_all_heartbeat5_smartmotion_lf.txt");
        let crlf = String::from_utf8(ipc.clone()).unwrap().replace('\n', "\r\n").into_bytes();
        let mut streams = vec![
            sample("01_api_doc_example_no_blank_line.http"),
            ipc,
            crlf,
            sample("05_nvr_http10_no_blank_line_lf.txt"),
            framed_bodies(&sample("07_ad110_doorbell_bodies.txt")),
            framed_bodies(&sample("08_smartmotionhuman_bodies.txt")),
            framed_bodies(&sample("10_wizmind_humantrait_body.txt")),
            EDGE_BODIES.iter().flat_map(|b| frame(b)).collect(),
        ];
        // Mutated copies: bytes replaced, streams cut short, pieces repeated.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rand = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n.max(1) as u64) as usize
        };
        for i in 0..300 {
            let mut s = streams[i % 8].clone();
            for _ in 0..4 {
                let at = rand(s.len());
                match rand(3) {
                    0 => s[at] = b";=\n{}\"[ ,:0\xff-eE."[rand(16)],
                    1 => s.truncate(at + 1),
                    _ => {
                        let piece = s[at..(at + rand(40)).min(s.len())].to_vec();
                        s.splice(at..at, piece);
                    }
                }
            }
            streams.push(s);
        }
        streams
    }

    /// 64-bit FNV-1a.
    fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
        bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    #[test]
    fn stored_events_of_the_samples_are_pinned() {
        // The JSON the store would write for every event the decoder gives for the samples,
        // odd bodies and mutated copies, under three sets of options (event ids and receive
        // times fixed). Taken before the decoder stopped building `data` trees itself: the
        // events stored must not change with the decoder's representation.
        let mut camera = DahuaCamera::new("cam", "192.0.2.1", "admin");
        camera.channels = vec!["gate".to_owned(), String::new(), "yard".to_owned()];
        let opts = [
            NormaliseOptions::default(),
            NormaliseOptions { keep_video_motion_info: true, ..NormaliseOptions::default() },
            NormaliseOptions {
                timezone: jiff::tz::TimeZone::get("America/Bogota").unwrap(),
                codes: CodeFilter::new(["VideoMotion", "SmartMotionHuman", "AlarmLocal", "VideoMotionInfo", "X"]),
                keep_video_motion_info: false,
            },
        ];
        let received_at = Timestamp::from_millisecond(1_700_000_000_123).unwrap();
        let (mut h, mut events, mut with_data_error) = (0xcbf2_9ce4_8422_2325_u64, 0, 0);
        for stream in corpus() {
            for o in &opts {
                let mut d = Decoder::new(Some("myboundary"), Limits::default(), o.clone());
                let mut conn = Connection { started_ms: 1_700_000_000_000, events: 0 };
                let mut out = Vec::new();
                for read in stream.chunks(64) {
                    d.push(read, |o| out.push(o));
                }
                while let Some(o) = d.finish() {
                    out.push(o);
                }
                for o in out {
                    if let Output::Event(n) = o {
                        let mut e = event_for(&camera, *n, &mut conn, received_at);
                        e.id = EventId(Uuid::nil());
                        with_data_error += usize::from(e.data.as_ref().is_some_and(|d| d.get("data_error").is_some()));
                        h = fnv1a(h, serde_json::to_string(&e).unwrap().as_bytes());
                        events += 1;
                    }
                }
            }
        }
        assert_eq!((events, with_data_error, format!("{h:016x}").as_str()), (2154, 438, "0bf6995279b3a504"));
    }
}
