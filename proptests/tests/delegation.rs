//! Delegated authentication and authorization under any interleaving: requests with
//! tokens (or none) arrive, reviews are answered in any order with any status and body
//! (or time out), time jumps. Whatever happens: concurrent requests never cause two
//! sends of the same review at once, no more reviews are pending than the bound, and
//! once the apiserver answers sensibly again every request settles (proceeds or is
//! refused) and nothing stays pending.

use std::time::Duration;

use http::{Request, StatusCode};
use metrics_core::auth::{AuthnConfig, AuthzConfig, Gate, GateRequest};
use metrics_core::driver::{
    Attempt, Checked, DelegatedId, DelegatedRequest, Delegation, DelegationConfig,
};
use metrics_core::time::{Instant, Timestamp};
use proptest::prelude::*;

const TOKENS: [Option<&str>; 4] = [None, Some("alice-token"), Some("bob-token"), Some("bad")];
const PATHS: [&str; 3] = [
    "/apis/metrics.k8s.io/v1beta1/nodes",
    "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web",
    "/apis/metrics.k8s.io/v1beta1",
];

#[derive(Debug, Clone)]
enum Op {
    /// A new request (token index, path index).
    Arrive(usize, usize),
    /// Ask a waiting request again (index into the open requests).
    Retry(usize),
    /// Hand the next queued review to the "engine task".
    Send,
    /// Answer an in-flight review (index) with this answer.
    Answer(usize, Reply),
    /// Let this many milliseconds pass, running timeouts.
    Wait(u64),
}

#[derive(Debug, Clone, Copy)]
enum Reply {
    /// A sensible answer: the token's user, or allowed/denied.
    Sensible(bool),
    Status(u16),
    Garbage,
    Transport,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..TOKENS.len(), 0..PATHS.len()).prop_map(|(t, p)| Op::Arrive(t, p)),
        2 => (0..8usize).prop_map(Op::Retry),
        3 => Just(Op::Send),
        3 => (0..8usize, reply()).prop_map(|(i, r)| Op::Answer(i, r)),
        1 => (0..30_000u64).prop_map(Op::Wait),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => any::<bool>().prop_map(Reply::Sensible),
        1 => prop::sample::select(vec![200u16, 201, 400, 403, 404, 429, 500, 503]).prop_map(Reply::Status),
        1 => Just(Reply::Garbage),
        1 => Just(Reply::Transport),
    ]
}

/// What the apiserver would say to a review, sensibly: tokens other than "bad" are
/// users; access is allowed or denied as `allow` says.
fn sensible(review: &DelegatedRequest, allow: bool) -> Vec<u8> {
    let body = String::from_utf8_lossy(&review.body);
    if review.path.contains("tokenreviews") {
        let user = ["alice", "bob"]
            .into_iter()
            .find(|u| body.contains(&format!("{u}-token")));
        return match user {
            Some(user) => format!(
                r#"{{"kind":"TokenReview","status":{{"authenticated":true,"user":{{"username":"{user}"}}}}}}"#
            )
            .into_bytes(),
            None => br#"{"kind":"TokenReview","status":{"authenticated":false}}"#.to_vec(),
        };
    }
    format!(r#"{{"kind":"SubjectAccessReview","status":{{"allowed":{allow}}}}}"#).into_bytes()
}

struct Open {
    parts: http::request::Parts,
    attempt: Attempt,
    settled: bool,
}

impl Open {
    fn check(&mut self, delegation: &Delegation, now: Instant) {
        if self.settled {
            return;
        }
        let request = GateRequest {
            parts: &self.parts,
            certificates: &[],
            wall: Timestamp::from_unix_secs(1_750_000_000),
        };
        let mut body = Vec::new();
        match delegation.check(&request, now, &mut body, &mut self.attempt) {
            Checked::Proceed(_) | Checked::Refuse(_) => self.settled = true,
            Checked::Wait => {}
        }
    }
}

fn parts(token: Option<&str>, path: &str) -> http::request::Parts {
    let mut builder = Request::builder().uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(()).expect("request").into_parts().0
}

fn complete(delegation: &Delegation, review: &DelegatedRequest, reply: Reply, now: Instant) {
    let id: DelegatedId = review.id;
    match reply {
        Reply::Sensible(allow) => {
            let body = sensible(review, allow);
            delegation.complete(id, Ok((StatusCode::CREATED, &body)), now);
        }
        Reply::Status(code) => {
            let status = StatusCode::from_u16(code).expect("status");
            delegation.complete(id, Ok((status, b"{}")), now);
        }
        Reply::Garbage => delegation.complete(id, Ok((StatusCode::CREATED, b"\x00{not json")), now),
        Reply::Transport => delegation.complete(id, Err("connection reset"), now),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_request_settles_and_reviews_are_never_sent_twice_at_once(
        ops in prop::collection::vec(op(), 1..80),
        max_pending in 1usize..6,
    ) {
        let authn = AuthnConfig { token_cache_ttl: Duration::from_secs(5), ..AuthnConfig::default() };
        let authz = AuthzConfig { authorized_ttl: Duration::ZERO, ..AuthzConfig::default() };
        let gate = Gate::new(authn, authz).expect("gate");
        let config = DelegationConfig { max_pending, ..DelegationConfig::default() };
        let delegation = Delegation::new(gate, config, Instant::from_nanos(0));
        let mut now = Instant::from_nanos(1_000_000_000);
        let mut open: Vec<Open> = Vec::new();
        let mut in_flight: Vec<DelegatedRequest> = Vec::new();

        for op in ops {
            match op {
                Op::Arrive(t, p) => {
                    let mut request = Open {
                        parts: parts(TOKENS[t], PATHS[p]),
                        attempt: Attempt::default(),
                        settled: false,
                    };
                    request.check(&delegation, now);
                    open.push(request);
                }
                Op::Retry(i) => {
                    let len = open.len();
                    if let Some(request) = open.get_mut(i % len.max(1)) {
                        request.check(&delegation, now);
                    }
                }
                Op::Send => {
                    if let Some(review) = delegation.poll_request(now) {
                        prop_assert!(
                            !in_flight.iter().any(|r| r.kind == review.kind && r.body == review.body),
                            "the same review in flight twice: {review:?}"
                        );
                        in_flight.push(review);
                    }
                }
                Op::Answer(i, reply) => {
                    if !in_flight.is_empty() {
                        let review = in_flight.remove(i % in_flight.len());
                        complete(&delegation, &review, reply, now);
                    }
                }
                Op::Wait(ms) => {
                    now = now.saturating_add(Duration::from_millis(ms));
                    let expired = delegation.handle_timeout(now);
                    in_flight.retain(|r| !expired.contains(&r.id));
                }
            }
            prop_assert!(delegation.pending() <= max_pending);
        }

        // From now on the apiserver answers every review sensibly and at once.
        for _ in 0..200 {
            for request in &mut open {
                request.check(&delegation, now);
            }
            for review in in_flight.drain(..) {
                complete(&delegation, &review, Reply::Sensible(true), now);
            }
            while let Some(review) = delegation.poll_request(now) {
                complete(&delegation, &review, Reply::Sensible(true), now);
            }
            if open.iter().all(|r| r.settled) {
                break;
            }
            if let Some(at) = delegation.poll_timeout() {
                now = at.max(now);
                delegation.handle_timeout(now);
            }
        }
        prop_assert!(open.iter().all(|r| r.settled), "a request never settled");
        // Late answers to sends that were aborted or superseded change nothing.
        prop_assert_eq!(delegation.pending(), 0);
        prop_assert_eq!(delegation.unread_results(), 0, "every result was read by its requests");
    }
}
