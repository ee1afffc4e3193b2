//! The metrics.k8s.io API: routing, objects, errors, discovery, health, self-metrics.

pub mod encode;
pub mod health;
pub mod json;
pub mod negotiate;
pub mod objects;
pub mod protobuf;
pub mod selector;
pub mod selfmetrics;
pub mod status;
pub mod yaml;
