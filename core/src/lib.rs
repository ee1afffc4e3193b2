//! Sans-IO core of a Kubernetes metrics server.
//!
//! Nothing in this crate performs IO, reads a clock, sleeps or spawns: payloads and the
//! current time are handed in, decoded batches, snapshots and (later) actions come out.
//! The runtime adapter crates and the `metrics-server` binary drive it.

pub mod api;
pub mod auth;
pub mod cluster;
pub mod driver;
pub mod engine;
mod goquote;
pub mod http;
pub mod kubelet;
pub mod quantity;
pub mod scrape;
pub mod storage;
pub mod time;

pub use kubelet::{MetricsPoint, NodeBatch};
pub use storage::{Snapshot, Storage};
pub use time::Timestamp;
