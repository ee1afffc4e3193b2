//! Storage invariants over arbitrary point sequences: a served usage never comes from a
//! decreasing counter, an empty or negative window, or two sides of a restart, and its
//! timestamp is that of a point that was stored.

use metrics_core::kubelet::{ContainerPoint, MetricsPoint, NodeBatch, PodLevelUsage};
use metrics_core::storage::Storage;
use metrics_core::time::Timestamp;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const BASE: i64 = 1_700_000_000_000_000_000;

/// One object's sample in a tick, or its absence.
#[derive(Debug, Clone)]
struct Sample {
    present: bool,
    /// Which node reports it (containers only): both nodes may report the same pod.
    on_b: bool,
    /// Index into a small set of start times (restarts happen when it changes).
    start: Option<u8>,
    /// Milliseconds since BASE: small range so ties, reorders and duplicates are common.
    ts_ms: u32,
    cpu: u64,
    memory: u64,
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.8, 0u8..4),
        0u32..120_000,
        prop_oneof![0u64..5, 1u64..1_000_000_000_000],
        1u64..1 << 40,
    )
        .prop_map(|(present, on_b, start, ts_ms, cpu, memory)| Sample {
            present,
            on_b,
            start,
            ts_ms,
            cpu,
            memory,
        })
}

fn start_time(i: u8) -> Timestamp {
    // Start times interleave with the sample times, before and inside the range.
    Timestamp::from_unix_nanos(BASE + (i64::from(i) * 35_000 - 20_000) * 1_000_000)
}

fn to_point(s: &Sample) -> MetricsPoint {
    MetricsPoint {
        start_time: s.start.map(start_time),
        timestamp: Timestamp::from_unix_nanos(BASE + i64::from(s.ts_ms) * 1_000_000),
        cumulative_cpu_ns: s.cpu,
        memory_working_set_bytes: s.memory,
    }
}

const NODES: [&str; 2] = ["node-a", "node-b"];
const CONTAINERS: [(&str, &str, &str); 4] = [
    ("ns", "p1", "a"),
    ("ns", "p1", "b"),
    ("ns", "p2", "a"),
    ("other", "p1", "main"),
];

/// A tick: one sample per node and per container (each reported by node-a or node-b).
type Tick = (Vec<Sample>, Vec<Sample>);

fn tick() -> impl Strategy<Value = Tick> {
    (
        prop::collection::vec(sample(), NODES.len()),
        prop::collection::vec(sample(), CONTAINERS.len()),
    )
}

fn batches(tick: &Tick) -> Vec<(String, NodeBatch)> {
    let mut pods: BTreeMap<(&str, (&str, &str)), Vec<ContainerPoint>> = BTreeMap::new();
    for (s, (ns, pod, c)) in tick.1.iter().zip(CONTAINERS) {
        if s.present {
            let node = if s.on_b { "node-b" } else { "node-a" };
            pods.entry((node, (ns, pod)))
                .or_default()
                .push(ContainerPoint {
                    name: c,
                    point: to_point(s),
                    swap_usage_bytes: None,
                });
        }
    }
    NODES
        .iter()
        .zip(&tick.0)
        .map(|(name, s)| {
            let mut batch = NodeBatch::with_node(s.present.then(|| to_point(s)));
            for ((_, (ns, pod)), cs) in pods.iter().filter(|((node, _), _)| node == name) {
                batch.push_pod(ns, pod, PodLevelUsage::default(), cs.iter().copied());
            }
            (name.to_string(), batch)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn storage_invariants(ticks in prop::collection::vec(tick(), 1..12), resolution_s in 10u64..90) {
        let mut storage = Storage::new(Duration::from_secs(resolution_s));
        // Every point ever stored per object, to check that a served prev is one of them
        // (or the synthetic start-time point of a fresh container).
        let mut seen: BTreeMap<String, BTreeSet<Timestamp>> = BTreeMap::new();
        let mut synthetic: BTreeMap<String, BTreeSet<Timestamp>> = BTreeMap::new();
        for tick in &ticks {
            let input = batches(tick);
            for (node, batch) in &input {
                if let Some(p) = batch.node {
                    seen.entry(format!("node/{node}")).or_default().insert(p.timestamp);
                }
                for pod in batch.pods() {
                    for c in pod.containers() {
                        let key = format!("{}/{}/{}", pod.namespace, pod.name, c.name);
                        seen.entry(key.clone()).or_default().insert(c.point.timestamp);
                        if let Some(start) = c.point.start_time {
                            // A fresh container's synthetic previous point sits at its start.
                            synthetic.entry(key).or_default().insert(start);
                        }
                    }
                }
            }
            let snap = storage.store(input.clone());
            for record in snap.node_records() {
                let Some(u) = record.served() else { continue };
                let prev = record.prev.expect("served implies prev");
                prop_assert!(u.window > Duration::ZERO);
                let last = record.last.expect("served implies last");
                prop_assert!(last.cumulative_cpu_ns >= prev.cumulative_cpu_ns, "never negative CPU");
                prop_assert_eq!(u.timestamp, last.timestamp);
                let input_point = input.iter().find(|(n, _)| *n == record.name).and_then(|(_, b)| b.node);
                prop_assert_eq!(Some(last), input_point, "last is this tick's point");
                let node_key = format!("node/{}", record.name);
                prop_assert!(seen[&node_key].contains(&prev.timestamp), "prev is a stored point");
            }
            for pod in snap.pod_records() {
                let Some(window) = pod.window else { continue };
                prop_assert!(pod.containers().all(|c| c.prev.is_some()));
                let mut earliest = None;
                for c in pod.containers() {
                    let prev = c.prev.expect("checked above");
                    let key = format!("{}/{}/{}", pod.namespace, pod.name, c.name);
                    let from_start = prev.cumulative_cpu_ns == 0 && synthetic.get(&key).is_some_and(|s| s.contains(&prev.timestamp));
                    prop_assert!(from_start || seen[&key].contains(&prev.timestamp), "prev is a stored point");
                    if let Some(start) = c.last.start_time {
                        prop_assert!(start <= prev.timestamp, "no rate across a restart");
                    }
                    if let Some(Ok(u)) = &c.usage {
                        prop_assert!(u.window > Duration::ZERO);
                        prop_assert!(c.last.cumulative_cpu_ns >= prev.cumulative_cpu_ns);
                        prop_assert_eq!(u.timestamp, c.last.timestamp);
                        prop_assert_eq!(u.memory_bytes, c.last.memory_working_set_bytes);
                        let expected = (c.last.cumulative_cpu_ns - prev.cumulative_cpu_ns) as f64 / u.window.as_secs_f64();
                        prop_assert!((u.cpu_nanocores as f64 - expected).abs() <= expected * 1e-9 + 1.0);
                        earliest = Some(earliest.map_or(u.timestamp, |e: Timestamp| e.min(u.timestamp)));
                    }
                }
                prop_assert_eq!(Some(window.timestamp), earliest, "pod timestamp is its earliest container's");
            }
            // The index carried over from the previous tick equals one built afresh.
            let carried: Vec<(String, String, String)> = snap.pod_records().map(|p| (p.namespace.into(), p.name.into(), p.node.into())).collect();
            let fresh_snapshot = metrics_core::storage::Snapshot::clone(&snap);
            let fresh: Vec<(String, String, String)> = fresh_snapshot.pod_records().map(|p| (p.namespace.into(), p.name.into(), p.node.into())).collect();
            prop_assert_eq!(carried, fresh);
            let points = snap.points().expect("stored");
            prop_assert_eq!(points.nodes, snap.node_records().iter().filter(|n| n.prev.is_some()).count());
        }
    }

    /// The same ticks give the same snapshots: nothing depends on iteration order.
    #[test]
    fn storage_is_deterministic(ticks in prop::collection::vec(tick(), 1..6)) {
        let run = |reverse_nodes: bool| {
            let mut storage = Storage::new(Duration::from_secs(15));
            let mut last = storage.snapshot();
            for tick in &ticks {
                let mut input = batches(tick);
                if reverse_nodes {
                    input.reverse();
                }
                last = storage.store(input);
            }
            last
        };
        prop_assert_eq!(run(false), run(true));
    }
}
