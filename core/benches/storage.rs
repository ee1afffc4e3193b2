//! One storage tick (store every node's batch and publish the snapshot) for 5,000 nodes
//! × 30 pods × 2 containers, plus upstream's smaller scenarios for comparison.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use metrics_core::storage::{Snapshot, Storage};
use metrics_core::time::Timestamp;
use std::time::Duration;
use testdata::batches::{BatchSource, Shape};

const RESOLUTION: Duration = Duration::from_secs(15);

fn tick(c: &mut Criterion) {
    let scenarios = [
        (
            "5000x30x2",
            Shape {
                nodes: 5000,
                pods_per_node: 30,
                deployments: 100,
                namespaces: 10,
                containers_per_pod: 2,
            },
        ),
        (
            "1000x30x2",
            Shape {
                nodes: 1000,
                pods_per_node: 30,
                deployments: 100,
                namespaces: 10,
                containers_per_pod: 2,
            },
        ),
        (
            "100x70x2",
            Shape {
                nodes: 100,
                pods_per_node: 70,
                deployments: 100,
                namespaces: 10,
                containers_per_pod: 2,
            },
        ),
    ];
    let mut group = c.benchmark_group("storage_tick");
    group.sample_size(20);
    for (name, shape) in scenarios {
        let mut source = BatchSource::new(7, shape, Timestamp::from_unix_secs(1_750_000_000));
        // A store that already holds one tick, so every container pairs with a prev.
        let mut storage = Storage::new(RESOLUTION);
        storage.store(source.tick(RESOLUTION));
        // Rotate through a few pre-generated ticks, as upstream's benchmark does.
        let ticks: Vec<_> = (0..4).map(|_| source.tick(RESOLUTION)).collect();
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    next = (next + 1) % ticks.len();
                    ticks[next].clone()
                },
                |batch| storage.store(batch),
                BatchSize::LargeInput,
            )
        });
        // The same tick on a server that is being queried: the previous snapshot's pod
        // index exists and is carried forward.
        storage.snapshot().pod_records().len();
        group.bench_function(format!("{name}+index"), |b| {
            b.iter_batched(
                || {
                    next = (next + 1) % ticks.len();
                    ticks[next].clone()
                },
                |batch| storage.store(batch).pod_records().len(),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The (namespace, name) index a snapshot builds from scratch on its first pod lookup
/// when the previous snapshot had none to carry forward (the first query after start-up).
fn first_lookup(c: &mut Criterion) {
    let shape = Shape {
        nodes: 5000,
        pods_per_node: 30,
        deployments: 100,
        namespaces: 10,
        containers_per_pod: 2,
    };
    let mut source = BatchSource::new(7, shape, Timestamp::from_unix_secs(1_750_000_000));
    let mut storage = Storage::new(RESOLUTION);
    storage.store(source.tick(RESOLUTION));
    let snapshot = storage.store(source.tick(RESOLUTION));
    let mut group = c.benchmark_group("snapshot_index");
    group.sample_size(20);
    group.bench_function("build_5000x30x2", |b| {
        // A clone starts without an index.
        b.iter_batched(
            || Snapshot::clone(&snapshot),
            |fresh| fresh.pod_records().len(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, tick, drop_floor, first_lookup);
criterion_main!(benches);

/// What the allocator alone costs: dropping one tick's decoded batches.
fn drop_floor(c: &mut Criterion) {
    let shape = Shape {
        nodes: 5000,
        pods_per_node: 30,
        deployments: 100,
        namespaces: 10,
        containers_per_pod: 2,
    };
    let mut source = BatchSource::new(7, shape, Timestamp::from_unix_secs(1_750_000_000));
    let tick = source.tick(RESOLUTION);
    let mut group = c.benchmark_group("storage_floor");
    group.sample_size(20);
    group.bench_function("drop_batches_5000x30x2", |b| {
        b.iter_batched(|| tick.clone(), drop, BatchSize::LargeInput)
    });
    group.finish();
}
