//! Idle kept-alive client connections, per endpoint, with an idle timeout.

use std::collections::HashMap;
use std::time::Duration;

use super::client::Endpoint;
use crate::time::Instant;

/// Idle connections of type `C` (whatever the adapter's stream is), newest first out.
/// Dropping a connection closes it.
#[derive(Debug)]
pub struct Pool<C> {
    idle: HashMap<Endpoint, Vec<(Instant, C)>>,
    max_per_endpoint: usize,
    idle_timeout: Duration,
}

impl<C> Pool<C> {
    /// An empty pool keeping at most `max_per_endpoint` idle connections per endpoint,
    /// each for at most `idle_timeout`.
    pub fn new(max_per_endpoint: usize, idle_timeout: Duration) -> Self {
        Pool {
            idle: HashMap::new(),
            max_per_endpoint,
            idle_timeout,
        }
    }

    /// The most recently used live connection to `endpoint`, if any.
    pub fn checkout(&mut self, endpoint: &Endpoint, now: Instant) -> Option<C> {
        let timeout = self.idle_timeout;
        let conns = self.idle.get_mut(endpoint)?;
        conns.retain(|(since, _)| now.saturating_duration_since(*since) < timeout);
        let conn = conns.pop().map(|(_, c)| c);
        if conns.is_empty() {
            self.idle.remove(endpoint);
        }
        conn
    }

    /// Keeps `conn` for the next request to `endpoint` (or drops it when full).
    pub fn checkin(&mut self, endpoint: Endpoint, conn: C, now: Instant) {
        if self.max_per_endpoint == 0 || self.idle_timeout.is_zero() {
            return;
        }
        let conns = self.idle.entry(endpoint).or_default();
        if conns.len() >= self.max_per_endpoint {
            conns.remove(0);
        }
        conns.push((now, conn));
    }

    /// Drops connections idle for the idle timeout or longer.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.idle_timeout;
        self.idle.retain(|_, conns| {
            conns.retain(|(since, _)| now.saturating_duration_since(*since) < timeout);
            !conns.is_empty()
        });
    }

    /// When the oldest idle connection expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.idle
            .values()
            .flat_map(|conns| conns.iter().map(|(since, _)| *since))
            .min()
            .map(|since| since.saturating_add(self.idle_timeout))
    }

    /// Idle connections held.
    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.idle.is_empty()
    }

    /// Drops every connection.
    pub fn clear(&mut self) {
        self.idle.clear();
    }
}
