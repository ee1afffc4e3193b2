//! The metrics server's [`Service`]: [`Api::handle`] over a fresh [`Reader`] reading per
//! request, plus the `Audit-Id` the core cannot make up by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::Response;
use http::header::HeaderValue;

use super::server::{IncomingRequest, Service};
use crate::api::dispatch::{Api, RequestState};
use crate::api::router::Context;
use crate::engine::Reader;

const AUDIT_ID: &str = "audit-id";

/// Serves the API from the engine's published state; clone one per connection.
#[derive(Debug, Clone)]
pub struct ApiService {
    api: Arc<Api>,
    reader: Reader,
    audit: Arc<AuditIds>,
}

impl ApiService {
    /// Serves `api` from `reader`'s state. `seed` seeds the `Audit-Id` values given to
    /// requests that bring none (UUIDv4-shaped; the adapter passes a random seed, a
    /// simulation a fixed one).
    pub fn new(api: Arc<Api>, reader: Reader, seed: u64) -> Self {
        ApiService {
            api,
            reader,
            audit: Arc::new(AuditIds {
                seed,
                next: AtomicU64::new(0),
            }),
        }
    }
}

impl Service for ApiService {
    fn call(&mut self, request: &IncomingRequest<'_>, body: &mut Vec<u8>) -> Response<()> {
        let reading = self.reader.read(request.now);
        let metrics = self.reader.metrics();
        let observe = |seconds: f64| metrics.observe_freshness(seconds);
        let state = RequestState {
            ctx: Context {
                now: request.wall,
                snapshot: &reading.snapshot,
                objects: &reading.view,
                observe_freshness: &observe,
            },
            health: &reading.health,
            metrics,
        };
        let mut response = self.api.handle(request.parts, &state, body);
        if !response.headers().contains_key(AUDIT_ID) {
            let id = self.audit.next();
            if let Ok(value) = HeaderValue::try_from(id) {
                response
                    .headers_mut()
                    .insert(http::HeaderName::from_static(AUDIT_ID), value);
            }
        }
        response
    }
}

/// A seeded sequence of UUIDv4-shaped ids, shared by all connections.
#[derive(Debug)]
struct AuditIds {
    seed: u64,
    next: AtomicU64,
}

impl AuditIds {
    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let hi = mix(self.seed ^ mix(n.wrapping_mul(2)));
        let lo = mix(self.seed ^ mix(n.wrapping_mul(2).wrapping_add(1)));
        uuid_v4(hi, lo)
    }
}

/// SplitMix64's output function.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Formats 128 bits as a version-4, variant-1 UUID.
fn uuid_v4(hi: u64, lo: u64) -> String {
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_audit_ids_are_uuid_v4_and_seeded() {
        let ids = AuditIds {
            seed: 7,
            next: AtomicU64::new(0),
        };
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        let again = AuditIds {
            seed: 7,
            next: AtomicU64::new(0),
        };
        assert_eq!(again.next(), a);
    }
}
