//! One poll cycle: every camera's window fetched, the cycle's events stored in one write in
//! time order, and the cursors advanced (avigilon.md §2, legacy bugs 3-6 of §6.4).
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
//! # Exactly once
//!
//! Every event's key is `avigilon:<originatingServerId>:<thisId>`; the store keeps one
//! event per key, so an event fetched twice (window overlap, a page that repeats the last
//! event, a duplicate delivery, a cycle repeated after a crash) is stored once. The windows
//! fetched in a cycle go to the store in one `append_many`; only after it returned
//! (committed) are their cameras' cursors written, through the same writer. Any error (a
//! failed request, a store that refused the write) leaves the cursor where it was: the whole
//! window is fetched again in the next cycle, and what was already stored comes back as
//! duplicates.
//!
//! # Order
//!
//! Zones count in the order events are stored, and a zone's `max(0, ...)` clamp makes that
//! order matter: an exit stored before the entry it follows is lost at 0. So the cycle's
//! events are stored in time order (`occurred_at`, each camera's own order kept for equal
//! times), not camera by camera: a zone's entries seen by one camera and its exits seen by
//! another come in the order they happened. (A window fetched a cycle late, after an error,
//! still comes after what the other cameras stored meanwhile.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_core::config::AvigilonConfig;
use camgate_core::schedule::Schedule;
use camgate_core::{Event, EventId, Vendor};
use camgate_protocols::avigilon::{
    EVENTS_SEARCH_PATH, EventError, EventSearch, NormaliseOptions, Normalised, iso_millis, normalise, parse_events,
};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use super::client::{CallError, Client};
use crate::sources::SourceHandle;
use crate::store::{Appended, DeadLetter, Store, StoreError};

/// Pages fetched per camera and window at most.
pub const MAX_PAGES: u32 = 1000;
/// A window ends this long before now (at most; `poll_interval / 2` when that is shorter):
/// the server may still be writing events of the last instant.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How long to wait before trying a store write again that failed (disk full, ...).
const STORE_RETRY: Duration = Duration::from_secs(1);

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
    events: Vec<Event>,
    /// Where the camera's cursor goes once the events are stored (`None`: nothing was
    /// fetched, it stays).
    reached: Option<Timestamp>,
    stats: CameraStats,
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
    /// Camera id → end of its last committed window (server clock).
    cursors: Mutex<HashMap<String, Timestamp>>,
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
        Poller { cfg, client, store, health, cameras, sources, schedule, cursors: Mutex::new(HashMap::new()) }
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

    /// One cycle over every camera, at most `concurrency` at a time. `end` is the windows'
    /// end by our clock; `floor` (our clock) the earliest `from` (a scheduled window's start).
    pub async fn cycle(&self, end: Timestamp, floor: Option<Timestamp>, stop: &CancellationToken) -> CycleReport {
        let offset = self.cfg.timestamp_offset.get();
        let end = shift(end, offset);
        let floor = floor.map(|f| shift(f, offset));
        // By index: a closure over `&Camera` is not general enough for a spawned future.
        let mut results = futures::stream::iter(0..self.cameras.len())
            .map(|i| async move { (i, self.fetch_window(&self.cameras[i], end, floor, stop).await) })
            .buffer_unordered(self.cfg.concurrency.max(1));
        let mut report = CycleReport { cameras: self.cameras.len(), ..CycleReport::default() };
        let mut fetched: Vec<(usize, Window)> = Vec::new();
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(w) => fetched.push((i, w)),
                Err(e) => self.failed(&mut report, &self.cameras[i], e),
            }
        }
        drop(results);
        if let Err(e) = self.commit(&mut fetched, &mut report, stop).await {
            for (i, _) in &fetched {
                self.failed(&mut report, &self.cameras[*i], WindowError::Store(e.clone()));
            }
        }
        report
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

    /// Store the fetched windows' events in one write, in time order, then move their
    /// cameras' cursors.
    async fn commit(
        &self,
        fetched: &mut [(usize, Window)],
        report: &mut CycleReport,
        stop: &CancellationToken,
    ) -> Result<(), StoreError> {
        let mut events: Vec<(usize, Event)> = Vec::new();
        for (slot, (_, w)) in fetched.iter_mut().enumerate() {
            events.extend(w.events.drain(..).map(|e| (slot, e)));
        }
        // Stable: a camera's events keep the server's order among equal times.
        events.sort_by_key(|(_, e)| e.occurred_at.unwrap_or(e.received_at));
        let (slots, events): (Vec<usize>, Vec<Event>) = events.into_iter().unzip();
        let outcomes = self.store_events(events, stop).await?;
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
        // The events are committed: now the cursors may move.
        let moved: Vec<(&Camera, Timestamp)> =
            fetched.iter().filter_map(|(i, w)| Some((&self.cameras[*i], w.reached?))).collect();
        // Sent together, so the writer can commit them in one transaction.
        futures::future::join_all(moved.iter().map(|(cam, t)| async move {
            if let Err(e) = self.store.set_source_cursor(&self.cfg.name, &cam.id, &t.to_string()).await {
                // Not fatal: the window is fetched again after a restart (duplicates).
                tracing::warn!(site = %self.cfg.name, camera = %cam.id, error = %e, "could not record the poll cursor");
            }
        }))
        .await;
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

    /// Fetch one camera's window `[cursor − lookback, end)` (server clock).
    async fn fetch_window(
        &self,
        cam: &Camera,
        end: Timestamp,
        floor: Option<Timestamp>,
        stop: &CancellationToken,
    ) -> Result<Window, WindowError> {
        let lookback = SignedDuration::try_from(self.cfg.lookback.get()).unwrap_or(SignedDuration::ZERO);
        let interval = SignedDuration::try_from(self.cfg.poll_interval.get()).unwrap_or(SignedDuration::ZERO);
        let cursor = self.lock().get(&cam.id).copied();
        let mut from = match cursor {
            Some(c) => shift(c, -lookback),
            None => shift(end, -(interval + lookback)),
        };
        if let Some(f) = floor {
            from = from.max(f);
        }
        let mut stats = CameraStats::default();
        if from >= end {
            // Nothing to fetch; the cursor stays where it is.
            return Ok(Window { events: Vec::new(), reached: None, stats });
        }
        let mut raw = Vec::new();
        // Where the window really ends: `end`, or the last event's time when the page cap cut it.
        let mut reached = end;
        for server in &cam.servers {
            let search = EventSearch::TimeRange {
                server_id: server,
                from,
                to: end,
                topics: &self.cfg.topics,
                device_ids: std::slice::from_ref(&cam.id),
                limit: Some(self.cfg.limit),
            };
            let mut page = self.client.get(EVENTS_SEARCH_PATH, &search.query(), parse_events).await?;
            let mut pages = 1u32;
            loop {
                if stop.is_cancelled() {
                    return Err(WindowError::Stopped);
                }
                let next = page.continuation(self.cfg.limit).map(str::to_owned);
                let last_time = page.events.last().and_then(event_time);
                raw.append(&mut page.events);
                let Some(token) = next else { break };
                if pages >= MAX_PAGES {
                    let cut = last_time.unwrap_or(from).max(from);
                    tracing::warn!(site = %self.cfg.name, camera = %cam.id, server = %server, pages, cut_at = %iso_millis(cut), "a poll window holds more than {MAX_PAGES} pages; storing what was fetched and fetching the rest from there next cycle");
                    reached = reached.min(cut);
                    break;
                }
                page = self
                    .client
                    .get(EVENTS_SEARCH_PATH, &EventSearch::Continue { token: &token }.query(), parse_events)
                    .await?;
                pages += 1;
            }
            stats.pages += pages;
        }
        stats.fetched = raw.len() as u64;
        let opts = NormaliseOptions { server_clock_offset: self.cfg.timestamp_offset.get() };
        let received_at = camgate_core::time::now_ms();
        let mut events = Vec::with_capacity(raw.len());
        for value in raw {
            match normalise(value, &opts) {
                Ok(n) => events.push(self.to_event(n, cam, received_at)),
                Err(e) => {
                    self.dead_letter(cam, e).await;
                    stats.dead_letters += 1;
                }
            }
        }
        Ok(Window { events, reached: Some(reached), stats })
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

    /// Store a cycle's events in one write, retrying while the store cannot take them.
    async fn store_events(&self, events: Vec<Event>, stop: &CancellationToken) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut warned = false;
        loop {
            match self.store.append_many(events.clone()).await {
                Ok(outcomes) => return Ok(outcomes),
                Err(StoreError::Closed) => return Err(StoreError::Closed),
                Err(e) => {
                    if !warned {
                        tracing::error!(site = %self.cfg.name, error = %e, pending = events.len(), "events could not be stored; retrying every second (the cursors stay)");
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
