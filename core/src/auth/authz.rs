//! Authorization (spec 5.2): privileged groups, then always-allowed paths, then a
//! delegated SubjectAccessReview, the first definite decision winning.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::attributes::{RequestAttributes, SelectorRequirement};
use super::authn::Identity;
use super::cache::TtlCache;
use super::text;
use crate::api::json::write_str;
use crate::time::Instant;

/// Where SubjectAccessReviews are POSTed on kube-apiserver.
pub const SUBJECT_ACCESS_REVIEW_PATH: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
/// Members are allowed everything without a review.
pub const MASTERS_GROUP: &str = "system:masters";
/// `--authorization-always-allow-paths` default.
pub const DEFAULT_ALWAYS_ALLOW_PATHS: [&str; 3] = ["/healthz", "/readyz", "/livez"];
/// `--authorization-webhook-cache-authorized-ttl` default.
pub const DEFAULT_AUTHORIZED_TTL: Duration = Duration::from_secs(10);
/// `--authorization-webhook-cache-unauthorized-ttl` default.
pub const DEFAULT_UNAUTHORIZED_TTL: Duration = Duration::from_secs(10);
/// Default bound of the decision cache.
pub const DEFAULT_CACHE_CAPACITY: usize = 8192;
/// Largest SubjectAccessReview response read.
pub const MAX_REVIEW_BYTES: usize = 1024 * 1024;

/// Authorization settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzConfig {
    /// Non-resource paths allowed to anyone: exact (leading `/` optional), or a prefix
    /// when ending in `*`.
    pub always_allow_paths: Vec<String>,
    /// Groups allowed everything ([`MASTERS_GROUP`]).
    pub always_allow_groups: Vec<String>,
    pub authorized_ttl: Duration,
    pub unauthorized_ttl: Duration,
    /// Whether undecided requests are sent for review; without, they are denied.
    pub subject_access_review: bool,
    /// Bound of the decision cache.
    pub cache_capacity: usize,
}

impl Default for AuthzConfig {
    fn default() -> Self {
        AuthzConfig {
            always_allow_paths: DEFAULT_ALWAYS_ALLOW_PATHS.map(str::to_owned).to_vec(),
            always_allow_groups: vec![MASTERS_GROUP.to_owned()],
            authorized_ttl: DEFAULT_AUTHORIZED_TTL,
            unauthorized_ttl: DEFAULT_UNAUTHORIZED_TTL,
            subject_access_review: true,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// An always-allow path with `*` other than at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzConfigError(pub String);

impl fmt::Display for AuthzConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "only trailing * allowed in {}", text::go_quote(&self.0))
    }
}

impl std::error::Error for AuthzConfigError {}

/// SHA-256 of a SubjectAccessReview spec: the decision cache key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SarKey([u8; 32]);

impl SarKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SarKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SarKey({})", text::hex(&self.0[..8]))
    }
}

impl fmt::Display for SarKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::hex(&self.0))
    }
}

/// A SubjectAccessReview the engine must POST to [`SUBJECT_ACCESS_REVIEW_PATH`]; its
/// answer goes to [`Authorizer::complete_sar`] with `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SarRequest {
    pub key: SarKey,
    /// The SubjectAccessReview JSON, as client-go encodes it (trailing newline).
    pub body: Vec<u8>,
}

/// The result of [`Authorizer::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzOutcome {
    Allowed,
    /// 403, with the review's `status.reason` (possibly empty).
    Denied(String),
    /// Ask again once [`Authorizer::complete_sar`] has recorded the answer.
    NeedsSubjectAccessReview(SarRequest),
    /// The authorizer failed (review call error, contradictory answer): 500 text.
    Failed(String),
}

/// A recorded review answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Allow,
    /// Denied or no opinion, with the reason.
    Deny(String),
    Error(String),
}

impl Decision {
    fn outcome(&self) -> AuthzOutcome {
        match self {
            Decision::Allow => AuthzOutcome::Allowed,
            Decision::Deny(reason) => AuthzOutcome::Denied(reason.clone()),
            Decision::Error(e) => AuthzOutcome::Failed(e.clone()),
        }
    }
}

/// The authorization chain with its decision cache.
#[derive(Debug)]
pub struct Authorizer {
    config: AuthzConfig,
    /// Exact paths without their leading `/`.
    paths: HashSet<String>,
    prefixes: Vec<String>,
    cache: TtlCache<SarKey, Decision>,
}

impl Authorizer {
    pub fn new(config: AuthzConfig) -> Result<Authorizer, AuthzConfigError> {
        let mut paths = HashSet::new();
        let mut prefixes = Vec::new();
        for entry in &config.always_allow_paths {
            let p = entry.strip_prefix('/').unwrap_or(entry);
            if p.is_empty() {
                paths.insert(String::new());
                continue;
            }
            if p.as_bytes()[..p.len() - 1].contains(&b'*') {
                return Err(AuthzConfigError(p.to_owned()));
            }
            match p.strip_suffix('*') {
                Some(prefix) => prefixes.push(prefix.to_owned()),
                None => {
                    paths.insert(p.to_owned());
                }
            }
        }
        Ok(Authorizer {
            cache: TtlCache::new(config.cache_capacity),
            config,
            paths,
            prefixes,
        })
    }

    pub fn config(&self) -> &AuthzConfig {
        &self.config
    }

    /// Decides, from the cache when a review is needed. `now` is monotonic.
    pub fn authorize(
        &self,
        identity: &Identity,
        attrs: &RequestAttributes,
        now: Instant,
    ) -> AuthzOutcome {
        self.authorize_with(identity, attrs, now, None)
    }

    /// [`authorize`](Self::authorize), with the outcome of a review this request already
    /// waited for, used when the cache no longer has it (see
    /// [`Authenticator::authenticate_with`](super::Authenticator::authenticate_with)).
    pub fn authorize_with(
        &self,
        identity: &Identity,
        attrs: &RequestAttributes,
        now: Instant,
        resolved: Option<&(SarKey, AuthzOutcome)>,
    ) -> AuthzOutcome {
        if identity.in_any_group(&self.config.always_allow_groups) {
            return AuthzOutcome::Allowed;
        }
        if !attrs.is_resource_request() && self.path_always_allowed(&attrs.path) {
            return AuthzOutcome::Allowed;
        }
        if !self.config.subject_access_review {
            return AuthzOutcome::Denied(String::new());
        }
        let spec = review_spec(identity, attrs);
        let key = SarKey(Sha256::digest(&spec).into());
        if let Some(decision) = self.cache.get(&key, now) {
            return decision.outcome();
        }
        match resolved.filter(|(k, _)| *k == key) {
            Some((_, outcome)) => outcome.clone(),
            None => AuthzOutcome::NeedsSubjectAccessReview(SarRequest {
                key,
                body: review_body(&spec),
            }),
        }
    }

    fn path_always_allowed(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        self.paths.contains(path) || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }

    /// Records the answer to a SubjectAccessReview: `Ok(body)` of a successful (2xx)
    /// response, `Err(text)` when the call failed. Allowed answers are cached for the
    /// authorized TTL, denied ones (and no opinion) for the unauthorized TTL; failures
    /// only for lookups at this same `now`. Returns the resulting outcome.
    pub fn complete_sar(
        &mut self,
        key: &SarKey,
        response: Result<&[u8], &str>,
        now: Instant,
    ) -> AuthzOutcome {
        let decision = match response {
            Ok(body) => parse_review(body),
            Err(e) => Decision::Error(e.to_owned()),
        };
        let ttl = match decision {
            Decision::Allow => self.config.authorized_ttl,
            Decision::Deny(_) => self.config.unauthorized_ttl,
            Decision::Error(_) => Duration::ZERO,
        };
        let outcome = decision.outcome();
        self.cache
            .insert(*key, decision, now.saturating_add(ttl), now);
        outcome
    }
}

#[derive(Deserialize, Default)]
struct ReviewDocument {
    #[serde(default)]
    status: Option<ReviewStatus>,
}

#[derive(Deserialize, Default)]
struct ReviewStatus {
    #[serde(default)]
    allowed: Option<bool>,
    #[serde(default)]
    denied: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
}

/// The webhook authorizer's reading of a SubjectAccessReview answer.
fn parse_review(body: &[u8]) -> Decision {
    if body.len() > MAX_REVIEW_BYTES {
        return Decision::Error("SubjectAccessReview response too large".to_owned());
    }
    let doc: ReviewDocument = match serde_json::from_slice(body) {
        Ok(doc) => doc,
        Err(e) => return Decision::Error(format!("invalid SubjectAccessReview response: {e}")),
    };
    let status = doc.status.unwrap_or_default();
    let (allowed, denied) = (
        status.allowed.unwrap_or(false),
        status.denied.unwrap_or(false),
    );
    match (allowed, denied) {
        (true, true) => Decision::Error(
            "webhook subject access review returned both allow and deny response".to_owned(),
        ),
        (true, false) => Decision::Allow,
        _ => Decision::Deny(status.reason.unwrap_or_default()),
    }
}

/// The `spec` of the SubjectAccessReview, in the field order of the Go type:
/// `resourceAttributes` | `nonResourceAttributes`, `user`, `groups`, `extra`, `uid`, each
/// omitted when empty.
fn review_spec(identity: &Identity, attrs: &RequestAttributes) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, name);
        out.push(b':');
    };
    match &attrs.resource {
        Some(r) => {
            key(&mut out, "resourceAttributes");
            let mut inner = Object::new(&mut out);
            inner.string("namespace", &r.namespace);
            inner.string("verb", &attrs.verb);
            inner.string("group", &r.group);
            inner.string("version", &r.version);
            inner.string("resource", &r.resource);
            inner.string("subresource", &r.subresource);
            inner.string("name", &r.name);
            inner.selector("fieldSelector", &r.field_selector);
            inner.selector("labelSelector", &r.label_selector);
            inner.close();
        }
        None => {
            key(&mut out, "nonResourceAttributes");
            let mut inner = Object::new(&mut out);
            inner.string("path", &attrs.path);
            inner.string("verb", &attrs.verb);
            inner.close();
        }
    }
    if !identity.name.is_empty() {
        key(&mut out, "user");
        write_str(&mut out, &identity.name);
    }
    if !identity.groups.is_empty() {
        key(&mut out, "groups");
        string_array(&mut out, &identity.groups);
    }
    if !identity.extra.is_empty() {
        key(&mut out, "extra");
        out.push(b'{');
        for (i, (k, values)) in identity.extra.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(&mut out, k);
            out.push(b':');
            string_array(&mut out, values);
        }
        out.push(b'}');
    }
    if !identity.uid.is_empty() {
        key(&mut out, "uid");
        write_str(&mut out, &identity.uid);
    }
    out.push(b'}');
    out
}

/// The whole SubjectAccessReview around `spec`.
fn review_body(spec: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(spec.len() + 160);
    body.extend_from_slice(
        br#"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{},"spec":"#,
    );
    body.extend_from_slice(spec);
    body.extend_from_slice(b",\"status\":{\"allowed\":false}}\n");
    body
}

fn string_array(out: &mut Vec<u8>, values: &[String]) {
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, v);
    }
    out.push(b']');
}

/// A JSON object whose empty members are omitted (`omitempty`).
struct Object<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Object<'o> {
    fn new(out: &'o mut Vec<u8>) -> Object<'o> {
        out.push(b'{');
        Object { out, first: true }
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, name);
        self.out.push(b':');
    }

    fn string(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.key(name);
            write_str(self.out, value);
        }
    }

    /// `{"requirements":[{"key":..,"operator":..,"values":[..]}]}`, omitted when empty.
    fn selector(&mut self, name: &str, requirements: &[SelectorRequirement]) {
        if requirements.is_empty() {
            return;
        }
        self.key(name);
        self.out.extend_from_slice(b"{\"requirements\":[");
        for (i, r) in requirements.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let mut item = Object::new(self.out);
            item.string("key", &r.key);
            item.string("operator", r.operator);
            if !r.values.is_empty() {
                item.key("values");
                string_array(item.out, &r.values);
            }
            item.close();
        }
        self.out.extend_from_slice(b"]}");
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_answers() {
        assert_eq!(
            parse_review(br#"{"status":{"allowed":true}}"#),
            Decision::Allow
        );
        assert_eq!(
            parse_review(br#"{"status":{"allowed":false,"reason":"no RBAC"}}"#),
            Decision::Deny("no RBAC".into())
        );
        assert_eq!(
            parse_review(br#"{"status":{"denied":true}}"#),
            Decision::Deny(String::new())
        );
        assert_eq!(parse_review(br#"{}"#), Decision::Deny(String::new()));
        assert!(matches!(
            parse_review(br#"{"status":{"allowed":true,"denied":true}}"#),
            Decision::Error(_)
        ));
        assert!(matches!(parse_review(b"[1"), Decision::Error(_)));
        assert!(matches!(
            parse_review(br#"{"status":7}"#),
            Decision::Error(_)
        ));
    }

    #[test]
    fn always_allow_path_rules() {
        let authz = |paths: &[&str]| {
            Authorizer::new(AuthzConfig {
                always_allow_paths: paths.iter().map(|p| p.to_string()).collect(),
                ..AuthzConfig::default()
            })
        };
        let a = authz(&["/healthz", "metrics", "/debug/*", "/"]).expect("valid");
        assert!(a.path_always_allowed("/healthz"));
        assert!(a.path_always_allowed("healthz"));
        assert!(!a.path_always_allowed("/healthz/ping"));
        assert!(a.path_always_allowed("/metrics"));
        assert!(a.path_always_allowed("/debug/pprof"));
        assert!(a.path_always_allowed("/"));
        assert!(!a.path_always_allowed("/other"));
        assert_eq!(
            authz(&["/a*b"]).expect_err("invalid").to_string(),
            r#"only trailing * allowed in "a*b""#
        );
    }
}
