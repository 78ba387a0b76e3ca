//! What a simulated device did, and what the receiver answered.

use std::collections::BTreeMap;
use std::fmt;

use super::device::Fault;
use super::{Family, PostKind, SentEvent};

/// Counters of one [`run`](super::Device::run) or [`run_script`](super::Device::run_script).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Family of the device (`None` only for an empty default report).
    pub family: Option<Family>,
    /// Clean posts written, by kind (faulty ones are in `faults`).
    pub sent: BTreeMap<PostKind, u64>,
    /// Faulty posts written, by fault (a [`Fault::Duplicate`] counts its resend here).
    pub faults: BTreeMap<Fault, u64>,
    /// Replies `200`.
    pub ok: u64,
    /// Replies `200` whose body was not the 126-byte success XML.
    pub bad_reply_body: u64,
    /// Other final replies, by status code.
    pub refused: BTreeMap<u16, u64>,
    /// Requests that got no complete reply: connect failures, resets, timeouts, early
    /// closes, unreadable replies (truncated-body faults expect none and are not counted).
    pub connection_errors: u64,
    /// `connection_errors` by cause: `connect`, `reset`, `broken-pipe`, `io`, `timeout`,
    /// `closed`, `bad-reply`.
    pub errors: BTreeMap<&'static str, u64>,
    /// TCP connections opened.
    pub connections: u64,
    /// Requests re-sent once on a fresh connection because the kept-alive one turned out
    /// closed before any reply byte (what HTTP clients do for stale connections).
    pub stale_retries: u64,
    /// `Expect: 100-continue` requests that got `100 Continue`.
    pub continues: u64,
    /// `Expect: 100-continue` requests that sent the body after the wait timed out.
    pub continue_timeouts: u64,
    /// Event posts answered 200, each once (a resend answered 200 again counts in
    /// `duplicates_acked` instead), in the order the replies arrived.
    pub events: Vec<SentEvent>,
    /// Deliberate resends of an already acknowledged event answered 200.
    pub duplicates_acked: u64,
}

impl Report {
    /// All posts written (clean and faulty).
    pub fn posts(&self) -> u64 {
        self.sent.values().sum::<u64>() + self.faults.values().sum::<u64>()
    }

    /// Clean posts of one kind.
    pub fn sent_of(&self, kind: PostKind) -> u64 {
        self.sent.get(&kind).copied().unwrap_or(0)
    }

    /// Replies with `status` (200 included).
    pub fn status_count(&self, status: u16) -> u64 {
        if status == 200 { self.ok } else { self.refused.get(&status).copied().unwrap_or(0) }
    }

    pub(crate) fn count_sent(&mut self, kind: PostKind) {
        *self.sent.entry(kind).or_default() += 1;
    }

    pub(crate) fn count_fault(&mut self, fault: Fault) {
        *self.faults.entry(fault).or_default() += 1;
    }

    pub(crate) fn count_error(&mut self, cause: &'static str) {
        self.connection_errors += 1;
        *self.errors.entry(cause).or_default() += 1;
    }

    /// Add another report's counters (several devices of a demo).
    pub fn merge(&mut self, other: Report) {
        if self.family.is_none() {
            self.family = other.family;
        }
        for (k, v) in other.sent {
            *self.sent.entry(k).or_default() += v;
        }
        for (k, v) in other.faults {
            *self.faults.entry(k).or_default() += v;
        }
        for (k, v) in other.refused {
            *self.refused.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.ok += other.ok;
        self.bad_reply_body += other.bad_reply_body;
        self.connection_errors += other.connection_errors;
        self.connections += other.connections;
        self.stale_retries += other.stale_retries;
        self.continues += other.continues;
        self.continue_timeouts += other.continue_timeouts;
        self.duplicates_acked += other.duplicates_acked;
        self.events.extend(other.events);
    }
}

impl fmt::Display for Report {
    /// One line, e.g. `viewtron ipc: 120 posts (60 keepalive, 12 traject, 8 alarm-status,
    /// 40 events), 120 × 200, 0 refused, 0 connection errors over 1 connection; 52 events
    /// acknowledged`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = self.family.map_or("device", Family::as_str);
        let (mut keepalive, mut traject, mut status, mut events) = (0, 0, 0, 0);
        for (k, v) in &self.sent {
            match k {
                PostKind::Keepalive(_) => keepalive += v,
                PostKind::Traject => traject += v,
                PostKind::AlarmStatus => status += v,
                PostKind::Event(_) => events += v,
            }
        }
        write!(
            f,
            "viewtron {family}: {} posts ({keepalive} keepalive, {traject} traject, {status} alarm-status, {events} events",
            self.posts()
        )?;
        for (fault, n) in &self.faults {
            write!(f, ", {n} {fault}")?;
        }
        write!(f, "), {} × 200", self.ok)?;
        if self.bad_reply_body > 0 {
            write!(f, " ({} with a wrong body)", self.bad_reply_body)?;
        }
        for (status, n) in &self.refused {
            write!(f, ", {n} × {status}")?;
        }
        let plural = if self.connections == 1 { "" } else { "s" };
        write!(f, ", {} connection errors over {} connection{plural}", self.connection_errors, self.connections)?;
        if !self.errors.is_empty() {
            let causes: Vec<String> = self.errors.iter().map(|(c, n)| format!("{n} {c}")).collect();
            write!(f, " ({})", causes.join(", "))?;
        }
        write!(f, "; {} events acknowledged", self.events.len())?;
        if self.duplicates_acked > 0 {
            write!(f, ", {} retries acknowledged again", self.duplicates_acked)?;
        }
        Ok(())
    }
}
