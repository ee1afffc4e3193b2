//! What authentication and authorization cost per request once the reviews are cached:
//! the front proxy's certificate chain is verified on every request (as upstream), the
//! SubjectAccessReview key is a SHA-256 of the spec, a token's cache key a SHA-256 of it.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http::request::Parts;
use metrics_core::auth::{
    AuthnConfig, AuthzConfig, CaBundle, Gate, GateOutcome, GateRequest, RequestHeaderConfig,
};
use metrics_core::driver::{Attempt, Checked, Delegation, DelegationConfig};
use metrics_core::time::{Instant, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
const ALLOW: &[u8] = br#"{"kind":"SubjectAccessReview","status":{"allowed":true}}"#;
const TOKEN_USER: &[u8] =
    br#"{"kind":"TokenReview","status":{"authenticated":true,"user":{"username":"bob","groups":["dev"]}}}"#;

fn wall() -> Timestamp {
    Timestamp::from_unix_secs(1_750_000_000)
}

/// The front-proxy CA's PEM and a `front-proxy-client` certificate it signed (DER).
fn front_proxy() -> (String, Vec<u8>) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "front-proxy-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).expect("self-signed").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, "front-proxy-client");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let der = leaf
        .signed_by(&key, &issuer)
        .expect("signed")
        .der()
        .to_vec();
    (ca_pem, der)
}

fn get(headers: &[(&str, &str)], path: &str) -> Parts {
    let mut builder = Request::builder().uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("request").into_parts().0
}

/// Checks until the request proceeds, answering reviews on the way (first call only).
fn admit(delegation: &Delegation, parts: &Parts, chain: &[Vec<u8>], now: Instant) {
    let mut attempt = Attempt::default();
    let mut body = Vec::new();
    let request = GateRequest {
        parts,
        certificates: chain,
        wall: wall(),
    };
    for _ in 0..4 {
        match delegation.check(&request, now, &mut body, &mut attempt) {
            Checked::Proceed(identity) => {
                black_box(identity);
                return;
            }
            Checked::Refuse(refusal) => panic!("refused: {}", refusal.cause),
            Checked::Wait => {
                while let Some(review) = delegation.poll_request(now) {
                    let answer = if review.path.contains("tokenreviews") {
                        TOKEN_USER
                    } else {
                        ALLOW
                    };
                    delegation.complete(review.id, Ok((http::StatusCode::CREATED, answer)), now);
                }
            }
        }
    }
    panic!("did not settle");
}

fn gate(c: &mut Criterion) {
    let (ca_pem, proxy) = front_proxy();
    let chain = vec![proxy];
    let authn = AuthnConfig {
        request_header: Some(RequestHeaderConfig {
            allowed_names: vec!["front-proxy-client".into()],
            ..RequestHeaderConfig::with_flag_defaults(
                CaBundle::parse(ca_pem.as_bytes()).expect("bundle"),
            )
        }),
        token_cache_ttl: Duration::from_secs(3600),
        ..AuthnConfig::default()
    };
    let authz = AuthzConfig {
        authorized_ttl: Duration::from_secs(3600),
        ..AuthzConfig::default()
    };
    let gate = Gate::new(authn, authz).expect("gate");
    let delegation = Delegation::new(gate, DelegationConfig::default(), Instant::from_nanos(0));
    let now = Instant::from_nanos(1_000_000_000);

    let masters = get(
        &[
            ("x-remote-user", "system:kube-aggregator"),
            ("x-remote-group", "system:masters"),
        ],
        NODES,
    );
    let viewer = get(
        &[("x-remote-user", "jane"), ("x-remote-group", "dev")],
        NODES,
    );
    let token = get(
        &[("authorization", "Bearer 0123456789abcdef0123456789abcdef")],
        NODES,
    );
    let probe = get(&[], "/livez");
    // Warm the caches.
    admit(&delegation, &viewer, &chain, now);
    admit(&delegation, &token, &[], now);

    let mut group = c.benchmark_group("auth");
    group.bench_function("front proxy, system:masters", |b| {
        b.iter(|| admit(&delegation, &masters, &chain, now));
    });
    group.bench_function("front proxy, SubjectAccessReview cached", |b| {
        b.iter(|| admit(&delegation, &viewer, &chain, now));
    });
    group.bench_function("bearer token and SubjectAccessReview cached", |b| {
        b.iter(|| admit(&delegation, &token, &[], now));
    });
    group.bench_function("anonymous, always-allowed path", |b| {
        b.iter(|| admit(&delegation, &probe, &[], now));
    });
    group.finish();

    // The gate alone, to tell the delegation's bookkeeping apart.
    let gate_only = Gate::new(
        AuthnConfig {
            request_header: delegation.authn_config().request_header,
            ..AuthnConfig::default()
        },
        AuthzConfig::default(),
    )
    .expect("gate");
    c.bench_function("auth/gate only: front proxy, system:masters", |b| {
        let mut body = Vec::new();
        let request = GateRequest {
            parts: &masters,
            certificates: &chain,
            wall: wall(),
        };
        b.iter(|| {
            let outcome = gate_only.check(&request, now, &mut body);
            assert!(matches!(outcome, GateOutcome::Proceed(_)));
        });
    });
}

criterion_group!(benches, gate);
criterion_main!(benches);
