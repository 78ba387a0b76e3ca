//! Routes, sessions, continuation cursors, fault injection and the (TLS) serving loop.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

use super::store::{Filter, Store, Topics, parse_time};
use super::{API_PREFIX, AcsServerBuilder, Cert, Faults, Health, RequestRecord, Scenario, Stats, key_map, token};

const SESSION_HEADER: &str = "x-avg-session";
const DEFAULT_LIMIT: usize = 1000;

pub(crate) struct Shared {
    pub cfg: AcsServerBuilder,
    keys: HashMap<String, String>,
    pub scenario: Scenario,
    pub store: Store,
    camera_index: HashMap<String, u32>,
    server_index: HashMap<String, usize>,
    pub sessions: Mutex<HashMap<String, Session>>,
    cursors: Mutex<HashMap<String, Cursor>>,
    pub faults: Mutex<Faults>,
    pub fail_next: Mutex<VecDeque<u16>>,
    rng: Mutex<StdRng>,
    stats: Arc<Stats>,
    external_user_id: String,
    domain_id: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("servers", &self.scenario.servers.len()).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    created: Instant,
    last_used: Instant,
}

#[derive(Debug, Clone)]
struct Cursor {
    server: usize,
    filter: Filter,
    limit: usize,
    /// Where the next page starts; `None` when the results are exhausted.
    next: Option<usize>,
    /// Last event of the page that issued this token.
    last_hit: Option<usize>,
    expires: Instant,
}

impl Shared {
    pub fn new(cfg: AcsServerBuilder, scenario: Scenario, start: Timestamp, stats: Arc<Stats>) -> Shared {
        let store = Store::build(&scenario, start.as_millisecond());
        let camera_index = scenario.cameras.iter().enumerate().map(|(i, c)| (c.id.clone(), i as u32)).collect();
        let server_index = scenario.servers.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let external_user_id = random_b64url(&mut rng, 16);
        let domain_id = random_b64url(&mut rng, 16);
        Shared {
            keys: key_map(&cfg.keys),
            faults: Mutex::new(cfg.faults.clone()),
            cfg,
            scenario,
            store,
            camera_index,
            server_index,
            sessions: Mutex::new(HashMap::new()),
            cursors: Mutex::new(HashMap::new()),
            fail_next: Mutex::new(VecDeque::new()),
            rng: Mutex::new(rng),
            stats,
            external_user_id,
            domain_id,
        }
    }

    fn faults(&self) -> Faults {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A `5xx` to inject now, if any.
    fn pick_fault(&self, faults: &Faults) -> Option<u16> {
        if let Some(s) = self.fail_next.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
            return Some(s);
        }
        if faults.error_rate <= 0.0 || faults.error_statuses.is_empty() {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.random_bool(faults.error_rate.min(1.0)) {
            Some(faults.error_statuses[rng.random_range(0..faults.error_statuses.len())])
        } else {
            None
        }
    }

    /// Check the session of a request: `query_or_body` is `?session=` (or the body's
    /// `session` for POST), `header` the `x-avg-session` value.
    fn authenticate(&self, header: Option<&str>, query_or_body: Option<&str>, is_get: bool) -> Result<(), ApiError> {
        if is_get && self.cfg.require_query_session && query_or_body.is_none() {
            let msg = if header.is_some() {
                "session query parameter required (QUERY_SESSION_OPTIONAL not supported)"
            } else {
                "session required"
            };
            return Err(error(401, msg, -1, "SESSION_REQUIRED"));
        }
        let Some(session) = query_or_body.or(header).filter(|s| !s.is_empty()) else {
            return Err(error(401, "session required", -1, "SESSION_REQUIRED"));
        };
        let lifetime = self.faults().session_lifetime;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = sessions.get_mut(session) else {
            return Err(error(401, "session not valid", -1, "SESSION_INVALID"));
        };
        let now = Instant::now();
        let idle = now.duration_since(s.last_used) > self.cfg.session_idle;
        let old = lifetime.is_some_and(|l| now.duration_since(s.created) > l);
        if idle || old {
            sessions.remove(session);
            Stats::add(&self.stats.sessions_expired, 1);
            return Err(error(401, "session expired", -1, "SESSION_EXPIRED"));
        }
        s.last_used = now;
        Ok(())
    }

    fn authenticate_get(&self, headers: &HeaderMap, params: &Params) -> Result<(), ApiError> {
        self.authenticate(header_session(headers), params.first("session"), true)
    }

    fn new_session(&self) -> String {
        let mut bytes = [0u8; 128];
        rand::rng().fill(&mut bytes[..]);
        let session = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.clone(), Session { created: now, last_used: now });
        session
    }

    /// Issue a continuation token: standard base64 that always contains `+`, `/` and `=`.
    fn issue_token(&self, cursor: Cursor) -> String {
        let mut bytes = vec![0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff];
        let mut random = [0u8; 25];
        rand::rng().fill(&mut random[..]);
        bytes.extend_from_slice(&random);
        let token = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        if cursors.len() > 1024 {
            let now = Instant::now();
            cursors.retain(|_, c| c.expires > now);
        }
        cursors.insert(token.clone(), cursor);
        token
    }

    fn cursor(&self, token: &str) -> Option<Cursor> {
        let cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        cursors.get(token).filter(|c| c.expires > Instant::now()).cloned()
    }
}

fn random_b64url(rng: &mut StdRng, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn header_session(headers: &HeaderMap) -> Option<&str> {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok())
}

/// An error answer: the envelope of §1.5.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: u16,
    message: String,
    code: i64,
    name: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "statusCode": self.status, "message": self.message,
            "meta": {"code": self.code, "name": self.name}});
        json_response(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body.to_string())
    }
}

/// What a handler returns.
type Answer = Result<Response, ApiError>;

fn error(status: u16, message: &str, code: i64, name: &'static str) -> ApiError {
    ApiError { status, message: message.to_owned(), code, name }
}

fn bad_request(message: &str) -> ApiError {
    error(400, message, -1, "BAD_ARGUMENT")
}

fn not_found(message: &str) -> ApiError {
    error(404, message, -25, "NOT_FOUND")
}

fn injected(status: u16) -> ApiError {
    let (message, name) = match status {
        503 => ("communication error", "UNAVAILABLE"),
        504 => ("timed out waiting on ACC", "TIMEOUT"),
        _ => ("internal error", "INTERNAL_ERROR"),
    };
    error(status, message, -1, name)
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn success(result: Value) -> Answer {
    Ok(json_response(StatusCode::OK, json!({"status": "success", "result": result}).to_string()))
}

/// Query parameters in order, percent-decoded (`+` is a space), keys repeatable.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<&str>) -> Params {
        let Some(raw) = raw else { return Params::default() };
        Params(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn first(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/health", get(health))
        .route("/server/ids", get(server_ids))
        .route("/sites", get(sites))
        .route("/cameras", get(cameras))
        .route("/wep-capabilities", get(capabilities))
        .route("/events/search", get(search))
        .fallback(async || not_found("no such route").into_response());
    Router::new().nest(API_PREFIX, api).fallback(async || not_found("no such route").into_response()).with_state(shared)
}

async fn login(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Answer {
    let refused = |e: ApiError| {
        Stats::add(&sh.stats.logins_refused, 1);
        Err(e)
    };
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
    if !json_type {
        return refused(error(415, "Content-Type must be application/json", -1, "UNSUPPORTED_MEDIA_TYPE"));
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return refused(bad_request("body is not a JSON object"));
    };
    let mut fields = HashMap::new();
    for name in ["username", "password", "clientName", "authorizationToken"] {
        match body.get(name).and_then(Value::as_str) {
            Some(v) if !v.is_empty() => {
                fields.insert(name, v);
            }
            _ => return refused(bad_request(&format!("missing field: {name}"))),
        }
    }
    let now = Timestamp::now().as_second() + sh.faults().clock_offset_secs;
    if let Err(e) = token::verify(fields["authorizationToken"], &sh.keys, now, sh.cfg.token_skew.as_secs()) {
        tracing::debug!(reason = e.describe(), "simulated WEP: login token refused");
        return refused(error(403, "Unknown reason", -1, "AUTHORIZATION_TOKEN_REJECTED"));
    }
    if fields["username"] != sh.cfg.user || fields["password"] != sh.cfg.password {
        return refused(error(401, "credentials not authorized", -1, "NOT_AUTHORIZED"));
    }
    let session = sh.new_session();
    Stats::add(&sh.stats.logins, 1);
    success(json!({"session": session, "externalUserId": sh.external_user_id, "domainId": sh.domain_id}))
}

async fn logout(State(sh): State<Arc<Shared>>, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Answer {
    let params = Params::parse(q.as_deref());
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    let from_body = body.as_ref().and_then(|b| b.get("session")).and_then(Value::as_str).map(str::to_owned);
    let explicit = from_body.as_deref().or(params.first("session"));
    let session = explicit.or(header_session(&headers)).map(str::to_owned);
    sh.authenticate(header_session(&headers), explicit, false)?;
    if let Some(s) = session {
        sh.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&s);
    }
    Stats::add(&sh.stats.logouts, 1);
    Ok(json_response(StatusCode::OK, r#"{"status":"success"}"#.to_owned()))
}

async fn health(State(sh): State<Arc<Shared>>) -> Response {
    let (status, text) = match sh.faults().health {
        Health::Good => (StatusCode::OK, "GOOD"),
        Health::Warn => (StatusCode::OK, "WARN"),
        Health::Bad => (StatusCode::INTERNAL_SERVER_ERROR, "BAD"),
    };
    let mut r = (status, text).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

async fn server_ids(State(sh): State<Arc<Shared>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Answer {
    let params = Params::parse(q.as_deref());
    sh.authenticate_get(&headers, &params)?;
    let servers: Vec<Value> = sh.scenario.servers.iter().map(|s| json!({"id": s.id, "name": s.name})).collect();
    success(json!({"servers": servers}))
}

async fn sites(State(sh): State<Arc<Shared>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Answer {
    let params = Params::parse(q.as_deref());
    sh.authenticate_get(&headers, &params)?;
    let site = &sh.scenario.site;
    success(json!({"sites": [{"id": site.id, "name": site.name}]}))
}

async fn capabilities(State(sh): State<Arc<Shared>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Answer {
    let params = Params::parse(q.as_deref());
    sh.authenticate_get(&headers, &params)?;
    let mut caps = vec!["EVENT_QUERY_SERVER", "ENTRY_EXIT_EVENTS"];
    if !sh.cfg.require_query_session {
        caps.push("QUERY_SESSION_OPTIONAL");
    }
    success(json!({"capabilities": caps}))
}

async fn cameras(State(sh): State<Arc<Shared>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Answer {
    let params = Params::parse(q.as_deref());
    sh.authenticate_get(&headers, &params)?;
    let (capabilities, links) = match params.first("verbosity") {
        None | Some("HIGH") => (true, true),
        Some("MEDIUM") => (true, false),
        Some("LOW") => (false, false),
        Some(_) => return Err(bad_request("verbosity must be HIGH, MEDIUM or LOW")),
    };
    Stats::add(&sh.stats.camera_lists, 1);
    let start = crate::avigilon::format_ms(Timestamp::now().as_millisecond() - 86_400_000);
    let cameras: Vec<Value> = sh
        .scenario
        .cameras
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let state = if c.connected { "CONNECTED" } else { "DISCONNECTED" };
            let mut v = json!({
                "id": c.id,
                "name": c.name,
                "serverId": c.server_id,
                "apiType": "AVIGILON_SOAP",
                "manufacturer": "Avigilon",
                "model": "SIM-H5A-DOME",
                "firmwareVersion": "4.40.0.0",
                "serial": format!("SIM{:08}", i + 1),
                "ipAddress": format!("10.20.{}.{}:443", i / 250, i % 250 + 1),
                "physicalAddress": format!("00:18:85:00:{:02x}:{:02x}", i / 256, i % 256),
                "location": "",
                "logicalId": 4294967295u64,
                "available": c.connected,
                "connected": c.connected,
                "active": true,
                "connectionState": state,
                "connectionStatus": {"isConnectable": c.connected, "state": state, "errorFlags": [], "startTime": start},
                "connectionFailoverLevel": "PRIMARY",
                "operatingPriority": "NORMAL",
                "timezone": "America/Bogota",
                "defaultWidth": 1920,
                "defaultHeight": 1080,
            });
            if let Value::Object(m) = &mut v {
                if capabilities {
                    m.insert(
                        "capabilities".into(),
                        json!({"general": ["ANALYTICS"], "analytic": ["CLASSIFIED_OBJECT", "OCCUPANCY_COUNTING"]}),
                    );
                }
                if links {
                    m.insert("links".into(), json!([]));
                }
            }
            v
        })
        .collect();
    success(json!({"cameras": cameras}))
}

fn parse_limit(params: &Params, max: Option<u32>) -> Result<usize, ApiError> {
    match params.first("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n >= 1 && max.is_none_or(|m| n <= m) => Ok(n as usize),
            Ok(n) if n >= 1 => Err(bad_request(&format!("limit {n} above the maximum"))),
            _ => Err(bad_request("limit must be a positive integer")),
        },
    }
}

/// `eventTopics` and `deviceIds`, shared by TIME_RANGE and ACTIVE.
fn parse_filters(sh: &Shared, params: &Params) -> (Option<Topics>, Option<Vec<u32>>) {
    let topics = if params.has("eventTopics") {
        let mut t = Topics { start: false, stop: false };
        let mut all = false;
        for v in params.all("eventTopics") {
            match v {
                "ALL" => all = true,
                super::TOPIC_START => t.start = true,
                super::TOPIC_STOP => t.stop = true,
                // Other topics exist on real servers; this one generates none of them.
                _ => {}
            }
        }
        if all { None } else { Some(t) }
    } else {
        None
    };
    let devices = if params.has("deviceIds") {
        let mut d: Vec<u32> = params.all("deviceIds").filter_map(|id| sh.camera_index.get(id).copied()).collect();
        d.sort_unstable();
        d.dedup();
        Some(d)
    } else {
        None
    };
    (topics, devices)
}

fn server_param(sh: &Shared, params: &Params) -> Result<usize, ApiError> {
    let Some(id) = params.first("serverId").filter(|s| !s.is_empty()) else {
        return Err(bad_request("serverId required"));
    };
    sh.server_index.get(id).copied().ok_or_else(|| not_found("server not found."))
}

async fn search(State(sh): State<Arc<Shared>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Answer {
    let params = Params::parse(q.as_deref());
    sh.authenticate_get(&headers, &params)?;
    let now_ms = Timestamp::now().as_millisecond();
    match params.first("queryType") {
        Some("TIME_RANGE") => time_range(&sh, &params, now_ms),
        Some("CONTINUE") => continue_search(&sh, &params, now_ms),
        Some("ACTIVE") => active(&sh, &params, now_ms),
        Some(_) => Err(bad_request("queryType must be TIME_RANGE, ACTIVE or CONTINUE")),
        None => Err(bad_request("queryType required")),
    }
}

fn time_range(sh: &Shared, params: &Params, now_ms: i64) -> Answer {
    let server = server_param(sh, params)?;
    let (Some(from), Some(to)) = (params.first("from"), params.first("to")) else {
        return Err(bad_request("from and to required for TIME_RANGE"));
    };
    let (Some(from_ns), Some(to_ns)) = (parse_time(from), parse_time(to)) else {
        return Err(bad_request("from/to must be ISO 8601 date-times"));
    };
    if from_ns > to_ns {
        return Err(bad_request("from is after to"));
    }
    let limit = parse_limit(params, sh.cfg.max_limit)?;
    let (topics, devices) = parse_filters(sh, params);
    let filter = Filter {
        from_ns,
        to_ns,
        from_inclusive: sh.cfg.from_inclusive,
        to_inclusive: sh.cfg.to_inclusive,
        topics,
        devices,
    };
    let events = &sh.store.servers[server];
    let start = events.window_start(&filter);
    Stats::add(&sh.stats.searches, 1);
    page_response(
        sh,
        Cursor { server, filter, limit, next: Some(start), last_hit: None, expires: Instant::now() },
        false,
        now_ms,
    )
}

fn continue_search(sh: &Shared, params: &Params, now_ms: i64) -> Answer {
    if sh.cfg.strict_continue && (params.has("serverId") || params.has("limit")) {
        return Err(bad_request("serverId and limit are not allowed with CONTINUE"));
    }
    let Some(token) = params.first("token").filter(|t| !t.is_empty()) else {
        return Err(bad_request("token required for CONTINUE"));
    };
    let Some(cursor) = sh.cursor(token) else {
        return Err(bad_request("unknown or expired continuation token"));
    };
    Stats::add(&sh.stats.continues, 1);
    page_response(sh, cursor, true, now_ms)
}

/// Serve one page from `cursor` and issue the next token.
fn page_response(sh: &Shared, cursor: Cursor, continued: bool, now_ms: i64) -> Answer {
    let events = &sh.store.servers[cursor.server];
    let faults = sh.faults();
    // Repeat the previous page's last event, unless the results are exhausted.
    let repeat = if continued && faults.repeat_last_on_continue && cursor.limit >= 2 && cursor.next.is_some() {
        cursor.last_hit
    } else {
        None
    };
    let room = cursor.limit - usize::from(repeat.is_some());
    let page = match cursor.next {
        Some(from) => events.page(&cursor.filter, from, room, now_ms),
        None => super::store::Page { hits: Vec::new(), next: None },
    };
    let mut hits = Vec::with_capacity(page.hits.len() + 1);
    hits.extend(repeat);
    hits.extend_from_slice(&page.hits);
    let mut body = String::with_capacity(64 + hits.iter().map(|&i| events.events[i].json.len() + 1).sum::<usize>());
    body.push_str(r#"{"status":"success","result":{"events":["#);
    let mut dups = u64::from(repeat.is_some());
    for (n, &i) in hits.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        let e = &events.events[i];
        dups += u64::from(e.duplicate && Some(i) != repeat);
        body.push_str(&e.json);
    }
    body.push(']');
    if page.next.is_some() || faults.token_on_last_page {
        let token = sh.issue_token(Cursor {
            next: page.next,
            last_hit: hits.last().copied().or(cursor.last_hit),
            expires: Instant::now() + sh.cfg.continuation_ttl,
            ..cursor
        });
        body.push_str(r#","token":""#);
        body.push_str(&token);
        body.push('"');
    }
    body.push_str("}}");
    Stats::add(&sh.stats.events_served, hits.len() as u64);
    Stats::add(&sh.stats.duplicates_served, dups);
    Ok(json_response(StatusCode::OK, body))
}

fn active(sh: &Shared, params: &Params, now_ms: i64) -> Answer {
    let server = server_param(sh, params)?;
    let limit = parse_limit(params, sh.cfg.max_limit)?;
    let (topics, devices) = parse_filters(sh, params);
    let filter = Filter { from_ns: 0, to_ns: 0, from_inclusive: true, to_inclusive: true, topics, devices };
    let events = &sh.store.servers[server];
    let hits = events.active(&filter, limit, now_ms);
    Stats::add(&sh.stats.active_queries, 1);
    Stats::add(&sh.stats.events_served, hits.len() as u64);
    let list: Vec<&str> = hits.iter().map(|&i| &*events.events[i].json).collect();
    Ok(json_response(StatusCode::OK, format!(r#"{{"status":"success","result":{{"events":[{}]}}}}"#, list.join(","))))
}

/// Everything before the router: record, delay, inject faults; count statuses after.
async fn handle(
    shared: Arc<Shared>,
    router: Router,
    req: Request<hyper::body::Incoming>,
) -> Result<Response, Infallible> {
    let stats = &shared.stats;
    Stats::add(&stats.requests, 1);
    let now = stats.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    stats.max_in_flight.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
    // Counted down however the answer ends (the connection may drop mid-latency).
    struct Leaving<'a>(&'a std::sync::atomic::AtomicU64);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let _leaving = Leaving(&stats.in_flight);
    let path = req.uri().path().to_owned();
    stats.record(RequestRecord {
        method: req.method().to_string(),
        path: path.clone(),
        query: req.uri().query().map(str::to_owned),
        header_session: req.headers().contains_key(SESSION_HEADER),
    });
    let faults = shared.faults();
    if !faults.latency.is_zero() {
        Stats::add(&stats.delayed, 1);
        tokio::time::sleep(faults.latency).await;
    }
    let injected_status = if path == format!("{API_PREFIX}/health") { None } else { shared.pick_fault(&faults) };
    let mut resp = match injected_status {
        Some(status) => {
            Stats::add(&stats.faults_injected, 1);
            injected(status).into_response()
        }
        None => {
            let req = req.map(Body::new);
            match tower::ServiceExt::oneshot(router, req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    };
    match resp.status().as_u16() {
        400 => Stats::add(&stats.sent_400, 1),
        401 => Stats::add(&stats.sent_401, 1),
        403 => Stats::add(&stats.sent_403, 1),
        404 => Stats::add(&stats.sent_404, 1),
        _ => {}
    }
    if faults.clock_offset_secs != 0 {
        // The server's (skewed) clock in `Date`, so a client can log the difference (§1.1).
        let t = Timestamp::now().as_second() + faults.clock_offset_secs;
        if let Ok(t) = Timestamp::from_second(t) {
            let date = t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
            if let Ok(v) = HeaderValue::from_str(&date) {
                resp.headers_mut().insert(header::DATE, v);
            }
        }
    }
    Ok(resp)
}

/// A self-signed certificate for `names` and a TLS acceptor serving it (HTTP/1.1 only).
pub(crate) fn tls_setup(names: Vec<String>) -> std::io::Result<(TlsAcceptor, Cert)> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
    let der = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let cert = Cert { pem: certified.cert.pem(), der: der.to_vec() };
    Ok((TlsAcceptor::from(Arc::new(config)), cert))
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    cancel: CancellationToken,
) {
    let router = router(shared.clone());
    loop {
        let (stream, _) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "simulated WEP: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (shared, router, tls, cancel) = (shared.clone(), router.clone(), tls.clone(), cancel.clone());
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    let stream = tokio::select! {
                        () = cancel.cancelled() => return,
                        r = handshake => match r {
                            Ok(Ok(s)) => s,
                            // A client that refuses the certificate ends the handshake.
                            _ => return,
                        },
                    };
                    serve_connection(TokioIo::new(stream), shared, router, cancel).await;
                }
                None => serve_connection(TokioIo::new(stream), shared, router, cancel).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, shared: Arc<Shared>, router: Router, cancel: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(shared.clone(), router.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service);
    tokio::select! {
        () = cancel.cancelled() => {}
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "simulated WEP: connection ended with an error");
            }
        }
    }
}
