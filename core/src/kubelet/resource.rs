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
    PodPoints,
};
use crate::time::Timestamp;
use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

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
    (nanos.is_finite() && nanos >= 0.0 && nanos < 18_446_744_073_709_551_616.0)
        .then(|| nanos as u64)
}

fn to_bytes(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v < 18_446_744_073_709_551_616.0).then(|| v as u64)
}

fn field(value: Option<u64>, timestamp: Timestamp) -> Field {
    match value {
        Some(value) => Field::Value { value, timestamp },
        None => Field::Invalid,
    }
}

#[derive(Debug)]
struct ContainerAcc<'a> {
    namespace: Cow<'a, str>,
    pod: Cow<'a, str>,
    name: Cow<'a, str>,
    cpu: Field,
    memory: Field,
    start: Option<Timestamp>,
    swap: Option<u64>,
}

#[derive(Debug)]
struct PodAcc<'a> {
    namespace: Cow<'a, str>,
    pod: Cow<'a, str>,
    usage: PodLevelUsage,
}

type ContainerKey<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);

/// Accumulates samples for one payload. Kubelet families list the same containers in the
/// same order, so the next container is usually the one after the last match: a cursor
/// check avoids hashing for almost every line.
#[derive(Debug, Default)]
struct Accumulator<'a> {
    containers: Vec<ContainerAcc<'a>>,
    container_index: HashMap<ContainerKey<'a>, usize>,
    container_cursor: usize,
    pods: Vec<PodAcc<'a>>,
    pod_index: HashMap<(Cow<'a, str>, Cow<'a, str>), usize>,
    pod_cursor: usize,
    node_cpu: Field,
    node_memory: Field,
    node_swap: Option<u64>,
    scrape_error: Option<bool>,
}

impl<'a> Accumulator<'a> {
    fn container(
        &mut self,
        namespace: Cow<'a, str>,
        pod: Cow<'a, str>,
        name: Cow<'a, str>,
    ) -> &mut ContainerAcc<'a> {
        let guess = self.container_cursor;
        if let Some(c) = self.containers.get(guess)
            && c.name == name
            && c.pod == pod
            && c.namespace == namespace
        {
            self.container_cursor = guess + 1;
            return &mut self.containers[guess];
        }
        let idx = match self.container_index.entry((namespace, pod, name)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let idx = self.containers.len();
                let (namespace, pod, name) = e.key().clone();
                self.containers.push(ContainerAcc {
                    namespace,
                    pod,
                    name,
                    cpu: Field::Absent,
                    memory: Field::Absent,
                    start: None,
                    swap: None,
                });
                e.insert(idx);
                idx
            }
        };
        self.container_cursor = idx + 1;
        &mut self.containers[idx]
    }

    fn pod(&mut self, namespace: Cow<'a, str>, pod: Cow<'a, str>) -> &mut PodLevelUsage {
        let guess = self.pod_cursor;
        if let Some(p) = self.pods.get(guess)
            && p.pod == pod
            && p.namespace == namespace
        {
            self.pod_cursor = guess + 1;
            return &mut self.pods[guess].usage;
        }
        let idx = match self.pod_index.entry((namespace, pod)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let idx = self.pods.len();
                let (namespace, pod) = e.key().clone();
                self.pods.push(PodAcc {
                    namespace,
                    pod,
                    usage: PodLevelUsage::default(),
                });
                e.insert(idx);
                idx
            }
        };
        self.pod_cursor = idx + 1;
        &mut self.pods[idx].usage
    }

    fn add(&mut self, series: Series, labels: Labels<'a>, value: f64, timestamp: Timestamp) {
        match series {
            Series::NodeCpu => self.node_cpu = field(seconds_to_nanos(value), timestamp),
            Series::NodeMemory => self.node_memory = field(to_bytes(value), timestamp),
            Series::NodeSwap => self.node_swap = to_bytes(value),
            Series::ScrapeError => self.scrape_error = Some(value != 0.0),
            Series::ContainerCpu
            | Series::ContainerMemory
            | Series::ContainerStart
            | Series::ContainerSwap => {
                // Series without all three identifying labels cannot be attributed.
                let (Some(ns), Some(pod), Some(name)) =
                    (labels.namespace, labels.pod, labels.container)
                else {
                    return;
                };
                let c = self.container(ns, pod, name);
                match series {
                    Series::ContainerCpu => c.cpu = field(seconds_to_nanos(value), timestamp),
                    Series::ContainerMemory => c.memory = field(to_bytes(value), timestamp),
                    Series::ContainerSwap => c.swap = to_bytes(value),
                    _ => {
                        // The start-time sample's own timestamp (1.22-1.28) is ignored;
                        // zero or negative means the kubelet had no start time.
                        c.start = seconds_to_nanos(value)
                            .filter(|&n| n > 0)
                            .and_then(|n| i64::try_from(n).ok())
                            .map(Timestamp::from_unix_nanos);
                    }
                }
            }
            Series::PodCpu | Series::PodMemory | Series::PodSwap => {
                let (Some(ns), Some(pod)) = (labels.namespace, labels.pod) else {
                    return;
                };
                let p = self.pod(ns, pod);
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
            Series::Other => {}
        }
    }

    fn finish(mut self) -> NodeBatch {
        let node = match (self.node_cpu.usable(), self.node_memory.usable()) {
            (Some((cpu, timestamp)), Some((memory, _))) => Some(MetricsPoint {
                start_time: None,
                timestamp,
                cumulative_cpu_ns: cpu,
                memory_working_set_bytes: memory,
            }),
            _ => None,
        };
        let mut pod_level: HashMap<(Cow<'a, str>, Cow<'a, str>), PodLevelUsage> = self
            .pods
            .drain(..)
            .map(|p| ((p.namespace, p.pod), p.usage))
            .collect();
        let mut containers = std::mem::take(&mut self.containers);
        containers.sort_unstable_by(|a, b| {
            (&a.namespace, &a.pod, &a.name).cmp(&(&b.namespace, &b.pod, &b.name))
        });

        let mut pods = Vec::new();
        let mut dropped_pods = Vec::new();
        let mut rest = containers.as_slice();
        while let Some(first) = rest.first() {
            let len = rest
                .iter()
                .take_while(|c| c.namespace == first.namespace && c.pod == first.pod)
                .count();
            let (group, tail) = rest.split_at(len);
            rest = tail;
            let usage = pod_level
                .remove(&(first.namespace.clone(), first.pod.clone()))
                .unwrap_or_default();
            match build_pod(group) {
                Ok(containers) => pods.push(PodPoints {
                    namespace: first.namespace.to_string(),
                    name: first.pod.to_string(),
                    containers,
                    pod_level: usage,
                }),
                Err((container, reason)) => dropped_pods.push(DroppedPod {
                    namespace: first.namespace.to_string(),
                    name: first.pod.to_string(),
                    container: container.to_string(),
                    reason,
                }),
            }
        }
        NodeBatch {
            node,
            node_swap_usage_bytes: self.node_swap,
            pods,
            dropped_pods,
            kubelet_scrape_error: self.scrape_error,
        }
    }
}

/// All-or-nothing per pod, as upstream: the HPA treats a pod with missing metrics
/// specially but would take a zero as a real reading.
fn build_pod<'c>(
    group: &'c [ContainerAcc<'_>],
) -> Result<Vec<ContainerPoint>, (&'c str, DropReason)> {
    let mut out = Vec::with_capacity(group.len());
    for c in group {
        let Some((cpu, timestamp)) = c.cpu.usable() else {
            return Err((&c.name, DropReason::MissingCpu));
        };
        let Some((memory, _)) = c.memory.usable() else {
            return Err((&c.name, DropReason::MissingMemory));
        };
        out.push(ContainerPoint {
            name: c.name.to_string(),
            point: MetricsPoint {
                start_time: c.start,
                timestamp,
                cumulative_cpu_ns: cpu,
                memory_working_set_bytes: memory,
            },
            swap_usage_bytes: c.swap,
        });
    }
    Ok(out)
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
    let mut line_no = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        line_no += 1;
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        parse_line(line, default_time, &mut acc).map_err(|reason| DecodeError::Syntax {
            line: line_no,
            reason,
        })?;
    }
    Ok(acc.finish())
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(line: &[u8], mut pos: usize) -> usize {
    while pos < line.len() && is_blank(line[pos]) {
        pos += 1;
    }
    pos
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn take_while(line: &[u8], pos: usize, pred: impl Fn(u8) -> bool) -> usize {
    pos + line[pos..].iter().take_while(|&&b| pred(b)).count()
}

fn parse_line<'a>(
    line: &'a [u8],
    default_time: Timestamp,
    acc: &mut Accumulator<'a>,
) -> Result<(), &'static str> {
    let pos = skip_blanks(line, 0);
    match line.get(pos) {
        None => Ok(()),
        Some(b'#') => parse_comment(line, pos + 1),
        Some(_) => parse_sample(line, pos, default_time, acc),
    }
}

/// `# HELP name text` and `# TYPE name type` are checked as the format requires; any
/// other comment is skipped.
fn parse_comment(line: &[u8], pos: usize) -> Result<(), &'static str> {
    let pos = skip_blanks(line, pos);
    let word_end = pos + line[pos..].iter().take_while(|&&b| !is_blank(b)).count();
    let keyword = &line[pos..word_end];
    if keyword != b"HELP" && keyword != b"TYPE" {
        return Ok(());
    }
    let name_start = skip_blanks(line, word_end);
    if !line.get(name_start).is_some_and(|&b| is_name_start(b)) {
        return Err("invalid metric name in comment");
    }
    let name_end = take_while(line, name_start, is_name_char);
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
    // HELP: only `\\` and `\n` escapes are defined, and the text must be UTF-8.
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', &text[i..]) {
        match text.get(i + off + 1) {
            Some(b'\\' | b'n') => i += off + 2,
            _ => return Err("invalid escape sequence in HELP"),
        }
    }
    std::str::from_utf8(text)
        .map(|_| ())
        .map_err(|_| "invalid UTF-8 in HELP")
}

fn parse_sample<'a>(
    line: &'a [u8],
    pos: usize,
    default_time: Timestamp,
    acc: &mut Accumulator<'a>,
) -> Result<(), &'static str> {
    if !is_name_start(line[pos]) {
        return Err("invalid metric name");
    }
    let name_end = take_while(line, pos, is_name_char);
    let series = classify(&line[pos..name_end]);
    let mut pos = skip_blanks(line, name_end);
    let mut labels = Labels::default();
    if line.get(pos) == Some(&b'{') {
        pos = parse_labels(line, pos + 1, &mut labels)?;
        pos = skip_blanks(line, pos);
    } else if pos == name_end && pos < line.len() {
        return Err("invalid metric name");
    }
    let value_end = pos + line[pos..].iter().take_while(|&&b| !is_blank(b)).count();
    let value = parse_value(&line[pos..value_end])?;
    let pos = skip_blanks(line, value_end);
    let timestamp = if pos < line.len() {
        let ts_end = pos + line[pos..].iter().take_while(|&&b| !is_blank(b)).count();
        let millis = parse_timestamp(&line[pos..ts_end])?;
        if skip_blanks(line, ts_end) != line.len() {
            return Err("spurious string after timestamp");
        }
        Timestamp::from_unix_millis(millis)
    } else {
        default_time
    };
    acc.add(series, labels, value, timestamp);
    Ok(())
}

fn parse_value(token: &[u8]) -> Result<f64, &'static str> {
    if token.is_empty() {
        return Err("expected a sample value");
    }
    // The reference parser takes Go float syntax minus hex floats and digit separators.
    if token
        .iter()
        .any(|&b| matches!(b, b'p' | b'P' | b'_' | b'x' | b'X'))
    {
        return Err("invalid sample value");
    }
    std::str::from_utf8(token)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or("invalid sample value")
}

fn parse_timestamp(token: &[u8]) -> Result<i64, &'static str> {
    let (negative, digits) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, token),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err("invalid timestamp");
    }
    let magnitude = digits
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    value.ok_or("timestamp out of range")
}

/// Parses `name="value", ...}` starting after `{`; returns the position after `}`.
fn parse_labels<'a>(
    line: &'a [u8],
    mut pos: usize,
    labels: &mut Labels<'a>,
) -> Result<usize, &'static str> {
    loop {
        pos = skip_blanks(line, pos);
        match line.get(pos) {
            Some(b'}') => return Ok(pos + 1),
            Some(&b) if is_label_start(b) => {}
            Some(_) => return Err("invalid label name"),
            None => return Err("unterminated label set"),
        }
        let name_end = take_while(line, pos, is_label_char);
        let name = &line[pos..name_end];
        pos = skip_blanks(line, name_end);
        if line.get(pos) != Some(&b'=') {
            return Err("expected '=' after label name");
        }
        pos = skip_blanks(line, pos + 1);
        if line.get(pos) != Some(&b'"') {
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
        pos = skip_blanks(line, after);
        match line.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => return Ok(pos + 1),
            Some(_) => return Err("expected ',' or '}' after label value"),
            None => return Err("unterminated label set"),
        }
    }
}

/// Reads a quoted label value starting after the opening quote. Values without escapes
/// are borrowed from the payload; escaped ones are unescaped into a new string.
fn parse_label_value(line: &[u8], start: usize) -> Result<(Cow<'_, str>, usize), &'static str> {
    let body = &line[start..];
    let end = memchr::memchr2(b'"', b'\\', body).ok_or("unterminated label value")?;
    if body[end] == b'"' {
        let s = std::str::from_utf8(&body[..end]).map_err(|_| "invalid UTF-8 in label value")?;
        return Ok((Cow::Borrowed(s), start + end + 1));
    }
    let mut out = Vec::with_capacity(body.len().min(64));
    let mut i = 0;
    loop {
        let off = memchr::memchr2(b'"', b'\\', &body[i..]).ok_or("unterminated label value")?;
        out.extend_from_slice(&body[i..i + off]);
        i += off;
        if body[i] == b'"' {
            break;
        }
        match body.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'"') => out.push(b'"'),
            Some(b'n') => out.push(b'\n'),
            _ => return Err("invalid escape sequence in label value"),
        }
        i += 2;
    }
    let s = String::from_utf8(out).map_err(|_| "invalid UTF-8 in label value")?;
    Ok((Cow::Owned(s), start + i + 1))
}
