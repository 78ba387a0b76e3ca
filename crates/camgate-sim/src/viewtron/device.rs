//! The simulated devices: how they connect, shape their requests, inject faults, schedule a
//! realistic stream, and read the replies.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::tz::TimeZone;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::http::{Conn, HttpError, Response, chunked, find};
use super::jpeg::ImageSizes;
use super::post::{Firmware, Identity, Post, PostFactory, Unsupported, pick};
use super::report::Report;
use super::{Alarm, EventType, Family, KeepaliveShape, PostSpec, SUCCESS_REPLY};

/// How a request is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `Content-Length` and the body in one write.
    ContentLength,
    /// `Transfer-Encoding: chunked`, the body in `chunks` chunks written separately
    /// (an empty body is just the final `0` chunk).
    Chunked {
        /// Number of data chunks (at least 1).
        chunks: u8,
    },
    /// `Expect: 100-continue`: the head, then the body after `100 Continue` or after the
    /// expect timeout. A final reply instead of `100` is recorded and the body not sent.
    Expect100,
    /// `n` requests written back to back before any reply is read. In a [`Step`] the post
    /// is generated `n` times (fresh ids each); in [`Device::run`] the next `n` planned
    /// posts go together.
    Pipelined(u8),
    /// `POST ... HTTP/1.0` with `Content-Length`; the server closes after the reply.
    Http10,
}

/// A deliberate misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The body is not well-formed XML (mismatched end tag or cut short); correctly framed.
    Malformed,
    /// `Content-Length` announces the whole body, half of it is sent, then the connection
    /// is closed. No reply is awaited.
    Truncated,
    /// `Content-Length` announces [`Device::oversize`] bytes (20 MiB by default); the body
    /// is streamed until the server answers (a 413 is expected) or everything is sent.
    Oversized,
    /// `Authorization: Basic` with the right user and a wrong password (`admin` when the
    /// device has no credentials).
    WrongCredentials,
    /// The post is sent, then sent again identically (same body, same ids and time), as a
    /// device that missed the reply does.
    Duplicate,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 5] =
        [Fault::Malformed, Fault::Truncated, Fault::Oversized, Fault::WrongCredentials, Fault::Duplicate];

    /// `malformed`, `truncated`, `oversized`, `wrong-credentials`, `duplicate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Malformed => "malformed",
            Fault::Truncated => "truncated",
            Fault::Oversized => "oversized",
            Fault::WrongCredentials => "wrong-credentials",
            Fault::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When [`Device::run`] stops (besides the cancellation token, always honoured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// After this many posts (clean and faulty, resends included).
    Posts(u64),
    /// After this long.
    Elapsed(Duration),
    /// Only when the token is cancelled.
    Stopped,
}

/// One step of a [`Script`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Build and send a post.
    Send {
        /// What to post.
        post: PostSpec,
        /// How to frame it.
        shape: Shape,
        /// What to break, if anything.
        fault: Option<Fault>,
    },
    /// Wait.
    Pause(Duration),
    /// Drop the kept-alive connection (the next post opens a new one).
    Disconnect,
    /// `channelId` of the following posts (NVRs forward several cameras). Default 1.
    Channel(u32),
}

impl Step {
    /// Send `post` with `Content-Length`, no fault.
    pub fn send(post: PostSpec) -> Step {
        Step::Send { post, shape: Shape::ContentLength, fault: None }
    }

    /// This step with another request shape (no effect on non-send steps).
    pub fn with_shape(mut self, new: Shape) -> Step {
        if let Step::Send { shape, .. } = &mut self {
            *shape = new;
        }
        self
    }

    /// This step with a fault (no effect on non-send steps).
    pub fn with_fault(mut self, new: Fault) -> Step {
        if let Step::Send { fault, .. } = &mut self {
            *fault = Some(new);
        }
        self
    }
}

/// A deterministic sequence of steps: the same seed gives the same bodies (ids, plates,
/// images), except the device times, which follow the wall clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Seed of every random choice.
    pub seed: u64,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Script {
    /// An empty script.
    pub fn new(seed: u64) -> Script {
        Script { seed, steps: Vec::new() }
    }

    /// Append a step.
    pub fn step(mut self, step: Step) -> Script {
        self.steps.push(step);
        self
    }

    /// Append a plain send of `post`.
    pub fn send(self, post: PostSpec) -> Script {
        self.step(Step::send(post))
    }
}

/// What can stop a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rate is not a positive, finite number.
    #[error("invalid rate {0}: give a positive number of posts per second, e.g. 2 or 0.5")]
    Rate(f64),
    /// A script step asks for a post this family does not send.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::IpcFamily {}
    impl Sealed for super::NvrFamily {}
}

/// Marker of a device family ([`IpcFamily`] or [`NvrFamily`]).
pub trait DeviceFamily: sealed::Sealed + Send + Sync + 'static {
    /// The family.
    const FAMILY: Family;
}

/// Marker of [`Camera`].
#[derive(Debug, Clone, Copy, Default)]
pub struct IpcFamily;

/// Marker of [`Nvr`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NvrFamily;

impl DeviceFamily for IpcFamily {
    const FAMILY: Family = Family::Ipc;
}

impl DeviceFamily for NvrFamily {
    const FAMILY: Family = Family::Nvr;
}

/// A simulated Viewtron IP camera posting directly: `POST /API HTTP/1.1`,
/// `Content-Type: application/xml; charset=utf-8`, `Connection: keep-alive` on one reused
/// connection, optional Basic credentials, IPC XML (config 1.7), keepalives of every IPC
/// shape, traject bursts.
pub type Camera = Device<IpcFamily>;

/// A simulated Viewtron NVR forwarding its channels: `POST http://host:port/API HTTP/1.1`
/// (absolute form), `Content-Type: application/soap+xml; charset=utf-8`,
/// `Connection: close` and a new connection per post, NVR XML (config 2.0.0), XML
/// keepalives, alarm status before the event.
pub type Nvr = Device<NvrFamily>;

const IPC_CONTENT_TYPE: &str = "application/xml; charset=utf-8";
const NVR_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";
const IPC_EVENTS: &[(EventType, u32)] = &[
    (EventType::Lpr, 24),
    (EventType::Face, 14),
    (EventType::Intrusion, 14),
    (EventType::LineCrossing, 14),
    (EventType::RegionEntry, 8),
    (EventType::RegionExit, 8),
    (EventType::CountingByLine, 8),
    (EventType::CountingByArea, 5),
    (EventType::Metadata, 5),
];
const NVR_EVENTS: &[(EventType, u32)] = &[
    (EventType::Lpr, 26),
    (EventType::Face, 16),
    (EventType::Intrusion, 16),
    (EventType::LineCrossing, 16),
    (EventType::CountingByLine, 10),
    (EventType::CountingByArea, 8),
    (EventType::Metadata, 8),
];
static FILLER: [u8; 64 * 1024] = [b'A'; 64 * 1024];

/// A post planned by [`Device::run`], built when it is sent.
#[derive(Debug, Clone, Copy)]
struct Planned {
    spec: PostSpec,
    channel: u32,
    fault: Option<Fault>,
    /// Wait after this post before the next one.
    gap: Duration,
}

/// A simulated device of family `F`; use the aliases [`Camera`] and [`Nvr`].
#[derive(Debug)]
pub struct Device<F: DeviceFamily> {
    target: SocketAddr,
    local: Option<std::net::IpAddr>,
    path: String,
    persistent: bool,
    credentials: Option<(String, String)>,
    firmware: Firmware,
    channels: u32,
    identity: Option<Identity>,
    sizes: ImageSizes,
    timezone: TimeZone,
    keepalives: Vec<KeepaliveShape>,
    shapes: Vec<Shape>,
    fault_rate: f64,
    fault_kinds: Vec<Fault>,
    connect_timeout: Duration,
    reply_timeout: Duration,
    expect_timeout: Duration,
    oversize: u64,
    seed: u64,
    factory: Option<PostFactory>,
    last_time_us: i64,
    rng: StdRng,
    conn: Option<Conn>,
    acked: HashSet<u64>,
    _family: PhantomData<F>,
}

impl Device<IpcFamily> {
    /// A camera posting to camgate's webhook listener at `target`.
    pub fn new(target: SocketAddr) -> Camera {
        Device::with_defaults(
            target,
            true,
            vec![KeepaliveShape::Empty, KeepaliveShape::DeviceInfo, KeepaliveShape::Config17],
        )
    }

    /// Firmware generation (IPC envelope shape). Default [`Firmware::V53`]; LPR posts
    /// always use the fw 5.3.x layout (that of the LPR-IP4 camera).
    pub fn firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self.reset_factory();
        self
    }
}

impl Device<NvrFamily> {
    /// An NVR posting to camgate's webhook listener at `target`.
    pub fn new(target: SocketAddr) -> Nvr {
        Device::with_defaults(target, false, vec![KeepaliveShape::Nvr])
    }

    /// Number of channels (cameras) the NVR forwards; each scenario picks one. Default 4.
    pub fn channels(mut self, channels: u32) -> Self {
        self.channels = channels.max(1);
        self
    }
}

impl<F: DeviceFamily> Device<F> {
    fn with_defaults(target: SocketAddr, persistent: bool, keepalives: Vec<KeepaliveShape>) -> Self {
        let seed = rand::make_rng::<StdRng>().random();
        Device {
            target,
            local: None,
            path: "/API".to_owned(),
            persistent,
            credentials: None,
            firmware: Firmware::default(),
            channels: if F::FAMILY == Family::Nvr { 4 } else { 1 },
            identity: None,
            sizes: ImageSizes::default(),
            timezone: TimeZone::UTC,
            keepalives,
            shapes: vec![Shape::ContentLength],
            fault_rate: 0.0,
            fault_kinds: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            reply_timeout: Duration::from_secs(10),
            expect_timeout: Duration::from_secs(1),
            oversize: 20 * 1024 * 1024,
            seed,
            factory: None,
            last_time_us: 0,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed),
            conn: None,
            acked: HashSet::new(),
            _family: PhantomData,
        }
    }

    /// The listener the device posts to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// The device family.
    pub fn family(&self) -> Family {
        F::FAMILY
    }

    /// Fix every random choice of [`Device::run`] (identity, ids, plates, images, schedule).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        self.reset_factory();
        self
    }

    /// Request path. Default `/API`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        self
    }

    /// Send `Authorization: Basic` with these credentials on every post.
    /// Connect from this local address (e.g. `127.0.0.2`), so that several simulated
    /// devices on one machine have addresses of their own, as real ones do.
    pub fn local_address(mut self, ip: std::net::IpAddr) -> Self {
        self.local = Some(ip);
        self
    }

    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Use one connection for many posts (`Connection: keep-alive`) or a new connection per
    /// post (`Connection: close`). Default: camera keep-alive, NVR close (the NVR's
    /// "Persistent Connection" option turns it on).
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// The identity the device reports. Default: random from the seed.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self.reset_factory();
        self
    }

    /// Image sizes. Default [`ImageSizes::default`] (~50 KB overviews, 2-10 KB crops).
    pub fn image_sizes(mut self, sizes: ImageSizes) -> Self {
        self.sizes = sizes;
        self.reset_factory();
        self
    }

    /// Zone of the device clock (IPC alarm-status `dataTime`). Default UTC.
    pub fn timezone(mut self, tz: TimeZone) -> Self {
        self.timezone = tz;
        self.reset_factory();
        self
    }

    /// Keepalive shapes [`Device::run`] draws from (uniformly). Default: camera empty,
    /// `<DeviceInfo>` and fw 5.3 `<config>`; NVR its XML keepalive.
    pub fn keepalives(mut self, shapes: Vec<KeepaliveShape>) -> Self {
        if !shapes.is_empty() {
            self.keepalives = shapes;
        }
        self
    }

    /// Request shapes [`Device::run`] draws from (uniformly). Default `[ContentLength]`.
    pub fn shapes(mut self, shapes: Vec<Shape>) -> Self {
        if !shapes.is_empty() {
            self.shapes = shapes;
        }
        self
    }

    /// In [`Device::run`], give each planned post probability `rate` of one of `kinds`.
    /// Default: no faults.
    pub fn faults(mut self, rate: f64, kinds: Vec<Fault>) -> Self {
        self.fault_rate = if rate.is_finite() { rate.clamp(0.0, 1.0) } else { 0.0 };
        self.fault_kinds = kinds;
        self
    }

    /// Longest wait for a reply. Default 10 s.
    pub fn reply_timeout(mut self, timeout: Duration) -> Self {
        self.reply_timeout = timeout;
        self
    }

    /// How long an `Expect: 100-continue` request waits for `100 Continue` before sending
    /// the body anyway. Default 1 s.
    pub fn expect_timeout(mut self, timeout: Duration) -> Self {
        self.expect_timeout = timeout;
        self
    }

    /// Declared size of [`Fault::Oversized`] bodies. Default 20 MiB.
    pub fn oversize(mut self, bytes: u64) -> Self {
        self.oversize = bytes;
        self
    }

    /// The identity in the posts (built from the seed unless set).
    pub fn device_identity(&mut self) -> &Identity {
        self.factory().identity()
    }

    fn reset_factory(&mut self) {
        if let Some(f) = self.factory.take() {
            self.last_time_us = self.last_time_us.max(f.last_time_us());
        }
    }

    fn factory(&mut self) -> &mut PostFactory {
        if self.factory.is_none() {
            let mut f = PostFactory::new(F::FAMILY, self.seed)
                .with_firmware(self.firmware)
                .with_image_sizes(self.sizes.clone())
                .with_timezone(self.timezone.clone());
            if let Some(id) = &self.identity {
                f = f.with_identity(id.clone());
            }
            f.continue_clock(self.last_time_us);
            self.factory = Some(f);
        }
        self.factory.as_mut().expect("just built")
    }

    fn new_report(&mut self) -> Report {
        self.acked.clear();
        Report { family: Some(F::FAMILY), ..Report::default() }
    }

    /// Post a realistic stream at `rate` posts per second until `until` or `stop`.
    ///
    /// Scenarios are drawn one after the other: a keepalive (80 % of scenarios on a camera,
    /// 75 % on an NVR); an event of a type of the family with its alarm status (camera:
    /// sometimes a short traject burst, the event, alarm on, the PEA `SMART_STOP`, alarm
    /// off; NVR: alarm on, event, alarm off, on a random channel); a traject burst at 6-12
    /// posts/s for 1-2.5 s (camera) or a video-metadata burst (NVR); a motion alarm on/off.
    /// By post count that is about 45 % keepalives, 30 % traject, 15 % alarm status and
    /// 12 % smart events on a camera; 55 % keepalives, 22 % alarm status and 23 % events
    /// on an NVR. Bursts go faster than
    /// `rate` when `rate` is lower than theirs. Each post gets a shape from
    /// [`Device::shapes`] and, with the probability of [`Device::faults`], a fault.
    /// Returns what happened; a kept-alive connection stays open for a later run.
    pub async fn run(&mut self, rate: f64, until: Until, stop: CancellationToken) -> Result<Report, Error> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::Rate(rate));
        }
        let base = Duration::from_secs_f64(1.0 / rate);
        let mut report = self.new_report();
        let started = Instant::now();
        let deadline = match until {
            Until::Elapsed(d) => Some(started + d),
            _ => None,
        };
        let limit = match until {
            Until::Posts(n) => Some(n),
            _ => None,
        };
        let mut queue: VecDeque<Planned> = VecDeque::new();
        let mut next = started;
        let mut written = 0u64;
        loop {
            let remaining = limit.map(|n| n.saturating_sub(written));
            if remaining == Some(0) || stop.is_cancelled() || deadline.is_some_and(|d| next >= d) {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = stop.cancelled() => break,
            }
            if queue.is_empty() {
                let plan = self.plan(base);
                queue.extend(plan);
            }
            let first = queue.pop_front().expect("planned above");
            let mut items = vec![first];
            let mut shape = *pick(&mut self.rng, &self.shapes);
            if let Shape::Pipelined(n) = shape {
                if first.fault.is_some() {
                    shape = Shape::ContentLength;
                } else {
                    let cap = remaining.map_or(usize::MAX, |r| usize::try_from(r).unwrap_or(usize::MAX));
                    while items.len() < usize::from(n).min(cap) {
                        if queue.is_empty() {
                            let plan = self.plan(base);
                            queue.extend(plan);
                        }
                        if queue.front().is_some_and(|p| p.fault.is_some()) {
                            break;
                        }
                        items.extend(queue.pop_front());
                    }
                }
            }
            let mut fault = first.fault;
            if fault == Some(Fault::Duplicate) && remaining.is_some_and(|r| r < 2) {
                fault = None;
            }
            let gap = items.last().map_or(base, |p| p.gap);
            let mut posts = Vec::with_capacity(items.len());
            for item in &items {
                let factory = self.factory();
                factory.set_channel(item.channel);
                posts.push(factory.build(item.spec)?);
            }
            written += self.execute(posts, shape, fault, &mut report).await;
            next += gap;
            let now = Instant::now();
            if next < now {
                next = now;
            }
        }
        tracing::debug!(%report, "viewtron simulator run finished");
        Ok(report)
    }

    /// Play `script` from a fresh seed: the same script and seed send the same bodies
    /// (apart from device times). Every step is checked before anything is sent.
    pub async fn run_script(&mut self, script: &Script) -> Result<Report, Error> {
        self.seed = script.seed;
        self.rng = StdRng::seed_from_u64(script.seed ^ 0x5eed);
        self.reset_factory();
        for step in &script.steps {
            if let Step::Send { post, .. } = step
                && !self.factory().supports(*post)
            {
                return Err(Unsupported { family: F::FAMILY, spec: *post }.into());
            }
        }
        let mut report = self.new_report();
        for step in &script.steps {
            match step {
                Step::Send { post, shape, fault } => {
                    let n = match shape {
                        Shape::Pipelined(n) => usize::from(*n).max(1),
                        _ => 1,
                    };
                    let mut posts = Vec::with_capacity(n);
                    for _ in 0..n {
                        posts.push(self.factory().build(*post)?);
                    }
                    self.execute(posts, *shape, *fault, &mut report).await;
                }
                Step::Pause(d) => tokio::time::sleep(*d).await,
                Step::Disconnect => self.conn = None,
                Step::Channel(c) => self.factory().set_channel(*c),
            }
        }
        Ok(report)
    }

    // ---- planning ------------------------------------------------------------------------

    fn plan(&mut self, base: Duration) -> Vec<Planned> {
        let channel = self.rng.random_range(1..=self.channels);
        let at = |spec: PostSpec| Planned { spec, channel, fault: None, gap: base };
        let mut out = Vec::new();
        let roll = self.rng.random_range(0..100);
        match F::FAMILY {
            Family::Ipc => match roll {
                0..80 => out.push(at(PostSpec::Keepalive(*pick(&mut self.rng, &self.keepalives)))),
                80..96 => {
                    let event = weighted(&mut self.rng, IPC_EVENTS);
                    let tracked = matches!(
                        event,
                        EventType::Intrusion | EventType::LineCrossing | EventType::RegionEntry | EventType::RegionExit
                    );
                    if tracked && self.rng.random_bool(0.15) {
                        out.extend(self.traject_burst(base, channel));
                    }
                    let alarm = event.alarm(Family::Ipc);
                    out.push(at(PostSpec::Event(event)));
                    if let Some(alarm) = alarm {
                        out.push(at(PostSpec::AlarmStatus { alarm, on: true }));
                    }
                    if event.has_smart_status() {
                        out.push(at(PostSpec::EventStop(event)));
                    }
                    if let Some(alarm) = alarm {
                        out.push(at(PostSpec::AlarmStatus { alarm, on: false }));
                    }
                }
                96..98 => out.extend(self.traject_burst(base, channel)),
                _ => {
                    out.push(at(PostSpec::AlarmStatus { alarm: Alarm::Motion, on: true }));
                    out.push(at(PostSpec::AlarmStatus { alarm: Alarm::Motion, on: false }));
                }
            },
            Family::Nvr => match roll {
                0..75 => out.push(at(PostSpec::Keepalive(*pick(&mut self.rng, &self.keepalives)))),
                75..95 => {
                    let event = weighted(&mut self.rng, NVR_EVENTS);
                    let alarm = event.alarm(Family::Nvr);
                    if let Some(alarm) = alarm {
                        out.push(at(PostSpec::AlarmStatus { alarm, on: true }));
                    }
                    out.push(at(PostSpec::Event(event)));
                    if let Some(alarm) = alarm {
                        out.push(at(PostSpec::AlarmStatus { alarm, on: false }));
                    }
                }
                95..98 => {
                    let n = self.rng.random_range(3..=6);
                    let gap = base.min(Duration::from_millis(self.rng.random_range(500..1_000)));
                    out.extend((0..n).map(|_| Planned { gap, ..at(PostSpec::Event(EventType::Metadata)) }));
                }
                _ => {
                    out.push(at(PostSpec::AlarmStatus { alarm: Alarm::Motion, on: true }));
                    out.push(at(PostSpec::AlarmStatus { alarm: Alarm::Motion, on: false }));
                }
            },
        }
        if self.fault_rate > 0.0 && !self.fault_kinds.is_empty() {
            for p in &mut out {
                if self.rng.random_bool(self.fault_rate) {
                    p.fault = Some(*pick(&mut self.rng, &self.fault_kinds));
                }
            }
        }
        out
    }

    /// 6-12 traject posts per second for 1-2.5 s, 1-2 targets.
    fn traject_burst(&mut self, base: Duration, channel: u32) -> Vec<Planned> {
        let per_second = f64::from(self.rng.random_range(6..=12u32));
        let seconds = self.rng.random_range(1.0..2.5);
        let n = (per_second * seconds).round().max(1.0) as usize;
        let targets = self.rng.random_range(1..=2);
        let gap = base.min(Duration::from_secs_f64(1.0 / per_second));
        (0..n)
            .map(|i| Planned { spec: PostSpec::Traject { targets, fresh: i == 0 }, channel, fault: None, gap })
            .collect()
    }

    // ---- sending -------------------------------------------------------------------------

    /// Send `posts` as one unit with `shape` and `fault`; returns the number of posts written.
    async fn execute(&mut self, posts: Vec<Post>, shape: Shape, fault: Option<Fault>, report: &mut Report) -> u64 {
        let n = posts.len() as u64;
        match fault {
            None => {
                self.transmit(&posts, shape, false, None, report).await;
                n
            }
            Some(Fault::Malformed) => {
                let factory = self.factory();
                let bad: Vec<Post> = posts.iter().map(|p| factory.malformed(p)).collect();
                self.transmit(&bad, shape, false, Some(Fault::Malformed), report).await;
                n
            }
            Some(Fault::WrongCredentials) => {
                self.transmit(&posts, shape, true, Some(Fault::WrongCredentials), report).await;
                n
            }
            Some(Fault::Duplicate) => {
                self.transmit(&posts, shape, false, None, report).await;
                self.transmit(&posts, shape, false, Some(Fault::Duplicate), report).await;
                2 * n
            }
            Some(Fault::Truncated) => {
                for p in &posts {
                    self.truncated(p, report).await;
                }
                n
            }
            Some(Fault::Oversized) => {
                for p in &posts {
                    self.oversized(p, report).await;
                }
                n
            }
        }
    }

    fn authorization(&mut self, wrong: bool) -> Option<String> {
        let (user, password) = match (&self.credentials, wrong) {
            (Some((u, p)), false) => (u.clone(), p.clone()),
            (None, false) => return None,
            (creds, true) => {
                let user = creds.as_ref().map_or("admin", |(u, _)| u.as_str()).to_owned();
                (user, format!("wrong-{:08x}", self.rng.random::<u32>()))
            }
        };
        Some(format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))))
    }

    /// The request head for a body of `length` bytes.
    fn head(&self, shape: Shape, length: u64, close: bool, auth: Option<&str>) -> Vec<u8> {
        let target = match F::FAMILY {
            Family::Ipc => self.path.clone(),
            Family::Nvr => format!("http://{}{}", self.target, self.path),
        };
        let version = if shape == Shape::Http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let content_type = match F::FAMILY {
            Family::Ipc => IPC_CONTENT_TYPE,
            Family::Nvr => NVR_CONTENT_TYPE,
        };
        let mut h = format!("POST {target} {version}\r\nHost: {}\r\nContent-Type: {content_type}\r\n", self.target);
        if let Some(a) = auth {
            h.push_str(&format!("Authorization: {a}\r\n"));
        }
        if shape != Shape::Http10 {
            h.push_str(if close { "Connection: close\r\n" } else { "Connection: keep-alive\r\n" });
        }
        if let Shape::Chunked { .. } = shape {
            h.push_str("Transfer-Encoding: chunked\r\n");
        } else {
            h.push_str(&format!("Content-Length: {length}\r\n"));
        }
        if shape == Shape::Expect100 {
            h.push_str("Expect: 100-continue\r\n");
        }
        h.push_str("\r\n");
        h.into_bytes()
    }

    /// A reused connection when it still looks alive, else a new one.
    async fn take_conn(&mut self, report: &mut Report) -> Result<(Conn, bool), HttpError> {
        if let Some(c) = self.conn.take()
            && c.looks_alive()
        {
            return Ok((c, true));
        }
        let c = Conn::connect(self.target, self.local, self.connect_timeout).await?;
        report.connections += 1;
        Ok((c, false))
    }

    /// Send posts (counted as clean, or as `fault`) and read their replies, re-sending once
    /// on a fresh connection when a kept-alive one turns out closed before any reply.
    async fn transmit(
        &mut self,
        posts: &[Post],
        shape: Shape,
        wrong_auth: bool,
        fault: Option<Fault>,
        report: &mut Report,
    ) {
        for p in posts {
            match fault {
                Some(f) => report.count_fault(f),
                None => report.count_sent(p.kind),
            }
        }
        let auth = self.authorization(wrong_auth);
        if shape == Shape::Http10 {
            // An HTTP/1.0 client opens a connection per request.
            self.conn = None;
        }
        let mut retried = false;
        loop {
            let (mut conn, reused) = match self.take_conn(report).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(target = %self.target, error = %e, "simulated post failed");
                    for _ in posts {
                        report.count_error(e.cause());
                    }
                    return;
                }
            };
            match self.exchange(&mut conn, posts, shape, auth.as_deref(), report).await {
                Ok(keep) => {
                    if keep && self.persistent {
                        self.conn = Some(conn);
                    }
                    return;
                }
                Err((0, e)) if reused && !retried && e.is_stale() => {
                    retried = true;
                    report.stale_retries += 1;
                }
                Err((answered, e)) => {
                    tracing::debug!(target = %self.target, error = %e, "simulated post failed");
                    for _ in answered..posts.len() {
                        report.count_error(e.cause());
                    }
                    return;
                }
            }
        }
    }

    /// One exchange on `conn`. `Ok(keep)` tells whether the connection may be reused;
    /// `Err((answered, error))` how many posts got their reply before the failure.
    async fn exchange(
        &mut self,
        conn: &mut Conn,
        posts: &[Post],
        shape: Shape,
        auth: Option<&str>,
        report: &mut Report,
    ) -> Result<bool, (usize, HttpError)> {
        let last = posts.len().saturating_sub(1);
        let close_last = !self.persistent || shape == Shape::Http10;
        if let Shape::Pipelined(_) = shape {
            let mut wire = Vec::new();
            for (i, p) in posts.iter().enumerate() {
                wire.extend(self.head(shape, p.body.len() as u64, close_last && i == last, auth));
                wire.extend_from_slice(&p.body);
            }
            conn.write(&wire).await.map_err(|e| (0, e))?;
            let mut keep = !close_last;
            for (i, p) in posts.iter().enumerate() {
                let resp = conn.read_response_within(true, self.reply_timeout).await.map_err(|e| (i, e))?;
                keep &= !resp.close;
                self.on_reply(p, &resp, report);
            }
            return Ok(keep);
        }
        for (i, p) in posts.iter().enumerate() {
            let close = close_last && i == last;
            let head = self.head(shape, p.body.len() as u64, close, auth);
            let resp = match shape {
                Shape::Chunked { chunks } => {
                    conn.write(&head).await.map_err(|e| (i, e))?;
                    for c in chunked(&p.body, usize::from(chunks.max(1))) {
                        conn.write(&c).await.map_err(|e| (i, e))?;
                    }
                    conn.read_response_within(true, self.reply_timeout).await.map_err(|e| (i, e))?
                }
                Shape::Expect100 => {
                    conn.write(&head).await.map_err(|e| (i, e))?;
                    match conn.read_response_within(false, self.expect_timeout).await {
                        Ok(r) if r.status == 100 => report.continues += 1,
                        Ok(r) => {
                            // A final answer to the head alone: the body is never sent, so
                            // the connection cannot carry another request.
                            self.on_reply(p, &r, report);
                            return if i == last {
                                Ok(false)
                            } else {
                                Err((i + 1, HttpError::Eof { nothing_received: true }))
                            };
                        }
                        Err(HttpError::Timeout(_)) => report.continue_timeouts += 1,
                        Err(e) => return Err((i, e)),
                    }
                    conn.write(&p.body).await.map_err(|e| (i, e))?;
                    conn.read_response_within(true, self.reply_timeout).await.map_err(|e| (i, e))?
                }
                Shape::ContentLength | Shape::Http10 | Shape::Pipelined(_) => {
                    let mut wire = head;
                    wire.extend_from_slice(&p.body);
                    conn.write(&wire).await.map_err(|e| (i, e))?;
                    conn.read_response_within(true, self.reply_timeout).await.map_err(|e| (i, e))?
                }
            };
            self.on_reply(p, &resp, report);
            if resp.close || close {
                return if i == last { Ok(false) } else { Err((i + 1, HttpError::Eof { nothing_received: true })) };
            }
        }
        Ok(!close_last)
    }

    fn on_reply(&mut self, post: &Post, resp: &Response, report: &mut Report) {
        if resp.status != 200 {
            *report.refused.entry(resp.status).or_default() += 1;
            return;
        }
        report.ok += 1;
        if resp.body != SUCCESS_REPLY.as_bytes() {
            report.bad_reply_body += 1;
        }
        if let Some(ev) = &post.event {
            if self.acked.insert(post.seq) {
                report.events.push(ev.clone());
            } else {
                report.duplicates_acked += 1;
            }
        }
    }

    /// [`Fault::Truncated`]: announce the whole body, send half, close.
    async fn truncated(&mut self, post: &Post, report: &mut Report) {
        report.count_fault(Fault::Truncated);
        let mut conn = match self.take_conn(report).await {
            Ok((c, _)) => c,
            Err(e) => {
                report.count_error(e.cause());
                return;
            }
        };
        let declared = if post.body.is_empty() { 512 } else { post.body.len() };
        let auth = self.authorization(false);
        let mut wire = self.head(Shape::ContentLength, declared as u64, !self.persistent, auth.as_deref());
        wire.extend_from_slice(&post.body[..post.body.len() / 2]);
        if conn.write(&wire).await.is_ok() {
            let _ = conn.stream.shutdown().await;
        }
    }

    /// [`Fault::Oversized`]: announce [`Device::oversize`] bytes and stream them while
    /// watching for the server's answer.
    async fn oversized(&mut self, post: &Post, report: &mut Report) {
        report.count_fault(Fault::Oversized);
        let mut conn = match self.take_conn(report).await {
            Ok((c, _)) => c,
            Err(e) => {
                report.count_error(e.cause());
                return;
            }
        };
        let auth = self.authorization(false);
        let head = self.head(Shape::ContentLength, self.oversize, true, auth.as_deref());
        let prefix_len = post.body.len().min(usize::try_from(self.oversize).unwrap_or(usize::MAX));
        let oversize = self.oversize;
        let reply_timeout = self.reply_timeout;
        let (mut rd, mut wr) = conn.stream.split();
        let write = async {
            wr.write_all(&head).await?;
            wr.write_all(&post.body[..prefix_len]).await?;
            let mut left = oversize - prefix_len as u64;
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(FILLER.len());
                wr.write_all(&FILLER[..n]).await?;
                left -= n as u64;
            }
            Ok::<(), std::io::Error>(())
        };
        let read = async {
            let mut buf = Vec::new();
            loop {
                if let Some(i) = find(&buf, b"\r\n") {
                    let line = String::from_utf8_lossy(&buf[..i]).into_owned();
                    return line
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse::<u16>().ok())
                        .filter(|_| line.starts_with("HTTP/1."))
                        .ok_or(HttpError::Malformed(format!("status line {line:?}")));
                }
                if buf.len() > 16 * 1024 || rd.read_buf(&mut buf).await? == 0 {
                    return Err(HttpError::Eof { nothing_received: buf.is_empty() });
                }
            }
        };
        tokio::pin!(write, read);
        let status = tokio::select! {
            r = &mut read => r,
            w = &mut write => {
                // Everything sent, or the server stopped reading: its answer may be waiting.
                let wait = if w.is_ok() { reply_timeout } else { Duration::from_secs(1) };
                match tokio::time::timeout(wait, &mut read).await {
                    Ok(r) => r,
                    Err(_) => Err(HttpError::Timeout(wait)),
                }
            }
        };
        match status {
            Ok(200) => report.ok += 1,
            Ok(s) => *report.refused.entry(s).or_default() += 1,
            Err(e) => report.count_error(e.cause()),
        }
    }
}

/// One of `items` by weight.
fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (item, w) in items {
        if roll < *w {
            return *item;
        }
        roll -= w;
    }
    items[items.len() - 1].0
}
