//! Upstream metrics-server's own test cases, restated as facts in
//! `kubelet-and-storage.md` section 7, each named by its number; and the departures from
//! upstream defects of section 10, each showing the better behaviour.

use metrics_core::kubelet::{
    ContainerPoint, DropReason, MetricsPoint, NodeBatch, PodLevelUsage, resource, summary,
};
use metrics_core::quantity::Quantity;
use metrics_core::storage::{Snapshot, Storage, UsageError, usage};
use metrics_core::time::Timestamp;
use std::sync::Arc;
use std::time::Duration;

const CORE_SECOND: u64 = 1_000_000_000;
const MIB: u64 = 1 << 20;

fn t(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("valid time")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------------------------------
// Decoding /metrics/resource (cases 1-15)

const NORMAL_CONTAINER: &str = r#"container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 4.710169 1633253812125
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.253376e+07 1633253812125
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.633252712e+9 1633253812125
"#;
const NORMAL_NODE: &str = "node_cpu_usage_seconds_total 357.35491 1633253809720\nnode_memory_working_set_bytes 1.616273408e+09 1633253809720\n";
const POD_SERIES: &str = r#"# HELP pod_cpu_usage_seconds_total [ALPHA] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 4.9 1633253812125
# HELP pod_memory_working_set_bytes [ALPHA] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.3e+07 1633253812125
# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
"#;

fn default_time() -> Timestamp {
    t("2021-10-03T09:40:00Z")
}

fn decode(text: &str) -> NodeBatch {
    resource::decode(text.as_bytes(), default_time()).expect("decodes")
}

fn coredns_point(timestamp: Timestamp) -> MetricsPoint {
    MetricsPoint {
        start_time: Some(t("2021-10-03T09:18:32Z")),
        timestamp,
        cumulative_cpu_ns: 4_710_169_000,
        memory_working_set_bytes: 12_533_760,
    }
}

#[test]
fn case_01_normal_payload() {
    let batch = decode(&format!("{NORMAL_CONTAINER}{NORMAL_NODE}{POD_SERIES}"));
    let node = batch.node.expect("node point");
    assert_eq!(
        node,
        MetricsPoint {
            start_time: None,
            timestamp: t("2021-10-03T09:36:49.720Z"),
            cumulative_cpu_ns: 357_354_910_000,
            memory_working_set_bytes: 1_616_273_408
        }
    );
    assert_eq!(batch.pod_count(), 1);
    let pod = batch
        .pod("kube-system", "coredns-558bd4d5db-4dpjz")
        .expect("pod");
    assert_eq!(pod.container_count(), 1);
    assert_eq!(pod.containers().next().expect("container").name, "coredns");
    assert_eq!(
        pod.containers().next().expect("container").point,
        coredns_point(t("2021-10-03T09:36:52.125Z"))
    );
    // pod_* series and scrape_error do not change the served points; they are kept aside.
    assert_eq!(pod.pod_level.cumulative_cpu_ns, Some(4_900_000_000));
    assert_eq!(batch.kubelet_scrape_error, Some(false));
}

#[test]
fn case_02_no_timestamps_take_the_default_time() {
    let strip = |s: &str| {
        s.lines()
            .map(|l| l.rsplit_once(' ').map_or(l, |(head, _)| head))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let text = format!("{}\n{}\n", strip(NORMAL_CONTAINER), strip(NORMAL_NODE));
    let default = t("2077-07-07T07:07:07Z");
    let batch = resource::decode(text.as_bytes(), default).expect("decodes");
    assert_eq!(batch.node.expect("node").timestamp, default);
    let pod = batch.pods().next().expect("pod");
    assert_eq!(
        pod.containers().next().expect("container").point,
        coredns_point(default)
    );
}

#[test]
fn case_03_only_container_lines() {
    let batch = decode(NORMAL_CONTAINER);
    assert_eq!(batch.node, None);
    assert!(
        batch
            .pod("kube-system", "coredns-558bd4d5db-4dpjz")
            .is_some()
    );
}

#[test]
fn case_04_only_container_memory() {
    let line = NORMAL_CONTAINER.lines().nth(1).expect("line");
    let batch = decode(line);
    assert!((batch.pod_count() == 0) && batch.node.is_none());
    assert_eq!(batch.dropped_pods[0].reason, DropReason::MissingCpu);
}

#[test]
fn case_05_container_cpu_zero() {
    let text = NORMAL_CONTAINER.replace(" 4.710169 ", " 0 ");
    let batch = decode(&text);
    assert!((batch.pod_count() == 0));
    assert_eq!(batch.dropped_pods[0].reason, DropReason::MissingCpu);
}

#[test]
fn case_06_only_container_cpu() {
    let line = NORMAL_CONTAINER.lines().next().expect("line");
    let batch = decode(line);
    assert!((batch.pod_count() == 0));
    assert_eq!(batch.dropped_pods[0].reason, DropReason::MissingMemory);
}

#[test]
fn case_07_container_memory_zero() {
    let text = NORMAL_CONTAINER.replace(" 1.253376e+07 ", " 0 ");
    let batch = decode(&text);
    assert!((batch.pod_count() == 0));
    assert_eq!(batch.dropped_pods[0].reason, DropReason::MissingMemory);
}

#[test]
fn case_08_only_node_lines() {
    let batch = decode(NORMAL_NODE);
    assert_eq!(
        batch.node,
        Some(MetricsPoint {
            start_time: None,
            timestamp: t("2021-10-03T09:36:49.720Z"),
            cumulative_cpu_ns: 357_354_910_000,
            memory_working_set_bytes: 1_616_273_408
        })
    );
    assert!((batch.pod_count() == 0));
}

#[test]
fn case_09_node_memory_only() {
    assert_eq!(decode(NORMAL_NODE.lines().nth(1).expect("line")).node, None);
}

#[test]
fn case_10_node_cpu_zero() {
    assert_eq!(
        decode(&NORMAL_NODE.replace(" 357.35491 ", " 0 ")).node,
        None
    );
}

#[test]
fn case_11_node_cpu_only() {
    assert_eq!(decode(NORMAL_NODE.lines().next().expect("line")).node, None);
}

#[test]
fn case_12_node_memory_zero() {
    assert_eq!(
        decode(&NORMAL_NODE.replace(" 1.616273408e+09 ", " 0 ")).node,
        None
    );
}

/// Upstream rejects the payload (negative timestamp). Section 10 item 4: accept it and
/// treat a start time <= 0 as absent.
#[test]
fn case_13_negative_start_time_accepted_as_absent() {
    let text = r#"container_cpu_usage_seconds_total{container="a",namespace="ns",pod="p"} 1 1633253812125
container_memory_working_set_bytes{container="a",namespace="ns",pod="p"} 1024 1633253812125
container_start_time_seconds{container="a",namespace="ns",pod="p"} -6.7953645788713455e+09 -62135596800000
container_start_time_seconds{container="b",namespace="ns",pod="q"} 1.6509742024191372e+09 1650974202419
container_cpu_usage_seconds_total{container="b",namespace="ns",pod="q"} 2 1633253812125
container_memory_working_set_bytes{container="b",namespace="ns",pod="q"} 2048 1633253812125
"#;
    let batch = decode(text);
    assert_eq!(
        batch
            .pod("ns", "p")
            .expect("p")
            .containers()
            .next()
            .expect("container")
            .point
            .start_time,
        None
    );
    let q = batch
        .pod("ns", "q")
        .expect("q")
        .containers()
        .next()
        .expect("container")
        .point
        .start_time
        .expect("start");
    assert_eq!(q.unix_nanos(), (1.6509742024191372e9f64 * 1e9) as i64);
}

/// Values in `%f`, `%e` and `%E` renderings with non-negative timestamps always decode
/// (the property version is in proptests).
#[test]
fn case_14_float_renderings_never_error() {
    for (cpu, mem, start) in [
        ("4.710169", "12533760.000000", "1633252712.000000"),
        ("4.710169e+00", "1.253376e+07", "1.633252712e+09"),
        ("4.710169E+00", "1.253376E+07", "1.633252712E+09"),
    ] {
        let text = format!(
            "container_cpu_usage_seconds_total{{container=\"c\",namespace=\"n\",pod=\"p\"}} {cpu} 0\ncontainer_memory_working_set_bytes{{container=\"c\",namespace=\"n\",pod=\"p\"}} {mem} 1633253812125\ncontainer_start_time_seconds{{container=\"c\",namespace=\"n\",pod=\"p\"}} {start} 1\n"
        );
        let batch = decode(&text);
        let c = batch
            .pods()
            .next()
            .expect("pod")
            .containers()
            .next()
            .expect("container")
            .point;
        assert_eq!(
            (c.cumulative_cpu_ns, c.memory_working_set_bytes),
            (4_710_169_000, 12_533_760)
        );
        assert_eq!(c.start_time, Some(t("2021-10-03T09:18:32Z")));
    }
}

/// Empty input is an empty batch; arbitrary input never panics (property test in
/// proptests); the label-less container series that crashes upstream is ignored.
#[test]
fn case_15_empty_and_hostile_input() {
    assert_eq!(
        resource::decode(b"", default_time()),
        Ok(NodeBatch::default())
    );
    let hostile: [&[u8]; 8] = [
        b"container_cpu_usage_seconds_total 1\n",
        b"{",
        b"a{b=\"\\",
        b"\xff\xfe",
        b"#",
        b"# TYPE x bogus\n",
        b"x{a=\"b\"",
        b"x 1 2 3",
    ];
    for input in hostile {
        let _ = resource::decode(input, default_time());
    }
    assert!(
        decode("container_cpu_usage_seconds_total 1\ncontainer_memory_working_set_bytes 1\n")
            .pod_count()
            == 0
    );
}

/// Upstream serves a 70-pod fixture over HTTP and expects 1 node and 70 pods; the same
/// shape comes here from a rendered 70-pod node.
#[test]
fn case_16_seventy_pod_node() {
    let mut text = String::new();
    for family in [
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
    ] {
        for i in 0..70 {
            text.push_str(&format!("{family}{{container=\"app\",namespace=\"ns{}\",pod=\"pod-{i:02}\"}} {}.5 1633253812125\n", i % 4, i + 1));
        }
    }
    text.push_str(NORMAL_NODE);
    let batch = decode(&text);
    assert!(batch.node.is_some());
    assert_eq!(batch.pod_count(), 70);
    assert!(batch.pods().all(|p| p.container_count() == 1));
}

/// The benchmark decodes one fixture repeatedly: each decode stands alone.
#[test]
fn case_17_repeated_decodes_are_identical() {
    let text = format!("{NORMAL_CONTAINER}{NORMAL_NODE}{POD_SERIES}");
    let first = decode(&text);
    for _ in 0..3 {
        assert_eq!(decode(&text), first);
    }
}

// ---------------------------------------------------------------------------------------
// Storage helpers

fn point(start: Option<Timestamp>, ts: Timestamp, cpu: u64, mem: u64) -> MetricsPoint {
    MetricsPoint {
        start_time: start,
        timestamp: ts,
        cumulative_cpu_ns: cpu,
        memory_working_set_bytes: mem,
    }
}

fn node_only(name: &str, p: MetricsPoint) -> Vec<(String, NodeBatch)> {
    vec![(name.to_string(), NodeBatch::with_node(Some(p)))]
}

/// A pod to put in a batch: namespace, name and (container, point) pairs.
#[derive(Debug, Clone)]
struct TestPod {
    namespace: String,
    name: String,
    containers: Vec<(String, MetricsPoint)>,
}

fn pod(ns: &str, name: &str, containers: &[(&str, MetricsPoint)]) -> TestPod {
    TestPod {
        namespace: ns.into(),
        name: name.into(),
        containers: containers
            .iter()
            .map(|(n, p)| ((*n).to_string(), *p))
            .collect(),
    }
}

fn to_batch(node: Option<MetricsPoint>, pods: &[TestPod]) -> NodeBatch {
    let mut batch = NodeBatch::with_node(node);
    for p in pods {
        let containers = p.containers.iter().map(|(name, point)| ContainerPoint {
            name,
            point: *point,
            swap_usage_bytes: None,
        });
        batch.push_pod(&p.namespace, &p.name, PodLevelUsage::default(), containers);
    }
    batch
}

fn pods_only(pods: Vec<TestPod>) -> Vec<(String, NodeBatch)> {
    vec![("node1".to_string(), to_batch(None, &pods))]
}

/// Node storage readiness as upstream's node storage reports it.
fn nodes_ready(s: &Snapshot) -> bool {
    s.points().is_some_and(|p| p.nodes > 0)
}

fn containers_ready(s: &Snapshot) -> bool {
    s.points().is_some_and(|p| p.containers > 0)
}

fn start() -> Timestamp {
    t("2021-10-03T09:00:00Z")
}

fn at(offset_secs: u64) -> Timestamp {
    start().saturating_add(secs(offset_secs))
}

/// Go's zero time, which upstream's tests use for "no start time", is before what a
/// nanosecond timestamp can hold; decoders map it to `None`, and the earliest
/// representable time stands in for it here.
fn go_zero() -> Timestamp {
    Timestamp::MIN
}

// ---------------------------------------------------------------------------------------
// Node storage (cases 18-25), resolution 60 s

fn node_case_18(start_time: Option<Timestamp>) {
    let mut storage = Storage::new(secs(60));
    let snap = storage.store(node_only(
        "node1",
        point(start_time, at(10), 10 * CORE_SECOND, 2 * MIB),
    ));
    assert!(!nodes_ready(&snap));
    assert_eq!(snap.node("node1"), None);
    let snap = storage.store(node_only(
        "node1",
        point(start_time, at(20), 20 * CORE_SECOND, 3 * MIB),
    ));
    assert!(nodes_ready(&snap));
    let u = snap.node("node1").expect("node1 served");
    assert_eq!(
        (u.timestamp, u.window, u.cpu_nanocores, u.memory_bytes),
        (at(20), secs(10), CORE_SECOND, 3 * MIB)
    );
    assert_eq!(Quantity::cpu_nanocores(u.cpu_nanocores).to_canonical(), "1");
    assert_eq!(snap.node("node2"), None);
    let snap = storage.store(Vec::new());
    assert_eq!(snap.node("node1"), None);
}

#[test]
fn case_18_node_two_points() {
    node_case_18(Some(start()));
}

#[test]
fn case_19_same_node_batch_twice() {
    let mut storage = Storage::new(secs(60));
    let batch = node_only(
        "node1",
        point(Some(start()), at(10), 10 * CORE_SECOND, 2 * MIB),
    );
    storage.store(batch.clone());
    let snap = storage.store(batch);
    assert!(!nodes_ready(&snap));
    assert_eq!(snap.node("node1"), None);
}

#[test]
fn case_20_points_gauge_for_nodes() {
    let mut storage = Storage::new(secs(60));
    assert_eq!(storage.snapshot().points(), None);
    let snap = storage.store(node_only(
        "node1",
        point(Some(start()), at(10), 10 * CORE_SECOND, 2 * MIB),
    ));
    assert_eq!(snap.points().map(|p| (p.nodes, p.containers)), Some((0, 0)));
    let snap = storage.store(node_only(
        "node1",
        point(Some(start()), at(20), 20 * CORE_SECOND, 3 * MIB),
    ));
    assert_eq!(snap.points().map(|p| (p.nodes, p.containers)), Some((1, 0)));
}

fn node_sequence(points: &[MetricsPoint]) -> Arc<Snapshot> {
    let mut storage = Storage::new(secs(60));
    let mut snap = storage.snapshot();
    for p in points {
        snap = storage.store(node_only("node1", *p));
    }
    snap
}

#[test]
fn case_21_node_restart_cpu_decreased() {
    let snap = node_sequence(&[
        point(Some(start()), at(10), 10 * CORE_SECOND, MIB),
        point(Some(at(15)), at(20), 5 * CORE_SECOND, MIB),
    ]);
    assert_eq!(snap.node("node1"), None);
    let record = &snap.node_records()[0];
    assert_eq!(record.usage, Some(Err(UsageError::CpuDecreased)));
}

#[test]
fn case_22_node_cpu_decreased() {
    let snap = node_sequence(&[
        point(Some(start()), at(15), 50 * CORE_SECOND, MIB),
        point(Some(start()), at(25), 10 * CORE_SECOND, MIB),
    ]);
    assert_eq!(snap.node("node1"), None);
}

#[test]
fn case_23_node_point_older_than_prev() {
    let snap = node_sequence(&[
        point(Some(start()), at(15), 10 * CORE_SECOND, MIB),
        point(Some(start()), at(35), 50 * CORE_SECOND, MIB),
        point(Some(start()), at(5), 6 * CORE_SECOND, MIB),
    ]);
    assert_eq!(snap.node("node1"), None);
}

#[test]
fn case_24_node_point_between_prev_and_last() {
    let snap = node_sequence(&[
        point(Some(start()), at(15), 10 * CORE_SECOND, MIB),
        point(Some(start()), at(35), 50 * CORE_SECOND, 4 * MIB),
        point(Some(start()), at(25), 35 * CORE_SECOND, 2 * MIB),
    ]);
    let u = snap.node("node1").expect("served");
    assert_eq!(
        (u.timestamp, u.window, u.cpu_nanocores, u.memory_bytes),
        (at(25), secs(10), 2_500_000_000, 2 * MIB)
    );
    assert_eq!(
        Quantity::cpu_nanocores(u.cpu_nanocores).to_canonical(),
        "2500m"
    );
}

#[test]
fn case_25_node_zero_start_time() {
    node_case_18(Some(go_zero()));
    node_case_18(None);
}

// ---------------------------------------------------------------------------------------
// Pod storage (cases 26-39), resolution 60 s, pod ns1/pod1

fn pod_case_26(start_time: Option<Timestamp>) {
    let mut storage = Storage::new(secs(60));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[(
            "container1",
            point(start_time, at(120), CORE_SECOND, 4 * MIB),
        )],
    )]));
    assert!(!containers_ready(&snap));
    assert!(snap.pod("ns1", "pod1").is_none());
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[(
            "container1",
            point(start_time, at(125), 6 * CORE_SECOND, 5 * MIB),
        )],
    )]));
    assert!(containers_ready(&snap));
    let p = snap.pod("ns1", "pod1").expect("served");
    let w = p.window.expect("window");
    assert_eq!((w.timestamp, w.window), (at(125), secs(5)));
    let (name, u) = p.served_containers().next().expect("container");
    assert_eq!(
        (name, u.cpu_nanocores, u.memory_bytes),
        ("container1", CORE_SECOND, 5 * MIB)
    );
    assert!(snap.pod("ns1", "pod2").is_none());
    let snap = storage.store(Vec::new());
    assert!(snap.pod("ns1", "pod1").is_none());
}

#[test]
fn case_26_pod_two_points() {
    pod_case_26(Some(start()));
}

#[test]
fn case_27_pod_window_from_earliest_container() {
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("container1", point(s, at(110), CORE_SECOND, MIB)),
            ("container2", point(s, at(115), CORE_SECOND, MIB)),
        ],
    )]));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("container1", point(s, at(120), 2 * CORE_SECOND, MIB)),
            ("container2", point(s, at(125), 2 * CORE_SECOND, MIB)),
        ],
    )]));
    let w = snap
        .pod("ns1", "pod1")
        .expect("served")
        .window
        .expect("window");
    assert_eq!((w.timestamp, w.window), (at(120), secs(10)));
}

#[test]
fn case_28_same_pod_batch_twice() {
    let mut storage = Storage::new(secs(60));
    let batch = pods_only(vec![pod(
        "ns1",
        "pod1",
        &[(
            "container1",
            point(Some(start()), at(120), CORE_SECOND, MIB),
        )],
    )]);
    storage.store(batch.clone());
    let snap = storage.store(batch);
    assert!(!containers_ready(&snap));
    assert!(snap.pod("ns1", "pod1").is_none());
}

#[test]
fn case_29_points_gauge_for_containers() {
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("container1", point(s, at(110), CORE_SECOND, MIB)),
            ("container2", point(s, at(115), CORE_SECOND, MIB)),
        ],
    )]));
    assert_eq!(snap.points().map(|p| (p.nodes, p.containers)), Some((0, 0)));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("container1", point(s, at(120), 2 * CORE_SECOND, MIB)),
            ("container2", point(s, at(125), 2 * CORE_SECOND, MIB)),
        ],
    )]));
    assert_eq!(snap.points().map(|p| (p.nodes, p.containers)), Some((0, 2)));
}

#[test]
fn case_30_fresh_container_after_restart() {
    let mut storage = Storage::new(secs(60));
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[(
            "container1",
            point(Some(start()), at(10), CORE_SECOND, 4 * MIB),
        )],
    )]));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[(
            "container1",
            point(Some(at(15)), at(25), 5 * CORE_SECOND, 5 * MIB),
        )],
    )]));
    let p = snap.pod("ns1", "pod1").expect("served");
    let w = p.window.expect("window");
    assert_eq!((w.timestamp, w.window), (at(25), secs(10)));
    let (_, u) = p.served_containers().next().expect("container");
    assert_eq!((u.cpu_nanocores, u.memory_bytes), (500_000_000, 5 * MIB));
    assert_eq!(
        Quantity::cpu_nanocores(u.cpu_nanocores).to_canonical(),
        "500m"
    );
}

/// Upstream returns the pod with zero containers; section 10 item 7: omit it.
#[test]
fn case_31_all_containers_failing_omits_the_pod() {
    let mut storage = Storage::new(secs(60));
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[(
            "container1",
            point(Some(start()), at(110), 20 * CORE_SECOND, MIB),
        )],
    )]));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[(
            "container1",
            point(Some(start()), at(120), 10 * CORE_SECOND, MIB),
        )],
    )]));
    assert!(snap.pod("ns1", "pod1").is_none(), "no empty pod is served");
    let record = snap.pod_records().next().expect("record");
    assert_eq!(
        record.containers().next().expect("container").usage,
        Some(Err(UsageError::CpuDecreased))
    );
    assert_eq!(snap.pods(None).count(), 0);
}

fn container_sequence(points: &[MetricsPoint]) -> Arc<Snapshot> {
    let mut storage = Storage::new(secs(60));
    let mut snap = storage.snapshot();
    for p in points {
        snap = storage.store(pods_only(vec![pod("ns1", "pod1", &[("container1", *p)])]));
    }
    snap
}

#[test]
fn case_32_container_point_older_than_prev() {
    let s = Some(start());
    let snap = container_sequence(&[
        point(s, at(1115), 20 * CORE_SECOND, MIB),
        point(s, at(1125), 40 * CORE_SECOND, MIB),
        point(s, at(115), 10 * CORE_SECOND, MIB),
    ]);
    assert!(snap.pod("ns1", "pod1").is_none());
}

#[test]
fn case_33_container_point_between_prev_and_last() {
    let s = Some(start());
    let snap = container_sequence(&[
        point(s, at(115), 10 * CORE_SECOND, MIB),
        point(s, at(125), 50 * CORE_SECOND, 5 * MIB),
        point(s, at(120), 35 * CORE_SECOND, 5 * MIB),
    ]);
    let p = snap.pod("ns1", "pod1").expect("served");
    let w = p.window.expect("window");
    assert_eq!((w.timestamp, w.window), (at(120), secs(5)));
    let (_, u) = p.served_containers().next().expect("container");
    assert_eq!(
        (u.cpu_nanocores, u.memory_bytes),
        (5 * CORE_SECOND, 5 * MIB)
    );
}

#[test]
fn case_34_single_batch_older_than_resolution() {
    let snap = container_sequence(&[point(Some(start()), at(120), CORE_SECOND, MIB)]);
    assert!(!containers_ready(&snap));
    assert!(snap.pod("ns1", "pod1").is_none());
}

#[test]
fn case_35_single_batch_fresh_container() {
    let snap = container_sequence(&[point(Some(start()), at(10), 10 * CORE_SECOND, 4 * MIB)]);
    assert!(containers_ready(&snap));
    let p = snap.pod("ns1", "pod1").expect("served");
    let w = p.window.expect("window");
    assert_eq!((w.timestamp, w.window), (at(10), secs(10)));
    let (_, u) = p.served_containers().next().expect("container");
    assert_eq!((u.cpu_nanocores, u.memory_bytes), (CORE_SECOND, 4 * MIB));
}

#[test]
fn case_36_single_batch_sample_before_start() {
    let snap = container_sequence(&[point(Some(at(20)), at(10), 10 * CORE_SECOND, 4 * MIB)]);
    assert!(!containers_ready(&snap));
}

#[test]
fn case_37_single_batch_below_ten_seconds() {
    let snap = container_sequence(&[point(Some(start()), at(9), 10 * CORE_SECOND, 4 * MIB)]);
    assert!(!containers_ready(&snap));
}

#[test]
fn case_38_pod_zero_start_time() {
    pod_case_26(Some(go_zero()));
    pod_case_26(None);
}

#[test]
fn case_39_added_container_without_prev_hides_the_pod() {
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[("container1", point(s, at(110), CORE_SECOND, MIB))],
    )]));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("container1", point(s, at(120), 2 * CORE_SECOND, MIB)),
            ("container2", point(s, at(120), 2 * CORE_SECOND, MIB)),
        ],
    )]));
    assert!(snap.pod("ns1", "pod1").is_none());
}

// ---------------------------------------------------------------------------------------
// Readiness (cases 40-42)

fn combined(node_point: MetricsPoint, container: MetricsPoint) -> Vec<(String, NodeBatch)> {
    vec![(
        "node1".into(),
        to_batch(Some(node_point), &[pod("ns1", "pod1", &[("c", container)])]),
    )]
}

#[test]
fn case_40_node_only_batches_never_ready() {
    let mut storage = Storage::new(secs(60));
    assert!(
        !storage
            .store(node_only("node1", point(None, at(100), CORE_SECOND, MIB)))
            .ready()
    );
    assert!(
        !storage
            .store(node_only(
                "node1",
                point(None, at(115), 2 * CORE_SECOND, MIB)
            ))
            .ready()
    );
}

#[test]
fn case_41_pod_only_batches_never_ready() {
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    assert!(
        !storage
            .store(pods_only(vec![pod(
                "ns1",
                "pod1",
                &[("c", point(s, at(100), CORE_SECOND, MIB))]
            )]))
            .ready()
    );
    assert!(
        !storage
            .store(pods_only(vec![pod(
                "ns1",
                "pod1",
                &[("c", point(s, at(115), 2 * CORE_SECOND, MIB))]
            )]))
            .ready()
    );
}

#[test]
fn case_42_combined_batches_ready_after_the_second() {
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    assert!(
        !storage
            .store(combined(
                point(None, at(100), CORE_SECOND, MIB),
                point(s, at(100), CORE_SECOND, MIB)
            ))
            .ready()
    );
    assert!(
        storage
            .store(combined(
                point(None, at(115), 2 * CORE_SECOND, MIB),
                point(s, at(115), 2 * CORE_SECOND, MIB)
            ))
            .ready()
    );
}

// ---------------------------------------------------------------------------------------
// Usage helper (cases 43-46; 43 is in core's quantity unit tests)

#[test]
fn case_44_usage_of_two_points() {
    let s = Some(start());
    let last = point(
        s,
        start().saturating_add(Duration::from_millis(20)),
        500,
        600,
    );
    let prev = point(
        s,
        start().saturating_add(Duration::from_millis(10)),
        300,
        400,
    );
    let u = usage(&last, &prev).expect("usage");
    assert_eq!(
        (u.cpu_nanocores, u.memory_bytes, u.timestamp, u.window),
        (20_000, 600, last.timestamp, Duration::from_millis(10))
    );
    assert_eq!(
        Quantity::cpu_nanocores(u.cpu_nanocores).to_canonical(),
        "20u"
    );
    assert_eq!(Quantity::memory_bytes(u.memory_bytes).to_canonical(), "600");
}

#[test]
fn case_45_start_time_decrease_is_an_error() {
    let last = point(Some(start()), at(20), 500, 600);
    let prev = point(Some(at(1)), at(10), 300, 400);
    assert_eq!(usage(&last, &prev), Err(UsageError::StartTimeDecreased));
}

#[test]
fn case_46_cpu_decrease_is_an_error() {
    let last = point(Some(start()), at(20), 100, 600);
    let prev = point(Some(start()), at(10), 300, 400);
    assert_eq!(usage(&last, &prev), Err(UsageError::CpuDecreased));
}

// ---------------------------------------------------------------------------------------
// Summary-era decode (cases 63-66)

fn summary_doc(node: &str, pods: &[String]) -> String {
    format!(
        r#"{{"node":{{"nodeName":"node1",{node}}},"pods":[{}]}}"#,
        pods.join(",")
    )
}

fn summary_pod(name: &str, container: &str) -> String {
    format!(
        r#"{{"podRef":{{"name":"{name}","namespace":"ns1","uid":"u-{name}"}},"startTime":"2021-10-03T09:00:00Z","containers":[{container}]}}"#
    )
}

fn full_container(cpu: &str, mem: &str) -> String {
    format!(r#"{{"name":"c","startTime":"2021-10-03T09:00:00Z","cpu":{cpu},"memory":{mem}}}"#)
}

const GOOD_CPU: &str =
    r#"{"time":"2021-10-03T09:00:00.002Z","usageNanoCores":5,"usageCoreNanoSeconds":100}"#;
const GOOD_MEM: &str = r#"{"time":"2021-10-03T09:00:00.004Z","workingSetBytes":200}"#;
const NODE_OK: &str = r#""cpu":{"time":"2021-10-03T09:00:00.100Z","usageCoreNanoSeconds":100},"memory":{"time":"2021-10-03T09:00:00.200Z","workingSetBytes":200}"#;

#[test]
fn case_63_summary_timestamps_come_from_cpu_time() {
    let doc = summary_doc(
        NODE_OK,
        &[summary_pod("p1", &full_container(GOOD_CPU, GOOD_MEM))],
    );
    let batch = summary::decode(doc.as_bytes()).expect("decodes");
    assert_eq!(
        batch.node.expect("node").timestamp,
        t("2021-10-03T09:00:00.100Z")
    );
    assert_eq!(
        batch
            .pods()
            .next()
            .expect("pod")
            .containers()
            .next()
            .expect("container")
            .point
            .timestamp,
        t("2021-10-03T09:00:00.002Z")
    );
}

#[test]
fn case_64_summary_start_time_passed_through() {
    let doc = summary_doc(
        NODE_OK,
        &[summary_pod("p1", &full_container(GOOD_CPU, GOOD_MEM))],
    );
    let batch = summary::decode(doc.as_bytes()).expect("decodes");
    let p = batch
        .pods()
        .next()
        .expect("pod")
        .containers()
        .next()
        .expect("container")
        .point;
    assert_eq!(p.start_time, Some(t("2021-10-03T09:00:00Z")));
    assert_eq!(
        (p.cumulative_cpu_ns, p.memory_working_set_bytes),
        (100, 200)
    );
}

#[test]
fn case_65_summary_missing_values_drop_node_and_pods() {
    let node = r#""cpu":{"time":"2021-10-03T09:00:00.100Z","usageCoreNanoSeconds":100}"#;
    let pods = [
        summary_pod(
            "no-cpu",
            r#"{"name":"c","startTime":"2021-10-03T09:00:00Z","memory":{"workingSetBytes":200}}"#,
        ),
        summary_pod(
            "no-cpu-value",
            &full_container(r#"{"time":"2021-10-03T09:00:00.002Z"}"#, GOOD_MEM),
        ),
        summary_pod(
            "no-memory",
            r#"{"name":"c","startTime":"2021-10-03T09:00:00Z","cpu":{"time":"2021-10-03T09:00:00.002Z","usageCoreNanoSeconds":100}}"#,
        ),
        summary_pod(
            "no-working-set",
            &full_container(GOOD_CPU, r#"{"time":"2021-10-03T09:00:00.004Z"}"#),
        ),
    ];
    let batch = summary::decode(summary_doc(node, &pods).as_bytes()).expect("decodes");
    assert_eq!(batch.node, None);
    assert!((batch.pod_count() == 0));
    assert_eq!(batch.dropped_pods.len(), 4);
}

#[test]
fn case_66_summary_zero_cpu_drops_node_and_that_pod() {
    let node = r#""cpu":{"time":"2021-10-03T09:00:00.100Z","usageCoreNanoSeconds":0},"memory":{"workingSetBytes":200}"#;
    let mut pods: Vec<String> = (1..=3)
        .map(|i| summary_pod(&format!("ok{i}"), &full_container(GOOD_CPU, GOOD_MEM)))
        .collect();
    pods.push(summary_pod(
        "zero",
        &full_container(
            r#"{"time":"2021-10-03T09:00:00.002Z","usageCoreNanoSeconds":0}"#,
            GOOD_MEM,
        ),
    ));
    let batch = summary::decode(summary_doc(node, &pods).as_bytes()).expect("decodes");
    assert_eq!(batch.node, None);
    let names: Vec<&str> = batch.pods().map(|p| p.name).collect();
    assert_eq!(names, ["ok1", "ok2", "ok3"]);
    assert_eq!(batch.dropped_pods[0].name, "zero");
}

// ---------------------------------------------------------------------------------------
// Section 10: upstream defects and the behaviour built instead

#[test]
fn defect_1_label_values_are_unescaped() {
    let text = r#"container_cpu_usage_seconds_total{container="we\"ird\\name",namespace="a\nb",pod="p"} 1 1
container_memory_working_set_bytes{pod="p",namespace="a\nb",container="we\"ird\\name"} 1 1
"#;
    let batch = decode(text);
    let p = batch
        .pod("a\nb", "p")
        .expect("pod with unescaped namespace");
    assert_eq!(
        p.containers().next().expect("container").name,
        "we\"ird\\name"
    );
}

#[test]
fn defect_2_series_without_identity_labels_are_ignored() {
    let text = format!(
        "container_cpu_usage_seconds_total{{namespace=\"default\",pod=\"p1\"}} 1 1\ncontainer_memory_working_set_bytes{{namespace=\"default\",pod=\"p1\"}} 1 1\ncontainer_cpu_usage_seconds_total 1\n{NORMAL_NODE}"
    );
    let batch = decode(&text);
    assert!(batch.node.is_some());
    assert!(
        (batch.pod_count() == 0) && batch.dropped_pods.is_empty(),
        "no invented container name"
    );
    // A label whose name merely ends in "pod" is not the pod label.
    let batch = decode(
        r#"container_cpu_usage_seconds_total{container="c",namespace="n",notpod="x",pod="p"} 1 1
container_memory_working_set_bytes{container="c",namespace="n",notpod="x",pod="p"} 1 1
"#,
    );
    assert!(batch.pod("n", "p").is_some());
}

#[test]
fn defect_3_point_timestamp_is_the_cpu_samples() {
    let text = r#"container_cpu_usage_seconds_total{container="c",namespace="n",pod="p"} 1 1000
container_memory_working_set_bytes{container="c",namespace="n",pod="p"} 1 2000
node_cpu_usage_seconds_total 1 3000
node_memory_working_set_bytes 1 4000
"#;
    let batch = decode(text);
    assert_eq!(
        batch.node.expect("node").timestamp,
        Timestamp::from_unix_millis(3000)
    );
    assert_eq!(
        batch
            .pods()
            .next()
            .expect("pod")
            .containers()
            .next()
            .expect("container")
            .point
            .timestamp,
        Timestamp::from_unix_millis(1000)
    );
}

#[test]
fn defect_4_negative_timestamps_are_accepted() {
    let batch =
        decode("node_cpu_usage_seconds_total 1 -1000\nnode_memory_working_set_bytes 1 -1000\n");
    assert_eq!(
        batch.node.expect("node").timestamp,
        Timestamp::from_unix_millis(-1000)
    );
}

#[test]
fn defect_5_nonfinite_and_negative_values_are_invalid() {
    for bad in ["NaN", "+Inf", "-Inf", "-2.5", "1e400"] {
        let text = format!(
            "container_cpu_usage_seconds_total{{container=\"c\",namespace=\"n\",pod=\"p\"}} {bad} 1\ncontainer_memory_working_set_bytes{{container=\"c\",namespace=\"n\",pod=\"p\"}} 1 1\nnode_cpu_usage_seconds_total 1 1\nnode_memory_working_set_bytes {bad} 1\n"
        );
        let batch = decode(&text);
        assert!((batch.pod_count() == 0), "{bad}");
        assert_eq!(
            batch.dropped_pods[0].reason,
            DropReason::MissingCpu,
            "{bad}"
        );
        assert_eq!(batch.node, None, "{bad}");
    }
}

/// Upstream pairs a container with a zero-valued point when its pod has a previous
/// point but the container has none, giving a ~0 CPU over a centuries-long window.
#[test]
fn defect_6_no_zero_valued_previous_point() {
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    // container2 exists at t1 (so the pod has a prev at t2) and vanishes, then returns
    // with a sample older than its stored point: no real prev of its own remains.
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[("container1", point(s, at(1000), CORE_SECOND, MIB))],
    )]));
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("container1", point(s, at(1015), 2 * CORE_SECOND, MIB)),
            ("container2", point(s, at(1015), CORE_SECOND, MIB)),
        ],
    )]));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("container1", point(s, at(1030), 3 * CORE_SECOND, MIB)),
            ("container2", point(s, at(1010), CORE_SECOND, MIB)),
        ],
    )]));
    let record = snap.pod_records().next().expect("record");
    assert_eq!(
        record.containers().nth(1).expect("container").prev,
        None,
        "no invented previous point"
    );
    assert!(snap.pod("ns1", "pod1").is_none());
}

#[test]
fn defect_7_pod_with_all_containers_failing_is_omitted() {
    // Same facts as case 31, two containers.
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("a", point(s, at(110), 20 * CORE_SECOND, MIB)),
            ("b", point(s, at(110), 20 * CORE_SECOND, MIB)),
        ],
    )]));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("a", point(s, at(120), 10 * CORE_SECOND, MIB)),
            ("b", point(s, at(120), 10 * CORE_SECOND, MIB)),
        ],
    )]));
    assert!(snap.pod("ns1", "pod1").is_none());
}

#[test]
fn defect_8_container_order_and_window_tie_are_deterministic() {
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    // Containers handed in reverse order; both sampled at the same time.
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("zeta", point(s, at(100), CORE_SECOND, MIB)),
            ("alpha", point(s, at(105), CORE_SECOND, MIB)),
        ],
    )]));
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[
            ("zeta", point(s, at(115), 2 * CORE_SECOND, MIB)),
            ("alpha", point(s, at(115), 2 * CORE_SECOND, MIB)),
        ],
    )]));
    let p = snap.pod("ns1", "pod1").expect("served");
    let names: Vec<&str> = p.served_containers().map(|(n, _)| n).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    // Tie on timestamp: the longer window (zeta's 15 s) is reported, every time.
    assert_eq!(p.window.expect("window").window, secs(15));
}

#[test]
fn defect_9_duplicate_pod_across_nodes_is_resolved_deterministically() {
    let s = Some(start());
    let on = |node: &str, ts: u64| {
        (
            node.to_string(),
            to_batch(
                None,
                &[pod(
                    "ns1",
                    "pod1",
                    &[("c", point(s, at(ts), ts * CORE_SECOND, MIB))],
                )],
            ),
        )
    };
    for order in [
        [on("node-b", 120), on("node-a", 110)],
        [on("node-a", 110), on("node-b", 120)],
    ] {
        let mut storage = Storage::new(secs(60));
        let snap = storage.store(order.to_vec());
        assert_eq!(
            snap.pod_records().next().expect("record").node,
            "node-b",
            "newest sample wins"
        );
    }
    for order in [
        [on("node-b", 120), on("node-a", 120)],
        [on("node-a", 120), on("node-b", 120)],
    ] {
        let mut storage = Storage::new(secs(60));
        let snap = storage.store(order.to_vec());
        assert_eq!(
            snap.pod_records().next().expect("record").node,
            "node-a",
            "then the first node name"
        );
    }
}

/// Beyond section 10: a sample older than the stored `last` falls back to the stored
/// `prev` only if the container did not restart after `prev` was taken (upstream checks
/// the start time against `last` alone, so the window could span a restart).
#[test]
fn fallback_to_older_prev_never_spans_a_restart() {
    let mut storage = Storage::new(secs(60));
    let s = Some(start());
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[("c", point(s, at(100), 50 * CORE_SECOND, MIB))],
    )]));
    storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[("c", point(s, at(200), 90 * CORE_SECOND, MIB))],
    )]));
    // Restarted at +120 (after prev at +100, before last at +200), sampled at +190 (too
    // old to be fresh), counter already above prev's: upstream would pair it with prev.
    let snap = storage.store(pods_only(vec![pod(
        "ns1",
        "pod1",
        &[("c", point(Some(at(120)), at(190), 95 * CORE_SECOND, MIB))],
    )]));
    assert_eq!(
        snap.pod_records()
            .next()
            .expect("record")
            .containers()
            .next()
            .expect("container")
            .prev,
        None
    );
    assert!(snap.pod("ns1", "pod1").is_none());
}

/// Invalid UTF-8 is tolerated where the text format does not read it (plain comments)
/// and rejected in label values and HELP text, as the reference parser does.
#[test]
fn invalid_utf8_only_in_plain_comments() {
    let mut ok = b"# a comment with \xff\xfe bytes\n".to_vec();
    ok.extend_from_slice(NORMAL_NODE.as_bytes());
    assert!(
        resource::decode(&ok, default_time())
            .expect("accepted")
            .node
            .is_some()
    );
    let bad_label =
        b"container_cpu_usage_seconds_total{container=\"\xff\",namespace=\"n\",pod=\"p\"} 1 1\n";
    assert!(matches!(
        resource::decode(bad_label, default_time()),
        Err(metrics_core::kubelet::DecodeError::Syntax { line: 1, .. })
    ));
    let bad_help = b"node_cpu_usage_seconds_total 1 1\n# HELP x caf\xc3\n";
    assert!(matches!(
        resource::decode(bad_help, default_time()),
        Err(metrics_core::kubelet::DecodeError::Syntax { line: 2, .. })
    ));
}
