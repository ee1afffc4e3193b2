//! Authentication (spec 5.1): the union of front-proxy (request-header), client-certificate
//! and bearer-token authenticators, then anonymous.
//!
//! Evaluated in that order, the first success wins. When none succeeds and at least one
//! returned an error (a certificate that does not verify, a CN not allowed, a token the
//! review rejected), the request is unauthorized (401); only a request to which none of
//! them applies becomes anonymous. Every authenticated user other than `system:anonymous`
//! gets the group `system:authenticated` appended unless it already has it or
//! `system:unauthenticated`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

use super::cache::TtlCache;
use super::text;
use super::x509::{CaBundle, VerifyingBundle};
use crate::api::json::write_str;
use crate::time::{Instant, Timestamp};

pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The `extra` key client-certificate users carry their certificate fingerprint under.
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";
/// Where TokenReviews are POSTed on kube-apiserver.
pub const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
/// `--authentication-token-webhook-cache-ttl` default.
pub const DEFAULT_TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Default bound of the token cache.
pub const DEFAULT_CACHE_CAPACITY: usize = 8192;

/// Most groups one identity may have; more is an authentication error.
pub const MAX_GROUPS: usize = 1024;
/// Most `extra` keys one identity may have.
pub const MAX_EXTRA_KEYS: usize = 256;
/// Most `extra` values (over all keys) one identity may have.
pub const MAX_EXTRA_VALUES: usize = 1024;
/// Most bytes of names, groups and extra one identity may have.
pub const MAX_IDENTITY_BYTES: usize = 256 * 1024;
/// Longest bearer token sent to review; longer ones are rejected outright.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Largest TokenReview response read.
pub const MAX_REVIEW_BYTES: usize = 1024 * 1024;

const BEARER_PROTOCOL_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";
const WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";

/// Who made a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    /// Sorted by key (as Go's JSON encoder writes the map).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Identity {
    /// `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Identity {
        Identity {
            name: ANONYMOUS_USER.to_owned(),
            groups: vec![UNAUTHENTICATED_GROUP.to_owned()],
            ..Identity::default()
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER
    }

    /// Whether the identity is in any of `groups`.
    pub fn in_any_group<S: AsRef<str>>(&self, groups: &[S]) -> bool {
        self.groups
            .iter()
            .any(|g| groups.iter().any(|p| p.as_ref() == g))
    }

    /// Upstream's `AuthenticatedGroupAdder`.
    fn with_authenticated_group(mut self) -> Identity {
        if self.is_anonymous()
            || self
                .groups
                .iter()
                .any(|g| g == AUTHENTICATED_GROUP || g == UNAUTHENTICATED_GROUP)
        {
            return self;
        }
        self.groups.push(AUTHENTICATED_GROUP.to_owned());
        self
    }

    fn within_limits(&self) -> bool {
        let values: usize = self.extra.values().map(Vec::len).sum();
        let bytes = self.name.len()
            + self.uid.len()
            + self.groups.iter().map(String::len).sum::<usize>()
            + self
                .extra
                .iter()
                .map(|(k, v)| k.len() + v.iter().map(String::len).sum::<usize>())
                .sum::<usize>();
        self.groups.len() <= MAX_GROUPS
            && self.extra.len() <= MAX_EXTRA_KEYS
            && values <= MAX_EXTRA_VALUES
            && bytes <= MAX_IDENTITY_BYTES
    }
}

/// Front-proxy (request-header) authentication settings (spec 5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderConfig {
    /// The front proxy's certificate must chain to this; empty = the authenticator never
    /// applies.
    pub client_ca: CaBundle,
    /// Allowed certificate Common Names; empty = any.
    pub allowed_names: Vec<String>,
    /// The first non-empty one is the username; none = the authenticator does not apply.
    pub username_headers: Vec<String>,
    /// The first non-empty one is the UID.
    pub uid_headers: Vec<String>,
    /// Every value of every one is a group (not comma-split).
    pub group_headers: Vec<String>,
    /// Every header starting with one (any case) is an `extra` entry.
    pub extra_header_prefixes: Vec<String>,
}

impl RequestHeaderConfig {
    /// The flag defaults (`--requestheader-*` given without header flags): user
    /// `x-remote-user`, groups `x-remote-group`, extra `x-remote-extra-`, no UID, any CN.
    pub fn with_flag_defaults(client_ca: CaBundle) -> RequestHeaderConfig {
        RequestHeaderConfig {
            client_ca,
            allowed_names: Vec::new(),
            username_headers: vec!["x-remote-user".to_owned()],
            uid_headers: Vec::new(),
            group_headers: vec!["x-remote-group".to_owned()],
            extra_header_prefixes: vec!["x-remote-extra-".to_owned()],
        }
    }
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnConfig {
    pub request_header: Option<RequestHeaderConfig>,
    /// `--client-ca-file` or the ConfigMap's `client-ca-file`.
    pub client_ca: Option<CaBundle>,
    /// Whether bearer tokens are reviewed (delegated authentication has a TokenReview
    /// client); without, tokens are ignored.
    pub token_review: bool,
    /// `--authentication-token-webhook-cache-ttl`: how long review results (positive and
    /// negative) are reused.
    pub token_cache_ttl: Duration,
    /// Whether requests no authenticator applies to are anonymous (else 401).
    pub anonymous: bool,
    /// Bound of the token cache.
    pub cache_capacity: usize,
}

impl Default for AuthnConfig {
    fn default() -> Self {
        AuthnConfig {
            request_header: None,
            client_ca: None,
            token_review: true,
            token_cache_ttl: DEFAULT_TOKEN_CACHE_TTL,
            anonymous: true,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// What authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct AuthnRequest<'a> {
    /// The client's certificate chain (DER, leaf first) as the TLS layer received it,
    /// unverified; empty when none was sent.
    pub certificates: &'a [Vec<u8>],
    pub headers: &'a HeaderMap,
    /// Wall-clock time for certificate validity.
    pub wall: Timestamp,
}

/// SHA-256 of a bearer token: what the cache keys on, so raw tokens are never stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", text::hex(&self.0[..8]))
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::hex(&self.0))
    }
}

/// A TokenReview the engine must POST to [`TOKEN_REVIEW_PATH`] (JSON body); its answer
/// goes to [`Authenticator::complete_token_review`] with `token_hash`.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenReviewRequest {
    pub token_hash: TokenHash,
    /// The TokenReview JSON. It holds the token: never log it.
    pub body: Vec<u8>,
}

impl fmt::Debug for TokenReviewRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenReviewRequest")
            .field("token_hash", &self.token_hash)
            .field(
                "body",
                &format_args!("<{} bytes, redacted>", self.body.len()),
            )
            .finish()
    }
}

/// What a TokenReview decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenVerdict {
    /// `status.authenticated`: the user as reviewed (before `system:authenticated` is
    /// added).
    Authenticated(Identity),
    /// Not authenticated, no error: cached like a success.
    Rejected,
    /// The review failed or reported `status.error`: not cached.
    Failed(String),
}

/// Why a request is unauthorized: the authenticators' errors, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthnError {
    pub errors: Vec<String>,
}

impl fmt::Display for AuthnError {
    /// Go's aggregate error: one message alone, several as `[a, b]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [] => f.write_str("no credentials accepted"),
            [one] => f.write_str(one),
            many => write!(f, "[{}]", many.join(", ")),
        }
    }
}

impl std::error::Error for AuthnError {}

/// The result of [`Authenticator::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthnOutcome {
    Authenticated(Identity),
    /// No authenticator applied: [`Identity::anonymous`].
    Anonymous,
    /// A bearer token needs a review; ask again once it is completed.
    NeedsTokenReview(TokenReviewRequest),
    /// 401.
    Unauthorized(AuthnError),
}

impl AuthnOutcome {
    /// The identity of an authenticated or anonymous request.
    pub fn identity(self) -> Option<Identity> {
        match self {
            AuthnOutcome::Authenticated(identity) => Some(identity),
            AuthnOutcome::Anonymous => Some(Identity::anonymous()),
            _ => None,
        }
    }
}

/// [`RequestHeaderConfig`] with header names parsed once.
#[derive(Debug)]
struct FrontProxy {
    client_ca: VerifyingBundle,
    allowed_names: Vec<String>,
    username: Vec<HeaderName>,
    uid: Vec<HeaderName>,
    group: Vec<HeaderName>,
    /// Lower-cased.
    extra_prefixes: Vec<String>,
}

impl FrontProxy {
    fn new(config: &RequestHeaderConfig) -> FrontProxy {
        // A configured name that is not a valid header name can match no header.
        let names = |list: &[String]| {
            list.iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect()
        };
        FrontProxy {
            client_ca: VerifyingBundle::new(config.client_ca.clone()),
            allowed_names: config.allowed_names.clone(),
            username: names(&config.username_headers),
            uid: names(&config.uid_headers),
            group: names(&config.group_headers),
            extra_prefixes: config
                .extra_header_prefixes
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
        }
    }
}

/// Header names the generic server always strips after authentication.
const STANDARD_FRONT_PROXY_HEADERS: [&str; 3] = ["x-remote-user", "x-remote-uid", "x-remote-group"];
const STANDARD_EXTRA_PREFIX: &str = "x-remote-extra-";

/// Where a token's verdict may come from: the cache at `now`, else `resolved`.
struct TokenLookup<'a> {
    now: Instant,
    resolved: &'a [(TokenHash, TokenVerdict)],
}

/// The authentication chain with its token cache.
#[derive(Debug)]
pub struct Authenticator {
    config: AuthnConfig,
    front_proxy: Option<FrontProxy>,
    /// `config.client_ca`, remembering what it verified.
    client_ca: Option<VerifyingBundle>,
    tokens: TtlCache<TokenHash, TokenVerdict>,
}

/// One authenticator's answer.
enum Step {
    Success(Identity),
    NotApplicable,
    Error(String),
    Review(TokenReviewRequest),
}

impl Authenticator {
    pub fn new(config: AuthnConfig) -> Authenticator {
        Authenticator {
            front_proxy: config.request_header.as_ref().map(FrontProxy::new),
            client_ca: config.client_ca.clone().map(VerifyingBundle::new),
            tokens: TtlCache::new(config.cache_capacity),
            config,
        }
    }

    pub fn config(&self) -> &AuthnConfig {
        &self.config
    }

    /// Replaces the front-proxy settings (ConfigMap update, CA rotation).
    pub fn set_request_header(&mut self, request_header: Option<RequestHeaderConfig>) {
        self.front_proxy = request_header.as_ref().map(FrontProxy::new);
        self.config.request_header = request_header;
    }

    /// Replaces the client CA (ConfigMap update, CA rotation).
    pub fn set_client_ca(&mut self, client_ca: Option<CaBundle>) {
        self.client_ca = client_ca.clone().map(VerifyingBundle::new);
        self.config.client_ca = client_ca;
    }

    /// Number of cached token reviews.
    pub fn cached_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Runs the chain. `now` (monotonic) dates cache lookups; certificates are checked
    /// against `request.wall`.
    pub fn authenticate(&self, request: &AuthnRequest<'_>, now: Instant) -> AuthnOutcome {
        self.authenticate_with(request, now, &[])
    }

    /// [`authenticate`](Self::authenticate), with the verdict of a review this request
    /// already waited for: used when the cache no longer has it (a failed review, a TTL of
    /// zero, or an entry evicted meanwhile), so a waiting request is never sent to review
    /// the same token twice.
    pub fn authenticate_with(
        &self,
        request: &AuthnRequest<'_>,
        now: Instant,
        resolved: &[(TokenHash, TokenVerdict)],
    ) -> AuthnOutcome {
        let mut errors = Vec::new();
        let lookup = TokenLookup { now, resolved };
        let steps: [&dyn Fn() -> Step; 4] = [
            &|| self.front_proxy_step(request, now),
            &|| self.client_cert_step(request, now),
            &|| self.bearer_step(request.headers, &lookup),
            &|| self.websocket_step(request.headers, &lookup),
        ];
        for step in steps {
            match step() {
                Step::Success(identity) => {
                    if !identity.within_limits() {
                        errors.push("user information exceeds the size limits".to_owned());
                        continue;
                    }
                    return AuthnOutcome::Authenticated(identity.with_authenticated_group());
                }
                Step::NotApplicable => {}
                Step::Error(e) => errors.push(e),
                Step::Review(review) => return AuthnOutcome::NeedsTokenReview(review),
            }
        }
        if !errors.is_empty() || !self.config.anonymous {
            return AuthnOutcome::Unauthorized(AuthnError { errors });
        }
        AuthnOutcome::Anonymous
    }

    /// Request-header authentication: a client certificate verified against the
    /// request-header CA, with an allowed CN, makes the configured headers authoritative.
    fn front_proxy_step(&self, request: &AuthnRequest<'_>, now: Instant) -> Step {
        let Some(proxy) = &self.front_proxy else {
            return Step::NotApplicable;
        };
        if request.certificates.is_empty() || proxy.client_ca.bundle().is_empty() {
            return Step::NotApplicable;
        }
        let subject = match proxy
            .client_ca
            .verify(request.certificates, request.wall, now)
        {
            Ok(subject) => subject,
            Err(e) => return Step::Error(e.to_string()),
        };
        if !proxy.allowed_names.is_empty() && !proxy.allowed_names.contains(&subject.common_name) {
            return Step::Error(format!(
                "x509: subject with cn={} is not in the allowed list",
                subject.common_name
            ));
        }
        let headers = request.headers;
        let Some(name) = first_non_empty(headers, &proxy.username) else {
            return Step::NotApplicable;
        };
        let uid = first_non_empty(headers, &proxy.uid).unwrap_or_default();
        let mut groups = Vec::new();
        for header in &proxy.group {
            for value in headers.get_all(header) {
                if groups.len() > MAX_GROUPS {
                    return Step::Error("too many group headers".to_owned());
                }
                if !value.is_empty() {
                    groups.push(lossy(value));
                }
            }
        }
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (header, value) in headers {
            // `http` keeps names lower-cased.
            let header = header.as_str();
            for prefix in &proxy.extra_prefixes {
                let Some(rest) = header.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                let key = text::unescape(rest, false)
                    .map(|k| k.into_owned())
                    .unwrap_or_else(|| rest.to_owned());
                extra.entry(key).or_default().push(lossy(value));
            }
        }
        Step::Success(Identity {
            name,
            uid,
            groups,
            extra,
        })
    }

    /// Client-certificate authentication: user = CN, groups = O.
    fn client_cert_step(&self, request: &AuthnRequest<'_>, now: Instant) -> Step {
        let Some(ca) = &self.client_ca else {
            return Step::NotApplicable;
        };
        if request.certificates.is_empty() || ca.bundle().is_empty() {
            return Step::NotApplicable;
        }
        let subject = match ca.verify(request.certificates, request.wall, now) {
            Ok(subject) => subject,
            Err(e) => return Step::Error(format!("verifying certificate failed: {e}")),
        };
        if subject.common_name.is_empty() {
            return Step::NotApplicable;
        }
        let fingerprint = Sha256::digest(&request.certificates[0]);
        let mut extra = BTreeMap::new();
        extra.insert(
            CREDENTIAL_ID_KEY.to_owned(),
            vec![format!("X509SHA256={}", text::hex(&fingerprint))],
        );
        Step::Success(Identity {
            name: subject.common_name,
            uid: String::new(),
            groups: subject.organizations,
            extra,
        })
    }

    /// `Authorization: Bearer <token>`.
    fn bearer_step(&self, headers: &HeaderMap, lookup: &TokenLookup<'_>) -> Step {
        if !self.config.token_review {
            return Step::NotApplicable;
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Step::NotApplicable;
        };
        let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
            return Step::Error("invalid bearer token".to_owned());
        };
        let mut parts = value.trim().splitn(3, ' ');
        let (Some(scheme), Some(token)) = (parts.next(), parts.next()) else {
            return Step::NotApplicable;
        };
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Step::NotApplicable;
        }
        self.token_step(token, "invalid bearer token", lookup)
    }

    /// The websocket form: `Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.<token>`
    /// on an upgrade request, with at least one other subprotocol.
    fn websocket_step(&self, headers: &HeaderMap, lookup: &TokenLookup<'_>) -> Step {
        if !self.config.token_review || !is_websocket_request(headers) {
            return Step::NotApplicable;
        }
        let mut token = None;
        let mut other_protocols = 0usize;
        for value in headers.get_all(WEBSOCKET_PROTOCOL) {
            for protocol in lossy(value).split(',') {
                let protocol = protocol.trim();
                let Some(encoded) = protocol.strip_prefix(BEARER_PROTOCOL_PREFIX) else {
                    other_protocols += 1;
                    continue;
                };
                if token.is_some() {
                    return Step::Error(
                        "multiple base64.bearer.authorization tokens specified".to_owned(),
                    );
                }
                let Some(decoded) = text::base64url_decode(encoded) else {
                    return Step::Error(
                        "invalid base64.bearer.authorization token encoding".to_owned(),
                    );
                };
                let Ok(decoded) = String::from_utf8(decoded) else {
                    return Step::Error("invalid base64.bearer.authorization token".to_owned());
                };
                token = Some(decoded);
            }
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Step::NotApplicable;
        };
        if other_protocols == 0 {
            return Step::Error("missing additional subprotocol".to_owned());
        }
        self.token_step(&token, "invalid bearer token", lookup)
    }

    fn token_step(&self, token: &str, rejected: &str, lookup: &TokenLookup<'_>) -> Step {
        if token.len() > MAX_TOKEN_BYTES {
            return Step::Error(rejected.to_owned());
        }
        let hash = TokenHash::of(token);
        let resolved = lookup
            .resolved
            .iter()
            .find(|(h, _)| *h == hash)
            .map(|(_, verdict)| verdict);
        match self.tokens.get(&hash, lookup.now).or(resolved) {
            Some(TokenVerdict::Authenticated(identity)) => Step::Success(identity.clone()),
            Some(TokenVerdict::Rejected) => Step::Error(rejected.to_owned()),
            Some(TokenVerdict::Failed(e)) => Step::Error(e.clone()),
            None => Step::Review(TokenReviewRequest {
                token_hash: hash,
                body: token_review_body(token),
            }),
        }
    }

    /// Records the answer to a TokenReview: `Ok(body)` of a successful (2xx) response,
    /// `Err(text)` when the call failed. Authenticated and rejected results are cached
    /// for the TTL; failures (and `status.error`) only for lookups at this same `now`.
    pub fn complete_token_review(
        &mut self,
        token_hash: &TokenHash,
        response: Result<&[u8], &str>,
        now: Instant,
    ) -> TokenVerdict {
        let verdict = match response {
            Ok(body) => parse_token_review(body),
            Err(e) => TokenVerdict::Failed(e.to_owned()),
        };
        let expires = match verdict {
            TokenVerdict::Failed(_) => now,
            _ => now.saturating_add(self.config.token_cache_ttl),
        };
        self.tokens
            .insert(*token_hash, verdict.clone(), expires, now);
        verdict
    }

    /// Removes what authentication consumed (after success, as the generic server does):
    /// `Authorization`, the standard `X-Remote-*` headers and the configured front-proxy
    /// headers and prefixes.
    pub fn strip_headers(&self, headers: &mut HeaderMap) {
        headers.remove(header::AUTHORIZATION);
        for name in STANDARD_FRONT_PROXY_HEADERS {
            headers.remove(name);
        }
        let mut prefixes = vec![STANDARD_EXTRA_PREFIX.to_owned()];
        if let Some(proxy) = &self.front_proxy {
            for name in proxy.username.iter().chain(&proxy.uid).chain(&proxy.group) {
                headers.remove(name);
            }
            prefixes.extend(proxy.extra_prefixes.iter().cloned());
        }
        let doomed: Vec<HeaderName> = headers
            .keys()
            .filter(|k| prefixes.iter().any(|p| k.as_str().starts_with(p.as_str())))
            .cloned()
            .collect();
        for name in doomed {
            headers.remove(name);
        }
    }
}

fn lossy(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// Go's `headerValue`: the first non-empty first value of the names, in order.
fn first_non_empty(headers: &HeaderMap, names: &[HeaderName]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| headers.get(n))
        .find(|v| !v.is_empty())
        .map(lossy)
}

/// `wsstream.IsWebSocketRequest`: `Upgrade: websocket` (any case) and a `Connection`
/// header listing `upgrade` (regexp `(^|.*,\s*)upgrade($|\s*,)` on the lower-cased value).
fn is_websocket_request(headers: &HeaderMap) -> bool {
    let upgrade = headers.get(header::UPGRADE).map(lossy).unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return false;
    }
    let connection = headers
        .get(header::CONNECTION)
        .map(lossy)
        .unwrap_or_default()
        .to_lowercase();
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r');
    connection.match_indices("upgrade").any(|(at, word)| {
        let before = &connection[..at];
        let after = &connection[at + word.len()..];
        let left = before.is_empty() || before.trim_end_matches(is_space).ends_with(',');
        let right = after.is_empty() || after.trim_start_matches(is_space).starts_with(',');
        left && right
    })
}

/// The TokenReview client-go sends (no audiences), with its trailing newline.
fn token_review_body(token: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(token.len() + 128);
    body.extend_from_slice(
        br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{},"spec":{"token":"#,
    );
    write_str(&mut body, token);
    body.extend_from_slice(b"},\"status\":{\"user\":{}}}\n");
    body
}

/// A JSON `null` reads as the default, as Go does.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
struct ReviewDocument {
    #[serde(default, deserialize_with = "null_default")]
    status: ReviewStatus,
}

#[derive(Deserialize, Default)]
struct ReviewStatus {
    #[serde(default, deserialize_with = "null_default")]
    authenticated: bool,
    #[serde(default, deserialize_with = "null_default")]
    user: ReviewUser,
    #[serde(default, deserialize_with = "null_default")]
    error: String,
}

#[derive(Deserialize, Default)]
struct ReviewUser {
    #[serde(default, deserialize_with = "null_default")]
    username: String,
    #[serde(default, deserialize_with = "null_default")]
    uid: String,
    #[serde(default, deserialize_with = "null_default")]
    groups: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    extra: BTreeMap<String, Option<Vec<String>>>,
}

/// The webhook token authenticator's reading of a TokenReview answer.
fn parse_token_review(body: &[u8]) -> TokenVerdict {
    if body.len() > MAX_REVIEW_BYTES {
        return TokenVerdict::Failed("TokenReview response too large".to_owned());
    }
    let doc: ReviewDocument = match serde_json::from_slice(body) {
        Ok(doc) => doc,
        Err(e) => return TokenVerdict::Failed(format!("invalid TokenReview response: {e}")),
    };
    let status = doc.status;
    if !status.authenticated {
        return if status.error.is_empty() {
            TokenVerdict::Rejected
        } else {
            TokenVerdict::Failed(status.error)
        };
    }
    let user = status.user;
    let identity = Identity {
        name: user.username,
        uid: user.uid,
        groups: user.groups,
        extra: user
            .extra
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
    };
    if !identity.within_limits() {
        return TokenVerdict::Failed("TokenReview user exceeds the size limits".to_owned());
    }
    TokenVerdict::Authenticated(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn websocket_detection_like_the_regexp() {
        let ws = |conn: &str| {
            is_websocket_request(&headers(&[("upgrade", "WebSocket"), ("connection", conn)]))
        };
        assert!(ws("Upgrade"));
        assert!(ws("keep-alive, Upgrade"));
        assert!(ws("upgrade , keep-alive"));
        assert!(ws("a,upgrade"));
        assert!(!ws(" upgrade"));
        assert!(!ws("upgrade "));
        assert!(!ws("upgraded"));
        assert!(!ws("keep-alive"));
        assert!(!is_websocket_request(&headers(&[(
            "connection",
            "upgrade"
        )])));
    }

    #[test]
    fn token_review_documents() {
        let body = token_review_body("a\"<b");
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            "{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{},\"spec\":{\"token\":\"a\\\"\\u003cb\"},\"status\":{\"user\":{}}}\n"
        );
        assert_eq!(
            parse_token_review(br#"{"status":{"authenticated":false}}"#),
            TokenVerdict::Rejected
        );
        assert_eq!(
            parse_token_review(br#"{"status":{"error":"boom"}}"#),
            TokenVerdict::Failed("boom".into())
        );
        assert_eq!(
            parse_token_review(br#"{"status":null}"#),
            TokenVerdict::Rejected
        );
        assert!(matches!(parse_token_review(b"{"), TokenVerdict::Failed(_)));
        let TokenVerdict::Authenticated(id) = parse_token_review(
            br#"{"status":{"authenticated":true,"user":{"username":"u","uid":"1","groups":null,"extra":{"k":["v"],"n":null}}}}"#,
        ) else {
            panic!("authenticated")
        };
        assert_eq!(id.name, "u");
        assert!(id.groups.is_empty());
        assert_eq!(id.extra["k"], vec!["v"]);
        assert!(id.extra["n"].is_empty());
    }

    #[test]
    fn authenticated_group_added_once() {
        let id = Identity {
            name: "a".into(),
            ..Identity::default()
        };
        assert_eq!(
            id.with_authenticated_group().groups,
            vec![AUTHENTICATED_GROUP]
        );
        let anon = Identity::anonymous().with_authenticated_group();
        assert_eq!(anon.groups, vec![UNAUTHENTICATED_GROUP]);
        let front = Identity {
            name: ANONYMOUS_USER.into(),
            ..Identity::default()
        };
        assert!(front.with_authenticated_group().groups.is_empty());
        let already = Identity {
            name: "b".into(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
            ..Identity::default()
        };
        assert_eq!(already.with_authenticated_group().groups.len(), 1);
    }

    #[test]
    fn aggregate_error_text() {
        assert_eq!(
            AuthnError {
                errors: vec!["a".into()]
            }
            .to_string(),
            "a"
        );
        assert_eq!(
            AuthnError {
                errors: vec!["a".into(), "b".into()]
            }
            .to_string(),
            "[a, b]"
        );
    }
}
