//! A simulated Dahua camera / NVR *server*: `GET /cgi-bin/eventManager.cgi?action=attach`
//! answered over real TCP with an endless `multipart/x-mixed-replace` event stream, for
//! camgate's Dahua event source to connect to.
//!
//! Protocol facts come from `docs/protocols/dahua.md` of the shared folder (sections cited
//! below). HTTP is written by hand so that every framing quirk stays under control:
//!
//! * Request (§1): `codes=[...]` filters the generated codes (`[All]` = everything); a list
//!   longer than [`DahuaServerBuilder::max_codes`] is refused with `400` (the client then
//!   falls back to `[All]`); `heartbeat=N` makes the stream send a `Heartbeat` part every
//!   N seconds.
//! * Response and framing (§2, §3): one [`Framing`] per stream, covering the §3.2 firmware
//!   variants, chosen round-robin from [`DahuaServerBuilder::framings`].
//! * Bodies (§4, §5): `Code=...;action=...;index=...;data={...}` for the [`EventCode`] mix,
//!   at a rate per stream; every event put on the wire is recorded as a [`SentEvent`] with
//!   the `UTC` device time it carried. With [`DahuaServerBuilder::stamp`] the data also
//!   carries the send time in milliseconds ([`SENT_MS_FIELD`], simulator-only), for latency
//!   benchmarks.
//! * Authentication (§6): Digest (MD5 or SHA-256, with or without `qop=auth`, a nonce per
//!   request, stale nonces), Basic, or none; a failure budget that locks every request out;
//!   a connection limit answered with a challenge-less `401`.
//! * Faults (§2, §7): silent stall, abrupt close mid-part, close right after the `200` head.
//!
//! One task per connection, small buffers: thousands of idle streams are cheap.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use camgate_sim::dahua::{AuthMode, DahuaServer};
//!
//! let server = DahuaServer::builder().credentials("admin", "secret").auth(AuthMode::digest()).channels(4).bind("127.0.0.1:0").await?;
//! println!("camera at http://{}", server.local_addr());
//! // ... point camgate at it ...
//! println!("{:?}", server.stats().events_by_code());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod auth;
mod conn;
mod frame;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use frame::Framing;

/// The multipart boundary every known Dahua firmware uses (§2).
pub const BOUNDARY: &str = "myboundary";

/// The event code used for [`EventCode::Unknown`]: in no table of camgate's.
pub const UNKNOWN_CODE: &str = "SimUnknownEvent";

/// The `data` field that carries the send time with [`DahuaServerBuilder::stamp`]
/// (simulator-only: Unix milliseconds when the part was written).
pub const SENT_MS_FIELD: &str = "SimSentMs";

/// Digest hash algorithm offered in the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// MD5 (the norm; the challenge names no `algorithm`).
    Md5,
    /// SHA-256 (`algorithm=SHA-256` in the challenge).
    Sha256,
}

/// How requests are authenticated (§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// HTTP Digest.
    Digest {
        /// Offer `qop="auth"` (otherwise RFC 2069: no qop, no nc/cnonce).
        qop: bool,
        /// Hash algorithm.
        algorithm: DigestAlgorithm,
        /// Every nonce is good for one request only (the `Connection: close` NVRs): a nonce
        /// used again is refused with a plain `401` and a new challenge, counted as failed.
        nonce_per_request: bool,
        /// A nonce becomes stale after this many accepted requests: the next request signed
        /// with it (and otherwise right) gets `401` with `stale=true` and a new nonce.
        stale_after: Option<u32>,
    },
    /// HTTP Basic only (2014/2015 firmware): `WWW-Authenticate: Basic realm="Device_CGI"`.
    Basic,
    /// No authentication.
    None,
}

impl AuthMode {
    /// Digest MD5 with `qop="auth"`, nonces reusable and never stale: the common camera.
    pub fn digest() -> Self {
        AuthMode::Digest { qop: true, algorithm: DigestAlgorithm::Md5, nonce_per_request: false, stale_after: None }
    }
}

/// The codes a stream generates (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventCode {
    /// `VideoMotion` Start/Stop with `RegionName` data.
    VideoMotion,
    /// `SmartMotionHuman` Start/Stop with an `Object` (`BoundingBox`) and the SMD `object` list.
    SmartMotionHuman,
    /// `CrossLineDetection` Start/Stop with rule, line, direction and a human `Object`.
    CrossLineDetection,
    /// `AlarmLocal` Start/Stop (the index is the alarm input).
    AlarmLocal,
    /// Doorbell press: `_DoTalkAction_` Pulse with `Action:"Invite"`.
    Doorbell,
    /// `NumberStat` Pulse with entered/exited counters.
    NumberStat,
    /// [`UNKNOWN_CODE`] Pulse: a code no table knows.
    Unknown,
}

impl EventCode {
    /// Every code, the default mix.
    pub const ALL: [EventCode; 7] = [
        EventCode::VideoMotion,
        EventCode::SmartMotionHuman,
        EventCode::CrossLineDetection,
        EventCode::AlarmLocal,
        EventCode::Doorbell,
        EventCode::NumberStat,
        EventCode::Unknown,
    ];

    /// The `Code=` value on the wire.
    pub fn code(self) -> &'static str {
        match self {
            EventCode::VideoMotion => "VideoMotion",
            EventCode::SmartMotionHuman => "SmartMotionHuman",
            EventCode::CrossLineDetection => "CrossLineDetection",
            EventCode::AlarmLocal => "AlarmLocal",
            EventCode::Doorbell => "_DoTalkAction_",
            EventCode::NumberStat => "NumberStat",
            EventCode::Unknown => UNKNOWN_CODE,
        }
    }

    /// Whether the code comes in Start/Stop pairs (otherwise `Pulse`).
    pub fn paired(self) -> bool {
        matches!(
            self,
            EventCode::VideoMotion
                | EventCode::SmartMotionHuman
                | EventCode::CrossLineDetection
                | EventCode::AlarmLocal
        )
    }
}

/// A fault injected into every stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// After this long from the `200` head, send nothing more but keep the socket open (a
    /// half-dead device, §7).
    StallAfter(Duration),
    /// After this many complete event parts, send the first half of the next one and close.
    CloseMidPart {
        /// Complete event parts before the cut one.
        after_events: u32,
    },
    /// Close right after the `200` head, before any part (§2: a failure for the client).
    CloseAfterHead,
}

/// One event the server put on the wire, complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEvent {
    /// Connection number (0-based, in accept order).
    pub connection: u64,
    /// `Code=` value.
    pub code: String,
    /// `action=` value (`Start`, `Stop`, `Pulse`).
    pub action: String,
    /// `index=` value (0-based channel, or alarm input for `AlarmLocal`).
    pub index: u32,
    /// The `UTC` field of `data` (device time, Unix seconds).
    pub utc: i64,
}

/// Counters of a running server, readable at any time.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections_accepted: AtomicU64,
    /// TCP connections open now.
    pub connections_open: AtomicU64,
    /// Connections refused for the connection limit (`401` without challenge).
    pub connections_refused: AtomicU64,
    /// Requests that passed authentication (or needed none).
    pub auth_ok: AtomicU64,
    /// Requests refused for wrong or missing-but-expected credentials (bare challenges not
    /// counted).
    pub auth_failed: AtomicU64,
    /// Requests answered `stale=true`.
    pub auth_stale: AtomicU64,
    /// Requests refused because of the lockout.
    pub auth_locked: AtomicU64,
    /// `401` challenges to requests without credentials.
    pub challenges: AtomicU64,
    /// `400` answers (long code list, bad request).
    pub bad_requests: AtomicU64,
    /// Streams started (`200` head sent).
    pub streams: AtomicU64,
    /// `Heartbeat` parts sent.
    pub heartbeats: AtomicU64,
    /// Bytes written, heads included.
    pub bytes_sent: AtomicU64,
    events: Mutex<Vec<SentEvent>>,
    streams_started: Mutex<Vec<StreamMark>>,
    streams_stalled: Mutex<Vec<StreamMark>>,
}

/// When something happened to one stream, for timing asserts (reconnect delays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamMark {
    /// Connection number (0-based, in accept order).
    pub connection: u64,
    /// When it happened.
    pub at: std::time::Instant,
}

impl Stats {
    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Every event sent so far, in send order.
    pub fn events(&self) -> Vec<SentEvent> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Events sent on one connection.
    pub fn events_on(&self, connection: u64) -> Vec<SentEvent> {
        self.events().into_iter().filter(|e| e.connection == connection).collect()
    }

    /// Events sent so far, counted by code.
    pub fn events_by_code(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for e in self.events.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            *m.entry(e.code.clone()).or_default() += 1;
        }
        m
    }

    /// Streams started (`200` head written), in order, with the time of the head.
    pub fn streams_started(&self) -> Vec<StreamMark> {
        self.streams_started.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Streams that went silent ([`Fault::StallAfter`]), in order, each with the time of the
    /// last byte written to it.
    pub fn streams_stalled(&self) -> Vec<StreamMark> {
        self.streams_stalled.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn stream_started(&self, mark: StreamMark) {
        self.streams_started.lock().unwrap_or_else(|e| e.into_inner()).push(mark);
    }

    pub(crate) fn stream_stalled(&self, mark: StreamMark) {
        self.streams_stalled.lock().unwrap_or_else(|e| e.into_inner()).push(mark);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn record(&self, event: SentEvent) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

/// Lockout after repeated failures (§6: Dahua locks the source out for about 30 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Failed attempts in a row that trigger it.
    pub max_failures: u32,
    /// How long every request is then refused with `401`.
    pub duration: Duration,
}

/// Configuration of a [`DahuaServer`]; see [`DahuaServer::builder`].
#[derive(Debug, Clone)]
pub struct DahuaServerBuilder {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) serial: String,
    pub(crate) auth: AuthMode,
    pub(crate) lockout: Option<Lockout>,
    pub(crate) max_connections: usize,
    pub(crate) channels: u32,
    pub(crate) events: Vec<EventCode>,
    pub(crate) event_interval: Option<Duration>,
    pub(crate) max_codes: usize,
    pub(crate) framings: Vec<Framing>,
    pub(crate) fault: Option<Fault>,
    pub(crate) stamp: bool,
}

impl Default for DahuaServerBuilder {
    fn default() -> Self {
        DahuaServerBuilder {
            user: "admin".into(),
            password: "admin".into(),
            serial: "SIM0123456789".into(),
            auth: AuthMode::digest(),
            lockout: None,
            max_connections: 10_000,
            channels: 1,
            events: EventCode::ALL.to_vec(),
            event_interval: Some(Duration::from_secs(1)),
            max_codes: 8,
            framings: vec![Framing::Canonical],
            fault: None,
            stamp: false,
        }
    }
}

impl DahuaServerBuilder {
    /// The one account (default `admin` / `admin`).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// The serial number, used in the Digest realm `Login to <serial>`.
    pub fn serial(mut self, serial: impl Into<String>) -> Self {
        self.serial = serial.into();
        self
    }

    /// Authentication (default [`AuthMode::digest`]).
    pub fn auth(mut self, auth: AuthMode) -> Self {
        self.auth = auth;
        self
    }

    /// Refuse every request with `401` for `duration` once `max_failures` attempts in a row
    /// failed (default: no lockout).
    pub fn lockout(mut self, max_failures: u32, duration: Duration) -> Self {
        self.lockout = Some(Lockout { max_failures: max_failures.max(1), duration });
        self
    }

    /// Connections open at once beyond which a new one gets `401` without a challenge
    /// ("Exceeded maximum number of connections", §6). Default 10 000.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Channels (the `index=` values cycle through `0..n`). Default 1.
    pub fn channels(mut self, n: u32) -> Self {
        self.channels = n.max(1);
        self
    }

    /// The code mix, sent in round-robin order (default [`EventCode::ALL`]). Paired codes
    /// alternate Start and Stop per channel.
    pub fn events(mut self, codes: &[EventCode]) -> Self {
        self.events = codes.to_vec();
        self
    }

    /// One event per `interval` per stream; `None` sends heartbeats only. Default 1 s.
    pub fn event_interval(mut self, interval: Option<Duration>) -> Self {
        self.event_interval = interval;
        self
    }

    /// Longest `codes=[...]` list accepted; longer gets `400` (default 8; `[All]` is always
    /// accepted).
    pub fn max_codes(mut self, k: usize) -> Self {
        self.max_codes = k;
        self
    }

    /// Framing variants, used round-robin by connection number (default canonical only).
    pub fn framings(mut self, framings: &[Framing]) -> Self {
        if !framings.is_empty() {
            self.framings = framings.to_vec();
        }
        self
    }

    /// A fault injected into every stream.
    pub fn fault(mut self, fault: Option<Fault>) -> Self {
        self.fault = fault;
        self
    }

    /// Put the send time into every event's `data` as [`SENT_MS_FIELD`] (`"SimSentMs" :
    /// 1795299986348`, Unix milliseconds, taken right before the part is written), so that a
    /// benchmark can measure the latency from the device to camgate's output. A
    /// simulator-only field: no real device sends it. Default off.
    pub fn stamp(mut self, on: bool) -> Self {
        self.stamp = on;
        self
    }

    /// Listen on `addr` (e.g. `127.0.0.1:0`) and serve until shut down.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> std::io::Result<DahuaServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let cancel = CancellationToken::new();
        let shared = Arc::new(conn::Shared::new(self, stats.clone(), cancel.clone()));
        let task = tokio::spawn(conn::accept_loop(listener, shared));
        Ok(DahuaServer { local_addr, stats, cancel, task })
    }
}

/// A running simulated camera.
#[derive(Debug)]
pub struct DahuaServer {
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl DahuaServer {
    /// Configure a server.
    pub fn builder() -> DahuaServerBuilder {
        DahuaServerBuilder::default()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Its counters (shared, live).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// A token that stops the server (accept loop and every connection) when cancelled.
    pub fn shutdown_handle(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stop accepting, close every connection, wait for the accept loop.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}
