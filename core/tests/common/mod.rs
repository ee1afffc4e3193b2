//! Snapshots for the API tests (`api_cases.rs`, `api_dispatch.rs`): two ticks 10 s apart,
//! so every object has a servable pair.

#![allow(dead_code, reason = "each test binary uses part of it")]

use metrics_core::kubelet::{ContainerPoint, MetricsPoint, NodeBatch, PodLevelUsage};
use metrics_core::storage::{Snapshot, Storage};
use metrics_core::time::Timestamp;
use std::sync::Arc;
use std::time::Duration;

pub const CORE_SECOND: u64 = 1_000_000_000;
pub const MIB: u64 = 1 << 20;

pub fn t0() -> Timestamp {
    Timestamp::parse_rfc3339("2026-08-01T10:00:00Z").expect("time")
}

pub fn at(secs: u64) -> Timestamp {
    t0().saturating_add(Duration::from_secs(secs))
}

pub fn point(start: Option<Timestamp>, ts: Timestamp, cpu: u64, mem: u64) -> MetricsPoint {
    MetricsPoint {
        start_time: start,
        timestamp: ts,
        cumulative_cpu_ns: cpu,
        memory_working_set_bytes: mem,
    }
}

/// Stores two scrapes 10 s apart in which every listed node and pod (one container `c`)
/// has points, so all are servable: node CPU 1 core, 3 MiB; container 250m, 5 MiB.
pub fn snapshot_with(nodes: &[&str], pods: &[(&str, &str)]) -> Arc<Snapshot> {
    let mut storage = Storage::new(Duration::from_secs(15));
    let mut snapshot = storage.snapshot();
    for (i, secs) in [(0u64, 10u64), (1, 20)] {
        let mut batches: Vec<(String, NodeBatch)> = Vec::new();
        for (n, name) in nodes.iter().enumerate() {
            let mut batch = NodeBatch::with_node(Some(point(
                None,
                at(secs),
                (10 + 10 * i) * CORE_SECOND,
                (2 + i) * MIB,
            )));
            if n == 0 {
                let mut sorted: Vec<&(&str, &str)> = pods.iter().collect();
                sorted.sort();
                for (ns, pod) in sorted {
                    let c = ContainerPoint {
                        name: "c",
                        point: point(
                            Some(t0().saturating_sub(Duration::from_secs(3600))),
                            at(secs),
                            10 * CORE_SECOND + i * 2_500_000_000,
                            5 * MIB,
                        ),
                        swap_usage_bytes: None,
                    };
                    batch.push_pod(ns, pod, PodLevelUsage::default(), [c]);
                }
            }
            batches.push((name.to_string(), batch));
        }
        snapshot = storage.store(batches);
    }
    snapshot
}
