//! The two-point store and the usage it serves.
//!
//! Each tick the scrape results of every node are stored at once; the result is a new,
//! immutable [`Snapshot`] holding, per node and per container, the newest point (`last`),
//! the point the rate is computed against (`prev`, when the rules allow one) and the
//! usage computed from the two. Readers share the snapshot through an `Arc` while the next
//! tick is being collected; the store reads the previous snapshot to build the next one.
//!
//! State is kept per node, in the node batch's own layout (one name buffer, flat pod and
//! container lists), and a tick merges each node's sorted pods with the same node's
//! previous ones: no global sort, no hashing, a few allocations per node. The global
//! (namespace, name) order that lookups and lists need is built once per snapshot, on
//! first use.
//!
//! The rules are upstream metrics-server's (spec `kubelet-and-storage.md` section 4), with
//! its defects replaced by the recommended behaviour: a container only ever pairs with a
//! real previous point of its own; a pod whose containers all fail is omitted, not served
//! empty; containers are ordered by name and a tie on the pod timestamp resolves to the
//! longest window, then the first name; a pod reported by two nodes resolves to the one
//! with the newest sample, then the smaller node name; a container falling back to its
//! older stored point (its new sample is older than the newest) only pairs with it when
//! it did not restart after that point either. A pod's history is its node's: a pod name
//! that reappears on another node (a rescheduled StatefulSet pod) starts afresh, where
//! upstream would pair it with the old node's points if its start time were missing.

use crate::kubelet::{MetricsPoint, NodeBatch, Span};
use crate::time::Timestamp;
use std::cmp::Reverse;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Below this age a container is never "fresh": one scrape cannot give a meaningful rate.
pub const MIN_FRESH_WINDOW: Duration = Duration::from_secs(10);

/// Usage of a node or container over `window`, ending at `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub timestamp: Timestamp,
    pub window: Duration,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

/// Why a (last, prev) pair gives no usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageError {
    /// The newer point started before the older one.
    StartTimeDecreased,
    /// The cumulative counter went backwards (a restart the start time did not reveal).
    CpuDecreased,
    /// The two points do not span any time.
    EmptyWindow,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UsageError::StartTimeDecreased => "unexpected decrease in startTime of node/container",
            UsageError::CpuDecreased => "unexpected decrease in cumulative CPU usage value",
            UsageError::EmptyWindow => "points do not span a positive window",
        })
    }
}

impl std::error::Error for UsageError {}

/// A missing start time counts as the earliest possible time.
fn start_or_min(p: &MetricsPoint) -> Timestamp {
    p.start_time.unwrap_or(Timestamp::MIN)
}

/// Usage from two points, exactly as upstream computes it: CPU is the counter delta over
/// the window in seconds (double arithmetic, truncated), memory the newer point's.
pub fn usage(last: &MetricsPoint, prev: &MetricsPoint) -> Result<Usage, UsageError> {
    if start_or_min(last) < start_or_min(prev) {
        return Err(UsageError::StartTimeDecreased);
    }
    if last.cumulative_cpu_ns < prev.cumulative_cpu_ns {
        return Err(UsageError::CpuDecreased);
    }
    let window = last
        .timestamp
        .duration_since(prev.timestamp)
        .ok_or(UsageError::EmptyWindow)?;
    let seconds = window.as_secs() as f64 + f64::from(window.subsec_nanos()) / 1e9;
    let delta = (last.cumulative_cpu_ns - prev.cumulative_cpu_ns) as f64;
    Ok(Usage {
        timestamp: last.timestamp,
        window,
        cpu_nanocores: (delta / seconds) as u64,
        memory_bytes: last.memory_working_set_bytes,
    })
}

/// The timestamp and window a pod is served with (its earliest successful container's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodWindow {
    pub timestamp: Timestamp,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoredPod {
    namespace: Span,
    name: Span,
    first: u32,
    count: u32,
    window: Option<PodWindow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoredContainer {
    name: Span,
    last: MetricsPoint,
    prev: Option<MetricsPoint>,
    usage: Option<Result<Usage, UsageError>>,
}

/// One scraped node: its own points and usage, and its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    /// The node's own point; `None` when it was incomplete but its pods decoded.
    pub last: Option<MetricsPoint>,
    pub prev: Option<MetricsPoint>,
    /// `None` without a previous point.
    pub usage: Option<Result<Usage, UsageError>>,
    names: String,
    pods: Vec<StoredPod>,
    containers: Vec<StoredContainer>,
}

impl NodeRecord {
    /// The usage to serve, if any.
    pub fn served(&self) -> Option<&Usage> {
        self.usage.as_ref().and_then(|u| u.as_ref().ok())
    }

    /// The node's pods in (namespace, name) order.
    pub fn pods(&self) -> impl ExactSizeIterator<Item = PodRecord<'_>> {
        self.pods.iter().map(|p| self.pod_at(p))
    }

    fn pod_at<'a>(&'a self, p: &StoredPod) -> PodRecord<'a> {
        let first = p.first as usize;
        PodRecord {
            namespace: p.namespace.of(&self.names),
            name: p.name.of(&self.names),
            node: &self.name,
            window: p.window,
            containers: self
                .containers
                .get(first..first + p.count as usize)
                .unwrap_or_default(),
            names: &self.names,
        }
    }

    fn pod_key(&self, p: &StoredPod) -> (&str, &str) {
        (p.namespace.of(&self.names), p.name.of(&self.names))
    }
}

/// A pod's stored containers, borrowed from its node's record.
#[derive(Debug, Clone, Copy)]
pub struct PodRecord<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// The node that reported the pod.
    pub node: &'a str,
    /// `Some` when the pod is served: every container has a previous point and at least
    /// one container's usage computed.
    pub window: Option<PodWindow>,
    containers: &'a [StoredContainer],
    names: &'a str,
}

/// A container's stored points and usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerRecord<'a> {
    pub name: &'a str,
    pub last: MetricsPoint,
    pub prev: Option<MetricsPoint>,
    pub usage: Option<Result<Usage, UsageError>>,
}

impl<'a> PodRecord<'a> {
    /// Every stored container, in name order.
    pub fn containers(&self) -> impl ExactSizeIterator<Item = ContainerRecord<'a>> + use<'a> {
        let names = self.names;
        self.containers.iter().map(move |c| ContainerRecord {
            name: c.name.of(names),
            last: c.last,
            prev: c.prev,
            usage: c.usage,
        })
    }

    /// Containers to serve with their usage, in name order; empty when the pod is not served.
    pub fn served_containers(&self) -> impl Iterator<Item = (&'a str, Usage)> + use<'a> {
        let served = self.window.is_some();
        self.containers()
            .filter(move |_| served)
            .filter_map(|c| match c.usage {
                Some(Ok(u)) => Some((c.name, u)),
                _ => None,
            })
    }

    fn has_prev(&self) -> bool {
        self.containers.iter().any(|c| c.prev.is_some())
    }

    fn newest_sample(&self) -> Option<Timestamp> {
        self.containers.iter().map(|c| c.last.timestamp).max()
    }
}

/// `metrics_server_storage_points`: nodes and containers holding a previous point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoragePoints {
    pub nodes: usize,
    pub containers: usize,
}

/// The immutable result of one tick. Nodes sorted by name.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: Vec<NodeRecord>,
    /// `None` before the first store (the gauge has no series then).
    points: Option<StoragePoints>,
    /// (node, pod) positions in (namespace, name) order, one per pod name; built on first use.
    index: OnceLock<Vec<(u32, u32)>>,
}

impl Clone for Snapshot {
    /// A copy whose pod index is rebuilt from scratch on first use (it is only a cache).
    fn clone(&self) -> Self {
        Snapshot {
            nodes: self.nodes.clone(),
            points: self.points,
            index: OnceLock::new(),
        }
    }
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes && self.points == other.points
    }
}

impl Eq for Snapshot {}

impl Snapshot {
    /// Every scraped node, servable or not, by name.
    pub fn node_records(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// A node's usage, if it can be served.
    pub fn node(&self, name: &str) -> Option<&Usage> {
        let i = self
            .nodes
            .binary_search_by(|n| n.name.as_str().cmp(name))
            .ok()?;
        self.nodes[i].served()
    }

    /// Servable nodes in name order.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Usage)> {
        self.nodes
            .iter()
            .filter_map(|n| n.served().map(|u| (n.name.as_str(), u)))
    }

    fn index(&self) -> &[(u32, u32)] {
        self.index.get_or_init(|| build_index(&self.nodes))
    }

    fn record_at(&self, (node, pod): (u32, u32)) -> PodRecord<'_> {
        let n = &self.nodes[node as usize];
        n.pod_at(&n.pods[pod as usize])
    }

    /// Every stored pod, servable or not, in (namespace, name) order.
    pub fn pod_records(&self) -> impl ExactSizeIterator<Item = PodRecord<'_>> {
        self.index().iter().map(|&at| self.record_at(at))
    }

    /// A pod, if it can be served.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodRecord<'_>> {
        let index = self.index();
        let i = index
            .binary_search_by(|&at| {
                let p = self.record_at(at);
                (p.namespace, p.name).cmp(&(namespace, name))
            })
            .ok()?;
        Some(self.record_at(index[i])).filter(|p| p.window.is_some())
    }

    /// Servable pods in (namespace, name) order; `namespace` limits them to one namespace.
    pub fn pods<'s>(&'s self, namespace: Option<&str>) -> impl Iterator<Item = PodRecord<'s>> {
        let index = self.index();
        let range = match namespace {
            None => index,
            Some(ns) => {
                let start = index.partition_point(|&at| self.record_at(at).namespace < ns);
                let end = start
                    + index[start..].partition_point(|&at| self.record_at(at).namespace == ns);
                &index[start..end]
            }
        };
        range
            .iter()
            .map(|&at| self.record_at(at))
            .filter(|p| p.window.is_some())
    }

    /// The storage points gauge; `None` before anything was stored.
    pub fn points(&self) -> Option<StoragePoints> {
        self.points
    }

    /// Upstream's readiness: some node and some pod have a previous point.
    pub fn ready(&self) -> bool {
        self.nodes.iter().any(|n| n.prev.is_some())
            && self.nodes.iter().any(|n| n.pods().any(|p| p.has_prev()))
    }
}

/// Orders every pod by (namespace, name); of a pod reported by several nodes keeps the
/// one with the newest sample, then the one from the node whose name sorts first.
///
/// Sorting 150,000 pods by two strings is the costly part, so each entry carries the
/// rank of its namespace (namespaces are few) and the first eight bytes of its name:
/// most comparisons are integer comparisons on data already in the entry.
fn build_index(nodes: &[NodeRecord]) -> Vec<(u32, u32)> {
    let mut namespaces: Vec<&str> = Vec::new();
    for node in nodes {
        for p in &node.pods {
            let ns = p.namespace.of(&node.names);
            if namespaces.last() != Some(&ns) {
                namespaces.push(ns);
            }
        }
    }
    namespaces.sort_unstable();
    namespaces.dedup();

    struct Entry<'a> {
        namespace: u32,
        prefix: u64,
        name: &'a str,
        node: u32,
        pod: u32,
    }
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(nodes.iter().map(|n| n.pods.len()).sum());
    for (n, node) in nodes.iter().enumerate() {
        let mut last: Option<(&str, u32)> = None;
        for (i, p) in node.pods.iter().enumerate() {
            let (ns, name) = node.pod_key(p);
            // A node's pods are sorted, so its namespaces come in runs.
            let rank = match last {
                Some((prev, rank)) if prev == ns => rank,
                _ => namespaces.binary_search(&ns).map_or(0, |r| r as u32),
            };
            last = Some((ns, rank));
            // Zero padding keeps the prefix order consistent with the string order.
            let mut head = [0u8; 8];
            let len = name.len().min(8);
            head[..len].copy_from_slice(&name.as_bytes()[..len]);
            entries.push(Entry {
                namespace: rank,
                prefix: u64::from_be_bytes(head),
                name,
                node: n as u32,
                pod: i as u32,
            });
        }
    }
    let newest = |e: &Entry<'_>| {
        let node = &nodes[e.node as usize];
        node.pod_at(&node.pods[e.pod as usize]).newest_sample()
    };
    // Nodes are sorted by name, so the node index breaks the last tie by name.
    entries.sort_unstable_by(|a, b| {
        (a.namespace, a.prefix)
            .cmp(&(b.namespace, b.prefix))
            .then_with(|| a.name.cmp(b.name))
            .then_with(|| Reverse(newest(a)).cmp(&Reverse(newest(b))))
            .then_with(|| a.node.cmp(&b.node))
    });
    entries.dedup_by(|later, earlier| {
        later.namespace == earlier.namespace && later.name == earlier.name
    });
    entries.into_iter().map(|e| (e.node, e.pod)).collect()
}

/// The pod order (namespace, name) with duplicates resolved: ties go to the newest
/// sample, then to the node whose name sorts first (nodes are sorted by name).
fn pod_order(nodes: &[NodeRecord], a: (u32, u32), b: (u32, u32)) -> std::cmp::Ordering {
    let record = |(n, p): (u32, u32)| {
        let node = &nodes[n as usize];
        node.pod_at(&node.pods[p as usize])
    };
    let (x, y) = (record(a), record(b));
    (x.namespace, x.name)
        .cmp(&(y.namespace, y.name))
        .then_with(|| Reverse(x.newest_sample()).cmp(&Reverse(y.newest_sample())))
        .then_with(|| a.0.cmp(&b.0))
}

/// The next snapshot's index from the previous one: pods that stayed keep their
/// relative order (their keys did not change), so only pods new to the index are sorted
/// and merged in. Linear in the pod count plus `k log n` for `k` new pods.
fn carry_index(
    old_index: &[(u32, u32)],
    moves: &[Option<(u32, Vec<u32>)>],
    nodes: &[NodeRecord],
) -> Vec<(u32, u32)> {
    let mut covered: Vec<Vec<bool>> = nodes.iter().map(|n| vec![false; n.pods.len()]).collect();
    let mut carried: Vec<(u32, u32)> = Vec::with_capacity(old_index.len());
    for &(n, p) in old_index {
        if let Some((new_node, moved)) = &moves[n as usize]
            && let Some(&new_pod) = moved.get(p as usize)
            && new_pod != u32::MAX
        {
            covered[*new_node as usize][new_pod as usize] = true;
            carried.push((*new_node, new_pod));
        }
    }
    let mut fresh: Vec<(u32, u32)> = Vec::new();
    for (n, flags) in covered.iter().enumerate() {
        fresh.extend(
            flags
                .iter()
                .enumerate()
                .filter(|(_, c)| !**c)
                .map(|(p, _)| (n as u32, p as u32)),
        );
    }
    if fresh.is_empty() {
        return carried;
    }
    fresh.sort_unstable_by(|&a, &b| pod_order(nodes, a, b));
    let same = |a: (u32, u32), b: (u32, u32)| {
        let (x, y) = (&nodes[a.0 as usize], &nodes[b.0 as usize]);
        x.pod_key(&x.pods[a.1 as usize]) == y.pod_key(&y.pods[b.1 as usize])
    };
    let mut merged = Vec::with_capacity(carried.len() + fresh.len());
    let mut rest = &carried[..];
    for f in fresh {
        let at = rest.partition_point(|&c| pod_order(nodes, c, f).is_lt());
        merged.extend_from_slice(&rest[..at]);
        rest = &rest[at..];
        // Carried keys are unique, so duplicates involve a fresh entry and sit next to
        // it; `pod_order` placed the preferred one first.
        if merged.last().is_some_and(|&l| same(l, f)) {
            continue;
        }
        merged.push(f);
        while rest.first().is_some_and(|&c| same(c, f)) {
            rest = &rest[1..];
        }
    }
    merged.extend_from_slice(rest);
    merged
}

/// The store: the configured resolution and the latest snapshot.
#[derive(Debug, Clone)]
pub struct Storage {
    resolution: Duration,
    current: Arc<Snapshot>,
}

impl Storage {
    /// `resolution` is `--metric-resolution`, used by the fresh-container rule.
    pub fn new(resolution: Duration) -> Storage {
        Storage {
            resolution,
            current: Arc::new(Snapshot::default()),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current)
    }

    /// Stores one tick: the batches of every node scraped successfully, keyed by the name
    /// of the Node object. Anything absent from `batches` is forgotten.
    pub fn store(&mut self, mut batches: Vec<(String, NodeBatch)>) -> Arc<Snapshot> {
        // A later batch for the same node replaces an earlier one.
        batches.reverse();
        batches.sort_by(|a, b| a.0.cmp(&b.0));
        batches.dedup_by(|later, earlier| later.0 == earlier.0);

        let old = Arc::clone(&self.current);
        // Where each previous pod went: (new node, new position per previous pod).
        let mut moves: Vec<Option<(u32, Vec<u32>)>> = vec![None; old.nodes.len()];
        let mut old_nodes = old.nodes.iter().enumerate().peekable();
        let nodes: Vec<NodeRecord> = batches
            .into_iter()
            .enumerate()
            .map(|(new_node, (name, mut batch))| {
                batch.sort_pods();
                while old_nodes.next_if(|(_, o)| o.name < name).is_some() {}
                match old_nodes.next_if(|(_, o)| o.name == name) {
                    Some((old_node, previous)) => {
                        let mut moved = vec![u32::MAX; previous.pods.len()];
                        let record = self.node_record(name, batch, Some(previous), &mut moved);
                        moves[old_node] = Some((new_node as u32, moved));
                        record
                    }
                    None => self.node_record(name, batch, None, &mut []),
                }
            })
            .collect();
        let points = StoragePoints {
            nodes: nodes.iter().filter(|n| n.prev.is_some()).count(),
            containers: nodes
                .iter()
                .flat_map(|n| &n.containers)
                .filter(|c| c.prev.is_some())
                .count(),
        };
        let index = OnceLock::new();
        // A previous index that was built is carried forward instead of sorting anew.
        if let Some(old_index) = old.index.get() {
            let _ = index.set(carry_index(old_index, &moves, &nodes));
        }
        self.current = Arc::new(Snapshot {
            nodes,
            points: Some(points),
            index,
        });
        self.snapshot()
    }

    /// Builds a node's record from its batch and its previous record; `moved` (one entry
    /// per previous pod) receives each previous pod's new position, or `u32::MAX`.
    fn node_record(
        &self,
        name: String,
        batch: NodeBatch,
        old: Option<&NodeRecord>,
        moved: &mut [u32],
    ) -> NodeRecord {
        let (last, prev, node_usage) = match batch.node {
            Some(point) => {
                let prev = old.and_then(|o| node_prev(&point, o));
                (Some(point), prev, prev.map(|p| usage(&point, &p)))
            }
            None => (None, None, None),
        };
        let mut pods = Vec::with_capacity(batch.pods.len());
        let mut containers: Vec<StoredContainer> = Vec::with_capacity(batch.containers.len());
        let mut old_pods = old
            .map(|o| o.pods.iter())
            .unwrap_or_default()
            .enumerate()
            .peekable();
        for (new_index, slot) in batch.pods.iter().enumerate() {
            let key = (slot.namespace.of(&batch.names), slot.name.of(&batch.names));
            let old_containers: (&[StoredContainer], &str) = match old {
                Some(o) => {
                    while old_pods.next_if(|(_, p)| o.pod_key(p) < key).is_some() {}
                    match old_pods.next_if(|(_, p)| o.pod_key(p) == key) {
                        Some((old_index, p)) => {
                            moved[old_index] = new_index as u32;
                            let first = p.first as usize;
                            (
                                o.containers
                                    .get(first..first + p.count as usize)
                                    .unwrap_or_default(),
                                o.names.as_str(),
                            )
                        }
                        None => (&[], ""),
                    }
                }
                None => (&[], ""),
            };
            let start = containers.len();
            let mut old_iter = old_containers.0.iter().peekable();
            let first = slot.first as usize;
            for c in batch
                .containers
                .get(first..first + slot.count as usize)
                .unwrap_or_default()
            {
                let cname = c.name.of(&batch.names);
                while old_iter
                    .next_if(|o| o.name.of(old_containers.1) < cname)
                    .is_some()
                {}
                let previous = old_iter.next_if(|o| o.name.of(old_containers.1) == cname);
                let prev = container_prev(&c.point, previous, self.resolution);
                containers.push(StoredContainer {
                    name: c.name,
                    last: c.point,
                    prev,
                    usage: prev.map(|p| usage(&c.point, &p)),
                });
            }
            let window = pod_window(&containers[start..]);
            pods.push(StoredPod {
                namespace: slot.namespace,
                name: slot.name,
                first: u32::try_from(start).unwrap_or(u32::MAX),
                count: slot.count,
                window,
            });
        }
        NodeRecord {
            name,
            last,
            prev,
            usage: node_usage,
            names: batch.names,
            pods,
            containers,
        }
    }
}

/// Upstream's rule for a node's previous point (section 4.2).
fn node_prev(new: &MetricsPoint, old: &NodeRecord) -> Option<MetricsPoint> {
    let last = old.last?;
    if new.timestamp > last.timestamp {
        return Some(last);
    }
    old.prev.filter(|p| p.timestamp < new.timestamp)
}

/// Upstream's rule for a container's previous point (section 4.3), pairing only with a
/// real point of the same container.
fn container_prev(
    new: &MetricsPoint,
    old: Option<&StoredContainer>,
    resolution: Duration,
) -> Option<MetricsPoint> {
    if let Some(start) = new.start_time
        && let Some(age) = new.timestamp.duration_since(start)
        && age < resolution
        && age >= MIN_FRESH_WINDOW
    {
        // Started less than one resolution ago: rate against its own start.
        return Some(MetricsPoint {
            start_time: Some(start),
            timestamp: start,
            cumulative_cpu_ns: 0,
            memory_working_set_bytes: new.memory_working_set_bytes,
        });
    }
    let old = old?;
    if start_or_min(new) >= old.last.timestamp {
        // Restarted since the stored point was sampled.
        return None;
    }
    if new.timestamp > old.last.timestamp {
        return Some(old.last);
    }
    // Falling back to the older stored point: upstream only checks the start time against
    // `last`; a start after the older point would put a restart inside the window.
    old.prev
        .filter(|p| p.timestamp < new.timestamp && start_or_min(new) <= p.timestamp)
}

/// A pod is served only when every container has a previous point; its timestamp and
/// window are those of the successful container with the earliest timestamp.
fn pod_window(containers: &[StoredContainer]) -> Option<PodWindow> {
    if containers.is_empty() || containers.iter().any(|c| c.prev.is_none()) {
        return None;
    }
    containers
        .iter()
        .filter_map(|c| c.usage.as_ref().and_then(|u| u.as_ref().ok()))
        // Earliest timestamp; on a tie the longest window (the sample data's answer),
        // then name order (`min_by` keeps the first), never iteration order.
        .min_by(|a, b| {
            a.timestamp
                .cmp(&b.timestamp)
                .then_with(|| b.window.cmp(&a.window))
        })
        .map(|u| PodWindow {
            timestamp: u.timestamp,
            window: u.window,
        })
}
