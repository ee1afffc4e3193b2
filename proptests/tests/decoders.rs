//! Decoders never panic, whatever the bytes; well-formed renderings always decode.

use metrics_core::kubelet::{resource, summary};
use metrics_core::time::Timestamp;
use proptest::prelude::*;
use testdata::fixtures;

fn request_time() -> Timestamp {
    Timestamp::from_unix_millis(1_749_548_413_502)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Truncate { at: usize },
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop::sample::select(vec![
        b'"', b'\\', b'{', b'}', b',', b'=', b' ', b'\n', b'\r', b'#', b'e', b'-', b'0', b'9',
        b'.', 0xff, 0xc3, b'[', b']', b':',
    ]);
    prop_oneof![
        (any::<usize>(), prop_oneof![any::<u8>(), special.clone()])
            .prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (
            any::<usize>(),
            prop::collection::vec(prop_oneof![any::<u8>(), special], 1..8)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1usize..256).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn apply(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = data.len().max(1);
        match m {
            Mutation::Flip { at, byte } => {
                if let Some(b) = data.get_mut(at % len) {
                    *b = *byte;
                }
            }
            Mutation::Insert { at, bytes } => {
                let at = at % (data.len() + 1);
                data.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete { at, len: n } => {
                let at = at % len;
                let end = (at + n).min(data.len());
                if at < end {
                    data.drain(at..end);
                }
            }
            Mutation::Truncate { at } => data.truncate(at % len),
            Mutation::Duplicate { at, len: n } => {
                let at = at % len;
                let end = (at + n).min(data.len());
                if at < end {
                    let copy = data[at..end].to_vec();
                    data.splice(end..end, copy);
                }
            }
        }
    }
    data
}

fn text_fixtures() -> Vec<&'static [u8]> {
    let extra = fixtures::EXTRA.iter().filter(|f| f.name.ends_with(".txt"));
    fixtures::METRICS_RESOURCE
        .iter()
        .chain(fixtures::EDGE)
        .chain(extra)
        .map(|f| f.bytes)
        .collect()
}

fn json_fixtures() -> Vec<&'static [u8]> {
    let extra = fixtures::EXTRA.iter().filter(|f| f.name.ends_with(".json"));
    fixtures::STATS_SUMMARY
        .iter()
        .chain(extra)
        .map(|f| f.bytes)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn resource_decoder_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = resource::decode(&bytes, request_time());
    }

    #[test]
    fn resource_decoder_never_panics_on_exposition_like_text(text in "[a-z_{}=\",. 0-9eE+#\\-\\\\\n\r\tNaInf:]{0,600}") {
        let _ = resource::decode(text.as_bytes(), request_time());
    }

    #[test]
    fn summary_decoder_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = summary::decode(&bytes);
    }

    #[test]
    fn resource_decoder_never_panics_on_mutated_payloads(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let all = text_fixtures();
        let base = all[which.index(all.len())].to_vec();
        let mutated = apply(base, &mutations);
        if let Ok(batch) = resource::decode(&mutated, request_time()) {
            // Whatever survives is internally consistent.
            let pods: Vec<_> = batch.pods().collect();
            prop_assert!(pods.windows(2).all(|w| (w[0].namespace, w[0].name) < (w[1].namespace, w[1].name)));
            for pod in &pods {
                prop_assert!(pod.container_count() > 0);
                for c in pod.containers() {
                    prop_assert!(c.point.cumulative_cpu_ns > 0 && c.point.memory_working_set_bytes > 0);
                }
            }
        }
    }

    #[test]
    fn summary_decoder_never_panics_on_mutated_payloads(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let all = json_fixtures();
        let base = all[which.index(all.len())].to_vec();
        let mutated = apply(base, &mutations);
        if let Ok(batch) = summary::decode(&mutated) {
            for pod in batch.pods() {
                for c in pod.containers() {
                    prop_assert!(c.point.cumulative_cpu_ns > 0 && c.point.memory_working_set_bytes > 0);
                }
            }
        }
    }

    /// Spec case 14: values rendered with %f, %e or %E and any timestamp >= 0 decode
    /// without error, to the value the rendering denotes.
    #[test]
    fn case_14_float_renderings_always_decode(
        cpu_seconds in 1e-3f64..1e7,
        memory in 1u64..(1u64 << 50),
        start_seconds in 1.0e9f64..2.0e9,
        timestamp in 0i64..i64::MAX / 1_000_000,
        style in 0usize..3,
    ) {
        let render = |v: f64| match style {
            0 => format!("{v:.6}"),
            1 => format!("{v:.6e}"),
            _ => format!("{v:.6E}"),
        };
        let text = format!(
            "container_cpu_usage_seconds_total{{container=\"c\",namespace=\"n\",pod=\"p\"}} {cpu} {timestamp}\n\
             container_memory_working_set_bytes{{container=\"c\",namespace=\"n\",pod=\"p\"}} {mem} {timestamp}\n\
             container_start_time_seconds{{container=\"c\",namespace=\"n\",pod=\"p\"}} {start} {timestamp}\n",
            cpu = render(cpu_seconds),
            mem = render(memory as f64),
            start = render(start_seconds),
        );
        let batch = resource::decode(text.as_bytes(), request_time()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let rendered_cpu: f64 = render(cpu_seconds).parse().map_err(|_| TestCaseError::fail("unparsable rendering"))?;
        match batch.pods().next() {
            Some(pod) => {
                let p = pod.containers().next().expect("a container").point;
                prop_assert_eq!(p.cumulative_cpu_ns, (rendered_cpu * 1e9) as u64);
                prop_assert_eq!(p.timestamp, Timestamp::from_unix_millis(timestamp));
            }
            // Only a CPU or memory value that renders as zero drops the pod.
            None => prop_assert!((rendered_cpu * 1e9) as u64 == 0 || render(memory as f64).parse::<f64>().map_or(true, |m| m < 1.0)),
        }
    }
}
