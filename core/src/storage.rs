//! The two-point store and the usage it serves.
//!
//! Each tick the scrape results of every node are stored at once; the result is a new,
//! immutable [`Snapshot`] holding, per node and per container, the newest point (`last`),
//! the point the rate is computed against (`prev`, when the rules allow one) and the
//! usage computed from the two. Readers share the snapshot through an `Arc` while the next
//! tick is being collected; the store reads the previous snapshot to build the next one.
//!
//! The rules are upstream metrics-server's (spec `kubelet-and-storage.md` section 4), with
//! its defects replaced by the recommended behaviour: a container only ever pairs with a
//! real previous point of its own; a pod whose containers all fail is omitted, not served
//! empty; containers are ordered by name and a tie on the pod timestamp resolves to the
//! longest window, then the first name; a pod reported by two nodes resolves to the one with the newest sample,
//! then the smaller node name; and a container falling back to its older stored point
//! (its new sample is older than the newest) only pairs with it when it did not restart
//! after that point either.

use crate::kubelet::{MetricsPoint, NodeBatch, PodPoints};
use crate::time::Timestamp;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;
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

/// A node's stored points and the usage they give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    pub last: MetricsPoint,
    pub prev: Option<MetricsPoint>,
    /// `None` without a previous point.
    pub usage: Option<Result<Usage, UsageError>>,
}

impl NodeRecord {
    /// The usage to serve, if any.
    pub fn served(&self) -> Option<&Usage> {
        self.usage.as_ref().and_then(|u| u.as_ref().ok())
    }
}

/// A container's stored points and usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    pub name: String,
    pub last: MetricsPoint,
    pub prev: Option<MetricsPoint>,
    pub usage: Option<Result<Usage, UsageError>>,
}

/// The timestamp and window a pod is served with (its earliest successful container's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodWindow {
    pub timestamp: Timestamp,
    pub window: Duration,
}

/// A pod's containers (sorted by name) and whether it can be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    /// The node that reported the pod.
    pub node: Arc<str>,
    pub containers: Vec<ContainerRecord>,
    /// `Some` when the pod is served: every container has a previous point and at least
    /// one container's usage computed.
    pub window: Option<PodWindow>,
}

impl PodRecord {
    /// Containers to serve with their usage, in name order; empty when the pod is not served.
    pub fn served_containers(&self) -> impl Iterator<Item = (&str, &Usage)> {
        let served = self.window.is_some();
        self.containers
            .iter()
            .filter(move |_| served)
            .filter_map(|c| {
                c.usage
                    .as_ref()
                    .and_then(|u| u.as_ref().ok())
                    .map(|u| (c.name.as_str(), u))
            })
    }

    fn has_prev(&self) -> bool {
        self.containers.iter().any(|c| c.prev.is_some())
    }
}

/// `metrics_server_storage_points`: nodes and containers holding a previous point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoragePoints {
    pub nodes: usize,
    pub containers: usize,
}

/// The immutable result of one tick. Nodes sorted by name, pods by (namespace, name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    nodes: Vec<NodeRecord>,
    pods: Vec<PodRecord>,
    /// `None` before the first store (the gauge has no series then).
    points: Option<StoragePoints>,
}

impl Snapshot {
    /// Every stored node, servable or not.
    pub fn node_records(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// Every stored pod, servable or not.
    pub fn pod_records(&self) -> &[PodRecord] {
        &self.pods
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

    /// A pod, if it can be served.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodRecord> {
        let i = self
            .pods
            .binary_search_by(|p| (p.namespace.as_str(), p.name.as_str()).cmp(&(namespace, name)))
            .ok()?;
        Some(&self.pods[i]).filter(|p| p.window.is_some())
    }

    /// Servable pods in (namespace, name) order; `namespace` limits them to one namespace.
    pub fn pods<'s>(&'s self, namespace: Option<&str>) -> impl Iterator<Item = &'s PodRecord> {
        let range = match namespace {
            None => &self.pods[..],
            Some(ns) => {
                let start = self.pods.partition_point(|p| p.namespace.as_str() < ns);
                let end = start + self.pods[start..].partition_point(|p| p.namespace == ns);
                &self.pods[start..end]
            }
        };
        range.iter().filter(|p| p.window.is_some())
    }

    /// The storage points gauge; `None` before anything was stored.
    pub fn points(&self) -> Option<StoragePoints> {
        self.points
    }

    /// Upstream's readiness: some node and some pod have a previous point.
    pub fn ready(&self) -> bool {
        self.nodes.iter().any(|n| n.prev.is_some()) && self.pods.iter().any(PodRecord::has_prev)
    }
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

        let old = &*self.current;
        let mut nodes = Vec::with_capacity(batches.len());
        // The reporting node of each pod, by position in the sorted batch list.
        let mut node_names: Vec<Arc<str>> = Vec::with_capacity(batches.len());
        let mut incoming: Vec<(PodPoints, usize)> = Vec::new();
        let mut old_nodes = old.nodes.iter().peekable();
        for (node_index, (name, batch)) in batches.into_iter().enumerate() {
            node_names.push(Arc::from(name.as_str()));
            incoming.extend(batch.pods.into_iter().map(|p| (p, node_index)));
            let Some(point) = batch.node else { continue };
            while old_nodes.next_if(|o| o.name < name).is_some() {}
            let prev = old_nodes
                .next_if(|o| o.name == name)
                .and_then(|o| node_prev(&point, o));
            let usage = prev.as_ref().map(|p| usage(&point, p));
            nodes.push(NodeRecord {
                name,
                last: point,
                prev,
                usage,
            });
        }

        // Stable sort: each node's pods are already sorted, so this merges runs.
        incoming.sort_by(|a, b| {
            (a.0.namespace.as_str(), a.0.name.as_str())
                .cmp(&(b.0.namespace.as_str(), b.0.name.as_str()))
        });
        let mut pods: Vec<PodRecord> = Vec::with_capacity(incoming.len());
        let mut old_pods = old.pods.iter().peekable();
        let mut pending: Option<(PodPoints, usize)> = None;
        for item in incoming {
            pending = Some(match pending.take() {
                Some(held)
                    if held.0.namespace == item.0.namespace && held.0.name == item.0.name =>
                {
                    pick_duplicate(held, item, &node_names)
                }
                Some(held) => {
                    pods.push(self.pod_record(held, &mut old_pods, &node_names));
                    item
                }
                None => item,
            });
        }
        if let Some(held) = pending {
            pods.push(self.pod_record(held, &mut old_pods, &node_names));
        }

        let points = StoragePoints {
            nodes: nodes.iter().filter(|n| n.prev.is_some()).count(),
            containers: pods
                .iter()
                .flat_map(|p| &p.containers)
                .filter(|c| c.prev.is_some())
                .count(),
        };
        self.current = Arc::new(Snapshot {
            nodes,
            pods,
            points: Some(points),
        });
        self.snapshot()
    }

    fn pod_record(
        &self,
        (pod, node_index): (PodPoints, usize),
        old_pods: &mut std::iter::Peekable<std::slice::Iter<'_, PodRecord>>,
        node_names: &[Arc<str>],
    ) -> PodRecord {
        let key = (pod.namespace.as_str(), pod.name.as_str());
        while old_pods
            .next_if(|o| (o.namespace.as_str(), o.name.as_str()) < key)
            .is_some()
        {}
        let previous = old_pods.next_if(|o| (o.namespace.as_str(), o.name.as_str()) == key);
        let mut points = pod.containers;
        // Containers come sorted and unique from the decoders; callers building batches
        // by hand may not, and the merge below relies on it.
        if !points.is_sorted_by(|a, b| a.name < b.name) {
            points.reverse();
            points.sort_by(|a, b| a.name.cmp(&b.name));
            points.dedup_by(|later, earlier| later.name == earlier.name);
        }
        let old_containers = previous.map_or(&[][..], |p| &p.containers[..]);
        let mut old_iter = old_containers.iter().peekable();
        let containers: Vec<ContainerRecord> = points
            .into_iter()
            .map(|c| {
                while old_iter.next_if(|o| o.name < c.name).is_some() {}
                let old = old_iter.next_if(|o| o.name == c.name);
                let prev = container_prev(&c.point, old, self.resolution);
                let usage = prev.as_ref().map(|p| usage(&c.point, p));
                ContainerRecord {
                    name: c.name,
                    last: c.point,
                    prev,
                    usage,
                }
            })
            .collect();
        let window = pod_window(&containers);
        PodRecord {
            namespace: pod.namespace,
            name: pod.name,
            node: Arc::clone(&node_names[node_index]),
            containers,
            window,
        }
    }
}

/// Upstream's rule for a node's previous point (section 4.2).
fn node_prev(new: &MetricsPoint, old: &NodeRecord) -> Option<MetricsPoint> {
    if new.timestamp > old.last.timestamp {
        return Some(old.last);
    }
    old.prev.filter(|p| p.timestamp < new.timestamp)
}

/// Upstream's rule for a container's previous point (section 4.3), pairing only with a
/// real point of the same container.
fn container_prev(
    new: &MetricsPoint,
    old: Option<&ContainerRecord>,
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
fn pod_window(containers: &[ContainerRecord]) -> Option<PodWindow> {
    if containers.is_empty() || containers.iter().any(|c| c.prev.is_none()) {
        return None;
    }
    containers
        .iter()
        .filter_map(|c| c.usage.as_ref().and_then(|u| u.as_ref().ok()))
        // Earliest timestamp; on a tie the longest window (the sample data's answer),
        // then name order, so the choice never depends on iteration order.
        .min_by_key(|u| (u.timestamp, std::cmp::Reverse(u.window)))
        .map(|u| PodWindow {
            timestamp: u.timestamp,
            window: u.window,
        })
}

/// Two nodes reported the same pod: keep the one with the newest sample, then the one
/// from the node whose name sorts first.
fn pick_duplicate(
    a: (PodPoints, usize),
    b: (PodPoints, usize),
    node_names: &[Arc<str>],
) -> (PodPoints, usize) {
    let newest = |p: &PodPoints| p.containers.iter().map(|c| c.point.timestamp).max();
    match newest(&a.0).cmp(&newest(&b.0)) {
        Ordering::Greater => a,
        Ordering::Less => b,
        Ordering::Equal if node_names[a.1] <= node_names[b.1] => a,
        Ordering::Equal => b,
    }
}
