//! Delegated authentication and authorization on the serving path: a request whose
//! credentials or permissions need kube-apiserver's word waits, without blocking its
//! connection's task, while the engine task sends the review. See [`Delegation`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Method, StatusCode};

use super::client::Upstream;
use crate::auth::authn::TOKEN_REVIEW_PATH;
use crate::auth::authz::SUBJECT_ACCESS_REVIEW_PATH;
use crate::auth::configmap::{CONFIGMAP_PATH, ExtensionAuthentication};
use crate::auth::{
    AuthnConfig, AuthzOutcome, CaBundle, Gate, GateOutcome, GateRequest, Identity, Refusal,
    RequestHeaderConfig, Resolved, SarKey, TokenHash, TokenVerdict, response,
};
use crate::time::Instant;

/// The review client's timeout (client-go's webhook default).
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// Reviews waiting or in flight at once; a request needing one more fails its review
/// (401 for a token, 500 for a permission) instead of queueing without bound.
pub const MAX_PENDING_REVIEWS: usize = 1024;
/// Reviews one request may ask for: a bearer token, a websocket token, its access, and
/// one more in case a result was forgotten; any further need counts as a failed review,
/// so every request settles.
pub const MAX_REVIEWS_PER_REQUEST: usize = 4;
/// How long a finished review's result waits for the requests that asked for it (they
/// are woken at once; this only bounds memory when one went away).
const RESULT_RETENTION: Duration = Duration::from_secs(60);
/// Most finished results kept for requests that have not read them yet.
const MAX_RESULTS: usize = 4 * MAX_PENDING_REVIEWS;
/// Most bytes of an error response quoted in a review failure.
const ERROR_SNIPPET: usize = 256;

/// Sends of one review at most: the first and four retries (client-go's webhook backoff:
/// 0.5 s, x1.5 per step, up to 20 % jitter, 5 steps).
pub const REVIEW_ATTEMPTS: u32 = 5;
const RETRY_FIRST_DELAY: Duration = Duration::from_millis(500);
const RETRY_FACTOR: f64 = 1.5;
const RETRY_JITTER: f64 = 0.2;

/// Identifies one send of a delegated request (review or ConfigMap read); a retried
/// review is sent again under the next attempt number, so an answer to an earlier send
/// that arrives late is told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DelegatedId {
    review: u64,
    attempt: u32,
}

impl DelegatedId {
    /// The review's number (unique in one [`Delegation`]).
    pub fn get(self) -> u64 {
        self.review
    }

    /// Which send of it this is, from 1.
    pub fn attempt(self) -> u32 {
        self.attempt
    }
}

/// What a delegated request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegatedKind {
    /// `POST` a TokenReview.
    TokenReview,
    /// `POST` a SubjectAccessReview.
    SubjectAccessReview,
    /// `GET` the `kube-system/extension-apiserver-authentication` ConfigMap.
    ConfigMap,
}

/// A request for the engine task to send ([`Exchange::delegated`](super::Exchange::delegated)).
#[derive(Clone)]
pub struct DelegatedRequest {
    /// Its identity, for [`Delegation::complete`].
    pub id: DelegatedId,
    /// What it asks.
    pub kind: DelegatedKind,
    /// `POST` for reviews, `GET` for the ConfigMap.
    pub method: Method,
    /// Path on the apiserver.
    pub path: &'static str,
    /// JSON body of a review (a TokenReview holds the token: never log it); empty for GET.
    pub body: Vec<u8>,
}

impl DelegatedRequest {
    /// The start-up read of the authentication ConfigMap, made before serving (its
    /// answer decides whether the server may start, spec 5.3).
    pub fn configmap_read() -> DelegatedRequest {
        DelegatedRequest {
            id: DelegatedId {
                review: 0,
                attempt: 1,
            },
            kind: DelegatedKind::ConfigMap,
            method: Method::GET,
            path: CONFIGMAP_PATH,
            body: Vec::new(),
        }
    }

    /// Which apiserver it goes to: the authentication one for TokenReviews and the
    /// ConfigMap, the authorization one for SubjectAccessReviews.
    pub fn upstream(&self) -> Upstream {
        match self.kind {
            DelegatedKind::TokenReview | DelegatedKind::ConfigMap => Upstream::Authentication,
            DelegatedKind::SubjectAccessReview => Upstream::Authorization,
        }
    }
}

impl fmt::Debug for DelegatedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegatedRequest")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// Following the authentication ConfigMap after start-up (spec 5.3): the settings that
/// did not come from flags are replaced when the ConfigMap changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigMapFollow {
    /// The client CA comes from the ConfigMap (no `--client-ca-file`).
    pub client_ca: bool,
    /// The request-header settings come from it (no `--requestheader-client-ca-file`).
    pub request_header: bool,
    /// How often it is read again.
    pub interval: Duration,
}

/// Settings of a [`Delegation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelegationConfig {
    /// A review not answered in this time fails ([`REVIEW_TIMEOUT`]).
    pub review_timeout: Duration,
    /// Reviews waiting or in flight at once ([`MAX_PENDING_REVIEWS`]).
    pub max_pending: usize,
    /// Re-read the ConfigMap; `None` when every setting came from flags (or the lookup
    /// is skipped).
    pub follow_configmap: Option<ConfigMapFollow>,
}

impl Default for DelegationConfig {
    fn default() -> Self {
        DelegationConfig {
            review_timeout: REVIEW_TIMEOUT,
            max_pending: MAX_PENDING_REVIEWS,
            follow_configmap: None,
        }
    }
}

/// One request's progress through the gate, kept by its connection across retries.
#[derive(Debug, Default)]
pub struct Attempt {
    /// The review it waits for.
    waiting: Option<u64>,
    /// Reviews it already waited for.
    resolved: Resolved,
    /// Reviews it asked for.
    reviews: usize,
}

impl Attempt {
    /// Whether it waits for a review.
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    fn resolve_token(&mut self, hash: TokenHash, verdict: TokenVerdict) {
        self.resolved.tokens.retain(|(h, _)| *h != hash);
        self.resolved.tokens.push((hash, verdict));
    }
}

/// The result of [`Delegation::check`].
#[derive(Debug)]
pub enum Checked {
    /// Serve the request as this identity.
    Proceed(Identity),
    /// Answer with this refusal (401, 403, 500 or 400; the body is in the caller's buffer).
    Refuse(Refusal),
    /// A review is on its way: wait for [`Delegation::poll_wake`], then check again.
    Wait,
}

/// What a review is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    Token(TokenHash),
    Access(SarKey),
    ConfigMap,
}

/// A delegated request not answered yet.
#[derive(Debug)]
struct Pending {
    subject: Subject,
    /// Kept for retries.
    body: Vec<u8>,
    /// Sends so far.
    attempt: u32,
    /// Set while a send is in flight.
    deadline: Option<Instant>,
    waiters: Vec<Waker>,
    /// Requests that asked for it (each reads its result once).
    interest: usize,
}

impl Pending {
    fn new(subject: Subject, body: Vec<u8>) -> Pending {
        Pending {
            subject,
            body,
            attempt: 0,
            deadline: None,
            waiters: Vec::new(),
            interest: 0,
        }
    }
}

/// A finished review's result, until every request that asked for it has read it.
#[derive(Debug)]
struct Finished {
    at: Instant,
    answer: Answer,
    /// Requests yet to read it.
    interest: usize,
}

/// A finished review, for the requests that waited for it.
#[derive(Debug, Clone)]
enum Answer {
    Token(TokenHash, TokenVerdict),
    Access(SarKey, AuthzOutcome),
}

#[derive(Debug, Default)]
struct Queue {
    next_id: u64,
    /// Reviews waiting to be handed to the engine task, in order.
    to_send: VecDeque<u64>,
    /// Reviews whose last send failed, with when to send them again.
    retries: Vec<(Instant, u64)>,
    pending: HashMap<u64, Pending>,
    /// Concurrent requests needing the same review share it.
    by_subject: HashMap<Subject, u64>,
    results: HashMap<u64, Finished>,
    /// The engine task, to wake when a review is queued.
    driver: Option<Waker>,
    /// When the ConfigMap is read next.
    configmap_due: Option<Instant>,
}

impl Queue {
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The [`Gate`] shared by every connection, and the reviews its requests wait for.
///
/// ```text
///  connection task                        engine task (EngineDriver)
///  check(request, attempt) ─ Wait ─┐      poll_request(now) ─▶ Exchange::delegated ─▶ send
///  poll_wake(attempt, cx) ◀─ wake ─┼───── complete(id, status + body | error, now)
///  check(request, attempt) again   │      handle_timeout(now): unanswered reviews fail
///   ─▶ Proceed | Refuse            └────▶ poll_ready(cx): wakes the engine task on a new review
/// ```
///
/// Thread-safe: connections call from their tasks, the engine task from its own.
/// Concurrent requests that need the same review (same token, same SubjectAccessReview
/// spec) wait for one. A request carries the results it waited for in its [`Attempt`],
/// so failed reviews and reviews cached for zero seconds still answer it.
pub struct Delegation {
    gate: RwLock<Gate>,
    queue: Mutex<Queue>,
    config: DelegationConfig,
    events: Option<EventSink>,
}

/// Something an operator may want in the log (the core logs nothing itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegationEvent<'a> {
    /// A request was refused: 401, 403, 500 or 400, and why.
    Refused { status: StatusCode, cause: &'a str },
    /// A ConfigMap read changed the followed settings.
    ConfigMapApplied {
        client_ca: bool,
        request_header: bool,
    },
    /// A ConfigMap read failed; the current settings stay.
    ConfigMapFailed { reason: &'a str },
    /// A CA bundle given by flag changed on disk and was put in use.
    CaFileReloaded {
        client_ca: bool,
        request_header: bool,
    },
}

/// Receives [`DelegationEvent`]s, on whichever task caused them.
pub type EventSink = Arc<dyn Fn(DelegationEvent<'_>) + Send + Sync>;

impl fmt::Debug for Delegation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delegation")
            .field("gate", &self.gate)
            .field("queue", &self.queue)
            .field("config", &self.config)
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl Delegation {
    /// Checks requests with `gate`; `now` starts the ConfigMap follow-up clock.
    pub fn new(gate: Gate, config: DelegationConfig, now: Instant) -> Delegation {
        let queue = Queue {
            configmap_due: config
                .follow_configmap
                .map(|f| now.saturating_add(f.interval)),
            ..Queue::default()
        };
        Delegation {
            gate: RwLock::new(gate),
            queue: Mutex::new(queue),
            config,
            events: None,
        }
    }

    /// Reports refusals and ConfigMap changes to `sink` (e.g. the server's log).
    pub fn with_events(mut self, sink: EventSink) -> Delegation {
        self.events = Some(sink);
        self
    }

    fn emit(&self, event: DelegationEvent<'_>) {
        if let Some(sink) = &self.events {
            sink(event);
        }
    }

    /// Puts a new client CA in use (a `--client-ca-file` that changed on disk); returns
    /// whether it differed.
    pub fn set_client_ca(&self, client_ca: Option<CaBundle>) -> bool {
        let mut gate = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        if gate.authenticator.config().client_ca == client_ca {
            return false;
        }
        gate.authenticator.set_client_ca(client_ca);
        drop(gate);
        self.emit(DelegationEvent::CaFileReloaded {
            client_ca: true,
            request_header: false,
        });
        true
    }

    /// Puts a new request-header CA in use, keeping the other request-header settings
    /// (a `--requestheader-client-ca-file` that changed on disk); returns whether it
    /// differed. Nothing happens without request-header settings.
    pub fn set_request_header_ca(&self, client_ca: CaBundle) -> bool {
        let mut gate = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let Some(current) = gate.authenticator.config().request_header.clone() else {
            return false;
        };
        if current.client_ca == client_ca {
            return false;
        }
        gate.authenticator
            .set_request_header(Some(RequestHeaderConfig {
                client_ca,
                ..current
            }));
        drop(gate);
        self.emit(DelegationEvent::CaFileReloaded {
            client_ca: false,
            request_header: true,
        });
        true
    }

    /// The current authentication settings (they follow the ConfigMap).
    pub fn authn_config(&self) -> AuthnConfig {
        self.gate
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .authenticator
            .config()
            .clone()
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Authenticates and authorizes a request; `body` receives a refusal's body.
    pub fn check(
        &self,
        request: &GateRequest<'_>,
        now: Instant,
        body: &mut Vec<u8>,
        attempt: &mut Attempt,
    ) -> Checked {
        if let Some(id) = attempt.waiting {
            let mut queue = self.queue();
            if let Some(result) = queue.results.get_mut(&id) {
                result.interest = result.interest.saturating_sub(1);
                let answer = result.answer.clone();
                if result.interest == 0 {
                    queue.results.remove(&id);
                }
                match answer {
                    Answer::Token(hash, verdict) => attempt.resolve_token(hash, verdict),
                    Answer::Access(key, outcome) => attempt.resolved.access = Some((key, outcome)),
                }
            } else if queue.pending.contains_key(&id) {
                return Checked::Wait;
            }
            // Answered (or forgotten after a long wait): check again either way.
            attempt.waiting = None;
        }
        // Each round settles one review the request needs (two tokens, its access) or
        // waits for it; a review that cannot be asked for resolves as failed.
        for _ in 0..=MAX_REVIEWS_PER_REQUEST {
            let outcome = self
                .gate
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .check_with(request, now, body, &attempt.resolved);
            let (subject, review) = match outcome {
                GateOutcome::Proceed(identity) => return Checked::Proceed(identity),
                GateOutcome::Refuse(refusal) => {
                    self.emit(DelegationEvent::Refused {
                        status: refusal.response.status(),
                        cause: &refusal.cause,
                    });
                    return Checked::Refuse(refusal);
                }
                GateOutcome::NeedsTokenReview(r) => (Subject::Token(r.token_hash), r.body),
                GateOutcome::NeedsSubjectAccessReview(r) => (Subject::Access(r.key), r.body),
            };
            if attempt.reviews < MAX_REVIEWS_PER_REQUEST
                && let Some(id) = self.enqueue(subject, review)
            {
                attempt.reviews += 1;
                attempt.waiting = Some(id);
                return Checked::Wait;
            }
            let failure = "too many reviews pending".to_owned();
            match subject {
                Subject::Token(hash) => {
                    attempt.resolve_token(hash, TokenVerdict::Failed(failure));
                }
                Subject::Access(key) => {
                    attempt.resolved.access = Some((key, AuthzOutcome::Failed(failure)));
                }
                Subject::ConfigMap => {}
            }
        }
        let uri = response::request_uri(request.parts);
        let cause = "authorization did not settle".to_owned();
        Checked::Refuse(Refusal {
            response: response::internal_error_response(&uri, &cause, body),
            cause,
        })
    }

    /// Ready once the review `attempt` waits for has been answered (or when it waits for
    /// none); otherwise `cx` is woken then.
    pub fn poll_wake(&self, attempt: &Attempt, cx: &mut Context<'_>) -> Poll<()> {
        let Some(id) = attempt.waiting else {
            return Poll::Ready(());
        };
        let mut queue = self.queue();
        match queue.pending.get_mut(&id) {
            Some(pending) => {
                if !pending.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    pending.waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    }

    /// Queues a review (or joins the one under way); `None` when too many are pending.
    fn enqueue(&self, subject: Subject, body: Vec<u8>) -> Option<u64> {
        let mut queue = self.queue();
        if let Some(&id) = queue.by_subject.get(&subject) {
            if let Some(pending) = queue.pending.get_mut(&id) {
                pending.interest += 1;
            }
            return Some(id);
        }
        if queue.pending.len() >= self.config.max_pending {
            return None;
        }
        let id = queue.new_id();
        let mut pending = Pending::new(subject, body);
        pending.interest = 1;
        queue.pending.insert(id, pending);
        queue.by_subject.insert(subject, id);
        queue.to_send.push_back(id);
        let driver = queue.driver.take();
        drop(queue);
        if let Some(driver) = driver {
            driver.wake();
        }
        Some(id)
    }

    /// The next request for the engine task to send (with the client's timeout running
    /// from `now`).
    pub fn poll_request(&self, now: Instant) -> Option<DelegatedRequest> {
        let mut queue = self.queue();
        if queue.configmap_due.is_some_and(|due| due <= now)
            && !queue.by_subject.contains_key(&Subject::ConfigMap)
        {
            queue.configmap_due = None;
            let review = queue.new_id();
            queue
                .pending
                .insert(review, Pending::new(Subject::ConfigMap, Vec::new()));
            queue.by_subject.insert(Subject::ConfigMap, review);
            queue.to_send.push_front(review);
        }
        if queue.retries.iter().any(|&(at, _)| at <= now) {
            let (due, later) = std::mem::take(&mut queue.retries)
                .into_iter()
                .partition::<Vec<_>, _>(|&(at, _)| at <= now);
            queue.retries = later;
            queue
                .to_send
                .extend(due.into_iter().map(|(_, review)| review));
        }
        while let Some(review) = queue.to_send.pop_front() {
            let Some(pending) = queue.pending.get_mut(&review) else {
                continue;
            };
            pending.attempt += 1;
            pending.deadline = Some(now.saturating_add(self.config.review_timeout));
            let (kind, method, path) = match pending.subject {
                Subject::Token(_) => (DelegatedKind::TokenReview, Method::POST, TOKEN_REVIEW_PATH),
                Subject::Access(_) => (
                    DelegatedKind::SubjectAccessReview,
                    Method::POST,
                    SUBJECT_ACCESS_REVIEW_PATH,
                ),
                Subject::ConfigMap => (DelegatedKind::ConfigMap, Method::GET, CONFIGMAP_PATH),
            };
            return Some(DelegatedRequest {
                id: DelegatedId {
                    review,
                    attempt: pending.attempt,
                },
                kind,
                method,
                path,
                body: pending.body.clone(),
            });
        }
        None
    }

    /// The answer to a delegated request: a response's status and whole body, or why
    /// there is none. Reviews are recorded in the gate's caches and their waiting
    /// requests woken; a ConfigMap answer updates the followed settings.
    pub fn complete(
        &self,
        id: DelegatedId,
        result: Result<(StatusCode, &[u8]), &str>,
        now: Instant,
    ) {
        let Some(subject) = self.settle(id, &result, now) else {
            return;
        };
        let outcome: Result<&[u8], String> = match result {
            Ok((status, body)) if status.is_success() => Ok(body),
            Ok((status, body)) => Err(format!(
                "the apiserver answered {status}: {}",
                snippet(body)
            )),
            Err(reason) => Err(reason.to_owned()),
        };
        let outcome = outcome.as_deref().map_err(String::as_str);
        let answer = match subject {
            Subject::Token(hash) => {
                let verdict = self
                    .gate
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .complete_token_review(&hash, outcome, now);
                Answer::Token(hash, verdict)
            }
            Subject::Access(key) => {
                let decision = self
                    .gate
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .complete_sar(&key, outcome, now);
                Answer::Access(key, decision)
            }
            Subject::ConfigMap => {
                self.apply_configmap(result, now);
                self.finish(id.review, None, now);
                return;
            }
        };
        self.finish(id.review, Some(answer), now);
    }

    /// Publishes a review's answer (recorded in the gate already) and wakes the requests
    /// waiting for it: removing it from the pending ones and adding its result happen
    /// under one lock, so a request never finds it in neither place and asks again.
    fn finish(&self, review: u64, answer: Option<Answer>, now: Instant) {
        let waiters = {
            let mut queue = self.queue();
            let Some(pending) = queue.pending.remove(&review) else {
                return;
            };
            if queue.by_subject.get(&pending.subject) == Some(&review) {
                queue.by_subject.remove(&pending.subject);
            }
            if let Some(answer) = answer
                && pending.interest > 0
            {
                if queue.results.len() >= MAX_RESULTS {
                    // Requests that went away leave results behind: drop the oldest.
                    let oldest = queue
                        .results
                        .iter()
                        .min_by_key(|(_, r)| r.at)
                        .map(|(k, _)| *k);
                    if let Some(oldest) = oldest {
                        queue.results.remove(&oldest);
                    }
                }
                let result = Finished {
                    at: now,
                    answer,
                    interest: pending.interest,
                };
                queue.results.insert(review, result);
            }
            pending.waiters
        };
        for waiter in waiters {
            waiter.wake();
        }
    }

    /// What the review `id` answers is about, unless the answer is stale (an earlier
    /// send's) or a failure worth retrying, which schedules the next send instead.
    fn settle(
        &self,
        id: DelegatedId,
        result: &Result<(StatusCode, &[u8]), &str>,
        now: Instant,
    ) -> Option<Subject> {
        let mut queue = self.queue();
        let pending = queue.pending.get_mut(&id.review)?;
        if pending.attempt != id.attempt || pending.deadline.is_none() {
            return None;
        }
        let retriable = match result {
            Ok((status, _)) => *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
            Err(_) => true,
        };
        pending.deadline = None;
        if retriable && pending.subject != Subject::ConfigMap && pending.attempt < REVIEW_ATTEMPTS {
            let at = now.saturating_add(retry_delay(id));
            queue.retries.push((at, id.review));
            return None;
        }
        // Completing: no deadline and no retry, so nothing sends or settles it again;
        // still pending (and shared) until `finish` publishes the answer.
        Some(pending.subject)
    }

    /// A ConfigMap read: a ConfigMap found replaces the followed settings; any other
    /// answer (not found included) keeps the current ones until the next read.
    fn apply_configmap(&self, result: Result<(StatusCode, &[u8]), &str>, now: Instant) {
        let Some(follow) = self.config.follow_configmap else {
            return;
        };
        self.queue().configmap_due = Some(now.saturating_add(follow.interval));
        let failed = |reason: &str| self.emit(DelegationEvent::ConfigMapFailed { reason });
        let ext = match result {
            Ok((StatusCode::OK, body)) => match ExtensionAuthentication::from_json(body) {
                Ok(ext) => ext,
                Err(e) => return failed(&e.to_string()),
            },
            // Upstream's controllers keep what they have when the ConfigMap disappears
            // (only start-up treats "not found" as "no settings").
            Ok((status, body)) => return failed(&format!("{status}: {}", snippet(body))),
            Err(reason) => return failed(reason),
        };
        let mut gate = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let current = gate.authenticator.config();
        let ca_changed = follow.client_ca && current.client_ca != ext.client_ca;
        let header_changed = follow.request_header && current.request_header != ext.request_header;
        if ca_changed {
            gate.authenticator.set_client_ca(ext.client_ca);
        }
        if header_changed {
            gate.authenticator.set_request_header(ext.request_header);
        }
        drop(gate);
        if ca_changed || header_changed {
            self.emit(DelegationEvent::ConfigMapApplied {
                client_ca: ca_changed,
                request_header: header_changed,
            });
        }
    }

    /// Fails reviews not answered by their deadline (returning them, for the engine
    /// task to abort) and forgets old results. A ConfigMap read that timed out is tried
    /// again after the follow interval.
    pub fn handle_timeout(&self, now: Instant) -> Vec<DelegatedId> {
        let expired: Vec<DelegatedId> = {
            let mut queue = self.queue();
            queue
                .results
                .retain(|_, r| now.saturating_duration_since(r.at) < RESULT_RETENTION);
            queue
                .pending
                .iter()
                .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
                .filter_map(|(review, p)| {
                    p.deadline.map(|_| DelegatedId {
                        review: *review,
                        attempt: p.attempt,
                    })
                })
                .collect()
        };
        for id in &expired {
            self.complete(*id, Err("the review timed out"), now);
        }
        expired
    }

    /// When [`handle_timeout`](Self::handle_timeout) or
    /// [`poll_request`](Self::poll_request) has something to do next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let queue = self.queue();
        let deadlines = queue.pending.values().filter_map(|p| p.deadline);
        let retries = queue.retries.iter().map(|&(at, _)| at);
        deadlines.chain(retries).chain(queue.configmap_due).min()
    }

    /// For the engine task: ready when a review waits to be sent; otherwise `cx` is woken
    /// when one is queued.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut queue = self.queue();
        if !queue.to_send.is_empty() {
            return Poll::Ready(());
        }
        queue.driver = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Reviews waiting or in flight.
    pub fn pending(&self) -> usize {
        self.queue().pending.len()
    }

    /// Finished reviews whose results some waiting request has not read yet.
    pub fn unread_results(&self) -> usize {
        self.queue().results.len()
    }
}

/// The wait before the next send of `id`'s review: 0.5 s, then x1.5 per attempt, plus up
/// to 20 % jitter (derived from the id, so a simulation stays deterministic).
fn retry_delay(id: DelegatedId) -> Duration {
    let steps = i32::try_from(id.attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    let mut x = id.review.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(id.attempt);
    x = (x ^ (x >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
    RETRY_FIRST_DELAY.mul_f64(RETRY_FACTOR.powi(steps) * (1.0 + RETRY_JITTER * unit))
}

/// The start of an error body, for the failure text.
fn snippet(body: &[u8]) -> String {
    let end = body.len().min(ERROR_SNIPPET);
    String::from_utf8_lossy(&body[..end]).trim().to_owned()
}
