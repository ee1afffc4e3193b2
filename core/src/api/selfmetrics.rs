//! metrics-server's own metrics on `/metrics` (spec `metrics-api.md` 4.11,
//! `kubelet-and-storage.md` 6).
//!
//! [`SelfMetrics`] holds the six `metrics_server_*` families and prints them in the
//! Prometheus text format 0.0.4 byte for byte as the Go client does: families sorted by
//! name, `# HELP` and `# TYPE` lines, series sorted by label value, numbers as Go's
//! `strconv.FormatFloat(v, 'g', -1, 64)` (`1.8604960000000004`, `1e-05`,
//! `1.718012412e+09`), histograms as cumulative `_bucket{le=...}` lines ending in `+Inf`,
//! then `_sum` and `_count`.
//!
//! A family is printed only once it has a series. Upstream registers the tick histogram
//! as a plain histogram, so it is printed from the start (with zero counts); the other
//! five are vectors, printed after their first observation. The storage points gauge
//! follows the snapshot: no series before the first store.
//!
//! Threads: API threads record freshness while the engine records the rest, so the
//! registry is shared by reference. Freshness is lock-free (one atomic per bucket and
//! the sum's bits updated by compare-and-swap); the engine's families sit behind one
//! mutex, held only to update a value or print them.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::storage::StoragePoints;
use crate::time::Timestamp;

/// `Content-Type` of the `/metrics` response (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus client's default histogram buckets (`prometheus.DefBuckets`).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Freshness buckets: `ExponentialBuckets(1, 1.364, 20)`, each the previous one times
/// the factor, exactly as Go multiplies (so the printed bounds match to the last digit).
pub const FRESHNESS_BUCKETS: [f64; 20] = {
    let mut buckets = [0.0; 20];
    let mut bound = 1.0;
    let mut i = 0;
    while i < buckets.len() {
        buckets[i] = bound;
        bound *= 1.364;
        i += 1;
    }
    buckets
};

const FRESHNESS: &str = "metrics_server_api_metric_freshness_seconds";
const LAST_REQUEST: &str = "metrics_server_kubelet_last_request_time_seconds";
const REQUEST_DURATION: &str = "metrics_server_kubelet_request_duration_seconds";
const REQUEST_TOTAL: &str = "metrics_server_kubelet_request_total";
const TICK: &str = "metrics_server_manager_tick_duration_seconds";
const STORAGE_POINTS: &str = "metrics_server_storage_points";

/// The six family names, in the (sorted) order they are printed.
pub const FAMILIES: [&str; 6] = [
    FRESHNESS,
    LAST_REQUEST,
    REQUEST_DURATION,
    REQUEST_TOTAL,
    TICK,
    STORAGE_POINTS,
];

/// `metrics_server_manager_tick_duration_seconds` buckets for a resolution, as upstream's
/// `BucketsForScrapeDuration`: the default buckets, extended past 10 s with
/// `10 + (R − 10)/2, R, 1.5R, 2R`; below 10 s, `R` inserted in order unless it lies
/// within 0.005 of a neighbour (which includes being equal to one).
pub fn tick_duration_buckets(resolution: Duration) -> Vec<f64> {
    let mut buckets = DEFAULT_BUCKETS.to_vec();
    let max = DEFAULT_BUCKETS[DEFAULT_BUCKETS.len() - 1];
    let min_gap = DEFAULT_BUCKETS[0];
    // Go: float64(d) / float64(time.Second).
    let r = resolution.as_nanos() as f64 / 1e9;
    if r > max {
        buckets.extend([max + (r - max) / 2.0, r, r * 1.5, r * 2.0]);
    } else if let Some(i) = buckets.iter().position(|&b| b > r) {
        let too_close = buckets[i] - r < min_gap || (i > 0 && r - buckets[i - 1] < min_gap);
        if !too_close {
            buckets.insert(i, r);
        }
    }
    buckets
}

/// Index of the bucket a value falls in: the first bound `>= v` (Prometheus' `le`), or
/// `bounds.len()` for the implicit `+Inf` bucket.
fn bucket_index(bounds: &[f64], v: f64) -> usize {
    bounds.partition_point(|&b| b < v)
}

/// Freshness observations gathered locally (e.g. while encoding one large list) and
/// added to the shared histogram at once with [`SelfMetrics::observe_freshness_batch`],
/// so a 100,000-item list costs 21 atomic additions instead of 200,000.
#[derive(Debug, Clone, PartialEq)]
pub struct FreshnessBatch {
    counts: [u64; FRESHNESS_BUCKETS.len() + 1],
    sum: f64,
}

impl Default for FreshnessBatch {
    fn default() -> Self {
        FreshnessBatch {
            counts: [0; FRESHNESS_BUCKETS.len() + 1],
            sum: 0.0,
        }
    }
}

impl FreshnessBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one served item that is `seconds` old. Non-finite values are ignored
    /// (they would turn the sum into NaN or infinity for the life of the process).
    pub fn observe(&mut self, seconds: f64) {
        if seconds.is_finite() {
            self.counts[bucket_index(&FRESHNESS_BUCKETS, seconds)] += 1;
            self.sum += seconds;
        }
    }

    /// Number of observations recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The freshness histogram: per-bucket (not cumulative) counts, so one observation is
/// one atomic increment; the printed cumulative counts and `_count` are derived from a
/// single read of each, so `+Inf` always equals `_count` and buckets never decrease.
#[derive(Debug)]
struct AtomicHistogram {
    counts: [AtomicU64; FRESHNESS_BUCKETS.len() + 1],
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    fn new() -> Self {
        AtomicHistogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_bits: AtomicU64::new(0.0f64.to_bits()),
        }
    }

    fn add(&self, bucket: usize, count: u64, sum: f64) {
        if let Some(c) = self.counts.get(bucket) {
            c.fetch_add(count, Ordering::Relaxed);
        }
        self.add_sum(sum);
    }

    fn add_sum(&self, v: f64) {
        // Relaxed suffices: printing does not promise a snapshot consistent across the
        // sum and the counts (neither did Go's client before its hot/cold swap).
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    fn read(&self) -> ([u64; FRESHNESS_BUCKETS.len() + 1], f64) {
        let counts = std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed));
        (
            counts,
            f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
        )
    }
}

/// A histogram updated under the registry's mutex: per-bucket counts (last = `+Inf`).
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Histogram {
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, bounds: &[f64], v: f64) {
        if let Some(c) = self.counts.get_mut(bucket_index(bounds, v)) {
            *c += 1;
        }
        self.sum += v;
    }
}

/// A node's two series: request duration and last request time.
#[derive(Debug, Clone)]
struct NodeSeries {
    duration: Histogram,
    last_request_unix_secs: i64,
}

#[derive(Debug)]
struct EngineFamilies {
    tick: Histogram,
    nodes: BTreeMap<String, NodeSeries>,
    /// `request_total{success="false"}` and `{success="true"}`; `None` until the first
    /// request with that outcome.
    requests: [Option<u64>; 2],
    storage_points: Option<StoragePoints>,
}

/// The registry of metrics-server's own metrics. Share it by reference (`Arc`) between
/// the engine and the API threads; every method takes `&self`.
#[derive(Debug)]
pub struct SelfMetrics {
    tick_buckets: Vec<f64>,
    freshness: AtomicHistogram,
    engine: Mutex<EngineFamilies>,
}

impl SelfMetrics {
    /// An empty registry; `resolution` (`--metric-resolution`) shapes the tick buckets.
    pub fn new(resolution: Duration) -> Self {
        let tick_buckets = tick_duration_buckets(resolution);
        let tick = Histogram::new(&tick_buckets);
        SelfMetrics {
            tick_buckets,
            freshness: AtomicHistogram::new(),
            engine: Mutex::new(EngineFamilies {
                tick,
                nodes: BTreeMap::new(),
                requests: [None; 2],
                storage_points: None,
            }),
        }
    }

    fn engine(&self) -> MutexGuard<'_, EngineFamilies> {
        // Every update leaves the families consistent, so a panic elsewhere while the
        // lock was held does not make them unusable.
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After every kubelet request, successful or not: observes its duration (address
    /// resolution, request, body read and decode; not the stagger delay), counts the
    /// outcome and sets the node's last request time to `request_wall_time` in whole
    /// seconds (upstream takes the wall clock when the request completes).
    pub fn observe_kubelet_request(
        &self,
        node: &str,
        duration: Duration,
        success: bool,
        request_wall_time: Timestamp,
    ) {
        let seconds = duration_seconds(duration);
        let mut engine = self.engine();
        match engine.nodes.get_mut(node) {
            Some(series) => {
                series.duration.observe(&DEFAULT_BUCKETS, seconds);
                series.last_request_unix_secs = request_wall_time.unix_secs();
            }
            None => {
                let mut duration = Histogram::new(&DEFAULT_BUCKETS);
                duration.observe(&DEFAULT_BUCKETS, seconds);
                let series = NodeSeries {
                    duration,
                    last_request_unix_secs: request_wall_time.unix_secs(),
                };
                engine.nodes.insert(node.to_owned(), series);
            }
        }
        let total = &mut engine.requests[usize::from(success)];
        *total = Some(total.unwrap_or(0).saturating_add(1));
    }

    /// Once per scrape cycle: the time from the cycle's start to the end of the store.
    pub fn observe_tick(&self, duration: Duration) {
        let seconds = duration_seconds(duration);
        self.engine().tick.observe(&self.tick_buckets, seconds);
    }

    /// After every store: the snapshot's points (`Snapshot::points`); `None` (before the
    /// first store) prints no series.
    pub fn set_storage_points(&self, points: Option<StoragePoints>) {
        self.engine().storage_points = points;
    }

    /// One served item (a node or pod in a GET or LIST answer), `seconds` = now − its
    /// timestamp. Lock-free. Non-finite values are ignored.
    pub fn observe_freshness(&self, seconds: f64) {
        if seconds.is_finite() {
            self.freshness
                .add(bucket_index(&FRESHNESS_BUCKETS, seconds), 1, seconds);
        }
    }

    /// Adds a batch gathered with [`FreshnessBatch::observe`]; the same as observing each
    /// of its values here. Lock-free.
    pub fn observe_freshness_batch(&self, batch: &FreshnessBatch) {
        if batch.count() == 0 {
            return;
        }
        for (bucket, &count) in batch.counts.iter().enumerate() {
            if count > 0 {
                self.freshness.add(bucket, count, 0.0);
            }
        }
        self.freshness.add_sum(batch.sum);
    }

    /// Drops the per-node series (request duration, last request time) of every node for
    /// which `keep` is false; call it with the node names the cluster still has.
    ///
    /// Departure from upstream (spec `kubelet-and-storage.md` section 10, item 11):
    /// upstream never deletes these series, so their number grows with node churn for
    /// the life of the process. `request_total` has no node label and is kept.
    pub fn retain_nodes(&self, keep: &dyn Fn(&str) -> bool) {
        self.engine().nodes.retain(|node, _| keep(node));
    }

    /// Appends the exposition (text format 0.0.4, [`CONTENT_TYPE`]) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (counts, sum) = self.freshness.read();
        if counts.iter().any(|&c| c > 0) {
            family_header(
                out,
                FRESHNESS,
                "[ALPHA] Freshness of metrics exported",
                "histogram",
            );
            histogram_lines(out, FRESHNESS, None, &FRESHNESS_BUCKETS, &counts, sum);
        }

        let engine = self.engine();
        if !engine.nodes.is_empty() {
            family_header(
                out,
                LAST_REQUEST,
                "[ALPHA] Time of last request performed to Kubelet API since unix epoch in seconds",
                "gauge",
            );
            for (node, series) in &engine.nodes {
                sample(
                    out,
                    LAST_REQUEST,
                    Some(("node", node)),
                    series.last_request_unix_secs as f64,
                );
            }
            family_header(
                out,
                REQUEST_DURATION,
                "[ALPHA] Duration of requests to Kubelet API in seconds",
                "histogram",
            );
            for (node, series) in &engine.nodes {
                let h = &series.duration;
                histogram_lines(
                    out,
                    REQUEST_DURATION,
                    Some(("node", node)),
                    &DEFAULT_BUCKETS,
                    &h.counts,
                    h.sum,
                );
            }
        }
        if engine.requests.iter().any(Option::is_some) {
            family_header(
                out,
                REQUEST_TOTAL,
                "[ALPHA] Number of requests sent to Kubelet API",
                "counter",
            );
            for (value, total) in ["false", "true"].into_iter().zip(engine.requests) {
                if let Some(total) = total {
                    sample(out, REQUEST_TOTAL, Some(("success", value)), total as f64);
                }
            }
        }
        family_header(
            out,
            TICK,
            "[ALPHA] The total time spent collecting and storing metrics in seconds.",
            "histogram",
        );
        let tick = &engine.tick;
        histogram_lines(out, TICK, None, &self.tick_buckets, &tick.counts, tick.sum);
        if let Some(points) = engine.storage_points {
            family_header(
                out,
                STORAGE_POINTS,
                "[ALPHA] Number of metrics points stored.",
                "gauge",
            );
            let label = |value| Some(("type", value));
            sample(
                out,
                STORAGE_POINTS,
                label("container"),
                points.containers as f64,
            );
            sample(out, STORAGE_POINTS, label("node"), points.nodes as f64);
        }
    }
}

/// Go's `float64(d) / float64(time.Second)`.
fn duration_seconds(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e9
}

fn family_header(out: &mut Vec<u8>, name: &str, help: &str, kind: &str) {
    // HELP texts here are constants without `\` or newlines, so need no escaping.
    for part in [
        "# HELP ",
        name,
        " ",
        help,
        "\n# TYPE ",
        name,
        " ",
        kind,
        "\n",
    ] {
        out.extend_from_slice(part.as_bytes());
    }
}

/// `name{label="value"} v` (no braces without a label).
fn sample(out: &mut Vec<u8>, name: &str, label: Option<(&str, &str)>, value: f64) {
    suffixed_sample(out, name, "", label, value);
}

/// `name<suffix>{label="value"} v`.
fn suffixed_sample(
    out: &mut Vec<u8>,
    name: &str,
    suffix: &str,
    label: Option<(&str, &str)>,
    value: f64,
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if let Some((key, val)) = label {
        out.push(b'{');
        push_label(out, key, val);
        out.push(b'}');
    }
    out.push(b' ');
    write_go_float(out, value);
    out.push(b'\n');
}

/// One histogram series from per-bucket counts (`counts.len() == bounds.len() + 1`).
fn histogram_lines(
    out: &mut Vec<u8>,
    name: &str,
    label: Option<(&str, &str)>,
    bounds: &[f64],
    counts: &[u64],
    sum: f64,
) {
    let mut cumulative = 0u64;
    let mut bucket = |out: &mut Vec<u8>, le: f64, count: u64| {
        cumulative = cumulative.saturating_add(count);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"_bucket{");
        if let Some((key, val)) = label {
            push_label(out, key, val);
            out.push(b',');
        }
        out.extend_from_slice(b"le=\"");
        write_go_float(out, le);
        out.extend_from_slice(b"\"} ");
        write_go_float(out, cumulative as f64);
        out.push(b'\n');
        cumulative
    };
    for (&le, &count) in bounds.iter().zip(counts) {
        bucket(out, le, count);
    }
    let total = bucket(
        out,
        f64::INFINITY,
        counts.get(bounds.len()).copied().unwrap_or(0),
    );
    suffixed_sample(out, name, "_sum", label, sum);
    suffixed_sample(out, name, "_count", label, total as f64);
}

/// `key="value"` with the value escaped as the text format requires (`\\`, `\"`, `\n`).
fn push_label(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"=\"");
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Formats into a fixed stack buffer (the longest `{:e}` of an `f64` is 23 bytes).
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            buf: [0; 32],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A float as the Go client prints it: `0`, `1`, `NaN`, `+Inf`, `-Inf`, else
/// `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that read back as `v`,
/// in exponent form (`1e-05`, `1.718012412e+09`) when the decimal exponent is below −4
/// or at least 6 (Go's fixed threshold for the shortest `'g'` format).
fn write_go_float(out: &mut Vec<u8>, v: f64) {
    if v == 0.0 {
        // Also −0, as Go's `writeFloat` special-cases `f == 0`.
        out.push(b'0');
        return;
    }
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    let mut text = StackText::new();
    if v.fract() == 0.0 && v.abs() < 1e6 {
        // Fast path for counts and whole-second bounds; identical to the general form.
        let _ = write!(text, "{}", v as i64);
        out.extend_from_slice(text.as_bytes());
        return;
    }

    // Rust's `{:e}` gives the same shortest round-trip digits as Go: `d[.ddd]e[-]x`.
    // It fits the buffer for every f64, so the fallbacks below are never taken.
    let _ = write!(text, "{:e}", v.abs());
    let text = text.as_bytes();
    let Some(e_at) = text.iter().position(|&b| b == b'e') else {
        out.extend_from_slice(b"NaN");
        return;
    };
    let exp = parse_exponent(&text[e_at + 1..]);
    let mut digits = [0u8; 24];
    let mut nd = 0;
    for &b in text[..e_at].iter().filter(|b| b.is_ascii_digit()) {
        if let Some(slot) = digits.get_mut(nd) {
            *slot = b;
            nd += 1;
        }
    }
    let Some((&first, rest)) = digits[..nd].split_first() else {
        out.extend_from_slice(b"NaN");
        return;
    };

    if v < 0.0 {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        out.push(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        out.extend_from_slice(if exp < 0 { b"e-" } else { b"e+" });
        // At least two exponent digits, as Go prints them.
        let mut exp_text = StackText::new();
        let _ = write!(exp_text, "{:02}", exp.unsigned_abs());
        out.extend_from_slice(exp_text.as_bytes());
        return;
    }
    let digits = &digits[..nd];
    // Fixed form with `exp + 1` digits before the point.
    match usize::try_from(exp + 1) {
        Err(_) | Ok(0) => {
            out.extend_from_slice(b"0.");
            for _ in exp + 1..0 {
                out.push(b'0');
            }
            out.extend_from_slice(digits);
        }
        Ok(dp) if dp >= nd => {
            out.extend_from_slice(digits);
            out.resize(out.len() + (dp - nd), b'0');
        }
        Ok(dp) => {
            out.extend_from_slice(&digits[..dp]);
            out.push(b'.');
            out.extend_from_slice(&digits[dp..]);
        }
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let magnitude = digits
        .iter()
        .fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
    if negative { -magnitude } else { magnitude }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go_float(v: f64) -> String {
        let mut out = Vec::new();
        write_go_float(&mut out, v);
        String::from_utf8(out).expect("ASCII")
    }

    fn encoded(m: &SelfMetrics) -> String {
        let mut out = Vec::new();
        m.encode(&mut out);
        String::from_utf8(out).expect("exposition is UTF-8")
    }

    /// The lines of one family (its HELP, TYPE and samples).
    fn family(text: &str, name: &str) -> String {
        let mut lines = String::new();
        let mut inside = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                inside = rest.split(' ').next() == Some(name);
            }
            if inside {
                lines.push_str(line);
                lines.push('\n');
            }
        }
        lines
    }

    fn type_names(text: &str) -> Vec<&str> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect()
    }

    const RESOLUTION: Duration = Duration::from_secs(15);

    #[test]
    fn go_float_formatting() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (10.0, "10"),
            (30.0, "30"),
            (0.005, "0.005"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5e-10, "2.5e-10"),
            (12.5, "12.5"),
            (22.5, "22.5"),
            (1.8604960000000004, "1.8604960000000004"),
            (364.31163045936864, "364.31163045936864"),
            (123456.5, "123456.5"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1718012412.0, "1.718012412e+09"),
            (-62135596800.0, "-6.21355968e+10"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(go_float(v), want, "{v:?}");
        }
    }

    #[test]
    fn freshness_buckets_print_as_the_spec_lists_them() {
        let want = [
            "1",
            "1.364",
            "1.8604960000000004",
            "2.5377165440000007",
            "3.4614453660160014",
            "4.721411479245826",
            "6.440005257691307",
            "8.784167171490942",
            "11.981604021913647",
            "16.342907885890217",
            "22.291726356354257",
            "30.405914750067208",
            "41.47366771909167",
            "56.57008276884105",
            "77.16159289669919",
            "105.2484127110977",
            "143.55883493793726",
            "195.81425085534644",
            "267.09063816669254",
            "364.31163045936864",
        ];
        let got: Vec<String> = FRESHNESS_BUCKETS.iter().map(|&b| go_float(b)).collect();
        assert_eq!(got, want);
    }

    fn strictly_increasing(b: &[f64]) -> bool {
        b.windows(2).all(|w| w[0] < w[1]) && b[0] > 0.0
    }

    #[test]
    fn case_54_tick_buckets_for_15s() {
        let b = tick_duration_buckets(Duration::from_secs(15));
        assert!(strictly_increasing(&b), "{b:?}");
        assert!(b.contains(&15.0) && b.contains(&30.0));
        assert_eq!(b[11..], [12.5, 15.0, 22.5, 30.0]);
        let b = tick_duration_buckets(Duration::from_secs(60));
        assert_eq!(b[..11], DEFAULT_BUCKETS);
        assert_eq!(b[11..], [35.0, 60.0, 90.0, 120.0]);
    }

    #[test]
    fn case_55_tick_buckets_for_5s() {
        let b = tick_duration_buckets(Duration::from_secs(5));
        assert!(strictly_increasing(&b), "{b:?}");
        assert!(b.contains(&5.0));
        // 5 is already a bucket: nothing is inserted.
        assert_eq!(b, DEFAULT_BUCKETS);
        // A value away from every bucket is inserted in order ...
        let b = tick_duration_buckets(Duration::from_secs(3));
        assert!(strictly_increasing(&b));
        assert_eq!(b[8..11], [2.5, 3.0, 5.0]);
        // ... one within 0.005 of a neighbour is not.
        for ms in [2502, 4997, 7] {
            let b = tick_duration_buckets(Duration::from_millis(ms));
            assert_eq!(b, DEFAULT_BUCKETS, "{ms} ms");
        }
    }

    #[test]
    fn case_56_tick_buckets_for_10s() {
        let b = tick_duration_buckets(Duration::from_secs(10));
        assert!(strictly_increasing(&b));
        assert!(b.contains(&10.0));
        assert_eq!(b, DEFAULT_BUCKETS);
    }

    #[test]
    fn case_57_freshness_three_items_ten_seconds_old() {
        let m = SelfMetrics::new(RESOLUTION);
        for _ in 0..3 {
            m.observe_freshness(10.0);
        }
        let text = encoded(&m);
        let mut want = String::from(
            "# HELP metrics_server_api_metric_freshness_seconds [ALPHA] Freshness of metrics exported\n\
             # TYPE metrics_server_api_metric_freshness_seconds histogram\n",
        );
        for (i, &b) in FRESHNESS_BUCKETS.iter().enumerate() {
            let count = if i >= 8 { 3 } else { 0 };
            want.push_str(&format!(
                "metrics_server_api_metric_freshness_seconds_bucket{{le=\"{}\"}} {count}\n",
                go_float(b)
            ));
        }
        want.push_str(
            "metrics_server_api_metric_freshness_seconds_bucket{le=\"+Inf\"} 3\n\
             metrics_server_api_metric_freshness_seconds_sum 30\n\
             metrics_server_api_metric_freshness_seconds_count 3\n",
        );
        assert_eq!(family(&text, FRESHNESS), want);
        assert!(want.contains("_bucket{le=\"8.784167171490942\"} 0\n"));
        assert!(want.contains("_bucket{le=\"11.981604021913647\"} 3\n"));
    }

    #[test]
    fn freshness_batch_equals_single_observations() {
        let values = [0.2, 1.0, 1.364, 10.0, 400.0, -3.0, f64::NAN, 59.5];
        let single = SelfMetrics::new(RESOLUTION);
        let batched = SelfMetrics::new(RESOLUTION);
        let mut batch = FreshnessBatch::new();
        for v in values {
            single.observe_freshness(v);
            batch.observe(v);
        }
        assert_eq!(batch.count(), 7, "NaN is ignored");
        batched.observe_freshness_batch(&batch);
        batched.observe_freshness_batch(&FreshnessBatch::new());
        assert_eq!(encoded(&single), encoded(&batched));
        let text = encoded(&single);
        // On a bound counts as below it; negative ages land in the first bucket.
        assert!(text.contains("_bucket{le=\"1\"} 3\n"), "{text}");
        assert!(text.contains("_bucket{le=\"1.364\"} 4\n"));
        assert!(text.contains("_bucket{le=\"364.31163045936864\"} 6\n"));
        assert!(text.contains("_bucket{le=\"+Inf\"} 7\n"));
    }

    /// Upstream's case 51 uses a mock clock stuck at Go's zero time (year 1), giving
    /// `-62135596800`; a [`Timestamp`] (i64 nanoseconds, 1677..2262) cannot hold that
    /// instant, so a pre-epoch time it can hold stands in (the printed form of
    /// `-62135596800` itself is covered by `go_float_formatting`).
    #[test]
    fn kubelet_case_51_one_second_request() {
        let m = SelfMetrics::new(RESOLUTION);
        let before_epoch = Timestamp::from_unix_nanos(-1_500_000_000);
        m.observe_kubelet_request("node1", Duration::from_secs(1), true, before_epoch);
        let text = encoded(&m);
        assert!(text.contains(
            "metrics_server_kubelet_request_duration_seconds_bucket{node=\"node1\",le=\"0.5\"} 0\n\
             metrics_server_kubelet_request_duration_seconds_bucket{node=\"node1\",le=\"1\"} 1\n"
        ));
        assert!(text.contains("metrics_server_kubelet_request_total{success=\"true\"} 1\n"));
        assert!(!text.contains("success=\"false\""));
        // Whole seconds rounded down, as Go's `Time.Unix()`.
        assert!(
            text.contains("metrics_server_kubelet_last_request_time_seconds{node=\"node1\"} -2\n")
        );

        m.observe_kubelet_request("node1", Duration::from_secs(1), true, Timestamp::MIN);
        assert!(encoded(&m).contains(
            "metrics_server_kubelet_last_request_time_seconds{node=\"node1\"} -9.223372037e+09\n"
        ));
    }

    #[test]
    fn api_case_66_exactly_six_families_once_populated() {
        let m = SelfMetrics::new(RESOLUTION);
        let now = Timestamp::from_unix_secs(1_718_012_412);
        for cycle in 0..3 {
            for node in ["node-a", "node-b"] {
                m.observe_kubelet_request(node, Duration::from_millis(40), cycle != 1, now);
            }
            m.set_storage_points(Some(StoragePoints {
                nodes: cycle,
                containers: 5 * cycle,
            }));
            m.observe_tick(Duration::from_millis(120));
        }
        m.observe_freshness(4.5);
        let text = encoded(&m);
        let names = type_names(&text);
        assert_eq!(names, FAMILIES);
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "families are printed sorted by name");
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP ")).count(), 6);
    }

    #[test]
    fn full_exposition_is_byte_exact() {
        let m = SelfMetrics::new(RESOLUTION);
        let wall = Timestamp::from_unix_nanos(1_718_012_412_999_000_000);
        m.observe_kubelet_request("node-b", Duration::from_millis(30), false, wall);
        m.observe_kubelet_request("node-a", Duration::from_millis(7), true, wall);
        m.observe_tick(Duration::from_millis(13_250));
        m.set_storage_points(Some(StoragePoints {
            nodes: 2,
            containers: 14,
        }));
        let node_histogram = |node: &str, first: usize, sum: &str| {
            let mut s = String::new();
            for (i, b) in DEFAULT_BUCKETS.iter().enumerate() {
                s.push_str(&format!(
                    "metrics_server_kubelet_request_duration_seconds_bucket{{node=\"{node}\",le=\"{}\"}} {}\n",
                    go_float(*b),
                    u8::from(i >= first)
                ));
            }
            s.push_str(&format!(
                "metrics_server_kubelet_request_duration_seconds_bucket{{node=\"{node}\",le=\"+Inf\"}} 1\n\
                 metrics_server_kubelet_request_duration_seconds_sum{{node=\"{node}\"}} {sum}\n\
                 metrics_server_kubelet_request_duration_seconds_count{{node=\"{node}\"}} 1\n"
            ));
            s
        };
        let mut want = String::from(
            "# HELP metrics_server_kubelet_last_request_time_seconds [ALPHA] Time of last request performed to Kubelet API since unix epoch in seconds\n\
             # TYPE metrics_server_kubelet_last_request_time_seconds gauge\n\
             metrics_server_kubelet_last_request_time_seconds{node=\"node-a\"} 1.718012412e+09\n\
             metrics_server_kubelet_last_request_time_seconds{node=\"node-b\"} 1.718012412e+09\n\
             # HELP metrics_server_kubelet_request_duration_seconds [ALPHA] Duration of requests to Kubelet API in seconds\n\
             # TYPE metrics_server_kubelet_request_duration_seconds histogram\n",
        );
        want.push_str(&node_histogram("node-a", 1, "0.007"));
        want.push_str(&node_histogram("node-b", 3, "0.03"));
        want.push_str(
            "# HELP metrics_server_kubelet_request_total [ALPHA] Number of requests sent to Kubelet API\n\
             # TYPE metrics_server_kubelet_request_total counter\n\
             metrics_server_kubelet_request_total{success=\"false\"} 1\n\
             metrics_server_kubelet_request_total{success=\"true\"} 1\n\
             # HELP metrics_server_manager_tick_duration_seconds [ALPHA] The total time spent collecting and storing metrics in seconds.\n\
             # TYPE metrics_server_manager_tick_duration_seconds histogram\n",
        );
        let tick_bounds = [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "12.5",
            "15", "22.5", "30",
        ];
        for (i, le) in tick_bounds.iter().enumerate() {
            want.push_str(&format!(
                "metrics_server_manager_tick_duration_seconds_bucket{{le=\"{le}\"}} {}\n",
                u8::from(i >= 12)
            ));
        }
        want.push_str(
            "metrics_server_manager_tick_duration_seconds_bucket{le=\"+Inf\"} 1\n\
             metrics_server_manager_tick_duration_seconds_sum 13.25\n\
             metrics_server_manager_tick_duration_seconds_count 1\n\
             # HELP metrics_server_storage_points [ALPHA] Number of metrics points stored.\n\
             # TYPE metrics_server_storage_points gauge\n\
             metrics_server_storage_points{type=\"container\"} 14\n\
             metrics_server_storage_points{type=\"node\"} 2\n",
        );
        assert_eq!(encoded(&m), want);
    }

    #[test]
    fn fresh_registry_prints_only_the_tick_histogram() {
        let m = SelfMetrics::new(Duration::from_secs(60));
        let text = encoded(&m);
        assert_eq!(type_names(&text), [TICK]);
        assert!(
            text.contains("metrics_server_manager_tick_duration_seconds_bucket{le=\"120\"} 0\n")
        );
        assert!(text.ends_with(
            "metrics_server_manager_tick_duration_seconds_bucket{le=\"+Inf\"} 0\n\
             metrics_server_manager_tick_duration_seconds_sum 0\n\
             metrics_server_manager_tick_duration_seconds_count 0\n"
        ));
    }

    #[test]
    fn storage_points_absent_before_first_store_and_zero_after() {
        let m = SelfMetrics::new(RESOLUTION);
        m.set_storage_points(None);
        assert!(!encoded(&m).contains(STORAGE_POINTS));
        m.set_storage_points(Some(StoragePoints::default()));
        assert_eq!(
            family(&encoded(&m), STORAGE_POINTS),
            "# HELP metrics_server_storage_points [ALPHA] Number of metrics points stored.\n\
             # TYPE metrics_server_storage_points gauge\n\
             metrics_server_storage_points{type=\"container\"} 0\n\
             metrics_server_storage_points{type=\"node\"} 0\n"
        );
    }

    #[test]
    fn label_values_are_escaped_and_series_sorted_by_value() {
        let m = SelfMetrics::new(RESOLUTION);
        let t = Timestamp::from_unix_secs(100);
        for node in ["b", "a\"q\\s\nn", "B", "a"] {
            m.observe_kubelet_request(node, Duration::ZERO, true, t);
        }
        let text = encoded(&m);
        let gauge: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(LAST_REQUEST))
            .collect();
        assert_eq!(
            gauge,
            [
                "metrics_server_kubelet_last_request_time_seconds{node=\"B\"} 100",
                "metrics_server_kubelet_last_request_time_seconds{node=\"a\"} 100",
                "metrics_server_kubelet_last_request_time_seconds{node=\"a\\\"q\\\\s\\nn\"} 100",
                "metrics_server_kubelet_last_request_time_seconds{node=\"b\"} 100",
            ]
        );
    }

    #[test]
    fn last_request_time_is_whole_seconds_of_the_latest_request() {
        let m = SelfMetrics::new(RESOLUTION);
        m.observe_kubelet_request(
            "n",
            Duration::from_millis(5),
            true,
            Timestamp::from_unix_nanos(41_900_000_000),
        );
        m.observe_kubelet_request(
            "n",
            Duration::from_millis(5),
            false,
            Timestamp::from_unix_nanos(99_999_999_999),
        );
        let text = encoded(&m);
        assert!(text.contains("{node=\"n\"} 99\n"), "{text}");
        assert!(text.contains("_count{node=\"n\"} 2\n"));
        assert!(text.contains("_sum{node=\"n\"} 0.01\n"));
        assert!(text.contains("{success=\"false\"} 1\n"));
        assert!(text.contains("{success=\"true\"} 1\n"));
    }

    /// Upstream keeps a deleted node's series forever (spec kubelet-and-storage.md
    /// section 10, item 11); here they go once the node is gone.
    #[test]
    fn series_of_nodes_that_no_longer_exist_are_dropped_unlike_upstream() {
        let m = SelfMetrics::new(RESOLUTION);
        let t = Timestamp::from_unix_secs(1_000);
        for node in ["gone-1", "kept", "gone-2"] {
            m.observe_kubelet_request(node, Duration::from_millis(10), true, t);
        }
        let existing = ["kept", "new-node"];
        m.retain_nodes(&|node| existing.contains(&node));
        let text = encoded(&m);
        assert!(!text.contains("gone-"), "{text}");
        assert!(text.contains("{node=\"kept\"} 1000\n"));
        assert!(text.contains("_count{node=\"kept\"} 1\n"));
        // The outcome counter has no node label and keeps counting every request.
        assert!(text.contains("metrics_server_kubelet_request_total{success=\"true\"} 3\n"));

        // With no node left both per-node families disappear.
        m.retain_nodes(&|_| false);
        let text = encoded(&m);
        assert!(!text.contains(LAST_REQUEST) && !text.contains(REQUEST_DURATION));
        assert!(text.contains(REQUEST_TOTAL));
    }

    #[test]
    fn registry_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SelfMetrics>();
    }

    #[test]
    fn exposition_parses_as_prometheus_text() {
        let m = SelfMetrics::new(RESOLUTION);
        m.observe_kubelet_request(
            "node1",
            Duration::from_millis(250),
            true,
            Timestamp::from_unix_secs(1_718_012_412),
        );
        m.observe_tick(Duration::from_secs(3));
        m.observe_freshness(12.0);
        m.set_storage_points(Some(StoragePoints {
            nodes: 1,
            containers: 3,
        }));
        let text = encoded(&m);
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("parses");
        assert_eq!(
            scrape.docs.get(STORAGE_POINTS).map(String::as_str),
            Some("[ALPHA] Number of metrics points stored.")
        );
        let find = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .unwrap_or_else(|| panic!("{name} sampled"))
        };
        match &find(LAST_REQUEST).value {
            prometheus_parse::Value::Gauge(v) => assert_eq!(*v, 1_718_012_412.0),
            other => panic!("{other:?}"),
        }
        match &find(FRESHNESS).value {
            prometheus_parse::Value::Histogram(buckets) => {
                assert_eq!(buckets.len(), 21);
                assert_eq!(buckets[8].count, 0.0);
                assert_eq!(buckets[9].count, 1.0);
            }
            other => panic!("{other:?}"),
        }
    }
}
