//! A simulated Avigilon ACC **Web Endpoint** (WEP): the REST API camgate's Avigilon source
//! polls, served over HTTPS with a self-signed certificate (or plain HTTP), under
//! `/mt/api/rest/v1`.
//!
//! Written from `docs/protocols/avigilon.md` of the shared folder (§1 authentication and
//! sessions, §2 events and CONTINUE paging, §3 cameras and servers, §7 emulator spec),
//! independently of camgate's own Avigilon parser, so that it can serve as an oracle:
//!
//! * `POST /login` (§1.1, §1.2): the token `nonce:ts:hex[:integrationId]` must carry a known
//!   nonce, `hex` = lowercase SHA-256 of `ts + key`, and `|now - ts| <=` [skew](AcsServerBuilder::token_skew);
//!   else `403`. Wrong username/password: `401`. Missing field or bad JSON: `400`; a body
//!   that is not `application/json`: `415`. Success: `result.session` (~170 chars of URL-safe
//!   base64), `externalUserId`, `domainId`.
//! * Sessions (§1.3, §1.4): header `x-avg-session` or `?session=` (body `session` for
//!   `POST /logout`); missing, unknown or expired: `401`. Idle expiry is
//!   [configurable](AcsServerBuilder::session_idle); [`Faults::session_lifetime`] and
//!   [`AcsServer::expire_sessions`] end sessions mid-run. [`AcsServerBuilder::require_query_session`]
//!   mimics servers older than 7.12 (header alone refused on `GET`).
//! * `GET /health` (text `GOOD`/`WARN`/`BAD`, no session), `GET /server/ids`, `GET /sites`,
//!   `GET /cameras` (with `verbosity`), `GET /wep-capabilities` (shape a guess).
//! * `GET /events/search` (§2): `TIME_RANGE` (`from`, `to`, `serverId` required; repeated
//!   `eventTopics` and `deviceIds`; `limit` default 1000; ascending `timestamp`; `[from, to)`
//!   by default; `token` when more remain), `CONTINUE` (`token` only; an unknown or expired
//!   token is `400`; `serverId`/`limit` refused by default, the third-party claim), `ACTIVE`.
//!   Continuation tokens are standard base64 that always contain `+`, `/` and `=`: a client
//!   that does not URL-encode them gets `400`.
//! * Errors use the envelope `{"status":"error","statusCode":N,"message":..,"meta":{"code":..,"name":..}}`
//!   (§1.5); `meta` values other than `-25 NOT_FOUND` are the simulator's own guesses.
//!
//! Events come from a [`Scenario`]: DEVICE_ANALYTICS_START/STOP pairs in the doc's JSON shape
//! (§2.3). An event exists from its `timestamp` plus its delivery delay (server wall-clock
//! time), so a live scenario unfolds while a client polls, and late events land in windows
//! already polled. [`Scenario::truth`] / [`AcsServer::truth`] give the counts a correct
//! client must end up with.
//!
//! Faults ([`Faults`], switchable at run time with [`AcsServer::update_faults`]): clock offset
//! (login `403`), session lifetime (mid-run `401`), seeded `500`/`503`/`504` on a fraction of
//! requests or on the next N ([`AcsServer::fail_next`]), latency per request, the last event
//! of a page repeated at the start of the next, a token on the last page. Scenario-level:
//! equal-timestamp bursts across a page boundary, late events, duplicate deliveries, several
//! servers, messy rule names.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use camgate_sim::avigilon::{AcsServer, CountingSpec, Scenario};
//!
//! let spec = CountingSpec { entries: 10_000, exits: 9_400, zones: 3, cameras: 40, ..CountingSpec::default() };
//! let scenario = Scenario::counting(&spec).expect("valid spec");
//! let server = AcsServer::builder()
//!     .credentials("operator", "secret")
//!     .nonce_key("SIMNONCE#01", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
//!     .scenario(scenario)
//!     .tls(true)
//!     .bind("127.0.0.1:0")
//!     .await?;
//! println!("WEP at {} (pin {:?})", server.base_url(), server.cert_pem());
//! // ... run camgate's poller against it, then compare with server.truth().zones ...
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod http;
mod scenario;
mod store;
mod token;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use scenario::{
    CameraSpec, CountingSpec, OBJECT_COUNTING_ENTER, OBJECT_COUNTING_EXIT, OBJECT_PRESENT, Occurrence, RuleSpec,
    RuleTruth, Scenario, ScenarioBuilder, ScenarioError, ServerSpec, StopObjects, Truth, ZoneTruth, normalize_name,
};
pub use store::{TOPIC_START, TOPIC_STOP, format_ms};
pub use token::authorization_token;

/// The REST prefix every route is under.
pub const API_PREFIX: &str = "/mt/api/rest/v1";

/// Default username.
pub const DEFAULT_USER: &str = "administrator";
/// Default password.
pub const DEFAULT_PASSWORD: &str = "sim-password";
/// Default integration nonce (contains `#` and capitals, as real ones do, §1.1).
pub const DEFAULT_NONCE: &str = "SIM#Nonce0001";
/// Default integration key (64 hex characters, made up for the simulator).
pub const DEFAULT_USER_KEY: &str = "5a1d0c0ffee0ddba11c0de5eedfacade5a1d0c0ffee0ddba11c0de5eedfacade";

/// What `GET /health` answers (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// `200 GOOD`.
    #[default]
    Good,
    /// `200 WARN`.
    Warn,
    /// `500 BAD`.
    Bad,
}

/// Faults, switchable while the server runs ([`AcsServer::update_faults`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// The server clock used to check login tokens is this many seconds ahead (negative:
    /// behind) of the host clock; beyond the skew, logins get `403`. The HTTP `Date` header
    /// follows it. Default 0.
    pub clock_offset_secs: i64,
    /// Fraction (0..=1) of requests (all but `/health`) answered with one of
    /// `error_statuses` (seeded: [`AcsServerBuilder::seed`]). Default 0.
    pub error_rate: f64,
    /// Statuses for `error_rate`, picked at random. Default `[500, 503, 504]`.
    pub error_statuses: Vec<u16>,
    /// Sleep this long before answering each request. Default 0.
    pub latency: Duration,
    /// Sessions end this long after login, however active (a mid-run `401`). Default none.
    pub session_lifetime: Option<Duration>,
    /// Each CONTINUE page starts with the last event of the previous page again (same event
    /// in two pages; counts toward `limit`, only when `limit >= 2`). Default false.
    pub repeat_last_on_continue: bool,
    /// Return a `token` even on the last page (CONTINUE then returns empty pages with a
    /// token: the client must stop on an empty page). Default false.
    pub token_on_last_page: bool,
    /// `GET /health`.
    pub health: Health,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            clock_offset_secs: 0,
            error_rate: 0.0,
            error_statuses: vec![500, 503, 504],
            latency: Duration::ZERO,
            session_lifetime: None,
            repeat_last_on_continue: false,
            token_on_last_page: false,
            health: Health::Good,
        }
    }
}

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path, e.g. `/mt/api/rest/v1/events/search`.
    pub path: String,
    /// Raw query string (still percent-encoded), if any.
    pub query: Option<String>,
    /// Whether an `x-avg-session` header came with it.
    pub header_session: bool,
}

/// Counters of a running server, readable at any time (read with [`Stats::get`]).
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Successful logins.
    pub logins: AtomicU64,
    /// Refused logins (any status).
    pub logins_refused: AtomicU64,
    /// Logouts.
    pub logouts: AtomicU64,
    /// Sessions found expired (idle or lifetime) when used.
    pub sessions_expired: AtomicU64,
    /// `400` answers.
    pub sent_400: AtomicU64,
    /// `401` answers.
    pub sent_401: AtomicU64,
    /// `403` answers.
    pub sent_403: AtomicU64,
    /// `404` answers.
    pub sent_404: AtomicU64,
    /// `TIME_RANGE` searches answered with events.
    pub searches: AtomicU64,
    /// `CONTINUE` searches answered with events.
    pub continues: AtomicU64,
    /// `ACTIVE` searches answered.
    pub active_queries: AtomicU64,
    /// Events put in search answers (duplicates included).
    pub events_served: AtomicU64,
    /// Of those, repeated ones (duplicate copies and page-overlap repeats).
    pub duplicates_served: AtomicU64,
    /// `5xx` answers injected by [`Faults::error_rate`] or [`AcsServer::fail_next`].
    pub faults_injected: AtomicU64,
    /// Requests delayed by [`Faults::latency`].
    pub delayed: AtomicU64,
    /// `GET /cameras` answered.
    pub camera_lists: AtomicU64,
    /// Requests being answered right now (latency included).
    pub in_flight: AtomicU64,
    /// The most requests that were being answered at once.
    pub max_in_flight: AtomicU64,
    requests_log: Mutex<Vec<RequestRecord>>,
}

/// Requests kept by [`Stats::requests_log`] (later ones are only counted).
const MAX_RECORDED: usize = 200_000;

impl Stats {
    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The first 200 000 requests received, in order.
    pub fn requests_log(&self) -> Vec<RequestRecord> {
        self.requests_log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn record(&self, r: RequestRecord) {
        let mut log = self.requests_log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() < MAX_RECORDED {
            log.push(r);
        }
    }
}

/// Configuration of an [`AcsServer`]; see [`AcsServer::builder`].
#[derive(Debug, Clone)]
pub struct AcsServerBuilder {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) keys: Vec<(String, String)>,
    pub(crate) token_skew: Duration,
    pub(crate) session_idle: Duration,
    pub(crate) require_query_session: bool,
    pub(crate) from_inclusive: bool,
    pub(crate) to_inclusive: bool,
    pub(crate) max_limit: Option<u32>,
    pub(crate) strict_continue: bool,
    pub(crate) continuation_ttl: Duration,
    pub(crate) scenario: Option<Scenario>,
    pub(crate) tls: bool,
    pub(crate) tls_names: Vec<String>,
    pub(crate) faults: Faults,
    pub(crate) seed: u64,
}

impl Default for AcsServerBuilder {
    fn default() -> Self {
        AcsServerBuilder {
            user: DEFAULT_USER.into(),
            password: DEFAULT_PASSWORD.into(),
            keys: Vec::new(),
            token_skew: Duration::from_secs(300),
            session_idle: Duration::from_secs(3600),
            require_query_session: false,
            from_inclusive: true,
            to_inclusive: false,
            max_limit: None,
            strict_continue: true,
            continuation_ttl: Duration::from_secs(600),
            scenario: None,
            tls: false,
            tls_names: Vec::new(),
            faults: Faults::default(),
            seed: 0x5EED,
        }
    }
}

impl AcsServerBuilder {
    /// The one account (default [`DEFAULT_USER`] / [`DEFAULT_PASSWORD`]).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// Accept tokens from this integration (`userNonce`, `userKey`). May be called several
    /// times; when never called, [`DEFAULT_NONCE`] / [`DEFAULT_USER_KEY`] are accepted.
    pub fn nonce_key(mut self, nonce: impl Into<String>, user_key: impl Into<String>) -> Self {
        self.keys.push((nonce.into(), user_key.into()));
        self
    }

    /// Largest allowed `|server time - token timestamp|` (default 300 s, a guess, §1.1).
    pub fn token_skew(mut self, skew: Duration) -> Self {
        self.token_skew = skew;
        self
    }

    /// Idle time after which a session expires (default 3600 s, §1.4).
    pub fn session_idle(mut self, idle: Duration) -> Self {
        self.session_idle = idle;
        self
    }

    /// Mimic a server older than 7.12 (no `QUERY_SESSION_OPTIONAL`): `GET` requests must
    /// carry `?session=`; the header alone gets `401`. Default false.
    pub fn require_query_session(mut self, on: bool) -> Self {
        self.require_query_session = on;
        self
    }

    /// Whether `from` and `to` are inclusive (default `[from, to)`: true, false).
    pub fn inclusivity(mut self, from_inclusive: bool, to_inclusive: bool) -> Self {
        self.from_inclusive = from_inclusive;
        self.to_inclusive = to_inclusive;
        self
    }

    /// Largest `limit` accepted; larger gets `400` (default: no maximum).
    pub fn max_limit(mut self, max: Option<u32>) -> Self {
        self.max_limit = max;
        self
    }

    /// Refuse `serverId`/`limit` on CONTINUE with `400` (the third-party claim, §2.2). Default
    /// true.
    pub fn strict_continue(mut self, on: bool) -> Self {
        self.strict_continue = on;
        self
    }

    /// How long a continuation token stays valid after it was issued (default 600 s); later
    /// it gets `400`. Tokens can be reused until then (a retry after a `5xx` works).
    pub fn continuation_ttl(mut self, ttl: Duration) -> Self {
        self.continuation_ttl = ttl;
        self
    }

    /// The servers, cameras, rules and timeline (default `Scenario::counting(&CountingSpec::default())`).
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = Some(scenario);
        self
    }

    /// HTTPS with a fresh self-signed certificate (for `localhost`, `127.0.0.1`, `::1`, the
    /// bound IP and [`tls_names`](Self::tls_names)), exposed by [`AcsServer::cert_pem`] for
    /// pinning. Default false (plain HTTP).
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Extra DNS names or IPs for the certificate.
    pub fn tls_names(mut self, names: &[&str]) -> Self {
        self.tls_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Initial faults.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Shortcut: [`Faults::latency`].
    pub fn latency(mut self, latency: Duration) -> Self {
        self.faults.latency = latency;
        self
    }

    /// Shortcut: [`Faults::error_rate`] with the default statuses.
    pub fn error_rate(mut self, rate: f64) -> Self {
        self.faults.error_rate = rate;
        self
    }

    /// Shortcut: [`Faults::clock_offset_secs`].
    pub fn clock_offset_secs(mut self, secs: i64) -> Self {
        self.faults.clock_offset_secs = secs;
        self
    }

    /// Seed of the fault RNG (default fixed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Listen on `addr` (e.g. `127.0.0.1:0`) and serve until shut down. The scenario start is
    /// anchored now.
    pub async fn bind(mut self, addr: impl ToSocketAddrs) -> std::io::Result<AcsServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        if self.keys.is_empty() {
            self.keys.push((DEFAULT_NONCE.into(), DEFAULT_USER_KEY.into()));
        }
        let scenario = match self.scenario.take() {
            Some(s) => s,
            None => Scenario::counting(&CountingSpec::default()).map_err(std::io::Error::other)?,
        };
        scenario.validate().map_err(std::io::Error::other)?;
        let tls = if self.tls {
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
            let ip = local_addr.ip().to_string();
            if !names.contains(&ip) && !local_addr.ip().is_unspecified() {
                names.push(ip);
            }
            names.extend(self.tls_names.iter().cloned());
            Some(http::tls_setup(names)?)
        } else {
            None
        };
        let stats = Arc::new(Stats::default());
        let cancel = CancellationToken::new();
        let start = scenario.start_at(Timestamp::now());
        let truth = scenario.truth();
        let shared = Arc::new(http::Shared::new(self, scenario, start, stats.clone()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if local_addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { local_addr.ip().to_string() };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let origin = format!("{scheme}://{host}:{}", local_addr.port());
        let (acceptor, cert) = match tls {
            Some((a, c)) => (Some(a), Some(c)),
            None => (None, None),
        };
        let task = tokio::spawn(http::accept_loop(listener, shared.clone(), acceptor, cancel.clone()));
        Ok(AcsServer { local_addr, origin, cert, truth, start, shared, stats, cancel, task })
    }
}

/// The certificate of a TLS server.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub pem: String,
    pub der: Vec<u8>,
}

/// A running simulated ACC Web Endpoint.
#[derive(Debug)]
pub struct AcsServer {
    local_addr: SocketAddr,
    origin: String,
    cert: Option<Cert>,
    truth: Truth,
    start: Timestamp,
    shared: Arc<http::Shared>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl AcsServer {
    /// Configure a server.
    pub fn builder() -> AcsServerBuilder {
        AcsServerBuilder::default()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://127.0.0.1:<port>` (or `http://`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `<origin>/mt/api/rest/v1`.
    pub fn base_url(&self) -> String {
        format!("{}{API_PREFIX}", self.origin)
    }

    /// The self-signed certificate (PEM) of a TLS server, for pinning.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert.as_ref().map(|c| c.pem.as_str())
    }

    /// The same certificate, DER.
    pub fn cert_der(&self) -> Option<&[u8]> {
        self.cert.as_ref().map(|c| c.der.as_slice())
    }

    /// The account.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.shared.cfg.user, &self.shared.cfg.password)
    }

    /// The first accepted (`userNonce`, `userKey`).
    pub fn nonce_key(&self) -> (&str, &str) {
        let (n, k) = &self.shared.cfg.keys[0];
        (n, k)
    }

    /// A valid authorization token for now, from [`nonce_key`](Self::nonce_key) (for tests
    /// that drive the server without camgate).
    pub fn token_now(&self) -> String {
        let (n, k) = self.nonce_key();
        authorization_token(n, k, Timestamp::now().as_second(), None)
    }

    /// The scenario served.
    pub fn scenario(&self) -> &Scenario {
        &self.shared.scenario
    }

    /// Its known truth (same as `scenario().truth()`).
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// The scenario's start instant (its `at_ms` 0).
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// When the last event (duplicates and late ones included) exists; after this a search
    /// over the whole scenario returns everything. `None` for an empty timeline.
    pub fn all_visible_at(&self) -> Option<Timestamp> {
        let ms = self.shared.store.last_visible_ms;
        if ms == i64::MIN { None } else { Timestamp::from_millisecond(ms).ok() }
    }

    /// Server ids, in scenario order.
    pub fn server_ids(&self) -> Vec<String> {
        self.shared.scenario.servers.iter().map(|s| s.id.clone()).collect()
    }

    /// Its counters (shared, live).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The current faults.
    pub fn faults(&self) -> Faults {
        self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replace the faults.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Change the faults in place.
    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Answer the next `n` requests (all but `/health`) with `status` (an error envelope).
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut q = self.shared.fail_next.lock().unwrap_or_else(|e| e.into_inner());
        q.extend(std::iter::repeat_n(status, n));
    }

    /// End every session now (the next use gets `401`); returns how many there were.
    pub fn expire_sessions(&self) -> usize {
        let mut s = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let n = s.len();
        s.clear();
        n
    }

    /// Sessions open now (expired ones not yet noticed included).
    pub fn sessions(&self) -> usize {
        self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).len()
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

/// Nonce -> key map of a configuration.
pub(crate) fn key_map(keys: &[(String, String)]) -> HashMap<String, String> {
    keys.iter().cloned().collect()
}
