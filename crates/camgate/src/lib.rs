//! camgate: a camera event gateway, as a daemon and as a library.
//!
//! Events come in from sources (`sources/`), are committed to the store (`store/`), and
//! are delivered by sinks (`sinks/`) that each keep their own cursor. The HTTP API
//! (`web/`) serves the stored and live events, source health and metrics.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use camgate::app::Gateway;
//! use camgate_core::config::Config;
//!
//! let config = Config::from_toml("[webhook]\nlisten = \"127.0.0.1:0\"", "inline")?;
//! let gateway = Gateway::start(&config).await?;
//! let mut live = gateway.bus().subscribe();
//! while let Ok(stored) = live.recv().await {
//!     println!("{} {}", stored.seq, stored.event.kind);
//! }
//! gateway.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod bus;
pub mod cli;
pub mod logging;
pub mod metrics;
pub mod occupancy;
pub mod schedule;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod web;

pub use camgate_core as core;
pub use camgate_protocols as protocols;
/// The embeddable Viewtron webhook server (see [`viewtron::Server`]).
pub use sources::viewtron;
