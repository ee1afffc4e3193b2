//! Runtime adapter: supplies sockets, timers and TLS to `metrics-core`.
//!
//! Empty until the runtime issue lands; the crate exists so the workspace layout is fixed.
