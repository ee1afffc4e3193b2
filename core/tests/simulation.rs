//! Deterministic simulation of the whole server: the [`Engine`] driven against a fake
//! kube-apiserver (`testdata::apiserver`) and the generator's cluster as kubelets, on a
//! virtual monotonic clock and a virtual wall clock. No sockets, no threads, no real time.
//!
//! Every kubelet request is answered by rendering the generator's payload for the node
//! whose 127.x.y.z address is the request's host, at the request's wall time, after a
//! seeded per-node latency, unless a fault is injected for that node (down, slow past the
//! deadline, HTTP 500, garbage, truncated, oversize, 404 on `/metrics/resource`).
//!
//! After each stored tick the API answers (`serve_resource` over `Reader::read`) are
//! checked against the model: a reference implementation of the storage rules (spec
//! `kubelet-and-storage.md` section 4) fed with what a correct decoder makes of each
//! successful payload says exactly which nodes and pods are served, with which timestamp
//! and window; every served CPU value is within 1% (or 2 nanocores) of the generator's true
//! rate and every memory value is the true working set at the sample time.

use metrics_core::api::router::{Context, resource_route, serve_resource};
use metrics_core::cluster::{self, AddressType, RequestKind};
use metrics_core::engine::{Action, Engine, EngineConfig, Reader, Reading};
use metrics_core::http::{Method, StatusCode, header};
use metrics_core::kubelet::MetricsPoint;
use metrics_core::quantity::parse_nanos;
use metrics_core::scrape::{self, Failure};
use metrics_core::storage::Snapshot;
use metrics_core::time::{Instant, Timestamp, go_duration};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use testdata::apiserver::{Apiserver, Collection, Fault, Outage, Reply, WatchId, WatchOutput};
use testdata::generator::{Cluster, ClusterSpec, Format};

const RESOLUTION: Duration = Duration::from_secs(15);
const KUBELET_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest kubelet body the engine accepts in the simulation.
const MAX_BODY: usize = 1 << 20;
/// Below this a container is never fresh (spec 4.3).
const MIN_FRESH: Duration = Duration::from_secs(10);
const API_LATENCY: Duration = Duration::from_millis(3);
/// The monotonic clock's reading when the simulation starts (any value would do).
const START: Instant = Instant::from_nanos(1_000_000_000_000);
const RESOURCE_PATH: &str = "/metrics/resource";
const SUMMARY_PATH: &str = "/stats/summary?only_cpu_and_memory=true";
const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
const PODS: &str = "/apis/metrics.k8s.io/v1beta1/pods";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------------------
// The reference model of the storage rules.

/// What one successful scrape of a node yields, as a correct decoder sees it, with the
/// true rates at the time of the request.
#[derive(Debug, Clone)]
struct RefScrape {
    node: Option<MetricsPoint>,
    node_rate: u64,
    /// (namespace, pod) -> container -> (point, true rate).
    pods: BTreeMap<(String, String), BTreeMap<String, (MetricsPoint, u64)>>,
}

#[derive(Debug, Clone)]
struct RefContainer {
    last: MetricsPoint,
    prev: Option<MetricsPoint>,
    rate: u64,
}

#[derive(Debug, Clone)]
struct RefNode {
    last: Option<MetricsPoint>,
    prev: Option<MetricsPoint>,
    /// True node rate when `last` and `prev` were scraped.
    rate_last: u64,
    rate_prev: u64,
    pods: BTreeMap<(String, String), BTreeMap<String, RefContainer>>,
}

/// A pod's served timestamp and window, and its served containers with their true rates.
type PodExpect = (Timestamp, Duration, Vec<(String, Expect, u64)>);

/// A value the API must serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expect {
    timestamp: Timestamp,
    window: Duration,
    cpu: u64,
    memory: u64,
}

fn start_or_min(p: &MetricsPoint) -> Timestamp {
    p.start_time.unwrap_or(Timestamp::MIN)
}

/// Spec 4.4.
fn usage(last: &MetricsPoint, prev: &MetricsPoint) -> Option<Expect> {
    if start_or_min(last) < start_or_min(prev) || last.cumulative_cpu_ns < prev.cumulative_cpu_ns {
        return None;
    }
    let window = last.timestamp.duration_since(prev.timestamp)?;
    let seconds = window.as_secs() as f64 + f64::from(window.subsec_nanos()) / 1e9;
    Some(Expect {
        timestamp: last.timestamp,
        window,
        cpu: ((last.cumulative_cpu_ns - prev.cumulative_cpu_ns) as f64 / seconds) as u64,
        memory: last.memory_working_set_bytes,
    })
}

/// Spec 4.2.
fn node_prev(new: &MetricsPoint, old: &RefNode) -> Option<MetricsPoint> {
    let last = old.last?;
    if new.timestamp > last.timestamp {
        Some(last)
    } else {
        old.prev.filter(|p| p.timestamp < new.timestamp)
    }
}

/// Spec 4.3 with the recommended behaviour: the fresh-container rule first; otherwise
/// only a real earlier point of the same container that did not restart since.
fn container_prev(new: &MetricsPoint, old: Option<&RefContainer>) -> Option<MetricsPoint> {
    if let Some(start) = new.start_time
        && let Some(age) = new.timestamp.duration_since(start)
        && age < RESOLUTION
        && age >= MIN_FRESH
    {
        return Some(MetricsPoint {
            start_time: Some(start),
            timestamp: start,
            cumulative_cpu_ns: 0,
            memory_working_set_bytes: new.memory_working_set_bytes,
        });
    }
    let old = old?;
    if start_or_min(new) >= old.last.timestamp {
        return None;
    }
    if new.timestamp > old.last.timestamp {
        return Some(old.last);
    }
    old.prev
        .filter(|p| p.timestamp < new.timestamp && start_or_min(new) <= p.timestamp)
}

#[derive(Debug, Default)]
struct Reference {
    nodes: BTreeMap<String, RefNode>,
}

impl Reference {
    /// Stores one tick: the successful scrapes; every other node is forgotten (4.6).
    fn store(&mut self, scrapes: BTreeMap<String, RefScrape>) {
        let mut nodes = BTreeMap::new();
        for (name, s) in scrapes {
            let old = self.nodes.get(&name);
            let prev = match (&s.node, old) {
                (Some(p), Some(o)) => node_prev(p, o),
                _ => None,
            };
            let rate_prev = match (prev, old) {
                (Some(p), Some(o)) if Some(p) == o.last => o.rate_last,
                (Some(_), Some(o)) => o.rate_prev,
                _ => s.node_rate,
            };
            let mut pods = BTreeMap::new();
            for (key, containers) in s.pods {
                let old_pod = old.and_then(|o| o.pods.get(&key));
                let mut stored = BTreeMap::new();
                for (cname, (point, rate)) in containers {
                    let prev = container_prev(&point, old_pod.and_then(|p| p.get(&cname)));
                    stored.insert(
                        cname,
                        RefContainer {
                            last: point,
                            prev,
                            rate,
                        },
                    );
                }
                pods.insert(key, stored);
            }
            nodes.insert(
                name,
                RefNode {
                    last: s.node,
                    prev,
                    rate_last: s.node_rate,
                    rate_prev,
                    pods,
                },
            );
        }
        self.nodes = nodes;
    }

    fn node(&self, name: &str) -> Option<(Expect, u64, u64)> {
        let n = self.nodes.get(name)?;
        let u = usage(n.last.as_ref()?, n.prev.as_ref()?)?;
        Some((u, n.rate_prev, n.rate_last))
    }

    /// A pod's served timestamp and window, and its served containers (name order) with
    /// their true rates.
    fn pod(&self, namespace: &str, name: &str) -> Option<PodExpect> {
        let key = (namespace.to_owned(), name.to_owned());
        let pod = self.nodes.values().find_map(|n| n.pods.get(&key))?;
        if pod.is_empty() || pod.values().any(|c| c.prev.is_none()) {
            return None;
        }
        let served: Vec<(String, Expect, u64)> = pod
            .iter()
            .filter_map(|(n, c)| {
                c.prev
                    .and_then(|p| usage(&c.last, &p))
                    .map(|u| (n.clone(), u, c.rate))
            })
            .collect();
        let first = served.iter().min_by(|a, b| {
            a.1.timestamp
                .cmp(&b.1.timestamp)
                .then_with(|| b.1.window.cmp(&a.1.window))
        })?;
        Some((first.1.timestamp, first.1.window, served))
    }
}

// ---------------------------------------------------------------------------------------
// The simulation.

/// A kubelet misbehaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KubeletFault {
    /// Connection refused.
    Down,
    /// Never answers: the engine must cancel at the deadline.
    Slow,
    /// HTTP 500.
    Error500,
    /// HTTP 200 with something that is not a payload.
    Garbage,
    /// HTTP 200 with the payload cut inside a series' labels.
    Truncated,
    /// HTTP 200 with a valid payload padded past the body limit.
    Oversize,
}

#[derive(Debug)]
enum KubeletReply {
    Response { status: u16, body: Vec<u8> },
    Error(Failure),
}

#[derive(Debug)]
enum Event {
    Kubelet {
        id: scrape::RequestId,
        reply: KubeletReply,
    },
    ApiComplete {
        id: cluster::RequestId,
        status: u16,
        body: Vec<u8>,
    },
    ApiUnreachable {
        id: cluster::RequestId,
        reason: String,
    },
    /// The watch's `timeoutSeconds` passed: the apiserver ends it.
    WatchTimeout {
        id: cluster::RequestId,
        watch: WatchId,
    },
}

#[derive(Debug)]
struct Attempt {
    node: String,
    /// What storage gets if the answer is delivered (`None`: the answer is a failure).
    expected: Option<RefScrape>,
    delivered: bool,
}

/// One kubelet request as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KubeletLog {
    at: Instant,
    wall: Timestamp,
    node: String,
    path: String,
    deadline: Instant,
}

/// One stored tick.
#[derive(Debug, Clone)]
struct CycleLog {
    at: Instant,
    /// Nodes whose scrape succeeded.
    scraped: BTreeSet<String>,
}

/// The last checked answers, parsed.
#[derive(Debug, Default, Clone)]
struct Answers {
    nodes: BTreeMap<String, Value>,
    pods: BTreeMap<(String, String), Value>,
}

#[derive(Debug, Clone)]
struct SimConfig {
    cluster_seed: u64,
    engine_seed: u64,
    nodes: usize,
    pods_per_node: usize,
    max_containers: usize,
    pods_page_size: u32,
    /// `--node-selector`.
    node_selector: Option<&'static str>,
}

impl SimConfig {
    fn new(seed: u64, nodes: usize, pods_per_node: usize) -> SimConfig {
        SimConfig {
            cluster_seed: seed,
            engine_seed: seed ^ 0x5eed,
            nodes,
            pods_per_node,
            max_containers: 3,
            pods_page_size: 500,
            node_selector: None,
        }
    }
}

struct Sim {
    seed: u64,
    engine: Engine,
    reader: Reader,
    cluster: Cluster,
    api: Apiserver,
    now: Instant,
    /// Wall clock = epoch + (now - START) + offset.
    wall_offset_ns: i64,
    events: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    watches: BTreeMap<cluster::RequestId, WatchId>,
    attempts: BTreeMap<scrape::RequestId, Attempt>,
    faults: BTreeMap<String, KubeletFault>,
    /// Kubelets without `/metrics/resource` (404).
    old_kubelets: BTreeSet<String>,
    /// Slow requests still waiting for their cancellation: id -> (deadline, node).
    slow: BTreeMap<scrape::RequestId, (Instant, String)>,
    reference: Reference,
    last_snapshot: Arc<Snapshot>,
    last_tick: Option<Duration>,
    /// Everything observable, in order.
    kubelet_log: Vec<KubeletLog>,
    cancelled: Vec<(Instant, String)>,
    api_log: Vec<(Instant, String)>,
    tick_starts: Vec<Instant>,
    cycles: Vec<CycleLog>,
    transcript: Vec<u8>,
    answers: Answers,
    /// The engine's view must equal the apiserver's objects at each check.
    expect_in_sync: bool,
    /// Compact the apiserver's history when the next this many continued list pages are
    /// asked for (their tokens then expire).
    compact_on_continue: u32,
    checks: usize,
}

/// Labels as sorted (key, value) pairs.
type LabelList = Vec<(String, String)>;

fn address(a: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Sim {
    fn new(cfg: SimConfig) -> Sim {
        let spec = ClusterSpec {
            seed: cfg.cluster_seed,
            nodes: cfg.nodes,
            pods_per_node: cfg.pods_per_node,
            max_containers_per_pod: cfg.max_containers,
            epoch: ClusterSpec::DEFAULT_EPOCH,
        };
        let cluster = Cluster::new(&spec);
        let api = Apiserver::from_cluster(&cluster);
        let mut config = EngineConfig::new(RESOLUTION, cfg.engine_seed);
        config.scrape.request_timeout = KUBELET_TIMEOUT;
        config.scrape.max_response_bytes = MAX_BODY;
        config.resolve.preferred_types = vec![AddressType::InternalIP, AddressType::Hostname];
        config.cluster.pods.page_size = cfg.pods_page_size;
        config.node_selector = cfg.node_selector.map(|s| {
            metrics_core::api::selector::LabelSelector::parse(s).expect("valid node selector")
        });
        let engine = Engine::new(config, START);
        let reader = engine.reader();
        let last_snapshot = reader.read(START).snapshot;
        let mut sim = Sim {
            seed: cfg.cluster_seed,
            engine,
            reader,
            cluster,
            api,
            now: START,
            wall_offset_ns: 0,
            events: BTreeMap::new(),
            seq: 0,
            watches: BTreeMap::new(),
            attempts: BTreeMap::new(),
            faults: BTreeMap::new(),
            old_kubelets: BTreeSet::new(),
            slow: BTreeMap::new(),
            reference: Reference::default(),
            last_snapshot,
            last_tick: None,
            kubelet_log: Vec::new(),
            cancelled: Vec::new(),
            api_log: Vec::new(),
            tick_starts: Vec::new(),
            cycles: Vec::new(),
            transcript: Vec::new(),
            answers: Answers::default(),
            expect_in_sync: true,
            compact_on_continue: 0,
            checks: 0,
        };
        // The loop contract: one `handle_timeout` at start.
        let wall = sim.wall();
        sim.engine.handle_timeout(sim.now, wall);
        sim.after_engine_call();
        sim
    }

    fn wall(&self) -> Timestamp {
        let elapsed = self.now.saturating_duration_since(START).as_nanos() as i64;
        Timestamp::from_unix_nanos(
            ClusterSpec::DEFAULT_EPOCH.unix_nanos() + elapsed + self.wall_offset_ns,
        )
    }

    fn step_wall_clock(&mut self, by_secs: i64) {
        self.wall_offset_ns += by_secs * 1_000_000_000;
    }

    /// Seeded per-node kubelet latency, 5..=250 ms.
    fn latency(&self, node: &str) -> Duration {
        let mut h = self.seed;
        for b in node.bytes() {
            h = mix(h ^ u64::from(b));
        }
        Duration::from_millis(5 + h % 246)
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    // ---- driving ---------------------------------------------------------------------

    /// Runs until `target` (or until `stop` holds after some step).
    fn advance(&mut self, target: Instant, stop: &dyn Fn(&Sim) -> bool) {
        let mut spins = 0u32;
        loop {
            self.pump();
            if stop(self) {
                return;
            }
            let next_event = self.events.keys().next().map(|k| k.0);
            let next = [next_event, self.engine.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= target => {
                    if t <= self.now {
                        spins += 1;
                        assert!(
                            spins < 10_000,
                            "engine livelock at {:?}: poll_timeout stays at {:?}",
                            self.now,
                            self.engine.poll_timeout()
                        );
                    } else {
                        spins = 0;
                        self.now = t;
                    }
                    self.fire();
                }
                _ => {
                    self.now = self.now.max(target);
                    self.pump();
                    return;
                }
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let target = self.now.saturating_add(d);
        self.advance(target, &|_| false);
    }

    /// Runs until `n` more ticks have been stored; stops right after the last store.
    fn run_cycles(&mut self, n: usize) {
        let want = self.cycles.len() + n;
        let limit = self.now.saturating_add(RESOLUTION * (n as u32 + 2) * 4);
        self.advance(limit, &|s: &Sim| s.cycles.len() >= want);
        assert!(
            self.cycles.len() >= want,
            "only {} of {want} ticks stored by {:?}",
            self.cycles.len(),
            self.now
        );
    }

    fn fire(&mut self) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let event = entry.remove();
            self.deliver(event);
        }
        if self.engine.poll_timeout().is_some_and(|t| t <= self.now) {
            let wall = self.wall();
            self.engine.handle_timeout(self.now, wall);
            self.after_engine_call();
        }
    }

    fn deliver(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Kubelet { id, reply } => {
                if let Some(a) = self.attempts.get_mut(&id) {
                    a.delivered = true;
                }
                match reply {
                    KubeletReply::Response { status, body } => {
                        self.engine.on_kubelet_response(id, now, status, &body)
                    }
                    KubeletReply::Error(f) => self.engine.on_kubelet_error(id, now, f),
                }
            }
            Event::ApiComplete { id, status, body } => {
                let status = StatusCode::from_u16(status).expect("a valid status");
                self.engine.on_apiserver_response(id, now, status, &body);
            }
            Event::ApiUnreachable { id, reason } => {
                self.engine.on_apiserver_error(id, now, &reason);
            }
            Event::WatchTimeout { id, watch } => {
                if self.watches.get(&id) == Some(&watch) {
                    self.api.close_watch(watch);
                }
            }
        }
        self.after_engine_call();
    }

    /// Performs every action and delivers every watch line until nothing moves.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut progress = false;
            loop {
                let wall = self.wall();
                let Some(action) = self.engine.poll_action(self.now, wall) else {
                    break;
                };
                progress = true;
                self.perform(action);
            }
            let open: Vec<(cluster::RequestId, WatchId)> =
                self.watches.iter().map(|(r, w)| (*r, *w)).collect();
            for (rid, wid) in open {
                while self.watches.get(&rid) == Some(&wid) {
                    let Some(out) = self.api.poll_watch(wid) else {
                        break;
                    };
                    progress = true;
                    match out {
                        WatchOutput::Line(line) => {
                            self.engine.on_apiserver_line(rid, self.now, &line)
                        }
                        WatchOutput::End => {
                            self.watches.remove(&rid);
                            self.engine.on_apiserver_end(rid, self.now);
                        }
                        WatchOutput::Broken(reason) => {
                            self.watches.remove(&rid);
                            self.engine.on_apiserver_error(rid, self.now, &reason);
                        }
                    }
                    self.after_engine_call();
                }
            }
            if !progress {
                return;
            }
        }
        panic!("no quiescence at {:?}", self.now);
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Kubelet(req) => self.kubelet_request(req),
            Action::CancelKubelet(id) => {
                let slow = self.slow.remove(&id);
                if let Some((deadline, _)) = &slow {
                    assert_eq!(
                        self.now, *deadline,
                        "a slow request is cancelled at its deadline"
                    );
                }
                self.events
                    .retain(|_, e| !matches!(e, Event::Kubelet { id: i, .. } if *i == id));
                // The engine may cancel after storing the tick (the attempt is gone then).
                let node = match (self.attempts.get_mut(&id), slow) {
                    (Some(a), _) => {
                        a.expected = None;
                        a.node.clone()
                    }
                    (None, Some((_, node))) => node,
                    (None, None) => String::new(),
                };
                self.cancelled.push((self.now, node));
            }
            Action::Apiserver(req) => self.apiserver_request(req),
            Action::CancelApiserver(id) => {
                if let Some(w) = self.watches.remove(&id) {
                    self.api.cancel_watch(w);
                }
                self.events.retain(|_, e| match e {
                    Event::ApiComplete { id: i, .. }
                    | Event::ApiUnreachable { id: i, .. }
                    | Event::WatchTimeout { id: i, .. } => *i != id,
                    Event::Kubelet { .. } => true,
                });
            }
        }
    }

    fn apiserver_request(&mut self, req: cluster::ClusterRequest) {
        assert_eq!(req.method, Method::GET);
        let accept = req
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.api_log.push((self.now, req.path_and_query.clone()));
        if self.compact_on_continue > 0 && req.path_and_query.contains("continue=") {
            self.compact_on_continue -= 1;
            self.api.compact();
        }
        let at = self.now.saturating_add(API_LATENCY);
        match self.api.get(&req.path_and_query, accept.as_deref()) {
            Reply::Complete { status, body, .. } => {
                self.schedule(
                    at,
                    Event::ApiComplete {
                        id: req.id,
                        status,
                        body,
                    },
                );
            }
            Reply::Watch(watch) => {
                assert_eq!(req.kind, RequestKind::Watch, "{}", req.path_and_query);
                self.watches.insert(req.id, watch);
                if let Some(t) = self.api.watch_info(watch).and_then(|w| w.timeout) {
                    let at = self.now.saturating_add(t);
                    self.schedule(at, Event::WatchTimeout { id: req.id, watch });
                }
            }
            Reply::Unreachable(reason) => {
                self.schedule(at, Event::ApiUnreachable { id: req.id, reason });
            }
        }
    }

    fn kubelet_request(&mut self, req: scrape::Request) {
        let wall = self.wall();
        self.kubelet_log.push(KubeletLog {
            at: self.now,
            wall,
            node: req.node.clone(),
            path: req.path_and_query.clone(),
            deadline: req.deadline,
        });
        assert_eq!(req.port, 10250);
        let at = self.now.saturating_add(self.latency(&req.node));
        let index = self
            .cluster
            .nodes()
            .iter()
            .position(|n| address(n.address) == req.host);
        let mut attempt = Attempt {
            node: req.node.clone(),
            expected: None,
            delivered: false,
        };
        let reply = match index {
            None => Some(KubeletReply::Error(Failure::Transport(format!(
                "dial tcp {}:10250: connect: no route to host",
                req.host
            )))),
            Some(i) => {
                assert_eq!(self.cluster.nodes()[i].name, req.node, "host of the node");
                let format = match req.path_and_query.as_str() {
                    RESOURCE_PATH => Format::Resource,
                    SUMMARY_PATH => Format::Summary,
                    other => panic!("unexpected kubelet path {other}"),
                };
                if format == Format::Resource && self.old_kubelets.contains(&req.node) {
                    Some(KubeletReply::Response {
                        status: 404,
                        body: b"404 page not found\n".to_vec(),
                    })
                } else {
                    let mut body = Vec::new();
                    self.cluster.render(i, wall, format, &mut body);
                    match self.faults.get(&req.node).copied() {
                        None => {
                            attempt.expected = Some(self.expected_scrape(i, wall, format));
                            Some(KubeletReply::Response { status: 200, body })
                        }
                        Some(KubeletFault::Down) => Some(KubeletReply::Error(Failure::Transport(
                            format!("dial tcp {}:10250: connect: connection refused", req.host),
                        ))),
                        Some(KubeletFault::Slow) => {
                            self.slow.insert(req.id, (req.deadline, req.node.clone()));
                            None
                        }
                        Some(KubeletFault::Error500) => Some(KubeletReply::Response {
                            status: 500,
                            body: b"Internal Server Error".to_vec(),
                        }),
                        Some(KubeletFault::Garbage) => Some(KubeletReply::Response {
                            status: 200,
                            body: b"<html><body>502 Bad Gateway</body></html>\n".to_vec(),
                        }),
                        Some(KubeletFault::Truncated) => Some(KubeletReply::Response {
                            status: 200,
                            body: truncate(body, format),
                        }),
                        Some(KubeletFault::Oversize) => {
                            // Valid text: comment lines would decode fine if not refused.
                            while body.len() <= MAX_BODY {
                                body.extend_from_slice(
                                    b"# padding padding padding padding padding padding\n",
                                );
                            }
                            Some(KubeletReply::Response { status: 200, body })
                        }
                    }
                }
            }
        };
        self.attempts.insert(req.id, attempt);
        if let Some(reply) = reply {
            self.schedule(at, Event::Kubelet { id: req.id, reply });
        }
    }

    /// What a correct decoder makes of the payload of node `i` at `wall`, with true rates.
    fn expected_scrape(&self, i: usize, wall: Timestamp, format: Format) -> RefScrape {
        let batch = self.cluster.expected_batch(i, wall, format);
        let node = &self.cluster.nodes()[i];
        let mut pods = BTreeMap::new();
        for p in batch.pods() {
            let pi = self
                .cluster
                .find_pod(i, p.namespace, p.name)
                .expect("the pod exists");
            let model = &node.pods()[pi];
            let containers = p
                .containers()
                .map(|c| {
                    let rate = model
                        .containers()
                        .iter()
                        .find(|m| m.name == c.name)
                        .expect("the container exists")
                        .cpu_nanocores;
                    (c.name.to_owned(), (c.point, rate))
                })
                .collect();
            pods.insert((p.namespace.to_owned(), p.name.to_owned()), containers);
        }
        RefScrape {
            node: batch.node,
            node_rate: self.cluster.true_node_cpu_nanocores(i),
            pods,
        }
    }

    /// After every call into the engine: notices a stored tick (a new snapshot), feeds the
    /// reference model and checks the API.
    fn after_engine_call(&mut self) {
        let reading = self.reader.read(self.now);
        if reading.health.last_tick_started != self.last_tick {
            self.last_tick = reading.health.last_tick_started;
            if let Some(t) = self.last_tick {
                self.tick_starts
                    .push(Instant::from_nanos(t.as_nanos() as u64));
            }
        }
        if Arc::ptr_eq(&reading.snapshot, &self.last_snapshot) {
            return;
        }
        self.last_snapshot = Arc::clone(&reading.snapshot);
        // The latest attempt of each node in this tick decides (a 404 is followed by a
        // Summary request).
        let mut latest: BTreeMap<String, Attempt> = BTreeMap::new();
        for (_, a) in std::mem::take(&mut self.attempts) {
            latest.insert(a.node.clone(), a);
        }
        let scrapes: BTreeMap<String, RefScrape> = latest
            .into_iter()
            .filter(|(_, a)| a.delivered)
            .filter_map(|(n, a)| a.expected.map(|e| (n, e)))
            .collect();
        self.cycles.push(CycleLog {
            at: self.now,
            scraped: scrapes.keys().cloned().collect(),
        });
        self.reference.store(scrapes);
        self.check();
    }

    // ---- checks ------------------------------------------------------------------------

    fn serve(&self, reading: &Reading, target: &str) -> (u16, Vec<u8>) {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let route = resource_route(path).expect("a resource path");
        let ignore = |_: f64| {};
        let ctx = Context {
            now: self.wall(),
            snapshot: &reading.snapshot,
            objects: &reading.view,
            observe_freshness: &ignore,
        };
        let mut body = Vec::new();
        let head = serve_resource(
            &route,
            &Method::GET,
            Some("application/json"),
            None,
            query,
            &ctx,
            &mut body,
        );
        (head.status().as_u16(), body)
    }

    /// The engine's objects equal the apiserver's (Running pods only).
    fn assert_view_in_sync(&self, reading: &Reading) {
        let view = &reading.view;
        let ours: Vec<(String, LabelList)> = view
            .nodes()
            .map(|n| {
                (
                    n.name.to_string(),
                    n.labels
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                )
            })
            .collect();
        let theirs: Vec<(String, LabelList)> = self
            .api
            .nodes()
            .map(|n| (n.name.clone(), n.labels.clone().into_iter().collect()))
            .collect();
        assert_eq!(ours, theirs, "nodes at {:?}", self.now);
        let ours: Vec<(String, String, LabelList)> = view
            .pods()
            .map(|p| {
                (
                    p.namespace.to_string(),
                    p.name.to_string(),
                    p.labels
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                )
            })
            .collect();
        let theirs: Vec<(String, String, LabelList)> = self
            .api
            .pods()
            .filter(|p| p.phase == "Running")
            .map(|p| {
                (
                    p.namespace.clone(),
                    p.name.clone(),
                    p.labels.clone().into_iter().collect(),
                )
            })
            .collect();
        assert_eq!(ours, theirs, "pods at {:?}", self.now);
    }

    /// Checks every list and get against the reference model and the generator's truth.
    fn check(&mut self) {
        self.checks += 1;
        let reading = self.reader.read(self.now);
        if self.expect_in_sync {
            self.assert_view_in_sync(&reading);
        }
        let at = format!("at {:?} (check {})", self.now, self.checks);
        let mut answers = Answers::default();

        // Nodes.
        let (status, body) = self.serve(&reading, NODES);
        assert_eq!(status, 200, "{at}");
        let v: Value = serde_json::from_slice(&body).expect("node list JSON");
        let items = v["items"].as_array().expect("items");
        let mut expected_names = Vec::new();
        for node in reading.view.nodes() {
            if let Some(e) = self.reference.node(&node.name) {
                expected_names.push((node.name.to_string(), e));
            }
        }
        let names: Vec<&str> = items
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap_or(""))
            .collect();
        let want: Vec<&str> = expected_names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, want, "served nodes {at}");
        for (item, (name, (e, rate_prev, rate_last))) in items.iter().zip(&expected_names) {
            let what = format!("node {name} {at}");
            check_times(item, e, &what);
            check_usage(&item["usage"], e, (*rate_prev, *rate_last), &what);
            let labels = reading
                .view
                .node(name)
                .map(|n| labels_json(n.labels.iter()));
            assert_eq!(Some(&item["metadata"]["labels"]), labels.as_ref(), "{what}");
            answers.nodes.insert(name.clone(), item.clone());
        }
        self.transcript.extend_from_slice(&body);
        for node in reading.view.nodes() {
            let (status, body) = self.serve(&reading, &format!("{NODES}/{}", node.name));
            match answers.nodes.get(&*node.name) {
                Some(listed) => {
                    assert_eq!(status, 200, "GET node {} {at}", node.name);
                    let v: Value = serde_json::from_slice(&body).expect("node JSON");
                    assert_eq!(v["kind"], "NodeMetrics");
                    for k in ["timestamp", "window", "usage"] {
                        assert_eq!(v[k], listed[k], "GET node {} {k} {at}", node.name);
                    }
                }
                None => assert_eq!(status, 404, "GET node {} {at}", node.name),
            }
        }

        // Pods, all namespaces.
        let (status, body) = self.serve(&reading, PODS);
        assert_eq!(status, 200, "{at}");
        let v: Value = serde_json::from_slice(&body).expect("pod list JSON");
        let items = v["items"].as_array().expect("items");
        let mut expected = Vec::new();
        for pod in reading.view.pods() {
            if let Some(e) = self.reference.pod(&pod.namespace, &pod.name) {
                expected.push(((pod.namespace.to_string(), pod.name.to_string()), e));
            }
        }
        let keys: Vec<(String, String)> = items
            .iter()
            .map(|i| {
                (
                    i["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
                    i["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = expected.iter().map(|(k, _)| k.clone()).collect();
        if keys != want {
            let missing: Vec<_> = want.iter().filter(|k| !keys.contains(k)).collect();
            let extra: Vec<_> = keys.iter().filter(|k| !want.contains(k)).collect();
            panic!("served pods {at}: missing {missing:?}, unexpected {extra:?}");
        }
        for (item, ((ns, name), (ts, window, containers))) in items.iter().zip(&expected) {
            let what = format!("pod {ns}/{name} {at}");
            assert_eq!(item["timestamp"], ts.to_rfc3339_secs(), "{what}");
            assert_eq!(item["window"], go_duration(*window), "{what}");
            let served = item["containers"].as_array().expect("containers");
            let served_names: Vec<&str> = served
                .iter()
                .map(|c| c["name"].as_str().unwrap_or(""))
                .collect();
            let want: Vec<&str> = containers.iter().map(|(n, _, _)| n.as_str()).collect();
            assert_eq!(served_names, want, "containers of {what}");
            for (c, (cname, e, rate)) in served.iter().zip(containers) {
                check_usage(
                    &c["usage"],
                    e,
                    (*rate, *rate),
                    &format!("{cname} of {what}"),
                );
            }
            let labels = reading
                .view
                .pod(ns, name)
                .map(|p| labels_json(p.labels.iter()));
            assert_eq!(Some(&item["metadata"]["labels"]), labels.as_ref(), "{what}");
            answers
                .pods
                .insert((ns.clone(), name.clone()), item.clone());
        }
        self.transcript.extend_from_slice(&body);

        // Pods per namespace, and one by one.
        let namespaces: BTreeSet<String> = reading
            .view
            .pods()
            .map(|p| p.namespace.to_string())
            .collect();
        for ns in &namespaces {
            let (status, body) = self.serve(
                &reading,
                &format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods"),
            );
            assert_eq!(status, 200);
            let v: Value = serde_json::from_slice(&body).expect("pod list JSON");
            let got: Vec<&Value> = v["items"].as_array().expect("items").iter().collect();
            let want: Vec<&Value> = answers
                .pods
                .iter()
                .filter(|((n, _), _)| n == ns)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(got, want, "namespace {ns} {at}");
        }
        for pod in reading.view.pods() {
            let target = format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods/{}",
                pod.namespace, pod.name
            );
            let (status, body) = self.serve(&reading, &target);
            let key = (pod.namespace.to_string(), pod.name.to_string());
            match answers.pods.get(&key) {
                Some(listed) => {
                    assert_eq!(status, 200, "GET {target} {at}");
                    let v: Value = serde_json::from_slice(&body).expect("pod JSON");
                    assert_eq!(v["kind"], "PodMetrics");
                    for k in ["timestamp", "window", "containers"] {
                        assert_eq!(v[k], listed[k], "GET {target} {k} {at}");
                    }
                }
                None => assert_eq!(status, 404, "GET {target} {at}"),
            }
        }
        self.answers = answers;
    }

    // ---- scenario helpers --------------------------------------------------------------

    /// Applies a generator mutation at the current wall time and mirrors it to the
    /// apiserver, whose watches deliver it.
    fn mutate(&mut self, f: impl FnOnce(&mut Cluster, Timestamp)) {
        let wall = self.wall();
        f(&mut self.cluster, wall);
        self.api.sync_cluster(&self.cluster);
        self.pump();
    }

    fn node_name(&self, i: usize) -> String {
        self.cluster.nodes()[i].name.clone()
    }

    fn pod_key(&self, node: usize, pod: usize) -> (String, String) {
        let p = &self.cluster.nodes()[node].pods()[pod];
        (p.namespace.clone(), p.name.clone())
    }

    fn served_node(&self, name: &str) -> bool {
        self.answers.nodes.contains_key(name)
    }

    fn served_pod(&self, key: &(String, String)) -> bool {
        self.answers.pods.contains_key(key)
    }

    /// The nodes and pods (of the generator) served in the last check.
    fn served_counts(&self) -> (usize, usize) {
        (self.answers.nodes.len(), self.answers.pods.len())
    }

    fn total_pods(&self) -> usize {
        self.cluster.nodes().iter().map(|n| n.pods().len()).sum()
    }

    /// `metrics_server_kubelet_request_total{success=...}`.
    fn kubelet_requests(&self, success: bool) -> u64 {
        let mut text = Vec::new();
        self.reader.metrics().encode(&mut text);
        let text = String::from_utf8(text).expect("UTF-8 exposition");
        let prefix = format!("metrics_server_kubelet_request_total{{success=\"{success}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |v| v.parse().expect("a count"))
    }

    /// Apiserver requests (lists and watches) made so far.
    fn api_requests(&self, watch: bool, collection: Collection) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.watch == watch && r.collection == Some(collection))
            .count()
    }

    /// The predicted wall time of the next tick (its requests go out within 8 ms × nodes).
    fn next_tick_wall(&self) -> Timestamp {
        let last = *self.tick_starts.last().expect("a tick started");
        let next = last.saturating_add(RESOLUTION);
        let ahead = next.saturating_duration_since(self.now);
        self.wall().saturating_add(ahead)
    }
}

fn truncate(mut body: Vec<u8>, format: Format) -> Vec<u8> {
    let half = body.len() / 2;
    let cut = match format {
        // Inside a series' label set: no valid text ends there.
        Format::Resource => {
            let needle = b"{container=\"";
            body[half..]
                .windows(needle.len())
                .position(|w| w == needle)
                .map_or(half, |p| half + p + needle.len() + 2)
        }
        Format::Summary => half,
    };
    body.truncate(cut);
    body
}

fn labels_json<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(
        labels
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect(),
    )
}

fn check_times(item: &Value, e: &Expect, what: &str) {
    assert_eq!(item["timestamp"], e.timestamp.to_rfc3339_secs(), "{what}");
    assert_eq!(item["window"], go_duration(e.window), "{what}");
}

/// Served CPU equals the reference computation and is within 1% (or 2 nanocores) of the
/// true rate (between the rates at both ends when it changed in the window); memory is
/// exactly the true working set at the sample time.
fn check_usage(usage: &Value, e: &Expect, rates: (u64, u64), what: &str) {
    let quantity = |key: &str| -> u64 {
        let text = usage[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} of {what}"));
        let nanos = parse_nanos(text).unwrap_or_else(|_| panic!("{key} {text:?} of {what}"));
        u64::try_from(nanos).expect("non-negative")
    };
    let cpu = quantity("cpu");
    let memory = quantity("memory") / 1_000_000_000;
    assert_eq!(cpu, e.cpu, "cpu of {what}");
    assert_eq!(memory, e.memory, "memory of {what}");
    let (lo, hi) = (rates.0.min(rates.1), rates.0.max(rates.1));
    let tolerance = |r: u64| (r / 100).max(2);
    assert!(
        cpu + tolerance(lo) >= lo && cpu <= hi + tolerance(hi),
        "cpu of {what}: {cpu} not within 1% of the true rate {lo}..={hi}"
    );
}

fn sim(seed: u64, nodes: usize, pods: usize) -> Sim {
    Sim::new(SimConfig::new(seed, nodes, pods))
}

// ---------------------------------------------------------------------------------------
// Scenarios.

/// Every node and every pod served from the second tick on, with the true values; the
/// server is ready; the ticks stay on the 15 s grid.
#[test]
fn steady_state() {
    let mut s = sim(1, 5, 10);
    s.run_cycles(1);
    assert_eq!(s.served_counts(), (0, 0), "one scrape gives no rate");
    assert_eq!(s.cycles[0].scraped.len(), 5);
    for _ in 0..4 {
        s.run_cycles(1);
        assert_eq!(s.served_counts(), (5, s.total_pods()));
    }
    let reading = s.reader.read(s.now);
    assert!(reading.health.storage_ready);
    assert!(reading.health.node_informer_synced && reading.health.pod_informer_synced);
    // Ticks on the grid of the first one.
    let first = s.tick_starts[0];
    for (k, t) in s.tick_starts.iter().enumerate() {
        assert_eq!(
            t.saturating_duration_since(first),
            RESOLUTION * k as u32,
            "tick {k}"
        );
    }
    // Memory straight from the generator's truth function, at the served timestamp.
    for (ni, node) in s.cluster.nodes().iter().enumerate() {
        for (pi, pod) in node.pods().iter().enumerate() {
            let item = &s.answers.pods[&(pod.namespace.clone(), pod.name.clone())];
            for (ci, c) in pod.containers().iter().enumerate() {
                let served = item["containers"]
                    .as_array()
                    .expect("containers")
                    .iter()
                    .find(|x| x["name"] == c.name.as_str())
                    .expect("served container");
                let ts = s
                    .cluster
                    .container_sample_time(
                        ni,
                        pi,
                        ci,
                        s.kubelet_log
                            .iter()
                            .rev()
                            .find(|l| l.node == node.name)
                            .expect("scraped")
                            .wall,
                        Format::Resource,
                    )
                    .expect("sampled");
                let memory = parse_nanos(served["usage"]["memory"].as_str().expect("memory"))
                    .expect("quantity")
                    / 1_000_000_000;
                assert_eq!(memory as u64, s.cluster.true_memory_bytes(ni, pi, ci, ts));
                let cpu =
                    parse_nanos(served["usage"]["cpu"].as_str().expect("cpu")).expect("q") as u64;
                let rate = s.cluster.true_cpu_nanocores(ni, pi, ci);
                assert!(cpu.abs_diff(rate) <= (rate / 100).max(2), "{cpu} vs {rate}");
            }
        }
    }
    assert_eq!(s.kubelet_requests(false), 0);
    assert_eq!(s.kubelet_requests(true), 25);
}

/// The loop contract says `handle_timeout` is called when `poll_timeout` is reached; once
/// the informers have synced the first tick is due at once, so `poll_timeout` must say
/// so (upstream scrapes immediately after the caches sync).
#[test]
fn scraping_starts_as_soon_as_the_informers_sync() {
    let mut s = sim(2, 3, 4);
    s.run_for(Duration::from_millis(100));
    assert!(s.engine.synced(), "lists answered within 100 ms");
    assert!(
        !s.kubelet_log.is_empty(),
        "no scrape started after the informers synced; the engine asks to be woken at {:?} (now {:?})",
        s.engine.poll_timeout(),
        s.now
    );
}

/// A watch event changes what readers see at once, not at the next tick.
#[test]
fn watch_changes_reach_readers_at_once() {
    let mut s = sim(3, 3, 4);
    s.run_cycles(2);
    s.run_for(secs(2));
    let key = s.pod_key(0, 0);
    s.mutate(|c, _| c.set_pod_labels(0, 0, vec![("app".into(), "moved".into())]));
    let reading = s.reader.read(s.now);
    assert_eq!(
        reading
            .view
            .pod(&key.0, &key.1)
            .and_then(|p| p.labels.get("app")),
        Some("moved"),
        "a relabelled pod's labels are served as soon as its MODIFIED event arrived"
    );
    let gone = s.node_name(2);
    s.mutate(|c, _| {
        c.remove_node(2);
    });
    let reading = s.reader.read(s.now);
    assert!(
        reading.view.node(&gone).is_none(),
        "a deleted node is gone from the API as soon as its DELETED event arrived"
    );
    s.check();
}

/// A restarted container hides its pod for one tick (its new start is after the stored
/// sample, and it is not fresh); a restarted container that is already 10–15 s old at
/// its first sample is fresh and served at once. Both come back with the right rate.
#[test]
fn container_restart() {
    let mut s = sim(4, 4, 8);
    s.run_cycles(3);
    let all = s.total_pods();
    assert_eq!(s.served_counts(), (4, all));
    let tick = s.next_tick_wall();
    let sample = |s: &Sim, n, p, c| {
        s.cluster
            .container_sample_time(n, p, c, tick, Format::Resource)
            .expect("sampled")
    };
    // Pod A: restarts 5 s before its next sample (not fresh); pod B: 12 s (fresh).
    let (ta, tb) = (sample(&s, 0, 0, 0), sample(&s, 1, 0, 0));
    let (ka, kb) = (s.pod_key(0, 0), s.pod_key(1, 0));
    let (ra, rb) = (ta.saturating_sub(secs(5)), tb.saturating_sub(secs(12)));
    s.mutate(|c, _| {
        c.restart_container(0, 0, 0, ra);
        c.restart_container(1, 0, 0, rb);
    });
    s.run_cycles(1);
    assert!(
        !s.served_pod(&ka),
        "a restart that is not fresh hides the pod"
    );
    assert!(s.served_pod(&kb), "a fresh restart is served at once");
    assert_eq!(s.served_counts(), (4, all - 1));
    let b0 = &s.reference.nodes[&s.node_name(1)].pods[&kb];
    let first = b0.values().next().expect("a container");
    assert_eq!(
        first.prev.map(|p| p.timestamp),
        first.last.start_time,
        "paired with its own start"
    );
    s.run_cycles(1);
    assert!(s.served_pod(&ka), "back one tick later");
    assert_eq!(s.served_counts(), (4, all));
    s.run_cycles(1);
    assert_eq!(s.served_counts(), (4, all));
}

/// A new pod's container, sampled for the first time 10–15 s after it started, is served
/// after that single scrape (window = sample time − start), not two.
#[test]
fn fresh_container() {
    let mut cfg = SimConfig::new(5, 3, 5);
    cfg.max_containers = 1;
    let mut s = Sim::new(cfg);
    s.run_cycles(2);
    // What the next pod on node 0 will be (the generator draws it the same whatever its
    // start time).
    let now = s.wall();
    let mut probe = s.cluster.clone();
    let r = probe.add_pod(0, now);
    let pi = probe.find_pod(0, &r.namespace, &r.name).expect("added");
    let pod = &probe.nodes()[0].pods()[pi];
    let c = &pod.containers()[0];
    let delay = c
        .start_time
        .duration_since(pod.start_time)
        .unwrap_or_default();
    let offset = Duration::from_millis(u64::from(c.sample_offset_ms));
    // Start it just after its sample time at the next tick (listed there, no sample yet):
    // the tick after, it is 12.5–14.5 s old.
    let tick = s.next_tick_wall();
    let margin = (offset / 2).min(Duration::from_millis(2500));
    let start = tick.saturating_sub(offset).saturating_add(margin);
    let pod_start = start.saturating_sub(delay).max(now);
    let key = (r.namespace.clone(), r.name.clone());
    s.mutate(|c, _| {
        let added = c.add_pod(0, pod_start);
        assert_eq!(added.name, r.name, "the probe predicted the pod");
    });
    s.run_cycles(1);
    assert!(!s.served_pod(&key));
    assert!(
        !s.reference.nodes[&s.node_name(0)].pods.contains_key(&key),
        "listed without a sample: the decoder drops the pod"
    );
    s.run_cycles(1);
    assert!(s.served_pod(&key), "served after its first sampled scrape");
    let window = s.answers.pods[&key]["window"]
        .as_str()
        .and_then(|w| w.strip_suffix('s'))
        .and_then(|w| w.parse::<f64>().ok())
        .expect("a window in seconds");
    assert!((10.0..15.0).contains(&window), "window {window}");
    s.run_cycles(1);
    assert!(s.served_pod(&key));
}

/// A new node is scraped from the next tick and served after two scrapes; a deleted node
/// is no longer scraped nor served, and its pods go with it.
#[test]
fn node_added_and_node_removed() {
    let mut s = sim(6, 4, 6);
    s.run_cycles(2);
    s.mutate(|c, wall| {
        c.add_node(wall.saturating_sub(secs(600)));
    });
    let added = s.node_name(4);
    let added_pods: Vec<(String, String)> = (0..6).map(|p| s.pod_key(4, p)).collect();
    s.run_cycles(1);
    assert!(s.cycles.last().is_some_and(|c| c.scraped.contains(&added)));
    assert!(!s.served_node(&added), "one scrape gives no rate");
    s.run_cycles(1);
    assert!(s.served_node(&added));
    assert!(added_pods.iter().all(|k| s.served_pod(k)));
    assert_eq!(s.served_counts(), (5, 30));

    let gone = s.node_name(1);
    let gone_pods: Vec<(String, String)> = (0..6).map(|p| s.pod_key(1, p)).collect();
    let sent = s.kubelet_log.len();
    s.mutate(|c, _| {
        c.remove_node(1);
    });
    s.run_cycles(1);
    assert!(!s.served_node(&gone));
    assert!(gone_pods.iter().all(|k| !s.served_pod(k)));
    assert!(s.kubelet_log[sent..].iter().all(|l| l.node != gone));
    assert_eq!(s.served_counts(), (4, 24));
    s.run_cycles(1);
    assert_eq!(s.served_counts(), (4, 24));
}

/// Pods follow the apiserver: a deleted pod is gone, a new one is served once it has two
/// samples (or one fresh one), a relabelled one is served with its new labels (and
/// selected by them).
#[test]
fn pods_added_removed_and_relabelled() {
    let mut s = sim(7, 4, 6);
    s.run_cycles(2);
    let removed = s.pod_key(0, 1);
    let relabelled = s.pod_key(1, 0);
    let mut added = None;
    s.mutate(|c, wall| {
        c.remove_pod(0, 1, wall);
        c.set_pod_labels(
            1,
            0,
            vec![
                ("app".into(), "canary".into()),
                ("track".into(), "blue".into()),
            ],
        );
        added = Some(c.add_pod(2, wall));
    });
    let added = added.expect("added");
    let added = (added.namespace, added.name);
    s.run_cycles(1);
    assert!(!s.served_pod(&removed));
    assert_eq!(
        s.answers.pods[&relabelled]["metadata"]["labels"],
        serde_json::json!({"app": "canary", "track": "blue"})
    );
    let reading = s.reader.read(s.now);
    let (status, body) = s.serve(&reading, &format!("{PODS}?labelSelector=track%3Dblue"));
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    let names: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, [relabelled.1.as_str()]);
    s.run_cycles(2);
    assert!(s.served_pod(&added), "a new pod is served within two ticks");
    assert_eq!(s.served_counts(), (4, 24));
}

/// One node's kubelet fails for two ticks: that node and its pods drop out at once, the
/// others are unaffected; after the fault it takes two good scrapes to serve it again.
fn kubelet_fault(fault: KubeletFault, seed: u64) -> Sim {
    let mut s = sim(seed, 4, 5);
    s.run_cycles(2);
    assert_eq!(s.served_counts(), (4, 20));
    let victim = s.node_name(1);
    let failures = s.kubelet_requests(false);
    s.faults.insert(victim.clone(), fault);
    for _ in 0..2 {
        s.run_cycles(1);
        let cycle = s.cycles.last().expect("a cycle");
        assert!(!cycle.scraped.contains(&victim), "{fault:?}");
        assert_eq!(cycle.scraped.len(), 3, "{fault:?}");
        assert!(!s.served_node(&victim));
        assert_eq!(s.served_counts(), (3, 15), "{fault:?}");
    }
    assert_eq!(s.kubelet_requests(false), failures + 2, "{fault:?}");
    s.faults.remove(&victim);
    s.run_cycles(1);
    assert!(
        !s.served_node(&victim),
        "one good scrape after a failure gives no rate"
    );
    s.run_cycles(1);
    assert_eq!(s.served_counts(), (4, 20));
    s
}

#[test]
fn kubelet_down() {
    kubelet_fault(KubeletFault::Down, 8);
}

/// The engine gives up at the request deadline (10 s after sending) and cancels; the tick
/// completes then, without that node.
#[test]
fn kubelet_slow_past_deadline() {
    let s = kubelet_fault(KubeletFault::Slow, 9);
    assert!(s.slow.is_empty(), "every slow request was cancelled");
    let victim = s.node_name(1);
    let cancelled: Vec<Instant> = s
        .cancelled
        .iter()
        .filter(|(_, n)| *n == victim)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(cancelled.len(), 2);
    for t in cancelled {
        let sent = s
            .kubelet_log
            .iter()
            .rev()
            .find(|l| l.node == victim && l.at < t)
            .expect("sent");
        assert_eq!(t, sent.deadline);
        assert_eq!(t.saturating_duration_since(sent.at), KUBELET_TIMEOUT);
        // That tick was stored right when the deadline passed.
        assert!(s.cycles.iter().any(|c| c.at == t));
    }
}

#[test]
fn kubelet_http_500() {
    kubelet_fault(KubeletFault::Error500, 10);
}

#[test]
fn kubelet_garbage_body() {
    kubelet_fault(KubeletFault::Garbage, 11);
}

#[test]
fn kubelet_truncated_body() {
    kubelet_fault(KubeletFault::Truncated, 12);
}

/// A body over the limit fails the node (`Failure::TooLarge`), even though its text
/// would decode.
#[test]
fn kubelet_oversize_body() {
    kubelet_fault(KubeletFault::Oversize, 13);
}

/// A kubelet without `/metrics/resource` answers 404: the node is asked the Summary API
/// in the same tick, and from then on straight away.
#[test]
fn summary_fallback_after_404_is_remembered() {
    let mut s = sim(14, 3, 5);
    let old = s.node_name(2);
    s.old_kubelets.insert(old.clone());
    s.run_cycles(3);
    let paths: Vec<&str> = s
        .kubelet_log
        .iter()
        .filter(|l| l.node == old)
        .map(|l| l.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [RESOURCE_PATH, SUMMARY_PATH, SUMMARY_PATH, SUMMARY_PATH]
    );
    let others: BTreeSet<&str> = s
        .kubelet_log
        .iter()
        .filter(|l| l.node != old)
        .map(|l| l.path.as_str())
        .collect();
    assert_eq!(others, BTreeSet::from([RESOURCE_PATH]));
    assert!(s.cycles.iter().all(|c| c.scraped.contains(&old)));
    assert!(s.served_node(&old));
    assert_eq!(s.served_counts(), (3, 15));
}

/// Closed watches are re-opened from the last resourceVersion seen (a bookmark's
/// included), without listing again; changes made while a re-watch was failing are
/// replayed; watches ended at `timeoutSeconds` are re-opened too.
#[test]
fn watch_closed_rewatches_without_relisting() {
    let mut s = sim(15, 3, 5);
    s.run_cycles(2);
    s.run_for(secs(2));
    let lists = (
        s.api_requests(false, Collection::Nodes),
        s.api_requests(false, Collection::Pods),
    );
    assert_eq!(lists, (1, 1));
    // A node change moves the shared version; the pod watch learns it from a bookmark.
    let name = s.node_name(0);
    let mut node = s.api.node(&name).cloned().expect("node");
    node.labels.insert("role".into(), "edge".into());
    s.api.upsert_node(node);
    s.api.bookmark();
    s.pump();
    let rv = s.api.resource_version().to_string();
    let before = s.api.requests().len();
    s.api.close_watches(None);
    s.pump();
    let again = &s.api.requests()[before..];
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|r| r.watch && r.status == Some(200)));
    assert!(
        again
            .iter()
            .all(|r| r.resource_version.as_deref() == Some(rv.as_str())),
        "{again:?}"
    );
    // The pod re-watch fails once; meanwhile pods change.
    s.api.fail_next(Fault {
        collection: Some(Collection::Pods),
        watch: Some(true),
        outage: Outage::Status(503),
    });
    s.api.close_watches(Some(Collection::Pods));
    s.pump();
    let relabelled = s.pod_key(1, 2);
    let removed = s.pod_key(2, 0);
    s.mutate(|c, wall| {
        c.set_pod_labels(1, 2, vec![("app".into(), "while-away".into())]);
        c.remove_pod(2, 0, wall);
    });
    s.run_cycles(2);
    assert_eq!(
        s.answers.pods[&relabelled]["metadata"]["labels"]["app"],
        "while-away"
    );
    assert!(!s.served_pod(&removed));
    // Watch timeouts (290 s) end every watch; they are re-opened.
    let watches = s.api_requests(true, Collection::Pods);
    s.run_for(secs(300));
    assert!(s.api_requests(true, Collection::Pods) > watches);
    assert_eq!(
        (
            s.api_requests(false, Collection::Nodes),
            s.api_requests(false, Collection::Pods),
        ),
        lists,
        "no list after the first"
    );
    assert_eq!(s.served_counts(), (3, 14));
}

/// 410 Gone (an ERROR event, an HTTP status on a watch, or an expired continue token)
/// makes the watcher list again, reading the latest state (no `resourceVersion=0`),
/// page by page; what changed meanwhile is there, and serving goes on throughout.
#[test]
fn gone_410_relists() {
    let mut cfg = SimConfig::new(16, 3, 6);
    cfg.pods_page_size = 4;
    let mut s = Sim::new(cfg);
    s.run_cycles(2);
    assert_eq!(s.served_counts(), (3, 18));
    let lists = s.api_requests(false, Collection::Pods);
    assert_eq!(lists, 5, "18 pods in pages of 4");
    let before = s.api.requests().len();
    s.api.expire();
    s.pump();
    let relabelled = s.pod_key(0, 0);
    s.mutate(|c, _| c.set_pod_labels(0, 0, vec![("app".into(), "after-410".into())]));
    s.run_cycles(1);
    assert_eq!(
        s.served_counts(),
        (3, 18),
        "serving goes on during the relist"
    );
    let relists: Vec<_> = s.api.requests()[before..]
        .iter()
        .filter(|r| !r.watch)
        .collect();
    assert_eq!(
        relists
            .iter()
            .filter(|r| r.collection == Some(Collection::Nodes))
            .count(),
        1
    );
    assert_eq!(
        relists
            .iter()
            .filter(|r| r.collection == Some(Collection::Pods))
            .count(),
        5
    );
    assert!(
        relists.iter().all(|r| r.resource_version.is_none()),
        "{relists:?}"
    );
    assert_eq!(
        s.answers.pods[&relabelled]["metadata"]["labels"]["app"],
        "after-410"
    );

    // HTTP 410 on a watch request.
    let before = s.api.requests().len();
    s.api.fail_next(Fault {
        collection: Some(Collection::Nodes),
        watch: Some(true),
        outage: Outage::Status(410),
    });
    s.api.close_watches(Some(Collection::Nodes));
    s.run_cycles(1);
    let after: Vec<_> = s.api.requests()[before..].iter().collect();
    assert_eq!(after[0].status, Some(410));
    assert!(
        after[1..]
            .iter()
            .any(|r| !r.watch && r.collection == Some(Collection::Nodes))
    );

    // A continue token expiring mid-list: the list starts over.
    let before = s.api.requests().len();
    s.compact_on_continue = 1;
    s.api.expire();
    s.pump();
    s.run_cycles(2);
    let after: Vec<_> = s.api.requests()[before..]
        .iter()
        .filter(|r| r.collection == Some(Collection::Pods) && !r.watch)
        .collect();
    assert_eq!(after[1].status, Some(410), "{after:?}");
    assert!(after[1].continued && !after[2].continued);
    assert_eq!(after.len(), 7, "two pages, then five");
    assert_eq!(s.served_counts(), (3, 18));
}

/// The apiserver is unreachable at start: requests fail with growing backoff, nothing is
/// scraped or served; once it answers, the informers sync, scraping starts and the API
/// serves after two ticks.
#[test]
fn apiserver_unreachable_at_start() {
    let mut s = sim(17, 3, 5);
    s.api.set_outage(Some(Outage::Unreachable));
    s.run_for(secs(40));
    assert!(!s.engine.synced());
    assert!(s.kubelet_log.is_empty());
    let reading = s.reader.read(s.now);
    assert!(!reading.health.node_informer_synced && !reading.health.pod_informer_synced);
    assert!(!reading.health.storage_ready);
    let (status, body) = s.serve(&reading, NODES);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(v["items"], serde_json::json!([]));
    let attempts: Vec<Instant> = s
        .api_log
        .iter()
        .filter(|(_, p)| p.starts_with("/api/v1/nodes"))
        .map(|(t, _)| *t)
        .collect();
    assert!((4..=8).contains(&attempts.len()), "{attempts:?}");
    for (k, w) in attempts.windows(2).enumerate() {
        let gap = w[1].saturating_duration_since(w[0]) - API_LATENCY;
        let base = Duration::from_millis(800) * 2u32.pow(k as u32);
        let base = base.min(secs(30));
        assert!(
            gap >= base && gap < base * 2,
            "retry {k}: {gap:?} for a base of {base:?}"
        );
    }
    s.api.set_outage(None);
    s.advance(s.now.saturating_add(secs(60)), &|s: &Sim| s.engine.synced());
    assert!(s.engine.synced());
    let synced = s.now;
    s.run_cycles(1);
    assert!(
        s.cycles[0].at.saturating_duration_since(synced) < secs(1),
        "the first tick right after the sync"
    );
    assert_eq!(s.served_counts(), (0, 0));
    s.run_cycles(1);
    assert_eq!(s.served_counts(), (3, 15));
}

/// The wall clock jumps at a tick boundary, forward then back: the ticks stay on the
/// monotonic grid, requests and served timestamps follow the wall clock; after the jump
/// back the new samples are older than the stored ones, so nothing is served for a tick.
#[test]
fn wall_clock_step_at_a_tick_boundary() {
    let mut s = sim(18, 3, 5);
    s.run_cycles(3);
    s.step_wall_clock(3600);
    s.run_cycles(1);
    assert_eq!(s.served_counts(), (3, 15));
    for item in s.answers.nodes.values() {
        let window = item["window"].as_str().expect("window");
        assert!(
            window.starts_with("1h0m1"),
            "window across the jump: {window}"
        );
    }
    s.run_cycles(1);
    let wall = s.wall();
    for item in s.answers.nodes.values().chain(s.answers.pods.values()) {
        let ts = Timestamp::parse_rfc3339(item["timestamp"].as_str().expect("timestamp"))
            .expect("RFC 3339");
        let age = wall.duration_since(ts).expect("in the past");
        assert!(
            age < RESOLUTION,
            "timestamps follow the wall clock: {age:?}"
        );
        assert!(item["window"].as_str().is_some_and(|w| !w.contains('h')));
    }
    s.step_wall_clock(-7200);
    s.run_cycles(1);
    assert_eq!(
        s.served_counts(),
        (0, 0),
        "samples older than the stored ones"
    );
    s.run_cycles(1);
    assert_eq!(s.served_counts().0, 3);
    let wall = s.wall();
    for item in s.answers.nodes.values() {
        let ts = Timestamp::parse_rfc3339(item["timestamp"].as_str().expect("timestamp"))
            .expect("RFC 3339");
        assert!(wall.duration_since(ts).is_some_and(|d| d < RESOLUTION));
    }
    // Every tick on the grid of the first, whatever the wall clock did.
    let first = s.tick_starts[0];
    for (k, t) in s.tick_starts.iter().enumerate() {
        assert_eq!(t.saturating_duration_since(first), RESOLUTION * k as u32);
    }
    // Requests were stamped with the wall clock of their time.
    for l in &s.kubelet_log {
        let expected = ClusterSpec::DEFAULT_EPOCH.unix_nanos()
            + l.at.saturating_duration_since(START).as_nanos() as i64;
        let skew = l.wall.unix_nanos() - expected;
        assert!([0, 3_600_000_000_000, -3_600_000_000_000].contains(&skew));
    }
}

/// A multi-scenario run: mutations, kubelet faults, watch closures, 410, a wall-clock
/// step. Returns every list answer of every check, and the kubelet requests.
fn tour(cluster_seed: u64, engine_seed: u64) -> (Vec<u8>, String) {
    let mut cfg = SimConfig::new(cluster_seed, 5, 8);
    cfg.engine_seed = engine_seed;
    cfg.pods_page_size = 10;
    let mut s = Sim::new(cfg);
    s.old_kubelets.insert(s.node_name(4));
    s.run_cycles(3);
    let tick = s.next_tick_wall();
    let t = s
        .cluster
        .container_sample_time(0, 0, 0, tick, Format::Resource)
        .expect("sampled");
    s.mutate(|c, wall| {
        c.restart_container(0, 0, 0, t.saturating_sub(secs(4)));
        c.add_pod(1, wall);
        c.set_pod_labels(2, 1, vec![("app".into(), "tour".into())]);
    });
    s.faults.insert(s.node_name(1), KubeletFault::Error500);
    s.faults.insert(s.node_name(2), KubeletFault::Slow);
    s.run_cycles(1);
    s.faults.clear();
    s.api.close_watches(None);
    s.run_cycles(2);
    s.api.expire();
    s.mutate(|c, wall| {
        c.remove_pod(3, 0, wall);
        c.add_node(wall.saturating_sub(secs(300)));
    });
    s.run_cycles(2);
    s.faults.insert(s.node_name(3), KubeletFault::Garbage);
    s.mutate(|c, _| {
        c.remove_node(0);
    });
    s.run_cycles(1);
    s.faults.clear();
    s.step_wall_clock(900);
    s.run_cycles(3);
    let mut log = String::new();
    for l in &s.kubelet_log {
        let _ = writeln!(log, "{:?} {} {} {}", l.at, l.wall, l.node, l.path);
    }
    assert_eq!(s.checks, 12, "one check per stored tick");
    (s.transcript, log)
}

/// The same seeds give byte-identical API answers and the same requests at the same
/// times; another engine seed gives other scrape delays.
#[test]
fn deterministic_replay() {
    let (a, log_a) = tour(21, 77);
    let (b, log_b) = tour(21, 77);
    assert!(
        a == b,
        "same seed, same answers ({} vs {} bytes)",
        a.len(),
        b.len()
    );
    assert_eq!(log_a, log_b);
    let (_, log_c) = tour(21, 78);
    assert_ne!(log_a, log_c, "another seed, other delays");
    let nodes = |log: &str| -> Vec<String> {
        log.lines()
            .map(|l| l.split(' ').nth(2).unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(nodes(&log_a).len(), nodes(&log_c).len());
}

/// Kubelet-spec case 62: nodes excluded by `--node-selector` are never scraped; they
/// still exist, so a GET answers "no metrics" (404 nodemetrics), not "no such node".
#[test]
fn case_62_node_selector_excludes_nodes() {
    let probe = sim(62, 4, 2);
    let excluded = probe.node_name(0);
    let mut cfg = SimConfig::new(62, 4, 2);
    // Generator nodes carry `kubernetes.io/hostname=<name>`.
    cfg.node_selector = Some(Box::leak(
        format!("kubernetes.io/hostname!={excluded}").into_boxed_str(),
    ));
    let mut s = Sim::new(cfg);
    s.run_cycles(3);
    assert!(
        s.kubelet_log.iter().all(|l| l.node != excluded),
        "never scraped"
    );
    let reading = s.reader.read(s.now);
    let (status, body) = s.serve(
        &reading,
        &format!("/apis/metrics.k8s.io/v1beta1/nodes/{excluded}"),
    );
    assert_eq!(status, 404);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v["message"],
        format!("nodemetrics.metrics.k8s.io \"{excluded}\" not found")
    );
    let (status, _) = s.serve(
        &reading,
        &format!("/apis/metrics.k8s.io/v1beta1/nodes/{}", s.node_name(1)),
    );
    assert_eq!(status, 200);
}
