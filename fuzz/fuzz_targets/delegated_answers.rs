//! Answers from kube-apiserver to delegated authentication and authorization →
//! `metrics_core::driver::Delegation::complete`.
//!
//! A request with a bearer token goes through the delegation; the input is the answer to
//! its TokenReview and then (if the token was accepted) to its SubjectAccessReview, with
//! status 201, then again with a status taken from the input's first byte. Whatever the
//! answers, the request must settle (proceed or be refused) without waiting forever.
//! The same bytes are then the answer to a read of the authentication ConfigMap, which
//! must leave usable settings.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use metrics_core::auth::{AuthnConfig, AuthzConfig, Gate, GateRequest};
use metrics_core::driver::{
    Attempt, Checked, ConfigMapFollow, DelegatedKind, Delegation, DelegationConfig,
};
use metrics_core::http::{Request, StatusCode};
use metrics_core::time::{Instant, Timestamp};

const STATUSES: [u16; 6] = [200, 201, 404, 403, 429, 500];

/// Sends a request with a bearer token through the delegation, answering every review
/// with `status` and `answer` and letting time pass for retries: it must settle.
fn settle(delegation: &Delegation, answer: &[u8], status: StatusCode, mut now: Instant) {
    let parts = Request::builder()
        .uri("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb")
        .header("authorization", "Bearer fuzz-token")
        .body(())
        .expect("request")
        .into_parts()
        .0;
    let request = GateRequest {
        parts: &parts,
        certificates: &[],
        wall: Timestamp::from_unix_secs(1_750_000_000),
    };
    let mut attempt = Attempt::default();
    let mut body = Vec::new();
    // Two reviews of at most five sends each, a ConfigMap read falling due meanwhile.
    for _ in 0..32 {
        match delegation.check(&request, now, &mut body, &mut attempt) {
            Checked::Proceed(_) | Checked::Refuse(_) => return,
            Checked::Wait => {}
        }
        let mut sent = false;
        while let Some(review) = delegation.poll_request(now) {
            delegation.complete(review.id, Ok((status, answer)), now);
            sent |= review.kind != DelegatedKind::ConfigMap;
        }
        if !sent {
            // A retry waits for its backoff.
            let at = delegation
                .poll_timeout()
                .expect("a waiting review has a deadline");
            now = at.max(now);
            delegation.handle_timeout(now);
        }
    }
    panic!("the request never settled");
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::from_nanos(0);
    let follow = ConfigMapFollow {
        client_ca: true,
        request_header: true,
        interval: Duration::from_secs(30),
    };
    let config = DelegationConfig {
        follow_configmap: Some(follow),
        ..DelegationConfig::default()
    };
    let gate = Gate::new(AuthnConfig::default(), AuthzConfig::default()).expect("gate");
    let delegation = Delegation::new(gate, config, start);
    let now = Instant::from_nanos(1_000_000_000);
    settle(&delegation, data, StatusCode::CREATED, now);
    let status = STATUSES[usize::from(data.first().copied().unwrap_or(0)) % STATUSES.len()];
    let status = StatusCode::from_u16(status).expect("status");
    // Far enough on that nothing is cached any more.
    let later = Instant::from_nanos(20_000_000_000);
    settle(&delegation, data, status, later);

    // The ConfigMap read, whenever it falls due next.
    let due = delegation
        .poll_timeout()
        .expect("the ConfigMap is followed")
        .max(Instant::from_nanos(60_000_000_000));
    delegation.handle_timeout(due);
    while let Some(review) = delegation.poll_request(due) {
        delegation.complete(review.id, Ok((StatusCode::OK, data)), due);
    }
    let settings = delegation.authn_config();
    if let Some(request_header) = settings.request_header {
        assert!(!request_header.client_ca.is_empty());
    }
});
