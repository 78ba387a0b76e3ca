//! Simulated devices and event generators, for camgate's tests, benchmarks and `camgate demo`.
//!
//! Each simulator talks to camgate over real TCP, the way the real device or script would.
#![forbid(unsafe_code)]

pub mod avigilon;
pub mod dahua;
pub mod generic;
pub mod viewtron;
