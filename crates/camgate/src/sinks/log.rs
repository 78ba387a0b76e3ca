//! The `log` sink: one human line per event through `tracing`.

use std::fmt::Write;
use std::sync::Arc;

use camgate_core::Event;
use futures::future::BoxFuture;

use super::{Sink, SinkError};
use crate::store::StoredEvent;

/// Logs every event at INFO as `EVENT <code> [state] source=... ch=... at=... rule=...`.
#[derive(Debug, Default)]
pub struct LogSink;

/// The human line for one event.
pub fn format_event(e: &Event) -> String {
    let mut s = String::with_capacity(128);
    s.push_str("EVENT ");
    s.push_str(e.code.as_deref().unwrap_or(e.kind.as_str()));
    if let Some(state) = e.state {
        let _ = write!(s, " [{}]", state.as_str());
    }
    let _ = write!(s, " source={}", Quoted(&e.source));
    if let Some(ch) = e.channel {
        let _ = write!(s, " ch={ch}");
    }
    if let Some(at) = e.occurred_at {
        let _ = write!(s, " at={at}");
    }
    if let Some(rule) = &e.rule {
        let _ = write!(s, " rule={}", Quoted(rule));
    }
    if let Some(p) = &e.plate {
        let _ = write!(s, " plate={}", p.number);
        if let Some(list) = &p.list {
            let _ = write!(s, " list={list}");
        }
        if let Some(c) = p.confidence {
            let _ = write!(s, " confidence={c}");
        }
    }
    if let Some(f) = &e.face {
        let mut attrs = Vec::new();
        attrs.extend(f.sex.clone());
        attrs.extend(f.age.clone());
        if f.glasses == Some(true) {
            attrs.push("glasses".into());
        }
        if f.mask == Some(true) {
            attrs.push("mask".into());
        }
        if !attrs.is_empty() {
            let _ = write!(s, " face={}", attrs.join(","));
        }
    }
    if let Some(c) = &e.counts {
        let parts: Vec<String> = [("enter", c.enter), ("exit", c.exit), ("total", c.total)]
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| format!("{n}:{v}")))
            .collect();
        let _ = write!(s, " counts={}", parts.join(","));
    }
    if !e.objects.is_empty() {
        let kinds: Vec<&str> = e.objects.iter().map(|o| o.kind.as_str()).collect();
        let _ = write!(s, " objects={}", kinds.join(","));
    }
    if !e.images.is_empty() {
        let _ = write!(s, " images={}", e.images.len());
    }
    if let Some(sched) = &e.schedule {
        let _ = write!(s, " schedule={}", Quoted(sched));
    }
    if e.code.is_some() {
        let _ = write!(s, " kind={}", e.kind);
    }
    s
}

/// A value as is when it is one word, else quoted, so that `key=value` pairs stay parseable.
struct Quoted<'a>(&'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.0.is_empty() && !self.0.contains(|c: char| c.is_whitespace() || c == '"' || c == '=' || c.is_control())
        {
            f.write_str(self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

impl Sink for LogSink {
    fn deliver<'a>(&'a mut self, events: &'a [Arc<StoredEvent>]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            for e in events {
                if e.seq == 0 {
                    tracing::info!(target: "camgate::event", parent: None, "{} live", format_event(&e.event));
                } else {
                    tracing::info!(target: "camgate::event", parent: None, "{} seq={}", format_event(&e.event), e.seq);
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camgate_core::{Counts, Face, Kind, Plate, State, Vendor};

    #[test]
    fn motion_line_matches_the_documented_shape() {
        let mut e = Event::new("k", "front", Vendor::Dahua, Kind::Motion);
        e.code = Some("VideoMotion".into());
        e.state = Some(State::Start);
        e.channel = std::num::NonZeroU32::new(1);
        e.occurred_at = Some("2026-11-21T15:33:41Z".parse().unwrap());
        e.rule = Some("Region1".into());
        assert_eq!(
            format_event(&e),
            "EVENT VideoMotion [start] source=front ch=1 at=2026-11-21T15:33:41Z rule=Region1 kind=motion"
        );
    }

    #[test]
    fn plate_face_and_counts_are_shown() {
        let mut e = Event::new("k", "gate", Vendor::Viewtron, Kind::Plate);
        e.plate = Some(Plate { number: "ABC1234".into(), list: Some("white".into()), ..Default::default() });
        e.face = Some(Face { sex: Some("male".into()), glasses: Some(true), ..Default::default() });
        e.counts = Some(Counts { enter: Some(3), exit: Some(1), total: None });
        e.rule = Some("Gate 1".into());
        let line = format_event(&e);
        assert!(line.contains(" rule=\"Gate 1\""), "{line}");
        assert!(line.starts_with("EVENT plate source=gate"), "{line}");
        assert!(line.contains(" plate=ABC1234 list=white"), "{line}");
        assert!(line.contains(" face=male,glasses"), "{line}");
        assert!(line.contains(" counts=enter:3,exit:1"), "{line}");
    }
}
