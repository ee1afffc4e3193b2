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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPoint {
    pub name: String,
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

/// A pod whose every container has a complete point. Containers are sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPoints {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<ContainerPoint>,
    pub pod_level: PodLevelUsage,
}

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeBatch {
    /// The node's own point, if complete (non-zero CPU and memory).
    pub node: Option<MetricsPoint>,
    /// `node_swap_usage_bytes`, kept for later use.
    pub node_swap_usage_bytes: Option<u64>,
    /// Complete pods, sorted by (namespace, name).
    pub pods: Vec<PodPoints>,
    /// Pods the drop rules removed, sorted by (namespace, name); for logs and tests.
    pub dropped_pods: Vec<DroppedPod>,
    /// The kubelet's own `resource_scrape_error` / `scrape_error` gauge, when present.
    pub kubelet_scrape_error: Option<bool>,
}

impl NodeBatch {
    /// Finds a pod by namespace and name (binary search: pods are sorted).
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodPoints> {
        self.pods
            .binary_search_by(|p| (p.namespace.as_str(), p.name.as_str()).cmp(&(namespace, name)))
            .ok()
            .map(|i| &self.pods[i])
    }
}

impl PodPoints {
    /// Finds a container by name (containers are sorted).
    pub fn container(&self, name: &str) -> Option<&ContainerPoint> {
        self.containers
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.containers[i])
    }
}

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
