//! Decoder for the kubelet's `/metrics/resource` endpoint (Prometheus text format 0.0.4).
//!
//! Every line is tokenised by the text format's grammar (not by byte search), so escaped
//! label values, labels in any order, spacing and trailing commas inside `{}`, CRLF line
//! ends, comments and optional timestamps all read as the format defines them. Lines of
//! metrics we do not use are still checked for syntax, because a kubelet payload with a
//! malformed line is rejected as a whole (as upstream's parser does).
//!
//! Departures from upstream, each deliberate (spec `kubelet-and-storage.md` section 10):
//! label values are unescaped and matched by exact name; series without the `container`,
//! `pod` and `namespace` labels are ignored instead of crashing or inventing a name; a
//! point is stamped with its CPU sample's timestamp; negative timestamps are accepted and a
//! start time <= 0 means "no start time"; NaN, infinite and negative values make the
//! sample invalid (missing) instead of converting to an arbitrary integer.

use super::{
    ContainerPoint, DecodeError, DropReason, DroppedPod, MetricsPoint, NodeBatch, PodLevelUsage,
};
use crate::time::Timestamp;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;

/// The series the decoder reads; everything else is skipped after a syntax check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Series {
    NodeCpu,
    NodeMemory,
    NodeSwap,
    ContainerCpu,
    ContainerMemory,
    ContainerStart,
    ContainerSwap,
    PodCpu,
    PodMemory,
    PodSwap,
    ScrapeError,
    Other,
}

fn classify(name: &[u8]) -> Series {
    match name {
        b"node_cpu_usage_seconds_total" => Series::NodeCpu,
        b"node_memory_working_set_bytes" => Series::NodeMemory,
        b"node_swap_usage_bytes" => Series::NodeSwap,
        b"container_cpu_usage_seconds_total" => Series::ContainerCpu,
        b"container_memory_working_set_bytes" => Series::ContainerMemory,
        b"container_start_time_seconds" => Series::ContainerStart,
        b"container_swap_usage_bytes" => Series::ContainerSwap,
        b"pod_cpu_usage_seconds_total" => Series::PodCpu,
        b"pod_memory_working_set_bytes" => Series::PodMemory,
        b"pod_swap_usage_bytes" => Series::PodSwap,
        b"resource_scrape_error" | b"scrape_error" => Series::ScrapeError,
        _ => Series::Other,
    }
}

/// A field of a point as the payload left it. `Invalid` (NaN, infinite, negative, out of
/// range) is kept apart from `Absent` only so that tests and logs can tell them apart;
/// both make the point incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Field {
    #[default]
    Absent,
    Invalid,
    Value {
        value: u64,
        timestamp: Timestamp,
    },
}

impl Field {
    /// The non-zero value and its timestamp, or `None` when the field cannot be used.
    fn usable(self) -> Option<(u64, Timestamp)> {
        match self {
            Field::Value { value, timestamp } if value > 0 => Some((value, timestamp)),
            _ => None,
        }
    }
}

/// Seconds (as the kubelet prints them) to whole nanoseconds, truncating like upstream.
fn seconds_to_nanos(v: f64) -> Option<u64> {
    let nanos = v * 1e9;
    // 2^64 as f64 is exact; `as` would saturate silently, so refuse out-of-range values.
    (0.0..18_446_744_073_709_551_616.0)
        .contains(&nanos)
        .then_some(nanos as u64)
}

fn to_bytes(v: f64) -> Option<u64> {
    (0.0..18_446_744_073_709_551_616.0)
        .contains(&v)
        .then_some(v as u64)
}

fn field(value: Option<u64>, timestamp: Timestamp) -> Field {
    match value {
        Some(value) => Field::Value { value, timestamp },
        None => Field::Invalid,
    }
}

/// A container's fields as the payload left them (the key holds its identity).
#[derive(Debug, Default)]
struct ContainerAcc {
    cpu: Field,
    memory: Field,
    start: Option<Timestamp>,
    swap: Option<u64>,
}

/// (container, namespace, pod): the order in which the kubelet sorts container series.
type ContainerKey<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);
/// (namespace, pod), the kubelet's order for pod series.
type PodKey<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Entries keyed by series identity, tuned for the kubelet's output: every family lists
/// the same keys in the same sorted order, so the entry after the last one used is
/// almost always the next one wanted (a cursor check, no hashing), and new keys mostly
/// arrive in increasing order (found again by binary search over a sorted permutation).
/// A few keys out of order are inserted into the permutation; beyond that the input is
/// not a kubelet's and a hash index takes over, so hostile ordering costs a hash, not a
/// quadratic scan.
///
/// Each entry also remembers the raw label-set text it was last seen with. A line whose
/// label set starts with the cursor entry's raw text names that entry: parsing those same
/// bytes again could only give the same labels, so they are not parsed again.
#[derive(Debug)]
struct Keyed<'a, K, V> {
    entries: Vec<(K, V)>,
    raw: Vec<&'a str>,
    cursor: usize,
    /// Entry indices in key order, while no hash index exists.
    sorted: Vec<u32>,
    out_of_order: usize,
    index: Option<HashMap<K, usize>>,
}

/// Out-of-order keys tolerated before switching to a hash index (each costs a shift of
/// the sorted permutation).
const MAX_OUT_OF_ORDER: usize = 64;

impl<K, V> Default for Keyed<'_, K, V> {
    fn default() -> Self {
        Keyed {
            entries: Vec::new(),
            raw: Vec::new(),
            cursor: 0,
            sorted: Vec::new(),
            out_of_order: 0,
            index: None,
        }
    }
}

impl<'a, K: Ord + Hash + Clone, V: Default> Keyed<'a, K, V> {
    /// The cursor entry, if `rest` begins with the label set it was last seen with;
    /// returns its index and the length of that label set.
    fn cursor_hit(&mut self, rest: &str) -> Option<(usize, usize)> {
        let idx = self.cursor;
        let raw = self.raw.get(idx)?;
        if !rest.starts_with(raw) {
            return None;
        }
        self.cursor = idx + 1;
        Some((idx, raw.len()))
    }

    fn entry(&mut self, key: K, raw: &'a str) -> &mut V {
        let guess = self.cursor;
        let idx = if self.entries.get(guess).is_some_and(|(k, _)| *k == key) {
            guess
        } else {
            match self.find(&key) {
                Some(idx) => idx,
                None => self.insert(key),
            }
        };
        self.raw[idx] = raw;
        self.cursor = idx + 1;
        &mut self.entries[idx].1
    }

    fn find(&self, key: &K) -> Option<usize> {
        if let Some(index) = &self.index {
            return index.get(key).copied();
        }
        let last = *self.sorted.last()?;
        // The common case: a key beyond the largest cannot be present.
        if self.entries[last as usize].0 < *key {
            return None;
        }
        self.sorted
            .binary_search_by(|&i| self.entries[i as usize].0.cmp(key))
            .ok()
            .map(|pos| self.sorted[pos] as usize)
    }

    fn insert(&mut self, key: K) -> usize {
        let idx = self.entries.len();
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), idx);
        } else {
            let beyond_last = self
                .sorted
                .last()
                .is_none_or(|&i| self.entries[i as usize].0 < key);
            let pos = if beyond_last {
                self.sorted.len()
            } else {
                self.out_of_order += 1;
                self.sorted
                    .partition_point(|&i| self.entries[i as usize].0 < key)
            };
            match u32::try_from(idx) {
                Ok(i) if self.out_of_order <= MAX_OUT_OF_ORDER => self.sorted.insert(pos, i),
                _ => {
                    let mut index: HashMap<K, usize> = self
                        .entries
                        .iter()
                        .enumerate()
                        .map(|(i, (k, _))| (k.clone(), i))
                        .collect();
                    index.insert(key.clone(), idx);
                    self.index = Some(index);
                    self.sorted = Vec::new();
                }
            }
        }
        self.entries.push((key, V::default()));
        self.raw.push("");
        idx
    }
}

/// Accumulates the samples of one payload.
#[derive(Debug, Default)]
struct Accumulator<'a> {
    containers: Keyed<'a, ContainerKey<'a>, ContainerAcc>,
    pods: Keyed<'a, PodKey<'a>, PodLevelUsage>,
    node_cpu: Field,
    node_memory: Field,
    node_swap: Option<u64>,
    scrape_error: Option<bool>,
}

fn is_container_series(series: Series) -> bool {
    matches!(
        series,
        Series::ContainerCpu
            | Series::ContainerMemory
            | Series::ContainerStart
            | Series::ContainerSwap
    )
}

fn is_pod_series(series: Series) -> bool {
    matches!(series, Series::PodCpu | Series::PodMemory | Series::PodSwap)
}

fn apply_container(c: &mut ContainerAcc, series: Series, value: f64, timestamp: Timestamp) {
    match series {
        Series::ContainerCpu => c.cpu = field(seconds_to_nanos(value), timestamp),
        Series::ContainerMemory => c.memory = field(to_bytes(value), timestamp),
        Series::ContainerSwap => c.swap = to_bytes(value),
        _ => {
            // The start-time sample's own timestamp (1.22-1.28) is ignored; zero or
            // negative means the kubelet had no start time.
            c.start = seconds_to_nanos(value)
                .filter(|&n| n > 0)
                .and_then(|n| i64::try_from(n).ok())
                .map(Timestamp::from_unix_nanos);
        }
    }
}

fn apply_pod(p: &mut PodLevelUsage, series: Series, value: f64, timestamp: Timestamp) {
    match series {
        Series::PodCpu => {
            p.cumulative_cpu_ns = seconds_to_nanos(value);
            p.timestamp = Some(timestamp);
        }
        Series::PodMemory => {
            p.memory_working_set_bytes = to_bytes(value);
            p.timestamp.get_or_insert(timestamp);
        }
        _ => p.swap_usage_bytes = to_bytes(value),
    }
}

impl<'a> Accumulator<'a> {
    /// The entry a line's label set names without parsing it, when it repeats the label
    /// set of the entry under the cursor. Returns the entry and the label set's length.
    fn cursor_hit(&mut self, series: Series, rest: &str) -> Option<(usize, usize)> {
        if is_container_series(series) {
            self.containers.cursor_hit(rest)
        } else if is_pod_series(series) {
            self.pods.cursor_hit(rest)
        } else {
            None
        }
    }

    /// Records a sample for the entry found by [`Accumulator::cursor_hit`].
    fn add_at(&mut self, series: Series, idx: usize, value: f64, timestamp: Timestamp) {
        if is_container_series(series) {
            apply_container(
                &mut self.containers.entries[idx].1,
                series,
                value,
                timestamp,
            );
        } else {
            apply_pod(&mut self.pods.entries[idx].1, series, value, timestamp);
        }
    }

    /// Records a sample whose labels were parsed from `raw`.
    fn add(
        &mut self,
        series: Series,
        labels: Labels<'a>,
        raw: &'a str,
        value: f64,
        timestamp: Timestamp,
    ) {
        match series {
            Series::NodeCpu => self.node_cpu = field(seconds_to_nanos(value), timestamp),
            Series::NodeMemory => self.node_memory = field(to_bytes(value), timestamp),
            Series::NodeSwap => self.node_swap = to_bytes(value),
            Series::ScrapeError => self.scrape_error = Some(value != 0.0),
            _ if is_container_series(series) => {
                // Series without all three identifying labels cannot be attributed.
                let (Some(ns), Some(pod), Some(name)) =
                    (labels.namespace, labels.pod, labels.container)
                else {
                    return;
                };
                apply_container(
                    self.containers.entry((name, ns, pod), raw),
                    series,
                    value,
                    timestamp,
                );
            }
            _ if is_pod_series(series) => {
                let (Some(ns), Some(pod)) = (labels.namespace, labels.pod) else {
                    return;
                };
                apply_pod(self.pods.entry((ns, pod), raw), series, value, timestamp);
            }
            _ => {}
        }
    }

    fn finish(self) -> NodeBatch {
        let node = match (self.node_cpu.usable(), self.node_memory.usable()) {
            (Some((cpu, timestamp)), Some((memory, _))) => Some(MetricsPoint {
                start_time: None,
                timestamp,
                cumulative_cpu_ns: cpu,
                memory_working_set_bytes: memory,
            }),
            _ => None,
        };
        let mut containers = self.containers.entries;
        // From (container, namespace, pod) order to pods, each with its containers by name.
        containers.sort_unstable_by(|((an, ans, ap), _), ((bn, bns, bp), _)| {
            (ans, ap, an).cmp(&(bns, bp, bn))
        });

        let mut batch = NodeBatch {
            node,
            node_swap_usage_bytes: self.node_swap,
            kubelet_scrape_error: self.scrape_error,
            ..NodeBatch::default()
        };
        let name_bytes: usize = containers
            .iter()
            .map(|((n, ns, p), _)| n.len() + ns.len() + p.len())
            .sum();
        batch.names.reserve(name_bytes);
        batch.containers.reserve(containers.len());
        batch
            .pods
            .reserve(self.pods.entries.len().max(containers.len() / 2));
        let mut rest = containers.as_slice();
        while let Some(((_, ns, pod), _)) = rest.first() {
            let len = rest
                .iter()
                .take_while(|((_, n, p), _)| n == ns && p == pod)
                .count();
            let (group, tail) = rest.split_at(len);
            rest = tail;
            if let Some((container, reason)) = first_incomplete(group) {
                batch.dropped_pods.push(DroppedPod {
                    namespace: ns.to_string(),
                    name: pod.to_string(),
                    container: container.to_string(),
                    reason,
                });
                continue;
            }
            let pod_key = (ns.clone(), pod.clone());
            let pod_level = self
                .pods
                .find(&pod_key)
                .map(|i| self.pods.entries[i].1)
                .unwrap_or_default();
            let points = group.iter().filter_map(|((name, _, _), c)| {
                let (cpu, timestamp) = c.cpu.usable()?;
                let (memory, _) = c.memory.usable()?;
                let point = MetricsPoint {
                    start_time: c.start,
                    timestamp,
                    cumulative_cpu_ns: cpu,
                    memory_working_set_bytes: memory,
                };
                Some(ContainerPoint {
                    name,
                    point,
                    swap_usage_bytes: c.swap,
                })
            });
            batch.push_pod(ns, pod, pod_level, points);
        }
        batch
    }
}

/// All-or-nothing per pod, as upstream: the HPA treats a pod with missing metrics
/// specially but would take a zero as a real reading. Returns the first container (in
/// name order) that makes the pod incomplete.
fn first_incomplete<'c>(
    group: &'c [(ContainerKey<'_>, ContainerAcc)],
) -> Option<(&'c str, DropReason)> {
    group.iter().find_map(|((name, _, _), c)| {
        if c.cpu.usable().is_none() {
            Some((name.as_ref(), DropReason::MissingCpu))
        } else if c.memory.usable().is_none() {
            Some((name.as_ref(), DropReason::MissingMemory))
        } else {
            None
        }
    })
}

/// The identifying labels of a series; other labels are syntax-checked and dropped.
#[derive(Debug, Default)]
struct Labels<'a> {
    container: Option<Cow<'a, str>>,
    namespace: Option<Cow<'a, str>>,
    pod: Option<Cow<'a, str>>,
}

/// Decodes a `/metrics/resource` body. `default_time` (the time the request was sent)
/// stamps samples that carry no timestamp.
pub fn decode(body: &[u8], default_time: Timestamp) -> Result<NodeBatch, DecodeError> {
    let mut acc = Accumulator::default();
    // Size the entry lists once instead of growing them line by line: a kubelet prints
    // each container in about four families and each pod in three.
    let lines = memchr::memchr_iter(b'\n', body).count();
    acc.containers.entries.reserve(lines / 6);
    acc.containers.raw.reserve(lines / 6);
    acc.containers.sorted.reserve(lines / 6);
    acc.pods.entries.reserve(lines / 10);
    acc.pods.raw.reserve(lines / 10);
    acc.pods.sorted.reserve(lines / 10);
    // Validating the whole body once is far cheaper than validating every token; only a
    // body with invalid UTF-8 somewhere is checked line by line, where it is an error
    // unless it sits in a plain comment.
    let whole = std::str::from_utf8(body).ok();
    let mut line_no = 0usize;
    let mut rest = body;
    let mut offset = 0;
    while !rest.is_empty() {
        line_no += 1;
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let raw = &rest[..len];
        let consumed = (len + 1).min(rest.len());
        rest = &rest[consumed..];
        let line = match whole {
            Some(text) => &text[offset..offset + len],
            None => match std::str::from_utf8(raw) {
                Ok(line) => line,
                Err(_) if is_plain_comment(raw) => {
                    offset += consumed;
                    continue;
                }
                Err(_) => {
                    return Err(DecodeError::Syntax {
                        line: line_no,
                        reason: "invalid UTF-8",
                    });
                }
            },
        };
        offset += consumed;
        let line = line.strip_suffix('\r').unwrap_or(line);
        parse_line(line, default_time, &mut acc).map_err(|reason| DecodeError::Syntax {
            line: line_no,
            reason,
        })?;
    }
    Ok(acc.finish())
}

/// A comment that is neither HELP nor TYPE: its content is not checked at all.
fn is_plain_comment(raw: &[u8]) -> bool {
    let pos = skip_blanks(raw, 0);
    if raw.get(pos) != Some(&b'#') {
        return false;
    }
    let pos = skip_blanks(raw, pos + 1);
    let word = &raw[pos..token_end(raw, pos)];
    word != b"HELP" && word != b"TYPE"
}

// Byte classes of the text format, looked up in one table: a branch-free test per byte
// keeps the scanning loops tight.
const BLANK: u8 = 1;
const NAME_START: u8 = 2;
const NAME_CHAR: u8 = 4;
const LABEL_START: u8 = 8;
const LABEL_CHAR: u8 = 16;

static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let alpha = c.is_ascii_alphabetic() || c == b'_';
        let digit = c.is_ascii_digit();
        let mut class = 0;
        if c == b' ' || c == b'\t' {
            class |= BLANK;
        }
        if alpha || c == b':' {
            class |= NAME_START | NAME_CHAR;
        }
        if digit {
            class |= NAME_CHAR | LABEL_CHAR;
        }
        if alpha {
            class |= LABEL_START | LABEL_CHAR;
        }
        table[b] = class;
        b += 1;
    }
    table
};

fn has_class(b: u8, class: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

fn is_blank(b: u8) -> bool {
    has_class(b, BLANK)
}

/// The first position at or after `pos` whose byte is not of `class`.
fn scan(line: &[u8], mut pos: usize, class: u8) -> usize {
    while pos < line.len() && has_class(line[pos], class) {
        pos += 1;
    }
    pos
}

fn skip_blanks(line: &[u8], pos: usize) -> usize {
    scan(line, pos, BLANK)
}

/// The end of the token starting at `pos` (the next blank or the end of the line).
fn token_end(line: &[u8], mut pos: usize) -> usize {
    while pos < line.len() && !has_class(line[pos], BLANK) {
        pos += 1;
    }
    pos
}

fn parse_line<'a>(
    line: &'a str,
    default_time: Timestamp,
    acc: &mut Accumulator<'a>,
) -> Result<(), &'static str> {
    let bytes = line.as_bytes();
    let pos = skip_blanks(bytes, 0);
    match bytes.get(pos) {
        None => Ok(()),
        Some(b'#') => parse_comment(bytes, pos + 1),
        Some(_) => parse_sample(line, pos, default_time, acc),
    }
}

/// `# HELP name text` and `# TYPE name type` are checked as the format requires; any
/// other comment is skipped. The line is valid UTF-8 already.
fn parse_comment(line: &[u8], pos: usize) -> Result<(), &'static str> {
    let pos = skip_blanks(line, pos);
    let word_end = token_end(line, pos);
    let keyword = &line[pos..word_end];
    if keyword != b"HELP" && keyword != b"TYPE" {
        return Ok(());
    }
    let name_start = skip_blanks(line, word_end);
    if !line
        .get(name_start)
        .is_some_and(|&b| has_class(b, NAME_START))
    {
        return Err("invalid metric name in comment");
    }
    let name_end = scan(line, name_start, NAME_CHAR);
    if name_end < line.len() && !is_blank(line[name_end]) {
        return Err("invalid metric name in comment");
    }
    let text = &line[skip_blanks(line, name_end)..];
    if keyword == b"TYPE" {
        let kind = text
            .iter()
            .rposition(|&b| !is_blank(b))
            .map_or(&text[..0], |end| &text[..=end]);
        return match kind {
            b"counter" | b"gauge" | b"histogram" | b"summary" | b"untyped" => Ok(()),
            _ => Err("unknown metric type"),
        };
    }
    // HELP: only `\\` and `\n` escapes are defined.
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', &text[i..]) {
        match text.get(i + off + 1) {
            Some(b'\\' | b'n') => i += off + 2,
            _ => return Err("invalid escape sequence in HELP"),
        }
    }
    Ok(())
}

fn parse_sample<'a>(
    line: &'a str,
    pos: usize,
    default_time: Timestamp,
    acc: &mut Accumulator<'a>,
) -> Result<(), &'static str> {
    let bytes = line.as_bytes();
    if !has_class(bytes[pos], NAME_START) {
        return Err("invalid metric name");
    }
    // The name ends at the label set or a blank. A known name is valid as it stands;
    // only names we do not use need their characters checked.
    let name_end =
        memchr::memchr3(b'{', b' ', b'\t', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
    let series = classify(&bytes[pos..name_end]);
    if series == Series::Other && scan(bytes, pos, NAME_CHAR) != name_end {
        return Err("invalid metric name");
    }
    let mut pos = skip_blanks(bytes, name_end);
    let mut labels = Labels::default();
    let mut raw = "";
    let mut known = None;
    if bytes.get(pos) == Some(&b'{') {
        if let Some((idx, len)) = acc.cursor_hit(series, &line[pos..]) {
            known = Some(idx);
            pos += len;
        } else {
            let end = parse_labels(line, pos + 1, &mut labels)?;
            raw = &line[pos..end];
            pos = end;
        }
        pos = skip_blanks(bytes, pos);
    }
    let value_end = token_end(bytes, pos);
    let value = parse_value(&line[pos..value_end])?;
    let pos = skip_blanks(bytes, value_end);
    let timestamp = if pos < bytes.len() {
        let (millis, ts_end) = parse_timestamp(bytes, pos)?;
        if skip_blanks(bytes, ts_end) != bytes.len() {
            return Err("spurious string after timestamp");
        }
        Timestamp::from_unix_millis(millis)
    } else {
        default_time
    };
    match known {
        Some(idx) => acc.add_at(series, idx, value, timestamp),
        None => acc.add(series, labels, raw, value, timestamp),
    }
    Ok(())
}

fn parse_value(token: &str) -> Result<f64, &'static str> {
    if token.is_empty() {
        return Err("expected a sample value");
    }
    // Rust's float syntax is Go's minus hex floats and digit separators, which is exactly
    // what the reference parser accepts (`NaN`, `+Inf`, exponents, `1.`, `.5`).
    token.parse::<f64>().map_err(|_| "invalid sample value")
}

/// Parses the signed decimal milliseconds at `pos`; returns them and where they end.
fn parse_timestamp(line: &[u8], pos: usize) -> Result<(i64, usize), &'static str> {
    let (negative, start) = match line.get(pos) {
        Some(b'-') => (true, pos + 1),
        Some(b'+') => (false, pos + 1),
        _ => (false, pos),
    };
    let mut end = start;
    let mut magnitude: u64 = 0;
    while let Some(&b) = line.get(end) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        // Nineteen digits cannot overflow a u64; the i64 range is checked below.
        if end - start == 19 {
            return Err("timestamp out of range");
        }
        magnitude = magnitude * 10 + u64::from(digit);
        end += 1;
    }
    if end == start || line.get(end).is_some_and(|&b| !is_blank(b)) {
        return Err("invalid timestamp");
    }
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    value.map(|v| (v, end)).ok_or("timestamp out of range")
}

/// Parses `name="value", ...}` starting after `{`; returns the position after `}`.
fn parse_labels<'a>(
    line: &'a str,
    mut pos: usize,
    labels: &mut Labels<'a>,
) -> Result<usize, &'static str> {
    let bytes = line.as_bytes();
    loop {
        pos = skip_blanks(bytes, pos);
        match bytes.get(pos) {
            Some(b'}') => return Ok(pos + 1),
            Some(&b) if has_class(b, LABEL_START) => {}
            Some(_) => return Err("invalid label name"),
            None => return Err("unterminated label set"),
        }
        let name_end = scan(bytes, pos, LABEL_CHAR);
        let name = &bytes[pos..name_end];
        pos = skip_blanks(bytes, name_end);
        if bytes.get(pos) != Some(&b'=') {
            return Err("expected '=' after label name");
        }
        pos = skip_blanks(bytes, pos + 1);
        if bytes.get(pos) != Some(&b'"') {
            return Err("expected '\"' before label value");
        }
        let (value, after) = parse_label_value(line, pos + 1)?;
        let slot = match name {
            b"container" => Some(&mut labels.container),
            b"namespace" => Some(&mut labels.namespace),
            b"pod" => Some(&mut labels.pod),
            _ => None,
        };
        if let Some(slot) = slot {
            if slot.is_some() {
                return Err("duplicate label name");
            }
            *slot = Some(value);
        }
        pos = skip_blanks(bytes, after);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => return Ok(pos + 1),
            Some(_) => return Err("expected ',' or '}' after label value"),
            None => return Err("unterminated label set"),
        }
    }
}

/// Reads a quoted label value starting after the opening quote. Values without escapes
/// are borrowed from the payload; escaped ones are unescaped into a new string.
fn parse_label_value(line: &str, start: usize) -> Result<(Cow<'_, str>, usize), &'static str> {
    let body = &line.as_bytes()[start..];
    let end = memchr::memchr2(b'"', b'\\', body).ok_or("unterminated label value")?;
    if body[end] == b'"' {
        return Ok((Cow::Borrowed(&line[start..start + end]), start + end + 1));
    }
    let mut out = String::with_capacity(body.len().min(64));
    let mut i = 0;
    loop {
        let off = memchr::memchr2(b'"', b'\\', &body[i..]).ok_or("unterminated label value")?;
        out.push_str(&line[start + i..start + i + off]);
        i += off;
        if body[i] == b'"' {
            break;
        }
        match body.get(i + 1) {
            Some(b'\\') => out.push('\\'),
            Some(b'"') => out.push('"'),
            Some(b'n') => out.push('\n'),
            _ => return Err("invalid escape sequence in label value"),
        }
        i += 2;
    }
    Ok((Cow::Owned(out), start + i + 1))
}
