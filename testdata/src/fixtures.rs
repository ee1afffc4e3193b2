//! Kubelet payloads in their exact wire formats, embedded so that tests, simulations and
//! benchmarks need no file access. Expected answers live beside them as JSON.

/// A named payload.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    pub name: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! fixtures {
    ($($path:literal),* $(,)?) => {
        &[$(Fixture { name: $path, bytes: include_bytes!(concat!("../fixtures/", $path)) }),*]
    };
}

/// `/metrics/resource` payloads (Prometheus text).
pub const METRICS_RESOURCE: &[Fixture] = fixtures![
    "metrics-resource-current-t0.txt",
    "metrics-resource-current-t1.txt",
    "metrics-resource-k8s-1.18.txt",
    "metrics-resource-k8s-1.19.txt",
    "metrics-resource-k8s-1.23.txt",
    "metrics-resource-k8s-1.23-zero-start-time.txt",
    "metrics-resource-windows.txt",
];

/// `/stats/summary` payloads (Summary API JSON).
pub const STATS_SUMMARY: &[Fixture] = fixtures!["stats-summary-t0.json", "stats-summary-t1.json"];

/// Payloads written for this project beyond the spec's samples (`fixtures/extra`): a
/// 110-pod node, a 1.29 kubelet, a Windows Summary and a reduced Summary pair 15 s apart.
pub const EXTRA: &[Fixture] = fixtures![
    "extra/metrics-resource-110-pods.txt",
    "extra/metrics-resource-k8s-1.29.txt",
    "extra/stats-summary-windows.json",
    "extra/stats-summary-reduced-t0.json",
    "extra/stats-summary-reduced-t1.json",
];

/// Expected answers for [`EXTRA`].
pub const EXTRA_EXPECTED_JSON: &str = include_str!("../fixtures/extra/expected.json");

/// Small payloads for one edge case each (node `n1`).
pub const EDGE: &[Fixture] = fixtures![
    "edge/edge-container-series-without-labels.txt",
    "edge/edge-cpu-memory-timestamps-differ.txt",
    "edge/edge-duplicate-series.txt",
    "edge/edge-hex-float.txt",
    "edge/edge-kubelet-scrape-error.txt",
    "edge/edge-labels-reordered-and-spaced.txt",
    "edge/edge-malformed.txt",
    "edge/edge-missing-container-label.txt",
    "edge/edge-no-timestamps.txt",
    "edge/edge-nonfinite-and-negative.txt",
    "edge/edge-sub-nanosecond-cpu.txt",
];

/// Expected answers for [`METRICS_RESOURCE`], [`STATS_SUMMARY`] and [`EDGE`].
pub const EXPECTED_JSON: &str = include_str!("../fixtures/expected.json");

/// Looks a fixture up by name in every set.
pub fn get(name: &str) -> Option<&'static [u8]> {
    METRICS_RESOURCE
        .iter()
        .chain(STATS_SUMMARY)
        .chain(EDGE)
        .chain(EXTRA)
        .find(|f| f.name == name)
        .map(|f| f.bytes)
}
