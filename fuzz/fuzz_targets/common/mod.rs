//! Helpers shared by the fuzz targets (each target includes this module with `mod common;`
//! and uses only some of it).
#![allow(dead_code)]

use metrics_core::NodeBatch;

/// Checks what the kubelet decoders promise about every batch they return: pods come out
/// in strict (namespace, name) order and can be looked up, every pod has containers in
/// strict name order, and the drop rules left no zero CPU or memory value behind.
pub fn check_batch(batch: &NodeBatch) {
    if let Some(node) = &batch.node {
        assert!(
            node.cumulative_cpu_ns > 0,
            "node point with zero CPU: {node:?}"
        );
        assert!(
            node.memory_working_set_bytes > 0,
            "node point with zero memory: {node:?}"
        );
    }
    let mut containers = 0;
    let mut previous: Option<(&str, &str)> = None;
    for pod in batch.pods() {
        let key = (pod.namespace, pod.name);
        if let Some(prev) = previous {
            assert!(prev < key, "pods out of order: {prev:?} then {key:?}");
        }
        previous = Some(key);
        assert!(pod.container_count() > 0, "pod {key:?} without containers");
        assert!(
            batch.pod(pod.namespace, pod.name).is_some(),
            "pod {key:?} cannot be looked up"
        );
        let mut prev_name: Option<&str> = None;
        for c in pod.containers() {
            if let Some(p) = prev_name {
                assert!(
                    p < c.name,
                    "containers of {key:?} out of order: {p:?} then {:?}",
                    c.name
                );
            }
            prev_name = Some(c.name);
            assert!(
                c.point.cumulative_cpu_ns > 0 && c.point.memory_working_set_bytes > 0,
                "kept container {:?} of {key:?} has a zero value: {:?}",
                c.name,
                c.point
            );
            assert!(pod.container(c.name).is_some());
            containers += 1;
        }
    }
    assert_eq!(containers, batch.container_count());
    // Sorting a decoder's batch must be a no-op.
    let mut sorted = batch.clone();
    sorted.sort_pods();
    assert!(sorted == *batch, "sort_pods changed a decoded batch");
}

/// Splits `input` into pieces at up to three cut points scaled from `cuts` (each byte is a
/// fraction of the input length), or into single bytes when `bytewise`.
pub fn pieces<'a>(input: &'a [u8], cuts: &[u8], bytewise: bool) -> Vec<&'a [u8]> {
    if bytewise {
        return input.chunks(1).collect();
    }
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) * input.len() / 255)
        .collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for cut in at {
        out.push(&input[start..cut]);
        start = cut;
    }
    out.push(&input[start..]);
    out
}
