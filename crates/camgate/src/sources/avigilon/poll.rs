//! One poll cycle: every camera's window fetched, the cycle's events stored together in time
//! order, and the cursors advanced (avigilon.md §2, legacy bugs 3-6 of §6.4).
//!
//! # A camera's window
//!
//! Times are by the **ACC server's clock** (ours plus `timestamp_offset`), the clock the
//! server filters `from`/`to` with; cursors are stored in the same terms, so a changed
//! `timestamp_offset` never makes a window skip time.
//!
//! * `to` = the cycle's end: now minus [`SETTLE`], so an event being written as we ask
//!   comes in the next window rather than never.
//! * `from` = the camera's cursor (the `to` of its last committed window) minus `lookback`:
//!   windows overlap by `lookback`, so events the server lists late (their `timestamp` is
//!   in a window already fetched) are fetched again while they are younger than `lookback`.
//!   A camera with no cursor yet (first run) starts at `to − poll_interval − lookback`: as
//!   if a window had ended one interval ago. Nothing older is fetched: camgate does not
//!   back-fill history it never polled.
//! * With `active = "schedule"`, `from` is never before the open window's start, and the
//!   last poll of a window ends at the window's end.
//!
//! # Paging
//!
//! `TIME_RANGE` per server the camera is on, then `CONTINUE` with the URL-encoded token
//! until [`EventsPage::continuation`] says stop (no token, an empty page, or a short page).
//! At most [`MAX_PAGES`] pages per window: past that the window is cut at the last event's
//! time (logged) and the rest is fetched next cycle.
//!
//! # Concurrency and memory
//!
//! Each request asks one ACC server, and at most `concurrency` requests are in flight to
//! each server (a semaphore per server): the load on a server does not grow with the number
//! of servers of the site. Cameras are taken furthest behind first, alternating between
//! servers, so every server's permits are busy from the start.
//!
//! A cycle's events are held until they are stored (see *Order*), so a cycle stops fetching
//! once it holds [`Poller::cycle_events`] events (default [`CYCLE_EVENTS`]): windows still
//! paging past their camera's cursor are cut at their last event (a cut inside the `lookback`
//! overlap would make no progress), cameras not started wait for the next cycle, and every
//! window of the cycle then ends at the earliest cut (the cycle's *horizon*), so that what is
//! stored is in time order (but for the cameras that waited) and nothing after the horizon is
//! stored before what precedes it. The next cycle starts at once ([`CycleReport::deferred`]),
//! the cameras furthest behind first, and each cycle moves at least the camera that set the
//! horizon forward. Memory stays near the budget plus one page per request in flight and the
//! `lookback` overlap, however large the backlog. Each event is tagged and
//! serialised for the store ([`Store::prepare`]) as its window arrives, while other requests
//! wait for the network, rather than in the write.
//!
//! # Exactly once
//!
//! Every event's key is `avigilon:<originatingServerId>:<thisId>`; the store keeps one
//! event per key, so an event fetched twice (window overlap, a page that repeats the last
//! event, a duplicate delivery, a cycle repeated after a crash) is stored once. The windows
//! fetched in a cycle go to the store in time order, in writes of [`STORE_CHUNK`] events one
//! after another (a write that fails is retried alone, from the JSON kept aside); only after
//! the last returned (committed) are the cameras' cursors written, in one write, through the
//! same writer. Any error (a failed request, a store that refused the write) leaves the
//! cursor where it was: the whole window is fetched again in the next cycle, and what was
//! already stored comes back as duplicates.
//!
//! # History
//!
//! The site's `history` filter marks each event: the events it leaves out are stored all the
//! same (their key, and the zones count them in the same transaction, exactly once), but no
//! reader sees them ([`Store::append_prepared`]).
//!
//! # Order
//!
//! A zone's `max(0, ...)` clamp makes the order of its events matter, and an event stored
//! out of time order costs the zone a recount of what came after it. So the cycle's events
//! are stored in time order (`occurred_at`, each camera's own order kept for equal times),
//! not camera by camera: a zone's entries seen by one camera and its exits seen by another
//! come in the order they happened. (A window fetched a cycle late, after an error, still
//! comes after what the other cameras stored meanwhile.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_core::config::AvigilonConfig;
use camgate_core::config::matcher::EventView;
use camgate_core::schedule::Schedule;
use camgate_core::{Event, EventId, Vendor};
use camgate_protocols::avigilon::{
    EVENTS_SEARCH_PATH, EventError, EventSearch, EventsPage, NormaliseOptions, Normalised, iso_millis, normalise,
    parse_events,
};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::client::{CallError, Client};
use crate::sources::SourceHandle;
use crate::store::{Appended, DeadLetter, PreparedEvent, Store, StoreError};

/// Pages fetched per camera and window at most.
pub const MAX_PAGES: u32 = 1000;
/// Events one cycle fetches before it stops paging (see [`Poller::cycle_events`]): a
/// cycle's events are held in memory until they are stored.
pub const CYCLE_EVENTS: usize = 50_000;
/// A window ends this long before now (at most; `poll_interval / 2` when that is shorter):
/// the server may still be writing events of the last instant.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How long to wait before trying a store write again that failed (disk full, ...).
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Events per write when a cycle stores its events (in time order, one chunk after another).
pub const STORE_CHUNK: usize = 5_000;

/// A camera to poll.
#[derive(Debug, Clone)]
pub struct Camera {
    /// The ACC camera id (`deviceIds`).
    pub id: String,
    /// The `source` of its events: its name from `GET /cameras`, else its id.
    pub source: String,
    /// The servers to ask for its events: its `serverId` from `GET /cameras`, else every
    /// server of the site.
    pub servers: Vec<String>,
}

/// What one camera's window gave.
#[derive(Debug, Default, Clone, Copy)]
pub struct CameraStats {
    pub pages: u32,
    pub fetched: u64,
    pub new: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
}

/// A camera's window, fetched and not stored yet.
struct Window {
    /// Each event, ready to store, with its `timestamp` as sent (server clock) when it has one.
    events: Vec<(Option<Timestamp>, PreparedEvent)>,
    /// Where the camera's cursor goes once the events are stored (`None`: nothing was
    /// fetched, it stays).
    reached: Option<Timestamp>,
    /// Where the window started (server clock).
    from: Timestamp,
    /// Cut short (the cycle's event budget or [`MAX_PAGES`]) or not fetched at all (the
    /// budget was spent before its turn): the rest comes in the next cycle.
    deferred: bool,
    stats: CameraStats,
}

impl Window {
    /// A window not fetched in this cycle: its cursor stays.
    fn skipped(from: Timestamp, deferred: bool) -> Window {
        Window { events: Vec::new(), reached: None, from, deferred, stats: CameraStats::default() }
    }
}

/// What the windows of one cycle share.
struct CycleState {
    /// Events fetched so far.
    fetched: AtomicUsize,
    /// Where every window of the cycle ends (server clock): the cycle's `end`, or earlier once
    /// a window was cut short (events at or after it wait for the next cycle, so the cycle
    /// still stores events in time order).
    horizon: Mutex<Timestamp>,
}

impl CycleState {
    fn horizon(&self) -> Timestamp {
        *self.horizon.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cut_at(&self, t: Timestamp) {
        let mut h = self.horizon.lock().unwrap_or_else(|e| e.into_inner());
        *h = (*h).min(t);
    }
}

/// Why a camera's window was not completed (its cursor stays).
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the store did not take the events: {0}")]
    Store(StoreError),
    #[error("stopping")]
    Stopped,
}

/// What a cycle did, for health and logs.
#[derive(Debug, Default)]
pub struct CycleReport {
    pub cameras: usize,
    pub failed: usize,
    pub stats: CameraStats,
    /// The first error, if any camera failed.
    pub error: Option<WindowError>,
    /// Some camera's request was refused even after logging in again (401/403).
    pub auth_failed: bool,
    /// Cameras whose window was cut short or not fetched because the cycle reached its
    /// event budget ([`Poller::cycle_events`]) or [`MAX_PAGES`]; the next cycle should start
    /// at once.
    pub deferred: usize,
    /// Time spent fetching the windows, and storing their events (with the cursors).
    pub fetch_time: Duration,
    pub store_time: Duration,
}

impl CycleReport {
    /// Every camera failed (and there was at least one).
    pub fn all_failed(&self) -> bool {
        self.cameras > 0 && self.failed == self.cameras
    }
}

/// Polls the cameras of one site.
pub struct Poller {
    pub cfg: Arc<AvigilonConfig>,
    pub client: Arc<Client>,
    pub store: Store,
    pub health: SourceHandle,
    pub cameras: Vec<Camera>,
    /// Camera id → event source, for events whose `cameraId` is another camera's.
    pub sources: HashMap<String, String>,
    pub schedule: Option<Arc<Schedule>>,
    /// Events a cycle fetches at most, about (default [`CYCLE_EVENTS`]): past it, cameras
    /// stop paging (once past their cursor), cameras not started yet wait for the next cycle,
    /// and every window of the cycle ends at the earliest cut. Memory stays bounded by this
    /// plus one page per request in flight and the `lookback` overlap, whatever the backlog
    /// (a restart after a day down, a burst).
    pub cycle_events: usize,
    /// Camera id → end of its last committed window (server clock).
    cursors: Mutex<HashMap<String, Timestamp>>,
    /// Server id → requests in flight to it (`concurrency` each).
    limits: HashMap<String, Arc<Semaphore>>,
}

impl Poller {
    pub fn new(
        cfg: Arc<AvigilonConfig>,
        client: Arc<Client>,
        store: Store,
        health: SourceHandle,
        cameras: Vec<Camera>,
        schedule: Option<Arc<Schedule>>,
    ) -> Poller {
        let sources = cameras.iter().map(|c| (c.id.clone(), c.source.clone())).collect();
        let per_server = cfg.concurrency.max(1);
        let limits = cameras
            .iter()
            .flat_map(|c| c.servers.iter())
            .map(|s| (s.clone(), Arc::new(Semaphore::new(per_server))))
            .collect();
        Poller {
            cfg,
            client,
            store,
            health,
            cameras,
            sources,
            schedule,
            cycle_events: CYCLE_EVENTS,
            cursors: Mutex::new(HashMap::new()),
            limits,
        }
    }

    /// Read the persisted cursors of every camera (run once, before the first cycle).
    pub async fn load_cursors(&self) -> Result<usize, StoreError> {
        let mut loaded = HashMap::new();
        for cam in &self.cameras {
            if let Some(v) = self.store.source_cursor(&self.cfg.name, &cam.id).await? {
                match v.parse::<Timestamp>() {
                    Ok(t) => {
                        loaded.insert(cam.id.clone(), t);
                    }
                    Err(e) => {
                        tracing::warn!(site = %self.cfg.name, camera = %cam.id, value = %v, error = %e, "unreadable poll cursor; the camera starts as on a first run")
                    }
                }
            }
        }
        let n = loaded.len();
        *self.lock() = loaded;
        Ok(n)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Timestamp>> {
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The settle delay for this configuration.
    pub fn settle(&self) -> Duration {
        SETTLE.min(self.cfg.poll_interval.get() / 2)
    }

    /// One cycle over every camera, at most `concurrency` requests in flight to each ACC
    /// server. `end` is the windows' end by our clock; `floor` (our clock) the earliest
    /// `from` (a scheduled window's start).
    pub async fn cycle(&self, end: Timestamp, floor: Option<Timestamp>, stop: &CancellationToken) -> CycleReport {
        let started = std::time::Instant::now();
        let offset = self.cfg.timestamp_offset.get();
        let end = shift(end, offset);
        let floor = floor.map(|f| shift(f, offset));
        let order = self.order(end, floor);
        let state = CycleState { fetched: AtomicUsize::new(0), horizon: Mutex::new(end) };
        // Enough cameras under way to keep every server's `concurrency` busy; each request
        // waits for its server's permit. By index: a closure over `&Camera` is not general
        // enough for a spawned future.
        let width = self.cfg.concurrency.max(1) * self.limits.len().max(1);
        let state = &state;
        let mut results = futures::stream::iter(order)
            .map(|(i, from, cursor)| async move {
                (i, self.fetch_window(&self.cameras[i], (from, cursor), end, state, stop).await)
            })
            .buffer_unordered(width);
        let mut report = CycleReport { cameras: self.cameras.len(), ..CycleReport::default() };
        let mut fetched: Vec<(usize, Window)> = Vec::new();
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(w) => fetched.push((i, w)),
                Err(e) => self.failed(&mut report, &self.cameras[i], e),
            }
        }
        drop(results);
        let horizon = state.horizon();
        if horizon < end {
            // A window was cut short: every window ends there, so that the events stored
            // are in time order across cameras; what lies after comes next cycle.
            let mut held = 0u64;
            let cursors = self.lock();
            // Just before it: the next window fetches the events at `horizon` whether `from`
            // is inclusive or not.
            let cut = shift(horizon, -SignedDuration::from_millis(1));
            for (i, w) in &mut fetched {
                let before = w.events.len();
                w.events.retain(|(t, _)| t.is_none_or(|t| t < horizon));
                held += (before - w.events.len()) as u64;
                if w.reached.is_some_and(|r| r > cut) {
                    w.deferred = true;
                    // Never back, and never behind the last cursor: what lies before it is
                    // stored already.
                    w.reached =
                        (cut > w.from).then(|| cursors.get(&self.cameras[*i].id).map_or(cut, |old| cut.max(*old)));
                }
            }
            drop(cursors);
            tracing::info!(site = %self.cfg.name, cut_at = %iso_millis(horizon), held_back = held, "a window was cut short (the cycle's budget of {} events, or {MAX_PAGES} pages); every window of the cycle ends at the earliest cut and the rest is fetched by the next cycle, at once", self.cycle_events);
        }
        report.deferred = fetched.iter().filter(|(_, w)| w.deferred).count();
        report.fetch_time = started.elapsed();
        let storing = std::time::Instant::now();
        if let Err(e) = self.commit(&mut fetched, &mut report, stop).await {
            for (i, _) in &fetched {
                self.failed(&mut report, &self.cameras[*i], WindowError::Store(e.clone()));
            }
        }
        report.store_time = storing.elapsed();
        report
    }

    /// The cameras and their windows' `from`, in the order they are fetched: the furthest
    /// behind first (when the event budget runs out, those not fetched are the least
    /// behind), and among equals alternating between servers, so that every server's
    /// permits are in use from the start.
    fn order(&self, end: Timestamp, floor: Option<Timestamp>) -> Vec<(usize, Timestamp, Option<Timestamp>)> {
        let lookback = SignedDuration::try_from(self.cfg.lookback.get()).unwrap_or(SignedDuration::ZERO);
        let interval = SignedDuration::try_from(self.cfg.poll_interval.get()).unwrap_or(SignedDuration::ZERO);
        let cursors = self.lock();
        let mut turn: HashMap<&str, usize> = HashMap::new();
        let mut order: Vec<(Timestamp, usize, usize)> = self
            .cameras
            .iter()
            .enumerate()
            .map(|(i, cam)| {
                let mut from = match cursors.get(&cam.id) {
                    Some(c) => shift(*c, -lookback),
                    None => shift(end, -(interval + lookback)),
                };
                if let Some(f) = floor {
                    from = from.max(f);
                }
                let n = turn.entry(cam.servers.first().map_or("", String::as_str)).or_default();
                *n += 1;
                (from, *n, i)
            })
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(from, _, i)| (i, from, cursors.get(&self.cameras[i].id).copied())).collect()
    }

    fn failed(&self, report: &mut CycleReport, cam: &Camera, e: WindowError) {
        report.failed += 1;
        if matches!(e, WindowError::Stopped) {
            return;
        }
        if matches!(&e, WindowError::Call(c) if c.is_auth()) {
            report.auth_failed = true;
        }
        tracing::debug!(site = %self.cfg.name, camera = %cam.id, error = %e, "window not completed; the cursor stays and the window is fetched again next cycle");
        if report.error.is_none() {
            report.error = Some(e);
        }
    }

    /// Store the fetched windows' events in time order, then move their cameras' cursors.
    async fn commit(
        &self,
        fetched: &mut [(usize, Window)],
        report: &mut CycleReport,
        stop: &CancellationToken,
    ) -> Result<(), StoreError> {
        let mut events: Vec<(usize, PreparedEvent)> = Vec::new();
        for (slot, (_, w)) in fetched.iter_mut().enumerate() {
            events.extend(w.events.drain(..).map(|(_, e)| (slot, e)));
        }
        // Stable: a camera's events keep the server's order among equal times.
        events.sort_by_key(|(_, p)| p.event().occurred_at.unwrap_or(p.event().received_at));
        // In time order, a chunk at a time: each chunk is one write, and a failed write is
        // retried with that chunk alone.
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let (slots, chunk): (Vec<usize>, Vec<PreparedEvent>) = events.by_ref().take(STORE_CHUNK).unzip();
            let outcomes = self.store_events(chunk, stop).await?;
            for (slot, o) in slots.into_iter().zip(&outcomes) {
                let new = matches!(o, Appended::New(_));
                self.health.event(new);
                let stats = &mut fetched[slot].1.stats;
                if new {
                    stats.new += 1;
                } else {
                    stats.duplicates += 1;
                }
            }
        }
        // The events are committed: now the cursors may move, in one write.
        let moved: Vec<(String, String)> =
            fetched.iter().filter_map(|(i, w)| Some((self.cameras[*i].id.clone(), w.reached?.to_string()))).collect();
        if let Err(e) = self.store.set_source_cursors(&self.cfg.name, moved).await {
            // Not fatal: the windows are fetched again after a restart (duplicates).
            tracing::warn!(site = %self.cfg.name, error = %e, "could not record the poll cursors");
        }
        let mut cursors = self.lock();
        for (i, w) in fetched.iter() {
            if let Some(t) = w.reached {
                cursors.insert(self.cameras[*i].id.clone(), t);
            }
            let (t, s) = (&mut report.stats, &w.stats);
            t.pages += s.pages;
            t.fetched += s.fetched;
            t.new += s.new;
            t.duplicates += s.duplicates;
            t.dead_letters += s.dead_letters;
        }
        Ok(())
    }

    /// Fetch one camera's window `[from, end)` (server clock), or less: up to the cycle's
    /// horizon, and cut short when the cycle's event budget runs out once the window is past
    /// the camera's `cursor` (before it, it fetches the `lookback` overlap again: a cut there
    /// would make no progress).
    async fn fetch_window(
        &self,
        cam: &Camera,
        (from, cursor): (Timestamp, Option<Timestamp>),
        end: Timestamp,
        cycle: &CycleState,
        stop: &CancellationToken,
    ) -> Result<Window, WindowError> {
        if cycle.fetched.load(Ordering::Relaxed) >= self.cycle_events {
            // The budget is spent: this camera waits for the next cycle (its cursor stays).
            return Ok(Window::skipped(from, true));
        }
        // Where the window really ends: `end`, or earlier when a window of the cycle was cut.
        let mut reached = end.min(cycle.horizon());
        if from >= reached {
            // Nothing to fetch; the cursor stays where it is.
            return Ok(Window::skipped(from, reached < end));
        }
        let to = reached;
        let mut stats = CameraStats::default();
        let mut deferred = false;
        let mut raw = Vec::new();
        for server in &cam.servers {
            let search = EventSearch::TimeRange {
                server_id: server,
                from,
                to,
                topics: &self.cfg.topics,
                device_ids: std::slice::from_ref(&cam.id),
                limit: Some(self.cfg.limit),
            };
            let mut page = self.get(server, &search.query()).await?;
            let mut pages = 1u32;
            loop {
                if stop.is_cancelled() {
                    return Err(WindowError::Stopped);
                }
                let next = page.continuation(self.cfg.limit).map(str::to_owned);
                let last_time = page.events.last().and_then(event_time);
                let total = cycle.fetched.fetch_add(page.events.len(), Ordering::Relaxed) + page.events.len();
                raw.append(&mut page.events);
                let Some(token) = next else { break };
                let past_cursor = last_time.is_some_and(|t| cursor.is_none_or(|c| t > c));
                if pages >= MAX_PAGES || (total >= self.cycle_events && past_cursor) {
                    let cut = last_time.unwrap_or(from).max(from);
                    if pages >= MAX_PAGES {
                        tracing::warn!(site = %self.cfg.name, camera = %cam.id, server = %server, pages, cut_at = %iso_millis(cut), "a poll window holds more than {MAX_PAGES} pages; storing what was fetched and fetching the rest from there next cycle");
                    } else {
                        tracing::debug!(site = %self.cfg.name, camera = %cam.id, server = %server, pages, cut_at = %iso_millis(cut), "the cycle's event budget is spent; the rest of this window is fetched next cycle");
                    }
                    cycle.cut_at(cut);
                    reached = reached.min(cut);
                    deferred = true;
                    break;
                }
                page = self.get(server, &EventSearch::Continue { token: &token }.query()).await?;
                pages += 1;
            }
            stats.pages += pages;
        }
        stats.fetched = raw.len() as u64;
        let opts = NormaliseOptions { server_clock_offset: self.cfg.timestamp_offset.get() };
        let received_at = camgate_core::time::now_ms();
        let mut events = Vec::with_capacity(raw.len());
        for value in raw {
            let at = event_time(&value);
            let event = match normalise(value, &opts) {
                Ok(n) => self.to_event(n, cam, received_at),
                Err(e) => {
                    self.dead_letter(cam, e).await;
                    stats.dead_letters += 1;
                    continue;
                }
            };
            // The `history` filter: events it leaves out are stored for their key and the
            // zones only (exactly-once counting), and read back by nobody.
            let history = self.cfg.is_history(&EventView::new(&event));
            // Serialised here, while other windows wait for the network, not in the write.
            match self.store.prepare(event, history) {
                Ok(p) => events.push((at, p)),
                Err(e) => {
                    tracing::error!(site = %self.cfg.name, camera = %cam.id, error = %e, "an event cannot be stored")
                }
            }
        }
        Ok(Window { events, reached: Some(reached), from, deferred, stats })
    }

    /// One `events/search` request to `server`, once one of its `concurrency` permits is free.
    async fn get(&self, server: &str, query: &str) -> Result<EventsPage, CallError> {
        let _permit = match self.limits.get(server) {
            Some(limit) => Some(limit.acquire().await.expect("the server limits are never closed")),
            None => None,
        };
        self.client.get(EVENTS_SEARCH_PATH, query, parse_events).await
    }

    /// The camgate event for a normalised Avigilon event.
    fn to_event(&self, n: Normalised, cam: &Camera, received_at: Timestamp) -> Event {
        let source = n.camera_id.as_ref().and_then(|id| self.sources.get(id)).unwrap_or(&cam.source).clone();
        let mut data = n.data;
        if let Some(obj) = data.as_object_mut() {
            // Zone matchers read `data.area` and `data.activity` (camgate_core::config::matcher).
            for (k, v) in [("area", &n.area), ("activity", &n.activity)] {
                if !obj.get(k).is_some_and(serde_json::Value::is_string) {
                    obj.insert(k.into(), v.clone().map_or(serde_json::Value::Null, Into::into));
                }
            }
            if let Some(err) = &n.time_error {
                obj.insert("time_error".into(), err.clone().into());
            }
        }
        let mut event = Event {
            id: EventId::new(),
            key: n.key,
            source,
            vendor: Vendor::Avigilon,
            kind: n.kind,
            code: n.code,
            state: n.state,
            channel: None,
            rule: n.rule,
            occurred_at: n.occurred_at,
            received_at,
            plate: None,
            face: None,
            objects: n.objects,
            counts: None,
            data: Some(data),
            images: Vec::new(),
            schedule: None,
        };
        if let Some(s) = &self.schedule {
            crate::schedule::tag(s, &mut event);
        }
        event
    }

    /// Store events in one write, retrying while the store cannot take them. For the retry,
    /// their JSON is kept aside (the write consumes the events): much cheaper than a copy of
    /// the events, and needed only when the store fails.
    async fn store_events(
        &self,
        events: Vec<PreparedEvent>,
        stop: &CancellationToken,
    ) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let kept: Vec<(String, bool)> = events.iter().map(|p| (p.json().to_owned(), p.is_history())).collect();
        let mut events = Some(events);
        let mut warned = false;
        loop {
            let attempt = match events.take() {
                Some(e) => e,
                None => kept
                    .iter()
                    .map(|(json, history)| {
                        let event = serde_json::from_str(json).map_err(|e| StoreError::Database(e.to_string()))?;
                        self.store.prepare(event, *history)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            match self.store.append_prepared(attempt).await {
                Ok(outcomes) => return Ok(outcomes),
                Err(StoreError::Closed) => return Err(StoreError::Closed),
                Err(e) => {
                    if !warned {
                        tracing::error!(site = %self.cfg.name, error = %e, pending = kept.len(), "events could not be stored; retrying every second (the cursors stay)");
                        warned = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(STORE_RETRY) => {}
                        () = stop.cancelled() => return Err(e),
                    }
                }
            }
        }
    }

    /// Keep an entry that is not an event (no id: no idempotency key).
    async fn dead_letter(&self, cam: &Camera, e: EventError) {
        let reason = format!("avigilon {}: {}", e.problem.as_str(), e.problem);
        tracing::warn!(site = %self.cfg.name, camera = %cam.id, reason = %reason, "an event could not be stored; kept as a dead letter");
        self.health.rejected(&reason);
        let letter = DeadLetter {
            source: self.cfg.name.clone(),
            received_at: camgate_core::time::now_ms(),
            reason,
            payload: e.event.to_string().into_bytes(),
        };
        if let Err(e) = self.store.dead_letter(letter).await {
            tracing::warn!(site = %self.cfg.name, error = %e, "could not store a dead letter");
        }
    }
}

/// `t + by`, saturating.
fn shift(t: Timestamp, by: SignedDuration) -> Timestamp {
    camgate_protocols::avigilon::to_server_time(t, by)
}

/// An event's `timestamp` as sent (server clock).
fn event_time(v: &serde_json::Value) -> Option<Timestamp> {
    v.get("timestamp")?.as_str()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_saturates() {
        let t: Timestamp = "2026-05-17T19:00:00Z".parse().unwrap();
        assert_eq!(shift(t, SignedDuration::from_secs(-3)).to_string(), "2026-05-17T18:59:57Z");
        assert_eq!(shift(Timestamp::MAX, SignedDuration::from_secs(1)), Timestamp::MAX);
    }

    #[test]
    fn event_time_reads_the_server_timestamp() {
        let v = serde_json::json!({"timestamp": "2026-05-17T19:00:12.345Z"});
        assert_eq!(event_time(&v).unwrap().to_string(), "2026-05-17T19:00:12.345Z");
        assert_eq!(event_time(&serde_json::json!({})), None);
    }
}
