//! The `[http]` listener: REST API, live event stream, metrics.

pub mod api;
pub mod server;

pub use api::{ApiState, router};
pub use server::{PeerAddr, ServerLimits, bind, serve};
