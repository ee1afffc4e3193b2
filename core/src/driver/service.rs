//! The metrics server's [`Service`]: the in-flight limit, delegated authentication and
//! authorization ([`Delegation`]), then [`Api::handle`] over a fresh [`Reader`] reading
//! per request, plus the `Audit-Id` the core cannot make up by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{self, Poll};

use http::Response;
use http::header::HeaderValue;

use super::delegation::{Attempt, Checked, Delegation};
use super::server::{Answer, IncomingRequest, Service};
use crate::api::dispatch::{Api, RequestState};
use crate::api::router::Context;
use crate::auth::GateRequest;
use crate::engine::Reader;

const AUDIT_ID: &str = "audit-id";

/// Serves the API from the engine's published state; clone one per connection.
#[derive(Debug)]
pub struct ApiService {
    api: Arc<Api>,
    reader: Reader,
    audit: Arc<AuditIds>,
    inflight: Arc<Inflight>,
    delegation: Option<Arc<Delegation>>,
    /// The request this connection is answering, while it waits for a review.
    current: Option<Current>,
}

/// A request waiting for a review keeps its in-flight slot.
#[derive(Debug)]
struct Current {
    attempt: Attempt,
    _slot: Option<InflightGuard>,
}

impl Clone for ApiService {
    /// A service for another connection: shared state, no request of its own.
    fn clone(&self) -> Self {
        ApiService {
            api: Arc::clone(&self.api),
            reader: self.reader.clone(),
            audit: Arc::clone(&self.audit),
            inflight: Arc::clone(&self.inflight),
            delegation: self.delegation.clone(),
            current: None,
        }
    }
}

/// `--max-requests-inflight`: requests being answered at once, across connections.
#[derive(Debug, Default)]
struct Inflight {
    current: AtomicUsize,
    /// 0 means no limit, as upstream.
    limit: usize,
}

/// Probes are never turned away: a busy server is not an unhealthy one.
fn exempt_from_inflight_limit(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz")
}

/// Upstream's answer beyond the in-flight limit: plain text, not a Status.
fn too_many_requests(body: &mut Vec<u8>) -> Response<()> {
    body.clear();
    body.extend_from_slice(b"Too many requests, please try again later.\n");
    let mut response = Response::new(());
    *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
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
            inflight: Arc::default(),
            delegation: None,
            current: None,
        }
    }

    /// Authenticates and authorizes every request through `delegation` (spec 5) before
    /// serving it. Without, every request is served.
    pub fn with_delegation(mut self, delegation: Arc<Delegation>) -> Self {
        self.delegation = Some(delegation);
        self
    }

    /// Answers 429 (with `Retry-After: 1`) to requests beyond `limit` being answered at
    /// once; 0 disables the limit. Health probes are exempt.
    pub fn with_max_inflight(mut self, limit: usize) -> Self {
        self.inflight = Arc::new(Inflight {
            current: AtomicUsize::new(0),
            limit,
        });
        self
    }
}

/// Counts one request in flight until dropped.
#[derive(Debug)]
struct InflightGuard(Arc<Inflight>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ApiService {
    /// Takes an in-flight slot for a new request; `Err` when the limit is reached.
    fn admit(&self, path: &str) -> Result<Option<InflightGuard>, ()> {
        let inflight = &self.inflight;
        if inflight.limit == 0 || exempt_from_inflight_limit(path) {
            return Ok(None);
        }
        if inflight.current.fetch_add(1, Ordering::AcqRel) >= inflight.limit {
            inflight.current.fetch_sub(1, Ordering::AcqRel);
            return Err(());
        }
        Ok(Some(InflightGuard(Arc::clone(inflight))))
    }

    fn with_audit_id(&self, mut response: Response<()>) -> Response<()> {
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

impl Service for ApiService {
    fn answer(&mut self, request: &IncomingRequest<'_>, body: &mut Vec<u8>) -> Answer {
        let mut current = match self.current.take() {
            Some(current) => current,
            None => match self.admit(request.parts.uri.path()) {
                Ok(slot) => Current {
                    attempt: Attempt::default(),
                    _slot: slot,
                },
                Err(()) => return Answer::Respond(too_many_requests(body)),
            },
        };
        if let Some(delegation) = &self.delegation {
            let gate_request = GateRequest {
                parts: request.parts,
                certificates: &request.peer.certificates,
                wall: request.wall,
            };
            match delegation.check(&gate_request, request.now, body, &mut current.attempt) {
                Checked::Proceed(_) => body.clear(),
                Checked::Refuse(refusal) => {
                    return Answer::Respond(self.with_audit_id(refusal.response));
                }
                Checked::Wait => {
                    self.current = Some(current);
                    return Answer::Wait;
                }
            }
        }
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
        let response = self.api.handle(request.parts, &state, body);
        drop(current);
        Answer::Respond(self.with_audit_id(response))
    }

    fn poll_wake(&mut self, cx: &mut task::Context<'_>) -> Poll<()> {
        match (&self.delegation, &self.current) {
            (Some(delegation), Some(current)) => delegation.poll_wake(&current.attempt, cx),
            _ => Poll::Ready(()),
        }
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
    fn driver_requests_beyond_the_inflight_limit_get_429() {
        let engine = crate::engine::Engine::new(
            crate::engine::EngineConfig::new(std::time::Duration::from_secs(15), 1),
            crate::time::Instant::from_nanos(0),
        );
        let api = Arc::new(Api::new(crate::api::dispatch::ApiConfig {
            server_address: ":10250".into(),
            version: Default::default(),
            release: "v0.1.0".into(),
        }));
        let mut service = ApiService::new(api, engine.reader(), 1).with_max_inflight(2);
        let peer = super::super::server::Peer::default();
        let call = |service: &mut ApiService, path: &str| {
            let parts = http::Request::builder()
                .uri(path)
                .body(())
                .expect("request")
                .into_parts()
                .0;
            let request = IncomingRequest {
                parts: &parts,
                body: &[],
                peer: &peer,
                now: crate::time::Instant::from_nanos(0),
                wall: crate::time::Timestamp::from_unix_secs(1_700_000_000),
            };
            let mut body = Vec::new();
            let head = match service.answer(&request, &mut body) {
                Answer::Respond(head) => head,
                Answer::Wait => panic!("no delegation, no waiting"),
            };
            (head, body)
        };
        // Two requests still being answered elsewhere (other connections' tasks).
        service.inflight.current.store(2, Ordering::SeqCst);
        let (head, body) = call(&mut service, "/apis/metrics.k8s.io/v1beta1/nodes");
        assert_eq!(head.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            head.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        assert_eq!(body, b"Too many requests, please try again later.\n");
        assert_eq!(
            service.inflight.current.load(Ordering::SeqCst),
            2,
            "a refused request is not counted"
        );
        // Probes are exempt; below the limit requests are served and uncounted after.
        assert_ne!(
            call(&mut service, "/livez").0.status(),
            http::StatusCode::TOO_MANY_REQUESTS
        );
        service.inflight.current.store(1, Ordering::SeqCst);
        assert_ne!(
            call(&mut service, "/apis/metrics.k8s.io/v1beta1/nodes")
                .0
                .status(),
            http::StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(service.inflight.current.load(Ordering::SeqCst), 1);
    }

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
