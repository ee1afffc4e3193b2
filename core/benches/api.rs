//! Encoding big lists through the resource handler: NodeMetricsList for 5,000 nodes and
//! PodMetricsList for 150,000 pods (2 containers each), as JSON and as Table. Reports
//! time per list; the byte sizes are printed once.

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use metrics_core::api::router::{Context, resource_route, serve_resource};
use metrics_core::cluster::{ClusterView, Labels, Node, Pod};
use metrics_core::storage::{Snapshot, Storage};
use metrics_core::time::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use testdata::batches::{BatchSource, Shape};

fn cluster() -> (ClusterView, Arc<Snapshot>) {
    let shape = Shape {
        nodes: 5000,
        pods_per_node: 30,
        deployments: 100,
        namespaces: 10,
        containers_per_pod: 2,
    };
    let mut source = BatchSource::new(7, shape, Timestamp::from_unix_secs(1_750_000_000));
    let mut storage = Storage::new(Duration::from_secs(15));
    storage.store(source.tick(Duration::from_secs(15)));
    let tick = source.tick(Duration::from_secs(15));
    let mut nodes = Vec::new();
    let mut pods = Vec::new();
    for (name, batch) in &tick {
        nodes.push(Node {
            name: name.as_str().into(),
            labels: Labels::new([
                ("kubernetes.io/hostname", name.as_str()),
                ("kubernetes.io/os", "linux"),
            ]),
            addresses: Box::new([]),
            kubelet_port: 10250,
            resource_metrics_path: None,
            ready: true,
        });
        for p in batch.pods() {
            let app = p.name.rsplit_once('-').map_or(p.name, |(a, _)| a);
            pods.push(Pod {
                namespace: p.namespace.into(),
                name: p.name.into(),
                labels: Labels::new([("app", app), ("pod-template-hash", "7f8d9c6b5")]),
            });
        }
    }
    let snapshot = storage.store(tick);
    (ClusterView::from_objects(nodes, pods), snapshot)
}

fn lists(c: &mut Criterion) {
    let (view, snapshot) = cluster();
    let now = Timestamp::from_unix_secs(1_750_000_040);
    let observe = |_: f64| {};
    let ctx = Context {
        now,
        snapshot: &snapshot,
        objects: &view,
        observe_freshness: &observe,
    };
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let mut group = c.benchmark_group("api_list");
    group.sample_size(10);
    for (name, path, accept) in [
        (
            "nodes_5000_json",
            "/apis/metrics.k8s.io/v1beta1/nodes",
            None,
        ),
        (
            "nodes_5000_table",
            "/apis/metrics.k8s.io/v1beta1/nodes",
            Some(table),
        ),
        (
            "pods_150000_json",
            "/apis/metrics.k8s.io/v1beta1/pods",
            None,
        ),
        (
            "pods_150000_table",
            "/apis/metrics.k8s.io/v1beta1/pods",
            Some(table),
        ),
        (
            "pods_150000_protobuf",
            "/apis/metrics.k8s.io/v1beta1/pods",
            Some("application/vnd.kubernetes.protobuf"),
        ),
    ] {
        let route = resource_route(path).expect("resource path");
        let mut body = Vec::new();
        let head = serve_resource(&route, &Method::GET, accept, None, None, &ctx, &mut body);
        println!("{name}: status {}, {} bytes", head.status(), body.len());
        group.bench_function(name, |b| {
            b.iter(|| {
                serve_resource(&route, &Method::GET, accept, None, None, &ctx, &mut body);
                body.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lists);
criterion_main!(benches);
