//! A seeded model of a cluster whose true usage is known, rendered as kubelet payloads.
//!
//! [`Cluster::new`] builds N nodes × M pods from a [`ClusterSpec`]. Every container has a
//! constant CPU rate (nanocores), a memory working set with a small, exactly computable
//! wobble, a start time and a sampling offset (cAdvisor housekeeping), so each rendered
//! payload carries per-container sample times older than the request. The model renders
//! both kubelet endpoints byte-for-byte as a 1.31-era kubelet would
//! ([`Cluster::render_resource`], [`Cluster::render_summary`]) and states what a correct
//! decoder must make of each payload ([`Cluster::expected_batch`]).
//!
//! Rules the model follows (the same helpers drive rendering and the expected batch):
//! - sample time = request time − offset, rounded down to whole milliseconds for
//!   `/metrics/resource` and to whole seconds for `/stats/summary` (the Summary API has
//!   whole-second times); counters and gauges are evaluated at that rounded time, so the
//!   rate between two decoded points is exactly the true rate (up to integer truncation);
//! - a container is listed once the request is at or after its start; it has a sample only
//!   when its sample time is strictly after its start. A listed container without a sample
//!   is rendered with its start time only (as a just-started container is), which makes a
//!   decoder drop its pod with [`DropReason::MissingCpu`];
//! - a pod is rendered only while at least one of its containers is listed; its pod-level
//!   values appear once the pod's own sample time is after the pod's start;
//! - mutation times passed in must not go backwards (queries before the latest mutation of
//!   an object describe the new state, not the old one).
//!
//! Determinism: the same spec and the same sequence of mutations give byte-identical
//! output; no clock, no hash-order iteration, integer arithmetic for every value.

use crate::gofloat::write_go_float;
use metrics_core::kubelet::{
    ContainerPoint, DropReason, DroppedPod, MetricsPoint, NodeBatch, PodLevelUsage,
};
use metrics_core::time::Timestamp;
use std::collections::HashSet;

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_SEC: i64 = 1_000_000_000;
const MS_PER_DAY: u64 = 86_400_000;
const PAGE: u64 = 4096;
const MIB_PAGES: u64 = (1 << 20) / PAGE;
/// Upper bound on the search for a value that survives the f64 seconds round trip; real
/// searches end within a few hundred steps (the f64 spacing at ~1.8e18 ns is 256).
const NUDGE_LIMIT: u32 = 1 << 16;
/// Alphabet Kubernetes uses for generated name suffixes (no vowels, no 0/1/3).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Which kubelet endpoint a payload imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `/metrics/resource`: Prometheus text, millisecond sample times, CPU as f64 seconds.
    Resource,
    /// `/stats/summary`: JSON, whole-second times, exact integers.
    Summary,
}

impl Format {
    /// Rounds a sample instant down to the precision the format carries.
    fn floor(self, ns: i64) -> i64 {
        let unit = match self {
            Format::Resource => NS_PER_MS,
            Format::Summary => NS_PER_SEC,
        };
        ns - ns.rem_euclid(unit)
    }

    /// The cumulative CPU a correct decoder reads back from a rendered counter.
    fn decoded_cpu(self, counter: u64) -> u64 {
        match self {
            Format::Resource => f64_seconds_round_trip(counter),
            Format::Summary => counter,
        }
    }
}

/// Parameters of a generated cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub seed: u64,
    pub nodes: usize,
    pub pods_per_node: usize,
    /// Each pod gets 1..=this many containers (seeded); values below 1 count as 1.
    pub max_containers_per_pod: usize,
    /// Virtual time zero: everything initially present started before it.
    pub epoch: Timestamp,
}

impl ClusterSpec {
    /// 2025-06-10T09:40:00Z, the era of the spec's sample payloads.
    pub const DEFAULT_EPOCH: Timestamp = Timestamp::from_unix_secs(1_749_548_400);

    /// Up to 3 containers per pod, epoch [`ClusterSpec::DEFAULT_EPOCH`].
    pub fn new(seed: u64, nodes: usize, pods_per_node: usize) -> Self {
        ClusterSpec {
            seed,
            nodes,
            pods_per_node,
            max_containers_per_pod: 3,
            epoch: Self::DEFAULT_EPOCH,
        }
    }
}

/// Identity of a pod, as the apiserver would list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One container's true behaviour.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    /// Constant CPU usage in nanocores (1m..2000m).
    pub cpu_nanocores: u64,
    /// Start of the current incarnation; the CPU counter is 0 here. Whole milliseconds
    /// nudged by under 256 ns so that `trunc(f64(ns)/1e9 × 1e9)` gives it back exactly.
    pub start_time: Timestamp,
    pub restart_count: u32,
    /// How far the kubelet's sample lags the request (1..=14,000 ms).
    pub sample_offset_ms: u32,
    /// Working set before the wobble; a multiple of 4096.
    pub memory_base_bytes: u64,
    pub swap_bytes: u64,
    noise: u64,
    /// No wobble: the working set stays at its base ([`Cluster::set_steady_memory`]).
    steady_memory: bool,
}

impl Container {
    /// The sample time a request at `request_ns` sees, if the container has one yet.
    fn sample_time(&self, request_ns: i64, format: Format) -> Option<i64> {
        let t = sample_instant(request_ns, self.sample_offset_ms, format);
        (t > self.start_time.unix_nanos()).then_some(t)
    }

    fn listed(&self, request_ns: i64) -> bool {
        self.start_time.unix_nanos() <= request_ns
    }

    /// Cumulative CPU at `t_ns`, nudged to survive the f64 seconds round trip.
    fn cpu_counter(&self, t_ns: i64) -> u64 {
        survive_f64_seconds(linear_counter(
            self.cpu_nanocores,
            t_ns - self.start_time.unix_nanos(),
        ))
    }

    /// Working set at `t_ns`: the base plus 0..63 pages, changing every 10 s (just the
    /// base when memory is held steady).
    fn memory(&self, t_ns: i64) -> u64 {
        if self.steady_memory {
            return self.memory_base_bytes;
        }
        self.memory_base_bytes + PAGE * (wobble(self.noise, t_ns) % 64)
    }
}

/// One pod: its containers (sorted by name) and the pod cgroup's own overhead.
#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Sorted by key.
    pub labels: Vec<(String, String)>,
    /// Whole milliseconds.
    pub start_time: Timestamp,
    pub sample_offset_ms: u32,
    /// CPU of the pod cgroup beyond its containers (pause process, runtime shims).
    pub overhead_cpu_nanocores: u64,
    pub overhead_memory_bytes: u64,
    containers: Vec<Container>,
    noise: u64,
}

impl Pod {
    pub fn containers(&self) -> &[Container] {
        &self.containers
    }

    pub fn pod_ref(&self) -> PodRef {
        PodRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }

    /// The pod cgroup's CPU rate: containers plus overhead. Restarts do not change it.
    pub fn cpu_nanocores(&self) -> u64 {
        self.overhead_cpu_nanocores + self.containers.iter().map(|c| c.cpu_nanocores).sum::<u64>()
    }

    fn listed(&self, request_ns: i64) -> bool {
        self.containers.iter().any(|c| c.listed(request_ns))
    }

    fn sample_time(&self, request_ns: i64, format: Format) -> Option<i64> {
        let t = sample_instant(request_ns, self.sample_offset_ms, format);
        (t > self.start_time.unix_nanos()).then_some(t)
    }

    /// The pod cgroup's counter runs from the pod's start and survives container restarts.
    fn cpu_counter(&self, t_ns: i64) -> u64 {
        survive_f64_seconds(linear_counter(
            self.cpu_nanocores(),
            t_ns - self.start_time.unix_nanos(),
        ))
    }

    fn memory(&self, t_ns: i64) -> u64 {
        self.overhead_memory_bytes + self.containers.iter().map(|c| c.memory(t_ns)).sum::<u64>()
    }

    fn swap(&self) -> u64 {
        self.containers.iter().map(|c| c.swap_bytes).sum()
    }
}

/// A stretch of constant node CPU rate; a new one starts whenever pods come or go.
#[derive(Debug, Clone, Copy)]
struct CpuSegment {
    from_ns: i64,
    counter_at_from: u64,
    rate: u64,
}

/// One node and its pods (sorted by namespace and name).
#[derive(Debug, Clone)]
pub struct Node {
    /// `node-000123`.
    pub name: String,
    /// In 127.0.0.0/8, from 127.1.0.1 upwards in creation order.
    pub address: [u8; 4],
    /// Sorted by key.
    pub labels: Vec<(String, String)>,
    /// Whole milliseconds.
    pub boot_time: Timestamp,
    pub sample_offset_ms: u32,
    /// CPU of everything outside pods (kubelet, runtime, system daemons).
    pub system_cpu_nanocores: u64,
    pub system_memory_bytes: u64,
    pub memory_capacity_bytes: u64,
    pub swap_bytes: u64,
    pods: Vec<Pod>,
    cpu_segments: Vec<CpuSegment>,
    /// (pod, container) indices in `/metrics/resource` sample order: by container name,
    /// then namespace, then pod name.
    series_order: Vec<(u32, u32)>,
    noise: u64,
    /// No wobble ([`Cluster::set_steady_memory`]).
    steady_memory: bool,
}

impl Node {
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// Current CPU rate: system plus every pod cgroup.
    pub fn cpu_nanocores(&self) -> u64 {
        self.system_cpu_nanocores + self.pods.iter().map(Pod::cpu_nanocores).sum::<u64>()
    }

    fn sample_time(&self, request_ns: i64, format: Format) -> Option<i64> {
        let t = sample_instant(request_ns, self.sample_offset_ms, format);
        (t > self.boot_time.unix_nanos()).then_some(t)
    }

    fn cpu_counter(&self, t_ns: i64) -> u64 {
        let idx = self.cpu_segments.partition_point(|s| s.from_ns <= t_ns);
        let raw = match idx.checked_sub(1).and_then(|i| self.cpu_segments.get(i)) {
            Some(seg) => seg.counter_at_from + linear_counter(seg.rate, t_ns - seg.from_ns),
            None => 0,
        };
        survive_f64_seconds(raw)
    }

    /// System memory, every container's base working set and pod overhead, plus a wobble
    /// (none when memory is held steady).
    fn memory(&self, t_ns: i64) -> u64 {
        let pods: u64 = self
            .pods
            .iter()
            .map(|p| {
                p.overhead_memory_bytes
                    + p.containers
                        .iter()
                        .map(|c| c.memory_base_bytes)
                        .sum::<u64>()
            })
            .sum();
        let extra = if self.steady_memory {
            0
        } else {
            PAGE * (wobble(self.noise, t_ns) % 256)
        };
        self.system_memory_bytes + pods + extra
    }

    /// Starts a new CPU segment at `at_ns` with the current pod set's rate.
    fn rate_changed(&mut self, at_ns: i64) {
        let rate = self.cpu_nanocores();
        let Some(last) = self.cpu_segments.last().copied() else {
            self.cpu_segments.push(CpuSegment {
                from_ns: at_ns,
                counter_at_from: 0,
                rate,
            });
            return;
        };
        let from_ns = at_ns.max(last.from_ns);
        let counter_at_from =
            last.counter_at_from + linear_counter(last.rate, from_ns - last.from_ns);
        if from_ns == last.from_ns {
            if let Some(seg) = self.cpu_segments.last_mut() {
                seg.rate = rate;
            }
        } else {
            self.cpu_segments.push(CpuSegment {
                from_ns,
                counter_at_from,
                rate,
            });
        }
    }

    fn rebuild_series_order(&mut self) {
        let pods = &self.pods;
        let mut order: Vec<(u32, u32)> = pods
            .iter()
            .enumerate()
            .flat_map(|(p, pod)| (0..pod.containers.len()).map(move |c| (p as u32, c as u32)))
            .collect();
        let key = |&(p, c): &(u32, u32)| {
            let pod = &pods[p as usize];
            (
                pod.containers[c as usize].name.as_str(),
                pod.namespace.as_str(),
                pod.name.as_str(),
            )
        };
        order.sort_by(|a, b| key(a).cmp(&key(b)));
        self.series_order = order;
    }
}

/// The whole modelled cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    spec: ClusterSpec,
    rng: SplitMix64,
    nodes: Vec<Node>,
    next_node_serial: u32,
    /// One ReplicaSet hash per app, as if each app were one Deployment.
    app_hashes: Vec<String>,
    /// (namespace, name) of every pod, to keep generated names unique; never iterated.
    pod_names: HashSet<(String, String)>,
    /// Working sets stay at their base ([`Cluster::set_steady_memory`]).
    steady_memory: bool,
}

impl Cluster {
    pub fn new(spec: &ClusterSpec) -> Cluster {
        let mut rng = SplitMix64(spec.seed);
        let app_hashes = APPS.iter().map(|_| random_name(&mut rng, 10)).collect();
        let mut cluster = Cluster {
            spec: spec.clone(),
            rng,
            nodes: Vec::with_capacity(spec.nodes),
            next_node_serial: 0,
            app_hashes,
            pod_names: HashSet::with_capacity(spec.nodes * spec.pods_per_node),
            steady_memory: false,
        };
        let epoch_ms = spec.epoch.unix_nanos().div_euclid(NS_PER_MS);
        for _ in 0..spec.nodes {
            let boot_ms = epoch_ms - cluster.rng.range(25 * MS_PER_DAY, 45 * MS_PER_DAY) as i64;
            let node = cluster.build_node(boot_ms, Some(epoch_ms));
            cluster.nodes.push(node);
        }
        cluster
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// Holds every working set steady at its base (no 10-second wobble), for nodes and
    /// containers present now and added later, so memory is the same at any sample time
    /// (the demo and its end-to-end tests compare memory exactly). CPU is unaffected, and
    /// nothing else changes: the same seed still gives the same names and rates.
    pub fn set_steady_memory(&mut self, steady: bool) {
        self.steady_memory = steady;
        for node in &mut self.nodes {
            node.steady_memory = steady;
            for pod in &mut node.pods {
                for c in &mut pod.containers {
                    c.steady_memory = steady;
                }
            }
        }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn find_node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Index of a pod on `node`; indices shift when pods are added or removed.
    pub fn find_pod(&self, node: usize, namespace: &str, name: &str) -> Option<usize> {
        self.nodes[node]
            .pods
            .binary_search_by(|p| (p.namespace.as_str(), p.name.as_str()).cmp(&(namespace, name)))
            .ok()
    }

    /// Restarts a container at `at` (taken down to whole milliseconds): its counter starts
    /// again from 0 and its start time moves. The pod cgroup's counter carries on.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn restart_container(&mut self, node: usize, pod: usize, container: usize, at: Timestamp) {
        let c = &mut self.nodes[node].pods[pod].containers[container];
        c.start_time = container_start(at.unix_nanos().div_euclid(NS_PER_MS));
        c.restart_count += 1;
    }

    /// Schedules a new seeded pod on `node`, started at `start` (whole milliseconds);
    /// its containers start 0–3 s later. The node's CPU rate grows from `start` on.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn add_pod(&mut self, node: usize, start: Timestamp) -> PodRef {
        let start_ms = start.unix_nanos().div_euclid(NS_PER_MS);
        let pod = self.build_pod(start_ms);
        let pod_ref = pod.pod_ref();
        let n = &mut self.nodes[node];
        let idx = n.pods.partition_point(|p| {
            (p.namespace.as_str(), p.name.as_str()) < (pod.namespace.as_str(), pod.name.as_str())
        });
        n.pods.insert(idx, pod);
        n.rate_changed(start_ms * NS_PER_MS);
        n.rebuild_series_order();
        pod_ref
    }

    /// Deletes a pod at `at`; the node's CPU rate drops from then on.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn remove_pod(&mut self, node: usize, pod: usize, at: Timestamp) -> Pod {
        let n = &mut self.nodes[node];
        let removed = n.pods.remove(pod);
        n.rate_changed(at.unix_nanos());
        n.rebuild_series_order();
        self.pod_names
            .remove(&(removed.namespace.clone(), removed.name.clone()));
        removed
    }

    /// Replaces a pod's labels (they are apiserver data; no payload carries them).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn set_pod_labels(&mut self, node: usize, pod: usize, mut labels: Vec<(String, String)>) {
        labels.sort();
        self.nodes[node].pods[pod].labels = labels;
    }

    /// Adds a node booted at `boot`, with the spec's number of pods starting 20–90 s after
    /// boot. Names and addresses continue the sequence (never reused). Returns its index.
    pub fn add_node(&mut self, boot: Timestamp) -> usize {
        let node = self.build_node(boot.unix_nanos().div_euclid(NS_PER_MS), None);
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Removes a node and its pods; later nodes' indices shift down by one.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn remove_node(&mut self, node: usize) -> Node {
        let removed = self.nodes.remove(node);
        for p in &removed.pods {
            self.pod_names
                .remove(&(p.namespace.clone(), p.name.clone()));
        }
        removed
    }

    /// True CPU rate of a container, in nanocores.
    pub fn true_cpu_nanocores(&self, node: usize, pod: usize, container: usize) -> u64 {
        self.nodes[node].pods[pod].containers[container].cpu_nanocores
    }

    /// True working set of a container sampled at `at`.
    pub fn true_memory_bytes(
        &self,
        node: usize,
        pod: usize,
        container: usize,
        at: Timestamp,
    ) -> u64 {
        self.nodes[node].pods[pod].containers[container].memory(at.unix_nanos())
    }

    /// True cumulative CPU of a container's current incarnation at `at` (as rendered).
    pub fn true_cpu_counter_ns(
        &self,
        node: usize,
        pod: usize,
        container: usize,
        at: Timestamp,
    ) -> u64 {
        self.nodes[node].pods[pod].containers[container].cpu_counter(at.unix_nanos())
    }

    /// True CPU rate of a node (system plus all pods), in nanocores.
    pub fn true_node_cpu_nanocores(&self, node: usize) -> u64 {
        self.nodes[node].cpu_nanocores()
    }

    /// True working set of a node sampled at `at`.
    pub fn true_node_memory_bytes(&self, node: usize, at: Timestamp) -> u64 {
        self.nodes[node].memory(at.unix_nanos())
    }

    /// True cumulative CPU of a node at `at` (as rendered).
    pub fn true_node_cpu_counter_ns(&self, node: usize, at: Timestamp) -> u64 {
        self.nodes[node].cpu_counter(at.unix_nanos())
    }

    /// When a container's sample for a request at `request_time` was taken, in the
    /// format's precision; `None` if it has no sample yet.
    pub fn container_sample_time(
        &self,
        node: usize,
        pod: usize,
        container: usize,
        request_time: Timestamp,
        format: Format,
    ) -> Option<Timestamp> {
        self.nodes[node].pods[pod].containers[container]
            .sample_time(request_time.unix_nanos(), format)
            .map(Timestamp::from_unix_nanos)
    }

    /// When the node's sample for a request at `request_time` was taken.
    pub fn node_sample_time(
        &self,
        node: usize,
        request_time: Timestamp,
        format: Format,
    ) -> Option<Timestamp> {
        self.nodes[node]
            .sample_time(request_time.unix_nanos(), format)
            .map(Timestamp::from_unix_nanos)
    }

    /// Exactly what a correct decoder outputs for the payload rendered for `node` at
    /// `request_time` in `format`.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn expected_batch(
        &self,
        node: usize,
        request_time: Timestamp,
        format: Format,
    ) -> NodeBatch {
        let n = &self.nodes[node];
        let req = request_time.unix_nanos();
        let mut batch = NodeBatch::default();
        batch.kubelet_scrape_error = (format == Format::Resource).then_some(false);
        if let Some(t) = n.sample_time(req, format) {
            batch.node = Some(MetricsPoint {
                start_time: None,
                timestamp: Timestamp::from_unix_nanos(t),
                cumulative_cpu_ns: format.decoded_cpu(n.cpu_counter(t)),
                memory_working_set_bytes: n.memory(t),
            });
            batch.node_swap_usage_bytes = Some(n.swap_bytes);
        }
        for pod in n.pods.iter().filter(|p| p.listed(req)) {
            let listed = pod.containers.iter().filter(|c| c.listed(req));
            let mut containers = Vec::with_capacity(pod.containers.len());
            let mut missing = None;
            for c in listed {
                let Some(t) = c.sample_time(req, format) else {
                    missing = Some(c.name.clone());
                    break;
                };
                let start = c.start_time.unix_nanos();
                let start = match format {
                    // Nudged at creation, so trunc(f64 seconds × 1e9) gives it back; the
                    // kubelet prints no start time that is not after the Unix epoch.
                    Format::Resource => {
                        (start > 0).then(|| f64_seconds_round_trip(start as u64) as i64)
                    }
                    Format::Summary => Some(Format::Summary.floor(start)),
                };
                containers.push(ContainerPoint {
                    name: &c.name,
                    point: MetricsPoint {
                        start_time: start.map(Timestamp::from_unix_nanos),
                        timestamp: Timestamp::from_unix_nanos(t),
                        cumulative_cpu_ns: format.decoded_cpu(c.cpu_counter(t)),
                        memory_working_set_bytes: c.memory(t),
                    },
                    swap_usage_bytes: Some(c.swap_bytes),
                });
            }
            if let Some(container) = missing {
                batch.dropped_pods.push(DroppedPod {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    container,
                    reason: DropReason::MissingCpu,
                });
                continue;
            }
            let pod_level = match pod.sample_time(req, format) {
                Some(t) => PodLevelUsage {
                    timestamp: Some(Timestamp::from_unix_nanos(t)),
                    cumulative_cpu_ns: Some(format.decoded_cpu(pod.cpu_counter(t))),
                    memory_working_set_bytes: Some(pod.memory(t)),
                    swap_usage_bytes: Some(pod.swap()),
                },
                None => PodLevelUsage::default(),
            };
            batch.push_pod(&pod.namespace, &pod.name, pod_level, containers);
        }
        batch
    }

    /// Renders the payload of `format` for `node`; see the `render_*` methods.
    pub fn render(&self, node: usize, request_time: Timestamp, format: Format, out: &mut Vec<u8>) {
        match format {
            Format::Resource => self.render_resource(node, request_time, out),
            Format::Summary => self.render_summary(node, request_time, out),
        }
    }

    /// Appends the node's `/metrics/resource` answer to a request at `request_time`, as a
    /// 1.31 kubelet prints it: families sorted by name, `[STABLE]` resource metrics and
    /// `[ALPHA]` swap series, samples sorted by label values, millisecond timestamps except
    /// on `container_start_time_seconds` and `resource_scrape_error`.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn render_resource(&self, node: usize, request_time: Timestamp, out: &mut Vec<u8>) {
        let n = &self.nodes[node];
        let req = request_time.unix_nanos();
        let f = Format::Resource;
        let containers = || {
            n.series_order.iter().map(|&(p, c)| {
                let pod = &n.pods[p as usize];
                (pod, &pod.containers[c as usize])
            })
        };

        let mut fam = FamilyWriter::new(&CONTAINER_CPU);
        for (pod, c) in containers() {
            if let Some(t) = c.sample_time(req, f) {
                fam.sample(out);
                container_labels(out, c, pod);
                value_and_time(out, seconds(c.cpu_counter(t)), t);
            }
        }
        let mut fam = FamilyWriter::new(&CONTAINER_MEMORY);
        for (pod, c) in containers() {
            if let Some(t) = c.sample_time(req, f) {
                fam.sample(out);
                container_labels(out, c, pod);
                value_and_time(out, c.memory(t) as f64, t);
            }
        }
        let mut fam = FamilyWriter::new(&CONTAINER_START);
        for (pod, c) in containers() {
            let start = c.start_time.unix_nanos();
            if c.listed(req) && start > 0 {
                fam.sample(out);
                container_labels(out, c, pod);
                out.push(b' ');
                write_go_float(seconds(start as u64), out);
                out.push(b'\n');
            }
        }
        let mut fam = FamilyWriter::new(&CONTAINER_SWAP);
        for (pod, c) in containers() {
            if let Some(t) = c.sample_time(req, f) {
                fam.sample(out);
                container_labels(out, c, pod);
                value_and_time(out, c.swap_bytes as f64, t);
            }
        }

        if let Some(t) = n.sample_time(req, f) {
            FamilyWriter::new(&NODE_CPU).sample(out);
            value_and_time(out, seconds(n.cpu_counter(t)), t);
            FamilyWriter::new(&NODE_MEMORY).sample(out);
            value_and_time(out, n.memory(t) as f64, t);
            // The kubelet stamps node swap with the memory time; both are `t` here.
            FamilyWriter::new(&NODE_SWAP).sample(out);
            value_and_time(out, n.swap_bytes as f64, t);
        }

        let pods = || {
            n.pods
                .iter()
                .filter(|p| p.listed(req))
                .filter_map(|p| p.sample_time(req, f).map(|t| (p, t)))
        };
        let mut fam = FamilyWriter::new(&POD_CPU);
        for (pod, t) in pods() {
            fam.sample(out);
            pod_labels(out, pod);
            value_and_time(out, seconds(pod.cpu_counter(t)), t);
        }
        let mut fam = FamilyWriter::new(&POD_MEMORY);
        for (pod, t) in pods() {
            fam.sample(out);
            pod_labels(out, pod);
            value_and_time(out, pod.memory(t) as f64, t);
        }
        let mut fam = FamilyWriter::new(&POD_SWAP);
        for (pod, t) in pods() {
            fam.sample(out);
            pod_labels(out, pod);
            value_and_time(out, pod.swap() as f64, t);
        }

        FamilyWriter::new(&SCRAPE_ERROR).sample(out);
        out.extend_from_slice(b" 0\n");
    }

    /// Appends the node's full `/stats/summary` document (no `only_cpu_and_memory`) for a
    /// request at `request_time`, as a 1.31 kubelet on cgroup v2 answers: one-space
    /// indentation, Go struct key order, whole-second UTC times.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn render_summary(&self, node: usize, request_time: Timestamp, out: &mut Vec<u8>) {
        let n = &self.nodes[node];
        let req = request_time.unix_nanos();
        let f = Format::Summary;
        let boot = n.boot_time.unix_nanos();
        let mut j = Json::new(out);
        j.open(b'{');

        j.key("node");
        j.open(b'{');
        j.str("nodeName", &n.name);
        let node_t = n.sample_time(req, f);
        j.key("systemContainers");
        j.open(b'[');
        if let Some(t) = node_t {
            let total_cpu = n.cpu_counter(t);
            let node_ws = n.memory(t);
            let kubelet_rate = n.system_cpu_nanocores / 2;
            let runtime_rate = n.system_cpu_nanocores / 4;
            let kubelet_start = boot + 4 * NS_PER_SEC + 210 * NS_PER_MS;
            let runtime_start = boot + 2 * NS_PER_SEC + 870 * NS_PER_MS;
            let kubelet_cpu = linear_counter(kubelet_rate, t - kubelet_start);
            let runtime_cpu = linear_counter(runtime_rate, t - runtime_start);
            let kubelet_ws = page_floor(n.system_memory_bytes / 8);
            let runtime_ws = page_floor(n.system_memory_bytes / 10);
            let pods_rate = n.cpu_nanocores() - n.system_cpu_nanocores;
            let pods_cpu = total_cpu.saturating_sub(kubelet_cpu + runtime_cpu);
            let pods_ws = node_ws.saturating_sub(n.system_memory_bytes);
            let system = [
                (
                    "kubelet",
                    kubelet_start,
                    kubelet_rate,
                    kubelet_cpu,
                    kubelet_ws,
                ),
                (
                    "runtime",
                    runtime_start,
                    runtime_rate,
                    runtime_cpu,
                    runtime_ws,
                ),
                ("pods", kubelet_start, pods_rate, pods_cpu, pods_ws),
            ];
            for (name, start, rate, cpu, ws) in system {
                j.elem();
                j.open(b'{');
                j.str("name", name);
                j.time("startTime", start);
                j.cpu(t, rate, cpu);
                j.memory(t, None, ws, n.noise ^ cpu);
                j.close(b'}');
            }
        }
        j.close(b']');
        j.time("startTime", boot);
        if let Some(t) = node_t {
            let ws = n.memory(t);
            let cpu = n.cpu_counter(t);
            j.cpu(t, n.cpu_nanocores(), cpu);
            j.memory(
                t,
                Some(n.memory_capacity_bytes.saturating_sub(ws)),
                ws,
                n.noise ^ cpu,
            );
            let up_secs = ((t - boot) / NS_PER_SEC) as u64;
            let rx = up_secs * (n.noise % 4_000_000 + 1_000_000);
            j.network(t, "eth0", rx, rx / 3, Some(("cni0", rx / 40, rx / 50)));
            let pods = n.pods.len() as u64;
            j.fs(
                "fs",
                t,
                21_474_836_480 + PAGE * (n.noise % 1_000_000),
                400_000 + 37 * pods,
            );
            j.key("runtime");
            j.open(b'{');
            j.fs(
                "imageFs",
                t,
                9_126_805_504 + PAGE * (n.noise % 500_000),
                210_774 + 11 * pods,
            );
            j.fs(
                "containerFs",
                t,
                9_126_805_504 + PAGE * (n.noise % 500_000),
                210_774 + 11 * pods,
            );
            j.close(b'}');
            j.key("rlimit");
            j.open(b'{');
            j.time("time", t);
            j.u64("maxpid", 4_194_304);
            j.u64("curproc", 230 + 6 * pods);
            j.close(b'}');
            j.swap(
                t,
                Some(SWAP_SIZE.saturating_sub(n.swap_bytes)),
                n.swap_bytes,
            );
        }
        j.close(b'}');

        j.key("pods");
        j.open(b'[');
        for pod in n.pods.iter().filter(|p| p.listed(req)) {
            j.elem();
            j.open(b'{');
            j.key("podRef");
            j.open(b'{');
            j.str("name", &pod.name);
            j.str("namespace", &pod.namespace);
            j.str("uid", &pod.uid);
            j.close(b'}');
            j.time("startTime", pod.start_time.unix_nanos());
            j.key("containers");
            j.open(b'[');
            for c in pod.containers.iter().filter(|c| c.listed(req)) {
                j.elem();
                j.open(b'{');
                j.str("name", &c.name);
                j.time("startTime", c.start_time.unix_nanos());
                if let Some(t) = c.sample_time(req, f) {
                    let cpu = c.cpu_counter(t);
                    j.cpu(t, c.cpu_nanocores, cpu);
                    j.memory(t, None, c.memory(t), c.noise ^ cpu);
                    j.fs("rootfs", t, PAGE * (c.noise % 4096 + 2), 12);
                    j.fs("logs", t, PAGE * ((c.noise >> 12) % 8192 + 1), 1);
                    let available = if c.swap_bytes > 0 {
                        CONTAINER_SWAP_LIMIT - c.swap_bytes
                    } else {
                        0
                    };
                    j.swap(t, Some(available), c.swap_bytes);
                }
                j.close(b'}');
            }
            j.close(b']');
            if let Some(t) = pod.sample_time(req, f) {
                let cpu = pod.cpu_counter(t);
                j.cpu(t, pod.cpu_nanocores(), cpu);
                j.memory(t, None, pod.memory(t), pod.noise ^ cpu);
                let up_secs = ((t - pod.start_time.unix_nanos()) / NS_PER_SEC) as u64;
                let rx = up_secs * (pod.noise % 50_000 + 500);
                j.network(t, "eth0", rx, rx / 3, None);
                // Volume stats are cached by the kubelet, so their time lags behind.
                j.key("volume");
                j.open(b'[');
                j.elem();
                j.open(b'{');
                j.fs_fields(t - 40 * NS_PER_SEC, PAGE * 3, 9);
                let mut volume = *b"kube-api-access-xxxxx";
                for (i, ch) in volume[16..].iter_mut().enumerate() {
                    *ch = NAME_ALPHABET[(pod.noise >> (i * 5)) as usize % NAME_ALPHABET.len()];
                }
                j.str(
                    "name",
                    std::str::from_utf8(&volume).unwrap_or("kube-api-access"),
                );
                j.close(b'}');
                j.close(b']');
                j.fs("ephemeral-storage", t, PAGE * (pod.noise % 20_000 + 20), 20);
                j.key("process_stats");
                j.open(b'{');
                j.u64("process_count", pod.containers.len() as u64 + pod.noise % 4);
                j.close(b'}');
                j.swap(t, None, pod.swap());
            }
            j.close(b'}');
        }
        j.close(b']');
        j.close(b'}');
        j.out.push(b'\n');
    }

    fn build_node(&mut self, boot_ms: i64, initial_epoch_ms: Option<i64>) -> Node {
        let serial = self.next_node_serial;
        self.next_node_serial += 1;
        let name = format!("node-{serial:06}");
        let host = 0x01_0001u32.wrapping_add(serial);
        let address = [127, (host >> 16) as u8, (host >> 8) as u8, host as u8];
        let zone = ["a", "b", "c"][serial as usize % 3];
        let instance = *self
            .rng
            .pick(&["m5.2xlarge", "m6i.4xlarge", "c6i.4xlarge", "r6i.2xlarge"]);
        let labels = vec![
            ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("kubernetes.io/hostname".to_owned(), name.clone()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
            (
                "node.kubernetes.io/instance-type".to_owned(),
                instance.to_owned(),
            ),
            (
                "topology.kubernetes.io/zone".to_owned(),
                format!("zone-{zone}"),
            ),
        ];
        let sample_offset_ms = self.rng.range(1, 14_000) as u32;
        let system_cpu_nanocores = self.rng.range(100_000_000, 600_000_000);
        let system_memory_bytes = PAGE * self.rng.range(600 * MIB_PAGES, 1500 * MIB_PAGES);
        let swap_bytes = if self.rng.below(3) == 0 {
            PAGE * self.rng.range(1, 32_768)
        } else {
            0
        };
        let noise = self.rng.next_u64();

        let mut pods = Vec::with_capacity(self.spec.pods_per_node);
        for _ in 0..self.spec.pods_per_node {
            let start_ms = match initial_epoch_ms {
                // Initial pods have run for 2 minutes to 20 days, but not before boot.
                Some(epoch_ms) => (epoch_ms - self.rng.range(120_000, 20 * MS_PER_DAY) as i64)
                    .max(boot_ms + 30_000),
                None => boot_ms + self.rng.range(20_000, 90_000) as i64,
            };
            pods.push(self.build_pod(start_ms));
        }
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

        let base: u64 = system_memory_bytes
            + pods
                .iter()
                .map(|p| {
                    p.overhead_memory_bytes
                        + p.containers
                            .iter()
                            .map(|c| c.memory_base_bytes)
                            .sum::<u64>()
                })
                .sum::<u64>();
        // Capacity: at least 8 GiB, a multiple of 4 GiB, about twice the base working set.
        let memory_capacity_bytes = (base * 2).div_ceil(4 << 30).max(2) * (4 << 30);

        let mut node = Node {
            name,
            address,
            labels,
            boot_time: Timestamp::from_unix_millis(boot_ms),
            sample_offset_ms,
            system_cpu_nanocores,
            system_memory_bytes,
            memory_capacity_bytes,
            swap_bytes,
            pods,
            cpu_segments: Vec::new(),
            series_order: Vec::new(),
            noise,
            steady_memory: self.steady_memory,
        };
        node.rate_changed(boot_ms * NS_PER_MS);
        node.rebuild_series_order();
        node
    }

    fn build_pod(&mut self, start_ms: i64) -> Pod {
        let app_idx = self.rng.below(APPS.len() as u64) as usize;
        let app = &APPS[app_idx];
        let hash = self.app_hashes[app_idx].clone();
        let name = loop {
            let name = format!("{}-{}-{}", app.name, hash, random_name(&mut self.rng, 5));
            if self
                .pod_names
                .insert((app.namespace.to_owned(), name.clone()))
            {
                break name;
            }
        };
        let uid = random_uid(&mut self.rng);
        let labels = vec![
            ("app".to_owned(), app.name.to_owned()),
            ("pod-template-hash".to_owned(), hash),
        ];
        let sample_offset_ms = self.rng.range(1, 14_000) as u32;
        let overhead_cpu_nanocores = self.rng.range(100_000, 2_000_000);
        let overhead_memory_bytes = PAGE * self.rng.range(64, 512);
        let max = self.spec.max_containers_per_pod.max(1) as u64;
        let count = self.rng.range(1, max) as usize;
        let mut containers = Vec::with_capacity(count);
        let mut spare = SIDECARS.iter().filter(|s| !app.containers.contains(s));
        for i in 0..count {
            let name = match app.containers.get(i).or_else(|| spare.next()) {
                Some(name) => (*name).to_owned(),
                None => format!("sidecar-{i}"),
            };
            let start = container_start(start_ms + self.rng.range(0, 3_000) as i64);
            let cpu_nanocores = random_cpu_rate(&mut self.rng);
            let memory_base_bytes = random_memory(&mut self.rng);
            let swap_bytes = if self.rng.below(6) == 0 {
                PAGE * self.rng.range(1, 16_384)
            } else {
                0
            };
            containers.push(Container {
                name,
                cpu_nanocores,
                start_time: start,
                restart_count: 0,
                sample_offset_ms: self.rng.range(1, 14_000) as u32,
                memory_base_bytes,
                swap_bytes,
                noise: self.rng.next_u64(),
                steady_memory: self.steady_memory,
            });
        }
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        Pod {
            namespace: app.namespace.to_owned(),
            name,
            uid,
            labels,
            start_time: Timestamp::from_unix_millis(start_ms),
            sample_offset_ms,
            overhead_cpu_nanocores,
            overhead_memory_bytes,
            containers,
            noise: self.rng.next_u64(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Value arithmetic

/// What a decoder reads back from `ns` printed as seconds: the kubelet divides by 1e9 in
/// f64 and prints the shortest round-trip text, which parses back to the same f64; the
/// decoder multiplies by 1e9 in f64 and truncates.
pub fn f64_seconds_round_trip(ns: u64) -> u64 {
    ((ns as f64 / 1e9) * 1e9) as u64
}

/// The smallest value ≥ `ns` that survives [`f64_seconds_round_trip`] unchanged.
///
/// Why: a rendered counter of N ns often decodes as N−1 (e.g. 4710169001 → 4.710169001 →
/// 4710169000.999999 → 4710169000), which would make the expected batch depend on float
/// luck. Nudging the model's value up by a few ns (or up to 255 at epoch-sized values,
/// where f64 spacing is 256) keeps rendering, truth and decoding identical. Being the
/// smallest such value, the nudge keeps counters non-decreasing.
fn survive_f64_seconds(ns: u64) -> u64 {
    let mut n = ns;
    for _ in 0..NUDGE_LIMIT {
        if f64_seconds_round_trip(n) == n {
            return n;
        }
        n = n.saturating_add(1);
    }
    ns
}

/// A container start at whole milliseconds, nudged to survive the f64 seconds round trip
/// (so `container_start_time_seconds` decodes to exactly this instant).
fn container_start(ms: i64) -> Timestamp {
    let ns = ms.saturating_mul(NS_PER_MS);
    match u64::try_from(ns) {
        Ok(n) if n > 0 => {
            Timestamp::from_unix_nanos(i64::try_from(survive_f64_seconds(n)).unwrap_or(ns))
        }
        _ => Timestamp::from_unix_nanos(ns),
    }
}

/// `rate` nanocores over `elapsed_ns` as CPU nanoseconds (0 for non-positive spans).
fn linear_counter(rate: u64, elapsed_ns: i64) -> u64 {
    let elapsed = u128::try_from(elapsed_ns).unwrap_or(0);
    u64::try_from(u128::from(rate) * elapsed / 1_000_000_000).unwrap_or(u64::MAX)
}

fn sample_instant(request_ns: i64, offset_ms: u32, format: Format) -> i64 {
    format.floor(request_ns.saturating_sub(i64::from(offset_ms) * NS_PER_MS))
}

/// A deterministic per-object value that changes every 10 s of sample time.
fn wobble(noise: u64, t_ns: i64) -> u64 {
    mix64(noise ^ t_ns.div_euclid(10 * NS_PER_SEC) as u64)
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn page_floor(bytes: u64) -> u64 {
    bytes - bytes % PAGE
}

// ---------------------------------------------------------------------------------------
// Seeded randomness

/// SplitMix64: tiny, fast, and good enough to spread names and values.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (multiply-high; the bias is negligible for our small `n`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn random_name(rng: &mut SplitMix64, len: usize) -> String {
    (0..len)
        .map(|_| char::from(*rng.pick(NAME_ALPHABET)))
        .collect()
}

/// A version-4 UUID in its canonical text form.
fn random_uid(rng: &mut SplitMix64) -> String {
    let hi = rng.next_u64();
    let lo = rng.next_u64();
    let hi = (hi & !0xF000) | 0x4000;
    let lo = (lo & !(0xC << 60)) | (0x8 << 60);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// Skewed towards small values, as real clusters are: mostly 10m–1000m.
fn random_cpu_rate(rng: &mut SplitMix64) -> u64 {
    let millis = match rng.below(20) {
        0..=2 => rng.range(1, 9),
        3..=10 => rng.range(10, 99),
        11..=17 => rng.range(100, 999),
        _ => rng.range(1000, 1999),
    };
    millis * 1_000_000 + rng.below(1_000_000)
}

/// 4 MiB to 2 GiB, skewed towards tens of MiB; a multiple of the page size.
fn random_memory(rng: &mut SplitMix64) -> u64 {
    let mib = match rng.below(10) {
        0..=2 => rng.range(4, 31),
        3..=6 => rng.range(32, 255),
        7..=8 => rng.range(256, 1023),
        _ => rng.range(1024, 2047),
    };
    PAGE * (mib * MIB_PAGES + rng.below(MIB_PAGES))
}

struct App {
    namespace: &'static str,
    name: &'static str,
    /// Container names in the order a pod takes them; more get `sidecar-N`.
    containers: &'static [&'static str],
}

const APPS: &[App] = &[
    App {
        namespace: "default",
        name: "web",
        containers: &["nginx", "log-shipper", "istio-proxy"],
    },
    App {
        namespace: "kube-system",
        name: "coredns",
        containers: &["coredns"],
    },
    App {
        namespace: "kube-system",
        name: "ebs-csi-controller",
        containers: &[
            "ebs-plugin",
            "csi-provisioner",
            "csi-attacher",
            "liveness-probe",
        ],
    },
    App {
        namespace: "monitoring",
        name: "grafana",
        containers: &["grafana", "grafana-sc-dashboard"],
    },
    App {
        namespace: "monitoring",
        name: "prometheus-operator",
        containers: &["prometheus-operator", "kube-rbac-proxy"],
    },
    App {
        namespace: "payments",
        name: "checkout",
        containers: &["checkout", "istio-proxy", "otel-collector"],
    },
    App {
        namespace: "payments",
        name: "ledger",
        containers: &["ledger", "cloud-sql-proxy"],
    },
    App {
        namespace: "shop",
        name: "cart",
        containers: &["cart", "redis", "istio-proxy"],
    },
    App {
        namespace: "shop",
        name: "catalog",
        containers: &["catalog", "istio-proxy"],
    },
    App {
        namespace: "shop",
        name: "frontend",
        containers: &["frontend", "istio-proxy"],
    },
    App {
        namespace: "batch",
        name: "report-builder",
        containers: &["worker", "fluent-bit"],
    },
    App {
        namespace: "ingress-nginx",
        name: "ingress-nginx-controller",
        containers: &["controller"],
    },
];

/// Extra containers for pods that get more than their app lists, in this order.
const SIDECARS: &[&str] = &[
    "istio-proxy",
    "fluent-bit",
    "config-reloader",
    "vault-agent",
];

// ---------------------------------------------------------------------------------------
// /metrics/resource text

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
}

const CONTAINER_CPU: Family = Family {
    name: "container_cpu_usage_seconds_total",
    help: "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    kind: "counter",
};
const CONTAINER_MEMORY: Family = Family {
    name: "container_memory_working_set_bytes",
    help: "[STABLE] Current working set of the container in bytes",
    kind: "gauge",
};
const CONTAINER_START: Family = Family {
    name: "container_start_time_seconds",
    help: "[STABLE] Start time of the container since unix epoch in seconds",
    kind: "gauge",
};
const CONTAINER_SWAP: Family = Family {
    name: "container_swap_usage_bytes",
    help: "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems",
    kind: "gauge",
};
const NODE_CPU: Family = Family {
    name: "node_cpu_usage_seconds_total",
    help: "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    kind: "counter",
};
const NODE_MEMORY: Family = Family {
    name: "node_memory_working_set_bytes",
    help: "[STABLE] Current working set of the node in bytes",
    kind: "gauge",
};
const NODE_SWAP: Family = Family {
    name: "node_swap_usage_bytes",
    help: "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems",
    kind: "gauge",
};
const POD_CPU: Family = Family {
    name: "pod_cpu_usage_seconds_total",
    help: "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    kind: "counter",
};
const POD_MEMORY: Family = Family {
    name: "pod_memory_working_set_bytes",
    help: "[STABLE] Current working set of the pod in bytes",
    kind: "gauge",
};
const POD_SWAP: Family = Family {
    name: "pod_swap_usage_bytes",
    help: "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems",
    kind: "gauge",
};
const SCRAPE_ERROR: Family = Family {
    name: "resource_scrape_error",
    help: "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
    kind: "gauge",
};

/// Writes HELP/TYPE before a family's first sample only: the Prometheus client prints
/// nothing for a family without samples.
struct FamilyWriter {
    family: &'static Family,
    started: bool,
}

impl FamilyWriter {
    fn new(family: &'static Family) -> Self {
        FamilyWriter {
            family,
            started: false,
        }
    }

    /// Starts a sample line (header first if needed), up to and including the name.
    fn sample(&mut self, out: &mut Vec<u8>) {
        let f = self.family;
        if !self.started {
            self.started = true;
            for part in [
                "# HELP ",
                f.name,
                " ",
                f.help,
                "\n# TYPE ",
                f.name,
                " ",
                f.kind,
                "\n",
            ] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        out.extend_from_slice(f.name.as_bytes());
    }
}

fn container_labels(out: &mut Vec<u8>, c: &Container, pod: &Pod) {
    out.extend_from_slice(b"{container=\"");
    escape_label(out, &c.name);
    out.extend_from_slice(b"\",namespace=\"");
    escape_label(out, &pod.namespace);
    out.extend_from_slice(b"\",pod=\"");
    escape_label(out, &pod.name);
    out.extend_from_slice(b"\"}");
}

fn pod_labels(out: &mut Vec<u8>, pod: &Pod) {
    out.extend_from_slice(b"{namespace=\"");
    escape_label(out, &pod.namespace);
    out.extend_from_slice(b"\",pod=\"");
    escape_label(out, &pod.name);
    out.extend_from_slice(b"\"}");
}

/// ` <value> <ms timestamp>\n`.
fn value_and_time(out: &mut Vec<u8>, value: f64, t_ns: i64) {
    out.push(b' ');
    write_go_float(value, out);
    out.push(b' ');
    write_i64(out, t_ns.div_euclid(NS_PER_MS));
    out.push(b'\n');
}

/// The text format's label escaping (generated names never need it, but stay correct).
fn escape_label(out: &mut Vec<u8>, s: &str) {
    if !s.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

// ---------------------------------------------------------------------------------------
// /stats/summary JSON

/// Swap configured on nodes that have swap (4 GiB).
const SWAP_SIZE: u64 = 4 << 30;
/// LimitedSwap limit given to containers that use swap (256 MiB).
const CONTAINER_SWAP_LIMIT: u64 = 256 << 20;
const FS_CAPACITY: u64 = 107_321_753_600;
const FS_INODES: u64 = 6_553_600;

/// Go's `json.MarshalIndent(v, "", " ")` layout, written straight into the output.
struct Json<'a> {
    out: &'a mut Vec<u8>,
    depth: usize,
    /// Bit d set: the container open at depth d already has an item (needs a comma).
    has_items: u64,
    /// The last formatted time (many values share one), to format each second once.
    time_secs: i64,
    time_text: String,
}

impl<'a> Json<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Json {
            out,
            depth: 0,
            has_items: 0,
            time_secs: i64::MIN,
            time_text: String::with_capacity(24),
        }
    }

    fn bit(&self) -> u64 {
        1 << self.depth.min(63)
    }

    /// Comma (if needed), newline and indentation before an item.
    fn elem(&mut self) {
        if self.has_items & self.bit() != 0 {
            self.out.push(b',');
        }
        self.has_items |= self.bit();
        self.out.push(b'\n');
        self.out.resize(self.out.len() + self.depth, b' ');
    }

    fn key(&mut self, k: &str) {
        self.elem();
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\": ");
    }

    fn open(&mut self, bracket: u8) {
        self.out.push(bracket);
        self.depth += 1;
        self.has_items &= !self.bit();
    }

    fn close(&mut self, bracket: u8) {
        let had_items = self.has_items & self.bit() != 0;
        self.has_items &= !self.bit();
        self.depth = self.depth.saturating_sub(1);
        if had_items {
            self.out.push(b'\n');
            self.out.resize(self.out.len() + self.depth, b' ');
        }
        self.out.push(bracket);
    }

    fn u64(&mut self, k: &str, v: u64) {
        self.key(k);
        write_u64(self.out, v);
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.push(b'"');
        for ch in v.chars() {
            match ch {
                '"' => self.out.extend_from_slice(b"\\\""),
                '\\' => self.out.extend_from_slice(b"\\\\"),
                c if u32::from(c) < 0x20 => {
                    let hex = b"0123456789abcdef";
                    let c = u32::from(c) as usize;
                    self.out.extend_from_slice(b"\\u00");
                    self.out.push(hex[c >> 4]);
                    self.out.push(hex[c & 15]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    self.out
                        .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        self.out.push(b'"');
    }

    /// RFC 3339 in UTC, whole seconds, as `metav1.Time` marshals.
    fn time(&mut self, k: &str, t_ns: i64) {
        let secs = t_ns.div_euclid(NS_PER_SEC);
        if secs != self.time_secs {
            self.time_secs = secs;
            self.time_text.clear();
            Timestamp::from_unix_secs(secs).write_rfc3339_secs(&mut self.time_text);
        }
        self.key(k);
        self.out.push(b'"');
        self.out.extend_from_slice(self.time_text.as_bytes());
        self.out.push(b'"');
    }

    fn cpu(&mut self, t: i64, rate: u64, counter: u64) {
        self.key("cpu");
        self.open(b'{');
        self.time("time", t);
        self.u64("usageNanoCores", rate);
        self.u64("usageCoreNanoSeconds", counter);
        self.close(b'}');
    }

    /// Memory block; the secondary values are plausible functions of the working set.
    fn memory(&mut self, t: i64, available: Option<u64>, working_set: u64, noise: u64) {
        self.key("memory");
        self.open(b'{');
        self.time("time", t);
        if let Some(a) = available {
            self.u64("availableBytes", a);
        }
        self.u64("usageBytes", working_set + page_floor(working_set / 5));
        self.u64("workingSetBytes", working_set);
        self.u64("rssBytes", page_floor(working_set - working_set / 6));
        self.u64("pageFaults", working_set / PAGE * 3 + noise % 100_000);
        self.u64("majorPageFaults", noise % 50);
        self.close(b'}');
    }

    /// The default interface's counters are inlined after `time`, then listed again.
    fn network(&mut self, t: i64, name: &str, rx: u64, tx: u64, extra: Option<(&str, u64, u64)>) {
        self.key("network");
        self.open(b'{');
        self.time("time", t);
        self.interface(name, rx, tx);
        self.key("interfaces");
        self.open(b'[');
        for (name, rx, tx) in std::iter::once((name, rx, tx)).chain(extra) {
            self.elem();
            self.open(b'{');
            self.interface(name, rx, tx);
            self.close(b'}');
        }
        self.close(b']');
        self.close(b'}');
    }

    fn interface(&mut self, name: &str, rx: u64, tx: u64) {
        self.str("name", name);
        self.u64("rxBytes", rx);
        self.u64("rxErrors", 0);
        self.u64("txBytes", tx);
        self.u64("txErrors", 0);
    }

    fn fs(&mut self, k: &str, t: i64, used: u64, inodes_used: u64) {
        self.key(k);
        self.open(b'{');
        self.fs_fields(t, used, inodes_used);
        self.close(b'}');
    }

    fn fs_fields(&mut self, t: i64, used: u64, inodes_used: u64) {
        self.time("time", t);
        self.u64("availableBytes", FS_CAPACITY - 26_843_545_600);
        self.u64("capacityBytes", FS_CAPACITY);
        self.u64("usedBytes", used);
        self.u64("inodesFree", FS_INODES - 412_201);
        self.u64("inodes", FS_INODES);
        self.u64("inodesUsed", inodes_used);
    }

    fn swap(&mut self, t: i64, available: Option<u64>, usage: u64) {
        self.key("swap");
        self.open(b'{');
        self.time("time", t);
        if let Some(a) = available {
            self.u64("swapAvailableBytes", a);
        }
        self.u64("swapUsageBytes", usage);
        self.close(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const EPOCH: Timestamp = ClusterSpec::DEFAULT_EPOCH;

    fn at(ms_after_epoch: i64) -> Timestamp {
        Timestamp::from_unix_nanos(EPOCH.unix_nanos() + ms_after_epoch * NS_PER_MS)
    }

    fn cluster(seed: u64) -> Cluster {
        Cluster::new(&ClusterSpec::new(seed, 4, 12))
    }

    fn render_everything(c: &Cluster, t: Timestamp) -> Vec<u8> {
        let mut out = Vec::new();
        for node in 0..c.nodes().len() {
            c.render_resource(node, t, &mut out);
            c.render_summary(node, t, &mut out);
        }
        out
    }

    fn mutate(c: &mut Cluster) {
        c.restart_container(0, 1, 0, at(2_000));
        c.add_pod(1, at(3_000));
        c.remove_pod(2, 0, at(4_000));
        c.add_node(at(-600_000));
        c.remove_node(0);
    }

    #[test]
    fn same_seed_same_bytes_different_seed_different_bytes() {
        let (mut a, mut b) = (cluster(7), cluster(7));
        let t = at(15_123);
        assert_eq!(render_everything(&a, t), render_everything(&b, t));
        assert_ne!(render_everything(&a, t), render_everything(&cluster(8), t));
        mutate(&mut a);
        mutate(&mut b);
        let t = at(45_456);
        assert_eq!(render_everything(&a, t), render_everything(&b, t));
    }

    #[test]
    fn render_appends_without_clearing() {
        let c = cluster(1);
        let mut out = b"prefix".to_vec();
        c.render_resource(0, at(0), &mut out);
        assert!(out.starts_with(b"prefix# HELP "));
    }

    #[test]
    fn steady_memory_is_the_base_at_any_time_and_changes_nothing_else() {
        let wobbly = cluster(5);
        let mut steady = cluster(5);
        steady.set_steady_memory(true);
        let added = steady.add_node(at(-600_000));
        for (i, node) in steady.nodes().iter().enumerate() {
            let base = |n: &Node| {
                n.system_memory_bytes
                    + n.pods()
                        .iter()
                        .map(|p| {
                            p.overhead_memory_bytes
                                + p.containers()
                                    .iter()
                                    .map(|c| c.memory_base_bytes)
                                    .sum::<u64>()
                        })
                        .sum::<u64>()
            };
            for t in [at(0), at(10_000), at(123_456)] {
                assert_eq!(steady.true_node_memory_bytes(i, t), base(node));
                for (p, pod) in node.pods().iter().enumerate() {
                    for (c, container) in pod.containers().iter().enumerate() {
                        assert_eq!(
                            steady.true_memory_bytes(i, p, c, t),
                            container.memory_base_bytes
                        );
                    }
                }
            }
            if i != added {
                assert_eq!(node.name, wobbly.nodes()[i].name);
                assert_eq!(node.cpu_nanocores(), wobbly.nodes()[i].cpu_nanocores());
            }
        }
        // The wobble is real without the option.
        let differs = (0..20).any(|k| {
            wobbly.true_node_memory_bytes(0, at(0))
                != wobbly.true_node_memory_bytes(0, at(k * 10_000))
        });
        assert!(differs);
    }

    #[test]
    fn names_labels_and_addresses_look_real() {
        let c = Cluster::new(&ClusterSpec::new(3, 300, 5));
        let n0 = &c.nodes()[0];
        assert_eq!(n0.name, "node-000000");
        assert_eq!(n0.address, [127, 1, 0, 1]);
        assert_eq!(c.nodes()[299].address, [127, 1, 1, 44]);
        assert!(
            n0.labels
                .contains(&("kubernetes.io/hostname".to_owned(), n0.name.clone()))
        );
        assert!(n0.labels.windows(2).all(|w| w[0].0 < w[1].0));
        let mut seen = HashSet::new();
        for node in c.nodes() {
            for pod in node.pods() {
                assert!(
                    seen.insert((pod.namespace.clone(), pod.name.clone())),
                    "duplicate {}",
                    pod.name
                );
                let parts: Vec<&str> = pod.name.rsplitn(3, '-').collect();
                assert_eq!(parts[0].len(), 5, "{}", pod.name);
                assert_eq!(parts[1].len(), 10, "{}", pod.name);
                assert!(APPS.iter().any(|a| a.name == parts[2]), "{}", pod.name);
                assert!(pod.labels.iter().any(|(k, _)| k == "app"));
                assert_eq!(pod.uid.len(), 36);
                assert!((1..=3).contains(&pod.containers().len()));
                for ct in pod.containers() {
                    assert!((1_000_000..2_000_000_000).contains(&ct.cpu_nanocores));
                    assert_eq!(ct.memory_base_bytes % PAGE, 0);
                    assert!(ct.start_time < EPOCH);
                    assert!((1..=14_000).contains(&ct.sample_offset_ms));
                }
            }
            let containers: u64 = node
                .pods()
                .iter()
                .flat_map(|p| p.containers())
                .map(|c| c.cpu_nanocores)
                .sum();
            assert!(node.cpu_nanocores() > containers);
        }
    }

    /// An independent, deliberately strict checker for the text the generator writes.
    fn check_exposition(text: &str) {
        const NO_TIMESTAMP: [&str; 2] = ["container_start_time_seconds", "resource_scrape_error"];
        assert!(text.ends_with('\n'));
        let mut family = String::new();
        let mut kind_seen = false;
        let mut previous_labels: Option<Vec<String>> = None;
        for (i, line) in text.lines().enumerate() {
            let ctx = || format!("line {}: {line:?}", i + 1);
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", ctx()));
                assert!(name > family.as_str(), "families out of order: {}", ctx());
                assert!(
                    help.starts_with("[STABLE] ") || help.starts_with("[ALPHA] "),
                    "{}",
                    ctx()
                );
                family = name.to_owned();
                kind_seen = false;
                previous_labels = None;
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", ctx()));
                assert_eq!(name, family, "{}", ctx());
                assert!(kind == "counter" || kind == "gauge", "{}", ctx());
                assert!(!kind_seen, "{}", ctx());
                kind_seen = true;
                continue;
            }
            assert!(kind_seen, "sample before HELP/TYPE: {}", ctx());
            let name_len = line
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
                .count();
            assert_eq!(&line[..name_len], family, "{}", ctx());
            let mut rest = &line[name_len..];
            let mut names = Vec::new();
            let mut values = Vec::new();
            if let Some(labels) = rest.strip_prefix('{') {
                let mut s = labels;
                loop {
                    let (lname, after) = s.split_once("=\"").unwrap_or_else(|| panic!("{}", ctx()));
                    assert!(
                        !lname.is_empty()
                            && lname.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    );
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next() {
                            Some((_, '\\')) => match chars.next() {
                                Some((_, 'n')) => value.push('\n'),
                                Some((_, c @ ('\\' | '"'))) => value.push(c),
                                _ => panic!("bad escape: {}", ctx()),
                            },
                            Some((idx, '"')) => break idx,
                            Some((_, c)) => value.push(c),
                            None => panic!("unterminated value: {}", ctx()),
                        }
                    };
                    names.push(lname.to_owned());
                    values.push(value);
                    s = &after[end + 1..];
                    if let Some(next) = s.strip_prefix(',') {
                        s = next;
                    } else {
                        rest = s.strip_prefix('}').unwrap_or_else(|| panic!("{}", ctx()));
                        break;
                    }
                }
            }
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "labels not in name order: {}", ctx());
            if let Some(prev) = &previous_labels {
                assert!(
                    *prev < values,
                    "samples not sorted by label values: {}",
                    ctx()
                );
            }
            previous_labels = Some(values);
            let fields: Vec<&str> = rest
                .strip_prefix(' ')
                .unwrap_or_else(|| panic!("{}", ctx()))
                .split(' ')
                .collect();
            let value = fields[0];
            let parsed: f64 = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value: {}", ctx())),
            };
            let mut go = Vec::new();
            write_go_float(parsed, &mut go);
            assert_eq!(go, value.as_bytes(), "not Go's shortest %g: {}", ctx());
            if NO_TIMESTAMP.contains(&family.as_str()) {
                assert_eq!(fields.len(), 1, "unexpected timestamp: {}", ctx());
            } else {
                assert_eq!(fields.len(), 2, "missing timestamp: {}", ctx());
                let ts: i64 = fields[1]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad timestamp: {}", ctx()));
                assert!(ts > 1_700_000_000_000, "{}", ctx());
            }
        }
    }

    #[test]
    fn resource_text_is_well_formed_and_sorted() {
        let mut c = cluster(11);
        mutate(&mut c);
        for t in [at(0), at(2_001), at(3_500), at(61_777)] {
            for node in 0..c.nodes().len() {
                let mut out = Vec::new();
                c.render_resource(node, t, &mut out);
                let text = String::from_utf8(out).expect("utf-8");
                check_exposition(&text);
                for family in [
                    "container_cpu_usage_seconds_total",
                    "node_cpu_usage_seconds_total",
                    "pod_swap_usage_bytes",
                ] {
                    assert!(
                        text.contains(&format!("# TYPE {family} ")),
                        "{family} missing"
                    );
                }
                assert!(text.ends_with("resource_scrape_error 0\n"));
            }
        }
    }

    #[test]
    fn an_empty_node_prints_no_empty_families() {
        let mut c = cluster(5);
        while !c.nodes()[0].pods().is_empty() {
            c.remove_pod(0, 0, at(1_000));
        }
        let mut out = Vec::new();
        c.render_resource(0, at(20_000), &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        check_exposition(&text);
        assert!(
            !text.contains("container_") && !text.contains("pod_"),
            "{text}"
        );
        let batch = c.expected_batch(0, at(20_000), Format::Resource);
        assert!(batch.node.is_some() && (batch.pod_count() == 0));
        let mut out = Vec::new();
        c.render_summary(0, at(20_000), &mut out);
        let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(doc["pods"], Value::Array(Vec::new()));
    }

    fn rfc3339(t: Timestamp) -> String {
        t.to_rfc3339_secs()
    }

    #[test]
    fn summary_json_parses_and_matches_expected_batch() {
        let mut c = cluster(21);
        mutate(&mut c);
        for t in [at(0), at(2_300), at(30_000)] {
            for node in 0..c.nodes().len() {
                let mut out = Vec::new();
                c.render_summary(node, t, &mut out);
                assert!(out.starts_with(b"{\n \"node\": {\n  \"nodeName\": \"node-"));
                assert!(out.ends_with(b"\n}\n"));
                let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
                let expected = c.expected_batch(node, t, Format::Summary);

                let n = &doc["node"];
                let point = expected.node.expect("node sampled");
                assert_eq!(
                    n["cpu"]["usageCoreNanoSeconds"].as_u64(),
                    Some(point.cumulative_cpu_ns)
                );
                assert_eq!(
                    n["memory"]["workingSetBytes"].as_u64(),
                    Some(point.memory_working_set_bytes)
                );
                assert_eq!(
                    n["cpu"]["time"].as_str(),
                    Some(rfc3339(point.timestamp).as_str())
                );
                assert_eq!(point.timestamp.unix_nanos() % NS_PER_SEC, 0);
                assert_eq!(
                    n["swap"]["swapUsageBytes"].as_u64(),
                    expected.node_swap_usage_bytes
                );
                assert_eq!(n["network"]["interfaces"][0]["name"], "eth0");

                let pods = doc["pods"].as_array().expect("pods array");
                assert_eq!(
                    pods.len(),
                    expected.pod_count() + expected.dropped_pods.len()
                );
                for want in expected.pods() {
                    let got = pods
                        .iter()
                        .find(|p| p["podRef"]["name"] == want.name)
                        .expect("pod rendered");
                    assert_eq!(got["podRef"]["namespace"], want.namespace);
                    assert_eq!(
                        got["cpu"]["usageCoreNanoSeconds"].as_u64(),
                        want.pod_level.cumulative_cpu_ns
                    );
                    let got_containers = got["containers"].as_array().expect("containers");
                    assert_eq!(got_containers.len(), want.container_count());
                    for (g, w) in got_containers.iter().zip(want.containers()) {
                        assert_eq!(g["name"], w.name);
                        assert_eq!(
                            g["cpu"]["usageCoreNanoSeconds"].as_u64(),
                            Some(w.point.cumulative_cpu_ns)
                        );
                        assert_eq!(
                            g["memory"]["workingSetBytes"].as_u64(),
                            Some(w.point.memory_working_set_bytes)
                        );
                        assert_eq!(
                            g["cpu"]["time"].as_str(),
                            Some(rfc3339(w.point.timestamp).as_str())
                        );
                        let start = w.point.start_time.expect("start time");
                        assert_eq!(g["startTime"].as_str(), Some(rfc3339(start).as_str()));
                        assert_eq!(g["swap"]["swapUsageBytes"].as_u64(), w.swap_usage_bytes);
                    }
                }
                for dropped in &expected.dropped_pods {
                    let got = pods
                        .iter()
                        .find(|p| p["podRef"]["name"] == dropped.name.as_str())
                        .expect("dropped pod rendered");
                    let container = got["containers"]
                        .as_array()
                        .and_then(|cs| cs.iter().find(|c| c["name"] == dropped.container.as_str()))
                        .expect("failing container rendered");
                    assert!(container.get("cpu").is_none());
                }
            }
        }
    }

    #[test]
    fn resource_values_are_what_the_batch_says() {
        let c = cluster(31);
        let t = at(12_345);
        for node in 0..c.nodes().len() {
            let mut out = Vec::new();
            c.render_resource(node, t, &mut out);
            let text = String::from_utf8(out).expect("utf-8");
            let batch = c.expected_batch(node, t, Format::Resource);
            let point = batch.node.expect("node sampled");
            let line = text
                .lines()
                .find(|l| l.starts_with("node_cpu_usage_seconds_total "))
                .expect("node cpu line");
            let fields: Vec<&str> = line.split(' ').collect();
            let secs: f64 = fields[1].parse().expect("float");
            assert_eq!((secs * 1e9) as u64, point.cumulative_cpu_ns);
            assert_eq!(
                fields[2].parse::<i64>().expect("ms") * NS_PER_MS,
                point.timestamp.unix_nanos()
            );
            for pod in batch.pods() {
                for ct in pod.containers() {
                    let labels = format!(
                        "{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}}",
                        ct.name, pod.namespace, pod.name
                    );
                    let value = |family: &str| -> f64 {
                        let prefix = format!("{family}{labels} ");
                        let line = text
                            .lines()
                            .find(|l| l.starts_with(&prefix))
                            .expect("series present");
                        line[prefix.len()..]
                            .split(' ')
                            .next()
                            .and_then(|v| v.parse().ok())
                            .expect("value")
                    };
                    assert_eq!(
                        (value("container_cpu_usage_seconds_total") * 1e9) as u64,
                        ct.point.cumulative_cpu_ns
                    );
                    assert_eq!(
                        value("container_memory_working_set_bytes") as u64,
                        ct.point.memory_working_set_bytes
                    );
                    let start = (value("container_start_time_seconds") * 1e9) as i64;
                    assert_eq!(Some(Timestamp::from_unix_nanos(start)), ct.point.start_time);
                }
            }
        }
    }

    #[test]
    fn counters_advance_at_the_true_rate() {
        let c = cluster(41);
        let (t0, t1) = (at(60_000), at(75_000));
        for format in [Format::Resource, Format::Summary] {
            for node in 0..c.nodes().len() {
                let (a, b) = (
                    c.expected_batch(node, t0, format),
                    c.expected_batch(node, t1, format),
                );
                let rate = |p: &MetricsPoint, q: &MetricsPoint| -> u64 {
                    let window = (q.timestamp.unix_nanos() - p.timestamp.unix_nanos()) as u128;
                    assert_eq!(window, 15 * NS_PER_SEC as u128);
                    ((q.cumulative_cpu_ns - p.cumulative_cpu_ns) as u128 * 1_000_000_000 / window)
                        as u64
                };
                let (p, q) = (a.node.expect("node"), b.node.expect("node"));
                assert!(
                    rate(&p, &q).abs_diff(c.true_node_cpu_nanocores(node)) <= 2,
                    "{format:?} node {node}"
                );
                for (pi, pod) in c.nodes()[node].pods().iter().enumerate() {
                    let (Some(pa), Some(pb)) = (
                        a.pod(&pod.namespace, &pod.name),
                        b.pod(&pod.namespace, &pod.name),
                    ) else {
                        panic!("pod {} missing", pod.name);
                    };
                    for (ci, ct) in pod.containers().iter().enumerate() {
                        let (x, y) = (
                            pa.container(&ct.name).expect("c"),
                            pb.container(&ct.name).expect("c"),
                        );
                        let got = rate(&x.point, &y.point);
                        assert!(
                            got.abs_diff(c.true_cpu_nanocores(node, pi, ci)) <= 1,
                            "{format:?} {}",
                            ct.name
                        );
                        let sample = c
                            .container_sample_time(node, pi, ci, t1, format)
                            .expect("sampled");
                        assert_eq!(y.point.timestamp, sample);
                        assert_eq!(
                            y.point.memory_working_set_bytes,
                            c.true_memory_bytes(node, pi, ci, sample)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sample_times_are_per_container_and_older_than_the_request() {
        let c = cluster(51);
        let t = at(30_000);
        let batch = c.expected_batch(0, t, Format::Resource);
        let stamps: HashSet<i64> = batch
            .pods()
            .flat_map(|p| p.containers())
            .map(|ct| ct.point.timestamp.unix_nanos())
            .collect();
        assert!(stamps.len() > 5);
        assert!(
            stamps
                .iter()
                .all(|&s| s < t.unix_nanos() && s >= t.unix_nanos() - 14 * NS_PER_SEC)
        );
        assert!(stamps.iter().all(|s| s % NS_PER_MS == 0));
    }

    #[test]
    fn restart_resets_the_counter_and_moves_the_start() {
        let mut c = cluster(61);
        let ct = &c.nodes()[0].pods()[0].containers()[0];
        let (name, offset) = (ct.name.clone(), i64::from(ct.sample_offset_ms));
        let pod = c.nodes()[0].pods()[0].pod_ref();
        let before = c.expected_batch(0, at(20_000), Format::Resource);
        let old = before
            .pod(&pod.namespace, &pod.name)
            .expect("pod")
            .container(&name)
            .expect("c")
            .point;

        let restart = at(20_500);
        c.restart_container(0, 0, 0, restart);
        let start = c.nodes()[0].pods()[0].containers()[0].start_time;
        assert!(start >= restart && start.unix_nanos() - restart.unix_nanos() < 256);

        // Right after the restart the new incarnation has no sample yet: the pod is dropped.
        let soon = at(20_500 + offset / 2);
        for format in [Format::Resource, Format::Summary] {
            let batch = c.expected_batch(0, soon, format);
            assert!(batch.pod(&pod.namespace, &pod.name).is_none());
            let dropped = batch
                .dropped_pods
                .iter()
                .find(|d| d.name == pod.name)
                .expect("dropped");
            assert_eq!(
                (dropped.container.as_str(), dropped.reason),
                (name.as_str(), DropReason::MissingCpu)
            );
        }
        let mut out = Vec::new();
        c.render_resource(0, soon, &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        check_exposition(&text);
        let series = format!(
            "{{container=\"{name}\",namespace=\"{}\",pod=\"{}\"}}",
            pod.namespace, pod.name
        );
        assert!(text.contains(&format!("container_start_time_seconds{series}")));
        assert!(!text.contains(&format!("container_cpu_usage_seconds_total{series}")));

        let later = at(40_000);
        let after = c.expected_batch(0, later, Format::Resource);
        let new = after
            .pod(&pod.namespace, &pod.name)
            .expect("pod")
            .container(&name)
            .expect("c")
            .point;
        assert_eq!(new.start_time, Some(start));
        assert!(new.cumulative_cpu_ns < old.cumulative_cpu_ns);
        let elapsed = (new.timestamp.unix_nanos() - start.unix_nanos()) as u128;
        let expected = (u128::from(c.true_cpu_nanocores(0, 0, 0)) * elapsed / 1_000_000_000) as u64;
        assert!(new.cumulative_cpu_ns >= expected && new.cumulative_cpu_ns - expected < 16);
        assert_eq!(c.nodes()[0].pods()[0].containers()[0].restart_count, 1);
    }

    #[test]
    fn pod_and_node_churn_keep_counters_monotonic() {
        let mut c = cluster(71);
        let node_cpu = |c: &Cluster, t| {
            c.expected_batch(0, t, Format::Summary)
                .node
                .expect("node")
                .cumulative_cpu_ns
        };
        let rate_before = c.true_node_cpu_nanocores(0);
        let a = node_cpu(&c, at(10_000));
        let added = c.add_pod(0, at(12_000));
        let idx = c
            .find_pod(0, &added.namespace, &added.name)
            .expect("added pod");
        assert!(c.true_node_cpu_nanocores(0) > rate_before);
        // Before its containers start the pod is not rendered; afterwards it is.
        assert!(
            c.expected_batch(0, at(11_000), Format::Resource)
                .pod(&added.namespace, &added.name)
                .is_none()
        );
        let later = c.expected_batch(0, at(40_000), Format::Resource);
        assert!(later.pod(&added.namespace, &added.name).is_some());
        let b = node_cpu(&c, at(40_000));
        c.remove_pod(0, idx, at(45_000));
        assert_eq!(c.true_node_cpu_nanocores(0), rate_before);
        let d = node_cpu(&c, at(70_000));
        assert!(a < b && b < d);
        assert!(
            c.expected_batch(0, at(70_000), Format::Resource)
                .pod(&added.namespace, &added.name)
                .is_none()
        );

        c.set_pod_labels(
            0,
            0,
            vec![("tier".into(), "gold".into()), ("app".into(), "x".into())],
        );
        assert_eq!(c.nodes()[0].pods()[0].labels[0].0, "app");

        let new = c.add_node(at(-3_600_000));
        assert_eq!(c.nodes()[new].name, "node-000004");
        assert_eq!(c.nodes()[new].address, [127, 1, 0, 5]);
        assert_eq!(c.find_node("node-000004"), Some(new));
        let batch = c.expected_batch(new, at(0), Format::Resource);
        assert_eq!(batch.pod_count(), 12);
        let removed = c.remove_node(0);
        assert_eq!(removed.name, "node-000000");
        assert_eq!(c.nodes()[0].name, "node-000001");
    }

    #[test]
    fn nudged_values_survive_the_f64_round_trip() {
        let mut rng = SplitMix64(99);
        for _ in 0..20_000 {
            let bits = rng.range(1, 61);
            let n = rng.next_u64() >> (64 - bits);
            let nudged = survive_f64_seconds(n);
            assert_eq!(f64_seconds_round_trip(nudged), nudged, "{n}");
            assert!(nudged - n < 512, "{n} needed {}", nudged - n);
        }
        assert_eq!(survive_f64_seconds(4_710_169_000), 4_710_169_000);
        let c = cluster(81);
        for node in 0..c.nodes().len() {
            let batch = c.expected_batch(node, at(9_999), Format::Resource);
            for ct in batch.pods().flat_map(|p| p.containers()) {
                assert_eq!(
                    f64_seconds_round_trip(ct.point.cumulative_cpu_ns),
                    ct.point.cumulative_cpu_ns
                );
            }
            for (pi, pod) in c.nodes()[node].pods().iter().enumerate() {
                for (ci, ct) in pod.containers().iter().enumerate() {
                    let start = ct.start_time.unix_nanos() as u64;
                    assert_eq!(f64_seconds_round_trip(start), start);
                    let counter = c.true_cpu_counter_ns(node, pi, ci, at(9_999));
                    assert_eq!(f64_seconds_round_trip(counter), counter);
                }
            }
        }
    }
}
