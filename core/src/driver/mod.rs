//! What every runtime adapter would otherwise write itself: serving one accepted
//! connection, turning engine actions into request bytes and response bytes into engine
//! completions, pooling kept-alive client connections, and every timeout involved.
//!
//! An adapter is then only sockets, TLS streams, one timer per task and spawning. Time
//! comes in as the caller's monotonic [`Instant`] (and, where responses are rendered, its
//! wall-clock [`Timestamp`]); nothing here reads a clock, sleeps or performs IO.
//!
//! Serving (one task per accepted TCP connection):
//!
//! ```text
//!  accept ─▶ ServerConnection::new(now)            poll_timeout = handshake deadline
//!  TLS handshake done ─▶ handle_handshake(now, peer)
//!  loop {
//!     while let Some(bytes) = poll_transmit(now, wall) { write bytes; handle_transmitted(now) }
//!     if wants_close() { close the socket; stop }
//!     wait for: read, if wants_read() ─▶ feed(now, bytes) | feed_eof(now)
//!               timer at poll_timeout() ─▶ handle_timeout(now)
//!               poll_wake(cx) ready (a waiting request may be answered) ─▶ (loop)
//!               shutdown signal ─▶ begin_shutdown(now)
//!  }
//! ```
//!
//! A write that has not finished by [`ServerConnection::poll_timeout`] is abandoned:
//! call `handle_timeout`, which closes.
//!
//! Scraping and watching (one engine task, one task per outgoing request):
//!
//! ```text
//!  EngineDriver::handle_timeout(now, wall)             once per wake-up
//!  while let Some(cmd) = poll_command(now, wall) {
//!      Start { exchange, connection } ─▶ spawn: connect unless a pooled connection is
//!            given, write exchange.request_bytes(), feed reads to the exchange, send each
//!            poll_completion() back as Report::Completion, and end with
//!            Report::Finished (handing the connection back when exchange.reusable()).
//!            If exchange.wants_retry() (a pooled connection was dead), connect afresh,
//!            call retry_on_fresh_connection() and go again.
//!      Abort(key) ─▶ abort that task (no completion is expected)
//!  }
//!  sleep until poll_timeout(), until a Report arrives ─▶ handle_report(now, report),
//!  or until poll_ready(cx) (a connection queued a review) ─▶ (loop)
//! ```

mod client;
mod delegation;
mod engine;
mod pool;
mod server;
mod service;

#[cfg(test)]
mod tests;

pub use client::{
    ClientConfig, Completion, DELEGATED_BODY_LIMIT, DelegatedTarget, Endpoint, Exchange,
    RequestKey, TokenSource, Upstream, default_user_agent,
};
pub use delegation::{
    Attempt, Checked, ConfigMapFollow, DelegatedId, DelegatedKind, DelegatedRequest, Delegation,
    DelegationConfig, DelegationEvent, EventSink, MAX_PENDING_REVIEWS, MAX_REVIEWS_PER_REQUEST,
    REVIEW_ATTEMPTS, REVIEW_TIMEOUT,
};
pub use engine::{Command, EngineDriver, MIN_WAKE_INTERVAL, REPORTS_PER_WAKEUP, Report};
pub use pool::Pool;
pub use server::{
    ACCEPT_ERROR_DELAY, Answer, CloseReason, IncomingRequest, Peer, ServerConfig, ServerConnection,
    Service,
};
pub use service::ApiService;

pub use crate::time::{Instant, Timestamp};
