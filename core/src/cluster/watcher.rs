//! The list-then-watch machine for one resource (a reflector, in client-go's terms).

use super::backoff::{Backoff, BackoffConfig};
use super::cache::Cache;
use super::escape::query_escape;
use super::objects::{ClusterObject, Node, Pod};
use super::wire::{Codec, DecodeError, Event, NODE_CODEC, POD_CODEC, truncated};
use super::{
    ClusterAction, ClusterEvent, ClusterRequest, Instant, RequestId, RequestKind, Resource,
};
use http::StatusCode;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// A watch that ends sooner than this without delivering anything counts as a failure
/// (client-go's "very short watch"), so a peer that closes at once cannot spin us.
pub const MIN_WATCH_DURATION: Duration = Duration::from_secs(1);

/// Events kept for the caller beyond this are dropped (requests and cancels never are).
const MAX_QUEUED_EVENTS: usize = 64;

/// Longest transport error text kept.
const MAX_REASON_BYTES: usize = 256;

/// Bounds on what a watcher retains. Input beyond them is an error for its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Objects in the cache (and in a list being assembled).
    pub max_objects: usize,
    /// Bytes of text retained per object (name, namespace, labels, addresses, path).
    pub max_object_bytes: usize,
    /// Labels per object.
    pub max_labels: usize,
    /// Addresses per Node.
    pub max_addresses: usize,
    /// Bytes of a resourceVersion or continue token.
    pub max_token_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_objects: 1_000_000,
            max_object_bytes: 64 * 1024,
            max_labels: 1024,
            max_addresses: 64,
            max_token_bytes: 16 * 1024,
        }
    }
}

/// Settings of one watcher.
#[derive(Debug, Clone, PartialEq)]
pub struct WatcherConfig {
    /// `limit` of each list page; 0 lists in one response. client-go's default is 500.
    pub page_size: u32,
    /// `timeoutSeconds` of each watch (whole seconds, at least 1); `None` leaves it to the
    /// apiserver. Kept under the apiserver's 5 minute minimum, as kube-rs does.
    pub watch_timeout: Option<Duration>,
    /// Deadline of one list page; also the grace after `watch_timeout` before a silent
    /// watch counts as hung.
    pub request_timeout: Duration,
    /// `labelSelector` for list and watch, URL-encoded here. Upstream's Node informer has
    /// none: `--node-selector` is applied when reading the cache, so excluded nodes still
    /// "exist". Set this only to trade that behaviour for less traffic.
    pub label_selector: Option<String>,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// Size bounds.
    pub limits: Limits,
    /// Seed of the jitter generator.
    pub seed: u64,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            page_size: 500,
            watch_timeout: Some(Duration::from_secs(290)),
            request_timeout: Duration::from_secs(60),
            label_selector: None,
            backoff: BackoffConfig::default(),
            limits: Limits::default(),
            seed: 0,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchError {
    /// 410 Gone: the resourceVersion or continue token expired (HTTP status or ERROR event).
    Gone,
    /// The apiserver answered with another status.
    Status(u16),
    /// An ERROR watch event other than 410.
    ErrorEvent {
        /// `code`, when given.
        code: Option<i64>,
        /// `reason`.
        reason: Box<str>,
        /// `message`.
        message: Box<str>,
    },
    /// The transport failed; the adapter's reason.
    Transport(Box<str>),
    /// A list body or watch line could not be decoded.
    Decode(DecodeError),
    /// No response (list) or no end (watch) before the deadline.
    Timeout,
    /// The watch ended within [`MIN_WATCH_DURATION`] without a single event.
    ShortWatch,
    /// The cache would exceed [`Limits::max_objects`].
    TooManyObjects(usize),
    /// Input that does not fit the request (watch lines or an end for a list).
    UnexpectedInput,
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Gone => f.write_str("410 Gone: resource version or continue token expired"),
            WatchError::Status(code) => write!(f, "apiserver answered {code}"),
            WatchError::ErrorEvent {
                code,
                reason,
                message,
            } => {
                f.write_str("watch ERROR event")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                write!(f, " {reason}: {message}")
            }
            WatchError::Transport(reason) => write!(f, "transport: {reason}"),
            WatchError::Decode(e) => write!(f, "decode: {e}"),
            WatchError::Timeout => f.write_str("no answer before the deadline"),
            WatchError::ShortWatch => f.write_str("watch closed within a second without any event"),
            WatchError::TooManyObjects(limit) => write!(f, "more than {limit} objects"),
            WatchError::UnexpectedInput => f.write_str("input does not fit the request"),
        }
    }
}

impl std::error::Error for WatchError {}

/// What a watcher does after a failure, once the backoff delay has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// List again from scratch with a consistent read; the cache is replaced at the end.
    Relist,
    /// Ask for the same list page again (keeping the pages already received).
    ListPage,
    /// Watch again from the last resourceVersion, without listing.
    Rewatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    List,
    Watch,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Backing off; `step` starts at `at`.
    Waiting { at: Instant, step: Step },
    /// A list page is in flight.
    Listing { id: RequestId, deadline: Instant },
    /// A watch is in flight.
    Watching {
        id: RequestId,
        deadline: Option<Instant>,
        started: Instant,
        events: u64,
    },
}

/// A list being assembled page by page; swapped in whole when the last page arrives.
#[derive(Debug)]
struct Paging<T> {
    cache: Cache<T>,
    continue_token: Option<Box<str>>,
    pages: u32,
}

impl<T> Default for Paging<T> {
    fn default() -> Self {
        Paging {
            cache: Cache::default(),
            continue_token: None,
            pages: 0,
        }
    }
}

/// Watcher of Nodes.
pub type NodeWatcher = Watcher<Node>;
/// Watcher of Running pods' metadata.
pub type PodWatcher = Watcher<Pod>;

/// List-then-watch of one resource, feeding a [`Cache`].
///
/// ```text
///            new ─────────┐
///                         ▼
///   ┌──────────────► Listing ──page with continue──► Listing (next page)
///   │ Relist /            │ last page: swap cache, synced
///   │ ListPage            ▼
///   │                 Watching ──ADDED/MODIFIED/DELETED──► cache; BOOKMARK──► rv
///   │                     │ ended normally ───────────────► Watching (same rv)
///   │                     │ 410, ERROR 410, bad line ─────► Waiting(Relist)
///   │                     │ transport, 5xx, other ERROR ──► Waiting(Rewatch)
///   └───── Waiting ◄──────┘ (backoff delay, then the step)
/// ```
///
/// Drive it like any machine in this crate: after each `handle_*`/`on_*` call drain
/// [`poll_action`](Self::poll_action), then sleep until
/// [`poll_timeout`](Self::poll_timeout) and call [`handle_timeout`](Self::handle_timeout).
/// Input for ids that are not in flight (stale, cancelled, unknown) is ignored.
#[derive(Debug)]
pub struct Watcher<T> {
    resource: Resource,
    codec: Codec<T>,
    cfg: WatcherConfig,
    /// Selector query parameters shared by list and watch (already escaped), in Go's
    /// sorted-key order: `fieldSelector=...&labelSelector=...`.
    selectors: String,
    phase: Phase,
    paging: Option<Paging<T>>,
    /// Relists read the latest state; only the first list may come from the watch cache.
    consistent_list: bool,
    cache: Cache<T>,
    resource_version: Option<Box<str>>,
    synced: bool,
    generation: u64,
    backoff: Backoff,
    next_seq: u64,
    actions: VecDeque<ClusterAction>,
    queued_events: usize,
    dropped_events: u64,
    now: Instant,
}

impl Watcher<Node> {
    /// A Node watcher; its first list request is queued at once.
    pub fn new(cfg: WatcherConfig, now: Instant) -> Self {
        Watcher::with_codec(Resource::Nodes, NODE_CODEC, cfg, now)
    }
}

impl Watcher<Pod> {
    /// A Running-pod metadata watcher; its first list request is queued at once.
    pub fn new(cfg: WatcherConfig, now: Instant) -> Self {
        Watcher::with_codec(Resource::Pods, POD_CODEC, cfg, now)
    }
}

fn separate(qs: &mut String) {
    if !qs.is_empty() {
        qs.push('&');
    }
}

impl<T: ClusterObject> Watcher<T> {
    fn with_codec(
        resource: Resource,
        codec: Codec<T>,
        mut cfg: WatcherConfig,
        now: Instant,
    ) -> Self {
        // A zero deadline would expire every request on arrival.
        cfg.request_timeout = cfg.request_timeout.max(Duration::from_millis(1));
        let mut selectors = String::new();
        if let Some(field) = resource.field_selector() {
            selectors.push_str("fieldSelector=");
            query_escape(field, &mut selectors);
        }
        if let Some(label) = cfg
            .label_selector
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            if !selectors.is_empty() {
                selectors.push('&');
            }
            selectors.push_str("labelSelector=");
            query_escape(label, &mut selectors);
        }
        let mut w = Watcher {
            resource,
            codec,
            backoff: Backoff::new(cfg.backoff.clone(), cfg.seed),
            cfg,
            selectors,
            phase: Phase::Waiting {
                at: now,
                step: Step::List,
            },
            paging: None,
            consistent_list: false,
            cache: Cache::default(),
            resource_version: None,
            synced: false,
            generation: 0,
            next_seq: 0,
            actions: VecDeque::new(),
            queued_events: 0,
            dropped_events: 0,
            now,
        };
        w.send_list(now);
        w
    }

    // ---- getters -----------------------------------------------------------------------

    /// Which resource this watches.
    pub fn resource(&self) -> Resource {
        self.resource
    }

    /// The cache as of the last complete list plus the watch events since.
    pub fn cache(&self) -> &Cache<T> {
        &self.cache
    }

    /// Whether a list has completed (the informer-sync health checks). Stays true.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The last resourceVersion seen (list, event or bookmark).
    pub fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }

    /// Increases whenever the cache changes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The request in flight, if any (none while backing off).
    pub fn in_flight(&self) -> Option<RequestId> {
        match self.phase {
            Phase::Waiting { .. } => None,
            Phase::Listing { id, .. } | Phase::Watching { id, .. } => Some(id),
        }
    }

    /// Events dropped because the caller did not drain [`poll_action`](Self::poll_action).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    // ---- poll ----------------------------------------------------------------------------

    /// The next thing to do: send a request, cancel one, or report an event.
    pub fn poll_action(&mut self) -> Option<ClusterAction> {
        let action = self.actions.pop_front()?;
        if matches!(action, ClusterAction::Event(_)) {
            self.queued_events -= 1;
        }
        Some(action)
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work: the end of a backoff
    /// or the deadline of the request in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { at, .. } => Some(at),
            Phase::Listing { deadline, .. } => Some(deadline),
            Phase::Watching { deadline, .. } => deadline,
        }
    }

    // ---- handle --------------------------------------------------------------------------

    /// Starts what a backoff delayed, or gives up on a request past its deadline. Early
    /// and repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        match self.phase {
            Phase::Waiting { at, step } if at <= now => self.begin(now, step),
            Phase::Listing { id, deadline } if deadline <= now => {
                self.cancel(id);
                self.fail(now, WatchError::Timeout, Retry::ListPage);
            }
            Phase::Watching {
                id,
                deadline: Some(deadline),
                ..
            } if deadline <= now => {
                self.cancel(id);
                self.fail(now, WatchError::Timeout, Retry::Rewatch);
            }
            _ => {}
        }
    }

    /// A complete response: a list page, or a watch answered with a whole body (a non-200
    /// status, or a 200 whose body holds newline-separated events).
    pub fn on_response(&mut self, now: Instant, id: RequestId, status: StatusCode, body: &[u8]) {
        let now = self.advance(now);
        match self.phase {
            Phase::Listing { id: cur, .. } if cur == id => {
                if status == StatusCode::OK {
                    self.on_page(now, body);
                } else if status == StatusCode::GONE {
                    self.fail(now, WatchError::Gone, Retry::Relist);
                } else {
                    self.fail(now, WatchError::Status(status.as_u16()), Retry::ListPage);
                }
            }
            Phase::Watching { id: cur, .. } if cur == id => {
                if status == StatusCode::OK {
                    for line in body.split(|&b| b == b'\n') {
                        if self.in_flight() != Some(id) {
                            return;
                        }
                        self.on_line(now, id, line, false);
                    }
                    if self.in_flight() == Some(id) {
                        self.on_end(now);
                    }
                } else if status == StatusCode::GONE {
                    self.fail(now, WatchError::Gone, Retry::Relist);
                } else {
                    self.fail(now, WatchError::Status(status.as_u16()), Retry::Rewatch);
                }
            }
            _ => {}
        }
    }

    /// One line of a watch stream (a JSON event; the trailing newline is optional, blank
    /// lines are ignored).
    pub fn on_watch_event(&mut self, now: Instant, id: RequestId, line: &[u8]) {
        let now = self.advance(now);
        match self.phase {
            Phase::Watching { id: cur, .. } if cur == id => self.on_line(now, id, line, true),
            Phase::Listing { id: cur, .. } if cur == id => {
                self.cancel(id);
                self.fail(now, WatchError::UnexpectedInput, Retry::ListPage);
            }
            _ => {}
        }
    }

    /// The watch stream ended cleanly (the apiserver closed it, e.g. at `timeoutSeconds`).
    pub fn on_watch_end(&mut self, now: Instant, id: RequestId) {
        let now = self.advance(now);
        match self.phase {
            Phase::Watching { id: cur, .. } if cur == id => self.on_end(now),
            Phase::Listing { id: cur, .. } if cur == id => {
                self.fail(now, WatchError::UnexpectedInput, Retry::ListPage);
            }
            _ => {}
        }
    }

    /// The request failed below HTTP (connect, TLS, reset, truncated body...).
    pub fn on_error(&mut self, now: Instant, id: RequestId, reason: &str) {
        let now = self.advance(now);
        let error = WatchError::Transport(truncated(reason, MAX_REASON_BYTES).into());
        match self.phase {
            Phase::Listing { id: cur, .. } if cur == id => self.fail(now, error, Retry::ListPage),
            Phase::Watching { id: cur, .. } if cur == id => self.fail(now, error, Retry::Rewatch),
            _ => {}
        }
    }

    // ---- internals -------------------------------------------------------------------------

    fn advance(&mut self, now: Instant) -> Instant {
        debug_assert!(
            now >= self.now,
            "time went backwards: {now:?} < {:?}",
            self.now
        );
        self.now = self.now.max(now);
        self.now
    }

    fn next_id(&mut self) -> RequestId {
        self.next_seq += 1;
        RequestId {
            resource: self.resource,
            seq: self.next_seq,
        }
    }

    fn push_event(&mut self, event: ClusterEvent) {
        if self.queued_events >= MAX_QUEUED_EVENTS {
            self.dropped_events += 1;
            return;
        }
        self.queued_events += 1;
        self.actions.push_back(ClusterAction::Event(event));
    }

    fn cancel(&mut self, id: RequestId) {
        self.actions.push_back(ClusterAction::Cancel(id));
    }

    fn begin(&mut self, now: Instant, step: Step) {
        match step {
            Step::Watch if self.resource_version.is_some() => self.send_watch(now),
            Step::Watch => {
                self.paging = None;
                self.send_list(now);
            }
            Step::List => self.send_list(now),
        }
    }

    fn send_list(&mut self, now: Instant) {
        let id = self.next_id();
        // Go's url.Values.Encode sorts keys: continue, fieldSelector, labelSelector, limit,
        // resourceVersion.
        let mut qs = String::new();
        let token = self
            .paging
            .as_ref()
            .and_then(|p| p.continue_token.as_deref());
        if let Some(token) = token {
            qs.push_str("continue=");
            query_escape(token, &mut qs);
        }
        if !self.selectors.is_empty() {
            separate(&mut qs);
            qs.push_str(&self.selectors);
        }
        if self.cfg.page_size > 0 {
            separate(&mut qs);
            qs.push_str("limit=");
            qs.push_str(&self.cfg.page_size.to_string());
        }
        // A continued list must not name a version; a first list may be served from the
        // watch cache ("0"), a relist reads the latest state (no parameter).
        if token.is_none() && !self.consistent_list {
            separate(&mut qs);
            qs.push_str("resourceVersion=0");
        }
        let mut q = String::from(self.resource.path());
        if !qs.is_empty() {
            q.push('?');
            q.push_str(&qs);
        }
        self.phase = Phase::Listing {
            id,
            deadline: now.saturating_add(self.cfg.request_timeout),
        };
        self.send(id, RequestKind::List, q);
    }

    fn send_watch(&mut self, now: Instant) {
        let id = self.next_id();
        // Sorted keys: allowWatchBookmarks, fieldSelector, labelSelector, resourceVersion,
        // timeoutSeconds, watch.
        let mut q = String::from(self.resource.path());
        q.push_str("?allowWatchBookmarks=true");
        if !self.selectors.is_empty() {
            q.push('&');
            q.push_str(&self.selectors);
        }
        q.push_str("&resourceVersion=");
        query_escape(self.resource_version.as_deref().unwrap_or_default(), &mut q);
        let timeout = self.cfg.watch_timeout.map(|t| t.as_secs().max(1));
        if let Some(secs) = timeout {
            q.push_str("&timeoutSeconds=");
            q.push_str(&secs.to_string());
        }
        q.push_str("&watch=true");
        self.phase = Phase::Watching {
            id,
            deadline: timeout.map(|secs| {
                now.saturating_add(Duration::from_secs(secs))
                    .saturating_add(self.cfg.request_timeout)
            }),
            started: now,
            events: 0,
        };
        self.send(id, RequestKind::Watch, q);
    }

    fn send(&mut self, id: RequestId, kind: RequestKind, path_and_query: String) {
        let accept = match kind {
            RequestKind::List => self.resource.list_accept(),
            RequestKind::Watch => self.resource.watch_accept(),
        };
        self.actions
            .push_back(ClusterAction::Send(ClusterRequest::get(
                id,
                kind,
                path_and_query,
                accept,
            )));
    }

    fn fail(&mut self, now: Instant, error: WatchError, retry: Retry) {
        if retry == Retry::Relist {
            self.paging = None;
            self.consistent_list = true;
        }
        let delay = self.backoff.next_delay(now);
        let step = match retry {
            Retry::Relist | Retry::ListPage => Step::List,
            Retry::Rewatch => Step::Watch,
        };
        self.phase = Phase::Waiting {
            at: now.saturating_add(delay),
            step,
        };
        self.push_event(ClusterEvent::Failed {
            resource: self.resource,
            error,
            retry,
            delay,
            failures: self.backoff.failures(),
        });
    }

    fn on_page(&mut self, now: Instant, body: &[u8]) {
        let page = match (self.codec.list)(body, &self.cfg.limits) {
            Ok(page) => page,
            Err(e) => return self.fail(now, WatchError::Decode(e), Retry::Relist),
        };
        let max = self.cfg.limits.max_objects;
        let paging = self.paging.get_or_insert_with(Paging::default);
        for obj in page.items {
            if paging.cache.len() >= max && !paging.cache.contains_key_of(&obj) {
                return self.fail(now, WatchError::TooManyObjects(max), Retry::Relist);
            }
            paging.cache.insert(obj);
        }
        paging.pages += 1;
        if let Some(token) = page.continue_token {
            paging.continue_token = Some(token);
            return self.send_list(now);
        }
        let Some(rv) = page.resource_version else {
            let missing = DecodeError::Missing("metadata.resourceVersion");
            return self.fail(now, WatchError::Decode(missing), Retry::Relist);
        };
        let Some(done) = self.paging.take() else {
            return; // unreachable: inserted above
        };
        self.cache = done.cache;
        self.resource_version = Some(rv);
        let first = !self.synced;
        self.synced = true;
        self.generation += 1;
        self.backoff.succeeded(now);
        self.push_event(ClusterEvent::Listed {
            resource: self.resource,
            objects: self.cache.len(),
            pages: done.pages,
            first,
        });
        self.send_watch(now);
    }

    /// One event line of the watch `id`; `streaming` says whether the response is still
    /// open (and must be cancelled when we give up on it).
    fn on_line(&mut self, now: Instant, id: RequestId, line: &[u8], streaming: bool) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        let abandon = |w: &mut Self, error: WatchError, retry: Retry| {
            if streaming {
                w.cancel(id);
            }
            w.fail(now, error, retry);
        };
        let event = match (self.codec.event)(line, &self.cfg.limits) {
            Ok(event) => event,
            Err(e) => return abandon(self, WatchError::Decode(e), Retry::Relist),
        };
        match event {
            Event::Apply { rv, object } => {
                let max = self.cfg.limits.max_objects;
                if self.cache.len() >= max && !self.cache.contains_key_of(&object) {
                    return abandon(self, WatchError::TooManyObjects(max), Retry::Relist);
                }
                self.cache.insert(object);
                self.generation += 1;
                self.resource_version = Some(rv);
            }
            Event::Delete {
                rv,
                namespace,
                name,
            } => {
                if self.cache.remove(&namespace, &name) {
                    self.generation += 1;
                }
                self.resource_version = Some(rv);
            }
            Event::Bookmark { rv } => self.resource_version = Some(rv),
            Event::Error(status) => {
                let gone =
                    status.code == Some(410) || matches!(&*status.reason, "Expired" | "Gone");
                let (error, retry) = if gone {
                    (WatchError::Gone, Retry::Relist)
                } else {
                    let e = WatchError::ErrorEvent {
                        code: status.code,
                        reason: status.reason,
                        message: status.message,
                    };
                    (e, Retry::Rewatch)
                };
                return abandon(self, error, retry);
            }
        }
        if let Phase::Watching { events, .. } = &mut self.phase {
            *events += 1;
        }
        self.backoff.succeeded(now);
    }

    fn on_end(&mut self, now: Instant) {
        let Phase::Watching {
            started, events, ..
        } = self.phase
        else {
            return;
        };
        if events == 0 && now.saturating_duration_since(started) < MIN_WATCH_DURATION {
            self.fail(now, WatchError::ShortWatch, Retry::Rewatch);
        } else {
            self.send_watch(now);
        }
    }
}
