//! Prometheus metrics, one registry per gateway (served on `/metrics`).
//!
//! `prometheus-client` rather than the global `metrics` facade: several gateways can run in
//! one process (tests, embedders) and each needs its own registry; label sets are typed.

use std::collections::HashSet;
use std::sync::Mutex;

use camgate_core::Kind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Distinct `source` label values kept before further sources are counted as `_other`, so
/// that a client posting random source names cannot grow the metrics without bound.
const MAX_SOURCES: usize = 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub source: String,
    pub kind: String,
}

impl EventLabels {
    pub fn new(source: &str, kind: Kind) -> Self {
        EventLabels { source: source.to_owned(), kind: kind.as_str().to_owned() }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

impl SourceLabels {
    pub fn new(source: &str) -> Self {
        SourceLabels { source: source.to_owned() }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

impl ReasonLabels {
    pub fn new(reason: &str) -> Self {
        ReasonLabels { reason: reason.to_owned() }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PostLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    pub zone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AvigilonLabels {
    /// The `[[avigilon]]` name.
    pub site: String,
    /// `login`, `logout`, `server/ids`, `cameras`, `events/search`.
    pub route: String,
    /// `ok`, `auth` (401/403), `error` (another error answer), `invalid` (not the expected
    /// JSON), `transport` (no answer: connect error, timeout).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: String,
}

/// Every metric camgate exports.
pub struct Metrics {
    registry: Registry,
    sources: Mutex<HashSet<String>>,
    pub events_stored: Family<EventLabels, Counter>,
    pub events_duplicate: Family<EventLabels, Counter>,
    /// New events stored for their key and the zones only (a `history` filter left them out).
    pub events_not_history: Family<EventLabels, Counter>,
    pub dead_letters: Family<SourceLabels, Counter>,
    pub ingest_rejected: Family<ReasonLabels, Counter>,
    pub writer_batch_events: Histogram,
    pub writer_commit_seconds: Histogram,
    pub writer_errors: Family<ReasonLabels, Counter>,
    pub store_wal_bytes: Gauge,
    pub store_wal_restarts: Counter,
    pub store_checkpoint_hold_seconds: Histogram,
    pub sink_delivered: Family<SinkLabels, Counter>,
    pub sink_failures: Family<SinkLabels, Counter>,
    pub sink_lag_events: Family<SinkLabels, Gauge>,
    pub sink_lag_seconds: Family<SinkLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub sink_live_dropped: Family<SinkLabels, Counter>,
    pub connections_refused: Family<ListenerLabels, Counter>,
    pub connections_open: Family<ListenerLabels, Gauge>,
    pub connections_timed_out: Family<ListenerLabels, Counter>,
    pub bus_lagged: Counter,
    pub viewtron_posts: Family<PostLabels, Counter>,
    pub image_errors: Family<SourceLabels, Counter>,
    pub zone_count: Family<ZoneLabels, Gauge>,
    pub zone_entries: Family<ZoneLabels, Gauge>,
    pub zone_exits: Family<ZoneLabels, Gauge>,
    pub zone_capacity: Family<ZoneLabels, Gauge>,
    pub zone_over_capacity: Family<ZoneLabels, Gauge>,
    pub dahua_parts: Family<PostLabels, Counter>,
    pub dahua_stream_ends: Family<ReasonLabels, Counter>,
    pub avigilon_requests: Family<AvigilonLabels, Counter>,
    pub avigilon_cycle_seconds: Family<SourceLabels, Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("camgate");
        let m = Metrics {
            registry: Registry::default(),
            sources: Mutex::new(HashSet::new()),
            events_stored: Family::default(),
            events_duplicate: Family::default(),
            events_not_history: Family::default(),
            dead_letters: Family::default(),
            ingest_rejected: Family::default(),
            writer_batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            writer_commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            writer_errors: Family::default(),
            store_wal_bytes: Gauge::default(),
            store_wal_restarts: Counter::default(),
            store_checkpoint_hold_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            sink_delivered: Family::default(),
            sink_failures: Family::default(),
            sink_lag_events: Family::default(),
            sink_lag_seconds: Family::default(),
            sink_live_dropped: Family::default(),
            connections_refused: Family::default(),
            connections_open: Family::default(),
            connections_timed_out: Family::default(),
            bus_lagged: Counter::default(),
            viewtron_posts: Family::default(),
            image_errors: Family::default(),
            zone_count: Family::default(),
            zone_entries: Family::default(),
            zone_exits: Family::default(),
            zone_capacity: Family::default(),
            zone_over_capacity: Family::default(),
            dahua_parts: Family::default(),
            dahua_stream_ends: Family::default(),
            avigilon_requests: Family::default(),
            avigilon_cycle_seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 14))),
        };
        registry.register("events_stored", "Events committed to the store as history", m.events_stored.clone());
        registry.register(
            "events_duplicate",
            "Events not stored because their key was already stored",
            m.events_duplicate.clone(),
        );
        registry.register(
            "events_not_history",
            "Events stored for de-duplication and zone counting only: their source's history filter left them out",
            m.events_not_history.clone(),
        );
        registry.register("dead_letters", "Payloads that could not be parsed, kept verbatim", m.dead_letters.clone());
        registry.register("ingest_rejected", "Requests to /api/ingest refused, by reason", m.ingest_rejected.clone());
        registry.register("writer_batch_events", "Events per store transaction", m.writer_batch_events.clone());
        registry.register(
            "writer_commit_seconds",
            "Time to write and commit one store transaction",
            m.writer_commit_seconds.clone(),
        );
        registry.register("writer_errors", "Store transactions that failed, by reason", m.writer_errors.clone());
        registry.register(
            "store_wal_bytes",
            "Size of the WAL's content at the last checkpoint (frames times page size)",
            m.store_wal_bytes.clone(),
        );
        registry.register(
            "store_wal_restarts",
            "Times writes were held for a moment so that the WAL, grown past store.wal_max, starts over",
            m.store_wal_restarts.clone(),
        );
        registry.register(
            "store_checkpoint_hold_seconds",
            "How long writes were held for a checkpoint that lets the WAL start over",
            m.store_checkpoint_hold_seconds.clone(),
        );
        registry.register("sink_delivered", "Events a sink delivered", m.sink_delivered.clone());
        registry.register("sink_failures", "Failed delivery attempts of a sink", m.sink_failures.clone());
        registry.register("sink_lag_events", "Stored events a sink has not delivered yet", m.sink_lag_events.clone());
        registry.register(
            "sink_lag_seconds",
            "Age of the oldest event a sink has not delivered yet",
            m.sink_lag_seconds.clone(),
        );
        registry.register(
            "sink_live_dropped",
            "Live-only events (not stored) a sink missed or failed to deliver",
            m.sink_live_dropped.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at once because a listener was at its limit",
            m.connections_refused.clone(),
        );
        registry.register("connections_open", "Open connections per listener", m.connections_open.clone());
        registry.register(
            "connections_timed_out",
            "Connections closed because no complete request headers came within the header timeout",
            m.connections_timed_out.clone(),
        );
        registry.register("bus_lagged", "Live events a slow live subscriber missed", m.bus_lagged.clone());
        registry.register(
            "viewtron_posts",
            "Viewtron posts by kind: keepalive, event, status, traject, unparsed, refused",
            m.viewtron_posts.clone(),
        );
        registry.register("image_errors", "Images in device posts that could not be decoded", m.image_errors.clone());
        registry.register("zone_count", "Occupancy of each zone in its current period", m.zone_count.clone());
        registry.register("zone_entries", "Entries counted in each zone's current period", m.zone_entries.clone());
        registry.register("zone_exits", "Exits counted in each zone's current period", m.zone_exits.clone());
        registry.register("zone_capacity", "Configured capacity of each zone that has one", m.zone_capacity.clone());
        registry.register(
            "zone_over_capacity",
            "1 while a zone is between capacity_exceeded and capacity_recovered",
            m.zone_over_capacity.clone(),
        );
        registry.register(
            "dahua_parts",
            "Parts of Dahua event streams by kind: event, heartbeat, filtered, unrecognised, frame_error",
            m.dahua_parts.clone(),
        );
        registry.register(
            "dahua_stream_ends",
            "Dahua event streams that ended or failed to start, by reason: closed, stalled, recycled, failed, auth_failed, codes_refused",
            m.dahua_stream_ends.clone(),
        );
        registry.register(
            "avigilon_requests",
            "Requests to Avigilon Web Endpoints by site, route and outcome: ok, auth, error, invalid, transport",
            m.avigilon_requests.clone(),
        );
        registry.register(
            "avigilon_cycle_seconds",
            "Time one Avigilon poll cycle (every camera of a site) took",
            m.avigilon_cycle_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The `source` label for a source name, bounded in cardinality.
    pub fn source_label(&self, source: &str) -> String {
        let mut known = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(source) {
            return source.to_owned();
        }
        if known.len() < MAX_SOURCES {
            known.insert(source.to_owned());
            return source.to_owned();
        }
        "_other".to_owned()
    }

    pub fn event_labels(&self, source: &str, kind: Kind) -> EventLabels {
        EventLabels { source: self.source_label(source), kind: kind.as_str().to_owned() }
    }

    pub fn sink_labels(sink: &str) -> SinkLabels {
        SinkLabels { sink: sink.to_owned() }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
