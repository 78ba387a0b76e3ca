//! Sources: where events come from. Each source reports its health to the [`Registry`],
//! which `/api/sources` shows.

pub mod avigilon;
pub mod dahua;
pub mod http;
pub mod ingest;
pub mod viewtron;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use camgate_core::Vendor;
use jiff::Timestamp;
use serde::Serialize;

/// What a source is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Waiting for devices to push (webhook listeners).
    Listening,
    Connecting,
    Connected,
    Disconnected,
    AuthFailed,
    Stopped,
}

/// Health of one source, as `/api/sources` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    pub name: String,
    pub vendor: Vendor,
    /// `push` (devices post to us) or `pull` (we connect or poll).
    pub mode: &'static str,
    pub state: SourceState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_byte: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<Timestamp>,
    /// Events stored.
    pub events: u64,
    /// Events received again under a key already stored (device retries).
    pub duplicates: u64,
    /// Input refused or kept as a dead letter.
    pub rejected: u64,
    pub reconnects: u64,
    pub auth_failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// All sources' health, shared by the sources and the HTTP API.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<BTreeMap<String, SourceHealth>>>,
}

impl Registry {
    /// Register a source and get the handle it reports through.
    pub fn register(&self, name: &str, vendor: Vendor, mode: &'static str, state: SourceState) -> SourceHandle {
        let health = SourceHealth {
            name: name.to_owned(),
            vendor,
            mode,
            state,
            connected_since: None,
            last_byte: None,
            last_event: None,
            events: 0,
            duplicates: 0,
            rejected: 0,
            reconnects: 0,
            auth_failures: 0,
            last_error: None,
        };
        self.lock().insert(name.to_owned(), health);
        SourceHandle { name: name.to_owned(), registry: self.clone() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SourceHealth>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every source, by name.
    pub fn snapshot(&self) -> Vec<SourceHealth> {
        self.lock().values().cloned().collect()
    }
}

/// A source's way to report its health.
#[derive(Debug, Clone)]
pub struct SourceHandle {
    name: String,
    registry: Registry,
}

impl SourceHandle {
    pub fn update(&self, f: impl FnOnce(&mut SourceHealth)) {
        if let Some(h) = self.registry.lock().get_mut(&self.name) {
            f(h);
        }
    }

    /// An event was accepted: stored (`new`) or a duplicate of a stored one.
    pub fn event(&self, new: bool) {
        let now = Timestamp::now();
        self.update(|h| {
            if new {
                h.events += 1;
                h.last_event = Some(now);
            } else {
                h.duplicates += 1;
            }
            h.last_byte = Some(now);
        });
    }

    /// Input was refused (bad request, unparseable payload).
    pub fn rejected(&self, error: &str) {
        let now = Timestamp::now();
        self.update(|h| {
            h.rejected += 1;
            h.last_byte = Some(now);
            h.last_error = Some(error.to_owned());
        });
    }

    pub fn set_state(&self, state: SourceState) {
        self.update(|h| h.state = state);
    }
}
