//! Cluster state: list/watch of Nodes and Pods, and node address resolution.
//!
//! The server needs two informers (spec `metrics-api.md` 3.1): all Nodes (full objects:
//! labels, addresses, kubelet port, the metrics-path annotation) and the metadata of Running
//! pods (`fieldSelector=status.phase=Running`, `PartialObjectMetadata`). [`Cluster`] runs
//! one [`Watcher`] for each and publishes both caches as a [`ClusterView`].
//!
//! Everything here is Sans-IO. Requests come out as data ([`ClusterRequest`]); responses,
//! watch lines, stream ends and transport errors go in with the request's [`RequestId`];
//! time goes in as an [`Instant`] reading of the caller's monotonic clock; randomness
//! (backoff jitter) comes from a seed in the config.
//!
//! Driving it (with the client codec of [`crate::http`]: a `List` is parsed with
//! `BodyMode::Buffered`, a `Watch` with `BodyMode::Lines`):
//!
//! ```text
//! let mut cluster = Cluster::new(ClusterConfig::with_seed(seed), now);
//! loop {
//!     while let Some(action) = cluster.poll_action() {
//!         match action {
//!             ClusterAction::Send(req) => open/reuse an apiserver connection, send
//!                 `GET req.path_and_query` with req.headers (+ Host, auth, User-Agent),
//!             ClusterAction::Cancel(id) => close that request's connection/stream,
//!             ClusterAction::Event(e) => log or count it,
//!         }
//!     }
//!     // as completions arrive, for request `id`:
//!     //   Head(status) + Body(body)                 -> cluster.on_response(now, id, status, &body)
//!     //   Head(200) + Line(l)... + End (watch only) -> cluster.on_watch_event(now, id, &l)...,
//!     //                                                 then cluster.on_watch_end(now, id)
//!     //   connect/TLS/reset/codec error             -> cluster.on_error(now, id, &reason)
//!     // when cluster.poll_timeout() is reached      -> cluster.handle_timeout(now)
//!     // when cluster.generation() changed           -> publish cluster.view() to readers
//! }
//! ```
//!
//! Every id gets at most one completion (`on_response`, `on_watch_end` or `on_error`);
//! input for ids that are not in flight (cancelled, superseded, unknown) is ignored.

mod backoff;
mod cache;
mod escape;
mod objects;
mod resolve;
mod watcher;
mod wire;

#[cfg(test)]
mod tests;

pub use backoff::{BackoffConfig, SplitMix64};
pub use cache::{Cache, ClusterView, NotSynced};
pub use objects::{AddressType, ClusterObject, Labels, Node, NodeAddress, Pod};
pub use resolve::{
    DEFAULT_METRICS_PATH, KubeletTarget, ResolveConfig, ResolveError, Scheme, resolve,
};
pub use watcher::{
    Limits, MIN_WATCH_DURATION, NodeWatcher, PodWatcher, Retry, WatchError, Watcher, WatcherConfig,
};
pub use wire::{DecodeError, RESOURCE_METRICS_PATH_ANNOTATION};

pub use crate::time::Instant;

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use std::fmt;
use std::time::Duration;

/// The two watched resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// `/api/v1/nodes`, full objects.
    Nodes,
    /// `/api/v1/pods`, all namespaces, Running only, metadata only.
    Pods,
}

impl Resource {
    /// Collection path.
    pub fn path(self) -> &'static str {
        match self {
            Resource::Nodes => "/api/v1/nodes",
            Resource::Pods => "/api/v1/pods",
        }
    }

    /// Name for logs (`nodes`, `pods`).
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Nodes => "nodes",
            Resource::Pods => "pods",
        }
    }

    /// Server-side field selector (upstream's pod informer: Running pods only).
    pub fn field_selector(self) -> Option<&'static str> {
        match self {
            Resource::Nodes => None,
            Resource::Pods => Some("status.phase=Running"),
        }
    }

    /// `Accept` of a list. Pods ask for `PartialObjectMetadataList`, as client-go's
    /// metadata client does (JSON only: we do not decode protobuf); the plain JSON fallback
    /// decodes the same way, since only metadata is read.
    pub fn list_accept(self) -> &'static str {
        match self {
            Resource::Nodes => "application/json",
            Resource::Pods => {
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            }
        }
    }

    /// `Accept` of a watch (objects in a watch stream are single `PartialObjectMetadata`).
    pub fn watch_accept(self) -> &'static str {
        match self {
            Resource::Nodes => "application/json",
            Resource::Pods => {
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
            }
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one request the core emitted. Allocated by the core, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId {
    resource: Resource,
    seq: u64,
}

impl RequestId {
    /// The watcher the request belongs to.
    pub fn resource(self) -> Resource {
        self.resource
    }

    /// Sequence number within that watcher (starts at 1).
    pub fn seq(self) -> u64 {
        self.seq
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.resource, self.seq)
    }
}

/// How the response of a request is consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// One page: hand the whole body to `on_response`.
    List,
    /// A stream: on 200 hand each line to `on_watch_event`, then call `on_watch_end`; on any
    /// other status hand the body to `on_response`.
    Watch,
}

/// A request to the apiserver, as data. The adapter adds the authority, credentials and
/// `User-Agent`.
#[derive(Debug, Clone)]
pub struct ClusterRequest {
    /// Report the outcome under this id.
    pub id: RequestId,
    /// List page or watch stream.
    pub kind: RequestKind,
    /// Always GET.
    pub method: Method,
    /// Origin-form target: path and query, percent-encoded.
    pub path_and_query: String,
    /// `Accept`.
    pub headers: HeaderMap,
}

impl ClusterRequest {
    fn get(id: RequestId, kind: RequestKind, path_and_query: String, accept: &'static str) -> Self {
        let mut headers = HeaderMap::with_capacity(1);
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        ClusterRequest {
            id,
            kind,
            method: Method::GET,
            path_and_query,
            headers,
        }
    }

    /// The request as an `http::Request` with an origin-form URI (fails only for a target
    /// the `http` crate refuses, e.g. one longer than it supports).
    pub fn to_http(&self) -> Result<http::Request<()>, http::Error> {
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(self.path_and_query.as_str());
        if let Some(h) = builder.headers_mut() {
            h.extend(self.headers.clone());
        }
        builder.body(())
    }
}

/// What the caller must do next; produced by `poll_action`.
#[derive(Debug, Clone)]
pub enum ClusterAction {
    /// Send this request and report its outcome (see [`RequestKind`]).
    Send(ClusterRequest),
    /// Stop this request (close its stream); later input for it is ignored anyway.
    Cancel(RequestId),
    /// Something to log or count.
    Event(ClusterEvent),
}

/// Notable transitions, for logs and self-metrics.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A full list completed and replaced the cache.
    Listed {
        /// Which watcher.
        resource: Resource,
        /// Objects now cached.
        objects: usize,
        /// Pages it took.
        pages: u32,
        /// The first list (the informer just synced).
        first: bool,
    },
    /// A request failed; `retry` happens after `delay`.
    Failed {
        /// Which watcher.
        resource: Resource,
        /// What went wrong.
        error: WatchError,
        /// What happens next.
        retry: Retry,
        /// Backoff before it.
        delay: Duration,
        /// Consecutive failures so far.
        failures: u32,
    },
}

/// Settings of both watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Node watcher.
    pub nodes: WatcherConfig,
    /// Pod watcher.
    pub pods: WatcherConfig,
}

impl ClusterConfig {
    /// Defaults, with the two watchers' jitter seeded from `seed` (differently, so that
    /// their retries do not move in lockstep).
    pub fn with_seed(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        ClusterConfig {
            nodes: WatcherConfig {
                seed: rng.next_u64(),
                limits: Limits {
                    // Far above Kubernetes' 5,000-node scalability limit.
                    max_objects: 100_000,
                    ..Limits::default()
                },
                ..WatcherConfig::default()
            },
            pods: WatcherConfig {
                seed: rng.next_u64(),
                ..WatcherConfig::default()
            },
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig::with_seed(0)
    }
}

/// The Node and Pod watchers together, with one action queue and one timer.
#[derive(Debug)]
pub struct Cluster {
    nodes: NodeWatcher,
    pods: PodWatcher,
}

impl Cluster {
    /// Both watchers; their first list requests are queued at once.
    pub fn new(cfg: ClusterConfig, now: Instant) -> Self {
        Cluster {
            nodes: NodeWatcher::new(cfg.nodes, now),
            pods: PodWatcher::new(cfg.pods, now),
        }
    }

    /// The Node watcher.
    pub fn nodes(&self) -> &NodeWatcher {
        &self.nodes
    }

    /// The Pod watcher.
    pub fn pods(&self) -> &PodWatcher {
        &self.pods
    }

    /// Both caches as they are now. O(1); the watchers copy what they change afterwards.
    pub fn view(&self) -> ClusterView {
        ClusterView::new(
            self.nodes.cache().clone(),
            self.pods.cache().clone(),
            self.nodes.synced(),
            self.pods.synced(),
        )
    }

    /// Whether both initial lists have completed.
    pub fn synced(&self) -> bool {
        self.nodes.synced() && self.pods.synced()
    }

    /// Increases whenever either cache changes (to know when to publish a new view).
    pub fn generation(&self) -> u64 {
        self.nodes.generation() + self.pods.generation()
    }

    /// Next action of either watcher (Nodes first).
    pub fn poll_action(&mut self) -> Option<ClusterAction> {
        self.nodes.poll_action().or_else(|| self.pods.poll_action())
    }

    /// Earliest wake-up either watcher wants.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.nodes.poll_timeout(), self.pods.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs both watchers' due timers; early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.nodes.handle_timeout(now);
        self.pods.handle_timeout(now);
    }

    /// See [`Watcher::on_response`].
    pub fn on_response(&mut self, now: Instant, id: RequestId, status: StatusCode, body: &[u8]) {
        match id.resource {
            Resource::Nodes => self.nodes.on_response(now, id, status, body),
            Resource::Pods => self.pods.on_response(now, id, status, body),
        }
    }

    /// See [`Watcher::on_watch_event`].
    pub fn on_watch_event(&mut self, now: Instant, id: RequestId, line: &[u8]) {
        match id.resource {
            Resource::Nodes => self.nodes.on_watch_event(now, id, line),
            Resource::Pods => self.pods.on_watch_event(now, id, line),
        }
    }

    /// See [`Watcher::on_watch_end`].
    pub fn on_watch_end(&mut self, now: Instant, id: RequestId) {
        match id.resource {
            Resource::Nodes => self.nodes.on_watch_end(now, id),
            Resource::Pods => self.pods.on_watch_end(now, id),
        }
    }

    /// See [`Watcher::on_error`].
    pub fn on_error(&mut self, now: Instant, id: RequestId, reason: &str) {
        match id.resource {
            Resource::Nodes => self.nodes.on_error(now, id, reason),
            Resource::Pods => self.pods.on_error(now, id, reason),
        }
    }
}
