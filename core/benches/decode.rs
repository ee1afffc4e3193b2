//! Decoder throughput beside a floor and a peer.
//!
//! `/metrics/resource` of a 110-pod node: our decoder, a memchr newline count over the
//! same bytes (the floor: no parser can touch every byte faster), and the third-party
//! `prometheus-parse` crate (the peer). Summary API: our decoder beside
//! `serde_json::from_slice::<serde_json::Value>` on the same document.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use metrics_core::kubelet::{resource, summary};
use metrics_core::time::Timestamp;
use std::hint::black_box;
use testdata::fixtures;

fn metrics_resource(c: &mut Criterion) {
    let body = fixtures::get("extra/metrics-resource-110-pods.txt").expect("110-pod fixture");
    let text = std::str::from_utf8(body).expect("utf-8 fixture");
    let request_time = Timestamp::from_unix_millis(1_756_728_015_250);
    let mut group = c.benchmark_group("metrics_resource_110_pods");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(BenchmarkId::new("decode", "metrics-core"), |b| {
        b.iter(|| resource::decode(black_box(body), request_time).expect("decodes"))
    });
    group.bench_function(BenchmarkId::new("floor", "memchr-newlines"), |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(body)).count())
    });
    group.bench_function(BenchmarkId::new("peer", "prometheus-parse"), |b| {
        b.iter(|| {
            let lines = black_box(text).lines().map(|l| Ok(l.to_owned()));
            prometheus_parse::Scrape::parse(lines).expect("peer parses")
        })
    });
    group.finish();
}

fn stats_summary(c: &mut Criterion) {
    for name in [
        "stats-summary-t1.json",
        "extra/stats-summary-reduced-t1.json",
    ] {
        let body = fixtures::get(name).expect("summary fixture");
        let mut group = c.benchmark_group(format!(
            "stats_summary/{}",
            name.trim_start_matches("extra/")
        ));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("decode/metrics-core", |b| {
            b.iter(|| summary::decode(black_box(body)).expect("decodes"))
        });
        group.bench_function("peer/serde_json-Value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).expect("parses"))
        });
        group.finish();
    }
}

criterion_group!(benches, metrics_resource, stats_summary);
criterion_main!(benches);
