//! The metrics.k8s.io API: routing, objects, errors, discovery, health, self-metrics.

pub mod selector;
