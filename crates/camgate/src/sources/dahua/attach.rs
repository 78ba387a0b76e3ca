//! One attach: `GET /cgi-bin/eventManager.cgi?action=attach&codes=[...]&heartbeat=N`,
//! authenticated (dahua.md §6), then the stream read until it ends, stalls, is recycled or
//! camgate stops (§2, §3, §7).

use std::time::Duration;

use camgate_protocols::dahua::{Decoder, Limits, NormaliseOptions, Output, boundary_from_content_type};
use camgate_protocols::dahua_auth::{Authenticator, Decision, Exchange};
use jiff::Timestamp;
use rand::rngs::StdRng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::recorder::{Connection, Recorder};

/// Longest text of an error body quoted in `last_error`.
const ERROR_BODY_QUOTE: usize = 200;

/// How an attach ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// camgate is stopping.
    Stopped,
    /// The stream reached its lifetime and is attached again (§7).
    Recycled,
    /// The device closed the stream.
    Closed,
    /// Nothing arrived for the stall timeout: a half-open connection (§7).
    Stalled(Duration),
    /// The device refused the code list with 400/500: attach again with `[All]` (§1).
    CodesRefused(u16),
    /// The credentials were refused. `lockout` once the failure budget is spent (§6).
    AuthFailed { attempts: u32, lockout: Option<Duration> },
    /// Anything else: connection error, read error, HTTP status, a 401 that is not about the
    /// credentials. The text is for logs and `/api/sources` and never holds a secret.
    Failed(String),
}

impl End {
    /// The `device` event code of a stream that ended this way after it was connected.
    pub fn device_code(&self) -> &'static str {
        match self {
            End::Stalled(_) => "stalled",
            _ => "disconnected",
        }
    }

    /// For logs and `last_error`.
    pub fn describe(&self) -> String {
        match self {
            End::Stopped => "camgate is stopping".into(),
            End::Recycled => "recycled (stream lifetime reached)".into(),
            End::Closed => "the device closed the stream".into(),
            End::Stalled(d) => {
                format!("nothing received for {}; the connection is dead", camgate_core::config::Dur(*d))
            }
            End::CodesRefused(s) => format!("the device refused the code list (HTTP {s}); attaching with [All]"),
            End::AuthFailed { attempts, lockout: None } => {
                format!("the device refused the credentials ({attempts} attempt(s) in a row)")
            }
            End::AuthFailed { attempts, lockout: Some(d) } => format!(
                "the device refused the credentials {attempts} times in a row; not trying again for {} so the device does not lock camgate out",
                camgate_core::config::Dur(*d)
            ),
            End::Failed(m) => m.clone(),
        }
    }
}

/// What a stream that got its `200` did.
#[derive(Debug, Clone, Copy)]
pub struct Streamed {
    pub since: Instant,
    pub bytes: u64,
    pub events: u64,
}

/// Everything one attach needs.
pub struct Attach<'a> {
    pub client: &'a reqwest::Client,
    /// `http://host:port`.
    pub base: &'a str,
    /// The request-target, sent and signed exactly as it is (brackets literal).
    pub target: String,
    pub auth: &'a mut Authenticator,
    pub rng: &'a mut StdRng,
    pub recorder: &'a Recorder,
    pub normalise: NormaliseOptions,
    pub stall: Duration,
    pub response_timeout: Duration,
    pub recycle_at: Instant,
    pub stop: &'a CancellationToken,
}

impl Attach<'_> {
    /// Send the request until it is answered `200` or refused (challenge and stale retries
    /// are the auth machine's decision).
    pub async fn request(&mut self) -> Result<reqwest::Response, End> {
        let url = reqwest::Url::parse(&format!("{}{}", self.base, self.target))
            .map_err(|e| End::Failed(format!("bad device address: {e}")))?;
        // The URL parser must not re-encode the target (§1: brackets literal; §6: `uri` is
        // exactly what is sent).
        let sent = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if sent != self.target {
            return Err(End::Failed(format!("the request-target would be sent as {sent:?}, not {:?}", self.target)));
        }
        let mut exchange = Exchange::default();
        loop {
            let header = self.auth.authorization(&mut exchange, "GET", &self.target, self.rng);
            let mut req = self.client.get(url.clone());
            if let Some(h) = &header {
                let mut value = reqwest::header::HeaderValue::from_str(h.expose())
                    .map_err(|_| End::Failed("the Authorization header is not valid HTTP".into()))?;
                value.set_sensitive(true);
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
            let sent = tokio::select! {
                r = tokio::time::timeout(self.response_timeout, req.send()) => r,
                () = self.stop.cancelled() => return Err(End::Stopped),
            };
            let response = match sent {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(End::Failed(describe_reqwest(&e))),
                Err(_) => {
                    return Err(End::Failed(format!(
                        "no response within {}",
                        camgate_core::config::Dur(self.response_timeout)
                    )));
                }
            };
            let status = response.status().as_u16();
            let challenges: Vec<String> = response
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            match self.auth.on_response(&mut exchange, status, challenges.iter().map(String::as_str)) {
                Decision::Retry => continue,
                Decision::Authenticated if status == 200 => return Ok(response),
                Decision::Authenticated | Decision::Other => {
                    let body = error_body(response).await;
                    return Err(
                        if matches!(status, 400 | 500) && self.target.contains("codes=[") && !all_codes(&self.target) {
                            End::CodesRefused(status)
                        } else {
                            End::Failed(format!("HTTP {status}{body}"))
                        },
                    );
                }
                Decision::Failed { attempts, lockout } => return Err(End::AuthFailed { attempts, lockout }),
                Decision::Refused(r) => return Err(End::Failed(format!("HTTP 401: {r}"))),
            }
        }
    }

    /// Wait for the first bytes of the body: only a device that sends something counts as
    /// connected (dahua.md §2: a `200` that closes at once or never sends a byte is a
    /// failure).
    pub async fn first_chunk(&self, response: &mut reqwest::Response) -> Result<bytes::Bytes, End> {
        release_head(response);
        let chunk = tokio::select! {
            biased;
            () = self.stop.cancelled() => return Err(End::Stopped),
            c = tokio::time::timeout(self.stall, response.chunk()) => c,
        };
        match chunk {
            Ok(Ok(Some(bytes))) => Ok(bytes),
            Ok(Ok(None)) => {
                Err(End::Failed("the device answered 200 and closed the stream without sending anything".into()))
            }
            Ok(Err(e)) => Err(End::Failed(format!(
                "the device answered 200, then the stream broke before any byte: {}",
                describe_reqwest(&e)
            ))),
            Err(_) => Err(End::Failed(format!(
                "the device answered 200 but sent nothing for {}",
                camgate_core::config::Dur(self.stall)
            ))),
        }
    }

    /// Read the stream from its `first` bytes on, store what it carries, until it ends.
    pub async fn stream(
        &mut self,
        mut response: reqwest::Response,
        first: bytes::Bytes,
        streamed: &mut Streamed,
    ) -> End {
        let boundary = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(boundary_from_content_type);
        let mut decoder = Decoder::new(boundary.as_deref(), Limits::default(), self.normalise.clone());
        let mut conn = Connection { started_ms: Timestamp::now().as_millisecond(), events: 0 };
        let mut outputs = Vec::new();
        let mut frame_errors = 0u64;
        let recycle = tokio::time::sleep_until(self.recycle_at);
        tokio::pin!(recycle);
        let mut first = Some(first);
        loop {
            let chunk = match first.take() {
                Some(bytes) => Ok(Ok(Some(bytes))),
                None => tokio::select! {
                    biased;
                    () = self.stop.cancelled() => return End::Stopped,
                    () = &mut recycle => return End::Recycled,
                    c = tokio::time::timeout(self.stall, response.chunk()) => c,
                },
            };
            let ended = match chunk {
                Err(_) => Some(End::Stalled(self.stall)),
                Ok(Ok(Some(bytes))) => {
                    streamed.bytes += bytes.len() as u64;
                    self.recorder.health.update(|h| h.last_byte = Some(Timestamp::now()));
                    decoder.push(&bytes, |o| outputs.push(o));
                    None
                }
                Ok(Ok(None)) => Some(End::Closed),
                Ok(Err(e)) => Some(End::Failed(format!("the stream broke: {}", describe_reqwest(&e)))),
            };
            if ended.is_some() {
                while let Some(o) = decoder.finish() {
                    outputs.push(o);
                }
            }
            if !self.handle(&mut outputs, &mut conn, streamed, &mut frame_errors).await {
                return End::Stopped;
            }
            if let Some(end) = ended {
                return end;
            }
        }
    }

    /// Act on decoded outputs. `false` when camgate stopped while events waited for the store.
    async fn handle(
        &self,
        outputs: &mut Vec<Output>,
        conn: &mut Connection,
        streamed: &mut Streamed,
        frame_errors: &mut u64,
    ) -> bool {
        if outputs.is_empty() {
            return true;
        }
        let r = self.recorder;
        let received_at = camgate_core::time::now_ms();
        let mut events = Vec::new();
        for o in outputs.drain(..) {
            match o {
                Output::Event(n) => {
                    r.count_part("event");
                    events.push(r.to_event(*n, conn, received_at));
                }
                Output::Heartbeat { .. } => r.count_part("heartbeat"),
                Output::Filtered { .. } => r.count_part("filtered"),
                Output::Unrecognised { offset, text, truncated } => {
                    r.count_part("unrecognised");
                    let reason = if truncated {
                        format!("a part cut short at stream offset {offset}")
                    } else {
                        format!("a part in no known shape at stream offset {offset}")
                    };
                    tracing::warn!(device = %r.camera.name, bytes = text.len(), "{reason}; kept as a dead letter");
                    r.dead_letter(reason, text.into_bytes()).await;
                }
                Output::Frame(e) => {
                    r.count_part("frame_error");
                    *frame_errors += 1;
                    // The parser has resynchronised; say it once per connection, count the rest.
                    if *frame_errors == 1 {
                        tracing::warn!(device = %r.camera.name, error = %e, "unframeable bytes in the event stream (counted in camgate_dahua_parts{{kind=\"frame_error\"}}; further ones on this connection are not logged)");
                    }
                }
            }
        }
        streamed.events += events.len() as u64;
        r.store(events, self.stop).await
    }
}

/// Drop the response head but a copy of its `Content-Type` (all the stream reads of it)
/// before the body is read. Header values are slices of the connection's first 8 KiB read
/// buffer: kept, they would pin that buffer for the life of the stream and hyper would read
/// the body into a second one, 8 KiB more per device (`scripts/bench_dahua_streams.py`).
fn release_head(response: &mut reqwest::Response) {
    use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    let headers = response.headers_mut();
    *headers = HeaderMap::with_capacity(1);
    if let Some(v) = content_type {
        headers.insert(CONTENT_TYPE, v);
    }
}

/// `codes=[All]` (any case) in a target.
fn all_codes(target: &str) -> bool {
    target.to_ascii_lowercase().contains("codes=[all]")
}

/// ": <start of the body>" for an error status, read with a short deadline.
async fn error_body(response: reqwest::Response) -> String {
    let Ok(Ok(bytes)) = tokio::time::timeout(Duration::from_secs(2), response.bytes()).await else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return String::new();
    }
    let cut: String = text.chars().take(ERROR_BODY_QUOTE).collect();
    format!(": {cut}")
}

/// A reqwest error with its causes, never the URL's credentials (camgate puts none there).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut s = if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        "HTTP error".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The `device` event data for a stream that ended.
pub fn ended_data(end: &End, streamed: Option<&Streamed>) -> serde_json::Value {
    let mut data = serde_json::json!({ "reason": end.describe() });
    if let Some(s) = streamed {
        data["streamed_seconds"] = serde_json::json!((s.since.elapsed().as_millis() as f64) / 1000.0);
        data["bytes"] = s.bytes.into();
        data["events"] = s.events.into();
    }
    data
}
