//! Post bodies of both XML families, built from the vendor samples, with unique ids and
//! device times and real JPEG images; and what camgate should store for each.

use std::collections::HashMap;
use std::fmt;

use camgate_core::{Kind, State};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};

use super::jpeg::{ImageSizes, draw, fake_jpeg};
use super::xml::Xml;
use super::{Alarm, EventType, Family, KeepaliveShape, PostKind, PostSpec};

/// IP camera firmware generation: decides the shape of the IPC envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Firmware {
    /// Firmware 5.2 or earlier (vendor samples `ipc-v1x/`): `openAlramObj` list string,
    /// `subscribeRelation`, no device identity in event posts.
    V1x,
    /// Firmware 5.3.x (API 2.1, e.g. LPR-IP4): `openAlarmObj` with `<enum>` children,
    /// `subscribeOption`, top-level `mac`/`sn`/`deviceName`/`channelId` in event posts.
    #[default]
    V53,
}

/// Who the simulated device says it is (keepalives, alarm status, fw 5.3 and NVR posts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `deviceName`.
    pub name: String,
    /// `sn` / `SN` (IPC only).
    pub serial: String,
    /// `mac` / `macAddress`.
    pub mac: String,
    /// `ip` / `ipAddress`: the device's own idea of its address (not the TCP peer).
    pub ip: String,
    /// `deviceNo.` (IPC keepalive and alarm status).
    pub number: u32,
}

impl Identity {
    /// A plausible identity drawn from `rng` (vendor MAC prefix `58:5b:69`).
    pub fn random(rng: &mut StdRng, family: Family) -> Identity {
        let names: &[&str] = match family {
            Family::Ipc => &["Gate LPR", "Front Door", "Parking North", "Lobby", "Loading Dock"],
            Family::Nvr => &["Office NVR", "Warehouse NVR", "Site NVR"],
        };
        let name = format!("{} {}", pick(rng, names), rng.random_range(1..100u32));
        let mac: [u8; 3] = [rng.random(), rng.random(), rng.random()];
        let mac = match family {
            Family::Ipc => format!("58:5b:69:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2]),
            Family::Nvr => format!("58:5B:69:{:02X}:{:02X}:{:02X}", mac[0], mac[1], mac[2]),
        };
        let prefix = match family {
            Family::Ipc => 'I',
            Family::Nvr => 'N',
        };
        let serial = format!("{prefix}{:011X}", rng.random_range(0..(1u64 << 44)));
        let ip = format!("192.168.1.{}", rng.random_range(10..250u32));
        Identity { name, serial, mac, ip, number: 1 }
    }
}

/// One image carried by a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostImage {
    /// `source` (overview frame), `plate`, `face` or `target` (person / vehicle crop).
    pub role: &'static str,
    /// The JPEG file.
    pub bytes: Vec<u8>,
    /// Width the XML states (the JPEG itself is 1×1).
    pub width: u32,
    /// Height the XML states.
    pub height: u32,
}

impl PostImage {
    /// Length of the base64 text in the post (`*Base64Length`).
    pub fn base64_len(&self) -> usize {
        self.bytes.len().div_ceil(3) * 4
    }

    /// Lower-case hex sha256 of the JPEG, as camgate records it.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// What camgate should store for a post answered 200 (one per event post; keepalives and
/// malformed posts have none). `kind`, `state` and image roles are the simulator's
/// expectation of camgate's mapping: compare `code` and the image hashes exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEvent {
    /// Which family sent it.
    pub family: Family,
    /// What was posted.
    pub post: PostKind,
    /// camgate's kind: plate, face, intrusion, line_crossing, region_entry, region_exit,
    /// counting, metadata, track (traject), and for alarm status the kind of the alarm.
    pub kind: Kind,
    /// The device's word: `smartType` (`VEHICE`, `regionIntrusion`), the alarm-status
    /// element (`perimeterAlarm`), or `traject`.
    pub code: String,
    /// `Start`/`Stop` for PEA `SMART_START`/`SMART_STOP` and alarm status on/off; `None`
    /// when the post carries no state.
    pub state: Option<State>,
    /// Channel (`channelId`; 1 for IPCs).
    pub channel: u32,
    /// Rule number of an alarm-status post (`id`).
    pub rule: Option<u32>,
    /// `eventId` when the post has one.
    pub event_id: Option<u64>,
    /// `targetId`s (`vehiceId` for IPC LPR plates), in document order.
    pub target_ids: Vec<u64>,
    /// Plate numbers (LPR), in document order.
    pub plates: Vec<String>,
    /// Device time in µs since the Unix epoch (`currentTime`; alarm-status `dataTime`
    /// at whole seconds).
    pub device_time_us: i64,
    /// Images in document order: (role, lower-case hex sha256, length in bytes).
    pub images: Vec<(String, String, usize)>,
}

/// One generated post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Serial number of the post within its factory (a deliberate resend keeps it).
    pub seq: u64,
    /// Family of the body.
    pub family: Family,
    /// What it is.
    pub kind: PostKind,
    /// The HTTP body (empty for the empty keepalive).
    pub body: Vec<u8>,
    /// The raw images inside the body, in document order.
    pub images: Vec<PostImage>,
    /// What camgate should store when this post is answered 200.
    pub event: Option<SentEvent>,
}

impl Post {
    /// The body as text (bodies are ASCII/UTF-8 except deliberately truncated ones).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// A post the family cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Viewtron {family} device does not send {spec:?}")]
pub struct Unsupported {
    /// The device family.
    pub family: Family,
    /// The requested post.
    pub spec: PostSpec,
}

#[derive(Debug, Clone)]
struct OpenPea {
    event: EventType,
    event_id: u64,
    target_id: u64,
    rect: [u32; 4],
    target_type: u32,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    kind: &'static str,
    x: f64,
    y: f64,
    dx: f64,
    dy: f64,
    length: u32,
}

/// Builds post bodies for one simulated device. Every event post gets a new `eventId` /
/// `targetId` and a strictly increasing `currentTime` (µs; whole ms on NVRs), so the
/// receiver's idempotency keys all differ; alarm-status times (whole seconds) are bumped
/// per alarm, rule and state so that they differ too.
#[derive(Debug)]
pub struct PostFactory {
    family: Family,
    firmware: Firmware,
    identity: Identity,
    channel: u32,
    sizes: ImageSizes,
    timezone: TimeZone,
    rng: StdRng,
    seq: u64,
    next_event_id: u64,
    next_target_id: u64,
    last_us: i64,
    status_secs: HashMap<(&'static str, u32, u32, bool), i64>,
    open_alarms: HashMap<(&'static str, u32), u32>,
    open_pea: Vec<OpenPea>,
    tracks: Vec<Track>,
    zone: [(u32, u32); 4],
    line: ((u32, u32), (u32, u32)),
}

const IPC_ALARM_TYPES_V1X: &str = "VEHICE,VFD_MATCH,PEA,VFD,VSD,AOIENTRY,AOILEAVE,PASSLINECOUNT,TRAFFIC";
const IPC_ALARM_TYPES_V53: &[&str] = &[
    "MOTION",
    "SENSOR",
    "PEA",
    "AVD",
    "OSC",
    "VFD",
    "VFD_MATCH",
    "VEHICE",
    "AOIENTRY",
    "AOILEAVE",
    "PASSLINECOUNT",
    "TRAFFIC",
    "FIRE",
    "TEMPERATURE",
    "VSD",
    "PVD",
    "LOITER",
    "ASD",
    "SMD",
    "CROWDGATHERING",
];
const CAR_COLORS: &[&str] = &["white", "black", "silver", "gray", "red", "blue"];
const IPC_CAR_TYPES: &[&str] = &["saloon car", "SUV", "MPV", "pickup", "van", "truck"];
const NVR_CAR_TYPES: &[&str] = &["sedan", "suv", "mpv", "pickup", "van", "truck"];
const CARS: &[(&str, &str)] = &[
    ("Toyota", "Toyota_Corolla"),
    ("Honda", "Honda_Civic"),
    ("Ford", "Ford_F150"),
    ("Chevrolet", "Chevrolet_Spark"),
    ("Mazda", "Mazda_3"),
    ("GMC", "GMC_SAVANA"),
    ("Nissan", "Nissan_Sentra"),
    ("Kia", "Kia_Rio"),
];

impl PostFactory {
    /// A factory for a device of `family`; `seed` fixes the identity, the ids and every
    /// random choice (not the device times, which follow the wall clock, nor the alarm
    /// rule numbers, which depend on how many alarms started within the same second).
    pub fn new(family: Family, seed: u64) -> PostFactory {
        let mut rng = StdRng::seed_from_u64(seed);
        let identity = Identity::random(&mut rng, family);
        let next_event_id = rng.random_range(100..5_000);
        let next_target_id = rng.random_range(10..1_000);
        let zone = [
            (rng.random_range(500..2_500), rng.random_range(1_500..3_500)),
            (rng.random_range(7_000..9_000), rng.random_range(1_500..3_500)),
            (rng.random_range(7_000..9_500), rng.random_range(8_000..9_800)),
            (rng.random_range(300..2_500), rng.random_range(8_000..9_800)),
        ];
        let lx = rng.random_range(3_000..7_000);
        let line =
            ((lx, rng.random_range(500..2_500)), (lx + rng.random_range(0..400), rng.random_range(8_500..9_900)));
        PostFactory {
            family,
            firmware: Firmware::default(),
            identity,
            channel: 1,
            sizes: ImageSizes::default(),
            timezone: TimeZone::UTC,
            rng,
            seq: 0,
            next_event_id,
            next_target_id,
            last_us: 0,
            status_secs: HashMap::new(),
            open_alarms: HashMap::new(),
            open_pea: Vec::new(),
            tracks: Vec::new(),
            zone,
            line,
        }
    }

    /// IPC firmware generation (ignored for NVRs). Default [`Firmware::V53`].
    pub fn with_firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }

    /// Replace the random identity.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Image sizes. Default [`ImageSizes::default`] (~50 KB overviews).
    pub fn with_image_sizes(mut self, sizes: ImageSizes) -> Self {
        self.sizes = sizes;
        self
    }

    /// Zone of the device clock, for IPC alarm-status `dataTime` (local, no offset).
    /// Default UTC.
    pub fn with_timezone(mut self, tz: TimeZone) -> Self {
        self.timezone = tz;
        self
    }

    /// The device family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The device identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Channel of the next posts (`channelId`; NVRs forward for several cameras). Default 1.
    pub fn set_channel(&mut self, channel: u32) {
        self.channel = channel.max(1);
    }

    /// The last device time handed out (µs), so a rebuilt factory can continue the clock.
    pub(crate) fn last_time_us(&self) -> i64 {
        self.last_us
    }

    /// Continue the clock of an earlier factory.
    pub(crate) fn continue_clock(&mut self, last_us: i64) {
        self.last_us = self.last_us.max(last_us);
    }

    /// Whether this family can send `spec`.
    pub fn supports(&self, spec: PostSpec) -> bool {
        match spec {
            PostSpec::Event(e) => e.code(self.family).is_some(),
            PostSpec::EventStop(e) => self.family == Family::Ipc && e.has_smart_status(),
            PostSpec::Keepalive(_) | PostSpec::AlarmStatus { .. } | PostSpec::Traject { .. } => true,
        }
    }

    /// Build one post.
    pub fn build(&mut self, spec: PostSpec) -> Result<Post, Unsupported> {
        if !self.supports(spec) {
            return Err(Unsupported { family: self.family, spec });
        }
        self.seq += 1;
        let mut post = match spec {
            PostSpec::Keepalive(shape) => self.keepalive(shape),
            PostSpec::Event(e) => match self.family {
                Family::Ipc => self.ipc_event(e, false),
                Family::Nvr => self.nvr_event(e),
            },
            PostSpec::EventStop(e) => self.ipc_event(e, true),
            PostSpec::AlarmStatus { alarm, on } => self.alarm_status(alarm, on),
            PostSpec::Traject { targets, fresh } => self.traject(targets.clamp(1, 8), fresh),
        };
        post.seq = self.seq;
        Ok(post)
    }

    /// A copy of `base` whose body is not well-formed XML (a mismatched end tag or a body
    /// cut short), with no expected event.
    pub fn malformed(&mut self, base: &Post) -> Post {
        let text = base.text().into_owned();
        let body = if text.is_empty() {
            "<config version=\"1.7\" xmlns=\"http://www.ipc.com/ver10\"><messageType>keepalive</messageType>".to_owned()
        } else if self.rng.random_bool(0.5) && text.contains("</config>") {
            let at = text.rfind("</config>").expect("checked above");
            format!("{}</confg>{}", &text[..at], &text[at + "</config>".len()..])
        } else {
            // Cut after the first element so at least two elements stay open.
            let min = text
                .find("<config")
                .or_else(|| text.find("<DeviceInfo"))
                .and_then(|i| text[i..].find('>').map(|j| i + j + 1))
                .unwrap_or(1);
            let max = text.len().saturating_sub(20).max(min + 1);
            let mut at = self.rng.random_range(min..max).min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_owned()
        };
        self.seq += 1;
        Post {
            seq: self.seq,
            family: base.family,
            kind: base.kind,
            body: body.into_bytes(),
            images: Vec::new(),
            event: None,
        }
    }

    // ---- clocks and ids ------------------------------------------------------------------

    fn now_us(&mut self) -> i64 {
        let t = match self.family {
            Family::Ipc => Timestamp::now().as_microsecond().max(self.last_us + 1),
            Family::Nvr => {
                let ms = Timestamp::now().as_millisecond() * 1000;
                ms.max((self.last_us / 1000 + 1) * 1000)
            }
        };
        self.last_us = t;
        t
    }

    /// Rule and whole-second time of an alarm-status post. An alarm start takes the least
    /// recently started rule (1-4), its end reuses that rule; the time is
    /// later than the previous post with the same alarm, rule, channel and state, so keys
    /// never repeat and times stay close to the wall clock even at high rates.
    fn status_rule_second(&mut self, field: &'static str, on: bool) -> (u32, i64) {
        const RULES: u32 = 4;
        let now = Timestamp::now().as_second();
        let ch = self.channel;
        let rule = if on {
            // The least recently started rule (the lowest number on ties).
            let last = |r: &u32| self.status_secs.get(&(field, *r, ch, true)).copied().unwrap_or(i64::MIN);
            let rule = (1..=RULES).min_by_key(last).expect("RULES > 0");
            self.open_alarms.insert((field, ch), rule);
            rule
        } else {
            self.open_alarms.remove(&(field, ch)).unwrap_or(1)
        };
        let key = (field, rule, ch, on);
        let s = match self.status_secs.get(&key) {
            Some(&last) => now.max(last + 1),
            None => now,
        };
        self.status_secs.insert(key, s);
        (rule, s)
    }

    fn event_id(&mut self) -> u64 {
        self.next_event_id += 1;
        self.next_event_id
    }

    fn target_id(&mut self) -> u64 {
        self.next_target_id += 1;
        self.next_target_id
    }

    fn image(&mut self, role: &'static str, width: u32, height: u32) -> Option<PostImage> {
        let range = match role {
            "source" => self.sizes.source.clone(),
            "plate" => self.sizes.plate.clone(),
            _ => self.sizes.crop.clone(),
        };
        let size = draw(&mut self.rng, &range);
        (size > 0).then(|| PostImage { role, bytes: fake_jpeg(&mut self.rng, size), width, height })
    }

    fn rect(&mut self) -> [u32; 4] {
        let x1 = self.rng.random_range(0..8_000);
        let y1 = self.rng.random_range(0..6_000);
        let x2 = (x1 + self.rng.random_range(500..2_000)).min(10_000);
        let y2 = (y1 + self.rng.random_range(1_500..4_000)).min(10_000);
        [x1, y1, x2, y2]
    }

    /// IPC numeric target type: 1 person (mostly), 2 car, 4 bike.
    fn ipc_target_type(&mut self) -> u32 {
        match self.rng.random_range(0..100) {
            0..70 => 1,
            70..95 => 2,
            _ => 4,
        }
    }

    fn plate_number(&mut self) -> String {
        let letters: String = (0..3).map(|_| char::from(b'A' + self.rng.random_range(0..26u8))).collect();
        match self.rng.random_range(0..3) {
            0 => format!("{letters}{:04}", self.rng.random_range(0..10_000)),
            1 => format!("{letters}{:03}", self.rng.random_range(0..1_000)),
            _ => format!("{}{letters}{:02}", self.rng.random_range(1..10), self.rng.random_range(0..100)),
        }
    }

    fn finish(&self, x: Xml, kind: PostKind, images: Vec<PostImage>, event: Option<SentEvent>) -> Post {
        Post { seq: 0, family: self.family, kind, body: x.out.into_bytes(), images, event }
    }

    #[allow(clippy::too_many_arguments)]
    fn sent(
        &self,
        kind: Kind,
        post: PostKind,
        code: &str,
        state: Option<State>,
        rule: Option<u32>,
        event_id: Option<u64>,
        target_ids: Vec<u64>,
        plates: Vec<String>,
        device_time_us: i64,
        images: &[PostImage],
    ) -> SentEvent {
        SentEvent {
            family: self.family,
            post,
            kind,
            code: code.to_owned(),
            state,
            channel: self.channel,
            rule,
            event_id,
            target_ids,
            plates,
            device_time_us,
            images: images.iter().map(|i| (i.role.to_owned(), i.sha256(), i.bytes.len())).collect(),
        }
    }

    // ---- keepalives ----------------------------------------------------------------------

    fn keepalive(&mut self, shape: KeepaliveShape) -> Post {
        let id = self.identity.clone();
        let mut x = Xml::with_capacity(400);
        match shape {
            KeepaliveShape::Empty => {}
            KeepaliveShape::DeviceInfo => {
                x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeviceInfo>\n");
                x.el("DeviceName", xml_text(&id.name)).nl();
                x.el("DeviceNo.", id.number).nl();
                x.el_cdata("SN", &id.serial).nl();
                x.el("ipAddress", &id.ip).nl();
                x.el("macAddress", &id.mac).nl();
                x.raw("</DeviceInfo>\n");
            }
            KeepaliveShape::Config17 | KeepaliveShape::Nvr => {
                let version = if shape == KeepaliveShape::Config17 { "1.7" } else { "2.0.0" };
                if shape == KeepaliveShape::Nvr {
                    x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                }
                x.raw(&format!("<config version=\"{version}\" xmlns=\"http://www.ipc.com/ver10\">\n"));
                x.el("messageType", "keepalive").nl();
                x.open("deviceInfo").nl();
                x.el_cdata("deviceName", &id.name).nl();
                x.el_cdata("ip", &id.ip).nl();
                x.el_cdata("mac", &id.mac).nl();
                x.close("deviceInfo").nl();
                x.raw("</config>\n");
            }
        }
        self.finish(x, PostKind::Keepalive(shape), Vec::new(), None)
    }

    // ---- alarm status --------------------------------------------------------------------

    fn alarm_status(&mut self, alarm: Alarm, on: bool) -> Post {
        let field = alarm.field(self.family);
        let (rule, second) = self.status_rule_second(field, on);
        let id = self.identity.clone();
        let mut x = Xml::with_capacity(700);
        x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        match self.family {
            Family::Ipc => {
                x.raw("<config version=\"1.7\" xmlns=\"http://www.ipc.com/ver10\">\n");
                x.open("alarmStatusInfo").nl();
                x.raw(&format!("<{field} type=\"boolean\" id=\"{rule}\">{on}</{field}>\n"));
                x.close("alarmStatusInfo").nl();
                let local =
                    Timestamp::from_second(second).expect("the wall clock is in range").to_zoned(self.timezone.clone());
                x.el_cdata("dataTime", &local.strftime("%m-%d-%Y %I:%M:%S %p").to_string()).nl();
                x.open("deviceInfo").nl();
                x.el_cdata("deviceName", &id.name).nl();
                x.el_cdata("deviceNo.", &id.number.to_string()).nl();
                x.el_cdata("sn", &id.serial).nl();
                x.el_cdata("ipAddress", &id.ip).nl();
                x.el_cdata("macAddress", &id.mac).nl();
                x.close("deviceInfo").nl();
            }
            Family::Nvr => {
                x.raw("<config version=\"2.0.0\" xmlns=\"http://www.ipc.com/ver10\">\n");
                x.el("messageType", "alarmStatus").nl();
                self.nvr_device_info(&mut x, true);
                x.el("currentTime", second * 1_000_000).nl();
                x.open("alarmStatusInfo").nl();
                x.raw(&format!("<{field}><item id=\"{rule}\">{on}</item></{field}>\n"));
                x.close("alarmStatusInfo").nl();
            }
        }
        x.raw("</config>\n");
        let state = Some(if on { State::Start } else { State::Stop });
        let ev = self.sent(
            alarm.kind(),
            PostKind::AlarmStatus,
            field,
            state,
            Some(rule),
            None,
            Vec::new(),
            Vec::new(),
            second * 1_000_000,
            &[],
        );
        self.finish(x, PostKind::AlarmStatus, Vec::new(), Some(ev))
    }

    // ---- traject -------------------------------------------------------------------------

    fn traject(&mut self, targets: u8, fresh: bool) -> Post {
        if fresh || self.tracks.len() != usize::from(targets) {
            self.tracks.clear();
            for _ in 0..targets {
                let id = self.target_id();
                let kind = *pick(&mut self.rng, &["person", "person", "car", "motor"]);
                let speed = if kind == "person" { 60.0 } else { 250.0 };
                self.tracks.push(Track {
                    id,
                    kind,
                    x: self.rng.random_range(1_000.0..9_000.0),
                    y: self.rng.random_range(1_000.0..9_000.0),
                    dx: self.rng.random_range(-speed..speed),
                    dy: self.rng.random_range(-speed..speed),
                    length: 0,
                });
            }
        }
        for t in &mut self.tracks {
            t.x = (t.x + t.dx).clamp(300.0, 9_700.0);
            t.y = (t.y + t.dy).clamp(300.0, 9_700.0);
            t.length += 1;
        }
        let time = self.now_us();
        let id = self.identity.clone();
        let ipc = self.family == Family::Ipc;
        let mut x = Xml::with_capacity(600 + 350 * usize::from(targets));
        x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        if ipc {
            x.raw("<config version=\"1.7\" xmlns=\"http://www.ipc.com/ver10\">\n");
            x.typed("currentTime", "tint64", time).nl();
            x.typed("mac", "string", &id.mac).nl();
            x.typed_cdata("sn", "string", &id.serial).nl();
            x.typed_cdata("deviceName", "string", &id.name).nl();
        } else {
            x.raw("<config version=\"2.0.0\" xmlns=\"http://www.ipc.com/ver10\">\n");
            self.nvr_device_info(&mut x, true);
            x.el("currentTime", time).nl();
        }
        x.open_list("traject", self.tracks.len());
        for t in &self.tracks {
            let (cx, cy) = (t.x as u32, t.y as u32);
            let (hw, hh) = if t.kind == "person" { (250, 900) } else { (700, 600) };
            let rect = [cx.saturating_sub(hw), cy.saturating_sub(hh), (cx + hw).min(10_000), (cy + hh).min(10_000)];
            let velocity = (t.dx.hypot(t.dy)) as u32;
            let direction = (t.dy.atan2(t.dx).to_degrees().rem_euclid(360.0)) as u32;
            x.open("item");
            if ipc {
                x.typed("targetId", "uint32", t.id);
                x.point("point", (cx, cy), true);
                x.rect("rect", rect, true);
                x.typed("velocity", "uint32", velocity);
                x.typed("direction", "uint32", direction);
                x.typed("targetType", "targetType", t.kind);
                x.typed("trajectlength", "uint32", t.length);
            } else {
                x.el("targetId", t.id);
                x.point("point", (cx, cy), false);
                x.rect("rect", rect, false);
                x.el("velocity", velocity);
                x.el("direction", direction);
                x.el("targetType", t.kind);
                x.el("trajectlength", t.length);
            }
            x.close("item");
        }
        x.close("traject").nl();
        x.raw("</config>\n");
        let ids = self.tracks.iter().map(|t| t.id).collect();
        let ev = self.sent(Kind::Track, PostKind::Traject, "traject", None, None, None, ids, Vec::new(), time, &[]);
        self.finish(x, PostKind::Traject, Vec::new(), Some(ev))
    }

    // ---- IPC events ----------------------------------------------------------------------

    fn ipc_head(&self, x: &mut Xml, code: &str, time: i64, fw53: bool) {
        if fw53 {
            x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n");
            x.raw("<config version=\"1.7\" xmlns=\"http://www.ipc.com/ver10\">\n");
            x.open("types").open("openAlarmObj");
            for t in IPC_ALARM_TYPES_V53 {
                x.el("enum", t);
            }
            x.close("openAlarmObj");
            x.raw("<subscribeRelationV1><enum>ALARM</enum><enum>FEATURE_RESULT</enum></subscribeRelationV1>");
            x.raw("<perStatus><enum>SMART_NONE</enum><enum>SMART_START</enum><enum>SMART_STOP</enum><enum>SMART_PROCEDURE</enum></perStatus>");
            x.raw("<targetType><enum>person</enum><enum>car</enum><enum>motor</enum></targetType>");
            x.close("types").nl();
            x.typed("smartType", "openAlarmObj", code).nl();
            x.typed("subscribeOption", "subscribeRelationV1", "FEATURE_RESULT").nl();
            x.typed("currentTime", "tint64", time).nl();
            x.typed("mac", "string", &self.identity.mac).nl();
            x.typed_cdata("sn", "string", &self.identity.serial).nl();
            x.typed_cdata("deviceName", "string", &self.identity.name).nl();
            x.typed("channelId", "uint32", self.channel).nl();
        } else {
            x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            x.raw("<config version=\"1.7\" xmlns=\"http://www.ipc.com/ver10\">\n");
            x.typed("smartType", "openAlramObj", code).nl();
            x.typed("subscribeRelation", "subscribeOption", "FEATURE_RESULT").nl();
            x.typed("currentTime", "tint64", time).nl();
            x.open("types");
            x.typed("openAlramObj", "string", IPC_ALARM_TYPES_V1X);
            x.typed("targetType", "string", "1,2,4");
            x.close("types").nl();
        }
    }

    /// IPC `sourceDataInfo` (overview).
    fn ipc_source(x: &mut Xml, img: Option<&PostImage>, (w, h): (u32, u32)) {
        x.open("sourceDataInfo");
        x.typed("dataType", "uint32", 0);
        x.typed("width", "uint32", w);
        x.typed("height", "uint32", h);
        x.typed("sourceBase64Length", "uint32", img.map_or(0, PostImage::base64_len));
        match img {
            Some(i) => {
                x.raw("<sourceBase64Data type=\"string\"><![CDATA[").base64(&i.bytes).raw("]]></sourceBase64Data>");
            }
            None => {
                x.raw("<sourceBase64Data type=\"string\"/>");
            }
        }
        x.close("sourceDataInfo").nl();
    }

    /// IPC v1.x `targetImageData`: numeric target type, `Width`/`Height`, CDATA.
    fn ipc_target_image(x: &mut Xml, img: Option<&PostImage>, target_type: u32, (w, h): (u32, u32)) {
        x.open("targetImageData");
        x.typed("dataType", "uint32", 0);
        x.typed("targetType", "uint32", target_type);
        x.typed("Width", "tuint32", w);
        x.typed("Height", "tuint32", h);
        x.typed("targetBase64Length", "uint32", img.map_or(0, PostImage::base64_len));
        match img {
            Some(i) => {
                x.raw("<targetBase64Data type=\"string\"><![CDATA[").base64(&i.bytes).raw("]]></targetBase64Data>");
            }
            None => {
                x.raw("<targetBase64Data type=\"string\"/>");
            }
        }
        x.close("targetImageData");
    }

    /// IPC fw 5.3 `targetImageData` (LPR): named target type, `width`/`height`, no CDATA.
    fn ipc53_target_image(x: &mut Xml, img: Option<&PostImage>, target_type: &str, (w, h): (u32, u32)) {
        x.open("targetImageData");
        x.typed("dataType", "uint32", 0);
        x.typed("targetType", "targetType", target_type);
        x.typed("width", "uint32", w);
        x.typed("height", "uint32", h);
        x.typed("targetBase64Length", "uint32", img.map_or(0, PostImage::base64_len));
        match img {
            Some(i) => {
                x.raw("<targetBase64Data type=\"string\">").base64(&i.bytes).raw("</targetBase64Data>");
            }
            None => {
                x.raw("<targetBase64Data type=\"string\"/>");
            }
        }
        x.close("targetImageData");
    }

    fn ipc_event(&mut self, event: EventType, stop: bool) -> Post {
        let code = event.code(Family::Ipc).expect("every event type has an IPC code");
        match event {
            EventType::Lpr => self.ipc_lpr(),
            EventType::Intrusion | EventType::LineCrossing => self.ipc_pea(event, stop),
            EventType::Metadata => self.ipc_vsd(),
            EventType::Face
            | EventType::RegionEntry
            | EventType::RegionExit
            | EventType::CountingByLine
            | EventType::CountingByArea => self.ipc_common(event, code),
        }
    }

    /// `VEHICE`, fw 5.3.x layout (as the LPR-IP4 posts it): item 0 = overview, one item per
    /// plate with direction, list, confidence, car attributes and the plate crop.
    fn ipc_lpr(&mut self) -> Post {
        let time = self.now_us();
        let plates = if self.rng.random_bool(0.05) { 2 } else { 1 };
        let (sw, sh) = (2688, 1776);
        let mut images = Vec::new();
        let overview = self.image("source", sw, sh);
        let mut x = Xml::with_capacity(80_000);
        self.ipc_head(&mut x, "VEHICE", time, true);
        x.typed("plateCount", "uint32", plates).nl();
        x.open_list("listInfo", 1 + plates).nl();
        x.open("item");
        x.typed("image", "uint32", 0).typed("vehiceId", "uint32", 0).raw("<plateNumber type=\"string\"></plateNumber>");
        x.typed("plateCharCount", "uint32", 0).typed("PlateWidth", "uint32", 0).typed("PlateHeight", "uint32", 0);
        x.typed("SourceImageWidth", "uint32", sw).typed("SourceImageHeight", "uint32", sh);
        x.raw("<PlateConfidence type=\"uint32\" count=\"0\"/>");
        Self::ipc53_target_image(&mut x, overview.as_ref(), "", (sw, sh));
        x.close("item").nl();
        images.extend(overview);
        let mut ids = Vec::new();
        let mut numbers = Vec::new();
        for i in 0..plates {
            let id = self.target_id();
            let number = self.plate_number();
            let direction = *pick(&mut self.rng, &["approach", "approach", "away", "leave"]);
            let list = match self.rng.random_range(0..100) {
                0..25 => Some("whiteList"),
                25..35 => Some("blackList"),
                35..40 => Some("temporaryList"),
                _ => None,
            };
            let confidence = self.rng.random_range(8_000..=9_990);
            let (pw, ph) = (self.rng.random_range(120..220), self.rng.random_range(60..110));
            let (px, py) = (self.rng.random_range(2_000..7_500), self.rng.random_range(4_000..8_500));
            let (qx, qy) = (px + pw * 10_000 / sw, py + ph * 10_000 / sh);
            let color = *pick(&mut self.rng, CAR_COLORS);
            let car_type = *pick(&mut self.rng, IPC_CAR_TYPES);
            let (brand, model) = *pick(&mut self.rng, CARS);
            let crop = self.image("plate", pw, ph);
            x.open("item");
            x.typed("image", "uint32", i + 1).typed("vehiceId", "uint32", id);
            x.typed_cdata("plateNumber", "string", &number);
            x.typed("plateCharCount", "uint32", number.len());
            x.typed("vehicleDirect", "vehicleDirectType", direction);
            if let Some(list) = list {
                x.typed("vehicleListType", "vehileMatchAlarmList", list);
            }
            x.typed("PlateWidth", "uint32", pw).typed("PlateHeight", "uint32", ph);
            x.typed("SourceImageWidth", "uint32", sw).typed("SourceImageHeight", "uint32", sh);
            x.point("leftTop", (px, py), true).point("rightTop", (qx, py), true);
            x.point("leftBottom", (px, qy), true).point("rightBottom", (qx, qy), true);
            x.raw(&format!("<PlateConfidence type=\"uint32\" count=\"{confidence}\"/>"));
            x.raw("<plateColor type=\"uint32\" count=\"3\"/><plateColorRate type=\"uint32\" count=\"0\"/>");
            x.raw("<plateStyle type=\"uint32\" count=\"1\"/><vehiceColor type=\"uint32\" count=\"0\"/>");
            x.raw("<plateAngleH type=\"uint32\" count=\"0\"/><plateAngleV type=\"uint32\" count=\"0\"/>");
            x.raw("<province type=\"string\"></province>");
            x.open("carAttr");
            x.typed("color", "vsdCarAttrColorType", color);
            x.typed("type", "vsdCarAttrTypeType", car_type);
            x.typed("brand", "vsdCarAttrBrandType", brand);
            x.typed("model", "vsdCarAttrModelType", model);
            x.close("carAttr");
            x.open("carRect");
            x.typed("x", "uint32", px.saturating_sub(300) * sw / 10_000);
            x.typed("y", "uint32", py.saturating_sub(1_500) * sh / 10_000);
            x.typed("width", "uint32", self.rng.random_range(450..800));
            x.typed("height", "uint32", self.rng.random_range(350..600));
            x.close("carRect");
            Self::ipc53_target_image(&mut x, crop.as_ref(), "car", (pw, ph));
            x.close("item").nl();
            images.extend(crop);
            ids.push(id);
            numbers.push(number);
        }
        x.close("listInfo").nl();
        x.raw("</config>\n");
        let kind = PostKind::Event(EventType::Lpr);
        let ev = self.sent(Kind::Plate, kind, "VEHICE", None, None, None, ids, numbers, time, &images);
        self.finish(x, kind, images, Some(ev))
    }

    /// `PEA`: perimeter (intrusion) or tripwire (line crossing), `SMART_START` or the
    /// `SMART_STOP` of the open event.
    fn ipc_pea(&mut self, event: EventType, stop: bool) -> Post {
        let open = if stop { self.open_pea.iter().rposition(|p| p.event == event) } else { None };
        let (pea, status) = match open {
            Some(i) => (self.open_pea.remove(i), "SMART_STOP"),
            None => {
                let pea = OpenPea {
                    event,
                    event_id: self.event_id(),
                    target_id: self.target_id(),
                    rect: self.rect(),
                    target_type: self.ipc_target_type(),
                };
                if !stop {
                    self.open_pea.push(pea.clone());
                    // A camera that never saw the stop forgets after a while.
                    if self.open_pea.len() > 16 {
                        self.open_pea.remove(0);
                    }
                }
                (pea, if stop { "SMART_STOP" } else { "SMART_START" })
            }
        };
        let time = self.now_us();
        let fw53 = self.firmware == Firmware::V53;
        let source = self.image("source", 1920, 1080);
        let crop_size = (self.rng.random_range(300..1_300), 1080);
        let crop = self.image("target", crop_size.0, crop_size.1);
        let mut x = Xml::with_capacity(80_000);
        self.ipc_head(&mut x, "PEA", time, fw53);
        let (outer, info) =
            if event == EventType::Intrusion { ("perimeter", "perInfo") } else { ("tripwire", "tripInfo") };
        x.open(outer).open_list(info, 1).open("item");
        x.typed("eventId", "uint32", pea.event_id);
        x.typed("targetId", "uint32", pea.target_id);
        x.typed("status", "smartStatus", status);
        if event == EventType::Intrusion {
            x.open_list("boundary", self.zone.len());
            for p in self.zone {
                x.open("item").point("point", p, true).close("item");
            }
            x.close("boundary");
        } else {
            x.open("line").point("startPoint", self.line.0, true).point("endPoint", self.line.1, true).close("line");
        }
        x.rect("rect", pea.rect, true);
        x.close("item").close(info).close(outer).nl();
        Self::ipc_source(&mut x, source.as_ref(), (1920, 1080));
        x.open_list("listInfo", 1).open("item");
        x.typed("targetId", "tuint32", pea.target_id);
        x.rect("rect", pea.rect, true);
        Self::ipc_target_image(&mut x, crop.as_ref(), pea.target_type, crop_size);
        x.close("item").close("listInfo").nl();
        x.raw("</config>\n");
        let images: Vec<PostImage> = source.into_iter().chain(crop).collect();
        let state = Some(if status == "SMART_STOP" { State::Stop } else { State::Start });
        let kind = PostKind::Event(event);
        let ev = self.sent(
            event.kind(),
            kind,
            "PEA",
            state,
            None,
            Some(pea.event_id),
            vec![pea.target_id],
            Vec::new(),
            time,
            &images,
        );
        self.finish(x, kind, images, Some(ev))
    }

    /// The "common images" layout: `sourceDataInfo` + `listInfo/item` (face, zone entry/exit,
    /// counting).
    fn ipc_common(&mut self, event: EventType, code: &str) -> Post {
        let time = self.now_us();
        let fw53 = self.firmware == Firmware::V53;
        let target_id = self.target_id();
        let rect = self.rect();
        let (role, target_type, size) = if event == EventType::Face {
            ("face", 1, (200, 200))
        } else {
            ("target", self.ipc_target_type(), (self.rng.random_range(300..800), self.rng.random_range(400..1080)))
        };
        let source = self.image("source", 1920, 1080);
        let crop = self.image(role, size.0, size.1);
        let mut x = Xml::with_capacity(80_000);
        self.ipc_head(&mut x, code, time, fw53);
        Self::ipc_source(&mut x, source.as_ref(), (1920, 1080));
        x.open_list("listInfo", 1).open("item");
        x.typed("targetId", "tuint32", target_id);
        x.rect("rect", rect, true);
        Self::ipc_target_image(&mut x, crop.as_ref(), target_type, size);
        x.close("item").close("listInfo").nl();
        x.raw("</config>\n");
        let images: Vec<PostImage> = source.into_iter().chain(crop).collect();
        let kind = PostKind::Event(event);
        let ev = self.sent(event.kind(), kind, code, None, None, None, vec![target_id], Vec::new(), time, &images);
        self.finish(x, kind, images, Some(ev))
    }

    /// `VSD`: images inside a `<vsd>` wrapper.
    fn ipc_vsd(&mut self) -> Post {
        let time = self.now_us();
        let fw53 = self.firmware == Firmware::V53;
        let target_type = self.ipc_target_type();
        let size = (self.rng.random_range(200..500), self.rng.random_range(300..700));
        let source = self.image("source", 1920, 1080);
        let crop = self.image("target", size.0, size.1);
        let mut x = Xml::with_capacity(80_000);
        self.ipc_head(&mut x, "VSD", time, fw53);
        x.open("vsd").nl();
        Self::ipc_source(&mut x, source.as_ref(), (1920, 1080));
        Self::ipc_target_image(&mut x, crop.as_ref(), target_type, size);
        x.nl().close("vsd").nl();
        x.raw("</config>\n");
        let images: Vec<PostImage> = source.into_iter().chain(crop).collect();
        let kind = PostKind::Event(EventType::Metadata);
        let ev = self.sent(Kind::Metadata, kind, "VSD", None, None, None, Vec::new(), Vec::new(), time, &images);
        self.finish(x, kind, images, Some(ev))
    }

    // ---- NVR events ----------------------------------------------------------------------

    fn nvr_device_info(&self, x: &mut Xml, channel: bool) {
        x.open("deviceInfo").nl();
        x.el_cdata("deviceName", &self.identity.name).nl();
        x.el_cdata("ip", &self.identity.ip).nl();
        x.el_cdata("mac", &self.identity.mac).nl();
        if channel {
            x.el("channelId", self.channel).nl();
        }
        x.close("deviceInfo").nl();
    }

    fn nvr_head(&self, x: &mut Xml, code: &str, time: i64) {
        x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.raw("<config version=\"2.0.0\" xmlns=\"http://www.ipc.com/ver10\">\n");
        x.el("messageType", "alarmData").nl();
        self.nvr_device_info(x, true);
        x.el("smartType", code).nl();
        x.el("currentTime", time).nl();
    }

    fn nvr_source(x: &mut Xml, img: Option<&PostImage>, (w, h): (u32, u32)) {
        x.open("sourceDataInfo").nl();
        x.el("dataType", 0).el("width", w).el("height", h);
        x.el("sourceBase64Length", img.map_or(0, PostImage::base64_len));
        match img {
            Some(i) => {
                x.raw("<sourceBase64Data>").base64(&i.bytes).raw("</sourceBase64Data>");
            }
            None => {
                x.raw("<sourceBase64Data/>");
            }
        }
        x.nl().close("sourceDataInfo").nl();
    }

    fn nvr_target_image(x: &mut Xml, img: Option<&PostImage>, (w, h): (u32, u32)) {
        x.open("targetImageData");
        x.el("dataType", 0).el("width", w).el("height", h);
        x.el("targetBase64Length", img.map_or(0, PostImage::base64_len));
        match img {
            Some(i) => {
                x.raw("<targetBase64Data>").base64(&i.bytes).raw("</targetBase64Data>");
            }
            None => {
                x.raw("<targetBase64Data/>");
            }
        }
        x.close("targetImageData");
    }

    fn nvr_event(&mut self, event: EventType) -> Post {
        let code = event.code(Family::Nvr).expect("checked by supports()");
        match event {
            EventType::Lpr => self.nvr_lpr(),
            EventType::Face => self.nvr_face(),
            _ => self.nvr_targets(event, code),
        }
    }

    /// regionIntrusion, lineCrossing, targetCountingByLine/ByArea, videoMetadata:
    /// `eventInfo` + `sourceDataInfo` + `targetListInfo`.
    fn nvr_targets(&mut self, event: EventType, code: &str) -> Post {
        let time = self.now_us();
        let event_id = self.event_id();
        let target_id = self.target_id();
        let target_type = *pick(&mut self.rng, &["person", "person", "person", "car", "motor"]);
        let size = if target_type == "person" { (336, 448) } else { (448, 336) };
        let source = self.image("source", 1280, 720);
        let crop = self.image("target", size.0, size.1);
        let line = matches!(event, EventType::LineCrossing | EventType::CountingByLine);
        let rect = if event == EventType::CountingByLine { [0; 4] } else { self.rect() };
        let zone =
            if event == EventType::Metadata { [(23, 0), (9_880, 158), (9_904, 9_873), (0, 9_841)] } else { self.zone };
        let mut x = Xml::with_capacity(80_000);
        self.nvr_head(&mut x, code, time);
        x.open("eventInfo").nl().open("item").nl();
        x.el("eventId", event_id).el("targetId", target_id).nl();
        if line {
            x.el("boundary", "tripwire").nl();
            x.open("directionLine");
            x.point("startPoint", self.line.0, false).point("endPoint", self.line.1, false);
            x.close("directionLine").nl();
        } else {
            x.el("boundary", "area").nl();
            x.open("pointGroup");
            for (px, py) in zone {
                x.open("item").el("x", px).el("y", py).close("item");
            }
            x.close("pointGroup").nl();
        }
        x.rect("rect", rect, false).nl();
        x.close("item").nl().close("eventInfo").nl();
        Self::nvr_source(&mut x, source.as_ref(), (1280, 720));
        x.open("targetListInfo").nl().open("item").nl();
        x.el("targetId", target_id).el("targetType", target_type).nl();
        Self::nvr_target_image(&mut x, crop.as_ref(), size);
        x.nl().close("item").nl().close("targetListInfo").nl();
        x.raw("</config>\n");
        let images: Vec<PostImage> = source.into_iter().chain(crop).collect();
        let kind = PostKind::Event(event);
        let ev =
            self.sent(event.kind(), kind, code, None, None, Some(event_id), vec![target_id], Vec::new(), time, &images);
        self.finish(x, kind, images, Some(ev))
    }

    /// `vehicle`: `licensePlateListInfo` (plate box in pixels, plate and car attributes,
    /// optional list match, 128×64 plate crop).
    fn nvr_lpr(&mut self) -> Post {
        let time = self.now_us();
        let target_id = self.target_id();
        let number = self.plate_number();
        let plate_color = *pick(&mut self.rng, &["white", "white", "yellow", "blue"]);
        let car_type = *pick(&mut self.rng, NVR_CAR_TYPES);
        let car_color = *pick(&mut self.rng, CAR_COLORS);
        let (brand, model) = *pick(&mut self.rng, CARS);
        let matched = match self.rng.random_range(0..100) {
            0..25 => Some(("whiteList", "Resident")),
            25..32 => Some(("blackList", "Banned")),
            32..36 => Some(("Visitors", "Visitor")),
            _ => None,
        };
        let (px, py) = (self.rng.random_range(300..1_100), self.rng.random_range(300..600));
        let source = self.image("source", 1920, 1080);
        let crop = self.image("plate", 128, 64);
        let mut x = Xml::with_capacity(80_000);
        self.nvr_head(&mut x, "vehicle", time);
        Self::nvr_source(&mut x, source.as_ref(), (1920, 1080));
        x.open("licensePlateListInfo").nl().open("item").nl();
        x.el("targetId", target_id).nl();
        x.rect("rect", [px, py, px + 128, py + 64], false).nl();
        x.open("licensePlateAttribute");
        x.el_cdata("licensePlateNumber", &number).el("color", plate_color);
        x.close("licensePlateAttribute").nl();
        x.rect("carRect", [px.saturating_sub(200), py.saturating_sub(250), px + 330, py + 120], false).nl();
        x.open("carAttribute");
        x.el_cdata("carType", car_type).el_cdata("color", car_color).el_cdata("brand", brand).el_cdata("model", model);
        x.close("carAttribute").nl();
        if let Some((group, owner)) = matched {
            x.open("licensePlateMatchInfo");
            x.el_cdata("groupName", group).el_cdata("carOwner", owner);
            x.close("licensePlateMatchInfo").nl();
        }
        Self::nvr_target_image(&mut x, crop.as_ref(), (128, 64));
        x.nl().close("item").nl().close("licensePlateListInfo").nl();
        x.raw("</config>\n");
        let images: Vec<PostImage> = source.into_iter().chain(crop).collect();
        let kind = PostKind::Event(EventType::Lpr);
        let ev =
            self.sent(Kind::Plate, kind, "vehicle", None, None, None, vec![target_id], vec![number], time, &images);
        self.finish(x, kind, images, Some(ev))
    }

    /// `videoFaceDetect`: `faceListInfo` with age, sex, glasses, mask and a square crop.
    fn nvr_face(&mut self) -> Post {
        let time = self.now_us();
        let target_id = self.target_id();
        let age = *pick(&mut self.rng, &["young", "youth", "middleAged", "elderly", "unknown"]);
        let sex = *pick(&mut self.rng, &["male", "female", "unknown"]);
        let glasses = *pick(&mut self.rng, &["yes", "no", "no", "unknown"]);
        let mask = *pick(&mut self.rng, &["yes", "no", "no", "unknown"]);
        let (fx, fy) = (self.rng.random_range(100..1_100), self.rng.random_range(50..550));
        let source = self.image("source", 1280, 720);
        let crop = self.image("face", 184, 184);
        let mut x = Xml::with_capacity(80_000);
        self.nvr_head(&mut x, "videoFaceDetect", time);
        Self::nvr_source(&mut x, source.as_ref(), (1280, 720));
        x.open("faceListInfo").nl().open("item").nl();
        x.el("targetId", target_id).nl();
        x.rect("rect", [fx, fy, fx + 124, fy + 124], false).nl();
        x.el("age", age).el("sex", sex).el("glasses", glasses).el("mask", mask).nl();
        Self::nvr_target_image(&mut x, crop.as_ref(), (184, 184));
        x.nl().close("item").nl().close("faceListInfo").nl();
        x.raw("</config>\n");
        let images: Vec<PostImage> = source.into_iter().chain(crop).collect();
        let kind = PostKind::Event(EventType::Face);
        let ev = self.sent(
            Kind::Face,
            kind,
            "videoFaceDetect",
            None,
            None,
            None,
            vec![target_id],
            Vec::new(),
            time,
            &images,
        );
        self.finish(x, kind, images, Some(ev))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (sn {}, mac {}, ip {})", self.name, self.serial, self.mac, self.ip)
    }
}

/// One element of `items`, uniformly.
pub(crate) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Escape text for an element without CDATA.
fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
