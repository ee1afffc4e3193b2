//! The whole server as one state machine: cluster watches, the scrape loop, storage,
//! self-metrics and the health state, driven by the runtime.
//!
//! Loop contract (what a runtime adapter does, and all it does):
//! 1. call [`Engine::handle_timeout`] when [`Engine::poll_timeout`] is reached (and once at
//!    start);
//! 2. drain [`Engine::poll_action`]: perform each request (kubelet or apiserver) and close
//!    what is cancelled;
//! 3. hand every completion back (`on_kubelet_*`, `on_apiserver_*`), then go to 2;
//! 4. serve API requests on any thread with a [`Reader`] (snapshot, objects, health and
//!    self-metrics, all published by the engine).
//!
//! Time comes in twice: a monotonic [`Instant`] schedules everything, a wall-clock
//! [`Timestamp`] stamps requests (a kubelet sample without timestamp gets the time its
//! request was sent). The engine never reads a clock.

use crate::api::health::HealthInputs;
use crate::api::selector::LabelSelector;
use crate::api::selfmetrics::SelfMetrics;
use crate::cluster::{
    self, Cluster, ClusterAction, ClusterConfig, ClusterRequest, ClusterView, ResolveConfig,
};
use crate::scrape::{self, Failure, RequestId as KubeletRequestId, Scheduler, Target};
use crate::storage::{Snapshot, Storage};
use crate::time::{Instant, Timestamp};
use http::StatusCode;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Everything the engine is configured with (from flags).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub scrape: scrape::Config,
    pub cluster: ClusterConfig,
    pub resolve: ResolveConfig,
    /// `--node-selector`: nodes not matching are not scraped (they still exist).
    pub node_selector: Option<LabelSelector>,
    /// Seeds the scrape delays (deterministic simulation).
    pub seed: u64,
}

impl EngineConfig {
    /// Binary defaults with the given resolution and seed.
    pub fn new(resolution: Duration, seed: u64) -> EngineConfig {
        EngineConfig {
            scrape: scrape::Config {
                resolution,
                ..scrape::Config::default()
            },
            cluster: ClusterConfig::with_seed(seed),
            resolve: ResolveConfig::default(),
            node_selector: None,
            seed,
        }
    }
}

/// Something for the runtime to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// GET from a kubelet; report with `on_kubelet_response` / `on_kubelet_error`.
    Kubelet(scrape::Request),
    /// Abort that kubelet request (its deadline passed); no completion is expected.
    CancelKubelet(KubeletRequestId),
    /// A request to the apiserver; report with the `on_apiserver_*` methods.
    Apiserver(ClusterRequest),
    /// Close that apiserver request or stream.
    CancelApiserver(cluster::RequestId),
}

/// What readers see; replaced whole on every publication.
#[derive(Debug, Clone)]
struct Published {
    snapshot: Arc<Snapshot>,
    view: ClusterView,
    last_tick_started: Option<Instant>,
    shutting_down: bool,
}

/// A cheap, cloneable, thread-safe handle for serving the API.
#[derive(Debug, Clone)]
pub struct Reader {
    published: Arc<RwLock<Arc<Published>>>,
    metrics: Arc<SelfMetrics>,
    resolution: Duration,
}

/// One consistent reading for one API request.
#[derive(Debug, Clone)]
pub struct Reading {
    pub snapshot: Arc<Snapshot>,
    pub view: ClusterView,
    pub health: HealthInputs,
}

impl Reader {
    /// The current snapshot, objects and health state; `now` is the caller's monotonic time.
    pub fn read(&self, now: Instant) -> Reading {
        let published = match self.published.read() {
            Ok(guard) => Arc::clone(&guard),
            // A writer panicked mid-swap; the last value is still whole (swaps are atomic).
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        let health = HealthInputs {
            node_informer_synced: published.view.nodes_synced(),
            pod_informer_synced: published.view.pods_synced(),
            storage_ready: published.snapshot.ready(),
            last_tick_started: published.last_tick_started.map(Instant::since_origin),
            now: now.since_origin(),
            resolution: self.resolution,
            shutting_down: published.shutting_down,
            log_blocked: false,
            post_start_hooks_done: true,
        };
        Reading {
            snapshot: Arc::clone(&published.snapshot),
            view: published.view.clone(),
            health,
        }
    }

    pub fn metrics(&self) -> &SelfMetrics {
        &self.metrics
    }
}

/// The server's state machine.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    cluster: Cluster,
    scheduler: Scheduler,
    storage: Storage,
    metrics: Arc<SelfMetrics>,
    published: Arc<RwLock<Arc<Published>>>,
    published_generation: u64,
    actions: VecDeque<Action>,
    shutting_down: bool,
}

impl Engine {
    pub fn new(config: EngineConfig, now: Instant) -> Engine {
        let cluster = Cluster::new(config.cluster.clone(), now);
        let scheduler = Scheduler::new(config.scrape.clone(), config.seed);
        let storage = Storage::new(config.scrape.resolution);
        let metrics = Arc::new(SelfMetrics::new(config.scrape.resolution));
        let published = Published {
            snapshot: storage.snapshot(),
            view: cluster.view(),
            last_tick_started: None,
            shutting_down: false,
        };
        Engine {
            config,
            cluster,
            scheduler,
            storage,
            metrics,
            published: Arc::new(RwLock::new(Arc::new(published))),
            published_generation: u64::MAX,
            actions: VecDeque::new(),
            shutting_down: false,
        }
    }

    pub fn reader(&self) -> Reader {
        Reader {
            published: Arc::clone(&self.published),
            metrics: Arc::clone(&self.metrics),
            resolution: self.config.scrape.resolution,
        }
    }

    /// Whether both informers have synced (upstream opens its port only then).
    pub fn synced(&self) -> bool {
        self.cluster.synced()
    }

    /// SIGTERM: `/readyz` fails from now on; the runtime drains and exits.
    pub fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        self.publish(true);
    }

    /// Advances timers: watch backoffs and deadlines, kubelet deadlines, scrape ticks.
    pub fn handle_timeout(&mut self, now: Instant, wall: Timestamp) {
        self.cluster.handle_timeout(now);
        self.start_when_synced(now);
        for id in self.scheduler.handle_timeout(now) {
            self.actions.push_back(Action::CancelKubelet(id));
        }
        self.finish_cycle(now);
        if self.scheduler.tick_due(now) {
            self.begin_cycle(now, wall);
        }
        self.publish(false);
    }

    fn begin_cycle(&mut self, now: Instant, wall: Timestamp) {
        let view = self.cluster.view();
        let mut targets = Vec::new();
        let mut unresolved = Vec::new();
        for node in view.nodes() {
            if self
                .config
                .node_selector
                .as_ref()
                .is_some_and(|s| !s.matches(&node.labels))
            {
                continue;
            }
            match cluster::resolve(node, &self.config.resolve) {
                Ok(t) => targets.push(Target {
                    node: node.name.to_string(),
                    host: t.host,
                    port: t.port,
                    resource_path: t.path,
                    ready: node.ready,
                }),
                Err(e) => unresolved.push((node.name.to_string(), e.to_string())),
            }
        }
        self.scheduler.begin_cycle(now, targets, unresolved, wall);
        self.finish_cycle(now);
        self.publish(true);
    }

    /// Stores a finished cycle and records its self-metrics.
    fn finish_cycle(&mut self, now: Instant) {
        let Some(cycle) = self.scheduler.poll_cycle(now) else {
            return;
        };
        for outcome in &cycle.outcomes {
            self.metrics.observe_kubelet_request(
                &outcome.node,
                outcome.duration,
                outcome.result.is_ok(),
                outcome.sent,
            );
        }
        let snapshot = self.storage.store(cycle.batches);
        self.metrics
            .observe_tick(cycle.finished.saturating_duration_since(cycle.started));
        self.metrics.set_storage_points(snapshot.points());
        let view = self.cluster.view();
        self.metrics.retain_nodes(&|node| view.node(node).is_some());
        self.publish(true);
    }

    /// The next thing for the runtime to do, if any.
    pub fn poll_action(&mut self, now: Instant, wall: Timestamp) -> Option<Action> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        while let Some(action) = self.cluster.poll_action() {
            match action {
                ClusterAction::Send(request) => return Some(Action::Apiserver(request)),
                ClusterAction::Cancel(id) => return Some(Action::CancelApiserver(id)),
                // Logged by the runtime from its own view of failures; nothing to do here.
                ClusterAction::Event(_) => continue,
            }
        }
        self.scheduler.poll_request(now, wall).map(Action::Kubelet)
    }

    /// When to call [`Engine::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.cluster.poll_timeout(), self.scheduler.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn on_kubelet_response(
        &mut self,
        id: KubeletRequestId,
        now: Instant,
        status: u16,
        body: &[u8],
    ) {
        self.scheduler.on_response(id, now, status, body);
        self.finish_cycle(now);
    }

    pub fn on_kubelet_error(&mut self, id: KubeletRequestId, now: Instant, failure: Failure) {
        self.scheduler.on_error(id, now, failure);
        self.finish_cycle(now);
    }

    pub fn on_apiserver_response(
        &mut self,
        id: cluster::RequestId,
        now: Instant,
        status: StatusCode,
        body: &[u8],
    ) {
        self.cluster.on_response(now, id, status, body);
        self.start_when_synced(now);
        self.publish(false);
    }

    pub fn on_apiserver_line(&mut self, id: cluster::RequestId, now: Instant, line: &[u8]) {
        self.cluster.on_watch_event(now, id, line);
        // Readers see watch changes at once (a new view is only taken when the caches
        // changed, so a quiet stream costs nothing).
        self.publish(false);
        self.start_when_synced(now);
    }

    pub fn on_apiserver_end(&mut self, id: cluster::RequestId, now: Instant) {
        self.cluster.on_watch_end(now, id);
        self.start_when_synced(now);
        self.publish(false);
    }

    pub fn on_apiserver_error(&mut self, id: cluster::RequestId, now: Instant, reason: &str) {
        self.cluster.on_error(now, id, reason);
    }

    /// Scraping starts as soon as both informers have synced; the first tick is then due
    /// at once, which `poll_timeout` reports.
    fn start_when_synced(&mut self, now: Instant) {
        if self.cluster.synced() {
            self.scheduler.start(now);
        }
    }

    /// Publishes a new reading for readers. The cluster view is only taken again when the
    /// caches changed (taking it makes the next change copy a namespace's map), unless
    /// `force` (the snapshot or health state changed).
    fn publish(&mut self, force: bool) {
        let generation = self.cluster.generation();
        if !force && generation == self.published_generation {
            return;
        }
        self.published_generation = generation;
        let published = Published {
            snapshot: self.storage.snapshot(),
            view: self.cluster.view(),
            last_tick_started: self.scheduler.last_started(),
            shutting_down: self.shutting_down,
        };
        match self.published.write() {
            Ok(mut guard) => *guard = Arc::new(published),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(published),
        }
    }
}
