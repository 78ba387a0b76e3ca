//! Simulated Viewtron IP cameras (IPC, config 1.7 XML) and NVRs (config 2.0.0 XML) that
//! push their HTTP posts to camgate over real TCP.
//!
//! Three layers, usable on their own:
//! * [`PostFactory`] builds realistic post bodies of both XML families (every event type,
//!   alarm status, traject, every keepalive shape) with valid JPEG images of real sizes, and
//!   tells what camgate should store for each ([`SentEvent`]).
//! * [`Camera`] and [`Nvr`] speak hand-written HTTP/1.1 the way the devices do (IPC:
//!   keep-alive, origin-form `/API`; NVR: absolute-form target, `Connection: close`) with
//!   selectable request [`Shape`]s and injected [`Fault`]s, and count every reply in a
//!   [`Report`].
//! * [`Device::run`] posts a realistic stream at a rate (demo, `camgate sim viewtron`), and
//!   [`Device::run_script`] plays an explicit, seeded list of [`Step`]s (tests).
//!
//! Protocol facts come from `docs/protocols/viewtron.md` of the shared folder; the bodies
//! follow the vendor samples in `samples/viewtron/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), camgate_sim::viewtron::Error> {
//! use camgate_sim::viewtron::{Camera, Until};
//! use tokio_util::sync::CancellationToken;
//!
//! let report = Camera::new("127.0.0.1:5050".parse().unwrap())
//!     .seed(7)
//!     .run(2.0, Until::Posts(100), CancellationToken::new())
//!     .await?;
//! println!("{report}");
//! # Ok(())
//! # }
//! ```

use std::fmt;

use camgate_core::Kind;

mod device;
mod http;
mod jpeg;
mod post;
mod report;
mod xml;

#[cfg(test)]
mod tests;

pub use device::{Camera, Device, DeviceFamily, Error, Fault, IpcFamily, Nvr, NvrFamily, Script, Shape, Step, Until};
pub use jpeg::{ImageSizes, base_jpeg, fake_jpeg, jpeg_size};
pub use post::{Firmware, Identity, Post, PostFactory, PostImage, SentEvent, Unsupported};
pub use report::Report;

/// The exact reply Viewtron devices expect (126 bytes, no trailing newline).
///
/// A copy of `camgate_protocols::viewtron::SUCCESS_REPLY`: camgate-sim does not depend on
/// camgate-protocols, so that the simulator stays an independent check of the receiver.
pub const SUCCESS_REPLY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><config version="1.0" xmlns="http://www.ipc.com/ver10"><status>success</status></config>"#;

/// Which XML family a device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// An IP camera posting directly: `<config version="1.7">`, `type="..."` attributes,
    /// short codes (`VEHICE`, `PEA`, `VFD`...).
    Ipc,
    /// An NVR forwarding for its channels: `<config version="2.0.0">`, `messageType`,
    /// spelled-out `smartType`s (`regionIntrusion`, `vehicle`...).
    Nvr,
}

impl Family {
    /// `ipc` or `nvr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipc => "ipc",
            Family::Nvr => "nvr",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A smart event (what the devices call `alarmData` / `FEATURE_RESULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Licence plate: IPC `VEHICE` (fw 5.3.x layout), NVR `vehicle`.
    Lpr,
    /// Face detection: IPC `VFD`, NVR `videoFaceDetect` (with age/sex/glasses/mask).
    Face,
    /// Perimeter intrusion: IPC `PEA` with `<perimeter>`, NVR `regionIntrusion`.
    Intrusion,
    /// Line crossing: IPC `PEA` with `<tripwire>`, NVR `lineCrossing`.
    LineCrossing,
    /// Zone entry: IPC `AOIENTRY` (no NVR equivalent).
    RegionEntry,
    /// Zone exit: IPC `AOILEAVE` (no NVR equivalent).
    RegionExit,
    /// Counting by line: IPC `PASSLINECOUNT`, NVR `targetCountingByLine`.
    CountingByLine,
    /// Counting by area: IPC `TRAFFIC`, NVR `targetCountingByArea`.
    CountingByArea,
    /// Video metadata: IPC `VSD`, NVR `videoMetadata`.
    Metadata,
}

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [EventType; 9] = [
        EventType::Lpr,
        EventType::Face,
        EventType::Intrusion,
        EventType::LineCrossing,
        EventType::RegionEntry,
        EventType::RegionExit,
        EventType::CountingByLine,
        EventType::CountingByArea,
        EventType::Metadata,
    ];

    /// The `smartType` the family sends, or `None` when it has no such event.
    pub fn code(self, family: Family) -> Option<&'static str> {
        Some(match (family, self) {
            (Family::Ipc, EventType::Lpr) => "VEHICE",
            (Family::Ipc, EventType::Face) => "VFD",
            (Family::Ipc, EventType::Intrusion | EventType::LineCrossing) => "PEA",
            (Family::Ipc, EventType::RegionEntry) => "AOIENTRY",
            (Family::Ipc, EventType::RegionExit) => "AOILEAVE",
            (Family::Ipc, EventType::CountingByLine) => "PASSLINECOUNT",
            (Family::Ipc, EventType::CountingByArea) => "TRAFFIC",
            (Family::Ipc, EventType::Metadata) => "VSD",
            (Family::Nvr, EventType::Lpr) => "vehicle",
            (Family::Nvr, EventType::Face) => "videoFaceDetect",
            (Family::Nvr, EventType::Intrusion) => "regionIntrusion",
            (Family::Nvr, EventType::LineCrossing) => "lineCrossing",
            (Family::Nvr, EventType::CountingByLine) => "targetCountingByLine",
            (Family::Nvr, EventType::CountingByArea) => "targetCountingByArea",
            (Family::Nvr, EventType::Metadata) => "videoMetadata",
            (Family::Nvr, EventType::RegionEntry | EventType::RegionExit) => return None,
        })
    }

    /// camgate's kind for this event.
    pub fn kind(self) -> Kind {
        match self {
            EventType::Lpr => Kind::Plate,
            EventType::Face => Kind::Face,
            EventType::Intrusion => Kind::Intrusion,
            EventType::LineCrossing => Kind::LineCrossing,
            EventType::RegionEntry => Kind::RegionEntry,
            EventType::RegionExit => Kind::RegionExit,
            EventType::CountingByLine | EventType::CountingByArea => Kind::Counting,
            EventType::Metadata => Kind::Metadata,
        }
    }

    /// The alarm-status element that goes with this event on `family`, when the devices send
    /// one (NVR LPR, metadata and IPC zone/counting/metadata events have none documented).
    pub fn alarm(self, family: Family) -> Option<Alarm> {
        match (family, self) {
            (Family::Ipc, EventType::Lpr) => Some(Alarm::Lpr),
            (_, EventType::Face) => Some(Alarm::Face),
            (_, EventType::Intrusion) => Some(Alarm::Perimeter),
            (Family::Ipc, EventType::LineCrossing) => Some(Alarm::Tripwire),
            (Family::Nvr, EventType::LineCrossing) => Some(Alarm::Perimeter),
            (Family::Nvr, EventType::CountingByLine | EventType::CountingByArea) => Some(Alarm::PassLine),
            _ => None,
        }
    }

    /// Whether the IPC post carries a `SMART_START`/`SMART_STOP` status (PEA).
    pub fn has_smart_status(self) -> bool {
        matches!(self, EventType::Intrusion | EventType::LineCrossing)
    }

    /// Short label: `lpr`, `face`, `intrusion`, `line-crossing`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Lpr => "lpr",
            EventType::Face => "face",
            EventType::Intrusion => "intrusion",
            EventType::LineCrossing => "line-crossing",
            EventType::RegionEntry => "region-entry",
            EventType::RegionExit => "region-exit",
            EventType::CountingByLine => "counting-line",
            EventType::CountingByArea => "counting-area",
            EventType::Metadata => "metadata",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which alarm an alarm-status post reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alarm {
    /// IPC `vehiceAlarm`.
    Lpr,
    /// IPC `VFDAlarm`, NVR `vfdAlarm`.
    Face,
    /// `perimeterAlarm` (IPC PEA intrusion; NVR regionIntrusion and lineCrossing).
    Perimeter,
    /// IPC `tripwireAlarm` (PEA line crossing); NVRs report line crossing as `perimeterAlarm`.
    Tripwire,
    /// `passlineAlarm` (NVR target counting).
    PassLine,
    /// `motionAlarm`.
    Motion,
}

impl Alarm {
    /// The element name inside `alarmStatusInfo`.
    pub fn field(self, family: Family) -> &'static str {
        match (self, family) {
            (Alarm::Lpr, _) => "vehiceAlarm",
            (Alarm::Face, Family::Ipc) => "VFDAlarm",
            (Alarm::Face, Family::Nvr) => "vfdAlarm",
            (Alarm::Perimeter, _) | (Alarm::Tripwire, Family::Nvr) => "perimeterAlarm",
            (Alarm::Tripwire, Family::Ipc) => "tripwireAlarm",
            (Alarm::PassLine, _) => "passlineAlarm",
            (Alarm::Motion, _) => "motionAlarm",
        }
    }

    /// camgate's kind for this alarm (the simulator's expectation; see [`SentEvent`]).
    pub fn kind(self) -> Kind {
        match self {
            Alarm::Lpr => Kind::Plate,
            Alarm::Face => Kind::Face,
            Alarm::Perimeter => Kind::Intrusion,
            Alarm::Tripwire => Kind::LineCrossing,
            Alarm::PassLine => Kind::Counting,
            Alarm::Motion => Kind::Motion,
        }
    }
}

/// The keepalive shapes of §2 of the protocol notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeepaliveShape {
    /// A POST with an empty body (`Content-Length: 0`), what IPCs send every
    /// `keepaliveTimeval` seconds.
    Empty,
    /// IPC `<?xml ...?><DeviceInfo>` with name, number, serial, IP and MAC.
    DeviceInfo,
    /// IPC fw 5.3.x `<config version="1.7"><messageType>keepalive</messageType>...`
    /// **without** an `<?xml` declaration.
    Config17,
    /// NVR `<config version="2.0.0"><messageType>keepalive</messageType><deviceInfo>...`.
    Nvr,
}

impl KeepaliveShape {
    /// Short label: `empty`, `deviceinfo`, `config17`, `nvr`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeepaliveShape::Empty => "empty",
            KeepaliveShape::DeviceInfo => "deviceinfo",
            KeepaliveShape::Config17 => "config17",
            KeepaliveShape::Nvr => "nvr",
        }
    }
}

/// What to post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostSpec {
    /// A keepalive of the given shape.
    Keepalive(KeepaliveShape),
    /// A smart event. On IPC PEA events this is the `SMART_START` post.
    Event(EventType),
    /// IPC only: the `SMART_STOP` post of the last started intrusion / line-crossing event of
    /// that type (same `eventId` and `targetId`, new `currentTime`); a fresh event when none
    /// is open. Supported for [`EventType::Intrusion`] and [`EventType::LineCrossing`].
    EventStop(EventType),
    /// An alarm-status post: `on` is `true` when the alarm starts, `false` when it ends.
    AlarmStatus {
        /// Which alarm.
        alarm: Alarm,
        /// Start (`true`) or end (`false`).
        on: bool,
    },
    /// A traject (tracking) post with `targets` tracked objects (1-8). `fresh` starts new
    /// tracks (new `targetId`s); otherwise the previous tracks move on.
    Traject {
        /// Number of tracked targets.
        targets: u8,
        /// Start new tracks instead of moving the current ones.
        fresh: bool,
    },
}

/// What kind of post was sent, for the counters of a [`Report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PostKind {
    /// A keepalive of that shape.
    Keepalive(KeepaliveShape),
    /// An alarm-status post.
    AlarmStatus,
    /// A traject post.
    Traject,
    /// A smart event (start, stop or pulse).
    Event(EventType),
}

impl fmt::Display for PostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostKind::Keepalive(s) => write!(f, "keepalive-{}", s.as_str()),
            PostKind::AlarmStatus => f.write_str("alarm-status"),
            PostKind::Traject => f.write_str("traject"),
            PostKind::Event(e) => f.write_str(e.as_str()),
        }
    }
}
