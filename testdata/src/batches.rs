//! Scrape batches for storage benchmarks, shaped like upstream's storage benchmark data:
//! random 20-character namespace and node names, pods named
//! `<10-char deployment>-<10-char suffix>` spread over the nodes, containers
//! `container-0..N`, cumulative CPU rising by up to 10^8 ns per point and random memory.
//!
//! Unlike [`crate::generator`], nothing here renders payloads: batches go straight into
//! storage, so a benchmark measures the store and nothing else.

use metrics_core::kubelet::{ContainerPoint, MetricsPoint, NodeBatch, PodLevelUsage};
use metrics_core::time::Timestamp;
use std::time::Duration;

/// The shape of a generated cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub nodes: usize,
    pub pods_per_node: usize,
    pub deployments: usize,
    pub namespaces: usize,
    pub containers_per_pod: usize,
}

/// SplitMix64: small, seedable, good enough for benchmark data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn name(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len() as u64) as usize]))
            .collect()
    }
}

#[derive(Debug, Clone)]
struct PodSpec {
    namespace: usize,
    name: String,
    node: usize,
    start: Timestamp,
}

/// A cluster whose every tick yields one batch per node with fresh points.
#[derive(Debug, Clone)]
pub struct BatchSource {
    rng: Rng,
    shape: Shape,
    namespaces: Vec<String>,
    nodes: Vec<String>,
    pods: Vec<PodSpec>,
    /// Cumulative CPU per node, then per (pod, container), advanced every tick.
    node_cpu: Vec<u64>,
    container_cpu: Vec<u64>,
    container_names: Vec<String>,
    now: Timestamp,
}

impl BatchSource {
    pub fn new(seed: u64, shape: Shape, start: Timestamp) -> BatchSource {
        let mut rng = Rng(seed);
        let namespaces: Vec<String> = (0..shape.namespaces.max(1)).map(|_| rng.name(20)).collect();
        let mut nodes: Vec<String> = (0..shape.nodes).map(|_| rng.name(20)).collect();
        nodes.sort();
        let deployments: Vec<(usize, String)> = (0..shape.deployments.max(1))
            .map(|d| (d % namespaces.len(), rng.name(10)))
            .collect();
        let pod_count = shape.nodes * shape.pods_per_node;
        let mut pods: Vec<PodSpec> = (0..pod_count)
            .map(|i| {
                let (namespace, deployment) = &deployments[i % deployments.len()];
                PodSpec {
                    namespace: *namespace,
                    name: format!("{deployment}-{}", rng.name(10)),
                    // Every node gets pods_per_node pods; which ones is random.
                    node: i % shape.nodes.max(1),
                    start: start.saturating_sub(Duration::from_secs(3600 + rng.below(86_400))),
                }
            })
            .collect();
        for i in (1..pods.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            let (a, b) = (pods[i].node, pods[j].node);
            pods[i].node = b;
            pods[j].node = a;
        }
        pods.sort_by(|a, b| {
            (a.node, &namespaces[a.namespace], &a.name).cmp(&(
                b.node,
                &namespaces[b.namespace],
                &b.name,
            ))
        });
        let node_cpu = (0..shape.nodes).map(|_| rng.below(1 << 40) + 1).collect();
        let container_cpu = (0..pod_count * shape.containers_per_pod)
            .map(|_| rng.below(1 << 36) + 1)
            .collect();
        let container_names = (0..shape.containers_per_pod)
            .map(|c| format!("container-{c}"))
            .collect();
        BatchSource {
            rng,
            shape,
            namespaces,
            nodes,
            pods,
            node_cpu,
            container_cpu,
            container_names,
            now: start,
        }
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The next tick's batches, `step` after the previous one, sorted by node name.
    pub fn tick(&mut self, step: Duration) -> Vec<(String, NodeBatch)> {
        self.now = self.now.saturating_add(step);
        let mut batches: Vec<(String, NodeBatch)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, name)| {
                self.node_cpu[i] += self.rng.below(100_000_000) + 1;
                let node = MetricsPoint {
                    start_time: None,
                    timestamp: self.now,
                    cumulative_cpu_ns: self.node_cpu[i],
                    memory_working_set_bytes: (self.rng.below(1 << 24) + 1) * 4096,
                };
                (name.clone(), NodeBatch::with_node(Some(node)))
            })
            .collect();
        let per_pod = self.shape.containers_per_pod;
        for (p, pod) in self.pods.iter().enumerate() {
            let mut points = Vec::with_capacity(per_pod);
            for c in 0..per_pod {
                let cpu = &mut self.container_cpu[p * per_pod + c];
                *cpu += self.rng.below(100_000_000) + 1;
                let memory = (self.rng.below(1 << 18) + 1) * 4096;
                points.push(MetricsPoint {
                    start_time: Some(pod.start),
                    timestamp: self.now,
                    cumulative_cpu_ns: *cpu,
                    memory_working_set_bytes: memory,
                });
            }
            let containers = points
                .iter()
                .zip(&self.container_names)
                .map(|(point, name)| ContainerPoint {
                    name,
                    point: *point,
                    swap_usage_bytes: None,
                });
            batches[pod.node].1.push_pod(
                &self.namespaces[pod.namespace],
                &pod.name,
                PodLevelUsage::default(),
                containers,
            );
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec case 47: upstream's generator with 1 node, 2 namespaces, 5 pods per node,
    /// 3 deployments and 7 containers per pod gives 1 node point, 5 pods of 7 containers
    /// each, in 2 namespaces.
    #[test]
    fn case_47_generator_shape() {
        let shape = Shape {
            nodes: 1,
            pods_per_node: 5,
            deployments: 3,
            namespaces: 2,
            containers_per_pod: 7,
        };
        let mut source = BatchSource::new(47, shape, Timestamp::from_unix_secs(1_700_000_000));
        let batches = source.tick(Duration::from_secs(15));
        assert_eq!(batches.len(), 1);
        assert!(batches[0].1.node.is_some());
        let pods: Vec<_> = batches[0].1.pods().collect();
        assert_eq!(pods.len(), 5);
        assert!(pods.iter().all(|p| p.container_count() == 7));
        let mut namespaces: Vec<&str> = pods.iter().map(|p| p.namespace).collect();
        namespaces.dedup();
        assert_eq!(namespaces.len(), 2);
        // Pods sorted by (namespace, name) within the node, as decoders deliver them.
        assert!(
            pods.windows(2)
                .all(|w| (w[0].namespace, w[0].name) < (w[1].namespace, w[1].name))
        );
    }

    #[test]
    fn counters_rise_and_seeds_repeat() {
        let shape = Shape {
            nodes: 3,
            pods_per_node: 4,
            deployments: 2,
            namespaces: 2,
            containers_per_pod: 2,
        };
        let start = Timestamp::from_unix_secs(1_700_000_000);
        let mut a = BatchSource::new(1, shape, start);
        let mut b = BatchSource::new(1, shape, start);
        let first = a.tick(Duration::from_secs(15));
        assert_eq!(first, b.tick(Duration::from_secs(15)));
        let second = a.tick(Duration::from_secs(15));
        for ((_, x), (_, y)) in first.iter().zip(&second) {
            assert!(
                y.node.expect("node").cumulative_cpu_ns > x.node.expect("node").cumulative_cpu_ns
            );
            for (p, q) in x.pods().zip(y.pods()) {
                assert_eq!((p.namespace, p.name), (q.namespace, q.name));
                for (c, d) in p.containers().zip(q.containers()) {
                    assert!(d.point.cumulative_cpu_ns > c.point.cumulative_cpu_ns);
                }
            }
        }
        assert_eq!(first.iter().map(|(_, b)| b.pod_count()).sum::<usize>(), 12);
    }
}
