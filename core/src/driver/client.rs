//! Outgoing requests: an engine action in, request bytes out; response bytes in, engine
//! completions out. See [`Exchange`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONNECTION, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};

use crate::cluster::{self, ClusterRequest, RequestKind};
use crate::engine::{Action, Engine};
use crate::http::{
    BodyMode, ClientEvent, Error as HttpError, ResponseLimits, ResponseParser, encode_request,
};
use crate::scrape::{self, Failure};

#[cfg(doc)]
use super::delegation::Delegation;
use super::delegation::{DelegatedId, DelegatedRequest};
use crate::time::Instant;

/// Returns the current bearer token, if any; called once per request, so a rotated
/// service-account token is picked up. It should be cheap (cache what it reads).
pub type TokenSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Which kind of peer a request goes to (they use different TLS settings and tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Upstream {
    /// A node's kubelet.
    Kubelet,
    /// The kube-apiserver.
    Apiserver,
    /// The apiserver that reviews tokens and holds the authentication ConfigMap
    /// (`--authentication-kubeconfig`, else the in-cluster configuration).
    Authentication,
    /// The apiserver that reviews access (`--authorization-kubeconfig`, else in-cluster).
    Authorization,
}

/// Where a request goes; also the key under which its connection is pooled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Kubelet or apiserver.
    pub upstream: Upstream,
    /// Host name or IP address, without brackets (also the TLS server name of a kubelet).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// `host:port`, with an IPv6 address in brackets (the `Host` header).
    pub fn authority(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authority())
    }
}

/// Identifies an outgoing request across completions and cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKey {
    /// A scrape.
    Kubelet(scrape::RequestId),
    /// A list page or watch.
    Apiserver(cluster::RequestId),
    /// A review or the authentication ConfigMap read, for [`Delegation`].
    Delegated(DelegatedId),
}

/// How outgoing requests are made (the transport's TLS settings live in the adapter).
#[derive(Clone)]
pub struct ClientConfig {
    /// `User-Agent` of every request (see [`default_user_agent`]).
    pub user_agent: String,
    /// The apiserver's host (name or IP, no brackets).
    pub apiserver_host: String,
    /// The apiserver's port.
    pub apiserver_port: u16,
    /// Bearer token for kubelets (`None`: none is sent, e.g. client-certificate auth).
    pub kubelet_token: Option<TokenSource>,
    /// Bearer token for the apiserver.
    pub apiserver_token: Option<TokenSource>,
    /// Limits on a kubelet response (`max_body_bytes` is the scrape body limit).
    pub kubelet_limits: ResponseLimits,
    /// Limits on an apiserver response (list bodies, watch lines).
    pub apiserver_limits: ResponseLimits,
    /// Where TokenReviews and the authentication ConfigMap read go (`None`: nowhere;
    /// tokens are then not reviewed and the ConfigMap is not read).
    pub authentication: Option<DelegatedTarget>,
    /// Where SubjectAccessReviews go (`None`: undecided requests are denied).
    pub authorization: Option<DelegatedTarget>,
    /// Limits on a review or ConfigMap response.
    pub delegated_limits: ResponseLimits,
    /// Idle kept-alive connections kept per endpoint.
    pub max_idle_per_endpoint: usize,
    /// An idle connection is dropped after this long (Go's `IdleConnTimeout`).
    pub idle_timeout: Duration,
}

impl ClientConfig {
    /// Defaults: 16 MiB bodies and lines, two idle connections per endpoint, 90 s idle
    /// timeout, no tokens.
    pub fn new(user_agent: String, apiserver_host: String, apiserver_port: u16) -> Self {
        ClientConfig {
            user_agent,
            apiserver_host,
            apiserver_port,
            kubelet_token: None,
            apiserver_token: None,
            kubelet_limits: ResponseLimits::DEFAULT,
            apiserver_limits: ResponseLimits::DEFAULT,
            authentication: None,
            authorization: None,
            delegated_limits: ResponseLimits {
                max_body_bytes: DELEGATED_BODY_LIMIT,
                ..ResponseLimits::DEFAULT
            },
            max_idle_per_endpoint: 2,
            idle_timeout: Duration::from_secs(90),
        }
    }

    /// The apiserver's endpoint.
    pub fn apiserver(&self) -> Endpoint {
        Endpoint {
            upstream: Upstream::Apiserver,
            host: self.apiserver_host.clone(),
            port: self.apiserver_port,
        }
    }
}

/// Largest review or ConfigMap response read (kube-apiserver caps objects near 1.5 MiB).
pub const DELEGATED_BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// An apiserver that delegated authentication or authorization talks to.
#[derive(Clone)]
pub struct DelegatedTarget {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Bearer token (`None`: none is sent, e.g. client-certificate auth).
    pub token: Option<TokenSource>,
}

impl fmt::Debug for DelegatedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegatedTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("token", &self.token.is_some())
            .finish()
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("user_agent", &self.user_agent)
            .field("apiserver", &self.apiserver())
            .field("kubelet_token", &self.kubelet_token.is_some())
            .field("apiserver_token", &self.apiserver_token.is_some())
            .field("kubelet_limits", &self.kubelet_limits)
            .field("apiserver_limits", &self.apiserver_limits)
            .field("authentication", &self.authentication)
            .field("authorization", &self.authorization)
            .field("max_idle_per_endpoint", &self.max_idle_per_endpoint)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// `metrics-server/<version> (<os>/<arch>) kubernetes/<commit>`, client-go's format, with
/// Go's names for the operating system and architecture this was built for.
pub fn default_user_agent(version: &str, commit: &str) -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!(
        "metrics-server/{version} ({}/{arch}) kubernetes/{commit}",
        std::env::consts::OS
    )
}

/// The outcome of (part of) an outgoing request, for the engine.
#[derive(Debug, Clone)]
pub enum Completion {
    /// A scrape finished: any status with its whole body, or a failure.
    Kubelet {
        /// The scrape.
        id: scrape::RequestId,
        /// Status and body, or why there is none.
        result: Result<(u16, Vec<u8>), Failure>,
    },
    /// A list page, or a watch the apiserver refused, with its whole body.
    ApiserverResponse {
        /// The request.
        id: cluster::RequestId,
        /// Its status.
        status: StatusCode,
        /// Its body.
        body: Vec<u8>,
    },
    /// One event line of a watch stream.
    ApiserverLine {
        /// The watch.
        id: cluster::RequestId,
        /// The line, without its line ending.
        line: Vec<u8>,
    },
    /// A watch stream ended cleanly.
    ApiserverEnd {
        /// The watch.
        id: cluster::RequestId,
    },
    /// An apiserver request failed in transport or framing.
    ApiserverError {
        /// The request.
        id: cluster::RequestId,
        /// What went wrong, for logs.
        reason: String,
    },
    /// A delegated request (review, ConfigMap read) ended: status and whole body, or why
    /// there is none. It goes to [`Delegation::complete`], not to the engine.
    Delegated {
        /// The request.
        id: DelegatedId,
        /// Status and body, or the transport or framing failure.
        result: Result<(StatusCode, Vec<u8>), String>,
    },
}

impl Completion {
    /// The request this belongs to.
    pub fn key(&self) -> RequestKey {
        match self {
            Completion::Kubelet { id, .. } => RequestKey::Kubelet(*id),
            Completion::ApiserverResponse { id, .. }
            | Completion::ApiserverLine { id, .. }
            | Completion::ApiserverEnd { id }
            | Completion::ApiserverError { id, .. } => RequestKey::Apiserver(*id),
            Completion::Delegated { id, .. } => RequestKey::Delegated(*id),
        }
    }

    /// Hands the completion to the engine (the matching `on_*` call); a delegated
    /// request's completion is not the engine's and is dropped here.
    pub fn apply(self, engine: &mut Engine, now: Instant) {
        match self {
            Completion::Kubelet { id, result } => match result {
                Ok((status, body)) => engine.on_kubelet_response(id, now, status, &body),
                Err(failure) => engine.on_kubelet_error(id, now, failure),
            },
            Completion::ApiserverResponse { id, status, body } => {
                engine.on_apiserver_response(id, now, status, &body);
            }
            Completion::ApiserverLine { id, line } => engine.on_apiserver_line(id, now, &line),
            Completion::ApiserverEnd { id } => engine.on_apiserver_end(id, now),
            Completion::ApiserverError { id, reason } => {
                engine.on_apiserver_error(id, now, &reason);
            }
            Completion::Delegated { .. } => {}
        }
    }
}

/// What is being asked, which decides how the response is handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kubelet(scrape::RequestId),
    List(cluster::RequestId),
    Watch(cluster::RequestId),
    Delegated(DelegatedId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (more of) the response.
    Running,
    /// The response ended; whether the connection may carry another request.
    Done { reusable: bool },
    /// A pooled connection died before answering: send again on a fresh one.
    Retry,
    /// Failed; the connection must be closed.
    Failed,
}

/// One outgoing request and its response: built from an engine action, it gives the
/// request bytes, takes the response bytes and gives the engine's completions.
///
/// ```text
///  Action::Kubelet / Action::Apiserver ──Exchange::new──▶ request_bytes()
///  bytes ──feed / feed_eof / handle_transport_error──▶ poll_completion()
///      kubelet:          Kubelet { Ok((status, body)) | Err(Failure) }       once
///      apiserver list:   ApiserverResponse | ApiserverError                  once
///      apiserver watch:  ApiserverLine… then ApiserverEnd | ApiserverError
///                        (a non-2xx answer is one ApiserverResponse)
///  finished ──▶ reusable(): the connection may carry the next request to that endpoint
/// ```
///
/// A request on a pooled connection ([`set_reused`](Self::set_reused)) that dies before
/// any answer byte asks for a retry on a fresh connection instead of failing; every
/// request here is an idempotent GET.
#[derive(Debug)]
pub struct Exchange {
    kind: Kind,
    endpoint: Endpoint,
    request: Vec<u8>,
    method: Method,
    limits: ResponseLimits,
    mode: BodyMode,
    parser: ResponseParser,
    /// Status of the response head, once seen.
    status: Option<StatusCode>,
    /// Whether any response byte has arrived.
    received: bool,
    /// Whether the request goes out on a connection that served an earlier one.
    reused: bool,
    state: State,
    completions: VecDeque<Completion>,
}

impl Exchange {
    /// The exchange for a request action; `None` for the cancel actions (see
    /// [`RequestKey`] from [`Exchange::cancelled`]). A request that cannot be encoded
    /// fails at once: the exchange is then already finished with its completion queued.
    pub fn new(action: &Action, config: &ClientConfig) -> Option<Exchange> {
        match action {
            Action::Kubelet(request) => Some(Exchange::kubelet(request, config)),
            Action::Apiserver(request) => Some(Exchange::apiserver(request, config)),
            Action::CancelKubelet(_) | Action::CancelApiserver(_) => None,
        }
    }

    /// The request a cancel action aborts.
    pub fn cancelled(action: &Action) -> Option<RequestKey> {
        match action {
            Action::CancelKubelet(id) => Some(RequestKey::Kubelet(*id)),
            Action::CancelApiserver(id) => Some(RequestKey::Apiserver(*id)),
            Action::Kubelet(_) | Action::Apiserver(_) => None,
        }
    }

    /// A scrape of `request`'s kubelet.
    pub fn kubelet(request: &scrape::Request, config: &ClientConfig) -> Exchange {
        let endpoint = Endpoint {
            upstream: Upstream::Kubelet,
            host: request.host.clone(),
            port: request.port,
        };
        let token = config.kubelet_token.as_ref().and_then(|t| t());
        let built = build(
            &endpoint,
            Method::GET,
            &request.path_and_query,
            &http::HeaderMap::new(),
            &config.user_agent,
            token.as_deref(),
        );
        Exchange::start(
            Kind::Kubelet(request.id),
            endpoint,
            built,
            &[],
            config.kubelet_limits,
            BodyMode::Buffered,
        )
    }

    /// A delegated request to `target` (reached as `upstream`): a review POSTed with its
    /// JSON body, or a GET of the authentication ConfigMap.
    pub fn delegated(
        request: &DelegatedRequest,
        upstream: Upstream,
        target: &DelegatedTarget,
        config: &ClientConfig,
    ) -> Exchange {
        let endpoint = Endpoint {
            upstream,
            host: target.host.clone(),
            port: target.port,
        };
        let token = target.token.as_ref().and_then(|t| t());
        let mut headers = http::HeaderMap::new();
        if !request.body.is_empty() {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let built = build(
            &endpoint,
            request.method.clone(),
            request.path,
            &headers,
            &config.user_agent,
            token.as_deref(),
        );
        Exchange::start(
            Kind::Delegated(request.id),
            endpoint,
            built,
            &request.body,
            config.delegated_limits,
            BodyMode::Buffered,
        )
    }

    /// A list page or watch on the apiserver.
    pub fn apiserver(request: &ClusterRequest, config: &ClientConfig) -> Exchange {
        let (kind, mode) = match request.kind {
            RequestKind::List => (Kind::List(request.id), BodyMode::Buffered),
            RequestKind::Watch => (Kind::Watch(request.id), BodyMode::Lines),
        };
        let token = config.apiserver_token.as_ref().and_then(|t| t());
        let built = build(
            &config.apiserver(),
            request.method.clone(),
            &request.path_and_query,
            &request.headers,
            &config.user_agent,
            token.as_deref(),
        );
        Exchange::start(
            kind,
            config.apiserver(),
            built,
            &[],
            config.apiserver_limits,
            mode,
        )
    }

    fn start(
        kind: Kind,
        endpoint: Endpoint,
        built: Result<Request<()>, String>,
        body: &[u8],
        limits: ResponseLimits,
        mode: BodyMode,
    ) -> Exchange {
        let mut request = Vec::new();
        let method = built.as_ref().map_or(Method::GET, |r| r.method().clone());
        let mut exchange = Exchange {
            kind,
            endpoint,
            request: Vec::new(),
            method: method.clone(),
            limits,
            mode,
            parser: ResponseParser::new(&method, mode, limits),
            status: None,
            received: false,
            reused: false,
            state: State::Running,
            completions: VecDeque::new(),
        };
        let encoded = built.and_then(|r| {
            let r = r.map(|()| body);
            encode_request(&r, &mut request).map_err(|e| e.to_string())
        });
        match encoded {
            Ok(()) => exchange.request = request,
            Err(reason) => exchange.fail_with(format!("cannot encode the request: {reason}")),
        }
        exchange
    }

    /// The request this exchange performs.
    pub fn key(&self) -> RequestKey {
        match self.kind {
            Kind::Kubelet(id) => RequestKey::Kubelet(id),
            Kind::List(id) | Kind::Watch(id) => RequestKey::Apiserver(id),
            Kind::Delegated(id) => RequestKey::Delegated(id),
        }
    }

    /// Where to send it.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The encoded request, to write once the connection is up.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// Marks the connection as one that already served a request (so that its dying
    /// before any answer is retried rather than reported).
    pub fn set_reused(&mut self, reused: bool) {
        self.reused = reused;
    }

    /// Hands in bytes read from the connection.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.state != State::Running || bytes.is_empty() {
            return;
        }
        self.received = true;
        self.parser.feed(bytes);
        self.drain_parser();
    }

    /// The peer closed the connection.
    pub fn feed_eof(&mut self) {
        if self.state != State::Running {
            return;
        }
        if self.stale() {
            return;
        }
        self.parser.feed_eof();
        self.drain_parser();
    }

    /// Connecting, the TLS handshake, writing or reading failed.
    pub fn handle_transport_error(&mut self, reason: &str) {
        if self.state != State::Running || self.stale() {
            return;
        }
        self.fail_with(reason.to_owned());
    }

    /// The next completion to hand to the engine, in order.
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.completions.pop_front()
    }

    /// Whether the exchange takes no more input (done, failed, or waiting for a retry).
    pub fn is_finished(&self) -> bool {
        self.state != State::Running
    }

    /// Whether the connection may be pooled for the next request to the same endpoint.
    pub fn reusable(&self) -> bool {
        self.state == State::Done { reusable: true }
    }

    /// Whether the request must be sent again on a fresh connection: a pooled connection
    /// was closed by the peer before any answer.
    pub fn wants_retry(&self) -> bool {
        self.state == State::Retry
    }

    /// Starts over on a fresh connection after [`wants_retry`](Self::wants_retry).
    pub fn retry_on_fresh_connection(&mut self) {
        if self.state != State::Retry {
            return;
        }
        self.parser = ResponseParser::new(&self.method, self.mode, self.limits);
        self.status = None;
        self.received = false;
        self.reused = false;
        self.state = State::Running;
    }

    /// A reused connection failing before any byte of the answer: retry (every request
    /// here is an idempotent GET).
    fn stale(&mut self) -> bool {
        if self.reused && !self.received {
            self.state = State::Retry;
            return true;
        }
        false
    }

    fn drain_parser(&mut self) {
        let mut body = None;
        while let Some(event) = self.parser.poll_event() {
            match event {
                ClientEvent::Head(head) => self.status = Some(head.status()),
                ClientEvent::Body(data) => body = Some(data),
                ClientEvent::Line(line) => {
                    if let Kind::Watch(id) = self.kind {
                        self.completions
                            .push_back(Completion::ApiserverLine { id, line });
                    }
                }
                ClientEvent::End { keep_alive } => {
                    self.finish(body.take().unwrap_or_default(), keep_alive);
                    return;
                }
                ClientEvent::Error(error) => {
                    self.fail_http(&error);
                    return;
                }
            }
        }
        // Bodies arrive just before their End, within the same drain.
        debug_assert!(body.is_none(), "a body is always followed by End");
    }

    fn finish(&mut self, body: Vec<u8>, keep_alive: bool) {
        self.state = State::Done {
            reusable: keep_alive,
        };
        let status = self.status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let completion = match self.kind {
            Kind::Kubelet(id) => Completion::Kubelet {
                id,
                result: Ok((status.as_u16(), body)),
            },
            Kind::Watch(id) if status.is_success() => Completion::ApiserverEnd { id },
            Kind::Delegated(id) => Completion::Delegated {
                id,
                result: Ok((status, body)),
            },
            Kind::List(id) | Kind::Watch(id) => Completion::ApiserverResponse { id, status, body },
        };
        self.completions.push_back(completion);
    }

    fn fail_http(&mut self, error: &HttpError) {
        match (self.kind, error) {
            (Kind::Kubelet(id), HttpError::BodyTooLarge { limit }) => {
                self.state = State::Failed;
                let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
                self.completions.push_back(Completion::Kubelet {
                    id,
                    result: Err(Failure::TooLarge { limit }),
                });
            }
            (_, HttpError::UnexpectedEof) => {
                self.fail_with("connection closed before the response was complete".into());
            }
            _ => self.fail_with(format!("malformed response: {error}")),
        }
    }

    fn fail_with(&mut self, reason: String) {
        self.state = State::Failed;
        let completion = match self.kind {
            Kind::Kubelet(id) => Completion::Kubelet {
                id,
                result: Err(Failure::Transport(reason)),
            },
            Kind::List(id) | Kind::Watch(id) => Completion::ApiserverError { id, reason },
            Kind::Delegated(id) => Completion::Delegated {
                id,
                result: Err(reason),
            },
        };
        self.completions.push_back(completion);
    }
}

/// A request for `path_and_query` on `endpoint`: the core's headers (`Accept`), then
/// `User-Agent`, the bearer token and keep-alive.
fn build(
    endpoint: &Endpoint,
    method: Method,
    path_and_query: &str,
    extra: &http::HeaderMap,
    user_agent: &str,
    token: Option<&str>,
) -> Result<Request<()>, String> {
    let mut builder = Request::builder().method(method).uri(path_and_query);
    let host = HeaderValue::try_from(endpoint.authority()).map_err(|e| e.to_string())?;
    builder = builder.header(HOST, host);
    for (name, value) in extra {
        if name != HOST && name != AUTHORIZATION && name != CONNECTION && name != USER_AGENT {
            builder = builder.header(name, value);
        }
    }
    if !extra.contains_key(ACCEPT) && endpoint.upstream == Upstream::Apiserver {
        builder = builder.header(ACCEPT, "application/json");
    }
    builder = builder.header(USER_AGENT, user_agent);
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        let mut value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| "the bearer token is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, value);
    }
    builder = builder.header(CONNECTION, "keep-alive");
    builder.body(()).map_err(|e| e.to_string())
}
