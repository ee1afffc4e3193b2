//! Decodes the 110-pod `/metrics/resource` fixture N times (default 100): a fixed
//! workload for `valgrind --tool=callgrind`, whose instruction counts are repeatable
//! where wall-clock benchmarks on a shared machine are not.

use metrics_core::kubelet::resource;
use metrics_core::time::Timestamp;
use std::hint::black_box;
use testdata::fixtures;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let body =
        fixtures::get("extra/metrics-resource-110-pods.txt").expect("110-pod fixture is embedded");
    let request_time = Timestamp::from_unix_millis(1_756_728_015_250);
    let mut pods = 0;
    for _ in 0..runs {
        match resource::decode(black_box(body), request_time) {
            Ok(batch) => pods += batch.pod_count(),
            Err(e) => {
                eprintln!("decode failed: {e}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "{runs} decodes of {} bytes, {pods} pods in total",
        body.len()
    );
}
