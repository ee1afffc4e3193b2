//! Every sample payload of the spec decodes, stores and serves exactly the values its
//! `expected.json` states (the "recommended" answer where upstream is defective).

use metrics_core::kubelet::{NodeBatch, resource, summary};
use metrics_core::quantity::Quantity;
use metrics_core::storage::{Snapshot, Storage};
use metrics_core::time::{Timestamp, go_duration};
use serde_json::Value;
use std::time::Duration;
use testdata::fixtures;

fn expected() -> Value {
    serde_json::from_str(fixtures::EXPECTED_JSON).expect("expected.json parses")
}

fn fixture(name: &str) -> &'static [u8] {
    fixtures::get(name).unwrap_or_else(|| panic!("fixture {name} missing"))
}

fn time(v: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().expect("time string")).expect("valid time")
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn window_nanos(v: &Value) -> u64 {
    v.get("window_nanoseconds")
        .or_else(|| v.get("window_ns"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no window in {v}"))
}

/// The recommended answer when the spec gives one, else the (shared) upstream one.
fn answer(v: &Value) -> &Value {
    if v.get("recommended").is_some() {
        &v["recommended"]
    } else {
        &v["upstream"]
    }
}

/// Compares a decoded batch with an expected `decoded` object.
fn check_decoded(batch: &NodeBatch, want: &Value, ctx: &str) {
    match (&batch.node, &want["node"]) {
        (None, Value::Null) => {}
        (Some(node), w) if !w.is_null() => {
            assert_eq!(
                node.timestamp,
                time(&w["timestamp"]),
                "{ctx}: node timestamp"
            );
            assert_eq!(
                node.cumulative_cpu_ns,
                u64_of(w, "cumulative_cpu_nanoseconds"),
                "{ctx}: node cpu"
            );
            assert_eq!(
                node.memory_working_set_bytes,
                u64_of(w, "memory_working_set_bytes"),
                "{ctx}: node memory"
            );
        }
        (got, w) => panic!("{ctx}: node {got:?}, expected {w}"),
    }
    let want_pods = want["pods"].as_array().expect("pods");
    let got: Vec<String> = batch
        .pods()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let expected: Vec<String> = want_pods
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["namespace"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(got, expected, "{ctx}: pods");
    for (pod, w) in batch.pods().zip(want_pods) {
        let want_containers = w["containers"].as_array().expect("containers");
        let names: Vec<&str> = pod.containers().map(|c| c.name).collect();
        let want_names: Vec<&str> = want_containers
            .iter()
            .map(|c| c["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(names, want_names, "{ctx}: containers of {}", pod.name);
        for (c, wc) in pod.containers().zip(want_containers) {
            let cctx = format!("{ctx}: {}/{}/{}", pod.namespace, pod.name, c.name);
            let want_ts = match wc.get("timestamp_unix_nano") {
                Some(n) => Timestamp::from_unix_nanos(n.as_i64().expect("i64")),
                None => time(&wc["timestamp"]),
            };
            assert_eq!(c.point.timestamp, want_ts, "{cctx}: timestamp");
            if let Some(start) = wc.get("start_time_unix_nano") {
                assert_eq!(
                    c.point.start_time,
                    start.as_i64().map(Timestamp::from_unix_nanos),
                    "{cctx}: start"
                );
            } else if let Some(start) = wc.get("start_time") {
                assert_eq!(
                    c.point.start_time,
                    start
                        .as_str()
                        .map(|s| Timestamp::parse_rfc3339(s).expect("time")),
                    "{cctx}: start"
                );
            }
            assert_eq!(
                c.point.cumulative_cpu_ns,
                u64_of(wc, "cumulative_cpu_nanoseconds"),
                "{cctx}: cpu"
            );
            assert_eq!(
                c.point.memory_working_set_bytes,
                u64_of(wc, "memory_working_set_bytes"),
                "{cctx}: memory"
            );
        }
    }
    let dropped: Vec<String> = batch
        .dropped_pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let mut want_dropped: Vec<String> = want["dropped_pods"]
        .as_array()
        .expect("dropped_pods")
        .iter()
        .map(|d| match d {
            Value::String(s) => s.clone(),
            d => format!(
                "{}/{}",
                d["namespace"].as_str().unwrap_or(""),
                d["name"].as_str().unwrap_or("")
            ),
        })
        .collect();
    want_dropped.sort();
    assert_eq!(dropped, want_dropped, "{ctx}: dropped pods");
}

/// Compares a snapshot with an expected `after_store` object.
fn check_after_store(snapshot: &Snapshot, want: &Value, ctx: &str) {
    let points = snapshot.points().expect("stored");
    assert_eq!(
        points.nodes as u64,
        u64_of(&want["storage_points"], "node"),
        "{ctx}: node points"
    );
    assert_eq!(
        points.containers as u64,
        u64_of(&want["storage_points"], "container"),
        "{ctx}: container points"
    );
    assert_eq!(
        snapshot.ready(),
        want["ready"].as_bool().expect("ready"),
        "{ctx}: ready"
    );
    let served = &want["served"];
    let want_nodes: Vec<Value> = match (&served["nodes"], &served["node"]) {
        (Value::Array(list), _) => list.clone(),
        (_, Value::Object(_)) => vec![served["node"].clone()],
        _ => Vec::new(),
    };
    let nodes: Vec<_> = snapshot.nodes().collect();
    assert_eq!(nodes.len(), want_nodes.len(), "{ctx}: served nodes");
    for ((name, usage), w) in nodes.iter().zip(&want_nodes) {
        assert_eq!(*name, w["name"].as_str().expect("name"), "{ctx}");
        assert_eq!(
            usage.timestamp,
            time(&w["timestamp"]),
            "{ctx}: {name} timestamp"
        );
        assert_eq!(
            usage.window.as_nanos() as u64,
            window_nanos(w),
            "{ctx}: {name} window"
        );
        assert_eq!(
            go_duration(usage.window),
            w["window"].as_str().expect("window"),
            "{ctx}"
        );
        assert_eq!(
            usage.cpu_nanocores,
            u64_of(w, "cpu_nanocores"),
            "{ctx}: {name} cpu"
        );
        assert_eq!(
            Quantity::cpu_nanocores(usage.cpu_nanocores).to_canonical(),
            w["cpu"].as_str().expect("cpu"),
            "{ctx}"
        );
        assert_eq!(
            usage.memory_bytes,
            u64_of(w, "memory_bytes"),
            "{ctx}: {name} memory"
        );
        assert_eq!(
            Quantity::memory_bytes(usage.memory_bytes).to_canonical(),
            w["memory"].as_str().expect("memory"),
            "{ctx}"
        );
    }
    let want_pods = served["pods"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let pods: Vec<_> = snapshot.pods(None).collect();
    let got: Vec<String> = pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let expected: Vec<String> = want_pods
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["namespace"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(got, expected, "{ctx}: served pods");
    for (pod, w) in pods.iter().zip(want_pods) {
        let pctx = format!("{ctx}: {}/{}", pod.namespace, pod.name);
        let window = pod.window.expect("served pod has a window");
        assert_eq!(window.timestamp, time(&w["timestamp"]), "{pctx}: timestamp");
        assert_eq!(
            window.window.as_nanos() as u64,
            window_nanos(w),
            "{pctx}: window"
        );
        let containers: Vec<_> = pod.served_containers().collect();
        let want_containers = w["containers"].as_array().expect("containers");
        assert_eq!(
            containers.len(),
            want_containers.len(),
            "{pctx}: containers"
        );
        for ((name, usage), wc) in containers.iter().zip(want_containers) {
            assert_eq!(*name, wc["name"].as_str().expect("name"), "{pctx}");
            assert_eq!(
                usage.cpu_nanocores,
                u64_of(wc, "cpu_nanocores"),
                "{pctx}: {name} cpu"
            );
            assert_eq!(
                Quantity::cpu_nanocores(usage.cpu_nanocores).to_canonical(),
                wc["cpu"].as_str().expect("cpu"),
                "{pctx}"
            );
            assert_eq!(
                usage.memory_bytes,
                u64_of(wc, "memory_bytes"),
                "{pctx}: {name} memory"
            );
            assert_eq!(
                Quantity::memory_bytes(usage.memory_bytes).to_canonical(),
                wc["memory"].as_str().expect("memory"),
                "{pctx}"
            );
            if let Some(ts) = wc.get("container_timestamp") {
                assert_eq!(usage.timestamp, time(ts), "{pctx}: {name} timestamp");
            }
            if let Some(ts) = wc
                .get("container_timestamp_unix_nano")
                .and_then(Value::as_i64)
            {
                assert_eq!(
                    usage.timestamp,
                    Timestamp::from_unix_nanos(ts),
                    "{pctx}: {name} timestamp"
                );
            }
            if let Some(win) = wc.get("container_window") {
                assert_eq!(
                    go_duration(usage.window),
                    win.as_str().expect("window"),
                    "{pctx}: {name} window"
                );
            }
        }
    }
}

fn decode_resource(name: &str, request_time: &Value) -> NodeBatch {
    resource::decode(fixture(name), time(request_time)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn current_linux_node_metrics_resource_two_scrapes() {
    let all = expected();
    let node = &all["current_linux_node"];
    let node_name = node["node_name"].as_str().expect("node name").to_string();
    let rec = &node["metrics_resource"]["recommended"];
    for resolution in [15, 60] {
        let mut storage = Storage::new(Duration::from_secs(resolution));
        for (step, file) in [
            ("t0", "metrics-resource-current-t0.txt"),
            ("t1", "metrics-resource-current-t1.txt"),
        ] {
            let batch = decode_resource(file, &rec[step]["request_time"]);
            check_decoded(&batch, &rec[step]["decoded"], &format!("{file} decoded"));
            let snapshot = storage.store(vec![(node_name.clone(), batch)]);
            let want = if resolution == 60 && step == "t1" {
                &node["metrics_resource"]["upstream_with_metric_resolution_60s_after_t1"]
            } else {
                &rec[step]["after_store"]
            };
            // That answer is upstream's, which cuts the escaped container name; the
            // decoded name is checked against the recommended one above.
            let want = serde_json::to_string(want)
                .expect("json")
                .replace(r#""we\\""#, r#""we\"ird\\name""#);
            let want: Value = serde_json::from_str(&want).expect("json");
            check_after_store(
                &snapshot,
                &want,
                &format!("{file} stored at resolution {resolution}s"),
            );
        }
    }
}

/// Section 10 item 1: the escaped container name is unescaped, not cut at the first quote.
#[test]
fn escaped_label_values_are_unescaped_unlike_upstream() {
    let all = expected();
    let rec = &all["current_linux_node"]["metrics_resource"];
    let batch = decode_resource(
        "metrics-resource-current-t0.txt",
        &rec["recommended"]["t0"]["request_time"],
    );
    let pod = batch
        .pod("synthetic", "escape-test")
        .expect("escape-test pod");
    assert_eq!(
        pod.containers().next().expect("container").name,
        "we\"ird\\name"
    );
    let upstream_name = rec["upstream"]["t0"]["decoded"]["pods"]
        .as_array()
        .and_then(|pods| pods.iter().find(|p| p["name"] == "escape-test"))
        .map(|p| p["containers"][0]["name"].clone());
    assert_eq!(
        upstream_name,
        Some(Value::from("we\\")),
        "upstream cuts the name"
    );
    assert_ne!(pod.containers().next().expect("container").name, "we\\");
}

#[test]
fn current_linux_node_summary_two_scrapes() {
    let all = expected();
    let node = &all["current_linux_node"];
    let node_name = node["node_name"].as_str().expect("node name").to_string();
    let want = &node["stats_summary_with_v0_5_rules"];
    let mut storage = Storage::new(Duration::from_secs(15));
    for (step, file) in [
        ("t0", "stats-summary-t0.json"),
        ("t1", "stats-summary-t1.json"),
    ] {
        let batch = summary::decode(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        check_decoded(&batch, &want[step]["decoded"], &format!("{file} decoded"));
        let snapshot = storage.store(vec![(node_name.clone(), batch)]);
        check_after_store(
            &snapshot,
            &want[step]["after_store"],
            &format!("{file} stored"),
        );
    }
}

#[test]
fn older_and_windows_kubelets() {
    let all = expected();
    for file in [
        "metrics-resource-k8s-1.19.txt",
        "metrics-resource-k8s-1.23.txt",
        "metrics-resource-k8s-1.18.txt",
        "metrics-resource-windows.txt",
    ] {
        let entry = &all[file];
        let request_time = entry
            .get("request_time")
            .cloned()
            .unwrap_or(Value::from("2025-01-01T00:00:00Z"));
        let batch = decode_resource(file, &request_time);
        check_decoded(&batch, answer(entry), file);
    }
}

/// Section 10 item 4: a zero start time rendered as a negative value with a negative
/// timestamp no longer fails the node; the start time is treated as absent and the rest
/// decodes exactly as the payload without that line.
#[test]
fn zero_start_time_accepted_unlike_upstream() {
    let all = expected();
    let request_time = &all["metrics-resource-k8s-1.23.txt"]["request_time"];
    let with_defect = decode_resource(
        "metrics-resource-k8s-1.23-zero-start-time.txt",
        request_time,
    );
    let clean = decode_resource("metrics-resource-k8s-1.23.txt", request_time);
    assert!(all["metrics-resource-k8s-1.23-zero-start-time.txt"]["upstream"]["error"].is_string());
    assert_eq!(with_defect.node, clean.node);
    assert!(with_defect.pods().eq(clean.pods()));
    let dashboard = with_defect
        .dropped_pods
        .iter()
        .find(|p| p.namespace == "kubernetes-dashboard")
        .expect("dashboard pod dropped");
    assert_eq!(
        dashboard.name,
        "kubernetes-dashboard-metrics-server-77db45cdf4-fppzx"
    );
}

#[test]
fn edge_payloads() {
    let all = expected();
    let request_time = Value::from("2025-06-10T10:00:05.5Z");
    let edges = all["edge"].as_object().expect("edge map");
    let mut checked = 0;
    for (file, entry) in edges {
        if file == "about" {
            continue;
        }
        let want = answer(entry);
        let result = resource::decode(fixture(&format!("edge/{file}")), time(&request_time));
        if want.get("error").is_some() {
            let err = result.expect_err(file);
            assert!(!err.to_string().is_empty());
        } else {
            let batch = result.unwrap_or_else(|e| panic!("{file}: {e}"));
            check_decoded(&batch, want, file);
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        fixtures::EDGE.len(),
        "every edge file has an answer"
    );
}

fn extra_expected() -> Value {
    serde_json::from_str(fixtures::EXTRA_EXPECTED_JSON).expect("extra expected.json parses")
}

#[test]
fn extra_metrics_resource_fixtures() {
    let all = extra_expected();
    for file in [
        "metrics-resource-110-pods.txt",
        "metrics-resource-k8s-1.29.txt",
    ] {
        let entry = &all[file];
        let batch = decode_resource(&format!("extra/{file}"), &entry["request_time"]);
        check_decoded(&batch, &entry["recommended"]["decoded"], file);
        let counts = &entry["counts"];
        assert_eq!(
            batch.pod_count() as u64,
            u64_of(counts, "pods_kept"),
            "{file}"
        );
        assert_eq!(
            batch.pods().map(|p| p.container_count()).sum::<usize>() as u64,
            u64_of(counts, "containers_kept"),
            "{file}"
        );
        assert_eq!(
            batch.dropped_pods.len() as u64,
            u64_of(counts, "pods_dropped"),
            "{file}"
        );
    }
}

#[test]
fn extra_summary_fixtures() {
    let all = extra_expected();
    let batch = summary::decode(fixture("extra/stats-summary-windows.json"))
        .expect("windows summary decodes");
    check_decoded(
        &batch,
        &all["stats-summary-windows.json"]["recommended"]["decoded"],
        "windows summary",
    );

    let node_name = all["stats-summary-reduced-t0.json"]["node_name"]
        .as_str()
        .expect("name")
        .to_string();
    let mut storage = Storage::new(Duration::from_secs(15));
    for (file, after) in [
        ("stats-summary-reduced-t0.json", "after_t0_store"),
        ("stats-summary-reduced-t1.json", "after_t1_store"),
    ] {
        let entry = &all[file];
        let batch = summary::decode(fixture(&format!("extra/{file}")))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        check_decoded(&batch, &entry["recommended"]["decoded"], file);
        let snapshot = storage.store(vec![(node_name.clone(), batch)]);
        check_after_store(&snapshot, &entry[after], file);
    }
}

/// The reduced pair's t1 is exactly 15 s after t0.
#[test]
fn reduced_summaries_are_fifteen_seconds_apart() {
    let all = extra_expected();
    let t0 = all["stats-summary-reduced-t0.json"]["request_time_unix_nano"]
        .as_i64()
        .expect("t0");
    let t1 = all["stats-summary-reduced-t1.json"]["request_time_unix_nano"]
        .as_i64()
        .expect("t1");
    assert_eq!(t1 - t0, 15_000_000_000);
}
