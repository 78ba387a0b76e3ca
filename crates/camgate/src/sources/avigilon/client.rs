//! HTTP and session handling for one Avigilon Web Endpoint (avigilon.md §1, §3, §4).
//!
//! * One pooled keep-alive client per `[[avigilon]]` entry (rustls with the `ring` provider;
//!   certificate checks off unless `ca_bundle`/`verify_tls` says otherwise, §4).
//! * A fresh authorization token for every login (§1.1), built with the configured
//!   `timestamp_offset`.
//! * The session goes in the `x-avg-session` header, and also as `?session=` when
//!   `query_session` is set (§1.3). URLs holding a session are never logged, and transport
//!   errors are stripped of their URL.
//! * A `401`/`403` to an authenticated request logs in again and retries the request once
//!   (§1.4). Concurrent requests that hit the same expired session log in only once: each
//!   session has a generation, and a task that finds a newer session than the one refused
//!   uses it instead of logging in again.
//! * A `403` (login or request) logs how far the server's `Date` header is from our clock,
//!   the usual cause being clock skew (§1.1, §1.5).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use camgate_core::config::{AvigilonConfig, Secret};
use camgate_protocols::avigilon::{
    LOGIN_PATH, LOGOUT_PATH, LoginRequest, ResponseError, SESSION_HEADER, authorization_token, logout_body,
    parse_login, parse_logout, token_timestamp,
};
use jiff::Timestamp;
use reqwest::Url;

use crate::metrics::{AvigilonLabels, Metrics};

/// How long an idle keep-alive connection is kept between poll cycles.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Why a request gave no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The server answered, with an error or with something that is not the route's JSON.
    #[error("{route}: {error}")]
    Response { route: &'static str, error: ResponseError },
    /// No answer: connection refused, TLS failure, timeout, a body cut short.
    #[error("{route}: no answer from the Web Endpoint: {message}")]
    Transport { route: &'static str, message: String },
}

impl CallError {
    /// 401/403 (after the re-login and retry, when it was an authenticated request).
    pub fn is_auth(&self) -> bool {
        matches!(self, CallError::Response { error, .. } if error.is_auth())
    }

    /// The `outcome` label of `camgate_avigilon_requests`.
    fn outcome(&self) -> &'static str {
        match self {
            CallError::Response { error: ResponseError::Api(e), .. } if e.is_auth() => "auth",
            CallError::Response { error: ResponseError::Api(_), .. } => "error",
            CallError::Response { error: ResponseError::Invalid { .. }, .. } => "invalid",
            CallError::Transport { .. } => "transport",
        }
    }
}

/// A response as read off the wire.
struct Reply {
    status: u16,
    body: bytes::Bytes,
    /// The `Date` header, when present and readable.
    date: Option<Timestamp>,
}

/// The session in use and how many logins produced it.
#[derive(Default)]
struct SessionState {
    session: Option<Secret>,
    generation: u64,
    /// Login attempts so far, and how the last one failed (`None`: it succeeded).
    attempts: u64,
    last_failure: Option<CallError>,
}

/// One Web Endpoint: an HTTP client and the session.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    cfg: Arc<AvigilonConfig>,
    metrics: Arc<Metrics>,
    state: Mutex<SessionState>,
    /// Held while logging in, so concurrent refusals log in once.
    login_lock: tokio::sync::Mutex<()>,
}

impl Client {
    /// A client for `cfg`; an error names what is wrong with its URL or TLS settings.
    pub fn new(cfg: Arc<AvigilonConfig>, metrics: Arc<Metrics>) -> Result<Client, String> {
        let base = cfg.api_base().map_err(|e| format!("url: {e}"))?;
        let http = build_http(&cfg, base.scheme() == "https")?;
        Ok(Client {
            http,
            base,
            cfg,
            metrics,
            state: Mutex::new(SessionState::default()),
            login_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The API root, for logs (holds no secret).
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn count(&self, route: &'static str, outcome: &'static str) {
        self.metrics
            .avigilon_requests
            .get_or_create(&AvigilonLabels {
                site: self.metrics.source_label(&self.cfg.name),
                route: route.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Send one request. `query` holds no session; `session` is sent in the header (and in
    /// the query with `query_session`). Never logs the URL.
    async fn send(
        &self,
        route: &'static str,
        query: Option<&str>,
        body: Option<&Secret>,
        session: Option<&Secret>,
    ) -> Result<Reply, CallError> {
        let transport = |message: String| CallError::Transport { route, message };
        let mut url = self.base.join(route).map_err(|e| transport(format!("cannot build the URL: {e}")))?;
        url.set_query(query.filter(|q| !q.is_empty()));
        if let Some(s) = session
            && self.cfg.query_session
            && body.is_none()
        {
            url.query_pairs_mut().append_pair("session", s.expose());
        }
        let mut req = match body {
            Some(b) => self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.expose().to_owned()),
            None => self.http.get(url),
        };
        if let Some(s) = session {
            req = req.header(SESSION_HEADER, s.expose());
        }
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let date = resp
                .headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
                .map(|z| z.timestamp());
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>(Reply { status, body, date })
        }
        .await;
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                let e = e.without_url();
                let what = if e.is_timeout() {
                    format!(
                        "timed out after {} (request_timeout)",
                        camgate_core::config::Dur(self.cfg.request_timeout.get())
                    )
                } else if e.is_connect() {
                    format!("cannot connect to {}: {}", origin(&self.base), error_chain(&e))
                } else {
                    error_chain(&e)
                };
                let err = transport(what);
                self.count(route, err.outcome());
                Err(err)
            }
        }
    }

    /// Parse a reply, counting the outcome and logging the server's clock on a `403`.
    fn finish<T>(
        &self,
        route: &'static str,
        reply: &Reply,
        parse: impl FnOnce(u16, &[u8]) -> Result<T, ResponseError>,
    ) -> Result<T, CallError> {
        match parse(reply.status, &reply.body) {
            Ok(v) => {
                self.count(route, "ok");
                Ok(v)
            }
            Err(error) => {
                if error.api().is_some_and(|a| a.status() == 403) {
                    self.log_clock(route, reply.date);
                }
                let err = CallError::Response { route, error };
                self.count(route, err.outcome());
                Err(err)
            }
        }
    }

    fn log_clock(&self, route: &'static str, server_date: Option<Timestamp>) {
        let ours = Timestamp::now();
        let configured = self.cfg.timestamp_offset;
        match server_date {
            Some(theirs) => {
                let ahead = theirs.duration_since(ours);
                tracing::warn!(
                    site = %self.cfg.name,
                    route,
                    server_clock_ahead_secs = ahead.as_secs(),
                    timestamp_offset = %configured,
                    "the Web Endpoint answered 403: its Date header is {}s {} our clock (configured timestamp_offset {configured}); \
                     a token timestamp too far from the server's clock is refused, so fix the clocks (NTP) or set timestamp_offset",
                    ahead.as_secs().abs(),
                    if ahead.is_negative() { "behind" } else { "ahead of" },
                );
            }
            None => tracing::warn!(
                site = %self.cfg.name,
                route,
                "the Web Endpoint answered 403 without a readable Date header; if the nonce and key are right, check the clocks (timestamp_offset)"
            ),
        }
    }

    /// Log in with a fresh token; the session is returned, not installed.
    async fn login(&self) -> Result<Secret, CallError> {
        let cfg = &self.cfg;
        let nonce = cfg.user_nonce();
        let ts = token_timestamp(Timestamp::now(), cfg.timestamp_offset.get());
        let integration = cfg.integration_id();
        let token = authorization_token(nonce.expose(), ts, &cfg.user_key(), integration.as_ref().map(Secret::expose));
        let password = cfg.password();
        let body = LoginRequest {
            username: &cfg.username,
            password: &password,
            client_name: &cfg.client_name,
            authorization_token: &token,
        }
        .body();
        let reply = self.send(LOGIN_PATH, None, Some(&body), None).await?;
        let session = self.finish(LOGIN_PATH, &reply, parse_login)?;
        tracing::debug!(site = %cfg.name, "logged in to the Avigilon Web Endpoint");
        Ok(session.session)
    }

    /// The current session and its generation; logs in when there is none.
    async fn session(&self) -> Result<(u64, Secret), CallError> {
        let generation = {
            let st = self.lock();
            if let Some(s) = &st.session {
                return Ok((st.generation, s.clone()));
            }
            st.generation
        };
        self.relogin(generation).await
    }

    /// Replace session `refused` (its generation) by a new one, unless another task already
    /// did: then that one is used.
    async fn relogin(&self, refused: u64) -> Result<(u64, Secret), CallError> {
        let attempts_before = self.lock().attempts;
        let _one_at_a_time = self.login_lock.lock().await;
        {
            let st = self.lock();
            if st.generation != refused
                && let Some(s) = &st.session
            {
                return Ok((st.generation, s.clone()));
            }
            // Someone logged in (and failed) while this task waited: share that answer
            // rather than sending one login per waiting camera.
            if st.attempts != attempts_before
                && let Some(e) = &st.last_failure
            {
                return Err(e.clone());
            }
        }
        self.lock().attempts += 1;
        match self.login().await {
            Ok(session) => {
                let mut st = self.lock();
                st.generation += 1;
                st.session = Some(session.clone());
                st.last_failure = None;
                Ok((st.generation, session))
            }
            Err(e) => {
                let mut st = self.lock();
                st.session = None;
                st.last_failure = Some(e.clone());
                Err(e)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make sure there is a session (log in when there is none).
    pub async fn connect(&self) -> Result<(), CallError> {
        self.session().await.map(drop)
    }

    /// An authenticated `GET route?query`, its answer read by `parse`. A `401`/`403` logs in
    /// again and retries once.
    pub async fn get<T>(
        &self,
        route: &'static str,
        query: &str,
        parse: impl Fn(u16, &[u8]) -> Result<T, ResponseError>,
    ) -> Result<T, CallError> {
        let (generation, session) = self.session().await?;
        let reply = self.send(route, Some(query), None, Some(&session)).await?;
        match self.finish(route, &reply, &parse) {
            Err(e) if e.is_auth() => {
                tracing::info!(site = %self.cfg.name, route, error = %e, "session refused; logging in again and retrying once");
                let (_, session) = self.relogin(generation).await?;
                let reply = self.send(route, Some(query), None, Some(&session)).await?;
                self.finish(route, &reply, &parse)
            }
            other => other,
        }
    }

    /// Log out of the current session, if any (the guide's best practice, §1.4).
    pub async fn logout(&self) {
        let Some(session) = self.lock().session.take() else { return };
        let body = logout_body(&session);
        let result = match self.send(LOGOUT_PATH, None, Some(&body), None).await {
            Ok(reply) => self.finish(LOGOUT_PATH, &reply, parse_logout),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => tracing::info!(site = %self.cfg.name, "logged out of the Avigilon Web Endpoint"),
            Err(e) => {
                tracing::warn!(site = %self.cfg.name, error = %e, "logout failed; the session expires on the server after an hour idle")
            }
        }
    }
}

/// `scheme://host:port` of a URL.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// An error and its causes, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

fn build_http(cfg: &AvigilonConfig, https: bool) -> Result<reqwest::Client, String> {
    crate::sources::dahua::install_crypto_provider();
    let timeout = cfg.request_timeout.get();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // Idle connections are kept between cycles (up to as many as were in flight:
        // `concurrency` per ACC server behind this Web Endpoint), so a cycle does not open
        // them again.
        .pool_idle_timeout(POOL_IDLE)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("camgate/", env!("CARGO_PKG_VERSION")));
    if https {
        b = b.tls_backend_rustls();
        if let Some(path) = &cfg.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| format!("ca_bundle {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_bundle {}: not a PEM certificate bundle: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("ca_bundle {}: no certificate in the file", path.display()));
            }
            b = b.tls_certs_only(certs);
        } else if !cfg.verify_tls() {
            b = b.tls_danger_accept_invalid_certs(true);
        }
    }
    b.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))
}
