//! Test data for the metrics server: recorded-format kubelet payloads with known answers,
//! and (in `generator`) a seeded cluster model that renders kubelet payloads whose true
//! values are known. Used by tests, simulations, benchmarks and the demo.

pub mod apiserver;
pub mod batches;
pub mod fixtures;
pub mod generator;
pub mod gofloat;
