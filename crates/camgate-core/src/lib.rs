//! camgate's core: the event model, ids, time, configuration types and errors.
//!
//! Nothing in this crate does I/O; the daemon (`camgate`) and the parsers
//! (`camgate-protocols`) build on it.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod config;
pub mod event;
pub mod schedule;
pub mod time;

pub use event::{BBox, Counts, Event, EventId, Face, Image, Kind, Object, Plate, State, Vehicle, Vendor};
