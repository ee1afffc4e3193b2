//! generate -> render -> decode equals the model, for both kubelet formats; and two
//! renders 15 s apart yield the model's true rates through storage.

use metrics_core::kubelet::{resource, summary};
use metrics_core::storage::Storage;
use metrics_core::time::Timestamp;
use proptest::prelude::*;
use std::time::Duration;
use testdata::generator::{Cluster, ClusterSpec, Format};

fn cluster(seed: u64, nodes: usize, pods: usize, max_containers: usize) -> Cluster {
    let mut spec = ClusterSpec::new(seed, nodes, pods);
    spec.max_containers_per_pod = max_containers;
    Cluster::new(&spec)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn rendered_payloads_decode_to_the_model(
        seed in any::<u64>(),
        nodes in 1usize..3,
        pods in 0usize..40,
        max_containers in 1usize..5,
        offset_ms in 0i64..3_600_000,
        restart in prop::option::of((any::<prop::sample::Index>(), 0i64..60_000)),
    ) {
        let mut cluster = cluster(seed, nodes, pods, max_containers);
        let epoch = cluster.spec().epoch;
        let request = Timestamp::from_unix_nanos(epoch.unix_nanos() + offset_ms * 1_000_000 + 123_456);
        if let Some((which, before_ms)) = restart
            && !cluster.nodes()[0].pods().is_empty()
        {
            let pod = which.index(cluster.nodes()[0].pods().len());
            let at = Timestamp::from_unix_nanos(request.unix_nanos() - before_ms * 1_000_000);
            cluster.restart_container(0, pod, 0, at);
        }
        for node in 0..nodes {
            let mut body = Vec::new();
            cluster.render_resource(node, request, &mut body);
            let decoded = resource::decode(&body, request).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decoded, cluster.expected_batch(node, request, Format::Resource));

            body.clear();
            cluster.render_summary(node, request, &mut body);
            let decoded = summary::decode(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decoded, cluster.expected_batch(node, request, Format::Summary));
        }
    }

    /// Two scrapes one resolution apart: every served container's CPU equals its true
    /// constant rate (the counters move exactly at that rate between sample times).
    #[test]
    fn stored_rates_equal_the_true_rates(seed in any::<u64>(), pods in 1usize..30, format_summary in any::<bool>()) {
        let cluster = cluster(seed, 1, pods, 3);
        let format = if format_summary { Format::Summary } else { Format::Resource };
        let t0 = Timestamp::from_unix_nanos(cluster.spec().epoch.unix_nanos() + 600_000_000_000);
        let t1 = t0.saturating_add(Duration::from_secs(15));
        let mut storage = Storage::new(Duration::from_secs(15));
        let name = cluster.nodes()[0].name.clone();
        let mut snapshot = storage.snapshot();
        for t in [t0, t1] {
            let mut body = Vec::new();
            cluster.render(0, t, format, &mut body);
            let batch = match format {
                Format::Resource => resource::decode(&body, t),
                Format::Summary => summary::decode(&body),
            }
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
            snapshot = storage.store(vec![(name.clone(), batch)]);
        }
        let node = &cluster.nodes()[0];
        // Every container started before the epoch, 10 minutes before the first scrape.
        prop_assert_eq!(snapshot.pods(None).count(), node.pods().len());
        for (p, pod) in node.pods().iter().enumerate() {
            let served = snapshot.pod(&pod.namespace, &pod.name).expect("every pod served");
            for (c, container) in pod.containers().iter().enumerate() {
                let (_, usage) = served.served_containers().find(|(n, _)| *n == container.name).expect("served container");
                let truth = cluster.true_cpu_nanocores(0, p, c);
                // Truncation to whole nanocores and the f64 round trip cost at most 2.
                prop_assert!(usage.cpu_nanocores.abs_diff(truth) <= 2, "{} vs {}", usage.cpu_nanocores, truth);
                prop_assert_eq!(usage.memory_bytes, cluster.true_memory_bytes(0, p, c, usage.timestamp));
            }
        }
        let usage = snapshot.node(&name).expect("node served");
        prop_assert!(usage.cpu_nanocores.abs_diff(cluster.true_node_cpu_nanocores(0)) <= 2);
    }
}
