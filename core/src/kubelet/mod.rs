//! Decoders from kubelet payloads to a [`NodeBatch`].
//!
//! Two sources, one output: [`resource::decode`] reads the Prometheus text of
//! `/metrics/resource`, [`summary::decode`] the Summary API JSON of `/stats/summary`.
//! Both apply the same drop rules (zero or missing CPU/memory drops a node point; any
//! incomplete container drops its whole pod), never panic, and report a clear
//! [`DecodeError`] when the payload as a whole is unreadable.

pub mod resource;
pub mod summary;

use crate::time::Timestamp;
use std::fmt;

/// One sample of a node or container: what the storage keeps per object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsPoint {
    /// When the object (container) started; `None` when the payload gave none or gave a
    /// non-positive time. Nodes never carry one from `/metrics/resource`.
    pub start_time: Option<Timestamp>,
    /// When the kubelet sampled the values.
    pub timestamp: Timestamp,
    /// Cumulative CPU time in nanoseconds.
    pub cumulative_cpu_ns: u64,
    /// Memory working set in bytes.
    pub memory_working_set_bytes: u64,
}

/// A container's point as decoded, plus the swap usage read and kept for later use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerPoint<'a> {
    pub name: &'a str,
    pub point: MetricsPoint,
    /// `container_swap_usage_bytes` / Summary `swap.swapUsageBytes`; not used by storage.
    pub swap_usage_bytes: Option<u64>,
}

/// Pod-level values the kubelet reports for the pod cgroup. Read and kept, never served
/// (upstream serves a pod as the list of its containers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodLevelUsage {
    pub timestamp: Option<Timestamp>,
    pub cumulative_cpu_ns: Option<u64>,
    pub memory_working_set_bytes: Option<u64>,
    pub swap_usage_bytes: Option<u64>,
}

/// A run of bytes in a batch's name buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl Span {
    pub(crate) fn of(self, names: &str) -> &str {
        let start = self.start as usize;
        names
            .get(start..start + self.len as usize)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PodSlot {
    pub(crate) namespace: Span,
    pub(crate) name: Span,
    pub(crate) pod_level: PodLevelUsage,
    /// Range of this pod's entries in the batch's container list.
    pub(crate) first: u32,
    pub(crate) count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContainerSlot {
    pub(crate) name: Span,
    pub(crate) point: MetricsPoint,
    pub(crate) swap_usage_bytes: Option<u64>,
}

/// A pod whose every container has a complete point, borrowed from a [`NodeBatch`].
#[derive(Debug, Clone, Copy)]
pub struct PodPoints<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub pod_level: PodLevelUsage,
    containers: &'a [ContainerSlot],
    names: &'a str,
}

impl<'a> PodPoints<'a> {
    /// Containers in name order.
    pub fn containers(
        &self,
    ) -> impl ExactSizeIterator<Item = ContainerPoint<'a>> + DoubleEndedIterator + use<'a> {
        let names = self.names;
        self.containers.iter().map(move |c| ContainerPoint {
            name: c.name.of(names),
            point: c.point,
            swap_usage_bytes: c.swap_usage_bytes,
        })
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }

    /// Finds a container by name.
    pub fn container(&self, name: &str) -> Option<ContainerPoint<'a>> {
        self.containers().find(|c| c.name == name)
    }
}

impl PartialEq for PodPoints<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace
            && self.name == other.name
            && self.pod_level == other.pod_level
            && self.containers().eq(other.containers())
    }
}

impl Eq for PodPoints<'_> {}

/// Why a pod present in the payload was left out of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A container had no usable CPU value (absent, zero, sub-nanosecond, NaN, infinite or negative).
    MissingCpu,
    /// A container had no usable memory working set (absent, zero, NaN, infinite or negative).
    MissingMemory,
    /// Summary API only: a container had no start time or no CPU sample time.
    MissingTime,
}

/// A pod the decoder dropped, and the first container that made it fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedPod {
    pub namespace: String,
    pub name: String,
    pub container: String,
    pub reason: DropReason,
}

/// Everything one scrape of one kubelet yielded.
///
/// Names live in one buffer per batch and pods and containers in two flat lists, so a
/// whole node costs a handful of allocations however many pods it runs: a storage tick
/// over thousands of nodes would otherwise be dominated by allocator traffic.
#[derive(Debug, Clone, Default)]
pub struct NodeBatch {
    /// The node's own point, if complete (non-zero CPU and memory).
    pub node: Option<MetricsPoint>,
    /// `node_swap_usage_bytes`, kept for later use.
    pub node_swap_usage_bytes: Option<u64>,
    /// Pods the drop rules removed, sorted by (namespace, name); for logs and tests.
    pub dropped_pods: Vec<DroppedPod>,
    /// The kubelet's own `resource_scrape_error` / `scrape_error` gauge, when present.
    pub kubelet_scrape_error: Option<bool>,
    pub(crate) names: String,
    pub(crate) pods: Vec<PodSlot>,
    pub(crate) containers: Vec<ContainerSlot>,
    /// Set when a pod was pushed out of (namespace, name) order or twice.
    pub(crate) out_of_order: bool,
}

impl NodeBatch {
    /// A batch with a node point and no pods yet (add them with [`NodeBatch::push_pod`]).
    pub fn with_node(node: Option<MetricsPoint>) -> NodeBatch {
        NodeBatch {
            node,
            ..NodeBatch::default()
        }
    }

    /// Complete pods, in (namespace, name) order when pushed so (decoders do).
    pub fn pods(&self) -> impl ExactSizeIterator<Item = PodPoints<'_>> + DoubleEndedIterator {
        self.pods.iter().map(|slot| self.view(slot))
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }

    /// Finds a pod by namespace and name.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodPoints<'_>> {
        if self.out_of_order {
            return self
                .pods()
                .rev()
                .find(|p| p.namespace == namespace && p.name == name);
        }
        let names = &self.names;
        let i = self
            .pods
            .binary_search_by(|p| (p.namespace.of(names), p.name.of(names)).cmp(&(namespace, name)))
            .ok()?;
        Some(self.view(&self.pods[i]))
    }

    pub(crate) fn view<'a>(&'a self, slot: &PodSlot) -> PodPoints<'a> {
        let first = slot.first as usize;
        PodPoints {
            namespace: slot.namespace.of(&self.names),
            name: slot.name.of(&self.names),
            pod_level: slot.pod_level,
            containers: self
                .containers
                .get(first..first + slot.count as usize)
                .unwrap_or_default(),
            names: &self.names,
        }
    }

    fn intern(&mut self, s: &str) -> Span {
        // Batches are bounded by the response size limit, far below 4 GiB; saturate
        // rather than wrap for a batch built by hand beyond that.
        let start = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push_str(s);
        Span {
            start,
            len: u32::try_from(s.len()).unwrap_or(u32::MAX),
        }
    }

    /// Appends a pod with its containers. Containers are kept in name order with one
    /// entry per name (a later duplicate wins); a pod without containers is not added.
    pub fn push_pod<'c>(
        &mut self,
        namespace: &str,
        name: &str,
        pod_level: PodLevelUsage,
        containers: impl IntoIterator<Item = ContainerPoint<'c>>,
    ) {
        let first = self.containers.len();
        for c in containers {
            let name = self.intern(c.name);
            self.containers.push(ContainerSlot {
                name,
                point: c.point,
                swap_usage_bytes: c.swap_usage_bytes,
            });
        }
        if self.containers.len() == first {
            return;
        }
        let names = &self.names;
        let added = &mut self.containers[first..];
        if !added
            .windows(2)
            .all(|w| w[0].name.of(names) < w[1].name.of(names))
        {
            // A stable sort keeps push order among equal names; keep the last of each.
            added.sort_by(|a, b| a.name.of(names).cmp(b.name.of(names)));
            let mut kept: Vec<ContainerSlot> = Vec::with_capacity(added.len());
            for c in added.iter() {
                match kept.last_mut() {
                    Some(last) if last.name.of(names) == c.name.of(names) => *last = *c,
                    _ => kept.push(*c),
                }
            }
            self.containers.truncate(first);
            self.containers.extend(kept);
        }
        let count = self.containers.len() - first;
        let namespace = self.intern(namespace);
        let name = self.intern(name);
        if let Some(last) = self.pods.last()
            && (last.namespace.of(&self.names), last.name.of(&self.names))
                >= (namespace.of(&self.names), name.of(&self.names))
        {
            self.out_of_order = true;
        }
        let first = u32::try_from(first).unwrap_or(u32::MAX);
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        self.pods.push(PodSlot {
            namespace,
            name,
            pod_level,
            first,
            count,
        });
    }

    /// Puts pods in (namespace, name) order with one entry per pod (a later duplicate
    /// wins), as storage needs them. Free when they already are, as from the decoders.
    pub fn sort_pods(&mut self) {
        if !self.out_of_order {
            return;
        }
        let names = &self.names;
        let key = |p: &PodSlot| (p.namespace.of(names), p.name.of(names));
        self.pods.sort_by(|a, b| key(a).cmp(&key(b)));
        let mut kept: Vec<PodSlot> = Vec::with_capacity(self.pods.len());
        for p in &self.pods {
            match kept.last_mut() {
                Some(last) if key(last) == key(p) => *last = *p,
                _ => kept.push(*p),
            }
        }
        self.pods = kept;
        self.out_of_order = false;
    }
}

impl PartialEq for NodeBatch {
    /// Equal when they hold the same points, whatever the layout of their buffers.
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
            && self.node_swap_usage_bytes == other.node_swap_usage_bytes
            && self.dropped_pods == other.dropped_pods
            && self.kubelet_scrape_error == other.kubelet_scrape_error
            && self.pods().eq(other.pods())
    }
}

impl Eq for NodeBatch {}

/// Why a whole payload was rejected. Every variant names where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Prometheus text: a line that is not valid exposition format.
    Syntax { line: usize, reason: &'static str },
    /// Summary JSON that does not parse or lacks a required field.
    Json(String),
    /// The payload is larger than the decoder accepts.
    TooLarge { limit: usize, actual: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Syntax { line, reason } => {
                write!(f, "text format parsing error in line {line}: {reason}")
            }
            DecodeError::Json(msg) => write!(f, "summary JSON: {msg}"),
            DecodeError::TooLarge { limit, actual } => {
                write!(
                    f,
                    "payload of {actual} bytes exceeds the limit of {limit} bytes"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}
