//! Avigilon Control Center sites, polled through the **Web Endpoint** REST API
//! (`https://<server>:8443/mt/api/rest/v1`). Protocol facts: `docs/protocols/avigilon.md` of
//! the shared folder; the pure half is [`camgate_protocols::avigilon`]. User documentation:
//! `docs/avigilon.md`.
//!
//! Each `[[avigilon]]` entry gets one task (a supervisor):
//!
//! 1. **Connect**: log in ([`client`]), list the servers (`GET server/ids`) and, when needed,
//!    the cameras (`GET cameras`: with `discover_cameras`, without a camera list, or when the
//!    site has several servers and each camera's server must be known). Failures are retried
//!    with a back-off from 1 s to 5 min; a refused login is `auth_failed`.
//! 2. **Poll** ([`poll`]): a cycle every `poll_interval` on a fixed cadence (the next cycle
//!    is due one interval after the last was due, never two at once; a cycle that overruns
//!    delays the next, it does not pile up), each camera's window fetched (at most
//!    `concurrency` requests in flight per ACC server), the cycle's events stored in time
//!    order, then the cursors of the cameras fetched advanced. A cycle in which every
//!    camera failed backs off like a failed connect; a partial failure is retried at the
//!    next cycle (the failed cameras' cursors did not move).
//! 3. **Stop**: the cycle in flight is cut short (its cursors do not move), the session
//!    is logged out.
//!
//! With `active = "schedule"` polling runs only inside the `[schedule]` windows
//! ([`crate::schedule::ScheduleGate::run_windows`]); the last poll of a window ends at the
//! window's end, after the settle delay.
//!
//! Health: `/api/sources` shows the site (mode `pull`) as `connecting`, `connected`,
//! `disconnected` (every camera failed) or `auth_failed`, with `last_error`. Changes are
//! `device` events with source = the site's name: `connected`, `disconnected`,
//! `auth_failed`.

mod client;
mod poll;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use camgate_core::backoff::Backoff;
use camgate_core::config::{ActiveMode, AvigilonConfig};
use camgate_core::schedule::Schedule;
use camgate_core::{Event, Kind, State, Vendor};
use camgate_protocols::avigilon::{
    CAMERAS_PATH, SERVER_IDS_PATH, Verbosity, cameras_query, parse_camera_ids, parse_cameras, parse_servers,
};
use jiff::Timestamp;
use rand::rngs::StdRng;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::client::{CallError, Client};
pub use self::poll::{Camera, CycleReport, MAX_PAGES, Poller, SETTLE};
use crate::metrics::{Metrics, SourceLabels};
use crate::schedule::ScheduleGate;
use crate::sources::{Registry, SourceHandle, SourceState};
use crate::store::{Appended, Store};

/// First wait after a failed connect or an all-failed cycle.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What the Avigilon sources share.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Registry,
    /// The `[schedule]`, when one is configured: events are tagged with its windows, and
    /// `active = "schedule"` sites poll only inside them.
    pub schedule: Option<Arc<Schedule>>,
}

/// Start one supervisor per `[[avigilon]]` entry. Fails (before anything starts) when an
/// entry's URL or TLS settings cannot be used or its `cameras_file` cannot be read; the
/// error is (entry name, message).
pub fn start(
    sites: &[AvigilonConfig],
    ctx: &Context,
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, (String, String)> {
    let mut prepared = Vec::with_capacity(sites.len());
    for cfg in sites {
        let err = |m: String| (cfg.name.clone(), m);
        let listed = match (&cfg.cameras, &cfg.cameras_file) {
            (Some(ids), _) => Some(ids.clone()),
            (None, Some(path)) => {
                let bytes = std::fs::read(path).map_err(|e| err(format!("cameras_file {}: {e}", path.display())))?;
                Some(parse_camera_ids(&bytes).map_err(|e| err(format!("cameras_file {}: {e}", path.display())))?)
            }
            (None, None) => None,
        };
        if cfg.active == ActiveMode::Schedule && ctx.schedule.as_ref().is_none_or(|s| s.windows().is_empty()) {
            return Err(err("active = \"schedule\" but the [schedule] has no window".into()));
        }
        let cfg = Arc::new(cfg.clone());
        let client = Client::new(cfg.clone(), ctx.metrics.clone()).map_err(err)?;
        if client.base().scheme() == "https" && !cfg.verify_tls() {
            tracing::warn!(site = %cfg.name, "TLS certificate checks are OFF for this Web Endpoint (its certificate is usually self-signed); set ca_bundle to the server's certificate to turn them on");
        }
        prepared.push(Site::new(cfg, Arc::new(client), listed, ctx));
    }
    Ok(prepared.into_iter().map(|s| tokio::spawn(s.run(stop.clone()))).collect())
}

/// One site's supervisor.
struct Site {
    cfg: Arc<AvigilonConfig>,
    client: Arc<Client>,
    /// The configured camera ids (`cameras` or `cameras_file`); `None`: every camera.
    listed: Option<Vec<String>>,
    store: Store,
    metrics: Arc<Metrics>,
    health: SourceHandle,
    schedule: Option<Arc<Schedule>>,
}

/// The connection state as `device` events tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Unknown,
    Up,
    Down,
    AuthFailed,
}

impl Site {
    fn new(cfg: Arc<AvigilonConfig>, client: Arc<Client>, listed: Option<Vec<String>>, ctx: &Context) -> Site {
        let health = ctx.registry.register(&cfg.name, Vendor::Avigilon, "pull", SourceState::Connecting);
        Site {
            cfg,
            client,
            listed,
            store: ctx.store.clone(),
            metrics: ctx.metrics.clone(),
            health,
            schedule: ctx.schedule.clone(),
        }
    }

    async fn run(self, stop: CancellationToken) {
        let mut rng = rand::make_rng::<StdRng>();
        let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_MAX);
        let mut link = Link::Unknown;
        tracing::info!(site = %self.cfg.name, url = %self.client.base(), cameras = self.listed.as_ref().map_or(0, Vec::len), discover = self.cfg.discover_cameras, "Avigilon source: connecting");
        let cameras = loop {
            match self.topology().await {
                Ok(c) => break c,
                Err(e) => {
                    self.failed(&e, &mut link).await;
                    let delay = backoff.next_delay(&mut rng);
                    tracing::warn!(site = %self.cfg.name, error = %e, retry_in_ms = delay.as_millis() as u64, "Avigilon source: cannot connect");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.cancelled() => {
                            self.finish(link).await;
                            return;
                        }
                    }
                }
            }
        };
        backoff.reset();
        let poller = Poller::new(
            self.cfg.clone(),
            self.client.clone(),
            self.store.clone(),
            self.health.clone(),
            cameras,
            self.schedule.clone(),
        );
        match poller.load_cursors().await {
            Ok(n) => {
                tracing::info!(site = %self.cfg.name, cameras = poller.cameras.len(), resumed = n, "Avigilon source: polling every {}", self.cfg.poll_interval)
            }
            Err(e) => {
                tracing::warn!(site = %self.cfg.name, error = %e, "cannot read the poll cursors; cameras start as on a first run")
            }
        }
        self.up(&mut link).await;
        let mut state = PollState { backoff, rng, link };
        match (self.cfg.active, &self.schedule) {
            (ActiveMode::Schedule, Some(schedule)) => {
                let gate = ScheduleGate::new(schedule.clone());
                let state = tokio::sync::Mutex::new(&mut state);
                let result = gate
                    .run_windows(&stop, |window, in_window| {
                        let (poller, state, this, stop) = (&poller, &state, &self, &stop);
                        async move {
                            tracing::info!(site = %this.cfg.name, schedule = %window.name, until = %window.end, "scheduled window open: polling");
                            let mut st = state.lock().await;
                            this.poll_loop(poller, &mut st, &in_window, Some((window.start, window.end))).await;
                            if !stop.is_cancelled() {
                                // Events up to the window's end, once the server has written them.
                                tokio::select! {
                                    () = tokio::time::sleep(poller.settle()) => {}
                                    () = stop.cancelled() => return,
                                }
                                loop {
                                    let report = poller.cycle(window.end, Some(window.start), stop).await;
                                    let ok = this.after_cycle(&report, &mut st).await;
                                    // A cycle that reached its event budget left the rest of
                                    // the window for another one.
                                    if report.deferred == 0 || !ok || stop.is_cancelled() {
                                        break;
                                    }
                                }
                                tracing::info!(site = %this.cfg.name, schedule = %window.name, "scheduled window closed: polling paused");
                            }
                        }
                    })
                    .await;
                if result.is_ok() {
                    tracing::info!(site = %self.cfg.name, "no scheduled window is left; the Avigilon source is idle");
                    self.health.update(|h| h.last_error = Some("no scheduled window is left".into()));
                    stop.cancelled().await;
                }
            }
            _ => self.poll_loop(&poller, &mut state, &stop, None).await,
        }
        self.finish(state.link).await;
    }

    /// Cycles on a fixed cadence until `until` is cancelled. `window`: the scheduled
    /// window's (start, end), which bound the poll windows.
    async fn poll_loop(
        &self,
        poller: &Poller,
        st: &mut PollState,
        until: &CancellationToken,
        window: Option<(Timestamp, Timestamp)>,
    ) {
        let interval = self.cfg.poll_interval.get();
        let mut due = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = until.cancelled() => return,
            }
            let started = Instant::now();
            let mut end = Timestamp::now() - poller.settle();
            if let Some((_, w_end)) = window {
                end = end.min(w_end);
            }
            let report = poller.cycle(end, window.map(|w| w.0), until).await;
            let took = started.elapsed();
            self.metrics
                .avigilon_cycle_seconds
                .get_or_create(&SourceLabels::new(&self.metrics.source_label(&self.cfg.name)))
                .observe(took.as_secs_f64());
            if until.is_cancelled() {
                return;
            }
            let ok = self.after_cycle(&report, st).await;
            due += interval;
            let now = Instant::now();
            if report.deferred > 0 {
                // The cycle reached its event budget (a backlog): catch up at once.
                due = now;
            } else if due < now {
                tracing::warn!(site = %self.cfg.name, took_ms = took.as_millis() as u64, poll_interval = %self.cfg.poll_interval, "a poll cycle took longer than poll_interval; the next starts now (lower concurrency limits or more cameras per site slow cycles)");
                due = now;
            }
            if !ok {
                let delay = st.backoff.next_delay(&mut st.rng);
                due = due.max(now + delay);
            }
        }
    }

    /// Health, logs and device events after a cycle; `false` when the site should back off
    /// (every camera failed).
    async fn after_cycle(&self, report: &CycleReport, st: &mut PollState) -> bool {
        let s = &report.stats;
        tracing::debug!(site = %self.cfg.name, cameras = report.cameras, failed = report.failed, deferred = report.deferred, pages = s.pages, fetched = s.fetched, new = s.new, duplicates = s.duplicates, dead_letters = s.dead_letters, fetch_ms = report.fetch_time.as_millis() as u64, store_ms = report.store_time.as_millis() as u64, "poll cycle done");
        match &report.error {
            None => {
                st.backoff.reset();
                self.up(&mut st.link).await;
                true
            }
            Some(e) => {
                let message = e.to_string();
                self.health.update(|h| h.last_error = Some(message.clone()));
                if report.auth_failed && report.all_failed() {
                    self.auth_failed(&message, &mut st.link).await;
                    false
                } else if report.all_failed() {
                    self.down(&message, &mut st.link).await;
                    false
                } else {
                    tracing::warn!(site = %self.cfg.name, failed = report.failed, cameras = report.cameras, error = %message, "some cameras could not be polled; their windows are fetched again next cycle");
                    self.up(&mut st.link).await;
                    true
                }
            }
        }
    }

    /// Log in, then learn the servers and the cameras to poll.
    async fn topology(&self) -> Result<Vec<Camera>, CallError> {
        self.client.connect().await?;
        let servers = self.client.get(SERVER_IDS_PATH, "", parse_servers).await?;
        for r in &servers.rejected {
            tracing::warn!(site = %self.cfg.name, entry = %r, "GET server/ids: an entry was skipped");
        }
        let server_ids: Vec<String> = servers.items.iter().map(|s| s.id.clone()).collect();
        if server_ids.is_empty() {
            return Err(CallError::Response {
                route: SERVER_IDS_PATH,
                error: camgate_protocols::avigilon::ApiError {
                    http_status: 200,
                    status_code: None,
                    code: None,
                    name: None,
                    message: Some("the site lists no ACC server".into()),
                }
                .into(),
            });
        }
        let need_listing = self.cfg.discover_cameras || self.listed.is_none() || server_ids.len() > 1;
        let listing = if need_listing {
            match self.client.get(CAMERAS_PATH, cameras_query(Verbosity::Low), parse_cameras).await {
                Ok(l) => Some(l.items),
                Err(e) if self.listed.is_some() && !e.is_auth() => {
                    tracing::warn!(site = %self.cfg.name, error = %e, "GET cameras failed; each listed camera is polled on every server");
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let known: HashMap<&str, &camgate_protocols::avigilon::Camera> =
            listing.iter().flatten().map(|c| (c.id.as_str(), c)).collect();
        let ids: Vec<String> = match &self.listed {
            Some(ids) => ids.clone(),
            None => listing.iter().flatten().map(|c| c.id.clone()).collect(),
        };
        let mut cameras = Vec::with_capacity(ids.len());
        let mut seen = BTreeSet::new();
        for id in ids {
            if !seen.insert(id.clone()) {
                continue;
            }
            let found = known.get(id.as_str());
            if listing.is_some() && found.is_none() {
                tracing::warn!(site = %self.cfg.name, camera = %id, "a listed camera is not in GET cameras; polling it on every server");
            }
            let servers = match found.and_then(|c| c.server_id.clone()).filter(|s| server_ids.contains(s)) {
                Some(s) => vec![s],
                None => server_ids.clone(),
            };
            let source = found.and_then(|c| c.name.clone()).unwrap_or_else(|| id.clone());
            cameras.push(Camera { id, source, servers });
        }
        tracing::info!(site = %self.cfg.name, servers = server_ids.len(), cameras = cameras.len(), "Avigilon site: servers and cameras known");
        Ok(cameras)
    }

    async fn up(&self, link: &mut Link) {
        self.health.update(|h| {
            if h.state != SourceState::Connected {
                h.state = SourceState::Connected;
                h.connected_since = Some(Timestamp::now());
            }
            h.last_byte = Some(Timestamp::now());
        });
        if *link != Link::Up {
            if *link != Link::Unknown {
                self.health.update(|h| h.reconnects += 1);
            }
            *link = Link::Up;
            tracing::info!(site = %self.cfg.name, url = %self.client.base(), "Avigilon Web Endpoint connected");
            self.device_event("connected", State::Start, serde_json::json!({ "url": self.client.base().as_str() }))
                .await;
        }
    }

    async fn down(&self, why: &str, link: &mut Link) {
        self.health.update(|h| {
            h.state = SourceState::Disconnected;
            h.connected_since = None;
        });
        if *link == Link::Up {
            tracing::warn!(site = %self.cfg.name, reason = %why, "Avigilon Web Endpoint lost: every camera failed");
            self.device_event("disconnected", State::Stop, serde_json::json!({ "reason": why })).await;
        }
        if *link != Link::AuthFailed {
            *link = Link::Down;
        }
    }

    async fn auth_failed(&self, why: &str, link: &mut Link) {
        self.health.update(|h| {
            h.state = SourceState::AuthFailed;
            h.connected_since = None;
            h.auth_failures += 1;
        });
        if *link != Link::AuthFailed {
            *link = Link::AuthFailed;
            tracing::error!(site = %self.cfg.name, user = %self.cfg.username, reason = %why, "the Avigilon Web Endpoint refused the login; check username/password, the user nonce and key, and the clocks (timestamp_offset)");
            let data = serde_json::json!({ "reason": why, "username": self.cfg.username.to_string() });
            self.device_event("auth_failed", State::Pulse, data).await;
        }
    }

    /// A connect attempt failed.
    async fn failed(&self, e: &CallError, link: &mut Link) {
        let message = e.to_string();
        self.health.update(|h| h.last_error = Some(message.clone()));
        if e.is_auth() {
            self.auth_failed(&message, link).await;
        } else {
            self.down(&message, link).await;
        }
    }

    async fn finish(&self, link: Link) {
        self.client.logout().await;
        if link == Link::Up {
            self.device_event("disconnected", State::Stop, serde_json::json!({ "reason": "camgate is stopping" }))
                .await;
        }
        self.health.update(|h| {
            h.state = SourceState::Stopped;
            h.connected_since = None;
        });
    }

    /// A `device` event: the connection to the site changed.
    async fn device_event(&self, code: &str, state: State, data: serde_json::Value) {
        let mut event = Event::new(String::new(), &self.cfg.name, Vendor::Avigilon, Kind::Device);
        event.key = format!("avigilon-device:{}:{code}:{}", self.cfg.name, event.received_at.as_millisecond());
        event.code = Some(code.into());
        event.state = Some(state);
        event.data = Some(data);
        match self.store.append(event).await {
            Ok(o) => self.health.event(matches!(o, Appended::New(_))),
            Err(e) => tracing::warn!(site = %self.cfg.name, error = %e, "could not store the device event"),
        }
    }
}

/// What the poll loop carries across cycles (and scheduled windows).
struct PollState {
    backoff: Backoff,
    rng: StdRng,
    link: Link,
}
