//! The metrics.k8s.io API: routing, objects, errors, discovery, health, self-metrics.
//!
//! [`dispatch::Api::handle`] is a pure function of the request, the current snapshot, the
//! cluster's objects and the health state handed in; it writes the body into the
//! caller's buffer and returns the response head.

pub mod discovery;
pub mod dispatch;
pub mod encode;
pub mod health;
pub mod json;
pub mod negotiate;
pub mod objects;
pub mod openapi;
pub mod protobuf;
pub mod router;

pub mod selector;
pub mod selfmetrics;
pub mod status;
pub mod yaml;
