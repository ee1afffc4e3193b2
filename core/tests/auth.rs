//! Authentication and authorization (spec 5, 4.5, conformance cases 53–60) with real
//! certificates generated here by rcgen.

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, StatusCode};
use metrics_core::auth::authn::{AUTHENTICATED_GROUP, CREDENTIAL_ID_KEY};
use metrics_core::auth::configmap::{
    AuthenticationOptions, ExtensionAuthentication, Lookup, RequestHeaderOptions,
};
use metrics_core::auth::response::{forbidden_status, internal_error_response};
use metrics_core::auth::{
    Authenticator, AuthnConfig, AuthnOutcome, AuthnRequest, AuthzConfig, AuthzOutcome, CaBundle,
    Gate, GateOutcome, GateRequest, Identity, RequestAttributes, RequestHeaderConfig, TokenHash,
    TokenVerdict,
};
use metrics_core::time::{Instant, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

const V: &str = "/apis/metrics.k8s.io/v1beta1";

fn wall() -> Timestamp {
    Timestamp::from_unix_secs(1_750_000_000)
}

fn at(secs: u64) -> Instant {
    Instant::from_nanos(1_000_000_000 * (1000 + secs))
}

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// A CA that can issue client certificates.
struct Ca {
    pem: String,
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = dn(cn, None);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    params
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let params = ca_params(cn);
        let cert = params.self_signed(&key).expect("self-signed");
        Ca {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one: (its DER, the intermediate).
    fn intermediate(&self, cn: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let params = ca_params(cn);
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Ca {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    fn bundle(&self) -> CaBundle {
        CaBundle::parse(self.pem.as_bytes()).expect("CA bundle")
    }

    /// A client certificate (DER) for `cn` in organization `org`.
    fn client(&self, cn: &str, org: Option<&str>) -> Vec<u8> {
        self.client_with(cn, org, |_| {})
    }

    fn client_with(
        &self,
        cn: &str,
        org: Option<&str>,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = dn(cn, org);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        edit(&mut params);
        params
            .signed_by(&key, &self.issuer)
            .expect("signed")
            .der()
            .to_vec()
    }
}

/// The cluster's PKI: a request-header (front-proxy) CA and a separate client CA.
struct Pki {
    front_proxy_ca: Ca,
    client_ca: Ca,
    /// The aggregator's certificate, CN `front-proxy-client`.
    proxy_cert: Vec<u8>,
}

fn pki() -> Pki {
    let front_proxy_ca = Ca::new("front-proxy-ca");
    let client_ca = Ca::new("kubernetes");
    let proxy_cert = front_proxy_ca.client("front-proxy-client", None);
    Pki {
        front_proxy_ca,
        client_ca,
        proxy_cert,
    }
}

impl Pki {
    /// The aggregator's chain.
    fn proxy(&self) -> &[Vec<u8>] {
        std::slice::from_ref(&self.proxy_cert)
    }

    /// As kube-apiserver publishes it: allowed names `["front-proxy-client"]`, the
    /// standard headers, `X-Remote-Uid` too.
    fn request_header(&self) -> RequestHeaderConfig {
        RequestHeaderConfig {
            client_ca: self.front_proxy_ca.bundle(),
            allowed_names: vec!["front-proxy-client".into()],
            username_headers: vec!["X-Remote-User".into()],
            uid_headers: vec!["X-Remote-Uid".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_header_prefixes: vec!["X-Remote-Extra-".into()],
        }
    }

    fn authn(&self) -> AuthnConfig {
        AuthnConfig {
            request_header: Some(self.request_header()),
            client_ca: Some(self.client_ca.bundle()),
            ..AuthnConfig::default()
        }
    }

    fn gate(&self) -> Gate {
        Gate::new(self.authn(), AuthzConfig::default()).expect("gate")
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("request").into_parts().0
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Parts {
    parts(Method::GET, uri, headers)
}

struct Checked {
    outcome: GateOutcome,
    body: Vec<u8>,
}

fn check(gate: &Gate, parts: &Parts, certificates: &[Vec<u8>], now: Instant) -> Checked {
    let mut body = Vec::new();
    let request = GateRequest {
        parts,
        certificates,
        wall: wall(),
    };
    let outcome = gate.check(&request, now, &mut body);
    Checked { outcome, body }
}

impl Checked {
    fn identity(self) -> Identity {
        match self.outcome {
            GateOutcome::Proceed(identity) => identity,
            other => panic!("expected Proceed, got {other:?}"),
        }
    }

    fn sar(self) -> metrics_core::auth::SarRequest {
        match self.outcome {
            GateOutcome::NeedsSubjectAccessReview(sar) => sar,
            other => panic!("expected a SubjectAccessReview, got {other:?}"),
        }
    }

    fn token_review(self) -> metrics_core::auth::TokenReviewRequest {
        match self.outcome {
            GateOutcome::NeedsTokenReview(review) => review,
            other => panic!("expected a TokenReview, got {other:?}"),
        }
    }

    /// (status, headers, body) of a refusal.
    fn refused(self) -> (StatusCode, http::HeaderMap, String) {
        match self.outcome {
            GateOutcome::Refuse(refusal) => (
                refusal.response.status(),
                refusal.response.headers().clone(),
                String::from_utf8(self.body).expect("utf-8"),
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

const ALLOW: &[u8] = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","status":{"allowed":true}}"#;
const DENY: &[u8] = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","status":{"allowed":false}}"#;

const UNAUTHORIZED: &str = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n";

/// Runs the gate, answering reviews with `sar_answer`, and returns the final outcome and
/// the number of SubjectAccessReviews sent.
fn check_with_sar(
    gate: &mut Gate,
    parts: &Parts,
    certificates: &[Vec<u8>],
    now: Instant,
    sar_answer: &[u8],
) -> (Checked, usize) {
    let mut reviews = 0;
    loop {
        let checked = check(gate, parts, certificates, now);
        match checked.outcome {
            GateOutcome::NeedsSubjectAccessReview(sar) => {
                reviews += 1;
                assert!(reviews < 3, "review loop");
                gate.complete_sar(&sar.key, Ok(sar_answer), now);
            }
            _ => return (checked, reviews),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Conformance cases
// ---------------------------------------------------------------------------------------

#[test]
fn api_case_53_anonymous_list_nodes_denied() {
    let mut gate = pki().gate();
    let req = get(&format!("{V}/nodes"), &[]);
    let sar = check(&gate, &req, &[], at(0)).sar();
    let spec = &json(&sar.body)["spec"];
    assert_eq!(spec["user"], "system:anonymous");
    assert_eq!(
        spec["groups"],
        serde_json::json!(["system:unauthenticated"])
    );
    assert_eq!(spec["resourceAttributes"]["verb"], "list");
    gate.complete_sar(&sar.key, Ok(DENY), at(0));
    let (status, headers, body) = check(&gate, &req, &[], at(0)).refused();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"nodes.metrics.k8s.io is forbidden: User \\\"system:anonymous\\\" cannot list resource \\\"nodes\\\" in API group \\\"metrics.k8s.io\\\" at the cluster scope\",\"reason\":\"Forbidden\",\"details\":{\"group\":\"metrics.k8s.io\",\"kind\":\"nodes\"},\"code\":403}\n"
    );
}

#[test]
fn api_case_54_anonymous_health_endpoints_need_no_review() {
    let gate = pki().gate();
    for path in [
        "/livez",
        "/readyz",
        "/healthz",
        "/healthz?verbose",
        "/readyz?exclude=log",
    ] {
        for method in [Method::GET, Method::POST, Method::HEAD] {
            let identity = check(&gate, &parts(method, path, &[]), &[], at(0)).identity();
            assert!(identity.is_anonymous(), "{path}");
        }
    }
    // Sub-paths and trailing slashes are not exact matches.
    for path in ["/readyz/ping", "/livez/", "/healthzz"] {
        let sar = check(&gate, &get(path, &[]), &[], at(0)).sar();
        assert_eq!(
            json(&sar.body)["spec"]["nonResourceAttributes"]["path"],
            path.to_owned()
        );
    }
}

#[test]
fn api_case_55_non_resource_forbidden_message() {
    let mut gate = pki().gate();
    let req = get("/readyz/metric-storage-ready", &[]);
    let sar = check(&gate, &req, &[], at(0)).sar();
    assert_eq!(
        json(&sar.body)["spec"]["nonResourceAttributes"],
        serde_json::json!({"path": "/readyz/metric-storage-ready", "verb": "get"})
    );
    gate.complete_sar(&sar.key, Ok(DENY), at(0));
    let (status, headers, body) = check(&gate, &req, &[], at(0)).refused();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let doc = json(body.as_bytes());
    assert_eq!(
        doc["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/readyz/metric-storage-ready\""
    );
    assert_eq!(doc["details"], serde_json::json!({}));
    assert_eq!(doc["code"], 403);
}

#[test]
fn api_case_56_rejected_token_is_401_and_cached() {
    let mut gate = pki().gate();
    let req = get(
        &format!("{V}/nodes"),
        &[("authorization", "Bearer s3cr3t-token")],
    );
    let review = check(&gate, &req, &[], at(0)).token_review();
    assert_eq!(review.token_hash, TokenHash::of("s3cr3t-token"));
    assert_eq!(
        String::from_utf8(review.body.clone()).expect("utf-8"),
        "{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{},\"spec\":{\"token\":\"s3cr3t-token\"},\"status\":{\"user\":{}}}\n"
    );
    assert!(
        !format!("{review:?}").contains("s3cr3t"),
        "Debug redacts the token"
    );
    let verdict = gate.complete_token_review(
        &review.token_hash,
        Ok(br#"{"kind":"TokenReview","status":{"authenticated":false}}"#),
        at(0),
    );
    assert_eq!(verdict, TokenVerdict::Rejected);
    let (status, headers, body) = check(&gate, &req, &[], at(0)).refused();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, UNAUTHORIZED);
    assert!(headers.get("x-content-type-options").is_none());
    // Within the 10 s TTL: answered from the cache, no second review.
    let (status, _, body) = check(&gate, &req, &[], at(9)).refused();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, UNAUTHORIZED)
    );
    assert_eq!(gate.authenticator.cached_tokens(), 1);
    // After it: reviewed again.
    check(&gate, &req, &[], at(11)).token_review();
}

#[test]
fn api_case_56_token_user_from_review_and_cache() {
    let mut gate = pki().gate();
    let req = get(
        &format!("{V}/namespaces/team/pods"),
        &[("authorization", "bearer tok")],
    );
    let review = check(&gate, &req, &[], at(0)).token_review();
    gate.complete_token_review(
        &review.token_hash,
        Ok(br#"{"status":{"authenticated":true,"user":{"username":"system:serviceaccount:team:hpa","uid":"42","groups":["system:serviceaccounts"],"extra":{"authentication.kubernetes.io/pod-name":["hpa-0"]}}}}"#),
        at(0),
    );
    let sar = check(&gate, &req, &[], at(1)).sar();
    let spec = &json(&sar.body)["spec"];
    assert_eq!(spec["user"], "system:serviceaccount:team:hpa");
    assert_eq!(spec["uid"], "42");
    assert_eq!(
        spec["groups"],
        serde_json::json!(["system:serviceaccounts", "system:authenticated"])
    );
    assert_eq!(
        spec["extra"],
        serde_json::json!({"authentication.kubernetes.io/pod-name": ["hpa-0"]})
    );
    gate.complete_sar(&sar.key, Ok(ALLOW), at(1));
    let identity = check(&gate, &req, &[], at(2)).identity();
    assert_eq!(identity.name, "system:serviceaccount:team:hpa");
    // Both caches still answer at 10 s, neither at 12 s.
    check(&gate, &req, &[], at(10)).identity();
    check(&gate, &req, &[], at(12)).token_review();
}

#[test]
fn api_case_57_front_proxy_cn_not_allowed_is_401() {
    let pki = pki();
    let gate = pki.gate();
    let intruder = pki.front_proxy_ca.client("intruder", None);
    let req = get(&format!("{V}/nodes"), &[("x-remote-user", "admin")]);
    let (status, _, body) = check(&gate, &req, std::slice::from_ref(&intruder), at(0)).refused();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, UNAUTHORIZED)
    );
    // The reason, for the log.
    let authn = Authenticator::new(pki.authn());
    let outcome = authn.authenticate(
        &AuthnRequest {
            certificates: &[intruder],
            headers: &req.headers,
            wall: wall(),
        },
        at(0),
    );
    let AuthnOutcome::Unauthorized(e) = outcome else {
        panic!("unauthorized, got {outcome:?}")
    };
    assert_eq!(
        e.errors[0],
        "x509: subject with cn=intruder is not in the allowed list"
    );
    assert_eq!(
        e.errors[1],
        "verifying certificate failed: x509: certificate signed by unknown authority"
    );
}

#[test]
fn api_case_57_front_proxy_from_untrusted_ca_is_401() {
    let pki = pki();
    let rogue = Ca::new("front-proxy-ca");
    let forged = rogue.client("front-proxy-client", None);
    let headers = [
        ("x-remote-user", "admin"),
        ("x-remote-group", "system:masters"),
    ];
    let req = get(&format!("{V}/nodes"), &headers);
    // Without a client CA too, the error still wins over anonymous.
    let config = AuthnConfig {
        client_ca: None,
        ..pki.authn()
    };
    let gate = Gate::new(config, AuthzConfig::default()).expect("gate");
    let (status, _, body) = check(&gate, &req, std::slice::from_ref(&forged), at(0)).refused();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, UNAUTHORIZED)
    );
    let (status, _, _) = check(&pki.gate(), &req, &[forged], at(0)).refused();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn api_case_58_front_proxy_headers_without_certificate_are_ignored() {
    let mut gate = pki().gate();
    let req = get(
        &format!("{V}/nodes"),
        &[
            ("x-remote-user", "admin"),
            ("x-remote-group", "system:masters"),
        ],
    );
    let sar = check(&gate, &req, &[], at(0)).sar();
    let spec = &json(&sar.body)["spec"];
    assert_eq!(spec["user"], "system:anonymous");
    assert_eq!(
        spec["groups"],
        serde_json::json!(["system:unauthenticated"])
    );
    gate.complete_sar(&sar.key, Ok(DENY), at(0));
    let (status, _, body) = check(&gate, &req, &[], at(0)).refused();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body.contains(r#"User \"system:anonymous\" cannot list resource"#),
        "{body}"
    );
}

#[test]
fn api_case_58_client_ca_user_ignores_front_proxy_headers() {
    let pki = pki();
    let gate = pki.gate();
    let cert = pki.client_ca.client("alice", Some("system:masters"));
    let req = get(V, &[("x-remote-user", "admin")]);
    let identity = check(&gate, &req, &[cert], at(0)).identity();
    assert_eq!(identity.name, "alice");
}

#[test]
fn api_case_59_system_masters_allowed_without_review() {
    let pki = pki();
    let gate = pki.gate();
    let req = get(
        V,
        &[
            ("x-remote-user", "system:kube-aggregator"),
            ("x-remote-group", "system:masters"),
        ],
    );
    let identity = check(&gate, &req, pki.proxy(), at(0)).identity();
    assert_eq!(identity.name, "system:kube-aggregator");
    assert_eq!(identity.groups, vec!["system:masters", AUTHENTICATED_GROUP]);
    // Resource requests too.
    let req = get(
        &format!("{V}/namespaces/x/pods?watch=true"),
        &[
            ("x-remote-user", "system:kube-aggregator"),
            ("x-remote-group", "system:masters"),
        ],
    );
    check(&gate, &req, pki.proxy(), at(0)).identity();
}

#[test]
fn api_case_60_subject_access_review_carries_every_attribute() {
    let pki = pki();
    let gate = pki.gate();
    let req = get(
        &format!("{V}/namespaces/team/pods/web"),
        &[
            ("x-remote-user", "jane"),
            ("x-remote-group", "dev"),
            ("x-remote-group", "qa"),
        ],
    );
    let sar = check(&gate, &req, pki.proxy(), at(0)).sar();
    assert_eq!(
        String::from_utf8(sar.body.clone()).expect("utf-8"),
        "{\"kind\":\"SubjectAccessReview\",\"apiVersion\":\"authorization.k8s.io/v1\",\"metadata\":{},\"spec\":{\"resourceAttributes\":{\"namespace\":\"team\",\"verb\":\"get\",\"group\":\"metrics.k8s.io\",\"version\":\"v1beta1\",\"resource\":\"pods\",\"name\":\"web\"},\"user\":\"jane\",\"groups\":[\"dev\",\"qa\",\"system:authenticated\"]},\"status\":{\"allowed\":false}}\n"
    );
    // uid, extra (keys lower-cased and percent-decoded, values in order), selectors.
    let req = get(
        &format!(
            "{V}/pods?labelSelector=app%3Dweb&fieldSelector=metadata.namespace!%3Dkube-system"
        ),
        &[
            ("x-remote-user", "jane"),
            ("x-remote-uid", "u-1"),
            ("x-remote-extra-Scopes", "a"),
            ("X-Remote-Extra-scopes", "b"),
            ("x-remote-extra-example.com%2Fteam", "blue"),
        ],
    );
    let sar = check(&gate, &req, pki.proxy(), at(0)).sar();
    let spec = &json(&sar.body)["spec"];
    assert_eq!(
        spec,
        &serde_json::json!({
            "resourceAttributes": {
                "verb": "list",
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "resource": "pods",
                "fieldSelector": {"requirements": [
                    {"key": "metadata.namespace", "operator": "NotIn", "values": ["kube-system"]}
                ]},
                "labelSelector": {"requirements": [
                    {"key": "app", "operator": "In", "values": ["web"]}
                ]}
            },
            "user": "jane",
            "groups": ["system:authenticated"],
            "extra": {"example.com/team": ["blue"], "scopes": ["a", "b"]},
            "uid": "u-1"
        })
    );
    // A list narrowed to one name is authorized for that name.
    let req = get(
        &format!("{V}/nodes?fieldSelector=metadata.name%3Dnode1"),
        &[("x-remote-user", "jane")],
    );
    let sar = check(&gate, &req, pki.proxy(), at(0)).sar();
    assert_eq!(
        json(&sar.body)["spec"]["resourceAttributes"]["name"],
        "node1"
    );
}

// ---------------------------------------------------------------------------------------
// Front proxy, client certificates, tokens
// ---------------------------------------------------------------------------------------

#[test]
fn front_proxy_user_allowed_then_cached_then_reviewed_again() {
    let pki = pki();
    let mut gate = pki.gate();
    let certs = [pki.proxy_cert.clone()];
    let req = get(&format!("{V}/nodes/node1"), &[("x-remote-user", "jane")]);
    let (checked, reviews) = check_with_sar(&mut gate, &req, &certs, at(0), ALLOW);
    assert_eq!(reviews, 1);
    assert_eq!(checked.identity().name, "jane");
    let (checked, reviews) = check_with_sar(&mut gate, &req, &certs, at(10), ALLOW);
    assert_eq!(reviews, 0, "authorized answers cached for 10 s");
    checked.identity();
    let (_, reviews) = check_with_sar(&mut gate, &req, &certs, at(11), ALLOW);
    assert_eq!(reviews, 1);
}

#[test]
fn front_proxy_user_denied_with_reason() {
    let pki = pki();
    let mut gate = pki.gate();
    let certs = [pki.proxy_cert.clone()];
    let req = get(
        &format!("{V}/namespaces/default/pods/web"),
        &[("x-remote-user", "jane")],
    );
    let denied = br#"{"status":{"allowed":false,"reason":"RBAC: role \"x\" not found"}}"#;
    let (checked, reviews) = check_with_sar(&mut gate, &req, &certs, at(0), denied);
    assert_eq!(reviews, 1);
    let (status, headers, body) = checked.refused();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let doc = json(body.as_bytes());
    assert_eq!(
        doc["message"],
        "pods.metrics.k8s.io \"web\" is forbidden: User \"jane\" cannot get resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"default\": RBAC: role \"x\" not found"
    );
    assert_eq!(
        doc["details"],
        serde_json::json!({"name": "web", "group": "metrics.k8s.io", "kind": "pods"})
    );
    // Denials are cached for 10 s too.
    let (_, reviews) = check_with_sar(&mut gate, &req, &certs, at(10), denied);
    assert_eq!(reviews, 0);
}

#[test]
fn front_proxy_without_user_header_falls_through() {
    let pki = pki();
    let certs = [pki.proxy_cert.clone()];
    let req = get(V, &[("x-remote-group", "system:masters")]);
    // Not a client-CA certificate either: that error makes it 401.
    let (status, _, _) = check(&pki.gate(), &req, &certs, at(0)).refused();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Without a client CA nothing applies: anonymous.
    let config = AuthnConfig {
        client_ca: None,
        ..pki.authn()
    };
    let gate = Gate::new(config, AuthzConfig::default()).expect("gate");
    let sar = check(&gate, &req, &certs, at(0)).sar();
    assert_eq!(json(&sar.body)["spec"]["user"], "system:anonymous");
}

#[test]
fn front_proxy_header_rules() {
    let pki = pki();
    let mut config = pki.request_header();
    config.allowed_names.clear();
    config.username_headers = vec!["x-first".into(), "x-second".into()];
    config.group_headers = vec!["x-g1".into(), "x-g2".into()];
    let authn = Authenticator::new(AuthnConfig {
        request_header: Some(config),
        ..AuthnConfig::default()
    });
    let req = get(
        V,
        &[
            ("x-first", ""),
            ("x-second", "bob"),
            ("x-g2", "b"),
            ("x-g1", "a,c"),
            ("x-g1", ""),
            ("x-g1", "d"),
            ("x-remote-user", "ignored"),
        ],
    );
    // Any CN is allowed with an empty list.
    let other = pki.front_proxy_ca.client("anything", None);
    let outcome = authn.authenticate(
        &AuthnRequest {
            certificates: &[other],
            headers: &req.headers,
            wall: wall(),
        },
        at(0),
    );
    let identity = outcome.identity().expect("authenticated");
    assert_eq!(identity.name, "bob");
    assert_eq!(identity.groups, vec!["a,c", "d", "b", AUTHENTICATED_GROUP]);
    assert!(identity.extra.is_empty());
}

#[test]
fn front_proxy_user_named_anonymous_gets_no_authenticated_group() {
    let pki = pki();
    let gate = pki.gate();
    let req = get(V, &[("x-remote-user", "system:anonymous")]);
    let sar = check(&gate, &req, pki.proxy(), at(0)).sar();
    let spec = &json(&sar.body)["spec"];
    assert_eq!(spec["user"], "system:anonymous");
    assert!(spec.get("groups").is_none());
}

#[test]
fn client_ca_user_is_cn_with_o_groups() {
    let pki = pki();
    let gate = pki.gate();
    let cert = pki.client_ca.client("alice", Some("dev-team"));
    let identity = check(
        &gate,
        &get("/livez", &[]),
        std::slice::from_ref(&cert),
        at(0),
    )
    .identity();
    assert_eq!(identity.name, "alice");
    assert_eq!(identity.groups, vec!["dev-team", AUTHENTICATED_GROUP]);
    let fingerprint: String = Sha256::digest(&cert)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        identity.extra[CREDENTIAL_ID_KEY],
        vec![format!("X509SHA256={fingerprint}")]
    );
    // In the review as well.
    let sar = check(&gate, &get(&format!("{V}/nodes"), &[]), &[cert], at(0)).sar();
    let spec = &json(&sar.body)["spec"];
    assert_eq!(spec["user"], "alice");
    assert_eq!(
        spec["groups"],
        serde_json::json!(["dev-team", "system:authenticated"])
    );
    assert_eq!(
        spec["extra"][CREDENTIAL_ID_KEY],
        serde_json::json!([format!("X509SHA256={fingerprint}")])
    );
}

#[test]
fn client_certificate_through_an_intermediate() {
    let root = Ca::new("root");
    let intermediate = root.intermediate("intermediate");
    let leaf = intermediate.client("carol", Some("ops"));
    let authn = Authenticator::new(AuthnConfig {
        client_ca: Some(root.bundle()),
        ..AuthnConfig::default()
    });
    let headers = http::HeaderMap::new();
    let authenticate = |chain: &[Vec<u8>]| {
        authn.authenticate(
            &AuthnRequest {
                certificates: chain,
                headers: &headers,
                wall: wall(),
            },
            at(0),
        )
    };
    let identity = authenticate(&[leaf.clone(), intermediate.der.clone()])
        .identity()
        .expect("verified through the intermediate");
    assert_eq!(identity.name, "carol");
    assert!(matches!(
        authenticate(&[leaf]),
        AuthnOutcome::Unauthorized(_)
    ));
}

#[test]
fn client_certificate_problems_are_401_not_anonymous() {
    let pki = pki();
    let gate = pki.gate();
    let req = get("/livez", &[]);
    let expired = pki.client_ca.client_with("old", None, |p| {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let server_only = pki.client_ca.client_with("srv", None, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let stranger = Ca::new("kubernetes").client("alice", None);
    for chain in [
        vec![expired],
        vec![server_only],
        vec![stranger],
        vec![b"garbage".to_vec()],
        vec![Vec::new()],
    ] {
        let (status, _, body) = check(&gate, &req, &chain, at(0)).refused();
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::UNAUTHORIZED, UNAUTHORIZED)
        );
    }
    // No common name: the client-certificate authenticator does not apply, so the
    // request is anonymous — unless another authenticator reported an error, as the
    // front-proxy one does for a certificate outside its CA.
    let nameless = pki.client_ca.client_with("x", None, |p| {
        p.distinguished_name = DistinguishedName::new();
    });
    let (status, _, _) = check(&gate, &req, std::slice::from_ref(&nameless), at(0)).refused();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let client_ca_only = Gate::new(
        AuthnConfig {
            request_header: None,
            ..pki.authn()
        },
        AuthzConfig::default(),
    )
    .expect("gate");
    assert!(
        check(&client_ca_only, &req, &[nameless], at(0))
            .identity()
            .is_anonymous()
    );
}

/// Verified chains are remembered for a minute (one signature check a minute for the
/// aggregator's certificate), but never so that an answer differs from verifying again.
#[test]
fn remembered_chains_answer_as_verifying_again_would() {
    let pki = pki();
    // 30 s before midnight; the certificate expires at midnight.
    let before_midnight = Timestamp::from_unix_secs(1_750_031_970);
    let expiring = pki
        .front_proxy_ca
        .client_with("front-proxy-client", None, |p| {
            p.not_before = rcgen::date_time_ymd(2025, 6, 1);
            p.not_after = rcgen::date_time_ymd(2025, 6, 16);
        });
    let headers = get(&format!("{V}/nodes"), &[("X-Remote-User", "jane")]).headers;
    let authenticate = |authenticator: &Authenticator, chain: &[Vec<u8>], wall, now| {
        let request = AuthnRequest {
            certificates: chain,
            headers: &headers,
            wall,
        };
        authenticator.authenticate(&request, now)
    };
    let mut authenticator = Authenticator::new(pki.authn());
    let chain = std::slice::from_ref(&expiring);
    assert!(matches!(
        authenticate(&authenticator, chain, before_midnight, at(0)),
        AuthnOutcome::Authenticated(_)
    ));
    // 40 s later, within the minute: expired, whatever was verified before.
    let after_midnight = Timestamp::from_unix_secs(1_750_032_010);
    assert!(matches!(
        authenticate(&authenticator, chain, after_midnight, at(40)),
        AuthnOutcome::Unauthorized(_)
    ));

    // A long-lived proxy certificate, verified once: a clock stepped back before its
    // start is checked again, and so is everything after the CA is replaced.
    let starting = pki
        .front_proxy_ca
        .client_with("front-proxy-client", None, |p| {
            p.not_before = rcgen::date_time_ymd(2025, 6, 15);
            p.not_after = rcgen::date_time_ymd(2030, 1, 1);
        });
    let chain = std::slice::from_ref(&starting);
    let morning = Timestamp::from_unix_secs(1_749_945_600 + 60);
    assert!(matches!(
        authenticate(&authenticator, chain, morning, at(0)),
        AuthnOutcome::Authenticated(_)
    ));
    let yesterday = Timestamp::from_unix_secs(1_749_945_600 - 60);
    assert!(matches!(
        authenticate(&authenticator, chain, yesterday, at(1)),
        AuthnOutcome::Unauthorized(_)
    ));
    let other_ca = Ca::new("front-proxy-ca");
    authenticator.set_request_header(Some(RequestHeaderConfig {
        client_ca: other_ca.bundle(),
        ..pki.request_header()
    }));
    assert!(matches!(
        authenticate(&authenticator, chain, morning, at(2)),
        AuthnOutcome::Unauthorized(_)
    ));
}

#[test]
fn websocket_bearer_protocol() {
    let mut gate = pki().gate();
    // base64url("ws-token") without padding.
    let req = get(
        &format!("{V}/nodes"),
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            (
                "sec-websocket-protocol",
                "base64url.bearer.authorization.k8s.io.d3MtdG9rZW4, v4.channel.k8s.io",
            ),
        ],
    );
    let review = check(&gate, &req, &[], at(0)).token_review();
    assert_eq!(review.token_hash, TokenHash::of("ws-token"));
    gate.complete_token_review(
        &review.token_hash,
        Ok(br#"{"status":{"authenticated":true,"user":{"username":"wsuser"}}}"#),
        at(0),
    );
    let sar = check(&gate, &req, &[], at(0)).sar();
    assert_eq!(json(&sar.body)["spec"]["user"], "wsuser");
    // The bearer protocol alone is refused.
    let alone = get(
        &format!("{V}/nodes"),
        &[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            (
                "sec-websocket-protocol",
                "base64url.bearer.authorization.k8s.io.d3MtdG9rZW4",
            ),
        ],
    );
    let (status, _, _) = check(&gate, &alone, &[], at(0)).refused();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn token_review_failures_are_not_cached() {
    let mut gate = pki().gate();
    let req = get("/livez", &[("authorization", "Bearer t")]);
    let review = check(&gate, &req, &[], at(0)).token_review();
    let verdict = gate.complete_token_review(&review.token_hash, Err("connection refused"), at(0));
    assert_eq!(verdict, TokenVerdict::Failed("connection refused".into()));
    // The requests waiting on it are answered at that instant...
    let (status, _, _) = check(&gate, &req, &[], at(0)).refused();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // ...later ones review again.
    check(&gate, &req, &[], at(1)).token_review();
    // `status.error` counts as a failure.
    let verdict = gate.complete_token_review(
        &review.token_hash,
        Ok(br#"{"status":{"authenticated":false,"error":"webhook down"}}"#),
        at(1),
    );
    assert_eq!(verdict, TokenVerdict::Failed("webhook down".into()));
    check(&gate, &req, &[], at(2)).token_review();
}

#[test]
fn non_bearer_authorization_is_not_a_token() {
    let gate = pki().gate();
    for value in ["Basic YTpi", "Bearer", "Bearer  double-space", "token"] {
        let req = get("/livez", &[("authorization", value)]);
        assert!(
            check(&gate, &req, &[], at(0)).identity().is_anonymous(),
            "{value}"
        );
    }
}

#[test]
fn tokens_ignored_without_token_review_and_anonymous_can_be_disabled() {
    let pki = pki();
    let config = AuthnConfig {
        token_review: false,
        ..pki.authn()
    };
    let gate = Gate::new(config, AuthzConfig::default()).expect("gate");
    let req = get("/livez", &[("authorization", "Bearer t")]);
    assert!(check(&gate, &req, &[], at(0)).identity().is_anonymous());
    let config = AuthnConfig {
        anonymous: false,
        ..pki.authn()
    };
    let gate = Gate::new(config, AuthzConfig::default()).expect("gate");
    let (status, _, _) = check(&gate, &get("/livez", &[]), &[], at(0)).refused();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn token_cache_is_bounded() {
    let mut authn = Authenticator::new(AuthnConfig {
        cache_capacity: 16,
        ..AuthnConfig::default()
    });
    for i in 0..100 {
        let hash = TokenHash::of(&format!("token-{i}"));
        authn.complete_token_review(&hash, Ok(br#"{"status":{"authenticated":false}}"#), at(i));
    }
    assert_eq!(authn.cached_tokens(), 16);
}

// ---------------------------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------------------------

#[test]
fn authorizer_failure_is_500_text_and_not_cached() {
    let mut gate = pki().gate();
    let req = get(&format!("{V}/nodes?limit=500"), &[("audit-id", "abc")]);
    let sar = check(&gate, &req, &[], at(0)).sar();
    let error = "subjectaccessreviews.authorization.k8s.io is forbidden: User \"system:serviceaccount:kube-system:metrics-server\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope";
    let outcome = gate.complete_sar(&sar.key, Err(error), at(0));
    assert_eq!(outcome, AuthzOutcome::Failed(error.into()));
    let (status, headers, body) = check(&gate, &req, &[], at(0)).refused();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["audit-id"], "abc");
    assert_eq!(
        body,
        format!("Internal Server Error: \"{V}/nodes?limit=500\": {error}\n")
    );
    check(&gate, &req, &[], at(1)).sar();
    // A contradictory answer is a failure too.
    let outcome = gate.complete_sar(
        &sar.key,
        Ok(br#"{"status":{"allowed":true,"denied":true}}"#),
        at(1),
    );
    assert_eq!(
        outcome,
        AuthzOutcome::Failed(
            "webhook subject access review returned both allow and deny response".into()
        )
    );
}

#[test]
fn forbidden_message_escapes_the_user_controlled_part() {
    let attrs = RequestAttributes::new(&Method::GET, &format!("{V}/namespaces/a&b/pods/<w>"), None)
        .expect("attributes");
    let status = forbidden_status(&attrs, "<eve & mallory>", "because <x>");
    assert_eq!(
        status.message,
        "pods.metrics.k8s.io \"<w>\" is forbidden: User \"&lt;eve &amp; mallory&gt;\" cannot get resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"a&amp;b\": because <x>"
    );
    let attrs = RequestAttributes::new(&Method::POST, "/metrics", None).expect("attributes");
    assert_eq!(
        forbidden_status(&attrs, "u\"q", "").message,
        "forbidden: User \"u\\\"q\" cannot post path \"/metrics\""
    );
    let mut body = Vec::new();
    internal_error_response("/x?a=<b>", "e&f", &mut body);
    assert_eq!(
        body,
        b"Internal Server Error: \"/x?a=&lt;b&gt;\": e&amp;f\n"
    );
}

#[test]
fn forbidden_status_is_negotiated() {
    let mut gate = pki().gate();
    let req = get(&format!("{V}/nodes"), &[("accept", "application/yaml")]);
    let (checked, _) = check_with_sar(&mut gate, &req, &[], at(0), DENY);
    let (status, headers, body) = checked.refused();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["content-type"], "application/yaml");
    assert!(body.starts_with("apiVersion: v1\n"), "{body}");
    let req = get(&format!("{V}/nodes"), &[("user-agent", "curl/8.0")]);
    let (checked, _) = check_with_sar(&mut gate, &req, &[], at(0), DENY);
    let (_, headers, body) = checked.refused();
    assert_eq!(headers["content-type"], "application/json");
    assert!(body.starts_with("{\n  \"kind\": \"Status\""), "{body}");
    let req = get(&format!("{V}/nodes"), &[("accept", "text/html")]);
    let (checked, _) = check_with_sar(&mut gate, &req, &[], at(0), DENY);
    let (status, _, body) = checked.refused();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body.starts_with("{\n"),
        "indented JSON when nothing is acceptable"
    );
}

#[test]
fn request_info_errors_come_first() {
    let gate = pki().gate();
    let req = get(&format!("{V}/watch"), &[("authorization", "Bearer t")]);
    let (status, _, body) = check(&gate, &req, &[], at(0)).refused();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        format!(
            "Internal Server Error: \"{V}/watch\": failed to create RequestInfo: unable to determine kind and namespace from url, {V}/watch\n"
        )
    );
    let (status, _, body) = check(&gate, &get("/bad%zz", &[]), &[], at(0)).refused();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "400 Bad Request")
    );
}

#[test]
fn custom_always_allow_paths_and_no_review() {
    let gate = Gate::new(
        AuthnConfig::default(),
        AuthzConfig {
            always_allow_paths: vec!["/metrics".into(), "/debug/*".into()],
            subject_access_review: false,
            ..AuthzConfig::default()
        },
    )
    .expect("gate");
    check(&gate, &get("/metrics", &[]), &[], at(0)).identity();
    check(&gate, &get("/debug/pprof/heap", &[]), &[], at(0)).identity();
    // Resource requests never match a path rule; undecided ones are denied.
    let (status, _, _) = check(&gate, &get("/livez", &[]), &[], at(0)).refused();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        Gate::new(
            AuthnConfig::default(),
            AuthzConfig {
                always_allow_paths: vec!["/a*/b".into()],
                ..AuthzConfig::default()
            }
        )
        .is_err()
    );
}

#[test]
fn strip_headers_removes_credentials() {
    let pki = pki();
    let authn = Authenticator::new(pki.authn());
    let mut req = get(
        V,
        &[
            ("authorization", "Bearer t"),
            ("x-remote-user", "a"),
            ("x-remote-uid", "1"),
            ("x-remote-group", "g"),
            ("x-remote-extra-k", "v"),
            ("accept", "application/json"),
        ],
    );
    authn.strip_headers(&mut req.headers);
    let left: Vec<&str> = req.headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(left, vec!["accept"]);
}

// ---------------------------------------------------------------------------------------
// Settings (spec 5.3)
// ---------------------------------------------------------------------------------------

fn configmap(pki: &Pki, allowed: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": {
            "client-ca-file": pki.client_ca.pem,
            "requestheader-allowed-names": allowed,
            "requestheader-client-ca-file": pki.front_proxy_ca.pem,
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]"
        }
    }))
    .expect("json")
}

#[test]
fn configmap_settings_authenticate_the_aggregator() {
    let pki = pki();
    let cm = configmap(&pki, "[\"front-proxy-client\"]");
    let opts = AuthenticationOptions::default();
    assert!(opts.needs_lookup());
    let sources = opts.resolve(Some(Lookup::Found(&cm))).expect("resolved");
    assert!(sources.warnings.is_empty(), "{:?}", sources.warnings);
    let rh = sources.request_header.clone().expect("request header");
    assert_eq!(rh.allowed_names, vec!["front-proxy-client"]);
    assert!(rh.uid_headers.is_empty());
    assert_eq!(rh.client_ca, pki.front_proxy_ca.bundle());
    let gate = Gate::new(
        AuthnConfig {
            request_header: sources.request_header,
            client_ca: sources.client_ca,
            ..AuthnConfig::default()
        },
        AuthzConfig::default(),
    )
    .expect("gate");
    let req = get(
        V,
        &[
            ("X-Remote-User", "system:kube-aggregator"),
            ("X-Remote-Group", "system:masters"),
        ],
    );
    check(&gate, &req, pki.proxy(), at(0)).identity();
    let alice = pki.client_ca.client("alice", None);
    assert_eq!(
        check(&gate, &get("/livez", &[]), &[alice], at(0))
            .identity()
            .name,
        "alice"
    );
}

#[test]
fn configmap_lookup_decisions() {
    let pki = pki();
    let opts = AuthenticationOptions::default();
    // NotFound: silently nothing.
    let sources = opts.resolve(Some(Lookup::NotFound)).expect("ok");
    assert!(sources.request_header.is_none() && sources.client_ca.is_none());
    // Forbidden: a start-up error...
    let forbidden = "configmaps \"extension-apiserver-authentication\" is forbidden: User \"system:serviceaccount:kube-system:metrics-server\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"kube-system\"";
    let err = opts
        .resolve(Some(Lookup::Failed(forbidden)))
        .expect_err("fails");
    assert_eq!(
        err.to_string(),
        format!("unable to load configmap based request-header-client-ca-file: {forbidden}")
    );
    // ...unless tolerated.
    let tolerant = AuthenticationOptions {
        tolerate_lookup_failure: true,
        ..AuthenticationOptions::default()
    };
    let sources = tolerant
        .resolve(Some(Lookup::Failed(forbidden)))
        .expect("tolerated");
    assert!(sources.request_header.is_none());
    assert_eq!(sources.warnings.len(), 1);
    // Undecodable header lists are lookup failures too.
    let bad = configmap(&pki, "front-proxy-client");
    assert!(opts.resolve(Some(Lookup::Found(&bad))).is_err());
    assert!(tolerant.resolve(Some(Lookup::Found(&bad))).is_ok());
    // Skipped: no lookup, nothing from the cluster.
    let skip = AuthenticationOptions {
        skip_lookup: true,
        ..AuthenticationOptions::default()
    };
    assert!(!skip.needs_lookup());
    assert_eq!(skip.resolve(None).expect("ok").request_header, None);
    // Flags win and take the flag defaults for headers; with both flags no lookup.
    let flags = AuthenticationOptions {
        client_ca_file: Some(pki.client_ca.pem.clone().into_bytes()),
        request_header: Some(RequestHeaderOptions::with_defaults(
            pki.front_proxy_ca.pem.clone().into_bytes(),
        )),
        ..AuthenticationOptions::default()
    };
    assert!(!flags.needs_lookup());
    let sources = flags.resolve(None).expect("ok");
    assert_eq!(
        sources.request_header,
        Some(RequestHeaderConfig::with_flag_defaults(
            pki.front_proxy_ca.bundle()
        ))
    );
    let broken = AuthenticationOptions {
        client_ca_file: Some(b"nope".to_vec()),
        ..AuthenticationOptions::default()
    };
    assert!(broken.resolve(Some(Lookup::NotFound)).is_err());
    // Only the request-header flag: the client CA still comes from the ConfigMap.
    let half = AuthenticationOptions {
        request_header: flags.request_header.clone(),
        ..AuthenticationOptions::default()
    };
    assert!(half.needs_lookup());
    let cm = configmap(&pki, "[]");
    let sources = half.resolve(Some(Lookup::Found(&cm))).expect("ok");
    assert_eq!(sources.client_ca, Some(pki.client_ca.bundle()));
    assert_eq!(
        sources.request_header.expect("flags").username_headers,
        vec!["x-remote-user"]
    );
}

#[test]
fn configmap_reader_edge_cases() {
    let pki = pki();
    let ext = ExtensionAuthentication::from_json(br#"{"data":{}}"#).expect("ok");
    assert!(ext.client_ca.is_none() && ext.request_header.is_none());
    assert_eq!(ext.warnings.len(), 2);
    let ext = ExtensionAuthentication::from_json(br#"{"metadata":{}}"#).expect("ok");
    assert!(ext.request_header.is_none());
    let doc = serde_json::json!({"data": {
        "requestheader-client-ca-file": pki.front_proxy_ca.pem,
        "requestheader-allowed-names": "null",
        "requestheader-username-headers": "",
        "requestheader-uid-headers": "[\"X-Remote-Uid\"]",
        "client-ca-file": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    }});
    let ext =
        ExtensionAuthentication::from_json(&serde_json::to_vec(&doc).expect("json")).expect("ok");
    let rh = ext.request_header.expect("request header");
    assert!(rh.allowed_names.is_empty() && rh.username_headers.is_empty());
    assert_eq!(rh.uid_headers, vec!["X-Remote-Uid"]);
    assert!(ext.client_ca.is_none(), "unusable bundle skipped");
    assert_eq!(ext.warnings.len(), 1);
    for bad in [
        &b"["[..],
        b"7",
        br#"{"data":{"requestheader-group-headers":"[1]"}}"#,
    ] {
        assert!(ExtensionAuthentication::from_json(bad).is_err());
    }
}

#[test]
fn ca_bundles_from_pem_and_der() {
    let a = Ca::new("a");
    let b = Ca::new("b");
    let both = format!(
        "junk\n{}\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{}",
        a.pem, b.pem
    );
    let bundle = CaBundle::parse(both.as_bytes()).expect("bundle");
    assert_eq!(bundle.len(), 2);
    assert_eq!(bundle.certificates()[1], b.der);
    assert_eq!(CaBundle::parse(&a.der).expect("der").len(), 1);
    let leaf = b.client("x", None);
    assert_eq!(
        bundle
            .verify(&[leaf], wall())
            .expect("verified")
            .common_name,
        "x"
    );
}

// ---------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------

#[test]
fn hostile_input_never_panics() {
    let pki = pki();
    let mut gate = pki.gate();
    let proxy = pki.proxy_cert.clone();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let header_values: [&[u8]; 8] = [
        b"",
        b"Bearer \xff\xfe",
        b"\xc3(",
        b"%zz%",
        b"base64url.bearer.authorization.k8s.io.!!!",
        b"base64url.bearer.authorization.k8s.io.//8, x",
        b"a, b",
        b"Bearer a b c",
    ];
    let header_names = [
        "authorization",
        "x-remote-user",
        "x-remote-group",
        "x-remote-extra-%zz",
        "x-remote-extra-",
        "sec-websocket-protocol",
        "connection",
        "upgrade",
    ];
    let paths = [
        "/",
        "//",
        "/apis//",
        "/apis/a/b/watch",
        "/api/v1/proxy",
        "/apis/a/b/c/d/e/f/g/h",
        "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=%3D&labelSelector=((((",
        "/apis/metrics.k8s.io/v1beta1/pods?watch&watch=&limit=&fieldSelector=metadata.name%3D..",
    ];
    for round in 0..300u64 {
        let mut builder = Request::builder()
            .method(if round % 3 == 0 { "PATCH" } else { "GET" })
            .uri(paths[(next() % paths.len() as u64) as usize]);
        for _ in 0..(next() % 12) {
            let name = header_names[(next() % header_names.len() as u64) as usize];
            let value = header_values[(next() % header_values.len() as u64) as usize];
            builder = builder.header(name, HeaderValue::from_bytes(value).expect("value"));
        }
        let req = builder.body(()).expect("request").into_parts().0;
        let mut junk = proxy.clone();
        let at_byte = (next() % junk.len() as u64) as usize;
        junk[at_byte] ^= 0x5a;
        junk.truncate(junk.len() - (next() % 40) as usize);
        let chains = [
            vec![],
            vec![proxy.clone()],
            vec![junk],
            vec![proxy.clone(); 20],
        ];
        let chain = &chains[(next() % 4) as usize];
        match check(&gate, &req, chain, at(round)).outcome {
            GateOutcome::NeedsTokenReview(review) => {
                gate.complete_token_review(&review.token_hash, Ok(b"\x00garbage"), at(round));
            }
            GateOutcome::NeedsSubjectAccessReview(sar) => {
                gate.complete_sar(&sar.key, Ok(br#"{"status":{"reason":7}}"#), at(round));
            }
            GateOutcome::Proceed(_) | GateOutcome::Refuse(_) => {}
        }
    }
    // Many group headers from a trusted proxy stay within the limits.
    let mut builder = Request::builder().uri(V).header("x-remote-user", "u");
    for i in 0..2000 {
        builder = builder.header("x-remote-group", format!("g{i}"));
    }
    let req = builder.body(()).expect("request").into_parts().0;
    let (status, _, _) = check(&gate, &req, pki.proxy(), at(0)).refused();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn large_review_answers_are_bounded() {
    let mut authn = Authenticator::new(AuthnConfig::default());
    let groups: Vec<String> = (0..5000).map(|i| format!("g{i}")).collect();
    let body = serde_json::to_vec(&serde_json::json!({
        "status": {"authenticated": true, "user": {"username": "u", "groups": groups}}
    }))
    .expect("json");
    let verdict = authn.complete_token_review(&TokenHash::of("t"), Ok(&body), at(0));
    assert!(matches!(verdict, TokenVerdict::Failed(_)));
    let huge = vec![b' '; 2 * 1024 * 1024];
    assert!(matches!(
        authn.complete_token_review(&TokenHash::of("t"), Ok(&huge), at(0)),
        TokenVerdict::Failed(_)
    ));
}

// ---------------------------------------------------------------------------------------
// Through the serving path: connection, service, delegation and engine driver
// ---------------------------------------------------------------------------------------

mod wired {
    use super::*;
    use metrics_core::api::dispatch::{Api, ApiConfig};
    use metrics_core::driver::{
        ApiService, ClientConfig, Command, ConfigMapFollow, DelegatedTarget, Delegation,
        DelegationConfig, DelegationEvent, EngineDriver, Exchange, Peer, Report, RequestKey,
        ServerConfig, ServerConnection, Upstream,
    };
    use metrics_core::engine::{Engine, EngineConfig};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Duration;

    const REVIEWER: &str = "reviews.test";

    /// Counts its wake-ups: a connection task waiting for a review.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The server's pieces around one delegation, without sockets.
    struct Server {
        driver: EngineDriver<()>,
        delegation: Arc<Delegation>,
        service: ApiService,
        /// What the delegation reported, as `Debug` text.
        events: Arc<std::sync::Mutex<Vec<String>>>,
    }

    fn server_with(gate: Gate, config: DelegationConfig) -> Server {
        let engine = Engine::new(EngineConfig::new(Duration::from_secs(15), 1), at(0));
        let api = Arc::new(Api::new(ApiConfig {
            server_address: ":443".into(),
            version: Default::default(),
            release: "v0.1.0".into(),
        }));
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let delegation = Arc::new(Delegation::new(gate, config, at(0)).with_events(Arc::new(
            move |event: DelegationEvent<'_>| {
                sink.lock().expect("events").push(format!("{event:?}"));
            },
        )));
        let target = DelegatedTarget {
            host: REVIEWER.into(),
            port: 6443,
            token: Some(Arc::new(|| Some("sa-token".to_owned()))),
        };
        let mut client = ClientConfig::new("test".into(), "apiserver.test".into(), 443);
        client.authentication = Some(target.clone());
        client.authorization = Some(target);
        let mut driver = EngineDriver::new(engine, client).with_delegation(Arc::clone(&delegation));
        // The engine's own first actions (lists of nodes and pods) are not looked at here.
        driver.handle_timeout(at(0), wall());
        while driver.poll_command(at(0), wall()).is_some() {}
        let service =
            ApiService::new(api, driver.reader(), 7).with_delegation(Arc::clone(&delegation));
        Server {
            driver,
            delegation,
            service,
            events,
        }
    }

    fn server(pki: &Pki) -> Server {
        server_with(pki.gate(), DelegationConfig::default())
    }

    /// A client connection with one request sent.
    struct Client {
        conn: ServerConnection<ApiService>,
        task: Arc<Task>,
        /// Written at once, as the adapter asks right after feeding.
        immediate: Option<(u16, String)>,
    }

    impl Server {
        fn send(&self, certificates: &[Vec<u8>], request: &str, now: Instant) -> Client {
            let mut conn = ServerConnection::new(ServerConfig::DEFAULT, self.service.clone(), now);
            conn.handle_handshake(
                now,
                Peer {
                    certificates: certificates.to_vec(),
                },
            );
            conn.feed(now, request.as_bytes());
            let mut client = Client {
                conn,
                task: Arc::default(),
                immediate: None,
            };
            client.immediate = client.transmit(now);
            client
        }

        /// The delegated requests the engine task would send now.
        fn reviews(&mut self, now: Instant) -> Vec<Exchange> {
            self.driver.handle_timeout(now, wall());
            let mut out = Vec::new();
            while let Some(command) = self.driver.poll_command(now, wall()) {
                if let Command::Start { exchange, .. } = command
                    && matches!(exchange.key(), RequestKey::Delegated(_))
                {
                    out.push(exchange);
                }
            }
            out
        }

        /// Answers a delegated request as kube-apiserver would.
        fn answer(&mut self, mut exchange: Exchange, status: u16, body: &[u8], now: Instant) {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            exchange.feed(head.as_bytes());
            exchange.feed(body);
            while let Some(completion) = exchange.poll_completion() {
                self.driver
                    .handle_report(now, Report::Completion(completion));
            }
            let finished = Report::Finished {
                key: exchange.key(),
                endpoint: exchange.endpoint().clone(),
                connection: None,
            };
            self.driver.handle_report(now, finished);
        }
    }

    impl Client {
        /// The response written by now, if any: (status, whole text). Like the adapter,
        /// it asks again only once the connection's wake-up is ready.
        fn response(&mut self, now: Instant) -> Option<(u16, String)> {
            if let Some(immediate) = self.immediate.take() {
                return Some(immediate);
            }
            if let Some(response) = self.transmit(now) {
                return Some(response);
            }
            if self.poll_wake().is_pending() {
                return None;
            }
            self.transmit(now)
        }

        fn transmit(&mut self, now: Instant) -> Option<(u16, String)> {
            let bytes = self.conn.poll_transmit(now, wall())?;
            self.conn.handle_transmitted(now);
            let text = String::from_utf8(bytes).expect("utf-8");
            let status = text[9..12].parse().expect("status code");
            Some((status, text))
        }

        /// Whether the connection may go on (as the adapter's wake-up arm sees it).
        fn poll_wake(&mut self) -> Poll<()> {
            let waker = Waker::from(Arc::clone(&self.task));
            self.conn.poll_wake(&mut Context::from_waker(&waker))
        }

        fn wakes(&self) -> usize {
            self.task.0.load(Ordering::SeqCst)
        }
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> String {
        let mut text = format!("GET {path} HTTP/1.1\r\nHost: metrics-server\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text
    }

    fn body_of(exchange: &Exchange) -> Value {
        let bytes = exchange.request_bytes();
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head and body");
        json(&bytes[split + 4..])
    }

    fn head_of(exchange: &Exchange) -> String {
        let bytes = exchange.request_bytes();
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head");
        String::from_utf8_lossy(&bytes[..split]).into_owned()
    }

    const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";

    fn token_review_answer(user: &str, groups: &[&str]) -> Vec<u8> {
        serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "status": {"authenticated": true, "user": {"username": user, "groups": groups}},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn front_proxy_user_waits_for_one_review_shared_by_concurrent_requests() {
        let pki = pki();
        let mut server = server(&pki);
        let jane = request(
            NODES,
            &[("X-Remote-User", "jane"), ("X-Remote-Group", "dev")],
        );
        let mut first = server.send(pki.proxy(), &jane, at(1));
        let mut second = server.send(pki.proxy(), &jane, at(1));
        assert_eq!(first.response(at(1)), None, "waits for the review");
        assert_eq!(second.response(at(1)), None);
        assert!(first.poll_wake().is_pending() && second.poll_wake().is_pending());

        let mut reviews = server.reviews(at(1));
        assert_eq!(reviews.len(), 1, "one review for both requests");
        let review = reviews.remove(0);
        assert_eq!(review.endpoint().upstream, Upstream::Authorization);
        assert_eq!(review.endpoint().host, REVIEWER);
        let head = head_of(&review);
        assert!(
            head.starts_with("POST /apis/authorization.k8s.io/v1/subjectaccessreviews HTTP/1.1"),
            "{head}"
        );
        assert!(head.contains("authorization: Bearer sa-token"), "{head}");
        let spec = &body_of(&review)["spec"];
        assert_eq!(spec["user"], "jane");
        assert_eq!(
            spec["groups"],
            serde_json::json!(["dev", "system:authenticated"])
        );
        assert_eq!(spec["resourceAttributes"]["verb"], "list");
        assert_eq!(spec["resourceAttributes"]["group"], "metrics.k8s.io");
        assert_eq!(spec["resourceAttributes"]["resource"], "nodes");

        server.answer(review, 201, ALLOW, at(2));
        assert_eq!((first.wakes(), second.wakes()), (1, 1), "both tasks woken");
        assert!(first.poll_wake().is_ready() && second.poll_wake().is_ready());
        for client in [&mut first, &mut second] {
            let (status, text) = client.response(at(2)).expect("answered");
            assert_eq!(status, 200, "{text}");
            assert!(text.contains("\"kind\":\"NodeMetricsList\""), "{text}");
        }
        // Within the authorized TTL the next request is answered at once.
        let mut third = server.send(pki.proxy(), &jane, at(5));
        assert_eq!(third.response(at(5)).map(|r| r.0), Some(200));
        assert!(server.reviews(at(5)).is_empty());
        assert_eq!(server.delegation.pending(), 0);
        assert_eq!(
            server.delegation.unread_results(),
            0,
            "both requests read theirs"
        );
    }

    #[test]
    fn front_proxy_user_denied_by_review_is_403() {
        let pki = pki();
        let mut server = server(&pki);
        let mallory = request(NODES, &[("X-Remote-User", "mallory")]);
        let mut client = server.send(pki.proxy(), &mallory, at(1));
        assert_eq!(client.response(at(1)), None);
        let review = server.reviews(at(1)).pop().expect("a review");
        assert_eq!(body_of(&review)["spec"]["user"], "mallory");
        server.answer(review, 201, DENY, at(1));
        let (status, text) = client.response(at(1)).expect("answered");
        assert_eq!(status, 403);
        assert!(
            text.contains(r#"User \"mallory\" cannot list resource \"nodes\" in API group \"metrics.k8s.io\" at the cluster scope"#),
            "{text}"
        );
    }

    #[test]
    fn untrusted_front_proxy_and_disallowed_cn_are_401_without_any_review() {
        let pki = pki();
        let mut server = server(&pki);
        let stranger_ca = Ca::new("front-proxy-ca");
        let forged = stranger_ca.client("front-proxy-client", None);
        let intruder = pki.front_proxy_ca.client("intruder", None);
        let admin = request(
            NODES,
            &[
                ("X-Remote-User", "admin"),
                ("X-Remote-Group", "system:masters"),
            ],
        );
        for chain in [forged, intruder] {
            let mut client = server.send(&[chain], &admin, at(1));
            let (status, text) = client.response(at(1)).expect("answered at once");
            assert_eq!(status, 401);
            assert!(text.ends_with(UNAUTHORIZED), "{text}");
        }
        assert!(server.reviews(at(1)).is_empty());
        let events = server.events.lock().expect("events").clone();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].contains("status: 401") && events[0].contains("certificate"));
        assert!(events[1].contains("x509: subject with cn=intruder is not in the allowed list"));
    }

    #[test]
    fn front_proxy_headers_without_a_certificate_are_anonymous_and_denied() {
        let pki = pki();
        let mut server = server(&pki);
        let admin = request(
            NODES,
            &[
                ("X-Remote-User", "admin"),
                ("X-Remote-Group", "system:masters"),
            ],
        );
        let mut client = server.send(&[], &admin, at(1));
        assert_eq!(
            client.response(at(1)),
            None,
            "not in system:masters: reviewed"
        );
        let review = server.reviews(at(1)).pop().expect("a review");
        let spec = &body_of(&review)["spec"];
        assert_eq!(spec["user"], "system:anonymous");
        assert_eq!(
            spec["groups"],
            serde_json::json!(["system:unauthenticated"])
        );
        server.answer(review, 201, DENY, at(1));
        let (status, text) = client.response(at(1)).expect("answered");
        assert_eq!(status, 403);
        assert!(
            text.contains(r#"User \"system:anonymous\" cannot list"#),
            "{text}"
        );
    }

    #[test]
    fn client_ca_user_is_reviewed_with_cn_and_organisations() {
        let pki = pki();
        let mut server = server(&pki);
        let alice = pki.client_ca.client("alice", Some("team-a"));
        let mut client = server.send(&[alice], &request(NODES, &[]), at(1));
        let review = server.reviews(at(1)).pop().expect("a review");
        let spec = &body_of(&review)["spec"];
        assert_eq!(spec["user"], "alice");
        assert_eq!(
            spec["groups"],
            serde_json::json!(["team-a", "system:authenticated"])
        );
        server.answer(review, 201, ALLOW, at(1));
        assert_eq!(client.response(at(1)).map(|r| r.0), Some(200));
    }

    #[test]
    fn bearer_token_is_reviewed_then_authorized_then_cached() {
        let pki = pki();
        let mut server = server(&pki);
        let with_token = request(NODES, &[("Authorization", "Bearer secret-token")]);
        let mut client = server.send(&[], &with_token, at(1));
        assert_eq!(client.response(at(1)), None);
        let review = server.reviews(at(1)).pop().expect("a TokenReview");
        assert_eq!(review.endpoint().upstream, Upstream::Authentication);
        assert!(head_of(&review).starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews"));
        assert_eq!(body_of(&review)["spec"]["token"], "secret-token");
        server.answer(review, 201, &token_review_answer("bob", &["dev"]), at(1));
        assert!(client.poll_wake().is_ready());
        assert_eq!(
            client.response(at(1)),
            None,
            "now waits for the access review"
        );
        let review = server.reviews(at(1)).pop().expect("a SubjectAccessReview");
        assert_eq!(body_of(&review)["spec"]["user"], "bob");
        server.answer(review, 201, ALLOW, at(1));
        assert_eq!(client.response(at(1)).map(|r| r.0), Some(200));

        // Both answers are cached (10 s): no review for the same token.
        let mut again = server.send(&[], &with_token, at(3));
        assert_eq!(again.response(at(3)).map(|r| r.0), Some(200));
        assert!(server.reviews(at(3)).is_empty());
    }

    #[test]
    fn rejected_token_is_401() {
        let pki = pki();
        let mut server = server(&pki);
        let mut client = server.send(
            &[],
            &request(NODES, &[("Authorization", "Bearer wrong")]),
            at(1),
        );
        let review = server.reviews(at(1)).pop().expect("a TokenReview");
        let rejected = br#"{"kind":"TokenReview","status":{"authenticated":false}}"#;
        server.answer(review, 201, rejected, at(1));
        let (status, text) = client.response(at(1)).expect("answered");
        assert_eq!(status, 401);
        assert!(text.ends_with(UNAUTHORIZED), "{text}");
    }

    #[test]
    fn zero_ttl_reviews_still_answer_the_requests_that_waited() {
        let pki = pki();
        let authn = AuthnConfig {
            token_cache_ttl: Duration::ZERO,
            ..pki.authn()
        };
        let authz = AuthzConfig {
            authorized_ttl: Duration::ZERO,
            ..AuthzConfig::default()
        };
        let gate = Gate::new(authn, authz).expect("gate");
        let mut server = server_with(gate, DelegationConfig::default());
        let with_token = request(NODES, &[("Authorization", "Bearer t")]);
        let mut client = server.send(&[], &with_token, at(1));
        assert_eq!(client.response(at(1)), None);
        let review = server.reviews(at(1)).pop().expect("a TokenReview");
        server.answer(review, 201, &token_review_answer("bob", &[]), at(1));
        // Asked later than the completion: the cache has nothing, the attempt has it.
        assert_eq!(client.response(at(2)), None);
        let review = server.reviews(at(2)).pop().expect("a SubjectAccessReview");
        assert!(
            head_of(&review).contains("/subjectaccessreviews"),
            "not the token again"
        );
        server.answer(review, 201, ALLOW, at(2));
        assert_eq!(client.response(at(3)).map(|r| r.0), Some(200));
        assert!(server.reviews(at(3)).is_empty(), "nothing reviewed twice");
    }

    #[test]
    fn a_request_with_two_tokens_settles_even_when_nothing_is_cached() {
        let pki = pki();
        let authn = AuthnConfig {
            token_cache_ttl: Duration::ZERO,
            ..pki.authn()
        };
        let gate = Gate::new(authn, AuthzConfig::default()).expect("gate");
        let mut server = server_with(gate, DelegationConfig::default());
        // A bearer token and a websocket one (base64url "ws-token").
        let both = request(
            NODES,
            &[
                ("Authorization", "Bearer first"),
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                (
                    "Sec-WebSocket-Protocol",
                    "base64url.bearer.authorization.k8s.io.d3MtdG9rZW4, v4.channel.k8s.io",
                ),
            ],
        );
        let mut client = server.send(&[], &both, at(1));
        let rejected = br#"{"kind":"TokenReview","status":{"authenticated":false}}"#;
        let mut tokens = Vec::new();
        let mut second = 1;
        let answer = loop {
            if let Some(answer) = client.response(at(second)) {
                break answer;
            }
            let review = server.reviews(at(second)).pop().expect("a review");
            tokens.push(body_of(&review)["spec"]["token"].clone());
            assert!(tokens.len() <= 4, "reviews never end: {tokens:?}");
            // Later each time: nothing is cached (TTL 0).
            second += 1;
            server.answer(review, 201, rejected, at(second));
        };
        assert_eq!(tokens, ["first", "ws-token"], "each token reviewed once");
        assert_eq!(answer.0, 401);
    }

    #[test]
    fn unanswered_review_is_sent_five_times_then_fails_with_500() {
        let pki = pki();
        let mut server = server(&pki);
        let jane = request(NODES, &[("X-Remote-User", "jane")]);
        let mut client = server.send(pki.proxy(), &jane, at(1));
        let mut now = at(1);
        let mut sends = Vec::new();
        let mut aborted = 0;
        // Each send times out after 10 s; the next follows after the backoff.
        for _ in 0..20 {
            server.driver.handle_timeout(now, wall());
            while let Some(command) = server.driver.poll_command(now, wall()) {
                match command {
                    Command::Start { exchange, .. }
                        if matches!(exchange.key(), RequestKey::Delegated(_)) =>
                    {
                        sends.push((now, exchange.key()));
                    }
                    Command::Abort(RequestKey::Delegated(_)) => aborted += 1,
                    _ => {}
                }
            }
            if let Some((status, text)) = client.response(now) {
                assert_eq!(status, 500);
                assert!(text.contains("the review timed out"), "{text}");
                break;
            }
            now = server.driver.poll_timeout().expect("a deadline");
        }
        assert_eq!(sends.len(), 5, "{sends:?}");
        assert_eq!(aborted, 5, "every send that timed out is aborted");
        let keys: std::collections::HashSet<_> = sends.iter().map(|(_, k)| *k).collect();
        assert_eq!(keys.len(), 5, "each send has its own key");
        // 10 s timeout, then 0.5 s x 1.5^n (+ up to 20 %) before the next send.
        for (n, pair) in sends.windows(2).enumerate() {
            let gap = pair[1].0.saturating_duration_since(pair[0].0);
            let backoff = gap - Duration::from_secs(10);
            let base = Duration::from_millis(500).mul_f64(1.5f64.powi(n as i32));
            assert!(
                backoff >= base && backoff <= base.mul_f64(1.2),
                "gap {n}: {gap:?}"
            );
        }
        // A failure is not cached: a request a moment later is reviewed again.
        let later = now.saturating_add(Duration::from_millis(1));
        let mut client_again = server.send(pki.proxy(), &jane, later);
        let (status, text) = client_again
            .response(later)
            .map_or((0, String::new()), |r| r);
        assert_eq!(
            status, 0,
            "a failure is not cached: reviewed again ({text})"
        );
        assert_eq!(server.delegation.pending(), 1);
    }

    #[test]
    fn review_answered_503_is_retried_and_a_late_answer_to_an_old_send_is_ignored() {
        let pki = pki();
        let mut server = server(&pki);
        let jane = request(NODES, &[("X-Remote-User", "jane")]);
        let mut client = server.send(pki.proxy(), &jane, at(1));
        let first = server.reviews(at(1)).pop().expect("a review");
        let first_key = first.key();
        server.answer(first, 503, b"busy", at(1));
        assert_eq!(client.response(at(1)), None, "retried, still waiting");
        assert!(server.reviews(at(1)).is_empty(), "not before the backoff");
        let retry_at = server.driver.poll_timeout().expect("the retry");
        let second = server.reviews(retry_at).pop().expect("sent again");
        assert_ne!(second.key(), first_key);
        // An answer carrying the first send's key changes nothing now.
        if let RequestKey::Delegated(id) = first_key {
            server
                .delegation
                .complete(id, Ok((http::StatusCode::CREATED, DENY)), retry_at);
        }
        assert_eq!(client.response(retry_at), None);
        server.answer(second, 201, ALLOW, retry_at);
        assert_eq!(client.response(retry_at).map(|r| r.0), Some(200));
    }

    #[test]
    fn always_allowed_paths_and_system_masters_need_no_review() {
        let pki = pki();
        let mut server = server(&pki);
        for path in ["/livez", "/healthz"] {
            let mut client = server.send(&[], &request(path, &[]), at(1));
            assert_eq!(client.response(at(1)).map(|r| r.0), Some(200), "{path}");
        }
        let aggregator = request(
            NODES,
            &[
                ("X-Remote-User", "system:kube-aggregator"),
                ("X-Remote-Group", "system:masters"),
            ],
        );
        let mut client = server.send(pki.proxy(), &aggregator, at(1));
        assert_eq!(client.response(at(1)).map(|r| r.0), Some(200));
        assert!(server.reviews(at(1)).is_empty());
    }

    #[test]
    fn configmap_changes_replace_the_front_proxy_settings() {
        let pki = pki();
        // Started without request-header settings (the ConfigMap had none yet).
        let authn = AuthnConfig {
            request_header: None,
            ..pki.authn()
        };
        let gate = Gate::new(authn, AuthzConfig::default()).expect("gate");
        let follow = ConfigMapFollow {
            client_ca: false,
            request_header: true,
            interval: Duration::from_secs(30),
        };
        let config = DelegationConfig {
            follow_configmap: Some(follow),
            ..DelegationConfig::default()
        };
        let mut server = server_with(gate, config);
        let aggregator = request(
            NODES,
            &[
                ("X-Remote-User", "system:kube-aggregator"),
                ("X-Remote-Group", "system:masters"),
            ],
        );
        // Without the request-header CA the proxy's certificate is only a client
        // certificate the client CA does not know: 401.
        let mut before = server.send(pki.proxy(), &aggregator, at(1));
        assert_eq!(before.response(at(1)).map(|r| r.0), Some(401));
        assert_eq!(server.driver.poll_timeout(), Some(at(30)), "the next read");

        let mut reads = server.reviews(at(30));
        assert_eq!(reads.len(), 1);
        let read = reads.pop().expect("the ConfigMap read");
        assert!(head_of(&read).starts_with(
            "GET /api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication HTTP/1.1"
        ));
        let ca = pki.front_proxy_ca.pem.clone();
        let configmap = serde_json::json!({
            "kind": "ConfigMap",
            "data": {
                "requestheader-client-ca-file": ca,
                "requestheader-allowed-names": "[\"front-proxy-client\"]",
                "requestheader-username-headers": "[\"X-Remote-User\"]",
                "requestheader-group-headers": "[\"X-Remote-Group\"]",
            },
        });
        server.answer(read, 200, configmap.to_string().as_bytes(), at(30));
        assert_eq!(
            server
                .events
                .lock()
                .expect("events")
                .last()
                .map(String::as_str),
            Some("ConfigMapApplied { client_ca: false, request_header: true }")
        );
        let settings = server
            .delegation
            .authn_config()
            .request_header
            .expect("followed");
        assert_eq!(settings.allowed_names, ["front-proxy-client"]);

        let mut after = server.send(pki.proxy(), &aggregator, at(31));
        assert_eq!(
            after.response(at(31)).map(|r| r.0),
            Some(200),
            "trusted now"
        );
        // The ConfigMap disappearing keeps them (as upstream's controllers do).
        let read = server.reviews(at(60)).pop().expect("the next read");
        server.answer(read, 404, b"{}", at(60));
        assert_eq!(
            server.delegation.authn_config().request_header,
            Some(settings)
        );
        assert!(
            server
                .events
                .lock()
                .expect("events")
                .last()
                .is_some_and(|e| e.contains("ConfigMapFailed")),
        );
    }
}
