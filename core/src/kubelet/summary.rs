//! Decoder for the kubelet Summary API (`/stats/summary`), with the v0.5 rules.
//!
//! Only the fields a metrics point needs are materialised; serde skips every other field
//! (network, filesystems, PSI, volumes, ...) without allocating. Counters are read as
//! exact `u64` (they can exceed 2^53), strings are borrowed from the body unless JSON
//! escapes force a copy.

use super::{
    ContainerPoint, DecodeError, DropReason, DroppedPod, MetricsPoint, NodeBatch, PodLevelUsage,
};
use crate::time::Timestamp;
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Summary<'a> {
    #[serde(borrow, default)]
    node: Option<NodeStats<'a>>,
    #[serde(borrow, default)]
    pods: Option<Vec<PodStats<'a>>>,
}

#[derive(Deserialize)]
struct NodeStats<'a> {
    #[serde(borrow, default)]
    cpu: Option<CpuStats<'a>>,
    #[serde(borrow, default)]
    memory: Option<MemoryStats<'a>>,
    #[serde(borrow, default)]
    swap: Option<SwapStats<'a>>,
}

#[derive(Deserialize)]
struct PodStats<'a> {
    #[serde(rename = "podRef", borrow)]
    pod_ref: PodRef<'a>,
    #[serde(borrow, default)]
    containers: Option<Vec<ContainerStats<'a>>>,
    #[serde(borrow, default)]
    cpu: Option<CpuStats<'a>>,
    #[serde(borrow, default)]
    memory: Option<MemoryStats<'a>>,
    #[serde(borrow, default)]
    swap: Option<SwapStats<'a>>,
}

#[derive(Deserialize)]
struct PodRef<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    namespace: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ContainerStats<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(rename = "startTime", borrow, default)]
    start_time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cpu: Option<CpuStats<'a>>,
    #[serde(borrow, default)]
    memory: Option<MemoryStats<'a>>,
    #[serde(borrow, default)]
    swap: Option<SwapStats<'a>>,
}

#[derive(Deserialize)]
struct CpuStats<'a> {
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(rename = "usageCoreNanoSeconds", default)]
    usage_core_nano_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct MemoryStats<'a> {
    #[serde(borrow, default)]
    #[allow(dead_code)]
    time: Option<Cow<'a, str>>,
    #[serde(rename = "workingSetBytes", default)]
    working_set_bytes: Option<u64>,
}

#[derive(Deserialize)]
struct SwapStats<'a> {
    #[serde(borrow, default)]
    #[allow(dead_code)]
    time: Option<Cow<'a, str>>,
    #[serde(rename = "swapUsageBytes", default)]
    swap_usage_bytes: Option<u64>,
}

/// Go renders its zero time as `0001-01-01T00:00:00Z` (or `null`): both mean "unset".
fn parse_time(raw: &Option<Cow<'_, str>>) -> Result<Option<Timestamp>, DecodeError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = Timestamp::parse_rfc3339(raw)
        .ok_or_else(|| DecodeError::Json(format!("invalid time {raw:?}")))?;
    Ok((t != go_zero_time()).then_some(t))
}

fn go_zero_time() -> Timestamp {
    Timestamp::from_unix_secs(-62_135_596_800)
}

fn nonzero(v: Option<u64>) -> Option<u64> {
    v.filter(|&v| v > 0)
}

/// Decodes a Summary API document into a batch, applying upstream v0.5's rules: the point
/// is stamped with `cpu.time`; a missing or zero CPU/memory value, a missing CPU time, or
/// (for containers) a missing start time makes the point incomplete, and an incomplete
/// container drops its whole pod.
pub fn decode(body: &[u8]) -> Result<NodeBatch, DecodeError> {
    let summary: Summary<'_> =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    let mut batch = NodeBatch::default();
    if let Some(node) = &summary.node {
        batch.node_swap_usage_bytes = node.swap.as_ref().and_then(|s| s.swap_usage_bytes);
        batch.node = node_point(node)?;
    }
    let mut pods = summary.pods.unwrap_or_default();
    // Sorted, with a later duplicate replacing an earlier one (as a map insert would).
    pods.sort_by(|a, b| {
        (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name))
    });
    let mut kept: Vec<PodStats<'_>> = Vec::with_capacity(pods.len());
    for pod in pods {
        match kept.last_mut() {
            Some(last)
                if last.pod_ref.namespace == pod.pod_ref.namespace
                    && last.pod_ref.name == pod.pod_ref.name =>
            {
                *last = pod
            }
            _ => kept.push(pod),
        }
    }
    for pod in kept {
        let mut containers = pod.containers.unwrap_or_default();
        if containers.is_empty() {
            continue;
        }
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        containers.dedup_by(|later, earlier| {
            let same = later.name == earlier.name;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        let pod_level = PodLevelUsage {
            timestamp: match &pod.cpu {
                Some(cpu) => parse_time(&cpu.time)?,
                None => None,
            },
            cumulative_cpu_ns: pod.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds),
            memory_working_set_bytes: pod.memory.as_ref().and_then(|m| m.working_set_bytes),
            swap_usage_bytes: pod.swap.as_ref().and_then(|s| s.swap_usage_bytes),
        };
        let mut points = Vec::with_capacity(containers.len());
        let mut failure = None;
        for c in &containers {
            match container_point(c)? {
                Ok(point) => points.push(ContainerPoint {
                    name: &c.name,
                    point,
                    swap_usage_bytes: c.swap.as_ref().and_then(|s| s.swap_usage_bytes),
                }),
                Err(reason) => {
                    failure = Some((c.name.to_string(), reason));
                    break;
                }
            }
        }
        match failure {
            None => batch.push_pod(&pod.pod_ref.namespace, &pod.pod_ref.name, pod_level, points),
            Some((container, reason)) => batch.dropped_pods.push(DroppedPod {
                namespace: pod.pod_ref.namespace.into_owned(),
                name: pod.pod_ref.name.into_owned(),
                container,
                reason,
            }),
        }
    }
    Ok(batch)
}

fn node_point(node: &NodeStats<'_>) -> Result<Option<MetricsPoint>, DecodeError> {
    let Some(cpu) = &node.cpu else {
        return Ok(None);
    };
    let Some(timestamp) = parse_time(&cpu.time)? else {
        return Ok(None);
    };
    let memory = node
        .memory
        .as_ref()
        .and_then(|m| nonzero(m.working_set_bytes));
    Ok(match (nonzero(cpu.usage_core_nano_seconds), memory) {
        (Some(cpu), Some(memory)) => Some(MetricsPoint {
            start_time: None,
            timestamp,
            cumulative_cpu_ns: cpu,
            memory_working_set_bytes: memory,
        }),
        _ => None,
    })
}

/// The outer `Result` is a malformed document; the inner one an incomplete container.
fn container_point(
    c: &ContainerStats<'_>,
) -> Result<Result<MetricsPoint, DropReason>, DecodeError> {
    let Some(start_time) = parse_time(&c.start_time)? else {
        return Ok(Err(DropReason::MissingTime));
    };
    let Some(cpu) = &c.cpu else {
        return Ok(Err(DropReason::MissingCpu));
    };
    let Some(timestamp) = parse_time(&cpu.time)? else {
        return Ok(Err(DropReason::MissingTime));
    };
    let Some(cumulative_cpu_ns) = nonzero(cpu.usage_core_nano_seconds) else {
        return Ok(Err(DropReason::MissingCpu));
    };
    let Some(memory) = c.memory.as_ref().and_then(|m| nonzero(m.working_set_bytes)) else {
        return Ok(Err(DropReason::MissingMemory));
    };
    Ok(Ok(MetricsPoint {
        start_time: Some(start_time),
        timestamp,
        cumulative_cpu_ns,
        memory_working_set_bytes: memory,
    }))
}
