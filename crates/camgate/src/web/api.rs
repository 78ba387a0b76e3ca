//! `GET /healthz`, `/api/events`, `/api/events/stream`, `/api/sources`, `/api/sinks`, `/api/zones`,
//! `/metrics`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use camgate_core::Kind;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::sinks::SinkStatus;
use crate::sources::Registry;
use crate::store::{EventFilter, Store, StoredEvent};

/// Most events one `/api/events` page returns.
pub const MAX_PAGE: u32 = 1000;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub bus: Bus,
    pub sources: Registry,
    pub sinks: Vec<Arc<Mutex<SinkStatus>>>,
    pub metrics: Arc<Metrics>,
    /// Cancelled at shutdown: ends live streams so that the listener can close.
    pub stop: CancellationToken,
}

pub fn router(state: ApiState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/api/events", get(events))
        .route("/api/events/stream", get(stream))
        .route("/api/sources", get(sources))
        .route("/api/sinks", get(sinks))
        .route("/api/zones", get(zones))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message.into() }))).into_response()
}

async fn healthz(State(s): State<ApiState>) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "head_seq": s.store.head() }))
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

impl EventsQuery {
    /// The filter the query asks for, or why it is invalid.
    fn filter(&self) -> Result<EventFilter, String> {
        let kind = match self.kind.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => Some(k.parse::<Kind>().map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(EventFilter { source: self.source.clone().filter(|s| !s.is_empty()), kind })
    }
}

type QueryResult = Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>;

/// The query and the filter it asks for, or the 400 that says what is wrong with it.
fn parse_query(q: QueryResult) -> Result<(EventsQuery, EventFilter), Box<Response>> {
    let Query(q) = q.map_err(|e| {
        Box::new(bad_request(format!("{}; expected after=SEQ&limit=N&source=NAME&kind=KIND", e.body_text())))
    })?;
    let filter = q.filter().map_err(|message| Box::new(bad_request(message)))?;
    Ok((q, filter))
}

async fn events(State(s): State<ApiState>, q: QueryResult) -> Response {
    let (q, filter) = match parse_query(q) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return bad_request(format!("limit must be 1..={MAX_PAGE}"));
    }
    let after = q.after.unwrap_or(0);
    match s.store.read_after(after, limit, &filter).await {
        Ok(events) => {
            let next_after = events.last().map_or(after, |e| e.seq);
            Json(json!({ "events": events, "next_after": next_after, "head_seq": s.store.head() })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reading events for the API");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}

fn sse_event(e: &StoredEvent) -> SseEvent {
    let frame = if e.seq == 0 { SseEvent::default() } else { SseEvent::default().id(e.seq.to_string()) };
    frame.event("event").json_data(e).unwrap_or_else(|_| SseEvent::default().comment("unserialisable event"))
}

fn matches(f: &EventFilter, e: &StoredEvent) -> bool {
    f.source.as_ref().is_none_or(|s| *s == e.event.source) && f.kind.is_none_or(|k| k == e.event.kind)
}

/// Live events as server-sent events. With `Last-Event-ID` (or `after=SEQ`) the stream
/// first replays what was stored after that seq, so a reconnecting client misses nothing;
/// a client too slow for the live bus is caught up from the store the same way.
async fn stream(State(s): State<ApiState>, headers: HeaderMap, q: QueryResult) -> Response {
    let (q, filter) = match parse_query(q) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(q.after);
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(256);
    let mut live = s.bus.subscribe();
    let mut live_only = s.bus.subscribe_live();
    let store = s.store.clone();
    let metrics = s.metrics.clone();
    let stop = s.stop.clone();
    tokio::spawn(async move {
        // `sent` is the highest seq the client has seen (or skipped by filter).
        let mut sent = resume.unwrap_or_else(|| store.head());
        let catch_up = |from: u64| {
            let (store, filter, tx) = (store.clone(), filter.clone(), tx.clone());
            async move {
                let mut cursor = from;
                loop {
                    let page = store.read_after(cursor, MAX_PAGE, &EventFilter::default()).await.ok()?;
                    let Some(last) = page.last().map(|e| e.seq) else { return Some(cursor) };
                    for e in page.iter().filter(|e| matches(&filter, e)) {
                        tx.send(Ok(sse_event(e))).await.ok()?;
                    }
                    cursor = last;
                }
            }
        };
        if resume.is_some() {
            match catch_up(sent).await {
                Some(c) => sent = c,
                None => return,
            }
        }
        loop {
            let next = tokio::select! {
                n = live.recv() => n,
                n = live_only.recv() => match n {
                    Ok(e) => Ok(e),
                    // Live-only events are best effort: a missed one is just missed.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        metrics.bus_lagged.inc_by(n);
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = stop.cancelled() => return,
                () = tx.closed() => return,
            };
            match next {
                Ok(e) if e.seq == 0 => {
                    // Live only (never stored): pass it on, it has no place in the sequence.
                    if matches(&filter, &e) && tx.send(Ok(sse_event(&e))).await.is_err() {
                        return;
                    }
                }
                Ok(e) if e.seq <= sent => {}
                Ok(e) => {
                    if e.seq > sent + 1 {
                        // Committed events we have not seen live: take them from the store.
                        match catch_up(sent).await {
                            Some(c) => sent = c,
                            None => return,
                        }
                        if e.seq <= sent {
                            continue;
                        }
                    }
                    sent = e.seq;
                    if matches(&filter, &e) && tx.send(Ok(sse_event(&e))).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    metrics.bus_lagged.inc_by(n);
                    match catch_up(sent).await {
                        Some(c) => sent = c,
                        None => return,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

async fn sources(State(s): State<ApiState>) -> Json<serde_json::Value> {
    Json(json!({ "sources": s.sources.snapshot() }))
}

async fn sinks(State(s): State<ApiState>) -> Json<serde_json::Value> {
    let list: Vec<SinkStatus> = s.sinks.iter().map(|st| st.lock().unwrap_or_else(|e| e.into_inner()).clone()).collect();
    Json(json!({ "sinks": list, "head_seq": s.store.head() }))
}

#[derive(Debug, Deserialize)]
pub struct ZonesQuery {
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    zone: Option<String>,
}

/// Each zone's counts in its current period, or in `?period=`; `?zone=` picks one zone.
async fn zones(
    State(s): State<ApiState>,
    q: Result<Query<ZonesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_request(format!("{}; expected period=NAME&zone=NAME", e.body_text())),
    };
    let period = q.period.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let zone = q.zone.as_deref().filter(|z| !z.is_empty());
    if let Some(name) = zone
        && s.store.occupancy().is_none_or(|o| o.zone(name).is_none())
    {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no zone named {name:?} is configured") })))
            .into_response();
    }
    match s.store.zones(period, zone, jiff::Timestamp::now()).await {
        Ok(list) => Json(json!({ "zones": list })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading zone counts for the API");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    if s.store.occupancy().is_some()
        && let Err(e) = crate::occupancy::refresh_metrics(&s.store, &s.metrics).await
    {
        tracing::warn!(error = %e, "reading zone counts for /metrics; the zone gauges may be stale");
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.render())
        .into_response()
}
