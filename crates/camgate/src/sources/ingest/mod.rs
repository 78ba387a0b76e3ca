//! The generic source: `POST /api/ingest` with one event in camgate's own JSON model.
//!
//! The reply is 200 only after the event committed; 400 names what is wrong with the body;
//! 401 without the shared token when one is configured; 413 over `max_body`; 503 when the
//! store cannot take it (full disk, shutting down).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use camgate_core::config::Secret;
use camgate_core::{Event, EventId};
use camgate_protocols::generic::{IngestEvent, parse_ingest};
use jiff::Timestamp;
use serde_json::json;

use crate::metrics::{Metrics, ReasonLabels};
use crate::sources::SourceHandle;
use crate::store::{Appended, Store};

/// What the ingest handler needs.
#[derive(Clone)]
pub struct IngestState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub token: Option<Secret>,
    pub health: SourceHandle,
}

/// The routes of the generic source, to mount on the webhook listener.
pub fn router(state: IngestState, max_body: usize) -> axum::Router {
    axum::Router::new().route("/api/ingest", post(ingest)).layer(DefaultBodyLimit::max(max_body)).with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Whether the request carries the token, compared in constant time.
fn authorised(token: &Secret, headers: &HeaderMap) -> bool {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .or_else(|| headers.get("x-camgate-token").and_then(|v| v.to_str().ok()));
    given.is_some_and(|g| constant_time_eq::constant_time_eq(g.trim().as_bytes(), token.expose().as_bytes()))
}

/// Build the stored event from a validated post.
pub fn to_event(p: IngestEvent, received_at: Timestamp) -> (Event, Vec<(String, Vec<u8>)>) {
    let id = EventId::new();
    let key = p.key.unwrap_or_else(|| format!("generic:{}:{id}", p.source));
    let event = Event {
        id,
        key,
        source: p.source,
        vendor: p.vendor,
        kind: p.kind,
        code: p.code,
        state: p.state,
        channel: p.channel,
        rule: p.rule,
        occurred_at: p.occurred_at,
        received_at,
        plate: p.plate,
        face: p.face,
        objects: p.objects,
        counts: p.counts,
        data: p.data,
        images: Vec::new(),
        schedule: p.schedule,
    };
    (event, p.images.into_iter().map(|i| (i.role, i.bytes)).collect())
}

async fn ingest(
    State(s): State<IngestState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let reject = |reason: &str| s.metrics.ingest_rejected.get_or_create(&ReasonLabels::new(reason)).inc();
    if let Some(token) = &s.token
        && !authorised(token, &headers)
    {
        reject("unauthorized");
        tracing::warn!("ingest refused: missing or wrong token");
        return error(StatusCode::UNAUTHORIZED, "missing or wrong token: send `Authorization: Bearer <token>`");
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let status = e.status();
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "body" };
            reject(reason);
            tracing::warn!(%status, error = %e.body_text(), "ingest refused: could not read the body");
            return error(status, e.body_text());
        }
    };
    let received_at = Timestamp::now();
    let parsed = match parse_ingest(&body) {
        Ok(p) => p,
        Err(e) => {
            reject("invalid");
            s.health.rejected(&e.to_string());
            tracing::warn!(error = %e, bytes = body.len(), "ingest refused: invalid event");
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let (event, images) = to_event(parsed, received_at);
    let (id, key) = (event.id, event.key.clone());
    match s.store.append_with_images(event, images).await {
        Ok(outcome) => {
            s.health.event();
            let (seq, duplicate) = match outcome {
                Appended::New(seq) => (Some(seq), false),
                Appended::Duplicate => (None, true),
            };
            let mut body = json!({ "id": id, "key": key, "duplicate": duplicate });
            if let Some(seq) = seq {
                body["seq"] = seq.into();
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(e) => {
            reject("store");
            tracing::error!(error = %e, %key, "ingest could not store the event; answered 503");
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, format!("event not stored: {e}"));
            r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("5"));
            r
        }
    }
}
