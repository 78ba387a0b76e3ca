//! The generic source: `POST /api/ingest` with one event in camgate's own JSON model.
//!
//! The reply is 200 only after the event committed; 400 names what is wrong with the body
//! (which is kept as a dead letter); 401 without the shared token when one is configured
//! (checked before the body is read); 408 when the body is too slow; 413 over `max_body`;
//! 503 when the store cannot take it (full disk, shutting down).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use camgate_core::config::Secret;
use camgate_core::{Event, EventId};
use camgate_protocols::generic::{IngestEvent, parse_ingest};
use jiff::Timestamp;
use serde_json::json;

use crate::metrics::{Metrics, ReasonLabels};
use crate::sources::SourceHandle;
use crate::sources::http::{error, read_body};
use crate::store::{Appended, DeadLetter, Store};
use crate::web::PeerAddr;

/// What the ingest handler needs.
#[derive(Clone)]
pub struct IngestState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub token: Option<Secret>,
    pub health: SourceHandle,
    /// Larger bodies get 413.
    pub max_body: usize,
    /// The whole body must arrive within this time, or 408.
    pub body_timeout: std::time::Duration,
}

/// The routes of the generic source, to mount on the webhook listener.
pub fn router(state: IngestState) -> axum::Router {
    axum::Router::new().route("/api/ingest", post(ingest)).with_state(state)
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
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let reject = |reason: &str| s.metrics.ingest_rejected.get_or_create(&ReasonLabels::new(reason)).inc();
    let peer = peer.map(|Extension(PeerAddr(a))| a.ip().to_string()).unwrap_or_else(|| "unknown".into());
    // The token is checked before a byte of the body is read.
    if let Some(token) = &s.token
        && !authorised(token, &headers)
    {
        reject("unauthorized");
        s.health.rejected("missing or wrong token");
        tracing::warn!(%peer, "ingest refused: missing or wrong token");
        return error(StatusCode::UNAUTHORIZED, "missing or wrong token: send `Authorization: Bearer <token>`");
    }
    let body = match read_body(&headers, body, s.max_body, s.body_timeout).await {
        Ok(b) => b,
        Err(e) => {
            let (status, reason, message) = e.describe(s.max_body, s.body_timeout);
            reject(reason);
            s.health.rejected(&message);
            tracing::warn!(%peer, %status, "ingest refused: {message}");
            let r = error(status, message);
            return r;
        }
    };
    let received_at = camgate_core::time::now_ms();
    let parsed = match parse_ingest(&body) {
        Ok(p) => p,
        Err(e) => {
            reject("invalid");
            s.health.rejected(&e.to_string());
            tracing::warn!(%peer, error = %e, bytes = body.len(), "ingest refused: invalid event; kept as a dead letter");
            let letter = DeadLetter {
                source: format!("ingest/{peer}"),
                received_at,
                reason: e.to_string(),
                payload: body.to_vec(),
            };
            if let Err(store_err) = s.store.dead_letter(letter).await {
                tracing::error!(%peer, error = %store_err, "could not keep the invalid event as a dead letter");
            }
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let (event, images) = to_event(parsed, received_at);
    let (id, key) = (event.id, event.key.clone());
    match s.store.append_with_images(event, images).await {
        Ok(Appended::New(seq)) => {
            s.health.event(true);
            (StatusCode::OK, Json(json!({ "id": id, "seq": seq, "key": key, "duplicate": false }))).into_response()
        }
        Ok(Appended::Duplicate) => {
            s.health.event(false);
            // Answer with the event that is stored under the key, not the one just refused.
            let mut body = json!({ "key": key, "duplicate": true });
            if let Ok(Some((seq, id))) = s.store.find_key(&key).await {
                body["id"] = id.into();
                body["seq"] = seq.into();
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(e) => {
            reject("store");
            s.health.rejected(&e.to_string());
            tracing::error!(%peer, error = %e, %key, "ingest could not store the event; answered 503");
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, format!("event not stored: {e}"));
            r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("5"));
            r
        }
    }
}
