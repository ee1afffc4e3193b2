//! The self-metrics registry under concurrent use: API threads observe freshness while
//! the engine records ticks and `/metrics` is printed. (Kept out of `core/src`, which
//! spawns no threads.)

use metrics_core::api::selfmetrics::{FreshnessBatch, SelfMetrics};
use std::time::Duration;

const FRESHNESS: &str = "metrics_server_api_metric_freshness_seconds";

fn encoded(m: &SelfMetrics) -> String {
    let mut out = Vec::new();
    m.encode(&mut out);
    String::from_utf8(out).expect("utf-8 exposition")
}

/// The lines of one family (its samples only).
fn family(text: &str, name: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with(name))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn concurrent_freshness_observations_are_all_counted() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 20_000;
    let m = SelfMetrics::new(Duration::from_secs(15));
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let m = &m;
            scope.spawn(move || {
                let mut batch = FreshnessBatch::new();
                for i in 0..PER_THREAD {
                    // Exactly representable values: the sum is exact in any order.
                    let v = if (i + t) % 2 == 0 { 0.5 } else { 2.0 };
                    if i % 4 == 0 {
                        batch.observe(v);
                    } else {
                        m.observe_freshness(v);
                    }
                }
                m.observe_freshness_batch(&batch);
            });
        }
        // The engine keeps updating and /metrics keeps printing meanwhile; every print
        // must be internally consistent (+Inf bucket == _count, buckets non-decreasing).
        for i in 0..200u64 {
            m.observe_tick(Duration::from_millis(i));
            let fam = family(&encoded(&m), FRESHNESS);
            if fam.is_empty() {
                continue;
            }
            let values: Vec<f64> = fam
                .lines()
                .filter(|l| l.contains("_bucket"))
                .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
                .collect();
            assert!(values.windows(2).all(|w| w[0] <= w[1]), "{fam}");
            let count = fam
                .lines()
                .find(|l| l.contains("_count "))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
            assert_eq!(values.last().copied(), count, "{fam}");
        }
    });
    let total = THREADS * PER_THREAD;
    let fam = family(&encoded(&m), FRESHNESS);
    assert!(
        fam.contains(&format!("_bucket{{le=\"1\"}} {}\n", total / 2)),
        "{fam}"
    );
    assert!(fam.contains(&format!("_bucket{{le=\"+Inf\"}} {total}\n")));
    assert!(fam.contains(&format!("_sum {}\n", (total / 2) as f64 * 2.5)));
    assert!(fam.contains(&format!("_count {total}\n")));
}
