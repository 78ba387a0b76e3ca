//! Pure, I/O-free parsers for the inputs camgate accepts: bytes in, values out.
//!
//! Each protocol has its own module. Parsers never panic on any input (they are fuzzed,
//! see `fuzz/`) and report what they could not understand in their error type.
#![forbid(unsafe_code)]

pub mod avigilon;
pub mod dahua;
pub mod dahua_auth;
pub mod generic;
pub mod key;
pub mod viewtron;
