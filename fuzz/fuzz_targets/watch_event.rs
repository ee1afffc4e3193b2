//! Watch stream lines → `metrics_core::cluster::Cluster::on_watch_event`.
//!
//! A `Cluster` is created, its first Node and Pod list requests are answered with tiny
//! valid lists, and the watches they lead to are started. The input is then handed to
//! both watches as watch lines (split at newlines, so one input may carry a sequence of
//! events; an input without a newline is exactly one line), then both streams end. The
//! published view is walked and every cached node resolved to a kubelet target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_core::cluster::{
    Cluster, ClusterAction, ClusterConfig, Instant, RequestId, RequestKind, ResolveConfig,
    Resource, resolve,
};
use metrics_core::http::StatusCode;

const NODE_LIST: &[u8] = br#"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"10"},"items":[{"kind":"Node","apiVersion":"v1","metadata":{"name":"node-a","resourceVersion":"9","labels":{"kubernetes.io/hostname":"node-a"}},"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.1"},{"type":"Hostname","address":"node-a"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}]}"#;
const POD_LIST: &[u8] = br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"10"},"items":[{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"web-0","namespace":"default","resourceVersion":"8","labels":{"app":"web"}}}]}"#;

fn ms(millis: u64) -> Instant {
    Instant::from_nanos(millis * 1_000_000)
}

/// Drains the action queue; returns the requests sent, by resource.
fn drain(cluster: &mut Cluster) -> (Option<RequestId>, Option<RequestId>, Vec<RequestKind>) {
    let (mut nodes, mut pods, mut kinds) = (None, None, Vec::new());
    while let Some(action) = cluster.poll_action() {
        if let ClusterAction::Send(req) = action {
            // Every request must render as an `http::Request`.
            req.to_http()
                .expect("a cluster request renders as http::Request");
            kinds.push(req.kind);
            match req.id.resource() {
                Resource::Nodes => nodes = Some(req.id),
                Resource::Pods => pods = Some(req.id),
            }
        }
    }
    (nodes, pods, kinds)
}

fuzz_target!(|data: &[u8]| {
    let mut cluster = Cluster::new(ClusterConfig::with_seed(7), ms(0));
    let (Some(node_list), Some(pod_list), _) = drain(&mut cluster) else {
        panic!("a new cluster must ask for both lists");
    };
    cluster.on_response(ms(10), node_list, StatusCode::OK, NODE_LIST);
    cluster.on_response(ms(10), pod_list, StatusCode::OK, POD_LIST);
    let (Some(node_watch), Some(pod_watch), kinds) = drain(&mut cluster) else {
        panic!("both lists must lead to watches");
    };
    assert!(kinds.iter().all(|k| *k == RequestKind::Watch));
    assert!(cluster.synced());

    let mut now = 20;
    for line in data.split(|&b| b == b'\n') {
        cluster.on_watch_event(ms(now), node_watch, line);
        cluster.on_watch_event(ms(now), pod_watch, line);
        let _ = drain(&mut cluster);
        now += 1;
    }
    cluster.on_watch_end(ms(now), node_watch);
    cluster.on_watch_end(ms(now), pod_watch);
    let _ = drain(&mut cluster);
    if let Some(at) = cluster.poll_timeout() {
        cluster.handle_timeout(at.max(ms(now)));
        let _ = drain(&mut cluster);
    }

    let view = cluster.view();
    let cfg = ResolveConfig::default();
    let mut nodes = 0;
    for node in view.nodes() {
        assert!(
            view.node(&node.name).is_some(),
            "cached node cannot be looked up"
        );
        if let Ok(target) = resolve(node, &cfg) {
            assert!(
                target.path.starts_with('/'),
                "kubelet path {:?}",
                target.path
            );
        }
        nodes += 1;
    }
    assert_eq!(nodes, view.node_count());
    let mut pods = 0;
    for pod in view.pods() {
        assert!(
            view.pod(&pod.namespace, &pod.name).is_some(),
            "cached pod cannot be looked up"
        );
        pods += 1;
    }
    assert_eq!(pods, view.pod_count());
});
